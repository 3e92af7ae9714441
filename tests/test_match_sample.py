"""Unit tests for lb.match.sample (fetches, converters) and lb.match.pattern."""

from __future__ import annotations

from typing import Any

import pytest

from lb.match import pattern, sample


class Ctx(sample.SampleSubject):
    def __init__(self, headers: list[tuple[bytes, bytes]] | None = None, url: bytes = b"/",
                 method: bytes = b"GET", version: bytes = b"1.1") -> None:
        self.method = method
        self.url = url
        self.version = version
        self.req_headers = headers or []
        self.src, self.src_port, self.dst, self.dst_port = "192.0.2.7", 40000, "::1", 8443
        self.is_response = False
        self.status = 0
        self.res_headers: list[tuple[bytes, bytes]] | None = None
        self.vars: dict[str, Any] = {}
        self.memo: dict[Any, Any] = {}


def one(text: str, ctx: Ctx) -> Any:
    return sample.parse_expr(text).fetch(ctx)


def every(text: str, ctx: Ctx) -> list[Any]:
    return list(sample.parse_expr(text).iter_values(ctx))


def test_required_fetches_and_converters_exist() -> None:
    fetches = """hdr hdr_cnt hdr_val hdr_ip fhdr req.hdr req.fhdr req.hdr_cnt req.fhdr_cnt
        res.hdr res.fhdr res.hdr_cnt status path url url_param urlp base query method req.ver
        req_ver src src_port dst dst_port cook req.cook req.cook_cnt var always_true
        always_false req.proto_http wait_end req.len ssl_fc""".split()
    for name in fetches:
        assert name in sample.FETCHES, name
    for name in ("lower upper field word len length regsub hex bool not add sub mul div"
                 " base64 json ltrim rtrim concat").split():
        assert name in sample.CONVERTERS, name
    for row in sample.FETCHES.values():
        assert row.where and row.out


@pytest.mark.parametrize("raw,values", [
    (b"a", [b"a"]),
    (b" a , b ,c ", [b"a", b"b", b"c"]),
    (b"a,,b,", [b"a", b"", b"b", b""]),
    (b'"a,b", c', [b'"a,b"', b"c"]),
    (b'"a\\",b", c', [b'"a\\",b"', b"c"]),
    (b"Mozilla/5.0 (X11; Linux), Gecko", [b"Mozilla/5.0 (X11; Linux)", b"Gecko"]),
    (b"", [b""]),
])
def test_comma_splitting(raw: bytes, values: list[bytes]) -> None:
    assert sample.split_values(raw) == values


def test_occurrences_in_sample_context() -> None:
    ctx = Ctx([(b"x", b"foo"), (b"x", b"bar,baz")])
    assert one("hdr(x)", ctx) == b"baz"
    assert one("hdr(x,1)", ctx) == b"foo"
    assert one("hdr(x,2)", ctx) == b"bar"
    assert one("hdr(x,4)", ctx) is None
    assert one("hdr(x,-1)", ctx) == b"baz"
    assert one("hdr(x,-3)", ctx) == b"foo"
    assert one("hdr(x,-4)", ctx) is None
    assert one("hdr(x,0)", ctx) == b"baz"
    assert one("req.fhdr(x)", ctx) == b"bar,baz"
    assert one("req.fhdr(x,1)", ctx) == b"foo"
    assert every("hdr(x)", ctx) == [b"foo", b"bar", b"baz"]
    assert every("hdr(x,2)", ctx) == [b"bar"]
    with pytest.raises(sample.SampleError) as ei:
        sample.parse_expr("hdr(x,-11)")
    assert str(ei.value) == ("invalid args in fetch method 'hdr' : header occurrence must"
                             " be >= -10")
    sample.parse_expr("hdr(x,-10)")


def test_header_edge_cases() -> None:
    ctx = Ctx([(b"host", b"h"), (b"x-e", b""), (b"x-n", b"12abc"), (b"x-m", b"foo")])
    assert one("hdr", ctx) is None  # no name, no parentheses: no sample
    assert one("hdr()", ctx) == b"foo"  # empty name: any header, last value
    assert one("hdr(x-e)", ctx) == b""
    assert one("hdr_cnt(nope)", ctx) == 0
    assert one("hdr_cnt", ctx) == 4
    assert one("hdr_val(x-n)", ctx) == 12
    assert one("hdr_val(x-m)", ctx) == 0
    assert one("hdr_val(nope)", ctx) is None
    assert one("hdr_val(x-n),add(-20)", ctx) == -8
    assert one("hdr(HOST)", ctx) == b"h"


