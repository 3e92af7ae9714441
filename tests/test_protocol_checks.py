"""The checks HAProxy names by a protocol (`option redis-check`, `ssl-hello-chk`,
`smtpchk`, `pgsql-check`, `mysql-check`, `ldap-check`: lb.config.check_presets,
healthcheck.protocols), side by side with HAProxy 2.6.12 against the same fake
servers: what each server received, and each server's status, check status, code
and text in `show stat`.

What HAProxy 2.6.12 showed (asserted below, after the live comparison): a pass says
"Redis server is ok", "PostgreSQL server is ok", an SMTP server's answer to QUIT
(code 221, after HELO and QUIT) or nothing (MySQL, LDAP, and L6OK for a TLS server);
a failure gives the server's own words (a Redis error line, an SMTP reply's text
with its code, a PostgreSQL error's severity, a MySQL error packet's number and
message, an LDAP result code) or nothing (L6RSP); a refused connection reads
"Connection refused", without the step HAProxy names in a `tcp-check` ruleset.
"""

from __future__ import annotations

import csv
import io
import os
import socket
import time

import pytest

from tests.lbproc import LbProcess, RawBackend, free_port
from tests.stats_support import query
from tests.support_e2e import HAPROXY, Haproxy, SideBySide

needs_haproxy = pytest.mark.skipif(not os.path.exists(HAPROXY), reason="needs haproxy")

GREETING = (b"\x0a5.7.30-test\x00\x01\x00\x00\x00abcdefgh\x00\xff\xf7\x21\x02\x00\xff\x81"
            b"\x15" + b"\x00" * 10 + b"ijklmnopqrst\x00mysql_native_password\x00")
MYSQL_GREETING = len(GREETING).to_bytes(3, "little") + b"\x00" + GREETING
MYSQL_OK = b"\x07\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00"
_DENIED = b"\xff\x15\x04#28000Access denied for user"
MYSQL_DENIED = len(_DENIED).to_bytes(3, "little") + b"\x02" + _DENIED
LDAP_BOUND = bytes.fromhex("300c02010161070a010004000400")
LDAP_REFUSED = bytes.fromhex("300c02010161070a013104000400")  # result 49


def _exchange(*steps: bytes | None):  # type: ignore[no-untyped-def]
    """A server that plays ``steps`` in turn: bytes to send, or None to read what
    comes (kept in ``.received``, the first read of each connection)."""
    def handler(c: socket.socket, be: RawBackend) -> None:
        c.settimeout(2)
        first = True
        for step in steps:
            if step is None:
                got = c.recv(65536)
                if first:
                    be.received.append(got)
                    first = False
            else:
                c.sendall(step)
        time.sleep(0.05)
        c.close()
    return handler


SERVERS = {
    "redis_ok": _exchange(None, b"+PONG\r\n"),
    "redis_err": _exchange(None, b"-ERR oops\r\n"),
    "smtp_ok": _exchange(b"220 mail ready\r\n", None, b"250-hello there\r\n250 SIZE 9\r\n",
                         None, b"221 bye\r\n"),
    "smtp_busy": _exchange(b"554 go away\r\n"),
    "smtp_helo": _exchange(b"220 mail ready\r\n", None, b"501 syntax\r\n"),
    "pg_ok": _exchange(None, b"R\x00\x00\x00\x08\x00\x00\x00\x00"),
    "pg_err": _exchange(None, b"E\x00\x00\x00\x20SFATAL\x00C28000\x00Mno such user\x00\x00"),
    "my_ok": _exchange(MYSQL_GREETING, None, MYSQL_OK),
    "my_denied": _exchange(MYSQL_GREETING, None, MYSQL_DENIED),
    "ldap_ok": _exchange(None, LDAP_BOUND),
    "ldap_refused": _exchange(None, LDAP_REFUSED),
    "ldap_http": _exchange(None, b"HTTP/1.0 400 Bad\r\n\r\n"),
    "tls_alert": _exchange(None, b"\x15\x03\x00\x00\x02\x02\x28"),
    "tls_http": _exchange(None, b"HTTP/1.0 400 Bad\r\n\r\n"),
}

CONFIG = """
global
  stats socket {sock} level admin
defaults
  mode tcp
  timeout connect 1s
  timeout client 1s
  timeout server 1s
  timeout check 1s
  default-server check inter 300ms fall 1 rise 1
frontend fe
  bind 127.0.0.1:{fe}
  default_backend redis
backend redis
  option redis-check
  server ok 127.0.0.1:{redis_ok}
  server err 127.0.0.1:{redis_err}
  server dead 127.0.0.1:{dead}
backend smtp
  option smtpchk EHLO lb.example
  server ok 127.0.0.1:{smtp_ok}
  server busy 127.0.0.1:{smtp_busy}
  server helo 127.0.0.1:{smtp_helo}
backend pg
  option pgsql-check user alice
  server ok 127.0.0.1:{pg_ok}
  server err 127.0.0.1:{pg_err}
backend my
  option mysql-check user bob
  server ok 127.0.0.1:{my_ok}
  server denied 127.0.0.1:{my_denied}
backend my40
  option mysql-check user bob pre-41
  server ok 127.0.0.1:{my_ok}
backend ldap
  option ldap-check
  server ok 127.0.0.1:{ldap_ok}
  server refused 127.0.0.1:{ldap_refused}
  server http 127.0.0.1:{ldap_http}
backend tls
  option ssl-hello-chk
  server alert 127.0.0.1:{tls_alert}
  server http 127.0.0.1:{tls_http}
"""


