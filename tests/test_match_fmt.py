"""Unit tests for lb.match.fmt (log-format strings) and escape_log.

Rendering rules were checked against HAProxy 2.6.12 with a log-format line and an
``http-request return ... lf-string`` carrying the same fields: in lf-strings a missing
sample prints nothing and ``+Q``/``+M``/``+X`` are ignored on samples (``+E`` applies);
in log lines a missing or empty sample prints ``-`` (``""`` with ``+Q``), ``+Q`` quotes,
leading spaces are dropped and runs of spaces collapse; ``%{+Q}o`` sets the flags of
the following fields; a lone ``%`` before a non-letter is dropped.
"""

from __future__ import annotations

from typing import Any

import pytest

from lb.match import fmt, sample


class Ctx(sample.SampleSubject):
    def __init__(self, headers: list[tuple[bytes, bytes]] | None = None,
                 url: bytes = b"/a/b?x=1") -> None:
        self.method = b"GET"
        self.url = url
        self.version = b"1.1"
        self.req_headers = headers if headers is not None else [(b"host", b"WWW.Example.com:80")]
        self.src, self.src_port, self.dst, self.dst_port = "127.0.0.1", 5555, "127.0.0.1", 80
        self.is_response = False
        self.status = 0
        self.res_headers: list[tuple[bytes, bytes]] | None = None
        self.vars: dict[str, Any] = {}
        self.memo: dict[Any, Any] = {}


def render(text: str, ctx: Any = None, **kw: Any) -> bytes:
    return fmt.compile_format(text, **kw).render(ctx if ctx is not None else Ctx())


def test_constant_formats_skip_rendering() -> None:
    f = fmt.compile_format("plain 100%% text")
    assert f.constant == b"plain 100% text"
    assert f.render(None) == b"plain 100% text"
    assert fmt.compile_format("%[path]").constant is None
    assert fmt.compile_format("").constant == b""


def test_dynamic_use_backend_names() -> None:
    assert render("be_%[req.hdr(host),lower,field(1,:)]") == b"be_www.example.com"
    assert render("be_%[hdr(host),word(2,.)]") == b"be_Example"
    assert render("%[path]") == b"/a/b"
    assert render("%[base]") == b"WWW.Example.com:80/a/b"
    assert render("%[hdr(nope)]") == b""  # missing sample: nothing in lf-strings


def test_lf_string_ignores_quote_on_samples_but_escapes() -> None:
    ctx = Ctx([(b"q", b'a"b\\c]d')])
    assert render("%{+Q}[path]", ctx) == b"/a/b"
    assert render("%{+E}[hdr(q)]", ctx) == b'a\\"b\\\\c\\]d'
    assert render("%{+Q}[hdr(nope)]", ctx) == b""


def test_log_mode_rendering() -> None:
    ctx = Ctx([(b"q", b'a"b'), (b"e", b"")])
    log = {"log": True}
    assert render("%{+Q}[path]", ctx, **log) == b'"/a/b"'
    assert render("%[hdr(nope)]", ctx, **log) == b"-"
    assert render("%{+Q}[hdr(nope)]", ctx, **log) == b'""'
    assert render("%[hdr(e)]", ctx, **log) == b"-"
    assert render("%{-M}[hdr(nope)]", ctx, **log) == b""
    assert render("%{+Q,+E}[hdr(q)]", ctx, **log) == b'"a\\"b"'
    assert render("  a  %[hdr(nope)]  b", ctx, **log) == b"a - b"
    assert render("%{+Q}o %[path] %[hdr(nope)] %{-Q}o %[path]", ctx, **log) == (
        b' "/a/b" "" /a/b')


