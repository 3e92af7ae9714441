"""Master-worker mode (-W): reloads that drop nothing.

The master binds once; workers adopt its sockets. SIGHUP/SIGUSR2 re-read the
configuration: an invalid one is logged and changes nothing; a valid one starts a new
generation on the same sockets and soft-stops the old one, whose WebSockets keep
running. Counters survive (the stats socket and the master's control socket both
show the totals), and the old generation's tunnels stay visible while they drain.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import tempfile
import threading
import time
from typing import Any

import pytest
from websockets.sync.client import connect as ws_connect

from lb.master import request_sync
from tests.backends import HttpBackend, WsBackend
from tests.lbproc import LbProcess
from tests.stats_support import query

pytestmark = pytest.mark.timeout(120)

CFG = """
global
    log stdout format raw local0 info
    stats socket {run}/lb.sock level admin
{extra_global}
defaults
    mode http
    log global
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout tunnel 60s
    timeout http-keep-alive 10s
frontend fe
    bind 127.0.0.1:@@fe@@
    http-response set-header X-Pid %pid
{extra_fe}
    acl ws hdr(upgrade) -i websocket
    use_backend bws if ws
    default_backend bweb
backend bweb
    server s1 127.0.0.1:@@web@@
backend bws
    server w1 127.0.0.1:@@ws@@
