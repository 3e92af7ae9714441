"""Listening sockets for every `bind` form, and maxconn admission.

Owns: building the socket of a ``Bind`` (``addr:port``, ``*:port``, ``:::port``,
unix paths, ``fd@N`` adopting an inherited socket), ``backlog``, and ``Listener``
which runs the accept loop itself: while the frontend's or the global ``maxconn`` is
reached it stops accepting, so excess connections wait in the kernel backlog as with
HAProxy, and it accepts again when a slot frees (docs/dataplane.md, maxconn).

Must not import: lb.cli, healthcheck.
"""

from __future__ import annotations

import _socket
import errno
import json
import os
import socket
import time
from functools import partial
from typing import Any

from lb.config.model import Bind
from lb.proxy.drive import DONE as DRIVEN_DONE
from lb.proxy.drive import Driven
from lb.tls import SHUTDOWN_WAIT
from lb.tls import frontend as tls_frontend


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
            if not path.startswith("\0") and os.path.exists(path):  # (not an abstract name)
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


# connections accepted per wake-up at most (HAProxy's tune.maxaccept is 64)
MAXACCEPT = 64
_RETRY_LATER = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))


def backlog_for(b: Bind, fe_backlog: int, fe_maxconn: int) -> int:
    return b.backlog or fe_backlog or fe_maxconn or 1024


