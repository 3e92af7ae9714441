"""The TLS a `bind ... ssl` line serves: its contexts, chosen by SNI.

Owns: ``build`` (a ``FrontendTls`` from the compiled ``BindTls``: one
``ssl.SSLContext`` per certificate, the first one the default), the SNI choice
(exact names first, then a `*.` wildcard one label deep; `!name` filters of a
`crt-list` exclude; `strict-sni` refuses a name no certificate serves, and a
handshake without SNI), the settings HAProxy gives every bind context (TLS 1.2 at
least, the server's cipher order, no compression), and ``TlsSetupError`` for a value
OpenSSL refuses (HAProxy's texts are worded by lb.config.build), and for a
handshake that failed: ``handshake_error`` (HAProxy's log text) and
``failed_handshake`` (what the TLS fetches read of it).

A `crt-list` line's `[...]` settings (``entry_settings``) build its certificate's
context. What OpenSSL takes from a context only when a connection starts (versions,
verification, cipher lists, CRL checks) is switched per connection while
its ClientHello is read (lb.tls.openssl), when the name selects a certificate whose
settings differ from the first one's; the rest follows the context the name
selects. A bind line whose certificates all share settings has no such callback.

Each connection's ``ssl.SSLObject`` remembers the name its client asked for
(``sni``), which the ``ssl_fc_sni`` fetch reads.

Imports only lb.config.model and lb.tls.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field, replace
from typing import Any

from lb.config.model import BindCertificate, BindTls
from lb.tls import certs, openssl

# HAProxy 2.6's `ssl-min-ver` when none is given
DEFAULT_MIN = "TLSv1.2"
_ORDER = ("SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_VERIFY = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL,
           "required": ssl.CERT_REQUIRED}
# ALPN protocols lb serves: HTTP/1.x only (no h2 multiplexer)
SERVED_ALPN = ("http/1.1", "http/1.0")


class TlsSetupError(Exception):
    """OpenSSL refused a setting: ``what`` is the option (`ciphers`,
    `ciphersuites`, `curves`, `ecdhe`), ``value`` the text it refused."""

    def __init__(self, what: str, value: str) -> None:
        super().__init__(f"{what} {value}")
        self.what = what
        self.value = value


class ClientObject(ssl.SSLObject):
    """A client connection's TLS state. A handshake that fails with a TLS error
    leaves it on the error (``tls_object``), for ``failed_handshake`` to read."""

    def do_handshake(self) -> None:
        try:
            super().do_handshake()
        except ssl.SSLError as exc:
            exc.tls_object = self  # type: ignore[attr-defined]
            raise


class FailedHandshake:
    """What `error-log-format`'s TLS fields (``%sslv``, ``%sslc``, the ``ssl_fc*``
    fetches) read of a connection whose handshake failed: what OpenSSL holds at that
    point, as HAProxy 2.6.12 prints it (a cipher only once one was chosen:
    ``(NONE)`` before; the name the client asked for, once its ClientHello was read).
    Python gives no version before a handshake ends, so ``failed_handshake`` infers
    it (docs/logging.md)."""

    __slots__ = ("sni", "verify_result", "crt_error", "ca_error", "ca_error_depth",
                 "_version", "_cipher")
    session = None
    session_reused = False

    def __init__(self, version: str, cipher: tuple[Any, ...] | None, obj: Any) -> None:
        self._version = version
        self._cipher = cipher or ("(NONE)", None, None)
        for name in ("verify_result", "crt_error", "ca_error", "ca_error_depth"):
            setattr(self, name, getattr(obj, name, 0))
        self.sni = getattr(obj, "sni", None)

    def version(self) -> str:
        return self._version

    def cipher(self) -> tuple[Any, ...]:
        return self._cipher

    def selected_alpn_protocol(self) -> None:
        return None

    def getpeercert(self, binary_form: bool = False) -> None:
        return None


_VERSION_NAMES = {ssl.TLSVersion.TLSv1: "TLSv1", ssl.TLSVersion.TLSv1_1: "TLSv1.1",
                  ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}


def failed_handshake(exc: BaseException | None) -> FailedHandshake:
    """The TLS side of a connection whose handshake failed with ``exc``. Its version, as OpenSSL reports it: the
    negotiated one once a cipher was chosen; after a ClientHello, the highest both
    sides offer (TLS 1.3 when the client sent a TLS 1.3 suite and the line serves
    it); a version refused, the ClientHello's own (TLS 1.2 from any client of the last
    ten years); before any ClientHello, TLS 1.3 (OpenSSL's starting value)."""
    obj = getattr(exc, "tls_object", None)
    cipher = obj.cipher() if obj is not None else None
    shared = obj.shared_ciphers() if obj is not None else None
    if cipher is not None:
        version = "TLSv1.3" if cipher[1] == "TLSv1.3" else "TLSv1.2"
    elif shared is not None:  # (a ClientHello was read: there is an object)
        version = _VERSION_NAMES.get(obj.context.maximum_version, "TLSv1.3")
        if version == "TLSv1.3" and not any(c[1] == "TLSv1.3" for c in shared):
            version = "TLSv1.2"
    elif getattr(exc, "reason", None) == "UNSUPPORTED_PROTOCOL":
        version = "TLSv1.2"
    else:
        version = "TLSv1.3"
    return FailedHandshake(version, cipher, obj)


def handshake_error(exc: BaseException | None) -> tuple[str, bool]:
    """HAProxy's text for a failed TLS handshake (a client certificate refused: for
    an error of its own, or of its CA chain), and whether `option dontlognull`
    keeps it out of the log (all but a TLS error: HAProxy names a timeout only after
    deciding to log it). The event
    loop reports its handshake timeout as a ConnectionAbortedError, and a client that
    closed as a ConnectionResetError without an errno (one with an errno: a reset)."""
    if isinstance(exc, (TimeoutError, ConnectionAbortedError)):
        return "Timeout during SSL handshake", True
    if isinstance(exc, ssl.SSLCertVerificationError):  # a client certificate
        if exc.verify_code & openssl.CA_FAILURE_TAG:
            return "SSL client CA chain cannot be verified", False
        return "SSL client certificate not trusted", False
    if isinstance(exc, ssl.SSLError) and not isinstance(exc, (ssl.SSLEOFError,
                                                              ssl.SSLZeroReturnError)):
        return "SSL handshake failure", False
    if isinstance(exc, OSError) and exc.errno:
        return "Connection error during SSL handshake", True
    return "Connection closed during SSL handshake", True


# HAProxy's warnings about a bind line's versions ({} takes "bind '<addr>' at [<where>]")
FLAGS_IGNORED = ("no-sslv3/no-tlsv1x are ignored for {}. Use only 'ssl-min-ver' and "
                 "'ssl-max-ver' to fix.")
AMBIGUOUS = ("Ambiguous configuration for {}: the ssl-min-ver value is not configured and "
             "the ssl-max-ver value is lower than the default ssl-min-ver value ("
             + DEFAULT_MIN + "). Setting the ssl-min-ver to %s. Use 'ssl-min-ver' to fix this.")


def versions(tls: BindTls) -> tuple[tuple[str, str] | None, list[str]]:
    """The lowest and highest versions served, as HAProxy 2.6 settles them, and its
    warnings (templates for ``str.format``). `ssl-min-ver`/`ssl-max-ver` (`force-*`
    sets both; the line's, else the global defaults') make the `no-*` flags
    ignored; without a minimum, TLS 1.2 is the lowest unless the maximum is below
    it. None: no version left."""
    warnings: list[str] = []
    forced = [certs.FLAG_VERSIONS[v] for kind, v in tls.versions if kind == "force"]
    low, high = tls.min_ver, tls.max_ver
    if forced:
        ordered = sorted(forced, key=_ORDER.index)
        low, high = ordered[0], ordered[-1]
    off = {certs.FLAG_VERSIONS[v] for kind, v in tls.versions if kind == "no"}
    if (low or high) and off:
        warnings.append(FLAGS_IGNORED)
        off = set()
    if low is None:
        if high is not None and _ORDER.index(high) < _ORDER.index(DEFAULT_MIN):
            warnings.append(AMBIGUOUS % high)
            low = high
        else:
            low = DEFAULT_MIN
    top = _ORDER.index(high) if high else len(_ORDER) - 1
    served = [v for i, v in enumerate(_ORDER)
              if _ORDER.index(low) <= i <= top and v not in off]
    return ((served[0], served[-1]) if served else None), warnings


def _configured_span(tls: BindTls) -> tuple[str, str]:
    """The bind line's lowest and highest versions before its `no-*` flags: what a
    `crt-list` line's own `ssl-min-ver`/`ssl-max-ver` leaves in place."""
    forced = sorted((certs.FLAG_VERSIONS[v] for kind, v in tls.versions if kind == "force"),
                    key=_ORDER.index)
    if forced:
        return forced[0], forced[-1]
    high = tls.max_ver or _ORDER[-1]
    low = tls.min_ver or (high if _ORDER.index(high) < _ORDER.index(DEFAULT_MIN)
                          else DEFAULT_MIN)
    return low, high


_LINE_SETTINGS = ("alpn", "ca_file", "crl_file", "verify", "ciphers", "ciphersuites",
                  "curves", "ecdhe")


def entry_settings(tls: BindTls, line: BindCertificate) -> BindTls:
    """The settings of one certificate: the bind line's, with those its `crt-list`
    line gives in their place. A line naming a version replaces that end of the bind
    line's range, and the bind line's `no-*` flags no longer count."""
    over: dict[str, Any] = {k: v for k in _LINE_SETTINGS
                            if (v := getattr(line, k)) is not None}
    if line.min_ver or line.max_ver:
        low, high = _configured_span(tls)
        over.update(min_ver=line.min_ver or low, max_ver=line.max_ver or high, versions=())
    return replace(tls, **over) if over else tls


def version_range(tls: BindTls) -> tuple[str, str] | None:
    """The lowest and highest versions served; None when no version is left."""
    return versions(tls)[0]


def alpn_served(tls: BindTls) -> list[str]:
    """The `alpn` protocols lb offers: those it speaks, in the line's order."""
    return [p for p in tls.alpn if p in SERVED_ALPN]


def _context(tls: BindTls, cert: certs.CertFile, sni: Any) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert.path, cert.key_path, password=certs.no_password)
    low, high = version_range(tls) or (DEFAULT_MIN, _ORDER[-1])
    try:
        ctx.minimum_version = certs.TLS_VERSIONS[low]
        ctx.maximum_version = certs.TLS_VERSIONS[high]
    except (ValueError, ssl.SSLError):  # a version this OpenSSL no longer has
        pass
    ctx.options |= ssl.OP_NO_COMPRESSION
    if not tls.prefer_client_ciphers:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    if tls.no_tickets:
        ctx.options |= ssl.OP_NO_TICKET
    _apply_settings(ctx, tls)
    ctx.verify_mode = _VERIFY.get(tls.verify, ssl.CERT_NONE)
    if tls.ca_file is not None:
        for path in certs.ca_paths(tls.ca_file):
            ctx.load_verify_locations(path)
    if tls.crl_file is not None:
        for path in certs.ca_paths(tls.crl_file):
            ctx.load_verify_locations(path)
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    served = alpn_served(tls)
    if served:
        ctx.set_alpn_protocols(served)
    if sni is not None:
        ctx.sni_callback = sni
    ctx.sslobject_class = ClientObject
    return ctx


