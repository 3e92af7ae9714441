"""The stats socket over real unix and TCP sockets: every command, every level, the
line protocol, prompt mode, limits. Expected texts were checked against HAProxy
2.6.12 (Debian) on a unix stats socket unless marked as an lb extension."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import uvloop

from lb import cli, stats
from lb.config.model import StatsSocket
from lb.state import State
from tests.stats_support import CONFIG_TEXT, CliFixture, make_config, query


@pytest.fixture
def c() -> Iterator[CliFixture]:
    fx = CliFixture()
    yield fx
    fx.close()


def test_unix_socket_mode_and_basic_answers(c: CliFixture) -> None:
    st = os.stat(c.path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert c.q("show cli level") == "admin\n\n"
    assert c.q("show cli level", c.user) == "user\n\n"
    assert c.q("show cli level", c.oper) == "operator\n\n"
    assert c.q("show backend") == "# name\nbe\nws\n\n"
    assert c.q("get weight be/s1") == "3 (initial 3)\n\n"
    assert c.q("show config") == CONFIG_TEXT + "\n"


def test_show_stat_info_and_servers_state_over_socket(c: CliFixture) -> None:
    out = c.q("show stat", c.user)
    assert out.startswith(stats.CSV_HEADER + "\n") and out.endswith(",\n\n")
    assert len(out.strip().splitlines()) == 9
    out = c.q("show stat 3 4 -1", c.user)
    assert [r.split(",")[1] for r in out.strip().splitlines()[1:]] == ["s1", "s2", "b1"]
    out = c.q("show stat be 2 -1 typed", c.user)
    assert out.startswith("B.3.0.0.pxname.1:KNS:str:be\n")
    assert json.loads(c.q("show stat json", c.user))[0][1]["value"]["value"] == "FRONTEND"
    assert c.q("show stat nope 1 -1") == "No such proxy.\n\n"
    info = c.q("show info", c.user)
    assert info.startswith("Name: lb\nVersion: ") and "\nUptime_sec: " in info
    assert json.loads(c.q("show info json"))[0]["value"]["value"] == "lb"
    ss = c.q("show servers state be", c.user).splitlines()
    assert ss[0] == "1" and ss[1].startswith("# be_id be_name srv_id") and len(ss) == 6
    assert ss[2].startswith("3 be 1 s1 127.0.0.1 2 0 3 3 ")
    assert c.q("show servers state nope") == "Can't find backend.\n\n"


def test_levels_matrix(c: CliFixture) -> None:
    denied = "Permission denied\n"
    user_ok = ["help", "show info", "show stat", "show servers state", "show backend",
               "get weight be/s1", "show cli level", "user"]
    oper_only = ["show sess", "show errors", "clear counters", "show websockets"]
    admin_only = ["clear counters all", "disable server be/s1", "enable server be/s1",
                  "set server be/s1 state ready", "set weight be/s1 3",
                  "disable health be/s2", "enable health be/s2", "shutdown session 1",
                  "shutdown sessions server be/s1", "show config"]
    for cmd in user_ok:
        assert not c.q(cmd, c.user).startswith(denied), cmd
    for cmd in oper_only + admin_only:
        out = c.q(cmd, c.user)
        # HAProxy's line, then (lb extension) one line naming the level needed
        assert out.startswith(denied), cmd
        need = "admin" if cmd in admin_only else "operator"
        assert out == (f"{denied}This command requires level '{need}' "
                       f"(this session is 'user').\n\n"), cmd
    for cmd in oper_only:
        assert not c.q(cmd, c.oper).startswith(denied), cmd
    for cmd in admin_only:
        assert c.q(cmd, c.oper).startswith(denied), cmd
        assert not c.q(cmd).startswith(denied), cmd


def test_level_lowering(c: CliFixture) -> None:
    # checked against HAProxy 2.6.12: `operator` prints nothing, then the next command
    # runs at the lower level; `admin` is not a command.
    assert c.q("operator; show cli level") == "\noperator\n\n"
    assert c.q("user; disable server be/s1").startswith("\nPermission denied\n")
    assert c.q("operator", c.user).startswith("Permission denied\n")
    out = c.q("user; admin; show cli level")
    assert out.startswith("\nUnknown command") and out.endswith("\nuser\n\n")


def test_unknown_command_and_help(c: CliFixture) -> None:
    out = c.q("show stats")
    assert out.startswith("Unknown command, but maybe one of the following ones is a "
                          "better match:\n")
    assert "  show stat [desc|json|no-maint|typed|up]*: report counters" in out
    assert out.endswith("  quit                                    : disconnect\n\n")
    out = c.q("")
    assert out.startswith("Unknown command. Please enter one of the following commands only:\n")
    helptext = c.q("help", c.user)
    assert helptext.startswith("The following commands are valid at this level:\n")
    assert "  get weight <bk>/<srv>                   : report a server's current weight\n" in helptext
    assert "disable server" not in helptext  # lb lists only what this level may run
    assert "disable server (DEPRECATED)" in c.q("help")
    for cmd in cli.CLI_COMMANDS:  # every command has usage text and a description
        assert cmd.usage and cmd.desc and cmd.words


def test_admin_commands_and_messages(c: CliFixture) -> None:
    s1 = c.state.backends["be"].servers[0]
    assert c.q("disable server be/nope") == "No such server.\n\n"
    assert c.q("disable server nope/s1") == "No such backend.\n\n"
    assert c.q("disable server") == "Require 'backend/server'.\n\n"
    assert c.q("get weight be") == "Require 'backend/server'.\n\n"
    assert c.q("set weight be/s1") == "Require <weight> or <weight%>.\n\n"
    assert c.q("set server be/s1 weight") == "Require <weight> or <weight%>.\n\n"
    assert c.q("set weight be/s1 300") == ("Absolute weight can only be between 0 and 256 "
                                           "inclusive.\n\n")
    assert c.q("set weight be/s1 -1").startswith("Absolute weight can only be between")
    assert c.q("set weight be/s1 abc") == ("Empty weight string empty or preceded by "
                                           "garbage\n\n")
    assert c.q("set weight be/s1 10x") == "Trailing garbage in weight string\n\n"
    assert c.q("set server be/s1 state bogus") == ("'set server <srv> state' expects "
                                                   "'ready', 'drain' and 'maint'.\n\n")
    assert c.q("set server be/s1 foo").startswith("usage: set server <backend>/<server> addr")
    assert c.q("set weight be/s1 50%") == "\n"
    assert c.q("get weight be/s1") == "1 (initial 3)\n\n"
    assert c.q("set server be/s1 weight 200%") == "\n"
    assert c.q("get weight #3/#1") == "6 (initial 3)\n\n"  # ids work too
    assert c.q("set weight be/s1 3") == "\n"
    assert s1.eweight == 3
    # state changes and HAProxy's log texts
    assert c.q("disable server be/s1") == "\n"
    assert s1.in_maint and "MAINT" in c.q("show stat").split("\nbe,s1,")[1].split("\n")[0]
    assert c.q("enable server be/s1") == "\n"
    assert c.q("set server be/s1 state drain") == "\n"
    assert s1.in_drain and not s1.usable
    assert c.q("set server be/s1 state maint; set server be/s1 state drain") == "\n\n"
    assert c.q("set server be/s1 state ready") == "\n"
    assert not s1.admin
    texts = [t for _lvl, t in c.logs]
    assert texts == [
        "Server be/s1 is going DOWN for maintenance. 1 active and 1 backup servers left. "
        "0 sessions active, 0 requeued, 0 remaining in queue.",
        "Server be/s1 is UP/READY (leaving forced maintenance).",
        "Server be/s1 enters drain state. 1 active and 1 backup servers online. "
        "0 sessions requeued, 0 total in queue.",
        "Server be/s1 is going DOWN for maintenance. 1 active and 1 backup servers left. "
        "0 sessions active, 0 requeued, 0 remaining in queue.",
        "Server be/s1 is UP/DRAIN (leaving forced maintenance).",
        "Server be/s1 remains in forced drain mode.",
        "Server be/s1 is UP (leaving forced drain).",
    ]


def test_backend_without_server_is_logged(c: CliFixture) -> None:
    assert c.q("disable server ws/w1") == "\n"
    assert ("emerg", "backend ws has no server available!") in c.logs
    assert c.q("show stat ws 2 -1").strip().splitlines()[1].split(",")[17] == "DOWN"


def test_health_toggles(c: CliFixture) -> None:
    s2 = c.state.backends["be"].servers[1]
    assert c.q("disable health be/s2") == "\n" and not s2.check_enabled
    row = c.q("show stat 3 4 2").strip().splitlines()[1].split(",")
    assert row[36] == "" and row[67] == ""  # check columns vanish while disabled
    assert c.q("enable health be/s2") == "\n" and s2.check_enabled
    assert c.q("enable health be/s1") == ("Health check was not configured on this server, "
                                          "cannot enable.\n\n")
    assert c.q("disable health be/nope") == "No such server.\n\n"


def test_sessions_show_and_shutdown(c: CliFixture) -> None:
    killed: list[Any] = []
    s1 = c.state.backends["be"].servers[0]

    class Stream:
        def __init__(self, i: int) -> None:
            self.i, self.src, self.frontend, self.backend = i, "127.0.0.1:40000", "fe", "be"
            self.server, self.started = "s1", time.time() - 3
            self.bytes_in, self.bytes_out = 1, 2

        def kill(self, code: bytes) -> None:
            killed.append((self.i, code))

    def stream(i: int) -> Stream:
        return Stream(i)

    for i in (0x10, 0x11, 0x12):
        c.state.streams[i] = stream(i)
    s1.streams.update({c.state.streams[0x11], c.state.streams[0x12]})
    out = c.q("show sess")
    assert out.count("\n") == 4 and out.startswith("0x10: proto=tcpv4 src=127.0.0.1:40000 "
                                                    "fe=fe be=be srv=s1 ts=00 age=3s")
    assert c.q("show sess 0x11").startswith("0x11: proto=")
    assert c.q("show sess 0x99") == "Session not found.\n\n"
    assert c.q("shutdown session") == "Session pointer expected (use 'show sess').\n\n"
    assert c.q("shutdown session 0x99") == "No such session (use 'show sess').\n\n"
    assert c.q("shutdown session 0x10") == "\n"
    assert killed == [(0x10, b"K")]
    assert c.q("shutdown sessions server be/s1") == "\n"
    assert sorted(killed) == [(0x10, b"K"), (0x11, b"K"), (0x12, b"K")]
    assert c.q("shutdown sessions server be/nope") == "No such server.\n\n"


def test_show_errors(c: CliFixture) -> None:
    out = c.q("show errors")
    assert out.startswith("Total events captured on [") and out.endswith("] : 0\n\n")
    c.state.capture_error(time.time(), "fe", "request", "127.0.0.1:5", "invalid header",
                          b"GET / HTTP/1.1\r\nBad\x01\r\n")
    out = c.q("show errors fe")
    assert "] : 1\n" in out and "] frontend fe (#2): invalid request\n" in out
    assert "  src 127.0.0.1:5, reason: invalid header\n" in out
    assert out.endswith("  00000  GET / HTTP/1.1\\r\\n\n  00016  Bad\\x01\\r\\n\n\n")
    assert "] : 0\n" in c.q("show errors be")
    assert "] : 0\n" in c.q("show errors fe response")
    assert c.q("show errors nope") == "No such proxy.\n\n"


def test_clear_counters(c: CliFixture) -> None:
    ctr = c.state.backends["be"].servers[0].counters
    ctr.session_start(time.time())
    ctr.session_end()
    ctr.bin = 500
    assert ctr.smax == 1
    assert c.q("clear counters", c.oper) == "\n"
    assert ctr.smax == 0 and ctr.bin == 500 and ctr.stot == 1
    assert c.q("clear counters all") == "\n"
    assert ctr.bin == 0 and ctr.stot == 0


def test_show_websockets_over_socket(c: CliFixture) -> None:
    c.state.tunnels[5] = SimpleNamespace(frontend="ws", backend="ws", server="w1",
                                         client="127.0.0.1:9", started=time.time() - 1,
                                         bytes_in=3, bytes_out=4)
    data = json.loads(c.q("show websockets json", c.oper))
    assert data["tunnels"][0]["id"] == 5 and data["tunnels"][0]["bytes_out"] == 4
    assert "# 1 open WebSocket tunnel(s)" in c.q("show websockets", c.oper)


def test_line_protocol_escapes_and_multiple_lines(c: CliFixture) -> None:
    # checked against HAProxy 2.6.12: `\;` is not a separator, an empty command is
    # unknown, lines already sent are all answered before the close.
    assert c.q("show cli level;show backend") == "admin\n\n# name\nbe\nws\n\n"
    assert c.q("show cli level\\; show backend").startswith("Unknown command")
    assert c.q("  show   cli   level  ") == "admin\n\n"
    assert c.q("show cli level;").startswith("admin\n\nUnknown command")
    assert query(c.path, "show cli level\nshow backend") == "admin\n\n# name\nbe\nws\n\n"


def _interactive(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(path)
    return s


def _read_until(s: socket.socket, end: bytes) -> bytes:
    buf = b""
    while not buf.endswith(end):
        data = s.recv(65536)
        if not data:
            break
        buf += data
    return buf


def test_prompt_mode(c: CliFixture) -> None:
    # checked against HAProxy 2.6.12: `prompt` answers "\n> ", each answer is followed
    # by the empty line and "> "; `prompt` again leaves and the connection closes.
    s = _interactive(c.path)
    with s:
        s.sendall(b"prompt\n")
        assert _read_until(s, b"> ") == b"\n> "
        s.sendall(b"show cli level\n")
        assert _read_until(s, b"> ") == b"admin\n\n> "
        s.sendall(b"show backend;show cli level\n")
        assert _read_until(s, b"admin\n\n> ") == b"# name\nbe\nws\n\n> admin\n\n> "
        s.sendall(b"quit\n")
        assert _read_until(s, b"\n") == b""  # HAProxy 2.6.12 closes without a byte
    s = _interactive(c.path)
    with s:
        s.sendall(b"prompt\n")
        _read_until(s, b"> ")
        s.sendall(b"prompt\n")
        assert _read_until(s, b"\n") == b"\n" and s.recv(10) == b""


def test_long_line_is_rejected_cleanly(c: CliFixture) -> None:
    s = _interactive(c.path)
    with s:
        try:
            s.sendall(b"x" * 40000 + b"\n")
        except OSError:
            pass
        assert _read_until(s, b"\n\n") == b"Command line too long.\n\n"
    assert c.q("show cli level") == "admin\n\n"  # the server is still fine


@pytest.mark.parametrize("loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop],
                         ids=["asyncio", "uvloop"])
def test_idle_timeout_and_maxconn(loop_factory: Any) -> None:
    """A connection over `stats maxconn` is not answered until a slot frees. uvloop,
    lb's loop, starts reading after connection_made and so undoes a pause made there:
    with it, `stats maxconn` used to be ignored."""
    fx = CliFixture(maxconn=1, timeout=0.5, loop_factory=loop_factory)
    try:
        first = _interactive(fx.path)
        first.sendall(b"prompt\n")
        assert _read_until(first, b"> ") == b"\n> "
        second = _interactive(fx.path)  # accepted by the kernel, served later
        second.sendall(b"show cli level\n")
        second.settimeout(0.2)
        with pytest.raises(socket.timeout):
            second.recv(100)
        second.settimeout(5)
        t0 = time.monotonic()
        assert first.recv(100) == b""  # idle timeout closes the prompt session
        assert time.monotonic() - t0 < 4
        assert _read_until(second, b"\n\n") == b"admin\n\n"
        first.close()
        second.close()
    finally:
        fx.close()


def test_stale_socket_replaced_and_live_one_refused() -> None:
    d = tempfile.mkdtemp(prefix="lbcli")
    path = os.path.join(d, "s.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()  # file left behind, nobody listening

    async def run() -> None:
        st = State(make_config(), now=time.time())
        srv = await cli.serve_cli(st, [StatsSocket("unix", path, level="admin")],
                                  timeout=5, maxconn=5)
        try:
            with pytest.raises(OSError, match="in use"):
                await cli.serve_cli(st, [StatsSocket("unix", path)], timeout=5, maxconn=5)
            out = await asyncio.to_thread(query, path, "show cli level")
            assert out == "admin\n\n"
        finally:
            srv.close()
        assert not os.path.exists(path)

    asyncio.run(run())


def test_fd_socket() -> None:
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    port = lsock.getsockname()[1]
    fd = os.dup(lsock.fileno())
    lsock.close()

    async def run() -> None:
        st = State(make_config(), now=time.time())
        srv = await cli.serve_cli(st, [StatsSocket("fd", str(fd), level="user")],
                                  timeout=5, maxconn=5)
        try:
            out = await asyncio.to_thread(query, ("127.0.0.1", port), "show cli level")
            assert out == "user\n\n"
        finally:
            srv.close()

    asyncio.run(run())


def test_ipv6_tcp_socket() -> None:
    async def run() -> None:
        st = State(make_config(), now=time.time())
        srv = await cli.serve_cli(st, [StatsSocket("tcp", "::1", 0, level="operator")],
                                  timeout=5, maxconn=5)
        try:
            host, port = srv.addresses[0][:2]
            assert host == "::1"
            out = await asyncio.to_thread(query, ("::1", port), "show cli level")
            assert out == "operator\n\n"
        finally:
            srv.close()

    asyncio.run(run())


def test_close_leaves_a_newer_socket_alone() -> None:
    """A reload renames the new process's socket over the path: the old one's close
    must not remove it."""
    d = tempfile.mkdtemp(prefix="lbcli")
    path = os.path.join(d, "s.sock")

    async def run() -> None:
        st = State(make_config(), now=time.time())
        old = await cli.serve_cli(st, [StatsSocket("unix", path, level="admin")],
                                  timeout=5, maxconn=5)
        newer = socket.socket(socket.AF_UNIX)
        newer.bind(path + ".new")
        newer.listen(1)
        os.rename(path + ".new", path)
        old.close()
        assert os.path.exists(path)
        newer.close()

    asyncio.run(run())


def test_command_without_newline_then_eof(c: CliFixture) -> None:
    s = _interactive(c.path)
    with s:
        s.sendall(b"show cli level")
        s.shutdown(socket.SHUT_WR)
        assert _read_until(s, b"\n\n") == b"admin\n\n"
        assert s.recv(10) == b""


def test_show_stat_hides_addresses_from_level_user(c: CliFixture) -> None:
    """HAProxy 2.6.12: addr (73), cookie (74) and algo (76) are filled for sessions of
    level operator and up only."""
    def row(addr: Any, px: str, sv: str) -> list[str]:
        lines = c.q("show stat", addr).splitlines()
        return next(ln.split(",") for ln in lines if ln.startswith(f"{px},{sv},"))

    for addr, shown in ((c.user, False), (c.oper, True), (None, True)):
        srv, be = row(addr, "be", "s1"), row(addr, "be", "BACKEND")
        assert (srv[73] != "") is shown, (addr, srv[73])
        assert (be[76] != "") is shown, (addr, be[76])
        assert srv[17]  # status: filled for everybody
        typed = c.q("show stat typed", addr)
        assert (".73.addr." in typed) is shown


def test_set_server_health_logs_and_acts_without_checks(c: CliFixture) -> None:
    """HAProxy 2.6.12: `set server be/s1 health down` on a server without checks marks
    it DOWN until `health up` (lb used to answer and do nothing), and both forms log
    the change as a health check would."""
    s1 = c.state.backends["be"].servers[0]
    assert not s1.model.check
    c.logs.clear()
    assert c.q("set server be/s1 health down") == "\n"
    assert not s1.usable
    row = next(ln.split(",") for ln in c.q("show stat").splitlines() if ln.startswith("be,s1,"))
    assert row[17] == "DOWN"
    assert c.logs == [("alert", "Server be/s1 is DOWN, changed from CLI. 1 active and 1 "
                                "backup servers left. 0 sessions active, 0 requeued, "
                                "0 remaining in queue.")], c.logs
    assert c.q("set server be/s1 health down") == "\n"
    assert len(c.logs) == 1  # no change, no line
    assert c.q("set server be/s1 health up") == "\n"
    assert s1.usable
    assert c.logs[1] == ("notice", "Server be/s1 is UP, changed from CLI. 2 active and 1 "
                                   "backup servers online. 0 sessions requeued, "
                                   "0 total in queue.")
    row = next(ln.split(",") for ln in c.q("show stat").splitlines() if ln.startswith("be,s1,"))
    assert row[17] == "no check"


def test_leaving_maintenance_resets_check_health(c: CliFixture) -> None:
    """HAProxy 2.6.12 (observed with `show servers state`): maintenance sets a server's
    health to 0; leaving it puts a checked server UP at once at health == rise, even
    one its checks had taken down; an unchecked server keeps 0."""
    be = c.state.backends["be"]
    s1, s2 = be.servers[0], be.servers[1]
    assert s2.model.check and not s1.model.check

    def row(name: str) -> list[str]:
        line = next(ln for ln in c.q("show servers state be").splitlines() if f" {name} " in ln)
        return line.split()[5:7] + line.split()[12:14]  # op, admin, health, check state

    assert c.q("set server be/s2 health down") == "\n"
    assert not s2.usable and row("s2")[0] == "0"
    assert c.q("disable server be/s1; disable server be/s2") == "\n\n"
    assert row("s1") == ["0", "1", "0", "0"]
    assert row("s2") == ["0", "1", "0", "14"]  # configured|enabled|paused
    c.logs.clear()
    assert c.q("enable server be/s1; enable server be/s2") == "\n\n"
    assert row("s1") == ["2", "0", "0", "0"]
    assert row("s2") == ["2", "0", str(s2.rise), "6"]
    assert s2.usable and s2.health == s2.rise
    assert ("notice", "Server be/s2 is UP/READY (leaving forced maintenance).") in c.logs
