"""The byte tunnel after a 101 (and the relay of `mode tcp`).

Owns: ``Tunnel`` and its two ``_End`` protocols installed with ``set_protocol`` on the
client and server transports. Both tails (client bytes after its request head, server
bytes after the 101 head) are written first, exactly once and in order; then bytes are
forwarded as received with cross pause/resume (ARCHITECTURE §7.5). ``timeout tunnel``
replaces client/server timeouts; after one side's half-close, which is propagated
with ``write_eof``, the other side's ``server-fin``/``client-fin`` applies (an HTTP
tunnel ends at the server's FIN instead). Byte counters are added to the
frontend, backend and server as they flow. The close records HAProxy's termination
code (cD sD CD SD --) and a plain reason (``lb.state.WS_CLOSE_REASONS``).

Must not import: lb.cli, healthcheck.
"""

from __future__ import annotations

import asyncio
from typing import Any

from lb.proxy.sockio import send_fd
from lb.proxy.timers import Deadline

_OPEN_KEYS = ("tunnel_id", "frontend", "backend", "server", "client", "websocket")
_CLOSE_KEYS = ("tunnel_id", "frontend", "backend", "server", "reason", "duration_ms",
               "bytes_in", "bytes_out")
try:
    from lb.log import InfoEvent
    _ev_open: Any = InfoEvent("lb.tunnel", "tunnel_open", _OPEN_KEYS)
    _ev_close: Any = InfoEvent("lb.tunnel", "tunnel_close", _CLOSE_KEYS)
except Exception:  # the log layer is missing or broken: plain structlog
    import structlog

    _log = structlog.get_logger(logger_name="lb.tunnel")

    def _ev_open(*values: Any) -> None:
        _log.info("tunnel_open", **dict(zip(_OPEN_KEYS, values, strict=True)))

    def _ev_close(*values: Any) -> None:
        _log.info("tunnel_close", **dict(zip(_CLOSE_KEYS, values, strict=True)))


class _End:
    __slots__ = ("tun", "is_client")

    def __init__(self, tun: Tunnel, is_client: bool) -> None:
        self.tun = tun
        self.is_client = is_client

    def data_received(self, data: bytes) -> None:
        if self.is_client:
            self.tun.from_client(data)
        else:
            self.tun.from_server(data)

    def eof_received(self) -> bool:
        self.tun.eof(self.is_client)
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.tun.lost(self.is_client, exc)

    def pause_writing(self) -> None:
        t = self.tun
        other = t.st if self.is_client else t.ct
        if not other.is_closing():
            other.pause_reading()

    def resume_writing(self) -> None:
        t = self.tun
        other = t.st if self.is_client else t.ct
        if not other.is_closing():
            other.resume_reading()


