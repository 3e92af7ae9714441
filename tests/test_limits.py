"""Resource bounds with real sockets: slow, greedy and failing peers cannot make lb
hold unbounded memory, lose a retryable request or keep a connection forever.

Memory is measured as the VmRSS of an `lb` subprocess (/proc/<pid>/status) before and
while the peer misbehaves; margins are generous (the machine is shared), but a proxy
that buffered the flood would exceed them many times over.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from lb.http import h1, responses
from tests.lbproc import MB, STALL_LIMIT, LbProcess, RawBackend, free_port
from tests.stats_support import query

BASE = """
global
  log stdout format raw local0
defaults
  mode http
  log global
  option httplog
  timeout client 20s
  timeout server 20s
  timeout connect 1s
  timeout tunnel 20s
  timeout http-request 1s
frontend f
  bind 127.0.0.1:@@fe@@
  default_backend b
backend b
  server s1 127.0.0.1:@@s1@@
"""
FLOOD = max(64 * MB, STALL_LIMIT + 16 * MB)
RSS_MARGIN_KB = 24 * 1024  # a buffered 64 MB flood would be ~3x this
PIECE = b"x" * 65536
SMALL = 65536  # the socket buffers of the tuned variant (tune.rcvbuf.server and so on)


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _send_until_blocked(c: socket.socket, total: int, counter: list[int]) -> None:
    c.settimeout(30)
    try:
        while counter[0] < total:
            c.sendall(PIECE)
            counter[0] += len(PIECE)
    except OSError:
        pass


def _stalls(counter: list[int], limit: int, wait: float = 1.0) -> int:
    """Wait for the sender to block; return where it stood. Fails if it passed `limit`
    or was still making progress a second later."""
    time.sleep(wait)
    first = counter[0]
    time.sleep(1.0)
    now = counter[0]
    assert now < limit, f"{now} bytes went through a peer that does not read"
    assert now - first < 4 * MB, f"still flowing: {first} -> {now}"
    return now


def _flooding_backend(upgrade: bool,
                      sndbuf: int = 0) -> Callable[[socket.socket, RawBackend], None]:
    def handler(c: socket.socket, rb: RawBackend) -> None:
        if sndbuf:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        head = rb.recv_head(c)
        if upgrade:
            key = [ln.split(b":", 1)[1].strip() for ln in head.split(b"\r\n")
                   if ln.lower().startswith(b"sec-websocket-key")][0]
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + h1.ws_accept(key)
                      + b"\r\n\r\n")
        else:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % FLOOD)
        _send_until_blocked(c, FLOOD, rb.sent)  # type: ignore[attr-defined]
    return handler


def _client_not_reading(request: bytes, upgrade: bool, tuned: bool = False) -> None:
    """A server floods a client that does not read: the flood stalls, lb's memory stays
    flat, and it resumes once the client reads. Tuned, every socket buffer on the way
    is 64 KiB (lb's by `tune.rcvbuf.server`/`tune.sndbuf.client`), so what went
    through before the stall is what lb itself holds, plus those few buffers."""
    rb = RawBackend(_flooding_backend(upgrade, SMALL if tuned else 0))
    rb.sent = [0]  # type: ignore[attr-defined]
    conf = BASE
    if tuned:
        conf = BASE.replace("global\n", f"global\n  tune.rcvbuf.server {SMALL}\n"
                            f"  tune.sndbuf.client {SMALL}\n", 1)
    with rb, LbProcess(conf, ports={"s1": rb.port}) as lb:
        base = rss_kb(lb.pid)
        with socket.socket() as c:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL)
            c.settimeout(10)
            c.connect(("127.0.0.1", lb.ports["fe"]))
            c.sendall(request)
            # tuned: 4 buffers of 64 KiB, which the kernel doubles, and lb's own
            # (about 0.6 MiB seen in all); 5.5 MiB and more without the tune.* lines
            limit = 3 * MB // 2 if tuned else STALL_LIMIT
            _stalls(rb.sent, limit)  # type: ignore[attr-defined]
            grown = rss_kb(lb.pid) - base
            assert grown < RSS_MARGIN_KB, f"RSS grew by {grown} kB"
            # reading again lets the flood resume
            got = 0
            deadline = time.monotonic() + 20
            while got < 8 * MB and time.monotonic() < deadline:
                d = c.recv(MB)
                if not d:
                    break
                got += len(d)
            assert got >= 8 * MB


# ---------------------------------------------------------------------------- tests


def test_slowloris_gets_408_at_http_request_timeout_and_close() -> None:
    """Bytes trickling in do not restart `timeout http-request` (1 s): 408, close."""
    rb = RawBackend(lambda c, r: r.recv_head(c))
    with rb, LbProcess(BASE, ports={"s1": rb.port}) as lb:
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=10) as c:
            t0 = time.monotonic()
            c.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")
            c.setblocking(False)
            got = b""
            closed = False
            while time.monotonic() - t0 < 6:
                try:
                    c.send(b"s")
                except OSError:
                    pass
                time.sleep(0.1)
                try:
                    d = c.recv(4096)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    closed = True
                    break
                if not d:
                    closed = True
                    break
                got += d
            elapsed = time.monotonic() - t0
        assert got == responses.PARSER_408
        assert closed
        assert 0.8 < elapsed < 4.0, elapsed
        assert rb.accepted == 0
        line = lb.wait_for_line(" 408 ")
        assert " cR-- " in line and '"<BADREQ>"' in line


def test_client_not_reading_large_response_memory_bounded() -> None:
    _client_not_reading(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n", upgrade=False)


def test_client_not_reading_with_small_socket_buffers_holds_little() -> None:
    _client_not_reading(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n", upgrade=False, tuned=True)


def test_websocket_client_not_reading_with_small_socket_buffers_holds_little() -> None:
    _client_not_reading(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        upgrade=True, tuned=True)


def test_websocket_client_not_reading_server_floods_memory_bounded() -> None:
    _client_not_reading(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        upgrade=True)


def test_pipelined_flood_is_not_buffered() -> None:
    """A client pipelining requests without reading the answers: lb stops reading
    (one request in flight, the next heads queued at most), memory stays flat."""
    def answer(c: socket.socket, rb: RawBackend) -> None:
        c.settimeout(20)
        buf = b""
        while True:
            d = c.recv(65536)
            if not d:
                return
            buf += d
            n = buf.count(b"\r\n\r\n")
            if n:
                buf = buf[buf.rfind(b"\r\n\r\n") + 4:]
                rb.answered[0] += n  # type: ignore[attr-defined]
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 8192\r\n\r\n"
                          + b"r" * 8192 * 1)
                for _ in range(n - 1):
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 8192\r\n\r\n"
                              + b"r" * 8192)

    rb = RawBackend(answer)
    rb.answered = [0]  # type: ignore[attr-defined]
    req = b"GET /p HTTP/1.1\r\nHost: a\r\nX-Pad: " + b"p" * 4000 + b"\r\n\r\n"
    with rb, LbProcess(BASE, ports={"s1": rb.port}) as lb:
        base = rss_kb(lb.pid)
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=10) as c:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            sent = [0]
            batch = req * 16
            total = FLOOD

            def pump() -> None:
                c.settimeout(30)
                try:
                    while sent[0] < total:
                        c.sendall(batch)
                        sent[0] += len(batch)
                except OSError:
                    pass

            threading.Thread(target=pump, daemon=True).start()
            _stalls(sent, STALL_LIMIT, wait=1.5)
            grown = rss_kb(lb.pid) - base
            assert grown < RSS_MARGIN_KB, f"RSS grew by {grown} kB"
            # the server was not flooded either: lb forwarded a bounded number
            assert rb.answered[0] * len(req) < STALL_LIMIT  # type: ignore[attr-defined]


def test_huge_chunked_upload_is_streamed_not_buffered() -> None:
    """The server reads the head, then nothing for a while: the client's upload
    stalls (lb stopped reading) and lb's memory stays flat; once the server reads,
    the whole body arrives and the answer comes back."""
    total = FLOOD
    go = threading.Event()

    def slow_reader(c: socket.socket, rb: RawBackend) -> None:
        head = rb.recv_head(c)
        got = len(head) - head.index(b"\r\n\r\n") - 4
        go.wait(20)
        c.settimeout(20)
        tail = b""
        while True:
            d = c.recv(1 << 20)
            if not d:
                return
            got += len(d)
            tail = (tail + d)[-16:]
            if tail.endswith(b"\r\n0\r\n\r\n"):
                break
        rb.body_bytes = got  # type: ignore[attr-defined]
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    rb = RawBackend(slow_reader)
    rb.body_bytes = 0  # type: ignore[attr-defined]
    with rb, LbProcess(BASE, ports={"s1": rb.port}) as lb:
        base = rss_kb(lb.pid)
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=20) as c:
            c.sendall(b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
            sent = [0]
            chunk = b"%x\r\n" % len(PIECE) + PIECE + b"\r\n"

            def pump() -> None:
                c.settimeout(30)
                try:
                    while sent[0] < total:
                        c.sendall(chunk)
                        sent[0] += len(PIECE)
                    c.sendall(b"0\r\n\r\n")
                    sent[0] += 1
                except OSError:
                    pass

            th = threading.Thread(target=pump, daemon=True)
            th.start()
            _stalls(sent, STALL_LIMIT)
            grown = rss_kb(lb.pid) - base
            assert grown < RSS_MARGIN_KB, f"RSS grew by {grown} kB"
            go.set()
            th.join(30)
            assert sent[0] == total + 1
            c.settimeout(20)
            resp = b""
            while not resp.endswith(b"ok"):
                d = c.recv(4096)
                if not d:
                    break
                resp += d
        assert resp.startswith(b"HTTP/1.1 200")
        assert rb.body_bytes >= total  # type: ignore[attr-defined]


def test_maxconn_excess_connections_wait_unread_then_are_served() -> None:
    """frontend maxconn 2: two idle connections hold the slots; the others are not
    read (no answer, no 408) until a slot frees, then each is served in turn."""
    cfg = BASE.replace("  bind 127.0.0.1:@@fe@@\n",
                       "  bind 127.0.0.1:@@fe@@\n  maxconn 2\n  backlog 64\n"
                       "  timeout http-request 10s\n")
    served: list[int] = []

    def ok(c: socket.socket, rb: RawBackend) -> None:
        while True:
            head = rb.recv_head(c)
            if not head:
                return
            served.append(1)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    rb = RawBackend(ok)
    with rb, LbProcess(cfg, ports={"s1": rb.port}) as lb:
        port = lb.ports["fe"]
        holders = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        time.sleep(0.3)
        waiting = []
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            waiting.append(s)
        time.sleep(1.0)
        assert served == []
        for s in waiting:
            s.setblocking(False)
            try:
                assert s.recv(100) == b"", "answered while over maxconn"
            except BlockingIOError:
                pass
            s.setblocking(True)
        for h in holders:
            h.close()
        for s in waiting:
            s.settimeout(10)
            resp = b""
            while True:
                d = s.recv(4096)
                if not d:
                    break
                resp += d
            assert resp.startswith(b"HTTP/1.1 200") and resp.endswith(b"ok")
            s.close()
        assert len(served) == 20


def test_backend_reset_mid_response_ends_client_connection_logged_SD() -> None:
    def reset(c: socket.socket, rb: RawBackend) -> None:
        rb.recv_head(c)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"b" * 1000)
        time.sleep(0.2)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()

    rb = RawBackend(reset)
    with rb, LbProcess(BASE, ports={"s1": rb.port}) as lb:
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=10) as c:
            c.sendall(b"GET /r HTTP/1.1\r\nHost: a\r\n\r\n")
            got = b""
            ended = False
            while True:
                try:
                    d = c.recv(65536)
                except ConnectionResetError:
                    ended = True
                    break
                except TimeoutError:
                    break
                if not d:
                    ended = True
                    break
                got += d
        assert ended, "the client connection must end with the server's"
        assert got.startswith(b"HTTP/1.1 200") and len(got.split(b"\r\n\r\n", 1)[1]) < 100000
        line = lb.wait_for_line('"GET /r HTTP/1.1"')
        assert " SD-- " in line, line


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_chunked_response_cut_by_the_server_is_aborted_for_any_client(version: str) -> None:
    """The server closes inside a chunked body. An HTTP/1.0 client is sent the decoded
    body until close: a clean close would pass the truncated body off as complete, so
    the client connection is reset, logged SD and counted as a server abort, as for an
    HTTP/1.1 client (lb used to close it cleanly and log `----` for the 1.0 one)."""
    def cut(c: socket.socket, rb: RawBackend) -> None:
        rb.recv_head(c)
        c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"64\r\n" + b"a" * 100 + b"\r\n64\r\n" + b"b" * 10)
        time.sleep(0.2)
        c.close()

    rb = RawBackend(cut)
    cfg = BASE.replace("global\n", "global\n  stats socket 127.0.0.1:@@cli@@ level admin\n", 1)
    with rb, LbProcess(cfg, ports={"s1": rb.port}) as lb:
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=10) as c:
            c.sendall(f"GET /cut HTTP/{version}\r\nHost: a\r\n\r\n".encode())
            got = b""
            reset = False
            while True:
                try:
                    d = c.recv(65536)
                except ConnectionResetError:
                    reset = True
                    break
                if not d:
                    break
                got += d
        line = lb.wait_for_line(f'"GET /cut HTTP/{version}"')
        assert " SD-- " in line, line
        if version == "1.0":
            assert reset, "a clean close would pass the truncated body off as complete"
            assert b"transfer-encoding" not in got.lower()
        else:
            assert not got.endswith(b"0\r\n\r\n")  # never the last chunk
        csv = query(("127.0.0.1", lb.ports["cli"]), "show stat").splitlines()
        names = csv[0].lstrip("# ").split(",")
        row = next(dict(zip(names, r.split(","), strict=True)) for r in csv[1:] if r.startswith("b,s1,"))
        assert row["srv_abrt"] == "1", row


def _late_backend(port: int, start: threading.Event, delay: float,
                  seen: list[bytes]) -> tuple[socket.socket, Any]:
    """A socket bound to `port` (connections are refused) that starts listening
    `delay` after `start` is set, and answers one request."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))

    def run() -> None:
        start.wait(20)
        time.sleep(delay)
        s.listen(8)
        c, _ = s.accept()
        c.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            d = c.recv(4096)
            if not d:
                return
            data += d
        seen.append(data)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nlate")
        c.close()

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return s, th


def test_connect_refused_before_any_byte_is_retried_not_lost() -> None:
    """The server refuses the first connects (not listening yet): the request was not
    sent, so lb retries (retries 3, one per second) and the client gets the answer."""
    port = free_port()
    seen: list[bytes] = []
    start = threading.Event()
    s, th = _late_backend(port, start, 0.5, seen)
    cfg = BASE.replace("backend b\n", "backend b\n  retries 3\n")
    try:
        with LbProcess(cfg, ports={"s1": port}) as lb:
            with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=10) as c:
                c.sendall(b"GET /retry HTTP/1.1\r\nHost: a\r\n\r\n")
                start.set()
                c.settimeout(10)
                resp = b""
                while not resp.endswith(b"late"):
                    d = c.recv(4096)
                    if not d:
                        break
                    resp += d
            assert resp.startswith(b"HTTP/1.1 200") and resp.endswith(b"late")
            assert len(seen) == 1 and seen[0].startswith(b"GET /retry HTTP/1.1\r\n")
            line = lb.wait_for_line('"GET /retry HTTP/1.1"')
            # actconn/feconn/beconn/srv_conn/retries: at least one retry happened
            counters = line.split(" ---- ")[1].split()[0]
            assert int(counters.split("/")[4].lstrip("+")) >= 1, line
    finally:
        start.set()
        th.join(5)
        s.close()


