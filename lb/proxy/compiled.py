"""Per-proxy runtime views built once from the frozen model.

Owns: ``FrontendRT`` / ``BackendRT`` (rulesets, switching rules with compiled formats,
resolved timeouts with HAProxy's fallbacks, connection-mode flags, error pages, the
traffic log, idle server connections) and ``Runtime`` (the whole generation: state,
loop, proxies, hooks). Built at start-up; nothing here is re-derived per request.

Must not import: lb.cli, healthcheck, lb.__main__.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

from lb.balance import keys as lbkeys
from lb.config.model import Config, Proxy
from lb.http import actions, cookie, h1
from lb.match import acl, maps, sample
from lb.proxy import queue as lbqueue
from lb.proxy import sockopts, stick, tlsconn
from lb.proxy.eventloop import BusyPoller
from lb.proxy.retry import RetryPolicy
from lb.proxy.sockio import SendQueue
from lb.proxy.timers import TimerWheel
from lb.state import BackendState, FrontendState, ServerState, State

# HAProxy stores a head as HTX blocks in (bufsize - maxrewrite) bytes: measured on
# 2.6.12, it refuses a request when raw head bytes + 4 per header line exceed that
# minus 79 (tools/conformance, cases head_*). FrontendRT.head_max is that limit.
HTX_SLACK = 79


def _ruleset(rules: Any) -> actions.RuleSet | None:
    """A compiled ruleset, or None when empty (one `is not None` test per request)."""
    rs = actions.RuleSet(rules)
    return rs if rs.rules else None


def _traffic_log(proxy: Proxy, config: Config) -> Any:
    try:
        from lb import log as _log
    except Exception:
        return None
    build = getattr(_log, "build_traffic_log", None)
    if build is None:
        return None
    try:
        log = build(proxy, config.global_)
    except Exception:  # a broken log target must not stop the data plane
        return None
    fmt = getattr(log, "fmt", None)
    if fmt is not None and not (proxy.captures_req or proxy.captures_res
                                or proxy.capture_cookie or fmt.asap):
        # imported here: logline cimports Txn, whose module imports this one
        from lb.proxy import logline
        fast = logline.fast_renderer(fmt.text, fmt.mode)
        if fast is not None:
            fmt.render = fast
    return log


def _hash_sample(text: str | None) -> Callable[[Any], bytes | None] | None:
    """`balance hash <expr>`: the expression's value cast to binary, per request."""
    if not text:
        return None
    try:
        expr = sample.parse_expr(text)
    except Exception:  # refused by the config check already
        return None

    def get(ctx: Any) -> bytes | None:
        v = expr.raw(ctx)
        return None if v is None else sample.to_bin(v)
    return get


