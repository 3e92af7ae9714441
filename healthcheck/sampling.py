"""What a health check's log-format strings read.

Owns: ``CheckSample``, the sample context of one check run (HAProxy builds its
check formats with the check's session and no stream: the server and its backend,
the process's variables and the run's own `check.` ones; no client, no request,
no response), the ``%``-variables a check format renders (``CHECK_VARIABLES``:
backend, server, its address and port, HAProxy's `CHECKS-FE` frontend, host name,
pid; every other variable renders nothing, as HAProxy leaves most of them empty
or at a placeholder there), and ``compile_check_format``.

The backends and frontends a fetch may name (`nbsrv(be)`, `be_conn`, ...) are
reached through ``CheckRuntime``, a view of ``lb.state.State`` shaped like the
proxy's runtime (``backends[name].st``).

Must not import: asyncio, sockets, lb.proxy, healthcheck.runner.
"""

from __future__ import annotations

import os
import socket
from typing import Any

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

    __slots__ = ("srv", "be", "fe", "rt", "target")

    def __init__(self, srv: Any = None, rt: CheckRuntime | None = None,
                 target: tuple[str, int] = ("", 0)) -> None:
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


CHECK_VARIABLES: dict[str, Any] = {name: _nothing for name in fmt_mod.LOG_VARIABLES}
CHECK_VARIABLES.update({
    "b": _be_name, "s": _srv_name, "si": _target_addr, "sp": _target_port,
    "f": lambda ctx: CHECKS_FRONTEND.encode(), "ft": lambda ctx: CHECKS_FRONTEND.encode(),
    "H": lambda ctx: _HOSTNAME.encode("utf-8", "surrogateescape"),
    "pid": lambda ctx: str(os.getpid()).encode(),
})


def compile_check_format(text: str) -> fmt_mod.Format:
    """A check's log-format string (the config layer has refused the invalid ones; one
    that still fails is sent as written)."""
    try:
        return fmt_mod.compile_format(text, CHECK_VARIABLES, context="check",
                                      empty_vars=True)
    except Exception:
        return fmt_mod.compile_format(text.replace("%", "%%"))