def test_connect_refused_redispatched_to_another_server() -> None:
    """retries 1 + option redispatch: a refused server's request lands on the other."""
    dead = free_port()
    got: list[bytes] = []

    def ok(c: socket.socket, rb: RawBackend) -> None:
        got.append(rb.recv_head(c))
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\ns2")

    cfg = BASE.replace("backend b\n  server s1 127.0.0.1:@@s1@@\n",
                       "backend b\n  retries 1\n  option redispatch\n  balance first\n"
                       "  server s1 127.0.0.1:@@s1@@\n  server s2 127.0.0.1:@@s2@@\n")
    rb = RawBackend(ok)
    with rb, LbProcess(cfg, ports={"s1": dead, "s2": rb.port}) as lb:
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=10) as c:
            c.sendall(b"GET /rd HTTP/1.1\r\nHost: a\r\n\r\n")
            c.settimeout(10)
            resp = b""
            while not resp.endswith(b"s2"):
                d = c.recv(4096)
                if not d:
                    break
                resp += d
        assert resp.startswith(b"HTTP/1.1 200") and resp.endswith(b"s2")
        assert len(got) == 1
        line = lb.wait_for_line('"GET /rd HTTP/1.1"')
        assert " b/s2 " in line and "/+1 " in line, line


def test_head_padded_with_whitespace_over_bufsize_is_refused() -> None:
    """Leading whitespace of a value never reaches a header callback; a head that
    grows past tune.bufsize that way across reads still gets 400 (HAProxy 2.6.12:
    400 once the raw head exceeds its 16384-byte buffer)."""
    rb = RawBackend(lambda c, r: r.recv_head(c))
    with rb, LbProcess(BASE, ports={"s1": rb.port}) as lb:
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=5) as c:
            c.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nX-A:")
            try:
                for _ in range(24):
                    c.sendall(b" " * 1000)
                    time.sleep(0.01)
                c.sendall(b"v\r\n\r\n")
            except OSError:
                pass
            got = b""
            try:
                while True:
                    d = c.recv(4096)
                    if not d:
                        break
                    got += d
            except ConnectionResetError:
                pass
        assert got == responses.PARSER_400
        assert rb.accepted == 0


