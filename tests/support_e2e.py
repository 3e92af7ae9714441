"""What the end-to-end tests share: one request and who answered it, a syslog
receiver for traffic log lines, and a real HAProxy run on the same config.

    r = fetch(port, "/x", [("x-be", "b")])    # Resp: status, headers, body, .server
    who(port)                                  # the x-server of a 200 answer
    log = UdpLog()                             # `log 127.0.0.1:<log.port> local0`
    with Haproxy(CFG.format(log=log.port), ports={"s1": s1.port}) as hp:
        fetch(hp.ports["fe"]); log.records(1)  # the same config under HAProxy 2.6
    for kind in ("lb", "haproxy"):
        with lb_or_haproxy(kind, CFG, ports) as px: ...   # px.ports["fe"]

Backends (tests.backends.HttpBackend) name themselves in ``x-server``. Configs
use the ``@@name@@`` port placeholders of tests.lbproc.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from tests.lbproc import LbThread, RawBackend, render, wait_listening


class Resp:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def get(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def server(self) -> str | None:
        return self.get("x-server")


def fetch(port: int, path: str = "/", headers: Iterable[tuple[str, str]] = (),
          method: str = "GET", body: bytes | None = None, timeout: float = 10.0) -> Resp:
    """One request on its own connection; status, headers in wire order, body."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = dict(headers)
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        return Resp(r.status, list(r.getheaders()), data)
    finally:
        c.close()


def who(port: int, path: str = "/", headers: Iterable[tuple[str, str]] = ()) -> str:
    r = fetch(port, path, headers)
    assert r.status == 200, (r.status, r.body)
    assert r.server is not None
    return r.server


HAPROXY = "/usr/sbin/haproxy"
# the %tsc and %rc fields of an `option httplog` line
_TSC = re.compile(rb" (\S{4}) \d+/\d+/\d+/\d+/(\+?\d+) \d+/\d+ ")
_HTTPLOG = re.compile(rb" ([^ /]+)/(\S+) (-?\d+)/(-?\d+)/(-?\d+)/(-?\d+)/(\+?-?\d+) (-?\d+) "
                      rb"\d+ \S+ \S+ (\S{4}) \d+/\d+/\d+/\d+/(\+?\d+) (\d+)/(\d+) "
                      rb'.*"\S+ (\S+)')

# the accept date of an httplog line, to the millisecond: [22/Nov/2026:23:19:52.123]
_ACCEPT_DATE = re.compile(rb"\[\d\d/\w{3}/\d{4}:(\d\d):(\d\d):(\d\d)\.(\d{3})\]")


