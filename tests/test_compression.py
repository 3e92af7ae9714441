"""`compression`: lb and HAProxy 2.6.12 side by side, on one loopback backend.

Every case is a request sent to both proxies with the same config; the response
heads (less Date) must be the same line for line: which responses are compressed,
with what algorithm, and how the head is rewritten (Content-Length out, chunked in,
a weak ETag, `Vary` and `Content-Encoding` appended after what the response rules
added). The compressed bytes differ (HAProxy uses libslz, lb zlib), so bodies are
compared once decompressed. The counters (comp_in, comp_byp, comp_rsp) are
compared through each proxy's `show stat`.
"""

from __future__ import annotations

import socket
import threading
import time
import zlib
from contextlib import ExitStack
from typing import Any

import pytest

from lb.http import compress
from tests.lbproc import LbProcess, RawBackend, raw_request
from tests.stats_support import csv_rows, query
from tests.support_e2e import Haproxy

BODY = b"hello world, hello compression " * 80  # 2,480 bytes

# path -> (status line, extra headers, framing); every body is BODY unless said
RESPONSES: dict[str, tuple[bytes, list[bytes], str]] = {
    "/": (b"200 OK", [b"Content-Type: text/html; charset=utf-8"], "cl"),
    "/json": (b"200 OK", [b"Content-Type: application/json"], "cl"),
    "/none": (b"200 OK", [], "cl"),
    "/multi": (b"200 OK", [b"Content-Type: multipart/mixed; boundary=x"], "cl"),
    "/upper": (b"200 OK", [b"Content-Type: TEXT/Plain"], "cl"),
    "/etag": (b"200 OK", [b"Content-Type: text/html", b'ETag: "v1"'], "cl"),
    "/wetag": (b"200 OK", [b"Content-Type: text/html", b'ETag: W/"v1"'], "cl"),
    "/badetag": (b"200 OK", [b"Content-Type: text/html", b"ETag: v1"], "cl"),
    "/2etag": (b"200 OK", [b"Content-Type: text/html", b'ETag: "a"', b'ETag: "b"'], "cl"),
    "/notr": (b"200 OK", [b"Content-Type: text/html", b"Cache-Control: public, no-transform"],
              "cl"),
    "/enc": (b"200 OK", [b"Content-Type: text/html", b"Content-Encoding: br"], "cl"),
    "/empty": (b"200 OK", [b"Content-Type: text/html"], "empty"),
    "/vary": (b"200 OK", [b"Content-Type: text/html", b"Vary: Origin"], "cl"),
    "/chunked": (b"200 OK", [b"Content-Type: text/html", b'ETag: "c"'], "chunked"),
    "/nocl": (b"200 OK", [b"Content-Type: text/html"], "close"),
    "/201": (b"201 Created", [b"Content-Type: text/html"], "cl"),
    "/204": (b"204 No Content", [b"Content-Type: text/html"], "none"),
    "/404": (b"404 Not Found", [b"Content-Type: text/html"], "cl"),
    "/http10": (b"200 OK", [b"Content-Type: text/html"], "cl10"),
}


def _respond(c: socket.socket, rb: RawBackend, seen: list[bytes]) -> None:
    head = rb.recv_head(c)
    seen.append(head)
    path = head.split(b" ", 2)[1].decode()
    status, extra, framing = RESPONSES.get(path, RESPONSES["/"])
    version = b"HTTP/1.0 " if framing == "cl10" else b"HTTP/1.1 "
    lines = [version + status, *extra]
    body = b"" if framing in ("empty", "none") else BODY
    if framing in ("cl", "cl10", "empty"):
        lines.append(b"Content-Length: %d" % len(body))
    elif framing == "chunked":
        lines.append(b"Transfer-Encoding: chunked")
    lines.append(b"Connection: close")
    out = b"\r\n".join(lines) + b"\r\n\r\n"
    if framing == "chunked":
        third = len(BODY) // 3
        parts = [BODY[:third], BODY[third:2 * third], BODY[2 * third:]]
        out += b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\nX-T: 1\r\n\r\n"
    elif framing != "none":
        out += body
    c.sendall(out)
    c.close()


