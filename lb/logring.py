"""Rings: log lines kept in memory and forwarded to syslog servers over TCP.

Owns the runtime of a `ring` section, or of the implicit ring a `log tcp@<addr>`
line makes (HAProxy 2.6.12 does the same), and the registry `show events` reads:
- ``Ring``: the last lines, up to ``size`` bytes (oldest dropped first), each cut at
  ``maxlen``; every line is handed to each of its servers.
- ``Forwarder``: one server's connection (an asyncio Protocol). Lines wait in a
  queue bounded by the ring's size while it connects; one that does not fit is
  dropped and counted. Framing by `log-proto`: ``legacy`` ends each line with LF,
  ``octet-count`` puts its length and a space before it (RFC 6587). A connection
  that fails or closes is opened again one second later if lines wait; `timeout
  connect` bounds an attempt (5 s when unset) and `timeout server` how long written
  lines may sit unread by the server before the connection is given up.

lb.log.RingSink writes into a ring; lb.cli shows them.

Must not import: lb.log, lb.proxy, lb.cli, healthcheck.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import structlog

from lb.config.model import LogTarget, Ring, RingServer

RETRY_DELAY = 1.0
IMPLICIT_SIZE = 16384  # a `log tcp@` line's ring: HAProxy's BUFSIZE, its maxlen too
DEFAULT_CONNECT_TIMEOUT = 5.0
_log = structlog.get_logger("lb.log")


class Forwarder(asyncio.Protocol):
    """The lines of a ring, sent to one server."""

    def __init__(self, ring: RingRT, server: RingServer) -> None:
        self.ring = ring
        self.server = server
        self.octet_count = server.log_proto == "octet-count"
        self.queue: collections.deque[bytes] = collections.deque()
        self.queued = 0  # bytes in the queue
        self.transport: asyncio.Transport | None = None
        self.connecting = False
        self.closed = False
        self.retry: asyncio.TimerHandle | None = None
        self.stall: asyncio.TimerHandle | None = None
        self.sent = 0
        self.failures = 0

    def frame(self, line: bytes) -> bytes:
        if self.octet_count:
            return b"%d %s" % (len(line), line)
        return line + b"\n"

    def push(self, line: bytes) -> None:
        data = self.frame(line)
        t = self.transport
        if t is not None:
            if t.get_write_buffer_size() + len(data) > self.ring.size:
                self.ring.dropped += 1  # the server reads slower than lines come
                return
            t.write(data)
            self.sent += 1
            return
        if self.queued + len(data) > self.ring.size:
            self.ring.dropped += 1
        else:
            self.queue.append(data)
            self.queued += len(data)
        self.connect_soon(0.0)

    def connect_soon(self, delay: float) -> None:
        if self.connecting or self.closed or self.retry is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: the first line written in one starts it
        self.retry = loop.call_later(delay, self._start)

    def _start(self) -> None:
        self.retry = None
        if self.closed or self.connecting or self.transport is not None:
            return
        self.connecting = True
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        srv = self.server
        timeout = self.ring.timeout_connect or DEFAULT_CONNECT_TIMEOUT
        try:
            if srv.port is None:
                coro = loop.create_unix_connection(lambda: self, srv.host)
            else:
                coro = loop.create_connection(lambda: self, srv.host, srv.port)
            await asyncio.wait_for(coro, timeout)
        except (TimeoutError, OSError) as exc:
            self.connecting = False
            self.failures += 1
            if self.failures == 1 or self.failures % 60 == 0:
                _log.warning("log_forward_failed", ring=self.ring.name, server=srv.name,
                             error=str(exc) or type(exc).__name__, failures=self.failures)
            if self.queue:
                self.connect_soon(RETRY_DELAY)
        except asyncio.CancelledError:
            self.connecting = False
            raise

    # ---- asyncio.Protocol
    def connection_made(self, transport: Any) -> None:
        self.connecting = False
        if self.closed:
            transport.close()
            return
        self.transport = transport
        self.failures = 0
        if self.queue:
            data = b"".join(self.queue)
            self.sent += len(self.queue)
            self.queue.clear()
            self.queued = 0
            transport.write(data)

    def data_received(self, data: bytes) -> None:
        pass  # a syslog server has nothing to say

    def pause_writing(self) -> None:
        limit = self.ring.timeout_server
        if limit and self.stall is None:
            self.stall = asyncio.get_running_loop().call_later(limit, self._stalled)

    def resume_writing(self) -> None:
        if self.stall is not None:
            self.stall.cancel()
            self.stall = None

    def _stalled(self) -> None:
        self.stall = None
        if self.transport is not None:
            _log.warning("log_forward_stalled", ring=self.ring.name, server=self.server.name)
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.resume_writing()
        if not self.closed:
            self.connect_soon(RETRY_DELAY)

    def close(self) -> None:
        self.closed = True
        if self.retry is not None:
            self.retry.cancel()
            self.retry = None
        self.resume_writing()
        if self.transport is not None:
            self.transport.close()  # what is written still leaves
            self.transport = None


class RingRT:
    """A ring's lines and forwarders (mutable runtime of a ``Ring``)."""

    def __init__(self, model: Ring) -> None:
        self.model = model
        self.name, self.description, self.format = model.name, model.description, model.format
        self.maxlen, self.size = model.maxlen, model.size
        self.timeout_connect, self.timeout_server = model.timeout_connect, model.timeout_server
        self.lines: collections.deque[bytes] = collections.deque()
        self.held = 0  # bytes in ``lines``
        self.dropped = 0
        self.forwarders = [Forwarder(self, s) for s in model.servers]

    def add(self, line: bytes) -> None:
        if len(line) > self.maxlen:
            line = line[:self.maxlen]
        lines = self.lines
        lines.append(line)
        self.held += len(line) + 1
        while self.held > self.size and lines:
            self.held -= len(lines.popleft()) + 1
        for f in self.forwarders:
            f.push(line)

    def close(self) -> None:
        for f in self.forwarders:
            f.close()


