"""Logging: HAProxy traffic lines and event lines to syslog-style sinks, plus structlog.

Owns two channels (docs/ARCHITECTURE.md R8):
- traffic and event lines, byte-exact HAProxy formats: ``TrafficLog`` (one per
  frontend, built by ``build_traffic_log``), ``send_event`` / ``EventLog`` (server and
  proxy events, with the ``[WARNING]  (pid) : ...`` stderr mirror), and the sinks they
  write to (``stdout``/``stderr``/``fd@N``, UDP syslog, unix datagram sockets) with
  every syslog header format, level filtering and ``len`` truncation. Sinks never
  block: a send that would block is dropped and counted (``COUNTERS.dropped_logs``).
- operational events through structlog: ``setup()`` (called by ``lb.__main__`` only)
  and ``get_logger()``; event names are listed in docs/logging.md.

Line rendering lives in ``lb.logfmt`` (pure). This module is the I/O edge.
Must not import: lb.proxy, lb.cli, lb.lifecycle, healthcheck.
"""

from __future__ import annotations

import asyncio
import atexit
import datetime
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from os import strerror as _strerror
from os import write as _os_write
from time import time as _wall_time
from typing import Any

import structlog
from structlog import _config as _structlog_config
from structlog import contextvars as _structlog_contextvars

from lb import logfmt, logring
from lb.config.model import Global, LogTarget, Proxy

try:  # True only inside the Cython-compiled copy (tools/build_accel.py)
    import cython
    COMPILED = cython.compiled
except ImportError:  # pure Python without Cython installed
    COMPILED = False

LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
LEVEL = {name: i for i, name in enumerate(LEVELS)}
FACILITIES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp",
              "cron", "auth2", "ftp", "ntp", "audit", "alert", "cron2", "local0", "local1",
              "local2", "local3", "local4", "local5", "local6", "local7")
FACILITY = {name: i for i, name in enumerate(FACILITIES)}
FORMATS = ("local", "rfc3164", "rfc5424", "priority", "short", "timed", "iso", "raw")

EMERG, ALERT, CRIT, ERR, WARNING, NOTICE, INFO, DEBUG = range(8)

# Tag of every line when neither the proxy nor `global` sets `log-tag`. HAProxy uses its
# program name; lb keeps "haproxy" so that existing syslog filters keep matching
# (docs/logging.md).
DEFAULT_TAG = "haproxy"
DEFAULT_LEN = 1024

# stderr mirror prefixes, padded as HAProxy pads them.
MIRROR_PREFIX = {"ALERT": "[ALERT]    ", "WARNING": "[WARNING]  ", "NOTICE": "[NOTICE]   "}
_DEFAULT_MIRROR = ("ALERT", "WARNING", "WARNING", "WARNING", "WARNING", "WARNING", None, None)


class LogCounters:
    """Process-wide logging counters (``show info`` reads ``dropped_logs``)."""

    __slots__ = ("dropped_logs", "send_errors", "render_errors", "sent")

    def __init__(self) -> None:
        self.dropped_logs = 0
        self.send_errors = 0
        self.render_errors = 0
        self.sent = 0


COUNTERS = LogCounters()


def dropped_logs() -> int:
    return COUNTERS.dropped_logs


def get_logger(name: str | None = None) -> Any:
    """Module-level structlog logger (a lazy proxy: safe before ``setup``)."""
    if name is None:
        return structlog.get_logger()
    return structlog.get_logger(logger_name=name)


_log = get_logger("lb.log")
_reported: set[str] = set()


def _report_once(key: str, event: str, **kw: Any) -> None:
    if key in _reported:
        return
    _reported.add(key)
    try:
        _log.error(event, **kw)
    except Exception:  # the operational channel must never break the data plane
        pass


# --------------------------------------------------------------------------- headers


class Meta:
    """Per-sender header fields: tag, pid and the `log-send-hostname` value."""

    __slots__ = ("tag", "pid", "hostname", "local", "rfc3164", "rfc5424", "rfc5424_head")

    def __init__(self, tag: str = DEFAULT_TAG, pid: int | None = None,
                 hostname: str | None = None) -> None:
        self.tag = tag
        self.pid = os.getpid() if pid is None else pid
        self.hostname = hostname
        tp = f"{tag}[{self.pid}]: " if tag else ""
        self.local = tp.encode()
        self.rfc3164 = f"{hostname or 'localhost'} {tp}".encode()
        self.rfc5424_head = f"{hostname or '-'} {tag or '-'} {self.pid} - ".encode()
        self.rfc5424 = self.rfc5424_head + b"- "  # (no structured data)

    def with_sd(self, sd: bytes) -> Meta:
        """This sender's fields with ``sd`` as an rfc5424 line's structured data."""
        other = Meta.__new__(Meta)
        for name in Meta.__slots__:
            setattr(other, name, getattr(self, name))
        other.rfc5424 = self.rfc5424_head + sd + b" "
        return other


