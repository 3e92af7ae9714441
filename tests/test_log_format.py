"""Traffic-line rendering (lb.logfmt): pure, field by field, against HAProxy 2.6 output.

Every expected line below was produced by HAProxy 2.6.12 (Debian 2.6.12-1+deb12u4) on
127.0.0.1 and captured from its UDP syslog output; the txn given to the renderer holds
the same field values HAProxy reported (checked against HAProxy 2.6.12 on 2026-11-21).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lb import logfmt
from lb.logfmt import (
    HTTPLOG_CLF_FORMAT,
    HTTPLOG_FORMAT,
    TCPLOG_FORMAT,
    LogFormatError,
    compile_traffic_format,
)
from tests.test_log_support import FakeTxn, epoch, set_tz, utc_clock


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    with utc_clock():
        yield


def render(fmt: str, mode: str = "http", **kw: object) -> bytes:
    return compile_traffic_format(fmt, mode).render(FakeTxn(**kw))


# ----------------------------------------------------------------------------- httplog


def test_httplog_spec_example_byte_for_byte() -> None:
    # spec §11 example, captured from HAProxy 2.6.12.
    assert render(HTTPLOG_FORMAT) == (
        b'127.0.0.1:40142 [21/Nov/2026:16:23:40.573] f b_api/s1 0/0/0/1/1 200 241 - - '
        b'---- 1/1/0/0/0 0/0 "GET /api/x HTTP/1.1"')


def test_httplog_fields_in_order() -> None:
    line = render(HTTPLOG_FORMAT, client_ip="10.0.0.7", client_port=5, t_request=3,
                  t_queue=4, t_connect=5, t_response=6, t_active=7, status=302,
                  bytes_out=99, term=b"LR", cookie_req=b"N", cookie_res=b"I", actconn=11,
                  feconn=12, beconn=13, srvconn=14, retries=2, srv_queue=15,
                  backend_queue=16)
    assert line.split(b" ") == [
        b"10.0.0.7:5", b"[21/Nov/2026:16:23:40.573]", b"f", b"b_api/s1", b"3/4/5/6/7",
        b"302", b"99", b"-", b"-", b"LRNI", b"11/12/13/14/2", b"15/16", b'"GET',
        b"/api/x", b'HTTP/1.1"']


def test_httplog_nosrv_and_never_reached_timers() -> None:
    # HAProxy 2.6.12: `use_backend bnone` with no server → 503
    line = render(HTTPLOG_FORMAT, backend_name="bnone", server_name=None, t_queue=-1,
                  t_connect=-1, t_response=-1, t_active=0, status=503, bytes_out=217,
                  term=b"SC", request_line=b"GET /none HTTP/1.1")
    assert line == (b'127.0.0.1:40142 [21/Nov/2026:16:23:40.573] f bnone/<NOSRV> '
                    b'0/-1/-1/-1/0 503 217 - - SC-- 1/1/0/0/0 0/0 "GET /none HTTP/1.1"')


def test_httplog_badreq_uses_frontend_as_backend() -> None:
    # HAProxy 2.6.12, invalid request line: `"fclf" "fclf" "<NOSRV>" -1 -1 -1 -1 0 PR--`
    line = render(HTTPLOG_FORMAT, backend_name=None, server_name=None, t_request=-1,
                  t_queue=-1, t_connect=-1, t_response=-1, t_active=0, status=400,
                  bytes_out=0, term=b"PR", request_line=None)
    assert line == (b'127.0.0.1:40142 [21/Nov/2026:16:23:40.573] f f/<NOSRV> '
                    b'-1/-1/-1/-1/0 400 0 - - PR-- 1/1/0/0/0 0/0 "<BADREQ>"')


def test_httplog_redispatch_plus_and_tls_tilde() -> None:
    line = render(HTTPLOG_FORMAT, retries=1, redispatched=True, frontend_tls=True)
    assert b" f~ b_api/s1 " in line
    assert b" 1/1/0/0/+1 0/0 " in line
    assert b" 1/1/0/0/1 " in render(HTTPLOG_FORMAT, retries=1)


def test_httplog_request_line_escaping() -> None:
    # HAProxy 2.6.12 logged `"GET /a%22b%00c#22d HTTP/1.1"` for a raw '"' in the URI.
    line = render(HTTPLOG_FORMAT, request_line=b'GET /a%22b%00c"d HTTP/1.1')
    assert line.endswith(b'"GET /a%22b%00c#22d HTTP/1.1"')
    line = render(HTTPLOG_FORMAT, request_line=b"GET /x#y\x01\x7f\xc3\xa9 HTTP/1.1")
    assert line.endswith(b'"GET /x#23y#01#7F#C3#A9 HTTP/1.1"')


def test_url_escape_every_byte() -> None:
    """Each byte alone, at the start, middle and end: control bytes, DEL, bytes above
    127, '"' and '#' become #XX (upper-case hex); every other byte stays."""
    for c in range(256):
        raw = bytes([c])
        want = f"#{c:02X}" if c < 32 or c > 126 or c in (0x22, 0x23) else chr(c)
        for value, text in ((raw, want), (b"a" + raw + b"b", "a" + want + "b"),
                            (b"GET /" + raw, "GET /" + want)):
            assert logfmt.url_escape(value) == text, c
    assert logfmt.url_escape(b"") == ""


