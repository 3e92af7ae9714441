"""`ring` sections, `log ring@<name>` and `log tcp@<addr>`: log lines kept for `show
events` and forwarded to syslog servers over TCP (lb.logring).

Seen on HAProxy 2.6.12 (127.0.0.1, these configs; each test runs both):
- `log tcp@<addr>` sends each line as the log line's format (the default `local`
  header), LF-terminated; its `len` cuts the message, the header comes on top.
- a `ring` uses its own `format` (default `raw`), whatever the log line says, and
  cuts each line at `maxlen`; `log-proto octet-count` frames it `<length> <line>`.
- lines written while the server is down wait in the ring and leave once it is up.
- `show events` lists the sinks (a user may), `show events <ring>` dumps its lines
  (operator), "No such event sink" for a name that is none.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from lb import logring
from lb.__main__ import check_mode, parse_args
from lb.config.model import Ring, RingServer
from tests.lbproc import LbProcess, RawBackend, free_port
from tests.stats_support import query, wait_socket
from tests.support_e2e import HAPROXY, answer_ok, lb_or_haproxy
from tests.test_config_haproxy_diff import assert_text_like_haproxy

pytestmark = pytest.mark.timeout(60)

KINDS = ["lb", "haproxy"] if os.path.exists(HAPROXY) else ["lb"]


class TcpSyslog:
    """A TCP syslog receiver on 127.0.0.1: every byte of every connection, in order
    of arrival. ``listen=False`` only reserves the port (connections are refused)."""

    def __init__(self, listen: bool = True) -> None:
        self.port = free_port()
        self.data = b""
        self.lock = threading.Lock()
        self.sock: socket.socket | None = None
        if listen:
            self.listen()

    def listen(self) -> None:
        s = self.sock = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(8)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        assert self.sock is not None
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(c,), daemon=True).start()

    def _read(self, c: socket.socket) -> None:
        with c:
            while True:
                try:
                    d = c.recv(65536)
                except OSError:
                    return
                if not d:
                    return
                with self.lock:
                    self.data += d

    def wait(self, pattern: bytes, count: int, timeout: float = 5.0) -> bytes:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(re.findall(pattern, self.data)) >= count:
                    return self.data
            time.sleep(0.02)
        return self.data

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


HEAD = """
defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
"""
TAIL = """
frontend fe
    bind 127.0.0.1:@@fe@@
    option httplog
    option dontlognull
{logs}
    default_backend be
backend be
    server s1 127.0.0.1:@@s1@@
"""


def _requests(port: int, n: int) -> None:
    for i in range(n):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"GET /r%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
            assert c.recv(1000).startswith(b"HTTP/1.1 200")


def _run(kind: str, text: str, body: object) -> None:
    with RawBackend(answer_ok) as srv, lb_or_haproxy(kind, text, {"s1": srv.port}) as px:
        body(px)  # type: ignore[operator]


@pytest.fixture
def rx() -> Iterator[TcpSyslog]:
    r = TcpSyslog()
    yield r
    r.close()


def _received(kind: str, text: str, rx: TcpSyslog, requests: int, pattern: bytes,
              count: int) -> bytes:
    """Serve ``requests`` requests under ``text``; what the receiver got once
    ``pattern`` came ``count`` times, read while the proxy still runs."""
    got: list[bytes] = []

    def body(px: object) -> None:
        _requests(px.ports["fe"], requests)  # type: ignore[attr-defined]
        got.append(rx.wait(pattern, count))
    _run(kind, text, body)
    return got[0]


@pytest.mark.parametrize("kind", KINDS)
def test_tcp_target_sends_local_lines_cut_after_the_header(kind: str, rx: TcpSyslog) -> None:
    text = HEAD + TAIL.format(logs=f"    log tcp@127.0.0.1:{rx.port} len 80 local0")
    lines = _received(kind, text, rx, 2, b"\n", 2).split(b"\n")
    assert len(lines) == 3 and lines[2] == b"", lines
    for line in lines[:2]:
        hdr = re.match(rb"<134>\w{3} [ \d]\d \d\d:\d\d:\d\d haproxy\[\d+\]: ", line)
        assert hdr is not None, line
        msg = line[hdr.end():]
        # cut at len - 1, as HAProxy cuts a message for its log lines of one length
        assert len(msg) == 79 and msg.startswith(b"127.0.0.1:"), line
        assert b" fe be/s1 " in msg, line


@pytest.mark.parametrize("kind", KINDS)
def test_ring_format_and_octet_counting(kind: str, rx: TcpSyslog) -> None:
    ring = f"""
