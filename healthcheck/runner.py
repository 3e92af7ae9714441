"""The health-check runner: one scheduler for every checked server, and check I/O.

Owns: scheduling (`inter`, `fastinter`, `downinter`, first checks staggered across
the first interval, `spread-checks` jitter), running a compiled check program
(``healthcheck.steps``) over a real socket with the `timeout check` rules of
spec §7.1, and applying results to runtime state: check status/code/duration
for stats, the rise/fall counter (``healthcheck.status``), UP/DOWN/NOLB changes
through ``ServerState.set_operational``, HAProxy's log lines (``messages``),
`on-marked-down shutdown-sessions`, `on-marked-up shutdown-backup-sessions`, and
the `slowstart` weight ramp.

Design: a single heap of due times served by one TimerHandle; each due check
runs as a short-lived task (connect, send, expect, close) and then schedules the
next one. No thread, no task sleeping per server. MAINT servers and servers whose
checks were disabled from the CLI (`ServerState.check_enabled`) are skipped. Checks
run over TLS for `ssl`/`check-ssl` servers, with the server's own context
(lb.tls.backend: its CA, client certificate, verification, versions; `check-sni`,
`check-alpn`), and send a PROXY v1 line when asked;
`track` servers are not checked but mirror the tracked server's changes.

Must not import: lb.proxy, lb.cli, lb.__main__ (lb never imports healthcheck).
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import ipaddress
import math
import os
import random
import socket
import ssl
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from healthcheck import messages
from healthcheck.agent import HEALTH_WORDS, AgentOutcome, parse_reply, run_agent
from healthcheck.external import run_external
from healthcheck.sampling import CheckRuntime, CheckSample
from healthcheck.status import CHECK_STATUSES, Result, health_fraction, next_health
from healthcheck.steps import (
    BUFSIZE,
    Connect,
    Eval,
    Expect,
    HttpSend,
    Outcome,
    Program,
    RunContext,
    Step,
    VarAction,
    compile_spec,
    ws_close_frame,
)
from lb import srvadmin
from lb.config.addresses import socket_path
from lb.config.model import Global, Proxy
from lb.http import proxyproto
from lb.proxy import dial, sockopts
from lb.state import (
    ADMIN_DRAIN,
    OP_RUNNING,
    OP_STARTING,
    OP_STOPPED,
    OP_STOPPING,
    BackendState,
    ServerState,
    State,
)
from lb.tls import backend as tls_backend

LogEvent = Callable[[BackendState, str, str], None]

_LINGER0 = struct.pack("ii", 1, 0)
_STATIC_ALGOS = frozenset(("static-rr",))
_HASH_ALGOS = frozenset(("source", "uri", "url_param", "hdr", "rdp-cookie", "hash"))


def stderr_log_event(be: BackendState, level: str, text: str) -> None:
    """Default sink: HAProxy's stderr mirror (`[WARNING]  (pid) : text`)."""
    print(messages.stderr_line(level, text, os.getpid()), file=sys.stderr, flush=True)


def event_log_sink(state: State, pid: int | None = None) -> LogEvent:
    """A ``log_event`` sending each line to its backend's `log` targets via lb.log
    (with HAProxy's stderr mirror, including the quoted backend-empty form, unless
    ``mirror`` is false: a line HAProxy only logs)."""
    from lb import log as lblog

    events: dict[str, Any] = {}

    def sink(be: BackendState, level: str, text: str, mirror: bool = True) -> None:
        ev = events.get(be.name)
        if ev is None:
            ev = events[be.name] = lblog.EventLog(be.model, state.config.global_, pid)
        ev.send(level, text, mirror=mirror, mirror_text=messages.stderr_text(text))
        if state.email_alerts is not None:
            state.email_alerts(be, level, text)

    return sink


async def service(state: State, loop: asyncio.AbstractEventLoop | None = None) -> None:
    """A data-plane service (``lb.proxy.runner.start(..., services=[service])``):
    checks every server of ``state`` until cancelled."""
    hc = HealthChecker(state, event_log_sink(state))
    await hc.start()
    try:
        await asyncio.Event().wait()
    finally:
        await hc.stop()


@dataclass(frozen=True, slots=True)
class CheckResult:
    status: str  # CHECK_STATUSES code
    code: int = 0  # HTTP status (0 when none)
    desc: str = ""  # detail text (`info:` in logs)
    duration_ms: int = -1
    ws_closed: bool = False  # a WebSocket was opened and closed with a close frame


# --------------------------------------------------------------------------- one check


class _CheckProtocol(asyncio.Protocol):
    """Collects a check's response bytes and wakes the check coroutine."""

    __slots__ = ("transport", "buf", "eof", "error", "waiter")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        room = BUFSIZE - len(self.buf)
        if room > 0:
            self.buf += data[:room]
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake()

    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def wait(self, loop: asyncio.AbstractEventLoop, deadline: float) -> bool:
        """Wait for more input until ``deadline`` (loop time); False on timeout."""
        if self.eof:
            return True
        fut = loop.create_future()
        self.waiter = fut
        timer = loop.call_at(deadline, _expire, fut)
        try:
            await fut
        finally:
            timer.cancel()
            self.waiter = None
        return fut.result() is None


