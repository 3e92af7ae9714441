"""The health checks HAProxy 2.6 names by an option: `option redis-check`,
`ssl-hello-chk`, `smtpchk`, `pgsql-check`, `mysql-check` and `ldap-check`.

Owns: the table of those options (``PRESETS``): how each reads its arguments
(HAProxy 2.6.12's error texts) and the tcp-check rules it stands for. The rules are
what HAProxy 2.6.12 sends and expects, written as the `tcp-check` lines that would
say it (read by the same parsers), so healthcheck runs them as any ruleset; the
replies HAProxy reads with code of its own (a MySQL packet, an LDAP bind response)
are `expect custom` rules naming a function of healthcheck.protocols. Such a check
words its results as HAProxy does for protocol checks: no "(tcp-check)" on success,
no "TCPCHK did not match" on failure, no step on a connection error
(``CheckSpec.protocol``).

Must not import: lb.config.build, lb.config.proxy_kw, healthcheck.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import lb.config.model as m
from lb.config.check_expect import parse_expect
from lb.config.check_rules import parse_connect


def _expect(*words: str) -> m.TcpCheckExpect:
    rule = parse_expect(("tcp-check", "expect", *words), 2, False)
    assert isinstance(rule, m.TcpCheckExpect), rule
    return rule


def _custom(reader: str) -> m.TcpCheckExpect:
    """An `expect custom` rule run by healthcheck.protocols' ``reader``."""
    return m.TcpCheckExpect(match="custom", pattern=reader.encode())


def _connect_linger() -> m.CheckConnect:
    rule = parse_connect(("tcp-check", "connect", "default", "linger"), 2, "tcp-check").rule
    assert rule is not None
    return rule


def _send(data: bytes) -> m.TcpCheckSend:
    return m.TcpCheckSend(data=data)


def _send_hex_lf(fmt: str) -> m.TcpCheckSend:
    return m.TcpCheckSend(data=b"", fmt=fmt, binary=True)


