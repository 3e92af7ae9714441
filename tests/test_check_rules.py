"""A check's rule list as HAProxy 2.6.12 builds and runs it, compared live.

- Parsing (`lb -c` against `haproxy -c`, line for line): the order HAProxy demands
  (`connect` first when there is one; http-check send / expect / connect order),
  a refused rule dropping the rules before it, `connect`'s options (`port` with a
  sample expression, `addr` read as an address, `proto`, missing arguments), and
  `set-var(...)` / `set-var-fmt(...)` / `unset-var(...)` in the check context.
- Run time, both proxies side by side (`show stat`): step numbers that count comment
  and variable rules, comment lines handed on to the rules after them, check
  variables (scopes, conditions, `set-var-fmt`, `unset-var`; no `txn.` in a check),
  `connect port <expr>`, the port of `addr`, and a section's own rules (or its own
  `option httpchk`) replacing those of its defaults.
"""

from __future__ import annotations

import pytest

from lb.config import load_text
from tests.lbproc import RawBackend, free_port
from tests.support_e2e import SideBySide
from tests.test_check_formats import HTTP, TCP, _answer, _checks, same_as_haproxy
from tests.test_config_haproxy_diff import HEAD

SAME_LINES = [
    # order
    TCP + "tcp-check send x\n tcp-check connect",
    TCP + "tcp-check comment x\n tcp-check set-var(check.a) int(1)\n tcp-check connect",
    TCP + "tcp-check connect\n tcp-check connect port 5",
    TCP + "tcp-check send x\n tcp-check connect\n tcp-check connect",
    HTTP + "http-check expect status 200\n http-check send uri /",
    HTTP + "http-check send uri /\n http-check send uri /x",
    HTTP + "http-check connect\n http-check connect",
    HTTP + "http-check send uri /\n http-check expect status 200\n http-check connect\n "
           "http-check expect status 200",
    HTTP + "http-check send uri /\n http-check expect status 200\n http-check connect\n "
           "http-check expect status 200\n http-check send uri /",
    HTTP + "http-check send uri /\n http-check expect status 200\n http-check bogus\n "
           "http-check send uri /",
    HTTP + "http-check expect status 200\n http-check expect status 201",
    # variables
    TCP + "tcp-check set-var(check.a) int(1)", TCP + "tcp-check set-var(txn.a) int(1)",
    TCP + "tcp-check set-var(check.a) path", TCP + "tcp-check set-var(check.a) bogus",
    TCP + 'tcp-check set-var-fmt(check.a) "%[srv_name]"',
    TCP + 'tcp-check set-var-fmt(check.a) "%[path]"', TCP + "tcp-check set-var-fmt(check.a) x%",
    TCP + "tcp-check set-var-fmt(check.a)", TCP + "tcp-check unset-var(check.a)",
    TCP + "tcp-check unset-var(check.a) x", TCP + "tcp-check unset-var(check.a,ifexists)",
    TCP + "tcp-check set-var(check.a)", TCP + "tcp-check set-var(bogus.a) int(1)",
    TCP + "tcp-check set-var(check.a) int(1) if TRUE", TCP + "tcp-check set-var",
    TCP + "tcp-check set-var(check.a", TCP + "tcp-check set-var() int(1)",
    TCP + "tcp-check set-var(check.a,ifgt) int(1)",
    TCP + "tcp-check set-var(check.a,bogus) int(1)",
    TCP + "tcp-check set-var(check.a) int(1),bogus",
    TCP + 'tcp-check set-var(check.a) "%[srv_name]"',
    TCP + "tcp-check set-varx(check.a) int(1)", TCP + "tcp-check set-var-fmtx(check.a) x",
    TCP + "tcp-check unset-varz", TCP + "tcp-check set-var(check.a)) int(1)",
    HTTP + "http-check set-var(check.a) int(1)", HTTP + "http-check set-var(check.a) path",
    # connect
    TCP + "tcp-check set-var(check.port) int(80)\n tcp-check connect port var(check.port)",
    TCP + "tcp-check connect port path", TCP + "tcp-check connect port bogus",
    TCP + "tcp-check connect port int(0)", TCP + "tcp-check connect port str(80),add(1)",
    TCP + "tcp-check connect port 0", TCP + "tcp-check connect port 65536",
    TCP + "tcp-check connect port 080", TCP + "tcp-check connect port 5 port int(3)",
    TCP + "tcp-check connect port -5", TCP + "tcp-check connect port",
    HTTP + "http-check connect port var(check.port)",
    TCP + "tcp-check connect addr 127.0.0.1:5", TCP + "tcp-check connect addr 127.0.0.1:5-6",
    TCP + "tcp-check connect addr 127.0.0.1:+5", TCP + "tcp-check connect addr bogus.invalid",
    TCP + "tcp-check connect addr ::1", TCP + "tcp-check connect addr [::1]:5",
    TCP + "tcp-check connect addr", TCP + "tcp-check connect addr localhost",
    TCP + "tcp-check connect proto none", TCP + "tcp-check connect proto h1",
    TCP + "tcp-check connect proto fcgi", TCP + "tcp-check connect proto quic",
    TCP + "tcp-check connect proto", HTTP + "http-check connect proto h1",
    HTTP + "http-check connect proto none", HTTP + "http-check connect proto bogus",
    TCP + "tcp-check connect sni", TCP + "tcp-check connect alpn",
    TCP + "tcp-check connect comment", TCP + "tcp-check connect alpn h2",
    TCP + "tcp-check connect port 5 comment c addr 127.0.0.1 sni s default send-proxy "
          "linger via-socks4",
    # comments
    TCP + "tcp-check comment a b", TCP + "tcp-check comment", HTTP + "http-check comment a b",
]


