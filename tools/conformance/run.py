"""Differential conformance run: HAProxy and lb, same config, same raw requests.

    .venv/bin/python tools/conformance/run.py                   # compare, print a table
    .venv/bin/python tools/conformance/run.py --write-haproxy   # also refresh
                                                  # tests/data/conformance_haproxy.json
    .venv/bin/python tools/conformance/run.py --only cl_ --json /tmp/x.json

Each proxy runs on 127.0.0.1 in front of its own recording backend
(tools/conformance/probe.py). For each case of tests/conformance_corpus.py the
outcome is: the statuses the client saw, whether the proxy closed, and what the
backend received (request line + headers per request, byte count).

Exit status 0 when lb is at least as strict as HAProxy on every case (no case that
HAProxy refused reaches lb's backend, apart from the documented LENIENT gaps of
tests/test_conformance.py), 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from tests.conformance_corpus import CASES  # noqa: E402
from tools.conformance.probe import CONFIG, RecordingBackend, refused, run_case  # noqa: E402

HAPROXY = "/usr/sbin/haproxy"
DATA = os.path.join(ROOT, "tests", "data", "conformance_haproxy.json")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port}")


def _start(argv_of: Any, be_port: int) -> tuple[subprocess.Popen[bytes], int, str]:
    fe = _free_port()
    fd, path = tempfile.mkstemp(suffix=".cfg", prefix="conformance-")
    with os.fdopen(fd, "w") as f:
        f.write(CONFIG.format(fe=fe, be=be_port))
    proc = subprocess.Popen(argv_of(path), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    _wait(fe)
    time.sleep(0.2)  # let the probe connection of _wait be forgotten
    return proc, fe, path


def _stop(proc: subprocess.Popen[bytes], path: str) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
    os.unlink(path)


def run_against(argv_of: Any, only: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with RecordingBackend() as be:
        proc, fe, path = _start(argv_of, be.port)
        try:
            for case in CASES:
                if only and only not in case.name:
                    continue
                out[case.name] = run_case(fe, be, case.data, case.expect)
        finally:
            _stop(proc, path)
    return out


def haproxy_version() -> str:
    res = subprocess.run([HAPROXY, "-v"], capture_output=True, text=True, check=True)
    return res.stdout.splitlines()[0]


def dump(doc: dict[str, Any]) -> str:
    """JSON with one line per case (readable diffs when the recording is refreshed)."""
    head = {k: v for k, v in doc.items() if k != "cases"}
    lines = [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in sorted(head.items())]
    cases = [f"  {json.dumps(k)}: {json.dumps(v, sort_keys=True)}"
             for k, v in doc["cases"].items()]
    return "{\n" + "\n".join(lines) + '\n "cases": {\n' + ",\n".join(cases) + "\n }\n}\n"


def summary(o: dict[str, Any]) -> str:
    if not o:
        return "-"
    st = ",".join(map(str, o["statuses"])) or "none"
    close = " close" if o["closed"] else ""
    return f"{st}{close} be={len(o['backend'])}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="run the cases whose name contains this text")
    ap.add_argument("--write-haproxy", action="store_true",
                    help=f"write HAProxy's outcomes to {os.path.relpath(DATA, ROOT)}")
    ap.add_argument("--json", help="write both outcome sets to this file")
    ap.add_argument("--no-lb", action="store_true", help="run HAProxy only")
    args = ap.parse_args(argv)

    ha = run_against(lambda p: [HAPROXY, "-f", p, "-db"], args.only)
    lb: dict[str, Any] = {}
    if not args.no_lb:
        lb = run_against(lambda p: [sys.executable, "-m", "lb", "-f", p, "-db"], args.only)
    if args.write_haproxy:
        doc = {"haproxy_version": haproxy_version(),
               "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%MZ"),
               "config": CONFIG, "cases": ha}
        os.makedirs(os.path.dirname(DATA), exist_ok=True)
        with open(DATA, "w") as f:
            f.write(dump(doc))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"haproxy": ha, "lb": lb}, f, indent=1, sort_keys=True)
    from tests.test_conformance import LENIENT, STRICTER

    lenient = 0
    for name, h in ha.items():
        ours = lb.get(name, {})
        mark = ""
        if ours:
            if refused(h) and not refused(ours):
                if name in LENIENT:
                    mark = "  (known gap, see docs/conformance.md)"
                else:
                    mark = "  <-- LB MORE LENIENT"
                    lenient += 1
            elif refused(ours) and not refused(h) and name in STRICTER:
                mark = "  (lb stricter, documented)"
            elif refused(ours) and not refused(h):
                mark = "  (lb stricter)"
            elif len(h["backend"]) != len(ours["backend"]):
                mark = "  (backend count differs)"
        print(f"{name:34} haproxy: {summary(h):22} lb: {summary(ours):22}{mark}")
    return 1 if lenient else 0


if __name__ == "__main__":
    sys.exit(main())
