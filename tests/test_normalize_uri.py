"""`http-request normalize-uri`, as HAProxy 2.6.12 does it.

The normalizers are checked three ways: as functions, on the cases HAProxy's
documentation gives and on what HAProxy 2.6.12 sent its server for each (the
fragment ones with `option accept-invalid-http-request`, the only way a `#` gets
through HAProxy; lb ignores that option and answers 400, as HAProxy does without
it); end to end, each of 11 rules in front of a server that echoes the request line
it got, 47 targets each, through lb and HAProxy side by side; and on the config
side, with HAProxy's texts. A `strict` normalizer's invalid sequence gives HAProxy's
400: `PR--`, TR -1, `ereq` counted, the connection closed.

One deliberate difference: HAProxy 2.6.12's parser leaves the normalizer unset
when `path-strip-dotdot`, `percent-to-uppercase` or `percent-decode-unreserved` is
followed by `if`/`unless` without its option word, so such a rule merges slashes
instead. lb does what the line says (`test_a_condition_does_not_change_the_normalizer`).
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from lb.http import uri_normalize as un
from tests.lbproc import LbProcess, RawBackend
from tests.stats_support import query
from tests.support_e2e import (
    HAPROXY,
    Haproxy,
    UdpLog,
    config_refusal,
    lb_or_haproxy,
    one_backend_config,
)

pytestmark = pytest.mark.timeout(120)

KINDS = ["lb", "haproxy"] if os.path.exists(HAPROXY) else ["lb"]

# (normalizer, option, part in, part out): HAProxy's documented examples, then what
# HAProxy 2.6.12 sent on (None: its 400)
UNIT_CASES = [
    ("fragment-encode", False, b"/#foo", b"/%23foo"),
    ("fragment-encode", False, b"/a?b#c#d", b"/a?b%23c%23d"),
    ("fragment-encode", False, b"/p?q=#", b"/p?q=%23"),
    ("fragment-strip", False, b"/#foo", b"/"),
    ("fragment-strip", False, b"/a?b#c#d", b"/a?b"),
    ("path-strip-dot", False, b"/.", b"/"),
    ("path-strip-dot", False, b"/./bar/", b"/bar/"),
    ("path-strip-dot", False, b"/a/./a", b"/a/a"),
    ("path-strip-dot", False, b"/.well-known/", b"/.well-known/"),
    ("path-strip-dot", False, b"/a/.", b"/a/"),
    ("path-strip-dotdot", False, b"/foo/../", b"/"),
    ("path-strip-dotdot", False, b"/foo/../bar/", b"/bar/"),
    ("path-strip-dotdot", False, b"/foo/bar/../", b"/foo/"),
    ("path-strip-dotdot", False, b"/../bar/", b"/../bar/"),
    ("path-strip-dotdot", False, b"/bar/../../", b"/../"),
    ("path-strip-dotdot", False, b"/foo//../", b"/foo/"),
    ("path-strip-dotdot", False, b"/foo/%2E%2E/", b"/foo/%2E%2E/"),
    ("path-strip-dotdot", False, b"/..", b"/../"),
    ("path-strip-dotdot", True, b"/../bar/", b"/bar/"),
    ("path-strip-dotdot", True, b"/bar/../../", b"/"),
    ("path-strip-dotdot", True, b"/a/b/c/../../../..", b"/"),
    ("path-strip-dotdot", True, b"/a/../b/../c", b"/c"),
    ("path-strip-dotdot", True, b"/x?a=/../", b"/x?a=/../"),
    ("path-merge-slashes", False, b"//", b"/"),
    ("path-merge-slashes", False, b"///a///b//?x//y", b"/a/b/?x//y"),
    ("percent-decode-unreserved", False, b"/%61dmin", b"/admin"),
    ("percent-decode-unreserved", False, b"/foo%3Fbar=baz", b"/foo%3Fbar=baz"),
    ("percent-decode-unreserved", False, b"/%%36%36", b"/%66"),
    ("percent-decode-unreserved", False, b"/%ZZ", b"/%ZZ"),
    ("percent-decode-unreserved", False, b"/%7e%7E%2d%5F%2e%41%30", b"/~~-_.A0"),
    ("percent-decode-unreserved", True, b"/%%36%36", None),
    ("percent-decode-unreserved", True, b"/%4", None),
    ("percent-decode-unreserved", True, b"/a?%zz", None),
    ("percent-to-uppercase", False, b"/%6f", b"/%6F"),
    ("percent-to-uppercase", False, b"/%zz", b"/%zz"),
    ("percent-to-uppercase", True, b"/%zz", None),
    ("percent-to-uppercase", True, b"/%", None),
    ("percent-to-uppercase", True, b"/%c3%a9", b"/%C3%A9"),
    ("query-sort-by-name", False, b"/?c=3&a=1&b=2", b"/?a=1&b=2&c=3"),
    ("query-sort-by-name", False, b"/?aaa=3&a=1&aa=2", b"/?a=1&aa=2&aaa=3"),
    ("query-sort-by-name", False, b"/?a=3&b=4&a=1&b=5&a=2", b"/?a=3&a=1&a=2&b=4&b=5"),
    ("query-sort-by-name", False, b"/?b=1&aa=2", b"/?aa=2&b=1"),
    ("query-sort-by-name", False, b"/?a&", b"/?a"),
    ("query-sort-by-name", False, b"/?&", b"/?"),
    ("query-sort-by-name", False, b"/?", b"/?"),
    ("query-sort-by-name", False, b"/?b&a#x", b"/?a#x&b"),
    ("query-sort-by-name", False, b"/a", b"/a"),
]


@pytest.mark.parametrize(("name", "option", "given", "want"), UNIT_CASES,
                         ids=[f"{n}{' +' if o else ''} {g.decode()}" for n, o, g, _ in UNIT_CASES])
def test_normalizers_as_haproxy_applies_them(name: str, option: bool, given: bytes,
                                             want: bytes | None) -> None:
    assert un.normalize(name, option, given) == want


RULES = ["fragment-encode", "fragment-strip", "path-merge-slashes", "path-strip-dot",
         "path-strip-dotdot", "path-strip-dotdot full", "percent-decode-unreserved",
         "percent-decode-unreserved strict", "percent-to-uppercase",
         "percent-to-uppercase strict", "query-sort-by-name"]
TARGETS = [
    b"/", b"/a/b", b"//", b"/foo//bar", b"///a///b//?x//y", b"/.", b"/./bar/", b"/a/./a",
    b"/.well-known/", b"/a/.", b"/a/./", b"/./", b"/../", b"/foo/../", b"/foo/../bar/",
    b"/foo/bar/../", b"/../bar/", b"/bar/../../", b"/foo//../", b"/foo/%2E%2E/", b"/a/..",
    b"/a/b/..", b"/..", b"/a/../b/../c", b"/a/b/c/../../../..", b"/x?a=/../", b"/%61dmin",
    b"/foo%3Fbar=baz", b"/%%36%36", b"/%ZZ", b"/%6f", b"/%zz", b"/%7e%7E%2d%5F%2e%41%30",
    b"/%4", b"/%", b"/a?%zz", b"/?c=3&a=1&b=2", b"/?aaa=3&a=1&aa=2",
    b"/?a=3&b=4&a=1&b=5&a=2", b"/?b=1&aa=2", b"/?", b"/?&", b"/?a&", b"/?&&a",
    b"http://h.com//a/./b/../c?z=1&a=2", b"http://h.com/%61?%7a", b"/a#b",
]
# what HAProxy 2.6.12 sent on for a few of them (the rest: compared with it live)
EXPECTED = {
    ("path-strip-dotdot full", b"http://h.com//a/./b/../c?z=1&a=2"): b"http://h.com//a/./c?z=1&a=2",
    ("path-merge-slashes", b"http://h.com//a/./b/../c?z=1&a=2"): b"http://h.com/a/./b/../c?z=1&a=2",
    ("path-strip-dot", b"http://h.com//a/./b/../c?z=1&a=2"): b"http://h.com//a/b/../c?z=1&a=2",
    ("query-sort-by-name", b"http://h.com//a/./b/../c?z=1&a=2"): b"http://h.com//a/./b/../c?a=2&z=1",
    ("percent-decode-unreserved strict", b"http://h.com/%61?%7a"): b"http://h.com/a?z",
    ("percent-to-uppercase strict", b"http://h.com/%61?%7a"): b"http://h.com/%61?%7A",
    ("percent-to-uppercase strict", b"/a?%zz"): 400,
    ("percent-decode-unreserved", b"/%%36%36"): b"/%66",
    ("fragment-strip", b"/a#b"): 400,  # (`#` is refused before any rule)
}


EXPOSE = "global\n    expose-experimental-directives\n"


def _echo(c: socket.socket, be: RawBackend) -> None:
    """A RawBackend handler answering each request with its request line."""
    while (head := be.recv_head(c)).endswith(b"\r\n\r\n"):
        line = head.split(b"\r\n", 1)[0]
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(line), line))


def _routed_config(extra_global: str = "") -> str:
    """One backend per rule, each with the rule alone; header x-n picks the backend."""
    uses = "".join(f"    use_backend n{i} if {{ req.hdr(x-n) -m str {r.replace(' ', '_')} }}\n"
                   for i, r in enumerate(RULES))
    backs = "".join(f"backend n{i}\n    http-request normalize-uri {r}\n"
                    "    server s1 127.0.0.1:@@s1@@\n" for i, r in enumerate(RULES))
    return EXPOSE + extra_global + one_backend_config(uses.rstrip("\n")) + backs


def _exchange(port: int, target: bytes, extra: bytes = b"") -> bytes:
    host = target.split(b"/")[2] if target.startswith(b"http://") else b"h"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\n" + extra +
                  b"Connection: close\r\n\r\n")
        got = b""
        while chunk := c.recv(65536):
            got += chunk
    return got


def _outcome(got: bytes) -> bytes | int:
    """The request line the server got, or the proxy's own status."""
    status = int(got.split(b" ", 2)[1])
    if status != 200:
        return status
    return got.split(b"\r\n\r\n", 1)[1].split(b" ")[1]


