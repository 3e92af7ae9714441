"""The HTTP stats page (`stats enable` / `stats uri` on a proxy).

Owns: request handling for URIs under the `stats uri` prefix (`;csv`, `;json`,
`;typed`, `;norefresh`, `;up`, `stats auth` / `stats realm` Basic authentication,
`stats admin if <cond>` server actions) and the HTML rendering of frontends, backends, servers (with state colours, check
results, sessions, bytes) and the open WebSocket tunnels. Pure: takes ``now``.

Must not import: lb.proxy, lb.cli, lb.log, healthcheck.
"""

from __future__ import annotations

import base64
import binascii
import html
from typing import Any
from urllib.parse import parse_qsl, quote

import lb
from lb import srvadmin
from lb import stats_core as stats
from lb.config.model import Proxy
from lb.state import State

# Row classes per status word; colours in _CSS follow HAProxy's page conventions
# (green up, red down, blue/brown maintenance, orange transitions).
_STATUS_CLASS = {
    "UP": "up", "no": "up", "OPEN": "up", "DOWN": "down", "MAINT": "maint",
    "DRAIN": "drain", "NOLB": "nolb", "STOP": "down", "FULL": "nolb", "PAUSED": "maint",
}

_CSS = """
body{font-family:Arial,Helvetica,sans-serif;font-size:12px;margin:8px;background:#fff}
h1{font-size:18px;color:#fff;background:#20a040;padding:4px 8px;margin:0 0 8px}
h2{font-size:14px;margin:14px 0 2px}
table{border-collapse:collapse;margin-bottom:6px}
th,td{border:1px solid #999;padding:1px 5px;text-align:right;white-space:nowrap}
th{background:#ddd} td.name{text-align:left;font-weight:bold}
tr.up td{background:#c0ffc0} tr.down td{background:#ff9090} tr.maint td{background:#c0c0ff}
tr.drain td{background:#ffb0e0} tr.nolb td{background:#ffd020} tr.trans td{background:#ffffa0}
tr.fe td,tr.be td{background:#e8e8e8;font-weight:bold}
td.action button{font-size:10px;padding:0 3px;margin:0 1px}
.st{background:#e0f0ff;border:1px solid #80a0c0;padding:3px 6px;display:inline-block}
.legend span{display:inline-block;padding:1px 6px;margin-right:4px;border:1px solid #999}
"""

_SERVER_COLS = ("status", "weight", "scur", "smax", "slim", "stot", "bin", "bout", "econ",
                "eresp", "wretr", "wredis", "lbtot", "check_status", "check_code",
                "check_duration", "lastchg", "downtime", "ws_tunnels_cur", "ws_tunnels_tot")
_HEAD = ("Name", "Status", "Weight", "Cur sess", "Max sess", "Limit", "Total sess",
         "Bytes in", "Bytes out", "Conn errors", "Resp errors", "Retries", "Redisp",
         "LB total", "Check", "Code", "Check ms", "Last chg", "Downtime", "WS tunnels",
         "WS total")


def _row_class(status: str) -> str:
    word = status.split(" ")[0]
    if "/" in status and word in ("UP", "DOWN", "DRAIN", "NOLB"):
        return "trans"
    return _STATUS_CLASS.get(word, "")


def _fmt_secs(v: Any) -> str:
    if v is None or v == "":
        return ""
    s = int(v)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60}m"
    return f"{s // 86400}d{s % 86400 // 3600}h"


def _cells(o: stats.Obj) -> list[str]:
    vals = dict(zip((c.name for c in stats.STAT_COLUMNS), stats.row_values(o), strict=True))
    out = []
    for name in _SERVER_COLS:
        v = vals.get(name)
        if name in ("lastchg", "downtime"):
            out.append(_fmt_secs(v))
        else:
            out.append("" if v is None else str(v))
    return out


