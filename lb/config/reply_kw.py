"""Error pages a proxy answers with: `errorfile`, `errorloc`/`errorloc302`/
`errorloc303` and `http-error`.

Owns: turning each of them into the raw response the proxy sends for a status
(``ProxyBuilder.errorfiles``: status -> bytes, inherited from defaults), with HAProxy
2.6's texts for bad input. The data plane sends these bytes as they are
(lb.http.responses.error_page).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from lb.config.lexer import Line
from lb.config.registry import ParseCtx, ProxyBuilder
from lb.http import responses
from lb.units import atoi

DENY_STATUSES = (200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 421, 422, 425, 429,
                 500, 501, 502, 503, 504)


def _status(line: Line, ctx: ParseCtx, kw: str, what: str, echo_atoi: bool) -> int | None:
    """`<kw> <status> <what>`: the status, or None once HAProxy's complaint is made
    (errorloc* quote the number as read, errorfile the word as written)."""
    words = line.words
    if len(words) < 3 or not words[2]:
        ctx.alert(line, f"{kw} : expects <status_code> and <{what}> as arguments.",
                  "missing-argument")
        return None
    code = atoi(words[1])
    if code not in DENY_STATUSES:
        shown = code if echo_atoi else words[1]
        ctx.alert(line, f"{kw} : status code '{shown}' not handled.", "bad-status",
                  col=line.col(1))
        return None
    return code


def kw_errorfile(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    words = line.words
    code = _status(line, ctx, "errorfile", "file", False)
    if code is None:
        return
    path = words[2]
    full = path if os.path.isabs(path) else os.path.join(ctx.base_dir, path)
    try:
        with open(full, "rb") as fh:
            data = fh.read()
    except OSError:
        ctx.alert(line, f"errorfile : error opening file '{path}'.", "file-error",
                  col=line.col(2))
        return
    bad = errorfile_error_offset(data)
    if bad is not None:
        ctx.alert(line, f"errorfile : '{path}': unable to parse headers (error offset: {bad})",
                  "bad-errorfile", col=line.col(2))
        return
    p.errorfiles[code] = delimited(data)


_STATUS_LINE = re.compile(rb"HTTP/\d\.\d \d{3}(?: [^\r\n]*)?\r?\n")
_HEADER_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\r\n]*\r?\n")


def errorfile_error_offset(data: bytes) -> int | None:
    """None when ``data`` starts with a valid HTTP response head, else an error offset."""
    mt = _STATUS_LINE.match(data)
    if not mt:
        i = 0
        for i, (a, b) in enumerate(zip(data, b"HTTP/1.x 000 ", strict=False)):
            if b not in b"x0" and a != b:
                return i
        return i
    pos = mt.end()
    while True:
        if data.startswith(b"\r\n", pos) or data.startswith(b"\n", pos):
            return None
        mh = _HEADER_LINE.match(data, pos)
        if not mh:
            return pos
        pos = mh.end()




_LENGTH_HEADERS = re.compile(rb"\n(?:content-length|transfer-encoding)[ \t]*:", re.I)


def delimited(raw: bytes) -> bytes:
    """An errorfile whose head gives no length ends with the connection: as HAProxy
    does, say `connection: close` (the proxy then closes after sending it)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = raw.partition(b"\n\n")
    if not sep or _LENGTH_HEADERS.search(head) or b"\nconnection: close" in head.lower():
        return raw
    eol = b"\r\n" if sep == b"\r\n\r\n" else b"\n"
    return head + eol + b"connection: close" + sep + body


_REDIRECTS = {"errorloc": 302, "errorloc302": 302, "errorloc303": 303}


