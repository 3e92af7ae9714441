"""`resolvers`: server addresses kept by DNS at run time (lb.resolvers).

Real sockets throughout: a scripted DNS server on loopback UDP (tests.dns_support),
lb as a process, raw HTTP backends on 127.0.0.2 / 127.0.0.3 answering with their own
address, and HAProxy 2.6.12 side by side where it is installed. What HAProxy 2.6.12
did with the same config and the same answers (observed, 2026-11-25):

* each resolution asks AAAA first (no `resolve-prefer`), then A when AAAA has no
  record: `any_err` and `valid` move by one each per resolution;
* the first server of a name logs `b/s1 changed its IP from (none) to 127.0.0.2 by
  dns/ns1.`, the others of the same name `... by DNS cache.`; leaving resolution
  maintenance adds `Server b/s1 ('app.test') is UP/READY (resolves again).` and
  `Server b/s1 administratively READY thanks to valid DNS answer.`;
* two servers of a backend never share an address (prevent-dup-ip): the second
  server of one name stays in MAINT (resolution), and a server-template's servers
  take a name's addresses in XXH32 order, one each;
* NXDOMAIN for longer than `hold nx` after the last valid answer: `Server b/s1 is
  going DOWN for maintenance (DNS NX status). ...`, the address goes (`-` in `show
  servers state`), and the next valid answer gives it back `from (none)`.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.dns_support import DnsServer
from tests.lbproc import LbProcess, free_port
from tests.lbproc import wait_value as _wait
from tests.stats_support import query, wait_socket
from tests.support_e2e import HAPROXY, Haproxy, named_backend

HAVE_HAPROXY = shutil.which(HAPROXY) is not None
LOOPBACK_2 = "127.0.0.2"
LOOPBACK_3 = "127.0.0.3"


def _lines_of(kind: str, proc: Any, path: str) -> list[str]:
    """State-change lines a proxy printed, without the level tag and pid."""
    if kind == "l":
        raw = proc.lines()
    else:
        with open(path, "rb") as f:
            raw = f.read().decode("utf-8", "replace").splitlines()
    out = []
    for line in raw:
        m = re.match(r"\[(WARNING|ALERT|NOTICE)\]\s+\(\d+\) : (.*)$", line)
        if m and not m.group(2).startswith(("config :", "haproxy version", "lb version",
                                            "path to executable")):
            out.append(m.group(2))
    return out


def _servers(sock: str) -> tuple[tuple[str, str, str, str], ...] | None:
    """(backend, server, address, admin state) of every server."""
    try:
        text = query(sock, "show servers state")
    except OSError:
        return None
    rows = []
    for line in text.splitlines()[2:]:
        f = line.split()
        if len(f) > 6:
            rows.append((f[1], f[3], f[4], f[6]))
    return tuple(rows)


def _counters(sock: str, section: str = "dns") -> dict[str, int]:
    text = query(sock, f"show resolvers {section}")
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^  (\w+):\s+(\d+)$", text, re.M)}


def _config(holds: str, backends: str, glob: str = "") -> str:
    """A config with a stats socket, a `dns` section asking the test server, a
    frontend sending everything to backend `b`, then ``backends``. Filled in with
    ``.format(sock=, dns=, fe=, port=)``."""
    return f"""\
global
  stats socket {{sock}} level admin
{glob}resolvers dns
  nameserver ns1 127.0.0.1:{{dns}}
{holds}
  timeout retry 100ms
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend fe
  bind 127.0.0.1:{{fe}}
  default_backend b
{backends}"""


CONFIG = _config("  hold nx 600ms\n  hold valid 1s\n  timeout resolve 200ms", """\
backend b
  server s1 app.test:{port} resolvers dns init-addr none
  server s2 app.test:{port} resolvers dns init-addr none
backend t
  server-template w 3 multi.test:{port} resolvers dns init-addr none
