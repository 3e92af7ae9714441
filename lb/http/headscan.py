"""A one-pass scan of a plain HTTP/1.1 message that arrived whole in one read.

Owns: ``scan_request`` and ``scan_response``, the fast path in front of httptools
for the messages that make up most traffic. A plain request is ``METHOD /path
HTTP/1.1``, header lines of token names and visible-ASCII values, no body, nothing
behind the head. A plain response is ``HTTP/1.1`` with a final status that has a
body (200-599 but 204 and 304), the same kind of header lines, one Content-Length,
and exactly that many body bytes behind the head; or a 101 with its tunnel bytes
behind. For these the scan returns what the httptools callbacks would have given lb,
without a callback into Python per header (issue #9, docs/performance.md,
thirteenth session). An upgrade (a WebSocket handshake and its 101) is taken too:
the caller stops there as it does when httptools stops.

Anything else returns None and goes to httptools unchanged: other versions, methods
outside a short list, absolute-form or ``*`` targets, bytes from 0x80 up, a bare CR
or LF, obs-fold, empty lines in front, request bodies, a response body not all there
(or more than it), pipelined bytes, the headers after which llhttp frames a message
itself (Transfer-Encoding, Proxy-Connection, Content-Length in a request), and
Connection or Upgrade headers other than one of each, Connection holding only the
tokens close, keep-alive and upgrade. The accepted shape is a strict subset of what
llhttp accepts, so a message either takes this path with the same result or is
parsed as before; tests/test_headscan.py checks both against httptools.

The compiled module runs the C body in ``headscan.pxd``; pure Python runs the
regular expressions below, which accept exactly the same heads.

Must not import: asyncio or anything doing I/O (layer L1).
"""

from __future__ import annotations

import re

try:  # True only inside the Cython-compiled copy (tools/build_accel.py)
    import cython
    COMPILED = cython.compiled
except ImportError:  # pure Python without Cython installed
    COMPILED = False

# method, url, headers, head size, keep-alive, upgrade
Head = tuple[bytes, bytes, list[tuple[bytes, bytes]], int, bool, bool]
# status, reason, headers, head cost (reason + each header's name, value and 8), body
# offset (for a 101: where the server's tunnel bytes start), keep-alive
Response = tuple[int, bytes, list[tuple[bytes, bytes]], int, int, bool]

# methods llhttp knows that the scan takes; any other goes to httptools
METHODS = (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH")
# header names after which llhttp frames the message itself
FRAMING_NAMES = frozenset((b"content-length", b"transfer-encoding", b"proxy-connection"))
# Connection is taken when it is one header of a comma-separated list of these tokens
# (any case, OWS around each); Upgrade when it is one header with a value
CLOSE, KEEP_ALIVE, UPGRADE = 1, 2, 4
CONNECTION_TOKENS = {b"close": CLOSE, b"keep-alive": KEEP_ALIVE, b"upgrade": UPGRADE}

# origin-form target: visible ASCII without '#', which lb refuses (httptools path)
_REQUEST_LINE = re.compile(rb"(%s) (/[\x21\x22\x24-\x7e]*) HTTP/1\.1"
                           % b"|".join(METHODS))
_TCHAR = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
_FIELD = re.compile(rb"([" + _TCHAR + rb"]+):[ \t]*([\t\x20-\x7e]*)")
_STATUS_LINE = re.compile(rb"HTTP/1\.1 (101|[2-5][0-9][0-9]) ([\t\x20-\x7e]*)")
_DIGITS = re.compile(rb"[0-9]{1,18}")
# after these llhttp frames or ends a response itself
RESPONSE_FRAMING_NAMES = FRAMING_NAMES - {b"content-length"}


def scan_request(data: bytes, maxhdr: int, bufsize: int) -> Head | None:
    """(method, url, headers, head size, keep-alive, upgrade) of a plain head that is
    all of ``data`` (upgrade: llhttp would stop after it, as on a WebSocket
    handshake); None for anything else, including heads over ``bufsize`` or with
    ``maxhdr`` header lines or more, which httptools' path then refuses as before."""
    if COMPILED:
        return _scan_request_c(data, maxhdr, bufsize)  # noqa: F821 (C, headscan.pxd)
    end = data.find(b"\r\n\r\n")
    if end < 0 or end != len(data) - 4:
        return None
    lines = data[:end].split(b"\r\n")
    m = _REQUEST_LINE.fullmatch(lines[0])
    if m is None or len(m[2]) > bufsize:
        return None
    fields = _fields(lines[1:], FRAMING_NAMES)
    if fields is None:
        return None
    headers = []
    hsize = 0
    for name, value in fields[0]:
        hsize += len(name) + len(value) + 4
        headers.append((name, value.rstrip(b" \t")))
        if hsize > bufsize or len(headers) >= maxhdr:
            return None
    conn, upgrade = fields[1], fields[2]
    return m[1], m[2], headers, hsize, not conn & CLOSE, bool(upgrade and conn & UPGRADE)


def scan_response(data: bytes) -> Response | None:
    """(status, reason, headers, head cost, body offset, keep-alive) of a plain
    response that is all of ``data``, its whole body included, or of a 101 with
    Upgrade and ``Connection: upgrade`` (the rest of ``data`` is the server's first
    tunnel bytes); None for anything else. Header values keep their trailing OWS
    (as ServerConn keeps them); the caller checks the cost and the header count
    against its limits."""
    if COMPILED:
        return _scan_response_c(data)  # noqa: F821 (C, headscan.pxd)
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = data[:end].split(b"\r\n")
    m = _STATUS_LINE.fullmatch(lines[0])
    if m is None:
        return None
    status = int(m[1])
    if status == 204 or status == 304:
        return None
    reason = m[2]
    cost = len(reason)
    fields = _fields(lines[1:], RESPONSE_FRAMING_NAMES)
    if fields is None:
        return None
    headers = []
    length = -1
    for name, value in fields[0]:
        if name == b"content-length":
            if length >= 0 or _DIGITS.fullmatch(value) is None:
                return None
            length = int(value)
        cost += len(name) + len(value) + 8
        headers.append((name, value))
    conn, upgrade = fields[1], fields[2]
    if status == 101:
        if length >= 0 or not upgrade or not conn & UPGRADE:
            return None  # (llhttp refuses a 101 without both)
    elif upgrade or conn & UPGRADE or length != len(data) - end - 4:
        return None
    return status, reason, headers, cost, end + 4, not conn & CLOSE


def _fields(lines: list[bytes], framing: frozenset[bytes]
            ) -> tuple[list[tuple[bytes, bytes]], int, bool] | None:
    """The (lower-cased name, value) pairs of header lines, the value with its
    trailing OWS, the Connection tokens (CLOSE | KEEP_ALIVE | UPGRADE bits) and
    whether an Upgrade header came; None when a line is not plain, its name is in
    ``framing``, or Connection or Upgrade is not as they are taken."""
    fields = []
    conn = None
    upgrade = False
    for line in lines:
        f = _FIELD.fullmatch(line)
        if f is None:
            return None
        name = f[1].lower()
        value = f[2]
        if name == b"connection":
            if conn is not None:
                return None
            conn = 0
            for token in value.lower().split(b","):
                bit = CONNECTION_TOKENS.get(token.strip(b" \t"))
                if bit is None:
                    return None
                conn |= bit
        elif name == b"upgrade":
            if upgrade or not value:
                return None
            upgrade = True
        elif name in framing:
            return None
        fields.append((name, value))
    return fields, conn or 0, upgrade