"""


class Master:
    """An lb master (-W) with its run directory."""

    def __init__(self, web: int, ws: int, extra_global: str = "", extra_fe: str = "",
                 args: tuple[str, ...] = ("-W",), env: dict[str, str] | None = None) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="lbtest-run-")
        self.run = self.tmp.name
        self.extra_global = extra_global
        self.lb = LbProcess(self.text(extra_fe), ports={"web": web, "ws": ws}, args=args,
                            env={"LB_RUN_DIR": self.run, **(env or {})})

    def text(self, extra_fe: str = "", broken: str = "") -> str:
        return CFG.format(run=self.run, extra_global=self.extra_global,
                          extra_fe=extra_fe) + broken

    def __enter__(self) -> Master:
        self.lb.start()
        self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.lb.stop(timeout=10)
        self.tmp.cleanup()

    @property
    def port(self) -> int:
        return self.lb.ports["fe"]

    def ctl(self, op: str) -> Any:
        return request_sync(os.path.join(self.run, "master.sock"), {"op": op})

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Every worker ready, and the stats socket (a service of the master,
        started on its own task) accepting connections."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                ws = self.ctl("workers")
                if ws and all(w["ready"] for w in ws):
                    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                        s.settimeout(5)
                        s.connect(os.path.join(self.run, "lb.sock"))
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError("master not ready:\n" + "\n".join(self.lb.lines()))

    def rewrite(self, text: str) -> None:
        from tests.lbproc import render

        rendered, _ = render(text, self.lb.ports)
        with open(self.lb.path, "w") as f:
            f.write(rendered)

    def reload(self, gen: int, sig: int = signal.SIGUSR2) -> None:
        os.kill(self.lb.pid, sig)
        self.lb.wait_for_line(f"Generation {gen} running (workers ", timeout=40)

    def cli(self, line: str) -> str:
        return query(os.path.join(self.run, "lb.sock"), line)


def http_get(port: int, path: str = "/") -> tuple[int, dict[str, str]]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    hdrs = {}
    for line in head[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return int(head[0].split()[1]), hdrs


def frontend_req_tot(csv: str) -> int:
    lines = csv.splitlines()
    cols = lines[0].lstrip("# ").split(",")
    i = cols.index("req_tot")
    for line in lines[1:]:
        f = line.split(",")
        if f[0] == "fe" and f[1] == "FRONTEND":
            return int(f[i])
    raise AssertionError(csv)


def test_invalid_config_keeps_the_old_workers() -> None:
    with HttpBackend("web") as web, WsBackend("w1") as wsb:
        with Master(web.port, wsb.port) as m:
            before = [w["pid"] for w in m.ctl("workers")]
            assert http_get(m.port)[0] == 200
            m.rewrite(m.text(broken="backend bad\n    balance nosuchalgo\n"))
            os.kill(m.lb.pid, signal.SIGHUP)
            m.lb.wait_for_line("Reload failed: the configuration has errors; the current "
                               "workers keep serving.")
            # HAProxy 2.6.12 -W prints "[WARNING]  (master) : Loading failure!" here
            m.lb.wait_for_line(f"[WARNING]  ({m.lb.pid}) : Loading failure!")
            text = "\n".join(m.lb.lines())
            assert "balance only supports" in text  # the error itself is logged
            assert [w["pid"] for w in m.ctl("workers")] == before
            for _ in range(5):
                assert http_get(m.port)[0] == 200
            assert m.lb.proc is not None and m.lb.proc.poll() is None
            # a second master pointed at the same run directory refuses to start and
            # leaves the first one's control socket alone
            other = LbProcess(CFG.format(run=m.run + "/other", extra_global="",
                                         extra_fe=""),
                              ports={"web": web.port, "ws": wsb.port}, args=("-W",),
                              env={"LB_RUN_DIR": m.run}, wait=False).start()
            assert other.proc is not None and other.proc.wait(20) == 1
            other.wait_for_line(f"another lb master runs in {m.run} (LB_RUN_DIR)")
            other.stop()
            assert [w["pid"] for w in m.ctl("workers")] == before


def test_valid_reload_switches_generation() -> None:
    with HttpBackend("web") as web, WsBackend("w1") as wsb, \
            tempfile.TemporaryDirectory() as tmp, \
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(os.path.join(tmp, "notify"))
        notify.settimeout(20)
        with Master(web.port, wsb.port, env={"NOTIFY_SOCKET": notify.getsockname()}) as m:
            # systemd (Type=notify, lb -Ws) hears from the master only
            assert notify.recv(4096) == f"READY=1\nMAINPID={m.lb.pid}".encode()
            old = m.ctl("workers")[0]["pid"]
            status, h = http_get(m.port)
            assert status == 200 and h["x-pid"] == str(old)
            assert "x-gen" not in h
            for _ in range(9):
                assert http_get(m.port)[0] == 200
            m.rewrite(m.text(extra_fe="    http-response set-header X-Gen two"))
            m.reload(2, signal.SIGHUP)
            assert notify.recv(4096) == b"RELOADING=1"
            assert notify.recv(4096) == b"READY=1"  # not STOPPING=1 from an old worker
            # the new worker starts from the old one's totals (its own stats page
            # keeps counting), and the master does not count them twice
            snap = request_sync(os.path.join(m.run, "worker-2.0.sock"), {"op": "snapshot"})
            assert snap["fe"]["fe"]["req_tot"] == 10
            assert snap["be"]["bweb"]["hrsp_2xx"] == 10
            assert m.ctl("refresh")["total"]["fe"]["fe"]["req_tot"] == 10
            status, h = http_get(m.port)
            assert status == 200 and h.get("x-gen") == "two"
            new = m.ctl("workers")
            assert [w["generation"] for w in new if w["current"]] == [2]
            assert h["x-pid"] == str(new[-1]["pid"]) != str(old)
            m.lb.wait_for_line(f"Former worker ({old}) exited with code 0")
            assert m.lb.proc is not None and m.lb.proc.poll() is None


class Load:
    """A bounded HTTP load: keep-alive and new-connection clients in threads."""

    def __init__(self, port: int, keepalive: int = 2, fresh: int = 1,
                 max_requests: int = 50_000, max_seconds: float = 90.0) -> None:
        self.port = port
        self.stop = threading.Event()
        self.ok = 0
        self.failed: list[str] = []
        self.retried = 0  # idle keep-alive connection closed under us: resent once
        self.max_requests = max_requests
        self.deadline = time.monotonic() + max_seconds
        self.lock = threading.Lock()
        self.threads = ([threading.Thread(target=self.keepalive, daemon=True)
                         for _ in range(keepalive)]
                        + [threading.Thread(target=self.fresh, daemon=True)
                           for _ in range(fresh)])

    def running(self) -> bool:
        return (not self.stop.is_set() and self.ok < self.max_requests
                and time.monotonic() < self.deadline)

    def count(self, ok: bool, why: str = "") -> None:
        with self.lock:
            if ok:
                self.ok += 1
            else:
                self.failed.append(why)

    def fresh(self) -> None:
        while self.running():
            try:
                status, _ = http_get(self.port)
                self.count(status == 200, f"status {status}")
            except OSError as e:
                self.count(False, f"new connection: {e!r}")
            time.sleep(0.005)

    def keepalive(self) -> None:
        s: socket.socket | None = None
        req = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
        while self.running():
            fresh = s is None
            if s is None:
                try:
                    s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                except OSError as e:
                    self.count(False, f"keep-alive connect: {e!r}")
                    continue
            try:
                s.sendall(req)
                resp = _read_one(s)
            except OSError:
                resp = b""
            if not resp:
                s.close()
                s = None
                if fresh:
                    self.count(False, "fresh keep-alive connection closed without a response")
                else:
                    # closed while idle (soft stop of its worker): HTTP clients resend an
                    # idempotent request that got no byte back
                    with self.lock:
                        self.retried += 1
                continue
            status = int(resp.split(b" ", 2)[1])
            self.count(status == 200, f"keep-alive status {status}")
            if b"\r\nconnection: close" in resp.lower():
                s.close()
                s = None
            time.sleep(0.005)
        if s is not None:
            s.close()

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)


def _read_one(s: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        d = s.recv(65536)
        if not d:
            return b""
        data += d
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    n = int(m.group(1)) if m else 0
    while len(body) < n:
        d = s.recv(65536)
        if not d:
            return b""
        body += d
    return head


def test_five_reloads_under_load_with_50_websockets() -> None:
    with HttpBackend("web") as web, WsBackend("w1") as wsb:
        with Master(web.port, wsb.port) as m:
            sockets = []
            try:
                for i in range(50):
                    ws = ws_connect(f"ws://127.0.0.1:{m.port}/c{i}", open_timeout=10)
                    sockets.append(ws.__enter__())
                for i, ws in enumerate(sockets):
                    ws.send(f"hello {i}")
                    assert ws.recv(timeout=10) == f"hello {i}"
                totals = []
                with Load(m.port) as load:
                    time.sleep(0.5)
                    for gen in range(2, 7):
                        m.reload(gen)
                        # every WebSocket of the first generation still echoes
                        for i, ws in enumerate(sockets):
                            ws.send(f"gen {gen} ws {i}")
                            assert ws.recv(timeout=10) == f"gen {gen} ws {i}"
                        time.sleep(0.6)  # pulled once a second: some looks see a pull
                        totals.append(frontend_req_tot(m.cli("show stat")))
                    time.sleep(0.3)
                print(f"load: {load.ok} ok, {load.retried} resent, totals {totals}")
                assert load.failed == [], load.failed[:10]
                assert load.ok > 100
                # counters keep growing across reloads and count every request
                assert totals == sorted(totals) and totals[-1] > totals[0], totals
                # counters are pulled once a second (later on a busy machine)
                deadline = time.monotonic() + 15
                stat = frontend_req_tot(m.cli("show stat"))
                while stat < load.ok and time.monotonic() < deadline:
                    time.sleep(0.2)
                    stat = frontend_req_tot(m.cli("show stat"))
                assert stat >= load.ok, (stat, load.ok)
                # the first generation is draining and its tunnels stay visible
                workers = m.ctl("workers")
                assert sorted(w["generation"] for w in workers if w["current"]) == [6]
                assert any(w["generation"] == 1 and not w["current"] for w in workers)
                ws_text = m.cli("show websockets")
                assert ws_text.count(" fe bws/w1 ") == 50, ws_text
                assert len(re.findall(r"^old-g1/\d+ ", ws_text, re.M)) == 50, ws_text
                for i, ws in enumerate(sockets):
                    ws.send(f"last {i}")
                    assert ws.recv(timeout=10) == f"last {i}"
            finally:
                for ws in sockets:
                    ws.close()
            # with its last tunnel gone the first generation exits
            gen1 = [w["pid"] for w in m.ctl("workers") if w["generation"] == 1]
            for pid in gen1:
                m.lb.wait_for_line(f"Former worker ({pid}) exited with code 0", timeout=20)
            text = "\n".join(m.lb.lines())
            assert "Traceback" not in text


def test_reload_with_hard_stop_after_closes_old_tunnels() -> None:
    with HttpBackend("web") as web, WsBackend("w1") as wsb:
        with Master(web.port, wsb.port, extra_global="    hard-stop-after 1s") as m:
            ws = ws_connect(f"ws://127.0.0.1:{m.port}/x", open_timeout=10).__enter__()
            ws.send("a")
            assert ws.recv(timeout=10) == "a"
            m.reload(2)
            ws.send("b")
            assert ws.recv(timeout=10) == "b"  # still served by the draining worker
            from websockets.exceptions import ConnectionClosed

            with pytest.raises(ConnectionClosed):
                for _ in range(100):
                    time.sleep(0.1)
                    ws.send("c")
                    ws.recv(timeout=10)
            assert http_get(m.port)[0] == 200