class EventLog:
    """A syslog receiver for state-change lines: every datagram's message (after
    the `tag[pid]: ` header), collected by a thread."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.messages: list[str] = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            text = data.decode("latin-1").rstrip("\n")
            self.messages.append(text.split("]: ", 1)[1] if "]: " in text else text)

    def take(self) -> set[str]:
        """The distinct state-change lines since the last call, check durations
        blanked (a repeated line, such as a drained server's, counts once)."""
        got, self.messages[:] = list(self.messages), []
        return {re.sub(r"check duration: \d+ms", "check duration: Nms", m) for m in got
                if "Proxy " not in m}  # (HAProxy's start-up line)


class SideBySide:
    """HAProxy 2.6.12 and lb run at once, each on ``render(kind, sock, log_port)``
    (kind "h" or "l"; its own stats socket and ``EventLog``): ``settle`` waits until
    both say the same,
    ``cli`` asks both and expects one answer."""

    def __init__(self, tmp: str, render: Callable[[str, str, int], str]) -> None:
        from tests.lbproc import LbProcess
        from tests.stats_support import wait_socket

        self.logs = {"h": EventLog(), "l": EventLog()}
        self.socks = {"h": os.path.join(tmp, "h.sock"), "l": os.path.join(tmp, "l.sock")}
        self.procs: dict[str, Any] = {}
        try:
            for kind in ("h", "l"):
                text = render(kind, self.socks[kind], self.logs[kind].port)
                proc: Any = (Haproxy(text, ready_socket=self.socks[kind], single_thread=True)
                             if kind == "h" else LbProcess(text))
                self.procs[kind] = proc.__enter__()
            wait_socket(self.socks["l"])
        except BaseException:
            self.close()
            raise

    def settle(self, look: Callable[[str], Any], looks: int = 1,
               timeout: float = 6.0) -> Any:
        """``look(stats socket)`` once both give the same answer (not None) ``looks``
        times in a row; else fails showing what each said last."""
        deadline = time.monotonic() + timeout
        same = 0
        h = lb = None
        while time.monotonic() < deadline:
            h, lb = look(self.socks["h"]), look(self.socks["l"])
            same = same + 1 if h is not None and h == lb else 0
            if same == looks:
                return h
            time.sleep(0.05)
        raise AssertionError(f"never the same:\nlb      {lb}\nHAProxy {h}")

    def cli(self, cmd: str) -> str:
        from tests.stats_support import query

        h, lb = query(self.socks["h"], cmd), query(self.socks["l"], cmd)
        assert lb == h, cmd
        return h

    def close(self) -> None:
        for proc in self.procs.values():
            proc.__exit__(None, None, None)
        self.procs = {}


class UdpLog:
    """A syslog receiver on 127.0.0.1 (`log 127.0.0.1:<port> local0`)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.got: list[bytes] = []

    def lines(self, n: int, timeout: float = 5.0) -> list[bytes]:
        """The first n traffic lines received (waits for them)."""
        deadline = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                break
            if _TSC.search(data) and b"<BADREQ>" not in data:  # not readiness probes
                self.got.append(data)
        return self.got[:n]

    def fields(self, n: int, timeout: float = 5.0) -> list[tuple[str, str]]:
        """(%tsc, %rc) of the first n lines."""
        out = []
        for line in self.lines(n, timeout):
            m = _TSC.search(line)
            assert m is not None
            out.append((m.group(1).decode(), m.group(2).decode()))
        return out

    def records(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The first n lines as dicts: be srv Tq Tw Tc Tr Ta status tsc rc sq bq path,
        and accept_ms (the accept date in milliseconds since midnight)."""
        out = []
        for line in self.lines(n, timeout):
            m = _HTTPLOG.search(line)
            assert m is not None, line
            be, srv, tq, tw, tc, tr, ta, st, tsc, rc, sq, bq, path = m.groups()
            out.append({"be": be.decode(), "srv": srv.decode(), "Tq": int(tq), "Tw": int(tw),
                        "Tc": int(tc),
                        "Tr": int(tr), "Ta": int(ta.lstrip(b"+")), "status": int(st),
                        "tsc": tsc.decode(), "rc": rc.decode(), "sq": int(sq), "bq": int(bq),
                        "path": path.decode()})
            date = _ACCEPT_DATE.search(line)
            if date:  # milliseconds since midnight
                h, mi, sec, ms = (int(x) for x in date.groups())
                out[-1]["accept_ms"] = ((h * 60 + mi) * 60 + sec) * 1000 + ms
        return out

    def close(self) -> None:
        self.sock.close()


SINGLE_THREAD = "global\n    nbthread 1\n"


class Haproxy:
    """/usr/sbin/haproxy with a test config (same @@name@@ placeholders as lbproc).

    Ready when the ``fe`` port (or ``ready_port``) accepts connections, or, with
    ``ready_socket``, when that stats socket exists. ``env`` replaces its
    environment; ``stderr_path`` keeps what it prints (state-change lines).

    ``single_thread`` runs it with one thread (an extra ``global`` section, merged
    with the config's own) for the traffic comparisons: with the default of one
    thread per CPU, two sequential requests can be served by different threads and
    their log lines reach the syslog receiver out of order on a loaded machine,
    while the tests compare lb's lines with HAProxy's in request order (lb's event
    loop is single-threaded too). Off by default: `show stat`/`show info` values
    such as the derived session limit depend on the thread count.
    """

    def __init__(self, text: str, ports: dict[str, int] | None = None, *,
                 ready_port: int | None = None, ready_socket: str | None = None,
                 env: dict[str, str] | None = None, stderr_path: str | None = None,
                 single_thread: bool = False) -> None:
        self.text, self.ports = render(text, ports)
        if single_thread:
            self.text = SINGLE_THREAD + self.text
        self.ready_port, self.ready_socket = ready_port, ready_socket
        self.env, self.stderr_path = env, stderr_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.dir = tempfile.mkdtemp(prefix="lbtest-hap-")

    def __enter__(self) -> Haproxy:
        path = os.path.join(self.dir, "h.cfg")
        with open(path, "w") as f:
            f.write(self.text)
        err: Any = subprocess.DEVNULL
        if self.stderr_path is not None:
            err = open(self.stderr_path, "wb")  # noqa: SIM115 (handed to the child)
        try:
            self.proc = subprocess.Popen([HAPROXY, "-db", "-f", path], env=self.env,
                                         stdout=subprocess.DEVNULL, stderr=err)
        finally:
            if self.stderr_path is not None:
                err.close()
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_ready(self) -> None:
        proc = self.proc
        assert proc is not None
        if self.ready_socket is None:
            port = self.ready_port if self.ready_port is not None else self.ports["fe"]
            wait_listening([port], alive=lambda: proc.poll() is None)
            return
        deadline = time.monotonic() + 10
        while not os.path.exists(self.ready_socket):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"haproxy did not create {self.ready_socket}")
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        try:
            os.unlink(os.path.join(self.dir, "h.cfg"))
            os.rmdir(self.dir)
        except OSError:
            pass


