"""Slots, server/backend queues and timeout queue (lb.proxy.queue), spec §5.5.

Unit tests over real lb.state objects; the asyncio ones use generous margins."""

from __future__ import annotations

import asyncio

import pytest

from lb.config.model import BalanceSpec, Config, Options, Proxy, Server, Timeouts
from lb.proxy import queue as q
from lb.state import ADMIN_FMAINT, BackendState, State

CONNECT_5S = Timeouts(connect=5.0)

def backend(n: int = 2, maxconn: int = 1, maxqueue: int = 0, algo: str = "roundrobin",
            redispatch: bool = False, backups: tuple[int, ...] = (),
            timeouts: Timeouts = CONNECT_5S) -> BackendState:
    servers = tuple(Server(name=f"s{i + 1}", host="127.0.0.1", port=8000 + i, puid=i + 1,
                           maxconn=maxconn, maxqueue=maxqueue, backup=(i + 1) in backups)
                    for i in range(n))
    be = Proxy(name="b", caps=frozenset({"backend"}), kind="backend", mode="http",
               servers=servers, balance=BalanceSpec(algorithm=algo),
               options=Options(redispatch=redispatch), timeouts=timeouts)
    st = State(Config(proxies=(be,)), now=0.0)
    return st.backends["b"]


def test_free_slot_taken_at_once_and_released() -> None:
    be = backend()
    s = q.request_slot(be, None, 0.0)
    assert s.name == "s1" and s.cur_conns == 1
    assert be.counters.lbtot == 1 and s.counters.lbtot == 1
    q.release(s, 1.0)
    assert s.cur_conns == 0


def test_all_full_goes_to_backend_queue_then_oldest_first() -> None:
    be = backend(n=2, maxconn=1)
    s1 = q.request_slot(be, None, 0.0)
    s2 = q.request_slot(be, None, 0.0)
    assert {s1.name, s2.name} == {"s1", "s2"}
    granted: list[tuple[str, object]] = []
    w1 = q.request_slot(be, None, 1.0)
    w2 = q.request_slot(be, None, 2.0)
    assert isinstance(w1, q.Waiter) and isinstance(w2, q.Waiter)
    w1.callback = lambda r: granted.append(("w1", r))
    w2.callback = lambda r: granted.append(("w2", r))
    assert be.counters.qcur == 2 and be.counters.qmax == 2
    q.release(s2, 5.0)
    assert granted == [("w1", s2)]
    assert w1.tw == pytest.approx(4.0) and w1.be_pos == 1 and w1.srv_pos == 0
    assert s2.cur_conns == 1 and be.counters.qcur == 1
    q.release(s1, 6.0)
    assert granted[1] == ("w2", s1) and w2.be_pos == 2  # logged 0/1 then 0/2 [EMP]
    assert be.counters.qcur == 0 and be.counters.qmax == 2


def test_new_requests_queue_behind_waiters_for_fair_algorithms() -> None:
    be = backend(n=1, maxconn=1)
    s = q.request_slot(be, None, 0.0)
    w = q.request_slot(be, None, 0.0)
    assert isinstance(w, q.Waiter)
    s.cur_conns -= 1  # a slot frees without a release (e.g. maxconn raised)
    w2 = q.request_slot(be, None, 0.0)
    assert isinstance(w2, q.Waiter)  # no jumping ahead of w


def test_bound_request_waits_in_server_queue_with_maxqueue() -> None:
    be = backend(n=2, maxconn=1, maxqueue=1)
    s1 = be.servers[0]
    assert q.request_slot(be, s1, 0.0) is s1
    w = q.request_slot(be, s1, 0.0)
    assert isinstance(w, q.Waiter) and w.server is s1
    assert s1.counters.qcur == 1 and be.counters.qcur == 0
    with pytest.raises(q.QueueFull) as e:
        q.request_slot(be, s1, 0.0)
    assert e.value.server is s1
    got = []
    w.callback = got.append
    q.release(s1, 3.0)
    assert got == [s1] and w.srv_pos == 1 and w.be_pos == 0 and w.tw == 3.0


def test_freed_slot_serves_older_of_server_and_backend_queues() -> None:
    be = backend(n=1, maxconn=1)
    s1 = be.servers[0]
    assert q.request_slot(be, None, 0.0) is s1
    order: list[str] = []
    wb = q.request_slot(be, None, 1.0)  # backend queue, older
    ws = q.request_slot(be, s1, 2.0)  # server queue, newer
    wb.callback = lambda r: order.append("backend")
    ws.callback = lambda r: order.append("server")
    q.release(s1, 3.0)
    assert order == ["backend"]
    q.release(s1, 4.0)
    assert order == ["backend", "server"]


