"""Sending on a connection's socket itself, beside its transport.

Owns: ``direct`` and ``send_fd``, which say whether and on which descriptor the
compiled data plane may send; the send itself is ``send_c`` (one object) or
``send2_c`` (a head and a large body behind it, with one ``sendmsg(2)`` and no
joined copy), C bodies in ``sockio.pxd`` that the compiled modules (client, server,
tunnel) call only when compiled. uvloop's ``write`` reaches the socket with
``write(2)``, through the kernel's file layer; ``send(2)`` skips that layer, about a
microsecond a write on this machine (issue #9, docs/performance.md, twelfth
session). Both send only when the transport is open and holds nothing unsent, so
bytes keep their order; what the kernel does not take, and every failure, goes to
the transport's own ``write``.

Only a plain uvloop TCP transport qualifies: its socket carries the bytes as they are
(lb has no TLS on the data plane), and in pure Python every write goes through the
transport. A caller also checks its own ``COMPILED`` before ``send_c``: after an edit
without a rebuild, a stale module runs from source beside a compiled sockio.

``SendQueue`` holds the sends of one turn of the event loop until its callbacks
are done, so that they leave in a burst, as HAProxy's do.

Also ``send_now``: a send on the descriptor of a connection whose transport does
not exist yet (lb.proxy.server.dial_now); ``finish_now``: the FIN of a connection
lb closes, right behind its last bytes; ``reset_on_close``: a close that tells the
peer it was cut short; and
``quickack_on``: prompt ACKs again on a smart-connected server socket;
``closing`` and ``busy``, the transport's state asked with C calls (a pooled
connection's check, and every send's).

Must not import anything from lb.
"""

from __future__ import annotations

import _socket
import os
from socket import IPPROTO_TCP as _IPPROTO_TCP
from socket import SO_LINGER as _SO_LINGER
from socket import SOL_SOCKET as _SOL_SOCKET
from typing import Any

try:  # True only inside the Cython-compiled copy (tools/build_accel.py)
    import cython
    COMPILED = cython.compiled
except ImportError:  # pure Python without Cython installed
    COMPILED = False
try:
    from uvloop.loop import TCPTransport as _UV_TCP
except ImportError:  # no uvloop: asyncio's transports write everything
    _UV_TCP = None


# whether busy and closing call uvloop's methods as C functions (sockio.pxd)
UV_METHODS_BOUND = False
if COMPILED and _UV_TCP is not None:
    UV_METHODS_BOUND = _uv_bind_c(  # noqa: F821 (a C function of sockio.pxd)
        _UV_TCP, _UV_TCP.is_closing, _UV_TCP.get_write_buffer_size,
        type(_UV_TCP.is_closing).__name__ == "cython_function_or_method"
        and type(_UV_TCP.get_write_buffer_size) is type(_UV_TCP.is_closing))


def closing(tr: Any) -> bool:
    """``tr.is_closing()``: for uvloop's TCP transport, when compiled, a C call of the
    method's function (sockio.pxd), not a Python method call."""
    if COMPILED:
        r = _uv_closing_c(tr)  # noqa: F821
        if r >= 0:
            return r != 0
    return tr.is_closing()  # type: ignore[no-any-return]


def busy(tr: Any) -> bool:
    """Whether a send on ``tr``'s socket must go through the transport instead: it
    is closing (its descriptor may be closed and reused), or holds unsent bytes
    (they go first). C calls for uvloop's TCP transport, when compiled."""
    if COMPILED:
        r = _uv_busy_c(tr)  # noqa: F821
        if r >= 0:
            return r != 0
    return bool(tr.is_closing() or tr.get_write_buffer_size())


def direct(tr: Any) -> bool:
    """Whether the compiled data plane may send on ``tr``'s socket itself."""
    return bool(COMPILED) and _UV_TCP is not None and type(tr) is _UV_TCP


