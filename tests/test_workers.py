"""All cores: `nbthread N` (or --workers N) runs N worker processes on the master's
sockets. Health checks run once (in the master) and their results reach every
worker; the stats socket sums the workers; admin commands reach every worker.
"""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from tests.backends import HttpBackend, Request, WsBackend
from tests.test_reload import Master, frontend_req_tot, http_get

pytestmark = pytest.mark.timeout(90)

CHECK = """    option httpchk GET /health
    default-server inter 400ms fall 1 rise 1
"""


class Web:
    """An HTTP backend whose /health can be turned bad; counts the checks."""

    def __init__(self) -> None:
        self.healthy = True
        self.checks = 0
        self.be = HttpBackend("web", handler=self.handle)

    def handle(self, req: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        if req.path == "/health":
            self.checks += 1
            return (200 if self.healthy else 500), [], b"ok"
        return 200, [("x-server", "web")], b"web"

    def __enter__(self) -> Web:
        self.be.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.be.stop()


def pids_seen(port: int, want: int, tries: int = 400) -> set[str]:
    seen: set[str] = set()
    for _ in range(tries):
        status, h = http_get(port)
        assert status == 200
        seen.add(h["x-pid"])
        if len(seen) >= want:
            break
    return seen


def wait_status(port: int, status: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    last = 0
    while time.monotonic() < deadline:
        last = http_get(port)[0]
        if last == status:
            return
        time.sleep(0.1)
    raise AssertionError(f"status {last}, wanted {status}")


def test_two_workers_share_the_sockets_checks_run_once_stats_sum() -> None:
    with Web() as web, WsBackend("w1") as wsb:
        m = Master(web.be.port, wsb.port, extra_global="    nbthread 2")
        m.lb.text = re.sub(r"(\nbackend bweb\n)(    server s1 \S+)", r"\1" + CHECK + r"\2 check",
                           m.lb.text)
        assert " check" in m.lb.text
        with open(m.lb.path, "w") as f:
            f.write(m.lb.text)
        with m:
            workers = m.ctl("workers")
            assert len(workers) == 2
            pids = {str(w["pid"]) for w in workers}
            assert str(m.lb.pid) not in pids
            # both workers serve
            seen = pids_seen(m.port, 2)
            assert seen == pids
            # health checks run once: about one check per `inter`, not two
            time.sleep(0.5)
            c0, t0 = web.checks, time.monotonic()
            time.sleep(3.0)
            rate = (web.checks - c0) / (time.monotonic() - t0)
            assert 1.0 <= rate <= 3.5, rate  # 2.5/s for one checker, 5/s for two
            # stats sum the workers: every request of ours is counted once
            base = frontend_req_tot(m.cli("show stat"))
            for _ in range(30):
                assert http_get(m.port)[0] == 200
            time.sleep(2.5)  # counters are pulled once a second
            assert frontend_req_tot(m.cli("show stat")) == base + 30
            info = m.cli("show info")
            assert "CumReq: " in info
            # a failing check reaches every worker: all answer 503
            web.healthy = False
            wait_status(m.port, 503)
            for _ in range(20):
                assert http_get(m.port)[0] == 503
            assert "DOWN" in m.cli("show servers state bweb") or \
                "DOWN" in m.cli("show stat")
            web.healthy = True
            wait_status(m.port, 200)
            # admin commands reach every worker
            assert m.cli("set server bweb/s1 state maint").strip() == ""
            wait_status(m.port, 503)
            for _ in range(20):
                assert http_get(m.port)[0] == 503
            m.cli("set server bweb/s1 state ready")
            wait_status(m.port, 200)
            for _ in range(20):
                assert http_get(m.port)[0] == 200


def test_workers_flag_and_reload_keeps_the_count() -> None:
    with HttpBackend("web") as web, WsBackend("w1") as wsb:
        with Master(web.port, wsb.port, args=("--workers", "2")) as m:
            assert len(m.ctl("workers")) == 2
            m.reload(2)
            current = [w for w in m.ctl("workers") if w["current"]]
            assert len(current) == 2 and {w["generation"] for w in current} == {2}
            assert len(pids_seen(m.port, 2)) == 2
            # SIGTERM to the master stops every worker, then the master
            pids = [w["pid"] for w in m.ctl("workers")]
            assert m.lb.stop(timeout=15) == 0
            for pid in pids:
                with pytest.raises(ProcessLookupError):
                    os.kill(pid, 0)


def test_master_sigusr1_drains_workers_then_exits() -> None:
    with HttpBackend("web") as web, WsBackend("w1") as wsb:
        with Master(web.port, wsb.port, extra_global="    nbthread 2") as m:
            pids = [w["pid"] for w in m.ctl("workers")]
            # SIGTTOU/SIGTTIN reach every worker; the stats socket shows PAUSED
            os.kill(m.lb.pid, signal.SIGTTOU)
            for pid in pids:
                m.lb.wait_for_line(f"[WARNING]  ({pid}) : Paused frontend fe.")
            assert ",PAUSED," in [ln for ln in m.cli("show stat").splitlines()
                                  if ln.startswith("fe,FRONTEND,")][0]
            os.kill(m.lb.pid, signal.SIGTTIN)
            for pid in pids:
                m.lb.wait_for_line(f"[WARNING]  ({pid}) : Resumed frontend fe.")
            assert http_get(m.port)[0] == 200
            os.kill(m.lb.pid, signal.SIGUSR1)
            assert m.lb.proc is not None
            assert m.lb.proc.wait(20) == 0
            for pid in pids:
                m.lb.wait_for_line(f"Current worker ({pid}) exited with code 0")
            text = "\n".join(m.lb.lines())
            assert text.count("Proxy fe stopped") >= 2


def test_a_crashed_worker_is_logged_and_the_others_keep_serving() -> None:
    with HttpBackend("web") as web, WsBackend("w1") as wsb:
        with Master(web.port, wsb.port, extra_global="    nbthread 2") as m:
            victim, other = (w["pid"] for w in m.ctl("workers"))
            assert len(pids_seen(m.port, 2)) == 2
            os.kill(victim, signal.SIGKILL)
            m.lb.wait_for_line(f"Current worker ({victim}) exited with code -9 (SIGKILL)")
            # no restart behind our back, and no connection is left hanging on the
            # dead worker's socket: every request is answered by the survivor
            assert [w["pid"] for w in m.ctl("workers")] == [other]
            for _ in range(30):
                status, h = http_get(m.port)
                assert status == 200 and h["x-pid"] == str(other)
            # a reload brings the worker count back
            m.reload(2)
            assert len([w for w in m.ctl("workers") if w["current"]]) == 2
            assert len(pids_seen(m.port, 2)) == 2
