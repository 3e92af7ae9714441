"""`http-errors` sections, `errorfiles`, the reply grammar `http-error`, `deny`,
`tarpit` and `return` share, and what clients get, against HAProxy 2.6.12.

The bytes in EXPECTED and the texts in PROBES were read from HAProxy 2.6.12 on
127.0.0.1 (2026-11-25) with the same files. When HAProxy is installed, the runtime
test also runs it, and the `-c` cases compare both programs' messages live.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

from lb.http import errorfile
from tests.lbproc import raw_request
from tests.support_e2e import HAPROXY, lb_or_haproxy
from tests.test_config_haproxy_diff import assert_check_like_haproxy

pytestmark = pytest.mark.timeout(60)

HAVE_HAPROXY = os.path.exists(HAPROXY)
KINDS = ["lb", "haproxy"] if HAVE_HAPROXY else ["lb"]

FILES = {
    "site1_503.http": b"HTTP/1.0 503 Service Unavailable\r\nCache-Control: no-cache\r\n"
                      b"Content-Type: text/html\r\n\r\n<html>site1 503</html>\n",
    "site1_403.http": b"HTTP/1.0 403 Forbidden\r\nContent-Type: text/plain\r\n\r\nsite1 403\n",
    "site2_503.http": b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\n"
                      b"site2 503\n",
    "proxy_404.http": b"HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n\r\nproxy 404\n",
    "empty.http": b"",
}


def _write_files(d: Path) -> None:
    for name, data in FILES.items():
        (d / name).write_bytes(data)


# ------------------------------------------------------------------ errorfile contents

# file content -> HAProxy 2.6.12's complaint in "errorfile : '<path>': <complaint>"
# (None: accepted)
PROBES: list[tuple[bytes, str | None]] = [
    (b"127.0.0.1 localhost\n", "unable to parse headers (error offset: 10)"),
    (b"HTTP/1.1 503 x\r\nbad header\r\n\r\n", "unable to parse headers (error offset: 19)"),
    (b"HTTP/1.1 50 x\r\n\r\n", None),
    (b"HTTX/1.1 503 x\r\n\r\n", None),
    (b"HTTP/1.1 5a3 x\r\n\r\n", "unable to parse headers (error offset: 10)"),
    (b"\r\nHTTP/1.1 503 x\r\n\r\n", None),
    (b"HTTP/1.1 503 x\r\nA: b\r\n", "unable to parse headers (error offset: -2)"),
    (b"hello", "unable to parse headers (error offset: 0)"),
    (b"HTTP/2.0 503 x\r\n\r\n", None),
    (b"abc 503 x\r\n\r\n", "unable to parse headers (error offset: 0)"),
    (b"HTTP/1.1  503 x\r\n\r\n", None),
    (b"HTTP/1.1 503\r\n\r\n", None),
    (b"HTTP/1.1 503 x\nA: b\n\n", None),
    (b"HTTP/1.1 503 x\r\nA : b\r\n\r\n", "unable to parse headers (error offset: 17)"),
    (b"HTTP/1.1 503 x\r\n: b\r\n\r\n", "unable to parse headers (error offset: 16)"),
    (b"HTTP/1.1 5033 x\r\n\r\n", None),
    (b" HTTP/1.1 503 x\r\n\r\n", "unable to parse headers (error offset: 0)"),
    (b"HTTP/1.1 503 x", "unable to parse headers (error offset: -2)"),
    (b"http/1.1 503 x\r\n\r\n", "unable to parse headers (error offset: 0)"),
    (b"HTTP/1.1 503 x\r\nA\x01: b\r\n\r\n", "unable to parse headers (error offset: 17)"),
    (b"HTTP/1.1 503 x\rA: b\r\n\r\n", "unable to parse headers (error offset: 15)"),
    (b"HTTP/1.1\t503 x\r\n\r\n", None),
    (b"HTTP/1.1 503 x\r\nA: b\r\n c\r\n\r\n", None),
    (b"HTTP/1.1 503 x\r\nContent-Length: 3\r\n\r\nabcdef",
     "payload size does not match the announced content-length (6 != 3)"),
    (b"HTTP/1.1 503 x\r\nContent-Length: abc\r\n\r\n",
     "unable to parse headers (error offset: 32)"),
    (b"1 503 x\r\n\r\n", "invalid http version (1)"),
    (b"HTTP/1.1 999 x\r\n\r\n", None),
    (b"HTTP/1.1 503 x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
     "chunk-encoded payload not supported"),
    (b"", None),
]


@pytest.mark.parametrize("data,complaint", PROBES)
def test_errorfile_contents_are_judged_as_haproxy_does(data: bytes,
                                                       complaint: str | None) -> None:
    assert errorfile.problem(data) == complaint


def test_errorfile_wire_form() -> None:
    # names lower-cased, CRLF line ends; an HTTP/1.1 page with no length says it closes
    assert errorfile.wire(b"HTTP/1.1 503 Oops\nX-A: 1\nContent-Type: text/plain\n\nhi") == \
        b"HTTP/1.1 503 Oops\r\nx-a: 1\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nhi"
    assert errorfile.wire(b"HTTP/1.0 503 Oops\r\n\r\nhi") == b"HTTP/1.0 503 Oops\r\n\r\nhi"
    sized = b"HTTP/1.1 503 Oops\r\ncontent-length: 2\r\n\r\nhi"
    assert errorfile.wire(sized) == sized and not errorfile.closes(sized)
    assert errorfile.closes(b"") and errorfile.closes(b"HTTP/1.0 503 Oops\r\n\r\nhi")


# ------------------------------------------------------------------ `-c` against HAProxy

HEAD = ("defaults\n mode http\n timeout client 1s\n timeout server 1s\n timeout connect 1s\n"
        "frontend f\n bind 127.0.0.1:18081\n")
SECTION = ("http-errors site1\n errorfile 503 {d}/site1_503.http\n"
           " errorfile 403 {d}/site1_403.http\n")

CHECK_CASES = [
    # the section itself
    SECTION + "http-errors site1\n",
    SECTION + "http-errors\n",
    "http-errors a/b\n errorfile 503 {d}/nonexist.http\n errorfile 503 {d}/proxy_404.http\n"
    " errorfile abc {d}/proxy_404.http\n",
    "http-errors c\n errorfile 503\n foo bar\n errorfile 999 {d}/empty.http\n",
    "http-errors c\n errorfile 503 {d}/site1_503.http extra\n errorfile 200 {d}/empty.http\n",
    "http-errors c\n errorfile 503 /etc/hostname\n",
    # `errorfiles` in proxies, checked once every section is known
    HEAD + " errorfiles site1\n errorfiles nosuch 503\n errorfiles site1 502\n" + SECTION,
    HEAD + " errorfiles site1 999\n" + SECTION,
    HEAD + " errorfiles site1 abc\n" + SECTION,
    HEAD + " errorfiles\n" + SECTION,
    HEAD.replace("frontend", " errorfiles site9\nfrontend") + SECTION,
    "defaults d1\n mode http\n errorfiles site9\n" + HEAD + SECTION,
    HEAD + " http-error status 503 errorfiles site3\n http-error status 502 errorfiles site1\n"
    + SECTION,
    HEAD + " http-error status 503 errorfiles site1 errorfile {d}/site1_503.http\n" + SECTION,
    HEAD + " http-error status 299\n",
    HEAD + " http-error status 503 string abc\n",
    HEAD + " http-error content-type a\n",
    HEAD + " http-error status 503 hdr transfer-encoding x\n",
    HEAD + " http-error status 503 content-type text/plain lf-string %[src]\n",
    HEAD + " http-error status 503 content-type text/plain hdr x %[src] string abc\n",
    HEAD + " http-error status 503 errorfile {d}/empty.http\n",
    HEAD + " errorfile 408 /dev/null\n",
    # the actions' reply
    HEAD + " http-request deny errorfiles nosuch2 if { path /a }\n"
    " http-request deny deny_status 404 errorfiles site1 if { path /b }\n"
    " http-request return status 503 errorfiles site1 if { path /c }\n" + SECTION,
    HEAD + " http-request deny errorfiles site1 content-type text/plain hdr a b\n" + SECTION,
    HEAD + " http-response return status 200 errorfiles site1\n" + SECTION,
    HEAD + " http-response deny errorfiles site1 string x\n" + SECTION,
    HEAD + " http-request return status 200 string a string b\n",
    HEAD + " http-request return status 200 content-type text/plain string a errorfile "
    "{d}/site1_403.http\n",
    HEAD + " http-request deny hdr content-length 5\n",
    HEAD + " http-request deny errorfile {d}/site1_403.http content-type text/plain\n",
    HEAD + " http-request return status 200 errorfiles\n",
    HEAD + " http-request deny status 299 errorfiles x\n",
    HEAD + " http-request deny status 200 default-errorfiles string a\n",
    HEAD + " http-request return content-type a/b file {d}/empty.http\n",
    HEAD + " http-request return status 200 lf-file {d}/empty.http\n",
    HEAD + " http-request return content-type\n",
    HEAD + " http-request return lf-file\n",
    HEAD + " http-request return errorfile\n",
    HEAD + " http-request return file /nonexist\n",
    HEAD + " http-request return deny_status 404\n",
    HEAD + " http-request deny errorfile /etc/hostname\n",
    HEAD + " http-request deny content-type a/b\n",
    HEAD + " http-request deny hdr x y\n",
    # HAProxy looks at the rule just before for its "final" warning
    HEAD + " http-request deny\n http-request deny if { path /a }\n http-request deny\n",
]


@pytest.mark.skipif(not HAVE_HAPROXY, reason="needs Debian's haproxy")
@pytest.mark.parametrize("text", CHECK_CASES)
def test_check_messages_match_haproxy(tmp_path: Path, capsys: Any, text: str) -> None:
    _write_files(tmp_path)
    path = tmp_path / "t.cfg"
    path.write_text(text.replace("{d}", str(tmp_path)))
    assert_check_like_haproxy(str(path), capsys)


# ------------------------------------------------------------------ what clients get

CFG = """
defaults
    mode http
    retries 0
    timeout connect 1s
    timeout client 5s
    timeout server 5s

