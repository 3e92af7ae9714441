"""lb is at least as strict as HAProxy 2.6 on every request of the conformance corpus.

The corpus (tests/conformance_corpus.py) was sent to HAProxy 2.6.12 by
tools/conformance/run.py; what happened is recorded in tests/data/conformance_haproxy.json
(statuses, close, what the recording backend received). Here the same bytes go to lb
alone, in front of the same recording backend, and for every case:

- HAProxy refused (nothing reached the server) -> lb refuses too, nothing reaches the
  server, and the client gets an error status or a close;
- HAProxy forwarded -> lb forwards an equivalent request (same request lines, same
  headers apart from the hop-by-hop Connection header, same statuses back), unless the
  case is in ``STRICTER`` below, where lb deliberately refuses (reason given; the
  table is also in docs/conformance.md) or ``NORMALISED`` (forwarded, differently
  spelled).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.conformance_corpus import BY_NAME, CASES
from tests.lbproc import LbThread
from tools.conformance.probe import CONFIG, RecordingBackend, refused, run_case

DATA = os.path.join(os.path.dirname(__file__), "data", "conformance_haproxy.json")

_LLHTTP = "llhttp (httptools, strict mode) refuses it before lb sees the head"

#: HAProxy forwards these, lb refuses them on purpose.
STRICTER: dict[str, str] = {
    "method_lowercase": "methods are case-sensitive tokens; llhttp knows only registered "
                        "methods (all IANA ones, WebDAV and PURGE included)",
    "method_unknown_token": "unregistered method: " + _LLHTTP,
    "tab_separator": "RFC 9112 separates the request line with single spaces; " + _LLHTTP,
    "http_2_0_on_h1": "only HTTP/1.0 and 1.1 on an HTTP/1 connection (HAProxy rewrites "
                      "the version to 1.1)",
    "http_1_2": "only HTTP/1.0 and 1.1 are spoken (HAProxy rewrites it to 1.1)",
    "connect_authority": "lb has no CONNECT tunnel: CONNECT gets 400 "
                         "(tests/test_proxy_malformed.py)",
    "uri_del_char": "DEL is not a URI character; " + _LLHTTP,
    "obs_fold_space": "obs-fold is refused as issue #3 asks (HAProxy 2.6 unfolds it)",
    "obs_fold_tab": "obs-fold is refused as issue #3 asks (HAProxy 2.6 unfolds it)",
    "bare_lf_line_ends": "line ends must be CRLF; " + _LLHTTP,
    "bare_lf_one_header": "line ends must be CRLF; " + _LLHTTP,
    "nul_in_value": "NUL in a header value is refused as issue #3 asks (HAProxy forwards)",
    "ctl_in_value": "control bytes are not field-content (RFC 9110 5.5); " + _LLHTTP,
    "del_in_value": "DEL is not field-content (RFC 9110 5.5); " + _LLHTTP,
    "cl_and_te": "Content-Length with Transfer-Encoding is a smuggling shape: 400 as "
                 "issue #3 asks (HAProxy drops the Content-Length and forwards)",
    "te_and_cl": "same as cl_and_te, other header order",
    "pipeline_valid_then_cl_te": "the second request is cl_and_te: 400 after the first "
                                 "response",
    "te_chunked_trailing_comma": "an empty list element after chunked: chunked is not "
                                 "the last coding",
    "cl_duplicate_identical": "duplicate Content-Length, even equal: " + _LLHTTP,
    "cl_list_identical": "a Content-Length list, even equal: " + _LLHTTP,
    "cl_1e19": "Content-Length from 2**63 is refused; HAProxy 2.6.12 refuses 2**63 but "
               "lets some larger values through",
    "cl_2pow64_minus_1": "same as cl_1e19",
    "chunk_size_trailing_space": "chunk-size grammar has no whitespace; " + _LLHTTP,
    "chunk_ext_space_before_semicolon": "whitespace before a chunk extension (RFC 9112 "
                                        "allows it, no client sends it); " + _LLHTTP,
    "chunk_ext_ctl": "control byte in a chunk extension; " + _LLHTTP,
    "chunk_ext_bare_lf": "chunk line not ended by CRLF; " + _LLHTTP,
    "chunk_lf_only": "chunk lines not ended by CRLF; " + _LLHTTP,
    "trailer_content_length": "framing fields are forbidden in trailers; " + _LLHTTP,
    "trailer_transfer_encoding": "framing fields are forbidden in trailers; " + _LLHTTP,
    "trailer_bad_name": "invalid trailer name; " + _LLHTTP + " (HAProxy's own answer "
                        "depends on timing: 400 or forwarded)",
    "trailer_obs_fold": "obs-fold in trailers; " + _LLHTTP,
    "ws_key_not_base64": "a Sec-WebSocket-Key must be base64 of 16 bytes (HAProxy checks "
                         "only its length)",
    "ws_with_chunked_body": "llhttp leaves an upgrade request's body unparsed; lb forwards "
                            "a Content-Length one itself but refuses a chunked one rather "
                            "than misframe it",
    "ws_two_keys": "two Sec-WebSocket-Key headers: 400 (the seeds deny unless "
                   "hdr_cnt(Sec-WebSocket-Key) eq 1)",
}

#: Forwarded by both, spelled differently by lb.
NORMALISED: dict[str, str] = {
    "absolute_form_default_port": "HAProxy drops the scheme's default port from an "
                                  "absolute-form URI; lb forwards the URI as received",
}


#: HAProxy refuses these, lb forwards them: known gaps, each with why it is harmless.
LENIENT: dict[str, str] = {
    "ows_padding_one_read": "a head over tune.bufsize only through the leading "
                            "whitespace of a value, arriving in one read: llhttp drops "
                            "that whitespace unseen, so lb forwards the normalised head "
                            "(`x-a: v`, a few bytes). Across reads it is refused "
                            "(tests/test_limits.py)",
}


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    with open(DATA) as f:
        return json.load(f)


def _run_lane(cases: list[Any]) -> dict[str, dict[str, Any]]:
    with RecordingBackend() as be:
        cfg = CONFIG.format(fe="@@fe@@", be=be.port)
        with LbThread(cfg) as lb:
            return {c.name: run_case(lb.ports["fe"], be, c.data, c.expect) for c in cases}


@pytest.fixture(scope="module")
def outcomes() -> dict[str, dict[str, Any]]:
    """Each case waits for quiet on its own backend, so the corpus runs in four lanes,
    each an lb in front of its own recording backend (a case's bytes reach only its
    lane's backend)."""
    lanes = 4
    with ThreadPoolExecutor(lanes) as pool:
        parts = pool.map(_run_lane, [CASES[i::lanes] for i in range(lanes)])
    return {name: out for part in parts for name, out in part.items()}


def test_recording_matches_corpus(recorded: dict[str, Any]) -> None:
    assert recorded["haproxy_version"].startswith("HAProxy version 2.6")
    assert recorded["date"]
    assert set(recorded["cases"]) == set(BY_NAME), "rerun tools/conformance/run.py " \
        "--write-haproxy after changing the corpus"
    assert len(CASES) >= 80
    for name in list(STRICTER) + list(NORMALISED) + list(LENIENT):
        assert name in BY_NAME, name


def _request_view(req: dict[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    return req["line"], sorted((n, v) for n, v in req["headers"] if n != "connection")


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_at_least_as_strict_as_haproxy(name: str, recorded: dict[str, Any],
                                       outcomes: dict[str, dict[str, Any]]) -> None:
    ha = recorded["cases"][name]
    ours = outcomes[name]
    if name in LENIENT:
        assert refused(ha)
        assert [r["headers"] for r in ours["backend"]] == [[["host", "a"], ["x-a", "v"]]]
        return
    if name in STRICTER and BY_NAME[name].expect > 1:
        # pipelined: the requests before the refused one are served, then an error
        assert len(ours["backend"]) < len(ha["backend"]), ours
        assert ours["statuses"][-1] >= 400, ours
        return
    if refused(ha) or name in STRICTER:
        assert ours["backend_bytes"] == 0, ours["backend"]
        assert refused(ours), ours
        if ha["statuses"] and ha["statuses"][0] >= 400 and name not in STRICTER:
            # the same answer, byte for byte (the parser's 400 / 422 pages)
            assert ours["statuses"][:1] == ha["statuses"][:1], (ours, ha)
            assert ours["response_head"] == ha["response_head"]
        return
    assert not ours["backend_errors"], ours["backend_errors"]
    assert ours["statuses"] == ha["statuses"], (ours, ha)
    assert len(ours["backend"]) == len(ha["backend"]), (ours["backend"], ha["backend"])
    if name in NORMALISED:
        return
    for mine, theirs in zip(ours["backend"], ha["backend"], strict=True):
        assert _request_view(mine) == _request_view(theirs)


def test_no_exception_is_stale(recorded: dict[str, Any]) -> None:
    """Every documented difference is still a difference (HAProxy forwarded it)."""
    for name in STRICTER:
        ha = recorded["cases"][name]
        if name == "trailer_bad_name":
            continue  # HAProxy's answer depends on timing (see STRICTER)
        assert not refused(ha), name
    for name in NORMALISED:
        assert not refused(recorded["cases"][name]), name


# ------------------------------------------------------------------ the pure checks


@pytest.mark.parametrize("values,status", [
    ([b"chunked"], 0), ([b"Chunked"], 0), ([b" chunked\t"], 0),
    ([b"gzip, chunked"], 422), ([b", chunked"], 422), ([b"gzip", b"chunked"], 422),
    ([b"chunked, gzip"], 400), ([b"chunked, chunked"], 400), ([b"chunked", b"chunked"], 400),
    ([b"chunked,"], 400), ([b"gzip"], 400), ([b""], 400), ([b"chunked;q=1"], 400),
    ([b"xchunked"], 400),
])
def test_te_status(values: list[bytes], status: int) -> None:
    from lb.http import h1

    assert h1.te_status(values) == status


@pytest.mark.parametrize("url,hosts,conflict", [
    (b"/", [b"a"], False), (b"/", [b"a", b"A "], False), (b"/", [b"a", b"b"], True),
    (b"/", [b"a", b"a:80"], True), (b"/", [b"", b"a"], True),
    (b"http://a/x", [b"a"], False), (b"http://A/x", [b"a"], False),
    (b"http://a:80/x", [b"a"], False), (b"http://a/x", [b"a:80"], False),
    (b"https://a:443/x", [b"a"], False), (b"http://a:443/x", [b"a"], True),
    (b"http://a:81/x", [b"a"], True), (b"http://u@a/x", [b"a"], False),
    (b"http://u@b/x", [b"a"], True), (b"http://a?x", [b"a"], True),
    (b"http://a", [b"a"], False), (b"http:///x", [b"a"], False),
    (b"http://a/x", [b""], True), (b"*", [b"a"], False), (b"ftp://b/", [b"a"], True),
])
def test_host_conflict(url: bytes, hosts: list[bytes], conflict: bool) -> None:
    from lb.http import h1

    assert h1.host_conflict(url, hosts) is conflict


# ------------------------------------------------------------------ responses

#: raw response -> the status HAProxy 2.6.12 gave the client (checked with the same
#: config, tools/conformance/probe.py CONFIG, one request per connection).
RESPONSES: dict[str, tuple[bytes, int]] = {
    "ok": (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200),
    "http10": (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 200),
    "te_gzip": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok", 502),
    "te_chunked_gzip": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"
                        b"2\r\nok\r\n0\r\n\r\n", 502),
    "te_gzip_chunked": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                        b"2\r\nok\r\n0\r\n\r\n", 502),
    "cl_differing": (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!",
                     502),
    "cl_plus": (b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok", 502),
    "cl_2pow63": (b"HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\nok", 502),
    "space_before_colon": (b"HTTP/1.1 200 OK\r\nX-A : b\r\nContent-Length: 2\r\n\r\nok", 502),
    "head_15500": (b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * 15500
                   + b"\r\nContent-Length: 2\r\n\r\nok", 502),
    "head_over_bufsize": (b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * 17000
                          + b"\r\nContent-Length: 2\r\n\r\nok", 502),
    "headers_102": (b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(101))
                    + b"Content-Length: 2\r\n\r\nok", 502),
    "garbage": (b"FOO\r\n\r\n", 502),
    "101_to_plain_request": (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", 502),
}
#: lb refuses (502) these responses HAProxy forwards, for the request-side reasons.
RESPONSES_STRICTER = {
    "cl_and_te": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"2\r\nok\r\n0\r\n\r\n",
    "cl_duplicate_identical": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2"
                              b"\r\n\r\nok",
    "obs_fold": b"HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\nContent-Length: 2\r\n\r\nok",
    "nul_in_value": b"HTTP/1.1 200 OK\r\nX-A: b\x00c\r\nContent-Length: 2\r\n\r\nok",
    "bare_lf": b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
}


class _Canned:
    """A backend answering each request head with `raw[0]` (then closing)."""

    def __init__(self) -> None:
        from tests.lbproc import RawBackend

        self.raw = [b""]
        self.rb = RawBackend(self._handle)

    def _handle(self, c: Any, rb: Any) -> None:
        if rb.recv_head(c):
            c.sendall(self.raw[0])
            c.settimeout(1.0)
            try:
                c.recv(1)
            except OSError:
                pass
        c.close()


@pytest.fixture(scope="module")
def canned() -> Any:
    cb = _Canned()
    with cb.rb:
        cfg = CONFIG.format(fe="@@fe@@", be=cb.rb.port)
        with LbThread(cfg) as lb:
            yield cb, lb.ports["fe"]


def _status_of(port: int) -> int:
    from tests.lbproc import raw_request

    r = raw_request(port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                    timeout=5)
    return int(r.split(b" ", 2)[1]) if r.startswith(b"HTTP/1.1 ") else 0


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_response_as_haproxy(name: str, canned: Any) -> None:
    cb, port = canned
    raw, status = RESPONSES[name]
    cb.raw[0] = raw
    assert _status_of(port) == status


@pytest.mark.parametrize("name", sorted(RESPONSES_STRICTER))
def test_response_stricter_than_haproxy(name: str, canned: Any) -> None:
    cb, port = canned
    cb.raw[0] = RESPONSES_STRICTER[name]
    assert _status_of(port) == 502


def test_unsolicited_response_never_reaches_the_next_request() -> None:
    """A server answers one request with two responses in one write. HAProxy 2.6.12
    drops that server connection; lb too: neither the next client nor a request
    pipelined behind the first ever receives the extra response."""
    from tests.lbproc import RawBackend, raw_request

    extra = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Evil: 1\r\n\r\nEVIL"

    def handler(c: Any, rb: Any) -> None:
        n = 0
        while rb.recv_head(c):
            n += 1
            if n == 1:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst" + extra)
            else:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext")

    with RawBackend(handler) as rb, LbThread(CONFIG.format(fe="@@fe@@", be=rb.port)) as lb:
        port = lb.ports["fe"]
        req = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
        last = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        a = raw_request(port, last, timeout=2)
        b = raw_request(port, last, timeout=2)
        both = raw_request(port, req + last, timeout=2)
    assert a.endswith(b"first") and b.endswith(b"first")
    assert b"EVIL" not in a + b + both
    assert both.startswith(b"HTTP/1.1 200 OK\r\n") and b"first" in both


def test_endless_response_head_is_cut_at_the_limit() -> None:
    """A server streaming header lines forever gets 502 once the head passes the
    limit; lb does not keep reading it."""
    from tests.lbproc import RawBackend, raw_request

    sent = [0]

    def handler(c: Any, rb: Any) -> None:
        rb.recv_head(c)
        c.sendall(b"HTTP/1.1 200 OK\r\n")
        c.settimeout(5)
        try:
            while sent[0] < 64 * 1024 * 1024:
                c.sendall(b"X-Long: " + b"l" * 1000 + b"\r\n")
                sent[0] += 1010
        except OSError:
            pass

    with RawBackend(handler) as rb, LbThread(CONFIG.format(fe="@@fe@@", be=rb.port)) as lb:
        r = raw_request(lb.ports["fe"], b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", timeout=5,
                        until_close=False)
    assert r.startswith(b"HTTP/1.1 502 ")
    assert sent[0] < 8 * 1024 * 1024


def test_endless_response_trailers_are_cut() -> None:
    """Response trailers share the head's budget: a server streaming trailer lines
    forever is cut off, not buffered."""
    from tests.lbproc import RawBackend

    sent = [0]

    def handler(c: Any, rb: Any) -> None:
        rb.recv_head(c)
        c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n")
        c.settimeout(5)
        try:
            while sent[0] < 64 * 1024 * 1024:
                c.sendall(b"X-T: " + b"t" * 1000 + b"\r\n")
                sent[0] += 1007
        except OSError:
            pass

    with RawBackend(handler) as rb, LbThread(CONFIG.format(fe="@@fe@@", be=rb.port)) as lb:
        import socket

        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=5) as c:
            c.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            got = b""
            try:
                while True:
                    d = c.recv(65536)
                    if not d:
                        break
                    got += d
            except OSError:
                pass
    assert got.startswith(b"HTTP/1.1 200") and not got.endswith(b"\r\n\r\n")
    assert sent[0] < 8 * 1024 * 1024
