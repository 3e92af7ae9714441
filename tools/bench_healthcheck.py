"""Measure the CPU cost of health checks: N servers checked every `inter`.

Starts a listener process (4 ports on 127.0.0.1, answering HTTP 200 to any
request) so that its work is not counted, then runs healthcheck.HealthChecker
over uvloop for the given duration and reports this process's CPU share
(user+sys time / wall time) from resource.getrusage.

    .venv/bin/python tools/bench_healthcheck.py --servers 1000 --inter 1 --seconds 20
    .venv/bin/python tools/bench_healthcheck.py --kind http

Only loopback traffic; the run is bounded by --seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import time

from lb.config.model import (
    CheckSpec,
    Config,
    Global,
    HttpCheckSend,
    Proxy,
    Server,
    Timeouts,
)
from lb.state import State

PORTS = 4


def _listener(conn: multiprocessing.connection.Connection) -> None:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            data = await r.read(4096)
            if data:
                w.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()

    async def main() -> None:
        ports = []
        for _ in range(PORTS):
            srv = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
            ports.append(srv.sockets[0].getsockname()[1])
        conn.send(ports)
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)

    asyncio.run(main())


def build(n: int, inter: float, kind: str, ports: list[int]) -> State:
    check = CheckSpec(kind="http", steps=(HttpCheckSend("GET", "/health"),)) \
        if kind == "http" else CheckSpec()
    backends = []
    per = 100
    for b in range((n + per - 1) // per):
        servers = tuple(
            Server(name=f"s{i}", host="127.0.0.1", port=ports[i % len(ports)], puid=i + 1,
                   check=True, inter=inter)
            for i in range(min(per, n - b * per)))
        backends.append(Proxy(name=f"b{b}", caps=frozenset({"backend"}), kind="backend",
                              mode="http", servers=servers, check=check,
                              timeouts=Timeouts(connect=1.0, check=1.0)))
    return State(Config(global_=Global(node="bench"), proxies=tuple(backends)))


async def run(args: argparse.Namespace, ports: list[int]) -> None:
    from healthcheck import HealthChecker

    st = build(args.servers, args.inter, args.kind, ports)
    lines: list[str] = []
    hc = HealthChecker(st, lambda be, level, text: lines.append(text))
    await hc.start()
    await asyncio.sleep(args.inter * 2)  # warm-up: every server checked at least once
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    await asyncio.sleep(args.seconds)
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.monotonic() - t0
    servers = list(st.all_servers())
    done = sum(1 for s in servers if s.check_status in ("L4OK", "L7OK"))
    await hc.stop()
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    rate = args.servers / args.inter
    print(f"{args.servers} servers, kind={args.kind}, inter={args.inter}s, "
          f"{wall:.1f}s measured: CPU {cpu:.2f}s = {100 * cpu / wall:.1f}% of one core "
          f"(~{1e6 * cpu / (rate * wall):.0f} us per check); "
          f"{done}/{len(servers)} passing; {len(lines)} state-change log lines")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--servers", type=int, default=1000)
    ap.add_argument("--inter", type=float, default=1.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--kind", choices=("tcp", "http"), default="tcp")
    ap.add_argument("--asyncio", action="store_true", help="plain asyncio instead of uvloop")
    args = ap.parse_args()
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.Process(target=_listener, args=(child,), daemon=True)
    proc.start()
    ports = parent.recv()
    try:
        if args.asyncio:
            asyncio.run(run(args, ports))
        else:
            import uvloop

            uvloop.run(run(args, ports))
    finally:
        parent.send("stop")
        proc.join(5)
        if proc.is_alive():
            proc.terminate()


if __name__ == "__main__":
    main()
