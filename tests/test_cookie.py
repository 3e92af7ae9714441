"""Cookie persistence decisions (lb.http.cookie), spec §6.

[EMP] items are behaviours the spec records from HAProxy 2.6.12; other cases
were checked against HAProxy 2.6.12 with tests/... style loopback runs (see the
comment on each)."""

from __future__ import annotations

from dataclasses import replace

from lb.config.model import CookieSpec
from lb.http import cookie as ck

NOW = 1_763_700_000.0  # a fixed "now" (Nov 2025)


class Srv:
    def __init__(self, name: str, running: bool = True) -> None:
        self.name = name
        self.is_running = running

    def __repr__(self) -> str:
        return self.name


def table(*pairs: tuple[str | None, Srv]) -> ck.CookieTable:
    return ck.CookieTable(pairs)


S1, S2, S3 = Srv("s1"), Srv("s2"), Srv("s3")
TABLE = table(("c1", S1), ("c2", S2), (None, S3))
INSERT = CookieSpec(name="SRV", mode="insert")
INDIRECT = replace(INSERT, indirect=True)


def req(spec: CookieSpec, *headers: bytes, tbl: ck.CookieTable = TABLE, **kw: bool
        ) -> ck.RequestCookie:
    return ck.parse_request(spec, list(headers), tbl, NOW, **kw)


# --------------------------------------------------------------------------- request side


def test_no_cookie_is_N() -> None:
    r = req(INSERT)
    assert (r.server, r.direct, r.ck, r.headers) == (None, False, "N", None)
    r = req(INSERT, b"A=1; B=2")
    assert (r.server, r.ck, r.headers) == (None, "N", None)


def test_valid_cookie_goes_direct_V() -> None:
    r = req(INSERT, b"SRV=c2")
    assert (r.server, r.direct, r.ck) == (S2, True, "V")
    assert r.headers is None  # without indirect the server sees it [EMP]


def test_name_is_case_sensitive_EMP() -> None:
    r = req(INSERT, b"srv=c2")
    assert (r.server, r.ck) == (None, "N")


def test_spaces_around_equal_tolerated_and_removed() -> None:
    r = req(INSERT, b"A = 1;  SRV = c2 ; B=2")
    assert (r.server, r.ck) == (S2, "V")
    assert r.headers == [b"A=1;  SRV=c2 ; B=2"]


def test_unknown_or_empty_value_is_I() -> None:
    assert req(INSERT, b"SRV=zz").ck == "I"
    assert req(INSERT, b"SRV=").ck == "I"
    assert req(INSERT, b"SRV=zz").server is None


def test_down_server_is_D_and_balanced_unless_persist_EMP() -> None:
    down = Srv("d", running=False)
    tbl = table(("c1", down), ("c2", S2))
    r = req(INSERT, b"SRV=c1", tbl=tbl)
    assert (r.server, r.direct, r.ck) == (None, False, "D")
    r = req(INSERT, b"SRV=c1", tbl=tbl, persist=True)
    assert (r.server, r.direct, r.ck) == (down, True, "D")
    r = req(INSERT, b"SRV=c1", tbl=tbl, force=True)
    assert (r.server, r.direct, r.ck) == (down, True, "D")


def test_shared_cookie_value_takes_next_running_server() -> None:
    down = Srv("d", running=False)
    tbl = table(("c", down), ("c", S2))
    r = req(INSERT, b"SRV=c", tbl=tbl)
    assert (r.server, r.ck) == (S2, "V")


def test_drain_is_running_so_V() -> None:
    # DRAIN keeps is_running True: persistent requests still reach it [EMP]
    drain = Srv("drain", running=True)
    r = req(INSERT, b"SRV=x", tbl=table(("x", drain)))
    assert (r.server, r.ck) == (drain, "V")