CONFIG = """
global
    stats socket ipv4@127.0.0.1:@@cli@@ level admin
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 2s
    compression algo gzip
frontend f
    bind 127.0.0.1:@@fe@@
    compression algo gzip deflate
    http-response set-header X-Comp %[res.comp]
    http-response set-header X-Algo %[res.comp_algo]
    use_backend b_id if { path_beg /id }
    use_backend b_off if { path_beg /off }
    default_backend b
backend b
    compression type text/html text/plain
    server s1 127.0.0.1:@@srv@@
backend b_id
    compression algo identity
    http-request set-path /
    server s1 127.0.0.1:@@srv@@
backend b_off
    compression algo deflate
    compression offload
    http-request set-path /
    server s1 127.0.0.1:@@srv@@
"""

# (path, Accept-Encoding or None, method, version, extra header lines)
CASES: list[tuple[str, str | None, str, str, str]] = [
    *((p, "gzip", "GET", "1.1", "") for p in RESPONSES),
    ("/", "gzip", "HEAD", "1.1", ""),
    ("/", "gzip", "GET", "1.0", ""),
    ("/", "deflate", "GET", "1.1", ""),
    ("/", "*", "GET", "1.1", ""),  # backend b inherits gzip from defaults: first in b's list
    ("/", "gzip;q=0.5, deflate", "GET", "1.1", ""),
    ("/", "gzip;q=0.5, deflate;q=0.4", "GET", "1.1", ""),
    ("/", "gzip;q=0, deflate;q=0", "GET", "1.1", ""),
    ("/", "gzip ; level=1 ; q=0.3, deflate;q=0.2", "GET", "1.1", ""),
    ("/", "identity", "GET", "1.1", ""),
    ("/", "br", "GET", "1.1", ""),
    ("/", "GZIP", "GET", "1.1", ""),
    ("/", "x-gzip, gzip", "GET", "1.1", ""),
    ("/", None, "GET", "1.1", ""),
    ("/", "gzip", "GET", "1.1", "User-Agent: Mozilla/4.0 (compatible)\r\n"),
    ("/", "gzip", "GET", "1.1",
     "User-Agent: Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 5.1)\r\n"),
    ("/", "gzip", "GET", "1.1", "Accept-Encoding: deflate\r\n"),
    ("/id", None, "GET", "1.1", ""),
    ("/id", "gzip", "GET", "1.1", ""),
    ("/off", "deflate", "GET", "1.1", ""),
    ("/off", "br", "GET", "1.1", ""),
]


def _exchange(port: int, path: str, ae: str | None, method: str, version: str,
              extra: str) -> tuple[list[str], bytes]:
    req = f"{method} {path} HTTP/{version}\r\nHost: x\r\n"
    if ae is not None:
        req += f"Accept-Encoding: {ae}\r\n"
    req += extra + "Connection: close\r\n\r\n"
    data = raw_request(port, req.encode(), timeout=10)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = [ln for ln in head.decode("latin-1").split("\r\n")
             if not ln.lower().startswith("date:")]
    return lines, body


def _dechunk(body: bytes) -> bytes:
    out = b""
    while True:
        size_line, _, rest = body.partition(b"\r\n")
        n = int(size_line.split(b";")[0], 16)
        if n == 0:
            return out
        out += rest[:n]
        body = rest[n + 2:]


def _decoded(lines: list[str], body: bytes, method: str) -> bytes:
    """The response body as the client application sees it."""
    low = [ln.lower() for ln in lines]
    if method == "HEAD":
        return body
    if "transfer-encoding: chunked" in low:
        body = _dechunk(body)
    for ln in low:
        if ln.startswith("content-encoding: gzip"):
            return zlib.decompress(body, 31)
        if ln.startswith("content-encoding: deflate"):
            return zlib.decompress(body)
    return body


def _stat(port: int) -> dict[tuple[str, str], dict[str, str]]:
    return csv_rows(query(("127.0.0.1", port), "show stat").strip())


