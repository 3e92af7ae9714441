"""TCP socket options from configuration: `option clitcpka`/`srvtcpka`/`tcpka` with
their `-idle`/`-cnt`/`-intvl` keywords, `option nolinger`, `option tcp-smart-accept`
and `option tcp-smart-connect` (lb.proxy.sockopts, lb.proxy.dial).

What HAProxy 2.6.12 does, seen with `strace -f` on 127.0.0.1 (2026-11-24):
- an HTTP frontend's listening socket gets `TCP_QUICKACK 0` (tcp-smart-accept is
  implied in HTTP mode); options of the client side are set per listener;
- without `option tcp-smart-connect` its server sockets get no `TCP_QUICKACK`; the
  request is sent at once after `connect()` returns EINPROGRESS. lb implies the
  option in HTTP mode (docs/dataplane.md) and sends the request in the same pass.
lb sets the client side's options on the listening socket (Linux copies them to every
accepted socket) and the server side's before `connect()` (docs/dataplane.md).
The messages below are HAProxy's, compared with `haproxy -c` on the same lines.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Any

import pytest

from lb import config as cfgmod
from lb.proxy import dial as dialmod
from lb.proxy import sockopts
from tests.backends import HttpBackend
from tests.lbproc import LbThread, free_port, raw_request

HTTP = """
defaults
  mode http
  timeout client 5s
  timeout server 5s
  timeout connect 2s
{defaults}
frontend f
  bind 127.0.0.1:@@fe@@
{frontend}
  default_backend b
backend b
{backend}
  server s1 127.0.0.1:@@s1@@
"""


def _load(text: str) -> Any:
    res = cfgmod.load_text(text, "t.cfg")
    return res


def _messages(text: str) -> list[str]:
    res = _load(text)
    return [d.text for d in res.diagnostics]


def _cfg(defaults: str = "", frontend: str = "", backend: str = "") -> str:
    return HTTP.format(defaults=defaults, frontend=frontend, backend=backend).replace(
        "@@fe@@", "8080").replace("@@s1@@", "8081")


# ---------------------------------------------------------------- configuration


def test_keepalive_settings_are_read_in_seconds_and_inherited() -> None:
    res = _load(_cfg(defaults="  clitcpka-idle 10\n  srvtcpka-cnt 4",
                     frontend="  clitcpka-cnt 3\n  clitcpka-intvl 2m",
                     backend="  srvtcpka-idle 20s\n  srvtcpka-intvl 1500ms"))
    assert res.config is not None, res.diagnostics
    proxies = {p.name: p for p in res.config.proxies}
    # a bare number is seconds; 1500ms is 1 s (HAProxy keeps whole seconds)
    assert proxies["f"].cli_tcpka == (10, 3, 120)
    assert proxies["b"].srv_tcpka == (20, 4, 1)


@pytest.mark.parametrize(("line", "text"), [
    ("  clitcpka-idle abc", "unexpected character 'a' in argument to <clitcpka-idle>."),
    ("  clitcpka-cnt x", "'clitcpka-cnt' : unexpected character 'x' in integer value 'x'"),
    ("  clitcpka-idle", "'clitcpka-idle' expects an integer value"),
    ("  clitcpka-cnt", "'clitcpka-cnt' expects an integer value"),
    ("  clitcpka-idle 2147483648", "timer overflow in argument '2147483648' to "
     "'clitcpka-idle' (maximum value is 2147483647 ms or ~24.8 days)"),
])
def test_bad_keepalive_settings_are_refused_with_haproxys_text(line: str, text: str) -> None:
    res = _load(_cfg(frontend=line))
    assert res.config is None
    assert text in _messages(_cfg(frontend=line))


def test_keepalive_settings_on_the_wrong_side_are_ignored_with_a_warning() -> None:
    text = _cfg(frontend="  srvtcpka-idle 20s", backend="  clitcpka-cnt 3")
    res = _load(text)
    assert res.config is not None
    msgs = _messages(text)
    assert "srvtcpka-idle will be ignored because frontend 'f' has no backend capability" in msgs
    assert "clitcpka-cnt will be ignored because backend 'b' has no frontend capability" in msgs
    proxies = {p.name: p for p in res.config.proxies}
    assert proxies["f"].srv_tcpka == (0, 0, 0) and proxies["b"].cli_tcpka == (0, 0, 0)


def test_smart_accept_and_smart_connect_follow_the_mode() -> None:
    """As in HAProxy 2.6, tcp-smart-accept is implied in HTTP mode (unless negated).
    lb also implies tcp-smart-connect there, where HAProxy leaves it off: a choice of
    lb's (docs/dataplane.md), which `no option tcp-smart-connect` undoes."""
    p = {p.name: p for p in _load(_cfg()).config.proxies}
    assert p["f"].options.tcp_smart_accept and p["b"].options.tcp_smart_connect
    res = _load(_cfg(defaults="  no option tcp-smart-accept\n  no option tcp-smart-connect"))
    p = {p.name: p for p in res.config.proxies}
    assert not p["f"].options.tcp_smart_accept and not p["b"].options.tcp_smart_connect
    res = _load(_cfg(backend="  no option tcp-smart-connect"))
    assert not {p.name: p for p in res.config.proxies}["b"].options.tcp_smart_connect
    tcp = _cfg().replace("mode http", "mode tcp")
    p = {p.name: p for p in _load(tcp).config.proxies}
    assert not p["f"].options.tcp_smart_accept and not p["b"].options.tcp_smart_connect
    p = {p.name: p for p in _load(tcp.replace(
        "frontend f\n", "frontend f\n  option tcp-smart-accept\n")).config.proxies}
    assert p["f"].options.tcp_smart_accept


