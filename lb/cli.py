"""The stats socket: HAProxy's runtime API (the CLI).

Owns: the CLI_COMMANDS table (word tuple -> handler, usage, description, level),
the command-line splitting rules (``;`` separators, ``\\`` escapes), access levels,
HAProxy's answer texts, and the socket server (unix path,
``ip:port``, ``fd@N``) with the line protocol, prompt mode, `stats timeout` and
`stats maxconn`.

Command handlers are pure functions of (session, arguments): they read and change
``lb.state`` through its methods (server transitions via ``lb.srvadmin``, whose
log lines go to the injected ``log_event``) and return the answer text; only
``CliServer`` and ``serve_cli`` do I/O.

Must not import: lb.proxy, lb.log, healthcheck.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import ipaddress
import os
import re
import socket
import stat as stat_mod
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lb import logring, srvadmin, stats
from lb.config import var_kw
from lb.config.model import StatsSocket
from lb.match import maps, patref, variables
from lb.state import BackendState, ServerState, State
from lb.sticktable import KNOWN_TYPES, FilterError

USER, OPERATOR, ADMIN = 0, 1, 2
LEVEL_NAMES = {USER: "user", OPERATOR: "operator", ADMIN: "admin"}
LEVELS = {v: k for k, v in LEVEL_NAMES.items()}

LogEvent = Callable[[BackendState | None, str, str], None]


def stderr_log_event(backend: BackendState | None, level: str, text: str) -> None:
    """Default sink for state-change messages: HAProxy's stderr form."""
    tag = "[ALERT]   " if level in ("emerg", "alert") and "has no server" in text else "[WARNING] "
    sys.stderr.write(f"{tag} ({os.getpid()}) : {text}\n")
    sys.stderr.flush()


@dataclass(slots=True)
class Session:
    """One CLI connection's state."""

    state: State
    level: int = ADMIN
    prompt: bool = False
    quit: bool = False
    log_event: LogEvent = stderr_log_event
    clock: Callable[[], float] = time.time
    payload: str | None = None
    experimental: bool = False  # `experimental-mode on` (dropped with the level)


class CliError(Exception):
    """An answer that ends the command (the message is printed as is)."""


Handler = Callable[[Session, list[str]], str]


@dataclass(frozen=True, slots=True)
class CliCommand:
    words: tuple[str, ...]
    usage: str  # shown in help, left column
    desc: str
    level: int
    handler: Handler
    hidden: bool = False  # not listed by help (still runs)
    experimental: bool = False  # only in experimental mode (listed by help only then)
    level_for: Callable[[list[str]], int] | None = None  # when arguments raise the level

    def required(self, words: list[str]) -> int:
        return self.level_for(words) if self.level_for is not None else self.level

    def help_line(self) -> str:
        return f"  {self.usage:<40}: {self.desc}"


# ----------------------------------------------------------------- line splitting


def split_commands(line: str) -> list[str]:
    """Split one input line on unescaped ``;`` (``\\;`` and ``\\\\`` are literal)."""
    out, cur, i = [], [], 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line) and line[i + 1] in ";\\":
            cur.append("\\" + line[i + 1])  # kept escaped for split_words
            i += 2
            continue
        if ch == ";":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    out.append("".join(cur))
    return out


def split_words(cmd: str) -> list[str]:
    """Whitespace-separated words; ``\\x`` keeps x literally (escaped spaces too)."""
    words: list[str] = []
    cur: list[str] = []
    has = False
    i = 0
    while i < len(cmd):
        ch = cmd[i]
        if ch == "\\" and i + 1 < len(cmd):
            cur.append(cmd[i + 1])
            has = True
            i += 2
            continue
        if ch in " \t":
            if has:
                words.append("".join(cur))
                cur, has = [], False
        else:
            cur.append(ch)
            has = True
        i += 1
    if has:
        words.append("".join(cur))
    return words


# ----------------------------------------------------------------- helpers


def _now(sess: Session) -> float:
    return sess.clock()


def _need_level(sess: Session, level: int) -> None:
    if sess.level < level:
        raise CliError(f"Permission denied\n{_level_hint(level, sess.level)}\n")


def _level_hint(need: int, have: int) -> str:
    # lb extension: the second line names the level needed (HAProxy prints only the first).
    return (f"This command requires level '{LEVEL_NAMES[need]}' "
            f"(this session is '{LEVEL_NAMES[have]}').")


def _server_arg(sess: Session, args: list[str], pos: int) -> tuple[BackendState, ServerState]:
    if len(args) <= pos or "/" not in args[pos]:
        raise CliError("Require 'backend/server'.\n")
    bname, sname = args[pos].split("/", 1)
    be = sess.state.backend(bname)
    if be is None:
        raise CliError("No such backend.\n")
    srv = be.server(sname)
    if srv is None:
        raise CliError("No such server.\n")
    return be, srv


def _backend_arg(sess: Session, args: list[str], pos: int) -> BackendState:
    if len(args) <= pos or not args[pos]:
        raise CliError("A backend name is expected.\n")
    be = sess.state.backend(args[pos])
    if be is None:
        raise CliError("No such backend.\n")
    return be


def _dyncookie(on: bool) -> Callable[[Session, list[str]], str]:
    """`enable|disable dynamic-cookie backend <bk>`: servers without their own
    `cookie` get (or lose) the value made from the key, their address and port."""
    def run(sess: Session, args: list[str]) -> str:
        be = _backend_arg(sess, args, 3)
        be.dyn_cookie_on = on
        sess.state.emit("dyncookie_changed", {"backend": be})
        return ""
    return run


def cmd_set_dyncookie_key(sess: Session, args: list[str]) -> str:
    be = _backend_arg(sess, args, 3)
    if len(args) < 5 or not args[4]:
        raise CliError("String value expected.\n")
    be.dyn_cookie_key = args[4]
    sess.state.emit("dyncookie_changed", {"backend": be})
    return ""


def change_admin(sess: Session, srv: ServerState, target: str) -> None:
    """Apply `ready` / `drain` / `maint` and log HAProxy's state-change lines."""
    for level, text in srvadmin.change_admin(srv, target, _now(sess)):
        sess.log_event(srv.backend, level, text)


def parse_weight(srv: ServerState, text: str) -> int:
    """`N` (0..256) or `N%` of the initial weight; HAProxy's error texts."""
    try:
        return srvadmin.parse_weight(srv, text)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _set_weight(sess: Session, srv: ServerState, text: str | None) -> str:
    if text is None:
        raise CliError("Require <weight> or <weight%>.\n")
    w = parse_weight(srv, text)
    for level, line in srvadmin.change_weight(srv, w, _now(sess)):
        sess.log_event(srv.backend, level, line)
    return ""


# ----------------------------------------------------------------- handlers


def cmd_help(sess: Session, args: list[str]) -> str:
    want = args[1:]
    lines = ["The following commands are valid at this level:"]
    if want:
        lines += [c.help_line() for c in _suggest(sess, want, all_if_none=False)]
        lines += [c.help_line() for c in _TAIL]
    else:
        lines += _help_lines(sess)
    return "\n".join(lines) + "\n"


def _listed(sess: Session, c: CliCommand) -> bool:
    return not (c.hidden or c in _TAIL or c.level > sess.level
                or (c.experimental and not sess.experimental))


def _help_lines(sess: Session) -> list[str]:
    body = sorted((c for c in CLI_COMMANDS if _listed(sess, c)), key=lambda c: c.usage)
    return [c.help_line() for c in body] + [c.help_line() for c in _TAIL]


def _suggest(sess: Session, words: list[str], all_if_none: bool = True) -> list[CliCommand]:
    """Commands close to what was typed (by words), best first."""
    typed = " ".join(words)
    scored = []
    for c in CLI_COMMANDS:
        if not _listed(sess, c):
            continue
        key = " ".join(c.words)
        prefix = sum(1 for a, b in zip(words, c.words, strict=False) if a == b)
        ratio = difflib.SequenceMatcher(None, typed, key).ratio()
        score = prefix + ratio
        if prefix or ratio >= 0.6:
            scored.append((score, c))
    scored.sort(key=lambda x: -x[0])
    return [c for _s, c in scored[:5]]


