"""Check programs: a CheckSpec compiled into connect / send / expect steps (no I/O).

Owns: compiling ``lb.config.model.CheckSpec`` into a ``Program`` (a tuple of steps),
the exact request bytes of HTTP checks (spec §7.3, §7.4), the WebSocket handshake
of checks (spec §7.5: fresh Sec-WebSocket-Key, 101 + correct Sec-WebSocket-Accept,
masked close frame afterwards), HTTP response parsing for checks, and every expect
rule (status lists and ranges, rstatus, string, rstring, hdr/fhdr, tcp-check
string/rstring/binary/rbinary, their `-lf` forms, custom, `!`, min-recv,
ok/error/tout-status, on-success/on-error, status-code, disable-on-404), the
variable rules (``VarAction``), and HAProxy's last shaping of a rule list: the
implicit connect and final expect, step numbers, comments handed on.

Log-format strings (send-lf, uri-lf, header values, ...) are compiled here and
rendered per run from ``RunContext.sample`` (healthcheck.sampling).

The runner drives a Program: it opens connections for ``Connect`` steps, runs
``VarAction`` steps, writes what ``Send.render`` returns (or stops on the
``Outcome`` it returns instead), and feeds the bytes received so far to
``Expect.evaluate`` which answers CONTINUE (next step), WAIT (read more) or STOP
(with an ``Outcome``). When the steps run out, ``Program.success`` gives the
passing outcome.

Must not import: asyncio, sockets, time, lb.proxy, lb.log, healthcheck.runner.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from healthcheck.protocols import CUSTOM
from healthcheck.sampling import CheckSample, compile_check_format
from lb.config.model import (
    ActSetVar,
    ActUnsetVar,
    CheckComment,
    CheckConnect,
    CheckSpec,
    ExpectOutcome,
    HttpCheckExpect,
    HttpCheckSend,
    TcpCheckExpect,
    TcpCheckSend,
)
from lb.http import h1
from lb.match import variables
from lb.match.fmt import Format
from lb.match.sample import T_BIN, T_METH, SampleExpr, parse_expr, to_int

BUFSIZE = 16384  # like tune.bufsize: what a check reads at most


class Eval(IntEnum):
    CONTINUE = 0
    WAIT = 1
    STOP = 2


@dataclass(frozen=True, slots=True)
class Outcome:
    """The verdict of one check: a CHECK_STATUSES code, HTTP code and detail text."""

    status: str
    code: int = 0
    desc: str = ""


# --------------------------------------------------------------------------- context


class RunContext:
    """Per-check mutable scratch space shared by the steps of one run."""

    __slots__ = ("server_running", "state_header", "key_factory", "request_headers",
                 "websocket", "head_request", "response", "parsed_len", "code",
                 "cond404", "ws_open", "last_expect", "disable404", "tls", "sample")

    def __init__(self, server_running: bool = True, state_header: str | None = None,
                 key_factory: Callable[[], bytes] | None = None,
                 disable404: bool = False, sample: CheckSample | None = None) -> None:
        self.sample = sample if sample is not None else CheckSample()  # formats read it
        self.disable404 = disable404  # http-check disable-on-404
        self.tls = False  # the current connection runs TLS (L6 statuses)
        self.server_running = server_running  # server not DOWN (for disable-on-404)
        self.state_header = state_header  # value of x-haproxy-server-state, if sent
        self.key_factory = key_factory or new_ws_key
        self.request_headers: h1.Headers = []
        self.websocket = False  # last request was a WebSocket handshake
        self.head_request = False
        self.response: HttpResponse | str | None = None  # parsed, error text, or None
        self.parsed_len = -1
        self.code = 0
        self.cond404 = False
        self.ws_open = False  # a 101 was validated: close politely
        self.last_expect: Expect | None = None

    def reset_response(self) -> None:
        self.response = None
        self.parsed_len = -1
        self.code = 0
        self.ws_open = False


def _b(text: str) -> bytes:
    """Config text to wire bytes (config text is UTF-8 with surrogate escapes)."""
    return text.encode("utf-8", "surrogateescape")


def _s(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _regex(pattern: str | bytes, flags: int = 0) -> re.Pattern:  # type: ignore[type-arg]
    """Compile a pattern the config layer accepted; a pattern Python's engine rejects
    is matched literally rather than failing the whole check."""
    try:
        return re.compile(pattern, flags)
    except re.error:
        return re.compile(re.escape(pattern), flags)


def new_ws_key() -> bytes:
    return base64.b64encode(os.urandom(16))


def ws_close_frame(mask: bytes | None = None) -> bytes:
    """A client close frame (status 1000), masked as RFC 6455 requires."""
    mask = mask if mask is not None else os.urandom(4)
    payload = b"\x03\xe8"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return b"\x88" + bytes([0x80 | len(payload)]) + mask + masked


# --------------------------------------------------------------------------- steps


class Connect:
    """Open a (new) connection; port/addr None mean the server's check port/addr,
    ``tls`` None means the server's own choice (`ssl` / `check-ssl`). ``port_expr``
    gives the port at each run; ``addr_port`` is the port written with `addr`;
    ``sni``/``alpn``: the rule's own (a TLS rule without them sends no SNI and
    offers the server's `alpn`)."""

    __slots__ = ("port", "addr", "implicit", "step_id", "tls", "send_proxy", "port_expr",
                 "addr_port", "comment", "sni", "alpn")

    def __init__(self, port: int | None = None, addr: str | None = None,
                 implicit: bool = False, step_id: int = 0, tls: bool | None = None,
                 send_proxy: bool | None = None, port_expr: SampleExpr | None = None,
                 addr_port: int | None = None, comment: str | None = None,
                 sni: str | None = None, alpn: str | None = None) -> None:
        self.port = port
        self.addr = addr
        self.implicit = implicit
        self.step_id = step_id
        self.tls = tls
        self.send_proxy = send_proxy  # None: the server's choice
        self.port_expr = port_expr
        self.addr_port = addr_port
        self.comment = comment
        self.sni = sni
        self.alpn = alpn

    def target_port(self, ctx: RunContext, port: int) -> int:
        """HAProxy's order: the rule's port (or its expression's value, kept to 16
        bits), the port written with its `addr`, the server's check port (``port``)."""
        p = self.port or 0
        if self.port_expr is not None:
            p = to_int(self.port_expr.raw(ctx.sample)) or 0  # type: ignore[arg-type]
        return (p or self.addr_port or port) & 0xFFFF

    def describe(self) -> str:
        return f" (connect port {self.port})" if self.port else " (connect)"


