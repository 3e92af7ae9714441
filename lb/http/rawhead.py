"""An HTTP/1 request head read from the raw bytes of a `mode tcp` connection.

Owns ``parse(data, limit)``: what HAProxy's HTTP fetches see when `tcp-request
content` rules (or use_backend) of a TCP frontend ask about the request, before any
HTTP processing (HAProxy's ``smp_prefetch_htx`` on a raw buffer). The answer is
``WAIT`` while the bytes are the valid beginning of a head, ``None`` when they cannot
be one (or fill the buffer without ending it), else the head: method, target,
version and the headers, names lower-cased.

The TCP session path only (lb.proxy.tcp): never on a request lb parses as HTTP.

Must not import: asyncio or anything doing I/O (layer L1).
"""

from __future__ import annotations

import re

Headers = list[tuple[bytes, bytes]]

WAIT = object()  # not a whole head yet: more bytes may make one

_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_URI = rb"[\x21-\x7e]+"
_LINE = re.compile(rb"(" + _TOKEN + rb") +(" + _URI + rb")(?: +HTTP/(\d)\.(\d))? *\r?")
# what a request line may begin with (its end not yet received): a method, a target,
# part of the version
_VERSION_START = rb"H(?:T(?:T(?:P(?:/(?:\d(?:\.(?:\d *\r?)?)?)?)?)?)?)?"
_LINE_START = re.compile(rb"(?:" + _TOKEN + rb"(?: +(?:" + _URI + rb"(?: *\r?| +"
                         + _VERSION_START + rb")?)?)?)?")
_FIELD = re.compile(rb"(" + _TOKEN + rb"):[ \t]*(.*?)[ \t]*\r?")


def parse(data: bytes, limit: int) -> tuple[bytes, bytes, bytes, Headers] | object | None:
    """The head at the start of ``data``; ``limit``: the size past which a head that
    has not ended never will (HAProxy: the buffer is full)."""
    end = data.find(b"\n\n")
    crlf = data.find(b"\r\n\r\n")
    if crlf >= 0 and (end < 0 or crlf < end):
        end = crlf
    if end < 0:
        if len(data) >= limit:
            return None
        first = data.split(b"\n", 1)[0]
        if b"\n" not in data:
            return WAIT if _LINE_START.fullmatch(first) else None
        return WAIT if _LINE.fullmatch(first) else None
    lines = data[:end].split(b"\n")
    m = _LINE.fullmatch(lines[0])
    if m is None:
        return None
    method, url, major, minor = m.groups()
    if major is None:  # HTTP/0.9: a GET with a target only, taken as 1.0
        if method != b"GET" or not url:
            return None
        version = b"1.0"
    else:
        version = major + b"." + minor
    headers: Headers = []
    for line in lines[1:]:
        f = _FIELD.fullmatch(line)
        if f is None:
            return None
        headers.append((f.group(1).lower(), f.group(2)))
    return method, url, version, headers
