"""`disabled` / `enabled` on a proxy, compared with HAProxy 2.6.12.

A disabled proxy is never started: HAProxy checks nothing of it after the parse,
binds none of its addresses, checks none of its servers and leaves it out of
`show stat`; a request routed to a disabled backend gets a 503 without running
any of its rules, logged `SC` with the cookie flags `NN`.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from lb.config import load_text
from tests.backends import HttpBackend
from tests.lbproc import LbProcess, free_port, raw_request
from tests.stats_support import query, wait_socket
from tests.support_e2e import Haproxy, UdpLog
from tests.test_config_haproxy_diff import assert_text_like_haproxy

HEAD = ("defaults\n mode http\n timeout client 1s\n timeout server 1s\n"
        " timeout connect 1s\n")


@pytest.mark.parametrize("text", [
    # nothing of a disabled proxy is checked: unknown backends, duplicate servers,
    # names that do not resolve, missing timeouts
    "defaults\n mode http\nfrontend f\n bind 127.0.0.1:18290\n default_backend b\n"
    "frontend fd\n disabled\n bind 127.0.0.1:18290\n default_backend nosuch\n"
    " use_backend %[req.hdr(x)]\nbackend b\n disabled\n server s 127.0.0.1:1\n"
    " server s 127.0.0.1:2\n option httpchk\n http-check expect status 200\n"
    "listen l\n disabled\n server t nosuch.invalid:80\n",
    # inherited from defaults (no listener left: exit 2), undone by `enabled`
    HEAD + " disabled\nfrontend f\n bind 127.0.0.1:18291\n default_backend b\n"
    "backend b\n server s 127.0.0.1:1\n",
    HEAD + " disabled\nfrontend f\n bind 127.0.0.1:18291\n enabled\n default_backend b\n"
    "backend b\n enabled\n server s 127.0.0.1:1\n",
    HEAD + "frontend f\n bind 127.0.0.1:18291\n default_backend b\nbackend b\n"
    " server s 127.0.0.1:1\n disabled x\n",
    # `disabled` after the servers withdraws what was found in them
    HEAD + "frontend f\n bind 127.0.0.1:18291\n default_backend b\nbackend b\n"
    " server s 127.0.0.1:1\n server s 127.0.0.1:2\n disabled\n",
])
def test_check_like_haproxy(tmp_path, capsys, text):
    assert_text_like_haproxy(tmp_path, capsys, text)


def test_model():
    cfg = load_text(HEAD + "frontend f\n bind :80\n disabled\n default_backend b\n"
                    "backend b\n disabled\n cookie S insert\n server s 127.0.0.1:1 check\n"
                    " server t 127.0.0.1:1 id 7\n").config
    assert cfg is not None
    f, b = cfg.proxies
    assert f.disabled and f.binds == () and f.default_backend is None
    assert b.disabled and b.cookie is not None
    # never numbered (but a written id), never checked
    assert [(s.puid, s.check) for s in b.servers] == [(0, False), (7, False)]


CONFIG = """global
 stats socket {sock} level admin
defaults
 mode http
 option httplog
 log 127.0.0.1:@@log@@ local0
 timeout client 2s
 timeout server 2s
 timeout connect 1s
frontend fe
 bind 127.0.0.1:@@fe@@
 use_backend b2 if {{ path /b2 }}
 use_backend b3 if {{ path /b3 }}
 default_backend b
frontend fd
 bind 127.0.0.1:{fd}
 disabled
 default_backend b
backend b
 server s 127.0.0.1:@@srv@@
backend b2
 disabled
 cookie SRV insert
 http-request deny if {{ path /b2 }}
 server s 127.0.0.1:@@srv@@ cookie s1 check
backend b3
 disabled
"""


@pytest.mark.parametrize("kind", ["haproxy", "lb"])
def test_requests_to_a_disabled_backend(kind: str, tmp_path: Any) -> None:
    """503 before any of its rules (the deny does not apply), even with a valid
    persistence cookie; the disabled frontend's port is not bound."""
    sock = str(tmp_path / f"{kind}.sock")
    log = UdpLog()
    with HttpBackend("S") as srv:
        ports = {"log": log.port, "srv": srv.port}
        fd = free_port()  # (not a placeholder: nobody ever listens there)
        text = CONFIG.format(sock=sock, fd=fd)
        proxy: Any
        if kind == "lb":
            proxy = LbProcess(text, ports)
        else:
            proxy = Haproxy(text, ports, single_thread=True)
        with proxy:
            fe = proxy.ports["fe"]
            answers = [raw_request(fe, req) for req in (
                b"GET /b2 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
                b"GET /b2 HTTP/1.1\r\nhost: x\r\ncookie: SRV=s1\r\nconnection: close\r\n\r\n",
                b"GET /b3 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
                b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")]
            recs = log.records(4)
            with socket.socket() as s:
                assert s.connect_ex(("127.0.0.1", fd)) != 0
            wait_socket(sock)
            stat = query(sock, "show stat")
            state = query(sock, "show servers state")
        log.close()
    for raw in answers[:3]:
        assert raw.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert b"\r\nconnection: close\r\n" in raw
        assert b"No server is available to handle this request." in raw
    assert b"HTTP/1.0 200" in answers[3] or b"HTTP/1.1 200" in answers[3]
    assert [(r["be"], r["srv"], r["Tq"], r["Tw"], r["Tc"], r["Tr"], r["status"], r["tsc"])
            for r in recs] == [
        ("b2", "<NOSRV>", -1, -1, -1, -1, 503, "SCNN"),
        ("b2", "<NOSRV>", -1, -1, -1, -1, 503, "SCNN"),
        ("b3", "<NOSRV>", -1, -1, -1, -1, 503, "SC--"),
        ("b", "s", recs[3]["Tq"], recs[3]["Tw"], recs[3]["Tc"], recs[3]["Tr"], 200, "----")]
    assert all(t >= 0 for t in (recs[3]["Tq"], recs[3]["Tw"], recs[3]["Tc"], recs[3]["Tr"]))
    # disabled proxies have no stats rows; their servers are listed, unnumbered
    assert {r.split(",")[0] for r in stat.splitlines()[1:] if r} == {"fe", "b"}
    rows = [r.split(" ") for r in state.splitlines()[2:] if r]
    assert [(r[1], r[2], r[3], r[13]) for r in rows] == [("b", "1", "s", "0"),
                                                         ("b2", "0", "s", "0")]