def _apply_settings(ctx: ssl.SSLContext, tls: BindTls) -> None:
    """Ciphers, TLS 1.3 suites and curves (``TlsSetupError`` if refused)."""
    if tls.ciphers is not None:
        try:
            ctx.set_ciphers(tls.ciphers)
        except ssl.SSLError:
            raise TlsSetupError("ciphers", tls.ciphers) from None
    if tls.ciphersuites is not None and not openssl.set_ciphersuites(ctx, tls.ciphersuites):
        raise TlsSetupError("ciphersuites", tls.ciphersuites)
    if tls.curves is not None and not openssl.set_curves(ctx, tls.curves):
        raise TlsSetupError("curves", tls.curves)
    if tls.ecdhe is not None and tls.curves is None:  # (`curves` wins, as in HAProxy)
        try:
            ctx.set_ecdh_curve(tls.ecdhe)
        except (ValueError, ssl.SSLError):
            raise TlsSetupError("ecdhe", tls.ecdhe) from None


@dataclass(slots=True)
class FrontendTls:
    """The contexts of one bind line and the SNI choice among them."""

    context: ssl.SSLContext  # the default (first) certificate's; handshakes start here
    strict: bool = False
    exact: dict[str, ssl.SSLContext] = field(default_factory=dict)
    wildcard: dict[str, ssl.SSLContext] = field(default_factory=dict)  # "*.a.b" -> ctx
    excluded: dict[int, frozenset[str]] = field(default_factory=dict)  # id(ctx) -> names
    # id(ctx) -> what a connection switched to that context changes (lb.tls.openssl)
    switches: dict[int, openssl.PerConnection] = field(default_factory=dict)
    hello_callback: object | None = None  # kept alive while the contexts serve
    ca_ignore: str | None = None  # `ca-ignore-err`, as written
    crt_ignore: str | None = None  # `crt-ignore-err`, as written
    verify_callbacks: list[object] = field(default_factory=list)  # kept alive too

    def choose(self, name: str | None) -> ssl.SSLContext | None:
        """The context for the name a client asked for; None when none serves it."""
        if name is None:
            return None
        name = name.lower()
        ctx = self.exact.get(name)
        if ctx is None:
            dot = name.find(".")
            if dot > 0:
                ctx = self.wildcard.get("*" + name[dot:])
        if ctx is not None and name in self.excluded.get(id(ctx), ()):
            return None
        return ctx

    def on_hello(self, ssl_ptr: int) -> bool:
        """While OpenSSL reads a ClientHello: switch the connection's versions,
        verification and ciphers to those of the certificate its name selects."""
        ctx = self.choose(openssl.hello_server_name(ssl_ptr))
        switch = self.switches.get(id(ctx)) if ctx is not None else None
        return switch is None or switch.apply(ssl_ptr)

    def on_verify_error(self, sslobj: Any, error: int, depth: int) -> bool:
        """An error OpenSSL found in a client's certificate chain: remembered on the
        connection as HAProxy does (the first of the leaf, the first above it with
        its depth, the last as the result), and ignored when `crt-ignore-err`
        (the leaf) or `ca-ignore-err` (its chain) names it."""
        if sslobj is not None:
            sslobj.verify_result = error
            if depth > 0:
                if not getattr(sslobj, "ca_error", 0):
                    sslobj.ca_error, sslobj.ca_error_depth = error, depth
            elif not getattr(sslobj, "crt_error", 0):
                sslobj.crt_error = error
        return ignored(self.ca_ignore if depth > 0 else self.crt_ignore, error)

    def on_sni(self, sslobj: Any, name: str | None, first: ssl.SSLContext) -> int | None:
        """OpenSSL's server-name callback: switch to the certificate that serves the
        name (the default one keeps it otherwise, unless `strict-sni`)."""
        sslobj.sni = name
        ctx = self.choose(name)
        if ctx is None:
            return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE if self.strict else None
        if ctx is not first:
            sslobj.context = ctx
        return None


