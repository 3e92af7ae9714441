"""A `mode tcp` connection that becomes an HTTP/1 one, as HAProxy's in-place upgrade.

Owns ``upgrade(client, session, be)``: the frontend's `tcp-request content` rules have
run on the raw bytes, and either a `switch-mode http` rule fired (``be`` None) or the
backend chosen is a `mode http` one. The client's transport is handed to an HTTP
``ClientConn`` of the same frontend, which takes over the connection's accounting (it
stays one connection and one session) and reads the bytes held so far as the start of
its first request. That request goes on where the session stopped
(``Txn._upgraded``): with the backend chosen, or at the frontend's HTTP rules; the
session's variables, trackers and `set-src`/`set-dst` addresses are carried over.
Later requests on the connection are ordinary ones of the frontend: its `tcp-request
content` rules and backend choice run again for each, as HAProxy's streams do.

Must not import: lb.cli, healthcheck.
"""

from __future__ import annotations

from typing import Any

from lb.proxy.client import ClientConn

# the fields of the accepted connection the HTTP one keeps
_KEPT = ("transport", "fd", "accept_ts", "id", "last_end", "stkctr", "sess_vars",
         "pp_header")


class Entry:
    """Where the first request of an upgraded connection goes on (``ClientConn.entry``)."""

    __slots__ = ("be", "vars", "stkctr")

    def __init__(self, be: Any, variables: dict[str, Any], stkctr: Any) -> None:
        self.be = be  # the HTTP backend chosen, or None: the frontend's HTTP rules next
        self.vars = variables
        self.stkctr = stkctr


def upgrade(client: Any, session: Any, be: Any) -> ClientConn:
    """Hand ``client`` (a ``lb.proxy.tcp.TcpClient`` whose ``session`` has not
    connected anywhere) to a new HTTP ``ClientConn``, which it returns."""
    conn = ClientConn(client.rt, client.fe, client.listener)
    for name in _KEPT:
        setattr(conn, name, getattr(client, name))
    # `set-src`/`set-dst` of the content rules: the connection's, as in HAProxy
    conn.src, conn.src_port = session.src, session.src_port
    conn.dst, conn.dst_port = session.dst, session.dst_port
    conn.entry = Entry(be, session.vars, session.stkctr)
    rt = client.rt
    rt.conns.discard(client)
    rt.conns.add(conn)
    rt.state.streams[conn.id] = conn
    # the TCP side lets go without undoing the accounting (the HTTP side will)
    client.ended = True
    client.closed = True
    client.session = None
    client.txn = None
    client.timer.stop()
    client.stimer.stop()
    held = b"".join(client.held)
    client.held = []
    transport = conn.transport
    transport.set_protocol(conn)
    conn.timer.arm(conn.fe.t_http_request)
    if client.paused:
        transport.resume_reading()
    if held:
        conn.data_received(held)
    if client.client_eof and not conn.ended:
        if not conn.eof_received():
            transport.close()
    return conn
