"""HTTP Basic authentication: `userlist`, `http_auth`, `http_auth_group`, the
`http_auth_*` fetches and `http-request auth`, by lb and HAProxy 2.6.12.

Until session 29 lb ignored `userlist` sections with a warning and refused
`http-request auth`, so a config protecting a path with a password did not load.
The responses below are compared byte for byte with HAProxy's.
"""

from __future__ import annotations

import base64
import os
import socket
import sys
from typing import Any

import pytest

from lb.config import load_text
from lb.match import authfetch
from tests.support_e2e import HAPROXY, config_refusal, lb_or_haproxy, one_backend_config

pytestmark = pytest.mark.timeout(60)

KINDS = ["lb", "haproxy"] if os.path.exists(HAPROXY) else ["lb"]

# bob's hash is crypt("secret", "$5$saltsalt") (SHA-256); carol's is MD5-crypt
USERLIST = """
userlist L
    group admins users alice
    group ops
    user alice insecure-password secret
    user bob password $5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA groups ops
    user carol password $1$salt$ez2vlPGdaLYkJam5pWs/Y1
"""
CONFIG = USERLIST + one_backend_config("""    acl ok http_auth(L)
    acl adm http_auth_group(L) admins
    acl ops http_auth_group(L) ops
    http-request auth realm "My Realm" if !ok { path_beg /private }
    http-request auth if !ok { path_beg /plain }
    http-request return status 200 content-type text/plain lf-string "user=%[http_auth_user] type=%[http_auth_type] pass=%[http_auth_pass] grp=%[http_auth_group(L)] ok=%[http_auth(L)]" if adm || ops || !{ path_beg /private }
    http-request return status 403 content-type text/plain string "not in a group"
""")


UNAUTHORIZED = (
    b'HTTP/1.1 401 Unauthorized\r\ncontent-length: 112\r\ncache-control: no-cache\r\n'
    b'content-type: text/html\r\nwww-authenticate: Basic realm="%s"\r\n\r\n'
    b"<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password to access "
    b"this content.\n</body></html>\n")


def _plain(status: int, body: bytes) -> bytes:
    reason = {200: b"OK", 403: b"Forbidden"}[status]
    return (b"HTTP/1.1 %d %s\r\ncontent-length: %d\r\ncontent-type: text/plain\r\n\r\n%s"
            % (status, reason, len(body), body))


def _basic(cred: str) -> bytes:
    return b"Authorization: Basic " + base64.b64encode(cred.encode()) + b"\r\n"


# (path, extra header lines, expected response)
CASES = [
    ("/private", b"", UNAUTHORIZED % b"My Realm"),
    ("/plain", b"", UNAUTHORIZED % b"fe"),
    ("/private", _basic("alice:bad"), UNAUTHORIZED % b"My Realm"),
    ("/private", _basic("nobody:secret"), UNAUTHORIZED % b"My Realm"),
    ("/private", b"Authorization: Bearer abc\r\n", UNAUTHORIZED % b"My Realm"),
    ("/private", b"Authorization: Basic !!!\r\n", UNAUTHORIZED % b"My Realm"),
    ("/private", _basic("alice:secret"),
     _plain(200, b"user=alice type=Basic pass=secret grp=alice ok=1")),
    ("/private", _basic("bob:secret"),
     _plain(200, b"user=bob type=Basic pass=secret grp=bob ok=1")),
    ("/private", _basic("bob:x"), UNAUTHORIZED % b"My Realm"),
    ("/private", _basic("carol:secret"),
     _plain(403, b"not in a group")),
    ("/open", b"Authorization: Bearer abc\r\n",
     _plain(200, b"user= type=Bearer pass= grp= ok=")),
]


@pytest.mark.parametrize("kind", KINDS)
def test_basic_auth_answers_as_haproxy(kind: str) -> None:
    with lb_or_haproxy(kind, CONFIG) as px:
        for path, extra, want in CASES:
            with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
                c.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode() + extra + b"\r\n")
                got = b""
                while len(got) < len(want):
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    got += chunk
            assert (path, extra, got) == (path, extra, want)


def test_userlist_is_read_into_the_config() -> None:
    res: Any = load_text(CONFIG.replace("@@fe@@", "18080").replace("@@s1@@", "18081"))
    ul = res.config.userlist("L")
    assert [(u.name, u.groups) for u in ul.users] == [
        ("alice", ("admins",)), ("bob", ("ops",)), ("carol", ())]


# (statement in the userlist or the frontend, HAProxy 2.6.12's message)
LOAD_ERRORS = [
    ("user alice insecure-password secret groups nog|",
     "userlist 'L': no such group 'nog' specified in user 'alice'"),
    ("group g users nobody|", "userlist 'L': no such user 'nobody' specified in group 'g'"),
    ("user alice foo bar|",
     "parsing [{f}:2]: 'user' only supports 'password', 'insecure-password' and 'groups' "
     "options."),
    ("group|", "parsing [{f}:2]: 'group' expects <name> as arguments."),
    ("|http-request deny if { http_auth(M) }",
     "parsing [{f}:10]: unable to find userlist 'M' referenced in arg 1 of ACL keyword "
     "'http_auth' in proxy 'fe'."),
]


@pytest.mark.parametrize(("statement", "message"), LOAD_ERRORS, ids=[s for s, _ in LOAD_ERRORS])
def test_load_errors_are_haproxys(statement: str, message: str, tmp_path: Any) -> None:
    in_list, in_fe = statement.split("|")
    path = os.path.join(tmp_path, "p.cfg")
    with open(path, "w") as f:
        f.write(f"userlist L\n    {in_list}\ndefaults\n    mode http\n    timeout connect 5s\n"
                "    timeout client 5s\n    timeout server 5s\nfrontend fe\n"
                f"    bind 127.0.0.1:18080\n    {in_fe}\n    default_backend be\n"
                "backend be\n    server s1 127.0.0.1:18081\n")
    want = message.format(f=path)
    assert config_refusal([sys.executable, "-m", "lb"], path) == want
    if os.path.exists(HAPROXY):
        assert config_refusal([HAPROXY], path) == want


def test_bad_hashes_and_nul_bytes_never_authenticate() -> None:
    """A hash libcrypt refuses fails; a password with a NUL byte fails rather than being
    cut at the NUL by the C call (`secret\\0junk` would otherwise pass as `secret`)."""
    good = "$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA"
    assert authfetch._hash_matches(good, b"secret")
    assert not authfetch._hash_matches(good, b"secret\0junk")
    assert not authfetch._hash_matches("*", b"secret")
    assert not authfetch._hash_matches("", b"")
