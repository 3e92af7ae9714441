"""Server-state files (`server-state-file`, `load-server-state-from-file`) and `id`.

Compared with HAProxy 2.6.12 on the same files: `-c` output (every warning of
reading, matching, checking and applying a line), and, on running proxies, `show
servers state` and `show stat`. Then lb's own: the reload workflow (dump the
states, restart, traffic follows them), a named server started on the address its
line gives (`init-addr last`), and the warm-up of a server restored as starting.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time

import pytest

from lb.config import load_text
from lb.config.server_state_file import _read, file_path, parse_fields, split_line
from lb.server_state_apply import restore_server_states
from lb.state import OP_RUNNING, OP_STARTING, State
from tests.backends import HttpBackend
from tests.lbproc import LbProcess, free_port, render
from tests.stats_support import query, wait_socket
from tests.support_e2e import Haproxy, who
from tests.test_config_haproxy_diff import assert_text_like_haproxy

HEAD = ("defaults\n mode http\n timeout client 1s\n timeout server 1s\n"
        " timeout connect 1s\n")
TAIL = "0 0 - {port} - 0 0 - - 0"


def state_line(be_id: int, be: str, srv_id: int, srv: str, fields: str, port: int = 19991,
               addr: str = "127.0.0.1") -> str:
    return f"{be_id} {be} {srv_id} {srv} {addr} {fields} {TAIL.format(port=port)}"


# ------------------------------------------------------------------ reading a line


def test_line_fields_and_errors():
    ok = parse_fields(state_line(3, "b", 1, "s", "0 1 50 10 7 8 2 0 6 0").split())
    assert (ok.op, ok.admin, ok.uweight, ok.iweight, ok.since_change) == (0, 1, 50, 10, 7)
    assert (ok.check_status, ok.check_health, ok.port, ok.errors) == (8, 0, 19991, "")
    # inherited and resolution bits are dropped before the check, as HAProxy does
    assert parse_fields(state_line(3, "b", 1, "s", "2 19 1 1 0 1 0 0 0 0").split()).admin == 1
    bad = parse_fields(state_line(3, "b", 1, "s", "x 9 300 1 0 99 7 0 64 0").split())
    assert bad.errors == (", invalid srv_op_state value 'x', invalid srv_admin_state value '9'"
                          ", invalid srv_uweight value '300', invalid srv_check_status value "
                          "'99', invalid srv_check_result value '7', invalid srv_check_state "
                          "value '64'")
    # strtol: trailing bytes after the digits are ignored
    assert parse_fields(state_line(3, "b", 1, "s", "2abc 0 1 1 0 1 0 0 0 0").split()).op == 2


def test_file_reads_like_fgets(tmp_path):
    """HAProxy 2.6.12 reads a line of 1,998 characters whole; one of 1,999 fills its
    2000-byte buffer and is corrupted; bytes, not characters, count."""
    line = state_line(3, "b", 1, "s", "2 0 1 1 0 1 0 0 0 0")
    pad = " " * (1998 - len(line))
    path = tmp_path / "state"
    path.write_bytes(f"1\n{line}{pad}\n".encode())
    assert (_read(str(path)).lines[0][3], _read(str(path)).corrupt_at) == ("s", 0)
    path.write_bytes(f"1\n{line}{pad} \n".encode())
    assert _read(str(path)).corrupt_at == 1
    path.write_bytes(f"1\n{line}{pad[:-1]}é\n".encode())  # 1,999 bytes
    assert _read(str(path)).corrupt_at == 1
    assert _read(str(tmp_path)).error == "version"  # a directory
    assert _read(str(tmp_path / "nope")).error == "open:No such file or directory"


def test_line_shapes():
    assert split_line("# be_id be_name\n") == []
    assert split_line("   \n") == []
    assert split_line("1 b 1 s 127.0.0.1 2 0 1 1 0 1 0 0 0 0 0 0 - 80 -") is None  # no \n
    assert split_line("1 b 1 s 127.0.0.1 2 0 1 1\n") is None  # too few fields
    assert len(split_line("\t1 b 1 s 127.0.0.1 2 0 1 1 0 1 0 0 0 0 0 0 - 80 - 0 0 - - 0"
                          " extra more\n") or []) == 25
    assert file_path("a", None) == "a" and file_path("/abs", "/base") == "/abs"
    assert file_path("a", "/base") == "/base/a" and file_path("a", "/base/") == "/base/a"


# ------------------------------------------------------------------ `-c`, as HAProxy

# (server options, fields after the address): each in a backend of its own
CASES = [
    ("", "0 0 1 1 5 1 0 0 0 0"),  # down (a second server stays up)
    ("check inter 60s rise 2 fall 3", "1 0 1 1 5 6 3 1 6 0"),  # starting, below rise
    ("check inter 60s rise 1 fall 3", "1 0 1 1 5 6 3 1 6 0"),  # starting, rise 1: up
    ("check inter 60s rise 2 fall 3", "3 0 1 1 5 6 3 2 6 0"),  # stopping
    ("check inter 60s rise 2 fall 1", "3 0 1 1 5 6 3 2 6 0"),  # stopping, fall 1: down
    ("", "3 0 1 1 5 1 0 0 0 0"),  # stopping without a check
    ("", "1 0 1 1 5 1 0 0 0 0"),  # starting without a check
    ("disabled", "2 0 1 1 5 1 0 0 0 0"),  # the configuration disabled it since
    ("disabled", "0 5 1 1 5 1 0 0 0 0"),
    ("", "2 4 1 1 5 1 0 0 0 0"),  # the configuration enabled it since
    ("weight 5", "2 8 0 0 5 1 0 0 0 0"),  # drained by a weight of 0, now raised
    ("", "0 8 1 1 5 1 0 0 0 0"),  # down and drained
    ("weight 20", "2 0 50 10 5 1 0 0 0 0"),  # configured weight changed: it wins
    ("", "2 0 50 1 5 1 0 0 0 0"),  # weight set from the CLI: kept
    ("", "x 0 1 1 5 1 0 0 0 0"),
    ("", "2 3 1 1 5 1 0 0 0 0"),  # maintenance (the inherited bit dropped)
    ("", "2 9 1 1 5 1 0 0 0 0"),
    ("", "2 0 1 1 -5 99 7 0 64 0"),
    ("check inter 60s", "2 0 1 1 5 6 3 4 2 0"),  # `disable health`
    ("weight 0", "2 8 1 0 5 1 0 0 0 0"),  # drained, weight 0 still: drain kept
    ("check inter 60s", "2 1 1 1 5 6 3 4 6 0"),
    ("check inter 60s", "0 8 1 1 5 8 2 0 6 0"),
    ("check inter 60s slowstart 10s", "1 0 1 1 5 6 3 1 6 0"),  # warming up
    ("slowstart 10s", "1 0 1 1 5 1 0 1 0 0"),
    ("", "2 12 1 1 5 1 0 0 0 0"),
    ("disabled", "2 12 1 1 5 1 0 0 0 0"),  # leaves maintenance, drain kept
    ("backup", "0 0 1 1 5 1 0 4 0 0"),
]


def cases_config(tmp_path, check_first: bool = False) -> tuple[str, str]:
    """A config with one backend per case, and the global state file for it."""
    lines = ["global", f" server-state-file {tmp_path}/state", HEAD.rstrip("\n"),
             " load-server-state-from-file global",
             "frontend f", " bind 127.0.0.1:@@fe@@", " default_backend c0"]
    if check_first:  # HAProxy checks the first checked server at once, others later
        lines += ["backend first", " server dummy 127.0.0.1:@@dead@@ check inter 60s"]
    state = ["1", "# be_id be_name srv_id srv_name ..."]
    for i, (opts, fields) in enumerate(CASES):
        lines += [f"backend c{i}", f" server s 127.0.0.1:19991 {opts}",
                  " server t 127.0.0.1:19991" if i in (0, 11) else ""]
        state.append(state_line(i + 3, f"c{i}", 1, "s", fields))
    return "\n".join(lines) + "\n", "\n".join(state) + "\n"


def test_applied_lines_like_haproxy(tmp_path, capsys):
    text, state = cases_config(tmp_path)
    (tmp_path / "state").write_text(state)
    assert_text_like_haproxy(tmp_path, capsys, text.replace("@@fe@@", "18190"))


LOCAL = HEAD + """ load-server-state-from-file local
frontend f
 bind 127.0.0.1:18191
 default_backend d1