def test_ignore_persist_is_U() -> None:
    r = req(INSERT, b"SRV=c1", ignore=True)
    assert (r.server, r.direct, r.ck) == (None, False, "U")
    r = req(INSERT, b"SRV=c1", assigned=True)
    assert (r.server, r.ck) == (None, "U")


def test_indirect_removes_only_that_cookie_EMP() -> None:
    r = req(INDIRECT, b"A=1; SRV=c2; B=2")
    assert (r.server, r.ck) == (S2, "V")
    assert r.headers == [b"A=1; B=2"]
    assert req(INDIRECT, b"SRV=c2; A=1").headers == [b"A=1"]
    assert req(INDIRECT, b"A=1;SRV=c2").headers == [b"A=1"]
    assert req(INDIRECT, b"A=1 ; SRV=c2;B=2").headers == [b"A=1; B=2"]


def test_indirect_rewrites_checked_against_haproxy() -> None:
    # checked against HAProxy 2.6.12 (`cookie SRV insert indirect`, backend echoing
    # the Cookie header it received)
    assert req(INDIRECT, b"A = 1;  SRV = c2 ; B=2").headers == [b"A=1; B=2"]
    assert req(INDIRECT, b"SRV=c1; SRV=c2").headers == [None]
    assert req(INDIRECT, b"SRV=c1; $Path=/; A=1").headers == [b"A=1"]
    assert req(INDIRECT, b"$Version=1; SRV=c1; $Path=/").headers == [None]


def test_indirect_drops_header_when_nothing_left() -> None:
    r = req(INDIRECT, b"X=9", b"SRV=c1")
    assert r.headers == [b"X=9", None]
    # RFC2109 $-attributes go with the removed cookie
    assert req(INDIRECT, b"$Version=1; SRV=c1; $Path=/").headers == [None]
    assert req(INDIRECT, b"SRV=c1; $Path=/; A=1").headers == [b"A=1"]


def test_indirect_removes_invalid_cookie_too() -> None:
    r = req(INDIRECT, b"SRV=nope; A=1")
    assert (r.ck, r.headers) == ("I", [b"A=1"])


def test_first_matching_cookie_wins_then_others_unused() -> None:
    r = req(INSERT, b"SRV=c1; SRV=c2")
    assert (r.server, r.ck) == (S1, "V")


def test_quoted_values_keep_delimiters() -> None:
    r = req(INSERT, b'A="x;y"; SRV=c1')
    assert r.server is S1


def test_prefix_mode_strips_server_prefix() -> None:
    spec = CookieSpec(name="JSESSIONID", mode="prefix")
    r = req(spec, b"JSESSIONID=c1~abc123; X=1")
    assert (r.server, r.ck) == (S1, "V")
    assert r.headers == [b"JSESSIONID=abc123; X=1"]
    r = req(spec, b"JSESSIONID=zz~abc")
    assert (r.server, r.ck, r.headers) == (None, "I", [b"JSESSIONID=abc"])
    r = req(spec, b"JSESSIONID=c2")  # no '~': the whole value is the server id
    assert (r.server, r.headers) == (S2, None)


def test_dates_maxidle_maxlife() -> None:
    spec = replace(INSERT, maxidle=60.0, maxlife=3600.0)
    fresh = ck.encode_date(NOW - 10)
    first = ck.s30_to_b64((int(NOW) - 100) >> 2)
    r = req(spec, b"SRV=c1|" + fresh + b"|" + first)
    assert (r.server, r.ck) == (S1, "V")
    assert abs(r.last_date - NOW) < 12 and abs(r.first_date - (NOW - 100)) < 8
    idle = ck.s30_to_b64((int(NOW) - 400) >> 2)
    r = req(spec, b"SRV=c1|" + idle + b"|" + first)
    assert (r.server, r.ck, r.last_date) == (None, "E", 0)
    old = ck.s30_to_b64((int(NOW) - 8000) >> 2)
    r = req(spec, b"SRV=c1|" + fresh + b"|" + old)
    assert (r.server, r.ck) == (None, "O")
    future = ck.s30_to_b64((int(NOW) + 90000) >> 2)
    assert req(spec, b"SRV=c1|" + future).ck == "E"
    # without maxidle a date is parsed but never expires
    r = req(INSERT, b"SRV=c1|" + idle)
    assert (r.server, r.ck) == (S1, "V") and r.last_date


