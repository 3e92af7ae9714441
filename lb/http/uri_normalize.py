"""The URI normalizers of `http-request normalize-uri`, as HAProxy 2.6 applies them.

Owns: the NORMALIZERS table (name -> how it reads its option, which part of the
target it works on, the function) and the functions themselves, pure functions on
bytes. A function returns the new part, or None when a `strict` normalizer finds an
invalid percent sequence (the request then gets a 400).

The parts, as HAProxy cuts them: ``path`` is the path without the query, ``query``
is the query with its leading ``?`` (none: the rule does nothing), ``pathq`` is the
path with the query and anything after it (HAProxy does not cut a fragment off:
``#`` is only let in by `option accept-invalid-http-request`).

Must not import: asyncio, lb.proxy, lb.state (layer L1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

_HEX = frozenset(b"0123456789abcdefABCDEF")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def fragment_encode(part: bytes, _option: bool) -> bytes:
    """Every ``#`` written ``%23``."""
    return part.replace(b"#", b"%23")


def fragment_strip(part: bytes, _option: bool) -> bytes:
    """Everything from the first ``#`` on dropped."""
    return part.partition(b"#")[0]


def merge_slashes(path: bytes, _option: bool) -> bytes:
    """Runs of ``/`` made one."""
    if b"//" not in path:
        return path
    out = bytearray()
    prev = 0
    for c in path:
        if c == 0x2F and prev == 0x2F:
            continue
        out.append(c)
        prev = c
    return bytes(out)


def strip_dot(path: bytes, _option: bool) -> bytes:
    """Segments that are ``.`` dropped with the slash after them (``/a/./b`` ->
    ``/a/b``, ``/a/.`` -> ``/a/``)."""
    pieces = path.split(b"/")
    out: list[bytes] = []
    for piece in pieces[:-1]:  # each followed by a slash
        if piece != b".":
            out.append(piece + b"/")
    last = pieces[-1]
    if last != b".":
        out.append(last)
    return b"".join(out)


def strip_dotdot(path: bytes, full: bool) -> bytes:
    """Each ``/..`` segment removes the segment before it, read from the end. Those
    left over when the path runs out stay at the front as ``/..``, unless ``full``
    drops them. Empty segments count as segments (``/foo//../`` -> ``/foo/``), and
    ``%2E%2E`` is not ``..``."""
    if b"/.." not in path:
        return path
    pieces: list[bytes] = []  # what is kept, last piece first
    up = 0
    i = len(path) - 1  # the last byte not yet read
    if path.endswith(b"/.."):
        up = 1
        i -= 2  # (the slash of `/..` is read as the end of the segment before it)
    while i >= 0:
        if i >= 3 and path[i - 3:i + 1] == b"/../":
            up += 1
            i -= 3
            continue
        if up:
            i -= 1  # the slash
            if i >= 0:
                up -= 1
                i = path.rfind(b"/", 0, i + 1)  # the segment, dropped
            continue
        start = path.rfind(b"/", 0, i)  # the byte at i (a slash, or the last one) kept
        pieces.append(path[start + 1:i + 1])
        i = start
    out = b"".join(reversed(pieces))
    if up:
        out = (b"" if full else b"/.." * up) + b"/" + out
    return out


def _percent_walk(part: bytes, strict: bool, sequence: Callable[[bytes], bytes]
                  ) -> bytes | None:
    """``part`` with each valid ``%XX`` replaced by ``sequence(b"%XX")``. A ``%``
    without two hex digits is kept, or the part refused (None) when ``strict``."""
    if b"%" not in part:
        return part
    out = bytearray()
    i, n = 0, len(part)
    while i < n:
        c = part[i]
        if c == 0x25:
            if i + 2 < n and part[i + 1] in _HEX and part[i + 2] in _HEX:
                out += sequence(part[i:i + 3])
                i += 3
                continue
            if strict:
                return None
        out.append(c)
        i += 1
    return bytes(out)


def _decode_unreserved(seq: bytes) -> bytes:
    v = int(seq[1:], 16)
    return bytes((v,)) if v in _UNRESERVED else seq


def percent_decode_unreserved(part: bytes, strict: bool) -> bytes | None:
    """``%XX`` sequences of letters, digits, ``-._~`` decoded; others kept."""
    return _percent_walk(part, strict, _decode_unreserved)


def percent_to_uppercase(part: bytes, strict: bool) -> bytes | None:
    """Hex digits of ``%XX`` sequences upper-cased."""
    return _percent_walk(part, strict, bytes.upper)


def query_sort(query: bytes, _option: bool) -> bytes:
    """The ``&``-separated parameters of ``?query`` sorted by name (bytes order, a
    name before the longer ones it starts; equal names keep their order). An empty
    last parameter (a final ``&``) is dropped, as HAProxy's splitting drops it."""
    params = query[1:].split(b"&")
    if params[-1] == b"":
        params.pop()
    params.sort(key=lambda p: p.partition(b"=")[0])
    return query[:1] + b"&".join(params)


@dataclass(frozen=True, slots=True)
class Normalizer:
    """One row of the table: the option word it takes (None: none), the part of the
    target it rewrites ("path", "query" or "pathq") and the function."""

    option: str | None
    part: str
    fn: Callable[[bytes, bool], bytes | None]


NORMALIZERS: dict[str, Normalizer] = {
    "fragment-encode": Normalizer(None, "pathq", fragment_encode),
    "fragment-strip": Normalizer(None, "pathq", fragment_strip),
    "path-merge-slashes": Normalizer(None, "path", merge_slashes),
    "path-strip-dot": Normalizer(None, "path", strip_dot),
    "path-strip-dotdot": Normalizer("full", "path", strip_dotdot),
    "percent-decode-unreserved": Normalizer("strict", "pathq", percent_decode_unreserved),
    "percent-to-uppercase": Normalizer("strict", "pathq", percent_to_uppercase),
    "query-sort-by-name": Normalizer(None, "query", query_sort),
}


def normalize(name: str, option: bool, pathq: bytes) -> bytes | None:
    """``pathq`` (a request target's path and what follows, starting with ``/``)
    after the normalizer ``name``; None: a strict normalizer found it invalid."""
    row = NORMALIZERS[name]
    if row.part == "pathq":
        return row.fn(pathq, option)
    path, q, query = pathq.partition(b"?")
    if row.part == "path":
        new = row.fn(path, option)
        return None if new is None else new + q + query
    if not q:
        return pathq
    new = row.fn(q + query, option)
    return None if new is None else path + new
