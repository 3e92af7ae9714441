"""The options of `bind` lines and of the global `stats socket` line.

Owns: ``BIND_KEYWORDS`` (one ``BindKw`` row per option HAProxy 2.6.12 knows on a
`bind` line: how many words it takes, which of HAProxy's keyword lists it is in, and
a checker that returns the parsed value or raises ``BindArgError`` with HAProxy's
text), ``parse_options`` (the walk over a line's options: the first fatal problem
stops it, as in HAProxy, and warnings are collected), the did-you-mean for unknown
options, and the C number readings those checks rely on (``strtol``/``atol``
saturation, truncation to a C ``int``, ``str2uic``).

The callers (``lb.config.proxy_kw.kw_bind``, ``lb.config.global_kw``'s `stats
socket`) wrap the texts the way HAProxy does for each of them. Every option is
checked; lb uses `name`, `id`, `maxconn`, `backlog`, `v4v6`, `v6only`,
`accept-proxy` (and checks `proto` against the mode), the TLS options of an `ssl`
line (lb.tls.frontend) and, for `stats socket`, `level`, `mode` and `expose-fd`.
Certificate, CA and CRL files are read here, with HAProxy's texts for what is wrong
with them (lb.tls.certs); other files HAProxy opens (ticket keys, network
namespaces) are only required to be named.

Must not import: lb.config.build, lb.config.proxy_kw, lb.config.global_kw.
"""

from __future__ import annotations

import grp
import pwd
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lb.config.registry import fingerprint_match
from lb.tls import certs
from lb.units import UnitError, junk_warning, parse_time_ms