@pytest.mark.parametrize("stmt", SAME_LINES)
def test_check_rules_like_haproxy(tmp_path, capsys, stmt: str) -> None:  # type: ignore[no-untyped-def]
    same_as_haproxy(tmp_path, capsys, "listen l\n bind :18080\n " + stmt +
                     "\n server s 127.0.0.1:80\n")


@pytest.mark.parametrize("stmt", ["tcp-check bogus", "http-check 1 2 3",
                                  "tcp-check connect port 1", "http-check expect status 200",
                                  "tcp-check comment x", "http-check send-state"])
def test_check_rules_in_a_frontend_like_haproxy(tmp_path, capsys, stmt: str) -> None:  # type: ignore[no-untyped-def]
    """HAProxy warns that the rule is ignored, and still reads it: a bad one is an
    error."""
    same_as_haproxy(tmp_path, capsys, "frontend f\n bind :18080\n " + stmt +
                     "\n default_backend b\nbackend b\n server s 127.0.0.1:80\n")


# whole sections: a server without a port needs a first `connect` that names one
SAME_BODIES = [
    "option tcp-check\n tcp-check connect port var(check.x)\n server s 127.0.0.1 check",
    "option tcp-check\n tcp-check connect addr 127.0.0.1:80\n server s 127.0.0.1 check",
    "option tcp-check\n tcp-check connect addr 127.0.0.1\n server s 127.0.0.1 check",
    "option tcp-check\n tcp-check comment x\n tcp-check connect port 80\n"
    " server s 127.0.0.1 check",
    "option tcp-check\n tcp-check send x\n server s 127.0.0.1 check",
    "option httpchk\n http-check connect port 80\n server s 127.0.0.1 check",
    "option httpchk\n http-check connect port 80\n http-check send uri /\n"
    " server s 127.0.0.1 check",
    "option httpchk\n server s 127.0.0.1 check", "server s 127.0.0.1 check",
]


@pytest.mark.parametrize("body", SAME_BODIES)
def test_server_without_port_like_haproxy(tmp_path, capsys, body: str) -> None:  # type: ignore[no-untyped-def]
    same_as_haproxy(tmp_path, capsys, "listen l\n bind :18080\n " + body + "\n")


def test_a_multiplexer_lb_cannot_speak_is_named() -> None:
    """HAProxy would speak HTTP/2 (or FastCGI) to the server; lb's checks speak
    HTTP/1.1, and say so."""
    res = load_text(HEAD + "backend b\n option httpchk\n http-check connect proto h2\n"
                    " server s 127.0.0.1:80 check\n")
    assert res.ok
    assert any("'proto h2' is not supported by lb; the check speaks HTTP/1.1" in d.message()
               for d in res.diagnostics)


# --------------------------------------------------------------------------- run time

SETTINGS = """\
  mode http
  timeout connect 1s
  timeout client 1s
  timeout server 1s
  timeout check 1s
  default-server check inter 400ms fall 1 rise 1
"""