def render_page(state: State, proxy: Proxy, now: float, *, refresh: float | None,
                uri: str, up_only: bool = False, admin: bool = False,
                status_msg: str = "") -> str:
    page = proxy.stats
    hide_version = page.hide_version if page is not None else False
    scope = set(page.scope) if page is not None and page.scope else None
    title = "Statistics Report for lb" + ("" if hide_version else f" {lb.__version__}")
    parts = ["<!DOCTYPE html>", "<html><head><meta charset=\"utf-8\">",
             f"<title>{html.escape(title)}</title>"]
    if refresh:
        parts.append(f'<meta http-equiv="refresh" content="{int(refresh)}">')
    parts.append(f"<style>{_CSS}</style></head><body>")
    parts.append(f"<h1>{html.escape(title)}</h1>")
    uptime = stats.uptime_text(state, now)
    parts.append(f'<p id="info">uptime = {uptime}; current conns = {state.curr_conns}; '
                 f'open WebSocket tunnels = <b id="ws-total">{len(stats.websocket_tunnels(state))}</b>; '
                 f'<a href="{html.escape(uri)};csv">CSV export</a>'
                 + ("" if not refresh else
                    f'; <a href="{html.escape(uri)};norefresh">disable refresh</a>')
                 + "</p>")
    if status_msg:
        parts.append(f'<p id="st" class="st">{html.escape(status_msg)}</p>')
    parts.append('<p class="legend"><span class="up" style="background:#c0ffc0">UP</span>'
                 '<span style="background:#ff9090">DOWN</span>'
                 '<span style="background:#ffb0e0">DRAIN</span>'
                 '<span style="background:#c0c0ff">MAINT</span>'
                 '<span style="background:#ffffa0">transitioning</span></p>')
    heads = _HEAD + (("Action",) if admin else ())
    header = "<tr>" + "".join(f"<th>{h}</th>" for h in heads) + "</tr>"
    current = None
    rows: list[str] = []
    for o in stats.iter_objects(state, now):
        if scope is not None and o.proxy.name not in scope:
            continue
        if o.proxy is not current:
            if rows:
                rows.append("</table>")
            current = o.proxy
            rows.append(f'<h2 id="px-{html.escape(o.proxy.name)}">{html.escape(o.proxy.name)}'
                        f' <small>({o.proxy.kind}, mode {o.proxy.mode})</small></h2>')
            rows.append(f'<table class="px" data-proxy="{html.escape(o.proxy.name)}">{header}')
        name = {stats.FE: "Frontend", stats.BE: "Backend"}.get(o.kind) or o.item.name
        cells = _cells(o)
        status = cells[0]
        if o.kind == stats.SRV and up_only and not stats.is_up_row(o.item):
            continue
        cls = {stats.FE: "fe", stats.BE: "be"}.get(o.kind, "")
        row_cls = f"{cls} {_row_class(status)}".strip()
        check = o.item.check_desc if o.kind == stats.SRV and o.item.check_desc else ""
        rid = f"{o.proxy.name}/{name}"
        rows.append(
            f'<tr class="{row_cls}" id="{html.escape(rid)}" data-status="{html.escape(status)}"'
            f' title="{html.escape(check)}"><td class="name">{html.escape(name)}</td>'
            + "".join(f"<td>{html.escape(c)}</td>" for c in cells)
            + (_admin_cell(uri, o) if admin else "") + "</tr>")
    if rows:
        rows.append("</table>")
    parts += rows
    parts.append(_tunnels_table(state, now))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _admin_cell(uri: str, o: stats.Obj) -> str:
    if o.kind != stats.SRV:
        return "<td></td>"
    sep = "&" if "?" in uri else "?"
    forms = []
    for action in _ADMIN_BUTTONS:
        target = (f"{uri}{sep}b={quote(o.proxy.name)}&s={quote(o.item.name)}"
                  f"&action={action}")
        forms.append(f'<form method="post" action="{html.escape(target)}" '
                     f'style="display:inline"><button name="a" value="{action}">{action}'
                     "</button></form>")
    return '<td class="action">' + "".join(forms) + "</td>"


