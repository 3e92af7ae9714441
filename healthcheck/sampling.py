"""What a health check's log-format strings read.

Owns: ``CheckSample``, the sample context of one check run (HAProxy builds its
check formats with the check's session and no stream: the server and its backend,
the process's variables and the run's own `check.` ones; no client, no request,
no response), the ``%``-variables a check format renders (``CHECK_VARIABLES``:
backend, server, its address and port, the check connection's own, HAProxy's
`CHECKS-FE` frontend, host name, pid, the run's dates and times, and the
placeholders HAProxy prints without a stream: `<BADREQ>`, `PR`, -1, 0), and
``compile_check_format``.

The backends and frontends a fetch may name (`nbsrv(be)`, `be_conn`, ...) are
reached through ``CheckRuntime``, a view of ``lb.state.State`` shaped like the
proxy's runtime (``backends[name].st``).

Must not import: asyncio, sockets, lb.proxy, healthcheck.runner.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from lb.logfmt import date_gmt, date_local, date_ms
from lb.match import fmt as fmt_mod
from lb.match.sample import SampleSubject

CHECKS_FRONTEND = "CHECKS-FE"  # the frontend HAProxy's checks run under


class _ProxyView:
    """A backend or frontend as the fetches read it: ``name``, ``model``, ``st``."""

    __slots__ = ("name", "model", "st")

    def __init__(self, st: Any) -> None:
        self.name = st.name
        self.model = st.model
        self.st = st


class CheckRuntime:
    """The proxies of one configuration generation, by name (``lb.state.State``)."""

    __slots__ = ("state", "backends", "frontends")

    def __init__(self, state: Any) -> None:
        self.state = state
        self.backends = {n: _ProxyView(b) for n, b in state.backends.items()}
        self.frontends = {n: _ProxyView(f) for n, f in state.frontends.items()}


class CheckSample(SampleSubject):
    """The sample context of one check run of ``srv`` (an ``lb.state.ServerState``;
    None: a bare context, whose fetches give no sample)."""

    __slots__ = ("srv", "be", "fe", "rt", "target", "started", "local", "res_payload")

    def __init__(self, srv: Any = None, rt: CheckRuntime | None = None,
                 target: tuple[str, int] = ("", 0)) -> None:
        self.started = time.time()  # when the run began (its formats' dates)
        # what the server has answered so far (`res.len`, `res.payload`), once an
        # expect rule reads it
        self.res_payload: bytes | None = None
        self.local: tuple[str, int] | None = None  # the check connection's own address
        self.method = self.url = self.version = b""
        self.req_headers = []
        self.src = self.dst = None  # type: ignore[assignment]
        self.src_port = self.dst_port = None  # type: ignore[assignment]
        self.is_response = True  # (the server side: the `srv_*` fetches answer)
        self.status = 0
        self.res_headers = None
        self.vars = {}
        self.memo = {}
        self.srv = srv
        self.rt = rt
        self.fe = None
        self.be = None
        if srv is not None:
            be = rt.backends.get(srv.backend.name) if rt is not None else None
            self.be = be if be is not None else _ProxyView(srv.backend)
        self.target = target  # where the check connects: (address, port)


def _text(value: Any) -> bytes | None:
    return None if value is None else str(value).encode("utf-8", "surrogateescape")


_HOSTNAME = socket.gethostname()


def _srv_name(ctx: CheckSample) -> bytes | None:
    return None if ctx.srv is None else _text(ctx.srv.name)


def _be_name(ctx: CheckSample) -> bytes | None:
    return None if ctx.be is None else _text(ctx.be.name)


def _target_addr(ctx: CheckSample) -> bytes | None:
    return _text(ctx.target[0]) if ctx.target[0] else None


def _target_port(ctx: CheckSample) -> bytes | None:
    return _text(ctx.target[1]) if ctx.target[1] else None


def _nothing(ctx: CheckSample) -> None:
    return None


def _elapsed(ctx: CheckSample) -> int:
    """Milliseconds since the check began (HAProxy's `t_close` without a stream)."""
    return int((time.time() - ctx.started) * 1000)


def _request_date(ctx: CheckSample) -> float:
    """HAProxy dates a check's request at its start plus a handshake time of -1 ms."""
    return ctx.started - 0.001


def _const(text: str) -> Any:
    value = text.encode()
    return lambda ctx: value


def _local(ctx: CheckSample) -> tuple[str, int] | None:
    return ctx.local if ctx.local is not None and ctx.local[0] else None


def _live(ctx: CheckSample, what: str) -> bytes:
    """The live counts HAProxy reads with no stream: the process's connections
    (%ac), the backend's (%bc), the checked server's sessions (%sc)."""
    n = 0
    if what == "ac" and ctx.rt is not None:
        n = ctx.rt.state.curr_conns
    elif what == "bc" and ctx.be is not None:
        n = ctx.be.st.counters.scur
    elif what == "sc" and ctx.srv is not None:
        n = ctx.srv.cur_conns
    return str(n).encode()


def _request_number(ctx: CheckSample) -> bytes:
    """%rt: without a stream, HAProxy takes the next request number of the process."""
    st = ctx.rt.state if ctx.rt is not None else None
    return b"0" if st is None else str(st.next_req()).encode()


# Without a stream, HAProxy fills a check's format from an empty log record: no
# request (`<BADREQ>`), a proxy-side error state (`PR`), times of -1 (0 for the idle
# time), counters of 0, and '+' before the sizes and times a frontend that does not
# wait for the end of a stream prints so (the checks' frontend logs nothing)
CHECK_VARIABLES: dict[str, Any] = {name: _nothing for name in fmt_mod.LOG_VARIABLES}
CHECK_VARIABLES.update({name: _const("<BADREQ>")
                        for name in ("r", "HM", "HP", "HPO", "HQ", "HU", "HV")})
CHECK_VARIABLES.update({name: _const("-1")
                        for name in ("TR", "Tc", "Td", "Th", "Tq", "Tr", "Tw")})
CHECK_VARIABLES.update({name: _const("0")
                        for name in ("Ti", "ST", "U", "fc", "lc", "rc", "sq", "bq")})
CHECK_VARIABLES.update({
    "b": _be_name, "s": _srv_name, "si": _target_addr, "sp": _target_port,
    "f": lambda ctx: CHECKS_FRONTEND.encode(), "ft": lambda ctx: CHECKS_FRONTEND.encode(),
    "H": lambda ctx: _HOSTNAME.encode("utf-8", "surrogateescape"),
    "pid": lambda ctx: str(os.getpid()).encode(),
    "B": _const("+0"), "ts": _const("PR"), "tsc": _const("PR--"),
    "Tt": lambda ctx: b"+%d" % _elapsed(ctx), "Tu": lambda ctx: b"+%d" % _elapsed(ctx),
    "Ta": lambda ctx: b"+%d" % (_elapsed(ctx) + 1),
    "ac": lambda ctx: _live(ctx, "ac"), "bc": lambda ctx: _live(ctx, "bc"),
    "sc": lambda ctx: _live(ctx, "sc"), "rt": _request_number,
    "bi": lambda ctx: _text(ctx.local[0]) if _local(ctx) else None,
    "bp": lambda ctx: _text(ctx.local[1]) if _local(ctx) else None,
    "t": lambda ctx: date_ms(ctx.started).encode(),
    "T": lambda ctx: date_gmt(ctx.started).encode(),
    "Tl": lambda ctx: date_local(ctx.started).encode(),
    "Ts": lambda ctx: str(int(ctx.started)).encode(),
    "ms": lambda ctx: b"%03d" % (int(ctx.started * 1000) % 1000),
    "tr": lambda ctx: date_ms(_request_date(ctx)).encode(),
    "trg": lambda ctx: date_gmt(_request_date(ctx)).encode(),
    "trl": lambda ctx: date_local(_request_date(ctx)).encode(),
})


def compile_check_format(text: str) -> fmt_mod.Format:
    """A check's log-format string (the config layer has refused the invalid ones; one
    that still fails is sent as written)."""
    try:
        return fmt_mod.compile_format(text, CHECK_VARIABLES, context="check",
                                      empty_vars=True)
    except Exception:
        return fmt_mod.compile_format(text.replace("%", "%%"))