def send_fd(tr: Any) -> int:
    """The descriptor to send on for ``tr``, or -1 to write through it. Asking the
    transport for its socket costs about a microsecond the first time (uvloop builds
    the socket object then): callers look it up once per connection, lazily."""
    if not direct(tr):
        return -1
    try:
        sock = tr.get_extra_info("socket")
        return sock.fileno() if sock is not None else -1
    except Exception:  # closed already, or a transport without a socket
        return -1


def finish_now(tr: Any, fd: int) -> None:
    """Send the FIN of a connection lb is closing now, behind the bytes it sent, not
    when uvloop closes the descriptor a turn or two later (``tr.close()`` still
    follows). Only when all of ``tr``'s bytes are in the kernel: none is cut off.
    ``fd``: the transport's descriptor when known (compiled), else -1."""
    if COMPILED:
        if fd >= 0 and not busy(tr):
            _sys_shutdown(fd, SHUT_WR)  # noqa: F821 (sockio.pxd)
        return
    try:
        if tr.is_closing() or tr.get_write_buffer_size():
            return
        sock = tr.get_extra_info("socket")
        if sock is None:
            return
        own = _socket.socket(fileno=sock.fileno())
        try:
            own.shutdown(_socket.SHUT_WR)
        finally:
            own.detach()
    except (OSError, AttributeError, ValueError):  # closed already, or not a socket
        pass


def send_now(fd: int, data: bytes) -> int:
    """Send ``data`` on the descriptor ``fd`` of a socket that has no transport yet
    (lb.proxy.server.dial_now), without blocking: how many bytes the kernel took;
    0 when it took none or the send failed (the transport made later writes the
    rest, and reports the failure)."""
    if COMPILED:
        return send_now_c(fd, data)  # noqa: F821 (sockio.pxd)
    try:
        return os.write(fd, data)
    except OSError:
        return 0


class SendQueue:
    """The data plane's sends of one turn of the event loop, made together once the
    turn's callbacks are done.

    A proxy that sends each request to its server as soon as it has read it wakes
    the server once per request: the server answers faster than the proxy reads
    the next one, goes back to sleep, and the wake-up costs the sender more than the
    send (the kernel's ``sock_def_readable``, an inter-processor interrupt for a
    peer on another core). HAProxy reads in one pass over the ready connections and
    sends in a later one, so its sends leave in bursts. Queued here, lb's do too:
    keep-alive costs 12% less CPU a request on loopback (docs/performance.md,
    twenty-seventh session).

    ``later``/``later2`` queue bytes for a transport (``fd`` its descriptor, or -1
    to write through the transport); the first one of a turn schedules ``flush``
    with ``call_soon``, which uvloop runs at the start of the next turn, before it
    polls again. ``call`` queues a call among them (a connect); what the calls of a
    pass queue (a connect's request) leaves in the same pass, after them. Bytes for one transport leave in the order queued. **Any other
    operation on a transport that may have bytes here (a write of its own, close,
    abort, write_eof, or returning from ``eof_received``) must call ``flush``
    first**, or its bytes would be overtaken or lost: ``flush`` costs one test when
    nothing is queued. Bytes queued for a transport that closed meanwhile are
    dropped: its peer is gone.
    """

    __slots__ = ("loop", "items", "_soon", "_flush", "draining")

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self.items: list[tuple[Any, int, bytes, bytes | None, int]] = []
        self._soon = loop.call_soon
        self._flush = self.flush  # (one bound method for every call_soon)
        # inside flush: what its calls queue leaves in the same pass, after them
        self.draining = False

    def later(self, tr: Any, fd: int, data: bytes) -> None:
        items = self.items
        if not items and not self.draining:
            self._soon(self._flush)
        items.append((tr, fd, data, None, 0))

    def later2(self, tr: Any, fd: int, head: bytes, data: bytes, off: int) -> None:
        """``head`` then ``data[off:]`` (a large body behind its head, not joined)."""
        items = self.items
        if not items and not self.draining:
            self._soon(self._flush)
        items.append((tr, fd, head, data, off))

    def call(self, fn: Any) -> None:
        """Call ``fn()`` with this turn's sends, in order with them (a connect: its
        packets then leave with the others)."""
        items = self.items
        if not items and not self.draining:
            self._soon(self._flush)
        items.append((None, -1, fn, None, 0))

    def flush(self) -> None:
        items = self.items
        if not items:
            return
        outer = not self.draining
        self.draining = True
        failed: BaseException | None = None
        try:
            while items:  # (a connect's request, queued by its call, goes in this pass)
                self.items = []
                failed = self._send(items, failed)
                items = self.items
        finally:
            if outer:
                self.draining = False
                if self.items:  # left by an exception: next turn
                    self._soon(self._flush)
        if failed is not None:
            raise failed

    def _send(self, items: list[Any], failed: BaseException | None,
              ) -> BaseException | None:
        for tr, fd, head, data, off in items:
            if tr is None:
                try:
                    head()
                except Exception as e:  # the rest still leave; the first error is raised
                    failed = failed or e
                continue
            try:
                if data is None:
                    # (send_c: C, sockio.pxd; only when this module is compiled)
                    if fd < 0 or not COMPILED or not send_c(tr, fd, head):  # noqa: F821
                        if not closing(tr):
                            tr.write(head)
                elif fd < 0 or not COMPILED or not send2_c(  # noqa: F821
                        tr, fd, head, data, off):
                    if not closing(tr):
                        tr.writelines((head, memoryview(data)[off:] if off else data))
            except Exception:  # a transport that failed reports it to its protocol
                pass
        return failed