def _run(kind: str, port_srv: int) -> tuple[list[Any], dict[tuple[str, str], dict[str, str]]]:
    cls = LbProcess if kind == "lb" else Haproxy
    kw: dict[str, Any] = {} if kind == "lb" else {"single_thread": True}
    with cls(CONFIG, ports={"srv": port_srv}, **kw) as px:
        got = []
        for case in CASES:
            lines, body = _exchange(px.ports["fe"], *case)
            got.append((case, lines, _decoded(lines, body, case[2])))
        return got, _stat(px.ports["cli"])


def test_compression_matches_haproxy_case_by_case() -> None:
    seen: list[bytes] = []
    with RawBackend(lambda c, rb: _respond(c, rb, seen)) as be:
        mine, my_stat = _run("lb", be.port)
        my_seen = list(seen)
        seen.clear()
        theirs, their_stat = _run("haproxy", be.port)
    for (case, lines, body), (_, h_lines, h_body) in zip(mine, theirs, strict=True):
        if case[0] == "/http10":
            # an HTTP/1.0 server's status line: lb answers as HTTP/1.1 and says how the
            # connection ends (docs/conformance.md); the rest must match
            assert lines[0] == "HTTP/1.1 200 OK" and h_lines[0] == "HTTP/1.0 200 OK"
            lines = [x for x in lines[1:] if x != "connection: close"]
            h_lines = h_lines[1:]
        assert lines == h_lines, case
        assert body == h_body, case
    compressed = {c[:2]: ls for c, ls, _ in mine if any("content-encoding: g" in x or
                                                     "content-encoding: d" in x
                                                     for x in ls)}
    # what both proxies did (recorded from HAProxy 2.6.12); backend b has only the
    # defaults' gzip (a backend's list wins over the frontend's), so no deflate there
    assert set(compressed) == {
        ("/", "gzip"), ("/upper", "gzip"), ("/etag", "gzip"), ("/wetag", "gzip"),
        ("/vary", "gzip"), ("/chunked", "gzip"), ("/201", "gzip"),
        ("/", "*"), ("/", "gzip;q=0.5, deflate"), ("/", "gzip;q=0.5, deflate;q=0.4"),
        ("/", "gzip ; level=1 ; q=0.3, deflate;q=0.2"), ("/", "GZIP"),
        ("/", "x-gzip, gzip"), ("/id", "gzip"), ("/off", "deflate")}
    one = compressed[("/", "gzip")]
    assert one[-4:] == ["transfer-encoding: chunked", "vary: Accept-Encoding",
                        "content-encoding: gzip", "connection: close"], one
    assert "x-comp: 1" in one and "x-algo: gzip" in one
    assert 'etag: W/"v1"' in compressed[("/etag", "gzip")]
    assert 'etag: W/"c"' in compressed[("/chunked", "gzip")]
    for case, _lines, body in mine:
        if case[2] != "HEAD" and case[0] not in ("/empty", "/204"):
            assert body == BODY, case
    assert len(my_seen) == len(CASES)
    # counters: what went into the compressor, what bypassed it (identity), how many
    # responses; comp_out is smaller than comp_in and differs between zlib and slz
    for key in (("f", "FRONTEND"), ("b", "BACKEND"), ("b_id", "BACKEND"),
                ("b_off", "BACKEND")):
        for col in ("comp_in", "comp_byp", "comp_rsp"):
            mine_v, theirs_v = int(my_stat[key][col]), int(their_stat[key][col])
            if col == "comp_in" and key[0] in ("f", "b"):
                # HAProxy also counts the trailer block of /chunked (`X-T: 1`, 5 bytes
                # of HTX) as compressor input; lb counts body bytes only
                theirs_v -= 5
            assert mine_v == theirs_v, (key, col)
        assert 0 < int(my_stat[key]["comp_out"]) < int(my_stat[key]["comp_in"]) or \
            my_stat[key]["comp_in"] == "0"
    n_compressed = sum(1 for _, ls, _ in mine if any(x.startswith("content-encoding: ")
                                                     and "br" not in x for x in ls))
    assert n_compressed == 17
    assert int(my_stat[("f", "FRONTEND")]["comp_rsp"]) == n_compressed + 1  # + identity
    assert int(my_stat[("b_id", "BACKEND")]["comp_byp"]) == len(BODY)


