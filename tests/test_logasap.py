"""`option logasap`, and formats that wait for nothing of the end: when a traffic line
is written, and what it says.

Seen on HAProxy 2.6.12 (127.0.0.1, these configs, the same expectations for both):
- HTTP: the line leaves once the response head has been through the response rules,
  with `%B` the size of what HAProxy holds by then in its internal (HTX) form: 20 + 8
  + 3 + the reason for the status line, each header's name and value (trimmed; the
  Connection header without close/keep-alive), 1 for the end of the head, then the
  body bytes that came with the head (a chunked body's trailers and 1 for their end
  when the whole of it came). `%U` is 0. `%B %Ta %Tt %Tu` get a '+', in this line and
  in those written at the end (a 403, a 503) alike. A 101 is logged as the tunnel
  starts, and never again.
- TCP: the line leaves as the server connection is made, `%B` +0; a session that
  never connects is logged at its end, with the '+'.
- Without `option logasap`, a format with none of the fields that wait for the end
  (`%B %Tt %ts %ac`..., lb.logfmt.WAITS_FOR_END) is logged just as early.
"""

from __future__ import annotations

import os
import re
import socket
import time

import pytest

from lb import logfmt
from lb.http import h1
from tests.lbproc import RawBackend
from tests.support_e2e import HAPROXY, UdpLog, lb_or_haproxy

pytestmark = pytest.mark.timeout(90)

KINDS = ["lb", "haproxy"] if os.path.exists(HAPROXY) else ["lb"]

RESPONSES = {
    "/cl": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
    "/ka": (b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
            b"Content-Length: 3\r\n\r\nabc"),
    "/close": b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc",
    "/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "/trailers": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n"
                  b"10\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\n\r\n"),
    "/h10": b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc",
    "/blanks": b"HTTP/1.1 200 OK\r\nContent-Length:    3   \r\nX-Empty:\r\nX-Sp: a  b \r\n\r\nabc",
    "/noreason": b"HTTP/1.1 204 \r\n\r\n",
    "/eof": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabcdef",
    "/tokens": b"HTTP/1.1 200 OK\r\nCONTENT-length: 3\r\nConnection: Keep-Alive, foo\r\n\r\nabc",
}
# %B of the early line, as HAProxy 2.6.12 logged each of them
EARLY_BYTES = {"/cl": 52, "/ka": 71, "/close": 52, "/chunked": 62, "/trailers": 82,
               "/h10": 52, "/blanks": 67, "/noreason": 32, "/eof": 40, "/tokens": 65}
SLOW_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\nX-A: b\r\n\r\n" + b"x" * 100
ACCEPT = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # of the RFC 6455 sample key
UPGRADE = (b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def _server(c: socket.socket, be: RawBackend) -> None:
    while True:
        head = be.recv_head(c)
        if not head.endswith(b"\r\n\r\n"):
            return
        path = head.split()[1].decode()
        if path == "/ws":
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + ACCEPT + b"\r\n\r\n")
            c.sendall(c.recv(100))  # echo what the client sends through the tunnel
            c.recv(100)
            c.close()
            return
        if path == "/slow":
            c.sendall(SLOW_HEAD)
            time.sleep(1.0)
            c.sendall(b"y" * 1900)
            continue
        c.sendall(RESPONSES[path])
        if path in ("/close", "/eof"):
            c.close()
            return


HTTP_CFG = """
defaults
    mode http
    option dontlognull
    timeout connect 5s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:@@fe@@
    log 127.0.0.1:{port} local0
    log-format "{fmt}"
    {options}
    http-request deny if {{ path /deny }}
    use_backend nobody if {{ path /none }}
    default_backend be
backend be
    {be_options}
    server s1 127.0.0.1:@@s1@@ cookie s1
backend nobody
"""
FMT = "%ST %B %U %tsc %ac/%fc/%bc/%sc %Ta/%Tt/%Tu %{+Q}r"
LINE = re.compile(rb'(-?\d+) (\+?\d+) (\d+) (\S{4}) (\d+/\d+/\d+/\d+) (\+?\d+)/(\+?\d+)/(\+?\d+)'
                  rb' "(\S+) (\S+)')