def make_meta(proxy: Proxy | None, global_: Global, pid: int | None = None) -> Meta:
    tag = (proxy.log_tag if proxy is not None else None) or global_.log_tag or DEFAULT_TAG
    host = global_.log_send_hostname
    if host == "":
        host = socket.gethostname()
    return Meta(tag, pid, host)


class _Clock:
    """Header timestamps, cached per second."""

    __slots__ = ("sec", "legacy", "iso_head", "iso_tz")

    def __init__(self) -> None:
        self.sec = -1
        self.legacy = b""
        self.iso_head = ""
        self.iso_tz = ""

    def _refresh(self, sec: int) -> None:
        tm = time.localtime(sec)
        self.legacy = (f"{logfmt.MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} "
                       f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} ").encode()
        self.iso_head = (f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d}"
                         f"T{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}")
        off = (tm.tm_gmtoff or 0) // 60
        sign = "+" if off >= 0 else "-"
        self.iso_tz = f"{sign}{abs(off) // 60:02d}:{abs(off) % 60:02d}"
        self.sec = sec

    def legacy_time(self, now: float) -> bytes:
        sec = int(now)
        if sec != self.sec:
            self._refresh(sec)
        return self.legacy

    def iso(self, now: float) -> bytes:
        sec, us = divmod(round(now * 1e6), 1000000)
        if sec != self.sec:
            self._refresh(sec)
        return f"{self.iso_head}.{us:06d}{self.iso_tz} ".encode()


_CLOCK = _Clock()


def reset_time_caches() -> None:
    """Forget cached header and line dates (after a time-zone change)."""
    _CLOCK.sec = -1
    logfmt.reset_date_caches()


def build_header(fmt: str, facility: int, level: int, now: float, meta: Meta) -> bytes:
    """The syslog header for one line (everything before the message)."""
    if fmt == "local":
        if meta.hostname:  # log-send-hostname switches the default format to rfc3164
            return b"<%d>%s%s" % (facility * 8 + level, _CLOCK.legacy_time(now), meta.rfc3164)
        return b"<%d>%s%s" % (facility * 8 + level, _CLOCK.legacy_time(now), meta.local)
    if fmt == "raw":
        return b""
    if fmt == "rfc3164":
        return b"<%d>%s%s" % (facility * 8 + level, _CLOCK.legacy_time(now), meta.rfc3164)
    if fmt == "rfc5424":
        return b"<%d>1 %s%s" % (facility * 8 + level, _CLOCK.iso(now), meta.rfc5424)
    if fmt == "priority":
        return b"<%d>" % (facility * 8 + level)
    if fmt == "short":
        return b"<%d>" % level
    if fmt == "timed":
        return b"<%d>%s" % (level, _CLOCK.iso(now))
    if fmt == "iso":
        return _CLOCK.iso(now)
    raise ValueError(f"unknown log format '{fmt}'")


# --------------------------------------------------------------------------- sinks


class Sink:
    """One log target: filters by level, builds the header, truncates, writes."""

    __slots__ = ("target", "fmt", "facility", "maxlevel", "minlevel", "length", "sent",
                 "dropped", "errors", "_limit", "_hsec", "_hlevel", "_hmeta", "_hdr",
                 "_cacheable", "sample_ranges", "sample_size", "_sample_idx")

    def __init__(self, target: LogTarget) -> None:
        if target.format not in FORMATS:
            raise ValueError(f"unknown log format '{target.format}'")
        self.target = target
        self.fmt = target.format
        try:
            self.facility = FACILITY[target.facility]
            self.maxlevel = LEVEL[target.level]
            self.minlevel = LEVEL[target.minlevel]
        except KeyError as e:
            raise ValueError(f"unknown log facility or level {e}") from None
        self.length = target.length or DEFAULT_LEN
        self.sent = 0
        self.dropped = 0
        self.errors = 0
        self._limit = self.length
        # headers without sub-second time are reused for a whole second
        self._cacheable = self.fmt not in ("rfc5424", "timed", "iso")
        # the cached header's second, level and meta (level -1: none cached yet)
        self._hsec = -1
        self._hlevel = -1
        self._hmeta: Meta | None = None
        self._hdr = b""
        # `sample R:S`: lines that pass the level filter are numbered 1..S, again and
        # again; those in a range are sent (one counter per configured log line)
        self.sample_ranges = target.sample
        self.sample_size = target.sample_size if target.sample else 0
        self._sample_idx = 0

    def send(self, level: int, msg: bytes, now: float, meta: Meta) -> None:
        if level > self.maxlevel:
            return
        if self.sample_size and not self._sampled():
            return
        if level < self.minlevel:
            level = self.minlevel
        if self._cacheable:
            sec = int(now)
            if sec != self._hsec or level != self._hlevel or meta is not self._hmeta:
                self._hdr = build_header(self.fmt, self.facility, level, now, meta)
                self._hsec = sec
                self._hlevel = level
                self._hmeta = meta
            hdr = self._hdr
        else:
            hdr = build_header(self.fmt, self.facility, level, now, meta)
        if len(hdr) + len(msg) > self._limit:
            self._write((hdr + msg)[:self._limit] + b"\n")
        else:
            self._write_line(hdr, msg)

    def _sampled(self) -> bool:
        """Count one line against the sample; whether it falls in a range."""
        n = self._sample_idx + 1
        self._sample_idx = n % self.sample_size
        for low, high in self.sample_ranges:
            if low <= n <= high:
                return True
        return False

    def _write_line(self, hdr: bytes, msg: bytes) -> None:
        """``hdr + msg + LF`` as one write (a sink may send the parts as they are)."""
        self._write(b"".join((hdr, msg, b"\n")))

    def _write(self, data: bytes) -> None:
        raise NotImplementedError

    def _dropped(self) -> None:
        self.dropped += 1
        COUNTERS.dropped_logs += 1

    def _failed(self, err: OSError) -> None:
        self.errors += 1
        COUNTERS.send_errors += 1
        _report_once(f"send:{self.describe()}", "log_send_error", target=self.describe(),
                     error=str(err))

    def describe(self) -> str:
        t = self.target
        if t.kind in ("udp", "tcp") and t.port is not None:
            return f"{t.kind}:{t.address}:{t.port}"
        return f"{t.kind}:{t.address}"

    def close(self) -> None:
        pass


