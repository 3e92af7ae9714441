"""The `resolvers` section, and the servers that name one.

Owns the section's keywords (`nameserver`, `parse-resolv-conf`, `hold`,
`accepted_payload_size`, `resolve_retries`, `timeout resolve|retry`) with HAProxy
2.6.12's messages, the implicit `default` section HAProxy makes from
/etc/resolv.conf when the file defines none of that name, and the checks once
every file is read: a server naming a section that does not exist, a section with
no name server. The frozen result is ``lb.config.model.Resolvers``; lb.resolvers
runs it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import lb.config.model as m
from lb.config.lexer import Line
from lb.config.registry import ParseCtx, bad_name_char, origin
from lb.config.server_kw import str2sa
from lb.units import UnitError, atoi, parse_time_ms

DEFAULT_NAME = "default"
RESOLV_CONF = "/etc/resolv.conf"
HOLD_EVENTS = ("nx", "other", "refused", "timeout", "valid", "obsolete")
PAYLOAD_MIN, PAYLOAD_MAX = 12, 65535  # a DNS header; the largest UDP message


@dataclass
class ResolversBuilder:
    name: str
    origin: m.Origin
    nameservers: list[m.Nameserver] = field(default_factory=list)
    values: dict[str, float | int] = field(default_factory=dict)

    def freeze(self) -> m.Resolvers:
        return m.Resolvers(self.name, tuple(self.nameservers), origin=self.origin,
                           **self.values)  # type: ignore[arg-type]


class SectionAbort(Exception):
    """HAProxy abandons the file at this `resolvers` line."""


def section_name(line: Line, ctx: ParseCtx, kind: str, known: Mapping[str, Any],
                 duplicate: Callable[[str, m.Origin], str]) -> str:
    """The name of a `resolvers` or `mailers` section line; raises SectionAbort, after
    HAProxy's message, where HAProxy stops reading (``duplicate(name, first origin)``
    words a name used twice)."""
    name = line.words[1] if len(line.words) > 1 else ""
    start = len(ctx.diags.items)
    if not name:
        ctx.alert(line, f"missing name for {kind} section.", "missing-argument")
    elif bad := bad_name_char(name):
        ctx.alert(line, f"character '{bad}' is not permitted in '{kind}' name '{name}'.",
                  "bad-name", col=line.col(1))
    elif name in known:
        ctx.alert(line, duplicate(name, known[name].origin), f"duplicate-{kind}",
                  style="Parsing")
        if kind == "mailers":  # (HAProxy reads on after this one)
            raise SectionAbort
    else:
        return name
    ctx.mark_stops(start)  # (no "Fatal errors found" line: HAProxy gave up reading)
    raise SectionAbort


def open_resolvers(line: Line, ctx: ParseCtx,
                   known: dict[str, ResolversBuilder]) -> ResolversBuilder:
    """`resolvers <name>`; raises SectionAbort where HAProxy stops reading."""
    name = section_name(line, ctx, "resolvers", known, lambda n, first: (
        f"resolvers '{n}' has same name as another resolvers (declared at "
        f"{first.file}:{first.line})."))
    sec = known[name] = ResolversBuilder(name, origin(line))
    return sec


def statement(sec: ResolversBuilder, line: Line, ctx: ParseCtx) -> None:
    kw = line.words[0]
    handler = _KEYWORDS.get(kw)
    if handler is None:
        if kw == "resolution_pool_size":
            ctx.alert(line, f"'{kw}' directive is not supported anymore (it never appeared in "
                      "a stable release).", "legacy-keyword", col=line.col(0))
            return
        ctx.alert(line, f"unknown keyword '{kw}' in 'resolvers' section", "unknown-keyword",
                  col=line.col(0))
        return
    handler(sec, line, ctx)


def peer_line(line: Line, ctx: ParseCtx, kw: str) -> tuple[str, str, str] | None:
    """`<kw> <name> <addr>:<port>` (a `nameserver` or a `mailer`): its name, address
    as written, and the address without its protocol prefix; HAProxy's messages."""
    words = line.words
    if len(words) < 3 or not words[2]:
        ctx.alert(line, f"'{kw}' expects <name> and <addr>[:<port>] as arguments.",
                  "missing-argument")
        return None
    name, addr = words[1], words[2]
    bad = bad_name_char(name)
    if bad:
        ctx.alert(line, f"character '{bad}' is not permitted in server name '{name}'.",
                  "bad-name", col=line.col(1))
        return None
    text = addr
    for prefix in ("udp@", "udp4@", "udp6@", "ipv4@", "ipv6@", "tcp@", "tcp4@", "tcp6@"):
        if text.startswith(prefix):
            text = text[len(prefix):]
            break
    return name, addr, text


