#!/usr/bin/env python3
"""Cost of ACL evaluation on a realistic WebSocket upgrade head (not a test).

Usage: .venv/bin/python tests/haproxy_compat/bench_acl.py

Conditions are the seed 002 protocol check (four ACLs, all true: the worst case for
AND) and a two-ACL routing condition. ``memo`` is reset before every evaluation, as a
new transaction would, so header lookups are not served from an earlier run.
"""

from __future__ import annotations

import os
import sys
import time
import timeit
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from lb.match import acl  # noqa: E402
from lb.match.sample import SampleSubject  # noqa: E402


class Ctx(SampleSubject):
    __slots__ = ()

    def __init__(self) -> None:
        self.method = b"GET"
        self.url = b"/websockets/chat?room=1"
        self.version = b"1.1"
        self.req_headers = [
            (b"host", b"ws.example.com"),
            (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0"),
            (b"accept", b"*/*"), (b"accept-language", b"en-US,en;q=0.5"),
            (b"accept-encoding", b"gzip, deflate, br"), (b"sec-websocket-version", b"13"),
            (b"origin", b"https://ws.example.com"),
            (b"sec-websocket-extensions", b"permessage-deflate"),
            (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
            (b"connection", b"keep-alive, Upgrade"), (b"cookie", b"sid=abc; lang=en"),
            (b"pragma", b"no-cache"), (b"cache-control", b"no-cache"),
            (b"upgrade", b"websocket"),
        ]
        self.src, self.src_port, self.dst, self.dst_port = "127.0.0.1", 40000, "127.0.0.1", 80
        self.is_response = False
        self.status = 0
        self.res_headers = None
        self.vars: dict[str, Any] = {}
        self.memo: dict[Any, Any] = {}


ACLS = {
    "hdr_connection_upgrade": ["hdr(Connection)", "-i", "upgrade"],
    "hdr_upgrade_websocket": ["hdr(Upgrade)", "-i", "websocket"],
    "hdr_websocket_key": ["hdr_cnt(Sec-WebSocket-Key)", "eq", "1"],
    "hdr_websocket_version": ["hdr_cnt(Sec-WebSocket-Version)", "eq", "1"],
    "is_websocket": ["path_beg", "-i", "/websockets"],
    "is_example": ["hdr_end(host)", "-i", "example.com"],
}
CONDITIONS = {
    "4 ACLs, AND (seed 002)": "hdr_connection_upgrade hdr_upgrade_websocket"
                              " hdr_websocket_key hdr_websocket_version",
    "deny unless valid (!a || !b ...)": "! hdr_connection_upgrade || ! hdr_upgrade_websocket"
                                        " || ! hdr_websocket_key || ! hdr_websocket_version",
    "2 ACLs, AND (seed 003)": "is_websocket is_example",
    "anonymous ACL": "{ hdr(upgrade) -i websocket }",
}


def main() -> None:
    table = {}
    for name, words in ACLS.items():
        table[name] = a = acl.Acl(name)
        a.add(acl.parse_acl_expr(words)[0])
    ctx = Ctx()
    for label, text in CONDITIONS.items():
        cond, _ = acl.compile_condition("if", text.split(), table.get)

        def run(cond: acl.Condition = cond) -> None:
            ctx.memo = {}
            cond.evaluate(ctx)
        n = 20000
        # CPU time: the build box is shared, wall time mostly measures the neighbours
        best = min(timeit.repeat(run, number=n, repeat=9, timer=time.process_time)) / n
        print(f"{label:36s} {best * 1e6:6.2f} us per evaluation")


if __name__ == "__main__":
    main()
