"""Server-side leg of an HTTP transaction.

Owns: ``ServerConn`` (an asyncio Protocol with httptools' response parser), the
idle keep-alive pool per server (``BackendRT.idle``), and the opening of new
connections: ``dial_now`` (lb dials, and a connection up at once takes its request
before its transport exists, ``adopt``) or ``connect()`` (the event loop's coroutine;
for a TLS server, lb.proxy.tlsconn's, never ``dial_now``: no byte leaves before the
handshake); ``connect_unix`` for a server that is a local socket. Parsed response events go straight to the attached ``Txn``; flow control
pauses the client leg.

Must not import: lb.cli, lb.log (the transaction logs), healthcheck.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from functools import partial
from typing import Any

import httptools

from lb.http import h1
from lb.http.headscan import scan_response
from lb.proxy import dial as dialmod
from lb.proxy import errsnap, private, sockopts, tlsconn
from lb.proxy.sockio import closing, quickack_on, reset_on_close, send_fd, send_now
from lb.state import ServerState

_READ_PAUSED = 1
_CL_MAX = (1 << 63) - 1
_EARLY_MAX = 65536  # bytes held from a server that speaks before its exchange is attached


class _BadResponse(Exception):
    """Raised from a parser callback: the response is refused (502, never reused)."""


class ServerConn:
    """The server leg: an asyncio protocol by its methods (compiled, ``server.pxd``
    makes it an extension type, which cannot also derive from ``asyncio.Protocol``)."""

    __slots__ = (
        "be", "srv", "transport", "parser", "txn", "reason", "headers", "trailers",
        "in_head", "closed", "idle_handle", "reusable", "res_cl", "res_te", "idle_since",
        "hleft", "hcount", "final", "pooled", "attached", "early", "fd", "plain",
        "dialer", "feeding", "parked", "park_timeout", "park_now", "unsent", "local",
        "pp_sent", "quickack", "owner", "private",
    )

    def __init__(self, be: Any, srv: ServerState, dialer: Any = None, fd: int = -3) -> None:
        self.be = be
        self.srv = srv
        # the exchange whose connect made this connection, told in connection_made
        # (Txn._server_ready): the request goes out on that turn, not after the
        # connect coroutine resumes on the next one
        self.dialer: Any = dialer
        if dialer is not None:
            dialer.dialing = self
        self.transport: asyncio.Transport | None = None
        # httptools' parser, made at the first read the response scan does not take
        self.parser: Any = None
        self.txn: Any = None
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.trailers: list[tuple[bytes, bytes]] | None = None
        self.in_head = False
        self.closed = False
        self.idle_handle: asyncio.TimerHandle | None = None
        self.idle_since = 0.0
        self.reusable = True
        self.res_cl = False  # the response head has Content-Length
        self.res_te = False  # ... Transfer-Encoding (only `chunked`, checked below)
        self.hleft = 0  # head bytes still allowed (HAProxy's limit, as for requests)
        self.hcount = 0  # header lines still allowed (tune.http.maxhdr - 1)
        self.final = False  # a final response ended during the current read
        self.pooled = False  # in its backend's idle pool (be.idle[srv])
        self.attached = False  # an exchange was attached (Txn.attach, TcpTxn.attach)
        # bytes the server sent on this new connection before the exchange was
        # attached (a banner in `mode tcp`): handed to it by attach, in order
        self.early: bytes | None = None
        # the descriptor send() uses (lb.proxy.sockio): the socket's own when lb
        # opened it (lb.proxy.dial); else -3 for a new connection, whose first write
        # goes through the transport (most are used once, and looking the descriptor
        # up costs about what a direct send saves), -2 to look it up at the next
        # write, -1 to write through the transport
        self.fd = fd
        # the parser waits for a new response and may take one: a response that
        # arrives whole may skip it (lb.http.headscan); False from a response's start
        # until its end, and for good once llhttp will not take another
        self.plain = True
        # inside httptools' feed_data: a response that ends there may be followed, in
        # the same read, by bytes nobody asked for (a body on a 204, say). release()
        # then parks the connection, and it goes to the pool only once the read is
        # parsed without them: a pipelined request replayed from inside the read must
        # not be sent on it first
        self.feeding = False
        self.parked = False
        self.park_timeout: float | None = None
        self.park_now = 0.0
        # a connection lb dialed itself carries its request before uvloop makes its
        # transport (``dial_now``): what the kernel did not take then, written first
        # once the transport is there
        self.unsent: list[bytes] | None = None
        self.local: Any = None  # its own (address, port), read only for %bi/%bp
        # the PROXY header went out in clear before the TLS handshake (lb.proxy.tlsconn)
        self.pp_sent = False
        # smart connect (HTTP mode) opened it with TCP_QUICKACK off: turned back on at
        # its first read, once the request has left (lb.proxy.sockio.quickack_on)
        self.quickack = be.smart == 1 and srv.unix_path is None
        # a private connection is never handed to another client; ``owner`` is the
        # client connection that keeps it between its requests (lb.proxy.private)
        self.private = False
        self.owner: Any = None

    # ---- asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        dialer = self.dialer
        txn = dialer if dialer is not None else self.txn
        if txn is not None and txn.fe.log_be_src:  # %bi/%bp
            # (a local socket has no address of its own: HAProxy logs `unix:0`)
            self.local = transport.get_extra_info("sockname") or dialmod.UNIX_ENDPOINT
            txn.be_src = self.local
        if dialer is not None:
            self.dialer = None
            dialer._server_ready(self)
            return
        if self.closed:  # given up before its transport came: nobody waits for it
            reset_on_close(transport, self.fd)
            transport.abort()  # type: ignore[attr-defined]
            return
        unsent = self.unsent
        if unsent is not None:
            self.unsent = None
            transport.writelines(unsent)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.owner is not None:
            private.forget(self)
        txn = self.txn
        if txn is not None:
            self.txn = None
            txn.server_closed(self, exc)
        else:
            self._drop_idle()
        # the parser holds our callbacks: drop it so that this connection is freed at
        # once, without the cyclic GC (data_received stops at `txn is None` from now)
        self.parser = None

    def data_received(self, data: bytes) -> None:
        if self.quickack:
            self.quickack = False
            quickack_on(self.transport, self.fd)
        txn = self.txn
        if txn is None:
            if not self.attached:  # connected, the exchange not attached yet: keep
                early = data if self.early is None else self.early + data
                self.early = early
                if len(early) > _EARLY_MAX and self.transport is not None:
                    self.transport.pause_reading()  # attach resumes reading
                return
            self.close()  # unsolicited bytes on an idle connection
            return
        self.final = False
        if self.plain and type(data) is bytes and txn.method != b"HEAD":
            res = scan_response(data)
            if res is not None:
                try:
                    if self._scanned(txn, res, data):
                        return
                except Exception:  # as a callback's exception in feed_data: a 502
                    self.plain = False
                    txn = self.txn
                    if txn is not None:
                        errsnap.capture_response(txn, data, None)
                        txn.bad_response()
                    return
        p = self.parser
        if p is None:
            p = self.parser = httptools.HttpResponseParser(self)
        self.feeding = True
        try:
            p.feed_data(data)
            txn = self.txn
            if txn is not None:
                if txn.res_pending is not None:
                    txn.flush_head()
                if txn.log_early == 1:  # option logasap: the head came in this read
                    txn.log_asap(txn.res_at)
        except httptools.HttpParserUpgrade as e:
            self.plain = False
            if self.txn is not None:
                self.txn.res_upgrade(data[e.args[0]:], self.parser.get_status_code())
        except httptools.HttpParserError as e:
            self.plain = False
            if self.txn is not None:
                errsnap.capture_response(self.txn, data, e)  # `show errors`
                self.txn.bad_response()
        finally:
            self.feeding = False
        if self.parked:
            self.parked = False
            if self.txn is None:
                self.release(self.park_timeout, self.park_now)

    def _scanned(self, txn: Any, res: tuple[Any, ...], data: bytes) -> bool:
        """A whole plain response, scanned without httptools: the same steps as its
        callbacks (and for a 101, as the stop on the upgrade). False, with nothing
        done, when it is over a limit of the head (httptools' path then refuses it as
        before)."""
        status, reason, headers, cost, body_at, keep_alive = res
        hleft = txn.conn.head_max - 17 - cost
        hcount = txn.fe.maxhdr - 1 - len(headers)
        if hleft < 0 or hcount < 0:
            return False
        self.hleft = hleft
        self.hcount = hcount
        self.reason = reason
        self.headers = headers
        self.trailers = None
        self.in_head = False
        self.res_cl = True
        self.res_te = False
        if status == 101:
            # the callbacks do nothing with a 101 (Txn.res_head, res_end): the tunnel
            # starts from where the parser would have stopped
            self.plain = False
            txn.res_upgrade(data[body_at:], 101)
            return True
        self.plain = keep_alive
        try:
            txn.res_head(status, reason, headers, keep_alive)
        except Exception as e:  # a bug of lb's, not a bad response: 500, `eint`
            self.plain = False
            txn.internal_error(e, False)  # (res_head sends its head last)
            return True
        txn = self.txn
        if txn is not None and body_at < len(data):
            txn.res_body(data, body_at)
        txn = self.txn
        if txn is not None:
            txn.res_end(None)
            self.final = txn.done
        txn = self.txn
        if txn is not None:
            if txn.res_pending is not None:
                txn.flush_head()
            if txn.log_early == 1:  # option logasap, the response not over yet
                txn.log_asap(txn.res_at)
        return True

    def eof_received(self) -> bool | None:
        self.flush()  # (uvloop closes the transport on this answer)
        return None

    def pause_writing(self) -> None:
        txn = self.txn
        if txn is not None:
            txn.conn.pause(_READ_PAUSED)

    def resume_writing(self) -> None:
        txn = self.txn
        if txn is not None:
            txn.conn.resume(_READ_PAUSED)

    # ---- httptools callbacks
    def on_message_begin(self) -> None:
        self.plain = False
        txn = self.txn
        if txn is None or self.final:
            # bytes after the end of the last response (in the same read, maybe with
            # a pipelined request already sent here): nobody asked for them, they must
            # never be taken as the next request's response
            self.close()
            raise _BadResponse()
        self.hleft = txn.conn.head_max - 17
        self.hcount = txn.fe.maxhdr - 1
        self.reason = b""
        self.headers = []
        self.trailers = None
        self.in_head = True
        self.res_cl = False
        self.res_te = False

    def on_status(self, status: bytes) -> None:
        self.reason += status
        self.hleft -= len(status)
        if self.hleft < 0:
            raise _BadResponse()

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.in_head:
            name = name.lower()
            self.headers.append((name, value))
            # hleft/hcount are C integers when compiled (server.pxd): in place, no int
            # objects are made
            self.hleft -= len(name) + len(value) + 8
            self.hcount -= 1
            if self.hleft < 0 or self.hcount < 0:
                raise _BadResponse()
            if len(name) >= 14:  # content-length / transfer-encoding (hot path: 1 test)
                if name == b"content-length":
                    self.res_cl = True
                    if len(value) > 18 and value.isdigit() and int(value) > _CL_MAX:
                        raise _BadResponse()
                elif name == b"transfer-encoding":
                    self.res_te = True
        else:
            if self.trailers is None:
                self.trailers = []
            self.trailers.append((name.lower(), value))
            self.hleft -= len(name) + len(value) + 8  # trailers share the head's budget
            self.hcount -= 1
            if self.hleft < 0 or self.hcount < 0:
                raise _BadResponse()

    def on_headers_complete(self) -> None:
        self.in_head = False
        if self.res_te and h1.te_status([v for n, v in self.headers
                                         if n == b"transfer-encoding"]):
            raise _BadResponse()  # HAProxy 2.6.12: 502 unless exactly `chunked`
        txn = self.txn
        if txn is not None:
            try:
                txn.res_head(self.parser.get_status_code(), self.reason, self.headers,
                             self.parser.should_keep_alive())
            except Exception as e:  # a bug of lb's, not a bad response: 500, `eint`
                txn.internal_error(e, False)  # (res_head sends its head last)

    def on_body(self, body: bytes) -> None:
        if self.txn is not None:
            self.txn.res_body(body)

    def on_message_complete(self) -> None:
        p = self.parser
        self.plain = p.should_keep_alive() and not p.should_upgrade()
        txn = self.txn
        if txn is not None:
            txn.res_end(self.trailers)
            self.final = txn.done  # not after an interim (1xx) response

    def send(self, data: bytes) -> None:
        """Write to the server with the other sends of this turn of the loop
        (lb.proxy.sockio.SendQueue): compiled, on the socket itself from the second
        write of the connection on (the first goes through the transport)."""
        if self.transport is None:
            return self._send_now(data)
        fd = self.fd
        if fd < -1:
            if fd == -3:
                self.fd = fd = -2
            else:
                fd = self.fd = send_fd(self.transport)
        self.be.sendq.later(self.transport, fd, data)

    def adopted(self, task: Any) -> None:
        """The end of ``adopt`` for a connection its exchange already uses: a
        transport that could not be made loses the connection."""
        if self.transport is None and not task.cancelled():
            exc = task.exc
            self.connection_lost(exc if isinstance(exc, Exception) else None)

    def write_many(self, parts: Any) -> None:
        """Write ``parts`` now, after what this turn queued for the connection."""
        if self.transport is None:
            return self._send_now(b"".join(parts))
        self.flush()
        self.transport.writelines(parts)

    def _send_now(self, data: bytes) -> None:
        """A write before the transport exists (a connection from ``dial_now``):
        kept, and sent on the socket at the end of this turn's pass of sends, after
        the connects of the pass (``_send_unsent``)."""
        if self.closed:
            return
        unsent = self.unsent
        if unsent is None:
            self.unsent = [data]
            self.be.sendq.call(self._send_unsent)
        else:
            unsent.append(data)

    def _send_unsent(self) -> None:
        unsent = self.unsent
        if unsent is None or self.transport is not None or self.closed:
            return  # (connection_made wrote them)
        data = unsent[0] if len(unsent) == 1 else b"".join(unsent)
        n = send_now(self.fd, data)
        self.unsent = None if n == len(data) else [data[n:]]

    def flush(self) -> None:
        """Send what this turn queued: before any other write to, or close of, a
        connection that may have bytes queued (lb.proxy.sockio.SendQueue)."""
        self.be.sendq.flush()

    # ---- pool
    def close(self) -> None:
        self.closed = True
        self.reusable = False
        if self.transport is not None:
            self.flush()
            self.transport.close()

    def close_done(self) -> None:
        """Close a connection whose last exchange is complete with a reset, not a
        FIN, as HAProxy does: the server has answered all that was sent, so a reset
        loses nothing, and lb's end does not stay in TIME_WAIT. The side that
        closes first keeps TIME_WAIT for a minute; toward a server on another host
        a FIN from lb on every `http-server-close` request would hold one local
        port per request for that minute and run out of ports at a few hundred
        requests a second (docs/dataplane.md, "Closing server connections").
        A server that closed first already holds it; lb closes plainly then."""
        if not self.closed and self.transport is not None:
            self.flush()  # (the reset would drop what is still unsent)
            reset_on_close(self.transport, self.fd)
        self.close()

    def abort(self) -> None:
        """Give the connection up mid-exchange: a reset, as HAProxy sends (the server
        learns at once that nobody waits for its answer)."""
        if not self.closed and self.transport is not None:
            self.flush()
            reset_on_close(self.transport, self.fd)
        self.closed = True
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()

    def release(self, idle_timeout: float | None, now: float) -> None:
        """Back to the idle pool after a complete exchange (no timer per request:
        an idle connection older than `idle_timeout` is closed when next taken).
        ``now``: the loop's time at the end of the exchange."""
        self.txn = None
        if self.closed or not self.reusable:
            self.close_done()
            return
        if self.feeding:  # pooled after this read, if nothing follows the response
            self.parked = True
            self.park_timeout = idle_timeout
            self.park_now = now
            return
        if self.private:  # kept by its client connection, never pooled
            private.keep(self, now, idle_timeout)
            return
        pool = self.be.idle.get(self.srv)
        if pool is None or len(pool) >= 64:
            self.close_done()
            return
        pool.append(self)
        self.pooled = True
        self.idle_since = now if idle_timeout else 0.0

    def _drop_idle(self) -> None:
        if self.pooled:  # (a connection never pooled does not search the pool)
            self.pooled = False
            pool = self.be.idle.get(self.srv)
            if pool is not None:
                try:
                    pool.remove(self)
                except ValueError:  # the pool was cleared (stopping)
                    pass
        if self.idle_handle is not None:
            self.idle_handle.cancel()
            self.idle_handle = None


