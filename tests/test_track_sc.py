"""Stick counters: `track-sc0/1/2`, the `store` data of a stick table, the `sc_*`,
`src_*` and `table_*` samples, and rate limiting with them, by lb and HAProxy 2.6.12.

Until session 29 lb accepted `track-sc*` with a warning and tracked nothing, and
it did not know `sc_http_req_rate` and its family, so the usual rate-limiting
config did not load. Each expectation below is what HAProxy 2.6.12 did with the
same config and traffic; `show table` lines are compared without their address
and expiry.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from lb.config.model import StickTableSpec
from lb.sticktable import PeriodCounter, StickTable
from tests.lbproc import LbProcess, RawBackend
from tests.stats_support import query, wait_socket
from tests.support_e2e import HAPROXY, Haproxy, answer_ok, config_refusal
from tests.test_lifecycle import read_response

pytestmark = pytest.mark.timeout(60)

KINDS = ["lb", "haproxy"] if os.path.exists(HAPROXY) else ["lb"]

STORE = ("http_req_cnt,http_req_rate(10s),conn_cnt,conn_rate(10s),conn_cur,sess_cnt,"
         "sess_rate(10s),gpc0,gpc0_rate(10s),http_err_cnt,http_err_rate(10s),gpt0,gpc1")
# the samples each request shows its server: tracked, untracked and looked-up values
SAMPLES = ("sc_http_req_cnt(0) sc_http_req_rate(0) sc_conn_cnt(0) sc_conn_cur(0) "
           "sc0_http_err_cnt sc_get_gpc0(0) sc_trackers(0) sc_tracked(0) sc_tracked(1) "
           "sc_http_req_cnt(1) sc1_conn_cur src_http_req_cnt src_http_req_cnt(other) "
           "sc_http_req_cnt(0,other) req.hdr(x-client),table_http_req_cnt(fe) "
           "req.hdr(x-client),in_table(fe) str(zz),table_conn_cnt(fe) "
           "sc_get_gpc0(0,nogpc) sc_get_gpt0(0)")


# a stats socket, five-second timeouts and frontend `fe`, whose lines follow
HEAD = """
global
    stats socket {sock} level admin
defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:@@fe@@
"""


def _config(sock: str, rules: str, key: str = "string") -> str:
    header = " ".join(f"%[{s}]" for s in SAMPLES.split())
    return HEAD.format(sock=sock) + f"""    stick-table type {key} size 1k expire 30s store {STORE}
{rules}
    http-request set-header X-V "{header}"
    default_backend be
backend be
    server s1 127.0.0.1:@@s1@@
backend other
    stick-table type string size 1k store http_req_cnt
backend nogpc
    stick-table type string size 1k store conn_cnt
