"""Print lb's import graph by layer and report upward imports and cycles.

The layer table is docs/ARCHITECTURE.md §7.2. `tests/test_layers.py` runs the same
check and fails on any violation. Usage: python tools/check_layers.py [--graph]
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# module prefix -> layer (longest matching prefix wins)
LAYERS: dict[str, int] = {
    "lb": 0,
    "lb.errors": 0,
    "lb.units": 0,
    "lb.connerr": 0,  # HAProxy's connection error codes: a table, imports nothing from lb
    "lb._accel": 0,  # import hook for the compiled hot path, imports nothing from lb
    "lb.match": 1,
    "lb.http": 1,
    "lb.balance": 1,
    "lb.sticktable": 1,  # the stick tables: a data structure, imports nothing from lb
    "lb.dns": 1,  # the DNS wire codec, imports nothing from lb
    "lb.tls": 1,  # TLS contexts and PEM files; imports only lb.config.model
    "lb.config": 2,
    "lb.config.model": 0,  # pure frozen dataclasses, imports nothing from lb
    "lb.state": 3,
    "lb.stats": 3,
    "lb.stats_html": 3,
    "lb.stats_core": 3,
    "lb.srvadmin": 3,
    "lb.hana": 3,
    "lb.server_state_apply": 3,
    "lb.prometheus": 3,
    "lb.proxy": 4,
    "lb.log": 4,
    "lb.logfmt": 4,
    "lb.logring": 4,
    "lb.cli": 4,
    "lb.lifecycle": 4,
    "lb.master": 4,
    "lb.runtime": 4,
    "lb.resolvers": 4,
    "lb.mailers": 4,
    "healthcheck": 5,
    "lb.__main__": 6,
}


def layer_of(module: str) -> int | None:
    best = None
    for prefix, layer in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, layer)
    return None if best is None else best[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, module: str) -> set[str]:
    """Project modules imported by `path` at any level (function-level included)."""
    tree = ast.parse(path.read_text(), str(path))
    pkg = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base)
                mod = f"{prefix}.{node.module}" if node.module else prefix
            else:
                mod = node.module or ""
            # `from pkg import sub` depends on pkg.sub when that is a module; the
            # caller resolves each name, so keep pkg only for non-module names.
            names = [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] in ("lb", "healthcheck"):
                found.add(name)
    return found


def project_modules() -> dict[str, Path]:
    mods = {}
    for top in ("lb", "healthcheck"):
        for path in sorted((ROOT / top).rglob("*.py")):
            mods[module_name(path)] = path
    return mods


def resolve(name: str, mods: dict[str, Path]) -> str | None:
    """Map an imported dotted name to the project module that defines it."""
    while name:
        if name in mods:
            return name
        name = name.rpartition(".")[0]
    return None


def check() -> tuple[list[str], dict[str, set[str]]]:
    mods = project_modules()
    graph: dict[str, set[str]] = {}
    problems: list[str] = []
    for mod, path in mods.items():
        deps = {d for n in imports_of(path, mod) if (d := resolve(n, mods)) and d != mod}
        graph[mod] = deps
        mine = layer_of(mod)
        if mine is None:
            problems.append(f"{mod}: not in the layer table (tools/check_layers.py)")
            continue
        for dep in sorted(deps):
            theirs = layer_of(dep)
            if theirs is not None and theirs > mine:
                problems.append(f"{mod} (L{mine}) imports {dep} (L{theirs}): upward import")
            if dep.startswith("healthcheck") and mod.startswith("lb") and mod != "lb.__main__":
                problems.append(f"{mod} imports {dep}: only lb.__main__ may import healthcheck")
    problems.extend(_cycles(graph))
    return problems, graph


def _cycles(graph: dict[str, set[str]]) -> list[str]:
    # A package's __init__ importing its own submodules is not a cycle worth
    # reporting; everything else is.
    out: list[str] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for d in sorted(graph.get(n, ())):
            if state.get(d) == 1:
                cyc = stack[stack.index(d):] + [d]
                if not all(a.startswith(b + ".") or b.startswith(a + ".")
                           for a, b in zip(cyc, cyc[1:], strict=False)):
                    out.append("import cycle: " + " -> ".join(cyc))
            elif d not in state:
                visit(d)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    return out


def main() -> int:
    problems, graph = check()
    if "--graph" in sys.argv:
        for mod in sorted(graph, key=lambda m: (layer_of(m) or 9, m)):
            print(f"L{layer_of(mod)} {mod}: {', '.join(sorted(graph[mod])) or '-'}")
    for p in problems:
        print(p)
    print(f"{len(graph)} modules, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
