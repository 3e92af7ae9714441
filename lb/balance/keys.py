"""Hash keys for the hash-based algorithms, and HAProxy's hash functions.

Owns: the pure extractors that turn request data into the bytes a hash-based
``balance`` algorithm hashes (source, uri, url_param, hdr, rdp-cookie), the
KEY_EXTRACTORS table, and HAProxy's hash functions (sdbm, djb2, wt6, crc32,
the avalanche ``full_hash`` and the source-address word fold).

Extractors take plain arguments (method, url bytes, headers as a list of
``(lower-case name, value)`` bytes pairs, source address text) so that the data
plane calls them without building anything. They return ``None`` when the key is
absent; the balancer then falls back to round robin, as HAProxy does.

Must not import: anything from lb (pure L1 module).
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Callable, Sequence
from typing import Any

M32 = 0xFFFFFFFF

Headers = Sequence[tuple[bytes, bytes]]


# --------------------------------------------------------------------------- hash functions


def hash_sdbm(data: bytes) -> int:
    """HAProxy's default ``sdbm``: h = c + (h << 6) + (h << 16) - h, 32 bits."""
    h = 0
    for c in data:
        h = (h * 65599 + c) & M32
    return h


def hash_djb2(data: bytes) -> int:
    h = 5381
    for c in data:
        h = (h * 33 + c) & M32
    return h


def hash_wt6(data: bytes) -> int:
    h0 = 0xA53C965A
    h1 = 0x5CA6953A
    step0 = 6
    step1 = 18
    for t in data:
        h0 = ~(h0 ^ t) & M32
        h1 = ~(h1 + t) & M32
        t = ((h1 << step0) | (h1 >> (32 - step0))) & M32
        h1 = ((h0 << step1) | (h0 >> (32 - step1))) & M32
        h0 = t
        t = ((h0 >> 16) ^ h1) & 0xFFFF
        step0 = t & 0x1F
        step1 = t >> 11
    return h0 ^ h1


def hash_crc32(data: bytes) -> int:
    """Plain CRC32 (reflected, polynomial 0xEDB88320): same bits as HAProxy's."""
    return zlib.crc32(data) & M32


def full_hash(a: int) -> int:
    """The 32-bit integer avalanche HAProxy calls ``full_hash`` (hash-type ... avalanche,
    and the key of every consistent-hash ring node)."""
    a &= M32
    a = ((a + 0x7ED55D16) + (a << 12)) & M32
    a = ((a ^ 0xC761C23C) ^ (a >> 19)) & M32
    a = ((a + 0x165667B1) + (a << 5)) & M32
    a = ((a + 0xD3A2646C) ^ (a << 9)) & M32
    a = ((a + 0xFD7046C5) + (a << 3)) & M32
    a = ((a ^ 0xB55A4F09) ^ (a >> 16)) & M32
    # spread the results over the whole ring (a large prime near 3/4 of 2^32)
    return (a * 3221225473) & M32


avalanche = full_hash


def hash_source(addr: bytes) -> int:
    """``balance source``: XOR of the address' 32-bit big-endian words (no hash
    function involved; trailing bytes shorter than a word are ignored)."""
    h = 0
    for i in range(0, len(addr) - 3, 4):
        h ^= int.from_bytes(addr[i:i + 4], "big")
    return h


def hash_none(data: bytes) -> int:
    """``hash-type ... none``: the key already is the hash (a decimal number, e.g.
    the output of a hashing converter); anything else falls back to sdbm."""
    try:
        return int(data) & M32
    except ValueError:
        return hash_sdbm(data)


HASH_FUNCTIONS: dict[str, Callable[[bytes], int]] = {
    "crc32": hash_crc32,
    "djb2": hash_djb2,
    "none": hash_none,
    "sdbm": hash_sdbm,
    "wt6": hash_wt6,
}


