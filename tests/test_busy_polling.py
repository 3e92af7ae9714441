"""`busy-polling` (global): the process polls without sleeping, and stops doing so at a
soft stop, as HAProxy 2.6 does (its do_soft_stop_now() clears the option so that an
old process draining connections leaves the CPU to its successor; the master of
master-worker mode never busy-polls).

What is asserted is behaviour a user can see: `show info` reports `BusyPolling: 1`
(HAProxy 2.6.12 reports the same for the same configuration), the process burns CPU
while idle, traffic still flows, and after SIGUSR1 the draining process goes quiet
while its WebSocket keeps working. CPU time comes from /proc/<pid>/stat; the bounds
leave room for a loaded 2-core machine (an idle lb uses well under 5% of a core, a
busy-polling one close to 100%).
"""

from __future__ import annotations

import os
import signal
import tempfile
import time

import pytest
from websockets.sync.client import connect as ws_connect

from tests.backends import HttpBackend, WsBackend
from tests.lbproc import LbProcess, raw_request
from tests.stats_support import query, wait_socket

pytestmark = pytest.mark.timeout(60)

CFG = """
global
{busy}
    stats socket {sock} level admin
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    timeout tunnel 30s
frontend fe
    bind 127.0.0.1:@@fe@@
    acl ws hdr(upgrade) -i websocket
    use_backend bws if ws
    http-request return status 200 content-type text/plain string ok if !ws
backend bws
    server w1 127.0.0.1:@@ws@@
"""

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def cpu_over(pid: int, seconds: float) -> float:
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return cpu_seconds(pid) - before


def info(sock: str) -> dict[str, str]:
    wait_socket(sock)  # the stats socket is bound just after the listeners
    return dict(line.split(": ", 1) for line in query(sock, "show info").splitlines()
                if ": " in line)


@pytest.mark.parametrize("busy", [True, False])
def test_busy_polling_shows_in_info_and_spins(busy: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp, WsBackend() as wsb:
        sock = os.path.join(tmp, "lb.sock")
        text = CFG.format(busy="    busy-polling" if busy else "", sock=sock)
        with LbProcess(text, ports={"ws": wsb.port}) as lb:
            assert info(sock)["BusyPolling"] == ("1" if busy else "0")
            resp = raw_request(lb.ports["fe"], b"GET / HTTP/1.1\r\nHost: t\r\n"
                               b"Connection: close\r\n\r\n")
            assert resp.startswith(b"HTTP/1.1 200") and resp.endswith(b"ok")
            used = cpu_over(lb.pid, 1.0)
            if busy:
                assert used > 0.3, used
            else:
                assert used < 0.1, used


def test_no_busy_polling_cancels_it() -> None:
    with tempfile.TemporaryDirectory() as tmp, WsBackend() as wsb:
        sock = os.path.join(tmp, "lb.sock")
        text = CFG.format(busy="    busy-polling\n    no busy-polling", sock=sock)
        with LbProcess(text, ports={"ws": wsb.port}) as lb:
            assert info(sock)["BusyPolling"] == "0"
            assert cpu_over(lb.pid, 1.0) < 0.1


def test_soft_stop_ends_busy_polling_while_draining() -> None:
    with tempfile.TemporaryDirectory() as tmp, WsBackend() as wsb:
        sock = os.path.join(tmp, "lb.sock")
        text = CFG.format(busy="    busy-polling", sock=sock)
        with LbProcess(text, ports={"ws": wsb.port}) as lb:
            with ws_connect(f"ws://127.0.0.1:{lb.ports['fe']}/chat", open_timeout=5) as ws:
                ws.send("before")
                assert ws.recv(timeout=5) == "before"
                assert cpu_over(lb.pid, 0.5) > 0.15  # spinning
                os.kill(lb.pid, signal.SIGUSR1)
                lb.wait_for_line("Proxy fe stopped")
                time.sleep(0.2)
                assert lb.proc is not None and lb.proc.poll() is None  # still draining
                assert cpu_over(lb.pid, 1.0) < 0.1  # and sleeping in its poller again
                ws.send("while draining")
                assert ws.recv(timeout=5) == "while draining"
            assert lb.proc.wait(10) == 0


def test_master_worker_only_the_worker_spins_and_a_reload_hands_over() -> None:
    from tests.test_reload import Master

    with HttpBackend("web") as web, WsBackend("w1") as wsb:
        with Master(web.port, wsb.port, extra_global="    busy-polling") as m:
            assert info(os.path.join(m.run, "lb.sock"))["BusyPolling"] == "1"
            old, = [w["pid"] for w in m.ctl("workers")]
            assert cpu_over(old, 1.0) > 0.3
            assert cpu_over(m.lb.pid, 1.0) < 0.1  # the master sleeps in its poller
            with ws_connect(f"ws://127.0.0.1:{m.port}/old", open_timeout=10) as ws:
                m.reload(2)
                new, = [w["pid"] for w in m.ctl("workers") if w["current"]]
                assert new != old
                time.sleep(0.3)
                assert cpu_over(old, 1.0) < 0.1  # draining, no longer spinning
                assert cpu_over(new, 1.0) > 0.3
                ws.send("still here")
                assert ws.recv(timeout=5) == "still here"
