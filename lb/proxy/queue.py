"""Server slots, ``maxconn`` / ``maxqueue`` waiting and ``timeout queue`` (spec §5.5).

Owns: who holds a server slot (``ServerState.cur_conns``), the two queues of
HAProxy (the backend queue for requests not bound to a server, each server's
queue for requests bound to it), their lengths in ``Counters.qcur/qmax``, the
order in which a freed slot is handed out (the oldest waiter of the server queue
and of the backend queue, the server queue winning ties), and the queue
positions logged as ``%sq/%bq``.

Two ways to use it:
- callbacks (the data plane): ``request_slot()`` returns the server at once or a
  ``Waiter``; the caller arms its own ``timeout queue`` deadline and calls
  ``cancel(waiter)`` on expiry (503 ``sQ``) or client abort (``CQ``); the waiter's
  ``callback(server_or_exception)`` runs when a slot is granted;
- ``await acquire(...)`` (asyncio) which does the same with a future.

Every slot taken must be given back with ``release(server, now)`` when the
request ends; a WebSocket tunnel keeps its slot for its whole life, so
``maxconn`` also caps concurrent tunnels per server.

Must not import: lb.cli, lb.log, healthcheck (L4; uses lb.state objects only).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

# algorithms for which a non-empty backend queue means "every server is full":
# new requests then queue behind the waiters instead of jumping ahead
# (HAProxy: leastconn, first, roundrobin, static-rr).
FAIR_ALGORITHMS = frozenset({"first", "leastconn", "roundrobin", "static-rr"})

_seq = itertools.count(1)


class QueueError(Exception):
    """Base class of the outcomes that end with an error response."""


class NoServer(QueueError):
    """No usable server at all: 503, termination ``SC``, server ``<NOSRV>``."""


class QueueFull(QueueError):
    """The bound server's queue reached ``maxqueue``. A persistent (direct)
    request may be redispatched (``option redispatch``, not force-persist) by
    asking again with ``server=None``; otherwise 503."""

    def __init__(self, server: Any) -> None:
        super().__init__(server.name)
        self.server = server


class QueueTimeout(QueueError):
    """``timeout queue`` expired: 503, termination ``sQ``."""


class Waiter:
    """One request waiting for a slot."""

    __slots__ = ("backend", "server", "since", "seq", "key", "avoid", "force",
                 "callback", "done", "tw", "srv_idx", "be_idx", "srv_pos", "be_pos",
                 "granted")

    def __init__(self, backend: Any, since: float, key: bytes | None, avoid: Any,
                 force: bool) -> None:
        self.backend = backend
        self.server: Any = None  # the server whose queue holds it (None: backend queue)
        self.since = since
        self.seq = next(_seq)  # age order across both queues
        self.key = key
        self.avoid = avoid
        self.force = force  # force-persist: never redistributed
        self.callback: Any = None  # callable(server | QueueError)
        self.done = False
        self.tw = 0.0  # seconds spent queued, set when granted
        self.srv_idx = 0
        self.be_idx = 0
        self.srv_pos = 0  # %sq: requests served from the server queue before this one
        self.be_pos = 0  # %bq: same for the backend queue
        self.granted: Any = None


def queue_timeout(backend: Any) -> float | None:
    """``timeout queue``, defaulting to ``timeout connect`` (seconds, None = none)."""
    t = backend.model.timeouts
    return t.queue if t.queue is not None else t.connect


def has_room(srv: Any) -> bool:
    """May take a request now: unlimited, or a free slot and nobody queued for it."""
    return not srv.maxconn or (not srv.queue and srv.cur_conns < srv.maxconn)


def _free_slot(srv: Any) -> bool:
    return not srv.maxconn or srv.cur_conns < srv.maxconn


def _take(srv: Any) -> None:
    srv.cur_conns += 1
    srv.backend.balancer.take_conn(srv)


def _count_lb(be: Any, srv: Any) -> None:
    be.counters.lbtot += 1
    srv.counters.lbtot += 1


def _qcount(owner: Any, delta: int) -> None:
    c = owner.counters
    c.qcur += delta
    if c.qcur > c.qmax:
        c.qmax = c.qcur


def request_slot(backend: Any, server: Any, now: float, key: bytes | None = None,
                 avoid: Any = None, force: bool = False) -> Any:
    """Get a slot for one request, HAProxy's assign_server_and_queue.

    ``server`` is the server the request is bound to (persistence, use-server) or
    None to load balance with ``key``/``avoid`` (see lb.balance), or to take the
    backend's ``dispatch`` when it has one (never queued, as in HAProxy). Returns the
    ServerState holding a new slot, or a queued ``Waiter`` (set its ``callback``
    at once; call ``cancel`` on timeout/abort). Raises NoServer or QueueFull."""
    be = backend
    if server is None:
        if be.dispatch is not None:  # no load balancing: `dispatch`, `option transparent`
            be.dispatch.cur_conns += 1
            return be.dispatch
        if be.queue and be.model.balance.algorithm in FAIR_ALGORITHMS:
            return _enqueue(be, None, now, key, avoid, force)
        server = be.balancer.pick(key, avoid)
        if server is None:
            if not be.balancer.available():
                raise NoServer(be.name)
            return _enqueue(be, None, now, key, avoid, force)
        if server is not avoid:
            _count_lb(be, server)
    if has_room(server):
        _take(server)
        return server
    mq = server.maxqueue
    if mq and len(server.queue) >= mq:
        raise QueueFull(server)
    return _enqueue(be, server, now, key, avoid, force)


def _enqueue(be: Any, srv: Any, now: float, key: bytes | None, avoid: Any,
             force: bool) -> Waiter:
    w = Waiter(be, now, key, avoid, force)
    w.server = srv
    if srv is None:
        be.queue.append(w)
        w.be_idx = be.queue_idx
        _qcount(be, +1)
    else:
        srv.queue.append(w)
        w.srv_idx = srv.queue_idx
        _qcount(srv, +1)
        be.balancer.take_conn(srv)  # in-flight count (leastconn) includes queued
    return w


def _unlink(w: Waiter) -> None:
    srv = w.server
    if srv is None:
        be = w.backend
        try:
            be.queue.remove(w)
        except ValueError:
            return
        _qcount(be, -1)
    else:
        try:
            srv.queue.remove(w)
        except ValueError:
            return
        _qcount(srv, -1)
        w.backend.balancer.drop_conn(srv)


def cancel(w: Waiter) -> None:
    """Leave the queue without a slot (timeout queue, client abort). Idempotent."""
    if w.done:
        return
    w.done = True
    # positions as HAProxy logs them for a request that left without a slot
    # (checked against HAProxy 2.6.12: a lone `timeout queue` victim logs 0/1)
    if w.server is None:
        w.be_pos = w.backend.queue_idx - w.be_idx + 1
    else:
        w.srv_pos = w.server.queue_idx - w.srv_idx + 1
    _unlink(w)


def _serves_backend_queue(srv: Any) -> bool:
    """Whether a freed slot on srv may serve the backend queue (HAProxy: usable,
    and not a backup unless the backend runs on backups and srv is the first
    backup or all backups are used)."""
    if not srv.usable:
        return False
    if not srv.backup:
        return True
    bal = srv.backend.balancer
    if getattr(bal, "srv_act", 0):
        return False
    return getattr(bal, "allbackups", False) or getattr(bal, "fbck", None) is srv


def _next_waiter(srv: Any) -> Waiter | None:
    sq = srv.queue
    bq = srv.backend.queue
    p = sq[0] if sq else None
    pp = bq[0] if bq and _serves_backend_queue(srv) else None
    if p is None:
        return pp
    if pp is None or p.seq <= pp.seq:
        return p
    return pp


def _grant(w: Waiter, srv: Any, now: float) -> None:
    be = w.backend
    if w.server is None:
        be.queue.popleft()
        be.queue_idx += 1
        w.be_pos = be.queue_idx - w.be_idx
        _qcount(be, -1)
    else:
        srv.queue.popleft()
        srv.queue_idx += 1
        w.srv_pos = srv.queue_idx - w.srv_idx
        _qcount(srv, -1)
    w.done = True
    w.server = srv
    w.granted = srv
    w.tw = max(0.0, now - w.since)
    srv.cur_conns += 1
    be.balancer.take_conn(srv)
    cb = w.callback
    if cb is not None:
        cb(srv)


def serve(srv: Any, now: float) -> int:
    """Hand srv's free slots to the oldest eligible waiters; returns how many."""
    n = 0
    while _free_slot(srv):
        w = _next_waiter(srv)
        if w is None:
            break
        _grant(w, srv, now)
        n += 1
    return n


