"""One HTTP request/response exchange through the proxy.

Owns: ``Txn``, which runs the phases of spec §4.1 in order (frontend http-request
rules → stats uri → use_backend → backend rules → server choice → forwardfor →
connect with retries → forward head and body → response rules backend then frontend →
stream the response → log → keep-alive or close), the status codes and termination
codes of spec §9, and the hand-over to ``tunnel`` after a valid 101.

``Txn`` satisfies ``lb.match.sample.SampleCtx`` and exposes the fields the traffic log
reads (``lb.log``). Hook points for later work are ``_choose_server`` (cookie
persistence, queues, redispatch) and ``_on_response_head`` (cookie insertion).

Must not import: lb.cli, healthcheck, lb.__main__.
"""

from __future__ import annotations

from typing import Any

from lb import hana
from lb.balance import keys as lbkeys
from lb.config.addresses import ANY_ADDRESSES
from lb.http import actions, compress, errorfile, h1, proxyproto, responses
from lb.http.actions import Verdict
from lb.http.cookie import request_cookie, response_cacheable, response_cookie
from lb.http.h1 import (
    check_101,
    chunk,
    client_wants_close,
    conn_value,
    join_tail,
    request_head,
    response_head,
    with_name_header,
    ws_key_valid,
)
from lb.http.h1 import count as hdr_count
from lb.http.h1 import get as hdr_get
from lb.http.h1 import is_websocket as is_ws_upgrade
from lb.http.h1 import tokens as hdr_tokens
from lb.match import variables
from lb.match.sample import SampleSubject
from lb.proxy import private, track
from lb.proxy import queue as qmod
from lb.proxy import retry as retrymod
from lb.proxy import server as srvmod
from lb.proxy import tunnel as tunmod
from lb.proxy.drive import DONE as DRIVEN_DONE
from lb.proxy.drive import Driven
from lb.proxy.peer import CLIENT_IP, CLIENT_PORT, DST_IP
from lb.proxy.queue import Waiter, request_slot
from lb.proxy.queue import release as release_slot
from lb.proxy.sockio import reset_on_close
from lb.state import ADMIN_MAINT, OP_STOPPED

