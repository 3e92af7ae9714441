"""ACLs and conditions (HAProxy's ``acl.c`` in miniature).

Owns: ``ACL_KEYWORDS`` (ACL-only criteria such as ``hdr_beg`` = fetch ``req.hdr`` +
match ``beg``), ``PREDEFINED_ACLS`` (spec §3.6), ``parse_acl_expr`` (one ``acl`` line
after its name), ``Acl`` (named OR of expressions), ``compile_condition`` and
``Condition`` (OR of AND-suites of possibly negated ACLs, short-circuit evaluation).

Everything is compiled once at load; evaluation reads the transaction through
``sample.SampleCtx``. ``-f`` pattern files are read at compile time (config load), never
at evaluation time.

Pure (no asyncio, sockets or clock); imports only ``lb.match.sample``,
``lb.match.pattern`` and the standard library.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lb.match import maps, patref, pattern, sample


class AclError(Exception):
    """Invalid ACL or condition; ``str()`` is HAProxy's message without location."""


# ------------------------------------------------------------ ACL keywords


@dataclass(frozen=True, slots=True)
class AclKeyword:
    """An ACL-only criterion: a fetch plus the match method it implies."""

    name: str
    fetch: str
    method: str


def _kws(fetch: str, prefix: str, methods: Sequence[str]) -> list[AclKeyword]:
    return [AclKeyword(f"{prefix}_{m}", fetch, m) for m in methods]


_SUFFIXES = ("beg", "dir", "dom", "end", "len", "reg", "sub")

ACL_KEYWORDS: dict[str, AclKeyword] = {k.name: k for k in (
    *_kws("req.hdr", "hdr", _SUFFIXES),
    *_kws("path", "path", _SUFFIXES),
    *_kws("url", "url", _SUFFIXES),
    *_kws("base", "base", _SUFFIXES),
    *_kws("req.cook", "cook", _SUFFIXES),
    *_kws("url_param", "urlp", _SUFFIXES),
    *_kws("res.hdr", "shdr", _SUFFIXES),
    *_kws("res.cook", "scook", _SUFFIXES),
    AclKeyword("hdr", "req.hdr", "str"),  # request only, unlike the "hdr" sample fetch
    AclKeyword("shdr", "res.hdr", "str"),
    AclKeyword("cook", "req.cook", "str"),
    AclKeyword("method", "method", "meth"),
)}

_DEFAULT_METHOD = {
    sample.T_BOOL: "bool", sample.T_INT: "int", sample.T_IP: "ip", sample.T_STR: "str",
    sample.T_METH: "meth", sample.T_ANY: "str",
}


# ------------------------------------------------------------ expressions


class AclExpr:
    """One ``acl`` line: a sample expression and its compiled matchers.

    ``test(ctx)`` (also ``match``) is true when any value of the sample matches any
    pattern. Compiled, the fetch and the matcher are reached as C methods
    (lb/match/acl.pxd) when the sample has no occurrence or converter.
    """

    __slots__ = ("text", "sample", "method", "matchers", "cast", "found", "empty", "_one",
                 "_fetch", "keyword", "refs")

    def __init__(self, text: str, expr: sample.SampleExpr, method: str,
                 matchers: tuple[pattern.Matcher, ...], cast: Callable[[Any], Any] | None,
                 ) -> None:
        self.text = text
        self.sample = expr
        self.method = method
        self.matchers = matchers
        self.cast = cast
        self.found = method == "found"
        self.empty = not matchers and not self.found
        # fast path: one matcher and no cast (the common case)
        self._one = matchers[0] if len(matchers) == 1 and cast is None else None
        # the bound fetch itself (a sample's `values` is its Fetch when the values need
        # no occurrence or converter)
        self._fetch = expr.values if expr.plain else None
        self.keyword = text[:sample.read_keyword(text, 0)]
        # (PatternRef, -i) of the lists the CLI may change (lb.match.patref)
        self.refs: tuple[Any, ...] = ()

    def set_matchers(self, matchers: tuple[pattern.Matcher, ...]) -> None:
        """New patterns from the CLI (`add acl` ...): used from the next test on."""
        self.matchers = matchers
        self.empty = not matchers and not self.found
        self._one = matchers[0] if len(matchers) == 1 and self.cast is None else None

    def test(self, ctx: sample.SampleCtx) -> bool:
        """True when any value of the sample matches any pattern."""
        if self.empty:
            return False
        fetch = self._fetch
        vals = fetch.values(ctx) if fetch is not None else self.sample.values(ctx)
        if not vals:
            return False
        one = self._one
        if one is not None:
            for v in vals:
                if one.match(v):
                    return True
            return False
        if self.found:
            return True
        cast = self.cast
        for v in vals:
            if cast is not None:
                v = cast(v)
                if v is None:
                    continue
            for m in self.matchers:
                if m.match(v):
                    return True
        return False

    def match(self, ctx: sample.SampleCtx) -> bool:
        return self.test(ctx)

    def __repr__(self) -> str:
        return f"AclExpr({self.text!r})"


