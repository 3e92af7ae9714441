"""HAProxy features around lb's own replies and the backend's own rules.

Expected bytes and log lines were taken from HAProxy 2.6.12 with the same
configuration (tools: a raw socket client, `haproxy -db`):

- `http-after-response` rules also run on replies the proxy builds itself: deny
  pages, `return`, `redirect` (frontend and backend legacy `redirect`), error pages
  (503 and the like). Backend rules first, then frontend rules; the added headers come
  before `connection: close`.
- A backend's legacy `redirect` rules and its `tcp-request content` rules run once
  the request is switched to it (`tcp-request content reject`: silent close, logged
  `PR--` with status -1).
- `monitor-uri`: HAProxy's "200 OK / Service ready." page, not logged.
- `option http-buffer-request`: the body is waited for (up to one buffer) before a
  server is chosen, so a `retry-on` retry can replay it; a client sending
  `Expect: 100-continue` gets the 100 from the proxy.
"""

from __future__ import annotations

import socket
import time

import pytest

from tests.backends import HttpBackend
from tests.lbproc import LbProcess, RawBackend

pytestmark = pytest.mark.timeout(40)

CFG = """
global
    log stdout format raw local0 info
defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:@@fe@@
    monitor-uri /health
    http-request deny if { path /deny }
    http-request return status 200 content-type text/plain string hi if { path /ret }
    http-request redirect location /x if { path /redir }
    http-after-response set-header X-After fe
    http-after-response add-header X-Status %[status]
    use_backend bred if { path_beg /bred }
    use_backend btcp if { path_beg /btcp }
    use_backend bnone if { path /none }
    default_backend b
backend b
    http-after-response set-header X-Be b
    server s1 127.0.0.1:@@s1@@
backend bred
    redirect prefix /new code 301 if { path /bred/x }
    http-after-response set-header X-Be bred
    server s1 127.0.0.1:@@s1@@
backend btcp
    tcp-request content reject if { path /btcp/rej }
    server s1 127.0.0.1:@@s1@@
backend bnone
    http-request deny deny_status 429
"""


def fetch(port: int, path: str, extra: str = "") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n"
                  .encode())
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                return out
            out += d


def head_lines(resp: bytes) -> list[bytes]:
    return resp.partition(b"\r\n\r\n")[0].split(b"\r\n")


def test_after_response_on_local_replies_and_backend_rules() -> None:
    with HttpBackend("s1") as s1, LbProcess(CFG, ports={"s1": s1.port}) as lb:
        port = lb.ports["fe"]
        # checked against HAProxy 2.6.12, byte for byte
        assert fetch(port, "/deny") == (
            b"HTTP/1.1 403 Forbidden\r\ncontent-length: 93\r\ncache-control: no-cache\r\n"
            b"content-type: text/html\r\nx-after: fe\r\nx-status: 403\r\n"
            b"connection: close\r\n\r\n<html><body><h1>403 Forbidden</h1>\n"
            b"Request forbidden by administrative rules.\n</body></html>\n")
        assert head_lines(fetch(port, "/ret"))[1:] == [
            b"content-length: 2", b"content-type: text/plain", b"x-after: fe",
            b"x-status: 200", b"connection: close"]
        assert head_lines(fetch(port, "/redir")) == [
            b"HTTP/1.1 302 Found", b"content-length: 0", b"location: /x",
            b"cache-control: no-cache", b"x-after: fe", b"x-status: 302",
            b"connection: close"]
        # backend legacy redirect, backend after-response rules before the frontend's
        assert head_lines(fetch(port, "/bred/x")) == [
            b"HTTP/1.1 301 Moved Permanently", b"content-length: 0",
            b"location: /new/bred/x", b"x-be: bred", b"x-after: fe", b"x-status: 301",
            b"connection: close"]
        # %B: HAProxy 2.6.12 logs 212 for this page (192 + name and value sizes)
        line = lb.wait_for_line('"GET /deny HTTP/1.1"')
        assert " fe/<NOSRV> " in line and " 403 212 - - PR-- " in line, line
        r = fetch(port, "/none")
        assert r.startswith(b"HTTP/1.1 429 ") and b"\r\nx-after: fe\r\nx-status: 429\r\n" in r
        # proxied responses keep getting them too
        r = fetch(port, "/ok")
        assert r.startswith(b"HTTP/1.1 200") and b"x-be: b\r\n" in r and b"x-after: fe" in r
        # backend tcp-request content reject: closed without a reply
        assert fetch(port, "/btcp/rej") == b""
        assert fetch(port, "/btcp/ok").startswith(b"HTTP/1.1 200")
        line = lb.wait_for_line('"GET /btcp/rej HTTP/1.1"')
        assert " btcp/<NOSRV> " in line and " -1 0 - - PR-- " in line, line
        assert s1.requests and all(r.path != "/btcp/rej" for r in s1.requests)


def test_monitor_uri_answers_ready_and_is_not_logged() -> None:
    with HttpBackend("s1") as s1, LbProcess(CFG, ports={"s1": s1.port}) as lb:
        port = lb.ports["fe"]
        assert fetch(port, "/health") == (
            b"HTTP/1.1 200 OK\r\ncontent-length: 58\r\ncache-control: no-cache\r\n"
            b"content-type: text/html\r\nx-after: fe\r\nx-status: 200\r\n"
            b"connection: close\r\n\r\n<html><body><h1>200 OK</h1>\nService ready.\n"
            b"</body></html>\n")
        fetch(port, "/after-health")
        lb.wait_for_line("/after-health")
        assert not [x for x in lb.lines() if "/health HTTP" in x]
        assert not s1.requests or all(r.path != "/health" for r in s1.requests)


