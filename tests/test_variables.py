"""Variables: `set-var`, `set-var-fmt`, `unset-var`, `var()`, the global `set-var`, and
the CLI's `get var` / `set var` (experimental mode), with HAProxy's scopes.

Compared with HAProxy 2.6.12 on 127.0.0.1 (2026-11-25) with ``HTTP_CFG`` below: the
first request of a connection answered ``proc=1 sess=1 txn=1 req=reqval c=first i=7
b=1 ip=127.0.0.1 boot=hello num=41 f=x-41-y im=8 bm=2``, the second request on the
same connection ``sess=2`` (txn stays 1), a new connection ``sess=1`` again while
``proc`` kept counting, and ``/unset`` left ``i`` and ``im`` empty. The response rules
saw ``x-req`` empty (request-side `req.` variables end with the request), ``x-txn: 1``
and ``x-res: zz``. With ``TCP_CFG`` a GET went to b2, a HEAD to b1 and a POST to b3,
and `get var proc.c` then said ``type=sint value=<3>`` (one per connection). The CLI answers are HAProxy's,
byte for byte (``CLI_CASES``); the configuration errors are compared live with
`haproxy -c` below.
"""

from __future__ import annotations

import http.client
import socket
import time

import pytest

from lb.match import sample, uses, variables
from tests.backends import HttpBackend
from tests.lbproc import LbProcess
from tests.stats_support import query, wait_socket
from tests.test_config_haproxy_diff import HEAD, assert_check_like_haproxy

pytestmark = pytest.mark.timeout(90)


# ----------------------------------------------------------------- names, conditions


@pytest.mark.parametrize("name,tail,err", [
    ("txn.x", "", None), ("proc.a_b.C9", "", None), ("check.x", "", None),
    ("", "", variables.EMPTY_NAME),
    ("foo", "", variables.bad_scope("foo")), ("txn.", "", variables.bad_scope("txn.")),
    ("TXN.x", "", variables.bad_scope("TXN.x")),
    ("txn.a-b", ")", "invalid syntax at char '-b)'"),
    ("txn.a-b", ",ifexists)", "invalid syntax at char '-b,ifexists)'"),
    ("txn.é", ")", "invalid syntax at char 'é)'"),
])
def test_name_rules(name: str, tail: str, err: str | None) -> None:
    assert variables.name_error(name, tail) == err


@pytest.mark.parametrize("old,new,conds,ok", [
    (None, b"v", (), True), (None, b"v", ("ifexists",), False), (b"o", b"v", ("ifset",), True),
    (None, b"v", ("ifnotexists",), True), (b"o", b"v", ("ifnotset",), False),
    (None, b"", ("ifempty",), True), (None, b"v", ("ifempty",), False),
    (None, b"", ("ifnotempty",), False), (5, 3, ("ifgt",), True), (5, 7, ("ifgt",), False),
    (5, 7, ("iflt",), True), (5, 5, ("iflt",), False),
    # HAProxy 2.6.12 compares two integers only (checked on 127.0.0.1, 2026-11-25)
    (None, 3, ("ifgt",), True), (None, 3, ("iflt",), True), (b"1", 2, ("ifgt",), True),
    (5, b"9", ("ifgt",), True), (True, 0, ("ifgt",), True), (b"abc", 1, ("ifgt",), True),
    (b"o", b"v", ("ifexists", "ifnotempty"), True), (b"o", b"", ("ifexists", "ifnotempty"), False),
])
def test_set_var_conditions(old: object, new: object, conds: tuple[str, ...], ok: bool) -> None:
    assert variables.allowed(old, new, conds) is ok


def test_the_uses_table_names_only_known_fetches() -> None:
    assert set(uses.USES) - {"fhdr"} <= set(sample.FETCHES)
    assert uses.CONSTANT <= set(sample.FETCHES)


# ------------------------------------------------------- configuration, against HAProxy

