"""The benchmark scenarios, their load-generator command lines and output parsers.

Owns: the SCENARIOS table (one row per measured situation, with its unit and
the target ratio from issue #9), building the wrk / wsbench argv for a target
port (saturating, and paced at a given rate), and turning the generators'
output into numbers.
Must not import: lb.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

HOST = "www.example.com"
WS_PATH = "/chat"
WS_PROTOCOL = "echo-protocol"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str            # short label for the chart
    what: str             # one line for the table / docs
    tool: str             # "wrk" or "wsbench"
    frontend: str         # fe_keepalive / fe_server_close / fe_close (port key)
    unit: str             # req/s, hs/s, msg/s, MB/s, KiB/conn
    target: float         # lb / HAProxy ratio to reach (memory: absolute KiB/conn max)
    higher_is_better: bool = True
    # wrk
    path: str = "/small.html"
    connections: int = 50
    close: bool = False   # client sends Connection: close
    # wsbench
    mode: str = ""
    size: int = 64
    window: int = 1
    tls: bool = False     # wrk over https to fe_tls (lb's own bar: issue #9 names none)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("http_keepalive_100b", "KA 100B", "HTTP keep-alive, 100 B body", "wrk",
             "fe_keepalive", "req/s", 0.9),
    Scenario("http_keepalive_16k", "KA 16K", "HTTP keep-alive, 16 KiB body", "wrk",
             "fe_keepalive", "req/s", 0.9, path="/static/16k.bin"),
    Scenario("http_server_close", "SRV-CLOSE", "option http-server-close, 100 B", "wrk",
             "fe_server_close", "req/s", 0.7),
    Scenario("http_close", "CLOSE", "close on both sides (httpclose + client close)", "wrk",
             "fe_close", "req/s", 0.5, close=True),
    Scenario("https_keepalive_100b", "TLS KA", "HTTPS keep-alive, 100 B body (TLS on bind)",
             "wrk", "fe_tls", "req/s", 0.9, tls=True),
    Scenario("https_close", "TLS CLOSE", "HTTPS, a TLS handshake per request (client close)",
             "wrk", "fe_tls", "req/s", 0.5, close=True, tls=True),
    Scenario("ws_handshake", "WS HS", "WebSocket handshakes (connect, 101, close)", "wsbench",
             "fe_keepalive", "hs/s", 0.5, mode="handshake", connections=50),
    Scenario("ws_echo_50", "ECHO 50", "WebSocket echo, 64 B, 50 connections", "wsbench",
             "fe_keepalive", "msg/s", 0.9, mode="echo", connections=50),
    Scenario("ws_echo_100", "ECHO 100", "WebSocket echo, 64 B, 100 connections", "wsbench",
             "fe_keepalive", "msg/s", 0.9, mode="echo", connections=100),
    Scenario("ws_echo_1000", "ECHO 1K", "WebSocket echo, 64 B, 1,000 connections", "wsbench",
             "fe_keepalive", "msg/s", 0.9, mode="echo", connections=1000),
    Scenario("ws_tunnel_64k", "TUNNEL", "tunnel throughput, 64 KiB messages, 10 conns x 4",
             "wsbench", "fe_keepalive", "MB/s", 1.0, mode="throughput", connections=10,
             size=65536, window=4),
    Scenario("ws_idle", "IDLE MEM", "idle WebSockets: proxy RSS per open tunnel", "wsbench",
             "fe_keepalive", "KiB/conn", 30.0, higher_is_better=False, mode="idle",
             connections=10000),
)

BY_NAME = {s.name: s for s in SCENARIOS}

# p99 latency may be at most this multiple of HAProxy's (issue #9)
P99_LIMIT = 1.5

# Latency at a common load. A closed loop at saturation makes latency the mirror
# of throughput (Little's law: 50 connections / rate), so each paceable scenario
# is run again open loop, by wsbench, at this fraction of the slower proxy's
# median rate in the same run: both proxies then carry the same offered load.
PACED_LOAD = 0.5
# a paced run that completes less than this share of what was offered did not
# keep up, and its latency is a queue's
SUSTAINED = 0.97


def paceable(sc: Scenario) -> bool:
    """The paced generator (wsbench) speaks no TLS."""
    return sc.unit in ("req/s", "hs/s", "msg/s") and not sc.tls


def wrk_argv(wrk: str, sc: Scenario, port: int, seconds: float) -> list[str]:
    argv = [wrk, "-t1", f"-c{sc.connections}", f"-d{seconds:g}s", "--latency",
            "-H", f"Host: {HOST}"]
    if sc.close:
        argv += ["-H", "Connection: close"]
    scheme = "https" if sc.tls else "http"
    return [*argv, f"{scheme}://127.0.0.1:{port}{sc.path}"]


def wsbench_argv(exe: str, sc: Scenario, port: int, seconds: float,
                 connections: int | None = None) -> list[str]:
    return [exe, "-p", str(port), "-m", sc.mode, "-c", str(connections or sc.connections),
            "-d", f"{seconds:g}", "-s", str(sc.size), "-w", str(sc.window), "-H", HOST,
            "-u", WS_PATH, "-P", WS_PROTOCOL]


def paced_argv(exe: str, sc: Scenario, port: int, seconds: float, rate: float) -> list[str]:
    """wsbench, open loop at `rate` operations/s, for a paceable scenario: HTTP
    ones in its http mode (same path, Host and connection count as wrk's)."""
    if sc.tool == "wrk":
        argv = [exe, "-p", str(port), "-m", "http", "-c", str(sc.connections),
                "-d", f"{seconds:g}", "-H", HOST, "-u", sc.path]
        if sc.close:
            argv.append("-C")
    else:
        argv = wsbench_argv(exe, sc, port, seconds)
    return [*argv, "-r", f"{rate:.1f}"]


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise ValueError(f"bad wrk duration {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> dict:
    """Requests/s, latency percentiles (ms) and error counts from `wrk --latency`."""
    res: dict = {"non2xx": 0, "socket_errors": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise ValueError("wrk printed no Requests/sec line")
    res["rate"] = float(m.group(1))
    m = re.search(r"(\d+) requests in ([\d.]+\w+)", out)
    if m:
        res["requests"] = int(m.group(1))
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+\w+)\s*$", out, re.M)
        if m:
            res[f"p{pct}_ms"] = _ms(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        res["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        res["socket_errors"] = sum(int(x) for x in m.groups())
        res["socket_errors_detail"] = m.group(0)
    return res


def parse_wsbench(out: str) -> dict:
    """The JSON line wsbench prints last; latencies converted to ms."""
    for line in reversed(out.strip().splitlines()):
        if line.startswith("{"):
            res = json.loads(line)
            break
    else:
        raise ValueError("wsbench printed no result line")
    for key in ("p50", "p99", "p999"):
        us = res.pop(f"{key}_us", -1)
        if us >= 0:
            res[f"{key}_ms"] = us / 1000.0
    res["failures"] = sum(res.get(k, 0) for k in (
        "errors", "connect_errors", "bad_handshakes", "bad_responses", "mismatches",
        "closed_by_peer"))
    return res


def value_of(sc: Scenario, parsed: dict) -> float:
    """The headline figure of a run, in the scenario's unit."""
    if sc.unit == "MB/s":
        return float(parsed["mb_per_s"])
    return float(parsed["rate"])


def errors_of(sc: Scenario, parsed: dict) -> int:
    if "failures" in parsed:  # wsbench's output: its own scenarios, or any paced run
        return int(parsed["failures"])
    return int(parsed.get("non2xx", 0)) + int(parsed.get("socket_errors", 0))
