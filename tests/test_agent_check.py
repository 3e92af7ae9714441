"""`agent-check`: the agent's reply language, the config rules, and what replies do to
servers, compared with HAProxy 2.6.12.

The end-to-end test runs HAProxy and lb at once, both asking the same agents (a small
TCP server whose replies the test changes step by step), and after each step compares
what each proxy's stats socket says about the servers and the state-change lines each
sent to its syslog receiver.
"""

from __future__ import annotations

import csv
import io
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from healthcheck.agent import AgentReply, parse_reply
from tests.backends import HttpBackend
from tests.lbproc import free_port
from tests.stats_support import query
from tests.support_e2e import SideBySide
from tests.test_config_haproxy_diff import assert_text_like_haproxy

HAPROXY = "/usr/sbin/haproxy"


@pytest.mark.parametrize("line, reply", [
    ("up", AgentReply(health="up")),
    ("DOWN #maintenance window", AgentReply(health="DOWN", description="maintenance window")),
    ("down # tired", AgentReply(health="down", description="tired")),
    ("75%,drain maxconn:30", AgentReply(admin="drain", weight="75%", maxconn="30")),
    ("up 10% 20%", AgentReply(health="up", weight="20%")),  # the last of a kind wins
    ("ready\tmaint", AgentReply(admin="maint")),
    ("stopped#going away", AgentReply(error="stopped#going")),  # '#' inside a word
    ("bogus other up", AgentReply(health="up", error="bogus")),  # the first error only
    ("x% fail", AgentReply(health="fail", error="x%")),
    ("MaxConn:abc", AgentReply(maxconn="abc")),
    ("", AgentReply()),
    (" , \t", AgentReply()),
])
def test_reply_words(line: str, reply: AgentReply) -> None:
    assert parse_reply(line) == reply


@pytest.mark.parametrize("server", [
    "server s1 127.0.0.1:8080 agent-check",
    "server s1 127.0.0.1:8080 check track s0",
    "server s1 127.0.0.1:8080 agent-check agent-addr zzz agent-port 1",
    "server s1 127.0.0.1:8080 agent-check agent-port",
    "server s1 127.0.0.1:8080 agent-check agent-port 1 agent-send",
    "server s1 127.0.0.1:8080 agent-check agent-port 1 agent-inter 0",
    "server s1 127.0.0.1:8080 agent-check agent-port 1 agent-addr",
    "server s1 127.0.0.1:8080 agent-check agent-addr ::1 agent-send \"x\\n\" agent-port 9",
])
def test_config_texts_as_haproxy(server: str, tmp_path: Any, capsys: Any) -> None:
    assert_text_like_haproxy(tmp_path, capsys, f"""
defaults
  mode http
  timeout connect 1s
  timeout client 1s
  timeout server 1s
backend b
  default-server agent-inter 3s
  server s0 127.0.0.1:8080 check
  {server}
frontend f
  bind 127.0.0.1:8081
  default_backend b
""")


# --------------------------------------------------------------------------- end to end


class Agents:
    """One TCP agent per name on 127.0.0.1: reads the proxy's `agent-send` line, answers
    with its current reply (None: closes at once) and closes."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.reply: dict[str, bytes | None] = {n: b"up\n" for n in names}
        self.received: dict[str, list[bytes]] = {n: [] for n in names}
        self.socks = {n: socket.create_server(("127.0.0.1", 0)) for n in names}
        self.ports = {n: s.getsockname()[1] for n, s in self.socks.items()}
        self.closed: set[str] = set()
        for n, s in self.socks.items():
            threading.Thread(target=self._serve, args=(n, s), daemon=True).start()

    def _serve(self, name: str, srv: socket.socket) -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            with c:
                c.settimeout(1.0)
                try:
                    self.received[name].append(c.recv(100))
                    reply = self.reply[name]
                    if reply:
                        c.sendall(reply)
                except OSError:
                    pass

    def stop(self, name: str) -> None:
        self.socks[name].close()
        self.closed.add(name)

    def close(self) -> None:
        for n in self.socks:
            if n not in self.closed:
                self.stop(n)


CONFIG = """
global
  stats socket {sock} level admin
  log 127.0.0.1:{log} local0
