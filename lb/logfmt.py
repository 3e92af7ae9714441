"""Traffic log lines: HAProxy's log-format language compiled once per frontend.

Owns: the ``VARIABLES`` table (every ``%var`` of HAProxy 2.6 and how it renders),
the three built-in formats (``HTTPLOG_FORMAT``, ``HTTPLOG_CLF_FORMAT``,
``TCPLOG_FORMAT``), the log-format parser (``%var``, ``%{+Q,-X,+E,+M}var``, ``%o``,
``%[sample,conv]``, ``%%``, space merging) and ``compile_traffic_format`` which turns a
format into one generated Python function: a single ``str % tuple`` per line, so the
per-line cost does not grow with a per-field call chain.

The object rendered (``txn``) is the data plane's transaction; the attribute names it
must expose are listed in docs/logging.md. Dates come from the txn's timestamps (no
clock here) and are cached per second.

Pure: no I/O, no clock. Imports only ``lb.match.sample`` (for ``%[...]``) and the
standard library. Must not import: lb.proxy, lb.log, lb.cli, healthcheck.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from lb.match import sample as _sample

# The built-in formats, exactly as HAProxy 2.6 declares them (configuration §8.2).
HTTPLOG_FORMAT = ("%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc "
                  "%ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r")
HTTPLOG_CLF_FORMAT = ('%{+Q}o %{-Q}ci - - [%trg] %r %ST %B "" "" %cp %ms %ft %b %s %TR %Tw '
                      "%Tc %Tr %Ta %tsc %ac %fc %bc %sc %rc %sq %bq %CC %CS %hrl %hsl")
TCPLOG_FORMAT = "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq"

# node option bits (HAProxy's LOG_OPT_*)
OPT_MANDATORY = 1  # M: an absent string renders as "-"
OPT_QUOTE = 2  # Q
OPT_HEXA = 4  # X
OPT_ESC = 8  # E: backslash before '"', '\' and ']'
_FLAG_BITS = {"M": OPT_MANDATORY, "Q": OPT_QUOTE, "X": OPT_HEXA, "E": OPT_ESC}


class LogFormatError(ValueError):
    """Invalid log-format text; ``str()`` is the message to show the user."""


# --------------------------------------------------------------------------- escaping

# Request-line style fields (%r, %HU, ...) use HAProxy's url_encode_map: bytes < 32,
# >= 127, '"' and '#' become '#XX'.
_URL_ESC = re.compile(rb'[\x00-\x1f\x7f-\xff"#]')
# Sample values are copied as they are by HAProxy; lb still neutralises control
# characters so that a header value cannot forge a second log line (docs/logging.md).
_CTL_ESC = re.compile(rb"[\x00-\x1f\x7f]")
_E_ESC = re.compile(r'(["\\\]])')


def _hash_escape(m: re.Match[bytes]) -> bytes:
    return b"#%02X" % m.group(0)[0]


def _url_clean(value: bytes) -> bool:
    """No byte of ``value`` needs ``#XX`` escaping (a C loop when compiled)."""
    for c in value:
        if c < 32 or c > 126 or c == 34 or c == 35:
            return False
    return True


def url_escape(value: bytes) -> str:
    """``#XX``-escape a request-line style value; the result is ASCII text."""
    if type(value) is bytes:
        b = value
        if _url_clean(b):  # the usual case: one pass in C, then a plain decode
            return b.decode("ascii")
    return _URL_ESC.sub(_hash_escape, value).decode("ascii")  # type: ignore[no-any-return]


def _bytes_text(value: bytes) -> str:
    if _CTL_ESC.search(value) is not None:
        value = _CTL_ESC.sub(_hash_escape, value)
    return value.decode("utf-8", "surrogateescape")


