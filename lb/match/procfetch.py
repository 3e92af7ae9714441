"""Fetches that read the running process rather than the request.

Owns the functions behind HAProxy's internal-state fetches (``nbsrv``,
``be_conn``, ``connslots``, ``queue``, ``avg_queue``, ``fe_conn``, the ``srv_*``
family, the rate fetches, the timeouts) and the process-wide ones (``stopping``,
``env``, ``date``, ``date_us``, ``rand``, ``uuid``). ``lb.match.sample`` lists them
in its ``FETCHES`` table; this module does not import it.

Each function takes the sample context and the fetch's parsed arguments and
returns a list of values (empty: no sample). A proxy argument is its name as
written, ``""`` for "the current one"; a server argument is ``(backend name or None,
server name)``, None for "the current backend". The config check (``lb.config.build``) has already refused names
that do not exist, as HAProxy's argument resolution does. At run time a name is
looked up in the context's runtime (``ctx.rt``: its ``backends`` and
``frontends`` by name, each with the live ``st`` state); a context without one
(a unit test's, say) gives no sample.

"The current backend" is HAProxy's rule proxy. lb reads it from the transaction:
its backend once one is chosen, else the frontend's own backend (a ``listen``
section). The two differ only for a ``listen`` section's response rules or logs
after its ``use_backend`` picked another backend; lb then counts that backend.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

from lb.match.converters import DATE_UNITS

Values = list[Any]
Fetch = Callable[[Any, tuple], Values]

# lb.state's server admin bits and operational states (kept in step by
# tests/test_procfetch.py; lb.match may not import lb.state)
_ADMIN_MAINT = 0x01 | 0x02 | 0x20
_OP_STOPPED = 0


def _backend(ctx: Any, name: str) -> Any:
    """The named backend's live state (BackendState), or the current one for ``""``."""
    rt = getattr(ctx, "rt", None)
    if rt is None:
        return None
    if name:
        be = rt.backends.get(name)
    else:
        be = getattr(ctx, "be", None)
        if be is None:
            fe = getattr(ctx, "fe", None)
            be = rt.backends.get(fe.name) if fe is not None else None
    return be.st if be is not None else None


def _frontend(ctx: Any, name: str) -> Any:
    """The named frontend's live state (FrontendState), or the current one for ``""``."""
    if not name:
        fe = getattr(ctx, "fe", None)
        return fe.st if fe is not None else None
    rt = getattr(ctx, "rt", None)
    fe = rt.frontends.get(name) if rt is not None else None
    return fe.st if fe is not None else None


def _server(ctx: Any, ref: tuple[str | None, str]) -> Any:
    be = _backend(ctx, ref[0] or "")
    return be.by_name.get(ref[1]) if be is not None else None


def _now(ctx: Any) -> float:
    """The clock the rate counters are fed with (lb.state.FreqCounter): the epoch."""
    return time.time()


def usable_servers(be: Any) -> int:
    """HAProxy's be_usable_srv: the usable active servers; failing those, 1 when the
    first usable backup takes all the traffic, else every usable backup."""
    act = bck = 0
    for s in be.servers:
        if s.usable:
            if s.model.backup:
                bck += 1
            else:
                act += 1
    if act:
        return act
    if bck and not be.model.options.allbackups:
        return 1
    return bck


def _queued(be: Any) -> int:
    """Requests waiting in the backend's queue and in its servers' queues."""
    return len(be.queue) + sum(len(s.queue) for s in be.servers)


def _backend_fetch(read: Callable[[Any, Any], int]) -> Fetch:
    def fn(ctx: Any, args: tuple) -> Values:
        be = _backend(ctx, args[0] if args else "")
        return [] if be is None else [read(be, ctx)]
    return fn


def _frontend_fetch(read: Callable[[Any, Any], int]) -> Fetch:
    def fn(ctx: Any, args: tuple) -> Values:
        fe = _frontend(ctx, args[0] if args else "")
        return [] if fe is None else [read(fe, ctx)]
    return fn


