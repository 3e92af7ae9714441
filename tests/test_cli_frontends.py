"""`disable/enable/shutdown frontend` and `set maxconn frontend|server|global` on a
running lb: the answers HAProxy 2.6.12 gives to the same commands, and what the
listeners and queues then do with real connections."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time

from tests.backends import HttpBackend
from tests.lbproc import LbProcess, RawBackend, free_port
from tests.stats_support import ADMIN_HEAD, query, wait_socket
from tests.support_e2e import Haproxy

CFG = ADMIN_HEAD + """    timeout queue 5s

frontend fe
    bind 127.0.0.1:{fe}
    default_backend be

backend be
    server s1 127.0.0.1:{be}
"""

# in order: each answer depends on the ones before
SEQUENCE = [
    "disable frontend fe", "disable frontend fe", "enable frontend fe", "enable frontend fe",
    "disable frontend nope", "disable frontend be", "disable frontend",
    "set maxconn frontend fe 10", "set maxconn frontend fe", "set maxconn frontend nope 5",
    "set maxconn frontend fe -2", "set maxconn server be/s1 7", "set maxconn server be/s1 x",
    "set maxconn server be/s1 5x", "set maxconn server be/s1", "set maxconn server be/nope 3",
    "set maxconn server", "set maxconn global 100", "set maxconn global 99999999",
    "set maxconn global", "set maxconn global x", "shutdown frontend nope",
    "shutdown frontend fe", "shutdown frontend fe", "disable frontend fe",
    "enable frontend fe",
]


def _fe_row(sock: str) -> list[str]:
    row = next(r for r in query(sock, "show stat").splitlines() if r.startswith("fe,FRONTEND"))
    return row.split(",")[4:7] + row.split(",")[17:18]  # scur smax slim status


def test_answers_and_states_as_haproxy() -> None:
    d = tempfile.mkdtemp(prefix="lbfe")
    hs, ls = os.path.join(d, "h.sock"), os.path.join(d, "l.sock")
    with HttpBackend("s1") as be, \
            Haproxy(CFG.format(sock=hs, fe=free_port(), be=be.port), ready_socket=hs), \
            LbProcess(CFG.format(sock=ls, fe="@@fe@@", be=be.port)):
        wait_socket(ls)
        for cmd in SEQUENCE:
            assert query(ls, cmd) == query(hs, cmd), cmd
            # the status; and the limit once set (the derived default differs by one:
            # HAProxy reserves a descriptor per thread)
            ours, theirs = _fe_row(ls), _fe_row(hs)
            assert ours[3] == theirs[3], cmd
            if cmd.startswith("set maxconn frontend fe"):
                assert ours[2] == theirs[2], cmd
        srv = [r for r in query(ls, "show stat").splitlines() if r.startswith("be,s1,")][0]
        assert srv.split(",")[6] == "7"  # the server's slim


def _request(port: int, path: str = "/", timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def test_listeners_follow_the_commands() -> None:
    d = tempfile.mkdtemp(prefix="lbfe")
    sock = os.path.join(d, "lb.sock")
    with HttpBackend("s1") as be, \
            LbProcess(CFG.format(sock=sock, fe="@@fe@@", be=be.port)) as lb:
        port = lb.ports["fe"]
        wait_socket(sock)
        assert _request(port).startswith(b"HTTP/1.1 200")
        # disabled: a new connection waits in the kernel backlog, unanswered ...
        assert query(sock, "disable frontend fe") == "\n"
        assert _fe_row(sock)[3] == "PAUSED"
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        c.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        c.settimeout(0.5)
        try:
            assert c.recv(100) == b"", "answered while disabled"
        except TimeoutError:
            pass
        # ... and is served once the frontend is enabled again
        assert query(sock, "enable frontend fe") == "\n"
        c.settimeout(5)
        assert c.recv(100).startswith(b"HTTP/1.1 200")
        c.close()
        assert _fe_row(sock)[3] == "OPEN"
        # shut down: connections are refused, for good
        assert query(sock, "shutdown frontend fe") == "\n"
        lb.wait_for_line("Proxy fe stopped (cumulated conns: FE: ", timeout=5)
        try:
            _request(port, timeout=2)
            raise AssertionError("a shut-down frontend accepted a connection")
        except (ConnectionRefusedError, ConnectionResetError):
            pass
        assert _fe_row(sock)[3] == "STOP"


def test_server_maxconn_raised_lets_the_queue_go() -> None:
    """With `set maxconn server be/s1 1`, a second request waits in the queue behind a
    slow one; raising the limit to 2 lets it go at once."""
    release = threading.Event()

    def slow(c: socket.socket, rb: RawBackend) -> None:  # a thread per connection
        head = rb.recv_head(c)
        if b" /slow " in head:
            release.wait(5)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        c.close()

    d = tempfile.mkdtemp(prefix="lbfe")
    sock = os.path.join(d, "lb.sock")
    with RawBackend(slow) as be, \
            LbProcess(CFG.format(sock=sock, fe="@@fe@@", be=be.port)) as lb:
        port = lb.ports["fe"]
        wait_socket(sock)
        assert query(sock, "set maxconn server be/s1 1") == "\n"
        results: dict[str, bytes] = {}
        t1 = threading.Thread(target=lambda: results.__setitem__("slow", _request(port, "/slow")))
        t1.start()
        time.sleep(0.3)
        t2 = threading.Thread(target=lambda: results.__setitem__("fast", _request(port, "/f")))
        t2.start()
        time.sleep(0.3)
        row = [r for r in query(sock, "show stat").splitlines()
               if r.startswith("be,BACKEND,")][0]
        assert row.split(",")[2] == "1", row  # qcur: the second request is queued
        assert query(sock, "set maxconn server be/s1 2") == "\n"
        t2.join(3)
        assert results.get("fast", b"").startswith(b"HTTP/1.1 200")  # before the slow one
        assert "slow" not in results
        release.set()
        t1.join(5)
        assert results["slow"].startswith(b"HTTP/1.1 200")
        info = query(sock, "set maxconn global 50; show info")
        assert "\nMaxconn: 50\n" in info


ADDR_SEQUENCE = [
    "set server be/s1 addr", "set server be/s1 addr bogus", "set server be/s1 addr 127.0.0.1",
    "set server be/s1 addr 127.0.0.2", "set server be/s1 addr 127.0.0.2 port 9000",
    "set server be/s1 addr 127.0.0.2 port 9000", "set server be/s1 addr 127.0.0.3 port x",
    "set server be/s1 addr 127.0.0.3 port", "set server be/s1 addr 127.0.0.3 foo 3",
    "set server be/s1 addr 127.0.0.3 port 70000", "set server be/s1 addr ::1 port 82",
    "set server be/nope addr 127.0.0.1", "set server be/s1 port 81",
]


def test_set_server_addr_answers_as_haproxy() -> None:
    d = tempfile.mkdtemp(prefix="lbfe")
    hs, ls = os.path.join(d, "h.sock"), os.path.join(d, "l.sock")
    with HttpBackend("s1") as be:
        port = be.port
        with Haproxy(CFG.format(sock=hs, fe=free_port(), be=port), ready_socket=hs), \
                LbProcess(CFG.format(sock=ls, fe="@@fe@@", be=port)):
            wait_socket(ls)
            for cmd in ADDR_SEQUENCE:
                assert query(ls, cmd) == query(hs, cmd), cmd

            def row(sock: str) -> list[str]:
                line = [r for r in query(sock, "show servers state be").splitlines()
                        if r.startswith("3 be 1 s1 ")][0]
                return [line.split()[4], line.split()[18]]  # srv_addr, srv_port

            assert row(ls) == row(hs) == ["::1", "82"]


def test_set_server_addr_moves_the_traffic() -> None:
    """Requests go to the new address at once, on a kept-alive client connection too
    (the idle server connections to the old address are closed)."""
    d = tempfile.mkdtemp(prefix="lbfe")
    sock = os.path.join(d, "lb.sock")
    with HttpBackend("old") as old, HttpBackend("new") as new, \
            LbProcess(CFG.format(sock=sock, fe="@@fe@@", be=old.port)) as lb:
        wait_socket(sock)
        c = socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=5)
        f = c.makefile("rb")

        def ask() -> bytes:
            c.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                head += f.readline()
            n = int(next(ln.split(b":")[1] for ln in head.split(b"\r\n")
                         if ln.lower().startswith(b"content-length")))
            return f.read(n)

        assert ask() == b"old"
        assert len(old._live) == 1  # lb keeps its connection to the old address
        answer = query(sock, f"set server be/s1 addr 127.0.0.1 port {new.port}")
        assert answer == (f"no need to change the addr, port changed from '{old.port}' to "
                          f"'{new.port}' by 'stats socket command'\n\n")
        assert ask() == b"new" and ask() == b"new"
        deadline = time.monotonic() + 5
        while old._live and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not old._live  # ... and closed it when the address changed
        f.close()
        c.close()