def _tunnels_table(state: State, now: float) -> str:
    data = stats.websockets_data(state, now)["tunnels"]
    out = [f'<h2 id="websockets">Open WebSocket tunnels: <span id="ws-count">{len(data)}'
           "</span></h2>", '<table id="ws-tunnels"><tr><th>Id</th><th>Frontend</th>'
           "<th>Backend</th><th>Server</th><th>Client</th><th>Age</th><th>Idle</th>"
           "<th>Bytes in</th><th>Bytes out</th></tr>"]
    for t in data:
        cells = [t["id"], t["frontend"], t["backend"], t["server"], t["client"],
                 _fmt_secs(t["age"]), _fmt_secs(t["idle"]), t["bytes_in"], t["bytes_out"]]
        out.append("<tr>" + "".join(f"<td>{html.escape(str(c if c is not None else '-'))}"
                                    "</td>" for c in cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


# ----------------------------------------------------------------- HTTP


def _response(status: str, ctype: str, body: bytes, extra: list[tuple[str, str]] = ()
              ) -> bytes:  # type: ignore[assignment]
    head = [f"HTTP/1.1 {status}", f"content-type: {ctype}", f"content-length: {len(body)}",
            "cache-control: no-cache"]
    head += [f"{k}: {v}" for k, v in extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def _authorized(page: Any, headers: list[tuple[bytes, bytes]]) -> bool:
    if not page.auth:
        return True
    for name, value in headers:
        if name.lower() != b"authorization":
            continue
        scheme, _, cred = value.strip().partition(b" ")
        if scheme.lower() != b"basic":
            continue
        try:
            user, _, pwd = base64.b64decode(cred.strip(), validate=True).decode(
                "utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return (user, pwd) in page.auth
    return False


# stats-page actions (HAProxy's names) -> what they do to the server
_ADMIN_BUTTONS = ("drain", "ready", "maint")
_ADMIN_ACTIONS = {
    "ready": ("state", "ready"), "drain": ("state", "drain"), "maint": ("state", "maint"),
    "dhlth": ("check", False), "ehlth": ("check", True),
    "hrunn": ("health", "up"), "hnolb": ("health", "stopping"), "hdown": ("health", "down"),
    "shutdown": ("kill", None),
}
_ST_MESSAGES = {
    "DONE": "Action processed successfully.",
    "NONE": "Nothing has changed.",
    "PART": "Action not processed for some servers.",
    "ERRP": "Action not processed: invalid parameters.",
    "EXCD": "Action not processed: the buffer could not contain all the data.",
    "DENY": "Action denied.",
}


def _admin_allowed(page: Any, req: Any) -> bool:
    cond = page.admin_cond
    if cond is None:
        return False
    try:
        return bool(cond.evaluate(req))
    except Exception:
        return False


def _admin_post(state: State, url: str, now: float) -> str:
    """Apply a stats-page action given in the query string; returns the `st=` code."""
    query = url.split("?", 1)[1] if "?" in url else ""
    params = parse_qsl(query, keep_blank_values=True)
    action = next((v for k, v in params if k == "action"), "")
    bname = next((v for k, v in params if k == "b"), "")
    names = [v for k, v in params if k == "s"]
    what = _ADMIN_ACTIONS.get(action)
    be = state.backend(bname) if bname else None
    if what is None or be is None or not names:
        return "ERRP"
    done = missing = 0
    for name in names:
        srv = be.server(name)
        if srv is None:
            missing += 1
            continue
        kind, arg = what
        if kind == "state":
            for level, text in srvadmin.change_admin(srv, str(arg), now):
                state.emit("admin_log", {"backend": be, "server": srv, "level": level,
                                         "text": text})
        elif kind == "check":
            if arg and not srv.model.check:
                missing += 1
                continue
            srv.check_enabled = bool(arg)
        elif kind == "health":
            for level, text in srvadmin.force_health(srv, str(arg), now):
                state.emit("admin_log", {"backend": be, "server": srv, "level": level,
                                         "text": text})
        else:
            for st in list(srv.streams):
                st.kill(b"K")
        done += 1
    if not done:
        return "NONE"
    return "PART" if missing else "DONE"


def serve(state: State, proxy: Proxy, req: Any, now: float, allowed: bool = False) -> bytes:
    page = proxy.stats
    if page is None:
        return _response("404 Not Found", "text/plain", b"no stats on this proxy\n")
    if not allowed and not _authorized(page, list(getattr(req, "req_headers", ()) or ())):
        body = (b"<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and "
                b"password to access this content.\n</body></html>\n")
        realm = page.realm.replace('"', "'")
        return _response("401 Unauthorized", "text/html", body,
                         [("www-authenticate", f'Basic realm="{realm}"'),
                          ("connection", "close")])
    url = bytes(req.url).decode("latin-1")
    path = url.split("?", 1)[0] if not page.uri.count("?") else url
    mods = set(path.split(";")[1:])
    base = page.uri
    admin = _admin_allowed(page, req)
    if bytes(getattr(req, "method", b"GET")) == b"POST":
        code = _admin_post(state, url, now) if admin else "DENY"
        return _response("303 See Other", "text/plain", b"",
                         [("location", f"{base};st={code}")])
    if "csv" in mods:
        body = stats.show_stat(state, now, "csv", up_only="up" in mods,
                                 legends=page.show_legends).encode()
        return _response("200 OK", "text/plain", body)
    if "json" in mods:
        body = stats.show_stat(state, now, "json", up_only="up" in mods,
                                 legends=page.show_legends).encode()
        return _response("200 OK", "application/json", body)
    if "typed" in mods:
        body = stats.show_stat(state, now, "typed", up_only="up" in mods,
                                 legends=page.show_legends).encode()
        return _response("200 OK", "text/plain", body)
    refresh = None if "norefresh" in mods else page.refresh
    st_code = next((m[3:] for m in mods if m.startswith("st=")), "")
    body = render_page(state, proxy, now, refresh=refresh, uri=base, up_only="up" in mods,
                       admin=admin, status_msg=_ST_MESSAGES.get(st_code, "")).encode()
    return _response("200 OK", "text/html; charset=utf-8", body)
