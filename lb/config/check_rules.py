"""The rule list of a section's health check, as HAProxy 2.6.12 builds it.

Owns: which list a `http-check` / `tcp-check` rule joins (a section's own rules, or
`option httpchk` written in it, replace those it inherited from its defaults; an
inherited `option httpchk` request is then dropped too, as HAProxy drops it), the
step number of a rule (every rule counts, comments and variable rules included),
the order HAProxy demands (a `connect` first when there is one; for http-check,
send after connect, expect after send or expect, connect after expect), and the
rules that are not I/O: `connect`'s options, `comment`, `set-var(...)`,
`set-var-fmt(...)` and `unset-var(...)`. Error texts are HAProxy's.

Must not import: lb.config.build, lb.config.proxy_kw, lb.config.check_kw.
"""

from __future__ import annotations

import socket
from typing import NamedTuple

import lb.config.model as m
from lb.config import var_kw
from lb.config.lexer import Line
from lb.config.registry import ParseCtx, ProxyBuilder
from lb.config.server_kw import str2sa
from lb.match import sample as sample_mod
from lb.match import uses

_FIRST_CONNECT = ("first step MUST also be a 'connect', optionally preceded by a 'set-var', "
                  "an 'unset-var' or a 'comment', when there is a 'connect' step in the "
                  "tcp-check ruleset")
# the multiplexers HAProxy 2.6 knows, by the kind of check that may name them
_MUX_PROTOS = {"h2": "http", "h1": "http", "fcgi": "http", "none": "tcp"}
_CONNECT_FLAGS = frozenset(("default", "send-proxy", "via-socks4", "linger", "ssl"))
_CONNECT_USAGE = ("expects 'comment', 'port', 'addr', 'send-proxy', 'ssl', 'sni', 'alpn' or "
                  "'via-socks4', 'linger', 'default' but got '{}' as argument.")


def _not_io(rule: m.CheckStep) -> bool:
    """Comment and variable rules: skipped by HAProxy's order checks."""
    return isinstance(rule, m.CheckComment | m.ActSetVar | m.ActUnsetVar)


def own_rules(p: ProxyBuilder, http: bool) -> list[m.CheckStep]:
    """The section's own rule list of that kind: the first own rule (or, for http,
    `option httpchk`) drops what the section inherited."""
    if http:
        if not p.own_http_check_rules:
            p.own_http_check_rules = True
            p.http_check_rules = []
            p.http_check_send_origin = None
            p.httpchk_send = None  # (an inherited option's request goes with its rules)
        return p.http_check_rules
    if not p.own_tcp_check_rules:
        p.own_tcp_check_rules = True
        p.tcp_check_rules = []
    return p.tcp_check_rules


def _order_error(rules: list[m.CheckStep], rule: m.CheckStep, http: bool) -> str | None:
    """HAProxy's objection to appending ``rule``, None when it fits."""
    if isinstance(rule, m.CheckConnect):
        for r in rules:
            if isinstance(r, m.CheckConnect):
                break
            if not _not_io(r):
                return _FIRST_CONNECT
    if not http or _not_io(rule):
        return None
    last = next((r for r in reversed(rules) if not _not_io(r)), None)
    if last is None:
        return None
    step = len(rules) + 1
    if isinstance(rule, m.HttpCheckSend) and not isinstance(last, m.CheckConnect):
        return f"unable to add http-check send rule at step {step} (missing connect rule)."
    if isinstance(rule, m.HttpCheckExpect) and not isinstance(last, m.HttpCheckSend
                                                              | m.HttpCheckExpect):
        return f"unable to add http-check expect rule at step {step} (missing send rule)."
    if isinstance(rule, m.CheckConnect) and not isinstance(last, m.HttpCheckExpect):
        return f"unable to add http-check connect rule at step {step} (missing expect rule)."
    return None


def add_rule(p: ProxyBuilder, rule: m.CheckStep, line: Line, ctx: ParseCtx, kw: str) -> bool:
    """Append ``rule`` to the section's own `http-check` (``kw``) or `tcp-check` list,
    unless HAProxy's order forbids it (then alert, and answer False)."""
    http = kw == "http-check"
    rules = own_rules(p, http)
    err = _order_error(rules, rule, http)
    if err is not None:
        ctx.alert(line, f"'{kw} {line.words[1]}' : {err}.", "bad-check-rule")
        rule_failed(p, http)
        return False
    rules.append(rule)
    if not http:
        p.tcp_check_rules_quiet = False
    return True


def rule_failed(p: ProxyBuilder, http: bool) -> None:
    """A rule line was refused: HAProxy then frees the whole ruleset, so the rules
    after it start a new one (and are judged against that)."""
    own_rules(p, http).clear()


def port_from_rules(p: ProxyBuilder) -> bool | None:
    """Whether a rule-based check starts with a `connect` naming a port (its own or
    with `addr`), HAProxy's test for a server that has none; None: the section's
    check is not rule-based. An `option httpchk` request not merged into a send
    rule comes first, and a port expression does not count (as in HAProxy)."""
    if p.check_kind == "http":
        rules = p.http_check_rules
        if p.httpchk_send is not None and not any(isinstance(r, m.HttpCheckSend)
                                                  for r in rules):
            return False
    elif p.check_kind == "tcp-check":
        rules = p.tcp_check_rules
    else:
        return None
    first = next((r for r in rules if not _not_io(r)), None)
    return isinstance(first, m.CheckConnect) and bool(first.port or first.addr_port)


# --------------------------------------------------------------------------- rules


