"""Log sinks and loggers (lb.log) over real loopback sockets, pipes and stderr.

Header shapes, levels and truncation were checked against HAProxy 2.6.12 on 127.0.0.1
(2026-11-21), with `log 127.0.0.1:<port> len 100 format <f> local0` and
`log stdout len 100 format <f> local0` for every format:
- UDP: header + message are cut at `len`, then LF is added (101 bytes for len 100),
  except `raw` whose message is cut at len-1 (100 bytes);
- stdout/stderr/fd: the whole line including LF is at most `len` bytes;
- `log stderr local2` (default format) printed `<150>Nov 21 17:48:18 haproxy[5762]: ...`;
- rfc3164 without log-send-hostname puts `localhost`; rfc5424 prints
  `<134>1 2026-11-21T17:48:35.158716+00:00 - haproxy 6330 - - msg`;
- with `log-send-hostname myhost` the default format becomes rfc3164
  (`<134>Nov 21 17:49:49 myhost mytag[12728]: ...`);
- server DOWN goes out at level alert (`<129>`) with a `[WARNING]  (pid) : ` copy on
  stderr; `backend b has no server available!` at emerg (`<128>`) with
  `[ALERT]    (pid) : backend 'b' has no server available!` on stderr;
- `option log-separate-errors` raised a redispatched request to level err (`<131>`);
- `log ... local0 debug notice` sent a server DOWN (alert) as `<133>` (clamped to
  notice) and traffic at `<134>`; `log ... local1 notice` sent the DOWN line as `<137>`
  and no traffic line.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from io import StringIO

import pytest
import structlog

from lb import log
from lb.config.model import Global, LogTarget, Options, Proxy
from tests.test_log_support import FakeTxn, epoch, utc_clock

HTTPLOG_LINE = (b'127.0.0.1:40142 [21/Nov/2026:16:23:40.573] f b_api/s1 0/0/0/1/1 200 241 - - '
                b'---- 1/1/0/0/0 0/0 "GET /api/x HTTP/1.1"')


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    with utc_clock():
        log.close_sinks()
        log.set_stderr_mirror(True)
        yield
        log.close_sinks()


class Udp:
    """A syslog receiver on 127.0.0.1 (ephemeral port)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5)
        self.port = self.sock.getsockname()[1]

    def target(self, **kw: object) -> LogTarget:
        return LogTarget(kind="udp", address="127.0.0.1", port=self.port, **kw)  # type: ignore[arg-type]

    def recv(self) -> bytes:
        return self.sock.recv(70000)

    def nothing(self) -> bool:
        self.sock.settimeout(0.2)
        try:
            self.sock.recv(70000)
        except TimeoutError:
            return True
        finally:
            self.sock.settimeout(5)
        return False


@pytest.fixture
def udp() -> Iterator[Udp]:
    u = Udp()
    yield u
    u.sock.close()


def frontend(*targets: LogTarget, **opts: bool) -> Proxy:
    options = Options(**{"httplog": True, **opts})
    return Proxy(name="f", caps=frozenset({"frontend"}), kind="frontend", mode="http",
                 logs=targets, options=options)


def traffic(*targets: LogTarget, **opts: bool) -> log.TrafficLog:
    tl = log.build_traffic_log(frontend(*targets, **opts), Global(), pid=4242)
    assert tl is not None
    return tl


# ----------------------------------------------------------------------------- traffic


def test_udp_rfc3164_local_frame(udp: Udp) -> None:
    traffic(udp.target()).emit(FakeTxn())
    data = udp.recv()
    hdr, _, msg = data.partition(b"haproxy[4242]: ")
    assert msg == HTTPLOG_LINE + b"\n"
    assert hdr[:5] == b"<134>"  # local0 (16) * 8 + info (6)
    time.strptime(hdr[5:].decode(), "%b %d %H:%M:%S ")


@pytest.mark.parametrize("facility, expected", [("local7", b"<190>"), ("user", b"<14>"),
                                                ("kern", b"<6>"), ("daemon", b"<30>")])
def test_priority_from_facility(udp: Udp, facility: str, expected: bytes) -> None:
    traffic(udp.target(facility=facility)).emit(FakeTxn())
    assert udp.recv().startswith(expected)


