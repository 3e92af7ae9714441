"""HTTP response compression: what HAProxy 2.6's `compression` filter does.

Owns: the algorithm table (config name -> the Accept-Encoding token it answers and
its zlib window), the choice made on the request (Accept-Encoding tokens and their
q-values, old "Mozilla/4" agents left out, `identity` as the fallback), the checks
on the response head, the head rewrite (Content-Length out, chunked in, a weak
ETag, Vary and Content-Encoding added) and the streaming compressor.

A compressed body leaves one chunk per read of the server: every read is flushed
(Z_SYNC_FLUSH), so a streamed response (server-sent events, long polls) reaches the
client as it comes, as HAProxy flushes each block it compresses.

Must not import: anything from lb (pure L1 module).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Algo:
    name: str  # as configured, and as res.comp_algo returns it
    token: bytes  # the Accept-Encoding / Content-Encoding name
    wbits: int | None  # zlib window bits (31 gzip, 15 zlib, -15 raw); None: identity


# `compression algo` names -> algorithm (HAProxy 2.6's comp_algos, libslz build)
ALGORITHMS: dict[str, Algo] = {
    "identity": Algo("identity", b"identity", None),
    "deflate": Algo("deflate", b"deflate", 15),
    "raw-deflate": Algo("raw-deflate", b"deflate", -15),
    "gzip": Algo("gzip", b"gzip", 31),
}

# the statuses whose bodies are compressed
STATUSES = frozenset((200, 201, 202, 203))

_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                   b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _values(headers: Headers, name: bytes) -> list[bytes]:
    """Every comma-separated element of every ``name`` header, trimmed."""
    out = []
    for n, v in headers:
        if n == name:
            out.extend(e.strip(b" \t") for e in v.split(b","))
    return out


def _first(headers: Headers, name: bytes) -> bytes | None:
    for n, v in headers:
        if n == name:
            return v
    return None


def old_mozilla(ua: bytes | None) -> bool:
    """A "Mozilla/4" agent other than MSIE 6 with XP SP2 or MSIE 7 and later: left
    uncompressed (HAProxy's rule, after the bugs of those browsers)."""
    if ua is None or not ua.startswith(b"Mozilla/4"):
        return False
    n = len(ua)
    return (n < 31 or ua[25:30] != b"MSIE " or ua[30] < 0x36
            or (ua[30] == 0x36 and (n < 54 or ua[51:54] != b"SV1")))


def qvalue(text: bytes) -> int:
    """HAProxy's http_parse_qvalue: "1" -> 1000, "0.5" -> 500, junk -> 1000."""
    if not text or not 0x30 <= text[0] <= 0x39:
        return 1000
    q = (text[0] - 0x30) * 1000
    if len(text) > 1 and text[1] == 0x2E:
        scale = 100
        for c in text[2:5]:
            if not 0x30 <= c <= 0x39:
                break
            q += (c - 0x30) * scale
            scale //= 10
    return min(q, 1000)


def _element_q(e: bytes) -> tuple[bytes, int]:
    """(token, q) of one Accept-Encoding element; q is 1000 without a `q=`."""
    i = 0
    n = len(e)
    while i < n and e[i] in _TOKEN:
        i += 1
    token = e[:i]
    for param in e[i:].split(b";")[1:]:
        param = param.lstrip(b" \t")
        if param[:2] == b"q=":
            return token, qvalue(param[2:])
    return token, 1000


def choose(algos: tuple[str, ...], headers: Headers) -> Algo | None:
    """The algorithm for this request, from the proxy's list (in HAProxy's order:
    the last configured first) and the request's Accept-Encoding: the first element
    with the highest q that one of them answers (`*` takes the first of the list);
    else `identity` when it is configured."""
    if old_mozilla(_first(headers, b"user-agent")):
        return None
    chosen = None
    best_q = 0
    for e in _values(headers, b"accept-encoding"):
        token, q = _element_q(e)
        if q <= best_q:
            continue
        star = e[:1] == b"*"
        low = token.lower()
        for name in algos:
            a = ALGORITHMS[name]
            if star or low == a.token:
                chosen = a
                best_q = q
                break
    if chosen is not None:
        return chosen
    if "identity" in algos:
        return ALGORITHMS["identity"]
    return None


def _etag_ok(v: bytes) -> bool:
    if v.startswith(b"W/"):
        v = v[2:]
    return len(v) >= 2 and v[:1] == b'"' and v[-1:] == b'"'


def response_allows(status: int, version: bytes, headers: Headers, sized: bool,
                    types: tuple[bytes, ...] | None) -> bool:
    """The response head allows compression: a 200-203 over HTTP/1.1, its length
    known (Content-Length above 0, or chunked), not encoded already, no
    `Cache-Control: no-transform`, one valid ETag at most, and a Content-Type that is
    not multipart and, when ``types`` are configured, starts with one of them."""
    if status not in STATUSES or version != b"1.1" or not sized:
        return False
    etags = 0
    ctype = None
    for n, v in headers:
        if n == b"content-encoding":
            return False
        if n == b"etag":
            etags += 1
            if etags > 1 or not _etag_ok(v.strip(b" \t")):
                return False
        elif n == b"content-type" and ctype is None:
            ctype = v.lower()
    if b"no-transform" in [e.lower() for e in _values(headers, b"cache-control")]:
        return False
    if ctype is None:
        return types is None
    if ctype.startswith(b"multipart"):
        return False
    return types is None or any(ctype.startswith(t) for t in types)


def rewrite_head(headers: Headers, algo: Algo, chunked: bool) -> Headers:
    """The response head once compressed: Content-Length gone, `Transfer-Encoding:
    chunked` (unless chunked already), a strong ETag made weak, then `Vary:
    Accept-Encoding` and Content-Encoding (not for identity) appended, in HAProxy
    2.6.12's order."""
    out = []
    for n, v in headers:
        if n == b"content-length":
            continue
        if n == b"etag" and v[:1] == b'"':
            v = b"W/" + v
        out.append((n, v))
    if not chunked:
        out.append((b"transfer-encoding", b"chunked"))
    out.append((b"vary", b"Accept-Encoding"))
    if algo.wbits is not None:
        out.append((b"content-encoding", algo.token))
    return out


class Compressor:
    """One response body being compressed (identity: passed through)."""

    __slots__ = ("algo", "z", "bytes_in", "bytes_out")

    def __init__(self, algo: Algo, level: int) -> None:
        self.algo = algo
        self.z: Any = (zlib.compressobj(level, zlib.DEFLATED, algo.wbits)
                       if algo.wbits is not None and level > 0 else None)
        self.bytes_in = 0
        self.bytes_out = 0

    @property
    def bypass(self) -> bool:
        """Nothing is compressed (identity, or level 0): counted in comp_byp."""
        return self.z is None

    def feed(self, data: bytes) -> bytes:
        """The compressed form of ``data``, flushed so that it can leave now."""
        self.bytes_in += len(data)
        z = self.z
        if z is None:
            out = data
        else:
            out = z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)
        self.bytes_out += len(out)
        return out

    def finish(self) -> bytes:
        """What closes the compressed stream (the gzip trailer, for one)."""
        z = self.z
        if z is None:
            return b""
        out = z.flush(zlib.Z_FINISH)
        self.bytes_out += len(out)
        return out