# ---------------------------------------------------------------- sockets


def _opts(sock: Any) -> dict[str, Any]:
    return {
        "keepalive": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
        "idle": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
        "cnt": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
        "intvl": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
        "linger": struct.unpack("ii", sock.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)),
    }


def _sockets_of(lb: LbThread) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    def look() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        clients = [_opts(cc.transport.get_extra_info("socket")) for cc in lb.rt.conns]
        servers = [_opts(sc.transport.get_extra_info("socket"))
                   for pool in lb.rt.backends["b"].idle.values() for sc in pool]
        return clients, servers
    return lb.call(look)  # type: ignore[no-any-return]


def _one_request(port: int, conn: socket.socket) -> bytes:
    conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    out = b""
    while not out.endswith(b"\r\n\r\ns1"):
        d = conn.recv(65536)
        assert d, out
        out += d
    return out


def _options_after_one_request(text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run ``text`` in front of an HTTP backend, make one keep-alive request, and read
    the options of lb's client socket and of its (pooled) server socket."""
    with HttpBackend() as be, LbThread(text, {"s1": be.port}) as lb, \
            socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=5) as c:
        assert _one_request(lb.ports["fe"], c).startswith(b"HTTP/1.1 200")
        (client,), (server,) = _sockets_of(lb)
    return client, server


def test_keepalive_and_nolinger_reach_client_and_server_sockets() -> None:
    text = HTTP.format(
        defaults="",
        frontend="  option clitcpka\n  clitcpka-idle 33\n  clitcpka-cnt 4\n"
                 "  clitcpka-intvl 7\n  option nolinger",
        backend="  option srvtcpka\n  srvtcpka-idle 21\n  srvtcpka-cnt 5\n"
                "  srvtcpka-intvl 9\n  option nolinger")
    client, server = _options_after_one_request(text)
    assert client == {"keepalive": 1, "idle": 33, "cnt": 4, "intvl": 7, "linger": (1, 0)}
    assert server == {"keepalive": 1, "idle": 21, "cnt": 5, "intvl": 9, "linger": (1, 0)}


def test_settings_past_the_kernels_limits_are_clamped_not_fatal() -> None:
    """HAProxy 2.6.12 takes `clitcpka-idle 30d` (2,592,000 s) and ignores the kernel's
    EINVAL; lb sets the kernel's largest values instead of failing every socket."""
    text = HTTP.format(defaults="  option tcpka\n  clitcpka-idle 30d\n  srvtcpka-idle 30d\n"
                                "  srvtcpka-cnt 1000", frontend="", backend="")
    client, server = _options_after_one_request(text)
    assert (client["idle"], server["idle"], server["cnt"]) == (32767, 32767, 127)


def test_option_tcpka_covers_both_sides_and_nothing_is_set_by_default() -> None:
    client, server = _options_after_one_request(
        HTTP.format(defaults="  option tcpka", frontend="", backend=""))
    assert client["keepalive"] == 1 and server["keepalive"] == 1
    client, server = _options_after_one_request(HTTP.format(defaults="", frontend="",
                                                            backend=""))
    assert client["keepalive"] == 0 and server["keepalive"] == 0
    assert client["linger"][0] == 0 and server["linger"][0] == 0


