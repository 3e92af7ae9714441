"""What the benchmark needs on the machine, and what it is running on.

Owns: the table of required programs and the Debian packages providing them,
installing missing ones (root + apt-get) or naming exactly what is missing,
building the C tools into tools/bench/bin/, and describing the machine and the
versions under test (recorded with every result).
Must not import: lb.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent
REPO = BENCH_DIR.parent.parent
C_DIR = BENCH_DIR / "c"
BIN_DIR = BENCH_DIR / "bin"

# program -> (Debian package, why it is needed)
REQUIRED = {
    "haproxy": ("haproxy", "the reference proxy"),
    "nginx": ("nginx", "the fast HTTP backend"),
    "wrk": ("wrk", "the HTTP load generator"),
    "cc": ("gcc", "builds the WebSocket generator and echo backend"),
    "taskset": ("util-linux", "pins the proxy and the load to separate cores"),
}

# tool name -> C source (header dependencies are listed for rebuild checks)
C_TOOLS = {
    "wsbench": "wsbench.c",
    "wsecho": "wsecho.c",
}
C_HEADERS = ("wscommon.h",)
CFLAGS = ["-O2", "-Wall", "-Wextra", "-std=gnu11"]


def find(prog: str) -> str | None:
    """Path of a program, looking in the sbin directories too."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/local/sbin"
    return shutil.which(prog, path=path)


def missing_programs() -> list[str]:
    return [prog for prog in REQUIRED if find(prog) is None]


def ensure_programs(log=print) -> list[str]:
    """Installs missing packages when root with apt-get; returns what is still missing."""
    missing = missing_programs()
    if not missing:
        return []
    pkgs = sorted({REQUIRED[p][0] for p in missing})
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log(f"installing: apt-get install -y {' '.join(pkgs)}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False,
                       stdin=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-qq", *pkgs], env=env, check=False,
                       stdin=subprocess.DEVNULL)
        missing = missing_programs()
    for prog in missing:
        pkg, why = REQUIRED[prog]
        log(f"missing: {prog} ({why}); install the Debian package '{pkg}'")
    return missing


def build_tools(log=print, force: bool = False) -> dict[str, Path]:
    """Compiles the C tools (when sources are newer) and returns their paths."""
    cc = find("cc") or find("gcc")
    if cc is None:
        raise RuntimeError("no C compiler (cc/gcc) found; install the Debian package 'gcc'")
    BIN_DIR.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for name, src in C_TOOLS.items():
        exe = BIN_DIR / name
        sources = [C_DIR / src, *(C_DIR / h for h in C_HEADERS)]
        newest = max(p.stat().st_mtime for p in sources)
        if force or not exe.exists() or exe.stat().st_mtime < newest:
            tmp = exe.with_name(f".{name}.{os.getpid()}")
            cmd = [cc, *CFLAGS, "-o", str(tmp), str(C_DIR / src)]
            log(f"building: {' '.join(cmd)}")
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                tmp.unlink(missing_ok=True)
                raise RuntimeError(f"building {name} failed:\n{res.stderr}")
            os.replace(tmp, exe)  # atomic: a running copy keeps its old file
        out[name] = exe
    return out


def _first_line(argv: list[str]) -> str:
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    text = (res.stdout or res.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                kib = int(line.split()[1])
                return f"{kib / 1048576:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def lb_commit() -> str:
    res = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                         capture_output=True, text=True)
    return res.stdout.strip() or "unknown"


def machine_info() -> dict[str, str]:
    return {
        "nproc": str(os.cpu_count()),
        "cpu": _cpu_model(),
        "memory": _mem_total(),
        "kernel": platform.release(),
        "loadavg_at_start": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }


def versions(python: str) -> dict[str, str]:
    probe = ("import sys, uvloop, httptools; "
             "print(sys.version.split()[0], uvloop.__version__, httptools.__version__)")
    pyv = _first_line([python, "-c", probe]).split()
    return {
        "haproxy": _first_line([find("haproxy") or "haproxy", "-v"]),
        "nginx": _first_line([find("nginx") or "nginx", "-v"]),
        "wrk": _first_line([find("wrk") or "wrk", "-v"]),
        "cc": _first_line([find("cc") or "cc", "--version"]),
        "python": pyv[0] if len(pyv) == 3 else f"{sys.version.split()[0]} (harness)",
        "uvloop": pyv[1] if len(pyv) == 3 else "not importable",
        "httptools": pyv[2] if len(pyv) == 3 else "not importable",
        "lb_commit": lb_commit(),
    }
