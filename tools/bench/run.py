#!/usr/bin/env python3
"""Benchmark lb side by side with HAProxy (issue #9).

    python tools/bench/run.py            # 3 rounds x 5 s per run (a few minutes)
    python tools/bench/run.py --quick    # 1 round x 2 s, for a smoke check
    make bench

Starts nginx (HTTP backend) and two wsecho processes (WebSocket echo backend),
then HAProxy and lb with the same realistic configuration
(tools/bench/configs/bench.cfg), and runs every scenario of harness/scenarios.py
against the backends directly, through HAProxy and through lb, alternating
targets in each round. The proxy under test is pinned to core 0, load
generators and backends to core 1. Prints a table of medians and writes
tools/bench/out/results-<timestamp>.json and .png.

Everything is bounded: each run has a fixed duration and a hard timeout, and
every process started here is stopped (by PID) before exit.
Must not import: lb (it is run as a program, like HAProxy).
"""

from __future__ import annotations

import argparse
import os
import select
import shlex
import shutil
import socket
import string
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import prereq, procs, report  # noqa: E402
from harness.scenarios import (  # noqa: E402
    HOST,
    PACED_LOAD,
    SCENARIOS,
    WS_PATH,
    WS_PROTOCOL,
    Scenario,
    errors_of,
    paceable,
    paced_argv,
    parse_wrk,
    parse_wsbench,
    value_of,
    wrk_argv,
    wsbench_argv,
)

BENCH_DIR = prereq.BENCH_DIR
OUT_DIR = BENCH_DIR / "out"
CONFIG_TEMPLATE = BENCH_DIR / "configs" / "bench.cfg"
NGINX_TEMPLATE = BENCH_DIR / "configs" / "nginx.conf"
FRONTENDS = ("fe_keepalive", "fe_server_close", "fe_close")
TLS_FRONTEND = "fe_tls"  # the HTTPS scenarios (a certificate made for the run)
WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
WS_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 section 1.3 example
IDLE_HOLD = 2.0
KEEP_RUN_DIRS = 10  # older run-* directories (configs, logs, static files) are removed


def log(msg: str) -> None:
    print(msg, flush=True)


def cores() -> tuple[str, str, str]:
    """(proxy core, load core, sentence for the output)."""
    if (os.cpu_count() or 1) >= 2:
        return "0", "1", ("proxy pinned to core 0 (taskset -c 0); load generators and "
                          "backends pinned to core 1 (taskset -c 1)")
    return "0", "0", "single CPU: everything shares core 0 (figures are not comparable)"