def test_request_date_falls_back_to_accept_date() -> None:
    line = render("%tr", request_ts=0.0, accept_ts=epoch("2026-01-02 03:04:05", 6))
    assert line == b"02/Jan/2026:03:04:05.006"


# ----------------------------------------------------------------------------- clf / tcplog


def test_httplog_clf_matches_haproxy() -> None:
    # HAProxy 2.6.12 `option httplog clf` (note the trailing space left by %hrl %hsl):
    # 127.0.0.1 - - [21/Nov/2026:17:49:14 +0000] "GET /api/x?y=1 HTTP/1.1" 200 133 "" ""
    #   52270 108 "fclf" "b" "s1" 0 0 0 3 4 ---- 1 1 0 0 0 0 0 "" ""
    line = render(HTTPLOG_CLF_FORMAT, client_port=52270,
                  accept_ts=epoch("2026-11-21 17:49:14", 108),
                  request_ts=epoch("2026-11-21 17:49:14", 108), frontend_name="fclf",
                  backend_name="b", t_response=3, t_active=4, bytes_out=133,
                  request_line=b"GET /api/x?y=1 HTTP/1.1")
    assert line == (b'127.0.0.1 - - [21/Nov/2026:17:49:14 +0000] "GET /api/x?y=1 HTTP/1.1" '
                    b'200 133 "" "" 52270 108 "fclf" "b" "s1" 0 0 0 3 4 ---- 1 1 0 0 0 0 0 '
                    b'"" "" ')


def test_tcplog_matches_haproxy() -> None:
    # HAProxy 2.6.12 `option tcplog`:
    # 127.0.0.1:40486 [21/Nov/2026:17:49:26.249] ftcp btcp/s1 1/0/2 134 -- 1/1/0/0/0 0/0
    line = render(TCPLOG_FORMAT, "tcp", client_port=40486,
                  accept_ts=epoch("2026-11-21 17:49:26", 249), frontend_name="ftcp",
                  backend_name="btcp", t_queue=1, t_connect=0, t_total=2, bytes_out=134)
    assert line == (b"127.0.0.1:40486 [21/Nov/2026:17:49:26.249] ftcp btcp/s1 1/0/2 134 -- "
                    b"1/1/0/0/0 0/0")


def test_resolve_format_text() -> None:
    r = logfmt.resolve_format_text
    assert r(None, True, False, False, "http") == HTTPLOG_FORMAT
    assert r(None, True, True, False, "http") == HTTPLOG_CLF_FORMAT
    assert r(None, False, False, True, "tcp") == TCPLOG_FORMAT
    assert r(None, True, False, False, "tcp") == TCPLOG_FORMAT  # httplog needs mode http
    assert r("%ci", True, False, False, "http") == "%ci"
    assert r(None, False, False, False, "http") is None


def test_connect_line() -> None:
    # HAProxy 2.6.12: `Connect from 127.0.0.1:43564 to 127.0.0.1:32895 (f1/HTTP)`
    t = FakeTxn(client_port=43564, dst_port=32895, frontend_name="f1")
    assert logfmt.connect_line(t, "http") == (
        b"Connect from 127.0.0.1:43564 to 127.0.0.1:32895 (f1/HTTP)")
    assert logfmt.connect_line(t, "tcp").endswith(b"(f1/TCP)")


# ----------------------------------------------------------------------------- custom formats