def release(srv: Any, now: float) -> None:
    """A request or tunnel holding a slot on srv ended."""
    srv.cur_conns -= 1
    if srv is srv.backend.dispatch:
        return
    srv.backend.balancer.drop_conn(srv)
    if srv.queue or srv.backend.queue:
        serve(srv, now)


def server_changed(srv: Any, now: float) -> None:
    """Call after a server's state, weight or maxconn changed (lb.state event).

    A server that can take traffic pulls waiters from the backend queue; a
    stopped server hands its own waiters back to load balancing when
    ``option redispatch`` is set (except force-persist ones), as HAProxy's
    pendconn_redistribute does."""
    be = srv.backend
    if srv.usable:
        if be.queue or srv.queue:
            serve(srv, now)
        return
    if srv.is_running or not srv.queue:
        return
    if not be.model.options.redispatch or be.model.options.persist:
        return
    for w in [w for w in srv.queue if not w.force]:
        _unlink(w)
        w.server = None
        _replace(w, now)


def _replace(w: Waiter, now: float) -> None:
    be = w.backend
    try:
        got = request_slot(be, None, now, w.key, w.avoid, w.force)
    except QueueError as e:
        w.done = True
        if w.callback is not None:
            w.callback(e)
        return
    if isinstance(got, Waiter):
        # keep the caller's waiter object: move the fresh queue entry's place to it
        q = be.queue if got.server is None else got.server.queue
        q[q.index(got)] = w
        w.server = got.server
        w.srv_idx, w.be_idx = got.srv_idx, got.be_idx
        return
    w.done = True
    w.server = got
    w.granted = got
    w.tw = max(0.0, now - w.since)
    if w.callback is not None:
        w.callback(got)


