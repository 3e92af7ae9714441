"""The TLS lb speaks to a server: the ``ssl.SSLContext`` of a `server` line whose
traffic or health checks use TLS, and HAProxy 2.6's texts for what stops one.

Owns: ``uses_tls`` (whether a server needs a context: `ssl`, `check-ssl`, or a
`connect ssl` check rule of its proxy), ``prepare`` (the context built from the
line's options and the global `ssl-server-verify` / `ssl-default-server-*`
settings, with the messages HAProxy gives while it prepares a server's context, in
its order: client certificate, versions, verification, ciphers, TLS 1.3 suites),
``load_client_crt`` (a server's `crt`: one PEM file, its key inside or beside it),
``ServerContext`` (checks the certificate's name against `verifyhost`, else the
SNI sent, as HAProxy does, and resumes the last session of each server name unless
`no-ssl-reuse`), ``host_matches`` (HAProxy's name match, wildcards included) and
``offered_alpn`` (the `alpn` protocols lb offers: HTTP/1.x only, never `h2`), and
``handshake_text`` (HAProxy's words for a failed handshake, as checks report it).

Imports nothing from lb but lb.config.model and lb.tls.
"""

from __future__ import annotations

import os
import ssl
import stat
import warnings
from dataclasses import dataclass, field
from typing import Any

from lb.config.model import Global, Server
from lb.tls import certs, openssl