def _cast_for(kind: str, out: str, method: str) -> Callable[[Any], Any] | None:
    if method == "bin":
        return None if out in (sample.T_STR, sample.T_BIN) else sample.to_bin
    if kind == pattern.K_STR:
        return None if out in (sample.T_STR, sample.T_BIN, sample.T_METH) else sample.to_bytes
    if kind == pattern.K_INT:
        return None if out == sample.T_INT else sample.to_int
    if kind == pattern.K_BOOL:
        return sample.CASTS[sample.T_BOOL]
    if kind == pattern.K_IP:
        return None if out == sample.T_IP else sample.to_ip
    return None


# HAProxy prints this warning without a file:line location ("config : " + text).
NO_PATTERN_WARNING = (
    "parsing acl keyword '{criterion}' :\n"
    "  no pattern to match against were provided, so this ACL will never match.\n"
    "  If this is what you intended, please add '--' to get rid of this warning.\n"
    "  If you intended to match only for existence, please use '-m found'.\n"
    "  If you wanted to force an int to match as a bool, please use '-m bool'.")


SPACE_PAREN_WARNING = (
    "parsing acl '{name}' :\n"
    "  matching '{kw}' for pattern '{pat}' is likely a mistake and probably\n"
    "  not what you want. Maybe you need to remove the extraneous space before '('.\n"
    "  If you are really sure this is not an error, please insert '--' between the\n"
    "  match and the pattern to make this warning message disappear.")


def _read_pattern_file(path: str, base_dir: str) -> list[str]:
    full = path if os.path.isabs(path) else os.path.join(base_dir, path)
    try:
        with open(full, "rb") as f:
            data = f.read()
    except OSError:
        raise AclError(f"failed to open pattern file <{path}>") from None
    out = []
    for raw in data.split(b"\n"):
        line = raw.rstrip(b"\r").lstrip(b" \t")
        if not line or line.startswith(b"#"):
            continue
        out.append(line.decode("utf-8", "surrogateescape"))
    return out


def _read_map_keys(path: str, base_dir: str) -> list[tuple[str, str, int]]:
    """``-M -f``: the file is a map; the ACL matches its keys."""
    full = path if os.path.isabs(path) else os.path.join(base_dir, path)
    try:
        return maps.read_map_file(full)
    except OSError:
        raise AclError(f"failed to open pattern file <{path}>") from None


def _resolve(name: str) -> sample.FetchDef | None:
    if name == "http_auth_group":
        return sample.AUTH_GROUP_ACL
    kw = ACL_KEYWORDS.get(name)
    if kw is not None:
        return sample.FETCHES[kw.fetch]
    return sample.FETCHES.get(name)


# Plain fetch names HAProxy 2.6 also declares as ACL keywords (its http_acl.c); the
# argument errors of those say "ACL keyword", of any other fetch "fetch method".
_ACL_ALSO = frozenset(("base", "http_auth_group", "path", "req_ver", "resp_ver", "scook",
                       "url", "urlp"))


