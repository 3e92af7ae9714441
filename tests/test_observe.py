"""`observe`, `error-limit` and `on-error`: passive health analysis, compared with
HAProxy 2.6.12.

The table test drives lb.hana directly. The end-to-end test runs HAProxy and lb at
once on the same config, in front of one web server whose answer depends on the path
(a 500, a 404, the health check's 200) and of a port where nothing listens; it sends
both proxies the same requests and, after each step, compares what each stats socket
says about the servers and the state-change lines each sent to its syslog receiver.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from lb import hana
from tests.backends import HttpBackend, Request
from tests.lbproc import free_port, raw_request
from tests.stats_support import query
from tests.support_e2e import SideBySide
from tests.test_config_haproxy_diff import assert_text_like_haproxy

HAPROXY = "/usr/sbin/haproxy"


class _Srv:
    def __init__(self, observe: int, limit: int) -> None:
        self.observe = observe
        self.hana_errors = 0
        self.model = type("M", (), {"error_limit": limit})()
        self.counters = type("C", (), {"hanafail": 0})()
        self.calls: list[str] = []
        self.backend = type("B", (), {})()
        self.backend.state = type("S", (), {"health_analysis": self._hook})()

    def _hook(self, srv: Any, text: str) -> None:
        assert srv is self
        self.calls.append(text)


def test_what_each_mode_counts() -> None:
    """layer4 sees connections only; layer7 counts failed connections and every
    response, and ignores successful connections; a good one clears the count."""
    l4, l7 = _Srv(1, 3), _Srv(2, 3)
    for obs in (hana.HTTP_STS, hana.HTTP_STS, hana.HTTP_STS, hana.L4_ERR, hana.L4_OK,
                hana.L4_ERR, hana.L4_ERR):
        hana.observe(l4, obs)
    assert (l4.hana_errors, l4.calls) == (2, [])
    for obs in (hana.L4_ERR, hana.L4_OK, hana.HTTP_READ_TIMEOUT, hana.HTTP_STS):
        hana.observe(l7, obs)
    assert l7.calls == ["Detected 3 consecutive errors, last one was: Wrong http response"]
    assert (l7.hana_errors, l7.counters.hanafail) == (0, 1)
    for obs in (hana.HTTP_BROKEN_PIPE, hana.HTTP_READ_ERROR, hana.HTTP_OK,
                hana.HTTP_HDRRSP, hana.HTTP_HDRRSP):
        hana.observe(l7, obs)
    assert (l7.hana_errors, len(l7.calls)) == (2, 1)
    hana.observe(l7, hana.HTTP_HDRRSP)
    assert l7.calls[-1] == ("Detected 3 consecutive errors, last one was: Invalid http "
                            "response (headers)")


@pytest.mark.parametrize("status, good", [
    (100, True), (101, True), (200, True), (404, True), (499, True), (500, False),
    (501, True), (502, False), (503, False), (504, False), (505, True), (599, False),
])
def test_response_statuses(status: int, good: bool) -> None:
    assert (hana.status_of_response(status) == hana.HTTP_OK) is good


@pytest.mark.parametrize("server", [
    "server s 127.0.0.1:80 check observe",
    "server s 127.0.0.1:80 check observe layer5",
    "server s 127.0.0.1:80 check observe none",
    "server s 127.0.0.1:80 check on-error",
    "server s 127.0.0.1:80 check on-error explode",
    "server s 127.0.0.1:80 check error-limit",
    "server s 127.0.0.1:80 check error-limit x",
    "server s 127.0.0.1:80 check error-limit 0",
    "server s 127.0.0.1:80 observe layer4",  # no check
])
def test_config_texts_as_haproxy(server: str, tmp_path: Any, capsys: Any) -> None:
    assert_text_like_haproxy(tmp_path, capsys, (
        "defaults\n  mode http\n  timeout connect 1s\n  timeout client 1s\n"
        f"  timeout server 1s\nbackend b\n  {server}\n"))


def test_layer7_in_a_tcp_proxy_as_haproxy(tmp_path: Any, capsys: Any) -> None:
    assert_text_like_haproxy(tmp_path, capsys, (
        "defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 1s\n"
        "  timeout server 1s\nbackend b\n  server s 127.0.0.1:80 check observe layer7\n"))


def _web(req: Request) -> tuple[int, list[tuple[str, str]], bytes]:
    code = {"/500": 500, "/404": 404, "/501": 501}.get(req.path, 200)
    return code, [], b"x"


CONFIG = """
global
  stats socket {sock} level admin
  log 127.0.0.1:{log} local0
