"""HTTP/1.1 message rules that need no I/O.

Owns: the request checks httptools does not make by itself (version, Transfer-Encoding
order, head size is measured by the caller), the Connection-header token logic of
spec §8.1, `option forwardfor` (§8.2), upgrade / WebSocket detection and the 101
validation of §10 (including Sec-WebSocket-Accept), and head serialisation with the
header names lower-cased as HAProxy's H1 layer does in both directions.

Headers are kept as a list of ``(lower-cased name, raw value)`` byte pairs, in order.

What httptools (llhttp, strict mode) already rejects, checked in tests/test_h1.py:
Content-Length together with Transfer-Encoding, duplicate Content-Length (even equal),
Transfer-Encoding with a coding after chunked, bare CR, obs-fold, NUL and other
invalid bytes in values, invalid tokens in names, garbage request lines, LF-only line
ends. Checked here: HTTP versions other than 1.0/1.1, Transfer-Encoding (chunked last
and alone, else 400 or 422: ``te_status``), conflicting Host / absolute-form authority
(``host_conflict``), header count. docs/conformance.md compares all this with HAProxy.

Must not import: asyncio or anything doing I/O (layer L1).
"""

from __future__ import annotations

import binascii
import hashlib
import ipaddress
import re

try:  # True only inside the Cython-compiled copy (tools/build_accel.py)
    import cython
    COMPILED = cython.compiled
except ImportError:  # pure Python without Cython installed
    COMPILED = False

Headers = list[tuple[bytes, bytes]]

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_VERSIONS = frozenset((b"1.0", b"1.1"))


# --------------------------------------------------------------------------- lookups


def get(headers: Headers, name: bytes) -> bytes | None:
    """First value of a header (name lower-cased)."""
    for n, v in headers:
        if n == name:
            return v
    return None


def count(headers: Headers, name: bytes) -> int:
    """How many header lines are named ``name`` (lower-cased)."""
    k = 0
    for n, _ in headers:
        if n == name:
            k += 1
    return k


def tokens(headers: Headers, name: bytes) -> list[bytes]:
    """Comma-separated tokens of every `name` header, lower-cased and stripped."""
    out: list[bytes] = []
    for n, v in headers:
        if n == name:
            for t in v.split(b","):
                t = t.strip()
                if t:
                    out.append(t.lower())
    return out


_CONN_OPTIONS = (b"keep-alive", b"close")


def clean_connection(value: bytes) -> bytes | None:
    """A Connection value without its ``keep-alive`` and ``close`` tokens, as HAProxy
    2.6.12's H1 parser keeps it: unchanged when it has neither, else the other tokens
    joined by ``,``, or None when none is left (the header goes)."""
    parts = [t.strip() for t in value.split(b",")]
    kept = [t for t in parts if t and t.lower() not in _CONN_OPTIONS]
    if len(kept) == len([t for t in parts if t]):
        return value
    return b",".join(kept) if kept else None


def clean_connection_headers(headers: Headers) -> Headers:
    """``headers`` with every Connection line cleaned (``clean_connection``)."""
    out: Headers = []
    for n, v in headers:
        if n == b"connection":
            v = clean_connection(v)  # type: ignore[assignment]
            if v is None:
                continue
        out.append((n, v))
    return out


def upgrade_connection(headers: Headers) -> bytes:
    """The Connection value an upgrade request carries to its server: the client's
    own, cleaned of ``keep-alive`` and ``close`` (``clean_connection``). HAProxy
    2.6.12 passes it so, e.g. ``Upgrade, HTTP2-Settings`` whole for an h2c upgrade,
    whose server may insist on seeing the second token (RFC 7540 3.2.1)."""
    out: list[bytes] = []
    for n, v in headers:
        if n == b"connection":
            cleaned = clean_connection(v)
            if cleaned is not None:
                out.append(cleaned)
    return b", ".join(out) or b"upgrade"


# --------------------------------------------------------------------------- request checks


def check_request(version: bytes, headers: Headers, max_headers: int = 101) -> str | None:
    """Return a reason when the parsed request must be refused with 400, else None."""
    if version not in _VERSIONS:
        return "version"
    if len(headers) > max_headers:
        return "too_many_headers"
    te = [v for n, v in headers if n == b"transfer-encoding"]
    if te and te_status(te):
        return "transfer_encoding"
    return None


