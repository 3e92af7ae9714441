"""Loading a hot-path module's Python source on its own, beside its compiled build.

Tests that compare a compiled C body with the Python code it stands in for import the
module as usual (compiled when the accelerated build is present) and load its source
again with ``pure_module``: a second module object that runs as plain Python.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def pure_module(dotted: str) -> ModuleType:
    """``dotted`` (e.g. ``lb.http.headscan``) loaded from its .py as plain Python."""
    name = dotted.replace(".", "_") + "_pure"
    spec = importlib.util.spec_from_file_location(
        name, ROOT / (dotted.replace(".", "/") + ".py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses in the module look it up by name
    spec.loader.exec_module(mod)
    assert not mod.COMPILED
    return mod