def test_websocket_server_not_reading_client_floods_memory_bounded() -> None:
    """The other direction of the tunnel: the server stops reading after its 101, the
    client keeps sending; the client's sends stall and lb's memory stays flat."""
    release = threading.Event()

    def handler(c: socket.socket, rb: RawBackend) -> None:
        head = rb.recv_head(c)
        key = [ln.split(b":", 1)[1].strip() for ln in head.split(b"\r\n")
               if ln.lower().startswith(b"sec-websocket-key")][0]
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + h1.ws_accept(key)
                  + b"\r\n\r\n")
        release.wait(20)
        c.settimeout(10)
        try:
            while c.recv(1 << 20):
                rb.drained[0] += 1  # type: ignore[attr-defined]
        except OSError:
            pass

    rb = RawBackend(handler)
    rb.drained = [0]  # type: ignore[attr-defined]
    with rb, LbProcess(BASE, ports={"s1": rb.port}) as lb:
        base = rss_kb(lb.pid)
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=10) as c:
            c.sendall(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                      b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
            c.settimeout(5)
            head = b""
            while b"\r\n\r\n" not in head:
                head += c.recv(4096)
            assert head.startswith(b"HTTP/1.1 101")
            sent = [0]
            threading.Thread(target=_send_until_blocked, args=(c, FLOOD, sent),
                             daemon=True).start()
            _stalls(sent, STALL_LIMIT)
            grown = rss_kb(lb.pid) - base
            assert grown < RSS_MARGIN_KB, f"RSS grew by {grown} kB"
            release.set()
            deadline = time.monotonic() + 20
            while sent[0] < FLOOD and time.monotonic() < deadline:
                time.sleep(0.1)
            assert sent[0] >= FLOOD  # the flow resumed once the server read


def test_endless_request_trailers_are_cut() -> None:
    """Trailer lines after the last chunk share the head's budget: a client streaming
    them forever is cut off (HAProxy 2.6.12 too, once its buffer is full) instead of
    having them kept in memory."""
    rb = RawBackend(lambda c, r: (r.recv_head(c), time.sleep(5)))
    with rb, LbProcess(BASE, ports={"s1": rb.port}) as lb:
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=5) as c:
            c.sendall(b"POST /t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"5\r\nhello\r\n0\r\n")
            line = b"X-T: " + b"t" * 1000 + b"\r\n"
            sent = 0
            ended = False
            try:
                while sent < 32 * MB:
                    c.sendall(line * 16)
                    sent += len(line) * 16
            except OSError:
                ended = True
        assert ended, f"{sent} bytes of trailers accepted"
        assert sent < 8 * MB


def _pipeline_answerer(c: socket.socket, rb: RawBackend) -> None:
    """Answer every request head with its own path as body, in order."""
    c.settimeout(20)
    buf = b""
    while True:
        d = c.recv(65536)
        if not d:
            return
        buf += d
        out = []
        while b"\r\n\r\n" in buf:
            head, _, buf = buf.partition(b"\r\n\r\n")
            path = head.split(b" ", 2)[1]
            out.append(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(path), path))
        if out:
            c.sendall(b"".join(out))


