"""A reused idle server connection that the server closes under a request.

With `http-reuse safe` a client's second request may take an idle server connection.
If the server closes that connection as the request arrives (the classic keep-alive
race), lb sends an idempotent request again on a fresh connection (RFC 9110 §9.2.2);
any other method is never sent twice: the server saw it once, and the client's
connection closes without an answer, for the user agent to decide (as HAProxy does).
"""

from __future__ import annotations

import socket
import time

from tests.lbproc import LbProcess, RawBackend

CFG = """
defaults
  mode http
  timeout client 5s
  timeout server 5s
  timeout connect 2s
frontend f
  bind 127.0.0.1:@@fe@@
  default_backend b
backend b
  server s1 127.0.0.1:@@s1@@
"""

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


def close_on_second_request(c: socket.socket, be: RawBackend) -> None:
    """Answer the first request of a connection, then close on the next one."""
    be.recv_head(c)
    c.sendall(OK)
    be.recv_head(c)
    c.close()


def _read_response(s: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":", 1)[1])
            while len(body) < n and (chunk := s.recv(65536)):
                body += chunk
    return head + b"\r\n\r\n" + body


def _two_requests(port: int, second: bytes) -> tuple[bytes, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
        first = _read_response(s)
        s.sendall(second)
        return first, _read_response(s)


def test_idempotent_request_is_sent_again_on_a_fresh_connection() -> None:
    with RawBackend(close_on_second_request) as be, \
            LbProcess(CFG, ports={"s1": be.port}) as lb:
        first, second = _two_requests(lb.ports["fe"],
                                      b"GET /two HTTP/1.1\r\nHost: x\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200") and first.endswith(b"ok")
    assert second.startswith(b"HTTP/1.1 200") and second.endswith(b"ok")
    lines = [h.split(b"\r\n", 1)[0] for h in be.received]
    # /two reached the closing connection, then a fresh one that answered it
    assert lines.count(b"GET /two HTTP/1.1") == 2
    assert be.accepted == 2


def test_non_idempotent_request_is_never_sent_twice() -> None:
    """The client's connection closes without an answer and without a log line, as
    HAProxy 2.6.12 does (checked with the same race): a kept-alive connection closed
    before any response byte is what a user agent may retry on. lb used to answer
    502, which no user agent retries."""
    cfg = CFG.replace("defaults\n", "global\n  log stdout format raw local0\n"
                      "defaults\n  log global\n  option httplog\n", 1)
    with RawBackend(close_on_second_request) as be, \
            LbProcess(cfg, ports={"s1": be.port}) as lb:
        _, second = _two_requests(
            lb.ports["fe"], b"POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        lb.wait_for_line('"GET /one HTTP/1.1"')
        time.sleep(0.3)
        logged = [ln for ln in lb.lines() if "POST /two" in ln]
    assert second == b""
    assert logged == []
    lines = [h.split(b"\r\n", 1)[0] for h in be.received]
    assert lines.count(b"POST /two HTTP/1.1") == 1
