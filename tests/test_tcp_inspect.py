"""`mode tcp` content inspection: `tcp-request inspect-delay`, `tcp-request content`
rules that wait for the client's first bytes, and the layer-6 fetches (req.len,
req.payload, req.ssl_hello_type, req.ssl_sni, req.ssl_ver): TLS passthrough routed
by SNI, without terminating TLS.

Every end-to-end case below was run against HAProxy 2.6.12 on 127.0.0.1 with the same
configuration (2026-11-24), and HAProxy gave the same backend, the same bytes and the
same timing: a ClientHello (517 bytes, from Python's ssl module) for a.example went to
`a`, for x.b.example to `b`, any other name, a hello without SNI and plain bytes to the
default; a hello sent in two pieces 0.3 s apart was still routed by its name, and the
server got all 517 bytes in one read; 20 bytes of a hello were passed to the default
at once when the client closed its side, and after the 2 s delay otherwise. With
`reject unless { req_ssl_hello_type 1 } || { req.len ge 8 }`, three plain bytes were
refused when the 1 s delay ran out (at once if the client closed), and a GET matched
`req.payload(0,3) -m bin 474554`.
"""

from __future__ import annotations

import socket
import ssl
import time

import pytest

from lb.config import load_text
from lb.http.actions import ALLOW
from lb.match import payload
from lb.match.sample import SampleSubject
from lb.proxy import inspect
from tests.lbproc import LbProcess, RawBackend

pytestmark = pytest.mark.timeout(60)


