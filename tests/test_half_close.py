"""Half-closed tunnels, side by side with HAProxy 2.6.12: which timeout applies once
one side has sent its FIN, the termination state logged, and whether the other
direction stays open.

Observed on HAProxy 2.6.12 (the cases below, run against both):
- the client's FIN is relayed to the server, which may still answer; the wait is
  then bounded by ``timeout server-fin`` (else the tunnel timeout) and logged `sD`,
  in TCP and HTTP mode alike. ``timeout client-fin`` plays no part there.
- in TCP mode the server's FIN is relayed to the client, which may still send; the
  wait is bounded by ``timeout client-fin`` (else the tunnel timeout), logged `cD`.
- in HTTP mode (a WebSocket tunnel) the server's FIN ends the tunnel at once,
  logged `----`: the client's later bytes are refused and never reach the server.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from dataclasses import dataclass, field

import pytest

from lb.http import h1
from tests.lbproc import RawBackend
from tests.support_e2e import HAPROXY, UdpLog, lb_or_haproxy

KINDS = ("lb", "haproxy") if shutil.which(HAPROXY) else ("lb",)
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
HANDSHAKE = (b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
             b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + KEY + b"\r\n\r\n")
SWITCH = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Accept: " + h1.ws_accept(KEY) + b"\r\n\r\n")


def _config(mode: str, timeouts: str, log_port: int) -> str:
    return f"""
global
  log 127.0.0.1:{log_port} local0
defaults
  mode {mode}
  log global
  option {mode}log
  timeout client 5s
  timeout server 5s
  timeout connect 1s
  {timeouts}
frontend fe
  bind 127.0.0.1:@@fe@@
  default_backend b
backend b
  server s1 127.0.0.1:@@s1@@
"""


@dataclass
class Seen:
    """What one run showed: the log line's state and Ta, the client's view."""
    state: str = ""
    ta_ms: int = -1
    eof_after: float = -1.0  # seconds from the FIN to the proxy's close/FIN
    late_send_ok: bool = False
    server_got: list[bytes] = field(default_factory=list)


def _log_line(log: UdpLog, timeout: float = 8.0) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log.sock.settimeout(max(0.01, deadline - time.monotonic()))
        data = log.sock.recv(65536)
        if b" fe b/" in data:
            return data
    raise AssertionError("no log line")


def _state_and_ta(line: bytes, mode: str) -> tuple[str, int]:
    words = line.split(b"] ", 1)[1].split()
    timers = words[2].split(b"/")
    state = words[4] if mode == "tcp" else words[7]
    return state.decode(), int(timers[-1].lstrip(b"+"))


def _run(kind: str, mode: str, timeouts: str, who_fins: str) -> Seen:
    seen = Seen()
    done = threading.Event()

    def server(c: socket.socket, rb: RawBackend) -> None:
        c.settimeout(8)
        if mode == "http":
            rb.recv_head(c)
            c.sendall(SWITCH)
        else:
            c.recv(100)
            c.sendall(b"hi")
        if who_fins == "server":
            c.shutdown(socket.SHUT_WR)
        while d := c.recv(100):
            seen.server_got.append(d)
        done.wait(6)  # mute, its side still open, until the test ends

    log = UdpLog()
    try:
        with RawBackend(server) as rb, \
                lb_or_haproxy(kind, _config(mode, timeouts, log.port), {"s1": rb.port}) as px:
            with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=8) as c:
                c.sendall(HANDSHAKE if mode == "http" else b"hello")
                first = c.recv(1000)
                assert first.startswith(b"HTTP/1.1 101" if mode == "http" else b"hi"), first
                if who_fins == "client":
                    t0 = time.monotonic()
                    c.shutdown(socket.SHUT_WR)
                    while c.recv(100):
                        pass
                    seen.eof_after = time.monotonic() - t0
                else:
                    while c.recv(100):
                        pass  # the server's FIN, relayed
                    time.sleep(0.1)
                    try:
                        c.sendall(b"late")
                        time.sleep(0.2)
                        c.sendall(b"later")
                        seen.late_send_ok = True
                    except OSError:
                        pass
                # (read while the client's socket is open: its close would end it)
                seen.state, seen.ta_ms = _state_and_ta(_log_line(log), mode)
            done.set()
    finally:
        done.set()
        log.close()
    return seen


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode", ["tcp", "http"])
def test_client_fin_waits_server_fin_then_sd(kind: str, mode: str) -> None:
    seen = _run(kind, mode, "timeout tunnel 3s\n  timeout server-fin 300ms", "client")
    assert 0.25 < seen.eof_after < 1.5, seen
    assert seen.state[:2] == "sD", seen
    assert 250 < seen.ta_ms < 1500, seen


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode", ["tcp", "http"])
def test_client_fin_ignores_client_fin_timeout(kind: str, mode: str) -> None:
    """client-fin is the client's own side: after the client's FIN the tunnel timeout
    still bounds the server's silence."""
    seen = _run(kind, mode, "timeout tunnel 1200ms\n  timeout client-fin 200ms", "client")
    assert 1.1 < seen.eof_after < 3, seen
    assert seen.state[:2] == "sD", seen


@pytest.mark.parametrize("kind", KINDS)
def test_tcp_server_fin_waits_client_fin_then_cd(kind: str) -> None:
    """The client may still send after the server's FIN (its bytes at +0.1 s and
    +0.3 s reach the server); then client-fin, not the tunnel timeout, ends it."""
    seen = _run(kind, "tcp", "timeout tunnel 3s\n  timeout client-fin 500ms", "server")
    assert seen.late_send_ok, seen
    assert b"".join(seen.server_got) == b"latelater", seen
    assert seen.state == "cD", seen
    assert 700 < seen.ta_ms < 2000, seen


@pytest.mark.parametrize("kind", KINDS)
def test_tcp_server_fin_keeps_the_client_direction_open(kind: str) -> None:
    seen = _run(kind, "tcp", "timeout tunnel 1s\n  timeout server-fin 200ms", "server")
    assert seen.late_send_ok, seen
    assert b"".join(seen.server_got) == b"latelater", seen
    assert seen.state == "cD", seen
    assert 1200 < seen.ta_ms < 3000, seen  # the tunnel timeout after "later"


@pytest.mark.parametrize("kind", KINDS)
def test_http_tunnel_ends_at_the_server_fin(kind: str) -> None:
    seen = _run(kind, "http", "timeout tunnel 3s\n  timeout client-fin 2s", "server")
    assert seen.state == "----", seen
    assert seen.ta_ms < 500, seen
    assert not seen.late_send_ok and seen.server_got == [], seen
