"""Built-in HTTP responses, byte for byte as HAProxy 2.6 sends them (spec Appendix B).

Owns: the reason phrases, the error page bodies, the two wire forms of an error page
(the capitalised one HAProxy's H1 parser emits for 400/408 before a stream exists,
and the lower-cased one produced after the stream exists), `errorfile` overrides,
and small builders for local responses (return / redirect). Everything constant is
built once at import.

Checked against HAProxy 2.6.12 on 127.0.0.1 (deny, deny_status 429/400, 503 NOSRV,
502 garbage response, 504 silent server, 400 on a garbage request line, 408 on an
idle connection, 302 redirect, `return status 200`).

Must not import: anything outside the standard library (layer L1, I/O-free).
"""

from __future__ import annotations

from collections.abc import Mapping

REASONS: dict[int, bytes] = {
    100: b"Continue", 101: b"Switching Protocols", 200: b"OK", 201: b"Created",
    202: b"Accepted", 203: b"Non-Authoritative Information", 204: b"No Content",
    205: b"Reset Content", 206: b"Partial Content", 300: b"Multiple Choices",
    301: b"Moved Permanently", 302: b"Found", 303: b"See Other", 304: b"Not Modified",
    307: b"Temporary Redirect", 308: b"Permanent Redirect", 400: b"Bad Request",
    401: b"Unauthorized", 402: b"Payment Required", 403: b"Forbidden", 404: b"Not Found",
    405: b"Method Not Allowed", 406: b"Not Acceptable", 407: b"Proxy Authentication Required",
    408: b"Request Timeout", 409: b"Conflict", 410: b"Gone", 411: b"Length Required",
    412: b"Precondition Failed", 413: b"Payload Too Large", 414: b"URI Too Long",
    415: b"Unsupported Media Type", 416: b"Range Not Satisfiable", 417: b"Expectation Failed",
    421: b"Misdirected Request", 422: b"Unprocessable Content", 425: b"Too Early",
    426: b"Upgrade Required", 428: b"Precondition Required", 429: b"Too Many Requests",
    431: b"Request Header Fields Too Large", 500: b"Internal Server Error",
    501: b"Not Implemented", 502: b"Bad Gateway", 503: b"Service Unavailable",
    504: b"Gateway Timeout", 505: b"HTTP Version Not Supported",
}


# The reason `http-response set-status <code>` gives without `reason`: HAProxy
# 2.6.12's own list (read from its answers for every code from 200 to 599), which
# differs from REASONS in places ("Moved Temporarily", "Request Time-out"); other
# codes take their class's name ("Success", "Client Error"...), and "Other" beyond.
_SET_STATUS_REASONS: dict[int, bytes] = {
    200: b"OK", 201: b"Created", 202: b"Accepted", 203: b"Non-Authoritative Information",
    204: b"No Content", 205: b"Reset Content", 206: b"Partial Content",
    207: b"Multi-Status", 210: b"Content Different", 226: b"IM Used",
    300: b"Multiple Choices", 301: b"Moved Permanently", 302: b"Moved Temporarily",
    303: b"See Other", 304: b"Not Modified", 305: b"Use Proxy", 307: b"Temporary Redirect",
    308: b"Permanent Redirect", 310: b"Too many Redirects", 400: b"Bad Request",
    401: b"Unauthorized", 402: b"Payment Required", 403: b"Forbidden", 404: b"Not Found",
    405: b"Method Not Allowed", 406: b"Not Acceptable",
    407: b"Proxy Authentication Required", 408: b"Request Time-out", 409: b"Conflict",
    410: b"Gone", 411: b"Length Required", 412: b"Precondition Failed",
    413: b"Request Entity Too Large", 414: b"Request-URI Too Long",
    415: b"Unsupported Media Type", 416: b"Requested range unsatisfiable",
    417: b"Expectation failed", 418: b"I'm a teapot", 421: b"Misdirected Request",
    422: b"Unprocessable Content", 423: b"Locked", 424: b"Method failure",
    425: b"Too Early", 426: b"Upgrade Required", 428: b"Precondition Required",
    429: b"Too Many Requests", 431: b"Request Header Fields Too Large", 449: b"Retry With",
    450: b"Blocked by Windows Parental Controls", 451: b"Unavailable For Legal Reasons",
    456: b"Unrecoverable Error", 499: b"client has closed connection",
    500: b"Internal Server Error", 501: b"Not Implemented",
    502: b"Bad Gateway or Proxy Error", 503: b"Service Unavailable",
    504: b"Gateway Time-out", 505: b"HTTP Version not supported",
    506: b"Variant also negotiate", 507: b"Insufficient storage", 508: b"Loop detected",
    509: b"Bandwidth Limit Exceeded", 510: b"Not extended",
    511: b"Network authentication required",
    520: b"Web server is returning an unknown error",
}
_CLASS_REASONS = {1: b"Informational", 2: b"Success", 3: b"Redirection", 4: b"Client Error",
                  5: b"Server Error"}


