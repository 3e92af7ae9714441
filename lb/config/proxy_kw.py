"""defaults / frontend / backend / listen keywords.

Owns: the PROXY_KEYWORDS table (mode, bind, maxconn, log, option, timeout, acl,
use_backend, http-request, balance, cookie, stats, errorfile, ...), the OPTIONS
table, the http-request/http-response action parsers, condition compilation
through ``lb.match.acl`` (with the wrapped-line recovery), and HAProxy's messages
for removed keywords (spec §1.5–1.8, §2.4, §3–§8, §11, §12).

Must not import: lb.config.build.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import lb.config.action_lists as action_lists
import lb.config.bind_kw as bind_kw
import lb.config.check_kw as check_kw
import lb.config.model as m
import lb.config.server_kw as server_kw
import lb.config.stick_kw as stick_kw
import lb.config.var_kw as var_kw
from lb.config import mailers_kw
from lb.config.addresses import SOCKET_PREFIXES, socket_path
from lb.config.lexer import Line
from lb.config.registry import (
    AclEntry,
    Keyword,
    ParseCtx,
    ProxyBuilder,
    Table,
    bad_name_char,
    kind_word,
    origin,
    suggest,
)
from lb.config.reply_kw import (
    DENY_STATUSES,
    kw_errorfile,
    kw_errorfiles,
    kw_errorloc,
    kw_http_error,
)
from lb.config.reply_kw import parse_reply as reply_parse
from lb.http import uri_normalize
from lb.http.compress import ALGORITHMS as COMP_ALGORITHMS
from lb.match import acl as acl_mod
from lb.match import fmt as fmt_mod
from lb.match import sample as sample_mod
from lb.match import uses
from lb.tls.certs import FLAG_VERSIONS
from lb.units import UnitError, atoi, junk_warning, parse_time_ms, parse_time_s

# Log formats of `option httplog` / `option tcplog` (spec §11).
HTTPLOG_FMT = ("%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc "
               "%ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r")
HTTPLOG_CLF_FMT = ("%{+Q}o %{-Q}ci - - [%trg] %r %ST %B \"\" \"\" %cp %ms %ft %b %s %TR "
                   "%Tw %Tc %Tr %Ta %tsc %ac %fc %bc %sc %rc %sq %bq %CC %CS %hrl %hsl")
TCPLOG_FMT = "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq"

TIMEOUT_NAMES = ("client", "server", "connect", "check", "queue", "http-keep-alive",
                 "http-request", "tunnel", "tarpit", "client-fin", "server-fin")
_TIMEOUT_SIDE = {"client": "frontend", "client-fin": "frontend", "server": "backend",
                 "connect": "backend", "check": "backend", "queue": "backend",
                 "server-fin": "backend", "tunnel": "backend"}

FACILITIES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp",
              "cron", "auth2", "ftp", "ntp", "audit", "alert", "cron2", "local0", "local1",
              "local2", "local3", "local4", "local5", "local6", "local7")
LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
LOG_FORMATS = ("local", "rfc3164", "rfc5424", "priority", "short", "timed", "iso", "raw")


class WrappedLine(Exception):
    """The statement continues on the next physical line (blog-wrapped config)."""

    def __init__(self, joined: Line, first: str, second: str, next_line: Line) -> None:
        super().__init__(first + second)
        self.joined = joined
        self.first = first
        self.second = second
        self.next_line = next_line


# --------------------------------------------------------------------------- helpers


def too_many(line: Line, ctx: ParseCtx, max_args: int, kw: str | None = None) -> bool:
    """HAProxy's "'kw' cannot handle unexpected argument 'x'." check."""
    if len(line.words) - 1 > max_args:
        idx = max_args + 1
        ctx.alert(line, f"'{kw or line.words[0]}' cannot handle unexpected argument "
                  f"'{line.words[idx]}'.", "too-many-args", col=line.col(idx))
        return True
    return False


def _msg(exc: Exception) -> str:
    """An error's text before the period the alert adds (a text that ends with its own
    period keeps it: HAProxy prints both, e.g. a map's "... two column file..")."""
    return str(exc).rstrip()


def check_format(p: ProxyBuilder, line: Line, ctx: ParseCtx, text: str, what: str,
                 col: int = 0) -> bool:
    """Validate a log-format string at load; the model keeps the text."""
    try:
        fmt_mod.compile_format(text)
    except fmt_mod.FormatError as exc:
        ctx.alert(line, f"error detected in {p.label()} while parsing {what} : {_msg(exc)}.",
                  "bad-format", col=col)
        return False
    except Exception as exc:  # a bug in the format compiler must not crash -c
        ctx.alert(line, f"error detected in {p.label()} while parsing {what} : {exc}.",
                  "bad-format", col=col)
        return False
    return True


def compile_cond(p: ProxyBuilder, line: Line, ctx: ParseCtx, start: int, what: str
                 ) -> tuple[bool, Any, str]:
    """Compile the condition starting at word ``start`` ("if"/"unless").

    Returns (ok, condition or None, condition text). ``what`` completes HAProxy's
    "error detected while parsing <what> : <reason>." message.
    """
    words = line.words
    if start >= len(words):
        return True, None, ""
    kind = words[start]
    cond_words = list(words[start + 1:])
    text = " ".join(words[start:])

    def lookup(name: str) -> Any:
        ent = p.acls.get(name)
        return ent.acl if ent else None

    try:
        cond, warns = acl_mod.compile_condition(kind, cond_words, lookup,
                                                base_dir=ctx.base_dir, refs=ctx.pattern_refs,
                                                origin=(line.file, line.lineno))
    except acl_mod.AclError as exc:
        reason = _msg(exc)
        missing = re.fullmatch(r"no such ACL : '(.*)'", reason)
        if missing and cond_words and missing.group(1) == cond_words[-1].lstrip("!"):
            _maybe_wrapped(p, line, ctx, missing.group(1))
        if reason.startswith("expects either 'if' or 'unless'"):
            ctx.alert(line, f"'{what.split(chr(39))[1] if chr(39) in what else what}' "
                      f"{reason}.", "bad-condition", col=line.col(start), style="tight")
        else:
            ctx.alert(line, f"error detected while parsing {what} : {reason}.",
                      "unknown-acl" if missing else "bad-condition", col=line.col(start))
        return False, None, text
    except Exception as exc:  # never let a matcher bug crash the loader
        ctx.alert(line, f"error detected while parsing {what} : {exc}.", "bad-condition",
                  col=line.col(start))
        return False, None, text
    for w in warns:
        ctx.warn(line, w, "condition-warning", col=line.col(start))
    return True, cond, text


def _maybe_wrapped(p: ProxyBuilder, line: Line, ctx: Any, last: str) -> None:
    """Detect a statement wrapped onto the next line (see docs/config.md)."""
    peek = getattr(ctx, "peek", None)
    if peek is None:
        return
    nxt: Line | None = peek()
    if nxt is None or nxt.file != line.file or not nxt.words or \
            nxt.lineno != line.lineno + 1:  # only the very next physical line
        return
    first = nxt.words[0]
    if PROXY_TABLE.get(first) is not None or first in SECTION_NAMES:
        return
    if last + first not in p.acls:
        return
    words = line.words[:-1] + (line.words[-1] + first,) + nxt.words[1:]
    cols = line.cols + nxt.cols[1:]
    joined = Line(line.file, line.lineno, words, cols, line.raw + nxt.raw)
    raise WrappedLine(joined, line.words[-1], first, nxt)


def _need_args(line: Line, ctx: ParseCtx, n: int, msg: str) -> bool:
    if len(line.words) - 1 < n or any(not w for w in line.words[1:n + 1]):
        ctx.alert(line, msg, "missing-argument")
        return False
    return True


# --------------------------------------------------------------------------- simple keywords


