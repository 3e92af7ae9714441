"""The TLS a `bind ... ssl` line serves: its contexts, chosen by SNI.

Owns: ``build`` (a ``FrontendTls`` from the compiled ``BindTls``: one
``ssl.SSLContext`` per certificate, the first one the default), the SNI choice
(exact names first, then a `*.` wildcard one label deep; `!name` filters of a
`crt-list` exclude; `strict-sni` refuses a name no certificate serves, and a
handshake without SNI), the settings HAProxy gives every bind context (TLS 1.2 at
least, the server's cipher order, no compression), and ``TlsSetupError`` for a value
OpenSSL refuses (HAProxy's texts are worded by lb.config.build), and
``handshake_error``: HAProxy's log text for a handshake that failed.

Each connection's ``ssl.SSLObject`` remembers the name its client asked for
(``sni``), which the ``ssl_fc_sni`` fetch reads.

Imports only lb.config.model and lb.tls.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any

from lb.config.model import BindTls
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


def handshake_error(exc: BaseException | None) -> tuple[str, bool]:
    """HAProxy's text for a failed TLS handshake, and whether `option dontlognull`
    keeps it out of the log (all but a TLS error: HAProxy names a timeout only after
    deciding to log it). The event
    loop reports its handshake timeout as a ConnectionAbortedError, and a client that
    closed as a ConnectionResetError without an errno (one with an errno: a reset)."""
    if isinstance(exc, (TimeoutError, ConnectionAbortedError)):
        return "Timeout during SSL handshake", True
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
    if tls.ecdhe is not None:
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


def _entries(tls: BindTls) -> list[tuple[certs.CertFile, tuple[str, ...], frozenset[str]]]:
    """Each certificate with the names it serves and those it must not."""
    out = []
    for path in tls.crt:
        for cert in certs.load_crt(path):
            out.append((cert, cert.names, frozenset()))
    for path, filters in tls.crt_list:
        for cert in certs.load_crt(path):
            wanted = tuple(f for f in filters if not f.startswith("!"))
            out.append((cert, wanted or cert.names,
                        frozenset(f[1:] for f in filters if f.startswith("!"))))
    return out


def build(tls: BindTls) -> FrontendTls:
    """The contexts of a bind line (raises ``TlsSetupError``, ``certs.TlsFileError``,
    or ``ValueError`` when there is no certificate)."""
    entries = _entries(tls)
    if not entries:
        raise ValueError("no certificate")
    holder: list[FrontendTls] = []

    def sni(sslobj: Any, name: str | None, ctx: ssl.SSLContext) -> int | None:
        return holder[0].on_sni(sslobj, name, ctx)

    contexts = [_context(tls, cert, sni) for cert, _, _ in entries]
    front = FrontendTls(contexts[0], tls.strict_sni)
    holder.append(front)
    for ctx, (_, names, excluded) in zip(contexts, entries, strict=True):
        for name in names:
            table = front.wildcard if name.startswith("*.") else front.exact
            table.setdefault(name, ctx)  # the first certificate naming it wins
        if excluded:
            front.excluded[id(ctx)] = excluded
    return front


def refused_settings(tls: BindTls) -> list[TlsSetupError]:
    """Each of `ciphers`, `ciphersuites`, `curves` and `ecdhe` that OpenSSL refuses,
    in that order (lb.config.build words them as HAProxy does)."""
    out = []
    for what in ("ciphers", "ciphersuites", "curves", "ecdhe"):
        value = getattr(tls, what)
        if value is None:
            continue
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        one = BindTls(**{what: value})
        try:
            _apply_settings(ctx, one)
        except TlsSetupError as exc:
            out.append(exc)
    return out