""")


@pytest.fixture
def tmp() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="lbtest-dns-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


class _Proxies:
    """lb, and HAProxy when installed, on the same config and the same DNS server."""

    def __init__(self, tmp: str, dns: DnsServer, port: int, text: str = CONFIG) -> None:
        self.kinds = ("l", "h") if HAVE_HAPROXY else ("l",)
        self.socks = {k: os.path.join(tmp, f"{k}.sock") for k in self.kinds}
        self.err = os.path.join(tmp, "h.err")
        self.ports = {k: free_port() for k in self.kinds}
        self.procs: dict[str, Any] = {}
        try:
            for k in self.kinds:
                cfg = text.format(sock=self.socks[k], dns=dns.port, fe=self.ports[k], port=port)
                proc: Any = (LbProcess(cfg) if k == "l" else
                             Haproxy(cfg, ready_socket=self.socks[k], stderr_path=self.err,
                                     single_thread=True))
                self.procs[k] = proc.__enter__()
            wait_socket(self.socks["l"])
        except BaseException:
            self.close()
            raise

    def lines(self, kind: str) -> list[str]:
        return _lines_of(kind, self.procs[kind], self.err)

    def settle(self, want: Callable[[tuple[Any, ...]], bool], what: str) -> tuple[Any, ...]:
        """Every proxy's servers once ``want`` holds for them; they must agree."""
        got = {k: _wait(lambda k=k: (lambda s: s if s and want(s) else None)(
            _servers(self.socks[k])), what=f"{what} ({k})") for k in self.kinds}
        if "h" in got:
            assert got["l"] == got["h"], f"{what}:\nlb      {got['l']}\nHAProxy {got['h']}"
        return got["l"]

    def close(self) -> None:
        for p in self.procs.values():
            p.__exit__(None, None, None)


def _addr(rows: tuple[Any, ...], be: str, srv: str) -> tuple[str, str]:
    for r in rows:
        if r[0] == be and r[1] == srv:
            return r[2], r[3]
    raise KeyError((be, srv))