def make_hasher(algorithm: str, function: str = "sdbm",
                modifier: str | None = None) -> Callable[[bytes], int]:
    """The key -> 32-bit hash function of one backend."""
    base = hash_source if algorithm == "source" else HASH_FUNCTIONS.get(function, hash_sdbm)
    if modifier == "avalanche":
        return lambda key: full_hash(base(key))
    return base


# --------------------------------------------------------------------------- key extractors


def source_key(src: str | bytes | None) -> bytes | None:
    """The packed client address (4 bytes IPv4, 16 bytes IPv6); None for non-IP."""
    if not src:
        return None
    if isinstance(src, bytes):
        src = src.decode("ascii", "replace")
    try:
        return ipaddress.ip_address(src.split("%", 1)[0]).packed
    except ValueError:
        return None


def _path_of(url: bytes) -> bytes:
    """The path part of a request target (``path-only``): absolute-form URIs lose
    their scheme and authority; anything else that is not origin-form is empty."""
    if url.startswith(b"/"):
        return url
    i = url.find(b"://")
    if i < 0:
        return b""
    j = url.find(b"/", i + 3)
    return b"" if j < 0 else url[j:]


def uri_key(url: bytes, whole: bool = False, length: int = 0, depth: int = 0,
            path_only: bool = False) -> bytes:
    """``balance uri [whole] [len N] [depth N] [path-only]``.

    ``len`` truncates first; then the key stops at the (depth+1)-th slash and, unless
    ``whole``, at the first ``?``."""
    if path_only:
        url = _path_of(url)
    if length and length < len(url):
        url = url[:length]
    end = len(url)
    if not whole:
        q = url.find(b"?")
        if q >= 0:
            end = q
    if depth:
        pos = -1
        for _ in range(depth + 1):
            pos = url.find(b"/", pos + 1, end)
            if pos < 0:
                break
        else:
            end = pos
    return url[:end]


_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789"
                   b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_LWS = frozenset(b" \t\r\n")


def _find_param(params: bytes, name: bytes, body: bool) -> bytes | None:
    plen = len(name)
    pos = 0
    n = len(params)
    while n - pos > plen:
        if params[pos + plen:pos + plen + 1] == b"=" and params[pos:pos + plen] == name:
            start = pos + plen + 1
            amp = params.find(b"&", start)
            end = n if amp < 0 else amp
            if body and start < end and params[start] not in _TOKEN:
                # a POST body must be URL-encoded; HAProxy checks the first byte
                if params[start] in _LWS:
                    return b""
                return None
            return params[start:end]
        amp = params.find(b"&", pos)
        if amp < 0:
            return None
        pos = amp + 1
    return None


def url_param_key(url: bytes, name: bytes, method: bytes = b"GET",
                  body: bytes | None = None, check_post: bool = False) -> bytes | None:
    """``balance url_param <name> [check_post]``: the value of the first ``name=``
    parameter of the query string; with ``check_post``, a POST body given here is
    searched when the query string does not have it."""
    q = url.find(b"?")
    if q >= 0:
        v = _find_param(url[q + 1:], name, False)
        if v is not None:
            return v
    if check_post and body and method == b"POST":
        return _find_param(body, name, True)
    return None


def header_first_value(headers: Headers, name: bytes) -> bytes | None:
    """First comma-separated value of the first occurrence of header ``name``
    (lower-case), trimmed; None when the header is absent."""
    for k, v in headers:
        if k == name:
            comma = v.find(b",")
            if comma >= 0:
                v = v[:comma]
            return v.strip(b" \t")
    return None


def domain_only(value: bytes) -> bytes:
    """``use_domain_only``: the label just left of the last dot (``www.example.com``
    -> ``example``); the whole value when it has no dot."""
    end = value.rfind(b".")
    if end < 0:
        return value
    if end == 0:
        return b""
    # like HAProxy, the byte just left of that dot is never taken as the start dot
    start = value.rfind(b".", 0, end - 1)
    return value[start + 1:end]


