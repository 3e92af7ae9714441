"""A `mode tcp` frontend whose connection becomes HTTP: through an HTTP backend (the
implicit upgrade) or `tcp-request content switch-mode http`.

lb (in a thread) and HAProxy 2.6.12 run the same configs in front of the same raw
backends on loopback. What HAProxy 2.6.12 did (observed, 2026-11-25):

* a TCP frontend may name an HTTP backend: the connection is parsed as HTTP/1 from
  its first byte, each request is one stream logged with the frontend's format
  (tcplog here), and the frontend's `tcp-request content` rules and use_backend run
  again for every later request of the connection;
* the first request does not run the content rules twice: their variables reach the
  HTTP rules; the frontend's `http-request` rules run although `haproxy -c` says they
  are ignored, while its `option forwardfor` really is dropped;
* `switch-mode http` upgrades at once: the content rules after it do not run, and the
  frontend keeps its HTTP settings (forwardfor), without warnings;
* the HTTP fetches of a TCP session read the head its first bytes make
  (`req.proto_http`, `req.hdr`): `HTTP` waits while they may still begin one (`XYZ`,
  `GET / HTTP/1.1\\r\\n`: until the inspect-delay ends, then false), and is false at
  once for bytes that cannot (`HELLO\\r\\n`, a TLS hello); the rules all decide on
  the first bytes (the content rules here wait for them with `accept if HTTP`: with
  rules that need none, HAProxy may route before they arrive);
* a later request that use_backend sends to a `mode tcp` backend is closed unanswered
  and logged `<backend>/<NOSRV> ... IR`.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from typing import Any

import pytest

from lb.http import rawhead
from tests.lbproc import RawBackend
from tests.support_e2e import HAPROXY, UdpLog, lb_or_haproxy

HAVE_HAPROXY = shutil.which(HAPROXY) is not None
KINDS = ("lb", "haproxy") if HAVE_HAPROXY else ("lb",)

CONFIG = """\
defaults
  timeout client 5s
  timeout server 5s
  timeout connect 5s
  log 127.0.0.1:{log} local0
frontend fe
  mode tcp
  option tcplog
  bind 127.0.0.1:@@fe@@
  tcp-request inspect-delay 400ms
  {switch}
  tcp-request content set-var(txn.v) str(tcpvar)
  tcp-request content accept if HTTP
  http-request set-header X-Fe fe
  http-request set-header X-Var %[var(txn.v)]
  option forwardfor header X-Fe-Ff
  use_backend bt if !HTTP or {{ req.hdr(host) t }}
  default_backend bh
backend bh
  mode http
  http-request set-header X-Be bh
  http-request set-header X-Var2 %[var(txn.v)]
  server s 127.0.0.1:@@http@@
backend bt
  mode tcp
  server s 127.0.0.1:@@tcp@@
"""


def _echo_head(c: socket.socket, be: RawBackend) -> None:
    """An HTTP server answering each request with its head as the body."""
    while (head := be.recv_head(c)).endswith(b"\r\n\r\n"):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(head), head))


def _tcp_echo(c: socket.socket, be: RawBackend) -> None:
    """A TCP server sending back what it gets, prefixed; it closes when the client
    does."""
    while data := c.recv(65536):
        be.received.append(data)
        c.sendall(b"tcp:" + data)
    c.close()


def _exchange(port: int, parts: list[bytes], wait: float = 0.1) -> bytes:
    """Send each part (a pause between), then read until the server closes or is
    quiet for a second; b"<EOF>" marks a close."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        for part in parts:
            c.sendall(part)
            time.sleep(wait)
        c.settimeout(1.0)
        out = b""
        try:
            while chunk := c.recv(65536):
                out += chunk
            out += b"<EOF>"
        except TimeoutError:
            pass
    return out


def _run(kind: str, switch: str, parts_list: list[list[bytes]], nlines: int
         ) -> tuple[list[bytes], list[bytes], list[bytes]]:
    log = UdpLog()
    try:
        with RawBackend(_echo_head) as http, RawBackend(_tcp_echo) as tcp:
            text = CONFIG.format(log=log.port, switch=switch)
            with lb_or_haproxy(kind, text, {"http": http.port, "tcp": tcp.port}) as px:
                outs = [_exchange(px.ports["fe"], parts) for parts in parts_list]
                lines = _tcplog_lines(log, nlines)
            return outs, lines, tcp.received
    finally:
        log.close()


def _tcplog_lines(log: UdpLog, n: int, timeout: float = 5.0) -> list[bytes]:
    """The first n traffic lines of frontend ``fe`` (tcplog) the receiver gets."""
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        log.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = log.sock.recv(65536)
        except TimeoutError:
            break
        if b"] fe " in data:
            got.append(data)
    return got


