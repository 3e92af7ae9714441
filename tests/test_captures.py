"""`capture request|response header <name> len <n>`, `declare capture` and the
`http-request|http-response capture` actions: HAProxy's texts for bad lines, and the
`{...}` fields of the httplog line next to a live HAProxy 2.6.12."""

from __future__ import annotations

import http.client
import os
import re
import socket
from pathlib import Path
from typing import Any

import pytest

from lb import logfmt
from lb.http import h1
from tests.backends import HttpBackend
from tests.lbproc import LbProcess, free_port
from tests.support_e2e import Haproxy
from tests.test_config_haproxy_diff import HAPROXY, assert_backend_lines_like_haproxy

CHECK_CASES = [
    "capture", "capture request", "capture request header", "capture request header Host",
    "capture request header Host len", "capture request header Host len 0",
    "capture request header Host len x", "capture request header Host bogus 5",
    "capture request bogus Host len 5", "capture bogus",
    "capture response header X len 5 extra", "capture request header X len 5 extra",
    "capture cookie SID",
    "http-request capture req.hdr(x) len 10", "http-request capture",
    "http-request capture req.hdr(x) len x", "http-request capture req.hdr(x) bogus 5",
    "http-request capture req.hdr(x),bogus len 5", "http-request capture req.hdr(x) id 0",
    "declare capture request len 10\n http-request capture req.hdr(x) id 1",
    "declare capture response len 10\n http-response capture res.hdr(x) id 0",
    "http-response capture res.hdr(x) len 5", "declare capture", "declare capture request",
    "declare capture request len", "declare capture bogus len 5",
]


@pytest.mark.skipif(not os.path.exists(HAPROXY), reason="needs Debian's haproxy")
@pytest.mark.parametrize("stmt", CHECK_CASES)
def test_check_messages_match_haproxy(tmp_path: Path, capsys: Any, stmt: str) -> None:
    assert_backend_lines_like_haproxy(tmp_path, capsys, " server s 127.0.0.1:80",
                                      frontend=" " + stmt)


def test_the_last_header_cut_to_its_length() -> None:
    headers = [(b"x-a", b"first"), (b"host", b"example.com"), (b"x-a", b"second")]
    assert h1.capture(headers, ((b"x-a", 3), (b"host", 40), (b"none", 5), (b"", 4))) == [
        b"sec", b"example.com", b"", b""]  # (a nameless slot is a `capture` rule's)


def test_captured_text_is_escaped_as_haproxy_escapes_it() -> None:
    # read off HAProxy 2.6.12's lines: '"' '#' '{' '|' '}' and bytes outside
    # 0x20..0x7e as #XX, spaces kept
    assert logfmt._caps((b'sec"ond|{x}#', b"caf\xc3\xa9 \x01tab\there"), 2) == (
        "{sec#22ond#7C#7Bx#7D#23|caf#C3#A9 #01tab#09here}")
    assert logfmt._caps(None, 3) == "{||}"
    assert logfmt._caps_list((b"a", b""), 2) == "a -"


_HEAD = """
global
    log 127.0.0.1:{udp} local0

defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s

frontend fe
    bind 127.0.0.1:{fe}
"""
_TAIL = """    default_backend b

backend b
    server s1 127.0.0.1:{be}
"""
CFG = _HEAD + """\
    capture request header Host len 8
    http-request capture req.hdr(x-b),upper len 4
    capture request header X-A len 20
    declare capture response len 6
    capture response header X-Server len 1
    http-response capture res.hdr(content-type) id 0
    capture response header Content-Type len 40
""" + _TAIL

FIELDS = re.compile(rb" (\{[^}]*\}) (\{[^}]*\}) \"")