def _rows(sock: str) -> dict[str, tuple[str, ...]] | None:
    out = {}
    for d in csv.DictReader(io.StringIO(query(sock, "show stat").lstrip("# "))):
        if d["svname"] in ("FRONTEND", "BACKEND"):
            continue
        if d["check_status"].startswith("* "):  # (a check under way)
            return None
        out[f"{d['pxname']}/{d['svname']}"] = (d["status"], d["check_status"],
                                               d["check_code"], d["last_chk"])
    return out


def _first_bytes(backends: dict[str, RawBackend]) -> dict[str, bytes]:
    got = {}
    for name, be in backends.items():
        if be.received:
            data = be.received[0]
            if name.startswith("tls"):  # (the hello's clock, bytes 11 to 14)
                data = data[:11] + b"TIME" + data[15:]
            got[name] = data
    return got


@needs_haproxy
def test_protocol_checks_like_haproxy(tmp_path) -> None:  # type: ignore[no-untyped-def]
    backends = {name: RawBackend(h).__enter__() for name, h in SERVERS.items()}
    ports = {name: be.port for name, be in backends.items()}
    try:
        pair = SideBySide(str(tmp_path), lambda kind, sock, log: CONFIG.format(
            sock=sock, fe=free_port(), dead=free_port(), **ports))
        try:
            rows = pair.settle(_rows, looks=2, timeout=20)
        finally:
            pair.close()
    finally:
        for be in backends.values():
            be.__exit__()
    assert rows == {
        "redis/ok": ("UP", "L7OK", "0", "Redis server is ok"),
        "redis/err": ("DOWN", "L7STS", "0", "-ERR oops"),
        "redis/dead": ("DOWN", "L4CON", "", "Connection refused"),
        "smtp/ok": ("UP", "L7OK", "221", "bye"),
        "smtp/busy": ("DOWN", "L7STS", "554", "go away"),
        "smtp/helo": ("DOWN", "L7STS", "501", "syntax"),
        "pg/ok": ("UP", "L7OK", "0", "PostgreSQL server is ok"),
        "pg/err": ("DOWN", "L7RSP", "", "FATAL"),
        "my/ok": ("UP", "L7OK", "0", ""),
        "my/denied": ("DOWN", "L7STS", "1045", "#28000Access denied for user"),
        "my40/ok": ("UP", "L7OK", "0", ""),
        "ldap/ok": ("UP", "L7OK", "0", ""),
        "ldap/refused": ("DOWN", "L7STS", "49",
                         "See RFC: http://tools.ietf.org/html/rfc4511#section-4.1.9"),
        "ldap/http": ("DOWN", "L7RSP", "", "Not LDAPv3 protocol"),
        "tls/alert": ("UP", "L6OK", "", ""),
        "tls/http": ("DOWN", "L6RSP", "", ""),
    }


def _sent_by(kind: str) -> dict[str, bytes]:
    """The first bytes each fake server received from ``kind``'s checks."""
    backends = {name: RawBackend(h).__enter__() for name, h in SERVERS.items()}
    ports = {name: be.port for name, be in backends.items()}
    fe = free_port()
    text = CONFIG.replace("  stats socket {sock} level admin\n", "").format(
        fe=fe, dead=free_port(), **ports)
    try:
        with (LbProcess(text, {"fe": fe}) if kind == "lb" else Haproxy(text, {"fe": fe})):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(
                    not be.received for n, be in backends.items()
                    if n not in ("smtp_busy",)):
                time.sleep(0.05)
        return _first_bytes(backends)
    finally:
        for be in backends.values():
            be.__exit__()


@needs_haproxy
def test_what_protocol_checks_send_like_haproxy() -> None:
    theirs = _sent_by("haproxy")
    assert _sent_by("lb") == theirs
    # as HAProxy 2.6.12 sent them
    assert theirs["redis_ok"] == b"*1\r\n$4\r\nPING\r\n"
    assert theirs["smtp_ok"] == b"EHLO lb.example\r\n"
    assert theirs["pg_ok"] == bytes.fromhex("00000014000300007573657200616c6963650000")
    assert theirs["my_ok"] == bytes.fromhex(
        "25000001008200000080000121" + "00" * 23 + "626f6200000100000001")
    assert theirs["ldap_ok"] == bytes.fromhex("300C020101600702010304008000")
    assert theirs["tls_alert"][:11] == bytes.fromhex("1603000079010000750300")
    assert theirs["tls_alert"][15:43] == b"HAPROXYSSLCHK\nHAPROXYSSLCHK\n"
