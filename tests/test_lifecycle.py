"""One lb process and its signals: soft stop (SIGUSR1) and its drain, hard stop,
SIGHUP dump, SIGTTOU/SIGTTIN pause/resume, -D daemon with a pidfile, -sf.

Behaviour checked against HAProxy 2.6.12 (spec §13): SIGUSR1 logs
"Proxy <name> stopped (cumulated conns: FE: n, BE: m)." for every proxy; SIGHUP logs
"SIGHUP received, dumping servers states." then per proxy an info line and one
warning per server and per proxy; SIGTTOU/SIGTTIN log "Paused frontend fe." /
"Resumed frontend fe." and a paused listener leaves new connections in the backlog.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from tests.backends import HttpBackend, WsBackend
from tests.lbproc import ROOT, LbProcess, LbThread, free_port, render
from tests.stats_support import query

pytestmark = pytest.mark.timeout(60)

CFG = """
global
    log stdout format raw local0 info
{extra_global}
defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    timeout tunnel 30s
    timeout http-keep-alive 10s
frontend fe
    bind 127.0.0.1:@@fe@@
    acl ws hdr(upgrade) -i websocket
    use_backend bws if ws
    use_backend bslow if {{ path /slow }}
    default_backend bweb
backend bweb
    server s1 127.0.0.1:@@web@@
backend bslow
    server s1 127.0.0.1:@@slow@@
backend bws
    server w1 127.0.0.1:@@ws@@
