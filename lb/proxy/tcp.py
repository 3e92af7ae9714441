"""`mode tcp`: a plain TCP relay from a frontend to a backend server.

Owns: ``TcpClient`` (accepted connection: accounting and maxconn as in HTTP mode,
`tcp-request content` rules of the frontend and then of the backend, which wait
for the client's first bytes when `tcp-request inspect-delay` is set
(lb.proxy.inspect), backend choice with
use_backend/default_backend on layer-4 fetches and on those bytes, bytes received
before the server answers are held and sent first; a `switch-mode http` rule or an
HTTP backend hands the connection to lb.proxy.upgrade) and ``TcpTxn`` (a ``Txn`` whose
"attach" installs the ``tunnel`` pump instead of writing an HTTP head). Timeouts:
`timeout connect` per attempt with retries, then `timeout tunnel` if set, else
`timeout client`/`timeout server` for inactivity. Logged once at the end (tcplog), or
as the server connection is made with `option logasap`.

Must not import: lb.cli, healthcheck.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from lb.http import actions, rawhead
from lb.match import payload
from lb.match.uses import REQUEST_FETCHES
from lb.proxy import inspect, upgrade
from lb.proxy import tunnel as tunmod
from lb.proxy.client import PAUSE_BUF, ClientConn
from lb.proxy.sockio import quickack_on
from lb.proxy.txn import Txn

_HOLD_MAX = 65536


class TcpTxn(Txn):
    """A TCP session seen as one exchange (same logging fields as HTTP)."""

    # read by the payload fetches (lb.match.payload): no more bytes will be waited
    # for, and whether a fetch could answer differently with more
    inspect_final = True
    may_change = False
    inspect_pos = 0  # the content rule a waiting walk resumes at (lb.proxy.inspect)
    # the HTTP head the client's first bytes make (prefetch_http): a whole one
    # (`req.proto_http`), or the start of one
    raw_http = False
    http_pending = False
    prefetched: bytes | None = None

    def prefetch_http(self) -> None:
        """Read the HTTP request the bytes so far make, for the HTTP fetches of the
        content and switching rules (HAProxy's prefetch on a raw buffer)."""
        data = self.req_payload
        if data == self.prefetched:
            return
        self.prefetched = data
        head = rawhead.parse(data, self.fe.head_max)
        self.http_pending = head is rawhead.WAIT
        self.raw_http = isinstance(head, tuple)
        if isinstance(head, tuple):
            self.method, self.url, self.version, self.req_headers = head
        self.memo.clear()

    @property
    def req_payload(self) -> bytes:
        """What the client sent so far (held until the server connection is ready)."""
        conn = self.conn
        return conn.peeked or b"".join(conn.held)

    def route_tcp(self, be: Any) -> Any:
        """The backend use_backend / default_backend chose, counted, or None (the
        session is then finished)."""
        if be is None or be.disabled:  # (a disabled backend never started: not counted)
            if be is not None:
                self.backend_name = be.name
            self.term = b"SC"
            self.finish(close=True)
            return None
        self.be = be
        self.backend_name = be.name
        be.counters.session_start(self.request_ts)
        return be

    def choose_server(self) -> None:
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
        log = self.fe.log
        if log is not None and log.early:  # logged now, as the connection is made
            self.log_asap(self.rt.clock())
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
        # send-proxy: before the client's bytes (a TLS server had it in clear, before
        # its handshake)
        if srv.proxy_proto and not sc.pp_sent:
            st.write(self.proxy_header())
        held = conn.held
        conn.held = []
        conn.timer.stop()
        conn.stimer.stop()
        conn.paused = 0
        ct.resume_reading()
        if held:  # one write for everything that came before the server was ready
            tun.from_client(held[0] if len(held) == 1 else b"".join(held))
            if be.smart == 2:  # smart connect: prompt ACKs again, the bytes are out
                quickack_on(st, sc.fd)
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


# id(proxy model) -> (the model, whether its content or switching rules read the
# client's bytes, raw or as an HTTP request, and whether as an HTTP request)
_PAYLOAD_READERS: dict[int, tuple[Any, bool, bool]] = {}


def _readers(model: Any) -> tuple[Any, bool, bool]:
    hit = _PAYLOAD_READERS.get(id(model))
    if hit is not None and hit[0] is model:
        return hit
    conds = [r.cond for r in (*model.tcp_request_content_rules, *model.switching_rules)]
    names = {getattr(e, "keyword", "") for c in conds if c is not None
             for a in getattr(c, "acls", ()) for e in getattr(a, "exprs", ())}
    http = bool(names & REQUEST_FETCHES)
    hit = (model, http or bool(names & payload.NAMES), http)
    _PAYLOAD_READERS[id(model)] = hit
    return hit


def _reads_payload(model: Any) -> bool:
    return _readers(model)[1]


def _peek(conn: Any, flags: int = socket.MSG_PEEK) -> bytes:
    """The bytes waiting in the client's socket, left there (MSG_PEEK), or taken
    (flags 0: a rejected session's bytes, so that its close is a FIN, as HAProxy's,
    which had read them, and not the reset the kernel sends over unread data)."""
    fd = conn.fd
    if fd < 0:
        sock = conn.transport.get_extra_info("socket") if conn.transport else None
        fd = sock.fileno() if sock is not None else -1
    if fd < 0:
        return b""
    s = socket.socket(fileno=fd)
    try:
        return s.recv(conn.fe.bufsize, flags | socket.MSG_DONTWAIT)
    except OSError:
        return b""
    finally:
        s.detach()  # the descriptor stays the transport's


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
    __slots__ = ("held", "client_eof", "session", "inspect_timer", "peeked",
                 "inspect_rules", "inspect_next", "inspect_model", "resolving")

    def __init__(self, rt: Any, fe: Any, listener: Any = None) -> None:
        super().__init__(rt, fe, listener)
        self.held: list[bytes] = []
        self.client_eof = False
        self.session: TcpTxn | None = None
        # while `tcp-request content` rules wait for bytes (tcp-request inspect-delay)
        self.inspect_timer: asyncio.TimerHandle | None = None
        self.peeked = b""  # the bytes content rules without a delay decide on
        self.inspect_rules: Any = None  # the rules being walked (frontend or backend)
        self.inspect_next: Any = None  # what follows once they accept
        self.inspect_model: Any = None  # the proxy they belong to
        self.resolving: object | None = None  # the `do-resolve` waiting (its token)

    def _session_start(self, now: float) -> None:
        """After the session rules (and an `accept-proxy` header): no HTTP request
        timer; the content rules and the backend choice."""
        super()._session_start(now)
        self.timer.cancel()
        if not self.closed:
            self._begin()

    def _begin(self) -> None:
        t0 = self.loop.time()
        txn = TcpTxn(self, b"", b"", b"1.1", [], t0)
        txn.req_counter = self.rt.state.next_req()
        txn.bad_request = True
        self.session = txn
        self.txn = txn
        self._content_phase(self.fe.tcp_content_rules, self.fe.model, self._frontend_accepted)

    def _content_phase(self, rules: Any, model: Any, accepted: Any) -> None:
        """One proxy's `tcp-request content` rules: with its inspect-delay they wait
        for bytes (lb.proxy.inspect); without, they decide at once on what is already
        there, as HAProxy does when it first looks at the session (the bytes stay in
        the socket and are read as usual). Then ``accepted()``, or the reject."""
        self.inspect_rules = rules
        self.inspect_next = accepted
        self.inspect_model = model
        if rules is not None and model.inspect_delay:
            self.inspect_timer = self.loop.call_later(model.inspect_delay, self._inspect,
                                                      True)
            # the first look is at what the client sent with its connection, as
            # HAProxy's first analysis comes after a first read
            peek = not self.held and not self.peeked and _reads_payload(model)
            if peek:
                self.peeked = _peek(self)
                if not self.peeked and _readers(model)[2]:
                    return  # an HTTP client speaks first: its first bytes start the walk
            try:
                return self._inspect(False)
            finally:
                if peek:
                    self.peeked = b""
        self._walk_now()

    def _walk_now(self) -> None:
        """The rules without an inspect-delay, from where they stand (a final walk:
        a `do-resolve` takes an answer the resolvers hold, or none)."""
        txn = self.session
        assert txn is not None
        rules = self.inspect_rules
        peek = not self.peeked and _reads_payload(self.inspect_model)
        if peek:
            self.peeked = _peek(self)
            txn.prefetch_http()
        try:
            v = None if rules is None else inspect.run(rules, txn, True)
            if v is not None and v.kind == "resolve":
                return self._resolve(txn, v, False)
            # (the backend choice that may follow sees the same bytes)
            self._decided(txn, v, self.inspect_next)
        finally:
            if peek:
                self.peeked = b""

    def _inspect(self, final: bool) -> None:
        """Run the waiting rules on the bytes so far; go on once they decide.
        ``final``: the delay ran out, the client closed or the buffer is full; a
        `do-resolve` still waiting then goes on without its answer, as HAProxy's
        final walk does."""
        txn = self.session
        if self.inspect_timer is None or txn is None or txn.done:
            return
        if self.resolving is not None:
            if not final:
                return
            self.resolving = None  # (its answer, when it comes, is dropped)
        if _reads_payload(self.inspect_model):
            txn.prefetch_http()
        v = inspect.run(self.inspect_rules, txn, final)
        if v is inspect.WAIT:
            return
        if v is not None and v.kind == "resolve":
            return self._resolve(txn, v, not final)
        self.inspect_timer.cancel()
        self.inspect_timer = None
        self._decided(txn, v, self.inspect_next)

    def _resolve(self, txn: TcpTxn, v: Any, wait: bool) -> None:
        """A `do-resolve` rule: the walk goes on after it with the answer."""
        token = self.resolving = object()
        q = v.resolve
        lookup = self.rt.state.dns_lookup
        if lookup is None:
            return self._resolved(txn, v, token, None)
        lookup(q.section, q.name, q.ipv4, wait,
               lambda address: self._resolved(txn, v, token, address))

    def _resolved(self, txn: TcpTxn, v: Any, token: object, address: str | None) -> None:
        if self.resolving is not token or txn.done:
            return
        self.resolving = None
        actions.resolved(txn, v, address)
        try:
            if self.inspect_timer is not None:
                return self._inspect(False)
            self._walk_now()
        except Exception as exc:  # noqa: BLE001 (from the resolver's callback)
            txn.internal_error(exc)

    def _decided(self, txn: TcpTxn, v: Any, accepted: Any) -> None:
        if v is not None and v.kind == "reject":
            # as in HTTP mode (HAProxy 2.6.12): dreq on the frontend, for either side
            self.fe.counters.dreq += 1
            txn.term = b"PR"
            _peek(self, 0)
            return txn.finish(close=True, abort=True)
        if v is not None and v.kind == "switch":
            upgrade.upgrade(self, txn, None)
            return
        txn.inspect_final = True
        txn.inspect_pos = 0  # the next proxy's rules start at their first
        accepted()

    def _frontend_accepted(self) -> None:
        """The backend, then its own content rules (not a listen section's twice)."""
        txn = self.session
        assert txn is not None
        # the switching rules decide on the bytes so far (HAProxy: a final walk)
        if _reads_payload(self.fe.model):
            txn.prefetch_http()
        be = self.fe.route(txn)
        if be is not None and be.mode == "http" and not be.disabled:
            upgrade.upgrade(self, txn, be)  # (HAProxy's implicit upgrade)
            return
        be = txn.route_tcp(be)
        if be is None:
            return
        if be is self.fe.own_be or be.tcp_content_rules is None:
            return txn.choose_server()
        self._content_phase(be.tcp_content_rules, be.model, txn.choose_server)

    def data_received(self, data: bytes) -> None:
        if self.pp_wait is not None:
            data = self._proxy_header(data)
            if not data:
                return
        self.held.append(data)
        size = sum(map(len, self.held))
        if self.inspect_timer is not None:
            self._inspect(size >= self.fe.bufsize)
        if size > _HOLD_MAX:
            self.pause(PAUSE_BUF)

    def eof_received(self) -> bool | None:
        if self.pp_wait is not None:  # gone before its PROXY header: no session
            self._proxy_gone(None)
            return None
        self.client_eof = True
        if self.inspect_timer is not None:
            self._inspect(True)
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self.pp_wait is not None and not self.closed:
            self._proxy_gone(exc)
        self.closed = True
        if self.inspect_timer is not None:
            self.inspect_timer.cancel()
            self.inspect_timer = None
        txn = self.session
        if txn is not None and not txn.done:
            txn.client_aborted()
        self.session_closed()

    def _client_timeout(self) -> None:
        # only the wait for a PROXY header is timed here (the tunnel has its own)
        self._client_timeout_proxy()

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
