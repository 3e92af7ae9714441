"""Socket options set by configuration, before a connection exists or at least
before its SYN leaves.

Owns: turning configuration into socket options (``buffer_options``: global
``tune.rcvbuf.*``/``tune.sndbuf.*``; ``keepalive_options``: ``option tcpka`` and its
``clitcpka``/``srvtcpka`` forms with their ``-idle``/``-cnt``/``-intvl`` settings;
``linger_reset``: ``option nolinger``; ``QUICKACK_OFF``: ``option tcp-smart-accept``
and ``tcp-smart-connect``), setting them on a listening socket (accepted sockets
inherit them on Linux, so an accept pays nothing), ``connect``, which opens a server
connection (traffic or health check) by name or address with options set before it
connects, as HAProxy does, and ``finish``, which completes a connect started by
``lb.proxy.dial``. Without these settings the kernel's defaults apply; lb's own
buffering is bounded either way (docs/dataplane.md, Backpressure).

Must not import anything from lb.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
from collections.abc import Callable
from typing import Any

SockOpts = tuple[tuple[int, int, Any], ...]  # (level, option, int or bytes value)

# TCP_QUICKACK off: the ACK of what arrives next waits for data to ride with
QUICKACK_OFF: SockOpts = ((socket.IPPROTO_TCP, getattr(socket, "TCP_QUICKACK", 12), 0),)


def buffer_options(rcvbuf: int, sndbuf: int) -> SockOpts:
    """The options to set for a side; sizes of 0 leave the kernel's."""
    opts = []
    if rcvbuf > 0:
        opts.append((socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf))
    if sndbuf > 0:
        opts.append((socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf))
    return tuple(opts)


def keepalive_options(on: bool, idle: int = 0, cnt: int = 0, intvl: int = 0) -> SockOpts:
    """SO_KEEPALIVE and its timings (seconds; 0 leaves the system's), or nothing."""
    if not on:
        return ()
    opts: list[tuple[int, int, Any]] = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    # (Linux refuses more than these with EINVAL; HAProxy ignores that failure, lb
    # sets the largest value the kernel takes rather than fail every socket)
    for name, value, most in (("TCP_KEEPIDLE", idle, 32767), ("TCP_KEEPCNT", cnt, 127),
                              ("TCP_KEEPINTVL", intvl, 32767)):
        if value > 0 and hasattr(socket, name):
            opts.append((socket.IPPROTO_TCP, getattr(socket, name), min(value, most)))
    return tuple(opts)


def linger_reset(on: bool) -> SockOpts:
    """``option nolinger``: a close sends a reset, and nothing waits in TIME_WAIT."""
    if not on:
        return ()
    return ((socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)),)


def apply(sock: Any, opts: SockOpts) -> None:
    for level, name, value in opts:
        sock.setsockopt(level, name, value)


class SourceBinder:
    """A `source` (lb.config.model.Source) applied to new sockets: the interface, then
    the address and port; a port range is walked from where the last bind stopped, as
    HAProxy hands out the ports of a range in turn. A name is resolved once."""

    def __init__(self, src: Any) -> None:
        self.src = src
        self.next = src.port_low
        self.addrs: dict[int, str] = {}  # family -> address

    async def bind(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        src = self.src
        if src.interface:
            sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_BINDTODEVICE", 25),
                            src.interface.encode())
        # as HAProxy: a port left in TIME_WAIT by an earlier connection binds again
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        family = sock.family
        addr = self.addrs.get(family)
        if addr is None:
            infos = await loop.getaddrinfo(src.address, None, family=family,
                                           type=socket.SOCK_STREAM)
            addr = self.addrs[family] = infos[0][4][0]
        if src.port_high <= src.port_low:
            sock.bind((addr, src.port_low))
            return
        size = src.port_high - src.port_low + 1
        for _ in range(size):
            port = self.next
            self.next = src.port_low if port >= src.port_high else port + 1
            try:
                sock.bind((addr, port))
                return
            except OSError as e:
                if e.errno != errno.EADDRINUSE:
                    raise
        raise OSError(errno.EADDRNOTAVAIL, f"no free port in {src.port_low}-{src.port_high}")


async def connect(loop: asyncio.AbstractEventLoop, factory: Callable[[], Any],
                  host: str, port: int, opts: SockOpts,
                  source: SourceBinder | None = None, *, tls: Any = None,
                  server_hostname: str | None = None, preamble: bytes = b"",
                  tls_shutdown: float | None = None) -> tuple[Any, Any]:
    """``loop.create_connection(factory, host, port)`` with ``opts`` set on the socket
    before it connects (and bound to ``source``): each resolved address in turn, as
    create_connection tries them; raises the last OSError when none answers.
    ``tls``: an ``ssl.SSLContext`` the connection then makes its handshake with (SNI
    ``server_hostname``, "" for none), after ``preamble`` was sent in clear (a PROXY
    header)."""
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    error: OSError = OSError(f"cannot resolve {host}")
    for family, type_, proto, _, address in infos:
        sock = socket.socket(family, type_, proto)
        try:
            sock.setblocking(False)
            apply(sock, opts)
            if source is not None:
                await source.bind(loop, sock)
            await loop.sock_connect(sock, address)
        except OSError as e:
            sock.close()
            error = e
            continue
        except BaseException:  # cancelled (timeout connect, stop)
            sock.close()
            raise
        try:
            if preamble:
                await loop.sock_sendall(sock, preamble)
            if tls is None:
                return await loop.create_connection(factory, sock=sock)
        except BaseException:
            sock.close()
            raise
        # (the event loop owns the socket from here, and closes it on a failed handshake)
        return await loop.create_connection(factory, sock=sock, ssl=tls,
                                            server_hostname=server_hostname or "",
                                            ssl_shutdown_timeout=tls_shutdown)
    raise error


async def finish(loop: asyncio.AbstractEventLoop, factory: Callable[[], Any], fd: int,
                 family: int, address: tuple[str, int]) -> tuple[Any, Any]:
    """The connection of ``fd``, whose non-blocking connect to ``address`` is in
    progress (``lb.proxy.dial``): waits until it is up, then makes its transport.
    Raises the connect's OSError; the descriptor is closed on any failure."""
    sock = socket.socket(family, socket.SOCK_STREAM, 0, fd)
    try:
        await loop.sock_connect(sock, address)  # (connect() again says EALREADY: waits)
        return await loop.create_connection(factory, sock=sock)
    except BaseException:
        sock.close()
        raise
