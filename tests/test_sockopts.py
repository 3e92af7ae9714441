"""Kernel socket buffer sizes from global ``tune.rcvbuf.*``/``tune.sndbuf.*``: they
reach the sockets lb accepts (through the listening socket) and the sockets it
connects with (set before the connect), and a server connection made that way
resolves, fails and retries as any other. The effect on a flood a client does not
read is in tests/test_limits.py (…with_small_socket_buffers_holds_little)."""

from __future__ import annotations

import asyncio
import os
import socket
import time

import pytest

import lb.config.model as m
from lb.proxy import sockopts
from tests.backends import HttpBackend
from tests.lbproc import ONE_SERVER_HTTP, Blackhole, LbThread, free_port, has_ipv6_loopback

CFG = """
global
  tune.rcvbuf.client 32768
  tune.sndbuf.client 49152
  tune.rcvbuf.server 40960
  tune.sndbuf.server 57344
""" + ONE_SERVER_HTTP


def _get(port: int, conn: socket.socket | None = None) -> bytes:
    """One request; on ``conn`` the connection stays open (the answer is s1's two
    bytes), else it is closed after the answer."""
    c = conn or socket.create_connection(("127.0.0.1", port), timeout=5)
    c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n"
              + (b"\r\n" if conn else b"Connection: close\r\n\r\n"))
    out = b""
    while not (conn and out.endswith(b"\r\n\r\ns1")):
        d = c.recv(65536)
        if not d:
            break
        out += d
    if conn is None:
        c.close()
    return out


def _sizes(tr: object) -> tuple[int, int]:
    sock = tr.get_extra_info("socket")  # type: ignore[attr-defined]
    return (sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))


def test_buffer_sizes_reach_accepted_and_server_sockets() -> None:
    with HttpBackend() as be:
        with LbThread(CFG, {"s1": be.port}) as lb, socket.create_connection(
                ("127.0.0.1", lb.ports["fe"]), timeout=5) as c:
            assert _get(lb.ports["fe"], c).startswith(b"HTTP/1.1 200")

            def look() -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
                clients = [_sizes(cc.transport) for cc in lb.rt.conns]
                idle = [_sizes(sc.transport) for pool in lb.rt.backends["b"].idle.values()
                        for sc in pool]
                return clients, idle

            clients, idle = lb.call(look)
    # Linux doubles what it is given, for its bookkeeping, and reports that
    assert clients == [(2 * 32768, 2 * 49152)]
    assert idle == [(2 * 40960, 2 * 57344)]


def test_without_tune_lines_the_kernel_sizes_buffers() -> None:
    with HttpBackend() as be:
        with LbThread(ONE_SERVER_HTTP, {"s1": be.port}) as lb, socket.create_connection(
                ("127.0.0.1", lb.ports["fe"]), timeout=5) as c:
            assert _get(lb.ports["fe"], c).startswith(b"HTTP/1.1 200")
            clients = lb.call(lambda: [_sizes(cc.transport) for cc in lb.rt.conns])
    assert lb.rt is None and len(clients) == 1
    assert clients[0] != (2 * 32768, 2 * 49152)


def test_server_by_name_and_a_refused_server_with_buffer_sizes() -> None:
    with HttpBackend() as be:
        by_name = CFG.replace("127.0.0.1:@@s1@@", "localhost:@@s1@@")
        with LbThread(by_name, {"s1": be.port}) as lb:
            assert _get(lb.ports["fe"]).startswith(b"HTTP/1.1 200")
    # a refused connect is retried after min(1 s, timeout connect)
    quick = CFG.replace("timeout connect 1s", "timeout connect 100ms")
    with LbThread(quick, {"s1": free_port()}) as lb:
        out = _get(lb.ports["fe"])
        assert out.startswith(b"HTTP/1.1 503"), out
        (txn,) = lb.wait_txns(1)
        srv = lb.state.backends["b"].servers[0]
        assert srv.counters.connect == 4  # the first attempt and `retries 3`
        assert bytes(txn.term) == b"SC"
        time.sleep(0.2)
        fds = len(os.listdir("/proc/self/fd"))
        for _ in range(5):
            assert _get(lb.ports["fe"]).startswith(b"HTTP/1.1 503")
        time.sleep(0.2)
        assert srv.counters.connect == 24
        assert len(os.listdir("/proc/self/fd")) <= fds  # refused sockets were closed


