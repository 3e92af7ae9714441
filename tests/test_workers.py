"""All cores: `nbthread N` (or --workers N) runs N worker processes on the master's
sockets. Health checks run once (in the master) and their results reach every
worker; the stats socket sums the workers; admin commands reach every worker.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from tests.backends import HttpBackend, Request, WsBackend
from tests.stats_support import query
from tests.test_reload import Master, frontend_req_tot, http_get

pytestmark = pytest.mark.timeout(90)

CHECK = """    option httpchk GET /health
    default-server inter 200ms fall 1 rise 1
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


def wait_value(fetch: Callable[[], int], want: int, timeout: float = 15.0) -> int:
    """Poll fetch() until it returns want (or the timeout); the last value."""
    deadline = time.monotonic() + timeout
    got = fetch()
    while got != want and time.monotonic() < deadline:
        time.sleep(0.2)
        got = fetch()
    return got


def wait_status(port: int, status: int, timeout: float = 15.0, streak: int = 10) -> None:
    """Wait until `streak` requests in a row get `status`. The master pushes a
    server change to the workers one after the other, after its CLI has answered:
    on a busy machine the second worker may apply it a moment after the first one
    answers with it, so one matching answer does not mean every worker has it."""
    deadline = time.monotonic() + timeout
    last, run = 0, 0
    while time.monotonic() < deadline:
        last = http_get(port)[0]
        run = run + 1 if last == status else 0
        if run >= streak:
            return
        if not run:
            time.sleep(0.1)
    raise AssertionError(f"status {last}, wanted {status} {streak} times in a row")


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
            time.sleep(1.5)
            rate = (web.checks - c0) / (time.monotonic() - t0)
            assert 2.0 <= rate <= 7.0, rate  # 5/s for one checker, 10/s for two
            # stats sum the workers: every request of ours is counted once
            base = frontend_req_tot(m.cli("show stat"))
            for _ in range(30):
                assert http_get(m.port)[0] == 200
            # counters are pulled once a second (later on a busy machine)
            total = wait_value(lambda: frontend_req_tot(m.cli("show stat")), base + 30)
            assert total == base + 30, (total, base)
            time.sleep(1.5)  # and a later pull does not count them again
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
            old_ws = ws_connect(f"ws://127.0.0.1:{m.port}/old", open_timeout=10).__enter__()
            m.reload(2)
            current = [w for w in m.ctl("workers") if w["current"]]
            assert len(current) == 2 and {w["generation"] for w in current} == {2}
            assert len(pids_seen(m.port, 2)) == 2
            # `shutdown sessions server` reaches every worker, old generation included
            socks = [old_ws] + [ws_connect(f"ws://127.0.0.1:{m.port}/n{i}",
                                           open_timeout=10).__enter__() for i in range(4)]
            for i, ws in enumerate(socks):
                ws.send(f"m{i}")
                assert ws.recv(timeout=10) == f"m{i}"
            # `show sess` lists every worker's streams; `shutdown session` reaches the
            # worker that owns the stream
            def tunnel_lines() -> list[str]:
                return [ln for ln in m.cli("show sess").splitlines()
                        if " be=bws srv=w1 " in ln and "kind=tunnel" in ln]

            tunnels = tunnel_lines()
            deadline = time.monotonic() + 15
            while len(tunnels) != 5 and time.monotonic() < deadline:
                time.sleep(0.2)
                tunnels = tunnel_lines()
            assert len(tunnels) == 5, tunnels
            assert m.cli(f"shutdown session {tunnels[0].split(':')[0]}").strip() == ""
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                time.sleep(0.5)
                left = [ln for ln in m.cli("show sess").splitlines() if "kind=tunnel" in ln]
                if len(left) == 4:
                    break
            assert len(left) == 4, left
            assert m.cli("shutdown sessions server bws/w1").strip() == ""
            for ws in socks:
                with pytest.raises(ConnectionClosed):
                    ws.recv(timeout=10)
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
                m.lb.wait_for_line(f"Current worker ({pid}) exited with code 0 (Exit)")
            m.lb.wait_for_line("All workers exited. Exiting... (0)")
            text = "\n".join(m.lb.lines())
            assert text.count("Proxy fe stopped") >= 2


