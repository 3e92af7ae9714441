"""Maps: the `map*` converters, `acl -M`, and `show/get/add/set/del/clear map`.

The expected lookups, error texts and CLI answers were read off HAProxy 2.6.12
(Debian) on the same files; the tests that can run it compare both binaries live.
"""

from __future__ import annotations

import http.client
import os
import re
from pathlib import Path
from typing import Any

import pytest

from lb.config import load_text
from lb.match import maps, patref, sample
from lb.match.patref import PatternRefs
from tests.backends import HttpBackend
from tests.lbproc import LbProcess
from tests.stats_support import ADMIN_HEAD, assert_same_answers, query, wait_socket
from tests.test_config_haproxy_diff import HAPROXY, HEAD, assert_check_like_haproxy

FILES = {
    # comment, leading/trailing blanks, a duplicate key, a CRLF line, a key alone
    "m.map": ("# comment\n   www.example.com   bk_www  \nwww.example.com second\n"
              "api.example.com bk api with spaces\r\n\nkeyonly\n\t/static  static\n"
              "/stat stat\n/static/img img\n"),
    "ip.map": "10.0.0.0/8 ten\n10.1.0.0/16 ten-one\n10.1.2.3 host\n::1 six\n",
    "i.map": "1 one\n5 five\n10 ten\n",
    "r.map": "^/api/(v[0-9]+)/ api-\\1\n\\.png$ png\n(?i)^/ADMIN adm\n",
    "d.map": "example.com ex\nwww.example.org org\n",
    "si.map": "a 12\nb -3\n c 16 \n",
    "sip.map": "a 1.2.3.4\nb ::1\n",
    "bad_int.map": "a 12\n c 0x10\n",
    "bad_rx.map": "([a-z broken\n",
}


@pytest.fixture()
def mapdir(tmp_path: Path) -> Path:
    for name, text in FILES.items():
        (tmp_path / name).write_bytes(text.encode())
    return tmp_path


def _convert(conv: str, value: str) -> Any:
    expr = sample.parse_expr(f"str({value}),{conv}")
    ctx = sample.SampleSubject()
    ctx.memo = {}
    return expr.fetch(ctx)


def test_map_file_lines(mapdir: Path) -> None:
    rows = maps.read_map_file(str(mapdir / "m.map"))
    assert rows == [("www.example.com", "bk_www", 2), ("www.example.com", "second", 3),
                    ("api.example.com", "bk api with spaces", 4), ("keyonly", "", 6),
                    ("/static", "static", 7), ("/stat", "stat", 8),
                    ("/static/img", "img", 9)]


# (converter with {d} for the directory, input, what HAProxy 2.6.12 answered; None = no
# sample, the converter failed)
LOOKUPS = [
    ("map({d}/m.map,DEF)", "www.example.com", b"bk_www"),  # the first of equal keys
    ("map({d}/m.map,DEF)", "api.example.com", b"bk api with spaces"),
    ("map({d}/m.map,DEF)", "keyonly", b""),
    ("map({d}/m.map,DEF)", "/static/img/a.png", b"DEF"),
    ("map({d}/m.map)", "nothing", None),
    ("map_beg({d}/m.map)", "/static/img/a.png", b"img"),  # the longest prefix
    ("map_beg({d}/m.map)", "/stat", b"stat"),
    ("map_sub({d}/m.map)", "/static/img/a.png", b"static"),  # the first in the file
    ("map_end({d}/m.map)", "/static/img/a.png", None),
    ("map_end({d}/m.map)", "www.example.com", b"bk_www"),
    ("map_dir({d}/m.map)", "/static/img/a.png", b"static"),
    ("map_dom({d}/d.map)", "foo.example.com", b"ex"),
    ("map_dom({d}/d.map)", "example.org", None),
    ("map_ip({d}/ip.map)", "10.1.2.3", b"host"),  # the longest network
    ("map_ip({d}/ip.map)", "10.1.9.9", b"ten-one"),
    ("map_ip({d}/ip.map)", "10.9.9.9", b"ten"),
    ("map_ip({d}/ip.map)", "::1", b"six"),
    ("map_ip({d}/ip.map)", "11.0.0.1", None),
    ("map_int({d}/i.map)", "5", b"five"),
    ("map_int({d}/i.map)", "10.1.2.3", b"ten"),  # as an integer: its leading digits
    ("map_reg({d}/r.map,NONE)", "/api/v2/x", b"api-\\1"),
    ("map_reg({d}/r.map,NONE)", "/a.png", b"png"),
    ("map_reg({d}/r.map,NONE)", "/admin/x", b"adm"),
    ("map_reg({d}/r.map,NONE)", "/x", b"NONE"),
    ("map_regm({d}/r.map,NONE)", "/api/v3/z", b"api-v3"),  # with the group put in
    ("map_str_int({d}/si.map,-1)", "c", 16),
    ("map_str_int({d}/si.map,-1)", "zz", -1),
    ("map_str_int({d}/si.map),add(1)", "b", -2),
    ("map_str_ip({d}/sip.map,9.9.9.9)", "a", b"1.2.3.4"),
    ("map_str_ip({d}/sip.map,9.9.9.9)", "b", b"::1"),
    ("map_str_ip({d}/sip.map,9.9.9.9)", "zz", b"9.9.9.9"),
]


