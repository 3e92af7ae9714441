"""The shapes a connection's first read can take, end to end on lb's own loop.

Pipelined requests in the read that carries the connect (reading stays paused
while the first is in flight, and the answers come in order), a client reset
before anything was read (the connection is counted out), a request followed at
once by the client's end (answered), and a request that comes well after the
connect (read when it comes).

These guard any change to how a connection's first bytes are read. One such
change was tried in the thirty-third session (docs/performance.md): reading the
request within connection_made. uvloop starts reading once connection_made
returns whatever the protocol asked meanwhile, so a pause asked by that read was
lost; the pipelining test here is the one that caught it.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from lb.proxy.client import PAUSE_PIPELINE
from tests.lbproc import LbThread, RawBackend, raw_request

pytestmark = pytest.mark.timeout(60)

CFG = """
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    timeout http-request 5s
frontend fe
    bind 127.0.0.1:@@fe@@
    default_backend b
backend b
    server s1 127.0.0.1:@@s1@@
"""


def _held_answers(release: threading.Event) -> Any:
    """A backend that reads requests one at a time and answers each with its
    number once ``release`` is set."""

    def handler(c: socket.socket, be: RawBackend) -> None:
        buf = b""
        n = 0
        while True:
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            head, buf = buf.split(b"\r\n\r\n", 1)
            be.received.append(head)
            release.wait(20)
            n += 1
            body = b"answer %d" % n
            c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))

    return handler


@contextmanager
def _proxied(release: threading.Event) -> Iterator[tuple[LbThread, RawBackend]]:
    with RawBackend(_held_answers(release)) as be:
        lb = LbThread(CFG, {"s1": be.port}).start()
        try:
            yield lb, be
        finally:
            release.set()
            lb.stop()


def _conns(lb: LbThread) -> list[Any]:
    return lb.call(lambda: list(lb.rt.conns))


def _wait(pred: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.01)


def test_pipelined_requests_in_the_first_read_keep_reading_paused() -> None:
    release = threading.Event()
    with _proxied(release) as (lb, be):
        req = b"GET /%d HTTP/1.1\r\nhost: a\r\n\r\n"
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=5) as s:
            s.sendall(b"".join(req % i for i in range(3)))  # with the connect
            _wait(lambda: len(be.received) == 1)
            time.sleep(0.1)  # a few loop turns for a read that should not happen

            def paused_state() -> list[tuple[int, bool]]:
                return [(c.paused, c.transport.is_reading()) for c in lb.rt.conns]

            states = lb.call(paused_state)
            assert states == [(PAUSE_PIPELINE, False)], states
            assert be.received == [b"GET /0 HTTP/1.1\r\nhost: a"]
            release.set()
            got = b""
            while got.count(b"answer") < 3:
                d = s.recv(65536)
                assert d, got
                got += d
        assert [got.index(b"answer %d" % i) for i in (1, 2, 3)] == sorted(
            got.index(b"answer %d" % i) for i in (1, 2, 3))
        assert [h.split(b" ")[1] for h in be.received] == [b"/0", b"/1", b"/2"]


def test_a_client_reset_before_its_first_read_is_counted_out() -> None:
    release = threading.Event()
    release.set()
    with _proxied(release) as (lb, be):
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", lb.ports["fe"]))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()  # a reset, most likely before lb has read anything
        _wait(lambda: lb.call(lambda: (lb.rt.actconn, lb.rt.state.curr_conns)) == (0, 0))
        out = raw_request(lb.ports["fe"], b"GET / HTTP/1.1\r\nhost: a\r\n\r\n",
                          until_close=False)
        assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"answer 1"), out
        assert be.accepted == 1


def test_a_request_followed_by_the_clients_end_is_answered() -> None:
    release = threading.Event()
    release.set()
    with _proxied(release) as (lb, be):
        out = raw_request(lb.ports["fe"], b"GET / HTTP/1.1\r\nhost: a\r\n\r\n", shut=True)
        assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"answer 1"), out


def test_a_request_sent_after_the_connect_is_read_when_it_comes() -> None:
    release = threading.Event()
    release.set()
    with _proxied(release) as (lb, be):
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=5) as s:
            _wait(lambda: len(_conns(lb)) == 1)  # made, and nothing to read yet
            time.sleep(0.05)
            s.sendall(b"GET /late HTTP/1.1\r\nhost: a\r\n\r\n")
            got = b""
            while not got.endswith(b"answer 1"):
                d = s.recv(65536)
                assert d, got
                got += d
        assert be.received == [b"GET /late HTTP/1.1\r\nhost: a"]