def te_status(values: list[bytes]) -> int:
    """Refusal status for the Transfer-Encoding values of a request, 0 when acceptable.

    As HAProxy 2.6.12: `chunked` must be the last coding and appear once (else 400);
    any other coding before it, an empty list element included, is 422 (HAProxy
    decodes none). Checked against HAProxy: tests/data/conformance_haproxy.json.
    """
    codings = [t.strip(b" \t").lower() for v in values for t in v.split(b",")]
    if codings[-1] != b"chunked" or codings.count(b"chunked") != 1:
        return 400
    return 422 if len(codings) > 1 else 0


_DEFAULT_PORT = {b"http": b":80", b"https": b":443"}


def host_conflict(url: bytes, hosts: list[bytes]) -> bool:
    """Whether the Host headers disagree with each other, or with the authority of an
    absolute-form URI (HAProxy 2.6 answers 400). Compared case-insensitively, without
    userinfo, and the scheme's default port is ignored between URI and Host."""
    first = hosts[0].strip(b" \t").lower()
    for h in hosts[1:]:
        if h.strip(b" \t").lower() != first:
            return True
    if url[:1] == b"/" or url == b"*":
        return False
    i = url.find(b"://")
    if i <= 0:
        return False
    scheme = url[:i].lower()
    end = url.find(b"/", i + 3)
    auth = url[i + 3:end if end >= 0 else len(url)].rpartition(b"@")[2].lower()
    if not auth:
        return False
    port = _DEFAULT_PORT.get(scheme)
    if port is not None:
        if auth.endswith(port):
            auth = auth[:-len(port)]
        if first.endswith(port):
            first = first[:-len(port)]
    return auth != first


def drop_upgrade(headers: Headers) -> Headers:
    """The headers without `Upgrade` and without the `upgrade` Connection token.

    HAProxy 2.6.12 does not upgrade a request that carries a body: it forwards it as
    a plain request with these removed (tools/conformance, cases *_with_*_body).
    """
    out: Headers = []
    for n, v in headers:
        if n == b"upgrade":
            continue
        if n == b"connection":
            toks = [t.strip() for t in v.split(b",") if t.strip().lower() != b"upgrade"]
            if not toks:
                continue
            v = b", ".join(toks)
        out.append((n, v))
    return out


def client_wants_close(version: bytes, conn: list[bytes]) -> bool:
    """Whether the client asked for the connection to end after this exchange."""
    if version == b"1.1":
        return b"close" in conn
    return b"keep-alive" not in conn


def is_upgrade(conn: list[bytes], headers: Headers) -> bool:
    """Connection carries `upgrade` and an Upgrade header is present (spec §10)."""
    return b"upgrade" in conn and get(headers, b"upgrade") is not None


def is_websocket(headers: Headers) -> bool:
    up = get(headers, b"upgrade")
    if up == b"websocket":
        return True
    return up is not None and b"websocket" in [t.strip().lower() for t in up.split(b",")]


def ws_key_valid(key: bytes | None) -> bool:
    """A Sec-WebSocket-Key is 24 base64 characters encoding 16 bytes."""
    if key is None:
        return False
    key = key.strip()
    if len(key) != 24:
        return False
    try:
        return len(binascii.a2b_base64(key, strict_mode=True)) == 16  # b64decode's check
    except (binascii.Error, ValueError):
        return False


def ws_accept(key: bytes) -> bytes:
    """The Sec-WebSocket-Accept value for a key (RFC 6455 §4.2.2)."""
    if COMPILED and type(key) is bytes:
        acc = _ws_accept_c(key)  # noqa: F821 (h1.pxd)
        if acc is not None:
            return acc
    # binascii directly: base64.b64encode is a Python function around it
    return binascii.b2a_base64(hashlib.sha1(key.strip() + WS_GUID).digest(), newline=False)


def _use_sha1_ni(on: bool) -> bool:
    """Compiled: run the SHA-NI block of ws_accept when ``on`` and the CPU has the
    SHA extensions, else the portable one; whether SHA-NI is now in use. For the
    tests, which check both against hashlib; pure Python uses hashlib (False)."""
    global _sha1_ni_state  # (h1.pxd: the C variable behind the choice)
    if not COMPILED:
        return False
    _sha1_ni_state = -1  # ask the CPU again
    ni = _sha1_ni()  # noqa: F821 (h1.pxd)
    _sha1_ni_state = 1 if on and ni else 0
    return bool(on and ni)


def check_101(req_headers: Headers, res_headers: Headers, websocket: bool) -> str | None:
    """Validate a 101 answer to an upgrade request; None when valid, else a reason."""
    if b"upgrade" not in tokens(res_headers, b"connection"):
        return "no_connection_upgrade"
    if websocket:
        acc = get(res_headers, b"sec-websocket-accept")
        key = get(req_headers, b"sec-websocket-key")
        if acc is None or key is None or acc.strip() != ws_accept(key):
            return "bad_accept"
    return None


