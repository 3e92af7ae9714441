"""Sample fetches and converters rendered into a header, by lb and by HAProxy 2.6.12.

Session 28 compared 85 expressions against HAProxy this way. Every expression that
both proxies accept gave the same bytes. This file keeps the ones added then
(``b64dec``, ``sha1``, ``ipmask``, ``req.hdr_names``), and the Connection header as
the fetches see it: HAProxy's H1 parser drops the ``close`` and ``keep-alive``
tokens at parse time (the whole header when nothing else is left) and joins what
remains with ``,``. lb until session 28 showed rules the header as the client sent
it, so ``hdr(connection) -i close`` matched in lb and never in HAProxy.
"""

from __future__ import annotations

import os
import socket

import pytest

from tests.lbproc import RawBackend
from tests.support_e2e import (
    HAPROXY,
    answer_ok,
    header_sent_through,
    lb_or_haproxy,
    one_backend_config,
)

pytestmark = pytest.mark.timeout(60)

KINDS = ["lb", "haproxy"] if os.path.exists(HAPROXY) else ["lb"]

HEAD = (b"GET /A//B?q=1 HTTP/1.1\r\nHost: Ex.Com:8080\r\nX-IP: 10.20.30.40\r\n"
        b"X-IP6: 2001:db8:1:2::5\r\nX-A: a, c\r\n")
CLOSE = b"Connection: close\r\n"
UPGRADE = b"Connection: keep-alive, Upgrade, X-Foo\r\nUpgrade: foo\r\n"

# (expression, Connection lines of the request, value the server receives; None:
# no sample, the header is sent empty)
CASES = [
    ("req.hdr_names", CLOSE, b"host,x-ip,x-ip6,x-a"),
    ("req.hdr_names(|)", UPGRADE, b"host|x-ip|x-ip6|x-a|connection|upgrade"),
    ("str(aGVsbG8=),b64dec", CLOSE, b"hello"),
    ("str(aGVsbG8),b64dec", CLOSE, None),
    ("str(!!!!),b64dec", CLOSE, None),
    ("str(x),sha1,hex", CLOSE, b"11F6AD8EC52A2984ABAAFD7C3B516503785C2072"),
    ("str(),sha1,base64", CLOSE, b"2jmj7l5rSw0yVb/vlWAYkK/YBwk="),
    ("str(x),sha1,length", CLOSE, b"20"),
    ("src,ipmask(8)", CLOSE, b"127.0.0.0"),
    ("src,ipmask(255.255.0.0)", CLOSE, b"127.0.0.0"),
    ("src,ipmask(0)", CLOSE, b"0.0.0.0"),
    ("req.hdr(x-ip),ipmask(16)", CLOSE, b"10.20.0.0"),
    ("req.hdr(x-ip6),ipmask(16)", CLOSE, None),
    ("req.hdr(x-ip6),ipmask(16,64)", CLOSE, b"2001:db8:1:2::"),
    ("req.hdr(x-ip6),ipmask(16,ffff:ffff::)", CLOSE, b"2001:db8::"),
    ("req.hdr(x-a),ipmask(16)", CLOSE, None),
    ("req.hdr(connection)", CLOSE, None),
    ("req.hdr_cnt(connection)", CLOSE, b"0"),
    ("req.fhdr(connection)", UPGRADE, b"Upgrade,X-Foo"),
    ("req.hdr_cnt(connection)", UPGRADE, b"2"),
    ("req.hdr(connection,1)", UPGRADE, b"Upgrade"),
    # session 29: sdbm of Host + path, avalanched; then with the packed client address
    ("base32", CLOSE, b"716484828"),
    ("base32+src,hex", CLOSE, b"2AB4B0DC7F000001"),
    ("url_ip", CLOSE, None),  # origin-form target
    ("url_port", CLOSE, None),
]

# url_ip / url_port of absolute-form targets (the Host value must match the authority)
ABSOLUTE = [
    (b"http://1.2.3.4:81/x?y", b"1.2.3.4", b"81"),
    (b"http://1.2.3.4/x", b"1.2.3.4", b"80"),
    (b"https://1.2.3.4/x", b"1.2.3.4", b"443"),
    (b"http://ex.com:82/x", b"", b""),  # a name, not an address: no sample
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("target", "ip", "port"), ABSOLUTE, ids=[t.decode() for t, _, _ in ABSOLUTE])
def test_url_ip_and_port_match_haproxy(kind: str, target: bytes, ip: bytes, port: bytes) -> None:
    text = one_backend_config('    http-request set-header X-V "%[url_ip]|%[url_port]"')
    host = target.split(b"/")[2]
    request = b"GET " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\n" + CLOSE + b"\r\n"
    assert header_sent_through(kind, text, request, b"x-v") == [ip + b"|" + port]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("expr", "conn", "want"), CASES,
                         ids=[f"{e}-{'close' if c == CLOSE else 'upgrade'}" for e, c, _ in CASES])
