"""Certificate, key and CA files, read as HAProxy 2.6 reads them.

Owns: ``load_crt`` (a `crt` path: one PEM file, or every certificate file of a
directory; the key in the same file or in ``<file>.key``; the names a certificate
answers to for SNI), ``check_ca_file``, and ``TLS_VERSIONS`` (the version words of
`ssl-min-ver`/`ssl-max-ver` and `force-*`/`no-*` flags, as ``ssl.TLSVersion``).
A problem is a ``TlsFileError`` whose text is HAProxy's for it.

Must not import anything from lb.
"""

from __future__ import annotations

import os
import ssl
import stat
from dataclasses import dataclass

TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "SSLv3": ssl.TLSVersion.SSLv3, "TLSv1.0": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1, "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
# the version a `force-<x>` or `no-<x>` flag names
FLAG_VERSIONS: dict[str, str] = {
    "sslv3": "SSLv3", "tlsv10": "TLSv1.0", "tlsv11": "TLSv1.1", "tlsv12": "TLSv1.2",
    "tlsv13": "TLSv1.3",
}
# files of a `crt` directory that are not certificates (HAProxy skips them too)
_SIDE_FILES = (".issuer", ".ocsp", ".sctl", ".key")
_BEGIN_CERT = b"-----BEGIN CERTIFICATE-----"
_BEGIN_X509 = b"-----BEGIN X509 CERTIFICATE-----"
_BEGIN_TRUSTED = b"-----BEGIN TRUSTED CERTIFICATE-----"
_KEY_MARK = b"PRIVATE KEY-----"


class TlsFileError(Exception):
    """A file cannot serve; ``str()`` is HAProxy's text (no location)."""


@dataclass(frozen=True, slots=True)
class CertFile:
    """One certificate (with its chain) and its key, and the host names it serves:
    its subject alternative DNS names and common names, lower-cased."""

    path: str
    key_path: str | None  # None: the key is in ``path`` itself
    names: tuple[str, ...]


def _has_cert(data: bytes) -> bool:
    return _BEGIN_CERT in data or _BEGIN_X509 in data or _BEGIN_TRUSTED in data


def _names(path: str) -> tuple[str, ...]:
    """The DNS names of the file's first certificate (SAN entries, then CNs)."""
    try:
        info = ssl._ssl._test_decode_cert(path)  # type: ignore[attr-defined]
    except (ssl.SSLError, OSError, AttributeError):
        return ()
    names: list[str] = []
    for kind, value in info.get("subjectAltName", ()):
        if kind == "DNS":
            names.append(value.lower())
    for rdn in info.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                names.append(value.lower())
    return tuple(dict.fromkeys(names))


def no_password() -> bytes:
    """The passphrase callback of every key lb loads: an encrypted key is never
    asked for on a terminal (as OpenSSL's default would), it fails to load."""
    return b"\0"


def key_file(path: str, data: bytes) -> str | None:
    """Where the key of the certificate file ``path`` (whose bytes are ``data``) is:
    None when in the file itself, else ``<path>.key``. A file without a certificate,
    or a key found nowhere, is HAProxy's error for it."""
    if not _has_cert(data):
        raise TlsFileError(f"unable to load certificate from file '{path}'.")
    if _KEY_MARK in data:
        return None
    key_path = path + ".key"
    try:
        with open(key_path, "rb") as fh:
            key_data = fh.read()
    except OSError:
        key_data = b""
    if _KEY_MARK not in key_data:
        raise TlsFileError(f"No Private Key found in '{key_path}'.")
    return key_path


def _load_file(path: str) -> CertFile:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise TlsFileError(f"unable to stat SSL certificate from file '{path}' : "
                           f"{exc.strerror}.") from None
    key_path = key_file(path, data)
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        probe.load_cert_chain(path, key_path, password=no_password)
    except (ssl.SSLError, ValueError):
        raise TlsFileError("inconsistencies between private key and certificate loaded "
                           f"from PEM file '{path}'.") from None
    return CertFile(path, key_path, _names(path))