def test_offload_removes_accept_encoding_only_when_an_algorithm_is_chosen() -> None:
    seen: list[bytes] = []
    with RawBackend(lambda c, rb: _respond(c, rb, seen)) as be, \
            LbProcess(CONFIG, ports={"srv": be.port}) as lb:
        _exchange(lb.ports["fe"], "/off", "deflate", "GET", "1.1", "")
        _exchange(lb.ports["fe"], "/off", "br", "GET", "1.1", "")
        _exchange(lb.ports["fe"], "/", "gzip", "GET", "1.1", "")  # b: no offload
    heads = [h.lower() for h in seen]
    assert b"accept-encoding" not in heads[0]
    assert b"accept-encoding: br" in heads[1]
    assert b"accept-encoding: gzip" in heads[2]


def test_a_streamed_body_leaves_compressed_as_it_comes() -> None:
    """Each read of the server is flushed: the client can decompress the first part
    while the server still holds the rest (server-sent events, long polls)."""
    go_on = threading.Event()

    def handler(c: socket.socket, rb: RawBackend) -> None:
        rb.recv_head(c)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        go_on.wait(10)
        c.sendall(b"6\r\nsecond\r\n0\r\n\r\n")
        c.close()

    cfg = CONFIG.replace("    compression type text/html text/plain\n", "")
    with RawBackend(handler) as be, LbProcess(cfg, ports={"srv": be.port}) as lb, \
            socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
        z = zlib.decompressobj(31)
        data = b""
        text = b""
        deadline = time.monotonic() + 10
        while b"first" not in text:
            assert time.monotonic() < deadline
            data += s.recv(65536)
            head, sep, rest = data.partition(b"\r\n\r\n")
            if sep and rest.count(b"\r\n") >= 2:
                size, _, chunk = rest.partition(b"\r\n")
                n = int(size, 16)
                if len(chunk) >= n:
                    text = z.decompress(chunk[:n])
        assert b"content-encoding: gzip" in head.lower()
        go_on.set()
        while not data.endswith(b"0\r\n\r\n"):
            d = s.recv(65536)
            assert d, data
            data += d
        body = _dechunk(data.partition(b"\r\n\r\n")[2])
        assert zlib.decompress(body, 31) == b"firstsecond"


@pytest.mark.parametrize("level", [1, 9])
def test_tune_comp_maxlevel_sets_the_zlib_level(level: int) -> None:
    text = bytes(range(256)) * 4 + BODY
    c = compress.Compressor(compress.ALGORITHMS["gzip"], level)
    out = c.feed(text) + c.finish()
    assert zlib.decompress(out, 31) == text
    ref = zlib.compressobj(level, zlib.DEFLATED, 31)
    assert out == ref.compress(text) + ref.flush(zlib.Z_SYNC_FLUSH) + ref.flush()


def test_tune_comp_maxlevel_reaches_the_compressor() -> None:
    with ExitStack() as st:
        be = st.enter_context(RawBackend(lambda c, rb: _respond(c, rb, [])))
        sizes = []
        for level in (1, 9):
            cfg = CONFIG.replace("global\n", f"global\n    tune.comp.maxlevel {level}\n")
            with LbProcess(cfg, ports={"srv": be.port}) as lb:
                lines, body = _exchange(lb.ports["fe"], "/", "gzip", "GET", "1.1", "")
                assert _decoded(lines, body, "GET") == BODY
                sizes.append(len(_dechunk(body)))
    # zlib makes 84 bytes of BODY at level 1 and 75 at level 9 (one read each; a
    # second read would add a few bytes of flush to either)
    assert sizes[1] < sizes[0], sizes