# --------------------------------------------------------------------------- forwardfor


class ForwardForRule:
    """`option forwardfor` compiled once per (frontend, backend) pair (spec §8.2)."""

    __slots__ = ("header", "except_net", "if_none")

    def __init__(self, header: str, except_net: str | None, if_none: bool) -> None:
        self.header = header.lower().encode("latin-1")
        self.except_net = (ipaddress.ip_network(except_net, strict=False)
                           if except_net else None)
        self.if_none = if_none

    def apply(self, headers: Headers, src: str) -> None:
        if self.except_net is not None:
            try:
                if ipaddress.ip_address(src) in self.except_net:
                    return
            except ValueError:
                pass
        if self.if_none and get(headers, self.header) is not None:
            return
        headers.append((self.header, src.encode("latin-1")))


def merge_forwardfor(fe: object | None, be: object | None) -> ForwardForRule | None:
    """Combine frontend and backend `option forwardfor` (model.ForwardFor or None)."""
    if fe is None and be is None:
        return None
    main = be if be is not None else fe
    header = getattr(main, "header", "x-forwarded-for")
    except_net = getattr(be, "except_net", None) or getattr(fe, "except_net", None)
    if fe is not None and be is not None:
        if_none = bool(getattr(fe, "if_none", False) and getattr(be, "if_none", False))
    else:
        if_none = bool(getattr(main, "if_none", False))
    return ForwardForRule(header, except_net, if_none)


class OriginalToRule:
    """`option originalto` of a (frontend, backend) pair, as HAProxy 2.6.12 combines
    them: the backend's header name when it sets the option, else the frontend's; no
    header when the address is in either side's `except` network. Appended, after any
    X-Forwarded-For, even when the request has one already."""

    __slots__ = ("header", "nets")

    def __init__(self, header: str, nets: tuple[str, ...]) -> None:
        self.header = header.lower().encode("latin-1")
        self.nets = tuple(ipaddress.ip_network(n, strict=False) for n in nets)

    def apply(self, headers: Headers, dst: str) -> None:
        if self.nets:
            try:
                addr = ipaddress.ip_address(dst)
            except ValueError:
                addr = None
            if addr is not None and any(addr in n for n in self.nets):
                return
        headers.append((self.header, dst.encode("latin-1")))


def merge_originalto(fe: object | None, be: object | None) -> OriginalToRule | None:
    """Combine frontend and backend `option originalto` (model.OriginalTo or None)."""
    if fe is None and be is None:
        return None
    main = be if be is not None else fe
    nets = tuple(n for n in (getattr(fe, "except_net", None), getattr(be, "except_net", None))
                 if n)
    return OriginalToRule(getattr(main, "header", "x-original-to"), nets)


# --------------------------------------------------------------------------- serialisation


def capture(headers: Headers, caps: tuple[tuple[bytes, int], ...]) -> list[bytes]:
    """`capture request|response header`: for each (name, len), the value of the
    last header of that name, cut to len bytes (b"" when there is none; a slot with
    no name, filled by a `capture` rule, starts empty)."""
    out = []
    for name, size in caps:
        value = b""
        if name:
            for k, v in headers:
                if k == name:
                    value = v
        out.append(value[:size])
    return out


def capture_cookie(headers: Headers, name: bytes, prefix: bytes, size: int) -> bytes | None:
    """`capture cookie`: ``name=value`` of the first cookie whose name starts with
    ``prefix`` in the ``name`` headers (``cookie``: every pair of each header;
    ``set-cookie``: the first pair of each), cut to ``size`` bytes; None when none."""
    for k, v in headers:
        if k != name:
            continue
        pairs = v.split(b";") if name == b"cookie" else v.split(b";", 1)[:1]
        for pair in pairs:
            pair = pair.strip(b" \t")
            if pair.startswith(prefix) and b"=" in pair:
                return pair[:size]
    return None


def with_name_header(headers: Headers, name: bytes, server: str) -> list[tuple[bytes, bytes]]:
    """`http-send-name-header`: the headers without any ``name`` header, then
    ``name: <server>`` (a retry on another server replaces the first one)."""
    out = [h for h in headers if h[0] != name]
    out.append((name, server.encode("latin-1", "replace")))
    return out


def request_head(method: bytes, url: bytes, version: bytes, headers: Headers,
                 conn: bytes | None) -> bytes:
    """Serialise a request head; Connection headers are replaced by `conn` (if any)."""
    return _head([method, b" ", url, b" HTTP/", version, b"\r\n"], headers, conn)


