"""Process lifecycle inside one data-plane process: signals, drain, daemon mode.

Owns: ``Lifecycle`` (the signal table below and what each signal does to a running
``Runtime``), the soft-stop drain in uvicorn's order (close listeners; close idle
connections and mark busy ones "close after this response"; wait, reporting what is
left once a second; at ``hard-stop-after`` kill what remains), pause/resume of
listeners, the SIGHUP server-state dump with HAProxy's wording, ``daemonize()``
(double fork, setsid, stdio to /dev/null once started) and ``signal_old_pids()``
(``-sf``/``-st``).

Must not import: lb.proxy.runner (it imports us), lb.cli, healthcheck, lb.__main__.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterable
from typing import Any

from lb import log as lblog

_log = lblog.get_logger("lb.lifecycle")

SOFT_STOP = "soft-stop"
HARD_STOP = "hard-stop"
DUMP = "dump"
PAUSE = "pause"
RESUME = "resume"
IGNORE = "ignore"

# signal -> action (HAProxy's meanings, spec §13)
SIGNALS: dict[int, str] = {
    signal.SIGUSR1: SOFT_STOP,
    signal.SIGTERM: HARD_STOP,
    signal.SIGINT: HARD_STOP,
    signal.SIGHUP: DUMP,
    signal.SIGTTOU: PAUSE,
    signal.SIGTTIN: RESUME,
    # a reload only in master-worker mode (lb.master); elsewhere HAProxy ignores it,
    # and its default action would kill the process (a misdirected ExecReload=)
    signal.SIGUSR2: IGNORE,
}

DRAIN_REPORT_EVERY = 1.0  # seconds between "what is left" lines while draining
# idle connections close this long after a soft stop: bytes already received are
# read first (a request that arrived is served, not reset by a close over it)
IDLE_CLOSE_DELAY = 0.05


def _ignore() -> None:
    pass


def _event(level: int, text: str, targets: Iterable[Any] = ()) -> None:
    try:
        lblog.send_event(tuple(targets), level, text)
    except Exception:  # a broken sink never stops the lifecycle
        pass


class Lifecycle:
    """Signals and the graceful drain of one running Runtime.

    ``await wait()`` returns the exit code once the process should exit (0 after a
    soft stop that drained, a hard stop, or a drain cut by hard-stop-after).
    """

    def __init__(self, rt: Any, *, hard_stop_after: float | None = None,
                 on_stop: Callable[[], Any] | None = None) -> None:
        self.rt = rt
        g = rt.config.global_
        self.hard_stop_after = (hard_stop_after if hard_stop_after is not None
                                else g.hard_stop_after)
        self.on_stop = on_stop  # called once when the process starts stopping
        self.loop: asyncio.AbstractEventLoop = rt.loop
        self.done: asyncio.Future[int] = self.loop.create_future()
        self.soft_stopping = False
        self.paused = False
        self._drain_task: asyncio.Task[None] | None = None
        self._installed: list[int] = []

    # ------------------------------------------------------------------ signals

    def install(self, signals: dict[int, str] | None = None) -> None:
        table = SIGNALS if signals is None else signals
        actions: dict[str, Callable[[], None]] = {
            SOFT_STOP: self.soft_stop, HARD_STOP: self.hard_stop, DUMP: self.dump_servers,
            PAUSE: self.pause, RESUME: self.resume, IGNORE: _ignore}
        for sig, action in table.items():
            self.loop.add_signal_handler(sig, actions[action])
            self._installed.append(sig)

    def uninstall(self) -> None:
        for sig in self._installed:
            try:
                self.loop.remove_signal_handler(sig)
            except Exception:
                pass
        self._installed.clear()

    async def wait(self) -> int:
        return await self.done

    def _finish(self, code: int) -> None:
        if not self.done.done():
            self.done.set_result(code)

    def _stopping(self) -> None:
        if self.on_stop is not None:
            cb, self.on_stop = self.on_stop, None
            try:
                cb()
            except Exception:
                pass

    # ------------------------------------------------------------------ listeners

    def _close_listeners(self) -> None:
        rt = self.rt
        for srv in rt.servers_listening:
            srv.close()
        rt.servers_listening.clear()
        for lst in getattr(rt, "listeners", ()):
            close = getattr(lst, "close", None)
            if close is not None:  # a Listener running its own accept loop
                close()
                continue
            sock = getattr(lst, "sock", None)
            if sock is not None:
                lst.sock = None
                try:
                    sock.close()
                except OSError:
                    pass

    def pause(self) -> None:
        """SIGTTOU: stop accepting; connections wait in the kernel backlog."""
        if self.paused or self.soft_stopping:
            return
        self.paused = True
        for srv in self.rt.servers_listening:
            srv.close()
        self.rt.servers_listening.clear()
        for lst in getattr(self.rt, "listeners", ()):
            pause = getattr(lst, "pause", None)
            if pause is not None:  # a Listener running its own accept loop
                pause()
        for fe in self.rt.frontends.values():
            fe.st.status = "PAUSED"
            _event(lblog.WARNING, f"Paused {_kind(fe.model)} {fe.name}.", fe.model.logs)

    def resume(self) -> None:
        """SIGTTIN: accept again on the same sockets."""
        if not self.paused or self.soft_stopping:
            return
        self.paused = False
        for fe in self.rt.frontends.values():
            fe.st.status = "OPEN"
            _event(lblog.WARNING, f"Resumed {_kind(fe.model)} {fe.name}.", fe.model.logs)
        self.loop.create_task(self._resume())

    async def _resume(self) -> None:
        rt = self.rt
        for lst in getattr(rt, "listeners", ()):
            resume = getattr(lst, "resume", None)
            if resume is not None:  # a Listener running its own accept loop
                resume()
                continue
            sock = getattr(lst, "sock", None)
            factory = getattr(lst, "factory", None)
            if sock is None or factory is None:
                continue
            try:
                server = await self.loop.create_server(factory, sock=sock.dup(),
                                                       backlog=lst.backlog)
            except OSError as e:
                _event(lblog.ALERT, f"Cannot resume listener of {lst.fe.name} ({e}).")
                continue
            lst.server = server
            rt.servers_listening.append(server)

    # ------------------------------------------------------------------ stops

    def hard_stop(self) -> None:
        """SIGTERM/SIGINT: close everything now."""
        if self.done.done():
            return
        sd_notify("STOPPING=1")
        self._stopping()
        self.loop.create_task(self._hard())

    async def _hard(self) -> None:
        self._close_listeners()
        try:
            await self.rt.stop()
        finally:
            self._finish(0)

    def soft_stop(self) -> None:
        """SIGUSR1: stop accepting, let requests and tunnels finish, then exit."""
        if self.soft_stopping or self.done.done():
            return
        self.soft_stopping = True
        sd_notify("STOPPING=1")
        self._stopping()
        rt = self.rt
        rt.state.stopping = True
        self._close_listeners()
        rt.state.emit("process_stopping", {})  # e.g. the stats sockets stop accepting
        g = rt.config.global_
        for p in rt.config.proxies:
            fe = rt.state.frontends.get(p.name) if p.is_frontend else None
            be = rt.state.backends.get(p.name) if p.is_backend else None
            if fe is not None:
                fe.status = "STOP"
            try:
                lblog.proxy_stopped(p, g, fe.counters.conn_tot if fe else 0,
                                    be.counters.stot if be else 0)
            except Exception:
                pass
        # idle keep-alive connections close now (after one poll of the loop, see
        # IDLE_CLOSE_DELAY); busy ones close after their current response (Txn sees
        # state.stopping)
        self.loop.call_later(IDLE_CLOSE_DELAY, self._close_idle)
        for be in rt.backends.values():
            for pool in be.idle.values():
                for sc in list(pool):
                    sc.close()
                pool.clear()
        self._drain_task = self.loop.create_task(self._drain())

    def _close_idle(self) -> None:
        for c in list(self.rt.conns):
            if _idle(c) and not _idle_kept(c) and _used(c):
                c.kill()

    def remaining(self) -> tuple[int, int]:
        """(open tunnels, other client connections)."""
        rt = self.rt
        tunnels = len(rt.state.tunnels)
        conns = sum(1 for c in rt.conns if getattr(c, "tunnel", None) is None)
        return tunnels, conns

    async def _drain(self) -> None:
        loop = self.loop
        start = loop.time()
        deadline = start + self.hard_stop_after if self.hard_stop_after else None
        last_report = start
        last_left: tuple[int, int] | None = None
        glogs = self.rt.config.global_.logs  # the global `log` targets, plus stderr
        while True:
            tunnels, conns = self.remaining()
            if tunnels == 0 and conns == 0:
                break
            now = loop.time()
            if deadline is not None and now >= deadline:
                _event(lblog.WARNING, f"hard-stop-after expired: closing {tunnels} "
                                      f"tunnel(s) and {conns} connection(s).", glogs)
                await self.rt.stop()
                break
            if now - last_report >= DRAIN_REPORT_EVERY or last_left is None:
                if (tunnels, conns) != last_left or now - last_report >= 10:
                    _event(lblog.NOTICE, f"Soft stop in progress: {tunnels} tunnel(s), "
                                         f"{conns} connection(s) remaining.", glogs)
                    last_left = (tunnels, conns)
                last_report = now
            await asyncio.sleep(0.05)
        for task in self.rt.services:
            task.cancel()
        self._finish(0)

    # ------------------------------------------------------------------ SIGHUP dump

    def dump_servers(self) -> None:
        """SIGHUP: HAProxy's server-state dump (checked against HAProxy 2.6.12)."""
        for level, text, targets in dump_lines(self.rt.state):
            _event(level, text, targets)