_RINGS: dict[str, RingRT] = {}
_IMPLICIT: dict[LogTarget, RingRT] = {}


def ring_for(target: LogTarget) -> RingRT:
    """The running ring a `log ring@<name>` or `log tcp@<addr>` target writes into (made
    on first use, shared by every line naming it). ValueError: a ring@ target whose
    section was not resolved."""
    if target.kind == "ring" and target.ring is None:  # (the config check refuses it)
        raise ValueError(f"no ring named '{target.address}'")
    if target.ring is not None:
        ring = _RINGS.get(target.ring.name)
        if ring is None or ring.model != target.ring:
            if ring is not None:
                ring.close()
            ring = _RINGS[target.ring.name] = RingRT(target.ring)
        return ring
    ring = _IMPLICIT.get(target)
    if ring is None:
        n = len(_IMPLICIT) + 1
        org = target.origin
        model = Ring(f"ring#{n}", f"created from logserver declared into '{org.file}' at "
                     f"line {org.line}", target.format, IMPLICIT_SIZE, IMPLICIT_SIZE,
                     None, None,
                     (RingServer(target.spec or target.address, target.address,
                                 target.port, "legacy"),), org)
        ring = _IMPLICIT[target] = RingRT(model)
    return ring


def rings() -> list[RingRT]:
    """Every running ring, named ones first (`show events`)."""
    return [*_RINGS.values(), *_IMPLICIT.values()]


async def drain(limit: float = 1.0) -> None:
    """At exit: give the lines written to connected servers up to ``limit`` seconds to
    leave, then close every forwarder."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline and any(
            f.transport is not None and f.transport.get_write_buffer_size()
            for r in rings() for f in r.forwarders):
        await asyncio.sleep(0.01)
    close_rings()


def close_rings() -> None:
    """Stop every forwarder (reload, exit, tests): lines already written still leave."""
    for r in rings():
        r.close()
    _RINGS.clear()
    _IMPLICIT.clear()
