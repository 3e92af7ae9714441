"""Counters that tell the truth, checked against HAProxy 2.6.12 on the same traffic.

The same haproxy.cfg runs in HAProxy (/usr/sbin/haproxy) and in lb; one script sends
the same requests to both (keep-alive requests over two servers, a dead server with
retries, an invalid response, a server timeout, an `http-response deny`, a parser
400, a WebSocket session) and the `show stat` rows are compared column by column.
What this pins down (all seen on HAProxy 2.6.12):

- `connect` counts every connection attempt (4 for one request to a dead server with
  `retries 3`), and the server's `stot` counts a session per attempt;
- `reuse` is counted on the backend and on the server, and `http-reuse safe` (the
  default) never gives a client connection's first request an idle connection;
- a 502/503/504 made by the proxy is not in the server's `req_tot`/`hrsp_5xx` (the
  server's own answer is: a 200 denied by `http-response deny` is a 2xx there);
- the 101 is in `hrsp_1xx` of frontend, backend and server;
- a `retry-on 503` retry sent to another server counts as a retry (`wretr`) of the
  server it left and as a redispatch (`wredis`), and that 503 is not in its hrsp_5xx;
- `tcp-request content reject` and `http-request reject` count in `hrsp_other`; a
  frontend `tcp-request content reject` comes before the request is counted
  (`req_tot`), a backend one counts `dreq` on the frontend only; `intercepted`
  counts only the frontend's own replies (monitor-uri, return, redirect);
- a server silent in the middle of its body (`sD`) counts in `srv_abrt`; one that
  closes there (`SD`) in `srv_abrt` and `eresp`, one that closes before its head
  (`SH`, 502) in `eresp` only;
- an exchange that ends without a response (the client gives up during its upload,
  `CD`) counts in `hrsp_other` on the frontend and the backend, as rejects do;
- a server that resets its connection before its head counts twice in `eresp` (the
  read error, then the 502), once when it just closes;
- a request refused by the parser is in the frontend's `req_tot`, and so is a 408
  (silent connection or unfinished head), which also counts in `ereq`.

Byte columns are left out: HAProxy counts its internal (HTX) message sizes.
lb-only checks follow: live tunnel bytes on every level, the tunnel's idle time in
`show websockets`, and `show errors` holding the refused request and response.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable

import pytest
from websockets.sync.client import connect as ws_connect

from tests.backends import HttpBackend, WsBackend
from tests.lbproc import LbProcess, RawBackend, free_port
from tests.stats_support import query

pytestmark = pytest.mark.timeout(60)

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

CFG = """global
    stats socket {sock} mode 600 level admin
defaults
    mode http
    timeout connect 200ms
    timeout client 5s
    timeout server 5s
    timeout http-request 500ms
frontend fe
    bind 127.0.0.1:{fe}
    tcp-request content reject if {{ path /ferej }}
    http-request reject if {{ path /hrej }}
    monitor-uri /mon
    http-request redirect location /x if {{ path /redir }}
    use_backend btcp if {{ path_beg /btcp }}
    use_backend bdead if {{ path /dead }}
    use_backend bbad if {{ path /bad }}
    use_backend bslow if {{ path /slow }}
    use_backend bdeny if {{ path /rdeny }}
    use_backend bws if {{ path /ws }}
    use_backend bretry if {{ path /retry }}
    use_backend bsd if {{ path /sd }}
    use_backend bsh if {{ path /sh }}
    use_backend bcut if {{ path /cut }}
    use_backend bup if {{ path /up }}
    use_backend brst if {{ path /rst }}
    default_backend be
backend be
    server s1 127.0.0.1:{p1}
    server s2 127.0.0.1:{p2}
backend bdead
    server d1 127.0.0.1:{dead}
backend bbad
    server x1 127.0.0.1:{bad}
backend bslow
    timeout server 300ms
    server w1 127.0.0.1:{slow}
backend bdeny
    http-response deny if {{ status 200 }}
    server r1 127.0.0.1:{p1}
backend bws
    timeout tunnel 5s
    server ws1 127.0.0.1:{ws}
backend btcp
    tcp-request content reject if {{ path /btcp/rej }}
    http-request reject if {{ path /btcp/hrej }}
    http-request return status 200 if {{ path /btcp/ret }}
    redirect location /y if {{ path /btcp/redir }}
    server t1 127.0.0.1:{p1}
backend bsh
    server h1 127.0.0.1:{sh}
backend bcut
    server c1 127.0.0.1:{cut}
backend bup
    server u1 127.0.0.1:{up}
backend brst
    server rs1 127.0.0.1:{rst}
backend bsd
    timeout server 300ms
    server sd1 127.0.0.1:{sd}
