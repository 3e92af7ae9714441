"""The options of `bind` lines and of `stats socket` (lb.config.bind_kw), the numbers
and names of listeners, and the `so_id` / `so_name` fetches.

Each message is checked twice: lb's text as written here (the texts HAProxy 2.6.12
prints, read off `haproxy -c`), and lb against HAProxy itself on the same file when
HAProxy is installed. The `-c` cases bind nothing, so their fixed ports are only
words; the tests that run a proxy take their ports from ``tests.lbproc.free_port``.
"""

from __future__ import annotations

import os

import pytest

from lb.config import load_text
from lb.config.bind_kw import BIND_KEYWORDS, closest_option
from lb.config.registry import fingerprint_match
from tests.lbproc import RawBackend, free_port
from tests.stats_support import query
from tests.support_e2e import HAPROXY, Haproxy, answer_ok, fetch, lb_or_haproxy
from tests.test_config_haproxy_diff import assert_text_like_haproxy

pytestmark = pytest.mark.timeout(60)

HEAD = ("defaults\n mode http\n timeout client 5s\n timeout server 5s\n"
        " timeout connect 1s\n")
TAIL = " default_backend b\nbackend b\n server s 127.0.0.1:80\n"
HAVE_HAPROXY = os.path.exists(HAPROXY)
need_haproxy = pytest.mark.skipif(not HAVE_HAPROXY, reason="HAProxy 2.6.12 is not installed")


def bind_cfg(opts: str, addr: str = "127.0.0.1:18001") -> str:
    """The options on line 7, a `bind` in frontend `f`."""
    return HEAD + f"frontend f\n bind {addr} {opts}\n" + TAIL


def lb_lines(text: str, name: str = "b.cfg") -> list[str]:
    """lb's ALERT and WARNING lines for ``text`` (as HAProxy prints them after the
    pid and "config : "), the continuation lines included."""
    res = load_text(text, name)
    out = []
    for d in res.diagnostics:
        if d.severity in ("alert", "warning"):
            out.append(f"{d.severity}: {d.message()}")
            out.extend(d.more)
    return out


def _bind(text: str, addr: str = "127.0.0.1:18001") -> str:
    return f"alert: parsing [b.cfg:7] : 'bind {addr}' in section 'frontend' : {text}"


