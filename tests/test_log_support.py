"""Support (no tests here): a plain transaction object with exactly the attributes
lb.logfmt / lb.log read (docs/logging.md), used by tests/test_log_*.py and
tools/bench/log_render.py, and ``set_tz``/``utc_clock`` (a fixed TZ for date-exact lines)."""

from __future__ import annotations

import calendar
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lb import log
from lb.match.sample import SampleSubject


def set_tz(tz: str | None) -> None:
    """Set TZ (None: unset it) and forget the log date caches."""
    if tz is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = tz
    time.tzset()
    log.reset_time_caches()


@contextmanager
def utc_clock() -> Iterator[None]:
    """TZ=UTC inside the block, the previous TZ after it (date caches reset both times)."""
    old = os.environ.get("TZ")
    set_tz("UTC")
    try:
        yield
    finally:
        set_tz(old)


def epoch(text: str, ms: int = 0) -> float:
    """'2026-11-21 16:23:40' in UTC -> epoch seconds (+ ms)."""
    return calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M:%S")) + ms / 1000.0


class FakeTxn(SampleSubject):
    """Defaults describe the spec §11 example line; override by keyword."""

    def __init__(self, **kw: Any) -> None:
        ts = epoch("2026-11-21 16:23:40", 573)
        self.client_ip = "127.0.0.1"
        self.client_port = 40142
        self.dst_ip = "127.0.0.1"
        self.dst_port = 8080
        self.accept_ts = ts
        self.request_ts = ts
        self.frontend_name = "f"
        self.frontend_tls = False
        self.backend_name: str | None = "b_api"
        self.server_name: str | None = "s1"
        self.t_idle = 0
        self.t_handshake = 0
        self.t_request = 0
        self.t_queue = 0
        self.t_connect = 0
        self.t_response = 1
        self.t_active = 1
        self.t_total = 1
        self.status = 200
        self.bytes_in = 78
        self.bytes_out = 241
        self.term = b"--"
        self.cookie_req = b"-"
        self.cookie_res = b"-"
        self.actconn = 1
        self.feconn = 1
        self.beconn = 0
        self.srvconn = 0
        self.retries = 0
        self.redispatched = False
        self.srv_queue = 0
        self.backend_queue = 0
        self.request_line: bytes | None = b"GET /api/x HTTP/1.1"
        self.method = b"GET"
        self.url = b"/api/x"
        self.version = b"HTTP/1.1"
        self.unique_id: str | None = None
        self.pid = 4242
        # SampleCtx side (for %[...] expressions)
        self.req_headers: list[tuple[bytes, bytes]] = []
        self.is_response = False
        self.res_headers = None
        self.vars: dict[str, Any] = {}
        self.memo: dict[Any, Any] = {}
        for k, v in kw.items():
            setattr(self, k, v)

    # SampleCtx names for the addresses
    @property
    def src(self) -> str:
        return self.client_ip

    @property
    def src_port(self) -> int:
        return self.client_port

    @property
    def dst(self) -> str:
        return self.dst_ip
