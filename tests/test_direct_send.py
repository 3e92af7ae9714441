"""The data plane's own send(2) (compiled lb on uvloop, lb.proxy.sockio): bytes keep
their order when socket buffers fill, part of a write is sent and the rest is queued
in the transport, and later writes must wait behind it: in a tunnel both ways, and for
HTTP requests and responses on kept-alive connections.

The tests run lb in this process (LbThread), so the modules are the compiled ones when
the build is fresh and the pure-Python ones otherwise; both must relay exactly.
"""

from __future__ import annotations

import random
import socket
import threading
import time

import lb.proxy.sockio as sockio
from tests.backends import HttpBackend, Request
from tests.lbproc import LbThread, RawBackend

COMPILED = sockio.__file__.endswith(".so")

CFG = """
defaults
  mode tcp
  timeout client 20s
  timeout server 20s
  timeout connect 2s
frontend f
  bind 127.0.0.1:@@fe@@
  default_backend b
backend b
  server s1 127.0.0.1:@@s1@@
"""
SIZE = 8 * 1024 * 1024
STALL = 0.4  # seconds each reader waits before reading: the buffers fill meanwhile


def _stream(seed: int) -> bytes:
    return random.Random(seed).randbytes(SIZE)


def _send_in_odd_chunks(s: socket.socket, data: bytes, seed: int) -> None:
    rng = random.Random(seed)
    off = 0
    while off < len(data):
        n = rng.choice((1, 7, 1500, 16384, 65536, 200_000))
        s.sendall(data[off:off + n])
        off += n


def _recv_exactly(s: socket.socket, n: int) -> bytes:
    got = bytearray()
    while len(got) < n:
        d = s.recv(min(1 << 20, n - len(got)))
        if not d:
            break
        got += d
    return bytes(got)


def test_both_directions_keep_their_order_through_full_buffers() -> None:
    up, down = _stream(1), _stream(2)
    result: dict[str, bytes] = {}

    def backend(c: socket.socket, rb: RawBackend) -> None:
        c.settimeout(30)
        sender = threading.Thread(target=_send_in_odd_chunks, args=(c, down, 3))
        sender.start()
        time.sleep(STALL)
        result["up"] = _recv_exactly(c, SIZE)
        sender.join(30)

    with RawBackend(backend) as rb, LbThread(CFG, {"s1": rb.port}) as lbt:
        c = socket.create_connection(("127.0.0.1", lbt.ports["fe"]), timeout=30)
        sender = threading.Thread(target=_send_in_odd_chunks, args=(c, up, 4))
        sender.start()
        time.sleep(STALL)
        # a TCP session is not in State.tunnels: its client connection holds it
        tunnels = [conn.tunnel for conn in list(lbt.state.streams.values())]
        got_down = _recv_exactly(c, SIZE)
        sender.join(30)
        deadline = time.monotonic() + 10
        while "up" not in result and time.monotonic() < deadline:
            time.sleep(0.02)
        c.close()

    assert got_down == down
    assert result.get("up") == up
    # the compiled pump sent on the sockets itself; pure Python wrote through uvloop
    assert len(tunnels) == 1
    tun = tunnels[0]
    if COMPILED:
        assert tun.cfd >= 0 and tun.sfd >= 0
    else:
        assert tun.cfd == -1 and tun.sfd == -1


HTTP_CFG = CFG.replace("mode tcp", "mode http")
BODY = 1024 * 1024


def _body(req: Request) -> tuple[int, list[tuple[str, str]], bytes]:
    n = int(req.path.rsplit("/", 1)[1])
    return 200, [("x-n", str(n))], random.Random(n).randbytes(BODY)


def test_kept_alive_http_requests_and_responses_arrive_whole_and_in_order() -> None:
    rounds = 6
    with HttpBackend(handler=_body) as be, LbThread(HTTP_CFG, {"s1": be.port}) as lbt:
        c = socket.create_connection(("127.0.0.1", lbt.ports["fe"]), timeout=30)
        # all the requests at once (pipelined), then a pause: lb's writes to this
        # client fill the socket buffers and part of them waits in the transport
        c.sendall(b"".join(b"GET /n/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i
                           for i in range(rounds)))
        time.sleep(STALL)
        streams = list(lbt.state.streams.values())
        for i in range(rounds):
            head = b""
            while b"\r\n\r\n" not in head:
                head += c.recv(1)
            assert head.startswith(b"HTTP/1.1 200") and b"x-n: %d\r\n" % i in head, head
            assert _recv_exactly(c, BODY) == random.Random(i).randbytes(BODY), i
        c.close()
        pools = [list(p) for p in lbt.rt.backends["b"].idle.values()]
    assert len(be.requests) == rounds
    (conn,) = streams
    servers = [sc for pool in pools for sc in pool]
    if COMPILED:
        assert conn.fd >= 0  # the client's descriptor, from the accept
        assert servers and all(sc.fd >= 0 for sc in servers)  # looked up at the 2nd write
    else:
        assert conn.fd == -1 and all(sc.fd < 0 for sc in servers)