_LINGER_RESET = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # struct linger {l_onoff 1, l_linger 0}
_TCP_QUICKACK = getattr(_socket, "TCP_QUICKACK", 12)


def quickack_on(tr: Any, fd: int = -1) -> None:
    """Turn ``TCP_QUICKACK`` back on for a server connection that smart connect opened
    with it off, once its request has left: what arrives is then acknowledged at once
    (and what has arrived, now). Left off, the kernel keeps delaying its ACKs (up to
    40 ms, waiting for data of lb's to ride with), and a server that writes its
    response head and body apart, with Nagle's algorithm on, holds the body back until
    that ACK comes: 44 ms a response, against 0.2 (docs/dataplane.md, smart connect).
    ``fd`` as for ``reset_on_close``."""
    fd = _known_fd(tr, fd)
    if fd >= 0 and COMPILED:  # one C call
        quickack_fd_c(fd)  # noqa: F821
    elif fd != -2:
        _set_option(tr, _IPPROTO_TCP, _TCP_QUICKACK, 1)


def reset_on_close(tr: Any, fd: int = -1) -> None:
    """Make closing ``tr`` send a reset, not a FIN: the only way to tell a client that
    reads a body until close that the body was cut short; and how a server connection
    whose exchange is complete is closed (lb.proxy.server). ``fd``: the transport's
    descriptor when the caller knows it already (``send_fd``, or lb.proxy.dial's),
    else -1. A known descriptor of a transport that is closing already is left
    alone: it may be closed, and its number another connection's by now."""
    fd = _known_fd(tr, fd)
    if fd >= 0 and COMPILED:  # one C call
        reset_fd_c(fd)  # noqa: F821
    elif fd != -2:
        _set_option(tr, _SOL_SOCKET, _SO_LINGER, _LINGER_RESET)


def _known_fd(tr: Any, fd: int) -> int:
    """The descriptor to set an option on: ``fd`` when given (-2 when its transport is
    closing: leave it alone), else the transport's (-1 when not known)."""
    if fd >= 0:
        return -2 if tr is not None and closing(tr) else fd
    return send_fd(tr) if tr is not None else -1  # (-1 unless compiled)


def _set_option(tr: Any, level: int, option: int, value: Any) -> None:
    """setsockopt through the transport's socket object (the Python path)."""
    try:
        sock = tr.get_extra_info("socket") if tr is not None else None
        if sock is not None:
            sock.setsockopt(level, option, value)
    except (OSError, AttributeError):  # closed already: nothing left to tell
        pass
