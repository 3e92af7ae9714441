"""Fetches that read the bytes a TCP session's client has sent so far, before any
server is chosen: HAProxy's layer-6 request fetches (`req.len`, `req.payload`,
`req.ssl_hello_type`, `req.ssl_sni`, `req.ssl_ver` and their old `req_*` names).

Also `res.len` and `res.payload`, which read ``res_payload``: what a health check
has received (healthcheck.sampling; the proxy keeps no response buffer to read).

Owns: those fetch functions, the TLS ClientHello reader behind the `ssl` ones (lb
never terminates TLS; this only reads the plain-text hello, as HAProxy does for SNI
routing in `mode tcp`), and how a fetch says "not enough bytes yet".

The context exposes ``req_payload`` (the bytes held so far, or None when the
connection has no such buffer, as in HTTP mode) and ``inspect_final`` (no more bytes
will be waited for). A fetch that could answer differently once more bytes arrive
sets ``ctx.may_change``, HAProxy's SMP_F_MAY_CHANGE: `tcp-request content` rules then
wait (lb.proxy.inspect) until `tcp-request inspect-delay` runs out.

Must not import: lb.proxy, lb.config.
"""

from __future__ import annotations

from typing import Any

# every name these fetches go by (a frontend whose rules use one is given the bytes
# already there even without an inspect-delay: lb.proxy.tcp)
NAMES = frozenset({"req.len", "req_len", "req.payload", "req.ssl_hello_type",
                   "req_ssl_hello_type", "req.ssl_sni", "req_ssl_sni", "req.ssl_ver",
                   "req_ssl_ver"})

_HANDSHAKE = 0x16
_CLIENT_HELLO = 1
_EXT_SERVER_NAME = 0
_NAME_HOST = 0


def _buffer(ctx: Any) -> bytes | None:
    return getattr(ctx, "req_payload", None)


def _short(ctx: Any) -> list[Any]:
    """No sample yet: more bytes could give one (unless nothing more will come)."""
    if not getattr(ctx, "inspect_final", True):
        ctx.may_change = True
    return []


def req_len(ctx: Any, args: tuple) -> list[Any]:
    data = _buffer(ctx)
    if data is None:
        return [0]  # HTTP mode: no body buffered before forwarding (docs/acl.md)
    if not getattr(ctx, "inspect_final", True):
        ctx.may_change = True  # the length can only grow
    return [len(data)]


def res_len(ctx: Any, args: tuple) -> list[Any]:
    data = getattr(ctx, "res_payload", None)
    return [] if data is None else [len(data)]


def res_payload(ctx: Any, args: tuple) -> list[Any]:
    """`res.payload(<offset>,<length>)`: <length> 0 means up to the end."""
    data = getattr(ctx, "res_payload", None)
    if data is None:
        return []
    offset, length = int(args[0]), int(args[1])
    if length == 0:
        return [] if offset > len(data) else [bytes(data[offset:])]
    if offset + length > len(data):
        return []
    return [bytes(data[offset:offset + length])]


def req_payload(ctx: Any, args: tuple) -> list[Any]:
    """`req.payload(<offset>,<length>)`: <length> 0 means up to the end of what came."""
    data = _buffer(ctx)
    if data is None:
        return []
    offset, length = int(args[0]), int(args[1])
    if length == 0:
        if offset > len(data):
            return _short(ctx)
        if not getattr(ctx, "inspect_final", True):
            ctx.may_change = True
        return [data[offset:]]
    if offset + length > len(data):
        return _short(ctx)
    return [data[offset:offset + length]]


def _record(ctx: Any, data: bytes | None) -> tuple[int, bytes] | list[Any]:
    """The first TLS record's version and as much of its body as arrived (or the
    result to return: no sample, with may_change when a record may still come)."""
    if data is None:
        return []
    if len(data) < 5:
        return _short(ctx)
    if data[0] != _HANDSHAKE or data[1] != 3:
        return []  # not TLS (or SSLv2): a definite "no"
    return (data[1] << 8) | data[2], data[5:5 + ((data[3] << 8) | data[4])]


def req_ssl_hello_type(ctx: Any, args: tuple) -> list[Any]:
    """The type of the first handshake message, once all of it has arrived (as
    HAProxy reads it: any record type from 20 to 23, or 255, is taken for one)."""
    data = _buffer(ctx)
    if data is None:
        return []
    if not data:
        return _short(ctx)
    if not (0x14 <= data[0] <= 0x17 or data[0] == 0xFF):
        return []
    if len(data) < 9:
        return _short(ctx)
    if data[1] < 3 or ((data[3] << 8) | data[4]) < 4:
        return []
    if len(data) < 9 + int.from_bytes(data[6:9], "big"):
        return _short(ctx)  # the whole message first
    return [data[5]]


def req_ssl_ver(ctx: Any, args: tuple) -> list[Any]:
    """The record's version as HAProxy gives it: major << 16 | minor (TLS 1.2's
    record says 3.1 or 3.3; the hello's own version field is not read)."""
    rec = _record(ctx, _buffer(ctx))
    if isinstance(rec, list):
        return rec
    version = rec[0]
    return [((version >> 8) << 16) | (version & 0xFF)]


def req_ssl_sni(ctx: Any, args: tuple) -> list[Any]:
    """The host name of the ClientHello's server_name extension."""
    data = _buffer(ctx)
    rec = _record(ctx, data)
    if isinstance(rec, list):
        return rec
    assert data is not None
    record_len = (data[3] << 8) | data[4]
    body = rec[1]
    if len(body) < record_len:
        return _short(ctx)  # wait for the whole record (HAProxy reads one record)
    name = client_hello_sni(body)
    return [] if name is None else [name]


def client_hello_sni(hs: bytes) -> bytes | None:
    """The server name in a ClientHello handshake message (the record's body), or
    None when it has none or the message is malformed."""
    try:
        if hs[0] != _CLIENT_HELLO:
            return None
        end = min(len(hs), 4 + int.from_bytes(hs[1:4], "big"))
        pos = 4 + 2 + 32  # type and length, client version, random
        pos += 1 + hs[pos]  # session id
        pos += 2 + int.from_bytes(hs[pos:pos + 2], "big")  # cipher suites
        pos += 1 + hs[pos]  # compression methods
        if pos + 2 > end:
            return None
        ext_end = min(end, pos + 2 + int.from_bytes(hs[pos:pos + 2], "big"))
        pos += 2
        while pos + 4 <= ext_end:
            ext_type = int.from_bytes(hs[pos:pos + 2], "big")
            ext_len = int.from_bytes(hs[pos + 2:pos + 4], "big")
            pos += 4
            if ext_type == _EXT_SERVER_NAME:
                lst_end = min(pos + ext_len, pos + 2 + int.from_bytes(hs[pos:pos + 2], "big"))
                p = pos + 2
                while p + 3 <= lst_end:
                    kind = hs[p]
                    n = int.from_bytes(hs[p + 1:p + 3], "big")
                    if kind == _NAME_HOST and p + 3 + n <= lst_end and n:
                        return bytes(hs[p + 3:p + 3 + n])
                    p += 3 + n
                return None
            pos += ext_len
    except IndexError:
        return None
    return None