RUN_CONFIG = """
global
  stats socket {sock} level admin
defaults
{settings}frontend fe
  bind 127.0.0.1:{fe}
  default_backend t1
backend t1
  option tcp-check
  tcp-check comment c1
  tcp-check send PING\\r\\n
  tcp-check expect string nope
  server s1 127.0.0.1:{raw}
backend t2
  option tcp-check
  tcp-check send PING\\r\\n
  tcp-check comment c2
  tcp-check expect string +PONG
  tcp-check expect string nope
  server s1 127.0.0.1:{raw}
backend t3
  option tcp-check
  tcp-check comment c3
  tcp-check connect
  tcp-check send PING\\r\\n
  tcp-check expect string nope
  server s1 127.0.0.1:{raw}
backend t4
  option tcp-check
  tcp-check comment c4
  tcp-check connect port 1
  server s1 127.0.0.1:{raw}
backend t5
  option tcp-check
  tcp-check send PING\\r\\n
  tcp-check comment c5
  tcp-check expect string nope comment own
  server s1 127.0.0.1:{raw}
backend t6
  option tcp-check
  tcp-check set-var(check.x) int(1)
  tcp-check comment c6
  tcp-check send PING\\r\\n
  tcp-check expect string nope
  server s1 127.0.0.1:{raw}
backend t7
  option tcp-check
  tcp-check comment c7
  tcp-check set-var(check.x) int(1)
  tcp-check expect string nope
  server s1 127.0.0.1:{raw} inter 4s
backend t8
  option tcp-check
  tcp-check comment c8
  tcp-check expect string nope
  server s1 127.0.0.1:{raw} inter 4s
backend h1
  option httpchk
  http-check comment hc1
  http-check expect status 500
  server s1 127.0.0.1:{web}
backend h2
  option httpchk
  http-check comment hc2
  http-check send uri /x
  http-check expect status 500
  server s1 127.0.0.1:{web}
backend h3
  option httpchk
  http-check send uri /x
  http-check comment hc3
  http-check expect status 500
  server s1 127.0.0.1:{web}
backend h4
  option httpchk
  http-check comment hc4
  http-check connect port 1
  server s1 127.0.0.1:{web}
backend v1
  option tcp-check
  tcp-check set-var(check.a) str(A)
  tcp-check set-var(txn.t) str(T)
  tcp-check set-var(sess.s) str(S)
  tcp-check set-var(proc.p) str(P)
  tcp-check set-var(req.r) str(R)
  tcp-check set-var(check.f) int(5) if FALSE
  tcp-check set-var-fmt(check.g) "g-%[srv_name]-%b"
  tcp-check set-var(check.u) str(U)
  tcp-check unset-var(check.u)
  tcp-check set-var(check.e) str(E) junk words
  tcp-check set-var(check.c,ifnotexists) str(C2)
  tcp-check send PING\\r\\n
  tcp-check expect string NOPE on-error "a=%[var(check.a)] t=%[var(txn.t)] s=%[var(sess.s)] p=%[var(proc.p)] r=%[var(req.r)] f=%[var(check.f)] g=%[var(check.g)] u=%[var(check.u)] e=%[var(check.e)] c=%[var(check.c)]"
  server s1 127.0.0.1:{raw}
backend v2
  option tcp-check
  tcp-check set-var(check.port) int({raw})
  tcp-check connect port var(check.port)
  tcp-check send PING\\r\\n
  tcp-check expect string +PONG
  server s1 127.0.0.1:1
backend v3
  option tcp-check
  tcp-check connect port var(check.nope)
  tcp-check send PING\\r\\n
  tcp-check expect string +PONG
  server s1 127.0.0.1:{raw}
backend v4
  option tcp-check
  tcp-check set-var(check.port) int(1)
  tcp-check connect port var(check.port)
  server s1 127.0.0.1:{raw}
backend v5
  option tcp-check
  tcp-check connect port str(1x)
  server s1 127.0.0.1:{raw}
backend v6
  option tcp-check
  tcp-check connect port int(-65535)
  server s1 127.0.0.1:{raw}
backend v7
  option tcp-check
  tcp-check set-var(check.c) str(C1)
  tcp-check set-var(check.c,ifnotexists) str(C2)
  tcp-check send PING\\r\\n
  tcp-check expect string NOPE on-error "c=%[var(check.c)]"
  server s1 127.0.0.1:{raw}
backend v8
  option httpchk
  http-check set-var(check.u) str(/x)
  http-check send uri-lf "%[var(check.u)]"
  http-check expect status 500 on-error "u=%[var(check.u)]"
  server s1 127.0.0.1:{web}
backend a1
  option tcp-check
  tcp-check connect addr 127.0.0.1:1
  tcp-check send PING\\r\\n
  tcp-check expect string +PONG
  server s1 127.0.0.1:{raw}
backend a2
  option tcp-check
  tcp-check connect port {raw} addr localhost
  tcp-check send PING\\r\\n
  tcp-check expect string +PONG
  server s1 127.0.0.1:1
backend a3
  option tcp-check
  tcp-check connect addr 127.0.0.1:1
  tcp-check send PING\\r\\n
  tcp-check expect string +PONG
  server s1 127.0.0.1:{raw} port {raw}
defaults tc
{settings}  option tcp-check
  tcp-check send PING\\r\\n
  tcp-check expect string nope
backend d1 from tc
  server s1 127.0.0.1:{raw}
backend d2 from tc
  tcp-check send PING\\r\\n
  tcp-check expect string +PONG
  server s1 127.0.0.1:{raw}
backend d3 from tc
  tcp-check comment x
  server s1 127.0.0.1:{raw}
backend d4 from tc
  option tcp-check
  server s1 127.0.0.1:{raw}
backend d5 from tc
  tcp-check send PING\\r\\n
  option httpchk
  option tcp-check
  server s1 127.0.0.1:{raw}
backend d6 from tc
  option httpchk
  server s1 127.0.0.1:{web}
defaults hc
{settings}  option httpchk GET /d
  http-check expect status 500
backend e1 from hc
  server s1 127.0.0.1:{web}
backend e2 from hc
  http-check expect status 200
  server s1 127.0.0.1:{web} inter 4s
backend e3 from hc
  http-check send uri /b
  server s1 127.0.0.1:{web}
backend e4 from hc
  option httpchk GET /f
  server s1 127.0.0.1:{web}
backend e5 from hc
  http-check expect status 200
  option httpchk GET /f
  server s1 127.0.0.1:{web}
backend e6 from hc
  http-check send-state
  server s1 127.0.0.1:{web}
"""