def test_addresses_follow_dns_as_in_haproxy(tmp: str) -> None:
    """The scenario of the module docstring, step by step, in lb and HAProxy: the same
    addresses and admin states after each step, the same log lines in the same order,
    the same `update` count."""
    port = free_port()
    with DnsServer() as dns:
        dns.set("app.test", "A", [LOOPBACK_2])
        dns.set("multi.test", "A", ["127.0.0.5", "127.0.0.6"])
        px = _Proxies(tmp, dns, port)
        try:
            rows = px.settle(lambda s: _addr(s, "t", "w2")[0] != "-", "first answers")
            assert _addr(rows, "b", "s1") == (LOOPBACK_2, "0")
            assert _addr(rows, "b", "s2") == ("-", "32")  # (no second address for it)
            # XXH32 order: 127.0.0.6 sorts before 127.0.0.5
            assert [_addr(rows, "t", w) for w in ("w1", "w2", "w3")] == [
                ("127.0.0.6", "0"), ("127.0.0.5", "0"), ("-", "32")]

            dns.set("app.test", "A", [LOOPBACK_3])
            px.settle(lambda s: _addr(s, "b", "s1")[0] == LOOPBACK_3, "a new address")

            dns.set_rcode("app.test", 3)
            px.settle(lambda s: _addr(s, "b", "s1") == ("-", "32"), "NXDOMAIN past hold nx")

            dns.clear("app.test")
            dns.set("app.test", "A", ["127.0.0.4"])
            px.settle(lambda s: _addr(s, "b", "s1") == ("127.0.0.4", "0"), "back")

            dns.set("multi.test", "A", ["127.0.0.6"])
            px.settle(lambda s: _addr(s, "t", "w2") == ("-", "32"), "one address left")

            dns.set("multi.test", "A", ["127.0.0.7", "127.0.0.6", "127.0.0.8"])
            rows = px.settle(lambda s: _addr(s, "t", "w3")[0] != "-", "three addresses")
            assert [_addr(rows, "t", w)[0] for w in ("w1", "w2", "w3")] == [
                "127.0.0.6", "127.0.0.7", "127.0.0.8"]

            expected = [
                "b/s1 changed its IP from (none) to 127.0.0.2 by dns/ns1.",
                "Server b/s1 ('app.test') is UP/READY (resolves again).",
                "Server b/s1 administratively READY thanks to valid DNS answer.",
                "t/w1 changed its IP from (none) to 127.0.0.6 by dns/ns1.",
                "Server t/w1 ('multi.test') is UP/READY (resolves again).",
                "Server t/w1 administratively READY thanks to valid DNS answer.",
                "t/w2 changed its IP from (none) to 127.0.0.5 by DNS cache.",
                "Server t/w2 ('multi.test') is UP/READY (resolves again).",
                "Server t/w2 administratively READY thanks to valid DNS answer.",
                "b/s1 changed its IP from 127.0.0.2 to 127.0.0.3 by dns/ns1.",
                "Server b/s1 is going DOWN for maintenance (DNS NX status). 0 active and 0 "
                "backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
                "backend 'b' has no server available!",
                "b/s1 changed its IP from (none) to 127.0.0.4 by dns/ns1.",
                "Server b/s1 ('app.test') is UP/READY (resolves again).",
                "Server b/s1 administratively READY thanks to valid DNS answer.",
                "Server t/w2 is going DOWN for maintenance (No IP for server ). 1 active and "
                "0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
                "t/w2 changed its IP from (none) to 127.0.0.7 by DNS cache.",
                "Server t/w2 ('multi.test') is UP/READY (resolves again).",
                "Server t/w2 administratively READY thanks to valid DNS answer.",
                "t/w3 changed its IP from (none) to 127.0.0.8 by DNS cache.",
                "Server t/w3 ('multi.test') is UP/READY (resolves again).",
                "Server t/w3 administratively READY thanks to valid DNS answer.",
            ]
            for k in px.kinds:
                _wait(lambda k=k: len(px.lines(k)) >= len(expected), what=f"lines ({k})")
                assert px.lines(k) == expected, k
            counts = {k: _counters(px.socks[k]) for k in px.kinds}
            for k, c in counts.items():
                assert c["update"] == 4, (k, c)  # s1 three times, w1 once
                assert c["nx"] > 0 and c["any_err"] > 0 and c["valid"] > 0, (k, c)
                assert c["sent"] >= c["valid"] + c["any_err"] + c["nx"], (k, c)
                assert c["invalid"] == c["outdated"] == c["too_big"] == 0, (k, c)
            domain = {k: query(px.socks[k], "show stat domain resolvers") for k in px.kinds}
            assert domain["l"].startswith(
                "# id,pid,sent,send_error,valid,update,cname,cname_error,any_err,nx,timeout,"
                "refused,other,invalid,too_big,truncated,outdated,\nns1,dns,")
            if "h" in px.kinds:  # the same rows (the counts aside)
                assert [re.sub(r"\d+,", "N,", r) for r in domain["l"].splitlines()] == [
                    re.sub(r"\d+,", "N,", r) for r in domain["h"].splitlines()]
                for fmt in ("typed desc", "json"):
                    cmd = f"show stat domain resolvers {fmt}"
                    mine, theirs = (re.sub(r"(:|\"value\":)\d+", r"\1N", query(px.socks[k], cmd))
                                    for k in ("l", "h"))
                    # (HAProxy 2.6.12 omits the comma between name servers in JSON)
                    assert mine == theirs.replace("]][[", "],[").replace("][", "],["), fmt
            shown = query(px.socks["l"], "show resolvers")
            assert shown.startswith("Resolvers section dns\n nameserver ns1:\n  sent:        ")
            assert "\nResolvers section default\n" in shown  # (HAProxy's implicit one)
            if "h" in px.kinds:  # the same layout, line for line (the numbers aside)
                h = query(px.socks["h"], "show resolvers")
                assert re.sub(r"\d+", "N", shown) == re.sub(r"\d+", "N", h)
            for k in px.kinds:  # only `clear counters all` clears them, as in HAProxy
                query(px.socks[k], "clear counters")
                assert _counters(px.socks[k])["sent"] > 0, k
                query(px.socks[k], "clear counters all")
                assert _counters(px.socks[k])["update"] == 0, k
        finally:
            px.close()


