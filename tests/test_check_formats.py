"""Health checks' log-format strings and expect options, against HAProxy 2.6.12.

- Parsing: `tcp-check send-lf|send-binary-lf`, `expect string-lf|binary-lf`,
  `http-check send uri-lf|body-lf|hdr` (every header value is a format, those
  hidden in `option httpchk` too), `expect hdr name-lf|value-lf`, `on-success`,
  `on-error`, `status-code`, the statuses and the rest of HAProxy's expect grammar
  (`!string`, one pattern per rule, `min-recv` range, ...): the same alerts, line for
  line, as `haproxy -c`.
- The check context: a fetch is refused where HAProxy refuses it (no client, no
  request, no frontend), for every fetch lb knows.
- Run time: what the checks send (bytes, compared with what HAProxy sent) and what
  they report (`show stat` status, code and `last_chk`), both proxies side by side.
"""

from __future__ import annotations

import csv
import io
import os
import re
import socket
import subprocess
import sys
import time

import pytest

from lb.__main__ import check_mode, parse_args
from lb.match import sample
from lb.match.fmt import LOG_VARIABLES
from tests.lbproc import LbProcess, RawBackend, free_port
from tests.stats_support import query
from tests.support_e2e import Haproxy, SideBySide
from tests.test_config_haproxy_diff import HAPROXY, HEAD
from tests.test_log_format_check import _fetch_call


def _messages(text: str) -> list[str]:
    """ALERT/WARNING lines after the pid, with the lines that continue them."""
    out: list[str] = []
    for line in text.splitlines():
        mt = re.match(r"\[(ALERT|WARNING)\]\s+\(\d+\) : (.*)", line)
        if mt:
            out.append(f"{mt.group(1)}: {mt.group(2)}")
        elif out and not line.startswith("["):
            out.append("  " + line)
    return out


TCP = "option tcp-check\n "
HTTP = "option httpchk\n "

