"""Compiled copies of the hot-path modules: found, checked and preferred at import.

Owns: the import hook that loads a module of ``lb`` from the Cython-compiled copy that
``tools/build_accel.py`` left under ``build/accel/`` instead of its ``.py`` file, when
that copy was built from exactly the source now on disk (a SHA-256 per module, of its
``.py`` and the ``.pxd`` declarations it is built with, in the build's manifest) by
this interpreter (its cache tag). A module whose source changed since the build, or
any module when ``LB_PURE_PYTHON`` is set, is imported from source as usual, so a
stale build never runs and lb works the same without one: the compiled modules are the
same Python code, only without the interpreter loop.

Installed by ``lb/__init__.py`` before any other submodule is imported.

Must not import anything from lb (it runs while lb itself is being imported).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent
BUILD_DIR = PACKAGE_DIR.parent / "build" / "accel"
MANIFEST = BUILD_DIR / "manifest.json"
DISABLE_ENV = "LB_PURE_PYTHON"


_CIMPORT = re.compile(rb"^\s*(?:from\s+(lb(?:\.\w+)+)\s+cimport|cimport\s+(lb(?:\.\w+)+))",
                      re.MULTILINE)


# .pxd path -> (its text, the modules it cimports), filled during one look at the
# build (current_modules passes one in): a .pxd is cimported by many modules
PxdCache = dict[Path, tuple[bytes, list[str]]]


def _read_pxd(pxd: Path, cache: PxdCache | None) -> tuple[bytes, list[str]] | None:
    if cache is not None and pxd in cache:
        return cache[pxd]
    if not pxd.is_file():
        return None
    text = pxd.read_bytes()
    item = (text, [(m.group(1) or m.group(2)).decode() for m in _CIMPORT.finditer(text)])
    if cache is not None:
        cache[pxd] = item
    return item


def _pxd_closure(path: Path, cache: PxdCache | None = None
                 ) -> list[tuple[Path, bytes, list[str]]]:
    """(pxd, its text, the modules it cimports) for a module's ``.pxd`` and every
    ``.pxd`` reached from it by cimport, in a stable order."""
    out = []
    todo = [path.with_suffix(".pxd")]
    seen: set[Path] = set()
    while todo:
        pxd = todo.pop()
        if pxd in seen:
            continue
        seen.add(pxd)
        item = _read_pxd(pxd, cache)
        if item is None:
            continue
        text, deps = item
        out.append((pxd, text, deps))
        todo.extend(source_path(d).with_suffix(".pxd") for d in deps)
    return out


def source_digest(path: Path, cache: PxdCache | None = None) -> str:
    """SHA-256 of what a compiled module is built from: its ``.py``, its ``.pxd`` if it
    has one (C declarations of its classes), and the ``.pxd`` files those cimport."""
    h = hashlib.sha256(path.read_bytes())
    for pxd, text, _ in _pxd_closure(path, cache):
        h.update(b"\0" + pxd.name.encode() + b"\0" + text)
    return h.hexdigest()


def cimported_modules(module: str, cache: PxdCache | None = None) -> set[str]:
    """The modules whose extension types a compiled ``module`` uses at C level (from
    its ``.pxd``, transitively). It imports them, and checks their types' layout."""
    closure = _pxd_closure(source_path(module), cache)
    return {d for _, _, deps in closure for d in deps} - {module}


def source_path(module: str) -> Path:
    """``lb.proxy.txn`` -> <package dir>/proxy/txn.py"""
    parts = module.split(".")[1:]
    return PACKAGE_DIR.joinpath(*parts[:-1], parts[-1] + ".py")


def read_manifest() -> dict[str, Any] | None:
    try:
        data = json.loads(MANIFEST.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("modules", {}), dict):
        return None  # not a manifest build_accel wrote: as if there were no build
    return data


def current_modules() -> tuple[dict[str, Path], list[str]]:
    """(module -> compiled file) for the modules whose build is current, and the names
    of those that are built but stale (source changed, file gone, other interpreter)."""
    data = read_manifest()
    if data is None:
        return {}, []
    if data.get("cache_tag") != sys.implementation.cache_tag:
        return {}, sorted(data.get("modules", {}))
    fresh: dict[str, Path] = {}
    stale: list[str] = []
    cache: PxdCache = {}
    for name, entry in sorted(data.get("modules", {}).items()):
        try:
            so = BUILD_DIR / entry["file"]
            ok = so.is_file() and source_digest(source_path(name), cache) == entry["sha256"]
        except (OSError, KeyError, TypeError):
            ok = False
        if ok:
            fresh[name] = so
        else:
            stale.append(name)
    # a compiled module that cimports another one's types needs that one compiled too:
    # against the pure-Python class, its import fails (the type's size differs)
    needs = {name: cimported_modules(name, cache) for name in fresh}
    dropped = True
    while dropped:
        dropped = False
        for name in list(fresh):
            if not needs[name] <= fresh.keys():
                del fresh[name]
                stale.append(name)
                dropped = True
    return fresh, sorted(stale)


class CompiledFinder:
    """A meta path finder answering only for the modules of a current build."""

    def __init__(self, modules: dict[str, Path]) -> None:
        self.modules = modules

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        so = self.modules.get(name)
        if so is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(name, str(so))
        return importlib.util.spec_from_file_location(name, str(so), loader=loader)


STATUS: dict[str, Any] = {"enabled": False, "modules": [], "stale": [], "reason": "not built"}


def install() -> None:
    """Put the finder in front of the normal import system (once)."""
    if any(isinstance(f, CompiledFinder) for f in sys.meta_path):
        return
    if os.environ.get(DISABLE_ENV):
        STATUS["reason"] = f"disabled by {DISABLE_ENV}"
        return
    fresh, stale = current_modules()
    STATUS["stale"] = stale
    if not fresh:
        STATUS["reason"] = "stale build" if stale else "not built"
        return
    sys.meta_path.insert(0, CompiledFinder(fresh))
    STATUS.update(enabled=True, modules=sorted(fresh), reason="")


def describe() -> str:
    """One line for ``lb -vv``."""
    if STATUS["enabled"]:
        data = read_manifest() or {}
        text = (f"Compiled hot path: {len(STATUS['modules'])} modules "
                f"(Cython {data.get('cython', '?')})")
        if STATUS["stale"]:
            text += f", {len(STATUS['stale'])} stale ones from source"
        return text
    return f"Compiled hot path: none ({STATUS['reason']}; pure Python)"
