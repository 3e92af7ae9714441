"""One lazily re-armed deadline per connection.

Owns: ``Deadline``: activity moves a float forward and the loop handle re-arms itself
only when it fires early, so touching a deadline on every chunk costs one
``loop.time()`` call and no handle churn (ARCHITECTURE §7.5).

Must not import: anything from lb above layer L0.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Deadline:
    __slots__ = ("loop", "cb", "when", "handle", "handle_when", "delay")

    def __init__(self, loop: asyncio.AbstractEventLoop, cb: Callable[[], None]) -> None:
        self.loop = loop
        self.cb = cb
        # the expiry on the loop's clock and the delay an activity pushes it by;
        # -1.0 for none (C doubles when compiled: no float object per arm or touch)
        self.when = -1.0
        self.handle: asyncio.TimerHandle | None = None
        self.handle_when = 0.0
        self.delay = -1.0

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
            now = self.loop.time()
        when = now + self.delay
        self.when = when
        if self.handle is None or self.handle_when > when:
            if self.handle is not None:
                self.handle.cancel()
            self.handle = self.loop.call_at(when, self._fire)
            self.handle_when = when

    def touch(self, now: float = -1.0) -> None:
        """Activity: push the expiry forward by the current delay (``now`` as in
        ``arm``)."""
        if self.delay >= 0.0:
            if now < 0.0:
                now = self.loop.time()
            self.when = now + self.delay

    def cancel(self) -> None:
        """Lazy: the loop handle stays and is reused by the next arm() when it
        fires no later than needed (keep-alive re-arms cost nothing then)."""
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
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def _fire(self) -> None:
        self.handle = None
        when = self.when
        if when < 0.0:
            return
        if self.loop.time() < when - 0.0005:
            self.handle = self.loop.call_at(when, self._fire)
            self.handle_when = when
            return
        self.when = -1.0
        self.delay = -1.0
        self.cb()


def _stopped() -> None:
    """The callback of a stopped deadline."""
