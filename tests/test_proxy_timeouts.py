"""Timeouts and their status / termination codes (spec §9).

Checked against HAProxy 2.6.12 on loopback: an idle new connection gets the
capitalised 408 and logs `cR`; tarpit answers 500 and
logs `PT`; a silent server gives 504 `sH` (see test_proxy_http.py); an idle keep-alive
connection is closed silently.
"""

from __future__ import annotations

import socket
import time

from lb.http import responses
from tests.backends import HttpBackend
from tests.lbproc import LbThread, raw_request

CFG = """
defaults
  mode http
  timeout client 700ms
  timeout server 5s
  timeout connect 1s
  timeout http-request 500ms
  timeout http-keep-alive 400ms
frontend f
  bind 127.0.0.1:@@fe@@
  http-request tarpit if { path /tarpit }
  http-request tarpit deny_status 429 if { path /tarpit429 }
  timeout tarpit 300ms
  default_backend b
backend b
  server s1 127.0.0.1:@@s1@@
"""


def test_timeouts() -> None:
    with HttpBackend("s1") as s1, LbThread(CFG, ports={"s1": s1.port}) as lb:
        p = lb.ports["fe"]
        # brand-new idle connection: 408 (parser form), cR, <BADREQ>
        t0 = time.monotonic()
        r = raw_request(p, b"", timeout=5)
        assert r == responses.PARSER_408
        assert 0.3 < time.monotonic() - t0 < 4
        t = lb.wait_txns(1)[0]
        assert (t.status, t.term, t.request_line) == (408, b"cR", None)

        # a partial head is also 408
        r = raw_request(p, b"GET / HTTP/1.1\r\nHost: x\r\n", timeout=5)
        assert r == responses.PARSER_408
        assert s1.requests == []

        # keep-alive idle: silent close after http-keep-alive, nothing logged
        with socket.create_connection(("127.0.0.1", p), timeout=5) as c:
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            first = c.recv(1000)
            assert first.endswith(b"s1")
            n = len(lb.txns)
            t0 = time.monotonic()
            assert c.recv(1000) == b""
            assert 0.2 < time.monotonic() - t0 < 4
            time.sleep(0.1)
            assert len(lb.txns) == n

        # (a stalled body upload: tests/test_upload_stall.py, against HAProxy)

        # tarpit: held, then 500 (or the deny_status), PT
        n = len(lb.txns)
        t0 = time.monotonic()
        r = raw_request(p, b"GET /tarpit HTTP/1.1\r\n\r\n", timeout=5, until_close=False)
        assert time.monotonic() - t0 >= 0.25
        assert r == responses.error_page(500)
        r = raw_request(p, b"GET /tarpit429 HTTP/1.1\r\n\r\n", timeout=5, until_close=False)
        assert r.startswith(b"HTTP/1.1 429 Too Many Requests\r\n")
        ts = lb.wait_txns(n + 2)[n:]
        assert [(t.status, t.term, t.server_name) for t in ts] == \
            [(500, b"PT", None), (429, b"PT", None)]


def test_maxconn_excess_waits() -> None:
    cfg = """
defaults
  mode http
  timeout client 5s
  timeout server 5s
  timeout connect 1s
frontend f
  bind 127.0.0.1:@@fe@@
  maxconn 1
  default_backend b
backend b
  server s1 127.0.0.1:@@s1@@
"""
    with HttpBackend("s1") as s1, LbThread(cfg, ports={"s1": s1.port}) as lb:
        p = lb.ports["fe"]
        a = socket.create_connection(("127.0.0.1", p), timeout=5)
        b = socket.create_connection(("127.0.0.1", p), timeout=5)
        b.sendall(b"GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        b.settimeout(0.5)
        try:
            got = b.recv(100)
        except TimeoutError:
            got = b""
        assert got == b""  # waiting: not served while `a` holds the only slot
        assert lb.state.frontends["f"].status == "FULL"
        a.close()
        b.settimeout(5)
        assert b.recv(1000).startswith(b"HTTP/1.1 200")
        b.close()


def test_global_maxconn_wakes_other_frontend() -> None:
    cfg = """
global
  maxconn 1
defaults
  mode http
  timeout client 5s
  timeout server 5s
  timeout connect 1s
frontend fa
  bind 127.0.0.1:@@a@@
  default_backend b
frontend fb
  bind 127.0.0.1:@@b@@
  default_backend b
backend b
  server s1 127.0.0.1:@@s1@@
"""
    with HttpBackend("s1") as s1, LbThread(cfg, ports={"s1": s1.port}) as lb:
        holder = socket.create_connection(("127.0.0.1", lb.ports["a"]), timeout=5)
        time.sleep(0.2)
        waiter = socket.create_connection(("127.0.0.1", lb.ports["b"]), timeout=5)
        waiter.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        waiter.settimeout(0.5)
        try:
            got = waiter.recv(100)
        except TimeoutError:
            got = b""
        assert got == b""  # the only global slot is held on the other frontend
        holder.close()
        waiter.settimeout(5)
        assert waiter.recv(1000).startswith(b"HTTP/1.1 200")
        waiter.close()
