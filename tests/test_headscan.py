"""lb.http.headscan against httptools: every head the scan takes, httptools takes with
the same result; every head it declines is left to httptools.

Both implementations run: the module as imported (compiled when the accelerated
build is present) and its Python source loaded on its own (pure Python).
"""

from __future__ import annotations

import random
from typing import Any

import httptools
import pytest

from lb.http import headscan
from tests.pure_support import pure_module

MAXHDR = 101
BUFSIZE = 16384


PURE: Any = pure_module("lb.http.headscan")
SCANS = [pytest.param(headscan.scan_request, id="imported"),
         pytest.param(PURE.scan_request, id="pure")]


class _Collect:
    """What ClientConn takes from the httptools callbacks of one request."""

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.hsize = 0
        self.begun = 0
        self.completed = 0
        self.body = b""
        self.parser: Any = None
        self.keep_alive = False  # as the parser says when the message ends
        self.upgrade = False
        self.stop = -1  # where the parser stopped on an upgrade

    def on_message_begin(self) -> None:
        self.begun += 1

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value.rstrip(b" \t")))
        self.hsize += len(name) + len(value) + 4

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.completed += 1
        self.keep_alive = self.parser.should_keep_alive()
        self.upgrade = self.parser.should_upgrade()


def _feed(c: _Collect, p: Any, data: bytes) -> bool:
    """Feed ``data`` to ``p``; False when httptools refuses it."""
    c.parser = p
    try:
        p.feed_data(data)
    except httptools.HttpParserUpgrade as e:
        c.stop = e.args[0]
    except httptools.HttpParserError:
        return False
    return True


def _httptools(data: bytes) -> tuple[Any, Any] | None:
    c = _Collect()
    p = httptools.HttpRequestParser(c)
    return (c, p) if _feed(c, p, data) else None


def _check(data: bytes) -> Any:
    """Both scans agree; when they take the head, httptools gives lb the same."""
    got = headscan.scan_request(data, MAXHDR, BUFSIZE)
    assert PURE.scan_request(data, MAXHDR, BUFSIZE) == got, data
    if got is None:
        return None
    ref = _httptools(data)
    assert ref is not None, f"scan took a head httptools refuses: {data!r}"
    c, p = ref
    method, url, headers, hsize, keep_alive, upgrade = got
    assert (c.begun, c.completed, c.body) == (1, 1, b""), data
    assert p.get_method() == method and c.url == url, data
    assert c.headers == headers and c.hsize == hsize, data
    assert p.get_http_version() == "1.1" and c.keep_alive is keep_alive, data
    assert c.upgrade is upgrade and c.stop == (len(data) if upgrade else -1), data
    return got


PLAIN = [
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    b"GET /index.html?a=1&b=%20 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/8.5\r\n"
    b"Accept: */*\r\n\r\n",
    b"HEAD /x HTTP/1.1\r\nHost: h\r\nX-Spaces:   a  b \t \r\nX-Empty:\r\nX-Blank: \t \r\n\r\n",
    b"POST /form HTTP/1.1\r\nHost: h\r\nCookie: SRV=s1; other=2\r\n\r\n",
    b"DELETE /r/1 HTTP/1.1\r\nHoSt: h\r\nX-Tchar!#$%&'*+-.^_`|~09: v\r\n\r\n",
    b"OPTIONS /a\"{}|\\^`<>[] HTTP/1.1\r\nHost: h\r\n\r\n",
    b"PUT /p HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n",
    b"PATCH /p HTTP/1.1\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",  # wrk -H, curl
    b"GET / HTTP/1.1\r\nconnection: Keep-Alive\r\nHost: h\r\n\r\n",
    b"GET / HTTP/1.1\r\nConnection:   CLOSE\r\n\r\n",
    b"GET / HTTP/1.1\r\nConnection: close \r\n\r\n",
    # WebSocket handshakes (upgrades: llhttp stops after them)
    b"GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nConnection: keep-alive ,  Upgrade \r\nUpgrade: websocket\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nConnection: close, upgrade\r\nUpgrade: websocket\r\n\r\n",
    # one without the other: no upgrade
    b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
    b"GET / HTTP/1.1\r\nConnection: upgrade\r\n\r\n",
]


