"""Framing headers on bodiless responses, as HAProxy 2.6.12 forwards them.

Checked against HAProxy 2.6.12 (tools/conformance): a 204 that carries
Content-Length reaches the client without it; a 304 keeps it (it describes the
resource, not this message).
"""

from __future__ import annotations

import socket

import pytest

from tests.lbproc import LbProcess, RawBackend, raw_request

CFG = """
defaults
  mode http
  timeout client 5s
  timeout server 5s
  timeout connect 2s
frontend f
  bind 127.0.0.1:@@fe@@
  default_backend b
backend b
  server s1 127.0.0.1:@@s1@@
"""


def answer(head: bytes):
    def handler(c: socket.socket, be: RawBackend) -> None:
        be.recv_head(c)
        c.sendall(head)
        c.close()
    return handler


@pytest.mark.parametrize("status, kept", [(204, False), (304, True)])
def test_content_length_on_bodiless_status(status: int, kept: bool) -> None:
    head = (f"HTTP/1.1 {status} X\r\ncontent-length: 5\r\nx-a: 1\r\n"
            "connection: close\r\n\r\n").encode()
    with RawBackend(answer(head)) as be, LbProcess(CFG, ports={"s1": be.port}) as lb:
        resp = raw_request(lb.ports["fe"],
                           b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert resp.startswith(f"HTTP/1.1 {status} ".encode())
    assert b"x-a: 1" in resp
    assert (b"content-length: 5" in resp.lower()) is kept
    assert resp.endswith(b"\r\n\r\n")  # no body either way
