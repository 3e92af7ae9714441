"""Dynamic cookies (`cookie ... dynamic` and `dynamic-cookie-key`) and the CLI
commands that change them, against HAProxy 2.6.12 (2026-11-25, 127.0.0.1).

A server without its own `cookie` gets the XXH64 of the backend's key, its address
(4 or 16 bytes) and its port (4 bytes, network order), in 16 hex digits. The values
below were read from HAProxy's Set-Cookie headers; when HAProxy is installed, the
exchange test also runs it.
"""

from __future__ import annotations

import http.client
import os
from pathlib import Path
from typing import Any

import pytest

from lb.http.cookie import dynamic_value
from lb.xxhash import xxh64
from tests.backends import HttpBackend
from tests.lbproc import LbProcess
from tests.stats_support import ADMIN_HEAD, query, wait_socket
from tests.support_e2e import HAPROXY, Haproxy
from tests.test_config_haproxy_diff import assert_text_like_haproxy

pytestmark = pytest.mark.timeout(60)

HAVE_HAPROXY = os.path.exists(HAPROXY)
KINDS = ["lb", "haproxy"] if HAVE_HAPROXY else ["lb"]

LONG_KEY = b"0123456789abcdef0123456789abcdef0123456789"  # 42 bytes: XXH64's long path


def test_xxh64_reference_values() -> None:
    assert xxh64(b"") == 0xEF46DB3751D8E999
    assert xxh64(b"a") == 0xD24EC4F1A98C6E5B
    assert xxh64(b"abc") == 0x44BC2CF5AD770999
    assert xxh64(b"Nobody inspects the spammish repetition") == 0xFBCEA83C8A378BF1


def test_dynamic_values_are_haproxys() -> None:
    # what HAProxy 2.6.12 set for `server s1 127.0.0.1:18090`, `[::1]:18092`...
    assert dynamic_value(b"mysecret", "127.0.0.1", 18090) == b"17e76e23b228b105"
    assert dynamic_value(LONG_KEY, "127.0.0.1", 18090) == b"ec89a24f19ce3943"
    assert dynamic_value(LONG_KEY, "[::1]", 18092) == b"6637be5b4076fac2"
    assert dynamic_value(b"newkey", "127.0.0.1", 18090) == b"3aa08a71ee69df46"
    assert dynamic_value(b"k", "localhost", 80) is None  # not an address (yet)


HEAD = ("defaults\n mode http\n timeout client 1s\n timeout server 1s\n timeout connect 1s\n"
        "frontend f\n bind 127.0.0.1:18081\n dynamic-cookie-key zz\n default_backend b\n"
        "backend b\n")
CHECK_CASES = [
    HEAD + " dynamic-cookie-key\n", HEAD + " dynamic-cookie-key a b\n",
    HEAD + " cookie SRV insert dynamic\n",
    HEAD + " cookie SRV insert dynamic\n dynamic-cookie-key k\n server a 127.0.0.1:80\n"
    " server b 127.0.0.1:80\n",
    HEAD + " cookie SRV insert dynamic\n dynamic-cookie-key k\n server a 127.0.0.1:80\n"
    " server b 127.0.0.1:80\n server c 127.0.0.1:80\n",
    HEAD + " cookie SRV insert dynamic\n dynamic-cookie-key k\n server a localhost:80\n",
    HEAD + " cookie SRV insert dynamic\n dynamic-cookie-key k\n server a 127.0.0.1:80 cookie x\n"
    " server b 127.0.0.1:80 cookie x\n",
    HEAD + " cookie SRV insert dynamic\n dynamic-cookie-key k\n server a 127.0.0.1:80 disabled\n"
    " server b 127.0.0.1:80\n",
]


@pytest.mark.skipif(not HAVE_HAPROXY, reason="needs Debian's haproxy")
@pytest.mark.parametrize("text", CHECK_CASES)
def test_check_messages_match_haproxy(tmp_path: Path, capsys: Any, text: str) -> None:
    assert_text_like_haproxy(tmp_path, capsys, text)


CFG = ADMIN_HEAD + """
frontend f
    bind 127.0.0.1:@@fe@@
    default_backend b

backend b
    cookie SRV insert dynamic
    dynamic-cookie-key 0123456789abcdef0123456789abcdef0123456789
    server s1 127.0.0.1:@@s1@@
    server s2 127.0.0.1:@@s2@@
"""