@pytest.mark.parametrize("data", PLAIN)
def test_plain_heads_are_taken_as_httptools_parses_them(data: bytes) -> None:
    assert _check(data) is not None


DECLINED = [
    b"GET / HTTP/1.0\r\nHost: h\r\n\r\n",  # another version
    b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",  # llhttp frames these itself
    b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.1\r\nConnection: close, x\r\n\r\n",  # more than one token
    b"GET / HTTP/1.1\r\nConnection: close\r\nConnection: close\r\n\r\n",
    b"GET / HTTP/1.1\r\nConnection: TE\r\nTE: trailers\r\n\r\n",
    b"GET / HTTP/1.1\r\nConnection: upgrade,\r\nUpgrade: x\r\n\r\n",  # empty token
    b"GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade:\r\n\r\n",  # empty Upgrade
    b"GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: a\r\nUpgrade: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\nframe",  # tail
    b"GET / HTTP/1.1\r\nproxy-connection: keep-alive\r\n\r\n",
    b"GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n",  # absolute form
    b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
    b"FOO / HTTP/1.1\r\nHost: h\r\n\r\n",  # a method outside the list
    b"get / HTTP/1.1\r\nHost: h\r\n\r\n",
    b"\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",  # empty line in front
    b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\n\r\n",  # pipelined
    b"GET / HTTP/1.1\r\nHost: h\r\n\r\nx",  # bytes behind the head
    b"GET / HTTP/1.1\r\nHost: h\r\n",  # head not complete
    b"GET / HTTP/1.1\r\nHost: h\r\n X-Folded: v\r\n\r\n",  # obs-fold
    b"GET / HTTP/1.1\nHost: h\r\n\r\n",  # bare LF
    b"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n",  # bare CR
    b"GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n",  # lb refuses '#': httptools path
    b"GET / HTTP/1.1\r\nX-Utf8: caf\xc3\xa9\r\n\r\n",  # obs-text
    b"GET / HTTP/1.1\r\nX Bad: v\r\n\r\n",  # not a token
    b"GET / HTTP/1.1\r\nX-Bad : v\r\n\r\n",
    b"GET / HTTP/1.1\r\n: v\r\n\r\n",
    b"GET / HTTP/1.1\r\nX-Nul: a\x00b\r\n\r\n",
    b"GET  / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1 \r\n\r\n",
    b"GET /\r\n\r\n",
]


@pytest.mark.parametrize("data", DECLINED)
def test_other_heads_are_left_to_httptools(data: bytes) -> None:
    assert _check(data) is None


@pytest.mark.parametrize("scan", SCANS)
def test_limits_decline_so_that_httptools_refuses(scan: Any) -> None:
    lines = b"".join(b"X-%d: v\r\n" % i for i in range(MAXHDR - 1))
    assert scan(b"GET / HTTP/1.1\r\n" + lines + b"\r\n", MAXHDR, BUFSIZE) is not None
    lines += b"X-last: v\r\n"  # maxhdr lines: refused by ClientConn.on_header
    assert scan(b"GET / HTTP/1.1\r\n" + lines + b"\r\n", MAXHDR, BUFSIZE) is None
    big = b"GET / HTTP/1.1\r\nX: " + b"a" * (BUFSIZE - 4) + b"\r\n\r\n"
    assert scan(big, MAXHDR, BUFSIZE) is None
    assert scan(b"GET /" + b"a" * BUFSIZE + b" HTTP/1.1\r\n\r\n", MAXHDR, BUFSIZE) is None


@pytest.mark.parametrize("where", ["method", "url", "name", "value", "ows", "version"])
def test_every_byte_in_every_place(where: str) -> None:
    """No single byte anywhere makes the scan take what httptools refuses, or
    take it differently; the compiled and pure scans decline the same ones."""
    taken = 0
    for b in range(256):
        c = bytes([b])
        head = {
            "method": b"G" + c + b"T / HTTP/1.1\r\nHost: h\r\n\r\n",
            "url": b"GET /a" + c + b"b HTTP/1.1\r\nHost: h\r\n\r\n",
            "name": b"GET / HTTP/1.1\r\nX" + c + b"y: v\r\n\r\n",
            "value": b"GET / HTTP/1.1\r\nXy: a" + c + b"b\r\n\r\n",
            "ows": b"GET / HTTP/1.1\r\nXy:" + c + b"v" + c + b"\r\n\r\n",
            "version": b"GET / HTTP/1" + c + b"1\r\nHost: h\r\n\r\n",
        }[where]
        if _check(head) is not None:
            taken += 1
    # what the scan takes: (E) GET; 93 URL bytes; the 77 token bytes and ':' (then
    # "X:y: v" is header X); 96 value and 96 OWS-position bytes (SP, HTAB and
    # visible ASCII); '.' only in the version
    assert taken == {"method": 1, "url": 93, "name": 78, "value": 96, "ows": 96,
                     "version": 1}[where]


