"""Check programs without I/O: request bytes, response parsing, expect rules."""

from __future__ import annotations

import base64
import hashlib

from healthcheck.steps import (
    Connect,
    Eval,
    HttpExpect,
    HttpSend,
    RunContext,
    TcpExpect,
    compile_spec,
    parse_response,
    ws_close_frame,
)
from lb.config.model import (
    CheckConnect,
    CheckSpec,
    ExpectOutcome,
    HttpCheckExpect,
    HttpCheckSend,
    TcpCheckExpect,
    TcpCheckSend,
)

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455's example pair


def http_spec(send: HttpCheckSend | None = None, *expects: HttpCheckExpect,
              **kw: bool) -> CheckSpec:
    steps: tuple = (send or HttpCheckSend(),) + expects
    return CheckSpec(kind="http", steps=steps, **kw)


def sends(spec: CheckSpec) -> list[HttpSend]:
    return [s for s in compile_spec(spec).steps if isinstance(s, HttpSend)]


def render(spec: CheckSpec, ctx: RunContext | None = None) -> bytes:
    return sends(spec)[0].render(ctx or RunContext(key_factory=lambda: KEY))


def run_expects(spec: CheckSpec, response: bytes, eof: bool = True,
                ctx: RunContext | None = None) -> tuple[Eval, object]:
    """Render the request, then evaluate every expect on the response bytes."""
    prog = compile_spec(spec)
    ctx = ctx or RunContext(key_factory=lambda: KEY, disable404=prog.disable404)
    verdict, out = Eval.CONTINUE, None
    for step in prog.steps:
        if isinstance(step, HttpSend):
            step.render(ctx)
            ctx.reset_response()
        elif isinstance(step, (HttpExpect, TcpExpect)):
            verdict, out = step.evaluate(response, eof, ctx)
            if verdict is not Eval.CONTINUE:
                return verdict, out
    return verdict, prog.success(ctx, prog.steps[-1])


# --------------------------------------------------------------------------- requests


def test_default_httpchk_bytes() -> None:
    # checked against HAProxy 2.6.12: `option httpchk` sends exactly this
    assert render(http_spec()) == b"OPTIONS / HTTP/1.0\r\n\r\n"


def test_http11_gets_connection_close_and_lowercase_names() -> None:
    spec = http_spec(HttpCheckSend("GET", "/health", "HTTP/1.1", (("Host", "www.example.com"),)))
    assert render(spec) == (b"GET /health HTTP/1.1\r\nhost: www.example.com\r\n"
                            b"connection: close\r\n\r\n")


def test_body_gets_content_length_and_send_state() -> None:
    # checked against HAProxy 2.6.12: hdr, x-haproxy-server-state, content-length, connection
    spec = http_spec(HttpCheckSend("GET", "/hc", "HTTP/1.1", (("Host", "svc"),), b"abc"),
                     send_state=True)
    ctx = RunContext(state_header="UP 1/3; address=127.0.0.1; port=1; name=b/s; node=n; "
                                  "weight=1/1; scur=0/0; qcur=0")
    assert render(spec, ctx) == (
        b"GET /hc HTTP/1.1\r\nhost: svc\r\nx-haproxy-server-state: UP 1/3; "
        b"address=127.0.0.1; port=1; name=b/s; node=n; weight=1/1; scur=0/0; qcur=0\r\n"
        b"content-length: 3\r\nconnection: close\r\n\r\nabc")


def test_given_connection_header_suppresses_close() -> None:
    spec = http_spec(HttpCheckSend("GET", "/", "HTTP/1.1", (("Connection", "keep-alive"),)))
    assert render(spec) == b"GET / HTTP/1.1\r\nconnection: keep-alive\r\n\r\n"


SEED_HEADERS = (("Host", "ws.domain.com"), ("Connection", "Upgrade"), ("Upgrade", "websocket"),
                ("Sec-WebSocket-Key", "haproxy"), ("Sec-WebSocket-Version", "13"),
                ("Sec-WebSocket-Protocol", "echo-protocol"))