def _kind(p: Any) -> str:
    """HAProxy's proxy type word in event lines."""
    if p.is_frontend and p.is_backend:
        return "proxy"
    return "frontend" if p.is_frontend else "backend"


def _idle_kept(c: Any) -> bool:
    """`option idle-close-on-response` (HAProxy 2.6): an idle connection is kept
    until its next response, which says `connection: close`, instead of being
    closed at once (checked against HAProxy 2.6.12)."""
    opts = getattr(getattr(getattr(c, "fe", None), "model", None), "options", None)
    return bool(getattr(opts, "idle_close_on_response", False))


def _used(c: Any) -> bool:
    """The connection has sent a request already. One that has not is left to send
    its first request (checked against HAProxy 2.6.12: after SIGUSR1 such a
    connection still gets its response): it was accepted before the listeners
    closed, its request is on the way, and closing it would reset that client
    (a reload would drop a request). The client timeouts still bound it."""
    return getattr(c, "nreq", 1) > 0 or getattr(c, "got_bytes", True)


def _idle(c: Any) -> bool:
    """A client connection between requests (or that never sent one)."""
    return (getattr(c, "tunnel", None) is None and getattr(c, "txn", None) is None
            and getattr(c, "req_txn", None) is None and not getattr(c, "in_head", False)
            and not getattr(c, "pending", None) and hasattr(c, "kill"))


