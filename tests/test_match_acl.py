"""Unit tests for lb.match.acl: expressions, flags, files, conditions, messages."""

from __future__ import annotations

import os
from typing import Any

import pytest

from lb.match import acl, sample


class Ctx(sample.SampleSubject):
    def __init__(self, headers: list[tuple[bytes, bytes]] | None = None, url: bytes = b"/",
                 method: bytes = b"GET", src: str = "127.0.0.1") -> None:
        self.method = method
        self.url = url
        self.version = b"1.1"
        self.req_headers = headers or []
        self.src, self.src_port, self.dst, self.dst_port = src, 40000, "127.0.0.1", 80
        self.is_response = False
        self.status = 0
        self.res_headers: list[tuple[bytes, bytes]] | None = None
        self.vars: dict[str, Any] = {}
        self.memo: dict[Any, Any] = {}


def expr(*words: str, base_dir: str = ".") -> acl.AclExpr:
    return acl.parse_acl_expr(list(words), base_dir=base_dir)[0]


def matches(ctx: Ctx, *words: str) -> bool:
    return expr(*words).match(ctx)


# ------------------------------------------------------------------ expressions

def test_several_values_are_or() -> None:
    ctx = Ctx([(b"host", b"b.example")])
    assert matches(ctx, "hdr(host)", "a.example", "b.example")
    assert not matches(ctx, "hdr(host)", "a.example", "c.example")


def test_same_name_on_several_lines_is_or() -> None:
    a = acl.Acl("ws")
    a.add(expr("hdr(upgrade)", "-i", "websocket"))
    a.add(expr("path_beg", "/ws"))
    assert a.evaluate(Ctx(url=b"/ws/x"))
    assert a.evaluate(Ctx([(b"upgrade", b"WebSocket")]))
    assert not a.evaluate(Ctx(url=b"/other"))
    assert acl.Acl("empty").evaluate(Ctx()) is False


def test_flags_only_before_first_value() -> None:
    ctx = Ctx([(b"x", b"-i")])
    # after the first value, "-i" is an ordinary pattern
    assert matches(ctx, "hdr(x)", "foo", "-i")
    assert not matches(Ctx([(b"x", b"FOO")]), "hdr(x)", "foo", "-i")
    assert matches(Ctx([(b"x", b"FOO")]), "hdr(x)", "-i", "foo")


def test_double_dash_ends_flags() -> None:
    assert matches(Ctx([(b"x", b"-q")]), "hdr(x)", "--", "-q")
    with pytest.raises(acl.AclError) as ei:
        acl.parse_acl_expr(["hdr(x)", "-q"])
    assert str(ei.value) == ("'-q' is not a valid ACL option. Please use '--' before any"
                             " pattern beginning with a '-'")


def test_dash_i_applies_to_later_files_only(tmp_path: Any) -> None:
    (tmp_path / "a.lst").write_text("Foo\n")
    (tmp_path / "b.lst").write_text("Bar\n")
    e = expr("hdr(x)", "-f", "a.lst", "-i", "-f", "b.lst", base_dir=str(tmp_path))
    assert e.match(Ctx([(b"x", b"Foo")]))
    assert not e.match(Ctx([(b"x", b"foo")]))
    assert e.match(Ctx([(b"x", b"bar")]))


def test_pattern_file_rules(tmp_path: Any) -> None:
    (tmp_path / "p.lst").write_bytes(b"# comment\n\n   \t/static\r\n  # spaced comment\n/img \n")
    e = expr("path_beg", "-f", "p.lst", base_dir=str(tmp_path))
    assert e.match(Ctx(url=b"/static/x"))
    assert not e.match(Ctx(url=b"/img/x"))  # trailing space is part of the pattern
    assert e.match(Ctx(url=b"/img /x"))
    assert not e.match(Ctx(url=b"# comment"))
    abs_path = str(tmp_path / "p.lst")
    assert expr("path_beg", "-f", abs_path).match(Ctx(url=b"/static"))
    with pytest.raises(acl.AclError) as ei:
        acl.parse_acl_expr(["path", "-f", "missing.lst"], base_dir=str(tmp_path))
    assert str(ei.value) == "failed to open pattern file <missing.lst>"


def test_map_file_uses_first_column(tmp_path: Any) -> None:
    (tmp_path / "h.map").write_text("www.example.com be_www\napi.example.com  be_api\n")
    e = expr("hdr(host)", "-M", "-f", "h.map", base_dir=str(tmp_path))
    assert e.match(Ctx([(b"host", b"api.example.com")]))
    assert not e.match(Ctx([(b"host", b"be_api")]))


