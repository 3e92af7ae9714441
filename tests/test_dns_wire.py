"""lb.dns.wire: query bytes, response parsing (live against tests/dns_support.DnsServer
and from hand-built packets), compression pointers, bounds, and a seeded fuzz showing
that only DnsFormatError ever escapes the parser."""

from __future__ import annotations

import random
import socket
import struct
from collections.abc import Iterator

import pytest

from lb.dns.wire import (
    CLASS_IN,
    RCODE_NOERROR,
    RCODE_NXDOMAIN,
    RCODE_REFUSED,
    RCODE_SERVFAIL,
    TYPE_A,
    TYPE_AAAA,
    TYPE_CNAME,
    TYPE_OPT,
    TYPE_SRV,
    DnsFormatError,
    Record,
    Response,
    Srv,
    addresses,
    build_query,
    encode_name,
    parse_response,
    srv_targets,
)
from tests.dns_support import DnsServer

# --- encode_name / build_query ---------------------------------------------------------


def test_encode_name_labels_and_case() -> None:
    assert encode_name("a.Bc.example") == b"\x01a\x02Bc\x07example\x00"
    assert encode_name("a.Bc.example.") == encode_name("a.Bc.example")
    assert encode_name("x" * 63) == b"\x3f" + b"x" * 63 + b"\x00"
    # 4 labels of 62 bytes plus their length bytes and the root: exactly 253, allowed
    assert len(encode_name(".".join(["y" * 62] * 4))) == 253
    # 3 x 63 + 61 -> 3*64 + 62 + 1 = 255, the largest legal name
    assert len(encode_name(".".join(["z" * 63] * 3 + ["z" * 61]))) == 255


@pytest.mark.parametrize("host", [
    "", ".", "a..b", ".a", "a..", "x" * 64 + ".example",
    ".".join(["z" * 63] * 3 + ["z" * 62]),  # 256 bytes encoded
    "ex\u00e4mple.com", "caf\u00e9",
])
def test_encode_name_rejects(host: str) -> None:
    with pytest.raises(DnsFormatError):
        encode_name(host)


def test_build_query_field_by_field() -> None:
    q = build_query(0xBEEF, "Web.Example.", TYPE_AAAA, 1232)
    qid, flags, qd, an, ns, ar = struct.unpack_from("!6H", q, 0)
    assert (qid, flags, qd, an, ns, ar) == (0xBEEF, 0x0100, 1, 0, 0, 1)
    name = b"\x03Web\x07Example\x00"
    assert q[12:12 + len(name)] == name
    pos = 12 + len(name)
    assert struct.unpack_from("!HH", q, pos) == (TYPE_AAAA, CLASS_IN)
    pos += 4
    assert q[pos] == 0  # OPT owned by the root
    assert struct.unpack_from("!HHIH", q, pos + 1) == (TYPE_OPT, 1232, 0, 0)
    assert len(q) == pos + 11


@pytest.mark.parametrize("args", [(-1, TYPE_A, 512), (65536, TYPE_A, 512),
                                  (1, 70000, 512), (1, TYPE_A, 65536)])
def test_build_query_rejects_out_of_range(args: tuple[int, int, int]) -> None:
    qid, qtype, size = args
    with pytest.raises(DnsFormatError):
        build_query(qid, "a.example", qtype, size)


# --- live, against the test server ----------------------------------------------------


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    with DnsServer() as server:
        yield server


def ask(server: DnsServer, host: str, qtype: int, qid: int = 0x1234,
        timeout: float = 2.0) -> Response:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(build_query(qid, host, qtype, 1232), ("127.0.0.1", server.port))
        data, _ = s.recvfrom(65535)
    return parse_response(data)


def test_live_a_records(dns: DnsServer) -> None:
    dns.set("web.example", "A", ["10.0.0.1", "10.0.0.2"], ttl=42)
    resp = ask(dns, "WEB.Example.", TYPE_A, qid=777)
    assert (resp.qid, resp.rcode, resp.truncated) == (777, RCODE_NOERROR, False)
    assert (resp.qname, resp.qtype) == ("web.example", TYPE_A)
    assert resp.answers == (Record("web.example", TYPE_A, 42, "10.0.0.1"),
                            Record("web.example", TYPE_A, 42, "10.0.0.2"))
    assert resp.additionals == ()  # the server's OPT is not kept
    assert addresses(resp, "web.example.", TYPE_A) == (["10.0.0.1", "10.0.0.2"], 0)
    assert addresses(resp, "web.example", TYPE_AAAA) == ([], 0)
    assert dns.wait_queries(1, timeout=1.0)
    assert dns.queries == [("web.example", TYPE_A)]


