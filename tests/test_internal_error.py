"""A bug of lb's own met while handling a request is not blamed on the client or
the server: the client gets a 500 (HAProxy's internal-error answer, `I` in the
termination state), `eint` counts it, and the traceback reaches the operational
log. Before, such a fault in the request path answered 400 and counted a bad
request (`ereq`); in the response path, 502 and a bad response.

The fault is injected by making a function of the compression path raise: in-loop
lb only (the patch must reach lb's own process).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from lb.http import compress
from tests.lbproc import LbThread, RawBackend, raw_request
from tests.support_e2e import UdpLog

CONFIG = """
global
    log 127.0.0.1:{log} local0
defaults
    mode http
    log global
    option httplog
    timeout client 5s
    timeout server 5s
    timeout connect 2s
frontend f
    bind 127.0.0.1:@@fe@@
    compression algo gzip
    default_backend b
backend b
    server s1 127.0.0.1:@@s1@@
"""


def _answer(c: Any, rb: RawBackend, split: bool = False) -> None:
    """A 200 in one write (lb scans the whole response at once), or its head and its
    body apart (lb's httptools path reads the head alone first)."""
    rb.recv_head(c)
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\n"
    if split:
        c.sendall(head)
        time.sleep(0.05)
        c.sendall(b"ok")
    else:
        c.sendall(head + b"ok")
    c.close()


class _Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def error(self, event: str, **kw: Any) -> None:
        self.events.append((event, kw))


def _boom(*args: Any, **kw: Any) -> Any:
    raise RuntimeError("injected fault")


@pytest.mark.parametrize("where,term,split", [("choose", b"IR--", False),
                                              ("response_allows", b"IH--", False),
                                              ("response_allows", b"IH--", True)])
def test_a_fault_of_lbs_own_is_a_500_counted_in_eint(monkeypatch: pytest.MonkeyPatch,
                                                     where: str, term: bytes,
                                                     split: bool) -> None:
    import lb.log

    rec = _Recorder()
    monkeypatch.setattr(lb.log, "get_logger", lambda name=None: rec)
    log = UdpLog()
    with RawBackend(lambda c, rb: _answer(c, rb, split)) as srv, \
            LbThread(CONFIG.format(log=log.port), ports={"s1": srv.port}) as lb:
        port = lb.ports["fe"]
        ok = raw_request(port, b"GET / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n",
                         until_close=False, timeout=1)
        assert ok.startswith(b"HTTP/1.1 200") and b"content-encoding: gzip" in ok
        original = getattr(compress, where)
        monkeypatch.setattr(compress, where, _boom)
        got = raw_request(port, b"GET /x HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
        assert got.startswith(b"HTTP/1.1 500 Internal Server Error\r\n"), got
        assert b"connection: close" in got.lower()
        # the fault mended, the same proxy serves on
        monkeypatch.setattr(compress, where, original)
        again = raw_request(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert again.startswith(b"HTTP/1.1 200")
        fe = lb.state.frontends["f"].counters
        be = lb.state.backends["b"].counters
        assert (fe.eint, be.eint, fe.ereq, be.eresp) == (1, 1, 0, 0)
        assert fe.hrsp_5xx == 1
        lines = log.lines(3)
    assert [e for e, _ in rec.events] == ["internal_error"]
    kw = rec.events[0][1]
    assert kw["frontend"] == "f" and kw["backend"] == "b"
    assert isinstance(kw["exc_info"], RuntimeError)
    bad = [ln for ln in lines if b"GET /x " in ln]
    assert len(bad) == 1 and b" 500 " in bad[0] and term in bad[0], lines
