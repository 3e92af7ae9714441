"""`make run`: tools/demo.py starts two demo backends and lb on conf/demo.cfg.

A smoke test of the whole demo on free loopback ports: wait for READY, an HTTP page
and a WebSocket echo through lb, the stats socket answers, then Ctrl-C (SIGINT to
the demo's process group, as a terminal sends it) stops every process it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import pytest
from websockets.sync.client import connect as ws_connect

from tests.lbproc import ROOT, free_port
from tests.stats_support import query

pytestmark = pytest.mark.timeout(90)


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_make_run_demo_end_to_end() -> None:
    ports = {k: free_port() for k in ("LB_DEMO_PORT", "LB_DEMO_S1_PORT", "LB_DEMO_S2_PORT")}
    with tempfile.TemporaryDirectory(prefix="lbtest-demo-") as run_dir:
        env = dict(os.environ, LB_RUN_DIR=run_dir, PYTHONPATH=ROOT,
                   **{k: str(v) for k, v in ports.items()})
        proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "demo.py")],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        lines: list[str] = []

        def read() -> None:
            assert proc.stdout is not None
            for raw in iter(proc.stdout.readline, b""):
                lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        started: set[int] = set()
        try:
            deadline = time.monotonic() + 60
            while "READY" not in lines:
                assert proc.poll() is None, "\n".join(lines)
                assert time.monotonic() < deadline, "\n".join(lines)
                time.sleep(0.1)
            port = ports["LB_DEMO_PORT"]
            started = descendants(proc.pid)
            assert len(started) >= 3  # two backends and lb
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
                assert r.status == 200
                assert b"Hello from s" in r.read()
                assert "SRV=s" in (r.headers.get("set-cookie") or "")
            with ws_connect(f"ws://127.0.0.1:{port}/chat", open_timeout=10) as ws:
                ws.send("hello")
                assert ws.recv(timeout=10) == "hello"
                ws.send("whoami")
                assert ws.recv(timeout=10) in ("s1", "s2")
            sock = os.path.join(run_dir, "lb-demo.sock")
            stat = query(sock, "show stat")
            assert "fe_demo,FRONTEND," in stat
            assert "bk_ws,BACKEND," in stat
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the demo's terminal
            try:
                rc = proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
                rc = None
        reader.join(10)  # the last lines may still be in the pipe when wait() returns
        assert rc == 0, "\n".join(lines)
        # seen missing once in a clean-clone run with rc 0 (2026-11-22): say what came
        # (pytest shortens a long list, not a string: the last lines are the ones that tell)
        assert "demo: stopping" in lines, "\n".join(
            [f"reader alive: {reader.is_alive()}, {len(lines)} lines; the last ones:",
             *map(repr, lines[-12:])])
        deadline = time.monotonic() + 10
        while any(alive(p) for p in started) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in started if alive(p)]
        assert not any("Traceback" in line for line in lines), "\n".join(lines)
