"""Bad input never escapes lb.match as anything but its documented errors."""

from __future__ import annotations

import random
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from lb.match import acl, fmt, pattern, sample
from tests.pure_support import pure_module

_CHARS = string.ascii_letters + string.digits + "()[]{},.:-_/%+!|'\"\\ *^$?#"
_WORDS = st.lists(st.text(alphabet=_CHARS, min_size=0, max_size=12), min_size=0, max_size=6)
_KNOWN = st.sampled_from(["hdr(x)", "hdr_beg(host)", "path", "src", "hdr_cnt(x)", "method",
                          "hdr(x,-2)", "req.hdr(host),lower", "path,field(2,/)", "url_param(a)",
                          "hdr_val(x)", "hdr_ip(x)", "status", "var(txn.x)", "query"])


class _Ctx(sample.SampleSubject):
    def __init__(self, headers: list[tuple[bytes, bytes]], url: bytes) -> None:
        self.method = b"GET"
        self.url = url
        self.version = b"1.1"
        self.req_headers = headers
        self.src, self.src_port, self.dst, self.dst_port = "127.0.0.1", 1, "::1", 2
        self.is_response = False
        self.status = 0
        self.res_headers = None
        self.vars = {"txn.x": b"1"}
        self.memo = {}


@settings(max_examples=300, deadline=None)
@given(_WORDS)
def test_parse_acl_expr_only_raises_acl_error(words: list[str]) -> None:
    try:
        acl.parse_acl_expr(words)
    except acl.AclError:
        pass


@settings(max_examples=300, deadline=None)
@given(_KNOWN, _WORDS)
def test_known_criteria_with_random_flags_and_values(crit: str, rest: list[str]) -> None:
    try:
        expr, _ = acl.parse_acl_expr([crit, *rest])
    except acl.AclError:
        return
    ctx = _Ctx([(b"x", b"12, a"), (b"host", b"H")], b"/a/b?a=1")
    assert expr.match(ctx) in (True, False)


@settings(max_examples=300, deadline=None)
@given(_WORDS)
def test_conditions_only_raise_acl_error(words: list[str]) -> None:
    known = {"a": acl.Acl("a")}
    try:
        cond, _ = acl.compile_condition("if", words, known.get)
    except acl.AclError:
        return
    assert cond.evaluate(_Ctx([], b"/")) in (True, False)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_CHARS, max_size=40))
def test_formats_only_raise_format_error(text: str) -> None:
    try:
        f = fmt.compile_format(text)
    except fmt.FormatError:
        return
    assert isinstance(f.render(_Ctx([(b"x", b"1")], b"/p?q")), bytes)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_CHARS, max_size=30))
def test_sample_expressions_only_raise_sample_error(text: str) -> None:
    try:
        e = sample.parse_expr(text)
    except sample.SampleError:
        return
    e.fetch(_Ctx([(b"x", b"1")], b"/p?q"))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([b"x", b"host", b"cookie"]),
                          st.binary(max_size=30)), max_size=5),
       st.binary(max_size=30))
def test_fetches_on_arbitrary_heads(headers: list[tuple[bytes, bytes]], url: bytes) -> None:
    ctx = _Ctx(headers, url)
    for name in ("hdr(x)", "hdr(x,2)", "hdr_cnt", "hdr_val(x)", "hdr_ip(x)", "path", "base",
                 "query", "url_param(a)", "cook(a)", "hdr()", "req.fhdr(x,-1)",
                 "hdr(x),field(2,.)", "hdr(x),word(-1,.)", "hdr(x),regsub(a,b,g)",
                 "hdr(x),json", "hdr(x),url_dec", "hdr_val(x),div(0)", "hdr(x),lower,hex"):
        e = sample.parse_expr(name)
        e.fetch(ctx)
        list(e.iter_values(ctx))


def _split_reference(value: bytes) -> list[bytes]:
    """Byte-by-byte statement of the rule split_values implements faster."""
    out, start, quoted, i = [], 0, False, 0
    while i < len(value):
        c = value[i]
        if quoted:
            if c == 0x5C:
                i += 1
            elif c == 0x22:
                quoted = False
        elif c == 0x22:
            quoted = True
        elif c == 0x2C:
            out.append(value[start:i].strip(b" \t"))
            start = i + 1
        i += 1
    out.append(value[start:].strip(b" \t"))
    return out


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from([b"a", b",", b'"', b"\\", b" ", b"\t", b"xy"]), max_size=20))
def test_split_values_matches_reference(parts: list[bytes]) -> None:
    value = b"".join(parts)
    assert sample.split_values(value) == _split_reference(value)
    # the header fetch's own shortcut for one line (comma test and trim in C)
    assert sample._values([(b"x-a", b"1"), (b"x", value)], b"x") == _split_reference(value)



def test_huge_numbers_are_errors_not_crashes() -> None:
    big = "9" * 5000  # beyond Python's int() digit limit
    for words in (["hdr_cnt(x)", big], ["hdr_cnt(x)", "gt", big], ["src", big + "/8"],
                  ["src", "::1/" + big], [f"hdr(x,{big})", "a"], [f"path,field({big},/)", "a"]):
        try:
            acl.parse_acl_expr(words)
        except acl.AclError:
            pass
    ctx = _Ctx([(b"x", big.encode())], b"/")
    assert sample.parse_expr("hdr_val(x)").fetch(ctx) == 2**63 - 1
    assert sample.parse_expr("hdr(x),add(1)").fetch(ctx) == 2**63 - 1


def test_str_beg_end_matchers_compiled_and_pure_agree() -> None:
    """The compiled in-place comparisons of `str` (up to eight patterns) and
    `beg`/`end` (pattern.pxd) against the Python ones (lower-cased copy, set or
    startswith/endswith), with and without -i, on values that are or nearly are a
    pattern, in every case mix, with bytes outside ASCII (never folded)."""
    pure = pure_module("lb.match.pattern")
    rnd = random.Random(1207)
    alphabet = b"aAzZ@[`{09-.\xc0\xe0\xff "
    checked = hits = 0
    for _ in range(400):
        pats = [bytes(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 6)))
                for _ in range(rnd.choice((1, 2, 3, 8, 9, 12)))]
        values = [p for p in pats] + [p.swapcase() for p in pats]
        values += [bytes(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 8)))
                   for _ in range(10)]
        values += [p + b"x" for p in pats] + [b"x" + p for p in pats]
        for icase in (False, True):
            built = [(pattern._str_matcher(pats, icase), pure._str_matcher(pats, icase)),
                     (pattern._beg_matcher(pats, icase), pure._beg_matcher(pats, icase)),
                     (pattern._end_matcher(pats, icase), pure._end_matcher(pats, icase))]
            for ours, python in built:
                for v in values:
                    got = ours.match(v)
                    assert got == python.match(v), (pats, icase, v)
                    checked += 1
                    hits += got
    assert checked > 50_000 and checked / 4 < hits < checked * 3 / 4
    m = pattern._str_matcher([b"WebSocket"], True)
    assert m.match(b"websocket") and m.match(b"WEBSOCKET") and not m.match(b"websocke")
    assert type(m).__module__ == "lb.match.pattern"