"""


def cfg(extra_global: str = "") -> str:
    return CFG.format(extra_global=extra_global)


def ws_open(port: int):  # type: ignore[no-untyped-def]
    return ws_connect(f"ws://127.0.0.1:{port}/chat", open_timeout=5).__enter__()


def get(port: int, path: str = "/", keep: bool = True) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn = "keep-alive" if keep else "close"
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: {conn}\r\n\r\n".encode())
    return s


def read_response(s: socket.socket, timeout: float = 5.0) -> bytes:
    """One response with a content-length body (the backends always send one)."""
    s.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        d = s.recv(65536)
        if not d:
            return data
        data += d
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.search(rb"(?i)content-length: *(\d+)", head)
    n = int(m.group(1)) if m else 0
    while len(body) < n:
        d = s.recv(65536)
        if not d:
            break
        body += d
    return head + b"\r\n\r\n" + body


def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


def backends(delay: float = 1.5):  # type: ignore[no-untyped-def]
    return HttpBackend("web"), HttpBackend("slow", delay=delay), WsBackend("w1")


def test_soft_stop_drains_requests_keepalive_and_websockets() -> None:
    web, slow, wsb = backends()
    with web, slow, wsb:
        lb = LbProcess(cfg(), ports={"web": web.port, "slow": slow.port, "ws": wsb.port})
        with lb:
            port = lb.ports["fe"]
            idle = get(port)
            assert b" 200 " in read_response(idle)  # now an idle keep-alive connection
            ws = ws_open(port)
            ws.send("hello")
            assert ws.recv(timeout=5) == "hello"
            busy = get(port, "/slow")  # in flight for 1.5 s
            time.sleep(0.3)
            os.kill(lb.pid, signal.SIGUSR1)
            lb.wait_for_line("Proxy fe stopped (cumulated conns: FE: ")
            # listeners are closed at once
            assert refused(port)
            # the idle keep-alive connection is closed without a response
            idle.settimeout(5)
            assert idle.recv(100) == b""
            # the request in flight completes, with the connection closed after it
            resp = read_response(busy)
            assert resp.startswith(b"HTTP/1.1 200")
            assert b"connection: close" in resp.lower()
            busy.settimeout(5)
            assert busy.recv(100) == b""
            # the WebSocket keeps working while the process drains
            for i in range(3):
                ws.send(f"during-drain-{i}")
                assert ws.recv(timeout=5) == f"during-drain-{i}"
                time.sleep(0.4)
            assert lb.proc is not None and lb.proc.poll() is None
            progress = "Soft stop in progress: 1 tunnel(s), 0 connection(s) remaining."
            lb.wait_for_line(progress)
            assert progress in lb.lines()  # the global log target, not only stderr
            assert f"[WARNING]  ({lb.pid}) : {progress}" in lb.lines()
            ws.close()
            assert wait_exit(lb.proc, 10) == 0
            text = "\n".join(lb.lines())
            for name in ("fe", "bweb", "bslow", "bws"):
                assert re.search(rf"Proxy {name} stopped \(cumulated conns: FE: \d+, "
                                 rf"BE: \d+\)\.", text), text
            assert "Proxy bweb stopped (cumulated conns: FE: 0, BE: 1)." in text
            assert "Traceback" not in text


def test_soft_stop_serves_a_connection_accepted_before_it() -> None:
    """A connection accepted before the soft stop that has not sent its request yet
    is not closed: its request, sent after the stop, is answered (with a close).
    Closing it would reset a client whose request is on its way, which a reload
    under load did (the new-connection client of test_reload saw ECONNRESET).
    Checked against HAProxy 2.6.12: after SIGUSR1 its idle keep-alive connection
    closes, a never-used one still gets its response a second later."""
    web = HttpBackend("web")
    with web:
        lb = LbProcess(cfg(), ports={"web": web.port, "ws": free_port(), "slow": free_port()})
        with lb:
            port = lb.ports["fe"]
            idle = get(port)
            assert b" 200 " in read_response(idle)
            fresh = socket.create_connection(("127.0.0.1", port), timeout=5)
            # accepted by lb before the stop: the SIGHUP dump shows two connections
            deadline = time.monotonic() + 10
            while "act(FE+BE): 2+" not in _fe_dump_line(lb):
                assert time.monotonic() < deadline, lb.lines()
                time.sleep(0.1)
            os.kill(lb.pid, signal.SIGUSR1)
            lb.wait_for_line("Proxy fe stopped (cumulated conns: FE: ")
            idle.settimeout(5)
            assert idle.recv(100) == b""  # the idle keep-alive one closes
            time.sleep(0.5)
            fresh.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            resp = read_response(fresh)
            assert resp.startswith(b"HTTP/1.1 200"), resp
            assert b"connection: close" in resp.lower()
            fresh.settimeout(5)
            assert fresh.recv(100) == b""
            fresh.close()
            idle.close()
            assert lb.proc is not None
            assert wait_exit(lb.proc, 10) == 0


def _fe_dump_line(lb: LbProcess) -> str:
    """The frontend's line of a fresh SIGHUP dump (current and total connections)."""
    n = len(lb.lines())
    os.kill(lb.pid, signal.SIGHUP)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in lb.lines()[n:]:
            if "SIGHUP: Proxy fe " in line:
                return line
        time.sleep(0.05)
    return ""


def test_hard_stop_after_closes_remaining_tunnels() -> None:
    web, slow, wsb = backends()
    with web, slow, wsb:
        lb = LbProcess(cfg("    hard-stop-after 1500ms"),
                       ports={"web": web.port, "slow": slow.port, "ws": wsb.port})
        with lb:
            port = lb.ports["fe"]
            ws = ws_open(port)
            ws.send("x")
            assert ws.recv(timeout=5) == "x"
            t0 = time.monotonic()
            os.kill(lb.pid, signal.SIGUSR1)
            time.sleep(0.3)
            ws.send("still")
            assert ws.recv(timeout=5) == "still"
            with pytest.raises(ConnectionClosed):
                for _ in range(100):
                    ws.send("ping")
                    ws.recv(timeout=5)
                    time.sleep(0.1)
            assert time.monotonic() - t0 >= 1.0  # not before hard-stop-after
            assert wait_exit(lb.proc, 10) == 0  # type: ignore[arg-type]
            lb.wait_for_line("hard-stop-after expired: closing 1 tunnel(s)")
            line = lb.wait_for_line("tunnel_close")
            assert re.search(r'reason[=": ]+shutdown', line), line


