"""`option external-check` (healthcheck/external.py): a shell script as the check,
lb and HAProxy 2.6.12 side by side where it is installed. HAProxy 2.6.12 (observed,
2026-11-25) runs `<command> NOT_USED NOT_USED <server addr> <server port>` for a
backend, with only the HAPROXY_* variables and PATH in its environment, and logs
`reason: External check error, code: 3` / `External check passed, code: 0`; stats
say PROCERR / PROCOK (18 / 20 in `show servers state`) with the exit status as code.
The scripts use shell builtins only, since PATH is empty.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from tests.lbproc import ROOT, LbProcess, free_port
from tests.lbproc import wait_value as _wait
from tests.stats_support import query, wait_socket
from tests.support_e2e import HAPROXY, Haproxy

HAVE_HAPROXY = shutil.which(HAPROXY) is not None

CONFIG = """\
global
  stats socket {sock} level admin
  external-check
  insecure-fork-wanted
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend fe
  bind 127.0.0.1:{fe}
  default_backend b
backend b
  option external-check
  external-check command {script}
  server s1 127.0.0.1:{port} check inter 200ms fall 1 rise 1
"""

SCRIPT = """#!/bin/sh
set > {dir}/env
echo "$@" > {dir}/args
read code < {dir}/code
exit $code
"""


@pytest.fixture
def tmp() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="lbtest-ext-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _script(d: str, body: str = SCRIPT) -> str:
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "code"), "w") as f:
        f.write("0\n")
    path = os.path.join(d, "check.sh")
    with open(path, "w") as f:
        f.write(body.format(dir=d))
    os.chmod(path, 0o755)
    return path


def _check_fields(sock: str) -> tuple[str, ...]:
    rows = [line for line in query(sock, "show stat typed").splitlines()
            if line.startswith("S.") and re.search(r"\.(check_status|check_code|check_desc)\.", line)]
    state = query(sock, "show servers state b").splitlines()[2].split()
    return (*(re.sub(r"^S\.\d+\.\d+\.", "", r) for r in rows), state[10], state[11])


def _settled(fields: tuple[str, ...], status: str) -> bool:
    """No check under way (HAProxy shows "* <status>" and result 0 while one runs)."""
    return fields[0].endswith(f":str:{status}") and fields[4] != "0"


def _lines(kind: str, proc: Any, path: str) -> list[str]:
    raw = proc.lines() if kind == "l" else open(path, "rb").read().decode().splitlines()
    return [re.sub(r"check duration: \d+ms", "check duration: Nms", m.group(1)) for line in raw
            if (m := re.match(r"\[(?:WARNING|ALERT)\]\s+\(\d+\) : (Server .*)$", line))]


def test_external_check_as_in_haproxy(tmp: str) -> None:
    """The same arguments, environment, log lines and stats as HAProxy for a script
    that passes, fails with status 3, and passes again."""
    kinds = ("l", "h") if HAVE_HAPROXY else ("l",)
    port = free_port()
    dirs = {k: os.path.join(tmp, k) for k in kinds}
    socks = {k: os.path.join(tmp, f"{k}.sock") for k in kinds}
    procs: dict[str, Any] = {}
    try:
        for k in kinds:
            cfg = CONFIG.format(sock=socks[k], fe=free_port(), port=port,
                                script=_script(dirs[k]))
            procs[k] = (LbProcess(cfg) if k == "l" else
                        Haproxy(cfg, ready_socket=socks[k], single_thread=True,
                                stderr_path=os.path.join(tmp, "h.err"))).__enter__()
        wait_socket(socks["l"])
        ok = {k: _wait(lambda k=k: (lambda f: f if _settled(f, "PROCOK") else None)(
            _check_fields(socks[k])), what=f"ok {k}")
              for k in kinds}
        assert ok["l"] == ("36.check_status.1:MOP:str:PROCOK", "37.check_code.1:MOP:u32:0",
                           "65.check_desc.1:MOP:str:External check passed", "20", "3")
        for k in kinds:
            with open(os.path.join(dirs[k], "code"), "w") as f:
                f.write("3\n")
        bad = {k: _wait(lambda k=k: (lambda f: f if _settled(f, "PROCERR") else None)(
            _check_fields(socks[k])), what=f"error {k}") for k in kinds}
        assert bad["l"] == ("36.check_status.1:MOP:str:PROCERR", "37.check_code.1:MOP:u32:3",
                            "65.check_desc.1:MOP:str:External check error", "18", "2")
        for k in kinds:
            with open(os.path.join(dirs[k], "code"), "w") as f:
                f.write("0\n")
        for k in kinds:
            _wait(lambda k=k: "PROCOK" in _check_fields(socks[k])[0], what=f"ok again {k}")
        want = ["Server b/s1 is DOWN, reason: External check error, code: 3, check duration: "
                "Nms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 "
                "remaining in queue.",
                "Server b/s1 is UP, reason: External check passed, code: 0, check duration: "
                "Nms. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in "
                "queue."]
        for k in kinds:
            assert _wait(lambda k=k: _lines(k, procs[k], os.path.join(tmp, "h.err")) == want,
                         what=f"lines {k}")
        env = {k: open(os.path.join(dirs[k], "env")).read() for k in kinds}
        ours = dict(re.findall(r"^(HAPROXY_\w+|PATH)='?([^'\n]*)'?$", env["l"], re.M))
        assert ours == {
            "HAPROXY_PROXY_ADDR": "", "HAPROXY_PROXY_ID": ours["HAPROXY_PROXY_ID"],
            "HAPROXY_PROXY_NAME": "b", "HAPROXY_PROXY_PORT": "",
            "HAPROXY_SERVER_ADDR": "127.0.0.1", "HAPROXY_SERVER_CURCONN": "0",
            "HAPROXY_SERVER_ID": "1", "HAPROXY_SERVER_MAXCONN": "0",
            "HAPROXY_SERVER_NAME": "s1", "HAPROXY_SERVER_PORT": str(port),
            "HAPROXY_SERVER_PROTO": "h1", "HAPROXY_SERVER_SSL": "0", "PATH": ""}
        assert not re.search(r"^(HOME|USER|PYTHONPATH)=", env["l"], re.M)  # nothing of ours
        assert open(os.path.join(dirs["l"], "args")).read() == f"NOT_USED NOT_USED 127.0.0.1 {port}\n"
        if "h" in kinds:
            theirs = dict(re.findall(r"^(HAPROXY_\w+|PATH)='?([^'\n]*)'?$", env["h"], re.M))
            assert ours == theirs
            assert ok["l"] == ok["h"] and bad["l"] == bad["h"]
            assert open(os.path.join(dirs["h"], "args")).read() == \
                open(os.path.join(dirs["l"], "args")).read()
    finally:
        for p in procs.values():
            p.__exit__(None, None, None)


def test_a_check_that_hangs_is_killed(tmp: str) -> None:
    """A script blocked past the check's time (here `inter`, 200 ms) is killed and the
    check is PROCTOUT; a command that does not exist is PROCERR; lb goes on."""
    fifo = os.path.join(tmp, "fifo")
    os.mkfifo(fifo)
    hang = _script(os.path.join(tmp, "hang"), f"#!/bin/sh\necho $$ >> {{dir}}/pids\n"
                                             f"read x < {fifo}\n")
    sock = os.path.join(tmp, "l.sock")
    cfg = CONFIG.format(sock=sock, fe=free_port(), port=free_port(), script=hang)
    cfg += "backend c\n  option external-check\n  external-check command /nonexistent/x\n" \
           "  server s2 127.0.0.1:9 check inter 200ms\n"
    # a command named without its directory is found through `external-check path`
    passing = _script(os.path.join(tmp, "pass"))
    cfg += (f"backend d\n  option external-check\n  external-check command check.sh\n"
            f"  external-check path {os.path.dirname(passing)}\n"
            "  server s3 127.0.0.1:9 check inter 200ms\n")
    with LbProcess(cfg) as lb:
        wait_socket(sock)
        _wait(lambda: "PROCTOUT" in _check_fields(sock)[0], what="timeout")
        _wait(lambda: re.search(r"^c,s2,.*,PROCERR,", query(sock, "show stat"), re.M),
              what="a command that does not exist")
        _wait(lambda: re.search(r"^d,s3,.*,PROCOK,", query(sock, "show stat"), re.M),
              what="a command found through the path")
        pids = [int(x) for x in open(os.path.join(tmp, "hang", "pids")).read().split()]
        assert len(pids) >= 1

        def gone(pid: int) -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            with open(f"/proc/{pid}/stat") as f:  # a zombie not yet reaped counts as gone
                return f.read().split(")")[-1].split()[0] == "Z"

        _wait(lambda: all(gone(p) for p in pids[:-1]), what="killed checks")
        assert lb.proc is not None and lb.proc.poll() is None


def test_config_messages_match_haproxy(tmp: str) -> None:
    """`lb -c` says what HAProxy 2.6.12 says (recorded from it; compared live when it
    is installed)."""
    both = "  external-check\n  insecure-fork-wanted\n"
    cases = [
        (both, "  option external-check",
         "[ALERT] config : Proxy 'b' : 'option external-check' unable to find required "
         "'external-check command'."),
        ("  insecure-fork-wanted\n", "  option external-check\n  external-check command /x",
         "[ALERT] config : Proxy 'b' : 'option external-check' unable to find required "
         "'global.external-check'."),
        ("  external-check\n", "  option external-check\n  external-check command /x",
         "[WARNING] config : Proxy 'b' : 'insecure-fork-wanted' not enabled in the global "
         "section, 'option external-check' will likely fail."),
        (both, "  external-check command /x",
         "[WARNING] config : 'external-check command' will be ignored for backend 'b' "
         "(requires 'option external-check')."),
        (both, "  external-check bogus x",
         "[ALERT] config : parsing [c.cfg:5] : 'external-check' only supports 'command' and "
         "'path'. but got 'bogus'."),
        (both, "  external-check command /a b",
         "[ALERT] config : parsing [c.cfg:5] : 'external-check' cannot handle unexpected "
         "argument 'b'."),
        (both, "  external-check command",
         "[ALERT] config : parsing [c.cfg:5] : missing argument after 'command'."),
        (both, "  option external-check\n  external-check command check.sh",
         "[ALERT] config : Proxy 'b': 'external-check command' does not have a leading '/' "
         "and 'external-check path' is not set."),
    ]
    for glob, backend, want in cases:
        path = os.path.join(tmp, "c.cfg")
        with open(path, "w") as f:
            f.write(f"global\n{glob}backend b\n{backend}\n  server s1 127.0.0.1:80 check\n")
        for cmd in ([sys.executable, "-m", "lb"], *([[HAPROXY]] if HAVE_HAPROXY else [])):
            p = subprocess.run([*cmd, "-c", "-f", "c.cfg"], capture_output=True, text=True,
                               cwd=tmp, timeout=30, env=dict(os.environ, PYTHONPATH=ROOT))
            out = [f"[{m.group(1)}] {m.group(2)}" for line in p.stderr.splitlines()
                   if (m := re.match(r"\[(\w+)\]\s+\(\d+\) : (.*)$", line))]
            assert want in out, (cmd[0], backend, out)