def test_hdr_ip() -> None:
    ctx = Ctx([(b"xff", b"10.1.2.3, 192.168.1.1:8080, 2001:db8::1, junk")])
    assert every("hdr_ip(xff)", ctx)[:3] == [pattern.ipaddress.ip_address(a) for a in
                                             ("10.1.2.3", "192.168.1.1", "2001:db8::1")]
    assert one("hdr_ip(xff,1)", ctx) == b"10.1.2.3"
    assert one("hdr_ip(xff,2)", ctx) == b"192.168.1.1"


def test_request_line_fetches() -> None:
    ctx = Ctx([(b"host", b"a.example:8080"), (b"host", b"b")], url=b"/p/q?z=1&y=&w")
    assert one("path", ctx) == b"/p/q"
    assert one("url", ctx) == b"/p/q?z=1&y=&w"
    assert one("base", ctx) == b"a.example:8080/p/q"
    assert one("query", ctx) == b"z=1&y=&w"
    assert one("url_param(z)", ctx) == b"1"
    assert one("urlp(y)", ctx) == b""
    assert one("urlp(w)", ctx) is None
    assert one("method", ctx) == b"GET"
    assert one("req.ver", ctx) == b"1.1"
    absolute = Ctx(url=b"http://example.com:8080/p/q?z=1")
    assert one("path", absolute) == b"/p/q"
    assert one("url", absolute) == b"http://example.com:8080/p/q?z=1"
    assert one("query", Ctx(url=b"/a")) is None
    assert one("query", Ctx(url=b"/a?")) == b""
    assert one("path", Ctx(url=b"*")) is None
    assert one("base", Ctx(url=b"/x")) == b"/x"  # no Host: base is the path
    assert one("path", Ctx(url=b"")) is None
    assert one("path", Ctx(url=b"/?")) == b"/"
    assert one("path", Ctx(url=b"http://h")) is None  # authority without a path


def test_path_is_computed_once_per_transaction_until_the_url_changes() -> None:
    """The path fetch memoises in ctx.memo, which a URL rewrite clears (set-path)."""
    expr = sample.parse_expr("path")
    ctx = Ctx(url=b"/static/a.css?v=3")
    assert expr.values(ctx) == [b"/static/a.css"]
    ctx.url = b"/other"
    assert expr.values(ctx) == [b"/static/a.css"]  # served from the memo
    ctx.memo.clear()
    assert expr.values(ctx) == [b"/other"]
    ctx.is_response = True
    assert expr.values(ctx) == []  # request-only fetch


def test_layer4_and_misc_fetches() -> None:
    ctx = Ctx()
    assert one("src", ctx) == b"192.0.2.7"
    assert one("dst", ctx) == b"::1"
    assert one("src_port", ctx) == 40000 and one("dst_port", ctx) == 8443
    assert one("always_true", ctx) is True and one("always_false", ctx) is False
    assert one("req.len", ctx) == 0 and one("ssl_fc", ctx) is False
    assert one("status", ctx) is None
    ctx.vars["txn.user"] = b"bob"
    assert one("var(txn.user)", ctx) == b"bob"
    assert one("var(txn.none)", ctx) is None


def test_cookies() -> None:
    ctx = Ctx([(b"cookie", b"sid=abc; lang=en"), (b"cookie", b"sid=def")])
    assert one("cook(sid)", ctx) == b"def"
    assert every("req.cook(sid)", ctx) == [b"abc", b"def"]
    assert one("cook_cnt(sid)", ctx) == 2
    assert one("cook(nope)", ctx) is None


def test_response_side() -> None:
    ctx = Ctx([(b"x", b"req")])
    ctx.is_response = True
    ctx.status = 404
    ctx.res_headers = [(b"x", b"res"), (b"set-cookie", b"a=1; Expires=Thu, 01 Jan 2030")]
    assert one("hdr(x)", ctx) == b"res"  # the hdr fetch follows the rule's direction
    assert one("req.hdr(x)", ctx) is None  # request data is gone in response rules
    assert one("res.hdr(set-cookie)", ctx) == b"01 Jan 2030"
    assert one("res.fhdr(set-cookie)", ctx) == b"a=1; Expires=Thu, 01 Jan 2030"
    assert one("status", ctx) == 404


