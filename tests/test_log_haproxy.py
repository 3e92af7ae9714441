"""lb's traffic lines and syslog frames next to a live HAProxy 2.6 on 127.0.0.1.

HAProxy (/usr/sbin/haproxy, Debian 2.6.12) runs with `log 127.0.0.1:<udp> local0` and
frontends with `option httplog`, `option httplog clf`, `option tcplog` and no format
(the `Connect from` line) in front of a loopback backend; the test captures its datagrams,
reads the field values out of each line, gives the same values to lb's renderer and
header builder, and requires the very same bytes (timestamps and ports included, since
they are taken from HAProxy's own line).
"""

from __future__ import annotations

import calendar
import os
import re
import socket
import time
from collections.abc import Iterator

import pytest

from lb import log, logfmt
from tests.backends import HttpBackend
from tests.lbproc import free_port, raw_request
from tests.support_e2e import Haproxy
from tests.test_log_support import FakeTxn, utc_clock

HEADER = re.compile(rb"^<(\d+)>(\w{3} [ \d]\d \d\d:\d\d:\d\d) haproxy\[(\d+)\]: (.*)\n$", re.S)
HTTPLOG = re.compile(
    rb'^127\.0\.0\.1:(\d+) \[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d)\.(\d{3})\] (\S+) (\S+)/(\S+) '
    rb"(-?\d+)/(-?\d+)/(-?\d+)/(-?\d+)/(-?\d+) (-?\d+) (\d+) - - (\S{4}) "
    rb'(\d+)/(\d+)/(\d+)/(\d+)/(\+?\d+) (\d+)/(\d+) "(.*)"$')
CLF = re.compile(
    rb'^127\.0\.0\.1 - - \[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d) \+0000\] "(.*)" (-?\d+) (\d+) "" "" '
    rb'(\d+) (\d{3}) "(\S+)" "(\S+)" "(\S+)" (-?\d+) (-?\d+) (-?\d+) (-?\d+) (-?\d+) (\S{4}) '
    rb'(\d+) (\d+) (\d+) (\d+) (\+?\d+) (\d+) (\d+) "" "" $')
TCPLOG = re.compile(
    rb"^127\.0\.0\.1:(\d+) \[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d)\.(\d{3})\] (\S+) (\S+)/(\S+) "
    rb"(-?\d+)/(-?\d+)/(-?\d+) (\d+) (\S\S) (\d+)/(\d+)/(\d+)/(\d+)/(\+?\d+) (\d+)/(\d+)$")
CONNECT = re.compile(rb"^Connect from 127\.0\.0\.1:(\d+) to 127\.0\.0\.1:(\d+) \((\w+)/HTTP\)$")


@pytest.fixture
def utc() -> Iterator[None]:
    with utc_clock():
        yield