class VarAction:
    """`set-var(...)`, `set-var-fmt(...)`, `unset-var(...)` of a check: run on the
    check's own context. A check has no stream, so `txn.`, `req.` and `res.`
    variables are left alone, as HAProxy leaves them."""

    __slots__ = ("name", "conds", "expr", "fmt", "kind", "unset", "active")

    def __init__(self, rule: ActSetVar | ActUnsetVar) -> None:
        self.name = rule.name
        self.active = rule.name.partition(".")[0] in ("check", "sess", "proc")
        self.unset = isinstance(rule, ActUnsetVar)
        self.conds: tuple[str, ...] = ()
        self.expr: SampleExpr | None = None
        self.fmt: Format | None = None
        self.kind = ""
        if isinstance(rule, ActSetVar):
            self.conds = rule.conds
            if rule.is_format:
                self.fmt = compile_check_format(rule.expr)
            else:
                self.expr = _sample_expr(rule.expr)
                if self.expr is not None and self.expr.out in (T_BIN, T_METH):
                    self.kind = self.expr.out

    def run(self, ctx: RunContext) -> None:
        if not self.active:
            return
        sample = ctx.sample
        if self.unset:
            variables.unset(sample, self.name)
        elif self.fmt is not None:
            variables.assign(sample, self.name, self.fmt.render(sample), self.conds)
        elif self.expr is not None:
            value = self.expr.raw(sample)
            if value is not None:
                variables.assign(sample, self.name, value, self.conds, self.kind)


def _decode_hex(text: bytes) -> bytes | None:
    """A `*-binary-lf` result: its hex digits as bytes (None: not an even hex run)."""
    try:
        return bytes.fromhex(text.decode("ascii")) if len(text) % 2 == 0 else None
    except ValueError:
        return None


class RawSend:
    """tcp-check send / send-binary, send-lf / send-binary-lf (``fmt``)."""

    __slots__ = ("data", "comment", "step_id", "fmt", "binary")

    def __init__(self, data: bytes, comment: str | None = None, step_id: int = 0,
                 fmt: Format | None = None, binary: bool = False) -> None:
        self.data = data
        self.comment = comment
        self.step_id = step_id
        self.fmt = fmt
        self.binary = binary

    def render(self, ctx: RunContext) -> bytes | Outcome:
        if self.fmt is None:
            return self.data
        data = self.fmt.render(ctx.sample)
        if self.binary and data:
            decoded = _decode_hex(data)
            if decoded is None:
                return Outcome("L7RSP", 0, "tcp-check send : failed to build log-format "
                               f"string at step {self.step_id}")
            return decoded
        return data

    def describe(self) -> str:
        return " (send)"


