"""maxconn (frontend and global) leaves excess connections in the kernel backlog.

Issue #3: "excess connections wait in the kernel backlog". lb runs its own accept
loop and stops accepting while a limit is reached, so a connection over the limit
completes its TCP handshake (the kernel does that) but lb never accepts it until a
slot frees. The proof reads the listening socket's accept queue from
/proc/net/tcp (for a LISTEN socket, rx_queue is the number of connections waiting
to be accepted) and lb's own counters (`conn_tot` only counts accepted ones, `scur`
and `smax` never pass maxconn).

Checked against HAProxy 2.6.12 with `maxconn 1` on a frontend: the second client's
connect() succeeds and sits in the accept queue (/proc/net/tcp rx_queue 1), `show
stat` says scur 1, and the queue empties as soon as the first client closes. One
difference, kept on purpose: HAProxy 2.6.12 still shows the frontend `OPEN` while it
is full; lb shows `FULL` (a status the stats column defines, spec §5.4), which is
what a person reading `show stat` wants to know.
"""

from __future__ import annotations

import socket
import time

import pytest

from lb import stats_core
from tests.backends import HttpBackend
from tests.lbproc import LbThread

pytestmark = pytest.mark.timeout(30)

ONE = """
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

GLOBAL = """
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


def accept_queue(port: int) -> int:
    """Connections waiting in the kernel accept queue of 127.0.0.1:port (LISTEN)."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == want and fields[3] == "0A":  # 0A = LISTEN
                return int(fields[4].split(":")[1], 16)
    raise AssertionError(f"no listening socket on port {port}")


def wait_until(pred, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def get(s: socket.socket) -> bytes:
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    s.settimeout(5)
    data = b""
    while True:
        d = s.recv(4096)
        if not d:
            return data
        data += d


def stat_row(lb: LbThread, name: str) -> dict[str, str]:
    csv = lb.call(lambda: stats_core.show_stat(lb.state, time.time()))
    lines = csv.splitlines()
    head = lines[0].lstrip("# ").split(",")
    for line in lines[1:]:
        row = dict(zip(head, line.split(","), strict=False))
        if row.get("pxname") == name and row.get("svname") == "FRONTEND":
            return row
    raise AssertionError(f"no FRONTEND row for {name}")


def test_over_frontend_maxconn_waits_in_kernel_backlog() -> None:
    with HttpBackend("s1") as s1, LbThread(ONE, ports={"s1": s1.port}) as lb:
        port = lb.ports["fe"]
        fst = lb.state.frontends["f"]
        holder = socket.create_connection(("127.0.0.1", port), timeout=5)
        assert wait_until(lambda: fst.counters.conn_tot == 1)
        waiter = socket.create_connection(("127.0.0.1", port), timeout=5)  # kernel accepts
        waiter.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        # the connection sits in the listening socket's accept queue, not in lb
        assert wait_until(lambda: accept_queue(port) == 1)
        time.sleep(0.3)
        assert accept_queue(port) == 1
        assert fst.counters.conn_tot == 1  # lb accepted only the first one
        assert fst.counters.scur == 1
        assert fst.status == "FULL"
        row = stat_row(lb, "f")
        assert row["scur"] == "1" and row["slim"] == "1" and row["status"] == "FULL"
        waiter.setblocking(False)
        with pytest.raises(BlockingIOError):
            waiter.recv(100)  # not answered while over maxconn
        waiter.setblocking(True)
        holder.close()
        waiter.settimeout(5)
        resp = b""
        while True:
            d = waiter.recv(4096)
            if not d:
                break
            resp += d
        assert resp.startswith(b"HTTP/1.1 200")
        waiter.close()
        assert wait_until(lambda: fst.counters.scur == 0)
        assert accept_queue(port) == 0
        assert fst.counters.conn_tot == 2
        assert fst.counters.smax == 1  # scur never went over maxconn
        assert fst.status == "OPEN"
        assert stat_row(lb, "f")["status"] == "OPEN"


def test_many_waiters_are_all_served_in_turn() -> None:
    # the kernel queue is sized by `backlog` (default: the frontend's maxconn, as
    # HAProxy), so eight waiters need a larger one
    cfg = ONE.replace("  maxconn 1\n", "  maxconn 1\n  backlog 16\n")
    with HttpBackend("s1") as s1, LbThread(cfg, ports={"s1": s1.port}) as lb:
        port = lb.ports["fe"]
        socks = [socket.create_connection(("127.0.0.1", port), timeout=5)
                 for _ in range(8)]
        for s in socks:
            assert get(s).startswith(b"HTTP/1.1 200")
            s.close()
        c = lb.state.frontends["f"].counters
        assert wait_until(lambda: c.scur == 0)
        assert c.conn_tot == 8 and c.smax == 1


def test_global_maxconn_holds_every_frontend_and_frees_across() -> None:
    with HttpBackend("s1") as s1, LbThread(GLOBAL, ports={"s1": s1.port}) as lb:
        pa, pb = lb.ports["a"], lb.ports["b"]
        fa, fb = lb.state.frontends["fa"], lb.state.frontends["fb"]
        holder = socket.create_connection(("127.0.0.1", pa), timeout=5)
        assert wait_until(lambda: fa.counters.conn_tot == 1)
        waiter = socket.create_connection(("127.0.0.1", pb), timeout=5)
        assert wait_until(lambda: accept_queue(pb) == 1)
        time.sleep(0.3)
        assert fb.counters.conn_tot == 0  # the only global slot is held on fa
        assert fb.status == "OPEN"  # a global limit does not make a frontend FULL
        holder.close()
        assert get(waiter).startswith(b"HTTP/1.1 200")
        waiter.close()
        assert fb.counters.conn_tot == 1
        assert accept_queue(pb) == 0


def test_pause_and_resume_with_a_full_frontend() -> None:
    """SIGTTOU/SIGTTIN use the same switch: a resume while full does not accept."""
    with HttpBackend("s1") as s1, LbThread(ONE, ports={"s1": s1.port}) as lb:
        port = lb.ports["fe"]
        fst = lb.state.frontends["f"]
        holder = socket.create_connection(("127.0.0.1", port), timeout=5)
        assert wait_until(lambda: fst.counters.conn_tot == 1)
        lst = lb.rt.listeners[0]
        lb.call(lst.pause)
        lb.call(lst.resume)  # still full: stays off
        waiter = socket.create_connection(("127.0.0.1", port), timeout=5)
        assert wait_until(lambda: accept_queue(port) == 1)
        time.sleep(0.2)
        assert fst.counters.conn_tot == 1
        lb.call(lst.pause)
        holder.close()
        assert wait_until(lambda: fst.counters.scur == 0)
        time.sleep(0.2)
        assert accept_queue(port) == 1  # paused: a freed slot does not accept
        lb.call(lst.resume)
        assert get(waiter).startswith(b"HTTP/1.1 200")
        waiter.close()


TCP = """
defaults
  mode tcp
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