defaults
  mode http
  log global
  retries 0
  timeout connect 1s
  timeout client 5s
  timeout server 5s
  option httpchk GET /health
  default-server inter 1h
backend first
  server x 127.0.0.1:{web} check
backend b7
  server s7 127.0.0.1:{web} check observe layer7 error-limit 3 on-error mark-down
backend b4
  option log-health-checks
  server s4 127.0.0.1:{closed} check port {web} rise 1 fall 2 observe layer4 error-limit 2
backend bsd
  option log-health-checks
  server sd 127.0.0.1:{web} check observe layer7 error-limit 2 on-error sudden-death
backend bfi
  option log-health-checks
  server fi 127.0.0.1:{closed} check port {web} fastinter 300ms observe layer4 error-limit 1 on-error fastinter
backend bnc
  server nc 127.0.0.1:{web} observe layer7 error-limit 1
backend last
  server x 127.0.0.1:{web} check
frontend fe
  bind 127.0.0.1:{fe}
  use_backend %[req.hdr(x-be)]
"""

# Checks start spread over `inter` (1h here), the first one at once: lb starts with
# the first server declared, HAProxy with one in the last proxy declared. Each proxy
# spends it on a server of its own (the others are not checked during the test).
FIRST_CHECKED = ("first", "last")
FIELDS = ("svname", "status", "check_status", "last_chk", "chkfail", "chkdown",
          "hanafail", "lastchg")


def _servers(sock: str) -> dict[str, tuple[str, ...]] | None:
    rows = list(csv.reader(io.StringIO(query(sock, "show stat").lstrip("# "))))
    head = rows[0]
    out = {}
    for r in rows[1:]:
        d = dict(zip(head, r, strict=False))
        if not r or d["svname"] in ("FRONTEND", "BACKEND") or d["pxname"] in FIRST_CHECKED:
            continue
        if d["check_status"].startswith("* "):
            return None  # a check runs: look again
        d["lastchg"] = "0" if d["lastchg"] in ("0", "1") else "old"
        out[f"{d['pxname']}/{d['svname']}"] = tuple(d[f] for f in FIELDS)
    return out


class Pair(SideBySide):
    def __init__(self, tmp: str) -> None:
        self.web = HttpBackend("web", _web).__enter__()
        self.ports = {"h": free_port(), "l": free_port()}
        closed = free_port()
        super().__init__(tmp, lambda kind, sock, log: CONFIG.format(
            sock=sock, log=log, web=self.web.port, closed=closed, fe=self.ports[kind]))

    def settle(self) -> dict[str, tuple[str, ...]]:  # type: ignore[override]
        return super().settle(_servers)

    def send(self, be: str, path: str, n: int = 1) -> list[int]:
        """``n`` requests to both proxies; their statuses (the same from both)."""
        got = []
        for _ in range(n):
            answers = []
            for kind in ("h", "l"):
                res = raw_request(self.ports[kind], f"GET {path} HTTP/1.1\r\nHost: x\r\n"
                                  f"x-be: {be}\r\nConnection: close\r\n\r\n".encode())
                answers.append(int(res.split(b" ", 2)[1]))
            assert answers[0] == answers[1], (be, path, answers)
            got.append(answers[0])
        return got

    def lines(self) -> set[str]:
        """The state-change lines both sent since the last look (the same)."""
        time.sleep(0.2)
        h, lb = ({m for m in self.logs[k].take() if not m.startswith("Connect from ")}
                 for k in ("h", "l"))
        assert lb == h
        return h

    def close(self) -> None:
        super().close()
        self.web.__exit__(None, None, None)


@pytest.fixture
def pair(tmp_path: Any) -> Iterator[Pair]:
    assert os.path.exists(HAPROXY), "Debian haproxy is installed by tools/system_deps.py"
    p = Pair(str(tmp_path))
    yield p
    p.close()


def _f(rows: dict[str, tuple[str, ...]], srv: str, field: str) -> str:
    return rows[srv][FIELDS.index(field)]


def test_errors_seen_in_traffic_act_as_haproxy(pair: Pair) -> None:
    rows = pair.settle()
    pair.lines()
    # layer7, error-limit 3, mark-down: two 500s, a 404 (good: the count starts again),
    # then three 500s take the server down at once
    assert pair.send("b7", "/500", 2) + pair.send("b7", "/404") == [500, 500, 404]
    assert pair.send("b7", "/500", 2) == [500, 500]
    rows = pair.settle()
    assert _f(rows, "b7/s7", "status") == "UP 1/3" and _f(rows, "b7/s7", "hanafail") == "0"
    assert pair.send("b7", "/500") == [500]
    rows = pair.settle()
    assert _f(rows, "b7/s7", "status") == "DOWN"
    assert pair.lines() == {
        'Server b7/s7 is DOWN, reason: Health analyze, info: "Detected 3 consecutive '
        'errors, last one was: Wrong http response". 0 active and 0 backup servers left. '
        '1 sessions active, 0 requeued, 0 remaining in queue.',  # (the request that saw it)
        "backend b7 has no server available!"}

    # layer4, error-limit 2, fail-check (the default), rise 1 fall 2: each refused
    # connection counts; the server starts at `rise`, so one failed check is enough
    assert pair.send("b4", "/", 2) == [503, 503]
    rows = pair.settle()
    assert (_f(rows, "b4/s4", "status"), _f(rows, "b4/s4", "chkfail")) == ("DOWN", "1")
    assert pair.lines() == {
        'Health check for server b4/s4 failed, reason: Health analyze, info: "Detected 2 '
        'consecutive errors, last one was: L4 unsuccessful connection", status: 0/1 DOWN.',
        "Server b4/s4 is DOWN. 0 active and 0 backup servers left. 1 sessions active, "
        "0 requeued, 0 remaining in queue.",
        "backend b4 has no server available!"}

    # sudden-death: a fully healthy server (rise 2, fall 3) is left one failed check
    # from DOWN, where fail-check would have left it two
    assert pair.cli("set server bsd/sd health up") == "\n"
    pair.lines()
    assert pair.send("bsd", "/500", 2) == [500, 500]
    rows = pair.settle()
    assert _f(rows, "bsd/sd", "status") == "UP 1/3"
    assert pair.lines() == {
        'Health check for server bsd/sd failed, reason: Health analyze, info: "Detected 2 '
        'consecutive errors, last one was: Wrong http response", status: 1/3 UP.'}

    # on-error fastinter: the next check (1h away) runs `fastinter` after the error,
    # and changes nothing else
    rows = pair.settle()
    assert _f(rows, "bfi/fi", "check_status") == "INI"
    assert pair.send("bfi", "/") == [503]
    time.sleep(0.6)
    rows = pair.settle()
    assert (_f(rows, "bfi/fi", "check_status"), _f(rows, "bfi/fi", "hanafail"),
            _f(rows, "bfi/fi", "chkfail")) == ("L7OK", "1", "0")
    assert pair.lines() == {
        "Health check for server bfi/fi succeeded, reason: Layer7 check passed, code: 200, "
        "check duration: Nms, status: 3/3 UP."}

    # a server without a check is not observed (its counter shows, and stays 0)
    assert pair.send("bnc", "/500", 2) == [500, 500]
    rows = pair.settle()
    assert (_f(rows, "bnc/nc", "status"), _f(rows, "bnc/nc", "hanafail")) == ("no check", "0")


def test_workers_report_to_the_master_where_checks_run() -> None:
    """With two workers, the worker that saw the errors tells the master, whose
    checks mark the server down; every worker then stops using it."""
    from tests.test_reload import Master, http_get

    with HttpBackend("web", _web) as web:
        m = Master(web.port, web.port, extra_global="    nbthread 2")
        m.lb.text = m.lb.text.replace(
            "backend bweb\n", "backend bweb\n    option httpchk GET /health\n").replace(
            f"server s1 127.0.0.1:{web.port}\n",
            f"server s1 127.0.0.1:{web.port} check inter 1h observe layer7 error-limit 2 "
            "on-error mark-down\n")
        assert "observe layer7" in m.lb.text
        with open(m.lb.path, "w") as f:
            f.write(m.lb.text)
        with m:
            assert len(m.ctl("workers")) == 2
            # each worker counts its own errors: enough 500s for one of them to see two
            for _ in range(4):
                if http_get(m.port, "/500")[0] == 503:
                    break
            # the master tells each worker in turn: wait until neither uses it
            deadline = time.monotonic() + 10
            codes: list[int] = []
            while time.monotonic() < deadline:
                codes = [http_get(m.port)[0] for _ in range(4)]
                if codes == [503] * 4:
                    break
                time.sleep(0.1)
            assert codes == [503] * 4
            m.lb.wait_for_line('Server bweb/s1 is DOWN, reason: Health analyze, info: '
                               '"Detected 2 consecutive errors, last one was: Wrong http '
                               'response".', timeout=5)
            rows = list(csv.reader(io.StringIO(m.cli("show stat").lstrip("# "))))
            row = dict(zip(rows[0], next(r for r in rows if r[:2] == ["bweb", "s1"]),
                           strict=False))
            assert (row["status"], row["check_status"], row["chkdown"]) == ("DOWN", "HANA",
                                                                             "1")
