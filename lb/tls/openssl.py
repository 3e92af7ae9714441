"""The two OpenSSL settings Python's ``ssl`` module does not offer: the TLS 1.3
cipher suites and a list of curves (groups) of an ``SSLContext``.

Owns: ``set_ciphersuites`` and ``set_curves``, calls into the libssl the ``ssl``
module itself uses, on the context's ``SSL_CTX``. The pointer is read from the
context object (CPython keeps it first after the object header) and trusted only
once ``SSL_CTX_get_options`` through it gives the options Python reports; otherwise
``available()`` is False and nothing is called.

Must not import anything from lb.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ssl
import sys

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