class _ArrivalServer:
    """A server that, for each connection, notes whether the request was already
    there when accept() returned, answers it, and closes."""

    def __init__(self, banner: bytes = b"") -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.banner = banner
        self.ready_at_accept: list[bool] = []
        self.accepted_at: list[float] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted_at.append(time.monotonic())
            with conn:
                if self.banner:
                    conn.sendall(self.banner)
                    continue
                try:
                    conn.recv(65536, socket.MSG_DONTWAIT | socket.MSG_PEEK)
                    self.ready_at_accept.append(True)
                except BlockingIOError:
                    self.ready_at_accept.append(False)
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    d = conn.recv(65536)
                    if not d:
                        break
                    data += d
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\ns1")

    def close(self) -> None:
        self._stop = True
        self.sock.close()


def _get_close(port: int) -> bytes:
    return raw_request(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                       timeout=5)


@pytest.mark.parametrize("backend", ["  option tcp-smart-connect", ""],
                         ids=["asked-for", "http-default"])
def test_smart_connect_sends_the_request_with_the_handshakes_last_ack(backend: str) -> None:
    """With smart connect the server's connection is only established by the packet
    that carries the request: every accept() finds the request waiting. In HTTP mode
    lb does so unless told otherwise."""
    srv = _ArrivalServer()
    try:
        with LbThread(HTTP.format(defaults="", frontend="", backend=backend),
                      {"s1": srv.port}) as lb:
            for _ in range(20):
                assert _get_close(lb.ports["fe"]).startswith(b"HTTP/1.1 200")
            smart = lb.rt.backends["b"].smart
    finally:
        srv.close()
    assert srv.ready_at_accept == [True] * 20
    assert smart == 1


def test_no_option_tcp_smart_connect_leaves_the_event_loops_connect() -> None:
    srv = _ArrivalServer()
    try:
        with LbThread(HTTP.format(defaults="", frontend="",
                                  backend="  no option tcp-smart-connect"),
                      {"s1": srv.port}) as lb:
            assert _get_close(lb.ports["fe"]).startswith(b"HTTP/1.1 200")
            be = lb.rt.backends["b"]
            assert (be.smart, be.srvopts) == (0, ())
    finally:
        srv.close()


def test_tcp_mode_smart_connect_waits_for_client_bytes() -> None:
    """`mode tcp` + `option tcp-smart-connect`, a client that sends nothing and a
    server that speaks first: the server is connected at once, and its banner comes
    through (a delayed last ACK would hold the server's accept for up to 200 ms)."""
    srv = _ArrivalServer(banner=b"220 hello\r\n")
    text = """
defaults
  mode tcp
  timeout client 5s
  timeout server 5s
  timeout connect 2s
listen l
  bind 127.0.0.1:@@fe@@
  option tcp-smart-connect
  server s1 127.0.0.1:@@s1@@
"""
    try:
        with LbThread(text, {"s1": srv.port}) as lb:
            took = []
            for _ in range(5):
                t0 = time.monotonic()
                with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=5) as c:
                    assert c.recv(100) == b"220 hello\r\n"
                    took.append(time.monotonic() - t0)
            assert sorted(took)[2] < 0.15, took  # the median: one late wake-up is not a delay
    finally:
        srv.close()


# ---------------------------------------------------------------- lb's own dial


def test_dial_reports_established_refused_and_in_progress() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    t = dialmod.target("127.0.0.1", port)
    assert t is not None and t.family == socket.AF_INET
    assert dialmod.target("localhost", port) is None  # names go the event loop's way
    assert dialmod.target("127.0.0.1", port) is t  # cached
    fds = []
    try:
        fd, up = dialmod.dial(t, sockopts.QUICKACK_OFF)
        fds.append(fd)
        assert up
        # fill the accept queue: the next SYN is dropped and the connect stays pending
        pending = None
        for _ in range(8):
            fd, up = dialmod.dial(t, ())
            fds.append(fd)
            if not up:
                pending = fd
                break
        assert pending is not None
        with pytest.raises(ConnectionRefusedError):
            dialmod.dial(dialmod.target("127.0.0.1", free_port()), ())  # type: ignore[arg-type]
    finally:
        for fd in fds:
            socket.close(fd)
        listener.close()