def _text_fn(opts: int) -> Callable[[Any], str]:
    """lf_text semantics for a string field with the given options."""
    quote = bool(opts & OPT_QUOTE)
    esc = bool(opts & OPT_ESC)
    empty = '""' if quote else ("-" if opts & OPT_MANDATORY else "")

    def text(v: Any) -> str:
        if v is None or v == "" or v == b"":
            return empty
        if v.__class__ is not str:
            if v.__class__ is bool:  # (a boolean sample is 1 or 0, as in HAProxy)
                v = "1" if v else "0"
            else:
                v = _bytes_text(v) if isinstance(v, bytes) else str(v)
        if esc:
            v = _E_ESC.sub(r"\\\1", v)
        return '"' + v + '"' if quote else v
    return text


def _url_fn(opts: int) -> Callable[[bytes | None], str]:
    """Request-line style field: ``#XX`` escaping, never "-" (an empty value stays empty)."""
    quote = bool(opts & OPT_QUOTE)
    esc = bool(opts & OPT_ESC)

    def url(v: bytes | None) -> str:
        s = "<BADREQ>" if v is None else url_escape(v)
        if esc:
            s = _E_ESC.sub(r"\\\1", s)
        return '"' + s + '"' if quote else s
    return url


class _BytesToStr(dict[bytes, str]):
    """Tiny memo for the few distinct short codes (termination state, cookie flags)."""

    def __missing__(self, key: bytes) -> str:
        value = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        if len(self) < 4096:
            self[key] = value
        return value


_CODES = _BytesToStr()


class _HexIp(dict[str, str]):
    def __missing__(self, key: str) -> str:
        try:
            value = f"{int(ipaddress.ip_address(key)):X}"
            value = value.zfill(8 if ":" not in key else 32)
        except ValueError:
            value = key
        if len(self) < 65536:
            self[key] = value
        return value


_HEXIP = _HexIp()

# --------------------------------------------------------------------------- dates

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _tz_offset(tm: time.struct_time) -> str:
    off = tm.tm_gmtoff or 0
    sign = "+" if off >= 0 else "-"
    off = abs(off) // 60
    return f"{sign}{off // 60:02d}{off % 60:02d}"


def _clf(tm: time.struct_time) -> str:
    return (f"{tm.tm_mday:02d}/{MONTHS[tm.tm_mon - 1]}/{tm.tm_year:04d}"
            f":{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}")


class _SecondCache:
    """Formats a date once per second (one cache per style)."""

    __slots__ = ("sec", "text", "fmt")

    def __init__(self, fmt: Callable[[int], str]) -> None:
        self.sec = -1
        self.text = ""
        self.fmt = fmt

    def get(self, sec: int) -> str:
        if sec != self.sec:
            self.text = self.fmt(sec)
            self.sec = sec
        return self.text


_LOCAL = _SecondCache(lambda s: _clf(time.localtime(s)))
_GMT = _SecondCache(lambda s: _clf(time.gmtime(s)) + " +0000")
_LOCAL_TZ = _SecondCache(lambda s: _clf(time.localtime(s)) + " " + _tz_offset(time.localtime(s)))


class _MsCache:
    __slots__ = ("key", "text")

    def __init__(self) -> None:
        self.key = -1
        self.text = ""


_MS = _MsCache()


def date_ms(ts: float) -> str:
    """``21/Nov/2026:16:23:40.573`` in local time (%t, %tr); cached per millisecond."""
    # to the nearest whole µs first: 0.006 must not become 5.999 ms (C integers
    # when compiled, logfmt.pxd; a timestamp is never negative)
    us = ts * 1000000.0 + 0.5
    key = int(us) // 1000
    c = _MS
    if key != c.key:
        sec = key // 1000
        ms = key - sec * 1000
        lc = _LOCAL
        c.text = f"{lc.get(sec)}.{ms:03d}"
        c.key = key
    return c.text


def reset_date_caches() -> None:
    """Forget cached dates (after a time-zone change, e.g. ``time.tzset()``)."""
    for c in (_LOCAL, _GMT, _LOCAL_TZ):
        c.sec = -1
    _MS.key = -1


