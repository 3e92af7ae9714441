"""Statistics: what the CLI, the stats page and the exporter show.

Owns: the data plane's two entry points, ``serve_http(state, proxy, req)`` (the
`stats uri` page) and ``render_prometheus(state)`` (`use-service
prometheus-exporter`), and the public stats API re-exported from ``lb.stats_core``
(the STAT_COLUMNS table, `show stat` / `show info` / `show servers state` /
`show websockets` renderers). Pure except for reading the clock when the caller
gives no ``now``.

Must not import: lb.proxy, lb.cli, lb.log, healthcheck.
"""

from __future__ import annotations

import time
from typing import Any

from lb import prometheus, stats_html
from lb.config.model import Proxy
from lb.state import State
from lb.stats_core import (
    ALL,
    BE,
    CHECK_STATUSES,
    COLUMN_BY_NAME,
    CSV_HEADER,
    FE,
    HAPROXY_COLUMNS,
    NATURES,
    OBJ_LETTER,
    OBJ_NAME,
    ORIGINS,
    SCOPES,
    SERVERS_STATE_HEADER,
    SRV,
    STAT_COLUMNS,
    TYPE_CODE,
    Obj,
    StatColumn,
    find_proxy,
    hard_maxconn,
    is_up_row,
    iter_objects,
    op_state,
    process_maxconn,
    render_csv,
    render_json,
    render_typed,
    row_values,
    server_state_row,
    show_info,
    show_servers_state,
    show_stat,
    show_stat_resolvers,
    show_websockets,
    tunnel_age,
    tunnel_info,
    uptime_text,
    websocket_tunnels,
    websockets_data,
)

__all__ = [
    "ALL", "BE", "CHECK_STATUSES", "COLUMN_BY_NAME", "CSV_HEADER", "FE", "HAPROXY_COLUMNS",
    "NATURES", "OBJ_LETTER", "OBJ_NAME", "ORIGINS", "SCOPES", "SERVERS_STATE_HEADER", "SRV",
    "STAT_COLUMNS", "TYPE_CODE", "Obj", "StatColumn", "find_proxy", "is_up_row",
    "hard_maxconn", "iter_objects", "op_state", "process_maxconn", "render_csv", "render_json",
    "render_prometheus", "render_typed", "row_values", "serve_http", "server_state_row",
    "show_info", "show_servers_state", "show_stat", "show_stat_resolvers", "show_websockets",
    "tunnel_age",
    "tunnel_info", "uptime_text", "websocket_tunnels", "websockets_data",
]


def serve_http(state: State, proxy: Proxy, req: Any, now: float | None = None,
               allowed: bool = False) -> bytes:
    """A full HTTP/1.1 response for a request under the proxy's `stats uri`.

    ``req`` exposes ``method``/``url`` (bytes), ``req_headers`` (lower-cased names)
    and ``src``; ``allowed``: a `stats http-request allow` rule let it in without
    credentials."""
    return stats_html.serve(state, proxy, req, time.time() if now is None else now,
                            allowed)


def render_prometheus(state: State, now: float | None = None) -> bytes:
    """The Prometheus text exposition of every proxy, server and the process."""
    return prometheus.render(state, time.time() if now is None else now)