def _tcplog(line: bytes) -> tuple[str, str, str, str]:
    """(client port, backend/server, bytes, termination state) of a tcplog line."""
    m = re.search(rb":(\d+) \[[^]]+\] fe (\S+) \S+ (\d+) (\S\S) ", line)
    assert m is not None, line
    return tuple(g.decode() for g in m.groups())  # type: ignore[return-value]


REQ_A = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
REQ_B = b"GET /b HTTP/1.1\r\nHost: y\r\n\r\n"


@pytest.mark.parametrize("kind", KINDS)
def test_an_http_backend_upgrades_the_connection(kind: str) -> None:
    (out, hello), lines, tcp_got = _run(kind, "", [[REQ_A, REQ_B], [b"HELLO\r\n"]], 3)
    bodies = [p.split(b"\r\n\r\n", 1)[1] for p in out.split(b"HTTP/1.1 200 OK\r\n")[1:]]
    assert len(bodies) == 2 and not out.endswith(b"<EOF>"), out  # one connection, kept
    for body, path in zip(bodies, (b"/a", b"/b"), strict=True):
        got = [line.lower() for line in body.split(b"\r\n") if line]
        assert got[0] == b"get " + path + b" http/1.1"
        # the frontend's http-request rules ran, the session's variable reached them
        # (the first request) or the content rules ran again (the second), and the
        # frontend's forwardfor was dropped
        assert got[2:] == [b"x-fe: fe", b"x-var: tcpvar", b"x-be: bh", b"x-var2: tcpvar"]
    # not a head yet: HTTP waits for the inspect-delay, then is false (bt)
    assert hello == b"tcp:HELLO\r\n" and tcp_got == [b"HELLO\r\n"]
    fields = [_tcplog(line) for line in lines]
    assert [f[1:] for f in fields] == [("bh/s", f[2], "--") for f in fields[:2]] + [
        ("bt/s", "11", "--")]
    assert fields[0][0] == fields[1][0] != fields[2][0]  # two streams of one connection


