"""The sends of one turn of the event loop leave together at its end
(lb.proxy.sockio.SendQueue), and nothing overtakes or loses them.

Queued sends are what let lb's sends leave in bursts, as HAProxy's do, so that a
server or client is woken once for many requests (docs/performance.md, twenty-seventh
session). Their risk is order: any other write to, or close of, a connection with
bytes queued must send those first. These tests hold the queue to that with real
sockets: a turn's sends on uvloop, a call among them (a connect), bytes for a closed
transport, and through lb an interim response followed by a chunked one in the same
read, a 100-continue, a client that half-closes, and a FIN processed in the turn that
queued the response.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest
import uvloop

from lb.proxy.sockio import SendQueue
from tests.lbproc import LbThread, RawBackend, raw_request

pytestmark = pytest.mark.timeout(60)


class _CountingLoop:
    """The loop, with its call_soon calls counted."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.soon = 0

    def call_soon(self, cb: Any) -> Any:
        self.soon += 1
        return self.loop.call_soon(cb)


async def _pair(loop: asyncio.AbstractEventLoop) -> tuple[Any, socket.socket, Any]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    tr, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1",
                                         listener.getsockname()[1])
    peer, _ = await loop.sock_accept(listener)
    listener.close()
    peer.setblocking(False)
    return tr, peer, tr.get_extra_info("socket").fileno()


def _read_all(peer: socket.socket) -> bytes:
    out = b""
    while True:
        try:
            d = peer.recv(65536)
        except BlockingIOError:
            return out
        if not d:
            return out
        out += d


def test_a_turns_sends_leave_at_its_end_in_order() -> None:
    got: dict[str, Any] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        counting = _CountingLoop(loop)
        q = SendQueue(counting)
        tr, peer, fd = await _pair(loop)
        body = bytes(range(256)) * 64
        q.later(tr, fd, b"one,")
        q.later(tr, -1, b"two,")  # through the transport: same order
        q.later2(tr, fd, b"head,", body, 100)
        got["before"] = _read_all(peer)  # nothing has left yet
        got["scheduled"] = counting.soon  # one flush for the turn
        await asyncio.sleep(0)
        await asyncio.sleep(0.05)
        got["after"] = _read_all(peer)
        q.flush()  # nothing queued: nothing happens
        got["again"] = counting.soon
        tr.close()
        peer.close()
        got["body"] = body

    uvloop.run(main())
    assert got["before"] == b""
    assert got["scheduled"] == 1
    assert got["after"] == b"one,two,head," + got["body"][100:]
    assert got["again"] == 1


def test_what_a_call_queues_leaves_in_the_same_pass_after_the_calls() -> None:
    """A connect among the turn's sends queues its request (lb.proxy.server): the
    request leaves in the same pass, after every connect of the pass, and nothing is
    scheduled for the next turn."""
    got: dict[str, Any] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        counting = _CountingLoop(loop)
        q = SendQueue(counting)
        tr, peer, fd = await _pair(loop)
        order: list[str] = []

        def connect(name: str) -> None:
            order.append(name)
            q.later(tr, fd, name.encode() + b"-request,")

        q.later(tr, fd, b"first,")
        q.call(lambda: connect("a"))
        q.call(lambda: connect("b"))
        q.flush()  # the end of the turn
        got["sent"] = _read_all(peer)
        got["order"] = order
        got["scheduled"] = counting.soon
        got["left"] = list(q.items)
        tr.close()
        peer.close()

    uvloop.run(main())
    assert got["sent"] == b"first,a-request,b-request,"
    assert got["order"] == ["a", "b"]
    assert got["scheduled"] == 1 and got["left"] == []