def client_hello(name: str | None) -> bytes:
    """The first flight of a real TLS client (Python's ssl), SNI = ``name``."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=name)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


HELLO_A = client_hello("a.example")


# ----------------------------------------------------------------- the fetches


class Ctx(SampleSubject):
    """What the payload fetches read from a TCP session (and the fields every fetch
    may look at)."""

    __slots__ = ("req_payload", "inspect_final", "may_change", "inspect_pos")

    def __init__(self, data: bytes | None, final: bool = False) -> None:
        self.is_response = False
        self.memo = {}
        self.vars = {}
        self.req_payload = data
        self.inspect_pos = 0
        self.inspect_final = final
        self.may_change = False


@pytest.mark.parametrize("name", ["a.example", "x.b.example", "l" * 63 + "." + "m" * 63 + ".io"])
def test_sni_read_from_a_real_client_hello(name: str) -> None:
    ctx = Ctx(client_hello(name))
    assert payload.req_ssl_sni(ctx, ()) == [name.encode()]
    assert payload.req_ssl_hello_type(ctx, ()) == [1]
    assert payload.req_ssl_ver(ctx, ()) == [0x030001]  # the record layer says TLS 1.0
    assert not ctx.may_change


def test_sni_absent_or_not_tls() -> None:
    ctx = Ctx(client_hello(None))
    assert payload.req_ssl_sni(ctx, ()) == [] and not ctx.may_change
    assert payload.req_ssl_hello_type(ctx, ()) == [1]
    for plain in (b"GET / HTTP/1.1\r\n\r\n", b"\x00" * 600, b"\x16\x02\x00\x00\x10"):
        ctx = Ctx(plain)
        assert payload.req_ssl_sni(ctx, ()) == [] and not ctx.may_change, plain


@pytest.mark.parametrize("cut", [0, 1, 4, 5, 8, 9, 100, len(HELLO_A) - 1])
def test_a_cut_hello_may_change_until_final(cut: int) -> None:
    ctx = Ctx(HELLO_A[:cut])
    assert payload.req_ssl_sni(ctx, ()) == [] and ctx.may_change
    ctx = Ctx(HELLO_A[:cut])
    assert payload.req_ssl_hello_type(ctx, ()) == [] and ctx.may_change
    ctx = Ctx(HELLO_A[:cut], final=True)  # nothing more will come: a plain "no"
    assert payload.req_ssl_sni(ctx, ()) == [] and not ctx.may_change


def test_sni_parser_survives_every_truncation_and_corruption() -> None:
    body = HELLO_A[5:]
    for i in range(len(body)):
        payload.client_hello_sni(body[:i])  # never raises
        mangled = bytearray(body)
        mangled[i] ^= 0xFF
        payload.client_hello_sni(bytes(mangled))


def test_req_len_and_payload() -> None:
    ctx = Ctx(b"GET /x")
    assert payload.req_len(ctx, ()) == [6] and ctx.may_change
    assert payload.req_payload(Ctx(b"GET /x"), (0, 3)) == [b"GET"]
    ctx = Ctx(b"GE")
    assert payload.req_payload(ctx, (0, 3)) == [] and ctx.may_change
    assert payload.req_payload(Ctx(b"GET /x"), (4, 0)) == [b"/x"]  # 0: up to the end
    assert payload.req_payload(Ctx(None), (0, 3)) == []  # no buffer: HTTP mode
    assert payload.req_len(Ctx(None), ()) == [0]


# --------------------------------------------------------- three-valued conditions


def _cond(text: str):  # type: ignore[no-untyped-def]
    res = load_text("defaults\n mode tcp\n timeout client 1s\n timeout server 1s\n"
                    " timeout connect 1s\nfrontend f\n bind :1\n tcp-request inspect-delay 1s\n"
                    f" tcp-request content reject {text}\n default_backend b\n"
                    "backend b\n server s 127.0.0.1:1\n", "t.cfg")
    assert res.ok, [d.message() for d in res.diagnostics]
    return res.config.frontend("f").tcp_request_content_rules[0].cond


@pytest.mark.parametrize("text,data,final,expected", [
    ("if { req_ssl_hello_type 1 }", HELLO_A[:30], False, inspect.MISS),
    ("if { req_ssl_hello_type 1 }", HELLO_A[:30], True, inspect.FAIL),
    ("if { req_ssl_hello_type 1 }", HELLO_A, False, inspect.PASS),
    ("unless { req_ssl_hello_type 1 }", HELLO_A[:30], False, inspect.MISS),  # not a pass
    ("unless { req_ssl_hello_type 1 }", b"\x16\x03", False, inspect.MISS),
    ("unless { req_ssl_hello_type 1 }", b"abc", False, inspect.PASS),  # not TLS: decided
    ("if { req.len ge 8 }", b"abcdefghij", False, inspect.PASS),  # a pass stays a pass
    ("if { req.len ge 8 }", b"abc", False, inspect.MISS),
    ("if { req.len ge 8 }", b"abc", True, inspect.FAIL),
    ("if { req_ssl_hello_type 1 } || { req.len ge 8 }", b"abcdefghij", False, inspect.PASS),
    ("if { req_ssl_hello_type 1 } { req.len ge 8 }", b"abcdefghij", False, inspect.FAIL),
    ("if !{ req.ssl_sni -m found }", HELLO_A[:50], False, inspect.MISS),
    ("if !{ req.ssl_sni -m found }", HELLO_A, False, inspect.FAIL),
    ("if WAIT_END", b"abc", False, inspect.MISS),  # true only once the delay is over
    ("if WAIT_END", b"abc", True, inspect.PASS),
    ("unless WAIT_END", b"", False, inspect.MISS),
    ("if WAIT_END || { req.len ge 2 }", b"abc", False, inspect.PASS),
], ids=lambda v: f"{len(v)}B" if isinstance(v, bytes) else None)  # (the hello is random)
def test_condition_is_three_valued_like_haproxy(text: str, data: bytes, final: bool,
                                                expected: int) -> None:
    ctx = Ctx(data, final)
    assert inspect.condition(_cond(text), ctx) == expected


def test_a_waiting_walk_resumes_where_it_stopped() -> None:
    """The actions before an undecided rule run once, however many times bytes come."""
    ran: list[int] = []

    class Rules:
        rules = ((None, lambda ctx: ran.append(1)),
                 (_cond("if { req_ssl_hello_type 1 }"), lambda ctx: ALLOW))

    ctx = Ctx(b"")
    for cut in (1, 9, 60):
        ctx.req_payload = HELLO_A[:cut]
        assert inspect.run(Rules, ctx, False) is inspect.WAIT
    ctx.req_payload = HELLO_A
    assert inspect.run(Rules, ctx, False) is None  # accepted
    assert ran == [1]


# ------------------------------------------------------------------ end to end


def _named(name: str):  # type: ignore[no-untyped-def]
    def handler(c: socket.socket, rb: RawBackend) -> None:
        c.settimeout(5)
        data = c.recv(65536)
        rb.received.append(data)
        c.sendall(name.encode() + b" got %d" % len(data))
        c.close()
    return handler


SNI = """
defaults
    mode tcp
    timeout client 5s
    timeout server 5s
    timeout connect 2s
