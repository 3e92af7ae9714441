"""lbctl's logic: talk to an lb (or HAProxy) stats socket, format `show stat` as a
table, and run the live `top` view. The `tools/lbctl` script is a thin wrapper.

Only the standard library is used so the tool runs on any box with Python 3.
"""

from __future__ import annotations

import os
import select
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

USAGE = """usage: lbctl <socket> <command...>   run one CLI command and print the answer
       lbctl <socket> table           show stat as an aligned table
       lbctl <socket> top [-i SECS]   live view of servers (keys: up/down or j/k select,
                                      d drain, e enable (ready), m maint, q quit)
<socket> is a unix socket path or host:port (e.g. /run/lb.sock, 127.0.0.1:9999)."""


def connect(target: str, timeout: float = 5.0) -> socket.socket:
    if "/" in target or os.path.exists(target):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(target)
        return s
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"not a socket path or host:port: {target!r}")
    return socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)


def run(target: str, command: str, timeout: float = 5.0) -> str:
    """Send one command line, return everything until the server closes."""
    with connect(target, timeout) as s:
        s.sendall(command.encode() + b"\n")
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode("utf-8", "replace")


def parse_csv(text: str) -> list[dict[str, str]]:
    lines = [line for line in text.splitlines() if line]
    if not lines or not lines[0].startswith("# "):
        raise ValueError(text.strip() or "empty answer")
    names = lines[0][2:].rstrip(",").split(",")
    rows = []
    for line in lines[1:]:
        values = line.rstrip(",").split(",")
        rows.append(dict(zip(names, values + [""] * (len(names) - len(values)), strict=False)))
    return rows


TABLE_COLUMNS = (
    ("pxname", "PROXY"), ("svname", "NAME"), ("status", "STATUS"), ("weight", "WEIGHT"),
    ("scur", "CUR"), ("smax", "MAX"), ("stot", "TOTAL"), ("bin", "BYTES_IN"),
    ("bout", "BYTES_OUT"), ("ereq", "EREQ"), ("econ", "ECON"), ("eresp", "ERESP"),
    ("check_status", "CHECK"), ("lastchg", "LASTCHG"), ("ws_tunnels_cur", "WS"),
)


