"""Every traffic log line of a run, and the timers in them (profile_lb --log-timers).

Owns: ``LogCollector``, which widens the bench's syslog socket and drains it from a
thread while a run goes on, so that all of a run's lines are kept (the default
receive buffer drops most of them at saturation), and ``timer_summary``, the
percentiles of the httplog timers TR/Tw/Tc/Tr/Ta in those lines. Both proxies log
the same format, so the two summaries compare where each proxy's time went: a
request's wait for its server's response (``Tr``) is also the time the proxy took to
read that response once it was there.
Must not import: lb (the proxies are programs under test).
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterable

# SO_RCVBUFFORCE: above net.core.rmem_max, for a process with CAP_NET_ADMIN
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
# "... TR/Tw/Tc/Tr/Ta status bytes ..." of an httplog line (Ta may carry a "+")
_TIMERS = re.compile(rb" (-?\d+)/(-?\d+)/(-?\d+)/(-?\d+)/\+?(-?\d+) \d{3} ")
TIMER_NAMES = ("TR", "Tw", "Tc", "Tr", "Ta")
PERCENTILES = (50.0, 99.0, 99.9)


class LogCollector:
    """Keeps every datagram that reaches ``sock`` between ``start`` and ``stop``
    (at most ``limit`` of them); ``buffer`` bytes of receive buffer are asked for."""

    def __init__(self, sock: socket.socket, buffer: int = 128 << 20,
                 limit: int = 2_000_000) -> None:
        self.sock = sock
        self.limit = limit
        self.lines: list[bytes] = []
        self.forced = True
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, buffer)
        except OSError:  # no CAP_NET_ADMIN: as much as net.core.rmem_max allows
            self.forced = False
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)
        self.buffer = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.lines = []
        self._stop.clear()
        self._thread = threading.Thread(target=self._drain, name="log-collector",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> list[bytes]:
        """Stop after taking what is already queued; the lines kept."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None
        self._take_queued()
        return self.lines

    def _drain(self) -> None:
        timeout = self.sock.gettimeout()
        self.sock.settimeout(0.05)
        try:
            while not self._stop.is_set():
                try:
                    data = self.sock.recv(65536)
                except (TimeoutError, BlockingIOError):
                    continue
                if len(self.lines) < self.limit:
                    self.lines.append(data)
        finally:
            self.sock.settimeout(timeout)

    def _take_queued(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            if len(self.lines) < self.limit:
                self.lines.append(data)


def _percentile(ordered: list[int], pct: float) -> int:
    return ordered[min(len(ordered) - 1, int(pct / 100.0 * len(ordered)))]


def timer_summary(lines: Iterable[bytes]) -> dict[str, dict[str, int]]:
    """Per timer: p50, p99, p99.9 and max in ms over the lines that carry the five
    timers (``n``: how many did). A timer of -1 (never reached) is left out."""
    columns: list[list[int]] = [[] for _ in TIMER_NAMES]
    n = 0
    for line in lines:
        m = _TIMERS.search(line)
        if m is None:
            continue
        n += 1
        for i, col in enumerate(columns):
            v = int(m.group(i + 1))
            if v >= 0:
                col.append(v)
    out: dict[str, dict[str, int]] = {}
    for name, col in zip(TIMER_NAMES, columns, strict=True):
        col.sort()
        stats = {"n": len(col)}
        if col:
            for p in PERCENTILES:
                stats[f"p{p:g}"] = _percentile(col, p)
            stats["max"] = col[-1]
        out[name] = stats
    out["lines"] = {"n": n}
    return out


def format_summary(summary: dict[str, dict[str, int]]) -> str:
    """One line: each timer's p50/p99/p99.9/max in ms."""
    parts = [f"{summary['lines']['n']:,} lines"]
    for name in TIMER_NAMES:
        s = summary[name]
        if not s.get("n"):
            parts.append(f"{name} -")
            continue
        parts.append(f"{name} {s['p50']}/{s['p99']}/{s['p99.9']}/{s['max']}")
    return "  ".join(parts) + "  (ms: p50/p99/p99.9/max)"
