"""Listening sockets for every `bind` form, and maxconn admission.

Owns: building the socket of a ``Bind`` (``addr:port``, ``*:port``, ``:::port``,
unix paths, ``fd@N`` adopting an inherited socket), ``backlog``, and ``Listener``
which admits accepted connections under the frontend's and the global ``maxconn``.
A connection over the limit is accepted but not read (reading paused, no timer) until
a slot frees, in arrival order; see docs/dataplane.md for how this differs from
HAProxy leaving it in the kernel backlog.

Must not import: lb.cli, healthcheck.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from lb.config.model import Bind


class BindError(Exception):
    """A listener could not be created; ``str()`` is the OS reason."""


def bind_socket(b: Bind) -> socket.socket:
    """Create, bind and return the listening socket for one Bind (not listening yet)."""
    if b.fd is not None:
        try:
            sock = socket.socket(fileno=b.fd)
        except OSError as e:
            raise BindError(f"cannot adopt fd@{b.fd} ({e.strerror or e})") from e
        sock.setblocking(False)
        return sock
    if b.family == "unix" or b.path:
        path = b.path or b.host
        try:
            if os.path.exists(path):
                os.unlink(path)
        except OSError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
        except OSError as e:
            sock.close()
            raise BindError(e.strerror or str(e)) from e
        sock.setblocking(False)
        return sock
    host = b.host
    if host in ("", "*"):
        host = "::" if b.family == "ipv6" else "0.0.0.0"
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(fam, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # as HAProxy: a new process (-sf/-st) binds next to the old one
        if hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if fam == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if b.v6only else 0)
        sock.bind((host, b.port))
    except OSError as e:
        sock.close()
        raise BindError(e.strerror or str(e)) from e
    sock.setblocking(False)
    return sock


# Listening sockets handed down by a master process (lb.master): the environment
# variable holds {"<frontend>#<bind index>": fd}. Read once, each fd adopted once.
INHERITED_ENV = "LB_LISTEN_FDS"
_inherited: dict[str, int] | None = None


def inherited_socket(frontend: str, index: int) -> socket.socket | None:
    """The inherited listening socket for a frontend's index-th bind, if any."""
    global _inherited
    if _inherited is None:
        try:
            raw = json.loads(os.environ.get(INHERITED_ENV) or "{}")
            _inherited = {str(k): int(v) for k, v in raw.items()}
        except (ValueError, TypeError, AttributeError):
            _inherited = {}
    fd = _inherited.pop(f"{frontend}#{index}", None)
    if fd is None:
        return None
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return None
    sock.setblocking(False)
    return sock


def backlog_for(b: Bind, fe_backlog: int, fe_maxconn: int) -> int:
    return b.backlog or fe_backlog or fe_maxconn or 1024


class Listener:
    """Admission under maxconn for the connections accepted on one frontend."""

    __slots__ = ("rt", "fe", "bind", "server", "port", "sock", "factory", "backlog")

    def __init__(self, rt: Any, fe: Any, bind: Bind) -> None:
        self.rt = rt
        self.fe = fe
        self.bind = bind
        self.server: Any = None
        self.port = 0
        # kept for pause/resume (lb.lifecycle): a duplicate of the listening socket,
        # the protocol factory and the backlog
        self.sock: socket.socket | None = None
        self.factory: Any = None
        self.backlog = 0

    def _full(self) -> bool:
        fe = self.fe
        rt = self.rt
        return ((fe.maxconn > 0 and fe.active >= fe.maxconn)
                or (rt.maxconn > 0 and rt.active >= rt.maxconn))

    def admit(self, conn: Any) -> bool:
        if self._full() or self.fe.waiting:
            self.fe.waiting.append(conn)
            self.fe.st.status = "FULL"
            return False
        self.fe.active += 1
        self.rt.active += 1
        return True

    def release(self, conn: Any) -> None:
        fe = self.fe
        try:
            fe.waiting.remove(conn)
            return
        except ValueError:
            pass
        fe.active -= 1
        rt = self.rt
        rt.active -= 1
        _wake(rt, fe)
        if rt.maxconn > 0:
            # a global slot freed here may admit a connection waiting on another frontend
            for other in rt.frontends.values():
                if other is not fe and other.waiting and rt.active < rt.maxconn:
                    _wake(rt, other)


def _wake(rt: Any, fe: Any) -> None:
    """Admit waiting connections of `fe` while its and the global limits allow."""
    while fe.waiting and not ((fe.maxconn > 0 and fe.active >= fe.maxconn)
                              or (rt.maxconn > 0 and rt.active >= rt.maxconn)):
        nxt = fe.waiting.pop(0)
        fe.active += 1
        rt.active += 1
        nxt.admitted()
    if not fe.waiting and fe.st.status == "FULL":
        fe.st.status = "OPEN"