def _lines(port: int, rx: socket.socket, count: int) -> list[bytes]:
    for headers in ({"X-A": "one"}, {"X-A": 'sec"ond|{x}#', "Host": "a-very-long-host",
                                      "X-B": "abcdef"}):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/", headers=headers)
        conn.getresponse().read()
        conn.close()
    out: list[bytes] = []
    while len(out) < count:
        line = rx.recv(65536)
        if b'"GET / HTTP/1.1"' in line:  # (not a readiness probe's line)
            out.append(line)
    # in the order of the requests: a proxy may log the second one first (HAProxy
    # did once, its first stream ending only once the client's close was seen)
    out.sort(key=lambda line: b"|one}" not in line)
    return out


def _fields(lines: list[bytes]) -> list[tuple[bytes, ...]]:
    found = [FIELDS.search(line) for line in lines]
    assert all(found), lines
    return [m.groups() for m in found if m]


def test_log_fields_are_haproxys(tmp_path: Path) -> None:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(10)
    udp = rx.getsockname()[1]
    try:
        with HttpBackend("s1") as be:
            with LbProcess(CFG.format(udp=udp, fe="@@fe@@", be=be.port)) as lb:
                mine = _fields(_lines(lb.ports["fe"], rx, 2))
            # slots in declaration order: `capture ... header` lines, `http-request
            # capture ... len` rules and `declare capture` lines alike
            assert mine == [
                (b"{127.0.0.||one}", b"{text/p|s|text/plain}"),
                (b"{a-very-l|ABCD|sec#22ond#7C#7Bx#7D#23}", b"{text/p|s|text/plain}")]
            if os.path.exists(HAPROXY):
                port = free_port()
                with Haproxy(CFG.format(udp=udp, fe=port, be=be.port), ready_port=port):
                    theirs = _fields(_lines(port, rx, 2))
                # (HAProxy's Host capture shows its own port, which differs)
                assert [f[1:] for f in mine] == [f[1:] for f in theirs]
                assert [f[0].split(b"|")[1:] for f in mine] == \
                    [f[0].split(b"|")[1:] for f in theirs]
    finally:
        rx.close()


CK_CFG = _HEAD + "    capture cookie SRV len 12\n" + _TAIL

CK_FIELDS = re.compile(rb" -?\d+ -?\d+ (\S+) (\S+) \S{4} ")


def _set_cookies(req: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = [("content-type", "text/plain")]
    if req.path == "/set":
        headers += [("set-cookie", "OTHER=1; path=/"),
                    ("set-cookie", "SRVID=server-number-one; path=/")]
    return 200, headers, b"ok"


def _cookie_fields(port: int, rx: socket.socket) -> list[tuple[bytes, ...]]:
    sent = [("/", "A=1; SRVX=abc; SRV=two"), ("/set", "SRV=zzzzzzzzzzzzzzzzzz"),
            ("/", None), ("/", 'SRV="q|#x"')]
    for path, cookie in sent:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        conn.getresponse().read()
        conn.close()
    out: list[tuple[bytes, ...]] = []
    while len(out) < len(sent):
        line = rx.recv(65536)
        if b'"GET /' in line:
            m = CK_FIELDS.search(line)
            assert m, line
            out.append(m.groups())
    return out


def test_cookie_capture_is_haproxys() -> None:
    """`capture cookie <prefix> len <n>`: %CC / %CS show the first cookie whose name
    starts with the prefix, as name=value cut to n bytes (read off HAProxy 2.6.12)."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(10)
    udp = rx.getsockname()[1]
    expected = [(b"SRVX=abc", b"-"), (b"SRV=zzzzzzzz", b"SRVID=server"), (b"-", b"-"),
                (b'SRV="q|#x"', b"-")]
    try:
        with HttpBackend("s1", handler=_set_cookies) as be:
            with LbProcess(CK_CFG.format(udp=udp, fe="@@fe@@", be=be.port)) as lb:
                assert _cookie_fields(lb.ports["fe"], rx) == expected
            if os.path.exists(HAPROXY):
                port = free_port()
                with Haproxy(CK_CFG.format(udp=udp, fe=port, be=be.port), ready_port=port):
                    assert _cookie_fields(port, rx) == expected
    finally:
        rx.close()