def _acl_message(e: sample.SampleError, word: str) -> str:
    """How HAProxy words a sample-expression error met while parsing an ACL."""
    if e.kind == "unknown-fetch":
        return f"unknown fetch method '{e.name}' in ACL expression '{word}'"
    if e.kind == "missing-fetch":
        return f"missing fetch method in ACL expression '{word}'"
    if e.kind == "fetch-syntax":
        if e.name in ACL_KEYWORDS or e.name in _ACL_ALSO:
            return f"ACL keyword '{e.name}' : {e.detail}"
        return f"fetch method '{e.name}' : {e.detail} in ACL expression '{word}'"
    if e.kind == "fetch-invalid":
        if e.name in ACL_KEYWORDS or e.name in _ACL_ALSO:
            return f"in argument to '{e.name}', {e.detail}"
        return f"{e} in ACL expression '{word}'"
    kw = word[:sample.read_keyword(word, 0)]
    if kw in ACL_KEYWORDS or kw in _ACL_ALSO:
        return f"ACL keyword '{kw}' : {e}."
    return f"{e} in ACL expression '{word}'"  # a plain fetch, e.g. `src,ipmask`


def parse_acl_expr(words: Sequence[str], *, base_dir: str = ".", name: str = "",
                   refs: patref.PatternRefs | None = None,
                   origin: tuple[str, int] = ("", 0)) -> tuple[AclExpr, list[str]]:
    """Compile ``criterion[,conv...] [flags] [operator] values...``.

    ``base_dir`` resolves relative ``-f`` files; ``name`` (the ACL name, if any) is only
    used in warning texts. With ``refs``, the expression's pattern lists are registered
    there (its files, then its own patterns; ``origin`` is its file and line) so that
    the CLI can change them. Returns the expression and warning texts (HAProxy prints
    them as ``config : <text>`` without a location). Raises ``AclError``.
    """
    warnings: list[str] = []
    if not words:
        raise AclError("missing fetch method in ACL expression ''")
    crit = words[0]
    try:
        kwname, fd, args, convs, out, end = sample.parse_chain(crit, _resolve,
                                                               allow_empty_conv=True,
                                                               acl=True)
        if end < len(crit):
            raise sample.SampleError(
                "missing comma after fetch keyword" if not convs else
                f"missing comma after converter '{convs[-1][0].name}'", "trailing", kwname)
    except sample.SampleError as e:
        raise AclError(_acl_message(e, crit)) from None
    expr = sample.SampleExpr(crit, fd, args, convs, out)
    kw = ACL_KEYWORDS.get(kwname)
    method = kw.method if kw is not None and not convs else None

    # flags
    icase = False
    forced: str | None = None
    entries: list[tuple[bool, str]] = []  # (icase, pattern text)
    # (path as written, lines, -i, map rows for -M)
    files: list[tuple[str, list[str], bool, list[tuple[str, str, int]] | None]] = []
    seen_file = False
    dashdash = False
    i = 1
    n = len(words)
    while i < n:
        w = words[i]
        if not w.startswith("-"):
            break
        if w == "--":
            dashdash = True
            i += 1
            break
        if w == "-i":
            icase = True
        elif w == "-n":
            pass  # we never resolve names (see docs/acl.md)
        elif w == "-m":
            if seen_file:
                raise AclError(
                    "'-m' must only be specified before patterns and files in parsing ACL"
                    " expression")
            mname = words[i + 1] if i + 1 < n else ""
            if mname not in pattern.USER_METHODS:
                raise AclError(f"unknown matching method '{mname}' when parsing ACL expression")
            forced = mname
            i += 1
        elif w in ("-f", "-M"):
            if w == "-M":
                i += 1
                continue
            seen_file = True
            path = words[i + 1] if i + 1 < n else ""
            pairs = _read_map_keys(path, base_dir) if "-M" in words[1:i] else None
            lines = ([k for k, _v, _n in pairs] if pairs is not None
                     else _read_pattern_file(path, base_dir))
            for line in lines:
                entries.append((icase, line))
            files.append((path, lines, icase, pairs))
            i += 1
        elif w == "-u":
            i += 1
        else:
            raise AclError(f"'{w}' is not a valid ACL option. Please use '--' before any"
                           f" pattern beginning with a '-'")
        i += 1
    file_entries = entries
    values = list(words[i:])
    if values and not dashdash and values[0].startswith("(") and "(" not in words[0]:
        warnings.append(SPACE_PAREN_WARNING.format(name=name, kw=words[0], pat=values[0]))

    if forced is not None:
        method = forced
    if method is None:
        dm = _DEFAULT_METHOD.get(out)
        if dm is None:
            raise AclError(f"ACL keyword '{kwname}' needs a match method ('-m')")
        method = dm
        if fd.name == "method" and convs:
            method = "str"
    mm = pattern.MATCH_METHODS[method]

    # parse patterns: file entries first (they were given before the values)
    parsed: list[tuple[bool, Any]] = []
    inline: list[str] = []  # the acl's own patterns as its list keeps them
    try:
        for ic, text in file_entries:
            parsed.append((ic, mm.parse(text)))
        op = "eq"
        for text in values:
            if mm.ranges and text in pattern.INT_OPERATORS:
                op = text
                continue
            if mm.ranges:
                lo, hi = pattern.apply_operator(op, text)
                parsed.append((icase, (lo, hi)))
                inline.append(text if op == "eq" else
                              f"{'' if lo is None else lo}:{'' if hi is None else hi}")
            else:
                parsed.append((icase, mm.parse(text)))
                inline.append(text)
    except pattern.PatternError as e:
        raise AclError(str(e)) from None

    matchers: list[pattern.Matcher] = []
    if method == "found":
        pass
    elif parsed:
        groups: dict[bool, list[Any]] = {}
        for ic, p in parsed:
            groups.setdefault(ic, []).append(p)
        try:
            for ic, pats in groups.items():
                matchers.append(pattern.compile_patterns(method, pats, ic))
        except pattern.PatternError as e:
            raise AclError(str(e)) from None
    if not parsed and not files and method not in ("found", "bool") and not dashdash:
        # (an empty -f file is no mistake: HAProxy 2.6.12 says nothing of it)
        warnings.append(NO_PATTERN_WARNING.format(criterion=words[0]))
    if method == "bool":
        matchers = [pattern.compile_patterns("bool", [], False)]
    cast = _cast_for(mm.kind, out, method)
    acl_expr = AclExpr(" ".join(words), expr, method, tuple(matchers), cast)
    if refs is not None:
        lists = []
        for path, lines, ic, pairs in files:
            if pairs is None:
                user = f"acl at file '{origin[0]}' line {origin[1]}"
                try:
                    lists.append((refs.file_ref(path, lines, user), ic))
                except patref.ColumnsError as exc:
                    raise AclError(str(exc)) from None
                continue
            known = refs.find_file(path)
            if known is not None and not known.two_column:
                raise AclError(f'The file "{path}" is already used as one column file and '
                               "cannot be used by as two column file.")
            user = f"map at file '{origin[0]}' line {origin[1]}"
            lists.append((refs.map_ref(path, pairs, user, acl=True), ic))
        lists.append((refs.inline_ref(kwname, origin, inline), icase))
        acl_expr.refs = tuple(lists)
        for lst, _ic in lists:
            lst.exprs.append(acl_expr)
    return acl_expr, warnings