def peer_address(line: Line, ctx: ParseCtx, label: str, addr: str,
                 text: str) -> tuple[str, int] | None:
    """The IP and port of a peer's ``text`` address; HAProxy's messages after
    ``label`` (`'nameserver ns1' : `)."""
    if text.count(":") > 1 and "[" not in text:  # an IPv6 address without brackets
        host, _, port_text = text.rpartition(":")
        text = f"[{host}]:{port_text}"
    res = str2sa(text, addr)
    if isinstance(res, str):
        ctx.alert(line, label + res, "bad-address", col=line.col(2))
        return None
    host, port, _ = res
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:  # (HAProxy's message ends with an empty line)
        ctx.alert(line, f"{label}invalid address: '{host}' in '{addr}'", "bad-address",
                  col=line.col(2), more=("",))
        return None
    if port is None:
        ctx.alert(line, f"{label}missing port specification in '{addr}'", "bad-address",
                  col=line.col(2))
        return None
    if port == 0:
        ctx.alert(line, f"{label}invalid port '0'", "bad-address", col=line.col(2))
        return None
    return host, port


def _nameserver(sec: ResolversBuilder, line: Line, ctx: ParseCtx) -> None:
    parsed = peer_line(line, ctx, "nameserver")
    if parsed is None:
        return
    name, addr, text = parsed
    for ns in sec.nameservers:
        if ns.name == name:
            ctx.alert(line, f"nameserver '{name}' has same name as another nameserver "
                      f"(declared at {ns.origin.file}:{ns.origin.line}).",
                      "duplicate-nameserver", style="Parsing")
            return
    label = f"'nameserver {name}' : "
    peer = peer_address(line, ctx, label, addr, text)
    if peer is None:
        return
    if addr.startswith(("tcp@", "tcp4@", "tcp6@")):
        ctx.warn(line, f"{label}lb asks name servers over UDP only; '{addr}' is asked over "
                 "UDP.", "dns-over-udp", col=line.col(2))
    sec.nameservers.append(m.Nameserver(name, *peer, origin(line)))


def read_resolv_conf(path: str = RESOLV_CONF) -> tuple[list[tuple[int, str]], str | None]:
    """The `nameserver` lines of resolv.conf as (line number, address), or the error."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return [], f"failed to open {path}."
    found = []
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.startswith("nameserver"):
            continue
        rest = raw[len("nameserver"):]
        if rest and not rest[0].isspace():
            continue  # `nameserverX`
        parts = rest.split()
        found.append((n, parts[0] if parts else ""))
    return found, None


def add_resolv_conf(sec: ResolversBuilder, ctx: ParseCtx | None, line: Line | None,
                    path: str = RESOLV_CONF) -> None:
    """The name servers of resolv.conf, named after their address, port 53 (HAProxy's
    `parse-resolv-conf`, with its warnings for the lines it leaves out; none when
    ``ctx`` is None)."""
    found, error = read_resolv_conf(path)
    if error:
        if ctx is not None:
            ctx.alert(line, error, "resolv-conf")
        return

    def warn(text: str) -> None:
        if ctx is not None:
            ctx.warn(None, text, "resolv-conf", style="plain")

    for n, addr in found:
        where = m.Origin(path, n)
        if not addr:
            warn(f"parsing [{path}:{n}] : nameserver line is missing address.")
            continue
        dup = next((ns for ns in sec.nameservers if ns.name == addr), None)
        if dup is not None:
            warn(f"Parsing [{path}:{n}] : generated name for {path} nameserver '{addr}' "
                 f"conflicts with another nameserver (declared at {dup.origin.file}:"
                 f"{dup.origin.line}), it appears to be a duplicate and will be excluded.")
            continue
        try:
            host = str(ipaddress.ip_address(addr))
        except ValueError:
            warn(f"parsing [{path}:{n}] : address '{addr}' could not be recognized, "
                 "nameserver will be excluded.")
            continue
        sec.nameservers.append(m.Nameserver(addr, host, 53, where))


def _parse_resolv_conf(sec: ResolversBuilder, line: Line, ctx: ParseCtx) -> None:
    add_resolv_conf(sec, ctx, line)


def time_ms(text: str, arg_label: str, where: str, line: Line, ctx: ParseCtx) -> int | None:
    """A time argument in ms, or None after HAProxy's message (``arg_label`` names the
    argument in the overflow message, ``where`` the keyword)."""
    try:
        ms, junk = parse_time_ms(text)
    except UnitError as exc:
        if exc.reason == "overflow":
            ctx.alert(line, f"timer overflow in argument <{arg_label}> to <{where}>, maximum "
                      "value is 2147483647 ms (~24.8 days).", "bad-time", style="tight")
        else:
            ctx.alert(line, f"unexpected character '{exc.char}' in argument to <{where}>.",
                      "bad-time", style="tight")
        return None
    if junk:
        ctx.alert(line, f"unexpected character '{junk[0]}' in argument to <{where}>.",
                  "bad-time", style="tight")
        return None
    return ms


def _hold(sec: ResolversBuilder, line: Line, ctx: ParseCtx) -> None:
    words = line.words
    if len(words) < 3 or not words[2]:
        ctx.alert(line, "'hold' expects an <event> and a <time> as arguments.",
                  "missing-argument")
        ctx.alert(None, "<event> can be either 'valid', 'nx', 'refused', 'timeout', or "
                  "'other'", "missing-argument", style="plain")
        return
    # (HAProxy names the event, not the time, in its overflow message)
    ms = time_ms(words[2], words[1], "hold", line, ctx)
    if ms is None:
        return
    if words[1] not in HOLD_EVENTS:
        ctx.alert(line, f"'hold' unknown <event>: '{words[1]}', expects either 'nx', "
                  "'timeout', 'valid', 'obsolete' or 'other'.", "bad-argument", col=line.col(1))
        return
    sec.values[f"hold_{words[1]}"] = ms / 1000.0


def _number(line: Line, ctx: ParseCtx) -> int | None:
    """The <nb> of `accepted_payload_size` / `resolve_retries`, read as C's atoi."""
    arg = line.words[1] if len(line.words) > 1 else ""
    if not arg:
        ctx.alert(line, f"'{line.words[0]}' expects <nb> as argument.", "missing-argument")
        return None
    return atoi(arg)