class FdSink(Sink):
    """stdout / stderr / fd@N: one write per line (whole header + message + LF).

    The whole line including its LF is at most ``len`` bytes (checked against HAProxy).
    """

    __slots__ = ("fd",)

    def __init__(self, target: LogTarget, fd: int) -> None:
        super().__init__(target)
        self.fd = fd
        self._limit = self.length - 1
        try:
            # HAProxy makes log fds non-blocking; a terminal is left alone because its
            # file description is shared with the shell that started us.
            if not os.isatty(fd):
                os.set_blocking(fd, False)
        except OSError as e:
            raise ValueError(f"cannot use fd@{fd} for logs: {e.strerror}") from None

    def _write(self, data: bytes) -> None:
        try:
            os.write(self.fd, data)
            self.sent += 1
        except (BlockingIOError, InterruptedError):
            self._dropped()
        except OSError as e:
            self._failed(e)


class DgramSink(Sink):
    """UDP syslog (IPv4/IPv6) or a unix datagram socket; non-blocking ``sendto``.

    The header plus message is cut at ``len`` bytes, then LF is appended (so a datagram
    is at most ``len + 1`` bytes, as HAProxy 2.6 sends it).
    """

    __slots__ = ("sock", "addr", "connected", "fd")

    def __init__(self, target: LogTarget) -> None:
        super().__init__(target)
        self.connected = False
        self.fd = -1
        if target.kind == "unix":
            family = socket.AF_UNIX
            self.addr: Any = target.address
        else:
            port = target.port if target.port is not None else 514
            try:
                infos = socket.getaddrinfo(target.address, port, type=socket.SOCK_DGRAM)
            except OSError as e:
                raise ValueError(f"cannot resolve log server '{target.address}': {e}"
                                 ) from None
            family, _, _, _, self.addr = infos[0]
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 0)
        except OSError:
            pass
        if family != socket.AF_UNIX:
            # a connected UDP socket skips the per-datagram route and address lookup
            # (send: 2.6 us against sendto: 3.0 us a line here). Not for unix sockets:
            # one connected to a syslogd that restarts would stay bound to the old one.
            try:
                self.sock.connect(self.addr)
                self.connected = True
                self.fd = self.sock.fileno()
            except OSError:
                pass

    def _write_line(self, hdr: bytes, msg: bytes) -> None:
        # compiled, on a connected socket: the parts copied into a C buffer and sent
        # (log.pxd), without a joined bytes object
        err = _dgram_send_line_c(self.fd, hdr, msg) if COMPILED and self.connected else -1  # noqa: F821
        if err < 0:
            self._write(b"".join((hdr, msg, b"\n")))
        elif err > 0:  # as os.write would raise it, subclass and all
            self._send_failed(OSError(err, _strerror(err)))
        else:
            self.sent += 1

    def _write(self, data: bytes) -> None:
        try:
            if self.connected:
                err = _dgram_send_c(self.fd, data) if COMPILED else -1  # noqa: F821
                if err > 0:  # (log.pxd) as os.write would raise it, subclass and all
                    raise OSError(err, _strerror(err))
                if err < 0:
                    # write(2) on the connected socket is send(2) without flags;
                    # os.write parses its arguments faster than socket.send
                    _os_write(self.fd, data)
            else:
                self.sock.sendto(data, self.addr)
            self.sent += 1
        except OSError as e:
            self._send_failed(e)

    def _send_failed(self, e: OSError) -> None:
        if isinstance(e, BlockingIOError | InterruptedError):
            self._dropped()
        elif isinstance(e, ConnectionRefusedError) and self.connected:
            # connected UDP only: an earlier datagram met a closed port (ICMP). The
            # line is dropped, as an unconnected socket would drop it without a word.
            self._dropped()
        else:
            self._failed(e)

    def close(self) -> None:
        self.connected = False  # the descriptor may be reused by the next socket
        self.fd = -1
        self.sock.close()


