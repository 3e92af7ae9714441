"""Master-worker mode: one master process, N worker processes, seamless reloads.

Owns: ``run()`` (the master), ``worker_run()`` (a worker started by the master), the
hand-over of listening sockets, reloads, signal forwarding, worker reaping, and the
aggregation that makes N workers and several generations look like one process.

How it works (docs/operations.md tells the operator's side):
- The master binds every listening socket once and keeps it: one SO_REUSEPORT
  socket per worker slot for TCP binds (the kernel spreads connections), one shared
  socket for unix/fd@ binds. Each worker is ``python -m lb -f <files> -db`` started
  with its slot's sockets passed as inherited fds and ``LB_LISTEN_FDS`` =
  ``{"<frontend>#<bind index>": fd}``; ``lb.proxy.listener`` adopts them instead of
  binding. Since the master keeps every socket open, a queue outlives its worker: a
  worker closing its copy never refuses a connection.
- Each worker serves a private control socket (``LB_CTL``, JSON lines):
  ``ping``, ``snapshot`` (counters, connections, open tunnels), ``servers`` (apply
  server states pushed by the master). The master owns the health checks and the
  stats socket (the services ``lb.__main__`` passes in run on the master's State):
  server changes are pushed to every worker; counters are pulled once a second and
  summed into the master's State (``show stat`` answers for all workers).
- Reload (SIGUSR2/SIGHUP): re-read the files; invalid → log, keep serving; valid →
  bind new addresses, start a new generation on the same sockets, wait until every
  new worker answers ``ping``, then SIGUSR1 the old ones (they drain, WebSockets
  keep running until they end or hard-stop-after). The first new worker starts from
  the totals so far (``LB_SEED`` file), so counters survive the reload; the master
  subtracts seeds when summing, so nothing is counted twice. Old-generation tunnels
  stay visible (ids ``old-g<gen>/<id>``) while they drain.

Must not import: healthcheck, lb.cli, lb.__main__ (services are passed in).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

from lb import lifecycle
from lb import log as lblog
from lb.config.model import Bind, Config, RunOptions
from lb.match import patref
from lb.proxy import eventloop
from lb.proxy import listener as lmod
from lb.resolvers import ResolverService, do_resolve_sections
from lb.server_state_apply import restore_server_states
from lb.state import Counters, FreqCounter, SlidingAverage, State

Service = Callable[[State, asyncio.AbstractEventLoop], Awaitable[None]]

WORKER_ENV = "LB_WORKER"  # "<generation>:<index>" in a worker
CTL_ENV = "LB_CTL"  # the worker's control socket path
SEED_ENV = "LB_SEED"  # JSON file of counters the worker starts from
STATES_ENV = "LB_STATES"  # JSON file of the server states it serves with from the start
RUN_DIR_ENV = "LB_RUN_DIR"
MASTER_PID_ENV = "LB_MASTER_PID"
MASTER_CTL_ENV = "LB_MASTER_CTL"  # the master's control socket (a worker's `observe` reports)

READY_TIMEOUT = 30.0  # seconds a new worker has to answer its first ping
REFRESH_EVERY = 1.0  # counters pull / server states push period
STOP_GRACE = 5.0  # SIGTERM → SIGKILL delay when the master stops

_log = lblog.get_logger("lb.master")


def is_worker() -> bool:
    return bool(os.environ.get(WORKER_ENV))


def worker_count(cfg: Config, opts: RunOptions) -> int:
    return max(1, opts.nbthread or cfg.global_.nbthread or 1)


def wanted(cfg: Config, opts: RunOptions) -> bool:
    """Master-worker mode: -W / `master-worker`, or more than one worker."""
    return opts.master_worker or worker_count(cfg, opts) > 1


def _notice(text: str, level: int = lblog.NOTICE, mirror: str = "NOTICE") -> None:
    try:
        lblog.send_event((), level, text, mirror=mirror)
    except Exception:
        pass


# --------------------------------------------------------------------------- counters
# A snapshot is plain JSON: ints, [rate, max] for FreqCounter, [sum, max] for
# SlidingAverage, {key: n} for dicts. Gauges are summed over live workers only;
# cumulative fields are carried across workers and generations.

GAUGES = frozenset(("scur", "qcur", "ws_tunnels_cur"))
MAXES = frozenset(("smax", "qmax", "ws_tunnels_max", "last_sess"))
# counted by the master's own health checks, never taken from the workers
MASTER_OWNED = frozenset(("chkfail", "chkdown"))


def counters_snapshot(c: Counters, now: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in Counters.__slots__:
        v = getattr(c, name, None)
        if isinstance(v, FreqCounter):
            out[name] = [v.read(now), v.max]
        elif isinstance(v, SlidingAverage):
            out[name] = [v.sum, v.max]
        elif isinstance(v, dict):
            out[name] = {str(k): n for k, n in v.items()}
        elif isinstance(v, (int, float)):
            out[name] = v
    return out


def _add(acc: dict[str, Any], snap: dict[str, Any], sign: int = 1) -> None:
    """acc += sign * snap for cumulative fields (ints and dicts); max for maxima."""
    for k, v in snap.items():
        if k in GAUGES:
            continue
        if k in MAXES:
            if sign > 0:
                acc[k] = max(acc.get(k, 0), v)
            continue
        if isinstance(v, dict):
            d = acc.setdefault(k, {})
            for kk, n in v.items():
                d[kk] = d.get(kk, 0) + sign * n
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            acc[k] = acc.get(k, 0) + sign * v


def seed_counters(c: Counters, seed: dict[str, Any]) -> None:
    """Start a worker's counters from a previous generation's totals."""
    for k, v in seed.items():
        cur = getattr(c, k, None)
        if k in GAUGES or cur is None:
            continue
        if k in MAXES:
            if isinstance(cur, (int, float)) and v > cur:
                setattr(c, k, v)
        elif isinstance(cur, dict) and isinstance(v, dict):
            for kk, n in v.items():
                key: Any = int(kk) if k == "ws_close_codes" else kk
                cur[key] = cur.get(key, 0) + n
        elif isinstance(cur, int) and isinstance(v, int) and not isinstance(cur, bool):
            setattr(c, k, cur + v)


def apply_total(c: Counters, total: dict[str, Any], live: list[dict[str, Any]],
                now: float) -> None:
    """Write an aggregate into a Counters: cumulative totals, summed gauges, summed
    rates, averages weighted by each worker's number of timed requests."""
    for k, v in total.items():
        cur = getattr(c, k, None)
        if (cur is None or k in MASTER_OWNED
                or isinstance(cur, (FreqCounter, SlidingAverage))):
            continue
        if isinstance(cur, dict) and isinstance(v, dict):
            cur.clear()
            for kk, n in v.items():
                cur[int(kk) if k == "ws_close_codes" else kk] = n
        elif isinstance(v, (int, float)):
            setattr(c, k, v)
    for g in GAUGES:
        setattr(c, g, sum(int(s.get(g, 0)) for s in live))
    for name in Counters.__slots__:
        cur = getattr(c, name, None)
        if isinstance(cur, FreqCounter):
            rate = sum(s[name][0] for s in live if name in s)
            mx = sum(s[name][1] for s in live if name in s)
            cur.curr_sec = int(now)
            cur.prev = 0
            cur.curr = rate
            cur.max = max(cur.max, mx, rate)
        elif isinstance(cur, SlidingAverage):
            weights = [(s.get("timed", 0), s[name]) for s in live if name in s]
            tot = sum(w for w, _ in weights)
            if tot:
                cur.sum = sum(w * v[0] for w, v in weights) / tot
            cur.max = max([cur.max] + [v[1] for _, v in weights])