def test_found_ignores_patterns_and_sees_empty_values() -> None:
    assert matches(Ctx([(b"x", b"")]), "hdr(x)", "-m", "found")
    assert matches(Ctx([(b"x", b"a")]), "hdr(x)", "-m", "found", "zzz")
    assert not matches(Ctx(), "hdr(x)", "-m", "found")


def test_default_method_follows_output_type() -> None:
    assert expr("hdr_cnt(x)", "1").method == "int"
    assert expr("src", "10.0.0.0/8").method == "ip"
    assert expr("always_true").method == "bool"
    assert expr("path", "/").method == "str"
    assert expr("method", "GET").method == "meth"


def test_suffix_keyword_implies_method_unless_converter() -> None:
    ctx = Ctx([(b"host", b"WS.example.com")])
    assert expr("hdr_beg(host)", "x").method == "beg"
    assert matches(ctx, "hdr_beg(host)", "-i", "ws.")
    # the converter's output type decides: str → exact match
    assert not matches(ctx, "hdr_beg(host),lower", "ws.")
    assert matches(ctx, "hdr_beg(host),lower", "ws.example.com")
    # -m overrides the implied method
    assert matches(Ctx(url=b"/a/b.png"), "path_beg", "-m", "end", ".png")


def test_int_operators_apply_to_following_values() -> None:
    ctx = Ctx([(b"x-n", b"7")])
    assert matches(ctx, "hdr_val(x-n)", "gt", "20", "3")
    assert not matches(ctx, "hdr_val(x-n)", "gt", "20", "30")
    assert matches(ctx, "hdr_val(x-n)", "5:9")
    assert matches(ctx, "hdr_val(x-n)", ":7")
    assert not matches(ctx, "hdr_val(x-n)", "8:")
    assert matches(ctx, "hdr_val(x-n)", "le", "7")
    assert not matches(ctx, "hdr_val(x-n)", "lt", "7")
    with pytest.raises(acl.AclError) as ei:
        acl.parse_acl_expr(["hdr_cnt(x)", "gt", "abc"])
    assert str(ei.value) == "'abc' is neither a number nor a supported operator"
    with pytest.raises(acl.AclError) as ei:
        acl.parse_acl_expr(["hdr_cnt(x)", "abc"])
    assert str(ei.value) == "'abc' is not a number"


def test_hdr_cnt_of_missing_header_is_zero() -> None:
    assert matches(Ctx(), "hdr_cnt(sec-websocket-key)", "eq", "0")
    assert matches(Ctx([(b"sec-websocket-key", b"k")]), "hdr_cnt(sec-websocket-key)", "eq", "1")


def test_acl_context_tries_every_value_explicit_occurrence_one() -> None:
    ctx = Ctx([(b"x", b"foo"), (b"x", b"bar, baz")])
    for v in ("foo", "bar", "baz"):
        assert matches(ctx, "hdr(x)", v)
    assert matches(ctx, "hdr(x,2)", "bar")
    assert not matches(ctx, "hdr(x,2)", "foo")
    assert matches(ctx, "hdr(x,-1)", "baz")
    assert matches(ctx, "hdr(x,0)", "foo")  # occurrence 0 in an ACL = every value


def test_method_case_rules() -> None:
    get = Ctx(method=b"GET")
    assert matches(get, "method", "GET")
    assert not matches(get, "method", "get")
    assert not matches(get, "method", "-i", "get")  # standard methods compare by code
    purge = Ctx(method=b"PURGE")
    assert matches(purge, "method", "-i", "purge")
    assert not matches(purge, "method", "purge")
    assert matches(purge, "method", "PURGE")


def test_ip_patterns() -> None:
    v4 = Ctx(src="10.1.2.3")
    assert matches(v4, "src", "10.0.0.0/8")
    # inet_aton short forms, as HAProxy reads them: 10.1 is 10.0.0.1, 127.1 is 127.0.0.1
    assert not matches(v4, "src", "10.1/16")
    assert matches(Ctx(src="10.0.9.9"), "src", "10.1/16")
    assert matches(Ctx(), "src", "127.1/16")
    assert matches(v4, "src", "10.0.0.0/255.0.0.0")
    assert matches(v4, "src", "::ffff:10.1.2.3")
    assert not matches(v4, "src", "192.168.0.0/16")
    mapped = Ctx(src="::ffff:10.1.2.3")
    assert matches(mapped, "src", "10.0.0.0/8")
    assert matches(Ctx(src="2002:a01:203::1"), "src", "10.1.2.3")  # 6to4
    assert matches(Ctx(src="::1"), "src", "::1", "127.0.0.1")
    with pytest.raises(acl.AclError) as ei:
        acl.parse_acl_expr(["src", "300.1.2.3"])
    assert str(ei.value) == "'300.1.2.3' is not a valid IPv4 or IPv6 address"