class HttpSend:
    """One HTTP check request; rendered per run (WebSocket key, send-state, the
    log-format strings of its URI, header values and body)."""

    __slots__ = ("head_line", "headers", "body", "needs_close", "add_length", "websocket",
                 "ws_key_index", "add_version", "send_state", "is_head", "step_id",
                 "method", "version", "uri_fmt", "header_fmts", "body_fmt", "comment")

    def __init__(self, spec: HttpCheckSend, send_state: bool, step_id: int = 0) -> None:
        self.step_id = step_id
        self.comment: str | None = None
        self.method, self.version = spec.method, spec.version
        self.uri_fmt: Format | None = None
        uri = spec.uri
        if spec.uri_lf:  # (a format that renders nothing asks for "/")
            f = compile_check_format(spec.uri)
            if f.constant is None:
                self.uri_fmt = f
            else:
                uri = _s(f.constant) or "/"
        self.head_line = _b(f"{spec.method} {uri} {spec.version}\r\n")
        self.is_head = spec.method.upper() == "HEAD"
        names = [n.lower() for n, _ in spec.headers]
        # each value is a log-format string: a constant one is sent as it renders
        # (`%%` is a '%'), an empty one not at all; the others are rendered per run
        self.headers: list[tuple[bytes, bytes]] = []
        fmts: list[Format | None] = []
        for n, v in spec.headers:
            f = compile_check_format(v)
            if f.constant == b"":
                continue
            self.headers.append((_b(n.lower()), f.constant if f.constant is not None
                                 else b""))
            fmts.append(None if f.constant is not None else f)
        self.header_fmts: tuple[Format | None, ...] | None = (
            tuple(fmts) if any(f is not None for f in fmts) else None)
        self.body = spec.body
        self.body_fmt = None
        if spec.body_lf:
            f = compile_check_format(_s(spec.body))
            if f.constant is None:
                self.body_fmt = f
            else:
                self.body = f.constant
        self.send_state = send_state
        self.needs_close = spec.version.upper() == "HTTP/1.1" and "connection" not in names
        self.add_length = "content-length" not in names
        conn = h1.tokens(self.headers, b"connection")
        self.websocket = b"upgrade" in conn and h1.is_websocket(self.headers)
        # index of a usable Sec-WebSocket-Key (-1 = generate one per run)
        self.ws_key_index = -1
        self.add_version = False
        if self.websocket:
            for i, (n, v) in enumerate(self.headers):
                if n == b"sec-websocket-key" and h1.ws_key_valid(v):
                    self.ws_key_index = i
                    break
            # drop invalid keys (the seed's `haproxy`): a fresh one is sent instead
            if self.ws_key_index < 0:
                keep = [i for i, (n, _) in enumerate(self.headers)
                        if n != b"sec-websocket-key"]
                self.headers = [self.headers[i] for i in keep]
                if self.header_fmts is not None:
                    self.header_fmts = tuple(self.header_fmts[i] for i in keep)
            self.add_version = "sec-websocket-version" not in names

    def render(self, ctx: RunContext) -> bytes:
        headers = list(self.headers)
        sample = ctx.sample
        if self.header_fmts is not None:
            rendered = []
            for (n, v), f in zip(headers, self.header_fmts, strict=True):
                if f is not None:
                    v = f.render(sample)
                    if not v:  # (an empty value: no header, as in HAProxy)
                        continue
                rendered.append((n, v))
            headers = rendered
        if self.websocket:
            if self.ws_key_index < 0:
                headers.append((b"sec-websocket-key", ctx.key_factory()))
            if self.add_version:
                headers.append((b"sec-websocket-version", b"13"))
        if self.send_state and ctx.state_header is not None:
            headers.append((b"x-haproxy-server-state", _b(ctx.state_header)))
        body = self.body if self.body_fmt is None else self.body_fmt.render(sample)
        if self.add_length and body:
            headers.append((b"content-length", str(len(body)).encode()))
        ctx.request_headers = headers
        ctx.websocket = self.websocket
        ctx.head_request = self.is_head
        head_line = self.head_line
        if self.uri_fmt is not None:
            uri = self.uri_fmt.render(sample) or b"/"
            head_line = _b(self.method) + b" " + uri + b" " + _b(self.version) + b"\r\n"
        out = [head_line]
        for n, v in headers:
            out.append(n + b": " + v + b"\r\n")
        if self.needs_close:
            out.append(b"connection: close\r\n")
        out.append(b"\r\n")
        out.append(body)
        return b"".join(out)

    def describe(self) -> str:
        return " (send)"


