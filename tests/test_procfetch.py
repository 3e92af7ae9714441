"""Fetches of the running process (``nbsrv``, ``be_conn``, ``connslots``, ``srv_is_up``,
``fe_conn``, timeouts, ``env``, ``date``, ``rand``, ``uuid``...), by lb and HAProxy 2.6.12.

Until session 29 lb refused every one of them ("unknown fetch method"), so a config
with the classic ``use_backend sorry if { nbsrv(app) lt 1 }`` did not load. Each
value below was read from HAProxy 2.6.12 with the same config; lb must give the
same. The load-time errors for names that do not exist are HAProxy's texts, read
from its ``-c`` output.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

import pytest

from lb.match import procfetch
from lb.state import ADMIN_FMAINT, ADMIN_IMAINT, ADMIN_RMAINT, OP_STOPPED
from tests.lbproc import LbProcess, RawBackend
from tests.support_e2e import HAPROXY, Haproxy, answer_ok, config_refusal

pytestmark = pytest.mark.timeout(60)

KINDS = ["lb", "haproxy"] if os.path.exists(HAPROXY) else ["lb"]

# (header, expression, value read from HAProxy 2.6.12); the frontend's rules run
# before the backend is chosen, the backend's after
FRONTEND = [
    ("nbsrv-be", "nbsrv(be)", b"1"),  # s1 only: s2 disabled, s3 down by its check
    ("nbsrv-bck", "nbsrv(bck)", b"1"),  # no active: the first backup takes it all
    ("nbsrv-allbck", "nbsrv(allbck)", b"2"),  # option allbackups: every backup
    ("nbsrv-dead", "nbsrv(dead)", b"0"),
    ("nbsrv-conv", "str(allbck),nbsrv", b"2"),
    ("nbsrv-zero", "nbsrv(zero)", b"0"),  # weight 0: not usable, not stopped
    ("connslots-zero", "connslots(zero)", b"8"),
    ("conn-free-zero", "be_conn_free(zero)", b"0"),
    ("be-conn", "be_conn(be)", b"0"),
    ("connslots-be", "connslots(be)", b"-1"),  # s1 has no maxconn
    ("connslots", "connslots(slots)", b"17"),  # (10 + 5) + (1 + 1); disabled skipped
    ("conn-free", "be_conn_free(slots)", b"11"),
    ("conn-free-be", "be_conn_free(be)", b"-1"),
    ("queue", "queue(slots)", b"0"),
    ("avg-queue", "avg_queue(slots)", b"0"),
    ("avg-queue-dead", "avg_queue(dead)", b"0"),
    ("be-sess-rate", "be_sess_rate(be)", b"0"),
    ("up-s1", "srv_is_up(be/s1)", b"1"),
    ("up-s2", "srv_is_up(be/s2)", b"0"),  # disabled
    ("up-s3", "srv_is_up(be/s3)", b"0"),  # its check failed
    ("up-b1", "srv_is_up(be/b1)", b"1"),
    ("srv-conn", "srv_conn(be/s1)", b"0"),
    ("srv-free", "srv_conn_free(slots/a)", b"10"),
    ("srv-free-nomax", "srv_conn_free(be/s1)", b"-1"),
    ("srv-queue", "srv_queue(be/s1)", b"0"),
    ("srv-queue-conv", "str(be/s1),srv_queue", b"0"),
    ("srv-weight", "srv_weight(be/s1)", b"7"),
    ("srv-iweight", "srv_iweight(be/s1)", b"7"),
    ("srv-uweight", "srv_uweight(be/s1)", b"7"),
    ("srv-sess-rate", "srv_sess_rate(be/s1)", b"0"),
    ("fe-conn", "fe_conn", b"1"),
    ("fe-conn-other", "fe_conn(fe2)", b"0"),
    ("fe-client-timeout", "fe_client_timeout", b"5000"),
    ("fe-defbe", "fe_defbe", b"be"),
    ("stopping", "stopping", b"0"),
    ("nbproc", "nbproc", b"1"),
    ("thread", "thread", b"0"),
    ("env", "env(LB_PROCFETCH_TEST)", b"from-the-env"),
    ("env-unset", "env(LB_PROCFETCH_UNSET)", b""),
    ("var-default", "var(txn.nope,dflt)", b"dflt"),
]
BACKEND = [
    ("be-conn-in-be", "be_conn", b"1"),  # the stream counts once it is assigned
    ("nbsrv-in-be", "nbsrv", b"1"),
    ("server-timeout", "be_server_timeout", b"5000"),
    ("tunnel-timeout", "be_tunnel_timeout", b"3600000"),
    ("srv-up-local", "srv_is_up(s3)", b"0"),
]
# checked by shape: they change from one request to the next
VOLATILE = [
    ("date", "date"),
    ("date-ms", "date(0,ms)"),
    ("date-offset", "date(3600)"),
    ("date-us", "date_us"),
    ("rand", "rand(10)"),
    ("uuid", "uuid"),
    # the harness's readiness probe may count as a session in the same second
    ("fe-sess-rate", "fe_sess_rate"),
    ("fe-req-rate", "fe_req_rate"),
]


# five-second timeouts and frontend `fe`, whose rules follow
FE_HEAD = """
defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:@@fe@@
"""


def _config() -> str:
    fe = "\n".join(f'    http-request set-header X-{h} "%[{e}]"' for h, e, _ in FRONTEND)
    fe += "\n" + "\n".join(f'    http-request set-header X-{h} "%[{e}]"' for h, e in VOLATILE)
    be = "\n".join(f'    http-request set-header X-{h} "%[{e}]"' for h, e, _ in BACKEND)
    return FE_HEAD + f"""{fe}
    default_backend be