def date_gmt(ts: float) -> str:
    """``21/Nov/2026:16:23:40 +0000`` (%T, %trg)."""
    return _GMT.get(int(ts))


def date_local(ts: float) -> str:
    """``21/Nov/2026:16:23:40 +0100`` in local time with its offset (%Tl, %trl)."""
    return _LOCAL_TZ.get(int(ts))


# --------------------------------------------------------------------------- derived values


def _tq(t: Any) -> int:
    tr = t.t_request
    if tr < 0:
        return -1
    return max(t.t_handshake, 0) + max(t.t_idle, 0) + tr


def _tu(t: Any) -> int:
    return t.t_total - max(t.t_idle, 0)


def _td(t: Any) -> int:
    """Data transfer time: Tt minus everything before the response (HTTP) or the
    connection (TCP) was established; -1 when that point was never reached."""
    last = t.t_response if t.t_response >= 0 else -1
    if last < 0:
        return -1
    return t.t_total - sum(max(x, 0) for x in (t.t_handshake, t.t_idle, t.t_request,
                                                 t.t_queue, t.t_connect, t.t_response))


def _td_tcp(t: Any) -> int:
    if t.t_connect < 0:
        return -1
    return t.t_total - sum(max(x, 0) for x in (t.t_handshake, t.t_idle, t.t_queue,
                                                 t.t_connect))


def _split_url(url: bytes) -> tuple[bytes, bytes]:
    """(path-with-authority-form-kept, query incl. '?')."""
    q = url.find(b"?")
    if q < 0:
        return url, b""
    return url[:q], url[q:]


def _path_only(t: Any) -> bytes | None:
    if t.request_line is None:
        return None
    url = _split_url(t.url)[0]
    if url[:1] != b"/":
        i = url.find(b"://")
        if i >= 0:
            j = url.find(b"/", i + 3)
            url = url[j:] if j >= 0 else b""
    return url


def _path(t: Any) -> bytes | None:
    return None if t.request_line is None else _split_url(t.url)[0]


def _query(t: Any) -> bytes | None:
    return None if t.request_line is None else _split_url(t.url)[1]


def _uri(t: Any) -> bytes | None:
    return None if t.request_line is None else t.url


def _method(t: Any) -> bytes | None:
    return None if t.request_line is None else t.method


def _version(t: Any) -> bytes | None:
    if t.request_line is None:
        return None
    return t.version or b"HTTP/0.9"


# --------------------------------------------------------------------------- variables
#
# One row per %var: name -> (kind, expression). The expression is Python source over
# ``t`` (the txn) and the helpers in _ENV; ``kind`` says how flags apply:
#   num   integer, "%d"; X gives hex when ``hexfmt`` is set, Q is ignored
#   str   string through lf_text (Q, E, M apply; None/"" -> "-")
#   url   request-line style (#XX escaping, Q, E; "<BADREQ>" when no request)
#   raw   ASCII text never quoted (dates, termination codes)
#   ip    like str, X gives the address in hex
#   none  captures: render nothing when the frontend has no `capture ... header`
#         line of that side, else the expression, with {n} the number of captures


class Var:
    __slots__ = ("kind", "expr", "hexfmt", "doc", "decfmt")

    def __init__(self, kind: str, expr: str, doc: str, hexfmt: str | None = None,
                 decfmt: str = "%d") -> None:
        self.kind = kind
        self.expr = expr
        self.hexfmt = hexfmt
        self.doc = doc
        self.decfmt = decfmt