def test_check_rules_run_like_haproxy(tmp_path) -> None:  # type: ignore[no-untyped-def]
    raw = RawBackend(_answer(b"+PONG s1\r\n")).__enter__()
    web = RawBackend(_answer(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")).__enter__()
    pair = SideBySide(str(tmp_path), lambda kind, sock, log: RUN_CONFIG.format(
        sock=sock, fe=free_port(), raw=raw.port, web=web.port, settings=SETTINGS))
    try:
        rows = pair.settle(_checks, looks=2, timeout=20)
        assert pair.cli("get var proc.p") == "proc.p: type=str value=<P>\n"
    finally:
        pair.close()
        raw.__exit__()
        web.__exit__()
    # what HAProxy 2.6.12 said (the comparison above is with it, live)
    nomatch = "TCPCHK did not match content 'nope' at step "
    assert rows["t1"][3] == nomatch + "3"  # (the comment line counts; send took it)
    assert rows["t2"][3] == nomatch + "4 comment: c2"
    assert rows["t3"][3] == nomatch + "4"
    assert rows["t4"][3] == "Connection refused at step 2 of tcp-check (connect port 1) " \
                            "comment: 'c4'"
    assert rows["t5"][3] == nomatch + "3 comment: own"
    assert rows["t6"][3] == nomatch + "4"
    assert rows["t7"][1:] == ("L7TOUT", "", " at step 3 of tcp-check (expect string 'nope')")
    assert rows["t8"][3] == " at step 2 of tcp-check (expect string 'nope') comment: 'c8'"
    assert rows["h1"][3] == "OK comment: hc1"
    assert rows["h2"] == ("DOWN", "L7STS", "200", "OK")  # (the send took the comment)
    assert rows["h4"] == ("DOWN", "L4CON", "", "Connection refused")
    assert rows["h3"][3] == "OK comment: hc3"
    assert rows["v1"][3] == "a=A t= s=S p=P r= f=5 g=g-s1-v1 u= e=E c=C2"
    assert rows["v2"][0] == rows["v3"][0] == "UP"
    assert rows["v4"][3] == "Connection refused at step 2 of tcp-check (connect)"
    assert rows["v5"][1] == rows["v6"][1] == "L4CON"
    assert rows["v7"][3] == "c=C1"
    assert rows["v8"][3] == "u=/x"
    assert rows["a1"][1] == rows["a3"][1] == "L4CON"  # (the port of `addr` comes first)
    assert rows["a2"][0] == "UP"
    assert rows["d1"][0] == rows["d4"][0] == "DOWN"  # (the defaults' rules)
    assert rows["d2"][0] == "UP" and rows["d3"][1:] == ("L4OK", "", "")
    assert rows["d5"][3] == "(tcp-check)" and rows["d6"][0] == "UP"
    assert rows["e1"][0] == rows["e6"][0] == "DOWN"
    assert rows["e2"][1:] == ("L7TOUT", "", "")  # (its own rules: no request at all)
    assert rows["e3"][0] == rows["e4"][0] == rows["e5"][0] == "UP"
