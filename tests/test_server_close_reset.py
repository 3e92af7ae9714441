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
import threading
import time
from typing import Any

import pytest

from tests.support_e2e import HAPROXY, lb_or_haproxy

pytestmark = pytest.mark.timeout(60)

KINDS = ["lb", "haproxy"] if os.path.exists(HAPROXY) else ["lb"]

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Server: s1\r\n\r\nok"


class StubbornBackend:
    """Answers each request on a connection and never closes first; records, per
    connection, how the connection ended from its side: "reset" (ECONNRESET) or
    "fin" (end-of-file)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.ends: list[str] = []
        self.requests = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        end = "fin"
        conn.settimeout(20)
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                buf += data
                while b"\r\n\r\n" in buf:
                    _, buf = buf.split(b"\r\n\r\n", 1)
                    with self.lock:
                        self.requests += 1
                    conn.sendall(RESPONSE)
        except ConnectionResetError:
            end = "reset"
        except OSError:
            end = "error"
        finally:
            conn.close()
        with self.lock:
            self.ends.append(end)

    def wait_ends(self, n: int, timeout: float = 10.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.ends) >= n:
                    return list(self.ends)
            time.sleep(0.02)
        with self.lock:
            return list(self.ends)

    def close(self) -> None:
        self.sock.close()


def config(mode_lines: str) -> str:
    return f"""
defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s
{mode_lines}
frontend fe
    bind 127.0.0.1:@@fe@@
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
    be = StubbornBackend()
    try:
        with lb_or_haproxy(kind, config("    option http-server-close"),
                           {"s1": be.port}) as px:
            assert requests_on_one_connection(px.ports["fe"], 3) == [b"HTTP/1.1 200 OK"] * 3
            ends = be.wait_ends(3)
        assert be.requests == 3
        assert ends == ["reset"] * 3, ends
    finally:
        be.close()


@pytest.mark.parametrize("kind", KINDS)
def test_http_reuse_never_resets_the_server_connection_after_each_response(
        kind: str) -> None:
    be = StubbornBackend()
    try:
        with lb_or_haproxy(kind, config("    http-reuse never"), {"s1": be.port}) as px:
            port = px.ports["fe"]
            assert requests_on_one_connection(port, 1) == [b"HTTP/1.1 200 OK"]
            ends = be.wait_ends(1)
        assert ends[:1] == ["reset"], ends
    finally:
        be.close()


def test_a_server_that_closes_first_still_serves_every_request() -> None:
    """A server that honours `Connection: close` ends each connection itself, maybe
    before lb reads the response: closing after it (with or without the reset) must
    not cost the client its response or its keep-alive connection."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    served: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                buf = b""
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        break
                    buf += data
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                             b"Connection: close\r\n\r\nok")
                served.append(1)

    threading.Thread(target=serve, daemon=True).start()
    try:
        with lb_or_haproxy("lb", config("    option http-server-close"),
                           {"s1": srv.getsockname()[1]}) as px:
            assert requests_on_one_connection(px.ports["fe"], 3) == [b"HTTP/1.1 200 OK"] * 3
        assert len(served) == 3
    finally:
        srv.close()


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
