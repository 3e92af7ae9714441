"""`do-resolve(<var>,<resolvers>[,ipv4|ipv6]) <expr>`: a request waits while a
`resolvers` section resolves a name it carries, and the address lands in a variable.

Real sockets throughout: the scripted DNS server of tests.dns_support on loopback UDP,
lb as a process (the resolvers run as its service), raw backends on 127.0.0.1 and
127.0.0.2, and HAProxy 2.6.12 on the same config and the same DNS server where it is
installed. What HAProxy 2.6.12 did (observed, 2026-11-25):

* each request resolves its name again: the answer is kept only while something else
  holds the resolution, a server resolving the same name with the same preferred
  type; then a resolution not running and valid for less than `hold valid` answers
  at once, and no query leaves;
* the preferred type first (AAAA, A with `ipv4`), the other when it has no record,
  and the address of the preferred family when the answer has both; of two A
  records, the first in HAProxy's (XXH32) order;
* NXDOMAIN and silence are tried again every `timeout retry`, `resolve_retries`
  times, then the variable stays unset; a name that is not a DNS name (`a..b`), or no
  sample, sends nothing;
* the variable holds an IP (`ipmask` takes it), so `set-dst` and a `0.0.0.0` server
  send the request to the address found;
* TR, in the log, includes the wait;
* `tcp-request content` rules wait only with an inspect-delay; without one the walk
  is final and takes only an answer the resolvers already hold (no query leaves);
  the delay running out during the wait ends it, the variable unset.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.dns_support import DnsServer
from tests.lbproc import LbProcess, RawBackend, free_port, render
from tests.support_e2e import HAPROXY, Haproxy, UdpLog, named_backend

HAVE_HAPROXY = shutil.which(HAPROXY) is not None
KINDS = ("lb", "haproxy") if HAVE_HAPROXY else ("lb",)
LOOPBACK_2 = "127.0.0.2"


@pytest.fixture
def tmp() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="lbtest-doresolve-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _proxy(kind: str, text: str, ports: dict[str, int]) -> Any:
    """lb (a process: the resolvers are one of its services) or HAProxy."""
    if kind == "lb":
        return LbProcess(text, ports=ports)
    text, ports = render(text, ports)
    return Haproxy(text, ports=ports, single_thread=True, ready_port=min(ports.values()))


def _get(port: int, host: str | None, path: str = "/") -> bytes:
    """One request on its own connection; the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        head = f"GET {path} HTTP/1.1\r\n"
        if host is not None:
            head += f"Host: {host}\r\n"
        s.sendall(head.encode() + b"Connection: close\r\n\r\n")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


# ---------------------------------------------------------------- configuration

_CHECK = """\
resolvers dns
  nameserver ns1 127.0.0.1:53
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend fe
  bind 127.0.0.1:8999
  {rule}
  default_backend b
backend b
  server s 127.0.0.1:9
"""

_USAGE = ("Expects 'do-resolve(<varname>,<resolvers>[,<options>]) <expr>'. Available "
          "options are 'ipv4' and 'ipv6'")