class Tunnel:
    __slots__ = (
        "id", "rt", "txn", "conn", "ct", "st", "fc", "bc", "sc", "up", "down", "cfin", "sfin",
        "closed", "timer", "timeout", "t_open", "ws", "srv_name", "fe_name", "be_name",
        "on_close", "frames", "events", "http", "t_last", "cfd", "sfd",
    )

    def __init__(self, rt: Any, ct: asyncio.Transport, st: asyncio.Transport,
                 fc: Any, bc: Any, sc: Any, timeout: float | None, ws: bool) -> None:
        self.rt = rt
        self.id = 0
        self.txn: Any = None
        self.conn: Any = None
        self.ct = ct
        self.st = st
        self.fc = fc
        self.bc = bc
        self.sc = sc
        self.up = 0
        self.down = 0
        self.cfin = False
        self.sfin = False
        self.closed = False
        self.timeout = timeout
        # (self.rt, typed when compiled, rather than the argument: C field reads)
        self.timer = Deadline(self.rt.wheel, self._expired)
        self.t_open = self.rt.clock()
        self.t_last = self.t_open  # loop time of the last relayed bytes (no timeout)
        self.ws = ws
        self.srv_name = ""
        self.fe_name = ""
        self.be_name = ""
        self.on_close: Any = None
        self.frames: Any = None
        self.events = False  # structlog tunnel_open/tunnel_close (HTTP upgrades only)
        self.http = False  # after a 101 (ends at the server's FIN)
        # the descriptors the compiled pump sends on (lb.proxy.sockio): -2 until the
        # first chunk each way looks them up, -1 to write through the transport
        self.cfd = -2
        self.sfd = -2

    # ---- pump
    def from_client(self, data: bytes) -> None:
        n = len(data)
        self.up += n
        fc, bc, sc = self.fc, self.bc, self.sc
        fc.bin += n
        bc.bin += n
        sc.bin += n
        if self.ws:
            fc.ws_bytes_in += n
            bc.ws_bytes_in += n
            sc.ws_bytes_in += n
        fd = self.sfd
        if fd == -2:
            fd = self.sfd = send_fd(self.st)
        self.rt.sendq.later(self.st, fd, data)  # (with this turn's other sends)
        if self.frames is not None:
            self.frames.feed(data)
        if self.timeout is not None:
            self.timer.touch()  # also dates the last activity (see last_activity)
        else:
            self.t_last = self.rt.clock()

    def from_server(self, data: bytes) -> None:
        n = len(data)
        self.down += n
        fc, bc, sc = self.fc, self.bc, self.sc
        fc.bout += n
        bc.bout += n
        sc.bout += n
        if self.ws:
            fc.ws_bytes_out += n
            bc.ws_bytes_out += n
            sc.ws_bytes_out += n
        fd = self.cfd
        if fd == -2:
            fd = self.cfd = send_fd(self.ct)
        self.rt.sendq.later(self.ct, fd, data)
        if self.frames is not None:
            self.frames.feed_server(data)
        if self.timeout is not None:
            self.timer.touch()
        else:
            self.t_last = self.rt.clock()

    @property
    def last_activity(self) -> float:
        """Epoch time of the last byte relayed either way (`show websockets` idle).
        With a timeout the deadline already holds it (expiry minus delay), so the
        pump pays for no extra clock read."""
        tm = self.timer
        t = self.t_last
        if tm.when >= 0.0 and tm.delay >= 0.0:
            t = max(t, tm.when - tm.delay)
        return t + self.rt.epoch_offset

    def eof(self, is_client: bool) -> None:
        # the second FIN ends the tunnel: closing sends ours, no shutdown() first.
        # After one side's FIN the wait is on the other side, as in HAProxy: the
        # client finished, so the server's side times out (`server-fin`, else the
        # tunnel timeout; sD), and the reverse (`client-fin`; cD). An HTTP tunnel
        # ends at the server's FIN, as HAProxy 2.6's H1 mux does (observed: `----`,
        # the client's later bytes refused).
        self.rt.sendq.flush()  # (bytes queued go before the FIN or the close)
        if is_client:
            self.cfin = True
            if self.sfin:
                self.close("client_closed", b"--")
                return
            _write_eof(self.st)
            fin = self.fin_timeout(False)
            if fin is not None:
                self.timer.arm(fin, self._server_fin)
        else:
            self.sfin = True
            if self.cfin or self.http:
                self.close("server_closed", b"--")
                return
            _write_eof(self.ct)
            fin = self.fin_timeout(True)
            if fin is not None:
                self.timer.arm(fin, self._client_fin)

    def fin_timeout(self, client_side: bool) -> float | None:
        """How long one side may stay mute once the other has sent its FIN."""
        txn = self.txn
        if txn is None:
            return self.timeout
        if client_side:
            return txn.fe.t_client_fin or self.timeout
        return txn.be.t_server_fin or self.timeout

    def lost(self, is_client: bool, exc: Exception | None) -> None:
        if self.closed:
            return
        if is_client:
            self.close("client_closed", b"CD" if exc is not None else b"--")
        else:
            self.close("server_closed", b"SD" if exc is not None else b"--")

    def _expired(self) -> None:
        self.close("tunnel_timeout", b"cD")

    def _client_fin(self) -> None:  # the server half-closed and the client stayed mute
        self.close("client_fin", b"cD")

    def _server_fin(self) -> None:  # the client half-closed and the server stayed mute
        self.close("server_fin", b"sD")

    def kill(self, code: bytes = b"K") -> None:
        reason = "shutdown" if code in (b"K", b"D", b"U") else "error"
        self.close(reason, code[:1] + b"D", True)

    # ---- end
    def close(self, reason: str, term: bytes, abort: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        self.timer.stop()
        self.rt.sendq.flush()
        for tr in (self.ct, self.st):
            if not tr.is_closing():
                if abort:
                    tr.abort()
                else:
                    tr.close()
        self.rt.state.tunnels.pop(self.id, None)
        dur = self.rt.clock() - self.t_open
        if self.ws:  # (the typed links, one by one: C calls when compiled)
            self.fc.tunnel_close(reason)
            self.bc.tunnel_close(reason)
            self.sc.tunnel_close(reason)
        if self.events:
            self._log_close(reason, dur)
        if self.on_close is not None:
            self.on_close(self, reason, term)

    def _log_close(self, reason: str, dur: float) -> None:
        try:
            _ev_close(self.id, self.fe_name, self.be_name, self.srv_name, reason,
                      int(dur * 1000), self.up, self.down)
        except Exception:
            pass


def _write_eof(tr: asyncio.Transport) -> None:
    try:
        if not tr.is_closing() and tr.can_write_eof():
            tr.write_eof()
    except (OSError, RuntimeError):
        pass


def _tunnel_timeout(txn: Any) -> float | None:
    t = txn.tunnel_timeout or txn.be.t_tunnel
    if t is not None:
        return t
    c, s = txn.fe.t_client, txn.be.t_server
    if c is None:
        return s
    if s is None:
        return c
    return min(c, s)


def start_http(txn: Any, head: bytes, server_tail: bytes) -> None:
    """Switch an upgraded HTTP exchange to a tunnel (the 101 head not yet written)."""
    conn = txn.conn
    sc = txn.sc
    ct = conn.transport
    st = sc.transport
    rt = txn.rt
    srv = txn.srv
    tun = Tunnel(rt, ct, st, txn.fe.counters, txn.be.counters, srv.counters,
                 _tunnel_timeout(txn), txn.websocket)
    tun.id = txn.id
    tun.txn = txn
    tun.conn = conn
    tun.srv_name = srv.name
    tun.fe_name = txn.fe.name
    tun.be_name = txn.be.name
    tun.on_close = _http_tunnel_closed
    tun.events = True
    tun.http = True
    txn.tunnel = tun
    conn.tunnel = tun
    txn.sc = None
    sc.txn = None
    sc.reusable = False
    sc.parser = None  # its transport is the tunnel's now; no cycle left to the GC
    if txn.fe.model.options.ws_frames or txn.be.model.options.ws_frames:
        try:
            from lb.proxy import wsframes
            tun.frames = wsframes.FrameCounter((txn.fe.counters, txn.be.counters,
                                                srv.counters))
        except ImportError:
            tun.frames = None
    ct.set_protocol(_End(tun, True))
    st.set_protocol(_End(tun, False))
    if conn.fd >= 0:  # the connections' descriptors for the pump's own sends
        tun.cfd = conn.fd
    if sc.fd >= 0:
        tun.sfd = sc.fd
    # counted open before the 101 leaves (a client may act on it at once)
    if txn.websocket:  # (the tunnel's typed links to those counters: C calls)
        tun.fc.tunnel_open()
        tun.bc.tunnel_open()
        tun.sc.tunnel_open()
    rt.state.tunnels[tun.id] = tun
    # tails first, in order: the 101 head and the server's early bytes to the client,
    # then what the client sent after its request head to the server
    txn.bytes_out += len(head)
    if server_tail:
        conn.flush()  # (what is queued goes first)
        ct.writelines([head, server_tail])
    else:
        conn.send(head)
    client_tail = b"".join(conn.upgrade_tail or ())
    conn.upgrade_tail = None
    conn.paused = 0
    conn.timer.stop()
    conn.stimer.stop()
    ct.resume_reading()
    st.resume_reading()
    if server_tail:
        _count_down(tun, server_tail)
        if tun.frames is not None:
            tun.frames.feed_server(server_tail)
    if client_tail:
        tun.from_client(client_tail)
    if tun.timeout is not None:
        tun.timer.arm(tun.timeout)
    try:
        _ev_open(tun.id, tun.fe_name, tun.be_name, tun.srv_name, f"{txn.src}:{txn.src_port}",
                 txn.websocket)
    except Exception:
        pass


def _count_down(tun: Tunnel, data: bytes) -> None:
    n = len(data)
    tun.down += n
    for c in (tun.fc, tun.bc, tun.sc):
        c.bout += n
        if tun.ws:
            c.ws_bytes_out += n


def _http_tunnel_closed(tun: Tunnel, reason: str, term: bytes) -> None:
    txn = tun.txn
    conn = tun.conn
    txn.tunnel = None
    txn.term = term
    # bytes already counted live in the counters are not added again by finish()
    txn.bytes_in += tun.up
    txn.bytes_out += tun.down
    txn.live_in = tun.up
    txn.live_out = tun.down
    txn.finish(True)
    conn.session_closed()