RULES = [
    "http-request set-var(txn.x,ifbad) str(a)", "http-request set-var(txn.x,) str(a)",
    "http-request set-var(txn.x,ifexists,ifgt) int(1)", "http-request set-var(foo) str(a)",
    "http-request set-var(txn.x)", "http-request set-var(txn.x) str(a) junk",
    "http-request set-var() str(a)", "http-request set-var(txn.) str(a)",
    "http-request set-var(txn.a-b) str(a)", "http-request set-var(txn.a b) str(a)",
    "http-request set-var(txn.ab)x str(a)", "http-request set-var(txn.a,if-b) str(a)",
    "http-request set-var(foo,ifbad) str(a)", "http-request set-var(check.x) str(a)",
    "http-request set-var-fmt(txn.x,ifexists) %[src]", "http-request set-var-fmt(txn.a-b) x",
    "http-request unset-var(txn.x)", "http-request unset-var(txn.x) junk",
    "http-request unset-var(foo)", "http-request unset-var(txn.x,ifexists)",
    "http-request unset-var()", "http-request unset-var", "http-request set-var",
    "http-request set-var(txn.x", "http-response set-var(txn.x) path",
    "http-response set-var(txn.x,ifexists) path", "http-response set-var(req.x) str(a)",
    "http-after-response set-var(txn.x) status", "http-after-response set-var(foo) str(a)",
    "http-after-response unset-var(txn.x) junk", "http-request set-var(txn.x) res.hdr(x)",
    "http-request set-var(txn.x) var(foo)", "http-request set-var(txn.x) var(txn.a-b)",
    "http-request set-var(txn.x) var(txn.)", "http-request set-var(txn.x) var(txn.y,)",
    "http-request set-var(txn.x) str(a),set-var(txn.a-b)",
    "http-request set-var(txn.x) str(a),set-var()",
    "http-request set-var(txn.x) str(a),concat(,foo,)",
    "http-request set-var(txn.x) int(1),add(foo.x)", "http-request set-var(txn.x) int(1),add()",
    "http-request set-var(txn.x) int(1),add(1x)",
    "http-request set-var(txn.x) str(a),strcmp(txn.a-b)",
    "http-request set-var(txn.x) bin(zz)", "http-request set-var(txn.x) bin(414)",
    "http-request set-var(txn.x) bin()", "http-request set-var(txn.x) ipv4(1.2.3)",
    "http-request set-var(txn.x) ipv4()", "http-request set-var(txn.x) ipv4( 1.2.3.4)",
    "http-request set-var(txn.x) ipv6(1.2.3.4)", "http-request set-var(txn.x) ipv6(::ffff:1.2.3.4)",
    "http-request set-var(txn.x) meth", "http-request set-var(txn.x) meth(a,b)",
    "tcp-request connection set-var(sess.x) path", "tcp-request connection set-var(sess.x) hdr(x)",
    "tcp-request connection set-var(sess.x) req.len", "tcp-request session set-var(sess.x) path",
    "tcp-request session set-var(sess.x) ssl_fc", "tcp-request connection set-var(sess.x) ssl_fc",
    "tcp-request content set-var(txn.x) res.hdr(x)", "tcp-request content set-var(txn.x) status",
    "tcp-request content set-var(txn.x) srv_name", "tcp-request connection set-var(txn.x) src junk",
    "tcp-request connection set-var(sess.x)", "tcp-request content unset-var(txn.x) junk",
    "tcp-request content set-var(txn.x,ifbad) str(a)", "tcp-request content set-var(foo) str(a)",
    "tcp-request connection set-var-fmt(txn.x) %[path]", "tcp-request content set-var",
    "tcp-request content set-var(txn.x) path", "tcp-request connection unset-var(sess.x)",
]


@pytest.mark.parametrize("stmt", RULES)
def test_rule_messages_match_haproxy(tmp_path, capsys, stmt):  # type: ignore[no-untyped-def]
    path = str(tmp_path / "r.cfg")
    with open(path, "w") as fh:
        fh.write(HEAD + "listen l\n bind :18080\n " + stmt + "\n server s 127.0.0.1:80\n")
    assert_check_like_haproxy(path, capsys)


GLOBALS = [
    "set-var txn.x str(a)", "set-var proc.x src", "set-var proc.x", "set-var",
    "set-var proc.x str(a) junk", "set-var-fmt proc.x", "set-var-fmt proc.x a b",
    "set-var-fmt proc.x %[src]", "set-var proc.x nosuch", "set-var foo str(a)",
    "set-var proc.x var(proc.y)", "set-var proc.x hdr(host)", "set-var proc.x be_conn(l)",
    "set-var proc.a-b str(a)", "set-var proc. str(a)", "set-var-fmt txn.x a",
    "set-var proc.x bin(zz)", "set-var proc.x ipv4(1.2.3.4)\n set-var proc.y env(HOME)",
]