def set_status_reason(status: int) -> bytes:
    """The default reason of ``http-response set-status`` (``_SET_STATUS_REASONS``)."""
    known = _SET_STATUS_REASONS.get(status)
    if known is not None:
        return known
    return _CLASS_REASONS.get(status // 100, b"Other")

# (status) -> (title in the page, explanation line). The titles keep HAProxy's
# spelling ("Bad request", "Request Time-out"), which differs from REASONS.
_PAGES: dict[int, tuple[bytes, bytes]] = {
    200: (b"OK", b"Service ready."),
    400: (b"Bad request", b"Your browser sent an invalid request."),
    401: (b"Unauthorized", b"You need a valid user and password to access this content."),
    403: (b"Forbidden", b"Request forbidden by administrative rules."),
    404: (b"Not Found", b"The resource could not be found."),
    405: (b"Method Not Allowed", b"A request was made of a resource using a request method not supported by that resource"),
    407: (b"Unauthorized", b"You need a valid user and password to access this content."),
    408: (b"Request Time-out", b"Your browser didn't send a complete request in time."),
    410: (b"Gone", b"The resource is no longer available and will not be available again."),
    413: (b"Payload Too Large", b"The request entity exceeds the maximum allowed."),
    421: (b"Misdirected Request", b"The server is not able to produce a response."),
    422: (b"Unprocessable Content", b"The server cannot process the contained instructions."),
    425: (b"Too Early", b"Your browser sent early data."),
    429: (b"Too Many Requests", b"You have sent too many requests in a given amount of time."),
    500: (b"Internal Server Error", b"An internal server error occurred."),
    501: (b"Not Implemented", b"The server does not support the functionality required to fulfill the request."),
    502: (b"Bad Gateway", b"The server returned an invalid or incomplete response."),
    503: (b"Service Unavailable", b"No server is available to handle this request."),
    504: (b"Gateway Time-out", b"The server didn't respond in time."),
}

# Statuses whose built-in page carries `Connection: close` (the client side closes).
CLOSING = frozenset((400, 408))
STATUSES = frozenset(_PAGES)


def _body(status: int) -> bytes:
    title, text = _PAGES[status]
    return b"<html><body><h1>%d %s</h1>\n%s\n</body></html>\n" % (status, title, text)


def _stream_form(status: int) -> bytes:
    """Lower-cased form (emitted through the H1 encoder once a stream exists);
    ends before the blank line so that `connection: close` can be appended."""
    title = _PAGES[status][0]
    body = _body(status)
    head = (b"HTTP/1.1 %d %s\r\ncontent-length: %d\r\ncache-control: no-cache\r\n"
            b"content-type: text/html\r\n" % (status, title, len(body)))
    return head


def _parser_form(status: int) -> bytes:
    """Capitalised form (emitted by the H1 parser before a stream exists)."""
    title = _PAGES[status][0]
    body = _body(status)
    return (b"HTTP/1.1 %d %s\r\nContent-length: %d\r\nCache-Control: no-cache\r\n"
            b"Connection: close\r\nContent-Type: text/html\r\n\r\n%s"
            % (status, title, len(body), body))


_KEEP: dict[int, bytes] = {}
_CLOSE: dict[int, bytes] = {}
for _st in _PAGES:
    _h = _stream_form(_st)
    _b = _body(_st)
    _CLOSE[_st] = _h + b"connection: close\r\n\r\n" + _b
    _KEEP[_st] = _CLOSE[_st] if _st in CLOSING else _h + b"\r\n" + _b

#: What the H1 parser answers to a malformed request / an idle connection.
PARSER_400 = _parser_form(400)
PARSER_408 = _parser_form(408)
#: ... to a Transfer-Encoding naming a coding before `chunked`: this one carries no
#: Connection header (HAProxy 2.6.12 still closes after it).
PARSER_422 = _parser_form(422).replace(b"Connection: close\r\n", b"")


def error_page(status: int, close: bool = False,
               errorfiles: Mapping[int, bytes] | None = None) -> bytes:
    """The full response for a built-in error `status` (lower-cased stream form).

    `errorfiles` (status -> raw response) replaces the page when present.
    """
    if errorfiles:
        raw = errorfiles.get(status)
        if raw is not None:
            return raw
    page = (_CLOSE if close else _KEEP).get(status)
    if page is None:
        page = (_CLOSE if close else _KEEP)[500 if status >= 500 else 400]
    return page


def parser_answer(status: int, page: bytes, errorfiles: Mapping[int, object]) -> bytes:
    """What the H1 parser's 400/408 (``page``) becomes: HAProxy 2.6.12 sends its own
    page even when an errorfile replaces it elsewhere, except an empty errorfile
    (`errorfile 408 /dev/null`), which makes it close without a word."""
    if errorfiles and errorfiles.get(status) == b"":
        return b""
    return page


def closes_client(status: int) -> bool:
    return status in CLOSING


# statuses whose responses carry no body and no content-length (RFC 9110 8.6)
NO_BODY_STATUSES = frozenset((204, 304))


def logged_size(raw: bytes, status: int) -> int:
    """``%B`` of a reply lb builds itself, as HAProxy 2.6.12 counts it: the size of
    its internal (HTX) form, where a header is its name and value without ``: `` and
    CRLF, and the start line and end of head weigh a fixed 15 bytes more than on the
    wire; so the wire size plus 15, less 4 per header line. A 204 or 304 counts the
    ``content-length: 0`` that its HTX form has and the wire does not (15 bytes).
    Checked against HAProxy on deny pages, redirects, returns and errorfiles
    (tests/test_local_reply_bytes.py). ``raw``: the reply without the
    ``connection: close`` lb adds for a closing connection."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return len(raw)
    headers = raw.count(b"\r\n", 0, end)
    size = len(raw) + 15 - 4 * headers
    if status in NO_BODY_STATUSES and b"\ncontent-length:" not in raw[:end].lower():
        size += 15
    return size


def head_only(raw: bytes) -> bytes:
    """A reply to a HEAD request: ``raw`` without its body (the head says its length)."""
    end = raw.find(b"\r\n\r\n")
    return raw if end < 0 else raw[:end + 4]


def with_connection(raw: bytes, value: bytes) -> bytes:
    """``raw`` with a ``connection: <value>`` header last, unless it has one."""
    if not raw.startswith(b"HTTP/"):
        return raw
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep or b"\nconnection:" in head.lower():
        return raw
    return head + b"\r\nconnection: " + value + b"\r\n\r\n" + body


def status_line(status: int, reason: bytes | None = None) -> bytes:
    return b"HTTP/1.1 %d %s\r\n" % (status, reason if reason is not None
                                    else REASONS.get(status, b"Unknown"))


def http_reply(status: int, headers: list[tuple[bytes, bytes]], content_type: bytes | None,
               body: bytes, close: bool = False) -> bytes:
    """HAProxy's http-reply (`http-request return`, `http-error`): the `hdr` headers
    in order, then content-length, then content-type (2.6.12's order, byte for byte).
    Its reason is HAProxy's own for the code (``set_status_reason``: 502 is "Bad Gateway
    or Proxy Error", 299 "Success")."""
    parts = [status_line(status, set_status_reason(status))]
    for name, value in headers:
        parts.append(name + b": " + value + b"\r\n")
    if status in NO_BODY_STATUSES:
        body = b""  # (HAProxy's H1 output drops the length and any payload)
    else:
        parts.append(b"content-length: %d\r\n" % len(body))
    if content_type is not None:
        parts.append(b"content-type: " + content_type + b"\r\n")
    if close:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    parts.append(body)
    return b"".join(parts)


def local_response(status: int, headers: list[tuple[bytes, bytes]], body: bytes = b"",
                   close: bool = False, content_length: bool = True) -> bytes:
    """A locally generated response (`return`, `redirect`, services) in one buffer.

    HAProxy puts content-length first, then the other headers in order.
    """
    parts = [status_line(status)]
    if content_length:
        parts.append(b"content-length: %d\r\n" % len(body))
    for name, value in headers:
        parts.append(name + b": " + value + b"\r\n")
    if close:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    parts.append(body)
    return b"".join(parts)