def test_finish_now_sends_the_fin_behind_the_bytes_before_the_close() -> None:
    """lb.proxy.sockio.finish_now: the peer reads all the bytes then the end, while the
    transport is still open; with bytes still held by the transport it does nothing,
    so none is cut off."""
    from lb.proxy.sockio import finish_now, send_fd
    got: dict[str, Any] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        tr, peer, _ = await _pair(loop)
        tr.write(b"response")
        finish_now(tr, send_fd(tr))  # (-1 uncompiled: the Python path)
        await asyncio.sleep(0.05)
        got["read"] = peer.recv(100), peer.recv(100)
        got["open"] = not tr.is_closing()
        tr.close()
        peer.close()
        tr2, peer2, _ = await _pair(loop)
        big = b"x" * (8 << 20)
        tr2.write(big)  # more than the kernel takes: the transport holds the rest
        got["held"] = tr2.get_write_buffer_size() > 0
        finish_now(tr2, send_fd(tr2))
        n = 0
        while n < len(big):
            await asyncio.sleep(0)
            try:
                d = peer2.recv(1 << 20)
            except BlockingIOError:
                continue
            assert d, n  # an end before the last byte: cut off
            n += len(d)
        got["all"] = n
        tr2.close()
        peer2.close()

    uvloop.run(main())
    assert got["read"] == (b"response", b"")
    assert got["open"]
    assert got["held"] and got["all"] == 8 << 20


def test_bytes_for_a_transport_closed_meanwhile_are_dropped_others_leave() -> None:
    got: dict[str, Any] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        q = SendQueue(loop)
        tr1, peer1, fd1 = await _pair(loop)
        tr2, peer2, fd2 = await _pair(loop)
        q.later(tr1, fd1, b"lost")
        q.later(tr2, fd2, b"kept")
        tr1.abort()  # its descriptor is closed now, and may be reused
        q.flush()
        await asyncio.sleep(0.05)
        got["closed"] = _read_all(peer1)
        got["open"] = _read_all(peer2)
        tr2.close()
        peer1.close()
        peer2.close()

    uvloop.run(main())
    assert got["closed"] == b""
    assert got["open"] == b"kept"


CFG = """
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:@@fe@@
    default_backend be
backend be
    server s1 127.0.0.1:@@s1@@
"""


def _interim_then_chunked(c: socket.socket, be: Any) -> None:
    """A 103 and a chunked 200 in one write: lb reads both at once."""
    be.recv_head(c)
    c.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
              b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"5\r\nhello\r\n0\r\n\r\n")
    time.sleep(0.5)


def test_an_interim_response_stays_ahead_of_a_chunked_one_read_with_it() -> None:
    with RawBackend(_interim_then_chunked) as be, \
            LbThread(CFG, {"s1": be.port}) as lb:
        out = raw_request(lb.ports["fe"], b"GET / HTTP/1.1\r\nHost: t\r\n"
                          b"Connection: close\r\n\r\n", timeout=5)
    assert out.startswith(b"HTTP/1.1 103 Early Hints\r\n"), out
    final = out.index(b"HTTP/1.1 200 OK\r\n")
    assert out.endswith(b"5\r\nhello\r\n0\r\n\r\n"), out
    assert out.count(b"HTTP/1.1 ") == 2 and final > 0


def _after_body(c: socket.socket, be: Any) -> None:
    head = be.recv_head(c)
    body = head.split(b"\r\n\r\n", 1)[1]
    while len(body) < 4:
        body += c.recv(100)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n" + body[:4])
    time.sleep(0.5)


def test_a_100_continue_goes_first_and_the_answer_follows() -> None:
    """With `option http-buffer-request` lb answers the expectation itself."""
    cfg = CFG.replace("backend be\n", "backend be\n    option http-buffer-request\n")
    with RawBackend(_after_body) as be, LbThread(cfg, {"s1": be.port}) as lb, \
            socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=5) as c:
        c.sendall(b"PUT /x HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        first = c.recv(4096)
        c.sendall(b"data")
        rest = b""
        while b"data" not in rest:
            d = c.recv(4096)
            if not d:
                break
            rest += d
    assert first == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n") and rest.endswith(b"\r\n\r\ndata")


def _ok(c: socket.socket, be: Any) -> None:
    while be.recv_head(c):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def test_a_half_closed_client_gets_its_whole_answer() -> None:
    with RawBackend(_ok) as be, LbThread(CFG, {"s1": be.port}) as lb:
        for _ in range(20):
            out = raw_request(lb.ports["fe"], b"GET / HTTP/1.1\r\nHost: t\r\n\r\n",
                              timeout=5, shut=True)
            assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"\r\n\r\nok")