VARIABLES: dict[str, Var] = {
    "B": Var("num", "t.bytes_out", "bytes sent to the client, headers included"),
    "CC": Var("str", "getattr(t, 'cap_cc', None)", "captured request cookie (capture cookie)"),
    "CS": Var("str", "getattr(t, 'cap_cs', None)", "captured response cookie (capture cookie)"),
    "H": Var("str", "_HOSTNAME", "host name"),
    "HM": Var("url", "_method(t)", "HTTP method"),
    "HP": Var("url", "_path(t)", "request URI without query string"),
    "HPO": Var("url", "_path_only(t)", "path only (no scheme/authority, no query)"),
    "HQ": Var("url", "_query(t)", "query string including '?', empty when none"),
    "HU": Var("url", "_uri(t)", "request URI"),
    "HV": Var("url", "_version(t)", "HTTP version"),
    "ID": Var("str", "t.unique_id", "unique-id"),
    "ST": Var("num", "t.status", "status code (-1 = none)"),
    "T": Var("raw", "_date_gmt(t.accept_ts)", "accept date, GMT"),
    "Ta": Var("num", "t.t_active", "active time of the request"),
    "Tc": Var("num", "t.t_connect", "connect time"),
    "Td": Var("num", "_td(t)", "data transfer time"),
    "Th": Var("num", "t.t_handshake", "handshake time"),
    "Ti": Var("num", "t.t_idle", "idle time before the request"),
    "Tl": Var("raw", "_date_local(t.accept_ts)", "accept date, local with offset"),
    "Tq": Var("num", "_tq(t)", "Th + Ti + TR"),
    "TR": Var("num", "t.t_request", "time to receive the full request head"),
    "Tr": Var("num", "t.t_response", "server response time"),
    "Ts": Var("num", "int(t.accept_ts)", "accept timestamp (epoch s)", "%04X"),
    "Tt": Var("num", "t.t_total", "total session time"),
    "Tu": Var("num", "_tu(t)", "Tt - Ti"),
    "Tw": Var("num", "t.t_queue", "time waiting in queues"),
    "U": Var("num", "t.bytes_in", "bytes received from the client"),
    "ac": Var("num", "t.actconn", "process-wide concurrent connections"),
    "b": Var("str", "(t.backend_name or t.frontend_name)", "backend name"),
    "bc": Var("num", "t.beconn", "backend concurrent connections"),
    "bi": Var("ip", "(t.be_src[0] if getattr(t, 'be_src', None) else None)",
              "source address towards the server"),
    "bp": Var("port", "(t.be_src[1] if getattr(t, 'be_src', None) else None)",
              "source port towards the server", "%04X"),
    "bq": Var("num", "t.backend_queue", "backend queue position"),
    "ci": Var("ip", "t.client_ip", "client address"),
    "cp": Var("num", "t.client_port", "client port", "%04X"),
    "f": Var("str", "t.frontend_name", "frontend name"),
    "fc": Var("num", "t.feconn", "frontend concurrent connections"),
    "fi": Var("ip", "t.dst_ip", "address the client connected to"),
    "fp": Var("num", "t.dst_port", "port the client connected to", "%04X"),
    "ft": Var("str", "(t.frontend_name + '~' if t.frontend_tls else t.frontend_name)",
              "frontend name, '~' suffix over TLS"),
    "hr": Var("none", "_caps(t.cap_req, {n})", "captured request headers ({a|b})"),
    "hrl": Var("none", "_caps_list(t.cap_req, {n})",
               "captured request headers, CLF style (a b, '-' when empty)"),
    "hs": Var("none", "_caps(t.cap_res, {n})", "captured response headers ({a|b})"),
    "hsl": Var("none", "_caps_list(t.cap_res, {n})",
               "captured response headers, CLF style (a b, '-' when empty)"),
    "lc": Var("num", "_fmt.log_count", "lines logged by this frontend", "%04X"),
    "ms": Var("num", "(round(t.accept_ts * 1000000) // 1000 % 1000)",
              "accept date milliseconds (3 digits)", "%02X", "%03d"),
    "pid": Var("num", "t.pid", "process id", "%04X"),
    "r": Var("url", "t.request_line", "request line"),
    "rc": Var("raw", "(('+' + str(t.retries)) if t.redispatched else t.retries)",
              "retries ('+' prefix after a redispatch)"),
    "rt": Var("num", "getattr(t, 'req_counter', 0)", "request counter", "%04X"),
    "s": Var("str", "(t.server_name or '<NOSRV>')", "server name"),
    "sc": Var("num", "t.srvconn", "server concurrent connections"),
    "si": Var("ip", "getattr(t, 'srv_ip', None)", "server address"),
    # ("-" as HAProxy's when no server was tried)
    "sp": Var("port", "(getattr(t, 'srv_port', 0) if getattr(t, 'srv_ip', None) is not None "
              "else None)", "server port", "%04X"),
    "sq": Var("num", "t.srv_queue", "server queue position"),
    "sslc": Var("str", "_tls_cipher(t)", "TLS cipher of the client's connection"),
    "sslv": Var("str", "_tls_version(t)", "TLS version of the client's connection"),
    "t": Var("raw", "_date_ms(t.accept_ts)", "accept date with milliseconds"),
    "tr": Var("raw", "_date_ms(t.request_ts or t.accept_ts)", "request date with milliseconds"),
    "trg": Var("raw", "_date_gmt(t.request_ts or t.accept_ts)", "request date, GMT"),
    "trl": Var("raw", "_date_local(t.request_ts or t.accept_ts)", "request date, local with offset"),
    "ts": Var("raw", "_CODES[t.term]", "termination state (2 chars)"),
    "tsc": Var("raw", "_CODES[t.term + t.cookie_req + t.cookie_res]",
               "termination state with cookie status (4 chars)"),
}

