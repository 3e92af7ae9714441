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


@pytest.fixture(scope="module")
def outcomes() -> dict[str, dict[str, Any]]:
    with RecordingBackend() as be:
        cfg = CONFIG.format(fe="@@fe@@", be=be.port)
        with LbThread(cfg) as lb:
            return {c.name: run_case(lb.ports["fe"], be, c.data, c.expect) for c in CASES}


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
            # same status class; 422 where HAProxy gives 422
            assert ours["statuses"][:1] == ha["statuses"][:1], (ours, ha)
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
