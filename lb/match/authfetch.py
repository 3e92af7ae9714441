"""HTTP Basic authentication against a `userlist`: the `http_auth*` fetches.

Owns reading the request's ``Authorization: Basic`` credentials, checking them
against a userlist (``insecure-password`` compared as is, ``password`` through the
system's crypt(3), as HAProxy does), and the fetches ``http_auth(<userlist>)``,
``http_auth_group(<userlist>)`` (the user name as a sample; in an ACL, the user's
groups are matched), ``http_auth_user``, ``http_auth_pass`` and ``http_auth_type``.
``lb.match.sample`` lists them; the userlists are the runtime configuration's
(``ctx.rt.config.userlists``).
"""

from __future__ import annotations

import binascii
import ctypes
import ctypes.util
import functools
import hmac
from base64 import b64decode
from typing import Any

Values = list[Any]


def credentials(ctx: Any) -> tuple[bytes, bytes, bytes] | None:
    """(type, user, password) of the request's Authorization header; the user and
    password are empty for a scheme other than Basic. None without the header."""
    memo = ctx.memo
    if "auth" in memo:
        return memo["auth"]
    found = None
    for name, value in ctx.req_headers or ():
        if name == b"authorization":
            scheme, _, rest = value.strip().partition(b" ")
            user = password = b""
            if scheme.lower() == b"basic":
                try:
                    user, _, password = b64decode(rest.strip(), validate=True).partition(b":")
                except (binascii.Error, ValueError):
                    pass
            found = (scheme, user, password)
    memo["auth"] = found
    return found


_libcrypt: Any = None


def _crypt(password: bytes, hashed: bytes) -> bytes | None:
    """crypt(3) from the system's libcrypt (the stdlib module is deprecated); None
    when the system has no libcrypt or it refuses the hash (the password fails)."""
    global _libcrypt
    if _libcrypt is None:
        try:
            lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
            lib.crypt.restype = ctypes.c_char_p
            lib.crypt.argtypes = (ctypes.c_char_p, ctypes.c_char_p)
        except (OSError, AttributeError):
            lib = False
        _libcrypt = lib
    if _libcrypt is False or b"\0" in password:
        return None
    return _libcrypt.crypt(password, hashed)


@functools.lru_cache(maxsize=1024)
def _hash_matches(hashed: str, password: bytes) -> bool:
    """A password against its crypt hash (cached: a SHA-512 hash costs milliseconds)."""
    out = _crypt(password, hashed.encode("latin-1"))
    return out is not None and hmac.compare_digest(out, hashed.encode("latin-1"))


def _user(ctx: Any, userlist: str) -> Any:
    """The userlist's entry for valid Basic credentials, else None."""
    creds = credentials(ctx)
    if creds is None or not creds[1] or creds[0].lower() != b"basic":
        return None
    rt = getattr(ctx, "rt", None)
    ul = rt.config.userlist(userlist) if rt is not None else None
    if ul is None:
        return None
    user = ul.user(creds[1].decode("utf-8", "surrogateescape"))
    if user is None:
        return None
    password = creds[2]
    if user.insecure_password is not None:
        ok = hmac.compare_digest(user.insecure_password.encode("utf-8", "surrogateescape"),
                                 password)
    elif user.password:
        ok = _hash_matches(user.password, password)
    else:
        ok = False
    return user if ok else None


def http_auth(ctx: Any, args: tuple) -> Values:
    """True for valid credentials, false for wrong ones; no sample without Basic
    credentials (as HAProxy 2.6.12: `http_auth` of a Bearer token is empty)."""
    creds = credentials(ctx)
    if creds is None or creds[0].lower() != b"basic":
        return []
    return [_user(ctx, args[0]) is not None]


def http_auth_group(ctx: Any, args: tuple) -> Values:
    """The user's name when the credentials are valid (HAProxy's sample)."""
    user = _user(ctx, args[0])
    return [] if user is None else [user.name.encode("utf-8", "surrogateescape")]


def http_auth_groups(ctx: Any, args: tuple) -> Values:
    """``http_auth_group`` in an ACL: the groups of a valid user, each a value."""
    user = _user(ctx, args[0])
    return [] if user is None else [g.encode("utf-8", "surrogateescape")
                                    for g in user.groups]


def _part(index: int) -> Any:
    def fn(ctx: Any, args: tuple) -> Values:
        creds = credentials(ctx)
        if creds is None or (index and not creds[1]):
            return []
        return [creds[index]]
    return fn


http_auth_type = _part(0)
http_auth_user = _part(1)
http_auth_pass = _part(2)
