"""A request body that stops half-way, side by side with HAProxy 2.6.12.

Once the request head has gone to the server, HAProxy 2.6.12 does not end the
exchange when `timeout client` passes during the upload: it keeps waiting for the
server, and `timeout server` answers 504 (`sH--`), whether the server reads the body
or not (measured: `timeout client 400ms`, `timeout server 3s` → 504 after 3 s; the
configuration of tests/test_proxy_timeouts.py → 504 after its 5 s server timeout).
lb does the same. Without a server timeout lb ends the exchange `cD` at the client
timeout instead of waiting forever.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from tests.lbproc import LbProcess, RawBackend, free_port

pytestmark = pytest.mark.timeout(40)

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

CFG = """global
    log stdout format raw local0 info
defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 300ms
    {server}
frontend fe
    bind 127.0.0.1:{fe}
    default_backend b
backend b
    server s1 127.0.0.1:{s1}
"""


def _read_forever(c: socket.socket, rb: RawBackend) -> None:
    c.settimeout(0.2)
    end = time.monotonic() + 4
    while time.monotonic() < end:
        try:
            if not c.recv(65536):
                return
        except TimeoutError:
            pass


def stalled_upload(port: int) -> tuple[bytes, float]:
    with socket.create_connection(("127.0.0.1", port), timeout=8) as s:
        t0 = time.monotonic()
        s.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                  b"Connection: close\r\n\r\nabc")
        out = b""
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                out += d
        except ConnectionResetError:
            pass
        return out, time.monotonic() - t0


def test_stalled_upload_waits_for_the_server_timeout_like_haproxy() -> None:
    assert os.path.exists(HAPROXY), "Debian haproxy is installed by tools/system_deps.py"
    with RawBackend(_read_forever) as rb:
        d = tempfile.mkdtemp(prefix="lbstall")
        hport, lport = free_port(), free_port()
        with open(os.path.join(d, "h.cfg"), "w") as f:
            f.write(CFG.format(server="timeout server 1200ms", fe=hport, s1=rb.port))
        ha = subprocess.Popen([HAPROXY, "-f", os.path.join(d, "h.cfg"), "-db"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with LbProcess(CFG.format(server="timeout server 1200ms", fe=lport,
                                      s1=rb.port)) as lb:
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    try:
                        socket.create_connection(("127.0.0.1", hport), timeout=1).close()
                        break
                    except OSError:
                        time.sleep(0.05)
                theirs, t_theirs = stalled_upload(hport)
                ours, t_ours = stalled_upload(lport)
                assert theirs.startswith(b"HTTP/1.1 504 Gateway Time-out")
                assert ours.startswith(b"HTTP/1.1 504 Gateway Time-out")
                # both past the client timeout, at the server timeout
                assert t_theirs > 1.0 and t_ours > 1.0
                line = lb.wait_for_line('"POST /up HTTP/1.1"')
                assert " 504 " in line and " sH-- " in line, line
        finally:
            ha.send_signal(signal.SIGTERM)
            try:
                ha.wait(5)
            except subprocess.TimeoutExpired:
                ha.kill()
                ha.wait(5)


def test_stalled_upload_without_server_timeout_ends_at_client_timeout() -> None:
    with RawBackend(_read_forever) as rb, \
            LbProcess(CFG.format(server="", fe="@@fe@@", s1=rb.port)) as lb:
        out, took = stalled_upload(lb.ports["fe"])
        assert out == b"" and took < 3.5
        line = lb.wait_for_line('"POST /up HTTP/1.1"')
        assert " cD-- " in line, line