def test_sample_value_matches_haproxy(kind: str, expr: str, conn: bytes,
                                      want: bytes | None) -> None:
    text = one_backend_config(f'    http-request set-header X-V "%[{expr}]"')
    assert header_sent_through(kind, text, HEAD + conn + b"\r\n", b"x-v") == [want or b""]


def test_connection_close_is_not_seen_by_an_acl() -> None:
    """`hdr(connection) -i close` never matches in HAProxy 2.6.12 (the token is gone
    by the time rules run); the client still gets its connection closed."""
    text = one_backend_config("    http-request deny if { hdr(connection) -i close }")
    with RawBackend(answer_ok) as srv, lb_or_haproxy("lb", text, {"s1": srv.port}) as px:
        with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
            c.sendall(HEAD + CLOSE + b"\r\n")
            got = b""
            while chunk := c.recv(65536):
                got += chunk
    assert got.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\nconnection: close\r\n" in got


@pytest.mark.parametrize(("expr", "message"), [
    ("src,ipmask(abc)", "invalid arg 1 in converter 'ipmask' : failed to parse 'abc' as "
                        "type 'IPv4 mask' at position 1"),
    ("src,ipmask(33)", "invalid arg 1 in converter 'ipmask' : failed to parse '33' as "
                       "type 'IPv4 mask' at position 1"),
    ("src,ipmask(24,xyz)", "invalid arg 2 in converter 'ipmask' : failed to parse 'xyz' "
                           "as type 'IPv6 mask' at position 2"),
    ("src,ipmask()", "invalid arg 1 in converter 'ipmask' : expected type 'IPv4 mask' at "
                     "position 1, but got nothing"),
])
def test_ipmask_masks_are_checked_at_load_time(expr: str, message: str) -> None:
    """The texts HAProxy 2.6.12 prints for the same expressions (`haproxy -c`)."""
    from lb.match.sample import SampleError, parse_expr
    with pytest.raises(SampleError) as err:
        parse_expr(expr)
    assert str(err.value) == message


NAMES_CFG = """
defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
frontend other
    bind 127.0.0.1:@@o@@
    default_backend be
frontend fe
    bind 127.0.0.1:@@fe@@
{fe_lines}
    default_backend be
backend spare
    server x1 127.0.0.1:9
backend be
{be_lines}
    server zz 127.0.0.1:9 disabled
    server s1 127.0.0.1:@@s1@@
"""

# (frontend lines, backend lines, X-V values the server got, X-R values the client
# got) for two requests on one connection; ids count proxies and servers in the
# order they are declared
NAMES = [
    ("http-request set-header X-V %[fe_name]", "", [b"fe", b"fe"], []),
    ("http-request set-header X-V %[fe_id]", "", [b"2", b"2"], []),
    ("http-request set-header X-V %[http_first_req]", "", [b"1", b"0"], []),
    ("http-request set-header X-V %[unique-id]", "", [b"", b""], []),
    ("unique-id-format abc%[fe_name]\n    http-request set-header X-V %[unique-id]", "",
     [b"abcfe", b"abcfe"], []),
    ("", "http-request set-header X-V %[be_name]", [b"be", b"be"], []),
    ("", "http-request set-header X-V %[be_id]", [b"4", b"4"], []),
    ("", "http-response set-header X-R %[srv_name]", [], [b"s1", b"s1"]),
    ("", "http-response set-header X-R %[srv_id]", [], [b"2", b"2"]),
    ("", "http-response set-header X-R %[fe_name]", [], [b"fe", b"fe"]),
    ("", "http-response set-header X-R %[http_first_req]", [], [b"1", b"0"]),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("fe_lines", "be_lines", "up", "down"), NAMES,
                         ids=[(f + b).split("%[")[-1].rstrip("]") + ("-fmt" if "format" in f
                                                                     else "")
                              for f, b, _, _ in NAMES])
def test_proxy_and_server_names_match_haproxy(kind: str, fe_lines: str, be_lines: str,
                                              up: list[bytes], down: list[bytes]) -> None:
    text = NAMES_CFG.format(fe_lines=f"    {fe_lines}" if fe_lines else "",
                            be_lines=f"    {be_lines}" if be_lines else "")
    with RawBackend(answer_ok) as srv, lb_or_haproxy(kind, text, {"s1": srv.port}) as px:
        with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
            # both answers are read before the client closes: HAProxy drops a
            # pipelined request still unread when the client's FIN arrives
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
            got = b""
            while got.count(b"\r\n\r\nok") < 2 and (chunk := c.recv(65536)):
                got += chunk
    sent = [line[5:].strip() for h in srv.received for line in h.split(b"\r\n")
            if line.lower().startswith(b"x-v:")]
    back = [line[5:].strip() for line in got.split(b"\r\n") if line.lower().startswith(b"x-r:")]
    assert (sent, back) == (up, down)