class RingSink(Sink):
    """ring@<name> / tcp@<addr>: lines go into a ring (lb.logring), which keeps them
    for `show events` and forwards them to its servers. A named ring's own format
    and maxlen apply, not the log line's (as in HAProxy 2.6.12)."""

    __slots__ = ("ring",)

    def __init__(self, target: LogTarget) -> None:
        super().__init__(target)
        self.ring = logring.ring_for(target)
        self.fmt = self.ring.format
        self._limit = self.ring.maxlen + 1  # (the ring cuts whole lines at its maxlen)
        self._cacheable = self.fmt not in ("rfc5424", "timed", "iso")

    def send(self, level: int, msg: bytes, now: float, meta: Meta) -> None:
        # the log line's `len` cuts the message before the header goes in front of it
        # (HAProxy 2.6.12: `log tcp@... len 80` wrote 80 bytes after a 37-byte header)
        if len(msg) > self.length:
            msg = msg[:self.length]
        Sink.send(self, level, msg, now, meta)

    def _write(self, data: bytes) -> None:
        self.ring.add(data[:-1] if data.endswith(b"\n") else data)
        self.sent += 1

    def describe(self) -> str:
        return f"ring:{self.ring.name}"


_SINKS: dict[LogTarget, Sink] = {}


def get_sink(target: LogTarget) -> Sink:
    """The (shared) sink for a target. Raises ValueError when it cannot be used."""
    s = _SINKS.get(target)
    if s is not None:
        return s
    kind = target.kind
    if kind == "stdout":
        s = FdSink(target, 1)
    elif kind == "stderr":
        s = FdSink(target, 2)
    elif kind == "fd":
        try:
            fd = int(target.address)
        except ValueError:
            raise ValueError(f"invalid log fd '{target.address}'") from None
        s = FdSink(target, fd)
    elif kind in ("udp", "unix"):
        s = DgramSink(target)
    elif kind in ("ring", "tcp"):
        s = RingSink(target)
    else:
        raise ValueError(f"log target type '{kind}' is not supported by lb")
    _SINKS[target] = s
    return s


def close_sinks() -> None:
    """Close every shared sink (reload/exit; also used by tests)."""
    for s in _SINKS.values():
        try:
            s.close()
        except OSError:
            pass
    _SINKS.clear()
    logring.close_rings()


def _sinks_for(targets: Sequence[LogTarget]) -> list[Sink]:
    out = []
    for t in targets:
        try:
            out.append(get_sink(t))
        except ValueError as e:
            _report_once(f"sink:{t!r}", "log_target_unusable", target=f"{t.kind}:{t.address}",
                         origin=str(t.origin), error=str(e))
    return out


def _msg_limit(sinks: Sequence[Sink]) -> int:
    # HAProxy builds the message in a buffer of the largest `len` of all targets.
    return max((s.length for s in sinks), default=DEFAULT_LEN) - 1


# --------------------------------------------------------------------------- traffic log


