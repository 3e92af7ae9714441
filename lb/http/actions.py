"""http-request / http-response actions: the ACTIONS table and compiled rulesets.

Owns: turning the model's ``Act*`` dataclasses into small executors (compiled once when
the runtime is built: formats, regexes, header names), running a ruleset in order with
the final-action semantics of spec §4.4, and the verdicts the transaction acts on.

An executor is ``fn(ctx) -> Verdict | None``; ``ctx`` is the transaction (it satisfies
``lb.match.sample.SampleCtx``; request side edits ``req_headers``/``method``/``url``,
response side edits ``res_headers``). None means "continue with the next rule".

Must not import: asyncio, lb.proxy, lb.state (layer L1).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from typing import Any

from lb.config import model as m
from lb.http import h1, responses, uri_normalize
from lb.match import acl, patref, sample, variables

# --------------------------------------------------------------------------- formats


class _ConstFormat:
    __slots__ = ("constant",)

    def __init__(self, text: str) -> None:
        self.constant = text.encode("latin-1", "replace")

    def render(self, ctx: Any) -> bytes:
        return self.constant


#: %var values available to set-header / lf-string formats at request time.
FORMAT_VARS: dict[str, Callable[[Any], str | bytes | int]] = {
    "H": lambda ctx: "lb",
    "HM": lambda ctx: ctx.method,
    "HU": lambda ctx: ctx.url,
    "HV": lambda ctx: b"HTTP/" + ctx.version,
    "ST": lambda ctx: ctx.status,
    "b": lambda ctx: ctx.backend_name or "-",
    "ci": lambda ctx: ctx.src,
    "cp": lambda ctx: ctx.src_port,
    "f": lambda ctx: ctx.frontend_name,
    "ft": lambda ctx: ctx.frontend_name + "~" if getattr(ctx, "frontend_tls", False)
    else ctx.frontend_name,
    "fi": lambda ctx: ctx.dst,
    "fp": lambda ctx: ctx.dst_port,
    "pid": lambda ctx: ctx.pid,
    "s": lambda ctx: ctx.server_name or "<NOSRV>",
    # for unique-id-format's usual `%ci:%cp_%fi:%fp_%Ts_%rt:%pid`
    "Ts": lambda ctx: int(getattr(ctx, "accept_ts", 0)),
    "rt": lambda ctx: getattr(ctx, "req_counter", 0),
    "ID": lambda ctx: getattr(ctx, "unique_id", None) or "",
}


def compile_format(text: str) -> Any:
    """A Format (``.render(ctx) -> bytes``, ``.constant``) from lb.match.fmt, with the
    FORMAT_VARS providers; a constant if the format engine is unavailable."""
    try:
        from lb.match import fmt as _fmt
    except ImportError:
        return _ConstFormat(text)
    return _fmt.compile_format(text, FORMAT_VARS)


# --------------------------------------------------------------------------- verdicts


class Verdict:
    """What a final action decided.

    kind: "allow" | "deny" | "tarpit" | "return" | "redirect" | "service" | "reject" |
    "badreq" (a rule found the request invalid: HAProxy's 400 of its request rules) |
    "switch" (`switch-mode http`: the rules end, a TCP connection becomes HTTP) |
    "resolve" (`do-resolve`: the rules wait for ``resolve``, then go on at rule
    ``pos``; the transaction asks and hands the answer to ``resolved``).
    ``response`` is the complete raw response (or None when the transaction must build
    the built-in error page for ``status`` itself, which depends on keep-alive state).
    """

    __slots__ = ("kind", "status", "response", "service", "silent", "resolve", "pos")

    def __init__(self, kind: str, status: int = 0, response: bytes | None = None,
                 service: str | None = None, silent: bool = False,
                 resolve: Resolve | None = None) -> None:
        self.kind = kind
        self.status = status
        self.response = response
        self.service = service
        self.silent = silent
        self.resolve = resolve
        self.pos = 0


class Resolve:
    """What a `do-resolve` rule asks: ``name`` of the `resolvers` section
    ``section``, A first when ``ipv4``; the address goes into ``var`` (None: a name
    HAProxy never sets, the query is still sent)."""

    __slots__ = ("section", "name", "ipv4", "var")

    def __init__(self, section: str, name: str, ipv4: bool, var: str | None) -> None:
        self.section = section
        self.name = name
        self.ipv4 = ipv4
        self.var = var


def resolved(ctx: Any, v: Verdict, address: str | None) -> None:
    """The answer to a "resolve" verdict: the variable is set only with an address."""
    q = v.resolve
    if address is not None and q is not None and q.var is not None:
        variables.assign(ctx, q.var, ipaddress.ip_address(address))


ALLOW = Verdict("allow")
SWITCH = Verdict("switch")  # `switch-mode http`
Executor = Callable[[Any], Verdict | None]


def _hdr_pairs(headers: Sequence[m.HeaderFmt]) -> list[tuple[bytes, Any]]:
    return [(h.name.lower().encode("latin-1"), compile_format(h.value_fmt)) for h in headers]


def _payload_response(status: int, content_type: str | None, body: bytes | None,
                      body_fmt: Any, hdrs: list[tuple[bytes, Any]]
                      ) -> Callable[[Any], bytes]:
    ctype = content_type.encode("latin-1") if content_type else None

    def build(ctx: Any) -> bytes:
        payload = body_fmt.render(ctx) if body_fmt is not None else (body or b"")
        headers: list[tuple[bytes, bytes]] = []
        for name, fmt in hdrs:
            v = fmt.render(ctx)
            if not h1.has_bad_value(v):
                headers.append((name, v))
        return responses.http_reply(status, headers, ctype, payload)
    return build


# --------------------------------------------------------------------------- builders


def _allow(a: m.ActAllow) -> Executor:
    return lambda ctx: ALLOW


def _deny(a: m.ActDeny) -> Executor:
    kind = "tarpit" if a.tarpit else "deny"
    status = a.status if a.status else (500 if a.tarpit else 403)
    if a.errorfile is not None:
        raw = a.errorfile
        v = Verdict(kind, status, raw)
        return lambda ctx: v
    if a.body is not None or a.body_fmt is not None or a.headers or a.content_type:
        build = _payload_response(status, a.content_type, a.body,
                                  compile_format(a.body_fmt) if a.body_fmt else None,
                                  _hdr_pairs(a.headers))
        return lambda ctx: Verdict(kind, status, build(ctx))
    v = Verdict(kind, status, None)
    return lambda ctx: v


def _return(a: m.ActReturn) -> Executor:
    if a.proxy_page:  # the transaction picks the proxy's page for the status
        pv = Verdict("return", a.status, None)
        return lambda ctx: pv
    if a.errorfile is not None:
        v = Verdict("return", a.status, a.errorfile)
        return lambda ctx: v
    build = _payload_response(a.status, a.content_type, a.body,
                              compile_format(a.body_fmt) if a.body_fmt else None,
                              _hdr_pairs(a.headers))
    return lambda ctx: Verdict("return", a.status, build(ctx))


def page_builder(r: m.FormatReply) -> Callable[[Any], bytes]:
    """An `http-error` page built per request (log-format body or header values)."""
    return _payload_response(r.status, r.content_type, r.body,
                             compile_format(r.body_fmt) if r.body_fmt else None,
                             _hdr_pairs(r.headers))


def compile_pages(pages: Any) -> Any:
    """A proxy's status -> page map with each FormatReply turned into its builder
    (``fn(ctx) -> bytes``); the same map when every page is plain bytes."""
    if all(type(v) is bytes for v in pages.values()):
        return pages
    return {k: v if type(v) is bytes else page_builder(v) for k, v in pages.items()}


# HAProxy 2.6.12 marks only temporary redirects `cache-control: no-cache`
_NOCACHE_REDIRECTS = frozenset((302, 303, 307))


def _redirect(a: m.ActRedirect) -> Executor:
    target = compile_format(a.target_fmt)
    code = a.code
    extra: list[tuple[bytes, bytes]] = []
    if a.set_cookie:
        extra.append((b"set-cookie", a.set_cookie.encode("latin-1") + b"; path=/"))
    if a.clear_cookie:
        name = a.clear_cookie.rstrip("=").encode("latin-1")
        extra.append((b"set-cookie", name + b"=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/"))

    def run(ctx: Any) -> Verdict | None:
        t = target.render(ctx)
        if not t and a.ignore_empty:
            return None
        url = ctx.url
        if a.drop_query:
            url = url.split(b"?", 1)[0]
        if a.kind == "location":
            loc = t
        elif a.kind == "prefix":
            loc = url if t == b"/" else t + url
        else:  # scheme
            host = h1.get(ctx.req_headers, b"host") or b""
            loc = t + b"://" + host + (url or b"/")
        if a.append_slash and not loc.endswith(b"/") and b"?" not in loc:
            loc += b"/"
        if h1.has_bad_value(loc):
            return Verdict("deny", 500, None)
        headers = [(b"location", loc), *extra]
        if code in _NOCACHE_REDIRECTS:
            headers.append((b"cache-control", b"no-cache"))
        return Verdict("redirect", code, responses.local_response(code, headers))
    return run


def _set_header(a: m.ActSetHeader) -> Executor:
    name = a.name.lower().encode("latin-1")
    fmt = compile_format(a.value_fmt)
    const = fmt.constant

    def run(ctx: Any) -> None:
        hdrs = ctx.res_headers if ctx.is_response else ctx.req_headers
        v = const if const is not None else fmt.render(ctx)
        if h1.has_bad_value(v):
            return None
        if not a.add:
            hdrs[:] = [p for p in hdrs if p[0] != name]
        hdrs.append((name, v))
        ctx.memo.clear()
        return None
    return run


def _del_header(a: m.ActDelHeader) -> Executor:
    name = a.name.lower().encode("latin-1")
    meth = a.method
    if meth == "reg":
        rx = re.compile(name)
        test: Callable[[bytes], bool] = lambda n: rx.search(n) is not None  # noqa: E731
    elif meth == "beg":
        test = lambda n: n.startswith(name)  # noqa: E731
    elif meth == "end":
        test = lambda n: n.endswith(name)  # noqa: E731
    elif meth == "sub":
        test = lambda n: name in n  # noqa: E731
    else:
        test = lambda n: n == name  # noqa: E731

    def run(ctx: Any) -> None:
        hdrs = ctx.res_headers if ctx.is_response else ctx.req_headers
        hdrs[:] = [p for p in hdrs if not test(p[0])]
        ctx.memo.clear()
        return None
    return run


def exp_replace(template: bytes, mt: re.Match[bytes]) -> bytes | None:
    """HAProxy's ``exp_replace`` (src/regex.c): ``\\N`` is the text of group N (0: the
    whole match; nothing for a group that took no part or does not exist), ``\\xHH``
    one byte, a backslash before anything else that character. A template that ends
    in a lone backslash is an error: None."""
    if b"\\" not in template:
        return template
    out = bytearray()
    i = 0
    n = len(template)
    while i < n:
        c = template[i]
        i += 1
        if c != 0x5C:
            out.append(c)
            continue
        if i >= n:
            return None
        c = template[i]
        i += 1
        if 0x30 <= c <= 0x39:
            try:
                group = mt.group(c - 0x30)
            except IndexError:
                group = None
            if group:
                out += group
        elif c == 0x78:  # \xHH, with HAProxy's arithmetic for non-hex digits
            if i + 1 >= n:
                return None
            byte = 0
            for d in template[i:i + 2]:
                v = (d - 0x20 if 0x61 <= d <= 0x7A else d) - 0x30 & 0xFF
                if v > 9:
                    v = v - 7 & 0xFF
                byte = (byte << 4) + v
            out.append(byte & 0xFF)
            i += 2
        else:
            out.append(c)
    return bytes(out)


def _replace_header(a: m.ActReplaceHeader) -> Executor:
    """replace-header / replace-value, as HAProxy 2.6.12 applies them: the regex is
    searched for (not anchored), and a value where it is found is replaced whole by
    the rendered format, its ``\\N`` references expanded. replace-value works on each
    comma-separated value, trimmed; the values it replaces lose the blanks around
    them, the others keep theirs."""
    name = a.name.lower().encode("latin-1")
    rx = re.compile(a.regex.encode("latin-1"))
    fmt = compile_format(a.replacement_fmt)

    def replaced(value: bytes, ctx: Any) -> bytes | None:
        mt = rx.search(value)
        if mt is None:
            return None
        return exp_replace(fmt.render(ctx), mt)

    def each_value(value: bytes, ctx: Any) -> bytes:
        parts = value.split(b",")
        for i, part in enumerate(parts):
            new = replaced(part.strip(b" \t"), ctx)
            if new is not None:
                parts[i] = new
        return b",".join(parts)

    def run(ctx: Any) -> None:
        hdrs = ctx.res_headers if ctx.is_response else ctx.req_headers
        out = []
        for n, v in hdrs:
            if n == name:
                if a.each_value:
                    v = each_value(v, ctx)
                else:
                    new = replaced(v, ctx)
                    if new is not None:
                        v = new
                if h1.has_bad_value(v):
                    continue
            out.append((n, v))
        hdrs[:] = out
        ctx.memo.clear()
        return None
    return run


def _authority_end(url: bytes) -> int:
    """Where the path starts in a request target: after ``scheme://authority`` in
    absolute form, 0 otherwise. HAProxy's path actions keep that prefix."""
    if url.startswith(b"/"):
        return 0
    i = url.find(b"://")
    if i <= 0:
        return 0
    end = len(url)
    for sep in (b"/", b"?"):
        j = url.find(sep, i + 3)
        if 0 <= j < end:
            end = j
    return end