def cpu_times() -> dict[str, list[int]]:
    """Jiffies per CPU from /proc/stat: user nice system idle iowait irq softirq steal."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            name, *vals = line.split()
            out[name] = [int(v) for v in vals[:8]]
    return out


def nginx_accepts(port: int) -> int | None:
    """nginx's total accepted connections (stub_status), or None if unreadable."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2.0) as s:
            s.sendall(b"GET /nginx_status HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        return int(data.split(b"\r\n\r\n", 1)[1].split(b"\n")[2].split()[0])
    except (OSError, IndexError, ValueError):
        return None


def busy_pct(before: dict, after: dict) -> dict[str, float]:
    """Per CPU: busy % (all but idle and iowait) and softirq % (the loopback network
    stack mostly runs there, and is not charged to any process)."""
    res = {}
    for cpu, now in after.items():
        was = before.get(cpu, [0] * 8)
        d = [a - b for a, b in zip(now, was, strict=True)]
        total = sum(d)
        if total > 0:
            res[cpu] = round(100.0 * (total - d[3] - d[4]) / total, 1)
            res[f"{cpu}_softirq"] = round(100.0 * d[6] / total, 1)
    return res


# ------------------------------------------------------------------ probes


def _exchange(port: int, request: bytes, timeout: float = 3.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def _ws_request(host: str, protocol: str | None) -> bytes:
    proto = f"Sec-WebSocket-Protocol: {protocol}\r\n" if protocol else ""
    return (f"GET {WS_PATH} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {WS_KEY}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{proto}\r\n").encode()


def probe(port: int) -> dict:
    """What works through a frontend: HTTP (200), WebSocket (101 + right accept),
    and whether the proxy does the configured work (cookie insertion, the
    WebSocket validation rules). "http"/"ws" hold None or the problem."""
    res: dict = {"http": "not tried", "ws": "not tried"}
    try:
        resp = _exchange(port, (f"GET /small.html HTTP/1.1\r\nHost: {HOST}\r\n"
                                "Connection: close\r\n\r\n").encode())
        res["http"] = None if resp.startswith(b"HTTP/1.1 200") else f"got {resp[:60]!r}"
        res["cookie_inserted"] = b"\nset-cookie: srvid=" in resp.lower()
    except OSError as exc:
        res["http"] = f"HTTP probe failed: {exc}"
    try:
        resp = _exchange(port, _ws_request(HOST, WS_PROTOCOL))
        ok = resp.startswith(b"HTTP/1.1 101") and WS_ACCEPT.encode() in resp
        res["ws"] = None if ok else f"got {resp[:60]!r}"
        res["ws_cookie_inserted"] = b"\nset-cookie: wssrv=" in resp.lower()
        resp = _exchange(port, _ws_request("ws.example.com", None))
        res["ws_validation_denies"] = resp.startswith(b"HTTP/1.1 403")
    except OSError as exc:
        res["ws"] = f"WebSocket probe failed: {exc}"
    return res


# ------------------------------------------------------------------ the bench


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.proxy_core, self.load_core, self.pinning = cores()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.stamp = stamp
        self.out_dir = Path(args.out)
        self.run_dir = self.out_dir / f"run-{stamp}"
        self.children: list[procs.Child] = []
        self.proxies: dict[str, procs.Child] = {}
        self.proxy_ports: dict[str, dict[str, int]] = {}
        self.proxy_cfg: dict[str, Path] = {}
        self.unavailable: dict[str, str] = {}
        self.ws_problem: dict[str, str] = {}   # proxy -> why WebSocket scenarios are skipped
        self.probes: dict[str, dict] = {}
        self.startup_s: dict[str, float] = {}
        self.commands: dict[str, str] = {}
        self.tools: dict[str, Path] = {}
        self.log_sink: socket.socket | None = None
        self.proxy_start_timeout = 15.0  # seconds for a proxy to listen (valgrind: more)

    # -- set-up ---------------------------------------------------------

    def prepare(self) -> None:
        old_runs = sorted(self.out_dir.glob("run-*")) if self.out_dir.exists() else []
        for old in old_runs[:-KEEP_RUN_DIRS]:
            shutil.rmtree(old, ignore_errors=True)
        if self.args.no_install:
            missing = prereq.missing_programs()
            for prog in missing:
                pkg, why = prereq.REQUIRED[prog]
                log(f"missing: {prog} ({why}); install the Debian package '{pkg}'")
        else:
            missing = prereq.ensure_programs(log)  # says itself what is still missing
        if missing:
            raise SystemExit(f"cannot run: missing {', '.join(missing)}")
        self.tools = prereq.build_tools(log)
        (self.run_dir / "www" / "static").mkdir(parents=True, exist_ok=True)
        (self.run_dir / "nginx-tmp").mkdir(exist_ok=True)
        (self.run_dir / "www" / "small.html").write_bytes(b"x" * 99 + b"\n")
        (self.run_dir / "www" / "static" / "16k.bin").write_bytes(
            bytes(i % 251 for i in range(16384)))
        self.log_sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.log_sink.bind(("127.0.0.1", 0))
        self.log_sink.setblocking(False)
        nofile = procs.nofile_limit()
        want = self.args.idle_conns
        # a proxy holds two sockets per tunnel plus a few dozen others
        fit = (nofile - 100) // 2
        self.maxconn = max(100, min(max(want, 10000), fit))
        self.idle_conns = min(want, self.maxconn - 50)
        # `--lb-workers N`: lb's tunnels are spread over N processes (SO_REUSEPORT),
        # each with its own fd limit and maxconn
        workers = max(1, self.args.lb_workers)
        self.idle_by_target = {"lb": min(want, workers * (self.maxconn - 50))}
        self.idle_note = ""
        if self.idle_conns < want:
            self.idle_note = (f"{want:,} idle tunnels need {2 * want + 100:,} fds in the proxy; "
                              f"the hard open-file limit here is {nofile:,}, so "
                              f"{self.idle_conns:,} were opened")
            if workers > 1:
                self.idle_note += (f" ({self.idle_by_target['lb']:,} through lb's {workers} "
                                   "worker processes)")

    def start_backends(self) -> None:
        web1, web2, ws1, ws2 = procs.free_ports(4)
        self.backend_ports = {"WEB1_PORT": web1, "WEB2_PORT": web2,
                              "WS1_PORT": ws1, "WS2_PORT": ws2}
        conf = self.run_dir / "nginx.conf"
        conf.write_text(string.Template(NGINX_TEMPLATE.read_text()).substitute(
            RUN_DIR=self.run_dir, WEB1_PORT=web1, WEB2_PORT=web2,
            SMALL_BODY="x" * 99 + "\\n"))
        nginx = prereq.find("nginx")
        argv = procs.pinned(self.load_core, [nginx, "-p", str(self.run_dir), "-c", str(conf),
                                             "-e", str(self.run_dir / "nginx-error.log")])
        self._start("nginx", argv, [web1, web2])
        for name, port in (("wsecho1", ws1), ("wsecho2", ws2)):
            argv = procs.pinned(self.load_core, [str(self.tools["wsecho"]), "-p", str(port)])
            self._start(name, argv, [port])

    def _start(self, name: str, argv: list[str], ports: list[int],
               cwd: Path | None = None) -> procs.Child:
        child = procs.start(name, argv, self.run_dir / f"{name}.log", cwd=cwd)
        self.children.append(child)
        self.commands[name] = child.command
        for port in ports:
            if not procs.wait_port(port, child, timeout=15.0):
                raise RuntimeError(f"{name} did not listen on {port}:\n{child.log_tail()}")
        return child

    def write_proxy_config(self, proxy: str) -> Path:
        names = (*FRONTENDS, TLS_FRONTEND)
        ports = dict(zip(names, procs.free_ports(len(names)), strict=True))
        self.proxy_ports[proxy] = ports
        values = {
            **self.backend_ports,
            "MAXCONN": self.maxconn,
            "LOG_PORT": self.log_sink.getsockname()[1],
            "FE_KEEPALIVE_PORT": ports["fe_keepalive"],
            "FE_SERVER_CLOSE_PORT": ports["fe_server_close"],
            "FE_CLOSE_PORT": ports["fe_close"],
            "FE_TLS_PORT": ports[TLS_FRONTEND],
            "TLS_CRT": self.tls_certificate(),
        }
        text = string.Template(CONFIG_TEMPLATE.read_text()).substitute(values)
        if getattr(self.args, "busy_polling", False):  # both proxies, the same line
            text = text.replace("\nglobal\n", "\nglobal\n    busy-polling\n", 1)
        path = self.run_dir / f"{proxy}.cfg"
        path.write_text(text)
        self.proxy_cfg[proxy] = path
        return path

    def tls_certificate(self) -> Path:
        """A self-signed P-256 certificate and its key in one PEM file (`openssl`)."""
        pem = self.run_dir / "bench-tls.pem"
        if not pem.exists():
            key, crt = self.run_dir / "bench-tls.key", self.run_dir / "bench-tls.crt"
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key),
                            "-out", str(crt), "-days", "2", "-subj", f"/CN={HOST}"],
                           check=True, capture_output=True, timeout=60)
            pem.write_bytes(crt.read_bytes() + key.read_bytes())
        return pem

    def proxy_argv(self, proxy: str) -> list[str]:
        cfg = str(self.proxy_cfg[proxy])
        if proxy == "haproxy":
            base = [prereq.find("haproxy"), "-f", cfg, "-db"]
        else:
            base = [*shlex.split(self.args.lb_cmd), "-f", cfg, "-db"]
            if self.args.lb_workers > 1:
                base += ["--workers", str(self.args.lb_workers)]
        return procs.pinned(self.proxy_core, base)

    def start_proxy(self, proxy: str) -> str | None:
        """Starts one proxy; returns None when it serves HTTP, else why not.
        WebSocket trouble alone only skips the WebSocket scenarios."""
        if proxy not in self.proxy_cfg:
            self.write_proxy_config(proxy)
        argv = self.proxy_argv(proxy)
        t_start = time.monotonic()
        child = procs.start(proxy, argv, self.run_dir / f"{proxy}.log",
                            cwd=prereq.REPO if proxy == "lb" else None)
        self.children.append(child)
        self.commands[proxy] = child.command
        ports = self.proxy_ports[proxy]
        for port in ports.values():
            if not procs.wait_port(port, child, timeout=self.proxy_start_timeout):
                child.stop()
                tail = child.log_tail(8)
                return f"did not listen on 127.0.0.1:{port}" + (f"\n{tail}" if tail else "")
        # time from exec to all three frontends accepting (first start only)
        self.startup_s.setdefault(proxy, round(time.monotonic() - t_start, 3))
        deadline = time.monotonic() + 8.0
        while True:
            probes = {fe: probe(ports[fe]) for fe in FRONTENDS}
            http = next((f"{fe}: {p['http']}" for fe, p in probes.items() if p["http"]), None)
            ws = probes["fe_keepalive"]["ws"]
            if (http is None and ws is None) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.probes[proxy] = probes["fe_keepalive"]
        if http is not None:
            child.stop()
            return http
        self.ws_problem.pop(proxy, None)
        if ws is not None:
            self.ws_problem[proxy] = f"WebSocket upgrade does not work: {ws}"
        self.proxies[proxy] = child
        return None

    def restart_proxy(self, proxy: str) -> str | None:
        old = self.proxies.pop(proxy, None)
        if old is not None:
            old.stop()
        return self.start_proxy(proxy)

    # -- measuring ------------------------------------------------------

    def drain_log(self) -> int:
        n = 0
        while True:
            try:
                self.log_sink.recv(65536)
            except BlockingIOError:
                return n
            n += 1

    def target_port(self, sc: Scenario, target: str) -> int:
        if target == "direct":
            return self.backend_ports["WEB1_PORT" if sc.tool == "wrk" else "WS1_PORT"]
        return self.proxy_ports[target][sc.frontend]

    def gen_argv(self, sc: Scenario, port: int, seconds: float,
                 connections: int | None = None, rate: float = 0.0) -> list[str]:
        if rate:
            argv = paced_argv(str(self.tools["wsbench"]), sc, port, seconds, rate)
        elif sc.tool == "wrk":
            argv = wrk_argv(prereq.find("wrk"), sc, port, seconds)
        else:
            argv = wsbench_argv(str(self.tools["wsbench"]), sc, port, seconds, connections)
        return procs.pinned(self.load_core, argv)

    def measure(self, sc: Scenario, target: str, rnd: int, rate: float = 0.0) -> dict:
        """One run of a scenario against a target: saturating (wrk or wsbench
        closed loop), or open loop at `rate` operations/s when given."""
        if sc.mode == "idle":
            return self.measure_idle(sc, target, rnd)
        # a busy-polling proxy never sleeps: one left running beside the measured one
        # would take half of the proxy core, so the others are paused for the run
        paused = ([c for name, c in self.proxies.items() if name != target]
                  if getattr(self.args, "busy_polling", False) else [])
        for child in paused:
            child.pause()
        idle0 = {c.name: procs.cpu_seconds(c.pid) for c in paused}
        try:
            rec = self._measure(sc, target, rnd, rate)
            if paused:  # what the paused ones used meanwhile: nothing, when paused
                rec["paused_cpu_s"] = {c.name: round(procs.cpu_seconds(c.pid) - idle0[c.name], 3)
                                       for c in paused}
            return rec
        finally:
            for child in paused:
                child.resume()

    def _measure(self, sc: Scenario, target: str, rnd: int, rate: float) -> dict:
        port = self.target_port(sc, target)
        argv = self.gen_argv(sc, port, self.args.duration, rate=rate)
        wsbench_out = rate > 0 or sc.tool == "wsbench"
        proxy = self.proxies.get(target)
        self.drain_log()
        web1 = self.backend_ports["WEB1_PORT"]
        accepts0 = nginx_accepts(web1) if sc.tool == "wrk" else None
        cpu0 = procs.cpu_seconds(proxy.pid) if proxy else None
        stat0, t0 = cpu_times(), time.monotonic()
        rec: dict = {"target": target, "round": rnd, "command": shlex.join(argv)}
        try:
            res = subprocess.run(argv, capture_output=True, text=True,
                                 timeout=self.args.duration + 60, preexec_fn=procs.raise_limits)
            out = res.stdout
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout or ""
            rec["problem"] = "generator timed out"
        wall = time.monotonic() - t0
        rec["cores_busy_pct"] = busy_pct(stat0, cpu_times())
        if proxy:
            cpu_used = procs.cpu_seconds(proxy.pid) - cpu0
            rec["cpu_pct"] = round(100.0 * cpu_used / wall, 1)
            if wsbench_out:
                time.sleep(0.3)  # tunnels are logged when they close, just now
            rec["log_datagrams_seen"] = self.drain_log()
            if not proxy.alive():
                rec["problem"] = f"{target} exited:\n{proxy.log_tail()}"
        try:
            parsed = parse_wsbench(out) if wsbench_out else parse_wrk(out)
        except ValueError as exc:
            rec["problem"] = f"{exc}: {out[-300:]!r}"
            return rec
        rec.update(value=value_of(sc, parsed), p50_ms=parsed.get("p50_ms"),
                   p99_ms=parsed.get("p99_ms"), errors=errors_of(sc, parsed), raw=parsed)
        if rate:
            rec.update(offered=rate, p999_ms=parsed.get("p999_ms"))
        units = rec["value"] * float(parsed.get("seconds", self.args.duration))
        if proxy and units > 0:
            # proxy CPU per request / message / handshake / MB: steadier than
            # throughput when other jobs share the machine
            rec["cpu_us_per_unit"] = round(cpu_used * 1e6 / units, 2)
        accepts1 = nginx_accepts(web1) if accepts0 is not None else None
        if accepts1 is not None and parsed.get("requests"):
            # new backend connections per request: ~0 keep-alive, ~1 server-close/close
            rec["backend_conns_per_req"] = round((accepts1 - accepts0) / parsed["requests"], 3)
        return rec

    def measure_idle(self, sc: Scenario, target: str, rnd: int) -> dict:
        """RSS growth of a freshly started proxy holding N idle WebSockets."""
        rec: dict = {"target": target, "round": rnd}
        problem = self.restart_proxy(target)
        if problem:
            rec["problem"] = f"restart failed: {problem}"
            return rec
        proxy = self.proxies[target]
        time.sleep(1.0)
        rss0 = procs.rss_bytes(proxy.pid)
        conns = self.idle_by_target.get(target, self.idle_conns)
        argv = self.gen_argv(sc, self.target_port(sc, target), IDLE_HOLD, conns)
        rec["command"] = shlex.join(argv)
        gen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=procs.raise_limits)
        ready = None
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < 60.0:
                r, _, _ = select.select([gen.stdout], [], [], 1.0)
                if r:
                    line = gen.stdout.readline()
                    if not line:
                        break
                    if line.startswith("READY"):
                        ready = int(line.split()[1])
                        break
            rec["setup_s"] = round(time.monotonic() - t0, 2)
            if ready:
                time.sleep(0.5)
                rss1 = procs.rss_bytes(proxy.pid)
            out, _ = gen.communicate(timeout=IDLE_HOLD + 30)
        except subprocess.TimeoutExpired:
            out = ""
            ready = ready and 0
        finally:
            if gen.poll() is None:
                gen.kill()
                gen.wait()
        if not ready:
            rec["problem"] = f"generator never opened its connections: {out[-300:]!r}" \
                if ready is None else "no connection opened"
            return rec
        parsed = parse_wsbench(out)
        rec.update(value=(rss1 - rss0) / 1024.0 / ready, rss_before=rss0, rss_after=rss1,
                   opened=ready, held_to_end=parsed.get("opened"),
                   errors=errors_of(sc, parsed) + (conns - ready), raw=parsed)
        if not proxy.alive():
            rec["problem"] = f"{target} exited:\n{proxy.log_tail()}"
        return rec

    # -- the whole run --------------------------------------------------

    def run(self) -> dict:
        started = datetime.now(UTC).isoformat(timespec="seconds")
        self.prepare()
        python = lb_python(self.args.lb_cmd)
        info = {"machine": prereq.machine_info(), "versions": prereq.versions(python)}
        log(f"machine:  {info['machine']}")
        log(f"versions: {info['versions']}")
        log(f"pinning:  {self.pinning}")
        log(f"bench:    {shlex.join([sys.executable, *sys.argv])}")
        if self.args.nice:
            log(f"priority: every bench process runs at nice {self.args.nice}")
        if getattr(self.args, "busy_polling", False):
            log("busy-polling: on in both proxies' global section")
        self.start_backends()
        targets = [t for t in ("direct", "haproxy", "lb") if t in self.args.targets]
        for proxy in ("haproxy", "lb"):
            if proxy not in targets:
                continue
            problem = self.start_proxy(proxy)
            if problem:
                self.unavailable[proxy] = problem
                log(f"{proxy}: NOT MEASURED ({problem.splitlines()[0]})")
                targets.remove(proxy)
            elif proxy in self.ws_problem:
                log(f"{proxy}: WebSocket scenarios skipped ({self.ws_problem[proxy]})")
        for proxy, p in self.probes.items():
            log(f"does the configured work: {proxy}: cookie insert "
                f"{_yes(p.get('cookie_inserted'))}, WebSocket cookie "
                f"{_yes(p.get('ws_cookie_inserted'))}, WebSocket validation 403 "
                f"{_yes(p.get('ws_validation_denies'))}")
        for name, cmd in self.commands.items():
            log(f"command:  {name}: {cmd}")
        time.sleep(1.0)  # first health checks
        scenarios = [s for s in SCENARIOS if not self.args.scenarios
                     or s.name in self.args.scenarios]
        entries = []
        for sc in scenarios:
            runs = []
            skipped: dict[str, str] = {}
            for rnd in range(1, self.args.rounds + 1):
                for target in targets:
                    if (sc.mode == "idle" or sc.tls) and target == "direct":
                        continue
                    if target in self.unavailable:
                        continue
                    if sc.tool == "wsbench" and target in self.ws_problem:
                        skipped[target] = self.ws_problem[target]
                        continue
                    rec = self.measure(sc, target, rnd)
                    runs.append(rec)
                    shown = (f"{rec['value']:,.1f} {sc.unit}" if rec.get("value") is not None
                             else "no figure")
                    extra = f" cpu {rec['cpu_pct']}%" if "cpu_pct" in rec else ""
                    log(f"  {sc.name:<20} round {rnd} {target:<8} {shown}{extra}"
                        f"{' errors ' + str(rec['errors']) if rec.get('errors') else ''}"
                        f"{' PROBLEM: ' + rec['problem'] if rec.get('problem') else ''}")
                    if rec.get("problem") and target in self.proxies \
                            and not self.proxies[target].alive():
                        self.unavailable[target] = rec["problem"]
            summary = report.summarise(runs)
            entry = {"name": sc.name, "what": sc.what, "unit": sc.unit, "target": sc.target,
                     "higher_is_better": sc.higher_is_better, "summary": summary,
                     "verdict": report.verdict(sc, summary), "runs": runs}
            paced = self.run_paced(sc, summary, targets, skipped)
            if paced:
                entry["paced"] = paced
            notes = [f"{t} skipped: {why}" for t, why in skipped.items()]
            notes += _conn_reuse_notes(runs)
            if sc.mode == "idle" and self.idle_note:
                notes.append(self.idle_note)
            if notes:
                entry["note"] = "; ".join(notes)
            entries.append(entry)
        return {
            "started": started,
            **info,
            "pinning": self.pinning,
            "bench_command": shlex.join([sys.executable, *sys.argv]),
            "settings": {"rounds": self.args.rounds, "duration_s": self.args.duration,
                         "idle_conns": self.idle_conns, "idle_hold_s": IDLE_HOLD,
                         "order": "each round: " + " -> ".join(targets),
                         "paced_load": self.args.paced_load,
                         "maxconn": self.maxconn, "nice": self.args.nice,
                         "busy_polling": bool(getattr(self.args, "busy_polling", False))},
            "commands": self.commands,
            "pids": {c.name: c.pid for c in self.children},
            "configs": {k: str(v) for k, v in self.proxy_cfg.items()},
            "config_template": str(CONFIG_TEMPLATE.relative_to(prereq.REPO)),
            "unavailable": self.unavailable,
            "websocket_unavailable": self.ws_problem,
            "probes": self.probes,
            "startup_s": self.startup_s,
            "config_10k": (self.config_bench()
                           if "lb" in targets and not self.args.no_config_bench else None),
            "scenarios": entries,
        }

    def run_paced(self, sc: Scenario, summary: dict, targets: list[str],
                  skipped: dict[str, str]) -> dict | None:
        """The scenario again, open loop, at a load both proxies carry: a share
        of the slower one's median rate just measured. Proxies only."""
        load = self.args.paced_load
        proxies = [t for t in targets if t in ("haproxy", "lb") and t in summary
                   and t not in self.unavailable and t not in skipped]
        rates = [summary[t]["value"] for t in proxies if summary[t]["value"]]
        if load <= 0 or not paceable(sc) or not rates:
            return None
        rate = round(load * min(rates), 1)
        runs = []
        for rnd in range(1, self.args.rounds + 1):
            for target in proxies:
                if target in self.unavailable:
                    continue
                rec = self.measure(sc, target, rnd, rate=rate)
                runs.append(rec)
                shown = "no figure" if rec.get("value") is None else \
                    f"{rec['value']:,.1f} {sc.unit}"
                if rec.get("p99_ms") is not None:
                    shown += f" p99 {rec['p99_ms']:.2f} ms"
                log(f"  {sc.name:<20} paced {rnd} {target:<8} at {rate:,.1f}: {shown}"
                    f"{' errors ' + str(rec['errors']) if rec.get('errors') else ''}"
                    f"{' PROBLEM: ' + rec['problem'] if rec.get('problem') else ''}")
        paced_summary = report.summarise(runs)
        return {"rate": rate, "load": load, "basis": min(rates), "summary": paced_summary,
                "verdict": report.paced_verdict(paced_summary, rate), "runs": runs}

    def config_bench(self) -> dict | None:
        """tools/bench_config.py: loading and `lb -c` on a 10,000-line config."""
        script = prereq.REPO / "tools" / "bench_config.py"
        if not script.exists():
            return None
        argv = [lb_python(self.args.lb_cmd), str(script)]
        try:
            res = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                                 cwd=prereq.REPO)
        except subprocess.TimeoutExpired:
            return {"command": shlex.join(argv), "output": ["timed out after 120 s"], "rc": -1}
        return {"command": shlex.join(argv), "rc": res.returncode,
                "output": (res.stdout + res.stderr).strip().splitlines()}

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        if self.log_sink is not None:
            self.log_sink.close()


