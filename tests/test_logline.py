"""The compiled httplog renderer (lb.proxy.logline) writes what the generic one does.

The generic renderer (lb.logfmt.compile_traffic_format) is the reference: its
httplog output was checked field by field against HAProxy 2.6.12 (test_proxy_logs,
test_log_haproxy). Here real transactions, from real requests through lb to real
backends, are rendered by both at the moment lb logs them, and must give the same
bytes: served, cookie-inserted and cookie-bound requests, a redispatch, local replies
(503, 403, 302), a refused request, an escaped URL and a WebSocket tunnel. Fields
the loopback cannot produce (TLS, odd types) are then set by hand on a real Txn.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from websockets.sync.client import connect as ws_connect

from lb.logfmt import HTTPLOG_FORMAT, TCPLOG_FORMAT, compile_traffic_format
from lb.proxy import logline
from tests.backends import HttpBackend, WsBackend
from tests.lbproc import LbThread, free_port, raw_request

CFG = """
global
  log 127.0.0.1:@@log@@ local0
defaults
  mode http
  log global
  option httplog
  timeout client 5s
  timeout server 5s
  timeout connect 1s
  retries 1
  option redispatch
frontend fe
  bind 127.0.0.1:@@fe@@
  http-request deny if { path /deny }
  http-request redirect location /x if { path /redir }
  use_backend empty if { path_beg /empty }
  use_backend ws if { hdr(upgrade) -i websocket }
  default_backend b
frontend custom
  bind 127.0.0.1:@@custom@@
  log-format "%ci %ST %r"
  default_backend b
frontend tcpfe
  mode tcp
  bind 127.0.0.1:@@tcp@@
  default_backend tb
backend b
  cookie SRV insert indirect nocache
  server s1 127.0.0.1:@@s1@@ cookie c1
  server dead 127.0.0.1:@@dead@@ cookie c2
backend empty
backend ws
  server w1 127.0.0.1:@@w1@@
backend tb
  mode tcp
  server t1 127.0.0.1:@@s1@@
"""

REQUESTS = [
    b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",  # served, cookie inserted
    b"GET /b?q=1 HTTP/1.1\r\nHost: x\r\nCookie: SRV=c1\r\nConnection: close\r\n\r\n",
    # bound to a server that refuses connections: redispatched (%rc "+1")
    b"GET /c HTTP/1.1\r\nHost: x\r\nCookie: SRV=c2\r\nConnection: close\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    b"GET /empty HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",  # 503 <NOSRV>
    b"GET /deny HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",  # 403
    b"GET /redir HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",  # 302
    b'GET /a"b{c} HTTP/1.0\r\n\r\n',  # a quote in the URL: #22
    b"BAD\r\n\r\n",  # <BADREQ>
]


def _both(t: Any, generic: Any) -> tuple[bytes, bytes]:
    return logline.httplog(t), generic.render(t)


def test_compiled_httplog_matches_the_generic_renderer() -> None:
    generic = compile_traffic_format(HTTPLOG_FORMAT, "http")
    pairs: list[tuple[bytes, bytes]] = []
    kept: list[Any] = []
    log = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    log.bind(("127.0.0.1", 0))
    log.settimeout(5)
    dead = free_port()  # nothing listens there: connecting is refused
    try:
        with HttpBackend("s1") as s1, WsBackend("w1") as w1, LbThread(
                CFG, ports={"s1": s1.port, "w1": w1.port, "dead": dead,
                            "log": log.getsockname()[1]}) as lb:
            def hook(t: Any) -> None:  # on lb's loop, when lb logs it
                pairs.append(_both(t, generic))
                kept.append(t)
            lb.rt.txn_hook = hook
            fe = lb.rt.frontends["fe"]
            assert fe.log.fmt.render is logline.httplog  # the fast path is in use
            assert lb.rt.frontends["custom"].log.fmt.render is not logline.httplog
            assert lb.rt.frontends["tcpfe"].log.fmt.text == TCPLOG_FORMAT
            assert lb.rt.frontends["tcpfe"].log.fmt.render is not logline.httplog
            port = lb.ports["fe"]
            for req in REQUESTS:
                raw_request(port, req)
            with ws_connect(f"ws://127.0.0.1:{port}/chat", open_timeout=5) as ws:
                ws.send("hi")
                assert ws.recv(timeout=5) == "hi"
            deadline = time.monotonic() + 10
            while len(pairs) < len(REQUESTS) + 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            # the line that left for the log target is the compiled one
            sent = [log.recv(65536) for _ in range(len(REQUESTS) + 1)]
    finally:
        log.close()
    assert len(pairs) == len(REQUESTS) + 1
    for fast, ref in pairs:
        assert fast == ref
    lines = [fast for fast, _ in pairs]
    for fast in lines:
        assert any(d.endswith(fast + b"\n") or d.endswith(fast) for d in sent), fast
    text = b"\n".join(lines).decode()
    assert " fe b/s1 " in text and " - - --NI " in text  # cookie inserted
    assert " - - --VN " in text  # valid cookie
    assert "/+1 " in text  # the redispatch
    assert " fe empty/<NOSRV> " in text and " 503 " in text and " SC-- " in text
    assert " 403 " in text and " 302 " in text
    assert '"GET /a#22b{c} HTTP/1.0"' in text, text
    assert '"<BADREQ>"' in text and " 400 " in text
    assert " fe ws/w1 " in text and " 101 " in text

    # branches the loopback does not reach, on a real transaction
    t = kept[0]
    for field, value in [("frontend_tls", True), ("server_name", None),
                         ("backend_name", None), ("redispatched", True), ("retries", 3),
                         ("t_request", 1.7), ("status", True), ("bytes_out", 2**40),
                         ("t_connect", -1), ("t_active", -(2**40)), ("src", "::1"),
                         # what the compiled line leaves to the f-string: a name that
                         # is not ASCII, a request line too long for its buffer, a
                         # byte to escape in the method
                         ("server_name", "s\u00e9"), ("url", b"/" + b"u" * 5000),
                         ("method", b"G\x7fT"), ("bad_request", True)]:
        setattr(t, field, value)
        fast, ref = _both(t, generic)
        assert fast == ref, field
    assert b"fe~ fe/s\xc3\xa9 1/" in fast and b"/+3 " in fast
    assert b"/-1/" in fast and b"/-1099511627776 1 1099511627776 " in fast