def _keep_request_line(ctx: Any) -> None:
    """Before the first rewrite of the method or the target, keep them as received:
    the log shows the request line the client sent (`%r`, `%HM`, `%HU`...), as
    HAProxy's does. (A context without ``orig_url``, a unit test's, keeps nothing.)"""
    if getattr(ctx, "orig_url", False) is None:
        ctx.orig_method = ctx.method
        ctx.orig_url = ctx.url


def _set_path(a: m.ActSetPath) -> Executor:
    fmt = compile_format(a.value_fmt)

    def run(ctx: Any) -> None:
        v = fmt.render(ctx)
        if h1.has_bad_value(v) or v.find(b" ") >= 0:
            return None
        _keep_request_line(ctx)
        url = ctx.url
        if a.what == "method":
            ctx.method = v
        elif a.what == "uri":
            ctx.url = v
        else:
            cut = _authority_end(url)
            path, q, query = url[cut:].partition(b"?")
            if a.what == "path":
                ctx.url = url[:cut] + v + (b"?" + query if q else b"")
            elif a.what == "pathq":
                ctx.url = url[:cut] + v
            else:  # query
                ctx.url = url[:cut] + path + (b"?" + v if v else b"")
        ctx.memo.clear()
        return None
    return run


def _replace_uri(a: m.ActReplaceUri) -> Executor:
    """replace-path (the path, without the query), replace-pathq (path and query)
    and replace-uri (the whole target), as HAProxy 2.6.12 does them: the regex is
    searched for, and where found the part is replaced whole by the rendered format
    (``exp_replace``). In absolute form, scheme and authority stay. A result that is
    empty or holds a blank or a control character leaves the request alone (HAProxy
    sends a blank on, breaking the request line)."""
    rx = re.compile(a.regex.encode("latin-1"))
    fmt = compile_format(a.replacement_fmt)
    what = a.what

    def run(ctx: Any) -> None:
        url = ctx.url
        cut = 0 if what == "uri" else _authority_end(url)
        if what == "path":
            part, q, query = url[cut:].partition(b"?")
        else:
            part, q, query = url[cut:], b"", b""
        mt = rx.search(part)
        if mt is None:
            return None
        new = exp_replace(fmt.render(ctx), mt)
        if not new or h1.has_bad_value(new) or new.find(b" ") >= 0:
            return None
        _keep_request_line(ctx)
        ctx.url = url[:cut] + new + (b"?" + query if q else b"")
        ctx.memo.clear()
        return None
    return run


