"""TLS from lb to servers (`server ... ssl`), against real TLS servers on 127.0.0.1.

- Traffic: the request reaches the server decrypted and the answer comes back; a
  certificate the CA file does not vouch for, or whose name is not `verifyhost`'s,
  fails the connect (503, `SC`, counted as a connect error); the `sni` expression
  is evaluated per request; the `crt` client certificate is presented; a PROXY
  header goes in clear before the handshake; connections are pooled and sessions
  resumed (not with `no-ssl-reuse`); a WebSocket goes through a TLS server.
- Health checks: `check-ssl` with the server's CA file, `verifyhost`, `check-sni`,
  side by side with HAProxy 2.6.12 (`show stat` check status and text).
- Configuration: every message of a TLS server line or of the global
  `ssl-server-verify` / `ssl-default-server-*` / `ca-base` / `crt-base` statements,
  compared with `haproxy -c`.

Certificates (a CA, a server and a client certificate it signs, and a second CA)
are made once for the module with the `openssl` command-line tool.
"""

from __future__ import annotations

import asyncio
import csv
import http.client
import io
import socket
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from lb.config.model import Global, Server
from lb.tls import backend
from tests.lbproc import LbProcess, free_port
from tests.stats_support import query, wait_socket
from tests.support_e2e import SideBySide, UdpLog, fetch
from tests.test_config_haproxy_diff import HEAD, assert_text_like_haproxy

# --------------------------------------------------------------------------- PKI