def _get(port: int, cookie: bytes | None = None) -> tuple[str, list[str]]:
    """Which server answered, and the SRV values lb set."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/", headers={"Cookie": b"SRV=" + cookie} if cookie else {})
    r = c.getresponse()
    r.read()
    c.close()
    set_cookies = [v.split(";")[0].split("=", 1)[1] for k, v in r.getheaders()
                   if k.lower() == "set-cookie"]
    return r.getheader("x-server") or "", set_cookies


@pytest.mark.parametrize("kind", KINDS)
def test_cookies_follow_the_key_the_switch_and_the_address(kind: str, tmp_path: Path) -> None:
    sock = str(tmp_path / "s.sock")
    with HttpBackend("s1") as s1, HttpBackend("s2") as s2:
        def ck(key: bytes, port: int) -> bytes:
            value = dynamic_value(key, "127.0.0.1", port)
            assert value is not None
            return value

        ports = {"s1": s1.port, "s2": s2.port}
        text = CFG.format(sock=sock)
        proxy = LbProcess(text, ports) if kind == "lb" else Haproxy(text, ports,
                                                                    single_thread=True)
        with proxy as px:
            wait_socket(sock)
            fe = px.ports["fe"]
            old = (ck(LONG_KEY, s1.port), ck(LONG_KEY, s2.port))
            assert _get(fe) == ("s1", [old[0].decode()])
            assert _get(fe, old[1]) == ("s2", [])  # stuck to s2 by its dynamic cookie
            assert query(sock, "set dynamic-cookie-key backend b newkey") == "\n"
            new = {"s1": ck(b"newkey", s1.port), "s2": ck(b"newkey", s2.port)}
            who, got = _get(fe, old[1])  # old values are gone: balanced, and a new one
            assert got == [new[who].decode()]
            assert _get(fe, new["s2"]) == ("s2", [])
            assert query(sock, "disable dynamic-cookie backend b") == "\n"
            # no value to match nor to set: HAProxy 2.6.12 then sets an empty one
            assert _get(fe, new["s2"])[1] == [""]
            assert query(sock, "enable dynamic-cookie backend b") == "\n"
            assert _get(fe, new["s2"]) == ("s2", [])
            # a server's value follows its address: s2 now shares s1's value
            assert query(sock, f"set server b/s2 addr 127.0.0.1 port {s1.port}") == \
                f"no need to change the addr, port changed from '{s2.port}' to " \
                f"'{s1.port}' by 'stats socket command'\n\n"
            who, got = _get(fe, new["s2"])
            assert got == [new["s1"].decode()]  # whoever answers: the value both share
            assert query(sock, "enable dynamic-cookie backend") == \
                "A backend name is expected.\n\n"
            assert query(sock, "enable dynamic-cookie backend nosuch") == "No such backend.\n\n"
            assert query(sock, "set dynamic-cookie-key backend b") == \
                "String value expected.\n\n"


def test_master_worker_pushes_the_change_to_its_workers(tmp_path: Path) -> None:
    """`lb -W`: the master's stats socket takes the command; the workers follow."""
    import time

    sock = str(tmp_path / "m.sock")
    run = tmp_path / "run"
    run.mkdir()
    with HttpBackend("s1") as s1, HttpBackend("s2") as s2, \
            LbProcess(CFG.format(sock=sock), {"s1": s1.port, "s2": s2.port}, args=("-W",),
                      env={"LB_RUN_DIR": str(run)}) as lb:
        wait_socket(sock)
        fe = lb.ports["fe"]
        mine = dynamic_value(b"mw", "127.0.0.1", s1.port)
        assert mine is not None
        assert query(sock, "set dynamic-cookie-key backend b mw") == "\n"
        deadline = time.monotonic() + 10
        while _get(fe, mine)[1] and time.monotonic() < deadline:
            time.sleep(0.1)  # a value the worker knows is matched, not set again
        assert _get(fe, mine) == ("s1", [])


def test_a_key_beyond_latin1_is_taken_as_its_bytes() -> None:
    """The key is the configuration file's bytes (UTF-8 here), as HAProxy reads it;
    a key lb could not encode used to be a crash waiting at start-up."""
    from tests.lbproc import LbThread

    key = "clé-密钥"
    text = ("defaults\n mode http\n timeout connect 1s\n timeout client 5s\n timeout server 5s\n"
            "frontend f\n bind 127.0.0.1:@@fe@@\n default_backend b\nbackend b\n"
            f" cookie SRV insert dynamic\n dynamic-cookie-key {key}\n"
            " server s1 127.0.0.1:@@s1@@\n")
    with HttpBackend("s1") as s1, LbThread(text, ports={"s1": s1.port}) as lb:
        want = dynamic_value(key.encode(), "127.0.0.1", s1.port)
        assert want is not None
        assert _get(lb.ports["fe"]) == ("s1", [want.decode()])