# docs/ARCHITECTURE.md §7.7 calls it acl.parse_acl(words)
parse_acl = parse_acl_expr

_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-")


def invalid_name_message(name: str) -> str | None:
    """HAProxy's message for an ACL name with a forbidden character, else None."""
    for c in name:
        if c not in _NAME_CHARS:
            return f"character '{c}' is not permitted in acl name '{name}'"
    return None


class Acl:
    """A named ACL: OR of the expressions declared under that name."""

    __slots__ = ("name", "exprs", "anonymous")

    def __init__(self, name: str, anonymous: bool = False) -> None:
        self.name = name
        self.exprs: tuple[AclExpr, ...] = ()
        self.anonymous = anonymous

    def add(self, expr: AclExpr) -> None:
        self.exprs = self.exprs + (expr,)

    @property
    def where(self) -> frozenset[str]:
        w: frozenset[str] = frozenset()
        for e in self.exprs:
            w |= e.sample.where
        return w

    def test(self, ctx: sample.SampleCtx) -> bool:
        for e in self.exprs:
            if e.test(ctx):
                return True
        return False

    def evaluate(self, ctx: sample.SampleCtx) -> bool:
        return self.test(ctx)

    def __repr__(self) -> str:
        return f"Acl({self.name!r})"


# ------------------------------------------------------------ predefined ACLs