frontend fe2
    bind 127.0.0.1:@@fe2@@
    default_backend be
backend be
    timeout tunnel 1h
{be}
    server s1 127.0.0.1:@@s1@@ weight 7
    server s2 127.0.0.1:@@s1@@ disabled
    server s3 127.0.0.1:@@closed@@ check inter 100ms fall 1 rise 1
    server b1 127.0.0.1:@@s1@@ backup
    server b2 127.0.0.1:@@s1@@ backup
backend bck
    server b1 127.0.0.1:@@s1@@ backup
    server b2 127.0.0.1:@@s1@@ backup
backend allbck
    option allbackups
    server b1 127.0.0.1:@@s1@@ backup
    server b2 127.0.0.1:@@s1@@ backup
backend dead
    server d1 127.0.0.1:@@s1@@ disabled
backend zero
    server z1 127.0.0.1:@@s1@@ weight 0 maxconn 4 maxqueue 4
backend slots
    server a 127.0.0.1:@@s1@@ maxconn 10 maxqueue 5
    server b 127.0.0.1:@@s1@@ maxconn 1 maxqueue 1
    server c 127.0.0.1:@@s1@@ maxconn 3 maxqueue 2 disabled
"""


def _proxy(kind: str, text: str, ports: dict[str, int]) -> LbProcess | Haproxy:
    """lb as a process (its health checks run there, not in an in-loop server)."""
    if kind == "lb":
        return LbProcess(text, ports=ports)
    return Haproxy(text, ports=ports, single_thread=True)


def _headers(head: bytes) -> dict[str, bytes]:
    out = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower().startswith(b"x-"):
            out[name[2:].decode().lower()] = value.strip()
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_process_fetch_values_match_haproxy(kind: str, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    monkeypatch.setenv("LB_PROCFETCH_TEST", "from-the-env")
    monkeypatch.delenv("LB_PROCFETCH_UNSET", raising=False)
    with RawBackend(answer_ok) as srv, \
            _proxy(kind, _config(), {"s1": srv.port}) as px:
        time.sleep(1.0)  # s3's checks fail (every 100 ms, fall 1)
        with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            got = b""
            while chunk := c.recv(65536):
                got += chunk
        assert got.startswith(b"HTTP/1.1 200 OK\r\n"), got
    (head,) = [h for h in srv.received if h]
    seen = _headers(head)
    want = {h: v for h, _, v in FRONTEND + BACKEND}
    assert {h: seen.get(h) for h in want} == want
    now = time.time()
    assert abs(int(seen["date"]) - now) < 5
    assert abs(int(seen["date-ms"]) - now * 1000) < 5000
    assert abs(int(seen["date-offset"]) - (now + 3600)) < 5
    assert 0 <= int(seen["date-us"]) < 1000000
    assert 0 <= int(seen["rand"]) < 10
    assert 1 <= int(seen["fe-sess-rate"]) <= 3
    assert 1 <= int(seen["fe-req-rate"]) <= 3
    assert re.fullmatch(rb"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                        seen["uuid"]), seen["uuid"]


SORRY = FE_HEAD + """    use_backend sorry if { nbsrv(app) lt 1 }
    default_backend app
