"""`option external-check`: a server's health is a program's exit status.

Owns running one check: the program (`external-check command`) with HAProxy's four
arguments (`<proxy_address> <proxy_port> <server_address> <server_port>`, the first
two `NOT_USED` for a backend without listeners) and only HAProxy's environment
(`HAPROXY_PROXY_*`, `HAPROXY_SERVER_*`, and `PATH` from `external-check path`,
empty by default), its standard streams closed, killed when it outlives the check's
timeout (`timeout check`, else `inter`). Exit 0 is PROCOK, another status PROCERR
with the status as code, a timeout PROCTOUT: HAProxy 2.6.12's statuses and texts
(`reason: External check error, code: 3`).

Must not import: lb.proxy, lb.cli (runs in the checking process, beside
healthcheck.runner).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from lb.config.model import CheckSpec
from lb.state import BackendState, ServerState

NOT_USED = "NOT_USED"
_KILL_GRACE = 1.0  # SIGTERM, then SIGKILL this much later


@dataclass(frozen=True, slots=True)
class ExternalResult:
    status: str  # PROCOK, PROCERR or PROCTOUT
    code: int  # the exit status (the previous one on a timeout, as HAProxy keeps it)
    duration_ms: int


def arguments(be: BackendState, srv: ServerState, host: str, port: int) -> list[str]:
    """The four arguments after the program's name."""
    paddr, pport = _proxy_address(be)
    return [paddr, pport, host, str(port)]


def _proxy_address(be: BackendState) -> tuple[str, str]:
    binds = be.model.binds
    if not binds:
        return NOT_USED, NOT_USED
    b = binds[0]  # (a listen section: where it listens)
    return b.host or "0.0.0.0", str(b.port)


def environment(spec: CheckSpec, be: BackendState, srv: ServerState, host: str,
                port: int) -> dict[str, str]:
    """HAProxy 2.6.12's variables, and nothing else from lb's environment."""
    paddr, pport = _proxy_address(be)
    m = srv.model
    return {
        "HAPROXY_PROXY_ADDR": "" if paddr == NOT_USED else paddr,
        "HAPROXY_PROXY_ID": str(be.model.puid),
        "HAPROXY_PROXY_NAME": be.name,
        "HAPROXY_PROXY_PORT": "" if pport == NOT_USED else pport,
        "HAPROXY_SERVER_ADDR": host,
        "HAPROXY_SERVER_CURCONN": str(srv.cur_conns),
        "HAPROXY_SERVER_ID": str(srv.puid),
        "HAPROXY_SERVER_MAXCONN": str(srv.maxconn or 0),
        "HAPROXY_SERVER_NAME": srv.name,
        "HAPROXY_SERVER_PORT": str(port),
        "HAPROXY_SERVER_PROTO": "h1" if be.model.mode == "http" else "tcp",
        "HAPROXY_SERVER_SSL": "1" if m.ssl else "0",
        "PATH": spec.external_path,
    }


async def run_external(spec: CheckSpec, be: BackendState, srv: ServerState, host: str,
                       port: int, timeout: float) -> ExternalResult:
    """Run the program once; its verdict."""
    start = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - start) * 1000)

    try:
        proc = await asyncio.create_subprocess_exec(
            spec.external_command, *arguments(be, srv, host, port),
            env=environment(spec, be, srv, host, port), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True)
    except OSError:  # not found, not executable: as a failed exec in HAProxy's child
        return ExternalResult("PROCERR", 1, took())
    try:
        code = await asyncio.wait_for(proc.wait(), max(timeout, 0.001))
    except TimeoutError:
        await _kill(proc)
        return ExternalResult("PROCTOUT", srv.check_code, took())
    except asyncio.CancelledError:
        await _kill(proc)
        raise
    if code < 0:  # killed by a signal
        code = 128 - code
    return ExternalResult("PROCOK" if code == 0 else "PROCERR", code, took())


async def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), _KILL_GRACE)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