"""


@contextmanager
def _proxy(kind: str, rules: str, key: str = "string"
           ) -> Iterator[tuple[Any, RawBackend, str]]:
    sock = os.path.join(tempfile.mkdtemp(prefix="lbtest-sc-"), "s.sock")
    with RawBackend(answer_ok) as srv:
        text = _config(sock, rules, key)
        px = (LbProcess(text, ports={"s1": srv.port}) if kind == "lb"
              else Haproxy(text, ports={"s1": srv.port}, single_thread=True))
        with px:
            wait_socket(sock)
            yield px, srv, sock


def _table_lines(sock: str, name: str = "fe") -> list[str]:
    return [re.sub(r"^0x[0-9a-f]+: | exp=\d+", "", ln)
            for ln in query(sock, f"show table {name}").splitlines()[1:] if ln]


def _exchange(c: socket.socket, path: str, client: str = "alice") -> bytes:
    """One keep-alive exchange; the status line of its (whole) response."""
    c.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nX-Client: {client}\r\n\r\n".encode())
    return read_response(c).split(b"\r\n", 1)[0]


def _values(srv: RawBackend) -> list[bytes]:
    return [line.split(b":", 1)[1].strip() for h in srv.received if h
            for line in h.split(b"\r\n") if line.lower().startswith(b"x-v:")]


REQUEST_RULES = """    http-request track-sc0 req.hdr(x-client)
    http-request deny deny_status 404 if { path /nope }
    http-request sc-inc-gpc0(0) if { path /inc }
    http-request sc-set-gpt0(0) 7 if { path /inc }"""

# HAProxy 2.6.12, two keep-alive connections of three requests each (/, /inc, /nope)
REQUEST_TABLE = [
    "key=alice use=0 gpt0=7 gpc0=2 gpc0_rate(10000)=2 conn_cnt=6 conn_rate(10000)=6 "
    "conn_cur=0 sess_cnt=0 sess_rate(10000)=0 http_req_cnt=6 http_req_rate(10000)=6 "
    "http_err_cnt=2 http_err_rate(10000)=2 gpc1=0",
]
REQUEST_VALUES = [
    b"1 1 1 1 0 0 1 1 0   0 0 0 1 1 0 0 0",
    b"2 2 2 1 0 1 1 1 0   0 0 0 2 1 0 0 7",
    b"4 4 4 1 1 1 1 1 0   0 0 0 4 1 0 0 7",
    b"5 5 5 1 1 2 1 1 0   0 0 0 5 1 0 0 7",
]


@pytest.mark.parametrize("kind", KINDS)
def test_request_tracking_counts_as_haproxy(kind: str) -> None:
    with _proxy(kind, REQUEST_RULES) as (px, srv, sock):
        for _ in range(2):
            with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
                assert [_exchange(c, p) for p in ("/", "/inc", "/nope")] == [
                    b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK", b"HTTP/1.1 404 Not Found"]
        time.sleep(0.2)
        assert _table_lines(sock) == REQUEST_TABLE
        assert _values(srv) == REQUEST_VALUES


CONNECTION_RULES = """    tcp-request connection track-sc0 src
    http-request deny deny_status 403 if { path /nope }"""


@pytest.mark.parametrize("kind", KINDS)
def test_connection_tracking_counts_as_haproxy(kind: str) -> None:
    """Held for the connection (use=1, conn_cur=1), each request counted; an empty
    connection (a client that closes before sending anything) counts one request and
    one error in both."""
    with _proxy(kind, CONNECTION_RULES, key="ip") as (px, _, sock):
        socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5).close()
        time.sleep(0.3)
        base = _table_lines(sock)
        with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
            assert [_exchange(c, p) for p in ("/", "/", "/nope")] == [
                b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK", b"HTTP/1.1 403 Forbidden"]
            during = _table_lines(sock)
        time.sleep(0.3)
        after = _table_lines(sock)
    empty = ("key=127.0.0.1 use=0 gpt0=0 gpc0=0 gpc0_rate(10000)=0 conn_cnt=1 "
             "conn_rate(10000)=1 conn_cur=0 sess_cnt=1 sess_rate(10000)=1 http_req_cnt=1 "
             "http_req_rate(10000)=1 http_err_cnt=1 http_err_rate(10000)=1 gpc1=0")
    assert base == [empty]
    assert during == [
        "key=127.0.0.1 use=1 gpt0=0 gpc0=0 gpc0_rate(10000)=0 conn_cnt=2 conn_rate(10000)=2 "
        "conn_cur=1 sess_cnt=2 sess_rate(10000)=2 http_req_cnt=4 http_req_rate(10000)=4 "
        "http_err_cnt=2 http_err_rate(10000)=2 gpc1=0"]
    assert after == [during[0].replace("use=1", "use=0").replace("conn_cur=1", "conn_cur=0")]


RATE_LIMIT = """    http-request track-sc0 req.hdr(x-client)
    http-request deny deny_status 429 if { sc_http_req_rate(0) gt 3 }"""


@pytest.mark.parametrize("kind", KINDS)
def test_rate_limit_denies_past_the_limit_per_client(kind: str) -> None:
    """The usual rate limit: a client's fourth request within the period gets 429,
    another client is not affected."""
    with _proxy(kind, RATE_LIMIT) as (px, _, _sock):
        with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
            got = [_exchange(c, "/") for _ in range(3)]
        with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
            got.append(_exchange(c, "/"))
        with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
            got.append(_exchange(c, "/", client="bob"))
    assert got == [b"HTTP/1.1 200 OK"] * 3 + [b"HTTP/1.1 429 Too Many Requests",
                                              b"HTTP/1.1 200 OK"]


def test_period_counter_weights_the_previous_period() -> None:
    c = PeriodCounter()
    for _ in range(4):
        c.add(1000, 1000)
    assert c.read(1000, 1000) == 4
    c.add(2250, 1000)  # a new period: 4 before, 1 now, 3/4 of the old one still in
    assert c.read(2250, 1000) == 1 + 4 * 750 // 1000
    assert c.read(2999, 1000) == 1
    assert c.read(3500, 1000) == 1 * 500 // 1000
    assert c.read(5000, 1000) == 0


def test_tracked_entries_stay_while_used() -> None:
    table = StickTable("t", StickTableSpec("string", 1, 32, 1.0, stores=(("conn_cur", None),)),
                       with_server=False)
    e = table.get_or_create(b"a", 0.0)
    assert e is not None
    e.use = 1
    assert table.lookup(b"a", 5.0) is e  # expired, but in use
    assert table.get_or_create(b"b", 5.0) is None  # full of entries in use
    e.use = 0
    assert table.get_or_create(b"b", 6.0) is not None


# (statement in frontend fe, HAProxy 2.6.12's message after "config : ")
LOAD_ERRORS = [
    ("stick-table type ip size 1k store foo",
     "parsing [{f}:9] : stick-table: unknown store option 'foo'."),
    ("stick-table type ip size 1k store http_req_rate",
     "parsing [{f}:9] : stick-table: missing argument to store option 'http_req_rate'."),
    ("stick-table type ip size 1k store http_req_cnt(10s)",
     "parsing [{f}:9] : stick-table: unexpected argument to store option 'http_req_cnt'."),
    ("http-request track-sc3 src",
     "parsing [{f}:9] : error detected in frontend 'fe' while parsing 'http-request "
     "track-sc3' rule : 3 track-sc number exceeding 2 (MAX_SESS_STKCTR-1) value."),
    ("http-request track-sc0",
     "parsing [{f}:9] : error detected in frontend 'fe' while parsing 'http-request "
     "track-sc0' rule : missing fetch method."),
    ("http-request track-sc0 src table",
     "parsing [{f}:9] : error detected in frontend 'fe' while parsing 'http-request "
     "track-sc0' rule : missing table name."),
    ("http-request sc-inc-gpc0(3)",
     "parsing [{f}:9] : error detected in frontend 'fe' while parsing 'http-request "
     "sc-inc-gpc0(3)' rule : invalid stick table track ID. The max allowed ID is 2."),
    ("http-request track-sc0 src table be",
     "Proxy 'fe': unable to find table 'be' referenced by track-sc0."),
    ("http-request deny if { src_conn_cur(nope) gt 1 }",
     "parsing [{f}:9]: unable to find table 'nope' referenced in arg 1 of ACL keyword "
     "'src_conn_cur' in proxy 'fe'."),
    ("http-request deny if { sc_conn_cur(0,be) gt 1 }",
     "parsing [{f}:9]: unable to find table 'be' referenced in arg 2 of ACL keyword "
     "'sc_conn_cur' in proxy 'fe'."),
    ("http-request set-header X %[src,table_conn_cur(nope)]",
     "parsing [{f}:9]: unable to find table 'nope' referenced in arg 1 of conversion keyword "
     "'table_conn_cur' for sample fetch keyword 'src' in http-request expression in proxy "
     "'fe'."),
]


CHECK_CONFIG = """defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:18080
    {table}
    {statement}
    default_backend be
