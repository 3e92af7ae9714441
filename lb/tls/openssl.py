"""What Python's ``ssl`` module does not offer: the TLS 1.3 cipher suites and a
list of curves (groups) of an ``SSLContext``, and settings made per connection
while its ClientHello is read.

Owns: ``set_ciphersuites`` and ``set_curves``, calls into the libssl the ``ssl``
module itself uses, on the context's ``SSL_CTX``. The pointer is read from the
context object (CPython keeps it first after the object header) and trusted only
once ``SSL_CTX_get_options`` through it gives the options Python reports; otherwise
``available()`` is False and nothing is called. Also ``set_client_hello_callback``
(OpenSSL calls it with the connection's ``SSL *`` before it picks a version),
``hello_server_name`` (the SNI a ClientHello carries) and ``PerConnection`` (the
versions, verification, ciphers and groups one connection is switched to there).

Must not import anything from lb.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ssl
import sys
from collections.abc import Callable
from typing import Any

_SSL_CTRL_SET_GROUPS_LIST = 92  # OpenSSL's SSL_CTX_set1_groups_list is this ctrl
_HEAD = sys.getsizeof(object())  # PyObject_HEAD: the SSL_CTX pointer follows it


def _libssl() -> ctypes.CDLL | None:
    for name in ("libssl.so.3", ctypes.util.find_library("ssl")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        try:
            lib.SSL_CTX_set_ciphersuites.argtypes = (ctypes.c_void_p, ctypes.c_char_p)
            lib.SSL_CTX_set_ciphersuites.restype = ctypes.c_int
            lib.SSL_CTX_ctrl.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_long,
                                         ctypes.c_void_p)
            lib.SSL_CTX_ctrl.restype = ctypes.c_long
            lib.SSL_CTX_get_options.argtypes = (ctypes.c_void_p,)
            lib.SSL_CTX_get_options.restype = ctypes.c_uint64
            lib.SSL_CTX_set_client_hello_cb.argtypes = (ctypes.c_void_p, ctypes.c_void_p,
                                                        ctypes.c_void_p)
            lib.SSL_CTX_set_client_hello_cb.restype = None
            lib.SSL_client_hello_get0_ext.argtypes = (
                ctypes.c_void_p, ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p),
                ctypes.POINTER(ctypes.c_size_t))
            lib.SSL_client_hello_get0_ext.restype = ctypes.c_int
            lib.SSL_ctrl.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_long,
                                     ctypes.c_void_p)
            lib.SSL_ctrl.restype = ctypes.c_long
            lib.SSL_set_verify.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)
            lib.SSL_set_verify.restype = None
            lib.SSL_set_cipher_list.argtypes = (ctypes.c_void_p, ctypes.c_char_p)
            lib.SSL_set_cipher_list.restype = ctypes.c_int
            lib.SSL_set_ciphersuites.argtypes = (ctypes.c_void_p, ctypes.c_char_p)
            lib.SSL_set_ciphersuites.restype = ctypes.c_int
            lib.SSL_get0_param.argtypes = (ctypes.c_void_p,)
            lib.SSL_get0_param.restype = ctypes.c_void_p
            lib.SSL_CTX_set_verify.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)
            lib.SSL_CTX_set_verify.restype = None
            lib.SSL_get_ex_data_X509_STORE_CTX_idx.argtypes = ()
            lib.SSL_get_ex_data_X509_STORE_CTX_idx.restype = ctypes.c_int
            lib.SSL_get_ex_data.argtypes = (ctypes.c_void_p, ctypes.c_int)
            lib.SSL_get_ex_data.restype = ctypes.c_void_p
        except AttributeError:  # an OpenSSL older than 1.1.1
            continue
        return lib
    return None


_LIB = _libssl()


def _ctx_pointer(ctx: ssl.SSLContext) -> int | None:
    if _LIB is None:
        return None
    ptr = ctypes.c_void_p.from_address(id(ctx) + _HEAD).value
    if not ptr or _LIB.SSL_CTX_get_options(ptr) != int(ctx.options):
        return None
    return ptr


def available() -> bool:
    """Whether this Python's libssl can be reached (checked on a fresh context)."""
    return _ctx_pointer(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)) is not None


def set_ciphersuites(ctx: ssl.SSLContext, suites: str) -> bool:
    """The TLS 1.3 suites of ``ctx`` (colon-separated); False if OpenSSL refuses."""
    ptr = _ctx_pointer(ctx)
    return ptr is not None and _LIB.SSL_CTX_set_ciphersuites(  # type: ignore[union-attr]
        ptr, suites.encode()) == 1


