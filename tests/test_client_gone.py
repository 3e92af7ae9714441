"""A client that leaves before its request head is whole: what HAProxy 2.6.12 logs,
counts and answers, and lb with it.

Read from HAProxy 2.6.12 on 127.0.0.1 (2026-11-25) with this configuration, with and
without `option dontlognull` and `option http-ignore-probes`; when HAProxy is
installed, each case also runs it. On a new connection, or on a keep-alive one whose
next request has begun, the client's close is a 400 logged `CR--` `<BADREQ>` with
`-1/-1/-1/-1/<Ta>`, counted in ereq, req_tot and hrsp_4xx. A client that only
half-closed still reads HAProxy's 400 page. A keep-alive connection closed between
requests is nothing at all.
"""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path

import pytest

from tests.lbproc import LbProcess, raw_request
from tests.stats_support import query, wait_socket
from tests.support_e2e import HAPROXY, Haproxy, lb_or_haproxy

pytestmark = pytest.mark.timeout(60)

KINDS = ["lb", "haproxy"] if os.path.exists(HAPROXY) else ["lb"]

CFG = """
global
    stats socket {sock} level admin

defaults
    mode http
    log 127.0.0.1:@@log@@ local0
    option httplog
    {option}
    timeout connect 1s
    timeout client 5s
    timeout server 1s

frontend fe
    bind 127.0.0.1:@@fe@@
    http-request return status 200
"""

REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    time.sleep(0.05)
    return s


def _closed_empty(port: int) -> bytes:
    _connect(port).close()
    return b""


def _closed_partial(port: int) -> bytes:
    s = _connect(port)
    s.sendall(b"GET / HT")
    time.sleep(0.05)
    s.close()
    return b""


def _request_then_close(port: int) -> bytes:
    s = _connect(port)
    s.sendall(REQUEST)
    got = s.recv(4096)
    s.close()
    return got.split(b"\r\n", 1)[0]


def _request_then_partial(port: int) -> bytes:
    s = _connect(port)
    s.sendall(REQUEST)
    got = s.recv(4096)
    s.sendall(b"GET /2 HT")
    time.sleep(0.05)
    s.close()
    return got.split(b"\r\n", 1)[0]


def _half_closed(data: bytes):  # type: ignore[no-untyped-def]
    def step(port: int) -> bytes:
        return raw_request(port, data, shut=True).split(b"\r\n", 1)[0]
    return step


STEPS = [("empty", _closed_empty), ("partial", _closed_partial),
         ("request", _request_then_close), ("request+partial", _request_then_partial),
         ("half-closed empty", _half_closed(b"")),
         ("half-closed partial", _half_closed(b"GET / HT"))]

BADREQ = "CR-- <BADREQ>"
OK = "LR-- GET /"
# option -> per step: (what the client read, log lines, (ereq, req_tot, hrsp_4xx) after)
EXPECTED: dict[str, list[tuple[bytes, list[str], tuple[int, int, int]]]] = {
    "": [
        (b"", [BADREQ], (1, 1, 1)),
        (b"", [BADREQ], (2, 2, 2)),
        (b"HTTP/1.1 200 OK", [OK], (2, 3, 2)),
        (b"HTTP/1.1 200 OK", [OK, BADREQ], (3, 5, 3)),
        (b"HTTP/1.1 400 Bad request", [BADREQ], (4, 6, 4)),
        (b"HTTP/1.1 400 Bad request", [BADREQ], (5, 7, 5)),
    ],
    "option dontlognull": [
        (b"", [], (1, 1, 1)),
        (b"", [BADREQ], (2, 2, 2)),
        (b"HTTP/1.1 200 OK", [OK], (2, 3, 2)),
        (b"HTTP/1.1 200 OK", [OK, BADREQ], (3, 5, 3)),
        (b"HTTP/1.1 400 Bad request", [], (4, 6, 4)),
        (b"HTTP/1.1 400 Bad request", [BADREQ], (5, 7, 5)),
    ],
    "option http-ignore-probes": [
        (b"", [], (0, 0, 0)),
        (b"", [BADREQ], (1, 1, 1)),
        (b"HTTP/1.1 200 OK", [OK], (1, 2, 1)),
        (b"HTTP/1.1 200 OK", [OK, BADREQ], (2, 4, 2)),
        (b"", [], (2, 4, 2)),
        (b"HTTP/1.1 400 Bad request", [BADREQ], (3, 5, 3)),
    ],
}


