"""Process plumbing for the benchmark: pinned children, ports, CPU and memory.

Owns: starting a child on given cores with a raised open-file limit, waiting
for a TCP port, reading a process tree's CPU time and RSS from /proc, picking
free loopback ports, and stopping exactly the processes we started (by PID).
Must not import: lb (the proxies are programs under test).
"""

from __future__ import annotations

import os
import resource
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def nofile_limit() -> int:
    """The open-file limit children get: the hard limit (we cannot go above it)."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


# Scheduling priority for every benchmark process (run.py --nice); 0 = unchanged.
NICE = 0


def raise_limits() -> None:
    """In a child before exec: open-file limit up to the hard limit, and NICE."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if NICE:
        os.setpriority(os.PRIO_PROCESS, 0, NICE)


def _child_setup() -> None:
    raise_limits()
    os.setsid()  # own process group: a stray signal to us does not hit them


def pinned(cores: str, argv: Sequence[str]) -> list[str]:
    """argv prefixed with taskset when it is available."""
    from shutil import which

    if which("taskset") is None:
        return list(argv)
    return ["taskset", "-c", cores, *argv]


@dataclass
class Child:
    """A process we started; stop() ends it by PID and waits for it."""

    name: str
    argv: list[str]
    popen: subprocess.Popen
    log_path: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def command(self) -> str:
        return shlex.join(self.argv)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        if self.popen.poll() is not None:
            return
        try:
            self.popen.send_signal(signal.SIGTERM)
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout)
        except ProcessLookupError:
            pass

    def pause(self) -> None:
        """SIGSTOP its process group (its own, see _child_setup): workers too."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGCONT)

    def log_tail(self, n: int = 15) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])


def start(name: str, argv: Sequence[str], log_path: Path | None, *,
          stdout_pipe: bool = False, cwd: Path | None = None) -> Child:
    """Starts argv; stderr (and stdout unless piped) go to log_path."""
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        popen = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else log, stderr=log,
            preexec_fn=_child_setup, cwd=cwd,
        )
    finally:
        if log is not subprocess.DEVNULL:
            log.close()
    return Child(name, list(argv), popen, log_path)


def free_ports(n: int) -> list[int]:
    """n distinct free loopback TCP ports (bound then released: a small race)."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def wait_port(port: int, child: Child | None, timeout: float = 10.0) -> bool:
    """True once 127.0.0.1:port accepts connections; False on timeout or exit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and not child.alive():
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def tree_pids(pid: int) -> list[int]:
    """pid and all its descendants (for proxies running worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def cpu_user_sys(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of pid and its descendants (live ones)."""
    user = system = 0
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()
        user += int(fields[11])  # utime
        system += int(fields[12])  # stime
    return user / CLK_TCK, system / CLK_TCK


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of pid and its descendants (live ones)."""
    return sum(cpu_user_sys(pid))


def rss_bytes(pid: int) -> int:
    """Resident set size of pid and its descendants, in bytes."""
    total = 0
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/statm", "rb") as f:
                total += int(f.read().split()[1]) * PAGE
        except OSError:
            continue
    return total