SAME_LINES = [
    # log-format strings in the check context
    TCP + "tcp-check send-lf %[foo]", TCP + "tcp-check send-lf %[req.hdr(host)]",
    TCP + "tcp-check send-lf %[fe_name]", TCP + "tcp-check send-binary-lf %[foo]",
    TCP + "tcp-check send-lf x%", TCP + "tcp-check send-lf %[srv_name]|%b|%s",
    TCP + "tcp-check expect string-lf %[nope]", TCP + "tcp-check expect binary-lf %[method]",
    TCP + "tcp-check expect string x on-success %[foo]",
    TCP + "tcp-check expect string x on-error %[path]",
    TCP + "tcp-check expect string-lf %[srv_name] on-error %[be_name]",
    HTTP + "http-check send uri-lf %[foo]", HTTP + "http-check send body-lf %[path]",
    HTTP + "http-check send hdr x %[foo]", HTTP + "http-check send hdr x 100%",
    HTTP + "http-check send hdr x %[req.hdr(host)]",
    HTTP + "http-check send uri-lf /%[srv_name] hdr x %[be_name] body-lf %[nbsrv]",
    HTTP + "http-check expect string-lf %[foo]", HTTP + "http-check expect hdr name-lf %[foo]",
    HTTP + "http-check expect hdr name x value-lf %[foo]",
    HTTP + "http-check expect status 200 on-error %[req.len]",
    "option httpchk GET / HTTP/1.1\\r\\nX:\\ 100%",
    "option httpchk GET / HTTP/1.1\\r\\nX:\\ %[foo]",
    # status-code: a sample expression of the check context
    TCP + "tcp-check expect string x status-code foo",
    TCP + "tcp-check expect string x status-code path",
    TCP + "tcp-check expect string x status-code int(5)",
    HTTP + "http-check expect status 200 status-code %[x]",
    HTTP + "http-check expect string x status-code path,lower",
    TCP + "tcp-check expect string x status-code",
    # statuses, min-recv, negation, one pattern, options after `!`
    TCP + "tcp-check expect string x ok-status bogus",
    TCP + "tcp-check expect string x error-status bogus",
    TCP + "tcp-check expect string x tout-status bogus",
    TCP + "tcp-check expect string x ok-status l7ok error-status L7okc tout-status l4tout",
    TCP + "tcp-check expect min-recv -5 string x", TCP + "tcp-check expect min-recv",
    TCP + "tcp-check expect !string x", TCP + "tcp-check expect !!string x",
    TCP + "tcp-check expect ! ! string x", TCP + "tcp-check expect string x string y",
    TCP + "tcp-check expect ! comment x string y", TCP + "tcp-check expect ! min-recv 3 string x",
    TCP + "tcp-check expect string x on-success", TCP + "tcp-check expect comment",
    TCP + "tcp-check expect string x comment", TCP + "tcp-check expect min-recv 5",
    TCP + "tcp-check expect comment x", TCP + "tcp-check expect custom",
    TCP + "tcp-check expect !", TCP + "tcp-check expect status 200",
    TCP + "tcp-check expect hdr name x", TCP + "tcp-check expect binary zz",
    TCP + "tcp-check expect binary 4", TCP + "tcp-check expect binary z",
    TCP + "tcp-check send-binary z", TCP + "tcp-check send-binary 4z",
    HTTP + "http-check expect status 200 string x", HTTP + "http-check expect status 300-200",
    HTTP + "http-check expect status 200-", HTTP + "http-check expect status 200,",
    HTTP + "http-check expect !status 200", HTTP + "http-check expect custom",
    HTTP + "http-check expect binary-lf x",
    # hdr / fhdr
    HTTP + "http-check expect hdr name-lf -m reg x", HTTP + "http-check expect hdr name -m",
    HTTP + "http-check expect hdr name", HTTP + "http-check expect hdr name -m str",
    HTTP + "http-check expect hdr name -m bogus x",
    HTTP + "http-check expect hdr name x value -m bogus y",
    HTTP + "http-check expect hdr name x value-lf -m reg y",
    HTTP + "http-check expect hdr name x value", HTTP + "http-check expect hdr name x value -m",
    HTTP + "http-check expect hdr name x value -m str",
    HTTP + "http-check expect hdr name x extra", HTTP + "http-check expect ! hdr name x",
    HTTP + "http-check expect fhdr name-lf x-%[srv_name] value-lf %[be_name]",
    # http-check send's words
    HTTP + "http-check send hdr host a hdr Host b",
    HTTP + "http-check send hdr content-length 5 hdr transfer-encoding x",
    HTTP + "http-check send hdr x", HTTP + "http-check send meth",
    HTTP + "http-check send uri-lf",
]


def same_as_haproxy(tmp_path, capsys, text: str) -> None:  # type: ignore[no-untyped-def]
    """`lb -c` (in this process) and `haproxy -c` on HEAD + ``text``: the same alerts
    and warnings, line for line, and the same exit code."""
    path = str(tmp_path / "m.cfg")
    with open(path, "w") as fh:
        fh.write(HEAD + text)
    h = subprocess.run([HAPROXY, "-c", "-f", path], capture_output=True, text=True, timeout=30)
    rc = check_mode(parse_args(["-c", "-f", path]))
    # (HAProxy also prints "(null)" as a warning after a tcp-check rule it reads in a
    # frontend: a message it never filled in; lb does not copy that line)
    theirs = [m for m in _messages(h.stderr) if not m.endswith(" : (null)")]
    assert _messages(capsys.readouterr().err) == theirs
    assert rc == h.returncode


@pytest.mark.parametrize("stmt", SAME_LINES)
def test_check_lines_like_haproxy(tmp_path, capsys, stmt: str) -> None:  # type: ignore[no-untyped-def]
    same_as_haproxy(tmp_path, capsys, "listen l\n bind :18080\n " + stmt +
                    "\n server s 127.0.0.1:80\n")