frontend f
    bind 127.0.0.1:@@fe@@
    tcp-request inspect-delay 2s
    tcp-request content accept if { req_ssl_hello_type 1 }
    use_backend a if { req.ssl_sni -i a.example }
    use_backend b if { req_ssl_sni -m end .b.example }
    default_backend c
frontend g
    bind 127.0.0.1:@@strict@@
    tcp-request inspect-delay 1s
    tcp-request content reject unless { req_ssl_hello_type 1 } || { req.len ge 8 }
    use_backend a if { req.ssl_sni -i a.example }
    use_backend b if { req.payload(0,3) -m bin 474554 }
    default_backend c
frontend w
    bind 127.0.0.1:@@waitend@@
    tcp-request inspect-delay 500ms
    tcp-request content accept if WAIT_END
    default_backend c
backend a
    server s 127.0.0.1:@@a@@
backend b
    server s 127.0.0.1:@@b@@
backend c
    server s 127.0.0.1:@@c@@
"""


def ask(port: int, *pieces: bytes, gap: float = 0.0, close: bool = False
        ) -> tuple[bytes, float]:
    """Send the pieces (``gap`` seconds apart); the first answer and how long it took."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        t0 = time.monotonic()
        for i, piece in enumerate(pieces):
            if i and gap:
                time.sleep(gap)
            c.sendall(piece)
        if close:
            c.shutdown(socket.SHUT_WR)
        try:
            answer = c.recv(100)
        except ConnectionResetError:
            answer = b""
        return answer, time.monotonic() - t0


@pytest.fixture(scope="module")
def sni():  # type: ignore[no-untyped-def]
    with RawBackend(_named("A")) as a, RawBackend(_named("B")) as b, \
            RawBackend(_named("C")) as c:
        with LbProcess(SNI, ports={"a": a.port, "b": b.port, "c": c.port}) as lb:
            yield lb.ports["fe"], lb.ports["strict"], lb.ports["waitend"]


def test_tls_passthrough_routed_by_sni(sni) -> None:  # type: ignore[no-untyped-def]
    fe, *_ = sni
    assert ask(fe, HELLO_A)[0] == b"A got 517"
    assert ask(fe, client_hello("x.b.example"))[0] == b"B got 517"
    assert ask(fe, client_hello("other.example"))[0] == b"C got 517"
    assert ask(fe, client_hello(None))[0] == b"C got 517"
    assert ask(fe, b"GET / HTTP/1.0\r\n\r\n")[0] == b"C got 18"  # the end of the rules


def test_a_hello_in_pieces_is_waited_for(sni) -> None:  # type: ignore[no-untyped-def]
    fe, *_ = sni
    answer, took = ask(fe, HELLO_A[:7], HELLO_A[7:], gap=0.3)
    assert answer == b"A got 517"  # routed by name; the server read it all at once
    assert 0.25 < took < 1.5


def test_undecided_rules_end_at_eof_or_when_the_delay_runs_out(sni) -> None:  # type: ignore[no-untyped-def]
    fe, *_ = sni
    answer, took = ask(fe, HELLO_A[:20], close=True)
    assert answer == b"C got 20" and took < 1.0
    answer, took = ask(fe, HELLO_A[:20])
    assert answer == b"C got 20" and 1.8 < took < 3.5  # inspect-delay 2s


