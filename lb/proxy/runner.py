"""Start and run the data plane.

Owns: ``start(config, ...) -> Runtime`` (in-loop API: resolves server addresses,
binds every listener, starts extra services) and ``run(config, opts, services=()) ->
int`` (uvloop, pidfile, signals through lb.lifecycle). A service is
``async def service(state, loop) -> None`` started once the listeners are up (health
checks, stats socket, ...).

Must not import: lb.cli, healthcheck, lb.__main__ (services are passed in).
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Any

from lb import logring
from lb.config.model import Config, Proxy, RunOptions
from lb.proxy import eventloop, sockopts
from lb.proxy import listener as lmod
from lb.proxy.client import ClientConn
from lb.proxy.compiled import Runtime
from lb.state import State

Service = Callable[[State, asyncio.AbstractEventLoop], Awaitable[None]]


async def start_service(svc: Service, state: State,
                        loop: asyncio.AbstractEventLoop) -> asyncio.Task[None]:
    """Start ``svc`` as a task. A service with an ``open`` coroutine function (the
    stats sockets) binds through it first: its OSError reaches the caller, which
    makes it fatal at start-up as HAProxy does, and what it returns is passed on
    (``svc(state, loop, opened)``)."""
    opener = getattr(svc, "open", None)
    if opener is None:
        return loop.create_task(svc(state, loop))  # type: ignore[arg-type]
    opened = await opener(state, loop)
    return loop.create_task(svc(state, loop, opened))  # type: ignore[call-arg,arg-type]

try:
    from lb.log import get_logger as _get_logger
except Exception:  # the log layer is missing or broken: plain structlog
    import structlog

    _get_logger = structlog.get_logger  # type: ignore[assignment]

_log = _get_logger("lb.runner")


class StartError(Exception):
    """Start-up failed (a bind error); ``str()`` is the HAProxy-style alert text."""


async def _resolve(rt: Runtime) -> None:
    loop = rt.loop
    for srv in rt.state.all_servers():
        if srv.unix_path is not None:
            continue  # a local socket: nothing to resolve
        host = srv.addr
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if host == "*":  # HAProxy's other spelling of 0.0.0.0 (a transparent server)
            host = "0.0.0.0"
        try:
            ipaddress.ip_address(host)
            srv.addr = host
            continue
        except ValueError:
            pass
        try:
            infos = await loop.getaddrinfo(host, srv.port or 80, type=1)
            srv.addr = infos[0][4][0]
        except OSError:
            srv.addr = host  # resolution retried by create_connection at connect time


def listener_options(config: Config, fe: Proxy, family: int) -> sockopts.SockOpts:
    """The options of a frontend's listening socket, which every accepted connection
    inherits: buffer sizes (tune.rcvbuf/sndbuf.client), and for TCP, keepalive
    (option clitcpka or tcpka, clitcpka-idle/-cnt/-intvl), nolinger and
    tcp-smart-accept."""
    g = config.global_
    opts = sockopts.buffer_options(g.tune_rcvbuf_client, g.tune_sndbuf_client)
    if family not in (socket.AF_INET, socket.AF_INET6):
        return opts
    o = fe.options
    opts += sockopts.keepalive_options(o.clitcpka or o.tcpka, *fe.cli_tcpka)
    opts += sockopts.linger_reset(o.nolinger)
    if o.tcp_smart_accept:
        opts += sockopts.QUICKACK_OFF
    return opts


def _factory(rt: Runtime, fe: Any, lst: lmod.Listener) -> Callable[[], asyncio.Protocol]:
    # partial, not a lambda: this module runs as Python, and a lambda would cost a
    # Python frame on every accept
    if fe.mode == "tcp":
        from lb.proxy.tcp import TcpClient
        return partial(TcpClient, rt, fe, lst)
    return partial(ClientConn, rt, fe, lst)


async def start(config: Config, opts: RunOptions | None = None,
                services: Iterable[Service] = (), state: State | None = None) -> Runtime:
    """Bind everything and return the running Runtime (``.state``, ``.ports``,
    ``await .stop()``). Raises StartError when a listener cannot be created."""
    loop = asyncio.get_running_loop()
    rt = Runtime(config, state, loop)
    if opts is not None and opts.debug:
        from lb.proxy.debugtrace import DebugTrace

        rt.trace = DebugTrace()
    await _resolve(rt)
    for be in rt.backends.values():  # dynamic cookies are made from resolved addresses
        be.refresh_cookies()
    try:
        for fe in rt.frontends.values():
            ports = rt.ports.setdefault(fe.name, [])
            for idx, b in enumerate(fe.model.binds):
                # a socket handed down by the master (lb.master), else our own bind
                sock = lmod.inherited_socket(fe.name, idx)
                try:
                    if sock is None:
                        sock = lmod.bind_socket(b)
                except lmod.BindError as e:
                    addr = b.raw or f"{b.host}:{b.port}"
                    raise StartError(f"Starting frontend {fe.name}: cannot bind socket "
                                     f"({e}) [{addr}]") from e
                try:
                    sockopts.apply(sock, listener_options(config, fe.model, sock.family))
                except OSError as e:
                    sock.close()
                    raise StartError(f"Starting frontend {fe.name}: cannot set socket "
                                     f"options ({e.strerror or e})") from e
                lst = lmod.Listener(rt, fe, b)
                lst.factory = _factory(rt, fe, lst)
                lst.backlog = lmod.backlog_for(b, fe.model.backlog, fe.maxconn)
                lst.sock = sock  # our own accept loop (maxconn leaves excess in the backlog)
                rt.listeners.append(lst)
                try:
                    lst.start()
                except OSError as e:
                    addr = b.raw or f"{b.host}:{b.port}"
                    raise StartError(f"Starting frontend {fe.name}: cannot listen "
                                     f"({e.strerror or e}) [{addr}]") from e
                name = sock.getsockname()
                lst.port = name[1] if isinstance(name, tuple) else 0
                ports.append(lst.port)
        for svc in services:
            try:
                rt.services.append(await start_service(svc, rt.state, loop))
            except OSError as e:
                raise StartError(e.strerror or str(e)) from e
        if config.global_.busy_polling:
            rt.start_busy_polling()
    except BaseException:
        await rt.stop()
        raise
    return rt


# the lifecycle signals whose default action would stop or kill the process: blocked
# from before the listeners bind until lb.lifecycle's handlers are installed, so that
# one sent as soon as a port answers (a script's SIGTTOU, SIGHUP) waits for them
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGHUP,
                 signal.SIGTTOU, signal.SIGTTIN}


def _unblock_stop_signals() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


def _tune_gc() -> None:
    """Everything built at start-up (config, tables, state) lives until exit: move it
    out of the collector's view, and let the young generation grow before a pass
    (per-request objects are freed by reference counting; cycles are rare)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20000, 50, 100)