def test_warnings() -> None:
    _, w = acl.parse_acl_expr(["hdr(host)"])
    assert len(w) == 1 and "no pattern to match against were provided" in w[0]
    assert w[0].startswith("parsing acl keyword 'hdr(host)' :\n")
    assert acl.parse_acl_expr(["hdr(host)", "--"])[1] == []
    assert acl.parse_acl_expr(["always_true"])[1] == []
    assert acl.parse_acl_expr(["hdr(host)", "-m", "found"])[1] == []
    _, w = acl.parse_acl_expr(["hdr", "(host)", "x"], name="a")
    assert w[0].startswith("parsing acl 'a' :\n  matching 'hdr' for pattern '(host)'")
    assert not expr("hdr(host)").match(Ctx([(b"host", b"")]))


def test_error_messages() -> None:
    cases = {
        ("nosuchfetch",): "unknown fetch method 'nosuchfetch' in ACL expression 'nosuchfetch'",
        ("hdr(x,-11)", "a"): "in argument to 'hdr', header occurrence must be >= -10",
        ("path,nosuch", "a"): "ACL keyword 'path' : unknown converter 'nosuch'.",
        ("path", "-m", "nosuch", "a"): "unknown matching method 'nosuch' when parsing ACL"
                                      " expression",
        ("hdr_cnt(x)", "5:3"): "'5:3' is not a valid number range",
        ("hdr(x", "a"): "ACL keyword 'hdr' : expected ')'",
        ("path(1)", "a"): "ACL keyword 'path' : expected ')' before '1)'",
        ("path", "-m", "bin", "4"): "an even number of hex digit is expected",
    }
    for words, msg in cases.items():
        with pytest.raises(acl.AclError) as ei:
            acl.parse_acl_expr(list(words))
        assert str(ei.value) == msg, words
    assert acl.invalid_name_message("bad!name") == ("character '!' is not permitted in acl"
                                                   " name 'bad!name'")
    assert acl.invalid_name_message("good_name.1:x-y") is None


# ------------------------------------------------------------------ conditions

class Counting:
    """An ACL stand-in that records evaluations (to prove short-circuiting)."""

    def __init__(self, name: str, result: bool, log: list[str]) -> None:
        self.name = name
        self.result = result
        self.log = log
        self.where = frozenset()

    def evaluate(self, ctx: Any) -> bool:
        self.log.append(self.name)
        return self.result


def _cond(words: str, table: dict[str, Any], kind: str = "if") -> acl.Condition:
    return acl.compile_condition(kind, words.split(), table.get)[0]


def test_and_or_precedence_and_short_circuit() -> None:
    log: list[str] = []
    t = {n: Counting(n, r, log) for n, r in (("a", True), ("b", False), ("c", True))}
    assert _cond("a b || c", t).evaluate(None)  # (a∧b)∨c
    assert log == ["a", "b", "c"]
    log.clear()
    assert not _cond("b a", t).evaluate(None)
    assert log == ["b"]  # AND stops at the first false term
    log.clear()
    assert _cond("c || b", t).evaluate(None)
    assert log == ["c"]  # OR stops at the first true suite
    log.clear()
    assert _cond("a or b", t).evaluate(None) and _cond("a OR b", t).evaluate(None)


def test_negation_forms() -> None:
    log: list[str] = []
    t = {"a": Counting("a", True, log), "b": Counting("b", False, log)}
    assert not _cond("!a", t).evaluate(None)
    assert not _cond("! a", t).evaluate(None)
    assert _cond("!!a", t).evaluate(None)
    assert _cond("! ! a", t).evaluate(None)
    assert _cond("!b", t).evaluate(None)
    assert _cond("a !b", t).evaluate(None)


def test_unless_negates_whole_condition() -> None:
    t = {"a": Counting("a", True, []), "b": Counting("b", False, [])}
    assert not _cond("a", t, "unless").evaluate(None)
    assert _cond("a b", t, "unless").evaluate(None)
    assert not _cond("b || a", t, "unless").evaluate(None)


def test_empty_condition_and_trailing_or() -> None:
    t = {"a": Counting("a", True, [])}
    assert not acl.compile_condition("if", [], t.get)[0].evaluate(None)
    assert acl.compile_condition("unless", [], t.get)[0].evaluate(None)
    assert _cond("a or", t).evaluate(None)
    assert _cond("a !", t).evaluate(None)


def test_anonymous_acls_and_missing_brace() -> None:
    ctx = Ctx([(b"upgrade", b"websocket")], url=b"/chat")
    c, w = acl.compile_condition(
        "if", ["{", "hdr(upgrade)", "-i", "WebSocket", "}", "{", "path", "/chat", "}"],
        lambda n: None)
    assert c.evaluate(ctx) and w == []
    c, _ = acl.compile_condition("if", ["!{", "path", "/chat", "}"], lambda n: None)
    assert not c.evaluate(ctx)
    with pytest.raises(acl.AclError) as ei:
        acl.compile_condition("if", ["{", "path", "/"], lambda n: None)
    assert str(ei.value) == "missing closing '}' in condition"
    _, w = acl.compile_condition("if", ["{", "path", "}"], lambda n: None)
    assert "no pattern to match" in w[0]


