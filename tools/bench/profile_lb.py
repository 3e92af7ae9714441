#!/usr/bin/env python3
"""Profile lb on one benchmark scenario, and measure CPU per unit against HAProxy.

    python tools/bench/profile_lb.py http_keepalive_100b             # CPU/unit, lb vs HAProxy
    python tools/bench/profile_lb.py ws_handshake --rounds 3 --duration 3
    python tools/bench/profile_lb.py http_keepalive_100b --spy       # + py-spy profile of lb
    python tools/bench/profile_lb.py ws_echo_50 --spy --native --top 40
    python tools/bench/profile_lb.py ws_handshake --callgrind --duration 20 \
        --lb-before-cmd /tmp/lb-old.sh    # instructions per unit, this lb and another
    python tools/bench/profile_lb.py ws_handshake --paced 2000 --strace  # at a set load
    python tools/bench/profile_lb.py http_keepalive_100b --log-timers  # where the tail is

A lighter companion of run.py (same backends, same config, same pinning: proxy on
core 0, load on core 1) for the optimisation loop of issue #9: it starts nginx,
wsecho, HAProxy and lb once, then alternates HAProxy and lb on the chosen scenarios
and prints each run's proxy CPU microseconds per unit and the lb / HAProxy ratio
(medians). With ``--spy`` it also attaches py-spy to lb during extra lb runs and
prints the functions with the most samples, by own time and by inclusive time
(the raw collapsed stacks are kept in the run directory for flame graphs).
py-spy is not a dependency of lb: ``.venv/bin/pip install py-spy``.

``--callgrind`` runs lb (and ``lb_before``) under valgrind's callgrind instead, without
HAProxy, and prints the instructions each spends per unit in user space (Python,
uvloop, libc; not the kernel): a warm-up run, counters zeroed, a measured run, a
dump. Unlike CPU time this count does not move with the load of a shared machine,
and unlike ``profile_inproc.py`` it covers the real accept, connect and transport
paths. Keep the rates comparable between targets (same ``--duration`` and
scenario): a loop turn's fixed cost is spread over the units it serves. The dumps
stay in the run directory for ``callgrind_annotate``.

``--paced RATE`` drives every run open loop at RATE units/s (wsbench ``-r``, as
run.py's paced rows) instead of saturating: the cost per unit at a load both
proxies carry, where each loop turn serves few events. Each run's line also shows
the generator's p50 and p99, so a change can be judged on latency at that load.

``--log-timers`` keeps every httplog line of each run (a 128 MiB receive buffer on
the bench's syslog socket, drained by a thread: ``harness/logtimers.py``) and prints
each proxy's TR/Tw/Tc/Tr/Ta percentiles, so the two can be compared phase by phase.

Everything is bounded in time, and every process started here is stopped by PID.
Must not import: lb.
"""

from __future__ import annotations

import argparse
import collections
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as benchrun  # noqa: E402
from harness import procs  # noqa: E402
from harness.logtimers import LogCollector, format_summary, timer_summary  # noqa: E402
from harness.scenarios import BY_NAME, paceable  # noqa: E402


def _spy_exe() -> str | None:
    """py-spy on PATH or beside this interpreter (not a dependency of lb)."""
    beside = Path(sys.executable).with_name("py-spy")
    return shutil.which("py-spy") or (str(beside) if beside.exists() else None)