def _drain(log: socket.socket, want: int = 0, quiet: float = 0.0) -> list[str]:
    """Traffic lines as `<termination> <request start>`: the ``want`` expected ones
    (each waited for up to 2 s), then whatever else comes within ``quiet`` seconds."""
    out: list[str] = []
    while True:
        log.settimeout(2.0 if len(out) < want else quiet)
        if log.gettimeout() == 0.0:
            return out
        try:
            data = log.recv(65536).decode("latin-1")
        except TimeoutError:
            return out
        m = re.search(r' (\d{3}) \d+ - - (\S{4}) .*"(<BADREQ>|GET /)', data)
        if m:
            out.append(f"{m.group(2)} {m.group(3)}")


def _counters(sock: str) -> tuple[int, int, int]:
    lines = query(sock, "show stat").splitlines()
    names = lines[0].lstrip("# ").split(",")
    row = next(dict(zip(names, ln.split(","), strict=False)) for ln in lines
               if ln.startswith("fe,FRONTEND,"))
    return int(row["ereq"]), int(row["req_tot"]), int(row["hrsp_4xx"])


@pytest.mark.parametrize("option", list(EXPECTED))
@pytest.mark.parametrize("kind", KINDS)
def test_client_gone_before_its_request(kind: str, option: str, tmp_path: Path) -> None:
    sock = str(tmp_path / "stats.sock")
    log = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    log.bind(("127.0.0.1", 0))
    try:
        text = CFG.format(sock=sock, option=option)
        ports = {"log": log.getsockname()[1]}
        proxy = LbProcess(text, ports) if kind == "lb" else Haproxy(text, ports,
                                                                     single_thread=True)
        with proxy as px:
            wait_socket(sock)
            port = px.ports["fe"]
            base = _counters(sock)
            got = []
            for (_name, step), (_read, lines, counts) in zip(STEPS, EXPECTED[option],
                                                             strict=True):
                read = step(port)
                logged = _drain(log, len(lines))
                deadline = time.monotonic() + 2  # counted by the time it is logged, or soon
                while True:
                    now = tuple(a - b for a, b in zip(_counters(sock), base, strict=True))
                    if now == counts or time.monotonic() > deadline:
                        break
                    time.sleep(0.02)
                got.append((read, logged, now))
            late = _drain(log, quiet=0.3)  # nothing more: a late line would show here
    finally:
        log.close()
    assert got == EXPECTED[option]
    assert late == []


NO_FORMAT = """
defaults
    mode http
    log 127.0.0.1:@@log@@ local0
    timeout connect 1s
    timeout client 5s
    timeout server 1s

frontend fe
    bind 127.0.0.1:@@fe@@
    tcp-request connection reject if { src 127.0.0.2 }
    http-request return status 200
"""


@pytest.mark.parametrize("kind", KINDS)
def test_no_format_logs_a_connection_once_it_carries_a_request(kind: str) -> None:
    """Without a log format HAProxy 2.6.12 writes one `Connect from <client> to <frontend
    address> (<fe>/HTTP)` line per connection that carried a request: none for a client gone
    before that, nor for a refused connection. lb wrote one at every accept."""
    log = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    log.bind(("127.0.0.1", 0))
    try:
        with lb_or_haproxy(kind, NO_FORMAT, {"log": log.getsockname()[1]}) as px:
            port = px.ports["fe"]
            _closed_empty(port)
            _closed_partial(port)
            refused = socket.socket()
            refused.bind(("127.0.0.2", 0))
            try:
                refused.connect(("127.0.0.1", port))
            except OSError:
                pass
            refused.close()
            assert _request_then_close(port) == b"HTTP/1.1 200 OK"
            lines = []
            log.settimeout(1.0)
            try:
                while True:
                    lines.append(log.recv(65536).decode("latin-1"))
            except TimeoutError:
                pass
    finally:
        log.close()
    assert [re.sub(r".*: Connect from 127\.0\.0\.1:\d+ ", "", ln).strip() for ln in lines] \
        == [f"to 127.0.0.1:{port} (fe/HTTP)"]