class Lines:
    """The traffic lines a syslog receiver got, parsed, with their arrival time."""

    def __init__(self, log: UdpLog) -> None:
        self.log = log

    def take(self, wait: float) -> list[dict]:
        out = []
        deadline = time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            self.log.sock.settimeout(left)
            try:
                data = self.log.sock.recv(65536)
            except TimeoutError:
                return out
            m = LINE.search(data)
            assert m is not None, data
            st, b, u, tsc, conns, ta, tt, tu, _method, path = m.groups()
            out.append({"ST": int(st), "B": b.decode(), "U": int(u), "tsc": tsc.decode(),
                        "conns": conns.decode(), "times": (ta, tt, tu),
                        "path": path.decode(), "at": time.monotonic()})


def _http_run(kind: str, options: str, body: object, be_options: str = "",
              fmt: str = FMT) -> None:
    log = UdpLog()
    try:
        with RawBackend(_server) as srv, lb_or_haproxy(
                kind, HTTP_CFG.format(port=log.port, fmt=fmt, options=options,
                                      be_options=be_options),
                {"s1": srv.port}) as px:
            body(px.ports["fe"], Lines(log))  # type: ignore[operator]
    finally:
        log.close()


def _exchange(port: int, request: bytes, wait: float = 0.3) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(request)
        c.settimeout(wait)
        got = b""
        try:
            while chunk := c.recv(65536):
                got += chunk
        except TimeoutError:
            pass
    return got


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


@pytest.mark.parametrize("kind", KINDS)
def test_early_line_counts_what_came_with_the_head(kind: str) -> None:
    def body(port: int, lines: Lines) -> None:
        for path, size in EARLY_BYTES.items():
            _exchange(port, _get(path))
            (line,) = lines.take(0.3)
            # %sc: HAProxy has let go of the server already when its close came in the
            # same read as the response (/close, /eof); lb reads the close after it
            conns = line["conns"] if path in ("/close", "/eof") else "1/1/1/1"
            assert (line["path"], line["ST"], line["B"], line["U"], line["tsc"],
                    line["conns"]) == (path, 204 if path == "/noreason" else 200,
                                       f"+{size}", 0, "----", conns)
            assert conns in ("1/1/1/1", "1/1/1/0")
            assert all(t.startswith(b"+") for t in line["times"]), line
    _http_run(kind, "option logasap", body)


@pytest.mark.parametrize("kind", KINDS)
def test_early_line_after_response_rules_and_cookie(kind: str) -> None:
    """Headers the response rules and the cookie insertion add are in it (set-cookie
    SRV=s1; path=/ is 24, x-add abc 8; no Cache-Control: private, the response being
    uncacheable without a validator)."""
    def body(port: int, lines: Lines) -> None:
        for path in ("/cl", "/chunked"):
            _exchange(port, _get(path))
            (line,) = lines.take(0.3)
            assert (line["B"], line["tsc"]) == (f"+{EARLY_BYTES[path] + 32}", "--NI")
    _http_run(kind, "option logasap\n    http-response set-header X-Add abc", body,
              "cookie SRV insert indirect nocache")


@pytest.mark.parametrize("kind", KINDS)
def test_line_leaves_before_the_body_ends_and_only_once(kind: str) -> None:
    def body(port: int, lines: Lines) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            t0 = time.monotonic()
            c.sendall(_get("/slow") + _get("/cl"))  # the second waits for the first
            (line,) = lines.take(0.6)
            assert line["at"] - t0 < 0.6  # the body's last 1,900 bytes come after 1 s
            assert (line["path"], line["B"], line["conns"]) == ("/slow", "+156", "1/1/1/1")
            got = b""
            while got.count(b"HTTP/1.1 200") < 2 or not got.endswith(b"abc"):
                got += c.recv(65536)
            assert b"x" * 100 + b"y" * 1900 in got
        (line,) = lines.take(0.5)  # the keep-alive request's, none more for /slow
        assert (line["path"], line["B"]) == ("/cl", "+52")
    _http_run(kind, "option logasap", body)