SRV_CONFIG = _config("  timeout resolve 200ms\n  hold nx 600ms", """\
backend b
  server s1 127.0.0.1:{port}
backend t
  server-template w 3 _http._tcp.svc.test resolvers dns init-addr none
backend u
  server-template v 2 _ng._tcp.svc.test resolvers dns init-addr none
""")


def test_srv_records_as_in_haproxy(tmp: str) -> None:
    """SRV records, in lb and HAProxy on the same answers: each row (target, port,
    weight) goes to one server of the template, in XXH32 order of the targets; the
    address comes from the additional section (`by DNS additional record`), or, with
    none, from the target resolved by name; a row that goes frees its server
    (`entry removed from SRV record`), which waits at the end of the free ones; the
    target shows in `show servers state` (srv_fqdn, with admin bit 0x40 as in
    HAProxy), the row's port too."""
    with DnsServer() as dns:
        for name, ip in (("a", "127.0.0.2"), ("b", "127.0.0.3"), ("c", "127.0.0.4"),
                         ("d", "127.0.0.6")):
            dns.set(f"{name}.svc.test", "A", [ip])
        dns.set("_http._tcp.svc.test", "SRV", [(10, 10, 8001, "a.svc.test"),
                                               (10, 600, 8002, "b.svc.test")])
        dns.set("_ng._tcp.svc.test", "SRV", [(10, 10, 8003, "c.svc.test")])
        dns.no_glue.add("_ng._tcp.svc.test")
        px = _Proxies(tmp, dns, free_port(), SRV_CONFIG)
        try:
            rows = px.settle(lambda s: _addr(s, "u", "v1")[0] != "-", "first answers")
            assert [_addr(rows, "t", w) for w in ("w1", "w2", "w3")] == [
                ("127.0.0.3", "64"), ("127.0.0.2", "64"), ("-", "32")]
            assert _addr(rows, "u", "v1") == ("127.0.0.4", "64")
            state = {k: query(px.socks[k], "show servers state t") for k in px.kinds}
            w1 = next(line.split() for line in state["l"].splitlines() if " w1 " in line)
            assert (w1[7], w1[17], w1[18], w1[19]) == (
                "3", "b.svc.test", "8002", "_http._tcp.svc.test")  # (600 + 255) // 256
            if "h" in px.kinds:  # every field but the time since the last change
                rows_of = {k: [r.split()[:9] + r.split()[10:] for r in v.splitlines()[2:] if r]
                           for k, v in state.items()}
                assert len(rows_of["l"]) == 3 and rows_of["l"] == rows_of["h"]

            dns.set("_http._tcp.svc.test", "SRV", [(10, 10, 8001, "a.svc.test"),
                                                   (10, 10, 9004, "d.svc.test")])
            rows = px.settle(lambda s: _addr(s, "t", "w3")[0] == "127.0.0.6", "a new row")
            assert _addr(rows, "t", "w1") == ("-", "96")

            dns.set_rcode("_http._tcp.svc.test", 3)
            px.settle(lambda s: all(_addr(s, "t", w)[0] == "-" for w in ("w1", "w2", "w3")),
                      "NXDOMAIN past hold nx")
            expected = [
                "t/w1 changed its IP from (none) to 127.0.0.3 by DNS additional record.",
                "Server t/w1 ('b.svc.test') is UP/READY (resolves again).",
                "t/w2 changed its IP from (none) to 127.0.0.2 by DNS additional record.",
                "Server t/w2 ('a.svc.test') is UP/READY (resolves again).",
                "u/v1 changed its IP from (none) to 127.0.0.4 by dns/ns1.",
                "Server u/v1 ('c.svc.test') is UP/READY (resolves again).",
                "Server u/v1 administratively READY thanks to valid DNS answer.",
                # (d.svc.test sorts before b.svc.test: w3 takes its row first)
                "t/w3 changed its IP from (none) to 127.0.0.6 by DNS additional record.",
                "Server t/w3 ('d.svc.test') is UP/READY (resolves again).",
                "Server t/w1 is going DOWN for maintenance (entry removed from SRV record). "
                "2 active and 0 backup servers left. 0 sessions active, 0 requeued, "
                "0 remaining in queue.",
                # (NXDOMAIN frees the rows in the same order: d, then a)
                "Server t/w3 is going DOWN for maintenance (entry removed from SRV record). "
                "1 active and 0 backup servers left. 0 sessions active, 0 requeued, "
                "0 remaining in queue.",
                "Server t/w2 is going DOWN for maintenance (entry removed from SRV record). "
                "0 active and 0 backup servers left. 0 sessions active, 0 requeued, "
                "0 remaining in queue.",
                "backend 't' has no server available!",
            ]
            for k in px.kinds:
                _wait(lambda k=k: len(px.lines(k)) >= len(expected), what=f"lines ({k})")
                assert px.lines(k) == expected, k
        finally:
            px.close()