def load_crt(path: str) -> list[CertFile]:
    """The certificates of a `crt` word: the file, or each certificate file of the
    directory in name order (side files ``.key``, ``.ocsp``, ``.issuer``, ``.sctl``
    and anything not a regular file are skipped)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise TlsFileError(f"unable to stat SSL certificate from file '{path}' : "
                           f"{exc.strerror}.") from None
    if not stat.S_ISDIR(st.st_mode):
        return [_load_file(path)]
    out: list[CertFile] = []
    for name in sorted(os.listdir(path)):
        full = os.path.join(path.rstrip("/"), name)
        if name.endswith(_SIDE_FILES) or not os.path.isfile(full):
            continue
        out.append(_load_file(full))
    return out


# the files of a `ca-file` directory HAProxy 2.6 reads (others are skipped)
_CA_EXTENSIONS = (".pem", ".crt", ".cer")
_CRL_MARK = b"-----BEGIN X509 CRL-----"


def _ca_data(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def ca_paths(path: str) -> list[str]:
    """The files a `ca-file`/`crl-file` stands for: itself, or the `.pem`, `.crt`
    and `.cer` files of a directory that hold a certificate or a CRL."""
    if not os.path.isdir(path):
        return [path]
    out = []
    for name in sorted(os.listdir(path)):
        full = f"{path.rstrip('/')}/{name}"
        if name.endswith(_CA_EXTENSIONS) and os.path.isfile(full):
            try:
                data = _ca_data(full)
            except OSError:
                continue
            if _has_cert(data) or _CRL_MARK in data:
                out.append(full)
    return out


def check_ca_file(path: str) -> list[str]:
    """A CA (or CRL) file must open and hold at least one certificate or CRL. A
    directory is read file by file, as HAProxy 2.6 reads it: its warnings (a file
    without certificate, no certificate at all) are returned."""
    if os.path.isdir(path):
        warnings = []
        for name in sorted(os.listdir(path)):
            full = f"{path.rstrip('/')}/{name}"
            if not name.endswith(_CA_EXTENSIONS) or not os.path.isfile(full):
                continue
            try:
                data = _ca_data(full)
            except OSError as exc:
                warnings.append(f"ca-file: '{path}' couldn't load '{full}' ({exc.strerror})")
                continue
            if not _has_cert(data) and _CRL_MARK not in data:
                warnings.append(f"ca-file: '{path}' couldn't load '{full}' (no start line)")
        if not ca_paths(path):
            warnings.append(f"ca-file: 0 CA were loaded from '{path}'")
        return warnings
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise TlsFileError(f"Couldn't open the ca-file '{path}' ({exc.strerror}).") from None
    if not _has_cert(data) and _CRL_MARK not in data:
        raise TlsFileError(f"Couldn't open the ca-file '{path}' (no certificate or crl "
                           "found).")
    return []


@dataclass(frozen=True, slots=True)
class CrtListEntry:
    """One certificate of a `crt-list` line: the SNI filters it serves (``!name``
    excludes a name; none: the certificate's own names) and the line's `[...]`
    options as written (lb.config.bind_kw reads them)."""

    path: str
    filters: tuple[str, ...]
    options: tuple[str, ...]
    where: str  # "<file>:<line>", as HAProxy names the line in its texts
    warning: str | None = None  # HAProxy's warning about the line's shape


def split_crt_list_line(text: str) -> tuple[list[str], int, int] | str:
    """HAProxy's reading of a `crt-list` line: its words, and the indexes of the
    word after `[` and of the word after `]` (0: none); white space, `[` and `]`
    end a word. A string: the line's error text (without its location)."""
    words: list[str] = []
    begin = end = 0
    current: list[str] = []
    for ch in text:
        if ch in " \t\n\v\f\r[]":
            if current:
                words.append("".join(current))
                current = []
            if ch == "[":
                if begin:
                    return "too many '['"
                if not words:
                    return "file must start with a cert"
                begin = len(words)
            elif ch == "]":
                if end:
                    return "too many ']'"
                if not begin:
                    return "missing '['"
                end = len(words)
        else:
            current.append(ch)
    if current:
        words.append("".join(current))
    return words, begin, end


def read_crt_list(path: str, base: str | None = None) -> list[CrtListEntry]:
    """The entries of a `crt-list` file; each certificate is read as `crt` reads it.
    A line whose first character is `#`, and a blank one, are skipped; a relative
    certificate path is read under ``base`` (the global `crt-base`), else from the
    directory lb runs in. The `[...]` options come between the certificate and its
    filters: filters written before them are dropped, with HAProxy's warning, and
    without a closing `]` the words after `[` are filters."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise TlsFileError(f"cannot open file '{path}' : {exc.strerror}") from None
    out: list[CrtListEntry] = []
    for number, raw in enumerate(lines, 1):
        if raw.startswith("#"):
            continue
        split = split_crt_list_line(raw)
        where = f"{path}:{number}"
        if isinstance(split, str):
            raise TlsFileError(f"parsing [{where}]: {split}")
        words, begin, end = split
        if not words:
            continue
        warning = None
        if begin > 1:
            warning = (f"parsing [{where}]: malformated line, filters can't be between "
                       "filename and options!")
        first = begin or 1
        options = tuple(words[first:end]) if end > first else ()
        filters = words[max(first, end):]
        crt = words[0]
        if base and not crt.startswith(("/", "@")):
            crt = f"{base}/{crt}"
        for one in load_crt(crt):
            out.append(CrtListEntry(one.path, tuple(w.lower() for w in filters), options,
                                    where, warning))
    return out