def _expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_result(False)


def _close(transport: asyncio.Transport | None, linger: bool = False) -> None:
    if transport is None or transport.is_closing():
        return
    if linger:
        transport.close()
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER0)
        except OSError:
            pass
    transport.abort()  # RST: no TIME_WAIT left behind by thousands of checks


def _errno_text(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


@functools.lru_cache(maxsize=4096)
def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


@functools.lru_cache(maxsize=64)
def tls_context(verify: str | None, sni: str | None) -> ssl.SSLContext:
    """Client TLS context of checks: `verify none`, or system CAs (+ name check with sni)."""
    if verify == "none":
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        c.check_hostname = False
        c.verify_mode = ssl.CERT_NONE
        return c
    c = ssl.create_default_context()
    c.check_hostname = bool(sni)
    return c


def server_proxy(srv: ServerState) -> bool:
    """PROXY line on checks: `check-send-proxy`, or `send-proxy` unless `port`/`addr`
    moved the check elsewhere."""
    m = srv.model
    return m.check_send_proxy or (bool(srv.proxy_proto) and not m.check_port
                                  and not m.check_addr)


def server_local_header(srv: ServerState) -> bytes | None:
    """The v2 LOCAL header a check of a `send-proxy-v2` server starts with, with the
    TLVs of `proxy-v2-options` that do not name a client (CRC32C, SSL), as HAProxy
    2.6.12 sends it; None for a v1 server (its check sends a v1 line)."""
    if srv.proxy_proto != 2:
        return None
    opts = srv.pp_opts
    return proxyproto.local_v2(proxyproto.SSL_NONE if opts & proxyproto.OPT_SSL else b"",
                               bool(opts & proxyproto.OPT_CRC32C))


# id(server model) -> (the model, its check contexts by the ALPN list they offer)
_contexts: dict[int, tuple[Any, dict[str | None, ssl.SSLContext]]] = {}


def server_context(srv: ServerState, alpn: str | None = None) -> ssl.SSLContext:
    """The TLS context of a server's checks: the server's own (lb.tls.backend),
    offering ``alpn`` (a comma-separated list) instead of its `alpn` when given. One
    whose context cannot be made gets one that trusts nothing: its checks fail."""
    m = srv.model
    hit = _contexts.get(id(m))
    if hit is None or hit[0] is not m:
        if len(_contexts) >= 4096:  # (servers of configurations reloaded since)
            _contexts.clear()
        hit = _contexts[id(m)] = (m, {})
    ctx = hit[1].get(alpn)
    if ctx is None:
        g = srv.backend.state.config.global_
        made = tls_backend.prepare(m, g, f"backend '{srv.backend.name}'", alpn=alpn).context
        ctx = hit[1][alpn] = made if made is not None else ssl.SSLContext(
            ssl.PROTOCOL_TLS_CLIENT)
    return ctx


def server_tls(srv: ServerState) -> tuple[ssl.SSLContext | None, str | None]:
    """TLS for a server's checks: `check-ssl`, or `ssl` unless `port`/`addr` moved the
    check elsewhere (spec §7.1); the context offers `check-alpn` (else `alpn`) and
    the SNI is `check-sni` (a server's `sni` expression is its traffic's)."""
    m = srv.model
    if m.check_ssl or (m.ssl and not m.check_port and not m.check_addr):
        return server_context(srv, m.check_alpn), m.check_sni
    return None, None


def server_tls_for(srv: ServerState) -> Callable[[str | None], ssl.SSLContext]:
    """The contexts of a server's `connect` rules, by the ALPN list they offer."""
    return functools.partial(server_context, srv)


def _step_tls(step: Connect, tls: ssl.SSLContext | None, sni: str | None,
              tls_for: Callable[[str | None], ssl.SSLContext] | None,
              ) -> tuple[ssl.SSLContext, str | None]:
    """The context and SNI of a TLS connect: a rule's own `sni`/`alpn` first; the
    server's choice (an implicit or `default` connect) takes `check-sni` and the
    context of its checks; an explicit `ssl` rule, the server's context."""
    if step.tls is None and tls is not None:
        context = tls if step.alpn is None or tls_for is None else tls_for(step.alpn)
        return context, step.sni or sni
    if tls_for is not None:
        return tls_for(step.alpn), step.sni
    return tls or tls_context("none", None), step.sni


async def _open_tcp(loop: asyncio.AbstractEventLoop, host: str, port: int,
                    deadline: float, sockbufs: sockopts.SockOpts,
                    source: sockopts.SourceBinder | None, at_step: str,
                    ) -> tuple[_CheckProtocol | None, Outcome | None]:
    """A check's TCP connection, or the outcome of its failure."""
    try:
        if not _is_ip(host):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            host = infos[0][4][0]
        async with asyncio.timeout_at(deadline):
            if sockbufs or source is not None:
                _, proto = await sockopts.connect(loop, _CheckProtocol, host, port,
                                                  sockbufs, source)
            else:
                _, proto = await loop.create_connection(_CheckProtocol, host, port)
    except TimeoutError:
        return None, Outcome("L4TOUT", 0, at_step)
    except socket.gaierror as exc:
        return None, Outcome("SOCKERR", 0, _errno_text(exc))
    except OSError as exc:
        return None, Outcome("L4CON", 0, _errno_text(exc) + at_step)
    return proto, None


async def _open_unix(loop: asyncio.AbstractEventLoop, path: str, at_step: str,
                     ) -> tuple[_CheckProtocol | None, Outcome | None]:
    """A check's connection to a server that is a local socket: made or refused at
    once, and a refusal is a socket error to HAProxy 2.6.12, not a layer-4 one."""
    try:
        sock = dial.dial_unix(path)
    except OSError as exc:
        return None, Outcome("SOCKERR", 0,
                             f"General socket error ({_errno_text(exc)}){at_step}")
    _, proto = await loop.create_unix_connection(_CheckProtocol, sock=sock)
    return proto, None


async def run_program(program: Program, host: str, port: int, ctx: RunContext, *,
                      inter: float, timeout_connect: float | None,
                      timeout_check: float | None, tls: ssl.SSLContext | None = None,
                      sni: str | None = None, send_proxy: bool = False,
                      proxy_v2: bytes | None = None, sockbufs: sockopts.SockOpts = (),
                      source: sockopts.SourceBinder | None = None,
                      tls_for: Callable[[str | None], ssl.SSLContext] | None = None,
                      ) -> CheckResult:
    """Run one check against host:port and return its result (never raises).
    ``sockbufs``: the server-side socket buffer sizes (tune.rcvbuf/sndbuf.server);
    ``source``: the local address to connect from (`source`); ``proxy_v2``: the v2
    header to start with when ``send_proxy`` (else a v1 line); ``tls``/``sni``: the
    TLS of the server's own checks, ``tls_for``: the server's contexts for a
    `connect` rule's TLS, by the `alpn` it offers (None: the server's)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + inter  # the whole check fits in `inter` unless `timeout check`
    conn_deadline = deadline
    if timeout_check and timeout_connect:
        conn_deadline = min(deadline, start + timeout_connect)
    proto: _CheckProtocol | None = None
    step: Step | None = None
    last: Step | None = None
    outcome: Outcome | None = None
    connected = False
    try:
        for step in program.steps:
            if isinstance(step, Connect):
                if proto is not None:
                    _close(proto.transport)
                h = step.addr or host
                path = socket_path(h)
                if path is not None:
                    proto, failed = await _open_unix(loop, path, program.step_text(step))
                else:
                    proto, failed = await _open_tcp(
                        loop, h, step.target_port(ctx, port), conn_deadline, sockbufs,
                        source, program.step_text(step))
                if proto is None:
                    outcome = failed
                    break
                connected = True
                assert proto.transport is not None
                # (%bi, %bp; a local socket has no address: `unix`, 0)
                ctx.sample.local = proto.transport.get_extra_info("sockname") or dial.UNIX_ENDPOINT
                if timeout_check:
                    deadline = loop.time() + timeout_check
                if step.send_proxy if step.send_proxy is not None else send_proxy:
                    if proxy_v2 is not None:  # a v2 LOCAL header, no addresses
                        proto.transport.write(proxy_v2)
                    elif path is not None:
                        proto.transport.write(proxyproto.v1("", 0, "", 0))  # UNKNOWN
                    else:
                        local = proto.transport.get_extra_info("sockname")
                        peer = proto.transport.get_extra_info("peername")
                        # the check connection's own addresses, as HAProxy 2.6.12
                        proto.transport.write(proxyproto.v1(local[0], local[1],
                                                            peer[0], peer[1]))
                ctx.tls = False
                if step.tls if step.tls is not None else tls is not None:
                    assert proto.transport is not None
                    context, name = _step_tls(step, tls, sni, tls_for)
                    try:
                        async with asyncio.timeout_at(deadline):
                            tr = await loop.start_tls(proto.transport, proto, context,
                                                      server_hostname=name)
                    except TimeoutError:
                        outcome = Outcome("L6TOUT", 0, program.step_text(step))
                        break
                    except (OSError, ssl.SSLError, ConnectionError) as exc:
                        outcome = Outcome("L6RSP", 0, tls_backend.handshake_text(exc)
                                          + program.step_text(step))
                        break
                    if tr is None:
                        outcome = Outcome("L6RSP", 0, "SSL handshake failure")
                        break
                    proto.transport = tr  # type: ignore[assignment]
                    ctx.tls = True
            elif isinstance(step, VarAction):
                step.run(ctx)
                continue  # (not a step a result names, as in HAProxy)
            elif isinstance(step, Expect):
                assert proto is not None
                while True:
                    if proto.error is not None and not proto.buf:
                        # a network error before any byte of answer (HAProxy: SOCKERR)
                        outcome = Outcome("SOCKERR", 0, _errno_text(proto.error)
                                          + program.step_text(step))
                        break
                    verdict, out = step.evaluate(bytes(proto.buf), proto.eof, ctx)
                    if verdict is Eval.CONTINUE:
                        break
                    if verdict is Eval.STOP:
                        outcome = out
                        break
                    if proto.eof:  # nothing more will come (steps never WAIT at EOF)
                        outcome = Outcome("L7RSP", ctx.code, program.step_text(step))
                        break
                    if not await proto.wait(loop, deadline):
                        text = program.step_text(step)
                        outcome = Outcome(step.tout_status or "L7TOUT", ctx.code, text)
                        break
                if outcome is not None:
                    break
            else:  # a send step
                assert proto is not None and proto.transport is not None
                if isinstance(step, HttpSend):
                    ctx.reset_response()
                proto.buf.clear()
                if proto.transport.is_closing():
                    outcome = Outcome("SOCKERR", 0, _errno_text(proto.error)
                                      if proto.error else "Connection closed")
                    break
                data = step.render(ctx)
                if isinstance(data, Outcome):  # (a `send-binary-lf` that gave no hex)
                    outcome = data
                    break
                if data:
                    proto.transport.write(data)
            last = step
        if outcome is None:
            outcome = program.success(ctx, last)
    except asyncio.CancelledError:
        if proto is not None:
            _close(proto.transport)
        raise
    except Exception as exc:  # never let one check kill the scheduler
        outcome = Outcome("SOCKERR" if not connected else "L7RSP", 0, _errno_text(exc))
    ws_closed = False
    if proto is not None:
        if ctx.ws_open and outcome.status in ("L7OK", "L7OKC") and proto.transport:
            proto.transport.write(ws_close_frame())
            _close(proto.transport, linger=True)
            ws_closed = True
        else:
            _close(proto.transport)
    duration = int((loop.time() - start) * 1000)
    return CheckResult(outcome.status, outcome.code, outcome.desc, duration, ws_closed)


_PROGRAMS: dict[int, tuple[Proxy, Program]] = {}


def program_for(backend: Proxy) -> Program:
    """The compiled check of a backend model (compiled once per model object)."""
    hit = _PROGRAMS.get(id(backend))
    if hit is None or hit[0] is not backend:
        hit = (backend, compile_spec(backend.check))
        _PROGRAMS[id(backend)] = hit
    return hit[1]


_binders: dict[Any, sockopts.SourceBinder] = {}


def server_source(srv: ServerState) -> sockopts.SourceBinder | None:
    """The `source` a server's checks connect from (its own, else its backend's), as
    HAProxy's checks do."""
    src = srv.model.source or srv.backend.model.source
    if src is None:
        return None
    binder = _binders.get(src)
    if binder is None:
        binder = _binders[src] = sockopts.SourceBinder(src)
    return binder