def test_deep_pipeline_in_one_write_is_answered_in_order() -> None:
    """3000 requests in one write: parsed a slice at a time, all answered, in order."""
    n = 3000
    with RawBackend(_pipeline_answerer) as rb, LbProcess(BASE, ports={"s1": rb.port}) as lb:
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=20) as c:
            c.sendall(b"".join(b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(n)))
            want = b"".join(b"/%d" % i for i in range(n))
            got = b""
            deadline = time.monotonic() + 30
            bodies = b""
            while bodies.count(b"/") < n and time.monotonic() < deadline:
                d = c.recv(1 << 20)
                if not d:
                    break
                got += d
                bodies = b"".join(part.split(b"\r\n\r\n", 1)[1]
                                  for part in got.split(b"HTTP/1.1 200 OK\r\n")[1:]
                                  if b"\r\n\r\n" in part)
        assert bodies == want


def test_pipelined_reads_do_not_amplify_memory() -> None:
    """20 connections each writing 256 KB of tiny pipelined requests behind a slow
    server: lb keeps the unparsed bytes, not thousands of parsed requests each."""
    def slow(c: socket.socket, rb: RawBackend) -> None:
        rb.recv_head(c)
        time.sleep(10)

    cfg = BASE.replace("timeout http-request 1s", "timeout http-request 30s")
    rb = RawBackend(slow)
    with rb, LbProcess(cfg, ports={"s1": rb.port}) as lb:
        base = rss_kb(lb.pid)
        req = b"GET / HTTP/1.1\r\n\r\n"
        socks = []
        try:
            for _ in range(20):
                s = socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=10)
                s.sendall(req * (262144 // len(req)))
                socks.append(s)
            time.sleep(1.5)
            grown = rss_kb(lb.pid) - base
            # measured: 54 MB before the input was held raw, about 8 MB after
            assert grown < 24 * 1024, f"RSS grew by {grown} kB"
        finally:
            for s in socks:
                s.close()


@pytest.mark.parametrize("length, sent, reset, term", [
    (1_000_000, 100_000, False, "CD"), (1_000_000, 100_000, True, "CD"),
    (1_000, 1_000, True, "CH")])
def test_client_abort_logged_CD_during_the_body_CH_after_it(
        length: int, sent: int, reset: bool, term: str) -> None:
    """The client goes before any answer. While it was still sending its body, that is
    the data phase: HAProxy 2.6.12 logs `CD--` for a close or a reset (lb used to log
    `CH--`). A reset once the request is whole leaves it waiting for the server's
    headers: `CH--`. (A plain close then is not an abort: the answer is awaited.)"""
    got_head = threading.Event()

    def silent(c: socket.socket, rb: RawBackend) -> None:
        rb.recv_head(c)
        got_head.set()
        time.sleep(3)

    rb = RawBackend(silent)
    with rb, LbProcess(BASE, ports={"s1": rb.port}) as lb:
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=10) as c:
            c.sendall(f"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: {length}\r\n\r\n"
                      .encode() + b"u" * sent)
            assert got_head.wait(5)
            time.sleep(0.2)
            if reset:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        line = lb.wait_for_line('"POST /up HTTP/1.1"')
        assert f" {term}-- " in line, line


def test_pipelined_requests_are_timed_from_their_turn() -> None:
    """Three requests in one write to a server that takes 0.3 s for each. HAProxy
    2.6.12 logs TR 0 and Ta about 300 ms for every one, each dated when its turn came;
    lb used to time them from the arrival of their bytes (TR 0, 300, 600 ms)."""
    def slow(c: socket.socket, rb: RawBackend) -> None:
        while rb.recv_head(c):
            time.sleep(0.3)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    rb = RawBackend(slow)
    with rb, LbProcess(BASE, ports={"s1": rb.port}) as lb:
        reqs = b"".join(f"GET /p{i} HTTP/1.1\r\nHost: a\r\n\r\n".encode() for i in range(3))
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=10) as c:
            c.sendall(reqs)
            got = b""
            while got.count(b"\r\nok") < 3:
                d = c.recv(65536)
                assert d, got
                got += d
        lines = [lb.wait_for_line(f'"GET /p{i} HTTP/1.1"') for i in range(3)]
    dates, timers = [], []
    for line in lines:
        m = re.search(r"\[([^\]]+)\] \S+ \S+ (-?\d+)/(-?\d+)/(-?\d+)/(-?\d+)/\+?(-?\d+) ", line)
        assert m, line
        dates.append(m.group(1))
        timers.append([int(x) for x in m.groups()[1:]])
    for line, (tr, _tw, _tc, _tr2, ta) in zip(lines, timers, strict=True):
        # 0 in HAProxy; a loaded machine may take a millisecond or two to start the
        # turn, far from the 300 and 600 the old timing gave
        assert 0 <= tr <= 20, line
        assert 250 <= ta < 550, line
    assert dates[0] < dates[1] < dates[2], dates