def test_custom_format_flags_match_haproxy() -> None:
    # HAProxy 2.6.12 with this log-format (one field per `|`), same field values:
    # "127.0.0.1"|40604|7F000001|9E9C|200|"b"|"f1"|--|""|-|abc0|"abc0"|GET|/p/q?z=1|/p/q|
    # /p/q|?z=1|HTTP/1.1|"?z=1"|1795283389|6B01D9BD|411|98|0|0|0|1|0|1|0|0|0000|127.0.0.1|
    # 39549|f1|127.0.0.1|33779|127.0.0.1|38204|%|a b c| "s1" s1 "b" 200
    fmt = ("%{+Q}ci|%{+Q}cp|%{+X}ci|%{+X}cp|%{+Q}ST|%{+Q}b|%{+Q}ft|%{+Q}ts|%{+Q}CC|%CC|%ID|"
           "%{+Q}ID|%HM|%HU|%HP|%HPO|%HQ|%HV|%{+Q}HQ|%Ts|%{+X}Ts|%ms|%U|%Th|%Ti|%Tq|%Tu|%Td|"
           "%Tt|%lc|%rt|%{+X}rt|%fi|%fp|%f|%si|%sp|%bi|%bp|%%|a  b   c| %{+Q}o %s %{-Q}s "
           "%b %ST")
    ts = 1795283389.411
    t = FakeTxn(client_port=40604, backend_name="b", frontend_name="f1", unique_id="abc0",
                request_line=b"GET /p/q?z=1 HTTP/1.1", url=b"/p/q?z=1", accept_ts=ts,
                request_ts=ts, bytes_in=98, t_request=0, t_queue=0, t_connect=0,
                t_response=1, t_active=1, t_total=1, dst_port=39549, srv_ip="127.0.0.1",
                srv_port=33779, be_src=("127.0.0.1", 38204), req_counter=0)
    line = compile_traffic_format(fmt).render(t)
    assert line == (
        b'"127.0.0.1"|40604|7F000001|9E9C|200|"b"|"f1"|--|""|-|abc0|"abc0"|GET|/p/q?z=1|'
        b'/p/q|/p/q|?z=1|HTTP/1.1|"?z=1"|1795283389|6B01D9BD|411|98|0|0|0|1|0|1|0|0|0000|'
        b'127.0.0.1|39549|f1|127.0.0.1|33779|127.0.0.1|38204|%|a b c| "s1" s1 "b" 200')


def test_dates_and_time_zone() -> None:
    ts = epoch("2026-11-21 17:49:50", 539)
    # HAProxy 2.6.12 (TZ=UTC): " %t %Tl %trl " →
    # "21/Nov/2026:17:49:50.539 21/Nov/2026:17:49:50 +0000 21/Nov/2026:17:49:50 +0000 "
    assert render(" %t %Tl %trl ", accept_ts=ts, request_ts=ts) == (
        b"21/Nov/2026:17:49:50.539 21/Nov/2026:17:49:50 +0000 21/Nov/2026:17:49:50 +0000 ")
    assert render("%T|%trg|%ms|%{+X}ms", accept_ts=ts, request_ts=ts) == (
        b"21/Nov/2026:17:49:50 +0000|21/Nov/2026:17:49:50 +0000|539|21B")
    set_tz("Europe/Paris")
    assert render("%t %Tl %T", accept_ts=ts) == (
        b"21/Nov/2026:18:49:50.539 21/Nov/2026:18:49:50 +0100 21/Nov/2026:17:49:50 +0000")


def test_milliseconds_survive_float_representation() -> None:
    # 1795283389.006 is stored as ...005999; HAProxy keeps integer µs: it prints 006
    for ms in range(0, 1000, 1):
        ts = 1795283389 + ms / 1000
        assert render("%ms %t", accept_ts=ts).split(b" ")[0] == b"%03d" % ms
        assert render("%t", accept_ts=ts).endswith(b".%03d" % ms)


def test_query_path_variants_and_badreq() -> None:
    fmt = "%HM|%HU|%HP|%HPO|%HQ|%{+Q}HQ|%HV"
    assert render(fmt, url=b"/p", request_line=b"GET /p HTTP/1.0",
                  version=b"HTTP/1.0") == b'GET|/p|/p|/p||""|HTTP/1.0'
    assert render(fmt, url=b"http://h:8/a/b?x", request_line=b"GET http://h:8/a/b?x HTTP/1.1"
                  ) == b'GET|http://h:8/a/b?x|http://h:8/a/b|/a/b|?x|"?x"|HTTP/1.1'
    assert render(fmt, request_line=None) == (
        b'<BADREQ>|<BADREQ>|<BADREQ>|<BADREQ>|<BADREQ>|"<BADREQ>"|<BADREQ>')


def test_timer_derivations() -> None:
    fmt = "%Th/%Ti/%TR/%Tq/%Tw/%Tc/%Tr/%Td/%Ta/%Tt/%Tu"
    assert render(fmt, t_handshake=1, t_idle=2, t_request=3, t_queue=4, t_connect=5,
                  t_response=6, t_active=30, t_total=33) == b"1/2/3/6/4/5/6/12/30/33/31"
    # nothing reached: -1 everywhere HAProxy prints -1
    assert render(fmt, t_request=-1, t_queue=-1, t_connect=-1, t_response=-1, t_active=5,
                  t_total=5) == b"0/0/-1/-1/-1/-1/-1/-1/5/5/5"
    # TCP: Td is measured from the connection
    assert render("%Td", "tcp", t_queue=1, t_connect=2, t_response=-1, t_total=10) == b"7"