def test_sigterm_is_a_hard_stop() -> None:
    web, slow, wsb = backends(delay=5.0)
    with web, slow, wsb:
        lb = LbProcess(cfg(), ports={"web": web.port, "slow": slow.port, "ws": wsb.port})
        with lb:
            port = lb.ports["fe"]
            ws = ws_open(port)
            busy = get(port, "/slow")
            time.sleep(0.3)
            t0 = time.monotonic()
            os.kill(lb.pid, signal.SIGTERM)
            assert wait_exit(lb.proc, 10) == 0  # type: ignore[arg-type]
            assert time.monotonic() - t0 < 4.0  # did not wait for the 5 s response
            busy.settimeout(5)
            try:
                assert busy.recv(100) == b""
            except ConnectionResetError:
                pass
            with pytest.raises(ConnectionClosed):
                ws.send("x")
                ws.recv(timeout=5)


def test_sighup_dumps_server_states() -> None:
    web = HttpBackend("web")
    with web:
        text = cfg().replace("bslow\n    server s1 127.0.0.1:@@slow@@",
                             "bslow\n    server s1 127.0.0.1:@@slow@@ disabled\n"
                             "    server s2 127.0.0.1:@@slow@@ backup")
        lb = LbProcess(text, ports={"web": web.port, "ws": free_port(), "slow": free_port()})
        with lb:
            port = lb.ports["fe"]
            for _ in range(2):
                s = get(port, keep=False)
                read_response(s)
                s.close()
            os.kill(lb.pid, signal.SIGHUP)
            lb.wait_for_line("SIGHUP: Proxy bws")
            lines = lb.lines()
            text = "\n".join(lines)
            pid = lb.pid
            assert f"[WARNING]  ({pid}) : SIGHUP received, dumping servers states." in lines
            assert "SIGHUP received, dumping servers states for proxy fe." in lines
            # FE total: our 2 requests plus lbproc's readiness probe(s)
            assert re.search(r"^SIGHUP: Proxy fe has no servers\. Conn: act\(FE\+BE\): 0\+0, "
                             r"0 pend \(0 unass\), tot\(FE\+BE\): [2-9]\+0\.$", text, re.M)
            assert "SIGHUP: Server bweb/s1 is UP. Conn: 0 act, 0 pend, 2 tot." in lines
            assert "SIGHUP: Proxy bweb has 1 active servers and 0 backup servers " \
                   "available. Conn: act(FE+BE): 0+0, 0 pend (0 unass), " \
                   "tot(FE+BE): 0+2." in lines
            assert "SIGHUP: Server bslow/s1 is DOWN. Conn: 0 act, 0 pend, 0 tot." in lines
            assert "SIGHUP: Proxy bslow has 0 active servers and 1 backup servers " \
                   "available. Conn: act(FE+BE): 0+0, 0 pend (0 unass), " \
                   "tot(FE+BE): 0+0." in lines
            assert f"[WARNING]  ({pid}) : SIGHUP: Server bweb/s1 is UP. Conn: 0 act, " \
                   "0 pend, 2 tot." in lines
            assert lb.proc is not None and lb.proc.poll() is None, text


def test_sigttou_pauses_and_sigttin_resumes() -> None:
    web = HttpBackend("web")
    with web:
        lb = LbProcess(cfg(), ports={"web": web.port, "ws": free_port(), "slow": free_port()})
        with lb:
            port = lb.ports["fe"]
            os.kill(lb.pid, signal.SIGTTOU)
            lb.wait_for_line("Paused frontend fe.")
            # paused: the connection waits in the backlog, nothing answers
            s = get(port, keep=False)
            s.settimeout(0.8)
            with pytest.raises(TimeoutError):
                s.recv(100)
            os.kill(lb.pid, signal.SIGTTIN)
            lb.wait_for_line("Resumed frontend fe.")
            assert read_response(s).startswith(b"HTTP/1.1 200")
            s.close()
            s = get(port, keep=False)
            assert read_response(s).startswith(b"HTTP/1.1 200")
            s.close()


