"""The connection-mode matrix (spec §8.1): every pairing of a frontend's and a
backend's mode, against a server that honours ``Connection: close`` and one that
ignores it, run by lb and, where it is installed, by HAProxy.

The expected outcomes were observed on HAProxy 2.6.12 with this very probe:

- keep-alive on both proxies: both sides stay open, no ``Connection`` header added,
  one server connection for both requests;
- ``http-server-close`` or ``httpclose`` on the backend, or ``http-server-close`` on
  the frontend: ``connection: close`` upstream, one server connection per request,
  the client stays keep-alive (even when the server answers ``Connection: close``);
- ``httpclose`` on the frontend, whatever the backend: ``connection: close`` both
  ways, and the client connection ends after the first response. Server-side,
  HAProxy treats a frontend's ``httpclose`` like ``http-server-close``; lb did not
  until session 28 and pooled the server connection instead.

Clients that ask for something else:

- HTTP/1.1 with ``Connection: close``: the client's connection ends after the
  response (``connection: close``); upstream the request says ``close`` only where a
  proxy's mode closes the server side, and nothing in keep-alive mode;
- HTTP/1.0 without keep-alive: ``connection: close`` back and the end of the
  connection; upstream ``keep-alive`` in keep-alive mode, and no header at all
  where the server side closes (HTTP/1.0 closes by default), which lb did not match
  until session 28 (it said ``close``);
- HTTP/1.0 with ``Connection: keep-alive``: kept alive with ``connection:
  keep-alive`` on each response, except behind a frontend's ``httpclose``; upstream
  as for the other HTTP/1.0 client.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import pytest

from tests.lbproc import RawBackend
from tests.support_e2e import HAPROXY, lb_or_haproxy, one_backend_config

pytestmark = pytest.mark.timeout(60)

KINDS = ["lb", "haproxy"] if os.path.exists(HAPROXY) else ["lb"]
MODES = {"keep-alive": "", "server-close": "    option http-server-close",
         "httpclose": "    option httpclose"}
PAIRS = [(fe, be) for fe in MODES for be in MODES]
CLIENTS = {
    "1.1": b"GET / HTTP/1.1\r\nHost: t\r\n\r\n",
    "1.1-close": b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    "1.0": b"GET / HTTP/1.0\r\nHost: t\r\n\r\n",
    "1.0-keep-alive": b"GET / HTTP/1.0\r\nHost: t\r\nConnection: keep-alive\r\n\r\n",
}


def expected(fe: str, be: str, client: str) -> dict[str, Any]:
    """What HAProxy 2.6.12 did for two requests sent on one client connection."""
    both_keep_alive = fe == "keep-alive" and be == "keep-alive"
    if client == "1.0-keep-alive" and fe != "httpclose":
        if both_keep_alive:
            return {"client": ["keep-alive"] * 2, "upstream": ["keep-alive"] * 2,
                    "server_conns": 1}
        return {"client": ["keep-alive"] * 2, "upstream": [None, None], "server_conns": 2}
    if client.startswith("1.0"):
        return {"client": ["close", "EOF"],
                "upstream": ["keep-alive" if both_keep_alive else None], "server_conns": 1}
    if client == "1.1-close" or fe == "httpclose":
        return {"client": ["close", "EOF"],
                "upstream": [None if both_keep_alive else "close"], "server_conns": 1}
    if both_keep_alive:
        return {"client": [None, None], "upstream": [None, None], "server_conns": 1}
    return {"client": [None, None], "upstream": ["close", "close"], "server_conns": 2}


def config(fe: str, be: str) -> str:
    return one_backend_config(MODES[fe], MODES[be])


def recording_backend(honours_close: bool) -> RawBackend:
    def answer(c: socket.socket, be: RawBackend) -> None:
        while be.recv_head(c).endswith(b"\r\n\r\n"):
            head = be.received[-1].lower()
            close = honours_close and (
                b"\r\nconnection: close" in head
                or (head.startswith(b"get / http/1.0") and b"connection: keep-alive" not in head))
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                      + (b"Connection: close\r\n" if close else b"") + b"\r\nok")
            if close:
                c.close()
                return
    return RawBackend(answer)


def connection_header(message: bytes) -> str | None:
    for line in message.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"connection":
            return value.strip().decode()
    return None


def two_requests(port: int, request: bytes) -> list[str | None]:
    """The Connection header of each response, or "EOF" where the connection ended."""
    seen: list[str | None] = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        for _ in range(2):
            got = b""
            try:
                c.sendall(request)
                while not got.endswith(b"\r\n\r\nok"):
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    got += chunk
            except OSError:
                got = b""
            if not got:
                seen.append("EOF")
                break
            seen.append(connection_header(got))
    return seen


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("honours_close", [True, False], ids=["honours", "ignores"])
@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize(("fe", "be"), PAIRS, ids=[f"fe-{f}.be-{b}" for f, b in PAIRS])
def test_connection_mode_matrix(kind: str, honours_close: bool, client: str, fe: str,
                                be: str) -> None:
    text = config(fe, be)
    with recording_backend(honours_close) as srv, \
            lb_or_haproxy(kind, text, {"s1": srv.port}) as px:
        seen_client = two_requests(px.ports["fe"], CLIENTS[client])
        deadline = time.monotonic() + 2
        want = expected(fe, be, client)
        while srv.accepted < want["server_conns"] and time.monotonic() < deadline:
            time.sleep(0.02)
        seen = {"client": seen_client,
                "upstream": [connection_header(h) for h in srv.received if h],
                "server_conns": srv.accepted}
    assert seen == want


UPGRADES = {
    "Upgrade": b"Upgrade: websocket\r\nConnection: Upgrade\r\n",
    "keep-alive, Upgrade": b"Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n",
    "Upgrade, HTTP2-Settings": b"Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                               b"HTTP2-Settings: AAMAAABkAAQAAP__\r\n",
}
UPGRADE_SENT = {"Upgrade": "Upgrade", "keep-alive, Upgrade": "Upgrade",
                "Upgrade, HTTP2-Settings": "Upgrade, HTTP2-Settings"}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fe", list(MODES))
@pytest.mark.parametrize("client_value", list(UPGRADES))
def test_an_upgrade_request_keeps_its_connection_tokens(kind: str, fe: str,
                                                         client_value: str) -> None:
    """Whatever the mode, an upgrade request reaches the server with the client's own
    Connection tokens, spelled as sent, less `keep-alive` and `close`: an h2c upgrade
    keeps `HTTP2-Settings` (HAProxy 2.6.12; lb sent `upgrade` alone until session
    28). The server declines with a 426, so no tunnel follows."""
    def decline(c: socket.socket, be: RawBackend) -> None:
        while be.recv_head(c).endswith(b"\r\n\r\n"):
            c.sendall(b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 2\r\n\r\nno")

    text = config(fe, "keep-alive")
    request = (b"GET /up HTTP/1.1\r\nHost: t\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               b"Sec-WebSocket-Version: 13\r\n" + UPGRADES[client_value] + b"\r\n")
    with RawBackend(decline) as srv, lb_or_haproxy(kind, text, {"s1": srv.port}) as px:
        with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
            c.sendall(request)
            got = b""
            while not got.endswith(b"\r\n\r\nno"):
                chunk = c.recv(65536)
                assert chunk, got
                got += chunk
        assert got.startswith(b"HTTP/1.1 426 ")
        assert [connection_header(h) for h in srv.received] == [UPGRADE_SENT[client_value]]