def state_snapshot(st: State, epoch_offset: float, now: float,
                   generation: int) -> dict[str, Any]:
    """Everything the master sums: per-object counters, connections, tunnels
    (``epoch_offset`` turns the tunnels' loop times into dates)."""
    srv: dict[str, Any] = {}
    srv_conns: dict[str, int] = {}
    for be in st.backends.values():
        for s in be.servers:
            key = f"{be.name}/{s.name}"
            srv[key] = counters_snapshot(s.counters, now)
            srv_conns[key] = s.cur_conns
    tunnels = []
    for tid, t in list(st.tunnels.items()):
        txn = getattr(t, "txn", None)
        client = f"{txn.src}:{txn.src_port}" if txn is not None else None
        tunnels.append({
            "id": tid, "frontend": getattr(t, "fe_name", None),
            "backend": getattr(t, "be_name", None), "server": getattr(t, "srv_name", None),
            "client": client, "started": getattr(t, "t_open", 0.0) + epoch_offset,
            "bytes_in": getattr(t, "up", 0), "bytes_out": getattr(t, "down", 0),
            "ws": bool(getattr(t, "ws", True))})
    streams = []
    for sid, c in list(st.streams.items())[:MAX_STREAMS]:
        txn = getattr(c, "txn", None) or getattr(c, "req_txn", None)
        tun = getattr(c, "tunnel", None)
        fe = getattr(c, "fe", None)
        streams.append({
            "id": sid, "src": getattr(c, "src", None), "src_port": getattr(c, "src_port", 0),
            "frontend": getattr(fe, "name", None),
            "backend": getattr(tun, "be_name", None) or getattr(txn, "backend_name", None),
            "server": getattr(tun, "srv_name", None) or getattr(txn, "server_name", None),
            "started": getattr(c, "accept_ts", None), "tunnel": tun is not None,
            "bytes_in": getattr(tun, "up", 0) if tun is not None else 0,
            "bytes_out": getattr(tun, "down", 0) if tun is not None else 0,
            "nreq": getattr(c, "nreq", 0)})
    return {
        "pid": os.getpid(), "generation": generation, "stopping": st.stopping,
        "streams": streams,
        "fe": {n: counters_snapshot(f.counters, now) for n, f in st.frontends.items()},
        "be": {n: counters_snapshot(b.counters, now) for n, b in st.backends.items()},
        "srv": srv, "srv_conns": srv_conns,
        "proc": {"cum_conns": st.cum_conns, "cum_req": st.cum_req,
                 "curr_conns": st.curr_conns, "conn_rate": st.conn_rate.read(now),
                 "sess_rate": st.sess_rate.read(now)},
        "tunnels": tunnels,
        "vars": st.proc_vars.rows(),
    }


SECTIONS = ("fe", "be", "srv")
MAX_STREAMS = 2000  # client streams listed per worker and pull (`show sess` in the master)


def _new_total() -> dict[str, Any]:
    return {"fe": {}, "be": {}, "srv": {}, "proc": {}}


def total_add(total: dict[str, Any], snap: dict[str, Any], sign: int = 1,
              only: dict[str, Any] | None = None) -> None:
    """total += sign * snap, object by object (``only``: restrict to its keys)."""
    for sec in SECTIONS:
        dst = total.setdefault(sec, {})
        for name, cs in snap.get(sec, {}).items():
            if only is not None and name not in only.get(sec, {}):
                continue
            _add(dst.setdefault(name, {}), cs, sign)
    proc = total.setdefault("proc", {})
    for k in ("cum_conns", "cum_req"):
        if only is None or k in only.get("proc", {}):
            proc[k] = proc.get(k, 0) + sign * snap.get("proc", {}).get(k, 0)


def seed_state(state: State, seed: dict[str, Any]) -> None:
    for name, cs in seed.get("fe", {}).items():
        f = state.frontends.get(name)
        if f is not None:
            seed_counters(f.counters, cs)
    for name, cs in seed.get("be", {}).items():
        b = state.backends.get(name)
        if b is not None:
            seed_counters(b.counters, cs)
    for key, cs in seed.get("srv", {}).items():
        _, s = state.find_server(key)
        if s is not None:
            seed_counters(s.counters, cs)
    proc = seed.get("proc", {})
    state.cum_conns += int(proc.get("cum_conns", 0))
    state.cum_req += int(proc.get("cum_req", 0))


# --------------------------------------------------------------------------- server states

SERVER_FIELDS = ("admin", "op", "health", "uweight", "eweight", "check_status",
                 "check_code", "check_desc", "check_duration", "check_info",
                 "last_change", "maxconn", "use_ssl")
FRONTEND_FIELDS = ("maxconn", "paused", "stopped")
AGENT_FIELDS = ("enabled", "health", "status", "code", "duration", "desc", "addr", "port",
                "send")
# CLI changes the master pushes to its workers at once (besides server_* events,
# which include `set server ... addr`)
_PUSHED_EVENTS = frozenset({"acl_changed", "frontend_changed", "maxconn_changed",
                            "dyncookie_changed"})
BACKEND_FIELDS = ("dyn_cookie_on", "dyn_cookie_key")


def servers_message(state: State) -> dict[str, Any]:
    """Server states, and the ACL and map lists changed from the CLI, for the workers."""
    rows = []
    for be in state.backends.values():
        for s in be.servers:
            row = {"be": be.name, "srv": s.name, **{f: getattr(s, f) for f in SERVER_FIELDS}}
            if (be.name, s.name) in state.cli_addrs:  # only what `set server addr` set:
                row["addr"], row["port"] = s.addr, s.port  # workers resolved the rest
            if s.agent is not None:  # (what the workers' own stats show of it)
                row["agent"] = {f: getattr(s.agent, f) for f in AGENT_FIELDS}
            rows.append(row)
    acls = [{"id": r.ref_id, "version": r.version,
             "entries": [[e.uid, e.text, e.value] for e in r.entries]}
            for r in (state.config.pattern_refs or ()) if r.version]
    fronts = [{"fe": f.name, **{k: getattr(f, k) for k in FRONTEND_FIELDS}}
              for f in state.frontends.values()]
    backs = [{"be": b.name, **{k: getattr(b, k) for k in BACKEND_FIELDS}}
             for b in state.backends.values()]
    return {"op": "servers", "servers": rows, "acls": acls, "frontends": fronts,
            "backends": backs, "maxconn": state.maxconn}


