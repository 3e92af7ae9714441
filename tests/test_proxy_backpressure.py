"""Backpressure: a client that stops reading while the server floods does not make
the proxy buffer the flood (HTTP body and WebSocket tunnel); memory stays bounded."""

from __future__ import annotations

import socket
import time

from lb.http import h1
from tests.lbproc import MB, STALL_LIMIT, LbProcess, RawBackend

CFG = """
defaults
  mode http
  timeout client 20s
  timeout server 20s
  timeout connect 2s
  timeout tunnel 20s
frontend f
  bind 127.0.0.1:@@fe@@
  default_backend b
backend b
  server s1 127.0.0.1:@@s1@@
"""
FLOOD = max(128 * MB, STALL_LIMIT + 32 * MB)
CHUNK = b"x" * 65536


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _flood(c: socket.socket, sent: list[int]) -> None:
    c.settimeout(30)
    total = 0
    try:
        while total < FLOOD:
            c.sendall(CHUNK)
            total += len(CHUNK)
            sent[0] = total
    except OSError:
        pass


def _server(c: socket.socket, rb: RawBackend) -> None:
    head = rb.recv_head(c)
    if b"upgrade" in head.lower():
        key = [ln.split(b":", 1)[1].strip() for ln in head.split(b"\r\n")
               if ln.lower().startswith(b"sec-websocket-key")][0]
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + h1.ws_accept(key)
                  + b"\r\n\r\n")
    else:
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % FLOOD)
    _flood(c, rb.sent)  # type: ignore[attr-defined]


def _check(request: bytes) -> None:
    rb = RawBackend(_server)
    rb.sent = [0]  # type: ignore[attr-defined]
    with rb, LbProcess(CFG, ports={"s1": rb.port}) as lb:
        base = _rss_kb(lb.pid)
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=10) as c:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            c.sendall(request)
            time.sleep(2.0)  # not reading: the flood must stall
            stalled_at = rb.sent[0]  # type: ignore[attr-defined]
            time.sleep(0.5)
            grown = _rss_kb(lb.pid) - base
            assert rb.sent[0] < STALL_LIMIT  # type: ignore[attr-defined]
            assert rb.sent[0] - stalled_at < 4 * 1024 * 1024  # type: ignore[attr-defined]
            assert grown < 32 * 1024, f"RSS grew by {grown} kB"
            # then read a good part of it: the flow resumes
            got = 0
            deadline = time.monotonic() + 20
            while got < 16 * 1024 * 1024 and time.monotonic() < deadline:
                d = c.recv(1 << 20)
                if not d:
                    break
                got += len(d)
            assert got >= 16 * 1024 * 1024
            assert _rss_kb(lb.pid) - base < 32 * 1024


def test_http_body_flood_client_not_reading() -> None:
    _check(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")


def test_tunnel_flood_client_not_reading() -> None:
    _check(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
           b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