BUF = """
global
    log stdout format raw local0 info
defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:@@fe@@
    use_backend bbuf if { path_beg /buf }
    default_backend bplain
backend bbuf
    option http-buffer-request
    retry-on 503
    retries 2
    option redispatch 1
    balance first
    server busy 127.0.0.1:@@busy@@
    server ok 127.0.0.1:@@ok@@
backend bplain
    retry-on 503
    retries 2
    option redispatch 1
    balance first
    server busy 127.0.0.1:@@busy@@
    server ok 127.0.0.1:@@ok@@
"""


def _read_request(c: socket.socket) -> tuple[bytes, bytes]:
    c.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        d = c.recv(65536)
        if not d:
            return data, b""
        data += d
    head, _, body = data.partition(b"\r\n\r\n")
    n = 0
    for ln in head.split(b"\r\n")[1:]:
        k, _, v = ln.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    while len(body) < n:
        d = c.recv(65536)
        if not d:
            break
        body += d
    return head, body


def put_slowly(port: int, path: str, expect: bool = False) -> bytes:
    """A PUT whose body follows its head after a pause (the head alone is enough
    for a proxy that does not buffer to pick a server and send it on)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        hdr = "Expect: 100-continue\r\n" if expect else ""
        s.sendall(f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n{hdr}"
                  "Connection: close\r\n\r\n".encode())
        if expect:
            s.settimeout(2)
            assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        else:
            time.sleep(0.3)
        s.sendall(b"hello")
        s.settimeout(5)
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                return out
            out += d


def test_http_buffer_request_makes_a_slow_body_replayable() -> None:
    busy_seen: list[bytes] = []
    ok_seen: list[tuple[bytes, bytes]] = []

    def busy(c: socket.socket, rb: RawBackend) -> None:
        head, body = _read_request(c)
        busy_seen.append(body)
        c.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n"
                  b"Connection: close\r\n\r\nbusy")

    def ok(c: socket.socket, rb: RawBackend) -> None:
        head, body = _read_request(c)
        ok_seen.append((head, body))
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    with RawBackend(busy) as rbusy, RawBackend(ok) as rok, \
            LbProcess(BUF, ports={"busy": rbusy.port, "ok": rok.port}) as lb:
        port = lb.ports["fe"]
        # without the option the request leaves before its body: not replayable
        r = put_slowly(port, "/plain")
        assert r.startswith(b"HTTP/1.1 503") and r.endswith(b"busy")
        assert ok_seen == []
        # with it the body is in hand first: the 503 is retried on the next server
        r = put_slowly(port, "/buf")
        assert r.startswith(b"HTTP/1.1 200") and r.endswith(b"ok")
        assert ok_seen[-1][1] == b"hello"
        assert busy_seen[-1] == b"hello"
        # Expect: 100-continue is answered by the proxy, not forwarded
        r = put_slowly(port, "/buf2", expect=True)
        assert r.startswith(b"HTTP/1.1 200")
        head, body = ok_seen[-1]
        assert body == b"hello" and b"expect" not in head.lower()
        lb.wait_for_line('"PUT /buf2 HTTP/1.1"')


UID = """
global
    log stdout format raw local0 info
defaults
    mode http
    log global
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:@@fe@@
    unique-id-format %ci:%cp_%fi:%fp_%Ts_%rt:%pid
    unique-id-header X-Unique-ID
    log-format "uid=%ID path=%HU"
    default_backend b
backend b
    server s1 127.0.0.1:@@s1@@
"""


def test_unique_id_is_sent_to_the_server_and_logged() -> None:
    with HttpBackend("s1") as s1, LbProcess(UID, ports={"s1": s1.port}) as lb:
        port = lb.ports["fe"]
        assert fetch(port, "/one").startswith(b"HTTP/1.1 200")
        assert fetch(port, "/two").startswith(b"HTTP/1.1 200")
        sent = [r.header("x-unique-id") for r in s1.requests]
        assert len(sent) == 2 and all(sent) and sent[0] != sent[1]
        ip, rest = sent[0].split(":", 1)
        assert ip == "127.0.0.1" and rest.endswith(f":{lb.pid}")
        assert f"_127.0.0.1:{port}_" in sent[0]
        assert lb.wait_for_line("path=/one").strip() == f"uid={sent[0]} path=/one"
        assert lb.wait_for_line("path=/two").strip() == f"uid={sent[1]} path=/two"


def test_http_buffer_request_times_a_slow_body_with_http_request() -> None:
    """Spec §9: with `option http-buffer-request`, `timeout http-request` covers the
    body too: a body that does not come gets 408 (`cR--`) at that timeout, not at
    `timeout client`."""
    cfg = BUF.replace("    timeout client 5s\n",
                      "    timeout client 20s\n    timeout http-request 500ms\n")

    def never(c: socket.socket, rb: RawBackend) -> None:
        _read_request(c)

    with RawBackend(never) as rb, \
            LbProcess(cfg, ports={"busy": rb.port, "ok": rb.port}) as lb:
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=10) as s:
            t0 = time.monotonic()
            s.sendall(b"PUT /buf HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab")
            out = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                out += d
            assert out.startswith(b"HTTP/1.1 408")
            assert time.monotonic() - t0 < 10
        line = lb.wait_for_line('"PUT /buf HTTP/1.1"')
        assert " 408 " in line and " cR-- " in line, line