def test_paused_frontend_status() -> None:
    from lb import lifecycle

    web = HttpBackend("web")
    with web:
        with LbThread(cfg(), ports={"web": web.port, "ws": free_port(),
                                    "slow": free_port()}) as lb:
            lc = lb.call(lambda: lifecycle.Lifecycle(lb.rt))
            lb.call(lc.pause)
            assert lb.state.frontends["fe"].status == "PAUSED"
            lb.call(lc.resume)
            assert lb.state.frontends["fe"].status == "OPEN"
            time.sleep(0.2)
            s = get(lb.ports["fe"], keep=False)
            assert read_response(s).startswith(b"HTTP/1.1 200")
            s.close()
            lb.call(lc.soft_stop)
            assert lb.state.frontends["fe"].status == "STOP"
            assert lb.call(lc.wait) == 0  # nothing to drain: done at once


def test_daemon_mode_writes_its_own_pid() -> None:
    web = HttpBackend("web")
    with web, tempfile.TemporaryDirectory() as tmp:
        text, ports = render(cfg(), {"web": web.port, "ws": free_port(), "slow": free_port()})
        path = os.path.join(tmp, "lb.cfg")
        pidfile = os.path.join(tmp, "lb.pid")
        with open(path, "w") as f:
            f.write(text)
        env = dict(os.environ, PYTHONPATH=ROOT)
        r = subprocess.run([sys.executable, "-m", "lb", "-f", path, "-D", "-p", pidfile],
                           cwd=ROOT, env=env, capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr.decode()
        with open(pidfile) as f:
            pid = int(f.read().strip())
        try:
            os.kill(pid, 0)  # the daemon is alive, and is not the process we started
            # a session of its own, and (second fork) not its leader: no controlling tty
            assert os.getsid(pid) != os.getsid(0)
            assert os.getsid(pid) != pid
            s = get(ports["fe"], keep=False)
            assert read_response(s).startswith(b"HTTP/1.1 200")
            s.close()
        finally:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
            pytest.fail("the daemon did not stop on SIGTERM")
        assert not os.path.exists(pidfile)


def test_daemon_mode_reports_a_bind_failure() -> None:
    with socket.socket() as busy, tempfile.TemporaryDirectory() as tmp:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        text, _ = render(cfg(), {"fe": busy.getsockname()[1], "web": free_port(),
                                 "ws": free_port(), "slow": free_port()})
        path = os.path.join(tmp, "lb.cfg")
        with open(path, "w") as f:
            f.write(text)
        env = dict(os.environ, PYTHONPATH=ROOT)
        r = subprocess.run([sys.executable, "-m", "lb", "-f", path, "-D"],
                           cwd=ROOT, env=env, capture_output=True, timeout=30)
        assert r.returncode == 1
        assert b"cannot bind socket (Address already in use)" in r.stderr


@pytest.mark.parametrize("mode", [("-D",), ("-W", "-D"), ("-db",)])
def test_a_stats_socket_that_cannot_be_bound_is_fatal(mode: tuple[str, ...]) -> None:
    """HAProxy 2.6.12: `cannot bind UNIX socket (No such file or directory) [path]`,
    exit 1. lb used to run on without its stats socket (with -D, without a word)."""
    with tempfile.TemporaryDirectory() as tmp:
        fe = free_port()
        sock = os.path.join(tmp, "missing", "admin.sock")
        text, _ = render(cfg(f"    stats socket {sock} level admin"),
                         {"fe": fe, "web": free_port(), "ws": free_port(),
                          "slow": free_port()})
        path = os.path.join(tmp, "lb.cfg")
        with open(path, "w") as f:
            f.write(text)
        env = dict(os.environ, PYTHONPATH=ROOT, LB_RUN_DIR=tmp)
        r = subprocess.run([sys.executable, "-m", "lb", "-f", path, *mode],
                           cwd=ROOT, env=env, capture_output=True, timeout=60)
        assert r.returncode == 1, r.stderr
        assert (f"Starting the stats socket: cannot bind (No such file or directory) "
                f"[{sock}]").encode() in r.stderr
        time.sleep(0.3)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", fe), timeout=2).close()


def test_sigusr2_is_ignored_by_a_single_process() -> None:
    """HAProxy 2.6.12 ignores SIGUSR2 outside master-worker mode; lb used to die of it
    (exit status 140), cutting every connection, a tunnel included."""
    web, ws = HttpBackend("web"), WsBackend("w1")
    with web, ws:
        lb = LbProcess(cfg(), ports={"web": web.port, "ws": ws.port, "slow": free_port()})
        with lb:
            tunnel = ws_open(lb.ports["fe"])
            for _ in range(3):
                os.kill(lb.pid, signal.SIGUSR2)
            time.sleep(0.3)
            assert lb.proc is not None and lb.proc.poll() is None
            tunnel.send("after usr2")
            assert tunnel.recv(timeout=5) == "after usr2"
            tunnel.close()
            s = get(lb.ports["fe"], keep=False)
            assert read_response(s).startswith(b"HTTP/1.1 200")
            s.close()


@pytest.mark.parametrize("mode", [("-D",), ("-W", "-D"), ("-db",)])
def test_a_pidfile_that_cannot_be_written_is_fatal(mode: tuple[str, ...]) -> None:
    """HAProxy 2.6.12: `Cannot create pidfile`, exit 1, nothing left running. lb used
    to exit 0 and run on without the pidfile, out of reach of the init scripts."""
    with tempfile.TemporaryDirectory() as tmp:
        fe = free_port()
        text, _ = render(cfg(), {"fe": fe, "web": free_port(), "ws": free_port(),
                                 "slow": free_port()})
        path = os.path.join(tmp, "lb.cfg")
        with open(path, "w") as f:
            f.write(text)
        env = dict(os.environ, PYTHONPATH=ROOT, LB_RUN_DIR=tmp)
        r = subprocess.run([sys.executable, "-m", "lb", "-f", path, *mode,
                            "-p", os.path.join(tmp, "missing", "lb.pid")],
                           cwd=ROOT, env=env, capture_output=True, timeout=60)
        assert r.returncode == 1, r.stderr
        assert b"cannot create pidfile" in r.stderr
        time.sleep(0.3)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", fe), timeout=2).close()


@pytest.mark.parametrize("flag", ["-sf", "-st"])
def test_sf_st_take_over_and_the_old_process_ends(flag: str) -> None:
    web = HttpBackend("web")
    with web:
        ports = {"web": web.port, "ws": free_port(), "slow": free_port()}
        old = LbProcess(cfg(), ports=ports).start()
        try:
            port = old.ports["fe"]
            s = get(port, keep=False)
            assert read_response(s).startswith(b"HTTP/1.1 200")
            s.close()
            new = LbProcess(cfg(), ports=old.ports, args=(flag, str(old.pid))).start()
            try:
                assert wait_exit(old.proc, 10) == 0  # type: ignore[arg-type]
                if flag == "-sf":
                    old.wait_for_line("Proxy fe stopped")
                else:  # -st: SIGTERM, a hard stop (no soft-stop lines)
                    old.wait_for_line("stopped", timeout=5)
                    assert not any("Proxy fe stopped" in ln for ln in old.lines())
                for _ in range(5):
                    s = get(port, keep=False)
                    assert read_response(s).startswith(b"HTTP/1.1 200")
                    s.close()
                assert new.proc is not None and new.proc.poll() is None
            finally:
                new.stop()
        finally:
            old.stop()


def _cli_pid(address: str | tuple[str, int]) -> int:
    out = query(address, "show info")
    return int(re.search(r"^Pid: (\d+)$", out, re.M).group(1))  # type: ignore[union-attr]


def _wait_cli_pid(address: str | tuple[str, int], pid: int, timeout: float = 10.0) -> None:
    """Until the stats socket at ``address`` is served by ``pid`` (the stats service
    starts a moment after the frontends listen)."""
    deadline = time.monotonic() + timeout
    seen: object = None
    while time.monotonic() < deadline:
        try:
            seen = _cli_pid(address)
        except OSError as e:
            seen = e
        if seen == pid:
            return
        time.sleep(0.05)
    pytest.fail(f"{address} not served by {pid}: {seen}")


def test_sf_successor_takes_the_stats_sockets_over() -> None:
    """HAProxy 2.6.12, same test: the new process answers on the unix and the TCP
    stats socket at once, while the old one still drains a WebSocket, and the path
    survives the old one's exit. (lb's successor used to find the path in use, start
    without any stats socket, and lose the path when the old process unlinked it.)"""
    web, ws = HttpBackend("web"), WsBackend("w1")
    with web, ws, tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "admin.sock")
        extra = (f"    stats socket {path} level admin\n"
                 "    stats socket 127.0.0.1:@@cli@@ level admin")
        ports = {"web": web.port, "ws": ws.port, "slow": free_port()}
        old = LbProcess(cfg(extra), ports=ports).start()
        try:
            tcp = ("127.0.0.1", old.ports["cli"])
            _wait_cli_pid(path, old.pid)
            assert _cli_pid(tcp) == old.pid
            tunnel = ws_open(old.ports["fe"])  # keeps the old process draining
            new = LbProcess(cfg(extra), ports=old.ports, args=("-sf", str(old.pid))).start()
            try:
                old.wait_for_line("Proxy fe stopped")
                _wait_cli_pid(path, new.pid)
                assert old.proc is not None and old.proc.poll() is None
                for _ in range(8):  # the old process no longer accepts on either socket
                    assert _cli_pid(path) == new.pid
                    assert _cli_pid(tcp) == new.pid
                tunnel.send("still here")
                assert tunnel.recv(timeout=5) == "still here"
                tunnel.close()
                assert wait_exit(old.proc, 10) == 0
                assert _cli_pid(path) == new.pid  # the old process left the path alone
                assert not any("stats socket" in ln for ln in new.lines()), new.lines()
            finally:
                new.stop()
        finally:
            old.stop()


