"""Run `lb` for tests: in a thread of the test process, or as a subprocess.

Configs are plain haproxy.cfg text where ``@@name@@`` stands for a free loopback port
(allocated once per name, readable afterwards from ``.ports[name]``). Known ports can
be passed in (``ports={"s1": backend.port}``).

    with LbThread(CFG, ports={"s1": s1.port}) as lb:
        lb.ports["fe"], lb.state, lb.txns        # txns: finished transactions (hook)

    with LbProcess(CFG, ports=...) as lb:        # `python -m lb -f <file> -db`
        lb.ports["fe"], lb.lines()               # stdout+stderr lines so far
        lb.wait_for_line("SD", timeout=5)

Both wait until every ``@@...@@`` port that appears on a `bind` line accepts
connections, and stop cleanly (the subprocess by its PID: SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PLACEHOLDER = re.compile(r"@@([A-Za-z0-9_]+)@@")

# the smallest HTTP set-up: one frontend (port "fe"), one backend, one server ("s1")
ONE_SERVER_HTTP = """
defaults
  mode http
  timeout client 5s
  timeout server 5s
  timeout connect 1s
frontend f
  bind 127.0.0.1:@@fe@@
  default_backend b
backend b
  server s1 127.0.0.1:@@s1@@
"""


def has_ipv6_loopback() -> bool:
    """Whether this machine can bind ::1 (some containers have no IPv6)."""
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def _port_block() -> range | None:
    """The ports this test process hands out: a block of its own below the kernel's
    ephemeral range, so that no outgoing connection takes one as its source port,
    and each pytest-xdist worker its own block. Two workers given the same port
    would both listen on it (lb and HAProxy set SO_REUSEPORT) and share each other's
    connections. None when the range leaves no room below it."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    first = 10000
    size = 4000
    blocks = (low - first) // size
    if blocks < 2:
        return None
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:]
    n = int(worker) if worker.isdigit() else 0
    start = first + (n % blocks) * size
    return range(start, start + size)


_BLOCK = _port_block()
_next_port = [0]


def free_port() -> int:
    """A loopback port nothing is bound to now (see ``_port_block``), handed out in
    turn so that a port comes back only after some thousands of others."""
    block = _BLOCK
    if block is not None:
        for _ in range(len(block)):
            port = block[_next_port[0] % len(block)]
            _next_port[0] += 1
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))  # (no SO_REUSEADDR: a lingering one too)
                except OSError:
                    continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render(text: str, ports: Mapping[str, int] | None = None) -> tuple[str, dict[str, int]]:
    """Replace each @@name@@ by a port (given, or a newly allocated free one)."""
    out: dict[str, int] = dict(ports or {})

    def sub(mt: re.Match[str]) -> str:
        name = mt.group(1)
        if name not in out:
            out[name] = free_port()
        return str(out[name])

    return _PLACEHOLDER.sub(sub, text), out


def bind_ports(text: str) -> list[str]:
    """Names of placeholders used on `bind` lines (what to wait for)."""
    names = []
    for line in text.splitlines():
        words = line.split()
        if words and words[0] == "bind":
            names += _PLACEHOLDER.findall(line)
    return names


def _listening_ports() -> set[int] | None:
    """Local ports in LISTEN state (Linux /proc), None where /proc cannot tell."""
    found: set[int] = set()
    try:
        for name in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(name) as fh:
                next(fh)
                for row in fh:
                    cols = row.split()
                    if cols[3] == "0A":
                        found.add(int(cols[1].rsplit(":", 1)[1], 16))
    except (OSError, IndexError, ValueError):
        return None
    return found


def wait_listening(ports: list[int], timeout: float = 30.0,
                   alive: Any = None) -> None:
    """Wait until every port listens; `alive()` returning False stops the wait.

    Where /proc tells, nothing connects: a connection that closes before sending a
    request is a `<BADREQ>` line and a counted error for HAProxy and lb alike."""
    deadline = time.monotonic() + timeout
    for p in ports:
        while True:
            if alive is not None and not alive():
                raise TimeoutError("process exited")
            listening = _listening_ports()
            if listening is not None:
                if p in listening:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"lb not listening on {p}")
                time.sleep(0.02)
                continue
            try:
                with socket.create_connection(("127.0.0.1", p), timeout=0.5) as s:
                    # a connect to a free port of the ephemeral range can succeed
                    # as a TCP self-connection: that is not lb listening
                    if s.getsockname() != s.getpeername():
                        break
                    raise OSError("self-connect")
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"lb not listening on {p}") from None
                time.sleep(0.05)