# name -> words of its single expression (spec §3.6)
_PREDEFINED_WORDS: dict[str, tuple[str, ...]] = {
    "FALSE": ("always_false",),
    "HTTP": ("req.proto_http",),
    "HTTP_1.0": ("req.ver", "1.0"),
    "HTTP_1.1": ("req.ver", "1.1"),
    "HTTP_2.0": ("req.ver", "2.0"),
    "HTTP_CONTENT": ("hdr_val(content-length)", "gt", "0"),
    "HTTP_URL_ABS": ("url_reg", "^[^/:]*://"),
    "HTTP_URL_SLASH": ("url_beg", "/"),
    "HTTP_URL_STAR": ("url", "*"),
    "LOCALHOST": ("src", "127.0.0.1/8", "::1"),
    "METH_CONNECT": ("method", "CONNECT"),
    "METH_DELETE": ("method", "DELETE"),
    "METH_GET": ("method", "GET", "HEAD"),
    "METH_HEAD": ("method", "HEAD"),
    "METH_OPTIONS": ("method", "OPTIONS"),
    "METH_POST": ("method", "POST"),
    "METH_PUT": ("method", "PUT"),
    "METH_TRACE": ("method", "TRACE"),
    "RDP_COOKIE": ("always_false",),  # rdp_cookie_cnt gt 0: no RDP support, never true
    "REQ_CONTENT": ("req.len", "gt", "0"),
    "TRUE": ("always_true",),
    "WAIT_END": ("wait_end",),
}


def _build_predefined() -> dict[str, Acl]:
    out = {}
    for name, words in _PREDEFINED_WORDS.items():
        acl = Acl(name)
        acl.add(parse_acl_expr(words)[0])
        out[name] = acl
    return out


PREDEFINED_ACLS: dict[str, Acl] = _build_predefined()


# ------------------------------------------------------------ conditions


class _Term:
    """One term of a suite: an ACL and whether it is negated."""

    __slots__ = ("acl", "neg")

    def __init__(self, acl: Acl, neg: bool) -> None:
        self.acl = acl
        self.neg = neg