class Expect:
    """Base of expect steps: what every expect rule may add to its result (the
    statuses, `on-success`/`on-error` formats, the `status-code` expression)."""

    __slots__ = ("comment", "step_id", "min_recv", "ok_status", "error_status",
                 "tout_status", "negate", "on_success", "on_error", "status_code")

    def _outcome_options(self, opts: ExpectOutcome) -> None:
        self.ok_status = opts.ok_status
        self.error_status = opts.error_status
        self.tout_status = opts.tout_status
        self.on_success = compile_check_format(opts.on_success) if opts.on_success else None
        self.on_error = compile_check_format(opts.on_error) if opts.on_error else None
        self.status_code = _sample_expr(opts.status_code)

    def evaluate(self, buf: bytes, eof: bool, ctx: RunContext) -> tuple[Eval, Outcome | None]:
        raise NotImplementedError

    def describe(self) -> str:
        return ""

    def code(self, ctx: RunContext, code: int) -> int:
        """The check's code: what `status-code` gives, else ``code``."""
        if self.status_code is None:
            return code
        value = self.status_code.raw(ctx.sample)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, bytes) and value:  # (HAProxy's cast: leading digits, or 0)
            mt = _LEADING_INT.match(value)
            return int(mt.group(0)) if mt else 0
        return code

    def success_desc(self, ctx: RunContext, default: str) -> str:
        if self.on_success is not None:
            return _c_text(self.on_success.render(ctx.sample))
        return default

    def error_desc(self, ctx: RunContext, desc: str) -> str:
        """The failure text: ``desc``, else the `on-error` format's, and the comment
        (unquoted here, as HAProxy words a failed expect)."""
        if not desc and self.on_error is not None:
            desc = _c_text(self.on_error.render(ctx.sample))
        return f"{desc} comment: {self.comment}" if self.comment else desc


_LEADING_INT = re.compile(rb"[+-]?\d+")


def _sample_expr(text: str | None) -> SampleExpr | None:
    if not text:
        return None
    try:
        return parse_expr(text)
    except Exception:  # (the config layer refused the invalid ones)
        return None


def _c_text(rendered: bytes) -> str:
    """A rendered check text as HAProxy keeps it: a C string, so up to the first NUL
    (a server's binary answer, `res.payload` of a PostgreSQL error)."""
    return _s(rendered.split(b"\x00", 1)[0])


def _with_comment(text: str, comment: str | None) -> str:
    return f"{text} comment: '{comment}'" if comment else text


# ---- HTTP responses

_STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?: ([^\r\n]*))?\Z")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")


class HttpResponse:
    __slots__ = ("status", "reason", "headers", "body", "complete")

    def __init__(self, status: int, reason: str, headers: h1.Headers, body: bytes,
                 complete: bool) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.complete = complete


def parse_response(buf: bytes, eof: bool, head_request: bool = False) -> HttpResponse | str | None:
    """Parse what was received: a response, an error text, or None (need more).

    Interim 1xx responses other than 101 are skipped. The body is decoded
    (content-length, chunked, or up to EOF) and marked complete when it ended.
    """
    pos = 0
    while True:
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            return "" if len(buf) - pos >= BUFSIZE else None
        lines = buf[pos:end].split(b"\r\n")
        m = _STATUS_LINE.match(lines[0])
        if m is None:
            return ""
        status = int(m.group(3))
        headers: h1.Headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not _TOKEN.match(name):
                return ""
            headers.append((name.lower(), value.strip(b" \t")))
        body_at = end + 4
        if 100 <= status < 200 and status != 101:
            pos = body_at
            continue
        reason = (m.group(4) or b"").decode("latin-1")
        rest = buf[body_at:]
        if status == 101 or status in (204, 304) or head_request:
            return HttpResponse(status, reason, headers, b"", True)
        if b"chunked" in h1.tokens(headers, b"transfer-encoding"):
            body, done = _dechunk(rest)
            if body is None:
                return ""
            return HttpResponse(status, reason, headers, body, done)
        cl = h1.get(headers, b"content-length")
        if cl is not None:
            try:
                n = int(cl)
            except ValueError:
                return ""
            return HttpResponse(status, reason, headers, rest[:n], len(rest) >= n)
        return HttpResponse(status, reason, headers, rest, eof)


def _dechunk(data: bytes) -> tuple[bytes | None, bool]:
    out = []
    pos = 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return b"".join(out), False
        size_txt = data[pos:eol].split(b";", 1)[0].strip()
        try:
            size = int(size_txt, 16)
        except ValueError:
            return None, False
        if size == 0:
            return b"".join(out), True
        start = eol + 2
        if len(data) < start + size:
            out.append(data[start:])
            return b"".join(out), False
        out.append(data[start:start + size])
        pos = start + size + 2