def take_idle(be: Any, srv: ServerState) -> ServerConn | None:
    pool = be.idle.get(srv)
    if not pool:
        return None
    limit = be.t_server
    now = be.loop_time() if limit else 0.0
    while pool:
        sc = pool.pop()
        sc.pooled = False
        if sc.closed or sc.transport is None or closing(sc.transport):
            continue
        if limit and now - sc.idle_since > limit:
            sc.close_done()  # idle for longer than `timeout server`
            continue
        return sc
    return None


def connect(loop: asyncio.AbstractEventLoop, be: Any, srv: ServerState,
            host: str, port: int, dialer: Any = None,
            ) -> Coroutine[Any, Any, tuple[Any, ServerConn]]:
    """The coroutine that connects to ``srv``; its result is (transport, ServerConn).
    ``dialer`` (the exchange) is told from the ServerConn's ``connection_made``.

    uvloop's own coroutine, not one around it: a wrapper costs a coroutine frame and
    a second send on every step of every connect. When the socket needs options
    before its SYN (``be.srvopts``, or smart connect), a numeric address on uvloop is
    dialed by lb itself (lb.proxy.dial) and a host name goes through
    ``lb.proxy.sockopts.connect``.
    """
    smart = be.smart
    if smart == 2:  # `mode tcp`: only when the client's bytes wait to go (HAProxy)
        smart = 1 if dialer is not None and getattr(dialer.conn, "held", None) else 0
    opts = be.srvopts_smart if smart else be.srvopts
    if srv.use_ssl == 1 and be.tls is not None:
        tls = be.tls.get(srv)
        if tls is not None:
            return _connect_tls(loop, be, srv, tls, host, port, dialer, opts)
    if be.has_source:
        binder = be.binders.get(srv.name)
        if binder is not None:  # `source`: bound before it connects
            return sockopts.connect(loop, partial(ServerConn, be, srv, dialer), host, port,
                                    opts, binder)
    if not opts:
        return loop.create_connection(partial(ServerConn, be, srv, dialer), host, port)
    if be.dial:
        t = dialmod.target(host, port)
        if t is not None:
            return _dial(loop, be, srv, dialer, t, opts)
    return sockopts.connect(loop, partial(ServerConn, be, srv, dialer), host, port, opts)