backend bretry
    balance first
    retry-on 503
    retries 2
    option redispatch 1
    server busy 127.0.0.1:{busy}
    server ok 127.0.0.1:{p2}
"""

COLUMNS = ["stot", "dreq", "ereq", "econ", "eresp", "wretr", "wredis", "lbtot",
           "hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other",
           "req_tot", "cli_abrt", "srv_abrt", "conn_tot", "intercepted", "connect",
           "reuse", "scur", "dresp", "wrew", "eint", "qcur", "qmax"]


def rows(sock: str) -> dict[tuple[str, str], dict[str, str]]:
    lines = [x for x in query(sock, "show stat").splitlines() if x]
    names = lines[0][2:].split(",")
    return {tuple(x.split(",")[:2]): dict(zip(names, x.split(","), strict=False))  # type: ignore[misc]
            for x in lines[1:]}


def until_close(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                return out
            out += d


def read_one(s: socket.socket) -> bytes:
    """One response with a Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    while len(body) < n:
        body += s.recv(65536)
    return head


def traffic(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        for _ in range(3):  # s1, s2, s1 again (an idle connection reused)
            s.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_one(s).startswith(b"HTTP/1.1 200")
    close = b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    for _ in range(2):  # first requests of their connections: never an idle one
        assert until_close(port, b"GET /b" + close).startswith(b"HTTP/1.1 200")
    assert until_close(port, b"GET /dead" + close).startswith(b"HTTP/1.1 503")
    assert until_close(port, b"GET /bad" + close).startswith(b"HTTP/1.1 502")
    assert until_close(port, b"GET /slow" + close).startswith(b"HTTP/1.1 504")
    assert until_close(port, b"GET /rdeny" + close).startswith(b"HTTP/1.1 502")
    # rejects (silent closes), local replies of the frontend and of a backend
    for path in ("/ferej", "/hrej", "/btcp/rej", "/btcp/hrej"):
        assert until_close(port, b"GET " + path.encode() + close) == b""
    assert until_close(port, b"GET /mon" + close).startswith(b"HTTP/1.1 200")
    assert until_close(port, b"GET /redir" + close).startswith(b"HTTP/1.1 302")
    assert until_close(port, b"GET /btcp/ret" + close).startswith(b"HTTP/1.1 200")
    assert until_close(port, b"GET /btcp/redir" + close).startswith(b"HTTP/1.1 302")
    # a server silent in the middle of its body (sD): a server abort
    assert until_close(port, b"GET /sd" + close).endswith(b"partial")
    # the server closes before its head (SH: eresp only), or in the middle of its
    # Content-Length body (SD: eresp and srv_abrt)
    assert until_close(port, b"GET /sh" + close).startswith(b"HTTP/1.1 502")
    assert until_close(port, b"GET /cut" + close).endswith(b"partial")
    # the client gives up in the middle of its upload (CD)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"u" * 10)
        time.sleep(0.3)
    # the server resets its connection before its head (SH, 502)
    assert until_close(port, b"GET /rst" + close).startswith(b"HTTP/1.1 502")
    # retry-on 503: the busy server's 503 is retried on the next one
    assert until_close(port, b"GET /retry" + close).startswith(b"HTTP/1.1 200")
    assert until_close(port, b"GET / HTTP/1.1\r\nHo st: x\r\n\r\n").startswith(
        b"HTTP/1.1 400")
    # a silent connection and a head left unfinished: 408, in ereq and req_tot
    assert until_close(port, b"").startswith(b"HTTP/1.1 408")
    assert until_close(port, b"GET / HTTP/1.1\r\nHost: x\r\n").startswith(b"HTTP/1.1 408")
    with ws_connect(f"ws://127.0.0.1:{port}/ws", open_timeout=5) as ws:
        ws.send("hello")
        assert ws.recv(5) == "hello"


def _bad(c: socket.socket, rb: RawBackend) -> None:
    rb.recv_head(c)
    c.sendall(b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n")


def _slow(c: socket.socket, rb: RawBackend) -> None:
    rb.recv_head(c)
    time.sleep(1.0)


def _then_close(sent: bytes, wait: float) -> Callable[[socket.socket, RawBackend], None]:
    """A server that answers `sent` to a request, waits, then closes."""
    def handler(c: socket.socket, rb: RawBackend) -> None:
        rb.recv_head(c)
        if sent:
            c.sendall(sent)
        time.sleep(wait)
        c.close()
    return handler


def _drain(c: socket.socket, rb: RawBackend) -> None:
    """Reads a request and its body until the proxy closes."""
    rb.recv_head(c)
    c.settimeout(3)
    try:
        while c.recv(65536):
            pass
    except OSError:
        pass
    c.close()


def _reset(c: socket.socket, rb: RawBackend) -> None:
    rb.recv_head(c)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
    c.close()


PARTIAL = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"
_stall = _then_close(PARTIAL, 1.0)  # silent past `timeout server`: sD
_cut = _then_close(PARTIAL, 0.1)  # closes inside its body: SD
_close_before_head = _then_close(b"", 0.0)  # SH


def settle(sock: str) -> dict[tuple[str, str], dict[str, str]]:
    deadline = time.monotonic() + 10
    while True:
        r = rows(sock)
        if all(v.get("scur") in ("0", "") for v in r.values()) or time.monotonic() > deadline:
            return r
        time.sleep(0.1)


def test_show_stat_counters_match_haproxy() -> None:
    assert os.path.exists(HAPROXY), "Debian haproxy is installed by tools/system_deps.py"
    with HttpBackend("s1") as s1, HttpBackend("s2") as s2, RawBackend(_bad) as bad, \
            RawBackend(_slow) as slow, RawBackend(_stall) as stall, WsBackend() as wsb, \
            RawBackend(_close_before_head) as sh, RawBackend(_cut) as cut, \
            RawBackend(_drain) as up, RawBackend(_reset) as rst, \
            HttpBackend("busy", handler=lambda r: (503, [], b"busy")) as busy:
        d = tempfile.mkdtemp(prefix="lbctr")
        kw = dict(p1=s1.port, p2=s2.port, dead=free_port(), bad=bad.port, slow=slow.port,
                  ws=wsb.port, busy=busy.port, sd=stall.port, sh=sh.port, cut=cut.port,
                  up=up.port, rst=rst.port)
        hport, hsock = free_port(), os.path.join(d, "h.sock")
        lport, lsock = free_port(), os.path.join(d, "l.sock")
        with open(os.path.join(d, "h.cfg"), "w") as f:
            f.write(CFG.format(sock=hsock, fe=hport, **kw))
        ha = subprocess.Popen([HAPROXY, "-f", os.path.join(d, "h.cfg"), "-db"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with LbProcess(CFG.format(sock=lsock, fe=lport, **kw)):
                assert wait_for(lambda: os.path.exists(hsock) and os.path.exists(lsock), 10)
                traffic(hport)
                traffic(lport)
                theirs, ours = settle(hsock), settle(lsock)
                diffs = {}
                for key, row in theirs.items():
                    for col in COLUMNS:
                        if row.get(col) != ours[key].get(col):
                            diffs[f"{key[0]}/{key[1]}.{col}"] = (row.get(col),
                                                                 ours[key].get(col))
                assert diffs == {}, diffs
                # the values the comparison rests on, spelled out
                assert ours[("bdead", "d1")]["connect"] == "4"
                assert ours[("bdead", "d1")]["stot"] == "4"
                assert ours[("bdead", "d1")]["hrsp_5xx"] == "0"
                assert ours[("bdead", "BACKEND")]["hrsp_5xx"] == "1"
                assert ours[("bbad", "x1")]["req_tot"] == "0"
                assert ours[("bdeny", "r1")]["hrsp_2xx"] == "1"
                assert ours[("be", "s1")]["reuse"] == "1"
                assert ours[("be", "BACKEND")]["connect"] == "4"
                assert ours[("bws", "ws1")]["hrsp_1xx"] == "1"
                assert ours[("bretry", "busy")]["wretr"] == "1"
                assert ours[("bretry", "busy")]["wredis"] == "1"
                assert ours[("bretry", "busy")]["hrsp_5xx"] == "0"
                assert ours[("bsd", "sd1")]["srv_abrt"] == "1"
                assert ours[("bsh", "h1")]["eresp"] == "1"
                assert ours[("bsh", "h1")]["srv_abrt"] == "0"
                assert ours[("bcut", "c1")]["eresp"] == "1"
                assert ours[("bcut", "c1")]["srv_abrt"] == "1"
                assert ours[("btcp", "BACKEND")]["hrsp_other"] == "2"
                assert ours[("bup", "BACKEND")]["hrsp_other"] == "1"  # CD: no response
                assert ours[("bup", "u1")]["cli_abrt"] == "1"
                assert ours[("brst", "rs1")]["eresp"] == "2"  # reset before the head
                assert ours[("btcp", "BACKEND")]["dreq"] == "1"  # http-request reject only
                assert ours[("fe", "FRONTEND")]["intercepted"] == "2"  # /mon, /redir
        finally:
            ha.send_signal(signal.SIGTERM)
            try:
                ha.wait(5)
            except subprocess.TimeoutExpired:
                ha.kill()
                ha.wait(5)


WS_CFG = """global
    stats socket @@SOCK@@ mode 600 level admin
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout tunnel 10s
frontend fe
    bind 127.0.0.1:@@fe@@
    use_backend bbad if { path /bad }
    default_backend bws
backend bws
    server ws1 127.0.0.1:@@ws@@
backend bbad
    server x1 127.0.0.1:@@bad@@
"""


def wait_for(pred: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def test_tunnel_counters_live_on_every_level_and_idle_time() -> None:
    sock = os.path.join(tempfile.mkdtemp(prefix="lbctr"), "s.sock")
    with WsBackend() as wsb, RawBackend(_bad) as bad, \
            LbProcess(WS_CFG.replace("@@SOCK@@", sock),
                      ports={"ws": wsb.port, "bad": bad.port}) as lb:
        port = lb.ports["fe"]
        assert wait_for(lambda: os.path.exists(sock))
        with ws_connect(f"ws://127.0.0.1:{port}/chat", open_timeout=5) as ws:
            ws.send("x" * 1000)
            assert len(ws.recv(5)) == 1000
            # while the tunnel is open: the 101 counted, tunnel bytes on all levels
            r = rows(sock)
            for key in (("fe", "FRONTEND"), ("bws", "BACKEND"), ("bws", "ws1")):
                assert r[key]["hrsp_1xx"] == "1", key
                assert int(r[key]["ws_bytes_in"]) >= 1000, key
                assert int(r[key]["ws_bytes_out"]) >= 1000, key
                assert int(r[key]["bin"]) >= 1000 and int(r[key]["bout"]) >= 1000, key
            time.sleep(1.2)
            data = json.loads(query(sock, "show websockets json"))
            (tun,) = data["tunnels"]
            assert tun["idle"] is not None and 1.0 <= tun["idle"] <= tun["age"]
            ws.send("y")
            assert ws.recv(5) == "y"
            tun = json.loads(query(sock, "show websockets json"))["tunnels"][0]
            assert tun["idle"] < 1.0
        r = rows(sock)
        assert r[("fe", "FRONTEND")]["hrsp_1xx"] == "1"  # not counted again at close
        assert r[("bws", "ws1")]["hrsp_1xx"] == "1"


def test_show_errors_keeps_refused_requests_and_invalid_responses() -> None:
    sock = os.path.join(tempfile.mkdtemp(prefix="lbctr"), "s.sock")
    with WsBackend() as wsb, RawBackend(_bad) as bad, \
            LbProcess(WS_CFG.replace("@@SOCK@@", sock),
                      ports={"ws": wsb.port, "bad": bad.port}) as lb:
        port = lb.ports["fe"]
        assert wait_for(lambda: os.path.exists(sock))
        assert query(sock, "show errors").startswith("Total events captured on")
        assert query(sock, "show errors").splitlines()[0].endswith(": 0")
        assert until_close(port, b"GET / HTTP/1.1\r\nHo st: x\r\n\r\n").startswith(
            b"HTTP/1.1 400")
        assert until_close(port, b"GET /bad HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                           b"\r\n").startswith(b"HTTP/1.1 502")
        out = query(sock, "show errors")
        assert out.splitlines()[0].endswith(": 2")
        # a head over tune.bufsize, arriving in pieces, is captured too
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /big HTTP/1.1\r\nX-Pad: ")
            for _ in range(5):
                time.sleep(0.02)
                s.sendall(b"a" * 4000)
            s.settimeout(5)
            assert s.recv(100).startswith(b"HTTP/1.1 400")
        assert query(sock, "show errors").splitlines()[0].endswith(": 3")
        assert "frontend fe (#2): invalid request" in out
        assert "backend bbad (#4): invalid response" in out
        assert "Ho st: x" in out and "Bad Header" in out
        req_only = query(sock, "show errors fe request")
        assert req_only.splitlines()[0].endswith(": 2") and "Ho st" in req_only
        assert "Bad Header" not in req_only


NO_TIMEOUTS = """
defaults
    mode http
frontend fe
    bind 127.0.0.1:@@fe@@
    default_backend bws
backend bws
    server ws1 127.0.0.1:@@ws@@
"""


def test_idle_time_without_any_tunnel_timeout() -> None:
    """No timeout at all (lb -c warns): the tunnel dates its activity itself."""
    from tests.lbproc import LbThread

    with WsBackend() as wsb, LbThread(NO_TIMEOUTS, ports={"ws": wsb.port}) as lb:
        with ws_connect(f"ws://127.0.0.1:{lb.ports['fe']}/", open_timeout=5) as ws:
            ws.send("a")
            assert ws.recv(5) == "a"
            (tun,) = lb.state.tunnels.values()
            assert tun.timeout is None
            time.sleep(0.6)
            idle = time.time() - tun.last_activity
            assert 0.5 <= idle < 5
            ws.send("b")
            assert ws.recv(5) == "b"
            assert time.time() - tun.last_activity < 0.5