def test_seed_ws_check_gets_fresh_valid_key_each_run() -> None:
    spec = http_spec(HttpCheckSend("GET", "/", "HTTP/1.1", SEED_HEADERS))
    send = sends(spec)[0]
    a = send.render(RunContext())
    b = send.render(RunContext())
    for req in (a, b):
        assert b"haproxy" not in req
        assert req.startswith(b"GET / HTTP/1.1\r\nhost: ws.domain.com\r\n"
                              b"connection: Upgrade\r\nupgrade: websocket\r\n"
                              b"sec-websocket-version: 13\r\n"
                              b"sec-websocket-protocol: echo-protocol\r\n"
                              b"sec-websocket-key: ")
        assert req.endswith(b"\r\n\r\n")
        assert b"connection: close" not in req
        key = req.split(b"sec-websocket-key: ")[1].split(b"\r\n")[0]
        assert len(key) == 24 and len(base64.b64decode(key)) == 16
    assert a != b  # a new key per check


def test_ws_check_keeps_valid_key_and_adds_version() -> None:
    spec = http_spec(HttpCheckSend("GET", "/", "HTTP/1.1", (
        ("Connection", "Upgrade"), ("Upgrade", "websocket"),
        ("Sec-WebSocket-Key", KEY.decode()))))
    assert render(spec, RunContext(key_factory=lambda: b"X" * 24)) == (
        b"GET / HTTP/1.1\r\nconnection: Upgrade\r\nupgrade: websocket\r\n"
        b"sec-websocket-key: " + KEY + b"\r\nsec-websocket-version: 13\r\n\r\n")


def test_compile_shapes() -> None:
    assert [type(s).__name__ for s in compile_spec(CheckSpec()).steps] == ["Connect"]
    prog = compile_spec(http_spec())
    assert [type(s).__name__ for s in prog.steps] == ["Connect", "HttpSend", "HttpExpect"]
    prog = compile_spec(CheckSpec(kind="tcp-check", steps=(
        CheckConnect(port=99), TcpCheckSend(b"PING\r\n"),
        TcpCheckExpect("string", b"+PONG"))))
    assert [type(s).__name__ for s in prog.steps] == ["Connect", "RawSend", "TcpExpect"]
    c = prog.steps[0]
    assert isinstance(c, Connect) and c.port == 99 and not c.implicit
    assert prog.steps[2].step_id == 3


# --------------------------------------------------------------------------- responses