class _EarlyHints:
    """One 103 Early Hints response: the headers of consecutive `early-hint` rules,
    the first with or without a condition, the others without (HAProxy ends the
    response before a rule that is not one, or has a condition). When the first
    rule's condition fails, the others still make a 103. Sent to HTTP/1.1 clients
    only, as HAProxy does; a value that could not be a header's is left out."""

    __slots__ = ("first_cond", "headers")

    def __init__(self, first_cond: Any) -> None:
        self.first_cond = first_cond
        self.headers: list[tuple[bytes, Any]] = []

    def add(self, a: m.ActEarlyHint) -> None:
        self.headers.append((a.name.lower().encode("latin-1"), compile_format(a.value_fmt)))

    def __call__(self, ctx: Any) -> None:
        if ctx.version != b"1.1":
            return None
        cond = self.first_cond
        start = 0 if cond is None or cond.evaluate(ctx) else 1
        if start >= len(self.headers):
            return None
        lines = [b"HTTP/1.1 103 Early Hints"]
        for name, fmt in self.headers[start:]:
            v = fmt.render(ctx)
            if not h1.has_bad_value(v):
                lines.append(name + b": " + v)
        raw = b"\r\n".join(lines) + b"\r\n\r\n"
        ctx.send_interim(raw, responses.logged_size(raw, 103))  # (%B as HAProxy's)
        return None


