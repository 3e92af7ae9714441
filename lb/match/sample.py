"""Sample fetches and converters (HAProxy's ``sample.c`` / ``http_fetch.c`` in miniature).

Owns: the ``SampleCtx`` protocol the data plane's transaction satisfies and its
base class ``SampleSubject``, the
``FETCHES`` and ``CONVERTERS`` tables, and ``parse_expr`` which compiles
``fetch(args)[,conv(args)...]`` text once into a ``SampleExpr``.

A sample expression is used in two contexts (spec §3.5):
- *sample context* (``SampleExpr.fetch``): one value, e.g. ``hdr(x)`` = last value;
- *ACL context* (``SampleExpr.iter_values``): every value is produced in turn and
  converters are applied to each one.

Values are ``bytes`` (types str/bin/meth), ``int``, ``bool``, or an ``ipaddress``
address (type ip; ``fetch`` renders it as ASCII bytes). ``None`` means "no sample".

Pure: no asyncio, no sockets, no clock. Must not import anything from ``lb`` except
``lb.errors``/``lb.units`` (layer L1).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote_to_bytes

from lb import connerr
from lb.balance.keys import full_hash, hash_sdbm
from lb.match import authfetch, maps, payload, procfetch, sslfetch, stickfetch, variables
from lb.match import converters as cv
from lb.match.pattern import backrefs

# ---------------------------------------------------------------------- context


class SampleCtx(Protocol):
    """What a fetch may read from the transaction (see module docstring)."""

    method: bytes
    url: bytes
    version: bytes
    req_headers: list[tuple[bytes, bytes]]
    src: str
    src_port: int
    dst: str
    dst_port: int
    is_response: bool
    status: int
    res_headers: list[tuple[bytes, bytes]] | None
    vars: dict[str, Any]
    memo: dict[Any, Any]
    # ``memo`` caches parsed header values per transaction: the transaction must clear it
    # (or replace it) whenever it edits headers, the URL or the method.


class SampleSubject:
    """The base class of what a fetch reads (the fields of ``SampleCtx``):
    ``lb.proxy.txn.Txn`` derives from it.

    Compiled (``sample.pxd``), its fields are C struct members, so the fetches every
    request goes through (``hdr()``, ``path``) read them without an attribute lookup
    (issue #9). A fetch therefore takes a ``SampleSubject``; a test's context derives
    from it too.
    """

    __slots__ = ("method", "url", "version", "req_headers", "src", "src_port", "dst",
                 "dst_port", "is_response", "status", "res_headers", "vars", "memo")


class SampleError(Exception):
    """Invalid sample expression; ``str()`` is HAProxy's sample-context message.

    Like every message of ``lb.match``, the text has no final period: HAProxy prints
    ``<context> : <text>.``. ``kind`` tells the ACL parser how HAProxy words the same
    problem in an ACL (see ``acl._acl_message``): "fetch-syntax", "fetch-invalid",
    "conv", "unknown-fetch", "missing-fetch", "trailing"; ``name`` is the fetch or
    converter concerned and ``detail`` the inner reason.
    """

    def __init__(self, text: str, kind: str = "conv", name: str = "", detail: str = "",
                 end: int = -1) -> None:
        super().__init__(text)
        self.kind = kind
        self.name = name
        self.detail = detail
        self.end = end  # for "trailing": where the expression stopped


# output / input types
T_ANY = "any"
T_BOOL = "bool"
T_INT = "int"
T_IP = "ip"
T_STR = "str"
T_BIN = "bin"
T_METH = "meth"

# where a fetch has data
W_CONN = "conn"
W_REQ = "req"
W_RES = "res"
_ALL = frozenset((W_CONN, W_REQ, W_RES))
_HTTP = frozenset((W_REQ, W_RES))  # follows the rule's direction (hdr, fhdr)
# Request-only fetches give no sample while http-response rules run (as in HAProxy,
# where the request head is gone by then); response-only ones none on the request side.
_REQ = frozenset((W_REQ,))
_RES = frozenset((W_RES,))
# the server is known once one is chosen: response rules and logs (srv_name, srv_id)
W_SRV = "srv"
_SRV = frozenset((W_RES, W_SRV))

# What HAProxy names the data a fetch needs, for "may not be reliably used here".
NEEDS_TEXT = {W_REQ: "HTTP request headers", W_RES: "HTTP response headers",
              W_CONN: "layer 4 connection", W_SRV: "server"}

IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address
Value = bytes | int | bool | IPAddr

_LWS = b" \t"
_HOSTNAME = socket.gethostname().encode("utf-8", "surrogateescape")


# ------------------------------------------------------------ header helpers


def _closing_quote(value: bytes, start: int) -> int:
    """Index of the '"' closing a quoted string opened before ``start`` (-1: none).

    A quote preceded by an odd number of backslashes is escaped. Work is per quote and
    backslash run, not per byte.
    """
    j = start
    while True:
        k = value.find(b'"', j)
        if k < 0:
            return -1
        b = k - 1
        while b >= start and value[b] == 0x5C:
            b -= 1
        if (k - 1 - b) % 2 == 0:
            return k
        j = k + 1


def _find_byte(value: bytes, byte: int) -> int:
    """``value.find(bytes([byte]))`` for short values (header values, request targets).

    Compiled, a C loop over the bytes (lb/match/sample.pxd): ``bytes.find`` parses its
    arguments from a tuple (about 500 instructions a call), and ``b"," in value``
    first tries the needle as an int and clears a TypeError (about 1,800).
    """
    i = 0
    for c in value:
        if c == byte:
            return i
        i += 1
    return -1


def _trim(value: bytes) -> bytes:
    """``value.strip(_LWS)``, without the call when neither end is a space or tab."""
    n = len(value)
    if n == 0:
        return value
    first = value[0]
    last = value[n - 1]
    if first != 32 and first != 9 and last != 32 and last != 9:
        return value
    return value.strip(_LWS)


def split_values(value: bytes) -> list[bytes]:
    """Split one header line at commas outside double quotes; trim each value."""
    if _find_byte(value, 44) < 0:  # no ","
        return [_trim(value)]
    if _find_byte(value, 34) < 0:  # no '"'
        return [v.strip(_LWS) for v in value.split(b",")]
    out: list[bytes] = []
    start = i = 0
    find = value.find
    while True:
        c = find(b",", i)
        if c < 0:
            break
        q = find(b'"', i, c)
        if q < 0:
            out.append(value[start:c].strip(_LWS))
            start = i = c + 1
            continue
        k = _closing_quote(value, q + 1)
        if k < 0:
            break  # unterminated quote: the rest is one value
        i = k + 1
    out.append(value[start:].strip(_LWS))
    return out


def _headers(ctx: SampleCtx, response: bool) -> list[tuple[bytes, bytes]]:
    if response:
        return ctx.res_headers or []
    return ctx.req_headers


def _values(hdrs: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    """All comma-separated values of header ``name`` (lower-case) in order: the shared
    empty list when there is no such header (hot path: a rule testing a header most
    requests lack makes no list). Callers must not mutate the result."""
    first: bytes | None = None
    lines: list[bytes] | None = None
    for n, v in hdrs:
        if n == name:
            if first is None:
                first = v
            elif lines is None:
                lines = [first, v]
            else:
                lines.append(v)
    if first is None:
        return _NO_VALUES  # type: ignore[return-value]
    if lines is None:
        if _find_byte(first, 44) < 0:  # no ","
            return [_trim(first)]
        return split_values(first)
    out: list[bytes] = []
    for v in lines:
        out.extend(split_values(v))
    return out


def _hvalues(ctx: SampleCtx, resp: bool, name: bytes) -> list[bytes]:
    """``_values`` memoised in ``ctx.memo`` (the transaction clears it on header edits).

    The returned list is shared: callers must not mutate it.
    """
    memo = ctx.memo
    key: Any = ("res", name) if resp else name
    vals = memo.get(key)
    if vals is None:
        vals = memo[key] = _values((ctx.res_headers or []) if resp else ctx.req_headers, name)
    return vals


_NO_VALUES: list[Value] = []  # shared "no sample" result (never mutated)


class Fetch:
    """A fetch bound to its arguments at compile time.

    ``values(ctx)`` (or calling it) gives its ACL-context values, none outside the
    fetch's direction (``no_req``/``no_res``). The header fetches below specialise it;
    compiled, an ACL test calls ``values`` as a C method (lb/match/sample.pxd).
    """

    __slots__ = ("fn", "args", "no_req", "no_res")

    def __init__(self, fn: Callable[[SampleCtx, tuple], list[Value]] | None, args: tuple,
                 no_req: bool = False, no_res: bool = False) -> None:
        self.fn = fn
        self.args = args
        self.no_req = no_req
        self.no_res = no_res

    def values(self, ctx: SampleCtx) -> list[Value]:
        if self.no_req or self.no_res:
            if self.no_res if ctx.is_response else self.no_req:
                return _NO_VALUES
        return self.fn(ctx, self.args)  # type: ignore[misc]

    def __call__(self, ctx: SampleCtx) -> list[Value]:
        return self.values(ctx)


class HdrFetch(Fetch):
    """``hdr(name)`` and its request/response forms: every comma-separated value of
    one header, memoised in ``ctx.memo`` (hot path: several per WebSocket handshake).

    ``direction`` is -1 for ``hdr`` (follows the rule's side), 0 request-only,
    1 response-only.
    """

    __slots__ = ("name", "rkey", "direction")

    def __init__(self, name: bytes, direction: int) -> None:
        Fetch.__init__(self, None, (name,))
        self.name = name
        self.rkey = ("res", name)
        self.direction = direction

    def values(self, ctx: SampleCtx) -> list[Value]:
        resp = ctx.is_response
        if self.direction >= 0 and resp != self.direction:
            return _NO_VALUES
        memo = ctx.memo
        if resp:
            vals = memo.get(self.rkey)
            if vals is None:
                vals = memo[self.rkey] = _values(ctx.res_headers or _NO_VALUES, self.name)
        else:
            vals = memo.get(self.name)
            if vals is None:
                vals = memo[self.name] = _values(ctx.req_headers, self.name)
        return vals  # type: ignore[no-any-return]


class HdrCntFetch(Fetch):
    """``hdr_cnt(name)`` on one side: the number of values of one header."""

    __slots__ = ("name", "response")

    def __init__(self, name: bytes, response: bool) -> None:
        Fetch.__init__(self, None, (name,))
        self.name = name
        self.response = response

    def values(self, ctx: SampleCtx) -> list[Value]:
        if bool(ctx.is_response) != self.response:
            return _NO_VALUES  # request-only / response-only fetch
        return [len(_hvalues(ctx, self.response, self.name))]


_PATH_KEY = "path"  # ctx.memo key of the path (header keys are bytes or tuples)


class PathFetch(Fetch):
    """``path``: the request path, computed once per transaction (``memo``; a rule
    that rewrites the URL clears it). Path ACLs are common: is_static, is_admin..."""

    __slots__ = ()

    def __init__(self) -> None:
        Fetch.__init__(self, _f_path, (), False, True)

    def values(self, ctx: SampleCtx) -> list[Value]:
        if ctx.is_response:
            return _NO_VALUES  # request-only
        memo = ctx.memo
        vals = memo.get(_PATH_KEY)
        if vals is None:
            p = _path(ctx.url)
            vals = memo[_PATH_KEY] = _NO_VALUES if p is None else [p]
        return vals  # type: ignore[no-any-return]


Binder = Callable[[tuple], Fetch | None]


def _bind_hdr_cnt(response: bool) -> Binder:
    def bind(args: tuple) -> Fetch | None:
        if not args or not args[0]:
            return None
        return HdrCntFetch(args[0], response)
    return bind


def _bind_hdr(response: bool | None) -> Binder:
    """Specialise a header fetch for one header name at compile time (hot path).

    The returned fetch includes the direction check (``response`` None = follows the
    rule's direction; True/False = response-/request-only).
    """
    direction = -1 if response is None else int(response)

    def bind(args: tuple) -> Fetch | None:
        if not args or not args[0]:
            return None
        return HdrFetch(args[0], direction)
    return bind


def _lines(hdrs: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [v.strip(_LWS) for n, v in hdrs if n == name]


def _pick(vals: list[bytes], occ: int | None) -> bytes | None:
    """Sample-context occurrence choice (None/0 = last, >0 from first, <0 from last)."""
    if not vals:
        return None
    if not occ:
        return vals[-1]
    if occ > 0:
        return vals[occ - 1] if occ <= len(vals) else None
    return vals[occ] if -occ <= len(vals) else None


_LEADING_INT = re.compile(rb"([+-]?)0*([0-9]{0,20})")


def read_int(s: bytes) -> int | None:
    """Leading signed decimal integer (HAProxy ``read_int64``); None if empty.

    ``12abc`` is 12, ``foo`` is 0; values beyond the signed 64-bit range are clamped.
    """
    if not s:
        return None
    m = _LEADING_INT.match(s)
    sign, digits = m.group(1), m.group(2)  # type: ignore[union-attr]
    v = int(digits) if digits else 0
    if sign == b"-":
        return -v if v <= 2**63 else -2**63
    return v if v < 2**63 else 2**63 - 1


def parse_ip(s: bytes | str) -> IPAddr | None:
    """Parse an IPv4/IPv6 address, None when invalid."""
    try:
        if isinstance(s, bytes):
            s = s.decode("ascii")
        return ipaddress.ip_address(s)
    except (ValueError, UnicodeDecodeError):
        return None


def _ip_of_header(v: bytes) -> IPAddr | None:
    ip = parse_ip(v)
    if ip is None and v.count(b":") == 1:  # IPv4 with a port
        ip = parse_ip(v.split(b":", 1)[0])
        if ip is not None and ip.version != 4:
            return None
    return ip


# ------------------------------------------------------------ URL helpers


def _path(url: bytes) -> bytes | None:
    """Path part of a request target (scheme/authority skipped, query dropped)."""
    if not url or url[0] != 47:  # not origin form ("/...")
        p = url.find(b"://")
        if p < 0:
            return None
        s = url.find(b"/", p + 3)
        if s < 0:
            return None
        url = url[s:]
    q = _find_byte(url, 63)  # "?"
    return url if q < 0 else url[:q]


def _query(url: bytes) -> bytes | None:
    q = url.find(b"?")
    return None if q < 0 else url[q + 1:]


def _url_params(url: bytes, name: bytes, delim: bytes) -> list[bytes]:
    q = _query(url)
    if q is None:
        return []
    out = []
    for part in q.split(delim):
        k, eq, v = part.partition(b"=")
        if not name or k == name:
            if eq or not name:
                out.append(v)
    return out


def _cookies(ctx: SampleCtx, name: bytes, response: bool = False,
             keep_empty: bool = False) -> list[bytes]:
    out = []
    hname = b"set-cookie" if response else b"cookie"
    for n, line in _headers(ctx, response):
        if n != hname:
            continue
        for part in line.split(b";"):
            k, eq, v = part.strip(_LWS).partition(b"=")
            if not eq:
                continue
            if not name or k.strip(_LWS) == name:
                v = v.strip(_LWS)
                if v or keep_empty:  # HAProxy skips empty values when looking one up
                    out.append(v)
            if response:
                break  # only the first pair of a Set-Cookie line is the cookie
    return out


# ------------------------------------------------------------ fetch functions
# Every fetch takes (ctx, args) and returns the list of values of the ACL context (an
# empty list = no sample); SampleExpr picks one of them for the sample context. Rows may
# add a ``bind`` that specialises the fetch for its arguments at compile time.


def _arg_name(args: tuple) -> bytes:
    return args[0] if args else b""


def _all_values(hdrs: list[tuple[bytes, bytes]]) -> list[bytes]:
    out: list[bytes] = []
    for _, v in hdrs:
        out.extend(split_values(v))
    return out


def _f_hdr(response: bool | None) -> Callable[[SampleCtx, tuple], list[Value]]:
    def fn(ctx: SampleCtx, args: tuple) -> list[Value]:
        if not args:
            return []  # "hdr" without parentheses: no sample (HAProxy 2.6)
        resp = ctx.is_response if response is None else response
        name = args[0]
        if not name:  # "hdr()": every value of every header
            return _all_values(_headers(ctx, resp))  # type: ignore[return-value]
        return _hvalues(ctx, resp, name)  # type: ignore[return-value]
    return fn


def _f_fhdr(response: bool | None) -> Callable[[SampleCtx, tuple], list[Value]]:
    def fn(ctx: SampleCtx, args: tuple) -> list[Value]:
        if not args:
            return []
        resp = ctx.is_response if response is None else response
        name = args[0]
        if not name:
            return [v.strip(_LWS) for _, v in _headers(ctx, resp)]
        return _lines(_headers(ctx, resp), name)  # type: ignore[return-value]
    return fn


def _f_hdr_cnt(response: bool | None, full: bool) -> Callable[[SampleCtx, tuple], list[Value]]:
    def fn(ctx: SampleCtx, args: tuple) -> list[Value]:
        name = _arg_name(args)
        resp = ctx.is_response if response is None else response
        hdrs = _headers(ctx, resp)
        if full:
            return [sum(1 for n, _ in hdrs if not name or n == name)]
        if name:
            return [len(_hvalues(ctx, resp, name))]
        return [sum(len(split_values(v)) for _, v in hdrs)]
    return fn


def _f_hdr_val(ctx: SampleCtx, args: tuple) -> list[Value]:
    vals = _f_hdr(None)(ctx, args)
    return [read_int(v) or 0 for v in vals]  # type: ignore[arg-type]


def _f_hdr_ip(ctx: SampleCtx, args: tuple) -> list[Value]:
    out: list[Value] = []
    for v in _f_hdr(None)(ctx, args):
        ip = _ip_of_header(v)  # type: ignore[arg-type]
        if ip is not None:
            out.append(ip)
    return out


def _f_method(ctx: SampleCtx, args: tuple) -> list[Value]:
    return [ctx.method]


def _f_path(ctx: SampleCtx, args: tuple) -> list[Value]:
    p = _path(ctx.url)
    return [] if p is None else [p]


def _f_pathq(ctx: SampleCtx, args: tuple) -> list[Value]:
    p = _path(ctx.url)
    if p is None:
        return []
    q = _query(ctx.url)
    return [p if q is None else p + b"?" + q]


def _f_url(ctx: SampleCtx, args: tuple) -> list[Value]:
    return [ctx.url]


def _f_query(ctx: SampleCtx, args: tuple) -> list[Value]:
    q = _query(ctx.url)
    return [] if q is None else [q]


def _f_base(ctx: SampleCtx, args: tuple) -> list[Value]:
    p = _path(ctx.url)
    hosts = _values(ctx.req_headers, b"host")
    if hosts and hosts[0]:
        return [hosts[0] + (p or b"")]  # "OPTIONS *" still has a base: the host
    return [] if p is None else [p]


def _f_capture_req_method(ctx: SampleCtx, args: tuple) -> list[Value]:
    """The method as received, before any rule rewrote it."""
    return [getattr(ctx, "orig_method", None) or ctx.method]


def _f_capture_req_uri(ctx: SampleCtx, args: tuple) -> list[Value]:
    """The target as received, in origin form (HAProxy 2.6.12 drops the scheme and
    authority of an absolute-form target here)."""
    url = getattr(ctx, "orig_url", None) or ctx.url
    if url[:1] != b"/":
        p = url.find(b"://")
        if p >= 0:
            s = url.find(b"/", p + 3)
            url = url[s:] if s >= 0 else b"/"
    return [url]


def _f_capture_req_ver(ctx: SampleCtx, args: tuple) -> list[Value]:
    return [b"HTTP/" + ctx.version] if ctx.version else []


def _f_capture_hdr(slots: str) -> Callable[[SampleCtx, tuple], list[Value]]:
    """capture.req.hdr(N) / capture.res.hdr(N): what slot N of the frontend's
    `capture request|response header` (or a `capture` rule) holds; nothing when the
    slot does not exist or caught nothing (HAProxy has no value for a header that
    was absent; lb keeps absent and empty alike, so an empty header gives none too)."""
    def fetch(ctx: SampleCtx, args: tuple) -> list[Value]:
        caps = getattr(ctx, slots, None)
        idx = args[0] if args else 0
        if caps is None or not 0 <= idx < len(caps) or not caps[idx]:
            return []
        return [caps[idx]]
    return fetch


def _f_base32(ctx: SampleCtx, args: tuple) -> list[Value]:
    """HAProxy's 32-bit hash of the Host value and the path (sdbm, then avalanche)."""
    p = _path(ctx.url) or b""
    hosts = _values(ctx.req_headers, b"host")
    return [full_hash(hash_sdbm((hosts[0] if hosts else b"") + p))]


def _f_base32_src(ctx: SampleCtx, args: tuple) -> list[Value]:
    """``base32`` as 4 big-endian bytes followed by the packed client address."""
    src = _memo_ip(ctx, "src", ctx.src)
    if not src:
        return []
    return [_f_base32(ctx, args)[0].to_bytes(4, "big") + src[0].packed]  # type: ignore[union-attr]


_URL_SCHEME_PORTS = {b"http": 80, b"https": 443}


def _url_authority(url: bytes) -> tuple[IPAddr, int] | None:
    """The numeric address and port of an absolute-form target (the scheme's port by
    default); None for an origin-form target or a host name, as in HAProxy."""
    scheme, sep, rest = url.partition(b"://")
    port = _URL_SCHEME_PORTS.get(scheme.lower())
    if not sep or port is None:
        return None
    authority = rest.split(b"/", 1)[0].split(b"?", 1)[0]
    if authority.startswith(b"["):  # [IPv6]:port
        end = authority.find(b"]")
        host, port_text = authority[1:end], authority[end + 1:].removeprefix(b":")
    else:
        host, _, port_text = authority.partition(b":")
    if port_text:
        if not port_text.isdigit():
            return None
        port = int(port_text)
    ip = parse_ip(host)
    return None if ip is None else (ip, port)


def _f_url_ip(ctx: SampleCtx, args: tuple) -> list[Value]:
    found = _url_authority(ctx.url)
    return [] if found is None else [found[0]]


def _f_url_port(ctx: SampleCtx, args: tuple) -> list[Value]:
    found = _url_authority(ctx.url)
    return [] if found is None else [found[1]]


def _f_url_param(ctx: SampleCtx, args: tuple) -> list[Value]:
    name = _arg_name(args)
    delim = args[1] if len(args) > 1 and args[1] else b"&"
    return _url_params(ctx.url, name, delim)  # type: ignore[return-value]


def _f_urlp_val(ctx: SampleCtx, args: tuple) -> list[Value]:
    return [read_int(v) or 0 for v in _f_url_param(ctx, args)]  # type: ignore[arg-type]


# Names and ids of the stream's proxies and server, read from the transaction when it
# has them (lb.proxy.txn.Txn: fe, be, srv, conn, unique_id); a test's bare context
# has none and gets no sample. Before a backend is chosen, the backend is the
# frontend itself, as in HAProxy.
def _proxy(ctx: SampleCtx, which: str) -> Any:
    px = getattr(ctx, which, None)
    if px is None and which == "be":
        px = getattr(ctx, "fe", None)
    return px


def _f_px_name(which: str) -> Callable[[SampleCtx, tuple], list[Value]]:
    def fn(ctx: SampleCtx, args: tuple) -> list[Value]:
        px = _proxy(ctx, which)
        return [] if px is None else [px.name.encode("utf-8", "surrogateescape")]
    return fn


def _f_px_id(which: str) -> Callable[[SampleCtx, tuple], list[Value]]:
    def fn(ctx: SampleCtx, args: tuple) -> list[Value]:
        px = _proxy(ctx, which)
        if px is None:
            return []
        puid = getattr(px, "puid", None)
        if puid is None:
            puid = getattr(getattr(px, "model", None), "puid", None)
        return [] if puid is None else [puid]
    return fn


# The listening socket the client came in through: the client connection's listener
# (lb.proxy.client.ClientConn.listener, an lb.proxy.listener.Listener) and its `bind`
# (lb.config.model.Bind). A test's bare context has none and gets no sample.
def _bind_of(ctx: SampleCtx) -> Any:
    listener = getattr(getattr(ctx, "conn", None), "listener", None)
    return getattr(listener, "bind", None)


def _f_so_id(ctx: SampleCtx, args: tuple) -> list[Value]:
    luid = getattr(_bind_of(ctx), "luid", None)
    return [] if luid is None else [luid]


def _f_so_name(ctx: SampleCtx, args: tuple) -> list[Value]:
    name = getattr(_bind_of(ctx), "name", None)  # no sample when the bind has no name
    return [] if name is None else [name.encode("utf-8", "surrogateescape")]


# The PROXY header the client connection started with (`accept-proxy`): the client
# connection's ``pp_header`` (an lb.http.proxyproto.Header), None when there was none.
def _pp_header_of(ctx: SampleCtx) -> Any:
    return getattr(getattr(ctx, "conn", None), "pp_header", None)


def _f_fc_err(ctx: SampleCtx, args: tuple) -> list[Value]:
    """The code of the error that ended the client connection (0: none, so far)."""
    return [connerr.code_of(getattr(getattr(ctx, "conn", None), "err_text", None))]


def _f_fc_err_str(ctx: SampleCtx, args: tuple) -> list[Value]:
    """... and its text ("Success" for none), as HAProxy 2.6.12 gives them."""
    return [connerr.TEXTS[connerr.code_of(getattr(getattr(ctx, "conn", None), "err_text",
                                                  None))]]


def _f_fc_rcvd_proxy(ctx: SampleCtx, args: tuple) -> list[Value]:
    return [_pp_header_of(ctx) is not None]


def _f_fc_pp(field: str) -> Callable[[SampleCtx, tuple], list[Value]]:
    """A v2 TLV the header carried (AUTHORITY, UNIQUE_ID); no sample without one."""
    def fn(ctx: SampleCtx, args: tuple) -> list[Value]:
        value = getattr(_pp_header_of(ctx), field, None)
        return [] if value is None else [value]
    return fn


def _f_res_comp(ctx: SampleCtx, args: tuple) -> list[Value]:
    return [getattr(ctx, "comp", None) is not None]  # a Compressor (lb.http.compress)


def _f_res_comp_algo(ctx: SampleCtx, args: tuple) -> list[Value]:
    c = getattr(ctx, "comp", None)
    return [] if c is None else [c.algo.name.encode()]


def _f_hostname(ctx: SampleCtx, args: tuple) -> list[Value]:
    return [_HOSTNAME]


def _f_http_first_req(ctx: SampleCtx, args: tuple) -> list[Value]:
    conn = getattr(ctx, "conn", None)
    nreq = getattr(conn, "nreq", None)
    return [] if nreq is None else [nreq <= 1]


def _f_unique_id(ctx: SampleCtx, args: tuple) -> list[Value]:
    uid = getattr(ctx, "unique_id", None)
    return [] if uid is None else [uid.encode("latin-1")]


def _f_hdr_names(ctx: SampleCtx, args: tuple) -> list[Value]:
    """The request's header names in order, as lb keeps them (lower-cased, as HAProxy's
    H1 layer does), joined by the delimiter (default ``,``)."""
    delim = args[0] if args and args[0] else b","
    return [delim.join(n for n, _ in ctx.req_headers)]


def _f_ver(ctx: SampleCtx, args: tuple) -> list[Value]:
    return [ctx.version] if ctx.version else []


def _f_cook(ctx: SampleCtx, args: tuple) -> list[Value]:
    return _cookies(ctx, _arg_name(args))  # type: ignore[return-value]


def _f_cook_cnt(ctx: SampleCtx, args: tuple) -> list[Value]:
    name = _arg_name(args)
    return [len(_cookies(ctx, name, keep_empty=not name))]


def _f_cook_val(ctx: SampleCtx, args: tuple) -> list[Value]:
    return [read_int(v) or 0 for v in _cookies(ctx, _arg_name(args))]


def _f_scook(ctx: SampleCtx, args: tuple) -> list[Value]:
    if not ctx.is_response:
        return []
    return _cookies(ctx, _arg_name(args), response=True)  # type: ignore[return-value]


def _memo_ip(ctx: SampleCtx, key: str, text: str) -> list[Value]:
    memo = ctx.memo
    try:
        ip = memo[key]
    except KeyError:
        ip = memo[key] = parse_ip(text)
    return [] if ip is None else [ip]


def _f_src(ctx: SampleCtx, args: tuple) -> list[Value]:
    return _memo_ip(ctx, "src", ctx.src)


def _f_dst(ctx: SampleCtx, args: tuple) -> list[Value]:
    return _memo_ip(ctx, "dst", ctx.dst)


def _f_src_port(ctx: SampleCtx, args: tuple) -> list[Value]:
    return [ctx.src_port]


def _f_dst_port(ctx: SampleCtx, args: tuple) -> list[Value]:
    return [ctx.dst_port]


def _f_status(ctx: SampleCtx, args: tuple) -> list[Value]:
    return [ctx.status] if ctx.is_response and ctx.status else []


def _f_var(ctx: SampleCtx, args: tuple) -> list[Value]:
    v = variables.get(ctx, args[0].decode("latin-1"))
    if v is None:
        return [args[1]] if len(args) > 1 else []  # var(<name>,<default>)
    if isinstance(v, str):
        v = v.encode("utf-8", "surrogateescape")
    return [v]


def _check_var_name(args: tuple) -> str | None:
    return variables.name_error(args[0].decode("latin-1")) if args else variables.EMPTY_NAME


def _const(value: Value) -> Callable[[SampleCtx, tuple], list[Value]]:
    res: list[Value] = [value]

    def fn(ctx: SampleCtx, args: tuple) -> list[Value]:
        return res
    return fn


_TRUE: list[Value] = [True]


def _f_wait_end(ctx: SampleCtx, args: tuple) -> list[Value]:
    """True once the content inspection is final (`tcp-request inspect-delay` over,
    or the client done): until then no sample, which may change, so a rule on
    `WAIT_END` holds the connection for the whole delay (HAProxy's
    smp_fetch_wait_end). Everywhere else it is final: true."""
    if getattr(ctx, "inspect_final", True):
        return _TRUE
    ctx.may_change = True  # type: ignore[attr-defined]
    return []


_PROTO_HTTP: list[Value] = [True]


def _f_proto_http(ctx: SampleCtx, args: tuple) -> list[Value]:
    """True for an HTTP request; a `mode tcp` session says whether its first bytes
    make one (``raw_http``, lb.proxy.tcp)."""
    return _PROTO_HTTP if getattr(ctx, "raw_http", True) else []


def _f_str(ctx: SampleCtx, args: tuple) -> list[Value]:
    return [args[0]]


def _f_int(ctx: SampleCtx, args: tuple) -> list[Value]:
    return [args[0]]


def _check_bin(args: tuple) -> str | None:
    """``bin(<hex>)``: HAProxy 2.6.12's texts (an empty argument prints "(null)")."""
    text = args[0] if args else b""
    if not text:
        return "(null)"
    if len(text) % 2:
        return "an even number of hex digit is expected"
    for c in text:
        if c not in _HEX_DIGITS:
            return f"an hex digit is expected (found '{chr(c)}')"
    return None


_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


def _f_bin(ctx: SampleCtx, args: tuple) -> list[Value]:
    return [bytes.fromhex(args[0].decode("ascii"))]


def _f_meth(ctx: SampleCtx, args: tuple) -> list[Value]:
    return [args[0] if args else b""]


def _f_bool(ctx: SampleCtx, args: tuple) -> list[Value]:
    return [args[0].lower() in (b"true", b"1")]


def _check_bool(args: tuple) -> str | None:
    """`bool(<value>)` takes HAProxy's four spellings, in any case."""
    if args[0].lower() in (b"true", b"false", b"1", b"0"):
        return None
    return "Expects 'true', 'false', '0' or '1'"


# ------------------------------------------------------------ argument specs

A_STR = "str"  # raw string (bytes)
A_HDR = "hdr"  # header name: lower-cased bytes
A_INT = "int"  # integer
A_OCC = "occ"  # header occurrence (integer >= -10)
A_VAR = "var"  # variable name
A_IPV4 = "ipv4"  # an IPv4 address (inet_pton)
A_IPV6 = "ipv6"  # an IPv6 address (inet_pton)
# Names resolved once the whole configuration is read (``ProxyRef``): a backend or a
# frontend (str, "" = the current one), a server ((backend or None, server) tuple).
A_BE = "be"
A_FE = "fe"
A_SRV = "srv"
A_TBL = "tbl"  # a stick table (str, "" = the current proxy's)
A_TBLX = "tblx"  # a stick table only when named (sc_*: else the tracked entry's own)
A_USR = "usr"  # a userlist (str)


@dataclass(frozen=True, slots=True)
class FetchDef:
    """One row of ``FETCHES``."""

    name: str
    fn: Callable[[SampleCtx, tuple], list[Value]]
    args: tuple[str, ...]  # argument kinds, in order
    min_args: int
    out: str  # output type
    where: frozenset[str]
    occ_index: int = -1  # position of the occurrence argument (-1 = none)
    first: bool = False  # sample context takes the first value instead of the last
    first_if_no_name: bool = False  # ... only when the name argument is absent (cook)
    # optional compile-time specialisation: args -> a Fetch including the direction
    # check (used instead of fn), or None when it has nothing better for these args
    bind: Callable[[tuple], Fetch | None] | None = None
    # optional load-time check of the typed arguments: the reason they are invalid
    check: Callable[[tuple], str | None] | None = None


def _row(name: str, fn: Callable[[SampleCtx, tuple], list[Value]], args: tuple[str, ...],
         min_args: int, out: str, where: frozenset[str], **kw: Any) -> tuple[str, FetchDef]:
    return name, FetchDef(name, fn, args, min_args, out, where, **kw)


_HDR_ARGS = (A_HDR, A_OCC)

# Alphabetical. ACL-only suffix keywords (hdr_beg, path_end...) live in acl.ACL_KEYWORDS.
FETCHES: dict[str, FetchDef] = dict((
    _row("always_false", _const(False), (), 0, T_BOOL, _ALL),
    _row("always_true", _const(True), (), 0, T_BOOL, _ALL),
    _row("base", _f_base, (), 0, T_STR, _REQ),
    _row("base32", _f_base32, (), 0, T_INT, _REQ),
    _row("base32+src", _f_base32_src, (), 0, T_BIN, _REQ),
    _row("bin", _f_bin, (A_STR,), 1, T_BIN, _ALL, check=_check_bin),
    _row("bool", _f_bool, (A_STR,), 1, T_BOOL, _ALL, check=_check_bool),
    _row("capture.req.hdr", _f_capture_hdr("cap_req"), (A_INT,), 1, T_STR, _ALL),
    _row("capture.req.method", _f_capture_req_method, (), 0, T_STR, _ALL),
    _row("capture.req.uri", _f_capture_req_uri, (), 0, T_STR, _ALL),
    _row("capture.req.ver", _f_capture_req_ver, (), 0, T_STR, _ALL),
    _row("capture.res.hdr", _f_capture_hdr("cap_res"), (A_INT,), 1, T_STR, _RES),
    _row("cook", _f_cook, (A_STR,), 0, T_STR, _REQ, first_if_no_name=True),
    _row("cook_cnt", _f_cook_cnt, (A_STR,), 0, T_INT, _REQ),
    _row("cook_val", _f_cook_val, (A_STR,), 0, T_INT, _REQ, first_if_no_name=True),
    _row("be_id", _f_px_id("be"), (), 0, T_INT, _ALL),
    _row("be_name", _f_px_name("be"), (), 0, T_STR, _ALL),
    _row("dst", _f_dst, (), 0, T_IP, _ALL),
    _row("dst_port", _f_dst_port, (), 0, T_INT, _ALL),
    _row("fc_pp_authority", _f_fc_pp("authority"), (), 0, T_STR, _ALL),
    _row("fc_pp_unique_id", _f_fc_pp("unique_id"), (), 0, T_STR, _ALL),
    _row("fc_rcvd_proxy", _f_fc_rcvd_proxy, (), 0, T_BOOL, _ALL),
    _row("fc_err", _f_fc_err, (), 0, T_INT, _ALL),
    _row("fc_err_str", _f_fc_err_str, (), 0, T_STR, _ALL),
    _row("fe_id", _f_px_id("fe"), (), 0, T_INT, _ALL),
    _row("fe_name", _f_px_name("fe"), (), 0, T_STR, _ALL),
    _row("fhdr", _f_fhdr(None), _HDR_ARGS, 0, T_STR, _HTTP, occ_index=1),
    _row("hdr", _f_hdr(None), _HDR_ARGS, 0, T_STR, _HTTP, occ_index=1, bind=_bind_hdr(None)),
    _row("hdr_cnt", _f_hdr_cnt(False, False), (A_HDR,), 0, T_INT, _REQ, bind=_bind_hdr_cnt(False)),
    _row("hdr_ip", _f_hdr_ip, _HDR_ARGS, 0, T_IP, _REQ, occ_index=1),
    _row("hdr_val", _f_hdr_val, _HDR_ARGS, 0, T_INT, _REQ, occ_index=1),
    _row("hostname", _f_hostname, (), 0, T_STR, _ALL),
    _row("http_first_req", _f_http_first_req, (), 0, T_BOOL, _ALL),
    _row("int", _f_int, (A_INT,), 1, T_INT, _ALL),
    _row("ipv4", _f_int, (A_IPV4,), 1, T_IP, _ALL),
    _row("ipv6", _f_int, (A_IPV6,), 1, T_IP, _ALL),
    _row("meth", _f_meth, (A_STR,), 0, T_METH, _ALL),
    _row("method", _f_method, (), 0, T_METH, _REQ),
    _row("path", _f_path, (), 0, T_STR, _REQ, bind=lambda args: PathFetch()),
    _row("pathq", _f_pathq, (), 0, T_STR, _REQ),
    _row("query", _f_query, (), 0, T_STR, _REQ),
    _row("req.cook", _f_cook, (A_STR,), 0, T_STR, _REQ, first_if_no_name=True),
    _row("req.cook_cnt", _f_cook_cnt, (A_STR,), 0, T_INT, _REQ),
    _row("req.cook_val", _f_cook_val, (A_STR,), 0, T_INT, _REQ, first_if_no_name=True),
    _row("req.fhdr", _f_fhdr(False), _HDR_ARGS, 0, T_STR, _REQ, occ_index=1),
    _row("req.fhdr_cnt", _f_hdr_cnt(False, True), (A_HDR,), 0, T_INT, _REQ),
    _row("req.hdr", _f_hdr(False), _HDR_ARGS, 0, T_STR, _REQ, occ_index=1, bind=_bind_hdr(False)),
    _row("req.hdr_cnt", _f_hdr_cnt(False, False), (A_HDR,), 0, T_INT, _REQ, bind=_bind_hdr_cnt(False)),
    _row("req.hdr_ip", _f_hdr_ip, _HDR_ARGS, 0, T_IP, _REQ, occ_index=1),
    _row("req.hdr_names", _f_hdr_names, (A_STR,), 0, T_STR, _REQ),
    _row("req.hdr_val", _f_hdr_val, _HDR_ARGS, 0, T_INT, _REQ, occ_index=1),
    _row("req.len", payload.req_len, (), 0, T_INT, _REQ),
    _row("req.payload", payload.req_payload, (A_INT, A_INT), 2, T_BIN, _REQ),
    _row("req.proto_http", _f_proto_http, (), 0, T_BOOL, _REQ),
    _row("req.ver", _f_ver, (), 0, T_STR, _REQ),
    _row("req_ver", _f_ver, (), 0, T_STR, _REQ),
    _row("res.len", payload.res_len, (), 0, T_INT, _RES),
    _row("res.payload", payload.res_payload, (A_INT, A_INT), 2, T_BIN, _RES),
    _row("res.comp", _f_res_comp, (), 0, T_BOOL, _RES),
    _row("res.comp_algo", _f_res_comp_algo, (), 0, T_STR, _RES),
    _row("res.cook", _f_scook, (A_STR,), 0, T_STR, _RES, first_if_no_name=True),
    _row("res.fhdr", _f_fhdr(True), _HDR_ARGS, 0, T_STR, _RES, occ_index=1),
    _row("res.fhdr_cnt", _f_hdr_cnt(True, True), (A_HDR,), 0, T_INT, _RES),
    _row("res.hdr", _f_hdr(True), _HDR_ARGS, 0, T_STR, _RES, occ_index=1, bind=_bind_hdr(True)),
    _row("res.hdr_cnt", _f_hdr_cnt(True, False), (A_HDR,), 0, T_INT, _RES, bind=_bind_hdr_cnt(True)),
    _row("scook", _f_scook, (A_STR,), 0, T_STR, _RES, first_if_no_name=True),
    _row("shdr", _f_hdr(True), _HDR_ARGS, 0, T_STR, _RES, occ_index=1, bind=_bind_hdr(True)),
    _row("shdr_cnt", _f_hdr_cnt(True, False), (A_HDR,), 0, T_INT, _RES, bind=_bind_hdr_cnt(True)),
    _row("so_id", _f_so_id, (), 0, T_INT, _ALL),
    _row("so_name", _f_so_name, (), 0, T_STR, _ALL),
    _row("src", _f_src, (), 0, T_IP, _ALL),
    _row("srv_id", _f_px_id("srv"), (), 0, T_INT, _SRV),
    _row("srv_name", _f_px_name("srv"), (), 0, T_STR, _SRV),
    _row("src_port", _f_src_port, (), 0, T_INT, _ALL),
    _row("ssl_fc", sslfetch.ssl_fc, (), 0, T_BOOL, _ALL),
    *(_row(n, fn, (), 0, out, _ALL) for n, (fn, out) in sslfetch.FETCHES.items()),
    *(_row(n, fn, (A_STR, A_INT), 0, T_STR, _ALL) for n, fn in sslfetch.DN_FETCHES.items()),
    _row("status", _f_status, (), 0, T_INT, _RES),
    _row("str", _f_str, (A_STR,), 1, T_STR, _ALL),
    _row("unique-id", _f_unique_id, (), 0, T_STR, _ALL),
    _row("url", _f_url, (), 0, T_STR, _REQ),
    _row("url_ip", _f_url_ip, (), 0, T_IP, _REQ),
    _row("url_param", _f_url_param, (A_STR, A_STR), 0, T_STR, _REQ, first=True),
    _row("url_port", _f_url_port, (), 0, T_INT, _REQ),
    _row("urlp", _f_url_param, (A_STR, A_STR), 0, T_STR, _REQ, first=True),
    _row("urlp_val", _f_urlp_val, (A_STR, A_STR), 0, T_INT, _REQ, first=True),
    _row("var", _f_var, (A_VAR, A_STR), 1, T_ANY, _ALL, check=_check_var_name),
    _row("wait_end", _f_wait_end, (), 0, T_BOOL, _ALL),
))

# The running process (lb.match.procfetch): proxies, servers, queues, rates, timeouts,
# and process-wide values. Proxy and server arguments are checked once the whole
# configuration is read (``ProxyRef``).
FETCHES.update((
    *(_row(n, fn, (A_BE,), 0, T_INT, _ALL) for n, fn in procfetch.BACKEND.items()),
    *(_row(n, fn, (A_FE,), 0, T_INT, _ALL) for n, fn in procfetch.FRONTEND.items()),
    *(_row(n, fn, (A_SRV,), 0, out, _ALL) for n, (fn, out) in procfetch.SERVER.items()),
    *(_row(n, fn, (), 0, T_INT, _ALL) for n, fn in procfetch.TIMEOUTS.items()),
    _row("date", procfetch.date, (A_INT, A_STR), 0, T_INT, _ALL,
         check=cv.check_date_unit),
    _row("date_us", procfetch.PROCESS["date_us"], (), 0, T_INT, _ALL),
    _row("env", procfetch.env, (A_STR,), 0, T_STR, _ALL),
    _row("fe_defbe", procfetch.PROCESS["fe_defbe"], (), 0, T_STR, _ALL),
    _row("nbproc", procfetch.PROCESS["nbproc"], (), 0, T_INT, _ALL),
    _row("proc", procfetch.PROCESS["proc"], (), 0, T_INT, _ALL),
    _row("rand", procfetch.rand, (A_INT,), 0, T_INT, _ALL),
    _row("stopping", procfetch.PROCESS["stopping"], (), 0, T_BOOL, _ALL),
    _row("thread", procfetch.PROCESS["thread"], (), 0, T_INT, _ALL),
    _row("uuid", procfetch.uuid4, (A_INT,), 0, T_STR, _ALL, check=procfetch.check_uuid),
))

# What a TCP session's client sent before a server is chosen (lb.match.payload), under
# both of HAProxy's names.
FETCHES.update((
    *(_row(n, payload.req_len, (), 0, T_INT, _REQ) for n in ("req_len",)),
    *(_row(n, payload.req_ssl_hello_type, (), 0, T_INT, _REQ)
      for n in ("req.ssl_hello_type", "req_ssl_hello_type")),
    *(_row(n, payload.req_ssl_sni, (), 0, T_STR, _REQ) for n in ("req.ssl_sni", "req_ssl_sni")),
    *(_row(n, payload.req_ssl_ver, (), 0, T_INT, _REQ) for n in ("req.ssl_ver", "req_ssl_ver")),
))

# HTTP Basic authentication against a userlist (lb.match.authfetch).
FETCHES.update((
    _row("http_auth", authfetch.http_auth, (A_USR,), 1, T_BOOL, _REQ),
    _row("http_auth_group", authfetch.http_auth_group, (A_USR,), 1, T_STR, _REQ),
    _row("http_auth_pass", authfetch.http_auth_pass, (), 0, T_STR, _REQ),
    _row("http_auth_type", authfetch.http_auth_type, (), 0, T_STR, _REQ),
    _row("http_auth_user", authfetch.http_auth_user, (), 0, T_STR, _REQ),
))
#: ``http_auth_group`` as an ACL criterion: the user's groups are the values matched.
AUTH_GROUP_ACL = FetchDef("http_auth_group", authfetch.http_auth_groups, (A_USR,), 1, T_STR,
                          _REQ)

# Stick counters (lb.match.stickfetch): sc_<x>(<n>[,<table>]), sc0_<x>..sc2_<x>([<table>]),
# src_<x>([<table>]).
FETCHES.update((
    *(_row(f"sc_{x}", stickfetch.sc_fetch(x, None), (A_INT, A_TBLX), 1,
           T_BOOL if x == "tracked" else T_INT, _ALL) for x in stickfetch.SC_SUFFIXES),
    *(_row(f"sc{n}_{x}", stickfetch.sc_fetch(x, n), (A_TBLX,), 0,
           T_BOOL if x == "tracked" else T_INT, _ALL)
      for n in range(3) for x in stickfetch.SC_SUFFIXES),
    *(_row(f"src_{x}", stickfetch.src_fetch(x), (A_TBL,), 0, T_INT, _ALL)
      for x in stickfetch.SRC_SUFFIXES),
    # the array forms (HAProxy 2.5+): sc_get_gpc(<idx>,<n>[,<table>]),
    # src_get_gpc(<idx>,<table>)
    *(_row(f"sc_{x}", stickfetch.sc_array_fetch(x), (A_INT, A_INT, A_TBLX), 2, T_INT,
           _ALL) for x in stickfetch.ARRAY_SUFFIXES),
    *(_row(f"src_{x}", stickfetch.src_array_fetch(x), (A_INT, A_TBL), 2, T_INT, _ALL)
      for x in stickfetch.ARRAY_SUFFIXES),
))


# ------------------------------------------------------------ casts


def _ip_text(v: IPAddr) -> bytes:
    return str(v).encode("ascii")


def to_bytes(v: Value) -> bytes | None:
    if isinstance(v, bytes):
        return v
    if isinstance(v, bool):
        return b"1" if v else b"0"
    if isinstance(v, int):
        return str(v).encode("ascii")
    if isinstance(v, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return _ip_text(v)
    return None


def to_int(v: Value) -> int | None:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, bytes):
        return read_int(v)
    if isinstance(v, ipaddress.IPv4Address):
        return int(v)
    return None


def to_ip(v: Value) -> IPAddr | None:
    if isinstance(v, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return v
    if isinstance(v, bytes):
        return parse_ip(v)
    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32:
        return ipaddress.IPv4Address(v)
    return None


def to_bin(v: Value) -> bytes | None:
    """HAProxy's cast to binary: integers as 8 bytes big-endian, addresses packed."""
    if isinstance(v, bytes):
        return v
    if isinstance(v, int):
        return (v & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")
    if isinstance(v, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return v.packed
    return None


CASTS: dict[str, Callable[[Value], Any]] = {
    T_STR: to_bytes, T_BIN: to_bin, T_METH: to_bytes,
    T_INT: to_int, T_BOOL: lambda v: (lambda i: None if i is None else i != 0)(to_int(v)),
    T_IP: to_ip, T_ANY: lambda v: v,
}


# ------------------------------------------------------------ converters


def _c_field(v: bytes, args: tuple, ctx: SampleCtx) -> bytes | None:
    n, delims = args[0], args[1]
    count = args[2] if len(args) > 2 else 1
    parts = re.split(b"[" + re.escape(delims) + b"]", v) if len(delims) > 1 else v.split(delims)
    if n == 0:
        return None
    if n > 0:
        sel = parts[n - 1:n - 1 + count] if count else parts[n - 1:]
        return delims[:1].join(sel) if n <= len(parts) else b""
    start = len(parts) + n
    if start < 0:
        return b""
    sel = parts[max(0, start - count + 1):start + 1] if count else parts[:start + 1]
    return delims[:1].join(sel)


def _c_word(v: bytes, args: tuple, ctx: SampleCtx) -> bytes | None:
    n, delims = args[0], args[1]
    count = args[2] if len(args) > 2 else 1
    splitter = b"[" + re.escape(delims) + b"]"
    words = [w for w in re.split(splitter, v) if w]
    if n == 0:
        return None
    if n > 0:
        if n > len(words):
            return b""
        sel = words[n - 1:n - 1 + count] if count else words[n - 1:]
    else:
        start = len(words) + n
        if start < 0:
            return b""
        sel = words[max(0, start - count + 1):start + 1] if count else words[:start + 1]
    return delims[:1].join(sel)


def _check_num(args: tuple) -> str | None:
    """An arithmetic converter's argument: an integer, or a valid variable name
    (HAProxy 2.6.12 also takes an empty one, which never has a value)."""
    a = args[0] if args else 0
    if isinstance(a, bytes) and a and not variables.valid(a.decode("latin-1")):
        return "expects an integer or a variable name"
    return None


def _check_concat(args: tuple) -> str | None:
    var = args[1] if len(args) > 1 else b""
    if var and not variables.valid(var.decode("latin-1")):
        return f"failed to register variable name '{var.decode('latin-1')}'"
    return None


def _num_arg(a: Any, ctx: SampleCtx) -> int | None:
    if isinstance(a, int):
        return a
    vals = _f_var(ctx, (a,))
    return to_int(vals[0]) if vals else None


_INT_MAX = 2**63 - 1
_INT_MIN = -2**63


def _arith(op: Callable[[int, int], int | None]) -> Callable[[int, tuple, SampleCtx], int | None]:
    """Integer converter on HAProxy's signed 64-bit range (results are clamped)."""
    def fn(v: int, args: tuple, ctx: SampleCtx) -> int | None:
        b = _num_arg(args[0], ctx)
        if b is None:
            return None
        r = op(v, b)
        if r is None:
            return None
        return _INT_MAX if r > _INT_MAX else _INT_MIN if r < _INT_MIN else r
    return fn


def _div(a: int, b: int) -> int | None:
    if b == 0:
        return 2**63 - 1  # HAProxy returns the largest integer on division by zero
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _mod(a: int, b: int) -> int | None:
    if b == 0:
        return 0
    r = abs(a) % abs(b)
    return r if a >= 0 else -r


def _c_regsub(v: bytes, args: tuple, ctx: SampleCtx) -> bytes:
    rx, repl, flags = args
    return rx.sub(repl, v, count=0 if b"g" in flags else 1)


def _c_concat(v: bytes, args: tuple, ctx: SampleCtx) -> bytes:
    pre, var, post = (args + (b"", b"", b""))[:3]
    mid = b""
    if var:
        vals = _f_var(ctx, (var,))
        mid = to_bytes(vals[0]) or b"" if vals else b""
    return v + pre + mid + post


_JSON_ESC = {0x22: b'\\"', 0x5C: b"\\\\", 0x08: b"\\b", 0x0C: b"\\f", 0x0A: b"\\n",
             0x0D: b"\\r", 0x09: b"\\t"}


def _c_json(v: bytes, args: tuple, ctx: SampleCtx) -> bytes | None:
    """JSON string escaping; ``json(utf8…)`` decodes UTF-8 into ``\\uXXXX`` escapes.

    Without argument every byte outside 0x20..0x7E is escaped on its own. ``utf8``
    fails (no sample) on invalid UTF-8, ``utf8s`` skips invalid bytes, ``utf8p`` and
    ``utf8ps`` keep them as single-byte escapes.
    """
    mode = args[0] if args else b""
    if mode.startswith(b"utf8"):
        errors = "strict" if mode == b"utf8" else "ignore" if mode == b"utf8s" else (
            "surrogateescape")
        try:
            text = v.decode("utf-8", errors)
        except UnicodeDecodeError:
            return None
        cps: Iterable[int] = (ord(ch) if not 0xDC80 <= ord(ch) <= 0xDCFF else ord(ch) - 0xDC00
                              for ch in text)
    else:
        cps = v
    out = bytearray()
    for c in cps:
        e = _JSON_ESC.get(c)
        if e is not None:
            out += e
        elif c < 0x20 or c > 0x7E:
            out += b"\\u%04x" % c
        else:
            out.append(c)
    return bytes(out)


def _c_url_dec(v: bytes, args: tuple, ctx: SampleCtx) -> bytes:
    """``%XX`` decoding; ``+`` becomes a space only with ``url_dec(1)`` (form data)."""
    if args and args[0]:
        v = v.replace(b"+", b" ")
    return unquote_to_bytes(v)


def _c_bytes(v: bytes, args: tuple, ctx: SampleCtx) -> bytes:
    off = args[0]
    ln = args[1] if len(args) > 1 else None
    return v[off:] if ln is None else v[off:off + ln]


def _c_b64dec(v: bytes, args: tuple, ctx: SampleCtx) -> bytes | None:
    """base64 with its padding, as ``base64()`` writes it; anything else fails."""
    try:
        return base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        return None


def _c_ipmask(v: IPAddr, args: tuple, ctx: SampleCtx) -> IPAddr | None:
    """``ipmask(<mask4>[,<mask6>])``: an IPv6 address needs the second mask."""
    if isinstance(v, ipaddress.IPv4Address):
        return ipaddress.IPv4Address(int(v) & args[0])
    if len(args) < 2:
        return None
    return ipaddress.IPv6Address(int(v) & args[1])


def _c_trim(side: str) -> Callable[[bytes, tuple, SampleCtx], bytes]:
    def fn(v: bytes, args: tuple, ctx: SampleCtx) -> bytes:
        chars = args[0]
        return v.lstrip(chars) if side == "l" else v.rstrip(chars)
    return fn


@dataclass(frozen=True, slots=True)
class ConvDef:
    """One row of ``CONVERTERS``."""

    name: str
    fn: Callable[[Any, tuple, SampleCtx], Value | None]
    args: tuple[str, ...]
    min_args: int
    inp: str
    out: str
    # optional load-time check of the typed arguments: the reason they are invalid
    check: Callable[[tuple], str | None] | None = None


A_NUM = "num"  # integer or variable name
A_MSK4 = "msk4"  # IPv4 mask: CIDR length or dotted quad (ipmask)
A_MSK6 = "msk6"  # IPv6 mask: CIDR length or address form (ipmask)
A_REG = "reg"  # regex (compiled with the flags of the next argument)
A_CHARS = "chars"

CONVERTERS: dict[str, ConvDef] = {c.name: c for c in (
    ConvDef("add", _arith(lambda a, b: a + b), (A_NUM,), 1, T_INT, T_INT, check=_check_num),
    ConvDef("and", _arith(lambda a, b: a & b), (A_NUM,), 1, T_INT, T_INT, check=_check_num),
    ConvDef("b64dec", _c_b64dec, (), 0, T_STR, T_BIN),
    ConvDef("base64", lambda v, a, c: base64.b64encode(v), (), 0, T_BIN, T_STR),
    ConvDef("bool", lambda v, a, c: v != 0, (), 0, T_INT, T_BOOL),
    ConvDef("bytes", _c_bytes, (A_INT, A_INT), 1, T_BIN, T_BIN),
    ConvDef("concat", _c_concat, (A_STR, A_VAR, A_STR), 0, T_STR, T_STR,
            check=_check_concat),
    ConvDef("div", _arith(_div), (A_NUM,), 1, T_INT, T_INT, check=_check_num),
    ConvDef("field", _c_field, (A_INT, A_STR, A_INT), 2, T_STR, T_STR),
    ConvDef("hex", lambda v, a, c: v.hex().upper().encode("ascii"), (), 0, T_BIN, T_STR),
    # (an integer as 4 bytes in network order: HAProxy 2.6's, which `option
    # ssl-hello-chk` uses for its hello's time)
    ConvDef("htonl", lambda v, a, c: (v & 0xFFFFFFFF).to_bytes(4, "big"), (), 0, T_INT, T_BIN),
    ConvDef("ipmask", _c_ipmask, (A_MSK4, A_MSK6), 1, T_IP, T_IP),
    ConvDef("json", _c_json, (A_STR,), 0, T_STR, T_STR),
    ConvDef("len", lambda v, a, c: len(v), (), 0, T_STR, T_INT),  # lb alias of length
    ConvDef("length", lambda v, a, c: len(v), (), 0, T_STR, T_INT),
    ConvDef("lower", lambda v, a, c: v.lower(), (), 0, T_STR, T_STR),
    ConvDef("ltrim", _c_trim("l"), (A_CHARS,), 1, T_STR, T_STR),
    ConvDef("mod", _arith(_mod), (A_NUM,), 1, T_INT, T_INT, check=_check_num),
    ConvDef("mul", _arith(lambda a, b: a * b), (A_NUM,), 1, T_INT, T_INT, check=_check_num),
    ConvDef("neg", lambda v, a, c: -v, (), 0, T_INT, T_INT),
    ConvDef("not", lambda v, a, c: v == 0, (), 0, T_INT, T_BOOL),
    ConvDef("nbsrv", lambda v, a, c: procfetch.nbsrv_of(c, v), (), 0, T_STR, T_INT),
    ConvDef("odd", lambda v, a, c: bool(v & 1), (), 0, T_INT, T_BOOL),
    ConvDef("even", lambda v, a, c: not (v & 1), (), 0, T_INT, T_BOOL),
    ConvDef("or", _arith(lambda a, b: a | b), (A_NUM,), 1, T_INT, T_INT, check=_check_num),
    ConvDef("regsub", _c_regsub, (A_REG, A_STR, A_STR), 2, T_STR, T_STR),
    ConvDef("rtrim", _c_trim("r"), (A_CHARS,), 1, T_STR, T_STR),
    ConvDef("sha1", lambda v, a, c: hashlib.sha1(v).digest(), (), 0, T_BIN, T_BIN),
    ConvDef("srv_queue", lambda v, a, c: procfetch.srv_queue_of(c, v), (), 0, T_STR, T_INT),
    ConvDef("sub", _arith(lambda a, b: a - b), (A_NUM,), 1, T_INT, T_INT, check=_check_num),
    ConvDef("upper", lambda v, a, c: v.upper(), (), 0, T_STR, T_STR),
    ConvDef("url_dec", _c_url_dec, (A_INT,), 0, T_STR, T_STR),
    ConvDef("word", _c_word, (A_INT, A_STR, A_INT), 2, T_STR, T_STR),
    ConvDef("xor", _arith(lambda a, b: a ^ b), (A_NUM,), 1, T_INT, T_INT, check=_check_num),
)}

# A key's stick-table entry (lb.match.stickfetch).
CONVERTERS.update((c.name, c) for c in (
    *(ConvDef(f"table_{x}", stickfetch.table_conv(x), (A_TBL,), 1, T_ANY, T_INT)
      for x in stickfetch.TABLE_SUFFIXES),
    *(ConvDef(f"table_{x}", stickfetch.table_array_conv(x), (A_INT, A_TBL), 2, T_ANY,
              T_INT) for x in stickfetch.ARRAY_CONVERTERS),
    ConvDef("in_table", stickfetch.in_table, (A_TBL,), 1, T_ANY, T_BOOL),
))

# Dates, hashes, encodings, host names and variables (lb.match.converters).
CONVERTERS.update((c.name, c) for c in (
    ConvDef("crc32", cv.crc32, (A_INT,), 0, T_BIN, T_INT),
    ConvDef("cut_crlf", cv.cut_crlf, (), 0, T_STR, T_STR),
    ConvDef("digest", cv.digest, (A_STR,), 0, T_BIN, T_BIN, check=cv.check_digest),
    ConvDef("djb2", cv.djb2, (A_INT,), 0, T_BIN, T_INT),
    ConvDef("hex2i", cv.hex2i, (), 0, T_BIN, T_INT),
    ConvDef("host_only", cv.host_only, (), 0, T_STR, T_STR),
    ConvDef("http_date", cv.http_date, (A_INT, A_STR), 0, T_INT, T_STR,
            check=cv.check_date_unit),
    ConvDef("ltime", cv.ltime, (A_STR, A_INT), 0, T_INT, T_STR),
    ConvDef("port_only", cv.port_only, (), 0, T_STR, T_INT),
    ConvDef("sdbm", cv.sdbm, (A_INT,), 0, T_BIN, T_INT),
    ConvDef("secure_memcmp", cv.secure_memcmp, (A_STR,), 0, T_BIN, T_BOOL,
            check=cv.check_var_arg),
    ConvDef("set-var", cv.set_var, (A_STR, A_STR, A_STR, A_STR, A_STR), 1, T_ANY, T_ANY,
            check=cv.check_set_var),
    ConvDef("sha2", cv.sha2, (A_INT,), 0, T_BIN, T_BIN, check=cv.check_sha2),
    ConvDef("strcmp", cv.strcmp, (A_STR,), 0, T_STR, T_INT, check=cv.check_var_arg),
    ConvDef("ub64dec", cv.ub64dec, (), 0, T_STR, T_BIN),
    ConvDef("ub64enc", cv.ub64enc, (), 0, T_BIN, T_STR),
    ConvDef("url_enc", cv.url_enc, (A_STR,), 0, T_STR, T_STR, check=cv.check_url_enc),
    ConvDef("utime", cv.utime, (A_STR, A_INT), 0, T_INT, T_STR),
    ConvDef("wt6", cv.wt6, (A_INT,), 0, T_BIN, T_INT),
    ConvDef("xxh32", cv.xxh32_conv, (A_INT,), 0, T_BIN, T_INT),
    ConvDef("xxh64", cv.xxh64_conv, (A_INT,), 0, T_BIN, T_INT),
))


def _c_map(v: Any, args: tuple, ctx: SampleCtx) -> Value | None:
    """``map*(<file>[,<default>])``: args are the compiled view and the default."""
    found = args[0].lookup(v)
    return args[1] if found is None else found


for _name, (_method, _inp, _out) in maps.MAP_CONVERTERS.items():
    CONVERTERS[_name] = ConvDef(_name, _c_map, (A_STR, A_INT if _out == T_INT else A_STR),
                                0, _inp, _out)


# ------------------------------------------------------------ parsing


def _enc(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


_KW_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+")

_REF_KINDS = frozenset((A_BE, A_FE, A_SRV, A_TBL, A_TBLX, A_USR))

_TYPE_NAMES = {A_BE: "backend", A_FE: "frontend", A_SRV: "server", A_TBL: "table",
               A_TBLX: "table", A_USR: "userlist",
               A_STR: "string", A_HDR: "string", A_CHARS: "string", A_VAR: "string",
               A_REG: "regex", A_INT: "integer", A_OCC: "integer", A_NUM: "integer",
               A_MSK4: "IPv4 mask", A_MSK6: "IPv6 mask", A_IPV4: "IPv4 address",
               A_IPV6: "IPv6 address"}


class _ArgSyntax(Exception):
    def __init__(self, detail: str, argno: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.argno = argno


# Backslash escapes inside fetch/converter arguments (HAProxy 2.6): only \\ \" \'
# and "\ "; any other "\c" is kept verbatim ("\1" for regsub), and "\," / "\)" do
# not protect ',' or ')' (quote the argument instead).
_ARG_ESCAPES = frozenset("\\'\" ")


def _missing(nargs: int, kinds: tuple[str, ...], min_args: int) -> _ArgSyntax:
    return _ArgSyntax(f"missing arguments (got {nargs}/{min_args}), type"
                      f" '{_TYPE_NAMES.get(kinds[nargs], 'string')}' expected", nargs + 1)


def _read_args(text: str, pos: int, kinds: tuple[str, ...], min_args: int
               ) -> tuple[list[str], int]:
    """Read ``(a,b,...)`` starting at ``text[pos] == '('``; returns (args, index after ')').

    Quotes (``'`` ``"``) and backslash escapes protect ``,`` and ``)`` inside arguments.
    """
    args: list[str] = []
    cur: list[str] = []
    i = pos + 1
    n = len(text)
    max_args = len(kinds)
    if max_args == 0:
        if i < n and text[i] == ")":
            return [], i + 1
        if i >= n:
            raise _ArgSyntax("expected ')'", 1)
        raise _ArgSyntax(f"expected ')' before '{text[i:]}'", 1)
    quote = ""
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            if text[i + 1] in _ARG_ESCAPES:
                cur.append(text[i + 1])
                i += 2
            else:
                cur.append(c)  # kept verbatim; the next character is read normally
                i += 1
            continue
        if quote:
            if c == quote:
                quote = ""
            else:
                cur.append(c)
        elif c in "'\"":
            quote = c
        elif c == ")":
            args.append("".join(cur))
            return args, i + 1
        elif c == ",":
            args.append("".join(cur))
            cur = []
            if len(args) >= max_args:
                raise _ArgSyntax(f"expected ')' before '{text[i:]}'", len(args) + 1)
        else:
            cur.append(c)
        i += 1
    # no ')': HAProxy has read (and converted) each argument before it sees the end
    args.append("".join(cur))
    _typed_args(args, kinds[:len(args)], 0)
    if len(args) < min_args:
        raise _missing(len(args), kinds, min_args)
    raise _ArgSyntax("expected ')'", len(args))


def _mask_arg(a: str, pos: int, kind: str) -> int:
    """An ``ipmask`` argument as the integer mask (HAProxy's messages when invalid)."""
    text = a.strip()
    if not text:
        raise _ArgSyntax(f"expected type '{_TYPE_NAMES[kind]}' at position {pos}, but got"
                         " nothing", pos)
    bits = 32 if kind == A_MSK4 else 128
    try:
        if text.isdigit():
            n = int(text)
            if n > bits:
                raise ValueError(text)
            return ((1 << n) - 1) << (bits - n)
        addr = (ipaddress.IPv4Address if kind == A_MSK4 else ipaddress.IPv6Address)(text)
        return int(addr)
    except ValueError:
        raise _ArgSyntax(f"failed to parse '{a}' as type '{_TYPE_NAMES[kind]}' at position"
                         f" {pos}", pos) from None


def _int_arg(a: str, pos: int) -> int:
    try:
        return int(a.strip(), 10)
    except ValueError:
        if not a.strip():
            raise _ArgSyntax(f"expected type 'integer' at position {pos}, but got nothing",
                             pos) from None
        raise _ArgSyntax(f"failed to parse '{a}' as type 'integer' at position {pos}",
                         pos) from None


def _ip_arg(a: str, pos: int, kind: str) -> IPAddr:
    """An address as inet_pton(3) reads it (no spaces, no leading zeros, no mask)."""
    name = _TYPE_NAMES[kind]
    if not a or a[0].isspace():
        raise _ArgSyntax(f"expected type '{name}' at position {pos}, but got nothing", pos)
    try:
        packed = socket.inet_pton(socket.AF_INET if kind == A_IPV4 else socket.AF_INET6, a)
    except (OSError, ValueError):
        raise _ArgSyntax(f"failed to parse '{a}' as type '{name}' at position {pos}",
                         pos) from None
    return ipaddress.ip_address(packed)


def _typed_args(raw: list[str], kinds: tuple[str, ...], min_args: int) -> tuple:
    """Convert raw argument strings to their kinds (syntax errors: ``_ArgSyntax``).

    As HAProxy's make_arg_list: a keyword that needs arguments and has none (no
    parentheses, or ``()``) is given one empty argument, which a string accepts and
    a number refuses ("but got nothing"); each argument is read before the count is
    checked ("missing arguments (got 1/2)")."""
    if not raw and min_args:
        raw = [""]
    out: list[Any] = []
    for i, (a, k) in enumerate(zip(raw, kinds, strict=False)):
        pos = i + 1
        if k == A_HDR:
            out.append(_enc(a.strip()).lower())
        elif k in (A_OCC, A_INT):
            out.append(_int_arg(a, pos))
        elif k == A_NUM:
            try:
                out.append(int(a.strip(), 10))
            except ValueError:  # a variable name (HAProxy accepts an empty one too)
                out.append(_enc(a.strip()))
        elif k == A_REG:
            out.append(a)  # compiled with its flags by _conv_args
        elif k in (A_MSK4, A_MSK6):
            out.append(_mask_arg(a, pos, k))
        elif k in (A_IPV4, A_IPV6):
            out.append(_ip_arg(a, pos, k))
        elif k in (A_BE, A_FE, A_TBL, A_TBLX, A_USR):
            out.append(a)  # HAProxy keeps blanks: " be" names no backend
        elif k == A_SRV:
            proxy, slash, server = a.rpartition("/")
            out.append((proxy if slash else None, server))
        else:
            out.append(_enc(a))
    if len(raw) < min_args:
        raise _missing(len(raw), kinds, min_args)
    return tuple(out)


def _fetch_args(fd: FetchDef, name: str, raw: list[str] | None) -> tuple:
    """Typed, validated fetch arguments (validation errors: kind "fetch-invalid")."""
    if raw is None:
        raw = []
    try:
        args = _typed_args(raw, fd.args, fd.min_args)
    except _ArgSyntax as e:
        raise SampleError(f"fetch method '{name}' : {e.detail}", "fetch-syntax", name,
                          e.detail) from None
    if fd.occ_index >= 0 and len(args) > fd.occ_index and args[fd.occ_index] < -10:
        detail = "header occurrence must be >= -10"
        raise SampleError(f"invalid args in fetch method '{name}' : {detail}",
                          "fetch-invalid", name, detail)
    if fd.check is not None:
        detail = fd.check(args)
        if detail is not None:
            raise SampleError(f"invalid args in fetch method '{name}' : {detail}",
                              "fetch-invalid", name, detail)
    return args


@dataclass(frozen=True, slots=True)
class ProxyRef:
    """A fetch argument naming a proxy or a server, as written.

    HAProxy resolves these once the whole configuration is read (its
    ``smp_resolve_args``); ``lb.config.build`` does the same with the references
    ``collecting_refs`` gathered while a statement was parsed. ``proxy`` is None for
    "the current proxy" (no argument, or a server name without ``backend/``);
    ``server`` is None when a server argument is missing.
    """

    kind: str  # A_BE, A_FE, A_SRV, A_TBL or A_USR
    fetch: str
    argno: int
    proxy: str | None  # the proxy, or the table (A_TBL)
    server: str | None
    acl: bool  # met in an ACL criterion (HAProxy words its errors differently)
    conv: str | None = None  # the converter taking the argument (after ``fetch``)


_refs_sink: ContextVar[list[ProxyRef] | None] = ContextVar("lb_sample_refs", default=None)


@contextmanager
def collecting_refs() -> Iterator[list[ProxyRef]]:
    """Gather the ``ProxyRef`` of every expression parsed inside the block."""
    refs: list[ProxyRef] = []
    token = _refs_sink.set(refs)
    try:
        yield refs
    finally:
        _refs_sink.reset(token)


def _note_refs(fd: FetchDef | ConvDef, name: str, args: tuple, acl: bool,
               conv: str | None = None) -> None:
    sink = _refs_sink.get()
    if sink is None:
        return
    for i, kind in enumerate(fd.args):
        if kind not in _REF_KINDS:
            continue
        value = args[i] if i < len(args) else None
        if kind == A_TBLX:
            if not value:
                continue  # (the tracked entry's table, known only at run time)
            kind = A_TBL
        if kind == A_SRV:
            proxy, server = value if value is not None else (None, None)
        else:
            proxy, server = value or None, None
        sink.append(ProxyRef(kind, name, i + 1, proxy, server, acl, conv))


def _conv_args(cd: ConvDef, raw: list[str] | None) -> tuple:
    try:
        args = _typed_args(raw or [], cd.args, cd.min_args)
    except _ArgSyntax as e:
        raise SampleError(f"invalid arg {e.argno} in converter '{cd.name}' : {e.detail}",
                          "conv", cd.name, e.detail) from None

    def invalid(detail: str) -> SampleError:
        return SampleError(f"invalid args in converter '{cd.name}' : {detail}", "conv",
                           cd.name, detail)

    if cd.name in maps.MAP_CONVERTERS:
        return _map_args(cd, args, invalid)
    if cd.name == "regsub":
        pattern = args[0]
        flags = args[2] if len(args) > 2 else b""
        for f in flags.decode("ascii", "replace"):
            if f not in "ig":
                raise invalid(f"invalid regex flag '{f}', only 'i' and 'g' are supported")
        try:
            rx = re.compile(_enc(pattern), re.IGNORECASE if b"i" in flags else 0)
        except re.error as e:
            raise invalid(f"regex '{pattern}' is invalid (error={e.msg}, erroffset={e.pos})"
                          ) from None
        return (rx, backrefs(args[1]), flags)
    if cd.name in ("field", "word"):
        if args[0] == 0:
            raise invalid("Unexpected value 0 for index")
        if not args[1]:
            raise invalid("Empty separators list")
    if cd.name in ("ltrim", "rtrim") and not args:
        args = (b" ",)
    if cd.check is not None:
        detail = cd.check(args)
        if detail is not None:
            raise invalid(detail)
    return args


def _map_args(cd: ConvDef, args: tuple, invalid: Callable[[str], SampleError]) -> tuple:
    """A map converter's file as a compiled view of its list, and its default value
    as the converter's output type (None: no default, the converter fails)."""
    method, _inp, out = maps.MAP_CONVERTERS[cd.name]
    path = args[0].decode("utf-8", "surrogateescape") if args else ""
    try:
        view = maps.current().view(path, method, out)
    except maps.MapError as e:
        raise invalid(str(e)) from None
    default: Value | None = None
    if len(args) > 1:
        default = args[1]
        if out == T_IP:
            text = args[1].decode("utf-8", "surrogateescape")
            try:
                default = ipaddress.ip_address(text)
            except ValueError:
                raise invalid(f"map: cannot parse default ip <{text}>.") from None
    return (view, default)


Chain = tuple[tuple[ConvDef, tuple, Callable[[Value], Any]], ...]


def read_keyword(text: str, pos: int) -> int:
    n = len(text)
    while pos < n and text[pos] in _KW_CHARS:
        pos += 1
    return pos


def parse_chain(text: str, resolve: Callable[[str], FetchDef | None], *,
                allow_empty_conv: bool = False, acl: bool = False
                ) -> tuple[str, FetchDef, tuple, Chain, str, int]:
    """Parse ``fetch[(args)][,conv[(args)]...]`` from the start of ``text``.

    ``resolve`` maps a fetch keyword to its row (the ACL parser adds its keywords,
    and says ``acl=True``).
    Stops at the first character that cannot continue the expression and returns
    (fetch keyword, row, args, converter chain, output type, end index). Raises
    ``SampleError`` (kinds in its docstring).
    """
    end = read_keyword(text, 0)
    name = text[:end]
    if not name:
        raise SampleError("missing fetch method", "missing-fetch")
    fd = resolve(name)
    if fd is None:
        raise SampleError(f"unknown fetch method '{name}'", "unknown-fetch", name)
    raw: list[str] | None = None
    if end < len(text) and text[end] == "(":
        try:
            raw, end = _read_args(text, end, fd.args, fd.min_args)
        except _ArgSyntax as e:
            raise SampleError(f"fetch method '{name}' : {e.detail}", "fetch-syntax", name,
                              e.detail) from None
        if raw == [""] and fd.args and fd.args[0] != A_HDR and fd.min_args == 0:
            raw = []  # "cook()" = "cook"; only "hdr()" differs from "hdr" (any header)
    args = _fetch_args(fd, name, raw)
    if _REF_KINDS.intersection(fd.args):
        _note_refs(fd, name, args, acl)
    chain = []
    t = fd.out
    n = len(text)
    while end < n and text[end] == ",":
        start = end + 1
        end = read_keyword(text, start)
        cname = text[start:end]
        if not cname and allow_empty_conv and end >= n:
            break  # HAProxy ignores a trailing ',' in an ACL criterion
        cd = CONVERTERS.get(cname)
        if cd is None:
            raise SampleError(f"unknown converter '{cname}'", "conv", cname)
        craw: list[str] | None = None
        if end < n and text[end] == "(":
            try:
                craw, end = _read_args(text, end, cd.args, cd.min_args)
            except _ArgSyntax as e:
                raise SampleError(f"invalid arg {e.argno} in converter '{cname}' :"
                                  f" {e.detail}", "conv", cname, e.detail) from None
            if craw == [""] and cd.min_args == 0:
                craw = []
        cargs = _conv_args(cd, craw)
        if _REF_KINDS.intersection(cd.args):
            _note_refs(cd, name, cargs, acl, cname)
        cast = CASTS[cd.inp] if cd.inp != t or t == T_ANY else CASTS[T_ANY]
        chain.append((cd, cargs, cast))
        t = cd.out
    return name, fd, args, tuple(chain), t, end


def parse_expr(text: str) -> SampleExpr:
    """Compile ``fetch[(args)][,conv[(args)]...]`` (e.g. ``req.hdr(host),lower``)."""
    text = text.strip()
    name, fd, args, chain, out, end = parse_chain(text, FETCHES.get)
    if end < len(text):
        raise SampleError("missing comma after fetch keyword" if not chain else
                          f"missing comma after converter '{chain[-1][0].name}'",
                          "trailing", name, end=end)
    return SampleExpr(text, fd, args, chain, out)


class SampleExpr:
    """A compiled ``fetch[,conv...]`` expression."""

    __slots__ = ("text", "fetch_def", "args", "convs", "out", "occ", "_fn", "_no_req",
                 "_no_res", "_first", "plain", "values")

    def __init__(self, text: str, fetch_def: FetchDef, args: tuple,
                 convs: tuple[tuple[ConvDef, tuple, Callable[[Value], Any]], ...],
                 out: str) -> None:
        self.text = text
        self.fetch_def = fetch_def
        self.args = args
        self.convs = convs
        self.out = out
        occ = None
        if fetch_def.occ_index >= 0 and len(args) > fetch_def.occ_index:
            occ = args[fetch_def.occ_index]
        self.occ = occ
        self._first = fetch_def.first or (fetch_def.first_if_no_name
                                          and not (args and args[0]))
        where = fetch_def.where
        self._no_req = W_REQ not in where
        self._no_res = W_RES not in where
        bound = fetch_def.bind(args) if fetch_def.bind is not None else None
        self._fn = bound if bound is not None else Fetch(
            fetch_def.fn, args, self._no_req, self._no_res)
        # ACL-context values: the fetch itself unless an occurrence or converters apply
        self.plain = not (occ or convs)
        self.values = self._fn if self.plain else self._values  # type: ignore[method-assign]

    @property
    def where(self) -> frozenset[str]:
        return self.fetch_def.where


    def _convert(self, v: Value, ctx: SampleCtx) -> Value | None:
        for cd, args, cast in self.convs:
            cv = cast(v)
            if cv is None:
                return None
            v = cd.fn(cv, args, ctx)  # type: ignore[assignment]
            if v is None:
                return None
        return v

    def raw(self, ctx: SampleCtx) -> Value | None:
        """Sample-context value with its native type (ip stays an address object)."""
        vals = self._fn.values(ctx)
        if not vals:
            return None
        occ = self.occ
        if occ is not None:
            v = _pick(vals, occ)  # type: ignore[arg-type]
            if v is None:
                return None
        elif self._first:
            v = vals[0]
        else:
            v = vals[-1]
        if self.convs:
            return self._convert(v, ctx)
        return v

    def fetch(self, ctx: SampleCtx) -> bytes | int | bool | None:
        """Sample-context value (IP addresses rendered as ASCII bytes)."""
        v = self.raw(ctx)
        if v is None or isinstance(v, bytes | int):
            return v
        return _ip_text(v)  # type: ignore[arg-type]

    def iter_values(self, ctx: SampleCtx) -> Iterator[Value]:
        """ACL-context values: every occurrence (or only the explicit one)."""
        yield from self.values(ctx)  # type: ignore[operator]

    def _values(self, ctx: SampleCtx) -> Sequence[Value]:
        """ACL-context values as a sequence, converters applied to each (do not mutate).

        Reached through ``self.values``, which is the fetch itself when there is no
        occurrence and no converter.
        """
        vals = self._fn.values(ctx)
        if not vals:
            return vals
        if self.occ:  # occurrence 0 in an ACL tries every value, like no occurrence
            v = _pick(vals, self.occ)  # type: ignore[arg-type]
            if v is None:
                return []
            vals = [v]
        if self.convs:
            out = []
            for v in vals:
                cv = self._convert(v, ctx)
                if cv is not None:
                    out.append(cv)
            return out
        return vals

    def __repr__(self) -> str:
        return f"SampleExpr({self.text!r})"
