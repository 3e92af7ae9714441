"""Statistics core: the STAT_COLUMNS table and the `show stat` / `show info` /
`show servers state` / `show websockets` outputs, all computed from ``lb.state``.
``lb.stats`` re-exports all of it and adds the data plane's entry points; this
split exists only so that ``lb.stats_html`` and ``lb.prometheus`` can share the
rows without an import cycle.

Owns: the one table of stats columns (HAProxy 2.6's CSV columns 0-102 in their
exact order, then lb's WebSocket columns), the `show info` key table, and the
CSV, typed and JSON formatters. Pure: every function takes ``now`` (seconds since
the epoch) and returns text; no sockets, no clock reads except the defaults of
in ``lb.stats``'s entry points.

Must not import: lb.proxy, lb.cli, lb.log, healthcheck.
"""

from __future__ import annotations

import json
import os
import resource
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import lb
from lb.config.model import Proxy
from lb.dns.counters import COUNTERS, ID_COLUMNS, NAMES
from lb.state import (
    ADMIN_MAINT,
    OP_STOPPED,
    WS_CLOSE_REASONS,
    WS_FAIL_REASONS,
    AgentState,
    BackendState,
    Counters,
    ServerState,
    State,
)

# Object types, as the `show stat <iid> <type> <sid>` bitmask uses them.
FE, BE, SRV = 1, 2, 4
ALL = FE | BE | SRV
TYPE_CODE = {FE: 0, BE: 1, SRV: 2}  # the `type` column
OBJ_LETTER = {FE: "F", BE: "B", SRV: "S"}  # typed output
OBJ_NAME = {FE: "Frontend", BE: "Backend", SRV: "Server"}  # JSON output

# Field tags (typed output letters -> JSON words), as HAProxy prints them.
ORIGINS = {"M": "Metric", "S": "Status", "K": "Key", "C": "Config", "P": "Product"}
NATURES = {"A": "Age", "a": "Avg", "C": "Counter", "D": "Duration", "G": "Gauge",
           "L": "Limit", "M": "Max", "N": "Name", "O": "Output", "R": "Rate", "T": "Time"}
SCOPES = {"C": "Cluster", "P": "Process", "S": "Service", "s": "System"}

# Health-check status codes: name -> (HAProxy enum value, description). The enum
# values are what `show servers state` prints; descriptions fill `check_desc`.
CHECK_STATUSES: dict[str, tuple[int, str]] = {
    "UNK": (0, "Unknown"),
    "INI": (1, "Initializing"),
    "CHECKED": (3, "No status change"),  # an agent's reply without a health word
    "HANA": (4, "Health analyze"),
    "SOCKERR": (5, "Socket error"),
    "L4OK": (6, "Layer4 check passed"),
    "L4TOUT": (7, "Layer4 timeout"),
    "L4CON": (8, "Layer4 connection problem"),
    "L6OK": (9, "Layer6 check passed"),
    "L6TOUT": (10, "Layer6 timeout"),
    "L6RSP": (11, "Layer6 invalid response"),
    "L7TOUT": (12, "Layer7 timeout"),
    "L7RSP": (13, "Layer7 invalid response"),
    "L7OK": (15, "Layer7 check passed"),
    "L7OKC": (16, "Layer7 check conditionally passed"),
    "L7STS": (17, "Layer7 wrong status"),
    "PROCERR": (18, "External check error"),
    "PROCTOUT": (19, "External check timeout"),
    "PROCOK": (20, "External check passed"),
}
_CHECK_PASSED = frozenset({"L4OK", "L6OK", "L7OK", "PROCOK"})


@dataclass(slots=True)
class Obj:
    """One stats row: a frontend, a backend or a server, with what renderers need."""

    kind: int  # FE, BE or SRV
    proxy: Proxy
    item: Any  # FrontendState | BackendState | ServerState
    state: State
    now: float
    # addresses, cookies and algorithms ("legends") are shown to CLI sessions of level
    # operator and up, and on a stats page with `stats show-legends`, as in HAProxy
    legends: bool = True
    # `show stat up` / `no-maint`: the BACKEND status also counts its servers, "UP (1/2)"
    server_counts: bool = False

    @property
    def c(self) -> Counters:
        return self.item.counters

    @property
    def sid(self) -> int:
        return self.item.puid if self.kind == SRV else 0


Getter = Callable[[Obj], Any]

# columns HAProxy fills only for viewers allowed the "legends" (STAT_SHLGNDS): addr,
# cookie, algo
LEGEND_COLUMNS = frozenset({73, 74, 76})


@dataclass(frozen=True, slots=True)
class StatColumn:
    pos: int
    name: str
    objs: int  # FE|BE|SRV mask of the rows that carry this column
    type: str  # u32 u64 s32 str
    tags: str  # origin, nature, scope letters (see ORIGINS/NATURES/SCOPES)
    get: Getter  # None result = empty field
    desc: str
    be_tags: str = ""  # backend rows' tags when they differ


# ----------------------------------------------------------------- column getters


def _ctr(name: str) -> Getter:
    return lambda o: getattr(o.c, name)


def _http_ctr(name: str) -> Getter:
    return lambda o: getattr(o.c, name) if o.proxy.mode == "http" else None


def _srv(fn: Callable[[ServerState], Any]) -> Getter:
    return lambda o: fn(o.item) if o.kind == SRV else None


def _checked(fn: Callable[[ServerState], Any]) -> Getter:
    """Server columns that exist only while the server's health check is active."""
    return lambda o: fn(o.item) if o.kind == SRV and _check_active(o.item) else None


def _check_enabled(s: ServerState) -> bool:
    """Configured and not disabled from the CLI: the check's counters are shown."""
    return s.model.check and s.check_enabled


def _check_active(s: ServerState) -> bool:
    """Enabled and not paused by maintenance: its last result is shown too (as
    HAProxy 2.6.12 shows it)."""
    return _check_enabled(s) and not s.in_maint


def process_maxconn(state: State) -> int:
    """Global maxconn (as `set maxconn global` left it), or HAProxy's default derived
    from the open-files limit."""
    if state.maxconn:
        return state.maxconn
    return hard_maxconn(state)


