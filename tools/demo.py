"""`make run`: two demo backends and lb on conf/demo.cfg, all on loopback.

Starts tools/demo_backend.py twice (HTTP pages + WebSocket echo), then
`lb -f conf/demo.cfg` in front of them, prints what to try, and stops everything
(by PID) on Ctrl-C or SIGTERM. Ports come from LB_DEMO_PORT (8080),
LB_DEMO_S1_PORT (8081) and LB_DEMO_S2_PORT (8082); the stats socket goes into
LB_RUN_DIR (a fresh temporary directory by default).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _say(text: str, stream: TextIO = sys.stdout) -> None:
    """``text`` and its newline in one write: lb and the backends write to this same
    stdout, and print() writes a line and its end apart on an unbuffered stream, so a
    line of theirs could land in between (the test saw `demo: stopping{"logger...`)."""
    stream.write(text + "\n")
    stream.flush()


def main() -> int:
    env = dict(os.environ)
    env.setdefault("LB_DEMO_PORT", "8080")
    env.setdefault("LB_DEMO_S1_PORT", "8081")
    env.setdefault("LB_DEMO_S2_PORT", "8082")
    run_dir = env.get("LB_RUN_DIR") or tempfile.mkdtemp(prefix="lb-demo-")
    env["LB_RUN_DIR"] = run_dir
    port = int(env["LB_DEMO_PORT"])
    procs: list[subprocess.Popen[bytes]] = []

    def stop_all(*_: object) -> None:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    # Ctrl-C even when started with SIGINT ignored (a background job of a script)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        for name, key in (("s1", "LB_DEMO_S1_PORT"), ("s2", "LB_DEMO_S2_PORT")):
            p = subprocess.Popen([PY, str(ROOT / "tools" / "demo_backend.py"), "--name", name,
                                  "--port", env[key]], env=env)
            procs.append(p)
            if not wait_port(int(env[key]), p):
                _say(f"demo: backend {name} did not start on port {env[key]}", sys.stderr)
                stop_all()
                return 1
        lb = subprocess.Popen([PY, "-m", "lb", "-db", "-f", str(ROOT / "conf" / "demo.cfg")],
                              env=env, cwd=ROOT)
        procs.append(lb)
        if not wait_port(port, lb):
            _say("demo: lb did not start (see its messages above)", sys.stderr)
            stop_all()
            return 1
        sock = Path(run_dir) / "lb-demo.sock"
        _say(f"""
lb is running on http://127.0.0.1:{port}/ in front of two demo backends (s1, s2).

  Web page (round-robin, cookie SRV):  curl -i http://127.0.0.1:{port}/
  WebSocket echo (sticky by WSSRV):    {PY} tools/wsclient.py ws://127.0.0.1:{port}/chat hello whoami
  Stats page:                          http://127.0.0.1:{port}/stats
  Prometheus metrics:                  curl http://127.0.0.1:{port}/metrics
  Stats socket:                        {PY} tools/lbctl {sock} show stat
                                       {PY} tools/lbctl {sock} top

Press Ctrl-C to stop everything.
READY""")
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        _say("demo: a process exited; stopping the rest", sys.stderr)
        return 1
    except KeyboardInterrupt:
        _say("\ndemo: stopping")
        return 0
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