def run(config: Config, opts: RunOptions, services: Iterable[Service] = (),
        ready: Callable[[bool], None] | None = None, state: State | None = None) -> int:
    """Run in the foreground until stopped (lb.lifecycle: SIGUSR1 soft stop,
    SIGTERM/SIGINT hard stop, SIGHUP dump, SIGTTOU/SIGTTIN pause/resume); 0 on a
    clean stop, 1 on failure. ``ready(ok)`` is told whether start-up succeeded
    (daemon mode). ``state``: the runtime State to serve from (server states
    already restored), else a fresh one."""
    from lb import lifecycle

    try:  # operational events as JSON lines off a terminal (no-op if already set up)
        from lb import log as _logmod
        _logmod.setup()
    except Exception:
        pass
    loop = eventloop.new_event_loop()
    asyncio.set_event_loop(loop)
    pidfile = opts.pidfile or config.global_.pidfile
    wrote_pid = False

    async def main() -> int:
        nonlocal wrote_pid
        try:
            rt = await start(config, opts, services, state)
        except StartError as e:
            _unblock_stop_signals()
            sys.stderr.write(f"[ALERT]    ({os.getpid()}) : {e}\n")
            if ready is not None:
                ready(False)
            return 1
        if pidfile:
            err = lifecycle.write_pidfile(pidfile)
            if err:  # fatal, as in HAProxy: scripts could never signal or reload us
                _unblock_stop_signals()
                sys.stderr.write(f"[ALERT]    ({os.getpid()}) : {err}\n")
                if ready is not None:
                    ready(False)
                await rt.stop()
                return 1
            wrote_pid = True
        lc = lifecycle.Lifecycle(rt)
        lc.install()
        _unblock_stop_signals()  # a SIGTERM sent while we were binding is handled now
        _tune_gc()
        lifecycle.signal_old_pids(opts.soft_stop_pids, opts.hard_stop_pids)
        try:
            _log.info("started", pid=os.getpid(), ports=rt.ports)
        except Exception:
            pass
        if ready is not None:
            ready(True)
        lifecycle.sd_notify(f"READY=1\nMAINPID={os.getpid()}")  # systemd Type=notify
        code = await lc.wait()
        try:
            _log.info("stopped", pid=os.getpid())
        except Exception:
            pass
        lc.uninstall()
        await rt.stop()
        await logring.drain()  # log lines on their way to TCP syslog servers
        return code

    # the lifecycle signals stay pending (not fatal) until the handlers are
    # installed; SIGUSR2 is ignored from the start (lb.lifecycle.SIGNALS)
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    try:
        return loop.run_until_complete(main())
    finally:
        _unblock_stop_signals()
        try:  # event lines whose batch timer did not fire before the loop stopped
            from lb import log as _logmod
            _logmod.flush_events()
        except Exception:
            pass
        if pidfile and wrote_pid:
            try:
                os.unlink(pidfile)
            except OSError:
                pass
        loop.close()