@pytest.mark.parametrize("kind", KINDS)
def test_switch_mode_http(kind: str) -> None:
    (out,), lines, _ = _run(kind, "tcp-request content switch-mode http if HTTP",
                            [[REQ_A, REQ_B]], 2)
    bodies = [p.split(b"\r\n\r\n", 1)[1] for p in out.split(b"HTTP/1.1 200 OK\r\n")[1:]]
    for body in bodies:
        got = [line.lower().strip() for line in body.split(b"\r\n") if line]
        # the content rules after switch-mode do not run (no variable); the
        # frontend's forwardfor is kept
        assert got[2:] == [b"x-fe: fe", b"x-var:", b"x-be: bh", b"x-var2:",
                           b"x-fe-ff: 127.0.0.1"], got
    assert len(bodies) == 2
    assert [_tcplog(line)[1] for line in lines] == ["bh/s", "bh/s"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_later_request_for_a_tcp_backend_is_closed(kind: str) -> None:
    (out, direct), lines, tcp_got = _run(
        kind, "", [[REQ_A, b"GET /t HTTP/1.1\r\nHost: t\r\n\r\n"],
                   [b"GET /t HTTP/1.1\r\nHost: t\r\n\r\n"]], 3)
    assert out.count(b"HTTP/1.1 200 OK") == 1 and out.endswith(b"<EOF>"), out
    # a first request for bt is a TCP session: its bytes go through as they are
    assert direct == b"tcp:GET /t HTTP/1.1\r\nHost: t\r\n\r\n"
    assert tcp_got == [b"GET /t HTTP/1.1\r\nHost: t\r\n\r\n"]
    fields = [_tcplog(line) for line in lines]
    assert [f[1:] for f in fields[1:]] == [("bt/<NOSRV>", "0", "IR"),
                                            ("bt/s", fields[2][2], "--")]


# ------------------------------------------------------------------ configuration

def _messages(cmd: list[str], path: str, cwd: str | None = None) -> tuple[int, list[str]]:
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    out = subprocess.run([*cmd, "-c", "-f", path], capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL, cwd=cwd, env=env)
    lines = [re.sub(r"^\[(\w+)\]\s+\(\d+\) : ", r"\1 ", line) for line in
             out.stderr.splitlines() if line.startswith(("[ALERT]", "[WARNING]"))]
    return out.returncode, lines


TCP_FE = """\
defaults
  mode tcp
  timeout client 5s
  timeout server 5s
  timeout connect 5s
frontend f
  bind 127.0.0.1:18080
  {line}
  option forwardfor
  option originalto
  option http-buffer-request
  option http-ignore-probes
  option http-no-delay
  capture cookie X len 10
  redirect prefix /x if FALSE
  monitor-uri /m
  stats enable
  http-request set-header a b
  http-response set-header a b
  default_backend b
backend b
  mode http
  server s 127.0.0.1:9
"""


@pytest.mark.skipif(not HAVE_HAPROXY, reason="compares with HAProxy 2.6.12")
@pytest.mark.parametrize("line", [
    "", "tcp-request content switch-mode http", "tcp-request content switch-mode",
    "tcp-request content switch-mode tcp", "tcp-request content switch-mode http x",
    "tcp-request content switch-mode http proto", "tcp-request content switch-mode http proto h1",
    "tcp-request content switch-mode http proto foo",
    "tcp-request content switch-mode http proto fcgi",
    "tcp-request content switch-mode http proto none",
    "tcp-request session switch-mode http"])
def test_config_messages_as_haproxy(tmp_path: Any, line: str) -> None:
    """A TCP frontend with an HTTP backend loads; its HTTP settings are warned about
    (and some dropped) unless it has `switch-mode http`, as in HAProxy 2.6.12."""
    path = str(tmp_path / "t.cfg")
    with open(path, "w") as f:
        f.write(TCP_FE.format(line=line))
    assert _messages([sys.executable, "-m", "lb"], path) == _messages([HAPROXY], path)


def test_switch_mode_h2_is_refused(tmp_path: Any) -> None:
    with open(tmp_path / "t.cfg", "w") as f:
        f.write(TCP_FE.format(line="tcp-request content switch-mode http proto h2"))
    rc, lines = _messages([sys.executable, "-m", "lb"], "t.cfg", cwd=str(tmp_path))
    assert rc == 1 and lines[0] == (
        "ALERT config : parsing [t.cfg:8] : 'tcp-request content switch-mode http proto "
        "h2' is not supported by lb (it speaks HTTP/1 only).")


def test_an_http_frontend_still_refuses_a_tcp_backend(tmp_path: Any) -> None:
    path = str(tmp_path / "t.cfg")
    text = TCP_FE.format(line="").replace("  mode tcp\n", "  mode http\n", 1)
    with open(path, "w") as f:
        f.write(text.replace("backend b\n  mode http\n", "backend b\n  mode tcp\n"))
    rc, lines = _messages([sys.executable, "-m", "lb"], path)
    assert rc == 1 and any("tries to use incompatible tcp backend 'b'" in x for x in lines)


# ------------------------------------------------------------------ the raw head

@pytest.mark.parametrize("data, want", [
    (b"", rawhead.WAIT), (b"GE", rawhead.WAIT), (b"GET /a HT", rawhead.WAIT),
    (b"XYZ", rawhead.WAIT), (b"GET / HTTP/1.1\r", rawhead.WAIT), (b"GET /a\r", rawhead.WAIT),
    (b"GET /a HTTP/1.1\r\nHost: x\r\n", rawhead.WAIT), (b"HELLO\r\n", None),
    (b"HELLO\r", None), (b"GET\r\n\r\n", None),
    (b"\x16\x03\x01", None), (b"GET /a HTTP/1.1 x\r\n", None),
    (b"GET /a HTTP/1.1\r\nbad header\r\n\r\n", None), (b"POST /\r\n\r\n", None),
    (b"GET /a HTTP/1.1\r\nHost:  x \r\nX-A: 1\r\n\r\nbody",
     (b"GET", b"/a", b"1.1", [(b"host", b"x"), (b"x-a", b"1")])),
    (b"GET /a\r\n\r\n", (b"GET", b"/a", b"1.0", [])),
    (b"BREW /pot HTTP/1.0\n\n", (b"BREW", b"/pot", b"1.0", [])),
])
def test_raw_head(data: bytes, want: Any) -> None:
    assert rawhead.parse(data, 1000) == want


def test_raw_head_that_fills_the_buffer_is_none() -> None:
    assert rawhead.parse(b"GET /" + b"a" * 100, 50) is None
    assert rawhead.parse(b"GET /" + b"a" * 40, 50) is rawhead.WAIT  # (below the limit)


@pytest.mark.parametrize("kind", KINDS)
def test_http_waits_while_a_head_may_still_come(kind: str) -> None:
    """`XYZ` may begin a method: `HTTP` is a miss until the 400 ms inspect-delay ends,
    then false (bt); a TLS hello cannot begin a head: false at once."""
    log = UdpLog()
    try:
        with RawBackend(_echo_head) as http, RawBackend(_tcp_echo) as tcp:
            text = CONFIG.format(log=log.port, switch="")
            with lb_or_haproxy(kind, text, {"http": http.port, "tcp": tcp.port}) as px:
                took = {}
                for data in (b"XYZ", b"\x16\x03\x01"):
                    with socket.create_connection(("127.0.0.1", px.ports["fe"]),
                                                  timeout=5) as c:
                        t0 = time.monotonic()
                        c.sendall(data)
                        assert c.recv(100) == b"tcp:" + data
                        took[data] = time.monotonic() - t0
    finally:
        log.close()
    assert 0.3 < took[b"XYZ"] < 3 and took[b"\x16\x03\x01"] < 0.3, took