@pytest.mark.parametrize("expr,value", [
    ("hdr(h),lower", b"www.example.com:80"),
    ("hdr(h),upper", b"WWW.EXAMPLE.COM:80"),
    ("hdr(h),field(2,.)", b"Example"),
    ("hdr(h),field(-1,.)", b"com:80"),
    ("hdr(h),field(9,.)", b""),
    ("hdr(h),field(1,.:)", b"WWW"),
    ("hdr(h),field(2,.,2)", b"Example.com:80"),
    ("hdr(h),word(2,.)", b"Example"),
    ("hdr(w),word(1,/)", b"a"),
    ("hdr(w),field(1,/)", b""),
    ("hdr(h),len", 18),
    ("hdr(h),length", 18),
    ("hdr(w),regsub(/,_,g)", b"_a_b"),
    ("hdr(w),regsub(/,_)", b"_a/b"),
    ("hdr(w),regsub(\"(a)/(b)\",\\2-\\1)", b"/b-a"),
    ("hdr(w),regsub(A,x,ig)", b"/x/b"),
    ("hdr(n),hex", b"3132"),
    ("hdr_val(n),add(3)", 15),
    ("hdr_val(n),sub(20)", -8),
    ("hdr_val(n),mul(2)", 24),
    ("hdr_val(n),div(5)", 2),
    ("hdr_val(n),div(0)", 2**63 - 1),
    ("hdr_val(n),mod(5)", 2),
    ("hdr_val(n),bool", True),
    ("hdr_val(n),not", False),
    ("hdr_val(n),neg", -12),
    ("hdr(n),base64", b"MTI="),
    ("hdr(q),json", b'a\\"b'),
    ("hdr(s),ltrim(-)", b"x--"),
    ("hdr(s),rtrim(-)", b"--x"),
    ("hdr(w),concat(-,txn.v,!)", b"/a/b-V!"),
    ("hdr(a),djb2", 177670),
    ("hdr(w),bytes(1,1)", b"a"),
    ("hdr(pct),url_dec", b"a+b/c"),
    ("hdr(pct),url_dec(1)", b"a b/c"),
])
def test_converters(expr: str, value: Any) -> None:
    ctx = Ctx([(b"h", b"WWW.Example.com:80"), (b"w", b"/a/b"), (b"n", b"12"),
               (b"q", b'a"b'), (b"s", b"\"  x  \""), (b"pct", b"a+b%2Fc")])
    ctx.req_headers[4] = (b"s", b"--x--")
    ctx.req_headers.append((b"a", b"a"))
    ctx.vars["txn.v"] = b"V"
    assert one(expr, ctx) == value


def test_arith_clamps_to_64_bits() -> None:
    ctx = Ctx([(b"n", b"9223372036854775807")])
    assert one("hdr_val(n),add(1)", ctx) == 2**63 - 1
    assert one("hdr_val(n),mul(-3)", ctx) == -2**63


@pytest.mark.parametrize("text,msg", [
    ("", "missing fetch method"),
    ("nosuch", "unknown fetch method 'nosuch'"),
    ("path,nosuch", "unknown converter 'nosuch'"),
    ("path(1)", "fetch method 'path' : expected ')' before '1)'"),
    ("hdr(x", "fetch method 'hdr' : expected ')'"),
    ("hdr(x,abc)", "fetch method 'hdr' : failed to parse 'abc' as type 'integer' at"
                   " position 2"),
    ("path,field(2)", "invalid arg 2 in converter 'field' : missing arguments (got 1/2),"
                      " type 'string' expected"),
    ("path,lower(1)", "invalid arg 1 in converter 'lower' : expected ')' before '1)'"),
    ("path,regsub(a,b,z)", "invalid args in converter 'regsub' : invalid regex flag 'z',"
                           " only 'i' and 'g' are supported"),
    ("hdr(x)junk", "missing comma after fetch keyword"),
])
def test_parse_errors(text: str, msg: str) -> None:
    with pytest.raises(sample.SampleError) as ei:
        sample.parse_expr(text)
    assert str(ei.value) == msg


def test_quoted_converter_arguments() -> None:
    ctx = Ctx([(b"x", b"a,b)c")])
    assert one("hdr(x)", ctx) == b"b)c"  # hdr() splits at commas: last value
    assert one("req.fhdr(x),regsub(',',;)", ctx) == b"a;b)c"
    assert one("req.fhdr(x),regsub(\",\",;)", ctx) == b"a;b)c"
    assert one("req.fhdr(x),regsub(\"[)]\",])", ctx) == b"a,b]c"
    # checked against HAProxy 2.6.12: only \\ \" \' are escapes in arguments
    assert one('str(a\\\\b)', ctx) == b"a\\b"
    assert one('str("a\\"b")', ctx) == b'a"b'
    assert one("str(a\\b)", ctx) == b"a\\b"
    assert one('str("a\\1b")', ctx) == b"a\\1b"
    assert one('str(a"b"c)', ctx) == b"abc"
    with pytest.raises(sample.SampleError):
        sample.parse_expr("str(a\\,b)")


# ------------------------------------------------------------------ pattern.py

def _m(method: str, pats: list[str], icase: bool = False) -> pattern.Matcher:
    mm = pattern.MATCH_METHODS[method]
    return pattern.compile_patterns(method, [mm.parse(p) for p in pats], icase)