def test_random_heads_agree_with_httptools() -> None:
    """Heads built from pieces that are often just inside or outside the plain
    shape: for each, the scan either declines or matches httptools exactly."""
    rnd = random.Random(9)
    methods = [b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH",
               b"PRI", b"GEt", b"M-SEARCH"]
    urls = [b"/", b"/a/b?c=d", b"/%41", b"*", b"http://x/", b"/a b", b"/\x7f", b"/a#b"]
    names = [b"Host", b"host", b"X-A", b"Cookie", b"Content-Length", b"Connection",
             b"Connection",
             b"Upgrade", b"Transfer-Encoding", b"X A", b"X(", b"", b"Expect"]
    values = [b"v", b"", b" v", b"v ", b"\tv\t", b"a, b", b"100-continue", b"\x80",
              b"1", b"close", b"websocket", b"a\x01", b"keep-alive", b"Close", b"Upgrade",
              b"keep-alive, upgrade", b"upgrade ,close", b"upgrade,,close", b"h2c"]
    ends = [b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r"]
    taken = 0
    for _ in range(6000):
        head = rnd.choice(methods) + b" " + rnd.choice(urls) + b" HTTP/1."
        head += rnd.choice([b"1", b"1", b"1", b"0"]) + rnd.choice(ends)
        for _ in range(rnd.randrange(0, 6)):
            head += rnd.choice(names) + rnd.choice([b":", b": ", b" :"]) + \
                rnd.choice(values) + rnd.choice(ends)
        head += rnd.choice(ends + [b"\r\n"] * 5)
        if _check(head) is not None:
            taken += 1
    assert 100 < taken < 5900  # both kinds were tried


# ---------------------------------------------------------------- responses

class _CollectResponse(_Collect):
    """What ServerConn takes from the httptools callbacks of one response."""

    def __init__(self) -> None:
        super().__init__()
        self.reason = b""
        self.cost = 0

    def on_status(self, status: bytes) -> None:
        self.reason += status
        self.cost += len(status)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))
        self.cost += len(name) + len(value) + 8


def _check_response(data: bytes) -> Any:
    got = headscan.scan_response(data)
    assert PURE.scan_response(data) == got, data
    if got is None:
        return None
    c = _CollectResponse()
    p = httptools.HttpResponseParser(c)
    assert _feed(c, p, data), f"scan took a response httptools refuses: {data!r}"
    status, reason, headers, cost, body_at, keep_alive = got
    assert (c.begun, c.completed) == (1, 1), data
    assert p.get_status_code() == status and c.reason == reason, data
    assert c.headers == headers and c.cost == cost, data
    assert p.get_http_version() == "1.1" and c.keep_alive is keep_alive, data
    if status == 101:  # the rest is the server's first tunnel bytes
        assert c.upgrade and c.stop == body_at and c.body == b"", data
    else:
        assert not c.upgrade and c.stop == -1 and c.body == data[body_at:], data
    return got


PLAIN_RESPONSES = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 404 Not  Found \r\nX-A:  v \t\r\nContent-Length: 02\r\n\r\nab",
    b"HTTP/1.1 503 \r\ncontent-length: 1\r\nSet-Cookie: SRV=s1; path=/\r\n\r\n\r",
    b"HTTP/1.1 299 \tweird\treason\r\nContent-Length: 4\r\n\r\n\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",  # nginx
    b"HTTP/1.1 200 OK\r\nconnection:Keep-ALIVE\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nConnection: keep-alive \r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
    b"HTTP/1.1 101 \r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n\x81\x02hi",  # + frame
]


