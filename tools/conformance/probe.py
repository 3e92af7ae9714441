"""Send one raw request to a proxy and record what happened on both sides.

Owns: ``RecordingBackend`` (a loopback HTTP/1.1 server that records every request head
it receives, raw bytes included, and answers each with a small 200), ``probe()`` (one
client connection: send the bytes, read the responses) and ``run_case()`` (both, giving
the outcome dict stored in tests/data/conformance_haproxy.json).

Used by tools/conformance/run.py (HAProxy and lb side by side) and by
tests/test_conformance.py (lb alone). Standard library plus httptools only.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httptools

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-backend: 1\r\n\r\nok"
NOT_ALLOWED = b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n"

CONFIG = """\
defaults
  mode http
  timeout client 3s
  timeout server 3s
  timeout connect 1s
  timeout http-request 2s
frontend f
  bind 127.0.0.1:{fe}
  default_backend b
backend b
  server s1 127.0.0.1:{be}
"""


def _text(b: bytes) -> str:
    return b.decode("latin-1")


def _short(b: bytes) -> str:
    """A recorded value; long ones (padding cases) as their length only."""
    return _text(b) if len(b) <= 256 else f"<{len(b)} bytes>"


class _Conn:
    """One accepted backend connection. The framing is parsed leniently (any method,
    any byte in values) so that whatever a proxy forwards is recorded, not refused."""

    def __init__(self, backend: RecordingBackend, sock: socket.socket) -> None:
        self.b = backend
        self.sock = sock
        self.buf = b""

    def _more(self) -> bool:
        d = self.sock.recv(65536)
        if not d:
            return False
        self.b.event("raw", _text(d))
        self.buf += d
        return True

    def _line(self) -> bytes | None:
        while b"\r\n" not in self.buf:
            if not self._more():
                return None
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _skip(self, n: int) -> bool:
        while len(self.buf) < n:
            if not self._more():
                return False
        self.buf = self.buf[n:]
        return True

    def run(self) -> None:
        self.sock.settimeout(30)
        try:
            while self._one():
                pass
        except ConnectionResetError:
            pass  # a proxy dropping an idle server connection
        except (OSError, ValueError) as e:
            self.b.event("backend_parse_error", repr(e))
        finally:
            self.sock.close()

    def _one(self) -> bool:
        while b"\r\n\r\n" not in self.buf:
            if not self._more():
                return False
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        headers = []
        for ln in lines[1:]:
            name, _, value = ln.partition(b":")
            headers.append([_text(name).lower(), _short(value.strip(b" \t"))])
        self.b.event("request", {"line": _short(lines[0]), "headers": headers})
        method = lines[0].split(b" ", 1)[0]
        te = ",".join(v for n, v in headers if n == "transfer-encoding").lower()
        cls = [v for n, v in headers if n == "content-length"]
        if "chunked" in te:
            while True:
                line = self._line()
                if line is None:
                    return False
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while True:
                        t = self._line()
                        if t is None:
                            return False
                        if not t:
                            break
                    break
                if not self._skip(size + 2):
                    return False
        elif cls and not self._skip(int(cls[0].split(",")[0])):
            return False
        self.sock.sendall(NOT_ALLOWED if method == b"CONNECT" else OK)
        return True


class RecordingBackend:
    """Threaded loopback server; ``events`` is the ordered record of what arrived."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port: int = self.sock.getsockname()[1]
        self.events: list[tuple[float, str, Any]] = []
        self.lock = threading.Lock()
        self.stopped = False

    def event(self, kind: str, what: Any) -> None:
        with self.lock:
            self.events.append((time.monotonic(), kind, what))

    def _serve(self) -> None:
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=_Conn(self, c).run, daemon=True).start()

    def __enter__(self) -> RecordingBackend:
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped = True
        self.sock.close()

    def since(self, mark: int) -> list[tuple[float, str, Any]]:
        with self.lock:
            return list(self.events[mark:])

    def settle(self, quiet: float = 0.15, limit: float = 2.0) -> None:
        """Wait until nothing arrived for `quiet` seconds (late forwarding)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            with self.lock:
                last = self.events[-1][0] if self.events else 0.0
            if time.monotonic() - last >= quiet:
                return
            time.sleep(0.03)


class _Responses:
    def __init__(self, head: bool) -> None:
        self.head = head  # answers to HEAD end with their head
        self.statuses: list[int] = []
        self.finals = 0
        self.parser = httptools.HttpResponseParser(self)
        self.broken = False

    def on_headers_complete(self) -> None:
        st = self.parser.get_status_code()
        self.statuses.append(st)
        if self.head and st >= 200:
            self.finals += 1

    def on_message_complete(self) -> None:
        if self.statuses and self.statuses[-1] >= 200:
            self.finals += 1

    def feed(self, d: bytes) -> None:
        if self.broken:
            return
        try:
            self.parser.feed_data(d)
        except httptools.HttpParserUpgrade:
            self.broken = True
        except httptools.HttpParserError:
            self.broken = True


def probe(port: int, data: bytes, expect: int, idle: float = 1.5,
          total: float = 5.0) -> dict[str, Any]:
    """Send `data`; read until the peer closes, `expect` final responses arrived, or
    nothing came for `idle` seconds."""
    r = _Responses(data.startswith(b"HEAD "))
    raw = b""
    closed = False
    with socket.create_connection(("127.0.0.1", port), timeout=total) as s:
        s.sendall(data)
        deadline = time.monotonic() + total
        while time.monotonic() < deadline:
            s.settimeout(idle)
            try:
                d = s.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                closed = True
                break
            if not d:
                closed = True
                break
            raw += d
            r.feed(d)
            if r.finals >= expect:
                break
    return {"statuses": r.statuses, "closed": closed, "response_head": _text(raw[:160])}


def run_case(port: int, backend: RecordingBackend, data: bytes, expect: int) -> dict[str, Any]:
    backend.settle()
    mark = len(backend.events)
    out = probe(port, data, expect)
    backend.settle()
    evs = backend.since(mark)
    out["backend"] = [w for _, k, w in evs if k == "request"]
    out["backend_errors"] = [w for _, k, w in evs if k == "backend_parse_error"]
    out["backend_bytes"] = sum(len(w) for _, k, w in evs if k == "raw")
    return out


def refused(outcome: dict[str, Any]) -> bool:
    """Nothing reached the server, and the client got an error or a close."""
    if outcome["backend_bytes"]:
        return False
    st = outcome["statuses"]
    return not st or st[0] >= 400 or outcome["closed"]
