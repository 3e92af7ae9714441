"""Unit tests for lb.http.h1 (I/O-free) and for what httptools rejects by itself."""

from __future__ import annotations

import base64
import hashlib
import os
import platform
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httptools
import pytest

from lb.http import h1

ROOT = Path(__file__).resolve().parents[1]


class _Sink:
    def __init__(self) -> None:
        self.complete = False

    def on_headers_complete(self) -> None:
        self.complete = True


# Inputs the issue requires to be refused with 400. The ones llhttp rejects while
# parsing never reach on_headers_complete; the rest are caught by h1.check_request.
PARSER_REJECTS = {
    "cl_and_te": b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    "dup_cl_differ": b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    "te_not_last_chunked": b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
    "bare_cr": b"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n",
    "obs_fold": b"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n",
    "nul": b"GET / HTTP/1.1\r\nA: b\x00c\r\n\r\n",
    "bad_line": b"GARBAGE\r\n\r\n",
    "bad_name": b"GET / HTTP/1.1\r\nA b: c\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(PARSER_REJECTS))
def test_httptools_rejects(name: str) -> None:
    sink = _Sink()
    p = httptools.HttpRequestParser(sink)
    with pytest.raises(httptools.HttpParserError):
        p.feed_data(PARSER_REJECTS[name])
    assert not sink.complete


def test_te_without_chunked_passes_headers_complete_so_h1_checks_it() -> None:
    sink = _Sink()
    p = httptools.HttpRequestParser(sink)
    with pytest.raises(httptools.HttpParserError):
        p.feed_data(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nab")
    assert sink.complete  # llhttp complains only after the head: h1 must catch it first
    assert h1.check_request(b"1.1", [(b"transfer-encoding", b"gzip")]) == "transfer_encoding"


def test_check_request() -> None:
    assert h1.check_request(b"1.1", [(b"host", b"a")]) is None
    assert h1.check_request(b"2.0", []) == "version"
    assert h1.check_request(b"0.9", []) == "version"
    assert h1.check_request(b"1.1", [(b"transfer-encoding", b"chunked")]) is None
    assert h1.check_request(b"1.1", [(b"a", b"b")] * 102) == "too_many_headers"


def test_tokens_and_close() -> None:
    hs = [(b"connection", b"Keep-Alive, Upgrade"), (b"connection", b"x")]
    assert h1.tokens(hs, b"connection") == [b"keep-alive", b"upgrade", b"x"]
    assert h1.client_wants_close(b"1.1", [b"close"])
    assert not h1.client_wants_close(b"1.1", [])
    assert h1.client_wants_close(b"1.0", [])
    assert not h1.client_wants_close(b"1.0", [b"keep-alive"])


def test_conn_value() -> None:
    assert h1.conn_value([b"keep-alive"], close=False, keep_alive=False) is None
    assert h1.conn_value([], close=True, keep_alive=False) == b"close"
    assert h1.conn_value([], close=False, keep_alive=True) == b"keep-alive"
    # an upgrade keeps its token even when the connection would close (spec §8.1)
    assert h1.conn_value([b"upgrade", b"close"], close=True, keep_alive=False) == b"upgrade"


def test_upgrade_detection() -> None:
    hs = [(b"connection", b"Upgrade"), (b"upgrade", b"WebSocket")]
    assert h1.is_upgrade([b"upgrade"], hs)
    assert h1.is_websocket(hs)
    assert not h1.is_upgrade([], [(b"upgrade", b"websocket")])


def test_ws_accept_rfc6455_example() -> None:
    assert h1.ws_accept(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.fixture(params=[True, False], ids=["sha-ni", "portable"])
def sha1_block(request: pytest.FixtureRequest) -> Iterator[bool]:
    """Compiled, ws_accept's SHA-1 block with the CPU's SHA extensions (where it has
    them) and the portable one; the default choice is restored after the test."""
    yield h1._use_sha1_ni(request.param)
    h1._use_sha1_ni(True)


def test_ws_accept_matches_hashlib_for_any_key(sha1_block: bool) -> None:
    """The compiled SHA-1 and base64 (h1.pxd) against hashlib: keys of every length
    around the one- and two-block limits and past them (hashlib's path), random bytes
    with whitespace around them (stripped first, as bytes.strip()); once with each
    SHA-1 block."""
    rnd = random.Random(6455)
    keys = [b"", b" ", b"\t\r\n\x0b\x0c ", b"dGhlIHNhbXBsZSBub25jZQ=="]
    for n in range(0, 140):
        for _ in range(3):
            body = bytes(rnd.randrange(256) for _ in range(n))
            pad = bytes(rnd.choice(b" \t\r\n\x0b\x0c") for _ in range(rnd.randrange(3)))
            keys.append(pad + body + pad[::-1])
    for key in keys:
        digest = hashlib.sha1(key.strip() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
        assert h1.ws_accept(key) == base64.b64encode(digest), key


def test_sha1_extensions_used_where_the_cpu_has_them() -> None:
    """ws_accept runs the SHA-NI block when the build is compiled for x86-64 and the
    CPU lists the sha_ni flag (so the test above checks that block here)."""
    try:
        flags = open("/proc/cpuinfo").read().split()
    except OSError:
        pytest.skip("no /proc/cpuinfo")
    compiled = not str(h1.__file__).endswith(".py")
    want = compiled and platform.machine() == "x86_64" and "sha_ni" in flags
    assert h1._use_sha1_ni(True) is bool(want)
    assert h1._use_sha1_ni(False) is False
    h1._use_sha1_ni(True)


@pytest.mark.parametrize("key,ok", [
    (b"dGhlIHNhbXBsZSBub25jZQ==", True),
    (None, False), (b"", False), (b"short", False),
    (b"dGhlIHNhbXBsZSBub25jZQ=!", False),
    (b"AAAAAAAAAAAAAAAAAAAAAAAAAAAA", False),
])
def test_ws_key_valid(key: bytes | None, ok: bool) -> None:
    assert h1.ws_key_valid(key) is ok


def test_check_101() -> None:
    key = b"dGhlIHNhbXBsZSBub25jZQ=="
    req = [(b"sec-websocket-key", key)]
    good = [(b"connection", b"Upgrade"), (b"sec-websocket-accept", h1.ws_accept(key))]
    assert h1.check_101(req, good, websocket=True) is None
    assert h1.check_101(req, good[1:], websocket=True) == "no_connection_upgrade"
    bad = [(b"connection", b"upgrade"), (b"sec-websocket-accept", b"nope")]
    assert h1.check_101(req, bad, websocket=True) == "bad_accept"
    assert h1.check_101(req, [(b"connection", b"upgrade")], websocket=True) == "bad_accept"
    assert h1.check_101([], [(b"connection", b"upgrade")], websocket=False) is None


def test_forwardfor_variants() -> None:
    rule = h1.ForwardForRule("X-Forwarded-For", None, False)
    hs: list[tuple[bytes, bytes]] = [(b"x-forwarded-for", b"1.2.3.4")]
    rule.apply(hs, "127.0.0.1")
    assert hs == [(b"x-forwarded-for", b"1.2.3.4"), (b"x-forwarded-for", b"127.0.0.1")]
    exc = h1.ForwardForRule("x-forwarded-for", "127.0.0.0/8", False)
    hs = []
    exc.apply(hs, "127.0.0.1")
    assert hs == []
    exc.apply(hs, "10.0.0.1")
    assert hs == [(b"x-forwarded-for", b"10.0.0.1")]
    ifn = h1.ForwardForRule("X-Real-IP", None, True)
    hs = [(b"x-real-ip", b"9.9.9.9")]
    ifn.apply(hs, "127.0.0.1")
    assert hs == [(b"x-real-ip", b"9.9.9.9")]


def test_merge_forwardfor() -> None:
    from lb.config.model import ForwardFor

    r = h1.merge_forwardfor(ForwardFor(header="x-fe"), ForwardFor(header="x-be"))
    assert r is not None and r.header == b"x-be"
    r = h1.merge_forwardfor(ForwardFor(if_none=True), ForwardFor(if_none=False))
    assert r is not None and not r.if_none
    assert h1.merge_forwardfor(None, None) is None


def test_serialisation_lowercases_and_replaces_connection() -> None:
    head = h1.request_head(b"GET", b"/x", b"1.1",
                           [(b"host", b"a"), (b"connection", b"keep-alive")], b"close")
    assert head == b"GET /x HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n"
    res = h1.response_head(200, b"OK", [(b"content-length", b"0")], None)
    assert res == b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


# Heads that reach both serialisers of h1._head: the C one of the compiled build
# (h1.pxd `_head_c`) and the Python one it falls back to for items lb does not build
# (a header pair as a list) and that pure Python runs for all.
HEADS: list[tuple[str, tuple[Any, ...]]] = [
    ("req", (b"GET", b"/x?y=1", b"1.1", [(b"host", b"a"), (b"connection", b"close"),
                                          (b"x-empty", b""), (b"connection", b"te")],
             b"keep-alive")),
    ("req", (b"POST", b"*", b"1.0", [], None)),
    ("req", (b"GET", b"/", b"1.1", [(b"host", b"h")], b"")),
    ("res", (101, b"Switching Protocols", [(b"upgrade", b"websocket")], b"upgrade")),
    ("res", (200, b"OK", [(b"set-cookie", b"SRV=c1; path=/"), (b"x", b"v" * 5000)], None)),
    ("res", (404, b"Not Here", [[b"listed", b"pair"], (b"connection", b"x")], b"close")),
    ("res", (599, b"", [(b"connectionx", b"kept"), (b"Connection", b"kept too")], None)),
]

_SERIALISE = """
import sys
from lb.http import h1
for kind, args in eval(sys.stdin.read()):
    fn = h1.request_head if kind == "req" else h1.response_head
    print(repr(fn(*args)))
"""


def _serialised(env: dict[str, str]) -> list[str]:
    out = subprocess.run([sys.executable, "-c", _SERIALISE], input=repr(HEADS),
                         capture_output=True, text=True, timeout=60, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT), **env})
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_compiled_and_pure_serialisers_write_the_same_heads() -> None:
    compiled = _serialised({})
    assert compiled == _serialised({"LB_PURE_PYTHON": "1"})
    first = eval(compiled[0])  # noqa: S307 (our own repr)
    assert first == (b"GET /x?y=1 HTTP/1.1\r\nhost: a\r\nx-empty: \r\n"
                     b"connection: keep-alive\r\n\r\n")
    assert eval(compiled[2]) == b"GET / HTTP/1.1\r\nhost: h\r\n\r\n"  # noqa: S307
    assert eval(compiled[5]) == (b"HTTP/1.1 404 Not Here\r\nlisted: pair\r\n"  # noqa: S307
                                 b"connection: close\r\n\r\n")
    assert b"connectionx: kept\r\nConnection: kept too\r\n" in eval(compiled[6])  # noqa: S307
    assert len(eval(compiled[4])) > 5000  # noqa: S307


def test_join_tail_is_head_plus_the_rest_of_a_read() -> None:
    """Compiled (h1.pxd, one allocation) and pure Python give head + data[off:]."""
    from lb.http import h1 as mod
    compiled = mod.__file__.endswith(".so")
    for head, data in ((b"HTTP/1.1 200 OK\r\n\r\n", b"HEAD\r\n\r\nbody"), (b"", b""),
                       (b"h", b"x" * 70000)):
        for off in range(0, len(data) + 1, max(1, len(data) // 7)):
            assert mod.join_tail(head, data, off) == head + data[off:]
        assert mod.join_tail(head, data, len(data)) == head
    if compiled:  # an offset outside the read is refused, never a read past it
        for off in (-1, 5):
            with pytest.raises(ValueError):
                mod.join_tail(b"h", b"abcd", off)


def test_chunk_and_trailers() -> None:
    assert b"".join(h1.chunk(b"abc")) == b"3\r\nabc\r\n"
    assert h1.trailers_block([(b"x-t", b"1")]) == b"0\r\nx-t: 1\r\n\r\n"
    assert h1.trailers_block([]) == b"0\r\n\r\n"


def test_has_bad_value() -> None:
    assert h1.has_bad_value(b"a\r\nb")
    assert h1.has_bad_value(b"a\x00")
    assert not h1.has_bad_value(b"fine value")