def response_head(status: int, reason: bytes, headers: Headers, conn: bytes | None) -> bytes:
    """Serialise a response head for the client (always HTTP/1.1 on the wire)."""
    known = _STATUS_LINES.get(status)
    if known is not None and known[0] == reason:
        line = known[1]
    else:
        line = b"HTTP/1.1 %d %s\r\n" % (status, reason)
        if len(_STATUS_LINES) < 256:
            _STATUS_LINES[status] = (reason, line)
    return _head([line], headers, conn)


def htx_head_size(reason: bytes, headers: Headers) -> int:
    """What a response head weighs in HAProxy's internal message (HTX), the ``%B``
    of an early (``option logasap``) line before the body: 20 bytes of start-line
    record, the version, the three status digits and the reason; each header's name
    and value (without the blanks around it); 1 for the end of the head. The Connection header counts without its
    ``close``/``keep-alive`` tokens (gone altogether when nothing else is left), as
    HAProxy's H1 layer reads it. Checked against HAProxy 2.6.12 in
    tests/test_logasap.py."""
    size = 20 + 8 + 3 + len(reason) + 1
    for n, v in headers:
        if n == b"connection":
            kept = [t.strip() for t in v.split(b",")
                    if t.strip() and t.strip().lower() not in _CONN_OPTIONS]
            if kept:
                size += 10 + sum(len(t) for t in kept) + 2 * (len(kept) - 1)
            continue
        size += len(n) + len(v.strip(b" \t"))
    return size


# status -> (reason, status line): servers send few distinct pairs
_STATUS_LINES: dict[int, tuple[bytes, bytes]] = {}


def _head(parts: list[bytes], headers: Headers, conn: bytes | None) -> bytes:
    """The header lines after the first, then the blank line, in one join: no
    intermediate bytes per header (hot path: every request and response). Compiled,
    ``_head_c`` (h1.pxd) writes the same bytes into one allocation instead."""
    if COMPILED:
        out = _head_c(parts, headers, conn)  # noqa: F821 (a C function of h1.pxd)
        if out is not None:
            return out
    for n, v in headers:
        if n != b"connection":
            parts.append(n)
            parts.append(b": ")
            parts.append(v)
            parts.append(b"\r\n")
    if conn:
        parts.append(b"connection: ")
        parts.append(conn)
        parts.append(b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def conn_value(old: list[bytes], close: bool, keep_alive: bool) -> bytes | None:
    """The Connection header to send: the peer's other tokens (e.g. `upgrade`) kept,
    keep-alive/close removed, then `close` or `keep-alive` added as decided."""
    kept = [t for t in old if t != b"close" and t != b"keep-alive"]
    if b"upgrade" in kept:
        return b", ".join(kept)
    if close:
        kept.append(b"close")
    elif keep_alive:
        kept.append(b"keep-alive")
    return b", ".join(kept) if kept else None


_BAD_NAME = re.compile(rb"[^A-Za-z0-9-]")


def restrict_names(headers: list[tuple[bytes, bytes]], policy: str) -> bool:
    """`option http-restrict-req-hdr-names delete|reject`: with `delete` the headers
    whose name has a character outside [A-Za-z0-9-] go; with `reject`, True when
    there is one (the request is then refused with a 403)."""
    search = _BAD_NAME.search
    if policy == "reject":
        return any(search(name) is not None for name, _ in headers)
    if any(search(name) is not None for name, _ in headers):
        headers[:] = [h for h in headers if search(h[0]) is None]
    return False


def has_bad_value(value: bytes) -> bool:
    """A runtime-built header value must not carry CR, LF or NUL."""
    # bytes.find: `in` with a bytes needle costs a raised and cleared TypeError
    return value.find(b"\r") >= 0 or value.find(b"\n") >= 0 or value.find(b"\x00") >= 0


def join_tail(head: bytes, data: bytes, off: int) -> bytes:
    """``head + data[off:]``, made in one allocation when compiled (a response head
    and the body that came behind the server's head in the same read)."""
    if COMPILED:
        return _join_tail_c(head, data, off)  # noqa: F821 (a C function of h1.pxd)
    return head + data[off:]


def chunk(data: bytes) -> tuple[bytes, bytes, bytes]:
    """The three buffers of one chunk of a chunked body (for writelines)."""
    return (b"%x\r\n" % len(data), data, b"\r\n")


def trailers_block(trailers: Headers) -> bytes:
    return b"0\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in trailers) + b"\r\n"
