"""lb.config.lexer: quoting, escapes, env expansion, limits and .if blocks (spec §1.1-1.4).

Expected texts and positions were checked against HAProxy 2.6.12 (`haproxy -c`).
"""

import pytest

from lb.config.lexer import CondError, Reader, eval_condition, split_words
from lb.config.lexer import _Ctx as Ctx

ENV = {"V": "hello", "EMPTY": "", "LIST": "a b  c", "HOME": "/root"}


def words(raw: str) -> list[str]:
    return split_words(raw, Ctx(ENV, "t.cfg", 1))[0]


@pytest.mark.parametrize("raw,expected", [
    ("daemon", ["daemon"]),
    ("  maxconn   10\t20 ", ["maxconn", "10", "20"]),
    ("daemon#x", ["daemon"]),
    ("a # comment 'x", ["a"]),
    ('log-tag "pre${V}post"x\'y\'', ["log-tag", "prehellopostxy"]),
    ("a\\ b c", ["a b", "c"]),
    ("trail\\", ["trail\\"]),  # no line continuation: trailing backslash kept
    ('"\\1\\.\\w"', ["\\1\\.\\w"]),  # unknown escapes kept verbatim
    ("\\#x \\\\ \\' \\\"", ["#x", "\\", "'", '"']),
    ('"a\\tb\\nc\\rd"', ["a\tb\nc\rd"]),
    ('"\\x41\\x42"', ["AB"]),
    ('"a#b" \'c d\' e\\#f', ["a#b", "c d", "e#f"]),
    ("'\\n$V'", ["\\n$V"]),  # single quotes: everything literal
    ("$V '${V}'", ["$V", "${V}"]),  # env only expanded inside double quotes
    ('"$V" "${V}"', ["hello", "hello"]),
    ('"${NOPE-def}" "${EMPTY-def}"', ["def", ""]),  # default only when unset
    ('"x${LIST[*]}y"', ["xa", "b", "cy"]),
    ('"${NOPE}"', [""]),
    ('"\\$V"', ["$V"]),
    ('""', [""]),
    ('"${.LINE}"', ["1"]),
])
def test_words(raw, expected):
    assert words(raw) == expected


def test_columns_are_one_based():
    w, cols = split_words('  bind :80 name "a b"', Ctx(ENV))
    assert w == ["bind", ":80", "name", "a b"]
    assert cols == [3, 8, 12, 17]


def test_reader_columns_plain_and_quoted_lines():
    """A line of plain words carries no columns until asked (config load speed);
    asked, they are the ones split_words gives, comment and tabs included."""
    raw_plain = "  server\ts1   10.0.0.1:80 check # x y"
    raw_quoted = '  log-tag "a b"  t'
    plain, quoted = Reader(f"{raw_plain}\n{raw_quoted}\n", "f.cfg", ENV)
    assert plain.known_cols is None and quoted.known_cols is not None
    for line, raw in ((plain, raw_plain), (quoted, raw_quoted)):
        assert list(line.cols) == split_words(raw, Ctx(ENV))[1]
    assert plain.cols == (3, 10, 15, 27)
    assert (plain.col(2), plain.col(9)) == (15, 27)


def read(text: str, env=None):
    r = Reader(text, "f.cfg", ENV if env is None else env)
    lines = list(r)
    return lines, [d.render(1).split(" : config : ", 1)[1] for d in r.diags], r


@pytest.mark.parametrize("line,msg,caret", [
    (' log-tag "ab', "parsing [f.cfg:2]: unmatched quote at position 10:",
     "          ^"),
    ('    log-tag "ab', "parsing [f.cfg:2]: unmatched quote at position 13:",
     "          ^"),
    (' log-tag "ab$"', "parsing [f.cfg:2]: forbidden first char in environment variable "
     "name at position 14:", "              ^"),
    (' log-tag "${ab"', "parsing [f.cfg:2]: unmatched brace in environment variable name at "
     "position 12:", "            ^"),
    (' log-tag "ab\\x4"', "parsing [f.cfg:2]: truncated or invalid hexadecimal sequence at "
     "position 13:", "             ^"),
])
def test_lexer_errors_match_haproxy(line, msg, caret):
    _lines, diags, _r = read("global\n" + line + "\n")
    first, shown, car = diags[0].split("\n")
    assert first == msg
    assert shown == "  " + line.lstrip()
    assert car == caret


def test_missing_lf_on_last_line():
    _l, diags, _r = read("global\n maxconn 10")
    assert diags == ["parsing [f.cfg:2]: Missing LF on last line, file might have been "
                     "truncated at position 12."]


def test_stray_nul():
    # HAProxy 2.6.12: the words before the NUL are the line; reading stops after it,
    # and on the last line the NUL makes the line look cut ('Missing LF')
    lines, diags, _r = read("global\n maxconn\x00 10\n nbthread 2\n")
    assert diags == ["parsing [f.cfg:2]: Stray NUL character at position 9."]
    assert [ln.words for ln in lines] == [("global",), ("maxconn",)]
    lines, diags, _r = read("global\n maxconn\x00 10\n")
    assert diags == ["parsing [f.cfg:2]: Missing LF on last line, file might have been "
                     "truncated at position 9."]
    assert [ln.words for ln in lines] == [("global",), ("maxconn",)]