def _payload(sec: ResolversBuilder, line: Line, ctx: ParseCtx) -> None:
    n = _number(line, ctx)
    if n is not None and not PAYLOAD_MIN <= n <= PAYLOAD_MAX:
        ctx.alert(line, f"'accepted_payload_size' must be between {PAYLOAD_MIN} and "
                  f"{PAYLOAD_MAX} inclusive (was {line.words[1]}).", "bad-argument",
                  col=line.col(1))
    elif n is not None:
        sec.values["accepted_payload_size"] = n


def _retries(sec: ResolversBuilder, line: Line, ctx: ParseCtx) -> None:
    n = _number(line, ctx)
    if n is not None and n < 1:  # HAProxy takes it, and then retries without end
        ctx.warn(line, f"'resolve_retries' {line.words[1]}: each resolution is sent once.",
                 "bad-argument", col=line.col(1))
        n = 1
    if n is not None:
        sec.values["resolve_retries"] = n


def _timeout(sec: ResolversBuilder, line: Line, ctx: ParseCtx) -> None:
    words = line.words
    which = words[1] if len(words) > 1 else ""
    if not which:
        ctx.alert(line, "'timeout' expects 'retry' or 'resolve' and <time> as arguments.",
                  "missing-argument")
        return
    if which not in ("retry", "resolve"):
        ctx.alert(line, f"'timeout' expects 'retry' or 'resolve' and <time> as arguments got "
                  f"'{which}'.", "bad-argument", col=line.col(1))
        return
    if len(words) < 3 or not words[2]:
        ctx.alert(line, f"'timeout {which}' expects <time> as argument.", "missing-argument")
        return
    ms = time_ms(words[2], words[2], f"timeout {which}", line, ctx)
    if ms is None:
        return
    sec.values[f"timeout_{which}"] = ms / 1000.0


_KEYWORDS = {
    "nameserver": _nameserver,
    "parse-resolv-conf": _parse_resolv_conf,
    "hold": _hold,
    "accepted_payload_size": _payload,
    "resolve_retries": _retries,
    "timeout": _timeout,
}


def finish(known: dict[str, ResolversBuilder], servers: list[tuple[str, str, m.Server]],
           ctx: ParseCtx) -> tuple[m.Resolvers, ...]:
    """Freeze the sections once every file is read. ``servers``: (proxy kind, proxy name,
    server) of each server that names a section. Adds HAProxy's implicit `default`
    section, warns about sections with no name server and refuses a server whose
    section does not exist."""
    sections = dict(known)
    if DEFAULT_NAME not in sections:
        default = ResolversBuilder(DEFAULT_NAME, m.Origin(RESOLV_CONF, 0))
        add_resolv_conf(default, None, None)  # (quietly, as HAProxy makes it)
        sections[DEFAULT_NAME] = default
    for sec in known.values():
        if not sec.nameservers:
            ctx.warn(None, f"resolvers '{sec.name}' [{sec.origin.file}:{sec.origin.line}] has "
                     "no nameservers configured!", "no-nameserver", style="plain")
    for kind, proxy, srv in servers:
        if srv.resolvers is not None and srv.resolvers not in sections:
            ctx.alert(None, f"{kind} '{proxy}', server '{srv.name}': unable to find required "
                      f"resolvers '{srv.resolvers}'", "unknown-resolvers", style="plain",
                      phase="check")
    return tuple(s.freeze() for s in sections.values())
