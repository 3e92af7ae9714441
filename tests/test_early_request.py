"""A request that leaves in the pass of its connect, before uvloop's transport exists
(lb.proxy.server.dial_now, adopt; docs/dataplane.md, "Opening server connections").

lb dials a server itself when a socket option goes on before the SYN, which in HTTP
mode is always (smart connect is lb's default there). A connection that is up as
``connect()`` returns takes its request at once, on the bare descriptor. What the
kernel does not take then is written, in order, once the transport exists; what
follows meanwhile (more of a body) queues behind it; a connection its exchange gave
up before its transport came is reset. These tests drive each of those with real
sockets, on lb's own loop, and through lb for bodies that outgrow a new socket's
first send.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from typing import Any

import pytest

from lb.proxy import server as srvmod
from lb.proxy.drive import Driven
from tests.lbproc import LbThread, raw_request

pytestmark = pytest.mark.timeout(60)

CFG = """
global
    tune.sndbuf.server 65536
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:@@fe@@
    default_backend b
backend b
{backend}
    server s1 127.0.0.1:@@s1@@
"""


class _BodyDigestServer:
    """Answers each request with the SHA-256 of its body (Content-Length or chunked,
    decoded), then closes."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            f = conn.makefile("rb")
            length = -1
            chunked = False
            while True:
                line = f.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
                elif name.strip().lower() == b"transfer-encoding":
                    chunked = True
            h = hashlib.sha256()
            if chunked:
                while True:
                    size = int(f.readline().split(b";")[0], 16)
                    if size == 0:
                        f.readline()
                        break
                    h.update(f.read(size))
                    f.readline()
            elif length > 0:
                h.update(f.read(length))
            body = h.hexdigest().encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s"
                         % (len(body), body))

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("backend", ["", "    no option tcp-smart-connect"],
                         ids=["lb-dials", "event-loop-connects"])
def test_a_body_larger_than_a_new_sockets_first_send_arrives_whole(backend: str) -> None:
    """A 3 MB body sent with its head: the part read with the head is written with
    it, at the connect, and does not all fit in the new socket; the rest of the body
    arrives meanwhile. The server must see every byte in order."""
    body = bytes(range(256)) * (3 * 4096)
    srv = _BodyDigestServer()
    try:
        with LbThread(CFG.format(backend=backend), {"s1": srv.port}) as lb:
            assert lb.rt.backends["b"].smart == (0 if backend else 1)
            head = (b"POST /up HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(body))
            out = raw_request(lb.ports["fe"], head + body, timeout=20)
            assert out.startswith(b"HTTP/1.1 200"), out[:200]
            assert out.endswith(hashlib.sha256(body).hexdigest().encode())
            chunks = [b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:70000], body[70000:])]
            head = (b"POST /up HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n")
            out = raw_request(lb.ports["fe"], head + b"".join(chunks) + b"0\r\n\r\n",
                              timeout=20)
            assert out.endswith(hashlib.sha256(body).hexdigest().encode()), out[:200]
    finally:
        srv.close()


class _Collector:
    """Accepts one connection and reads it to its end: the bytes, and how it ended."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # (inherited)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.data = b""
        self.ended = ""
        self.done = threading.Event()
        self.go = threading.Event()  # read only once told: the kernel fills up first
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        self.sock.settimeout(3)
        try:
            conn, _ = self.sock.accept()
        except OSError:  # (a handshake that smart connect never finished)
            self.ended = "never accepted"
            self.done.set()
            return
        with conn:
            conn.settimeout(10)
            self.go.wait(10)
            try:
                while True:
                    d = conn.recv(1 << 20)
                    if not d:
                        self.ended = "eof"
                        break
                    self.data += d
            except ConnectionResetError:
                self.ended = "reset"
            except OSError as e:
                self.ended = repr(e)
        self.done.set()

    def close(self) -> None:
        self.sock.close()


def _dial(lb: LbThread, port: int) -> Any:
    """dial_now to ``port`` on lb's loop, for a connection no exchange waits for."""
    be = lb.rt.backends["b"]
    dialed = srvmod.dial_now(be, be.st.servers[0], "127.0.0.1", port, None)
    assert dialed is not None
    sc, target = dialed
    assert sc.dialer is None and sc.transport is None  # up at once, on loopback
    return sc, target


def _until(lb: LbThread, cond: Any) -> None:
    deadline = time.monotonic() + 10
    while not lb.call(cond):
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_bytes_the_kernel_does_not_take_at_once_follow_in_order() -> None:
    """Writes before the transport exists: the first leaves on the descriptor at the
    end of the pass, what the kernel leaves over and every later write wait in order,
    and the transport writes them all once it is made."""
    parts = [bytes([65 + i]) * 1_500_000 for i in range(3)]
    col = _Collector()
    try:
        with LbThread(CFG.format(backend=""), {"s1": col.port}) as lb:
            def start() -> Any:
                sc, target = _dial(lb, col.port)
                sc.send(parts[0])  # far more than a new socket takes
                sc.write_many([parts[1][:10], parts[1][10:]])
                state = (sc.unsent is not None, lb.rt.sendq.items != [])
                lb.rt.sendq.flush()  # the end of the pass: the send is tried
                left = sum(len(p) for p in sc.unsent or ())
                sc.send(parts[2])  # after the partial send, before the transport
                Driven(lb.rt.loop, srvmod.adopt(lb.rt.loop, sc, target), sc.adopted)
                return state, left, sc

            (kept, queued), left, sc = lb.call(start)
            assert kept and queued  # nothing was sent inside send() itself
            assert 0 < left < 3_000_000  # some taken at once, not all
            col.go.set()
            _until(lb, lambda: sc.transport is not None and sc.unsent is None)
            lb.call(sc.close)
            assert col.done.wait(10)
    finally:
        col.close()
    assert col.data == b"".join(parts)
    assert col.ended == "eof"


def test_a_connection_given_up_before_its_transport_is_reset() -> None:
    """Nothing leaves on it. The handshake's last ACK was held for the request
    (smart connect), so the server may never see the connection at all."""
    col = _Collector()
    col.go.set()
    try:
        with LbThread(CFG.format(backend=""), {"s1": col.port}) as lb:
            def start() -> Any:
                sc, target = _dial(lb, col.port)
                sc.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                sc.close()  # the exchange ended (client gone) in the same turn
                Driven(lb.rt.loop, srvmod.adopt(lb.rt.loop, sc, target), sc.adopted)
                return sc

            sc = lb.call(start)
            assert col.done.wait(10)
            _until(lb, lambda: sc.transport is not None and sc.transport.is_closing())
    finally:
        col.close()
    assert col.data == b""  # nothing sent once given up
    assert col.ended in ("reset", "never accepted")
