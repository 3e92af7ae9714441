#!/usr/bin/env python3
"""Python work per request / handshake / message of lb's data plane, without sockets.

    python tools/bench/profile_inproc.py                 # all paths, µs per unit
    python tools/bench/profile_inproc.py ka --profile    # + cProfile of the keep-alive path
    python tools/bench/profile_inproc.py hs,echo -n 20000
    python tools/bench/profile_inproc.py --lb-path /tmp/lb-before ka   # another tree's lb
    python tools/bench/profile_inproc.py ka,hs --instructions    # instructions per unit
    python tools/bench/profile_inproc.py ka16 --instructions     # ... with a 16 KiB body

The socket benchmarks (run.py, profile_lb.py) are noisy on a shared machine and mix
kernel time with Python time. This driver builds lb's runtime from the benchmark
config (tools/bench/configs/bench.cfg, traffic log to a UDP socket nobody reads, as
in the bench) and pushes bytes straight into the protocol objects with fake
transports, so what it measures is the Python work lb does per unit, and nothing
else (the log `sendto` excepted):

- ``ka``: a keep-alive GET /small.html on fe_keepalive answered by an nginx-like
  100-byte response, server connections reused from the idle pool (the
  http_keepalive_100b scenario);
- ``ka16``: the same with GET /static/16k.bin routed to bk_static (no cookie) and a
  16 KiB body (the http_keepalive_16k scenario);
- ``hs``: a WebSocket handshake on a new client connection: accept, Upgrade request,
  server connection (the connect coroutine is replaced by one returning a fake
  connection at once), 101, tunnel set-up, both sides closing, tunnel_open/close
  events and the log line (the ws_handshake scenario);
- ``echo``: one 64-byte frame each way through an established tunnel (ws_echo_*).

Figures are the best of ``--repeat`` batches of process CPU time (µs per unit, lower is
better): small batches and the minimum make them steady on a shared machine (±1%). Every
exchange is checked (status line or echoed bytes) so a broken path cannot look fast.
``--instructions`` counts CPU instructions per unit instead, with valgrind's callgrind:
the script runs itself twice under valgrind, with n and 3n units, and the difference
cancels what is not per unit. Valgrind's instrumentation is switched on only around the
warm-up and the measured batch (``--instr-atstart=no`` and a small C library,
tools/bench/c/cgtoggle.c, built with the system compiler), so start-up and config
loading run several times faster than fully instrumented. The count is the same from run to run (within
about 0.3%) whatever else the machine is doing, so it shows a change of 1% that the
timings cannot; it does not see cache misses or the kernel's share of a system call.
``--keep-callgrind DIR`` keeps the two callgrind files: ``callgrind_annotate`` on each
(``--tree=caller`` for who calls what), differenced, profiles the units between them.

Must not import anything from lb at module level (lb is imported after sys.path set-up).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import re
import shutil
import socket
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# `--lb-path DIR` (first argument) measures the lb package of another tree, e.g. an
# older commit unpacked with `git archive <commit> lb | tar -x -C DIR`
LB_PATH = sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "--lb-path" else str(REPO)
if LB_PATH != str(REPO):
    del sys.argv[1:3]
sys.path.insert(0, LB_PATH)

REQ = (b"GET /small.html HTTP/1.1\r\nHost: www.example.com\r\n\r\n")
RES = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 21 Nov 2026 18:00:00 GMT\r\n"
       b"Content-Type: text/html\r\nContent-Length: 100\r\n"
       b"Last-Modified: Sat, 21 Nov 2026 17:00:00 GMT\r\nConnection: keep-alive\r\n"
       b"ETag: \"6563a0e0-64\"\r\nAccept-Ranges: bytes\r\n\r\n" + b"x" * 99 + b"\n")
REQ16 = b"GET /static/16k.bin HTTP/1.1\r\nHost: www.example.com\r\n\r\n"
RES16 = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 21 Nov 2026 18:00:00 GMT\r\n"
         b"Content-Type: application/octet-stream\r\nContent-Length: 16384\r\n"
         b"Last-Modified: Sat, 21 Nov 2026 17:00:00 GMT\r\nConnection: keep-alive\r\n"
         b"ETag: \"6563a0e0-4000\"\r\nAccept-Ranges: bytes\r\n\r\n" + bytes(16384))
WS_KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
WS_REQ = (b"GET /chat HTTP/1.1\r\nHost: www.example.com\r\nUpgrade: websocket\r\n"
          b"Connection: Upgrade\r\nSec-WebSocket-Key: " + WS_KEY + b"\r\n"
          b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: echo-protocol\r\n\r\n")
WS_101 = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
          b"Sec-WebSocket-Protocol: echo-protocol\r\n\r\n")
FRAME_C = b"\x81\xc0" + b"\x01\x02\x03\x04" + bytes(64)  # masked, 64 B
FRAME_S = b"\x81\x40" + bytes(64)


class FakeTransport(asyncio.Transport):
    """Records writes; enough of asyncio.Transport for lb's protocols."""

    def __init__(self, peer: tuple[str, int], sock: tuple[str, int]) -> None:
        super().__init__()
        self.peer = peer
        self.sock = sock
        self.out: list[bytes] = []
        self.closing = False
        self.protocol: Any = None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": self.peer, "sockname": self.sock}.get(name, default)

    def write(self, data: bytes) -> None:
        self.out.append(data)

    def writelines(self, lines: Any) -> None:
        self.out.append(b"".join(lines))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_protocol(self) -> Any:
        return self.protocol