async def acquire(backend: Any, server: Any, timeout: float | None,
                  key: bytes | None = None, avoid: Any = None,
                  force: bool = False) -> tuple[Any, Waiter | None]:
    """asyncio form of ``request_slot``: returns (server, waiter or None when no
    wait happened; its ``tw``/``srv_pos``/``be_pos`` feed the log). Raises
    QueueTimeout after ``timeout`` seconds (None = wait forever), NoServer or
    QueueFull. Cancellation leaves the queue (or gives the slot back)."""
    loop = asyncio.get_running_loop()
    got = request_slot(backend, server, loop.time(), key, avoid, force)
    if not isinstance(got, Waiter):
        return got, None
    w = got
    fut: asyncio.Future[Any] = loop.create_future()

    def done(res: Any) -> None:
        if not fut.done():
            fut.set_result(res)

    w.callback = done

    def expire() -> None:
        if not w.done:
            cancel(w)
            done(QueueTimeout(backend.name))

    timer = loop.call_later(timeout, expire) if timeout is not None else None
    try:
        res = await fut
    except asyncio.CancelledError:
        if w.granted is not None:
            release(w.granted, loop.time())
        else:
            cancel(w)
        raise
    finally:
        if timer is not None:
            timer.cancel()
    if isinstance(res, BaseException):
        raise res
    return res, w