def test_spaces_merge_like_haproxy() -> None:
    assert render("  %ST   %B  ") == b"200 241 "
    # captures do not exist in lb: %hr/%hs vanish with their separator
    assert render("%ST %hr %hs %B") == b"200 241"
    assert render("%ST %hrl %hsl") == b"200 "


def test_o_flag_applies_to_following_vars() -> None:
    assert render("%ci %{+Q}o %ci %b %{-Q}s %ST %ts") == (
        b'127.0.0.1 "127.0.0.1" "b_api" s1 200 --')


def test_escape_flag_and_quote_inside() -> None:
    # HAProxy 2.6.12: %{+E}[var(txn.x)] of `a"b]c\d#` → `a\"b\]c\\d#`; %{+E,+Q}r quotes
    # the request line and #-escapes '"' inside it.
    t = FakeTxn()
    t.vars["txn.x"] = b'a"b]c\\d#'
    f = compile_traffic_format('%[var(txn.x)]|%{+Q}[var(txn.x)]|%{+E}[var(txn.x)]|'
                               '%{+E,+Q}r|%[var(txn.no)]|%{+Q}[var(txn.no)]|%{+E}ID')
    assert f.render(t) == (b'a"b]c\\d#|"a"b]c\\d#"|a\\"b\\]c\\\\d#|"GET /api/x HTTP/1.1"|'
                           b'-|""|-')


def test_sample_expressions() -> None:
    t = FakeTxn(client_ip="192.168.1.10")
    t.vars["txn.h"] = b"Example.COM"
    f = compile_traffic_format("%[src] %{+Q}[src] %[var(txn.h),lower] %[src_port]")
    assert f.render(t) == b'192.168.1.10 "192.168.1.10" example.com 40142'
    # control characters from a sample cannot start a new log line
    t.vars["txn.h"] = b"a\nb\r\x00c"
    assert f.render(t).endswith(b" a#0Ab#0D#00c 40142")


def test_log_counter_and_pid_hex() -> None:
    f = compile_traffic_format("%lc %{+X}lc %pid %{+X}pid")
    t = FakeTxn(pid=300)
    assert f.render(t) == b"0 0000 300 012C"
    f.log_count = 26
    assert f.render(t) == b"26 001A 300 012C"


def test_constant_format_and_percent() -> None:
    f = compile_traffic_format("100%% static")
    assert f.render(FakeTxn()) == b"100% static"
    assert render("%-x") == b"-x"  # a lone '%' before a non-letter is dropped, as HAProxy


def test_ipv6_hex_and_missing_optional_fields() -> None:
    assert render("%{+X}ci", client_ip="::1") == b"0" * 31 + b"1"
    # %si/%sp/%bi/%bp are optional txn attributes: absent → "-", as HAProxy 2.6.12
    # logs them for a request no server was tried for
    assert render("%si:%sp %bi:%bp") == b"-:- -:-"


@pytest.mark.parametrize("text, message", [
    ("%foo", "no such format variable 'foo'"),
    ("%1", "unexpected variable name near '1'"),
    ("abc %", "truncated line after '%'"),
    ("%{+Q} x", "parse argument modifier without variable name near '%{+Q}'"),
    ("%[nosuchfetch]", "failed to parse sample expression <nosuchfetch>"),
    ("%[src", "missing ']'"),
])
def test_format_errors(text: str, message: str) -> None:
    with pytest.raises(LogFormatError) as e:
        compile_traffic_format(text)
    assert message in str(e.value)


def test_generated_source_never_contains_user_text() -> None:
    f = compile_traffic_format("evil') or __import__('os') %ST")
    assert "__import__" not in f.source
    assert f.render(FakeTxn()) == b"evil') or __import__('os') 200"


def test_every_variable_renders() -> None:
    for name in logfmt.VARIABLES:
        for flags in ("", "{+Q}", "{+X}", "{+E,+Q}", "{-M}"):
            out = compile_traffic_format(f"%{flags}{name}|").render(FakeTxn())
            assert out.endswith(b"|"), name


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("%{}[]()+-QXEMo ,|\"'\\abBcCdfhHilmpqrRsStTUwz019é\t")),
               max_size=40))
def test_any_format_compiles_or_fails_cleanly(text: str) -> None:
    try:
        f = compile_traffic_format(text)
    except LogFormatError:
        return
    out = f.render(FakeTxn())
    assert isinstance(out, bytes) and b"\n" not in out


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60))
def test_request_line_bytes_never_break_the_line(raw: bytes) -> None:
    out = render(HTTPLOG_FORMAT, request_line=raw)
    quoted = out.split(b' "', 1)[1]
    assert quoted.endswith(b'"') and b'"' not in quoted[:-1]
    assert all(32 <= c < 127 for c in quoted)