def test_a_connect_left_in_progress_is_finished() -> None:
    """A server whose accept queue is full drops lb's SYN: the dial is in progress
    when connect() returns, and sockopts.finish completes it once the server accepts
    (the SYN is sent again after a second); the request then goes through."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(8):  # fill the queue (backlog 0 takes one or two)
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(("127.0.0.1", port))
        fillers.append(f)
    served: list[bytes] = []

    def serve() -> None:
        time.sleep(0.3)
        listener.settimeout(5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not served:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.settimeout(0.2)
            try:
                data = conn.recv(65536)
            except OSError:
                data = b""
            if data.startswith(b"GET"):
                served.append(data)
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\ns1")
            conn.close()

    th = threading.Thread(target=serve, daemon=True)
    try:
        with LbThread(HTTP.format(defaults="", frontend="",
                                  backend="  option tcp-smart-connect"),
                      {"s1": port}) as lb:
            th.start()
            t0 = time.monotonic()
            out = _get_close(lb.ports["fe"])
            assert out.startswith(b"HTTP/1.1 200"), out
            assert time.monotonic() - t0 > 0.5  # it waited for the SYN to be sent again
            (txn,) = lb.wait_txns(1)
            assert bytes(txn.term) == b"--"
    finally:
        th.join(6)
        for f in fillers:
            f.close()
        listener.close()
    assert served


def test_a_dialed_server_connection_is_closed_with_a_reset() -> None:
    """http-server-close on a socket lb opened itself (here for srvtcpka): the
    connection knows its descriptor, and closes with a reset as any other server
    connection (docs/dataplane.md, "Closing server connections"), compiled or not."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    resets: list[bool] = []

    def serve() -> None:
        srv.settimeout(5)
        for _ in range(3):
            conn, _ = srv.accept()
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\ns1")
            try:
                conn.recv(100)  # a FIN (b"") or anything else: not a reset
                resets.append(False)
            except ConnectionResetError:
                resets.append(True)
            conn.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    text = HTTP.format(defaults="  option http-server-close", frontend="",
                       backend="  option srvtcpka")
    try:
        with LbThread(text, {"s1": srv.getsockname()[1]}) as lb, \
                socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=5) as c:
            for _ in range(3):
                assert _one_request(lb.ports["fe"], c).startswith(b"HTTP/1.1 200")
        th.join(5)
    finally:
        srv.close()
    assert resets == [True, True, True]


def _split_answers(sock: socket.socket, stop: threading.Event) -> None:
    """Answer each request on each connection with its head and its body in two
    writes, Nagle's algorithm on (as Python's http.server does), keeping it open."""
    sock.settimeout(0.2)

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            data = b""
            while not stop.is_set():
                try:
                    d = conn.recv(65536)
                except OSError:
                    return
                if not d:
                    return
                data += d
                while b"\r\n\r\n" in data:
                    _, data = data.split(b"\r\n\r\n", 1)
                    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n")
                    conn.sendall(b"ok\n")

    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except OSError:
            continue
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def test_smart_connect_turns_quick_acks_back_on_once_the_response_comes() -> None:
    """Smart connect leaves `TCP_QUICKACK` off on the server socket, and the kernel
    then keeps delaying its ACKs. A server that writes its head and its body apart
    with Nagle's algorithm on waits for the ACK of the head before it sends the body:
    44 ms a response on this machine, every time, for a client socket left that way
    (0.2 ms with quick ACKs back on; docs/dataplane.md). So lb turns them back on at
    the connection's first read: the idle connection's socket says so."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    stop = threading.Event()
    t = threading.Thread(target=_split_answers, args=(sock, stop), daemon=True)
    t.start()
    try:
        with LbThread(HTTP.format(defaults="", frontend="", backend=""),
                      {"s1": sock.getsockname()[1]}) as lb:
            with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=5) as c:
                c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                got = b""
                while not got.endswith(b"\r\n\r\nok\n"):  # (head and body may come apart)
                    data = c.recv(4096)
                    assert data, got
                    got += data
            be = lb.rt.backends["b"]
            assert be.smart == 1
            idle = [sc for pool in be.idle.values() for sc in pool]
            assert len(idle) == 1
            server_sock = idle[0].transport.get_extra_info("socket")
            assert server_sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK) == 1
    finally:
        stop.set()
        sock.close()
        t.join(2)
