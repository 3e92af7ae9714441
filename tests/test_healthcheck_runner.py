"""The scheduler end to end: state changes over time against real servers.

Timing is asserted in numbers of intervals with generous margins (the machine is
shared); short `inter` values keep each test around a second or two.
"""

from __future__ import annotations

import asyncio
import re

from healthcheck import HealthChecker
from healthcheck.runner import next_interval
from lb.config.model import CheckSpec, HttpCheckSend, Options, Timeouts
from lb.state import OP_RUNNING, OP_STARTING, OP_STOPPED, OP_STOPPING
from tests.backends import HttpBackend
from tests.healthcheck_support import (
    FakeStream,
    LogSink,
    RawServer,
    backend,
    checking,
    free_port,
    server,
    state_of,
    wait_for,
)

HTTPCHK = CheckSpec(kind="http", steps=(HttpCheckSend("GET", "/health"),))
R500 = b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n"
R200 = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
R404 = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"

DOWN_REFUSED = re.compile(
    r'Server b/s1 is DOWN, reason: Layer4 connection problem, info: "Connection refused", '
    r"check duration: \d+ms\. 0 active and 0 backup servers left\. 0 sessions active, "
    r"0 requeued, 0 remaining in queue\.")
UP_L4 = re.compile(
    r"Server b/s1 is UP, reason: Layer4 check passed, check duration: \d+ms\. 1 active and "
    r"0 backup servers online\. 0 sessions requeued, 0 total in queue\.")


def test_down_after_fall_failures_up_after_rise_successes() -> None:
    inter = 0.2

    async def go() -> None:
        # (a port below the ephemeral range: it is bound again after the stop)
        b = HttpBackend("s1", port=free_port()).start()
        port = b.port
        be = backend([server("s1", port, inter=inter, rise=2, fall=3)])
        st = state_of(be)
        srv = st.backends["b"].servers[0]
        log = LogSink()
        loop = asyncio.get_running_loop()
        async with checking(st, log):
            await wait_for(lambda: srv.check_status == "L4OK")
            assert srv.health == 4 and srv.op == OP_RUNNING
            await asyncio.sleep(inter)
            b.stop()
            t_stop = loop.time()
            t_down = await wait_for(lambda: srv.op == OP_STOPPED, timeout=5)
            # three consecutive failures: the first within one interval, then two more
            n = (t_down - t_stop) / inter
            assert 1.5 < n < 5, n
            assert srv.check_status == "L4CON" and srv.check_info == "Connection refused"
            assert srv.check_desc == "Layer4 connection problem"
            assert srv.counters.chkfail == 3 and srv.counters.chkdown == 1
            down = [t for _, lvl, t in log.lines if lvl == "alert"]
            assert len(down) == 1 and DOWN_REFUSED.fullmatch(down[0]), down
            assert ("b", "emerg", "backend b has no server available!") in log.lines
            assert st.backends["b"].balancer.pick() is None
            b2 = HttpBackend("s1", port=port).start()
            t_start = loop.time()
            t_up = await wait_for(lambda: srv.op == OP_RUNNING, timeout=5)
            n = (t_up - t_start) / inter
            # downinter unset → inter; two successes needed
            assert 0.5 < n < 4, n
            assert UP_L4.fullmatch(log.lines[-1][2]), log.lines[-1]
            assert log.lines[-1][1] == "notice"
            assert st.backends["b"].balancer.pick() is srv
            b2.stop()

    asyncio.run(go())


def test_never_checked_server_goes_down_on_first_failure() -> None:
    async def go() -> None:
        be = backend([server("s1", free_port(), inter=1.0)])
        st = state_of(be)
        srv = st.backends["b"].servers[0]
        log = LogSink()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        async with checking(st, log):
            t = await wait_for(lambda: srv.op == OP_STOPPED, timeout=3)
            assert t - t0 < 0.5  # first check at once, one failure is enough
            assert srv.health == 0
            assert DOWN_REFUSED.fullmatch(log.texts()[0])

    asyncio.run(go())


