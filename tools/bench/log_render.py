"""Traffic-line speed: render N lines (varying fields), then emit them to a UDP syslog
receiver on 127.0.0.1 (render + header + non-blocking sendto), and print lines/s.

Usage: .venv/bin/python tools/bench/log_render.py [N] [format: httplog|clf|tcplog]
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lb import log, logfmt  # noqa: E402
from lb.config.model import Global, LogTarget, Options, Proxy  # noqa: E402
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
    print(f"render {name}: {n} lines in {dt:.3f} s = {n / dt:,.0f} lines/s")

    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    target = LogTarget(kind="udp", address="127.0.0.1", port=rx.getsockname()[1])
    mode = "tcp" if name == "tcplog" else "http"
    proxy = Proxy(name="f", caps=frozenset({"frontend"}), kind="frontend", mode=mode,
                  logs=(target,), log_format=FORMATS[name], options=Options())
    tl = log.build_traffic_log(proxy, Global())
    assert tl is not None
    emit = tl.emit
    t0 = time.perf_counter()
    for i in range(n):
        emit(txns[i % 1000])
    dt = time.perf_counter() - t0
    print(f"emit {name} to UDP syslog: {n} lines in {dt:.3f} s = {n / dt:,.0f} lines/s"
          f" (dropped {log.dropped_logs()})")
    rx.close()


if __name__ == "__main__":
    main()