defaults
  mode http
  log global
  timeout connect 1s
  timeout client 5s
  timeout server 5s
  # the agents are threads of the test process: on a loaded machine one may answer
  # after the 100 ms `inter` (both proxies then log a Layer7 timeout nobody asked for)
  timeout check 1s
backend b
  default-server agent-inter 100 agent-send "ping\\n"
  server s1 127.0.0.1:{web} check inter 100 agent-check agent-port {a1}
  server s2 127.0.0.1:{web} agent-check agent-port {a2} weight 50
backend b2
  option log-health-checks
  server s3 127.0.0.1:{web} check inter 100 agent-check agent-port {a3} agent-inter 100 agent-send "s3\\n"
frontend fe
  bind 127.0.0.1:{fe}
  default_backend b
"""

FIELDS = ("svname", "status", "weight", "slim", "check_status", "agent_status", "agent_code",
          "agent_desc", "last_agt", "agent_rise", "agent_fall", "agent_health", "chkdown")


def _servers(sock: str) -> dict[str, tuple[str, ...]] | None:
    """The chosen stats fields per server, or None while an agent check is running
    (HAProxy clears its description until the check ends)."""
    rows = list(csv.reader(io.StringIO(query(sock, "show stat").lstrip("# "))))
    head = rows[0]
    out = {}
    for r in rows[1:]:
        d = dict(zip(head, r, strict=False))
        if not r or d["svname"] in ("FRONTEND", "BACKEND"):
            continue
        if d["agent_status"].startswith("* ") or d["check_status"].startswith("* "):
            return None
        out[f"{d['pxname']}/{d['svname']}"] = tuple(d[f] for f in FIELDS)
    return out


class Pair(SideBySide):
    def __init__(self, tmp: str) -> None:
        self.agents = Agents(("a1", "a2", "a3"))
        self.web = HttpBackend("web").__enter__()
        super().__init__(tmp, lambda kind, sock, log: CONFIG.format(
            sock=sock, log=log, web=self.web.port, fe=free_port(), **self.agents.ports))

    def settle(self) -> dict[str, tuple[str, ...]]:  # type: ignore[override]
        """Both proxies' server fields once they agree three looks in a row."""
        return super().settle(_servers, looks=3)

    def step(self, **replies: bytes | None) -> dict[str, tuple[str, ...]]:
        self.agents.reply.update(replies)
        time.sleep(0.25)  # a few agent checks
        rows = self.settle()
        time.sleep(0.15)  # their log lines
        h, lb = self.logs["h"].take(), self.logs["l"].take()
        # an agent check already under way when the replies changed may still log what
        # the previous reply made it log (a weight while drained repeats "remains in
        # forced drain mode."): such a repeat may land on either side of the boundary
        prev = getattr(self, "last_lines", set())
        assert lb - prev == h - prev, (lb, h)
        self.last_lines = h
        return rows

    def lb_step(self, **replies: bytes | None) -> dict[str, tuple[str, ...]]:
        """A step where only lb's answer is checked (HAProxy's is not steady)."""
        self.agents.reply.update(replies)
        time.sleep(0.25)
        deadline = time.monotonic() + 6.0
        while (rows := _servers(self.socks["l"])) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rows is not None
        self.logs["h"].take(), self.logs["l"].take()
        return rows

    def close(self) -> None:
        super().close()
        self.web.__exit__(None, None, None)
        self.agents.close()


@pytest.fixture
def pair(tmp_path: Any) -> Iterator[Pair]:
    assert os.path.exists(HAPROXY), "Debian haproxy is installed by tools/system_deps.py"
    p = Pair(str(tmp_path))
    yield p
    p.close()


def _f(rows: dict[str, tuple[str, ...]], srv: str, field: str) -> str:
    return rows[srv][FIELDS.index(field)]


