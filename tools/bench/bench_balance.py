"""Picks per second of the balancing algorithms (lb.balance), 10 and 1,000 servers.

Usage: .venv/bin/python tools/bench/bench_balance.py [--seconds 0.5]

Each figure is the best of three timed runs of a tight loop of picks:
- roundrobin / static-rr: ``pick()``;
- leastconn: ``pick()`` + ``take_conn`` + ``drop_conn`` (a request's whole life,
  every server busy with a few requests so the tree really reorders);
- consistent / map-based uri hash: ``pick(key)`` with a 24-byte key (sdbm +
  lookup).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lb import balance  # noqa: E402
from lb.config.model import BalanceSpec  # noqa: E402


class Srv:
    __slots__ = ("name", "puid", "eweight", "cur_conns", "maxconn", "maxqueue", "queue",
                 "lb_data", "usable", "backup")

    def __init__(self, i: int, weight: int) -> None:
        self.name = f"s{i}"
        self.puid = i + 1
        self.eweight = weight
        self.cur_conns = 0
        self.maxconn = 0
        self.maxqueue = 0
        self.queue: deque[Any] = deque()
        self.lb_data: Any = None
        self.usable = True
        self.backup = False


def _servers(n: int) -> list[Srv]:
    return [Srv(i, 1 + (i * 7) % 5) for i in range(n)]


def _time(fn: Any, seconds: float) -> float:
    best = 0.0
    for _ in range(3):
        n = 0
        t0 = time.perf_counter()
        end = t0 + seconds
        while True:
            fn(2000)
            n += 2000
            now = time.perf_counter()
            if now >= end:
                break
        best = max(best, n / (now - t0))
    return best


def bench(n: int, seconds: float) -> dict[str, float]:
    out: dict[str, float] = {}
    for algo in ("roundrobin", "static-rr"):
        b = balance.create(BalanceSpec(algorithm=algo), _servers(n))
        pick = b.pick

        def run(k: int, pick: Any = pick) -> None:
            for _ in range(k):
                pick()

        out[algo] = _time(run, seconds)

    srvs = _servers(n)
    b = balance.create(BalanceSpec(algorithm="leastconn"), srvs)
    for i, s in enumerate(srvs):
        s.cur_conns = i % 4
        b.take_conn(s)
    pick, take, drop = b.pick, b.take_conn, b.drop_conn

    def run_lc(k: int) -> None:
        for _ in range(k):
            s = pick()
            s.cur_conns += 1
            take(s)
            s.cur_conns -= 1
            drop(s)

    out["leastconn (pick+take+drop)"] = _time(run_lc, seconds)

    keys = [f"/static/img/{i:012d}".encode() for i in range(4096)]
    for label, spec in (("consistent uri hash", BalanceSpec(algorithm="uri",
                                                            hash_type="consistent")),
                        ("map-based uri hash", BalanceSpec(algorithm="uri"))):
        b = balance.create(spec, _servers(n))
        pick = b.pick

        def run_h(k: int, pick: Any = pick) -> None:
            for i in range(k):
                pick(keys[i & 4095])

        out[label] = _time(run_h, seconds)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=0.5, help="per timed run")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}")
    for n in (10, 1000):
        for name, rate in bench(n, args.seconds).items():
            print(f"{n:5d} servers  {name:28s} {rate / 1e3:9.0f} k picks/s")


if __name__ == "__main__":
    main()