FQDN_CONFIG = _config("  timeout resolve 200ms", """\
backend b
  server s1 app.test:{port} resolvers dns init-addr none
  server s2 127.0.0.1:{port}
  server s3 _h._tcp.x.test resolvers dns init-addr none
  server s4 127.0.0.1:{port} resolvers dns
""")


def test_set_server_fqdn_as_in_haproxy(tmp: str) -> None:
    """`set server b/s fqdn <name>` in lb and HAProxy: the same answers, and the
    server's address follows the new name (a server given by address and a section
    starts being resolved)."""
    with DnsServer() as dns:
        dns.set("app.test", "A", [LOOPBACK_2])
        dns.set("other.test", "A", ["127.0.0.7"])
        dns.set("_h._tcp.x.test", "SRV", [(1, 1, 80, "app.test")])
        px = _Proxies(tmp, dns, free_port(), FQDN_CONFIG)
        try:
            px.settle(lambda s: _addr(s, "b", "s1")[0] == LOOPBACK_2
                      and _addr(s, "b", "s3")[0] == LOOPBACK_2, "first answers")
            by = "by 'stats socket command'\n\n"
            replies = [  # (in order: a name is set twice)
                ("set server b/s1 fqdn other.test",
                 f"b/s1 changed its FQDN from app.test to other.test {by}"),
                ("set server b/s1 fqdn other.test", f"no need to change the FDQN {by}"),
                # (the same name in other letters: said to change, and kept)
                ("set server b/s1 fqdn OTHER.test",
                 f"b/s1 changed its FQDN from other.test to OTHER.test {by}"),
                ("set server b/s1 fqdn", "set server <b>/<s> fqdn requires a FQDN.\n\n"),
                ("set server b/s1 fqdn bad_name!", f"invalid fqdn 'bad_name!' {by}"),
                ("set server b/s2 fqdn x.test",
                 "set server <b>/<s> fqdn failed because no resolution is configured.\n\n"),
                ("set server b/s3 fqdn x.test",
                 "set server <b>/<s> fqdn failed because SRV resolution is configured.\n\n"),
                ("set server b/s4 fqdn app.test",
                 f"b/s4 changed its FQDN from (null) to app.test {by}"),
            ]
            for cmd, want in replies:
                for k in px.kinds:
                    assert query(px.socks[k], cmd) == want, (k, cmd)
            rows = px.settle(lambda s: _addr(s, "b", "s1")[0] == "127.0.0.7"
                             and _addr(s, "b", "s4")[0] == LOOPBACK_2, "new names")
            fqdn = {k: [line.split()[17] for line in query(px.socks[k], "show servers state b")
                        .splitlines()[2:] if line] for k in px.kinds}
            assert fqdn["l"] == ["other.test", "-", "app.test", "app.test"]
            assert fqdn.get("h", fqdn["l"]) == fqdn["l"]
            assert _addr(rows, "b", "s2") == ("127.0.0.1", "0")
        finally:
            px.close()