def test_replies_do_what_they_do_in_haproxy(pair: Pair) -> None:
    rows = pair.step(a1=b"up\n", a2=b"75%\n", a3=b"up\n")
    assert _f(rows, "b/s1", "status") == "UP" and _f(rows, "b/s2", "weight") == "37"
    assert _f(rows, "b/s2", "status") == "no check"
    assert _f(rows, "b/s1", "last_agt") == "via agent : up"
    assert all(r == b"ping\n" for r in pair.agents.received["a1"][-3:])
    assert pair.agents.received["a3"][-1] == b"s3\n"

    rows = pair.step(a1=b"down\n")
    assert _f(rows, "b/s1", "status") == "DOWN (agent)"
    assert pair.last_lines == {
        'Server b/s1 is DOWN, reason: Layer7 wrong status, code: 0, info: "via agent : '
        'down", check duration: Nms. 1 active and 0 backup servers left. 0 sessions active, '
        '0 requeued, 0 remaining in queue.'}
    rows = pair.step(a1=b"up\n")
    assert _f(rows, "b/s1", "status") == "UP"
    rows = pair.step(a1=b"stopped#going away\n")
    assert _f(rows, "b/s1", "last_agt") == "agent reports an error : stopped#going"
    assert _f(rows, "b/s1", "agent_status") == "CHECKED"
    rows = pair.step(a1=b"up, drain\n")
    assert _f(rows, "b/s1", "status") == "DRAIN (agent)"
    rows = pair.step(a1=b"50%\n")  # a weight while drained: "remains in forced drain"
    assert "Server b/s1 remains in forced drain mode." in pair.last_lines
    rows = pair.step(a1=b"maint\n")
    assert _f(rows, "b/s1", "status") == "MAINT"
    rows = pair.step(a1=b"ready 100%\n")
    assert _f(rows, "b/s1", "status") == "UP"
    assert "Server b/s1 is UP/READY (leaving forced maintenance)." in pair.last_lines

    rows = pair.step(a2=b"maxconn:30 50%\n")
    assert (_f(rows, "b/s2", "slim"), _f(rows, "b/s2", "weight")) == ("30", "25")
    rows = pair.step(a2=b"200% maxconn:x\n")
    assert _f(rows, "b/s2", "weight") == "100"
    rows = pair.step(a2=b"down # tired\n")
    assert _f(rows, "b/s2", "last_agt") == "via agent : down (tired)"
    rows = pair.step(a2=b"x% up\n")
    assert _f(rows, "b/s2", "last_agt") == "via agent : up (x%)"
    rows = pair.step(a2=b"")  # closed without a word
    assert _f(rows, "b/s2", "agent_status") == "L7RSP"
    # No line end: lb ignores the reply, as HAProxy's documentation says. HAProxy
    # 2.6.12 itself is not steady here: in one run of six it applied the weight, as if
    # it had read past the bytes received, so this step is lb's alone, and a whole
    # line brings both proxies back to the same weight.
    rows = pair.lb_step(a2=b"10%")
    assert _f(rows, "b/s2", "last_agt") == "Ignoring incomplete line from agent"
    assert _f(rows, "b/s2", "weight") == "100"
    rows = pair.step(a2=b"100%\n")
    assert _f(rows, "b/s2", "weight") == "50"
    pair.agents.stop("a2")  # unreachable: the server stays as it is
    rows = pair.step()
    assert (_f(rows, "b/s2", "agent_status"), _f(rows, "b/s2", "status")) == ("L4CON",
                                                                            "no check")

    # `option log-health-checks`: the agent's own lines
    pair.step(a3=b"down\n")
    assert "Agent check for server b2/s3 failed, reason: Layer7 wrong status, code: 0, " \
           'info: "via agent : down", check duration: Nms, status: 0/1 DOWN.' \
           in pair.last_lines
    pair.step(a3=b"up\n")
    assert "Server b2/s3 is UP. 1 active and 0 backup servers online. 0 sessions " \
           "requeued, 0 total in queue." in pair.last_lines


