"""Cookie persistence (``cookie NAME insert|rewrite|prefix ...``), bytes in, bytes out.

Owns the HAProxy semantics of spec §6:
- request side: finding NAME among the client's ``Cookie`` headers (exact,
  case-sensitive name; spaces around ``=`` tolerated and removed), the
  ``|lastdate|firstdate`` suffix with maxidle/maxlife, prefix mode ``SRV~app``,
  choosing the server (first server in declaration order with that cookie value
  that is running, or any with ``option persist``/``force-persist``), the
  client-side log character (N I D V E O U) and the rewritten ``Cookie`` header
  (``indirect`` removes the cookie, prefix mode strips ``SRV~``);
- response side: the server's own ``Set-Cookie: NAME=...`` (deleted, rewritten,
  prefixed or kept), whether to insert ours (status >= 200 or 101, not direct or
  a date to refresh, postonly, preserve, ignore-persist), the exact inserted
  value, ``nocache`` with HAProxy's cacheability rule, and the server-side log
  character (N I U P R D);
- dynamic cookies (``cookie ... dynamic`` with ``dynamic-cookie-key``): a server's
  value made from the backend's key, its address and its port.

It decides; the data plane applies (it owns header lists and writes).

Must not import: anything from lb but lb.xxhash (pure L1 module; the cookie settings
are read from any object shaped like ``lb.config.model.CookieSpec``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from lb.xxhash import xxh64

DELETE_SUFFIX = b"=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/"
SET_COOKIE = b"set-cookie"
CACHE_CONTROL = b"cache-control"
CACHE_PRIVATE = b"private"

_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64REV = {c: i for i, c in enumerate(_B64)}


class CookieSpecLike(Protocol):
    name: str
    mode: str  # "insert" | "rewrite" | "prefix"
    indirect: bool
    nocache: bool
    postonly: bool
    preserve: bool
    httponly: bool
    secure: bool
    domains: tuple[str, ...]
    maxidle: float | None
    maxlife: float | None
    attrs: tuple[str, ...]


class CookieRule:
    """A backend's ``cookie`` line as the data plane reads it: the fields of the
    model's ``CookieSpec`` (``spec``) with the name encoded once (``bname``).

    Compiled (``cookie.pxd``), each field is a C member, so the per-request cookie
    functions below read them without attribute lookups (issue #9);
    ``lb.proxy.compiled.BackendRT`` builds one per backend with a ``cookie`` line.
    """

    __slots__ = ("spec", "name", "bname", "mode", "indirect", "nocache", "postonly",
                 "preserve", "httponly", "secure", "domains", "maxidle", "maxlife", "attrs",
                 "values")

    def __init__(self, spec: CookieSpecLike) -> None:
        self.spec = spec
        for field in _RULE_FIELDS:  # once per backend: by name
            setattr(self, field, getattr(spec, field))
        self.bname = spec.name.encode() if isinstance(spec.name, str) else spec.name
        self.domains = tuple(spec.domains)
        self.attrs = tuple(spec.attrs)
        # Set-Cookie values without dates, per server cookie: built once (hot path)
        self.values: dict[bytes | None, bytes] = {}


# the CookieSpec fields a CookieRule copies as they are
_RULE_FIELDS = ("name", "mode", "indirect", "nocache", "postonly", "preserve", "httponly",
                "secure", "maxidle", "maxlife")


def rule_of(spec: CookieSpecLike) -> CookieRule:
    """``spec`` as a ``CookieRule`` (itself when it is one already)."""
    return spec if isinstance(spec, CookieRule) else CookieRule(spec)


# --------------------------------------------------------------------------- dates


def s30_to_b64(v: int) -> bytes:
    """The low 30 bits of v as 5 base64 digits, most significant first."""
    return bytes(_B64[(v >> s) & 0x3F] for s in (24, 18, 12, 6, 0))


def b64_to_s30(s: bytes) -> int:
    """Inverse of s30_to_b64 on the first 5 bytes; -1 if invalid."""
    if len(s) < 5:
        return -1
    out = 0
    for c in s[:5]:
        d = _B64REV.get(c)
        if d is None:
            return -1
        out = (out << 6) | d
    return out


def encode_date(now: float) -> bytes:
    """A cookie date as HAProxy writes it: (now + 3) / 4, in base64."""
    return s30_to_b64((int(now) + 3) >> 2)


# --------------------------------------------------------------------------- servers


class CookieTable:
    """Servers by cookie value, in declaration order (built once per backend)."""

    __slots__ = ("by_value",)

    def __init__(self, pairs: Iterable[tuple[str | bytes | None, Any]]) -> None:
        self.by_value: dict[bytes, list[Any]] = {}
        for value, srv in pairs:
            if not value:
                continue
            if isinstance(value, str):
                value = value.encode()
            self.by_value.setdefault(value, []).append(srv)

    def get(self, value: bytes) -> list[Any]:
        return self.by_value.get(value, [])


def dynamic_value(key: bytes, addr: str | None, port: int | None) -> bytes | None:
    """A server's dynamic cookie, as HAProxy 2.6 makes it: the XXH64 of the key, the
    address's bytes (4 or 16, network order) and the port on 4 bytes (network order),
    in 16 lower-case hex digits. None for an address that is not an IP (yet)."""
    try:
        ip = ipaddress.ip_address((addr or "").removeprefix("[").removesuffix("]"))
    except ValueError:
        return None
    data = key + ip.packed + (port or 0).to_bytes(4, "big")
    return b"%016x" % xxh64(data)


def _running(srv: Any) -> bool:
    return bool(srv.is_running)


# --------------------------------------------------------------------------- parsing


class _Item:
    """One ``name[=value]`` of a Cookie / Set-Cookie header line."""

    __slots__ = ("lead", "name", "eq", "value", "trail", "delim", "normalized", "end")

    def __init__(self, lead: bytes, name: bytes, eq: bool, value: bytes, trail: bytes,
                 delim: bytes, normalized: bool, end: int) -> None:
        self.lead = lead  # spaces before the name
        self.name = name
        self.eq = eq
        self.value = value
        self.trail = trail  # spaces after the value, before the delimiter
        self.delim = delim  # b";" / b"," after this item, b"" at the end
        self.normalized = normalized  # spaces around '=' were removed
        self.end = end  # index of the delimiter after this item in the source line

    def text(self) -> bytes:
        if self.eq:
            return self.name + b"=" + self.value
        return self.name


# one ``name[=value]`` item: lead spaces, name, spaces, then optionally '=',
# spaces, a value (quoted strings may hide delimiters) and trailing spaces; the
# item ends before a delimiter or at the end of the line.
_VALUE = rb'((?:"(?:[^"\\]|\\.)*"?|[^",;])*?)'
_COOKIE_ITEM = re.compile(rb"([ \t]*)([^=,;]*?)([ \t]*)(?:=([ \t]*)" + _VALUE
                          + rb"([ \t]*))?(?=[,;]|\Z)", re.S)
_SETCOOKIE_ITEM = re.compile(rb"([ \t]*)([^=;]*?)([ \t]*)(?:=([ \t]*)" + _VALUE
                             + rb"([ \t]*))?(?=[,;]|\Z)", re.S)
_NEEDS_NORM = re.compile(rb"[ \t]=|=[ \t]")


_DELIMS = re.compile(rb"([,;])")
_WS = b" \t"


def _split(h: bytes, item: re.Pattern[bytes]) -> list[_Item]:
    if 0x22 not in h and item is _COOKIE_ITEM:
        return _split_plain(h)
    return _split_re(h, item)


def _split_plain(h: bytes) -> list[_Item]:
    """Same result as the regex for a Cookie line without quotes, with C-level
    string methods only."""
    parts = _DELIMS.split(h)
    items: list[_Item] = []
    pos = 0
    for i in range(0, len(parts), 2):
        raw = parts[i]
        delim = parts[i + 1] if i + 1 < len(parts) else b""
        end = pos + len(raw)
        body = raw.lstrip(_WS)
        lead = raw[:len(raw) - len(body)]
        name, eq, value = body.partition(b"=")
        if eq:
            n2 = name.rstrip(_WS)
            v2 = value.lstrip(_WS)
            v3 = v2.rstrip(_WS)
            items.append(_Item(lead, n2, True, v3, v2[len(v3):], delim,
                               len(n2) != len(name) or len(v2) != len(value), end))
        else:
            n2 = name.rstrip(_WS)
            items.append(_Item(lead, n2, False, b"", name[len(n2):], delim, False, end))
        pos = end + 1
    return items


def _split_re(h: bytes, item: re.Pattern[bytes]) -> list[_Item]:
    items: list[_Item] = []
    n = len(h)
    pos = 0
    match = item.match
    while True:
        m = match(h, pos)
        if m is None:  # cannot happen: every group may be empty
            m = match(h, n)
        lead, name, sp, sp2, value, trail = m.groups()
        nxt = m.end()
        if value is not None:
            items.append(_Item(lead, name, True, value, trail, h[nxt:nxt + 1],
                               bool(sp or sp2), nxt))
        else:
            items.append(_Item(lead, name, False, b"", sp, h[nxt:nxt + 1], False, nxt))
        if nxt >= n:
            return items
        pos = nxt + 1


def _join(items: list[_Item]) -> bytes:
    return b"".join(it.lead + it.text() + it.trail + it.delim for it in items)


def _delete_run(items: list[_Item], k: int, m: int) -> None:
    """Remove items k..m (inclusive) the way HAProxy's http_del_hdr_value does:
    the first remaining item loses its leading spaces; in the middle, the previous
    item keeps the removed run's last delimiter followed by exactly one space."""
    nxt = items[m + 1] if m + 1 < len(items) else None
    if k == 0:
        if nxt is not None:
            nxt.lead = b""
    else:
        prev = items[k - 1]
        prev.trail = b""
        if nxt is not None:
            prev.delim = items[m].delim
            nxt.lead = b" "
        else:
            prev.delim = b""
    del items[k:m + 1]


# --------------------------------------------------------------------------- request side


class RequestCookie:
    """What the client's cookie decided."""

    __slots__ = ("server", "direct", "ck", "last_date", "first_date", "headers")

    def __init__(self) -> None:
        self.server: Any = None  # designated server (the request is "direct")
        self.direct = False
        self.ck = "N"  # client-side log char: N I D V E O U
        self.last_date = 0  # seconds since epoch (0 = none)
        self.first_date = 0
        # rewritten Cookie header values (None entry = remove that header), or
        # None when every header stays as it is
        self.headers: list[bytes | None] | None = None


def parse_request(spec: CookieSpecLike, cookie_headers: Sequence[bytes], table: CookieTable,
                  now: float, *, persist: bool = False, force: bool = False,
                  ignore: bool = False, assigned: bool = False,
                  is_running: Callable[[Any], bool] = _running) -> RequestCookie:
    """Run HAProxy's client-side cookie analysis over the ``Cookie`` header values.

    ``persist`` = ``option persist``; ``force`` = a matching ``force-persist``;
    ``ignore`` = a matching ``ignore-persist``; ``assigned`` = a server was
    already chosen by other means (``use-server``): the cookie is then unused."""
    return request_cookie(rule_of(spec), cookie_headers, table, now, persist, force, ignore,
                          assigned, is_running)


def _any_normalized(items: list[Any]) -> bool:
    """Some item of a Cookie header is rewritten when re-joined (spacing, empties)."""
    for it in items:
        if it.normalized:
            return True
    return False


def _has_plain_cookie(items: list[Any]) -> bool:
    """Some item is a cookie rather than a ``$`` attribute (else the header goes)."""
    for it in items:
        if it.name[:1] != b"$":
            return True
    return False


def request_cookie(spec: CookieRule, cookie_headers: Sequence[bytes], table: CookieTable,
                   now: float, persist: bool, force: bool, ignore: bool,
                   assigned: bool = False,
                   is_running: Callable[[Any], bool] = _running) -> RequestCookie:
    """``parse_request`` with positional arguments: a C call from lb.proxy.txn."""
    res = RequestCookie()
    if not cookie_headers:
        return res  # the common first visit: nothing to analyse
    name = spec.bname
    prefix = spec.mode == "prefix"
    strip = spec.mode == "insert" and spec.indirect
    maxidle = int(spec.maxidle or 0)
    maxlife = int(spec.maxlife or 0)
    tnow = int(now)
    out: list[bytes | None] = []
    changed = False
    for h in cookie_headers:
        if name not in h and _NEEDS_NORM.search(h) is None:
            out.append(h)  # fast path: not our cookie, nothing to normalize
            continue
        items = _split(h, _COOKIE_ITEM)
        hchanged = _any_normalized(items)
        i = 0
        while i < len(items):
            it = items[i]
            if it.name[:1] == b"$" or not it.eq or it.name != name:
                i += 1
                continue
            val = it.value
            if prefix:
                tilde = val.find(b"~")
                sid_end = len(val) if tilde < 0 else tilde
            else:
                bar = val.find(b"|")
                sid_end = len(val) if bar < 0 else bar
                if bar >= 0:
                    if len(val) - (bar + 1) >= 5:
                        d = b64_to_s30(val[bar + 1:])
                        if d > 0:
                            res.last_date = d << 2
                    bar2 = val.find(b"|", bar + 1)
                    if bar2 >= 0 and len(val) - bar2 > 5:
                        d = b64_to_s30(val[bar2 + 1:])
                        if d > 0:
                            res.first_date = d << 2
            if res.first_date and maxlife and (tnow - res.first_date > maxlife
                                               or res.first_date - tnow > 86400):
                res.ck = "O"
                sid_end = 0
                res.first_date = res.last_date = 0
            elif res.last_date and maxidle and (tnow - res.last_date > maxidle
                                                or res.last_date - tnow > 86400):
                res.ck = "E"
                sid_end = 0
                res.first_date = res.last_date = 0
            found = None
            if sid_end and not ignore and not assigned and res.server is None:
                for srv in table.get(val[:sid_end]):
                    running = is_running(srv)
                    if running or persist or force:
                        res.ck = "V" if running else "D"
                        found = srv
                        break
                    res.ck = "D"
            if found is not None:
                res.server = found
                res.direct = True
                assigned = True
            elif res.ck == "N":
                res.ck = "U" if (ignore or assigned) else "I"
            # rewrite what the server will see
            if prefix and sid_end < len(val):
                it.value = val[sid_end + 1:]
                hchanged = True
                i += 1
            elif strip:
                m = i
                while m + 1 < len(items) and items[m + 1].name[:1] == b"$":
                    m += 1
                _delete_run(items, i, m)
                hchanged = True
            else:
                i += 1
        if hchanged:
            changed = True
            keep = _has_plain_cookie(items)
            out.append(_join(items) if keep and items else None)
        else:
            out.append(h)
    if changed:
        res.headers = out
    return res


# --------------------------------------------------------------------------- response side


class ResponseCookie:
    """What to do with the response's cookies."""

    __slots__ = ("ck", "set_cookies", "insert", "cache_private")

    def __init__(self) -> None:
        self.ck = "N"  # server-side log char: N I U P R D
        # rewritten values of the server's Set-Cookie headers (None entry = remove
        # that header), or None when they all stay as they are
        self.set_cookies: list[bytes | None] | None = None
        self.insert: bytes | None = None  # value of a Set-Cookie header to add
        self.cache_private = False  # also add "Cache-control: private"


def set_cookie_value(spec: CookieSpecLike, server_cookie: bytes | None, now: float,
                     first_date: int = 0) -> bytes:
    """The exact value HAProxy puts in its ``Set-Cookie`` (spec §6.3 order)."""
    return cookie_value(rule_of(spec), server_cookie, now, first_date)


def cookie_value(spec: CookieRule, server_cookie: bytes | None, now: float,
                 first_date: int) -> bytes:
    """``set_cookie_value`` for a ``CookieRule``: values without dates are cached in
    the rule, per server cookie (the key's hash is kept by the bytes object)."""
    if spec.maxidle or spec.maxlife:
        return _set_cookie_value(spec, server_cookie, now, first_date)
    cache = spec.values
    v = cache.get(server_cookie)
    if v is not None:
        return v
    v = _set_cookie_value(spec, server_cookie, now, first_date)
    if len(cache) >= 4096:
        cache.clear()
    cache[server_cookie] = v
    return v


def _set_cookie_value(spec: CookieRule, server_cookie: bytes | None, now: float,
                      first_date: int) -> bytes:
    name = spec.bname
    if not server_cookie:
        v = name + DELETE_SUFFIX
    else:
        v = name + b"=" + server_cookie
        if spec.maxidle or spec.maxlife:
            v += b"|" + encode_date(now)
            if spec.maxlife:
                v += b"|" + (s30_to_b64(first_date >> 2) if first_date else encode_date(now))
        v += b"; path=/"
    for d in spec.domains:
        v += b"; domain=" + d.encode()
    if spec.httponly:
        v += b"; HttpOnly"
    if spec.secure:
        v += b"; Secure"
    for a in spec.attrs:
        v += b"; " + a.encode()
    return v


def process_response(spec: CookieSpecLike, *, status: int, method: bytes,
                     set_cookies: Sequence[bytes], server: Any, server_cookie: bytes | None,
                     req: RequestCookie | None, now: float, ignore: bool = False,
                     cacheable: bool = False) -> ResponseCookie:
    """HAProxy's server-side cookie handling and cookie insertion for one response.

    ``set_cookies`` are the values of the server's Set-Cookie headers in order;
    ``server`` the server that answered (None when none); ``server_cookie`` its
    ``cookie`` value; ``req`` the request-side result (direct flag, dates);
    ``cacheable`` the result of ``response_cacheable`` (only used with nocache).
    Interim 1xx responses other than 101 are left alone."""
    return response_cookie(rule_of(spec), status, method, set_cookies, server, server_cookie, req,
                           now, ignore, cacheable)


def response_cookie(spec: CookieRule, status: int, method: bytes,
                    set_cookies: list[bytes], server: Any, server_cookie: bytes | None,
                    req: RequestCookie | None, now: float, ignore: bool,
                    cacheable: bool) -> ResponseCookie:
    """``process_response`` with positional arguments: a C call from lb.proxy.txn,
    which cimports it (keyword arguments would make it a Python call)."""
    res = ResponseCookie()
    if status < 200 and status != 101:
        return res
    name = b""
    out: list[bytes | None] | None = None
    if set_cookies:  # (most responses have none: no encode, no list then)
        name = spec.bname
        out = []
    direct = bool(req and req.direct)
    mode = spec.mode
    found = False
    changed = False
    for h in set_cookies:
        it = _split(h, _SETCOOKIE_ITEM)[0]
        if not it.eq:
            out.append(h)
            continue
        hchanged = it.normalized
        if not ignore and it.name == name:
            res.ck = "P"
            found = True
            if spec.preserve:
                pass
            elif (server is not None and mode == "insert") or (direct and spec.indirect):
                res.ck = "D"
                found = False
                out.append(None)
                changed = True
                continue
            elif server is not None and server_cookie and mode == "rewrite":
                it.value = server_cookie
                res.ck = "R"
                found = False
                hchanged = True
            elif server is not None and server_cookie and mode == "prefix":
                it.value = server_cookie + b"~" + it.value
                res.ck = "R"
                found = False
                hchanged = True
        if hchanged:
            changed = True
            # Set-Cookie holds one cookie: everything after its value is attributes
            out.append(it.lead + it.text() + it.trail + h[it.end:])
        else:
            out.append(h)
    if changed:
        res.set_cookies = out
    if server is None or mode != "insert" or ignore or (found and spec.preserve):
        return res
    last = req.last_date if req else 0
    first = req.first_date if req else 0
    tnow = int(now)
    refresh = ((spec.maxidle or last) and (not last or last - tnow < 0)) \
        or (spec.maxlife and not first) or (not spec.maxlife and first)
    if direct and not refresh:
        return res
    if spec.postonly and method != b"POST":
        return res
    res.insert = cookie_value(spec, server_cookie, now, first)
    res.ck = "U" if (server_cookie and direct) else "I"
    if spec.nocache and cacheable:
        res.cache_private = True
    return res


_CACHEABLE_STATUS = frozenset({200, 203, 204, 206, 300, 301, 404, 405, 410, 414, 501})
_SAFE_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE"})


def response_cacheable(method: bytes, status: int,
                       headers: Sequence[tuple[bytes, bytes]]) -> bool:
    """HAProxy's cacheability verdict (what ``nocache`` protects), spec §6.3.

    Safe method and a cacheable status to start with; ``Pragma: no-cache`` vetoes;
    Cache-Control values are applied in order (``public`` sets, ``private``,
    ``no-cache``, ``no-store``, ``max-age=0``, ``s-maxage=0`` clear); finally a
    response with no freshness information (max-age, s-maxage, Expires) and no
    validator (ETag, Last-Modified) is not cacheable. ``headers`` are
    (lower-case name, value) pairs."""
    if status < 200:
        return False
    cacheable = method in _SAFE_METHODS and status in _CACHEABLE_STATUS
    fresh = False  # max-age, s-maxage or Expires
    validator = False  # ETag or Last-Modified
    pragma = False  # only the first Pragma header counts
    for k, v in headers:  # one pass (hot path: every response with `nocache`)
        # most names are none of the five: the length says so in C, then one
        # comparison (a length check and a memcmp when compiled) names the kind
        n = len(k)
        if n == 13:
            if k == b"cache-control":
                kind = 1
            elif k == b"last-modified":
                kind = 4
            else:
                continue
        elif n == 4:
            if k != b"etag":
                continue
            kind = 4
        elif n == 6:
            if k != b"pragma":
                continue
            kind = 2
        elif n == 7:
            if k != b"expires":
                continue
            kind = 3
        else:
            continue
        if kind == 1:  # cache-control: values applied in order
            for part in v.split(b","):
                p = part.strip(b" \t").lower()
                if p == b"public":
                    cacheable = True
                elif p in (b"private", b"no-cache", b"no-store", b"max-age=0",
                           b"s-maxage=0"):
                    cacheable = False
                elif p.startswith(b'no-cache="set-cookie'):
                    pass
                elif p.startswith(b"s-maxage") or p.startswith(b"max-age"):
                    fresh = True
        elif kind == 2:
            if not pragma:
                pragma = True
                if v.strip(b" \t").lower() == b"no-cache":
                    return False  # vetoes whatever else the response says
        elif kind == 3:
            fresh = True
        else:
            validator = True
    if not cacheable:
        return False
    return fresh or validator