def connect_unix(loop: asyncio.AbstractEventLoop, be: Any, srv: ServerState, dialer: Any,
                 ) -> Coroutine[Any, Any, tuple[Any, ServerConn]]:
    """The coroutine that makes the transport of a new connection to ``srv``, a local
    stream socket (``srv.unix_path``). The connect itself is made now, and raises the
    OSError of one refused: such a failure is known at once (HAProxy retries it
    without the turn-around wait). TCP options do not apply."""
    sock = dialmod.dial_unix(srv.unix_path)
    if srv.use_ssl == 1 and be.tls is not None:
        tls = be.tls.get(srv)
        if tls is not None:
            header = dialer.proxy_header() if srv.proxy_proto and dialer is not None else b""
            factory = partial(_tls_conn, be, srv, dialer, tls.pooled, bool(header))
            return tlsconn.connect_sock(loop, factory, tls, sock,
                                        tlsconn.server_name(tls, dialer), header)
    # (-1: its writes go through the transport, which is not uvloop's TCP one)
    return loop.create_unix_connection(partial(ServerConn, be, srv, dialer, -1), sock=sock)


def dial_now(be: Any, srv: ServerState, host: str, port: int,
             dialer: Any) -> tuple[ServerConn, dialmod.Target] | None:
    """A new connection to ``srv`` that lb dials itself, at once, or None when the
    event loop's connect is used (no option before the SYN, a host name, `mode tcp`'s
    smart connect, not uvloop). A connection already up has no ``dialer``: its
    exchange attaches it now and its request leaves in this pass, beside the
    ``connect()`` (HAProxy's order), before uvloop makes its transport (``adopt``).
    Raises the OSError of a connect that failed at once."""
    if not be.dial or be.smart == 2 or be.has_source or srv.use_ssl == 1:
        return None
    opts = be.srvopts_smart if be.smart else be.srvopts
    if not opts:
        return None
    t = dialmod.target(host, port)
    if t is None:
        return None
    fd, up = dialmod.dial(t, opts)
    return ServerConn(be, srv, None if up else dialer, fd), t


