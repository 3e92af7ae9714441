"""The PROXY protocol (haproxy.org/download/2.6/doc/proxy-protocol.txt), both versions.

Owns the headers lb writes before a server connection's first byte (`send-proxy`,
`send-proxy-v2`; a health check's `LOCAL` one) and the reading of a header a client
connection starts with (`bind ... accept-proxy`): ``parse`` takes the bytes received
so far and says whether they hold a whole header, what it says, or why it is none.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_MAX = 107  # the longest v1 line, CRLF included
# HAProxy reads a header from one buffer (tune.bufsize, 16384 by default): a v2
# header announcing more is "truncated" there, and lb refuses it alike (which also
# bounds the CRC32C work a client can ask for)
V2_MAX = 16384
# a health check's v2 header: command LOCAL, no addresses (HAProxy 2.6.12 sends this)
V2_LOCAL = SIGNATURE + b"\x20\x00\x00\x00"

# Why a connection gave no usable header: HAProxy 2.6.12's texts, which end the
# line it logs for such a connection (lb.logfmt.conn_error_line)
EMPTY = "Connection closed while waiting for PROXY protocol header"
ABORT = "Connection error while waiting for PROXY protocol header"
TIMEOUT = "Timeout while waiting for PROXY protocol header"
TRUNCATED = "Truncated PROXY protocol header received"
NOT_PROXY = "Received something which does not look like a PROXY protocol header"
BAD_HDR = "Received an invalid PROXY protocol header"
BAD_PROTO = "Received an unhandled protocol in the PROXY protocol header"
# errors `option dontlognull` keeps out of the log: nothing at all was received
SILENT_IF_NULL = frozenset((EMPTY, ABORT))

# v2 TLV types lb reads or writes, and the longest value HAProxy keeps of each
TLV_AUTHORITY, TLV_CRC32C, TLV_UNIQUE_ID, TLV_SSL = 0x02, 0x03, 0x05, 0x20
_TLV_MAX = {TLV_AUTHORITY: 255, TLV_UNIQUE_ID: 128}
# `proxy-v2-options ssl` (and the cert-* ones) on a connection that is not TLS, as
# HAProxy 2.6.12 writes it: client flags 0, verify 0, no sub-TLV
SSL_NONE = bytes((TLV_SSL, 0, 5, 0, 0, 0, 0, 0))


# `proxy-v2-options` words -> what they add to a v2 header (the cert-* and cipher
# ones are sub-TLVs of the SSL TLV, only filled in on a TLS connection, so here just
# the SSL TLV itself)
OPT_CRC32C, OPT_AUTHORITY, OPT_UNIQUE_ID, OPT_SSL = 1, 2, 4, 8
V2_OPTIONS = {
    "ssl": OPT_SSL, "cert-cn": OPT_SSL, "cert-key": OPT_SSL, "cert-sig": OPT_SSL,
    "ssl-cipher": OPT_SSL, "authority": OPT_AUTHORITY, "crc32c": OPT_CRC32C,
    "unique-id": OPT_UNIQUE_ID,
}


def option_flags(names: tuple[str, ...]) -> int:
    flags = 0
    for name in names:
        flags |= V2_OPTIONS[name]
    return flags


def tlv(kind: int, value: bytes) -> bytes:
    """One v2 TLV (type, 16-bit length, value)."""
    return bytes((kind, len(value) >> 8, len(value) & 0xFF)) + value


def v1(src: str, sport: int, dst: str, dport: int) -> bytes:
    """``PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\r\n``; UNKNOWN when an address
    is not an IP address (a unix socket's client)."""
    pair = _same_family(src, dst)
    if pair is None:
        return b"PROXY UNKNOWN\r\n"
    af, a, b = pair
    name = "TCP4" if af == socket.AF_INET else "TCP6"
    return (f"PROXY {name} {socket.inet_ntop(af, a)} {socket.inet_ntop(af, b)} "
            f"{sport} {dport}\r\n").encode()


def v2(src: str, sport: int, dst: str, dport: int, tlvs: bytes = b"",
       crc: bool = False) -> bytes:
    """The binary header, command PROXY over TCP, as HAProxy 2.6.12 sends it for
    `send-proxy-v2`; a LOCAL one when an address is not an IP address. ``tlvs``
    follow the addresses, after a CRC32C one when ``crc`` (`proxy-v2-options`)."""
    pair = _same_family(src, dst)
    if pair is None:
        return local_v2(tlvs, crc)
    af, a, b = pair
    addrs = a + b + struct.pack("!HH", sport & 0xFFFF, dport & 0xFFFF)
    return _v2_header(0x21, 0x11 if af == socket.AF_INET else 0x21, addrs, tlvs, crc)


def local_v2(tlvs: bytes = b"", crc: bool = False) -> bytes:
    """A LOCAL header (a health check's): no addresses, maybe TLVs."""
    if not tlvs and not crc:
        return V2_LOCAL
    return _v2_header(0x20, 0x00, b"", tlvs, crc)


def _v2_header(ver_cmd: int, fam: int, addrs: bytes, tlvs: bytes, crc: bool) -> bytes:
    if crc:
        tlvs = tlv(TLV_CRC32C, b"\0\0\0\0") + tlvs
    body = addrs + tlvs
    header = SIGNATURE + bytes((ver_cmd, fam)) + struct.pack("!H", len(body)) + body
    if crc:  # the checksum of the whole header, its own field zero meanwhile
        at = 16 + len(addrs) + 3
        header = header[:at] + crc32c(header).to_bytes(4, "big") + header[at + 4:]
    return header


def _same_family(src: str, dst: str) -> tuple[int, bytes, bytes] | None:
    """Both addresses packed in one family: IPv4, or IPv6 when either is (the other
    then IPv4-mapped, ``::ffff:a.b.c.d``, as HAProxy 2.6.12 writes a header for a
    client `set-src` made IPv6); None when either is no IP address."""
    try:
        a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    except ValueError:
        return None
    if a.version == b.version == 4:
        return socket.AF_INET, a.packed, b.packed
    return socket.AF_INET6, _as_v6(a), _as_v6(b)


def _as_v6(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bytes:
    return addr.packed if addr.version == 6 else b"\0" * 10 + b"\xff\xff" + addr.packed


class Header:
    """What a received header says: ``local`` (a LOCAL or UNKNOWN one: keep the
    connection's own addresses), else the client's and the destination's. ``error``:
    the addresses were read but the rest is invalid (a bad TLV): the connection is
    refused, and HAProxy names it by the header's client address all the same."""

    __slots__ = ("size", "local", "src", "sport", "dst", "dport", "error", "authority",
                 "unique_id")

    def __init__(self, size: int, local: bool, src: str = "", sport: int = 0,
                 dst: str = "", dport: int = 0) -> None:
        self.size = size
        self.local = local
        self.src, self.sport, self.dst, self.dport = src, sport, dst, dport
        self.error: str | None = None
        # the v2 AUTHORITY and UNIQUE_ID TLVs (`fc_pp_authority`, `fc_pp_unique_id`)
        self.authority: bytes | None = None
        self.unique_id: bytes | None = None


def parse(data: bytes, limit: int = V2_MAX) -> Header | str | None:
    """The header at the start of ``data``: a ``Header``, None while ``data`` may
    still become one, or why it is not one (HAProxy 2.6.12's text for the case).

    HAProxy reads the header from the first segment only and calls anything short
    there truncated; lb waits for the rest of a header that is still plausible (within
    `timeout client`), and judges other short input as HAProxy does. ``limit``: the
    largest v2 header taken (the frontend's tune.bufsize)."""
    if data.startswith(b"PROXY "):
        end = data.find(b"\r\n", 0, V1_MAX)
        if end < 0:
            return None if len(data) < V1_MAX else BAD_HDR
        return _parse_v1(data[:end], end + 2)
    if len(data) < 16:
        if b"PROXY ".startswith(data[:6]) or SIGNATURE.startswith(data[:12]):
            return None
        return TRUNCATED  # HAProxy's word for a short start it cannot read
    if data[:12] != SIGNATURE or data[12] >> 4 != 2:
        return NOT_PROXY
    return _parse_v2(data, limit)


def _parse_v1(line: bytes, size: int) -> Header | str:
    words = line.split(b" ")
    proto = words[1]
    if proto == b"UNKNOWN":
        # (the protocol's text lets addresses follow UNKNOWN; HAProxy 2.6.12 refuses
        # them, lb ignores them as the text says)
        return Header(size, True)
    if proto not in (b"TCP4", b"TCP6") or len(words) < 3:
        return BAD_PROTO
    if len(words) != 6:
        return BAD_HDR
    try:
        src = ipaddress.ip_address(words[2].decode("ascii"))
        dst = ipaddress.ip_address(words[3].decode("ascii"))
        sport, dport = _port(words[4]), _port(words[5])
    except (ValueError, UnicodeDecodeError):
        return BAD_HDR
    want = 4 if proto == b"TCP4" else 6
    if src.version != want or dst.version != want:
        return BAD_HDR
    return Header(size, False, str(src), sport, str(dst), dport)


def _port(word: bytes) -> int:
    if not word.isdigit() or len(word) > 5 or (len(word) > 1 and word[:1] == b"0"):
        raise ValueError(word)
    port = int(word)
    if port > 65535:
        raise ValueError(word)
    return port


def _parse_v2(data: bytes, limit: int) -> Header | str | None:
    cmd, fam = data[12] & 0xF, data[13]
    length = struct.unpack("!H", data[14:16])[0]
    size = 16 + length
    if size > limit:
        return TRUNCATED
    if len(data) < size:
        return None
    if cmd == 0:  # LOCAL: a health check of the proxy in front; its body is skipped
        return Header(size, True)
    if cmd != 1:
        return BAD_HDR
    known = _V2_FAMILIES.get(fam)
    if known is None:
        # HAProxy 2.6.12 refuses a PROXY command over anything but TCP over IPv4/IPv6
        return BAD_HDR
    af, n = known
    if length < 2 * n + 4:
        return BAD_HDR
    body = data[16:size]
    sport, dport = struct.unpack("!HH", body[2 * n:2 * n + 4])
    res = Header(size, False, socket.inet_ntop(af, body[:n]), sport,
                 socket.inet_ntop(af, body[n:2 * n]), dport)
    if size > 16 + 2 * n + 4:
        _read_tlvs(res, data[:size], 16 + 2 * n + 4)
    return res


def _read_tlvs(res: Header, header: bytes, at: int) -> None:
    """The TLVs after the addresses, checked as HAProxy checks them: each whole within
    the header, a CRC32C one exactly 4 bytes and right, AUTHORITY and UNIQUE_ID not
    longer than HAProxy keeps (those two are kept); ``res.error`` says what is wrong."""
    end = len(header)
    while at < end:
        if at + 3 > end:
            res.error = BAD_HDR
            return
        kind = header[at]
        n = (header[at + 1] << 8) | header[at + 2]
        value_at = at + 3
        at = value_at + n
        if at > end or n > _TLV_MAX.get(kind, n):
            res.error = BAD_HDR
            return
        if kind == TLV_CRC32C:
            zeroed = header[:value_at] + b"\0\0\0\0" + header[at:]
            if n != 4 or crc32c(zeroed) != int.from_bytes(header[value_at:at], "big"):
                res.error = BAD_HDR
                return
        elif kind == TLV_AUTHORITY:
            res.authority = header[value_at:at]
        elif kind == TLV_UNIQUE_ID:
            res.unique_id = header[value_at:at]


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as a v2 header's CRC32C TLV carries it. Only headers
    that carry one pay for this byte loop (at most 64 KiB, once per connection)."""
    c = 0xFFFFFFFF
    table = _CRC32C
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


# v2 family byte (TCP over IPv4, TCP over IPv6) -> (socket family, address length)
_V2_FAMILIES = {0x11: (socket.AF_INET, 4), 0x21: (socket.AF_INET6, 16)}