def _server_fetch(read: Callable[[Any, Any], Any]) -> Fetch:
    def fn(ctx: Any, args: tuple) -> Values:
        srv = _server(ctx, args[0]) if args else None
        return [] if srv is None else [read(srv, ctx)]
    return fn


def _stopped(s: Any) -> bool:
    """HAProxy's SRV_ST_STOPPED: down by its checks or from the CLI, or in
    maintenance (which stops a server there; drain does not)."""
    return bool(s.admin & _ADMIN_MAINT) or s.op == _OP_STOPPED


def _connslots(be: Any, ctx: Any) -> int:
    """Free connection and queue slots over the servers that are not down; -1 when
    one of them has no maxconn or no maxqueue (unlimited)."""
    total = 0
    for s in be.servers:
        if _stopped(s):
            continue
        if not s.maxconn or not s.model.maxqueue:
            return -1
        total += (s.maxconn - s.cur_conns) + (s.model.maxqueue - len(s.queue))
    return total


def _conn_free(be: Any, ctx: Any) -> int:
    """Free connection slots on the servers load balancing may pick now; -1 when one
    of them is unlimited."""
    act = any(s.usable and not s.model.backup for s in be.servers)
    allbackups = be.model.options.allbackups
    first_backup = True
    total = 0
    for s in be.servers:
        if not s.usable:
            continue
        if s.model.backup:
            take = not act and (allbackups or first_backup)
            first_backup = False
            if not take:
                continue
        if not s.maxconn:
            return -1
        if s.maxconn > s.cur_conns:
            total += s.maxconn - s.cur_conns
    return total


def _avg_queue(be: Any, ctx: Any) -> int:
    n = usable_servers(be)
    queued = _queued(be)
    return (queued + n - 1) // n if n > 0 else queued * 2


def _srv_is_up(s: Any, ctx: Any) -> bool:
    """Not in maintenance, and not down by its checks (a server without checks is up)."""
    if s.admin & _ADMIN_MAINT:
        return False
    return not s.model.check or s.op != _OP_STOPPED


def _srv_conn_free(s: Any, ctx: Any) -> int:
    if not s.maxconn:
        return -1
    return max(s.maxconn - s.cur_conns, 0)


def _ms(seconds: float | None) -> int:
    return int(round(seconds * 1000)) if seconds else 0


def _timeout(which: str, attr: str) -> Fetch:
    """``be_server_timeout``, ``be_tunnel_timeout``, ``fe_client_timeout``: the
    proxy's configured timeout in milliseconds (0 when unset)."""
    def fn(ctx: Any, args: tuple) -> Values:
        px = getattr(ctx, which, None)
        if px is None and which == "be":
            px = getattr(ctx, "fe", None)
        if px is None:
            return []
        return [_ms(getattr(px.model.timeouts, attr))]
    return fn


def _fe_defbe(ctx: Any, args: tuple) -> Values:
    fe = getattr(ctx, "fe", None)
    name = fe.model.default_backend if fe is not None else None
    return [name.encode("utf-8", "surrogateescape")] if name else []


def _stopping(ctx: Any, args: tuple) -> Values:
    rt = getattr(ctx, "rt", None)
    return [bool(rt is not None and rt.state.stopping)]


def env(ctx: Any, args: tuple) -> Values:
    name = args[0].decode("utf-8", "surrogateescape") if args else ""
    value = os.environ.get(name)
    return [] if value is None else [value.encode("utf-8", "surrogateescape")]


def date(ctx: Any, args: tuple) -> Values:
    """Seconds since the epoch, plus the offset; with a unit (``s``, ``ms``,
    ``us``) the date and the offset are in that unit."""
    offset = args[0] if args else 0
    unit = DATE_UNITS.get(args[1], 1) if len(args) > 1 and args[1] else 1
    now = time.time()
    return [int(now * unit) + offset]