def _response(buf: bytes, eof: bool, ctx: RunContext) -> HttpResponse | str | None:
    """Parse (memoised per buffer length) and validate a WebSocket 101."""
    if ctx.parsed_len == len(buf) and ctx.response is not None:
        return ctx.response
    resp = parse_response(buf, eof, ctx.head_request)
    if isinstance(resp, HttpResponse):
        ctx.code = resp.status
        if resp.status == 101 and ctx.websocket:
            why = h1.check_101(ctx.request_headers, resp.headers, True)
            if why == "no_connection_upgrade":
                resp = "WebSocket handshake: 101 without Connection: upgrade"
            elif why == "bad_accept":
                if h1.get(resp.headers, b"sec-websocket-accept") is None:
                    resp = "WebSocket handshake: 101 without Sec-WebSocket-Accept"
                else:
                    resp = "WebSocket handshake: wrong Sec-WebSocket-Accept"
            else:
                ctx.ws_open = True
    ctx.response = resp
    ctx.parsed_len = len(buf)
    return resp


def _status_ranges(text: str) -> tuple[tuple[int, int], ...]:
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            out.append((int(lo), int(hi or lo)))
        except ValueError:
            continue  # the config layer rejects these; never fail a check on them
    return tuple(out)


_HDR_METHODS: dict[str, Callable[[str, str], bool]] = {
    "beg": lambda v, p: v.startswith(p),
    "end": lambda v, p: v.endswith(p),
    "str": lambda v, p: v == p,
    "sub": lambda v, p: p in v,
}


_EMPTY_LF = "log-format string evaluated to an empty string"