class World:
    """lb's runtime from the bench config, with fake server connections."""

    def __init__(self) -> None:
        import uvloop

        from lb import config as cfgmod
        from lb import log as logmod
        from lb.proxy import server as srvmod
        from lb.proxy.compiled import Runtime

        self.sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sink.bind(("127.0.0.1", 0))
        self.sink.setblocking(False)
        # (without the HTTPS frontend, which would need a certificate made for it)
        text = (REPO / "tools/bench/configs/bench.cfg").read_text().split(
            "\nfrontend fe_tls\n")[0]
        text = string.Template(text).substitute(
            MAXCONN=20000, LOG_PORT=self.sink.getsockname()[1], FE_KEEPALIVE_PORT=1,
            FE_SERVER_CLOSE_PORT=2, FE_CLOSE_PORT=3, WEB1_PORT=8001, WEB2_PORT=8002,
            WS1_PORT=9001, WS2_PORT=9002)
        res = cfgmod.load_text(text, "bench.cfg")
        if res.config is None:
            raise SystemExit(f"config: {res.diagnostics}")
        # structlog as `lb -db` sets it up off a terminal (JSON lines), to /dev/null
        self.devnull = open("/dev/null", "w")  # noqa: SIM115
        logmod.setup(json=True, file=self.devnull)
        self.loop = uvloop.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.rt = Runtime(res.config, None, self.loop)
        self.fe = self.rt.frontends["fe_keepalive"]
        self.srvmod = srvmod
        self.port = 40000

        async def connect(loop: Any, be: Any, srv: Any, host: str, port: int,
                          dialer: Any = None) -> Any:
            # uvloop calls connection_made from the loop, never in the first step
            await asyncio.sleep(0)
            sc = self.server_conn(be, srv, dialer)
            return sc.transport, sc
        srvmod.connect = connect  # type: ignore[assignment]
        # no real dial (lb.proxy.server.dial_now, smart connect's path in HTTP mode):
        # every new server connection is a fake one from `connect` above
        srvmod.dial_now = lambda *args: None  # type: ignore[assignment]
        for be in self.rt.backends.values():
            for srv in be.st.servers:
                sc = self.server_conn(be, srv)
                sc.idle_since = self.loop.time()
                be.idle[srv].append(sc)

    def server_conn(self, be: Any, srv: Any, dialer: Any = None) -> Any:
        sc = self.srvmod.ServerConn(be, srv, dialer)
        sc.connection_made(FakeTransport(("127.0.0.1", srv.port), ("127.0.0.1", 50000)))
        return sc

    def client(self) -> Any:
        from lb.proxy.client import ClientConn
        self.port = self.port + 1 if self.port < 60000 else 40000
        c = ClientConn(self.rt, self.fe, None)
        c.connection_made(FakeTransport(("127.0.0.1", self.port), ("127.0.0.1", 1)))
        return c

    def drain(self) -> None:
        while True:
            try:
                self.sink.recv(65536)
            except BlockingIOError:
                return




