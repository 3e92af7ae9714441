"""`error-log-format` and the `fc_err` / `fc_err_str` fetches, side by side with
HAProxy 2.6.12 on the same config.

HAProxy logs with `error-log-format` what ends before it makes a stream: a request
head its parser refuses (400 `PR--`), one never whole (408 `cR--`, or the client
gone, `CR--`), and a connection that ends in error before its session (a bad or
missing PROXY header: status 0, `PR--`, `fc_err` 13 to 16). A request that reaches
a stream is logged with `log-format`, `fc_err` 0 "Success". Each line below is what
both wrote for the same bytes, with client ports and durations blanked.
"""

from __future__ import annotations

import re
import socket
import time

from lb.connerr import TEXTS, code_of
from tests.backends import HttpBackend
from tests.lbproc import LbProcess, free_port
from tests.support_e2e import Haproxy, UdpLog

CONFIG = """
defaults
    mode http
    timeout connect 1s
    timeout client 1s
    timeout server 5s
frontend fe
    bind 127.0.0.1:@@fe@@
    log 127.0.0.1:{log} local0
    log-format "NORMAL %ST %tsc %{{+Q}}r %[fc_err]/%[fc_err_str] lc=%lc"
    error-log-format "ERR %ci %ST %tsc %{{+Q}}r %[fc_err] %[fc_err_str] TR=%TR Tw=%Tw Th=%Th Ti=%Ti Tt=%Tt U=%U B=%B rt=%rt lc=%lc"
    default_backend be
frontend pp
    bind 127.0.0.1:@@pp@@ accept-proxy
    log 127.0.0.1:{log} local0
    log-format "NORMAL %ST %tsc %{{+Q}}r"
    error-log-format "ERR %ci %ST %tsc %{{+Q}}r %[fc_err] %[fc_err_str] TR=%TR Tw=%Tw Th=%Th Ti=%Ti Tt=%Tt U=%U B=%B rt=%rt lc=%lc"
    default_backend be
backend be
    server s1 127.0.0.1:@@s1@@
"""

# (frontend, bytes sent) in order; the client reads until the proxy closes or 3 s
SENT = [
    ("fe", b"GARBAGE LINE\r\n\r\n"),
    ("fe", b"GET / HTTP/1.1\r\nhost: x\r\n"),  # never whole: 408 at `timeout client`
    ("fe", b"GET /ok HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"),
    ("fe", b"GET / HTTP/1.1\r\nx-a: " + b"a" * 20000 + b"\r\n\r\n"),
    ("fe", b"GET / HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n"),
    ("pp", b"PROXY TCP4 1.2.3.4\r\n"),
    ("pp", b"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n"),
    ("pp", b"PROXY UNKNOWN\r\nGARBAGE\r\n\r\n"),
    ("pp", b""),  # nothing: the PROXY header times out
    ("pp-late", b"PROXY TCP4 1.2.3.4\r\n"),  # a bad header 0.3 s after connecting
]


def _lines(kind: str, s1: HttpBackend) -> list[str]:
    log = UdpLog()
    ports = {"fe": free_port(), "pp": free_port(), "s1": s1.port}
    text = CONFIG.format(log=log.port)
    proxy = Haproxy(text, ports, single_thread=True) if kind == "haproxy" else \
        LbProcess(text, ports)
    out = []
    try:
        with proxy:
            log.sock.settimeout(4)
            for fe, data in SENT:
                late = fe.endswith("-late")
                port = proxy.ports[fe.removesuffix("-late")]
                with socket.create_connection(("127.0.0.1", port), timeout=3) as c:
                    if late:
                        time.sleep(0.3)
                    c.sendall(data)
                    try:
                        while c.recv(65536):
                            pass
                    except (TimeoutError, ConnectionResetError):
                        pass
                line = log.sock.recv(65536).decode().split("]: ", 1)[1].strip()
                line = re.sub(r"127\.0\.0\.1 ", "C ", line)
                # the handshake and total times run until the error: a few ms, or the
                # wait
                line = re.sub(r" (Th|Tt)=(\d+) ", lambda m: f" {m.group(1)}=" + (
                    "LATE " if int(m.group(2)) >= 250 else "N "), line)
                if not line.startswith("ERR C 0 "):
                    # a request's idle time is measured (a loaded machine makes it 1 ms
                    # now and then); a connection error's is always 0
                    line = re.sub(r" Ti=\d+ ", " Ti=N ", line)
                out.append(line)
                time.sleep(0.05)
    finally:
        log.close()
    return out


def test_error_log_format_like_haproxy() -> None:
    with HttpBackend("s1") as s1:
        theirs = _lines("haproxy", s1)
        mine = _lines("lb", s1)
    assert mine == theirs
    # what HAProxy 2.6.12 wrote (compared with it live, above)
    head = "TR=-1 Tw=-1"
    quick = "Th=N Ti=N Tt=N U=0 B=0"
    assert theirs == [
        f'ERR C 400 PR-- "<BADREQ>" 0 Success {head} {quick} rt=0 lc=0',
        f'ERR C 408 cR-- "<BADREQ>" 0 Success {head} Th=N Ti=N Tt=LATE U=0 B=0 rt=1 lc=1',
        'NORMAL 200 ---- "GET /ok HTTP/1.1" 0/Success lc=2',
        f'ERR C 400 PR-- "<BADREQ>" 0 Success {head} {quick} rt=3 lc=3',
        f'ERR C 400 PR-- "<BADREQ>" 0 Success {head} {quick} rt=4 lc=4',
        f'ERR C 0 PR-- "<BADREQ>" 16 Received an invalid PROXY protocol header {head} '
        'Th=N Ti=0 Tt=N U=0 B=0 rt=5 lc=0',
        'ERR C 0 PR-- "<BADREQ>" 15 Received something which does not look like a PROXY '
        f'protocol header {head} Th=N Ti=0 Tt=N U=0 B=0 rt=6 lc=1',
        f'ERR C 400 PR-- "<BADREQ>" 0 Success {head} {quick} rt=7 lc=2',
        f'ERR C 0 PR-- "<BADREQ>" 13 Timeout while waiting for PROXY protocol header {head} '
        'Th=-1 Ti=0 Tt=LATE U=0 B=0 rt=8 lc=3',
        # (a header refused after a wait: the handshake lasted until then)
        f'ERR C 0 PR-- "<BADREQ>" 16 Received an invalid PROXY protocol header {head} '
        'Th=LATE Ti=0 Tt=LATE U=0 B=0 rt=9 lc=4',
    ]


def test_error_codes_are_haproxys() -> None:
    # the numbers HAProxy 2.6.12 gave on 127.0.0.1 (this file, and TLS binds: a failed
    # handshake 34, a client gone during one 24)
    assert code_of("Timeout while waiting for PROXY protocol header") == 13
    assert code_of("Received an invalid PROXY protocol header") == 16
    assert code_of("Connection closed during SSL handshake") == 24
    assert code_of("SSL handshake failure") == 34
    assert code_of(None) == 0 and TEXTS[0] == "Success"
    assert code_of("no such text") == 0
