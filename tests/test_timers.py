"""Connection deadlines on one timer wheel (lb.proxy.timers), on uvloop and asyncio.

The end-to-end timeout behaviour (client, server, tunnel, http-request ...) is in
test_proxy_timeouts.py and test_ws_tunnel.py; these check the wheel itself: never
early, re-filing on touch and earlier re-arms, cancel and stop, a failing callback,
callbacks that re-arm at once, and the bound on the buckets kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from lb.proxy.timers import Deadline, TimerWheel, expiry_key

LOOPS = {"uvloop": uvloop.new_event_loop, "asyncio": asyncio.new_event_loop}


def run(kind: str, body: Callable[[asyncio.AbstractEventLoop], Coroutine[Any, Any, Any]]) -> Any:
    loop = LOOPS[kind]()
    try:
        return loop.run_until_complete(body(loop))
    finally:
        loop.close()


@pytest.mark.parametrize("kind", LOOPS)
def test_deadlines_fire_in_order_and_never_early(kind: str) -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> list[tuple[str, float, float]]:
        wheel = TimerWheel(loop)
        fired: list[tuple[str, float, float]] = []
        for name, delay in (("c", 0.09), ("a", 0.03), ("b", 0.06)):
            d = Deadline(wheel, lambda n=name: fired.append((n, loop.time(), d_when[n])))
            d.arm(delay)
            d_when[name] = d.when
        await asyncio.sleep(0.2)
        return fired

    d_when: dict[str, float] = {}
    fired = run(kind, body)
    assert [n for n, _, _ in fired] == ["a", "b", "c"]
    for _, at, when in fired:
        assert at >= when - 0.001  # the loop clock's millisecond, at most


@pytest.mark.parametrize("kind", LOOPS)
def test_touch_pushes_the_expiry_and_an_earlier_arm_moves_it(kind: str) -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> dict[str, float]:
        wheel = TimerWheel(loop)
        t0 = loop.time()
        out: dict[str, float] = {}
        touched = Deadline(wheel, lambda: out.setdefault("touched", loop.time() - t0))
        touched.arm(0.05)
        earlier = Deadline(wheel, lambda: out.setdefault("earlier", loop.time() - t0))
        earlier.arm(1.0)
        earlier.arm(0.03)  # filed for 1 s: must be re-filed to fire at 30 ms
        await asyncio.sleep(0.035)
        touched.touch()  # due at 50 ms, now about 35 + 50 ms
        await asyncio.sleep(0.2)
        return out

    out = run(kind, body)
    assert 0.029 <= out["earlier"] < 0.5
    assert out["touched"] >= 0.084


@pytest.mark.parametrize("kind", LOOPS)
def test_cancel_and_stop_keep_a_deadline_from_firing(kind: str) -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> tuple[list[str], TimerWheel]:
        wheel = TimerWheel(loop)
        fired: list[str] = []
        cancelled = Deadline(wheel, lambda: fired.append("cancelled"))
        stopped = Deadline(wheel, lambda: fired.append("stopped"))
        rearmed = Deadline(wheel, lambda: fired.append("rearmed"))
        for d in (cancelled, stopped, rearmed):
            d.arm(0.02)
        cancelled.cancel()
        stopped.stop()
        assert stopped.key == -1.0
        assert all(stopped not in b for b in wheel.buckets.values())
        rearmed.cancel()
        rearmed.arm(0.04)  # a lazy cancel leaves the bucket; the new arm still fires
        await asyncio.sleep(0.1)
        return fired, wheel

    fired, wheel = run(kind, body)
    assert fired == ["rearmed"]
    assert wheel.buckets == {} and wheel.keys == [] and wheel.handle is None


@pytest.mark.parametrize("kind", LOOPS)
def test_a_failing_callback_loses_no_other_deadline(kind: str) -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> tuple[list[int], list[str]]:
        wheel = TimerWheel(loop)
        errors: list[str] = []
        loop.set_exception_handler(lambda _loop, ctx: errors.append(str(ctx["exception"])))
        fired: list[int] = []
        now = loop.time()

        def boom() -> None:
            raise RuntimeError("boom")

        for i in range(20):  # one bucket: the same expiry for all
            d = Deadline(wheel, boom if i == 7 else (lambda i=i: fired.append(i)))
            d.arm(0.02, None, now)
        assert len(wheel.buckets) == 1
        await asyncio.sleep(0.08)
        return fired, errors

    fired, errors = run(kind, body)
    assert sorted(fired) == [i for i in range(20) if i != 7]
    assert errors == ["boom"]


@pytest.mark.parametrize("kind", LOOPS)
def test_a_callback_rearming_at_once_does_not_hold_the_loop(kind: str) -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> tuple[int, bool]:
        wheel = TimerWheel(loop)
        count = 0

        def again() -> None:
            nonlocal count
            count += 1
            d.arm(0.0)

        d = Deadline(wheel, again)
        d.arm(0.0)
        other = asyncio.Event()
        loop.call_later(0.02, other.set)
        await asyncio.wait_for(other.wait(), 1.0)  # the loop still runs other work
        d.stop()
        return count, other.is_set()

    count, ran = run(kind, body)
    assert ran and count >= 2


def test_buckets_stay_bounded_however_many_deadlines_come_and_go() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> TimerWheel:
        wheel = TimerWheel(loop)
        base = loop.time()
        # 100,000 short connections over 100 s of loop time, each with an hour of
        # tunnel timeout and 5 s of connect timeout, all closed before expiry
        for i in range(100_000):
            now = base + i * 0.001
            tunnel = Deadline(wheel, _never)
            tunnel.arm(3600.0, None, now)
            connect = Deadline(wheel, _never)
            connect.arm(5.0, None, now)
            tunnel.stop()
            connect.stop()
        return wheel

    wheel = run("uvloop", body)
    # an hour in steps of 2,048 ms and 5 s in steps of 4 ms, over 100 s of arms
    assert len(wheel.buckets) <= 100 // 2 + 2 + 100_000 // 4 + 2
    assert len(wheel.keys) == len(wheel.buckets)
    assert all(not b for b in wheel.buckets.values())


def _never() -> None:
    raise AssertionError("a stopped deadline fired")


@pytest.mark.parametrize("delay,step", [
    (0.0, 1), (0.5, 1), (2.047, 1), (2.048, 2), (5.0, 4), (10.0, 8), (30.0, 16),
    (3600.0, 2048),
])
def test_expiry_is_rounded_up_to_a_step_of_at_most_a_thousandth(delay: float,
                                                                step: int) -> None:
    for when in (0.0, 12.3456, 1234.5678, 86400.0001):
        key = expiry_key(when, delay)
        assert key % step == 0
        assert when * 1000.0 <= key < when * 1000.0 + step
    assert step == 1 or step <= delay * 1000.0 / 1024


@pytest.mark.parametrize("kind", LOOPS)
def test_the_wheel_clock_is_the_loops_own(kind: str) -> None:
    """``TimerWheel.now`` (and so ``Runtime.clock``) reads the loop's time. Compiled on
    uvloop it reads libuv's clock in C; a reading taken between two of loop.time()'s
    lies between them, to the millisecond libuv counts in, and moves on with it."""
    from lb.proxy import timers

    async def body(loop: asyncio.AbstractEventLoop) -> None:
        wheel = TimerWheel(loop)
        compiled = timers.__file__.endswith(".so")
        assert wheel.uv_clock == (kind == "uvloop" and compiled)
        for _ in range(2000):
            a = loop.time()
            n = wheel.now()
            b = loop.time()
            assert a <= n <= b, (a, n, b)
            if kind == "uvloop":
                # whole milliseconds, as libuv's (ms / 1000 is not exact in binary: a
                # product such as 16418236.999999998 is still a whole millisecond)
                assert abs(n * 1000.0 - round(n * 1000.0)) < 1e-6, n
        before = wheel.now()
        await asyncio.sleep(0.02)
        assert 0.015 <= wheel.now() - before < 1.0

    run(kind, body)