def unknown_command(sess: Session, words: list[str]) -> str:
    near = _suggest(sess, words) if words else []
    if near:
        lines = ["Unknown command, but maybe one of the following ones is a better match:"]
        lines += [c.help_line() for c in near] + [c.help_line() for c in _TAIL]
    else:
        lines = ["Unknown command. Please enter one of the following commands only:"]
        lines += _help_lines(sess)
    return "\n".join(lines) + "\n"


def cmd_prompt(sess: Session, args: list[str]) -> str:
    sess.prompt = not sess.prompt
    return ""


def cmd_quit(sess: Session, args: list[str]) -> str:
    sess.quit = True
    return ""


def cmd_level_operator(sess: Session, args: list[str]) -> str:
    _need_level(sess, OPERATOR)
    sess.level = OPERATOR
    sess.experimental = False
    return ""


def cmd_level_user(sess: Session, args: list[str]) -> str:
    sess.level = USER
    sess.experimental = False
    return ""


def cmd_experimental_mode(sess: Session, args: list[str]) -> str:
    """`experimental-mode [on|off]`: without argument, the state; any word but "on"
    turns it off (HAProxy 2.6.12)."""
    if len(args) < 2:
        return f"experimental-mode is {'ON' if sess.experimental else 'OFF'}\n"
    sess.experimental = args[1] == "on"
    return ""


# ----------------------------------------------------------------- variables

NO_VAR_NAME = "Missing process-wide variable identifier.\n"


def cmd_get_var(sess: Session, args: list[str]) -> str:
    """`get var proc.<name>`: a process-wide variable's type and value."""
    if len(args) < 3 or not args[2]:
        raise CliError(NO_VAR_NAME)
    name = args[2]
    proc = sess.state.proc_vars
    value = proc.values.get(name) if name.startswith("proc.") else None
    if value is None:
        raise CliError("Variable not found.\n")
    kind = proc.types.get(name) or variables.type_name(value)
    # HAProxy 2.6.12 prints no empty line after this answer
    return f"{name}: type={kind} value=<{variables.shown(value)}>"


def cmd_set_var(sess: Session, args: list[str]) -> str:
    """`set var proc.<name> [expr|fmt] <text>` (experimental mode): evaluated now,
    with nothing but the process-wide variables to read."""
    if len(args) < 3 or not args[2]:
        raise CliError(NO_VAR_NAME)
    name, rest = args[2], args[3:]
    if len(rest) >= 2 and rest[0] in ("expr", "fmt"):
        kw, text = ("set-var-fmt" if rest[0] == "fmt" else "set-var"), rest[1]
    elif rest and rest[0]:
        kw, text = "set-var", rest[0]
    else:
        raise CliError("Missing either 'expr', 'fmt' or expression.\n")
    err = variables.name_error(name, ")")  # read as "set-var(<name>)", as HAProxy does
    if err is None and not name.startswith("proc."):
        err = f"'set var': cannot set variable '{name}', only scope 'proc' is permitted here."
    if err is None:
        err = var_kw.evaluate(kw, name, text, sess.state.proc_vars)
    if err is not None:
        raise CliError(err)
    # a master sends it to its workers (lb.master)
    sess.state.emit("var_set", {"rows": sess.state.proc_vars.rows(name)})
    return ""


def cmd_show_cli_level(sess: Session, args: list[str]) -> str:
    return LEVEL_NAMES[sess.level] + "\n"


_STAT_FLAGS = {"typed", "json", "desc", "up", "no-maint"}


def cmd_show_stat(sess: Session, args: list[str]) -> str:
    rest = args[2:]
    if rest[:1] == ["domain"]:  # `domain proxy` is the default; `domain resolvers`
        domain = rest[1] if len(rest) > 1 else ""
        if domain not in ("proxy", "resolvers"):
            raise CliError("Invalid statistics domain.\n")
        rest = rest[2:]
        if domain == "resolvers":
            fmt = "typed" if "typed" in rest else "json" if "json" in rest else "csv"
            return stats.show_stat_resolvers(sess.state, fmt, desc="desc" in rest)
    flags = {a for a in rest if a in _STAT_FLAGS}
    pos = [a for a in rest if a not in _STAT_FLAGS]
    iid: int | str = -1
    types, sid = stats.ALL, -1
    if len(pos) >= 3:
        # HAProxy reads these with atoi(): a proxy that is neither a name nor a
        # non-zero number is refused; an unknown id or a type of garbage selects nothing.
        p = stats.find_proxy(sess.state, pos[0])
        iid = p.puid if p is not None else c_atoi(pos[0])
        if iid == 0:
            raise CliError("No such proxy.\n")
        types = c_atoi(pos[1])
        sid = c_atoi(pos[2])
        if types == -1:
            types = stats.ALL
    fmt = "typed" if "typed" in flags else "json" if "json" in flags else "csv"
    return stats.show_stat(sess.state, _now(sess), fmt, iid, types, sid,
                           up_only="up" in flags, no_maint="no-maint" in flags,
                           legends=sess.level >= OPERATOR, desc="desc" in flags)


def cmd_show_resolvers(sess: Session, args: list[str]) -> str:
    """Each `resolvers` section's name servers and their counters (lb.dns.counters),
    in HAProxy's layout; HAProxy's implicit `default` section comes last."""
    sections = sess.state.config.resolvers
    want = args[2] if len(args) > 2 and args[2] else None
    if want is not None:
        sections = tuple(r for r in sections if r.name == want)
        if not sections:
            raise CliError("Can't find that resolvers section\n")
    if not sections:
        return "No resolvers found"
    counters = sess.state.dns_counters
    out: list[str] = []
    for r in sections:
        out.append(f"Resolvers section {r.name}")
        for c in counters.get(r.name, ()):
            out.extend(c.lines())
    out.append("")  # (HAProxy 2.6.12 ends the list, not each section, with an empty line)
    return "\n".join(out)


def cmd_show_info(sess: Session, args: list[str]) -> str:
    fmt = "typed" if "typed" in args else "json" if "json" in args else "text"
    return stats.show_info(sess.state, _now(sess), fmt, desc="desc" in args[2:])


def cmd_show_servers_state(sess: Session, args: list[str]) -> str:
    st = sess.state
    if len(args) > 3:
        be = st.backend(args[3]) or (st.backend("#" + args[3]) if args[3].isdigit() else None)
        if be is None:
            raise CliError("Can't find backend.\n")
        backends = [be]
    else:
        backends = list(st.backends.values())
    return stats.show_servers_state(st, _now(sess), backends)


def cmd_show_backend(sess: Session, args: list[str]) -> str:
    return "# name\n" + "".join(f"{name}\n" for name in sess.state.backends)


def cmd_show_events(sess: Session, args: list[str]) -> str:
    """HAProxy's event sinks: the list, or the lines a ring holds (lb.logring). `-w`
    (wait for more) and `-n` (new lines only) are not supported."""
    names = [a for a in args[2:] if not a.startswith("-")]
    if not names:
        rows = ["Supported events sinks are listed below. Add -w(wait), -n(new). Any key "
                "to stop",
                f"    {'stdout':<10} : type=fd, 0 dropped, standard output (fd#1)",
                f"    {'stderr':<10} : type=fd, 0 dropped, standard output (fd#2)"]
        rows += [f"    {r.name:<10} : type=buffer, {r.dropped} dropped, {r.description}"
                 for r in logring.rings()]
        return "\n".join(rows) + "\n"
    if any(a in ("-w", "-n") for a in args[2:]):
        raise CliError("lb: 'show events' does not support -w and -n.\n")
    ring = next((r for r in logring.rings() if r.name == names[0]), None)
    if ring is None:
        if names[0] in ("stdout", "stderr"):
            return ""  # (fd sinks keep nothing)
        raise CliError("No such event sink\n")
    return "".join(line.decode("utf-8", "replace") + "\n" for line in list(ring.lines))


def cmd_show_config(sess: Session, args: list[str]) -> str:
    text = sess.state.config.text
    return text if text.endswith("\n") or not text else text + "\n"


def cmd_show_websockets(sess: Session, args: list[str]) -> str:
    fmt = "json" if "json" in args[2:] else "text"
    return stats.show_websockets(sess.state, _now(sess), fmt)