class BackendRT:
    __slots__ = (
        "model", "st", "name", "req_rules", "res_rules", "t_server", "t_connect",
        "t_tunnel", "t_server_fin", "t_queue", "server_close", "pretend_ka", "httpclose",
        "after_rules",
        "retries", "idle", "mode", "ff", "ot", "counters", "errorfiles", "reuse", "loop_time",
        "restrict_names",
        "cookie", "ctable", "srv_cookie", "persist_rules", "opt_persist", "hash_spec",
        "retry_policy", "replay_requests", "hash_sample", "post_param",
        "redirect_rules", "tcp_content_rules", "buffer_req", "reuse_first", "srvopts",
        "srvopts_smart", "smart", "dial", "binders", "has_source", "tls",
        "stick", "server_rules", "send_name", "sendq", "disabled", "comp", "prefer_last",
        "max_ka_queue",
    )

    def __init__(self, model: Proxy, st: BackendState,
                 loop: asyncio.AbstractEventLoop | None = None,
                 sockbufs: sockopts.SockOpts = (),
                 sendq: SendQueue | None = None) -> None:
        t = model.timeouts
        loop = loop or asyncio.get_event_loop()
        self.loop_time = loop.time
        # the runtime's queue of this turn's sends (lb.proxy.sockio)
        self.sendq = sendq if sendq is not None else SendQueue(loop)
        o = model.options
        self.model = model
        self.st = st
        self.name = model.name
        self.disabled = model.disabled  # never started: requests get a 503
        self.mode = model.mode
        self.counters = st.counters
        self.req_rules = _ruleset(model.http_request_rules)
        self.res_rules = _ruleset(model.http_response_rules)
        self.after_rules = _ruleset(model.http_after_response_rules)
        self.t_server = t.server
        self.t_connect = t.connect
        self.t_tunnel = t.tunnel
        self.t_server_fin = t.server_fin
        self.t_queue = t.queue if t.queue is not None else t.connect
        self.httpclose = o.httpclose
        self.server_close = o.http_server_close or o.httpclose
        self.pretend_ka = o.http_pretend_keepalive
        self.retries = model.retries
        self.ff = model.forwardfor
        self.ot = model.originalto
        self.comp = model.compression  # `compression` (lb.http.compress), or None
        self.errorfiles = actions.compile_pages(model.errorfiles)
        self.restrict_names = (model.restrict_hdr_names
                               if model.restrict_hdr_names != "preserve" else None)
        self.reuse = model.http_reuse != "never"
        self.reuse_first = model.http_reuse in ("aggressive", "always")
        # option prefer-last-server, and `max-keep-alive-queue` + 1 (lb.proxy.private)
        self.prefer_last = o.prefer_last_server
        self.max_ka_queue = model.max_ka_queue
        # idle keep-alive connections per server (ServerConn objects)
        self.idle: dict[ServerState, list[Any]] = {s: [] for s in st.servers}
        # server choice (docs/balancing.md): None when the feature is not configured,
        # so a request pays one `is None` test per unused feature
        self.cookie = cookie.CookieRule(model.cookie) if model.cookie is not None else None
        self.ctable = None
        self.srv_cookie: dict[ServerState, bytes | None] = {}
        self.refresh_cookies()
        self.persist_rules = model.persist_rules if model.cookie is not None else ()
        self.opt_persist = o.persist
        # `stick` rules bound to their tables (lb.proxy.stick), None without rules
        self.stick = (stick.BackendStick(model, st.state.tables) if model.stick_rules
                      else None)
        # use-server: (server, condition) pairs in order, None without rules
        self.server_rules = tuple((st.by_name[r.server], r.cond)
                                  for r in model.server_rules) or None
        self.send_name = (model.send_name_header.lower().encode("latin-1")
                          if model.send_name_header else None)
        self.hash_spec = model.balance if lbkeys.needs_key(model.balance) else None
        self.retry_policy = RetryPolicy.from_proxy(model)
        # layer-7 retries (retry-on beyond connection failures): a request is kept
        # whole until answered (read per request, so not a property call)
        self.replay_requests = self.retry_policy.needs_buffering
        self.hash_sample = _hash_sample(model.balance.hash_expr)
        # `balance url_param <p> check_post`: a POST without <p> in its query waits
        # for its body (up to one buffer) before the server is chosen
        self.post_param = model.balance.algorithm == "url_param" and model.balance.check_post
        # a backend's own legacy `redirect` and `tcp-request content` rules (run after
        # switching, before its http-request rules) and `option http-buffer-request`
        self.redirect_rules = _ruleset(model.redirect_rules)
        self.tcp_content_rules = _ruleset(model.tcp_request_content_rules)
        self.buffer_req = o.http_buffer_request
        # the options set on each new server socket before it connects (global
        # tune.rcvbuf.server / tune.sndbuf.server, srvtcpka, nolinger); () leaves the
        # kernel's
        self.srvopts = (sockbufs + sockopts.keepalive_options(o.srvtcpka or o.tcpka,
                                                              *model.srv_tcpka)
                        + sockopts.linger_reset(o.nolinger))
        # TCP_QUICKACK off before connect (option tcp-smart-connect): the handshake's
        # last ACK leaves with the request (lb.proxy.dial); 1 = always (HTTP), 2 = only
        # when the client has sent bytes already (`mode tcp`, as HAProxy: a server
        # that speaks first would wait for that ACK)
        self.smart = (0 if not o.tcp_smart_connect else 1 if model.mode == "http" else 2)
        self.srvopts_smart = self.srvopts + sockopts.QUICKACK_OFF
        # lb opens server sockets itself (lb.proxy.dial) only on uvloop, whose
        # create_connection takes a bare descriptor
        self.dial = type(loop).__module__.startswith("uvloop")
        # `source` (the backend's, or a server's): those connects bind first
        # (lb.proxy.sockopts.SourceBinder), through the event loop's connect
        self.binders: dict[str, sockopts.SourceBinder] = {}
        for s in (*model.servers, *((model.dispatch,) if model.dispatch else ())):
            src = s.source or model.source
            if src is not None:
                self.binders[s.name] = sockopts.SourceBinder(src)
        self.has_source = bool(self.binders)
        # `ssl` servers: their contexts and SNI (lb.proxy.tlsconn), None without any
        self.tls: dict[ServerState, tlsconn.ServerTls] | None = None
        if any(s.ssl for s in model.servers):
            self.tls = tlsconn.for_backend(model, st.by_name, st.state.config.global_)

    def tls_turned(self, srv: ServerState) -> None:
        """`set server ... ssl` changed what new connections to ``srv`` speak: a
        server without a context yet gets one (its settings were checked at start)."""
        if srv.use_ssl == 1 and (self.tls is None or srv not in self.tls):
            kind = "proxy" if self.model.kind == "listen" else "backend"
            one = tlsconn.for_server(srv.model, self.st.state.config.global_,
                                     f"{kind} '{self.model.name}'")
            self.tls = {**(self.tls or {}), srv: one}

    def refresh_cookies(self) -> None:
        """Each server's cookie value: its own `cookie`, else its dynamic one while
        dynamic cookies are on and keyed (made from its current address and port)."""
        if self.model.cookie is None:
            self.srv_cookie = {s: None for s in self.st.servers}
            return
        st = self.st
        key = st.dyn_cookie_key.encode("utf-8", "surrogateescape") if st.dyn_cookie_on and \
            st.dyn_cookie_key else None
        values: dict[ServerState, bytes | None] = {}
        for s in st.servers:
            if s.model.cookie:
                values[s] = s.model.cookie.encode()
            elif key is not None:
                values[s] = cookie.dynamic_value(key, s.addr, s.port)
            else:
                values[s] = None
        self.srv_cookie = values
        self.ctable = cookie.CookieTable((v, s) for s, v in values.items())


