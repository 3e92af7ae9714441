"""Start and run the data plane.

Owns: ``start(config, ...) -> Runtime`` (in-loop API: resolves server addresses,
binds every listener, starts extra services) and ``run(config, opts, services=()) ->
int`` (uvloop, pidfile, SIGINT/SIGTERM → clean exit 0). A service is
``async def service(state, loop) -> None`` started once the listeners are up (health
checks, stats socket, ...).

Must not import: lb.cli, healthcheck, lb.__main__ (services are passed in).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from lb.config.model import Config, RunOptions
from lb.proxy import listener as lmod
from lb.proxy.client import ClientConn
from lb.proxy.compiled import Runtime
from lb.state import State

Service = Callable[[State, asyncio.AbstractEventLoop], Awaitable[None]]

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
        host = srv.addr
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
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


def _factory(rt: Runtime, fe: Any, lst: lmod.Listener) -> Callable[[], asyncio.Protocol]:
    if fe.mode == "tcp":
        from lb.proxy.tcp import TcpClient
        return lambda: TcpClient(rt, fe, lst)
    return lambda: ClientConn(rt, fe, lst)


async def start(config: Config, opts: RunOptions | None = None,
                services: Iterable[Service] = (), state: State | None = None) -> Runtime:
    """Bind everything and return the running Runtime (``.state``, ``.ports``,
    ``await .stop()``). Raises StartError when a listener cannot be created."""
    loop = asyncio.get_running_loop()
    rt = Runtime(config, state, loop)
    await _resolve(rt)
    try:
        for fe in rt.frontends.values():
            ports = rt.ports.setdefault(fe.name, [])
            for b in fe.model.binds:
                try:
                    sock = lmod.bind_socket(b)
                except lmod.BindError as e:
                    addr = b.raw or f"{b.host}:{b.port}"
                    raise StartError(f"Starting frontend {fe.name}: cannot bind socket "
                                     f"({e}) [{addr}]") from e
                lst = lmod.Listener(rt, fe, b)
                server = await loop.create_server(
                    _factory(rt, fe, lst), sock=sock,
                    backlog=lmod.backlog_for(b, fe.model.backlog, fe.maxconn))
                lst.server = server
                name = sock.getsockname()
                lst.port = name[1] if isinstance(name, tuple) else 0
                ports.append(lst.port)
                rt.servers_listening.append(server)
    except BaseException:
        await rt.stop()
        raise
    for svc in services:
        rt.services.append(loop.create_task(svc(rt.state, loop)))
    return rt


def run(config: Config, opts: RunOptions, services: Iterable[Service] = ()) -> int:
    """Run in the foreground until SIGINT/SIGTERM; 0 on a clean stop, 1 on failure."""
    try:
        import uvloop
        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    pidfile = opts.pidfile or config.global_.pidfile

    async def main() -> int:
        try:
            rt = await start(config, opts, services)
        except StartError as e:
            sys.stderr.write(f"[ALERT]    ({os.getpid()}) : {e}\n")
            return 1
        if pidfile:
            try:
                with open(pidfile, "w") as f:
                    f.write(f"{os.getpid()}\n")
            except OSError as e:
                sys.stderr.write(f"[ALERT]    ({os.getpid()}) : cannot create pidfile "
                                 f"{pidfile} ({e.strerror})\n")
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            _log.info("started", pid=os.getpid(), ports=rt.ports)
        except Exception:
            pass
        await stop.wait()
        try:
            _log.info("stopping", pid=os.getpid())
        except Exception:
            pass
        await rt.stop()
        return 0

    try:
        return loop.run_until_complete(main())
    finally:
        if pidfile:
            try:
                os.unlink(pidfile)
            except OSError:
                pass
        loop.close()
