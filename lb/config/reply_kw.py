"""Error pages and http replies: `errorfile`, `errorloc`/`errorloc302`/`errorloc303`,
`errorfiles`, `http-error`, `http-errors` sections, and the reply grammar that
`http-error` shares with the `deny`, `tarpit` and `return` actions.

Owns: reading those statements with HAProxy 2.6's texts for bad input; keeping a
proxy's error-page statements in file order (``ProxyBuilder.error_steps``, inherited
from defaults) until every `http-errors` section is known; then resolving them into
the status -> page map the data plane sends (``resolve_pages``), and resolving the
`errorfiles <name>` of actions (``resolve_action_sections``), with HAProxy's
post-parse alerts and warnings. Pages are sent as they are built here
(lb.proxy.txn.local_error); a page built per request is a ``model.FormatReply``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import lb.config.model as m
from lb.config.lexer import Line
from lb.config.registry import ErrorStep, ParseCtx, ProxyBuilder, bad_name_char, origin
from lb.http import errorfile, responses
from lb.match import fmt as fmt_mod
from lb.units import atoi

#: The statuses HAProxy 2.6 has an error page for (`http_err_codes`).
DENY_STATUSES = (200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 421, 422, 425, 429,
                 500, 501, 502, 503, 504)

_IGNORED_REPLY_HEADERS = frozenset(("content-length", "transfer-encoding", "content-type"))
_NO_BODY = (204, 304)


def _full_path(ctx: ParseCtx, path: str) -> str:
    return path if os.path.isabs(path) else os.path.join(ctx.base_dir, path)


def load_errorfile(ctx: ParseCtx, path: str) -> bytes | str:
    """The wire form of errorfile ``path``, or HAProxy's complaint about it (the
    caller puts its own prefix before it)."""
    try:
        with open(_full_path(ctx, path), "rb") as fh:
            data = fh.read()
    except OSError:
        return f"error opening file '{path}'."
    bad = errorfile.problem(data)
    if bad is not None:
        return f"'{path}': {bad}"
    return errorfile.wire(data)


# --------------------------------------------------------------------------- the reply grammar


@dataclass(slots=True)
class Reply:
    """One http reply as written (HAProxy's ``http_parse_http_reply``)."""

    status: int
    payload: str | None = None  # the payload keyword given; None: no payload
    content_type: str | None = None
    body: bytes | None = None  # string / file
    body_fmt: str | None = None  # lf-string / lf-file
    page: bytes | None = None  # errorfile
    section: str | None = None  # errorfiles
    headers: list[m.HeaderFmt] = field(default_factory=list)
    end: int = 0  # the first word that is not part of the reply


def parse_reply(words: Sequence[str], i: int, default_status: int, line: Line,
                ctx: ParseCtx, fmt_error: Callable[[str], str | None],
                status_words: tuple[str, ...] = ("status",)) -> Reply | str:
    """Read reply arguments from ``words[i]`` on; stop at the first other word.

    Returns the reply, or HAProxy's error text (the caller frames it). Warnings are
    reported as HAProxy prints them. ``fmt_error`` checks a log-format string.
    """
    r = Reply(default_status)
    n = len(words)

    def arg() -> str:
        return words[i + 1] if i + 1 < n else ""

    def payload(kw: str) -> str | None:
        if r.payload is not None:
            return f"unexpected '{kw}' argument, '{r.payload}' already defined"
        r.payload = kw
        return None

    while i < n:
        w = words[i]
        if w in status_words:
            if not arg():
                return "'status' expects <status_code> as argument"
            r.status = atoi(arg())
            if not 200 <= r.status <= 599:
                return f"Unexpected status code '{r.status}'"
            i += 2
        elif w == "content-type":
            if not arg():
                return "'content-type' expects <ctype> as argument"
            r.content_type = arg()
            i += 2
        elif w == "default-errorfiles":
            err = payload(w)
            if err:
                return err
            i += 1
        elif w in ("errorfiles", "errorfile", "file", "string", "lf-file", "lf-string"):
            err = payload(w)
            if err:
                return err
            value = arg()
            if not value:
                what = {"errorfiles": "<name>", "errorfile": "<fmt>", "string": "<str>",
                        "lf-string": "<fmt>"}.get(w, "<file>")
                return f"'{w}' expects {what} as argument"
            if w == "errorfiles":
                r.section = value
            elif w == "errorfile":
                page = load_errorfile(ctx, value)
                if isinstance(page, str):
                    return page
                r.page = page
            elif w == "string":
                r.body = value.encode("utf-8", "surrogateescape")
            elif w == "lf-string":
                r.body_fmt = value
            else:
                data = _read_payload_file(ctx, value)
                if isinstance(data, str):
                    return data
                if w == "file":
                    r.body = data
                else:
                    r.body_fmt = data.decode("utf-8", "surrogateescape")
            i += 2
        elif w == "hdr":
            value = words[i + 2] if i + 2 < n else ""
            if not arg() or not value:
                return "'hdr' expects <name> and <value> as arguments"
            if arg().lower() in _IGNORED_REPLY_HEADERS:
                ctx.warn(line, f"header '{arg()}' always ignored by the http reply.",
                         "ignored-argument")
            else:
                err = fmt_error(value)
                if err is not None:
                    return err
                r.headers.append(m.HeaderFmt(arg(), value))
            i += 3
        else:
            break
    r.end = i
    return _check_reply(r, line, ctx, fmt_error)


def _read_payload_file(ctx: ParseCtx, path: str) -> bytes | str:
    try:
        with open(_full_path(ctx, path), "rb") as fh:
            data = fh.read()
    except OSError:
        return f"error opening file '{path}'"
    bufsize = int(ctx.glob_values.get("tune_bufsize", 16384))
    if len(data) > bufsize:
        return f"file '{path}' exceeds the buffer size ({len(data)} > {bufsize})"
    return data


def _check_reply(r: Reply, line: Line, ctx: ParseCtx,
                 fmt_error: Callable[[str], str | None]) -> Reply | str:
    """HAProxy's checks once the reply's words are read."""
    kind = r.payload
    if kind is None:
        if r.content_type is not None:
            ctx.warn(line, f"content-type '{r.content_type}' ignored by the http reply "
                     "because neither errorfile nor payload defined.", "ignored-argument")
            r.content_type = None
    elif kind in ("errorfiles", "errorfile", "default-errorfiles"):
        if kind != "errorfile" and r.status not in DENY_STATUSES:
            return f"status code '{r.status}' not handled by default with '{kind}' argument."
        if r.content_type is not None:  # (HAProxy's spelling)
            ctx.warn(line, f"content-type '{r.content_type}' ignored by the http reply "
                     "when used with an erorrfile.", "ignored-argument")
            r.content_type = None
        if r.headers:
            ctx.warn(line, "hdr parameters ignored by the http reply when used with an "
                     "erorrfile.", "ignored-argument")
            r.headers = []
    elif kind in ("string", "file"):
        size = len(r.body or b"")
        if r.status in _NO_BODY and size:
            return f"No body expected for {r.status} responses"
        if r.content_type is None and size:
            return "a content type must be defined when non-empty payload is configured"
        if r.content_type is not None and not size:
            ctx.warn(line, f"content-type '{r.content_type}' ignored by the http reply "
                     "when used with an empty payload.", "ignored-argument")
            r.content_type = None
        bufsize = int(ctx.glob_values.get("tune_bufsize", 16384))
        maxrewrite = int(ctx.glob_values.get("tune_maxrewrite", 1024))
        if bufsize - size < maxrewrite:
            ctx.warn(line, "http reply payload runs over the buffer space reserved to "
                     "headers rewriting. It may lead to internal errors if strict rewriting "
                     "mode is enabled.", "big-reply")
    else:  # lf-string / lf-file
        if r.status in _NO_BODY:
            return f"No body expected for {r.status} responses"
        if r.content_type is None:
            return "a content type must be defined with a log-format payload"
        err = fmt_error(r.body_fmt or "")
        if err is not None:
            return err
    return r


def static_reply(r: Reply) -> bytes | None:
    """The bytes of a reply that is the same for every request, else None."""
    if r.body_fmt is not None:
        fmt = fmt_mod.compile_format(r.body_fmt)
        if fmt.constant is None:
            return None
        r = replace(r, body=fmt.constant, body_fmt=None)
    headers: list[tuple[bytes, bytes]] = []
    for h in r.headers:
        value = fmt_mod.compile_format(h.value_fmt).constant
        if value is None:
            return None
        headers.append((h.name.lower().encode("latin-1"), value))
    ctype = r.content_type.encode("latin-1") if r.content_type is not None else None
    return responses.http_reply(r.status, headers, ctype, r.body or b"")


# --------------------------------------------------------------------------- proxy keywords


def _status(line: Line, ctx: ParseCtx, kw: str, what: str, echo_atoi: bool,
            sep: str = " : ") -> int | None:
    """`<kw> <status> <what>`: the status, or None once HAProxy's complaint is made
    (errorloc* quote the number as read, errorfile the word as written)."""
    words = line.words
    if len(words) < 3 or not words[1] or not words[2]:
        ctx.alert(line, f"{kw}{sep.rstrip(' ')} expects <status_code> and <{what}> as "
                  "arguments.", "missing-argument")
        return None
    code = atoi(words[1])
    if code not in DENY_STATUSES:
        shown = code if echo_atoi else words[1]
        ctx.alert(line, f"{kw} : status code '{shown}' not handled.", "bad-status",
                  col=line.col(1))
        return None
    return code


def _errorfile_page(line: Line, ctx: ParseCtx, sep: str) -> tuple[int, bytes] | None:
    # (a proxy quotes a bad status as written, an http-errors section as read)
    code = _status(line, ctx, "errorfile", "file", sep != " : ", sep)
    if code is None:
        return None
    page = load_errorfile(ctx, line.words[2])
    if isinstance(page, str):
        ctx.alert(line, f"errorfile : {page}", "bad-errorfile", col=line.col(2))
        return None
    return code, page


def kw_errorfile(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """`errorfile <status> <file>`: the file is the whole response for the status."""
    got = _errorfile_page(line, ctx, " : ")
    if got is not None:
        p.error_steps.append(ErrorStep(origin(line), got[0], got[1]))


_REDIRECTS = {"errorloc": 302, "errorloc302": 302, "errorloc303": 303}


def kw_errorloc(kw: str) -> Callable[[ProxyBuilder, Line, ParseCtx], None]:
    """`errorloc[302|303] <status> <url>`: the status is answered by a redirect."""
    def handler(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
        words = line.words
        code = _status(line, ctx, kw, "url", True)
        if code is None:
            return
        page = (responses.status_line(_REDIRECTS[kw])
                + b"cache-control: no-cache\r\ncontent-length: 0\r\n"
                + b"location: " + words[2].encode("latin-1", "replace") + b"\r\n\r\n")
        p.error_steps.append(ErrorStep(origin(line), code, page))
    return handler


def kw_errorfiles(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """`errorfiles <name> [<status> ...]`: the pages of an `http-errors` section."""
    words = line.words
    if len(words) < 2 or not words[1]:
        ctx.alert(line, "errorfiles : expects <name> as argument.", "missing-argument")
        return
    codes: list[int] = []
    for w in words[2:]:
        code = atoi(w)
        if code not in DENY_STATUSES:
            ctx.alert(line, f"errorfiles : status code '{code}' not handled.", "bad-status",
                      col=line.col(words.index(w)))
            return
        codes.append(code)
    p.error_steps.append(ErrorStep(origin(line), section=words[1], codes=tuple(codes)))


def kw_http_error(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """`http-error status <code> [content-type <t>] [errorfile <f> | errorfiles <name> |
    file <f> | lf-file <f> | string <s> | lf-string <fmt> | default-errorfiles]
    [hdr <name> <fmt>]*`: the page lb sends for that status."""
    def fmt_error(text: str) -> str | None:
        try:
            fmt_mod.compile_format(text)
        except fmt_mod.FormatError as exc:
            return str(exc).rstrip()
        return None

    words = line.words
    r = parse_reply(words, 1, 0, line, ctx, fmt_error)
    if isinstance(r, str):
        ctx.alert(line, f"http-error : {r}", "bad-argument")
        return
    if not r.status:
        ctx.alert(line, "http-error : expects at least a <status> as arguments.",
                  "missing-argument")
        return
    if r.status not in DENY_STATUSES:
        ctx.alert(line, f"http-error: status code '{r.status}' not handled.", "bad-status")
        return
    if r.end < len(words):
        ctx.alert(line, f"http-error : unknown keyword '{words[r.end]}'.", "bad-argument",
                  col=line.col(r.end))
        return
    here = origin(line)
    if r.section is not None:
        p.error_steps.append(ErrorStep(here, section=r.section, codes=(r.status,)))
    elif r.payload == "default-errorfiles":
        p.error_steps.append(ErrorStep(here, r.status, None))
    elif r.page is not None:
        p.error_steps.append(ErrorStep(here, r.status, r.page))
    else:
        page = static_reply(r)
        p.error_steps.append(ErrorStep(here, r.status, page if page is not None else
                                       m.FormatReply(r.status, r.content_type, r.body,
                                                     r.body_fmt, tuple(r.headers))))


# --------------------------------------------------------------------------- http-errors sections


@dataclass(slots=True)
class HttpErrors:
    """One `http-errors <name>` section: status -> page."""

    name: str
    origin: m.Origin
    pages: dict[int, bytes] = field(default_factory=dict)


def open_http_errors(line: Line, ctx: ParseCtx, known: Mapping[str, HttpErrors]
                     ) -> HttpErrors | None:
    """The section a `http-errors <name>` line opens; None when the name is missing
    (HAProxy then stops reading the file: the caller aborts)."""
    words = line.words
    if len(words) < 2 or not words[1]:
        ctx.alert(line, "missing name for http-errors section.", "missing-section-name")
        return None
    name = words[1]
    bad = bad_name_char(name)
    if bad:
        ctx.alert(line, f"character '{bad}' is not permitted in 'http-errors' name "
                  f"'{name}'.", "bad-name", col=line.col(1))
    if name in known:
        ctx.alert(line, f"http-errors section '{name}' already exists (declared at "
                  f"{known[name].origin}).", "duplicate-section", style="tight")
    return HttpErrors(name, origin(line))


def http_errors_stmt(sec: HttpErrors, line: Line, ctx: ParseCtx) -> None:
    kw = line.words[0]
    if kw != "errorfile":
        ctx.alert(line, f"unknown keyword '{kw}' in 'http-errors' section",
                  "unknown-keyword", col=line.col(0))
        return
    got = _errorfile_page(line, ctx, ": ")
    if got is not None:
        sec.pages[got[0]] = got[1]


# --------------------------------------------------------------------------- after parsing


def resolve_pages(p: ProxyBuilder, sections: Mapping[str, HttpErrors], ctx: ParseCtx
                  ) -> dict[int, bytes | m.FormatReply]:
    """The proxy's status -> page map, its statements applied in file order."""
    pages: dict[int, bytes | m.FormatReply] = {}
    for step in p.error_steps:
        if step.section is None:
            if step.page is None:
                pages.pop(step.code, None)
            else:
                pages[step.code] = step.page
            continue
        sec = sections.get(step.section)
        if sec is None:
            ctx.alert(None, f"proxy '{p.name}': unknown http-errors section "
                      f"'{step.section}' (at {step.origin}).", "unknown-section",
                      style="plain")
            continue
        for code in step.codes or DENY_STATUSES:
            page = sec.pages.get(code)
            if page is not None:
                pages[code] = page
            elif step.codes:
                ctx.warn(None, f"config: proxy '{p.name}' : status '{code}' not declared "
                         f"in http-errors section '{sec.name}' (at {step.origin}).",
                         "missing-status", style="plain")
    return pages


_REPLY_RULES = ("http_request_rules", "http_response_rules", "http_after_response_rules")


def resolve_action_sections(p: ProxyBuilder, sections: Mapping[str, HttpErrors],
                            ctx: ParseCtx) -> None:
    """`deny`/`tarpit`/`return ... errorfiles <name>`: the section's page for the
    rule's status, or an empty reply when it has none (as HAProxy sends)."""
    for attr in _REPLY_RULES:
        rules: list[m.Rule] = getattr(p, attr)
        for i, rule in enumerate(rules):
            act = rule.action
            name = getattr(act, "section", None)
            if name is None or not isinstance(act, m.ActDeny | m.ActReturn):
                continue
            sec = sections.get(name)
            if sec is None:
                ctx.alert(None, f"Proxy '{p.name}': unknown http-errors section '{name}' "
                          "referenced by an http reply .", "unknown-section", style="plain")
                continue
            page = sec.pages.get(act.status)
            if page is None:
                ctx.warn(None, f"Proxy '{p.name}': status '{act.status}' referenced by an "
                         f"http reply not declared in http-errors section '{name}'.",
                         "missing-status", style="plain")
                page = responses.http_reply(act.status, [], None, b"")
            rules[i] = replace(rule, action=replace(act, errorfile=page, section=None))