def adopt(loop: asyncio.AbstractEventLoop, sc: ServerConn, t: dialmod.Target,
          ) -> Coroutine[Any, Any, tuple[Any, ServerConn]]:
    """uvloop's transport for a connection from ``dial_now``; a connect still in
    progress is finished first."""
    factory = partial(_itself, sc)
    if sc.dialer is None:
        return loop.create_connection(factory, sock=dialmod.SmartFd(t.family, sc.fd))
    return sockopts.finish(loop, factory, sc.fd, t.family, t.address)


def _connect_tls(loop: asyncio.AbstractEventLoop, be: Any, srv: ServerState,
                 tls: tlsconn.ServerTls, host: str, port: int, dialer: Any,
                 opts: tuple[Any, ...]) -> Coroutine[Any, Any, tuple[Any, ServerConn]]:
    """connect() to a TLS server: the SNI is this exchange's; a PROXY header (this
    client's) goes before the handshake, in clear."""
    header = dialer.proxy_header() if srv.proxy_proto and dialer is not None else b""
    binder = be.binders.get(srv.name) if be.has_source else None
    factory = partial(_tls_conn, be, srv, dialer, tls.pooled, bool(header))
    return tlsconn.connect(loop, factory, tls, host, port, opts, binder,
                           tlsconn.server_name(tls, dialer), header)


def _tls_conn(be: Any, srv: ServerState, dialer: Any, pooled: bool,
              pp_sent: bool) -> ServerConn:
    sc = ServerConn(be, srv, dialer, -1)  # (-1: every write through the TLS transport)
    sc.reusable = pooled
    sc.pp_sent = pp_sent
    return sc


def _itself(sc: ServerConn) -> ServerConn:
    return sc


def _dial(loop: asyncio.AbstractEventLoop, be: Any, srv: ServerState, dialer: Any,
          t: dialmod.Target, opts: tuple[Any, ...],
          ) -> Coroutine[Any, Any, tuple[Any, ServerConn]]:
    try:
        fd, up = dialmod.dial(t, opts)
    except OSError as e:
        return _failed(e)
    factory = partial(ServerConn, be, srv, dialer, fd)
    if up:
        return loop.create_connection(factory, sock=dialmod.SmartFd(t.family, fd))
    return sockopts.finish(loop, factory, fd, t.family, t.address)


async def _failed(exc: OSError) -> tuple[Any, ServerConn]:
    """A connect that failed within connect(): the error, from the coroutine."""
    raise exc