class HttpExpect(Expect):
    """http-check expect (or the implicit `status 200-399`)."""

    __slots__ = ("match", "ranges", "regex", "needle", "hdr_name", "hdr_method",
                 "name_re", "value", "value_method", "value_re", "full", "needle_fmt",
                 "name_fmt", "value_fmt")

    def __init__(self, rule: HttpCheckExpect, step_id: int = 0) -> None:
        self.step_id = step_id
        self.match = rule.match
        self.negate = rule.negate
        self.comment = rule.comment
        self.min_recv = rule.min_recv
        self._outcome_options(rule.outcome)
        self.ranges: tuple[tuple[int, int], ...] = ()
        self.regex: re.Pattern[bytes] | None = None
        self.needle = b""
        self.needle_fmt = self.name_fmt = self.value_fmt = None
        self.hdr_name = (rule.hdr_name or "").lower()
        self.hdr_method = rule.hdr_method
        self.name_re: re.Pattern[str] | None = None
        self.value = rule.value
        self.value_method = rule.value_method
        self.value_re: re.Pattern[str] | None = None
        self.full = rule.match == "fhdr"
        if rule.match == "status":
            self.ranges = _status_ranges(rule.pattern)
        elif rule.match in ("rstatus", "rstring"):
            self.regex = _regex(_b(rule.pattern))
        elif rule.match == "string":
            if rule.lf:
                self.needle_fmt = compile_check_format(rule.pattern)
            else:
                self.needle = _b(rule.pattern)
        elif rule.match in ("hdr", "fhdr"):
            if not self.hdr_name:
                self.hdr_name = rule.pattern.lower()
            if rule.name_lf:
                self.name_fmt = compile_check_format(rule.hdr_name or rule.pattern)
            if self.hdr_method == "reg":
                self.name_re = _regex(rule.hdr_name or rule.pattern, re.IGNORECASE)
            if self.value is not None and rule.value_lf:
                self.value_fmt = compile_check_format(self.value)
            if self.value is not None and self.value_method == "reg":
                self.value_re = _regex(self.value)

    def _fail(self, ctx: RunContext, default: str, code: int,
              desc: str) -> tuple[Eval, Outcome]:
        """A failure; ``desc`` gives way to the rule's `on-error` text."""
        if self.on_error is not None:
            desc = ""
        return Eval.STOP, Outcome(self.error_status or default, self.code(ctx, code),
                                  self.error_desc(ctx, desc))

    def _empty_lf(self, ctx: RunContext, code: int) -> tuple[Eval, Outcome]:
        return Eval.STOP, Outcome("L7RSP", self.code(ctx, code),
                                  self.error_desc(ctx, _EMPTY_LF))

    def evaluate(self, buf: bytes, eof: bool, ctx: RunContext) -> tuple[Eval, Outcome | None]:
        ctx.last_expect = self
        last = eof or len(buf) >= BUFSIZE
        resp = _response(buf, last, ctx)
        if isinstance(resp, str):
            if resp:  # (lb's own WebSocket texts are always given)
                return Eval.STOP, Outcome(self.error_status or "L7RSP",
                                          self.code(ctx, ctx.code),
                                          self.error_desc(ctx, resp))
            return self._fail(ctx, "L7RSP", ctx.code, resp)
        if resp is None:
            if last:
                return self._fail(ctx, "L7RSP", 0, "")
            return Eval.WAIT, None
        code = resp.status
        last = last or resp.complete
        if code == 404 and ctx.disable404 and ctx.server_running:
            ctx.cond404 = True  # 404 may mean "stopping" only for a server that is up
            return Eval.CONTINUE, None
        m = self.match
        if m == "custom":
            return Eval.CONTINUE, None
        if m == "status":
            ok = any(lo <= code <= hi for lo, hi in self.ranges)
            default, desc = "L7STS", resp.reason
        elif m == "rstatus":
            assert self.regex is not None
            ok = self.regex.search(str(code).encode()) is not None
            default, desc = "L7STS", resp.reason
        elif m in ("hdr", "fhdr"):
            name, value = self.hdr_name, self.value
            if self.name_fmt is not None:
                name = _s(self.name_fmt.render(ctx.sample)).lower()
                if not name:
                    return self._empty_lf(ctx, code)
            if self.value_fmt is not None:
                value = _s(self.value_fmt.render(ctx.sample))
                if not value:
                    return self._empty_lf(ctx, code)
            ok = self._match_header(resp.headers, name, value)
            default, desc = "L7STS", resp.reason
        else:  # string / rstring on the body
            body = resp.body
            if not body:
                if not last:
                    return Eval.WAIT, None
                return self._fail(ctx, "L7RSP", code,
                                  "HTTP content check could not find a response body")
            needle = self.needle
            if self.needle_fmt is not None:
                needle = self.needle_fmt.render(ctx.sample)
                if not needle:
                    return self._empty_lf(ctx, code)
            if not last and ((m == "string" and len(body) < len(needle))
                             or (self.min_recv > 0 and len(body) < self.min_recv)):
                return Eval.WAIT, None
            if m == "string":
                ok = needle in body
            else:
                assert self.regex is not None
                ok = self.regex.search(body) is not None
            if not ok and not last and self.min_recv == -1:
                return Eval.WAIT, None
            default = "L7RSP"
            desc = ("HTTP check matched unwanted content" if self.negate
                    else "HTTP content check did not match")
        if ok ^ self.negate:
            return Eval.CONTINUE, None
        return self._fail(ctx, default, code, desc)

    def _match_header(self, headers: h1.Headers, hdr_name: str, value: str | None) -> bool:
        for name, raw in headers:
            n = name.decode("latin-1")
            if self.name_re is not None:
                if not self.name_re.search(n):
                    continue
            elif not _HDR_METHODS.get(self.hdr_method, _HDR_METHODS["str"])(n, hdr_name):
                continue
            if value is None:
                return True
            text = raw.decode("latin-1")
            values = [text] if self.full else [v.strip() for v in text.split(",")]
            for v in values:
                if self.value_re is not None:
                    if self.value_re.search(v):
                        return True
                elif _HDR_METHODS.get(self.value_method, _HDR_METHODS["str"])(v, value):
                    return True
        return False


# ---- raw TCP


_TCP_KINDS = {"string": "string", "rstring": "regex", "binary": "binary",
              "rbinary": "binary regex", "custom": "custom function"}