@dataclass(frozen=True, slots=True)
class Entry:
    """One certificate of a bind line, the names it serves and those it must not
    (a `crt-list` line's `!name`), and the settings its context is built with."""

    cert: certs.CertFile
    names: tuple[str, ...]
    excluded: frozenset[str]
    settings: BindTls


def ignored(spec: str | None, error: int) -> bool:
    """Whether a `ca-ignore-err`/`crt-ignore-err` value (`all`, or error ids) names
    an X509 verification error."""
    if spec is None:
        return False
    return spec == "all" or str(error) in spec.split(",")


def entries(tls: BindTls) -> list[Entry]:
    """The certificates of a bind line, in the order its `crt` and `crt-list`
    name them (the first is the default)."""
    out = []
    for line in tls.certificates:
        settings = entry_settings(tls, line)
        for cert in certs.load_crt(line.path):
            wanted = tuple(f for f in line.filters if not f.startswith("!"))
            out.append(Entry(cert, wanted or cert.names,
                             frozenset(f[1:] for f in line.filters if f.startswith("!")),
                             settings))
    return out


def _cipher_lists(ctx: ssl.SSLContext) -> tuple[str, str]:
    """The TLS 1.2 cipher list and the TLS 1.3 suites of a context, in its order."""
    listed = ctx.get_ciphers()
    return (":".join(c["name"] for c in listed if c["protocol"] != "TLSv1.3"),
            ":".join(c["name"] for c in listed if c["protocol"] == "TLSv1.3"))