# The variables a line waits for the end of the stream for (HAProxy 2.6's LW_BYTES
# class): a format with none of them is logged as soon as the response head (HTTP) or
# the server connection (TCP) is there, and so is any format under `option logasap`
WAITS_FOR_END = frozenset({"B", "ID", "Ta", "Tc", "Td", "Th", "Ti", "Tq", "TR", "Tr",
                           "Tt", "Tu", "Tw", "U", "ac", "bc", "bq", "fc", "rc", "sc",
                           "sq", "ts"})
# ... and those an `option logasap` frontend prefixes with '+' in every line it logs,
# early or not: the value may be short of what the stream went on to take
ASAP_PLUS = frozenset({"B", "Ta", "Tt", "Tu"})

# bytes a captured header value shows as #XX in a log line (HAProxy's hdr_encode_map)
_CAP_ESCAPE = {b: f"#{b:02X}" for b in (*range(0x20), *range(0x7F, 0x100))}
_CAP_ESCAPE.update({ord(c): f"#{ord(c):02X}" for c in '"#{|}'})
_CAP_TABLE = [_CAP_ESCAPE.get(b, chr(b)) for b in range(256)]


def _cap_text(value: bytes) -> str:
    return "".join([_CAP_TABLE[b] for b in value])


def _client_tls(t: Any) -> Any:
    """The client connection's ssl.SSLObject (lb.proxy.client), None on plain TCP."""
    return getattr(getattr(t, "conn", None), "tls", None)


def _tls_cipher(t: Any) -> str | None:
    tls = _client_tls(t)
    got = tls.cipher() if tls is not None else None
    return got[0] if got else None


def _tls_version(t: Any) -> str | None:
    tls = _client_tls(t)
    return tls.version() if tls is not None else None


def _caps(values: Sequence[bytes] | None, n: int) -> str:
    """`%hr` / `%hs`: ``{a|b}``, one slot per capture, empty when not captured."""
    if values is None:
        return "{" + "|" * (n - 1) + "}"
    return "{" + "|".join([_cap_text(v) for v in values]) + "}"


def _caps_list(values: Sequence[bytes] | None, n: int) -> str:
    """`%hrl` / `%hsl`: the values separated by spaces, "-" for an empty one."""
    if values is None:
        return " ".join(["-"] * n)
    return " ".join([_cap_text(v) or "-" for v in values])


