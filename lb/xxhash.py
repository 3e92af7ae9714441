"""XXH64 and XXH32, the xxHash functions, written from their public specification.

Owns the hash HAProxy uses for dynamic cookies (a server's cookie value is the XXH64
of the backend's key, the server's address and its port; computed once per server)
and the `xxh32`/`xxh64` converters (per use, on short samples: pure Python is
enough for both).

Must not import: anything from lb (layer 0).
"""

from __future__ import annotations

_M64 = (1 << 64) - 1
_P1 = 0x9E3779B185EBCA87
_P2 = 0xC2B2AE3D27D4EB4F
_P3 = 0x165667B19E3779F9
_P4 = 0x85EBCA77C2B2AE63
_P5 = 0x27D4EB2F165667C5


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _M64


def _round(acc: int, lane: int) -> int:
    acc = (acc + lane * _P2) & _M64
    return (_rotl(acc, 31) * _P1) & _M64


def _merge(acc: int, v: int) -> int:
    acc ^= _round(0, v)
    return (acc * _P1 + _P4) & _M64


def xxh64(data: bytes, seed: int = 0) -> int:
    """The XXH64 of ``data`` as an unsigned 64-bit integer."""
    n = len(data)
    i = 0
    if n >= 32:
        v1 = (seed + _P1 + _P2) & _M64
        v2 = (seed + _P2) & _M64
        v3 = seed & _M64
        v4 = (seed - _P1) & _M64
        while i + 32 <= n:
            v1 = _round(v1, int.from_bytes(data[i:i + 8], "little"))
            v2 = _round(v2, int.from_bytes(data[i + 8:i + 16], "little"))
            v3 = _round(v3, int.from_bytes(data[i + 16:i + 24], "little"))
            v4 = _round(v4, int.from_bytes(data[i + 24:i + 32], "little"))
            i += 32
        acc = (_rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)) & _M64
        for v in (v1, v2, v3, v4):
            acc = _merge(acc, v)
    else:
        acc = (seed + _P5) & _M64
    acc = (acc + n) & _M64
    while i + 8 <= n:
        acc ^= _round(0, int.from_bytes(data[i:i + 8], "little"))
        acc = (_rotl(acc, 27) * _P1 + _P4) & _M64
        i += 8
    if i + 4 <= n:
        acc ^= (int.from_bytes(data[i:i + 4], "little") * _P1) & _M64
        acc = (_rotl(acc, 23) * _P2 + _P3) & _M64
        i += 4
    while i < n:
        acc ^= (data[i] * _P5) & _M64
        acc = (_rotl(acc, 11) * _P1) & _M64
        i += 1
    acc ^= acc >> 33
    acc = (acc * _P2) & _M64
    acc ^= acc >> 29
    acc = (acc * _P3) & _M64
    acc ^= acc >> 32
    return acc


_Q1 = 0x9E3779B1
_Q2 = 0x85EBCA77
_Q3 = 0xC2B2AE3D
_Q4 = 0x27D4EB2F
_Q5 = 0x165667B1
_M32 = (1 << 32) - 1


def _rotl32(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _M32


def _round32(acc: int, lane: int) -> int:
    return (_rotl32((acc + lane * _Q2) & _M32, 13) * _Q1) & _M32


def xxh32(data: bytes, seed: int = 0) -> int:
    """The XXH32 of ``data`` as an unsigned 32-bit integer."""
    n = len(data)
    i = 0
    seed &= _M32
    if n >= 16:
        v1 = (seed + _Q1 + _Q2) & _M32
        v2 = (seed + _Q2) & _M32
        v3 = seed
        v4 = (seed - _Q1) & _M32
        while i + 16 <= n:
            v1 = _round32(v1, int.from_bytes(data[i:i + 4], "little"))
            v2 = _round32(v2, int.from_bytes(data[i + 4:i + 8], "little"))
            v3 = _round32(v3, int.from_bytes(data[i + 8:i + 12], "little"))
            v4 = _round32(v4, int.from_bytes(data[i + 12:i + 16], "little"))
            i += 16
        acc = (_rotl32(v1, 1) + _rotl32(v2, 7) + _rotl32(v3, 12) + _rotl32(v4, 18)) & _M32
    else:
        acc = (seed + _Q5) & _M32
    acc = (acc + n) & _M32
    while i + 4 <= n:
        acc = (acc + int.from_bytes(data[i:i + 4], "little") * _Q3) & _M32
        acc = (_rotl32(acc, 17) * _Q4) & _M32
        i += 4
    while i < n:
        acc = (acc + data[i] * _Q5) & _M32
        acc = (_rotl32(acc, 11) * _Q1) & _M32
        i += 1
    acc ^= acc >> 15
    acc = (acc * _Q2) & _M32
    acc ^= acc >> 13
    acc = (acc * _Q3) & _M32
    acc ^= acc >> 16
    return acc