_BODY_BUF_MAX = 65536
# the body bytes behind a response head in the same read that are copied next to it
# for one send(2); from this size on the two leave in one sendmsg(2), and the copy
# (a new bytes object the size of the body) is not made. In the kernel the two cost
# the same from 1 to 16 KiB (docs/performance.md, nineteenth session)
_JOIN_MAX = 4096
# methods a layer-7 retry may replay. HAProxy 2.6.12 replays any method whose whole
# request is in its buffer, POST included; lb keeps to idempotent ones (issue #5)
_IDEMPOTENT = frozenset((b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"))
# `option http-restrict-req-hdr-names reject`: refused as a deny would be (403, PR--)
_RESTRICTED = Verdict("deny", 403, None)
PAUSE_BUF = 4
# where Txn._process starts, and goes on after a `do-resolve` answer
PH_FE_CONTENT = 0
PH_FE_RULES = 1
PH_BE_CONTENT = 2
PH_BE_RULES = 3
PH_SERVER = 4
_NO_COOKIES: list[bytes] = []  # shared, never mutated (Txn._persistence)


class _Dial:
    """A connect that waits for the end of the loop's turn (``Txn._attempt``): the
    exchange's ``task`` until then, cancelled like the task it stands for."""

    __slots__ = ("txn", "cancelled")

    def __init__(self, txn: Txn) -> None:
        self.txn = txn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def run(self) -> None:
        if not self.cancelled:
            self.txn._dial(self)


def _ms(a: float, b: float) -> int:
    """Milliseconds from ``a`` to ``b`` (loop times), truncated like ``int()``; a C
    function when compiled (txn.pxd)."""
    return int((b - a) * 1000.0)


class Txn(SampleSubject):
    """One exchange.

    Compiled (tools/build_accel.py), ``txn.pxd`` makes this an extension type whose
    fields are C struct members: every ``self.<field>`` in this module is a pointer
    read instead of a dictionary lookup (keep-alive: about 3 us less per request,
    docs/performance.md). So every field is set here, none is a class-level default
    (Cython cannot have both), and a field added to the class must be declared in
    ``txn.pxd`` too (tests/test_accel.py checks): compiled, there is no instance
    ``__dict__``, so an undeclared field is an AttributeError. The methods of the
    per-request chain are cpdef there: C calls from Txn itself and from ClientConn.
    The fields a fetch reads are declared by the base class, ``SampleSubject``.
    """

    # the log layer's names for src/src_port/dst (lb.proxy.peer)
    client_ip = CLIENT_IP
    client_port = CLIENT_PORT
    dst_ip = DST_IP

    def __init__(self, conn: Any, method: bytes, url: bytes, version: bytes,
                 headers: list[tuple[bytes, bytes]], t0: float) -> None:
        self.conn = conn
        c = self.conn  # typed locals (txn.pxd): field reads without lookups
        self.rt = c.rt
        self.fe = c.fe
        rt = self.rt
        fe = self.fe
        self.method = method
        self.url = url
        self.version = version
        self.req_headers = headers
        self.src = c.src
        self.src_port = c.src_port
        self.dst = c.dst
        self.dst_port = c.dst_port
        self.vars: dict[str, Any] = {}
        self.memo: dict[Any, Any] = {}
        self.stkctr = None  # track-sc slots of this request (lb.proxy.track)
        self.orig_url = None  # the target as received, once a rule rewrote it
        self.orig_method = None
        self.accept_ts = c.accept_ts
        self.t0 = t0
        self.request_ts = self.t0 + rt.epoch_offset  # (self.t0: a C double, compiled)
        self.frontend_name = fe.name
        self.t_idle = _ms(c.last_end, self.t0)
        self.id = c.id
        self.pid = rt.pid
        # SampleCtx
        self.is_response = False
        self.status = 0
        self.res_headers: list[tuple[bytes, bytes]] | None = None
        # logging
        self.frontend_tls = c.tls is not None
        self.backend_name: str | None = None
        self.server_name: str | None = None
        self.t_handshake = 0
        self.t_request = -1
        self.t_queue = -1
        self.t_connect = -1
        self.t_response = -1
        self.t_active = -1
        self.t_total = -1
        self.bytes_in = 0
        self.bytes_out = 0
        self.term = b"--"
        self.cookie_req = b"-"
        self.cookie_res = b"-"
        self.actconn = 0
        self.feconn = 0
        self.beconn = 0
        self.srvconn = 0
        self.retries = 0
        self.redispatched = False
        self.srv_queue = 0
        self.backend_queue = 0
        self.req_counter = 0  # %rt: numbered by the caller when this is a stream
        self.unique_id: str | None = None
        self.srv_ip: str | None = None  # the address and port the request went to
        self.srv_port = 0
        self.be_src: Any = None  # ... and the server connection's own (%bi, %bp)
        # `compression`: the algorithm the request chose, then the response's
        # compressor when its head allows it (lb.http.compress)
        self.comp_algo: Any = None
        self.comp: Any = None
        self.bad_request = False
        # ended before HAProxy would have made its stream: a request head refused or
        # never whole, a connection's error (logged with `error-log-format`)
        self.embryonic = False
        # internal
        self.be: Any = None
        self.srv: Any = None
        self.sc: Any = None
        self.res_reason = b""
        self.upgrade = False
        self.websocket = False
        self.client_close = False
        self.req_chunked = False
        self.req_done = False
        self.res_chunked = False
        self.res_started = False
        self.res_close = False
        self.res_drop = False
        self.body_buf: list[bytes] | None = None
        self.buf_size = 0
        self.head_sent = False
        self.t_sent = 0.0
        self.res_at = 0.0  # the loop's time when the response head arrived
        self.attempts = 0
        self.task: Any = None
        # the ServerConn of the connect in progress (set by ServerConn.__init__)
        self.dialing: Any = None
        self.done = False
        self.reused = False
        self.has_body = False
        self.tunnel: Any = None
        self.t_connect_start = 0.0
        self.server_timeout: float | None = None
        self.tunnel_timeout: float | None = None
        self.live_in = 0
        self.live_out = 0
        self.log_early = 0
        self.early_bytes = 0
        self.res_cl = False
        self.res_te = False
        self.res_pending: bytes | None = None
        self._tr = -1  # time to receive the head, logged as TR once request processing ends
        # server choice (docs/balancing.md)
        self.waiter: Any = None  # lb.proxy.queue.Waiter while queued for a slot
        self.rcookie: Any = None  # lb.http.cookie.RequestCookie (backend has `cookie`)
        self.direct = False  # bound to its server by persistence
        self.force_persist = False
        self.ignore_persist = False
        # captured header values (capture request|response header), logged as %hr/%hs
        self.cap_req: list[bytes] | None = None
        self.cap_res: list[bytes] | None = None
        self.cap_cc: bytes | None = None  # capture cookie, request side (%CC)
        self.cap_cs: bytes | None = None  # ... and response side (%CS)
        # (table, key) pairs the `stick` store rules collected (lb.proxy.stick)
        self.stick_stores: list[tuple[Any, Any]] | None = None
        self.lb_key: bytes | None = None
        self.failed_srv: Any = None  # the server a redispatch left
        self.replay: list[bytes] | None = None  # body kept for a layer-7 retry (retry-on)
        self.status_counted = False  # hrsp_* already counted (the 101, when it was relayed)
        self.wait_body = False  # url_param check_post: the server is chosen once the body is in
        self.buffering = False  # option http-buffer-request: waited (or waits) for the body
        self.monitor = False  # a monitor-uri request (answered, never logged)
        self.unlogged = False  # closed without an answer for the client to retry

    def track_sc(self, slot: int, table: str, value: Any, session: bool) -> None:
        """``track-sc<slot>`` (lb.http.actions): for this request, or with ``session``
        for the whole connection."""
        track.track(self, slot, table, value, session)

    def sc_update(self, slot: int, data: str, value: int | None,
                  index: int | None = None) -> None:
        """``sc-inc-gpc*`` and ``sc-set-gpt*`` on a tracked entry."""
        track.update(self, slot, data, value, index)

    @property
    def request_line(self) -> bytes | None:
        return self.line()

    def line(self) -> bytes | None:
        """The request line as logged (None for a bad request); a C call from logline."""
        if self.bad_request or not self.method:
            return None
        return b"".join((self.method, b" ", self.url, b" HTTP/", self.version))


    # ------------------------------------------------------------------ request side

    def start(self, hsize: int, content_length: int | None, chunked: bool,
              conn_hdr: bool | None) -> None:
        """Headers complete: run the request phases."""
        fe = self.fe
        if self.rt.trace is not None:
            self.rt.trace.request(self)
        now = self.rt.clock()
        # TR is logged once request processing ends (HAProxy 2.6.12: set for requests
        # sent on and for deny/return/redirect replies, -1 for <NOSRV> and tarpit)
        tr = int((now - self.t0) * 1000.0)
        self._tr = tr
        self.bytes_in = hsize
        fc = fe.counters
        fc.req_tot += 1
        fc.cum_req += 1
        fc.req_rate.add(self.request_ts)
        if self.conn.stkctr is not None:
            track.request_started(self.conn, now)
        self.rt.state.cum_req += 1
        self.req_chunked = chunked
        self.has_body = chunked or bool(content_length)
        if not self.has_body:
            self.req_done = True

        version = self.version
        if (hsize + len(self.url) > fe.bufsize or (version != b"1.1" and version != b"1.0")
                or len(self.req_headers) > fe.maxhdr
                or chunked and h1.check_request(self.version, self.req_headers,
                                                fe.maxhdr) is not None):
            return self.parse_error()
        if conn_hdr:
            toks = hdr_tokens(self.req_headers, b"connection")
            self.client_close = fe.client_close or client_wants_close(self.version, toks)
            if b"close" in toks or b"keep-alive" in toks:
                # what rules and fetches see, as HAProxy's H1 parser leaves it
                self.req_headers = h1.clean_connection_headers(self.req_headers)
            if b"upgrade" in toks and hdr_get(self.req_headers, b"upgrade") is not None:
                self.upgrade = True
                if is_ws_upgrade(self.req_headers):
                    self.websocket = True
                    fc.ws_upgrade_req += 1
                    key = hdr_get(self.req_headers, b"sec-websocket-key")
                    if (hdr_count(self.req_headers, b"sec-websocket-key") != 1
                            or not ws_key_valid(key)):
                        fc.ws_fail["no_key"] += 1
                        return self.parse_error()
        elif self.version != b"1.1" or fe.client_close:
            self.client_close = True
        if self.method == b"CONNECT":
            return self.parse_error()
        if fe.cap_req is not None:  # capture request header: as received, for %hr
            self.cap_req = h1.capture(self.req_headers, fe.cap_req)
        if fe.cap_cookie is not None:
            self.cap_cc = h1.capture_cookie(self.req_headers, b"cookie", *fe.cap_cookie)
        if self.conn.entry is not None:  # the first request of an upgraded connection
            return self._upgraded()
        return self._process(PH_FE_CONTENT, 0)

    def _upgraded(self) -> None:
        """The first request of a `mode tcp` connection upgraded to HTTP goes on where
        the session stopped (lb.proxy.upgrade): after the frontend's `tcp-request
        content` rules, with the HTTP backend already chosen unless `switch-mode
        http` upgraded it. The session's variables and trackers are this request's."""
        entry = self.conn.entry
        self.conn.entry = None
        self.vars.update(entry.vars)
        self.stkctr = entry.stkctr
        self.be = entry.be  # (routing takes it; HAProxy's frontend HTTP rules still run)
        rules = self.fe.tcp_content_rules
        self._process(PH_FE_CONTENT, len(rules.rules) if rules is not None else 0)

    def _process(self, phase: int, pos: int) -> None:
        """The request's rules and routing, from ``phase`` at its rule ``pos``: the
        frontend's tcp-request content and http-request rules, its stats page and
        redirects, use_backend, the backend's own rules, then the server choice. A
        `do-resolve` rule stops the walk until its answer (``_resolve``)."""
        fe = self.fe
        fc = fe.counters
        if phase == PH_FE_CONTENT:
            # tcp-request content rules (HTTP mode: they see the parsed request)
            if fe.tcp_content_rules is not None:
                v = fe.tcp_content_rules.run(self, pos)
                if v is not None and v.kind == "resolve":
                    return self._resolve(v, PH_FE_CONTENT)
                if v is not None and v.kind == "reject":
                    # HAProxy 2.6.12: rejected before the request is counted (req_tot),
                    # and counted in dreq (and, by finish, in hrsp_other)
                    fc.req_tot -= 1
                    fc.cum_req -= 1
                    self.rt.state.cum_req -= 1
                    fc.dreq += 1
                    self.term = b"PR"
                    return self.finish(close=True, abort=True)
            pos = 0
            if fe.unique_id is not None:
                # unique-id-format: made once per request, logged as %ID, sent to the
                # server in unique-id-header (added after the rules, before forwardfor)
                self.unique_id = fe.unique_id.render(self).decode("latin-1")
            if fe.monitor_uri is not None and self.url == fe.monitor_uri:
                return self._monitor()
            phase = PH_FE_RULES
        if phase == PH_FE_RULES:
            # frontend http-request rules
            if fe.req_rules is not None:
                v = fe.req_rules.run(self, pos)
                if v is not None:
                    if v.kind == "resolve":
                        return self._resolve(v, PH_FE_RULES)
                    return self.verdict(v, fe)
            pos = 0
            if fe.restrict_names is not None and h1.restrict_names(self.req_headers,
                                                                   fe.restrict_names):
                return self.verdict(_RESTRICTED, fe)
            # stats page
            if fe.stats_uri is not None and self.url.startswith(fe.stats_uri):
                return self.serve_stats()
            if fe.redirect_rules is not None:
                v = fe.redirect_rules.run(self)
                if v is not None:
                    return self.verdict(v, fe)
            routed = self.be if self.be is not None else fe.route(self)
            if routed is None:
                self.term = b"SC"
                return self.local_error(503)
            if routed.disabled:
                # HAProxy 2.6.12: none of its rules, cookies or servers, nothing
                # counted; `SC` 503, and the cookie flags `NN` when it has a cookie
                self.backend_name = routed.name
                if routed.cookie is not None:
                    self.cookie_req = self.cookie_res = b"N"
                self.term = b"SC"
                return self.local_error(503)
            if not self._enter_backend(routed):
                return None
            # the backend's own rules: tcp-request content, http-request, redirect
            phase = PH_BE_CONTENT if routed is not fe.own_be else PH_SERVER
        be = self.be
        if phase == PH_BE_CONTENT:
            if be.tcp_content_rules is not None:
                v = be.tcp_content_rules.run(self, pos)
                if v is not None and v.kind == "resolve":
                    return self._resolve(v, PH_BE_CONTENT)
                if v is not None and v.kind == "reject":
                    # HAProxy 2.6.12: dreq on the frontend only (hrsp_other on both,
                    # counted by finish)
                    fc.dreq += 1
                    self.term = b"PR"
                    return self.finish(close=True, abort=True)
            pos = 0
            phase = PH_BE_RULES
        if phase == PH_BE_RULES:
            if be.req_rules is not None:
                v = be.req_rules.run(self, pos)
                if v is not None:
                    if v.kind == "resolve":
                        return self._resolve(v, PH_BE_RULES)
                    return self.verdict(v, be)
            if be.restrict_names is not None and h1.restrict_names(self.req_headers,
                                                                   be.restrict_names):
                return self.verdict(_RESTRICTED, be)
            if be.redirect_rules is not None:
                v = be.redirect_rules.run(self)
                if v is not None:
                    return self.verdict(v, be)
        self.t_request = self._tr
        if fe.unique_id_hdr is not None:
            self.req_headers.append((fe.unique_id_hdr, self.unique_id.encode("latin-1")))
        ff = fe.forwardfor(be)
        if ff is not None:
            ff.apply(self.req_headers, self.src)
        if fe.ot_any:
            ot = fe.originalto(be)
            if ot is not None:
                ot.apply(self.req_headers, self.dst)
        if fe.comp_any:
            self._comp_request()
        self._choose_server()

    def _enter_backend(self, be: Any) -> bool:
        """The request is the backend's (counted); False when that backend cannot take
        it: a `mode tcp` one, which an upgraded connection's later request may name
        (HAProxy 2.6.12 closes it unanswered, `IR`, with no server)."""
        self.be = be
        self.backend_name = be.name
        bc = be.counters
        bc.scur += 1
        bc.stot += 1
        if bc.scur > bc.smax:
            bc.smax = bc.scur
        bc.sess_rate.add(self.request_ts)
        bc.last_sess = self.request_ts
        if be.mode != "http":
            self.term = b"IR"
            self.finish(close=True, abort=True)
            return False
        bc.req_tot += 1
        bc.cum_req += 1
        if self.websocket:
            bc.ws_upgrade_req += 1
        return True

    def _resolve(self, v: Verdict, phase: int) -> None:
        """A `do-resolve` rule: the walk goes on with the answer (lb.resolvers), at
        once when the resolvers have it, else when it comes. `tcp-request content`
        rules only wait with an inspect-delay (HAProxy's walk is final without one,
        and then takes an answer the resolvers already hold, or none)."""
        q = v.resolve
        lookup = self.rt.state.dns_lookup
        if lookup is None:
            return self._resolved(v, phase, None)
        wait = True
        if phase == PH_FE_CONTENT:
            wait = bool(self.fe.model.inspect_delay)
        elif phase == PH_BE_CONTENT:
            wait = bool(self.be.model.inspect_delay)
        lookup(q.section, q.name, q.ipv4, wait,
               lambda address: self._resolved(v, phase, address))

    def _resolved(self, v: Verdict, phase: int, address: str | None) -> None:
        if self.done:
            return
        actions.resolved(self, v, address)
        # HAProxy 2.6.12 ends TR when the request's processing ends: the wait is in it
        self._tr = int((self.rt.clock() - self.t0) * 1000.0)
        try:
            self._process(phase, v.pos)
        except Exception as exc:  # noqa: BLE001 (from the resolver's callback)
            self.internal_error(exc, self.res_started)

    def _comp_request(self) -> None:
        """`compression`, once every request rule has run: the algorithm the request's
        Accept-Encoding picks from the backend's list (else the frontend's); with
        `offload`, the Accept-Encoding headers then leave the request."""
        be_c = self.be.comp
        fe_c = self.fe.comp
        if be_c is not None and be_c.algos:
            algos = be_c.algos
        elif fe_c is not None and fe_c.algos:
            algos = fe_c.algos
        else:
            return
        algo = compress.choose(algos, self.req_headers)
        if algo is None:
            return
        self.comp_algo = algo
        if (be_c is not None and be_c.offload) or (fe_c is not None and fe_c.offload):
            self.req_headers = [h for h in self.req_headers if h[0] != b"accept-encoding"]

    def _comp_response(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """The response head as the server sent it (before the response rules, so
        that they can read res.comp): compress its body or not."""
        sc = self.sc
        if self.method == b"HEAD" or self.version != b"1.1":
            return
        version = sc.parser.get_http_version().encode() if sc.feeding else b"1.1"
        if sc.res_te:
            sized = True
        else:
            cl = hdr_get(headers, b"content-length")
            sized = cl is not None and cl.strip().isdigit() and int(cl) > 0
        be_c = self.be.comp
        fe_c = self.fe.comp
        types = (be_c.types if be_c is not None and be_c.types
                 else fe_c.types if fe_c is not None and fe_c.types else None)
        if not compress.response_allows(status, version, headers, sized,
                                        tuple(t.encode("latin-1") for t in types)
                                        if types else None):
            return
        # maxcomprate, maxcompcpuusage: no new compression over either limit
        st = self.rt.state
        g = self.rt.config.global_
        if g.maxcomprate > 0 and st.comp_bps_in.read(self.rt.clock() + self.rt.epoch_offset
                                                     ) > g.maxcomprate:
            return
        if g.maxcompcpuusage < 100 and st.idle.read() < 100 - g.maxcompcpuusage:
            return
        self.comp = compress.Compressor(self.comp_algo, self.fe.comp_level)

    def _comp_count(self, n_in: int, n_out: int) -> None:
        comp = self.comp
        fc = self.fe.counters
        bc = self.be.counters
        if comp.bypass:
            fc.comp_byp += n_in
            bc.comp_byp += n_in
        else:
            fc.comp_in += n_in
            bc.comp_in += n_in
            fc.comp_out += n_out
            bc.comp_out += n_out
            st = self.rt.state
            now = self.rt.clock() + self.rt.epoch_offset
            st.comp_bps_in.add(now, n_in)
            st.comp_bps_out.add(now, n_out)

    def _choose_server(self) -> None:
        """Persistence (cookie, force-/ignore-persist), then a slot on the chosen
        server or a place in a queue (lb.proxy.queue); connects once a slot is held."""
        be = self.be
        if (not self.req_done and (be.buffer_req or self.fe.buffer_req)
                and self.buf_size < self.fe.bufsize and not self.buffering):
            # option http-buffer-request: the whole body (up to one buffer) first,
            # which also makes the request replayable by `retry-on`
            self.buffering = self.wait_body = True
            t = self.fe.t_http_request
            if t is not None:  # spec §9: timeout http-request then covers the body too
                self.conn.timer.arm(max(t - (self.rt.clock() - self.t0), 0.0))
            expect = hdr_get(self.req_headers, b"expect")
            if expect is not None and expect.lower() == b"100-continue":
                # the client waits for this before sending its body: answer it here,
                # as HAProxy does, and do not forward the expectation
                self.conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
                self.req_headers = [h for h in self.req_headers if h[0] != b"expect"]
            return None
        if be.cookie is not None:
            self._persistence(be)
        stuck = None  # the server a use-server or stick rule names
        if be.server_rules is not None and not self.direct:
            stuck = self._use_server(be)
        if be.stick is not None:  # (stores are collected even when a server is named)
            found = be.stick.on_request(self, self.rt.clock(),
                                        self.direct or stuck is not None)
            if found is not None:
                stuck = found
        if (stuck is None and not self.direct and self.conn.srv_conns
                and (be.prefer_last or self.conn.prefer_last) and be.hash_spec is None):
            stuck = private.preferred_server(self.conn, be)
        if be.hash_spec is not None and not self.direct and stuck is None:
            smp = be.hash_sample
            self.lb_key = lbkeys.extract(be.hash_spec, self.method, self.url,
                                         self.req_headers, self.src,
                                         sample=smp(self) if smp is not None else None)
            if (self.lb_key is None and be.post_param and self.method == b"POST"
                    and not self.req_done and not self.req_chunked):
                self.wait_body = True
                return None
        self._request_slot(self.rcookie.server if self.direct else stuck, None)

    def _use_server(self, be: Any) -> Any:
        """The server of the first `use-server` rule that matches and whose server is
        not DOWN or in maintenance (`option persist`, `force-persist`: even then)."""
        for srv, cond in be.server_rules:
            if cond is None or cond.evaluate(self):
                if (not srv.admin & ADMIN_MAINT and srv.op != OP_STOPPED) or \
                        be.opt_persist or self.force_persist:
                    return srv
        return None

    def _body_ready(self) -> None:
        """url_param check_post: hash the parameter found in the body (first buffer)."""
        self.wait_body = False
        if self.buffering:  # option http-buffer-request: the body is in
            return self._choose_server()
        body = b"".join(self.body_buf or ())[:self.fe.bufsize]
        self.lb_key = lbkeys.extract(self.be.hash_spec, self.method, self.url,
                                     self.req_headers, self.src, body=body)
        self._request_slot(None, None)

    def _persistence(self, be: Any) -> None:
        """Client-side cookie analysis; rewrites the Cookie headers it changes."""
        for rule in be.persist_rules:
            if rule.cond is None or rule.cond.evaluate(self):
                if rule.kind == "force":
                    self.force_persist = True
                else:
                    self.ignore_persist = True
                break
        hdrs = self.req_headers
        values = _NO_COOKIES  # (a list only when the request has a Cookie header)
        for k, v in hdrs:
            if k == b"cookie":
                if values is _NO_COOKIES:
                    values = []
                values.append(v)
        rc = request_cookie(be.cookie, values, be.ctable, self.request_ts, be.opt_persist,
                            self.force_persist, self.ignore_persist)
        self.rcookie = rc
        self.direct = rc.direct
        self.cookie_req = rc.ck.encode()
        self.cookie_res = b"N"
        if rc.headers is not None:
            it = iter(rc.headers)
            out = []
            for k, v in hdrs:
                if k == b"cookie":
                    v = next(it)
                    if v is None:
                        continue
                out.append((k, v))
            self.req_headers = out

    def _request_slot(self, srv: Any, avoid: Any) -> None:
        """Ask lb.proxy.queue for a slot (bound to ``srv``, or load balanced)."""
        be = self.be
        now = self.rt.clock()
        try:
            got = request_slot(be.st, srv, now, self.lb_key, avoid, self.force_persist)
        except qmod.QueueFull:
            if self.direct and be.model.options.redispatch and not self.force_persist:
                self._leave_server()
                return self._request_slot(None, avoid)
            self.term = b"sQ"
            return self.local_error(503)
        except qmod.NoServer:
            if self.websocket:
                be.counters.ws_fail["no_server"] += 1
                self.fe.counters.ws_fail["no_server"] += 1
            self.term = b"SC"
            return self.local_error(503)
        if type(got) is Waiter:  # (exact: an isinstance that fails costs an MRO walk)
            self.waiter = got
            got.callback = self._slot_granted
            self.conn.stimer.arm(be.t_queue, self._queue_timeout)
            return None
        self._assigned(got, now)

    def _leave_server(self) -> None:
        """No longer bound to its persistent server (redispatch)."""
        self.direct = False
        rc = self.rcookie
        if rc is not None:
            rc.direct = False
            self.cookie_req = retrymod.cookie_char_after_redispatch(
                rc.ck).encode()

    def _slot_granted(self, res: Any) -> None:
        # called from inside another request's release(): continue on the next turn
        self.rt.loop.call_soon(self._granted, res)

    def _granted(self, res: Any) -> None:
        w = self.waiter
        self.waiter = None
        if isinstance(res, qmod.QueueError):
            if self.done:
                return None
            self.conn.stimer.cancel()
            self.term = b"SC"
            return self.local_error(503)
        if self.done:
            release_slot(res, self.rt.clock())
            return None
        self.conn.stimer.cancel()
        if w is not None:
            self.srv_queue = w.srv_pos
            self.backend_queue = w.be_pos
        rc = self.rcookie
        if self.direct and res is not rc.server:
            # its server left service and gave the queue back (option redispatch):
            # no longer direct, so a new cookie is issued (the V stays, as in HAProxy)
            self.direct = rc.direct = False
        self._assigned(res, self.rt.clock())

    def _queue_timeout(self) -> None:
        w = self.waiter
        if w is None or self.done:
            return
        self.waiter = None
        qmod.cancel(w)
        self.srv_queue = w.srv_pos
        self.backend_queue = w.be_pos
        self.be.counters.econ += 1
        self.t_queue = _ms(self.t0, self.rt.clock()) - max(self.t_request, 0)
        self.term = b"sQ"
        self.local_error(503)

    def _assigned(self, srv: Any, now: float) -> None:
        """A slot on srv is held: account for it and connect."""
        self.srv = srv
        self.server_name = srv.name
        self.t_queue = _ms(self.t0, now) - max(self.t_request, 0)
        self._count_server(srv)
        srv.streams.add(self)
        if self.attempts == 0:
            return self.connect()
        old = self.failed_srv
        self.failed_srv = None
        if old is not None and old is not srv:
            self.redispatched = True
            self.be.counters.wredis += 1
            old.counters.wredis += 1
        else:
            self.be.counters.wretr += 1
            srv.counters.wretr += 1
        self._attempt()

    def _l7_retry(self, cond: str) -> bool:
        """A failure after the request was sent (``retry-on`` condition ``cond``):
        send the kept request again, maybe elsewhere. False: handle it as usual."""
        be = self.be
        srv = self.srv
        d = retrymod.on_response_failure(
            be.retry_policy, cond, self.retries, buffered=True,
            server_running=srv.is_running, direct=self.direct,
            force_persist=self.force_persist or srv is be.st.dispatch,
            active_servers=getattr(be.st.balancer, "srv_act", 1))
        if not d.retry:
            return False
        self.retries = d.attempt
        if self.sc is not None:
            self.sc.reusable = False
        self._drop_server(close=True)
        self.reused = False
        self.head_sent = False
        self.t_response = -1
        self.body_buf = list(self.replay or ())
        if d.redispatch:
            # HAProxy 2.6.12 counts a layer-7 retry sent elsewhere as a retry of the
            # server it left and as a redispatch (a connect failure: redispatch only)
            be.counters.wretr += 1
            srv.counters.wretr += 1
            self._redispatch(srv, 0.0)
        else:
            be.counters.wretr += 1
            srv.counters.wretr += 1
            srv.counters.stot += 1  # HAProxy counts a session per attempt
            self._attempt()
        return True

    def _redispatch(self, srv: Any, delay: float) -> None:
        """Give srv's slot back and load balance again, avoiding srv."""
        srv.counters.scur -= 1
        srv.streams.discard(self)
        self.srv = None
        self.server_name = None
        self.failed_srv = srv
        release_slot(srv, self.rt.clock())
        self._leave_server()
        if delay:
            self.conn.stimer.arm(delay, lambda: self._request_slot(None, srv))
        else:
            self._request_slot(None, srv)

    def _count_server(self, srv: Any) -> None:
        sc = self.srv.counters  # == srv.counters, typed
        sc.scur += 1
        sc.stot += 1
        if sc.scur > sc.smax:
            sc.smax = sc.scur
        sc.sess_rate.add(self.request_ts)
        sc.last_sess = self.request_ts
        if self.websocket:
            sc.ws_upgrade_req += 1

    # ---- body from the client
    def req_body(self, data: bytes) -> None:
        self.bytes_in += len(data)
        sc = self.sc
        if sc is not None and self.head_sent:
            if self.req_chunked:
                sc.write_many(chunk(data))
            else:
                sc.send(data)
            return
        if self.done:
            return
        if self.body_buf is None:
            self.body_buf = []
        if self.req_chunked:
            self.body_buf.extend(chunk(data))
        else:
            self.body_buf.append(data)
        self.buf_size += len(data)
        if self.wait_body and self.buf_size >= self.fe.bufsize:
            self._body_ready()
        if self.buf_size > _BODY_BUF_MAX:
            self.conn.pause(PAUSE_BUF)

    def req_end(self, trailers: list[tuple[bytes, bytes]] | None) -> None:
        self.req_done = True
        self.conn.timer.cancel()
        if self.req_chunked:
            block = h1.trailers_block(trailers or [])
            if self.sc is not None and self.head_sent:
                self.sc.send(block)
            elif not self.done:
                if self.body_buf is None:
                    self.body_buf = []
                self.body_buf.append(block)
        if self.wait_body and not self.done:
            self._body_ready()

    # ------------------------------------------------------------------ local answers

    def verdict(self, v: Verdict, proxy: Any) -> None:
        kind = v.kind
        fc = self.fe.counters
        if kind == "badreq":  # (HAProxy: TR stays -1, no error snapshot)
            fc.ereq += 1
            self.term = b"PR"
            return self.local_error(400)
        if kind in ("deny", "tarpit", "reject"):
            fc.dreq += 1
            if self.be is not None and proxy is self.be:
                self.be.counters.dreq += 1
            if self.websocket:
                fc.ws_fail["denied"] += 1
                if self.be is not None:
                    self.be.counters.ws_fail["denied"] += 1
        if kind != "tarpit":
            self.t_request = self._tr  # HAProxy: 0/-1/-1/-1 on deny/redirect, -1 on tarpit
        if kind == "deny":
            self.term = b"PR"
            if v.response is not None:
                return self.local_reply(v.status, v.response)
            return self.local_error(v.status)
        if kind == "tarpit":
            self.term = b"PT"
            self.conn.stimer.arm(self.fe.t_tarpit or 0.0, lambda: self._tarpit_done(v))
            return None
        if kind == "reject":
            self.term = b"PR"
            self.status = -1  # finish counts it as an "other" response, as HAProxy
            return self.finish(close=True, abort=True)
        if kind == "service":
            return self.serve_service(v.service or "")
        # return / redirect
        self.term = b"LR"
        if proxy is self.fe:
            # HAProxy 2.6.12 counts `intercepted` only for the frontend's own replies
            fc.intercepted += 1
        if v.response is None and kind == "return":  # `default-errorfiles`
            return self.local_reply(v.status, self.proxy_page(v.status))
        return self.local_reply(v.status, v.response or b"")

    def _tarpit_done(self, v: Verdict) -> None:
        if self.done:
            return
        if v.response is not None:
            self.local_reply(v.status, v.response)
        else:
            self.local_error(v.status or 500)

    def _closing(self) -> bool:
        return self.client_close or not self.req_done or self.rt.state.stopping

    def _custom_page(self, status: int) -> bytes | None:
        """The proxy's own page for `status` (errorfile, errorloc, http-error), the
        backend's before the frontend's, as HAProxy looks them up; None: built-in."""
        page = None
        be = self.be
        if be is not None and be.errorfiles:
            page = be.errorfiles.get(status)
        if page is None and self.fe.errorfiles:
            page = self.fe.errorfiles.get(status)
        if page is not None and type(page) is not bytes:
            page = page(self)  # an http-error page built per request
        return page

    def proxy_page(self, status: int) -> bytes:
        """What `default-errorfiles` answers: the proxy's page, else the built-in one."""
        page = self._custom_page(status)
        return page if page is not None else responses.error_page(status)

    def local_error(self, status: int) -> None:
        """Built-in (or errorfile) page for `status`, then keep-alive or close."""
        close = self._closing() or responses.closes_client(status)
        self.status = status  # (before a page built per request reads %ST)
        custom = self._custom_page(status)
        if custom is None:
            page = responses.error_page(status, close)
            base = responses.error_page(status, False)
        else:
            page = base = custom
            # an errorfile with no length ends with the connection, an empty one at once
            close = close or errorfile.closes(custom)
            if close and page.startswith(b"HTTP/1.1"):
                page = responses.with_connection(page, b"close")
        if not close and self.version == b"1.0":  # as local_reply
            page = responses.with_connection(page, b"keep-alive")
        if page and (self.fe.after_rules is not None or (self.be is not None
                                                         and self.be.after_rules is not None)):
            page = self._after_local(page)
        if self.method == b"HEAD":  # the head alone, counted alone (HAProxy 2.6.12)
            page = responses.head_only(page)
            base = responses.head_only(base)
        self._write_local(page, responses.logged_size(base, status) if base else 0)
        self.finish(close=close)

    def local_reply(self, status: int, raw: bytes) -> None:
        # an errorfile with no length ends with the connection, an empty one at once
        close = self._closing() or errorfile.closes(raw)
        if self.method == b"HEAD":  # the head alone, counted alone (HAProxy 2.6.12)
            raw = responses.head_only(raw)
        logged = responses.logged_size(raw, status) if raw else 0
        if close:
            if raw.startswith(b"HTTP/1.1"):  # (an HTTP/1.0 page says it already)
                raw = responses.with_connection(raw, b"close")
        elif self.version == b"1.0":  # an HTTP/1.0 client kept alive is told so
            raw = responses.with_connection(raw, b"keep-alive")
        self.status = status
        if raw and (self.fe.after_rules is not None or (self.be is not None
                                                        and self.be.after_rules is not None)):
            raw = self._after_local(raw)
        self._write_local(raw, logged)
        self.finish(close=close)

    def _after_local(self, raw: bytes) -> bytes:
        """`http-after-response` rules on a reply lb builds itself (error pages,
        deny, return, redirect, monitor-uri): backend rules, then frontend rules,
        as HAProxy 2.6.12 does; the head is rebuilt with `connection` last."""
        head, sep, body = raw.partition(b"\r\n\r\n")
        if not sep:
            return raw
        lines = head.split(b"\r\n")
        hdrs = []
        conn = None
        for ln in lines[1:]:
            k, _, v = ln.partition(b":")
            k = k.strip().lower()
            if k == b"connection":
                conn = v.strip()
            else:
                hdrs.append((k, v.strip()))
        self.res_headers = hdrs
        self.is_response = True
        if self.vars:
            variables.response_started(self.vars)
        if self.memo:
            self.memo = {}
        before = sum(len(k) + len(v) for k, v in hdrs)
        be = self.be
        fe = self.fe
        if be is not None and be.after_rules is not None:
            be.after_rules.run(self)
        if fe.after_rules is not None and (be is None or be is not fe.own_be):
            fe.after_rules.run(self)
        # %B follows HAProxy's message size, which grows by name + value per header
        # (checked on 2.6.12: a deny page with two added headers logs 20 bytes more)
        self.bytes_out += sum(len(k) + len(v) for k, v in self.res_headers or ()) - before
        out = [lines[0]]
        out += [k + b": " + v for k, v in self.res_headers or ()]
        if conn is not None:
            out.append(b"connection: " + conn)
        return b"\r\n".join(out) + b"\r\n\r\n" + body

    def _monitor(self) -> None:
        """monitor-uri: HAProxy's "Service ready" 200, counted as intercepted and not
        logged (checked against HAProxy 2.6.12)."""
        self.monitor = True
        self.term = b"LR"
        self.fe.counters.intercepted += 1
        failing = self.fe.monitor_fail
        if failing is not None and any(c.evaluate(self) for c in failing):
            return self.local_error(503)  # `monitor fail`: the site reports itself down
        self.local_error(200)  # the built-in 200 page (an `errorfile 200` replaces it)

    def send_interim(self, raw: bytes, logged: int) -> None:
        """An interim (1xx) response lb builds itself (`early-hint`), sent at once."""
        tr = self.conn.transport
        if tr is not None and not tr.is_closing():
            self.conn.send(raw)
            self.bytes_out += logged

    def _write_local(self, raw: bytes, logged: int) -> None:
        """Send a locally built response; `logged` is what %B will say (HAProxy
        logs 0 for its parser's 400/408, and ``responses.logged_size`` for other
        local replies)."""
        tr = self.conn.transport
        if raw and tr is not None and not tr.is_closing():
            self.conn.send(raw)
        self.bytes_out += logged

    def parse_error(self) -> None:
        """Malformed request detected after the head was parsed: 400, close."""
        self.bad_request = True
        self.embryonic = True  # (refused by HAProxy's parser, before a stream)
        self.status = 400
        self.term = b"PR"
        self.fe.counters.ereq += 1
        from lb.proxy import errsnap
        errsnap.capture_request(self.conn, errsnap.request_bytes(self))
        self._write_local(responses.parser_answer(400, responses.PARSER_400,
                                                  self.fe.errorfiles), 0)
        self.finish(close=True)

    def body_error(self) -> None:
        """The request body is malformed (bad chunk): 400 unless the response has
        started, the server leg is dropped, the connection closes."""
        self.fe.counters.ereq += 1
        self.term = b"PR"
        self._drop_server(close=True)
        if self.res_started:
            return self.finish(close=True, abort=True)
        self.bad_request = True
        self.status = 400
        self._write_local(responses.parser_answer(400, responses.PARSER_400,
                                                  self.fe.errorfiles), 0)
        self.finish(close=True)

    def serve_stats(self) -> None:
        self.server_name = "<STATS>"
        self.backend_name = self.fe.name
        allowed = False
        rules = self.fe.stats_rules
        if rules is not None:  # `stats http-request`: the first rule that applies decides
            v = rules.decide(self)
            if v is not None:
                if v.kind != "allow":
                    return self.verdict(v, self.fe)
                allowed = True  # no credentials asked
        self.term = b"LR"
        try:
            from lb import stats
            raw = stats.serve_http(self.rt.state, self.fe.model, self, allowed=allowed)
        except Exception:
            return self.local_error(503)
        self.fe.counters.intercepted += 1
        status = 200
        try:
            status = int(raw[9:12])
        except ValueError:
            pass
        self.local_reply(status, raw)

    def serve_service(self, name: str) -> None:
        self.term = b"LR"
        if name == "prometheus-exporter":
            try:
                from lb import stats
                body = stats.render_prometheus(self.rt.state)
            except Exception:
                return self.local_error(503)
            self.fe.counters.intercepted += 1
            raw = responses.local_response(
                200, [(b"content-type", b"text/plain; version=0.0.4")], body)
            return self.local_reply(200, raw)
        return self.local_error(500)

    # ------------------------------------------------------------------ connect

    def connect(self) -> None:
        be = self.be
        srv = self.srv
        if self.conn.srv_conns:  # one this client owns to srv comes first, in any mode
            sc = private.take(self.conn, srv, be.t_server, be.loop_time())
            if sc is not None:
                return self._reuse(sc)
        # http-reuse safe (the default): a client connection's first request gets a
        # connection of its own, later ones may take an idle one (aggressive/always:
        # the first one too)
        if (be.reuse and not self.has_body and not be.server_close
                and (self.conn.nreq > 1 or be.reuse_first)):
            sc = srvmod.take_idle(be, srv)
            if sc is not None:
                return self._reuse(sc)
        self._attempt()

    def _reuse(self, sc: Any) -> None:
        """Send on ``sc``, an idle connection to the chosen server."""
        srv = self.srv
        self.reused = True
        self.srv_ip, self.srv_port = srv.addr, srv.port or 0
        self.t_connect = 0
        self.be.counters.reuse += 1
        srv.counters.reuse += 1
        if srv.observe:
            hana.observe(srv, hana.L4_OK)
        self.attach(sc)

    def _attempt(self) -> None:
        rt = self.rt
        self.attempts += 1
        self.t_connect_start = rt.clock()
        srv = self.srv
        # `connect` counts attempts, failed ones too (HAProxy 2.6.12: 4 for one
        # request to a dead server with retries 3)
        self.be.counters.connect += 1
        srv.counters.connect += 1
        # the connect itself leaves with this turn's sends (lb.proxy.sockio), so that
        # a burst of them wakes the server once; till then `task` is the pending dial
        dial = _Dial(self)
        self.task = dial
        self.be.sendq.call(dial.run)
        self.conn.stimer.arm(self.be.t_connect, self._connect_timeout)

    def _dial(self, dial: Any) -> None:
        """The connect of the current attempt, from the turn's end (``_Dial``)."""
        if self.task is not dial or self.done:
            return
        srv = self.srv
        rt = self.rt
        if srv.unix_path is not None:
            return self._dial_unix(srv)
        port = srv.port
        if not port:  # no port, or `+N`/`-N`: the one the client connected to (+N)
            port = (int(self.dst_port) + srv.port_offset) & 0xFFFF
        addr = srv.addr
        if addr in ANY_ADDRESSES:  # a transparent server: where the client connected
            addr = self.dst
        self.srv_ip, self.srv_port = addr, port
        try:
            dialed = srvmod.dial_now(self.be, srv, addr, port, self)
        except OSError:
            self.task = None
            return self._connect_failed(b"SC")
        if dialed is None:
            self.task = Driven(rt.loop, srvmod.connect(rt.loop, self.be, srv, addr,
                                                       port, self),
                               self._connected)
            return
        sc, target = dialed
        adopt = srvmod.adopt(rt.loop, sc, target)
        if sc.dialer is not None:  # the connect goes on: as the event loop's would
            self.task = Driven(rt.loop, adopt, self._connected)
            return
        # up already: the request leaves now, before uvloop's transport exists
        Driven(rt.loop, adopt, sc.adopted)
        self.dialing = sc
        self._server_ready(sc)

    def _dial_unix(self, srv: Any) -> None:
        """The connect of a server that is a local socket: made now, and a refusal is
        known now (retried at once, as by HAProxy 2.6.12)."""
        self.srv_ip, self.srv_port = "unix", 0  # (HAProxy's %si:%sp)
        rt = self.rt
        try:
            connecting = srvmod.connect_unix(rt.loop, self.be, srv, self)
        except OSError:
            self.task = None
            self.dialing = None
            return self._connect_failed(b"SC", True)
        self.task = Driven(rt.loop, connecting, self._connected)

    def _connected(self, task: Driven) -> None:
        """The connect coroutine's end. A success normally arrived a turn earlier, in
        ``_server_ready`` from the connection's ``connection_made``, which let go of
        the task: this call then finds ``task`` is no longer ``self.task``."""
        if self.task is not task:
            return
        self.task = None
        if task.state != DRIVEN_DONE:  # cancelled
            return
        exc = task.exc
        if self.done:
            if exc is None:
                task.value[1].close()
            return
        if exc is not None:
            self.dialing = None
            return self._connect_failed(b"SC")
        self._server_ready(task.value[1])

    def _server_ready(self, sc: Any) -> None:
        """The server connection of the current attempt is up: send the request.

        Called from ``ServerConn.connection_made``, before uvloop wakes the connect
        coroutine. A connection of an attempt given up (connect timeout, exchange
        over) is not ``dialing`` any more: its coroutine is being cancelled, and
        uvloop closes the connection."""
        if sc is not self.dialing:
            return
        self.dialing = None
        self.task = None  # the coroutine ends with this connection; nothing to wait for
        self.conn.stimer.cancel()
        if self.srv.observe:
            hana.observe(self.srv, hana.L4_OK)
        self.t_connect = (_ms(self.t0, self.rt.clock()) - max(self.t_request, 0)
                          - max(self.t_queue, 0))
        self.attach(sc)

    def _connect_timeout(self) -> None:
        task = self.task
        self.dialing = None
        if task is not None:
            self.task = None
            task.cancel()
        self._connect_failed(b"sC")

    def _connect_failed(self, term: bytes, at_once: bool = False) -> None:
        """A connect failed (``term`` SC) or timed out (sC); ``at_once``: within the
        ``connect()`` call itself (a local socket's refusal), not later."""
        if self.done:
            return
        be = self.be
        srv = self.srv
        if srv.observe:  # each failed attempt, retried or not
            hana.observe(srv, hana.L4_ERR)
        d = retrymod.on_connect_failure(
            be.retry_policy,
            retrymod.CONN_TIMEOUT if term == b"sC" else
            retrymod.CONN_REFUSED_AT_ONCE if at_once else retrymod.CONN_ERROR,
            self.retries, server_running=srv.is_running, direct=self.direct,
            force_persist=self.force_persist or srv is be.st.dispatch,
            active_servers=getattr(be.st.balancer, "srv_act", 1))
        if d.retry:
            self.retries = d.attempt
            if d.redispatch:
                return self._redispatch(srv, d.delay)
            be.counters.wretr += 1
            srv.counters.wretr += 1
            srv.counters.stot += 1  # HAProxy counts a session per attempt
            if d.delay:
                self.conn.stimer.arm(d.delay, self._attempt)
            else:
                self._attempt()
            return
        self.be.counters.econ += 1
        self.srv.counters.econ += 1
        self.term = term
        if self.websocket:
            self.fe.counters.ws_fail["no_server"] += 1
            self.be.counters.ws_fail["no_server"] += 1
        self.local_error(503)

    def attach(self, sc: Any) -> None:
        # `link` is typed (txn.pxd): its fields are C members; `sc` stays untyped for
        # TcpTxn, whose attach takes another kind of connection
        self.sc = link = sc
        link.txn = self
        if link.local is not None:  # (a reused connection, or one made already)
            self.be_src = link.local
        if not link.attached:
            link.attached = True
            srv = self.srv
            if srv.proxy_proto and not link.closed:
                # send-proxy: the header is this client's, so the connection is never
                # handed to another one (a TLS one sent it before its handshake)
                if not link.pp_sent:
                    link.send(self.proxy_header())
                link.reusable = False
            elif srv.unix_path is None and (not srv.port or srv.addr in ANY_ADDRESSES):
                # nor one whose address or port came from where this client connected
                link.reusable = False
            if link.early is not None or link.closed:
                return self._attach_new(link)
        be = self.be
        fe = self.fe
        # Connection header toward the server (spec §8.1)
        if self.upgrade:
            conn = h1.upgrade_connection(self.req_headers)
        elif (be.server_close or fe.server_close) and not be.pretend_ka:
            # HTTP/1.0 closes unless told otherwise: HAProxy 2.6.12 adds nothing
            conn = b"close" if self.version != b"1.0" else None
            link.reusable = False
        elif self.version == b"1.0":
            conn = b"keep-alive"
        else:
            conn = None
        if be.server_close or fe.server_close:
            link.reusable = False
        if be.send_name is not None and self.srv.name:
            # http-send-name-header: the one that is sent to (a dispatch has no name)
            self.req_headers = with_name_header(self.req_headers, be.send_name,
                                                self.srv.name)
        head = request_head(self.method, self.url, self.version, self.req_headers, conn)
        if be.replay_requests:
            # the whole request in one buffer, still in hand: replayable (retry-on)
            self.replay = (list(self.body_buf or ()) if self.req_done and not self.upgrade
                           and self.method in _IDEMPOTENT and self.buf_size <= fe.bufsize
                           else None)
        if self.body_buf:
            link.write_many([head, *self.body_buf])
            self.body_buf = None
            if self.buf_size > _BODY_BUF_MAX:
                self.conn.resume(PAUSE_BUF)
        else:
            link.send(head)
        self.head_sent = True
        self.t_sent = self.rt.clock()
        self.conn.stimer.arm(self.server_timeout or be.t_server, self._server_timeout,
                             self.t_sent)

    def proxy_header(self) -> bytes:
        """The PROXY header for a new connection to the server: the client's address
        and port as this exchange sees them, and the address it connected to; in v2,
        the TLVs of `proxy-v2-options` in HAProxy 2.6.12's order."""
        srv = self.srv
        if srv.proxy_proto != 2:
            return proxyproto.v1(self.src, int(self.src_port), self.dst, int(self.dst_port))
        opts = srv.pp_opts
        tlvs = b""
        if opts:
            if opts & proxyproto.OPT_AUTHORITY:  # passed on from the proxy in front
                got = self.conn.pp_header
                if got is not None and got.authority is not None:
                    tlvs += proxyproto.tlv(proxyproto.TLV_AUTHORITY, got.authority)
            if opts & proxyproto.OPT_UNIQUE_ID:
                tlvs += proxyproto.tlv(proxyproto.TLV_UNIQUE_ID, self.unique_id_bytes())
            if opts & proxyproto.OPT_SSL:
                tlvs += proxyproto.SSL_NONE
        return proxyproto.v2(self.src, int(self.src_port), self.dst, int(self.dst_port),
                             tlvs, bool(opts & proxyproto.OPT_CRC32C))

    def unique_id_bytes(self) -> bytes:
        """The exchange's `unique-id-format` value, made now if it is not yet (a TCP
        stream's); empty without a format, as HAProxy's."""
        if self.unique_id is None:
            fmt = self.fe.unique_id
            if fmt is None:
                return b""
            self.unique_id = fmt.render(self).decode("latin-1")
        return self.unique_id.encode("latin-1")

    def _attach_new(self, link: Any) -> None:
        """A new connection on which the server spoke or closed before its exchange
        was attached: the bytes are its response so far (parsed after the request
        head leaves); a connection already closed fails as an empty response."""
        early = link.early
        link.early = None
        if link.closed:
            self.server_closed(link, None)
            return
        self.attach(link)  # `attached` is set now: the usual path
        if link.transport is not None:
            link.transport.resume_reading()
        if self.sc is link and early:
            link.data_received(early)

    # ------------------------------------------------------------------ response side

    def res_head(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]],
                 keep_alive: bool) -> None:
        conn = self.conn
        if status < 200:
            if status == 101:
                return  # handled by res_upgrade once the parser stops
            if self.srv.observe:
                hana.observe(self.srv, hana.HTTP_OK)
            head = response_head(status, reason, headers, None)
            conn.send(head)
            self.bytes_out += len(head)
            return
        if self.replay is not None and self._l7_retry(str(status)):
            return
        if (status == 401 or status == 407) and private.offers_connection_auth(status, headers):
            # NTLM/Negotiate authenticate the connection: it stays this client's
            self.sc.private = True
            conn.prefer_last = True
        if self.srv.observe:
            hana.observe(self.srv, hana.status_of_response(status))
        if self.rt.trace is not None:
            self.rt.trace.response(self, status, reason, headers)
        # the server's own answer is counted on the server (HAProxy 2.6.12: its
        # req_tot and hrsp_* never include a 502/503/504 made by the proxy)
        scn = self.srv.counters
        scn.req_tot += 1
        scn.cum_req += 1
        if 200 <= status < 300:
            scn.hrsp_2xx += 1
        else:
            scn.count_status(status)
        now = self.rt.clock()
        self.res_at = now
        self.t_response = int((now - self.t_sent) * 1000.0)
        self.res_started = True
        self.status = status
        self.res_reason = reason
        self.res_headers = headers
        self.is_response = True
        if self.vars:
            variables.response_started(self.vars)
        if not keep_alive:
            self.sc.reusable = False
        if self.memo:
            self.memo = {}
        be = self.be
        fe = self.fe
        if self.comp_algo is not None:
            self._comp_response(status, headers)
        if not self._response_rules():
            return
        status = self.status  # http-response set-status may have changed them
        reason = self.res_reason
        if self.comp is not None:
            if status == 204 or status == 304:
                self.comp = None  # (set-status made it bodiless)
            else:
                self.res_headers = compress.rewrite_head(self.res_headers, self.comp.algo,
                                                         self.sc.res_te)
        if fe.log is not None and fe.log.early:  # logged at the end of this read
            self.log_early = 1
            self.early_bytes = h1.htx_head_size(reason, self.res_headers)
        if self.websocket:
            fe.counters.ws_fail["non_101"] += 1
            be.counters.ws_fail["non_101"] += 1
            self.srv.counters.ws_fail["non_101"] += 1
        method = self.method
        nobody = method == b"HEAD" or status == 204 or status == 304
        # a body the server sends anyway (a 200 that set-status made a 204) is dropped
        self.res_drop = nobody
        if status == 204:
            # a 204 has no body to frame: HAProxy's H1 layer drops its Content-Length
            # and Transfer-Encoding
            self.res_headers = [h for h in self.res_headers
                                if h[0] != b"content-length" and h[0] != b"transfer-encoding"]
        chunked = False
        until_close = False
        if not nobody:
            sc = self.sc
            if sc.res_te or self.comp is not None:
                if self.version == b"1.1":
                    chunked = True
                else:
                    # an HTTP/1.0 client cannot read chunks (RFC 9112 6.1): send the
                    # decoded body and mark its end by closing. HAProxy 2.6.12 forwards
                    # the chunks as they are (docs/conformance.md). The trailer fields
                    # are dropped with the chunks, so is the Trailer header announcing
                    # them (RFC 9112 7.1.3)
                    self.res_headers = [h for h in self.res_headers
                                        if h[0] != b"transfer-encoding" and h[0] != b"trailer"]
                    until_close = True
            elif not sc.res_cl:
                until_close = True
        self.res_chunked = chunked
        close = self.client_close or until_close or not self.req_done or self.rt.state.stopping
        self.res_close = close
        if close:
            cv: bytes | None = b"close"
        elif self.version == b"1.0":
            cv = b"keep-alive"
        else:
            cv = None
        head = response_head(status, reason, self.res_headers, cv)
        self.bytes_out += len(head)
        if nobody:
            conn.send(head)
            if method == b"HEAD":
                self.sc.reusable = False
                self.res_end(None)
        else:
            # held until the first body bytes (usually in the same read): one send
            # for head and body; ServerConn.data_received flushes it otherwise
            self.res_pending = head

    def _response_rules(self) -> bool:
        """http-response rules (backend, then frontend), the server-side cookie work and
        http-after-response, for a final response or a 101. False when a rule denied it
        (the denial has been answered)."""
        be = self.be
        fe = self.fe
        if fe.cap_res is not None:  # capture response header: as received, for %hs
            self.cap_res = h1.capture(self.res_headers, fe.cap_res)
        if fe.cap_cookie is not None:
            self.cap_cs = h1.capture_cookie(self.res_headers, b"set-cookie", *fe.cap_cookie)
        if be.res_rules is not None:
            v = be.res_rules.run(self)
            if v is not None:
                self._response_denied(v)
                return False
        if fe.res_rules is not None and be is not fe.own_be:
            v = fe.res_rules.run(self)
            if v is not None:
                self._response_denied(v)
                return False
        if be.stick is not None:
            be.stick.on_response(self, self.rt.clock())
        self._on_response_head()
        if be.after_rules is not None or fe.after_rules is not None:
            self._after_response()
        return True

    def _after_response(self) -> None:
        """`http-after-response` rules (backend, then frontend): header edits on the
        response about to leave; final actions other than allow are ignored."""
        be = self.be
        fe = self.fe
        if be.after_rules is not None:
            be.after_rules.run(self)
        if fe.after_rules is not None and be is not fe.own_be:
            fe.after_rules.run(self)

    def _on_response_head(self) -> None:
        """After response rules, before the head is written: server-side cookie
        handling and insertion (final responses and 101)."""
        ck = self.be.cookie
        if ck is None or self.srv is None:
            return
        hdrs = self.res_headers
        srv = self.srv
        if srv is self.be.st.dispatch:  # (no server: HAProxy sets no cookie either)
            srv = None
        rr = response_cookie(
            ck, self.status, self.method, [v for k, v in hdrs if k == b"set-cookie"], srv,
            self.be.srv_cookie.get(srv), self.rcookie,
            self.res_at + self.rt.epoch_offset, self.ignore_persist,
            ck.nocache and response_cacheable(self.method, self.status, hdrs))
        self.cookie_res = rr.ck.encode()
        if rr.set_cookies is not None:
            it = iter(rr.set_cookies)
            out = []
            for k, v in hdrs:
                if k == b"set-cookie":
                    v = next(it)
                    if v is None:
                        continue
                out.append((k, v))
            hdrs = self.res_headers = out
        if rr.insert is not None:
            hdrs.append((b"set-cookie", rr.insert))
        if rr.cache_private:
            hdrs.append((b"cache-control", b"private"))

    def _response_denied(self, v: Verdict) -> None:
        self.fe.counters.dresp += 1
        self.be.counters.dresp += 1
        self.srv.counters.dresp += 1
        self.term = b"PH"
        self.res_started = False
        if self.sc is not None:
            self.sc.reusable = False
            self._drop_server(close=True)
        if v.response is not None:
            self.local_reply(v.status, v.response)
        else:
            self.local_error(v.status if v.status and v.status != 403 else 502)

    def res_body(self, data: bytes, off: int = 0) -> None:
        """Body bytes of the response: ``data[off:]`` (``off``: where a scanned head
        ended in the same read)."""
        if self.res_drop:
            return
        comp = self.comp
        if comp is not None:
            if len(data) <= off:
                return
            n_in = len(data) - off
            data = comp.feed(data[off:] if off else data)
            off = 0
            self._comp_count(n_in, len(data))
            if not data:
                return
        self.bytes_out += len(data) - off
        if self.log_early == 1:
            self.early_bytes += len(data) - off
        head = self.res_pending
        if head is not None:
            # the head came in this very read (it is flushed at the end of each):
            # its arrival time is still now
            self.conn.stimer.touch(self.res_at)
            self.res_pending = None
            if not self.res_chunked:
                # a small body is copied behind the head, a large one sent beside it
                if len(data) - off < _JOIN_MAX:
                    self.conn.send(join_tail(head, data, off))
                else:
                    self.conn.send2(head, data, off)
                return
            if off:
                data = data[off:]
            self.conn.flush()  # (what is queued goes first)
            self.conn.transport.writelines((head, *chunk(data)))
        else:
            if off:
                data = data[off:]
            self.conn.stimer.touch()
            if self.res_chunked:
                self.conn.flush()
                self.conn.transport.writelines(chunk(data))
            else:
                self.conn.send(data)

    def flush_head(self) -> None:
        head = self.res_pending
        if head is not None:
            self.res_pending = None
            self.conn.send(head)

    def res_end(self, trailers: list[tuple[bytes, bytes]] | None) -> None:
        if self.done or not self.res_started:
            return  # end of an interim (1xx) response: the final one follows
        if self.log_early == 1 and self.sc is not None and self.sc.res_te:
            # a chunked body's trailers, and 1 for their end
            self.early_bytes += 1 + sum([len(n) + len(v) for n, v in trailers or ()])
        if self.res_chunked:
            block = h1.trailers_block(trailers or [])
            self.bytes_out += len(block)
            comp = self.comp
            if comp is not None:
                tail = comp.finish()
                if tail:
                    self._comp_count(0, len(tail))
                    self.bytes_out += len(tail)
                    block = b"".join(chunk(tail)) + block
                self.fe.counters.comp_rsp += 1
                self.be.counters.comp_rsp += 1
            head = self.res_pending
            if head is not None:
                self.res_pending = None
                block = head + block
            self.conn.send(block)
        elif self.res_pending is not None:
            self.flush_head()
        self.finish(close=self.res_close)

    def res_upgrade(self, server_tail: bytes, status: int) -> None:
        """The server's response stopped the parser as an upgrade (``status``):
        validate the 101 and start the tunnel, else a 502."""
        sc = self.sc
        be = self.be
        fe = self.fe
        srv = self.srv
        if status != 101 or not self.upgrade:
            return self.bad_response()
        if self.rt.trace is not None:
            self.rt.trace.response(self, 101, sc.reason, sc.headers)
        reason = check_101(self.req_headers, sc.headers, self.websocket)
        if reason is not None:
            return self.bad_response()  # (which counts ws_fail["bad_accept"])
        if srv.observe:
            hana.observe(srv, hana.HTTP_OK)
        self.conn.stimer.cancel()
        scn = srv.counters
        scn.req_tot += 1
        scn.cum_req += 1
        scn.hrsp_1xx += 1
        self.res_at = self.rt.clock()
        self.t_response = _ms(self.t_sent, self.res_at)
        self.status = 101
        self.res_reason = sc.reason
        self.res_headers = sc.headers
        self.is_response = True
        if self.vars:
            variables.response_started(self.vars)
        self.res_started = True
        if self.memo:
            self.memo = {}
        if not self._response_rules():
            return
        if fe.log is not None and fe.log.early:  # logged now: the tunnel may last
            self.early_bytes = h1.htx_head_size(self.res_reason, self.res_headers) + len(
                server_tail)
            self.log_asap(self.res_at)
        cv = conn_value(hdr_tokens(self.res_headers, b"connection"), False, False)
        head = response_head(101, self.res_reason, self.res_headers, cv or b"upgrade")
        # the 101 is counted as it is relayed, not when the tunnel ends
        fe.counters.hrsp_1xx += 1
        be.counters.hrsp_1xx += 1
        self.status_counted = True
        if sc.owner is not None:  # a tunnel now: its client no longer keeps it
            private.forget(sc)
        tunmod.start_http(self, head, server_tail)

    def log_asap(self, at: float) -> None:
        """The early line of ``option logasap`` (or of a format that waits for nothing
        of the end), as HAProxy 2.6.12 writes it: times up to ``at`` (the response
        head, or the server connection in TCP), ``%B`` the bytes HAProxy would hold
        by then (``early_bytes``), ``%U`` 0, the connection counts with this stream
        still in them. The line at the end is then not written."""
        self.log_early = 2
        log = self.fe.log
        if log is None or self.monitor or self.unlogged:
            return
        kept = (self.t_active, self.t_total, self.bytes_out, self.bytes_in,
                self.method, self.url)
        self.t_active = int((at - self.t0) * 1000.0)
        self.t_total = self.t_active + max(self.t_idle, 0)
        self.bytes_out = self.early_bytes
        self.bytes_in = 0
        self.actconn = self.rt.actconn
        self.feconn = self.fe.st.conns
        self.beconn = self.be.counters.scur if self.be is not None else 0
        self.srvconn = self.srv.cur_conns if self.srv is not None else 0
        if self.orig_url is not None:  # the request as it was received
            self.method, self.url = self.orig_method, self.orig_url
            self.memo.clear()
        try:
            log.emit(self, False)
        except Exception:
            pass
        (self.t_active, self.t_total, self.bytes_out, self.bytes_in,
         self.method, self.url) = kept
        if self.orig_url is not None:
            self.memo.clear()

    # ------------------------------------------------------------------ failures

    def bad_response(self) -> None:
        """Invalid response from the server: 502 PH (or close if already started)."""
        if self.done:
            return
        if (self.replay is not None and not self.res_started
                and self._l7_retry("junk-response")):
            return
        self.be.counters.eresp += 1
        self.srv.counters.eresp += 1
        if self.srv.observe:
            hana.observe(self.srv, hana.HTTP_HDRRSP)
        if self.websocket and not self.res_started:
            # an answer to the handshake that cannot be relayed (a 101 without its
            # Upgrade header, say): the upgrade failed on the server's side
            for c in (self.fe.counters, self.be.counters, self.srv.counters):
                c.ws_fail["bad_accept"] += 1
        self.term = b"PH"
        self._server_failed()

    def server_closed(self, sc: Any, exc: Exception | None) -> None:
        if self.done or sc is not self.sc:
            return
        if not self.res_started:
            if (self.reused and self.req_done and not self.has_body and self.retries == 0
                    and self.method in _IDEMPOTENT):
                # a reused idle connection raced with the server closing it: an
                # idempotent request may be sent again (RFC 9110 §9.2.2); others fail
                self.sc = None
                self.reused = False
                self.head_sent = False
                self.retries += 1
                return self._attempt()
            if self.replay is not None and self._l7_retry("empty-response"):
                return None
            if (self.reused and self.req_done and not self.has_body and self.retries == 0
                    and self.conn.nreq > 1):
                # not idempotent: sending it again is the user agent's call. As HAProxy
                # 2.6.12 does, its kept-alive connection closes without an answer or a
                # log line; a closed keep-alive connection is what user agents retry on
                self.sc = None
                self.unlogged = True
                return self.finish(close=True)
            # HAProxy 2.6.12: a response error, not a server abort (no data yet);
            # a reset counts twice there (the read error, then the 502), a close once
            n = 2 if exc is not None else 1
            self.be.counters.eresp += n
            self.srv.counters.eresp += n
            if self.srv.observe:
                hana.observe(self.srv, hana.HTTP_READ_ERROR if exc is not None
                             else hana.HTTP_BROKEN_PIPE)
            self.term = b"SH"
            self.sc = None
            return self._server_failed()
        # mid-body: bodies the server framed by closing end normally; a chunked or
        # Content-Length body is truncated, even where the client is sent it until close
        # (decoded for an HTTP/1.0 client): the abort tells that client so
        if not sc.res_te and not sc.res_cl:
            self.sc = None
            return self.finish(close=True)
        if not self.res_chunked and hdr_get(self.res_headers or [], b"content-length") is None:
            self.conn.flush()  # (sent before the reset is set)
            reset_on_close(self.conn.transport)  # the client reads until close
        # HAProxy 2.6.12 counts both: a server abort, and a response error
        self.be.counters.eresp += 1
        self.srv.counters.eresp += 1
        self.be.counters.srv_abrt += 1
        self.srv.counters.srv_abrt += 1
        self.term = b"SD"
        self.sc = None
        self.finish(close=True, abort=True)

    def _server_timeout(self) -> None:
        if self.done:
            return
        if not self.res_started:
            if self.replay is not None and self._l7_retry("response-timeout"):
                return None
            if self.srv.observe:
                hana.observe(self.srv, hana.HTTP_READ_TIMEOUT)
            self.term = b"sH"
            self.be.counters.eresp += 1
            self.srv.counters.eresp += 1
            return self._server_failed(504)
        # silent during the body: HAProxy 2.6.12 counts it as a server abort
        self.be.counters.srv_abrt += 1
        self.srv.counters.srv_abrt += 1
        self.term = b"sD"
        self.finish(close=True, abort=True)

    def _server_failed(self, status: int = 502) -> None:
        if self.res_started:
            self.finish(close=True, abort=True)
            return
        self._drop_server(close=True)
        self.local_error(status)

    def client_timeout(self) -> None:
        """Client silent while we wait for it (body upload or a blocked write).
        Checked against HAProxy 2.6.12: once the request is sent on, a stalled body
        upload does not end the exchange; the server's answer or `timeout server`
        does (504 `sH--`). Without a server timeout lb ends it `cD` rather than
        waiting forever."""
        if self.done:
            return
        if not self.head_sent and not self.res_started and not self.req_done:
            self.term = b"cR"
            self._drop_server(close=True)
            return self.local_error(408)
        if (self.head_sent and not self.res_started and not self.req_done
                and (self.server_timeout or self.be.t_server)):
            return None  # the server timer (armed at attach) decides
        self.term = b"cD"
        self.fe.counters.cli_abrt += 1
        self.finish(close=True, abort=True)

    def client_aborted(self) -> None:
        if self.done:
            return
        if self.res_started or self.tunnel is not None:
            self.term = b"CD"
        elif self.head_sent:
            # still sending its body: the data phase (HAProxy 2.6.12 logs CD too)
            self.term = b"CH" if self.req_done else b"CD"
        elif self.waiter is not None:
            self.term = b"CQ"
            self.t_queue = _ms(self.t0, self.rt.clock()) - max(self.t_request, 0)
        elif self.srv is not None:
            self.term = b"CC"
        else:
            self.term = b"CR"
        self._count_client_abort()
        self.finish(close=True, abort=True)

    def _count_client_abort(self) -> None:
        self.fe.counters.cli_abrt += 1
        if self.be is not None:
            self.be.counters.cli_abrt += 1
        if self.srv is not None:
            self.srv.counters.cli_abrt += 1

    def client_gave_up(self) -> None:
        """`option abortonclose`: the client closed or half-closed its side before the
        response started. Queued or connecting, the exchange ends at once (`CQ`,
        `CC`, nothing sent). Waiting for the server's head, the server connection is
        reset and the client gets a 400, logged `400 ... CH--`, as HAProxy 2.6.12
        answers (a half-closed client reads it)."""
        if self.done:
            return
        if not (self.head_sent and self.req_done and self.tunnel is None
                and not self.res_started):
            return self.client_aborted()
        self.term = b"CH"
        self._count_client_abort()
        self._drop_server(close=True)
        self.local_error(400)

    def kill(self, code: bytes = b"K") -> None:
        """Admin / shutdown-sessions: end this exchange now (a tunnel too)."""
        if self.done:
            return
        if self.tunnel is not None:
            self.tunnel.kill(code)
            return
        self.term = code[:1] + (b"D" if self.res_started else b"R")
        self.finish(close=True, abort=True)

    def set_timeout(self, which: str, seconds: float) -> None:
        if which == "server":
            self.server_timeout = seconds
        elif which == "tunnel":
            self.tunnel_timeout = seconds

    # ------------------------------------------------------------------ end

    def internal_error(self, exc: BaseException, head_out: bool = True) -> None:
        """A fault of lb's own while handling this exchange (a bug, never the peers'
        doing): its traceback goes to the operational log and `eint` counts it on
        the frontend and the backend. A client still waiting for the response head
        (``head_out`` False: the caller knows none has left) gets HAProxy's 500, `I`
        in the termination state (`IR` before any server, `IH` after); otherwise the
        exchange is cut (`ID`). The server and client connections both close."""
        try:
            from lb.log import get_logger
            get_logger("lb.proxy").error("internal_error", frontend=self.fe.name,
                                         backend=self.backend_name, exc_info=exc)
        except Exception:  # the log layer itself failed: still answer the client
            pass
        self.fe.counters.eint += 1
        if self.be is not None:
            self.be.counters.eint += 1
        if self.done:
            return
        started = head_out or self.tunnel is not None
        at_server = self.sc is not None or self.srv is not None
        self.comp = None
        self._drop_server(close=True)
        self.client_close = True
        if started:
            self.term = b"ID"
            self.finish(close=True, abort=True)
            return
        self.res_pending = None
        self.term = b"IH" if at_server else b"IR"
        self.local_error(500)

    def _drop_server(self, close: bool) -> None:
        sc = self.sc
        if sc is not None:
            self.sc = None
            sc.txn = None
            if close:
                sc.abort()
        self.dialing = None
        if self.task is not None:
            self.task.cancel()
            self.task = None

    def finish(self, close: bool, abort: bool = False, empty: bool = False) -> None:
        """The exchange is over: counters, log, server connection, keep-alive/close."""
        if self.done:
            return
        if self.log_early == 1:  # the response ended in the read that brought its head
            self.log_asap(self.res_at)
        self.done = True
        if self.res_pending is not None and not abort:
            self.flush_head()
        rt = self.rt
        conn = self.conn
        conn.stimer.cancel()
        now = rt.clock()
        self.t_active = int((now - self.t0) * 1000.0)
        self.t_total = self.t_active + max(self.t_idle, 0)
        sc = self.sc
        if rt.trace is not None:
            rt.trace.closed(self, close or abort or self.client_close, sc is not None and (
                abort or not self.req_done or not self.be.reuse or not sc.reusable))
        if sc is not None:
            self.sc = None
            if abort or not self.req_done:
                sc.txn = None
                sc.abort()
            else:
                if sc.private or not self.be.reuse or self.srv is self.be.st.dispatch:
                    # (NTLM, http-reuse never, a dispatch): its client's (lb.proxy.private)
                    sc.private = True
                    sc.owner = conn
                sc.release(self.be.t_server, now)
        self.dialing = None
        if self.task is not None:
            self.task.cancel()
            self.task = None
        status = self.status
        if status <= 0 and self.fe.mode == "http":
            self.status = -1  # (%ST: a TCP session has no status, HAProxy logs 0)
        if self.stkctr is not None or conn.stkctr is not None:
            track.exchange_ended(self, status, now)
        ok = 200 <= status < 300
        fc = self.fe.counters
        out = self.bytes_out - self.live_out
        inn = self.bytes_in - self.live_in
        fc.bout += out
        # HAProxy 2.6.12 counts every HTTP exchange's status class as it ends; one
        # that ended without a response (a client abort, a kill) is an "other"
        counted = ok or not self.status_counted and (status > 0 or self.fe.mode == "http")
        if ok:
            fc.hrsp_2xx += 1
        elif counted:
            fc.count_status(status)
        be = self.be
        if be is not None:
            bc = be.counters
            bc.bout += out
            bc.bin += inn
            if ok:
                bc.hrsp_2xx += 1
            elif counted:
                bc.count_status(status)
            tw = self.t_queue
            bc.add_timings(tw, self.t_connect, self.t_response, self.t_active)
            srv = self.srv
            if srv is not None:
                scn = srv.counters
                scn.bout += out
                scn.bin += inn
                scn.add_timings(tw, self.t_connect, self.t_response, self.t_active)
        log = self.fe.log
        if self.monitor or self.unlogged:
            log = None  # monitor-uri requests are never logged
        if self.tunnel is None:
            srv = self.srv
            if srv is not None:
                srv.counters.scur -= 1
                srv.streams.discard(self)
                release_slot(srv, now)
            elif self.waiter is not None:
                w = self.waiter
                self.waiter = None
                qmod.cancel(w)
                self.srv_queue = w.srv_pos
                self.backend_queue = w.be_pos
            if be is not None:
                be.counters.scur -= 1
        if log is not None or rt.txn_hook is not None:
            # %ac/%fc/%bc/%sc as HAProxy 2.6.12 logs them: once this exchange has left
            # its backend and server, while its connection still counts
            self.actconn = rt.actconn
            self.feconn = self.fe.st.conns
            self.beconn = be.counters.scur if be is not None else 0
            self.srvconn = self.srv.cur_conns if self.srv is not None else 0
        if self.orig_url is not None:  # the log shows the request as it was received
            self.method, self.url = self.orig_method, self.orig_url
            self.memo.clear()
        if log is not None and not self.log_early:
            try:
                log.emit(self, empty)
            except Exception:
                pass
        hook = rt.txn_hook
        if hook is not None:
            hook(self)
        conn.txn_done(self, close or abort, abort, now)