_ENV_BASE: dict[str, Any] = {
    "_method": _method, "_path": _path, "_path_only": _path_only, "_query": _query,
    "_uri": _uri, "_version": _version, "_tq": _tq, "_tu": _tu, "_td": _td,
    "_date_ms": date_ms, "_date_gmt": date_gmt,
    "_date_local": date_local, "_CODES": _CODES, "_HEXIP": _HEXIP, "_caps": _caps,
    "_caps_list": _caps_list, "_tls_cipher": _tls_cipher, "_tls_version": _tls_version,
    "__builtins__": {
        "int": int, "getattr": getattr, "str": str, "round": round,
        # a compiled helper (tools/build_accel.py) called from the format runs in this
        # frame, and C code that imports (re.sub with a template) looks here for it
        "__import__": __import__},
}

# --------------------------------------------------------------------------- parser

class _Node:
    __slots__ = ("kind", "value", "opts")

    def __init__(self, kind: str, value: Any, opts: int = 0) -> None:
        self.kind = kind  # "text" | "sep" | "var" | "expr"
        self.value = value
        self.opts = opts


def _apply_flags(args: str, opts: int) -> int:
    for part in args.split(","):
        part = part.strip()
        if len(part) < 2 or part[0] not in "+-":
            continue
        bit = _FLAG_BITS.get(part[1:])
        if bit is None:
            continue  # HAProxy silently ignores unknown flags
        opts = opts | bit if part[0] == "+" else opts & ~bit
    return opts