def check_target(srv: ServerState) -> tuple[str, int]:
    """Address and port a check connects to (`addr`/`port` server options)."""
    host = srv.model.check_addr or srv.addr
    port = srv.model.check_port or srv.port or 0
    return host, port


def state_header(srv: ServerState, node: str) -> str:
    """The `x-haproxy-server-state` value of `http-check send-state` (spec §7.4)."""
    from healthcheck.status import server_state_word

    be = srv.backend
    word = server_state_word(srv.health, srv.rise, srv.fall, srv.op != OP_STOPPED,
                             srv.op == OP_STOPPING, srv.check_enabled)
    return (f"{word}; address={srv.addr}; port={srv.port}; name={be.name}/{srv.name}; "
            f"node={node}; weight={srv.eweight}/{be.total_weight()}; "
            f"scur={srv.cur_conns}/{be.counters.scur}; qcur={len(srv.queue)}")


def server_sockbufs(g: Global) -> sockopts.SockOpts:
    """Checks connect as traffic does: with tune.rcvbuf.server / tune.sndbuf.server."""
    return sockopts.buffer_options(g.tune_rcvbuf_server, g.tune_sndbuf_server)


async def check_once(srv: ServerState, backend: Proxy, now: float | None = None, *,
                     node: str = "", key_factory: Callable[[], bytes] | None = None
                     ) -> CheckResult:
    """Run one check of ``srv`` as its backend defines it; state is not changed."""
    program = program_for(backend)
    g = srv.backend.state.config.global_
    node = node or g.node or socket.gethostname()
    host, port = check_target(srv)
    ctx = RunContext(server_running=srv.op != OP_STOPPED,
                     state_header=state_header(srv, node)
                     if program.send_state else None,
                     key_factory=key_factory, disable404=program.disable404,
                     sample=CheckSample(srv, CheckRuntime(srv.backend.state), (host, port)))
    tls, sni = server_tls(srv)
    return await run_program(program, host, port, ctx, inter=srv.model.inter,
                             timeout_connect=backend.timeouts.connect,
                             timeout_check=backend.timeouts.check, tls=tls, sni=sni,
                             send_proxy=server_proxy(srv),
                             proxy_v2=server_local_header(srv), sockbufs=server_sockbufs(g),
                             source=server_source(srv), tls_for=server_tls_for(srv))


