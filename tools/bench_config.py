"""Time loading a large generated configuration (10,000 lines).

Generates 1,000 backends with 5 servers each (5,000 servers), 2,000 ACLs and the
matching use_backend rules in one frontend, then times ``lb.config.load`` (best of
3) and the ``lb -c`` check path on it (3 runs: median and best wall time, median
CPU). Usage: ``python tools/bench_config.py``.
Prints one line per measurement; exits 1 if loading takes one second or more.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from lb.config import load  # noqa: E402


def generate() -> str:
    out = ["global", "    maxconn 100000", "    log stdout local0",
           "defaults", "    mode http", "    log global", "    option httplog",
           "    timeout client 30s", "    timeout server 30s", "    timeout connect 5s",
           "    timeout tunnel 1h", "frontend fe", "    bind :8080",
           '    http-request set-header X-Bench "%[req.hdr(host)]"']
    for i in range(1000):
        out.append(f"    acl host_{i} hdr(host) -i app{i}.example.com")
        out.append(f"    acl path_{i} path_beg /svc{i}/ /api{i}/")
    for i in range(1000):
        out.append(f"    use_backend be_{i} if host_{i} || path_{i}")
    out.append("    default_backend be_0")
    for i in range(1000):
        out.append(f"backend be_{i}")
        out.append("    balance roundrobin")
        out.append("    option httpchk GET /health")
        for j in range(5):
            out.append(f"    server s{j} 10.{i // 250}.{i % 250}.{j + 1}:8080 check "
                       f"inter 2s rise 2 fall 3 weight {j + 1} maxconn 100")
    return "\n".join(out) + "\n"


def main() -> int:
    text = generate()
    nlines = text.count("\n")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.cfg")
        with open(path, "w") as fh:
            fh.write(text)
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            res = load([path])
            best = min(best, time.perf_counter() - t0)
        assert res.ok, [d.message() for d in res.diagnostics if d.fatal][:3]
        cfg = res.config
        assert cfg is not None
        nsrv = sum(len(p.servers) for p in cfg.proxies)
        nacl = sum(len(p.acls) for p in cfg.proxies)
        print(f"config: {nlines} lines, {len(cfg.backends())} backends, {nsrv} servers, "
              f"{nacl} ACLs")
        print(f"load: {best * 1000:.0f} ms (best of 3)")
        # three runs: a shared machine makes one run's figure a lottery; CPU time
        # (user + system) beside the wall time tells waiting from working
        walls, cpus, rc = [], [], 0
        for _ in range(3):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "lb", "-c", "-q", "-f", path],
                                  capture_output=True, text=True,
                                  cwd=os.path.join(os.path.dirname(__file__), ".."))
            walls.append(time.perf_counter() - t0)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            rc = rc or proc.returncode
        print(f"lb -c: {statistics.median(walls) * 1000:.0f} ms wall median of 3 (best "
              f"{min(walls) * 1000:.0f} ms; CPU {statistics.median(cpus) * 1000:.0f} ms), "
              f"incl. interpreter start, exit {rc}")
    return 0 if best < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
