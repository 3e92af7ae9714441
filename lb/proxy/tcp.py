"""`mode tcp`: a plain TCP relay from a frontend to a backend server.

Owns: ``TcpClient`` (accepted connection: accounting and maxconn as in HTTP mode,
backend choice with use_backend/default_backend on layer-4 fetches, bytes received
before the server answers are held and sent first) and ``TcpTxn`` (a ``Txn`` whose
"attach" installs the ``tunnel`` pump instead of writing an HTTP head). Timeouts:
`timeout connect` per attempt with retries, then `timeout tunnel` if set, else
`timeout client`/`timeout server` for inactivity. Logged once at the end (tcplog).

Must not import: lb.cli, healthcheck.
"""

from __future__ import annotations

import asyncio
from typing import Any

from lb.proxy import tunnel as tunmod
from lb.proxy.client import PAUSE_BUF, ClientConn
from lb.proxy.txn import Txn

_HOLD_MAX = 65536


class TcpTxn(Txn):
    """A TCP session seen as one exchange (same logging fields as HTTP)."""

    def start_tcp(self) -> None:
        fe = self.fe
        be = fe.route(self)
        if be is None:
            self.term = b"SC"
            return self.finish(close=True)
        self.be = be
        self.backend_name = be.name
        bc = be.counters
        bc.session_start(self.request_ts)
        self._choose_server()

    def connect(self) -> None:
        self._attempt()  # no idle-connection reuse for a TCP session

    def _server_ready(self, sc: Any) -> None:
        # not from connection_made (the task still runs): uvloop starts reading the
        # connection after it, which would undo a pause the tunnel makes there
        if self.task is None:
            super()._server_ready(sc)

    def _count_server(self, srv: Any) -> None:
        srv.counters.session_start(self.request_ts)

    def local_error(self, status: int) -> None:
        """No HTTP in TCP mode: a failure just closes the client connection."""
        self.finish(close=True)

    def attach(self, sc: Any) -> None:
        conn = self.conn
        ct = conn.transport
        st = sc.transport
        be = self.be
        srv = self.srv
        self.head_sent = True
        self.res_started = True
        self.req_done = True
        tun = tunmod.Tunnel(self.rt, ct, st, self.fe.counters, be.counters, srv.counters,
                            tunmod._tunnel_timeout(self), False)
        tun.id = self.id
        tun.txn = self
        tun.conn = conn
        tun.srv_name = srv.name
        tun.fe_name = self.fe.name
        tun.be_name = be.name
        tun.on_close = _tcp_closed
        if conn.fd >= 0:  # the client's descriptor for the pump's own sends
            tun.cfd = conn.fd
        self.tunnel = tun
        conn.tunnel = tun
        sc.txn = None
        sc.attached = True
        ct.set_protocol(tunmod._End(tun, True))
        st.set_protocol(tunmod._End(tun, False))
        held = conn.held
        conn.held = []
        conn.timer.stop()
        conn.stimer.stop()
        conn.paused = 0
        ct.resume_reading()
        for data in held:
            tun.from_client(data)
        # what a server that speaks first (a banner) sent before this attach
        early = sc.early
        if early is not None:
            sc.early = None
            st.resume_reading()
            tun.from_server(early)
        if conn.client_eof:
            tun.eof(True)
        # not in State.tunnels: that registry lists HTTP upgrades (show websockets);
        # the session is in State.streams through its client connection
        if tun.timeout is not None:
            tun.timer.arm(tun.timeout)
        if sc.closed and not tun.closed:  # the server closed before this attach
            tun.lost(False, None)


def _tcp_closed(tun: tunmod.Tunnel, reason: str, term: bytes) -> None:
    txn = tun.txn
    conn = tun.conn
    txn.tunnel = None
    txn.term = term
    txn.bytes_in += tun.up
    txn.bytes_out += tun.down
    txn.live_in = tun.up
    txn.live_out = tun.down
    # a session that carried nothing either way is "null" for option dontlognull
    txn.finish(close=True, empty=not tun.up and not tun.down)
    conn.session_closed()


class TcpClient(ClientConn):
    __slots__ = ("held", "client_eof", "session")

    def __init__(self, rt: Any, fe: Any, listener: Any = None) -> None:
        super().__init__(rt, fe, listener)
        self.held: list[bytes] = []
        self.client_eof = False
        self.session: TcpTxn | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.timer.cancel()
        if not self.closed:
            self._begin()

    def _begin(self) -> None:
        t0 = self.loop.time()
        txn = TcpTxn(self, b"", b"", b"1.1", [], t0)
        txn.bad_request = True
        self.session = txn
        self.txn = txn
        rules = self.fe.tcp_content_rules
        if rules is not None:  # layer-4 fetches only (no inspect-delay buffering)
            v = rules.run(txn)
            if v is not None and v.kind == "reject":
                self.fe.counters.dreq += 1
                txn.term = b"PR"
                return txn.finish(close=True, abort=True)
        txn.start_tcp()

    def data_received(self, data: bytes) -> None:
        self.held.append(data)
        if sum(map(len, self.held)) > _HOLD_MAX:
            self.pause(PAUSE_BUF)

    def eof_received(self) -> bool | None:
        self.client_eof = True
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        txn = self.session
        if txn is not None and not txn.done:
            txn.client_aborted()
        self.session_closed()

    def _client_timeout(self) -> None:
        pass

    def txn_done(self, txn: Any, close: bool, abort: bool, now: float) -> None:
        if self.txn is txn:
            self.txn = None
        if self.transport is not None and not self.closed:
            self.closed = True
            self.flush()
            if abort:
                self.transport.abort()
            else:
                self.transport.close()