def _get(port: int, keep: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
    """One GET (on ``keep`` when given: a kept-alive client connection)."""
    c = keep or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", "/")
        r = c.getresponse()
        return r.status, r.read()
    finally:
        if keep is None:
            c.close()


TRAFFIC = _config("  hold nx 300ms\n  hold timeout 300ms\n  timeout resolve 150ms", """\
backend b
  server s1 app.test:{port} resolvers dns resolve-prefer ipv4
""")


def test_traffic_goes_where_dns_says(tmp: str) -> None:
    """Requests reach the address DNS gives, move when it changes (a kept-alive client
    connection too: its idle server connection to the old address is closed), get a
    503 while the name is NXDOMAIN past `hold nx`, and come back with it; a name no
    server answers for is dropped after `hold timeout`. With `resolve-prefer ipv4`, A
    is asked first, and AAAA only after an error."""
    port = free_port()
    sock = os.path.join(tmp, "l.sock")
    with DnsServer() as dns, named_backend(LOOPBACK_2, port), named_backend(LOOPBACK_3, port):
        dns.set("app.test", "A", [LOOPBACK_2])
        fe = free_port()
        cfg = TRAFFIC.format(sock=sock, dns=dns.port, fe=fe, port=port)
        with LbProcess(cfg):
            wait_socket(sock)
            _wait(lambda: _addr(_servers(sock) or (), "b", "s1")[0] == LOOPBACK_2,
                  what="first answer")
            assert _get(fe) == (200, LOOPBACK_2.encode())
            keep = http.client.HTTPConnection("127.0.0.1", fe, timeout=5)
            try:
                assert _get(fe, keep) == (200, LOOPBACK_2.encode())
                dns.set("app.test", "A", [LOOPBACK_3])
                _wait(lambda: _addr(_servers(sock) or (), "b", "s1")[0] == LOOPBACK_3,
                      what="new address")
                assert _get(fe) == (200, LOOPBACK_3.encode())
                assert _get(fe, keep) == (200, LOOPBACK_3.encode())
            finally:
                keep.close()
            with dns.lock:  # valid answers to A: AAAA was never asked
                assert {t for _, t in dns.queries} == {1}
            dns.set_rcode("app.test", 3)
            _wait(lambda: _addr(_servers(sock) or (), "b", "s1") == ("-", "32"),
                  what="maintenance")
            assert "MAINT (resolution)" in query(sock, "show stat")
            assert _get(fe)[0] == 503
            dns.clear("app.test")
            dns.set("app.test", "A", [LOOPBACK_2])
            _wait(lambda: _addr(_servers(sock) or (), "b", "s1") == (LOOPBACK_2, "0"),
                  what="back")
            assert _get(fe) == (200, LOOPBACK_2.encode())
            # no name server answers: DNS timeout status after `hold timeout`
            dns.drop("app.test")
            _wait(lambda: _addr(_servers(sock) or (), "b", "s1") == ("-", "32"),
                  what="timeout maintenance")
            c = _counters(sock)
            assert c["timeout"] > 0 and c["nx"] > 0 and c["any_err"] == 0, c


def test_workers_use_the_address_the_master_resolved(tmp: str) -> None:
    """With `nbthread 2` the master resolves and every worker connects where the
    last answer says: ten new connections after a change all reach the new address."""
    port = free_port()
    sock = os.path.join(tmp, "l.sock")
    text = _config("  timeout resolve 150ms", """\
backend b
  server s1 app.test:{port} resolvers dns resolve-prefer ipv4
""", glob="  nbthread 2\n")
    with DnsServer() as dns, named_backend(LOOPBACK_2, port), named_backend(LOOPBACK_3, port):
        dns.set("app.test", "A", [LOOPBACK_2])
        fe = free_port()
        with LbProcess(text.format(sock=sock, dns=dns.port, fe=fe, port=port)):
            wait_socket(sock)
            _wait(lambda: _addr(_servers(sock) or (), "b", "s1")[0] == LOOPBACK_2,
                  what="first answer")
            assert {_get(fe) for _ in range(10)} == {(200, LOOPBACK_2.encode())}
            dns.set("app.test", "A", [LOOPBACK_3])
            _wait(lambda: _addr(_servers(sock) or (), "b", "s1")[0] == LOOPBACK_3,
                  what="new address")
            # (the master pushes at once; give the workers' loops a moment)
            _wait(lambda: all(_get(fe) == (200, LOOPBACK_3.encode()) for _ in range(10)),
                  timeout=3, what="every worker on the new address")


class _Rogue:
    """A UDP name server answering each query with ``replies(query)`` datagrams."""

    def __init__(self, replies: Callable[[bytes], list[bytes]]) -> None:
        self.replies = replies
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop:
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            for d in self.replies(data):
                self.sock.sendto(d, peer)

    def __enter__(self) -> _Rogue:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop = True
        self.thread.join(2)
        self.sock.close()


def _answer(query: bytes, ip: str, *, qid: int | None = None, name: bytes | None = None,
            rtype: int = 1, extra: bytes = b"") -> bytes:
    """A response to ``query`` with one A record (another id, question name or record
    type when asked)."""
    (q_id,) = struct.unpack("!H", query[:2])
    end = query.index(b"\x00", 12) + 5
    question = query[12:end]
    if name is not None:
        question = name + question[question.index(b"\x00") + 1:]
    rdata = socket.inet_aton(ip) if rtype == 1 else socket.inet_pton(socket.AF_INET6, ip)
    rr = b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, 30, len(rdata)) + rdata
    head = struct.pack("!HHHHHH", q_id if qid is None else qid, 0x8180, 1, 1, 0, 0)
    return head + question + rr + extra