def test_unknown_acl_and_predefined() -> None:
    with pytest.raises(acl.AclError) as ei:
        acl.compile_condition("if", ["nope"], lambda n: None)
    assert str(ei.value) == "no such ACL : 'nope'"
    c, _ = acl.compile_condition("if", ["METH_GET", "LOCALHOST"], lambda n: None)
    assert c.evaluate(Ctx(method=b"HEAD"))
    assert not c.evaluate(Ctx(method=b"POST"))
    # a user ACL with a predefined name wins
    mine = Counting("TRUE", False, [])
    c, _ = acl.compile_condition("if", ["TRUE"], {"TRUE": mine}.get)
    assert not c.evaluate(None)
    assert c.text == "if TRUE"


def test_predefined_table_is_complete() -> None:
    expected = {"TRUE", "FALSE", "LOCALHOST", "HTTP", "HTTP_1.0", "HTTP_1.1", "HTTP_2.0",
                "METH_CONNECT", "METH_DELETE", "METH_GET", "METH_HEAD", "METH_OPTIONS",
                "METH_POST", "METH_PUT", "METH_TRACE", "HTTP_URL_ABS", "HTTP_URL_SLASH",
                "HTTP_URL_STAR", "HTTP_CONTENT", "RDP_COOKIE", "REQ_CONTENT", "WAIT_END"}
    assert set(acl.PREDEFINED_ACLS) == expected


def test_acl_keywords_resolve() -> None:
    """Like HAProxy's init_acl: every ACL keyword points at a registered fetch."""
    from lb.match import pattern, sample
    for kw in acl.ACL_KEYWORDS.values():
        assert kw.fetch in sample.FETCHES, kw
        assert kw.method in pattern.MATCH_METHODS, kw


def test_direction_rules() -> None:
    ctx = Ctx([(b"x", b"req")])
    ctx.is_response = True
    ctx.status = 200
    ctx.res_headers = [(b"x", b"res")]
    # the "hdr" ACL keyword is request-only: never true in response rules
    assert not matches(ctx, "hdr(x)", "req")
    assert not matches(ctx, "hdr(x)", "res")
    assert matches(ctx, "res.hdr(x)", "res")
    assert matches(ctx, "shdr(x)", "res")
    assert matches(ctx, "status", "200")
    assert not matches(Ctx(), "status", "-m", "found")
    c, _ = acl.compile_condition("if", ["{", "status", "200", "}"], lambda n: None)
    assert c.where == frozenset({"res"})


def test_relative_files_resolve_against_base_dir(tmp_path: Any) -> None:
    sub = tmp_path / "conf"
    sub.mkdir()
    (sub / "hosts.lst").write_text("a.example\n")
    e = expr("hdr(host)", "-f", "hosts.lst", base_dir=str(sub))
    assert e.match(Ctx([(b"host", b"a.example")]))
    assert os.path.isabs(str(sub))


def test_conflict_warnings_match_haproxy() -> None:
    """Checked against HAProxy 2.6.12 (`haproxy -c` warnings on the same rules)."""
    a = acl.Acl("a")
    a.add(expr("hdr(x)", "foo"))
    a.add(expr("res.hdr(x)", "foo"))
    b = acl.Acl("b")
    b.add(expr("status", "200"))
    table = {"a": a, "b": b}
    req = "frontend http-request header rule"
    res = "frontend http-response header rule"
    c = acl.compile_condition("if", ["{", "hdr(x)", "foo", "}"], table.get)[0]
    assert c.conflict("res", res) == ("anonymous acl will never match because it uses"
                                      " keyword 'hdr' which is incompatible with"
                                      " 'frontend http-response header rule'")
    assert c.conflict("req", req) is None
    c = acl.compile_condition("if", ["b"], table.get)[0]
    assert c.conflict("req", req) == ("acl 'b' will never match because it only involves"
                                      " keywords that are incompatible with"
                                      " 'frontend http-request header rule'")
    c = acl.compile_condition("if", ["{", "status", "200", "}", "a"], table.get)[0]
    assert "keyword 'status'" in (c.conflict("req", req) or "")
    c = acl.compile_condition("if", ["b", "{", "path", "/", "}"], table.get)[0]
    assert "keyword 'path'" in (c.conflict("res", res) or "")
    assert acl.compile_condition("if", ["a"], table.get)[0].conflict("res", res) is None