def _hex(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").hex().upper()


# ---- what each option stands for (args: the words after the option's name)


def _redis(args: list[str]) -> tuple[m.CheckStep, ...]:
    return (_send(b"*1\r\n$4\r\nPING\r\n"),
            _expect("string", "+PONG\r\n", "error-status", "L7STS",
                    "on-error", "%[res.payload(0,0),cut_crlf]",
                    "on-success", "Redis server is ok"))


# an SSLv3 ClientHello (record, handshake header, version 3.0, the time, a fixed
# 28-byte random, no session, 39 classic cipher suites, no compression)
_HELLO_HEAD = "16" "0300" "0079" "01" "000075" "0300"
_HELLO_RANDOM = _hex("HAPROXYSSLCHK\nHAPROXYSSLCHK\n")
_HELLO_TAIL = ("00" "004E" + "".join(f"{c:04X}" for c in (*range(0x01, 0x1C),
                                                         *range(0x2F, 0x3B)))
               + "01" "00")


def _ssl_hello(args: list[str]) -> tuple[m.CheckStep, ...]:
    return (_send_hex_lf(_HELLO_HEAD + "%[date(),htonl,hex]" + _HELLO_RANDOM + _HELLO_TAIL),
            _expect("rbinary", "^1[56]", "min-recv", "5", "ok-status", "L6OK",
                    "error-status", "L6RSP", "tout-status", "L6TOUT"))


_SMTP_REPLY = "%[res.payload(4,0),ltrim(' '),cut_crlf]"


def _smtp_answer(*more: str) -> m.TcpCheckExpect:
    return _expect("rstring", "^2[0-9]{2}[- \r]", "min-recv", "4", "error-status", "L7STS",
                   "on-error", _SMTP_REPLY, *more, "status-code", "res.payload(0,3)")


def _smtp(args: list[str]) -> tuple[m.CheckStep, ...]:
    hello = "HELO localhost"
    if len(args) >= 2 and args[1] and args[0] in ("EHLO", "HELO"):
        hello = f"{args[0]} {args[1]}"
    return (_connect_linger(),
            _expect("rstring", "^[0-9]{3}[ \r]", "min-recv", "4", "error-status", "L7RSP",
                    "on-error", "%[res.payload(0,0),cut_crlf]"),
            _expect("rstring", "^2[0-9]{2}[ \r]", "min-recv", "4", "error-status", "L7STS",
                    "on-error", _SMTP_REPLY, "status-code", "res.payload(0,3)"),
            _send(hello.encode("utf-8", "surrogateescape") + b"\r\n"),
            _smtp_answer(),
            # (HAProxy 2.6.12 then says goodbye, and reports the answer to that)
            _send(b"QUIT\r\n"),
            _smtp_answer("on-success", _SMTP_REPLY))


def _pgsql(args: list[str]) -> tuple[m.CheckStep, ...]:
    user = args[1].encode("utf-8", "surrogateescape")
    # a StartupMessage: its length, protocol 3.0, "user" = <user>, end of parameters
    startup = ((15 + len(user)).to_bytes(4, "big") + b"\x00\x03\x00\x00" + b"user\x00"
               + user + b"\x00\x00")
    return (_connect_linger(), _send(startup),
            _expect("!rstring", "^E", "min-recv", "5", "error-status", "L7RSP",
                    "on-error", "%[res.payload(6,0)]"),
            _expect("rbinary", "^52000000(08|0A|0C)000000(00|02|03|04|05|06)",
                    "min-recv", "9", "error-status", "L7STS",
                    "on-success", "PostgreSQL server is ok",
                    "on-error", "PostgreSQL unknown error"))


def _mysql(args: list[str]) -> tuple[m.CheckStep, ...]:
    steps: list[m.CheckStep] = [_connect_linger()]
    if args:
        user = args[1].encode("utf-8", "surrogateescape")
        old = len(args) > 2 and args[2] == "pre-41"
        # a client authentication packet (4.1 or older), then COM_QUIT
        if old:
            body = b"\x00\x80" + b"\x00\x00\x01" + user + b"\x00" + b"\x00"
        else:
            body = (b"\x00\x82\x00\x00" + b"\x00\x80\x00\x01" + b"\x21" + b"\x00" * 23
                    + user + b"\x00" + b"\x00")
        length = len(user) + (7 if old else 34)
        packet = length.to_bytes(3, "little") + b"\x01" + body
        steps.append(_send(packet + b"\x01\x00\x00\x00\x01"))
    steps.append(_custom("mysql-handshake"))
    if args:
        steps.append(_custom("mysql-ok"))
    return tuple(steps)


def _ldap(args: list[str]) -> tuple[m.CheckStep, ...]:
    # an anonymous LDAPv3 bindRequest, message 1
    return (_send(bytes.fromhex("300C020101600702010304008000")),
            _expect("rbinary", "^30", "min-recv", "14", "on-error", "Not LDAPv3 protocol"),
            _custom("ldap-bind"))


# ---- their arguments, as HAProxy 2.6.12 reads them


def _none(name: str, args: list[str]) -> str | None:
    return f"'option {name}' cannot handle unexpected argument '{args[0]}'." if args else None


def _smtp_args(name: str, args: list[str]) -> str | None:
    return (f"'option smtpchk' cannot handle unexpected argument '{args[2]}'."
            if len(args) > 2 else None)


def _mysql_args(name: str, args: list[str]) -> str | None:
    if not args:
        return None
    if args[0] != "user":
        return f"'option mysql-check' only supports optional values: 'user' (got '{args[0]}')."
    if len(args) < 2 or not args[1]:
        return "'option mysql-check user' expects <username> as argument."
    if len(args) > 2 and args[2] not in ("post-41", "pre-41"):
        return f"keyword 'user' only supports 'post-41' and 'pre-41' (got '{args[2]}')."
    return None


def _pgsql_args(name: str, args: list[str]) -> str | None:
    if len(args) == 2 and args[0] != "user":
        return "'option pgsql-check' only supports optional values: 'user'."
    if len(args) < 2 or args[0] != "user" or not args[1]:
        return "'option pgsql-check' expects 'user <username>' as argument."
    if len(args) > 2:
        return f"'option pgsql-check' cannot handle unexpected argument '{args[2]}'."
    return None


@dataclass(frozen=True, slots=True)
class Preset:
    """One option: its argument check (HAProxy's text, or None) and its rules."""

    check_args: Callable[[str, list[str]], str | None]
    rules: Callable[[list[str]], tuple[m.CheckStep, ...]]


PRESETS: dict[str, Preset] = {
    "redis-check": Preset(_none, _redis),
    "ssl-hello-chk": Preset(_none, _ssl_hello),
    "smtpchk": Preset(_smtp_args, _smtp),
    "pgsql-check": Preset(_pgsql_args, _pgsql),
    "mysql-check": Preset(_mysql_args, _mysql),
    "ldap-check": Preset(_none, _ldap),
}


def argument_error(name: str, args: list[str]) -> str | None:
    """HAProxy's objection to the words after `option <name>`, None when fine."""
    return PRESETS[name].check_args(name, args)


def rules_of(name: str, args: tuple[str, ...]) -> tuple[m.CheckStep, ...]:
    """The tcp-check rules `option <name> <args>` stands for (arguments checked)."""
    return PRESETS[name].rules(list(args))