def _take_rows(state: State, rows: Iterable[dict[str, Any]], objects: dict[str, Any],
               key: str, fields: tuple[str, ...], event: str, what: str) -> int:
    """Copy the master's values of ``fields`` onto the named objects; emit ``event``
    for each that changed; returns how many did."""
    changed = 0
    for r in rows:
        obj = objects.get(r.get(key, ""))
        if obj is None or all(r.get(k, getattr(obj, k)) == getattr(obj, k) for k in fields):
            continue
        for k in fields:
            setattr(obj, k, r.get(k, getattr(obj, k)))
        state.emit(event, {what: obj})
        changed += 1
    return changed


def apply_backends(state: State, rows: Iterable[dict[str, Any]]) -> int:
    """Take the master's CLI changes to backends (dynamic cookies)."""
    return _take_rows(state, rows, state.backends, "be", BACKEND_FIELDS,
                      "dyncookie_changed", "backend")


def apply_frontends(state: State, rows: Iterable[dict[str, Any]],
                    maxconn: int | None) -> int:
    """Take the master's CLI changes to frontends and to the process maxconn."""
    changed = _take_rows(state, rows, state.frontends, "fe", FRONTEND_FIELDS,
                         "frontend_changed", "frontend")
    if maxconn != state.maxconn:
        state.maxconn = maxconn
        state.emit("maxconn_changed", {})
        changed += 1
    return changed


def apply_acls(state: State, rows: Iterable[dict[str, Any]]) -> int:
    """Take the master's copies of the ACL and map lists it changed; returns how many
    changed."""
    refs = state.config.pattern_refs
    changed = 0
    for r in rows:
        ref = refs.find(f"#{r.get('id')}") if refs is not None else None
        if ref is not None and patref.replace_entries(
                ref, int(r.get("version", 0)),
                [(int(row[0]), str(row[1]), None if len(row) < 3 or row[2] is None
                  else str(row[2])) for row in r.get("entries", ())]):
            changed += 1
    return changed


def apply_servers(state: State, rows: Iterable[dict[str, Any]], now: float) -> int:
    """Apply server states pushed by the master; returns how many changed."""
    changed = 0
    for r in rows:
        be = state.backends.get(r.get("be", ""))
        s = be.by_name.get(r.get("srv", "")) if be is not None else None
        if s is None:
            continue
        for f in ("check_status", "check_code", "check_desc", "check_duration",
                  "check_info", "health"):
            if f in r:
                setattr(s, f, r[f])
        if s.agent is not None and isinstance(r.get("agent"), dict):
            for f in AGENT_FIELDS:
                if f in r["agent"]:
                    setattr(s.agent, f, r["agent"][f])
        diff = False
        if "maxconn" in r and int(r["maxconn"]) != s.maxconn:
            s.maxconn = int(r["maxconn"])
            state.emit("server_maxconn", {"backend": be, "server": s})
            diff = True
        if "use_ssl" in r and int(r["use_ssl"]) != s.use_ssl:
            s.use_ssl = int(r["use_ssl"])
            state.emit("server_ssl", {"backend": be, "server": s})
            diff = True
        if "addr" in r and (r["addr"], r.get("port")) != (s.addr, s.port):
            s.addr, s.port = r["addr"], r.get("port")
            state.emit("server_addr", {"backend": be, "server": s})
            diff = True
        admin = int(r.get("admin", s.admin))
        if admin != s.admin:
            s.set_admin(admin & ~s.admin, True, now)
            s.set_admin(s.admin & ~admin, False, now)
            diff = True
        op = int(r.get("op", s.op))
        if op != s.op:
            s.set_operational(op, now)
            diff = True
        uw, ew = int(r.get("uweight", s.uweight)), int(r.get("eweight", s.eweight))
        if uw != s.uweight:
            s.set_weight(uw, now)
            diff = True
        if ew != s.eweight:
            s.set_eweight(ew, now)
            diff = True
        if diff:
            s.last_change = float(r.get("last_change", s.last_change))
            changed += 1
    return changed


def kill_server_streams(state: State, be_name: str, srv_name: str, code: bytes) -> int:
    """End every stream and tunnel of one server (a worker obeying the master)."""
    be = state.backends.get(be_name)
    srv = be.by_name.get(srv_name) if be is not None else None
    if srv is None:
        return 0
    n = 0
    for stream in list(srv.streams):
        try:
            tunnel = getattr(stream, "tunnel", None)
            (tunnel if tunnel is not None else stream).kill(code)
            n += 1
        except Exception:  # noqa: S112 - already gone
            continue
    return n


class RemoteStream:
    """One worker's client stream as the master's `show sess` lists it;
    ``kill()`` (`shutdown session`) is sent to that worker."""

    __slots__ = ("master", "worker", "wid", "src", "src_port", "frontend", "backend",
                 "server", "started", "tunnel", "bytes_in", "bytes_out", "nreq")

    def __init__(self, master: Master, worker: Worker, wid: int, d: dict[str, Any]) -> None:
        self.master = master
        self.worker = worker
        self.wid = wid
        self.src = d.get("src")
        self.src_port = d.get("src_port")
        self.frontend = d.get("frontend")
        self.backend = d.get("backend")
        self.server = d.get("server")
        self.started = d.get("started")
        self.tunnel = bool(d.get("tunnel"))
        self.bytes_in = d.get("bytes_in", 0)
        self.bytes_out = d.get("bytes_out", 0)
        self.nreq = d.get("nreq", 0)

    def kill(self, code: bytes = b"K") -> None:
        msg = {"op": "kill_stream", "id": self.wid, "code": code.decode("latin-1")}
        self.master.loop.create_task(_quiet(request(self.worker.ctl, msg, timeout=2.0)))


async def _quiet(aw: Awaitable[Any]) -> None:
    try:
        await aw
    except (TimeoutError, OSError, ValueError):
        pass


class RemoteStreams:
    """Stands in the master's ``ServerState.streams`` for the workers' streams of
    that server: `shutdown sessions server`, `on-marked-down shutdown-sessions` and
    the stats page's kill action call ``kill(code)``, which is sent to every worker."""

    __slots__ = ("master", "be", "srv")

    def __init__(self, master: Master, be: str, srv: str) -> None:
        self.master = master
        self.be = be
        self.srv = srv

    def kill(self, code: bytes = b"K") -> None:
        self.master.loop.create_task(self.master.kill_streams(self.be, self.srv, code))


