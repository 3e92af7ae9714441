"""Converters for dates, hashes, encodings, host names and variables.

Owns the functions behind HAProxy 2.6's ``http_date``, ``ltime``, ``utime``,
``url_enc``, ``hex2i``, ``ub64enc``/``ub64dec``, ``digest``, ``sha2``, the
32-bit hashes with their avalanche option (``crc32``, ``djb2``, ``sdbm``,
``wt6``), ``cut_crlf``, ``host_only``/``port_only``, and the variable
converters ``set-var``, ``strcmp`` and ``secure_memcmp``, with their load-time
argument checks. ``lb.match.sample`` lists them in its ``CONVERTERS`` table;
this module does not import it. Each value was compared with HAProxy 2.6.12's
(tests/test_converters.py).

A converter is ``fn(value, args, ctx)`` and returns the new value or None (no
sample). An argument check is ``check(args)`` and returns HAProxy's reason text
when the arguments are refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

from lb.balance.keys import full_hash, hash_crc32, hash_djb2, hash_sdbm, hash_wt6
from lb.match import variables
from lb.xxhash import xxh32, xxh64

# the unit argument of http_date and of the date fetch: its multiplier of seconds
DATE_UNITS = {b"s": 1, b"ms": 1000, b"us": 1000000}


def check_date_unit(args: tuple) -> str | None:
    """``http_date(<offset>,<unit>)`` (and the ``date`` fetch): s, ms or us."""
    if len(args) > 1 and args[1] and args[1] not in DATE_UNITS:
        return "expects 's', 'ms' or 'us', got '" + args[1].decode("latin-1") + "'"
    return None


def http_date(v: int, args: tuple, ctx: Any) -> bytes | None:
    """An IMF-fixdate (``Tue, 14 Nov 2023 22:13:20 GMT``); with unit ms or us the
    input and the offset are in that unit and the fraction is printed."""
    unit = DATE_UNITS.get(args[1], 1) if len(args) > 1 and args[1] else 1
    v += args[0] if args else 0
    secs, frac = divmod(v, unit)
    try:
        text = formatdate(secs, usegmt=True)
    except (OverflowError, OSError, ValueError):
        return None
    if unit > 1:  # HAProxy 2.6.12 prints the fraction unpadded: 5 ms gives ".5"
        text = text[:-4] + f".{frac} GMT"
    return text.encode("ascii")


def _strftime(convert: Callable[[float], time.struct_time]
              ) -> Callable[[int, tuple, Any], bytes | None]:
    """``ltime``/``utime(<format>[,<offset>])``: strftime of the date in seconds."""
    def fn(v: int, args: tuple, ctx: Any) -> bytes | None:
        fmt = args[0].decode("utf-8", "surrogateescape") if args else ""
        try:
            when = convert(v + (args[1] if len(args) > 1 else 0))
            return time.strftime(fmt, when).encode("utf-8", "surrogateescape")
        except (OverflowError, OSError, ValueError):
            return None
    return fn


ltime = _strftime(time.localtime)
utime = _strftime(time.gmtime)

# url_enc(query): the bytes kept as they are; every other one becomes %XX
_URL_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def check_url_enc(args: tuple) -> str | None:
    if args and args[0] != b"query":
        return "Unexpected encode type. Allowed value is 'query'"
    return None


def url_enc(v: bytes, args: tuple, ctx: Any) -> bytes:
    return b"".join(bytes((c,)) if c in _URL_SAFE else b"%%%02X" % c for c in v)


def hex2i(v: bytes, args: tuple, ctx: Any) -> int | None:
    """Hexadecimal digits as a signed 64-bit integer (wrapping); anything else fails."""
    if not v or not all(c in b"0123456789abcdefABCDEF" for c in v):
        return None
    n = int(v, 16) & 0xFFFFFFFFFFFFFFFF
    return n - (1 << 64) if n >> 63 else n


def ub64enc(v: bytes, args: tuple, ctx: Any) -> bytes:
    return base64.urlsafe_b64encode(v).rstrip(b"=")


def ub64dec(v: bytes, args: tuple, ctx: Any) -> bytes | None:
    """base64url without padding; any other byte, or a length of 4n+1, fails."""
    try:
        return base64.b64decode(v.translate(_URL64) + b"=" * (-len(v) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


_URL64 = bytes.maketrans(b"-_", b"+/")


def check_digest(args: tuple) -> str | None:
    name = args[0].decode("latin-1") if args else ""
    try:
        hashlib.new(name)
    except (ValueError, TypeError):
        return "algorithm must be a valid OpenSSL message digest name."
    return None


def digest(v: bytes, args: tuple, ctx: Any) -> bytes:
    return hashlib.new(args[0].decode("latin-1"), v).digest()


_SHA2 = {224: hashlib.sha224, 256: hashlib.sha256, 384: hashlib.sha384,
         512: hashlib.sha512}


def check_sha2(args: tuple) -> str | None:
    if args and args[0] not in _SHA2:
        return f"Unsupported number of bits: '{args[0]}'"
    return None


def sha2(v: bytes, args: tuple, ctx: Any) -> bytes:
    return _SHA2[args[0] if args else 256](v).digest()


def _hash(fn: Callable[[bytes], int]) -> Callable[[bytes, tuple, Any], int]:
    """A 32-bit hash; a non-zero argument applies HAProxy's avalanche (full_hash)."""
    def conv(v: bytes, args: tuple, ctx: Any) -> int:
        h = fn(v)
        return full_hash(h) if args and args[0] else h
    return conv