@pytest.mark.parametrize("data", PLAIN_RESPONSES)
def test_plain_responses_are_taken_as_httptools_parses_them(data: bytes) -> None:
    assert _check_response(data) is not None


DECLINED_RESPONSES = [
    b"HTTP/1.1 200 OK\r\n\r\nuntil close",  # no Content-Length
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhell",  # body not all there
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello!",  # more than it
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1 \r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1234567890123456789\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nConnection: close\r\nContent-Length: 0"
    b"\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nConnection: keep-alive, x\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r",
    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\x00",
    b"HTTP/1.1 200 OK\r\nProxy-Connection: x\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\n\r\n",  # llhttp refuses a 101 without
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",  # both
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n\r\n",
    b"HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: upgrade\r\nContent-Length: 0"
    b"\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nUpgrade: websocket\r\nConnection: upgrade\r\nContent-Length: 0"
    b"\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 600 X\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",  # no space after the code
    b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 O\x80K\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX: caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n X: folded\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n",  # pipelined
]


@pytest.mark.parametrize("data", DECLINED_RESPONSES)
def test_other_responses_are_left_to_httptools(data: bytes) -> None:
    assert _check_response(data) is None


@pytest.mark.parametrize("where", ["status", "reason", "name", "value", "length"])
def test_every_byte_in_every_place_of_a_response(where: str) -> None:
    taken = 0
    for b in range(256):
        c = bytes([b])
        head = {
            "status": b"HTTP/1.1 2" + c + b"0 OK\r\nContent-Length: 1\r\n\r\nx",
            "reason": b"HTTP/1.1 200 O" + c + b"K\r\nContent-Length: 1\r\n\r\nx",
            "name": b"HTTP/1.1 200 OK\r\nX" + c + b"y: v\r\nContent-Length: 1\r\n\r\nx",
            "value": b"HTTP/1.1 200 OK\r\nXy: a" + c + b"b\r\nContent-Length: 1\r\n\r\nx",
            "length": b"HTTP/1.1 200 OK\r\nContent-Length: " + c + b"\r\n\r\n" + b"x" * 3,
        }[where]
        if _check_response(head) is not None:
            taken += 1
    # ten digits; visible ASCII, SP and HTAB; token bytes and ':'; only '3'
    assert taken == {"status": 10, "reason": 96, "name": 78, "value": 96,
                     "length": 1}[where]


def test_random_responses_agree_with_httptools() -> None:
    rnd = random.Random(10)
    lines = [b"HTTP/1.1 200 OK", b"HTTP/1.1 404 ", b"HTTP/1.1 204 No", b"HTTP/1.1 101 S",
             b"HTTP/1.1 101 S",
             b"HTTP/1.0 200 OK", b"HTTP/1.1 599 x"]
    names = [b"Content-Length", b"content-length", b"Content-Type", b"Connection",
             b"Transfer-Encoding", b"X A", b"Set-Cookie", b"Upgrade", b"Keep-Alive"]
    values = [b"0", b"3", b"10", b" 3", b"3 ", b"close", b"chunked", b"a=b; c", b"\x80",
              b"keep-alive", b"Keep-Alive", b"Upgrade", b"websocket", b"upgrade, close"]
    ends = [b"\r\n", b"\r\n", b"\r\n", b"\n"]
    bodies = [b"", b"abc", b"abcdefghij", b"ab", b"0\r\n\r\n"]
    taken = 0
    for _ in range(6000):
        body = rnd.choice(bodies)
        fields = [rnd.choice(names) + b":" + rnd.choice(values) + rnd.choice(ends)
                  for _ in range(rnd.randrange(0, 4))]
        if rnd.random() < 0.2:  # the headers of a 101
            fields += [b"Upgrade: websocket\r\n", b"Connection: Upgrade\r\n"]
        elif rnd.random() < 0.7:  # most with the right length
            fields.insert(rnd.randrange(0, len(fields) + 1),
                          b"Content-Length: %d\r\n" % len(body))
        data = rnd.choice(lines) + rnd.choice(ends) + b"".join(fields)
        data += rnd.choice(ends) + body
        if _check_response(data) is not None:
            taken += 1
    assert 100 < taken < 5900