def test_udp_ipv6_target() -> None:
    rx = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    rx.bind(("::1", 0))
    rx.settimeout(5)
    try:
        target = LogTarget(kind="udp", address="::1", port=rx.getsockname()[1], format="raw")
        traffic(target).emit(FakeTxn())
        assert rx.recv(70000) == HTTPLOG_LINE + b"\n"
    finally:
        rx.close()


def test_unix_datagram_socket() -> None:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "log.sock")
        rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        rx.bind(path)
        rx.settimeout(5)
        try:
            tl = traffic(LogTarget(kind="unix", address=path, format="raw"))
            tl.emit(FakeTxn())
            assert rx.recv(70000) == HTTPLOG_LINE + b"\n"
        finally:
            rx.close()


def test_header_formats_exact() -> None:
    now = epoch("2026-11-21 17:48:35") + 0.5
    meta = log.Meta("haproxy", 6330)
    hdr = {f: log.build_header(f, 16, 6, now, meta) for f in log.FORMATS}
    assert hdr == {
        "local": b"<134>Nov 21 17:48:35 haproxy[6330]: ",
        "rfc3164": b"<134>Nov 21 17:48:35 localhost haproxy[6330]: ",
        "rfc5424": b"<134>1 2026-11-21T17:48:35.500000+00:00 - haproxy 6330 - - ",
        "priority": b"<134>",
        "short": b"<6>",
        "timed": b"<6>2026-11-21T17:48:35.500000+00:00 ",
        "iso": b"2026-11-21T17:48:35.500000+00:00 ",
        "raw": b"",
    }
    host = log.Meta("mytag", 12728, "myhost")
    assert log.build_header("local", 16, 6, now, host) == (
        b"<134>Nov 21 17:48:35 myhost mytag[12728]: ")
    assert log.build_header("rfc5424", 18, 6, now, host) == (
        b"<150>1 2026-11-21T17:48:35.500000+00:00 myhost mytag 12728 - - ")
    # single-digit days are space padded like syslog's legacy timestamp
    assert log.build_header("local", 16, 6, epoch("2026-03-05 01:02:03"), meta) == (
        b"<134>Mar  5 01:02:03 haproxy[6330]: ")


@pytest.mark.parametrize("fmt, size", [("local", 101), ("rfc5424", 101), ("short", 101),
                                       ("raw", 100)])
def test_udp_truncation_like_haproxy(udp: Udp, fmt: str, size: int) -> None:
    traffic(udp.target(format=fmt, length=100)).emit(FakeTxn())
    data = udp.recv()
    assert len(data) == size and data.endswith(b"\n")
    if fmt == "raw":
        assert data == HTTPLOG_LINE[:99] + b"\n"
    else:
        msg = data[:-1].split(b"haproxy" if fmt != "short" else b">", 1)[1]
        msg = msg.split(b" - - ", 1)[-1].split(b": ", 1)[-1] if fmt != "short" else msg
        assert len(msg) > 20 and HTTPLOG_LINE.startswith(msg)


def test_fd_sink_pipe_truncation_and_format() -> None:
    r, w = os.pipe()
    try:
        tl = traffic(LogTarget(kind="fd", address=str(w), format="raw", length=100),
                     LogTarget(kind="fd", address=str(w), format="local", length=100))
        tl.emit(FakeTxn())
        data = os.read(r, 65536)
        raw, local = data.split(b"\n")[:2]
        assert raw == HTTPLOG_LINE[:99]
        assert len(local) == 99 and local.startswith(b"<134>")
        assert b" haproxy[4242]: 127.0.0.1:40142 [" in local
    finally:
        os.close(r)
        os.close(w)


def test_default_length_keeps_long_lines(udp: Udp) -> None:
    url = b"/" + b"a" * 1500
    traffic(udp.target(format="raw")).emit(FakeTxn(request_line=b"GET " + url + b" HTTP/1.1"))
    data = udp.recv()
    assert len(data) == 1024  # 1023 bytes of message + LF