class Listener:
    """One listening socket and maxconn admission, with our own accept loop.

    lb reads the listening socket itself (``loop.add_reader``) instead of letting
    ``create_server`` accept everything: while the frontend's or the global
    ``maxconn`` is reached the reader is removed, so further connections wait in the
    kernel backlog, unaccepted, as with HAProxy; the reader is added back when a
    slot frees. ``pause()``/``resume()`` (SIGTTOU/SIGTTIN) use the same switch.
    """

    __slots__ = ("rt", "fe", "bind", "server", "port", "sock", "factory", "backlog",
                 "reading", "paused", "blocked", "accepted_class", "peer", "peer_fd",
                 "accept_proxy", "label",
                 "local", "tls")

    def __init__(self, rt: Any, fe: Any, bind: Bind) -> None:
        self.rt = rt
        self.fe = fe
        self.bind = bind
        # a PROXY header starts each connection (lb.proxy.client reads it first)
        self.accept_proxy = bool(getattr(bind, "accept_proxy", False))
        # how HAProxy names the listener in a connection's error line: its bind
        # `name`, else its number within the frontend (lb.config: `id`, or in order)
        self.label = bind.name or str(bind.luid)
        self.server: Any = None  # kept for older callers; lb no longer uses create_server
        self.port = 0
        self.sock: socket.socket | None = None  # the listening socket
        self.factory: Any = None  # protocol factory for an accepted connection
        self.backlog = 0
        self.reading = False  # the accept reader is installed
        self.paused = False  # SIGTTOU (lb.lifecycle): not accepting until resume()
        self.blocked = False  # not accepting because a maxconn is reached
        self.accepted_class: Any = socket.socket  # see accepted_socket_class()
        # the connection being accepted: its peer address as accept() gave it, read
        # by the protocol factory (it runs within the accept), and the local address
        # every accepted connection shares (None for a wildcard bind, where it varies)
        self.peer: Any = None
        self.peer_fd = -1  # ... and its descriptor
        self.local: tuple[str, int] | None = None
        # `ssl`: the contexts connections are served with (handshake before the
        # protocol's connection_made), None for plain TCP
        self.tls: tls_frontend.FrontendTls | None = (
            tls_frontend.build(bind.tls) if getattr(bind, "tls", None) is not None else None)

    # ---- the accept loop
    def start(self) -> None:
        """Listen and start accepting (the socket is already bound)."""
        sock = self.sock
        assert sock is not None
        sock.setblocking(False)
        sock.listen(self.backlog)
        self.accepted_class = accepted_socket_class(
            sock, light=type(self.rt.loop).__module__.startswith("uvloop"))
        self.local = shared_local_address(sock)
        self._read(True)

    def _read(self, on: bool) -> None:
        sock = self.sock
        if on == self.reading or sock is None:
            return
        self.reading = on
        if on:
            self.rt.loop.add_reader(sock.fileno(), self._accept)
        else:
            self.rt.loop.remove_reader(sock.fileno())

    def _full(self) -> bool:
        fe = self.fe
        rt = self.rt
        return ((fe.maxconn > 0 and fe.active >= fe.maxconn)
                or (rt.maxconn > 0 and rt.active >= rt.maxconn))

    def _accept(self) -> None:
        sock = self.sock
        if sock is None:
            return
        fe = self.fe
        rt = self.rt
        loop = rt.loop
        for _ in range(MAXACCEPT):
            if self._full():
                self._block()
                return
            if fe.rate_lim and self._rate_wait():
                return
            try:
                fd, peer = sock._accept()  # type: ignore[attr-defined]
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in _RETRY_LATER:
                    # out of file descriptors or memory: stop accepting for a moment
                    self._read(False)
                    loop.call_later(0.1, self._retry)
                    return
                continue  # ECONNABORTED and the like: that connection is gone
            csock = self.accepted_class(fileno=fd)
            fe.rate_curr += 1
            fe.active += 1
            rt.active += 1
            # (no setblocking here: connect_accepted_socket makes the socket
            # non-blocking itself, in uvloop and asyncio alike; a second ioctl saved)
            self.peer = peer
            self.peer_fd = fd
            if self.tls is None or self.accept_proxy:  # (TLS after the PROXY header)
                Driven(loop, loop.connect_accepted_socket(self.factory, csock),
                       partial(self._served, csock))
            else:
                self._accept_tls(csock, peer)
            self.peer = None
        # more may be pending: the reader fires again on the next loop turn

    def _rate_wait(self) -> bool:
        """`rate-limit sessions`: True when the frontend's session rate is at its
        limit; accepting then stops, and starts again once the rate has decayed. The
        rate is HAProxy's estimate: this second's sessions plus the last second's,
        weighted by what is left of this one."""
        fe = self.fe
        loop = self.rt.loop
        now = loop.time()
        sec = int(now)
        if sec != fe.rate_sec:
            fe.rate_prev = fe.rate_curr if sec == fe.rate_sec + 1 else 0
            fe.rate_curr = 0
            fe.rate_sec = sec
        left = 1.0 - (now - sec)
        if fe.rate_curr + fe.rate_prev * left < fe.rate_lim:
            return False
        self._read(False)
        loop.call_later(min(max(1.0 / fe.rate_lim, 0.001), left + 0.001), self._retry)
        return True

    def _served(self, csock: Any, done: Driven) -> None:
        if done.state != DRIVEN_DONE or done.exc is not None:  # cancelled or failed
            try:
                csock.discard()
            except OSError:
                pass
            self._free()

    def _accept_tls(self, csock: Any, peer: Any) -> None:
        """A TLS connection: the handshake runs (within `timeout client`) before the
        protocol sees the connection; ``_handshake_failed`` ends one that fails."""
        t = self.fe.t_client
        Driven(self.rt.loop, self.rt.loop.connect_accepted_socket(
            self.factory, csock, ssl=self.tls.context,  # type: ignore[union-attr]
            ssl_handshake_timeout=t if t else None, ssl_shutdown_timeout=SHUTDOWN_WAIT),
            partial(self._tls_served, csock, peer, time.time()))

    def _tls_served(self, csock: Any, peer: Any, accepted: float, done: Driven) -> None:
        if done.state == DRIVEN_DONE and done.exc is None:
            return
        if done.state == DRIVEN_DONE:
            self._handshake_failed(peer, accepted, done.exc)
        self._served(csock, done)

    def _handshake_failed(self, peer: Any, accepted: float, exc: BaseException | None) -> None:
        """Counted as HAProxy counts it (a connection, a TLS one, no session) and
        logged with its line for the case."""
        fe = self.fe
        st = self.rt.state
        st.cum_conns += 1
        st.cum_ssl_conns += 1
        st.conn_rate.add(accepted)
        fe.counters.conn_tot += 1
        fe.counters.conn_rate.add(accepted)
        if fe.log is not None:
            why, empty = tls_frontend.handshake_error(exc)
            src = peer if isinstance(peer, tuple) and len(peer) >= 2 else ("", 0)
            # (a connection object that is never made, to log it as one)
            self.factory().log_failed_handshake(
                str(src[0]), int(src[1]), accepted, why, empty,
                tls_frontend.failed_handshake(exc))

    def _retry(self) -> None:
        if not self.paused and not self.blocked:
            self._read(True)

    def _block(self) -> None:
        """A maxconn is reached: leave new connections in the kernel backlog."""
        self._read(False)
        if not self.blocked:
            self.blocked = True
            self.rt.blocked.append(self)
        fe = self.fe
        if fe.maxconn > 0 and fe.active >= fe.maxconn and fe.st.status == "OPEN":
            fe.st.status = "FULL"

    # ---- a connection ends (ClientConn / TcpClient.session_closed)
    def release(self, conn: Any) -> None:
        self._free()

    def _free(self) -> None:
        fe = self.fe
        rt = self.rt
        fe.active -= 1
        rt.active -= 1
        if fe.st.status == "FULL" and not (fe.maxconn > 0 and fe.active >= fe.maxconn):
            fe.st.status = "OPEN"
        if rt.blocked:
            _unblock(rt)

    # ---- lb.lifecycle and stop
    def pause(self) -> None:
        """Stop accepting (SIGTTOU); new connections wait in the kernel backlog."""
        self.paused = True
        self._read(False)

    def resume(self) -> None:
        """Accept again (SIGTTIN), unless a maxconn is still reached, or the frontend
        was disabled or shut down from the CLI."""
        st = self.fe.st
        if self.sock is None or st.paused or st.stopped:
            return
        self.paused = False
        if self._full():
            self._block()
        else:
            self._read(True)

    def close(self) -> None:
        """Stop accepting for good and close the listening socket."""
        self._read(False)
        self.paused = True
        sock = self.sock
        self.sock = None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass


def accepted_socket_class(listening: socket.socket, light: bool = False) -> type[Any]:
    """The class that wraps each descriptor accepted on ``listening`` for the event
    loop's ``connect_accepted_socket``; its ``family`` and ``type`` are the listening
    socket's, as plain class attributes.

    ``light`` (uvloop): not a socket at all. uvloop reads only ``family``, ``type``
    and ``fileno()``, hands the descriptor to libuv, and calls ``close()`` once its
    transport has closed it. A ``socket.socket`` costs a ``getsockname(2)`` per
    connection (CPython checks the descriptor with it) and an object with a
    finaliser, for nothing (issue #9, docs/performance.md).

    Otherwise (asyncio, which uses the socket object): a ``socket.socket`` subclass.
    ``socket.socket`` converts ``family`` and ``type`` to an enum member on every
    read, and its own ``__init__`` and ``detach`` are Python functions; the subclass
    does the same from this compiled module, with all three of family, type and
    protocol given, which spares the kernel queries of ``socket(fileno=fd)``.
    """
    family, stype, proto = listening.family, listening.type, listening.proto
    if light:
        class AcceptedFd:
            __slots__ = ("fd",)

            def __init__(self, *, fileno: int) -> None:
                self.fd = fileno

            def fileno(self) -> int:
                return self.fd

            def close(self) -> None:
                """From uvloop: its handle has closed the descriptor already."""
                self.fd = -1

            def discard(self) -> None:
                """Not served (the connect failed or was cancelled): close the
                descriptor unless a transport took it and closed it."""
                fd = self.fd
                if fd >= 0:
                    self.fd = -1
                    os.close(fd)

        AcceptedFd.family = int(family)  # type: ignore[attr-defined]
        AcceptedFd.type = int(stype)  # type: ignore[attr-defined]
        return AcceptedFd

    c_init = _socket.socket.__init__
    c_detach = _socket.socket.detach

    class Accepted(socket.socket):
        __slots__ = ()

        def __init__(self, *, fileno: int) -> None:
            c_init(self, family, stype, proto, fileno)
            self._io_refs = 0
            self._closed = False

        def detach(self) -> int:
            self._closed = True
            return c_detach(self)  # type: ignore[no-any-return]

        def discard(self) -> None:
            """Not served: close (a no-op once the transport has detached it)."""
            self.close()

    Accepted.family = family  # type: ignore[assignment,misc]
    Accepted.type = stype  # type: ignore[assignment,misc]
    return Accepted


def shared_local_address(listening: socket.socket) -> tuple[str, int] | None:
    """The local (host, port) of every connection accepted on ``listening`` when it
    is bound to one address (a TCP connection's local end is its listener's), so a
    connection need not convert its own; None for a wildcard or non-IP bind."""
    if listening.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    try:
        name = listening.getsockname()
    except OSError:
        return None
    host = str(name[0])
    if host in ("0.0.0.0", "::") or len(name) > 2 and name[3]:  # wildcard, or scoped
        return None
    return host, int(name[1])


def frontend_changed(rt: Any, fst: Any) -> None:
    """Apply a frontend's CLI state (lb.state.FrontendState) to its listeners:
    `disable frontend` pauses them (new connections wait in the kernel backlog),
    `enable frontend` resumes them, `shutdown frontend` closes them for good, and
    `set maxconn frontend` changes the limit they admit against."""
    fe = rt.frontends.get(fst.name)
    if fe is None:
        return
    fe.maxconn = fst.maxconn or 0  # (0: no frontend limit, the process one applies)
    for lst in rt.listeners:
        if lst.fe is not fe or lst.sock is None:
            continue
        if fst.stopped:
            lst.close()
        elif fst.paused:
            lst.pause()
        elif lst.paused:
            lst.resume()
    if fst.stopped:
        if fst.status != "STOP":
            fst.status = "STOP"
            _log_stopped(rt, fst)
    elif fst.paused:
        fst.status = "PAUSED"
    else:
        full = fe.maxconn > 0 and fe.active >= fe.maxconn
        fst.status = "FULL" if full else "OPEN"
    limits_changed(rt)


def limits_changed(rt: Any) -> None:
    """A maxconn was raised or lowered: blocked listeners that may accept again do."""
    _unblock(rt)
    for lst in rt.listeners:
        if not lst.paused and lst.sock is not None and lst._full():
            lst._block()


def _log_stopped(rt: Any, fst: Any) -> None:
    try:
        from lb import log as lblog

        be = rt.state.backends.get(fst.name)
        lblog.proxy_stopped(fst.model, rt.config.global_, fst.counters.conn_tot,
                            be.counters.stot if be is not None else 0)
    except Exception:  # a log target's trouble must not stop the command
        pass


def _unblock(rt: Any) -> None:
    """A slot freed: listeners blocked on a limit that no longer holds accept again
    (a global slot may go to any frontend, as the kernel wakes them)."""
    still = []
    for lst in rt.blocked:
        if lst._full():
            still.append(lst)
            continue
        lst.blocked = False
        if not lst.paused:
            lst._read(True)
    rt.blocked[:] = still
