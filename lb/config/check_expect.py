"""`http-check expect` and `tcp-check expect`: HAProxy 2.6's expect-rule grammar.

Owns: reading the words of an expect rule as HAProxy does (a `!` alone or glued to
the match keyword, one pattern per rule, `min-recv`, `comment`, the `on-success` /
`on-error` log-format texts, `ok-|error-|tout-status`, the `status-code`
expression, `hdr`/`fhdr` with `name|name-lf` and `value|value-lf` under `-m`
methods, `custom`), checking each pattern (status lists, hex strings, regexes,
log-format strings in the check context) with HAProxy's messages, and building
the model's ``HttpCheckExpect`` / ``TcpCheckExpect``. Also the two checks the send
rules share: ``format_error`` and ``hex_error``.

An error is returned as the text that follows ``'<kw> expect' : `` in the alert
(HAProxy's wording; the caller adds the final period).

Must not import: lb.config.build, lb.config.proxy_kw, lb.config.check_kw.
"""

from __future__ import annotations

import re

import lb.config.model as m
from lb.match import fmt as fmt_mod
from lb.match import sample as sample_mod
from lb.match import uses

_INT_MAX = 2**31 - 1
_HEX = frozenset("0123456789abcdefABCDEF")

# the statuses each option may name (HAProxy's spelling, any case) → lb's
_OK = {"L7OK": "L7OK", "L7OKC": "L7OKC", "L6OK": "L6OK", "L4OK": "L4OK"}
_ERROR = {"L7RSP": "L7RSP", "L7STS": "L7STS", "L7OKC": "L7OKC", "L6RSP": "L6RSP",
          "L4CON": "L4CON"}
_TOUT = {"L7TOUT": "L7TOUT", "L6TOUT": "L6TOUT", "L4TOUT": "L4TOUT"}
_STATUS_OPTIONS = {
    "ok-status": (_OK, "'L4OK', 'L6OK', 'L7OK' or 'L7OKC'"),
    "error-status": (_ERROR, "'L4CON', 'L6RSP', 'L7RSP' or 'L7STS'"),
    "tout-status": (_TOUT, "'L4TOUT', 'L6TOUT' or 'L7TOUT'"),
}
_HDR_METHODS = ("str", "beg", "end", "sub", "reg")

_BAD_HTTP = ("'only supports min-recv, [!]string', '[!]rstring', '[!]string-lf', "
             "'[!]status', '[!]rstatus', [!]hdr, [!]fhdr or comment but got '{}' as "
             "argument.")
_BAD_TCP = ("'only supports min-recv, '[!]binary', '[!]string', '[!]rstring', "
            "'[!]string-lf''[!]rbinary', '[!]binary-lf' or comment but got '{}' as "
            "argument.")


class _Refused(Exception):
    """An expect rule HAProxy refuses; ``str()`` is its message."""


def format_error(text: str) -> str | None:
    """Why ``text`` is not a log-format string a check can render (None: it is)."""
    try:
        fmt_mod.compile_format(text, context="check")
    except fmt_mod.FormatError as exc:
        return str(exc)
    except Exception as exc:  # a converter's own check (regsub, map, ...)
        return str(exc) or type(exc).__name__
    return None


def hex_error(text: str) -> str | None:
    """Why ``text`` is not an even run of hex digits, in HAProxy's words."""
    if len(text) % 2:
        return "an even number of hex digit is expected"
    bad = next((c for c in text if c not in _HEX), None)
    return None if bad is None else f"an hex digit is expected (found '{bad}')"


def regex_error(pattern: str, flags: int = 0) -> str | None:
    try:
        re.compile(pattern, flags)
    except re.error as exc:
        return f"regex '{pattern}' is invalid (error={exc.msg}, erroffset={exc.pos})"
    return None


def _read_uint(text: str, pos: int) -> tuple[int, int]:
    """HAProxy's read_uint: the digits from ``pos`` (0 when none) and where they end."""
    end = pos
    while end < len(text) and text[end].isdigit() and text[end].isascii():
        end += 1
    return (int(text[pos:end]) if end > pos else 0), end


def status_codes(pattern: str) -> tuple[tuple[int, int], ...]:
    """`expect status <list>`: ranges ``a-b`` and codes, comma-separated."""
    codes = []
    p = 0
    while True:
        c1, p = _read_uint(pattern, p)
        c2 = c1
        if p < len(pattern) and pattern[p] == "-":
            c2, p = _read_uint(pattern, p + 1)
        if c1 > c2:
            raise _Refused(f"invalid range of status codes '{pattern}'")
        codes.append((c1, c2))
        if p >= len(pattern):
            return tuple(codes)
        if pattern[p] != ",":
            raise _Refused(f"invalid character '{pattern[p]}' in the list of status codes")
        p += 1