def _openssl(cwd: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(d: Path, name: str) -> None:
    _openssl(d, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
             "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}")


def _signed(d: Path, name: str, cn: str, ext: str = "") -> None:
    _openssl(d, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
             f"{name}.csr", "-subj", f"/CN={cn}")
    extra = []
    if ext:
        (d / f"{name}.ext").write_text(ext + "\n")
        extra = ["-extfile", f"{name}.ext"]
    _openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", *extra)
    (d / f"{name}.pem").write_bytes((d / f"{name}.crt").read_bytes()
                                    + (d / f"{name}.key").read_bytes())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """ca (the CA), wrong (another CA), srv (localhost and 127.0.0.1, by ca), cli (a
    client certificate, by ca): PEM files with their keys; key (a key alone),
    mismatch (cli's certificate with srv's key), dir (a directory)."""
    d = tmp_path_factory.mktemp("pki")
    _ca(d, "ca")
    _ca(d, "wrong")
    _signed(d, "srv", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    _signed(d, "cli", "client")
    (d / "mismatch.pem").write_bytes((d / "cli.crt").read_bytes() + (d / "srv.key").read_bytes())
    (d / "dir").mkdir()
    return {"ca": str(d / "ca.pem"), "wrong": str(d / "wrong.pem"), "srv": str(d / "srv.pem"),
            "cli": str(d / "cli.pem"), "cli_crt": str(d / "cli.crt"), "key": str(d / "ca.key"),
            "mismatch": str(d / "mismatch.pem"), "dir": str(d / "dir") + "/",
            "base": str(d)}


# --------------------------------------------------------------------------- servers


class TlsServer:
    """An HTTP/1.1 server behind TLS (a thread per connection, keep-alive): answers
    200 naming itself in ``x-server``; keeps the request heads, the SNI of each
    handshake, the client certificate's CN, whether the session was resumed, and
    with ``proxy_header`` the PROXY line read in clear before the handshake."""

    def __init__(self, name: str, pki: dict[str, str], *, client_ca: str | None = None,
                 proxy_header: bool = False, path: str | None = None) -> None:
        self.name = name
        self.proxy_header = proxy_header
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki["srv"])
        self.ctx.sni_callback = self._sni
        if client_ca is not None:
            self.ctx.verify_mode = ssl.CERT_REQUIRED
            self.ctx.load_verify_locations(client_ca)
        self.names: list[str | None] = []
        self.heads: list[bytes] = []
        self.peers: list[str | None] = []
        self.resumed: list[bool] = []
        self.proxy_lines: list[bytes] = []
        # (``path``: on that unix socket, not on a port of 127.0.0.1)
        self.sock = socket.socket(socket.AF_UNIX if path else socket.AF_INET)
        self.sock.bind(path or ("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = 0 if path else self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _sni(self, obj: Any, name: str | None, ctx: Any) -> None:
        self.names.append(name)

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c: socket.socket) -> None:
        with c:
            c.settimeout(10)
            try:
                if self.proxy_header:
                    self.proxy_lines.append(_read_line(c))
                t = self.ctx.wrap_socket(c, server_side=True)
            except (OSError, ssl.SSLError):
                return
            self.resumed.append(t.session_reused)
            cert = t.getpeercert()
            self.peers.append(dict(x[0] for x in cert["subject"])["commonName"] if cert
                              else None)
            try:
                self._answer(t)
            except (OSError, ssl.SSLError):
                pass

    def _answer(self, t: ssl.SSLSocket) -> None:
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                data = t.recv(65536)
                if not data:
                    return
                buf += data
            head, _, buf = buf.partition(b"\r\n\r\n")
            self.heads.append(head)
            body = f"{self.name} saw {head.split(b' ')[1].decode()}".encode()
            t.sendall(b"HTTP/1.1 200 OK\r\nx-server: %s\r\ncontent-length: %d\r\n\r\n%s"
                      % (self.name.encode(), len(body), body))

    def close(self) -> None:
        self.sock.close()


def _read_line(c: socket.socket) -> bytes:
    line = b""
    while not line.endswith(b"\r\n") and len(line) < 108:
        ch = c.recv(1)
        if not ch:
            break
        line += ch
    return line


class TlsWsServer:
    """A WebSocket echo server (the `websockets` library) behind TLS."""

    def __init__(self, pki: dict[str, str]) -> None:
        from websockets.asyncio.server import serve

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki["srv"])
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def echo(ws: Any) -> None:
            async for msg in ws:
                await ws.send(msg)

        async def start() -> Any:
            return await serve(echo, "127.0.0.1", 0, ssl=ctx, compression=None)

        self.server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        self.port = self.server.sockets[0].getsockname()[1]

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def servers(pki: dict[str, str]) -> Any:
    made: list[Any] = []

    def make(name: str, **kw: Any) -> TlsServer:
        s = TlsServer(name, pki, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def _config(backend_lines: str, extra: str = "") -> str:
    return (HEAD + extra + "frontend f\n bind 127.0.0.1:@@fe@@\n default_backend b\n"
            "backend b\n " + backend_lines.strip().replace("\n", "\n ") + "\n")


def _keepalive(port: int, requests: list[tuple[str, dict[str, str]]]) -> list[tuple[int, bytes]]:
    """Requests one after another on one client connection."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    out = []
    try:
        for path, headers in requests:
            c.request("GET", path, headers=headers)
            r = c.getresponse()
            out.append((r.status, r.read()))
    finally:
        c.close()
    return out


# --------------------------------------------------------------------------- traffic


def test_requests_reach_tls_servers_decrypted(pki, servers, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s1, s2 = servers("s1"), servers("s2")
    sock = str(tmp_path / "lb.sock")
    cfg = _config(f"""
server s1 127.0.0.1:@@s1@@ ssl ca-file {pki['ca']} verifyhost localhost
server s2 127.0.0.1:@@s2@@ ssl verify none
""", extra=f"global\n stats socket {sock} level admin\n")
    with LbProcess(cfg, ports={"s1": s1.port, "s2": s2.port}) as lb:
        answers = [(f"/hello/{i}", fetch(lb.ports["fe"], f"/hello/{i}")) for i in range(4)]
        wait_socket(sock)
        state = query(sock, "show servers state")
    assert [r.status for _, r in answers] == [200] * 4
    assert {r.server for _, r in answers} == {"s1", "s2"}
    assert all(r.body == f"{r.server} saw {path}".encode() for path, r in answers)
    assert all(h.startswith(b"GET /hello/") and b"\r\nhost: 127.0.0.1:" in h.lower()
               for h in s1.heads + s2.heads)
    header = state.splitlines()[1].lstrip("# ").split()
    rows = [dict(zip(header, line.split(), strict=False)) for line in state.splitlines()[2:]
            if line.strip()]
    assert [r["srv_use_ssl"] for r in rows] == ["1", "1"]


def test_failed_verification_is_a_connect_failure(pki, servers, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = servers("s")
    log = UdpLog()
    sock = str(tmp_path / "lb.sock")
    cfg = (HEAD + f"global\n stats socket {sock} level admin\n log 127.0.0.1:{log.port} "
           "local0\nfrontend f\n bind 127.0.0.1:@@fe@@\n log global\n option httplog\n"
           " use_backend host if { path_beg /host }\n default_backend ca\n"
           f"backend ca\n retries 0\n server bad 127.0.0.1:@@s@@ ssl ca-file {pki['wrong']}\n"
           f"backend host\n retries 0\n server bad 127.0.0.1:@@s@@ ssl ca-file {pki['ca']} "
           "verifyhost other.example\n")
    with LbProcess(cfg, ports={"s": s.port}) as lb:
        statuses = [fetch(lb.ports["fe"], p).status for p in ("/ca", "/host")]
        fields = log.fields(2)
        wait_socket(sock)
        stat = query(sock, "show stat")
    assert statuses == [503, 503]
    assert [tsc for tsc, _ in fields] == ["SC--", "SC--"]
    econ = {(d["pxname"], d["svname"]): d["econ"]
            for d in csv.DictReader(io.StringIO(stat.lstrip("# ")))}
    assert econ[("ca", "bad")] == econ[("host", "bad")] == "1"
    assert s.heads == []  # nothing was sent over a connection that failed its checks


def test_sni_is_evaluated_per_request(pki, servers) -> None:  # type: ignore[no-untyped-def]
    s = servers("s")
    cfg = _config("server s 127.0.0.1:@@s@@ ssl verify none sni req.hdr(x-sni)")
    with LbProcess(cfg, ports={"s": s.port}) as lb:
        got = _keepalive(lb.ports["fe"], [("/a", {"x-sni": "a.example"}),
                                          ("/b", {"x-sni": "b.example"}), ("/c", {})])
    assert [st for st, _ in got] == [200, 200, 200]
    # a connection per request: one made for a name serves no other name
    assert s.names == ["a.example", "b.example", None]


def test_pooled_connections_and_resumed_sessions(pki, servers) -> None:  # type: ignore[no-untyped-def]
    reuse, noreuse = servers("reuse"), servers("noreuse")
    cfg = (HEAD + "frontend f\n bind 127.0.0.1:@@fe@@\n use_backend nr if { path_beg /nr }\n"
           f" default_backend r\nbackend r\n server s 127.0.0.1:@@r@@ ssl ca-file {pki['ca']} "
           f"sni str(localhost)\nbackend nr\n server s 127.0.0.1:@@nr@@ ssl ca-file "
           f"{pki['ca']} sni str(localhost) no-ssl-reuse\n")
    with LbProcess(cfg, ports={"r": reuse.port, "nr": noreuse.port}) as lb:
        fe = lb.ports["fe"]
        pooled = _keepalive(fe, [("/1", {}), ("/2", {})])
        for path in ("/3", "/nr/1", "/nr/2"):  # new client connections
            assert fetch(fe, path).status == 200
    assert [st for st, _ in pooled] == [200, 200]
    assert len(reuse.heads) == 3 and len(reuse.resumed) == 2  # /1 and /2 on one connection
    assert reuse.resumed == [False, True] and reuse.names == ["localhost", "localhost"]
    assert noreuse.resumed == [False, False]


def test_client_certificate_is_presented(pki, servers) -> None:  # type: ignore[no-untyped-def]
    s = servers("s", client_ca=pki["ca"])
    cfg = (HEAD + "frontend f\n bind 127.0.0.1:@@fe@@\n use_backend none if { path /none }\n"
           f" default_backend crt\nbackend crt\n server s 127.0.0.1:@@s@@ ssl verify none "
           f"crt {pki['cli']}\nbackend none\n retries 0\n server s 127.0.0.1:@@s@@ ssl "
           "verify none\n")
    with LbProcess(cfg, ports={"s": s.port}) as lb:
        good = fetch(lb.ports["fe"], "/crt")
        bad = fetch(lb.ports["fe"], "/none")
    assert (good.status, good.body) == (200, b"s saw /crt")
    assert s.peers == ["client"]
    assert bad.status in (502, 503)  # (TLS 1.3: refused after lb's side of the handshake)


def test_proxy_header_goes_in_clear_before_the_handshake(pki, servers) -> None:  # type: ignore[no-untyped-def]
    s = servers("s", proxy_header=True)
    cfg = _config("server s 127.0.0.1:@@s@@ ssl verify none send-proxy")
    with LbProcess(cfg, ports={"s": s.port}) as lb:
        r = fetch(lb.ports["fe"], "/pp")
    assert (r.status, r.body) == (200, b"s saw /pp")
    assert len(s.proxy_lines) == 1 and s.proxy_lines[0].startswith(b"PROXY TCP4 127.0.0.1 ")
    assert s.heads[0].startswith(b"GET /pp ")  # (not a second header inside TLS)


def test_websocket_through_a_tls_server(pki) -> None:  # type: ignore[no-untyped-def]
    from websockets.sync.client import connect

    ws = TlsWsServer(pki)
    try:
        cfg = _config("timeout tunnel 10s\nserver w 127.0.0.1:@@w@@ ssl ca-file "
                      f"{pki['ca']} sni str(localhost)")
        with LbProcess(cfg, ports={"w": ws.port}) as lb:
            with connect(f"ws://127.0.0.1:{lb.ports['fe']}/chat", open_timeout=10) as c:
                answers = []
                for text in ("hello", "x" * 70000):
                    c.send(text)
                    answers.append(c.recv(timeout=10))
    finally:
        ws.close()
    assert answers == ["hello", "x" * 70000]


def test_a_tcp_session_through_a_tls_server(pki, servers) -> None:  # type: ignore[no-untyped-def]
    s = servers("s")
    cfg = _config(f"mode tcp\nserver s 127.0.0.1:@@s@@ ssl ca-file {pki['ca']} "
                  "sni str(localhost)").replace("frontend f\n", "frontend f\n mode tcp\n")
    with LbProcess(cfg, ports={"s": s.port}) as lb:
        got = _keepalive(lb.ports["fe"], [("/t1", {}), ("/t2", {})])
    assert got == [(200, b"s saw /t1"), (200, b"s saw /t2")]
    assert s.names == ["localhost"]  # one session, one server connection


def test_a_tcp_session_sends_the_proxy_header_once_in_clear(pki, servers) -> None:  # type: ignore[no-untyped-def]
    s = servers("s", proxy_header=True)
    cfg = _config("mode tcp\nserver s 127.0.0.1:@@s@@ ssl verify none send-proxy").replace(
        "frontend f\n", "frontend f\n mode tcp\n")
    with LbProcess(cfg, ports={"s": s.port}) as lb:
        got = _keepalive(lb.ports["fe"], [("/tp", {})])
    assert got == [(200, b"s saw /tp")]
    assert len(s.proxy_lines) == 1 and s.proxy_lines[0].startswith(b"PROXY TCP4 127.0.0.1 ")
    assert s.heads[0].startswith(b"GET /tp ")  # (no second header inside TLS)


def test_a_retry_after_a_failed_handshake_goes_elsewhere(pki, servers) -> None:  # type: ignore[no-untyped-def]
    good = servers("good")
    cfg = _config(f"""
balance first
retries 1
option redispatch 1
server bad 127.0.0.1:@@good@@ ssl ca-file {pki['wrong']}
server good 127.0.0.1:@@good@@ ssl ca-file {pki['ca']}
""")
    with LbProcess(cfg, ports={"good": good.port}) as lb:
        r = fetch(lb.ports["fe"], "/r")
    assert (r.status, r.server) == (200, "good")


# --------------------------------------------------------------------------- checks

CHECKS = """
global
  stats socket {sock} level admin
defaults
  mode http
  timeout client 5s
  timeout server 5s
  timeout connect 1s
  timeout check 1s
  default-server inter 200ms
frontend f
  bind 127.0.0.1:{fe}
  default_backend b
backend b
  option httpchk GET /
  server good 127.0.0.1:{port} check ssl ca-file {ca}
  server bad 127.0.0.1:{port} check ssl ca-file {wrong}
  server host 127.0.0.1:{port} check ssl ca-file {ca} verifyhost nothere
  server hostok 127.0.0.1:{port} check check-ssl ca-file {ca} verifyhost localhost
  server sni 127.0.0.1:{port} check check-ssl ca-file {ca} check-sni nothere
  server none 127.0.0.1:{port} check ssl verify none
backend t
  server good 127.0.0.1:{port} check ssl ca-file {ca}
  server bad 127.0.0.1:{port} check ssl ca-file {wrong}
"""


def _checks(sock: str) -> dict[str, tuple[str, ...]] | None:
    out = {}
    for d in csv.DictReader(io.StringIO(query(sock, "show stat").lstrip("# "))):
        if d["svname"] in ("FRONTEND", "BACKEND"):
            continue
        if d["check_status"].startswith("* ") or not d["check_status"]:
            return None
        out[f"{d['pxname']}/{d['svname']}"] = (d["status"], d["check_status"],
                                               d["check_code"], d["last_chk"])
    return out


def test_tls_checks_like_haproxy(pki, servers, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = servers("s")
    pair = SideBySide(str(tmp_path), lambda kind, sock, log: CHECKS.format(
        sock=sock, fe=free_port(), port=s.port, ca=pki["ca"], wrong=pki["wrong"]))
    try:
        rows = pair.settle(_checks, looks=2, timeout=15)
    finally:
        pair.close()
    assert rows["b/good"] == ("UP", "L7OK", "200", "")
    assert rows["b/bad"] == ("DOWN", "L6RSP", "", "SSL handshake failure")
    assert rows["b/host"] == ("DOWN", "L6RSP", "", "Server presented an SSL certificate "
                              "different from the configured one")
    assert rows["b/hostok"][:2] == ("UP", "L7OK")
    assert rows["b/sni"] == ("DOWN", "L6RSP", "", "Server presented an SSL certificate "
                             "different from the expected one")
    assert rows["b/none"][:2] == ("UP", "L7OK")
    assert (rows["t/good"][:2], rows["t/bad"][:2]) == (("UP", "L6OK"), ("DOWN", "L6RSP"))


# --------------------------------------------------------------------------- config

# server lines (in a backend) and what HAProxy 2.6.12 says of them; {ca} and the
# others are the module's files
SERVER_LINES = [
    "server s 127.0.0.1:80 ssl", "server s 127.0.0.1:80 check-ssl",
    "server s 127.0.0.1:80 check-ssl check", "default-server ssl\nserver s 127.0.0.1:80",
    "server-template s 3 127.0.0.1:80 ssl",
    "option httpchk\nhttp-check connect ssl\nserver s 127.0.0.1:80",
    "tcp-check connect ssl\nserver s 127.0.0.1:80",
    "server s 127.0.0.1:80 ssl verify none", "server s 127.0.0.1:80 ssl verify required",
    "default-server verify none\nserver s 127.0.0.1:80 ssl",
    "server s 127.0.0.1:80 no-ssl verify required", "server s 127.0.0.1:80 ssl no-ssl",
    "disabled\nserver s 127.0.0.1:80 ssl",
    "server s 127.0.0.1:80 ssl ca-file {ca}", "server s 127.0.0.1:80 ssl ca-file @system-ca",
    "server s 127.0.0.1:80 ssl ca-file /nonexistent",
    "server s 127.0.0.1:80 ssl ca-file {key}", "server s 127.0.0.1:80 ssl crl-file /nonexistent",
    "server s 127.0.0.1:80 ssl ca-file {ca} crl-file {ca}",
    "default-server ca-file /nonexistent\nserver s 127.0.0.1:80 ssl",
    "server s 127.0.0.1:80 ssl ca-file /nonexistent weight 300",
    "server s 127.0.0.1:80 ssl crt /nonexistent verify none",
    "server s 127.0.0.1:80 ssl crt {key} verify none",
    "server s 127.0.0.1:80 ssl crt {cli_crt} verify none",
    "server s 127.0.0.1:80 ssl crt {mismatch} verify none",
    "server s 127.0.0.1:80 ssl crt {cli} verify none",
    "server s 127.0.0.1:80 ssl crt {dir} verify none",
    "server s 127.0.0.1:80 ssl crt /nonexistent\nserver t 127.0.0.1:80 ssl crt {dir}",
    "server s 127.0.0.1:80 ssl crt /nonexistent",
    "server s 127.0.0.1:80 ssl verify none ciphers BOGUS",
    "server s 127.0.0.1:80 ssl verify none ciphersuites BOGUS",
    "server s 127.0.0.1:80 ssl verify none ciphers HIGH ciphersuites TLS_AES_128_GCM_SHA256",
    "server s 127.0.0.1:80 ssl ciphers BOGUS ciphersuites BOGUS crt /nonexistent",
    "server s 127.0.0.1:80 ssl verify none ssl-min-ver TLSv1.3 ssl-max-ver TLSv1.0",
    "server s 127.0.0.1:80 ssl verify none force-tlsv12 ssl-min-ver TLSv1.3",
    "server s 127.0.0.1:80 ssl verify none no-tlsv11",
    "server s 127.0.0.1:80 ssl verify none no-tlsv12 no-tlsv13",
    "server s 127.0.0.1:80 ssl verify none no-sslv3 force-tlsv12 force-tlsv13",
    "server s 127.0.0.1:80 ssl verify none no-tlsv10 no-tlsv11 no-tlsv12 no-tlsv13",
    "server s 127.0.0.1:80 ssl no-tlsv10 no-tlsv11 no-tlsv12 no-tlsv13 ciphers BOGUS",
    "server s 127.0.0.1:80 ssl verify none ssl-min-ver TLSv1.9",
    "server s 127.0.0.1:80 ssl verify bogus", "server s 127.0.0.1:80 ssl sni bogus(1)",
    "server s 127.0.0.1:80 ssl verify none sni res.hdr(host)",
    "server s 127.0.0.1:80 ssl verify none sni res.hdr(host),lower",
    "server s 127.0.0.1:80 ssl verify none sni req.hdr(host),bogus",
    "server s 127.0.0.1:80 ssl verify none sni str(a",
    "server s 127.0.0.1:80 ssl verify none sni status",
    "server s 127.0.0.1:80 ssl verify none sni srv_name",
    "server s 127.0.0.1:80 ssl verify none sni req.hdr(host),lower",
    "server s 127.0.0.1:80 ssl sni bogus(1) verify bogus",
    "server s 127.0.0.1:80 ssl sni bogus(1) check track x",
    "server s 127.0.0.1:80 ssl sni bogus(1) agent-check",
    "default-server sni bogus(1) verify bogus\nserver s 127.0.0.1:80 ssl",
    "default-server sni bogus(1)",
    "server s 127.0.0.1:80 ssl ca-file {ca} verifyhost localhost sni str(x) check-sni x "
    "alpn http/1.1 check-alpn http/1.0 no-ssl-reuse no-tls-tickets npn x ssl-reuse "
    "tls-tickets",
    *(f"server s 127.0.0.1:80 ssl verify none {kw}" for kw in (
        "verify", "sni", "ciphers", "ciphersuites", "alpn", "check-alpn", "npn", "ca-file",
        "crl-file", "crt", "check-sni", "verifyhost", "ssl-min-ver", "ssl-max-ver")),
    "default-server crt", "default-server ssl-min-ver TLSv1.9",
]

GLOBAL_LINES = [
    ("ssl-server-verify none", "server s 127.0.0.1:80 ssl"),
    ("ssl-server-verify none", "server s 127.0.0.1:80 ssl verify required"),
    ("ssl-server-verify required", "server s 127.0.0.1:80 ssl verify required"),
    ("ssl-server-verify bogus", ""), ("ssl-server-verify", ""),
    ("ssl-server-verify none extra", ""),
    ("ssl-default-server-options", ""), ("ssl-default-server-options bogus", ""),
    ("ssl-default-server-options no-tlsv11 allow-0rtt", ""),
    ("ssl-default-server-options ssl-max-ver", ""),
    ("ssl-default-server-options ssl-min-ver TLSv1.9", ""),
    ("ssl-default-server-options no-tlsv11", "server s 127.0.0.1:80 ssl verify none no-tlsv12"),
    ("ssl-default-server-options no-tlsv12", "server s 127.0.0.1:80 ssl verify none"),
    ("ssl-default-server-options ssl-min-ver TLSv1.2 no-tls-tickets",
     "server s 127.0.0.1:80 ssl verify none no-tlsv12"),
    ("ssl-default-server-options force-tlsv11",
     "server s 127.0.0.1:80 ssl verify none ssl-min-ver TLSv1.2"),
    ("ssl-default-server-options ssl-min-ver TLSv1.3\n ssl-default-server-options "
     "ssl-max-ver TLSv1.2", "server s 127.0.0.1:80 ssl verify none"),
    ("ssl-default-server-ciphers", ""), ("ssl-default-server-ciphersuites", ""),
    ("ssl-default-server-ciphers A B", ""),
    ("ssl-default-server-ciphers BOGUS\n ssl-default-server-ciphersuites BOGUS",
     "server s 127.0.0.1:80 ssl verify none"),
    ("ssl-default-server-ciphers BOGUS", "server s 127.0.0.1:80"),
    ("ca-base /tmp\n ca-base /tmp", ""), ("crt-base", ""), ("crt-base /a /b", ""),
    ("ca-base {base}\n crt-base {base}",
     "server s 127.0.0.1:80 ssl ca-file ca.pem crt cli.pem crl-file ca.pem"),
    ("ca-base {base}\n crt-base {base}",
     "server s 127.0.0.1:80 ssl ca-file nothere.pem"),
    ("crt-base {base}", "server s 127.0.0.1:80 ssl crt nothere.pem verify none"),
]


@pytest.mark.parametrize("lines", SERVER_LINES)
def test_server_lines_like_haproxy(pki, tmp_path, capsys, lines: str) -> None:  # type: ignore[no-untyped-def]
    body = lines.format(**pki).replace("\n", "\n ")
    assert_text_like_haproxy(tmp_path, capsys, HEAD + "backend l\n " + body + "\n")


@pytest.mark.parametrize(("glob", "server"), GLOBAL_LINES)
def test_global_tls_lines_like_haproxy(pki, tmp_path, capsys, glob: str, server: str) -> None:  # type: ignore[no-untyped-def]
    text = ("global\n " + glob.format(**pki) + "\n" + HEAD + "backend l\n "
            + (server or "server s 127.0.0.1:80") + "\n")
    assert_text_like_haproxy(tmp_path, capsys, text)


def test_h2_is_never_offered(pki) -> None:  # type: ignore[no-untyped-def]
    from lb.config import load_text

    res = load_text(HEAD + "backend l\n server s 127.0.0.1:80 ssl verify none alpn h2,http/1.1"
                    "\n")
    assert [d.code for d in res.diagnostics] == ["alpn-h2"]
    assert backend.offered_alpn("h2,http/1.1") == ["http/1.1"]
    assert backend.offered_alpn("h2") == []


# --------------------------------------------------------------------------- units


@pytest.mark.parametrize(("pattern", "host", "ok"), [
    ("localhost", "LOCALHOST", True), ("*.example.com", "a.example.com", True),
    ("*.example.com", "example.com", False), ("*.example.com", "a.b.example.com", False),
    ("f*o.example.com", "foo.example.com", True), ("f*o.example.com", "fo.example.com", True),
    ("f*o.example.com", "bar.example.com", False), ("**.example.com", "a.example.com", False),
    ("a.*.com", "a.b.com", False), ("*", "x", False),
])
def test_host_names_match_as_in_haproxy(pattern: str, host: str, ok: bool) -> None:
    assert backend.host_matches(pattern, host) is ok


def test_the_version_range() -> None:
    def span(**kw: Any) -> Any:
        glob = Global(**{k: v for k, v in kw.items() if k.startswith("ssl_server")})
        srv = Server(name="s", host="h", port=1, puid=1,
                     **{k: v for k, v in kw.items() if not k.startswith("ssl_server")})
        got, msgs = backend.version_range(srv, glob, "backend 'b'")
        return got, [m.level for m in msgs]

    assert span() == (("TLSv1.0", "TLSv1.3"), [])
    assert span(ssl_min_ver="TLSv1.2") == (("TLSv1.2", "TLSv1.3"), [])
    assert span(ssl_no=("TLSv1.1",)) == (("TLSv1.0", "TLSv1.3"), ["warning"])
    assert span(ssl_server_min_ver="TLSv1.3", ssl_max_ver="TLSv1.2") == (None, ["alert"])
    assert span(ssl_server_no=("TLSv1.0",), ssl_no=("TLSv1.1",)) == (("TLSv1.2", "TLSv1.3"),
                                                                     [])


def test_a_tls_server_is_never_dialed_early(pki) -> None:  # type: ignore[no-untyped-def]
    """No byte leaves before the handshake: a TLS server is not dialed by lb itself
    (lb.proxy.server.dial_now sends on the bare socket), even with socket options."""
    from lb.config import load_text
    from lb.proxy import server as srvmod
    from lb.proxy.compiled import BackendRT
    from lb.state import State

    res = load_text(HEAD + "backend b\n option tcp-smart-connect\n option srvtcpka\n"
                    " server s 127.0.0.1:80 ssl verify none\n server p 127.0.0.1:80\n")
    assert res.config is not None
    state = State(res.config)

    async def go() -> tuple[Any, Any]:
        bst = state.backends["b"]
        be = BackendRT(bst.model, bst, asyncio.get_running_loop())
        be.dial = True
        return be, bst

    be, bst = asyncio.run(go())
    assert srvmod.dial_now(be, bst.by_name["s"], "127.0.0.1", 80, None) is None
    assert be.tls is not None and set(be.tls) == {bst.by_name["s"]}


def test_an_unusable_check_context_fails_closed(pki) -> None:  # type: ignore[no-untyped-def]
    """A server whose context cannot be made (a file gone since the check) connects
    with none that trusts anything: its traffic and checks fail, never in clear."""
    srv = Server(name="s", host="h", port=1, puid=1, ssl=True, ca_file="/nonexistent/ca")
    prepared = backend.prepare(srv, Global(), "backend 'b'")
    assert prepared.context is None and prepared.messages[0].level == "alert"


# --------------------------------------------------------------------------- set server ssl

SET_SSL = HEAD + """global
 stats socket {sock} level admin
frontend f
 bind 127.0.0.1:@@fe@@
 default_backend b
backend b
 retries 0
 default-server ssl verify none
 use-server s_on if {{ path_beg /on }}
 use-server s_off if {{ path_beg /off }}
 server s_on 127.0.0.1:@@plain@@
 server s_off 127.0.0.1:@@tls@@ no-ssl
backend c
 server s_plain 127.0.0.1:@@plain@@ no-ssl
 server s_chk 127.0.0.1:@@tls@@ check-ssl verify none
"""
SET_SSL_COMMANDS = ["set server c/s_plain ssl on", "set server b/s_on ssl",
                    "set server b/s_on ssl maybe", "set server b/nosuch ssl on",
                    "set server b/s_on ssl off", "set server b/s_off ssl on",
                    "set server c/s_chk ssl on", "set server c/s_chk ssl off"]


def _use_ssl(sock: str) -> list[tuple[str, str]]:
    state = query(sock, "show servers state")
    header = state.splitlines()[1].lstrip("# ").split()
    rows = [dict(zip(header, ln.split(), strict=False)) for ln in state.splitlines()[2:]
            if ln.strip()]
    return [(r["srv_name"], r["srv_use_ssl"]) for r in rows]


def test_set_server_ssl_like_haproxy(pki, servers, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`set server <b>/<s> ssl on|off` turns TLS on or off for the server's new
    connections where it has TLS settings (its own `ssl` or `check-ssl`, or its
    `default-server`'s `ssl`; `no-ssl` alone is not enough): a server given `ssl` but
    serving plain HTTP answers once TLS is off, one given `no-ssl` but serving TLS
    once it is on. Answers, `srv_use_ssl` (1, 0, -1 for `no-ssl`) and response
    statuses compared with HAProxy 2.6.12's."""
    from tests.lbproc import RawBackend
    from tests.support_e2e import Haproxy, answer_ok

    tls = servers("tls")
    seen = {}
    with RawBackend(answer_ok) as plain:
        for kind in ("lb", "haproxy"):
            sock = str(tmp_path / f"{kind}.sock")
            text = SET_SSL.format(sock=sock)
            ports = {"plain": plain.port, "tls": tls.port}
            run = LbProcess if kind == "lb" else Haproxy
            with run(text, ports=ports) as px:  # type: ignore[operator]
                wait_socket(sock)
                port = px.ports["fe"]
                before = [_use_ssl(sock), fetch(port, "/on").status, fetch(port, "/off").status]
                answers = [query(sock, c) for c in SET_SSL_COMMANDS[:7]]
                after = [_use_ssl(sock), fetch(port, "/on").status, fetch(port, "/off").status]
                answers.append(query(sock, SET_SSL_COMMANDS[7]))
                seen[kind] = (before, answers, after, _use_ssl(sock))
    for mine, theirs in zip(seen["lb"], seen["haproxy"], strict=True):
        assert mine == theirs
    before, answers, after, last = seen["lb"]
    assert before == [[("s_on", "1"), ("s_off", "-1"), ("s_plain", "-1"), ("s_chk", "0")],
                      503, 502]
    assert answers[0] == ("'set server <srv> ssl' cannot be set.  default-server should "
                          "define ssl settings\n\n")
    assert answers[1] == answers[2] == "'set server <srv> ssl' expects 'on' or 'off'.\n\n"
    assert answers[4:] == ["server ssl setting updated.\n\n"] * 4
    assert after == [[("s_on", "0"), ("s_off", "1"), ("s_plain", "-1"), ("s_chk", "1")],
                     200, 200]
    assert last[3] == ("s_chk", "0")