def xxh32_conv(v: bytes, args: tuple, ctx: Any) -> int:
    """``xxh32([<seed>])``: an unsigned 32-bit quantity."""
    return xxh32(v, args[0] if args else 0)


def xxh64_conv(v: bytes, args: tuple, ctx: Any) -> int:
    """``xxh64([<seed>])``: a signed 64-bit quantity, as HAProxy gives it."""
    h = xxh64(v, (args[0] if args else 0) & 0xFFFFFFFFFFFFFFFF)
    return h - (1 << 64) if h >= 1 << 63 else h


crc32 = _hash(hash_crc32)
djb2 = _hash(hash_djb2)
sdbm = _hash(hash_sdbm)
wt6 = _hash(hash_wt6)


def cut_crlf(v: bytes, args: tuple, ctx: Any) -> bytes:
    """Everything before the first CR or LF."""
    for i, c in enumerate(v):
        if c == 13 or c == 10:
            return v[:i]
    return v


def host_only(v: bytes, args: tuple, ctx: Any) -> bytes:
    """A Host value without its port, lower-cased (``[::1]:80`` gives ``[::1]``)."""
    end = v.find(b"]") + 1 if v.startswith(b"[") else 0
    colon = v.find(b":", end)
    return (v if colon < 0 else v[:colon]).lower()


def port_only(v: bytes, args: tuple, ctx: Any) -> int:
    """A Host value's port, 0 when it has none. Like HAProxy, the digits are not
    checked: each byte adds ``byte - '0'`` (``8x`` gives 152)."""
    end = v.find(b"]") + 1 if v.startswith(b"[") else 0
    colon = v.find(b":", end)
    port = 0
    if colon >= 0:
        for c in v[colon + 1:]:
            port = (port * 10 + c - 48) & 0xFFFFFFFF
    return port


# ------------------------------------------------------------ variables


def check_set_var(args: tuple) -> str | None:
    """``set-var(<var>[,<cond>...])``: a valid name, known conditions."""
    name = args[0].decode("latin-1") if args else ""
    err = variables.name_error(name)
    if err is not None:
        return err
    for cond in args[1:]:
        if cond.decode("latin-1") not in variables.CONDITIONS:
            return f'unknown condition "{cond.decode("latin-1")}"'
    return None


def check_var_arg(args: tuple) -> str | None:
    """``strcmp``/``secure_memcmp(<var>)``: a scoped variable name."""
    if not args or not args[0]:
        return "missing variable name"
    if not variables.valid(args[0].decode("latin-1")):
        return f"failed to register variable name '{args[0].decode('latin-1')}'"
    return None


def _var_bytes(ctx: Any, name: bytes) -> bytes | None:
    v = variables.get(ctx, name.decode("latin-1"))
    if v is None:
        return None
    if isinstance(v, str):
        return v.encode("utf-8", "surrogateescape")
    if isinstance(v, bool):
        return b"1" if v else b"0"
    if isinstance(v, int):
        return str(v).encode("ascii")
    return v if isinstance(v, bytes) else str(v).encode("ascii")


def set_var(v: Any, args: tuple, ctx: Any) -> Any:
    """Store the value in the variable (when its conditions hold) and pass it on."""
    variables.assign(ctx, args[0].decode("latin-1"), v,
                     tuple(c.decode("latin-1") for c in args[1:]))
    return v


def strcmp(v: bytes, args: tuple, ctx: Any) -> int | None:
    """HAProxy's result: the difference of the first differing bytes, else -1, 0 or 1
    as the value is shorter, as long or longer; no sample when the variable is unset."""
    other = _var_bytes(ctx, args[0])
    if other is None:
        return None
    for a, b in zip(v, other, strict=False):
        if a != b:
            return a - b
    return (len(v) > len(other)) - (len(v) < len(other))


def secure_memcmp(v: bytes, args: tuple, ctx: Any) -> bool | None:
    """True when the value equals the variable's bytes (constant-time comparison)."""
    other = _var_bytes(ctx, args[0])
    if other is None:
        return None
    return hmac.compare_digest(v, other)