def _atol(text: str) -> int:
    mt = re.match(r"\s*([+-]?\d+)", text)
    return int(mt.group(1)) if mt else 0


def _check_format(text: str, shown: str) -> None:
    err = format_error(text)
    if err is not None:
        raise _Refused(f"'{shown}' invalid log-format string ({err}).\n")


def _status_code_expr(text: str) -> None:
    try:
        expr = sample_mod.parse_expr(text)
    except Exception as exc:
        raise _Refused("error detected while parsing status-code expression : "
                       f"{str(exc).rstrip('.')}") from None
    need = uses.unavailable(expr.fetch_def.name, "check")
    if need is not None:
        raise _Refused("error detected while parsing status-code expression :  fetch "
                       f"method '{text}' extracts information from '{need}', none of "
                       "which is available here.\n")


class _Reader:
    """The words of one rule, read as HAProxy reads its argument array (an empty
    word past the end)."""

    def __init__(self, words: tuple[str, ...], start: int, http: bool) -> None:
        self.words = words
        self.i = start
        self.http = http
        self.kind = ""  # the match keyword: "" until one is read
        self.pattern = ""
        self.inverse = False
        self.min_recv = -1
        self.opts: dict[str, str] = {}
        self.statuses: dict[str, str] = {}
        self.hdr = ("", "str", False, None, "str", False)  # name, -m, lf, value, -m, lf

    def arg(self, j: int) -> str:
        return self.words[j] if j < len(self.words) else ""

    def bad(self, word: str) -> _Refused:
        return _Refused((_BAD_HTTP if self.http else _BAD_TCP).format(word))

    def set_kind(self, kind: str) -> None:
        if self.kind:
            raise _Refused("only on pattern expected")
        self.kind = kind

    def take_pattern(self, word: str) -> None:
        if not self.arg(self.i + 1):
            raise _Refused(f"'{word}' expects a <pattern> as argument")
        self.i += 1
        self.pattern = self.arg(self.i)

    def read(self) -> None:
        while self.arg(self.i):
            word = self.arg(self.i)
            negated = False
            while word.startswith("!"):  # `!`, `! !`, `!string`: each one flips
                negated = True
                bare = word.lstrip("!")
                self.inverse ^= bool((len(word) - len(bare)) % 2)
                if bare:
                    word = bare
                else:
                    self.i += 1
                    word = self.arg(self.i)
            self.word(word, negated)
            self.i += 1

    def word(self, word: str, negated: bool) -> None:
        http = self.http
        if word in ("min-recv", "comment", "on-success", "on-error", "ok-status",
                    "error-status", "tout-status", "status-code", "custom") and negated:
            raise _Refused(f"[!] not supported with '{word}'")
        if word == "min-recv":
            if not self.arg(self.i + 1):
                raise _Refused(f"'{word}' expects a integer as argument")
            self.i += 1
            self.min_recv = _atol(self.arg(self.i))
            if not -1 <= self.min_recv <= _INT_MAX:
                raise _Refused(f"'{word}' expects -1 or an integer from 0 to INT_MAX")
        elif word in ("string", "rstring"):
            self.set_kind(word)
            self.take_pattern(word)
        elif word in ("binary", "rbinary"):
            if http:
                raise self.bad(word)
            self.set_kind(word)
            self.take_pattern(word)
        elif word in ("string-lf", "binary-lf"):
            self.set_kind(word)
            if http and word == "binary-lf":
                raise self.bad(word)
            self.take_pattern(word)
        elif word in ("status", "rstatus"):
            if not http:
                raise self.bad(word)
            self.set_kind(word)
            self.take_pattern(word)
        elif word == "custom":
            self.set_kind(word)
        elif word in ("hdr", "fhdr"):
            if not http:
                raise self.bad(word)
            self.set_kind(word)
            self.header(word)
        elif word in ("comment", "on-success", "on-error"):
            if not self.arg(self.i + 1):
                raise _Refused(f"'{word}' expects a string as argument")
            self.i += 1
            self.opts[word] = self.arg(self.i)
        elif word in _STATUS_OPTIONS:
            names, listed = _STATUS_OPTIONS[word]
            value = self.arg(self.i + 1)
            if not value:
                raise _Refused(f"'{word}' expects a string as argument")
            status = names.get(value.upper())
            if status is None:
                raise _Refused(f"'{word}' only supports {listed} status (got '{value}').")
            self.statuses[word] = status
            self.i += 1
        elif word == "status-code":
            if not self.arg(self.i + 1):
                raise _Refused(f"'{word}' expects an expression as argument")
            self.i += 1
            _status_code_expr(self.arg(self.i))
            self.opts[word] = self.arg(self.i)
        else:
            raise self.bad(word)

    def _method(self, kw: str, lf: bool) -> str:
        """The `-m <method>` at the current word (the caller moved onto `-m`)."""
        method = self.arg(self.i + 1)
        if not method:
            raise _Refused(f"'{kw}' : '-m' expects at a matching pattern ('str', 'beg', "
                           "'end', 'sub' or 'reg')")
        if method not in _HDR_METHODS:
            raise _Refused(f"'{kw}' : '-m' only supports 'str', 'beg', 'end', 'sub' or "
                           f"'reg' (got '{method}')")
        if method == "reg" and lf:
            raise _Refused(f"'{kw}': log-format string is not supported with a regex "
                           "matching method")
        return method

    def header(self, kw: str) -> None:
        i = self.i
        if not self.arg(i + 1) or not self.arg(i + 2) or self.arg(i + 1) not in (
                "name", "name-lf"):
            raise _Refused(f"'{kw}' expects at the name keyword as first argument "
                           "followed by a pattern")
        name_lf = self.arg(i + 1) == "name-lf"
        self.i = i = i + 2
        name_method = "str"
        if self.arg(i) == "-m":
            name_method = self._method(kw, name_lf)
            self.i = i = i + 2
        name = self.arg(i)
        self.hdr = (name, name_method, name_lf, None, "str", False)
        if self.arg(i + 1) not in ("value", "value-lf"):
            return
        value_lf = self.arg(i + 1) == "value-lf"
        value_method = "str"
        if self.arg(i + 2) == "-m":
            self.i = i = i + 2
            value_method = self._method(kw, value_lf)
        if not self.arg(i + 2):
            raise _Refused(f"'{kw}' expect a pattern with the value keyword")
        self.hdr = (name, name_method, name_lf, self.arg(i + 2), value_method, value_lf)
        self.i = i + 2