def dump_lines(state: Any) -> list[tuple[int, str, tuple[Any, ...]]]:
    """The SIGHUP lines as (level, text, log targets). HAProxy 2.6.12 prints the
    header on stderr only, a per-proxy info line to the proxy's logs, then one
    warning per server and one per proxy."""
    out: list[tuple[int, str, tuple[Any, ...]]] = [
        (lblog.WARNING, "SIGHUP received, dumping servers states.", ())]
    for p in state.config.proxies:
        targets = tuple(p.logs)
        out.append((lblog.INFO, f"SIGHUP received, dumping servers states for proxy "
                                f"{p.name}.", targets))
        fe = state.frontends.get(p.name) if p.is_frontend else None
        be = state.backends.get(p.name) if p.is_backend else None
        servers = be.servers if be is not None else []
        for s in servers:
            up = "UP" if s.is_running else "DOWN"  # HAProxy: state != stopped
            out.append((lblog.WARNING, f"SIGHUP: Server {p.name}/{s.name} is {up}. Conn: "
                                       f"{s.cur_conns} act, {len(s.queue)} pend, "
                                       f"{s.counters.stot} tot.", targets))
        fe_act = fe.conns if fe is not None else 0
        fe_tot = fe.counters.conn_tot if fe is not None else 0
        be_act = be.counters.scur if be is not None else 0
        be_tot = be.counters.stot if be is not None else 0
        unass = len(be.queue) if be is not None else 0
        pend = unass + sum(len(s.queue) for s in servers)
        if not servers:
            what = "has no servers."
        else:
            act, bck = be.usable_count() if be is not None else (0, 0)
            if act or bck:
                what = (f"has {act} active servers and {bck} backup servers "
                        f"available.")
            else:
                what = "has no server available !"
        out.append((lblog.WARNING, f"SIGHUP: Proxy {p.name} {what} Conn: act(FE+BE): "
                                   f"{fe_act}+{be_act}, {pend} pend ({unass} unass), "
                                   f"tot(FE+BE): {fe_tot}+{be_tot}.", targets))
    return out


# ---------------------------------------------------------------------- process helpers


def signal_old_pids(soft: Iterable[int], hard: Iterable[int]) -> None:
    """-sf / -st: after a successful bind, tell old processes to finish / terminate."""
    me = os.getpid()
    for pids, sig in ((soft, signal.SIGUSR1), (hard, signal.SIGTERM)):
        for pid in pids:
            if pid <= 0 or pid == me:
                continue
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass


def sd_notify(message: str) -> bool:
    """Tell systemd (Type=notify, e.g. `lb -Ws`) about our state: READY=1,
    RELOADING=1, STOPPING=1. A no-op unless $NOTIFY_SOCKET is set."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(message.encode(), addr)
    except OSError:
        return False
    return True


def write_pidfile(path: str, pid: int | None = None) -> str | None:
    """Write ``pid`` (default: ours); return an error text or None."""
    try:
        with open(path, "w") as f:
            f.write(f"{pid or os.getpid()}\n")
    except OSError as e:
        return f"cannot create pidfile {path} ({e.strerror})"
    return None


def daemonize() -> Callable[[bool], None]:
    """-D: fork twice and start a new session. The foreground parent waits until the
    daemon calls the returned ``ready(ok)``: it then exits 0 (started) or 1 (failed;
    the daemon's error text went to the still-shared stderr). On success the daemon's
    stdio is pointed at /dev/null."""
    r, w = os.pipe()
    pid = os.fork()
    if pid > 0:
        os.close(w)
        try:
            data = os.read(r, 1)
        except OSError:
            data = b""
        os._exit(0 if data == b"1" else 1)
    os.close(r)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)

    def ready(ok: bool) -> None:
        try:
            os.write(w, b"1" if ok else b"0")
            os.close(w)
        except OSError:
            pass
        if ok:
            detach_stdio()

    return ready


def detach_stdio() -> None:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    fd = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(fd, target)
    if fd > 2:
        os.close(fd)
    lblog.set_stderr_mirror(False)