def test_master_sigusr1_refuses_new_connections_while_tunnels_drain() -> None:
    """HAProxy 2.6.12 -W: after SIGUSR1 to the master a new connection is refused at
    once while an open WebSocket goes on. lb's master kept its copy of the listening
    socket, so the kernel went on completing handshakes nobody would accept: clients
    hung until the last tunnel ended. The stats socket stops accepting too."""
    import socket

    with HttpBackend("web") as web, WsBackend("w1") as wsb:
        with Master(web.port, wsb.port) as m:
            ws = ws_connect(f"ws://127.0.0.1:{m.port}/chat", open_timeout=5).__enter__()
            os.kill(m.lb.pid, signal.SIGUSR1)
            m.lb.wait_for_line("Proxy fe stopped")
            deadline = time.monotonic() + 5
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", m.port), timeout=2) as c:
                        c.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                        c.recv(100)
                except ConnectionRefusedError:
                    break
                except (TimeoutError, OSError):
                    pass
                assert time.monotonic() < deadline, "new connections are not refused"
                time.sleep(0.1)
            with pytest.raises(OSError):
                query(os.path.join(m.run, "lb.sock"), "show info", timeout=2)
            ws.send("still here")
            assert ws.recv(timeout=5) == "still here"
            ws.close()
            assert m.lb.proc is not None and m.lb.proc.wait(20) == 0


def test_a_crashed_worker_is_logged_and_the_others_keep_serving() -> None:
    with HttpBackend("web") as web, WsBackend("w1") as wsb:
        with Master(web.port, wsb.port, extra_global="    nbthread 2") as m:
            victim, other = (w["pid"] for w in m.ctl("workers"))
            assert len(pids_seen(m.port, 2)) == 2
            os.kill(victim, signal.SIGKILL)
            # HAProxy's wording: 128 + signal number, and the signal's description
            m.lb.wait_for_line(f"[ALERT]    ({m.lb.pid}) : Current worker ({victim}) "
                               f"exited with code 137 (Killed)")
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


# ---------------------------------------------------------------- pure aggregation


def _state():  # type: ignore[no-untyped-def]
    from tests.lbproc import load

    return load("""
defaults
    mode http
    timeout connect 1s
    timeout client 1s
    timeout server 1s
frontend fe
    bind 127.0.0.1:1
    default_backend be
backend be
    server s1 127.0.0.1:2 weight 3
    server s2 127.0.0.1:3
""")


def _traffic(st, reqs: int, ws_closes: int = 0, cur: int = 0) -> None:  # type: ignore[no-untyped-def]
    c = st.frontends["fe"].counters
    for _ in range(reqs):
        c.session_start(1000.0)
        c.req_tot += 1
        c.count_status(200)
        c.session_end()
    c.scur += cur
    c.ws_close["client_closed"] += ws_closes
    c.ws_close_codes[1000] = c.ws_close_codes.get(1000, 0) + ws_closes
    st.cum_req += reqs


