"""`rate-limit sessions <n>`: HAProxy's texts for bad lines, and a frontend that
accepts no more than about n new sessions a second while losing none."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.lbproc import LbProcess
from tests.stats_support import ADMIN_HEAD, query, wait_socket
from tests.test_config_haproxy_diff import HAPROXY, assert_backend_lines_like_haproxy

CHECK_CASES = [
    "rate-limit sessions 10", "rate-limit", "rate-limit sessions", "rate-limit sessions x",
    "rate-limit bogus 5", "rate-limit sessions 10 extra",
]


@pytest.mark.skipif(not os.path.exists(HAPROXY), reason="needs Debian's haproxy")
@pytest.mark.parametrize("stmt", CHECK_CASES)
def test_check_messages_match_haproxy(tmp_path: Path, capsys: Any, stmt: str) -> None:
    assert_backend_lines_like_haproxy(tmp_path, capsys, f" {stmt}\n server s 127.0.0.1:80",
                                      frontend=" " + stmt)


CFG = ADMIN_HEAD + """
frontend fe
    bind 127.0.0.1:{fe}
    rate-limit sessions 10
    http-request return status 200 content-type text/plain string ok
"""


def _answer_times(port: int, n: int) -> list[float]:
    """Open n connections at once, one request each; when each answer came."""
    t0 = time.monotonic()
    times: list[float] = []
    lock = threading.Lock()

    def one() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        assert data.startswith(b"HTTP/1.1 200 OK\r\n")
        with lock:
            times.append(time.monotonic() - t0)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    return sorted(times)


def test_sessions_wait_their_turn(tmp_path: Path) -> None:
    """30 clients at once against a limit of 10 a second: all are served, about ten
    at once and the rest over the next two seconds (HAProxy 2.6.12, same test: the
    20th after 1.9 s, the last after 2.9 s; lb: 1.3 s and 2.3 s); the stats show
    the limit and a maximum rate near it."""
    sock = str(tmp_path / "lb.sock")
    with LbProcess(CFG.format(sock=sock, fe="@@fe@@")) as lb:
        wait_socket(sock)
        times = _answer_times(lb.ports["fe"], 30)
        assert len(times) == 30
        # ten at once, then ten a second: the last answer comes well over a second
        # after the first (a loaded machine only stretches this; without the limit
        # the 30 take a few tens of milliseconds)
        assert times[-1] - times[0] > 1.2 and times[19] - times[0] > 0.6
        rows = [r.split(",") for r in query(sock, "show stat").splitlines()]
        head = rows[0]
        fe = next(r for r in rows if r[:2] == ["fe", "FRONTEND"])
        assert fe[head.index("rate_lim")] == "10"
        assert int(fe[head.index("rate_max")]) <= 20