class _Duck(Acl):
    """Any object with ``evaluate(ctx)`` used as an ACL term (tests, extensions)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        Acl.__init__(self, repr(obj))
        self.obj = obj

    def test(self, ctx: sample.SampleCtx) -> bool:
        return bool(self.obj.evaluate(ctx))


class Condition:
    """``if``/``unless`` condition: OR of suites, each an AND of (acl, negated) terms.

    ``evaluate(ctx)`` short-circuits like HAProxy; each ACL is read at call time (an
    ACL may gain expressions after the condition naming it was compiled).
    """

    __slots__ = ("kind", "suites", "text", "unless", "acls", "_suites")

    def __init__(self, kind: str, suites: tuple[tuple[tuple[Acl, bool], ...], ...],
                 text: str) -> None:
        self.kind = kind
        self.suites = suites
        self.text = text
        self.unless = kind == "unless"
        self.acls = tuple(a for s in suites for a, _ in s)
        self._suites = tuple(
            tuple(_Term(a if isinstance(a, Acl) else _Duck(a), bool(neg)) for a, neg in s)
            for s in suites)

    def evaluate(self, ctx: sample.SampleCtx) -> bool:
        for suite in self._suites:
            for term in suite:
                if term.acl.test(ctx) == term.neg:
                    break  # this suite fails: try the next one
            else:
                return not self.unless
        return self.unless

    @property
    def where(self) -> frozenset[str]:
        """Union of the ``where`` sets of every fetch the condition uses."""
        w: frozenset[str] = frozenset()
        for a in self.acls:
            w |= a.where
        return w

    def conflict(self, where: str, rule: str) -> str | None:
        """HAProxy's warning for the first ACL that cannot match where the rule runs.

        ``where`` is ``"req"`` or ``"res"``; ``rule`` names the context the way HAProxy
        does, e.g. ``"frontend http-request header rule"``. None when all is usable.
        """
        for acl_ in self.acls:
            exprs = getattr(acl_, "exprs", ())
            if not exprs or any(where in e.sample.where for e in exprs):
                continue
            if getattr(acl_, "anonymous", False):
                return (f"anonymous acl will never match because it uses keyword"
                        f" '{exprs[0].keyword}' which is incompatible with '{rule}'")
            return (f"acl '{acl_.name}' will never match because it only involves keywords"
                    f" that are incompatible with '{rule}'")
        return None

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"


def as_condition(cond: Any) -> Condition | None:
    """``cond`` itself, or any object with ``evaluate(ctx)`` wrapped in a Condition
    (rule sets and switching rules hold typed conditions; tests pass stand-ins)."""
    if cond is None or isinstance(cond, Condition):
        return cond
    return Condition("if", (((cond, False),),), repr(cond))


def compile_condition(kind: str, words: Sequence[str],
                      lookup: Callable[[str], Acl | None], *, base_dir: str = ".",
                      refs: patref.PatternRefs | None = None,
                      origin: tuple[str, int] = ("", 0)) -> tuple[Condition, list[str]]:
    """Compile the words after ``if``/``unless`` into a ``Condition``.

    ``lookup`` resolves a user ACL name (None when unknown); predefined ACLs are used
    when it returns None. Returns the condition and warning texts.
    """
    if kind not in ("if", "unless"):
        raise AclError(f"expects either 'if' or 'unless' followed by a condition but found"
                       f" '{kind}'.")
    warnings: list[str] = []
    suites: list[tuple[tuple[Acl, bool], ...]] = []
    suite: list[tuple[Acl, bool]] = []
    neg = False
    i = 0
    n = len(words)
    anon = 0
    while i < n:
        w = words[i]
        if w == "||" or w.lower() == "or":
            neg = False  # a dangling '!' is dropped, as HAProxy does
            if suite:
                suites.append(tuple(suite))
            suite = []
            i += 1
            continue
        while w.startswith("!"):
            neg = not neg
            w = w[1:]
        if not w:
            i += 1
            continue
        if w == "{":
            try:
                end = words.index("}", i + 1)
            except ValueError:
                raise AclError("missing closing '}' in condition") from None
            inner = words[i + 1:end]
            expr, warns = parse_acl_expr(inner, base_dir=base_dir, refs=refs, origin=origin)
            warnings.extend(warns)
            anon += 1
            acl = Acl(f"anonymous acl #{anon}", anonymous=True)
            acl.add(expr)
            suite.append((acl, neg))
            neg = False
            i = end + 1
            continue
        found = lookup(w)
        if found is None:
            found = PREDEFINED_ACLS.get(w)
        if found is None:
            raise AclError(f"no such ACL : '{w}'")
        suite.append((found, neg))
        neg = False
        i += 1
    if suite:
        suites.append(tuple(suite))
    # No term at all ("if", "if !") is accepted: "if" never matches, "unless" always.
    return Condition(kind, tuple(suites), " ".join([kind, *words])), warnings