@pytest.fixture(scope="module")
def outcomes() -> dict[str, dict[tuple[str, bytes], bytes | int]]:
    got: dict[str, dict[tuple[str, bytes], bytes | int]] = {}
    for kind in KINDS:
        with RawBackend(_echo) as srv, lb_or_haproxy(kind, _routed_config(),
                                                     {"s1": srv.port}) as px:
            got[kind] = {(r, t): _outcome(_exchange(px.ports["fe"], t, b"x-n: " +
                                                    r.replace(" ", "_").encode() + b"\r\n"))
                         for r in RULES for t in TARGETS}
    return got


def test_every_rule_on_every_target_as_in_haproxy(outcomes: Any) -> None:
    lb = outcomes["lb"]
    for key, want in EXPECTED.items():
        assert lb[key] == want, key
    for rule in RULES:  # the unit table's cases that have a target here
        name, _, opt = rule.partition(" ")
        for n, option, given, want in UNIT_CASES:
            if n == name and option == bool(opt) and given in TARGETS and b"#" not in given:
                assert lb[(rule, given)] == (400 if want is None else want), (rule, given)
    if "haproxy" in outcomes:
        diff = {k: (v, outcomes["haproxy"][k]) for k, v in lb.items()
                if v != outcomes["haproxy"][k]}
        assert not diff, diff