def test_systemd_notify_ready_and_stopping() -> None:
    web = HttpBackend("web")
    with web, tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "notify")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as ns:
            ns.bind(path)
            ns.settimeout(15)
            lb = LbProcess(cfg(), ports={"web": web.port, "ws": free_port(),
                                         "slow": free_port()},
                           env={"NOTIFY_SOCKET": path})
            with lb:
                msg = ns.recv(4096).decode()
                assert msg == f"READY=1\nMAINPID={lb.pid}"
                os.kill(lb.pid, signal.SIGUSR1)
                assert ns.recv(4096) == b"STOPPING=1"
                assert wait_exit(lb.proc, 10) == 0  # type: ignore[arg-type]


_MASK_SCRIPT = r"""
import os, signal, sys
from lb.config import load_text
from lb.config.model import RunOptions
from lb.proxy import runner

class Probe:
    async def open(self, state, loop):
        # runs while start() binds: before lb.lifecycle installs its handlers
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        print(" ".join(sorted(s.name for s in blocked)), flush=True)
        os.kill(os.getpid(), signal.SIGTTOU)  # would stop the process if not blocked
        os.kill(os.getpid(), signal.SIGTERM)
    async def __call__(self, state, loop, opened):
        pass

cfg = load_text(sys.argv[1]).config
sys.exit(runner.run(cfg, RunOptions(), services=[Probe()]))
"""


def test_lifecycle_signals_wait_for_their_handlers_while_binding() -> None:
    """A SIGTTOU (or SIGHUP, SIGUSR1...) that arrives once a port answers but before
    the handlers are installed stays pending instead of stopping the process: the
    SIGTTOU sent here while binding is handled (the frontend paused), then SIGTERM."""
    text, _ = render(cfg(), {"web": free_port(), "ws": free_port(), "slow": free_port()})
    res = subprocess.run([sys.executable, "-c", _MASK_SCRIPT, text], cwd=ROOT,
                         capture_output=True, text=True, timeout=30)
    blocked = res.stdout.splitlines()[0].split() if res.stdout else []
    for name in ("SIGHUP", "SIGINT", "SIGTERM", "SIGTTIN", "SIGTTOU", "SIGUSR1"):
        assert name in blocked, (res.stdout, res.stderr)
    assert "Paused frontend fe." in res.stdout + res.stderr, res.stderr[-2000:]
    assert res.returncode == 0, res.stderr[-2000:]