@pytest.mark.parametrize("requests", [1, 2])
def test_client_half_close_gets_its_answers_then_the_close(requests: int) -> None:
    """The client sends its request(s), then shuts its write side while the answer is
    pending. As HAProxy 2.6.12, lb answers what it got, then closes: the connection
    used to stay open until `timeout client` (20 s here; for ever without one),
    in CLOSE-WAIT once the client had gone."""
    def slow(c: socket.socket, rb: RawBackend) -> None:
        while rb.recv_head(c):
            time.sleep(0.2)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    rb = RawBackend(slow)
    cfg = BASE.replace("  timeout http-request 1s\n",
                       "  timeout http-request 1s\n  timeout http-keep-alive 15s\n")
    with rb, LbProcess(cfg, ports={"s1": rb.port}) as lb:
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=30) as c:
            c.sendall(b"".join(f"GET /h{i} HTTP/1.1\r\nHost: a\r\n\r\n".encode()
                               for i in range(requests)))
            c.shutdown(socket.SHUT_WR)
            t0 = time.monotonic()
            got = b""
            while True:
                d = c.recv(65536)
                if not d:
                    break
                got += d
            assert time.monotonic() - t0 < 5, "closed by the client timeout only"
        assert got.count(b"HTTP/1.1 200 OK") == requests, got
        assert got.endswith(b"\r\n\r\nok")


def test_connection_counts_logged_after_the_exchange_left_its_server() -> None:
    """HAProxy 2.6.12 logs one request alone as `1/1/0/0/0` (actconn, feconn, beconn,
    srv_conn, retries): the exchange has left its backend and server, its connection
    still counts. lb used to log `1/1/1/1/0`."""
    def ok(c: socket.socket, rb: RawBackend) -> None:
        rb.recv_head(c)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    rb = RawBackend(ok)
    with rb, LbProcess(BASE, ports={"s1": rb.port}) as lb:
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=10) as c:
            c.sendall(b"GET /one HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            while c.recv(65536):
                pass
        line = lb.wait_for_line('"GET /one HTTP/1.1"')
        assert " ---- 1/1/0/0/0 0/0 " in line, line