def test_connect_timeout_while_the_tuned_connect_waits() -> None:
    """`timeout connect` cancels lb's own connect coroutine mid-connect: 503 `sC`
    after the retries, and each cancelled socket is closed."""
    quick = CFG.replace("timeout connect 1s", "timeout connect 150ms")
    with Blackhole() as hole, LbThread(quick, {"s1": hole.port}) as lb:
        out = _get(lb.ports["fe"])
        assert out.startswith(b"HTTP/1.1 503"), out
        (txn,) = lb.wait_txns(1)
        assert bytes(txn.term) == b"sC"
        fds = len(os.listdir("/proc/self/fd"))
        assert _get(lb.ports["fe"]).startswith(b"HTTP/1.1 503")
        time.sleep(0.2)
        assert lb.state.backends["b"].servers[0].counters.connect == 8
        assert len(os.listdir("/proc/self/fd")) <= fds


def test_health_checks_connect_with_the_server_buffer_sizes(monkeypatch) -> None:
    """As in HAProxy, a check's socket gets tune.rcvbuf/sndbuf.server too: the check
    goes through sockopts.connect with them, and still sees its server."""
    from healthcheck import check_once
    from healthcheck import runner as hc_runner
    from lb.config.model import CheckSpec, Global
    from lb.state import State
    from tests.healthcheck_support import LogSink, backend, checking, server, wait_for

    seen: list[tuple[str, int, sockopts.SockOpts, tuple[int, int]]] = []
    real = sockopts.connect

    async def recording(loop, factory, host, port, opts, source=None):  # type: ignore[no-untyped-def]
        tr, proto = await real(loop, factory, host, port, opts, source)
        seen.append((host, port, opts, _sizes(tr)))
        return tr, proto

    monkeypatch.setattr(hc_runner.sockopts, "connect", recording)
    with HttpBackend() as be_srv:
        be = backend([server("s1", be_srv.port)], CheckSpec())
        g = Global(tune_rcvbuf_server=40960, tune_sndbuf_server=57344)
        st = State(m.Config(global_=g, proxies=(be,)))
        result = asyncio.run(check_once(st.backends["b"].servers[0], be))
        plain = State(m.Config(proxies=(be,)))
        assert asyncio.run(check_once(plain.backends["b"].servers[0], be)).status == "L4OK"

        async def scheduled() -> None:  # the checker that runs inside lb
            async with checking(st, LogSink()):
                await wait_for(lambda: len(seen) == 2)

        asyncio.run(scheduled())
    assert result.status == "L4OK"
    opts = ((socket.SOL_SOCKET, socket.SO_RCVBUF, 40960),
            (socket.SOL_SOCKET, socket.SO_SNDBUF, 57344))
    assert seen == [("127.0.0.1", be_srv.port, opts, (2 * 40960, 2 * 57344))] * 2


def test_connect_tries_each_address_and_reports_the_last_error() -> None:
    async def go() -> None:
        loop = asyncio.get_running_loop()
        opts = sockopts.buffer_options(65536, 0)
        srv = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        tr, proto = await sockopts.connect(loop, asyncio.Protocol, "127.0.0.1", port, opts)
        assert isinstance(proto, asyncio.Protocol)
        assert _sizes(tr)[0] == 2 * 65536
        tr.close()
        srv.close()
        with pytest.raises(ConnectionRefusedError):
            await sockopts.connect(loop, asyncio.Protocol, "127.0.0.1", free_port(), opts)
        if has_ipv6_loopback():
            srv6 = await loop.create_server(asyncio.Protocol, "::1", 0)
            port6 = srv6.sockets[0].getsockname()[1]
            tr, _ = await sockopts.connect(loop, asyncio.Protocol, "::1", port6, opts)
            assert tr.get_extra_info("peername")[0] == "::1"
            tr.close()
            srv6.close()

    import uvloop
    uvloop.run(go())


def test_buffer_options_leave_zero_to_the_kernel() -> None:
    assert sockopts.buffer_options(0, 0) == ()
    assert sockopts.buffer_options(0, 4096) == ((socket.SOL_SOCKET, socket.SO_SNDBUF, 4096),)
