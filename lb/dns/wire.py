"""The DNS message codec the resolvers speak over UDP (RFC 1035, 2782, 6891).

Owns: turning a host name into wire labels, building one recursive query with an
EDNS0 OPT record advertising the accepted payload size, and parsing a response into
frozen values (``Response`` / ``Record`` / ``Srv``): A and AAAA addresses as text,
CNAME targets, SRV rows, anything else kept with no data. Also the two read-side
helpers the resolvers need: following a CNAME chain to the addresses of the final
name (``addresses``) and pairing SRV answers with the addresses the server put in the
additional section (``srv_targets``).

Parsing trusts nothing: every read is bounds-checked, compression pointers must point
strictly backwards and are followed a bounded number of times, names are capped at 255
wire bytes, and every defect surfaces as ``DnsFormatError`` and nothing else.

Pure and synchronous: stdlib only. Must not import anything from lb (sockets, timers,
retries and the server-state updates belong to the resolvers above it).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

TYPE_A = 1
TYPE_CNAME = 5
TYPE_AAAA = 28
TYPE_SRV = 33
TYPE_OPT = 41
CLASS_IN = 1

RCODE_NOERROR = 0
RCODE_FORMERR = 1
RCODE_SERVFAIL = 2
RCODE_NXDOMAIN = 3
RCODE_NOTIMP = 4
RCODE_REFUSED = 5

_HEADER = struct.Struct("!HHHHHH")  # id, flags, qdcount, ancount, nscount, arcount
_QUESTION_TAIL = struct.Struct("!HH")  # qtype, qclass
_RR_FIXED = struct.Struct("!HHIH")  # type, class, ttl, rdlength
_SRV_FIXED = struct.Struct("!HHH")  # priority, weight, port

_FLAG_QR = 0x8000
_FLAG_TC = 0x0200
_FLAG_RD = 0x0100

_MAX_NAME = 255  # wire bytes of a whole name, the final zero byte included
_MAX_LABEL = 63
_MAX_POINTERS = 64

# Label bytes shown as themselves in a decoded name: letters (after lower-casing),
# digits, '-', '_' and '*'. Any other byte (a dot, a backslash, a space, a control or
# non-ASCII byte) is written \DDD, as dig does, so a label cannot fake another name.
_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-_*")


class DnsFormatError(ValueError):
    """A DNS name or message is malformed (or a name cannot be encoded)."""


@dataclass(frozen=True, slots=True)
class Srv:
    priority: int
    weight: int
    port: int
    target: str  # lower-cased, no trailing dot


@dataclass(frozen=True, slots=True)
class Record:
    name: str  # owner name, lower-cased, no trailing dot
    rtype: int
    ttl: int
    # A/AAAA: the address as text; CNAME: the target name; SRV: an Srv; else None
    data: str | Srv | None


@dataclass(frozen=True, slots=True)
class Response:
    qid: int
    rcode: int  # the 4-bit header rcode (EDNS extended bits are not merged in)
    truncated: bool
    qname: str  # "" with qtype 0 when the message carries no question
    qtype: int
    answers: tuple[Record, ...]
    additionals: tuple[Record, ...]  # OPT pseudo-records left out


# --- encoding ------------------------------------------------------------------------


def encode_name(host: str) -> bytes:
    """``host`` ("www.example.com", a trailing dot allowed) as length-prefixed labels
    ending with the root's zero byte. Case is kept; no escapes are interpreted."""
    if not host.isascii():
        raise DnsFormatError(f"non-ASCII host name {host!r}")
    text = host[:-1] if host.endswith(".") else host
    if not text:
        raise DnsFormatError("empty host name")
    out = bytearray()
    for label in text.split("."):
        raw = label.encode("ascii")
        if not raw:
            raise DnsFormatError(f"empty label in host name {host!r}")
        if len(raw) > _MAX_LABEL:
            raise DnsFormatError(f"label longer than {_MAX_LABEL} bytes in {host!r}")
        out.append(len(raw))
        out += raw
    out.append(0)
    if len(out) > _MAX_NAME:
        raise DnsFormatError(f"host name longer than {_MAX_NAME} bytes encoded: {host!r}")
    return bytes(out)