def test_parse_response_forms() -> None:
    r = parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhel", False)
    assert r is not None and not isinstance(r, str) and not r.complete and r.body == b"hel"
    r = parse_response(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                       b"3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n", False)
    assert not isinstance(r, str) and r is not None and r.complete and r.body == b"hello"
    r = parse_response(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", False)
    assert not isinstance(r, str) and r is not None and r.status == 204
    assert parse_response(b"HTTP/1.1 200 OK\r\ncontent-le", False) is None
    assert parse_response(b"hello world\r\n\r\n", True) == ""
    assert parse_response(b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n", True) == ""


OK200 = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello"


def outcome(spec: CheckSpec, response: bytes, eof: bool = True,
            ctx: RunContext | None = None) -> tuple[str, int, str]:
    verdict, out = run_expects(spec, response, eof, ctx)
    assert verdict is not Eval.WAIT, "unexpected WAIT"
    return out.status, out.code, out.desc  # type: ignore[attr-defined]


def test_default_expect_2xx_3xx() -> None:
    assert outcome(http_spec(), OK200) == ("L7OK", 200, "")
    assert outcome(http_spec(), b"HTTP/1.1 302 Found\r\ncontent-length: 0\r\n\r\n")[0] == "L7OK"
    assert outcome(http_spec(), b"HTTP/1.1 500 Internal Server Error\r\n"
                                b"content-length: 0\r\n\r\n") == (
        "L7STS", 500, "Internal Server Error")
    # a 101 to a request without upgrade headers is judged by status only
    plain101 = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: foo\r\nconnection: upgrade\r\n\r\n"
    assert outcome(http_spec(), plain101) == ("L7STS", 101, "Switching Protocols")
    exp101 = HttpCheckExpect("status", "101")
    assert outcome(http_spec(None, exp101), plain101) == ("L7OK", 101, "")


def test_no_response_and_garbage() -> None:
    assert outcome(http_spec(), b"") == ("L7RSP", 0, "")
    assert outcome(http_spec(), b"hello world\r\n")[0] == "L7RSP"
    assert run_expects(http_spec(), b"HTTP/1.1 200 OK\r\n", eof=False)[0] is Eval.WAIT


def test_status_lists_ranges_and_negation() -> None:
    lst = HttpCheckExpect("status", "201,300-310")
    assert outcome(http_spec(None, lst), OK200) == ("L7STS", 200, "OK")
    assert outcome(http_spec(None, lst), b"HTTP/1.1 305 X\r\n\r\n")[0] == "L7OK"
    neg = HttpCheckExpect("status", "200", negate=True)
    assert outcome(http_spec(None, neg), OK200) == ("L7STS", 200, "OK")
    assert outcome(http_spec(None, neg), b"HTTP/1.1 503 Busy\r\n\r\n")[0] == "L7OK"
    rs = HttpCheckExpect("rstatus", "^3")
    assert outcome(http_spec(None, rs), OK200) == ("L7STS", 200, "OK")
    assert outcome(http_spec(None, HttpCheckExpect("rstatus", "^2")), OK200)[0] == "L7OK"


def test_string_rstring() -> None:
    assert outcome(http_spec(None, HttpCheckExpect("string", "hell")), OK200)[0] == "L7OK"
    assert outcome(http_spec(None, HttpCheckExpect("string", "foo")), OK200) == (
        "L7RSP", 200, "HTTP content check did not match")
    assert outcome(http_spec(None, HttpCheckExpect("string", "hell", negate=True)), OK200) == (
        "L7RSP", 200, "HTTP check matched unwanted content")
    assert outcome(http_spec(None, HttpCheckExpect("rstring", "h.l+o")), OK200)[0] == "L7OK"
    empty = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
    assert outcome(http_spec(None, HttpCheckExpect("string", "foo")), empty) == (
        "L7RSP", 200, "HTTP content check could not find a response body")
    # a partial body waits for the rest
    part = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhe"
    assert run_expects(http_spec(None, HttpCheckExpect("string", "llo")), part,
                       eof=False)[0] is Eval.WAIT


def test_hdr_and_fhdr() -> None:
    ct = HttpCheckExpect("hdr", "content-type", hdr_name="content-type")
    assert outcome(http_spec(None, ct), OK200)[0] == "L7OK"
    missing = HttpCheckExpect("hdr", "x-ready", hdr_name="x-ready")
    assert outcome(http_spec(None, missing), OK200) == ("L7STS", 200, "OK")
    resp = b"HTTP/1.1 200 OK\r\nX-State: a, ready\r\ncontent-length: 0\r\n\r\n"
    val = HttpCheckExpect("hdr", "x-state", hdr_name="X-State", value="ready")
    assert outcome(http_spec(None, val), resp)[0] == "L7OK"
    full = HttpCheckExpect("fhdr", "x-state", hdr_name="x-state", value="ready")
    assert outcome(http_spec(None, full), resp)[0] == "L7STS"
    full_ok = HttpCheckExpect("fhdr", "x-state", hdr_name="x-state", value="a, ready")
    assert outcome(http_spec(None, full_ok), resp)[0] == "L7OK"
    beg = HttpCheckExpect("hdr", "x-st", hdr_name="x-st", hdr_method="beg", value="rea",
                          value_method="beg")
    assert outcome(http_spec(None, beg), resp)[0] == "L7OK"
    reg = HttpCheckExpect("hdr", "^x-s", hdr_name="^x-s", hdr_method="reg", value="^re",
                          value_method="reg")
    assert outcome(http_spec(None, reg), resp)[0] == "L7OK"


def test_error_and_ok_status_overrides() -> None:
    e = HttpCheckExpect("status", "200", outcome=ExpectOutcome(error_status="L7RSP",
                                                               ok_status="L7OKC"))
    assert outcome(http_spec(None, e), b"HTTP/1.1 500 Oops\r\n\r\n")[0] == "L7RSP"
    assert outcome(http_spec(None, e), OK200)[0] == "L7OKC"


def test_disable_on_404_only_when_running() -> None:
    spec = http_spec(disable_on_404=True)
    r404 = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
    assert outcome(spec, r404) == ("L7OKC", 404, "")
    down = RunContext(server_running=False, disable404=True)
    assert outcome(spec, r404, ctx=down) == ("L7STS", 404, "Not Found")


# --------------------------------------------------------------------------- WebSocket

WS_SPEC = http_spec(HttpCheckSend("GET", "/", "HTTP/1.1", SEED_HEADERS),
                    HttpCheckExpect("status", "101"))


def ws101(accept: bytes | None, conn: bytes = b"Upgrade") -> bytes:
    head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: " + conn
    if accept is not None:
        head += b"\r\nSec-WebSocket-Accept: " + accept
    return head + b"\r\n\r\n"


def test_ws_good_accept_passes_and_opens() -> None:
    ctx = RunContext(key_factory=lambda: KEY)
    assert outcome(WS_SPEC, ws101(ACCEPT), eof=False, ctx=ctx) == ("L7OK", 101, "")
    assert ctx.ws_open


def test_ws_bad_missing_accept_and_no_upgrade_are_invalid() -> None:
    wrong = base64.b64encode(hashlib.sha1(b"other").digest())
    assert outcome(WS_SPEC, ws101(wrong), eof=False) == (
        "L7RSP", 101, "WebSocket handshake: wrong Sec-WebSocket-Accept")
    assert outcome(WS_SPEC, ws101(None), eof=False) == (
        "L7RSP", 101, "WebSocket handshake: 101 without Sec-WebSocket-Accept")
    assert outcome(WS_SPEC, ws101(ACCEPT, conn=b"keep-alive"), eof=False)[0] == "L7RSP"


def test_ws_200_and_400_are_wrong_status() -> None:
    assert outcome(WS_SPEC, OK200) == ("L7STS", 200, "OK")
    assert outcome(WS_SPEC, b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n") == (
        "L7STS", 400, "Bad Request")
    # unless the rule accepts them
    spec = http_spec(HttpCheckSend("GET", "/", "HTTP/1.1", SEED_HEADERS),
                     HttpCheckExpect("status", "101,200"))
    assert outcome(spec, OK200)[0] == "L7OK"


def test_close_frame_is_masked_1000() -> None:
    f = ws_close_frame(b"\x01\x02\x03\x04")
    assert f[0] == 0x88 and f[1] == 0x82 and f[2:6] == b"\x01\x02\x03\x04"
    assert bytes(b ^ f[2 + i % 4] for i, b in enumerate(f[6:])) == b"\x03\xe8"


# --------------------------------------------------------------------------- tcp-check


def tcp_outcome(rules: tuple, response: bytes, eof: bool = True) -> tuple[str, int, str]:
    return outcome(CheckSpec(kind="tcp-check", steps=rules), response, eof)


def test_tcp_check_expect_messages() -> None:
    rules = (TcpCheckSend(b"PING\r\n"), TcpCheckExpect("string", b"+PONG"))
    assert tcp_outcome(rules, b"+PONG\r\n") == ("L7OK", 0, "(tcp-check)")
    bad = (TcpCheckSend(b"PING\r\n"), TcpCheckExpect("string", b"+PANG"))
    assert tcp_outcome(bad, b"+PONG\r\n") == (
        "L7RSP", 0, "TCPCHK did not match content '+PANG' at step 2")
    neg = (TcpCheckExpect("string", b"+PONG", negate=True),)
    assert tcp_outcome(neg, b"+PONG\r\n") == (
        "L7RSP", 0, "TCPCHK matched unwanted content '+PONG' at step 1")
    assert tcp_outcome(rules, b"") == ("L7RSP", 0, "TCPCHK got an empty response at step 2")
    assert tcp_outcome((TcpCheckExpect("rstring", rb"^\+P.NG"),), b"+PONG")[0] == "L7OK"
    assert tcp_outcome((TcpCheckExpect("binary", b"\x2b\x50"),), b"+PONG")[0] == "L7OK"
    assert tcp_outcome((TcpCheckExpect("rbinary", b"^2B50"),), b"+PONG")[0] == "L7OK"
    assert tcp_outcome((TcpCheckExpect("binary", b"\x00"),), b"+PONG") == (
        "L7RSP", 0, "TCPCHK did not match content (binary) at step 1")


def test_tcp_check_waits_for_enough_bytes() -> None:
    rules = (TcpCheckExpect("string", b"+PONG"),)
    assert run_expects(CheckSpec(kind="tcp-check", steps=rules), b"+PO", eof=False)[0] \
        is Eval.WAIT


def test_step_texts() -> None:
    prog = compile_spec(CheckSpec(kind="tcp-check", steps=(
        TcpCheckSend(b"PING\r\n"), TcpCheckExpect("string", b"+PONG"))))
    assert prog.step_text(prog.steps[0]) == " at initial connection step of tcp-check"
    assert prog.step_text(prog.steps[2]) == " at step 2 of tcp-check (expect string '+PONG')"
    assert compile_spec(http_spec()).step_text(None) == ""


# --------------------------------------------------------------------------- robustness

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from healthcheck.status import CHECK_STATUSES  # noqa: E402

ALL_EXPECTS = [
    http_spec(),
    WS_SPEC,
    http_spec(None, HttpCheckExpect("string", "ok")),
    http_spec(None, HttpCheckExpect("rstring", "o+k")),
    http_spec(None, HttpCheckExpect("hdr", "x", hdr_name="x", value="y")),
    http_spec(None, HttpCheckExpect("rstatus", "^2"), HttpCheckExpect("string", "a", negate=True)),
    CheckSpec(kind="tcp-check", steps=(TcpCheckExpect("string", b"+OK"),
                                       TcpCheckExpect("rbinary", b"2B"))),
]


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), eof=st.booleans(), which=st.integers(0, 6))
def test_any_bytes_give_a_verdict_never_an_exception(data: bytes, eof: bool,
                                                      which: int) -> None:
    verdict, out = run_expects(ALL_EXPECTS[which], data, eof)
    if eof:
        assert verdict is not Eval.WAIT
    if verdict is not Eval.WAIT:
        assert out.status in CHECK_STATUSES  # type: ignore[attr-defined]