# a body from lb.proxy.txn._JOIN_MAX bytes on is sent beside its head (sendmsg of
# the two, compiled), a smaller one copied behind it; sizes on both sides of that
SIZES = (0, 1, 4095, 4096, 4097, 9000, 16383, 16384, 16385, 65536, 150_000, 2, 4096 * 3)


def _sized(req: Request) -> tuple[int, list[tuple[str, str]], bytes]:
    i = int(req.path.rsplit("/", 1)[1])
    # heads of up to 6 KB: a partial send ends inside a head too
    return (200, [("x-n", str(i)), ("x-pad", "p" * (i * 1700 % 6000))],
            random.Random(100 + i).randbytes(SIZES[i]))


def _read_response(c: socket.socket, rng: random.Random) -> tuple[bytes, bytes]:
    head = b""
    while b"\r\n\r\n" not in head:
        d = c.recv(1)
        assert d, head
        head += d
    n = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    body = bytearray()
    while len(body) < n:
        d = c.recv(min(rng.choice((1, 100, 1500, 4096, 70_000)), n - len(body)))
        assert d
        body += d
    return head, bytes(body)


def test_heads_sent_beside_their_bodies_arrive_whole_through_small_buffers() -> None:
    """Heads with bodies of every size around the join limit, pipelined, to a client
    that reads in odd pieces through small socket buffers (tune.sndbuf.client and a
    small receive buffer): lb's sends are often partial, so the rest of a head and
    body sent together must follow from the transport in order."""
    cfg = "global\n  tune.sndbuf.client 4096\n" + HTTP_CFG
    rng = random.Random(7)
    with HttpBackend(handler=_sized) as be, LbThread(cfg, {"s1": be.port}) as lbt:
        for stall in (0.0, STALL):
            c = socket.socket()
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            c.settimeout(30)
            c.connect(("127.0.0.1", lbt.ports["fe"]))
            c.sendall(b"".join(b"GET /n/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i
                               for i in range(len(SIZES))))
            time.sleep(stall)
            for i, size in enumerate(SIZES):
                head, body = _read_response(c, rng)
                assert head.startswith(b"HTTP/1.1 200") and b"x-n: %d\r\n" % i in head
                assert body == random.Random(100 + i).randbytes(size), (i, size)
            c.close()
        assert len(be.requests) == 2 * len(SIZES)


def test_transport_state_read_as_c_calls_agrees_with_the_methods() -> None:
    """``busy`` and ``closing`` (every send asks them) read uvloop's methods through
    their C functions when compiled: bound at import, and answering as the methods do
    for an open transport, one holding unsent bytes, and a closing one."""
    import asyncio

    import uvloop

    if COMPILED:
        assert sockio.UV_METHODS_BOUND  # a uvloop release changed its methods' kind
    seen: list[tuple[str, bool, bool, bool, bool]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        listener = socket.create_server(("127.0.0.1", 0))
        listener.setblocking(False)
        port = listener.getsockname()[1]
        tr, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        peer, _ = await loop.sock_accept(listener)
        assert type(tr).__name__ == "TCPTransport"
        tr.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)

        def look(state: str) -> None:
            seen.append((state, sockio.busy(tr), sockio.closing(tr),
                         tr.is_closing(), tr.get_write_buffer_size() > 0))

        look("open")
        tr.write(b"x" * (4 << 20))  # the peer reads nothing: most of it stays queued
        look("queued")
        tr.abort()
        look("closing")
        peer.close()
        listener.close()
        await asyncio.sleep(0)

    uvloop.run(main())
    assert seen == [("open", False, False, False, False),
                    ("queued", True, False, False, True),
                    ("closing", True, True, True, True)]