MAX_THREADS = 64  # Debian's HAProxy 2.6.12 build
MAX_TGROUPS = 1  # ... which has one thread group
MAX_PROCS = 1  # `process`: HAProxy 2.6 runs a single process
SSL_MAX_VFY_ERROR = 94  # the highest X509 verify error id `ca-ignore-err` takes there
LONG_MIN, LONG_MAX = -(1 << 63), (1 << 63) - 1
SSL_VERSIONS = ("SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
# `proto` names HAProxy 2.6.12 knows, and the mode each one serves a frontend in
MUX_PROTOS: dict[str, str | None] = {"h2": "http", "h1": "http", "fcgi": None, "none": "tcp"}


class BindArgError(Exception):
    """An option is invalid; ``str()`` is HAProxy's text for it (what follows
    "'bind <addr>' in section '<kind>' : "). A few of HAProxy's texts end with a line
    feed, which shows only where `stats socket` quotes the text."""


# --------------------------------------------------------------------------- C numbers


_C_SPACE = " \t\n\v\f\r"


_BASE_DIGITS = {8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}


def strtol(text: str, base: int = 10) -> tuple[int, int]:
    """C ``strtol``: (value, offset just past the digits); the offset is 0 when there
    is no number. Leading white space and a sign are read; the value saturates at
    the bounds of a 64-bit ``long``. Base 0 reads C's prefixes: ``0x`` hexadecimal,
    ``0`` octal, else decimal."""
    i, n = 0, len(text)
    while i < n and text[i] in _C_SPACE:
        i += 1
    neg = False
    if i < n and text[i] in "+-":
        neg = text[i] == "-"
        i += 1
    if base == 0:
        if text[i:i + 2] in ("0x", "0X") and text[i + 2:i + 3] and \
                text[i + 2] in _BASE_DIGITS[16]:
            base, i = 16, i + 2
        else:
            base = 8 if text[i:i + 1] == "0" else 10
    digits = _BASE_DIGITS[base]
    j = i
    while j < n and text[j] in digits:
        j += 1
    if j == i:
        return 0, 0
    value = int(text[i:j], base)
    return max(LONG_MIN, min(LONG_MAX, -value if neg else value)), j


def atol(text: str) -> int:
    """C ``atol`` (a 64-bit ``long``; 0 when the text does not start with a number)."""
    return strtol(text)[0]


def c_int(value: int) -> int:
    """``value`` stored in a 32-bit C ``int`` (HAProxy's ``int val = atol(...)``)."""
    return (value + (1 << 31)) % (1 << 32) - (1 << 31)


def str2uic(text: str) -> int:
    """HAProxy's ``str2uic``: the leading decimal digits, wrapping at 2^32."""
    value = 0
    for c in text:
        if not "0" <= c <= "9":
            break
        value = (value * 10 + ord(c) - 48) % (1 << 32)
    return value


def number_set_error(arg: str, maximum: int) -> str | None:
    """HAProxy's reading of a process or thread set (`all`, `odd`, `even`, `N`, `N-M`,
    `N-`): None when ``arg`` is one whose numbers are 1..``maximum``, else the text."""
    if arg in ("all", "odd", "even"):
        return None
    dash = -1
    for i, c in enumerate(arg):
        if c == "-" and dash < 0:
            dash = i
        elif not "0" <= c <= "9":
            return f"'{arg}' is not a valid number/range."
    low = high = str2uic(arg)
    if dash >= 0:
        high = maximum if dash == len(arg) - 1 else str2uic(arg[dash + 1:])
    low, high = min(low, high), max(low, high)
    if low < 1 or low > maximum or high > maximum:
        return (f"'{arg}' is not a valid number/range. It supports numbers from 1 to "
                f"{maximum}.\n")
    return None


# --------------------------------------------------------------------------- the table


@dataclass(slots=True)
class BindLine:
    """What the checks of one line's options need besides the option's own word."""

    sockets: int  # listening sockets the line yields (`id` needs exactly one)
    here: str  # this line in a duplicate-id message: "FILE:LINE ('bind ADDR')"
    taken_ids: Mapping[int, str]  # listener ids fixed earlier in the proxy -> their `here`
    values: dict[str, Any] = field(default_factory=dict)  # options read so far
    warnings: list[tuple[str, bool]] = field(default_factory=list)  # (text, located)
    # alerts HAProxy prints, without a location, before the line's own error
    plain_alerts: list[str] = field(default_factory=list)
    # the global settings read so far: `crt-base` and `ca-base` (lb.config.server_tls)
    bases: Mapping[str, Any] = field(default_factory=dict)
    ca_loaded: set[str] = field(default_factory=set)  # (lb.config.registry.ParseCtx)

    def based(self, kind: str, path: str) -> str:
        """``path`` under the global `crt-base` or `ca-base` (``kind``) when relative."""
        base = self.bases.get(kind)
        if not base or path.startswith("/") or (kind == "ca_base" and path.startswith("@")):
            return path
        return f"{base}/{path}"
    thread_group: int = 0  # `thread G/...` read so far (0: none named)
    threads: bool = False  # a thread set was given (`thread`, or `process P/T`)

    def warn(self, text: str, *, located: bool = True) -> None:
        """A warning HAProxy prints and goes on; ``located=False``: it prints no
        file and line for it."""
        self.warnings.append((text, located))


Checker = Callable[[str, str, BindLine], Any]


@dataclass(frozen=True, slots=True)
class BindKw:
    """One option: ``check(name, arg, line)`` returns the value kept for it (flags,
    which take no word: True), or raises ``BindArgError``."""

    name: str
    args: int  # words taken after the option (0: a flag)
    check: Checker | None = None
    group: str = "ALL"  # HAProxy's keyword list: ALL, STAT (CLI), TCP, UNIX, SSL
    help: str = ""
    key: str | None = None  # where the value is kept in ``BindLine.values`` (None: name)


def _value(text: str) -> Checker:
    """The word as written; ``text`` is HAProxy's complaint when it is missing."""
    def check(name: str, arg: str, line: BindLine) -> str:
        if not arg:
            raise BindArgError(f"'{name}' : {text}")
        return arg
    return check


def _int_at_least(minimum: int, must: str) -> Checker:
    """``atol`` kept in a C int, at least ``minimum`` (``must`` as HAProxy words it)."""
    def check(name: str, arg: str, line: BindLine) -> int:
        if not arg:
            raise BindArgError(f"'{name}' : missing value")
        value = c_int(atol(arg))
        if value < minimum:
            raise BindArgError(f"'{name}' : invalid value {value}, must be {must}")
        return value
    return check


def _choice(allowed: tuple[str, ...], missing: str) -> Checker:
    """One of ``allowed``, listed as HAProxy lists them ('a', 'b', and 'c')."""
    quoted = [f"'{a}'" for a in allowed]
    listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + ", and " + quoted[-1]

    def check(name: str, arg: str, line: BindLine) -> str:
        if not arg:
            raise BindArgError(f"'{name}' : {missing}")
        if arg not in allowed:
            raise BindArgError(f"'{name}' only supports {listed} (got '{arg}')")
        return arg
    return check


def _netscaler(name: str, arg: str, line: BindLine) -> int:
    if not arg:
        raise BindArgError(f"'{name}' : missing value")
    magic = atol(arg) % (1 << 32)  # an unsigned 32-bit value: only 0 is refused
    if magic == 0:
        raise BindArgError(f"'{name}' : invalid value 0, must be >= 0")
    return magic


def _id(name: str, arg: str, line: BindLine) -> int:
    if line.sockets != 1:
        raise BindArgError(f"'{name}' can only be used with a single socket")
    if not arg:
        raise BindArgError(f"'{name}' : expects an integer argument")
    value, end = strtol(arg)
    if end != len(arg):
        raise BindArgError(f"'{name}' : expects an integer argument, found '{arg}'")
    luid = c_int(value)
    if luid <= 0:
        raise BindArgError(f"'{name}' : custom id has to be > 0")
    # a second `id` on the line finds the listener the first one numbered
    where = line.here if "id" in line.values else line.taken_ids.get(luid)
    if where is not None:
        raise BindArgError(f"'{name}' : custom id {luid} already used at {where}")
    return luid


def _nice(name: str, arg: str, line: BindLine) -> int:
    if not arg:
        raise BindArgError(f"'{name}' : missing value")
    value = c_int(atol(arg))
    if not -1024 <= value <= 1024:
        raise BindArgError(f"'{name}' : invalid value {value}, allowed range is -1024..1024")
    return value


def _process(name: str, arg: str, line: BindLine) -> str:
    procs, slash, threads = arg.partition("/")
    err = number_set_error(procs, MAX_PROCS)
    if err is None and slash:
        err = number_set_error(threads, MAX_THREADS)
    if err is not None:
        raise BindArgError(f"'{name}' : {err}")
    text = f"'process {arg}' on 'bind' lines is deprecated and will be removed in 2.7."
    if slash:
        line.threads = True
        text += f" Please use 'thread {threads}' instead."
    line.warn(text)
    return arg


def _proto(name: str, arg: str, line: BindLine) -> str:
    if not arg:
        raise BindArgError(f"'{name}' : missing value")
    if arg not in MUX_PROTOS:
        raise BindArgError(f"'{name}' :  unknown MUX protocol '{arg}'")
    return arg


def _shards(name: str, arg: str, line: BindLine) -> int:
    if not arg:
        raise BindArgError(f"'{name}' : missing value")
    if arg == "by-thread":
        return MAX_THREADS
    value = c_int(atol(arg))
    if not 1 <= value <= MAX_THREADS:
        raise BindArgError(f"'{name}' : invalid value {value}, allowed range is "
                           f"1..{MAX_THREADS} or 'by-thread'")
    return value


def _thread(name: str, arg: str, line: BindLine) -> str:
    group, end = strtol(arg)
    threads = arg
    if arg[end:end + 1] == "/":
        if not 1 <= group <= MAX_TGROUPS:
            raise BindArgError(f"'{arg}' thread-group number must be between 1 and "
                               f"{MAX_TGROUPS} (was {group})")
        threads = arg[end + 1:]
    else:
        group = 0
    if (line.thread_group or line.threads) and line.thread_group != group:
        raise BindArgError(f"'{arg}' multiple thread-groups are not supported")
    err = number_set_error(threads, MAX_THREADS)
    if err is not None:
        raise BindArgError(f"'{threads}' : {err}")
    line.threads = True
    line.thread_group = group
    return arg


def _mss(name: str, arg: str, line: BindLine) -> int:
    if not arg:
        raise BindArgError(f"'{name}' : missing MSS value")
    mss = c_int(atol(arg))
    # C's abs() leaves INT_MIN negative, so that one passes
    if mss == 0 or (abs(mss) > 65535 and mss != -(1 << 31)):
        raise BindArgError(f"'{name}' : expects an MSS with and absolute value between 1 "
                           "and 65535")
    return mss


def _tcp_ut(name: str, arg: str, line: BindLine) -> int:
    if not arg:
        raise BindArgError(f"'{name}' : missing TCP User Timeout value")
    try:
        ms, junk = parse_time_ms(arg, name)
    except UnitError as exc:
        if exc.reason == "overflow":
            raise BindArgError(exc.describe(name)) from None
        raise BindArgError(f"'{name}' : expects a positive delay in milliseconds") from None
    if junk:
        line.warn(junk_warning(arg, junk), located=False)
    return ms


def _namespace(name: str, arg: str, line: BindLine) -> str:
    # HAProxy opens the namespace here; lb has no namespaces and keeps the name
    if not arg:
        raise BindArgError(f"'{name}' : missing namespace id")
    return arg


def _id_number(name: str, arg: str, line: BindLine) -> int:
    if not arg:
        raise BindArgError(f"'{name}' : missing value")
    return atol(arg)


def _user(name: str, arg: str, line: BindLine) -> int:
    if not arg:
        raise BindArgError(f"'{name}' : missing user name")
    try:
        return pwd.getpwnam(arg).pw_uid
    except KeyError:
        raise BindArgError(f"'{name}' : unknown user name '{arg}'") from None


def _group(name: str, arg: str, line: BindLine) -> int:
    if not arg:
        raise BindArgError(f"'{name}' : missing group name")
    try:
        return grp.getgrnam(arg).gr_gid
    except KeyError:
        raise BindArgError(f"'{name}' : unknown group name '{arg}'") from None


def _mode(name: str, arg: str, line: BindLine) -> int:
    value, end = strtol(arg, 8)
    if not arg or end != len(arg):
        raise BindArgError(f"'{name}' : missing or invalid mode '{arg}' (octal integer "
                           "expected)")
    return value & 0o7777  # what chmod() keeps of it


def _protocols(kind: str) -> Checker:
    """`alpn` / `npn`: a comma-separated list of protocol names of at most 255 bytes."""
    def check(name: str, arg: str, line: BindLine) -> str:
        if not arg:
            raise BindArgError(f"'{name}' : missing the comma-delimited {kind} protocol suite")
        for proto in arg.split(","):
            if len(proto.encode("utf-8", "surrogateescape")) > 255:
                raise BindArgError(f"'{name}' : {kind} protocol name too long : '{proto}'")
        return arg
    return check


# where `crt` and `crt-list` keep their certificates, in line order
CERTIFICATES = "certificates"


@dataclass(frozen=True, slots=True)
class CertSource:
    """A certificate path of an `ssl` line (a file or a directory): a `crt`, or one
    line of a `crt-list` with its SNI filters and its `[...]` options."""

    path: str
    filters: tuple[str, ...] = ()
    values: Mapping[str, Any] = field(default_factory=dict)


def _crt(name: str, arg: str, line: BindLine) -> tuple[CertSource, ...]:
    """`crt`: the certificate file, or directory, is read now, as HAProxy reads it;
    a line may name several (kept in order, with those of its `crt-list`)."""
    if not arg:
        raise BindArgError(f"'{name}' : missing certificate location")
    path = line.based("crt_base", arg)
    try:
        certs.load_crt(path)
    except certs.TlsFileError as exc:
        raise BindArgError(str(exc)) from None
    return (*line.values.get(CERTIFICATES, ()), CertSource(path))


def _crt_list(name: str, arg: str, line: BindLine) -> tuple[CertSource, ...]:
    """`crt-list`: a file of certificates, each with the names it serves and the
    `[...]` options of its line."""
    if not arg:
        raise BindArgError(f"'{name}' : missing certificate location")
    try:
        entries = certs.read_crt_list(line.based("crt_base", arg),
                                      line.bases.get("crt_base"))
    except certs.TlsFileError as exc:
        raise BindArgError(f"'{name}' : {exc}") from None
    out: list[CertSource] = []
    warned: set[str] = set()
    for entry in entries:
        if entry.warning and entry.where not in warned:
            warned.add(entry.where)
            line.warn(f"'{name}' : {entry.warning}")
        out.append(CertSource(entry.path, entry.filters, crt_list_options(entry, line)))
    return (*line.values.get(CERTIFICATES, ()), *out)


# the options a `crt-list` line may give in `[...]` (HAProxy 2.6.12's list)
CRT_LIST_OPTIONS = frozenset((
    "allow-0rtt", "alpn", "ca-file", "ca-verify-file", "ciphers", "ciphersuites",
    "crl-file", "curves", "ecdhe", "no-ca-names", "npn", "ssl-max-ver", "ssl-min-ver",
    "verify"))


def crt_list_options(entry: certs.CrtListEntry, line: BindLine) -> dict[str, Any]:
    """The options of one `crt-list` line, each checked as on a bind line. As in
    HAProxy, an option's own error is told once the others are read (the last one
    wins), while an option whose word is missing before `]` and an unknown one stop
    the reading."""
    sub = BindLine(line.sockets, line.here, line.taken_ids, warnings=line.warnings,
                   plain_alerts=line.plain_alerts, bases=line.bases,
                   ca_loaded=line.ca_loaded)
    words, i, error = entry.options, 0, None
    while i < len(words):
        word = words[i]
        row = BIND_KEYWORDS.get(word) if word in CRT_LIST_OPTIONS else None
        if row is None:
            if error is not None:
                break
            raise BindArgError(f"'crt-list' : parsing [{entry.where}]: unknown ssl "
                               f"keyword {word}")
        arg = words[i + 1] if row.args and i + 1 < len(words) else ""
        try:
            sub.values[word] = True if row.check is None else row.check(word, arg, sub)
        except BindArgError as exc:
            error = str(exc)
        if i + 1 + row.args > len(words):
            raise BindArgError(f"'crt-list' : parsing [{entry.where}]: ssl args out of "
                               f"'[]' for {word}")
        i += 1 + row.args
    if error is not None:
        raise BindArgError(f"'crt-list' : {error}")
    return sub.values


def _ca_file(name: str, arg: str, line: BindLine) -> str:
    """`ca-file` / `crl-file`: the file must hold a certificate or a CRL."""
    if not arg:
        what = "CRLfile" if name == "crl-file" else "CAfile"
        raise BindArgError(f"'{name}' : missing {what} path")
    path = line.based("ca_base", arg)
    try:
        for text in certs.check_ca_file(path) if path not in line.ca_loaded else ():
            line.warn(text, located=False)
        line.ca_loaded.add(path)
    except certs.TlsFileError as exc:
        line.plain_alerts.append(str(exc))
        raise BindArgError(f"'{name}' : unable to load {path}") from None
    return path


def _ignore_err(name: str, arg: str, line: BindLine) -> str:
    if not arg:
        raise BindArgError(f"'{name}' : missing error IDs list")
    if arg != "all":
        for item in arg.split(","):
            code = c_int(atol(item))
            if not 1 <= code <= SSL_MAX_VFY_ERROR:
                raise BindArgError(f"'{name}' : ID '{code}' out of range "
                                   f"(1..{SSL_MAX_VFY_ERROR}) in error IDs list '{arg}'")
    return arg


def _ssl_version(name: str, arg: str, line: BindLine) -> str:
    if not arg:
        raise BindArgError(f"'{name}' : missing the ssl/tls version")
    if arg not in SSL_VERSIONS:
        raise BindArgError(f"'{arg}' : unknown ssl/tls version")
    return arg


def _verify(name: str, arg: str, line: BindLine) -> str:
    if not arg:
        raise BindArgError(f"'{name}' : missing verify method")
    if arg not in ("none", "optional", "required"):
        raise BindArgError(f"'{name}' : unknown verify method '{arg}', only 'none', "
                           "'optional', and 'required' are supported\n")
    return arg


_TLS = "TLS (lb.tls.frontend)"
_NO_EFFECT = "checked; no effect in lb"


def _ssl_flags(*names: str) -> tuple[BindKw, ...]:
    return tuple(BindKw(n, 0, group="SSL", help=_TLS) for n in names)


# In HAProxy 2.6.12's order (its keyword lists, then each list's rows): the first of
# equally close words is the one a did-you-mean names.
_ROWS: tuple[BindKw, ...] = (
    BindKw("allow-0rtt", 0, group="SSL", help=_NO_EFFECT),
    BindKw("alpn", 1, _protocols("ALPN"), "SSL", _TLS + "; h2 is not offered"),
    BindKw("ca-file", 1, _ca_file, "SSL", _TLS + ": client certificates are checked with it"),
    BindKw("ca-verify-file", 1, _value("missing CAfile path"), "SSL",
           _NO_EFFECT + " (the file is not opened)"),
    BindKw("ca-ignore-err", 1, _ignore_err, "SSL",
           _TLS + ": client CA chain errors that do not fail the handshake"),
    BindKw("ca-sign-file", 1, _value("missing CAfile path"), "SSL", _NO_EFFECT),
    BindKw("ca-sign-pass", 1, _value("missing CAkey password"), "SSL", _NO_EFFECT),
    BindKw("ciphers", 1, _value("missing cipher suite"), "SSL", _TLS),
    BindKw("ciphersuites", 1, _value("missing cipher suite"), "SSL",
           "checked; lb serves OpenSSL's TLS 1.3 suites"),
    BindKw("crl-file", 1, _ca_file, "SSL", _TLS),
    BindKw("crt", 1, _crt, "SSL", _TLS + ": a PEM file, or a directory of them",
           CERTIFICATES),
    BindKw("crt-ignore-err", 1, _ignore_err, "SSL",
           _TLS + ": client certificate errors that do not fail the handshake"),
    BindKw("crt-list", 1, _crt_list, "SSL", _TLS + ": certificates and their SNI filters",
           CERTIFICATES),
    BindKw("curves", 1, _value("missing curve suite"), "SSL", _TLS),
    BindKw("ecdhe", 1, _value("missing named curve"), "SSL", _TLS),
    *_ssl_flags("force-sslv3", "force-tlsv10", "force-tlsv11", "force-tlsv12",
                "force-tlsv13"),
    BindKw("generate-certificates", 0, group="SSL", help=_NO_EFFECT),
    BindKw("no-ca-names", 0, group="SSL", help=_NO_EFFECT),
    *_ssl_flags("no-sslv3", "no-tlsv10", "no-tlsv11", "no-tlsv12", "no-tlsv13",
                "no-tls-tickets"),
    BindKw("ssl", 0, group="SSL", help="the connections are TLS (lb.tls.frontend)"),
    BindKw("ssl-min-ver", 1, _ssl_version, "SSL", _TLS),
    BindKw("ssl-max-ver", 1, _ssl_version, "SSL", _TLS),
    BindKw("strict-sni", 0, group="SSL", help=_TLS + ": no certificate for an unknown name"),
    BindKw("tls-ticket-keys", 1, _value("missing TLS ticket keys file path"), "SSL",
           _NO_EFFECT + " (the file is not opened)"),
    BindKw("verify", 1, _verify, "SSL", _TLS + ": client certificates"),
    BindKw("npn", 1, _protocols("NPN"), "SSL", _NO_EFFECT),
    BindKw("prefer-client-ciphers", 0, group="SSL", help=_TLS),
    BindKw("level", 1, _choice(("user", "operator", "admin"), "missing level"), "STAT",
           "stats socket: what commands may do"),
    BindKw("expose-fd", 1, _choice(("listeners",), "missing fd type"), "STAT",
           "stats socket: the listening sockets may be passed on (-x)"),
    BindKw("severity-output", 1, _choice(("none", "number", "string"),
                                         "missing severity format"), "STAT", _NO_EFFECT),
    BindKw("accept-netscaler-cip", 1, _netscaler, help=_NO_EFFECT),
    BindKw("accept-proxy", 0, help="each connection starts with a PROXY header"),
    BindKw("backlog", 1, _int_at_least(0, "> 0"), help="listen() queue length"),
    BindKw("id", 1, _id, help="the listener's number within its proxy (so_id)"),
    BindKw("maxconn", 1, _int_at_least(0, ">= 0"), help="connections at once on the socket"),
    BindKw("name", 1, _value("missing name"), help="the listener's name (so_name)"),
    BindKw("nice", 1, _nice, help=_NO_EFFECT),
    BindKw("process", 1, _process, help="deprecated (warning); no effect in lb"),
    BindKw("proto", 1, _proto, help="checked against the proxy's mode; no effect in lb"),
    BindKw("shards", 1, _shards, help=_NO_EFFECT),
    BindKw("thread", 1, _thread, help=_NO_EFFECT),
    BindKw("defer-accept", 0, group="TCP", help=_NO_EFFECT),
    BindKw("interface", 1, _value("missing interface name"), "TCP", _NO_EFFECT),
    BindKw("mss", 1, _mss, "TCP", _NO_EFFECT),
    BindKw("tcp-ut", 1, _tcp_ut, "TCP", _NO_EFFECT),
    BindKw("tfo", 0, group="TCP", help=_NO_EFFECT),
    BindKw("transparent", 0, group="TCP", help=_NO_EFFECT),
    BindKw("v4v6", 0, group="TCP", help="an IPv6 socket also takes IPv4"),
    BindKw("v6only", 0, group="TCP", help="an IPv6 socket takes IPv6 only"),
    BindKw("namespace", 1, _namespace, "TCP", _NO_EFFECT + " (the namespace is not opened)"),
    BindKw("gid", 1, _id_number, "UNIX", _NO_EFFECT),
    BindKw("group", 1, _group, "UNIX", _NO_EFFECT),
    BindKw("mode", 1, _mode, "UNIX", "stats socket: the socket file's mode; else no effect"),
    BindKw("uid", 1, _id_number, "UNIX", _NO_EFFECT),
    BindKw("user", 1, _user, "UNIX", _NO_EFFECT),
)

BIND_KEYWORDS: dict[str, BindKw] = {row.name: row for row in _ROWS}


def closest_option(word: str) -> str | None:
    """The option HAProxy 2.6.12 suggests for an unknown ``word``, if any."""
    return fingerprint_match(word, BIND_KEYWORDS)


# --------------------------------------------------------------------------- the walk


@dataclass(frozen=True, slots=True)
class Problem:
    """The fatal problem that ended a line's options: ``index`` is the option's word;
    ``unknown``: the word is no option (``text`` is empty, ``suggestion`` HAProxy's)."""

    index: int
    text: str
    unknown: bool = False
    suggestion: str | None = None


def parse_options(words: Sequence[str], start: int, line: BindLine) -> Problem | None:
    """Read the options from ``words[start]`` on into ``line.values`` (and warnings
    into ``line.warnings``), HAProxy's way: an empty word ends them, the first
    invalid or unknown one stops the reading."""
    i = start
    while i < len(words) and words[i]:
        word = words[i]
        row = BIND_KEYWORDS.get(word)
        if row is None:
            return Problem(i, "", True, closest_option(word))
        arg = words[i + 1] if row.args and i + 1 < len(words) else ""
        try:
            value = True if row.check is None else row.check(word, arg, line)
        except BindArgError as exc:
            return Problem(i, str(exc))
        line.values[row.key or word] = value
        i += 1 + row.args
    return None