def hdr_key(headers: Headers, name: bytes, use_domain_only: bool = False) -> bytes | None:
    """``balance hdr(<name>) [use_domain_only]``; None when absent or empty."""
    v = header_first_value(headers, name)
    if not v:
        return None
    return domain_only(v) if use_domain_only else v


def rdp_cookie_key(payload: bytes, name: bytes = b"mstshash") -> bytes | None:
    """``balance rdp-cookie[(name)]``: the ``Cookie: name=value`` line of an RDP
    connection request (TPKT + X.224), as HAProxy's rdp_cookie fetch reads it."""
    if len(payload) < 11 or payload[0] != 3 or payload[1] != 0:
        return None
    data = payload[11:]
    if len(data) <= 7 or data[:7].lower() != b"cookie:":
        return None
    data = data[7:].lstrip(b" ")
    if name:
        if len(data) <= len(name) or data[len(name):len(name) + 1] != b"=" \
                or data[:len(name)].lower() != name.lower():
            return None
        data = data[len(name) + 1:]
    else:
        eq = data.find(b"=")
        if eq < 0:
            return None
        data = data[eq + 1:]
    cr = data.find(b"\r\n")
    if cr < 0:
        return None
    return data[:cr] or None


# --------------------------------------------------------------------------- dispatch


def _k_source(spec: Any, method: bytes, url: bytes, headers: Headers, src: str | None,
              body: bytes | None, sample: bytes | None) -> bytes | None:
    return source_key(src)


def _k_uri(spec: Any, method: bytes, url: bytes, headers: Headers, src: str | None,
           body: bytes | None, sample: bytes | None) -> bytes | None:
    return uri_key(url, spec.uri_whole, spec.uri_len, spec.uri_depth, spec.uri_path_only)


def _k_url_param(spec: Any, method: bytes, url: bytes, headers: Headers, src: str | None,
                 body: bytes | None, sample: bytes | None) -> bytes | None:
    return url_param_key(url, (spec.param or "").encode(), method, body, spec.check_post)


def _k_hdr(spec: Any, method: bytes, url: bytes, headers: Headers, src: str | None,
           body: bytes | None, sample: bytes | None) -> bytes | None:
    return hdr_key(headers, (spec.param or "").lower().encode(), spec.use_domain_only)


def _k_rdp(spec: Any, method: bytes, url: bytes, headers: Headers, src: str | None,
           body: bytes | None, sample: bytes | None) -> bytes | None:
    return rdp_cookie_key(body or b"", (spec.param or "mstshash").encode())


def _k_sample(spec: Any, method: bytes, url: bytes, headers: Headers, src: str | None,
              body: bytes | None, sample: bytes | None) -> bytes | None:
    return sample


KeyExtractor = Callable[[Any, bytes, bytes, Headers, "str | None", "bytes | None",
                         "bytes | None"], "bytes | None"]

# algorithm -> extractor; algorithms not listed take no key.
KEY_EXTRACTORS: dict[str, KeyExtractor] = {
    "hash": _k_sample,
    "hdr": _k_hdr,
    "rdp-cookie": _k_rdp,
    "source": _k_source,
    "uri": _k_uri,
    "url_param": _k_url_param,
}


def needs_key(spec: Any) -> bool:
    return spec.algorithm in KEY_EXTRACTORS


def extract(spec: Any, method: bytes = b"GET", url: bytes = b"/", headers: Headers = (),
            src: str | None = None, body: bytes | None = None,
            sample: bytes | None = None) -> bytes | None:
    """The hash key of one request for backend balance ``spec`` (a BalanceSpec), or
    None (no key: non-hash algorithm, or the data is missing -> round robin).

    ``body`` is the buffered request body (url_param check_post) or, for rdp-cookie,
    the first payload bytes; ``sample`` is the already evaluated ``balance hash``
    expression."""
    fn = KEY_EXTRACTORS.get(spec.algorithm)
    if fn is None:
        return None
    return fn(spec, method, url, headers, src, body, sample)