def test_date_format_matches_haproxy() -> None:
    # checked against HAProxy 2.6.12 (`cookie SRV insert maxidle 1h maxlife 2h`): a new
    # client got "SRV=c1|awHb8|awHb8; path=/" at epoch ~1795283950; we build the same
    spec = replace(INSERT, maxidle=3600.0, maxlife=7200.0)
    assert ck.set_cookie_value(spec, b"c1", 1795283949.0) == b"SRV=c1|awHb8|awHb8; path=/"
    assert ck.b64_to_s30(b"awHb8") == (1795283949 + 3) >> 2


def test_base64_dates_roundtrip() -> None:
    for v in (1, 63, 64, 12345678, (1 << 30) - 1):
        assert ck.b64_to_s30(ck.s30_to_b64(v)) == v
    assert ck.b64_to_s30(b"ab!de") == -1
    assert ck.b64_to_s30(b"abc") == -1
    assert len(ck.encode_date(NOW)) == 5


# --------------------------------------------------------------------------- response side


def res(spec: CookieSpec, *, status: int = 200, method: bytes = b"GET",
        set_cookies: tuple[bytes, ...] = (), server: Srv | None = S1,
        server_cookie: bytes | None = b"c1", request: ck.RequestCookie | None = None,
        **kw: bool) -> ck.ResponseCookie:
    return ck.process_response(spec, status=status, method=method, set_cookies=list(set_cookies),
                               server=server, server_cookie=server_cookie,
                               req=request or ck.RequestCookie(), now=NOW, **kw)


def test_insert_new_client_gets_cookie_NI() -> None:
    r = res(INSERT)
    assert (r.insert, r.ck, r.set_cookies, r.cache_private) == (b"SRV=c1; path=/", "I", None,
                                                                  False)


def test_websocket_101_gets_set_cookie_EMP() -> None:
    r = res(INSERT, status=101, server=S1, server_cookie=b"g1")
    assert r.insert == b"SRV=g1; path=/"


def test_interim_1xx_untouched() -> None:
    r = res(INSERT, status=100)
    assert (r.insert, r.ck) == (None, "N")


def test_valid_cookie_gets_no_new_cookie_with_or_without_indirect_EMP() -> None:
    for spec in (INSERT, INDIRECT):
        rq = req(spec, b"SRV=c1")
        r = res(spec, request=rq)
        assert (r.insert, rq.ck + r.ck) == (None, "VN")


def test_down_cookie_redispatched_gets_new_cookie_DI_EMP() -> None:
    tbl = table(("c1", Srv("d", running=False)), ("c2", S2))
    rq = req(INSERT, b"SRV=c1", tbl=tbl)
    r = res(INSERT, request=rq, server=S2, server_cookie=b"c2")
    assert rq.ck + r.ck == "DI"
    assert r.insert == b"SRV=c2; path=/"


def test_exact_attribute_order() -> None:
    spec = replace(INSERT, domains=(".example.com",), httponly=True, secure=True,
                   attrs=("SameSite=Lax",))
    assert res(spec).insert == b"SRV=c1; path=/; domain=.example.com; HttpOnly; Secure; SameSite=Lax"
    spec2 = replace(INSERT, domains=("a.com", "b.com"), attrs=("SameSite=None", "Partitioned"))
    assert res(spec2).insert == b"SRV=c1; path=/; domain=a.com; domain=b.com; SameSite=None; Partitioned"


def test_server_without_cookie_value_gets_deletion_EMP() -> None:
    r = res(INSERT, server=S3, server_cookie=None)
    assert r.insert == b"SRV=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/"
    assert r.ck == "I"
    spec = replace(INSERT, secure=True)
    assert res(spec, server_cookie=None).insert.endswith(b"path=/; Secure")


