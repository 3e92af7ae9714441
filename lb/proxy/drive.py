"""Running the per-connection coroutines of the data plane without asyncio Tasks.

Owns: ``Driven``, which steps a coroutine by hand. Two coroutines run once per
connection: ``loop.connect_accepted_socket`` for every accepted client and
``loop.create_connection`` for every server connection. Each awaits one future (the
transport's ``connection_made``), or a few (name resolution, for a server named by
host name). An ``asyncio.Task`` around each costs a Task object, its entry in
asyncio's weak set of all tasks, a context copy and one loop turn before the first
step, for every connection (docs/performance.md, fourth session). ``Driven`` sends
into the coroutine at once and resumes it from the awaited future's done callback.

It offers the part of a Task that lb uses: ``cancel()``, ``cancelled()``,
``exception()``, ``result()`` and one done callback, which, as with a Task, always
runs from the event loop and never inside the call that started or cancelled the
coroutine. Cancelling cancels the awaited future and, as ``Task.cancel`` does, throws
``CancelledError`` into the coroutine from that future's done callback, on a later
loop turn, so uvloop closes a half-made transport. Never at once: uvloop may already
have scheduled ``connection_made`` for that transport, and uvloop 0.23 reads the
libuv handle there without checking it; a transport closed on the same turn has its
handle freed by then, and the process dies (docs/performance.md, twenty-second
session). The scheduled call runs first, as it was queued first.

Compiled, ``Driven`` is an extension type and a plain step is ``drive.pxd``'s
``send_none``: ``PyIter_Send`` hands back a returning coroutine's value without a
``StopIteration`` raised and caught.

Must not import anything from lb.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

try:
    import cython
    COMPILED = cython.compiled
except ImportError:  # pure Python without Cython installed
    COMPILED = False

# Driven.state; a done callback may read ``state``, ``value`` and ``exc`` directly
# (compiled, fields of the extension type) instead of calling the Task methods
PENDING = 0
DONE = 1
CANCELLED = 2


class Driven:
    """One coroutine, stepped from the done callbacks of the futures it awaits."""

    __slots__ = ("loop", "coro", "on_done", "state", "value", "exc", "waiting",
                 "cancelling")

    def __init__(self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any],
                 on_done: Callable[[Driven], None]) -> None:
        self.loop = loop
        self.coro = coro
        self.on_done: Callable[[Driven], None] | None = on_done
        self.state = PENDING
        self.value: Any = None
        self.exc: BaseException | None = None
        self.waiting: Any = None  # the future the coroutine awaits
        self.cancelling = False  # cancel() was called; the throw is on its way
        self._step(None, False)

    # ---- the Task interface lb uses
    def cancelled(self) -> bool:
        return self.state == CANCELLED

    def done(self) -> bool:
        return self.state != PENDING

    def exception(self) -> BaseException | None:
        if self.state == CANCELLED:
            raise asyncio.CancelledError()
        if self.state == PENDING:
            raise asyncio.InvalidStateError("coroutine still running")
        return self.exc

    def result(self) -> Any:
        exc = self.exception()
        if exc is not None:
            raise exc
        return self.value

    def cancel(self) -> bool:
        """Stop the coroutine on a later loop turn, then run the done callback."""
        if self.state != PENDING:
            return False
        self.cancelling = True
        fut = self.waiting
        if fut is not None:
            # a pending future schedules its callbacks (our _wakeup) now; a done one
            # already did, after whatever it woke itself
            fut.cancel()
        # else a bare yield has _again scheduled
        return True

    # ---- stepping
    def _wakeup(self, fut: Any) -> None:
        if fut is not self.waiting:
            return
        self.waiting = None
        self._resume()

    def _again(self) -> None:
        if self.state == PENDING and self.waiting is None:
            self._resume()

    def _resume(self) -> None:
        if self.cancelling:
            self.cancelling = False
            self._step(asyncio.CancelledError(), True)
        else:
            self._step(None, True)

    def _step(self, exc: BaseException | None, from_loop: bool) -> None:
        coro = self.coro
        try:
            if COMPILED and exc is None:
                if send_none(self):  # noqa: F821 (drive.pxd)
                    self._finish(DONE, self.value, None, from_loop)
                    return
                awaited = self.waiting
                self.waiting = None
            else:
                awaited = coro.send(None) if exc is None else coro.throw(exc)
        except StopIteration as stop:
            self._finish(DONE, stop.value, None, from_loop)
            return
        except asyncio.CancelledError:
            self._finish(CANCELLED, None, None, from_loop)
            return
        except (KeyboardInterrupt, SystemExit) as e:
            self._finish(DONE, None, e, from_loop)
            raise
        except BaseException as e:
            self._finish(DONE, None, e, from_loop)
            return
        if awaited is None:  # a bare yield (asyncio.sleep(0)): go on next turn
            self.loop.call_soon(self._again)
        elif getattr(awaited, "_asyncio_future_blocking", None) is not None:
            awaited._asyncio_future_blocking = False
            self.waiting = awaited
            awaited.add_done_callback(self._wakeup)
        else:
            self._step(RuntimeError(f"coroutine yielded {awaited!r}, not a future"),
                       from_loop)

    def _finish(self, state: int, value: Any, exc: BaseException | None,
                from_loop: bool) -> None:
        self.state = state
        self.value = value
        self.exc = exc
        self.coro = None  # type: ignore[assignment]
        if from_loop:
            self._report()
        else:
            self.loop.call_soon(self._report)

    def _report(self) -> None:
        cb = self.on_done
        self.on_done = None
        if cb is not None:
            cb(self)
