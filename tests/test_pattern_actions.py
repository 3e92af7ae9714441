"""`add-acl`, `del-acl`, `set-map` and `del-map` actions: traffic changes the pattern
lists that ACLs and maps loaded, as the stats socket's `add acl`... do
(lb.match.patref.from_traffic), run by lb and by HAProxy 2.6.12 on the same config
and traffic, compared by response and by `show acl`/`show map`.

Until session 30 lb refused these actions, so a config keeping a dynamic block
list did not load. HAProxy 2.6.12 also takes a file no ACL or map loads (the
action then changes nothing) and the actions without a file at all.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import tempfile
from typing import Any

import pytest

from tests.lbproc import LbProcess
from tests.stats_support import query, wait_socket
from tests.support_e2e import HAPROXY, Haproxy, config_refusal
from tests.test_lifecycle import read_response

pytestmark = pytest.mark.timeout(60)

KINDS = ["lb", "haproxy"] if os.path.exists(HAPROXY) else ["lb"]

CONFIG = """
global
    stats socket {dir}/s.sock level admin
defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:@@fe@@
    acl banned req.hdr(x-user) -f {dir}/banned.lst
    http-request deny deny_status 403 if banned
    http-request add-acl({dir}/banned.lst) %[req.hdr(x-ban)] if {{ req.hdr(x-ban) -m found }}
    http-request del-acl({dir}/banned.lst) %[req.hdr(x-unban)] if {{ req.hdr(x-unban) -m found }}
    http-request set-map({dir}/m.map) %[req.hdr(x-k)] %[req.hdr(x-v)] if {{ req.hdr(x-k) -m found }}
    http-request del-map({dir}/m.map) %[req.hdr(x-d)] if {{ req.hdr(x-d) -m found }}
    http-request add-acl({dir}/nobody.lst) foo
    http-request return status 200 content-type text/plain lf-string "v=%[req.hdr(x-q),map({dir}/m.map,none)]"
"""

# (request headers, expected status and body)
STEPS: list[tuple[dict[str, str], bytes]] = [
    ({"x-q": "a"}, b"200 v=1"),
    ({"x-k": "a", "x-v": "2", "x-q": "a"}, b"200 v=2"),  # an existing key takes the value
    ({"x-k": "b", "x-v": "3", "x-q": "b"}, b"200 v=3"),  # a new key is added
    ({"x-d": "a", "x-q": "a"}, b"200 v=none"),
    ({"x-ban": "mallory", "x-user": "mallory"}, b"200 v="),  # the rule came after the deny
    ({"x-user": "mallory"}, b"403"),
    ({"x-ban": "mallory"}, b"200 v="),  # already there: not added twice
    ({"x-unban": "mallory"}, b"200 v="),
    ({"x-user": "mallory"}, b"200 v="),
    ({"x-ban": "#1"}, b"200 v="),  # a key is a key, never an entry id
    ({"x-unban": "#1"}, b"200 v="),
    ({"x-ban": "zed"}, b"200 v="),
    ({"x-ban": "zed"}, b"200 v="),  # once in the list
]


def _exchange(c: socket.socket, headers: dict[str, str]) -> bytes:
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    c.sendall(f"GET / HTTP/1.1\r\nHost: x\r\n{lines}\r\n".encode())
    resp = read_response(c)
    status = resp.split(b" ", 2)[1]
    return status if status != b"200" else status + b" " + resp.split(b"\r\n\r\n", 1)[1]


def _entries(sock: str, what: str) -> list[str]:
    return [re.sub(r"^0x[0-9a-f]+ ", "", ln) for ln in query(sock, what).splitlines() if ln]


@pytest.mark.parametrize("kind", KINDS)
def test_traffic_changes_lists_as_haproxy(kind: str) -> None:
    d = tempfile.mkdtemp(prefix="lbtest-pat-")
    with open(os.path.join(d, "banned.lst"), "w") as f:
        f.write("eve\n")
    with open(os.path.join(d, "m.map"), "w") as f:
        f.write("a 1\n")
    text = CONFIG.format(dir=d)
    px: Any = (LbProcess(text) if kind == "lb" else Haproxy(text, single_thread=True))
    sock = os.path.join(d, "s.sock")
    with px:
        wait_socket(sock)
        got = []
        with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
            for headers, _ in STEPS:
                got.append(_exchange(c, headers))
        banned = _entries(sock, f"show acl {d}/banned.lst")
        mapped = _entries(sock, f"show map {d}/m.map")
        nobody = query(sock, f"show acl {d}/nobody.lst").strip()
    assert got == [want for _, want in STEPS]
    assert banned == ["eve", "zed"]
    assert mapped == ["b 3"]
    assert nobody == "Unknown ACL identifier. Please use #<id> or <file>."


@pytest.mark.parametrize(("rule", "want"), [
    ("add-acl(/x.lst)", "error detected in frontend 'f' while parsing 'http-request "
     "add-acl(/x.lst)' rule : expects exactly 1 arguments."),
    ("set-map(/x.map) k", "error detected in frontend 'f' while parsing 'http-request "
     "set-map(/x.map)' rule : expects exactly 2 arguments."),
    ("del-map(/x.map) k v", "'http-request del-map(/x.map)' expects either 'if' or 'unless' "
     "followed by a condition but found 'v'."),
    ("set-map(/x.map) %[bogus] v", "error detected in frontend 'f' while parsing "
     "'http-request set-map(/x.map)' rule : failed to parse sample expression <bogus]> : "
     "unknown fetch method 'bogus'."),
])
def test_load_errors_are_haproxys(rule: str, want: str, tmp_path: Any) -> None:
    path = str(tmp_path / "p.cfg")
    with open(path, "w") as f:
        f.write("defaults\n mode http\n timeout client 1s\n timeout server 1s\n"
                f" timeout connect 1s\nfrontend f\n bind 127.0.0.1:18080\n http-request {rule}\n")
    cmds = [[sys.executable, "-m", "lb"]] + ([[HAPROXY]] if os.path.exists(HAPROXY) else [])
    for cmd in cmds:
        assert config_refusal(cmd, path) == f"parsing [{path}:8] : {want}".replace(
            "parsing [" + path + ":8] : '", "parsing [" + path + ":8]: '")