def bench_ka(world: World, n: int, req: bytes = REQ, res: bytes = RES) -> float:
    conn = world.client()
    ct = conn.transport
    flush = world.rt.sendq.flush
    pools = [p for be in world.rt.backends.values() for p in be.idle.values()]
    t0 = time.process_time()
    for _ in range(n):
        ct.out.clear()
        conn.data_received(req)
        flush()  # (the turn's end: its queued sends leave, lb.proxy.sockio)
        txn = conn.txn
        sc = txn.sc
        if sc is None:  # a new server connection (http-reuse safe: first request)
            world.loop.run_until_complete(asyncio.sleep(0))
            world.loop.run_until_complete(asyncio.sleep(0))
            sc = txn.sc
        sc.data_received(res)
        flush()
        if not ct.out or not ct.out[0].startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"ka: bad answer {ct.out!r}")
    dt = time.process_time() - t0
    del pools
    world.drain()
    return dt / n * 1e6


def bench_hs(world: World, n: int) -> float:
    loop = world.loop
    flush = world.rt.sendq.flush

    async def run() -> float:
        t0 = time.process_time()
        for _ in range(n):
            conn = world.client()
            ct = conn.transport
            conn.data_received(WS_REQ)
            flush()
            txn = conn.txn
            await asyncio.sleep(0)  # the connect task
            await asyncio.sleep(0)  # its done callback
            sc = txn.sc
            st = sc.transport
            sc.data_received(WS_101)
            flush()
            if not ct.out or not ct.out[0].startswith(b"HTTP/1.1 101"):
                raise SystemExit(f"hs: bad answer {ct.out!r}")
            # the client closes: FIN both ways, as wsbench does
            ct.protocol.eof_received()
            st.protocol.eof_received()
            ct.protocol.connection_lost(None)
            st.protocol.connection_lost(None)
            ct.protocol = st.protocol = None  # as uvloop's transports after the loss
        return time.process_time() - t0

    dt = loop.run_until_complete(run())
    world.drain()
    return dt / n * 1e6


def bench_echo(world: World, n: int) -> float:
    loop = world.loop
    conn = world.client()
    ct = conn.transport
    conn.data_received(WS_REQ)
    txn = conn.txn
    loop.run_until_complete(asyncio.sleep(0))
    loop.run_until_complete(asyncio.sleep(0))
    sc = txn.sc
    st = sc.transport
    sc.data_received(WS_101)
    cp = ct.protocol
    sp = st.protocol
    flush = world.rt.sendq.flush
    flush()
    t0 = time.process_time()
    for _ in range(n):
        ct.out.clear()
        cp.data_received(FRAME_C)
        flush()
        sp.data_received(FRAME_S)
        flush()
        if ct.out[-1] is not FRAME_S:
            raise SystemExit("echo: frame not forwarded")
    dt = time.process_time() - t0
    st.out.clear()
    return dt / n * 1e6