def test_whole_backend_down_then_back_and_balancer() -> None:
    async def go() -> None:
        answers = {"s1": R200, "s2": R200}
        s1 = await RawServer(lambda r: answers["s1"]).start()
        s2 = await RawServer(lambda r: answers["s2"]).start()
        be = backend([server("s1", s1.port, puid=1, inter=0.1, rise=1, fall=1),
                      server("s2", s2.port, puid=2, inter=0.1, rise=1, fall=1)], HTTPCHK)
        st = state_of(be)
        bst = st.backends["b"]
        a, b = bst.servers
        log = LogSink()
        async with checking(st, log, s1, s2):
            await wait_for(lambda: a.check_status == "L7OK" and b.check_status == "L7OK")
            answers["s1"] = R500
            await wait_for(lambda: a.op == OP_STOPPED)
            # a DOWN server is not picked any more
            assert {bst.balancer.pick() for _ in range(6)} == {b}
            line = log.find("Server b/s1 is DOWN")[0][2]
            assert re.fullmatch(
                r'Server b/s1 is DOWN, reason: Layer7 wrong status, code: 500, info: '
                r'"Internal Server Error", check duration: \d+ms\. 0 active and 0 backup '
                r'servers left\. 0 sessions active, 0 requeued, 0 remaining in queue\.'
                .replace("0 active and 0", "1 active and 0"), line), line
            assert not log.find("no server available")
            answers["s2"] = R500
            await wait_for(lambda: b.op == OP_STOPPED)
            assert log.find("Server b/s2 is DOWN")[0][2].endswith(
                "0 active and 0 backup servers left. 0 sessions active, 0 requeued, "
                "0 remaining in queue.")
            assert log.lines[-1] == ("b", "emerg", "backend b has no server available!")
            assert not bst.is_up and bst.balancer.pick() is None
            answers["s1"] = answers["s2"] = R200
            await wait_for(lambda: a.op == OP_RUNNING and b.op == OP_RUNNING)
            ups = [t for t in log.texts() if " is UP, " in t]
            assert len(ups) == 2 and all("reason: Layer7 check passed, code: 200" in u
                                         for u in ups)
            assert bst.is_up and bst.balancer.pick() in (a, b)

    asyncio.run(go())


def test_flapping_servers_do_not_change_state() -> None:
    async def go() -> None:
        flips = {"up": 0, "down": 0}

        def flapper(name: str, first_ok: bool):  # type: ignore[no-untyped-def]
            def respond(req: bytes) -> bytes:
                n = flips[name]
                flips[name] += 1
                return R200 if (n % 2 == 0) == first_ok else R500
            return respond

        up = await RawServer(flapper("up", True)).start()
        down = await RawServer(flapper("down", False)).start()
        be = backend([server("s1", up.port, puid=1, inter=0.08),
                      server("s2", down.port, puid=2, inter=0.08)], HTTPCHK)
        st = state_of(be)
        a, b = st.backends["b"].servers
        log = LogSink()
        async with checking(st, log, up, down):
            await wait_for(lambda: flips["up"] >= 8 and flips["down"] >= 8, timeout=8)
            # s1: P then F,P,F,P... stays UP (4,3,4,3); s2: F then P,F,P... stays DOWN (0,1,0)
            assert a.op == OP_RUNNING and a.health in (3, 4)
            assert b.op == OP_STOPPED and b.health in (0, 1)
            assert a.counters.chkdown == 0
            downs = log.find("is DOWN")
            assert [d[2].split(",")[0] for d in downs] == ["Server b/s2 is DOWN"]
            assert not log.find("is UP")

    asyncio.run(go())


def test_downinter_slows_checks_of_a_down_server() -> None:
    async def go() -> None:
        s = await RawServer(lambda r: R500).start()
        be = backend([server("s1", s.port, inter=0.05, downinter=0.5)], HTTPCHK)
        st = state_of(be)
        async with checking(st, LogSink(), s):
            await asyncio.sleep(1.2)
        # with `inter 50ms` alone there would be ~24 checks
        assert 2 <= len(s.requests) <= 4, len(s.requests)

    asyncio.run(go())