@pytest.mark.parametrize("path_len", [100, 3900, 4200, 9000])
def test_whole_lines_of_any_size_under_the_limit(udp: Udp, path_len: int) -> None:
    """A line under ``len`` arrives whole, with one LF: compiled, lines that fit lb's
    4 KiB C buffer and longer ones (joined in Python) alike."""
    url = b"/" + b"b" * path_len
    traffic(udp.target(format="local", length=16000)).emit(
        FakeTxn(request_line=b"GET " + url + b" HTTP/1.1"))
    data = udp.recv()
    assert data.startswith(b"<134>") and data.endswith(url + b' HTTP/1.1"\n')
    assert data.count(b"\n") == 1


def test_level_filtering_and_minlevel_clamp(udp: Udp) -> None:
    quiet = udp.target(level="notice")
    traffic(quiet).emit(FakeTxn())  # info > notice: filtered
    assert udp.nothing()
    log.send_event([quiet], "alert", "Server b/s1 is DOWN", mirror=False)
    frame = udp.recv()
    assert frame.startswith(b"<129>") and frame.endswith(b": Server b/s1 is DOWN\n")
    log.send_event([udp.target(minlevel="notice")], "alert", "x", mirror=False)
    assert udp.recv().startswith(b"<133>")  # alert lowered to the notice floor


def test_dontlognull_dontlog_normal_and_separate_errors(udp: Udp) -> None:
    tl = traffic(udp.target(), dontlognull=True)
    tl.emit(FakeTxn(), empty=True)
    assert udp.nothing()
    tl.emit(FakeTxn(), empty=False)
    assert udp.recv().startswith(b"<134>")

    tl = traffic(udp.target(), dontlog_normal=True, log_separate_errors=True)
    tl.emit(FakeTxn())  # normal: not logged
    tl.emit(FakeTxn(term=b"LR", status=302))  # local answers are normal too
    assert udp.nothing()
    for bad in (FakeTxn(status=503), FakeTxn(term=b"cD"), FakeTxn(retries=1),
                FakeTxn(redispatched=True, retries=1)):
        tl.emit(bad)
        assert udp.recv().startswith(b"<131>")  # local0 err


def test_connect_line_without_format(udp: Udp) -> None:
    p = Proxy(name="f1", caps=frozenset({"frontend"}), kind="frontend", mode="http",
              logs=(udp.target(),))
    tl = log.build_traffic_log(p, Global(), pid=7)
    assert tl is not None and tl.fmt is None
    t = FakeTxn(client_port=43564, dst_port=32895, frontend_name="f1")
    tl.emit(t)  # nothing at the end of the request
    tl.emit_connect(t)
    assert udp.recv().endswith(
        b" haproxy[7]: Connect from 127.0.0.1:43564 to 127.0.0.1:32895 (f1/HTTP)\n")
    assert udp.nothing()


def test_log_tag_and_hostname(udp: Udp) -> None:
    p = Proxy(name="f", caps=frozenset({"frontend"}), kind="frontend", mode="http",
              logs=(udp.target(),), options=Options(httplog=True), log_tag="mytag")
    tl = log.build_traffic_log(p, Global(log_send_hostname="myhost", log_tag="g"), pid=9)
    assert tl is not None
    tl.emit(FakeTxn())
    assert b" myhost mytag[9]: 127.0.0.1:40142 " in udp.recv()
    tl = log.build_traffic_log(frontend(udp.target()), Global(log_tag="gtag"), pid=9)
    assert tl is not None
    tl.emit(FakeTxn())
    assert b" gtag[9]: " in udp.recv()


def test_no_targets_or_unusable_targets() -> None:
    assert log.build_traffic_log(frontend(), Global()) is None
    ring = LogTarget(kind="ring", address="buf1")
    assert log.build_traffic_log(frontend(ring), Global()) is None
    bad = LogTarget(kind="stdout", address="", facility="local9")
    assert log.build_traffic_log(frontend(bad), Global()) is None
    # one bad target does not disable the others
    tl = log.build_traffic_log(frontend(ring, LogTarget(kind="stderr", address="")), Global())
    assert tl is not None and len(tl.sinks) == 1


def test_render_error_is_counted_not_raised(udp: Udp) -> None:
    before = log.COUNTERS.render_errors
    traffic(udp.target()).emit(FakeTxn(status=None))
    assert log.COUNTERS.render_errors == before + 1
    assert udp.nothing()


# ----------------------------------------------------------------------------- dropping