def test_totals_survive_generations_without_double_counting() -> None:
    from lb import master
    from lb.state import State

    cfg = _state()
    old = State(cfg)
    _traffic(old, 7, ws_closes=2, cur=1)
    m = master.Master.__new__(master.Master)  # only the aggregation part
    m.retired = master._new_total()
    m.var_pushes = 0
    w_old = master.Worker.__new__(master.Worker)
    w_old.snap, w_old.seed, w_old.exited, w_old.ready, w_old.current = (
        master.state_snapshot(old, 0.0, 1000.0, 1), {}, None, True, False)
    m.workers = [w_old]
    seed = m.cumulative_total()
    assert seed["fe"]["fe"]["req_tot"] == 7
    # the next generation starts from the totals...
    new = State(cfg)
    master.seed_state(new, seed)
    assert new.frontends["fe"].counters.req_tot == 7
    assert new.frontends["fe"].counters.ws_close_codes == {1000: 2}
    assert new.frontends["fe"].counters.scur == 0  # gauges are not seeded
    assert new.cum_req == 7
    _traffic(new, 5)
    new.proc_vars.values["proc.hits"] = 5  # the master shows the current worker's
    w_new = master.Worker.__new__(master.Worker)
    w_new.snap, w_new.seed, w_new.exited, w_new.ready, w_new.current = (
        master.state_snapshot(new, 0.0, 1001.0, 2), seed, None, True, True)
    m.workers = [w_old, w_new]
    total = m.cumulative_total()
    assert total["fe"]["fe"]["req_tot"] == 12  # 7 + 5, not 7 + 12
    assert total["fe"]["fe"]["ws_close"]["client_closed"] == 2
    assert total["proc"]["cum_req"] == 12
    # the old generation exits: its counts move to the retired totals
    w_old.ctl = "/nonexistent/worker.sock"  # no final snapshot file: the last pull
    w_old.exited = 0
    m._retire(w_old)
    assert m.retired["fe"]["fe"]["req_tot"] == 7
    assert m.cumulative_total()["fe"]["fe"]["req_tot"] == 12
    # the master's State shows the sum, gauges from live workers only
    view = State(cfg)
    m.state = view
    m.apply_aggregate()
    assert view.proc_vars.values == {"proc.hits": 5}
    c = view.frontends["fe"].counters
    assert (c.req_tot, c.hrsp_2xx, c.stot, c.scur) == (12, 12, 12, 0)
    assert c.ws_close_codes == {1000: 2}
    assert view.cum_req == 12


def test_server_states_pushed_to_a_worker_reach_its_balancer() -> None:
    from lb import master
    from lb.state import ADMIN_FMAINT, OP_STOPPED, State

    cfg = _state()
    ms, ws = State(cfg), State(cfg)
    s1 = ms.backends["be"].by_name["s1"]
    s1.set_admin(ADMIN_FMAINT, True, 5.0)
    s2 = ms.backends["be"].by_name["s2"]
    s2.set_operational(OP_STOPPED, 5.0)
    s2.check_status = "L4CON"
    msg = master.servers_message(ms)
    assert master.apply_servers(ws, msg["servers"], 6.0) == 2
    w1, w2 = ws.backends["be"].by_name["s1"], ws.backends["be"].by_name["s2"]
    assert w1.in_maint and not w1.usable
    assert w2.op == OP_STOPPED and w2.check_status == "L4CON"
    assert not ws.backends["be"].is_up
    assert master.apply_servers(ws, msg["servers"], 7.0) == 0  # idempotent
    s1.set_admin(ADMIN_FMAINT, False, 8.0)
    s1.set_weight(7, 8.0)
    assert master.apply_servers(ws, master.servers_message(ms)["servers"], 9.0) == 1
    assert w1.usable and (w1.uweight, w1.eweight) == (7, 7)
    assert master.apply_servers(ws, [{"be": "nope", "srv": "s1"}], 9.0) == 0


