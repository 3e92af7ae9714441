"""Prometheus text exposition (`http-request use-service prometheus-exporter`).

Owns: the METRICS tables mapping HAProxy exporter metric names
(`haproxy_process_*`, `haproxy_frontend_*`, `haproxy_backend_*`,
`haproxy_server_*`) and lb's WebSocket families to stats values, and the text
format (# HELP / # TYPE, labels `proxy` and `server`, label values escaped).
Pure: takes ``now``.

Must not import: lb.proxy, lb.cli, lb.log, healthcheck.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lb import stats_core as stats
from lb.state import WS_CLOSE_REASONS, WS_FAIL_REASONS, Counters, State

# (metric suffix, stats column or callable, type, help)
Metric = tuple[str, Any, str, str]

_COMMON: tuple[Metric, ...] = (
    ("current_sessions", "scur", "gauge", "Number of current sessions."),
    ("max_sessions", "smax", "gauge", "Maximum observed number of active sessions."),
    ("limit_sessions", "slim", "gauge", "Configured session limit."),
    ("sessions_total", "stot", "counter", "Total number of sessions."),
    ("bytes_in_total", "bin", "counter", "Current total of incoming bytes."),
    ("bytes_out_total", "bout", "counter", "Current total of outgoing bytes."),
    ("responses_denied_total", "dresp", "counter", "Total number of denied responses."),
    ("http_requests_total", "req_tot", "counter", "Total number of HTTP requests received."),
    ("internal_errors_total", "eint", "counter", "Total number of internal errors."),
    ("failed_header_rewriting_total", "wrew", "counter",
     "Total number of failed HTTP header rewrites."),
    ("http_comp_bytes_in_total", "comp_in", "counter",
     "Total number of HTTP response bytes fed to the compressor."),
    ("http_comp_bytes_out_total", "comp_out", "counter",
     "Total number of HTTP response bytes emitted by the compressor."),
    ("http_comp_bytes_bypassed_total", "comp_byp", "counter",
     "Total number of bytes that bypassed the HTTP compressor."),
    ("http_comp_responses_total", "comp_rsp", "counter",
     "Total number of HTTP responses that were compressed."),
)
FRONTEND_METRICS: tuple[Metric, ...] = (
    ("status", lambda o: 1 if o.item.status == "OPEN" else 0, "gauge",
     "Current status of the service (1 = OPEN)."),
    *_COMMON,
    ("requests_denied_total", "dreq", "counter", "Total number of denied requests."),
    ("request_errors_total", "ereq", "counter", "Total number of request errors."),
    ("denied_connections_total", "dcon", "counter",
     "Total number of requests denied by tcp-request connection rules."),
    ("denied_sessions_total", "dses", "counter",
     "Total number of requests denied by tcp-request session rules."),
    ("connections_total", "conn_tot", "counter", "Total number of connections."),
    ("intercepted_requests_total", "intercepted", "counter",
     "Total number of intercepted HTTP requests."),
    ("current_session_rate", "rate", "gauge", "Current number of sessions per second."),
    ("max_session_rate", "rate_max", "gauge", "Maximum observed sessions per second."),
    ("http_requests_rate_max", "req_rate_max", "gauge",
     "Maximum observed HTTP requests per second."),
)
BACKEND_METRICS: tuple[Metric, ...] = (
    ("status", lambda o: 1 if o.item.shows_up else 0, "gauge",
     "Current status of the service (1 = UP)."),
    *_COMMON,
    ("current_queue", "qcur", "gauge", "Number of current queued connections."),
    ("max_queue", "qmax", "gauge", "Maximum observed number of queued connections."),
    ("requests_denied_total", "dreq", "counter", "Total number of denied requests."),
    ("connection_errors_total", "econ", "counter", "Total number of connection errors."),
    ("response_errors_total", "eresp", "counter", "Total number of response errors."),
    ("retry_warnings_total", "wretr", "counter", "Total number of retry warnings."),
    ("redispatch_warnings_total", "wredis", "counter",
     "Total number of redispatch warnings."),
    ("client_aborts_total", "cli_abrt", "counter",
     "Total number of data transfers aborted by the client."),
    ("server_aborts_total", "srv_abrt", "counter",
     "Total number of data transfers aborted by the server."),
    ("weight", "weight", "gauge", "Service weight."),
    ("active_servers", "act", "gauge", "Current number of active servers."),
    ("backup_servers", "bck", "gauge", "Current number of backup servers."),
    ("check_up_down_total", "chkdown", "counter",
     "Total number of UP->DOWN transitions."),
    ("downtime_seconds_total", "downtime", "counter",
     "Total downtime (in seconds) for the service."),
    ("loadbalanced_total", "lbtot", "counter",
     "Total number of times a service was selected."),
    ("last_session_seconds", "lastsess", "gauge",
     "Number of seconds since last session assigned to server/backend."),
    ("queue_time_average_seconds", lambda o: o.c.qtime.read(o.c.timed) / 1000, "gauge",
     "Avg. queue time for last 1024 successful connections."),
    ("connect_time_average_seconds", lambda o: o.c.ctime.read(o.c.timed) / 1000, "gauge",
     "Avg. connect time for last 1024 successful connections."),
    ("response_time_average_seconds", lambda o: o.c.rtime.read(o.c.timed) / 1000, "gauge",
     "Avg. response time for last 1024 successful connections."),
    ("total_time_average_seconds", lambda o: o.c.ttime.read(o.c.timed) / 1000, "gauge",
     "Avg. total time for last 1024 successful connections."),
    ("connection_attempts_total", "connect", "counter",
     "Total number of connection establishment attempts."),
    ("connection_reuses_total", "reuse", "counter", "Total number of connection reuses."),
)
_STATE_NAMES = ("DOWN", "UP", "MAINT", "DRAIN", "NOLB")
_CHECK_STATES = tuple(k for k in stats.CHECK_STATUSES if k != "CHECKED")  # (agent only)
SERVER_METRICS: tuple[Metric, ...] = tuple(
    m for m in BACKEND_METRICS
    if m[0] not in ("status", "active_servers", "backup_servers", "limit_sessions")
) + (
    ("limit_sessions", lambda o: o.item.maxconn, "gauge", "Configured session limit."),
    ("check_failures_total", "chkfail", "counter", "Total number of failed checks."),
    ("check_last_change_seconds", "lastchg", "gauge",
     "Number of seconds since the last UP<->DOWN transition."),
    ("check_duration_seconds",
     lambda o: max(o.item.check_duration, 0) / 1000, "gauge",
     "Total duration of the latest server health check, in seconds."),
    ("check_code", lambda o: o.item.check_code, "gauge",
     "layer5-7 code, if available of the last health check."),
    ("current_throttle", lambda o: stats.COLUMN_BY_NAME["throttle"].get(o) or 100, "gauge",
     "Current throttle percentage for the server, when slowstart is active."),
)


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _value(o: stats.Obj, src: Any) -> float | None:
    if callable(src):
        v = src(o)
    else:
        col = stats.COLUMN_BY_NAME[src]
        v = col.get(o) if col.objs & o.kind else None
    if v is None or v == "":
        return None
    return float(v)


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(v)


class _Out:
    __slots__ = ("families", "order")

    def __init__(self) -> None:
        self.families: dict[str, tuple[str, str, list[str]]] = {}
        self.order: list[str] = []

    def add(self, name: str, typ: str, help_: str, labels: dict[str, str], v: float) -> None:
        fam = self.families.get(name)
        if fam is None:
            fam = (typ, help_, [])
            self.families[name] = fam
            self.order.append(name)
        lab = ",".join(f'{k}="{_escape(x)}"' for k, x in labels.items())
        fam[2].append(f"{name}{{{lab}}} {_num(v)}" if lab else f"{name} {_num(v)}")

    def text(self) -> str:
        out = []
        for name in self.order:
            typ, help_, lines = self.families[name]
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {typ}")
            out += lines
        return "\n".join(out) + "\n"


def _ws(out: _Out, prefix: str, labels: dict[str, str], c: Counters) -> None:
    out.add(f"{prefix}_websocket_upgrade_requests_total", "counter",
            "WebSocket upgrade requests seen.", labels, c.ws_upgrade_req)
    out.add(f"{prefix}_websocket_upgrades_total", "counter",
            "WebSocket upgrades completed with a 101.", labels, c.ws_upgrade_ok)
    for reason in WS_FAIL_REASONS:
        out.add(f"{prefix}_websocket_upgrade_failures_total", "counter",
                "WebSocket upgrades that failed, by reason.", {**labels, "reason": reason},
                c.ws_fail.get(reason, 0))
    out.add(f"{prefix}_websocket_tunnels_current", "gauge", "Open WebSocket tunnels.",
            labels, c.ws_tunnels_cur)
    out.add(f"{prefix}_websocket_tunnels_total", "counter", "WebSocket tunnels opened.",
            labels, c.ws_tunnels_tot)
    out.add(f"{prefix}_websocket_tunnel_bytes_in_total", "counter",
            "Tunnel bytes from client to server, counted as they flow.", labels,
            c.ws_bytes_in)
    out.add(f"{prefix}_websocket_tunnel_bytes_out_total", "counter",
            "Tunnel bytes from server to client, counted as they flow.", labels,
            c.ws_bytes_out)
    for reason in WS_CLOSE_REASONS:
        out.add(f"{prefix}_websocket_closes_total", "counter",
                "WebSocket tunnels closed, by reason.", {**labels, "reason": reason},
                c.ws_close.get(reason, 0))


def render(state: State, now: float) -> bytes:
    out = _Out()
    for name, val, typ, help_ in _process_metrics(state, now):
        out.add(f"haproxy_process_{name}", typ, help_, {}, val)
    objs = list(stats.iter_objects(state, now))
    tables: tuple[tuple[int, str, tuple[Metric, ...]], ...] = (
        (stats.FE, "haproxy_frontend", FRONTEND_METRICS),
        (stats.BE, "haproxy_backend", BACKEND_METRICS),
        (stats.SRV, "haproxy_server", SERVER_METRICS),
    )
    for kind, prefix, metrics in tables:
        for o in objs:
            if o.kind != kind:
                continue
            labels = {"proxy": o.proxy.name}
            if kind == stats.SRV:
                labels["server"] = o.item.name
            for suffix, src, typ, help_ in metrics:
                v = _value(o, src)
                if v is not None:
                    out.add(f"{prefix}_{suffix}", typ, help_, labels, v)
            if o.proxy.mode == "http":
                for code in ("1xx", "2xx", "3xx", "4xx", "5xx", "other"):
                    out.add(f"{prefix}_http_responses_total", "counter",
                            "Total number of HTTP responses, by status class.",
                            {**labels, "code": code}, getattr(o.c, f"hrsp_{code}"))
            if kind == stats.SRV and o.item.model.check:
                current = o.item.check_status if o.item.check_enabled else ""
                for st in _CHECK_STATES:
                    out.add("haproxy_server_check_status", "gauge",
                            "Status of last health check (one series per state).",
                            {**labels, "state": st}, 1 if current == st else 0)
            if kind == stats.SRV:
                status = o.item.status_text().split(" ")[0]
                status = "UP" if status == "no" else status
                for st in _STATE_NAMES:
                    out.add("haproxy_server_status", "gauge",
                            "Current status of the server (one series per state).",
                            {**labels, "state": st}, 1 if status == st else 0)
            _ws(out, prefix, labels, o.c)
    return out.text().encode()


def _process_metrics(state: State, now: float) -> list[tuple[str, float, str, str]]:
    return [
        ("nbthread", 1, "gauge", "Number of started threads (global.nbthread)."),
        ("nbproc", 1, "gauge", "Number of started worker processes (historical, always 1)."),
        ("start_time_seconds", int(state.start_time), "gauge", "Start time in seconds."),
        ("max_connections", stats.process_maxconn(state), "gauge",
         "Maximum number of concurrent connections."),
        ("current_connections", state.curr_conns, "gauge",
         "Number of active sessions."),
        ("connections_total", state.cum_conns, "counter",
         "Total number of created sessions."),
        ("requests_total", state.cum_req, "counter", "Total number of requests."),
        ("current_connection_rate", state.conn_rate.read(now), "gauge",
         "Current number of connections per second over last elapsed second."),
        ("max_connection_rate", state.conn_rate.max, "gauge",
         "Maximum observed number of connections per second."),
        ("current_session_rate", state.sess_rate.read(now), "gauge",
         "Current number of sessions per second over last elapsed second."),
        ("max_session_rate", state.sess_rate.max, "gauge",
         "Maximum observed number of sessions per second."),
        ("stopping", 1 if state.stopping else 0, "gauge",
         "Non zero means stopping in progress."),
        ("current_websocket_tunnels", len(stats.websocket_tunnels(state)), "gauge",
         "Open WebSocket tunnels in the process."),
    ]


Render = Callable[[State, float], bytes]