# --------------------------------------------------------------------------- JSON lines


async def request(path: str, msg: dict[str, Any], timeout: float = 3.0) -> Any:
    """One JSON-lines request over a unix socket; the decoded answer."""
    async def go() -> Any:
        reader, writer = await asyncio.open_unix_connection(path, limit=1 << 24)
        try:
            writer.write(json.dumps(msg).encode() + b"\n")
            await writer.drain()
            line = await reader.readline()
            return json.loads(line) if line else None
        finally:
            writer.close()
    return await asyncio.wait_for(go(), timeout)


def request_sync(path: str, msg: dict[str, Any], timeout: float = 5.0) -> Any:
    """Blocking variant (tools and tests)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(json.dumps(msg).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            d = s.recv(1 << 16)
            if not d:
                break
            buf += d
    return json.loads(buf) if buf else None


class JsonServer:
    """A JSON-lines unix socket server; ``close()`` also ends open conversations."""

    def __init__(self) -> None:
        self.server: asyncio.AbstractServer | None = None
        self.tasks: set[asyncio.Task[Any]] = set()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for t in list(self.tasks):
            t.cancel()


async def serve_json(path: str, handle: Callable[[dict[str, Any]], Any]) -> JsonServer:
    try:
        os.unlink(path)
    except OSError:
        pass
    js = JsonServer()

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            js.tasks.add(task)
            task.add_done_callback(js.tasks.discard)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                try:
                    msg = json.loads(line)
                    res = handle(msg)
                    if asyncio.iscoroutine(res):
                        res = await res
                except Exception as e:  # a bad request gets an error, never a crash
                    res = {"error": f"{type(e).__name__}: {e}"}
                writer.write(json.dumps(res).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    js.server = await asyncio.start_unix_server(client, path, limit=1 << 24)
    os.chmod(path, 0o600)
    return js


# --------------------------------------------------------------------------- worker side


def worker_run(cfg: Config, opts: RunOptions) -> int:
    """A worker: the data plane on inherited sockets plus the control channel."""
    from lb.proxy import runner

    gen = int((os.environ.get(WORKER_ENV) or "0:0").split(":")[0])
    ctl = os.environ.get(CTL_ENV) or ""
    seed_path = os.environ.get(SEED_ENV) or ""
    master_pid = int(os.environ.get(MASTER_PID_ENV) or os.getppid())
    master_ctl = os.environ.get(MASTER_CTL_ENV) or ""

    async def control(state: State, loop: asyncio.AbstractEventLoop) -> None:
        offset = time.time() - loop.time()
        if master_ctl:
            # `observe`: a server that reached its error-limit here is acted on by the
            # master, where its health checks run (lb.hana)
            def report(srv: Any, text: str) -> None:
                msg = {"op": "hana", "be": srv.backend.name, "srv": srv.name, "text": text}
                loop.create_task(_quiet(request(master_ctl, msg)))
            state.health_analysis = report
        if seed_path:
            try:
                with open(seed_path) as f:
                    seed_state(state, json.load(f))
            except (OSError, ValueError):
                pass

        def handle(msg: dict[str, Any]) -> Any:
            op = msg.get("op")
            if op == "ping":
                return {"ok": True, "pid": os.getpid(), "generation": gen}
            if op == "snapshot":
                return state_snapshot(state, offset, time.time(), gen)
            if op == "servers":
                return {"changed": apply_servers(state, msg.get("servers", ()), time.time()),
                        "acls": apply_acls(state, msg.get("acls", ())),
                        "frontends": apply_frontends(state, msg.get("frontends", ()),
                                                     msg.get("maxconn")),
                        "backends": apply_backends(state, msg.get("backends", ()))}
            if op == "set_var":  # `set var` on the master's stats socket
                state.proc_vars.load(msg.get("rows", ()))
                return {"ok": True}
            if op == "kill_stream":
                c = state.streams.get(int(msg.get("id", 0)))
                if c is not None:
                    c.kill(str(msg.get("code", "K")).encode())
                return {"killed": int(c is not None)}
            if op == "kill":
                return {"killed": kill_server_streams(state, msg.get("be", ""),
                                                      msg.get("srv", ""),
                                                      str(msg.get("code", "K")).encode())}
            return {"error": f"unknown op {op!r}"}

        server = await serve_json(ctl, handle) if ctl else None
        try:
            while True:
                await asyncio.sleep(0.5)
                if os.getppid() != master_pid:  # the master is gone: do not linger
                    os.kill(os.getpid(), signal.SIGTERM)
        finally:
            if server is not None:
                server.close()
            if ctl:
                try:
                    snap = state_snapshot(state, offset, time.time(), gen)
                    tmp = ctl + ".final.tmp"
                    with open(tmp, "w") as f:
                        json.dump(snap, f)
                    os.replace(tmp, ctl + ".final")
                    os.unlink(ctl)
                except Exception:
                    pass

    # the master writes the pidfile and signals -sf/-st pids, never a worker
    cfg = replace(cfg, global_=replace(cfg.global_, pidfile=None))
    opts = replace(opts, pidfile=None, soft_stop_pids=(), hard_stop_pids=(), daemon=False)
    services: list[Any] = [control]
    if do_resolve_sections(cfg):  # (the master resolves the servers, not the rules)
        services.append(ResolverService(lambda _state: _no_event, servers=False))
    return runner.run(cfg, opts, services, state=_initial_state(cfg))


def _no_event(*_args: Any) -> None:
    """A worker's resolvers log nothing: their lines are about servers."""


def _initial_state(cfg: Config) -> State:
    """The State a worker serves with: the master's server states (restored from a
    server-state file, changed from the CLI) applied before anything is accepted."""
    state = State(cfg)
    path = os.environ.get(STATES_ENV) or ""
    if path:
        try:
            with open(path) as f:
                msg = json.load(f)
        except (OSError, ValueError):
            return state
        apply_servers(state, msg.get("servers", ()), time.time())
        apply_acls(state, msg.get("acls", ()))
        apply_frontends(state, msg.get("frontends", ()), msg.get("maxconn"))
        apply_backends(state, msg.get("backends", ()))
    return state


# --------------------------------------------------------------------------- master side


class Worker:
    __slots__ = ("proc", "pid", "gen", "idx", "ctl", "seed", "snap", "current", "ready",
                 "exited")

    def __init__(self, proc: subprocess.Popen[bytes], gen: int, idx: int, ctl: str,
                 seed: dict[str, Any]) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.gen = gen
        self.idx = idx
        self.ctl = ctl
        self.seed = seed
        self.snap: dict[str, Any] | None = None
        self.current = True
        self.ready = False
        self.exited: int | None = None


