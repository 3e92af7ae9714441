"""The addresses of an accepted connection: src/src_port from the accept itself and
dst/dst_port from the listener when it is bound to one address, from the connection
when the bind is a wildcard (its local address then depends on the client)."""

from __future__ import annotations

import socket

import pytest

from tests.backends import HttpBackend
from tests.lbproc import LbThread, has_ipv6_loopback

CFG = """
defaults
  mode http
  timeout client 5s
  timeout server 5s
  timeout connect 1s
frontend f
  bind 127.0.0.1:@@one@@
  bind *:@@any@@
  default_backend b
backend b
  server s1 127.0.0.1:@@be@@
"""


def _get(dst: tuple[str, int], src_host: str) -> int:
    """One request from ``src_host`` to ``dst``; returns the client's port."""
    fam = socket.AF_INET6 if ":" in dst[0] else socket.AF_INET
    with socket.socket(fam) as c:
        c.settimeout(5)
        c.bind((src_host, 0))
        c.connect(dst)
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out = b""
        while d := c.recv(65536):
            out += d
        assert out.startswith(b"HTTP/1.1 200"), out
        return int(c.getsockname()[1])


def test_src_from_the_accept_and_dst_from_the_bind_or_the_connection() -> None:
    with HttpBackend() as be, LbThread(CFG, {"be": be.port}) as lb:
        port_a = _get(("127.0.0.1", lb.ports["one"]), "127.0.0.3")
        port_b = _get(("127.0.0.2", lb.ports["any"]), "127.0.0.4")
        a, b = lb.wait_txns(2)
    assert (a.src, a.src_port, a.dst, a.dst_port) == (
        "127.0.0.3", port_a, "127.0.0.1", lb.ports["one"])
    # the wildcard bind: the address the client connected to, not 0.0.0.0
    assert (b.src, b.src_port, b.dst, b.dst_port) == (
        "127.0.0.4", port_b, "127.0.0.2", lb.ports["any"])


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback here")
def test_ipv6_bind_gives_ipv6_addresses() -> None:
    cfg = CFG.replace("bind *:@@any@@", "bind ::1:@@six@@")
    with HttpBackend() as be, LbThread(cfg, {"be": be.port}) as lb:
        port = _get(("::1", lb.ports["six"]), "::1")
        (t,) = lb.wait_txns(1)
    assert (t.src, t.src_port, t.dst, t.dst_port) == ("::1", port, "::1", lb.ports["six"])