def _big(c: socket.socket, be: Any) -> None:
    if be.recv_head(c):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % _BIG + b"b" * _BIG)


_BIG = 8 << 20


def test_a_closing_answer_the_kernel_has_not_taken_is_not_cut_by_the_fin() -> None:
    """The FIN goes early (sockio.finish_now) only behind bytes all in the kernel: a
    slow client of a large answer still gets every byte, then the end."""
    with RawBackend(_big) as be, LbThread(CFG, {"s1": be.port}) as lb, \
            socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=10) as c:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        time.sleep(0.5)  # lb's transport holds what the kernel does not take
        out = b""
        while True:
            d = c.recv(1 << 20)
            if not d:
                break
            out += d
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and len(body) == _BIG


def test_a_fin_read_in_the_turn_that_queued_an_answer_does_not_lose_it() -> None:
    """uvloop closes the transport when eof_received answers falsy: the connection
    first sends what it queued. Both happen here in one callback on lb's loop, as
    when the FIN and the server's answer are read in the same turn."""
    with RawBackend(_ok) as be, LbThread(CFG, {"s1": be.port}) as lb, \
            socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=5) as c:
        c.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        first = c.recv(4096)

        def queue_then_eof() -> bool:
            (conn,) = [x for x in lb.rt.conns if x.transport is not None]
            conn.send(b"queued bytes")
            keep = conn.eof_received()
            if not keep:
                conn.transport.close()  # what uvloop does on that answer
            return bool(keep)

        keep = lb.call(queue_then_eof)
        rest = b""
        while True:
            d = c.recv(4096)
            if not d:
                break
            rest += d
    assert first.endswith(b"\r\n\r\nok")
    assert keep is False
    assert rest == b"queued bytes"


def test_a_call_runs_in_order_with_the_turns_sends() -> None:
    """``call`` (a connect, from Txn._attempt) runs at the turn's end too, after the
    sends queued before it and before those queued after it."""
    got: dict[str, Any] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        q = SendQueue(loop)
        tr, peer, fd = await _pair(loop)
        seen: list[bytes] = []

        def look() -> None:
            time.sleep(0.05)  # (loopback delivery)
            seen.append(_read_all(peer))

        q.later(tr, fd, b"before,")
        q.call(look)
        q.later(tr, fd, b"after")
        got["queued"] = list(seen)  # nothing ran yet
        await asyncio.sleep(0)
        await asyncio.sleep(0.05)
        got["seen"] = seen
        got["rest"] = _read_all(peer)
        tr.close()
        peer.close()

    uvloop.run(main())
    assert got["queued"] == []
    assert got["seen"] == [b"before,"]
    assert got["rest"] == b"after"


def test_a_failing_call_lets_the_rest_leave_then_is_raised() -> None:
    got: dict[str, Any] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        q = SendQueue(loop)
        tr, peer, fd = await _pair(loop)

        def broken() -> None:
            raise RuntimeError("dial failed")

        q.call(broken)
        q.later(tr, fd, b"still sent")
        try:
            q.flush()
        except RuntimeError as e:
            got["raised"] = str(e)
        await asyncio.sleep(0.05)
        got["peer"] = _read_all(peer)
        tr.close()
        peer.close()

    uvloop.run(main())
    assert got == {"raised": "dial failed", "peer": b"still sent"}
