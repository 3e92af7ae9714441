"""Health-check keywords: `option httpchk`, `http-check ...`, `option tcp-check`,
`tcp-check ...` (spec §7.3, §7.4).

Owns: parsing these lines into ``CheckSpec`` steps on the proxy builder, the 2.6
compatibility for headers hidden in the `option httpchk` version string, the
recovery of a `\\r\\n` whose backslashes were lost (``rn``), and the check of the
WebSocket key carried by a check request.

Must not import: lb.config.build, lb.config.proxy_kw.
"""

from __future__ import annotations

import base64
import binascii
import re

import lb.config.model as m
from lb.config import check_presets, var_kw
from lb.config.check_expect import format_error, hex_error, parse_expect
from lb.config.check_rules import (
    add_rule,
    own_rules,
    parse_comment,
    parse_connect,
    parse_var_rule,
    rule_failed,
)
from lb.config.lexer import Line
from lb.config.registry import ParseCtx, ProxyBuilder, origin

_VERSION_RE = re.compile(r"HTTP/\d\.\d")
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MANGLED_RE = re.compile(rf"rn(?={_TOKEN}:)")


def valid_ws_key(key: str) -> bool:
    """A Sec-WebSocket-Key must be the base64 form of 16 bytes (24 characters)."""
    if len(key) != 24:
        return False
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def _split_headers(block: str) -> tuple[list[tuple[str, str]], bytes]:
    """Parse ``Name: value\\r\\n...[\\r\\n body]`` → (headers, body)."""
    headers: list[tuple[str, str]] = []
    head, sep, body = block.partition("\r\n\r\n")
    for raw in head.split("\r\n"):
        if not raw:
            continue
        name, _, value = raw.partition(":")
        headers.append((name.strip(), value.strip()))
    return headers, body.encode("utf-8", "surrogateescape") if sep else b""


def kw_option_httpchk(p: ProxyBuilder, line: Line, ctx: ParseCtx, args: list[str]) -> None:
    meth, uri, ver = "OPTIONS", "/", "HTTP/1.0"
    headers: list[tuple[str, str]] = []
    body = b""
    if len(args) == 1:
        uri = args[0]
    elif len(args) == 2:
        meth, uri = args
    elif len(args) >= 3:
        meth, uri, ver = args[0], args[1], args[2]
        if len(args) > 3:
            ctx.alert(line, f"'option httpchk' cannot handle unexpected argument '{args[3]}'.",
                      "too-many-args", col=line.col(5))
            return
    if not _VERSION_RE.fullmatch(ver) and ver.startswith("HTTP/"):
        m_ver = _VERSION_RE.match(ver)
        rest = ver[m_ver.end():] if m_ver else ""
        if m_ver and re.match(rf"rn{_TOKEN}:", rest):
            joined = [mm.group(0) for mm in re.finditer(rf"rn({_TOKEN}):", ver)]
            names = ", ".join(f"'{j[2:-1]}'" for j in joined)
            ctx.legacy(line, "'option httpchk' : the version string contains 'rn' right "
                       f"before {names}; it looks like '\\r\\n' with its backslashes lost "
                       "(e.g. by a blog or wiki); each such 'rn' is read as a line break.",
                       "mangled-crlf", col=line.col(len(line.words) - 1))
            ver = _MANGLED_RE.sub("\r\n", ver)
    hidden = "\r\n" in ver and ver.startswith("HTTP/")
    if hidden:
        ver, _, block = ver.partition("\r\n")
        headers, body = _split_headers(block)
    kept = _send_headers(headers)  # (checked first: an error comes without the warning)
    if isinstance(kept, str):
        ctx.alert(line, f"'option httpchk' : {kept}.", "bad-check-rule")
        return
    if hidden:
        ctx.legacy(line, "'option httpchk' : hiding headers or body at the end of the "
                   "version string is deprecated. Please, consider to use 'http-check "
                   "send' directive instead.", "httpchk-hidden-headers", style="tight",
                   col=line.col(len(line.words) - 1))
    own_rules(p, http=True)  # (the option starts this section's own http-check rules)
    p.check_kind = "http"
    p.check_origin = origin(line)
    p.httpchk_send = m.HttpCheckSend(method=meth, uri=uri, version=ver, headers=kept,
                                     body=body)
    _check_ws_key(p, line, ctx, headers)