def format_table(rows: Sequence[dict[str, str]],
                 columns: Sequence[tuple[str, str]] = TABLE_COLUMNS) -> str:
    cols = [(k, h) for k, h in columns if any(k in r for r in rows) or k in ("pxname",)]
    cells = [[h for _k, h in cols]] + [[r.get(k, "") or "-" for k, _h in cols] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    out = []
    for row in cells:
        out.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------- top

CSI = "\x1b["
COLORS = {"UP": "32", "no": "32", "DOWN": "31", "MAINT": "34", "DRAIN": "35", "NOLB": "33"}


@dataclass
class TopView:
    target: str
    interval: float = 2.0
    selected: int = 0
    rows: list[dict[str, str]] = field(default_factory=list)
    prev: dict[tuple[str, str], tuple[float, int, int]] = field(default_factory=dict)
    rates: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    message: str = ""

    def servers(self) -> list[dict[str, str]]:
        return [r for r in self.rows if r.get("svname") not in ("FRONTEND", "BACKEND")]

    def refresh(self) -> None:
        rows = parse_csv(run(self.target, "show stat"))
        now = time.monotonic()
        for r in rows:
            key = (r["pxname"], r["svname"])
            stot, bout = _int(r.get("stot")), _int(r.get("bout"))
            if key in self.prev:
                t0, s0, b0 = self.prev[key]
                dt = max(now - t0, 1e-3)
                self.rates[key] = (max(stot - s0, 0) / dt, max(bout - b0, 0) / dt)
            self.prev[key] = (now, stot, bout)
        self.rows = rows
        if self.selected >= len(self.servers()):
            self.selected = max(len(self.servers()) - 1, 0)

    def act(self, key: str) -> bool:
        """Handle a key; False means quit."""
        srv = self.servers()
        if key in ("q", "Q"):
            return False
        if key in ("j", "DOWN") and srv:
            self.selected = min(self.selected + 1, len(srv) - 1)
        elif key in ("k", "UP") and srv:
            self.selected = max(self.selected - 1, 0)
        elif key in ("d", "e", "m") and srv:
            r = srv[self.selected]
            state = {"d": "drain", "e": "ready", "m": "maint"}[key]
            answer = run(self.target, f"set server {r['pxname']}/{r['svname']} state {state}")
            self.message = (answer.strip().splitlines() or [f"{r['pxname']}/{r['svname']}: "
                                                           f"{state} requested"])[0]
            self.refresh()
        return True

    def render(self, width: int = 100) -> str:
        out = [f"{CSI}H{CSI}2J",
               f"{CSI}1mlbctl top{CSI}0m  {self.target}  "
               f"{time.strftime('%H:%M:%S')}  (j/k select, d drain, e enable, m maint, q quit)",
               ""]
        head = (f"  {'BACKEND/SERVER':<28} {'STATUS':<12} {'WEIGHT':>6} {'CUR':>5} {'MAX':>5} "
                f"{'SESS/S':>7} {'TOTAL':>8} {'KB/S OUT':>9} {'WS':>5} {'CHECK':<8}")
        out.append(f"{CSI}7m{head[:width]}{CSI}0m")
        for i, r in enumerate(self.servers()):
            key = (r["pxname"], r["svname"])
            srate, brate = self.rates.get(key, (0.0, 0.0))
            status = r.get("status", "")
            color = COLORS.get(status.split(" ")[0], "0")
            mark = ">" if i == self.selected else " "
            line = (f"{mark} {(r['pxname'] + '/' + r['svname']):<28.28} "
                    f"{CSI}{color}m{status:<12.12}{CSI}0m {r.get('weight', ''):>6} "
                    f"{r.get('scur', ''):>5} {r.get('smax', ''):>5} {srate:>7.1f} "
                    f"{r.get('stot', ''):>8} {brate / 1024:>9.1f} "
                    f"{r.get('ws_tunnels_cur', '') or '-':>5} {r.get('check_status', '') or '-':<8}")
            out.append(f"{CSI}1m{line}{CSI}0m" if i == self.selected else line)
        backends = [r for r in self.rows if r.get("svname") == "BACKEND"]
        out.append("")
        out.append("  " + "  ".join(f"{r['pxname']}: {r.get('status', '')} "
                                    f"ws={r.get('ws_tunnels_cur', '') or 0}" for r in backends))
        if self.message:
            out.append("")
            out.append(f"  {self.message}")
        return "\r\n".join(out) + "\r\n"


def _int(v: str | None) -> int:
    try:
        return int(v or 0)
    except ValueError:
        return 0


def _read_key(fd: int, timeout: float) -> str | None:
    r, _w, _x = select.select([fd], [], [], timeout)
    if not r:
        return None
    data = os.read(fd, 16).decode("utf-8", "replace")
    if data.startswith("\x1b[A"):
        return "UP"
    if data.startswith("\x1b[B"):
        return "DOWN"
    return data[:1] if data else "q"


def top(target: str, interval: float = 2.0) -> int:
    import termios
    import tty

    view = TopView(target, interval)
    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd) if os.isatty(fd) else None
    try:
        if old is not None:
            tty.setcbreak(fd)
        sys.stdout.write(f"{CSI}?25l")
        next_refresh = 0.0
        while True:
            now = time.monotonic()
            if now >= next_refresh:
                try:
                    view.refresh()
                except (OSError, ValueError) as e:
                    view.message = f"error: {e}"
                next_refresh = now + interval
                sys.stdout.write(view.render())
                sys.stdout.flush()
            key = _read_key(fd, max(next_refresh - time.monotonic(), 0.05))
            if key is None:
                continue
            try:
                if not view.act(key):
                    return 0
            except OSError as e:
                view.message = f"error: {e}"
            sys.stdout.write(view.render())
            sys.stdout.flush()
    finally:
        if old is not None:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)
        sys.stdout.write(f"{CSI}?25h\r\n")
        sys.stdout.flush()


def main(argv: Sequence[str]) -> int:
    if len(argv) < 2 or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr)
        return 2
    target, cmd = argv[0], list(argv[1:])
    try:
        if cmd == ["table"]:
            sys.stdout.write(format_table(parse_csv(run(target, "show stat"))))
            return 0
        if cmd[0] == "top":
            interval = 2.0
            if len(cmd) == 3 and cmd[1] == "-i":
                interval = float(cmd[2])
            return top(target, interval)
        answer = run(target, " ".join(cmd))
    except (OSError, ValueError) as e:
        print(f"lbctl: {target}: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(answer)
    first = answer.split("\n", 1)[0]
    return 1 if first in ("Permission denied",) or first.startswith("Unknown command") else 0