def test_unix_full_queue_is_dropped_and_counted() -> None:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "full.sock")
        rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        rx.bind(path)
        try:
            tl = traffic(LogTarget(kind="unix", address=path, format="raw"))
            sink = tl.sinks[0]
            before = log.dropped_logs()
            t0 = time.monotonic()
            for _ in range(20000):  # never read: the receive queue fills up
                tl.emit(FakeTxn())
                if sink.dropped or time.monotonic() - t0 > 10:
                    break
            assert sink.dropped > 0
            assert log.dropped_logs() > before
            assert sink.sent > 0
        finally:
            rx.close()


def test_full_pipe_is_dropped_not_blocking() -> None:
    r, w = os.pipe()
    try:
        tl = traffic(LogTarget(kind="fd", address=str(w), format="raw"))
        t0 = time.monotonic()
        for _ in range(2000):  # 64 KiB pipe, ~150 bytes per line
            tl.emit(FakeTxn())
        assert time.monotonic() - t0 < 10
        assert tl.sinks[0].dropped > 0
        assert os.read(r, 200).startswith(HTTPLOG_LINE[:50])
    finally:
        os.close(r)
        os.close(w)


def test_send_error_does_not_raise() -> None:
    gone = LogTarget(kind="unix", address="/nonexistent/dir/log.sock")
    tl = traffic(gone)
    tl.emit(FakeTxn())
    assert tl.sinks[0].errors == 1