def test_hostile_answers_are_counted_and_harmless(tmp: str) -> None:
    """Garbage, an answer too big for accepted_payload_size, one to no query in flight,
    one for another name, a CNAME pointing nowhere: each is counted where HAProxy
    counts it, and the server keeps the address the one good answer gave it."""
    def replies(q: bytes) -> list[bytes]:
        qtype = struct.unpack("!H", q[q.index(b"\x00", 12) + 1:][:2])[0]
        if qtype != 1:
            return [_answer(q, "::1", rtype=28)[:5]]  # AAAA: a cut-off message (invalid)
        return [
            b"\x00",  # shorter than an id: invalid
            _answer(q, "127.0.0.9", qid=(struct.unpack("!H", q[:2])[0] + 1) & 0xFFFF),
            _answer(q, "127.0.0.9", extra=b"\x00" * 600),  # over 512 bytes: too_big
            b"\xff" * 40,  # no query has this id: outdated (or invalid)
            _answer(q, LOOPBACK_2),
        ]

    sock = os.path.join(tmp, "l.sock")
    with _Rogue(replies) as rogue:
        cfg = TRAFFIC.format(sock=sock, dns=rogue.port, fe=free_port(), port=free_port())
        cfg = cfg.replace("resolve-prefer ipv4", "resolve-prefer ipv6")
        with LbProcess(cfg) as lb:
            wait_socket(sock)
            _wait(lambda: _addr(_servers(sock) or (), "b", "s1")[0] == LOOPBACK_2,
                  what="the good answer")
            c = _wait(lambda: (lambda c: c if c["too_big"] >= 2 else None)(_counters(sock)))
            assert c["invalid"] >= 2 and c["outdated"] >= 2 and c["valid"] >= 2, c
            assert c["update"] == 1, c  # set once, then kept
            assert lb.proc is not None and lb.proc.poll() is None
            assert not [line for line in lb.lines() if "Traceback" in line]