class TcpExpect(Expect):
    """tcp-check expect [!] string|rstring|binary|rbinary|string-lf|binary-lf|custom."""

    __slots__ = ("match", "pattern", "regex", "fmt", "generic")

    def __init__(self, rule: TcpCheckExpect, step_id: int = 0, generic: bool = True) -> None:
        self.step_id = step_id
        # a rule of a `tcp-check` ruleset, not of a protocol check (`option
        # redis-check`, ...): a failure without text gets HAProxy's generic one
        self.generic = generic
        self.match = rule.match
        self.pattern = rule.pattern
        self.negate = rule.negate
        self.min_recv = rule.min_recv
        self.comment = rule.comment
        self._outcome_options(rule.outcome)
        self.fmt = compile_check_format(_s(rule.pattern)) if rule.lf else None
        self.regex: re.Pattern[bytes] | None = None
        if rule.match == "rstring":
            self.regex = _regex(rule.pattern)
        elif rule.match == "rbinary":
            self.regex = _regex(rule.pattern, re.IGNORECASE)

    def _kind(self) -> str:
        if self.fmt is not None:
            return "log-format " + ("binary" if self.match == "binary" else "string")
        return _TCP_KINDS[self.match]

    def describe(self) -> str:
        if self.match == "custom":
            return ""
        if self.fmt is not None or self.match in ("rstring", "rbinary"):
            return f" (expect {self._kind()})"
        text = self.pattern.decode("latin-1")
        if self.match == "binary":
            text = self.pattern.hex().upper()
        return f" (expect {self._kind()} '{text}')"

    def _stop(self, ctx: RunContext, status: str, desc: str) -> tuple[Eval, Outcome]:
        return Eval.STOP, Outcome(status, self.code(ctx, 0), self.error_desc(ctx, desc))

    def evaluate(self, buf: bytes, eof: bool, ctx: RunContext) -> tuple[Eval, Outcome | None]:
        ctx.last_expect = self
        ctx.sample.res_payload = buf
        last = eof or len(buf) >= BUFSIZE
        if not buf:
            if not last:
                return Eval.WAIT, None
            return Eval.STOP, Outcome(self.error_status or "L7RSP", 0, _with_comment(
                f"TCPCHK got an empty response at step {self.step_id}", self.comment))
        if self.match == "custom":
            return self._custom(buf, last, ctx)
        pattern = self.pattern
        if self.fmt is not None:
            pattern = self.fmt.render(ctx.sample)
            if not pattern:
                return self._stop(ctx, "L7RSP", _EMPTY_LF)
            if self.match == "binary":
                decoded = _decode_hex(pattern)
                if decoded is None:
                    return self._stop(ctx, "L7RSP", "Failed to parse hexastring resulting "
                                      "of eval of a log-format string")
                pattern = decoded
        if not last:
            if self.match in ("string", "binary") and len(buf) < len(pattern):
                return Eval.WAIT, None
            if self.min_recv > 0 and len(buf) < self.min_recv:
                return Eval.WAIT, None
        if self.match in ("string", "binary"):
            found = pattern in buf
        elif self.match == "rstring":
            assert self.regex is not None
            found = self.regex.search(buf) is not None
        else:
            assert self.regex is not None
            found = self.regex.search(buf.hex().upper().encode()) is not None
        if not found and not last and self.min_recv == -1:
            return Eval.WAIT, None
        if found ^ self.negate:
            return Eval.CONTINUE, None
        desc = ""
        if self.on_error is None and self.generic:
            diag = "matched unwanted content" if found else "did not match content"
            if self.match == "string" and self.fmt is None:
                what = f"'{self.pattern.decode('latin-1')}'"
            else:
                what = f"({self._kind()})"
            desc = f"TCPCHK {diag} {what} at step {self.step_id}"
        return self._stop(ctx, self.error_status or "L7RSP", desc)


    def _custom(self, buf: bytes, last: bool, ctx: RunContext) -> tuple[Eval, Outcome | None]:
        """`expect custom`: a protocol check's own reader (healthcheck.protocols),
        else (a rule written so by hand) a pass."""
        read = CUSTOM.get(_s(self.pattern)) if self.pattern else None
        if read is None:
            return Eval.CONTINUE, None
        verdict, failure = read(buf, last)
        if verdict == "wait":
            return Eval.WAIT, None
        if failure is None:
            return Eval.CONTINUE, None
        status, code, desc = failure
        return Eval.STOP, Outcome(status, self.code(ctx, code), self.error_desc(ctx, desc))


Step = Connect | RawSend | HttpSend | HttpExpect | TcpExpect | VarAction


# --------------------------------------------------------------------------- programs


@dataclass(frozen=True, slots=True)
class Program:
    """A compiled check: what to run and how to word its results."""

    kind: str  # "tcp" | "http" | "tcp-check"
    steps: tuple[Step, ...]
    disable404: bool = False
    send_state: bool = False
    protocol: str = ""  # (CheckSpec.protocol: `option redis-check`, ...)

    @property
    def scripted(self) -> bool:
        """tcp-check rulesets word connection errors with their step (not those an
        option names by their protocol)."""
        return self.kind == "tcp-check" and not self.protocol

    def success(self, ctx: RunContext, last: Step | None) -> Outcome:
        """The passing outcome once every step ran (``last`` = last step run)."""
        if isinstance(last, Connect) or self.kind == "tcp":  # (no send, no expect)
            return Outcome("L6OK" if ctx.tls else "L4OK", 0,
                           "" if last is None or last.implicit else "(tcp-check)")
        if self.kind == "http":
            if ctx.cond404 and ctx.code == 404:
                return Outcome("L7OKC", 404)
            exp = ctx.last_expect
            if exp is None:
                return Outcome("L7OK", ctx.code)
            return Outcome(exp.ok_status or "L7OK", exp.code(ctx, ctx.code),
                           exp.success_desc(ctx, ""))  # (no comment on success)
        generic = "" if self.protocol else "(tcp-check)"
        if isinstance(last, Expect):
            return Outcome(last.ok_status or "L7OK", last.code(ctx, 0),
                           last.success_desc(ctx, generic))
        return Outcome("L7OK", 0, generic)

    def step_text(self, step: Step | None) -> str:
        """The ` at step N of tcp-check (...)` suffix of connection errors."""
        if not self.scripted:
            return ""
        if step is None or (isinstance(step, Connect) and step.implicit):
            return " at initial connection step of tcp-check"
        text = f" at step {step.step_id} of tcp-check" + step.describe()
        comment = getattr(step, "comment", None)
        if comment:
            text += f" comment: '{comment}'"
        return text