VERSIONS = ("SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
# the versions this OpenSSL was built with: HAProxy leaves the others out of the range
_BUILT = {"SSLv3": ssl.HAS_SSLv3, "TLSv1.0": ssl.HAS_TLSv1, "TLSv1.1": ssl.HAS_TLSv1_1,
          "TLSv1.2": ssl.HAS_TLSv1_2, "TLSv1.3": ssl.HAS_TLSv1_3}
SYSTEM_CA = "@system-ca"  # `ca-file @system-ca`: the system's trust store
_NAMES_KEPT = 16  # server names whose last session a context keeps for resumption

NO_CA_DEFAULT = (
    "verify is enabled by default but no CA file specified. If you're running on a LAN "
    "where you're certain to trust the server's certificate, please set an explicit "
    "'verify none' statement on the 'server' line, or use 'ssl-server-verify none' in "
    "the global section to disable server-side verifications by default.")
NO_CA = "verify is enabled but no CA file specified."
FLAGS_IGNORED = ("no-sslv3/no-tlsv1x are ignored for this server. Use only 'ssl-min-ver' "
                 "and 'ssl-max-ver' to fix.")


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a server's preparation: ``level`` is "alert" or "warning"."""

    level: str
    text: str


@dataclass(slots=True)
class Prepared:
    """A server's context (None when an alert stopped it) and the messages."""

    context: ServerContext | None
    messages: list[Message] = field(default_factory=list)


def uses_tls(srv: Server, connect_ssl: bool = False) -> bool:
    """Whether the server's traffic or checks speak TLS (``connect_ssl``: its proxy has
    an `http-check connect ssl` or `tcp-check connect ssl` rule)."""
    return srv.ssl or srv.check_ssl or connect_ssl


def verify_mode(srv: Server, glob: Global) -> str:
    """`verify` of the line, else the global `ssl-server-verify`."""
    return srv.verify or glob.ssl_server_verify


def offered_alpn(text: str | None) -> list[str]:
    """The protocols of an `alpn` list lb offers: all but `h2` (lb speaks HTTP/1.x to
    servers), in their order."""
    return [p for p in (text or "").split(",") if p and p != "h2"]


# --------------------------------------------------------------------- names


def host_matches(pattern: str, host: str) -> bool:
    """A certificate name against the host name wanted, as HAProxy 2.6 compares them:
    equal (case aside), or a pattern whose first label holds one `*` standing for any
    run of characters (even none) of the host's first label, the rest equal."""
    if pattern.lower() == host.lower():
        return True
    label, dot, rest = pattern.partition(".")
    if not dot or label.count("*") != 1:
        return False
    hlabel, hdot, hrest = host.partition(".")
    if not hdot or rest.lower() != hrest.lower():
        return False
    prefix, _, suffix = label.partition("*")
    if len(hlabel) < len(prefix) + len(suffix):
        return False
    return hlabel.startswith(prefix) and hlabel.endswith(suffix)


def cert_matches(cert: dict[str, Any], host: str) -> bool:
    """Whether a peer certificate (``getpeercert()``) answers to ``host``: one of its
    DNS subject alternative names, else one of its common names."""
    names = [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
    names += [v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"]
    return any(host_matches(n, host) for n in names)


class NameMismatch(ssl.SSLCertVerificationError):
    """The server's certificate does not carry the name wanted: ``configured`` when
    that name is `verifyhost`'s, else it is the SNI sent."""

    def __init__(self, name: str, configured: bool) -> None:
        super().__init__(1, f"certificate verify failed: no name matches '{name}'")
        self.configured = configured


def handshake_text(exc: BaseException) -> str:
    """HAProxy's text for a handshake to a server that failed (a check's `last_chk`)."""
    if isinstance(exc, NameMismatch):
        which = "configured" if exc.configured else "expected"
        return f"Server presented an SSL certificate different from the {which} one"
    return "SSL handshake failure"


class _ServerObject(ssl.SSLObject):
    """A connection's TLS state: its context is told when the handshake is done."""

    def do_handshake(self) -> None:
        super().do_handshake()
        self.context.handshake_done(self)  # type: ignore[attr-defined]


class ServerContext(ssl.SSLContext):
    """The client context of one server line.

    ``verify_name``: `verifyhost`; ``check_names``: whether the certificate's name is
    checked (with `verify required`: against `verifyhost`, else the SNI sent, none
    when neither is there, as in HAProxy); ``reuse``: whether a new connection offers
    the session of the last one made to the same server name (HAProxy caches one per
    server; `no-ssl-reuse` turns it off)."""

    sslobject_class = _ServerObject

    def __init__(self, protocol: int = ssl.PROTOCOL_TLS_CLIENT) -> None:
        self.verify_name: str | None = None
        self.check_names = False
        self.reuse = True
        self._last: dict[str | None, ssl.SSLObject] = {}

    def wrap_bio(self, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO,  # type: ignore[override]
                 server_side: bool = False, server_hostname: str | None = None,
                 session: ssl.SSLSession | None = None) -> ssl.SSLObject:
        if session is None and self.reuse and not server_side:
            session = self._session(server_hostname)
            if session is not None:
                try:
                    return super().wrap_bio(incoming, outgoing, server_side,
                                            server_hostname, session)
                except (ValueError, TypeError, ssl.SSLError):
                    pass  # (a session OpenSSL will not take: a full handshake)
                session = None
        return super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)

    def _session(self, name: str | None) -> ssl.SSLSession | None:
        prev = self._last.get(name)
        if prev is None:
            return None
        try:
            return prev.session
        except (ValueError, AttributeError):
            return None

    def handshake_done(self, obj: ssl.SSLObject) -> None:
        """The name check (an ``SSLCertVerificationError`` fails the handshake), then
        the connection is kept as the one to resume from."""
        name = obj.server_hostname
        if self.check_names:
            wanted = self.verify_name or name
            if wanted and not cert_matches(obj.getpeercert() or {}, wanted):
                raise NameMismatch(wanted, self.verify_name is not None)
        if self.reuse:
            last = self._last
            if name not in last and len(last) >= _NAMES_KEPT:
                last.clear()
            last[name] = obj


# --------------------------------------------------------------------- files


def load_client_crt(path: str, stale: str = "Success") -> tuple[str, str | None]:
    """A server's `crt`: one PEM file holding the certificate (and its chain) and its
    key, or the key in ``<path>.key`` -> (certificate file, key file or None).
    HAProxy takes no directory here and names whatever error was last seen
    (``stale``; "Success" when none) for one."""
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise certs.TlsFileError(f"unable to stat SSL certificate from file '{path}' "
                                     f": {stale}.")
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise certs.TlsFileError(f"unable to stat SSL certificate from file '{path}' : "
                                 f"{exc.strerror}.") from None
    key = certs.key_file(path, data)
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        probe.load_cert_chain(path, key, password=certs.no_password)
    except (ssl.SSLError, ValueError):
        raise certs.TlsFileError("inconsistencies between private key and certificate "
                                 f"loaded '{path}'.") from None
    return path, key


# --------------------------------------------------------------------- versions


def version_range(srv: Server, glob: Global, owner: str
                  ) -> tuple[tuple[str, str] | None, list[Message]]:
    """The lowest and highest versions offered, as HAProxy 2.6 finds them: the
    server's `ssl-min-ver`/`ssl-max-ver` (`force-*` sets both) or else the global
    defaults' ones; `no-*` flags (the server's and the global ones) count only when no
    end is set (else a warning says they are ignored); a version left out inside
    the range is a warning; none left is an alert (None). ``owner``: HAProxy's
    words for the proxy (`backend 'b'`)."""
    low = srv.ssl_min_ver or glob.ssl_server_min_ver
    high = srv.ssl_max_ver or glob.ssl_server_max_ver
    off = set(glob.ssl_server_no) | set(srv.ssl_no)
    msgs: list[Message] = []
    if low or high:
        if off:
            msgs.append(Message("warning", FLAGS_IGNORED))
        off = set()
        if low:
            off |= set(VERSIONS[:VERSIONS.index(low)])
        if high:
            off |= set(VERSIONS[VERSIONS.index(high) + 1:])
    first = last = hole = None
    for v in VERSIONS:
        if _BUILT[v] and v not in off:
            if first is None:
                first = v
            elif hole is not None:
                msgs.append(Message("warning", f"{owner}: SSL/TLS versions range not "
                                    f"contiguous for server '{srv.name}'. Hole find for "
                                    f"{hole}. Use only 'ssl-min-ver' and 'ssl-max-ver' "
                                    "to fix."))
                hole = None
            last = v
        elif first is not None:
            hole = v
    if first is None or last is None:
        msgs.append(Message("alert", f"{owner}: all SSL/TLS versions are disabled for "
                            f"server '{srv.name}'."))
        return None, msgs
    return (first, last), msgs


def verify_problem(srv: Server, glob: Global) -> str | None:
    """HAProxy's refusal of a server that verifies with no CA file to verify with."""
    if verify_mode(srv, glob) != "required" or srv.ca_file:
        return None
    return NO_CA_DEFAULT if glob.ssl_server_verify == "required" else NO_CA


# --------------------------------------------------------------------- the context


def prepare(srv: Server, glob: Global, owner: str, *, alpn: str | None = None,
            stale: str = "Success") -> Prepared:
    """The context of ``srv`` and HAProxy's messages about it, in its order.
    ``alpn``: the protocols to offer instead of the line's `alpn` (a check's
    `check-alpn`); ``stale``: see ``load_client_crt``."""
    msgs: list[Message] = []
    crt: tuple[str, str | None] | None = None
    if srv.crt:
        try:
            crt = load_client_crt(srv.crt, stale)
        except certs.TlsFileError as exc:
            msgs.append(Message("alert", str(exc)))
    span, more = version_range(srv, glob, owner)
    msgs += more
    problem = verify_problem(srv, glob)
    if problem is not None:
        msgs.append(Message("alert", problem))
    ctx = ServerContext(ssl.PROTOCOL_TLS_CLIENT)
    msgs += _ciphers(ctx, srv, glob)
    if any(m.level == "alert" for m in msgs):
        return Prepared(None, msgs)
    try:
        _settle(ctx, srv, glob, span, crt, srv.alpn if alpn is None else alpn)
    except (OSError, ssl.SSLError, ValueError) as exc:  # (a file changed since the check)
        msgs.append(Message("alert", f"unable to prepare the SSL context of server "
                            f"'{srv.name}': {exc}."))
        return Prepared(None, msgs)
    return Prepared(ctx, msgs)


def _ciphers(ctx: ssl.SSLContext, srv: Server, glob: Global) -> list[Message]:
    msgs: list[Message] = []
    ciphers = srv.ciphers or glob.ssl_server_ciphers
    try:
        ctx.set_ciphers(ciphers or "DEFAULT")  # (OpenSSL's own list, as HAProxy's)
    except ssl.SSLError:
        msgs.append(Message("alert", f"unable to set SSL cipher list to '{ciphers}'."))
    suites = srv.ciphersuites or glob.ssl_server_ciphersuites
    if suites and openssl.available() and not openssl.set_ciphersuites(ctx, suites):
        msgs.append(Message("alert", f"unable to set TLS 1.3 cipher suites to '{suites}'."))
    return msgs


def _settle(ctx: ServerContext, srv: Server, glob: Global, span: tuple[str, str] | None,
            crt: tuple[str, str | None] | None, alpn: str | None) -> None:
    """Versions, verification, client certificate, tickets, ALPN, resumption."""
    ctx.check_hostname = False  # (lb checks the name itself: ServerContext)
    if span is not None:
        with warnings.catch_warnings():  # (TLS 1.0 and 1.1 are deprecated in Python)
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                ctx.minimum_version = certs.TLS_VERSIONS[span[0]]
                ctx.maximum_version = certs.TLS_VERSIONS[span[1]]
            except (ValueError, ssl.SSLError):  # a version this OpenSSL refuses
                pass
    if verify_mode(srv, glob) == "required":
        ctx.verify_mode = ssl.CERT_REQUIRED
        if srv.ca_file == SYSTEM_CA:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        elif srv.ca_file:
            for path in certs.ca_paths(srv.ca_file):
                ctx.load_verify_locations(path)
        if srv.crl_file and srv.crl_file != SYSTEM_CA:
            for path in certs.ca_paths(srv.crl_file):
                ctx.load_verify_locations(path)
            ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN
        ctx.verify_name = srv.verifyhost
        ctx.check_names = True
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if crt is not None:
        ctx.load_cert_chain(crt[0], crt[1], password=certs.no_password)
    if (glob.ssl_server_no_tickets if srv.no_tls_tickets is None else srv.no_tls_tickets):
        ctx.options |= ssl.OP_NO_TICKET
    offered = offered_alpn(alpn)
    if offered:
        ctx.set_alpn_protocols(offered)
    ctx.reuse = srv.ssl_reuse