# (options, lb's lines): the options on a `bind` line at b.cfg:7
BIND_CASES: list[tuple[str, list[str]]] = [
    ("maxconn -1", [_bind("'maxconn' : invalid value -1, must be >= 0")]),
    ("maxconn", [_bind("'maxconn' : missing value")]),
    ("maxconn 4294967295", [_bind("'maxconn' : invalid value -1, must be >= 0")]),
    ("maxconn 0", []), ("maxconn abc", []), ("maxconn 99999999999", []),
    ("backlog -1", [_bind("'backlog' : invalid value -1, must be > 0")]),
    ("backlog", [_bind("'backlog' : missing value")]),
    ("backlog 0", []), ("backlog x", []),
    ("name", [_bind("'name' : missing name")]),
    ("interface", [_bind("'interface' : missing interface name")]),
    ("nice", [_bind("'nice' : missing value")]),
    ("nice 2000", [_bind("'nice' : invalid value 2000, allowed range is -1024..1024")]),
    ("nice -1025", [_bind("'nice' : invalid value -1025, allowed range is -1024..1024")]),
    ("nice -1024", []), ("nice 1024", []),
    ("mss", [_bind("'mss' : missing MSS value")]),
    ("mss abc", [_bind("'mss' : expects an MSS with and absolute value between 1 and 65535")]),
    ("mss 65536", [_bind("'mss' : expects an MSS with and absolute value between 1 and 65535")]),
    ("mss -1", []), ("mss 65535", []),
    ("tcp-ut", [_bind("'tcp-ut' : missing TCP User Timeout value")]),
    ("tcp-ut abc", [_bind("'tcp-ut' : expects a positive delay in milliseconds")]),
    ("tcp-ut 25d", [_bind("timer overflow in argument '25d' to 'tcp-ut' (maximum value is "
                          "2147483647 ms or ~24.8 days)")]),
    ("tcp-ut 5s", []), ("tcp-ut 0", []),
    ("tcp-ut 5sx", ["warning: unexpected character 'x' after the timer value '5sx', only "
                    "(us=microseconds,ms=milliseconds,s=seconds,m=minutes,h=hours,d=days) are "
                    "supported. This will be reported as an error in next versions."]),
    ("level", [_bind("'level' : missing level")]),
    ("level foo", [_bind("'level' only supports 'user', 'operator', and 'admin' (got 'foo')")]),
    ("level admin", []),
    ("severity-output", [_bind("'severity-output' : missing severity format")]),
    ("severity-output xyz", [_bind("'severity-output' only supports 'none', 'number', and "
                                   "'string' (got 'xyz')")]),
    ("thread abc", [_bind("'abc' : 'abc' is not a valid number/range.")]),
    ("thread 65", [_bind("'65' : '65' is not a valid number/range. It supports numbers from "
                         "1 to 64.")]),
    ("thread 2/1", [_bind("'2/1' thread-group number must be between 1 and 1 (was 2)")]),
    ("thread 1 thread 1/1", [_bind("'1/1' multiple thread-groups are not supported")]),
    ("thread 1", []), ("thread 1/1", []), ("thread all", []),
    ("accept-netscaler-cip 0", [_bind("'accept-netscaler-cip' : invalid value 0, must be >= 0")]),
    ("accept-netscaler-cip", [_bind("'accept-netscaler-cip' : missing value")]),
    ("accept-netscaler-cip 5", []),
    ("id 0", [_bind("'id' : custom id has to be > 0")]),
    ("id -3", [_bind("'id' : custom id has to be > 0")]),
    ("id abc", [_bind("'id' : expects an integer argument, found 'abc'")]),
    ("id", [_bind("'id' : expects an integer argument")]),
    ("id 2 id 3", [_bind("'id' : custom id 3 already used at b.cfg:7 ('bind 127.0.0.1:18001')")]),
    ("process 1", ["warning: parsing [b.cfg:7] : 'bind 127.0.0.1:18001' in section 'frontend' "
                   ": 'process 1' on 'bind' lines is deprecated and will be removed in 2.7."]),
    ("process 1/1", ["warning: parsing [b.cfg:7] : 'bind 127.0.0.1:18001' in section "
                     "'frontend' : 'process 1/1' on 'bind' lines is deprecated and will be "
                     "removed in 2.7. Please use 'thread 1' instead."]),
    ("process 2", [_bind("'process' : '2' is not a valid number/range. It supports numbers "
                         "from 1 to 1.")]),
    ("process 1 maxconn -1", [
        "warning: parsing [b.cfg:7] : 'bind 127.0.0.1:18001' in section 'frontend' : "
        "'process 1' on 'bind' lines is deprecated and will be removed in 2.7.",
        _bind("'maxconn' : invalid value -1, must be >= 0")]),
    ("proto", [_bind("'proto' : missing value")]),
    ("proto foo", [_bind("'proto' :  unknown MUX protocol 'foo'")]),
    ("proto h2", []),
    ("proto fcgi", ["alert: frontend 'f' : MUX protocol 'fcgi' is not usable for "
                    "'bind 127.0.0.1:18001' at [b.cfg:7]."]),
    ("shards 0", [_bind("'shards' : invalid value 0, allowed range is 1..64 or 'by-thread'")]),
    ("shards by-thread", []),
    ("mode 600", []),
    ("mode", [_bind("'mode' : missing or invalid mode '' (octal integer expected)")]),
    ("mode 9x", [_bind("'mode' : missing or invalid mode '9x' (octal integer expected)")]),
    ("user", [_bind("'user' : missing user name")]),
    ("user nosuchuser-lb", [_bind("'user' : unknown user name 'nosuchuser-lb'")]),
    ("group nosuchgroup-lb", [_bind("'group' : unknown group name 'nosuchgroup-lb'")]),
    ("uid", [_bind("'uid' : missing value")]), ("gid", [_bind("'gid' : missing value")]),
    ("user root group root uid 0 gid 0", []),
    ("expose-fd", [_bind("'expose-fd' : missing fd type")]),
    ("expose-fd foo", [_bind("'expose-fd' only supports 'listeners' (got 'foo')")]),
    ("expose-fd listeners", []),
    ("namespace", [_bind("'namespace' : missing namespace id")]),
    ("defer-accept tfo transparent v4v6 v6only accept-proxy", []),
    ("crt", [_bind("'crt' : missing certificate location")]),
    ("alpn", [_bind("'alpn' : missing the comma-delimited ALPN protocol suite")]),
    ("verify foo", [_bind("'verify' : unknown verify method 'foo', only 'none', 'optional', "
                          "and 'required' are supported")]),
    ("ssl-min-ver foo", [_bind("'foo' : unknown ssl/tls version")]),
    ("ca-ignore-err 1,,2", [_bind("'ca-ignore-err' : ID '0' out of range (1..94) in error "
                                  "IDs list '1,,2'")]),
    ("alpn h2,http/1.1 ciphers x verify none ssl-min-ver TLSv1.2 strict-sni", []),
    # unknown options: HAProxy's did-you-mean
    ("foo", ["alert: parsing [b.cfg:7] : 'bind 127.0.0.1:18001' in section 'frontend': "
             "unknown keyword 'foo'; did you mean 'tfo' maybe ?"]),
    ("bogus", ["alert: parsing [b.cfg:7] : 'bind 127.0.0.1:18001' in section 'frontend': "
               "unknown keyword 'bogus'."]),
    ("severity", ["alert: parsing [b.cfg:7] : 'bind 127.0.0.1:18001' in section 'frontend': "
                  "unknown keyword 'severity'; did you mean 'verify' maybe ?"]),
    ("quic-force-retry", ["alert: parsing [b.cfg:7] : 'bind 127.0.0.1:18001' in section "
                          "'frontend': unknown keyword 'quic-force-retry'."]),
    # an empty word ends the options
    ("'' foo", []),
    # certificate files are read at once (lb.tls.certs; more in test_tls_frontend.py)
    ("ssl crt /nonexistent", ["alert: parsing [b.cfg:7] : 'bind 127.0.0.1:18001' in section "
                              "'frontend' : unable to stat SSL certificate from file "
                              "'/nonexistent' : No such file or directory."]),
]


