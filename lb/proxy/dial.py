"""Opening a server socket ourselves: options before the SYN, and smart connect.

Owns: ``Target`` (a server address known to be numeric, with its family, cached per
(host, port)), ``dial`` (a non-blocking socket with the configured options, connected,
and what the kernel says of it as ``connect()`` returns) and ``SmartFd`` (the
descriptor as uvloop's ``create_connection(sock=...)`` reads it).

Why lb connects itself, for a numeric address on uvloop (docs/dataplane.md, "Opening
server connections"): uvloop's own ``create_connection(host, port)`` offers no hook
between ``socket()`` and ``connect()``, and options such as ``TCP_QUICKACK`` off
(``option tcp-smart-connect``: the handshake's last ACK leaves with the request) or
``SO_KEEPALIVE`` (``option srvtcpka``) belong before the SYN. On loopback the
handshake completes inside ``connect()``, so uvloop takes the socket at once. A
connect still in progress when ``connect()`` returns (a server on another host) is
finished by the caller (``lb.proxy.sockopts.finish``). ``dial_unix`` connects to a server that is a local
socket.

Must not import anything from lb.
"""

from __future__ import annotations

import _socket
import errno
import os
from typing import Any

_STREAM = _socket.SOCK_STREAM
# created non-blocking and close-on-exec: no fcntl/ioctl calls afterwards
_STREAM_NB = _STREAM | getattr(_socket, "SOCK_NONBLOCK", 0) | getattr(_socket, "SOCK_CLOEXEC", 0)
_TCP = _socket.IPPROTO_TCP
_TCP_INFO = getattr(_socket, "TCP_INFO", 11)
_TCP_ESTABLISHED = 1  # tcpi_state, the first byte of struct tcp_info (Linux)
_TCP_CLOSE = 7
_SOL_SOCKET = _socket.SOL_SOCKET
_SO_ERROR = _socket.SO_ERROR
_EINPROGRESS = errno.EINPROGRESS

# what is logged as the address and port of either end of a connection to a local
# socket (HAProxy's `unix:0`)
UNIX_ENDPOINT = ("unix", 0)

SockOpt = tuple[int, int, Any]  # (level, option, int or bytes value)


class Target:
    """A numeric server address: its family and connect() address."""

    __slots__ = ("family", "address")

    def __init__(self, family: int, address: tuple[str, int]) -> None:
        self.family = family
        self.address = address


_targets: dict[tuple[str, int], Target | None] = {}
_TARGETS_MAX = 4096


def target(host: str, port: int) -> Target | None:
    """The Target for a numeric ``host``, None for a name (resolved by the event loop
    at each connect) or a scoped IPv6 address."""
    key = (host, port)
    t = _targets.get(key, False)
    if t is not False:
        return t  # type: ignore[return-value]
    t = None
    for family in (_socket.AF_INET, _socket.AF_INET6):
        try:
            _socket.inet_pton(family, host)
        except (OSError, TypeError, ValueError):
            continue
        t = Target(family, (host, port))
        break
    if len(_targets) >= _TARGETS_MAX:  # addresses changed from the CLI, many times
        _targets.clear()
    _targets[key] = t
    return t


def dial(t: Target, opts: tuple[SockOpt, ...]) -> tuple[int, bool]:
    """A new non-blocking socket to ``t`` with ``opts`` set before its SYN leaves.
    Returns (descriptor, established); raises OSError when the connect failed at once
    (refused on this host, no route, out of descriptors or ports)."""
    s = _socket.socket(t.family, _STREAM_NB)
    try:
        for level, name, value in opts:
            s.setsockopt(level, name, value)
        rc = s.connect_ex(t.address)
        if rc == 0:
            return s.detach(), True
        if rc != _EINPROGRESS:
            raise OSError(rc, os.strerror(rc))
        # in progress: on loopback the handshake went through within connect()
        state = s.getsockopt(_TCP, _TCP_INFO, 1)[0]
        if state == _TCP_ESTABLISHED:
            return s.detach(), True
        if state == _TCP_CLOSE:  # refused within connect()
            err = s.getsockopt(_SOL_SOCKET, _SO_ERROR) or errno.ECONNREFUSED
            raise OSError(err, os.strerror(err))
        return s.detach(), False
    except BaseException:
        s.close()
        raise


def dial_unix(path: str) -> _socket.socket:
    """A new non-blocking socket connected to the local stream socket ``path`` (a
    NUL first: Linux's abstract namespace, which libuv's own connect cannot reach).
    Such a connect is done or refused within ``connect()``: raises OSError when
    refused, when nothing is at ``path``, or when its backlog is full (EAGAIN)."""
    s = _socket.socket(_socket.AF_UNIX, _STREAM_NB)
    rc = s.connect_ex(path)
    if rc:
        s.close()
        raise OSError(rc, os.strerror(rc))
    return s


class SmartFd:
    """A connected descriptor handed to uvloop's ``create_connection(sock=...)``:
    uvloop reads ``family``, ``type`` and ``fileno()``, calls ``setblocking`` (the
    socket is non-blocking already), and once its transport has closed the
    descriptor, ``close()`` (or ``detach()`` when the connect was given up)."""

    __slots__ = ("family", "fd")
    type = _STREAM

    def __init__(self, family: int, fd: int) -> None:
        self.family = family
        self.fd = fd

    def fileno(self) -> int:
        return self.fd

    def setblocking(self, flag: bool) -> None:
        pass

    def close(self) -> None:
        self.fd = -1

    def detach(self) -> int:
        fd = self.fd
        self.fd = -1
        return fd
