"""Kernel socket buffer sizes set by configuration (global ``tune.rcvbuf.*`` and
``tune.sndbuf.*``).

Owns: turning the configured sizes into socket options, setting them on a listening
socket (accepted sockets inherit them on Linux, so an accept pays nothing) and
``connect``, which opens a server connection (traffic or health check) whose socket
has them before its SYN is sent, as HAProxy does. Without these settings the kernel sizes and auto-tunes each
buffer; lb's own buffering is bounded either way (docs/dataplane.md, Backpressure).

Must not import anything from lb.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

SockBufs = tuple[tuple[int, int], ...]  # (SO_RCVBUF or SO_SNDBUF, bytes)


def buffer_options(rcvbuf: int, sndbuf: int) -> SockBufs:
    """The options to set for a side; sizes of 0 leave the kernel's."""
    opts = []
    if rcvbuf > 0:
        opts.append((socket.SO_RCVBUF, rcvbuf))
    if sndbuf > 0:
        opts.append((socket.SO_SNDBUF, sndbuf))
    return tuple(opts)


def apply(sock: socket.socket, opts: SockBufs) -> None:
    for name, size in opts:
        sock.setsockopt(socket.SOL_SOCKET, name, size)


async def connect(loop: asyncio.AbstractEventLoop, factory: Callable[[], Any],
                  host: str, port: int, opts: SockBufs) -> tuple[Any, Any]:
    """``loop.create_connection(factory, host, port)`` with ``opts`` set on the socket
    before it connects: each resolved address in turn, as create_connection tries
    them; raises the last OSError when none answers."""
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    error: OSError = OSError(f"cannot resolve {host}")
    for family, type_, proto, _, address in infos:
        sock = socket.socket(family, type_, proto)
        try:
            sock.setblocking(False)
            apply(sock, opts)
            await loop.sock_connect(sock, address)
        except OSError as e:
            sock.close()
            error = e
            continue
        except BaseException:  # cancelled (timeout connect, stop)
            sock.close()
            raise
        try:
            return await loop.create_connection(factory, sock=sock)
        except BaseException:
            sock.close()
            raise
    raise error