def test_a_strict_refusal_is_haproxys_400() -> None:
    """The 400 page with `connection: close`, logged `PR--` with TR -1 and the page's
    size, counted in the frontend's `ereq`; the server sees nothing; the log shows
    the target as received."""
    seen = {}
    for kind in KINDS:
        log = UdpLog()
        srv = RawBackend(_echo).__enter__()
        srv_port = srv.port
        text = _routed_config("    stats socket ipv4@127.0.0.1:@@cli@@ level admin\n").replace(
            "    timeout connect 5s\n",
            f"    timeout connect 5s\n    log 127.0.0.1:{log.port} local0\n"
            '    log-format "%ST %B %TR/%Tw/%Tc/%Tr %tsc %b/%s %{+Q}r"\n')
        try:
            proc: Any = (LbProcess(text, ports={"s1": srv_port}) if kind == "lb" else
                         Haproxy(text, ports={"s1": srv_port}, single_thread=True))
            with proc as px:
                got = _exchange(px.ports["fe"], b"/a%zz/%41?q", b"x-n: percent-to-uppercase_strict\r\n")
                log.sock.settimeout(5)
                line = log.sock.recv(65536).split(b": ", 1)[1]
                stat = query(("127.0.0.1", px.ports["cli"]), "show stat -1 1 -1").splitlines()
                cols = stat[0].lstrip("# ").split(",")
                row = dict(zip(cols, stat[1].split(","), strict=False))
                assert not [h for h in srv.received if h]
        finally:
            log.close()
            srv.__exit__(None, None, None)
        head = got.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        assert head[0] == b"HTTP/1.1 400 Bad request"
        assert b"connection: close" in head
        seen[kind] = (line, row["ereq"], row["dreq"])
    assert seen["lb"][0].startswith(b"400 ")
    assert seen["lb"][0].endswith(b' -1/-1/-1/-1 PR-- n9/<NOSRV> "GET /a%zz/%41?q HTTP/1.1"\n')
    assert seen["lb"][1:] == ("1", "0")
    if "haproxy" in seen:
        assert seen["lb"] == seen["haproxy"]