def test_udp_sink_is_connected_and_a_closed_port_drops_lines() -> None:
    """The UDP socket is connected (one route lookup, not one per line); when nobody
    listens, the kernel's "port unreachable" comes back as ECONNREFUSED on a later
    send: that line is dropped and counted, never an error report or an exception."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nobody listens on this port any more
    tl = traffic(LogTarget(kind="udp", address="127.0.0.1", port=port))
    sink = tl.sinks[0]
    assert sink.connected
    assert sink.sock.getpeername() == ("127.0.0.1", port)
    for _ in range(20):
        tl.emit(FakeTxn())
        time.sleep(0.005)  # let the ICMP error arrive between two lines
    assert sink.dropped > 0 and sink.sent > 0
    assert sink.sent + sink.dropped == 20
    assert sink.errors == 0
    # lines go out by os.write on the socket's descriptor: once closed, the sink
    # forgets it, and a late line is an error, never a datagram on whatever socket
    # took the number next (the lowest free descriptor: usually the same one)
    old_fd = sink.fd
    assert old_fd == sink.sock.fileno()
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))
    other.settimeout(0.3)
    sink.close()
    reused = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        reused.connect(other.getsockname())
        assert not sink.connected and sink.fd == -1
        tl.emit(FakeTxn())
        assert sink.errors == 1 and sink.sent + sink.dropped == 20
        with pytest.raises(TimeoutError):
            other.recv(65536)  # nothing went out on the socket that reused the number
    finally:
        reused.close()
        other.close()


# ----------------------------------------------------------------------------- events


def test_send_event_with_stderr_mirror(udp: Udp, capfd: pytest.CaptureFixture[str]) -> None:
    down = ('Server b/s1 is DOWN, reason: Layer4 connection problem, info: "Connection '
            'refused", check duration: 0ms. 0 active and 0 backup servers left. 0 sessions '
            'active, 0 requeued, 0 remaining in queue.')
    log.send_event([udp.target()], "alert", down, pid=13912)
    log.send_event([udp.target()], "emerg", "backend b has no server available!", pid=13912,
                   mirror_text="backend 'b' has no server available!")
    assert udp.recv().endswith(b" haproxy[13912]: " + down.encode() + b"\n")
    assert udp.recv().startswith(b"<128>")
    err = capfd.readouterr().err
    assert err == (f"[WARNING]  (13912) : {down}\n"
                   "[ALERT]    (13912) : backend 'b' has no server available!\n")


def test_event_frames_and_mirror_switch(udp: Udp, capfd: pytest.CaptureFixture[str]) -> None:
    log.send_event([udp.target()], "warning", "Proxy f stopped (cumulated conns: FE: 1, BE: 0).",
                   pid=5762)
    frame = udp.recv()
    assert frame.startswith(b"<132>")
    assert frame.endswith(b" haproxy[5762]: Proxy f stopped (cumulated conns: FE: 1, BE: 0).\n")
    assert capfd.readouterr().err == (
        "[WARNING]  (5762) : Proxy f stopped (cumulated conns: FE: 1, BE: 0).\n")
    log.set_stderr_mirror(False)
    log.send_event([udp.target()], "warning", "quiet", pid=1)
    assert udp.recv().endswith(b": quiet\n")
    assert capfd.readouterr().err == ""
    log.set_stderr_mirror(True)
    log.send_event([], "info", "info has no mirror", pid=1)
    log.send_event([], "info", "forced", pid=1, mirror="NOTICE")
    assert capfd.readouterr().err == "[NOTICE]   (1) : forced\n"


def test_event_log_binds_proxy_tag(udp: Udp, capfd: pytest.CaptureFixture[str]) -> None:
    p = Proxy(name="b", caps=frozenset({"backend"}), kind="backend", mode="http",
              logs=(udp.target(),), log_tag="be")
    ev = log.EventLog(p, Global(), pid=77)
    ev.send("notice", "Server b/s1 is UP")
    assert udp.recv().endswith(b" be[77]: Server b/s1 is UP\n")
    assert capfd.readouterr().err == "[WARNING]  (77) : Server b/s1 is UP\n"


def test_proxy_stopped_line(udp: Udp, capfd: pytest.CaptureFixture[str]) -> None:
    # HAProxy 2.6.12 on SIGUSR1: <132>... haproxy[5762]: Proxy f stopped (cumulated conns:
    # FE: 1, BE: 0).  and  [WARNING]  (5762) : Proxy f stopped (...)  on stderr
    log.proxy_stopped(frontend(udp.target()), Global(), 1, 0, pid=5762)
    frame = udp.recv()
    assert frame.startswith(b"<132>")
    assert frame.endswith(b" haproxy[5762]: Proxy f stopped (cumulated conns: FE: 1, BE: 0).\n")
    assert capfd.readouterr().err == (
        "[WARNING]  (5762) : Proxy f stopped (cumulated conns: FE: 1, BE: 0).\n")


# ----------------------------------------------------------------------------- structlog


@pytest.fixture
def fresh_structlog() -> Iterator[None]:
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def test_structlog_json_lines(fresh_structlog: None) -> None:
    buf = StringIO()
    assert log.setup(json=True, level="info", file=buf, cache=False) is True
    assert log.setup(json=True) is False  # already configured: leave the host alone
    lg = log.get_logger("lb.test")
    lg.info("lb_start", version="1.0", pid=12)
    lg.debug("invisible")
    lg.warning("listener_error", address="127.0.0.1:80", error="Address already in use")
    lines = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert [x["event"] for x in lines] == ["lb_start", "listener_error"]
    assert lines[0]["level"] == "info" and lines[0]["logger_name"] == "lb.test"
    assert lines[0]["version"] == "1.0" and "timestamp" in lines[0]
    assert lines[1]["level"] == "warning"


def test_structlog_console_renderer(fresh_structlog: None) -> None:
    buf = StringIO()
    log.setup(json=False, level="debug", file=buf, cache=False)
    log.get_logger("lb.x").debug("reload", generation=2)
    out = buf.getvalue()
    assert "reload" in out and "generation" in out and not out.startswith("{")


def test_host_configuration_is_respected(fresh_structlog: None) -> None:
    structlog.configure(processors=[structlog.processors.JSONRenderer()])
    assert log.setup() is False


def test_server_state_events_reach_structlog() -> None:
    from lb.config.model import Config, Server
    from lb.state import OP_STOPPED, State

    be = Proxy(name="b", caps=frozenset({"backend"}), kind="backend", mode="http",
               servers=(Server(name="s1", host="127.0.0.1", port=1, puid=1, check=True),))
    st = State(Config(proxies=(be,)), now=1000.0)
    log.subscribe_state_events(st)
    with structlog.testing.capture_logs() as cap:
        st.backends["b"].by_name["s1"].set_operational(OP_STOPPED, 1001.0)
    ev = [e for e in cap if e["event"] == "server_state"]
    assert ev and ev[0]["backend"] == "b" and ev[0]["server"] == "s1"
    assert ev[0]["change"] == "op" and ev[0]["backend_up"] is False