ring audit
    description "edge audit"
    format rfc5424
    maxlen 1200
    size 32764
    timeout connect 5s
    timeout server 10s
    server collector 127.0.0.1:{rx.port} log-proto octet-count
"""
    logs = "    log ring@audit local0\n    log ring@audit len 80 format short local1"
    data = _received(kind, ring + HEAD + TAIL.format(logs=logs), rx, 1,
                     rb"\d+ <1[34][24]>1 ", 2)
    frames = []
    rest = data
    while rest:
        m = re.match(rb"(\d+) ", rest)
        assert m is not None, data
        n = int(m[1])
        frames.append(rest[m.end():m.end() + n])
        rest = rest[m.end() + n:]
    assert len(frames) == 2, data
    frames.sort()  # (<134> first)
    heads = []
    for frame, pri in zip(frames, (b"<134>", b"<142>"), strict=True):
        m = re.match(pri + rb"1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00 - haproxy \d+ "
                     rb"- - (127\.0\.0\.1:\d+ \[.*\] fe be/s1 .*)", frame)
        assert m is not None, frame
        heads.append(m[1])
    # the ring's format for both; the second line's own `len 80` cut its message
    assert heads[0].endswith(b'"GET /r0 HTTP/1.1"') and len(heads[1]) == 80, heads
    assert heads[0].startswith(heads[1]), heads


@pytest.mark.parametrize("kind", KINDS)
def test_raw_default_and_maxlen(kind: str, rx: TcpSyslog) -> None:
    ring = f"ring r\n    maxlen 60\n    server s 127.0.0.1:{rx.port}\n"
    text = ring + HEAD + TAIL.format(logs="    log ring@r format iso local0")
    lines = _received(kind, text, rx, 2, b"\n", 2).split(b"\n")
    assert [len(x) for x in lines] == [60, 60, 0], lines
    assert all(x.startswith(b"127.0.0.1:") for x in lines[:2]), lines


@pytest.mark.parametrize("kind", KINDS)
def test_lines_wait_for_a_server_that_is_down(kind: str) -> None:
    rx = TcpSyslog(listen=False)
    try:
        ring = f"ring r\n    timeout connect 1s\n    server s 127.0.0.1:{rx.port}\n"
        text = ring + HEAD + TAIL.format(logs="    log ring@r local0")

        def body(px: object) -> None:
            _requests(px.ports["fe"], 2)  # type: ignore[attr-defined]
            time.sleep(0.3)
            rx.listen()  # up now: the forwarder's next attempt gets through
            data = rx.wait(b"GET /r1", 1, timeout=8)
            assert b"GET /r0" in data and b"GET /r1" in data, data
        _run(kind, text, body)
    finally:
        rx.close()


SHOW_CFG = """
global
    stats socket {sock} level {level}
ring audit
    description "edge audit"
    server s 127.0.0.1:{port}
