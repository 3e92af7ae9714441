"""The agent check (`agent-check`): its reply language and one check's I/O.

Owns: reading an agent's reply as HAProxy 2.6 does (one line ended by the first CR or
LF; words split by spaces, tabs and commas, in any order, the last of each kind
winning; a `#` starting a word opens the description) into an ``AgentReply``, and
running one agent check (connect, send `agent-send`, read the line) into an
``AgentOutcome``. What a reply does to a server is the runner's business
(``healthcheck.runner.HealthChecker.apply_agent``).

Must not import: lb.proxy, lb.cli, lb.log, healthcheck.runner.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass

#: Health words: the status they give the agent check, and the agent's new health.
HEALTH_WORDS: dict[str, tuple[str, int]] = {
    "up": ("L7OK", 1),
    "down": ("L7STS", 0),
    "stopped": ("L7STS", 0),
    "fail": ("L7STS", 0),
}
#: Administrative words: the target of ``lb.srvadmin.change_admin``.
ADMIN_WORDS = frozenset(("ready", "drain", "maint"))
_SEPARATORS = " \t,"
_READ_LIMIT = 16384  # HAProxy reads the reply into one buffer (tune.bufsize)


@dataclass(frozen=True, slots=True)
class AgentReply:
    """The words of one reply line; None where the agent said nothing of that kind."""

    health: str | None = None  # up, down, stopped, fail (as written)
    admin: str | None = None  # ready, drain, maint (as written)
    weight: str | None = None  # e.g. "75%"
    maxconn: str | None = None  # the text after "maxconn:"
    error: str | None = None  # the first word not understood
    description: str = ""  # after '#', leading blanks removed


def parse_reply(line: str) -> AgentReply:
    """One reply line (without its CR/LF) -> its words."""
    health = admin = weight = maxconn = error = None
    description = ""
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c in _SEPARATORS:
            i += 1
            continue
        if c == "#":
            description = line[i + 1:].lstrip(" \t")
            break
        j = i + 1
        while j < n and line[j] not in _SEPARATORS:
            j += 1
        word = line[i:j]
        low = word.lower()
        if low in HEALTH_WORDS:
            health = word
        elif low in ADMIN_WORDS:
            admin = word
        elif word[0].isdigit() and "%" in word:
            weight = word
        elif low.startswith("maxconn:"):
            maxconn = word[len("maxconn:"):]
        elif error is None:
            error = word
        i = j + 1
    return AgentReply(health, admin, weight, maxconn, error, description)


@dataclass(frozen=True, slots=True)
class AgentOutcome:
    """How one agent check ended: ``status`` is a CHECK_STATUSES code when the check
    failed before a reply (L4CON, L4TOUT, SOCKERR, L7TOUT, L7RSP), else "LINE" with
    the reply in ``line``, or "INCOMPLETE" when the agent closed before ending it."""

    status: str
    line: str = ""
    desc: str = ""
    duration_ms: int = 0


class _AgentProtocol(asyncio.Protocol):
    __slots__ = ("buf", "done", "transport")

    def __init__(self, done: asyncio.Future[bool]) -> None:
        self.buf = bytearray()
        self.done = done
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        room = _READ_LIMIT - len(self.buf)
        if room > 0:
            self.buf += data[:room]
        if b"\n" in data or b"\r" in data or len(self.buf) >= _READ_LIMIT:
            self._finish(True)

    def eof_received(self) -> bool:
        self._finish(False)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(False)

    def _finish(self, line: bool) -> None:
        if not self.done.done():
            self.done.set_result(line)


def _line_of(buf: bytes) -> str | None:
    """The text before the first CR, LF (or NUL, where HAProxy's C string ends)."""
    for i, b in enumerate(buf):
        if b in (10, 13, 0):
            return buf[:i].decode("latin-1")
    return None


async def run_agent(host: str, port: int, send: bytes, inter: float,
                    timeout_connect: float | None = None,
                    timeout_check: float | None = None,
                    unix: Callable[[], socket.socket] | None = None) -> AgentOutcome:
    """Connect to the agent, send ``send`` and read its reply line; never raises.
    As HAProxy's checks: the whole check fits in ``inter`` unless `timeout check` is
    set, which then bounds the read, and the connect by `timeout connect`. ``unix``:
    for an agent at a local socket, what connects to it (raising OSError when
    refused), instead of ``host``:``port``."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    timeout = inter
    if timeout_check and timeout_connect:
        timeout = min(inter, timeout_connect)
    done: asyncio.Future[bool] = loop.create_future()
    proto: _AgentProtocol | None = None

    def ms() -> int:
        return int((loop.time() - start) * 1000)

    try:
        try:
            if unix is not None:  # a server that is a local socket: its agent is there too
                _, proto = await loop.create_unix_connection(lambda: _AgentProtocol(done),
                                                             sock=unix())
            else:
                async with asyncio.timeout(timeout):
                    _, proto = await loop.create_connection(lambda: _AgentProtocol(done),
                                                            host, port)
        except TimeoutError:
            return AgentOutcome("L4TOUT", duration_ms=ms())
        except socket.gaierror as exc:
            return AgentOutcome("SOCKERR", desc=str(exc.strerror or exc), duration_ms=ms())
        except OSError as exc:
            if unix is not None:  # (refused at once: a socket error, as for checks)
                return AgentOutcome("SOCKERR", desc=f"General socket error "
                                    f"({exc.strerror or exc})", duration_ms=ms())
            return AgentOutcome("L4CON", desc=exc.strerror or str(exc), duration_ms=ms())
        except (ValueError, OverflowError) as exc:  # an address the socket layer refuses
            return AgentOutcome("SOCKERR", desc=str(exc), duration_ms=ms())
        assert proto.transport is not None
        if send:
            proto.transport.write(send)
        left = timeout_check if timeout_check else max(inter - (loop.time() - start), 0.0)
        try:
            async with asyncio.timeout(left):
                await done
        except TimeoutError:
            return AgentOutcome("L7TOUT", duration_ms=ms())
        buf = bytes(proto.buf)
        if not buf:
            # (the agent's rules are an implicit connect, a send and an expect)
            return AgentOutcome("L7RSP", desc="TCPCHK got an empty response at step 2",
                                duration_ms=ms())
        line = _line_of(buf)
        if line is None:
            return AgentOutcome("INCOMPLETE", duration_ms=ms())
        return AgentOutcome("LINE", line, duration_ms=ms())
    finally:
        if proto is not None and proto.transport is not None:
            proto.transport.abort()