_IN_FE = "error detected in frontend 'fe' while parsing"
# the rule, then what HAProxy 2.6.12 printed about it (None: the file is valid)
CONFIG_CASES: list[tuple[str, str | None]] = [
    ("http-request do-resolve(txn.x) hdr(host)",
     f"parsing [{{f}}:10] : {_IN_FE} 'http-request do-resolve(txn.x)' rule : Can't parse "
     f"'do-resolve(txn.x)'. {_USAGE}."),
    ("http-request do-resolve(txn.x,nosuch) hdr(host)",
     "Proxy 'fe': Can't find resolvers section 'nosuch' for do-resolve action."),
    ("http-request do-resolve(txn.x,dns,ipv5) hdr(host)",
     f"parsing [{{f}}:10] : {_IN_FE} 'http-request do-resolve(txn.x,dns,ipv5)' rule : "
     f"Can't parse 'do-resolve(txn.x,dns,ipv5)'. {_USAGE}."),
    ("http-request do-resolve(txn.x,dns)",
     f"parsing [{{f}}:10] : {_IN_FE} 'http-request do-resolve(txn.x,dns)' rule : Can't "
     f"parse ''. {_USAGE}."),
    ("http-request do-resolve(txn.x,dns) res.hdr(foo)",
     f"parsing [{{f}}:10] : {_IN_FE} 'http-request do-resolve(txn.x,dns)' rule : fetch "
     "method 'res.hdr(foo)' extracts information from 'HTTP response headers', none of "
     "which is available here."),
    ("http-request do-resolve(txn.x,dns) nosuch",
     f"parsing [{{f}}:10] : {_IN_FE} 'http-request do-resolve(txn.x,dns)' rule : Can't "
     f"parse 'nosuch'. {_USAGE}."),
    ("http-request do-resolve(txn.x,dns) hdr(host),nosuchconv",
     f"parsing [{{f}}:10] : {_IN_FE} 'http-request do-resolve(txn.x,dns)' rule : Can't "
     f"parse 'hdr(host),nosuchconv'. {_USAGE}."),
    ("http-request do-resolve hdr(host)",
     f"parsing [{{f}}:10] : {_IN_FE} 'http-request do-resolve' rule : Can't parse "
     f"'do-resolve'. {_USAGE}."),
    ("http-request do-resolve(txn.x,dns) hdr(host) foo",
     "parsing [{f}:10]: 'http-request do-resolve(txn.x,dns)' expects either 'if' or "
     "'unless' followed by a condition but found 'foo'."),
    ("http-request do-resolve(txn.x,,ipv4) hdr(host)",
     "Proxy 'fe': Can't find resolvers section '' for do-resolve action."),
    ("http-response do-resolve(txn.x,dns) hdr(host)", "parsing [{f}:10]: 'http-response' "
     "expects 'ot-group', 'set-log-level', 'set-nice', 'sc-inc-gpc(*)', 'sc-inc-gpc0(*)', "
     "'sc-inc-gpc1(*)', 'sc-set-gpt(*)', 'sc-set-gpt0(*)', 'send-spoe-group', "
     "'cache-store', 'add-acl(*)', 'add-header', 'allow', 'capture', 'del-acl(*)', "
     "'del-header', 'del-map(*)', 'deny', 'redirect', 'replace-header', 'replace-value', "
     "'return', 'set-header', 'set-map(*)', 'set-status', 'strict-mode', 'track-sc(*)', "
     "'wait-for-body', 'set-var-fmt(*)', 'set-var(*)', 'unset-var(*)', 'set-mark', "
     "'set-tos', 'silent-drop', but got 'do-resolve(txn.x,dns)'."),
    ("tcp-request content do-resolve(txn.x) hdr(host)",
     f"parsing [{{f}}:10] : Can't parse 'do-resolve(txn.x)'. {_USAGE}"),
    ("tcp-request content do-resolve(txn.x,dns) res.hdr(x)",
     "parsing [{f}:10] : fetch method 'res.hdr(x)' extracts information from 'HTTP "
     "response headers', none of which is available here"),
    ("tcp-request content do-resolve(txn.x,nosuch) hdr(host)",
     "Proxy 'fe': Can't find resolvers section 'nosuch' for do-resolve action."),
    ("tcp-request content do-resolve(txn.x,dns) hdr(host) foo",
     "parsing [{f}:10] : 'tcp-request content do-resolve(txn.x,dns)' only accepts 'if' or "
     "'unless', in frontend 'fe' (got 'foo')"),
    # taken: an unusable variable name (nothing is ever set), both options (the last
    # wins), and options HAProxy compares as prefixes (`ip`, even an empty one: ipv4)
    ("tcp-request content do-resolve(txn.x,dns) src", None),
    ("http-request do-resolve(foo,dns) hdr(host)", None),
    ("http-request do-resolve(txn.x,dns,ipv4,ipv6) hdr(host)", None),
    ("http-request do-resolve(txn.x,dns,) hdr(host)", None),
    ("http-request do-resolve(txn.x,dns,ip) hdr(host) if TRUE", None),
]