@pytest.mark.parametrize("stmt", GLOBALS)
def test_global_messages_match_haproxy(tmp_path, capsys, stmt):  # type: ignore[no-untyped-def]
    path = str(tmp_path / "g.cfg")
    with open(path, "w") as fh:
        fh.write("global\n " + stmt + "\n" + HEAD + "frontend f\n bind :18080\n")
    assert_check_like_haproxy(path, capsys)


_ARG = {"tbl": "l", "int": "1", "str": "x", "hdr": "host", "occ": "1", "srv": "l/s",
        "be": "l", "fe": "l", "usr": "u", "var": "txn.y"}
_ARGS = {"bool": "1", "bin": "41", "ipv4": "1.2.3.4", "ipv6": "::1"}


def test_every_fetch_in_a_global_set_var_like_haproxy(tmp_path, capsys):  # type: ignore[no-untyped-def]
    """One `set-var proc.vN <fetch>` per fetch lb knows, in one file: the same ALERT
    for each line (HAProxy reads on after one). Left out: fhdr (an lb extension) and
    unique-id, which crashes HAProxy 2.6.12 there (lb refuses it: it needs a request)."""
    lines = []
    for name, fd in sorted(sample.FETCHES.items()):
        if name in ("fhdr", "unique-id"):
            continue
        arg = _ARGS.get(name) or ",".join(_ARG[a] for a in fd.args[:fd.min_args])
        lines.append(f" set-var proc.v{len(lines)} {name}{f'({arg})' if arg else ''}")
    path = str(tmp_path / "f.cfg")
    with open(path, "w") as fh:
        fh.write("global\n" + "\n".join(lines) + "\nuserlist u\n user a insecure-password b\n"
                 + HEAD + "listen l\n bind :18080\n stick-table type ip size 1 store "
                 "gpc0,gpc1,gpt0,conn_cnt,http_req_rate(1s)\n server s 127.0.0.1:80\n")
    assert_check_like_haproxy(path, capsys)


# the fetch classes and where they fail, one fetch for each (a whole matrix per
# context would be one HAProxy run per line: HAProxy stops at a bad http rule)
_REPRESENTATIVES = ["path", "hdr(host)", "method", "res.hdr(x)", "status", "be_name", "src",
                    "ssl_fc", "fe_name", "req.len", "srv_name", "nbsrv(l)", "sc0_kbytes_in",
                    "src_conn_cnt(l)", "str(a)"]


@pytest.mark.parametrize("rule", ["tcp-request connection set-var(sess.x)",
                                  "tcp-request session set-var(sess.x)",
                                  "tcp-request content set-var(txn.x)",
                                  "http-request set-var(txn.x)", "http-response set-var(txn.x)",
                                  "http-after-response set-var(txn.x)"])
@pytest.mark.parametrize("fetch", _REPRESENTATIVES)
def test_fetch_availability_by_context_like_haproxy(tmp_path, capsys, rule, fetch):  # type: ignore[no-untyped-def]
    path = str(tmp_path / "c.cfg")
    with open(path, "w") as fh:
        fh.write(HEAD + f"listen l\n bind :18080\n stick-table type ip size 1\n {rule} {fetch}\n"
                 " server s 127.0.0.1:80\n")
    assert_check_like_haproxy(path, capsys)


# ------------------------------------------------------------------ at run time

HTTP_CFG = """
global
    stats socket @@SOCK@@ level admin
    set-var proc.boot str(hello)
    set-var proc.num int(41)
    set-var-fmt proc.f "x-%[var(proc.num)]-y"
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend fe
    bind 127.0.0.1:@@fe@@
    http-request set-var(proc.n) var(proc.n,0),add(1)
    http-request set-var(sess.n) var(sess.n,0),add(1)
    http-request set-var(txn.n) var(txn.n,0),add(1)
    http-request set-var(req.r) str(reqval)
    http-request set-var(txn.c,ifnotexists) str(first)
    http-request set-var(txn.c,ifnotexists) str(second)
    http-request set-var(txn.i) int(7)
    http-request set-var(txn.b) bool(1)
    http-request set-var(txn.ip) src
    http-request unset-var(txn.i) if { path /unset }
    http-request return status 200 content-type text/plain lf-string "proc=%[var(proc.n)] sess=%[var(sess.n)] txn=%[var(txn.n)] req=%[var(req.r)] c=%[var(txn.c)] i=%[var(txn.i)] b=%[var(txn.b)] ip=%[var(txn.ip)] boot=%[var(proc.boot)] num=%[var(proc.num)] f=%[var(proc.f)] im=%[var(txn.i),add(1)] bm=%[var(txn.b),add(1)]" if { path /ret } || { path /unset }
    default_backend be
backend be
    http-request set-header X-Seen "%[var(txn.n)]/%[var(req.r)]"
    http-response set-header X-Req "%[var(req.r)]"
    http-response set-header X-Txn "%[var(txn.n)]"
    http-response set-var(res.z) str(zz)
    http-response set-header X-Res "%[var(res.z)]"
    server s1 127.0.0.1:@@be@@
"""