def test_every_fetch_in_a_check_format_like_haproxy(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`tcp-check send-lf "%[<fetch>]"` for each fetch lb knows: refused (or not) by
    both, with the same message; forty lines a file (each one an error at most)."""
    t = ["  timeout client 1s", "  timeout server 1s", "  timeout connect 1s"]
    table = "  stick-table type ip size 1 store gpc0,gpc1,gpt0,conn_cnt,http_req_rate(1s)"
    calls = [_fetch_call(n, fd) for n, fd in sorted(sample.FETCHES.items()) if n != "fhdr"]
    refused = 0
    for start in range(0, len(calls), 40):
        lines = ["userlist u", " user a insecure-password b", "defaults", "  mode http", *t,
                 "listen l", table, "  option tcp-check"]
        lines += [f'  tcp-check send-lf "%[{c}]"' for c in calls[start:start + 40]]
        lines.append("  server s 127.0.0.1:80")
        path = tmp_path / f"f{start}.cfg"
        path.write_text("\n".join(lines) + "\n")
        runs = [subprocess.run([*cmd, "-c", "-f", str(path)], capture_output=True, text=True,
                               timeout=120, stdin=subprocess.DEVNULL)
                for cmd in ([sys.executable, "-m", "lb"], [HAPROXY])]
        mine, theirs = (_messages(r.stderr) for r in runs)
        assert mine == theirs
        assert runs[0].returncode == runs[1].returncode
        refused += sum("may not be reliably used" in ln for ln in theirs)
    assert refused > 50  # (the request, its headers and buffer, the frontend, the client)


# --------------------------------------------------------------------------- run time


def _collect_then(reply: bytes):  # type: ignore[no-untyped-def]
    """A backend handler: record what comes until 0.3 s of silence, then answer."""
    def handler(c: socket.socket, be: RawBackend) -> None:
        c.settimeout(0.3)
        data = b""
        while True:
            try:
                chunk = c.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
        be.received.append(data)
        c.sendall(reply)
        c.close()
    return handler


SEND_CONFIG = """
defaults
  mode http
  timeout connect 1s
  timeout client 1s
  timeout server 1s
  timeout check 2s
global
  set-var proc.pv str(procval)
frontend fe
  bind 127.0.0.1:@@fe@@
  default_backend tcp
backend tcp
  option tcp-check
  tcp-check send-lf "A|%b|%s|%f|%ft|%si|%sp|%H|%ci|%cp|%fi|%ID|%{+Q}b|%%\\n"
  tcp-check send-lf "B|%[srv_name]|%[be_name]|%[be_id]|%[srv_id]|%[var(proc.pv)]|%[nbsrv]|%[src]|%[status]|%[unique-id]|%[str(k),upper]|%[int(3),add(4)]|%{+Q}[str(q)]|%{+Q}[var(txn.nope)]|%[env(LB_CHECK_ENV)]\\n"
  tcp-check send-binary-lf "%[str(4142),lower]0a"
  tcp-check send-lf "%[var(check.nope)]"
  tcp-check expect string OK
  server s1 127.0.0.1:@@raw@@ check inter 10s
backend web
  option httpchk GET /opt HTTP/1.1\\r\\nX-A:\\ 100%%\\r\\nHost:\\ h1
  http-check send hdr X-B "%[srv_name]" hdr X-Empty "%[var(check.nope)]" uri-lf "/u/%[be_name]" body-lf "b=%[nbsrv]" hdr content-length 7
  server s2 127.0.0.1:@@web@@ check inter 10s
backend web2
  option httpchk GET /opt HTTP/1.1\\r\\nX-A:\\ kept
  http-check send meth HEAD uri-lf "%[var(check.nope)]"
  server s3 127.0.0.1:@@web2@@ check inter 10s
"""


def _answer(reply: bytes):  # type: ignore[no-untyped-def]
    """A backend handler: answer the first bytes that come, and close."""
    def handler(c: socket.socket, be: RawBackend) -> None:
        c.settimeout(2)
        be.received.append(c.recv(65536))
        c.sendall(reply)
        c.close()
    return handler


def _sent(kind: str) -> list[bytes]:
    """The first check of each backend run by ``kind``: what each server received."""
    backends = {"raw": RawBackend(_collect_then(b"OK\n")),
                "web": RawBackend(_collect_then(b"HTTP/1.0 200 OK\r\n\r\n")),
                "web2": RawBackend(_collect_then(b"HTTP/1.0 200 OK\r\n\r\n"))}
    for be in backends.values():
        be.__enter__()
    ports = {name: be.port for name, be in backends.items()}
    ports["fe"] = free_port()
    env = {**os.environ, "LB_CHECK_ENV": "from-env"}
    try:
        proc = (LbProcess(SEND_CONFIG, ports=ports, env=env) if kind == "lb" else
                Haproxy(SEND_CONFIG, ports=ports, env=env))
        with proc:
            deadline = time.monotonic() + 10
            while any(not be.received for be in backends.values()):
                assert time.monotonic() < deadline, "a check never came"
                time.sleep(0.05)
        # (each run has its own ports: `%sp` shows them)
        return [be.received[0].replace(b"|%d|" % be.port, b"|PORT|")
                for be in backends.values()]
    finally:
        for be in backends.values():
            be.__exit__()


def test_what_checks_send_like_haproxy() -> None:
    """Byte for byte: fetches, converters, +Q on samples and variables, a variable
    that is not set (nothing, or `""` quoted), the hidden `option httpchk` headers
    replaced by `http-check send`'s, an empty header left out, an empty URI as "/",
    `content-length` from the rendered body, `send-binary-lf` decoded."""
    theirs = _sent("haproxy")
    assert theirs[0].startswith(b"A|tcp|s1|CHECKS-FE|CHECKS-FE|127.0.0.1|")  # (as seen)
    assert _sent("lb") == theirs


STATUS_CONFIG = """
global
  stats socket {sock} level admin
defaults
  mode http
  timeout connect 1s
  timeout client 1s
  timeout server 1s
  timeout check 1s
  default-server check inter 400ms fall 1 rise 1
frontend fe
  bind 127.0.0.1:{fe}
  default_backend t1
backend t1
  option tcp-check
  tcp-check send-lf "PING %[srv_name]\\r\\n"
  tcp-check expect string-lf "+PONG %[srv_name]"
  server s1 127.0.0.1:{raw}
backend t2
  option tcp-check
  tcp-check send PING\\r\\n
  tcp-check expect string-lf "nope-%[srv_name]" comment cmt
  server s1 127.0.0.1:{raw}
backend t3
  option tcp-check
  tcp-check send PING\\r\\n
  tcp-check expect binary-lf "%[str(zz)]"
  server s1 127.0.0.1:{raw}
backend t4
  option tcp-check
  tcp-check send PING\\r\\n
  tcp-check expect string x on-error "bad %[srv_name]" status-code int(42) error-status L7STS
  server s1 127.0.0.1:{raw}
backend t5
  option tcp-check
  tcp-check send PING\\r\\n
  tcp-check expect string-lf "%[var(check.nope)]"
  server s1 127.0.0.1:{raw}
backend t6
  option tcp-check
  tcp-check send-binary-lf "%[str(zz)]"
  tcp-check expect string x
  server s1 127.0.0.1:{raw}
backend t7
  option tcp-check
  tcp-check send PING\\r\\n
  tcp-check expect string-lf "+PONG" on-success "good %[be_name]" status-code int(9) ok-status L7OKC
  server s1 127.0.0.1:{raw}
backend t8
  option tcp-check
  tcp-check send PING\\r\\n
  tcp-check expect binary-lf "2b504f4e47" comment c8
  server s1 127.0.0.1:{raw}
backend t9
  option tcp-check
  tcp-check send PING\\r\\n
  tcp-check expect custom
  server s1 127.0.0.1:{raw}
backend h1
  option httpchk
  http-check send uri-lf "/%[srv_name]"
  http-check expect status 500 on-error "st %[srv_name]" status-code int(7) error-status L7RSP
  server s1 127.0.0.1:{web}
backend h2
  option httpchk
  http-check expect hdr name-lf "x-%[srv_name]" value-lf "nope" comment hi
  server s1 127.0.0.1:{web}
backend h3
  option httpchk
  http-check expect hdr name-lf "x-%[srv_name]" value-lf "%[be_name]" comment hi
  server s1 127.0.0.1:{web}
backend h4
  option httpchk
  http-check expect string-lf "%[srv_name]-body" on-success "ok %[srv_name]"
  server s1 127.0.0.1:{web}
backend h5
  option httpchk
  http-check expect string-lf "%[be_name]-body"
  server s1 127.0.0.1:{web}
backend h6
  option httpchk
  http-check expect status 200 status-code str(abc) on-success "%[str(x)]"
  server s1 127.0.0.1:{web}
backend h7
  option httpchk
  http-check expect ! string s1 comment hi on-error "e %[srv_id]"
  server s1 127.0.0.1:{web}
"""


def _checks(sock: str) -> dict[str, tuple[str, ...]] | None:
    """Each server's status, check status, code and `last_chk` (None while a check
    runs: HAProxy shows an empty text then)."""
    out = {}
    for d in csv.DictReader(io.StringIO(query(sock, "show stat").lstrip("# "))):
        if d["svname"] in ("FRONTEND", "BACKEND"):
            continue
        if d["check_status"].startswith("* "):
            return None
        out[d["pxname"]] = (d["status"], d["check_status"], d["check_code"], d["last_chk"])
    return out


def test_what_checks_report_like_haproxy(tmp_path) -> None:  # type: ignore[no-untyped-def]
    raw = RawBackend(_answer(b"+PONG s1\r\n")).__enter__()
    web = RawBackend(_answer(b"HTTP/1.1 200 OK\r\nx-s1: h3\r\ncontent-length: 7\r\n"
                                   b"\r\ns1-body")).__enter__()
    pair = SideBySide(str(tmp_path), lambda kind, sock, log: STATUS_CONFIG.format(
        sock=sock, fe=free_port(), raw=raw.port, web=web.port))
    try:
        rows = pair.settle(_checks, looks=2, timeout=15)
    finally:
        pair.close()
        raw.__exit__()
        web.__exit__()
    # what HAProxy 2.6.12 said (the comparison above is with it, live)
    assert rows["t2"] == ("DOWN", "L7RSP", "", "TCPCHK did not match content "
                          "(log-format string) at step 2 comment: cmt")
    assert rows["t3"][3] == ("Failed to parse hexastring resulting of eval of a "
                             "log-format string")
    assert rows["t4"] == ("DOWN", "L7STS", "42", "bad s1")
    assert rows["t5"][3] == "log-format string evaluated to an empty string"
    assert rows["t6"][3] == "tcp-check send : failed to build log-format string at step 1"
    assert rows["t7"] == ("NOLB", "L7OKC", "9", "good t7")
    assert rows["t8"] == ("UP", "L7OK", "0", "(tcp-check)")  # (no comment on success)
    assert rows["h1"] == ("DOWN", "L7RSP", "", "st s1")
    assert rows["h3"] == ("UP", "L7OK", "200", "")
    assert rows["h6"] == ("UP", "L7OK", "0", "x")  # ("abc" as a number: 0)
    assert rows["h7"] == ("DOWN", "L7RSP", "", "e 1 comment: hi")


def _every_variable(kind: str) -> dict[str, str]:
    """Each %-variable a check's `send-lf` rendered, digits as N (times, dates, ports,
    pids differ between two runs; their shapes and the words around them do not)."""
    names = [n for n in sorted(LOG_VARIABLES) if n != "pid"]
    text = "|".join(f"{n}=%{n}" for n in names)
    config = SEND_CONFIG.split("\nbackend tcp")[0] + (
        "\nbackend tcp\n  option tcp-check\n"
        f'  tcp-check send-lf "{text}\\n"\n  tcp-check expect string OK\n'
        "  server s1 127.0.0.1:@@raw@@ check inter 10s\n")
    be = RawBackend(_collect_then(b"OK\n")).__enter__()
    try:
        ports = {"raw": be.port, "fe": free_port()}
        with LbProcess(config, ports=ports) if kind == "lb" else Haproxy(config, ports=ports):
            deadline = time.monotonic() + 10
            while not be.received:
                assert time.monotonic() < deadline, "no check came"
                time.sleep(0.05)
    finally:
        be.__exit__()
    fields = be.received[0].decode().rstrip("\n").split("|")
    return {k: re.sub(r"\d+", "N", v) for k, v in (f.split("=", 1) for f in fields)}


def test_every_variable_in_a_check_like_haproxy() -> None:
    """Without a stream HAProxy prints `<BADREQ>` for the request, `PR` for the
    state, -1 for most times, 0 for counters, '+' before the sizes and times, the
    dates of the run, and the check connection's own address for %bi/%bp."""
    theirs = _every_variable("haproxy")
    assert theirs["HU"] == "<BADREQ>" and theirs["tsc"] == "PR--"  # (as seen)
    assert theirs["Tw"] == "-N" and theirs["Ta"] == "+N" and theirs["bi"] == "N.N.N.N"
    assert _every_variable("lb") == theirs
