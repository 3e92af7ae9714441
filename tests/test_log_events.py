"""lb.log.InfoEvent: per-connection structlog events rendered without the generic
pipeline must be byte-identical to what structlog renders (issue #4 events,
issue #9 speed)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from io import StringIO

import pytest
import structlog

from lb import log

KEYS = ("tunnel_id", "frontend", "backend", "server", "client", "websocket")


@pytest.fixture
def fresh_structlog(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # a context variable once bound stays registered (with no value) for the whole
    # process: give each test an empty registry, as a fresh lb process has
    monkeypatch.setattr(structlog.contextvars, "_CONTEXT_VARS", {})
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()


def _no_time(line: str) -> str:
    return re.sub(r'"timestamp": "[^"]*"', '"timestamp": T', line)


def _both(values: tuple, *, level: str = "info") -> tuple[str, str]:
    """(fast rendering, structlog's rendering) of the same event."""
    buf = StringIO()
    assert log.setup(json=True, level=level, file=buf, cache=False)
    ev = log.InfoEvent("lb.tunnel", "tunnel_open", KEYS)
    ev(*values)
    fast = buf.getvalue()
    buf.seek(0)
    buf.truncate()
    log.get_logger("lb.tunnel").info("tunnel_open", **dict(zip(KEYS, values, strict=True)))
    return fast, buf.getvalue()


@pytest.mark.parametrize("values", [
    (7, "fe_keepalive", "bk_ws", "ws1", "127.0.0.1:40000", True),
    (0, "fé\"\\\n\x01", "b", "", "[::1]:1", False),
    (2**70, "f", "b", "s", None, True),
])
def test_fast_rendering_is_structlogs(fresh_structlog: None, values: tuple) -> None:
    fast, slow = _both(values)
    assert fast.endswith("\n") and fast.count("\n") == 1
    assert _no_time(fast) == _no_time(slow)
    d = json.loads(fast)
    assert list(d) == ["logger_name", *KEYS, "event", "level", "timestamp"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z", d["timestamp"])


def test_other_value_types_go_through_structlog(fresh_structlog: None) -> None:
    fast, slow = _both((1.5, "f", "b", "s", ["x"], True))
    assert _no_time(fast) == _no_time(slow)


def test_level_filter(fresh_structlog: None) -> None:
    fast, slow = _both((1, "f", "b", "s", "c", True), level="warning")
    assert fast == slow == ""


def test_bound_context_variables_are_merged(fresh_structlog: None) -> None:
    buf = StringIO()
    log.setup(json=True, file=buf, cache=False)
    structlog.contextvars.bind_contextvars(worker=3)
    log.InfoEvent("lb.tunnel", "tunnel_close", ("tunnel_id",))(9)
    d = json.loads(buf.getvalue())
    assert d["worker"] == 3 and d["tunnel_id"] == 9 and d["event"] == "tunnel_close"


def test_capture_logs_and_host_configuration(fresh_structlog: None) -> None:
    log.setup(json=True, file=StringIO(), cache=False)
    ev = log.InfoEvent("lb.tunnel", "tunnel_close", ("tunnel_id", "reason"))
    with structlog.testing.capture_logs() as cap:
        ev(3, "client_closed")
    assert cap == [{"logger_name": "lb.tunnel", "tunnel_id": 3, "reason": "client_closed",
                    "event": "tunnel_close", "log_level": "info"}]
    structlog.reset_defaults()
    buf = StringIO()
    structlog.configure(processors=[structlog.processors.JSONRenderer()],
                        logger_factory=structlog.WriteLoggerFactory(file=buf))
    ev(4, "x")
    assert json.loads(buf.getvalue()) == {"logger_name": "lb.tunnel", "tunnel_id": 4,
                                          "reason": "x", "event": "tunnel_close"}


@pytest.mark.parametrize(("name", "event", "keys", "values"), [
    ("lb.x%s", "ev%d", ("a%s", "b"), ("100%", 1)),
    ("lb.tunnel", "no_fields", (), ()),
])
def test_percent_signs_and_no_fields(fresh_structlog: None, name: str, event: str,
                                     keys: tuple, values: tuple) -> None:
    buf = StringIO()
    log.setup(json=True, file=buf, cache=False)
    log.InfoEvent(name, event, keys)(*values)
    fast = buf.getvalue()
    buf.seek(0)
    buf.truncate()
    log.get_logger(name).info(event, **dict(zip(keys, values, strict=True)))
    assert _no_time(fast) == _no_time(buf.getvalue())


class _CountingOut(StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_lines_of_many_turns_leave_in_one_write_when_the_timer_fires(
        fresh_structlog: None) -> None:
    import asyncio

    out = _CountingOut()
    assert log.setup(json=True, file=out, cache=False)
    ev = log.InfoEvent("lb.tunnel", "tunnel_open", KEYS)
    delay = log._fast_chain.batch.delay

    async def main() -> tuple[int, int]:
        for i in range(5):
            ev(i, "fe", "be", "s", "c", True)
            await asyncio.sleep(0)  # one line a turn, as under a moderate load
        before = out.writes
        await asyncio.sleep(delay * 3)
        return before, out.writes

    before, after = asyncio.run(main())
    assert (before, after) == (0, 1)
    lines = out.getvalue().splitlines()
    assert [json.loads(x)["tunnel_id"] for x in lines] == [0, 1, 2, 3, 4]
    # outside a running loop a line is written at once
    ev(9, "fe", "be", "s", "c", False)
    assert out.writes == 2 and json.loads(out.getvalue().splitlines()[-1])["tunnel_id"] == 9


def test_a_full_batch_is_written_at_once(fresh_structlog: None) -> None:
    import asyncio

    out = _CountingOut()
    assert log.setup(json=True, file=out, cache=False)
    ev = log.InfoEvent("lb.tunnel", "tunnel_open", KEYS)
    batch = log._fast_chain.batch

    async def main() -> list[int]:
        seen = []
        for i in range(1000):
            ev(i, "fe", "be", "s", "c", True)
            seen.append(out.writes)
        return seen

    seen = asyncio.run(main())
    first = seen.index(1)  # the write that made the batch full, before any timer
    assert 0 < first < 999
    assert sum(map(len, out.getvalue().splitlines(keepends=True)[:first + 1])) >= batch.limit
    log.flush_events()
    assert [json.loads(x)["tunnel_id"] for x in out.getvalue().splitlines()] == \
        list(range(1000))


def test_lines_left_by_a_stopped_loop_leave_with_the_next(fresh_structlog: None) -> None:
    """A loop that stops before its timer fires does not strand its lines: the next
    loop's first line arms a timer of its own (and ``flush_events`` writes them)."""
    import asyncio

    out = StringIO()
    assert log.setup(json=True, file=out, cache=False)
    ev = log.InfoEvent("lb.tunnel", "tunnel_open", KEYS)
    delay = log._fast_chain.batch.delay

    async def one_line(i: int, wait: float) -> None:
        ev(i, "fe", "be", "s", "c", True)
        await asyncio.sleep(wait)

    asyncio.run(one_line(1, 0))  # stops before its timer
    assert out.getvalue() == ""
    asyncio.run(one_line(2, delay * 3))
    assert [json.loads(x)["tunnel_id"] for x in out.getvalue().splitlines()] == [1, 2]
    asyncio.run(one_line(3, 0))
    log.flush_events()
    assert [json.loads(x)["tunnel_id"] for x in out.getvalue().splitlines()] == [1, 2, 3]


def test_other_lines_on_the_stream_keep_their_order(fresh_structlog: None) -> None:
    """A structlog line of another kind, or a stderr copy of a server event, first
    writes the event lines still waiting in the batch."""
    import asyncio

    out = StringIO()
    assert log.setup(json=True, file=out, cache=False)
    ev = log.InfoEvent("lb.tunnel", "tunnel_open", KEYS)

    async def main() -> None:
        ev(1, "fe", "be", "s", "c", True)
        log.get_logger("lb.runner").info("stopped", pid=1)
        ev(2, "fe", "be", "s", "c", True)
        log.send_event([], "alert", "Server b/s is DOWN.", mirror=True)
        assert out.getvalue().count("\n") == 3  # (the stderr copy went to fd 2)

    asyncio.run(main())
    events = [json.loads(x)["event"] for x in out.getvalue().splitlines()]
    assert events == ["tunnel_open", "stopped", "tunnel_open"]


def test_slow_path_keeps_the_order_of_lines(fresh_structlog: None) -> None:
    import asyncio

    out = StringIO()
    assert log.setup(json=True, file=out, cache=False)
    ev = log.InfoEvent("lb.tunnel", "tunnel_open", KEYS)

    async def main() -> None:
        ev(1, "fe", "be", "s", "c", True)
        ev(2, "fe", "be", "s", 3.5, True)  # a float: rendered by structlog itself
        await asyncio.sleep(0)

    asyncio.run(main())
    assert [json.loads(x)["tunnel_id"] for x in out.getvalue().splitlines()] == [1, 2]


def test_lines_pending_when_the_loop_stops_are_written_at_exit() -> None:
    """A tunnel_close logged in the loop's last turn is not lost: atexit writes it."""
    import os
    import subprocess
    import sys

    code = (
        "import asyncio, sys\n"
        "from lb import log\n"
        "log.setup(json=True, file=sys.stdout, cache=False)\n"
        "ev = log.InfoEvent('lb.tunnel', 'tunnel_close', ('tunnel_id',))\n"
        "loop = asyncio.new_event_loop()\n"
        "def last():\n"
        "    ev(42)          # its flush is due next turn...\n"
        "    loop.stop()     # ...which never comes\n"
        "loop.call_soon(last)\n"
        "loop.run_forever()\n"
        "loop.close()\n"
        "print('END', flush=True)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=root, env=dict(os.environ, PYTHONPATH=root))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "END"  # nothing was written while the loop ran
    assert json.loads(lines[1])["tunnel_id"] == 42


@pytest.mark.parametrize("ns", [
    1_795_300_000_000_000_000,        # a whole second: no fraction, as isoformat
    1_795_300_000_000_000_999,        # under a microsecond: floored to none
    1_795_300_000_123_456_789,
    1_795_300_059_999_999_999,        # the last microsecond before a new minute
    1_795_300_060_000_001_000,
    951_782_400_000_500_000,          # 2000-02-29
])
def test_event_timestamp_is_structlogs_iso_utc(monkeypatch: pytest.MonkeyPatch,
                                               ns: int) -> None:
    """The cached stamp equals datetime's isoformat (what structlog's TimeStamper
    writes) for the same nanosecond clock reading, across second boundaries."""
    import datetime

    stamp = log._IsoStamp()
    for t in (ns - 1_000_000_000, ns, ns + 1):  # previous second, then this one twice
        monkeypatch.setattr(log, "_time_ns", lambda t=t: t)
        sec, rest = divmod(t, 1_000_000_000)
        expected = datetime.datetime.fromtimestamp(sec, datetime.UTC).replace(
            microsecond=rest // 1000).isoformat().replace("+00:00", "Z")
        assert stamp() == expected


@pytest.mark.parametrize("values", [
    (-(2**63), "", "b", "s", None, False),
    (2**63 - 1, "a b\t", "~!#", "s\x7f", "1.2.3.4:5", True),
    (-1, "f", "b", "s", "c", None),
    (10**18, "f", "b", "s", "c", True),
    (2**63, "f", "b", "s", "c", True),  # beyond 64 bits: the Python rendering
])
def test_int_edges_and_strings_render_as_structlog(fresh_structlog: None,
                                                   values: tuple) -> None:
    fast, slow = _both(values)
    assert _no_time(fast) == _no_time(slow)


@pytest.mark.parametrize("ns", [1_795_300_000_000_000_000, 1_795_300_000_000_001_000,
                                1_795_300_000_123_456_789])
def test_event_line_timestamp(fresh_structlog: None, monkeypatch: pytest.MonkeyPatch,
                              ns: int) -> None:
    """The timestamp a whole line carries (written into the line by the compiled
    renderer) is the stamp's text for the same clock reading."""
    import datetime

    monkeypatch.setattr(log, "_time_ns", lambda: ns)
    fast, _ = _both((1, "f", "b", "s", "c", True))
    sec, rest = divmod(ns, 1_000_000_000)
    expected = datetime.datetime.fromtimestamp(sec, datetime.UTC).replace(
        microsecond=rest // 1000).isoformat().replace("+00:00", "Z")
    assert json.loads(fast)["timestamp"] == expected


def test_the_stamp_reads_the_real_time_of_day() -> None:
    """Compiled, the stamp reads the wall clock in C: what it gives lies between two
    readings of time.time_ns (to the microsecond it keeps)."""
    import datetime

    stamp = log._IsoStamp()
    before = time.time_ns()
    us = stamp.now_us()
    after = time.time_ns()
    day = datetime.datetime.fromisoformat(stamp.head).replace(tzinfo=datetime.UTC)
    got = int(day.timestamp()) * 1_000_000_000 + us * 1000
    assert before // 1000 * 1000 <= got <= after