def test_string_methods_compile_once_and_fold_case() -> None:
    assert _m("str", ["Foo"])(b"Foo") and not _m("str", ["Foo"])(b"foo")
    assert _m("str", ["Foo"], True)(b"fOO")
    assert _m("beg", ["/a", "/b"])(b"/b/c")
    assert _m("end", [".PNG"], True)(b"x.png")
    assert _m("sub", ["ock"])(b"/websocket") and not _m("sub", ["OCK"])(b"/websocket")
    assert _m("sub", ["x", "ock"], True)(b"/WEBSOCKET")
    assert _m("reg", ["^/a.*z$"])(b"/abcz") and not _m("reg", ["^/A"])(b"/abc")
    assert _m("reg", ["^/A"], True)(b"/abc")
    assert _m("reg", ["b"])(b"abc")  # unanchored search
    assert _m("len", ["3"])(b"abc") and not _m("len", ["3"])(b"ab")


@pytest.mark.parametrize("pat,value,hit", [
    ("img", b"/img/x.png", True), ("/img", b"/img/x.png", True), ("img/x.png", b"/img/x.png",
                                                                   True),
    ("x.png", b"/img/x.png", True), ("img", b"/image/a.jpg", False), ("im", b"/img/", False),
    ("a", b"/x?a", True), ("/image/", b"/image/a.jpg", True),
])
def test_dir(pat: str, value: bytes, hit: bool) -> None:
    assert _m("dir", [pat])(value) is hit


@pytest.mark.parametrize("pat,value,hit", [
    ("example", b"www.EXAMPLE.com:8080", False), ("8080", b"www.EXAMPLE.com:8080", True),
    ("EXAMPLE.com", b"www.EXAMPLE.com:8080", True), ("exam", b"www.example.com", False),
    (".com.", b"www.example.com", True), ("ws.example", b"ws.example.com", True),
])
def test_dom(pat: str, value: bytes, hit: bool) -> None:
    assert _m("dom", [pat])(value) is hit


def test_dom_icase() -> None:
    assert _m("dom", ["example"], True)(b"www.EXAMPLE.com:8080")


def test_int_ranges() -> None:
    rng = pattern.parse_int_range
    assert rng("5") == (5, 5) and rng("1:3") == (1, 3) and rng(":3") == (None, 3)
    assert rng("3:") == (3, None) and rng("-5") == (None, 5)  # '-' separates, as in HAProxy
    with pytest.raises(pattern.PatternError):
        rng("5:3")
    assert pattern.apply_operator("gt", "5") == (6, None)
    assert pattern.apply_operator("lt", "5") == (None, 4)
    m = _m("int", ["1", "10:20"])
    assert m(1) and m(15) and not m(5)


def test_ip_nets() -> None:
    m = _m("ip", ["10.0.0.0/8", "::1", "2001:db8::/32"])
    ip = pattern.ipaddress.ip_address
    assert m(ip("10.9.9.9")) and m(ip("::1")) and m(ip("2001:db8::5"))
    assert m(ip("::ffff:10.1.1.1")) and not m(ip("11.0.0.1"))
    with pytest.raises(pattern.PatternError):
        pattern.parse_net("localhost")  # no DNS resolution (see docs/acl.md)


def test_meth_matcher() -> None:
    m = _m("meth", ["GET", "purge"], True)
    assert m(b"GET") and not m(b"get") and m(b"PURGE") and not m(b"POST")


def test_bin_method_casts_integers_to_8_bytes() -> None:
    from lb.match import acl
    ctx = Ctx([(b"x", b"a,b")])
    e, _ = acl.parse_acl_expr(["hdr_cnt(x)", "-m", "bin", "0000000000000002"])
    assert e.match(ctx)
    e, _ = acl.parse_acl_expr(["hdr(x)", "-m", "bin", "62"])
    assert e.match(ctx)


def test_large_pattern_sets() -> None:
    subs = [f"tok{i}" for i in range(50)]
    m = _m("sub", subs)
    assert m(b"/a/tok49/b") and not m(b"/a/TOK49/b")
    assert _m("sub", subs, True)(b"/a/TOK49/b")
    assert _m("sub", ["", "x"] + subs)(b"anything")  # an empty pattern is in every string
    nets = [f"10.{i}.0.0/16" for i in range(200)] + ["192.168.1.1", "2001:db8::/32"]
    m = _m("ip", nets)
    ip = pattern.ipaddress.ip_address
    assert m(ip("10.199.3.4")) and m(ip("192.168.1.1")) and m(ip("2001:db8::9"))
    assert not m(ip("10.200.0.1")) and not m(ip("192.168.1.2"))