class TrafficLog:
    """A frontend's traffic logger. ``emit`` is on the hot path: no dicts, no structlog."""

    __slots__ = ("fmt", "sinks", "meta", "mode", "dontlognull", "dontlog_normal",
                 "separate_errors", "msg_limit", "name", "counters", "early", "sd_fmt",
                 "error_fmt")

    def __init__(self, name: str, fmt: logfmt.TrafficFormat | None, sinks: list[Sink],
                 meta: Meta, mode: str = "http", dontlognull: bool = False,
                 dontlog_normal: bool = False, separate_errors: bool = False,
                 sd_fmt: logfmt.TrafficFormat | None = None,
                 error_fmt: logfmt.TrafficFormat | None = None) -> None:
        self.name = name
        self.fmt = fmt
        # `error-log-format`: for what ends before its stream (``txn.embryonic``)
        self.error_fmt = error_fmt
        # `log-format-sd`, kept only when an rfc5424 target will show it
        self.sd_fmt = sd_fmt
        self.sinks = tuple(sinks)
        self.meta = meta
        self.mode = mode
        self.dontlognull = dontlognull
        self.dontlog_normal = dontlog_normal
        self.separate_errors = separate_errors
        self.msg_limit = _msg_limit(sinks)
        self.counters = COUNTERS  # typed when compiled (log.pxd): C increments
        # lines go out at the response head / server connection (lb.logfmt.TrafficFormat)
        self.early = fmt is not None and fmt.early

    def is_error(self, txn: Any) -> bool:
        """HAProxy's notion of a not-normal stream (option dontlog-normal / log-separate-errors)."""
        term = txn.term
        return bool(txn.redispatched or (term[:1] not in (b"-", b"L", "-", "L"))
                    or (txn.retries > 0)
                    or (self.mode == "http" and txn.status >= 500))

    def emit(self, txn: Any, empty: bool = False) -> None:
        """Log one finished request/stream. ``empty``: no byte was ever received."""
        fmt = self.fmt
        if fmt is None or (empty and self.dontlognull):
            return
        main = fmt
        if self.error_fmt is not None and txn.embryonic:
            fmt = self.error_fmt
        level = INFO
        try:
            if self.dontlog_normal or self.separate_errors:
                err = self.is_error(txn)
                if not err and self.dontlog_normal:
                    return
                if err and self.separate_errors:
                    level = ERR
            line = fmt.render(txn)
            sd = self.sd_fmt.render(txn) if self.sd_fmt is not None else None
        except Exception as e:  # a data-plane field of the wrong type: count, never raise
            COUNTERS.render_errors += 1
            _report_once(f"render:{self.name}", "log_render_error", frontend=self.name,
                         error=repr(e))
            return
        main.log_count += 1  # (%lc: the frontend's count, whichever format the line took)
        if self.error_fmt is not None:
            self.error_fmt.log_count = main.log_count
        self.send(level, line, None, sd)

    def emit_connect(self, txn: Any) -> None:
        """The default accept line, for a frontend with log targets but no format."""
        if self.fmt is not None:
            return
        try:
            line = logfmt.connect_line(txn, self.mode)
        except Exception as e:
            COUNTERS.render_errors += 1
            _report_once(f"render:{self.name}", "log_render_error", frontend=self.name,
                         error=repr(e))
            return
        self.send(INFO, line)

    def conn_error(self, conn: Any, why: str, empty: bool) -> None:
        """A connection ended before its session (``why``: HAProxy's text, e.g. for a
        bad PROXY header), logged as HAProxy does without `error-log-format`: only by
        a frontend with a log format, at level err under `option log-separate-errors`;
        `option dontlognull` keeps out the ``empty`` ones (nothing received). (With
        one, the connection logs an embryonic exchange through ``emit``.)"""
        if self.fmt is None or (empty and self.dontlognull):
            return
        lst = conn.listener
        line = logfmt.conn_error_line(conn.src, conn.src_port, conn.accept_ts, self.name,
                                      lst.label if lst is not None else "0", why)
        self.send(ERR if self.separate_errors else INFO, line)

    def send(self, level: int, line: bytes, now: float | None = None,
             sd: bytes | None = None) -> None:
        """``sd``: the line's rendered `log-format-sd` (empty: rfc5424's ``-``)."""
        if len(line) > self.msg_limit:
            line = line[:self.msg_limit]
        if now is None:
            now = _wall_time()
        meta = self.meta if not sd else self.meta.with_sd(sd)
        for s in self.sinks:
            s.send(level, line, now, meta)
        self.counters.sent += 1


def build_traffic_log(proxy: Proxy, global_: Global, pid: int | None = None
                      ) -> TrafficLog | None:
    """The traffic logger of a frontend, or None when it has no usable log target.

    Without ``option httplog/tcplog`` or ``log-format`` the logger only emits the
    ``Connect from`` accept line (``emit_connect``). Raises ``logfmt.LogFormatError``
    for an invalid log-format.
    """
    if not proxy.logs:
        return None
    o = proxy.options
    text = logfmt.resolve_format_text(proxy.log_format, o.httplog, o.httplog_clf, o.tcplog,
                                      proxy.mode)
    fmt = (logfmt.compile_traffic_format(text, proxy.mode, len(proxy.captures_req),
                                         len(proxy.captures_res), o.logasap)
           if text else None)
    sinks = _sinks_for(proxy.logs)
    if not sinks:
        return None
    error_fmt = (logfmt.compile_traffic_format(proxy.error_log_format, proxy.mode,
                                               len(proxy.captures_req),
                                               len(proxy.captures_res), False)
                 if fmt is not None and proxy.error_log_format else None)
    sd_fmt = (logfmt.compile_traffic_format(proxy.log_format_sd, proxy.mode,
                                            len(proxy.captures_req), len(proxy.captures_res),
                                            o.logasap)
              if fmt is not None and proxy.log_format_sd
              and any(s.fmt == "rfc5424" for s in sinks) else None)
    return TrafficLog(proxy.name, fmt, sinks, make_meta(proxy, global_, pid), proxy.mode,
                      o.dontlognull, o.dontlog_normal, o.log_separate_errors, sd_fmt,
                      error_fmt)


