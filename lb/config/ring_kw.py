"""The `ring` section, and which ring each `log ring@<name>` line means.

Owns the section's keywords (`description`, `format`, `maxlen`, `size`, `timeout
connect|server`, `server`, `backing-file`) with HAProxy 2.6.12's messages, the check
once the section is read (an event longer than the ring is cut to its size), and the
resolution of `ring@<name>` targets to their sections, with HAProxy's texts for a
name no section defines (HAProxy says so when it starts, lb when it loads the file:
`lb -c` too). The frozen result is ``lb.config.model.Ring``; lb.logring runs it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import lb.config.model as m
from lb.config import server_kw
from lb.config.lexer import Line
from lb.config.registry import ParseCtx, origin
from lb.units import UnitError, parse_time

FORMATS = ("local", "rfc3164", "rfc5424", "priority", "short", "timed", "iso", "raw")
DEFAULT_SIZE = 16384  # HAProxy's BUFSIZE: a ring's smallest and default size
LOG_PROTOS = ("legacy", "octet-count")
# the sinks HAProxy always has, which a ring cannot be named after
BUILTIN_SINKS = ("stdout", "stderr", "buf0")


@dataclass
class RingBuilder:
    name: str
    origin: m.Origin
    description: str = ""
    format: str = "raw"
    maxlen: int = 0  # 0: not given (the size)
    size: int = DEFAULT_SIZE
    timeout_connect: float | None = None
    timeout_server: float | None = None
    servers: list[m.RingServer] = field(default_factory=list)

    def freeze(self, ctx: ParseCtx) -> m.Ring:
        maxlen = self.maxlen or self.size
        if maxlen > self.size:
            ctx.warn(None, f"ring '{self.name}' event max length '{maxlen}' exceeds size, "
                     f"forced to size '{self.size}'.", "ring-maxlen", style="plain")
            maxlen = self.size
        return m.Ring(self.name, self.description or self.name, self.format, maxlen,
                      self.size, self.timeout_connect, self.timeout_server,
                      tuple(self.servers), self.origin)


def open_ring(line: Line, ctx: ParseCtx, known: dict[str, RingBuilder]) -> RingBuilder | None:
    """`ring <name>` (a word after the name is ignored, as HAProxy does)."""
    if len(line.words) < 2 or not line.words[1]:
        ctx.alert(line, "missing ring name.", "missing-argument")
        return None
    name = line.words[1]
    if name in known or name in BUILTIN_SINKS:
        ctx.alert(line, f"sink named '{name}' already exists.", "duplicate-ring")
        return None
    ring = RingBuilder(name, origin(line))
    known[name] = ring
    return ring


def _size(text: str) -> int:
    """A `size`/`maxlen` value read as HAProxy does (atol: the leading digits)."""
    digits = ""
    for c in text:
        if not c.isdigit():
            break
        digits += c
    return int(digits) if digits else 0


def statement(ring: RingBuilder, line: Line, ctx: ParseCtx) -> None:
    words = line.words
    kw = words[0]
    arg = words[1] if len(words) > 1 else ""
    if kw == "description":
        if not arg:
            ctx.alert(line, "missing ring description text.", "missing-argument")
            return
        ring.description = " ".join(words[1:])
    elif kw == "format":
        if arg not in FORMATS:
            ctx.alert(line, f"unknown format '{arg}'.", "bad-argument", col=line.col(1))
            return
        ring.format = arg
    elif kw in ("maxlen", "size"):
        value = _size(arg)
        if value <= 0:
            ctx.alert(line, f"invalid size '{arg}' for new sink buffer.", "bad-argument",
                      col=line.col(1))
            return
        if kw == "maxlen":
            ring.maxlen = value
        elif value < ring.size:  # (a warning, and yet HAProxy 2.6.12 fails the file)
            ctx.warn(line, f"ignoring new size '{value}' that is smaller than current size "
                     f"'{ring.size}' for ring '{ring.name}'.", "ring-size", col=line.col(1),
                     fails=True)
        else:
            ring.size = value
    elif kw == "timeout":
        _timeout(ring, line, ctx)
    elif kw == "server":
        _server(ring, line, ctx)
    elif kw == "backing-file":
        ctx.warn(line, "'backing-file' is not supported by lb; the ring stays in memory.",
                 "unsupported-keyword", col=line.col(0))
    else:
        ctx.alert(line, f"unknown statement '{kw}'.", "unknown-keyword", col=line.col(0))


def _timeout(ring: RingBuilder, line: Line, ctx: ParseCtx) -> None:
    words = line.words
    which = words[1] if len(words) > 1 else ""
    if which not in ("connect", "server"):
        return  # HAProxy 2.6.12 ignores the other names here
    if len(words) < 3 or not words[2]:
        ctx.alert(line, f"'timeout {which}' expects <time> as argument.", "missing-argument")
        return
    try:
        seconds = parse_time(words[2])
    except UnitError as exc:
        bad = exc.char or words[2][:1]
        ctx.alert(line, f"unexpected character '{bad}' in argument to <timeout {which}>.",
                  "bad-time", style="tight", col=line.col(2))
        return
    if which == "connect":
        ring.timeout_connect = seconds
    else:
        ring.timeout_server = seconds


def _server(ring: RingBuilder, line: Line, ctx: ParseCtx) -> None:
    words = line.words
    if len(words) < 3 or not words[2]:
        ctx.alert(line, "'server' expects <name> and <addr>[:<port>] as arguments.",
                  "missing-argument", style="bracket")
        return
    name, addr = words[1], words[2]
    label = f"'server {ring.name}/{name}'"
    proto = "legacy"
    i = 3
    while i < len(words):
        if words[i] == "log-proto":
            value = words[i + 1] if i + 1 < len(words) else ""
            if value not in LOG_PROTOS:
                ctx.alert(line, f"{label} : 'log-proto' expects one of 'legacy' or "
                          f"'octet-count' but got '{value}'.", "bad-argument",
                          style="bracket", col=line.col(i))
                return
            proto = value
            i += 2
            continue
        i += 1  # the other server keywords mean nothing to a log forwarder
    if addr.startswith("/") or addr.startswith("unix@"):
        path = addr[5:] if addr.startswith("unix@") else addr
        ring.servers.append(m.RingServer(name, path, None, proto))  # type: ignore[arg-type]
        return
    text = addr[4:] if addr.startswith("tcp@") else addr
    res = server_kw.str2sa(text, addr)
    if isinstance(res, str):
        ctx.alert(line, f"{label} : {res}", "bad-address", style="bracket", col=line.col(2))
        return
    host, port, _high = res
    if port is not None and not 0 < port < 65536:
        ctx.alert(line, f"{label} : invalid port '{port}'", "bad-address", style="bracket",
                  col=line.col(2))
        return
    if not port:  # HAProxy 2.6.12 takes it, and its connections fail
        ctx.warn(line, f"{label} : no port in '{addr}': nothing will be forwarded to it.",
                 "no-port", style="bracket", col=line.col(2))
        return
    ring.servers.append(m.RingServer(name, host or "127.0.0.1", port,
                                     proto))  # type: ignore[arg-type]


def resolve_targets(targets: list[m.LogTarget], rings: dict[str, m.Ring], ctx: ParseCtx,
                    where: str | None) -> list[m.LogTarget]:
    """Each `ring@<name>` target with its section; HAProxy 2.6.12's startup alert for
    a name no `ring` defines (``where``: the proxy's name, None for `global`)."""
    out = []
    for t in targets:
        if t.kind != "ring":
            out.append(t)
            continue
        ring = rings.get(t.address)
        if ring is None:
            declared = f"in file '{t.origin.file}' at line {t.origin.line}"
            if where is None:
                text = f"global log server declared {declared} uses unknown ring named "
            else:
                text = (f"log server declared in proxy section '{where}' {declared} uses "
                        "unknown ring named ")
            ctx.alert(None, f"{text}'{t.address}'.", "unknown-ring", style="plain",
                      phase="check")
            continue
        out.append(dataclasses.replace(t, ring=ring))
    return out
