"""A server connection whose exchange is complete is closed with a reset, as HAProxy
closes it, so that lb's end never sits in TIME_WAIT.

Seen on HAProxy 2.6.12 (strace, `option http-server-close`): after the response,
`setsockopt(SO_LINGER, {1, 0})` then `close()` on the server socket, every request;
the same when a keep-alive client leaves and its server connection is closed. The
server reads ECONNRESET where a FIN would give it end-of-file. lb does the same when
it closes first: with FIN, the closing side keeps the connection in TIME_WAIT for a
minute, and toward a server on another host (where the kernel does not reuse those
ports for new connections) lb would hold one local port per request and run out at
a few hundred requests a second. A WebSocket or TCP tunnel still ends with a FIN
(bytes may still be on their way): its close path is not this one.

The backend here keeps its connections open whatever the request says (as servers
that ignore `Connection: close` do), so lb or HAProxy is the side that closes, and
it records what its next read on each connection gave.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import pytest

from tests.lbproc import RawBackend
from tests.support_e2e import HAPROXY, lb_or_haproxy

pytestmark = pytest.mark.timeout(60)

KINDS = ["lb", "haproxy"] if os.path.exists(HAPROXY) else ["lb"]

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Server: s1\r\n\r\nok"


class StubbornBackend(RawBackend):
    """Answers each request on a connection and never closes first; records, per
    connection, how the connection ended from its side: "reset" (ECONNRESET) or
    "fin" (end-of-file)."""

    def __init__(self) -> None:
        super().__init__(self._answer)
        self.ends: list[str] = []

    @staticmethod
    def _answer(c: socket.socket, self: StubbornBackend) -> None:
        end = "fin"
        try:
            while self.recv_head(c, timeout=20).endswith(b"\r\n\r\n"):
                c.sendall(RESPONSE)
        except ConnectionResetError:
            end = "reset"
        self.ends.append(end)

    def wait_ends(self, n: int, timeout: float = 10.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.ends) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.ends)


def config(mode_lines: str, frontend_lines: str = "") -> str:
    return f"""
defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s
{mode_lines}
frontend fe
    bind 127.0.0.1:@@fe@@
{frontend_lines}
    default_backend be
backend be
    server s1 127.0.0.1:@@s1@@
"""


def requests_on_one_connection(port: int, n: int) -> list[bytes]:
    """n requests on one keep-alive client connection; the status lines."""
    out = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        for _ in range(n):
            c.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            got = b""
            while not got.endswith(b"\r\n\r\nok"):
                chunk = c.recv(65536)
                assert chunk, got
                got += chunk
            out.append(got.split(b"\r\n", 1)[0])
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_server_close_resets_the_server_connection_after_each_response(kind: str) -> None:
    with StubbornBackend() as be, lb_or_haproxy(
            kind, config("    option http-server-close"), {"s1": be.port}) as px:
        assert requests_on_one_connection(px.ports["fe"], 3) == [b"HTTP/1.1 200 OK"] * 3
        assert be.wait_ends(3) == ["reset"] * 3, be.ends
        assert [h.split(b"\r\n", 1)[0] for h in be.received] == [b"GET / HTTP/1.1"] * 3


@pytest.mark.parametrize("kind", KINDS)
def test_http_reuse_never_resets_the_server_connection_when_the_client_leaves(
        kind: str) -> None:
    with StubbornBackend() as be, lb_or_haproxy(
            kind, config("    http-reuse never"), {"s1": be.port}) as px:
        assert requests_on_one_connection(px.ports["fe"], 1) == [b"HTTP/1.1 200 OK"]
        assert be.wait_ends(1) == ["reset"], be.ends


def test_a_server_that_closes_first_still_serves_every_request() -> None:
    """A server that honours `Connection: close` ends each connection itself, maybe
    before lb reads the response: closing after it (with or without the reset) must
    not cost the client its response or its keep-alive connection."""
    def answer_and_close(c: socket.socket, be: RawBackend) -> None:
        be.recv_head(c)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        c.close()

    with RawBackend(answer_and_close) as be, lb_or_haproxy(
            "lb", config("    option http-server-close"), {"s1": be.port}) as px:
        assert requests_on_one_connection(px.ports["fe"], 3) == [b"HTTP/1.1 200 OK"] * 3
        assert be.accepted == 3


def test_the_reset_is_a_linger_of_zero_on_the_server_socket() -> None:
    """`reset_on_close` sets SO_LINGER {on, 0} on the transport's socket, through its
    descriptor when the caller knows it (the compiled path) or the socket object."""
    import asyncio
    import struct

    from lb.proxy.sockio import reset_on_close, send_fd

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        sock = tr.get_extra_info("socket")
        before = sock.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)
        reset_on_close(tr, send_fd(tr))
        after = sock.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)
        tr.close()
        server.close()
        return before, after

    import uvloop

    before, after = uvloop.run(main())
    assert struct.unpack("ii", before) == (0, 0)
    assert struct.unpack("ii", after) == (1, 0)


@pytest.mark.parametrize("kind", KINDS)
def test_frontend_httpclose_closes_the_server_side_too(kind: str) -> None:
    """`option httpclose` in the frontend alone: HAProxy 2.6.12 sends
    `connection: close` upstream (19 more bytes per request in strace) and resets the
    server connection after the response, as with `http-server-close`; the client
    gets `connection: close` and its connection ends."""
    text = config("", "    option httpclose")
    with StubbornBackend() as be, lb_or_haproxy(kind, text, {"s1": be.port}) as px:
        for _ in range(2):
            with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=10) as c:
                c.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                got = b""
                while chunk := c.recv(65536):
                    got += chunk
            head = got.split(b"\r\n\r\n", 1)[0].lower()
            assert head.startswith(b"http/1.1 200 ok") and b"\r\nconnection: close" in head
        assert be.wait_ends(2) == ["reset"] * 2, be.ends
        heads = [h.lower() for h in be.received]
        assert len(heads) == 2 and all(b"\r\nconnection: close\r\n" in h for h in heads), heads