def test_a_failing_log_sink_does_not_stop_resolution() -> None:
    """In-loop, with a sink that raises on every line: the address still changes at
    each new answer (a half-applied answer would leave the resolution in flight and
    never asked again)."""
    import asyncio

    from lb.config import load_text
    from lb.resolvers import start_sections
    from lb.state import State

    def broken(*args: Any) -> None:
        raise OSError("log target gone")

    with DnsServer() as dns:
        dns.set("app.test", "A", [LOOPBACK_2])
        text = _config("  timeout resolve 100ms", """\
backend b
  server s1 app.test:80 resolvers dns init-addr none
""").format(sock="/nonexistent/s.sock", dns=dns.port, fe=free_port(), port=80)
        res = load_text(text.replace("  stats socket /nonexistent/s.sock level admin\n", ""),
                        "t.cfg")
        assert res.ok and res.config is not None, [d.message() for d in res.diagnostics]
        state = State(res.config)
        srv = state.backends["b"].servers[0]

        async def run() -> list[str]:
            loop = asyncio.get_running_loop()
            sections = start_sections(state, loop, broken)
            for sec in sections.values():
                await sec.open()
                sec.start()
            seen = []
            try:
                for ip in (LOOPBACK_2, LOOPBACK_3):
                    dns.set("app.test", "A", [ip])
                    for _ in range(100):
                        if srv.addr == ip and not srv.no_addr:
                            break
                        await asyncio.sleep(0.03)
                    seen.append(srv.addr)
            finally:
                for sec in sections.values():
                    sec.close()
            return seen

        assert asyncio.run(run()) == [LOOPBACK_2, LOOPBACK_3]
        assert srv.admin == 0  # out of resolution maintenance despite the sink


class _DriftingLoop:
    """An event loop whose clock moves 2 ms at every reading, as a loaded machine's
    does between two steps of one callback (uvloop's ``time()`` is not cached)."""

    def __init__(self, loop: Any) -> None:
        self._loop = loop
        self._drift = 0.0

    def time(self) -> float:
        self._drift += 0.002
        return self._loop.time() + self._drift

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> Any:
        return self._loop.call_at(when - self._drift, callback, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)


def test_an_srv_row_stays_with_its_server_on_a_slow_clock() -> None:
    """With `hold obsolete` at 0 (the default), a row in the answer just received is
    not obsolete, however long applying the answer takes: it keeps its server, which
    keeps its address. (Taking the time twice per answer released the row whenever
    the clock ticked in between, and the next answer gave it the next free server:
    seen once in CI under load.)"""
    import asyncio

    from lb.config import load_text
    from lb.resolvers import start_sections
    from lb.state import State

    lines: list[str] = []

    def sink(be: Any, level: str, text: str, mirror: bool = True) -> None:
        lines.append(text)

    with DnsServer() as dns:
        dns.set("c.svc.test", "A", [LOOPBACK_2])
        dns.set("_ng._tcp.svc.test", "SRV", [(10, 10, 8003, "c.svc.test")])
        dns.no_glue.add("_ng._tcp.svc.test")
        text = _config("  timeout resolve 20ms", """\
backend b
  server s1 127.0.0.1:{port}
backend u
  server-template v 2 _ng._tcp.svc.test resolvers dns init-addr none
""").format(sock="/nonexistent/s.sock", dns=dns.port, fe=free_port(), port=80)
        res = load_text(text.replace("  stats socket /nonexistent/s.sock level admin\n", ""),
                        "t.cfg")
        assert res.ok and res.config is not None, [d.message() for d in res.diagnostics]
        state = State(res.config)
        v1, v2 = state.backends["u"].servers

        async def run() -> int:
            loop = _DriftingLoop(asyncio.get_running_loop())
            sections = start_sections(state, loop, sink)  # type: ignore[arg-type]
            for sec in sections.values():
                await sec.open()
                sec.start()
            try:
                for _ in range(200):
                    if v1.addr == LOOPBACK_2 and not v1.no_addr:
                        break
                    await asyncio.sleep(0.01)
                answered = len(dns.queries)
                await asyncio.sleep(0.5)  # many more SRV answers, all the same
                return len(dns.queries) - answered
            finally:
                for sec in sections.values():
                    sec.close()

        more = asyncio.run(run())
    assert more >= 10, more
    assert (v1.addr, v1.no_addr, v1.port, v1.fqdn) == (LOOPBACK_2, False, 8003, "c.svc.test")
    assert v2.fqdn is None  # (the one row never moved to the second server)
    assert not [t for t in lines if "removed from SRV record" in t], lines
