"""`server` and `default-server` keywords.

Owns: the SERVER_KEYWORDS table (one row per server option: takes an argument or
not, how the argument is parsed into ``lb.config.model.Server`` fields) and the two
section keywords that use it (spec §5, §7.1, §7.7).

Must not import: lb.config.build, lb.config.proxy_kw.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import lb.config.model as m
from lb.config.addresses import is_ip_literal
from lb.config.lexer import Line
from lb.config.registry import ParseCtx, ProxyBuilder, origin, suggest
from lb.http import proxyproto
from lb.match import sample, uses
from lb.tls.backend import SYSTEM_CA
from lb.tls.certs import FLAG_VERSIONS, TLS_VERSIONS, TlsFileError, check_ca_file
from lb.units import UnitError, atoi, parse_time_ms


class ServerArgError(Exception):
    """A server option is invalid; str() is HAProxy's text (after 'server b/s' : )."""


class ServerArgText(ServerArgError):
    """A server option is invalid; str() is HAProxy's whole text, its final
    punctuation included, and ``more`` the messages HAProxy prints after it (each an
    ALERT line of its own, without location)."""

    def __init__(self, text: str, more: tuple[str, ...] = ()) -> None:
        super().__init__(text)
        self.more = more


def _time(name: str, value: str, srv: str, *, zero_ok: bool = False) -> float:
    try:
        ms, junk = parse_time_ms(value)
    except UnitError as exc:
        if exc.reason == "overflow":
            raise ServerArgError(
                f"timer overflow in argument <{value}> to <{name}> of server {srv}, maximum "
                "value is 2147483647 ms (~24.8 days).") from None
        if exc.reason == "empty":
            raise ServerArgError(f"'{name}' expects a delay as argument.") from None
        raise ServerArgError(f"unexpected character '{exc.char}' in '{name}' argument of "
                             f"server {srv}.") from None
    if junk:
        raise ServerArgError(f"unexpected character '{junk[0]}' in '{name}' argument of "
                             f"server {srv}.")
    if ms == 0 and not zero_ok:
        raise ServerArgError(f"invalid value 0 for argument '{name}' of server {srv}.")
    return ms / 1000.0


def _positive(name: str) -> Callable[[str, str], int]:
    def conv(value: str, srv: str) -> int:
        n = atoi(value)
        if n <= 0:
            raise ServerArgError(f"'{name}' has to be > 0.")
        return n
    return conv


def _error_limit(value: str, srv: str) -> int:
    n = atoi(value)
    if n <= 0:
        raise ServerArgError("error-limit has to be > 0.")
    return n


def _init_addr(value: str, srv: str) -> str:
    for method in value.split(","):
        if method and method not in ("libc", "last", "none") and not is_ip_literal(method):
            raise ServerArgError(f"'init-addr' : unknown init-addr method '{method}', "
                                 "supported methods are 'libc', 'last', 'none'.")
    return value


def _weight(value: str, srv: str) -> int:
    w = atoi(value)
    if not 0 <= w <= 256:
        raise ServerArgError(f"weight of server {srv} is not within 0 and 256 ({w}).")
    return w