frontend f
    bind 127.0.0.1:@@fe@@
    errorfile 404 {d}/proxy_404.http
    errorfiles site1 403
    http-error status 503 errorfiles site2
    http-error status 502 content-type application/json lf-string "{{\\"path\\":\\"%[path]\\"}}" hdr x-id "id-%[path]"
    http-error status 401 content-type text/plain string "no way" hdr x-st "%ST"
    http-request return status 404 default-errorfiles if {{ path /ret-default-404 }}
    http-request return status 403 default-errorfiles if {{ path /ret-default-403 }}
    http-request return status 410 default-errorfiles if {{ path /ret-builtin-410 }}
    http-request return status 503 errorfiles site1 if {{ path /ret-section }}
    http-request return status 404 errorfiles site1 if {{ path /ret-section-missing }}
    http-request deny errorfiles site1 if {{ path /deny-section }}
    http-request deny deny_status 503 if {{ path /deny-503 }}
    http-request deny deny_status 401 if {{ path /deny-401 }}
    http-request deny deny_status 502 if {{ path /deny-502 }}
    http-request deny deny_status 503 errorfiles site1 hdr x-a b if {{ path /deny-hdr-ignored }}
    http-request deny hdr x-a y if {{ path /deny-hdr-only }}
    http-request deny errorfile {d}/empty.http if {{ path /deny-empty }}
    use_backend b2 if {{ path_beg /b2 }}
    use_backend b3 if {{ path_beg /b3 }}
    use_backend b4 if {{ path_beg /b4 }}
    default_backend b