def test_variables_and_providers() -> None:
    assert render("%ci:%cp %ST") == b"-:- -"
    assert render("%{+Q}ci") == b'"-"'
    providers = {"ci": lambda c: c.src, "cp": lambda c: c.src_port, "ST": lambda c: 200,
                 "b": lambda c: b"be", "s": lambda c: None}
    assert render("%ci:%cp %ST %b/%s", variables=providers) == b"127.0.0.1:5555 200 be/-"
    assert render("%{+X}cp", variables=providers) == b"15B3"
    assert render("%{+Q}b", variables=providers) == b'"be"'
    # lf-string rendering is the default, with or without providers
    assert render("%[hdr(nope)]", variables=providers) == b""
    assert render("%[hdr(nope)]", variables=providers, log=True) == b"-"


def test_every_spec_variable_is_known() -> None:
    for name in ("ci cp fi fp f ft b s si sp bi bp t tr trg trl T Tl Ts ms TR Tw Tc Tr Ta Tt"
                 " Tq Th Ti Tu Td ST B U CC CS ts tsc ac fc bc sc rc sq bq lc rt hr hrl hs"
                 " hsl r HM HU HP HPO HQ HV ID pid H o").split():
        assert name in fmt.LOG_VARIABLES or name == "o"
        fmt.compile_format(f"%{name}")


def test_lone_percent_and_literals() -> None:
    assert render("a%-b") == b"a-b"
    assert render("x%[path]]") == b"x/a/b]"
    assert render("%[path,regsub([a-z],X,g)]") == b"/X/X"


@pytest.mark.parametrize("text,msg", [
    ("%zz", "no such format variable 'zz'. If you wanted to emit the '%' character"
            " verbatim, you need to use '%%'"),
    ("abc%", "truncated line after '%'"),
    ("a%{+Q", "truncated line after '+Q'"),
    ("a%{+Q}", "parse argument modifier without variable name near '%{+Q}'"),
    ("%5", "unexpected variable name near '5' at position 1 line : '%5'. Maybe you want"
           " to write a single '%', use the syntax '%%'"),
    ("a%[path", "missing ']' after 'path'"),
    ("%[hdr(x)junk]", "expected ']' after 'hdr(x)', but found 'j'"),
    ("%[nosuch]", "failed to parse sample expression <nosuch]> : unknown fetch method"
                  " 'nosuch'"),
    ("%[path,nosuch]", "failed to parse sample expression <path,nosuch]> : unknown"
                       " converter 'nosuch'"),
    ("%[]", "failed to parse sample expression <]> : missing fetch method"),
    ("%[hdr(x,-11)]", "failed to parse sample expression <hdr(x,-11)]> : invalid args in"
                      " fetch method 'hdr' : header occurrence must be >= -10"),
    ("%[path,field(0,/)]", "failed to parse sample expression <path,field(0,/)]> : invalid"
                           " args in converter 'field' : Unexpected value 0 for index"),
])
def test_error_messages(text: str, msg: str) -> None:
    with pytest.raises(fmt.FormatError) as ei:
        fmt.compile_format(text)
    assert str(ei.value) == msg


def test_unknown_flags_are_ignored() -> None:
    assert render("%{+Z}[path]") == b"/a/b"


def test_where_rejects_fetches_without_data() -> None:
    fmt.compile_format("%[res.hdr(x)]", where="res")
    fmt.compile_format("%[hdr(x)] %[src]", where="res")
    with pytest.raises(fmt.FormatError) as ei:
        fmt.compile_format("%[req.hdr(x)]", where="res")
    assert str(ei.value) == ("sample fetch <req.hdr(x)]> may not be reliably used here"
                             " because it needs 'HTTP request headers' which is not"
                             " available here")


def test_escape_log() -> None:
    assert fmt.escape_log(b"plain text", False) == b"plain text"
    assert fmt.escape_log(b'a"b', False) == b'a"b'
    assert fmt.escape_log(b'a"b', True) == b"a#22b"
    assert fmt.escape_log(b"#", False) == b"#23"
    assert fmt.escape_log(b"\x00\x1f\x7f\xe9 ~", True) == b"#00#1F#7F#E9 ~"
    assert fmt.escape_log(b"", True) == b""