def one_backend_config(frontend_lines: str = "", backend_lines: str = "") -> str:
    """An HTTP frontend ``fe`` in front of backend ``be`` with one server ``s1``, 5 s
    timeouts; the lines given go into each section as they are (indented)."""
    return f"""
defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:@@fe@@
{frontend_lines}
    default_backend be
backend be
{backend_lines}
    server s1 127.0.0.1:@@s1@@
"""


def named_backend(ip: str, port: int) -> RawBackend:
    """A backend on ``ip`` answering every request with that address."""
    body = ip.encode()

    def handler(c: socket.socket, be: RawBackend) -> None:
        while be.recv_head(c).endswith(b"\r\n\r\n"):
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    return RawBackend(handler, host=ip, port=port)


def answer_ok(c: socket.socket, be: RawBackend) -> None:
    """A RawBackend handler: every request of the connection answered ``200`` with
    body ``ok`` (a closed connection records an empty head in ``be.received``)."""
    while be.recv_head(c).endswith(b"\r\n\r\n"):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def head_sent_through(kind: str, text: str, request: bytes) -> bytes:
    """Run ``text`` (``one_backend_config``) by lb or HAProxy in front of ``answer_ok``,
    send ``request`` (then end the client's side), check the 200, and return the
    request head the server got."""
    with RawBackend(answer_ok) as srv, lb_or_haproxy(kind, text, {"s1": srv.port}) as px:
        with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
            c.sendall(request)
            c.shutdown(socket.SHUT_WR)
            got = b""
            while chunk := c.recv(65536):
                got += chunk
        assert got.startswith(b"HTTP/1.1 200 OK\r\n"), got
    (head,) = [h for h in srv.received if h]
    return head


def header_sent_through(kind: str, text: str, request: bytes, name: bytes) -> list[bytes]:
    """``head_sent_through``'s values of header ``name`` (lower-case)."""
    head = head_sent_through(kind, text, request)
    return [line.split(b":", 1)[1].strip(b" ") for line in head.split(b"\r\n")
            if line.lower().startswith(name + b":")]


def lb_or_haproxy(kind: str, text: str, ports: dict[str, int] | None = None) -> Any:
    """The same config run by lb (``kind == "lb"``, in a thread) or by HAProxy."""
    if kind == "lb":
        return LbThread(text, ports=ports)
    return Haproxy(text, ports=ports, single_thread=True)


def config_refusal(cmd: list[str], path: str) -> str:
    """Run ``<cmd> -c -f <path>`` (lb or HAProxy), check that it refuses the file, and
    return its messages without the NOTICE lines, the ``[ALERT] (pid) : config : ``
    prefixes and the closing "Fatal errors" / "Error(s) found" lines."""
    out = subprocess.run([*cmd, "-c", "-f", path], capture_output=True, text=True,
                         timeout=30, stdin=subprocess.DEVNULL)
    text = out.stdout + out.stderr
    assert out.returncode != 0, text
    lines = [re.sub(r"^\[ALERT\] +\(\d+\) : config : ", "", ln) for ln in text.splitlines()
             if not ln.startswith("[NOTICE]")]
    return "\n".join(ln for ln in lines if not ln.startswith(("Fatal errors",
                                                               "Error(s) found")))