# --------------------------------------------------------------------------- event lines

_mirror_enabled = True


def set_stderr_mirror(enabled: bool) -> None:
    """Turn the ``[WARNING]  (pid) : ...`` stderr copies on (foreground) or off."""
    global _mirror_enabled
    _mirror_enabled = enabled


def mirror_line(kind: str, pid: int, text: str) -> bytes:
    return f"{MIRROR_PREFIX[kind]}({pid}) : {text}\n".encode("utf-8", "replace")


def send_event(targets: Sequence[LogTarget], level: str | int, text: str,
               tag: str = DEFAULT_TAG, pid: int | None = None, *,
               hostname: str | None = None, mirror: str | None | bool = True,
               mirror_text: str | None = None, meta: Meta | None = None) -> None:
    """Send one event line (server/proxy state, soft stop ...) to ``targets``.

    ``level`` is a syslog level name or number. ``mirror``: True = HAProxy's default
    stderr copy for that level (emerg → ALERT, alert..notice → WARNING, info/debug →
    none), a kind ("ALERT", "WARNING", "NOTICE"), or False/None for no copy.
    ``mirror_text`` replaces ``text`` on stderr (HAProxy words a few events
    differently there, e.g. ``backend 'b' has no server available!``).
    """
    lvl = level if isinstance(level, int) else LEVEL[level]
    if meta is None:
        meta = Meta(tag, pid, hostname)
    if targets:
        sinks = _sinks_for(targets)
        if sinks:
            msg = text.encode("utf-8", "surrogateescape")
            limit = _msg_limit(sinks)
            if len(msg) > limit:
                msg = msg[:limit]
            now = time.time()
            for s in sinks:
                s.send(lvl, msg, now, meta)
    kind = _DEFAULT_MIRROR[lvl] if mirror is True else (mirror or None)
    if kind and _mirror_enabled:
        flush_events()  # the event lines written before it first
        try:
            os.write(2, mirror_line(kind, meta.pid, mirror_text or text))
        except OSError:
            COUNTERS.dropped_logs += 1


class EventLog:
    """Event lines of one proxy (its `log` targets, tag and pid bound once)."""

    __slots__ = ("targets", "meta")

    def __init__(self, proxy: Proxy, global_: Global, pid: int | None = None) -> None:
        self.targets = proxy.logs
        self.meta = make_meta(proxy, global_, pid)

    def send(self, level: str | int, text: str, mirror: str | None | bool = True,
             mirror_text: str | None = None) -> None:
        send_event(self.targets, level, text, mirror=mirror, mirror_text=mirror_text,
                   meta=self.meta)


def proxy_stopped(proxy: Proxy, global_: Global, fe_conns: int, be_conns: int,
                  pid: int | None = None) -> None:
    """Soft stop (SIGUSR1): ``Proxy f stopped (cumulated conns: FE: 1, BE: 0).`` at
    level warning to the proxy's targets, with the ``[WARNING]`` stderr copy (HAProxy
    2.6.12 sends it for every frontend, backend and listen)."""
    EventLog(proxy, global_, pid).send(
        WARNING, f"Proxy {proxy.name} stopped (cumulated conns: FE: {fe_conns}, "
                 f"BE: {be_conns}).")


def subscribe_state_events(state: Any, logger: Any = None) -> Callable[[str, dict], None]:
    """Log every server state change of ``state`` as a structlog ``server_state`` event.

    Only the operational channel: the HAProxy event lines are sent by their authors
    (health checks, CLI) through ``send_event``. Returns the listener (to remove it).
    """
    lg = logger if logger is not None else _log

    def listener(event: str, info: dict[str, Any]) -> None:
        if not event.startswith("server_"):
            return
        srv = info.get("server")
        be = info.get("backend")
        try:
            lg.info("server_state", change=event[7:],
                    backend=getattr(be, "name", None), server=getattr(srv, "name", None),
                    status=srv.status_text() if srv is not None else None,
                    backend_up=info.get("backend_up"))
        except Exception:
            pass

    state.listeners.append(listener)
    return listener


# --------------------------------------------------------------------------- structlog


class _StderrWriter:
    """File-like stderr for structlog and the event batch: one os.write per call,
    never raises."""

    def __init__(self, fd: int = 2) -> None:
        self.fd = fd

    def write(self, text: str) -> int:
        try:
            return os.write(self.fd, text.encode("utf-8", "replace"))
        except OSError:
            COUNTERS.dropped_logs += 1
            return 0

    def flush(self) -> None:
        pass