def hard_maxconn(state: State) -> int:
    """The maxconn the process started with (`Hard_maxconn`)."""
    g = state.config.global_
    if g.maxconn:
        return g.maxconn
    soft = g.ulimit_n or resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft <= 0 or soft == resource.RLIM_INFINITY:
        soft = 20000
    return max((soft - 30) // 2, 1)


def _slim(o: Obj) -> int | None:
    if o.kind == FE:
        fst = o.item
        return fst.maxconn if fst.maxconn is not None else process_maxconn(o.state)
    if o.kind == SRV:
        return o.item.maxconn or None
    if o.proxy.fullconn:
        return o.proxy.fullconn
    # HAProxy's default fullconn: 10% of the maxconn of the frontends that can
    # reach this backend (rounded up).
    total = 0
    for p in o.state.config.proxies:
        if not p.is_frontend:
            continue
        reach = (p is o.proxy or p.default_backend == o.proxy.name
                 or any(r.backend == o.proxy.name for r in p.switching_rules))
        if reach:
            total += p.maxconn or process_maxconn(o.state)
    return max((total + 9) // 10, 1)


def _qcur(o: Obj) -> int:
    return max(o.c.qcur, len(o.item.queue))


def _scur(o: Obj) -> int:
    if o.kind == SRV:
        return max(o.c.scur, o.item.cur_conns)
    return o.c.scur


def _status(o: Obj) -> str:
    if o.kind == FE:
        return o.item.status
    if o.kind == BE:
        word = "UP" if o.item.shows_up else "DOWN"
        if not o.server_counts:
            return word
        servers = o.item.servers
        return f"{word} ({sum(1 for s in servers if s.is_running)}/{len(servers)})"
    return o.item.status_text()


def _weight(o: Obj) -> int:
    if o.proxy.dispatch is not None:  # no load balancing: HAProxy 2.6.12 weighs nothing
        return 0
    return o.item.eweight if o.kind == SRV else o.item.total_weight()


def _uweight(o: Obj) -> int:
    if o.kind == SRV:
        return o.item.uweight
    if o.proxy.dispatch is not None:
        return 0
    be: BackendState = o.item
    act = sum(s.uweight for s in be.servers if s.usable and not s.backup)
    return act or sum(s.uweight for s in be.servers if s.usable and s.backup)


def _act(o: Obj) -> int:
    return (0 if o.item.backup else 1) if o.kind == SRV else o.item.usable_count()[0]


def _bck(o: Obj) -> int:
    return (1 if o.item.backup else 0) if o.kind == SRV else o.item.usable_count()[1]


def _lastchg(o: Obj) -> int:
    return max(int(o.now - o.item.last_change), 0)


def _downtime(o: Obj) -> int | None:
    if o.kind == SRV:
        return int(o.item.total_downtime(o.now)) if _check_enabled(o.item) else None
    be: BackendState = o.item
    if not be.servers:
        return None  # HAProxy 2.6.12 leaves it empty
    extra = o.now - be.down_since if be.down_since is not None else 0.0
    return int(be.downtime + extra)


def _throttle(o: Obj) -> int | None:
    s: ServerState = o.item
    ramp = s.model.slowstart
    if o.kind != SRV or not ramp or s.slowstart_until <= 0:
        return None
    left = s.slowstart_until - o.now
    return None if left <= 0 else max(int(100 * (1 - left / ramp)), 0)


def _tracked(s: ServerState) -> str | None:
    t = s.model.track
    if not t:
        return None
    return t if "/" in t else f"{s.backend.name}/{t}"


def _rate(o: Obj) -> int:
    return o.c.sess_rate.read(o.now)


def _check_status(s: ServerState) -> str | None:
    if not s.check_status:
        return None
    return ("* " if s.check_running else "") + s.check_status


# the statuses past HAProxy's L57DATA: those show their code (0 included)
_CODED_STATUSES = frozenset(("L7OK", "L7OKC", "L7STS", "PROCERR", "PROCTOUT", "PROCOK"))


def _check_code(s: ServerState) -> int | None:
    """Shown from HAProxy's L57DATA status on: the layer-7 verdicts on an answer, and
    an external check's exit status (0 included); not for timeouts or bad answers."""
    return s.check_code if s.check_status in _CODED_STATUSES else None


def _check_desc(s: ServerState) -> str | None:
    known = CHECK_STATUSES.get(s.check_status)
    return known[1] if known else (s.check_desc or None)


def _last_chk(s: ServerState) -> str:
    return getattr(s, "check_info", "") or ""


def _agent(fn: Callable[[AgentState], Any]) -> Getter:
    """Server columns of an enabled agent check."""
    def get(o: Obj) -> Any:
        if o.kind != SRV:
            return None
        agent = o.item.agent
        return fn(agent) if agent is not None and agent.enabled else None
    return get


def _agent_status(a: AgentState) -> str:
    return ("* " if a.running else "") + a.status


def _agent_code(a: AgentState) -> int | None:
    return a.code if a.status in ("L7OK", "L7OKC", "L7STS") else None


def _agent_duration(a: AgentState) -> int | None:
    return a.duration if a.status not in ("INI", "UNK") and a.duration >= 0 else None


def _agent_desc(a: AgentState) -> str | None:
    known = CHECK_STATUSES.get(a.status)
    return known[1] if known else None


def _lastsess(o: Obj) -> int:
    last = o.c.last_sess
    return int(o.now - last) if last else -1


def _avg(name: str) -> Getter:
    return lambda o: getattr(o.c, name).read(o.c.timed)


def _avg_max(name: str) -> Getter:
    return lambda o: getattr(o.c, name).max


def _addr(s: ServerState) -> str | None:
    if s.no_addr:
        return None  # no address: its name did not resolve (at start-up, or by DNS)
    if s.port is not None:
        return f"{s.addr}:{s.port}"
    if s.unix_path is not None:
        return "unix"  # (HAProxy 2.6.12 names a local socket's family, not its path)
    # no port, or `+N`/`-N`: HAProxy 2.6.12 shows the offset (`127.0.0.1:0`, `:5`, `:-10`)
    return f"{s.addr}:{s.port_offset}"


def _cookie(o: Obj) -> str | None:
    if o.kind == SRV:
        return o.item.model.cookie
    if o.kind == BE and o.proxy.cookie is not None:
        return o.proxy.cookie.name
    return None


def _algo(o: Obj) -> str:
    # `dispatch` or `option transparent` without `balance`: HAProxy 2.6.12's "none"
    return "none" if o.proxy.dispatch is not None else o.proxy.balance.algorithm


def _fc_read(name: str) -> Getter:
    return lambda o: getattr(o.c, name).read(o.now)


def _fc_max(name: str) -> Getter:
    return lambda o: getattr(o.c, name).max


def _zero(_o: Obj) -> int:
    return 0


def _http_zero(o: Obj) -> int | None:
    return 0 if o.proxy.mode == "http" else None


def _none(_o: Obj) -> None:
    return None


def _ws_fail_total(o: Obj) -> int:
    return sum(o.c.ws_fail.values())


def _ws_frames_total(o: Obj) -> int:
    return sum(o.c.ws_frames.values())


F_, B_, S_ = FE, BE, SRV
FB, BS, FBS = FE | BE, BE | SRV, FE | BE | SRV

# The CSV columns in HAProxy 2.6's exact order (positions 0-102), then lb's
# WebSocket columns. HAProxy's own module columns (after its `-` marker) are not
# emitted: parsers read the first 103 columns by position or any column by name.
STAT_COLUMNS: tuple[StatColumn, ...] = (
    StatColumn(0, "pxname", FBS, "str", "KNS", lambda o: o.proxy.name, "proxy name"),
    StatColumn(1, "svname", FBS, "str", "KNS",
               lambda o: {FE: "FRONTEND", BE: "BACKEND"}.get(o.kind) or o.item.name,
               "FRONTEND, BACKEND or the server name"),
    StatColumn(2, "qcur", BS, "u32", "MGP", _qcur, "requests waiting in queue"),
    StatColumn(3, "qmax", BS, "u32", "MMP", _ctr("qmax"), "max queued requests"),
    StatColumn(4, "scur", FBS, "u32", "MGP", _scur, "current sessions"),
    StatColumn(5, "smax", FBS, "u32", "MMP", _ctr("smax"), "max sessions"),
    StatColumn(6, "slim", FBS, "u32", "CLP", _slim, "sessions limit"),
    StatColumn(7, "stot", FBS, "u64", "MCP", _ctr("stot"), "cumulated sessions"),
    StatColumn(8, "bin", FBS, "u64", "MCP", _ctr("bin"), "bytes in (client to server)"),
    StatColumn(9, "bout", FBS, "u64", "MCP", _ctr("bout"), "bytes out (server to client)"),
    StatColumn(10, "dreq", FB, "u64", "MCP", _ctr("dreq"), "requests denied"),
    StatColumn(11, "dresp", FBS, "u64", "MCP", _ctr("dresp"), "responses denied"),
    StatColumn(12, "ereq", F_, "u64", "MCP", _ctr("ereq"), "request errors"),
    StatColumn(13, "econ", BS, "u64", "MCP", _ctr("econ"), "connection errors"),
    StatColumn(14, "eresp", BS, "u64", "MCP", _ctr("eresp"), "response errors"),
    StatColumn(15, "wretr", BS, "u64", "MCP", _ctr("wretr"), "connection retries"),
    StatColumn(16, "wredis", BS, "u64", "MCP", _ctr("wredis"), "redispatches"),
    StatColumn(17, "status", FBS, "str", "SGP", _status, "status"),
    StatColumn(18, "weight", BS, "u32", "MaP", _weight, "effective weight"),
    StatColumn(19, "act", BS, "u32", "SGP", _act, "active server(s)", be_tags="MGP"),
    StatColumn(20, "bck", BS, "u32", "SGP", _bck, "backup server(s)", be_tags="MGP"),
    StatColumn(21, "chkfail", S_, "u64", "MCP",
               lambda o: o.c.chkfail if o.kind == SRV and _check_enabled(o.item) else None,
               "failed checks"),
    StatColumn(22, "chkdown", BS, "u64", "MCP",
               lambda o: o.c.chkdown if o.kind == BE or _check_enabled(o.item) else None,
               "UP to DOWN transitions"),
    StatColumn(23, "lastchg", BS, "u32", "MAP", _lastchg, "seconds since last change"),
    StatColumn(24, "downtime", BS, "u32", "MCP", _downtime, "total downtime (s)"),
    StatColumn(25, "qlimit", S_, "u32", "CGS", _srv(lambda s: s.model.maxqueue or None),
               "maxqueue"),
    StatColumn(26, "pid", FBS, "u32", "KGP", lambda o: 1, "process id (relative)"),
    StatColumn(27, "iid", FBS, "u32", "KGS", lambda o: o.proxy.puid, "proxy id"),
    StatColumn(28, "sid", FBS, "u32", "KGS", lambda o: o.sid, "server id"),
    StatColumn(29, "throttle", S_, "u32", "MaP", _throttle, "slowstart throttle %"),
    StatColumn(30, "lbtot", BS, "u64", "MCP", _ctr("lbtot"), "times selected"),
    StatColumn(31, "tracked", S_, "str", "CNS", _srv(_tracked), "tracked server"),
    StatColumn(32, "type", FBS, "u32", "CGS", lambda o: TYPE_CODE[o.kind],
               "0=frontend 1=backend 2=server"),
    StatColumn(33, "rate", FBS, "u32", "MRP", _rate, "sessions per second",
               be_tags="MGP"),
    StatColumn(34, "rate_lim", F_, "u32", "CLP", lambda o: o.proxy.rate_limit_sessions,
               "session rate limit"),
    StatColumn(35, "rate_max", FBS, "u32", "MMP", _fc_max("sess_rate"),
               "max sessions per second", be_tags="MGP"),
    StatColumn(36, "check_status", S_, "str", "MOP", _checked(_check_status),
               "last check status"),
    StatColumn(37, "check_code", S_, "u32", "MOP", _checked(_check_code),
               "layer7 check code"),
    StatColumn(38, "check_duration", S_, "u64", "MDP",
               _checked(lambda s: s.check_duration if s.check_duration >= 0 else None),
               "last check duration (ms)"),
    StatColumn(39, "hrsp_1xx", FBS, "u64", "MCP", _http_ctr("hrsp_1xx"), "1xx responses"),
    StatColumn(40, "hrsp_2xx", FBS, "u64", "MCP", _http_ctr("hrsp_2xx"), "2xx responses"),
    StatColumn(41, "hrsp_3xx", FBS, "u64", "MCP", _http_ctr("hrsp_3xx"), "3xx responses"),
    StatColumn(42, "hrsp_4xx", FBS, "u64", "MCP", _http_ctr("hrsp_4xx"), "4xx responses"),
    StatColumn(43, "hrsp_5xx", FBS, "u64", "MCP", _http_ctr("hrsp_5xx"), "5xx responses"),
    StatColumn(44, "hrsp_other", FBS, "u64", "MCP", _http_ctr("hrsp_other"),
               "other responses"),
    StatColumn(45, "hanafail", S_, "u64", "MCP",
               _srv(lambda s: s.counters.hanafail if s.model.observe in ("layer4", "layer7")
                    else None),
               "failed health analyses"),
    StatColumn(46, "req_rate", F_, "u32", "MRP", _fc_read("req_rate"), "requests per second"),
    StatColumn(47, "req_rate_max", F_, "u32", "MMP", _fc_max("req_rate"),
               "max requests per second"),
    StatColumn(48, "req_tot", FBS, "u64", "MCP",
               lambda o: o.c.req_tot if o.kind == FE or o.proxy.mode == "http" else None,
               "total requests"),
    StatColumn(49, "cli_abrt", BS, "u64", "MCP", _ctr("cli_abrt"), "client aborts"),
    StatColumn(50, "srv_abrt", BS, "u64", "MCP", _ctr("srv_abrt"), "server aborts"),
    StatColumn(51, "comp_in", FB, "u64", "MCP", _ctr("comp_in"), "compressor input bytes"),
    StatColumn(52, "comp_out", FB, "u64", "MCP", _ctr("comp_out"), "compressor output bytes"),
    StatColumn(53, "comp_byp", FB, "u64", "MCP", _ctr("comp_byp"), "bytes bypassing compression"),
    StatColumn(54, "comp_rsp", FB, "u64", "MCP", _ctr("comp_rsp"), "compressed responses"),
    StatColumn(55, "lastsess", BS, "s32", "MAP", _lastsess, "seconds since last session"),
    StatColumn(56, "last_chk", S_, "str", "MOP", _checked(_last_chk), "last check info"),
    StatColumn(57, "last_agt", S_, "str", "MOP", _agent(lambda a: a.desc),
               "last agent check info"),
    StatColumn(58, "qtime", BS, "u32", "MaP", _avg("qtime"), "avg queue time (ms)"),
    StatColumn(59, "ctime", BS, "u32", "MaP", _avg("ctime"), "avg connect time (ms)"),
    StatColumn(60, "rtime", BS, "u32", "MaP", _avg("rtime"), "avg response time (ms)"),
    StatColumn(61, "ttime", BS, "u32", "MaP", _avg("ttime"), "avg total time (ms)"),
    StatColumn(62, "agent_status", S_, "str", "MOP", _agent(_agent_status),
               "agent check status"),
    StatColumn(63, "agent_code", S_, "u32", "MOP", _agent(_agent_code), "agent check code"),
    StatColumn(64, "agent_duration", S_, "u64", "MDP", _agent(_agent_duration),
               "agent check duration"),
    StatColumn(65, "check_desc", S_, "str", "MOP", _checked(_check_desc),
               "check status description"),
    StatColumn(66, "agent_desc", S_, "str", "MOP", _agent(_agent_desc),
               "agent status description"),
    StatColumn(67, "check_rise", S_, "u32", "CGS", _checked(lambda s: s.rise), "rise"),
    StatColumn(68, "check_fall", S_, "u32", "CGS", _checked(lambda s: s.fall), "fall"),
    StatColumn(69, "check_health", S_, "u32", "CGS", _checked(lambda s: s.health),
               "health counter"),
    StatColumn(70, "agent_rise", S_, "u32", "CGS", _agent(lambda a: a.rise), "agent rise"),
    StatColumn(71, "agent_fall", S_, "u32", "CGS", _agent(lambda a: a.fall), "agent fall"),
    StatColumn(72, "agent_health", S_, "u32", "CGS", _agent(lambda a: a.health),
               "agent health"),
    StatColumn(73, "addr", S_, "str", "CGS", _srv(_addr), "server address"),
    StatColumn(74, "cookie", BS, "str", "CNS", _cookie, "cookie value or name"),
    StatColumn(75, "mode", FBS, "str", "CGS", lambda o: o.proxy.mode, "proxy mode"),
    StatColumn(76, "algo", B_, "str", "CGS", _algo, "balance algorithm"),
    StatColumn(77, "conn_rate", F_, "u32", "MRP", _fc_read("conn_rate"),
               "connections per second"),
    StatColumn(78, "conn_rate_max", F_, "u32", "MMP", _fc_max("conn_rate"),
               "max connections per second"),
    StatColumn(79, "conn_tot", F_, "u64", "MCP", _ctr("conn_tot"), "cumulated connections"),
    StatColumn(80, "intercepted", F_, "u64", "MCP", _http_ctr("intercepted"),
               "intercepted requests"),
    StatColumn(81, "dcon", F_, "u64", "MCP", _ctr("dcon"), "connections denied"),
    StatColumn(82, "dses", F_, "u64", "MCP", _ctr("dses"), "sessions denied"),
    StatColumn(83, "wrew", FBS, "u64", "MCP", _ctr("wrew"), "failed rewrites"),
    StatColumn(84, "connect", BS, "u64", "MCP", _ctr("connect"), "connections established"),
    StatColumn(85, "reuse", BS, "u64", "MCP", _ctr("reuse"), "connections reused"),
    StatColumn(86, "cache_lookups", FB, "u64", "MCP", _http_zero, "cache lookups"),
    StatColumn(87, "cache_hits", FB, "u64", "MCP", _http_zero, "cache hits"),
    StatColumn(88, "srv_icur", S_, "u32", "MGP", _zero, "idle connections"),
    StatColumn(89, "src_ilim", S_, "u32", "MGP", _none, "idle connections limit"),
    StatColumn(90, "qtime_max", BS, "u32", "MMP", _avg_max("qtime"), "max queue time (ms)"),
    StatColumn(91, "ctime_max", BS, "u32", "MMP", _avg_max("ctime"),
               "max connect time (ms)"),
    StatColumn(92, "rtime_max", BS, "u32", "MMP", _avg_max("rtime"),
               "max response time (ms)"),
    StatColumn(93, "ttime_max", BS, "u32", "MMP", _avg_max("ttime"), "max total time (ms)"),
    StatColumn(94, "eint", FBS, "u64", "MCP", _ctr("eint"), "internal errors"),
    StatColumn(95, "idle_conn_cur", S_, "u32", "MGP", _zero, "unsafe idle connections"),
    StatColumn(96, "safe_conn_cur", S_, "u32", "MGP", _zero, "safe idle connections"),
    StatColumn(97, "used_conn_cur", S_, "u32", "MGP", _zero, "connections in use"),
    StatColumn(98, "need_conn_est", S_, "u32", "MGP", _zero, "estimated needed connections"),
    StatColumn(99, "uweight", BS, "u32", "MaP", _uweight, "user weight"),
    StatColumn(100, "agg_server_status", B_, "u32", "MGP", _zero,
               "aggregated server status"),
    StatColumn(101, "agg_server_check_status", B_, "u32", "MGP", _zero,
               "aggregated check status (deprecated)"),
    StatColumn(102, "agg_check_status", B_, "u32", "MGP", _zero, "aggregated check status"),
    # ---- lb extensions (WebSocket), after HAProxy's stable columns
    StatColumn(103, "ws_upgrade_req", FBS, "u64", "MCP", _ctr("ws_upgrade_req"),
               "WebSocket upgrade requests"),
    StatColumn(104, "ws_upgrade_ok", FBS, "u64", "MCP", _ctr("ws_upgrade_ok"),
               "WebSocket upgrades completed (101)"),
    StatColumn(105, "ws_upgrade_fail", FBS, "u64", "MCP", _ws_fail_total,
               "WebSocket upgrades that failed"),
    StatColumn(106, "ws_tunnels_cur", FBS, "u32", "MGP", _ctr("ws_tunnels_cur"),
               "open WebSocket tunnels"),
    StatColumn(107, "ws_tunnels_max", FBS, "u32", "MMP", _ctr("ws_tunnels_max"),
               "max open WebSocket tunnels"),
    StatColumn(108, "ws_tunnels_tot", FBS, "u64", "MCP", _ctr("ws_tunnels_tot"),
               "cumulated WebSocket tunnels"),
    StatColumn(109, "ws_bytes_in", FBS, "u64", "MCP", _ctr("ws_bytes_in"),
               "tunnel bytes client to server (counted as they flow)"),
    StatColumn(110, "ws_bytes_out", FBS, "u64", "MCP", _ctr("ws_bytes_out"),
               "tunnel bytes server to client (counted as they flow)"),
    StatColumn(111, "ws_frames", FBS, "u64", "MCP", _ws_frames_total,
               "WebSocket frames seen (option ws-frames)"),
)
HAPROXY_COLUMNS = 103  # columns 0..102 are HAProxy 2.6's, in its order
COLUMN_BY_NAME = {c.name: c for c in STAT_COLUMNS}
CSV_HEADER = "# " + ",".join(c.name for c in STAT_COLUMNS) + ","


# ----------------------------------------------------------------- rows


def iter_objects(state: State, now: float, iid: int | str = -1, types: int = ALL,
                 sid: int = -1) -> Iterator[Obj]:
    """Rows in config order: FRONTEND, servers, BACKEND per proxy (HAProxy's order).

    ``iid`` is a proxy id or name (-1 = all), ``types`` a FE|BE|SRV mask, ``sid`` a
    server id (-1 = all) that filters server rows only, as in HAProxy.
    """
    for p in state.config.proxies:
        if p.disabled or iid != -1 and iid not in (p.puid, p.name):
            continue  # (a disabled proxy has no rows, as in HAProxy)
        fe = state.frontends.get(p.name) if p.is_frontend else None
        be = state.backends.get(p.name) if p.is_backend else None
        if fe is not None and types & FE:
            yield Obj(FE, p, fe, state, now)
        if be is not None:
            if types & SRV:
                for s in be.servers:
                    if sid in (-1, s.puid):
                        yield Obj(SRV, p, s, state, now)
            if types & BE:
                yield Obj(BE, p, be, state, now)


def find_proxy(state: State, ref: str) -> Proxy | None:
    """A proxy by name or numeric id (as `show stat` and `show errors` take it)."""
    for p in state.config.proxies:
        if p.name == ref or (ref.isdigit() and p.puid == int(ref)):
            return p
    return None


def row_values(o: Obj) -> list[Any]:
    """The values of one row, None where the column does not apply or is a legend
    the viewer may not see."""
    out: list[Any] = []
    legends = o.legends
    for col in STAT_COLUMNS:
        out.append(col.get(o) if col.objs & o.kind and (legends or col.pos not in
                                                         LEGEND_COLUMNS) else None)
    return out


def _csv_field(v: Any) -> str:
    if v is None:
        return ""
    s = str(v)
    if any(ch in s for ch in ',"\r\n'):
        # HAProxy 2.6 (csv_enc): free text holding a separator is quoted, its own
        # quotes doubled
        s = '"' + s.replace('"', '""') + '"'
    return s


def render_csv(objs: Sequence[Obj]) -> str:
    lines = [CSV_HEADER]
    for o in objs:
        lines.append(",".join(_csv_field(v) for v in row_values(o)) + ",")
    return "\n".join(lines) + "\n"


def _typed_value(col: StatColumn, v: Any) -> str:
    return str(v)


def render_typed(objs: Sequence[Obj], desc: bool = False) -> str:
    """``desc`` appends each column's meaning, quoted (`show stat typed desc`)."""
    lines = []
    for o in objs:
        letter = OBJ_LETTER[o.kind]
        for col, v in zip(STAT_COLUMNS, row_values(o), strict=True):
            if v is None:
                continue
            tags = col.be_tags if (o.kind == BE and col.be_tags) else col.tags
            lines.append(f"{letter}.{o.proxy.puid}.{o.sid}.{col.pos}.{col.name}.1:"
                         f"{tags}:{col.type}:{_typed_value(col, v)}"
                         f"{_desc_suffix(col.desc) if desc else ''}")
    return "".join(line + "\n" for line in lines)


def _json_tags(tags: str) -> dict[str, str]:
    return {"origin": ORIGINS[tags[0]], "nature": NATURES[tags[1]], "scope": SCOPES[tags[2]]}


def _json_value(typ: str, v: Any) -> dict[str, Any]:
    return {"type": typ, "value": v if typ == "str" else int(v)}


def _json_prefix(kind: int, col: StatColumn) -> str:
    """The constant part of one JSON field object, up to the value."""
    tags = col.be_tags if (kind == BE and col.be_tags) else col.tags
    return (',"field":' + json.dumps({"pos": col.pos, "name": col.name}, separators=(",", ":"))
            + ',"processNum":1,"tags":' + json.dumps(_json_tags(tags), separators=(",", ":"))
            + ',"value":{"type":"' + col.type + '","value":')


_JSON_PREFIX = {(k, c.pos): _json_prefix(k, c) for k in (FE, BE, SRV) for c in STAT_COLUMNS}


def render_json(objs: Sequence[Obj]) -> str:
    """HAProxy's `show stat json`: a list per object of field objects (built from
    precomputed constant parts; the output is large and built often)."""
    out = []
    dumps = json.dumps
    for o in objs:
        head = (f'{{"objType":"{OBJ_NAME[o.kind]}","proxyId":{o.proxy.puid},'
                f'"id":{o.sid}')
        fields = []
        for col, v in zip(STAT_COLUMNS, row_values(o), strict=True):
            if v is None:
                continue
            val = dumps(v) if col.type == "str" else str(int(v))
            fields.append(head + _JSON_PREFIX[(o.kind, col.pos)] + val + "}}")
        out.append("[" + ",".join(fields) + "]")
    return "[" + ",".join(out) + "]\n"


def show_stat(state: State, now: float, fmt: str = "csv", iid: int | str = -1,
              types: int = ALL, sid: int = -1, up_only: bool = False,
              no_maint: bool = False, legends: bool = True, desc: bool = False) -> str:
    """``legends``: fill the LEGEND_COLUMNS (False for a `level user` session, or a
    stats page without `stats show-legends`); ``desc``: typed lines carry each
    column's meaning (HAProxy ignores it for CSV and JSON, and so does lb)."""
    objs = []
    for o in iter_objects(state, now, iid, types, sid):
        if o.kind == SRV and up_only and not is_up_row(o.item):
            continue
        if o.kind == SRV and no_maint and o.item.admin & ADMIN_MAINT:
            continue
        o.legends = legends
        o.server_counts = up_only or no_maint
        objs.append(o)
    if fmt == "typed":
        return render_typed(objs, desc)
    if fmt == "json":
        return render_json(objs)
    return render_csv(objs)


def show_stat_resolvers(state: State, fmt: str = "csv", desc: bool = False) -> str:
    """`show stat domain resolvers`: one row per name server (HAProxy 2.6.12's
    columns; its JSON, which lacks the commas between name servers, is made valid)."""
    rows = [(c.name, c.section, [getattr(c, f) for f in NAMES])
            for r in state.config.resolvers for c in state.dns_counters.get(r.name, ())]
    heads = [*ID_COLUMNS, *((name, text) for _, name, text in COUNTERS)]
    if fmt == "csv":
        out = ["# " + "".join(f"{name}," for name, _ in heads)]
        out.extend(",".join([ns, sec, *map(str, values)]) + "," for ns, sec, values in rows)
        return "\n".join(out) + "\n"
    if fmt == "typed":
        out = []
        for ns, sec, values in rows:
            cells = [("CGP", "str", ns), ("CGP", "str", sec),
                     *(("MGP", "u64", v) for v in values)]
            for pos, ((name, text), (tags, kind, value)) in enumerate(zip(heads, cells, strict=True)):
                tail = f':"{text}"' if desc else ""
                out.append(f"N.{pos}.{name}:{tags}:{kind}:{value}{tail}")
        return "".join(line + "\n" for line in out)
    return json.dumps([[
        {"field": {"pos": pos, "name": name},
         "tags": {"origin": "Config" if pos < 2 else "Metric", "nature": "Gauge",
                  "scope": "Process"},
         "value": {"type": "str" if pos < 2 else "u64", "value": value}}
        for pos, ((name, _), value) in enumerate(zip(heads, [ns, sec, *values], strict=True))]
        for ns, sec, values in rows], separators=(",", ":")) + "\n"


def is_up_row(s: ServerState) -> bool:
    return s.status_text().split(" ")[0] in ("UP", "no", "DRAIN", "NOLB")


# ----------------------------------------------------------------- show info


def uptime_text(state: State, now: float) -> str:
    secs = max(int(now - state.start_time), 0)
    d, rem = divmod(secs, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    return f"{d}d {h}h{m:02d}m{s:02d}s"


def _info_rows(state: State, now: float) -> list[tuple[int, str, str, str, Any]]:
    """(pos, key, tags, type, value) in HAProxy 2.6.12's order; absent = skipped."""
    g = state.config.global_
    maxconn = process_maxconn(state)
    soft = g.ulimit_n or resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    uptime_sec = max(int(now - state.start_time), 0)
    tunnels = len(websocket_tunnels(state))
    bytes_out = sum(fe.counters.bout for fe in state.frontends.values())
    listeners = sum(len(p.binds) for p in state.config.proxies if p.is_frontend)
    listeners += len(g.stats_sockets)
    rows: list[tuple[int, str, str, str, Any]] = [
        (0, "Name", "POS", "str", "lb"),
        (1, "Version", "POS", "str", lb.__version__),
        (2, "Release_date", "POS", "str", "2026/11/21"),
        (3, "Nbthread", "CGS", "u32", 1),
        (4, "Nbproc", "CGS", "u32", 1),
        (5, "Process_num", "KGP", "u32", 1),
        (6, "Pid", "SGP", "u32", os.getpid()),
        (7, "Uptime", "MDP", "str", uptime_text(state, now)),
        (8, "Uptime_sec", "MDP", "u32", uptime_sec),
        (9, "Memmax_MB", "CLP", "u32", 0),
        (10, "PoolAlloc_MB", "MGP", "u32", 0),
        (11, "PoolUsed_MB", "MGP", "u32", 0),
        (12, "PoolFailed", "MCP", "u32", 0),
        (13, "Ulimit-n", "CLP", "u32", soft if soft != resource.RLIM_INFINITY else 0),
        (14, "Maxsock", "CLP", "u32", soft if soft != resource.RLIM_INFINITY else 0),
        (15, "Maxconn", "CLP", "u32", maxconn),
        (16, "Hard_maxconn", "CLP", "u32", hard_maxconn(state)),
        (17, "CurrConns", "MGP", "u32", state.curr_conns),
        (18, "CumConns", "MCP", "u32", state.cum_conns),
        (19, "CumReq", "MCP", "u32", state.cum_req),
        (20, "MaxSslConns", "MMP", "u32", 0),
        (21, "CurrSslConns", "MGP", "u32", getattr(state, "curr_ssl_conns", 0)),
        (22, "CumSslConns", "MCP", "u32", getattr(state, "cum_ssl_conns", 0)),
        (23, "Maxpipes", "CLP", "u32", 0),
        (24, "PipesUsed", "MGP", "u32", 0),
        (25, "PipesFree", "MGP", "u32", 0),
        (26, "ConnRate", "MRP", "u32", state.conn_rate.read(now)),
        (27, "ConnRateLimit", "CLP", "u32", 0),
        (28, "MaxConnRate", "MMP", "u32", max(state.conn_rate.max, state.max_conn_rate)),
        (29, "SessRate", "MRP", "u32", state.sess_rate.read(now)),
        (30, "SessRateLimit", "CLP", "u32", 0),
        (31, "MaxSessRate", "MRP", "u32", state.sess_rate.max),
        (32, "SslRate", "MRP", "u32", 0),
        (33, "SslRateLimit", "CLP", "u32", 0),
        (34, "MaxSslRate", "MMP", "u32", 0),
        (35, "SslFrontendKeyRate", "MGP", "u32", 0),
        (36, "SslFrontendMaxKeyRate", "MMP", "u32", 0),
        (37, "SslFrontendSessionReuse_pct", "MGP", "u32", 0),
        (38, "SslBackendKeyRate", "MRP", "u32", 0),
        (39, "SslBackendMaxKeyRate", "MMP", "u32", 0),
        (40, "SslCacheLookups", "MCP", "u32", 0),
        (41, "SslCacheMisses", "MCP", "u32", 0),
        (42, "CompressBpsIn", "MRP", "u32", state.comp_bps_in.read(now)),
        (43, "CompressBpsOut", "MRP", "u32", state.comp_bps_out.read(now)),
        (44, "CompressBpsRateLim", "CLP", "u32", max(g.maxcomprate, 0)),
        (47, "Tasks", "MGP", "u32", len(state.streams) + tunnels),
        (48, "Run_queue", "MGP", "u32", 0),
        (49, "Idle_pct", "MaP", "u32", state.idle.read()),
        (50, "node", "COS", "str", g.node or os.uname().nodename),
    ]
    if g.description:
        rows.append((51, "description", "COS", "str", g.description))
    rows += [
        (52, "Stopping", "MGP", "u32", 1 if state.stopping else 0),
        (53, "Jobs", "MGP", "u32", state.curr_conns + listeners),
        (54, "Unstoppable Jobs", "MGP", "u32", 0),
        (55, "Listeners", "MGP", "u32", listeners),
        (56, "ActivePeers", "MGP", "u32", 0),
        (57, "ConnectedPeers", "MGP", "u32", 0),
        (58, "DroppedLogs", "MGP", "u32", 0),
        (59, "BusyPolling", "MGP", "u32", 1 if state.busy_polling else 0),
        (60, "FailedResolutions", "MGP", "u32", 0),
        (61, "TotalBytesOut", "MGP", "u64", bytes_out),
        (62, "TotalSplicedBytesOut", "MGP", "u64", 0),
        (63, "BytesOutRate", "MRP", "u64", 0),
        (64, "DebugCommandsIssued", "MGP", "u32", 0),
        (65, "CumRecvLogs", "MCP", "u32", 0),
        (66, "Build info", "POS", "str", f"lb {lb.__version__}"),
        (67, "Memmax_bytes", "CLP", "u32", 0),
        (68, "PoolAlloc_bytes", "MGP", "u64", 0),
        (69, "PoolUsed_bytes", "MGP", "u64", 0),
        (70, "Start_time_sec", "MDP", "u32", int(state.start_time)),
        (71, "Tainted", "SGP", "str", "0"),
        # lb extensions
        (72, "CurrWebSocketTunnels", "MGP", "u32", tunnels),
    ]
    return rows


# What each `show info` field means (`show info desc`, in lb's own words).
INFO_DESCRIPTIONS: dict[str, str] = {
    "Name": "product name", "Version": "product version",
    "Release_date": "date of this version", "Nbthread": "threads serving traffic",
    "Nbproc": "worker processes (always 1)", "Process_num": "this worker's number (1)",
    "Pid": "this worker's process id", "Uptime": "time since the worker started",
    "Uptime_sec": "seconds since the worker started",
    "Memmax_MB": "memory limit in MiB (0 = none)", "PoolAlloc_MB": "pooled memory allocated, MiB",
    "PoolUsed_MB": "pooled memory in use, MiB", "PoolFailed": "failed pool allocations",
    "Ulimit-n": "open files limit", "Maxsock": "most sockets the process may hold",
    "Maxconn": "process connection limit", "Hard_maxconn": "connection limit set at start",
    "CurrConns": "client connections open now", "CumConns": "client connections accepted",
    "CumReq": "requests received", "MaxSslConns": "TLS connection limit",
    "CurrSslConns": "TLS connections open now", "CumSslConns": "TLS connections accepted",
    "Maxpipes": "splice pipe limit", "PipesUsed": "splice pipes in use",
    "PipesFree": "splice pipes free", "ConnRate": "connections accepted in the last second",
    "ConnRateLimit": "connection rate limit", "MaxConnRate": "highest connection rate seen",
    "SessRate": "sessions created in the last second", "SessRateLimit": "session rate limit",
    "MaxSessRate": "highest session rate seen", "SslRate": "TLS sessions in the last second",
    "SslRateLimit": "TLS session rate limit", "MaxSslRate": "highest TLS session rate seen",
    "SslFrontendKeyRate": "frontend TLS key computations per second",
    "SslFrontendMaxKeyRate": "highest frontend TLS key rate seen",
    "SslFrontendSessionReuse_pct": "frontend TLS session reuse, percent",
    "SslBackendKeyRate": "backend TLS key computations per second",
    "SslBackendMaxKeyRate": "highest backend TLS key rate seen",
    "SslCacheLookups": "TLS session cache lookups", "SslCacheMisses": "TLS session cache misses",
    "CompressBpsIn": "bytes per second into compression",
    "CompressBpsOut": "bytes per second out of compression",
    "CompressBpsRateLim": "compression rate limit", "Tasks": "live streams and tunnels",
    "Run_queue": "tasks waiting to run", "Idle_pct": "share of time the loop was idle, percent",
    "node": "node name", "description": "node description",
    "Stopping": "1 while the process is stopping", "Jobs": "connections and listeners held",
    "Unstoppable Jobs": "jobs that do not stop on a soft stop",
    "Listeners": "listening sockets", "ActivePeers": "peers configured",
    "ConnectedPeers": "peers connected", "DroppedLogs": "log lines dropped",
    "BusyPolling": "1 when busy polling is on", "FailedResolutions": "failed DNS resolutions",
    "TotalBytesOut": "bytes sent to clients", "TotalSplicedBytesOut": "bytes sent by splicing",
    "BytesOutRate": "bytes per second sent to clients",
    "DebugCommandsIssued": "debug commands run on the CLI",
    "CumRecvLogs": "log lines received", "Build info": "build details",
    "Memmax_bytes": "memory limit in bytes (0 = none)",
    "PoolAlloc_bytes": "pooled memory allocated, bytes",
    "PoolUsed_bytes": "pooled memory in use, bytes",
    "Start_time_sec": "start time, seconds since the epoch",
    "Tainted": "flags of unusual conditions met", "CurrWebSocketTunnels": "WebSocket tunnels open now",
}


def _desc_suffix(desc: str) -> str:
    return ':"' + desc.replace('"', "'") + '"'


def show_info(state: State, now: float, fmt: str = "text", desc: bool = False) -> str:
    """``desc`` appends each field's meaning to typed and text lines (HAProxy's
    `show info desc`); the JSON form has no place for it."""
    rows = _info_rows(state, now)
    if fmt == "typed":
        return "".join(f"{pos}.{key}.1:{tags}:{typ}:{v}"
                       f"{_desc_suffix(INFO_DESCRIPTIONS[key]) if desc else ''}\n"
                       for pos, key, tags, typ, v in rows)
    if fmt == "json":
        return json.dumps([
            {"field": {"pos": pos, "name": key}, "processNum": 1, "tags": _json_tags(tags),
             "value": _json_value(typ, v)} for pos, key, tags, typ, v in rows
        ], separators=(",", ":")) + "\n"
    return "".join(f"{key}: {v}{_desc_suffix(INFO_DESCRIPTIONS[key]) if desc else ''}\n"
                   for _pos, key, _tags, _typ, v in rows)


# ----------------------------------------------------------------- show servers state

SERVERS_STATE_HEADER = (
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
    "srv_iweight srv_time_since_last_change srv_check_status srv_check_result "
    "srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id "
    "srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr "
    "srv_agent_addr srv_agent_port"
)


def op_state(s: ServerState) -> int:
    """HAProxy's srv_op_state: 0 stopped, 1 starting, 2 running, 3 stopping."""
    if s.in_maint:
        return OP_STOPPED
    return s.op


def _check_result(s: ServerState) -> int:
    """0 unknown, 1 neutral, 2 failed, 3 passed, 4 conditionally passed. As in
    HAProxy, a check under way has no result yet."""
    st = s.check_status
    if not s.model.check or s.check_running or st in ("", "INI", "UNK"):
        return 0
    if st == "L7OKC":
        return 4
    return 3 if st in _CHECK_PASSED else 2


def _agent_state(s: ServerState) -> int:
    """HAProxy's check state bits of the agent: configured 0x02, enabled 0x04,
    agent 0x10."""
    if s.agent is None:
        return 0
    return 0x12 | (0x04 if s.agent.enabled else 0)


def server_state_row(s: ServerState, now: float) -> str:
    m = s.model
    status = CHECK_STATUSES.get(s.check_status, (1, ""))[0] if m.check else 1
    check_state = 0x08 if m.disabled else 0  # HAProxy pauses a `disabled` server's check
    if m.check:
        check_state = 0x02 | (0x04 if s.check_enabled else 0) | (0x08 if s.in_maint else 0)
    fields = [
        s.backend.model.puid, s.backend.name, s.puid, s.name,
        "-" if s.no_addr or s.unix_path is not None else s.addr, op_state(s), s.admin,
        s.uweight, s.iweight, max(int(now - s.last_change), 0), status, _check_result(s),
        s.health, check_state, _agent_state(s), int(s.backend.model.forced_id),
        int(bool(m.forced_id)), s.fqdn or "-",
        s.port if s.port is not None else 0,
        m.host if m.resolvers is not None and m.host.startswith("_") else "-",
        s.use_ssl, m.check_port or 0, m.check_addr or "-",
        (s.agent.addr or "-") if s.agent is not None else "-",
        s.agent.port if s.agent is not None else 0,
    ]
    return " ".join(str(f) for f in fields)


def show_servers_state(state: State, now: float, backends: Sequence[BackendState]) -> str:
    lines = ["1", SERVERS_STATE_HEADER]
    for be in backends:
        lines += [server_state_row(s, now) for s in be.servers]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------- WebSockets


def _ws_counters(c: Counters) -> dict[str, Any]:
    return {
        "upgrade_requests": c.ws_upgrade_req,
        "upgrades": c.ws_upgrade_ok,
        "failures": {r: c.ws_fail.get(r, 0) for r in WS_FAIL_REASONS},
        "tunnels_current": c.ws_tunnels_cur,
        "tunnels_max": c.ws_tunnels_max,
        "tunnels_total": c.ws_tunnels_tot,
        "bytes_in": c.ws_bytes_in,
        "bytes_out": c.ws_bytes_out,
        "closes": {r: c.ws_close.get(r, 0) for r in WS_CLOSE_REASONS},
        "close_codes": {str(k): v for k, v in sorted(c.ws_close_codes.items())},
        "frames": dict(c.ws_frames),
    }


def _name_of(x: Any) -> str | None:
    if x is None:
        return None
    if isinstance(x, str):
        return x
    return getattr(x, "name", None) or str(x)


def _attr(obj: Any, *names: str) -> Any:
    for n in names:
        v = getattr(obj, n, None)
        if v not in (None, ""):
            return v
    return None


def tunnel_age(t: Any, now: float) -> float | None:
    """Seconds since the tunnel opened: the data plane stamps ``t_open`` with its
    loop clock; objects may instead carry an epoch ``started``."""
    started = _attr(t, "started", "start_time")
    if started is not None:
        return now - started
    t_open = getattr(t, "t_open", None)
    rt = getattr(t, "rt", None)
    if t_open is not None and rt is not None:
        return rt.loop.time() - t_open
    return None


def _client_of(t: Any) -> str | None:
    client = _attr(t, "client", "src_addr")
    if client is not None:
        return _name_of(client)
    txn = getattr(t, "txn", None)
    if txn is not None and getattr(txn, "src", None):
        return f"{txn.src}:{getattr(txn, 'src_port', 0)}"
    return None


def _age_and_idle(t: Any, now: float) -> tuple[float | None, float | None]:
    """Seconds since the tunnel opened and since its last relayed byte, on one
    clock. A data-plane tunnel stamps both with its loop's monotonic clock, and
    ``last_activity`` is that stamp plus the loop's epoch offset; comparing it with
    the wall clock instead let idle exceed age by the drift between the two."""
    age = tunnel_age(t, now)
    last = _attr(t, "last_activity")
    if last is None:
        return age, None
    rt = getattr(t, "rt", None)
    t_open = getattr(t, "t_open", None)
    if (_attr(t, "started", "start_time") is None and t_open is not None
            and rt is not None):
        loop_now = rt.loop.time()
        age = loop_now - t_open
        return age, min(loop_now - (last - rt.epoch_offset), age)
    return age, now - last


def tunnel_info(tid: int, t: Any, now: float) -> dict[str, Any]:
    """What `show websockets` shows of one live tunnel (attributes read by name:
    lb.proxy.tunnel.Tunnel's, or plain ones for other producers)."""
    age, idle = _age_and_idle(t, now)
    frames = getattr(t, "frames", None)
    return {
        "id": getattr(t, "id", tid) or tid,
        "frontend": _name_of(_attr(t, "frontend", "fe_name")),
        "backend": _name_of(_attr(t, "backend", "be_name")),
        "server": _name_of(_attr(t, "server", "srv_name")),
        "client": _client_of(t),
        "age": round(age, 3) if age is not None else None,
        "idle": round(idle, 3) if idle is not None else None,
        "bytes_in": _attr(t, "bytes_in", "up") or 0,
        "bytes_out": _attr(t, "bytes_out", "down") or 0,
        "frames": dict(frames) if isinstance(frames, dict) and frames else None,
    }


def websocket_tunnels(state: State) -> list[tuple[int, Any]]:
    """Open tunnels that carry WebSocket (TCP-mode relays are left out)."""
    return [(tid, t) for tid, t in sorted(state.tunnels.items())
            if getattr(t, "ws", True) and not getattr(t, "closed", False)]


def websockets_data(state: State, now: float) -> dict[str, Any]:
    tunnels = [tunnel_info(tid, t, now) for tid, t in websocket_tunnels(state)]
    proxies = []
    for p in state.config.proxies:
        entry: dict[str, Any] = {"name": p.name, "id": p.puid}
        fe = state.frontends.get(p.name) if p.is_frontend else None
        be = state.backends.get(p.name) if p.is_backend else None
        if fe is not None:
            entry["frontend"] = _ws_counters(fe.counters)
        if be is not None:
            entry["backend"] = _ws_counters(be.counters)
            entry["servers"] = [dict(name=s.name, id=s.puid, **_ws_counters(s.counters))
                                for s in be.servers]
        proxies.append(entry)
    return {"tunnels": tunnels, "proxies": proxies}


def show_websockets(state: State, now: float, fmt: str = "text") -> str:
    data = websockets_data(state, now)
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    lines = [f"# {len(data['tunnels'])} open WebSocket tunnel(s)",
             "# id frontend backend/server client age idle bytes_in bytes_out"]
    for t in data["tunnels"]:
        lines.append(f"{t['id']} {t['frontend'] or '-'} {t['backend'] or '-'}/"
                     f"{t['server'] or '-'} {t['client'] or '-'} {_secs(t['age'])} "
                     f"{_secs(t['idle'])} {t['bytes_in']} {t['bytes_out']}")
    lines.append("# proxy/server upgrades failures tunnels_cur tunnels_tot bytes_in "
                 "bytes_out")
    for p in data["proxies"]:
        for side in ("frontend", "backend"):
            if side in p:
                lines.append(_ws_line(f"{p['name']}/{side.upper()}", p[side]))
        for s in p.get("servers", ()):
            lines.append(_ws_line(f"{p['name']}/{s['name']}", s))
    return "\n".join(lines) + "\n"


def _secs(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}s"


def _ws_line(label: str, w: dict[str, Any]) -> str:
    return (f"{label} {w['upgrades']} {sum(w['failures'].values())} {w['tunnels_current']} "
            f"{w['tunnels_total']} {w['bytes_in']} {w['bytes_out']}")