def _spy(pid: int, seconds: float, out: Path, native: bool, rate: int) -> subprocess.Popen:
    exe = _spy_exe()
    assert exe is not None  # main() refuses --spy without it
    argv = [exe, "record", "--pid", str(pid), "--format", "raw", "--rate", str(rate),
            "--duration", str(int(seconds)), "-o", str(out)]
    # --native needs to pause the process for each sample; without it, sampling is
    # non-blocking (less overhead on the measured process)
    argv.append("--native" if native else "--nonblocking")
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _strace_run(bench: _Bench, sc: Any, target: str, seconds: float) -> str:
    """System calls per unit of one proxy during one extra run of `sc`."""
    out = bench.run_dir / f"strace-{sc.name}-{target}.txt"
    tracer = subprocess.Popen(["strace", "-c", "-f", "-o", str(out), "-p",
                               str(bench.proxies[target].pid)], stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    rec = bench.measure(sc, target, 0, rate=bench.paced)
    tracer.send_signal(signal.SIGINT)
    try:
        tracer.wait(timeout=30)
    except subprocess.TimeoutExpired:
        tracer.kill()
        tracer.wait()
    units = (rec.get("value") or 0) * seconds
    if not out.exists() or units <= 0:
        return f"strace {sc.name} {target}: no result"
    rows = []
    for line in out.read_text().splitlines():
        f = line.split()
        if len(f) >= 5 and f[3].isdigit() and f[-1] != "total":
            rows.append((int(f[3]), f[-1]))
    rows.sort(reverse=True)
    total = sum(n for n, _ in rows)
    calls = ", ".join(f"{name} {n / units:.2f}" for n, name in rows[:10] if n / units >= 0.01)
    return (f"strace {sc.name} {target}: {total / units:.2f} system calls per "
            f"{sc.unit.split('/')[0]} ({calls}); {out}")


def summarise_raw(path: Path, top: int) -> str:
    """Own and inclusive sample counts per function from py-spy's raw output."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        count = int(n)
        total += count
        frames = [_short(f) for f in stack.split(";")]
        own[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
    if not total:
        return "no samples"
    lines = [f"{total} samples", "", "own time:"]
    lines += [f"  {100.0 * c / total:5.1f}%  {f}" for f, c in own.most_common(top)]
    lines += ["", "inclusive:"]
    lines += [f"  {100.0 * c / total:5.1f}%  {f}" for f, c in incl.most_common(top)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    # "func (path/to/file.py:123)" -> "func (file.py)"; line numbers merged
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    file = where.rsplit(":", 1)[0].rsplit("/", 1)[-1]
    return f"{name} ({file})" if file else name


class _Bench(benchrun.Bench):
    """run.py's Bench with an optional second lb (target ``lb_before``)."""

    def __init__(self, args: argparse.Namespace, before_cmd: str,
                 callgrind: bool = False) -> None:
        super().__init__(args)
        self.paced = float(args.paced)
        self.before_cmd = before_cmd
        self.callgrind = callgrind
        if callgrind:
            self.proxy_start_timeout = 240.0
        self.collector: LogCollector | None = None  # set by --log-timers
        self.collecting = False

    def drain_log(self) -> int:
        # while the collector keeps a run's lines, measure() must not take them
        if self.collecting and self.collector is not None:
            return len(self.collector.lines)
        return super().drain_log()

    def measure_logged(self, sc: Any, target: str, rnd: int) -> tuple[dict, str]:
        """measure(), every log line of the run kept: (record, timer summary line)."""
        assert self.collector is not None
        super().drain_log()  # what an earlier run left
        self.collector.start()
        self.collecting = True
        try:
            rec = self.measure(sc, target, rnd, rate=self.paced)
            time.sleep(0.3)  # tunnels are logged as they close
        finally:
            self.collecting = False
            lines = self.collector.stop()
        return rec, format_summary(timer_summary(lines))

    def proxy_argv(self, proxy: str) -> list[str]:
        if proxy == "lb_before":
            cfg = str(self.proxy_cfg[proxy])
            argv = [*shlex.split(self.before_cmd), "-f", cfg, "-db"]
        else:
            argv = super().proxy_argv(proxy)[3:]  # without the taskset prefix
        if self.callgrind and proxy != "haproxy":
            argv = ["valgrind", "--tool=callgrind", "--trace-children=yes",
                    f"--callgrind-out-file={self.run_dir}/callgrind.{proxy}.%p", *argv]
        return procs.pinned(self.proxy_core, argv)


def _callgrind_units(bench: _Bench, sc: Any, target: str, rnd: int) -> tuple[float, float]:
    """(instructions, units) of one measured run of ``target`` under callgrind."""
    pid = bench.proxies[target].pid
    bench.measure(sc, target, 0, rate=bench.paced)  # warm-up: caches, pools, first use
    subprocess.run(["callgrind_control", "-z", str(pid)], capture_output=True, timeout=60)
    rec = bench.measure(sc, target, rnd, rate=bench.paced)
    before = set(bench.run_dir.glob(f"callgrind.{target}.{pid}.*"))
    subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True, timeout=60)
    deadline = time.monotonic() + 30
    new: list[Path] = []
    while not new and time.monotonic() < deadline:
        time.sleep(0.2)
        new = sorted(set(bench.run_dir.glob(f"callgrind.{target}.{pid}.*")) - before)
    if not new:
        raise SystemExit(f"{target}: callgrind wrote no dump")
    summary = 0.0
    for line in new[-1].read_text(errors="replace").splitlines():
        if line.startswith("summary:"):
            summary = float(line.split()[1])
            break
    raw = rec.get("raw") or {}
    units = float(rec.get("value") or 0) * float(raw.get("seconds", bench.args.duration))
    return summary, units


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenarios", help="comma-separated scenario names (see run.py --help)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--targets", default="haproxy,lb")
    ap.add_argument("--spy", action="store_true", help="also profile lb with py-spy")
    ap.add_argument("--native", action="store_true", help="py-spy --native (C frames too)")
    ap.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--strace", action="store_true",
                    help="also count each proxy's system calls per unit (strace -c, one "
                         "extra run each; strace slows the proxy, so only counts are kept)")
    ap.add_argument("--lb-cmd", default=f"{sys.executable} -m lb")
    ap.add_argument("--out", default="/tmp/lb-profile")
    ap.add_argument("--lb-before-cmd", default="",
                    help="also measure this lb command as target lb_before (e.g. an older "
                         "commit), alternating with HAProxy and lb in each round")
    ap.add_argument("--paced", type=float, default=0.0,
                    help="drive each run open loop at this many units/s (wsbench -r) "
                         "instead of saturating")
    ap.add_argument("--callgrind", action="store_true",
                    help="instructions per unit of lb (and lb_before) under callgrind, "
                         "instead of CPU time against HAProxy")
    ap.add_argument("--busy-polling", action="store_true",
                    help="add `busy-polling` to both proxies' global section")
    ap.add_argument("--log-timers", action="store_true",
                    help="keep every httplog line of each run and print each proxy's "
                         "TR/Tw/Tc/Tr/Ta percentiles (ms)")
    args = ap.parse_args(argv)
    if args.log_timers and args.callgrind:
        ap.error("--log-timers times the proxies' own runs; it cannot go with --callgrind")
    if args.callgrind:
        for prog in ("valgrind", "callgrind_control"):
            if shutil.which(prog) is None:
                ap.error(f"--callgrind needs {prog} (Debian package 'valgrind')")
        args.targets = "lb"
    if args.spy and _spy_exe() is None:
        ap.error(f"--spy needs py-spy ({Path(sys.executable).parent}/pip install py-spy)")
    if args.strace and shutil.which("strace") is None:
        ap.error("--strace needs strace (Debian package 'strace')")
    names = [s for s in args.scenarios.split(",") if s]
    for n in names:
        if n not in BY_NAME or BY_NAME[n].mode == "idle":
            ap.error(f"unknown or unsupported scenario {n!r}")
        if args.paced and not paceable(BY_NAME[n]):
            ap.error(f"--paced: scenario {n!r} cannot be paced")
    if args.paced < 0:
        ap.error("--paced must be a positive rate")
    bargs = argparse.Namespace(
        quick=False, rounds=args.rounds, duration=args.duration, scenarios=names,
        targets=args.targets.split(","), idle_conns=100, lb_cmd=args.lb_cmd, lb_workers=1,
        no_install=True, out=args.out, nice=0, paced=args.paced, paced_load=0.0,
        busy_polling=args.busy_polling)
    bench = _Bench(bargs, args.lb_before_cmd, args.callgrind)
    try:
        bench.prepare()
        if args.log_timers:
            bench.collector = LogCollector(bench.log_sink)
            if not bench.collector.forced:
                print(f"(--log-timers: no CAP_NET_ADMIN, the log socket got "
                      f"{bench.collector.buffer:,} bytes of buffer; lines may be lost: "
                      "compare the line count with the units)", flush=True)
        bench.start_backends()
        targets = [t for t in ("haproxy", "lb") if t in bargs.targets]
        if args.lb_before_cmd:
            targets.append("lb_before")
        for proxy in targets:
            problem = bench.start_proxy(proxy)
            if problem:
                raise SystemExit(f"{proxy}: {problem}")
        time.sleep(1.0)
        for name in names:
            sc = BY_NAME[name]
            per: dict[str, list[float]] = {t: [] for t in targets}
            if args.callgrind:
                for rnd in range(1, args.rounds + 1):
                    for t in targets:
                        ir, units = _callgrind_units(bench, sc, t, rnd)
                        if units > 0:
                            per[t].append(ir / units)
                        print(f"{name:<20} {rnd} {t:<9} {units:>9,.0f} units  "
                              f"{ir / units if units else 0:>10,.0f} instructions/unit",
                              flush=True)
                med = {t: statistics.median(v) for t, v in per.items() if v}
                line = "  ".join(f"{t} {m:,.0f}" for t, m in med.items())
                if "lb" in med and "lb_before" in med:
                    line += f"  lb/lb_before {med['lb'] / med['lb_before']:.3f}"
                print(f"== {name}: instructions per {sc.unit.split('/')[0]}: {line}", flush=True)
                continue
            for rnd in range(1, args.rounds + 1):
                for t in targets:
                    pid = bench.proxies[t].pid
                    u0, s0 = procs.cpu_user_sys(pid)
                    timers = ""
                    if args.log_timers:
                        rec, timers = bench.measure_logged(sc, t, rnd)
                    else:
                        rec = bench.measure(sc, t, rnd, rate=bench.paced)
                    u1, s1 = procs.cpu_user_sys(pid)
                    us = rec.get("cpu_us_per_unit")
                    split = ""
                    if us is not None and (u1 - u0 + s1 - s0) > 0:
                        split = f" (user {100.0 * (u1 - u0) / (u1 - u0 + s1 - s0):.0f}%)"
                    if us is not None:
                        per[t].append(us)
                    lat = ""
                    if rec.get("p99_ms") is not None:
                        lat = f"  p50 {rec.get('p50_ms') or 0:.3f} p99 {rec['p99_ms']:.3f} ms"
                    print(f"{name:<20} {rnd} {t:<8} {rec.get('value', 0):>10,.1f} {sc.unit:<6}"
                          f" cpu {rec.get('cpu_pct', 0):5.1f}%  {us} us/unit{split}{lat}"
                          f"{'  PROBLEM ' + rec['problem'] if rec.get('problem') else ''}",
                          flush=True)
                    if timers:
                        print(f"{'':<20}   {t:<8} log timers: {timers}", flush=True)
            med = {t: statistics.median(v) for t, v in per.items() if v}
            line = "  ".join(f"{t} {m:.1f} us/{sc.unit.split('/')[0]}" for t, m in med.items())
            for t in ("lb", "lb_before"):
                if "haproxy" in med and t in med:
                    line += f"  {t}/HAProxy CPU per unit {med[t] / med['haproxy']:.2f}x"
            print(f"== {name}: {line}", flush=True)
            if args.strace:
                for t in targets:
                    print(_strace_run(bench, sc, t, args.duration), flush=True)
            if args.spy and "lb" in bench.proxies:
                out = bench.run_dir / f"pyspy-{name}.txt"
                spy = _spy(bench.proxies["lb"].pid, args.duration, out, args.native, args.rate)
                time.sleep(0.5)
                bench.measure(sc, "lb", 0, rate=bench.paced)
                try:
                    spy.wait(timeout=args.duration + 30)
                except subprocess.TimeoutExpired:
                    spy.kill()
                    spy.wait()
                if out.exists():
                    print(summarise_raw(out, args.top))
                    print(f"(raw stacks: {out})")
                else:
                    err = spy.stderr.read().decode(errors="replace") if spy.stderr else ""
                    print(f"py-spy produced nothing: {err[-400:]}")
    finally:
        bench.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