class FrontendRT:
    __slots__ = (
        "model", "st", "name", "req_rules", "res_rules", "switching", "default_be", "own_be",
        "after_rules", "stats_rules",
        "t_client", "t_http_request", "t_keep_alive", "t_tarpit", "t_client_fin",
        "client_close", "server_close", "bufsize", "maxhdr", "head_max", "errorfiles", "log",
        "mode", "stats_uri", "ff", "ff_cache", "ot", "ot_cache", "ot_any", "counters",
        "dontlognull", "ignore_probes",
        "maxconn", "httplog", "redirect_rules", "active", "tcp_conn_rules", "tcp_sess_rules",
        "tcp_content_rules", "buffer_req", "monitor_uri", "monitor_fail", "unique_id",
        "unique_id_hdr", "restrict_names", "log_be_src", "comp", "comp_any", "comp_level",
        "cap_req", "cap_res", "cap_cookie", "rate_lim", "rate_sec", "rate_curr", "rate_prev",
        "max_srv_conns",
    )

    def __init__(self, model: Proxy, st: FrontendState, rt: Runtime) -> None:
        t = model.timeouts
        o = model.options
        self.model = model
        self.st = st
        self.name = model.name
        self.mode = model.mode
        self.counters = st.counters
        self.req_rules = _ruleset(model.http_request_rules)
        self.res_rules = _ruleset(model.http_response_rules)
        self.after_rules = _ruleset(model.http_after_response_rules)
        # `stats http-request` rules, run on requests for the stats page
        self.stats_rules = _ruleset(model.stats_http_request_rules)
        self.redirect_rules = _ruleset(model.redirect_rules)
        self.tcp_conn_rules = _ruleset(model.tcp_request_connection_rules)
        self.tcp_sess_rules = _ruleset(model.tcp_request_session_rules)
        self.tcp_content_rules = _ruleset(model.tcp_request_content_rules)
        self.buffer_req = o.http_buffer_request
        self.monitor_uri = model.monitor_uri.encode("latin-1") if model.monitor_uri else None
        self.monitor_fail = tuple(acl.as_condition(c) for c in model.monitor_fail) or None
        self.restrict_names = (model.restrict_hdr_names
                               if model.restrict_hdr_names != "preserve" else None)
        # unique-id-format / unique-id-header (None when not configured)
        self.unique_id = (actions.compile_format(model.unique_id_format)
                          if model.unique_id_format else None)
        self.unique_id_hdr = (model.unique_id_header.lower().encode("latin-1")
                              if model.unique_id_header and self.unique_id is not None
                              else None)
        self.switching: list[tuple[Any, BackendRT | None, Any]] = []
        for r in model.switching_rules:
            if r.name_fmt:
                self.switching.append((acl.as_condition(r.cond), None,
                                       actions.compile_format(r.name_fmt)))
            else:
                self.switching.append((acl.as_condition(r.cond),
                                       rt.backends.get(r.backend or ""), None))
        self.default_be = rt.backends.get(model.default_backend or "")
        self.own_be = rt.backends.get(model.name) if model.is_backend else None
        # capture request|response header: ((lower-cased name, len), ...) or None
        self.cap_req = tuple((n.encode("latin-1"), size)
                             for n, size in model.captures_req) or None
        self.cap_res = tuple((n.encode("latin-1"), size)
                             for n, size in model.captures_res) or None
        cc = model.capture_cookie
        self.cap_cookie = (cc[0].encode("latin-1"), cc[1]) if cc is not None else None
        # rate-limit sessions: the limit, and the sessions of this second and the last
        # (lb.proxy.listener estimates the rate as HAProxy's freq_ctr does)
        self.rate_lim = model.rate_limit_sessions
        self.rate_sec = 0
        self.rate_curr = 0
        self.rate_prev = 0
        # max-session-srv-conns: idle private server connections a client connection
        # keeps (lb.proxy.private)
        self.max_srv_conns = model.max_session_srv_conns
        self.t_client = t.client
        self.t_http_request = t.http_request if t.http_request is not None else t.client
        self.t_keep_alive = (t.http_keep_alive if t.http_keep_alive is not None
                             else self.t_http_request)
        self.t_tarpit = t.tarpit if t.tarpit is not None else t.connect
        self.t_client_fin = t.client_fin
        self.client_close = o.httpclose
        # either option in a frontend closes the server side too (HAProxy's
        # h1_set_srv_conn_mode: server-close == httpclose for the server connection)
        self.server_close = o.http_server_close or o.httpclose
        g = rt.config.global_
        self.bufsize = g.tune_bufsize
        self.head_max = self.bufsize - min(g.tune_maxrewrite, self.bufsize // 2) - HTX_SLACK
        self.maxhdr = g.tune_http_maxhdr
        self.errorfiles = actions.compile_pages(model.errorfiles)
        self.log = _traffic_log(model, rt.config)
        # its log format has %bi/%bp: server connections note their own address
        self.log_be_src = bool(self.log is not None and self.log.fmt is not None
                               and self.log.fmt.be_src)
        self.httplog = o.httplog or bool(model.log_format)
        self.dontlognull = o.dontlognull
        self.ignore_probes = o.http_ignore_probes
        self.stats_uri = model.stats.uri.encode("latin-1") if model.stats else None
        self.ff = model.forwardfor
        self.ff_cache: dict[str, h1.ForwardForRule | None] = {}
        self.ot = model.originalto
        self.ot_cache: dict[str, h1.OriginalToRule | None] = {}
        # whether any request of this frontend may carry X-Original-To (a backend
        # of the configuration has the option, or this frontend)
        self.ot_any = self.ot is not None or any(
            p.originalto is not None for p in rt.config.proxies if p.is_backend)
        # `compression` here or on a backend: requests choose an algorithm
        # (lb.proxy.txn), at the level of tune.comp.maxlevel
        self.comp = model.compression
        self.comp_any = self.comp is not None or any(
            p.compression is not None for p in rt.config.proxies if p.is_backend)
        self.comp_level = g.tune_comp_maxlevel
        self.maxconn = model.maxconn
        self.active = 0  # accepted connections counted against maxconn (lb.proxy.listener)

    def forwardfor(self, be: BackendRT) -> h1.ForwardForRule | None:
        try:
            return self.ff_cache[be.name]
        except KeyError:
            rule = h1.merge_forwardfor(self.ff, be.ff)
            self.ff_cache[be.name] = rule
            return rule

    def originalto(self, be: BackendRT) -> h1.OriginalToRule | None:
        try:
            return self.ot_cache[be.name]
        except KeyError:
            rule = h1.merge_originalto(self.ot, be.ot)
            self.ot_cache[be.name] = rule
            return rule

    def route(self, ctx: Any) -> BackendRT | None:
        """use_backend rules, then default_backend, then a listen's own servers. A
        TCP frontend may name an HTTP backend (the connection is upgraded)."""
        for cond, be, fmt in self.switching:
            if cond is not None and not cond.evaluate(ctx):
                continue
            if be is not None:
                return be
            if fmt is not None:
                name = fmt.render(ctx).decode("latin-1")
                found = ctx.rt.backends.get(name)
                if found is not None and (found.mode == self.mode or self.mode == "tcp"):
                    return found
                break  # dynamic miss: default_backend, later rules are not tried
            else:
                break
        if self.default_be is not None:
            return self.default_be
        return self.own_be


class Runtime:
    """One running configuration generation."""

    def __init__(self, config: Config, state: State | None = None,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.config = config
        self.state = state if state is not None else State(config)
        self.loop = loop or asyncio.get_event_loop()
        # the connection deadlines of this generation, on one loop timer
        self.wheel = TimerWheel(self.loop)
        # the sends of each turn of the loop, made together at its end (sockio)
        self.sendq = SendQueue(self.loop)
        self.pid = os.getpid()
        # epoch = loop.time() + epoch_offset (request dates without a time() call)
        self.epoch_offset = time.time() - self.loop.time()
        g = config.global_
        sockbufs = sockopts.buffer_options(g.tune_rcvbuf_server, g.tune_sndbuf_server)
        # map converters find the lists the configuration loaded (and the CLI changes)
        refs = config.pattern_refs
        with maps.using(maps.MapSource(refs, load=False) if refs is not None
                        else maps.current()):
            self.backends: dict[str, BackendRT] = {
                name: BackendRT(bst.model, bst, self.loop, sockbufs, self.sendq)
                for name, bst in self.state.backends.items()}
            self.frontends: dict[str, FrontendRT] = {
                name: FrontendRT(fst.model, fst, self)
                for name, fst in self.state.frontends.items()}
        self.maxconn = g.maxconn
        self.actconn = 0
        self.conns: set[Any] = set()  # live client-side connections
        self.servers_listening: list[Any] = []
        self.listeners: list[Any] = []  # lb.proxy.listener.Listener, in bind order
        self.blocked: list[Any] = []  # listeners not accepting while a maxconn is reached
        self.ports: dict[str, list[int]] = {}
        self.active = 0  # admitted connections, all frontends (global maxconn)
        self.services: list[asyncio.Task[Any]] = []
        # test/introspection hook called with each finished transaction (None = off)
        self.txn_hook: Callable[[Any], None] | None = None
        # the `-d` traffic trace (lb.proxy.debugtrace.DebugTrace; None = off)
        self.trace: Any = None
        # `busy-polling` (lb.proxy.eventloop.BusyPoller; None = the loop sleeps)
        self.busy_poller: BusyPoller | None = None
        self.state.listeners.append(self._server_event)

    def clock(self) -> float:
        """The loop's time, ``loop.time()`` (read in C when compiled on uvloop)."""
        return self.wheel.now()

    def start_busy_polling(self) -> None:
        """`busy-polling`: poll without sleeping until a soft stop (HAProxy stops it
        then too, so that an old process draining its connections leaves the core to
        the new one)."""
        if self.busy_poller is None:
            self.busy_poller = BusyPoller(self.loop)
            self.busy_poller.start()
            self.state.busy_polling = True

    def stop_busy_polling(self) -> None:
        if self.busy_poller is not None:
            self.busy_poller.stop()
            self.busy_poller = None
            self.state.busy_polling = False

    def _cookies_changed(self, be_state: Any) -> None:
        be = self.backends.get(be_state.name)
        if be is not None:
            be.refresh_cookies()

    def _server_event(self, event: str, info: dict[str, Any]) -> None:
        """A server's state, weight or maxconn changed: queued requests may move. A
        frontend or the process limit changed from the CLI: the listeners follow. The
        process started to stop: busy polling ends."""
        srv = info.get("server")
        if srv is not None and event.startswith("server_"):
            # idle connections go to the old address, or speak the old way
            if event in ("server_addr", "server_ssl"):
                be = self.backends.get(srv.backend.name)
                if event == "server_ssl" and be is not None:
                    be.tls_turned(srv)
                pool = be.idle.get(srv) if be is not None else None
                for sc in list(pool or ()):
                    sc.close()
                if pool:
                    pool.clear()
                if event == "server_addr":  # a dynamic cookie follows the address
                    self._cookies_changed(srv.backend)
            lbqueue.server_changed(srv, self.loop.time())
        elif event == "process_stopping":
            self.stop_busy_polling()
        elif event == "dyncookie_changed":
            self._cookies_changed(info["backend"])
        elif event == "frontend_changed" or event == "maxconn_changed":
            from lb.proxy import listener as lmod

            if event == "maxconn_changed":
                self.maxconn = self.state.maxconn or self.config.global_.maxconn
                lmod.limits_changed(self)
            else:
                lmod.frontend_changed(self, info["frontend"])

    async def stop(self) -> None:
        """Close listeners, end every connection and tunnel, stop services."""
        self.state.stopping = True
        self.stop_busy_polling()
        self.sendq.flush()
        for srv in self.servers_listening:
            srv.close()
        for lst in self.listeners:
            lst.close()
        for t in list(self.state.tunnels.values()):
            t.kill(b"K")
        for c in list(self.conns):
            tr = getattr(c, "transport", None)
            if tr is not None and not tr.is_closing():
                tr.abort()
        for be in self.backends.values():
            for pool in be.idle.values():
                for sc in list(pool):
                    sc.close()
                pool.clear()
        for task in self.services:
            task.cancel()
        for srv in self.servers_listening:
            try:
                await asyncio.wait_for(srv.wait_closed(), 2.0)
            except (TimeoutError, Exception):
                pass
        await asyncio.sleep(0)