def test_server_own_cookie_deleted_in_insert_mode_EMP() -> None:
    r = res(INSERT, set_cookies=(b"SRV=mine; path=/", b"OTHER=1"))
    assert r.set_cookies == [None, b"OTHER=1"]
    assert r.insert == b"SRV=c1; path=/" and r.ck == "I"  # replaced: NI
    rq = req(INDIRECT, b"SRV=c1")
    r = res(INDIRECT, set_cookies=(b"SRV=mine",), request=rq)
    assert (r.set_cookies, r.insert, rq.ck + r.ck) == ([None], None, "VD")  # dropped [EMP]


def test_preserve_keeps_server_cookie_and_skips_insert() -> None:
    spec = replace(INSERT, preserve=True)
    r = res(spec, set_cookies=(b"SRV=mine; Max-Age=0",))
    assert (r.set_cookies, r.insert, r.ck) == (None, None, "P")
    r = res(spec)
    assert r.insert == b"SRV=c1; path=/"


def test_rewrite_mode_replaces_value() -> None:
    spec = CookieSpec(name="SRV", mode="rewrite")
    r = res(spec, set_cookies=(b"SRV=app; path=/; HttpOnly",))
    assert (r.set_cookies, r.insert, r.ck) == ([b"SRV=c1; path=/; HttpOnly"], None, "R")
    r = res(spec, set_cookies=(b"OTHER=1",))
    assert (r.set_cookies, r.ck) == (None, "N")
    r = res(spec, set_cookies=(b"SRV = app ;path=/",))
    assert r.set_cookies == [b"SRV=c1 ;path=/"]


def test_prefix_mode_prefixes_value() -> None:
    spec = CookieSpec(name="JSESSIONID", mode="prefix")
    r = res(spec, set_cookies=(b"JSESSIONID=abc; Path=/",))
    assert (r.set_cookies, r.ck) == ([b"JSESSIONID=c1~abc; Path=/"], "R")
    r = res(spec, set_cookies=(b"JSESSIONID=abc",), server_cookie=None)
    assert (r.set_cookies, r.ck) == (None, "P")


def test_postonly_EMP() -> None:
    spec = replace(INSERT, postonly=True)
    r = res(spec, method=b"GET")
    assert (r.insert, r.ck) == (None, "N")  # GET -> NN
    assert res(spec, method=b"POST").insert == b"SRV=c1; path=/"


def test_ignore_persist_no_insert_no_server_cookie_processing() -> None:
    r = res(INSERT, set_cookies=(b"SRV=mine",), ignore=True)
    assert (r.set_cookies, r.insert, r.ck) == (None, None, "N")


def test_nocache_adds_private_only_when_cacheable() -> None:
    spec = replace(INSERT, nocache=True)
    plain: list[tuple[bytes, bytes]] = []
    assert not ck.response_cacheable(b"GET", 200, plain)  # plain 200: not cacheable [EMP]
    assert not res(spec, cacheable=False).cache_private
    hdrs = [(b"cache-control", b"max-age=60")]
    assert ck.response_cacheable(b"GET", 200, hdrs)
    assert res(spec, cacheable=True).cache_private
    assert not res(INSERT, cacheable=True).cache_private  # nocache not set