backend d1
 server s 127.0.0.1:19991
 server t 127.0.0.1:19991
backend d2
 id 77
 server s 127.0.0.1:19991
backend d3
 server s 127.0.0.1:19991
backend d4
 server s 127.0.0.1:19991
backend d5
 server s 127.0.0.1:19991
backend d6
 server s 127.0.0.1:19991
backend d7
 server-state-file-name d7-custom
 server s 127.0.0.1:19991
backend d8
 server s 127.0.0.1:19991
backend d9
 server s 127.0.0.1:19991
backend d10
 server-state-file-name use-backend-name
 server s 127.0.0.1:19991
backend d11
 load-server-state-from-file none
 server s 127.0.0.1:19991
"""


def test_local_files_like_haproxy(tmp_path, capsys):
    """Matching by id and name, duplicates, unknown servers, versions, corrupted
    lines, blank and comment lines, `server-state-base`, missing files."""
    base = tmp_path / "base"
    base.mkdir()
    f = "1 1 1 5 1 0 0 0 0 0 0 - 19991 - 0 0 - - 0"
    files = {
        "d1": f"1\n# c\n\n   \n3 d1 1 s 127.0.0.1 0 {f}\n3 d1 1 zz 127.0.0.1 0 {f}\n"
              f"3 d1 1 s 127.0.0.1 2 {f}\n",
        "d2": f"1\n4 d2 1 s 127.0.0.1 0 {f}\n",  # id 77 now: warned, applied
        "d3": f"1\n5 other 1 s 127.0.0.1 0 {f}\n",  # same id, other name: skipped
        "d4": f"1\n99 other 1 s 127.0.0.1 0 {f}\n",  # neither: silently skipped
        "d5": "1\n7 d5 1 s 127.0.0.1 0 1 1 1 5\n",  # too few fields
        "d6": f"2\n8 d6 1 s 127.0.0.1 0 {f}\n",  # unknown version
        "d7-custom": f"1\n9 d7 1 s 127.0.0.1 0 {f}\n",
        "d8": "",  # empty
        "d9": f"1\n11 d9 1 s 127.0.0.1 0 {f}",  # last line without its newline
        "d10": f"1\n12 d10 1 s 127.0.0.1 0 {f}\n",
        "d11": f"1\n13 d11 1 s 127.0.0.1 0 {f}\n",  # `none`: never read
    }
    for name, body in files.items():
        (base / name).write_text(body)
    text = f"global\n server-state-base {base}\n" + LOCAL
    assert_text_like_haproxy(tmp_path, capsys, text)
    (base / "d1").unlink()  # and a missing file
    assert_text_like_haproxy(tmp_path, capsys, text)


@pytest.mark.parametrize("glob, body", [
    ("server-state-file STATE", ""),
    ("server-state-file STATE", "2\n"),
    ("server-state-file STATE", "1 \n"),
    ("server-state-file STATE", "1\n3 b 1 s 127.0.0.1 0 0 1 1 5 1 0 0 0 0\n"),
    ("server-state-file STATE", "1\n3 b 1 s 127.0.0.1 0 0 1 1 5 1 0 0 0 0 0 0 "
                                + "x" * 2000 + " 80 - 0 0 - - 0\n"),
    ("server-state-file STATE", "1\n3 b 1 s 127.0.0.1 0 0 1 1 5 1 0 0 0 0 0 0 "
                                + "x" * 300 + " 80 - 0 0 - - 0\n"),
    ("server-state-file /nonexistent/dir/state", None),
    ("server-state-file TMPDIR", None),  # a directory
    ("server-state-file", None),
    ("server-state-base", None),
    ("server-state-file a b\n server-state-file c\n server-state-base d e\n"
     " server-state-base f", None),
])
def test_global_file_like_haproxy(tmp_path, capsys, glob, body):
    if body is not None:
        (tmp_path / "state").write_text(body)
    glob = glob.replace("STATE", str(tmp_path / "state")).replace("TMPDIR", str(tmp_path))
    text = (f"global\n {glob}\n" + HEAD
            + " load-server-state-from-file global\nfrontend f\n bind 127.0.0.1:18192\n"
            " default_backend b\nbackend b\n server s 127.0.0.1:19991\n")
    assert_text_like_haproxy(tmp_path, capsys, text)


@pytest.mark.parametrize("lines", [
    "defaults\n load-server-state-from-file bogus",
    "defaults\n load-server-state-from-file",
    "defaults\n load-server-state-from-file local extra",
    "frontend f2\n bind 127.0.0.1:18194\n load-server-state-from-file global",
    "frontend f2\n bind 127.0.0.1:18194\n server-state-file-name a b",
    "backend b2\n server-state-file-name a b",
    "backend b2\n server-state-file-name\n load-server-state-from-file local",
    # a name in defaults is not inherited: the backend's own name is used
    "defaults\n mode http\n server-state-file-name x\n load-server-state-from-file local\n"
    "backend b2\n server s 127.0.0.1:1",
])
def test_keywords_like_haproxy(tmp_path, capsys, lines):
    text = (HEAD + "frontend f\n bind 127.0.0.1:18193\n default_backend b\nbackend b\n"
            " server s 127.0.0.1:19991\n" + lines + "\n")
    old = os.getcwd()
    os.chdir(tmp_path)  # relative file names: nothing is found there
    try:
        assert_text_like_haproxy(tmp_path, capsys, text)
    finally:
        os.chdir(old)


def test_state_warnings_count_as_warnings(tmp_path, capsys):
    """They make `zero-warning` abort, in `-c` as at start-up."""
    (tmp_path / "state").write_text("1\n" + state_line(3, "b", 1, "s", "0 0 1 1 5 1 0 0 0 0")
                                    + "\n")
    text = (f"global\n zero-warning\n server-state-file {tmp_path}/state\n" + HEAD
            + " load-server-state-from-file global\nfrontend f\n bind 127.0.0.1:18195\n"
            " default_backend b\nbackend b\n server s 127.0.0.1:19991\n")
    assert_text_like_haproxy(tmp_path, capsys, text)


def test_named_server_takes_the_files_address_like_haproxy(tmp_path, capsys):
    """`init-addr last` (the default, `last,libc`): a name that does not resolve
    starts on the address its line gives; `init-addr libc` ignores it."""
    (tmp_path / "state").write_text(
        "1\n" + state_line(3, "b", 1, "s", "2 0 1 1 5 1 0 0 0 0", addr="127.0.0.9") + "\n"
        + state_line(3, "b", 2, "t", "2 0 1 1 5 1 0 0 0 0", addr="127.0.0.9") + "\n")
    text = (f"global\n server-state-file {tmp_path}/state\n" + HEAD
            + " load-server-state-from-file global\nfrontend f\n bind 127.0.0.1:18196\n"
            " default_backend b\nbackend b\n server s nosuch.invalid:19991\n"
            " server t nosuch.invalid:19991 init-addr libc\n")
    assert_text_like_haproxy(tmp_path, capsys, text)
    assert_text_like_haproxy(tmp_path, capsys, text.replace(" init-addr libc", ""))


# ------------------------------------------------------------------ `id`


@pytest.mark.parametrize("text", [
    "defaults\n mode http\n id 4\nfrontend f\n bind 127.0.0.1:18197\n id\nbackend b1\n id 0\n"
    " server s1 127.0.0.1:1 id 0\n server s2 127.0.0.1:1 id\n server s3 127.0.0.1:1 id abc\n"
    " server s4 127.0.0.1:1 id 7\n server s5 127.0.0.1:1 id 7\nbackend b2\n id abc\n"
    "backend b4\n id 9 10\nbackend b5\n id -3\nbackend b6\n id 12abc\n",
    "defaults\n mode http\nfrontend f\n bind 127.0.0.1:18197\n id 9\n default_backend b3\n"
    "backend b3\n id 9\n server s 127.0.0.1:1\nlisten l\n bind 127.0.0.1:18198\n id 9\n",
])
def test_id_messages_like_haproxy(tmp_path, capsys, text):
    assert_text_like_haproxy(tmp_path, capsys, text)


def test_forced_ids_number_like_haproxy():
    """A written id is kept; the others take the first free number of a counter
    that moves past every proxy (or server), numbered or not."""
    cfg = load_text("global\n stats socket /tmp/x.sock\n" + HEAD + "frontend f\n bind :80\n"
                    " default_backend b1\nbackend b1\n id 3\n server s1 127.0.0.1:1 id 5\n"
                    " server s2 127.0.0.1:1\n server s3 127.0.0.1:1 id 1\n"
                    " server s4 127.0.0.1:1\nbackend b2\n server s 127.0.0.1:1\n"
                    "backend b3\n id 2\n server s 127.0.0.1:1\n"
                    "backend b4\n server s 127.0.0.1:1\n").config
    assert cfg is not None
    # HAProxy 2.6.12's `show stat` iid and sid for the same file
    assert [(p.name, p.puid, p.forced_id) for p in cfg.proxies] == [
        ("f", 4, False), ("b1", 3, True), ("b2", 6, False), ("b3", 2, True), ("b4", 8, False)]
    b1 = cfg.proxies[1]
    assert [(s.name, s.puid) for s in b1.servers] == [("s1", 5), ("s2", 2), ("s3", 1),
                                                       ("s4", 4)]


# ------------------------------------------------------------------ running, as HAProxy


def _normalise(text: str) -> list[str]:
    """`show servers state` without its seconds-since column, and the `show stat`
    columns a state file sets (lastchg and downtime within a second)."""
    out = []
    for line in text.splitlines():
        if " first " in line or line.startswith("first,"):
            continue  # its server's check runs at once, at a moment that differs
        f = line.split(" ")
        if len(f) > 20 and f[0].isdigit():
            f[9] = "T"
            out.append(" ".join(f))
            continue
        f = line.split(",")
        if len(f) > 40 and not line.startswith("#"):
            out.append(",".join([f[0], f[1], f[17], f[18], f[19], f[20], f[22], f[27],
                                 f[28], f[36]]))
            out.append(f"{f[0]},{f[1]} lastchg={f[23]} downtime={f[24]}")
    return out


def _close_enough(mine: list[str], theirs: list[str]) -> None:
    assert len(mine) == len(theirs)
    for a, b in zip(mine, theirs, strict=True):
        if " lastchg=" in a:
            ka, va = a.split(" ", 1)
            kb, vb = b.split(" ", 1)
            assert ka == kb
            for (n1, x), (n2, y) in zip((kv.split("=") for kv in va.split()),
                                        (kv.split("=") for kv in vb.split()), strict=True):
                assert n1 == n2 and (x == y or abs(int(x or 0) - int(y or 0)) <= 1), (a, b)
        else:
            assert a == b


def _views(sock: str) -> list[str]:
    wait_socket(sock)
    deadline = time.monotonic() + 5
    while True:  # HAProxy's socket exists a moment before it answers
        try:
            return _normalise(query(sock, "show servers state") + query(sock, "show stat"))
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_running_states_like_haproxy(tmp_path):
    """Both proxies start on the same file: same states, weights, check results,
    ids, transitions counted, and times since the change."""
    text, state = cases_config(tmp_path, check_first=True)
    (tmp_path / "state").write_text(state)
    views = {}
    for kind in ("haproxy", "lb"):
        sock = str(tmp_path / f"{kind}.sock")
        cfg = text.replace("global\n", f"global\n stats socket {sock} level admin\n", 1)
        if kind == "haproxy":
            with Haproxy(cfg, {"dead": free_port()}, ready_socket=sock):
                views[kind] = _views(sock)
        else:
            with LbProcess(cfg, {"dead": free_port()}):
                views[kind] = _views(sock)
    _close_enough(views["lb"], views["haproxy"])
    # and the cases say what they should
    stat = {r.split(",")[0]: r.split(",")[2] for r in views["lb"]
            if "," in r and r.split(",")[1] == "s"}
    assert stat["c0"] == "DOWN" and stat["c1"] == "UP 0/3" and stat["c15"] == "MAINT"
    assert stat["c18"] == "no check" and stat["c19"] == "DRAIN"


# ------------------------------------------------------------------ lb's own


RELOAD = """global
 stats socket {sock} level admin
 server-state-file {state}