def _stream_id(text: str) -> int | None:
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


_C_NUMBER = re.compile(r"\s*[+-]?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


def c_strtoul(text: str) -> int:
    """C's strtoul(text, NULL, 0) as HAProxy applies it to a number argument: the
    leading number in any C base, 0 when there is none."""
    m = _C_NUMBER.match(text)
    if m is None:
        return 0
    digits = m.group(1)
    if digits[:2] in ("0x", "0X"):
        return int(digits, 16)
    return int(digits, 8) if digits.startswith("0") else int(digits)


def c_atoi(text: str) -> int:
    """C's atoi: the leading decimal number (sign allowed), 0 when there is none."""
    m = re.match(r"\s*([+-]?[0-9]+)", text)
    return int(m.group(1)) if m else 0


def _name(x: Any, default: str) -> str:
    if x is None:
        return default
    return x if isinstance(x, str) else getattr(x, "name", None) or default


def _stream_names(st: Any) -> tuple[str, str, str]:
    fe = _name(getattr(st, "frontend", None) or getattr(st, "fe", None), "<NONE>")
    txn = getattr(st, "txn", None) or getattr(st, "req_txn", None)
    be = _name(getattr(st, "backend", None) or getattr(txn, "backend_name", None), "<NONE>")
    srv = _name(getattr(st, "server", None) or getattr(txn, "server_name", None), "<none>")
    tun = getattr(st, "tunnel", None)
    if tun is not None and not isinstance(tun, bool):
        be = getattr(tun, "be_name", None) or be
        srv = getattr(tun, "srv_name", None) or srv
    return fe, be, srv


def stream_line(sid: int, st: Any, now: float) -> str:
    """One `show sess` line for a live stream (attributes read by name: the data
    plane's ClientConn, or plain ones)."""
    started = getattr(st, "started", None) or getattr(st, "accept_ts", None) or now
    src = getattr(st, "src", None) or getattr(st, "client", None) or "?"
    port = getattr(st, "src_port", None)
    if port:
        src = f"{src}:{port}"
    v6 = port is not None and ":" in str(getattr(st, "src", ""))
    proto = getattr(st, "proto", None) or ("tcpv6" if v6 else "tcpv4")
    fe, be, srv = _stream_names(st)
    age = max(int(now - started), 0)
    tun = getattr(st, "tunnel", None)
    kind = "tunnel" if tun else "http"
    bytes_in = getattr(st, "bytes_in", None)
    bytes_out = getattr(st, "bytes_out", None)
    if tun is not None and not isinstance(tun, bool):
        bytes_in, bytes_out = getattr(tun, "up", bytes_in), getattr(tun, "down", bytes_out)
    return (f"0x{sid:x}: proto={proto} src={src} fe={fe} be={be} srv={srv} "
            f"ts=00 age={age}s calls=0 kind={kind} bytes_in={bytes_in or 0} "
            f"bytes_out={bytes_out or 0}")


def cmd_show_sess(sess: Session, args: list[str]) -> str:
    _need_level(sess, OPERATOR)
    now = _now(sess)
    streams = sess.state.streams
    if len(args) > 2 and args[2] != "all":
        sid = _stream_id(args[2])
        st = streams.get(sid) if sid is not None else None
        if st is None:
            raise CliError("Session not found.\n")
        fe, be, srv = _stream_names(st)
        lines = [stream_line(sid, st, now),  # type: ignore[arg-type]
                 f"  frontend={fe} backend={be} server={srv}"]
        for attr in ("src", "src_port", "dst", "dst_port", "nreq", "url"):
            v = getattr(st, attr, None)
            if v not in (None, "", b""):
                lines.append(f"  {attr}={v.decode('latin-1') if isinstance(v, bytes) else v}")
        return "\n".join(lines) + "\n"
    return "".join(stream_line(sid, st, now) + "\n" for sid, st in sorted(streams.items()))


def cmd_shutdown_session(sess: Session, args: list[str]) -> str:
    if len(args) < 3 or c_strtoul(args[2]) == 0:
        raise CliError("Session pointer expected (use 'show sess').\n")
    sid = _stream_id(args[2])
    st = sess.state.streams.get(sid) if sid is not None else None
    if st is None:
        raise CliError("No such session (use 'show sess').\n")
    st.kill(b"K")
    return ""


def cmd_shutdown_sessions_server(sess: Session, args: list[str]) -> str:
    _be, srv = _server_arg(sess, args, 3)
    for st in list(srv.streams):
        st.kill(b"K")
    return ""


def cmd_show_errors(sess: Session, args: list[str]) -> str:
    _need_level(sess, OPERATOR)
    now = _now(sess)
    want_px = None
    direction = None
    for a in args[2:]:
        if a in ("request", "response"):
            direction = a
        elif want_px is None:
            p = stats.find_proxy(sess.state, a)
            if p is None:
                raise CliError("No such proxy.\n")
            want_px = p.name
    entries = []
    for e in list(sess.state.errors):
        px = _name(getattr(e, "proxy", None) or getattr(e, "frontend", None), "")
        if want_px is not None and px != want_px:
            continue
        if direction is not None and getattr(e, "direction", "request") != direction:
            continue
        entries.append(e)
    out = [f"Total events captured on [{_log_date(now)}] : {len(entries)}"]
    for e in entries:
        when = getattr(e, "when", None) or getattr(e, "time", None) or now
        px = _name(getattr(e, "proxy", None) or getattr(e, "frontend", None), "?")
        p = stats.find_proxy(sess.state, px)
        side = "frontend" if getattr(e, "direction", "request") == "request" else "backend"
        out.append("")
        out.append(f"[{_log_date(when)}] {side} {px} (#{p.puid if p else -1}): invalid "
                   f"{getattr(e, 'direction', 'request')}")
        out.append(f"  src {getattr(e, 'src', '?')}, reason: "
                   f"{getattr(e, 'reason', None) or 'invalid message'}")
        raw = getattr(e, "raw", b"") or b""
        out.append(f"  len {len(raw)} :")
        out.append("  ")
        out += _dump(raw)
    return "\n".join(out) + "\n"


def _dump(raw: bytes, width: int = 64) -> list[str]:
    """HAProxy-style escaped dump: offset, then up to `width` bytes, a new line after
    each LF."""
    lines = []
    pos = 0
    while pos < len(raw):
        start, cur = pos, []
        while pos < len(raw) and len(cur) < width:
            b = raw[pos]
            pos += 1
            cur.append(_ESC.get(b) or (chr(b) if 32 <= b < 127 else f"\\x{b:02x}"))
            if b == 0x0A:
                break
        lines.append(f"  {start:05d}  " + "".join(cur))
    return lines


_ESC = {0x0D: "\\r", 0x0A: "\\n", 0x09: "\\t", 0x5C: "\\\\"}


def _log_date(t: float) -> str:
    lt = time.localtime(t)
    return time.strftime("%d/%b/%Y:%H:%M:%S", lt) + f".{int((t % 1) * 1000):03d}"


def cmd_clear_counters(sess: Session, args: list[str]) -> str:
    all_ = len(args) > 2 and args[2] == "all"
    _need_level(sess, ADMIN if all_ else OPERATOR)
    st = sess.state
    for fe in st.frontends.values():
        fe.counters.reset(all_)
    for be in st.backends.values():
        be.counters.reset(all_)
        for s in be.servers:
            s.counters.reset(all_)
    st.max_conn_rate = 0
    st.conn_rate.max = 0
    st.sess_rate.max = 0
    if all_:
        st.cum_conns = 0
        st.cum_req = 0
        for name_servers in st.dns_counters.values():  # (only `all` clears them)
            for c in name_servers:
                c.clear()
    return ""


# ----------------------------------------------------------------- ACL pattern lists

ACL_UNKNOWN = "Unknown ACL identifier. Please use #<id> or <file>.\n"
MAP_UNKNOWN = "Unknown map identifier. Please use #<id> or <file>.\n"
ADD_MAP_USAGE = ("'add map' expects three parameters (map identifier, key and value) or one "
                 "parameter (map identifier) and a payload\n")


def _pattern_ref(sess: Session, ident: str, unknown: str,
                 listed: str | None = None) -> patref.PatternRef:
    """The list ``#<id>`` or file names. `show acl/map` only name the lists they list
    (``listed``: "is_acl" / "is_map"); HAProxy's other commands take any list."""
    refs = sess.state.config.pattern_refs
    ref = refs.find(ident) if refs is not None and ident else None
    if ref is None or (listed is not None and not getattr(ref, listed)):
        raise CliError(unknown)
    return ref


def _acl_ref(sess: Session, ident: str) -> patref.PatternRef:
    return _pattern_ref(sess, ident, ACL_UNKNOWN)


def _list_changed(sess: Session, ref: patref.PatternRef) -> None:
    sess.state.emit("acl_changed", {"ref": ref})


def _show_refs(sess: Session, args: list[str], listed: str, unknown: str) -> str:
    if len(args) < 3:
        refs = sess.state.config.pattern_refs or ()
        return "# id (file) description\n" + "".join(
            f"{r.ref_id} ({r.file}) {r.description()}. curr_ver=0 next_ver=0 "
            f"entry_cnt={len(r.entries)}\n" for r in refs if getattr(r, listed))
    ref = _pattern_ref(sess, args[2], unknown, listed)
    return "".join(f"0x{e.uid:012x} {e.shown()}\n" for e in ref.entries)


def cmd_show_acl(sess: Session, args: list[str]) -> str:
    return _show_refs(sess, args, "is_acl", ACL_UNKNOWN)


def cmd_show_map(sess: Session, args: list[str]) -> str:
    return _show_refs(sess, args, "is_map", MAP_UNKNOWN)


def _lookup_head(look: patref.Lookup) -> str:
    case = "insensitive" if look.icase else "sensitive"
    return f"type={look.method}, case={case}, "


def cmd_get_acl(sess: Session, args: list[str]) -> str:
    if len(args) < 4:
        raise CliError("Missing ACL identifier and/or key.\n")
    out = []
    for look in patref.lookup_all(_acl_ref(sess, args[2]), args[3]):
        head = _lookup_head(look) + "match="
        if look.entry is None:
            out.append(head + "no\n")
        else:
            idx = "tree" if look.tree else "list"
            out.append(head + f'yes, idx={idx}, pattern="{look.entry.text}"\n')
    return "".join(out)


def cmd_get_map(sess: Session, args: list[str]) -> str:
    if len(args) < 4:
        raise CliError("Missing map identifier and/or key.\n")
    out = []
    for look in patref.lookup_all(_pattern_ref(sess, args[2], MAP_UNKNOWN), args[3]):
        head = _lookup_head(look) + "found="
        if look.entry is None:
            out.append(head + "no\n")
            continue
        line = (head + f'yes, idx={"tree" if look.tree else "list"}, '
                f'key="{look.entry.text}", value=')
        if not look.out:  # an ACL using the list: no value
            out.append(line + "none\n")
        else:
            out.append(line + f'"{maps.value_text(look.value)}", '
                       f'type="{maps.type_name(look.out, look.value)}"\n')
    return "".join(out)


def cmd_add_acl(sess: Session, args: list[str]) -> str:
    if len(args) < 4:
        raise CliError("'add acl' expects two parameters: ACL identifier and pattern.\n")
    ref = _acl_ref(sess, args[2])
    if ref.two_column:
        raise CliError("This ACL is shared with a map containing samples. You must use the "
                       "command 'add map' to add values.\n")
    err = patref.add(ref, args[3])
    if err is not None:
        raise CliError(err + ".\n")
    _list_changed(sess, ref)
    return ""


def cmd_add_map(sess: Session, args: list[str]) -> str:
    """`add map <map> <key> <value>`, or `add map <map> <<` with one ``key value``
    a line: a payload is all or nothing (lb checks every line before adding any)."""
    payload = sess.payload
    if len(args) < 3 or (len(args) < 5 and not (len(args) == 3 and payload is not None)):
        raise CliError(ADD_MAP_USAGE)
    ref = _pattern_ref(sess, args[2], MAP_UNKNOWN)
    if len(args) >= 5:
        pairs = [(args[3], args[4])]
    else:
        pairs = []
        for line in (payload or "").split("\n"):
            words = line.split()
            if not words:
                continue
            if len(words) < 2:
                raise CliError(ADD_MAP_USAGE)
            pairs.append((words[0], line.strip()[len(words[0]):].strip()))
    for key, value in pairs:
        err = patref.check_pattern(ref, key, value)
        if err is not None:
            raise CliError(err + ".\n")
    for key, value in pairs:
        patref.add(ref, key, value)
    _list_changed(sess, ref)
    return ""


def cmd_set_map(sess: Session, args: list[str]) -> str:
    if len(args) < 5:
        raise CliError("'set map' expects three parameters: map identifier, key and value.\n")
    ref = _pattern_ref(sess, args[2], MAP_UNKNOWN)
    err = patref.set_value(ref, args[3], args[4])
    if err is not None:
        raise CliError(err + ".\n")
    _list_changed(sess, ref)
    return ""


def _del(sess: Session, args: list[str], what: str, unknown: str) -> str:
    if len(args) < 4:
        raise CliError(f"This command expects two parameters: {what} identifier and key.\n")
    ref = _pattern_ref(sess, args[2], unknown)
    if not patref.delete(ref, args[3]):
        raise CliError("Key not found.\n")
    _list_changed(sess, ref)
    return ""


def cmd_del_acl(sess: Session, args: list[str]) -> str:
    return _del(sess, args, "ACL", ACL_UNKNOWN)


def cmd_del_map(sess: Session, args: list[str]) -> str:
    return _del(sess, args, "map", MAP_UNKNOWN)


def _clear(sess: Session, args: list[str], what: str, unknown: str) -> str:
    if len(args) < 3:
        raise CliError(f"Missing {what} identifier.\n")
    ref = _pattern_ref(sess, args[2], unknown)
    patref.clear(ref)
    _list_changed(sess, ref)
    return ""


def cmd_clear_acl(sess: Session, args: list[str]) -> str:
    return _clear(sess, args, "ACL", ACL_UNKNOWN)


def cmd_clear_map(sess: Session, args: list[str]) -> str:
    return _clear(sess, args, "map", MAP_UNKNOWN)


# ----------------------------------------------------------------- stick tables

NO_TABLE = "No such table\n"


def _table_clock() -> float:
    """The clock the tables' expiry dates use: the event loop's (lb.proxy.stick)."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


TABLES_IN_WORKERS = ("lb keeps stick tables in each worker process; this master socket "
                     "has none to show or change (docs/balancing.md, \"Stick tables\").\n")


def _table(sess: Session, name: str) -> Any:
    if sess.state.tables_in_workers and sess.state.tables:
        raise CliError(TABLES_IN_WORKERS)
    table = sess.state.tables.get(name)
    if table is None:
        raise CliError(NO_TABLE)
    return table


def _table_key(table: Any, args: list[str], pos: int) -> Any:
    """``key <k>`` at ``pos``: the key in the table's type (None: no such key can exist)."""
    if len(args) <= pos + 1 or not args[pos + 1]:
        raise CliError("Key value expected\n")
    return table.key(args[pos + 1].encode("utf-8", "surrogateescape"))


def cmd_show_table(sess: Session, args: list[str]) -> str:
    now = _table_clock()
    if len(args) < 3:
        if sess.state.tables_in_workers and sess.state.tables:
            raise CliError(TABLES_IN_WORKERS)
        return "".join(t.header() for t in reversed(sess.state.tables.values()))
    table = _table(sess, args[2])
    if len(args) > 3 and args[3] == "key":
        key = _table_key(table, args, 3)
        e = table.entries.get(key) if key is not None else None
        if e is None or (e.expire is not None and e.expire <= now):
            return ""
        if sess.level < OPERATOR:
            return table.header() + "# contents not dumped due to insufficient privileges\n"
        return table.header() + table.entry_line(key, e, now)
    filters = _table_filters(table, args[3:])
    table.purge(now)
    if sess.level < OPERATOR:
        return table.header() + "# contents not dumped due to insufficient privileges\n"
    return table.header() + "".join(table.entry_line(k, e, now) for k, e in table.live(now)
                                    if not filters or table.matches(e, filters, now))


def _table_filters(table: Any, words: list[str]) -> list[Any]:
    """`data.<type> <op> <value>` filters of show/clear table (HAProxy's errors)."""
    try:
        return table.filters(words)
    except FilterError as exc:
        raise CliError(str(exc)) from None


def cmd_clear_table(sess: Session, args: list[str]) -> str:
    if len(args) < 3:
        raise CliError('Required arguments: <table> "data.<store_data_type>" <operator> '
                       "<value> or <table> key <key>\n")
    table = _table(sess, args[2])
    if len(args) > 3 and args[3] == "key":
        key = _table_key(table, args, 3)
        if key is not None:
            table.remove(key)
        return ""
    if len(args) > 3 and args[3] == "data.server_id" and len(args) > 5 and table.with_server:
        op, value = args[4], c_atoi(args[5])
        keep = {"eq": value.__ne__, "ne": value.__eq__}.get(op)
        if keep is None:
            raise CliError("Require an operator among \"eq\", \"ne\", \"le\", \"ge\", "
                           "\"lt\", \"gt\"\n")
        for k, e in list(table.entries.items()):
            if not keep(e.server_id):
                table.remove(k)
        return ""
    if len(args) > 3:
        filters = _table_filters(table, args[3:])
        now = _table_clock()
        for k, e in list(table.entries.items()):
            if table.matches(e, filters, now):
                table.remove(k)
        return ""
    table.clear()
    return ""


def cmd_set_table(sess: Session, args: list[str]) -> str:
    """`set table <t> key <k> data.<type> <v> ...`: stick a key to a server
    (`server_id`), or set its stored counters."""
    if len(args) < 3:
        return ""
    table = _table(sess, args[2])
    if len(args) < 4 or args[3] != "key":
        return ""
    key = _table_key(table, args, 3)
    if key is None:
        raise CliError("Invalid key\n")
    pos = 5
    sid: int | None = None
    values: list[tuple[str, int]] = []
    now = _table_clock()
    # HAProxy creates the entry before it reads the data: an error leaves it there
    e = table.get_or_create(key, now) if table.stores and pos < len(args) else None
    while pos < len(args):
        name = args[pos][5:] if args[pos].startswith("data.") else ""
        if name not in KNOWN_TYPES:
            raise CliError("Unknown data type\n")
        text = args[pos + 1] if pos + 1 < len(args) else ""
        if name == "server_id" and table.with_server:
            if pos + 1 >= len(args):
                raise CliError("Require a valid integer value to store\n")
            sid = c_atoi(text)
        elif (data := table.cli_type(name)) is None:
            raise CliError("Data type not stored in this table\n")
        elif not text.lstrip("-").isdigit():
            raise CliError("Require a valid integer value to store\n")
        else:
            values.append((data, int(text)))
        pos += 2
    if sid is not None:  # (no server name: HAProxy shows `server_key=-` then too)
        table.store(key, sid, "", now)
    for name, value in values:
        if e is not None:
            table.set_value(e, name, value, now)
    return ""


# ----------------------------------------------------------------- frontends, maxconn


def _frontend_arg(sess: Session, args: list[str], pos: int) -> Any:
    if len(args) <= pos or not args[pos]:
        raise CliError("A frontend name is expected.\n")
    fst = sess.state.frontends.get(args[pos])
    if fst is None and args[pos].startswith("#"):
        fst = next((f for f in sess.state.frontends.values()
                    if f"#{f.model.puid}" == args[pos]), None)
    if fst is None:
        raise CliError("No such frontend.\n")
    return fst


def _frontend_changed(sess: Session, fst: Any) -> None:
    sess.state.emit("frontend_changed", {"frontend": fst})


def _pause_frontend(sess: Session, args: list[str], pause: bool) -> str:
    fst = _frontend_arg(sess, args, 2)
    verb = "disable" if pause else "enable"
    if fst.stopped:
        raise CliError(f"Frontend was previously shut down, cannot {verb}.\n")
    if fst.paused == pause:
        raise CliError(f"All sockets are already {verb}d.\n")
    fst.paused = pause
    fst.status = "PAUSED" if pause else "OPEN"
    _frontend_changed(sess, fst)
    return ""


def cmd_disable_frontend(sess: Session, args: list[str]) -> str:
    return _pause_frontend(sess, args, True)


def cmd_enable_frontend(sess: Session, args: list[str]) -> str:
    return _pause_frontend(sess, args, False)


def cmd_shutdown_frontend(sess: Session, args: list[str]) -> str:
    fst = _frontend_arg(sess, args, 2)
    if fst.stopped:
        raise CliError("Frontend was already shut down.\n")
    fst.stopped = True
    fst.paused = False
    _frontend_changed(sess, fst)
    fst.status = "STOP"
    return ""


def cmd_set_maxconn_frontend(sess: Session, args: list[str]) -> str:
    fst = _frontend_arg(sess, args, 3)
    if len(args) < 5 or not args[4]:
        raise CliError("Integer value expected.\n")
    v = c_atoi(args[4])
    if v < 0:
        raise CliError("Value out of range.\n")
    fst.maxconn = v
    _frontend_changed(sess, fst)
    return ""


def cmd_set_maxconn_server(sess: Session, args: list[str]) -> str:
    _be, srv = _server_arg(sess, args, 3)
    if len(args) < 5 or not args[4]:
        raise CliError("Require <maxconn>.\n")
    try:
        srvadmin.change_maxconn(srv, args[4])
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return ""


def cmd_set_maxconn_global(sess: Session, args: list[str]) -> str:
    if len(args) < 4 or not args[3]:
        raise CliError("Expects an integer value.\n")
    v = c_atoi(args[3])
    hard = stats.hard_maxconn(sess.state)
    if v > hard:
        raise CliError("Value out of range.\n")
    sess.state.maxconn = v if v > 0 else None
    sess.state.emit("maxconn_changed", {})
    return ""


def cmd_disable_server(sess: Session, args: list[str]) -> str:
    _be, srv = _server_arg(sess, args, 2)
    change_admin(sess, srv, "maint")
    return ""


def cmd_enable_server(sess: Session, args: list[str]) -> str:
    _be, srv = _server_arg(sess, args, 2)
    change_admin(sess, srv, "ready")
    return ""


def cmd_disable_health(sess: Session, args: list[str]) -> str:
    _be, srv = _server_arg(sess, args, 2)
    srv.check_enabled = False
    return ""


def cmd_enable_health(sess: Session, args: list[str]) -> str:
    _be, srv = _server_arg(sess, args, 2)
    if not srv.model.check:
        raise CliError("Health check was not configured on this server, cannot enable.\n")
    srv.check_enabled = True
    return ""


def cmd_get_weight(sess: Session, args: list[str]) -> str:
    _be, srv = _server_arg(sess, args, 2)
    return f"{srv.uweight} (initial {srv.iweight})\n"


def cmd_set_weight(sess: Session, args: list[str]) -> str:
    _be, srv = _server_arg(sess, args, 2)
    return _set_weight(sess, srv, args[3] if len(args) > 3 else None)


SET_SERVER_USAGE = ("usage: set server <backend>/<server> addr | agent | agent-addr | "
                    "agent-port | agent-send | check-addr | check-port | fqdn | health | "
                    "ssl | state | weight\n")


def cmd_set_server(sess: Session, args: list[str]) -> str:
    _be, srv = _server_arg(sess, args, 2)
    what = args[3] if len(args) > 3 else ""
    value = args[4] if len(args) > 4 else None
    if what == "state":
        if value not in ("ready", "drain", "maint"):
            raise CliError("'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n")
        change_admin(sess, srv, value)
        return ""
    if what == "weight":
        return _set_weight(sess, srv, value)
    if what == "health":
        return _set_health(sess, srv, value)
    if what == "addr":
        return _set_addr(sess, srv, args[4:])
    if what == "fqdn":
        return _set_fqdn(sess, srv, value)
    if what in ("agent", "agent-addr", "agent-port", "agent-send"):
        return _set_agent(sess, srv, what, value)
    if what == "ssl":
        return _set_ssl(sess, srv, value)
    raise CliError(SET_SERVER_USAGE)


def _set_ssl(sess: Session, srv: ServerState, value: str | None) -> str:
    """`set server b/s ssl on|off`: TLS to the server for new connections (idle ones
    are closed), where the server has TLS settings (its own `ssl` or `check-ssl`, or
    its `default-server`'s `ssl`, as in HAProxy 2.6.12); its checks keep theirs.
    HAProxy's texts."""
    if value not in ("on", "off"):
        raise CliError("'set server <srv> ssl' expects 'on' or 'off'.\n")
    m = srv.model
    if not (m.ssl or m.ssl_default or m.check_ssl):
        raise CliError("'set server <srv> ssl' cannot be set.  default-server should "
                       "define ssl settings\n")
    srv.use_ssl = 1 if value == "on" else 0
    sess.state.emit("server_ssl", {"backend": srv.backend, "server": srv})
    return "server ssl setting updated.\n"


def _set_agent(sess: Session, srv: ServerState, what: str, value: str | None) -> str:
    """`set server b/s agent up|down`, `agent-addr <ip>`, `agent-port <port>`,
    `agent-send <string>` (HAProxy 2.6.12's answer texts)."""
    agent = srv.agent
    if agent is None or not agent.enabled:
        raise CliError("agent checks are not enabled on this server.\n")
    if what == "agent":
        if value not in ("up", "down"):
            raise CliError("'set server <srv> agent' expects 'up' or 'down'.\n")
        for level, text in srvadmin.force_agent(srv, value, _now(sess)):
            sess.log_event(srv.backend, level, text)
    elif what == "agent-addr":
        if not value:
            raise CliError("set server <b>/<s> agent-addr requires an address and "
                           "optionally a port.\n")
        try:
            agent.addr = str(ipaddress.ip_address(value))
        except ValueError:
            raise CliError(f"invalid addr '{value}'") from None
    elif what == "agent-port":
        if not value:
            raise CliError("set server <b>/<s> agent-port requires a port.\n")
        if not value.isdigit():
            raise CliError("provided port is not an integer")
        if not 0 < int(value) <= 65535:
            raise CliError("provided port is invalid")
        agent.port = int(value)
    else:
        agent.send = value or ""
    return ""


def cmd_enable_agent(sess: Session, args: list[str]) -> str:
    _be, srv = _server_arg(sess, args, 2)
    if srv.agent is None:
        raise CliError("Agent was not configured on this server, cannot enable.\n")
    srv.agent.enabled = True
    return ""


def cmd_disable_agent(sess: Session, args: list[str]) -> str:
    _be, srv = _server_arg(sess, args, 2)
    if srv.agent is not None:
        srv.agent.enabled = False
    return ""


def _set_addr(sess: Session, srv: ServerState, rest: list[str]) -> str:
    """`set server b/s addr <ip> [port <port>]`: where new connections go from now on
    (idle ones to the old address are closed); HAProxy 2.6.12's answer texts."""
    if not rest or not rest[0]:
        raise CliError("set server <b>/<s> addr requires an address and optionally a port.\n")
    by = " by 'stats socket command'\n"
    try:
        new_ip = str(ipaddress.ip_address(rest[0].removeprefix("[").removesuffix("]")))
    except ValueError:
        raise CliError(f"Invalid addr '{rest[0]}'{by}") from None
    if srv.unix_path is not None:  # (HAProxy 2.6.12 changes only IPv4/IPv6 ones)
        return ("Update for the current server address family is only supported "
                "through configuration file" + by)
    said = []
    if new_ip == srv.addr:
        said.append("no need to change the addr")
    else:
        said.append(f"IP changed from '{srv.addr}' to '{new_ip}'")
    new_port = srv.port
    if len(rest) > 1 and rest[1] == "port":
        text = rest[2] if len(rest) > 2 else ""
        if not text.isdigit():
            said.append(f"problem converting port '{text}' to an int")
        else:
            new_port = int(text) & 0xFFFF  # (HAProxy keeps the low 16 bits)
            if new_port == srv.port:
                said.append("no need to change the port")
            else:
                said.append(f"port changed from '{srv.port}' to '{new_port}'")
    if new_ip != srv.addr or new_port != srv.port:
        srv.addr, srv.port = new_ip, new_port
        sess.state.cli_addrs.add((srv.backend.name, srv.name))
        sess.state.emit("server_addr", {"backend": srv.backend, "server": srv})
    return ", ".join(said) + by


def _set_fqdn(sess: Session, srv: ServerState, value: str | None) -> str:
    """`set server b/s fqdn <name>`: the name its resolvers resolve from now on (its
    address changes with the next answer); HAProxy 2.6.12's texts."""
    if not value:
        raise CliError("set server <b>/<s> fqdn requires a FQDN.\n")
    if srv.model.resolvers is None:
        raise CliError("set server <b>/<s> fqdn failed because no resolution is "
                       "configured.\n")
    if srv.model.host.startswith("_"):
        raise CliError("set server <b>/<s> fqdn failed because SRV resolution is "
                       "configured.\n")
    by = " by 'stats socket command'\n"
    if value == srv.fqdn:
        return "no need to change the FDQN" + by  # (sic)
    if len(value) > 255 or not all(c.isascii() and (c.isalnum() or c in ".-_")
                                   for c in value):
        return f"invalid fqdn '{value}'" + by
    old = srv.fqdn if srv.fqdn is not None else "(null)"
    # the same name in other letters: HAProxy 2.6.12 says it changed, and keeps it
    if old.lower() != value.lower():
        srv.fqdn = value
        sess.state.emit("server_fqdn", {"backend": srv.backend, "server": srv})
    return f"{srv.backend.name}/{srv.name} changed its FQDN from {old} to {value}" + by


def _set_health(sess: Session, srv: ServerState, value: str | None) -> str:
    if value not in srvadmin.HEALTH_VALUES:
        raise CliError("'set server <srv> health' expects 'up', 'stopping', or 'down'.\n")
    for level, text in srvadmin.force_health(srv, value, _now(sess)):
        sess.log_event(srv.backend, level, text)
    return ""


# Rows are alphabetical by words; help/prompt/quit are listed last as HAProxy does.
CLI_COMMANDS: tuple[CliCommand, ...] = (
    CliCommand(("add", "acl"), "add acl <acl> <pattern>", "add a pattern to an ACL list",
               OPERATOR, cmd_add_acl),
    CliCommand(("add", "map"), "add map <map> <key> <val>",
               "add a map entry (payload supported instead of key/val)", OPERATOR,
               cmd_add_map),
    CliCommand(("clear", "acl"), "clear acl <acl>", "remove every pattern of an ACL list",
               OPERATOR, cmd_clear_acl),
    CliCommand(("clear", "counters"), "clear counters [all]",
               "clear max statistics counters (or all counters)", OPERATOR, cmd_clear_counters,
               level_for=lambda w: ADMIN if w[2:3] == ["all"] else OPERATOR),
    CliCommand(("clear", "map"), "clear map <map>", "remove every entry of a map",
               OPERATOR, cmd_clear_map),
    CliCommand(("clear", "table"), "clear table <table> [key <k>|data.<type> <op> <v>]",
               "remove an entry of a stick table, those matching, or all", OPERATOR,
               cmd_clear_table),
    CliCommand(("del", "acl"), "del acl <acl> [<key>|#<ref>]",
               "remove the patterns written <key>, or entry #<ref>", OPERATOR, cmd_del_acl),
    CliCommand(("del", "map"), "del map <map> [<key>|#<ref>]",
               "remove the entries keyed <key>, or entry #<ref>", OPERATOR, cmd_del_map),
    CliCommand(("disable", "agent"), "disable agent <bk>/<srv>", "disable agent checks",
               ADMIN, cmd_disable_agent),
    CliCommand(("disable", "dynamic-cookie", "backend"), "disable dynamic-cookie backend <bk>",
               "disable dynamic cookies on a specific backend", ADMIN, _dyncookie(False)),
    CliCommand(("disable", "frontend"), "disable frontend <frontend>",
               "stop accepting on a frontend for a while", ADMIN, cmd_disable_frontend),
    CliCommand(("disable", "health"), "disable health <bk>/<srv>", "disable health checks",
               ADMIN, cmd_disable_health),
    CliCommand(("disable", "server"), "disable server (DEPRECATED)",
               "disable a server for maintenance (use 'set server' instead)", ADMIN,
               cmd_disable_server),
    CliCommand(("enable", "agent"), "enable agent <bk>/<srv>", "enable agent checks",
               ADMIN, cmd_enable_agent),
    CliCommand(("enable", "dynamic-cookie", "backend"), "enable dynamic-cookie backend <bk>",
               "enable dynamic cookies on a specific backend", ADMIN, _dyncookie(True)),
    CliCommand(("enable", "frontend"), "enable frontend <frontend>",
               "accept again on a disabled frontend", ADMIN, cmd_enable_frontend),
    CliCommand(("enable", "health"), "enable health <bk>/<srv>", "enable health checks",
               ADMIN, cmd_enable_health),
    CliCommand(("enable", "server"), "enable server  (DEPRECATED)",
               "enable a disabled server (use 'set server' instead)", ADMIN,
               cmd_enable_server),
    CliCommand(("experimental-mode",), "experimental-mode [on|off]",
               "allow the experimental commands (set var)", ADMIN, cmd_experimental_mode,
               hidden=True),
    CliCommand(("get", "acl"), "get acl <acl> <value>",
               "say which pattern of an ACL list matches a value", USER, cmd_get_acl),
    CliCommand(("get", "map"), "get map <map> <value>",
               "say which entry of a map matches a value, and its value", USER, cmd_get_map),
    CliCommand(("get", "var"), "get var <name>",
               "retrieve contents of a process-wide variable", OPERATOR, cmd_get_var),
    CliCommand(("get", "weight"), "get weight <bk>/<srv>", "report a server's current weight",
               USER, cmd_get_weight),
    CliCommand(("operator",), "operator",
               "lower the level of the current CLI session to operator", USER,
               cmd_level_operator),
    CliCommand(("set", "dynamic-cookie-key", "backend"), "set dynamic-cookie-key backend <bk> <k>",
               "change a backend secret key for dynamic cookies", ADMIN, cmd_set_dyncookie_key),
    CliCommand(("set", "map"), "set map <map> [<key>|#<ref>] <value>",
               "change the value of the entries keyed <key>, or of entry #<ref>", OPERATOR,
               cmd_set_map),
    CliCommand(("set", "maxconn", "frontend"), "set maxconn frontend <frontend> <value>",
               "change a frontend's connection limit", ADMIN, cmd_set_maxconn_frontend),
    CliCommand(("set", "maxconn", "global"), "set maxconn global <value>",
               "change the process's connection limit", ADMIN, cmd_set_maxconn_global),
    CliCommand(("set", "maxconn", "server"), "set maxconn server <bk>/<srv>",
               "change a server's connection limit", ADMIN, cmd_set_maxconn_server),
    CliCommand(("set", "server"), "set server <bk>/<srv> [opts]",
               "change a server's state, weight or health", ADMIN, cmd_set_server),
    CliCommand(("set", "table"), "set table <table> key <k> data.<type> <v> ...",
               "stick a key to a server, or set its counters", OPERATOR, cmd_set_table),
    CliCommand(("set", "var"), "set var <name> [fmt|expr] {<fmt>|<expr>}",
               "set variable from an expression or a format", ADMIN, cmd_set_var,
               experimental=True),
    CliCommand(("set", "weight"), "set weight <bk>/<srv>  (DEPRECATED)",
               "change a server's weight (use 'set server' instead)", ADMIN, cmd_set_weight),
    CliCommand(("show", "acl"), "show acl [<acl>]",
               "list the ACL pattern lists, or the patterns of one", USER, cmd_show_acl),
    CliCommand(("show", "backend"), "show backend",
               "list backends in the current running config", USER, cmd_show_backend),
    CliCommand(("show", "cli", "level"), "show cli level",
               "display the level of the current CLI session", USER, cmd_show_cli_level),
    CliCommand(("show", "config"), "show config",
               "print the configuration as it was loaded", ADMIN, cmd_show_config),
    CliCommand(("show", "errors"), "show errors [<px>] [request|response]",
               "report last request and/or response errors for each proxy", OPERATOR,
               cmd_show_errors),
    CliCommand(("show", "events"), "show events [<sink>] [-w] [-n]", "show event sink state",
               USER, cmd_show_events,
               level_for=lambda w: OPERATOR if [a for a in w[2:] if a[:1] != "-"] else USER),
    CliCommand(("show", "info"), "show info [desc|json|typed|float]*",
               "report information about the running process", USER, cmd_show_info),
    CliCommand(("show", "map"), "show map [<map>]",
               "list the maps, or the entries of one", USER, cmd_show_map),
    CliCommand(("show", "resolvers"), "show resolvers [id]",
               "dumps counters from all resolvers section and associated name servers", USER,
               cmd_show_resolvers),
    CliCommand(("show", "servers", "state"), "show servers state [<backend>]",
               "dump volatile server information (all or for a single backend)", USER,
               cmd_show_servers_state),
    CliCommand(("show", "sess"), "show sess [id]",
               "report the list of current sessions or dump this exact session", OPERATOR,
               cmd_show_sess),
    CliCommand(("show", "stat"), "show stat [desc|json|no-maint|typed|up]*",
               "report counters for each proxy and server", USER, cmd_show_stat),
    CliCommand(("show", "table"), "show table [<table> [key <k>|data.<type> <op> <v>...]]",
               "list the stick tables, or the entries of one", USER, cmd_show_table),
    CliCommand(("show", "websockets"), "show websockets [json]",
               "list open WebSocket tunnels and WebSocket counters", OPERATOR,
               cmd_show_websockets),
    CliCommand(("shutdown", "frontend"), "shutdown frontend <frontend>",
               "close a frontend's listeners for good", ADMIN, cmd_shutdown_frontend),
    CliCommand(("shutdown", "session"), "shutdown session [id]", "kill a specific session",
               ADMIN, cmd_shutdown_session),
    CliCommand(("shutdown", "sessions", "server"), "shutdown sessions server <bk>/<srv>",
               "kill sessions on a server", ADMIN, cmd_shutdown_sessions_server),
    CliCommand(("user",), "user", "lower the level of the current CLI session to user",
               USER, cmd_level_user),
    CliCommand(("help",), "help [<command>]", "list matching or all commands", USER,
               cmd_help),
    CliCommand(("prompt",), "prompt", "toggle interactive mode with prompt", USER,
               cmd_prompt),
    CliCommand(("quit",), "quit", "disconnect", USER, cmd_quit),
)
_TAIL = CLI_COMMANDS[-3:]


def lookup(words: list[str]) -> CliCommand | None:
    """The command whose words start the input (longest match wins)."""
    best = None
    for c in CLI_COMMANDS:
        n = len(c.words)
        if tuple(words[:n]) == c.words and (best is None or n > len(best.words)):
            best = c
    return best


def execute(sess: Session, cmd: str) -> str:
    """Run one command (already split from its line); the answer without the
    trailing empty line."""
    words = split_words(cmd)
    c = lookup(words)
    if c is None:
        return unknown_command(sess, words)
    if c.experimental and not sess.experimental:  # said before the level (HAProxy)
        return "This command is restricted to experimental mode only.\n"
    try:
        _need_level(sess, c.required(words))
        return c.handler(sess, words)
    except CliError as e:
        return str(e)
    except Exception as e:  # a bug must not cost the session or the process
        return f"Internal error in '{' '.join(c.words)}': {type(e).__name__}: {e}\n"


def run_line(sess: Session, line: str) -> str:
    """All commands of one input line, each answer followed by an empty line (and
    by the prompt in interactive mode)."""
    out = []
    for cmd in split_commands(line):
        answer = execute(sess, cmd)
        if sess.quit:  # `quit` answers nothing, not even the empty line
            out.append(answer)
            break
        out.append(answer + "\n")
        if sess.prompt:
            out.append("> ")
    return "".join(out)


# ----------------------------------------------------------------- socket server


class _CliProtocol(asyncio.Protocol):
    """One stats-socket connection."""

    __slots__ = ("server", "sess", "transport", "buf", "timer", "limit", "closed",
                 "payload_head", "payload_lines", "waiting")

    def __init__(self, server: CliServer, level: int) -> None:
        self.server = server
        self.sess = Session(server.state, level=level, log_event=server.log_event,
                            clock=server.clock)
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.timer: asyncio.TimerHandle | None = None
        self.limit = server.max_line
        self.closed = False
        self.payload_head: str | None = None
        self.payload_lines: list[str] = []
        self.waiting = False  # over `stats maxconn`: read nothing until admitted

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.conns.add(self)
        if len(self.server.conns) > self.server.maxconn:
            # over `stats maxconn`: wait, unanswered and without a timer, for a free
            # slot. (uvloop starts reading after connection_made, undoing a pause made
            # here: data_received pauses again, and keeps what came for later.)
            transport.pause_reading()  # type: ignore[attr-defined]
            self.waiting = True
            self.server.waiting.append(self)
            return
        self._arm()

    def admit(self) -> None:
        """A slot is free: answer what came while waiting, and read on."""
        self.waiting = False
        assert self.transport is not None
        self.transport.resume_reading()  # type: ignore[attr-defined]
        self._arm()
        if self.buf:
            self.data_received(b"")

    def _arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.server.timeout:
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(self.server.timeout, self._expire)

    def _expire(self) -> None:
        self._close()

    def data_received(self, data: bytes) -> None:
        if self.waiting:
            self.buf += data
            self.transport.pause_reading()  # type: ignore[union-attr]
            return
        self._arm()
        self.buf += data
        answered = False
        while b"\n" in self.buf and not self.closed:
            raw, self.buf = self.buf.split(b"\n", 1)
            if len(raw) > self.limit:
                self._too_long()
                return
            line = raw.decode("utf-8", "replace").rstrip("\r")
            answer = self._line(line)
            if answer is None:
                continue  # inside a payload
            answered = True
            assert self.transport is not None
            self.transport.write(answer.encode("utf-8", "replace"))
            if self.sess.quit:
                self._close()
                return
        if len(self.buf) > self.limit:
            self._too_long()
            return
        if answered and not self.sess.prompt and not self.closed and self.payload_head is None:
            self._close()

    def _line(self, line: str) -> str | None:
        if self.payload_head is not None:
            if line:
                self.payload_lines.append(line)
                return None
            head, self.payload_head = self.payload_head, None
            self.sess.payload = "\n".join(self.payload_lines)
            self.payload_lines = []
            try:
                return run_line(self.sess, head)
            finally:
                self.sess.payload = None
        if line.endswith(" <<"):
            self.payload_head = line[:-3]
            return None
        return run_line(self.sess, line)

    def _too_long(self) -> None:
        assert self.transport is not None
        self.transport.write(b"Command line too long.\n\n")
        self._close()

    def eof_received(self) -> bool:
        if self.buf.strip() and not self.closed:
            line = self.buf.decode("utf-8", "replace").rstrip("\r")
            self.buf = b""
            assert self.transport is not None
            self.transport.write(run_line(self.sess, line).encode("utf-8", "replace"))
        self._close()
        return False

    def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        self.server.conns.discard(self)
        if self in self.server.waiting:
            self.server.waiting.remove(self)
        self.server.admit()


@dataclass(eq=False)
class CliServer:
    """The running stats sockets (one asyncio server per `stats socket` line)."""

    state: State
    timeout: float
    maxconn: int
    log_event: LogEvent = stderr_log_event
    clock: Callable[[], float] = time.time
    max_line: int = 16384
    servers: list[asyncio.base_events.Server] = field(default_factory=list)
    addresses: list[Any] = field(default_factory=list)  # bound address per socket
    unix_paths: list[tuple[str, int]] = field(default_factory=list)  # (path, inode)
    conns: set[_CliProtocol] = field(default_factory=set)
    waiting: list[_CliProtocol] = field(default_factory=list)

    def admit(self) -> None:
        while self.waiting and len(self.conns) - len(self.waiting) < self.maxconn:
            p = self.waiting.pop(0)
            if p.transport is not None and not p.closed:
                p.admit()

    def stop_listening(self) -> None:
        """Accept no more connections (the process is stopping); open sessions go on."""
        for srv in self.servers:
            srv.close()
        self._unlink_own()

    def close(self) -> None:
        for srv in self.servers:
            srv.close()
        for p in list(self.conns):
            p._close()
        self._unlink_own()

    def _unlink_own(self) -> None:
        for path, ino in self.unix_paths:
            # only our own socket: a newer process may have renamed its own into place
            with contextlib.suppress(OSError):
                if os.stat(path).st_ino == ino:
                    os.unlink(path)
        self.unix_paths = []

    async def wait_closed(self) -> None:
        for srv in self.servers:
            await srv.wait_closed()


def _unix_socket(path: str, mode: int | None, take_over: bool = False) -> socket.socket:
    """Listen on ``path``. A socket another process still serves there is refused,
    unless ``take_over`` (a successor started with -sf/-st): the new socket is renamed
    over it, and the old process, which unlinks only its own, leaves it in place."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    if st is not None and take_over:
        if not stat_mod.S_ISSOCK(st.st_mode):
            raise OSError(f"'{path}' exists and is not a socket")
    elif st is not None:
        if not stat_mod.S_ISSOCK(st.st_mode):
            raise OSError(f"'{path}' exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # stale socket left by a dead process
        else:
            raise OSError(f"'{path}' is in use by another process")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = f"{path}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    sock.bind(tmp)
    if mode is not None:
        os.chmod(tmp, mode)
    os.rename(tmp, path)  # the socket appears only once its mode is right
    sock.listen(64)
    sock.setblocking(False)
    return sock


def _abstract_socket(name: str) -> socket.socket:
    """Listen on ``name`` in Linux's abstract namespace (`abns@`): no file to stat,
    replace or remove; taken while another process holds it (EADDRINUSE)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(name)
    except OSError:
        sock.close()
        raise
    sock.listen(64)
    sock.setblocking(False)
    return sock


def _tcp_socket(host: str, port: int) -> socket.socket:
    host = host or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # as the frontends' listeners: a successor (-sf/-st) binds beside this process,
    # which stops accepting once it is told to finish
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(64)
    sock.setblocking(False)
    return sock


def _factory(cli: CliServer, level: int) -> Callable[[], _CliProtocol]:
    return lambda: _CliProtocol(cli, level)


async def serve_cli(state: State, sockets: Sequence[StatsSocket], *, timeout: float,
                    maxconn: int, log_event: LogEvent | None = None,
                    clock: Callable[[], float] = time.time,
                    take_over: bool = False) -> CliServer:
    """Start listening on every `stats socket`; returns the server (``close()``).
    ``take_over``: unix sockets still served by the processes this one succeeds are
    replaced (see ``_unix_socket``)."""
    loop = asyncio.get_running_loop()
    cli = CliServer(state, timeout=timeout, maxconn=max(maxconn, 1),
                    log_event=log_event or stderr_log_event, clock=clock,
                    max_line=max(state.config.global_.tune_bufsize, 1024))
    try:
        for spec in sockets:
            try:
                if spec.kind == "unix" and spec.address.startswith("\0"):
                    sock = _abstract_socket(spec.address)
                elif spec.kind == "unix":
                    sock = _unix_socket(spec.address, spec.mode, take_over)
                    cli.unix_paths.append((spec.address, os.stat(spec.address).st_ino))
                elif spec.kind == "fd":
                    sock = socket.socket(fileno=int(spec.address))
                    sock.setblocking(False)
                else:
                    sock = _tcp_socket(spec.address, spec.port or 0)
            except OSError as e:
                where = (spec.address if spec.kind != "tcp"
                         else f"{spec.address}:{spec.port or 0}")
                raise OSError(e.errno, f"Starting the stats socket: cannot bind "
                                       f"({e.strerror or e}) [{where}]") from e
            level = LEVELS.get(spec.level, OPERATOR)
            factory = _factory(cli, level)
            if sock.family == socket.AF_UNIX:
                server = await loop.create_unix_server(factory, sock=sock)
            else:
                server = await loop.create_server(factory, sock=sock)
            cli.servers.append(server)
            cli.addresses.append(spec.address if spec.kind == "unix" else sock.getsockname())
    except BaseException:
        cli.close()
        raise
    return cli
