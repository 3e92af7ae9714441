"""Keywords lb checks and does not act on, against `haproxy -c` (2.6.12).

`bind-process` (deprecated: a warning, its process set checked against one
process), `dispatch` (its address checked: tests/test_dispatch.py has the rest),
`error-log-format` (checked like `log-format`, in the proxy's mode, where the
heads are gone; run: tests/test_error_log_format.py), and
`capture` in a backend and `hash-type` in a frontend: HAProxy warns that they are
ignored there and still reads them, so a bad one is an error all the same.

The only difference allowed is lb's own "is not supported by lb" warning.
"""

from __future__ import annotations

import subprocess

import pytest

from lb.__main__ import check_mode, parse_args
from tests.test_config_haproxy_diff import HAPROXY, _alerts

HEAD = ("defaults\n mode http\n timeout client 1s\n timeout server 1s\n"
        " timeout connect 1s\n")
LISTEN = "listen l\n bind 127.0.0.1:18111\n"
UNSUPPORTED = "is not supported by lb and is ignored."

CASES = [
    # bind-process
    LISTEN + " bind-process\n", LISTEN + " bind-process 1\n", LISTEN + " bind-process all\n",
    LISTEN + " bind-process odd even\n", LISTEN + " bind-process 1-\n",
    LISTEN + " bind-process bogus\n", LISTEN + " bind-process 0\n",
    LISTEN + " bind-process 1 2 3\n", LISTEN + " bind-process 1/1\n",
    "backend b\n bind-process 1\n",
    # dispatch
    LISTEN + " dispatch 127.0.0.1:80\n", LISTEN + " dispatch :80\n",
    LISTEN + " dispatch unix@/tmp/x\n", LISTEN + " dispatch\n",
    LISTEN + " dispatch 127.0.0.1\n", LISTEN + " dispatch bogus\n",
    LISTEN + " dispatch 127.0.0.1:80-90\n", LISTEN + " dispatch 127.0.0.1:0\n",
    LISTEN + " dispatch 127.0.0.1:+1\n", LISTEN + " dispatch 127.0.0.1:80 extra\n",
    LISTEN + " dispatch no-such-host.invalid:80\n",
    "frontend f\n bind 127.0.0.1:18111\n dispatch 127.0.0.1:80\n",
    "defaults\n dispatch 127.0.0.1:80\n",
    # error-log-format
    LISTEN + ' error-log-format "%ci:%cp %ft"\n', LISTEN + " error-log-format\n",
    LISTEN + " error-log-format a b\n", LISTEN + ' error-log-format "x %[nosuch]"\n',
    LISTEN + ' error-log-format "%[req.hdr(host)]"\n',
    LISTEN + " mode tcp\n error-log-format %r\n",
    LISTEN + ' log-format "%[nosuch1]"\n error-log-format "%[nosuch2]"\n'
    ' unique-id-format "%[nosuch3]"\n',
    "backend b\n error-log-format %ci\n",
    # a defaults section's format is told for each proxy, before its other warnings
    'defaults\n error-log-format "%[nosuch]"\nlisten l\n bind :18111\nlisten l2\n'
    " bind :18112\n",
    'defaults\n log-format "%[nosuch]"\nlisten l\nlisten l2\n bind :18112\n',
    # read where they are ignored
    "backend b\n capture\n", "backend b\n capture request header Host len 10\n",
    "frontend f\n bind 127.0.0.1:18111\n hash-type bogus\n",
    "frontend f\n bind 127.0.0.1:18111\n hash-type consistent\n",
]


@pytest.mark.parametrize("text", CASES)
def test_like_haproxy(tmp_path, capsys, text: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "t.cfg"
    path.write_text(HEAD + text)
    theirs = subprocess.run([HAPROXY, "-c", "-f", str(path)], capture_output=True,
                            text=True, timeout=30, stdin=subprocess.DEVNULL)
    rc = check_mode(parse_args(["-c", "-f", str(path)]))
    mine = _alerts(capsys.readouterr().err)
    own = [ln for ln in mine if ln.endswith(UNSUPPORTED)]
    assert [ln for ln in mine if ln not in own] == _alerts(theirs.stderr)
    assert rc == theirs.returncode or (own and theirs.returncode == 0 and rc == 0)
    # lb's own warning: never for error-log-format, which lb runs
    assert not any("'error-log-format'" in ln for ln in own)