def _warmup(n: int) -> int:
    return max(n // 10, 100)


TOGGLE_ENV = "LB_CALLGRIND_TOGGLE"  # the path of the built cgtoggle library


def _build_toggle(tmp: Path) -> Path | None:
    """tools/bench/c/cgtoggle.c as a shared library in ``tmp``; None without a C
    compiler or valgrind's headers (then the whole run is instrumented: slower, and the
    same count)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    out = tmp / "libcgtoggle.so"
    res = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(out),
                          str(Path(__file__).parent / "c" / "cgtoggle.c")],
                         capture_output=True, text=True)
    if res.returncode != 0:
        print(f"(instrumenting start-up too: cgtoggle did not build: "
              f"{res.stderr.strip()[-300:]})", file=sys.stderr)
        return None
    return out


class _Instrumented:
    """Callgrind instruments the block (a no-op unless the parent asked for it)."""

    def __init__(self) -> None:
        path = os.environ.get(TOGGLE_ENV)
        self.lib = None
        if path:
            import ctypes
            self.lib = ctypes.CDLL(path)

    def __enter__(self) -> None:
        if self.lib is not None:
            self.lib.lb_instr_start()

    def __exit__(self, *exc: object) -> None:
        if self.lib is not None:
            self.lib.lb_instr_stop()


def count_instructions(name: str, n: int, keep: Path | None = None) -> float:
    """Instructions per unit of one path: callgrind totals at n and 3n units, differenced.
    ``keep``: a directory for the two callgrind files (``callgrind_annotate`` them)."""
    totals = []
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    with tempfile.TemporaryDirectory(prefix="lb-callgrind-") as tmp:
        toggle = _build_toggle(Path(tmp))
        if toggle is not None:
            env[TOGGLE_ENV] = str(toggle)
        # both runs at once: each is one process, and an instruction count does not
        # depend on what else the machine runs
        runs = []
        try:
            for units in (n, 3 * n):
                out = (keep or Path(tmp)) / f"callgrind.{name}.{units}.out"
                cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                       *(["--instr-atstart=no"] if toggle else []),
                       sys.executable, __file__]
                if LB_PATH != str(REPO):
                    cmd += ["--lb-path", LB_PATH]
                cmd += [name, "-n", str(units), "--repeat", "1"]
                err = Path(tmp) / f"stderr.{units}"
                with open(err, "w") as f:
                    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=f,
                                            env=env)
                runs.append((out, err, proc))
            for out, err, proc in runs:
                code = proc.wait(timeout=900)
                # "totals:" closes the file; "summary:" (older valgrind) heads it, and
                # reads 0 when instrumentation starts switched off
                found = re.findall(r"^(?:summary|totals): (\d+)", out.read_text()
                                   if out.exists() else "", re.M)
                if code != 0 or not found:
                    raise SystemExit(f"valgrind failed ({code}): {err.read_text()[-2000:]}")
                totals.append(max(int(x) for x in found))
        finally:
            for _, _, proc in runs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    units_diff = (3 * n + _warmup(3 * n)) - (n + _warmup(n))
    return (totals[1] - totals[0]) / units_diff


SORT = "tottime"
def bench_ka16(world: World, n: int) -> float:
    return bench_ka(world, n, REQ16, RES16)


BENCHES = {"ka": bench_ka, "ka16": bench_ka16, "hs": bench_hs, "echo": bench_echo}
DEFAULT_N = {"ka": 2000, "ka16": 2000, "hs": 1000, "echo": 20000}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="?", default="ka,hs,echo")
    ap.add_argument("-n", type=int, default=0, help="units per batch (default per path)")
    ap.add_argument("--repeat", type=int, default=40)
    ap.add_argument("--profile", action="store_true", help="cProfile one batch of each")
    ap.add_argument("--top", type=int, default=35)
    ap.add_argument("--instructions", action="store_true",
                    help="instructions per unit, counted by valgrind (callgrind)")
    ap.add_argument("--keep-callgrind", metavar="DIR", type=Path,
                    help="with --instructions: keep the callgrind files in DIR")
    args = ap.parse_args(argv)
    if args.n < 0 or args.repeat < 1:
        ap.error("-n must be 0 (the default per path) or more, --repeat at least 1")
    names = args.paths.split(",")
    unknown = [nm for nm in names if nm not in BENCHES]
    if unknown:
        ap.error(f"unknown path {', '.join(unknown)} (known: {', '.join(BENCHES)})")
    if args.keep_callgrind is not None and not args.instructions:
        ap.error("--keep-callgrind goes with --instructions")
    if args.instructions:
        if args.keep_callgrind is not None:
            try:
                args.keep_callgrind.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                ap.error(f"--keep-callgrind {args.keep_callgrind}: {e.strerror}")
        if shutil.which("valgrind") is None:
            ap.error("--instructions needs valgrind (Debian package: valgrind)")
        for name in names:
            n = args.n or DEFAULT_N[name]
            per = count_instructions(name, n, args.keep_callgrind)
            print(f"{name:<5} {per:9.0f} instructions per unit (callgrind, {n} and {3 * n})",
                  flush=True)
        return 0
    world = World()
    instrumented = _Instrumented()
    import gc
    gc.collect()
    gc.freeze()
    gc.set_threshold(20000, 50, 100)  # as lb.proxy.runner._tune_gc
    for name in names:
        fn = BENCHES[name]
        n = args.n or DEFAULT_N[name]
        with instrumented:
            fn(world, _warmup(n))
            best = min(fn(world, n) for _ in range(args.repeat))
        print(f"{name:<5} {best:7.2f} us per unit (best of {args.repeat} x {n})", flush=True)
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            fn(world, n)
            prof.disable()
            s = io.StringIO()
            pstats.Stats(prof, stream=s).sort_stats(SORT).print_stats(args.top)
            print(s.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
