"""Connection deadlines: one lazily re-filed ``Deadline`` per leg, all of one event
loop on one loop timer.

Owns: ``TimerWheel``, which files the deadlines of one loop in buckets keyed by
their expiry in milliseconds and keeps a single loop timer for the earliest bucket,
and ``Deadline``, whose activity moves a float forward and which is re-filed only
when it comes due early. Arming, touching or stopping a deadline is a few C
operations; a loop timer per deadline cost a ``TimerHandle``, a libuv timer, a
context copy and a handle close for every connection (issue #9, docs/performance.md).
The wheel also reads the loop's clock for the proxy (``TimerWheel.now``, behind
``Runtime.clock``): compiled on uvloop, in C and equal to ``loop.time()``.

Expiry is rounded up to a step that grows with the delay, at most 1/1024 of it:
1 ms below two seconds, 4 ms for 5 s, 16 ms for 30 s, 2 s for an hour. The buckets
alive are therefore bounded (at most about 2,048 for each power of two among the
delays in use) whatever the number of connections, and a deadline never fires early.

Must not import: anything from lb above layer L0.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from heapq import heappop, heappush

try:  # True only inside the Cython-compiled copy (tools/build_accel.py)
    import cython
    COMPILED = cython.compiled
except ImportError:  # pure Python without Cython installed
    COMPILED = False


class TimerWheel:
    """The deadlines of one event loop, on one loop timer."""

    __slots__ = ("loop", "clock", "uv_clock", "buckets", "keys", "handle", "handle_key")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.clock = loop.time
        # uvloop's time() is libuv's clock, which the compiled now() reads in C
        self.uv_clock = COMPILED and type(loop).__module__.startswith("uvloop")
        self.buckets: dict[float, set[Deadline]] = {}  # expiry key (ms) -> deadlines
        self.keys: list[float] = []  # heap of the buckets' keys
        self.handle: asyncio.TimerHandle | None = None
        self.handle_key = -1.0  # the key the loop timer is set for (-1: none)

    def now(self) -> float:
        """The loop's time (``loop.time()``). Compiled, on uvloop, it is read the way
        libuv reads it, without a call into the loop and a float object (the request
        path asks several times a request, issue #9)."""
        if self.uv_clock:
            return _uv_clock_c()  # noqa: F821 (timers.pxd)
        return self.clock()

    def file(self, d: Deadline, key: float) -> None:
        """File ``d`` in the bucket ``key`` (from ``expiry_key``)."""
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = set()
            self.buckets[key] = bucket
            heappush(self.keys, key)
            if self.handle_key < 0.0 or key < self.handle_key:
                self._schedule(key)
        bucket.add(d)

    def unfile(self, d: Deadline, key: float) -> None:
        bucket = self.buckets.get(key)
        if bucket is not None:
            bucket.discard(d)

    def _schedule(self, key: float) -> None:
        if self.handle is not None:
            self.handle.cancel()
        self.handle_key = key
        # loop.time() itself, not now(): on uvloop it also brings libuv's cached time
        # up to date, and call_later adds the delay to that time (from a stale one
        # the timer would fire early and be set again)
        delay = key * 0.001 - self.clock()
        self.handle = self.loop.call_later(delay if delay > 0.0 else 0.0, self._run)

    def _run(self) -> None:
        """The loop timer: every bucket now due, earliest first. A deadline armed
        by a callback here waits for the next run, even when already due, so a
        callback that re-arms itself with no delay cannot hold the loop."""
        self.handle = None
        self.handle_key = -1.0
        # the loop clock may lag the timer by a fraction of a millisecond
        limit = self.now() * 1000.0 + 1.0
        keys = self.keys
        buckets = self.buckets
        due = []
        while keys and keys[0] <= limit:
            due.append(buckets.pop(heappop(keys)))
        for bucket in due:
            for d in bucket:
                d.key = -1.0
        for bucket in due:
            for d in bucket:
                if d.key >= 0.0:  # re-armed by a callback of this run
                    continue
                try:
                    d._due(limit)
                except Exception as e:  # one bad callback must not lose the others
                    self.loop.call_exception_handler({
                        "message": "Exception in a connection deadline callback",
                        "exception": e})
        if keys and self.handle is None:
            self._schedule(keys[0])


def expiry_key(when: float, delay: float) -> float:
    """The bucket of a deadline due at ``when`` (loop time) and armed with ``delay``:
    ``when`` in milliseconds rounded up to the delay's step, a power of two of
    milliseconds (floats throughout: C doubles when compiled)."""
    span = delay * 1000.0
    step = 1.0
    while step * 2048.0 <= span:
        step *= 2.0
    ms = when * 1000.0
    key = (ms // step) * step
    if key < ms:
        key += step
    return key


class Deadline:
    __slots__ = ("wheel", "cb", "when", "key", "delay")

    def __init__(self, wheel: TimerWheel, cb: Callable[[], None]) -> None:
        self.wheel = wheel
        self.cb = cb
        # the expiry on the loop's clock and the delay an activity pushes it by;
        # -1.0 for none (C doubles when compiled: no float object per arm or touch)
        self.when = -1.0
        self.delay = -1.0
        self.key = -1.0  # the wheel bucket this deadline is filed in (-1: none)

    def arm(self, delay: float | None, cb: Callable[[], None] | None = None,
            now: float = -1.0) -> None:
        """Expire `delay` seconds from now (None = never); optionally a new callback.
        ``now``: the loop's time when the caller has just read it (saves a read)."""
        if cb is not None:
            self.cb = cb
        if delay is None:
            self.when = -1.0
            self.delay = -1.0
            return
        self.delay = delay
        if now < 0.0:  # (two statements: a C double and a float object never mix)
            now = self.wheel.now()
        when = now + self.delay
        self.when = when
        # filed for later than needed (or not at all): file again; filed earlier,
        # the bucket's run re-files it
        if self.key < 0.0 or self.key > when * 1000.0:
            key = expiry_key(when, self.delay)
            if key != self.key:
                if self.key >= 0.0:
                    self.wheel.unfile(self, self.key)
                self.key = key
                self.wheel.file(self, key)

    def touch(self, now: float = -1.0) -> None:
        """Activity: push the expiry forward by the current delay (``now`` as in
        ``arm``)."""
        if self.delay >= 0.0:
            if now < 0.0:
                now = self.wheel.now()
            self.when = now + self.delay

    def cancel(self) -> None:
        """Lazy: the deadline stays filed and the next arm() keeps its bucket when
        that comes due no later than needed (keep-alive re-arms cost nothing then)."""
        self.when = -1.0
        self.delay = -1.0

    def stop(self) -> None:
        """Cancel for good (connection gone). The callback is dropped too: it is
        usually a bound method of the connection that owns this deadline, and that
        reference cycle would leave the closed connection to the cyclic garbage
        collector instead of freeing it at once. ``arm`` needs a callback after this."""
        self.when = -1.0
        self.delay = -1.0
        self.cb = _stopped
        if self.key >= 0.0:
            self.wheel.unfile(self, self.key)
            self.key = -1.0

    def _due(self, limit: float) -> None:
        """Its bucket came due (the wheel has unfiled it): expire, or file again
        when activity moved the expiry past ``limit`` (ms)."""
        when = self.when
        if when < 0.0:
            return
        if when * 1000.0 > limit:
            self.key = expiry_key(when, self.delay)
            self.wheel.file(self, self.key)
            return
        self.when = -1.0
        self.delay = -1.0
        self.cb()


def _stopped() -> None:
    """The callback of a stopped deadline."""
