"""Runtime state: the only mutable shared objects.

Owns: per-frontend, per-backend and per-server counters and states, built from the
immutable model (``lb.config.model``). The data plane, health checks and the CLI
change server state only through the methods here; every change that affects
load balancing is pushed to the backend's balancer (``lb.balance``) and announced
to event listeners (the log layer subscribes; this module does no I/O).

Counters are plain integer fields (``__slots__``), named after HAProxy's stats
columns so that ``lb.stats`` can read them by name.

Must not import: lb.proxy, lb.cli, lb.log, healthcheck.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from lb import balance
from lb.config.addresses import needs_resolution, socket_path
from lb.config.model import Config, Proxy, Server
from lb.dns.counters import NameserverCounters
from lb.http import proxyproto
from lb.match.variables import ProcVars
from lb.sticktable import StickTable

# Administrative state bits (HAProxy's SRV_ADMF_*; `show servers state` prints them).
ADMIN_FMAINT = 0x01  # forced maintenance (CLI)
ADMIN_IMAINT = 0x02  # inherited maintenance (track)
ADMIN_CMAINT = 0x04  # marks a server configured `disabled` (with FMAINT); not itself maintenance
ADMIN_FDRAIN = 0x08  # forced drain (CLI)
ADMIN_IDRAIN = 0x10
ADMIN_RMAINT = 0x20  # resolution maintenance: its name gave no address (`init-addr none`)
# its FQDN was set at run time (an SRV record): shown in `show servers state`, as
# HAProxy 2.6 shows it, and not itself maintenance
ADMIN_HMAINT = 0x40
ADMIN_MAINT = ADMIN_FMAINT | ADMIN_IMAINT | ADMIN_RMAINT
# admin bits that keep a server out of load balancing (all but the two marks)
ADMIN_UNUSABLE = ~(ADMIN_CMAINT | ADMIN_HMAINT)
ADMIN_DRAIN = ADMIN_FDRAIN | ADMIN_IDRAIN

# Operational states (HAProxy's SRV_ST_*; numeric values as in `show servers state`).
OP_STOPPED = 0
OP_STARTING = 1
OP_RUNNING = 2
OP_STOPPING = 3  # NOLB

# WebSocket upgrade failure and tunnel close reasons (counter name suffixes).
WS_FAIL_REASONS = ("no_key", "non_101", "bad_accept", "denied", "no_server")
WS_CLOSE_REASONS = ("tunnel_timeout", "client_fin", "server_fin", "client_closed",
                    "server_closed", "shutdown", "error", "killed")
WS_OPCODES = ("text", "binary", "ping", "pong", "close", "continuation")


class FreqCounter:
    """Events per second over a sliding one-second window (like HAProxy's freq_ctr)."""

    __slots__ = ("curr_sec", "curr", "prev", "max")

    def __init__(self) -> None:
        self.curr_sec = 0
        self.curr = 0
        self.prev = 0
        self.max = 0

    def add(self, now: float, n: int = 1) -> None:
        sec = int(now)
        if sec != self.curr_sec:
            self.prev = self.curr if sec == self.curr_sec + 1 else 0
            self.curr = 0
            self.curr_sec = sec
        self.curr += n
        # hot path: the max is refreshed on every 8th event (and whenever the rate
        # can first exceed it); it may lag the true peak by fewer than 8 events/s
        if self.prev + self.curr > self.max and (self.curr & 7 == 0 or self.max < 8):
            r = self.read(now)
            if r > self.max:
                self.max = r

    def read(self, now: float) -> int:
        sec = int(now)
        if sec == self.curr_sec:
            frac = now - sec
            return int(self.prev * (1.0 - frac) + self.curr)
        if sec == self.curr_sec + 1:
            return int(self.curr * (1.0 - (now - sec)))
        return 0


class IdleMeter:
    """`Idle_pct`: 100 minus the share of one CPU the process used since the last
    reading, a reading covering at least a second (the value is kept in between).
    The first reading only starts the clock (100), so that start-up's own work, the
    configuration loaded, never shows as load."""

    __slots__ = ("wall", "cpu", "pct")

    def __init__(self) -> None:
        self.wall = -1.0
        self.cpu = 0.0
        self.pct = 100

    def read(self) -> int:
        wall = time.monotonic()
        if self.wall < 0:
            self.wall = wall
            self.cpu = time.process_time()
            return self.pct
        span = wall - self.wall
        if span >= 1.0:
            cpu = time.process_time()
            self.pct = max(0, min(100, round(100.0 - (cpu - self.cpu) * 100.0 / span)))
            self.wall = wall
            self.cpu = cpu
        return self.pct


class SlidingAverage:
    """HAProxy's swrate: average over (about) the last ``n`` samples."""

    __slots__ = ("sum", "n", "max")

    def __init__(self, n: int = 1024) -> None:
        self.sum = 0.0
        self.n = n
        self.max = 0

    def add(self, value: int) -> None:
        self.sum = self.sum - self.sum / self.n + value
        if value > self.max:
            self.max = value

    def read(self, count: int) -> int:
        """Average, given how many samples were taken in all (HAProxy divides by
        min(count, n) for the first n samples)."""
        if count <= 0:
            return 0
        return int(round(self.sum / min(count, self.n) if count < self.n else self.sum / self.n))


# Counters fields that hold objects (rates, averages, per-reason tables), not numbers
_COUNTER_OBJECTS = frozenset((
    "sess_rate", "req_rate", "conn_rate", "qtime", "ctime", "rtime", "ttime",
    "ws_fail", "ws_close", "ws_frames", "ws_close_codes"))


class Counters:
    """Traffic counters shared by frontends, backends and servers.

    Field names follow the stats CSV columns; fields a given object type does not
    use stay zero.
    """

    __slots__ = (
        # sessions / connections
        "scur", "smax", "stot", "conn_tot", "cum_req",
        # bytes: bin = client->server direction, bout = server->client
        "bin", "bout",
        # denials and errors
        "dreq", "dresp", "dcon", "dses", "ereq", "econ", "eresp", "eint", "wrew",
        # compression: bytes into and out of the compressor, bytes passed through
        # (identity), compressed responses
        "comp_in", "comp_out", "comp_byp", "comp_rsp",
        # retries / redispatches
        "wretr", "wredis",
        # queue
        "qcur", "qmax",
        # responses by class
        "hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other",
        "req_tot", "cli_abrt", "srv_abrt", "lbtot", "intercepted", "connect", "reuse",
        # checks, and errors found by observing traffic (lb.hana)
        "chkfail", "chkdown", "hanafail",
        # rates and timing
        "sess_rate", "req_rate", "conn_rate", "qtime", "ctime", "rtime", "ttime",
        "timed",  # number of requests that fed qtime/ctime/rtime/ttime
        "last_sess",  # time of the last session (for `lastsess`), 0 = never
        # WebSocket (lb extension)
        "ws_upgrade_req", "ws_upgrade_ok", "ws_fail", "ws_tunnels_cur", "ws_tunnels_max",
        "ws_tunnels_tot", "ws_close", "ws_frames", "ws_close_codes",
        "ws_bytes_in", "ws_bytes_out",
    )

    def __init__(self) -> None:
        self.reset(all_=True)

    def reset(self, all_: bool = True) -> None:
        """`clear counters all` (all_=True) or `clear counters` (max values only)."""
        if not all_:
            self.smax = self.scur
            self.qmax = self.qcur
            self.ws_tunnels_max = self.ws_tunnels_cur
            for fc in (self.sess_rate, self.req_rate, self.conn_rate):
                fc.max = 0
            for av in (self.qtime, self.ctime, self.rtime, self.ttime):
                av.max = 0
            return
        # compiled (state.pxd), a field never set reads None rather than failing
        keep_cur = (getattr(self, "scur", 0) or 0, getattr(self, "qcur", 0) or 0,
                    getattr(self, "ws_tunnels_cur", 0) or 0)
        for name in self.__slots__:
            if name not in _COUNTER_OBJECTS:
                setattr(self, name, 0)
        self.scur, self.qcur, self.ws_tunnels_cur = keep_cur
        self.smax = self.scur
        self.qmax = self.qcur
        self.ws_tunnels_max = self.ws_tunnels_cur
        self.sess_rate = FreqCounter()
        self.req_rate = FreqCounter()
        self.conn_rate = FreqCounter()
        self.qtime = SlidingAverage()
        self.ctime = SlidingAverage()
        self.rtime = SlidingAverage()
        self.ttime = SlidingAverage()
        self.ws_fail = dict.fromkeys(WS_FAIL_REASONS, 0)
        self.ws_close = dict.fromkeys(WS_CLOSE_REASONS, 0)
        self.ws_frames = dict.fromkeys(WS_OPCODES, 0)
        self.ws_close_codes: dict[int, int] = {}

    # ---- small helpers used on the hot path; kept trivial on purpose
    def session_start(self, now: float) -> None:
        self.scur += 1
        self.stot += 1
        if self.scur > self.smax:
            self.smax = self.scur
        self.sess_rate.add(now)
        self.last_sess = now

    def session_end(self) -> None:
        self.scur -= 1

    def session_open(self) -> None:
        """A frontend's accepted connection, before its tcp-request connection and
        session rules: current and max sessions (HAProxy counts these at accept)."""
        self.scur += 1
        if self.scur > self.smax:
            self.smax = self.scur

    def session_counted(self, now: float) -> None:
        """The rules let the session start: total and rate (not for a rejected one)."""
        self.stot += 1
        self.sess_rate.add(now)
        self.last_sess = now

    def count_status(self, status: int) -> None:
        """One response in its class; outside 100-599 (none: -1) is "other"."""
        if status < 100 or status >= 600:
            self.hrsp_other += 1
        elif status < 200:
            self.hrsp_1xx += 1
        elif status < 300:
            self.hrsp_2xx += 1
        elif status < 400:
            self.hrsp_3xx += 1
        elif status < 500:
            self.hrsp_4xx += 1
        else:
            self.hrsp_5xx += 1

    def add_timings(self, tw: int, tc: int, tr: int, ta: int) -> None:
        """Feed one request's queue/connect/response/total times (ms, -1 = n/a)."""
        self.timed += 1
        # SlidingAverage.add inlined, unrolled (called for every request, twice)
        av = self.qtime
        v = tw if tw > 0 else 0
        s = av.sum
        av.sum = s - s / av.n + v
        if v > av.max:
            av.max = v
        av = self.ctime
        v = tc if tc > 0 else 0
        s = av.sum
        av.sum = s - s / av.n + v
        if v > av.max:
            av.max = v
        av = self.rtime
        v = tr if tr > 0 else 0
        s = av.sum
        av.sum = s - s / av.n + v
        if v > av.max:
            av.max = v
        av = self.ttime
        v = ta if ta > 0 else 0
        s = av.sum
        av.sum = s - s / av.n + v
        if v > av.max:
            av.max = v

    def tunnel_open(self) -> None:
        self.ws_upgrade_ok += 1
        self.ws_tunnels_tot += 1
        self.ws_tunnels_cur += 1
        if self.ws_tunnels_cur > self.ws_tunnels_max:
            self.ws_tunnels_max = self.ws_tunnels_cur

    def tunnel_close(self, reason: str) -> None:
        self.ws_tunnels_cur -= 1
        closes = self.ws_close
        closes[reason] = closes.get(reason, 0) + 1


Listener = Callable[[str, dict[str, Any]], None]


class AgentState:
    """A server's agent check (`agent-check`): what the CLI may change about it and
    its last result. Its rise and fall are 1, as in HAProxy: the agent's own word
    sets its health (`up` 1, `down`/`stopped`/`fail` 0)."""

    __slots__ = ("enabled", "health", "rise", "fall", "addr", "port", "send", "inter",
                 "status", "code", "duration", "desc", "running", "last_check")

    def __init__(self, model: Server) -> None:
        self.enabled = True
        self.rise = 1
        self.fall = 1
        self.health = 1
        self.addr = model.agent_addr  # None: the check's `addr`, else the server's
        self.port = model.agent_port & 0xFFFF
        self.send = model.agent_send
        self.inter = model.agent_inter or model.inter
        self.status = "INI"
        self.code = 0
        self.duration = -1
        self.desc = ""  # stats `last_agt`
        self.running = False
        self.last_check = 0.0

    @property
    def ok(self) -> bool:
        """Lets its server come up: disabled, or its health at `rise`."""
        return not self.enabled or self.health >= self.rise


class ServerState:
    """One server's live state."""

    __slots__ = (
        "model", "backend", "name", "puid", "admin", "op", "health", "rise", "fall",
        "check_enabled", "iweight", "uweight", "eweight", "cur_conns", "maxconn",
        "queue", "counters", "check_status", "check_code", "check_duration",
        "check_desc", "check_running", "last_check", "last_change", "down_since",
        "downtime", "streams", "lb_data", "slowstart_until", "addr", "port",
        "check_info", "queue_idx", "agent", "observe", "hana_errors", "proxy_proto", "pp_opts",
        "port_offset", "no_addr", "fqdn", "use_ssl", "unix_path",
    )

    def __init__(self, model: Server, backend: BackendState, now: float) -> None:
        self.model = model
        self.backend = backend
        self.name = model.name
        self.puid = model.puid
        # as HAProxy: `disabled` is forced maintenance (left by `enable server` or
        # `set server ... state ready`) plus the config mark, which stays
        self.admin = ADMIN_FMAINT | ADMIN_CMAINT if model.disabled else 0
        if model.addr_none:
            self.admin |= ADMIN_RMAINT
        self.op = OP_RUNNING
        self.rise = model.rise
        self.fall = model.fall
        # spec §7.2: checked servers start at `rise` (lowest UP value); disabled at 0.
        self.health = 0 if model.disabled or model.addr_none else model.rise
        self.check_enabled = model.check
        self.iweight = model.weight
        self.uweight = model.weight
        self.eweight = model.weight
        self.cur_conns = 0  # requests/tunnels currently served (holds maxconn slots)
        self.maxconn = model.maxconn
        self.queue: deque[Any] = deque()  # waiters bound to this server
        self.queue_idx = 0  # waiters served from self.queue so far (log %sq positions)
        self.counters = Counters()
        self.check_status = "INI" if model.check else ""
        self.check_code = 0
        self.check_duration = -1
        self.check_desc = "Initializing" if model.check else ""
        self.check_running = False
        self.check_info = ""  # last check's detail text (stats `last_chk`), e.g. "Connection refused"
        self.last_check = 0.0
        self.last_change = now
        # a server that starts in maintenance is down from the start (downtime counts)
        self.down_since: float | None = now if self.admin & ADMIN_MAINT else None
        self.downtime = 0.0
        self.streams: set[Any] = set()  # live streams/tunnels (objects with .kill(code))
        self.lb_data: Any = None  # private to the balancer
        self.slowstart_until = 0.0
        self.addr = model.fallback_ip or model.host
        # no address at all: its name gave none at start-up (`init-addr none`), or its
        # resolvers took it away (it is then in resolution maintenance)
        self.no_addr = model.addr_none
        # the name it is resolved by (`show servers state` srv_fqdn): as written, or
        # the target an SRV record gave it (None: none yet)
        self.fqdn: str | None = (
            None if (model.host.startswith("_") and model.resolvers) or
            not needs_resolution(model) else model.host)
        self.port = model.port
        self.port_offset = model.port_offset
        # the local stream socket it is reached by (`/path`, `unix@`, `abns@`), else None
        self.unix_path = socket_path(model.host)
        # TLS to the server: 1 on, 0 off, -1 off by `no-ssl` (`set server ... ssl`
        # turns it on or off where the server has TLS settings)
        self.use_ssl = 1 if model.ssl else -1 if model.no_ssl else 0
        self.agent = AgentState(model) if model.agent_check else None
        # `observe` (lb.hana): 0 none, 1 layer4, 2 layer7; consecutive errors seen.
        # As HAProxy 2.6: traffic is observed only where a health check runs
        self.observe = {"layer4": 1, "layer7": 2}.get(model.observe or "", 0) if model.check else 0
        # the PROXY header a new connection to it starts with: 0 none, 1 v1, 2 v2 (v2
        # wins when both are set, as in HAProxy). `proxy-v2-options` without
        # `send-proxy-v2` makes HAProxy 2.6.12 send a v1 header: so does lb
        self.proxy_proto = (2 if model.send_proxy_v2 else
                            1 if model.send_proxy or model.proxy_v2_options else 0)
        # what `proxy-v2-options` adds to a v2 header (lb.http.proxyproto.OPT_*)
        self.pp_opts = proxyproto.option_flags(model.proxy_v2_options)
        self.hana_errors = 0

    # ---- derived views
    @property
    def backup(self) -> bool:
        return self.model.backup

    @property
    def maxqueue(self) -> int:
        """Cap of this server's own queue (0 = unlimited)."""
        return self.model.maxqueue

    @property
    def in_maint(self) -> bool:
        return bool(self.admin & ADMIN_MAINT)

    @property
    def in_drain(self) -> bool:
        return bool(self.admin & ADMIN_DRAIN)

    @property
    def is_running(self) -> bool:
        """Not stopped: may serve persistent traffic (DRAIN and NOLB included)."""
        return not self.in_maint and self.op != OP_STOPPED

    @property
    def usable(self) -> bool:
        """May be picked by load balancing."""
        return (not self.admin & ADMIN_UNUSABLE and self.op in (OP_RUNNING, OP_STARTING)
                and self.eweight > 0)

    @property
    def has_slot(self) -> bool:
        return self.maxconn == 0 or self.cur_conns < self.maxconn

    def status_text(self) -> str:
        """The stats `status` column (spec §5.4)."""
        if self.admin & ADMIN_FMAINT:
            return "MAINT"
        if self.admin & ADMIN_IMAINT:
            return f"MAINT (via {self.model.track})"
        if self.admin & ADMIN_RMAINT:
            return "MAINT (resolution)"
        agent = self.agent
        if agent is not None and agent.enabled:
            if self.op == OP_STOPPED and not agent.health:
                return "DOWN (agent)"
            if self.op in (OP_RUNNING, OP_STARTING) and self.admin & ADMIN_DRAIN:
                return "DRAIN (agent)"
        if not (self.model.check and self.check_enabled):  # none, or `disable health`
            if self.op == OP_STOPPED:  # forced down from the CLI, or by its last check
                return "DOWN"
            if self.admin & ADMIN_DRAIN:
                return "DRAIN"
            if self.op == OP_STOPPING:
                return "NOLB"
            return "no check"
        # stopped is DOWN; otherwise UP, even below `rise` (a server restored from a
        # server-state file as starting shows "UP 0/3", as in HAProxy)
        up = self.op != OP_STOPPED
        if not up:
            base = "DOWN"
            pending = self.health  # successes so far
            return f"{base} {pending}/{self.rise}" if pending else base
        if self.admin & ADMIN_DRAIN:
            base = "DRAIN"
        elif self.op == OP_STOPPING:
            base = "NOLB"
        else:
            base = "UP"
        remaining = self.health - self.rise + 1
        full = self.fall
        return base if remaining >= full else f"{base} {remaining}/{full}"

    # ---- changes (each notifies the balancer and the listeners)
    def _changed(self, event: str, now: float, **info: Any) -> None:
        self.last_change = now
        self.backend.server_changed(self, event, now, info)

    def set_admin(self, bits: int, on: bool, now: float) -> None:
        was = self.admin
        self.admin = (self.admin | bits) if on else (self.admin & ~bits)
        if self.admin != was:
            self._account_down(now)
            self._changed("admin", now, was=was)

    def set_operational(self, op: int, now: float, **reason: Any) -> None:
        if op == self.op:
            return
        was = self.op
        self.op = op
        self._account_down(now)
        self._changed("op", now, was=was, **reason)

    def set_weight(self, weight: int, now: float) -> None:
        self.uweight = weight
        self.eweight = weight
        self._changed("weight", now)

    def set_eweight(self, eweight: int, now: float) -> None:
        """Change only the effective weight (slowstart ramp); `uweight` is kept and
        `last_change` is not touched (it is not a state change)."""
        if eweight != self.eweight:
            self.eweight = eweight
            self.backend.server_changed(self, "weight", now, {})

    def _account_down(self, now: float) -> None:
        stopped = not self.is_running
        if stopped and self.down_since is None:
            self.down_since = now
        elif not stopped and self.down_since is not None:
            self.downtime += now - self.down_since
            self.down_since = None

    def total_downtime(self, now: float) -> float:
        extra = now - self.down_since if self.down_since is not None else 0.0
        return self.downtime + extra


class BackendState:
    __slots__ = (
        "model", "name", "state", "servers", "by_name", "balancer", "queue", "counters",
        "last_change", "down_since", "downtime", "ws_denied", "queue_idx",
        "dyn_cookie_key", "dyn_cookie_on", "dispatch",
    )

    def __init__(self, model: Proxy, state: State, now: float) -> None:
        self.model = model
        self.name = model.name
        self.state = state
        self.servers = [ServerState(s, self, now) for s in model.servers]
        self.by_name = {s.name: s for s in self.servers}
        # `dispatch` / `option transparent` (no `balance`): where what persistence does
        # not place goes. A server of no name, in no list: not balanced, not shown
        self.dispatch = (ServerState(model.dispatch, self, now)
                         if model.dispatch is not None else None)
        self.queue: deque[Any] = deque()  # waiters not bound to a server
        self.queue_idx = 0  # waiters served from self.queue so far (log %bq positions)
        self.counters = Counters()
        self.last_change = now
        self.downtime = 0.0
        self.balancer = balance.create(model.balance, self.servers, model.options.allbackups,
                                       model.hash_balance_factor)
        # a backend whose servers all start disabled is down from the start (its
        # downtime counts; its first server up is not a transition down)
        self.down_since: float | None = None if self.is_up else now
        # dynamic cookies: the CLI turns them on and off and changes the key
        self.dyn_cookie_key: str | None = model.dynamic_cookie_key
        self.dyn_cookie_on = model.cookie is not None and model.cookie.dynamic

    def server(self, ref: str) -> ServerState | None:
        """By name or `#<id>`."""
        if ref.startswith("#"):
            try:
                puid = int(ref[1:])
            except ValueError:
                return None
            return next((s for s in self.servers if s.puid == puid), None)
        return self.by_name.get(ref)

    def usable_count(self) -> tuple[int, int]:
        """(active, backup) servers that are running (stats act/bck)."""
        act = sum(1 for s in self.servers if s.usable and not s.backup)
        bck = sum(1 for s in self.servers if s.usable and s.backup)
        return act, bck

    def total_weight(self) -> int:
        act = sum(s.eweight for s in self.servers if s.usable and not s.backup)
        if act:
            return act
        return sum(s.eweight for s in self.servers if s.usable and s.backup)

    @property
    def is_up(self) -> bool:
        return not self.servers or any(s.usable for s in self.servers)

    @property
    def shows_up(self) -> bool:
        """The stats status: a backend that does not load balance but has servers
        reads DOWN in HAProxy 2.6.12 (it never adds their weights up)."""
        return self.is_up and (self.dispatch is None or not self.servers)

    def server_changed(self, srv: ServerState, event: str, now: float,
                       info: dict[str, Any]) -> None:
        was_up = self.down_since is None
        self.balancer.update(srv)
        up = self.is_up
        if was_up and not up:
            self.down_since = now
            self.last_change = now
            self.counters.chkdown += 1
        elif not was_up and up and self.down_since is not None:
            self.downtime += now - self.down_since
            self.down_since = None
            self.last_change = now
        self.state.emit("server_" + event, {"backend": self, "server": srv,
                                             "backend_up": up, "backend_was_up": was_up,
                                             **info})


class FrontendState:
    __slots__ = ("model", "name", "counters", "status", "conns", "maxconn", "paused",
                 "stopped")

    def __init__(self, model: Proxy) -> None:
        self.model = model
        self.name = model.name
        self.counters = Counters()
        self.status = "OPEN"  # OPEN STOP PAUSED FULL
        self.conns = 0
        # set from the CLI (`set maxconn frontend`, `disable`/`shutdown frontend`); the
        # running listeners follow through a "frontend_changed" event
        self.maxconn: int | None = model.maxconn or None  # None: the process limit
        self.paused = False
        self.stopped = False


class CapturedError:
    """One protocol error kept for `show errors` (the last 64 are kept)."""

    __slots__ = ("when", "proxy", "direction", "src", "reason", "raw")

    def __init__(self, when: float, proxy: str, direction: str, src: str, reason: str,
                 raw: bytes) -> None:
        self.when = when  # epoch seconds
        self.proxy = proxy  # frontend (request errors) or backend (response errors) name
        self.direction = direction  # "request" or "response"
        self.src = src  # "ip:port" of the client (or server for responses)
        self.reason = reason  # short text, e.g. "invalid header name"
        self.raw = raw[:16384]  # the offending bytes as received (bounded)


class State:
    """All runtime state of one configuration generation."""

    def __init__(self, config: Config, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.config = config
        self.start_time = now
        self.frontends: dict[str, FrontendState] = {}
        self.backends: dict[str, BackendState] = {}
        self.listeners: list[Listener] = []
        for p in config.proxies:
            if p.is_frontend:
                self.frontends[p.name] = FrontendState(p)
            if p.is_backend:
                self.backends[p.name] = BackendState(p, self, now)
        # process-wide counters (show info)
        self.curr_conns = 0
        self.cum_conns = 0
        self.cum_req = 0
        self.curr_ssl_conns = 0  # TLS connections open now, and since the start
        self.cum_ssl_conns = 0
        self.max_conn_rate = 0
        self.conn_rate = FreqCounter()
        self.sess_rate = FreqCounter()
        # bytes into and out of the compressors a second (show info, maxcomprate),
        # and how idle the process is (Idle_pct, maxcompcpuusage)
        self.comp_bps_in = FreqCounter()
        self.comp_bps_out = FreqCounter()
        self.idle = IdleMeter()
        self.stopping = False
        self.busy_polling = False  # the loop polls without sleeping (show info)
        # the `proc.` variables: the global set-var values, then what rules and the
        # CLI's `set var` change (lb.match.variables)
        self.proc_vars = ProcVars(config.global_.proc_vars)
        self.streams: dict[int, Any] = {}  # id -> live stream (show sess, shutdown session)
        self.tunnels: dict[int, Any] = {}  # id -> live tunnel (show websockets)
        self.errors: deque[Any] = deque(maxlen=64)  # captured protocol errors (show errors)
        self._next_id = 0
        self.req_seq = 0  # the next request number (%rt; HAProxy's global.req_count)
        self.maxconn: int | None = None  # `set maxconn global` (None: the configured one)
        self.cli_addrs: set[tuple[str, str]] = set()  # servers `set server addr` moved
        # stick tables by proxy name (lb.sticktable; `show table` lists them newest first)
        # (a table that `stick` rules use names a server in each entry)
        sticky = {r.table or p.name for p in config.proxies for r in p.stick_rules}
        self.tables: dict[str, StickTable] = {
            p.name: StickTable(p.name, p.stick_table, p.name in sticky)
            for p in config.proxies if p.stick_table is not None}
        # a master's State: each worker keeps its own tables, the master's are empty
        self.tables_in_workers = False
        # each name server's counters (`show resolvers`), which lb.resolvers moves
        self.dns_counters: dict[str, list[NameserverCounters]] = {
            r.name: [NameserverCounters(r.name, ns.name) for ns in r.nameservers]
            for r in config.resolvers}
        # `email-alert`: called with (backend, level, text) for each state-change line
        # while lb.mailers runs
        self.email_alerts: Callable[[BackendState, str, str], None] | None = None
        # `do-resolve`: (section, name, ipv4, wait, done) calls done(address or None)
        # once, at once or when the answer comes; set while lb.resolvers runs
        self.dns_lookup: Callable[[str, str, bool, bool, Callable[[str | None], None]],
                                  None] | None = None
        # `observe`: called with (server, text) when a server reaches its
        # `error-limit` (lb.hana); set where health checks run, or by a worker
        self.health_analysis: Callable[[ServerState, str], None] | None = None

    def capture_error(self, when: float, proxy: str, direction: str, src: str,
                      reason: str, raw: bytes) -> None:
        """Keep a protocol error for `show errors` (cheap; bounded to 64 entries)."""
        self.errors.append(CapturedError(when, proxy, direction, src, reason, raw))

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def next_req(self) -> int:
        """A request's number (%rt): one per stream and per line logged without one,
        from 0, never reset (unlike `cum_req`, which `clear counters all` zeroes)."""
        n = self.req_seq
        self.req_seq = n + 1
        return n

    def emit(self, event: str, info: dict[str, Any]) -> None:
        for fn in self.listeners:
            fn(event, info)

    def find_server(self, ref: str) -> tuple[BackendState | None, ServerState | None]:
        """Resolve `backend/server` (either part may be `#id`)."""
        if "/" not in ref:
            return None, None
        b, s = ref.split("/", 1)
        be = self.backend(b)
        if be is None:
            return None, None
        return be, be.server(s)

    def backend(self, ref: str) -> BackendState | None:
        if ref.startswith("#"):
            try:
                puid = int(ref[1:])
            except ValueError:
                return None
            return next((b for b in self.backends.values() if b.model.puid == puid), None)
        return self.backends.get(ref)

    def all_servers(self) -> Iterator[ServerState]:
        for b in self.backends.values():
            yield from b.servers
