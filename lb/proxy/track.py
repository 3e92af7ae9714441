"""Stick counters: entries of a stick table tracked by a connection or a request.

Owns what ``track-sc0/1/2`` does at run time and when the tracked entries' data
changes, as HAProxy 2.6.12 does it (read from its `show table` on the same traffic,
tests/test_track_sc.py):

- a ``tcp-request connection`` (or ``session``) rule tracks for the whole
  connection: ``conn_cnt``, ``conn_rate``, ``sess_cnt``, ``sess_rate`` count once,
  ``conn_cur`` holds one until the connection ends, and every request of the
  connection counts in ``http_req_cnt``/``http_req_rate``;
- an ``http-request`` (or ``tcp-request content``) rule tracks for the request:
  ``conn_cnt``, ``conn_rate`` and ``http_req_*`` count once, ``conn_cur`` holds one
  until the exchange ends;
- an exchange that ends with a 4xx status counts in ``http_err_*`` of every entry
  it tracks, a server's 5xx but 501 and 505 in ``http_fail_*``; a connection that
  closes (or times out) before a whole request is such an exchange, a 400 (or 408)
  (lb.proxy.client ``_no_request``);
- an exchange's bytes (from the client, to the client; a tunnel's included) count
  in ``bytes_in_*``/``bytes_out_*`` when it ends, where HAProxy adds them as they
  flow: a long transfer shows in the rates at its end.

A tracker is a list of three slots (sc0..sc2), each None or ``(table, entry, key)``, on
the ``ClientConn`` (``stkctr``, connection level) and on the ``Txn`` (request level).
A slot already tracked at either level is not tracked again. An entry is held
(``use``) while tracked, so it does not expire or make room meanwhile.
"""

from __future__ import annotations

from typing import Any

from lb.sticktable import StickEntry, StickTable

Slot = tuple[StickTable, StickEntry, Any]  # (table, entry, key)


def _slot(holder: Any, slot: int) -> Slot | None:
    sc = holder.stkctr
    # (a rule may name slot -1: HAProxy 2.6.12 loads `sc-inc-gpc0(-1)`; it is no slot)
    return sc[slot] if sc is not None and 0 <= slot < len(sc) else None


def tracked(ctx: Any, slot: int) -> Slot | None:
    """The request's tracker of ``slot``, else its connection's."""
    found = _slot(ctx, slot)
    if found is None:
        conn = getattr(ctx, "conn", None)
        if conn is not None:
            found = _slot(conn, slot)
    return found


def track(ctx: Any, slot: int, table_name: str, value: Any, session: bool) -> None:
    """``track-sc<slot>``: hold the entry of ``value`` in the table and count."""
    if tracked(ctx, slot) is not None:
        return
    table = ctx.rt.state.tables.get(table_name)
    if table is None:
        return
    key = table.key(value)
    if key is None:
        return
    now = ctx.rt.clock()
    e = table.get_or_create(key, now)
    if e is None:  # full, and nopurge
        return
    holder = ctx.conn if session else ctx
    if holder.stkctr is None:
        holder.stkctr = [None, None, None]
    holder.stkctr[slot] = (table, e, key)
    e.use += 1
    add = table.add
    add(e, "conn_cnt", now)
    add(e, "conn_rate", now)
    add(e, "conn_cur", now)
    if session:
        add(e, "sess_cnt", now)
        add(e, "sess_rate", now)
    if ctx.method:  # a request is under way (not a connection rule's): it counts now
        add(e, "http_req_cnt", now)
        add(e, "http_req_rate", now)


def request_started(conn: Any, now: float) -> None:
    """A new request on a connection whose rules tracked entries."""
    for s in conn.stkctr:
        if s is not None:
            table, e, _key = s
            table.add(e, "http_req_cnt", now)
            table.add(e, "http_req_rate", now)


def exchange_ended(txn: Any, status: int, now: float) -> None:
    """Count the exchange's bytes, and a 4xx as an error or a 5xx (but 501 and 505)
    as a failure, in every entry it tracks; release the request's own."""
    err = 400 <= status < 500
    # a failure is a server's: its 5xx, or a 502/504 for it (lb's own replies, a 503
    # for want of a server or an `http-request return`, are not, as in HAProxy)
    fail = status >= 500 and status not in (501, 505) and txn.head_sent
    up = txn.bytes_in
    down = txn.bytes_out
    for holder in (txn, txn.conn):
        for s in holder.stkctr or ():
            if s is not None:
                table, e = s[0], s[1]
                if up:
                    table.add(e, "bytes_in_cnt", now, up)
                    table.add(e, "bytes_in_rate", now, up)
                if down:
                    table.add(e, "bytes_out_cnt", now, down)
                    table.add(e, "bytes_out_rate", now, down)
                if err:
                    table.add(e, "http_err_cnt", now)
                    table.add(e, "http_err_rate", now)
                elif fail:
                    table.add(e, "http_fail_cnt", now)
                    table.add(e, "http_fail_rate", now)
    if txn.stkctr is not None:
        _release(txn.stkctr, now)
        txn.stkctr = None


def session_ended(conn: Any, now: float) -> None:
    """Release the connection's entries."""
    _release(conn.stkctr, now)
    conn.stkctr = None


def _release(slots: list[Slot | None], now: float) -> None:
    for s in slots:
        if s is not None:
            table, e, _key = s
            e.use -= 1
            table.add(e, "conn_cur", now, -1)
            table.touch(e, now)


def update(ctx: Any, slot: int, data: str, value: int | None,
           index: int | None = None) -> None:
    """``sc-inc-gpc0/1`` (value None) and ``sc-set-gpt0``; with an ``index``, their
    array forms ``sc-inc-gpc(<index>,..)`` (the element of ``gpc`` and of
    ``gpc_rate``, whichever the table has) and ``sc-set-gpt(<index>,..)``. An element
    the table lacks changes nothing, as a legacy type it does not store."""
    s = tracked(ctx, slot)
    if s is None:
        return
    table, e, _key = s
    now = ctx.rt.clock()
    if index is not None:
        counter = table.element(data, index)
        if value is not None:
            if counter is not None:
                table.set_value(e, counter, value)
            return
        rate = table.element("gpc_rate", index)
        if counter is not None:
            table.add(e, counter, now)
        if rate is not None:
            table.add(e, rate, now)
        return
    if value is None:
        table.add(e, data, now)
        table.add(e, data + "_rate", now)
    else:
        table.set_value(e, data, value)