def test_live_aaaa_canonical_text(dns: DnsServer) -> None:
    dns.set("v6.example", "AAAA", ["2001:0DB8:0:0::0001", "::ffff:10.1.2.3"])
    resp = ask(dns, "v6.example", TYPE_AAAA)
    assert addresses(resp, "v6.example", TYPE_AAAA) == (["2001:db8::1", "::ffff:a01:203"], 0)


def test_live_cname_chain(dns: DnsServer) -> None:
    dns.set("www.example", "CNAME", "edge.example.")
    dns.set("edge.example", "CNAME", "Origin.Example")
    dns.set("origin.example", "A", ["192.0.2.7"])
    resp = ask(dns, "www.example", TYPE_A)
    assert [r.rtype for r in resp.answers] == [TYPE_CNAME, TYPE_CNAME, TYPE_A]
    assert resp.answers[0] == Record("www.example", TYPE_CNAME, 30, "edge.example")
    assert addresses(resp, "WWW.example.", TYPE_A) == (["192.0.2.7"], 2)
    with pytest.raises(DnsFormatError):
        addresses(resp, "www.example", TYPE_A, max_cnames=1)


def test_live_srv_with_additionals(dns: DnsServer) -> None:
    dns.set("_http._tcp.example", "SRV",
            [(10, 5, 8080, "s1.example."), (20, 0, 8081, "s2.example"),
             (30, 1, 8082, "s1.example")])
    dns.set("s1.example", "A", ["10.1.1.1"])
    dns.set("s1.example", "AAAA", ["2001:db8::11"])
    resp = ask(dns, "_http._tcp.example", TYPE_SRV)
    assert srv_targets(resp) == [
        (Srv(10, 5, 8080, "s1.example"), ["10.1.1.1", "2001:db8::11"]),
        (Srv(20, 0, 8081, "s2.example"), []),
        (Srv(30, 1, 8082, "s1.example"), ["10.1.1.1", "2001:db8::11"]),
    ]


@pytest.mark.parametrize("rcode", [RCODE_NXDOMAIN, RCODE_REFUSED, RCODE_SERVFAIL])
def test_live_error_rcodes(dns: DnsServer, rcode: int) -> None:
    dns.set("gone.example", "A", ["10.0.0.9"])
    dns.set_rcode("gone.example", rcode)
    resp = ask(dns, "gone.example", TYPE_A)
    assert resp.rcode == rcode and resp.answers == ()
    dns.clear("gone.example")
    resp = ask(dns, "gone.example", TYPE_A)
    assert (resp.rcode, resp.answers) == (RCODE_NOERROR, ())


def test_live_truncated_and_dropped(dns: DnsServer) -> None:
    dns.set("big.example", "A", ["10.0.0.1"])
    dns.truncate("big.example")
    resp = ask(dns, "big.example", TYPE_A)
    assert resp.truncated and resp.answers == ()
    dns.truncate("big.example", on=False)
    assert not ask(dns, "big.example", TYPE_A).truncated
    dns.drop("slow.example")
    with pytest.raises(TimeoutError):
        ask(dns, "slow.example", TYPE_A, timeout=0.2)
    assert dns.wait_queries(3, timeout=1.0)
    assert dns.queries[-1] == ("slow.example", TYPE_A)


# --- hand-built responses ---------------------------------------------------------------


def header(qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0, flags: int = 0x8180,
           qid: int = 1) -> bytes:
    return struct.pack("!6H", qid, flags, qd, an, ns, ar)


def labels(*parts: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in parts)


def rr(name: bytes, rtype: int, rdata: bytes, ttl: int = 60, rclass: int = 1) -> bytes:
    return name + struct.pack("!HHIH", rtype, rclass, ttl, len(rdata)) + rdata


def ptr(offset: int) -> bytes:
    return struct.pack("!H", 0xC000 | offset)


QUESTION = labels("www", "Example", "com") + b"\x00" + struct.pack("!HH", TYPE_A, 1)