def test_reject_unless_waits_then_refuses(sni) -> None:  # type: ignore[no-untyped-def]
    _, strict, _ = sni
    assert ask(strict, HELLO_A)[0] == b"A got 517"
    assert ask(strict, b"GET / HTTP/1.0\r\n\r\n")[0] == b"B got 18"
    answer, took = ask(strict, b"abc")
    assert answer == b"" and 0.8 < took < 2.5  # refused when the 1 s delay ran out
    answer, took = ask(strict, b"abc", close=True)
    assert answer == b"" and took < 0.8  # nothing more can come: refused at once


def test_wait_end_holds_the_connection_for_the_whole_delay(sni) -> None:  # type: ignore[no-untyped-def]
    """`accept if WAIT_END`: HAProxy 2.6.12 passed two bytes on after the 500 ms
    delay, and at once when the client had closed its side (nothing more can come)."""
    *_, waitend = sni
    answer, took = ask(waitend, b"hi")
    assert answer == b"C got 2" and 0.45 < took < 2.0
    answer, took = ask(waitend, b"hi", close=True)
    assert answer == b"C got 2" and took < 0.4


BACKEND_RULES = """
global
    stats socket {sock} level admin
defaults
    mode tcp
    timeout client 5s
    timeout server 5s
    timeout connect 2s
frontend f
    bind 127.0.0.1:@@fe@@
    default_backend b
frontend g
    bind 127.0.0.1:@@deny@@
    default_backend deny
backend b
    tcp-request inspect-delay 1s
    tcp-request content reject unless {{ req_ssl_hello_type 1 }}
    server s 127.0.0.1:@@b@@
backend deny
    tcp-request content reject if {{ src 127.0.0.1 }}
    server s 127.0.0.1:@@b@@
"""


def test_backend_content_rules_run_after_the_frontend_chose_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A backend's own rules, with its own inspect-delay. HAProxy 2.6.12 with this
    configuration: the hello reached the server, the plain bytes and the connection
    from a denied source were closed (a FIN, no reset) at once, and `show stat` said
    dreq 2 and 1 on the frontends, 0 on the backends, stot 3 and 1 on the backends."""
    from tests.stats_support import query, wait_socket

    sock = str(tmp_path / "lb.sock")

    def counters() -> dict[str, int]:
        wait_socket(sock)  # the stats socket is bound just after the listeners
        rows = [line.split(",") for line in query(sock, "show stat").splitlines()]
        head = rows[0][0].lstrip("# ").split(",") + rows[0][1:]
        out = {}
        for r in rows[1:]:
            if r[0] and r[1] in ("FRONTEND", "BACKEND"):
                f = dict(zip(head, r, strict=False))
                out[f"{r[0]} dreq"] = int(f["dreq"] or 0)
                out[f"{r[0]} stot"] = int(f["stot"] or 0)
        return out

    with RawBackend(_named("B")) as b:
        with LbProcess(BACKEND_RULES.format(sock=sock), ports={"b": b.port}) as lb:
            fe, deny = lb.ports["fe"], lb.ports["deny"]
            before = counters()  # LbProcess's readiness probes were sessions too
            assert ask(fe, HELLO_A)[0] == b"B got 517"
            answer, took = ask(fe, b"abc")
            assert answer == b"" and took < 0.5  # not TLS: decided at once
            answer, took = ask(fe, b"\x16\x03\x01\x02")
            assert answer == b"" and 0.8 < took < 2.5  # a cut hello: after the delay
            assert ask(deny, b"abc")[0] == b""  # a clean close: the bytes were read
            after = counters()
            delta = {k: after[k] - before[k] for k in after}
            assert (delta["f dreq"], delta["g dreq"], delta["b dreq"], delta["deny dreq"]) \
                == (2, 1, 0, 0)
            assert (delta["b stot"], delta["deny stot"]) == (3, 1)
            assert b.received == [HELLO_A]
