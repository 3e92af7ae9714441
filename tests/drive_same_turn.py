"""Child process of tests/test_drive.py: cancel a Driven server connect from a
callback that runs in the same poll batch as the connect's completion.

The order is made by epoll: a socket pair whose read end is already readable is
registered right after the connect starts, so libuv adds both descriptors on the same
turn, the connect's first, and reports both from one epoll_wait in that order.
Prints what happened; exits with SIGSEGV where the cancel is not deferred.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from typing import Any

import uvloop

from lb.proxy.drive import CANCELLED, Driven


def _sockets() -> int:
    """Open socket descriptors (libuv opens /dev/null once for its own use)."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return n


def main(path: str) -> None:
    loop = uvloop.new_event_loop()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    addr = listener.getsockname()
    trigger, poke = socket.socketpair()
    trigger.setblocking(False)
    poke.send(b"x")
    fds_before = _sockets()
    made: list[Any] = []

    class Proto(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            made.append(transport)

    seen: list[Driven] = []
    driven: list[Driven] = []

    def end_exchange() -> None:
        loop.remove_reader(trigger.fileno())
        trigger.recv(1)
        driven[0].cancel()

    if path == "own":
        driven.append(Driven(loop, loop.create_connection(Proto, *addr), seen.append))
        loop.add_reader(trigger.fileno(), end_exchange)
    else:
        async def via_sock() -> Any:
            sock = socket.socket()
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, addr)
                # create_connection(sock=) schedules connection_made at once: end the
                # exchange in this turn's poll phase
                loop.add_reader(trigger.fileno(), end_exchange)
                return await loop.create_connection(Proto, sock=sock)
            except BaseException:
                sock.close()
                raise
        driven.append(Driven(loop, via_sock(), seen.append))

    async def turns() -> None:
        # sock_connect resolves the address in a thread first: wait for the outcome
        deadline = loop.time() + 10
        while not seen and loop.time() < deadline:
            await asyncio.sleep(0)
        for _ in range(5):
            await asyncio.sleep(0)
    loop.run_until_complete(turns())
    listener.settimeout(2)
    conn, _ = listener.accept()
    conn.settimeout(2)
    try:
        eof = conn.recv(10) == b""
    except ConnectionResetError:
        eof = True
    conn.close()
    fds_after = _sockets()
    state = "cancelled" if seen and seen[0].state == CANCELLED else f"state={seen}"
    print(state, f"made={len(made)}", "eof" if eof else "no-eof",
          "fds=same" if fds_after == fds_before else f"fds={fds_before}->{fds_after}")
    loop.close()


if __name__ == "__main__":
    main(sys.argv[1])