def sample_response() -> bytes:
    """www.example.com CNAME web.example.com (compressed both ways), its A and AAAA, a
    TXT (kept without data); an authority NS; in the additionals an SRV whose target
    is a pointer, an A and an OPT."""
    msg = bytearray(header(an=4, ns=1, ar=3))
    msg += QUESTION  # name at 12, "example.com" at 16
    msg += rr(ptr(12), TYPE_CNAME, labels("web") + ptr(16))
    cname_target = len(msg) - 6  # where "web" + pointer starts
    msg += rr(ptr(cname_target), TYPE_A, bytes([192, 0, 2, 1]))
    msg += rr(ptr(cname_target), TYPE_AAAA, bytes(15) + b"\x01", ttl=0x80000001)
    msg += rr(ptr(12), 16, b"\x05hello")
    msg += rr(ptr(16), 2, labels("ns1") + ptr(16))  # authority NS
    msg += rr(ptr(16), TYPE_SRV, struct.pack("!HHH", 1, 2, 443) + ptr(cname_target))
    msg += rr(ptr(cname_target), TYPE_A, bytes([192, 0, 2, 2]))
    msg += b"\x00" + struct.pack("!HHIH", TYPE_OPT, 1232, 0, 0)
    return bytes(msg)


def test_hand_built_compressed_response() -> None:
    resp = parse_response(sample_response())
    assert (resp.qid, resp.rcode, resp.truncated) == (1, 0, False)
    assert (resp.qname, resp.qtype) == ("www.example.com", TYPE_A)
    assert resp.answers == (
        Record("www.example.com", TYPE_CNAME, 60, "web.example.com"),
        Record("web.example.com", TYPE_A, 60, "192.0.2.1"),
        Record("web.example.com", TYPE_AAAA, 0, "::1"),  # TTL with the top bit set -> 0
        Record("www.example.com", 16, 60, None),
    )
    assert resp.additionals == (
        Record("example.com", TYPE_SRV, 60, Srv(1, 2, 443, "web.example.com")),
        Record("web.example.com", TYPE_A, 60, "192.0.2.2"),
    )
    assert addresses(resp, "www.example.com", TYPE_A) == (["192.0.2.1"], 1)
    assert addresses(resp, "www.example.com", TYPE_AAAA) == (["::1"], 1)


def test_srv_targets_from_hand_built() -> None:
    msg = bytearray(header(an=1, ar=2))
    msg += labels("_x", "_tcp", "ex") + b"\x00" + struct.pack("!HH", TYPE_SRV, 1)
    msg += rr(ptr(12), TYPE_SRV, struct.pack("!HHH", 5, 6, 7) + labels("T1", "ex") + b"\x00")
    msg += rr(labels("t1", "ex") + b"\x00", TYPE_AAAA, bytes(16))
    msg += rr(labels("t2", "ex") + b"\x00", TYPE_A, bytes(4))
    resp = parse_response(bytes(msg))
    assert srv_targets(resp) == [(Srv(5, 6, 7, "t1.ex"), ["::"])]


def test_no_question_and_other_header_bits() -> None:
    resp = parse_response(header(qd=0, flags=0x8283, qid=9))
    assert (resp.qid, resp.qname, resp.qtype, resp.rcode, resp.truncated) == (
        9, "", 0, RCODE_NXDOMAIN, True)


def test_odd_label_bytes_are_escaped() -> None:
    msg = header(an=1) + QUESTION + rr(b"\x03a.b\x00", TYPE_A, bytes(4))
    assert parse_response(msg).answers[0].name == "a\\046b"


@pytest.mark.parametrize("msg", [
    b"",
    header()[:11],
    header(flags=0x0100),  # QR clear: a query
    header(qd=2) + QUESTION + QUESTION,
    header() + QUESTION[:-1],
    # forward pointer, self pointer
    header(an=1) + QUESTION + rr(ptr(100), TYPE_A, bytes(4)),
    header(an=1) + QUESTION + ptr(12 + len(QUESTION)) + struct.pack("!HHIH", 1, 1, 0, 4)
    + bytes(4),
    # a loop: "a" followed by a (backward) pointer to itself, round and round
    header(qd=0, an=1) + b"\x01a" + ptr(12) + struct.pack("!HHIH", 1, 1, 0, 4) + bytes(4),
    # a pointer cut in half
    header() + b"\xc0",
    # reserved label types 0x40 and 0x80
    header() + b"\x41" + bytes(70),
    header() + b"\x81" + bytes(140),
    # rdata sizes
    header(an=1) + QUESTION + rr(ptr(12), TYPE_A, bytes(3)),
    header(an=1) + QUESTION + rr(ptr(12), TYPE_A, bytes(5)),
    header(an=1) + QUESTION + rr(ptr(12), TYPE_AAAA, bytes(15)),
    header(an=1) + QUESTION + rr(ptr(12), TYPE_SRV, bytes(6)),
    header(an=1) + QUESTION + rr(ptr(12), TYPE_SRV, bytes(6) + b"\x02a"),  # cut label
    header(an=1) + QUESTION + rr(ptr(12), TYPE_SRV, bytes(6) + b"\x00\x00"),  # slack
    header(an=1) + QUESTION + rr(ptr(12), TYPE_CNAME, b"\x00\x00"),
    header(an=1) + QUESTION + rr(ptr(12), TYPE_CNAME, b"\x03abc"),  # runs past rdata
    # rdlength past the end, missing records in each section
    header(an=1) + QUESTION + ptr(12) + struct.pack("!HHIH", 16, 1, 0, 10) + bytes(9),
    header(an=1) + QUESTION,
    header(ns=1) + QUESTION,
    header(ar=1) + QUESTION,
], ids=lambda m: f"{len(m)}b")
def test_malformed_raise_format_error(msg: bytes) -> None:
    with pytest.raises(DnsFormatError):
        parse_response(msg)