backend app
    server a1 127.0.0.1:@@app@@ check inter 100ms fall 1 rise 1
backend sorry
    http-request return status 503 content-type text/plain string "down for maintenance"
"""


@pytest.mark.parametrize("kind", KINDS)
def test_nbsrv_sends_traffic_elsewhere_when_a_backend_is_down(kind: str) -> None:
    """The classic maintenance page: while app's one server passes its checks the
    request reaches it; once the server is gone and its check fails, `sorry` answers."""
    app = RawBackend(answer_ok)
    with _proxy(kind, SORRY, {"app": app.port}) as px:
        with app:
            time.sleep(0.5)
            first = _get(px.ports["fe"])
            assert first.startswith(b"HTTP/1.1 200 OK\r\n") and first.endswith(b"ok"), first
        deadline = time.monotonic() + 5
        while True:
            got = _get(px.ports["fe"])
            # (until the check fails, the dead server gives HAProxy's own 503)
            if got.endswith(b"down for maintenance") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert got.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), got
        assert got.endswith(b"down for maintenance"), got


def _get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        got = b""
        while chunk := c.recv(65536):
            got += chunk
    return got


# (statement in frontend fe, HAProxy 2.6.12's message after "config : ")
LOAD_ERRORS = [
    ("acl down nbsrv(nope) lt 1",
     "parsing [{f}:10]: unable to find backend 'nope' referenced in arg 1 of ACL keyword "
     "'nbsrv' in proxy 'fe'."),
    ("http-request set-header X %[be_conn(nope)]",
     "parsing [{f}:10]: unable to find backend 'nope' referenced in arg 1 of sample fetch "
     "keyword 'be_conn' in http-request expression in proxy 'fe'."),
    ("http-response set-header X %[be_conn(nope)]",
     "parsing [{f}:10]: unable to find backend 'nope' referenced in arg 1 of sample fetch "
     "keyword 'be_conn' in http-response response in proxy 'fe'."),
    ('log-format "%[queue(nope)]"',
     "parsing [{f}:10]: unable to find backend 'nope' referenced in arg 1 of sample fetch "
     "keyword 'queue' in log-format string in proxy 'fe'."),
    ("use_backend %[nbsrv(nope)]",
     "parsing [{f}:10]: unable to find backend 'nope' referenced in arg 1 of sample fetch "
     "keyword 'nbsrv' in use_backend expression in proxy 'fe'."),
    ("http-request redirect location /%[be_conn(nope)]",
     "parsing [{f}:10]: unable to find backend 'nope' referenced in arg 1 of sample fetch "
     "keyword 'be_conn' in redirect format string in proxy 'fe'."),
    ("http-request capture be_conn(nope) len 10",
     "parsing [{f}:10]: unable to find backend 'nope' referenced in arg 1 of ACL keyword "
     "'be_conn' in proxy 'fe'."),
    ("http-request deny if { nbsrv eq 0 }",
     "parsing [{f}:10]: proxy 'fe', referenced in arg 1 of ACL keyword 'nbsrv' in proxy "
     "'fe', has not backend capability."),
    ("http-request deny if { nbsrv(fe2) eq 0 }",
     "parsing [{f}:10]: unable to find backend 'fe2' referenced in arg 1 of ACL keyword "
     "'nbsrv' in proxy 'fe'."),
    ("http-request deny if { fe_conn(be) eq 0 }",
     "parsing [{f}:10]: unable to find frontend 'be' referenced in arg 1 of ACL keyword "
     "'fe_conn' in proxy 'fe'."),
    ("http-request deny if { srv_is_up }",
     "parsing [{f}:10]: missing server name in arg 1 of ACL keyword 'srv_is_up' in proxy "
     "'fe'."),
    ("http-request deny if { srv_is_up(s1) }",
     "parsing [{f}:10]: unable to find server 's1' in proxy 'fe', referenced in arg 1 of ACL "
     "keyword 'srv_is_up' in proxy 'fe'."),
    ("http-request deny if { srv_is_up(nope/s1) }",
     "parsing [{f}:10]: unable to find proxy 'nope' referenced in arg 1 of ACL keyword "
     "'srv_is_up' in proxy 'fe'."),
    ("http-request deny if { srv_is_up(be/x) }",
     "parsing [{f}:10]: unable to find server 'x' in proxy 'be', referenced in arg 1 of ACL "
     "keyword 'srv_is_up' in proxy 'fe'."),
    ("http-request set-header X %[srv_conn(be/s1/x)]",
     "parsing [{f}:10]: unable to find proxy 'be/s1' referenced in arg 1 of sample fetch "
     "keyword 'srv_conn' in http-request expression in proxy 'fe'."),
    ('http-request set-header X "%[nbsrv(x1)] %[fe_conn(x2)]"',
     "multiple argument resolution errors:\n"
     "        parsing [{f}:10]: unable to find backend 'x1' referenced in arg 1 of sample "
     "fetch keyword 'nbsrv' in http-request expression in proxy 'fe'.\n"
     "        parsing [{f}:10]: unable to find frontend 'x2' referenced in arg 1 of sample "
     "fetch keyword 'fe_conn' in http-request expression in proxy 'fe'."),
    ("http-request set-header X %[date(0,xs)]",
     "parsing [{f}:10] : error detected in frontend 'fe' while parsing 'http-request "
     "set-header' rule : failed to parse sample expression <date(0,xs)]> : invalid args in "
     "fetch method 'date' : expects 's', 'ms' or 'us', got 'xs'."),
    ("http-request set-header X %[uuid(3)]",
     "parsing [{f}:10] : error detected in frontend 'fe' while parsing 'http-request "
     "set-header' rule : failed to parse sample expression <uuid(3)]> : invalid args in "
     "fetch method 'uuid' : Unsupported UUID version: '3'."),
    ("http-request deny if { nbsrv(be,be) eq 0 }",
     "parsing [{f}:10] : error detected while parsing an 'http-request deny' condition : "
     "fetch method 'nbsrv' : expected ')' before ',be)' in ACL expression 'nbsrv(be,be)'."),
    ("http-request deny if { src(x) -m found }",
     "parsing [{f}:10] : error detected while parsing an 'http-request deny' condition : "
     "fetch method 'src' : expected ')' before 'x)' in ACL expression 'src(x)'."),
    ("http-request set-var-fmt(txn.x) %[nope]",
     "parsing [{f}:10] : error detected in frontend 'fe' while parsing 'http-request "
     "set-var-fmt(txn.x)' rule : failed to parse sample expression <nope]> : unknown fetch "
     "method 'nope'."),
    ("http-request set-var-fmt(x) a",
     "parsing [{f}:10] : error detected in frontend 'fe' while parsing 'http-request "
     "set-var-fmt(x)' rule : invalid variable name 'x'. A variable name must be start by its "
     "scope. The scope can be 'proc', 'sess', 'txn', 'req', 'res' or 'check'."),
    ("http-request deny if { url(x) -m found }",
     "parsing [{f}:10] : error detected while parsing an 'http-request deny' condition : "
     "ACL keyword 'url' : expected ')' before 'x)'."),
]

CHECK_CONFIG = """global
    log 127.0.0.1:514 local0
