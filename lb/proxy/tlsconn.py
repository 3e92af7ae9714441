"""Connections to TLS servers (`server ... ssl`): lb's end of the handshake.

Owns: ``ServerTls`` (a TLS server's context, its `sni` expression, whether its
connections may be pooled), ``for_backend`` (those of a backend's servers, made once
per generation from the model by lb.tls.backend), ``server_name`` (the SNI of one
connection: the expression evaluated on the exchange that opens it) and ``connect``
(the connect coroutine: the socket with its options, the PROXY header in clear
when the server takes one, then the handshake; ``connect_sock`` for a server that
is a local socket). A handshake that fails raises an
``ssl.SSLError`` (an OSError) from the coroutine, as a refused connect does, so it
counts, is retried and is logged (`SC`) as one.

lb.proxy.server comes here only for a server listed in ``BackendRT.tls``: the plain
path pays one ``is None`` test. A connection whose `sni` varies per exchange is not
pooled (HAProxy reuses one only for the same name; lb's pool is per server).

Must not import: lb.cli, lb.log, healthcheck.
"""

from __future__ import annotations

import asyncio
import errno
import ssl
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from lb.config.model import Global, Proxy
from lb.match import sample
from lb.proxy import sockopts
from lb.tls import SHUTDOWN_WAIT, backend

# fetches whose value is the same for every exchange: an `sni` made of them keeps
# the server's connections poolable
_CONSTANT_FETCHES = frozenset(("str", "int", "bin", "bool", "ipv4", "ipv6", "env",
                               "hostname", "be_name", "be_id", "srv_name", "srv_id"))


class ServerTls:
    """How lb speaks TLS to one server: ``context`` (None when it could not be made:
    each connect then fails), ``sni`` (the compiled expression, or None) and
    ``pooled`` (its connections may serve later exchanges)."""

    __slots__ = ("context", "sni", "pooled")

    def __init__(self, context: ssl.SSLContext | None, sni: sample.SampleExpr | None,
                 pooled: bool) -> None:
        self.context = context
        self.sni = sni
        self.pooled = pooled


def _constant(expr: sample.SampleExpr) -> bool:
    return expr.fetch_def.name in _CONSTANT_FETCHES


def for_server(model: Any, glob: Global, owner: str) -> ServerTls:
    """The TLS of one `ssl` server (its context's problems go to stderr once)."""
    prepared = backend.prepare(model, glob, owner)
    if prepared.context is None:
        for msg in prepared.messages:
            print(f"[ALERT] server '{model.name}': {msg.text}", file=sys.stderr)
    expr = None
    if model.sni:
        try:
            expr = sample.parse_expr(model.sni)
        except Exception:  # (refused by the configuration check already)
            expr = None
    return ServerTls(prepared.context, expr, expr is None or _constant(expr))


def for_backend(model: Proxy, servers: dict[str, Any], glob: Global) -> dict[Any, ServerTls] | None:
    """The ``ServerTls`` of each `ssl` server of a backend (``servers``: its live
    states by name), keyed by live state; None when it has none."""
    owner = f"{'proxy' if model.kind == 'listen' else 'backend'} '{model.name}'"
    out = {servers[s.name]: for_server(s, glob, owner)
           for s in model.servers if s.ssl and s.name in servers}
    return out or None


def server_name(tls: ServerTls, txn: Any) -> str | None:
    """The SNI of a connection ``txn`` opens: the `sni` expression's value as text;
    None (no SNI) without one, or when it gives nothing."""
    if tls.sni is None or txn is None:
        return None
    try:
        value = sample.to_bytes(tls.sni.raw(txn))  # type: ignore[arg-type]
    except Exception:  # a fetch that cannot run here gives no name
        return None
    return value.decode("latin-1") if value else None


def connect(loop: asyncio.AbstractEventLoop, factory: Callable[[], Any], tls: ServerTls,
            host: str, port: int, opts: sockopts.SockOpts,
            binder: sockopts.SourceBinder | None, name: str | None, header: bytes,
            ) -> Coroutine[Any, Any, tuple[Any, Any]]:
    """The coroutine connecting to a TLS server; its result is (transport, protocol)
    once the handshake is done. ``header``: a PROXY header sent before it."""
    if tls.context is None:
        return _refused()
    if not opts and binder is None and not header:
        return loop.create_connection(factory, host, port, ssl=tls.context,  # type: ignore[return-value]
                                      server_hostname=name or "",
                                      ssl_shutdown_timeout=SHUTDOWN_WAIT)
    return sockopts.connect(loop, factory, host, port, opts, binder, tls=tls.context,
                            server_hostname=name or "", preamble=header,
                            tls_shutdown=SHUTDOWN_WAIT)


def connect_sock(loop: asyncio.AbstractEventLoop, factory: Callable[[], Any], tls: ServerTls,
                 sock: Any, name: str | None, header: bytes,
                 ) -> Coroutine[Any, Any, tuple[Any, Any]]:
    """As ``connect``, for a server that is a local stream socket, connected already
    (``sock``, lb.proxy.dial.dial_unix): the PROXY header is sent on it at once (a
    new socket takes a few bytes whole), then comes the handshake."""
    if tls.context is None:
        sock.close()
        return _refused()
    if header:
        try:
            if sock.send(header) != len(header):  # (never short on a new socket)
                raise OSError(errno.EAGAIN, "PROXY header not sent whole")
        except OSError as exc:
            sock.close()
            return _failed(exc)
    return loop.create_unix_connection(factory, sock=sock, ssl=tls.context,  # type: ignore[return-value]
                                       server_hostname=name or "",
                                       ssl_shutdown_timeout=SHUTDOWN_WAIT)


async def _failed(exc: OSError) -> tuple[Any, Any]:
    raise exc


async def _refused() -> tuple[Any, Any]:
    raise ssl.SSLError("no TLS context for this server")
