"""Errorfiles: checking a raw HTTP response file as HAProxy 2.6 reads it, and the
bytes it then sends for it.

Owns: the lenient response-head reader HAProxy applies to `errorfile` files (what it
accepts, and the error texts and offsets it reports), and the wire form of an
accepted file: CRLF line ends, lower-cased header names, and `connection: close`
on an HTTP/1.1 page that gives no length (the connection's end is the page's end).
An empty file is valid and means "send nothing, close".

Every rule below was read from HAProxy 2.6.12's answers to probe files
(tests/test_http_errors.py keeps them).

Must not import: anything outside the standard library (layer L1, I/O-free).
"""

from __future__ import annotations

_VERSION_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789./")
_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                   b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_SPHT = b" \t"
_INCOMPLETE = -2  # HAProxy's offset for a head that never ends


class _Bad(Exception):
    def __init__(self, text: str) -> None:
        self.text = text


def _line_end(data: bytes, i: int) -> int:
    """Index after the line end at ``i`` (CRLF or LF); a CR alone is an error at the
    byte after it."""
    if data[i] == 0x0A:
        return i + 1
    if i + 1 >= len(data):
        raise _Bad(f"unable to parse headers (error offset: {_INCOMPLETE})")
    if data[i + 1] != 0x0A:
        raise _Bad(f"unable to parse headers (error offset: {i + 1})")
    return i + 2


def _offset(i: int) -> _Bad:
    return _Bad(f"unable to parse headers (error offset: {i})")


def parse(data: bytes) -> tuple[bytes, list[tuple[bytes, bytes]], bytes]:
    """(start line, headers, body) of an errorfile, or ``_Bad`` with HAProxy's text."""
    n = len(data)
    i = 0
    while i < n and data[i] in b"\r\n":  # empty lines before the start line
        i += 1
    start = i
    while i < n and data[i] in _VERSION_CHARS:
        i += 1
    if i >= n:
        raise _offset(_INCOMPLETE)
    if data[i] not in _SPHT or i == start:
        raise _offset(i)
    version = data[start:i]
    while i < n and data[i] in _SPHT:
        i += 1
    if i >= n:
        raise _offset(_INCOMPLETE)
    while i < n and 0x30 <= data[i] <= 0x39:
        i += 1
    if i >= n:
        raise _offset(_INCOMPLETE)
    if data[i] not in b" \t\r\n":
        raise _offset(i)
    while i < n and data[i] not in b"\r\n":  # the reason: anything to the line end
        i += 1
    if i >= n:
        raise _offset(_INCOMPLETE)
    first = data[start:i].rstrip(b" \t")
    i = _line_end(data, i)
    headers: list[tuple[bytes, bytes]] = []
    while True:
        if i >= n:
            raise _offset(_INCOMPLETE)
        if data[i] in b"\r\n":
            i = _line_end(data, i)
            break
        if data[i] in _SPHT and headers:  # obsolete line folding: joined with a space
            j = i
            while j < n and data[j] not in b"\r\n":
                j += 1
            if j >= n:
                raise _offset(_INCOMPLETE)
            name, value = headers[-1]
            headers[-1] = (name, value + b" " + data[i:j].strip(b" \t"))
            i = _line_end(data, j)
            continue
        j = i
        while j < n and data[j] in _TOKEN:
            j += 1
        if j >= n:
            raise _offset(_INCOMPLETE)
        if data[j] != 0x3A or j == i:
            raise _offset(j)
        name = data[i:j]
        k = j + 1
        while k < n and data[k] in _SPHT:
            k += 1
        vstart = k
        while k < n and data[k] not in b"\r\n":
            k += 1
        if k >= n:
            raise _offset(_INCOMPLETE)
        value = data[vstart:k].rstrip(b" \t")
        lname = name.lower()
        if lname == b"content-length" and not value.isdigit():
            raise _offset(vstart)
        headers.append((name, value))
        i = _line_end(data, k)
    if len(version) != 8:
        raise _Bad(f"invalid http version ({version.decode('latin-1')})")
    body = data[i:]
    for name, value in headers:
        lname = name.lower()
        if lname == b"transfer-encoding" and b"chunked" in value.lower():
            raise _Bad("chunk-encoded payload not supported")
        if lname == b"content-length" and int(value) != len(body):
            raise _Bad(f"payload size does not match the announced content-length "
                       f"({len(body)} != {int(value)})")
    return first, headers, body


def problem(data: bytes) -> str | None:
    """HAProxy's complaint about an errorfile's content, or None when it is valid."""
    if not data:
        return None
    try:
        parse(data)
    except _Bad as exc:
        return exc.text
    return None


def wire(data: bytes) -> bytes:
    """What is sent for a valid errorfile (``problem(data)`` is None)."""
    if not data:
        return b""
    first, headers, body = parse(data)
    lines = [first]
    sized = False
    closes = False
    for name, value in headers:
        lname = name.lower()
        sized = sized or lname in (b"content-length", b"transfer-encoding")
        closes = closes or (lname == b"connection" and b"close" in value.lower())
        lines.append(lname + b": " + value)
    if not sized and not closes and first[5:8] == b"1.1":
        lines.append(b"connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def closes(page: bytes) -> bool:
    """Whether the connection must close after ``page`` (a page from ``wire``, or a
    reply lb built): nothing to send, or no length and so no other end than the
    connection's."""
    if not page:
        return True
    if page[9:12] in (b"204", b"304"):
        return False
    end = page.find(b"\r\n\r\n")
    head = page[:end].lower()
    if b"\nconnection: close" in head:
        return True
    return b"\ncontent-length:" not in head and b"\ntransfer-encoding:" not in head