# --------------------------------------------------------------------------- scheduler


class _Entry:
    __slots__ = ("srv", "be", "program", "task", "warmup_start", "check_due")

    def __init__(self, srv: ServerState, be: BackendState, program: Program | None) -> None:
        self.srv = srv
        self.be = be
        self.program = program
        self.task: asyncio.Task[None] | None = None
        self.warmup_start = 0.0
        self.check_due = math.inf  # when its next check runs (older heap items are void)


_CHECK = 0
_WARMUP = 1
_AGENT = 2


def next_interval(srv: ServerState) -> float:
    """`inter` when fully up, `downinter` when fully down, else `fastinter`."""
    m = srv.model
    if srv.health == srv.rise + srv.fall - 1:
        return m.inter
    if srv.op == OP_STOPPED and srv.health == 0:
        return m.downinter or m.inter
    return m.fastinter or m.inter


class HealthChecker:
    """Checks every server with `check` in a State and applies the results."""

    def __init__(self, state: State, log_event: LogEvent | None = None, *,
                 rng: random.Random | None = None) -> None:
        self.state = state
        self.log_event: LogEvent = log_event or stderr_log_event
        self.rng = rng or random.Random()
        g = state.config.global_
        self.spread = max(0, min(50, g.spread_checks))
        self.node = g.node or socket.gethostname()
        self.sockbufs = server_sockbufs(g)
        self.runtime = CheckRuntime(state)  # what the checks' formats may name
        self.entries: list[_Entry] = []
        self.agents: list[_Entry] = []  # servers with `agent-check`
        for be in state.backends.values():
            if be.model.disabled:
                continue  # never started: no check
            program = compile_spec(be.model.check)
            for srv in be.servers:
                if srv.model.check and not srv.model.track:
                    self.entries.append(_Entry(srv, be, program))
                if srv.agent is not None:
                    self.agents.append(_Entry(srv, be, None))
        # tracked server -> servers mirroring it (`track [be/]srv`), newest first as
        # HAProxy walks its tracker list
        self.trackers: dict[int, list[ServerState]] = {}
        for be in state.backends.values():
            for srv in be.servers:
                if srv.model.track:
                    bname, _, sname = srv.model.track.rpartition("/")
                    tbe = state.backends.get(bname) if bname else be
                    target = tbe.by_name.get(sname) if tbe is not None else None
                    if target is not None and target is not srv:
                        self.trackers.setdefault(id(target), []).insert(0, srv)
        self._heap: list[tuple[float, int, int, _Entry]] = []
        self._seq = 0
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = False
        self._in_tick = False

    # ---- lifecycle
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._running = True
        now = self._loop.time()
        # first checks spread as HAProxy 2.6 spreads them: over the shortest interval
        # above 1 s among all checks, or the check's own interval when that is longer
        n = len(self.entries)
        own = [next_interval(e.srv) for e in self.entries]
        spread = min((i for i in own if i > 1.0), default=0.0)
        for pos, e in enumerate(self.entries):
            self._push(now + max(spread, own[pos]) * pos / n, _CHECK, e)
        for pos, e in enumerate(self.agents):
            assert e.srv.agent is not None
            self._push(now + e.srv.agent.inter * pos / len(self.agents), _AGENT, e)
        checked = {id(e.srv): e for e in self.entries}
        for be in self.state.backends.values():
            for srv in be.servers:  # restored warming up (lb.server_state_apply)
                if srv.op == OP_STARTING:
                    self._restart_warmup(checked.get(id(srv)) or _Entry(srv, be, None))
        self.state.health_analysis = self.apply_analysis
        self._arm()

    def _restart_warmup(self, e: _Entry) -> None:
        """A server a server-state file left starting warms up again from the
        start of its slowstart, where its algorithm follows weights live (a server
        without a check too: its entry only carries the ramp)."""
        srv = e.srv
        now = time.time()
        slow = srv.model.slowstart
        if slow <= 0 or not _dynamic(e.be.model) or self._loop is None:
            srv.set_operational(OP_RUNNING, now, by="slowstart", logged=True)
            return
        e.warmup_start = now
        srv.set_eweight(_ramp_weight(srv.uweight, 0.0, slow), now)
        self._push(self._loop.time() + max(1.0, slow / 20), _WARMUP, e)

    async def stop(self) -> None:
        self._running = False
        if self.state.health_analysis == self.apply_analysis:
            self.state.health_analysis = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        tasks = [e.task for e in self.entries + self.agents if e.task is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            try:
                await t
            except BaseException:  # noqa: S110 - cancelled checks end quietly
                pass
        self._heap.clear()

    # ---- heap
    def _push(self, due: float, kind: int, e: _Entry) -> None:
        if kind == _CHECK:
            e.check_due = due
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, kind, e))
        if self._running and not self._in_tick and self._heap[0][1] == self._seq:
            self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._heap and self._loop is not None and self._running:
            self._timer = self._loop.call_at(self._heap[0][0], self._tick)

    def _tick(self) -> None:
        self._timer = None
        assert self._loop is not None
        now = self._loop.time()
        heap = self._heap
        self._in_tick = True
        while heap and heap[0][0] <= now + 0.0005:
            due, _, kind, e = heapq.heappop(heap)
            if kind == _CHECK and due != e.check_due:
                continue  # brought forward since (`on-error`: fastinter)
            if kind == _WARMUP:
                self._warmup(e)
                continue
            if kind == _AGENT:
                agent = e.srv.agent
                assert agent is not None
                if agent.enabled:  # (in maintenance too: the agent may end it)
                    e.task = self._loop.create_task(self._run_agent(e))
                else:
                    self._push(now + agent.inter, _AGENT, e)  # look again later
                continue
            srv = e.srv
            if srv.in_maint or not srv.check_enabled:
                self._push(now + srv.model.inter, _CHECK, e)  # look again later
                continue
            e.task = self._loop.create_task(self._run(e))
        self._in_tick = False
        self._arm()

    def _jitter(self, interval: float) -> float:
        if not self.spread:
            return interval
        rv = interval * self.spread / 100
        return interval + rv - 2 * rv * self.rng.random()

    async def _run(self, e: _Entry) -> None:
        srv, be = e.srv, e.be
        srv.check_running = True
        try:
            host, port = check_target(srv)
            ctx = RunContext(server_running=srv.op != OP_STOPPED,
                             state_header=state_header(srv, self.node)
                             if e.program.send_state else None,
                             disable404=e.program.disable404,
                             sample=CheckSample(srv, self.runtime, (host, port)))
            if be.model.check.kind == "external":
                ext = await run_external(be.model.check, be, srv, host, port,
                                         be.model.timeouts.check or srv.model.inter)
                result = CheckResult(ext.status, ext.code, "", ext.duration_ms)
            else:
                tls, sni = server_tls(srv)
                result = await run_program(
                    e.program, host, port, ctx, inter=srv.model.inter,
                    timeout_connect=be.model.timeouts.connect,
                    timeout_check=be.model.timeouts.check, tls=tls, sni=sni,
                    send_proxy=server_proxy(srv), proxy_v2=server_local_header(srv),
                    sockbufs=self.sockbufs, source=server_source(srv),
                    tls_for=server_tls_for(srv))
        finally:
            srv.check_running = False
            e.task = None
        if not self._running:
            return
        try:
            self.apply_result(srv, result, time.time())
        finally:  # a failing log sink must not stop this server's checks
            assert self._loop is not None
            self._push(self._loop.time() + self._jitter(next_interval(srv)), _CHECK, e)

    async def _run_agent(self, e: _Entry) -> None:
        srv, be = e.srv, e.be
        agent = srv.agent
        assert agent is not None
        agent.running = True
        try:
            host = agent.addr or srv.model.check_addr or srv.addr
            path = socket_path(host)
            outcome = await run_agent(host, agent.port, agent.send.encode("latin-1"),
                                      agent.inter, be.model.timeouts.connect,
                                      be.model.timeouts.check,
                                      functools.partial(dial.dial_unix, path)
                                      if path is not None else None)
        finally:
            agent.running = False
            e.task = None
        if not self._running:
            return
        try:
            self.apply_agent(srv, outcome, time.time())
        finally:
            assert self._loop is not None
            self._push(self._loop.time() + self._jitter(agent.inter), _AGENT, e)

    # ---- results → state
    def apply_agent(self, srv: ServerState, outcome: AgentOutcome, now: float) -> None:
        """Record one agent check and do what the agent said, in HAProxy 2.6's order:
        the administrative word, the weight, maxconn, then the health word. Only
        `down`/`stopped`/`fail` take a server down; an agent that cannot be reached
        changes nothing (the regular check judges reachability)."""
        agent = srv.agent
        if agent is None or not agent.enabled:
            return  # disabled while its check ran: the reply is ignored
        be = srv.backend
        prev = agent.status
        agent.duration = outcome.duration_ms
        agent.last_check = now
        if outcome.status == "INCOMPLETE":
            agent.desc = "Ignoring incomplete line from agent"
            return
        lines: list[tuple[str, str]] = []
        if outcome.status != "LINE":
            status, desc = outcome.status, outcome.desc
        else:
            reply = parse_reply(outcome.line)
            status, desc = "CHECKED", ""
            if reply.admin is not None:
                lines += srvadmin.change_admin(srv, reply.admin.lower(), now)
            warning = ""
            if reply.weight is not None:
                try:
                    weight = srvadmin.parse_weight(srv, reply.weight)
                except ValueError as exc:
                    warning = str(exc).rstrip("\n")
                else:
                    lines += srvadmin.change_weight(srv, weight, now)
            if reply.maxconn is not None:
                try:
                    srvadmin.change_maxconn(srv, reply.maxconn)
                except ValueError as exc:
                    warning = warning or str(exc)
            if reply.health is not None:
                status, agent.health = HEALTH_WORDS[reply.health.lower()]
                said = reply.description
                if not said or status == "L7OK":
                    said = reply.error or warning or said
                desc = f"via agent : {reply.health}" + (f" ({said})" if said else "")
            elif reply.error:
                desc = f"agent reports an error : {reply.error}"
            elif warning:
                desc = f"agent warns : {warning}"
        agent.status = status
        agent.code = 0
        agent.desc = desc
        for level, text in lines:
            self.log_event(be, level, text)
        row = CHECK_STATUSES[status]
        if row.result is Result.UNKNOWN:
            return  # no status change
        loghc = be.model.check.log_health_checks or be.model.options.log_health_checks
        why = messages.reason(row, 0, desc, outcome.duration_ms)
        if loghc and status != prev:
            self.log_event(be, "notice", messages.health_check(
                be.name, srv.name, srv.backup, row.result >= Result.PASSED, False, why,
                health_fraction(agent.health, agent.rise, agent.fall, srv.uweight),
                kind="Agent"))
        if loghc:
            why = ""
        if status == "L7STS" and not agent.health:
            if srv.in_maint:
                srv.set_operational(OP_STOPPED, now, reason=why, by="agent")
            elif srv.op != OP_STOPPED:
                self._mark_down(srv, be, why, now, by="agent")
        elif status == "L7OK":
            checked = srv.model.check and srv.check_enabled
            if (srv.op == OP_STOPPED and not srv.in_maint
                    and not (checked and srv.health < srv.rise) and self._tracked_up(srv)):
                self._mark_up(srv, be, why, now, by="agent")

    def apply_analysis(self, srv: ServerState, text: str) -> None:
        """`observe`: ``srv`` reached its `error-limit` (lb.hana). Its `on-error`
        action, as HAProxy 2.6 takes it: `fail-check` counts a failed check with
        status HANA and ``text`` as its info; `sudden-death` first lowers a healthy
        server to one failure from DOWN; `mark-down` takes it down at once. Every
        action, `fastinter` alone too, brings the next check forward to `fastinter`
        from now when that is set. A server without a running check is left as it
        is: there is no check status to set."""
        e = self._entry(srv)
        if e is None or not self._running:
            return
        mode = srv.model.on_error
        if mode == "sudden-death" and srv.health > srv.rise:
            srv.health = srv.rise + 1
        elif mode == "mark-down":
            srv.health = srv.rise
        if mode != "fastinter":
            self.apply_result(srv, CheckResult("HANA", desc=text), time.time())
        fast = srv.model.fastinter
        if fast and e.task is None and self._loop is not None:
            due = self._loop.time() + fast
            if due < e.check_due:
                self._push(due, _CHECK, e)

    def _tracked_up(self, srv: ServerState) -> bool:
        """A tracking server comes up only while the server it tracks is up."""
        if not srv.model.track:
            return True
        bname, _, sname = srv.model.track.rpartition("/")
        tbe = self.state.backends.get(bname) if bname else srv.backend
        target = tbe.by_name.get(sname) if tbe is not None else None
        return target is None or target.op != OP_STOPPED

    def apply_result(self, srv: ServerState, result: CheckResult, now: float) -> None:
        """Record one check result and carry out the state change it implies."""
        be = srv.backend
        row = CHECK_STATUSES[result.status]
        prev_status = srv.check_status
        srv.check_status = result.status
        srv.check_code = result.code
        srv.check_duration = result.duration_ms
        srv.check_desc = row.desc
        srv.check_info = result.desc
        srv.last_check = now
        h0 = srv.health
        h, moved = next_health(h0, srv.rise, srv.fall, row.result)
        srv.health = h
        if row.result is Result.FAILED and h0 > 0:
            srv.counters.chkfail += 1
        loghc = be.model.check.log_health_checks or be.model.options.log_health_checks
        why = messages.reason(row, result.code, result.desc, result.duration_ms)
        if loghc and (result.status != prev_status or moved):
            self.log_event(be, "notice", messages.health_check(
                be.name, srv.name, srv.backup, row.result >= Result.PASSED,
                row.result is Result.CONDPASS, why,
                health_fraction(h, srv.rise, srv.fall, srv.uweight)))
        if loghc:
            why = ""
        if row.result is Result.FAILED:
            if h == 0 and srv.op != OP_STOPPED:
                self._mark_down(srv, be, why, now)
        elif row.result is Result.PASSED:
            srv.hana_errors = 0
            if (h >= srv.rise and srv.op in (OP_STOPPED, OP_STOPPING) and not srv.in_maint
                    and (srv.agent is None or srv.agent.ok)):
                self._mark_up(srv, be, why, now)
        elif row.result is Result.CONDPASS:
            srv.hana_errors = 0
            if (h >= srv.rise and srv.op != OP_STOPPING and not srv.in_maint
                    and (srv.agent is None or srv.agent.ok)):
                self._mark_stopping(srv, be, why, now)

    def _propagate(self, srv: ServerState, now: float) -> None:
        """Mirror a state change on the servers tracking ``srv`` (logged `via b/s`)."""
        via = f" via {srv.backend.name}/{srv.name}"
        for t in self.trackers.get(id(srv), ()):
            if t.in_maint or t.op == srv.op:
                continue
            if srv.op == OP_STOPPED:
                self._mark_down(t, t.backend, via, now, by="track")
            elif srv.op == OP_STOPPING:
                self._mark_stopping(t, t.backend, via, now, by="track")
            elif t.op in (OP_STOPPED, OP_STOPPING):
                self._mark_up(t, t.backend, via, now, by="track")

    def _mark_down(self, srv: ServerState, be: BackendState, why: str, now: float,
                   by: str = "check") -> None:
        was_stopping = srv.op == OP_STOPPING
        be_was_up = any(s.usable for s in be.servers)
        sessions = srv.cur_conns
        srv.set_operational(OP_STOPPED, now, reason=why, by=by, logged=True)
        srv.counters.chkdown += 1
        if srv.model.on_marked_down == "shutdown-sessions":
            _kill_streams(srv, b"D")
        act, bck = be.usable_count()
        self.log_event(be, "notice" if was_stopping else "alert", messages.server_down(
            be.name, srv.name, srv.backup, why, act, bck, sessions, 0, len(srv.queue)))
        self._still_drained(srv, be)
        if be_was_up and not be.is_up:
            self.log_event(be, "emerg", messages.backend_down(be.name))
        self._propagate(srv, now)

    def _mark_stopping(self, srv: ServerState, be: BackendState, why: str,
                       now: float, by: str = "check") -> None:
        be_was_up = any(s.usable for s in be.servers)
        srv.set_operational(OP_STOPPING, now, reason=why, by=by, logged=True)
        act, bck = be.usable_count()
        self.log_event(be, "notice", messages.server_stopping(
            be.name, srv.name, srv.backup, why, act, bck, 0, len(srv.queue)))
        self._still_drained(srv, be)
        if be_was_up and not be.is_up:
            self.log_event(be, "emerg", messages.backend_down(be.name))
        self._propagate(srv, now)

    def _mark_up(self, srv: ServerState, be: BackendState, why: str, now: float,
                 by: str = "check") -> None:
        from_down = srv.op == OP_STOPPED
        slow = srv.model.slowstart
        e = self._entry(srv)
        ramp = (from_down and slow > 0 and _dynamic(be.model) and e is not None
                and self._loop is not None)
        if ramp:
            assert e is not None and self._loop is not None
            srv.eweight = _ramp_weight(srv.uweight, 0.0, slow)
            srv.set_operational(OP_STARTING, now, reason=why, by=by, logged=True)
            e.warmup_start = now
            self._push(self._loop.time() + max(1.0, slow / 20), _WARMUP, e)
        else:
            srv.eweight = srv.uweight  # a ramp cut short by a failure ends here
            srv.set_operational(OP_RUNNING, now, reason=why, by=by, logged=True)
        if (srv.model.on_marked_up == "shutdown-backup-sessions" and not srv.backup
                and srv.eweight > 0):
            for other in be.servers:
                if other.backup:
                    _kill_streams(other, b"U")
        act, bck = be.usable_count()
        self.log_event(be, "notice", messages.server_up(
            be.name, srv.name, srv.backup, why, act, bck, 0, len(srv.queue)))
        self._still_drained(srv, be)
        self._propagate(srv, now)

    def _still_drained(self, srv: ServerState, be: BackendState) -> None:
        """HAProxy 2.6 says a drained server stays drained after each state change."""
        if srv.admin & ADMIN_DRAIN:
            self.log_event(be, "notice", f"{srvadmin.server_label(srv)} remains in forced "
                           "drain mode.")

    def _warmup(self, e: _Entry) -> None:
        srv = e.srv
        if srv.op != OP_STARTING:
            return
        now = time.time()
        slow = srv.model.slowstart
        elapsed = now - e.warmup_start
        if elapsed >= slow:
            srv.set_eweight(srv.uweight, now)
            srv.set_operational(OP_RUNNING, now, by="slowstart", logged=True)
            return
        srv.set_eweight(_ramp_weight(srv.uweight, elapsed, slow), now)
        assert self._loop is not None
        self._push(self._loop.time() + max(1.0, slow / 20), _WARMUP, e)

    def _entry(self, srv: ServerState) -> _Entry | None:
        for e in self.entries:
            if e.srv is srv:
                return e
        return None


def _ramp_weight(uweight: int, elapsed: float, slowstart: float) -> int:
    if uweight <= 0:
        return 0
    return max(1, min(uweight, math.ceil(uweight * elapsed / slowstart)))


def _dynamic(backend: Proxy) -> bool:
    """Whether the backend's algorithm takes weight changes live (HAProxy's PROP_DYN)."""
    algo = backend.balance.algorithm
    if algo in _STATIC_ALGOS:
        return False
    if algo in _HASH_ALGOS:
        return backend.balance.hash_type == "consistent"
    return True


def _kill_streams(srv: ServerState, code: bytes) -> None:
    """Termination code b"D" (marked down) or b"U" (backup killed on up), as the
    data plane's Txn.kill / Tunnel.kill expect."""
    for stream in list(srv.streams):
        try:
            # an upgraded stream is ended through its tunnel, so the tunnel's close
            # path does the accounting (Txn.kill alone leaves it in srv.streams)
            tunnel = getattr(stream, "tunnel", None)
            (tunnel if tunnel is not None else stream).kill(code)
        except Exception:  # noqa: S112 - a stream that cannot be killed is already gone
            continue
