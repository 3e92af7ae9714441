"""Sweep keywords through `lb -c` and `haproxy -c` and report where they disagree.

Each keyword of HAProxy's proxy keyword matrix (doc/configuration.txt section 4.1, read
from the Debian package's copy) is written with a few argument shapes (none, a bogus
word, numbers, extra words) into a listen, a frontend and a backend, and each keyword
of its global list (section 3) into the global section; both checkers judge the
file. A file HAProxy loads and lb refuses ("lb stricter") breaks the promise
that an existing haproxy.cfg drops in: the exit code is 1 when there is one. A file lb
loads and HAProxy refuses ("lb lenient") is listed too, for information.

    .venv/bin/python tools/config_sweep.py [--jobs 4] [--keywords balance,retries]
    .venv/bin/python tools/config_sweep.py --global [--keywords uid,spread-checks]

About 3,800 proxy files (ten minutes or so on two cores) and 1,400 global ones (three
minutes). Needs /usr/sbin/haproxy.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import gzip
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = "/usr/share/doc/haproxy/configuration.txt.gz"
HAPROXY = "/usr/sbin/haproxy"
# keywords with their own grammar, covered by tests/test_config_haproxy_diff.py
SKIP = {"acl", "bind", "server", "default-server", "http-request", "http-response",
        "http-after-response", "tcp-request", "tcp-response", "http-check", "tcp-check",
        "option", "no option", "stats", "errorfile", "errorloc", "log", "timeout",
        "use_backend", "default_backend", "compression", "hash-balance-factor"}
VARIANTS = ("", "bogus", "1", "-1", "0", "abc 1", "1 2 3")
HEAD = ("defaults\n mode http\n timeout client 1s\n timeout server 1s\n"
        " timeout connect 1s\n")


def keywords() -> list[str]:
    with gzip.open(DOC, "rt") as fh:
        text = fh.read()
    start = text.index("4.1. Proxy keywords matrix")
    block = text[start:text.index("\n4.2.", start)]
    out = set()
    for line in block.splitlines():
        mt = re.match(r"^([a-z][a-z0-9_.-]*(?: [a-z][a-z0-9_.-]*)*?)\s{2,}(?:\(\*\)\s+)?"
                      r"(X|-)", line)
        if mt:
            out.add(mt.group(1))
    return sorted(k for k in out if k not in SKIP)


def global_keywords() -> list[str]:
    with gzip.open(DOC, "rt") as fh:
        text = fh.read()
    start = text.index("\n3. Global parameters")
    block = text[start:text.index("\n3.1. Process management", start)]
    return sorted({m.group(1) for m in re.finditer(r"^   - ([a-z][a-z0-9_.-]*)", block, re.M)})


def config(kw: str, variant: str, section: str) -> str:
    body = f"{kw} {variant}".strip()
    if section == "global":
        return f"global\n {body}\n" + HEAD + "frontend f\n bind 127.0.0.1:18450\n"
    if section == "listen":
        return HEAD + f"listen l\n bind 127.0.0.1:18450\n {body}\n server s 127.0.0.1:80\n"
    if section == "frontend":
        return (HEAD + f"frontend f\n bind 127.0.0.1:18450\n {body}\n default_backend b\n"
                "backend b\n server s 127.0.0.1:80\n")
    return (HEAD + "frontend f\n bind 127.0.0.1:18450\n default_backend b\nbackend b\n"
            f" {body}\n server s 127.0.0.1:80\n")


def judge(job: tuple[str, str, str], workdir: str) -> tuple[str, str, str, bool, bool, str]:
    kw, variant, section = job
    fd, path = tempfile.mkstemp(suffix=".cfg", dir=workdir)
    with os.fdopen(fd, "w") as fh:
        fh.write(config(kw, variant, section))
    h = subprocess.run([HAPROXY, "-c", "-f", path], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=60)
    lb = subprocess.run([sys.executable, "-m", "lb", "-c", "-f", path], capture_output=True,
                        text=True, cwd=ROOT, stdin=subprocess.DEVNULL, timeout=60)
    os.unlink(path)
    said = [ln for ln in (lb.stdout + lb.stderr).splitlines()
            if "ALERT" in ln or "WARNING" in ln]
    # exit 2 is "valid, but no listener": loadable
    return (kw, variant, section, h.returncode in (0, 2), lb.returncode in (0, 2),
            said[0] if said else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--keywords", help="comma-separated keywords (default: all)")
    ap.add_argument("--global", dest="glob", action="store_true",
                    help="the global section's keywords instead of the proxies'")
    a = ap.parse_args()
    if not os.path.exists(HAPROXY) or not os.path.exists(DOC):
        print(f"needs {HAPROXY} and {DOC} (apt-get install haproxy)")
        return 2
    if a.glob:
        kws = a.keywords.split(",") if a.keywords else global_keywords()
        sections: tuple[str, ...] = ("global",)
        variants = (*VARIANTS, "on", "off")
    else:
        kws = a.keywords.split(",") if a.keywords else keywords()
        sections = ("listen", "frontend", "backend")
        variants = VARIANTS
    jobs = [(k, v, s) for k in kws for v in variants for s in sections]
    stricter = lenient = 0
    with tempfile.TemporaryDirectory(prefix="lb-sweep-") as workdir, \
            cf.ThreadPoolExecutor(a.jobs) as ex:
        for kw, variant, section, h_ok, lb_ok, said in ex.map(lambda j: judge(j, workdir), jobs):
            if h_ok == lb_ok:
                continue
            tag = "lb stricter" if h_ok else "lb lenient"
            stricter += h_ok
            lenient += not h_ok
            print(f"{tag}: [{section}] {kw} {variant!r} :: {said[-160:]}")
    print(f"{len(jobs)} files: {stricter} lb stricter, {lenient} lb lenient")
    return 1 if stricter else 0


if __name__ == "__main__":
    sys.exit(main())
