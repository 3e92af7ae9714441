"""The data plane feeds HAProxy's traffic log lines (fields checked end to end).

Reference lines from HAProxy 2.6.12 on loopback:
  127.0.0.1:40142 [21/Nov/2026:16:23:40.573] f b_api/s1 0/0/0/1/1 200 241 - - ---- 1/1/0/0/0 0/0 "GET /api/x HTTP/1.1"
  127.0.0.1:57948 [...] f f/<NOSRV> -1/1/-1/-1/0 500 208 - - PT-- 1/1/0/0/0 0/0 "GET /tarpit HTTP/1.1"
  ... f f/<NOSRV> -1/-1/-1/-1/0 503 217 - - SC-- ... "GET /none HTTP/1.1"   (wire: 214 bytes)
  ... f f/<NOSRV> 0/-1/-1/-1/0 403 192 - - PR-- ... "GET /deny HTTP/1.1"    (wire: 189)
  ... f f/<NOSRV> 0/-1/-1/-1/0 302 83 - - LR-- ... "GET /redir HTTP/1.1"    (wire: 80)
  ... f f/<NOSRV> -1/-1/-1/-1/0 400 0 - - PR-- ... "<BADREQ>"
"""

from __future__ import annotations

import re

from tests.backends import HttpBackend
from tests.lbproc import LbProcess, raw_request

CFG = """
global
  log stdout format raw local0
defaults
  mode http
  log global
  timeout client 5s
  timeout server 5s
  timeout connect 1s
frontend f
  bind 127.0.0.1:@@fe@@
  option httplog
  http-request deny if { path /deny }
  http-request redirect location /x if { path /redir }
  use_backend b if { path_beg /api }
frontend plain
  bind 127.0.0.1:@@plain@@
  default_backend b
backend b
  server s1 127.0.0.1:@@s1@@
"""


def test_httplog_fields_and_connect_line() -> None:
    with HttpBackend("s1") as s1, LbProcess(CFG, ports={"s1": s1.port}) as lb:
        p = lb.ports["fe"]
        raw_request(p, b"GET /api/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        line = lb.wait_for_line('"GET /api/x HTTP/1.1"')
        assert re.search(r"^127\.0\.0\.1:\d+ \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] f b/s1 "
                         r"\d+/\d+/\d+/\d+/\d+ 200 \d+ - - ---- \d+/\d+/\d+/\d+/0 0/0 "
                         r'"GET /api/x HTTP/1\.1"$', line), line
        raw_request(p, b"GET /none HTTP/1.1\r\n\r\n", until_close=False)
        line = lb.wait_for_line('"GET /none HTTP/1.1"')
        # Ta (the last timer) is 0 ms on an idle machine, as HAProxy logged it above
        assert re.search(r" f f/<NOSRV> -1/-1/-1/-1/\d+ 503 217 - - SC-- ", line), line
        raw_request(p, b"BAD\r\n\r\n")
        line = lb.wait_for_line('"<BADREQ>"')
        assert re.search(r" f f/<NOSRV> -1/-1/-1/-1/\d+ 400 0 - - PR-- ", line), line
        raw_request(p, b"GET /deny HTTP/1.1\r\n\r\n", until_close=False)
        line = lb.wait_for_line('"GET /deny HTTP/1.1"')
        assert re.search(r" f f/<NOSRV> \d+/-1/-1/-1/\d+ 403 192 - - PR-- ", line), line
        raw_request(p, b"GET /redir HTTP/1.1\r\n\r\n", until_close=False)
        line = lb.wait_for_line('"GET /redir HTTP/1.1"')
        assert re.search(r" f f/<NOSRV> \d+/-1/-1/-1/\d+ 302 83 - - LR-- ", line), line
        raw_request(lb.ports["plain"], b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        line = lb.wait_for_line("Connect from 127.0.0.1:")
        assert line.endswith(f"to 127.0.0.1:{lb.ports['plain']} (plain/HTTP)")