@pytest.mark.parametrize("accept,algos,expected", [
    ("gzip", ("gzip",), "gzip"),
    ("gzip;q=1.0, deflate;q=1.0", ("deflate", "gzip"), "gzip"),  # first of equal q
    ("deflate;q=0.9, gzip;q=0.95", ("deflate", "gzip"), "gzip"),
    ("*", ("deflate", "gzip"), "deflate"),
    ("*;q=0", ("deflate", "gzip"), None),
    ("deflate", ("raw-deflate", "gzip"), "raw-deflate"),
    ("compress", ("identity", "gzip"), "identity"),
    ("gzip;q=abc", ("gzip",), "gzip"),  # an unreadable q counts as 1
    ("gzip;q=0.000", ("gzip",), None),
])
def test_choose_follows_haproxy(accept: str, algos: tuple[str, ...],
                                expected: str | None) -> None:
    got = compress.choose(algos, [(b"accept-encoding", accept.encode())])
    assert (got.name if got else None) == expected


def test_defaults_offload_is_ignored_like_haproxy(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from tests.test_config_haproxy_diff import assert_text_like_haproxy

    assert_text_like_haproxy(tmp_path, capsys, """
defaults
    mode http
    timeout client 1s
    timeout server 1s
    timeout connect 1s
    compression offload
    compression algo gzip
    compression type text/html
listen l
    bind 127.0.0.1:18321
    compression algo raw-deflate
    server s 127.0.0.1:80
""")


def test_maxcomprate_stops_new_compressions_as_haproxy_does() -> None:
    """`maxcomprate 1` (1 kB/s): the first response is compressed, and while the
    last second's compressor input is over the limit the next ones are not. show
    info's CompressBps* say the same in both proxies."""
    cfg = CONFIG.replace("global\n", "global\n    maxcomprate 1\n")
    out = []
    with RawBackend(lambda c, rb: _respond(c, rb, [])) as be:
        for kind in ("lb", "haproxy"):
            cls = LbProcess if kind == "lb" else Haproxy
            kw: dict[str, Any] = {} if kind == "lb" else {"single_thread": True}
            with cls(cfg, ports={"srv": be.port}, **kw) as px:
                encs = []
                for _ in range(3):
                    lines, body = _exchange(px.ports["fe"], "/", "gzip", "GET", "1.1", "")
                    assert _decoded(lines, body, "GET") == BODY
                    encs.append("content-encoding: gzip" in lines)
                info = dict(ln.split(": ", 1) for ln in
                            query(("127.0.0.1", px.ports["cli"]), "show info").splitlines()
                            if ": " in ln)
                out.append((encs, info["CompressBpsRateLim"], int(info["CompressBpsIn"]) > 0))
    assert out[0] == out[1] == ([True, False, False], "1024", True)


class _Idle:
    def __init__(self, pct: int) -> None:
        self.pct = pct

    def read(self) -> int:
        return self.pct


def test_maxcompcpuusage_stops_new_compressions_when_the_process_is_busy() -> None:
    """`maxcompcpuusage 60`: no new compression while the process is idle less than
    40% of its time (Idle_pct, measured from its own CPU time)."""
    from tests.lbproc import LbThread

    cfg = CONFIG.replace("global\n", "global\n    maxcompcpuusage 60\n")
    with RawBackend(lambda c, rb: _respond(c, rb, [])) as be, \
            LbThread(cfg, ports={"srv": be.port}) as lb:
        encs = []
        for pct in (100, 39, 40, 0):
            lb.state.idle = _Idle(pct)
            lines, body = _exchange(lb.ports["fe"], "/", "gzip", "GET", "1.1", "")
            assert _decoded(lines, body, "GET") == BODY
            encs.append("content-encoding: gzip" in lines)
    assert encs == [True, False, True, False]


def test_idle_meter_reads_the_process_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from lb import state as st

    clock = {"wall": 100.0, "cpu": 5.0}
    monkeypatch.setattr(st.time, "monotonic", lambda: clock["wall"])
    monkeypatch.setattr(st.time, "process_time", lambda: clock["cpu"])
    m = st.IdleMeter()
    clock.update(wall=100.5, cpu=9.0)  # start-up's work before the first reading
    assert m.read() == 100
    clock.update(wall=102.5, cpu=9.5)  # a quarter of the core over two seconds
    assert m.read() == 75
    clock.update(wall=103.0, cpu=10.0)  # under a second since: the last value stands
    assert m.read() == 75
    clock.update(wall=104.0, cpu=11.5)  # 2 s of CPU in 1.5 s (threads): 0, not less
    assert m.read() == 0
