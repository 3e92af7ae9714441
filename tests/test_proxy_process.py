"""Process-level behaviour: every bind form, pidfile, clean exit 0 on SIGTERM/SIGINT."""

from __future__ import annotations

import os
import signal
import socket

import pytest

from tests.backends import HttpBackend
from tests.lbproc import (
    ONE_SERVER_HTTP,
    LbProcess,
    has_ipv6_loopback,
    raw_request,
    wait_listening,
)

REQ = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def test_bind_forms_pidfile_and_sigterm(tmp_path) -> None:  # type: ignore[no-untyped-def]
    inherited = socket.socket()
    inherited.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    inherited.bind(("127.0.0.1", 0))
    inherited.listen(16)
    fd_port = inherited.getsockname()[1]
    fd = inherited.fileno()
    v6 = has_ipv6_loopback()
    pidfile = tmp_path / "lb.pid"
    cfg = f"""
defaults
  mode http
  timeout client 5s
  timeout server 5s
  timeout connect 1s
frontend f
  bind 127.0.0.1:@@a@@
  bind 127.0.0.1:@@b@@,127.0.0.1:@@c@@
  bind *:@@star@@
  bind fd@{fd}
  {"bind :::@@v6@@" if v6 else ""}
  default_backend b
backend b
  server s1 127.0.0.1:@@s1@@
"""
    with HttpBackend("s1") as s1:
        lb = LbProcess(cfg, ports={"s1": s1.port}, args=("-p", str(pidfile)),
                       pass_fds=(fd,))
        with lb:
            inherited.close()  # lb owns its copy now
            ports = [lb.ports[n] for n in ("a", "b", "c", "star")] + [fd_port]
            wait_listening([fd_port])
            for p in ports:
                assert raw_request(p, REQ).endswith(b"s1"), p
            if v6:
                v6_port = lb.ports["v6"]  # a placeholder: a start that lost it is retried
                with socket.create_connection(("::1", v6_port), timeout=5) as c:
                    c.sendall(REQ)
                    got = b""
                    while not got.endswith(b"s1") and (chunk := c.recv(1000)):
                        got += chunk  # head and body may arrive in separate reads
                    assert got.endswith(b"s1")
                # `:::port` also accepts IPv4 (dual stack)
                assert raw_request(v6_port, REQ).endswith(b"s1")
            assert pidfile.read_text().strip() == str(lb.pid)
            os.kill(lb.pid, signal.SIGTERM)
            assert lb.proc is not None
            assert lb.proc.wait(10) == 0
        assert not pidfile.exists()


def test_sigint_exit_0() -> None:
    with HttpBackend("s1") as s1:
        with LbProcess(ONE_SERVER_HTTP, ports={"s1": s1.port}) as lb:
            assert raw_request(lb.ports["fe"], REQ).endswith(b"s1")
            os.kill(lb.pid, signal.SIGINT)
            assert lb.proc is not None and lb.proc.wait(10) == 0


def test_bind_conflict_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        lb = LbProcess(f"""
defaults
  mode http
  timeout client 5s
  timeout server 5s
  timeout connect 1s
frontend f
  bind 127.0.0.1:{port}
""", wait=False).start()
        assert lb.proc is not None
        rc = lb.proc.wait(20)
        lb.stop()
        assert rc == 1
        err = "\n".join(lb.lines())
        assert "Starting frontend f: cannot bind socket (Address already in use)" in err
        assert "Traceback" not in err


@pytest.mark.parametrize("sig", [signal.SIGTERM])
def test_stop_with_open_connections(sig: int) -> None:
    with HttpBackend("s1") as s1:
        with LbProcess(ONE_SERVER_HTTP, ports={"s1": s1.port}) as lb:
            idle = socket.create_connection(("127.0.0.1", lb.ports["fe"]))
            os.kill(lb.pid, sig)
            assert lb.proc is not None and lb.proc.wait(10) == 0
            idle.close()