def per_connection(first: tuple[ssl.SSLContext, BindTls],
                   other: tuple[ssl.SSLContext, BindTls]) -> openssl.PerConnection:
    """What a connection started on the first certificate's context must be switched
    to when its name selects ``other`` (empty: nothing). Not the curves: HAProxy
    2.6.12 keeps the first context's for every name (seen live), and so does lb."""
    (ctx0, tls0), (ctx, tls) = first, other
    out = openssl.PerConnection()
    span0, span = version_range(tls0), version_range(tls)
    if span != span0 and span is not None:
        out.versions = (certs.TLS_VERSIONS[span[0]].value, certs.TLS_VERSIONS[span[1]].value)
    if tls.verify != tls0.verify:
        out.verify = _VERIFY[tls.verify]
    (ciphers0, suites0), (ciphers, suites) = _cipher_lists(ctx0), _cipher_lists(ctx)
    if ciphers != ciphers0:
        out.ciphers = ciphers
    if suites != suites0:
        out.suites = suites
    if (tls.crl_file is None) != (tls0.crl_file is None):
        out.crl = tls.crl_file is not None
    return out


def build(tls: BindTls) -> FrontendTls:
    """The contexts of a bind line (raises ``TlsSetupError``, ``certs.TlsFileError``,
    or ``ValueError`` when there is no certificate)."""
    listed = entries(tls)
    if not listed:
        raise ValueError("no certificate")
    holder: list[FrontendTls] = []

    def sni(sslobj: Any, name: str | None, ctx: ssl.SSLContext) -> int | None:
        return holder[0].on_sni(sslobj, name, ctx)

    contexts = [_context(e.settings, e.cert, sni) for e in listed]
    front = FrontendTls(contexts[0], tls.strict_sni)
    holder.append(front)
    for ctx, entry in zip(contexts, listed, strict=True):
        for name in entry.names:
            table = front.wildcard if name.startswith("*.") else front.exact
            table.setdefault(name, ctx)  # the first certificate naming it wins
        if entry.excluded:
            front.excluded[id(ctx)] = entry.excluded
        if ctx is not contexts[0]:
            switch = per_connection((contexts[0], listed[0].settings), (ctx, entry.settings))
            if switch:
                front.switches[id(ctx)] = switch
    if any(e.settings.verify != "none" for e in listed):
        front.ca_ignore, front.crt_ignore = tls.ca_ignore_err, tls.crt_ignore_err
        for ctx in contexts:
            callback = openssl.set_verify_callback(ctx, front.on_verify_error)
            if callback is not None:
                front.verify_callbacks.append(callback)
    if front.switches:
        front.hello_callback = openssl.set_client_hello_callback(contexts[0], front.on_hello)
        if front.hello_callback is None:
            raise TlsSetupError("crt-list", "settings per certificate need libssl")
    return front


def refused_settings(tls: BindTls) -> list[TlsSetupError]:
    """Each of `ciphers`, `ciphersuites`, `curves` and `ecdhe` that OpenSSL refuses,
    in that order (lb.config.build words them as HAProxy does)."""
    out = []
    for what in ("ciphers", "ciphersuites", "curves", "ecdhe"):
        value = getattr(tls, what)
        if value is None or (what == "ecdhe" and tls.curves is not None):
            continue
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        one = BindTls(**{what: value})
        try:
            _apply_settings(ctx, one)
        except TlsSetupError as exc:
            out.append(exc)
    return out