def test_next_interval_rules() -> None:
    be = backend([server("s1", 1, inter=2.0, fastinter=0.5, downinter=5.0)])
    st = state_of(be)
    srv = st.backends["b"].servers[0]
    assert next_interval(srv) == 0.5  # before the first result: fastinter
    srv.health = 4
    assert next_interval(srv) == 2.0  # fully up: inter
    srv.health = 3
    assert next_interval(srv) == 0.5  # going down: fastinter
    srv.health, srv.op = 0, OP_STOPPED
    assert next_interval(srv) == 5.0  # fully down: downinter
    srv.health = 1
    assert next_interval(srv) == 0.5  # going up: fastinter


def test_first_checks_are_staggered() -> None:
    """fastinter unset and h=rise: the first interval is inter (0.8 s), spread over
    the 4 servers, so check k starts 0.2 s * k after the checker. A busy machine can
    only delay a check's arrival, never advance it: each is held to its slot from
    below (the gaps between arrivals shrink when the first one is the late one)."""
    async def go() -> tuple[float, list[float]]:
        s = await RawServer(lambda r: R200).start()
        be = backend([server(f"s{i}", s.port, puid=i, inter=0.8) for i in range(1, 5)],
                     HTTPCHK)
        st = state_of(be)
        start = asyncio.get_running_loop().time()
        async with checking(st, LogSink(), s):
            await wait_for(lambda: len(s.times) >= 4)
        return start, s.times[:4]

    start, times = asyncio.run(go())
    offsets = [t - start for t in times]
    assert all(off >= 0.2 * k - 0.01 for k, off in enumerate(offsets)), offsets
    assert 0.45 < times[-1] - times[0] < 1.2


def test_log_health_checks_variant_and_backup() -> None:
    async def go() -> LogSink:
        bad = await RawServer(lambda r: R500).start()
        good = await RawServer(lambda r: R200).start()
        be = backend([server("s1", bad.port, puid=1, inter=0.1),
                      server("bk", good.port, puid=2, inter=0.1, backup=True)], HTTPCHK,
                     options=Options(log_health_checks=True))
        st = state_of(be)
        log = LogSink()
        async with checking(st, log, bad, good):
            await wait_for(lambda: len(log.lines) >= 3)
            await asyncio.sleep(0.3)
        return log

    log = asyncio.run(go())
    texts = log.texts()
    fail = [t for t in texts if t.startswith("Health check for server b/s1 failed")]
    assert re.fullmatch(r'Health check for server b/s1 failed, reason: Layer7 wrong status, '
                        r'code: 500, info: "Internal Server Error", check duration: \d+ms, '
                        r'status: 0/2 DOWN\.', fail[0]), fail
    assert len(fail) == 1  # later failures change neither status nor counter
    down = [t for t in texts if t.startswith("Server b/s1 is DOWN")]
    assert down in (
        ["Server b/s1 is DOWN. 0 active and 1 backup servers left. Running on backup. "
         "0 sessions active, 0 requeued, 0 remaining in queue."],
    ), down
    ok = [t for t in texts if t.startswith("Health check for backup server b/bk")]
    assert re.fullmatch(r"Health check for backup server b/bk succeeded, reason: Layer7 check "
                        r"passed, code: 200, check duration: \d+ms, status: 3/3 UP\.", ok[0])