def load(text: str) -> Any:
    from lb.config import load_text

    res = load_text(text)
    if not res.ok:
        raise ValueError("config rejected: " + "; ".join(
            getattr(d, "text", str(d)) for d in res.diagnostics))
    return res.config


class LbThread:
    """The data plane on its own uvloop in a daemon thread of the test process."""

    def __init__(self, text: str, ports: Mapping[str, int] | None = None,
                 config: Any = None) -> None:
        self.template = text
        self._given = dict(ports or {})
        self._own_config = config is None
        self.text, self.ports = render(text, ports)
        self.config = config if config is not None else load(self.text)
        self.txns: list[Any] = []
        self.rt: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> Any:
        return self.rt.state

    def start(self) -> LbThread:
        # as LbProcess.start: a port from free_port() may be taken before lb binds
        # it; with a config of our own, such a start is retried on new ports
        for attempt in range(3):
            try:
                return self._start()
            except Exception as e:
                raced = "cannot bind socket (Address already in use)" in str(e)
                if not (raced and self._own_config and attempt < 2):
                    raise
            self.text, self.ports = render(self.template, self._given)
            self.config = load(self.text)
        raise AssertionError("unreachable")

    def _start(self) -> LbThread:
        import uvloop

        from lb.proxy import runner

        self.loop = uvloop.new_event_loop()
        started = threading.Event()
        err: list[BaseException] = []

        def main() -> None:
            assert self.loop is not None
            asyncio.set_event_loop(self.loop)

            async def go() -> None:
                try:
                    self.rt = await runner.start(self.config)
                    self.rt.txn_hook = self.txns.append
                except BaseException as e:  # noqa: BLE001 (reported to the caller)
                    err.append(e)
                finally:
                    started.set()

            self.loop.run_until_complete(go())
            if not err:
                self.loop.run_forever()
            self.loop.close()

        self._thread = threading.Thread(target=main, daemon=True)
        self._thread.start()
        started.wait(30)
        if err:
            raise err[0]
        if self.rt is None:
            raise TimeoutError("lb did not start")
        return self

    def call(self, fn: Any, *args: Any) -> Any:
        """Run fn(*args) on the lb loop and return its result."""
        assert self.loop is not None
        fut: Any = asyncio.run_coroutine_threadsafe(_acall(fn, *args), self.loop)
        return fut.result(10)

    def wait_txns(self, n: int, timeout: float = 10.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while len(self.txns) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.txns)} transactions, wanted {n}")
            time.sleep(0.02)
        return self.txns

    def stop(self) -> None:
        if self.loop is None or self.rt is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.rt.stop(), self.loop).result(10)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self.rt = None

    def __enter__(self) -> LbThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _acall(fn: Any, *args: Any) -> Any:
    r = fn(*args)
    if asyncio.iscoroutine(r):
        r = await r
    return r


