"""Pure rendering tests for lb.stats, lb.stats_html and lb.prometheus (no I/O)."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import pytest

from lb import prometheus, stats
from lb.config.model import StatsPage
from lb.state import ADMIN_FDRAIN, ADMIN_FMAINT, OP_STOPPED
from tests.stats_support import csv_rows, make_state

NOW = 1_000_100.0

# checked against HAProxy 2.6.12 (Debian 2.6.12-1+deb12u4): `show stat` header on a
# unix stats socket, up to agg_check_status. HAProxy then prints a literal `-` column
# followed by its module counters (ssl_sess, h2_*, h1_*), which lb does not emit; lb
# appends its ws_* columns instead.
HAPROXY_26_HEADER = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,"
    "wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,"
    "sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,"
    "check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,"
    "req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,"
    "lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,"
    "agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,"
    "agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,"
    "intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,"
    "qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,"
    "used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,"
    "agg_check_status,-,ssl_sess"
)
# Rows HAProxy 2.6.12 printed for `frontend fe` + `backend be` with s1 (weight 3, no
# check) and s2 (check, DOWN): used to compare which fields are empty per row type.
HAPROXY_FE_ROW = ("fe,FRONTEND,,,0,0,9985,0,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,0,,,,"
                  "0,0,0,0,0,0,,0,0,0,,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,http,,0,0,0,0,0,0,0,,,0,0,"
                  ",,,,,,0,,,,,,,,,")
HAPROXY_S1_ROW = ("be,s1,0,0,0,0,,0,0,0,,0,,0,0,0,0,no check,3,1,0,,,1,,,1,3,1,,0,,2,0,,0,,,,"
                  "0,0,0,0,0,0,,,,0,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,127.0.0.1:19001,,http,,,,"
                  ",,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,0,3,,,,")
HAPROXY_BE_ROW = ("be,BACKEND,0,0,0,0,999,0,0,0,0,0,,0,0,0,0,UP,3,1,0,,0,1,0,,1,3,0,,0,,1,0,,"
                  "0,,,,0,0,0,0,0,0,,,,0,0,0,0,0,0,0,-1,,,0,0,0,0,,,,,,,,,,,,,,http,roundrobin,"
                  ",,,,,,0,0,0,0,0,,,0,0,0,0,0,,,,,3,0,0,0,")


def _empties(row: str) -> list[bool]:
    return [f == "" for f in row.split(",")[:stats.HAPROXY_COLUMNS]]


def test_header_matches_haproxy_26_up_to_agg_check_status() -> None:
    ours = stats.CSV_HEADER.split(",")[:stats.HAPROXY_COLUMNS]
    theirs = HAPROXY_26_HEADER.split(",")[:stats.HAPROXY_COLUMNS]
    assert ours == theirs
    assert theirs[-1] == "agg_check_status" and HAPROXY_26_HEADER.split(",")[103] == "-"
    assert [c.pos for c in stats.STAT_COLUMNS] == list(range(len(stats.STAT_COLUMNS)))
    assert all(c.name.startswith("ws_") for c in stats.STAT_COLUMNS[103:])


def test_every_column_has_renderer_tags_and_type() -> None:
    for c in stats.STAT_COLUMNS:
        assert callable(c.get) and c.desc
        assert c.type in ("u32", "u64", "s32", "str")
        assert c.tags[0] in stats.ORIGINS and c.tags[1] in stats.NATURES
        assert c.tags[2] in stats.SCOPES


def test_csv_rows_in_config_order_with_trailing_comma() -> None:
    st = make_state()
    out = stats.show_stat(st, NOW)
    lines = out.split("\n")
    assert lines[0] == stats.CSV_HEADER and out.endswith("\n")
    rows = [line for line in lines[1:] if line]
    assert [r.split(",")[:2] for r in rows] == [
        ["fe", "FRONTEND"], ["be", "s1"], ["be", "s2"], ["be", "b1"], ["be", "BACKEND"],
        ["ws", "FRONTEND"], ["ws", "w1"], ["ws", "BACKEND"]]
    ncols = len(stats.STAT_COLUMNS)
    for r in rows:
        assert r.endswith(",") and len(r.split(",")) == ncols + 1


def test_empty_fields_match_haproxy_for_frontend_server_backend() -> None:
    st = make_state()
    rows = {tuple(r.split(",")[:2]): r for r in stats.show_stat(st, NOW).splitlines()[1:]}
    assert _empties(rows[("fe", "FRONTEND")]) == _empties(HAPROXY_FE_ROW)
    assert _empties(rows[("be", "s1")]) == _empties(HAPROXY_S1_ROW)
    ours_be = _empties(rows[("be", "BACKEND")])
    theirs_be = _empties(HAPROXY_BE_ROW)
    # our backend has a cookie configured (column 74), HAProxy's test backend had none
    ours_be[74] = theirs_be[74]
    assert ours_be == theirs_be
    s1 = rows[("be", "s1")].split(",")
    assert s1[17] == "no check" and s1[18] == "3" and s1[32] == "2" and s1[73] == "127.0.0.1:19001"


def test_server_state_strings_and_weights() -> None:
    st = make_state()
    be = st.backends["be"]
    s1, s2 = be.servers[0], be.servers[1]
    s1.set_admin(ADMIN_FMAINT, True, NOW)
    s2.set_admin(ADMIN_FDRAIN, True, NOW)
    rows = {tuple(r.split(",")[:2]): r.split(",") for r in stats.show_stat(st, NOW).splitlines()[1:]}
    assert rows[("be", "s1")][17] == "MAINT"
    assert rows[("be", "s2")][17].startswith("DRAIN")
    assert rows[("be", "BACKEND")][17] == "UP"  # the backup still serves
    s2.health = 0  # as the health checker marks it down
    s2.check_status, s2.check_info, s2.check_duration = "L4CON", "Connection refused", 0
    s2.set_operational(OP_STOPPED, NOW)
    rows = {tuple(r.split(",")[:2]): r.split(",") for r in stats.show_stat(st, NOW).splitlines()[1:]}
    s2r = rows[("be", "s2")]
    assert s2r[17] == "DOWN" and s2r[36] == "L4CON" and s2r[38] == "0"
    assert s2r[56] == "Connection refused" and s2r[65] == "Layer4 connection problem"


def test_counters_render_in_their_columns() -> None:
    st = make_state()
    c = st.backends["be"].servers[0].counters
    c.session_start(NOW - 100)
    c.bin, c.bout = 123, 4567
    c.count_status(200)
    c.count_status(503)
    c.add_timings(0, 2, 10, 30)
    c.tunnel_open()
    c.ws_bytes_in = 99
    row = next(r.split(",") for r in stats.show_stat(st, NOW).splitlines() if r.startswith("be,s1,"))
    names = [col.name for col in stats.STAT_COLUMNS]
    v = dict(zip(names, row, strict=False))
    assert (v["scur"], v["stot"], v["bin"], v["bout"]) == ("1", "1", "123", "4567")
    assert (v["hrsp_2xx"], v["hrsp_5xx"], v["ttime"], v["ctime"]) == ("1", "1", "30", "2")
    assert (v["ws_tunnels_cur"], v["ws_upgrade_ok"], v["ws_bytes_in"]) == ("1", "1", "99")
    assert v["lastsess"] == "100"


def test_filtered_show_stat() -> None:
    st = make_state()
    out = stats.show_stat(st, NOW, iid=3, types=stats.SRV, sid=2)
    assert [r.split(",")[1] for r in out.splitlines()[1:]] == ["s2"]
    out = stats.show_stat(st, NOW, iid=4, types=stats.FE | stats.BE)
    assert [r.split(",")[1] for r in out.splitlines()[1:]] == ["FRONTEND", "BACKEND"]


def test_typed_and_json_forms() -> None:
    st = make_state()
    typed = stats.show_stat(st, NOW, "typed").splitlines()
    assert typed[0] == "F.2.0.0.pxname.1:KNS:str:fe"
    assert "S.3.2.17.status.1:SGP:str:UP 1/3" in typed or any(
        t.startswith("S.3.2.17.status.1:SGP:str:") for t in typed)
    assert "B.3.0.19.act.1:MGP:u32:2" in typed
    assert "S.3.1.19.act.1:SGP:u32:1" in typed
    assert not any(".2.qcur." in t for t in typed if t.startswith("F."))  # empty = absent
    data = json.loads(stats.show_stat(st, NOW, "json"))
    assert isinstance(data, list) and isinstance(data[0], list)
    first = data[0][0]
    assert first == {"objType": "Frontend", "proxyId": 2, "id": 0,
                     "field": {"pos": 0, "name": "pxname"}, "processNum": 1,
                     "tags": {"origin": "Key", "nature": "Name", "scope": "Service"},
                     "value": {"type": "str", "value": "fe"}}


def test_show_info_forms() -> None:
    st = make_state()
    st.curr_conns, st.cum_conns = 3, 10
    text = stats.show_info(st, NOW)
    keys = [line.split(": ", 1)[0] for line in text.splitlines()]
    assert keys[:9] == ["Name", "Version", "Release_date", "Nbthread", "Nbproc",
                        "Process_num", "Pid", "Uptime", "Uptime_sec"]
    for k in ("Maxconn", "CurrConns", "CumConns", "CumReq", "ConnRate", "SessRate",
              "Stopping", "Jobs", "Listeners", "Start_time_sec"):
        assert k in keys
    info = dict(line.split(": ", 1) for line in text.splitlines())
    assert info["Name"] == "lb" and info["Uptime"] == "0d 0h01m40s"
    assert info["Uptime_sec"] == "100" and info["CurrConns"] == "3" and info["Maxconn"] == "2000"
    typed = stats.show_info(st, NOW, "typed").splitlines()
    assert typed[0] == "0.Name.1:POS:str:lb"
    js = json.loads(stats.show_info(st, NOW, "json"))
    assert js[8]["field"] == {"pos": 8, "name": "Uptime_sec"} and js[8]["value"]["value"] == 100


def test_servers_state_format() -> None:
    st = make_state()
    s2 = st.backends["be"].servers[1]
    s2.health, s2.check_status, s2.op = 0, "L4CON", OP_STOPPED  # as a failed check leaves it
    s2.set_admin(ADMIN_FDRAIN, True, NOW - 5)
    out = stats.show_servers_state(st, NOW, list(st.backends.values())).splitlines()
    assert out[0] == "1" and out[1] == stats.SERVERS_STATE_HEADER
    assert out[2] == "3 be 1 s1 127.0.0.1 2 0 3 3 100 1 0 2 0 0 0 0 - 19001 - 0 0 - - 0"
    assert out[3] == "3 be 2 s2 127.0.0.1 0 8 1 1 5 8 2 0 6 0 0 0 - 19002 - 0 0 - - 0"


def test_show_websockets_json_lists_tunnels_and_counters() -> None:
    st = make_state()
    tun = SimpleNamespace(id=7, frontend="ws", backend="ws", server="w1",
                          client="127.0.0.1:5555", started=NOW - 12, last_activity=NOW - 2,
                          bytes_in=10, bytes_out=20, frames={"text": 3})
    st.tunnels[7] = tun
    st.backends["ws"].servers[0].counters.tunnel_open()
    data = json.loads(stats.show_websockets(st, NOW, "json"))
    assert data["tunnels"] == [{"id": 7, "frontend": "ws", "backend": "ws", "server": "w1",
                                "client": "127.0.0.1:5555", "age": 12.0, "idle": 2.0,
                                "bytes_in": 10, "bytes_out": 20, "frames": {"text": 3}}]
    ws = next(p for p in data["proxies"] if p["name"] == "ws")
    assert ws["servers"][0]["tunnels_current"] == 1
    assert "no_key" in ws["backend"]["failures"] and "client_fin" in ws["backend"]["closes"]
    text = stats.show_websockets(st, NOW)
    assert "7 ws ws/w1 127.0.0.1:5555 12.0s 2.0s 10 20" in text


def test_websocket_idle_and_age_are_read_on_the_loop_clock() -> None:
    """A data-plane tunnel stamps its opening and its last bytes with the loop's
    monotonic clock; the wall clock may have drifted from it since start-up (a CI
    run once showed idle 1.202 s for a tunnel aged 1.201 s). Both figures come
    from the loop clock, and idle is never more than age."""
    loop_now = 1000.0
    rt = SimpleNamespace(loop=SimpleNamespace(time=lambda: loop_now),
                         epoch_offset=NOW - loop_now - 0.004)  # wall clock 4 ms ahead
    quiet = SimpleNamespace(id=1, t_open=loop_now - 1.2, rt=rt,
                            last_activity=loop_now - 1.2 + rt.epoch_offset)
    busy = SimpleNamespace(id=2, t_open=loop_now - 10, rt=rt,
                           last_activity=loop_now - 0.25 + rt.epoch_offset)
    q = stats.tunnel_info(1, quiet, NOW)
    assert q["age"] == 1.2 and q["idle"] == 1.2  # the wall clock would say 1.204
    b = stats.tunnel_info(2, busy, NOW)
    assert b["age"] == 10.0 and b["idle"] == 0.25


def test_prometheus_exposition() -> None:
    st = make_state()
    st.backends["be"].servers[0].counters.bin = 42
    st.backends["be"].servers[1].set_admin(ADMIN_FMAINT, True, NOW)
    st.frontends["fe"].counters.ws_fail["no_key"] = 2
    text = prometheus.render(st, NOW).decode()
    lines = text.splitlines()
    assert 'haproxy_server_bytes_in_total{proxy="be",server="s1"} 42' in lines
    assert 'haproxy_server_status{proxy="be",server="s2",state="MAINT"} 1' in lines
    assert 'haproxy_frontend_websocket_upgrade_failures_total{proxy="fe",reason="no_key"} 2' in lines
    assert "# TYPE haproxy_backend_websocket_tunnels_current gauge" in lines
    assert "haproxy_process_nbthread 1" in lines
    assert 'haproxy_backend_http_responses_total{proxy="be",code="2xx"} 0' in lines
    assert 'haproxy_server_check_status{proxy="be",server="s2",state="INI"} 1' in lines
    assert not any('server="s1",state="INI"' in line for line in lines)  # s1: no check
    # every family: one HELP then one TYPE, and samples only after them
    seen = set()
    for i, line in enumerate(lines):
        if line.startswith("# HELP "):
            name = line.split()[2]
            assert name not in seen and lines[i + 1].startswith(f"# TYPE {name} ")
            seen.add(name)
        elif not line.startswith("#"):
            assert line.split("{")[0].split(" ")[0] in seen


class _Req:
    def __init__(self, url: bytes, headers: list[tuple[bytes, bytes]] = ()) -> None:  # type: ignore[assignment]
        self.method = b"GET"
        self.url = url
        self.req_headers = list(headers)
        self.src = "127.0.0.1"


def test_stats_page_auth_csv_and_refresh() -> None:
    page = StatsPage(uri="/st", realm="Ops Realm", auth=(("ops", "s3cret"),), refresh=7)
    st = make_state(stats_page=page)
    fe = st.config.proxies[0]
    denied = stats.serve_http(st, fe, _Req(b"/st"), NOW)
    assert denied.startswith(b"HTTP/1.1 401 ")
    assert b'www-authenticate: Basic realm="Ops Realm"' in denied
    bad = stats.serve_http(st, fe, _Req(b"/st", [(b"authorization", b"Basic !!")]), NOW)
    assert bad.startswith(b"HTTP/1.1 401 ")
    auth = [(b"authorization", b"Basic " + base64.b64encode(b"ops:s3cret"))]
    ok = stats.serve_http(st, fe, _Req(b"/st", auth), NOW)
    head, body = ok.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK") and f"content-length: {len(body)}".encode() in head
    assert b'<meta http-equiv="refresh" content="7">' in body
    assert b'id="be/s1"' in body and b'id="ws-count">0<' in body
    nore = stats.serve_http(st, fe, _Req(b"/st;norefresh", auth), NOW)
    assert b"http-equiv" not in nore
    csv = stats.serve_http(st, fe, _Req(b"/st;csv", auth), NOW).split(b"\r\n\r\n", 1)[1]
    assert csv.decode().splitlines()[0] == stats.CSV_HEADER


class _Cond:
    def __init__(self, ok: bool) -> None:
        self.ok = ok

    def evaluate(self, ctx: object) -> bool:
        return self.ok


def test_stats_admin_actions() -> None:
    page = StatsPage(uri="/st", admin_cond=_Cond(True))
    st = make_state(stats_page=page)
    events: list[tuple[str, dict[str, object]]] = []
    st.listeners.append(lambda ev, info: events.append((ev, info)))
    fe = st.config.proxies[0]
    html_page = stats.serve_http(st, fe, _Req(b"/st"), NOW).decode()
    assert 'action="/st?b=be&amp;s=s1&amp;action=drain"' in html_page
    post = _Req(b"/st?b=be&s=s1&action=drain")
    post.method = b"POST"
    out = stats.serve_http(st, fe, post, NOW)
    assert out.startswith(b"HTTP/1.1 303 ") and b"location: /st;st=DONE\r\n" in out
    s1 = st.backends["be"].servers[0]
    assert s1.in_drain
    assert ("admin_log", "Server be/s1 enters drain state. 1 active and 1 backup servers "
            "online. 0 sessions requeued, 0 total in queue.") in [
        (e, i.get("text")) for e, i in events]
    done = stats.serve_http(st, fe, _Req(b"/st;st=DONE"), NOW).decode()
    assert "Action processed successfully." in done
    for url, code in ((b"/st?b=be&s=zz&action=ready", b"NONE"),
                      (b"/st?b=be&s=s1&action=bogus", b"ERRP"),
                      (b"/st?b=nope&s=s1&action=ready", b"ERRP")):
        post = _Req(url)
        post.method = b"POST"
        assert b"location: /st;st=" + code + b"\r\n" in stats.serve_http(st, fe, post, NOW)
    post = _Req(b"/st?b=be&s=s1&s=s2&action=maint")
    post.method = b"POST"
    assert b"st=DONE" in stats.serve_http(st, fe, post, NOW)
    assert s1.in_maint and st.backends["be"].servers[1].in_maint
    # without the admin condition the same POST is refused and changes nothing
    page2 = StatsPage(uri="/st", admin_cond=_Cond(False))
    st2 = make_state(stats_page=page2)
    post = _Req(b"/st?b=be&s=s1&action=maint")
    post.method = b"POST"
    out = stats.serve_http(st2, st2.config.proxies[0], post, NOW)
    assert b"location: /st;st=DENY" in out and not st2.backends["be"].servers[0].admin
    assert b"<form" not in stats.serve_http(st2, st2.config.proxies[0], _Req(b"/st"), NOW)


@pytest.mark.parametrize("show_legends", [False, True])
def test_stats_page_shows_addresses_and_algorithms_only_with_show_legends(
        show_legends: bool) -> None:
    """HAProxy 2.6.12 fills addr, cookie and algo on a stats page only with `stats
    show-legends` (lb used to fill them always)."""
    st = make_state(stats_page=StatsPage(uri="/st", show_legends=show_legends))
    fe = st.config.proxies[0]
    for fmt in (b"csv", b"typed", b"json"):
        body = stats.serve_http(st, fe, _Req(b"/st;" + fmt), NOW).split(b"\r\n\r\n", 1)[1]
        assert (b"127.0.0.1:" in body) is show_legends, fmt
        assert (b"roundrobin" in body) is show_legends, fmt
    rows = csv_rows(stats.serve_http(st, fe, _Req(b"/st;csv"), NOW)
                     .split(b"\r\n\r\n", 1)[1].decode())
    assert (rows[("be", "s1")]["addr"] != "") is show_legends
    assert (rows[("be", "BACKEND")]["algo"] == "roundrobin") is show_legends
    assert rows[("be", "s1")]["status"]  # the other columns are there either way
