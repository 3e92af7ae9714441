"""lb.proxy.drive.Driven: coroutines stepped without asyncio Tasks.

The two coroutines it runs in lb (uvloop's connect_accepted_socket and
create_connection) are exercised end to end by every proxy test; these tests pin
the Task-like contract the listener and Txn rely on, on uvloop as in production.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import uvloop

from lb.proxy.drive import Driven


async def _outcome(loop: asyncio.AbstractEventLoop, coro: Any) -> Driven:
    """Drive ``coro`` and wait (at most a second) for its done callback."""
    seen: list[Driven] = []
    Driven(loop, coro, seen.append)
    for _ in range(100):
        if seen:
            break
        await asyncio.sleep(0.01)
    assert len(seen) == 1
    return seen[0]


def _run(body: Any) -> Any:
    loop = uvloop.new_event_loop()
    try:
        return loop.run_until_complete(body(loop))
    finally:
        loop.close()


def test_result_is_reported_from_the_loop_after_the_awaited_future() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        fut = loop.create_future()
        steps: list[str] = []

        async def coro() -> str:
            steps.append("started")
            value = await fut
            steps.append("resumed")
            return value * 2

        seen: list[Driven] = []
        d = Driven(loop, coro(), seen.append)
        assert steps == ["started"]  # the first step runs at once, without a loop turn
        assert not d.done()
        loop.call_soon(fut.set_result, "ab")
        for _ in range(3):
            await asyncio.sleep(0)
        assert steps == ["started", "resumed"]
        assert seen == [d] and d.done() and not d.cancelled()
        assert d.exception() is None and d.result() == "abab"
    _run(body)


def test_an_immediate_outcome_is_reported_on_a_later_turn() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        async def fails() -> None:
            raise OSError(24, "Too many open files")

        seen: list[Driven] = []
        d = Driven(loop, fails(), seen.append)
        assert d.done() and seen == []  # never inside the call that started it
        await asyncio.sleep(0)
        assert seen == [d]
        err = d.exception()
        assert isinstance(err, OSError) and err.errno == 24
        with pytest.raises(OSError):
            d.result()
    _run(body)


def test_cancel_cancels_the_awaited_future_and_the_coroutine_cleans_up_next_turn() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        fut = loop.create_future()
        cleaned: list[bool] = []

        async def coro() -> None:
            try:
                await fut
            except asyncio.CancelledError:
                cleaned.append(True)  # what uvloop does: close the half-made transport
                raise

        seen: list[Driven] = []
        d = Driven(loop, coro(), seen.append)
        assert d.cancel() is True
        # the future at once; the throw waits for its done callback, on a later turn,
        # behind anything already scheduled (uvloop's connection_made)
        assert fut.cancelled() and cleaned == [] and not d.done()
        await asyncio.sleep(0)
        assert cleaned == [True] and seen == [d] and d.cancelled()
        with pytest.raises(asyncio.CancelledError):
            d.exception()
        assert d.cancel() is False  # already over
    _run(body)


def test_cancel_after_the_awaited_future_is_done_still_stops_the_coroutine() -> None:
    """The waiter of a connect that completed on this turn: its result is set and the
    wakeup scheduled when the exchange is cancelled. The coroutine must not return a
    connection nobody will own."""
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        fut = loop.create_future()
        cleaned: list[bool] = []

        async def coro() -> str:
            try:
                return await fut
            except asyncio.CancelledError:
                cleaned.append(True)
                raise

        seen: list[Driven] = []
        d = Driven(loop, coro(), seen.append)
        fut.set_result("connection")
        assert d.cancel() is True
        await asyncio.sleep(0)
        assert cleaned == [True] and seen == [d] and d.cancelled()
    _run(body)


def test_cancel_during_a_bare_yield() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        steps: list[str] = []

        async def coro() -> None:
            await asyncio.sleep(0)
            steps.append("after the yield")

        seen: list[Driven] = []
        d = Driven(loop, coro(), seen.append)
        assert d.cancel() is True
        for _ in range(3):
            await asyncio.sleep(0)
        assert steps == [] and seen == [d] and d.cancelled()
    _run(body)


def test_bare_yields_and_several_awaits() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        async def coro() -> int:
            await asyncio.sleep(0)
            await asyncio.sleep(0.01)
            return 7

        seen: list[Driven] = []
        Driven(loop, coro(), seen.append)
        await asyncio.sleep(0.1)
        assert len(seen) == 1 and seen[0].result() == 7
    _run(body)


def test_a_real_connect_refused_and_a_real_connection() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()  # nothing listens there
        refused = await _outcome(
            loop, loop.create_connection(asyncio.Protocol, "127.0.0.1", port))
        assert isinstance(refused.exception(), ConnectionRefusedError)

        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        made = await _outcome(
            loop, loop.create_connection(asyncio.Protocol, "127.0.0.1", port))
        transport, _ = made.result()
        assert transport.get_extra_info("peername")[1] == port
        transport.close()
        server.close()
        await server.wait_closed()
    _run(body)


def test_cancelling_a_real_connect_closes_the_half_made_connection() -> None:
    """Txn cancels a server connect on timeout or abort: uvloop must close it."""
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(8)
        made: list[asyncio.BaseTransport] = []

        class Proto(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                made.append(transport)

        seen: list[Driven] = []
        d = Driven(loop, loop.create_connection(Proto, *lsock.getsockname()), seen.append)
        d.cancel()
        for _ in range(20):
            await asyncio.sleep(0.005)
        assert seen == [d] and d.cancelled()
        assert all(t.is_closing() for t in made)
        lsock.settimeout(2)
        conn, _ = lsock.accept()  # the kernel completed the handshake; lb hung up
        conn.settimeout(2)
        try:
            assert conn.recv(10) == b""
        except ConnectionResetError:
            pass
        conn.close()
        lsock.close()
    _run(body)


# the script runs in a child process: on the unfixed path uvloop dies of SIGSEGV
_SAME_TURN = Path(__file__).with_name("drive_same_turn.py")


@pytest.mark.parametrize("pure", [False, True], ids=["compiled", "pure"])
@pytest.mark.parametrize("path", ["own", "sock"])
def test_cancel_on_the_turn_a_connect_completes_does_not_crash(path: str,
                                                                pure: bool) -> None:
    """An exchange ended on the poll turn that completed its server connect.

    uvloop has then scheduled connection_made for the new transport. A throw into
    create_connection at once closes that transport, libuv frees its handle at the end
    of the turn, and uvloop 0.23's connection_made reads the freed handle (SIGSEGV,
    seen in tests/test_conformance.py, twenty-first session). ``own``: uvloop's connect;
    ``sock``: create_connection(sock=...) after sock_connect, the tune.*buf.server path.
    """
    env = dict(os.environ)
    env.pop("LB_PURE_PYTHON", None)
    if pure:
        env["LB_PURE_PYTHON"] = "1"
    proc = subprocess.run([sys.executable, str(_SAME_TURN), path], env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    # cancelled; connection_made ran once; the half-made connection was hung up;
    # no descriptor left behind
    assert proc.stdout.split() == ["cancelled", "made=1", "eof", "fds=same"], proc.stdout