@pytest.mark.parametrize(("opts", "want"), BIND_CASES, ids=[c[0] for c in BIND_CASES])
def test_bind_option_texts(opts: str, want: list[str]) -> None:
    assert lb_lines(bind_cfg(opts)) == want


# lb refuses these where HAProxy goes on (TLS) or checks a file lb does not open
_NOT_LIKE_HAPROXY = {"ssl crt /nonexistent"}


@need_haproxy
@pytest.mark.parametrize("opts", [c[0] for c in BIND_CASES if c[0] not in _NOT_LIKE_HAPROXY])
def test_bind_options_like_haproxy(tmp_path, capsys, opts: str) -> None:  # type: ignore[no-untyped-def]
    assert_text_like_haproxy(tmp_path, capsys, bind_cfg(opts))


# several bind lines: ids taken, ids on lines of several sockets, a unix socket
MULTI_CASES: list[tuple[str, list[str]]] = [
    (" bind 127.0.0.1:18001 id 2\n bind 127.0.0.1:18002 id 2\n",
     ["alert: parsing [b.cfg:8] : 'bind 127.0.0.1:18002' in section 'frontend' : 'id' : "
      "custom id 2 already used at b.cfg:7 ('bind 127.0.0.1:18001')"]),
    (" bind 127.0.0.1:18003-18004 id 4\n",
     ["alert: parsing [b.cfg:7] : 'bind 127.0.0.1:18003-18004' in section 'frontend' : 'id' "
      "can only be used with a single socket"]),
    (" bind 127.0.0.1:18003,127.0.0.1:18005 id\n",
     ["alert: parsing [b.cfg:7] : 'bind 127.0.0.1:18003,127.0.0.1:18005' in section "
      "'frontend' : 'id' can only be used with a single socket"]),
    (" bind /tmp/lb-test-never-bound.sock mode 600 id 3 mss 1400\n bind 127.0.0.1:18001 id 3\n",
     ["alert: parsing [b.cfg:8] : 'bind 127.0.0.1:18001' in section 'frontend' : 'id' : "
      "custom id 3 already used at b.cfg:7 ('bind /tmp/lb-test-never-bound.sock')"]),
]