@pytest.mark.parametrize("kind", KINDS)
def test_lines_written_at_the_end_carry_the_plus(kind: str) -> None:
    def body(port: int, lines: Lines) -> None:
        assert _exchange(port, _get("/deny")).startswith(b"HTTP/1.1 403")
        assert _exchange(port, _get("/none")).startswith(b"HTTP/1.1 503")
        got = [(x["path"], x["ST"], x["B"], x["tsc"], x["conns"]) for x in lines.take(0.5)]
        assert got == [("/deny", 403, "+192", "PR--", "1/1/0/0"),
                       ("/none", 503, "+217", "SC--", "1/1/0/0")]
    _http_run(kind, "option logasap", body)


@pytest.mark.parametrize("kind", KINDS)
def test_websocket_logged_as_the_tunnel_starts(kind: str) -> None:
    def body(port: int, lines: Lines) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(UPGRADE)
            got = b""
            while b"\r\n\r\n" not in got:
                got += c.recv(65536)
            assert got.startswith(b"HTTP/1.1 101")
            (line,) = lines.take(0.4)  # the tunnel is still open
            assert (line["path"], line["ST"], line["B"], line["conns"]) == (
                "/ws", 101, "+132", "1/1/1/1")
            c.sendall(b"\x81\x82abcd" + bytes(x ^ y for x, y in zip(b"hi", b"ab", strict=True)))
            echoed = b""
            while len(echoed) < 8:
                echoed += c.recv(100)
        assert lines.take(0.5) == []  # nothing more when it closes
    _http_run(kind, "option logasap", body)


@pytest.mark.parametrize("kind", KINDS)
def test_format_waiting_for_nothing_is_logged_early_without_the_option(kind: str) -> None:
    fmt = "%ST %tsc %{+Q}r"
    shape = re.compile(rb'(\d+) (\S{4}) "GET (\S+)')

    def body(port: int, lines: Lines) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            t0 = time.monotonic()
            c.sendall(_get("/slow"))
            lines.log.sock.settimeout(0.6)
            data = lines.log.sock.recv(65536)
            assert time.monotonic() - t0 < 0.6
            m = shape.search(data)
            assert m is not None and m.groups() == (b"200", b"----", b"/slow"), data
            got = b""
            while len(got) < len(SLOW_HEAD) + 1900:
                got += c.recv(65536)
    _http_run(kind, "", body, fmt=fmt)


def test_without_the_option_lines_wait_for_the_end() -> None:
    def body(port: int, lines: Lines) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(_get("/slow"))
            assert lines.take(0.6) == []
            got = b""
            while len(got) < len(SLOW_HEAD) + 1900:
                got += c.recv(65536)
        (line,) = lines.take(0.5)
        assert line["B"] == str(len(SLOW_HEAD) + 1900) and line["conns"] == "1/1/0/0"
        assert not any(t.startswith(b"+") for t in line["times"])
    _http_run("lb", "", body)


TCP_CFG = """
defaults
    mode tcp
    timeout connect 5s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:@@fe@@
    log 127.0.0.1:{port} local0
    {options}
    default_backend be
backend be
    server s1 127.0.0.1:@@s1@@
frontend fe_dead
    bind 127.0.0.1:@@fe_dead@@
    log 127.0.0.1:{port} local0
    {options}
    default_backend dead
backend dead
    timeout connect 200ms
    server s1 127.0.0.1:@@dead@@
"""


def _banner(c: socket.socket, be: RawBackend) -> None:
    c.sendall(b"banner\r\n")
    data = c.recv(100)
    time.sleep(0.8)
    c.sendall(data)
    c.close()