def _port(value: str, srv: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ServerArgError("'port' expects a port number as argument.")
    return int(value)


def _choice(name: str, allowed: tuple[str, ...], listed: str = "") -> Callable[[str, str], str]:
    """One of ``allowed``; ``listed``: HAProxy's own wording of the choices."""
    def conv(value: str, srv: str) -> str:
        if value not in allowed:
            exp = listed or " or ".join(f"'{a}'" for a in allowed)
            raise ServerArgError(f"'{name}' expects {exp} but got '{value}'")
        return value
    return conv


@dataclass(frozen=True, slots=True)
class ServerKw:
    """One server option: ``field`` receives ``conv(arg)`` or ``value`` for flags."""

    name: str
    field: str | None  # model.Server field (None = accepted and ignored)
    conv: Callable[[str, str], Any] | None = None  # None = flag without argument
    value: Any = True
    help: str = ""


def _t(name: str) -> Callable[[str, str], float]:
    return lambda v, s: _time(name, v, s)


def _str(v: str, s: str) -> str:
    return v


def _check_addr(v: str, s: str) -> str:
    problem = socket_path_problem(v)
    if problem:
        raise ServerArgText(f"'addr' : {problem}.")
    return v


def _int(v: str, s: str) -> int:
    return atoi(v)


def _agent_addr(v: str, s: str) -> str:
    try:
        return str(ipaddress.ip_address(v))
    except ValueError:
        raise ServerArgError(f"parsing agent-addr failed. Check if '{v}' is correct "
                             "address.") from None


def _proxy_v2_options(v: str, s: str) -> tuple[str, ...]:
    words = tuple(v.split(","))
    for w in words:
        if w not in proxyproto.V2_OPTIONS:
            raise ServerArgError(f"'{w}' : proxy v2 option not implemented")
    return words


def _resolve_prefer(v: str, s: str) -> str:
    if v not in ("ipv4", "ipv6"):
        raise ServerArgError("'resolve-prefer' expects either ipv4 or ipv6 as argument.")
    return v


RESOLVE_OPTS = ("allow-dup-ip", "ignore-weight", "prevent-dup-ip")


def _resolve_opts(v: str, s: str) -> tuple[str, ...]:
    if not v:
        return ()  # (HAProxy 2.6.12 takes an empty list)
    words = tuple(v.split(","))
    for w in words:
        if w not in RESOLVE_OPTS:
            raise ServerArgError(f"'resolve-opts' : unknown resolve-opts option '{w}', "
                                 "supported methods are 'allow-dup-ip', 'ignore-weight', "
                                 "and 'prevent-dup-ip'.")
    return words


def _resolve_nets(v: str, s: str) -> tuple[str, ...]:
    if not v:
        raise ServerArgError("'resolve-net' expects a list of networks.")
    nets = []
    for w in v.split(","):
        try:
            nets.append(str(ipaddress.ip_network(w, strict=False)))
        except ValueError:
            raise ServerArgError(f"'resolve-net' invalid network '{w}'.") from None
    return tuple(nets)


def _server_id(v: str, s: str) -> int:
    n = atoi(v)
    if n <= 0:
        raise ServerArgError("'id' : custom id has to be > 0")
    return n


def _verify(v: str, s: str) -> str:
    if v not in ("none", "required"):
        raise ServerArgText(f"'verify' : unknown verify method '{v}', only 'none' and "
                            "'required' are supported.")
    return v


def _tls_version(v: str, s: str) -> str:
    if v not in TLS_VERSIONS:
        raise ServerArgText(f"'{v}' : unknown ssl/tls version.")
    return v


def _ca_file(name: str) -> Callable[[str, str], str]:
    """`ca-file` / `crl-file`: the file must hold a certificate or a CRL (HAProxy
    loads it while it reads the line; `@system-ca` is the system's store)."""
    def conv(v: str, s: str) -> str:
        if v != SYSTEM_CA:
            try:
                check_ca_file(v)
            except TlsFileError as exc:
                raise ServerArgText(str(exc), (f"'{name}' : unable to load {v}.",)) from None
        return v
    return conv


# the TLS version flags: `force-<v>` fixes both ends, `no-<v>` turns one off
_FORCE_FLAGS = {f"force-{k}": v for k, v in FLAG_VERSIONS.items()}
_NO_FLAGS = {f"no-{k}": v for k, v in FLAG_VERSIONS.items()}
# paths read under the global `ca-base` / `crt-base` when relative
_BASED = {"ca-file": "ca_base", "crl-file": "ca_base", "crt": "crt_base"}


def _based(word: str, arg: str, bases: Mapping[str, Any]) -> str:
    base = bases.get(_BASED[word])
    if not base or arg.startswith("/") or (word != "crt" and arg.startswith("@")):
        return arg
    return f"{base}/{arg}"


SERVER_KEYWORDS: dict[str, ServerKw] = {k.name: k for k in (
    ServerKw("addr", "check_addr", _check_addr, help="address used for health checks"),
    ServerKw("agent-addr", "agent_addr", _agent_addr, help="address of the agent check"),
    ServerKw("agent-check", "agent_check", help="enable the auxiliary agent check"),
    ServerKw("agent-inter", "agent_inter", _t("agent-inter"),
             help="interval between agent checks"),
    ServerKw("agent-port", "agent_port", _int, help="TCP port of the agent check"),
    ServerKw("agent-send", "agent_send", _str, help="string sent to the agent"),
    ServerKw("alpn", "alpn", _str, help="ALPN protocols offered to a TLS server (not h2)"),
    ServerKw("backup", "backup", help="only used when no active server is usable"),
    ServerKw("ca-file", "ca_file", _ca_file("ca-file"),
             help="CA certificates the server's certificate is verified with"),
    ServerKw("check", "check", help="enable health checks"),
    ServerKw("check-send-proxy", "check_send_proxy"),
    ServerKw("check-alpn", "check_alpn", _str),
    ServerKw("check-sni", "check_sni", _str, help="SNI of TLS health checks"),
    ServerKw("check-ssl", "check_ssl"),
    ServerKw("cookie", "cookie", _str, help="persistence cookie value"),
    ServerKw("ciphers", "ciphers", _str),
    ServerKw("ciphersuites", "ciphersuites", _str),
    ServerKw("crl-file", "crl_file", _ca_file("crl-file")),
    ServerKw("crt", "crt", _str, help="client certificate (PEM with its key) for TLS"),
    ServerKw("disabled", "disabled", help="start in maintenance"),
    ServerKw("downinter", "downinter", _t("downinter")),
    ServerKw("enabled", "disabled", value=False),
    ServerKw("error-limit", "error_limit", _error_limit),
    ServerKw("fall", "fall", _positive("fall"), help="failed checks before DOWN"),
    ServerKw("fastinter", "fastinter", _t("fastinter")),
    ServerKw("id", "forced_id", _server_id, help="the server's number (stats sid)"),
    ServerKw("init-addr", "init_addr", _init_addr,
             help="start-up address methods: last,libc,none,<ip>"),
    ServerKw("inter", "inter", _t("inter"), help="interval between checks"),
    ServerKw("max-reuse", None, _int),
    ServerKw("maxconn", "maxconn", _int, help="max concurrent requests"),
    ServerKw("maxqueue", "maxqueue", _int, help="max requests in this server's queue"),
    ServerKw("minconn", "minconn", _int),
    ServerKw("no-backup", "backup", value=False),
    ServerKw("no-check", "check", value=False),
    ServerKw("no-check-ssl", "check_ssl", value=False),
    ServerKw("no-send-proxy", "send_proxy", value=False),
    ServerKw("no-ssl", "ssl", value=False),
    ServerKw("no-tfo", None),
    ServerKw("no-verifyhost", "verifyhost", value=None),
    ServerKw("npn", None, _str),
    ServerKw("non-stick", None),
    ServerKw("observe", "observe", _choice("observe", ("none", "layer4", "layer7"),
                                           "one of 'none', 'layer4', 'layer7'")),
    ServerKw("on-error", "on_error", _choice(
        "on-error", ("fastinter", "fail-check", "sudden-death", "mark-down"),
        "one of 'fastinter', 'fail-check', 'sudden-death' or 'mark-down'")),
    ServerKw("on-marked-down", "on_marked_down",
             _choice("on-marked-down", ("shutdown-sessions",))),
    ServerKw("on-marked-up", "on_marked_up",
             _choice("on-marked-up", ("shutdown-backup-sessions",))),
    ServerKw("pool-max-conn", None, _int),
    ServerKw("pool-purge-delay", None, _str),
    ServerKw("port", "check_port", _port, help="port used for health checks"),
    ServerKw("proto", None, _str),
    ServerKw("proxy-v2-options", "proxy_v2_options", _proxy_v2_options,
             help="TLVs of the v2 PROXY header: crc32c, unique-id, authority, ssl"),
    ServerKw("redir", None, _str),
    ServerKw("resolve-prefer", "resolve_prefer", _resolve_prefer,
             help="address family asked first: ipv4 or ipv6"),
    ServerKw("resolve-net", "resolve_nets", _resolve_nets,
             help="networks preferred among the resolved addresses"),
    ServerKw("resolvers", "resolvers", _str, help="resolvers section that keeps its address"),
    ServerKw("rise", "rise", _positive("rise"), help="successful checks before UP"),
    ServerKw("send-proxy", "send_proxy"),
    ServerKw("send-proxy-v2", "send_proxy_v2"),
    # the SSL extensions are only added for a TLS client connection, which lb never
    # has: the same header as send-proxy-v2
    ServerKw("send-proxy-v2-ssl", "send_proxy_v2"),
    ServerKw("send-proxy-v2-ssl-cn", "send_proxy_v2"),
    *(ServerKw(k, "send_proxy_v2", value=False) for k in (
        "no-send-proxy-v2", "no-send-proxy-v2-ssl", "no-send-proxy-v2-ssl-cn")),
    ServerKw("no-check-send-proxy", "check_send_proxy", value=False),
    ServerKw("no-agent-check", "agent_check", value=False),
    ServerKw("stick", None),
    ServerKw("check-via-socks4", None),
    ServerKw("resolve-opts", "resolve_opts", _resolve_opts,
             help="allow-dup-ip, ignore-weight, prevent-dup-ip"),
    # TLS settings of a server line (lb.tls.backend; the version flags are read by
    # parse_options; 0-RTT is not sent)
    *(ServerKw(k, None) for k in ("allow-0rtt", *_FORCE_FLAGS, *_NO_FLAGS)),
    ServerKw("tls-tickets", "no_tls_tickets", value=False),
    ServerKw("no-tls-tickets", "no_tls_tickets"),
    ServerKw("ssl-reuse", "ssl_reuse"),
    ServerKw("no-ssl-reuse", "ssl_reuse", value=False),
    ServerKw("ssl-max-ver", "ssl_max_ver", _tls_version),
    ServerKw("ssl-min-ver", "ssl_min_ver", _tls_version),
    ServerKw("slowstart", "slowstart", lambda v, s: _time("slowstart", v, s, zero_ok=True)),
    ServerKw("sni", "sni", _str, help="SNI sent to a TLS server: a sample expression"),
    ServerKw("ssl", "ssl", help="speak TLS to the server"),
    ServerKw("tfo", None),
    ServerKw("track", "track", _str),
    ServerKw("verify", "verify", _verify, help="verify the server's certificate: none|required"),
    ServerKw("verifyhost", "verifyhost", _str, help="name the server's certificate must carry"),
    ServerKw("weight", "weight", _weight, help="load-balancing weight 0..256"),
    ServerKw("ws", None, _choice("ws", ("auto", "h1", "h2"))),
)}

_SERVER_FIELDS = {f.name for f in fields(m.Server)}


def str2sa(text: str, written: str, ranges: bool = False,
           family: int | None = None) -> tuple[str, int | None, int | None] | str:
    """``host[:port]`` as HAProxy 2.6.12's str2sa_range reads it -> (host, port or None,
    high port of a range or None), or its error text. The port is split at the last
    colon unless the host is bracketed; an empty host is any address. ``ranges``:
    ``port-port`` is allowed (a server's `source`). With ``family`` (an AF_*, or
    AF_UNSPEC) the host must be an address of it or a name that resolves to one, as
    where HAProxy resolves at once (`source`), checked before the port as it does."""
    bracketed = text.startswith("[") and "]" in text
    if bracketed:
        end = text.index("]")
        host, rest = text[1:end], text[end + 1:]
        if rest and not rest.startswith(":"):
            return f"invalid address: '{text}' in '{written}'"
        port_text = rest[1:]
    elif ":" in text:
        host, port_text = text.rsplit(":", 1)
    else:
        host, port_text = text, ""
    if family is not None and host and not _resolves(host, family):
        return f"invalid address: '{host}' in '{written}'"
    port: int | None = None
    high: int | None = None
    if port_text:
        if port_text[0] in "+-":
            return f"port offset not permitted here in '{written}'"
        if "-" in port_text and not ranges:
            return f"port range not permitted here in '{written}'"
        low_text, dash, high_text = port_text.partition("-")
        for part in (low_text, high_text) if dash else (low_text,):
            bad = next((c for c in part if not ("0" <= c <= "9")), None)
            if bad is not None or not part:
                return (f"invalid character '{bad or '-'}' in port number '{port_text}' "
                        f"in '{written}'")
        port = int(low_text)
        high = int(high_text) if dash else None
        if port > 65535 or (high is not None and high > 65535):
            return f"invalid port '{port_text}'"
        if high is not None and (high < port or port == 0):
            return f"invalid port range '{port_text}'"
    if not host:
        return ("::" if bracketed else "0.0.0.0"), port, high
    if not bracketed and (":" in host or "[" in host):  # `::1` or `[::1` unbracketed
        return f"invalid address: '{host}' in '{written}'"
    return host, port, high


# address prefixes of HAProxy 2.6.12 for a stream socket: the family they ask for
_STREAM_PREFIXES = (("ipv4@", socket.AF_INET), ("ipv6@", socket.AF_INET6),
                    ("tcp@", socket.AF_UNSPEC), ("tcp4@", socket.AF_INET),
                    ("tcp6@", socket.AF_INET6))
_DGRAM_PREFIXES = ("udp@", "udp4@", "udp6@")
SOCKET_PATH_PREFIXES = ("unix@", "abns@", "/")
# the longest socket paths HAProxy 2.6.12 takes: sun_path's 108 bytes less its ending
# NUL; for a file, 10 fewer (room for the temporary name a bind starts with)
_ABNS_MAX = 107
_UNIX_MAX = 97


def socket_path_problem(text: str) -> str | None:
    """HAProxy's complaint about a socket address too long for sun_path (``/path``,
    ``unix@path``, ``abns@name``), wherever one is written; None for any other."""
    if text.startswith("abns@"):
        size, limit = len(text) - 5, _ABNS_MAX
    elif text.startswith("unix@"):
        size, limit = len(text) - 5, _UNIX_MAX
    elif text.startswith("/"):
        size, limit = len(text), _UNIX_MAX
    else:
        return None
    return f"socket path '{text}' too long (max {limit})" if size > limit else None


def connect_address(arg: str) -> tuple[str, int | None] | str:
    """An address lb connects to (`dispatch`), read as HAProxy 2.6.12's str2sa_range
    reads one: (IP address, port), (socket path as written, None), or the error text
    (some end with a line feed, as HAProxy's do). A name is resolved now, in the family
    its prefix asks for; the port is split at the last colon unless the host is
    bracketed (``ipv6@::1:80`` is ::1 port 80)."""
    if arg.startswith(("fd@", "sockpair@")):
        prefix, _, number = arg.partition("@")
        # (past a long: invalid; a socket pair's must also fit in an int)
        if not number.isdigit() or int(number) > (
                0x7FFFFFFF if prefix == "sockpair" else 0x7FFFFFFFFFFFFFFF):
            return f"file descriptor '{number}' is not a valid integer in '{arg}'\n"
        if prefix == "fd":
            return f"a file descriptor is not acceptable here in '{arg}'\n"
        try:
            sock = socket.socket(fileno=int(number))
        except OSError as e:
            return f"cannot use file descriptor '{number}' : {os.strerror(e.errno or 0)}.\n"
        sock.detach()
        return arg, None
    if arg.startswith(SOCKET_PATH_PREFIXES):
        problem = socket_path_problem(arg)
        return (problem + "\n") if problem else (arg, None)
    if arg.startswith(_DGRAM_PREFIXES):
        return f"dgram-type address not acceptable in '{arg}'\n"
    family = socket.AF_UNSPEC
    text = arg
    for prefix, fam in _STREAM_PREFIXES:
        if arg.startswith(prefix):
            family, text = fam, arg[len(prefix):]
            break
    if not text.startswith("[") and text.count(":") > 1:
        host, _, port_text = text.rpartition(":")
        text = f"[{host}]:{port_text}"
    read = str2sa(text, arg)
    if isinstance(read, str):
        return read
    host, port, _ = read
    if port is None:
        return f"missing port specification in '{arg}'"
    if port == 0:
        return f"invalid port '{port}'"
    try:
        infos = socket.getaddrinfo(host, None, family, socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):
        return f"invalid address: '{host}' in '{arg}'\n"
    return str(infos[0][4][0]), port


SOURCE_USAGE = ("'source' expects <addr>[:<port>], and optionally 'usesrc' <addr>, and "
                "'interface' <name>")


def _resolves(host: str, family: int) -> bool:
    """An address of ``family`` (or a name resolving to one): HAProxy's str2ip2, which
    takes inet_aton's short forms (``1.2.3``) and asks the resolver for the rest."""
    try:
        socket.getaddrinfo(host, None, family)
    except (OSError, UnicodeError, ValueError):
        return False
    return True


def parse_source(args: tuple[str, ...], server: bool) -> tuple[m.Source | str, int]:
    """`source <addr>[:<port>[-<port>]] [interface <name>] [usesrc ...]` from its
    arguments -> (Source or HAProxy's error text, how many words it took).
    ``usesrc`` (transparent proxying) is refused: lb cannot connect from the
    client's address, and connecting from its own would change what servers see.
    Texts end as HAProxy's do (with a period, but not those of the address)."""
    if not args or not args[0]:
        return (SOURCE_USAGE.replace("[:<port>]", "[:<port>[-<port>]]") + " as argument."
                if server else SOURCE_USAGE + "."), 0
    written = args[0]
    addr = written.split("@", 1)[1] if written.startswith(("ipv4@", "ipv6@")) else written
    family = {"ipv4@": socket.AF_INET, "ipv6@": socket.AF_INET6}.get(written[:5],
                                                                     socket.AF_UNSPEC)
    res = str2sa(addr, written, ranges=server, family=family)
    if isinstance(res, str):
        if res.startswith(("invalid address", "invalid character")):
            # (HAProxy's text for these ends with a newline: a server line shows it
            # indented on lines of its own)
            if server:
                return f"\n  'source {written}' : {res}\n  \n", 0
            return f"'source {written}' : {res}\n", 0
        return f"'source {written}' : {res}", 0
    host, low, high = res
    interface = None
    i = 1
    while i < len(args) and args[i] in ("interface", "usesrc"):
        value = args[i + 1] if i + 1 < len(args) else ""
        if args[i] == "usesrc":
            if not value:
                return ("'usesrc' expects <addr>[:<port>], 'client', or 'clientip' as "
                        "argument."), i
            return ("'source ... usesrc' (transparent proxying) is not supported by lb: "
                    "servers would see lb's address instead of the client's."), i
        if not value:
            return "'source' : missing interface name.", i
        interface = value
        i += 2
    if not server and i < len(args):
        return "'source' only supports optional keywords 'interface' and 'usesrc'.", i
    return m.Source(address=host, port_low=low or 0, port_high=high or low or 0,
                    interface=interface), i


# HAProxy's text for an option whose argument is missing (else `expects <value>`)
_MISSING_ARG = {
    "id": "'id' : expects an integer argument",
    "port": "'port' expects a port number as argument.",
    "agent-port": "'agent-port' expects a port number as argument.",
    "agent-addr": "'agent-addr' expects an address as argument.",
    "agent-send": "'agent-send' expects a string as argument.",
    "observe": "'observe' expects <mode> as argument.",
    "error-limit": "'error-limit' expects an integer argument.",
    **{w: f"'{w}' expects a delay as argument."
       for w in ("inter", "fastinter", "downinter", "slowstart")},
}
# ... and those whose text carries its own final period (the TLS options)
_MISSING_TEXT = {
    "verify": "'verify' : missing verify method.",
    "sni": "'sni' : missing sni expression.",
    "ciphers": "'ciphers' : missing cipher suite.",
    "ciphersuites": "'ciphersuites' : missing cipher suite.",
    "alpn": "'alpn' : missing the comma-delimited ALPN protocol suite.",
    "check-alpn": "'check-alpn' : missing the comma-delimited ALPN protocol suite.",
    "npn": "'npn' : missing the comma-delimited NPN protocol suite.",
    "ca-file": "'ca-file' : missing CAfile path.",
    "crl-file": "'crl-file' : missing CRLfile path.",
    "crt": "'crt' : missing certificate file path.",
    "check-sni": "'check-sni' : missing SNI.",
    "verifyhost": "'verifyhost' : missing hostname to verify against.",
    "ssl-min-ver": "'ssl-min-ver' : missing the ssl/tls version.",
    "ssl-max-ver": "'ssl-max-ver' : missing the ssl/tls version.",
}
# options whose missing argument HAProxy judges as the value '' ("... but got ''")
_EMPTY_ARG_JUDGED = frozenset(("on-error", "on-marked-down", "on-marked-up",
                               "proxy-v2-options", "resolve-prefer", "resolve-opts",
                               "resolve-net", "resolvers"))


Problem = tuple[str, int, tuple[str, ...]]  # (text, index of the word, more texts)


def parse_options(words: tuple[str, ...], start: int, srv: str, values: dict[str, Any],
                  bases: Mapping[str, Any] | None = None) -> Problem | None:
    """Apply server options words[start:] to ``values``; ``bases``: the global
    settings read so far (`ca-base`, `crt-base`).

    Returns None on success, else (HAProxy's whole text, with its final period; the
    index of the offending word; the texts HAProxy prints after it). An unknown
    keyword gives an empty text.
    """
    i = start
    n = len(words)
    while i < n:
        w = words[i]
        if w == "source":
            src, used = parse_source(words[i + 1:], server=True)
            if isinstance(src, str):
                # (HAProxy adds a period after its own: "as argument..")
                return ((src if src.endswith("as argument.") else src.rstrip(".")) + ".", i, ())
            values["source"] = src
            i += 1 + used
            continue
        kw = SERVER_KEYWORDS.get(w)
        if kw is None:
            return ("", i, ())
        if kw.conv is None:
            _flag(kw, values)
            i += 1
            continue
        arg = words[i + 1] if i + 1 < n else ""
        if not arg and w not in _EMPTY_ARG_JUDGED:
            text = _MISSING_TEXT.get(w)
            return (text or _MISSING_ARG.get(w, f"'{w}' expects <value> as argument.") + ".",
                    i, ())
        if w in _BASED:
            arg = _based(w, arg, bases or {})
        try:
            val = kw.conv(arg, srv)
        except ServerArgText as exc:
            return (str(exc), i, exc.more)
        except ServerArgError as exc:
            return (str(exc) + ".", i, ())
        if kw.field:
            values[kw.field] = val
        i += 2
    return None


def _flag(kw: ServerKw, values: dict[str, Any]) -> None:
    """A flag without argument; the TLS version ones gather in ``ssl_no`` or fix both
    ends of the range."""
    forced = _FORCE_FLAGS.get(kw.name)
    if forced is not None:
        values["ssl_min_ver"] = values["ssl_max_ver"] = forced
    elif kw.name in _NO_FLAGS:
        off = _NO_FLAGS[kw.name]
        if off not in values.get("ssl_no", ()):
            values["ssl_no"] = (*values.get("ssl_no", ()), off)
    elif kw.field:
        values[kw.field] = kw.value


def split_address(addr: str) -> tuple[str, int | None, str | None]:
    """Split ``host[:port]`` (IPv6 literal allowed) → (host, port, error)."""
    a = addr
    for prefix in ("ipv4@", "ipv6@", "tcp@", "tcp4@", "tcp6@"):
        if a.startswith(prefix):
            a = a[len(prefix):]
            break
    if a.startswith("unix@") or a.startswith("/") or a.startswith("abns@"):
        return a, None, None
    if a.startswith("["):
        end = a.find("]")
        if end < 0:
            return a, None, f"invalid address: '{addr}'"
        host, rest = a[1:end], a[end + 1:]
        if not rest:
            return host, None, None
        if not rest.startswith(":"):
            return a, None, f"invalid address: '{addr}'"
        port_s = rest[1:]
    elif ":" in a:
        host, port_s = a.rsplit(":", 1)
    else:
        return a, None, None
    if port_s == "":
        return host, None, None
    if port_s[0] in "+-":
        return host, None, None  # relative port mapping: same as the client's
    if not port_s.isdigit() or not 0 <= int(port_s) <= 65535:
        return host, None, f"invalid port '{port_s}'"
    return host, int(port_s), None


def port_offset(addr: str) -> int:
    """The N of a ``host:+N`` or ``host:-N`` address (HAProxy adds it to the port
    the client connected to); 0 for any other."""
    _, colon, port_s = addr.rpartition(":")
    if not colon or port_s[:1] not in ("+", "-"):
        return 0
    digits = port_s[1:]
    n = int(digits) if digits.isdigit() else 0
    return -n if port_s[0] == "-" else n


def kw_default_server(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    words = line.words
    values = dict(p.default_server)
    err = parse_options(words, 1, "default-server", values, ctx.glob_values)
    if err is not None:
        msg, idx, more = err
        if not msg:
            bad = words[idx]
            sug = suggest(bad, SERVER_KEYWORDS)
            text = f"unknown keyword '{bad}'."
            if idx == 1:
                text += " Hint: no address was expected for this server."
            ctx.alert(line, text, "unknown-server-keyword", col=line.col(idx),
                      style="bracket", suggestion=sug)
        else:
            ctx.alert(line, msg, "bad-server-option", col=line.col(idx), style="bracket")
            _more(ctx, more)
    # (the options before a bad one stay set, as in HAProxy, which sets each in turn)
    p.default_server = values


def _ca_dir_warnings(line: Line, ctx: ParseCtx, label: str, values: dict[str, Any]) -> None:
    """A `ca-file`/`crl-file` directory on the line, read for the first time: HAProxy's
    warnings for its files without certificate (the line's first one at its line)."""
    first = True
    for i, w in enumerate(line.words[3:-1], 3):
        field = {"ca-file": "ca_file", "crl-file": "crl_file"}.get(w)
        path = values.get(field) if field else None
        if not path or path == SYSTEM_CA or path in ctx.ca_loaded:
            continue
        ctx.ca_loaded.add(path)
        try:
            texts = check_ca_file(path)
        except TlsFileError:
            continue
        for text in texts:
            if first:
                ctx.warn(line, f"{label} : {text}", "ca-directory", col=line.col(i),
                         style="bracket")
                first = False
            else:
                ctx.warn(None, text, "ca-directory", style="plain")


def kw_server(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    words = line.words
    if len(words) < 3 or not words[1] or not words[2]:
        ctx.alert(line, "'server' expects <name> and <addr>[:<port>] as arguments.",
                  "missing-argument", style="bracket")
        return
    name = words[1]
    label = f"'server {p.name}/{name}'"
    bad = next((c for c in name if not (c.isalnum() or c in "_.:-")), None)
    if bad is not None:
        ctx.alert(line, f"character '{bad}' is not permitted in server name '{name}'.",
                  "bad-name", col=line.col(1), style="bracket")
        return
    host, port, _ = split_address(words[2])
    err = _address_problem(words[2])
    if err:
        ctx.alert(line, f"{label} : {err}", "bad-address", col=line.col(2), style="bracket")
        return
    values = dict(p.default_server)
    res = parse_options(words, 3, name, values, ctx.glob_values)
    if res is not None:
        msg, idx, more = res
        if not msg:
            sug = suggest(words[idx], SERVER_KEYWORDS)
            ctx.alert(line, f"{label} : unknown keyword '{words[idx]}'.",
                      "unknown-server-keyword", col=line.col(idx), style="bracket",
                      suggestion=sug)
        else:
            code = "bad-weight" if msg.startswith("weight of") else "bad-server-option"
            ctx.alert(line, f"{label} : {msg}", code, col=line.col(idx), style="bracket")
            _more(ctx, more)
        return
    _ca_dir_warnings(line, ctx, label, values)
    if name in p.server_origins:
        prev = p.server_origins[name]
        ctx.alert(line, f"{p.label()}, another server named '{name}' was already defined at "
                  f"line {prev.line}, please use distinct names.", "duplicate-server",
                  col=line.col(1), phase="check")
        p.check_alerts.append(ctx.diags.items[-1])
        return
    if values.get("check") and values.get("track"):
        ctx.alert(line, f"{label} : unable to enable checks and tracking at the same time!",
                  "check-and-track", style="bracket")
        return
    if values.get("agent_check") and not values.get("agent_port"):
        ctx.alert(line, f"{label} : server {name} does not have agent port. Agent check has "
                  "been disabled.", "agent-without-port", style="bracket")
        return
    fid = values.get("forced_id", 0)
    same = next((s for s in p.servers if fid and s.forced_id == fid), None)
    if same is not None:
        ctx.alert(line, f"{label} : 'id' : custom id {fid} already used at "
                  f"{same.origin.file}:{same.origin.line} ('server {same.name}').", "duplicate-id",
                  col=line.col(words.index("id") + 1) if "id" in words else 0, style="bracket")
        return
    if values.get("observe") == "layer7" and p.mode != "http":
        # HAProxy 2.6: an ALERT that fails nothing, and the server is not observed
        ctx.soft_alert(line, f"{label} : 'layer7' can only be used in http proxies..",
                       "observe-layer7-tcp", style="bracket")
        values["observe"] = None
    if values.get("sni"):  # (read once the line is, a `default-server` one's too)
        bad = sni_problem(values["sni"])
        if bad is not None:
            ctx.alert(line, f"{label} : error detected while parsing sni expression : {bad}",
                      "bad-sni", col=line.col(words.index("sni") + 1) if "sni" in words
                      else 0, style="bracket")
            return
    _warn_h2(line, ctx, label, values)
    values["no_ssl"] = values.get("ssl") is False  # (explicitly off)
    values["ssl_default"] = bool(p.default_server.get("ssl"))
    values = {k: v for k, v in values.items() if k in _SERVER_FIELDS}
    srv = m.Server(name=name, host=host, port=port, puid=len(p.servers) + 1,
                   port_offset=port_offset(words[2]), origin=origin(line), **values)
    p.servers.append(srv)
    p.server_origins[name] = origin(line)


def _address_problem(text: str) -> str | None:
    """What HAProxy 2.6.12 says of a server address it refuses (a `server` or
    `server-template` line's), or None."""
    err = split_address(text)[2]
    if err is None:
        problem = socket_path_problem(text)
        err = problem + "\n" if problem else None
    return err


def _more(ctx: ParseCtx, more: tuple[str, ...]) -> None:
    for text in more:
        ctx.alert(None, text, "bad-server-option", style="plain")


def sni_problem(text: str) -> str | None:
    """What HAProxy says of an `sni` expression it refuses: a parse error, or a fetch
    that reads nothing a server connection is made with (its response, say)."""
    try:
        expr = sample.parse_expr(text)
    except Exception as exc:  # (SampleError and the converters' own)
        return str(exc).rstrip()
    need = uses.uses(expr.fetch_def.name)
    have = uses.CONTEXTS["http-request"] | {uses.SERVER}
    if need and not any(u in have for u in need):
        return (f" fetch method '{text}' extracts information from '{','.join(need)}', "
                "none of which is available here.")
    return None


def _warn_h2(line: Line, ctx: ParseCtx, label: str, values: dict[str, Any]) -> None:
    """lb speaks HTTP/1.1 to servers: an `alpn` (or `check-alpn`) naming h2 offers the
    others only (HAProxy would speak HTTP/2 to a server choosing it)."""
    if not (values.get("ssl") or values.get("check_ssl")):
        return  # (no TLS: no ALPN either)
    for key, word in (("alpn", "alpn"), ("check_alpn", "check-alpn")):
        if "h2" in (values.get(key) or "").split(","):
            col = line.col(line.words.index(word)) if word in line.words else 0
            ctx.warn(line, f"{label} : '{word} {values[key]}' : lb speaks HTTP/1.1 to "
                     "servers and does not offer 'h2'.", "alpn-h2", col=col,
                     style="bracket")


def _template_range(text: str) -> range | None:
    """``<n>`` (1..n) or ``<a>-<b>`` (a..b), as `server-template` numbers its servers."""
    lo_s, dash, hi_s = text.partition("-")
    if not lo_s.isdigit() or (dash and not hi_s.isdigit()):
        return None
    lo, hi = (int(lo_s), int(hi_s)) if dash else (1, int(lo_s))
    if lo < 1 or hi < lo:
        return None
    return range(lo, hi + 1)


def kw_server_template(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    """`server-template <prefix> <n | a-b> <addr>[:<port>] [params]`: one `server`
    line per number, named <prefix><number> (lb has no resolvers, so every server
    gets the address the name resolves to at start-up, as with `init-addr`)."""
    words = line.words
    if len(words) < 4 or not all(words[1:4]):
        ctx.alert(line, "'server-template' expects <prefix> <nb | range> <addr>[:<port>] as "
                  "arguments.", "missing-argument", style="bracket")
        return
    numbers = _template_range(words[2])
    if numbers is None:
        ctx.alert(line, f"Wrong server-template number or range arg '{words[2]}'.",
                  "bad-argument", col=line.col(2), style="bracket")
        return
    err = _address_problem(words[3])
    if err:  # (HAProxy reads the address before it names a server)
        ctx.alert(line, f"'server {p.name}/(null)' : {err}", "bad-address", col=line.col(3),
                  style="bracket")
        return
    cols = line.cols
    for n in numbers:
        one = Line(line.file, line.lineno, ("server", f"{words[1]}{n}", *words[3:]),
                   (cols[0], *cols[2:]), line.raw)
        before = len(ctx.diags.items)
        kw_server(p, one, ctx)
        if any(d.fatal for d in ctx.diags.items[before:]):
            return  # one message for the line, not one per server