BAD_REQUEST = Verdict("badreq", 400)


def _normalize_uri(a: m.ActNormalizeUri) -> Executor:
    """The normalizer on the target's path (absolute form: after the authority; no
    path there, or `*`: nothing to do). A strict normalizer's invalid sequence is a
    bad request: 400, counted and logged as HAProxy 2.6.12 does (``BAD_REQUEST``)."""
    name, option = a.normalizer, a.option

    def run(ctx: Any) -> Verdict | None:
        url = ctx.url
        cut = _authority_end(url)
        if url[cut:cut + 1] != b"/":
            return None
        new = uri_normalize.normalize(name, option, url[cut:])
        if new is None:
            return BAD_REQUEST
        if new != url[cut:]:
            _keep_request_line(ctx)
            ctx.url = url[:cut] + new
            ctx.memo.clear()
        return None
    return run


def _do_resolve(a: m.ActDoResolve) -> Executor:
    """The name the expression gives, as text (no sample: the rule does nothing), for
    the transaction to resolve (a "resolve" verdict)."""
    expr = sample.parse_expr(a.expr)
    var = a.var if variables.valid(a.var) else None
    section, ipv4 = a.resolvers, a.ipv4

    def run(ctx: Any) -> Verdict | None:
        v = expr.raw(ctx)
        if v is None:
            return None
        if isinstance(v, bytes):
            name = v.decode("latin-1")
        elif isinstance(v, bool):
            name = "1" if v else "0"
        else:
            name = str(v)
        return Verdict("resolve", resolve=Resolve(section, name, ipv4, var))
    return run