defaults
    mode http
    log global
    timeout connect 5s
    timeout client 5s
    timeout server 5s
frontend fe
    {statement}
    bind 127.0.0.1:18080
    default_backend be
frontend fe2
    bind 127.0.0.1:18082
    default_backend be
backend be
    server s1 127.0.0.1:18081
"""


@pytest.mark.parametrize(("statement", "message"), LOAD_ERRORS,
                         ids=[s for s, _ in LOAD_ERRORS])
def test_load_errors_are_haproxys(statement: str, message: str, tmp_path: os.PathLike) -> None:
    path = os.path.join(tmp_path, "p.cfg")
    with open(path, "w") as f:
        f.write(CHECK_CONFIG.format(statement=statement))
    want = message.format(f=path)
    assert config_refusal([sys.executable, "-m", "lb"], path) == want
    if os.path.exists(HAPROXY):
        assert config_refusal([HAPROXY], path) == want


def test_state_constants_match_lb_state() -> None:
    """lb.match may not import lb.state: procfetch keeps its own copies."""
    assert procfetch._ADMIN_MAINT == ADMIN_FMAINT | ADMIN_IMAINT | ADMIN_RMAINT
    assert procfetch._OP_STOPPED == OP_STOPPED


def test_the_classic_sorry_config_loads_in_lb(tmp_path: os.PathLike) -> None:
    path = os.path.join(tmp_path, "sorry.cfg")
    with open(path, "w") as f:
        f.write(SORRY.replace("@@fe@@", "18080").replace("@@app@@", "18081"))
    out = subprocess.run([sys.executable, "-m", "lb", "-c", "-f", path], capture_output=True,
                         text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