@pytest.mark.parametrize("conv,value,expect", LOOKUPS)
def test_lookups(mapdir: Path, conv: str, value: str, expect: Any) -> None:
    with maps.using(maps.MapSource(PatternRefs())):
        assert _convert(conv.format(d=mapdir), value) == expect


# (converter, HAProxy's detail after "invalid arg(s) in converter '<name>' : ")
ERRORS = [
    ("map", "invalid args in converter 'map' : failed to open pattern file <>"),
    ("map({d}/none.map)", "invalid args in converter 'map' : failed to open pattern "
     "file <{d}/none.map>"),
    ("map_str_int({d}/si.map,abc)", "invalid arg 2 in converter 'map_str_int' : failed "
     "to parse 'abc' as type 'integer' at position 2"),
    ("map_str_ip({d}/sip.map,notip)", "invalid args in converter 'map_str_ip' : map: "
     "cannot parse default ip <notip>."),
    ("map_int({d}/m.map)", "invalid args in converter 'map_int' : 'www.example.com' is not"
     " a number at line 2 of file '{d}/m.map'"),
    ("map_ip({d}/m.map)", "invalid args in converter 'map_ip' : 'www.example.com' is not "
     "a valid IPv4 or IPv6 address at line 2 of file '{d}/m.map'"),
    ("map_str_ip({d}/m.map)", "invalid args in converter 'map_str_ip' : unable to parse "
     "'bk_www' at line 2 of file '{d}/m.map'"),
    ("map_str_int({d}/bad_int.map)", "invalid args in converter 'map_str_int' : unable to"
     " parse '0x10' at line 2 of file '{d}/bad_int.map'"),
]


@pytest.mark.parametrize("conv,text", ERRORS)
def test_errors(mapdir: Path, conv: str, text: str) -> None:
    with maps.using(maps.MapSource(PatternRefs())), \
            pytest.raises(sample.SampleError) as info:
        sample.parse_expr("str(x)," + conv.format(d=mapdir))
    assert str(info.value) == text.format(d=mapdir)


def test_a_file_is_a_list_or_a_map_not_both(mapdir: Path) -> None:
    one_then_two = (f"frontend fe\n mode http\n bind :8080\n acl a hdr(x) -f {mapdir}/i.map\n"
                    f" http-request set-header X %[req.hdr(x),map({mapdir}/i.map)]\n")
    res = load_text(one_then_two)
    assert not res.ok
    assert any(f'The file "{mapdir}/i.map" is already used as one column file and cannot '
               "be used by as two column file.." in d.text for d in res.diagnostics)
    two_then_one = (f"frontend fe\n mode http\n bind :8080\n"
                    f" http-request set-header X %[req.hdr(x),map({mapdir}/i.map)]\n"
                    f" acl a hdr(x) -f {mapdir}/i.map\n")
    res = load_text(two_then_one)
    assert not res.ok
    assert any(f'The file "{mapdir}/i.map" is already used as two column file and cannot '
               "be used by as one column file.." in d.text for d in res.diagnostics)
    # -M makes the ACL a map user: it matches the keys, and shares the list
    shared = (f"frontend fe\n mode http\n bind :8080\n acl s path_beg -M -f {mapdir}/m.map\n"
              f" http-request set-header X %[path,map_beg({mapdir}/m.map)] if s\n")
    res = load_text(shared)
    assert res.ok, res.diagnostics
    ref = res.config.pattern_refs.find(f"{mapdir}/m.map")
    assert ref.is_acl and ref.is_map and ref.two_column and len(ref.exprs) == 1
    assert ref.exprs[0].matchers[0].match(b"/static/x")


