"""`log ... sample <ranges>:<size>`: which lines a log target sends, and the errors.

Compared with HAProxy 2.6.12 on 127.0.0.1 (2026-11-24): with the configuration of
``SAMPLED`` below (a global target `sample 2-3:3` that the frontend inherits with
`log global`, plus its own target `sample 1,4:4`, both to one UDP receiver) and eight
requests /r1../r8, HAProxy sent, in order, /r1 /r2 /r3 /r4 /r5 /r5 /r6 /r8 /r8: the
global target lines 2, 3, 5, 6 and 8, the frontend's lines 1, 4, 5 and 8. The error
texts are `haproxy -c`'s.
"""

from __future__ import annotations

import socket
import urllib.request

import pytest

from lb import log
from lb.config import load_text
from lb.config.model import LogTarget
from lb.config.proxy_kw import parse_log_sample
from tests.lbproc import LbProcess


@pytest.mark.parametrize("spec,parsed", [
    ("1:2", (((1, 1),), 2)),
    ("1-2,3:4", (((1, 2), (3, 3)), 4)),
    ("3,1:3", (((1, 1), (3, 3)), 3)),  # kept in order of their low end
    ("1,:3", (((1, 1),), 3)),  # a trailing comma ends the list
    ("01:3", (((1, 1),), 3)),
    ("2,1-3:4", (((1, 3), (2, 2)), 4)),  # HAProxy's overlap test misses an enclosing range
    ("4294967295:4294967295", (((4294967295, 4294967295),), 4294967295)),
])
def test_sample_specs_accepted(spec, parsed):
    assert parse_log_sample(spec) == parsed


@pytest.mark.parametrize("spec,msg", [  # haproxy -c, 2.6.12
    ("", "Missing sample size"),
    ("x", "Missing sample size"),
    ("1:x", "wrong sample size 'x' for sample range '1'"),
    ("1:", "wrong sample size '' for sample range '1'"),
    ("1:+3", "wrong sample size '+3' for sample range '1'"),
    ("1:2:3", "wrong sample size '2:3' for sample range '1'"),
    ("1:0", "wrong sample size '0' for sample range '1'"),
    ("1:4294967296", "wrong sample size '4294967296' for sample range '1'"),
    ("0:2", "wrong sample range '0'"),
    ("0:x", "wrong sample range '0'"),  # the ranges are read first
    ("a,1:4", "wrong sample range 'a,1'"),  # the rest of the list from the bad one
    ("1,a:4", "wrong sample range 'a'"),
    ("1,,2:3", "wrong sample range ',2'"),
    (",:3", "wrong sample range ','"),
    ("2-1:4", "wrong sample range '2-1'"),
    ("1-1:3", "wrong sample range '1-1'"),
    ("1-:3", "wrong sample range '1-'"),
    ("+1:3", "wrong sample range '+1'"),
    ("1x:2", "wrong sample range '1x'"),
    ("4294967296:4294967297", "wrong sample range '4294967296'"),
    ("1-2,2-3:4", "ranges are overlapping"),
    ("1,1:x", "ranges are overlapping"),
    (":4", "no sampling ranges given"),
    (":x", "no sampling ranges given"),
    ("3:2", "sample size 2 should be greater or equal to 3 the maximum of the high "
     "ranges limits"),
])
def test_sample_spec_errors(spec, msg):
    assert parse_log_sample(spec) == msg
    line = f"log 127.0.0.1 sample {spec} local0" if spec else "log 127.0.0.1 sample"
    res = load_text(f"global\n {line}\n", "t.cfg")
    assert [d.message() for d in res.diagnostics if d.severity == "alert"] == [
        f"parsing [t.cfg:2] : log : {msg}"]


@pytest.mark.parametrize("line,msg", [  # haproxy -c, 2.6.12: an option without its value
    ("log 127.0.0.1 len", "log : invalid log length '', must be between 80 and 65535"),
    ("log 127.0.0.1 format", "log : unknown log format ''"),
    ("log 127.0.0.1 len 100", "log : unknown log facility ''"),
    ("log 127.0.0.1 sample 1:2", "log : unknown log facility ''"),
    # the options in their order only (len, format, sample), each once
    ("log 127.0.0.1 format short len 80 local0", "log : unknown log facility 'len'"),
    ("log 127.0.0.1 sample 1:2 format raw local0", "log : unknown log facility 'format'"),
    ("log 127.0.0.1 format raw format raw local0", "log : unknown log facility 'format'"),
])
def test_log_option_without_value(line, msg):
    res = load_text("defaults\n mode http\n timeout client 1s\n timeout server 1s\n"
                    f" timeout connect 1s\nfrontend f\n bind :80\n {line}\n", "t.cfg")
    assert [d.message() for d in res.diagnostics if d.severity == "alert"] == [
        f"parsing [t.cfg:8] : {msg}"]


def test_sample_parsed_onto_the_target():
    res = load_text("global\n log 127.0.0.1:514 len 200 sample 1-2,5:6 local3 info\n",
                    "t.cfg")
    assert res.ok
    t, = res.config.global_.logs
    assert (t.sample, t.sample_size, t.length, t.facility, t.level) == (
        ((1, 2), (5, 5)), 6, 200, "local3", "info")


class _Fd:
    def __init__(self) -> None:
        self.r, self.w = socket.socketpair()
        self.r.settimeout(0.5)

    def lines(self) -> list[bytes]:
        out = b""
        try:
            while True:
                out += self.r.recv(65536)
        except TimeoutError:
            pass
        return out.splitlines()


def test_sink_sends_the_sampled_lines_and_counts_only_lines_it_accepts() -> None:
    fd = _Fd()
    try:
        sink = log.get_sink(LogTarget(kind="fd", address=str(fd.w.fileno()), format="raw",
                                      level="info", sample=((2, 3),), sample_size=3))
        meta = log.Meta(pid=1)
        for i in range(1, 9):
            sink.send(log.DEBUG, b"debug %d" % i, 0.0, meta)  # above `info`: not counted
            sink.send(log.INFO, b"line %d" % i, 0.0, meta)
        assert fd.lines() == [b"line 2", b"line 3", b"line 5", b"line 6", b"line 8"]
    finally:
        log.close_sinks()
        fd.r.close()
        fd.w.close()


SAMPLED = """
global
    log 127.0.0.1:@@syslog@@ format raw sample 2-3:3 local0
defaults
    mode http
    log global
    option httplog
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend f
    bind 127.0.0.1:@@fe@@
    log 127.0.0.1:@@syslog@@ format raw sample 1,4:4 local1
    http-request return status 200 content-type text/plain string ok
"""


def test_sampled_traffic_logs_match_haproxy() -> None:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(0.5)
    try:
        with LbProcess(SAMPLED, ports={"syslog": rx.getsockname()[1]}) as lb:
            try:
                while True:  # anything sent at start-up
                    rx.recv(9999)
            except TimeoutError:
                pass
            for i in range(1, 9):  # one after the other: the lines leave in this order
                with urllib.request.urlopen(f"http://127.0.0.1:{lb.ports['fe']}/r{i}",
                                            timeout=5) as r:
                    assert r.read() == b"ok"
            got = []
            try:
                while True:
                    d = rx.recv(9999).decode()
                    got.append(d.split('"GET ')[1].split()[0])
            except TimeoutError:
                pass
        assert got == ["/r1", "/r2", "/r3", "/r4", "/r5", "/r5", "/r6", "/r8", "/r8"]
    finally:
        rx.close()