def test_shutdown_sessions_and_backup_sessions() -> None:
    async def go() -> None:
        answers = {"s1": R200}
        s1 = await RawServer(lambda r: answers["s1"]).start()
        bk = await RawServer(lambda r: R200).start()
        be = backend([server("s1", s1.port, puid=1, inter=0.1, rise=1, fall=1,
                             on_marked_down="shutdown-sessions",
                             on_marked_up="shutdown-backup-sessions"),
                      server("bk", bk.port, puid=2, inter=0.1, backup=True)], HTTPCHK)
        st = state_of(be)
        a, b = st.backends["b"].servers
        log = LogSink()
        async with checking(st, log, s1, bk):
            await wait_for(lambda: a.check_status == "L7OK")
            live = [FakeStream(a), FakeStream(a)]
            answers["s1"] = R500
            await wait_for(lambda: a.op == OP_STOPPED)
            assert [x.killed for x in live] == [b"D", b"D"] and not a.streams
            on_backup = [FakeStream(b), FakeStream(b)]
            answers["s1"] = R200
            await wait_for(lambda: a.op == OP_RUNNING)
            assert [x.killed for x in on_backup] == [b"U", b"U"]

    asyncio.run(go())


def test_disable_on_404_puts_server_in_nolb() -> None:
    async def go() -> None:
        answers = {"s1": R200}
        s1 = await RawServer(lambda r: answers["s1"]).start()
        spec = CheckSpec(kind="http", steps=(HttpCheckSend(),), disable_on_404=True)
        be = backend([server("s1", s1.port, inter=0.1)], spec)
        st = state_of(be)
        srv = st.backends["b"].servers[0]
        log = LogSink()
        async with checking(st, log, s1):
            await wait_for(lambda: srv.check_status == "L7OK")
            answers["s1"] = R404
            await wait_for(lambda: srv.op == OP_STOPPING)
            assert srv.check_status == "L7OKC" and srv.check_code == 404
            assert not srv.usable and srv.is_running
            assert srv.status_text() == "NOLB"
            assert re.fullmatch(
                r"Server b/s1 is stopping, reason: Layer7 check conditionally passed, "
                r"code: 404, check duration: \d+ms\. 0 active and 0 backup servers online\. "
                r"0 sessions requeued, 0 total in queue\.", log.texts()[0]), log.texts()
            assert log.lines[1] == ("b", "emerg", "backend b has no server available!")
            answers["s1"] = R200
            await wait_for(lambda: srv.op == OP_RUNNING)
            assert log.texts()[-1].startswith("Server b/s1 is UP, reason: Layer7 check passed")

    asyncio.run(go())


def test_slowstart_ramps_weight() -> None:
    async def go() -> None:
        answers = {"s1": R500}
        s1 = await RawServer(lambda r: answers["s1"]).start()
        be = backend([server("s1", s1.port, inter=0.1, rise=1, fall=1, weight=10,
                             slowstart=2.0)], HTTPCHK)
        st = state_of(be)
        srv = st.backends["b"].servers[0]
        async with checking(st, LogSink(), s1):
            await wait_for(lambda: srv.op == OP_STOPPED)
            answers["s1"] = R200
            await wait_for(lambda: srv.op == OP_STARTING)
            assert srv.eweight == 1 and srv.uweight == 10 and srv.usable
            await wait_for(lambda: srv.eweight > 1, timeout=2)
            assert srv.eweight < 10 and srv.op == OP_STARTING
            await wait_for(lambda: srv.op == OP_RUNNING, timeout=3)
            assert srv.eweight == 10

    asyncio.run(go())


def test_maint_and_disabled_checks_are_not_run() -> None:
    async def go() -> None:
        s = await RawServer(lambda r: R200).start()
        be = backend([server("s1", s.port, puid=1, inter=0.05),
                      server("s2", s.port, puid=2, inter=0.05, disabled=True)], HTTPCHK)
        st = state_of(be)
        a, b = st.backends["b"].servers
        async with checking(st, LogSink(), s):
            await wait_for(lambda: a.check_status == "L7OK")
            assert b.check_status == "INI"  # MAINT (`disabled`): never checked
            a.check_enabled = False  # `disable health s1` from the CLI
            await asyncio.sleep(0.1)
            n = len(s.requests)
            await asyncio.sleep(0.4)
            assert len(s.requests) == n
            a.check_enabled = True
            await wait_for(lambda: len(s.requests) > n, timeout=2)

    asyncio.run(go())