def build_query(qid: int, host: str, qtype: int, payload_size: int) -> bytes:
    """One recursion-desired query for ``host``/``qtype`` in class IN, with an EDNS0
    OPT record announcing ``payload_size`` as the largest UDP answer accepted."""
    for what, value in (("query id", qid), ("qtype", qtype), ("payload size", payload_size)):
        if not 0 <= value <= 0xFFFF:
            raise DnsFormatError(f"{what} {value} out of the 16-bit range")
    return b"".join((
        _HEADER.pack(qid, _FLAG_RD, 1, 0, 0, 1),
        encode_name(host),
        _QUESTION_TAIL.pack(qtype, CLASS_IN),
        b"\x00",  # the OPT record is owned by the root
        _RR_FIXED.pack(TYPE_OPT, payload_size, 0, 0),
    ))


# --- decoding ------------------------------------------------------------------------


def _need(data: bytes, pos: int, size: int, what: str) -> None:
    if pos + size > len(data):
        raise DnsFormatError(f"message ends inside {what} (offset {pos}, {size} byte(s))")


def _label_text(raw: bytes) -> str:
    return "".join(chr(b) if b in _PLAIN else f"\\{b:03d}" for b in raw.lower())


def _read_name(data: bytes, pos: int) -> tuple[str, int]:
    """The name starting at ``pos`` and the offset just after it in the record (after
    the first pointer when the name is compressed)."""
    labels: list[str] = []
    wire_len = 1  # the final zero byte
    end = -1  # where the caller resumes; set when the first pointer is taken
    pointers = 0
    while True:
        _need(data, pos, 1, "a name")
        length = data[pos]
        kind = length & 0xC0
        if kind == 0xC0:
            _need(data, pos, 2, "a compression pointer")
            target = ((length & 0x3F) << 8) | data[pos + 1]
            if target >= pos:
                raise DnsFormatError(f"compression pointer at {pos} does not point backwards")
            pointers += 1
            if pointers > _MAX_POINTERS:
                raise DnsFormatError("too many compression pointers in one name")
            if end < 0:
                end = pos + 2
            pos = target
            continue
        if kind:
            raise DnsFormatError(f"unsupported label type 0x{kind:02x} at {pos}")
        if length == 0:
            return ".".join(labels), (pos + 1 if end < 0 else end)
        wire_len += 1 + length
        if wire_len > _MAX_NAME:
            raise DnsFormatError(f"name longer than {_MAX_NAME} bytes")
        _need(data, pos + 1, length, "a label")
        labels.append(_label_text(data[pos + 1:pos + 1 + length]))
        pos += 1 + length


def _read_record(data: bytes, pos: int) -> tuple[Record, int]:
    name, pos = _read_name(data, pos)
    _need(data, pos, _RR_FIXED.size, "a record header")
    rtype, _rclass, ttl, rdlength = _RR_FIXED.unpack_from(data, pos)
    pos += _RR_FIXED.size
    _need(data, pos, rdlength, "record data")
    end = pos + rdlength
    if ttl & 0x80000000:  # RFC 2181 §8: a TTL with the top bit set means zero
        ttl = 0
    rdata: str | Srv | None = None
    if rtype == TYPE_A:
        if rdlength != 4:
            raise DnsFormatError(f"A record data is {rdlength} bytes, not 4")
        rdata = str(ipaddress.IPv4Address(data[pos:end]))
    elif rtype == TYPE_AAAA:
        if rdlength != 16:
            raise DnsFormatError(f"AAAA record data is {rdlength} bytes, not 16")
        rdata = str(ipaddress.IPv6Address(data[pos:end]))
    elif rtype == TYPE_CNAME:
        rdata, after = _read_name(data, pos)
        if after != end:
            raise DnsFormatError("CNAME target does not fill its record data")
    elif rtype == TYPE_SRV:
        if rdlength < _SRV_FIXED.size + 1:
            raise DnsFormatError(f"SRV record data is {rdlength} bytes, under 7")
        priority, weight, port = _SRV_FIXED.unpack_from(data, pos)
        target, after = _read_name(data, pos + _SRV_FIXED.size)
        if after != end:
            raise DnsFormatError("SRV target does not fill its record data")
        rdata = Srv(priority, weight, port, target)
    return Record(name, rtype, ttl, rdata), end