def test_cancel_leaves_queue_and_is_idempotent() -> None:
    be = backend(n=1, maxconn=1)
    s1 = q.request_slot(be, None, 0.0)
    w = q.request_slot(be, None, 0.0)
    q.cancel(w)
    q.cancel(w)
    assert be.counters.qcur == 0 and not be.queue
    q.release(s1, 1.0)
    assert s1.cur_conns == 0


def test_no_server_raises() -> None:
    be = backend(n=1)
    be.servers[0].set_admin(ADMIN_FMAINT, True, 0.0)
    with pytest.raises(q.NoServer):
        q.request_slot(be, None, 0.0)


def test_hash_to_full_server_is_bound() -> None:
    be = backend(n=2, maxconn=1, algo="uri")
    key = b"/some/object"
    s = q.request_slot(be, None, 0.0, key=key)
    w = q.request_slot(be, None, 0.0, key=key)
    assert isinstance(w, q.Waiter) and w.server is s  # waits for *that* server


def test_server_coming_up_serves_backend_queue() -> None:
    be = backend(n=2, maxconn=1)
    s1, s2 = be.servers
    s2.set_admin(ADMIN_FMAINT, True, 0.0)
    assert q.request_slot(be, None, 0.0) is s1
    w = q.request_slot(be, None, 0.0)
    got = []
    w.callback = got.append
    s2.set_admin(ADMIN_FMAINT, False, 1.0)
    q.server_changed(s2, 1.0)
    assert got == [s2]


def test_down_server_queue_redistributed_with_redispatch() -> None:
    be = backend(n=2, maxconn=1, redispatch=True)
    s1, s2 = be.servers
    assert q.request_slot(be, s1, 0.0) is s1
    w = q.request_slot(be, s1, 0.0)
    got = []
    w.callback = got.append
    s1.set_admin(ADMIN_FMAINT, True, 1.0)
    q.server_changed(s1, 1.0)
    assert got == [s2] and not s1.queue


def test_backup_only_serves_backend_queue_when_in_use() -> None:
    be = backend(n=2, maxconn=1, backups=(2,))
    s1, s2 = be.servers
    assert q.request_slot(be, None, 0.0) is s1
    w = q.request_slot(be, None, 0.0)
    assert isinstance(w, q.Waiter)
    assert not q._serves_backend_queue(s2)
    assert q.serve(s2, 0.0) == 0


def test_queue_timeout_default_is_connect() -> None:
    assert q.queue_timeout(backend(timeouts=Timeouts(connect=3.0))) == 3.0
    assert q.queue_timeout(backend(timeouts=Timeouts(connect=3.0, queue=7.0))) == 7.0


def test_async_acquire_wait_grant_and_timeout() -> None:
    async def main() -> None:
        be = backend(n=1, maxconn=1)
        s1, w0 = await q.acquire(be, None, 1.0)
        assert w0 is None
        waiting = asyncio.ensure_future(q.acquire(be, None, 5.0))
        await asyncio.sleep(0.05)
        assert be.counters.qcur == 1
        q.release(s1, asyncio.get_running_loop().time())
        srv, w = await asyncio.wait_for(waiting, 5.0)
        assert srv is s1 and w is not None and w.tw >= 0.04 and w.be_pos == 1
        t0 = asyncio.get_running_loop().time()
        with pytest.raises(q.QueueTimeout):
            await q.acquire(be, None, 0.2)
        assert asyncio.get_running_loop().time() - t0 >= 0.19
        assert be.counters.qcur == 0 and s1.cur_conns == 1
        # a cancelled waiter leaves the queue
        t = asyncio.ensure_future(q.acquire(be, None, 10.0))
        await asyncio.sleep(0.02)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        assert not be.queue and be.counters.qcur == 0
        q.release(s1, 0.0)
        assert s1.cur_conns == 0

    asyncio.run(main())


def test_tunnels_hold_slots_many_concurrent() -> None:
    async def main() -> None:
        be = backend(n=2, maxconn=2)
        held = [await q.acquire(be, None, 1.0) for _ in range(4)]
        assert sorted(s.cur_conns for s in be.servers) == [2, 2]
        late = asyncio.ensure_future(q.acquire(be, None, 5.0))
        await asyncio.sleep(0.02)
        assert not late.done()
        q.release(held[0][0], 0.0)
        srv, _ = await asyncio.wait_for(late, 5.0)
        assert srv is held[0][0]

    asyncio.run(main())