def _check(cmd: list[str], path: str) -> tuple[int, list[str]]:
    out = subprocess.run([*cmd, "-c", "-f", path], capture_output=True, text=True,
                         timeout=30, stdin=subprocess.DEVNULL)
    lines = [re.sub(r"^\[ALERT\] +\(\d+\) : config : ", "", ln)
             for ln in (out.stdout + out.stderr).splitlines()
             if ln.startswith("[ALERT]")]
    return out.returncode, [ln for ln in lines
                            if not ln.startswith(("Fatal errors", "Error(s) found"))]


@pytest.mark.parametrize(("rule", "expected"), CONFIG_CASES,
                         ids=[c[0] for c in CONFIG_CASES])
def test_config_messages_as_in_haproxy(tmp: str, rule: str, expected: str | None) -> None:
    path = os.path.join(tmp, "c.cfg")
    with open(path, "w") as f:
        f.write(_CHECK.format(rule=rule))
    cmds = [("lb", [sys.executable, "-m", "lb"])]
    if HAVE_HAPROXY:
        cmds.append(("haproxy", [HAPROXY]))
    for kind, cmd in cmds:
        rc, alerts = _check(cmd, path)
        if expected is None:
            assert rc == 0 and not alerts, (kind, alerts)
        else:
            assert rc != 0, kind
            assert alerts == [expected.format(f=path)], kind


def test_parser_reads_the_parenthesis_as_haproxy_does() -> None:
    from lb.config.model import ActDoResolve
    from lb.config.proxy_kw import parse_do_resolve

    def parse(act: str, *args: str) -> Any:
        return parse_do_resolve(act, args or ("hdr(host)",), args[0] if args else "")

    assert parse("do-resolve(txn.ip,dns)") == ActDoResolve("txn.ip", "dns", "hdr(host)")
    assert parse("do-resolve(txn.ip,dns,ipv6)").ipv4 is False
    for option in ("ipv4", "ipv", "i", ""):
        assert parse(f"do-resolve(txn.ip,dns,{option})").ipv4 is True, option
    assert parse("do-resolve(txn.ip,dns,ipv4,ipv6)").ipv4 is False
    assert parse("do-resolve(txn.ip,dns)tail") == ActDoResolve("txn.ip", "dns", "hdr(host)")
    assert parse("do-resolve(txn.ip,dns,ipv4x)").startswith("Can't parse 'do-resolve(")
    assert parse("do-resolve(txn.ip,dns").startswith("Can't parse")
    assert parse("do-resolve(txn.ip,dns)", "if").startswith("Can't parse 'if'.")


def _head(section: str, mode: str) -> str:
    """`global` with a log target (``{log}``), the `dns` section asking ``{dns}`` with
    ``section``'s lines, and `defaults` in ``mode``, logging."""
    return ("global\n  log 127.0.0.1:{log} local0\nresolvers dns\n"
            "  nameserver ns1 127.0.0.1:{dns}\n" + section + f"defaults\n  mode {mode}\n"
            "  log global\n" + ("  option httplog\n" if mode == "http" else "")
            + "  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n")


# ---------------------------------------------------------------- HTTP requests

RESOLVE = _head("""\
  hold valid 60s
  timeout resolve 60s
  timeout retry 100ms
  resolve_retries 2
""", "http") + """\
frontend fe
  bind 127.0.0.1:@@fe@@
  http-request do-resolve(txn.v4,dns,ipv4) hdr(host),host_only if {{ path /v4 }}
  http-request do-resolve(txn.v6,dns) hdr(host),host_only if {{ path /v6 }}
  http-request return status 200 content-type text/plain lf-string "v4=%[var(txn.v4)] v6=%[var(txn.v6)] net=%[var(txn.v4),ipmask(8)]" if {{ path /v4 }} || {{ path /v6 }}
  default_backend b
backend b
  # they hold the resolutions of a4.test (A first) and six.test (AAAA first)
  server s1 a4.test:9 resolvers dns resolve-prefer ipv4 init-addr none
  server s2 six.test:9 resolvers dns init-addr none
"""