_REST = ("req=reqval c=first i=7 b=1 ip=127.0.0.1 boot=hello num=41 f=x-41-y im=8 bm=2")


@pytest.fixture(scope="module")
def http_lb(tmp_path_factory):  # type: ignore[no-untyped-def]
    sock = str(tmp_path_factory.mktemp("vars") / "s.sock")
    with HttpBackend() as be, LbProcess(HTTP_CFG.replace("@@SOCK@@", sock),
                                        ports={"be": be.port}) as lb:
        wait_socket(sock)
        yield lb, be, sock


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[bytes, http.client.HTTPResponse]:
    conn.request("GET", path)
    r = conn.getresponse()
    return r.read(), r


def _proc_n(sock: str) -> int:
    answer = query(sock, "get var proc.n")
    return int(answer.split("<")[1].split(">")[0]) if "value=" in answer else 0


def test_scopes_at_run_time_like_haproxy(http_lb) -> None:  # type: ignore[no-untyped-def]
    lb, be, sock = http_lb
    port = lb.ports["fe"]
    start = _proc_n(sock)
    c1 = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    body1, _ = _get(c1, "/ret")
    body2, _ = _get(c1, "/ret")  # same connection: sess goes on, txn starts again
    c2 = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    body3, _ = _get(c2, "/unset")
    assert body1.decode() == f"proc={start + 1} sess=1 txn=1 {_REST}"
    assert body2.decode() == f"proc={start + 2} sess=2 txn=1 {_REST}"
    assert body3.decode() == (f"proc={start + 3} sess=1 txn=1 "
                              + _REST.replace("i=7", "i=").replace("im=8", "im="))
    # through the backend: the request side sees req., the response side does not
    _body, r = _get(c2, "/fwd")
    assert r.status == 200
    assert be.requests[-1].header("x-seen") == "1/reqval"
    assert (r.getheader("x-req"), r.getheader("x-txn"), r.getheader("x-res")) == ("", "1", "zz")
    c1.close()
    c2.close()
    assert query(sock, "get var proc.n") == f"proc.n: type=sint value=<{start + 4}>\n"


# (commands, HAProxy 2.6.12's answer) on a process started from HTTP_CFG
CLI_CASES = [
    ("get var proc.boot", "proc.boot: type=str value=<hello>\n"),
    ("get var proc.num", "proc.num: type=sint value=<41>\n"),
    ("get var proc.f", "proc.f: type=str value=<x-41-y>\n"),
    ("get var proc.nope", "Variable not found.\n\n"),
    ("get var txn.n", "Variable not found.\n\n"),
    ("get var", "Missing process-wide variable identifier.\n\n"),
    ("get var foo", "Variable not found.\n\n"),
    ("operator; get var proc.num", "\nproc.num: type=sint value=<41>\n"),
    ("set var proc.x int(100)", "This command is restricted to experimental mode only.\n\n"),
    ("experimental-mode", "experimental-mode is OFF\n\n"),
    ("experimental-mode on; experimental-mode", "\nexperimental-mode is ON\n\n"),
    ("experimental-mode foo; experimental-mode", "\nexperimental-mode is OFF\n\n"),
    ("experimental-mode on; operator; set var proc.x int(1)",
     "\n\nThis command is restricted to experimental mode only.\n\n"),
    ("experimental-mode on; set var proc.q fmt abc%[var(proc.num)]; get var proc.q",
     "\n\nproc.q: type=str value=<abc41>\n"),
    ("experimental-mode on; set var txn.x expr int(1)",
     "\n'set var': cannot set variable 'txn.x', only scope 'proc' is permitted here.\n"),
    ("experimental-mode on; set var proc.z", "\nMissing either 'expr', 'fmt' or expression.\n\n"),
    ("experimental-mode on; set var proc.z expr", "\nunknown fetch method 'expr'\n"),
    ("experimental-mode on; set var proc.z expr src",
     "\nfetch method 'set-var(proc.z)' extracts information from 'client address', none of "
     "which is available here\n"),
    ("experimental-mode on; set var proc.ip expr ipv4(1.2.3.4); get var proc.ip",
     "\n\nproc.ip: type=ipv4 value=<1.2.3.4>\n"),
    ("experimental-mode on; set var proc.b expr bool(1); get var proc.b",
     "\n\nproc.b: type=bool value=<1>\n"),
    ("experimental-mode on; set var proc.bin expr bin(4142); get var proc.bin",
     "\n\nproc.bin: type=bin value=<AB>\n"),
    ("experimental-mode on; set var proc.m expr meth(GET); get var proc.m",
     "\n\nproc.m: type=meth value=<GET>\n"),
    ("experimental-mode on; set var proc.s fmt a b c; get var proc.s",
     "\n\nproc.s: type=str value=<a>\n"),
    ("experimental-mode on; set var proc.ip6 expr ipv6(::1); get var proc.ip6",
     "\n\nproc.ip6: type=ipv6 value=<::1>\n"),
    ("experimental-mode on; set var proc.n2 fmt %[src]",
     "\nsample fetch <src]> may not be reliably used here because it needs 'client address' "
     "which is not available here\n"),
    ("experimental-mode on; set var proc.boot str(a),ipmask(8); get var proc.boot",
     "\n\nproc.boot: type=str value=<hello>\n"),  # no sample: nothing changes
    ("experimental-mode on; set var foo int(1)", "\n" + variables.bad_scope("foo") + "\n"),
    ("experimental-mode on; set var proc.a-b int(1)", "\ninvalid syntax at char '-b)'\n"),
    ("experimental-mode on; set var proc.e expr str(); get var proc.e",
     "\n\nproc.e: type=str value=<>\n"),
]