def test_tcp_mode_frontend_waits_in_backlog_too() -> None:
    with HttpBackend("s1") as s1, LbThread(TCP, ports={"s1": s1.port}) as lb:
        port = lb.ports["fe"]
        fst = lb.state.frontends["f"]
        holder = socket.create_connection(("127.0.0.1", port), timeout=5)
        assert wait_until(lambda: fst.counters.conn_tot == 1)
        waiter = socket.create_connection(("127.0.0.1", port), timeout=5)
        assert wait_until(lambda: accept_queue(port) == 1)
        time.sleep(0.2)
        assert fst.counters.conn_tot == 1 and fst.counters.scur == 1
        holder.close()
        assert get(waiter).startswith(b"HTTP/1.1 200")  # relayed to the HTTP server
        waiter.close()
        assert fst.counters.conn_tot == 2 and fst.counters.smax == 1


def test_unix_socket_bind_goes_through_the_same_accept_loop(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "fe.sock")
    cfg = ONE.replace("  bind 127.0.0.1:@@fe@@\n", f"  bind 127.0.0.1:@@fe@@\n  bind {path}\n")
    with HttpBackend("s1") as s1, LbThread(cfg, ports={"s1": s1.port}) as lb:
        holder = socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=5)
        c = lb.state.frontends["f"].counters
        assert wait_until(lambda: c.conn_tot == 1)
        u = socket.socket(socket.AF_UNIX)
        u.settimeout(5)
        u.connect(path)  # the kernel queues it; lb does not accept while full
        time.sleep(0.3)
        assert c.conn_tot == 1
        holder.close()
        assert get(u).startswith(b"HTTP/1.1 200")
        u.close()
        assert c.conn_tot == 2 and c.smax == 1