# (Host, path): the body, then the queries the request sent (name, type)
A, AAAA = 1, 28
HTTP_CASES: list[tuple[str | None, str, str, list[tuple[str, int]]]] = [
    ("a4.test", "/v4", "v4=10.1.1.2 v6= net=10.0.0.0", []),  # a server's answer
    ("a4.test:8080", "/v4", "v4=10.1.1.2 v6= net=10.0.0.0", []),
    ("a4.test", "/v6", "v4= v6=10.1.1.2 net=", [("a4.test", AAAA), ("a4.test", A)]),
    ("six.test", "/v6", "v4= v6=2001:db8::6 net=", []),
    ("six.test", "/v4", "v4=2001:db8::6 v6= net=", [("six.test", A), ("six.test", AAAA)]),
    ("both.test", "/v4", "v4=10.2.2.2 v6= net=10.0.0.0", [("both.test", A)]),
    ("both.test", "/v4", "v4=10.2.2.2 v6= net=10.0.0.0", [("both.test", A)]),  # again
    ("both.test", "/v6", "v4= v6=2001:db8::2 net=", [("both.test", AAAA)]),
    ("nx.test", "/v4", "v4= v6= net=", [("nx.test", A), ("nx.test", AAAA)] * 2),
    ("slow.test", "/v4", "v4= v6= net=", [("slow.test", A)] * 2),
    (None, "/v4", "v4= v6= net=", []),
    ("bad..name", "/v4", "v4= v6= net=", []),
]


def _dns() -> DnsServer:
    dns = DnsServer()
    dns.set("a4.test", "A", ["10.1.1.1", "10.1.1.2"])
    dns.set("six.test", "AAAA", ["2001:db8::6"])
    dns.set("both.test", "A", ["10.2.2.2"])
    dns.set("both.test", "AAAA", ["2001:db8::2"])
    dns.set_rcode("nx.test", 3)
    dns.drop("slow.test")
    return dns


def test_names_resolve_as_in_haproxy() -> None:
    """Each request's answer and the queries it sent, lb and HAProxy on one DNS server."""
    log = UdpLog()
    with _dns() as dns:
        for kind in KINDS:
            dns.clear_queries()
            with _proxy(kind, RESOLVE.format(log=log.port, dns=dns.port), {}) as px:
                # both servers resolved: their resolutions answer for the requests
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    with dns.lock:
                        asked = {q for q in dns.queries}
                    if {("a4.test", A), ("six.test", AAAA)} <= asked:
                        break
                    time.sleep(0.05)
                time.sleep(0.3)  # (their answers applied)
                for host, path, body, queries in HTTP_CASES:
                    dns.clear_queries()
                    t0 = time.monotonic()
                    out = _get(px.ports["fe"], host, path)
                    took = time.monotonic() - t0
                    assert out.startswith(b"HTTP/1.1 200"), (kind, host, out)
                    assert out.split(b"\r\n\r\n", 1)[1].decode() == body, (kind, host, path)
                    with dns.lock:
                        assert dns.queries == queries, (kind, host, path)
                    # NXDOMAIN: asked again `timeout retry` later; silence: twice that
                    least = {"nx.test": 0.08, "slow.test": 0.18}.get(host or "", 0.0)
                    assert least <= took < least + 2.0, (kind, host, took)


TRAFFIC = _head("""\
  timeout retry 150ms
  resolve_retries 2
""", "http") + """\
frontend fe
  bind 127.0.0.1:@@fe@@
  http-request do-resolve(txn.ip,dns,ipv4) hdr(host),host_only
  http-request capture var(txn.ip) len 40
  http-request set-dst var(txn.ip)
  default_backend b
backend b
  server s 0.0.0.0:{port}
"""


def _log_fields(line: bytes) -> tuple[int, str, str, str]:
    """TR, the status, the termination state and the captured variable of an httplog
    line."""
    m = re.search(rb" (-?\d+)/-?\d+/-?\d+/-?\d+/-?\d+ (\d+) \d+ . . (\S{4}) \S+ \S+ "
                  rb"\{([^}]*)\}", line)
    assert m is not None, line
    return int(m.group(1)), m.group(2).decode(), m.group(3).decode(), m.group(4).decode()