backend be
    server s1 127.0.0.1:18081
"""


@pytest.mark.parametrize(("statement", "message"), LOAD_ERRORS,
                         ids=[s for s, _ in LOAD_ERRORS])
def test_load_errors_are_haproxys(statement: str, message: str, tmp_path: Any) -> None:
    """The statement is on line 9, after the frontend's own table (line 8)."""
    path = os.path.join(tmp_path, "p.cfg")
    with open(path, "w") as f:
        f.write(CHECK_CONFIG.format(statement=statement, table="stick-table type ip size 1k"
                                    if "stick-table" not in statement else ""))
    want = message.format(f=path)
    assert config_refusal([sys.executable, "-m", "lb"], path) == want
    if os.path.exists(HAPROXY):
        assert config_refusal([HAPROXY], path) == want


CLI_CONFIG = HEAD + """    stick-table type string size 1k expire 30s store http_req_cnt,http_req_rate(10s),gpc0,gpt0,conn_cur
    http-request track-sc0 req.hdr(x-client)
    default_backend be
backend be
    server s1 127.0.0.1:@@s1@@
"""
# filters, set and clear on data, with HAProxy 2.6.12's error texts
CLI_COMMANDS = [
    "show table fe data.http_req_cnt gt 2", "show table fe data.http_req_cnt eq 3",
    "show table fe data.http_req_rate le 3", "show table fe data.nope gt 1",
    "show table fe data.http_req_cnt xx 1", "show table fe data.http_req_cnt gt",
    "show table fe data.http_req_cnt gt x", "show table fe data.server_id gt 1",
    "set table fe key a data.gpc0 7", "set table fe key a data.http_req_cnt 9",
    "set table fe key a data.http_req_rate 9", "set table fe key z data.gpt0 4",
    "set table fe key a data.conn_cur 2", "set table fe key a data.nope 2", "show table fe",
    "clear table fe data.gpc0 eq 7", "show table fe", "clear table fe data.http_req_cnt gt 3",
    "show table fe", "clear table fe data.nope eq 1", "clear table fe data.http_req_cnt xx 1",
    "clear table fe data.http_req_cnt eq x", "clear table fe data.server_id eq 1",
    "clear table fe data.http_req_cnt", "set table fe key a data.gpc0",
    "set table fe key a data.gpc0 x", "set table fe key a data.server_id 1",
    "show table fe data.http_req_cnt gt 1 data.http_req_cnt lt 5",
    "show table fe data.http_req_cnt gt 1 key b", "show table fe key b data.http_req_cnt gt 1",
]