@pytest.mark.parametrize("line,answer", CLI_CASES)
def test_cli_answers_like_haproxy(http_lb, line: str, answer: str) -> None:  # type: ignore[no-untyped-def]
    _lb, _be, sock = http_lb
    assert query(sock, line) == answer


def test_cli_levels_and_help(http_lb) -> None:  # type: ignore[no-untyped-def]
    _lb, _be, sock = http_lb
    assert query(sock, "user; get var proc.num").startswith("\nPermission denied\n")
    assert query(sock, "operator; experimental-mode on").startswith("\nPermission denied\n")
    assert "get var <name>" in query(sock, "help")
    assert "set var <name>" not in query(sock, "help")
    assert "  set var <name> [fmt|expr] {<fmt>|<expr>}: set variable from an expression or a " \
        "format\n" in query(sock, "experimental-mode on; help")


def test_cli_set_var_is_seen_by_the_rules(http_lb) -> None:  # type: ignore[no-untyped-def]
    lb, _be, sock = http_lb
    assert query(sock, "experimental-mode on; set var proc.boot str(changed)") == "\n\n"
    c = http.client.HTTPConnection("127.0.0.1", lb.ports["fe"], timeout=5)
    body, _ = _get(c, "/ret")
    c.close()
    assert " boot=changed " in body.decode()
    query(sock, "experimental-mode on; set var proc.boot str(hello)")


TCP_CFG = """
global
    stats socket @@SOCK@@ level admin
defaults
    mode tcp
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend ft
    bind 127.0.0.1:@@ft@@
    tcp-request inspect-delay 1s
    tcp-request connection set-var(sess.n) int(5)
    tcp-request connection set-var(proc.c) var(proc.c,0),add(1)
    tcp-request content set-var(sess.m) str(b2) if { req.payload(0,3) -m str GET }
    tcp-request content unset-var(sess.n) if { req.payload(0,4) -m str HEAD }
    use_backend %[var(sess.m)] if { var(sess.m) -m found }
    use_backend b3 if { var(sess.n) -m int 5 }
    default_backend b1
backend b1
    server s 127.0.0.1:@@s1@@
backend b2
    server s 127.0.0.1:@@s2@@
backend b3
    server s 127.0.0.1:@@s3@@
"""