def _bind_key(b: Bind) -> tuple[Any, ...]:
    return (b.family, b.host, b.port, b.path, b.fd, b.v6only)


def _key_reuseport(key: tuple[Any, ...]) -> bool:
    family, _host, _port, path, fd = key[:5]
    return fd is None and not path and family not in ("unix", "fd")


def _reuseport(b: Bind) -> bool:
    """A TCP bind (one socket per worker slot); unix and fd@ binds are shared."""
    return (b.fd is None and not b.path and b.family not in ("unix", "fd")
            and hasattr(socket, "SO_REUSEPORT"))


def _master_state(cfg: Config, state: State | None = None, quiet: bool = False) -> State:
    """The State the master's stats socket answers from (and whose server states it
    pushes to the workers); a new one has its server-state files applied, their
    warnings printed. `busy-polling` is the workers' (`show info`): the master
    itself never polls busily, as in HAProxy."""
    if state is None:
        state = State(cfg)
        pid = os.getpid()
        for d in restore_server_states(state):
            if not quiet:
                sys.stderr.write(d.render(pid) + "\n")
    state.busy_polling = cfg.global_.busy_polling
    return state


class Master:
    def __init__(self, cfg: Config, opts: RunOptions, services: Iterable[Service],
                 run_dir: str, state: State | None = None) -> None:
        self.cfg = cfg
        self.opts = opts
        self.services_fns = list(services)
        self.run_dir = run_dir
        self.loop = asyncio.get_running_loop()
        self.state = _master_state(cfg, state)
        self.state_listener: Any = None
        self.services: list[asyncio.Task[Any]] = []
        self.socks: dict[tuple[Any, ...], socket.socket] = {}
        self.workers: list[Worker] = []
        self.gen = 0
        self.retired = _new_total()
        self.done: asyncio.Future[int] = self.loop.create_future()
        self.stopping = False
        self.paused = False
        self.reloading = False
        self.reload_again = False
        self.push_pending = False
        self.var_pushes = 0  # `set var` messages on their way to the workers
        self.ctl_server: JsonServer | None = None
        self.killer: asyncio.Task[None] | None = None
        self.pidfile: str | None = None  # written by us: removed at exit

    # ---- sockets
    def bind_all(self, cfg: Config) -> tuple[dict[tuple[Any, ...], socket.socket],
                                             list[dict[str, int]]]:
        """Sockets for every bind of cfg, reusing ours; one fd map per worker slot.

        A TCP bind gets one SO_REUSEPORT socket per worker slot, so the kernel spreads
        new connections over the workers; worker n of every generation adopts slot n,
        and the master keeps every socket open, so a reload loses no queued
        connection. Unix and fd@ binds are one socket shared by all workers."""
        n = worker_count(cfg, self.opts)
        socks: dict[tuple[Any, ...], socket.socket] = {}
        fdmaps: list[dict[str, int]] = [{} for _ in range(n)]
        created: list[socket.socket] = []
        try:
            for p in cfg.proxies:
                if not p.is_frontend:
                    continue
                for idx, b in enumerate(p.binds):
                    shared = not _reuseport(b)
                    for slot in range(1 if shared else n):
                        key = (*_bind_key(b), slot)
                        sock = socks.get(key) or self.socks.get(key)
                        if sock is None:
                            sock = self._bind(p, b, socks.get((*_bind_key(b), 0)))
                            created.append(sock)
                        socks[key] = sock
                        for w in (range(n) if shared else (slot,)):
                            fdmaps[w][f"{p.name}#{idx}"] = sock.fileno()
        except MasterError:
            for s in created:
                s.close()
            raise
        return socks, fdmaps

    @staticmethod
    def _bind(p: Any, b: Bind, first: socket.socket | None) -> socket.socket:
        if first is not None and b.port == 0:  # more slots of an ephemeral port
            b = replace(b, port=first.getsockname()[1])
        try:
            sock = lmod.bind_socket(b)
            sock.listen(lmod.backlog_for(b, p.backlog, p.maxconn))
        except (lmod.BindError, OSError) as e:
            addr = b.raw or f"{b.host}:{b.port}"
            raise MasterError(f"Starting frontend {p.name}: cannot bind "
                              f"socket ({e}) [{addr}]") from e
        return sock

    # ---- workers
    def _spawn(self, cfg: Config, fdmap: dict[str, int], gen: int, idx: int,
               seed: dict[str, Any], states_path: str) -> Worker:
        ctl = os.path.join(self.run_dir, f"worker-{gen}.{idx}.sock")
        seed_path = ""
        if seed:
            seed_path = os.path.join(self.run_dir, f"seed-{gen}.{idx}.json")
            with open(seed_path, "w") as f:
                json.dump(seed, f)
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ)
        env.pop(WORKER_ENV, None)
        env.pop("NOTIFY_SOCKET", None)  # only the master talks to systemd
        env.update({WORKER_ENV: f"{gen}:{idx}", CTL_ENV: ctl, SEED_ENV: seed_path,
                    STATES_ENV: states_path,
                    lmod.INHERITED_ENV: json.dumps(fdmap),
                    MASTER_PID_ENV: str(os.getpid()),
                    MASTER_CTL_ENV: os.path.join(self.run_dir, "master.sock")})
        pp = env.get("PYTHONPATH")
        env["PYTHONPATH"] = root + (os.pathsep + pp if pp else "")
        argv = [sys.executable, "-m", "lb", "-db"]
        for f in self.opts.config_files:
            argv += ["-f", f]
        if self.opts.strict:
            argv.append("--strict")
        if self.opts.quiet:
            argv.append("-q")
        if self.opts.maxconn:
            argv += ["-n", str(self.opts.maxconn)]
        quiet = subprocess.DEVNULL if self.opts.daemon else None  # a daemon has no tty
        proc = subprocess.Popen(argv, env=env, pass_fds=sorted(set(fdmap.values())),
                                stdin=quiet, stdout=quiet, stderr=quiet)
        w = Worker(proc, gen, idx, ctl, seed)
        _notice(f"New worker ({proc.pid}) forked")
        return w

    async def _wait_ready(self, ws: list[Worker]) -> bool:
        deadline = self.loop.time() + READY_TIMEOUT
        pending = list(ws)
        while pending:
            for w in list(pending):
                if w.proc.poll() is not None:
                    return False
                try:
                    r = await request(w.ctl, {"op": "ping"}, timeout=1.0)
                except (TimeoutError, OSError, ValueError):
                    continue
                if r and r.get("ok"):
                    w.ready = True
                    pending.remove(w)
            if self.loop.time() > deadline:
                return False
            if pending:
                await asyncio.sleep(0.05)
        return True

    async def start_generation(self, cfg: Config, fdmaps: list[dict[str, int]],
                               state: State) -> list[Worker] | None:
        """Start the workers of a new generation on ``state``'s server states (they
        read them before they accept anything: a server in maintenance never gets a
        request of theirs)."""
        self.gen += 1
        gen = self.gen
        await self.refresh()
        seed = self.cumulative_total()
        states_path = os.path.join(self.run_dir, f"states-{gen}.json")
        with open(states_path, "w") as f:
            json.dump(servers_message(state), f)
        ws = [self._spawn(cfg, fdmaps[i], gen, i, seed if i == 0 else {}, states_path)
              for i in range(len(fdmaps))]
        self.workers.extend(ws)
        ok = await self._wait_ready(ws)
        for path in [states_path, *(os.path.join(self.run_dir, f"seed-{gen}.{i}.json")
                                    for i in range(len(ws)))]:
            try:
                os.unlink(path)
            except OSError:
                pass
        if not ok:
            for w in ws:
                if w.proc.poll() is None:
                    w.proc.send_signal(signal.SIGTERM)
                w.current = False
            return None
        return ws

    # ---- aggregation
    def live(self) -> list[Worker]:
        return [w for w in self.workers if w.exited is None]

    def cumulative_total(self) -> dict[str, Any]:
        total = json.loads(json.dumps(self.retired))
        for w in self.live():
            if w.snap is not None:
                total_add(total, w.snap)
                if w.seed:
                    total_add(total, w.seed, -1, only=w.snap)
        return total

    async def refresh(self) -> None:
        """Pull a snapshot from every live worker and sum into the master's State."""
        for w in self.live():
            if not w.ready:
                continue
            try:
                snap = await request(w.ctl, {"op": "snapshot"}, timeout=2.0)
            except (TimeoutError, OSError, ValueError):
                continue
            if isinstance(snap, dict) and "fe" in snap:
                w.snap = snap
        self.apply_aggregate()

    def apply_aggregate(self) -> None:
        now = time.time()
        total = self.cumulative_total()
        snaps = [w.snap for w in self.live() if w.snap is not None]
        st = self.state
        for name, f in st.frontends.items():
            apply_total(f.counters, total["fe"].get(name, {}),
                        [s["fe"][name] for s in snaps if name in s["fe"]], now)
        for name, b in st.backends.items():
            apply_total(b.counters, total["be"].get(name, {}),
                        [s["be"][name] for s in snaps if name in s["be"]], now)
            for s in b.servers:
                key = f"{name}/{s.name}"
                apply_total(s.counters, total["srv"].get(key, {}),
                            [x["srv"][key] for x in snaps if key in x["srv"]], now)
                s.cur_conns = sum(x["srv_conns"].get(key, 0) for x in snaps)
        proc = total.get("proc", {})
        st.cum_conns = int(proc.get("cum_conns", 0))
        st.cum_req = int(proc.get("cum_req", 0))
        st.curr_conns = sum(int(x["proc"].get("curr_conns", 0)) for x in snaps)
        for fc, key in ((st.conn_rate, "conn_rate"), (st.sess_rate, "sess_rate")):
            rate = sum(int(x["proc"].get(key, 0)) for x in snaps)
            fc.curr_sec, fc.prev, fc.curr = int(now), 0, rate
            fc.max = max(fc.max, rate)
        tunnels: dict[int, Any] = {}
        n = 0
        for w in self.live():
            for t in (w.snap or {}).get("tunnels", ()):
                n += 1
                label = f"{'' if w.current else 'old-'}g{w.gen}/{t['id']}"
                tunnels[n] = SimpleNamespace(
                    id=label, frontend=t.get("frontend"), backend=t.get("backend"),
                    server=t.get("server"), client=t.get("client"),
                    started=t.get("started"), bytes_in=t.get("bytes_in", 0),
                    bytes_out=t.get("bytes_out", 0), ws=t.get("ws", True),
                    generation=w.gen, worker=w.pid,
                    old=not w.current)
        st.tunnels.clear()
        st.tunnels.update(tunnels)
        # `get var`: the first current worker's process-wide variables (each worker
        # has its own), unless a `set var` is still on its way to them
        first = next((w.snap for w in self.live() if w.current and w.snap is not None
                      and "vars" in w.snap), None)
        if first is not None and not self.var_pushes:
            st.proc_vars.load(first["vars"], replace=True)
        streams: dict[int, Any] = {}
        for w in self.live():
            for d in (w.snap or {}).get("streams", ()):
                sid = (w.pid << 32) | int(d["id"])  # unique over workers, kept per stream
                streams[sid] = RemoteStream(self, w, int(d["id"]), d)
        st.streams.clear()
        st.streams.update(streams)

    def attach_remote_streams(self) -> None:
        for be in self.state.backends.values():
            for s in be.servers:
                s.streams.add(RemoteStreams(self, be.name, s.name))

    async def kill_streams(self, be: str, srv: str, code: bytes) -> None:
        msg = {"op": "kill", "be": be, "srv": srv, "code": code.decode("latin-1")}
        for w in self.live():
            if w.ready:
                try:
                    await request(w.ctl, msg, timeout=2.0)
                except (TimeoutError, OSError, ValueError):
                    pass

    async def push_servers(self, ws: Iterable[Worker] | None = None) -> None:
        msg = servers_message(self.state)
        for w in list(ws if ws is not None else self.live()):
            if not w.ready or not w.current or w.exited is not None:
                continue
            try:
                await request(w.ctl, msg, timeout=2.0)
            except (TimeoutError, OSError, ValueError):
                pass

    async def push_vars(self, rows: list[Any]) -> None:
        """A `set var` of the master's stats socket, for every current worker."""
        self.var_pushes += 1
        try:
            for w in self.live():
                if w.ready and w.current and w.exited is None:
                    try:
                        await request(w.ctl, {"op": "set_var", "rows": rows}, timeout=2.0)
                    except (TimeoutError, OSError, ValueError):
                        pass
        finally:
            self.var_pushes -= 1

    def _on_state_event(self, event: str, info: dict[str, Any]) -> None:
        if event == "var_set":
            self.loop.create_task(self.push_vars(info.get("rows", [])))
            return
        if not (event.startswith("server_") or event in _PUSHED_EVENTS) or self.push_pending:
            return
        self.push_pending = True

        def go() -> None:
            self.push_pending = False
            self.loop.create_task(self.push_servers())

        self.loop.call_soon(go)

    # ---- services on the master's State
    async def start_services(self) -> None:
        """Raises OSError when a service cannot open (a stats socket's bind)."""
        from lb.proxy.runner import start_service

        self.attach_remote_streams()
        self.state.tables_in_workers = True  # the master's own tables see no traffic
        self.state_listener = self._on_state_event
        self.state.listeners.append(self.state_listener)
        for svc in self.services_fns:
            self.services.append(await start_service(svc, self.state, self.loop))

    async def stop_services(self) -> None:
        for t in self.services:
            t.cancel()
        for t in self.services:
            try:
                await t
            except BaseException:  # noqa: S110 - cancelled services end quietly
                pass
        self.services.clear()

    # ---- loops
    async def reap_loop(self) -> None:
        while not self.done.done():
            for w in self.workers:
                if w.exited is not None:
                    continue
                rc = w.proc.poll()
                if rc is None:
                    continue
                w.exited = rc
                try:
                    self._retire(w)
                except Exception as e:  # a bad snapshot costs its counts, nothing more
                    _log.warning("retire_failed", pid=w.pid, error=str(e))
                # HAProxy 2.6.12's words and levels: a former worker's exit is a
                # warning, a current worker's an alert; signals read 128+n (Terminated)
                code, how = (rc, "Exit") if rc >= 0 else (128 - rc, _signame(-rc))
                if w.current:
                    _notice(f"Current worker ({w.pid}) exited with code {code} ({how})",
                            lblog.ALERT, "ALERT")
                else:
                    _notice(f"Former worker ({w.pid}) exited with code {code} ({how})",
                            lblog.WARNING, "WARNING")
                if w.current and not self.stopping and not self.reloading:
                    self._drop_slot(w.idx)
            self.workers = [w for w in self.workers if w.exited is None]
            if not self.workers and (self.stopping or not self.reloading):
                code = 0 if self.stopping else 1
                _notice(f"All workers exited. Exiting... ({code})", lblog.WARNING, "WARNING")
                if not self.done.done():
                    self.done.set_result(code)
                return
            if (not self.stopping and not self.reloading
                    and not any(w.current for w in self.workers)):
                _notice("No current worker left; stopping the former ones.",
                        lblog.ALERT, "ALERT")
                self.stop(signal.SIGTERM)
            await asyncio.sleep(0.1)

    def _drop_slot(self, slot: int) -> None:
        """A current worker died: close its own SO_REUSEPORT sockets so the kernel
        stops sending it connections (the next reload binds the slot again)."""
        if not any(w.current and w.exited is None for w in self.workers):
            return
        for key in [k for k in self.socks if k[-1] == slot and _key_reuseport(k)]:
            self.socks.pop(key).close()

    def _retire(self, w: Worker) -> None:
        snap = w.snap
        try:
            with open(w.ctl + ".final") as f:
                snap = json.load(f)
            os.unlink(w.ctl + ".final")
        except (OSError, ValueError):
            pass
        if snap is not None:
            total_add(self.retired, snap)
            if w.seed:
                total_add(self.retired, w.seed, -1, only=snap)
        w.snap = None

    async def refresh_loop(self) -> None:
        while not self.done.done():
            await asyncio.sleep(REFRESH_EVERY)
            try:
                await self.refresh()
                await self.push_servers()
            except Exception as e:  # never let the master die of a stats hiccup
                _log.warning("refresh_failed", error=str(e))

    # ---- signals
    def install(self) -> None:
        add = self.loop.add_signal_handler
        add(signal.SIGUSR2, self.request_reload)
        add(signal.SIGHUP, self.request_reload)
        add(signal.SIGTERM, lambda: self.stop(signal.SIGTERM))
        add(signal.SIGINT, lambda: self.stop(signal.SIGTERM))
        add(signal.SIGUSR1, lambda: self.stop(signal.SIGUSR1))
        add(signal.SIGTTOU, lambda: self.pause(True))
        add(signal.SIGTTIN, lambda: self.pause(False))

    def pause(self, on: bool) -> None:
        """SIGTTOU/SIGTTIN: forwarded; the master's view shows the frontends PAUSED."""
        self.paused = on
        for fe in self.state.frontends.values():
            fe.status = "PAUSED" if on else "OPEN"
        self.forward(signal.SIGTTOU if on else signal.SIGTTIN)

    def forward(self, sig: int) -> None:
        for w in self.live():
            try:
                os.kill(w.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, sig: int) -> None:
        """SIGTERM/SIGINT: stop everything; SIGUSR1: workers drain, then we exit."""
        if not self.stopping:
            lifecycle.sd_notify("STOPPING=1")
        if not self.stopping and sig == signal.SIGTERM:
            _notice("Exiting Master process...", lblog.WARNING, "WARNING")
        self.stopping = True
        self.forward(sig)
        # the workers close their listening sockets; the master's copies would keep
        # them open, and the kernel would go on completing handshakes nobody accepts
        # (HAProxy -W refuses new connections at once)
        for sock in self.socks.values():
            sock.close()
        self.socks.clear()
        self.state.busy_polling = False  # every worker is stopping
        self.state.emit("process_stopping", {})  # the stats sockets stop accepting
        if sig == signal.SIGTERM and self.killer is None:
            self.killer = self.loop.create_task(self._kill_later())

    async def _kill_later(self) -> None:
        await asyncio.sleep(STOP_GRACE)
        for w in self.live():
            if w.proc.poll() is None:
                w.proc.kill()

    def request_reload(self) -> None:
        if self.stopping:
            return
        if self.reloading:
            self.reload_again = True
            return
        self.reloading = True
        self.loop.create_task(self._reload())

    async def _reload(self) -> None:
        lifecycle.sd_notify("RELOADING=1")
        try:
            while True:
                self.reload_again = False
                try:
                    await self.reload()
                except Exception as e:  # never a traceback, never a dead master
                    _notice(f"Reload failed: internal error ({type(e).__name__}: {e}); "
                            f"the current workers keep serving.", lblog.ALERT, "ALERT")
                if not self.reload_again or self.stopping:
                    break
        finally:
            self.reloading = False
            lifecycle.sd_notify("READY=1")

    async def reload(self) -> None:
        from lb.config import load

        _notice("Reloading lb")
        res = load(list(self.opts.config_files), strict=self.opts.strict)
        pid = os.getpid()
        for d in res.diagnostics:
            if d.fatal:
                sys.stderr.write(d.render(pid) + "\n")
        if not res.ok or res.config is None:
            _notice("Loading failure!", lblog.WARNING, "WARNING")
            _notice("Reload failed: the configuration has errors; the current workers "
                    "keep serving.", lblog.ALERT, "ALERT")
            return
        cfg = res.config
        try:
            socks, fdmaps = self.bind_all(cfg)
        except MasterError as e:
            _notice(f"Reload failed: {e}; the current workers keep serving.",
                    lblog.ALERT, "ALERT")
            return
        old = [w for w in self.live() if w.current]
        # the new view (its server-state file applied) first: the new workers start on it
        state = _master_state(cfg, quiet=self.opts.quiet)
        ws = await self.start_generation(cfg, fdmaps, state)
        if ws is None:
            _notice("Reload failed: the new workers did not start; the current workers "
                    "keep serving.", lblog.ALERT, "ALERT")
            for key, s in socks.items():
                if key not in self.socks:
                    s.close()
            return
        for key, s in self.socks.items():
            if key not in socks:
                s.close()
        self.socks = socks
        for w in old:
            w.current = False
            try:
                os.kill(w.pid, signal.SIGUSR1)
            except ProcessLookupError:
                pass
        # the master's own view follows the new configuration
        await self.stop_services()
        if self.state_listener is not None:
            try:
                self.state.listeners.remove(self.state_listener)
            except ValueError:
                pass
        self.cfg = cfg
        self.state = state
        try:
            await self.start_services()
        except OSError as e:  # the workers serve on; the stats socket is missing
            _notice(e.strerror or str(e), lblog.ALERT, "ALERT")
        await self.refresh()
        await self.push_servers(ws)
        _notice("Loading success.")
        _notice(f"Generation {self.gen} running (workers "
                f"{' '.join(str(w.pid) for w in ws)}).")

    # ---- master control socket (tests, tools)
    def handle(self, msg: dict[str, Any]) -> Any:
        op = msg.get("op")
        if op == "workers":
            return [{"pid": w.pid, "generation": w.gen, "index": w.idx,
                     "current": w.current, "ready": w.ready} for w in self.live()]
        if op == "stats":
            total = self.cumulative_total()
            return {"total": total, "generation": self.gen, "pid": os.getpid(),
                    "tunnels": [vars(t) for t in self.state.tunnels.values()],
                    "curr_conns": self.state.curr_conns}
        if op == "refresh":
            return self._refresh_and_report()
        if op == "hana":  # a worker's server reached its `observe` error-limit
            be = self.state.backends.get(str(msg.get("be", "")))
            srv = be.by_name.get(str(msg.get("srv", ""))) if be is not None else None
            hook = self.state.health_analysis
            if srv is None or hook is None:
                return {"applied": False}
            hook(srv, str(msg.get("text", "")))
            return {"applied": True}
        return {"error": f"unknown op {op!r}"}

    async def _refresh_and_report(self) -> Any:
        await self.refresh()
        return self.handle({"op": "stats"})

    # ---- main
    async def main(self, ready: Callable[[bool], None] | None) -> int:
        ctl = os.path.join(self.run_dir, "master.sock")
        if _in_use(ctl):
            sys.stderr.write(f"[ALERT]    ({os.getpid()}) : another lb master runs in "
                             f"{self.run_dir} (LB_RUN_DIR); give each master its own.\n")
            if ready is not None:
                ready(False)
            return 1
        try:
            self.socks, fdmaps = self.bind_all(self.cfg)
        except MasterError as e:
            sys.stderr.write(f"[ALERT]    ({os.getpid()}) : {e}\n")
            if ready is not None:
                ready(False)
            return 1
        self.install()
        self.ctl_server = await serve_json(ctl, self.handle)
        ws = await self.start_generation(self.cfg, fdmaps, self.state)
        if ws is None:
            sys.stderr.write(f"[ALERT]    ({os.getpid()}) : the workers did not start.\n")
            if ready is not None:
                ready(False)
            await self._shutdown()
            return 1
        try:
            await self.start_services()
        except OSError as e:  # fatal at start-up, as in HAProxy
            sys.stderr.write(f"[ALERT]    ({os.getpid()}) : {e.strerror or e}\n")
            if ready is not None:
                ready(False)
            await self._shutdown()
            return 1
        pidfile = self.opts.pidfile or self.cfg.global_.pidfile
        if pidfile:
            err = lifecycle.write_pidfile(pidfile)
            if err:  # fatal, as in HAProxy: scripts could never signal or reload us
                sys.stderr.write(f"[ALERT]    ({os.getpid()}) : {err}\n")
                if ready is not None:
                    ready(False)
                await self._shutdown()
                return 1
            self.pidfile = pidfile
        lifecycle.signal_old_pids(self.opts.soft_stop_pids, self.opts.hard_stop_pids)
        _notice("Loading success.")
        lifecycle.sd_notify(f"READY=1\nMAINPID={os.getpid()}")
        _notice(f"Master started: {len(ws)} worker(s) "
                f"({' '.join(str(w.pid) for w in ws)}), control in {self.run_dir}.")
        if ready is not None:
            ready(True)
        reaper = self.loop.create_task(self.reap_loop())
        refresher = self.loop.create_task(self.refresh_loop())
        code = await self.done
        reaper.cancel()
        refresher.cancel()
        await self._shutdown()
        return code

    async def _shutdown(self) -> None:
        if self.killer is not None:
            self.killer.cancel()
        await self.stop_services()
        for w in self.live():
            if w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)
        for w in self.live():
            try:
                await asyncio.wait_for(self.loop.run_in_executor(None, w.proc.wait),
                                       STOP_GRACE)
            except (TimeoutError, Exception):
                w.proc.kill()
        if self.ctl_server is not None:
            self.ctl_server.close()
            self.ctl_server = None
            try:
                os.unlink(os.path.join(self.run_dir, "master.sock"))
            except OSError:
                pass
        for s in self.socks.values():
            s.close()
        self.socks.clear()