def _set_status(a: m.ActSetStatus) -> Executor:
    """The status of the response in hand, and its reason: the one given, else
    HAProxy's default for the code. A 1xx is not a final status: the rule leaves the
    response alone (HAProxy 2.6.12 sends the client nothing at all then)."""
    reason = (a.reason.encode("latin-1") if a.reason is not None
              else responses.set_status_reason(a.status))

    def run(ctx: Any) -> None:
        if ctx.is_response and a.status >= 200:
            ctx.status = a.status
            ctx.res_reason = reason
        return None
    return run


def _set_timeout(a: m.ActSetTimeout) -> Executor:
    def run(ctx: Any) -> None:
        ctx.set_timeout(a.which, a.seconds)
        return None
    return run


def _use_service(a: m.ActUseService) -> Executor:
    v = Verdict("service", 200, None, service=a.service)
    return lambda ctx: v


def _expect_proxy(a: m.ActExpectProxy) -> Executor:
    def run(ctx: Any) -> None:
        conn = ctx.conn
        if conn.pp_wait is None:  # (lb.proxy.client reads the header first)
            conn.pp_wait = b""
        return None
    return run


def _reject(a: m.ActReject) -> Executor:
    v = Verdict("reject", 0, None, silent=a.silent)
    return lambda ctx: v


def _set_var(a: m.ActSetVar) -> Executor:
    """The sample with its type (set-var-fmt: the rendered string), when the
    action's conditions hold; an expression without a sample sets nothing."""
    name, conds = a.name, a.conds
    if a.is_format:
        fmt = compile_format(a.expr)

        def run_fmt(ctx: Any) -> None:
            variables.assign(ctx, name, fmt.render(ctx), conds)
            return None
        return run_fmt
    expr = sample.parse_expr(a.expr)
    kind = expr.out if expr.out in (sample.T_BIN, sample.T_METH) else ""

    def run(ctx: Any) -> None:
        v = expr.raw(ctx)
        if v is not None:
            variables.assign(ctx, name, v, conds, kind)
        return None
    return run


