"""`log-format-sd`: the structured-data field of rfc5424 traffic lines, as HAProxy
2.6.12 writes it.

The rendered format takes the place of the `-` between the message id and the
message, on rfc5424 targets only; an empty rendering leaves the `-`. The other
formats of the same frontend are unchanged. A `defaults` section passes it on; a
backend ignores it with HAProxy's warning. Compared with HAProxy, line for line
apart from the time and the pid, where it is installed.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import tempfile

import pytest

from tests.support_e2e import HAPROXY, config_refusal, lb_or_haproxy

pytestmark = pytest.mark.timeout(60)

KINDS = ["lb", "haproxy"] if os.path.exists(HAPROXY) else ["lb"]

CONFIG = """
defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
    log-format-sd "[dflt@1 fe=\\"%f\\"]"
frontend fe
    bind 127.0.0.1:@@fe@@
    log 127.0.0.1:{log} format rfc5424 local0
    log 127.0.0.1:{log} format rfc3164 local0
    log-format "%ST %HU"
    log-format-sd "[exampleSDID@1234 uri=\\"%HU\\" st=\\"%ST\\"]"
    http-request return status 200
frontend fe2
    bind 127.0.0.1:@@fe2@@
    log 127.0.0.1:{log} format rfc5424 local0
    log-format "%ST %HU"
    log-format-sd "%[var(txn.sd)]"
    http-request set-var(txn.sd) req.hdr(x-sd)
    http-request return status 204
frontend fe3
    bind 127.0.0.1:@@fe3@@
    log 127.0.0.1:{log} format rfc5424 local0
    log-format "%ST"
    http-request return status 200
"""


def _get(port: int, extra: bytes = b"") -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(b"GET /p?q=1 HTTP/1.1\r\nHost: h\r\n" + extra + b"Connection: close\r\n\r\n")
        while c.recv(65536):
            pass


def _lines(kind: str) -> list[bytes]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    got: list[bytes] = []
    try:
        with lb_or_haproxy(kind, CONFIG.format(log=rx.getsockname()[1])) as px:
            for port, extra in ((px.ports["fe"], b""), (px.ports["fe2"], b""),
                                (px.ports["fe2"], b'x-sd: [a@1 b="c"]\r\n'),
                                (px.ports["fe3"], b"")):
                _get(port, extra)
                want = len(got) + (2 if port == px.ports["fe"] else 1)
                while len(got) < want:
                    got.append(rx.recv(65536))
    finally:
        rx.close()
    # the time and the pid vary; the rfc3164 line of fe may come first
    return sorted(re.sub(rb"\d{4}-\d\d-\d\dT[\d:.+]+ |[A-Z][a-z]{2} [ \d]\d [\d:]{8} |"
                         rb"\b\d+ - |\[\d+\]", b"", line) for line in got)


def test_structured_data_in_rfc5424_lines_as_in_haproxy() -> None:
    seen = {kind: _lines(kind) for kind in KINDS}
    assert seen["lb"] == sorted([
        b'<134>1 - haproxy [exampleSDID@1234 uri="/p?q=1" st="200"] 200 /p?q=1\n',
        b"<134>localhost haproxy: 200 /p?q=1\n",
        b"<134>1 - haproxy - 204 /p?q=1\n",
        b'<134>1 - haproxy [a@1 b="c"] 204 /p?q=1\n',
        b'<134>1 - haproxy [dflt@1 fe="fe3"] 200\n',
    ])
    if "haproxy" in seen:
        assert seen["lb"] == seen["haproxy"]


@pytest.mark.parametrize(("body", "want"), [
    ("frontend f\n    bind 127.0.0.1:18450\n    log-format-sd\n",
     "log-format-sd expects an argument."),
    ("frontend f\n    bind 127.0.0.1:18450\n    log-format-sd a b\n",
     "log-format-sd expects only one argument, don't forget to escape spaces!"),
])
def test_argument_errors_are_haproxys(body: str, want: str) -> None:
    with tempfile.TemporaryDirectory(prefix="lbtest-sd-") as d:
        path = os.path.join(d, "s.cfg")
        with open(path, "w") as f:
            f.write("defaults\n    mode http\n" + body)
        lb = config_refusal([sys.executable, "-m", "lb"], path)
        assert lb.endswith(want), lb
        if os.path.exists(HAPROXY):
            assert lb == config_refusal([HAPROXY], path)


def test_a_backend_ignores_it_with_haproxys_warning() -> None:
    from lb.config import load_text
    res = load_text("defaults\n    mode http\n    timeout connect 1s\n    timeout server 1s\n"
                    "backend b\n    log-format-sd x\n    server s 127.0.0.1:80\n", "s.cfg")
    assert res.ok
    assert [d.message() for d in res.diagnostics if d.severity == "warning"] == [
        "parsing [s.cfg:6] : backend 'b' : 'log-format-sd' directive is ignored in backends."]
