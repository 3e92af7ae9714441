"""tools/lbctl against a real lb stats socket: one-shot commands, the table, and the
live `top` view driven through tmux (a real terminal)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stats_support import CliFixture

ROOT = Path(__file__).resolve().parent.parent
LBCTL = str(ROOT / "tools" / "lbctl")
sys.path.insert(0, str(ROOT / "tools"))
import lbctl_lib  # noqa: E402


@pytest.fixture
def c() -> Iterator[CliFixture]:
    fx = CliFixture()
    yield fx
    fx.close()


def lbctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, LBCTL, *args], capture_output=True, text=True,
                          timeout=20)


def test_one_shot_commands_unix_and_tcp(c: CliFixture) -> None:
    r = lbctl(c.path, "show", "cli", "level")
    assert (r.returncode, r.stdout) == (0, "admin\n\n")
    host, port = c.user
    r = lbctl(f"{host}:{port}", "get weight be/s1")
    assert (r.returncode, r.stdout) == (0, "3 (initial 3)\n\n")
    r = lbctl(f"{host}:{port}", "disable", "server", "be/s1")
    assert r.returncode == 1 and r.stdout.startswith("Permission denied\n")
    r = lbctl(c.path, "set", "server", "be/s1", "state", "drain")
    assert (r.returncode, r.stdout) == (0, "\n")
    assert c.state.backends["be"].servers[0].in_drain
    r = lbctl(os.path.join(c.dir, "missing.sock"), "show", "info")
    assert r.returncode == 1 and "lbctl:" in r.stderr and "Traceback" not in r.stderr
    r = lbctl(c.path)
    assert r.returncode == 2 and "usage: lbctl" in r.stderr


def test_table(c: CliFixture) -> None:
    r = lbctl(c.path, "table")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines[0].split()[:4] == ["PROXY", "NAME", "STATUS", "WEIGHT"]
    assert lines[0].split()[-1] == "WS"
    assert [line.split()[:2] for line in lines[1:]] == [
        ["fe", "FRONTEND"], ["be", "s1"], ["be", "s2"], ["be", "b1"], ["be", "BACKEND"],
        ["ws", "FRONTEND"], ["ws", "w1"], ["ws", "BACKEND"]]
    s1 = lines[2].split()
    assert s1[2:5] == ["no", "check", "3"]  # status "no check", weight 3


def test_top_view_model(c: CliFixture) -> None:
    view = lbctl_lib.TopView(c.path)
    view.refresh()
    assert [r["svname"] for r in view.servers()] == ["s1", "s2", "b1", "w1"]
    screen = view.render()
    assert "be/s1" in screen and "no check" in screen and screen.startswith("\x1b[H\x1b[2J")
    assert view.act("j") and view.selected == 1
    assert view.act("m")
    assert c.state.backends["be"].servers[1].in_maint
    assert view.act("e") and not c.state.backends["be"].servers[1].admin
    assert not view.act("q")


def _tmux(sock: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", sock, *args], capture_output=True, text=True,
                          timeout=10, check=True).stdout


def _wait_screen(sock: str, needle: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _tmux(sock, "capture-pane", "-p", "-t", "top")
        if needle in screen:
            return screen
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} not on screen:\n{screen}")


def test_top_under_tmux(c: CliFixture) -> None:
    assert shutil.which("tmux"), "tmux is installed by tools/system_deps.py (make test)"
    sock = f"lbtest-{uuid.uuid4().hex[:8]}"
    cmd = f"{sys.executable} {LBCTL} {c.path} top -i 0.3"
    _tmux(sock, "new-session", "-d", "-s", "top", "-x", "120", "-y", "30", cmd)
    try:
        screen = _wait_screen(sock, "be/s1")
        assert "lbctl top" in screen and "ws/w1" in screen and "BACKEND/SERVER" in screen
        s2 = c.state.backends["be"].servers[1]
        _tmux(sock, "send-keys", "-t", "top", "j")  # select be/s2
        time.sleep(0.3)
        _tmux(sock, "send-keys", "-t", "top", "d")
        deadline = time.monotonic() + 10
        while not s2.in_drain and time.monotonic() < deadline:
            time.sleep(0.1)
        assert s2.in_drain
        screen = _wait_screen(sock, "DRAIN")
        line = next(ln for ln in screen.splitlines() if "be/s2" in ln)
        assert line.startswith(">") and "DRAIN" in line
        _tmux(sock, "send-keys", "-t", "top", "e")
        deadline = time.monotonic() + 10
        while s2.admin and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not s2.admin
        _tmux(sock, "send-keys", "-t", "top", "q")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = subprocess.run(["tmux", "-L", sock, "has-session", "-t", "top"],
                               capture_output=True, timeout=10)
            if r.returncode != 0:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("lbctl top did not exit on q")
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True, timeout=10)
