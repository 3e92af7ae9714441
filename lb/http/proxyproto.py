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
V2_MAX = 16 + 65535
# a health check's v2 header: command LOCAL, no addresses (HAProxy 2.6.12 sends this)
V2_LOCAL = SIGNATURE + b"\x20\x00\x00\x00"

# HAProxy's texts, for `show errors`-like reports and the event line
NOT_PROXY = "Received something which does not look like a PROXY protocol header"
TRUNCATED = "Truncated PROXY protocol header received"
BAD_V1 = "Received an invalid PROXY protocol header"
BAD_V2 = "Received an invalid PROXY protocol header"


def v1(src: str, sport: int, dst: str, dport: int) -> bytes:
    """``PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\\r\\n`` (UNKNOWN when the two
    addresses are of different families, or not addresses)."""
    fam = _family(src, dst)
    if fam == 0:
        return b"PROXY UNKNOWN\r\n"
    name = "TCP4" if fam == 4 else "TCP6"
    return f"PROXY {name} {src} {dst} {sport} {dport}\r\n".encode()


def v2(src: str, sport: int, dst: str, dport: int) -> bytes:
    """The binary header, command PROXY over TCP, no TLV (as HAProxy 2.6.12 sends it
    for `send-proxy-v2`); family UNSPEC when the addresses cannot be told."""
    fam = _family(src, dst)
    if fam == 0:
        return SIGNATURE + b"\x21\x00\x00\x00"
    af, byte = _V2_BYTE[fam]
    body = (socket.inet_pton(af, src) + socket.inet_pton(af, dst)
            + struct.pack("!HH", sport & 0xFFFF, dport & 0xFFFF))
    return SIGNATURE + bytes((0x21, byte)) + struct.pack("!H", len(body)) + body


def _family(src: str, dst: str) -> int:
    try:
        a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    except ValueError:
        return 0
    if a.version != b.version:
        return 0
    return a.version


class Header:
    """What a received header says: ``local`` (a LOCAL or UNKNOWN one: keep the
    connection's own addresses), else the client's and the destination's."""

    __slots__ = ("size", "local", "src", "sport", "dst", "dport")

    def __init__(self, size: int, local: bool, src: str = "", sport: int = 0,
                 dst: str = "", dport: int = 0) -> None:
        self.size = size
        self.local = local
        self.src, self.sport, self.dst, self.dport = src, sport, dst, dport


def parse(data: bytes) -> Header | str | None:
    """The header at the start of ``data``: a ``Header``, None when more bytes are
    needed, or the reason it is not one (HAProxy's text)."""
    if data[:1] == b"\r":
        if len(data) < 16:
            return None if SIGNATURE.startswith(data[:12]) else NOT_PROXY
        if data[:12] != SIGNATURE:
            return NOT_PROXY
        return _parse_v2(data)
    if not data.startswith(b"PROXY"[:len(data)]):
        return NOT_PROXY
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        return None if len(data) < V1_MAX else BAD_V1
    return _parse_v1(data[:end], end + 2)


def _parse_v1(line: bytes, size: int) -> Header | str:
    words = line.split(b" ")
    if len(words) < 2 or words[0] != b"PROXY":
        return NOT_PROXY
    if words[1] == b"UNKNOWN":
        return Header(size, True)
    if words[1] not in (b"TCP4", b"TCP6") or len(words) != 6:
        return BAD_V1
    try:
        src = ipaddress.ip_address(words[2].decode("ascii"))
        dst = ipaddress.ip_address(words[3].decode("ascii"))
        sport, dport = _port(words[4]), _port(words[5])
    except (ValueError, UnicodeDecodeError):
        return BAD_V1
    want = 4 if words[1] == b"TCP4" else 6
    if src.version != want or dst.version != want:
        return BAD_V1
    return Header(size, False, str(src), sport, str(dst), dport)


def _port(word: bytes) -> int:
    if not word.isdigit() or len(word) > 5 or (len(word) > 1 and word[:1] == b"0"):
        raise ValueError(word)
    port = int(word)
    if port > 65535:
        raise ValueError(word)
    return port


def _parse_v2(data: bytes) -> Header | str | None:
    ver_cmd, fam = data[12], data[13]
    length = struct.unpack("!H", data[14:16])[0]
    if len(data) < 16 + length:
        return None
    if ver_cmd >> 4 != 2 or ver_cmd & 0xF > 1:
        return BAD_V2
    size = 16 + length
    if ver_cmd & 0xF == 0:  # LOCAL: a health check of the proxy in front
        return Header(size, True)
    known = _V2_FAMILIES.get(fam)
    if known is None:
        return Header(size, True)  # UNSPEC, UDP or unix: the connection's own addresses
    af, n = known
    if length < 2 * n + 4:
        return BAD_V2
    body = data[16:size]
    sport, dport = struct.unpack("!HH", body[2 * n:2 * n + 4])
    return Header(size, False, socket.inet_ntop(af, body[:n]), sport,
                  socket.inet_ntop(af, body[n:2 * n]), dport)


# v2 family byte (TCP over IPv4, TCP over IPv6) -> (socket family, address length)
_V2_FAMILIES = {0x11: (socket.AF_INET, 4), 0x21: (socket.AF_INET6, 16)}
_V2_BYTE = {4: (socket.AF_INET, 0x11), 6: (socket.AF_INET6, 0x21)}