@pytest.mark.parametrize("family", ["inet", "inet6", "unix"])
def test_accepted_socket_objects_carry_the_listeners_family_and_type(
        tmp_path, family: str) -> None:  # type: ignore[no-untyped-def]
    """The listener wraps each accepted descriptor in a class whose family and type are
    the listening socket's (uvloop picks the TCP or unix transport from them)."""
    from lb.proxy.listener import accepted_socket_class

    if family == "unix":
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lsock.bind(str(tmp_path / "s"))
    elif family == "inet6":
        lsock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        try:
            lsock.bind(("::1", 0))
        except OSError:
            lsock.close()
            pytest.skip("no IPv6 loopback here")
    else:
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    with lsock, socket.socket(lsock.family, socket.SOCK_STREAM) as client:
        client.connect(lsock.getsockname())
        fd, _ = lsock._accept()  # type: ignore[attr-defined]
        accepted = accepted_socket_class(lsock)(fileno=fd)
        with accepted:
            assert accepted.family is lsock.family and accepted.type is lsock.type
            assert isinstance(accepted, socket.socket)
            client.sendall(b"ping")
            accepted.settimeout(5)
            assert accepted.recv(4) == b"ping"
            assert accepted.getsockname() == lsock.getsockname()


def test_uvloop_takes_an_accepted_descriptor_without_a_socket_object() -> None:
    """On uvloop the listener hands `connect_accepted_socket` a stand-in, not a
    `socket.socket` (which costs a getsockname(2) per connection): the transport
    reads and writes through it, its close leaves the stand-in without a descriptor
    (libuv closed it), and `discard()` closes a descriptor no transport took."""
    import asyncio
    import os

    import uvloop

    from lb.proxy.listener import accepted_socket_class

    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    light = accepted_socket_class(lsock, light=True)
    assert not issubclass(light, socket.socket)
    assert light.family == socket.AF_INET and light.type == socket.SOCK_STREAM

    got: list[bytes] = []

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.tr = transport

        def data_received(self, data: bytes) -> None:
            got.append(data)
            self.tr.write(data.upper())  # type: ignore[attr-defined]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with lsock, socket.socket() as client:
            client.connect(lsock.getsockname())
            fd, _ = lsock._accept()  # type: ignore[attr-defined]
            stand_in = light(fileno=fd)
            tr, _proto = await loop.connect_accepted_socket(Echo, stand_in)
            assert tr.get_extra_info("peername") == client.getsockname()
            client.sendall(b"ping")
            await asyncio.sleep(0.05)
            client.settimeout(5)
            assert client.recv(4) == b"PING" and got == [b"ping"]
            tr.close()
            await asyncio.sleep(0.05)
            assert stand_in.fd == -1
            assert client.recv(4) == b""  # the descriptor is closed: end of stream
            stand_in.discard()  # nothing left to close: no error

            with socket.socket() as other:
                other.connect(lsock.getsockname())
                fd2, _ = lsock._accept()  # type: ignore[attr-defined]
                unserved = light(fileno=fd2)
                unserved.discard()
                assert unserved.fd == -1
                with pytest.raises(OSError):
                    os.fstat(fd2)
                other.settimeout(5)
                assert other.recv(4) == b""

    uvloop.run(main())