def set_curves(ctx: ssl.SSLContext, curves: str) -> bool:
    """The curves (groups) ``ctx`` offers, colon-separated; False if OpenSSL refuses."""
    ptr = _ctx_pointer(ctx)
    if ptr is None:
        return False
    buf = ctypes.create_string_buffer(curves.encode())
    return _LIB.SSL_CTX_ctrl(  # type: ignore[union-attr]
        ptr, _SSL_CTRL_SET_GROUPS_LIST, 0, ctypes.cast(buf, ctypes.c_void_p)) == 1


# --------------------------------------------------------------------------- per connection

_SSL_CTRL_SET_MIN_PROTO_VERSION = 123
_SSL_CTRL_SET_MAX_PROTO_VERSION = 124
_TLSEXT_SERVER_NAME = 0
_X509_V_FLAG_CRL_CHECK = 0x4
_HELLO_ERROR, _HELLO_SUCCESS = 0, 1
_ALERT_HANDSHAKE_FAILURE = 40
# ``ssl.CERT_*`` as OpenSSL's SSL_VERIFY_* bits
VERIFY_BITS = {ssl.CERT_NONE: 0, ssl.CERT_OPTIONAL: 1, ssl.CERT_REQUIRED: 3}

_HELLO_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int),
                             ctypes.c_void_p)


def _libcrypto() -> ctypes.CDLL | None:
    for name in ("libcrypto.so.3", ctypes.util.find_library("crypto")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            for fn in (lib.X509_VERIFY_PARAM_set_flags, lib.X509_VERIFY_PARAM_clear_flags):
                fn.argtypes = (ctypes.c_void_p, ctypes.c_ulong)
                fn.restype = ctypes.c_int
            for fn in (lib.X509_STORE_CTX_get_error, lib.X509_STORE_CTX_get_error_depth):
                fn.argtypes = (ctypes.c_void_p,)
                fn.restype = ctypes.c_int
            lib.X509_STORE_CTX_set_error.argtypes = (ctypes.c_void_p, ctypes.c_int)
            lib.X509_STORE_CTX_set_error.restype = None
            lib.X509_STORE_CTX_get_ex_data.argtypes = (ctypes.c_void_p, ctypes.c_int)
            lib.X509_STORE_CTX_get_ex_data.restype = ctypes.c_void_p
        except (OSError, AttributeError):
            continue
        return lib
    return None


_CRYPTO = _libcrypto() if _LIB is not None else None


class PerConnection:
    """What one connection is switched to while its ClientHello is read, where the
    certificate its name selects differs from the first one's (None: as is):
    versions as protocol numbers, ``ssl.CERT_*`` verification, TLS 1.2 cipher and
    TLS 1.3 suite lists, and whether CRLs are checked."""

    __slots__ = ("versions", "verify", "ciphers", "suites", "crl")

    def __init__(self, versions: tuple[int, int] | None = None, verify: int | None = None,
                 ciphers: str | None = None, suites: str | None = None,
                 crl: bool | None = None) -> None:
        self.versions = versions
        self.verify = verify
        self.ciphers = ciphers
        self.suites = suites
        self.crl = crl

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.versions, self.verify, self.ciphers,
                                           self.suites, self.crl))

    def apply(self, ssl_ptr: int) -> bool:
        """Make these settings the connection's; False if OpenSSL refuses one."""
        lib = _LIB
        assert lib is not None
        if self.versions is not None:
            low, high = self.versions
            if (lib.SSL_ctrl(ssl_ptr, _SSL_CTRL_SET_MIN_PROTO_VERSION, low, None) != 1
                    or lib.SSL_ctrl(ssl_ptr, _SSL_CTRL_SET_MAX_PROTO_VERSION, high,
                                    None) != 1):
                return False
        if self.verify is not None:
            lib.SSL_set_verify(ssl_ptr, VERIFY_BITS[self.verify], None)
        if self.ciphers is not None and lib.SSL_set_cipher_list(
                ssl_ptr, self.ciphers.encode()) != 1:
            return False
        if self.suites is not None and lib.SSL_set_ciphersuites(
                ssl_ptr, self.suites.encode()) != 1:
            return False
        if self.crl is not None:
            if _CRYPTO is None:
                return False
            param = lib.SSL_get0_param(ssl_ptr)
            change = (_CRYPTO.X509_VERIFY_PARAM_set_flags if self.crl
                      else _CRYPTO.X509_VERIFY_PARAM_clear_flags)
            change(param, _X509_V_FLAG_CRL_CHECK)
        return True