def _date_us(ctx: Any, args: tuple) -> Values:
    return [int(time.time() * 1000000) % 1000000]


def rand(ctx: Any, args: tuple) -> Values:
    """A random 32-bit integer, or one in ``[0, range)``."""
    if args and args[0] > 0:
        return [random.getrandbits(32) * args[0] >> 32]
    return [random.getrandbits(32)]


def uuid4(ctx: Any, args: tuple) -> Values:
    return [str(uuid.uuid4()).encode("ascii")]


def check_uuid(args: tuple) -> str | None:
    if args and args[0] != 4:
        return "Unsupported UUID version: '" + str(args[0]) + "'"
    return None


# The fetches by the kind of their one argument (lb.match.sample lists them): a
# backend, a frontend, a server (with its output type), none.
BACKEND = {
    "avg_queue": _backend_fetch(_avg_queue),
    "be_conn": _backend_fetch(lambda be, ctx: be.counters.scur),
    "be_conn_free": _backend_fetch(_conn_free),
    "be_sess_rate": _backend_fetch(lambda be, ctx: be.counters.sess_rate.read(_now(ctx))),
    "connslots": _backend_fetch(_connslots),
    "nbsrv": _backend_fetch(lambda be, ctx: usable_servers(be)),
    "queue": _backend_fetch(lambda be, ctx: _queued(be)),
}
FRONTEND = {
    "fe_conn": _frontend_fetch(lambda fe, ctx: fe.counters.scur),
    "fe_req_rate": _frontend_fetch(lambda fe, ctx: fe.counters.req_rate.read(_now(ctx))),
    "fe_sess_rate": _frontend_fetch(lambda fe, ctx: fe.counters.sess_rate.read(_now(ctx))),
}
SERVER: dict[str, tuple[Fetch, str]] = {
    "srv_conn": (_server_fetch(lambda s, ctx: s.cur_conns), "int"),
    "srv_conn_free": (_server_fetch(_srv_conn_free), "int"),
    "srv_is_up": (_server_fetch(_srv_is_up), "bool"),
    "srv_iweight": (_server_fetch(lambda s, ctx: s.iweight), "int"),
    "srv_queue": (_server_fetch(lambda s, ctx: len(s.queue)), "int"),
    "srv_sess_rate": (_server_fetch(lambda s, ctx: s.counters.sess_rate.read(_now(ctx))),
                      "int"),
    "srv_uweight": (_server_fetch(lambda s, ctx: s.uweight), "int"),
    "srv_weight": (_server_fetch(lambda s, ctx: s.eweight), "int"),
}
TIMEOUTS = {
    "be_server_timeout": _timeout("be", "server"),
    "be_tunnel_timeout": _timeout("be", "tunnel"),
    "fe_client_timeout": _timeout("fe", "client"),
}
PROCESS = {
    "date_us": _date_us,
    "fe_defbe": _fe_defbe,
    "nbproc": lambda ctx, args: [1],
    "proc": lambda ctx, args: [1],
    "stopping": _stopping,
    "thread": lambda ctx, args: [0],
}


def nbsrv_of(ctx: Any, name: bytes) -> int | None:
    """The ``nbsrv`` converter: usable servers of the backend named by the sample."""
    be = _backend(ctx, name.decode("utf-8", "surrogateescape")) if name else None
    return None if be is None else usable_servers(be)


def srv_queue_of(ctx: Any, ref: bytes) -> int | None:
    """The ``srv_queue`` converter: queue length of ``[backend/]server``."""
    text = ref.decode("utf-8", "surrogateescape")
    be_name, _, srv_name = text.rpartition("/")
    if not srv_name:
        return None
    if not be_name:
        fe = getattr(ctx, "be", None) or getattr(ctx, "fe", None)
        be_name = fe.name if fe is not None else ""
        if not be_name:
            return None
    srv = _server(ctx, (be_name, srv_name))
    return None if srv is None else len(srv.queue)