def run_haproxy(be_port: int, rx: socket.socket) -> list[bytes]:
    udp_port = rx.getsockname()[1]
    fe, fe2, fe3, fe4 = free_port(), free_port(), free_port(), free_port()
    cfg = f"""
global
    log 127.0.0.1:{udp_port} local0
defaults
    mode http
    log global
    timeout client 5s
    timeout server 5s
    timeout connect 2s
frontend f
    bind 127.0.0.1:{fe}
    option httplog
    default_backend b_api
frontend fc
    bind 127.0.0.1:{fe2}
    default_backend b_api
frontend fclf
    bind 127.0.0.1:{fe3}
    option httplog clf
    default_backend b_api
frontend ftcp
    mode tcp
    bind 127.0.0.1:{fe4}
    option tcplog
    default_backend btcp
backend b_api
    server s1 127.0.0.1:{be_port}
backend btcp
    mode tcp
    server s1 127.0.0.1:{be_port}
"""
    # ready once fe2 accepts: HAProxy 2.6 logs nothing for an HTTP connection that
    # never sends a byte (no stream is created), not even the "Connect from" line.
    with Haproxy(cfg, ready_port=fe2, env=dict(os.environ, TZ="UTC")):
        raw_request(fe, b"GET /api/x?y=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", timeout=5)
        raw_request(fe, b"BAD\x01 \r\n\r\n", timeout=5)
        raw_request(fe2, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", timeout=5)
        raw_request(fe3, b"GET /c?l=f HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", timeout=5)
        raw_request(fe4, b"GET /t HTTP/1.0\r\n\r\n", timeout=5)
        frames = []
        rx.settimeout(5)
        while len(frames) < 5:
            try:
                frames.append(rx.recv(70000))
            except TimeoutError:
                raise AssertionError(f"only got {frames!r}") from None
        return frames


def parse_legacy(ts: bytes) -> float:
    year = time.gmtime().tm_year
    return calendar.timegm(time.strptime(f"{year} {ts.decode()}", "%Y %b %d %H:%M:%S"))


def parse_clf(date: bytes, ms: bytes) -> float:
    return calendar.timegm(time.strptime(date.decode(), "%d/%b/%Y:%H:%M:%S")) + int(ms) / 1000


def test_httplog_line_and_frame_identical_to_haproxy(utc: None) -> None:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    try:
        with HttpBackend("s1") as be:
            frames = run_haproxy(be.port, rx)
    finally:
        rx.close()
    lines = {}
    for frame in frames:
        m = HEADER.match(frame)
        assert m, frame
        pri, legacy, pid, msg = m.groups()
        # the header lb builds for the same second, facility, level and pid
        now = parse_legacy(legacy) + 0.25
        hdr = log.build_header("local", 16, 6, now, log.Meta("haproxy", int(pid)))
        assert frame == hdr + msg + b"\n"
        assert pri == b"134"
        if msg.startswith(b"Connect"):
            kind = b"connect"
        elif msg.startswith(b"127.0.0.1 - - "):
            kind = b"clf"
        elif msg.endswith(b'"<BADREQ>"'):
            kind = b"bad"
        elif msg.endswith(b'"'):
            kind = b"ok"
        else:
            kind = b"tcp"
        lines[kind] = msg

    c = CONNECT.match(lines[b"connect"])
    assert c
    t = FakeTxn(client_port=int(c[1]), dst_port=int(c[2]), frontend_name=c[3].decode())
    assert logfmt.connect_line(t, "http") == lines[b"connect"]

    fmt = logfmt.compile_traffic_format(logfmt.HTTPLOG_FORMAT)
    for kind in (b"ok", b"bad"):
        m = HTTPLOG.match(lines[kind])
        assert m, lines[kind]
        g = m.groups()
        ts = parse_clf(g[1], g[2])
        rc = g[18].decode()
        t = FakeTxn(
            client_port=int(g[0]), accept_ts=ts, request_ts=ts, frontend_name=g[3].decode(),
            backend_name=None if g[4] == g[3] and g[5] == b"<NOSRV>" else g[4].decode(),
            server_name=None if g[5] == b"<NOSRV>" else g[5].decode(),
            t_request=int(g[6]), t_queue=int(g[7]), t_connect=int(g[8]),
            t_response=int(g[9]), t_active=int(g[10]), status=int(g[11]),
            bytes_out=int(g[12]), term=g[13][:2], cookie_req=g[13][2:3],
            cookie_res=g[13][3:4], actconn=int(g[14]), feconn=int(g[15]),
            beconn=int(g[16]), srvconn=int(g[17]), retries=int(rc.lstrip("+")),
            redispatched=rc.startswith("+"), srv_queue=int(g[19]),
            backend_queue=int(g[20]),
            request_line=None if g[21] == b"<BADREQ>" else g[21])
        assert fmt.render(t) == lines[kind]
    # what HAProxy said about the invalid request, field by field
    assert re.search(rb" f f/<NOSRV> -1/-1/-1/-1/\d+ 400 0 - - PR-- ", lines[b"bad"])
    assert re.search(rb" f b_api/s1 \d+/0/\d+/\d+/\d+ 200 \d+ - - ---- ", lines[b"ok"])

    # option httplog clf
    m = CLF.match(lines[b"clf"])
    assert m, lines[b"clf"]
    g = m.groups()
    ts = parse_clf(g[0], g[5])
    rc = g[19].decode()
    t = FakeTxn(
        accept_ts=ts, request_ts=ts, request_line=g[1], status=int(g[2]), bytes_out=int(g[3]),
        client_port=int(g[4]), frontend_name=g[6].decode(), backend_name=g[7].decode(),
        server_name=g[8].decode(), t_request=int(g[9]), t_queue=int(g[10]),
        t_connect=int(g[11]), t_response=int(g[12]), t_active=int(g[13]), term=g[14][:2],
        cookie_req=g[14][2:3], cookie_res=g[14][3:4], actconn=int(g[15]),
        feconn=int(g[16]), beconn=int(g[17]), srvconn=int(g[18]),
        retries=int(rc.lstrip("+")), redispatched=rc.startswith("+"), srv_queue=int(g[20]),
        backend_queue=int(g[21]))
    assert logfmt.compile_traffic_format(logfmt.HTTPLOG_CLF_FORMAT).render(t) == lines[b"clf"]

    # option tcplog
    m = TCPLOG.match(lines[b"tcp"])
    assert m, lines[b"tcp"]
    g = m.groups()
    ts = parse_clf(g[1], g[2])
    rc = g[15].decode()
    t = FakeTxn(
        client_port=int(g[0]), accept_ts=ts, request_ts=ts, frontend_name=g[3].decode(),
        backend_name=g[4].decode(), server_name=g[5].decode(), t_queue=int(g[6]),
        t_connect=int(g[7]), t_total=int(g[8]), bytes_out=int(g[9]), term=g[10],
        actconn=int(g[11]), feconn=int(g[12]), beconn=int(g[13]), srvconn=int(g[14]),
        retries=int(rc.lstrip("+")), redispatched=rc.startswith("+"), srv_queue=int(g[16]),
        backend_queue=int(g[17]))
    assert logfmt.compile_traffic_format(logfmt.TCPLOG_FORMAT, "tcp").render(t) == lines[b"tcp"]
    assert lines[b"tcp"].split(b" ")[2:4] == [b"ftcp", b"btcp/s1"]