def test_rules_after_see_the_normalized_target() -> None:
    """The point of normalizing: an ACL on the path after `percent-decode-unreserved`
    sees `/admin` in `/%61dmin`, and `path-strip-dotdot` stops `/x/../admin`."""
    text = EXPOSE + one_backend_config(
        "    http-request normalize-uri percent-decode-unreserved\n"
        "    http-request normalize-uri path-strip-dotdot full\n"
        "    http-request normalize-uri path-merge-slashes\n"
        "    http-request deny if { path_beg /admin }")
    for kind in KINDS:
        with RawBackend(_echo) as srv, lb_or_haproxy(kind, text, {"s1": srv.port}) as px:
            got = {t: _outcome(_exchange(px.ports["fe"], t))
                   for t in (b"/%61dmin", b"/x/../admin/", b"//admin", b"/public/../img/a")}
        assert got == {b"/%61dmin": 403, b"/x/../admin/": 403, b"//admin": 403,
                       b"/public/../img/a": b"/img/a"}, kind


def test_a_condition_does_not_change_the_normalizer() -> None:
    """`path-strip-dotdot if <cond>` strips dot-dot segments in lb. HAProxy 2.6.12
    merges slashes instead (its parser leaves the normalizer at its first value when
    the option word is missing and a condition follows); checked here too, so a
    HAProxy that fixes it shows up."""
    text = EXPOSE + one_backend_config(
        "    http-request normalize-uri path-strip-dotdot if { path_beg /a }")
    sent = {}
    for kind in KINDS:
        with RawBackend(_echo) as srv, lb_or_haproxy(kind, text, {"s1": srv.port}) as px:
            sent[kind] = _outcome(_exchange(px.ports["fe"], b"/a//b/../c"))
    assert sent["lb"] == b"/a//c"
    if "haproxy" in sent:
        assert sent["haproxy"] == b"/a/b/../c"


@pytest.fixture
def cfg_dir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="lbtest-normcfg-")
    yield d
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    os.rmdir(d)


CONFIG_CASES = [
    ("", "path-merge-slashes"),
    ("expose", ""),
    ("expose", "bogus"),
    ("expose", "path-strip-dotdot bad"),
    ("expose", "percent-decode-unreserved lax"),
    ("expose", "path-strip-dotdot full x"),
    ("expose", "percent-to-uppercase strict strict"),
    ("expose", "query-sort-by-name x"),
]


@pytest.mark.parametrize(("glob", "args"), CONFIG_CASES)
def test_config_errors_are_haproxys(cfg_dir: str, glob: str, args: str) -> None:
    path = os.path.join(cfg_dir, "n.cfg")
    with open(path, "w") as f:
        f.write(("global\n    expose-experimental-directives\n" if glob else "") +
                "defaults\n    mode http\n    timeout client 1s\n    timeout server 1s\n"
                "    timeout connect 1s\nfrontend f\n    bind 127.0.0.1:18450\n"
                f"    http-request normalize-uri {args}\n    default_backend b\n"
                "backend b\n    server s 127.0.0.1:80\n")
    lb = config_refusal([sys.executable, "-m", "lb"], path)
    if os.path.exists(HAPROXY):
        assert lb == config_refusal([HAPROXY], path)
    assert "normalize-uri" in lb


def test_http_response_has_no_normalize_uri(cfg_dir: str) -> None:
    path = os.path.join(cfg_dir, "r.cfg")
    with open(path, "w") as f:
        f.write("global\n    expose-experimental-directives\ndefaults\n    mode http\n"
                "frontend f\n    bind 127.0.0.1:18450\n"
                "    http-response normalize-uri path-merge-slashes\n")
    lb = config_refusal([sys.executable, "-m", "lb"], path)
    assert "but got 'normalize-uri'" in lb