def _cli_answers(kind: str) -> list[str]:
    sock = os.path.join(tempfile.mkdtemp(prefix="lbtest-sc-"), "s.sock")
    text = CLI_CONFIG.format(sock=sock)
    with RawBackend(answer_ok) as srv:
        px = (LbProcess(text, ports={"s1": srv.port}) if kind == "lb"
              else Haproxy(text, ports={"s1": srv.port}, single_thread=True))
        with px:
            wait_socket(sock)
            for client, n in (("a", 1), ("b", 3), ("c", 5)):
                for _ in range(n):
                    with socket.create_connection(("127.0.0.1", px.ports["fe"]),
                                                  timeout=5) as c:
                        assert _exchange(c, "/", client) == b"HTTP/1.1 200 OK"
            time.sleep(0.2)
            return [re.sub(r"0x[0-9a-f]+: | exp=\d+", "", query(sock, cmd))
                    for cmd in CLI_COMMANDS]


def test_table_data_commands_answer_as_haproxy() -> None:
    got = _cli_answers("lb")
    answers = dict(zip(CLI_COMMANDS, got, strict=True))
    assert answers["show table fe data.http_req_cnt gt 2"].splitlines()[1:-1] == [
        "key=b use=0 gpt0=0 gpc0=0 conn_cur=0 http_req_cnt=3 http_req_rate(10000)=3",
        "key=c use=0 gpt0=0 gpc0=0 conn_cur=0 http_req_cnt=5 http_req_rate(10000)=5"]
    assert answers["show table fe data.http_req_cnt xx 1"] == (
        'Filter entry #1: Require and operator among "eq", "ne", "le", "ge", "lt", "gt"\n\n')
    assert got[CLI_COMMANDS.index("show table fe")].splitlines()[1] == (
        "key=a use=0 gpt0=0 gpc0=7 conn_cur=2 http_req_cnt=9 http_req_rate(10000)=9")
    if os.path.exists(HAPROXY):
        assert got == _cli_answers("haproxy")


