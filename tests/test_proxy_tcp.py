"""`mode tcp`: plain relay, routing on layer-4 fetches, connect failures, timeouts."""

from __future__ import annotations

import socket
import time

from tests.lbproc import LbThread, RawBackend, raw_request

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


BANNER_CFG = """
defaults
  timeout client 5s
  timeout server 5s
  timeout connect 1s
frontend ftcp
  mode tcp
  bind 127.0.0.1:@@tcp@@
  default_backend banner
frontend fhttp
  mode http
  bind 127.0.0.1:@@http@@
  default_backend eager
backend banner
  mode tcp
  server b1 127.0.0.1:@@banner@@
backend eager
  mode http
  server e1 127.0.0.1:@@eager@@
"""
ROUNDS = 150  # the bytes beat lb's attach on a few percent of connections


def _banner_then_echo(c: socket.socket, rb: RawBackend) -> None:
    """A server that speaks first (SMTP, MySQL...): banner at once, then echo."""
    c.settimeout(10)
    c.sendall(b"220 ready\r\n")
    while d := c.recv(65536):
        c.sendall(d)
    c.close()


def _banner_then_close(c: socket.socket, rb: RawBackend) -> None:
    c.sendall(b"421 busy\r\n")
    c.close()


def _answer_before_reading(c: socket.socket, rb: RawBackend) -> None:
    """An HTTP server that answers at once and reads the request afterwards."""
    c.settimeout(10)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nearly")
    rb.recv_head(c)
    c.close()


def _recv_until(c: socket.socket, n: int) -> bytes:
    got = b""
    while len(got) < n:
        d = c.recv(65536)
        if not d:
            break
        got += d
    return got


def test_bytes_a_server_sends_before_the_session_is_attached_are_relayed() -> None:
    # lb dropped such a connection as "unsolicited bytes on an idle connection"
    # whenever the server's first bytes arrived before its exchange was attached
    with RawBackend(_banner_then_echo) as banner, \
            LbThread(BANNER_CFG, ports={"banner": banner.port, "eager": banner.port}) as lb:
        for i in range(ROUNDS):
            with socket.create_connection(("127.0.0.1", lb.ports["tcp"]), timeout=5) as c:
                assert _recv_until(c, 11) == b"220 ready\r\n", i
                c.sendall(b"ping %d" % i)
                assert _recv_until(c, len(b"ping %d" % i)) == b"ping %d" % i
        assert {t.term for t in lb.wait_txns(ROUNDS)} == {b"--"}


def test_an_http_answer_sent_before_the_request_arrives_is_relayed() -> None:
    with RawBackend(_answer_before_reading) as eager, \
            LbThread(BANNER_CFG, ports={"banner": eager.port, "eager": eager.port}) as lb:
        for i in range(ROUNDS):
            out = raw_request(lb.ports["http"],
                              b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"early"), (i, out)
        assert {t.status for t in lb.wait_txns(ROUNDS)} == {200}


def test_a_banner_sent_just_before_the_server_closes_still_arrives() -> None:
    with RawBackend(_banner_then_close) as banner, \
            LbThread(BANNER_CFG, ports={"banner": banner.port, "eager": banner.port}) as lb:
        for i in range(ROUNDS // 3):
            with socket.create_connection(("127.0.0.1", lb.ports["tcp"]), timeout=5) as c:
                assert _recv_until(c, 100) == b"421 busy\r\n", i