def kw_errorloc(kw: str) -> Callable[[ProxyBuilder, Line, ParseCtx], None]:
    """`errorloc[302|303] <status> <url>`: the status is answered by a redirect."""
    def handler(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
        words = line.words
        code = _status(line, ctx, kw, "url", True)
        if code is None:
            return
        status = _REDIRECTS[kw]
        p.errorfiles[code] = (responses.status_line(status)
                              + b"cache-control: no-cache\r\ncontent-length: 0\r\n"
                              + b"location: " + words[2].encode("latin-1", "replace")
                              + b"\r\n\r\n")
    return handler


_PAYLOADS = ("errorfile", "file", "string", "lf-file", "lf-string", "errorfiles",
             "default-errorfiles")


def kw_http_error(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """`http-error status <code> [content-type <t>] [errorfile <f> | file <f> |
    string <s> | default-errorfiles] [hdr <name> <value>]*`. The log-format payloads
    (`lf-string`, `lf-file`) and `errorfiles` (an `http-errors` section) are refused:
    lb has no per-request error pages nor `http-errors` sections."""
    words = line.words
    if len(words) < 2 or not words[1]:
        ctx.alert(line, "http-error : expects at least a <status> as arguments.",
                  "missing-argument")
        return
    code: int | None = None
    ctype: str | None = None
    payload_kw: str | None = None
    body = b""
    raw: bytes | None = None
    hdrs: list[tuple[bytes, bytes]] = []
    i = 1
    while i < len(words):
        w = words[i]
        arg = words[i + 1] if i + 1 < len(words) else ""
        if w == "status":
            if not arg:
                ctx.alert(line, "http-error : 'status' expects <status_code> as argument",
                          "missing-argument")
                return
            code = atoi(arg)
            if code not in DENY_STATUSES:
                ctx.alert(line, f"http-error : Unexpected status code '{arg}'", "bad-status",
                          col=line.col(i + 1))
                return
        elif w == "content-type":
            if not arg:
                ctx.alert(line, "http-error : 'content-type' expects <ctype> as argument",
                          "missing-argument")
                return
            ctype = arg
        elif w == "hdr":
            value = words[i + 2] if i + 2 < len(words) else ""
            if not arg or not value:
                ctx.alert(line, "http-error : 'hdr' expects <name> and <value> as arguments",
                          "missing-argument")
                return
            if "%" in value:
                ctx.alert(line, f"http-error : lb takes plain 'hdr' values only, not the "
                          f"log-format '{value}'", "unsupported", col=line.col(i + 2))
                return
            hdrs.append((arg.lower().encode("latin-1"), value.encode("latin-1", "replace")))
            i += 3
            continue
        elif w in _PAYLOADS:
            if payload_kw is not None:
                ctx.alert(line, f"http-error : unexpected '{w}' argument, '{payload_kw}' "
                          "already defined", "bad-argument", col=line.col(i))
                return
            payload_kw = w
            if w == "default-errorfiles":
                i += 1
                continue
            if not arg:
                what = "<str>" if w.endswith("string") else "<file>"
                ctx.alert(line, f"http-error : '{w}' expects {what} as argument",
                          "missing-argument")
                return
            if w in ("lf-string", "lf-file", "errorfiles"):
                if w != "errorfiles" and ctype is None:
                    ctx.alert(line, "http-error : a content type must be defined with a "
                              "log-format payload", "missing-argument")
                else:
                    ctx.alert(line, f"http-error : lb does not support '{w}' (its error "
                              "pages are built once, at load)", "unsupported",
                              col=line.col(i))
                return
            if w == "string":
                body = arg.encode("utf-8", "surrogateescape")
            else:
                full = arg if os.path.isabs(arg) else os.path.join(ctx.base_dir, arg)
                try:
                    with open(full, "rb") as fh:
                        data = fh.read()
                except OSError:
                    ctx.alert(line, f"http-error : error opening file '{arg}'.",
                              "file-error", col=line.col(i + 1))
                    return
                if w == "errorfile":
                    bad = errorfile_error_offset(data)
                    if bad is not None:
                        ctx.alert(line, f"http-error : '{arg}': unable to parse headers "
                                  f"(error offset: {bad})", "bad-errorfile",
                                  col=line.col(i + 1))
                        return
                    raw = delimited(data)
                else:
                    body = data
        else:
            ctx.alert(line, f"http-error : unknown keyword '{w}'.", "bad-argument",
                      col=line.col(i))
            return
        i += 2
    if code is None:
        ctx.alert(line, "http-error : expects at least a <status> as arguments.",
                  "missing-argument")
        return
    if ctype is not None and payload_kw in (None, "errorfile", "default-errorfiles"):
        ctx.warn(line, f"content-type '{ctype}' ignored by the http reply because neither "
                 "errorfile nor payload defined.", "ignored-argument")
        ctype = None
    if payload_kw == "default-errorfiles":
        p.errorfiles.pop(code, None)
        return
    if raw is None:
        raw = responses.http_reply(code, hdrs, ctype.encode("latin-1") if ctype else None,
                                   body)
    p.errorfiles[code] = raw