def parse_response(data: bytes) -> Response:
    """Decode a response message. Anything malformed, or a message that is not a
    response, raises ``DnsFormatError``; bytes after the last counted record are
    ignored."""
    if len(data) < _HEADER.size:
        raise DnsFormatError(f"message of {len(data)} bytes is shorter than a header")
    qid, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(data, 0)
    if not flags & _FLAG_QR:
        raise DnsFormatError("QR bit clear: not a response")
    if qdcount > 1:
        raise DnsFormatError(f"{qdcount} questions in one message")
    pos = _HEADER.size
    qname, qtype = "", 0
    if qdcount:
        qname, pos = _read_name(data, pos)
        _need(data, pos, _QUESTION_TAIL.size, "the question")
        qtype, _qclass = _QUESTION_TAIL.unpack_from(data, pos)
        pos += _QUESTION_TAIL.size
    answers: list[Record] = []
    additionals: list[Record] = []
    for _ in range(ancount):
        rec, pos = _read_record(data, pos)
        answers.append(rec)
    for _ in range(nscount):  # read only to reach the additional section
        _rec, pos = _read_record(data, pos)
    for _ in range(arcount):
        rec, pos = _read_record(data, pos)
        if rec.rtype != TYPE_OPT:
            additionals.append(rec)
    return Response(qid=qid, rcode=flags & 0x000F, truncated=bool(flags & _FLAG_TC),
                    qname=qname, qtype=qtype, answers=tuple(answers),
                    additionals=tuple(additionals))


# --- reading answers -----------------------------------------------------------------


def _norm(host: str) -> str:
    host = host.lower()
    return host[:-1] if host.endswith(".") else host


def addresses(resp: Response, host: str, qtype: int,
              max_cnames: int = 8) -> tuple[list[str], int]:
    """The ``qtype`` addresses of ``host`` in ``resp.answers``, following CNAMEs to the
    final name, in answer order, and the number of CNAMEs followed. A CNAME loop or a
    chain longer than ``max_cnames`` raises ``DnsFormatError``."""
    name = _norm(host)
    seen = {name}
    hops = 0
    while True:
        target = next((r.data for r in resp.answers
                       if r.rtype == TYPE_CNAME and r.name == name and isinstance(r.data, str)),
                      None)
        if target is None:
            break
        hops += 1
        if hops > max_cnames:
            raise DnsFormatError(f"CNAME chain from {host!r} longer than {max_cnames}")
        if target in seen:
            raise DnsFormatError(f"CNAME loop from {host!r} at {target!r}")
        seen.add(target)
        name = target
    found = [r.data for r in resp.answers
             if r.rtype == qtype and r.name == name and isinstance(r.data, str)]
    return found, hops


def srv_targets(resp: Response) -> list[tuple[Srv, list[str]]]:
    """Each SRV answer, in answer order, with the A/AAAA addresses of its target found
    in the additional section (possibly none: the caller then resolves the target)."""
    out: list[tuple[Srv, list[str]]] = []
    for rec in resp.answers:
        if rec.rtype == TYPE_SRV and isinstance(rec.data, Srv):
            target = rec.data.target
            addrs = [r.data for r in resp.additionals
                     if r.rtype in (TYPE_A, TYPE_AAAA) and r.name == target
                     and isinstance(r.data, str)]
            out.append((rec.data, addrs))
    return out