def _expr_end(text: str, start: int) -> int:
    """Index of the ``]`` closing a ``%[`` (brackets inside parentheses/quotes skipped)."""
    depth = 0
    quote = ""
    i = start
    n = len(text)
    while i < n:
        c = text[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "]" and depth <= 0:
            return i
        i += 1
    return -1


def parse(text: str) -> list[_Node]:
    """Split a log-format into nodes (HAProxy's parse_logformat_string, merge-spaces mode)."""
    nodes: list[_Node] = []
    lit: list[str] = []
    defopts = OPT_MANDATORY
    i = 0
    n = len(text)

    def flush() -> None:
        if lit:
            nodes.append(_Node("text", "".join(lit)))
            lit.clear()

    while i < n:
        c = text[i]
        if c == " ":
            flush()
            nodes.append(_Node("sep", None))
            i += 1
            continue
        if c != "%":
            lit.append(c)
            i += 1
            continue
        i += 1
        if i >= n:
            raise LogFormatError("truncated line after '%'")
        c = text[i]
        if c == "%":
            lit.append("%")
            i += 1
            continue
        if c in "0123456789 \t":
            raise LogFormatError(
                f"unexpected variable name near '{c}' at position {i} line : '{text}'. "
                "Maybe you want to write a single '%', use the syntax '%%'")
        args = None
        if c == "{":
            end = text.find("}", i)
            if end < 0:
                raise LogFormatError(f"truncated line after '{text[i + 1:]}'")
            args = text[i + 1:end]
            i = end + 1
            if i >= n or not (text[i] == "[" or (text[i].isascii() and text[i].isalnum())):
                raise LogFormatError(
                    f"parse argument modifier without variable name near '%{{{args}}}'")
            c = text[i]
        opts = _apply_flags(args, defopts) if args is not None else defopts
        if c == "[":
            end = _expr_end(text, i + 1)
            if end < 0:
                raise LogFormatError(f"missing ']' after '{text[i + 1:]}'")
            body = text[i + 1:end]
            try:
                expr = _sample.parse_expr(body)
            except _sample.SampleError as e:
                raise LogFormatError(f"failed to parse sample expression <{body}> : {e}"
                                     ) from None
            flush()
            nodes.append(_Node("expr", expr, opts))
            i = end + 1
            continue
        if not (c.isascii() and c.isalpha()):
            continue  # HAProxy drops a lone '%' before another character
        j = i
        while j < n and text[j].isascii() and text[j].isalnum():
            j += 1
        name = text[i:j]
        i = j
        if name == "o":
            defopts = opts
            continue
        if name not in VARIABLES:
            raise LogFormatError(f"no such format variable '{name}'. If you wanted to emit "
                                 "the '%' character verbatim, you need to use '%%'")
        flush()
        nodes.append(_Node("var", name, opts))
    flush()
    return nodes


# --------------------------------------------------------------------------- compiler


class TrafficFormat:
    """A compiled log-format. ``render(txn) -> bytes`` (no trailing newline).

    ``log_count`` feeds ``%lc``; the caller (``lb.log.TrafficLog``) increments it.
    ``early``: lines are emitted when the response head (HTTP) or the server
    connection (TCP) is there rather than at the end (``option logasap``, or a format
    that waits for nothing of the end, ``WAITS_FOR_END``); ``asap``: compiled for
    ``option logasap`` (``ASAP_PLUS`` fields carry a '+').
    """

    __slots__ = ("text", "mode", "render", "log_count", "source", "early", "asap", "be_src")

    def __init__(self, text: str, mode: str, render: Callable[[Any], bytes],
                 source: str, early: bool = False, asap: bool = False,
                 be_src: bool = False) -> None:
        self.text = text
        self.mode = mode
        self.render = render
        self.log_count = 0
        self.source = source
        self.early = early
        self.asap = asap
        # %bi or %bp: each new server connection's own address is read (a system call)
        self.be_src = be_src

    def __repr__(self) -> str:
        return f"TrafficFormat({self.text!r})"


def _field(node: _Node, env: dict[str, Any], asap: bool = False) -> tuple[str, str | None]:
    """(%-format piece, Python expression or None) for one var/expr node; ``asap``:
    the frontend has ``option logasap`` (a '+' before the ``ASAP_PLUS`` values)."""
    piece, expr = _field_of(node, env)
    if asap and node.kind == "var" and node.value in ASAP_PLUS:
        piece = "+" + piece
    return piece, expr


def _field_of(node: _Node, env: dict[str, Any]) -> tuple[str, str | None]:
    opts = node.opts
    if node.kind == "expr":
        name = f"_x{len(env)}"
        env[name] = node.value.fetch
        tname = f"_tx{len(env)}"
        env[tname] = _text_fn(opts)
        return "%s", f"{tname}({name}(t))"
    var = VARIABLES[node.value]
    kind = var.kind
    if kind == "none":  # captures, present: their text is never quoted nor escaped again
        return "%s", var.expr.format(n=env["_counts"][node.value])
    if kind == "num":
        if opts & OPT_HEXA and var.hexfmt:
            return var.hexfmt, var.expr
        return var.decfmt, var.expr
    if kind == "port":  # a number, or "-" when there is none
        fname = f"_p{len(env)}"
        fmt = var.hexfmt if opts & OPT_HEXA and var.hexfmt else var.decfmt
        env[fname] = lambda v, f=fmt: "-" if v is None else f % v
        return "%s", f"{fname}({var.expr})"
    if kind == "raw":
        return "%s", var.expr
    if kind == "url":
        fname = f"_u{len(env)}"
        env[fname] = _url_fn(opts & ~OPT_QUOTE)
        return ('"%s"' if opts & OPT_QUOTE else "%s"), f"{fname}({var.expr})"
    if kind == "ip" and opts & OPT_HEXA:
        return "%s", f"_HEXIP[{var.expr} or '']"
    if var.expr == "None":  # never available: a constant
        return _text_fn(opts)(None).replace("%", "%%"), None
    if node.value in ("ft", "b", "s", "f", "ci") and opts & ~OPT_QUOTE == OPT_MANDATORY:
        # never empty, nothing to escape: no helper call, quotes go in the format
        return ('"%s"' if opts & OPT_QUOTE else "%s"), var.expr
    fname = f"_s{len(env)}"
    env[fname] = _text_fn(opts)
    return "%s", f"{fname}({var.expr})"


def compile_traffic_format(fmt_text: str, mode: str = "http", captures_req: int = 0,
                           captures_res: int = 0, logasap: bool = False) -> TrafficFormat:
    """Compile a log-format once. Raises ``LogFormatError`` with a user-facing message.

    ``mode`` ("http"/"tcp") only changes ``%Td`` (HAProxy measures it from the response
    in HTTP and from the connection in TCP). ``captures_req`` / ``captures_res``: how
    many `capture request|response header` lines the frontend has (%hr, %hs...).
    ``logasap``: the frontend's ``option logasap`` (see ``TrafficFormat``).
    """
    counts = {"hr": captures_req, "hrl": captures_req, "hs": captures_res,
              "hsl": captures_res}
    nodes = [nd for nd in parse(fmt_text) if not (nd.kind == "var"
                                                   and VARIABLES[nd.value].kind == "none"
                                                   and not counts.get(nd.value))]
    env: dict[str, Any] = dict(_ENV_BASE)
    env["_counts"] = counts
    env["_HOSTNAME"] = socket.gethostname()
    if mode == "tcp":
        env["_td"] = _td_tcp
    pieces: list[str] = []
    exprs: list[str] = []
    last_space = True  # leading separators print nothing
    for nd in nodes:
        if nd.kind == "sep":
            if not last_space:
                pieces.append(" ")
                last_space = True
            continue
        last_space = False
        if nd.kind == "text":
            pieces.append(nd.value.replace("%", "%%"))
            continue
        piece, expr = _field(nd, env, logasap)
        pieces.append(piece)
        if expr is not None:
            exprs.append(expr)
    fmt = "".join(pieces)
    if exprs:
        env["_F"] = fmt
        src = ("def render(t):\n"
               f"    return (_F % ({', '.join(exprs)},)).encode('utf-8', 'surrogateescape')\n")
    else:
        env["_C"] = (fmt % ()).encode("utf-8", "surrogateescape")
        src = "def render(t):\n    return _C\n"
    code = compile(src, "<log-format>", "exec")
    exec(code, env)  # noqa: S102 - source built from the VARIABLES table, never user text
    waits = any(nd.kind == "var" and nd.value in WAITS_FOR_END for nd in nodes)
    be_src = any(nd.kind == "var" and nd.value in ("bi", "bp") for nd in nodes)
    tf = TrafficFormat(fmt_text, mode, env["render"], src, logasap or not waits, logasap,
                       be_src)
    env["_fmt"] = tf
    return tf


def connect_line(txn: Any, mode: str) -> bytes:
    """HAProxy's default (format-less) accept line."""
    return (f"Connect from {txn.client_ip}:{txn.client_port} to {txn.dst_ip}:{txn.dst_port}"
            f" ({txn.frontend_name}/{'HTTP' if mode == 'http' else 'TCP'})"
            ).encode("utf-8", "surrogateescape")


def conn_error_line(src: str, sport: int, accept_ts: float, frontend: str,
                    listener: str, why: str) -> bytes:
    """The line HAProxy logs for a connection that ends before its session starts (no
    usable PROXY header): ``<client>:<port> [<accept date>] <frontend>/<listener>:
    <why>``, the listener being its bind ``name`` or else its number. A client on a
    unix socket is written ``unix:<listener number>``, as HAProxy does."""
    who = f"{src}:{sport}" if src else "unknown"
    return (f"{who} [{date_ms(accept_ts)}] {frontend}/{listener}: {why}"
            ).encode("utf-8", "surrogateescape")


def resolve_format_text(log_format: str | None, httplog: bool, httplog_clf: bool,
                        tcplog: bool, mode: str) -> str | None:
    """The format a frontend logs with, from its log-format / option lines.

    ``option httplog`` on a TCP frontend falls back to ``option tcplog`` as HAProxy does.
    """
    text = log_format
    if text is None:
        if httplog_clf:
            text = HTTPLOG_CLF_FORMAT
        elif httplog:
            text = HTTPLOG_FORMAT
        elif tcplog:
            text = TCPLOG_FORMAT
    if mode == "tcp" and text in (HTTPLOG_FORMAT, HTTPLOG_CLF_FORMAT):
        text = TCPLOG_FORMAT
    return text