def setup(json: bool | None = None, level: str = "info", *, file: Any = None,
          cache: bool = True) -> bool:
    """Configure structlog for lb's operational events (``lb.__main__`` calls this once).

    JSON lines when stderr is not a terminal (or ``json=True``), the console renderer
    on a terminal. Does nothing and returns False when the host already configured
    structlog. ``file`` replaces stderr (tests); ``cache=False`` keeps loggers
    re-configurable (tests using ``structlog.testing.capture_logs``).
    """
    if structlog.is_configured():
        return False
    out = file if file is not None else _StderrWriter()
    if json is None:
        try:
            json = not os.isatty(2) if file is None else True
        except OSError:
            json = True
    lvl = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    if json:
        processors += [structlog.processors.format_exc_info,
                       structlog.processors.JSONRenderer()]
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    wrapper = structlog.make_filtering_bound_logger(lvl)
    batch = _TurnBatch(out) if json else None
    # structlog's own lines first write what the batch holds: lines keep their order
    factory = structlog.WriteLoggerFactory(file=out if batch is None
                                           else _BatchFirst(out, batch))
    structlog.configure(
        processors=processors,
        wrapper_class=wrapper,
        logger_factory=factory,
        cache_logger_on_first_use=cache,
    )
    global _fast_chain
    _fast_chain = (_FastChain(processors, wrapper, factory, out, lvl, batch)
                   if batch is not None else None)
    return True


# ----------------------------------------------------------- per-connection events

class _TurnBatch:
    """Per-connection event lines leave together, in one write at most every ``delay``.

    A WebSocket handshake logs ``tunnel_open`` and, when it ends, ``tunnel_close``.
    One write per line was a system call each, and so was one write per turn of the
    event loop when a moderate load spreads the lines over many turns (issue #9).
    While a loop runs, the first line of a batch arms a timer of ``delay`` seconds on
    it; the batch is written when the timer fires or as soon as it holds ``limit``
    characters. Outside a running loop a line is written at once. A loop that stops
    before its timer fires leaves its lines to the next loop's timer, to ``flush``
    (the runner calls it when it stops) or to the exit.
    """

    __slots__ = ("out", "lines", "limit", "size", "delay", "loop")

    def __init__(self, out: Any, limit: int = 16384, delay: float = 0.01) -> None:
        self.out = out
        self.lines: list[str] = []
        self.limit = limit
        self.size = 0
        self.delay = delay
        self.loop: Any = None  # the loop whose timer will write the batch
        atexit.register(self.flush)

    def write(self, line: str) -> None:
        self.lines.append(line)
        self.size += len(line)
        if self.size >= self.limit:
            self.flush()
            return
        loop = self.loop
        if loop is None or not loop.is_running():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop running: now
                self.flush()
                return
            loop.call_later(self.delay, self._due)
            self.loop = loop

    def _due(self) -> None:
        self.loop = None
        self.flush()

    def flush(self) -> None:
        if not self.lines:
            return
        text = "".join(self.lines)
        self.lines.clear()
        self.size = 0
        try:
            self.out.write(text)
            self.out.flush()
        except (OSError, ValueError):  # closed stream: as structlog's WriteLogger would
            COUNTERS.dropped_logs += 1


class _BatchFirst:
    """structlog's file: writes what the event batch holds, then the line."""

    __slots__ = ("out", "batch", "__weakref__")  # (structlog keeps a lock per file)

    def __init__(self, out: Any, batch: _TurnBatch) -> None:
        self.out = out
        self.batch = batch

    def write(self, text: str) -> Any:
        self.batch.flush()
        return self.out.write(text)

    def flush(self) -> None:
        self.out.flush()


def flush_events() -> None:
    """Write the per-connection event lines still waiting for their batch's timer."""
    if _fast_chain is not None:
        _fast_chain.batch.flush()


class _FastChain:
    """What ``setup`` configured, to recognise it later (see ``InfoEvent``)."""

    __slots__ = ("processors", "count", "last", "wrapper", "factory", "out", "enabled",
                 "batch", "config", "context_vars")

    def __init__(self, processors: list[Any], wrapper: Any, factory: Any, out: Any,
                 level: int, batch: _TurnBatch) -> None:
        self.processors = processors
        self.count = len(processors)
        self.last = processors[-1]
        self.wrapper = wrapper
        self.factory = factory
        self.out = out
        self.enabled = level <= logging.INFO
        self.batch = batch
        # structlog keeps one configuration object for the process and changes what
        # is in it: its dict, and the dict of the module that holds the registry of
        # context variables, are read directly below (two events per WebSocket,
        # issue #9; attribute lookups cost about 1.4k instructions an event)
        self.config = vars(_structlog_config._CONFIG)
        self.context_vars = vars(_structlog_contextvars)

    def current(self) -> bool:
        """Still the configuration setup() made, with no context-local values bound."""
        cfg = self.config
        procs = cfg.get("default_processors")
        # structlog.testing.capture_logs keeps the list but changes what is in it
        return (procs is self.processors and len(procs) == self.count
                and procs[-1] is self.last
                and cfg.get("default_wrapper_class") is self.wrapper
                and cfg.get("logger_factory") is self.factory
                and not self.context_vars.get("_CONTEXT_VARS"))


