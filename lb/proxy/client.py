"""Client-side leg: one accepted HTTP connection.

Owns: ``ClientConn`` (an asyncio Protocol feeding httptools' request parser),
per-connection accounting (actconn, feconn, ``State.streams``), pipelining (requests
behind the one in flight are queued as parser events and replayed in order, reading
paused meanwhile), the http-request / keep-alive / client timers (408 ``cR`` on a
slow or silent client, silent close on an idle keep-alive connection), malformed input
(400 and close before anything reaches a server) and flow-control reasons for pausing
reading.

Must not import: lb.cli, lb.log, healthcheck.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httptools

from lb.http import h1, proxyproto, responses
from lb.http.headscan import scan_request
from lb.proxy import errsnap, private, track
from lb.proxy.drive import DONE as DRIVEN_DONE
from lb.proxy.drive import Driven
from lb.proxy.peer import PeerNames
from lb.proxy.sockio import direct, finish_now, reset_on_close
from lb.proxy.timers import Deadline
from lb.proxy.txn import Txn
from lb.tls import SHUTDOWN_WAIT
from lb.tls.frontend import handshake_error

PAUSE_BACKPRESSURE = 1
PAUSE_PIPELINE = 2
PAUSE_BUF = 4
PAUSE_UPGRADE = 8


class _Refused(Exception):
    """Raised from a parser callback: the head is refused with `status` (400, 422)."""

    def __init__(self, status: int = 400) -> None:
        super().__init__(status)
        self.status = status


_PARSER_PAGES = {400: responses.PARSER_400, 422: responses.PARSER_422}
_CL_MAX = (1 << 63) - 1  # HAProxy 2.6 refuses a Content-Length from 2**63
_SLICE = 16384  # parse unit of a large read that may hold pipelined requests


def _noop() -> None:
    """The callback of a connection's server-side deadline while nothing arms it."""


def _feed(proto: Any, data: bytes) -> None:
    """Hand ``data`` to a buffered protocol (the TLS layer) as if read from its
    socket."""
    off, n = 0, len(data)
    while off < n:
        buf = proto.get_buffer(n - off)
        k = min(len(buf), n - off)
        buf[:k] = data[off:off + k]
        proto.buffer_updated(k)
        off += k