class LbProcess:
    """`python -m lb -f <tmpfile> -db` as a subprocess, with its output collected."""

    def __init__(self, text: str, ports: Mapping[str, int] | None = None,
                 args: tuple[str, ...] = (), env: Mapping[str, str] | None = None,
                 wait: bool = True, pass_fds: tuple[int, ...] = ()) -> None:
        self.template = text
        self._given = dict(ports or {})
        self.text, self.ports = render(text, ports)
        self.args = args
        self.env = dict(os.environ, **(env or {}))
        self.env.setdefault("PYTHONPATH", ROOT)
        self.wait = wait
        self.pass_fds = pass_fds
        self.proc: subprocess.Popen[bytes] | None = None
        self._lines: list[str] = []
        self._lock = threading.Lock()
        fd, self.path = tempfile.mkstemp(suffix=".cfg", prefix="lbtest-")
        with os.fdopen(fd, "w") as f:
            f.write(self.text)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> LbProcess:
        # A port from free_port() is free only until someone binds it: on a busy
        # machine an outgoing connection may take it as its local port before lb
        # binds it. Such a start is retried on new ports (the given ones stay).
        for attempt in range(3):
            self._spawn()
            if not self.wait:
                return self
            names = bind_ports(self.template)
            try:
                wait_listening([self.ports[n] for n in names],
                               alive=lambda: self.proc is not None and self.proc.poll() is None)
                return self
            except TimeoutError:
                self.stop()
                raced = any("cannot bind socket (Address already in use)" in line
                            for line in self.lines())
                if not raced or attempt == 2:
                    raise TimeoutError("lb did not start:\n"
                                       + "\n".join(self.lines())) from None
            self.text, self.ports = render(self.template, self._given)
            with open(self.path, "w") as f:
                f.write(self.text)
        raise AssertionError("unreachable")

    def _spawn(self) -> None:
        lines: list[str] = []
        with self._lock:
            self._lines = lines
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lb", "-f", self.path, "-db", *self.args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=self.env,
            pass_fds=self.pass_fds)
        for stream in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=self._reader, args=(stream, lines), daemon=True).start()

    def _reader(self, stream: Any, lines: list[str]) -> None:
        for raw in iter(stream.readline, b""):
            with self._lock:
                lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
        stream.close()  # at EOF (lb exited): no unclosed pipe left for the GC to warn about

    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def wait_for_line(self, needle: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines():
                if needle in line:
                    return line
            time.sleep(0.05)
        raise TimeoutError(f"no line with {needle!r}:\n" + "\n".join(self.lines()))

    def stop(self, timeout: float = 5.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        try:
            os.unlink(self.path)
        except OSError:
            pass
        return self.proc.returncode

    def __enter__(self) -> LbProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_value(cond: Any, timeout: float = 8.0, what: str = "") -> Any:
    """Poll ``cond()`` until it gives a true value, and return that value; fails
    naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or cond}")


def raw_request(port: int, data: bytes, timeout: float = 3.0, until_close: bool = True,
                shut: bool = False) -> bytes:
    """Send raw bytes and return everything read until close (or the timeout). A
    connection reset before the bytes could go (a refused connection: `tcp-request
    connection reject` resets it, as HAProxy does) reads as nothing, even when the
    reset beats `connect()` back to a busy client."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except ConnectionResetError:
        return b""
    with s:
        if data:
            try:
                s.sendall(data)
            except (ConnectionResetError, BrokenPipeError):
                return b""
        if shut:
            s.shutdown(socket.SHUT_WR)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                d = s.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                break
            if not d:
                break
            out += d
            if not until_close and b"\r\n\r\n" in out:
                break
        return out


def _sysctl_max(name: str) -> int:
    with open(f"/proc/sys/net/ipv4/{name}") as f:
        return int(f.read().split()[2])


MB = 1024 * 1024
# What the kernel alone may hold between a flooding peer and one that stopped reading,
# with buffers it sizes itself: a receive buffer grows up to tcp_rmem's maximum (32 MiB
# here; 16 MiB went through in one CI run) on both connections, plus two send buffers.
# None of it is lb's memory (RSS checks bound that).
KERNEL_HOLDS = 2 * _sysctl_max("tcp_rmem") + 2 * _sysctl_max("tcp_wmem") + MB
STALL_LIMIT = KERNEL_HOLDS + 4 * MB  # bytes a stalled flood may have pushed, lb's included


class Blackhole:
    """A port whose SYNs go unanswered: a listener with a full accept queue."""

    def __enter__(self) -> Blackhole:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fill = []
        for _ in range(4):
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            self.fill.append(c)
        time.sleep(0.1)
        return self

    def __exit__(self, *exc: object) -> None:
        for c in self.fill:
            c.close()
        self.sock.close()


class RawBackend:
    """A loopback TCP server whose behaviour is a function of each accepted socket:
    ``handler(sock)`` runs in its own thread (e.g. answer garbage, stay silent, close
    early, send 100-continue). Records the bytes received in ``.received``."""

    def __init__(self, handler: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler = handler
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.accepted = 0
        self._stop = False
        self._conns: list[socket.socket] = []

    def _serve(self) -> None:
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self._conns.append(c)
            threading.Thread(target=self._run, args=(c,), daemon=True).start()

    def _run(self, c: socket.socket) -> None:
        try:
            self.handler(c, self)
        except OSError:
            pass

    def recv_head(self, c: socket.socket, timeout: float = 5.0) -> bytes:
        """Read until the end of a request head; record and return it."""
        c.settimeout(timeout)
        data = b""
        while b"\r\n\r\n" not in data:
            d = c.recv(65536)
            if not d:
                break
            data += d
        self.received.append(data)
        return data

    def __enter__(self) -> RawBackend:
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        try:
            self.sock.close()
        except OSError:
            pass
        for c in self._conns:
            try:
                c.close()
            except OSError:
                pass