defaults
 mode http
 timeout client 2s
 timeout server 2s
 timeout connect 1s
 load-server-state-from-file global
frontend fe
 bind 127.0.0.1:@@fe@@
 default_backend be
backend be
 balance roundrobin
 server a 127.0.0.1:@@a@@
 server b 127.0.0.1:@@b@@
 server c 127.0.0.1:@@c@@
"""


def test_reload_keeps_states_and_traffic_follows(tmp_path):
    """The ops workflow: CLI changes, `show servers state` into the file, a new
    process on the same configuration: it starts with them, and routes by them."""
    sock, state = str(tmp_path / "lb.sock"), str(tmp_path / "state")
    with HttpBackend("A") as a, HttpBackend("B") as b, HttpBackend("C") as c:
        ports = {"a": a.port, "b": b.port, "c": c.port}
        text = RELOAD.format(sock=sock, state=state)
        with LbProcess(text, ports) as lb:
            wait_socket(sock)
            assert query(sock, "set server be/a state maint") == "\n"
            assert query(sock, "set weight be/b 3") == "\n"
            with open(state, "w") as f:
                f.write(query(sock, "show servers state"))
            ports = lb.ports
        with LbProcess(text, ports) as lb2:
            wait_socket(sock)
            rows = {r.split(",")[1]: r.split(",") for r in query(sock, "show stat").splitlines()
                    if r.startswith("be,")}
            assert rows["a"][17] == "MAINT" and rows["b"][18] == "3"
            seen = [who(lb2.ports["fe"]) for _ in range(8)]
            assert "A" not in seen and seen.count("B") == 6 and seen.count("C") == 2, seen
            # HAProxy's line for the maintenance kept (its dump says stopped)
            lb2.wait_for_line("[WARNING]  ", timeout=2)
            assert [ln.split(" : ", 1)[1] for ln in lb2.lines() if "[WARNING]" in ln] == [
                "config : Server be/a is DOWN, changed from server-state after a reload. 2 "
                "active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining "
                "in queue."]


def test_named_server_starts_on_the_files_address(tmp_path):
    with HttpBackend("A") as a:
        state = tmp_path / "state"
        state.write_text("1\n" + state_line(3, "be", 1, "a", "2 0 1 1 5 1 0 0 0 0",
                                             port=a.port) + "\n")
        text = (f"global\n server-state-file {state}\n" + HEAD
                + " load-server-state-from-file global\nfrontend fe\n bind 127.0.0.1:@@fe@@\n"
                f" default_backend be\nbackend be\n server a nosuch.invalid:{a.port}\n")
        with LbProcess(text) as lb:
            assert who(lb.ports["fe"]) == "A"


def test_restored_warm_up_ramps_the_weight(tmp_path):
    """A server dumped while warming up (slowstart) warms up again."""
    listening = socket.create_server(("127.0.0.1", 0))  # a's check passes
    port = listening.getsockname()[1]  # (the file's port is the one used)
    (tmp_path / "state").write_text(
        "1\n" + state_line(2, "be", 1, "a", "1 0 10 10 0 6 3 4 6 0", port=port) + "\n"
        + state_line(2, "be", 2, "b", "1 0 10 10 0 1 0 1 0 0") + "\n")
    text, _ = render(f"global\n server-state-file {tmp_path}/state\n" + HEAD
                     + " load-server-state-from-file global\nbackend be\n"
                     " server a 127.0.0.1:@@a@@ check inter 60s slowstart 1s weight 10\n"
                     " server b 127.0.0.1:@@b@@ slowstart 1s weight 10\n",
                     {"a": port})
    cfg = load_text(text).config
    assert cfg is not None
    st = State(cfg)
    notes = [d.text for d in restore_server_states(st)]
    assert notes == [f"Server be/{n} is UP, reason: Unknown, check duration: 0ms. "
                     f"{k} active and 0 backup servers online. 0 sessions requeued, 0 total "
                     f"in queue." for n, k in (("a", 2), ("b", 2))]
    be = st.backends["be"]

    async def run() -> list[tuple[int, int]]:
        from healthcheck.runner import HealthChecker

        hc = HealthChecker(st, lambda *a: None)
        await hc.start()
        try:
            first = [(s.op, s.eweight) for s in be.servers]
            await asyncio.sleep(1.3)
            return first + [(s.op, s.eweight) for s in be.servers]
        finally:
            await hc.stop()

    with listening:
        res = asyncio.run(run())
    assert res[0] == (OP_STARTING, 1) and res[1] == (OP_STARTING, 1)
    assert res[2] == (OP_RUNNING, 10) and res[3] == (OP_RUNNING, 10)


def test_master_reload_restores_the_dumped_states(tmp_path):
    """`lb -W`: a server put in maintenance, dumped, stays in maintenance across a
    SIGUSR2 reload, in the master's view and in the new workers' traffic from their
    first request."""
    from tests.backends import WsBackend
    from tests.test_reload import Master, http_get

    state = tmp_path / "state"
    with HttpBackend("web") as web, WsBackend("w1") as wsb, \
            Master(web.port, wsb.port, extra_global=f"    server-state-file {state}") as m:
        assert http_get(m.port)[0] == 200
        assert m.cli("set server bweb/s1 state maint") == "\n"
        deadline = time.monotonic() + 5  # the master pushes the change to its worker
        while http_get(m.port)[0] != 503 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert http_get(m.port)[0] == 503
        state.write_text(m.cli("show servers state"))
        m.rewrite(m.text().replace("defaults\n    mode http\n",
                                   "defaults\n    mode http\n"
                                   "    load-server-state-from-file global\n"))
        m.reload(2)
        m.lb.wait_for_line("config : Server bweb/s1 is DOWN, changed from server-state "
                           "after a reload.")
        rows = [r.split(",") for r in m.cli("show stat").splitlines()]
        assert next(r[17] for r in rows if r[:2] == ["bweb", "s1"]) == "MAINT"
        assert [w["generation"] for w in m.ctl("workers") if w["current"]] == [2]
        # the new worker read the master's states before it accepted anything
        assert [http_get(m.port)[0] for _ in range(5)] == [503] * 5


def test_a_worker_starts_on_the_masters_states(tmp_path, monkeypatch):
    """The master hands each new worker its server states in a file the worker
    applies before it accepts anything (no window where a server in maintenance
    gets a request of the new generation)."""
    from lb import master

    cfg = load_text(HEAD + "backend be\n server a 127.0.0.1:1\n server b 127.0.0.1:2\n").config
    assert cfg is not None
    mine = State(cfg)
    mine.backends["be"].by_name["a"].set_admin(1, True, time.time())
    mine.backends["be"].by_name["b"].set_weight(7, time.time())
    path = tmp_path / "states.json"
    path.write_text(json.dumps(master.servers_message(mine)))
    monkeypatch.setenv(master.STATES_ENV, str(path))
    theirs = master._initial_state(cfg)
    a, b = theirs.backends["be"].servers
    assert a.in_maint and not a.usable and b.uweight == 7
    monkeypatch.setenv(master.STATES_ENV, str(tmp_path / "gone.json"))
    assert not master._initial_state(cfg).backends["be"].servers[0].in_maint


def test_garbage_files_never_raise(tmp_path):
    """Random bytes, random fields: warnings at most, never an exception."""
    import random

    rng = random.Random(38)
    cfg = load_text(f"global\n server-state-file {tmp_path}/state\n" + HEAD
                    + " load-server-state-from-file global\nbackend b\n"
                    " server s 127.0.0.1:1 check slowstart 5s\n server t 127.0.0.1:2 disabled\n"
                    "backend c\n load-server-state-from-file local\n"
                    f" server-state-file-name {tmp_path}/local\n server s 127.0.0.1:3\n").config
    assert cfg is not None
    words = ["0", "1", "2", "3", "4", "5", "8", "12", "-1", "256", "257", "x", "-", "b", "c",
             "s", "t", "127.0.0.1", "::1", "99999", "1e3", "é", "\x00", "0x10"]
    seen: set[str] = set()
    for i in range(300):
        if i % 3 == 0:
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(200)))
        else:
            lines = [rng.choice(["1", "1", "2", "", "x"])]
            for _ in range(rng.randrange(6)):
                # a valid line for a server, then a few fields changed at random
                f = state_line(3, rng.choice("bc"), 1, rng.choice("st"), rng.choice(
                    ["0 0 1 1 5 1 0 0 0 0", "3 8 1 1 5 6 3 2 6 0", "1 1 2 1 5 6 3 1 6 0"])
                ).split(" ")
                for _ in range(rng.randrange(3)):
                    f[rng.randrange(len(f))] = rng.choice(words)
                lines.append(" ".join(f[:rng.randrange(18, 27)]))
            body = ("\n".join(lines) + rng.choice(["\n", ""])).encode()
        (tmp_path / "state").write_bytes(body)
        (tmp_path / "local").write_bytes(body)
        notes = restore_server_states(State(cfg))
        assert all(d.severity == "warning" for d in notes)
        seen.update(d.text.split(" ")[0] for d in notes)
    assert {"Server", "server-state", "config:", "Proxy"} <= seen  # every path was taken
