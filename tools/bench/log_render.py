"""Traffic-line rendering speed: render N httplog lines (varying fields) and print lines/s.

Usage: .venv/bin/python tools/bench/log_render.py [N] [format: httplog|clf|tcplog]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lb import logfmt  # noqa: E402
from tests.test_log_support import FakeTxn  # noqa: E402

FORMATS = {"httplog": logfmt.HTTPLOG_FORMAT, "clf": logfmt.HTTPLOG_CLF_FORMAT,
           "tcplog": logfmt.TCPLOG_FORMAT}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    name = sys.argv[2] if len(sys.argv) > 2 else "httplog"
    fmt = logfmt.compile_traffic_format(FORMATS[name], "tcp" if name == "tcplog" else "http")
    base = time.time()
    txns = []
    for i in range(1000):
        url = b"/api/items/%d?page=%d" % (i, i % 7)
        txns.append(FakeTxn(client_port=30000 + i, request_ts=base + i * 0.0004,
                            accept_ts=base + i * 0.0004, status=200 + (i % 3) * 100,
                            bytes_out=200 + i, t_active=i % 50, url=url,
                            request_line=b"GET " + url + b" HTTP/1.1"))
    render = fmt.render
    t0 = time.perf_counter()
    for i in range(n):
        render(txns[i % 1000])
    dt = time.perf_counter() - t0
    print(f"{name}: {n} lines in {dt:.3f} s = {n / dt:,.0f} lines/s")


if __name__ == "__main__":
    main()
