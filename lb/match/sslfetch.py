"""The `ssl_fc*` and `ssl_c*` sample fetches: what a client's TLS connection
negotiated, and the certificate it presented.

Owns one function per fetch, in the ``fn(ctx, args) -> list[Value]`` form of
lb.match.sample, read from the connection's ``ssl.SSLObject`` (``ctx.conn.tls``,
set by lb.proxy.client once the handshake is done; None on a plain connection,
where every fetch but ``ssl_fc`` gives no sample). Texts are bytes, as in every
fetch. Distinguished names are written as HAProxy writes them by default
(``/C=FR/O=Example/CN=name``, short attribute names), dates as ``YYMMDDhhmmssZ``.

Must not import anything from lb.
"""

from __future__ import annotations

import hashlib
import ssl
import time
from collections.abc import Callable
from typing import Any

Fetch = Callable[[Any, tuple], list[Any]]

# OpenSSL's short names for the attributes Python's decoder spells out
_SHORT = {
    "countryName": "C", "stateOrProvinceName": "ST", "localityName": "L",
    "organizationName": "O", "organizationalUnitName": "OU", "commonName": "CN",
    "emailAddress": "emailAddress", "serialNumber": "serialNumber",
    "domainComponent": "DC", "userId": "UID", "givenName": "GN", "surname": "SN",
    "title": "title", "streetAddress": "street", "postalCode": "postalCode",
}


def _tls(ctx: Any) -> Any:
    return getattr(getattr(ctx, "conn", None), "tls", None)


def ssl_fc(ctx: Any, args: tuple) -> list[Any]:
    return [_tls(ctx) is not None]


def _with_tls(read: Callable[[Any], Any]) -> Fetch:
    """A fetch of the TLS connection: no sample on a plain one, or when ``read``
    gives None."""
    def fetch(ctx: Any, args: tuple) -> list[Any]:
        tls = _tls(ctx)
        if tls is None:
            return []
        value = read(tls)
        return [] if value is None else [value]
    return fetch


def _text(value: str | None) -> bytes | None:
    return None if value is None else value.encode("utf-8", "surrogateescape")


def _sni(tls: Any) -> bytes | None:
    return _text(getattr(tls, "sni", None))


def _cipher_field(index: int) -> Callable[[Any], Any]:
    def read(tls: Any) -> Any:
        c = tls.cipher()
        if c is None:
            return None
        return _text(c[index]) if isinstance(c[index], str) else c[index]
    return read


def _session_id(tls: Any) -> bytes | None:
    sess = tls.session
    return None if sess is None else bytes(sess.id)


def _peer_der(tls: Any) -> bytes | None:
    try:
        return tls.getpeercert(binary_form=True)  # type: ignore[no-any-return]
    except (ValueError, ssl.SSLError):
        return None


def _peer(tls: Any) -> dict[str, Any] | None:
    """The client certificate decoded (only one that was verified: Python decodes
    nothing else)."""
    try:
        got = tls.getpeercert()
    except (ValueError, ssl.SSLError):
        return None
    return got or None


def _dn(which: str) -> Fetch:
    """`ssl_c_s_dn` / `ssl_c_i_dn` ``([entry[, occ]])``: the whole name, or the
    value of one attribute (its ``occ``-th occurrence, counting from 1, or from the
    end when negative; the last one by default)."""
    def fetch(ctx: Any, args: tuple) -> list[Any]:
        tls = _tls(ctx)
        cert = _peer(tls) if tls is not None else None
        if cert is None:
            return []
        pairs = [(_SHORT.get(k, k), v) for rdn in cert.get(which, ()) for k, v in rdn]
        entry = args[0] if args and args[0] else None
        if entry is None:
            return [("".join(f"/{k}={v}" for k, v in pairs)).encode("utf-8", "surrogateescape")]
        if isinstance(entry, bytes):
            entry = entry.decode("utf-8", "surrogateescape")
        values = [v for k, v in pairs if k == entry]
        occ = int(args[1]) if len(args) > 1 and args[1] else -1
        try:
            return [values[occ - 1 if occ > 0 else occ].encode("utf-8", "surrogateescape")]
        except IndexError:
            return []
    return fetch


def _asn1_time(text: str) -> bytes:
    """Python's 'Nov 26 01:14:23 2026 GMT' as HAProxy's YYMMDDhhmmssZ."""
    t = time.strptime(text, "%b %d %H:%M:%S %Y %Z")
    return time.strftime("%y%m%d%H%M%SZ", t).encode()


def _cert_field(name: str) -> Fetch:
    def fetch(ctx: Any, args: tuple) -> list[Any]:
        tls = _tls(ctx)
        cert = _peer(tls) if tls is not None else None
        if cert is None or name not in cert:
            return []
        value = cert[name]
        if name == "serialNumber":
            return [bytes.fromhex(value)]
        if name in ("notBefore", "notAfter"):
            return [_asn1_time(value)]
        return [value]
    return fetch


def _der_digest(tls: Any) -> bytes | None:
    der = _peer_der(tls)
    return None if der is None else hashlib.sha1(der).digest()


def _used(tls: Any) -> bool:
    return _peer_der(tls) is not None


# name -> (function, output type); lb.match.sample adds them to its table
FETCHES: dict[str, tuple[Fetch, str]] = {
    "ssl_fc_sni": (_with_tls(_sni), "str"),
    "ssl_fc_has_sni": (_with_tls(lambda t: getattr(t, "sni", None) is not None), "bool"),
    "ssl_fc_protocol": (_with_tls(lambda t: _text(t.version())), "str"),
    "ssl_fc_cipher": (_with_tls(_cipher_field(0)), "str"),
    "ssl_fc_use_keysize": (_with_tls(_cipher_field(2)), "int"),
    "ssl_fc_alg_keysize": (_with_tls(_cipher_field(2)), "int"),
    "ssl_fc_alpn": (_with_tls(lambda t: _text(t.selected_alpn_protocol())), "str"),
    "ssl_fc_is_resumed": (_with_tls(lambda t: bool(t.session_reused)), "bool"),
    "ssl_fc_session_id": (_with_tls(_session_id), "bin"),
    "ssl_fc_has_crt": (_with_tls(_used), "bool"),
    "ssl_c_used": (_with_tls(_used), "bool"),
    # (set by lb.tls.frontend when `ca-ignore-err`/`crt-ignore-err` let an error by)
    "ssl_c_verify": (_with_tls(lambda t: getattr(t, "verify_result", 0)), "int"),
    "ssl_c_err": (_with_tls(lambda t: getattr(t, "crt_error", 0)), "int"),
    "ssl_c_ca_err": (_with_tls(lambda t: getattr(t, "ca_error", 0)), "int"),
    "ssl_c_ca_err_depth": (_with_tls(lambda t: getattr(t, "ca_error_depth", 0)), "int"),
    "ssl_c_der": (_with_tls(_peer_der), "bin"),
    "ssl_c_sha1": (_with_tls(_der_digest), "bin"),
    "ssl_c_serial": (_cert_field("serialNumber"), "bin"),
    "ssl_c_notbefore": (_cert_field("notBefore"), "str"),
    "ssl_c_notafter": (_cert_field("notAfter"), "str"),
    "ssl_c_version": (_cert_field("version"), "int"),
}
# fetches with arguments: ([entry[, occ]])
DN_FETCHES: dict[str, Fetch] = {"ssl_c_s_dn": _dn("subject"), "ssl_c_i_dn": _dn("issuer")}