def kw_mode(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    mode = line.words[1] if len(line.words) > 1 else ""
    if mode not in ("http", "tcp", "health"):
        ctx.alert(line, f"unknown proxy mode '{mode}'.", "bad-mode", col=line.col(1),
                  suggestion=suggest(mode, ("http", "tcp")))
        return
    if mode == "health":
        ctx.alert(line, "'mode health' doesn't exist anymore. Please use 'http-request return "
                  "status 200' instead.", "removed-keyword", col=line.col(1))
        return
    too_many(line, ctx, 1)
    p.mode = mode


def _int_kw(attr: str, kw: str) -> Callable[[ProxyBuilder, Line, ParseCtx], None]:
    def handler(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
        if len(line.words) < 2 or not line.words[1]:
            extra = " (dispatch counts for one)" if kw == "retries" else ""
            ctx.alert(line, f"'{kw}' expects an integer argument{extra}.", "missing-argument")
            return
        if too_many(line, ctx, 1):
            return
        v = line.words[1]
        if not v.lstrip("-").isdigit():
            ctx.warn(line, f"'{kw}' expects an integer argument, '{v}' is read as "
                     f"{atoi(v)}.", "bad-integer", col=line.col(1))
        setattr(p, attr, atoi(v))
    return handler


def kw_hash_balance_factor(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """`hash-balance-factor <pct>`: 0 (off) or above 100. HAProxy reads the number
    with atol and ignores further words; lb warns about them."""
    if len(line.words) < 2 or not line.words[1]:
        ctx.alert(line, "'hash-balance-factor' expects an integer argument.", "missing-argument")
        return
    v = line.words[1]
    if not v.lstrip("-").isdigit():
        ctx.warn(line, f"'hash-balance-factor' expects an integer argument, '{v}' is read as "
                 f"{atoi(v)}.", "bad-integer", col=line.col(1))
    factor = atoi(v)
    if factor != 0 and factor <= 100:
        ctx.alert(line, "'hash-balance-factor' must be 0 or greater than 100.", "bad-argument",
                  col=line.col(1))
        return
    if len(line.words) > 2:
        ctx.warn(line, f"'hash-balance-factor' ignores the extra argument '{line.words[2]}'.",
                 "extra-argument", col=line.col(2))
    p.hash_balance_factor = factor


def kw_compression(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """`compression algo <name>...`, `compression type <mime>...`, `compression
    offload` (HAProxy 2.6.12's checks and texts)."""
    w = line.words
    sub = w[1] if len(w) > 1 else ""
    comp = p.compression or m.Compression()
    if sub == "algo":
        if len(w) < 3 or not w[2]:
            ctx.alert(line, f"parsing [{line.file}:{line.lineno}] : 'compression' expects "
                      "<algorithm>.", "missing-argument")
            return
        algos = comp.algos
        for i, name in enumerate(w[2:], 2):
            if name not in COMP_ALGORITHMS:
                ctx.alert(line, f"'compression' : '{name}' is not a supported algorithm.",
                          "bad-argument", col=line.col(i))
                return
            algos = (name, *algos)
        p.compression = replace(comp, algos=algos)
    elif sub == "type":
        if len(w) < 3 or not w[2]:
            ctx.alert(line, "'compression' expects <type>.", "missing-argument")
            return
        p.compression = replace(comp, types=(*(t.lower() for t in reversed(w[2:])),
                                             *comp.types))
    elif sub == "offload":
        if p.kind == "defaults":
            ctx.warn(line, "'compression' : 'offload' ignored in 'defaults' section.",
                     "ignored-in-defaults", col=line.col(1))
            return
        p.compression = replace(comp, offload=True)
    else:
        ctx.alert(line, "'compression' expects 'algo', 'type' or 'offload'", "bad-argument",
                  col=line.col(1) if sub else 0)


def kw_retry_on(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    allowed = ("none", "conn-failure", "empty-response", "junk-response", "response-timeout",
               "0rtt-rejected", "all-retryable-errors", "401", "403", "404", "408", "425",
               "500", "501", "502", "503", "504")
    if len(line.words) < 2:
        ctx.alert(line, "'retry-on' needs at least one keyword to specify when to retry",
                  "missing-argument")
        return
    for i, w in enumerate(line.words[1:], 1):
        if w not in allowed:
            ctx.alert(line, f"'retry-on': unknown keyword '{w}'", "bad-argument",
                      col=line.col(i), suggestion=suggest(w, allowed))
            return
    p.retry_on = tuple(line.words[1:])


def kw_default_backend(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    if not _need_args(line, ctx, 1, "'default_backend' expects a backend name."):
        return
    if too_many(line, ctx, 1):
        return
    p.default_backend = line.words[1]
    p.default_backend_origin = origin(line)


def kw_use_backend(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    words = line.words
    if len(words) < 2 or not words[1]:
        ctx.alert(line, "'use_backend' expects a backend name.", "missing-argument")
        return
    name = words[1]
    if len(words) > 2 and words[2] not in ("if", "unless"):
        ctx.alert(line, f"unexpected keyword '{words[2]}' after switching rule, only 'if' and "
                  "'unless' are allowed.", "bad-condition", col=line.col(2))
        return
    ok, cond, text = compile_cond(p, line, ctx, 2, "switching rule")
    if not ok:
        return
    dynamic = "%[" in name
    if dynamic:
        try:
            fmt_mod.compile_format(name)
        except Exception as exc:
            ctx.alert(line, f"failed to parse use_backend rule '{name}' : {_msg(exc)}.",
                      "bad-format", col=line.col(1), style="Parsing", phase="check")
            return
    p.switching_rules.append(m.SwitchingRule(
        backend=None if dynamic else name, name_fmt=name if dynamic else None, cond=cond,
        cond_text=text, origin=origin(line)))
    if not p.first_use_backend_line:
        p.first_use_backend_line = line.lineno


def kw_persist(kind: str) -> Callable[[ProxyBuilder, Line, ParseCtx], None]:
    def handler(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
        kw = line.words[0]
        if len(line.words) < 2 or line.words[1] not in ("if", "unless"):
            ctx.alert(line, f"'{kw}' requires either 'if' or 'unless' followed by a "
                      "condition.", "bad-condition")
            return
        ok, cond, text = compile_cond(p, line, ctx, 1, f"a '{kw}' rule")
        if ok:
            p.persist_rules.append(m.PersistRule(kind, cond, text, origin(line)))
    return handler


def kw_dynamic_cookie_key(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """`dynamic-cookie-key <key>`: the secret `cookie ... dynamic` makes servers'
    cookie values with (more words are ignored, as HAProxy 2.6.12 does)."""
    if _need_args(line, ctx, 1, "'dynamic-cookie-key' expects <secret_key> as argument."):
        p.dynamic_cookie_key = line.words[1]


def kw_id(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """`id <n>`: the proxy's number in stats and server-state files (HAProxy's
    texts, in its tight location style)."""
    if len(line.words) < 2 or not line.words[1]:
        ctx.alert(line, "'id' expects an integer argument.", "missing-argument", style="tight")
        return
    n = atoi(line.words[1])
    if n <= 0:
        ctx.alert(line, "custom id has to be > 0.", "bad-id", col=line.col(1), style="tight")
        return
    other = ctx.proxy_ids.get(n)
    if other is not None and other is not p:
        ctx.alert(line, f"{kind_word(p.kind)} {p.name} reuses same custom id as "
                  f"{kind_word(other.kind)} {other.name} (declared at {other.origin.file}:"
                  f"{other.origin.line}).", "duplicate-id", col=line.col(1), style="tight")
        return
    if p.forced_id and ctx.proxy_ids.get(p.forced_id) is p:
        del ctx.proxy_ids[p.forced_id]
    p.forced_id = n
    ctx.proxy_ids[n] = p


def kw_disabled(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """`disabled` / `enabled` (the latter undoes an inherited `disabled`)."""
    p.disabled = line.words[0] == "disabled"


def _warn_in_frontend(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """HAProxy's capability warning for a backend keyword it goes on to read anyway."""
    if p.kind == "frontend":
        ctx.warn(line, f"'{line.words[0]}' ignored because {p.label()} has no backend "
                 "capability.", "capability", col=line.col(0))


def kw_load_server_state(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """`load-server-state-from-file global|local|none` (more words are ignored, as
    HAProxy 2.6.12 does; in a frontend it warns, and is kept all the same)."""
    _warn_in_frontend(p, line, ctx)
    mode = line.words[1] if len(line.words) > 1 else ""
    if mode not in ("global", "local", "none"):
        ctx.alert(line, f"'load-server-state-from-file' expects 'global', 'local' or 'none'. "
                  f"Got '{mode}'", "bad-argument")
        return
    p.load_server_state = mode


def kw_server_state_file_name(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """`server-state-file-name [<file> | use-backend-name]`: no word, or
    `use-backend-name`, names the file after the backend. Not inherited from a
    defaults section (HAProxy 2.6.12: a backend always falls back to its own name)."""
    _warn_in_frontend(p, line, ctx)  # warned, then read all the same, as HAProxy does
    if too_many(line, ctx, 1):
        return
    name = line.words[1] if len(line.words) > 1 else ""
    p.server_state_file_name = None if name in ("", "use-backend-name") else name


def kw_use_server(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    words = line.words
    if len(words) < 2 or not words[1]:
        ctx.alert(line, "'use-server' expects a server name.", "missing-argument")
        return
    if len(words) < 3 or words[2] not in ("if", "unless"):
        ctx.alert(line, "'use-server' requires either 'if' or 'unless' followed by a "
                  "condition.", "bad-condition")
        return
    ok, cond, text = compile_cond(p, line, ctx, 2, "a 'use-server' rule")
    if ok:
        p.server_rules.append(m.UseServerRule(words[1], cond, text, origin(line)))


def kw_capture(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """`capture request|response header <name> len <n>` (logged as %hr / %hs; the
    last occurrence of the header, cut to <n> bytes), and `capture cookie <prefix> len
    <n>` (%CC / %CS: the first cookie whose name starts with <prefix>)."""
    words = line.words
    what = words[1] if len(words) > 1 else ""
    if what == "cookie":
        if len(words) < 5 or not words[4]:
            ctx.alert(line, "'capture' expects 'cookie' <cookie_name> 'len' <len>.",
                      "missing-argument")
            return
        if words[3] != "len":  # (HAProxy 2.6.12 reads the length all the same)
            ctx.warn(line, f"'capture cookie' expects 'len' before the length, got "
                     f"'{words[3]}'.", "bad-argument", col=line.col(3))
        p.capture_cookie = (words[2], max(atoi(words[4]), 0))  # the last line wins
        return
    if what not in ("request", "response") or len(words) < 3 or words[2] != "header":
        ctx.alert(line, "'capture' expects 'cookie' or 'request header' or 'response "
                  "header'.", "bad-argument")
        return
    if len(words) < 6 or words[4] != "len" or not words[3]:
        ctx.alert(line, f"'capture {what}' expects 'header' <header_name> 'len' <len>.",
                  "missing-argument")
        return
    if len(words) > 6:
        ctx.alert(line, f"'capture {what}' cannot handle unexpected argument '{words[6]}'.",
                  "too-many-args", col=line.col(6))
        return
    cap = (words[3].lower(), max(atoi(words[5]), 0))
    (p.captures_req if what == "request" else p.captures_res).append(cap)


def kw_rate_limit(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """`rate-limit sessions <n>`: new sessions a second a frontend accepts; past it,
    new connections wait in the kernel backlog (lb.proxy.listener)."""
    words = line.words
    what = words[1] if len(words) > 1 else ""
    if what != "sessions":
        ctx.alert(line, f"'rate-limit' only supports 'sessions' (got '{what}')",
                  "bad-argument")
        return
    if len(words) < 3 or not words[2]:
        ctx.alert(line, "'rate-limit sessions' expects expects an integer value (in "
                  "sessions/second)", "missing-argument")
        return
    text = words[2]
    digits = text[1:] if text[:1] in ("-", "+") else text  # (strtoul takes a sign)
    bad = next((c for c in digits if not c.isdigit()), None) if digits else text[:1]
    if bad is not None:
        ctx.alert(line, f"'rate-limit sessions' : unexpected character '{bad}' in integer "
                  f"value '{text}'", "bad-argument", col=line.col(2))
        return
    if p.kind != "defaults" and not p.has_cap("frontend"):
        ctx.warn(line, f"rate-limit sessions will be ignored because {p.label()} has no "
                 "frontend capability", "capability")
        return
    value = int(text)
    if value < 0:  # HAProxy's strtoul wraps it past any rate: no limit
        ctx.warn(line, f"'rate-limit sessions {text}' sets no limit.", "bad-integer",
                 col=line.col(2))
        value = 0
    p.rate_limit_sessions = value


def kw_send_name_header(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    if len(line.words) < 2 or not line.words[1]:
        ctx.alert(line, "'http-send-name-header' requires a header string.",
                  "missing-argument")
        return
    p.send_name_header = line.words[1]


def kw_acl(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    words = line.words
    if len(words) < 2 or not words[1]:
        ctx.alert(line, "'acl' expects an ACL name and a criterion.", "missing-argument")
        return
    name = words[1]
    bad = bad_name_char(name)
    if bad:
        ctx.alert(line, f"character '{bad}' is not permitted in acl name '{name}'.",
                  "bad-name", col=line.col(1))
        return
    try:
        expr, warns = acl_mod.parse_acl_expr(list(words[2:]), base_dir=ctx.base_dir,
                                             refs=ctx.pattern_refs,
                                             origin=(line.file, line.lineno))
    except acl_mod.AclError as exc:
        ctx.alert(line, f"error detected while parsing ACL '{name}' : {_msg(exc)}.",
                  "bad-acl", col=line.col(2))
        return
    except Exception as exc:
        ctx.alert(line, f"error detected while parsing ACL '{name}' : {exc}.", "bad-acl",
                  col=line.col(2))
        return
    for w in warns:
        first, *rest = w.split("\n")
        # HAProxy indents these continuation lines by two spaces and ends with a blank line
        ctx.warn(line, first, "acl-warning", col=line.col(2), style="plain",
                 more=(*("  " + r.strip() for r in rest), "") if rest else ())
    ent = p.acls.get(name)
    if ent is None:
        ent = AclEntry(acl_mod.Acl(name), [])
        p.acls[name] = ent
    ent.acl.add(expr)
    ent.origins.append(origin(line))
    ent.texts.append(" ".join(words[2:]))
    if p.kind == "defaults":
        p.has_rules = True


def kw_description(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    if len(line.words) < 2:
        ctx.alert(line, "'description' expects a string argument.", "missing-argument",
                  style="tight")
        return
    p.description = " ".join(line.words[1:])


def kw_monitor(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """`monitor fail {if|unless} <condition>`: the monitor-uri answers 503 while the
    condition holds. An empty condition never holds (HAProxy 2.6.12 takes it)."""
    words = line.words
    if len(words) < 2 or words[1] != "fail":
        ctx.alert(line, "'monitor' only supports 'fail'.", "bad-argument")
        return
    if len(words) < 3 or words[2] not in ("if", "unless"):
        ctx.alert(line, "'monitor fail' requires either 'if' or 'unless' followed by a "
                  "condition.", "bad-condition")
        return
    later = _later_rules(p, "monitor")
    if later:
        ctx.warn(line, f"a 'monitor fail' rule placed after {later} rule will still be "
                 "processed before.", "rule-order")
    if len(words) == 3:
        return
    ok, cond, _text = compile_cond(p, line, ctx, 2, "a 'monitor fail' condition")
    if ok and cond is not None:
        p.monitor_fail.append(cond)


def kw_monitor_uri(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    if _need_args(line, ctx, 1, "'monitor-uri' expects an URI."):
        p.monitor_uri = line.words[1]


def _format_arg(line: Line, ctx: ParseCtx, missing: str, extra: str) -> str | None:
    """The statement's one log-format argument, else None (alerted: ``missing``/
    ``extra`` for a wrong word count). The format itself is compiled at check time,
    for each proxy that uses it, in that proxy's mode (`ConfigBuilder._check_formats`),
    as HAProxy does."""
    if not _need_args(line, ctx, 1, missing):
        return None
    if len(line.words) > 2:
        ctx.alert(line, extra, "too-many-args", col=line.col(2))
        return None
    return line.words[1]


def _ignored_in_backend(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> bool:
    """A traffic-log statement in a backend: HAProxy's warning, and nothing kept."""
    if p.has_cap("frontend"):
        return False
    ctx.warn(line, f"backend '{p.name}' : '{line.words[0]}' directive is ignored in "
             "backends.", "capability")
    return True


def kw_unique_id_format(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    text = _format_arg(line, ctx, "unique-id-format expects an argument.",
                       "unique-id-format expects only one argument, don't forget to escape "
                       "spaces!")
    if text is not None:
        p.unique_id_format = text
        p.unique_id_format_origin = origin(line)


def _frontend_format(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> bool:
    """A frontend's one-argument format keyword (`log-format-sd`,
    `error-log-format`): kept in the attribute named after it, with its line (False:
    missing, more words than one, or in a backend)."""
    kw = line.words[0]
    text = _format_arg(line, ctx, f"{kw} expects an argument.",
                       f"{kw} expects only one argument, don't forget to escape spaces!")
    if text is None or _ignored_in_backend(p, line, ctx):
        return False
    attr = kw.replace("-", "_")
    setattr(p, attr, text)
    setattr(p, attr + "_origin", origin(line))
    return True


def kw_log_format_sd(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """`log-format-sd`: the structured-data field of the frontend's rfc5424 lines."""
    _frontend_format(p, line, ctx)


def kw_error_log_format(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """`error-log-format`: the format of the lines of connections and requests that
    end in an error before their stream (a bad PROXY header, a failed TLS handshake,
    a request head refused or never whole)."""
    _frontend_format(p, line, ctx)


def kw_unique_id_header(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    if _need_args(line, ctx, 1, "unique-id-header expects an argument."):
        p.unique_id_header = line.words[1]


def kw_log_tag(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    # (HAProxy ignores extra words here, unlike the global keyword)
    if _need_args(line, ctx, 1, "'log-tag' expects a tag for use in syslog."):
        p.log_tag = line.words[1]


def kw_log_format(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    text = _format_arg(line, ctx, "'log-format' expects a format string.",
                       "'log-format' expects only one argument, possibly quoted.")
    if text is None or _ignored_in_backend(p, line, ctx):
        return
    if p.log_format_kind in ("httplog", "tcplog") and p.log_format_origin.file == line.file \
            and p.kind != "defaults" and p.log_format_origin.line >= p.origin.line:
        ctx.warn(line, f"'log-format' overrides previous 'option {p.log_format_kind}' in "
                 f"{p.label()}.", "log-format-override")
    p.log_format = text
    p.log_format_kind = "custom"
    p.log_format_origin = origin(line)


# --------------------------------------------------------------------------- log


_UINT_MAX = 0xFFFFFFFF


def _log_uint(text: str) -> int:
    """HAProxy's read_uint over a whole word: 0 (invalid) unless every character is a
    digit and the value fits 32 bits."""
    if not text.isascii() or not text.isdigit():
        return 0
    v = int(text)
    return v if v <= _UINT_MAX else 0


def parse_log_sample(spec: str) -> tuple[tuple[tuple[int, int], ...], int] | str:
    """`sample <ranges>:<size>` of a log line: the 1-based ranges of each window of
    <size> lines that are sent, and the size; or HAProxy 2.6's error text (its order
    and wording, checked with haproxy -c)."""
    ranges_text, colon, size_text = spec.partition(":")
    if not colon:
        return "Missing sample size"
    ranges: list[tuple[int, int]] = []
    rest = ranges_text
    while rest:
        item, comma, after = rest.partition(",")
        low_text, dash, high_text = item.partition("-")
        low = _log_uint(low_text)
        high = _log_uint(high_text) if dash else low
        if not low or not high or (dash and high <= low):
            return f"wrong sample range '{rest}'"
        # HAProxy's test: either end of the new range inside an earlier one
        if any(lo <= low <= hi or lo <= high <= hi for lo, hi in ranges):
            return "ranges are overlapping"
        ranges.append((low, high))
        rest = after if comma else ""
    if not ranges:
        return "no sampling ranges given"
    size = _log_uint(size_text)
    if not size:
        return f"wrong sample size '{size_text}' for sample range '{ranges_text}'"
    top = max(hi for _, hi in ranges)
    if size < top:
        return (f"sample size {size} should be greater or equal to {top} the maximum of "
                "the high ranges limits")
    return tuple(sorted(ranges)), size


def parse_log(line: Line, ctx: ParseCtx, args: tuple[str, ...], kwname: str = "log",
              in_global: bool = False) -> m.LogTarget | None | str:
    """Parse `log <target> [len N] [format F] [sample R:S] <facility> [max [min]]`.

    Returns a LogTarget, "global" for `log global`, or None after an error. The global
    section words two messages its own way (``in_global``).
    """
    if len(args) >= 1 and args[0] == "global":
        if in_global:
            ctx.alert(line, f"{kwname} : 'global' is not supported for a global syslog "
                      "server", "bad-argument")
            return None
        if len(args) == 1:
            return "global"
    if len(args) < 2:
        ctx.alert(line, f"{kwname} : expects <address> and <facility> "
                  f"{'' if in_global else 'or global'} as arguments", "missing-argument")
        return None
    addr = args[0]
    i = 1
    length = 1024
    fmt = "local"
    sample: tuple[tuple[int, int], ...] = ()
    sample_size = 0
    # the options in this order only, each once (HAProxy 2.6.12: `format short len 80`
    # takes `len` for the facility)
    for option in ("len", "format", "sample"):
        if i >= len(args) or args[i] != option:
            continue
        value = args[i + 1] if i + 1 < len(args) else ""  # HAProxy reads an empty word
        if args[i] == "len":
            length = atoi(value)
            if not 80 <= length <= 65535:
                ctx.alert(line, f"{kwname} : invalid log length '{value}', must be "
                          "between 80 and 65535", "bad-argument")
                return None
        elif args[i] == "format":
            fmt = value
            if fmt not in LOG_FORMATS:
                ctx.alert(line, f"{kwname} : unknown log format '{fmt}'", "bad-argument")
                return None
        else:
            parsed = parse_log_sample(value)
            if isinstance(parsed, str):
                ctx.alert(line, f"{kwname} : {parsed}", "bad-argument")
                return None
            sample, sample_size = parsed
        i += 2
    fac = args[i] if i < len(args) else ""
    if fac not in FACILITIES:
        ctx.alert(line, f"{kwname} : unknown log facility '{fac}'", "bad-argument",
                  col=line.col(i + 1), suggestion=suggest(fac, FACILITIES))
        return None
    level, minlevel = "debug", "emerg"
    if i + 1 < len(args):
        level = args[i + 1]
        if level not in LEVELS:
            ctx.alert(line, f"{kwname} : unknown optional log level '{level}'", "bad-argument",
                      col=line.col(i + 2))
            return None
    if i + 2 < len(args):
        minlevel = args[i + 2]
        if minlevel not in LEVELS:
            ctx.alert(line, f"{kwname} : unknown optional minimum log level '{minlevel}'",
                      "bad-argument", col=line.col(i + 3))
            return None
    if i + 3 < len(args):
        ctx.alert(line, f"{kwname} : cannot handle unexpected argument '{args[i + 3]}'",
                  "too-many-args")
        return None
    o = origin(line)
    common = {"facility": fac, "level": level, "minlevel": minlevel, "format": fmt,
              "length": length, "sample": sample, "sample_size": sample_size, "origin": o}
    if addr in ("stdout", "stderr"):
        return m.LogTarget(kind=addr, address=addr, **common)  # type: ignore[arg-type]
    if addr.startswith("fd@"):
        return m.LogTarget(kind="fd", address=addr[3:], **common)  # type: ignore[arg-type]
    if addr.startswith("ring@"):
        return m.LogTarget(kind="ring", address=addr[5:], **common)  # type: ignore[arg-type]
    if addr.startswith("/") or addr.startswith("unix@"):
        problem = server_kw.socket_path_problem(addr)
        if problem:
            ctx.alert(line, f"{kwname} : {problem}\n", "bad-address", col=line.col(1))
            return None
        path = addr[5:] if addr.startswith("unix@") else addr
        return m.LogTarget(kind="unix", address=path, **common)  # type: ignore[arg-type]
    kind = "udp"
    a = addr
    for prefix, k in (("tcp@", "tcp"), ("udp@", "udp"), ("udp4@", "udp"), ("udp6@", "udp"),
                      ("ipv4@", "udp"), ("ipv6@", "udp")):
        if a.startswith(prefix):
            a = a[len(prefix):]
            kind = k
            break
    parsed_addr = log_address(a, addr)
    if isinstance(parsed_addr, str):
        ctx.alert(line, f"{kwname} : {parsed_addr}", "bad-address", col=line.col(1))
        return None
    host, port = parsed_addr
    return m.LogTarget(kind=kind, address=host, port=514 if port is None else port,
                       spec=addr, **common)  # type: ignore[arg-type]


def log_address(text: str, written: str) -> tuple[str, int | None] | str:
    """``host[:port]`` of a network log target (its ``udp@``-style prefix removed;
    ``written`` is the word as written) -> (host, port or None), or HAProxy 2.6.12's
    error text (lb.config.server_kw.str2sa). A name is looked up later, with the
    servers' (lb.config.addresses)."""
    res = server_kw.str2sa(text, written)
    return res if isinstance(res, str) else (res[0], res[1])


def kw_source(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """`source <addr>[:<port>] [interface <name>]`: where the connections to this
    backend's servers (and their checks) come from, unless a server says otherwise."""
    src, _used = server_kw.parse_source(tuple(line.words[1:]), server=False)
    if isinstance(src, str):
        ctx.alert(line, src, "bad-source", col=line.col(1))
        return
    p.source = src


def kw_log(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    res = parse_log(line, ctx, line.words[1:])
    if res is None:
        return
    if res == "global":
        if too_many(line, ctx, 1):
            return
        if p.log_global and p.kind != "defaults" and not p.logs:
            pass
        p.log_global = True
        return
    assert isinstance(res, m.LogTarget)
    p.logs.append(res)


def kw_no_log(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    p.logs = []
    p.log_global = False


# --------------------------------------------------------------------------- timeouts


def _set_timeout(p: ProxyBuilder, line: Line, ctx: ParseCtx, name: str, value: str,
                 col: int) -> None:
    where = f"timeout {name}"
    try:
        ms, junk = parse_time_ms(value, where)
    except UnitError as exc:
        ctx.alert(line, exc.describe(where), "bad-time", col=col)
        return
    if junk:
        ctx.warn(line, junk_warning(value, junk), "time-junk", col=col, style="plain")
    side = _TIMEOUT_SIDE.get(name)
    if side and p.kind != "defaults" and not p.has_cap(side):
        ctx.warn(line, f"'timeout {name}' will be ignored because {p.label()} has no {side} "
                 "capability", "capability")
        return
    key = name.replace("-", "_")
    p.timeouts[key] = ms / 1000.0 if ms else None
    p.timeout_origins[key] = origin(line)


def kw_timeout(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    words = line.words
    name = words[1] if len(words) > 1 else ""
    if name not in TIMEOUT_NAMES:
        listing = ", ".join(f"'{t}'" for t in TIMEOUT_NAMES[:-1])
        ctx.alert(line, f"'timeout' supports {listing} and '{TIMEOUT_NAMES[-1]}' "
                  f"(got '{name}')", "bad-timeout", col=line.col(1),
                  suggestion=suggest(name, TIMEOUT_NAMES) if name else None)
        return
    if len(words) < 3 or not words[2]:
        ctx.alert(line, f"'timeout {name}' expects an integer value (in milliseconds)",
                  "missing-argument")
        return
    if len(words) > 3:
        ctx.alert(line, f"'timeout {name}' : unexpected extra argument '{words[3]}' after "
                  f"value '{words[2]}'.", "too-many-args", col=line.col(3))
        return
    _set_timeout(p, line, ctx, name, words[2], line.col(2))


def _legacy_timeout(old: str, new: str) -> Callable[[ProxyBuilder, Line, ParseCtx], None]:
    def handler(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
        if len(line.words) < 2:
            ctx.alert(line, f"'{old}' expects an integer value (in milliseconds)",
                      "missing-argument")
            return
        note = "" if ctx.strict else f" (accepted as 'timeout {new} {line.words[1]}')"
        ctx.legacy(line, f"the '{old}' directive is not supported anymore since HAProxy 2.1. "
                   f"Use 'timeout {new}'.{note}",
                   "legacy-keyword", col=line.col(0),
                   suggestion=f"timeout {new} {line.words[1]}")
        _set_timeout(p, line, ctx, new, line.words[1], line.col(1))
    return handler


def kw_legacy_redispatch(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    note = "" if ctx.strict else " (accepted as 'option redispatch')"
    ctx.legacy(line, "keyword 'redispatch' directive is not supported anymore since HAProxy "
               f"2.1. Use 'option redispatch'.{note}",
               "legacy-keyword", col=line.col(0), suggestion="option redispatch")
    if p.has_cap("backend"):
        p.options["redispatch"] = True
        p.redispatch_interval = -1


def _removed(text: str) -> Callable[[ProxyBuilder, Line, ParseCtx], None]:
    def handler(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
        ctx.alert(line, text, "removed-keyword", col=line.col(0))
    return handler


_REQ_REPLACEMENTS = {
    "reqadd": "http-request add-header", "reqrep": "http-request replace-header",
    "reqirep": "http-request replace-header", "reqdel": "http-request del-header",
    "reqidel": "http-request del-header", "reqdeny": "http-request deny",
    "reqideny": "http-request deny", "reqpass": "http-request allow",
    "reqipass": "http-request allow", "reqallow": "http-request allow",
    "reqiallow": "http-request allow", "reqtarpit": "http-request tarpit",
    "reqitarpit": "http-request tarpit", "rspadd": "http-response add-header",
    "rsprep": "http-response replace-header", "rspirep": "http-response replace-header",
    "rspdel": "http-response del-header", "rspidel": "http-response del-header",
    "rspdeny": "http-response deny", "rspideny": "http-response deny",
}


# --------------------------------------------------------------------------- bind


def parse_bind_addresses(text: str) -> tuple[list[dict[str, Any]], str | None]:
    """Split ``addr:port[-end][,addr:port...]`` into address dicts, or an error."""
    out: list[dict[str, Any]] = []
    for part in text.split(","):
        if not part:
            return [], f"'bind' : invalid address '{text}'"
        if part.startswith("fd@"):
            fd = part[3:]
            if not fd.isdigit():
                return [], f"'bind' : invalid file descriptor '{fd}'"
            out.append({"host": "", "port": 0, "fd": int(fd), "family": "fd", "raw": part})
            continue
        if part.startswith(SOCKET_PREFIXES):  # a file, or (abns@) an abstract name
            problem = server_kw.socket_path_problem(part)
            if problem:
                return [], f"'bind' : {problem}"
            out.append({"host": "", "port": 0, "path": socket_path(part), "family": "unix",
                        "raw": part})
            continue
        a = part
        family = None
        for prefix, fam in (("ipv4@", "ipv4"), ("ipv6@", "ipv6"), ("tcp@", None),
                            ("tcp4@", "ipv4"), ("tcp6@", "ipv6")):
            if a.startswith(prefix):
                a = a[len(prefix):]
                family = fam
                break
        if a.startswith("["):
            end = a.find("]")
            if end < 0 or not a[end + 1:].startswith(":"):
                return [], f"'bind' : missing port specification in '{part}'"
            host, port_s = a[1:end], a[end + 2:]
        elif ":" in a:
            host, port_s = a.rsplit(":", 1)
        else:
            return [], f"'bind' : missing port specification in '{part}'"
        if host == "*":
            host = ""
        if not port_s:
            return [], f"'bind' : missing port specification in '{part}'"
        lo_s, _, hi_s = port_s.partition("-")
        if not lo_s.isdigit() or (hi_s and not hi_s.isdigit()):
            return [], f"'bind' : invalid port '{port_s}'"
        lo = int(lo_s)
        hi = int(hi_s) if hi_s else lo
        if not 0 < lo <= 65535:
            return [], f"'bind' : invalid port '{lo_s}'"
        if not 0 < hi <= 65535 or hi < lo:
            return [], f"'bind' : invalid port '{hi_s}'"
        if family is None:
            family = "ipv6" if ":" in host else "ipv4"  # "" (or "*") = any IPv4 address
        for port in range(lo, hi + 1):
            out.append({"host": host, "port": port, "family": family, "raw": part})
    return out, None


def _bind_certificate(source: bind_kw.CertSource) -> m.BindCertificate:
    """A `crt`, or a `crt-list` line's certificate with the line's own settings."""
    opts = source.values
    alpn = opts.get("alpn")
    return m.BindCertificate(
        source.path, source.filters,
        alpn=tuple(alpn.split(",")) if alpn else None,
        ca_file=opts.get("ca-file"), crl_file=opts.get("crl-file"), verify=opts.get("verify"),
        ciphers=opts.get("ciphers"), ciphersuites=opts.get("ciphersuites"),
        curves=opts.get("curves"), ecdhe=opts.get("ecdhe"),
        min_ver=opts.get("ssl-min-ver"), max_ver=opts.get("ssl-max-ver"))


def _error_ids(spec: str | None) -> str | None:
    """A `ca-ignore-err`/`crt-ignore-err` value with its ids as numbers ("018" ->
    "18", as HAProxy reads them); `all` as is."""
    if spec is None or spec == "all":
        return spec
    return ",".join(str(bind_kw.c_int(bind_kw.atol(item))) for item in spec.split(","))


def bind_tls(values: Mapping[str, Any], glob: Mapping[str, Any]) -> m.BindTls:
    """The TLS settings of an `ssl` bind line from its options (lb.config.bind_kw),
    over the global `ssl-default-bind-*` ones read before it (lb.config.server_tls)."""
    versions = tuple(tuple(k.split("-", 1)) for k in values
                     if k.startswith(("force-", "no-")) and k.split("-", 1)[1]
                     in ("sslv3", "tlsv10", "tlsv11", "tlsv12", "tlsv13"))
    inverse = {v: k for k, v in FLAG_VERSIONS.items()}  # the global `no-*` flags add up
    versions += tuple(("no", inverse[v]) for v in glob.get("ssl_bind_no", ())
                      if ("no", inverse[v]) not in versions)
    alpn = values.get("alpn")
    return m.BindTls(
        certificates=tuple(_bind_certificate(one)
                           for one in values.get(bind_kw.CERTIFICATES, ())),
        ca_file=values.get("ca-file"), crl_file=values.get("crl-file"),
        verify=values.get("verify", "none"),
        alpn=tuple(alpn.split(",")) if alpn else (),
        ciphers=values.get("ciphers", glob.get("ssl_bind_ciphers")),
        ciphersuites=values.get("ciphersuites", glob.get("ssl_bind_ciphersuites")),
        curves=values.get("curves", glob.get("ssl_bind_curves")), ecdhe=values.get("ecdhe"),
        min_ver=values.get("ssl-min-ver", glob.get("ssl_bind_min_ver")),
        max_ver=values.get("ssl-max-ver", glob.get("ssl_bind_max_ver")),
        versions=versions,  # type: ignore[arg-type]
        strict_sni=bool(values.get("strict-sni") or glob.get("ssl_bind_strict_sni")),
        ca_ignore_err=_error_ids(values.get("ca-ignore-err")),
        crt_ignore_err=_error_ids(values.get("crt-ignore-err")),
        no_tickets=bool(values.get("no-tls-tickets") or glob.get("ssl_bind_no_tickets")),
        prefer_client_ciphers=bool(values.get("prefer-client-ciphers")
                                   or glob.get("ssl_bind_prefer_client_ciphers")))


def kw_bind(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """`bind <addresses> [options]`: each address (each port of a range) is one
    listener; the options (lb.config.bind_kw) apply to them all."""
    words = line.words
    if len(words) < 2 or not words[1]:
        ctx.alert(line, "'bind' expects {<path>|[addr1]:port1[-end1]}{,[addr]:port[-end]}... "
                  "as arguments.", "missing-argument")
        return
    addrs, err = parse_bind_addresses(words[1])
    if err:
        ctx.alert(line, err, "bad-address", col=line.col(1))
        return
    head = f"'bind {words[1]}' in section '{p.kind}'"
    taken = {b.luid: f"{b.origin.file}:{b.origin.line} ('bind {b.raw}')"
             for b in p.binds if b.luid}
    opts = bind_kw.BindLine(len(addrs), f"{line.file}:{line.lineno} ('bind {words[1]}')", taken,
                            bases=ctx.glob_values, ca_loaded=ctx.ca_loaded)
    problem = bind_kw.parse_options(words, 2, opts)
    for text in opts.plain_alerts:
        ctx.alert(line, text, "bad-bind-option", style="plain")
    for text, located in opts.warnings:
        ctx.warn(line, f"{head} : {text}" if located else text, "bind-option",
                 style="parsing" if located else "plain")
    if problem is not None:
        if problem.unknown:
            sug = problem.suggestion
            text = f"{head}: unknown keyword '{words[problem.index]}'" + (
                f"; did you mean '{sug}' maybe ?" if sug else ".")
            ctx.alert(line, text, "unknown-bind-keyword", col=line.col(problem.index),
                      suggestion=sug)
        else:  # (a final line feed of HAProxy's text does not show here)
            detail = problem.text.rstrip("\n")
            ctx.alert(line, f"{head} : {detail}", "bad-bind-option", col=line.col(problem.index))
        return
    values = opts.values
    tls = bind_tls(values, ctx.glob_values) if values.get("ssl") else None
    for a in addrs:
        p.binds.append(m.Bind(
            host=a["host"], port=a["port"], fd=a.get("fd"), name=values.get("name"),
            family=a["family"], path=a.get("path"), maxconn=values.get("maxconn", 0),
            backlog=values.get("backlog", 0), v4v6=bool(values.get("v4v6")),
            v6only=bool(values.get("v6only")), accept_proxy=bool(values.get("accept-proxy")),
            raw=a["raw"], origin=origin(line), luid=values.get("id", 0),
            proto=values.get("proto"), ssl=tls is not None, tls=tls))


# --------------------------------------------------------------------------- balance / cookie


BALANCE_ALGOS = ("roundrobin", "static-rr", "leastconn", "first", "source", "uri",
                 "url_param", "hdr", "random", "rdp-cookie", "hash")


def kw_balance(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    words = line.words
    bad = ("balance only supports 'roundrobin', 'static-rr', 'leastconn', 'source', 'uri', "
           "'url_param', 'hdr(name)' and 'rdp-cookie(name)' options.")
    # a bare `balance` is `balance roundrobin` (HAProxy 2.6.12: it resets an algorithm
    # from the defaults too)
    algo_w = words[1] if len(words) > 1 and words[1] else "roundrobin"
    mt = re.fullmatch(r"([a-z_-]+)(?:\((.*)\))?", algo_w)
    if not mt or mt.group(1) not in BALANCE_ALGOS:
        ctx.alert(line, bad, "bad-balance", col=line.col(1),
                  suggestion=suggest(algo_w, BALANCE_ALGOS))
        return
    algo, arg = mt.group(1), mt.group(2)
    spec = replace(p.balance, algorithm=algo, param=None, uri_whole=False, uri_len=0,
                   uri_depth=0, uri_path_only=False, check_post=False,
                   use_domain_only=False, random_draws=2, hash_expr=None, explicit=True)
    rest = words[2:]
    if algo == "hdr":
        if not arg:
            ctx.alert(line, bad, "bad-balance", col=line.col(1))
            return
        spec = replace(spec, param=arg)
        for w in rest:
            if w != "use_domain_only":
                ctx.alert(line, f"balance {algo_w} only accepts 'use_domain_only' modifier "
                          f"(got '{w}').", "bad-balance")
                return
            spec = replace(spec, use_domain_only=True)
    elif algo == "rdp-cookie":
        spec = replace(spec, param=arg or "mstshash")
    elif algo == "random":
        draws = atoi(arg) if arg else 2
        if draws < 1:
            ctx.alert(line, "balance random : number of draws must be at least 1.",
                      "bad-balance", col=line.col(1))
            return
        spec = replace(spec, random_draws=draws)
    elif algo == "uri":
        i = 0
        while i < len(rest):
            w = rest[i]
            if w in ("len", "depth"):
                if i + 1 >= len(rest) or not rest[i + 1].isdigit():
                    got = rest[i + 1] if i + 1 < len(rest) else ""
                    ctx.alert(line, f"balance uri : '{w}' expects a positive integer "
                              f"(got '{got}').", "bad-balance")
                    return
                spec = replace(spec, **{"uri_len" if w == "len" else "uri_depth":
                                        int(rest[i + 1])})
                i += 2
            elif w in ("whole", "path-only"):
                spec = replace(spec, **{"uri_whole" if w == "whole" else "uri_path_only": True})
                i += 1
            else:
                ctx.alert(line, "balance uri only accepts parameters 'len', 'depth', "
                          f"'path-only', and 'whole' (got '{w}').", "bad-balance",
                          col=line.col(2 + i))
                return
        rest = []
    elif algo == "url_param":
        if not rest:
            ctx.alert(line, "balance url_param requires an URL parameter name.",
                      "bad-balance")
            return
        spec = replace(spec, param=rest[0])
        i = 1
        while i < len(rest):
            if rest[i] == "check_post":
                spec = replace(spec, check_post=True)
                i += 1
                if i < len(rest) and rest[i].isdigit():
                    i += 1
            else:
                ctx.alert(line, "balance url_param only accepts 'check_post' modifier (got "
                          f"'{rest[i]}').", "bad-balance", col=line.col(2 + i))
                return
        rest = []
    elif algo == "hash":
        if not rest:
            ctx.alert(line, "'balance hash' expects a sample expression.", "bad-balance")
            return
        try:
            sample_mod.parse_expr(rest[0])
        except Exception as exc:
            ctx.alert(line, f"{p.label()} [{p.origin}]: failed to parse 'balance hash' "
                      f"expression '{rest[0]}' in : {_msg(exc)}.", "bad-balance",
                      col=line.col(2), style="plain", phase="check")
            return
        spec = replace(spec, hash_expr=rest[0])
        rest = []
    p.balance = spec


def kw_hash_type(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    words = line.words
    if len(words) < 2 or words[1] not in ("consistent", "map-based"):
        ctx.alert(line, "'hash-type' only supports 'consistent' and 'map-based'.",
                  "bad-argument", col=line.col(1))
        return
    fn = words[2] if len(words) > 2 else "sdbm"
    if fn not in ("sdbm", "djb2", "wt6", "crc32", "none"):
        ctx.alert(line, "'hash-type' only supports 'sdbm', 'djb2', 'crc32', or 'wt6' hash "
                  "functions.", "bad-argument", col=line.col(2))
        return
    mod = words[3] if len(words) > 3 else None
    if mod not in (None, "avalanche"):
        ctx.alert(line, "'hash-type' only supports 'avalanche' as a modifier for hash "
                  "functions.", "bad-argument", col=line.col(3))
        return
    if len(words) < 3 and words[1] == "consistent":
        mod = "avalanche"  # HAProxy: a bare `hash-type consistent` is sdbm + avalanche
    p.balance = replace(p.balance, hash_type=words[1], hash_function=fn, hash_modifier=mod)


def kw_cookie(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    words = line.words
    if len(words) < 2 or not words[1]:
        ctx.alert(line, "'cookie' expects <cookie_name> as argument.", "missing-argument")
        return
    name = words[1]
    mode: str | None = None
    flags: dict[str, Any] = {"domains": [], "attrs": []}
    modes_seen: list[str] = []
    i = 2
    while i < len(words):
        w = words[i]
        if w in ("rewrite", "insert", "prefix"):
            modes_seen.append(w)
            mode = w
            i += 1
        elif w in ("indirect", "nocache", "postonly", "preserve", "httponly", "secure",
                   "dynamic"):
            flags[w] = True
            i += 1
        elif w in ("domain", "attr", "maxidle", "maxlife"):
            if i + 1 >= len(words) or not words[i + 1]:
                ctx.alert(line, f"'{w}' expects <{w}> as argument.", "missing-argument",
                          col=line.col(i), style="tight")
                return
            v = words[i + 1]
            if w == "domain":
                flags["domains"].append(v)
            elif w == "attr":
                flags["attrs"].append(v)
            else:
                try:
                    ms, junk = parse_time_ms(v)
                    if junk:
                        raise UnitError("char", v, junk[0])
                except UnitError as exc:
                    ctx.alert(line, f"unexpected character '{exc.char or v[:1]}' in argument "
                              f"to <{w}>.", "bad-time", col=line.col(i + 1), style="tight")
                    return
                flags[w] = ms / 1000.0
            i += 2
        else:
            ctx.alert(line, "'cookie' supports 'rewrite', 'insert', 'prefix', 'indirect', "
                      "'nocache', 'postonly', 'domain', 'maxidle', 'dynamic', 'maxlife' and "
                      "'attr' options.", "bad-cookie", col=line.col(i))
            return
    if len(set(modes_seen)) > 1:
        ctx.alert(line, "cookie 'rewrite', 'insert' and 'prefix' modes are incompatible.",
                  "bad-cookie")
        return
    if mode == "rewrite" and flags.get("indirect"):
        ctx.alert(line, "cookie 'rewrite' and 'indirect' modes are incompatible.",
                  "bad-cookie")
        return
    if flags.get("preserve") and mode != "insert" and not flags.get("indirect"):
        ctx.alert(line, "cookie 'preserve' requires at least 'insert' or 'indirect'.",
                  "bad-cookie")
        return
    p.cookie = m.CookieSpec(
        name=name, mode=mode or "rewrite",  # type: ignore[arg-type]
        indirect=bool(flags.get("indirect")), nocache=bool(flags.get("nocache")),
        postonly=bool(flags.get("postonly")), preserve=bool(flags.get("preserve")),
        httponly=bool(flags.get("httponly")), secure=bool(flags.get("secure")),
        domains=tuple(flags["domains"]), maxidle=flags.get("maxidle"),
        maxlife=flags.get("maxlife"), dynamic=bool(flags.get("dynamic")),
        attrs=tuple(flags["attrs"]))


def kw_http_reuse(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    if len(line.words) < 2 or line.words[1] not in ("never", "safe", "aggressive", "always"):
        ctx.alert(line, "'http-reuse' only supports 'never', 'safe', 'aggressive', 'always'.",
                  "bad-argument", col=line.col(1))
        return
    p.http_reuse = line.words[1]


def kw_max_keep_alive_queue(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """`max-keep-alive-queue N`: how long a queue `prefer-last-server` accepts on the
    last server (-1: any). Read with C's strtol in any base, stored as HAProxy
    2.6.12 stores it (an unsigned N, plus 1, in an int); later words are ignored."""
    kw = line.words[0]
    if len(line.words) < 2 or not line.words[1]:
        ctx.alert(line, f"'{kw}' expects expects an integer value (or -1 to disable)",
                  "missing-argument")
        return
    v = line.words[1]
    value, end = bind_kw.strtol(v, 0)
    if end < len(v):
        ctx.alert(line, f"'{kw}' : unexpected character '{v[end]}' in integer value '{v}'",
                  "bad-argument", col=line.col(1))
        return
    if p.kind != "defaults" and not p.has_cap("backend"):
        ctx.warn(line, f"{kw} will be ignored because {p.label()} has no backend "
                 "capability", "capability")
    p.max_ka_queue = bind_kw.c_int((value & 0xFFFFFFFF) + 1)


def kw_max_session_srv_conns(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """`max-session-srv-conns N`: the idle server connections one client connection
    may keep for itself (HAProxy 2.6.12's texts, its misspelt "parsine" included)."""
    kw = line.words[0]
    if p.kind != "defaults" and not p.has_cap("frontend"):
        ctx.warn(line, f"'{kw}' ignored because {p.label()} has no frontend capability.",
                 "capability")
    if len(line.words) < 2 or not line.words[1]:
        ctx.alert(line, f"'{kw}' expects a number. Got no argument", "missing-argument",
                  style="parsine")
        return
    p.max_session_srv_conns = bind_kw.c_int(atoi(line.words[1]))


# --------------------------------------------------------------------------- errorfile / stats


_STATS_SUBS = ("admin", "uri", "realm", "auth", "scope", "enable", "hide-version",
               "show-node", "show-desc", "show-legends", "refresh", "disable", "http-request",
               "show-modules", "timeout", "maxconn", "socket", "bind-process")


STATS_REALM = "HAProxy Statistics"


def kw_stats(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    words = line.words
    if len(words) < 2:
        ctx.alert(line, "missing keyword in 'stats', expects 'admin', 'uri', 'realm', 'auth', "
                  "'scope', 'enable', 'hide-version', 'show-node', 'show-desc' or "
                  "'show-legends'.", "missing-argument", style="tight")
        return
    sub = words[1]
    st = p.stats if p.stats is not None else {}
    if sub == "enable":
        st["enabled"] = True
    elif sub == "disable":
        st["enabled"] = False
    elif sub in ("uri", "realm", "scope"):
        if len(words) < 3:
            what = {"uri": "an URI prefix", "realm": "an realm name", "scope": "a proxy name"}
            ctx.alert(line, f"'{sub}' needs {what[sub]}.", "missing-argument")
            return
        if sub == "scope":
            st.setdefault("scope", []).append(words[2])
        else:
            st[sub] = " ".join(words[2:]) if sub == "realm" else words[2]
        st["enabled"] = True
    elif sub == "auth":
        if len(words) < 3:
            ctx.alert(line, "'auth' needs a user:password account.", "missing-argument")
            return
        user, _, pwd = words[2].partition(":")
        st.setdefault("auth", []).append((user, pwd))
        st["enabled"] = True
    elif sub == "refresh":
        if len(words) < 3:
            ctx.alert(line, "'stats refresh' needs a delay.", "missing-argument")
            return
        try:
            ms, junk = parse_time_ms(words[2])
            if junk:
                raise UnitError("char", words[2], junk[0])
        except UnitError as exc:
            ctx.alert(line, f"unexpected character '{exc.char or words[2][:1]}' in argument to "
                      "stats refresh interval.", "bad-time", col=line.col(2), style="tight")
            return
        st["refresh"] = ms / 1000.0
        st["enabled"] = True
    elif sub == "admin":
        if len(words) < 3 or words[2] not in ("if", "unless"):
            ctx.alert(line, "'stats admin' requires either 'if' or 'unless' followed by a "
                      "condition.", "bad-condition")
            return
        ok, cond, _text = compile_cond(p, line, ctx, 2, "a 'stats admin' rule")
        if not ok:
            return
        st["admin_cond"] = cond
    elif sub in ("hide-version", "show-legends", "show-node", "show-desc", "show-modules"):
        st[sub.replace("-", "_")] = True
        st["enabled"] = True
    elif sub == "http-request":  # an http-request rule of its own list (HAProxy's parser)
        before = len(p.stats_http_request_rules)
        _STATS_RULES(p, Line(line.file, line.lineno, words[1:], line.cols[1:], line.raw), ctx)
        added = p.stats_http_request_rules[before:]
        if added and isinstance(added[0].action, m.ActAuth) and "realm" not in words[3:4]:
            # (an `auth` of the stats rules asks for HAProxy's stats realm by default)
            p.stats_http_request_rules[-1] = replace(
                added[0], action=m.ActAuth(STATS_REALM))
        st["enabled"] = True
    elif sub in ("socket", "timeout", "maxconn", "bind-process"):
        if sub == "socket":
            ctx.alert(line, "'stats socket' is only allowed in the 'global' section.",
                      "misplaced-keyword", col=line.col(1))
            return
    else:
        ctx.alert(line, f"unknown stats parameter '{sub}', expects 'admin', 'uri', 'realm', "
                  "'auth', 'scope', 'enable', 'hide-version', 'show-node', 'show-desc' or "
                  "'show-legends'.", "bad-argument", col=line.col(1), style="tight",
                  suggestion=suggest(sub, _STATS_SUBS))
        return
    p.stats = st


# --------------------------------------------------------------------------- options


def _flag(name: str, attr: str | None = None, side: str | None = None
          ) -> tuple[str, str | None, Callable[..., None] | None, str]:
    return (name, side, None, attr or name.replace("-", "_"))


def _opt_httplog(p: ProxyBuilder, line: Line, ctx: ParseCtx, args: list[str]) -> None:
    if p.kind == "backend":
        ctx.warn(line, f"backend '{p.name}' : 'option httplog' directive is ignored in "
                 "backends.", "capability")
        return
    clf = bool(args and args[0] == "clf")
    if args and not clf:
        ctx.alert(line, "keyword 'httplog' only supports option 'clf'.",
                  "bad-argument", col=line.col(2))
        return
    p.options["httplog"] = True
    p.options["httplog_clf"] = clf
    p.options["tcplog"] = False
    p.log_format = HTTPLOG_CLF_FMT if clf else HTTPLOG_FMT
    p.log_format_kind = "httplog"
    p.log_format_origin = origin(line)


def _opt_tcplog(p: ProxyBuilder, line: Line, ctx: ParseCtx, args: list[str]) -> None:
    if p.kind == "backend":
        ctx.warn(line, f"backend '{p.name}' : 'option tcplog' directive is ignored in "
                 "backends.", "capability")
        return
    p.options["tcplog"] = True
    p.options["httplog"] = False
    p.log_format = TCPLOG_FMT
    p.log_format_kind = "tcplog"
    p.log_format_origin = origin(line)


def _opt_conn_mode(which: str) -> Callable[..., None]:
    def handler(p: ProxyBuilder, line: Line, ctx: ParseCtx, args: list[str]) -> None:
        for k in ("http_server_close", "httpclose", "http_keep_alive"):
            p.options[k] = False
        p.options[which] = True
    return handler


def _opt_redispatch(p: ProxyBuilder, line: Line, ctx: ParseCtx, args: list[str]) -> None:
    p.options["redispatch"] = True
    p.redispatch_interval = -1
    if args:
        v = args[0]
        if not v.lstrip("-").isdigit():
            ctx.warn(line, f"'option redispatch' expects an integer interval, '{v}' is read as "
                     f"{atoi(v)}.", "bad-integer", col=line.col(2))
        p.redispatch_interval = atoi(v)
        if p.redispatch_interval == 0:
            p.options["redispatch"] = False


def _opt_restrict_hdr_names(p: ProxyBuilder, line: Line, ctx: ParseCtx,
                            args: list[str]) -> None:
    """`option http-restrict-req-hdr-names preserve|delete|reject`."""
    expects = ("option 'http-restrict-req-hdr-names' expects 'preserve', 'reject' or "
               "'delete' option.")
    if len(args) > 1:  # (HAProxy names only 'option' here)
        ctx.alert(line, f"'option' cannot handle unexpected argument '{args[1]}'.",
                  "too-many-args", col=line.col(3))
    elif not args or not args[0]:
        ctx.alert(line, f"missing parameter. {expects}", "missing-argument")
    elif args[0] not in ("preserve", "delete", "reject"):
        ctx.alert(line, f"invalid parameter '{args[0]}'. {expects}", "bad-argument",
                  col=line.col(2))
    else:
        p.restrict_hdr_names = args[0]


def _opt_forwardfor(p: ProxyBuilder, line: Line, ctx: ParseCtx, args: list[str]) -> None:
    header = "x-forwarded-for"
    except_net = None
    if_none = False
    i = 0
    while i < len(args):
        w = args[i]
        if w in ("except", "header"):
            if i + 1 >= len(args) or not args[i + 1]:
                what = "<address>[/mask]" if w == "except" else "<header_name>"
                ctx.alert(line, f"'option forwardfor {w}' expects {what} as argument.",
                          "missing-argument", col=line.col(2 + i))
                return
            if w == "except":
                except_net = args[i + 1]
            else:
                header = args[i + 1].lower()
            i += 2
        elif w == "if-none":
            if_none = True
            i += 1
        else:
            ctx.alert(line, "'option forwardfor' only supports optional values: 'except', "
                      "'header' and 'if-none'.", "bad-argument", col=line.col(2 + i))
            return
    p.forwardfor = m.ForwardFor(header=header, except_net=except_net, if_none=if_none)


def _opt_originalto(p: ProxyBuilder, line: Line, ctx: ParseCtx, args: list[str]) -> None:
    """`option originalto [except <address>[/mask]] [header <name>]` (HAProxy's texts)."""
    header = "x-original-to"
    except_net = None
    i = 0
    while i < len(args):
        w = args[i]
        if w not in ("except", "header"):
            ctx.alert(line, "'option originalto' only supports optional values: 'except' "
                      "and 'header'.", "bad-argument", col=line.col(2 + i))
            return
        value = args[i + 1] if i + 1 < len(args) else ""
        if w == "except":
            try:
                except_net = str(ipaddress.ip_network(value, strict=False)) if value else ""
            except ValueError:
                except_net = ""
            if not except_net:
                ctx.alert(line, "'option originalto except' expects <address>[/mask] as "
                          "argument.", "missing-argument", col=line.col(2 + i))
                return
        elif not value:
            ctx.alert(line, "'option originalto header' expects <header_name> as argument.",
                      "missing-argument", col=line.col(2 + i))
            return
        else:
            header = value.lower()
        i += 2
    p.originalto = m.OriginalTo(header=header, except_net=except_net)


def _opt_removed(text: str) -> Callable[..., None]:
    def handler(p: ProxyBuilder, line: Line, ctx: ParseCtx, args: list[str]) -> None:
        ctx.alert(line, text, "removed-keyword", col=line.col(1), style="tight")
    return handler


# name -> (side, handler(p, line, ctx, args) or None for a flag, Options attribute, help)
OPTIONS: dict[str, tuple[str | None, Callable[..., None] | None, str | None, int]] = {
    # flags: (side, None, attribute, max extra args)
    "abortonclose": ("backend", None, "abortonclose", 0),
    "allbackups": ("backend", None, "allbackups", 0),
    "clitcpka": ("frontend", None, "clitcpka", 0),
    "contstats": ("frontend", None, "contstats", 0),
    "dontlog-normal": ("frontend", None, "dontlog_normal", 0),
    "dontlognull": ("frontend", None, "dontlognull", 0),
    "forwardfor": (None, _opt_forwardfor, None, 5),
    "originalto": (None, _opt_originalto, None, 4),
    "http-buffer-request": (None, None, "http_buffer_request", 0),
    "http-ignore-probes": ("frontend", None, "http_ignore_probes", 0),
    "http-keep-alive": (None, _opt_conn_mode("http_keep_alive"), None, 0),
    "http-no-delay": (None, None, "http_no_delay", 0),
    "http-pretend-keepalive": ("backend", None, "http_pretend_keepalive", 0),
    "http-restrict-req-hdr-names": (None, _opt_restrict_hdr_names, None, 9),
    "http-server-close": (None, _opt_conn_mode("http_server_close"), None, 0),
    "httpchk": ("backend", check_kw.kw_option_httpchk, None, 3),
    "httpclose": (None, _opt_conn_mode("httpclose"), None, 0),
    "httplog": ("frontend", _opt_httplog, None, 1),
    "idle-close-on-response": ("frontend", None, "idle_close_on_response", 0),
    "independent-streams": (None, None, "independent_streams", 0),
    "log-health-checks": ("backend", None, "log_health_checks", 0),
    "log-separate-errors": ("frontend", None, "log_separate_errors", 0),
    "logasap": ("frontend", None, "logasap", 0),
    "nolinger": (None, None, "nolinger", 0),
    "persist": ("backend", None, "persist", 0),
    "prefer-last-server": ("backend", None, "prefer_last_server", 0),
    "redispatch": ("backend", _opt_redispatch, None, 99),  # (HAProxy ignores extra words)
    "transparent": ("backend", None, "transparent", 0),
    "splice-auto": (None, None, "splice_auto", 0),
    "srvtcpka": ("backend", None, "srvtcpka", 0),
    "tcp-check": ("backend", check_kw.kw_option_tcp_check, None, 0),
    # the checks HAProxy names by their protocol (lb.config.check_presets)
    "redis-check": ("backend", check_kw.kw_option_protocol, None, 0),
    "ssl-hello-chk": ("backend", check_kw.kw_option_protocol, None, 0),
    "smtpchk": ("backend", check_kw.kw_option_protocol, None, 2),
    "pgsql-check": ("backend", check_kw.kw_option_protocol, None, 2),
    "mysql-check": ("backend", check_kw.kw_option_protocol, None, 3),
    "ldap-check": ("backend", check_kw.kw_option_protocol, None, 0),
    "external-check": ("backend", check_kw.kw_option_external_check, None, 0),
    "tcp-smart-accept": ("frontend", None, "tcp_smart_accept", 0),
    "tcp-smart-connect": ("backend", None, "tcp_smart_connect", 0),
    "tcpka": (None, None, "tcpka", 0),
    "tcplog": ("frontend", _opt_tcplog, None, 0),
    "ws-frames": (None, None, "ws_frames", 0),
    # removed in 2.x: fatal with HAProxy's text
    "forceclose": (None, _opt_removed(
        "option 'forceclose' is not supported any more since HAProxy 2.0, please just remove "
        "it, or use 'option httpclose' if absolutely needed."), None, 9),
    "http-tunnel": (None, _opt_removed(
        "option 'http-tunnel' is not supported any more since HAProxy 2.1, please just "
        "remove it, it shouldn't be needed."), None, 9),
    "http_proxy": (None, _opt_removed(
        "option 'http_proxy' is not supported any more since HAProxy 2.5. This option "
        "stopped working in HAProxy 1.9 and usually had nasty side effects. It can be more "
        "reliably implemented with combinations of 'http-request set-dst' and 'http-request "
        "set-uri', and even 'http-request do-resolve' if DNS resolution is desired."), None, 9),
}

# Options whose `no`/`default` forms HAProxy 2.6.12 refuses, and lb with it.
_NO_NEGATION = frozenset({"http-restrict-req-hdr-names", "redis-check", "ssl-hello-chk",
                          "smtpchk", "pgsql-check", "mysql-check", "ldap-check"})

# Options HAProxy knows that lb accepts without acting on them.
IGNORED_OPTIONS = frozenset({
    "accept-invalid-http-request", "accept-invalid-http-response", "checkcache",
    "disable-h2-upgrade", "h1-case-adjust-bogus-client", "h1-case-adjust-bogus-server",
    "http-use-proxy-header", "httpslog", "socket-stats", "spop-check",
    "splice-request", "splice-response",
})


def _ignored_option_args(name: str, args: list[str]) -> str | None:
    """HAProxy 2.6.12's argument checks of the options lb ignores (they still decide
    whether the file loads): the error text, or None."""
    if name == "httpslog":
        return None  # (takes and ignores anything)
    if args:
        return f"'option {name}' cannot handle unexpected argument '{args[0]}'."
    return None


def kw_option(p: ProxyBuilder, line: Line, ctx: ParseCtx, negate: bool = False,
              reset: bool = False) -> None:
    """`option X`, `no option X` (negate) and `default option X` (reset to defaults)."""
    words = line.words
    if len(words) < 2 or not words[1]:
        ctx.alert(line, "'option' expects an option name.", "missing-argument")
        return
    name = words[1]
    args = [w for w in words[2:]]
    row = OPTIONS.get(name)
    if row is None:
        if name in IGNORED_OPTIONS:
            err = _ignored_option_args(name, args)
            if err is not None:
                ctx.alert(line, err, "too-many-args", col=line.col(2))
                return
            ctx.warn(line, f"option '{name}' is not supported by lb and is ignored.",
                     "unsupported-keyword", col=line.col(1))
            return
        sug = suggest(name, list(OPTIONS) + sorted(IGNORED_OPTIONS))
        text = f"unknown option '{name}'."
        if sug:
            text = f"unknown option '{name}'; did you mean '{sug}' maybe ?"
        ctx.alert(line, text, "unknown-option", col=line.col(1), suggestion=sug)
        return
    side, handler, attr, max_extra = row
    if side and p.kind != "defaults" and not p.has_cap(side) and name not in ("httplog",
                                                                              "tcplog"):
        ctx.warn(line, f"'{name}' ignored because {p.label()} has no {side} capability.",
                 "capability", col=line.col(1))
        return
    if (negate or reset) and name in _NO_NEGATION:
        ctx.alert(line, f"negation/default is not supported for option '{name}'.",
                  "bad-negation", style="tight")
        return
    if len(args) > max_extra:
        ctx.alert(line, f"'option {name}' cannot handle unexpected argument "
                  f"'{args[max_extra]}'.", "too-many-args", col=line.col(2 + max_extra))
        return
    if reset:
        _reset_option(p, name, attr)
        return
    if negate:
        if attr:
            p.options[attr] = False
        elif name in ("http-keep-alive", "http-server-close", "httpclose"):
            p.options[name.replace("-", "_")] = False
        elif name in ("httplog", "tcplog"):  # (HAProxy 2.6 refuses these negations)
            p.options[name] = False
            if name == "httplog":
                p.options["httplog_clf"] = False
            if p.log_format_kind == name:
                p.log_format = None
                p.log_format_kind = None
        elif name == "forwardfor":
            p.forwardfor = None
        elif name == "originalto":
            p.originalto = None
        elif name == "redispatch":
            p.options["redispatch"] = False
        elif name in ("httpchk", "tcp-check", "external-check"):
            p.check_kind = "tcp"
        return
    if handler is not None:
        handler(p, line, ctx, args)
    elif attr:
        p.options[attr] = True
    p.option_origins[name] = origin(line)


def _reset_option(p: ProxyBuilder, name: str, attr: str | None) -> None:
    """`default option X`: take X's state back from the defaults section (or built-in)."""
    src = p.from_defaults
    keys = [attr] if attr else {
        "http-keep-alive": ["http_keep_alive", "http_server_close", "httpclose"],
        "http-server-close": ["http_keep_alive", "http_server_close", "httpclose"],
        "httpclose": ["http_keep_alive", "http_server_close", "httpclose"],
        "httplog": ["httplog", "httplog_clf", "tcplog"], "tcplog": ["httplog", "tcplog"],
        "redispatch": ["redispatch"]}.get(name, [])
    for k in keys:
        p.options[k] = bool(src.options.get(k, False)) if src else False
    if name in ("httplog", "tcplog"):
        p.log_format = src.log_format if src else None
        p.log_format_kind = src.log_format_kind if src else None
    elif name == "forwardfor":
        p.forwardfor = src.forwardfor if src else None
    elif name == "originalto":
        p.originalto = src.originalto if src else None
    elif name == "redispatch":
        p.redispatch_interval = src.redispatch_interval if src else -1
    elif name in ("httpchk", "tcp-check", "external-check"):
        p.check_kind = src.check_kind if src else "tcp"
        p.httpchk_send = src.httpchk_send if src else None


# --------------------------------------------------------------------------- http rules


def _status(v: str) -> int | None:
    return int(v) if v.isdigit() else None


def _payload_action(kw: str, act: str, args: tuple[str, ...], line: Line, ctx: ParseCtx,
                    p: ProxyBuilder) -> m.ActDeny | m.ActReturn | str:
    """`deny`/`tarpit`/`return` and their reply (lb.config.reply_kw's grammar)."""
    def fmt_error(text: str) -> str | None:
        try:
            fmt_mod.compile_format(text)
        except Exception as exc:  # a bug in the format compiler must not crash -c
            return _msg(exc)
        return None

    deny = act != "return"
    default = 200 if not deny else (500 if act == "tarpit" else 403)
    r = reply_parse(args, 0, default, line, ctx, fmt_error,
                    ("deny_status", "status") if deny else ("status",))
    if isinstance(r, str):
        return r + "."
    if r.end < len(args):
        return f"unexpected keyword '{args[r.end]}'."
    proxy_page = r.payload == "default-errorfiles" or (deny and r.payload is None
                                                       and not r.headers)
    if deny and proxy_page and r.status not in DENY_STATUSES:
        return (f"status code '{r.status}' not handled by default with "
                "'default-errorfiles' argument..")
    fields = {"status": r.status, "content_type": r.content_type, "body": r.body,
              "body_fmt": r.body_fmt, "errorfile": r.page, "headers": tuple(r.headers),
              "section": r.section}
    if not deny:
        return m.ActReturn(**fields, proxy_page=proxy_page)
    if proxy_page:  # nothing but the status: the proxy's page for it
        fields.update(body=None, body_fmt=None, headers=())
    return m.ActDeny(**fields, tarpit=act == "tarpit")


def parse_action(kw: str, p: ProxyBuilder, line: Line, ctx: ParseCtx, args: tuple[str, ...]
                 ) -> m.Action | None | str:
    """Build the action of ``<kw> <act> <args...>``; returns an error text on failure."""
    act = line.words[1]
    nargs = len(args)

    def exactly(n: int) -> str | None:
        return None if nargs == n and all(args) else f"expects exactly {n} arguments."

    if act == "allow":
        return m.ActAllow() if not args else f"unexpected keyword '{args[0]}'."
    if act == "auth":  # a 401 asking for Basic credentials; the realm is the proxy's name
        if args and args[0] == "realm":
            if len(args) < 2 or not args[1]:
                return "missing realm value."
            return m.ActAuth(args[1]) if len(args) == 2 else \
                f"unexpected keyword '{args[2]}'."
        return m.ActAuth(p.name) if not args else f"unexpected keyword '{args[0]}'."
    if act.startswith(("track-sc", "sc-inc-gpc", "sc-set-gpt")):
        res = parse_stick_counter_action(act, p, args, context=kw)
        return res + "." if isinstance(res, str) else res
    op, paren, file = act.partition("(")
    if op in ("add-acl", "del-acl", "set-map", "del-map"):  # (no file: a no-op)
        need = 2 if op == "set-map" else 1
        if nargs < need or not all(args[:need]):
            return f"expects exactly {need} arguments."
        if nargs > need:
            return f"unexpected keyword '{args[need]}'."
        for i, text in enumerate(args):
            if not check_format(p, line, ctx, text, f"'{kw} {act}' rule", line.col(2 + i)):
                return "__reported__"
        return m.ActPatternRef(op, file[:-1] if file.endswith(")") else file, args[0],
                               args[1] if need == 2 else None)
    if act in ("deny", "tarpit", "return"):
        return _payload_action(kw, act, args, line, ctx, p)
    if act in ("set-src", "set-src-port", "set-dst", "set-dst-port"):
        if not args or not args[0]:
            return "missing fetch method."
        if nargs > 1:
            return f"unexpected keyword '{args[1]}'."
        try:
            expr = sample_mod.parse_expr(args[0])
        except Exception as exc:
            return _msg(exc) + "."
        need = uses.unavailable(expr.fetch_def.name, "http-request")
        if need is not None:
            return (f"fetch method '{args[0]}' extracts information from '{need}', none "
                    "of which is available here.")
        return m.ActSetAddr(args[0], port=act.endswith("-port"), dst=act.startswith("set-dst"))
    if act in ("reject", "silent-drop"):
        return m.ActReject(silent=act == "silent-drop") if not args else \
            f"unexpected keyword '{args[0]}'."
    if act in ("set-header", "add-header"):
        err = exactly(2)
        if err:
            return err
        if not check_format(p, line, ctx, args[1], f"'{kw} {act}' rule", line.col(3)):
            return "__reported__"
        return m.ActSetHeader(name=args[0], value_fmt=args[1], add=act == "add-header")
    if act == "del-header":
        if not args or not args[0]:
            return "expects at least 1 argument."
        if nargs == 1:
            return m.ActDelHeader(name=args[0])
        if args[1] == "-m" and nargs == 3:
            if args[2] not in ("str", "beg", "end", "sub", "reg"):
                return f"-m with unsupported matching method '{args[2]}'."
            return m.ActDelHeader(name=args[0], method=args[2])
        return f"unexpected keyword '{args[1]}'."
    def regex_then_format(regex: str, fmt: str, col: int, lead: str = "") -> str | None:
        try:
            re.compile(regex)
        except re.error as exc:
            return f"{lead}regex '{regex}' is invalid (error={exc.msg}, erroffset={exc.pos})."
        if not check_format(p, line, ctx, fmt, f"'{kw} {act}' rule", line.col(col)):
            return "__reported__"
        return None

    if act in ("replace-header", "replace-value"):
        err = exactly(3) or regex_then_format(args[1], args[2], 4)
        if err:
            return err
        return m.ActReplaceHeader(name=args[0], regex=args[1], replacement_fmt=args[2],
                                  each_value=act == "replace-value")
    if act in ("replace-path", "replace-pathq", "replace-uri"):
        if nargs != 2 or not all(args):
            return "expects exactly 2 arguments <match-regex> and <replace-format>."
        err = regex_then_format(args[0], args[1], 3, "failed to parse the regex : ")
        if err:
            return err
        return m.ActReplaceUri(what=act[8:], regex=args[0],  # type: ignore[arg-type]
                               replacement_fmt=args[1])
    if act == "set-status":
        if nargs == 2:
            return f"expects either 'if' or 'unless' followed by a condition but found '{args[1]}'."
        if nargs not in (1, 3) or (nargs == 3 and args[1] != "reason"):
            return "expects 1 argument: <status>; or 3 arguments: <status> reason <fmt>."
        code = args[0]
        if not code.isdigit() or not 100 <= int(code) <= 999:
            return "expects an integer status code between 100 and 999."
        return m.ActSetStatus(status=int(code), reason=args[2] if nargs == 3 else None)
    if act in ("set-path", "set-pathq", "set-uri", "set-query", "set-method"):
        if nargs != 1 or not args[0]:
            return "expects exactly 1 argument <format>."
        if not check_format(p, line, ctx, args[0], f"'{kw} {act}' rule", line.col(2)):
            return "__reported__"
        return m.ActSetPath(what=act[4:], value_fmt=args[0])  # type: ignore[arg-type]
    if act == "normalize-uri":
        return _normalize_uri(args)
    if act.startswith("do-resolve"):
        res = parse_do_resolve(act, args, line.words[2] if len(line.words) > 2 else "")
        return res if not isinstance(res, str) or res.startswith("unexpected") else res + "."
    if act == "early-hint":
        if nargs < 2 or not all(args[:2]):
            return "expects exactly 2 arguments."
        if nargs > 2:
            return f"unexpected keyword '{args[2]}'."
        if not check_format(p, line, ctx, args[1], f"'{kw} {act}' rule", line.col(3)):
            return "__reported__"
        return m.ActEarlyHint(name=args[0], value_fmt=args[1])
    if act == "redirect":
        return _redirect(kw, p, line, ctx, args)
    if act == "set-timeout":
        if nargs != 2:
            return "expects exactly 2 arguments."
        if args[0] not in ("server", "tunnel", "client"):
            return f"'set-timeout' rule supports 'server'/'tunnel' (got '{args[0]}')."
        if not p.has_cap("backend") and args[0] != "client":
            return f"proxy '{p.name}' has no backend capability."
        try:
            ms, _junk = parse_time_ms(args[1])
        except UnitError as exc:
            return exc.describe(f"{kw} set-timeout")
        return m.ActSetTimeout(which=args[0], seconds=ms / 1000.0)  # type: ignore[arg-type]
    if act == "use-service":
        if nargs != 1 or not args[0]:
            return "'use-service' expects a service name.."
        if args[0] not in SERVICES:  # (lb.proxy.txn serves them)
            return f"'{args[0]}' unknown service name.."
        return m.ActUseService(service=args[0])
    if act == "capture":
        return _capture_action(kw, p, args)
    return None


def _normalize_uri(args: tuple[str, ...]) -> m.ActNormalizeUri | str:
    """`normalize-uri <normalizer> [full|strict]`, with HAProxy 2.6.12's texts."""
    if not args or not args[0]:
        return "missing argument <normalizer>."
    row = uri_normalize.NORMALIZERS.get(args[0])
    if row is None:
        return f"unknown normalizer '{args[0]}'."
    option = len(args) > 1 and args[1] == row.option
    extra = args[2 if option else 1:]
    if extra and row.option is not None and not option:
        return f"unknown argument '{extra[0]}' for '{args[0]}' normalizer."
    if extra:
        return f"unexpected keyword '{extra[0]}'."
    return m.ActNormalizeUri(args[0], option)


# the services `http-request use-service` may name (HAProxy 2.6.12 built with Lua also
# takes `lua.<name>` of a loaded script; lb loads none, so they are unknown here)
SERVICES = frozenset({"prometheus-exporter"})
_DO_RESOLVE_USAGE = ("Expects 'do-resolve(<varname>,<resolvers>[,<options>]) <expr>'. "
                     "Available options are 'ipv4' and 'ipv6'")


def parse_do_resolve(act: str, args: tuple[str, ...], first: str) -> m.ActDoResolve | str:
    """`do-resolve(<var>,<resolvers>[,<options>]) <expr>` as HAProxy 2.6.12 reads it:
    the parenthesis is cut at the first `,` (else `)`) each time, so words past the
    `)` are ignored, and an option is taken when it starts `ipv4` (even empty) or
    `ipv6`. ``args``: the words before the condition; ``first``: the word after the
    action, which HAProxy names when there is no expression (it may be `if`).
    Returns the action, or HAProxy's text without its final dot."""
    def bad(word: str) -> str:
        return f"Can't parse '{word}'. {_DO_RESOLVE_USAGE}"

    open_at = act.find("(")
    if open_at < 0:
        return bad(act)
    beg = open_at + 1
    end = act.find(",", beg)
    if end < 0:
        return bad(act)
    var = act[beg:end]

    def next_cut(start: int) -> int:
        cut = act.find(",", start)
        return cut if cut >= 0 else act.find(")", start)

    beg = end + 1
    end = next_cut(beg)
    if end < 0:
        return bad(act)
    section = act[beg:end]
    ipv4 = False
    while act[end] != ")":
        beg = end + 1
        end = next_cut(beg)
        if end < 0:
            return bad(act)
        option = act[beg:end]
        if "ipv4".startswith(option):
            ipv4 = True
        elif "ipv6".startswith(option):
            ipv4 = False
        else:
            return bad(act)
    expr_text = args[0] if args else ""
    try:
        expr = sample_mod.parse_expr(expr_text)
    except Exception:
        return bad(expr_text or first)
    need = uses.unavailable(expr.fetch_def.name, "http-request")
    if need is not None:
        return (f"fetch method '{expr_text}' extracts information from '{need}', none of "
                "which is available here")
    if len(args) > 1:
        return f"unexpected keyword '{args[1]}'."
    return m.ActDoResolve(var, section, expr_text, ipv4)


def _capture_action(kw: str, p: ProxyBuilder, args: tuple[str, ...]) -> m.ActCapture | str:
    if len(args) < 3 or not all(args[:3]):
        return "expects <expression> [ 'len' <length> | id <idx> ]."
    try:
        sample_mod.parse_expr(args[0])
    except Exception as exc:
        return f"{_msg(exc)}."
    response = kw == "http-response"
    if response and args[1] != "id":
        return f"expects 'id', found '{args[1]}'."
    if args[1] not in ("len", "id"):
        return f"expects 'len' or 'id', found '{args[1]}'."
    if len(args) > 3:
        return f"unexpected keyword '{args[3]}'."
    if args[1] == "id":
        return m.ActCapture(args[0], atoi(args[2]), response, by_id=True)
    size = atoi(args[2])
    if size <= 0:
        return "length must be > 0."
    if not p.has_cap("frontend"):
        return f"proxy '{p.name}' has no frontend capability."
    p.captures_req.append(("", size))
    return m.ActCapture(args[0], len(p.captures_req) - 1)


def kw_declare(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """`declare capture request|response len <n>`: a capture slot that `capture`
    rules fill by id."""
    words = line.words
    if len(words) < 2 or words[1] != "capture":
        ctx.alert(line, "'declare' requires an argument ('capture').", "bad-argument")
        return
    side = words[2] if len(words) > 2 else ""
    if side not in ("request", "response"):
        ctx.alert(line, "'declare capture' requires a direction ('request' or 'response')",
                  "bad-argument")
        return
    if len(words) < 4 or words[3] != "len":
        ctx.alert(line, "'declare capture' requires a capture length ('len')",
                  "missing-argument")
        return
    if len(words) < 5 or not words[4]:
        ctx.alert(line, "'declare capture': 'len' requires a numeric value that represents "
                  "the capture length", "missing-argument")
        return
    (p.captures_req if side == "request" else p.captures_res).append(
        ("", max(atoi(words[4]), 0)))


def _redirect(kw: str, p: ProxyBuilder, line: Line, ctx: ParseCtx, args: tuple[str, ...]
              ) -> m.ActRedirect | str:
    if not args or args[0] not in ("location", "prefix", "scheme"):
        return "redirection type expected ('prefix', 'location', or 'scheme')."
    if len(args) < 2 or not args[1]:
        return f"missing argument for '{args[0]}'."
    kind, target = args[0], args[1]
    if not check_format(p, line, ctx, target, f"'{kw} redirect' rule"):
        return "__reported__"
    fields: dict[str, Any] = {}
    i = 2
    while i < len(args):
        w = args[i]
        if w == "code":
            if i + 1 >= len(args) or args[i + 1] not in ("301", "302", "303", "307", "308"):
                got = args[i + 1] if i + 1 < len(args) else ""
                return (f"'code': unsupported HTTP code '{got}' (must be one of 301, 302, 303, "
                        "307 or 308).")
            fields["code"] = int(args[i + 1])
            i += 2
        elif w in ("drop-query", "append-slash", "ignore-empty"):
            fields[w.replace("-", "_")] = True
            i += 1
        elif w in ("set-cookie", "clear-cookie"):
            if i + 1 >= len(args):
                return f"'{w}' expects a cookie name."
            fields[w.replace("-", "_")] = args[i + 1]
            i += 2
        else:
            return (f"expects 'code', 'prefix', 'location', 'scheme', 'set-cookie', "
                    f"'clear-cookie', 'drop-query', 'ignore-empty' or 'append-slash' (was "
                    f"'{w}').")
    return m.ActRedirect(kind=kind, target_fmt=target, **fields)  # type: ignore[arg-type]


HTTP_ACTIONS = ("add-header", "allow", "auth", "capture", "del-header", "deny", "redirect", "reject",
                "replace-header", "replace-path", "replace-pathq", "replace-uri",
                "replace-value", "return", "set-header", "set-method", "set-path",
                "set-pathq", "set-query", "set-status", "set-timeout", "set-uri",
                "set-var(*)", "set-var-fmt(*)", "unset-var(*)", "silent-drop", "tarpit",
                "use-service", "track-sc0", "track-sc1",
                "track-sc2", "sc-inc-gpc(*)", "sc-set-gpt(*)",
                "add-acl(*)", "del-acl(*)", "set-map(*)", "del-map(*)", "set-src",
                "set-src-port", "set-dst", "set-dst-port", "normalize-uri", "early-hint",
                "do-resolve(*)")
# HAProxy 2.6 takes these only after the global `expose-experimental-directives`
EXPERIMENTAL_ACTIONS = frozenset({"normalize-uri"})
# HAProxy actions lb does not implement. Ignoring these changes nothing a client or a
# server sees (logging, tracking, tuning), so they are accepted with a warning; any
# other known action lb lacks is refused, as ignoring it would change traffic.
IGNORED_ACTIONS = frozenset({
    "set-log-level", "set-nice", "set-tos", "set-mark", "disable-l7-retry", "wait-for-body", "wait-for-handshake",
    "set-priority-class", "set-priority-offset", "strict-mode", "send-spoe-group",
    "cache-use", "cache-store", "ot-group"})
_RESPONSE_ONLY_BAD = ("auth", "tarpit", "reject", "set-path", "set-pathq", "set-uri", "set-query",
                      "set-method", "replace-path", "replace-pathq", "replace-uri",
                      "use-service", "set-timeout", "set-src", "set-src-port", "set-dst",
                      "set-dst-port", "normalize-uri", "early-hint", "do-resolve(*)")


def _rules_kw(kw: str, attr: str) -> Callable[[ProxyBuilder, Line, ParseCtx], None]:
    def handler(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
        start = len(ctx.diags.items)
        try:
            body(p, line, ctx)
        finally:  # HAProxy 2.6 stops reading the file after a bad http rule
            ctx.mark_stops(start)

    def body(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
        words = line.words
        label = _LABEL.get(attr, kw)
        own: list[m.Rule] = getattr(p, attr)
        last = own[-1] if kw == "http-request" and own else None
        if last is not None and last.cond is None and getattr(last.action, "final", False):
            # (HAProxy looks at the rule just before, before reading this one)
            ctx.warn(line, "previous 'http-request' action is final and has no condition "
                     "attached, further entries are NOOP.", "unreachable-rule", style="tight")
        actions = tuple(a for a in HTTP_ACTIONS if a != "set-status") \
            if kw == "http-request" else tuple(
                a for a in HTTP_ACTIONS if a not in _RESPONSE_ONLY_BAD)
        if len(words) < 2 or not words[1]:
            ctx.alert(line, f"'{label}' expects {action_lists.listing(label)}, but got '' "
                      "(missing argument).", "missing-argument", style="tight")
            return
        act = words[1]
        if not action_lists.known(label, act):  # (`lua.*` too: lb loads no Lua)
            ctx.alert(line, f"'{label}' expects {action_lists.listing(label)}, but got "
                      f"'{act}'.", "unknown-action", col=line.col(1), style="tight",
                      suggestion=suggest(act, [a.replace("(*)", "") for a in actions]))
            return
        if act in EXPERIMENTAL_ACTIONS and not ctx.glob_values.get("expose_experimental"):
            ctx.alert(line, f"'{act}' action is experimental, must be allowed via a global "
                      "'expose-experimental-directives'", "experimental", col=line.col(1))
            return
        cut = next((i for i in range(2, len(words)) if words[i] in ("if", "unless")),
                   len(words))
        res: m.Action | str | None
        if var_kw.is_var_action(act):
            res = var_kw.parse_action(act, tuple(words[2:cut]), _RULE_CONTEXT[attr])
            if isinstance(res, str):
                res += "."
            return _add_rule(kw, attr, p, line, ctx, act, res, cut)
        base = act.split("(")[0] + ("(*)" if "(" in act else "")
        if act.startswith("track-sc"):
            base = "track-sc0"  # the number is checked with the action's arguments
        elif act.startswith(("sc-inc-gpc", "sc-set-gpt")):
            base = act[:10] + "(*)"  # (the parser tells the forms apart)
        elif act in ("add-acl", "del-acl", "set-map", "del-map"):
            base = act + "(*)"  # no file: HAProxy 2.6.12 takes it, and changes nothing
        elif act.startswith("do-resolve"):
            base = "do-resolve(*)"  # (HAProxy matches the prefix; the parser says more)
        if base in IGNORED_ACTIONS:
            ctx.warn(line, f"'{label} {act}' is not supported by lb; the rule is ignored.",
                     "unsupported-action", col=line.col(1))
            return
        if base == "set-status" and attr != "http_response_rules" and kw != "http-request":
            ctx.alert(line, f"'{label} {act}' is not supported by lb (ignoring it would change "
                      "what clients or servers see).", "unsupported-action", col=line.col(1))
            return
        if base not in actions:  # HAProxy knows it (above); lb does not carry it out
            ctx.alert(line, f"'{label} {act}' is not supported by lb.", "unsupported-action",
                      col=line.col(1))
            return
        res = parse_action(kw, p, line, ctx, words[2:cut])
        return _add_rule(kw, attr, p, line, ctx, act, res, cut)
    return handler


# http-after-response rules parse as http-response ones; messages name their keyword
_LABEL = {"http_after_response_rules": "http-after-response"}
# the rule context (lb.match.uses) of each http rule list
_RULE_CONTEXT = {"http_request_rules": "http-request", "http_response_rules": "http-response",
                 "http_after_response_rules": "http-after-response",
                 "stats_http_request_rules": "http-request"}


_STATS_RULES = _rules_kw("http-request", "stats_http_request_rules")


def _add_rule(kw: str, attr: str, p: ProxyBuilder, line: Line, ctx: ParseCtx, act: str,
              res: m.Action | str | None, cut: int) -> None:
    """Report the parsed action's error, or append the rule with its condition."""
    rule_desc = f"'{_LABEL.get(attr, kw)} {act}'"
    if isinstance(res, str):
        stray = re.fullmatch(r"unexpected keyword '(.*)'\.", res)
        if stray:  # the action ended: HAProxy then expects the condition
            ctx.alert(line, f"{rule_desc} expects either 'if' or 'unless' followed by a "
                      f"condition but found '{stray.group(1)}'.", "bad-condition",
                      col=line.col(1), style="tight")
        elif res != "__reported__":
            ctx.alert(line, f"error detected in {p.label()} while parsing {rule_desc} rule "
                      f": {res}", "bad-action", col=line.col(1))
        return
    if res is None:
        ctx.alert(line, f"'{_LABEL.get(attr, kw)}' expects a valid action, but got '{act}'.",
                  "unknown-action", col=line.col(1), style="tight")
        return
    ok, cond, text = compile_cond(p, line, ctx, cut, f"an {rule_desc} condition")
    if not ok:
        return
    rules: list[m.Rule] = getattr(p, attr)
    later = _later_rules(p, "http-request") if kw == "http-request" else ""
    if later:  # (HAProxy writes "a 'http-request'" here)
        ctx.warn(line, f"a 'http-request' rule placed after {later} rule will still be "
                 "processed before.", "rule-order",
                 more=(f"   | lb runs every 'http-request' rule of {p.label()} first, then "
                       "the 'use_backend' rules, whatever their order in the file.",)
                 if later == "a 'use_backend'" else ())
    rules.append(m.Rule(action=res, cond=cond, cond_text=text, origin=origin(line)))
    if p.kind == "defaults":
        p.has_rules = True


# the legacy stick-counter updates: action word prefix -> the data they change
_COUNTER_DATA = {"sc-inc-gpc0": "gpc0", "sc-inc-gpc1": "gpc1", "sc-set-gpt0": "gpt0"}


def _strtol(text: str, i: int) -> tuple[int, int]:
    """C ``strtol(text + i, &end, 10)``: (value, index of ``end``); (0, i) when no
    digits follow (blanks and a sign are read first)."""
    n = len(text)
    j = i
    while j < n and text[j] in " \t\n\v\f\r":
        j += 1
    negative = j < n and text[j] == "-"
    if j < n and text[j] in "+-":
        j += 1
    k = j
    while k < n and "0" <= text[k] <= "9":
        k += 1
    if k == j:
        return 0, i
    return (-1 if negative else 1) * int(text[j:k]), k


def parse_stick_counter_action(act: str, p: ProxyBuilder, args: tuple[str, ...],
                               session: bool = False, context: str = "http-request"
                               ) -> m.Action | str:
    """`track-sc<n> <expr> [table <t>]`, `sc-inc-gpc0|1[(<n>)]`, `sc-set-gpt0[(<n>)]
    <int|expr>` and the array forms `sc-inc-gpc(<idx>,<n>)`, `sc-set-gpt(<idx>,<n>)
    <int|expr>` in a rule of ``context`` (lb.match.uses.CONTEXTS): HAProxy 2.6's
    texts for their errors, without a final period (the callers word them as their
    keyword does)."""
    if act.startswith("track-sc"):
        slot_text = act[len("track-sc"):]  # (none: 0; HAProxy reads an unsigned int)
        if slot_text and not (slot_text.isascii() and slot_text.isdigit()):
            return f"Wrong track-sc number '{slot_text}'"
        number = min(int(slot_text or "0"), 0xFFFFFFFF)
        if number > 2:
            return f"{number} track-sc number exceeding 2 (MAX_SESS_STKCTR-1) value"
        if not args or not args[0]:
            return "missing fetch method"
        try:
            expr = sample_mod.parse_expr(args[0])
        except sample_mod.SampleError as exc:
            return _msg(exc)
        need = uses.unavailable(expr.fetch_def.name, context)
        if need is not None:
            return (f"fetch method '{args[0]}' extracts information from '{need}', none of "
                    "which is available here")
        table = None
        rest = args[1:]
        if rest and rest[0] == "table":
            if len(rest) < 2 or not rest[1]:
                return "missing table name"
            table = rest[1]
            rest = rest[2:]
        if rest:
            return f"unexpected keyword '{rest[0]}'"
        return m.ActTrackSc(number, args[0], table, session, p.name)
    legacy = next((k for k in _COUNTER_DATA if act.startswith(k)), None)
    index: int | None = None
    if legacy is not None:
        data = _COUNTER_DATA[legacy]
        slot = 0
        # (HAProxy 2.6.12 words the two parsers' errors differently)
        named = f" '{act}'" if data == "gpt0" else ""
        if len(act) > len(legacy):
            slot, end = _strtol(act, len(legacy) + 1)
            if act[len(legacy)] != "(" or end >= len(act) or act[end] != ")":
                form = legacy if data == "gpt0" else act
                return f"invalid stick table track ID{named}. Expects {form}(<Track ID>)"
            if slot > 2:
                return f"invalid stick table track ID{named}. The max allowed ID is 2"
    else:
        form, data = ("sc-inc-gpc", "gpc") if act.startswith("sc-inc-gpc") else \
            ("sc-set-gpt", "gpt")
        expects = f"Expects {form}(<{data.upper()} ID>,<Track ID>)"
        if act[len(form):len(form) + 1] != "(":
            return f"invalid {data} ID '{act}'. {expects}"
        index, end = _strtol(act, len(form) + 1)
        if end >= len(act) or act[end] != ",":
            return f"Missing {data} ID '{act}'. {expects}"
        slot, end = _strtol(act, end + 1)
        if end >= len(act) or act[end] != ")":
            return f"invalid stick table track ID '{act}'. {expects}"
        if slot > 2:
            return f"invalid stick table track ID '{act}'. The max allowed ID is 2"
    value = ""
    if data.startswith("gpt"):
        value = args[0] if args else ""
        number, end = _strtol(value, 0)
        if end == len(value):  # (none at all: 0, as HAProxy)
            value = str(number)
        else:
            try:
                expr = sample_mod.parse_expr(value)
            except sample_mod.SampleError as exc:
                return _msg(exc)
            if context == "tcp-request connection":  # (HAProxy 2.6.12 refuses these)
                return "internal error, unexpected rule->from=0, please report this bug!"
            need = uses.unavailable(expr.fetch_def.name, context)
            if need is not None:
                return (f"fetch method '{value}' extracts information from '{need}', none "
                        "of which is available here")
        args = args[1:]
    if args:
        return f"unexpected keyword '{args[0]}'"
    return m.ActScUpdate(slot, data, value, index)


def kw_redirect(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """The legacy `redirect` keyword (runs after http-request rules)."""
    words = line.words
    cut = len(words)
    for i in range(1, len(words)):
        if words[i] in ("if", "unless"):
            cut = i
            break
    res = _redirect("redirect", p, line, ctx, words[1:cut])
    if isinstance(res, str):
        if res != "__reported__":
            ctx.alert(line, f"error detected in {p.label()} while parsing redirect rule : {res}",
                      "bad-action")
        return
    ok, cond, text = compile_cond(p, line, ctx, cut, "a 'redirect' rule")
    if ok:
        later = _later_rules(p, "redirect")
        if later:
            ctx.warn(line, f"a 'redirect' rule placed after {later} rule will still be "
                     "processed before.", "rule-order")
        p.redirect_rules.append(m.Rule(action=res, cond=cond, cond_text=text,
                                       origin=origin(line)))


def _later_rules(p: ProxyBuilder, kind: str) -> str:
    """The first kind of rule already in the section that runs after a ``kind`` rule
    ("connection", "session", "content" for tcp-request, "http-request",
    "monitor", "redirect"), as HAProxy 2.6.12 names it ("a 'use_backend'"), or ""."""
    chain = [("connection", None, ""),
             ("session", p.tcp_request_session_rules, "a 'tcp-request session'"),
             ("content", p.tcp_request_content_rules, "a 'tcp-request content'"),
             ("monitor", p.monitor_fail, "a 'monitor fail'"),
             ("http-request", p.http_request_rules, "an 'http-request'"),
             ("redirect", p.redirect_rules, "a 'redirect'"),
             ("use_backend", p.first_use_backend_line, "a 'use_backend'"),
             ("use-server", p.server_rules, "a 'use-server'")]
    start = next(i for i, (name, _, _) in enumerate(chain) if name == kind)
    return next((text for _, present, text in chain[start + 1:] if present), "")


def _inspect_delay(kw: str, p: ProxyBuilder, line: Line, ctx: ParseCtx) -> float | None:
    """`<kw> inspect-delay <time>`: seconds, or None once the error is reported."""
    base = f"'{kw} inspect-delay' expects a positive delay in milliseconds, in {p.label()}"
    if len(line.words) < 3:
        ctx.alert(line, base, "missing-argument")
        return None
    try:
        ms, junk = parse_time_ms(line.words[2])
        if junk:
            raise UnitError("char", line.words[2], junk[0])
    except UnitError as exc:
        ctx.alert(line, f"{base} (unexpected character '{exc.char}')" if exc.char else base,
                  "bad-time")
        return None
    return ms / 1000.0


def kw_tcp_response(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """`tcp-response inspect-delay <t>` / `tcp-response content <action> [cond]`:
    checked as HAProxy 2.6.12 checks them (backends and named defaults only, its
    action list), then ignored with a warning: lb has no layer-4 response rules."""
    words = line.words
    if len(words) < 2:
        ctx.alert(line, f"missing argument for 'tcp-response' in {p.label()}", "bad-argument")
        return
    where = words[1]
    if where not in ("inspect-delay", "content"):
        ctx.alert(line, "'tcp-response' expects 'inspect-delay' or 'content' in "
                  f"{p.label()} (got '{where}')", "bad-argument")
        return
    if p.kind == "frontend" or (p.kind == "defaults" and not p.name):
        ctx.alert(line, f"tcp-response {where} is only allowed in 'backend' sections or "
                  "'defaults' section with a name", "capability", col=line.col(1))
        return
    if where == "inspect-delay":
        if _inspect_delay("tcp-response", p, line, ctx) is None:
            return
        ctx.warn(line, "'tcp-response inspect-delay' is not supported by lb and is ignored.",
                 "unsupported-keyword", col=line.col(1))
        return
    act = words[2] if len(words) > 2 else ""
    if not act or not action_lists.known("tcp-response content", act):
        ctx.alert(line, "'tcp-response content' expects "
                  f"{action_lists.listing('tcp-response content')} in {p.label()} "
                  f"(got '{act}').", "unknown-action" if act else "missing-argument",
                  col=line.col(2) if act else 0)
        return
    ctx.warn(line, f"'tcp-response content {act}' is not supported by lb and is ignored.",
             "unsupported-keyword", col=line.col(2))


# the multiplexers `switch-mode http proto` names (HAProxy 2.6.12): the HTTP ones it
# takes there, then those of the wrong mode, refused once the proxy is checked
# (lb.config.build)
_SWITCH_PROTOS = ("h1", "h2")
_OTHER_MUXES = ("fcgi", "none")


def _switch_mode(p: ProxyBuilder, args: tuple[str, ...]) -> tuple[m.Action, int] | str:
    """`switch-mode http [proto <name>]`: the action and where its condition starts,
    or HAProxy 2.6.12's text."""
    if "frontend" not in p.caps:
        return (f"'tcp-request switch-mode' not allowed because {p.label()} has no "
                "frontend capability")
    if not args or not args[0]:
        return "'tcp-request switch-mode' expects a mode as argument."
    if args[0] != "http":
        return f"'tcp-request switch-mode' expects a valid mode (got '{args[0]}')."
    i = 1
    if len(args) > 1 and args[1] == "proto":
        if len(args) < 3 or not args[2]:
            return "'tcp-request switch-mode': 'proto' expects a protocol as argument."
        proto = args[2]
        if proto not in _SWITCH_PROTOS + _OTHER_MUXES:
            return ("'tcp-request switch-mode': 'proto' expects a valid MUX protocol, if "
                    f"specified (got '{proto}')")
        if proto == "h2":
            return ("'tcp-request content switch-mode http proto h2' is not supported by lb "
                    "(it speaks HTTP/1 only).")
        i = 3
    if i < len(args) and args[i] not in ("if", "unless"):
        return (f"'tcp-request content switch-mode' only accepts 'if' or 'unless', in "
                f"{p.label()} (got '{args[i]}')")
    return m.ActSwitchMode(proto=args[2] if i == 3 else ""), 3 + i


def kw_tcp_request(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    words = line.words
    if len(words) < 2:
        ctx.alert(line, f"missing argument for 'tcp-request' in {p.label()}", "bad-argument")
        return
    if words[1] not in ("connection", "content", "session", "inspect-delay"):
        # (HAProxy 2.6.12's text leaves out 'session', which it takes)
        ctx.alert(line, "'tcp-request' expects 'inspect-delay', 'connection', or 'content' "
                  f"in {p.label()} (got '{words[1]}')", "bad-argument")
        return
    where = words[1]
    if where in ("connection", "session") and not p.has_cap("frontend"):
        ctx.alert(line, f"tcp-request {where} is not allowed because {p.kind} {p.name} is not "
                  "a frontend", "capability", col=line.col(1))
        return
    if where == "inspect-delay":
        delay = _inspect_delay("tcp-request", p, line, ctx)
        if delay is not None:
            p.inspect_delay = delay
        return
    keyword = f"tcp-request {where}"
    if len(words) < 3 or not words[2]:
        ctx.alert(line, f"'{keyword}' expects {action_lists.listing(keyword)} in "
                  f"{p.label()} (got '').", "missing-argument")
        return
    act = words[2]
    if not action_lists.known(keyword, act):
        ctx.alert(line, f"'{keyword}' expects {action_lists.listing(keyword)} in "
                  f"{p.label()} (got '{act}').", "unknown-action", col=line.col(2))
        return
    action: m.Action
    start = 3
    if act.startswith(("track-sc", "sc-inc-gpc", "sc-set-gpt")):
        start = next((i for i in range(3, len(words)) if words[i] in ("if", "unless")),
                     len(words))
        res = parse_stick_counter_action(act, p, tuple(words[3:start]),
                                         session=where != "content",
                                         context=f"tcp-request {where}")
        if isinstance(res, str):
            stray = re.fullmatch(r"unexpected keyword '(.*)'", res)
            if stray:
                res = (f"'tcp-request {where} {act}' only accepts 'if' or 'unless', in "
                       f"{p.label()} (got '{stray.group(1)}')")
            elif act.startswith("track-sc"):
                res = f"'tcp-request {where} {act}' : {res}"
            ctx.alert(line, res, "bad-action", col=line.col(2))
            return
        action = res
    elif var_kw.is_var_action(act) or act.startswith("do-resolve"):
        start = next((i for i in range(3, len(words)) if words[i] in ("if", "unless")),
                     len(words))
        args = tuple(words[3:start])
        parsed = (var_kw.parse_action(act, args, f"tcp-request {where}")
                  if var_kw.is_var_action(act) else
                  parse_do_resolve(act, args, words[3] if len(words) > 3 else ""))
        if isinstance(parsed, str):
            stray = re.fullmatch(r"unexpected keyword '(.*)'\.?", parsed)
            if stray:
                parsed = (f"'tcp-request {where} {act}' only accepts 'if' or 'unless', in "
                          f"{p.label()} (got '{stray.group(1)}')")
            ctx.alert(line, parsed, "bad-action", col=line.col(2))
            return
        action = parsed
    elif act == "switch-mode":
        res = _switch_mode(p, tuple(words[3:]))
        if isinstance(res, str):
            ctx.alert(line, res, "bad-action", col=line.col(2))
            return
        action, start = res
    elif act == "expect-proxy":
        if where != "connection":
            ctx.alert(line, f"'expect-proxy layer4' is not allowed in 'tcp-request {where}' "
                      f"rules in {p.label()}", "bad-action", col=line.col(2))
            return
        got = words[3] if len(words) > 3 else ""
        if got != "layer4":
            ctx.alert(line, f"'tcp-request connection expect-proxy' only supports 'layer4' in "
                      f"{p.label()} (got '{got}')", "bad-action", col=line.col(3))
            return
        start = 4
        action = m.ActExpectProxy()
    elif act in ("set-src", "set-src-port", "set-dst", "set-dst-port"):
        # (HAProxy 2.6.12 checks the expression only; a fetch of what is not there yet
        # gives no sample at run time and changes nothing)
        start = next((i for i in range(3, len(words)) if words[i] in ("if", "unless")),
                     len(words))
        if start == 3 or not words[3]:
            ctx.alert(line, "missing fetch method", "bad-action", col=line.col(2))
            return
        if start > 4:
            ctx.alert(line, f"'tcp-request {where} {act}' only accepts 'if' or 'unless', in "
                      f"{p.label()} (got '{words[4]}')", "bad-action", col=line.col(4))
            return
        try:
            sample_mod.parse_expr(words[3])
        except Exception as exc:
            ctx.alert(line, _msg(exc), "bad-action", col=line.col(3))
            return
        action = m.ActSetAddr(words[3], port=act.endswith("-port"),
                              dst=act.startswith("set-dst"))
    elif act == "use-service":
        # HAProxy 2.6.12 refuses every service here (its text names the rule set
        # where it means the service)
        name = words[3] if len(words) > 3 else ""
        text = ("'tcp-request' expects a service name." if not name else
                "Prometheus exporter service only available on 'http-request' rulesets"
                if name == "prometheus-exporter" else f"'{where}' unknown service name.")
        ctx.alert(line, text, "bad-action", col=line.col(2))
        return
    elif act not in ("accept", "reject", "silent-drop"):
        ctx.warn(line, f"'tcp-request {where} {act}' is not supported by lb and is ignored.",
                 "unsupported-keyword", col=line.col(2))
        return
    else:
        action = m.ActAllow() if act == "accept" else m.ActReject(silent=act == "silent-drop")
    ok, cond, text = compile_cond(p, line, ctx, start, f"a 'tcp-request {where} {act}' rule")
    if not ok:
        return
    rule = m.Rule(action=action, cond=cond, cond_text=text, origin=origin(line))
    later = _later_rules(p, where)
    if later:
        ctx.warn(line, f"a 'tcp-request' rule placed after {later} rule will still be "
                 "processed before.", "rule-order")
    if where == "connection":
        p.tcp_request_connection_rules.append(rule)
    elif where == "session":
        p.tcp_request_session_rules.append(rule)
    else:
        p.tcp_request_content_rules.append(rule)
    if p.kind == "defaults":
        p.has_rules = True


# `clitcpka-idle|cnt|intvl` and `srvtcpka-...`: keepalive probe settings of the client
# or server sockets (with option clitcpka / srvtcpka / tcpka); times in seconds
_TCPKA_SIDE = {"cli": "frontend", "srv": "backend"}


def kw_tcpka_setting(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    kw = line.words[0]
    side = _TCPKA_SIDE[kw[:3]]
    if len(line.words) < 2 or not line.words[1]:
        ctx.alert(line, f"'{kw}' expects an integer value", "missing-argument")
        return
    v = line.words[1]
    if kw.endswith("-cnt"):
        bad = next((c for c in v.lstrip("-") if not c.isdigit()), None)
        if bad is not None or v in ("", "-"):
            ctx.alert(line, f"'{kw}' : unexpected character '{bad or v[:1]}' in integer "
                      f"value '{v}'", "bad-argument", col=line.col(1))
            return
        value = max(atoi(v), 0)
    else:
        try:
            value, junk = parse_time_s(v, kw)
        except UnitError as exc:
            text = (exc.describe(kw) if exc.reason == "overflow" else
                    f"unexpected character '{exc.char or v[:1]}' in argument to <{kw}>.")
            ctx.alert(line, text, "bad-time", col=line.col(1))
            return
        if junk:
            ctx.warn(line, junk_warning(v, junk), "time-junk", col=line.col(1),
                     style="plain")
    if p.kind != "defaults" and not p.has_cap(side):
        ctx.warn(line, f"{kw} will be ignored because {p.label()} has no {side} "
                 "capability", "capability")
        return
    p.tcpka_settings[kw] = value


def kw_transparent(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """The old bare `transparent`: `option transparent`, without argument."""
    if not too_many(line, ctx, 0):
        p.options["transparent"] = True
        p.option_origins["transparent"] = origin(line)


# the filters HAProxy 2.6.12 registers, as its error lists them
FILTERS = (("CACHE", "cache"), ("COMP", "compression"), ("FCGI", "fcgi-app"),
           ("  OT", "opentracing"), ("SPOE", "spoe"), ("TRACE", "trace"))
_TRACE_WORDS = ("random-parsing", "random-forwarding", "hexdump")


def kw_filter(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """`filter <name> [args]`: HAProxy 2.6.12's checks of the name and of the
    arguments of `compression` and `trace`. `filter compression` states where the
    compression filter runs, which lb's compression does anyway (docs/dataplane.md);
    the other filters are accepted and ignored with a warning."""
    words = line.words
    name = words[1] if len(words) > 1 else ""
    where = f"parsing [{line.file}:{line.lineno}] : "
    if not name:
        ctx.alert(line, f"{where}missing argument for 'filter' in {kind_word(p.kind)} "
                  f"'{p.name}'.", "missing-argument")
        return
    if name not in {n for _, n in FILTERS}:
        ctx.alert(line, f"'filter' : unknown keyword '{name}'. Registered keywords :",
                  "unknown-filter", col=line.col(1),
                  more=tuple(f"    [{tag}] {n}" for tag, n in FILTERS))
        return
    args = list(words[2:])
    if name == "compression":
        if args:
            ctx.alert(line, f"'filter compression' : unknown keyword '{args[0]}'.",
                      "bad-argument", col=line.col(2))
        return
    if name == "trace":
        i = 0
        while i < len(args):
            if args[i] == "name":
                if i + 1 >= len(args) or not args[i + 1]:
                    ctx.alert(line, "'filter' : ''trace' : 'name' option without value'",
                              "missing-argument", col=line.col(2 + i))
                    return
                i += 2
            elif args[i] in _TRACE_WORDS:
                i += 1
            else:
                ctx.alert(line, f"'filter trace' : unknown keyword '{args[i]}'.",
                          "bad-argument", col=line.col(2 + i))
                return
    elif name == "cache" and not args:
        ctx.alert(line, "'filter' : 'cache : expects a <name> argument'", "missing-argument")
        return
    ctx.warn(line, f"'filter {name}' is not supported by lb and is ignored.",
             "unsupported-keyword", col=line.col(1))


def kw_bind_process(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """`bind-process [<set>...]`: each word a process number or range HAProxy 2.6
    can run (one process), `all`, `odd` or `even`; then its deprecation warning."""
    for word in line.words[1:]:
        text = bind_kw.number_set_error(word, bind_kw.MAX_PROCS)
        if text is not None:
            ctx.alert(line, f"bind-process : {text}", "bad-argument",
                      col=line.col(line.words.index(word)))
            return
    ctx.warn(line, "'bind-process' has no effect, is deprecated, and will be removed in "
             "version 2.7.", "deprecated", col=line.col(0), style="tight")


def kw_dispatch(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """`dispatch <address>:<port>`: where a backend that does not load balance sends
    what persistence does not place (checked as HAProxy 2.6.12 checks it; a name is
    resolved now). A `balance` line makes it ignored (lb.config.build warns)."""
    arg = line.words[1] if len(line.words) > 1 else ""
    if not arg:
        ctx.alert(line, "'dispatch' : '' resolves to an empty address (environment "
                  "variable missing?)\n", "bad-address")
        return
    read = server_kw.connect_address(arg)
    if isinstance(read, str):
        ctx.alert(line, f"'dispatch' : {read}", "bad-address", col=line.col(1))
        return
    if arg.startswith("sockpair@"):  # (an inherited socket pair: lb cannot dial one)
        _unsupported(p, line, ctx)
        return
    p.dispatch = read
    p.dispatch_origin = origin(line)


def _unsupported(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    ctx.warn(line, f"'{line.words[0]}' is not supported by lb and is ignored.",
             "unsupported-keyword", col=line.col(0))


# --------------------------------------------------------------------------- table

FE, BE = "frontend", "backend"
SECTION_NAMES = frozenset({"global", "defaults", "frontend", "backend", "listen", "userlist",
                           "peers", "mailers", "resolvers", "program", "http-errors", "ring",
                           "log-forward", "cache", "fcgi-app", "namespace_list", "crt-store",
                           "traces"})

_ROWS: list[Keyword] = [
    Keyword("acl", kw_acl, named_defaults_only=True, help="declare a named ACL"),
    Keyword("backlog", _int_kw("backlog", "backlog"), FE, help="listen queue length"),
    Keyword("balance", kw_balance, BE, help="load-balancing algorithm"),
    Keyword("bind", kw_bind, FE, defaults=False, fatal_side=True, help="listening address"),
    Keyword("clitcpka-cnt", kw_tcpka_setting, help="keepalive probes before a client connection is dropped"),
    Keyword("clitcpka-idle", kw_tcpka_setting, help="idle time before keepalive probes on client connections"),
    Keyword("clitcpka-intvl", kw_tcpka_setting, help="time between keepalive probes on client connections"),
    Keyword("clitimeout", _legacy_timeout("clitimeout", "client"), FE,
            help="legacy form of 'timeout client'"),
    Keyword("contimeout", _legacy_timeout("contimeout", "connect"), BE,
            help="legacy form of 'timeout connect'"),
    Keyword("cookie", kw_cookie, BE, help="cookie-based persistence"),
    Keyword("default-server", server_kw.kw_default_server, BE, fatal_side=True,
            help="default options for following servers"),
    Keyword("default_backend", kw_default_backend, FE, help="backend used when no rule matches"),
    Keyword("description", kw_description, defaults=False, help="free text description"),
    Keyword("errorfile", kw_errorfile, help="replace a built-in error page"),
    Keyword("errorloc", kw_errorloc("errorloc"),
            help="answer an error status with a 302 redirect"),
    Keyword("errorloc302", kw_errorloc("errorloc302"),
            help="answer an error status with a 302 redirect"),
    Keyword("errorloc303", kw_errorloc("errorloc303"),
            help="answer an error status with a 303 redirect"),
    Keyword("http-error", kw_http_error, help="replace a built-in error page (http-reply)"),
    Keyword("errorfiles", kw_errorfiles, help="import the pages of an http-errors section"),
    Keyword("force-persist", kw_persist("force"), BE, defaults=False,
            help="use a down server named by a cookie"),
    Keyword("fullconn", _int_kw("fullconn", "fullconn"), BE, max_args=1),
    Keyword("compression", kw_compression,
            help="compress responses (algo, type, offload)"),
    Keyword("hash-balance-factor", kw_hash_balance_factor, BE,
            help="bounded-load consistent hashing (percent of the average load)"),
    Keyword("hash-type", kw_hash_type, BE, read_off_side=True,
            help="hashing method for hash algorithms"),
    Keyword("http-after-response", _rules_kw("http-response", "http_after_response_rules"),
            named_defaults_only=True),
    Keyword("http-check", check_kw.kw_http_check, BE, read_off_side=True,
            help="HTTP health-check rules"),
    Keyword("http-request", _rules_kw("http-request", "http_request_rules"),
            named_defaults_only=True, help="request rules"),
    Keyword("http-response", _rules_kw("http-response", "http_response_rules"),
            named_defaults_only=True, help="response rules"),
    Keyword("http-reuse", kw_http_reuse, BE, help="server connection reuse policy"),
    Keyword("max-keep-alive-queue", kw_max_keep_alive_queue,
            help="queue length prefer-last-server accepts"),
    Keyword("max-session-srv-conns", kw_max_session_srv_conns,
            help="idle server connections a client connection may own"),
    Keyword("id", kw_id, defaults=False, max_args=1),
    Keyword("disabled", kw_disabled, max_args=0, help="never start this proxy"),
    Keyword("enabled", kw_disabled, max_args=0, help="undo an inherited 'disabled'"),
    Keyword("ignore-persist", kw_persist("ignore"), BE, defaults=False,
            help="ignore persistence for matching requests"),
    Keyword("declare", kw_declare, FE, defaults=False,
            help="a capture slot for `capture` rules by id"),
    Keyword("rate-limit", kw_rate_limit, help="new sessions a second a frontend accepts"),
    Keyword("bind-process", kw_bind_process, help="deprecated; no effect (a warning)"),
    Keyword("dispatch", kw_dispatch, BE, defaults=False, max_args=1,
            help="checked; not supported (a warning)"),
    Keyword("capture", kw_capture, FE, defaults=False, read_off_side=True,
            help="log a request or response header (%hr, %hs)"),
    Keyword("server-template", server_kw.kw_server_template, BE, defaults=False,
            fatal_side=True, help="several servers from one line: <prefix><number>"),
    Keyword("use-server", kw_use_server, BE, defaults=False,
            help="send the matching requests to this server"),
    Keyword("filter", kw_filter, help="a stream filter (compression; others ignored)"),
    Keyword("email-alert", lambda p, line, ctx: mailers_kw.kw_email_alert(
        p.email_alert, line, ctx), help="mail server state changes (mailers section)"),
    Keyword("external-check", check_kw.kw_external_check,
            help="the program and PATH of 'option external-check'"),
    Keyword("http-send-name-header", kw_send_name_header, BE,
            help="tell the server its name in a request header"),
    Keyword("srvtcpka-cnt", kw_tcpka_setting, help="keepalive probes before a server connection is dropped"),
    Keyword("srvtcpka-idle", kw_tcpka_setting, help="idle time before keepalive probes on server connections"),
    Keyword("srvtcpka-intvl", kw_tcpka_setting, help="time between keepalive probes on server connections"),
    Keyword("stick", stick_kw.kw_stick, BE, defaults=False,
            help="stick-table persistence rule (on, match, store-request, store-response)"),
    Keyword("stick-table", stick_kw.kw_stick_table, defaults=False,
            help="a table of keys stuck to servers"),
    Keyword("log", kw_log, help="where to send logs"),
    Keyword("log-format", kw_log_format, help="custom traffic log format"),
    Keyword("log-tag", kw_log_tag, help="syslog tag"),
    Keyword("maxconn", _int_kw("maxconn", "maxconn"), FE, help="max concurrent connections"),
    Keyword("mode", kw_mode, help="http or tcp"),
    Keyword("monitor-uri", kw_monitor_uri, FE, max_args=1,
            help="URI answered 200 without forwarding"),
    Keyword("load-server-state-from-file", kw_load_server_state),
    Keyword("server-state-file-name", kw_server_state_file_name),
    Keyword("dynamic-cookie-key", kw_dynamic_cookie_key, BE,
            help="secret of dynamic cookies (cookie ... dynamic)"),
    Keyword("monitor", kw_monitor, FE, defaults=False,
            help="monitor fail: the monitor-uri answers 503 while a condition holds"),
    Keyword("source", kw_source, BE, help="local address of the connections to the servers"),
    Keyword("error-log-format", kw_error_log_format,
            help="checked; lb logs connection errors in HAProxy's default form"),
    Keyword("log-format-sd", kw_log_format_sd,
            help="structured data of rfc5424 traffic log lines (a log-format string)"),
    Keyword("unique-id-format", kw_unique_id_format,
            help="log-format of the request's unique id (%ID, unique-id)"),
    Keyword("unique-id-header", kw_unique_id_header,
            help="request header carrying the unique id to the server"),
    Keyword("option", kw_option, help="enable an option"),
    Keyword("redirect", kw_redirect, defaults=False, help="legacy redirect rule"),
    Keyword("redispatch", kw_legacy_redispatch, BE, help="legacy form of 'option redispatch'"),
    Keyword("retries", _int_kw("retries", "retries"), BE, help="connection retries"),
    Keyword("retry-on", kw_retry_on, BE, fatal_side=True, help="which failures are retried"),
    Keyword("server", server_kw.kw_server, BE, defaults=False, fatal_side=True,
            help="declare a server"),
    Keyword("srvtimeout", _legacy_timeout("srvtimeout", "server"), BE,
            help="legacy form of 'timeout server'"),
    Keyword("stats", kw_stats, help="statistics page settings"),
    Keyword("tcp-check", check_kw.kw_tcp_check, BE, read_off_side=True,
            help="tcp-check rules"),
    Keyword("tcp-request", kw_tcp_request, named_defaults_only=True,
            help="layer-4 request rules"),
    Keyword("tcp-response", kw_tcp_response, help="layer-4 response rules (checked, ignored)"),
    Keyword("transparent", kw_transparent, help="old form of option transparent"),
    Keyword("timeout", kw_timeout, help="set a timeout"),
    Keyword("use_backend", kw_use_backend, FE, defaults=False, help="switching rule"),
    # removed keywords (fatal, HAProxy's texts)
    Keyword("appsession", _removed("'appsession' is not supported anymore since HAProxy 1.6.")),
    Keyword("block", _removed("The 'block' directive is not supported anymore since HAProxy "
                              "2.1. Use 'http-request deny' which uses the exact same syntax.")),
    Keyword("monitor-net", _removed("'monitor-net' doesn't exist anymore. Please use "
                                    "'http-request return status 200 if { src "
                                    "10.0.0.0/8 }' instead.")),
    # keywords HAProxy has that lb accepts and ignores (warning)
    *(Keyword(k, _unsupported, help="accepted and ignored") for k in (
        "persist", "option-tcpka")),
]
for _old, _new in _REQ_REPLACEMENTS.items():
    _text = (f"The '{_old}' directive is not supported anymore since HAProxy 2.1. Use "
             f"'{_new}' instead.")
    _ROWS.append(Keyword(_old, _removed(_text)))

PROXY_TABLE = Table("proxy", _ROWS)