def lb_python(lb_cmd: str) -> str:
    """The Python that runs lb for ``--lb-cmd``: its first word when that is a Python
    interpreter (``python -m lb``), else (a wrapper script) the harness's own."""
    first = shlex.split(lb_cmd)[0]
    return first if os.path.basename(first).startswith("python") else sys.executable


def _conn_reuse_notes(runs: list[dict]) -> list[str]:
    """Flags a proxy that opens backend connections at a different rate than
    HAProxy in the same scenario (then the figures are not like-for-like)."""
    per = {}
    for target in ("haproxy", "lb"):
        vals = [r["backend_conns_per_req"] for r in runs
                if r["target"] == target and "backend_conns_per_req" in r]
        if vals:
            per[target] = sorted(vals)[len(vals) // 2]
    if len(per) == 2 and abs(per["lb"] - per["haproxy"]) > 0.25:
        return [f"backend connections per request: lb {per['lb']:.2f}, "
                f"HAProxy {per['haproxy']:.2f} (not like-for-like)"]
    return []


def _yes(flag: bool | None) -> str:
    return "n/a" if flag is None else ("yes" if flag else "NO")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    repo_python = prereq.REPO / ".venv" / "bin" / "python"
    python = str(repo_python) if repo_python.exists() else sys.executable
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="1 round of 2 s per run and 2,000 idle tunnels (smoke check)")
    p.add_argument("--rounds", type=int, default=3, help="rounds per scenario (default 3)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per run (default 5)")
    p.add_argument("--scenarios", type=lambda s: s.split(","), default=[],
                   help="comma-separated scenario names (default: all): "
                        + ",".join(s.name for s in SCENARIOS))
    p.add_argument("--targets", type=lambda s: s.split(","), default=["direct", "haproxy", "lb"],
                   help="comma-separated subset of direct,haproxy,lb")
    p.add_argument("--idle-conns", type=int, default=10000,
                   help="idle WebSockets to hold (default 10,000, capped by the fd limit)")
    p.add_argument("--lb-cmd", default=f"{python} -m lb",
                   help="how to run lb (default: the venv's python -m lb)")
    p.add_argument("--lb-workers", type=int, default=1,
                   help="run lb with --workers N (all pinned to the proxy core); the idle "
                        "scenario then opens up to N times the per-process fd budget")
    p.add_argument("--paced-load", type=float, default=PACED_LOAD,
                   help="after each request, handshake or echo scenario, run it again open "
                        "loop at this fraction of the slower proxy's median rate and compare "
                        f"latencies at that common load (default {PACED_LOAD:g}; 0 = skip)")
    p.add_argument("--busy-polling", action="store_true",
                   help="add `busy-polling` to the global section of both proxies' "
                        "configuration (neither sleeps in its poller)")
    p.add_argument("--no-install", action="store_true", help="never run apt-get")
    p.add_argument("--no-config-bench", action="store_true",
                   help="skip the 10,000-line config figures (tools/bench_config.py)")
    p.add_argument("--out", default=str(OUT_DIR),
                   help="directory for results and run files (default tools/bench/out)")
    p.add_argument("--nice", type=int, default=0,
                   help="scheduling priority for every process of the bench, e.g. -5 on a "
                        "shared machine (default 0; negative values need root)")
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.duration = 1, 2.0
        args.idle_conns = min(args.idle_conns, 2000)
    unknown = set(args.scenarios) - {s.name for s in SCENARIOS}
    if unknown:
        p.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    if args.rounds < 1 or args.duration <= 0:
        p.error("--rounds must be >= 1 and --duration > 0")
    if not 0 <= args.paced_load < 1:
        p.error("--paced-load must be at least 0 and below 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    procs.NICE = args.nice
    bench = Bench(args)
    try:
        results = bench.run()
    except (RuntimeError, OSError, ValueError, KeyError) as exc:
        log(f"bench: {exc}")
        return 1
    except KeyboardInterrupt:
        log("bench: interrupted; every process it started has been stopped")
        return 130
    finally:
        bench.stop()
    bench.out_dir.mkdir(parents=True, exist_ok=True)
    json_path = bench.out_dir / f"results-{bench.stamp}.json"
    png_path = bench.out_dir / f"results-{bench.stamp}.png"
    report.write_json(results, json_path)
    report.chart(results, png_path)
    log("")
    log(f"Results (medians of {args.rounds} round(s) x {args.duration:g} s; "
        f"{bench.pinning})\n"
        "CPU% = proxy CPU time / wall time (100 = one core); us/unit = proxy CPU "
        "microseconds per request, handshake, message or MB; c0/c1% = how busy each core "
        "was, other jobs included")
    if args.paced_load:
        log(f"'at {args.paced_load:g} load' rows: the scenario again, open loop (wsbench -r), "
            f"at {args.paced_load:g} x the slower proxy's median rate above; latency counted "
            "from when each operation was due")
    log(report.table(results))
    if results["startup_s"]:
        log("start-up to listening (bench config): " + ", ".join(
            f"{p} {t:.2f} s" for p, t in results["startup_s"].items()))
    if results.get("config_10k"):
        cfg = results["config_10k"]
        log(f"10,000-line config ({cfg['command']}): " + "; ".join(cfg["output"]))
    for proxy, why in results["unavailable"].items():
        log(f"{proxy}: not measured: {why.splitlines()[0]}")
    log(f"\njson:  {json_path}\nchart: {png_path}\nrun files (configs, logs): {bench.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