CHECK_CASES = [
    "http-request set-header X %[req.hdr(x),map_int({d}/m.map)]",
    "http-request set-header X %[req.hdr(x),map_str_ip({d}/sip.map,notip)]",
    "http-request set-header X %[req.hdr(x),map_str_int({d}/si.map,abc)]",
    "http-request set-header X %[req.hdr(x),map({d}/none.map)]",
    "http-request set-header X %[req.hdr(x),map_ip({d}/ip.map,x)]",
    "use_backend %[req.hdr(host),lower,map({d}/m.map,be)]",
    "http-request set-header X %[req.hdr(x),map({d}/i.map)]\n acl a hdr(x) -f {d}/i.map",
]


@pytest.mark.skipif(not os.path.exists(HAPROXY), reason="needs Debian's haproxy")
@pytest.mark.parametrize("stmt", CHECK_CASES)
def test_check_messages_match_haproxy(mapdir: Path, capsys: Any, stmt: str) -> None:
    path = str(mapdir / "t.cfg")
    with open(path, "w") as fh:
        fh.write(HEAD + "listen l\n bind :18080\n " + stmt.format(d=mapdir)
                 + "\n server s 127.0.0.1:80\nbackend be\n server s 127.0.0.1:80\n")
    assert_check_like_haproxy(path, capsys)


# ----------------------------------------------------------------- the stats socket

CFG = ADMIN_HEAD + """
frontend fe
    bind 127.0.0.1:{fe}
    acl isstatic path_beg -M -f {d}/m.map
    acl a2 hdr(x) -f {d}/i2.map
    http-request set-header X-Str %[req.hdr(x),map({d}/m.map,DEF)]
    http-request set-header X-Beg %[req.hdr(x),map_beg({d}/m.map)]
    http-request set-header X-Int %[req.hdr(x),map_int({d}/i.map)]
    http-request set-header X-Si %[req.hdr(x),map_str_int({d}/si.map)]
    http-request set-header X-Ip %[req.hdr(x),map_ip({d}/ip.map)]
    default_backend be

backend be
    server s1 127.0.0.1:{be}
"""

COMMANDS = [
    "show map", "show acl", "show map {d}/m.map", "show map #1", "show map #2",
    "show acl {d}/si.map", "show acl {d}/m.map", "get map {d}/m.map www.example.com",
    "get map #1 /static/img/x", "get map {d}/i.map 5", "get map {d}/i.map abc",
    "get map {d}/si.map a", "get map {d}/ip.map 10.1.2.9", "get acl {d}/ip.map 10.1.2.9",
    "get acl {d}/m.map /static/x", "get map {d}/nope x", "get map", "get map {d}/m.map",
    "add map {d}/m.map new.example.com newval", "add map {d}/m.map onlykey",
    "add map {d}/i.map abc x", "add map {d}/i.map 7 seven with space",
    "add map {d}/si.map k notint", "add map {d}/ip.map bad ip", "add map /nonexist 1 2",
    "add map", "add acl {d}/m.map zzz", "add map {d}/i2.map 5 x",
    "set map {d}/m.map www.example.com changed", "set map {d}/m.map nope x",
    "set map {d}/m.map #0xdead x", "set map {d}/i.map 9", "show map {d}/m.map",
    "show map {d}/i.map", "get map {d}/m.map www.example.com",
    "del map {d}/m.map nope", "del map {d}/m.map", "del map {d}/i.map 7",
    "del map {d}/si.map #0xdeadbeef", "show map {d}/i.map", "clear map", "clear map #77",
    "clear map {d}/i.map", "show map {d}/i.map", "get map {d}/i.map 5",
]


def _normal(text: str) -> str:
    text = re.sub(r"0x[0-9a-f]+", "0xP", text)
    text = re.sub(r"file '[^']*\.cfg'", "file 'X'", text)
    # HAProxy counts a list's entries once per user (and underflows); lb once
    text = re.sub(r"entry_cnt=\d+", "entry_cnt=N", text)
    return "".join(line for line in text.splitlines(True) if "'httpclient'" not in line)


@pytest.mark.skipif(not os.path.exists(HAPROXY), reason="needs Debian's haproxy")
def test_map_commands_answer_as_haproxy(mapdir: Path) -> None:
    (mapdir / "i2.map").write_text(FILES["i.map"])
    assert_same_answers(CFG, COMMANDS, _normal, str(mapdir), d=mapdir)


ROUTING = ADMIN_HEAD + """
frontend fe
    bind 127.0.0.1:{fe}
    use_backend %[req.hdr(host),lower,map({d}/hosts.map,be_a)]
    http-request set-header X-Tier %[req.hdr(host),lower,map_str_int({d}/tier.map,0)]

backend be_a
    server a 127.0.0.1:{a}

backend be_b
    server b 127.0.0.1:{b}
"""


