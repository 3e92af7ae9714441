"""Shared fixtures for the stats / CLI tests: a small configuration built directly
from ``lb.config.model`` objects (so these tests do not depend on the parser), and a
blocking stats-socket client.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from lb import cli
from lb.config.model import (
    BalanceSpec,
    Bind,
    Config,
    CookieSpec,
    Global,
    Proxy,
    Server,
    StatsPage,
    StatsSocket,
    SwitchingRule,
)
from lb.state import State

CONFIG_TEXT = """global
    stats socket /tmp/x.sock level admin

frontend fe
    bind 127.0.0.1:8080
    default_backend be

backend be
    server s1 127.0.0.1:19001 weight 3
    server s2 127.0.0.1:19002 check
"""


def make_config(*, sockets: tuple[StatsSocket, ...] = (), stats_page: StatsPage | None = None,
                s1_port: int = 19001, s2_port: int = 19002, ws_port: int = 19003,
                s2_check: bool = True) -> Config:
    """fe (iid 2) -> be (iid 3: s1 weight 3 no check, s2 check, b1 backup) and
    a `listen` named ws (iid 4) with one server."""
    fe = Proxy(name="fe", caps=frozenset({"frontend"}), kind="frontend", mode="http", puid=2,
               binds=(Bind(host="127.0.0.1", port=8080),), default_backend="be",
               switching_rules=(SwitchingRule(backend="ws", name_fmt=None, cond=None),),
               stats=stats_page)
    be = Proxy(name="be", caps=frozenset({"backend"}), kind="backend", mode="http", puid=3,
               servers=(
                   Server("s1", "127.0.0.1", s1_port, 1, weight=3),
                   Server("s2", "127.0.0.1", s2_port, 2, check=True, maxconn=10,
                          maxqueue=5, cookie="c2") if s2_check else
                   Server("s2", "127.0.0.1", s2_port, 2),
                   Server("b1", "127.0.0.1", s2_port, 3, backup=True),
               ), cookie=CookieSpec(name="SRV", mode="insert"))
    ws = Proxy(name="ws", caps=frozenset({"frontend", "backend"}), kind="listen", mode="http",
               puid=4, binds=(Bind(host="127.0.0.1", port=8081),),
               servers=(Server("w1", "127.0.0.1", ws_port, 1),),
               balance=BalanceSpec(algorithm="leastconn"))
    return Config(global_=Global(stats_sockets=sockets, maxconn=2000),
                  proxies=(fe, be, ws), text=CONFIG_TEXT)


def make_state(now: float = 1_000_000.0, **kw: object) -> State:
    return State(make_config(**kw), now=now)  # type: ignore[arg-type]


# The head of the configurations the side-by-side tests give HAProxy and lb: an admin
# stats socket at {sock} and HTTP defaults (each test appends its own sections, and
# formats the whole text).
ADMIN_HEAD = """global
    stats socket {sock} level admin

defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
"""


def wait_socket(path: str, timeout: float = 10.0) -> None:
    """Wait for a unix stats socket to appear (lb opens it on its own task)."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.path.exists(path), path


def csv_rows(text: str) -> dict[tuple[str, str], dict[str, str]]:
    """`show stat` CSV as {(pxname, svname): {column: value}}."""
    lines = text.splitlines()
    names = lines[0].lstrip("# ").split(",")
    rows = {}
    for line in lines[1:]:
        row = dict(zip(names, line.split(","), strict=True))
        rows[(row["pxname"], row["svname"])] = row
    return rows


def query(address: str | tuple[str, int], line: str, timeout: float = 5.0) -> str:
    """Send one line to a stats socket and read until the server closes."""
    if isinstance(address, tuple):
        sock = socket.create_connection(address, timeout=timeout)
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(address)
    with sock:
        sock.sendall(line.encode() + b"\n")
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode()


class CliFixture:
    """An lb CLI server (admin unix socket, user and operator TCP sockets) on its own
    loop thread, over the make_config() state; state-change logs land in .logs."""

    def __init__(self, maxconn: int = 10, timeout: float = 5.0,
                 loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
                 ) -> None:
        self.dir = tempfile.mkdtemp(prefix="lbcli")
        self.path = os.path.join(self.dir, "admin.sock")
        self.state = State(make_config(), now=time.time() - 30)
        self.logs: list[tuple[str, str]] = []
        self.loop = (loop_factory or asyncio.new_event_loop)()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        socks = [StatsSocket("unix", self.path, mode=0o600, level="admin"),
                 StatsSocket("tcp", "127.0.0.1", 0, level="user"),
                 StatsSocket("tcp", "127.0.0.1", 0)]  # default level: operator
        self.server = self._call(cli.serve_cli(
            self.state, socks, timeout=timeout, maxconn=maxconn,
            log_event=lambda be, level, text: self.logs.append((level, text))))
        self.user = self.server.addresses[1]
        self.oper = self.server.addresses[2]

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def q(self, line: str, addr: Any = None) -> str:
        return query(addr or self.path, line)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        time.sleep(0.05)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def assert_same_answers(cfg: str, commands: list[str], normal: Callable[[str], str],
                        tmp_dir: str, **fields: Any) -> None:
    """Run HAProxy and lb on ``cfg`` (``{sock}``, ``{fe}`` and ``fields`` filled in)
    with an admin stats socket each, and check that every command of ``commands``
    (formatted with ``fields``) gets the same answer from both, after ``normal``."""
    from tests.backends import HttpBackend
    from tests.lbproc import LbProcess, free_port
    from tests.support_e2e import Haproxy

    hs, ls = os.path.join(tmp_dir, "h.sock"), os.path.join(tmp_dir, "l.sock")
    with HttpBackend("s1") as be:
        with Haproxy(cfg.format(sock=hs, fe=free_port(), be=be.port, **fields),
                     ready_socket=hs), \
                LbProcess(cfg.format(sock=ls, fe="@@fe@@", be=be.port, **fields)):
            wait_socket(ls)
            for cmd in commands:
                cmd = cmd.format(**fields)
                assert normal(query(ls, cmd)) == normal(query(hs, cmd)), cmd