def hello_server_name(ssl_ptr: int) -> str | None:
    """The host name of the ClientHello's server_name extension (None: none)."""
    lib = _LIB
    assert lib is not None
    out, size = ctypes.c_void_p(), ctypes.c_size_t()
    if not lib.SSL_client_hello_get0_ext(ssl_ptr, _TLSEXT_SERVER_NAME, ctypes.byref(out),
                                         ctypes.byref(size)) or not out.value:
        return None
    data = ctypes.string_at(out.value, size.value)
    # list length (2 bytes), then entries: type (1: 0 = host name), length (2), name
    if len(data) < 5 or data[2] != 0:
        return None
    length = int.from_bytes(data[3:5], "big")
    return data[5:5 + length].decode("ascii", "replace")


def set_client_hello_callback(ctx: ssl.SSLContext,
                              choose: Callable[[int], bool]) -> object | None:
    """Have OpenSSL call ``choose(ssl_pointer)`` for each ClientHello ``ctx`` reads,
    before the version is picked; False (or an exception) fails the handshake.
    Returns the C callback, which must be kept as long as ``ctx`` is used; None
    when libssl cannot be reached."""
    ptr = _ctx_pointer(ctx)
    if ptr is None:
        return None

    def on_hello(ssl_ptr: int, alert: Any, _arg: int) -> int:
        try:
            if choose(ssl_ptr):
                return _HELLO_SUCCESS
        except Exception:  # never let an exception cross into OpenSSL
            pass
        alert[0] = _ALERT_HANDSHAKE_FAILURE
        return _HELLO_ERROR

    callback = _HELLO_CB(on_hello)
    _LIB.SSL_CTX_set_client_hello_cb(ptr, ctypes.cast(callback, ctypes.c_void_p),  # type: ignore[union-attr]
                                     None)
    return callback


# --------------------------------------------------------------------------- verification

# A client certificate refused for an error above the leaf (its CA chain) leaves
# this added to the error's code, which the handshake's SSLCertVerificationError
# carries as ``verify_code``: HAProxy logs the two cases with different texts.
CA_FAILURE_TAG = 1 << 16
_VERIFY_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
_APP_DATA = 0  # CPython keeps its _ssl._SSLSocket as the SSL's app data


def _owner(store_ctx: int) -> Any:
    """The ``ssl.SSLObject`` of the connection a certificate store context checks
    for (None if it cannot be found)."""
    lib = _LIB
    assert lib is not None and _CRYPTO is not None
    ssl_ptr = _CRYPTO.X509_STORE_CTX_get_ex_data(store_ctx,
                                                 lib.SSL_get_ex_data_X509_STORE_CTX_idx())
    if not ssl_ptr:
        return None
    sock_ptr = lib.SSL_get_ex_data(ssl_ptr, _APP_DATA)
    if not sock_ptr:
        return None
    sock = ctypes.cast(sock_ptr, ctypes.py_object).value
    return getattr(sock, "owner", None) if type(sock) is ssl._ssl._SSLSocket else None  # type: ignore[attr-defined]


def set_verify_callback(ctx: ssl.SSLContext,
                        on_error: Callable[[Any, int, int], bool]) -> object | None:
    """Have OpenSSL call ``on_error(sslobject, error, depth)`` for each error it
    finds in a client's certificate chain; True: the error is ignored and the check
    goes on. A refused error above the leaf carries ``CA_FAILURE_TAG``. Returns the
    C callback, which must be kept as long as ``ctx`` is used (None: libssl or
    libcrypto cannot be reached)."""
    ptr = _ctx_pointer(ctx)
    if ptr is None or _CRYPTO is None:
        return None
    crypto = _CRYPTO

    def on_verify(ok: int, store_ctx: int) -> int:
        if ok:
            return 1
        error = crypto.X509_STORE_CTX_get_error(store_ctx)
        depth = crypto.X509_STORE_CTX_get_error_depth(store_ctx)
        try:
            if on_error(_owner(store_ctx), error, depth):
                return 1
        except Exception:  # never let an exception cross into OpenSSL
            pass
        if depth > 0:
            crypto.X509_STORE_CTX_set_error(store_ctx, error | CA_FAILURE_TAG)
        return 0

    callback = _VERIFY_CB(on_verify)
    _LIB.SSL_CTX_set_verify(ptr, VERIFY_BITS[ctx.verify_mode],  # type: ignore[union-attr]
                            ctypes.cast(callback, ctypes.c_void_p))
    return callback