@pytest.mark.parametrize(("lines", "want"), MULTI_CASES, ids=range(len(MULTI_CASES)))
def test_bind_lines_texts(lines: str, want: list[str]) -> None:
    assert lb_lines(HEAD + "frontend f\n" + lines + TAIL) == want


@need_haproxy
@pytest.mark.parametrize("lines", [c[0] for c in MULTI_CASES], ids=range(len(MULTI_CASES)))
def test_bind_lines_like_haproxy(tmp_path, capsys, lines: str) -> None:  # type: ignore[no-untyped-def]
    assert_text_like_haproxy(tmp_path, capsys, HEAD + "frontend f\n" + lines + TAIL)


def test_listen_section_and_a_later_error_after_a_warning() -> None:
    text = (HEAD + "listen l\n bind 127.0.0.1:18001 process all nice 5000\n"
            " server s 127.0.0.1:80\n")
    assert lb_lines(text) == [
        "warning: parsing [b.cfg:7] : 'bind 127.0.0.1:18001' in section 'listen' : 'process "
        "all' on 'bind' lines is deprecated and will be removed in 2.7.",
        "alert: parsing [b.cfg:7] : 'bind 127.0.0.1:18001' in section 'listen' : 'nice' : "
        "invalid value 5000, allowed range is -1024..1024"]


# ------------------------------------------------------------------ stats socket


def stats_cfg(opts: str, sock: str) -> str:
    return (f"global\n stats socket {sock} {opts}\n" + HEAD +
            "frontend f\n bind 127.0.0.1:18001\n" + TAIL)


def _stats(text: str) -> str:
    return f"alert: parsing [b.cfg:2] : 'stats socket' : {text}"


STATS_CASES: list[tuple[str, list[str]]] = [
    ("maxconn", [_stats("''maxconn' : missing value'")]),
    ("maxconn -1", [_stats("''maxconn' : invalid value -1, must be >= 0'")]),
    ("level", [_stats("''level' : missing level'")]),
    ("level foo", [_stats("''level' only supports 'user', 'operator', and 'admin' "
                          "(got 'foo')'")]),
    ("mode 9x", [_stats("''mode' : missing or invalid mode '9x' (octal integer expected)'")]),
    ("expose-fd foo", [_stats("''expose-fd' only supports 'listeners' (got 'foo')'")]),
    ("nice 5000", [_stats("''nice' : invalid value 5000, allowed range is -1024..1024'")]),
    ("foo", [_stats("unknown keyword 'foo'. Did you mean 'tfo' maybe ?")]),
    ("bogus", [_stats("unknown keyword 'bogus'.")]),
    ("id 0", [_stats("''id' : custom id has to be > 0'")]),
    ("name", [_stats("''name' : missing name'")]),
    ("thread abc", [_stats("''abc' : 'abc' is not a valid number/range.'")]),
    # HAProxy's text ends with a line feed here: the closing quote is alone on a line
    ("thread 0", [_stats("''0' : '0' is not a valid number/range. It supports numbers from 1 "
                         "to 64."), "'"]),
    ("process 1", ["warning: parsing [b.cfg:2] : 'stats socket' : 'process 1' on 'bind' "
                   "lines is deprecated and will be removed in 2.7."]),
    ("accept-netscaler-cip 0", [_stats("''accept-netscaler-cip' : invalid value 0, must be "
                                       ">= 0'")]),
    ("user nosuchuser-lb", [_stats("''user' : unknown user name 'nosuchuser-lb''")]),
    ("proto h1", ["alert: frontend 'GLOBAL' : MUX protocol 'h1' is not usable for "
                  "'bind @SOCK@' at [b.cfg:2]."]),
    ("proto none", []),
    ("level admin mode 600 expose-fd listeners uid 0 gid 0 user root group root", []),
    ("ssl", [_stats("'ssl' is not supported by lb (it does not terminate TLS); terminate TLS "
                    "in front of lb and bind here without 'ssl'.")]),
]


