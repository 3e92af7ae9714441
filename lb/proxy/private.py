"""Server connections a client connection owns (HAProxy's private connections).

Owns: which server connections are private, the list a client connection keeps of
them (``ClientConn.srv_conns``, in the order they were first kept), their reuse by
that client's later requests, `max-session-srv-conns`, and `option
prefer-last-server`'s choice of server.

A private connection is never handed to another client. One is private when its
backend has `http-reuse never`, when it goes to a `dispatch` address, and from the
moment its server answers 401 with a `WWW-Authenticate` (or 407 with a
`Proxy-Authenticate`) that offers NTLM or Negotiate: that authentication belongs to
the TCP connection, so the client's next requests must travel on it. The NTLM case
also makes the client connection prefer that server from then on, whatever the
backend's options, as HAProxy 2.6.12 does (its SESS_FL_PREFER_LAST).

After an exchange, a private connection stays with its client connection while fewer
than `max-session-srv-conns` (5) other idle ones do; it is closed (reset) otherwise,
and with the client connection. A later request to the same server takes it before
anything else, in any `http-reuse` mode, and counts as a reuse.

Must not import: lb.cli, lb.log, healthcheck.
"""

from __future__ import annotations

from typing import Any

from lb.proxy.sockio import closing

_NEGO = b"nego"
_NTLM = b"ntlm"


def offers_connection_auth(status: int, headers: list[tuple[bytes, bytes]]) -> bool:
    """A 401 whose WWW-Authenticate (or 407 whose Proxy-Authenticate) offers a scheme
    that authenticates the connection: a comma-separated value starting with "Nego"
    or "NTLM", any case (HAProxy 2.6.12 reads only those four letters)."""
    name = b"www-authenticate" if status == 401 else b"proxy-authenticate"
    for k, v in headers:
        if k == name:
            for part in v.split(b","):
                word = part.strip(b" \t")[:4].lower()
                if word == _NEGO or word == _NTLM:
                    return True
    return False


def keep(sc: Any, now: float, idle_timeout: float | None) -> None:
    """``sc``'s exchange is over (ServerConn.release): keep it for its owner's next
    requests, or close it (the owner gone or closing, or its quota of idle ones
    reached)."""
    conn = sc.owner
    if conn is None or conn.closed:
        _drop(sc)
        sc.close_done()
        return
    owned = conn.srv_conns
    if owned is None:
        owned = conn.srv_conns = []
    idle = 0
    for other in owned:
        if other is not sc and other.txn is None and not other.closed:
            idle += 1
    if idle >= conn.fe.max_srv_conns:
        _drop(sc)
        sc.close_done()
        return
    if sc not in owned:
        owned.append(sc)
    sc.idle_since = now if idle_timeout else 0.0


def take(conn: Any, srv: Any, idle_timeout: float | None, now: float) -> Any:
    """An idle connection ``conn`` owns to ``srv``, or None. One idle for longer than
    ``idle_timeout`` (`timeout server`) is closed on the way, as the pool does. One
    whose server just closed it (its transport closing, the loss not yet told) is
    passed over, as the pool passes it over."""
    for sc in conn.srv_conns:
        if (sc.srv is not srv or sc.txn is not None or sc.closed or sc.transport is None
                or closing(sc.transport)):
            continue
        if idle_timeout and now - sc.idle_since > idle_timeout:
            sc.close_done()
            continue
        return sc
    return None


def preferred_server(conn: Any, be: Any) -> Any:
    """`option prefer-last-server` (or an NTLM answer): the server of ``be`` that
    ``conn`` owns a connection to, first kept first, if it may take the request; or
    None to load balance. `max-keep-alive-queue` bounds the queue accepted on it,
    except after NTLM."""
    forced = conn.prefer_last
    bound = be.max_ka_queue
    for sc in conn.srv_conns:
        srv = sc.srv
        if srv.backend is not be.st or sc.closed or not srv.usable:
            continue
        if (forced or not bound or not srv.maxconn or srv.cur_conns < srv.maxconn
                or len(srv.queue) + 1 < bound):
            return srv
    return None


def release_all(conn: Any) -> None:
    """The client connection ended: close the idle connections it owns (one still in
    an exchange is closed by that exchange's end)."""
    owned = conn.srv_conns
    conn.srv_conns = None
    for sc in owned:
        sc.owner = None
        if sc.txn is None:
            sc.close_done()


def forget(sc: Any) -> None:
    """``sc`` closed: no longer in its owner's list."""
    _drop(sc)


def _drop(sc: Any) -> None:
    owner = sc.owner
    sc.owner = None
    if owner is not None and owner.srv_conns is not None and sc in owner.srv_conns:
        owner.srv_conns.remove(sc)
