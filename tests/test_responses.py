"""Built-in error pages, byte for byte (checked against HAProxy 2.6.12 on loopback:
deny, deny_status 429/400, 503 NOSRV, 502 garbage response, 504 silent server, 400 on a
garbage request line, 408 on an idle connection, HTTP/1.0 503)."""

from __future__ import annotations

from lb.http import responses


def test_403_stream_form() -> None:
    assert responses.error_page(403) == (
        b"HTTP/1.1 403 Forbidden\r\ncontent-length: 93\r\ncache-control: no-cache\r\n"
        b"content-type: text/html\r\n\r\n<html><body><h1>403 Forbidden</h1>\n"
        b"Request forbidden by administrative rules.\n</body></html>\n")


def test_503_and_close_variant() -> None:
    body = (b"<html><body><h1>503 Service Unavailable</h1>\n"
            b"No server is available to handle this request.\n</body></html>\n")
    head = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 107\r\n"
            b"cache-control: no-cache\r\ncontent-type: text/html\r\n")
    assert responses.error_page(503) == head + b"\r\n" + body
    assert responses.error_page(503, close=True) == head + b"connection: close\r\n\r\n" + body


def test_502_504_429() -> None:
    assert responses.error_page(502).startswith(
        b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 107\r\n")
    assert responses.error_page(502).endswith(
        b"The server returned an invalid or incomplete response.\n</body></html>\n")
    assert responses.error_page(504) == (
        b"HTTP/1.1 504 Gateway Time-out\r\ncontent-length: 92\r\ncache-control: no-cache\r\n"
        b"content-type: text/html\r\n\r\n<html><body><h1>504 Gateway Time-out</h1>\n"
        b"The server didn't respond in time.\n</body></html>\n")
    assert b"content-length: 117\r\n" in responses.error_page(429)


def test_400_stream_form_closes() -> None:
    assert responses.error_page(400) == (
        b"HTTP/1.1 400 Bad request\r\ncontent-length: 90\r\ncache-control: no-cache\r\n"
        b"content-type: text/html\r\nconnection: close\r\n\r\n<html><body><h1>400 Bad request"
        b"</h1>\nYour browser sent an invalid request.\n</body></html>\n")


def test_parser_forms_are_capitalised() -> None:
    assert responses.PARSER_400 == (
        b"HTTP/1.1 400 Bad request\r\nContent-length: 90\r\nCache-Control: no-cache\r\n"
        b"Connection: close\r\nContent-Type: text/html\r\n\r\n<html><body><h1>400 Bad request"
        b"</h1>\nYour browser sent an invalid request.\n</body></html>\n")
    assert responses.PARSER_408 == (
        b"HTTP/1.1 408 Request Time-out\r\nContent-length: 110\r\nCache-Control: no-cache\r\n"
        b"Connection: close\r\nContent-Type: text/html\r\n\r\n<html><body><h1>408 Request "
        b"Time-out</h1>\nYour browser didn't send a complete request in time.\n"
        b"</body></html>\n")


def test_content_length_matches_body() -> None:
    for st in responses.STATUSES:
        page = responses.error_page(st)
        head, _, body = page.partition(b"\r\n\r\n")
        cl = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
        assert cl == len(body), st


def test_errorfile_override() -> None:
    raw = b"HTTP/1.1 503 Nope\r\ncontent-length: 0\r\n\r\n"
    assert responses.error_page(503, errorfiles={503: raw}) == raw
    assert responses.error_page(502, errorfiles={503: raw}) == responses.error_page(502)


def test_local_response() -> None:
    assert responses.local_response(302, [(b"location", b"/x"), (b"cache-control", b"no-cache")]) \
        == b"HTTP/1.1 302 Found\r\ncontent-length: 0\r\nlocation: /x\r\ncache-control: no-cache\r\n\r\n"
    assert responses.local_response(200, []) == b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


def test_http_reply_takes_haproxys_reason() -> None:
    """`http-request return`, `deny ... hdr` and `http-error` replies carry HAProxy
    2.6.12's reason for the code, not the RFC's (seen on 127.0.0.1, 2026-11-25, with
    `return status 502`, `408 ... string x`, `299`, and `deny deny_status 302 hdr x y`)."""
    assert responses.http_reply(502, [], None, b"") == \
        b"HTTP/1.1 502 Bad Gateway or Proxy Error\r\ncontent-length: 0\r\n\r\n"
    assert responses.http_reply(408, [], b"text/plain", b"x").startswith(
        b"HTTP/1.1 408 Request Time-out\r\n")
    assert responses.http_reply(299, [], None, b"").startswith(b"HTTP/1.1 299 Success\r\n")
    assert responses.http_reply(302, [(b"x", b"y")], None, b"") == \
        b"HTTP/1.1 302 Moved Temporarily\r\nx: y\r\ncontent-length: 0\r\n\r\n"