def test_timeout_connect_alone_does_not_cut_checks() -> None:
    # without `timeout check`, a slow answer inside `inter` passes
    async def go() -> str:
        b = HttpBackend("s1", delay=0.25).start()
        be = backend([server("s1", b.port, inter=1.0)], HTTPCHK, timeouts=Timeouts(connect=0.1))
        st = state_of(be)
        srv = st.backends["b"].servers[0]
        hc = HealthChecker(st, LogSink())
        await hc.start()
        try:
            await wait_for(lambda: srv.check_status not in ("INI",), timeout=3)
        finally:
            await hc.stop()
            b.stop()
        return srv.check_status

    assert asyncio.run(go()) == "L7OK"


def test_track_mirrors_state_with_haproxy_lines() -> None:
    # checked against HAProxy 2.6.12: trackers follow in reverse declaration order,
    # logged "... is DOWN via b1/s1." / "... is UP via b1/s1."
    async def go() -> LogSink:
        answers = {"s1": R500}
        s = await RawServer(lambda r: answers["s1"]).start()
        b1 = backend([server("s1", s.port, inter=0.1, rise=1, fall=1)], HTTPCHK, name="b1")
        b2 = backend([server("s2", s.port, puid=1, check=False, track="b1/s1"),
                      server("s3", s.port, puid=2, check=False, track="b1/s1", backup=True)],
                     name="b2")
        st = state_of(b1, b2)
        s2, s3 = st.backends["b2"].servers
        log = LogSink()
        async with checking(st, log, s):
            await wait_for(lambda: s2.op == OP_STOPPED and s3.op == OP_STOPPED)
            assert st.backends["b2"].balancer.pick() is None
            answers["s1"] = R200
            await wait_for(lambda: s2.op == OP_RUNNING and s3.op == OP_RUNNING)
            assert st.backends["b2"].balancer.pick() is s2
        return log

    log = asyncio.run(go())
    lines = [(b, lvl, re.sub(r"duration: \d+ms", "duration: 0ms", t)) for b, lvl, t in log.lines]
    assert lines == [
        ("b1", "alert", 'Server b1/s1 is DOWN, reason: Layer7 wrong status, code: 500, info: '
                        '"Internal Server Error", check duration: 0ms. 0 active and 0 backup '
                        'servers left. 0 sessions active, 0 requeued, 0 remaining in queue.'),
        ("b1", "emerg", "backend b1 has no server available!"),
        ("b2", "alert", "Backup Server b2/s3 is DOWN via b1/s1. 1 active and 0 backup servers "
                        "left. 0 sessions active, 0 requeued, 0 remaining in queue."),
        ("b2", "alert", "Server b2/s2 is DOWN via b1/s1. 0 active and 0 backup servers left. "
                        "0 sessions active, 0 requeued, 0 remaining in queue."),
        ("b2", "emerg", "backend b2 has no server available!"),
        ("b1", "notice", "Server b1/s1 is UP, reason: Layer7 check passed, code: 200, check "
                         "duration: 0ms. 1 active and 0 backup servers online. 0 sessions "
                         "requeued, 0 total in queue."),
        ("b2", "notice", "Backup Server b2/s3 is UP via b1/s1. 0 active and 1 backup servers "
                         "online. Running on backup. 0 sessions requeued, 0 total in queue."),
        ("b2", "notice", "Server b2/s2 is UP via b1/s1. 1 active and 1 backup servers online. "
                         "0 sessions requeued, 0 total in queue."),
    ]


def test_spread_checks_jitter_bounds() -> None:
    import random

    be = backend([server("s1", 1)])
    st = state_of(be, spread=20)
    hc = HealthChecker(st, LogSink(), rng=random.Random(7))
    values = [hc._jitter(1.0) for _ in range(200)]
    assert all(0.8 <= v <= 1.2 for v in values)
    assert max(values) - min(values) > 0.2  # it does spread
    assert HealthChecker(state_of(be), LogSink())._jitter(1.0) == 1.0