def _rule_kind(rule: object) -> str:
    """A rule as HAProxy's comment pass sees it."""
    if rule is None or isinstance(rule, CheckConnect):
        return "connect"
    if isinstance(rule, CheckComment):
        return "comment"
    if isinstance(rule, ActSetVar | ActUnsetVar):
        return "action"
    if isinstance(rule, HttpCheckSend | TcpCheckSend):
        return "send"
    return "expect"


def _with_comments(items: list[tuple[int, object]]) -> list[tuple[int, object, str | None]]:
    """HAProxy's last pass over a ruleset: a comment rule's text goes to the rules
    after it that have none, while they are of one kind (a connect takes it and ends
    it, as does a variable rule); the comment rules themselves go."""
    out: list[tuple[int, object, str | None]] = []
    comment: str | None = None
    prev = "comment"
    for step_id, rule in items:
        kind = _rule_kind(rule)
        if kind != prev and prev != "comment":
            comment = None
        prev = kind
        if isinstance(rule, CheckComment):
            comment = rule.text
            continue
        own = getattr(rule, "comment", None)
        out.append((step_id, rule, own or (comment if kind != "action" else None)))
        if kind in ("connect", "action"):
            comment = None
    return out


def compile_spec(spec: CheckSpec) -> Program:
    """Compile a backend's CheckSpec (never fails on a model the config layer built).

    Steps are numbered as HAProxy numbers its rules: each rule of the list counts,
    comments and variable rules included; the implicit first connect is step 0 and
    the implicit expect after a final HTTP send shares the send's number."""
    if spec.kind in ("tcp", "external"):  # (an external check runs no steps)
        return Program("tcp", (Connect(implicit=True),))
    rules: tuple[object, ...] = spec.steps
    if spec.kind == "http" and not rules:  # (a spec made by hand: the default request)
        rules = (HttpCheckSend(),)
    items: list[tuple[int, object]] = list(enumerate(rules, start=1))
    io = [(i, r) for i, r in items if _rule_kind(r) in ("connect", "send", "expect")]
    if not io or not isinstance(io[0][1], CheckConnect):
        items.insert(0, (0, None))
    if spec.kind == "http" and io and isinstance(io[-1][1], HttpCheckSend):
        items.append((io[-1][0], _DEFAULT_EXPECT))
    steps: list[Step] = []
    for step_id, rule, comment in _with_comments(items):
        step: Step
        if rule is None:
            step = Connect(implicit=True)
        elif isinstance(rule, CheckConnect):
            step = Connect(rule.port, rule.addr, step_id=step_id,
                           tls=None if rule.default else rule.ssl,
                           send_proxy=None if rule.default else rule.send_proxy,
                           port_expr=_sample_expr(rule.port_expr), addr_port=rule.addr_port,
                           sni=rule.sni, alpn=rule.alpn)
        elif isinstance(rule, HttpCheckSend):
            step = HttpSend(rule, spec.send_state, step_id=step_id)
        elif isinstance(rule, HttpCheckExpect):
            step = HttpExpect(rule, step_id=step_id)
        elif isinstance(rule, TcpCheckSend):
            step = RawSend(rule.data, step_id=step_id,
                           fmt=compile_check_format(rule.fmt) if rule.fmt else None,
                           binary=rule.binary)
        elif isinstance(rule, TcpCheckExpect):
            step = TcpExpect(rule, step_id=step_id, generic=not spec.protocol)
        else:
            steps.append(VarAction(rule))  # type: ignore[arg-type]
            continue
        step.comment = comment
        steps.append(step)
    return Program(spec.kind, tuple(steps), spec.disable_on_404, spec.send_state,
                   spec.protocol)


_DEFAULT_EXPECT = HttpCheckExpect(match="status", pattern="200-399")