def parse_expect(words: tuple[str, ...], start: int,
                 http: bool) -> m.HttpCheckExpect | m.TcpCheckExpect | str:
    """The rule from ``words[start:]`` (after `expect`), or HAProxy's error text."""
    if start >= len(words) or not words[start]:
        return "expects at least a matching pattern as arguments"
    r = _Reader(words, start, http)
    try:
        r.read()
        return _build(r)
    except _Refused as exc:
        return str(exc)


def _build(r: _Reader) -> m.HttpCheckExpect | m.TcpCheckExpect:
    for opt in ("on-success", "on-error"):
        if opt in r.opts:
            _check_format(r.opts[opt], r.opts[opt])
    kind, pattern = r.kind, r.pattern
    if not kind:
        raise _Refused("pattern not found")
    if kind == "status":
        status_codes(pattern)
    elif kind in ("rstring", "rbinary", "rstatus"):
        err = regex_error(pattern)
        if err:
            raise _Refused(err)
    elif kind == "binary":
        err = hex_error(pattern)
        if err:
            raise _Refused(f"invalid binary string ({err})")
    elif kind in ("string-lf", "binary-lf"):
        _check_format(pattern, pattern)
    name, name_method, name_lf, value, value_method, value_lf = r.hdr
    if kind in ("hdr", "fhdr"):
        if name_method == "reg":
            err = regex_error(name, re.IGNORECASE)
            if err:
                raise _Refused(err)
        elif name_lf:
            _check_format(name, name)
        if value is not None:
            if value_method == "reg":
                err = regex_error(value)
                if err:
                    raise _Refused(err)
            elif value_lf:
                _check_format(value, name)  # (HAProxy names the name pattern here)
    outcome = m.ExpectOutcome(
        ok_status=r.statuses.get("ok-status"), error_status=r.statuses.get("error-status"),
        tout_status=r.statuses.get("tout-status"), on_success=r.opts.get("on-success"),
        on_error=r.opts.get("on-error"), status_code=r.opts.get("status-code"))
    lf = kind.endswith("-lf")
    match = kind.removesuffix("-lf")
    comment = r.opts.get("comment")
    if r.http:
        return m.HttpCheckExpect(
            match=match, pattern=name if kind in ("hdr", "fhdr") else pattern,  # type: ignore[arg-type]
            negate=r.inverse, hdr_name=name if kind in ("hdr", "fhdr") else None,
            hdr_method=name_method, value=value, value_method=value_method,
            min_recv=r.min_recv, comment=comment, lf=lf, name_lf=name_lf,
            value_lf=value_lf, outcome=outcome)
    data = bytes.fromhex(pattern) if kind == "binary" else pattern.encode(
        "utf-8", "surrogateescape")
    return m.TcpCheckExpect(match=match, pattern=data, negate=r.inverse,  # type: ignore[arg-type]
                            min_recv=r.min_recv, comment=comment, lf=lf, outcome=outcome)
