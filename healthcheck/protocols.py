"""The replies HAProxy 2.6 reads with code of its own in its protocol checks: the
`expect custom` rules lb.config.check_presets names.

Owns: ``CUSTOM``, name -> reader. A reader takes the bytes received so far and
whether more may come, and answers ("wait", None) for more, ("pass", None), or
("fail", (status, code, text)): HAProxy's status, check code and text.

- ``mysql-handshake`` / ``mysql-ok``: a MySQL packet (3-byte little-endian length,
  sequence number), the server's greeting at the start, or the answer to the
  login that follows it; an error packet (0xff) fails with its error number and
  message.
- ``ldap-bind``: an LDAPv3 bindResponse to message 1; its result code, when not 0,
  fails the check.

Must not import: asyncio, sockets, lb.proxy, healthcheck.runner.
"""

from __future__ import annotations

from collections.abc import Callable

Verdict = tuple[str, tuple[str, int, str] | None]
WAIT: Verdict = ("wait", None)
PASS: Verdict = ("pass", None)


def _text(data: bytes) -> str:
    """A server's text as HAProxy copies it (a C string: up to the first NUL)."""
    return data.split(b"\x00", 1)[0].decode("latin-1")


def _mysql_packet(buf: bytes, offset: int, last: bool) -> Verdict:
    if len(buf) < offset + 4:
        return ("fail", ("L7RSP", 0, "")) if last else WAIT
    length = int.from_bytes(buf[offset:offset + 3], "little")
    if len(buf) < offset + length + 4:
        return ("fail", ("L7RSP", 0, "")) if last else WAIT
    if buf[offset + 4] == 0xFF:  # an error packet: its number, then its message
        code = int.from_bytes(buf[offset + 5:offset + 7], "little")
        return "fail", ("L7STS", code, _text(buf[offset + 7:]))
    return PASS


def mysql_handshake(buf: bytes, last: bool) -> Verdict:
    return _mysql_packet(buf, 0, last)


def mysql_ok(buf: bytes, last: bool) -> Verdict:
    """The packet after the greeting (whose length says where it starts)."""
    return _mysql_packet(buf, 4 + int.from_bytes(buf[0:3], "little"), last)


_NOT_LDAP = ("fail", ("L7RSP", 0, "Not LDAPv3 protocol"))


def ldap_bind(buf: bytes, last: bool) -> Verdict:
    """The bindResponse (the rule before it waited for 14 bytes starting 0x30): a
    long-form length of one or two bytes is skipped, at either level."""
    def at(i: int) -> int:
        return buf[i] if i < len(buf) else -1

    extra = at(1) & 0x7F if at(1) >= 0 and at(1) & 0x80 else 0
    if extra > 2 or buf[2 + extra:6 + extra] != b"\x02\x01\x01\x61":
        return _NOT_LDAP
    inner = at(extra + 6)
    extra += inner & 0x7F if inner >= 0 and inner & 0x80 else 0
    if extra > 4 or buf[7 + extra:9 + extra] != b"\x0a\x01":
        return _NOT_LDAP
    code = at(extra + 9)
    if code > 0:
        return "fail", ("L7STS", code, "See RFC: http://tools.ietf.org/html/rfc4511#section-4.1.9")
    return PASS if code == 0 else _NOT_LDAP


CUSTOM: dict[str, Callable[[bytes, bool], Verdict]] = {
    "mysql-handshake": mysql_handshake,
    "mysql-ok": mysql_ok,
    "ldap-bind": ldap_bind,
}
