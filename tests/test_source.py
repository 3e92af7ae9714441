"""`source`: the local address (and port, port range, interface) of the connections to
the servers, as a backend keyword and as a server option.

Compared with HAProxy 2.6.12 on 127.0.0.1 (2026-11-25) with a backend that answers with
the peer address it saw: `source 127.0.0.2` in a backend made both the requests and the
health checks (`option httpchk`) come from 127.0.0.2; a server's `source
127.0.0.3:4100-4102` overrode the backend's, and four new connections came from ports
4100, 4101, 4102, then 4100 again. The configuration texts are compared live with
`haproxy -c`. `usesrc` (transparent proxying) is refused by lb (docs/config.md).
"""

from __future__ import annotations

import http.client
import socket
import time

import pytest

from lb.config import load_text
from tests.lbproc import LbProcess, RawBackend
from tests.test_config_haproxy_diff import HEAD, assert_check_like_haproxy

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("stmt", [
    "source", "source 127.0.0.2", "source 127.0.0.2:0", "source 127.0.0.2:1234",
    "source 127.0.0.2:1000-2000", "source 127.0.0.2 interface lo", "source 127.0.0.2 foo",
    "source 0.0.0.0", "source 127.0.0.2:70000", "source 127.0.0.2 interface",
    "source 127.0.0.2 usesrc", "source :1234", "source [::1]", "source localhost",
    "server t 127.0.0.1:80 source 127.0.0.2", "server t 127.0.0.1:80 source",
    "server t 127.0.0.1:80 source 127.0.0.2:1000-2000",
    "server t 127.0.0.1:80 source 127.0.0.2:2000-1000",
    "server t 127.0.0.1:80 source 127.0.0.2 interface lo", "default-server source 127.0.0.2",
])
def test_messages_match_haproxy(tmp_path, capsys, stmt):  # type: ignore[no-untyped-def]
    path = str(tmp_path / "s.cfg")
    with open(path, "w") as fh:
        fh.write(HEAD + "listen l\n bind :18080\n " + stmt + "\n server s 127.0.0.1:80\n")
    assert_check_like_haproxy(path, capsys)


@pytest.mark.parametrize("stmt", ["source 127.0.0.2 usesrc clientip",
                                  "server t 127.0.0.1:80 source 127.0.0.2 usesrc client"])
def test_transparent_proxying_is_refused(stmt: str) -> None:
    res = load_text(HEAD + "listen l\n bind :1\n " + stmt + "\n server s 127.0.0.1:80\n")
    assert not res.ok
    assert any("'source ... usesrc' (transparent proxying) is not supported by lb: servers "
               "would see lb's address instead of the client's." in d.message()
               for d in res.diagnostics)


def _free_range(addr: str, size: int) -> int:
    """The first of ``size`` consecutive ports that ``addr`` can bind now."""
    for base in range(47100, 60000, 7):
        socks = []
        try:
            for p in range(base, base + size):
                s = socket.socket()
                socks.append(s)
                s.bind((addr, p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no free port range")


CFG = """
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend f1
    bind 127.0.0.1:@@f1@@
    default_backend b1
frontend f2
    bind 127.0.0.1:@@f2@@
    default_backend b2
backend b1
    source 127.0.0.2
    option httpchk GET /chk
    server s 127.0.0.1:@@be@@ check inter 200
backend b2
    source 127.0.0.2
    server s 127.0.0.1:@@be@@ source 127.0.0.3:{low}-{high}
"""


class PeerBackend(RawBackend):
    """Answers each request with the address it came from, then closes (so a port of
    a source range is free again for its next round); records (path, peer)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, tuple[str, int]]] = []
        super().__init__(self._answer)

    def _answer(self, c: socket.socket, rb: RawBackend) -> None:
        peer = c.getpeername()[:2]
        head = self.recv_head(c)
        if not head:
            return c.close()
        path = head.split(b" ", 2)[1].decode()
        self.seen.append((path, peer))
        body = f"{peer[0]}:{peer[1]}".encode()
        c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
                  % len(body) + body)
        c.close()


def _peer(be: PeerBackend, port: int) -> tuple[str, int]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/x")
    r = c.getresponse()
    assert r.status == 200
    host, _, p = r.read().decode().rpartition(":")
    c.close()
    return host, int(p)


def test_connections_and_checks_come_from_the_source() -> None:
    low = _free_range("127.0.0.3", 3)
    with PeerBackend() as be, LbProcess(CFG.format(low=low, high=low + 2),
                                        ports={"be": be.port}) as lb:  # (checks run)
        deadline = time.monotonic() + 10  # the checks first (b1's server is up then)
        while sum(p == "/chk" for p, _ in be.seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        checks = {peer[0] for p, peer in be.seen if p == "/chk"}
        assert checks == {"127.0.0.2"}
        assert _peer(be, lb.ports["f1"])[0] == "127.0.0.2"
        ports = [_peer(be, lb.ports["f2"]) for _ in range(4)]
        assert ports == [("127.0.0.3", low), ("127.0.0.3", low + 1), ("127.0.0.3", low + 2),
                         ("127.0.0.3", low)]
