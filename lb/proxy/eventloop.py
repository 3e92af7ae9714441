"""The event loop lb runs on: uvloop, imported with a cheaper registry of transports.

Owns: the import of uvloop for the whole process (``lb.proxy`` imports this module
first), ``new_event_loop`` (uvloop's loop, or asyncio's where uvloop is missing),
``TransportRegistry`` and ``BusyPoller`` (the global ``busy-polling``).

uvloop files every transport it makes in a per-loop map from descriptor to
transport, held weakly, so that ``add_reader`` and friends can refuse a descriptor
that a live transport owns. The map is a ``weakref.WeakValueDictionary``, whose
insert and whose death callback both run in Python: about 7.8k instructions per
transport, 7.5% of a WebSocket handshake through lb (issue #9, docs/performance.md,
seventeenth and eighteenth sessions). uvloop reads the class once, into a C variable,
when its ``loop`` module is first imported. This module imports uvloop with
``weakref.WeakValueDictionary`` set to ``TransportRegistry`` for the length of that
import and puts the original back at once. The standard-library modules uvloop
imports are imported before the swap, so only uvloop's own modules can see it
(``LOADED_DURING_SWAP`` records them, with Cython's shared runtime; tests/
test_eventloop.py checks).

``TransportRegistry`` answers what uvloop asks of its map (store a transport under
its descriptor; look one up, ``KeyError`` when none is alive there) with a plain
dict of weak references without callbacks. A dead entry stays until its descriptor
is filed again or looked up; descriptors are reused lowest first, so the dict is no
larger than the most descriptors open at once. Compiled (tools/build_accel.py), both
are C slots.

If uvloop was imported before this module (a program embedding lb), its loops keep
the standard map: the same behaviour, at the old cost.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import weakref
from types import ModuleType
from typing import Any
from weakref import ref

# what uvloop.loop imports (its includes/stdlib.pxi), imported before the swap
_UVLOOP_STDLIB: tuple[str, ...] = (
    "asyncio", "asyncio.log", "asyncio.base_events", "asyncio.sslproto",
    "asyncio.coroutines", "asyncio.futures", "asyncio.transports", "collections",
    "collections.abc", "concurrent.futures", "concurrent.futures.thread", "errno",
    "functools", "gc", "inspect", "itertools", "os", "signal", "socket", "subprocess",
    "ssl", "stat", "threading", "traceback", "time", "typing", "warnings", "weakref",
)


class TransportRegistry:
    """Descriptor -> transport, held weakly: uvloop's ``loop._transports``."""

    def __init__(self) -> None:
        self._refs: dict[Any, Any] = {}

    def __setitem__(self, fd: Any, transport: Any) -> None:
        self._refs[fd] = ref(transport)

    def __getitem__(self, fd: Any) -> Any:
        transport = self._refs[fd]()
        if transport is None:
            del self._refs[fd]
            raise KeyError(fd)
        return transport

    def __len__(self) -> int:
        """Entries, dead ones not yet dropped included."""
        return len(self._refs)


class BusyPoller:
    """``busy-polling``: the loop never sleeps in its poller.

    A callback that queues itself again keeps one ready callback on the loop at all
    times, so each turn polls with a zero timeout (uvloop runs ready callbacks from
    an idle handle, and libuv does not block while one is active; asyncio's own
    loop does the same with its ready queue). Timers and I/O run as usual. A
    sleeping process is woken by the kernel, which inside a virtual machine can
    take tens of microseconds per wake-up (docs/performance.md): polling trades one
    busy core for that latency, as HAProxy's option of the same name does.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._handle: asyncio.Handle | None = None

    @property
    def active(self) -> bool:
        return self._handle is not None

    def start(self) -> None:
        if self._handle is None:
            self._handle = self._loop.call_soon(self._turn)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _turn(self) -> None:
        self._handle = self._loop.call_soon(self._turn)


LOADED_DURING_SWAP: list[str] = []


def _import_uvloop() -> ModuleType | None:
    if "uvloop.loop" in sys.modules:
        return sys.modules.get("uvloop")
    for name in _UVLOOP_STDLIB:
        importlib.import_module(name)
    before = set(sys.modules)
    standard = weakref.WeakValueDictionary
    weakref.WeakValueDictionary = TransportRegistry  # type: ignore[misc,assignment]
    try:
        import uvloop
    except ImportError:
        return None
    finally:
        weakref.WeakValueDictionary = standard  # type: ignore[misc]
        LOADED_DURING_SWAP[:] = sorted(set(sys.modules) - before)
    return uvloop


UVLOOP = _import_uvloop()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop where uvloop is installed, else asyncio's."""
    if UVLOOP is not None:
        loop: asyncio.AbstractEventLoop = UVLOOP.new_event_loop()
        return loop
    return asyncio.new_event_loop()