def test_cli_agent_commands_as_haproxy(pair: Pair) -> None:
    pair.step(a1=b"up\n", a2=b"up\n", a3=b"up\n")
    for cmd in ("set server b/s1 agent", "set server b/s1 agent sideways",
                "set server b/s1 agent-port", "set server b/s1 agent-port abc",
                "set server b/s1 agent-port 70000", "set server b/s1 agent-addr",
                "set server b/s1 agent-addr zzz", "enable agent b", "disable agent b/nosuch",
                "enable agent b/s1"):
        pair.cli(cmd)
    pair.agents.reply["a2"] = b"50%\n"
    pair.cli("set server b/s2 agent down")  # forced down until the agent says up
    rows = pair.settle()
    assert _f(rows, "b/s2", "status") == "DOWN (agent)"
    pair.cli("disable agent b/s2")
    rows = pair.settle()
    assert _f(rows, "b/s2", "agent_status") == "" and _f(rows, "b/s2", "status") == "DOWN"
    assert "agent checks are not enabled" in pair.cli("set server b/s2 agent up")
    state_h = query(pair.socks["h"], "show servers state b").splitlines()[2:]
    state_l = query(pair.socks["l"], "show servers state b").splitlines()[2:]
    # srv_agent_state (14) without its "in progress" bit (0x1: an agent exchange
    # running at that instant, in either proxy), srv_agent_addr and srv_agent_port
    assert [(int(r.split()[14]) & ~1, r.split()[-2:]) for r in state_l if r] == \
        [(int(r.split()[14]) & ~1, r.split()[-2:]) for r in state_h if r]
    pair.cli("enable agent b/s2")
    pair.cli("set server b/s2 agent up")
    rows = pair.step()
    assert _f(rows, "b/s2", "status") == "no check"
    assert _f(rows, "b/s2", "weight") == "25"


def test_agent_settings_survive_a_reload(tmp_path: Any) -> None:
    """`disable agent`, `agent-addr` and `agent-port` set from the CLI are in the
    `show servers state` dump, and a server-state file gives them back."""
    from lb.config import load_text
    from lb.server_state_apply import restore_server_states
    from lb.state import State
    from lb.stats_core import show_servers_state

    text = (f"global\n server-state-file {tmp_path}/state\n"
            "defaults\n mode http\n timeout client 1s\n timeout server 1s\n"
            " timeout connect 1s\n load-server-state-from-file global\n"
            "backend b\n server s1 127.0.0.1:8080 agent-check agent-port 9000\n"
            " server s2 127.0.0.1:8080 agent-check agent-port 9001 agent-addr 127.0.0.3\n")
    cfg = load_text(text).config
    assert cfg is not None
    before = State(cfg)
    s1, s2 = before.backends["b"].servers
    assert s1.agent is not None and s2.agent is not None
    s1.agent.enabled, s1.agent.addr, s1.agent.port = False, "127.0.0.2", 9100
    dump = show_servers_state(before, time.time(), [before.backends["b"]])
    rows = [r.split() for r in dump.splitlines()[2:]]
    assert [(r[14], r[23], r[24]) for r in rows] == [("18", "127.0.0.2", "9100"),
                                                     ("22", "127.0.0.3", "9001")]
    (tmp_path / "state").write_text(dump)
    after = State(cfg)
    assert restore_server_states(after) == []
    a1, a2 = (s.agent for s in after.backends["b"].servers)
    assert a1 is not None and a2 is not None
    assert (a1.enabled, a1.addr, a1.port) == (False, "127.0.0.2", 9100)
    assert (a2.enabled, a2.addr, a2.port) == (True, "127.0.0.3", 9001)


def test_workers_show_the_masters_agent_results() -> None:
    """The master runs the checks; the agent's result reaches each worker's stats with
    the server states it pushes."""
    from lb import master
    from lb.config import load_text
    from lb.state import State

    cfg = load_text("defaults\n mode http\n timeout client 1s\n timeout server 1s\n"
                    " timeout connect 1s\nbackend b\n"
                    " server s1 127.0.0.1:8080 agent-check agent-port 9000\n").config
    assert cfg is not None
    ms, ws = State(cfg), State(cfg)
    a = ms.backends["b"].servers[0].agent
    assert a is not None
    a.status, a.desc, a.health, a.duration = "L7STS", "via agent : down", 0, 3
    master.apply_servers(ws, master.servers_message(ms)["servers"], 1.0)
    w = ws.backends["b"].servers[0].agent
    assert w is not None
    assert (w.status, w.desc, w.health, w.duration) == ("L7STS", "via agent : down", 0, 3)


@pytest.mark.parametrize("host, port", [("127.0.0.1\x00x", 9), ("127.0.0.1", 70000)])
def test_an_address_the_socket_layer_refuses_is_a_socket_error(host: str, port: int) -> None:
    """run_agent never raises: an exception would end the server's agent task without
    rescheduling it."""
    import asyncio

    from healthcheck.agent import run_agent

    out = asyncio.run(run_agent(host, port, b"", 0.5))
    assert out.status == "SOCKERR" and out.desc