@pytest.mark.parametrize(("opts", "want"), STATS_CASES, ids=[c[0] for c in STATS_CASES])
def test_stats_socket_option_texts(tmp_path, opts: str, want: list[str]) -> None:  # type: ignore[no-untyped-def]
    sock = str(tmp_path / "s.sock")
    assert lb_lines(stats_cfg(opts, sock)) == [w.replace("@SOCK@", sock) for w in want]


@need_haproxy
@pytest.mark.parametrize("opts", [c[0] for c in STATS_CASES if c[0] != "ssl"])
def test_stats_socket_options_like_haproxy(tmp_path, capsys, opts: str) -> None:  # type: ignore[no-untyped-def]
    assert_text_like_haproxy(tmp_path, capsys, stats_cfg(opts, str(tmp_path / "s.sock")))


def test_stats_socket_kept_options(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sock = str(tmp_path / "s.sock")
    res = load_text(stats_cfg("level admin mode 640 expose-fd listeners", sock), "b.cfg")
    assert res.ok and res.config is not None
    (ss,) = res.config.global_.stats_sockets
    assert (ss.address, ss.level, ss.mode, ss.expose_fd_listeners) == (sock, "admin", 0o640, True)


def test_stats_socket_ids_are_one_proxys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    a, b = str(tmp_path / "a.sock"), str(tmp_path / "b.sock")
    text = (f"global\n stats socket {a} id 1\n stats socket {b} id 1\n" + HEAD +
            "frontend f\n bind 127.0.0.1:18001 id 1\n" + TAIL)
    assert lb_lines(text) == [f"alert: parsing [b.cfg:3] : 'stats socket' : ''id' : custom "
                              f"id 1 already used at b.cfg:2 ('bind {a}')'"]


# ------------------------------------------------------------------ did-you-mean


@pytest.mark.parametrize(("word", "want"), [
    ("foo", "tfo"), ("bogus", None), ("sigalgs", None), ("client-sigalgs", "ca-sign-file"),
    ("no-alpn", "alpn"), ("verifyhost", "verify"), ("MAXCONN", "maxconn"),
    # ties between HAProxy's keyword lists: its order decides (each checked with -c)
    ("ss", "ssl"), ("acceper-cip", "accept-netscaler-cip"), ("igid", "id"),
    ("severity", "verify"), ("v6oel", "level"), ("procse-fd", "expose-fd"),
    ("hardhe", "ecdhe"), ("threrves", "curves"), ("ures", "curves"), ("userify", "verify"),
])
def test_suggestions_are_haproxys(word: str, want: str | None) -> None:
    assert closest_option(word) == want


def test_fingerprint_match_keeps_the_first_of_equals() -> None:
    assert fingerprint_match("abcd", ["abce", "abcf"]) == "abce"
    assert fingerprint_match("xyzzy", ["a"]) is None


def test_every_option_haproxy_lists_is_in_the_table() -> None:
    """HAProxy 2.6.12's 63 `bind` options of `-dKall`, plus `ssl` itself."""
    assert len(BIND_KEYWORDS) == 64
    assert {"accept-netscaler-cip", "shards", "thread", "tcp-ut", "namespace", "mode",
            "tls-ticket-keys", "generate-certificates", "ssl"} <= set(BIND_KEYWORDS)


@need_haproxy
def test_the_table_is_haproxys_list() -> None:
    import subprocess

    out = subprocess.run([HAPROXY, "-dKall", "-c", "-f", "/dev/null"], capture_output=True,
                         text=True, timeout=30).stdout
    listed = {line.split()[-2] if line.endswith(" +1") else line.split()[-1]
              for line in out.splitlines() if line.startswith("\tbind <addr> ")}
    assert listed | {"ssl"} == set(BIND_KEYWORDS)
    for line in out.splitlines():
        if line.startswith("\tbind <addr> "):
            name = line.split()[-2] if line.endswith(" +1") else line.split()[-1]
            assert BIND_KEYWORDS[name].args == (1 if line.endswith(" +1") else 0), name


# ------------------------------------------------------------------ listener numbers


def _three_ports() -> int:
    """The first of three consecutive free ports (a `bind` port range)."""
    for _ in range(50):
        first = free_port()
        if free_port() == first + 1 and free_port() == first + 2:
            return first
    raise AssertionError("no three consecutive free ports")


NUMBERING = """
global
    stats socket {sock} level admin
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend f
    option socket-stats
    bind 127.0.0.1:@@fe@@
    bind 127.0.0.1:@@b@@ id 2 name two
    bind 127.0.0.1:{r0}-{r2} name rng
    bind 127.0.0.1:@@c@@,127.0.0.1:@@d@@
    bind 127.0.0.1:@@e@@ id 5
    bind 127.0.0.1:@@g@@
    default_backend b
frontend g
    option socket-stats
    bind 127.0.0.1:@@h@@ id 3
    bind 127.0.0.1:@@i@@
    default_backend b
backend b
    server s 127.0.0.1:9
"""

# (proxy, svname, sid): a written id is kept; the others take the first free number
# from a counter that moves past every listener, numbered or not (HAProxy 2.6.12)
NUMBERS = [("f", "sock-1", 1), ("f", "two", 2), ("f", "rng", 3), ("f", "rng", 4),
           ("f", "rng", 6), ("f", "sock-7", 7), ("f", "sock-8", 8), ("f", "sock-5", 5),
           ("f", "sock-10", 10), ("g", "sock-3", 3), ("g", "sock-2", 2)]


def _numbering_text(tmp_path) -> str:  # type: ignore[no-untyped-def]
    r0 = _three_ports()
    return NUMBERING.format(sock=tmp_path / "n.sock", r0=r0, r2=r0 + 2)


def test_listener_numbers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.lbproc import render
    text, _ = render(_numbering_text(tmp_path))
    res = load_text(text, "n.cfg")
    assert res.ok and res.config is not None
    got = [(p.name, b.name or f"sock-{b.luid}", b.luid)
           for p in res.config.proxies for b in p.binds]
    assert got == NUMBERS


@need_haproxy
def test_listener_numbers_like_haproxys_show_stat(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`option socket-stats`: one `show stat` row per listener, `sid` its number."""
    sock = str(tmp_path / "n.sock")
    with Haproxy(_numbering_text(tmp_path), ready_socket=sock):
        answer = query(sock, "show stat")
    rows = [line.split(",") for line in answer.splitlines()[1:] if line]
    assert [(r[0], r[1], int(r[28])) for r in rows if r[32] == "3"] == NUMBERS


# ------------------------------------------------------------------ so_id / so_name

SO_CFG = """
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend fe
    bind 127.0.0.1:@@fe@@
    bind 127.0.0.1:@@pub@@ id 7 name pub
    bind 127.0.0.1:@@late@@
    http-response set-header x-so %[so_id]
    http-response set-header x-sn "%[so_name]"
    default_backend be
backend be
    server s1 127.0.0.1:@@s1@@
"""


@pytest.mark.parametrize("kind", ["lb", "haproxy"] if HAVE_HAPROXY else ["lb"])
def test_so_id_and_so_name(kind: str) -> None:
    """The listener a request came in through: the first bind is number 1 and has
    no name (no sample: an empty header), the second keeps its `id` and `name`, the
    third is number 3 (the counter moved past the second)."""
    got = []
    with RawBackend(answer_ok) as srv, lb_or_haproxy(kind, SO_CFG, {"s1": srv.port}) as px:
        for name in ("fe", "pub", "late"):
            r = fetch(px.ports[name], headers=[("Connection", "close")])
            assert r.status == 200
            got.append((r.get("x-so"), r.get("x-sn")))
    assert got == [("1", ""), ("7", "pub"), ("3", "")]