def _tcp_lines(kind: str, options: str) -> list[tuple[float, bytes]]:
    """(seconds after the connect, line) for a session with a server that answers
    after 0.8 s, then one whose server refuses (retried three times)."""
    log = UdpLog()
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))  # bound, never listening: refused
    out: list[tuple[float, bytes]] = []
    try:
        with RawBackend(_banner) as srv, lb_or_haproxy(
                kind, TCP_CFG.format(port=log.port, options=options),
                {"s1": srv.port, "dead": dead.getsockname()[1]}) as px:
            def read_log(wait: float) -> None:
                log.sock.settimeout(wait)
                try:
                    while True:
                        data = log.sock.recv(65536)
                        out.append((time.monotonic() - t0,
                                    data.split(b"]: ", 1)[-1].rstrip(b"\n")))
                except TimeoutError:
                    pass

            for fe in ("fe", "fe_dead"):
                t0 = time.monotonic()
                with socket.create_connection(("127.0.0.1", px.ports[fe]), timeout=5) as c:
                    c.sendall(b"hello")
                    read_log(0.5)  # (the server answers after 0.8 s)
                    c.settimeout(5)
                    try:
                        while c.recv(100):
                            pass
                    except OSError:
                        pass
                read_log(1.0)
    finally:
        log.close()
        dead.close()
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_tcp_logasap_logs_at_the_connection(kind: str) -> None:
    (at, line), (_, dead) = _tcp_lines(kind, "option tcplog\n    option logasap")
    assert re.search(rb" fe be/s1 \d+/\d+/\+\d+ \+0 -- 1/1/1/1/0 0/0$", line), line
    assert at < 0.8  # before the server's answer, and the close after it
    assert re.search(rb" fe_dead dead/s1 \d+/-1/\+\d+ \+0 SC 1/1/0/0/3 0/0$", dead), dead


@pytest.mark.parametrize("kind", KINDS)
def test_tcp_format_waiting_for_nothing(kind: str) -> None:
    (at, line), (_, dead) = _tcp_lines(kind, 'log-format "%ci %b/%s %ST"')
    assert (line, dead) == (b"127.0.0.1 be/s1 0", b"127.0.0.1 dead/s1 0")
    assert at < 0.8
    (at, line), _ = _tcp_lines(kind, 'log-format "%ci %b/%s %ts"')  # %ts waits
    assert line == b"127.0.0.1 be/s1 --" and at > 0.8


# ---------------------------------------------------------------- the pieces


def test_format_flags() -> None:
    def early(text: str, asap: bool = False, mode: str = "http") -> bool:
        return logfmt.compile_traffic_format(text, mode, logasap=asap).early
    assert early(logfmt.HTTPLOG_FORMAT, True)
    assert not early(logfmt.HTTPLOG_FORMAT)
    assert not early(logfmt.TCPLOG_FORMAT, mode="tcp")
    assert early("%ci %b/%s %ST %tsc %[src] %{+Q}r")
    for waits in sorted(logfmt.WAITS_FOR_END):
        assert not early(f"%ci %{waits}"), waits


def test_plus_on_bytes_and_total_times_only() -> None:
    class T:
        bytes_out, t_active, t_total, t_idle, t_connect, status = 52, 3, 5, 1, 0, 200
    fmt = logfmt.compile_traffic_format("%B %Ta %Tt %Tu %Tc %ST", logasap=True)
    assert fmt.render(T()) == b"+52 +3 +5 +4 0 200"
    plain = logfmt.compile_traffic_format("%B %Ta %Tt %Tu %Tc %ST")
    assert plain.render(T()) == b"52 3 5 4 0 200"


def test_htx_head_size() -> None:
    assert h1.htx_head_size(b"OK", [(b"content-length", b"3")]) == 49
    assert h1.htx_head_size(b"", []) == 32
    assert h1.htx_head_size(b"OK", [(b"connection", b"close")]) == 34
    assert h1.htx_head_size(b"OK", [(b"connection", b"Keep-Alive, foo, Upgrade")]) == (
        34 + 10 + len(b"foo, Upgrade"))
    assert h1.htx_head_size(b"OK", [(b"x-sp", b" a  b \t")]) == 34 + 4 + 4