def _signame(sig: int) -> str:
    try:
        return signal.strsignal(sig) or f"signal {sig}"
    except ValueError:
        return f"signal {sig}"


class MasterError(Exception):
    pass


def _in_use(path: str) -> bool:
    """A unix socket someone still answers on."""
    if not os.path.exists(path):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
        except OSError:
            return False
    return True


def run(cfg: Config, opts: RunOptions, services: Iterable[Service] = (),
        state: State | None = None) -> int:
    """The master process: exit code 0 after a requested stop, 1 on failure."""
    ready = lifecycle.daemonize() if opts.daemon else None
    own_dir = not os.environ.get(RUN_DIR_ENV)
    run_dir = os.environ.get(RUN_DIR_ENV) or tempfile.mkdtemp(prefix="lb-run-")
    loop = eventloop.new_event_loop()
    asyncio.set_event_loop(loop)
    written: list[str] = []

    async def main() -> int:
        m = Master(cfg, opts, services, run_dir, state)
        try:
            return await _main(m)
        finally:
            if m.pidfile:
                written.append(m.pidfile)

    async def _main(m: Master) -> int:
        try:
            return await m.main(ready)
        except Exception as e:
            sys.stderr.write(f"[ALERT]    ({os.getpid()}) : master: {type(e).__name__}: "
                             f"{e}\n")
            if ready is not None:
                ready(False)
            await m._shutdown()
            return 1

    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()
        for path in written:
            try:
                os.unlink(path)
            except OSError:
                pass
        if own_dir:
            shutil.rmtree(run_dir, ignore_errors=True)
