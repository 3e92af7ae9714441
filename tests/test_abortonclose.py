"""`option abortonclose` once the request is with the server, compared with HAProxy.

Seen on HAProxy 2.6.12, with a server that answers after one second and a client that
shuts its sending side 200 ms after its request:
- Without the option, the request is served. The half-closed client gets the 200,
  and the log says `200 ... ----`.
- With it, the server connection is reset at once, so the server's send fails with
  ECONNRESET. The client gets HAProxy's 400 page, and the log says
  `0/0/0/-1/200 400 206 ... CH--`.
- A client that closes completely is logged the same way.

While queued, the request ends silently instead (`CQ--`; tests/test_queue_e2e.py).
lb logs the same fields, `%B` included (tests/test_local_reply_bytes.py).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

import pytest

from tests.lbproc import RawBackend
from tests.support_e2e import HAPROXY, UdpLog, lb_or_haproxy
from tests.test_server_close_reset import config

pytestmark = pytest.mark.timeout(60)

KINDS = ["lb", "haproxy"] if os.path.exists(HAPROXY) else ["lb"]

LOGGED = "    log 127.0.0.1:@@log@@ local0\n    option httplog\n"


def slow_server(c: socket.socket, be: Any) -> None:
    """Answers one second after the request; records how its send and read went
    (``be.answered`` is set once the send was tried)."""
    be.recv_head(c, timeout=20)
    time.sleep(1.0)
    try:
        try:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        finally:
            be.answered.set()
        end = "fin" if c.recv(4096) == b"" else "more"
    except ConnectionResetError:
        end = "reset"
    be.ends.append(end)


def _wait_for(cond: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.02)


def half_closed_exchange(kind: str, option: str) -> tuple[bytes, list[str], dict[str, Any]]:
    """The client's bytes, how the server's connection ended, the log record.

    A reset (abortonclose) meets the server's answer at once. A served exchange
    leaves the server's connection idle in the proxy's pool, where both proxies keep
    it for as long as this test runs (`timeout server` is 10 s): it ends, with a
    FIN, when the proxy stops. Both are waited for explicitly, so that the server's
    thread has seen its end before the backend's sockets are closed."""
    log = UdpLog()
    be = RawBackend(slow_server)
    be.ends = []  # type: ignore[attr-defined]
    be.answered = threading.Event()  # type: ignore[attr-defined]
    try:
        with be:
            with lb_or_haproxy(kind, config(LOGGED + option),
                               {"s1": be.port, "log": log.port}) as px:
                with socket.create_connection(("127.0.0.1", px.ports["fe"]),
                                              timeout=5) as c:
                    c.sendall(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
                    time.sleep(0.2)
                    c.shutdown(socket.SHUT_WR)
                    with c.makefile("rb") as f:
                        got = f.read()  # until the proxy closes
                be.answered.wait(10)  # type: ignore[attr-defined]
                _wait_for(lambda: be.ends, 0.5)  # type: ignore[attr-defined]
                rec = log.records(1)[0]
                rec["raw"] = log.lines(1)[0]
            _wait_for(lambda: be.ends, 5)  # type: ignore[attr-defined]
        return got, list(be.ends), rec  # type: ignore[attr-defined]
    finally:
        log.close()


@pytest.mark.parametrize("kind", KINDS)
def test_abortonclose_resets_the_server_and_answers_400(kind: str) -> None:
    got, ends, rec = half_closed_exchange(kind, "    option abortonclose")
    assert got.startswith(b"HTTP/1.1 400 Bad request\r\n"), got
    assert b"connection: close\r\n" in got
    assert got.endswith(b"Your browser sent an invalid request.\n</body></html>\n")
    assert ends == ["reset"]
    assert (rec["status"], rec["tsc"], rec["srv"], rec["Tr"]) == (400, "CH--", "s1", -1)
    assert b" 400 206 - - CH-- " in rec["raw"], rec["raw"]
    assert 150 <= rec["Ta"] < 900


@pytest.mark.parametrize("kind", KINDS)
def test_without_abortonclose_a_half_closed_client_is_served(kind: str) -> None:
    got, ends, rec = half_closed_exchange(kind, "")
    assert got.startswith(b"HTTP/1.1 200 OK\r\n") and got.endswith(b"ok"), got
    assert ends == ["fin"]
    assert (rec["status"], rec["tsc"], rec["srv"]) == (200, "----", "s1")
    assert rec["Tr"] >= 900


@pytest.mark.parametrize("kind", KINDS)
def test_abortonclose_while_connecting_ends_silently(kind: str) -> None:
    """A server whose accept queue is full drops the proxy's SYN, so the connect
    hangs; the client's shutdown then ends the request with nothing sent, `CC--`."""
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    queued = [socket.create_connection(full.getsockname())]
    extra = socket.socket()
    extra.setblocking(False)
    extra.connect_ex(full.getsockname())
    log = UdpLog()
    try:
        with lb_or_haproxy(kind, config(LOGGED + "    option abortonclose"),
                           {"s1": full.getsockname()[1], "log": log.port}) as px:
            with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
                c.sendall(b"GET /cc HTTP/1.1\r\nHost: t\r\n\r\n")
                time.sleep(0.3)
                c.shutdown(socket.SHUT_WR)
                assert c.recv(65536) == b""
            rec = log.records(1)[0]
        assert (rec["status"], rec["tsc"], rec["srv"], rec["Tc"], rec["Tr"]) == (
            -1, "CC--", "s1", -1, -1)
    finally:
        log.close()
        for s in (*queued, extra, full):
            s.close()
