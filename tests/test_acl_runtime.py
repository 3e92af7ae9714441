"""ACL pattern lists changed from the stats socket (`show/get/add/del/clear acl`):
the answers HAProxy 2.6.12 gives on the same configuration, byte for byte (entry
addresses and file names aside), and the traffic that follows the change."""

from __future__ import annotations

import http.client
import os
import re
import tempfile

from lb.config import load_text
from lb.match import patref
from tests.backends import HttpBackend
from tests.lbproc import LbProcess
from tests.stats_support import ADMIN_HEAD, assert_same_answers, query, wait_socket

CFG = ADMIN_HEAD + """
frontend fe
    bind 127.0.0.1:{fe}
    acl bad src -f {lst}
    acl bad2 src -f {lst}
    acl api path_beg /api /v2
    acl host hdr(host) -i example.com
    acl small req.hdr_cnt(x-n) lt 3
    http-request deny if bad
    http-request deny if {{ path /deny }}
    http-request return status 202 if api
    default_backend be

backend be
    server s1 127.0.0.1:{be}
"""

COMMANDS = [
    "show acl", "show acl #0", "show acl #2", "show acl {lst}", "add acl #2 /x",
    "get acl #3 /xyz", "get acl #3 /api/a", "get acl #0 10.0.0.1", "get acl #0 10.0.0.9",
    "get acl #4 EXAMPLE.com", "get acl #4 other.com", "del acl #2 /x", "del acl #3 /nope",
    "add acl #9 a", "add acl {lst} 10.0.0.3", "show acl #0", "del acl #0 10.0.0.3",
    "show acl #0", "add acl #0 notanip", "show acl foo", "clear acl #9", "get acl #2",
    "add acl #2", "del acl #2", "clear acl", "add acl #3 /new", "get acl #3 /new/x",
    "show acl #3", "del acl #3 /new", "get acl #3 /new/x", "clear acl #0", "show acl #0",
    "add acl #0 10.1.0.0/16", "get acl #0 10.1.2.3", "add acl #5 /deny2",
]
# (not `show acl` again after the changes: HAProxy 2.6.12's entry_cnt underflows to
# 18446744073709551615 after a refused `add acl` and a `clear acl`; lb counts the
# entries it holds)


def _normal(text: str) -> str:
    text = re.sub(r"0x[0-9a-f]+", "0xP", text)
    text = re.sub(r"file '[^']*\.cfg'", "file 'X'", text)
    # HAProxy's own httpclient ACLs, which lb does not have
    return "".join(line for line in text.splitlines(True) if "'httpclient'" not in line)


def test_acl_commands_answer_as_haproxy(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lst = str(tmp_path / "block.lst")
    with open(lst, "w") as f:
        f.write("10.0.0.1\n10.0.0.2\n")
    assert_same_answers(CFG, COMMANDS, _normal, str(tmp_path), lst=lst)


def _get(port: int, path: str, host: str = "t") -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Host": host})
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def test_traffic_follows_the_lists() -> None:
    d = tempfile.mkdtemp(prefix="lbacl")
    lst = os.path.join(d, "block.lst")
    with open(lst, "w") as f:
        f.write("10.0.0.1\n")
    sock = os.path.join(d, "lb.sock")
    with HttpBackend("s1") as be, \
            LbProcess(CFG.format(sock=sock, fe="@@fe@@", lst=lst, be=be.port)) as lb:
        port = lb.ports["fe"]
        wait_socket(sock)
        assert _get(port, "/x") == 200
        assert query(sock, f"add acl {lst} 127.0.0.0/8") == "\n"
        assert _get(port, "/x") == 403  # the next request sees it
        assert query(sock, "del acl #0 127.0.0.0/8") == "\n"
        assert _get(port, "/x") == 200
        assert _get(port, "/api/x") == 202 and _get(port, "/web/x") == 200
        assert query(sock, "add acl #3 /web") == "\n"
        assert _get(port, "/web/x") == 202
        assert query(sock, "clear acl #3") == "\n"
        assert _get(port, "/api/x") == 200  # not even the configured ones
        # a user session reads the lists but may not change them
        assert "Permission denied" in query(sock, "user; add acl #3 /api")


def test_each_expression_keeps_its_own_flags(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """One -f file used with and without -i; an int list with an operator keeps its
    meaning when recompiled."""
    lst = tmp_path / "hosts.lst"
    lst.write_text("example.com\n")
    text = (f"frontend fe\n mode http\n bind :8080\n acl ci hdr(host) -i -f {lst}\n"
            f" acl cs hdr(host) -f {lst}\n acl few req.hdr_cnt(x) lt 3\n")
    res = load_text(text)
    assert res.ok, res.diagnostics
    refs = res.config.pattern_refs
    shared = refs.find(str(lst))
    assert shared is not None and len(shared.exprs) == 2
    assert patref.add(shared, "Other.org") is None
    ci, cs = shared.exprs
    assert ci.matchers[0].match(b"other.org") and not cs.matchers[0].match(b"other.org")
    assert cs.matchers[0].match(b"Other.org")
    few = refs.find("#3")  # (#0 the file, #1 and #2 the inline lists of ci and cs)
    assert [e.text for e in few.entries] == [":2"]  # `lt 3` as the range it means
    assert patref.add(few, "10") is None
    m = few.exprs[0].matchers[0]
    assert m.match(0) and m.match(2) and m.match(10) and not m.match(3)
    assert patref.add(few, "x") == "'x' is not a number"
    assert not patref.delete(few, "nope")
    # a regex that does not compile is refused, and leaves the list usable
    rx = load_text("frontend fe\n mode http\n bind :8080\n acl r path_reg ^/a\n")
    lst = rx.config.pattern_refs.find("#0")
    assert patref.add(lst, "(") is not None and [e.text for e in lst.entries] == ["^/a"]
    assert patref.add(lst, "^/b") is None and lst.exprs[0].matchers[0].match(b"/b/c")
    assert patref.delete(few, "10") and [e.text for e in few.entries] == [":2"]