def test_the_request_goes_where_the_name_points() -> None:
    """`set-dst` with the variable, and a `0.0.0.0` server: the request reaches the
    address DNS gave (127.0.0.2), or where the client connected when the name does not
    resolve. Concurrent requests for one name share its queries; TR counts the wait;
    a client that closes its side while waiting still gets its request sent on."""
    port = free_port()
    with _dns() as dns, named_backend("127.0.0.1", port), named_backend(LOOPBACK_2, port):
        dns.set("app.test", "A", [LOOPBACK_2])
        results: dict[str, Any] = {}
        for kind in KINDS:
            log = UdpLog()
            with _proxy(kind, TRAFFIC.format(log=log.port, dns=dns.port, port=port),
                        {}) as px:
                fe = px.ports["fe"]
                got = [_get(fe, "app.test").split(b"\r\n\r\n", 1)[1],
                       _get(fe, "slow.test").split(b"\r\n\r\n", 1)[1]]
                dns.clear_queries()
                answers: list[bytes] = []

                def one(fe: int = fe, answers: list[bytes] = answers) -> None:
                    answers.append(_get(fe, "slow.test"))
                threads = [threading.Thread(target=one) for _ in range(5)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(10)
                with dns.lock:
                    shared = list(dns.queries)
                # the client half-closes during the wait: the request still goes on
                with socket.create_connection(("127.0.0.1", fe), timeout=5) as s:
                    s.sendall(b"GET / HTTP/1.1\r\nHost: slow.test\r\n\r\n")
                    s.shutdown(socket.SHUT_WR)
                    half = b""
                    while chunk := s.recv(4096):
                        half += chunk
                lines = [_log_fields(ln) for ln in log.lines(8)]
            results[kind] = (got, len(answers), shared, half.split(b"\r\n\r\n", 1)[-1],
                             [(st, term, cap) for _tr, st, term, cap in lines])
            assert got == [LOOPBACK_2.encode(), b"127.0.0.1"], kind
            assert shared == [("slow.test", A)] * 2, (kind, shared)  # not 5 x 2
            assert answers == [answers[0]] * 5 and answers[0].endswith(b"127.0.0.1"), kind
            assert half.endswith(b"\r\n\r\n127.0.0.1"), (kind, half)
            assert lines[0][0] < 100 and lines[0][3] == LOOPBACK_2, (kind, lines[0])
            assert all(tr >= 250 for tr, *_ in lines[1:]), (kind, lines)  # 2 x 150 ms
        if "haproxy" in results:
            assert results["lb"] == results["haproxy"]


# ---------------------------------------------------------------- mode tcp

TCP = _head("""\
  timeout retry 1s
""", "tcp") + """\
frontend final
  bind 127.0.0.1:@@final@@
  tcp-request content do-resolve(sess.ip,dns,ipv4) str(app.test)
  tcp-request content set-dst var(sess.ip)
  default_backend b
frontend waits
  bind 127.0.0.1:@@waits@@
  tcp-request inspect-delay 3s
  tcp-request content do-resolve(sess.ip,dns,ipv4) str(app.test) if {{ req.len ge 5 }}
  tcp-request content set-dst var(sess.ip)
  tcp-request content accept if {{ req.len ge 5 }}
  default_backend b
frontend expires
  bind 127.0.0.1:@@expires@@
  tcp-request inspect-delay 300ms
  tcp-request content do-resolve(sess.ip,dns,ipv4) str(slow.test)
  tcp-request content set-dst var(sess.ip)
  default_backend b
backend b
  server s 0.0.0.0:{port}
"""


def _echo_backend(ip: str, port: int) -> RawBackend:
    def handler(c: socket.socket, be: RawBackend) -> None:
        data = c.recv(100)
        c.sendall(ip.encode() + b" got " + data)
        c.close()

    return RawBackend(handler, host=ip, port=port)


def _exchange(port: int, delay: float = 0.2) -> tuple[bytes, float]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        time.sleep(delay)
        t0 = time.monotonic()
        s.sendall(b"hello")
        out = b""
        while chunk := s.recv(4096):
            out += chunk
        return out, time.monotonic() - t0


def test_tcp_content_rules_wait_only_with_an_inspect_delay() -> None:
    port = free_port()
    with (DnsServer() as dns, _echo_backend("127.0.0.1", port),
          _echo_backend(LOOPBACK_2, port)):
        dns.set("app.test", "A", [LOOPBACK_2])
        dns.drop("slow.test")
        for kind in KINDS:
            log = UdpLog()
            with _proxy(kind, TCP.format(log=log.port, dns=dns.port, port=port), {}) as px:
                dns.clear_queries()
                # no inspect-delay: a final walk sends no query and sets nothing
                assert _exchange(px.ports["final"])[0] == b"127.0.0.1 got hello", kind
                with dns.lock:
                    assert dns.queries == [], kind
                # waits for 5 bytes, then for the answer
                assert _exchange(px.ports["waits"])[0] == b"127.0.0.2 got hello", kind
                with dns.lock:
                    assert dns.queries == [("app.test", A)], kind
                # the delay runs out first: on without the variable, once it has
                out, took = _exchange(px.ports["expires"], delay=0.0)
                assert out == b"127.0.0.1 got hello", kind
                assert 0.2 < took < 0.9, (kind, took)


# ---------------------------------------------------------------- the resolver itself


def test_lookups_share_a_query_and_leave_nothing_behind() -> None:
    """In-loop: three requests for one name wait on one resolution and get one
    address; once answered, a resolution only requests used is gone (no cache, as in
    HAProxy, and nothing a client's names could pile up); a lookup that may not wait
    gets None at once; closing the section answers the requests still waiting."""
    from lb.config import load_text
    from lb.resolvers import start_sections
    from lb.state import State

    with DnsServer() as dns:
        dns.set("app.test", "A", [LOOPBACK_2])
        dns.drop("slow.test")
        text = f"""\
resolvers dns
  nameserver ns1 127.0.0.1:{dns.port}
  timeout retry 5s
frontend fe
  mode http
  bind 127.0.0.1:{free_port()}
  http-request do-resolve(txn.ip,dns,ipv4) hdr(host)
  default_backend b
backend b
  mode http
  server s 127.0.0.1:9
"""
        res = load_text(text, "t.cfg")
        assert res.ok and res.config is not None, [d.message() for d in res.diagnostics]
        state = State(res.config)

        async def run() -> tuple[list[Any], int, int, list[Any]]:
            loop = asyncio.get_running_loop()
            sections = start_sections(state, loop, lambda *a: None)
            sec = sections["dns"]
            await sec.open()
            sec.start()
            got: list[Any] = []
            answered = loop.create_future()

            def done(addr: Any) -> None:
                got.append(addr)
                if len(got) == 3 and not answered.done():
                    answered.set_result(None)

            for _ in range(3):
                sec.lookup("APP.test", True, True, done)
            sec.lookup("app.test", True, False, got.append)  # running: not waited for
            await asyncio.wait_for(answered, 5)
            left = len(sec.resolutions)
            waiting: list[Any] = []
            sec.lookup("slow.test", True, True, waiting.append)
            sec.lookup("a..b", True, True, waiting.append)  # (not a DNS name: at once)
            during = len(sec.resolutions)
            # once closed, a lookup (a request woken by close() asking again) gets None
            sec.close()
            sec.lookup("app.test", True, True, waiting.append)
            return got, left, during, waiting

        got, left, during, waiting = asyncio.run(run())
        assert got == [None, LOOPBACK_2, LOOPBACK_2, LOOPBACK_2]
        with dns.lock:
            assert dns.queries.count(("app.test", A)) == 1
        assert left == 0
        assert during == 1
        # the bad name at once, slow.test at close, and a lookup after close at once
        assert waiting == [None, None, None]



def test_workers_resolve_for_their_own_requests() -> None:
    """`-W` with two workers: the master resolves the servers, each worker runs its own
    sections for `do-resolve` (its requests wait on its own queries)."""
    with DnsServer() as dns:
        dns.set("app.test", "A", ["10.9.9.9"])
        text = _head("", "http").format(log=free_port(), dns=dns.port) + """\
global
  nbthread 2
frontend fe
  bind 127.0.0.1:@@fe@@
  http-request do-resolve(txn.ip,dns,ipv4) hdr(host)
  http-request return status 200 content-type text/plain lf-string "ip=%[var(txn.ip)]"
"""
        with LbProcess(text, args=("-W",)) as px:
            for _ in range(4):
                assert _get(px.ports["fe"], "app.test").endswith(b"\r\n\r\nip=10.9.9.9")
        with dns.lock:
            assert dns.queries == [("app.test", A)] * 4
