"""A server connection tells its exchange it is up from ``connection_made``.

``lb.proxy.server.connect`` builds each ServerConn with the exchange that dials it
(``dialer``). uvloop calls ``connection_made`` a loop turn before it wakes the
connect coroutine; the exchange writes its request there (``Txn._server_ready``),
not when the coroutine ends (``Txn._connected``). These tests pin that order on every
connect path of ``connect``: uvloop's own connect, lb's own dial of a numeric address
(lb.proxy.dial: smart connect, or socket buffer tunes) and, for a host name,
sock_connect then ``create_connection(sock=...)``. (An HTTP exchange dials through
``dial_now`` first: tests/test_early_request.py.)
"""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace
from typing import Any

import pytest
import uvloop

from lb import config as cfgmod
from lb.proxy import server as srvmod
from lb.proxy.compiled import Runtime
from lb.proxy.drive import Driven

CFG = """
global
{tune}
defaults
  mode http
{smart}
  timeout connect 1s
  timeout client 1s
  timeout server 1s
backend b
  server s1 127.0.0.1:{port}
"""


class _Dialer:
    """Stands in for the Txn: records what it saw when told."""

    def __init__(self) -> None:
        self.dialing: Any = None
        self.driven: Driven | None = None
        # its frontend: whose log format has no %bi/%bp (no address read at connect)
        self.fe = SimpleNamespace(log_be_src=False)
        self.seen: list[tuple[str, bool, bool, bool]] = []

    def _server_ready(self, sc: Any) -> None:
        assert self.driven is not None
        self.seen.append(("ready", sc is self.dialing, sc.transport is not None,
                          self.driven.done()))
        sc.transport.write(b"request head")


@pytest.mark.parametrize(("tune", "smart", "host", "dialed"), [
    ("", "  no option tcp-smart-connect", "127.0.0.1", False),
    ("", "", "127.0.0.1", True),  # (smart connect: lb's default in HTTP mode)
    ("  tune.sndbuf.server 65536", "", "127.0.0.1", True),
    ("  tune.sndbuf.server 65536", "", "localhost", False),
], ids=["uvloop_connect", "dial", "dial_tuned", "sock_connect"])
def test_the_exchange_is_told_before_the_connect_coroutine_ends(
        tune: str, smart: str, host: str, dialed: bool) -> None:
    loop = uvloop.new_event_loop()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    try:
        res = cfgmod.load_text(CFG.format(tune=tune, smart=smart, port=port), "t.cfg")
        assert res.config is not None, res.diagnostics
        rt = Runtime(res.config, None, loop)
        be = rt.backends["b"]
        srv = be.st.servers[0]
        assert bool(be.srvopts) == bool(tune)
        dialer = _Dialer()

        def done(task: Driven) -> None:
            sc = task.result()[1]
            dialer.seen.append(("done", sc.dialer is None, True, True))

        dialer.driven = Driven(loop, srvmod.connect(loop, be, srv, host, port, dialer),
                               done)
        # uvloop's connect and lb's dial make the protocol at once; sock_connect's
        # path after the connect, in create_connection(sock=...)
        assert (dialer.dialing is not None) == (host != "localhost")
        # lb's dial hands the connection its descriptor: no lookup for direct sends
        if dialer.dialing is not None:
            assert (dialer.dialing.fd >= 0) == dialed

        async def until_done() -> None:
            for _ in range(1000):
                if len(dialer.seen) == 2:
                    return
                await asyncio.sleep(0.001)
        loop.run_until_complete(until_done())
        # told once, with the connection it dialed, its transport set, while the
        # coroutine was still running; then the coroutine ended
        assert dialer.seen == [("ready", True, True, False), ("done", True, True, True)]
        listener.settimeout(2)
        conn, _ = listener.accept()
        conn.settimeout(2)
        assert conn.recv(100) == b"request head"
        conn.close()
        dialer.driven.result()[0].close()
        loop.run_until_complete(asyncio.sleep(0))
    finally:
        listener.close()
        loop.close()

