"""Print the configuration keyword tables (global, proxy, option, server, bind).

Usage: ``python tools/dump_keywords.py [global|proxy|option|server|bind]``
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from lb.config.bind_kw import BIND_KEYWORDS  # noqa: E402
from lb.config.global_kw import GLOBAL_TABLE  # noqa: E402
from lb.config.proxy_kw import IGNORED_OPTIONS, OPTIONS, PROXY_TABLE  # noqa: E402
from lb.config.server_kw import SERVER_KEYWORDS  # noqa: E402


def dump_table(table, title: str) -> None:  # type: ignore[no-untyped-def]
    print(f"# {title}")
    print(f"{'keyword':<28} {'side':<9} {'defaults':<9} help")
    for row in table:
        if row.named_defaults_only:
            where = "named"
        else:
            where = "yes" if row.defaults else "no"
        print(f"{row.name:<28} {row.side or 'any':<9} {where:<9} {row.help}")
    print()


def dump_options() -> None:
    print("# option <name>")
    print(f"{'option':<28} {'side':<9} kind")
    for name in sorted(OPTIONS):
        side, handler, attr, _n = OPTIONS[name]
        kind = f"flag -> Options.{attr}" if handler is None else "parsed"
        print(f"{name:<28} {side or 'any':<9} {kind}")
    for name in sorted(IGNORED_OPTIONS):
        print(f"{name:<28} {'any':<9} accepted and ignored (warning)")
    print()


def dump_server() -> None:
    print("# server / default-server options")
    print(f"{'option':<20} {'argument':<9} {'field':<18} help")
    for name in sorted(SERVER_KEYWORDS):
        kw = SERVER_KEYWORDS[name]
        print(f"{name:<20} {'yes' if kw.conv else 'no':<9} {kw.field or '(ignored)':<18} "
              f"{kw.help}")
    print()


def dump_bind() -> None:
    print("# bind / stats socket options (HAProxy's order)")
    print(f"{'option':<22} {'argument':<9} {'list':<5} help")
    for kw in BIND_KEYWORDS.values():
        print(f"{kw.name:<22} {'yes' if kw.args else 'no':<9} {kw.group:<5} {kw.help}")
    print()


def main(argv: list[str]) -> int:
    what = argv[0] if argv else "all"
    if what in ("all", "global"):
        dump_table(GLOBAL_TABLE, "global section")
    if what in ("all", "proxy"):
        dump_table(PROXY_TABLE, "defaults / frontend / backend / listen")
    if what in ("all", "option"):
        dump_options()
    if what in ("all", "server"):
        dump_server()
    if what in ("all", "bind"):
        dump_bind()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
