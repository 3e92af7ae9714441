"""The one-way layering of docs/ARCHITECTURE.md §7.2 holds: no upward imports, no cycles."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "check_layers", Path(__file__).resolve().parent.parent / "tools" / "check_layers.py")
assert _spec and _spec.loader
check_layers = importlib.util.module_from_spec(_spec)
sys.modules["check_layers"] = check_layers
_spec.loader.exec_module(check_layers)


def test_no_upward_imports_or_cycles() -> None:
    problems, graph = check_layers.check()
    assert problems == []
    assert "lb.state" in graph


def test_checker_sees_an_upward_import() -> None:
    assert check_layers.layer_of("lb.match.acl") == 1
    assert check_layers.layer_of("lb.proxy.txn") == 4
    assert check_layers.layer_of("lb.__main__") == 6
    cyc = check_layers._cycles({"lb.a": {"lb.b"}, "lb.b": {"lb.a"}})
    assert cyc and "lb.a -> lb.b -> lb.a" in cyc[0]
