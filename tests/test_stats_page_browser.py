"""The stats page of a running `lb`, opened in real headless Chromium: what a person
sees (server rows, a DOWN server shown as down, the WebSocket count rising when a
WebSocket opens). Chromium comes from Debian (`make test` installs it through
tools/system_deps.py)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
import urllib.request
from html.parser import HTMLParser

import websockets

from tests.backends import HttpBackend, WsBackend
from tests.lbproc import LbProcess, free_port

CFG = """defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    timeout tunnel 30s

frontend fe
    bind 127.0.0.1:@@fe@@
    stats enable
    stats uri /stats
    stats refresh 2s
    use_backend wsb if { hdr(upgrade) -i websocket }
    default_backend be

backend be
    server s1 127.0.0.1:@@s1@@
    server dead 127.0.0.1:@@dead@@ check inter 200 rise 1 fall 1

backend wsb
    server w1 127.0.0.1:@@w1@@
"""


class Rows(HTMLParser):
    """Collects table rows as (id, class, [cell texts]) plus element texts by id."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, tuple[str, list[str]]] = {}
        self.by_id: dict[str, str] = {}
        self._row: tuple[str, str, list[str]] | None = None
        self._cell: list[str] | None = None
        self._id_stack: list[tuple[str, str, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("id"):
            self._row = (a["id"] or "", a.get("class") or "", [])
        elif tag == "td" and self._row is not None:
            self._cell = []
        if a.get("id") and tag in ("span", "b"):
            self._id_stack.append((tag, a["id"] or "", []))

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row[2].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows[self._row[0]] = (self._row[1], self._row[2])
            self._row = None
        if self._id_stack and self._id_stack[-1][0] == tag:
            _t, ident, text = self._id_stack.pop()
            self.by_id[ident] = "".join(text).strip()

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        for _t, _i, text in self._id_stack:
            text.append(data)


def chromium_dom(url: str) -> Rows:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "Debian chromium is installed by `make test` (tools/system_deps.py)"
    with tempfile.TemporaryDirectory(prefix="lbchrome") as profile:
        out = subprocess.run(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             "--dump-dom", url],
            capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    parser = Rows()
    parser.feed(out.stdout)
    return parser


def test_stats_page_in_chromium() -> None:
    dead_port = free_port()  # nothing listens there: its check fails
    with HttpBackend("s1") as s1, WsBackend("w1") as w1, \
            LbProcess(CFG, ports={"s1": s1.port, "w1": w1.port, "dead": dead_port}) as lb:
        url = f"http://127.0.0.1:{lb.ports['fe']}/stats"
        deadline = time.monotonic() + 15  # `dead` fails its first check and goes DOWN
        while time.monotonic() < deadline:
            with urllib.request.urlopen(url + ";csv", timeout=5) as r:
                csv = r.read().decode()
            row = next(line for line in csv.splitlines() if line.startswith("be,dead,"))
            if row.split(",")[17] == "DOWN":
                break
            time.sleep(0.1)
        page = chromium_dom(url)
        assert {"be/s1", "be/dead", "be/Backend", "fe/Frontend", "wsb/w1"} <= set(page.rows)
        cls, cells = page.rows["be/dead"]
        assert "down" in cls.split() and cells[1].startswith("DOWN")
        cls, cells = page.rows["be/s1"]
        assert "up" in cls.split() and cells[1] == "no check"
        assert page.by_id["ws-count"] == "0"

        async def with_open_websocket() -> Rows:
            async with websockets.connect(f"ws://127.0.0.1:{lb.ports['fe']}/live") as ws:
                await ws.send("whoami")
                assert await asyncio.wait_for(ws.recv(), 5) == "w1"
                return await asyncio.to_thread(chromium_dom, url)

        page = asyncio.run(with_open_websocket())
        assert page.by_id["ws-count"] == "1"
        assert page.by_id["ws-total"] == "1"
        _cls, cells = page.rows["wsb/w1"]
        assert cells[-2] == "1"  # the server's open WebSocket tunnels column