def test_tcp_rules_route_by_variables_like_haproxy(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sock = str(tmp_path / "t.sock")
    with HttpBackend("b1") as s1, HttpBackend("b2") as s2, HttpBackend("b3") as s3, \
            LbProcess(TCP_CFG.replace("@@SOCK@@", sock),
                      ports={"s1": s1.port, "s2": s2.port, "s3": s3.port}) as lb:
        wait_socket(sock)
        socket.create_connection(("127.0.0.1", lb.ports["ft"]), timeout=5).close()
        deadline = time.monotonic() + 5
        while query(sock, "get var proc.c") != "proc.c: type=sint value=<1>\n" \
                and time.monotonic() < deadline:  # (a connection that sent nothing counts)
            time.sleep(0.05)
        assert query(sock, "get var proc.c") == "proc.c: type=sint value=<1>\n"
        got = {}
        for method in ("GET", "HEAD", "POST"):
            c = http.client.HTTPConnection("127.0.0.1", lb.ports["ft"], timeout=5)
            c.request(method, "/", body=b"" if method == "POST" else None)
            r = c.getresponse()
            r.read()
            got[method] = r.getheader("x-server")
            c.close()
        assert got == {"GET": "b2", "HEAD": "b1", "POST": "b3"}
        assert query(sock, "get var proc.c") == "proc.c: type=sint value=<4>\n"


def test_master_worker_shows_and_sets_the_workers_variables(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`lb -W`: the master's stats socket answers `get var` from the worker's values
    (pulled with the counters) and sends `set var` to the worker."""
    sock = str(tmp_path / "m.sock")
    run = tmp_path / "run"
    run.mkdir()
    with HttpBackend() as be, LbProcess(HTTP_CFG.replace("@@SOCK@@", sock), ports={"be": be.port},
                                        args=("-W",), env={"LB_RUN_DIR": str(run)}) as lb:
        wait_socket(sock)
        c = http.client.HTTPConnection("127.0.0.1", lb.ports["fe"], timeout=5)
        for _ in range(3):
            _get(c, "/ret")
        deadline = time.monotonic() + 10
        while _proc_n(sock) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _proc_n(sock) == 3
        assert query(sock, "experimental-mode on; set var proc.boot str(mw)") == "\n\n"
        assert query(sock, "get var proc.boot") == "proc.boot: type=str value=<mw>\n"
        deadline = time.monotonic() + 10
        while " boot=mw " not in _get(c, "/ret")[0].decode() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert " boot=mw " in _get(c, "/ret")[0].decode()
        c.close()


CONDS_CFG = """
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend f1
    bind 127.0.0.1:@@f1@@
    http-request set-var(txn.a) int(5)
    http-request set-var(txn.a,ifgt) int(3)
    http-request set-var(txn.b) int(5)
    http-request set-var(txn.b,ifgt) int(7)
    http-request set-var(txn.c) int(5)
    http-request set-var(txn.c,iflt) int(3)
    http-request set-var(txn.d) int(5)
    http-request set-var(txn.d,iflt) int(7)
    http-request set-var(txn.e) str(x)
    http-request set-var(txn.e,ifempty) str()
    http-request set-var(txn.f,ifexists) str(y)
    http-request set-var(txn.g) str()
    http-request set-var(txn.g,ifnotempty) str(z)
    http-request set-var(txn.h) str(abc)
    http-request set-var(txn.h,ifgt) int(1)
    http-request return status 200 content-type text/plain lf-string "a=%[var(txn.a)] b=%[var(txn.b)] c=%[var(txn.c)] d=%[var(txn.d)] e=%[var(txn.e)] f=%[var(txn.f)] g=%[var(txn.g)] h=%[var(txn.h)]"
frontend f2
    bind 127.0.0.1:@@f2@@
    http-request set-var(txn.a,ifgt) int(3)
    http-request set-var(txn.b) int(5)
    http-request set-var(txn.b,ifgt) str(2)
    http-request set-var(txn.c) str(9)
    http-request set-var(txn.c,ifgt) int(2)
    http-request set-var(txn.d,iflt) int(3)
    http-request set-var(txn.e) bool(1)
    http-request set-var(txn.e,ifgt) int(0)
    http-request return status 200 content-type text/plain lf-string "a=%[var(txn.a)] b=%[var(txn.b)] c=%[var(txn.c)] d=%[var(txn.d)] e=%[var(txn.e)]"
"""


def test_set_var_conditions_at_run_time_like_haproxy() -> None:
    """The answers HAProxy 2.6.12 gave for CONDS_CFG (127.0.0.1, 2026-11-25)."""
    from tests.lbproc import LbThread
    with LbThread(CONDS_CFG) as lb:
        got = []
        for fe in ("f1", "f2"):
            c = http.client.HTTPConnection("127.0.0.1", lb.ports[fe], timeout=5)
            got.append(_get(c, "/")[0].decode())
            c.close()
    assert got == ["a=3 b=5 c=5 d=7 e= f= g=z h=1", "a=3 b=2 c=2 d=3 e=0"]