def test_crlf_file():
    lines, diags, _r = read("global\r\n maxconn 10\r\n")
    assert diags == []
    assert [ln.words for ln in lines] == [("global",), ("maxconn", "10")]


def test_too_many_words():
    many = " ".join(f"w{i}" for i in range(70))
    lines, diags, _r = read(f"global\nlog-tag {many}\n")
    assert diags[0].startswith("parsing [f.cfg:2]: too many words, truncating after word 64")
    assert diags[0].endswith("<w62>.")
    assert len(lines[1].words) == 64
    ok, diags, _r = read("global\nlog-tag " + " ".join("x" * 63) + "\n")
    assert diags == []


def test_if_blocks():
    text = ("global\n.if defined(HOME)\na 1\n.elif 1\nb\n.else\nc\n.endif\n"
            ".if 0\nd\n.elif streq(x,x)\ne\n.else\nf\n.endif\n"
            ".if 0\n.if 1\ng\n.endif\n.else\nh\n.endif\n")
    lines, diags, _r = read(text)
    assert diags == []
    assert [ln.words[0] for ln in lines] == ["global", "a", "e", "h"]
    assert [ln.lineno for ln in lines] == [1, 3, 12, 21]


@pytest.mark.parametrize("text,msg", [
    ("global\n.else\n", "parsing [f.cfg:2]: lone '.else' with no matching '.if'."),
    ("global\n.endif\n", "parsing [f.cfg:2]: lone '.endif' with no matching '.if'."),
    ("global\n.if 1\n", "parsing [f.cfg:2]: non-terminated '.if' block."),
    ("global\n.if 1\n.else\n.else\n.endif\n",
     "parsing [f.cfg:4]: '.else' after '.else' is not permitted."),
    ("global\n.foo\n", "parsing [f.cfg:2]: unknown directive '.foo'."),
])
def test_directive_errors(text, msg):
    _l, diags, _r = read(text)
    assert diags[0] == msg


def test_unparsable_if_has_caret():
    _l, diags, r = read("global\n.if bogus(x)\n.endif\n")
    assert diags[0] == ("parsing [f.cfg:2]: unparsable conditional expression 'bogus(x)' in "
                        "'.if' at position 1:\n  .if bogus(x)\n      ^")
    assert r.aborted
    _l, diags, _r = read("global\n.if 1 2\n.endif\n")
    assert diags[0].startswith("parsing [f.cfg:2]: unexpected character '2' at the end of "
                               "conditional expression '1 2' in '.if' at position 3:")


def test_message_directives():
    _l, diags, r = read('global\n.notice "home is ${HOME}"\n.warning "w"\n')
    assert diags == ["parsing [f.cfg:2]: 'home is /root'.", "parsing [f.cfg:3]: 'w'."]
    assert [d.severity for d in r.diags] == ["notice", "warning"]
    _l, diags, r = read('global\n.alert "stop"\nmaxconn 1\n')
    assert diags == ["parsing [f.cfg:2]: 'stop'."] and r.aborted
    _l, diags, r = read("global\n.notice a b\n")
    assert diags == ["parsing [f.cfg:2]: Unexpected argument 'b' for '.notice'. Use quotes "
                     "if the message should contain spaces."]


@pytest.mark.parametrize("cond,value", [
    ("1", True), ("0", False), ("2", True), ("-1", True), ("", False), ("!(1)", False),
    ("defined(HOME)", True), ("defined(NOPE)", False), ("streq(a,a)", True),
    ("strneq(a,b) && (0 || 1)", True), ("1 || 0 && 0", True), ("!0 && !0", True),
    ("version_atleast(2.5)", True), ("version_before(2.5)", False),
    ("strstr(abcd,bc)", True), ("feature(EPOLL)", True), ("enabled(REUSEPORT)", True),
])
def test_conditions(cond, value):
    assert eval_condition(cond, ENV) is value


@pytest.mark.parametrize("cond", ["a", "1 ||", "foo(", "streq(a)", "1 2", "enabled(NOPE)",
                                  "(1"])
def test_bad_conditions(cond):
    with pytest.raises(CondError):
        eval_condition(cond, ENV)


def test_too_many_words_text_matches_haproxy():
    # checked against HAProxy 2.6.12 on this exact line
    line = " log-tag " + " ".join("abcdefghijklmnopqrstuvwxyz") + " " + \
        " ".join(str(i) for i in range(1, 41)) + " x"
    _l, diags, _r = read("global\n" + line + "\n")
    assert diags == ["parsing [f.cfg:2]: too many words, truncating after word 64, position "
                     "160: <37>."]


def test_disabled_blocks_are_still_tokenized():
    # HAProxy 2.6.12 reports the unmatched quote although the block is disabled
    lines, diags, _r = read('global\n.if 0\n log-tag "unterminated\n foo\n.endif\n')
    assert diags[0].startswith("parsing [f.cfg:3]: unmatched quote at position 10:")
    assert [ln.words for ln in lines] == [("global",)]


def test_empty_text_has_no_lines():
    lines, diags, r = read("")
    assert (lines, diags, r.aborted) == ([], [], False)
