"""`mode tcp`: plain relay, routing on layer-4 fetches, connect failures, timeouts."""

from __future__ import annotations

import socket
import time

from tests.lbproc import LbThread, RawBackend

CFG = """
defaults
  mode tcp
  timeout client 2s
  timeout server 2s
  timeout connect 500ms
frontend f
  bind 127.0.0.1:@@fe@@
  default_backend echo
frontend fidle
  bind 127.0.0.1:@@idle@@
  timeout client 400ms
  default_backend echo
frontend fdead
  bind 127.0.0.1:@@dead_fe@@
  default_backend dead
backend echo
  server e1 127.0.0.1:@@echo@@
backend dead
  retries 1
  server d1 127.0.0.1:@@dead@@
"""


def _echo(c: socket.socket, rb: RawBackend) -> None:
    c.settimeout(10)
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
    c.close()


def test_tcp_relay_and_counters() -> None:
    dead = RawBackend(lambda c, rb: None)
    dead_port = dead.port
    dead.sock.close()
    with RawBackend(_echo) as rb, \
            LbThread(CFG, ports={"echo": rb.port, "dead": dead_port}) as lb:
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=5) as c:
            c.sendall(b"early bytes")  # sent before the server connection exists
            got = b""
            while len(got) < 11:
                got += c.recv(100)
            assert got == b"early bytes"
            big = b"z" * 300_000
            c.sendall(big)
            got = b""
            while len(got) < len(big):
                got += c.recv(65536)
            assert got == big
            c.shutdown(socket.SHUT_WR)
            assert c.recv(10) == b""
        t = lb.wait_txns(1)[0]
        assert (t.backend_name, t.server_name, t.term) == ("echo", "e1", b"--")
        assert t.bytes_in == 300_011 and t.bytes_out == 300_011
        srv = lb.state.backends["echo"].servers[0].counters
        assert srv.bin == 300_011 and srv.bout == 300_011 and srv.stot == 1
        assert srv.scur == 0

        # idle: closed by timeout client (inactivity), cD
        with socket.create_connection(("127.0.0.1", lb.ports["idle"]), timeout=5) as c:
            t0 = time.monotonic()
            assert c.recv(10) == b""
            assert 0.3 < time.monotonic() - t0 < 4
        assert lb.wait_txns(2)[1].term == b"cD"

        # refused server: retries then close, SC
        with socket.create_connection(("127.0.0.1", lb.ports["dead_fe"]), timeout=5) as c:
            assert c.recv(10) == b""
        t = lb.wait_txns(3)[2]
        assert (t.term, t.retries) == (b"SC", 1)
