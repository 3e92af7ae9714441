"""haproxy.cfg lexer: physical lines to words, exactly as HAProxy splits them.

Owns: the line reader (LF-on-last-line and NUL checks, CRLF, comments), the
pyparsing word grammar (unquoted runs, ``"..."`` with escapes and environment
expansion, ``'...'`` literal), the 64-word limit, conditional blocks
(``.if/.elif/.else/.endif``) with their predicate evaluator (also used by
``lb -c -cc``), and the ``.diag/.notice/.warning/.alert`` directives (spec §1.1–1.4).

It yields ``Line`` objects carrying file, line number and the 1-based column of
every word. It knows nothing about keywords or sections.

Must not import: lb.config.registry / build (it is below them), lb.match, I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import pyparsing as pp

from lb.errors import Diagnostic

MAX_LINE_ARGS = 64

# The HAProxy version whose behaviour lb reproduces (for version_atleast/before).
COMPAT_VERSION = "2.6.12"

# feature(X) answers true for these (what this implementation provides).
FEATURES = frozenset({"EPOLL", "POLL", "THREAD", "CPU_AFFINITY", "GETADDRINFO",
                      "REUSEPORT", "TFO", "NS", "PROMEX"})

# enabled(X): known names and whether they are on.
ENABLED = {"POLL": True, "EPOLL": True, "KQUEUE": False, "EVPORTS": False,
           "SPLICE": False, "GETADDRINFO": True, "REUSEPORT": True,
           "FAST-FORWARD": True, "SERVER-SSL-VERIFY-NONE": False}


@dataclass(frozen=True, slots=True)
class Line:
    """One statement: the words of an active physical line."""

    file: str
    lineno: int
    words: tuple[str, ...]
    # 1-based column of each word in the raw line; None for a line of plain words
    # (no quote or backslash), whose columns are found when a message needs them
    known_cols: tuple[int, ...] | None
    raw: str  # the physical line without its end of line

    @property
    def cols(self) -> tuple[int, ...]:
        if self.known_cols is not None:
            return self.known_cols
        return tuple(_plain_cols(self.raw))[:len(self.words)]

    def col(self, i: int) -> int:
        cols = self.cols
        return cols[i] if i < len(cols) else (cols[-1] if cols else 0)


def byte_pos(raw: str, i: int) -> int:
    """How many bytes of the file the first ``i`` characters of ``raw`` were (HAProxy
    counts positions in bytes; the reader decodes UTF-8, keeping bad bytes apart)."""
    head = raw[:i]
    return i if head.isascii() else len(head.encode("utf-8", "surrogateescape"))


def _printable(text: str) -> str:
    """A line as HAProxy echoes it: separators as spaces, any other byte outside
    printable ASCII as '?'."""
    if text.isascii() and text.isprintable():
        return text
    data = text.encode("utf-8", "surrogateescape")
    return "".join(chr(b) if 0x20 <= b < 0x7F else " " if b in _WS_BYTES else "?"
                   for b in data)


_WS_BYTES = frozenset(b"\t\n\v\f\r")
ECHO_WIDTH = 80  # HAProxy's echo of a line in error


class LexError(Exception):
    """A fatal tokenizing problem at 0-based position ``pos`` of the raw line."""

    def __init__(self, text: str, pos: int) -> None:
        super().__init__(text)
        self.text = text
        self.pos = pos


# --------------------------------------------------------------------------- word grammar

# word separators: C's isspace() on a line (HAProxy's tokenizer; LF and CR never
# reach it): space, tab, vertical tab, form feed
WS = " \t\v\f"
_UNQ = r"""(?:[^ \t\v\f"'#\\]|\\[\s\S]?)+"""
_DQ = r'"(?:[^"\\]|\\[\s\S])*"'
_SQ = r"'[^']*'"
_FRAG_RE = re.compile(f"{_UNQ}|{_DQ}|{_SQ}")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\.(?:FILE|LINE|SECTION)\b")
_FAST_WORD_RE = re.compile(r"[^ \t\v\f]+")
_HEX = "0123456789abcdefABCDEF"

_SIMPLE_ESCAPES = {" ": " ", "\\": "\\", "#": "#", "'": "'", '"': '"',
                   "t": "\t", "n": "\n", "r": "\r"}


@dataclass(slots=True)
class _Ctx:
    """Per-line state the parse actions need (env and pseudo variables)."""

    env: Mapping[str, str]
    file: str = ""
    lineno: int = 0
    section: str = ""


def _hexbyte(h: str) -> str:
    b = int(h, 16)
    return chr(b) if b < 0x80 else chr(0xDC00 + b)  # surrogateescape for high bytes


def _unescape(frag: str, base: int, dquote: bool, ctx: _Ctx,
              out: list[list[str]]) -> None:
    """Append the decoded fragment to ``out`` (a list of words being built).

    ``base`` is the 0-based position of the fragment's first decoded char in the
    raw line. ``${X[*]}`` may start new words, hence the list of lists.
    """
    cur = out[-1]
    i = 0
    n = len(frag)
    while i < n:
        c = frag[i]
        if c == "\\":
            nxt = frag[i + 1] if i + 1 < n else ""
            if nxt in _SIMPLE_ESCAPES and nxt:
                cur.append(_SIMPLE_ESCAPES[nxt])
                i += 2
            elif nxt == "x":
                h = frag[i + 2:i + 4]
                if len(h) != 2 or h[0] not in _HEX or h[1] not in _HEX:
                    raise LexError("truncated or invalid hexadecimal sequence", base + i)
                cur.append(_hexbyte(h))
                i += 4
            elif nxt == "$" and dquote:
                cur.append("$")
                i += 2
            else:
                cur.append(c)  # unknown escape: kept verbatim, backslash included
                i += 1
        elif c == "$" and dquote:
            i = _expand(frag, i, base, ctx, out)
            cur = out[-1]
        else:
            j = i + 1
            while j < n and frag[j] not in "\\$":
                j += 1
            cur.append(frag[i:j])
            i = j


def _lookup(name: str, ctx: _Ctx) -> str | None:
    if name == ".FILE":
        return ctx.file
    if name == ".LINE":
        return str(ctx.lineno)
    if name == ".SECTION":
        return ctx.section
    return ctx.env.get(name)


def _expand(frag: str, i: int, base: int, ctx: _Ctx, out: list[list[str]]) -> int:
    """Expand the variable at frag[i] == '$'; return the index after it."""
    n = len(frag)
    if i + 1 < n and frag[i + 1] == "{":
        end = frag.find("}", i + 2)
        if end < 0:
            raise LexError("unmatched brace in environment variable name", base + i + 1)
        body = frag[i + 2:end]
        m = _ENV_NAME_RE.match(body)
        if not m:
            raise LexError("forbidden first char in environment variable name",
                           base + i + 2)
        name = m.group(0)
        rest = body[m.end():]
        value = _lookup(name, ctx)
        if rest == "[*]":
            parts = (value or "").split()
            if parts:
                out[-1].append(parts[0])
                for p in parts[1:]:
                    out.append([p])
            return end + 1
        if rest.startswith("-"):
            out[-1].append(rest[1:] if value is None else value)
            return end + 1
        if rest:
            raise LexError("unmatched brace in environment variable name",
                           base + i + 2 + m.end())
        out[-1].append(value or "")
        return end + 1
    m = _ENV_NAME_RE.match(frag, i + 1)
    if not m:
        raise LexError("forbidden first char in environment variable name", base + i + 1)
    out[-1].append(_lookup(m.group(0), ctx) or "")
    return m.end()


def _decode_word(tok: str, loc: int, ctx: _Ctx) -> list[str]:
    out: list[list[str]] = [[]]
    pos = 0
    for m in _FRAG_RE.finditer(tok):
        frag = m.group(0)
        start = loc + m.start()
        if frag[0] == "'":
            out[-1].append(frag[1:-1])
        elif frag[0] == '"':
            _unescape(frag[1:-1], start + 1, True, ctx, out)
        else:
            _unescape(frag, start, False, ctx, out)
        pos = m.end()
    del pos
    return ["".join(w) for w in out]


class _Grammar:
    """The pyparsing grammar of one line, built once."""

    def __init__(self) -> None:
        ws = WS
        word = pp.Regex(f"(?:{_UNQ}|{_DQ}|{_SQ})+").set_name("word")
        word.set_whitespace_chars(ws)
        comment = pp.Regex(r"#.*").set_name("comment").suppress()
        comment.set_whitespace_chars(ws)
        end = pp.StringEnd().set_name("end of line")
        end.set_whitespace_chars(ws)
        word.add_parse_action(lambda s, loc, toks: [(loc, toks[0])])
        self.word = word
        self.line = (pp.ZeroOrMore(word) + pp.Optional(comment) + end)
        self.line.set_whitespace_chars(ws)
        self.line.parse_with_tabs()
        self.line.streamline()


_GRAMMAR: _Grammar | None = None


def _grammar() -> _Grammar:
    global _GRAMMAR
    if _GRAMMAR is None:
        _GRAMMAR = _Grammar()
    return _GRAMMAR


def _is_plain(raw: str) -> bool:
    """No quote and no backslash: words are what WS separates, up to a #."""
    return '"' not in raw and "'" not in raw and "\\" not in raw


def _plain_cols(raw: str) -> list[int]:
    return [m.start() + 1 for m in _FAST_WORD_RE.finditer(raw.split("#", 1)[0])]


def split_words(raw: str, ctx: _Ctx) -> tuple[list[str], list[int]]:
    """Split one physical line (no CR/LF) into decoded words and 1-based columns.

    Raises LexError with HAProxy's message text and the 0-based position.
    """
    if _is_plain(raw):
        return _FAST_WORD_RE.findall(raw.split("#", 1)[0]), _plain_cols(raw)
    try:
        res = _grammar().line.parse_string(raw, parse_all=True)
    except pp.ParseException as exc:
        loc = exc.loc
        # the only way a line fails is a quote the word regex could not close
        while loc < len(raw) and raw[loc] in WS:
            loc += 1
        # HAProxy reads left to right and finds an open quote only at the end of the
        # line: an environment variable error on the way is the one it reports
        for quote in "\"'":
            try:
                closed = _grammar().line.parse_string(raw + quote, parse_all=True)
            except pp.ParseException:
                continue
            for start, text in closed:
                _decode_word(text, start, ctx)  # raises the earlier error, if any
            break
        raise LexError("unmatched quote", loc) from None
    words = []
    cols = []
    for start, text in res:
        for w in _decode_word(text, start, ctx):
            words.append(w)
            cols.append(start + 1)
    return words, cols


# --------------------------------------------------------------------------- conditions


class CondError(Exception):
    """An unparsable ``.if`` condition; ``pos`` is 0-based in the condition text."""

    def __init__(self, text: str, pos: int = -1) -> None:
        super().__init__(text)
        self.text = text
        self.pos = pos


def _version_tuple(v: str) -> tuple[int, ...]:
    parts = []
    for p in re.split(r"[.-]", v):
        m = re.match(r"\d+", p)
        if not m:
            break
        parts.append(int(m.group(0)))
    return tuple(parts)


_PREDICATES: dict[str, tuple[int, Callable[..., bool]]] = {
    "defined": (1, lambda env, a: a in env),
    "feature": (1, lambda env, a: a in FEATURES),
    "streq": (2, lambda env, a, b: a == b),
    "strneq": (2, lambda env, a, b: a != b),
    "strstr": (2, lambda env, a, b: b in a),
    "version_atleast": (1, lambda env, a:
                        _version_tuple(COMPAT_VERSION) >= _version_tuple(a)),
    "version_before": (1, lambda env, a:
                       _version_tuple(COMPAT_VERSION) < _version_tuple(a)),
    "enabled": (1, None),  # type: ignore[dict-item]  (handled specially)
}


class _CondParser:
    """Recursive descent over ``||``, ``&&``, ``!``, parentheses and predicates."""

    def __init__(self, text: str, env: Mapping[str, str]) -> None:
        self.s = text
        self.i = 0
        self.env = env

    def skip(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in WS:
            self.i += 1

    def parse(self) -> bool:
        self.skip()
        if self.i >= len(self.s):
            return False
        val = self.expr()
        self.skip()
        if self.i < len(self.s):
            raise CondError(f"unexpected character '{self.s[self.i]}' at the end of "
                            f"conditional expression '{self.s}'", self.i)
        return val

    def expr(self) -> bool:
        val = self.and_expr()
        while True:
            self.skip()
            if self.s.startswith("||", self.i):
                self.i += 2
                rhs = self.and_expr()
                val = val or rhs
            else:
                return val

    def and_expr(self) -> bool:
        val = self.term()
        while True:
            self.skip()
            if self.s.startswith("&&", self.i):
                self.i += 2
                rhs = self.term()
                val = val and rhs
            else:
                return val

    def unparsable(self) -> CondError:
        return CondError(f"unparsable conditional expression '{self.s[self.i:]}'", self.i)

    def term(self) -> bool:
        self.skip()
        s = self.s
        if self.i >= len(s):
            raise self.unparsable()
        if s[self.i] == "!":
            self.i += 1
            return not self.term()
        if s[self.i] == "(":
            self.i += 1
            val = self.expr()
            self.skip()
            if self.i >= len(s) or s[self.i] != ")":
                raise CondError(f"expected ')' in conditional expression '{s}'", self.i)
            self.i += 1
            return val
        m = re.compile(r"-?\d+").match(s, self.i)
        if m:
            self.i = m.end()
            return int(m.group(0)) != 0
        m = re.compile(r"[a-z_]+\(").match(s, self.i)
        if not m or m.group(0)[:-1] not in _PREDICATES:
            raise self.unparsable()
        name = m.group(0)[:-1]
        close = s.find(")", m.end())
        if close < 0:
            raise self.unparsable()
        inner = s[m.end():close]
        args = [a.strip() for a in inner.split(",")] if inner.strip() else []
        nargs, fn = _PREDICATES[name]
        if len(args) < nargs:
            raise CondError(f"missing arguments (got {len(args)}/{nargs}), type 'string' "
                            f"expected in argument {max(len(args), 1)} of predicate "
                            f"'{name}' used in conditional expression", self.i)
        if len(args) > nargs:
            raise CondError(f"too many arguments for predicate '{name}' in conditional "
                            "expression", self.i)
        self.i = close + 1
        if name == "enabled":
            if args[0] not in ENABLED:
                raise CondError(f"unknown option '{args[0]}' for predicate 'enabled' in "
                                "conditional expression", self.i)
            return ENABLED[args[0]]
        return bool(fn(self.env, *args))


def eval_condition(text: str, env: Mapping[str, str]) -> bool:
    """Evaluate a ``.if`` condition text; raises CondError."""
    return _CondParser(text, env).parse()


# --------------------------------------------------------------------------- reader


@dataclass(slots=True)
class _Block:
    lineno: int
    active: bool  # this branch is being used
    taken: bool  # some branch already matched
    parent_active: bool
    seen_else: bool = False


@dataclass(slots=True)
class Reader:
    """Iterates over the active statements of one file's text.

    Diagnostics are appended to ``diags``; ``aborted`` is set when HAProxy would
    stop reading the file (directive errors, ``.alert``). The loader may set
    ``section`` as it goes (for the ``.SECTION`` pseudo variable).
    """

    text: str
    file: str
    env: Mapping[str, str]
    diags: list[Diagnostic] = field(default_factory=list)
    aborted: bool = False
    section: str = ""

    def _err(self, lineno: int, text: str, code: str, col: int = 0,
             more: tuple[str, ...] = (), severity: str = "alert") -> None:
        self.diags.append(Diagnostic(severity, self.file, lineno, col, text, code,  # type: ignore[arg-type]
                                     style="tight", more=more))

    @staticmethod
    def caret(raw: str, pos: int) -> tuple[str, str]:
        """HAProxy's echo of a line (after its leading blanks) and a caret under
        character ``pos``: counted in bytes, separators shown as spaces and other
        bytes outside printable ASCII as '?'. Past 80 bytes the echo is a window of
        80 around the caret, marked '...' on both sides, as HAProxy cuts it."""
        stripped = raw.lstrip(WS)
        lead = len(raw) - len(stripped)
        shown = _printable(stripped)
        at = max(byte_pos(raw, pos) - lead, 0)
        if at >= ECHO_WIDTH:
            shift = at - ECHO_WIDTH // 2
            shown = "..." + shown[shift + 3:shift + ECHO_WIDTH - 3] + "..."
            at -= shift
        else:
            shown = shown[:ECHO_WIDTH]
        return ("  " + shown, "  " + " " * at + "^")

    def __iter__(self) -> Iterator[Line]:
        text = self.text
        ctx = _Ctx(self.env, self.file)
        blocks: list[_Block] = []
        lines = text.split("\n") if text else []
        last_has_lf = text.endswith("\n") or not text
        if last_has_lf and lines:
            lines.pop()
        nlines = len(lines)
        for idx, raw in enumerate(lines):
            lineno = idx + 1
            nul = raw.find("\0")
            if idx == nlines - 1 and (not last_has_lf or nul >= 0):
                # as HAProxy 2.6.12: the line's words are handled, then the missing
                # LF is reported (a NUL ends its reading of a line: the last one then
                # looks cut too)
                end = len(raw) if nul < 0 else nul
                yield from self._line(raw[:end], lineno, ctx, blocks)
                self._err(lineno, "Missing LF on last line, file might have been truncated "
                          f"at position {byte_pos(raw, end) + 1}.", "missing-lf")
                return
            if nul >= 0:
                # as HAProxy 2.6.12: the words before the NUL are handled, then the
                # NUL is reported and the rest of the file is not read
                yield from self._line(raw[:nul], lineno, ctx, blocks)
                self._err(lineno, f"Stray NUL character at position "
                          f"{byte_pos(raw, nul) + 1}.", "stray-nul")
                return
            yield from self._line(raw, lineno, ctx, blocks)
            if self.aborted:
                return
        if blocks:  # HAProxy reports it on the last line of the file
            self._err(nlines, "non-terminated '.if' block.", "unterminated-if")
            self.aborted = True

    def _line(self, raw: str, lineno: int, ctx: _Ctx, blocks: list[_Block]) -> Iterator[Line]:
        """The Line of one physical line, if it has words and is active (none for a
        comment, a directive or a line in a false `.if` branch)."""
        full = raw  # (echoed whole in an error, as HAProxy does)
        cr = raw.find("\r")
        if cr >= 0:
            raw = raw[:cr]
        active = not blocks or blocks[-1].active
        stripped = raw.lstrip(WS)
        if not stripped or stripped[0] == "#":
            return
        ctx.lineno = lineno
        ctx.section = self.section
        cols: list[int] | None = None
        try:
            if _is_plain(raw):  # most lines: one C call, columns found if needed
                words = _FAST_WORD_RE.findall(raw.split("#", 1)[0])
            else:
                words, cols = split_words(raw, ctx)
        except LexError as exc:
            # HAProxy tokenizes every line, even in a disabled .if block
            self._err(lineno, f"{exc.text} at position {byte_pos(raw, exc.pos) + 1}:",
                      "lex-error", exc.pos + 1, self.caret(full, exc.pos))
            return
        if not words:
            return
        first = words[0]
        if cols is None and (len(words) > MAX_LINE_ARGS or first.startswith(".")):
            cols = _plain_cols(raw)
        if len(words) > MAX_LINE_ARGS:
            assert cols is not None
            self._err(lineno, f"too many words, truncating after word {MAX_LINE_ARGS}, "
                      f"position {byte_pos(raw, cols[MAX_LINE_ARGS - 1] - 1)}: "
                      f"<{words[MAX_LINE_ARGS - 1]}>.", "too-many-words",
                      cols[MAX_LINE_ARGS - 1])
            words = words[:MAX_LINE_ARGS]
            cols = cols[:MAX_LINE_ARGS]
        if first.startswith("."):
            assert cols is not None
            if not self._directive(words, cols, raw, lineno, blocks, active):
                self.aborted = True
            return
        if not active:
            return
        yield Line(self.file, lineno, tuple(words), None if cols is None else tuple(cols),
                   raw)

    def _directive(self, words: list[str], cols: list[int], raw: str, lineno: int,
                   blocks: list[_Block], active: bool) -> bool:
        """Handle a ``.xxx`` line; return False when the file must be abandoned."""
        kw = words[0]
        if kw in (".if", ".elif"):
            cond_text = " ".join(words[1:])
            if kw == ".elif":
                if not blocks:
                    self._err(lineno, "lone '.elif' with no matching '.if'.", "lone-elif")
                    return False
                blk = blocks[-1]
                if blk.seen_else:
                    self._err(lineno, "'.elif' after '.else' is not permitted.", "elif-after-else")
                    return False
                if blk.taken or not blk.parent_active:
                    blk.active = False
                    return True
            else:
                if not active:
                    blocks.append(_Block(lineno, False, True, False))
                    return True
            try:
                val = eval_condition(cond_text, self.env)
            except CondError as exc:
                if exc.pos >= 0 and len(words) > 1:
                    pos0 = cols[1] - 1 + exc.pos
                    self._err(lineno, f"{exc.text} in '{kw}' at position {exc.pos + 1}:",
                              "bad-condition", pos0 + 1, self.caret(raw, pos0))
                else:
                    self._err(lineno, f"{exc.text} in '{kw}'.", "bad-condition")
                return False
            if kw == ".if":
                blocks.append(_Block(lineno, val, val, True))
            else:
                blk = blocks[-1]
                blk.active = val
                blk.taken = val
            return True
        if kw == ".else":
            if not blocks:
                self._err(lineno, "lone '.else' with no matching '.if'.", "lone-else")
                return False
            blk = blocks[-1]
            if blk.seen_else:
                self._err(lineno, "'.else' after '.else' is not permitted.", "else-after-else")
                return False
            blk.seen_else = True
            blk.active = blk.parent_active and not blk.taken
            blk.taken = True
            return True
        if kw == ".endif":
            if not blocks:
                self._err(lineno, "lone '.endif' with no matching '.if'.", "lone-endif")
                return False
            blocks.pop()
            return True
        if kw in (".diag", ".notice", ".warning", ".alert"):
            if not active:
                return True
            if len(words) > 2:
                self._err(lineno, f"Unexpected argument '{words[2]}' for '{kw}'. Use quotes "
                          "if the message should contain spaces.", "directive-args", cols[2])
                return True
            msg = words[1] if len(words) > 1 else ""
            if kw == ".diag":
                return True  # only shown by HAProxy with -dD; lb has no diag mode
            sev = {".notice": "notice", ".warning": "warning", ".alert": "alert"}[kw]
            self._err(lineno, f"'{msg}'.", "user-" + sev, severity=sev)
            return kw != ".alert"
        if active:
            # HAProxy 2.6.12 stops reading the file there
            self._err(lineno, f"unknown directive '{kw}'.", "unknown-directive", cols[0])
            return False
        return True


def read_lines(text: str, file: str, env: Mapping[str, str]) -> Reader:
    """Convenience constructor; iterate the result, then look at ``.diags``."""
    return Reader(text, file, env)