""" + HEAD + TAIL


@pytest.mark.parametrize("kind", KINDS)
def test_show_events(kind: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rx = TcpSyslog()
    try:
        for level in ("user", "operator"):
            sock = str(tmp_path / f"{level}.sock")
            text = SHOW_CFG.format(sock=sock, level=level, port=rx.port,
                                   logs="    log ring@audit local0")

            def body(px: object, sock: str = sock, level: str = level) -> None:
                wait_socket(sock)
                _requests(px.ports["fe"], 2)  # type: ignore[attr-defined]
                time.sleep(0.2)
                listing = query(sock, "show events").splitlines()
                assert listing[0].startswith("Supported events sinks are listed below.")
                assert "    audit      : type=buffer, 0 dropped, edge audit" in listing
                assert "    stdout     : type=fd, 0 dropped, standard output (fd#1)" in listing
                dump = query(sock, "show events audit")
                if level == "user":
                    assert dump.startswith("Permission denied")
                    return
                got = [re.sub(r"\[\d+\]", "[PID]", x) for x in dump.splitlines() if x]
                assert len(got) == 2, dump
                assert got[1].endswith('"GET /r1 HTTP/1.1"') and got[0].startswith("127.0.0.1:")
                assert query(sock, "show events nope").strip() == "No such event sink"
            if kind == "lb":  # (the stats socket is opened by the process's main)
                with RawBackend(answer_ok) as srv, \
                        LbProcess(text, {"s1": srv.port}) as px:
                    body(px)
            else:
                _run(kind, text, body)
    finally:
        rx.close()


# ---------------------------------------------------------------- the section, checked


RING_ERRORS = [
    "ring\n",
    "ring r\n  description\n",
    "ring r\n  format bogus\n",
    "ring r\n  format\n",
    "ring r\n  maxlen abc\n",
    "ring r\n  maxlen 0\n",
    "ring r\n  size 10\n",
    "ring r\n  maxlen 100000\n",
    "ring r\n  bogus 1\n",
    "ring r\n  timeout connect\n",
    "ring r\n  timeout connect abc\n",
    "ring r\n  timeout server 10x\n",
    "ring r\n  server\n",
    "ring r\n  server x\n",
    "ring r\n  server a 127.0.0.1:1 log-proto foo\n",
    "ring r\n  server a 127.0.0.1:1 log-proto\n",
    "ring r\nring r\n",
    "ring stdout\n",
]


@pytest.mark.skipif(not os.path.exists(HAPROXY), reason="needs haproxy")
@pytest.mark.parametrize("text", RING_ERRORS, ids=[t.replace("\n", "|") for t in RING_ERRORS])
def test_ring_messages_match_haproxy(tmp_path, capsys, text: str) -> None:  # type: ignore[no-untyped-def]
    assert_text_like_haproxy(tmp_path, capsys, text)


def test_unknown_ring_is_refused_at_load(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """HAProxy 2.6.12 says this when it starts (`-c` passes); lb when it loads."""
    path = tmp_path / "u.cfg"
    path.write_text("global\n  log ring@nope local0\nfrontend f\n  bind 127.0.0.1:18080\n"
                    "  log ring@nope2 local0\n")
    assert check_mode(parse_args(["-c", "-f", str(path)])) != 0
    err = capsys.readouterr().err
    assert (f"global log server declared in file '{path}' at line 2 uses unknown ring "
            "named 'nope'.") in err
    assert (f"log server declared in proxy section 'f' in file '{path}' at line 5 uses "
            "unknown ring named 'nope2'.") in err


# ---------------------------------------------------------------- the forwarder alone


def _ring(port: int, **kw: object) -> logring.RingRT:
    model = Ring("t", "t", "raw", 16384, 16384, servers=(RingServer("s", "127.0.0.1", port),),
                 **kw)  # type: ignore[arg-type]
    return logring.RingRT(model)


def test_lines_beyond_the_ring_size_are_dropped_and_counted() -> None:
    """While the server refuses, lines queue up to the ring's size; the rest are
    dropped and counted; the ring itself keeps its last 16384 bytes."""
    async def go() -> tuple[int, int, int]:
        rx = TcpSyslog(listen=False)
        ring = _ring(rx.port, timeout_connect=0.5)
        try:
            for i in range(40):
                ring.add(b"%04d" % i + b"x" * 995)  # 1,000 bytes: 1,001 framed
            await asyncio.sleep(0.2)
            (fwd,) = ring.forwarders
            return ring.dropped, len(fwd.queue), len(ring.lines)
        finally:
            ring.close()
            rx.close()
    assert asyncio.run(go()) == (24, 16, 16)


def test_timeout_server_gives_up_a_connection_not_read() -> None:
    """`timeout server`: written lines left unread that long (the transport paused
    its writer) abort the connection, which is opened again for the next lines."""
    async def go() -> tuple[bool, int]:
        rx = TcpSyslog()
        ring = _ring(rx.port, timeout_server=0.2)
        try:
            ring.add(b"first")
            (fwd,) = ring.forwarders
            for _ in range(100):
                if fwd.transport is not None:
                    break
                await asyncio.sleep(0.01)
            assert fwd.transport is not None
            fwd.pause_writing()  # what the transport does once the kernel stops taking
            await asyncio.sleep(0.4)
            aborted = fwd.transport is None
            ring.add(b"second")  # queued: a new connection is made a second later
            for _ in range(300):
                if b"second" in rx.data:
                    break
                await asyncio.sleep(0.01)
            return aborted, rx.data.count(b"\n")
        finally:
            ring.close()
            rx.close()
    assert asyncio.run(go()) == (True, 2)
