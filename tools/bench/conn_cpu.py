#!/usr/bin/env python3
"""CPU time per connection of one or more lb commands: a fixed count, alternated.

    python tools/bench/conn_cpu.py /tmp/lb-before.sh /tmp/lb-after.sh
    python tools/bench/conn_cpu.py --count 5000 --rounds 8 LB_CMD [LB_CMD ...]

Each LB_CMD is run as ``LB_CMD -f <config> -db`` (a script wrapping another tree's lb,
as for ``profile_lb.py --lb-before-cmd``) pinned to core 0. The config is a frontend
in `option httpclose` mode with the bench config's kind of work (an ACL deny rule,
cookie insertion, `option httplog` to a UDP socket nobody reads) in front of a small
uvloop HTTP backend pinned to core 1. Every round sends ``--count`` requests, each on
a new client connection, to every command in turn (A B A B ...), and reads the
command's CPU time (user + system, from /proc) before and after.

Why besides ``profile_lb.py``: that one runs wrk for a fixed time at full load, and on
a shared machine its CPU per unit moved 10-30% from round to round in the fourth
session. A fixed number of connections at a moderate concurrency (16) kept the rounds
within about 5% while the machine was quiet (still 150-240 us in a busy hour), so a
change of 5% in the accept/connect path shows in the minimum and median of 8 rounds
(docs/performance.md, fourth session). The figure is the proxy's CPU per connection,
not a rate; /proc counts CPU in 10 ms ticks, so keep ``--count`` in the thousands.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

CONFIG = """global
    maxconn 5000
    log 127.0.0.1:{log_port} local0 info
defaults
    mode http
    log global
    option httplog
    option forwardfor
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe_close
    bind 127.0.0.1:{fe_port}
    option httpclose
    acl is_admin path_beg /admin
    http-request deny if is_admin !{{ src 10.0.0.0/8 }}
    default_backend bk_web
backend bk_web
    balance roundrobin
    cookie SRVID insert indirect nocache
    server web1 127.0.0.1:{be_port} cookie web1
"""
REQUEST = b"GET /small.html HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n"
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100\r\n\r\n"
            + b"x" * 99 + b"\n")
CONCURRENCY = 16


def serve_backend(port: int) -> None:
    """The backend: answers every request head with RESPONSE (keep-alive)."""
    import uvloop

    class Answer(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.buf = b""

        def data_received(self, data: bytes) -> None:
            self.buf += data
            while b"\r\n\r\n" in self.buf:
                _, _, self.buf = self.buf.partition(b"\r\n\r\n")
                self.transport.write(RESPONSE)  # type: ignore[attr-defined]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        await loop.create_server(Answer, "127.0.0.1", port, backlog=1024)
        await asyncio.sleep(3600)

    uvloop.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_request(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(REQUEST)
    data = await reader.read()
    writer.close()
    if not data.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected answer: {data[:80]!r}")


async def load(port: int, count: int) -> None:
    todo = iter(range(count))

    async def worker() -> None:
        for _ in todo:
            await one_request(port)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


def wait_listening(port: int, proc: subprocess.Popen[bytes], cmd: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"conn_cpu: {cmd} exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"conn_cpu: {cmd} is not listening on {port} after 20 s")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("commands", nargs="*", metavar="LB_CMD",
                    help="lb commands to compare (default: this tree's lb)")
    ap.add_argument("--count", type=positive_int, default=5000,
                    help="connections per round")
    ap.add_argument("--rounds", type=positive_int, default=8)
    ap.add_argument("--serve-backend", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_backend:
        serve_backend(args.serve_backend)
        return 0
    import uvloop

    if shutil.which("taskset") is None:
        sys.exit("conn_cpu: needs taskset (Debian package util-linux) to pin the proxy "
                 "and the load to different cores")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    default = os.path.join(tempfile.mkdtemp(prefix="conn_cpu-"), "lb.sh")
    with open(default, "w") as f:
        f.write(f'#!/bin/sh\ncd {repo} && exec {sys.executable} -m lb "$@"\n')
    os.chmod(default, 0o755)
    commands = args.commands or [default]
    for cmd in commands:
        if shutil.which(cmd) is None:
            sys.exit(f"conn_cpu: {cmd} is not an executable file (a script that runs "
                     f"an lb tree's `python -m lb \"$@\"`)")
    if len(set(commands)) != len(commands):
        sys.exit("conn_cpu: each LB_CMD may be given once (copy the script to compare "
                 "a tree with itself)")

    log_sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # never read
    log_sink.bind(("127.0.0.1", 0))
    be_port = free_port()
    backend = subprocess.Popen(["taskset", "-c", "1", sys.executable, __file__,
                                "--serve-backend", str(be_port)])
    atexit.register(backend.kill)
    proxies = []
    for cmd in commands:
        fe_port = free_port()
        cfg = tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False)
        cfg.write(CONFIG.format(log_port=log_sink.getsockname()[1], fe_port=fe_port,
                                be_port=be_port))
        cfg.close()
        proc = subprocess.Popen(["taskset", "-c", "0", cmd, "-f", cfg.name, "-db"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        atexit.register(proc.kill)
        proxies.append((cmd, proc, fe_port))
    for cmd, proc, fe_port in proxies:
        wait_listening(fe_port, proc, cmd)
    wait_listening(be_port, backend, "backend")
    os.sched_setaffinity(0, {1})

    per_conn: dict[str, list[float]] = {cmd: [] for cmd in commands}
    for rnd in range(1, args.rounds + 1):
        for cmd, proc, fe_port in proxies:
            uvloop.run(load(fe_port, 200))  # warm-up, not measured
            before = cpu_seconds(proc.pid)
            t0 = time.perf_counter()
            uvloop.run(load(fe_port, args.count))
            wall = time.perf_counter() - t0
            us = (cpu_seconds(proc.pid) - before) / args.count * 1e6
            per_conn[cmd].append(us)
            print(f"round {rnd}  {cmd:30s} {us:7.1f} us/conn  {args.count / wall:7.0f} conn/s",
                  flush=True)
    for cmd, values in per_conn.items():
        print(f"== {cmd:30s} min {min(values):.1f}  median {statistics.median(values):.1f}"
              f" us/conn  ({args.rounds} rounds of {args.count})")
    for _, proc, _ in proxies:
        proc.terminate()
        proc.wait(timeout=10)
    backend.terminate()
    backend.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