backend b
    server s1 127.0.0.1:1 disabled

backend b2
    errorfiles site2
    errorfile 503 {d}/site1_503.http
    server s1 127.0.0.1:1 disabled

backend b3
    errorfile 503 {d}/site1_503.http
    errorfiles site2 503
    http-request deny if {{ path /b3/deny }}
    server s1 127.0.0.1:1 disabled

backend b4
    errorfile 503 {d}/empty.http
    server s1 127.0.0.1:1 disabled

http-errors site1
    errorfile 503 {d}/site1_503.http
    errorfile 403 {d}/site1_403.http

http-errors site2
    errorfile 503 {d}/site2_503.http
"""

SITE1_503 = (b"HTTP/1.0 503 Service Unavailable\r\ncache-control: no-cache\r\n"
             b"content-type: text/html\r\n\r\n<html>site1 503</html>\n")
SITE1_403 = b"HTTP/1.0 403 Forbidden\r\ncontent-type: text/plain\r\n\r\nsite1 403\n"
SITE2_503 = b"HTTP/1.0 503 Service Unavailable\r\ncontent-type: text/plain\r\n\r\nsite2 503\n"
PROXY_404 = b"HTTP/1.0 404 Not Found\r\ncontent-type: text/plain\r\n\r\nproxy 404\n"

# path -> what HAProxy 2.6.12 sent, and whether it then closed the connection
EXPECTED: dict[str, tuple[bytes, bool]] = {
    "/ret-default-404": (PROXY_404, True),
    "/ret-default-403": (SITE1_403, True),
    "/ret-builtin-410": (b"HTTP/1.1 410 Gone\r\ncontent-length: 114\r\ncache-control: "
                         b"no-cache\r\ncontent-type: text/html\r\n\r\n<html><body><h1>410 "
                         b"Gone</h1>\nThe resource is no longer available and will not be "
                         b"available again.\n</body></html>\n", False),
    "/ret-section": (SITE1_503, True),
    "/ret-section-missing": (b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n", False),
    "/deny-section": (SITE1_403, True),
    "/deny-503": (SITE2_503, True),
    "/deny-401": (b"HTTP/1.1 401 Unauthorized\r\nx-st: 401\r\ncontent-length: 6\r\n"
                  b"content-type: text/plain\r\n\r\nno way", False),
    "/deny-502": (b"HTTP/1.1 502 Bad Gateway or Proxy Error\r\nx-id: id-/deny-502\r\ncontent-length: 20\r\n"
                  b"content-type: application/json\r\n\r\n{\"path\":\"/deny-502\"}", False),
    "/deny-hdr-ignored": (SITE1_503, True),
    "/deny-hdr-only": (b"HTTP/1.1 403 Forbidden\r\nx-a: y\r\ncontent-length: 0\r\n\r\n", False),
    "/deny-empty": (b"", True),
    "/": (SITE2_503, True),
    "/b2": (SITE1_503, True),
    "/b3": (SITE2_503, True),
    "/b3/deny": (SITE1_403, True),
    "/b4": (b"", True),
}


def _ask(port: int, path: str, version: str = "1.1") -> tuple[bytes, bool]:
    """One request; the answer, and whether the connection closed after it."""
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    try:
        host = "Host: x\r\n" if version == "1.1" else ""
        s.sendall(f"GET {path} HTTP/{version}\r\n{host}\r\n".encode())
        out = b""
        s.settimeout(3)
        while True:
            try:
                d = s.recv(65536)
            except TimeoutError:
                return out, False
            except ConnectionResetError:
                return out, True
            if not d:
                return out, True
            out += d
            end = out.find(b"\r\n\r\n")
            if end >= 0 and b"content-length:" in out[:end].lower():
                s.settimeout(0.3)  # complete soon: a close would come at once
    finally:
        s.close()


@pytest.mark.parametrize("kind", KINDS)
def test_pages_are_haproxys_bytes(kind: str, tmp_path: Path) -> None:
    _write_files(tmp_path)
    with lb_or_haproxy(kind, CFG.format(d=tmp_path)) as px:
        got = {path: _ask(px.ports["fe"], path) for path in EXPECTED}
        old = _ask(px.ports["fe"], "/deny-502", "1.0")
    assert got == EXPECTED
    # an HTTP/1.0 client: the page built per request says the connection closes
    assert old == (EXPECTED["/deny-502"][0].replace(
        b"application/json\r\n", b"application/json\r\nconnection: close\r\n"), True)


PARSER_CFG = """
defaults
    mode http
    timeout connect 1s
    timeout client 3s
    timeout server 1s
    timeout http-request 500ms