def _server(port: int, host: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/", headers={"Host": host})
        r = conn.getresponse()
        r.read()
        return r.getheader("x-server") or str(r.status)
    finally:
        conn.close()


def test_traffic_follows_the_map(tmp_path: Path) -> None:
    """`use_backend` through a host map: the route follows `set/add/del/clear map` from
    the next request on; the request headers carry the typed value; a user session may
    read the maps but not change them; bad values are refused and change nothing."""
    (tmp_path / "hosts.map").write_text("api.example.com be_b\nwww.example.com be_a\n")
    (tmp_path / "tier.map").write_text("api.example.com 2\n")
    sock = str(tmp_path / "lb.sock")
    with HttpBackend("a") as a, HttpBackend("b") as b, \
            LbProcess(ROUTING.format(sock=sock, fe="@@fe@@", d=tmp_path, a=a.port,
                                     b=b.port)) as lb:
        port = lb.ports["fe"]
        wait_socket(sock)
        assert _server(port, "API.example.com") == "b"
        assert _server(port, "www.example.com") == "a"
        assert _server(port, "other.example.com") == "a"  # the default
        assert b.requests[-1].header("x-tier") == "2"
        hosts = f"{tmp_path}/hosts.map"
        assert query(sock, f"set map {hosts} api.example.com be_a") == "\n"
        assert _server(port, "api.example.com") == "a"
        assert query(sock, f"add map {hosts} other.example.com be_b") == "\n"
        assert _server(port, "other.example.com") == "b"
        assert query(sock, f"del map {hosts} other.example.com") == "\n"
        assert _server(port, "other.example.com") == "a"
        assert "Permission denied" in query(sock, f"user; set map {hosts} x be_b")
        assert "found=yes" in query(sock, f"user; get map {hosts} www.example.com")
        tier = f"{tmp_path}/tier.map"
        assert query(sock, f"set map {tier} api.example.com two") == \
            "unable to parse 'two'.\n\n"
        assert query(sock, f"set map {tier} api.example.com 3") == "\n"
        assert _server(port, "api.example.com") == "a"
        assert a.requests[-1].header("x-tier") == "3"
        assert query(sock, f"clear map {hosts}") == "\n"
        assert query(sock, f"show map {hosts}") == "\n"
        assert _server(port, "api.example.com") == "a"


def test_add_map_payload(tmp_path: Path) -> None:
    """`add map <map> <<` takes one entry a line, all or none."""
    (tmp_path / "hosts.map").write_text("www.example.com be_a\n")
    (tmp_path / "tier.map").write_text("x 1\n")
    sock = str(tmp_path / "lb.sock")
    with HttpBackend("a") as a, HttpBackend("b") as b, \
            LbProcess(ROUTING.format(sock=sock, fe="@@fe@@", d=tmp_path, a=a.port,
                                     b=b.port)) as lb:
        wait_socket(sock)
        hosts = f"{tmp_path}/hosts.map"
        answer = query(sock, f"add map {hosts} <<\nb.example.com be_b\nc.example.com be_b\n")
        assert answer == "\n"
        assert _server(lb.ports["fe"], "c.example.com") == "b"
        tier = f"{tmp_path}/tier.map"
        assert query(sock, f"add map {tier} <<\ny 2\nz three\n") == \
            "unable to parse 'three'.\n\n"
        assert [line.split()[1:] for line in query(sock, f"show map {tier}").split("\n")
                if line] == [["x", "1"]]


def test_a_worker_takes_the_masters_copy() -> None:
    """The master pushes a changed map with its values; a worker's views follow."""
    ms = load_text("frontend fe\n mode http\n bind :8080\n"
                   " http-request set-header X %[req.hdr(x),map_str_int(/dev/null,0)]\n")
    assert ms.ok, ms.diagnostics
    ref = ms.config.pattern_refs.find("/dev/null")
    view = ref.views[("str", "int")]
    assert patref.add(ref, "k", "41") is None and view.lookup(b"k") == 41
    entries = [(e.uid, e.text, e.value) for e in ref.entries]
    ws = load_text("frontend fe\n mode http\n bind :8080\n"
                   " http-request set-header X %[req.hdr(x),map_str_int(/dev/null,0)]\n")
    wref = ws.config.pattern_refs.find("/dev/null")
    assert patref.replace_entries(wref, ref.version, entries)
    assert wref.views[("str", "int")].lookup(b"k") == 41