_fast_chain: _FastChain | None = None
_UTC = datetime.UTC


class _IsoStamp:
    """structlog's ``TimeStamper(fmt="iso", utc=True)`` text for the current time.

    The same text as ``datetime.now(UTC).isoformat()`` with ``Z`` for ``+00:00``
    (microseconds floored from the nanosecond clock, omitted when zero), with the
    date and time of day formatted once per second.
    """

    __slots__ = ("sec", "head")

    def __init__(self) -> None:
        self.sec = -1
        self.head = ""

    def __call__(self) -> str:
        return self.text()

    def text(self) -> str:
        us = self.now_us()
        if us:
            return f"{self.head}.{us:06d}Z"
        return self.head + "Z"

    def now_us(self) -> int:
        """The microseconds of the current time; ``head`` is then its date and time
        of day to the second."""
        # C integers when compiled (log.pxd): the clock fits in 64 bits until 2262.
        # Compiled, time.time_ns's clock is read in C, without a call into Python,
        # unless _time_ns was replaced (tests set the time through it)
        if COMPILED and _time_ns is _TIME_NS:
            now = _realtime_ns_c()  # noqa: F821 (log.pxd)
        else:
            now = _time_ns()
        sec = now // 1_000_000_000
        us = (now - sec * 1_000_000_000) // 1000
        if sec != self.sec:
            day = datetime.datetime.fromtimestamp(sec, _UTC).replace(tzinfo=None)
            self.head = day.isoformat()
            self.sec = sec
        return us


_TIME_NS = time.time_ns
_time_ns = _TIME_NS


_iso_stamp = _IsoStamp()
_json_str = json.encoder.encode_basestring_ascii  # what json.dumps uses (ensure_ascii)


class InfoEvent:
    """A structlog info event sent once per connection (``tunnel_open``, ...).

    ``InfoEvent("lb.tunnel", "tunnel_open", ("tunnel_id", ...))(1, ...)`` logs exactly
    what ``get_logger("lb.tunnel").info("tunnel_open", tunnel_id=1, ...)`` logs. When
    structlog still runs the JSON chain ``setup`` built (merge_contextvars with nothing
    bound, add_log_level, TimeStamper(iso, utc), StackInfoRenderer, format_exc_info,
    JSONRenderer, WriteLogger), the line is rendered here directly, byte for byte the
    same, at a fraction of the cost of the generic pipeline (it ran twice per
    WebSocket handshake). Any other configuration (console renderer, a host's own
    set-up, ``structlog.testing.capture_logs``, bound context variables) goes through
    structlog as usual.
    """

    __slots__ = ("logger", "event", "keys", "start", "lits", "tail")

    def __init__(self, logger_name: str, event: str, keys: Sequence[str]) -> None:
        self.logger = get_logger(logger_name)
        self.event = event
        self.keys = tuple(keys)
        # {"logger_name": "<name>", "<key>": <value>, ... "event": "<event>",
        #  "level": "info", "timestamp": "<iso>"}: the key order of structlog's event
        # dict, as literal pieces joined with the rendered values (one join per line)
        self.start = '{"logger_name": ' + _json_str(logger_name)
        self.lits = tuple(", " + _json_str(k) + ": " for k in self.keys)
        self.tail = ', "event": ' + _json_str(event) + ', "level": "info", "timestamp": "'

    def __call__(self, *values: Any) -> None:
        self._render(values)

    def _render(self, values: tuple[Any, ...]) -> None:
        fast = _fast_chain
        if fast is None or not fast.current():
            if fast is not None:
                fast.batch.flush()  # keep the order of lines on the same stream
            self.logger.info(self.event, **dict(zip(self.keys, values, strict=True)))
            return
        if not fast.enabled:
            return
        lits = self.lits
        if len(values) != len(lits):
            raise TypeError(f"{self.event}: {len(lits)} values expected, {len(values)} given")
        if COMPILED:
            # the whole line in one C buffer (log.pxd), for the values it renders
            line = _event_line_c(self.start, lits, values, self.tail,  # noqa: F821
                                 _iso_stamp)
            if line is not None:
                fast.batch.write(line)
                return
        parts = [self.start]
        i = 0
        for v in values:
            parts.append(lits[i])
            i += 1
            t = type(v)
            if t is str:
                parts.append(_json_str(v))
            elif t is int:
                parts.append(str(v))
            elif t is bool:
                parts.append("true" if v else "false")
            elif v is None:
                parts.append("null")
            else:  # anything else: structlog's own rendering
                fast.batch.flush()
                self.logger.info(self.event, **dict(zip(self.keys, values, strict=True)))
                return
        parts.append(self.tail)
        iso = _iso_stamp
        parts.append(iso.text())
        parts.append('"}\n')
        fast.batch.write("".join(parts))