frontend quiet
    bind 127.0.0.1:@@fe@@
    errorfile 400 {d}/empty.http
    errorfile 408 {d}/empty.http
    default_backend b

frontend paged
    bind 127.0.0.1:@@paged@@
    errorfile 400 {d}/site1_403.http
    errorfile 408 {d}/site1_403.http
    default_backend b

backend b
    server s1 127.0.0.1:1 disabled
"""


@pytest.mark.parametrize("kind", KINDS)
def test_parser_answers_and_errorfiles(kind: str, tmp_path: Path) -> None:
    """The H1 parser's 400 and 408 keep HAProxy's own page whatever errorfile says,
    but an empty errorfile silences them (HAProxy's `errorfile 408 /dev/null`)."""
    _write_files(tmp_path)
    with lb_or_haproxy(kind, PARSER_CFG.format(d=tmp_path)) as px:
        bad = b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
        partial = b"GET / HTTP/1.1\r\nHost: x\r\n"
        quiet = [raw_request(px.ports["fe"], data) for data in (b"GARBAGE\r\n\r\n", bad, partial)]
        paged = [raw_request(px.ports["paged"], data) for data in (b"GARBAGE\r\n\r\n", partial)]
    assert quiet == [b"", b"", b""]
    assert paged[0].startswith(b"HTTP/1.1 400 Bad request\r\nContent-length: 90\r\n")
    assert paged[1].startswith(b"HTTP/1.1 408 Request Time-out\r\nContent-length: 110\r\n")