def long_name_message(last: int) -> bytes:
    """A TXT record whose data holds three 63-byte labels chained by pointers, then an A
    record owned by a fourth label of ``last`` bytes pointing into that chain."""
    blob = bytearray()
    base = 12 + 1 + 10  # the TXT's rdata starts after its root owner and fixed fields
    first = base
    blob += b"\x3f" + b"a" * 63 + b"\x00"
    second = base + len(blob)
    blob += b"\x3f" + b"b" * 63 + ptr(first)
    third = base + len(blob)
    blob += b"\x3f" + b"c" * 63 + ptr(second)
    msg = bytearray(header(qd=0, an=2)) + rr(b"\x00", 16, bytes(blob))
    assert third < len(msg)
    return bytes(msg + rr(bytes([last]) + b"d" * last + ptr(third), TYPE_A, bytes(4)))


def test_name_longer_than_255_through_pointers() -> None:
    # 3 * 64 + (1 + 61) + 1 = 255 bytes: the longest legal name, 253 characters
    resp = parse_response(long_name_message(61))
    assert len(resp.answers[1].name) == 253
    with pytest.raises(DnsFormatError, match="longer than 255"):
        parse_response(long_name_message(62))


def test_every_prefix_is_an_error_or_parses() -> None:
    full = sample_response()
    assert parse_response(full + b"\x00\x07")  # trailing bytes are ignored
    for n in range(len(full)):
        try:
            parse_response(full[:n])
        except DnsFormatError:
            continue
        pytest.fail(f"prefix of {n} bytes parsed although records are missing")


def test_seeded_fuzz_only_format_errors_escape() -> None:
    rng = random.Random(6891)
    base = sample_response()
    parsed = 0
    for _ in range(3000):
        msg = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            at = rng.randrange(len(msg) + 1)
            if op < 0.6 and msg:
                msg[min(at, len(msg) - 1)] = rng.randrange(256)
            elif op < 0.75:
                msg[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
            elif op < 0.9:
                del msg[at:at + rng.randint(1, 4)]
            else:
                del msg[at:]
        if len(msg) > 3:
            msg[2] |= 0x80  # keep QR set most of the time so the fuzz reaches the body
        try:
            resp = parse_response(bytes(msg))
        except DnsFormatError:
            continue
        parsed += 1
        for qtype in (TYPE_A, TYPE_AAAA):
            try:
                addresses(resp, resp.qname, qtype)
            except DnsFormatError:
                pass
        srv_targets(resp)
    assert parsed > 100  # the mutations do not all die at the header


# --- addresses() on built values --------------------------------------------------------


def cname(owner: str, target: str) -> Record:
    return Record(owner, TYPE_CNAME, 1, target)


def test_addresses_loop_and_hop_limit() -> None:
    def resp(*answers: Record) -> Response:
        return Response(1, 0, False, "a", TYPE_A, answers, ())

    loop = resp(cname("a", "b"), cname("b", "a"), Record("a", TYPE_A, 1, "10.0.0.1"))
    with pytest.raises(DnsFormatError, match="loop"):
        addresses(loop, "a", TYPE_A)
    with pytest.raises(DnsFormatError, match="loop"):
        addresses(resp(cname("a", "a")), "a", TYPE_A)
    chain = resp(*(cname(f"n{i}", f"n{i + 1}") for i in range(8)),
                 Record("n8", TYPE_A, 1, "10.0.0.8"), Record("n0", TYPE_A, 1, "10.9.9.9"))
    assert addresses(chain, "N0.", TYPE_A) == (["10.0.0.8"], 8)
    with pytest.raises(DnsFormatError):
        addresses(chain, "n0", TYPE_A, max_cnames=7)
    assert addresses(resp(cname("a", "b")), "a", TYPE_A) == ([], 1)