def _set_addr(a: m.ActSetAddr) -> Executor:
    """The request's client (`set-src*`) or destination (`set-dst*`) address or port
    from now on, when the expression gives one: an address that does not parse, or
    no sample, changes nothing. As in HAProxy 2.6.12 it lasts for this request only;
    the port keeps its low 16 bits, and a port that is not a number becomes 0."""
    expr = sample.parse_expr(a.expr)
    addr_field, port_field = ("dst", "dst_port") if a.dst else ("src", "src_port")

    def run_addr(ctx: Any) -> None:
        v = expr.raw(ctx)
        if v is None:
            return None
        ip = v if isinstance(v, ipaddress.IPv4Address | ipaddress.IPv6Address) else \
            sample.parse_ip(v.decode("latin-1") if isinstance(v, bytes) else str(v))
        if ip is not None:
            setattr(ctx, addr_field, str(ip))
            ctx.memo.pop(addr_field, None)
        return None

    def run_port(ctx: Any) -> None:
        v = expr.raw(ctx)
        if v is None:
            return None
        if not isinstance(v, int):
            text = v.decode("latin-1") if isinstance(v, bytes) else str(v)
            v = int(text) if text.lstrip("-").isdigit() else 0
        setattr(ctx, port_field, v & 0xFFFF)
        return None
    return run_port if a.port else run_addr


def _unset_var(a: m.ActUnsetVar) -> Executor:
    name = a.name

    def run(ctx: Any) -> None:
        variables.unset(ctx, name)
        return None
    return run


def _capture(a: m.ActCapture) -> Executor:
    """Put the sample in its capture slot, cut to the slot's length; nothing when the
    sample is missing or the frontend has no such slot."""
    expr = sample.parse_expr(a.expr)
    slot = a.slot

    def run(ctx: Any) -> None:
        caps = ctx.cap_res if a.response else ctx.cap_req
        spec = ctx.fe.cap_res if a.response else ctx.fe.cap_req
        if caps is None or spec is None or slot >= len(caps):
            return None
        v = expr.fetch(ctx)
        if v is not None:
            raw = v if isinstance(v, bytes) else str(int(v)).encode("ascii")
            caps[slot] = raw[:spec[slot][1]]
        return None
    return run


def _auth(a: m.ActAuth) -> Executor:
    """HAProxy 2.6.12's 401 page with ``www-authenticate: Basic realm="..."``."""
    head, sep, body = responses.error_page(401).partition(b"\r\n\r\n")
    realm = a.realm.replace("\\", "\\\\").replace('"', '\\"').encode("utf-8", "surrogateescape")
    v = Verdict("return", 401, head + b'\r\nwww-authenticate: Basic realm="' + realm + b'"' +
                sep + body)
    return lambda ctx: v


def _track_sc(a: m.ActTrackSc) -> Executor:
    """Hold the key's entry in the table and count (the transaction's ``track_sc``,
    lb.proxy.track); a missing sample tracks nothing."""
    expr = sample.parse_expr(a.expr)
    table = a.table or a.proxy

    def run(ctx: Any) -> None:
        v = expr.raw(ctx)
        if v is not None:
            ctx.track_sc(a.slot, table, v, a.session)
        return None
    return run


def _sc_update(a: m.ActScUpdate) -> Executor:
    """`sc-inc-gpc*` and `sc-set-gpt*` (the tracked entry's update is lb.proxy.track's)."""
    slot, data, index = a.slot, a.data, a.index
    if not data.startswith("gpt"):
        def inc(ctx: Any) -> None:
            ctx.sc_update(slot, data, None, index)
            return None
        return inc
    const = int(a.value) if a.value.lstrip("-").isdigit() else None
    expr = sample.parse_expr(a.value) if const is None else None

    def set_gpt(ctx: Any) -> None:
        v: Any = const
        if expr is not None:
            v = expr.raw(ctx)
            if v is not None:
                v = sample.to_int(v)
        if v is not None:
            ctx.sc_update(slot, data, v, index)
        return None
    return set_gpt