def parse_comment(line: Line, ctx: ParseCtx, kw: str) -> m.CheckComment | None:
    """`<kw> comment <text>` (words after the text are ignored, as by HAProxy)."""
    if len(line.words) < 3 or not line.words[2]:
        ctx.alert(line, f"'{kw} comment' : expects a string as argument.", "missing-argument")
        return None
    return m.CheckComment(line.words[2])


def parse_var_rule(line: Line, ctx: ParseCtx, kw: str) -> m.ActSetVar | m.ActUnsetVar | None:
    """`set-var(<var>[,<cond>...]) <expr>`, `set-var-fmt(...) <format>`, `unset-var(<var>)`
    in the check context. HAProxy reads one expression and ignores any word after it
    (an `if`/`unless` is not evaluated)."""
    act = line.words[1]
    head = var_kw.action_name(act)
    args = () if head == "unset-var" else line.words[2:3]
    out = var_kw.parse_action(act, args, "check")
    if isinstance(out, str):
        ctx.alert(line, f"'{kw} {act}' : '{head}' : {out}.", "bad-check-rule")
        return None
    return out


def _port(text: str) -> tuple[int | None, str | None, str | None]:
    """`port <n|expr>` -> (port, expression text, error): digits are a port (1-65535),
    anything else a sample expression of the check context."""
    if text.isdigit():
        port = int(text)
        if not 0 < port < 65536:
            return None, None, ("expects a valid TCP port (from range 1 to 65535) or a "
                                f"sample expression, got {text}.")
        return port, None, None
    try:
        expr = sample_mod.parse_expr(text)
    except Exception as exc:
        return None, None, ("error detected while parsing port expression : "
                            f"{str(exc).rstrip('.')}")
    need = uses.unavailable(expr.fetch_def.name, "check")
    if need is not None:
        return None, None, ("error detected while parsing port expression :  fetch method "
                            f"'{text}' extracts information from '{need}', none of which "
                            "is available here.\n")
    return None, text, None


def _addr(text: str) -> tuple[str | None, int | None, str | None]:
    """`addr <ip[:port]>` -> (host, port, error), read as HAProxy's str2sa_range does
    (names are resolved at once)."""
    if text.startswith(("unix@", "/", "abns@", "fd@", "sockpair@")):
        return text, None, None
    got = str2sa(text, text, family=socket.AF_UNSPEC)
    if isinstance(got, str):  # (HAProxy's address errors end with a line break)
        return None, None, "'addr' : " + got + ("\n" if got.startswith("invalid address")
                                                 else "") + "."
    host, port, _ = got
    return host, port or None, None


class Connect(NamedTuple):
    """What `connect [options]` gave: the rule, or the error text and the index of
    the word it is about; ``unsupported``: a multiplexer lb cannot speak."""

    rule: m.CheckConnect | None
    error: str | None = None
    col: int = 0
    unsupported: str | None = None


def parse_connect(words: tuple[str, ...], start: int, kw: str) -> Connect:
    """`connect [options]`, read as HAProxy reads them (the last of a repeated option
    wins; `port` and a port expression replace each other)."""
    opts: dict[str, object] = {}
    i, n = start, len(words)
    while i < n:
        w = words[i]
        arg = words[i + 1] if i + 1 < n else ""
        if w in _CONNECT_FLAGS:
            opts[w] = True
            i += 1
            continue
        if w == "addr":
            if not arg:
                return Connect(None, "'addr' expects <ipv4|ipv6> as argument.", i)
            host, aport, err = _addr(arg)
            if err is not None:
                return Connect(None, err, i)
            opts["addr"], opts["addr_port"] = host, aport
        elif w == "port":
            if not arg:
                return Connect(None, "'port' expects a port number or a sample expression "
                           "as argument.", i)
            port, expr, err = _port(arg)
            if err is not None:
                return Connect(None, err, i)
            opts["port"], opts["port_expr"] = port, expr
        elif w == "proto":
            if not arg:
                return Connect(None, "'proto' expects a MUX protocol as argument.", i)
            side = _MUX_PROTOS.get(arg)
            if side is None:
                return Connect(None, f"'proto' : unknown MUX protocol '{arg}'.", i)
            if side != ("http" if kw == "http-check" else "tcp"):
                return Connect(None, f"'proto' : invalid MUX protocol '{arg}' for {kw}", i)
            opts["proto"] = arg
        elif w in ("comment", "sni"):
            if not arg:
                return Connect(None, f"'{w}' expects a string as argument.", i)
            opts[w] = arg
        elif w == "alpn":
            if not arg:
                return Connect(None, "'alpn' : missing the comma-delimited ALPN protocol suite", i)
            opts["alpn"] = arg
        else:
            return Connect(None, _CONNECT_USAGE.format(w), i)
        i += 2
    rule = m.CheckConnect(
        port=opts.get("port"), addr=opts.get("addr"),  # type: ignore[arg-type]
        ssl=bool(opts.get("ssl")), send_proxy=bool(opts.get("send-proxy")),
        default=bool(opts.get("default")), linger=bool(opts.get("linger")),
        port_expr=opts.get("port_expr"),  # type: ignore[arg-type]
        addr_port=opts.get("addr_port"), comment=opts.get("comment"),  # type: ignore[arg-type]
        sni=opts.get("sni"), alpn=opts.get("alpn"))  # type: ignore[arg-type]
    proto = opts.get("proto")
    return Connect(rule, unsupported=proto if proto in ("h2", "fcgi") else None)