BYTES_STORE = ("http_req_cnt,bytes_in_cnt,bytes_in_rate(10s),bytes_out_cnt,bytes_out_rate(10s),"
               "http_fail_cnt,http_fail_rate(10s)")
BYTES_PATHS = ("/", "/err", "/ni", "/gen", "/" + "x" * 2000, "/")


def _answer_by_path(c: socket.socket, be: RawBackend) -> None:
    """200 with ten bytes of body; 500 for /err, 501 for /ni."""
    while (head := be.recv_head(c)).endswith(b"\r\n\r\n"):
        line = head.split(b"\r\n", 1)[0]
        if b" /err " in line:
            c.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 3\r\n\r\nbad")
        elif b" /ni " in line:
            c.sendall(b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\n\r\n")
        else:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789")


@pytest.mark.parametrize("kind", KINDS)
def test_bytes_and_server_failures_count_as_haproxy(kind: str) -> None:
    """bytes_in/out_* and http_fail_*, and sc_kbytes_in / sc_http_fail_cnt. HAProxy
    2.6.12 on this traffic: http_fail_cnt=1 (the server's 500; not the 501, not the
    `http-request return` 503), rates equal to counts, the 2,000-byte target counted
    by the next request's rules (sc_kbytes_in 2). Its byte figures are its HTX sizes
    (2,314 in, 379 out); lb counts the bytes on the wire, as its %U and %B do."""
    sock = os.path.join(tempfile.mkdtemp(prefix="lbtest-sc-"), "s.sock")
    text = HEAD.format(sock=sock) + f"""    stick-table type string size 1k expire 30s store {BYTES_STORE}
    http-request track-sc0 req.hdr(x-client)
    http-request return status 503 if {{ path /gen }}
    http-request set-header X-V "%[sc_kbytes_in(0)] %[sc_http_fail_cnt(0)] %[sc_http_fail_rate(0)]"
    default_backend be
backend be
    server s1 127.0.0.1:@@s1@@
"""
    sent = received = 0
    with RawBackend(_answer_by_path) as srv:
        px = (LbProcess(text, ports={"s1": srv.port}) if kind == "lb"
              else Haproxy(text, ports={"s1": srv.port}, single_thread=True))
        with px:
            wait_socket(sock)
            with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
                statuses = []
                for p in BYTES_PATHS:
                    req = f"GET {p} HTTP/1.1\r\nHost: x\r\nX-Client: alice\r\n\r\n".encode()
                    c.sendall(req)
                    resp = read_response(c)
                    sent += len(req)
                    received += len(resp)
                    statuses.append(resp.split(b" ", 2)[1])
            time.sleep(0.3)
            (line,) = _table_lines(sock)
    assert statuses == [b"200", b"500", b"501", b"503", b"200", b"200"]
    data = dict(kv.split("=") for kv in line.split()[1:])
    assert data["http_req_cnt"] == "6"
    assert data["http_fail_cnt"] == data["http_fail_rate(10000)"] == "1"
    assert data["bytes_in_cnt"] == data["bytes_in_rate(10000)"]
    assert data["bytes_out_cnt"] == data["bytes_out_rate(10000)"]
    assert int(data["bytes_in_cnt"]) > 2000
    if kind == "lb":
        assert int(data["bytes_in_cnt"]) == sent
        # lb's own reply (the 503) counts at HAProxy's size for it, as %B does
        # (docs/logging.md): 11 bytes off the wire's
        assert int(data["bytes_out_cnt"]) == received + 11
    values = _values(srv)
    assert values[0] == b"0 0 0" and values[2] == b"0 1 1" and values[-1] == b"2 1 1"
