"""The raw-request corpus of the HAProxy differential test.

Owns: ``CASES``, an ordered table of ``Case`` (name, raw bytes sent in one write,
number of responses a fully accepting proxy would give). The same corpus is sent to
HAProxy by ``tools/conformance/run.py`` (which records the outcome in
``tests/data/conformance_haproxy.json``) and to lb by ``tests/test_conformance.py``.

Names are stable identifiers: the recorded data and the exception table refer to them.
Every request carries a Host header unless the case is about Host.

Must not import: anything from lb (the corpus is data).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    expect: int = 1  # responses a proxy that accepts everything would send
    note: str = ""


H = b"Host: a\r\n"
KEY = b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
SMUGGLE = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
WS = b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"


def _get(line: bytes = b"GET / HTTP/1.1", headers: bytes = H, body: bytes = b"") -> bytes:
    return line + b"\r\n" + headers + b"\r\n" + body


def _post(headers: bytes, body: bytes) -> bytes:
    return b"POST /p HTTP/1.1\r\n" + H + headers + b"\r\n" + body


def _many(n: int) -> bytes:
    return H + b"".join(b"X-H%d: v\r\n" % i for i in range(n - 1))


def _head_of(total: int) -> bytes:
    """A GET whose head (request line to final CRLF) is exactly `total` bytes."""
    base = b"GET / HTTP/1.1\r\n" + H + b"X-Pad: \r\n\r\n"
    return b"GET / HTTP/1.1\r\n" + H + b"X-Pad: " + b"p" * (total - len(base)) + b"\r\n\r\n"


_C: list[Case] = [
    # ---------------------------------------------------------------- request line
    Case("valid_get", _get()),
    Case("valid_http10", b"GET / HTTP/1.0\r\n\r\n"),
    Case("valid_head", _get(b"HEAD / HTTP/1.1")),
    Case("valid_query", _get(b"GET /a/b?c=d&e=%20f HTTP/1.1")),
    Case("method_lowercase", _get(b"get / HTTP/1.1")),
    Case("method_unknown_token", _get(b"FOO / HTTP/1.1")),
    Case("method_purge", _get(b"PURGE / HTTP/1.1")),
    Case("method_bad_char", _get(b"G(T / HTTP/1.1")),
    Case("method_empty", _get(b" / HTTP/1.1")),
    Case("double_space_after_method", _get(b"GET  / HTTP/1.1")),
    Case("tab_separator", _get(b"GET\t/ HTTP/1.1")),
    Case("trailing_space_after_version", _get(b"GET / HTTP/1.1 ")),
    Case("leading_empty_line", b"\r\n" + _get()),
    Case("missing_version", _get(b"GET /")),
    Case("http_0_9", b"GET /\r\n\r\n"),
    Case("method_only", b"GET\r\n\r\n"),
    Case("http_2_0_on_h1", _get(b"GET / HTTP/2.0")),
    Case("http_1_2", _get(b"GET / HTTP/1.2")),
    Case("http_version_lowercase", _get(b"GET / http/1.1")),
    Case("http_version_two_digits", _get(b"GET / HTTP/11.1")),
    Case("h2_preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    Case("absolute_form", _get(b"GET http://a/x HTTP/1.1")),
    Case("absolute_form_host_mismatch", _get(b"GET http://b/x HTTP/1.1")),
    Case("absolute_form_no_host", b"GET http://a/x HTTP/1.1\r\n\r\n"),
    Case("absolute_form_host_case", _get(b"GET http://A/x HTTP/1.1")),
    Case("absolute_form_default_port", _get(b"GET http://a:80/x HTTP/1.1")),
    Case("absolute_form_other_port", _get(b"GET http://a:81/x HTTP/1.1")),
    Case("absolute_form_userinfo", _get(b"GET http://u@a/x HTTP/1.1")),
    Case("absolute_form_userinfo_mismatch", _get(b"GET http://u@b/x HTTP/1.1")),
    Case("absolute_form_https_mismatch", _get(b"GET https://b/x HTTP/1.1")),
    Case("absolute_form_query_no_path", _get(b"GET http://a?x HTTP/1.1")),
    Case("absolute_form_empty_host_header", b"GET http://a/x HTTP/1.1\r\nHost:\r\n\r\n"),
    Case("absolute_form_http10_mismatch", _get(b"GET http://b/x HTTP/1.0")),
    Case("relative_no_slash", _get(b"GET x HTTP/1.1")),
    Case("double_slash_path", _get(b"GET //b/x HTTP/1.1")),
    Case("asterisk_options", _get(b"OPTIONS * HTTP/1.1")),
    Case("asterisk_get", _get(b"GET * HTTP/1.1")),
    Case("connect_authority", b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"),
    Case("connect_origin_form", _get(b"CONNECT / HTTP/1.1")),
    Case("uri_8k", _get(b"GET /" + b"u" * 8000 + b" HTTP/1.1")),
    Case("uri_huge", _get(b"GET /" + b"u" * 17000 + b" HTTP/1.1")),
    Case("uri_space_inside", _get(b"GET /a b HTTP/1.1")),
    Case("uri_high_byte", _get(b"GET /caf\xe9 HTTP/1.1")),
    Case("uri_ctl_char", _get(b"GET /a\x01b HTTP/1.1")),
    Case("uri_del_char", _get(b"GET /a\x7fb HTTP/1.1")),
    Case("uri_fragment", _get(b"GET /a#frag HTTP/1.1")),
    Case("uri_fragment_after_query", _get(b"GET /a?b#c HTTP/1.1")),
    Case("uri_encoded_hash", _get(b"GET /a%23b HTTP/1.1")),
    Case("uri_space_in_query", _get(b"GET /?a=b c HTTP/1.1")),
    Case("uri_backslash", _get(b"GET /a\\b HTTP/1.1")),
    Case("uri_percent_invalid", _get(b"GET /%zz HTTP/1.1")),
    Case("two_spaces_before_version", _get(b"GET /  HTTP/1.1")),
    Case("uri_nul", _get(b"GET /a\x00b HTTP/1.1")),
    Case("empty_request", b"\r\n\r\n"),
    # ---------------------------------------------------------------- headers
    Case("obs_fold_space", _get(headers=H + b"X-A: b\r\n c\r\n")),
    Case("obs_fold_tab", _get(headers=H + b"X-A: b\r\n\tc\r\n")),
    Case("bare_cr_in_value", _get(headers=H + b"X-A: b\rc\r\n")),
    Case("bare_cr_line_end", b"GET / HTTP/1.1\r" + H + b"\r\n"),
    Case("bare_lf_line_ends", b"GET / HTTP/1.1\nHost: a\nX-A: b\n\n"),
    Case("bare_lf_one_header", b"GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n"),
    Case("nul_in_value", _get(headers=H + b"X-A: b\x00c\r\n")),
    Case("nul_in_name", _get(headers=H + b"X-\x00A: b\r\n")),
    Case("ctl_in_value", _get(headers=H + b"X-A: b\x01c\r\n")),
    Case("del_in_value", _get(headers=H + b"X-A: b\x7fc\r\n")),
    Case("high_byte_in_value", _get(headers=H + b"X-A: caf\xe9\r\n")),
    Case("tab_in_value", _get(headers=H + b"X-A: b\tc\r\n")),
    Case("space_before_colon", _get(headers=H + b"X-A : b\r\n")),
    Case("tab_before_colon", _get(headers=H + b"X-A\t: b\r\n")),
    Case("space_before_colon_host", b"GET / HTTP/1.1\r\nHost : a\r\n\r\n"),
    Case("empty_header_name", _get(headers=H + b": b\r\n")),
    Case("name_with_space", _get(headers=H + b"X A: b\r\n")),
    Case("name_with_at", _get(headers=H + b"X@A: b\r\n")),
    Case("name_with_high_byte", _get(headers=H + b"X-\xe9: b\r\n")),
    Case("name_with_slash", _get(headers=H + b"X/A: b\r\n")),
    Case("header_without_colon", _get(headers=H + b"NoColon\r\n")),
    Case("first_header_leading_space", b"GET / HTTP/1.1\r\n Host: a\r\n\r\n"),
    Case("value_leading_trailing_ows", _get(headers=H + b"X-A: \t b \t\r\n")),
    Case("empty_value", _get(headers=H + b"X-A:\r\n")),
    Case("headers_100", _get(headers=_many(100))),
    Case("headers_101", _get(headers=_many(101))),
    Case("headers_102", _get(headers=_many(102))),
    Case("headers_300", _get(headers=_many(300))),
    Case("head_14000", _head_of(14000)),
    Case("head_15300", _head_of(15300)),
    Case("head_15500", _head_of(15500)),
    Case("head_16300", _head_of(16300)),
    Case("head_over_bufsize", _head_of(17000)),
    Case("ows_padding_one_read", _get(headers=H + b"X-A:" + b" " * 17000 + b"v\r\n")),
    Case("duplicate_host_differ", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    Case("duplicate_host_same", b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"),
    Case("duplicate_host_case", b"GET / HTTP/1.1\r\nHost: a\r\nHost: A\r\n\r\n"),
    Case("duplicate_host_port", b"GET / HTTP/1.1\r\nHost: a\r\nHost: a:80\r\n\r\n"),
    Case("duplicate_host_empty_first", b"GET / HTTP/1.1\r\nHost:\r\nHost: a\r\n\r\n"),
    Case("three_hosts_last_differs",
         b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\nHost: b\r\n\r\n"),
    Case("host_list", b"GET / HTTP/1.1\r\nHost: a, b\r\n\r\n"),
    Case("missing_host_http11", b"GET / HTTP/1.1\r\n\r\n"),
    Case("empty_host", b"GET / HTTP/1.1\r\nHost:\r\n\r\n"),
    Case("host_with_space", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),
    # ---------------------------------------------------------------- framing
    Case("post_cl", _post(b"Content-Length: 5\r\n", b"hello")),
    Case("post_chunked", _post(b"Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n")),
    Case("cl_and_te", _post(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                            b"0\r\n\r\n")),
    Case("te_and_cl", _post(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                            b"0\r\n\r\n")),
    Case("te_chunked_identity", _post(b"Transfer-Encoding: chunked, identity\r\n",
                                      b"0\r\n\r\n")),
    Case("te_identity_chunked", _post(b"Transfer-Encoding: identity, chunked\r\n",
                                      b"0\r\n\r\n")),
    Case("te_gzip_chunked", _post(b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n")),
    Case("te_chunked_gzip", _post(b"Transfer-Encoding: chunked, gzip\r\n", b"0\r\n\r\n")),
    Case("te_chunked_twice", _post(b"Transfer-Encoding: chunked, chunked\r\n", b"0\r\n\r\n")),
    Case("te_two_lines", _post(b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
                               b"0\r\n\r\n")),
    Case("te_two_lines_chunked_first", _post(
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n", b"0\r\n\r\n")),
    Case("te_two_lines_chunked", _post(
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n")),
    Case("te_chunked_trailing_comma", _post(b"Transfer-Encoding: chunked,\r\n", b"0\r\n\r\n")),
    Case("te_chunked_param", _post(b"Transfer-Encoding: chunked;q=1\r\n", b"0\r\n\r\n")),
    Case("te_http10_gzip_chunked", b"POST /p HTTP/1.0\r\nTransfer-Encoding: gzip, chunked\r\n"
                                   b"\r\n0\r\n\r\n"),
    Case("te_xchunked", _post(b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n")),
    Case("te_chunkedx", _post(b"Transfer-Encoding: chunkedx\r\n", b"0\r\n\r\n")),
    Case("te_uppercase", _post(b"Transfer-Encoding: CHUNKED\r\n", b"0\r\n\r\n")),
    Case("te_ows", _post(b"Transfer-Encoding:  chunked \r\n", b"0\r\n\r\n")),
    Case("te_empty", _post(b"Transfer-Encoding:\r\n", b"")),
    Case("te_gzip_only", _post(b"Transfer-Encoding: gzip\r\n", b"abc")),
    Case("te_vertical_tab", _post(b"Transfer-Encoding: chunked\x0b\r\n", b"0\r\n\r\n")),
    Case("te_http10", b"POST /p HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    Case("te_comma_empty", _post(b"Transfer-Encoding: , chunked\r\n", b"0\r\n\r\n")),
    Case("cl_duplicate_identical", _post(b"Content-Length: 5\r\nContent-Length: 5\r\n",
                                         b"hello")),
    Case("cl_list_identical", _post(b"Content-Length: 5, 5\r\n", b"hello")),
    Case("cl_differing", _post(b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!")),
    Case("cl_list_differing", _post(b"Content-Length: 5, 6\r\n", b"hello!")),
    Case("cl_plus_sign", _post(b"Content-Length: +5\r\n", b"hello")),
    Case("cl_minus_sign", _post(b"Content-Length: -5\r\n", b"hello")),
    Case("cl_leading_zeros", _post(b"Content-Length: 005\r\n", b"hello")),
    Case("cl_space_inside", _post(b"Content-Length: 5 5\r\n", b"hello")),
    Case("cl_trailing_space", _post(b"Content-Length: 5 \r\n", b"hello")),
    Case("cl_hex", _post(b"Content-Length: 0x5\r\n", b"hello")),
    Case("cl_empty", _post(b"Content-Length:\r\n", b"")),
    Case("cl_huge", _post(b"Content-Length: 99999999999999999999999\r\n", b"hello")),
    Case("cl_2pow63", _post(b"Content-Length: 9223372036854775808\r\n", b"hello")),
    Case("cl_2pow63_minus_1", _post(b"Content-Length: 9223372036854775807\r\n", b"hello")),
    Case("cl_1e19", _post(b"Content-Length: 10000000000000000000\r\n", b"hello")),
    Case("cl_2pow64_minus_1", _post(b"Content-Length: 18446744073709551615\r\n", b"hello")),
    Case("cl_smuggle_tail", _post(b"Content-Length: 5\r\n",
                                  b"helloGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"), 2),
    Case("chunk_size_overflow", _post(b"Transfer-Encoding: chunked\r\n",
                                      b"fffffffffffffffff1\r\nx\r\n0\r\n\r\n")),
    Case("chunk_size_negative", _post(b"Transfer-Encoding: chunked\r\n",
                                      b"-1\r\nx\r\n0\r\n\r\n")),
    Case("chunk_size_hex_prefix", _post(b"Transfer-Encoding: chunked\r\n",
                                        b"0x5\r\nhello\r\n0\r\n\r\n")),
    Case("chunk_size_trailing_space", _post(b"Transfer-Encoding: chunked\r\n",
                                            b"5 \r\nhello\r\n0\r\n\r\n")),
    Case("chunk_ext_ok", _post(b"Transfer-Encoding: chunked\r\n",
                               b"5;name=val\r\nhello\r\n0\r\n\r\n")),
    Case("chunk_ext_quoted", _post(b"Transfer-Encoding: chunked\r\n",
                                   b'5;n="v;x"\r\nhello\r\n0\r\n\r\n')),
    Case("chunk_ext_ctl", _post(b"Transfer-Encoding: chunked\r\n",
                                b"5;\x01\r\nhello\r\n0\r\n\r\n")),
    Case("chunk_ext_bare_lf", _post(b"Transfer-Encoding: chunked\r\n",
                                    b"5;a\nhello\r\n0\r\n\r\n")),
    Case("chunk_data_no_crlf", _post(b"Transfer-Encoding: chunked\r\n",
                                     b"5\r\nhello0\r\n\r\n")),
    Case("chunk_data_too_long", _post(b"Transfer-Encoding: chunked\r\n",
                                      b"5\r\nhelloXX\r\n0\r\n\r\n")),
    Case("chunk_lf_only", _post(b"Transfer-Encoding: chunked\r\n",
                                b"5\nhello\n0\n\n")),
    Case("chunk_size_missing", _post(b"Transfer-Encoding: chunked\r\n",
                                     b"\r\nhello\r\n0\r\n\r\n")),
    Case("trailer_ok", _post(b"Transfer-Encoding: chunked\r\n",
                             b"5\r\nhello\r\n0\r\nX-T: v\r\n\r\n")),
    Case("trailer_content_length", _post(b"Transfer-Encoding: chunked\r\n",
                                         b"5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n")),
    Case("trailer_transfer_encoding", _post(
        b"Transfer-Encoding: chunked\r\n",
        b"5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n")),
    Case("trailer_host", _post(b"Transfer-Encoding: chunked\r\n",
                               b"5\r\nhello\r\n0\r\nHost: evil\r\n\r\n")),
    Case("trailer_bad_name", _post(b"Transfer-Encoding: chunked\r\n",
                                   b"5\r\nhello\r\n0\r\nBad Name: v\r\n\r\n")),
    Case("trailer_obs_fold", _post(b"Transfer-Encoding: chunked\r\n",
                                   b"5\r\nhello\r\n0\r\nX-T: v\r\n w\r\n\r\n")),
    Case("te_underscore_name", _post(b"Transfer_Encoding: chunked\r\nContent-Length: 5\r\n",
                                     b"hello")),
    Case("cl_zero_with_tail", _post(b"Content-Length: 0\r\n",
                                    b"GET /tail HTTP/1.1\r\nHost: a\r\n\r\n"), 2),
    Case("chunk_size_leading_zeros", _post(b"Transfer-Encoding: chunked\r\n",
                                           b"0005\r\nhello\r\n0\r\n\r\n")),
    Case("chunk_ext_space_before_semicolon", _post(b"Transfer-Encoding: chunked\r\n",
                                                   b"5 ;a=b\r\nhello\r\n0\r\n\r\n")),
    Case("chunk_last_with_ext", _post(b"Transfer-Encoding: chunked\r\n",
                                      b"5\r\nhello\r\n0;x=y\r\n\r\n")),
    Case("chunked_body_smuggle_tail", _post(
        b"Transfer-Encoding: chunked\r\n",
        b"0\r\n\r\nGET /tail HTTP/1.1\r\nHost: a\r\n\r\n"), 2),
    Case("get_with_cl_body", _get(headers=H + b"Content-Length: 3\r\n", body=b"abc")),
    # ---------------------------------------------------------------- pipelining
    Case("pipeline_two_valid", _get() + _get(b"GET /2 HTTP/1.1"), 2),
    Case("pipeline_valid_then_garbage", _get() + b"GARBAGE\r\n\r\n", 2),
    Case("pipeline_valid_then_cl_te", _get() + _post(
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"), 2),
    Case("pipeline_garbage_then_valid", b"GARBAGE\r\n\r\n" + _get(), 2),
    Case("pipeline_chunked_then_get", _post(b"Transfer-Encoding: chunked\r\n",
                                            b"0\r\n\r\n") + _get(b"GET /2 HTTP/1.1"), 2),
    # ---------------------------------------------------------------- Expect
    Case("expect_100_continue", _post(b"Expect: 100-continue\r\nContent-Length: 5\r\n",
                                      b"hello")),
    Case("expect_100_uppercase", _post(b"Expect: 100-Continue\r\nContent-Length: 5\r\n",
                                       b"hello")),
    Case("expect_unknown", _post(b"Expect: fancy\r\nContent-Length: 5\r\n", b"hello")),
    Case("expect_100_http10", b"POST /p HTTP/1.0\r\nExpect: 100-continue\r\n"
                              b"Content-Length: 5\r\n\r\nhello"),
    Case("expect_100_no_body", _get(headers=H + b"Expect: 100-continue\r\n")),
    # ---------------------------------------------------------------- Upgrade
    Case("ws_valid", _get(headers=H + WS + KEY)),
    Case("ws_no_key", _get(headers=H + WS)),
    Case("ws_key_short", _get(headers=H + WS + b"Sec-WebSocket-Key: tooshort\r\n")),
    Case("ws_key_25_chars", _get(headers=H + WS
                                 + b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==A\r\n")),
    Case("ws_key_not_base64", _get(headers=H + WS
                                   + b"Sec-WebSocket-Key: ************************\r\n")),
    Case("ws_two_keys", _get(headers=H + WS + KEY + KEY)),
    Case("ws_upgrade_without_connection", _get(
        headers=H + b"Upgrade: websocket\r\n" + KEY)),
    Case("ws_upgrade_uppercase", _get(
        headers=H + b"Connection: UPGRADE\r\nUpgrade: WebSocket\r\n" + KEY)),
    Case("h2c_upgrade", _get(headers=H + b"Connection: Upgrade, HTTP2-Settings\r\n"
                             b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n")),
    Case("connection_upgrade_no_upgrade", _get(headers=H + b"Connection: upgrade\r\n")),
    Case("upgrade_other_protocol", _get(headers=H + b"Connection: upgrade\r\n"
                                        b"Upgrade: foo/1\r\n")),
    Case("ws_with_cl_body", _get(headers=H + WS + KEY + b"Content-Length: %d\r\n" % len(SMUGGLE),
                                 body=SMUGGLE)),
    Case("ws_with_chunked_body", _get(
        headers=H + WS + KEY + b"Transfer-Encoding: chunked\r\n",
        body=b"%x\r\n" % len(SMUGGLE) + SMUGGLE + b"\r\n0\r\n\r\n")),
    Case("h2c_post_with_body", b"POST /p HTTP/1.1\r\n" + H
         + b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
         b"HTTP2-Settings: AAMAAABkAAQAAP__\r\nContent-Length: 5\r\n\r\nhello"),
    Case("connection_close_keepalive", _get(headers=H + b"Connection: close, keep-alive\r\n")),
]

CASES: tuple[Case, ...] = tuple(_C)
BY_NAME: dict[str, Case] = {c.name: c for c in CASES}
assert len(BY_NAME) == len(CASES), "duplicate case names"