def _pattern_ref(a: m.ActPatternRef) -> Executor:
    """Change the pattern list loaded from ``a.file`` (lb.match.patref.from_traffic);
    nothing when no ACL or map of the configuration loads that file, as in HAProxy."""
    key_fmt = compile_format(a.key_fmt)
    value_fmt = compile_format(a.value_fmt) if a.value_fmt is not None else None

    def run(ctx: Any) -> None:
        refs = ctx.rt.config.pattern_refs
        ref = refs.find_file(a.file) if refs is not None else None
        if ref is None:
            return None
        key = key_fmt.render(ctx).decode("latin-1")
        value = value_fmt.render(ctx).decode("latin-1") if value_fmt is not None else None
        patref.from_traffic(ref, a.op, key, value)
        return None
    return run


def _switch_mode(a: m.ActSwitchMode) -> Executor:
    """`switch-mode http`: the TCP connection becomes an HTTP one (lb.proxy.upgrade);
    in an HTTP stream it just ends the rules, as HAProxy's does."""
    def run(ctx: Any) -> Verdict:
        return SWITCH
    return run


#: Action dataclass -> executor builder.
ACTIONS: dict[type, Callable[[Any], Executor]] = {
    m.ActAllow: _allow,
    m.ActCapture: _capture,
    m.ActDelHeader: _del_header,
    m.ActDeny: _deny,
    m.ActExpectProxy: _expect_proxy,
    m.ActRedirect: _redirect,
    m.ActReject: _reject,
    m.ActReplaceHeader: _replace_header,
    m.ActReturn: _return,
    m.ActSetHeader: _set_header,
    m.ActSetPath: _set_path,
    m.ActReplaceUri: _replace_uri,
    m.ActNormalizeUri: _normalize_uri,
    m.ActSetStatus: _set_status,
    m.ActSetTimeout: _set_timeout,
    m.ActSetVar: _set_var,
    m.ActSetAddr: _set_addr,
    m.ActUnsetVar: _unset_var,
    m.ActUseService: _use_service,
    m.ActTrackSc: _track_sc,
    m.ActAuth: _auth,
    m.ActScUpdate: _sc_update,
    m.ActPatternRef: _pattern_ref,
    m.ActDoResolve: _do_resolve,
    m.ActSwitchMode: _switch_mode,
}


class RuleSet:
    """Compiled rules of one proxy and one side; ``run(ctx)`` gives the final verdict
    (None when every rule ran, or an `allow` stopped this ruleset)."""

    __slots__ = ("rules",)

    def __init__(self, rules: Sequence[m.Rule]) -> None:
        compiled: list[tuple[Any, Executor]] = []
        hints: _EarlyHints | None = None  # the 103 the next early-hint may join
        for r in rules:
            if type(r.action) is m.ActEarlyHint:
                if hints is None or r.cond is not None:
                    hints = _EarlyHints(acl.as_condition(r.cond))
                    compiled.append((None, hints))
                hints.add(r.action)
                continue
            hints = None
            builder = ACTIONS.get(type(r.action))
            if builder is None:
                continue
            compiled.append((acl.as_condition(r.cond), builder(r.action)))
        self.rules = tuple(compiled)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def run(self, ctx: Any, start: int = 0) -> Verdict | None:
        """From rule ``start``; a "resolve" verdict says where to go on (``pos``)."""
        rules = self.rules
        for i in range(start, len(rules)):
            cond, ex = rules[i]
            if cond is not None and not cond.evaluate(ctx):
                continue
            v = ex(ctx)
            if v is not None:
                if v.kind == "resolve":
                    v.pos = i + 1
                    return v
                return None if v is ALLOW else v
        return None

    def decide(self, ctx: Any) -> Verdict | None:
        """As ``run``, with an `allow` returned as ``ALLOW`` (the stats page's rules:
        it then asks no credentials). A `do-resolve` here sets nothing: the stats
        page answers at once."""
        for cond, ex in self.rules:
            if cond is not None and not cond.evaluate(ctx):
                continue
            v = ex(ctx)
            if v is not None and v.kind != "resolve":
                return v
        return None