def test_cacheability_rule() -> None:
    ok = [(b"etag", b'"x"')]
    assert ck.response_cacheable(b"GET", 200, ok)
    assert ck.response_cacheable(b"HEAD", 404, [(b"last-modified", b"x")])
    assert ck.response_cacheable(b"GET", 301, [(b"expires", b"Thu, 01 Jan 2099 00:00:00 GMT")])
    assert not ck.response_cacheable(b"POST", 200, ok)
    assert not ck.response_cacheable(b"GET", 302, ok)
    assert not ck.response_cacheable(b"GET", 200, ok + [(b"pragma", b"no-cache")])
    for v in (b"private", b"no-cache", b"no-store", b"max-age=0", b"s-maxage=0",
              b"public, no-store"):
        assert not ck.response_cacheable(b"GET", 200, ok + [(b"cache-control", v)]), v
    assert ck.response_cacheable(b"GET", 200, [(b"cache-control", b"public, max-age=5")])
    assert ck.response_cacheable(b"GET", 200, [(b"cache-control", b"no-store, public")] + ok)
    assert ck.response_cacheable(b"POST", 200, [(b"cache-control", b"public")] + ok)
    assert not ck.response_cacheable(b"GET", 200, [(b"cache-control", b"public")])


def test_cacheability_sees_its_headers_among_lookalikes() -> None:
    """response_cacheable skips names by length and first letter before its lookup:
    each of the five names still counts among decoys of the same length and letter
    (and an nginx-like head), and the decoys never count."""
    decoys = [(b"cache-controx", b"public"), (b"last-modifiex", b"x"), (b"prag-a", b"no-cache"),
              (b"expirez", b"x"), (b"etaq", b"x"), (b"e", b""), (b"", b"x"),
              (b"server", b"nginx"), (b"content-length", b"100"), (b"accept-ranges", b"bytes")]
    assert not ck.response_cacheable(b"GET", 200, decoys)
    for name in (b"etag", b"last-modified", b"expires"):
        assert ck.response_cacheable(b"GET", 200, decoys + [(name, b"x")]), name
    assert ck.response_cacheable(b"GET", 200, decoys + [(b"cache-control", b"max-age=5")])
    vetoed = decoys + [(b"etag", b"x"), (b"pragma", b"no-cache")]
    assert not ck.response_cacheable(b"GET", 200, vetoed)


def test_date_refresh_and_update_U() -> None:
    spec = replace(INSERT, maxidle=60.0)
    stale = ck.s30_to_b64((int(NOW) - 20) >> 2)
    rq = req(spec, b"SRV=c1|" + stale)
    assert (rq.server, rq.ck) == (S1, "V")
    r = res(spec, request=rq)
    assert r.ck == "U"
    assert r.insert == b"SRV=c1|" + ck.encode_date(NOW) + b"; path=/"
    # a date already at now (4 s resolution) is not refreshed
    rq = req(spec, b"SRV=c1|" + ck.encode_date(NOW))
    assert res(spec, request=rq).insert is None


def test_maxlife_keeps_first_date() -> None:
    spec = replace(INSERT, maxlife=3600.0)
    first = ck.s30_to_b64((int(NOW) - 100) >> 2)
    rq = req(spec, b"SRV=c1|" + ck.encode_date(NOW) + b"|" + first)
    r = res(spec, request=rq)
    # last date is up to date, first date set: nothing to refresh
    assert r.insert is None
    r = res(spec)  # new client: both dates are now
    d = ck.encode_date(NOW)
    assert r.insert == b"SRV=c1|" + d + b"|" + d + b"; path=/"
    rq = req(spec, b"SRV=c1|" + ck.encode_date(NOW - 40) + b"|" + first)
    r = res(spec, request=rq)
    assert r.insert == b"SRV=c1|" + d + b"|" + first + b"; path=/"


def test_plain_and_quote_aware_splitters_agree() -> None:
    import random

    rnd = random.Random(5)
    alpha = b"ab =;,\t$xy"
    for _ in range(3000):
        h = bytes(rnd.choice(alpha) for _ in range(rnd.randint(0, 14)))
        fast = [(i.lead, i.name, i.eq, i.value, i.trail, i.delim, i.normalized, i.end)
                for i in ck._split_plain(h)]
        slow = [(i.lead, i.name, i.eq, i.value, i.trail, i.delim, i.normalized, i.end)
                for i in ck._split_re(h, ck._COOKIE_ITEM)]
        assert fast == slow, h