HTTP_LIKE = st.builds(
    lambda status, reason, body, chunked: (
        f"HTTP/1.1 {status} {reason}\r\n".encode()
        + (b"transfer-encoding: chunked\r\n\r\n" + (f"{len(body):x}\r\n".encode() + body
                                                   + b"\r\n" if body else b"") + b"0\r\n\r\n"
           if chunked else b"content-length: " + str(len(body)).encode() + b"\r\n\r\n"
           + body)),
    st.integers(100, 599).filter(lambda s: not 100 <= s < 200),
    st.sampled_from(["OK", "Not Found", "X"]), st.binary(max_size=64), st.booleans())


@settings(max_examples=200, deadline=None)
@given(resp=HTTP_LIKE, which=st.integers(0, 5))
def test_prefixes_wait_then_agree_with_whole_response(resp: bytes, which: int) -> None:
    spec = ALL_EXPECTS[which]
    final = run_expects(spec, resp, eof=True)
    whole = run_expects(spec, resp, eof=False)
    if whole[0] is not Eval.WAIT:
        assert whole[1].status == final[1].status  # type: ignore[attr-defined]
    # a complete response is judged without waiting for the connection to end
    assert whole[0] is not Eval.WAIT
    head_end = resp.index(b"\r\n\r\n") + 4
    for cut in range(0, head_end, max(1, head_end // 7)):
        v, _ = run_expects(spec, resp[:cut], eof=False)
        assert v is Eval.WAIT, (cut, resp)


def test_odd_config_values_compile_and_run() -> None:
    spec = http_spec(HttpCheckSend("GET", "/é", "HTTP/1.1", (("X-Név", "vàl\udcff"),)),
                     HttpCheckExpect("rstring", "(unclosed"),
                     HttpCheckExpect("hdr", "x", hdr_name="x", value="[", value_method="reg"),
                     HttpCheckExpect("status", "200,abc"))
    req = render(spec)
    assert req.startswith("GET /é HTTP/1.1\r\nx-név: vàl".encode())
    assert b"\xff" in req
    verdict, out = run_expects(spec, b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n(unclosed")
    assert out.status == "L7STS"  # type: ignore[attr-defined]  (no header x)