def test_acl_changes_reach_every_worker(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`add acl` on the master's stats socket blocks a client on every worker, and
    `del acl` lets it back (the master pushes the changed list with server states)."""
    lst = tmp_path / "blocked.lst"
    lst.write_text("10.9.9.9\n")
    with Web() as web, WsBackend("w1") as wsb:
        fe = f"    acl blocked src -f {lst}\n    http-request deny if blocked"
        with Master(web.be.port, wsb.port, extra_global="    nbthread 2", extra_fe=fe) as m:
            assert len(pids_seen(m.port, 2)) == 2
            assert m.cli("add acl #0 127.0.0.1") == "\n"
            wait_status(m.port, 403)
            for _ in range(20):
                assert http_get(m.port)[0] == 403
            assert m.cli(f"show acl {lst}").split()[1::2] == ["10.9.9.9", "127.0.0.1"]
            assert m.cli("del acl #0 127.0.0.1") == "\n"
            wait_status(m.port, 200)
            assert len(pids_seen(m.port, 2)) == 2  # both workers serve it again


def test_map_changes_reach_every_worker(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`set map` on the master's socket changes a map converter's answer on every
    worker: the master pushes the list with its values."""
    lst = tmp_path / "clients.map"
    lst.write_text("127.0.0.1 allow\n")
    with Web() as web, WsBackend("w1") as wsb:
        fe = f"    http-request deny if {{ src,map_ip({lst},allow) -m str deny }}"
        with Master(web.be.port, wsb.port, extra_global="    nbthread 2", extra_fe=fe) as m:
            assert len(pids_seen(m.port, 2)) == 2
            assert m.cli(f"set map {lst} 127.0.0.1 deny") == "\n"
            wait_status(m.port, 403)
            for _ in range(20):
                assert http_get(m.port)[0] == 403
            assert m.cli(f"set map {lst} 127.0.0.1 allow") == "\n"
            wait_status(m.port, 200)
            assert len(pids_seen(m.port, 2)) == 2


def test_the_master_says_where_stick_tables_are() -> None:
    """With several workers each keeps its own stick tables: the master's socket says
    so instead of listing its own empty ones."""
    with Web() as web, WsBackend("w1") as wsb:
        fe = "    stick-table type ip size 10"
        with Master(web.be.port, wsb.port, extra_global="    nbthread 2", extra_fe=fe) as m:
            for cmd in ("show table", "show table fe", "clear table fe",
                        "set table fe key 127.0.0.1 data.server_id 1"):
                assert m.cli(cmd).startswith("lb keeps stick tables in each worker process")


def test_frontend_commands_reach_every_worker() -> None:
    """`disable frontend` on the master's socket pauses the listeners of every
    worker (a connection waits unanswered), `enable frontend` lets it through."""
    import socket

    with Web() as web, WsBackend("w1") as wsb:
        with Master(web.be.port, wsb.port, extra_global="    nbthread 2") as m:
            assert len(pids_seen(m.port, 2)) == 2
            assert m.cli("disable frontend fe") == "\n"
            time.sleep(0.5)  # pushed at once; give both workers a moment
            conns = []
            for _ in range(4):  # the kernel hands them to either worker's socket
                c = socket.create_connection(("127.0.0.1", m.port), timeout=5)
                c.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                c.settimeout(0.3)
                try:
                    assert c.recv(100) == b"", "a worker answered while disabled"
                except TimeoutError:
                    pass
                conns.append(c)
            assert m.cli("enable frontend fe") == "\n"
            for c in conns:
                c.settimeout(5)
                assert c.recv(100).startswith(b"HTTP/1.1 200")
                c.close()


def test_set_server_addr_reaches_every_worker() -> None:
    with Web() as web, WsBackend("w1") as wsb, HttpBackend("new") as new:
        with Master(web.be.port, wsb.port, extra_global="    nbthread 2") as m:
            assert len(pids_seen(m.port, 2)) == 2
            assert "port changed" in m.cli(f"set server bweb/s1 addr 127.0.0.1 port {new.port}")
            deadline = time.monotonic() + 10
            by_pid: dict[str, str] = {}
            while time.monotonic() < deadline:
                status, h = http_get(m.port)
                assert status == 200
                by_pid[h["x-pid"]] = h.get("x-server", "?")
                if len(by_pid) == 2 and set(by_pid.values()) == {"new"}:
                    break
                time.sleep(0.05)
            assert set(by_pid.values()) == {"new"} and len(by_pid) == 2, by_pid