class ClientConn(PeerNames):
    """The client leg: an asyncio protocol by its methods (uvloop needs no base class;
    compiled, ``client.pxd`` makes it an extension type, which cannot also derive from
    ``asyncio.Protocol``)."""

    __slots__ = (
        "rt", "fe", "listener", "loop", "transport", "parser", "src", "src_port", "dst",
        "dst_port", "accept_ts", "id", "timer", "stimer", "txn", "req_txn", "pending",
        "queueing", "url", "headers", "trailers", "hsize", "in_head", "t_begin",
        "paused", "closed", "upgrade_tail", "last_end", "nreq", "got_bytes", "write_paused",
        "tunnel", "ended", "head_max", "raw_head", "upgrade_body", "held", "fd", "plain",
        "read_eof", "stkctr", "sess_vars", "pp_wait", "pp_header", "entry", "tls",
        "err_text", "srv_conns", "prefer_last",
    )

    def __init__(self, rt: Any, fe: Any, listener: Any = None) -> None:
        # (read back through the typed fields below: compiled, a field of a Runtime,
        # FrontendRT or Listener is a C struct read, an argument's is a lookup)
        self.rt = rt
        self.fe = fe
        self.listener = listener
        self.loop = self.rt.loop
        self.transport: asyncio.Transport | None = None
        # httptools' parser, made at the first read the head scan does not take (most
        # connections never need one: lb.http.headscan)
        self.parser: Any = None
        # the addresses from the accept when there is one (connection_made asks the
        # transport otherwise): uvloop converts them anew on each get_extra_info
        lst = self.listener
        peer = lst.peer if lst is not None else None
        if peer is not None:
            self.src, self.src_port = _addr(peer)
            self.fd = lst.peer_fd  # kept by connection_made if it may send on it
        else:
            self.src = ""
            self.src_port = 0
            self.fd = -1
        local = lst.local if lst is not None else None
        if local is not None:
            self.dst, self.dst_port = local
        else:
            self.dst = ""
            self.dst_port = 0
        self.accept_ts = 0.0
        self.id = 0
        wheel = self.rt.wheel
        self.timer = Deadline(wheel, self._client_timeout)
        self.stimer = Deadline(wheel, _noop)
        self.stkctr = None  # track-sc slots held for the connection (lb.proxy.track)
        self.sess_vars: dict[str, Any] | None = None  # `sess.` variables (lb.match.variables)
        self.txn: Txn | None = None  # the exchange whose response is pending
        self.req_txn: Txn | None = None  # the exchange still receiving its body
        self.pending: list[tuple[Any, ...]] = []
        self.queueing = False
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.trailers: list[tuple[bytes, bytes]] | None = None
        self.hsize = 0
        self.in_head = False
        self.t_begin = 0.0
        self.paused = 0
        self.closed = False
        self.upgrade_tail: list[bytes] | None = None
        self.last_end = 0.0
        self.nreq = 0
        self.got_bytes = False
        self.write_paused = False
        self.tunnel: Any = None
        self.ended = False
        self.head_max = self.fe.head_max
        self.raw_head = 0  # bytes of a head spanning reads (a lower bound)
        self.upgrade_body = 0  # body bytes still due from an upgrade request
        self.held: bytes | None = None  # unparsed input behind queued requests
        # the parser waits for a new message and may take one: a head that arrives
        # whole may skip it (lb.http.headscan). False from a message's start until its
        # end, and for good once llhttp will not take another (close, upgrade, error)
        self.plain = True
        # the client half-closed with a response pending: it can send nothing more, so
        # the connection closes once what it sent before is answered
        self.read_eof = False
        self.pp_wait: bytes | None = None
        self.pp_header: proxyproto.Header | None = None  # (fc_rcvd_proxy, fc_pp_*)
        # where the first request of a connection upgraded from `mode tcp` goes on
        # (lb.proxy.upgrade.Entry), None otherwise
        self.entry: Any = None
        # `bind ... ssl`: the connection's ssl.SSLObject (the ssl_fc* fetches), else None
        self.tls: Any = None
        self.err_text: str | None = None  # (`fc_err_str`, once it ended in error)
        # the private server connections it keeps between its requests, first kept
        # first, None when none was (lb.proxy.private); prefer_last: a server asked
        # for NTLM/Negotiate, so its connection is taken whatever the backend says
        self.srv_conns: list[Any] | None = None
        self.prefer_last = False

    # fields of the accept log line ("Connect from ..."): client_ip etc. from PeerNames

    @property
    def frontend_name(self) -> str:
        return str(self.fe.name)

    # ------------------------------------------------------------------ accounting

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.fd >= 0 and not direct(transport):
            self.fd = -1
        if not self.src_port:
            self.src, self.src_port = _addr(transport.get_extra_info("peername") or ("", 0))
        if not self.dst_port:
            self.dst, self.dst_port = _addr(transport.get_extra_info("sockname") or ("", 0))
        now = time.time()
        self.accept_ts = now
        self.last_end = self.rt.clock()
        rt = self.rt
        st = rt.state
        lst = self.listener
        if lst is not None and lst.tls is not None:  # (the handshake is done)
            self.tls = transport.get_extra_info("ssl_object")
            st.cum_ssl_conns += 1
            st.curr_ssl_conns += 1
        self.id = st.next_id()
        st.streams[self.id] = self
        st.curr_conns += 1
        st.cum_conns += 1
        st.conn_rate.add(now)
        rt.actconn += 1
        rt.conns.add(self)
        fst = self.fe.st
        fst.conns += 1
        c = self.fe.counters
        c.session_open()
        c.conn_tot += 1
        c.conn_rate.add(now)
        if rt.trace is not None:
            rt.trace.accept(self)
        # (maxconn is enforced before accept: lb.proxy.listener)
        if self.fe.tcp_conn_rules is not None and not self._tcp_connection_rules():
            return
        if self.pp_wait is not None or (lst is not None and lst.accept_proxy):
            # `tcp-request connection` rules saw the proxy in front (one may have said
            # `expect-proxy layer4`); the session starts once its PROXY header has told
            # who the client is (HAProxy's order)
            self.pp_wait = b""
            self.timer.arm(self.fe.t_client)
            return
        self._session_start(now)

    def _session_start(self, now: float) -> None:
        """`tcp-request session` rules, then the session is counted and waits for its
        first request."""
        c = self.fe.counters
        if self.fe.tcp_sess_rules is not None and not self._tcp_session_rules():
            return
        # a session, once the rules let it start (a rejected one is not in stot)
        c.session_counted(now)
        self.rt.state.sess_rate.add(now)
        self.timer.arm(self.fe.t_http_request)

    def send(self, data: bytes) -> None:
        """Write to the client with the other sends of this turn of the loop
        (lb.proxy.sockio.SendQueue): compiled, on the socket itself."""
        self.rt.sendq.later(self.transport, self.fd, data)

    def send2(self, head: bytes, data: bytes, off: int) -> None:
        """Write ``head`` then ``data[off:]`` to the client without joining them (a
        large body behind its head): compiled, one sendmsg(2), with this turn's
        other sends."""
        self.rt.sendq.later2(self.transport, self.fd, head, data, off)

    def flush(self) -> None:
        """Send what this turn queued (lb.proxy.sockio.SendQueue): before any other
        write to, or close of, a connection that may have bytes queued."""
        self.rt.sendq.flush()

    def _tcp_connection_rules(self) -> bool:
        """`tcp-request connection` rules (layer-4 fetches only): False when the
        connection was rejected (closed silently, counted in `dcon`, not logged)."""
        rules = self.fe.tcp_conn_rules
        if rules is None:
            return True
        t = Txn(self, b"", b"", b"1.1", [], self.rt.clock())
        v = rules.run(t)
        if v is None or v.kind != "reject":
            self._keep_addresses(t)
            return True
        self.fe.counters.dcon += 1
        self.closed = True
        if self.transport is not None:  # HAProxy resets a refused connection
            self.flush()
            reset_on_close(self.transport)
            self.transport.abort()
        return False

    def _tcp_session_rules(self) -> bool:
        """`tcp-request session` rules, once per connection, after the connection
        rules: False when the session was rejected (closed silently, counted in
        `dses`, not logged)."""
        t = Txn(self, b"", b"", b"1.1", [], self.rt.clock())
        v = self.fe.tcp_sess_rules.run(t)
        if v is None or v.kind != "reject":
            self._keep_addresses(t)
            return True
        self.fe.counters.dses += 1
        self.closed = True
        if self.transport is not None:  # a plain close, as HAProxy's
            self.flush()
            self.transport.close()
        return False

    def _keep_addresses(self, t: Txn) -> None:
        """`set-src`/`set-dst` of a connection or session rule: for the connection."""
        self.src, self.src_port, self.dst, self.dst_port = t.src, t.src_port, t.dst, t.dst_port

    def session_closed(self) -> None:
        """Connection gone (from here or from the tunnel): undo the accounting."""
        if self.ended:
            return
        self.ended = True
        self.closed = True
        self.timer.stop()
        self.stimer.stop()
        rt = self.rt
        st = rt.state
        st.streams.pop(self.id, None)
        st.curr_conns -= 1
        if self.tls is not None:
            st.curr_ssl_conns -= 1
        rt.actconn -= 1
        rt.conns.discard(self)
        self.fe.st.conns -= 1
        self.fe.counters.session_end()
        if self.stkctr is not None:
            track.session_ended(self, rt.clock())
        if self.listener is not None:
            self.listener.release(self)
        if self.srv_conns is not None:
            private.release_all(self)
        # break the reference cycles of a finished connection (parser callbacks,
        # tunnel) so that it is freed at once, without the cyclic GC (issue #9)
        self.parser = None
        self.tunnel = None

    def connection_lost(self, exc: Exception | None) -> None:
        by_client = not self.closed  # (lb sets `closed` when it closes first)
        if self.pp_wait is not None and by_client:
            self._proxy_gone(exc)  # (its own line: no request is reported missing)
            by_client = False
        self.closed = True
        txn = self.txn
        if txn is not None and not txn.done:
            txn.client_aborted()
        elif self.req_txn is not None and not self.req_txn.done:
            self.req_txn.client_aborted()
        elif by_client and not self.ended and self._awaits_request():
            # gone before its request was whole: 400 `CR--`, as HAProxy 2.6.12
            self._no_request(400, b"CR", responses.PARSER_400, False)
        self.session_closed()

    def idle_ms(self, t0: float) -> int:
        return int((t0 - self.last_end) * 1000.0)

    # ------------------------------------------------------------------ flow control

    def pause(self, why: int) -> None:
        if not self.paused and self.transport is not None and not self.closed:
            self.transport.pause_reading()
        self.paused |= why

    def resume(self, why: int) -> None:
        if not self.paused:
            return
        self.paused &= ~why
        if not self.paused and self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def pause_writing(self) -> None:
        self.write_paused = True
        txn = self.txn
        if txn is not None and txn.sc is not None and txn.sc.transport is not None:
            txn.sc.transport.pause_reading()
        if self.fe.t_client:
            self.timer.arm(self.fe.t_client, self._client_timeout)

    def resume_writing(self) -> None:
        self.write_paused = False
        txn = self.txn
        if txn is not None and txn.sc is not None and txn.sc.transport is not None:
            txn.sc.transport.resume_reading()
        if self.txn is not None and self.txn.req_done:
            self.timer.cancel()

    # ------------------------------------------------------------------ input

    def data_received(self, data: bytes) -> None:
        if self.ended:
            return  # the connection is over (its parser is gone)
        self.fe.counters.bin += len(data)
        if self.pp_wait is not None:
            data = self._proxy_header(data)
            if not data:
                return
        self.got_bytes = True
        if self.held is not None:
            self.held += data  # behind queued requests: parsed when the queue drains
            return
        self._input(data)

    def _proxy_header(self, data: bytes) -> bytes:
        """`accept-proxy`: take the PROXY header (v1 or v2) off the start of the
        connection; what follows it is returned. The client's and the destination's
        addresses become the header's (a LOCAL or UNKNOWN one keeps the connection's).
        Anything that is not such a header ends the connection (``_proxy_failed``)."""
        buf = self.pp_wait + data if self.pp_wait else data
        res = proxyproto.parse(buf, self.fe.bufsize)
        if res is None:
            self.pp_wait = buf
            return b""
        if isinstance(res, str):
            self._proxy_failed(res, True)
            return b""
        if not res.local:
            self.src, self.src_port = res.src, res.sport
            self.dst, self.dst_port = res.dst, res.dport
        if res.error is not None:  # (HAProxy names the client the header gave)
            self._proxy_failed(res.error, True)
            return b""
        self.pp_wait = None
        self.pp_header = res
        self.timer.cancel()
        lst = self.listener
        if lst is not None and lst.tls is not None:
            self._start_tls(buf[res.size:])
            return b""
        self._session_start(time.time())
        if self.closed:
            return b""
        return buf[res.size:]

    def _start_tls(self, rest: bytes) -> None:
        """`accept-proxy` on an `ssl` line: the TLS handshake follows the PROXY
        header (``rest``: what came behind it, the start of the handshake), and the
        session starts once it is done (HAProxy's order)."""
        loop = self.rt.loop
        tr = self.transport
        self.fd = -1  # the socket now carries TLS records: no direct sends
        t = self.fe.t_client
        Driven(loop, loop.start_tls(tr, self, self.listener.tls.context,  # type: ignore[union-attr]
                                    server_side=True, ssl_handshake_timeout=t if t else None,
                                    ssl_shutdown_timeout=SHUTDOWN_WAIT),
               self._tls_started)
        if rest:  # handed to the TLS layer once it is in place
            loop.call_soon(_feed, tr.get_protocol(), rest)

    def _tls_started(self, done: Driven) -> None:
        st = self.rt.state
        st.cum_ssl_conns += 1
        if done.state != DRIVEN_DONE or done.exc is not None or self.ended:
            if done.state == DRIVEN_DONE:
                self._log_conn_error(*handshake_error(done.exc))
            self.session_closed()  # (the TLS layer closes the socket)
            return
        self.transport = done.value
        self.tls = self.transport.get_extra_info("ssl_object")
        st.curr_ssl_conns += 1
        self._session_start(time.time())

    def _proxy_failed(self, why: str, received: bool) -> None:
        """No usable PROXY header (``why``: HAProxy's text for the case): the connection
        ends before any session, with HAProxy's log line for it and no other. When
        bytes were received the close is a reset, as HAProxy's (it leaves them unread
        in the socket)."""
        self.pp_wait = None
        self.timer.cancel()
        self._log_conn_error(why, why in proxyproto.SILENT_IF_NULL)
        if received and self.transport is not None and not self.closed:
            reset_on_close(self.transport)
        self._close()

    def log_failed_handshake(self, src: str, src_port: int, accepted: float, why: str,
                             empty: bool, tls: Any) -> None:
        """A TLS handshake failed before the connection reached its protocol, which
        lb.proxy.listener makes only to log it (accepted at ``accepted``, wall
        clock; ``tls``: lb.tls.frontend.FailedHandshake): logged as the connection
        errors below, as one that HAProxy counts while lb never did."""
        self.src = src
        self.src_port = src_port
        self.accept_ts = accepted
        self.t_begin = self.rt.clock() - max(time.time() - accepted, 0.0)
        self.last_end = self.t_begin
        self.tls = tls
        self._log_conn_error(why, empty, 1)

    def _log_conn_error(self, why: str, empty: bool, uncounted: int = 0) -> None:
        """The connection ends in error before its session (``why``: HAProxy's text,
        which `fc_err` / `fc_err_str` give from now on): HAProxy's line for it, or
        with `error-log-format`, an embryonic exchange in that format (status 0,
        `PR--`, no request; not counted as a request). ``uncounted``: 1 for a
        connection never counted in the active ones."""
        self.err_text = why
        log = self.fe.log
        if log is None:
            return
        if log.error_fmt is None or log.fmt is None:
            log.conn_error(self, why, empty)
            return
        now = self.rt.clock()
        # (no request began: its times count from the accept, as the idle time's end)
        txn = Txn(self, b"", b"", b"1.1", [], self.last_end or now)
        txn.req_counter = self.rt.state.next_req()
        txn.bad_request = True
        txn.embryonic = True
        txn.term = b"PR"
        txn.t_active = txn.t_total = int((now - txn.t0) * 1000.0)
        txn.t_idle = 0
        # (HAProxy 2.6.12: no handshake time when it timed out; otherwise the time
        # until the error, as it ends the handshake)
        txn.t_handshake = -1 if why.startswith("Timeout") else txn.t_total
        txn.actconn = self.rt.actconn + uncounted
        txn.feconn = self.fe.st.conns + uncounted
        log.emit(txn, empty)

    def _proxy_gone(self, exc: Exception | None) -> None:
        """The client left before its PROXY header was whole (``exc``: it reset)."""
        self._proxy_failed(self._proxy_cut(proxyproto.ABORT if exc is not None
                                           else proxyproto.EMPTY), bool(self.pp_wait))

    def _proxy_cut(self, why: str) -> str:
        # part of a header came: HAProxy, which reads the header from the first segment
        # alone, calls that truncated however the connection then ends
        return proxyproto.TRUNCATED if self.pp_wait else why

    def _client_timeout_proxy(self) -> bool:
        """The PROXY header did not come within `timeout client`: a silent close."""
        if self.pp_wait is None:
            return False
        self._proxy_failed(self._proxy_cut(proxyproto.TIMEOUT), bool(self.pp_wait))
        return True

    def _input(self, data: bytes) -> None:
        if self.upgrade_body:
            data = self._upgrade_body(data)
            if not data:
                return
        if self.upgrade_tail is not None:
            self.upgrade_tail.append(data)
            if sum(map(len, self.upgrade_tail)) > 65536:
                self.pause(PAUSE_UPGRADE)
            return
        n = len(data)
        if self.req_txn is not None or n <= _SLICE:
            if self.req_txn is not None:
                self.timer.touch()
            if not self._feed(data, 0, n):  # inside a body: never sliced
                return
        else:
            # a large read outside a body may hold many pipelined requests: parse it a
            # slice at a time and keep the rest as bytes once requests are queued, so
            # that what a connection holds stays near one slice of parsed requests
            for off in range(0, n, _SLICE):
                if not self._feed(data, off, off + _SLICE):
                    return
                if self.pending and off + _SLICE < n:
                    self.held = data[off + _SLICE:]
                    return
        if self.in_head and self.txn is None and self.req_txn is None:
            # a head is arriving in pieces: `timeout http-request` runs from its start
            # (a complete head in one read never pays for this timer)
            t = self.fe.t_http_request
            if t is not None:
                self.timer.arm(max(t - (self.rt.clock() - self.t_begin), 0.0))

    def _feed(self, data: bytes, off: int, end: int) -> bool:
        """Parse data[off:end]; False when parsing stops (refused, or an upgrade whose
        tail is all the rest of `data`)."""
        piece = data if not off and end >= len(data) else data[off:end]
        if self.plain and type(piece) is bytes:
            head = scan_request(piece, self.fe.maxhdr, self.fe.bufsize)
            if head is not None:
                return self._scanned(head, piece)
        p = self.parser
        if p is None:
            if self.ended:
                return False
            p = self.parser = httptools.HttpRequestParser(self)
        try:
            p.feed_data(piece)
        except httptools.HttpParserUpgrade as e:
            self.plain = False
            tail = data[off + e.args[0]:]
            txn = self.req_txn
            if txn is not None and not txn.req_done and not self.queueing:
                # llhttp leaves the body of a request with Upgrade in the tail (lb
                # forwards such a request without the upgrade, as HAProxy): a
                # Content-Length body is forwarded from there (h2c POST does this);
                # a chunked one is refused rather than misframed
                if txn.req_chunked:
                    self._bad_request()
                    return False
                self.upgrade_tail = []
                self.upgrade_body = int(h1.get(txn.req_headers, b"content-length") or 0)
                tail = self._upgrade_body(tail)
            self.upgrade_tail = [tail] if tail else []
            return False
        except httptools.HttpParserError as e:
            self.plain = False
            ctx = e.__context__
            errsnap.capture_request(self, piece, e)  # `show errors`
            self._bad_request(ctx.status if isinstance(ctx, _Refused) else 400)
            return False
        if self.in_head:
            # a head spanning reads: every later read still inside it belongs to it,
            # leading OWS included (which on_header never sees); HAProxy's raw buffer
            # holds at most bufsize bytes
            if self.raw_head:
                self.raw_head += len(piece)
                if self.raw_head > self.fe.bufsize:
                    errsnap.capture_request(self, piece, None, "request too large")
                    self._bad_request(400)
                    return False
            else:
                self.raw_head = self.hsize + len(self.url) + 1
        return True

    def _scanned(self, head: tuple[Any, ...], raw: bytes) -> bool:
        """A whole plain head, scanned without httptools: the same steps as its
        callbacks (a message begins, its head completes, it ends without a body) and,
        for an upgrade, as the stop that follows (see _feed). False when parsing
        stops."""
        method, url, headers, hsize, keep_alive, upgrade = head
        self._begin(url, headers, hsize)
        try:
            self._head_done(method, b"1.1")
        except Exception as e:  # as a callback's exception in feed_data: refused
            self.plain = False
            errsnap.capture_request(self, raw, None)
            self._bad_request(e.status if isinstance(e, _Refused) else 400)
            return False
        # llhttp takes nothing after `Connection: close` or an upgrade
        self.plain = keep_alive and not upgrade
        if self.queueing:
            self.pending.append(("e", None))
        else:
            txn = self.req_txn
            if txn is not None:
                self.req_txn = None
                if not txn.req_done:
                    txn.req_end(None)
        if upgrade:
            self.upgrade_tail = []  # what the client sends next waits for the 101
            return False
        return True

    def eof_received(self) -> bool | None:
        self.flush()  # (a falsy answer lets uvloop close the transport)
        if self.pp_wait is not None:  # gone before its PROXY header: nothing to answer
            self._proxy_gone(None)
            return None
        txn = self.txn or self.req_txn
        if txn is not None and not txn.done and not txn.req_done:
            return None  # the request is incomplete: abort (close)
        if txn is not None and not txn.done:
            if (not txn.res_started and txn.be is not None
                    and txn.be.model.options.abortonclose):
                # option abortonclose: a client that closes (or half-closes) before
                # the response starts gives the request up, queued, connecting or
                # waiting for the server's head (`CQ`/`CC`/`CH`, as HAProxy 2.6.12)
                txn.client_gave_up()
                return None
            self.read_eof = True
            return True  # keep the write side for the pending response
        if not self.ended and self._awaits_request():
            # half-closed before its request was whole: HAProxy 2.6.12 answers 400
            # (the client can still read it) and logs `CR--`
            self._no_request(400, b"CR", responses.PARSER_400, True)
        return None

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._begin(b"", [], 0)

    def _begin(self, url: bytes, headers: list[tuple[bytes, bytes]], hsize: int) -> None:
        """A request begins: httptools' callback, or a scanned head (_scanned) with
        its target and headers already in hand."""
        self.plain = False
        self.url = url
        self.headers = headers
        self.trailers = None
        self.hsize = hsize
        self.raw_head = 0
        self.in_head = True
        self.t_begin = self.rt.clock()

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > self.fe.bufsize:
            raise _Refused()

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.in_head:
            hd = self.headers
            hd.append((name.lower(), value.rstrip(b" \t")))  # no trailing OWS, as HAProxy
            self.hsize += len(name) + len(value) + 4
            if self.hsize > self.fe.bufsize or len(hd) >= self.fe.maxhdr:
                raise _Refused()  # HAProxy takes at most maxhdr - 1 header lines
        else:
            if self.trailers is None:
                self.trailers = []
            self.trailers.append((name.lower(), value))
            # trailers share the head's budget (HAProxy: they must fit its buffer)
            self.hsize += len(name) + len(value) + 4
            if self.hsize > self.fe.bufsize or len(self.trailers) >= self.fe.maxhdr:
                raise _Refused()

    def on_headers_complete(self) -> None:
        self._head_done(self.parser.get_method(), None)

    def _head_done(self, method: bytes, version: bytes | None) -> None:
        """The head is complete (``version``: None to ask the parser)."""
        self.in_head = False
        cl = None
        chunked = False
        conn_hdr = None
        te: list[bytes] | None = None
        hosts: list[bytes] | None = None
        url = self.url
        for n, v in self.headers:
            if n == b"content-length":
                try:
                    cl = int(v)
                except ValueError:
                    cl = None
                else:
                    if cl > _CL_MAX:
                        raise _Refused()
            elif n == b"transfer-encoding":
                chunked = True
                te = [v] if te is None else te + [v]
            elif n == b"connection":
                conn_hdr = True
            elif n == b"host":
                hosts = [v] if hosts is None else hosts + [v]
        if version is None:
            p = self.parser
            if conn_hdr is None and p.should_keep_alive():
                # llhttp parses 0.9, 1.0, 1.1 and 2.0, and without a Connection
                # header only 1.1 is keep-alive: the version without
                # get_http_version, which formats a str (about 2% of a keep-alive
                # request, issue #9)
                version = b"1.1"
            else:
                ver = p.get_http_version()
                version = b"1.1" if ver == "1.1" else ver.encode("latin-1")
        # what llhttp lets through but HAProxy 2.6.12 refuses (tools/conformance)
        if te is not None:
            st = h1.te_status(te)
            if st:
                raise _Refused(st)
        if hosts is not None and (len(hosts) > 1 or not url.startswith(b"/")):
            if h1.host_conflict(url, hosts):
                raise _Refused()
            if len(hosts) > 1:  # identical duplicates: keep the first, as HAProxy
                first = True
                kept = []
                for h in self.headers:
                    if h[0] == b"host":
                        if not first:
                            continue
                        first = False
                    kept.append(h)
                self.headers = kept
        if b"#" in url or (self.hsize + 4 * len(self.headers) + len(method) + len(url)
                           + 14 > self.head_max):
            raise _Refused()
        if conn_hdr and (cl or chunked):
            self.headers = h1.drop_upgrade(self.headers)  # no upgrade with a body
        ev = (method, self.url, version, self.headers, self.t_begin,
              self.hsize + len(method) + len(url) + 14, cl, chunked, conn_hdr)
        if self.txn is not None or self.pending:
            self.queueing = True
            self.pending.append(("h", ev))
            self.pause(PAUSE_PIPELINE)
            return
        self.queueing = False
        self._start(ev)

    def _start(self, ev: tuple[Any, ...]) -> None:
        method, url, version, headers, t0, hsize, cl, chunked, conn_hdr = ev
        txn = Txn(self, method, url, version, headers, t0)
        txn.req_counter = self.rt.state.next_req()
        self.txn = txn
        self.req_txn = txn
        self.nreq += 1
        if self.nreq == 1 and self.fe.log is not None:
            # a frontend without a log format logs "Connect from" once a connection
            # carries a request, as HAProxy 2.6.12 (not a probe, a reject, a client
            # gone before its request was whole)
            try:
                self.fe.log.emit_connect(self)
            except Exception:
                pass
        if cl or chunked:
            self.timer.arm(self.fe.t_client)
        else:
            self.timer.cancel()
        try:
            txn.start(hsize, cl, chunked, conn_hdr)
        except Exception as e:  # a bug of lb's: logged, `eint`, a 500 (not a 400)
            self.req_txn = None
            try:
                txn.internal_error(e, False)
            except Exception:
                self._close()
            return
        if txn.req_done and self.req_txn is txn:
            self.req_txn = None

    def on_body(self, body: bytes) -> None:
        if self.queueing:
            self.pending.append(("b", body))
            return
        txn = self.req_txn
        if txn is not None:
            txn.req_body(body)

    def on_message_complete(self) -> None:
        p = self.parser
        self.plain = p.should_keep_alive() and not p.should_upgrade()
        if self.queueing:
            self.pending.append(("e", self.trailers))
            return
        txn = self.req_txn
        if txn is not None:
            if not txn.req_done and self.parser.should_upgrade():
                return  # llhttp left its body in the upgrade tail (see data_received)
            self.req_txn = None
            if not txn.req_done:
                txn.req_end(self.trailers)

    def _upgrade_body(self, data: bytes) -> bytes:
        """Forward what is due of an upgrade request's body; return the rest."""
        n = self.upgrade_body
        part = data[:n]
        self.upgrade_body = n - len(part)
        txn = self.req_txn
        if txn is not None:
            if part:
                txn.req_body(part)
            if not self.upgrade_body:
                self.req_txn = None
                if not txn.req_done:
                    txn.req_end(None)
        return data[n:]

    # ------------------------------------------------------------------ errors / timers

    def _bad_request(self, status: int = 400) -> None:
        rt = self.req_txn
        if rt is not None and not rt.done and not self.queueing:
            rt.body_error()  # invalid body framing after a valid head
            return
        if self.txn is not None and not self.txn.done:
            # garbage behind a request in flight: answer it after the current response
            self.pending.append(("x", status))
            self.pause(PAUSE_PIPELINE)
            return
        self._emit_bad(status, b"PR", _PARSER_PAGES[status])

    def _emit_bad(self, status: int, term: bytes, page: bytes) -> None:
        txn = Txn(self, b"", b"", b"1.1", [], self.t_begin or self.rt.clock())
        txn.req_counter = self.rt.state.next_req()
        txn.bad_request = True
        txn.embryonic = True
        txn.status = status
        txn.term = term
        if status != 408:
            c = self.fe.counters
            c.ereq += 1
            c.req_tot += 1  # HAProxy 2.6.12 counts a refused request in req_tot
            c.cum_req += 1
        self.txn = txn
        txn._write_local(responses.parser_answer(status, page, self.fe.errorfiles), 0)
        txn.finish(close=True)

    def _client_timeout(self) -> None:
        if self.pp_wait is not None and self._client_timeout_proxy():
            return
        txn = self.txn or self.req_txn
        if txn is not None and not txn.done:
            txn.client_timeout()
            return
        if self.closed:
            return
        if self._awaits_request():
            # slow or silent client: 408 (a brand-new idle connection too)
            self._no_request(408, b"cR", responses.PARSER_408, True)
            return
        # idle keep-alive connection: silent close, nothing logged
        self._close()

    def _awaits_request(self) -> bool:
        """A request has begun, or none ever came on a connection HAProxy does not take
        for a probe (`option http-ignore-probes`); not an idle keep-alive."""
        return self.in_head or (self.nreq == 0 and not self.fe.ignore_probes)

    def _no_request(self, status: int, term: bytes, page: bytes, writable: bool) -> None:
        """End a connection whose request never arrived whole, as HAProxy 2.6.12 does:
        its parser's page for `status` (when the client can still read), counted in
        ereq and req_tot, logged `<BADREQ>` (not with `option dontlognull` when the
        client sent nothing)."""
        empty = not self.got_bytes
        txn = Txn(self, b"", b"", b"1.1", [], self.t_begin or self.last_end)
        txn.req_counter = self.rt.state.next_req()
        txn.bad_request = True
        txn.embryonic = True
        txn.status = status
        txn.term = term
        c = self.fe.counters
        c.ereq += 1  # (a silent connection and a partial head alike)
        c.req_tot += 1
        c.cum_req += 1
        if self.stkctr is not None:  # a request, and (at its end) an error, for them
            track.request_started(self, self.rt.clock())
        self.txn = txn
        if writable:
            txn._write_local(responses.parser_answer(status, page, self.fe.errorfiles), 0)
        txn.finish(True, False, empty)  # (C call: no skipped keywords)

    def _close(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.flush()
            self.transport.close()

    def kill(self, code: bytes = b"K") -> None:
        """`shutdown session` / shutdown-sessions: end the connection now."""
        if self.tunnel is not None:
            self.tunnel.kill(code)
            return
        txn = self.txn
        if txn is not None and not txn.done:
            txn.kill(code)
        else:
            self._close()

    # ------------------------------------------------------------------ end of an exchange

    def txn_done(self, txn: Txn, close: bool, abort: bool, now: float) -> None:
        """``txn`` ended (``now``: the loop's time then): keep-alive or close."""
        if self.txn is txn:
            self.txn = None
        if self.req_txn is txn and not close:
            if txn.req_done and not txn.upgrade:
                # answered from within its head (a deny, a redirect, no server): the
                # request is whole, so the connection stays, as with HAProxy
                self.req_txn = None
            else:
                # response done before the request body ended: cannot keep the connection
                close = True
        if self.read_eof and not self.pending and self.held is None:
            close = True  # half-closed: nothing more can come (HAProxy closes too)
        self.last_end = now
        if close or self.closed:
            self.pending.clear()
            self.held = None
            if self.transport is not None and not self.closed:
                self.closed = True
                self.flush()
                if abort:
                    self.transport.abort()
                else:
                    # the FIN right behind the response, as HAProxy sends it: the
                    # client then rarely closes first, which keeps its ports free of
                    # TIME_WAIT (docs/dataplane.md, "Closing client connections")
                    finish_now(self.transport, self.fd)
                    self.transport.close()
            return
        if self.upgrade_tail is not None:
            # the upgrade was refused: back to HTTP with what the client sent since
            tail = b"".join(self.upgrade_tail)
            self.upgrade_tail = None
            self.resume(PAUSE_UPGRADE)
            self.parser = None  # a new one if the scan does not take what follows
            self.plain = True
            if tail:
                self.data_received(tail)
                if self.txn is not None or self.closed:
                    return
        self.timer.arm(self.fe.t_keep_alive, None, now)
        if self.pending:
            self._replay()

    def _replay(self) -> None:
        pending = self.pending
        while pending and self.txn is None and not self.closed:
            ev = pending.pop(0)
            kind = ev[0]
            if kind == "h":
                self.queueing = False
                head = ev[1]
                # its turn has come: as in HAProxy 2.6.12, a request that waited behind
                # others starts now (its TR and idle time 0, its date this moment),
                # not when its bytes arrived
                self._start(head[:4] + (self.rt.clock(),) + head[5:])
                # the rest of this request's events go to it; later heads stay queued
                while pending and pending[0][0] != "h" and pending[0][0] != "x":
                    sub = pending.pop(0)
                    if sub[0] == "b":
                        if self.req_txn is not None:
                            self.req_txn.req_body(sub[1])
                    elif sub[0] == "e":
                        t = self.req_txn
                        self.req_txn = None
                        if t is not None and not t.req_done:
                            t.req_end(sub[1])
                if pending:
                    self.queueing = True
            elif kind == "x":
                pending.clear()
                self._emit_bad(ev[1], b"PR", _PARSER_PAGES[ev[1]])
                return
        if not pending:
            self.queueing = False
            held = self.held
            if held is not None and not self.closed:
                self.held = None
                self._input(held)
                if self.pending or self.held is not None:
                    return  # more queued: stay paused
            self.resume(PAUSE_PIPELINE)


def _addr(a: Any) -> tuple[str, int]:
    if isinstance(a, tuple) and len(a) >= 2:
        return str(a[0]), int(a[1])
    return str(a or ""), 0