def _check_ws_key(p: ProxyBuilder, line: Line, ctx: ParseCtx,
                  headers: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> None:
    lower = {n.lower(): v for n, v in headers}
    if lower.get("upgrade", "").lower() != "websocket":
        return
    key = lower.get("sec-websocket-key")
    if key is not None and not valid_ws_key(key):
        ctx.legacy(line, f"check request of {p.label()} carries an invalid Sec-WebSocket-Key "
                   f"'{key}' (it must be the base64 form of 16 bytes); a fresh key will be "
                   "generated for each check and the 101 response's Sec-WebSocket-Accept "
                   "verified against it.", "ws-check-key")


def kw_option_external_check(p: ProxyBuilder, line: Line, ctx: ParseCtx,
                             args: list[str]) -> None:
    p.check_kind = "external"
    p.check_origin = origin(line)


def kw_external_check(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """`external-check command <program>` / `external-check path <PATH>`."""
    words = line.words
    what = words[1] if len(words) > 1 else ""
    if not what:  # (HAProxy's message ends with an empty line)
        ctx.alert(line, "missing argument after 'external-check'.", "missing-argument",
                  more=("",))
    elif what not in ("command", "path"):
        ctx.alert(line, f"'external-check' only supports 'command' and 'path'. but got "
                  f"'{what}'.", "bad-argument", col=line.col(1))
    elif len(words) < 3 or not words[2]:
        ctx.alert(line, f"missing argument after '{what}'.", "missing-argument")
    elif len(words) > 3:
        ctx.alert(line, f"'external-check' cannot handle unexpected argument '{words[3]}'.",
                  "too-many-args", col=line.col(3))
    else:
        p.external_check[what] = words[2]


def kw_option_tcp_check(p: ProxyBuilder, line: Line, ctx: ParseCtx, args: list[str]) -> None:
    if p.check_kind != "tcp-check":  # (else the rules in use, maybe inherited, stay)
        own_rules(p, http=False)
    p.check_kind = "tcp-check"
    p.check_origin = origin(line)


def kw_option_protocol(p: ProxyBuilder, line: Line, ctx: ParseCtx, args: list[str]) -> None:
    """`option redis-check|ssl-hello-chk|smtpchk|pgsql-check|mysql-check|ldap-check`:
    the check HAProxy runs for that protocol (lb.config.check_presets). The section's
    `tcp-check` rules stay, for an `option tcp-check` that may come later."""
    name = line.words[1]
    err = check_presets.argument_error(name, args)
    if err is not None:
        ctx.alert(line, err, "too-many-args", col=line.col(2))
        return
    p.check_kind = "protocol"
    p.check_protocol = (name, tuple(args))
    p.tcp_check_rules_quiet = True
    p.check_origin = origin(line)


def _connect(line: Line, ctx: ParseCtx, kw: str) -> m.CheckConnect | None:
    got = parse_connect(line.words, 2, kw)
    if got.rule is None:
        ctx.alert(line, f"'{kw} connect' : {got.error}.", "bad-check-rule",
                  col=line.col(got.col) if got.col else None)
        return None
    if got.unsupported:
        ctx.warn(line, f"'{kw} connect' : 'proto {got.unsupported}' is not supported by lb; "
                 "the check speaks HTTP/1.1.", "unsupported-option")
    return got.rule


def _expect(words: tuple[str, ...], start: int, line: Line, ctx: ParseCtx, kw: str,
            http: bool) -> m.HttpCheckExpect | m.TcpCheckExpect | None:
    rule = parse_expect(words, start, http)
    if isinstance(rule, str):
        ctx.alert(line, f"'{kw} expect' : {rule}.", "bad-check-rule")
        return None
    return rule


def kw_http_check(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    words = line.words
    sub = words[1] if len(words) > 1 else ""
    rule: m.CheckStep | None
    if sub in ("disable-on-404", "send-state") and len(words) > 2:
        ctx.alert(line, f"'http-check' cannot handle unexpected argument '{words[2]}'.",
                  "too-many-args", col=line.col(2))
        return
    if sub == "disable-on-404":
        p.disable_on_404 = True
        return
    if sub == "send-state":
        p.send_state = True
        return
    if sub == "comment":
        rule = parse_comment(line, ctx, "http-check")
    elif sub == "connect":
        rule = _connect(line, ctx, "http-check")
    elif sub == "expect":
        rule = _expect(words, 2, line, ctx, "http-check", True)
    elif sub == "send":
        rule = _http_send(words, 2, line, ctx)
    elif var_kw.is_var_action(sub):
        rule = parse_var_rule(line, ctx, "http-check")
    else:
        ctx.alert(line, "'http-check' only supports 'disable-on-404', 'send-state', 'comment', "
                  "'connect', 'send', 'expect', 'set-var-fmt(*)', 'set-var(*)', "
                  f"'unset-var(*)'. but got '{sub}'", "bad-check-rule", col=line.col(1))
        rule = None
    if rule is None:
        rule_failed(p, http=True)
        return
    if not add_rule(p, rule, line, ctx, "http-check"):
        return
    if isinstance(rule, m.HttpCheckSend):
        if p.http_check_send_origin is None:
            p.http_check_send_origin = origin(line)
        _check_ws_key(p, line, ctx, rule.headers)


def _send_headers(pairs: list[tuple[str, str]]) -> tuple[tuple[str, str], ...] | str:
    """The `hdr` pairs of a check request as HAProxy keeps them: one `Host` at most,
    `Content-Length` and `Transfer-Encoding` dropped (the length is the check's own),
    each value a log-format string. An error text instead."""
    kept: list[tuple[str, str]] = []
    host: str | None = None
    for name, value in pairs:
        low = name.lower()
        if low == "host":
            if host is not None:
                return f"'{name}' header already defined (previous value is '{host}')"
            host = value
        elif low in ("content-length", "transfer-encoding"):
            continue
        kept.append((name, value))
    for _, value in kept:
        err = format_error(value)
        if err is not None:
            return err
    return tuple(kept)


def _lf_error(text: str | None, is_lf: bool) -> str | None:
    """HAProxy's text for an `*-lf` value that is not a valid check log-format."""
    err = format_error(text) if is_lf and text is not None else None
    return None if err is None else f"'{text}' invalid log-format string ({err}).\n"


def _http_send(words: tuple[str, ...], i: int, line: Line,
               ctx: ParseCtx) -> m.HttpCheckSend | None:
    meth = uri = ver = body = None
    uri_lf = body_lf = False
    pairs: list[tuple[str, str]] = []
    n = len(words)
    while i < n:
        w = words[i]
        if w == "hdr":
            if i + 2 >= n or not words[i + 1] or not words[i + 2]:
                ctx.alert(line, "'http-check send' : 'hdr' expects <name> and <value> as "
                          "arguments.", "bad-check-rule", col=line.col(i))
                return None
            pairs.append((words[i + 1], words[i + 2]))
            i += 3
            continue
        if w in ("meth", "uri", "uri-lf", "ver", "body", "body-lf", "comment"):
            if i + 1 >= n or not words[i + 1]:
                ctx.alert(line, f"'http-check send' : '{w}' expects a string as argument..",
                          "bad-check-rule", col=line.col(i))
                return None
            v = words[i + 1]
            if w == "meth":
                meth = v
            elif w in ("uri", "uri-lf"):
                uri, uri_lf = v, w == "uri-lf"
            elif w == "ver":
                ver = v
            elif w in ("body", "body-lf"):
                body, body_lf = v, w == "body-lf"
            i += 2
            continue
        ctx.alert(line, "'http-check send' : expects 'comment', 'meth', 'uri', 'uri-lf', "
                  f"'ver', 'hdr', 'body' or 'body-lf' but got '{w}' as argument..",
                  "bad-check-rule", col=line.col(i))
        return None
    # HAProxy's order: the URI's format, each header's, the body's
    headers = _send_headers(pairs)
    err = (_lf_error(uri, uri_lf) or (headers if isinstance(headers, str) else None)
           or _lf_error(body, body_lf))
    if err is not None:
        ctx.alert(line, f"'http-check send' : {err}.", "bad-check-rule")
        return None
    assert not isinstance(headers, str)
    # empty fields mean "not given": merged with option httpchk at build time
    return m.HttpCheckSend(method=meth or "", uri=uri or "", version=ver or "",
                           headers=headers,
                           body=(body or "").encode("utf-8", "surrogateescape"),
                           uri_lf=uri_lf, body_lf=body_lf)


def _tcp_send(line: Line, ctx: ParseCtx, sub: str) -> m.TcpCheckSend | None:
    """`tcp-check send|send-lf|send-binary|send-binary-lf <data> [comment <text>]`."""
    words = line.words
    if len(words) < 3:
        what = "'binary'" if "binary" in sub else "'string'"
        ctx.alert(line, f"'tcp-check {sub}' : {what} expects a send as argument.",
                  "bad-check-rule")
        return None
    data_s = words[2]
    comment = None
    i = 3
    while i < len(words):  # `comment <text>`, the one option (the last one wins)
        if words[i] != "comment":
            ctx.alert(line, f"'tcp-check {sub}' : expects 'comment' but got "
                      f"'{words[i]}' as argument..", "bad-check-rule", col=line.col(i))
            return None
        if i + 1 >= len(words) or not words[i + 1]:
            ctx.alert(line, f"'tcp-check {sub}' : 'comment' expects a string as "
                      "argument..", "bad-check-rule", col=line.col(i))
            return None
        comment = words[i + 1]
        i += 2
    if sub.endswith("-lf"):
        err = format_error(data_s)
        if err is not None:
            ctx.alert(line, f"'tcp-check {sub}' : '{data_s}' invalid log-format string "
                      f"({err}).\n.", "bad-check-rule", col=line.col(2))
            return None
        return m.TcpCheckSend(data=b"", comment=comment, fmt=data_s,
                              binary=sub == "send-binary-lf")
    if sub == "send-binary":
        why = hex_error(data_s)
        if why is not None:
            ctx.alert(line, f"'tcp-check {sub}' : '{data_s}' invalid binary string "
                      f"({why}).\n.", "bad-check-rule", col=line.col(2))
            return None
        return m.TcpCheckSend(data=bytes.fromhex(data_s), comment=comment)
    return m.TcpCheckSend(data=data_s.encode("utf-8", "surrogateescape"), comment=comment)


def kw_tcp_check(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    words = line.words
    sub = words[1] if len(words) > 1 else ""
    rule: m.CheckStep | None
    if sub == "connect":
        rule = _connect(line, ctx, "tcp-check")
    elif sub in ("send", "send-lf", "send-binary", "send-binary-lf"):
        rule = _tcp_send(line, ctx, sub)
    elif sub == "expect":
        rule = _expect(words, 2, line, ctx, "tcp-check", False)
    elif sub == "comment":
        rule = parse_comment(line, ctx, "tcp-check")
    elif var_kw.is_var_action(sub):
        rule = parse_var_rule(line, ctx, "tcp-check")
    else:
        ctx.alert(line, "'tcp-check' only supports 'comment', 'connect', 'send', "
                  "'send-binary', 'expect', 'set-var-fmt(*)', 'set-var(*)', 'unset-var(*)'. "
                  f"but got '{sub}'", "bad-check-rule", col=line.col(1))
        rule = None
    if rule is None:
        rule_failed(p, http=False)
    else:
        add_rule(p, rule, line, ctx, "tcp-check")


def build_check(p: ProxyBuilder, log_health_checks: bool) -> m.CheckSpec:
    """Assemble the CheckSpec of a backend from its parsed pieces."""
    if p.check_kind == "http":
        return m.CheckSpec(kind="http", steps=_http_steps(p), disable_on_404=p.disable_on_404,
                           send_state=p.send_state, log_health_checks=log_health_checks,
                           origin=p.check_origin)
    if p.check_kind == "tcp-check":
        return m.CheckSpec(kind="tcp-check", steps=tuple(p.tcp_check_rules),
                           log_health_checks=log_health_checks, origin=p.check_origin)
    if p.check_kind == "protocol" and p.check_protocol is not None:
        name, args = p.check_protocol
        return m.CheckSpec(kind="tcp-check", steps=check_presets.rules_of(name, args),
                           log_health_checks=log_health_checks, origin=p.check_origin,
                           protocol=name)
    if p.check_kind == "external":
        return m.CheckSpec(kind="external", log_health_checks=log_health_checks,
                           origin=p.check_origin,
                           external_command=p.external_check.get("command", ""),
                           external_path=p.external_check.get("path", ""))
    return m.CheckSpec(kind="tcp", log_health_checks=log_health_checks)


def _http_steps(p: ProxyBuilder) -> tuple[m.CheckStep, ...]:
    """The http-check rules with `option httpchk`'s request merged in, as HAProxy
    merges them: into the first `http-check send` (whose own fields and headers
    win), else placed first, after a leading `connect`. With no option request
    (it went with the inherited rules) there is nothing to merge, and without a
    send rule the check sends nothing, as in HAProxy."""
    base = p.httpchk_send
    steps: list[m.CheckStep] = []
    merged = False
    for rule in p.http_check_rules:
        if isinstance(rule, m.HttpCheckSend) and not merged:
            b = base or m.HttpCheckSend()
            rule = m.HttpCheckSend(
                method=rule.method or b.method, uri=rule.uri or b.uri,
                version=rule.version or b.version,
                headers=rule.headers or b.headers, body=rule.body or b.body,
                uri_lf=rule.uri_lf if rule.uri else b.uri_lf,
                body_lf=rule.body_lf if rule.body else b.body_lf)
            merged = True
        elif isinstance(rule, m.HttpCheckSend):
            rule = m.HttpCheckSend(method=rule.method or "OPTIONS", uri=rule.uri or "/",
                                   version=rule.version or "HTTP/1.0",
                                   headers=rule.headers, body=rule.body,
                                   uri_lf=rule.uri_lf, body_lf=rule.body_lf)
        steps.append(rule)
    if not merged and base is not None:
        first = next((i for i, r in enumerate(steps) if not isinstance(
            r, m.CheckComment | m.ActSetVar | m.ActUnsetVar)), None)
        pos = first + 1 if first is not None and isinstance(steps[first], m.CheckConnect) \
            else 0
        steps.insert(pos, base)
    return tuple(steps)
