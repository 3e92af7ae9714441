"""Fetches and converters that read stick counters (``sc_*``, ``sc0_*``..., ``src_*``,
``table_*``, ``in_table``).

Owns the functions behind HAProxy 2.6's stick-counter samples. ``lb.match.sample``
builds its table rows from ``FETCHES`` and ``CONVERTERS`` here; this module does
not import it. The counting itself is lb.proxy.track's; the data is kept by
lb.sticktable. As everywhere in lb.match, the runtime is reached through the
sample context (``ctx.rt.state.tables``, and the trackers ``ctx.stkctr`` and
``ctx.conn.stkctr``: three slots of ``(table, entry, key)`` or None).

- ``sc_<x>(<n>[,<table>])`` and ``sc<n>_<x>([<table>])`` read the entry tracked in
  slot ``n`` (by the request, else by its connection); no sample when nothing is
  tracked there. With a table, the tracked key is looked up in that table.
- ``src_<x>([<table>])`` looks the client address up (the current proxy's table by
  default): a missing entry reads 0; ``src_inc_gpc0`` creates it.
- ``table_<x>(<table>)`` converts a key into its entry's value (0 when absent).
- A missing entry reads 0 whatever the table stores; an entry of a table that does
  not store the data gives no sample.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# what the fetch suffix reads: the stored data type
READS = {
    "conn_cnt": "conn_cnt", "conn_cur": "conn_cur", "conn_rate": "conn_rate",
    "sess_cnt": "sess_cnt", "sess_rate": "sess_rate", "http_req_cnt": "http_req_cnt",
    "http_req_rate": "http_req_rate", "http_err_cnt": "http_err_cnt",
    "http_err_rate": "http_err_rate", "get_gpc0": "gpc0", "get_gpc1": "gpc1",
    "get_gpt0": "gpt0", "gpc0_rate": "gpc0_rate", "gpc1_rate": "gpc1_rate",
    "bytes_in_rate": "bytes_in_rate", "bytes_out_rate": "bytes_out_rate",
    "http_fail_cnt": "http_fail_cnt", "http_fail_rate": "http_fail_rate",
}
# byte totals read in KiB (HAProxy's sc_kbytes_in...: the count shifted by 10)
KBYTES = {"kbytes_in": "bytes_in_cnt", "kbytes_out": "bytes_out_cnt"}
# suffixes that change the entry: increment or clear a gpc, returning its value
UPDATES = {"inc_gpc0": "gpc0", "inc_gpc1": "gpc1", "clr_gpc0": "gpc0", "clr_gpc1": "gpc1"}

Values = list[Any]


def _tables(ctx: Any) -> dict[str, Any]:
    rt = getattr(ctx, "rt", None)
    return rt.state.tables if rt is not None else {}


def _tracked(ctx: Any, slot: int) -> Any:
    sc = getattr(ctx, "stkctr", None)
    found = sc[slot] if sc is not None and 0 <= slot < 3 else None
    if found is None:
        conn = getattr(ctx, "conn", None)
        sc = getattr(conn, "stkctr", None)
        found = sc[slot] if sc is not None and 0 <= slot < 3 else None
    return found


def _now(ctx: Any) -> float:
    return ctx.rt.clock()


def _apply(table: Any, e: Any, suffix: str, ctx: Any) -> Values:
    """The value of ``suffix`` for entry ``e`` of ``table`` (None: absent entry)."""
    now = _now(ctx)
    data = READS.get(suffix)
    if data is not None:
        v = table.read(e, data, now)
        return [] if v is None else [v]
    data = KBYTES.get(suffix)
    if data is not None:
        v = table.read(e, data, now)
        return [] if v is None else [v >> 10]
    data = UPDATES[suffix]
    if data not in table.stores:
        return [0] if suffix.startswith("inc") else []
    if e is None:
        return [0]
    if suffix.startswith("inc"):
        table.add(e, data, now)
        table.add(e, data + "_rate", now)
        return [table.read(e, data, now)]
    old = table.read(e, data, now)
    table.set_value(e, data, 0)
    return [old]


def _in_other(ctx: Any, slot: tuple, name: Any) -> tuple[Any, Any]:
    """The tracked entry, or its key's entry in the table named by the argument."""
    table, e, key = slot
    if name and name != table.name:
        other = _tables(ctx).get(name)
        if other is None:
            return None, None
        return other, other.lookup(key, _now(ctx))
    return table, e


def sc_fetch(suffix: str, fixed_slot: int | None) -> Callable[[Any, tuple], Values]:
    """``sc_<suffix>(<n>[,<table>])`` (``fixed_slot`` None) or ``sc<n>_<suffix>``."""
    def fn(ctx: Any, args: tuple) -> Values:
        if fixed_slot is None:
            slot_no, table_arg = args[0], (args[1] if len(args) > 1 else "")
        else:
            slot_no, table_arg = fixed_slot, (args[0] if args else "")
        slot = _tracked(ctx, slot_no)
        if suffix == "tracked":
            return [slot is not None]
        if slot is None:
            return []
        table, e = _in_other(ctx, slot, table_arg)
        if table is None:
            return []
        if suffix == "trackers":
            return [e.use if e is not None else 0]
        return _apply(table, e, suffix, ctx)
    return fn


def _current_table(ctx: Any, name: str) -> Any:
    tables = _tables(ctx)
    if name:
        return tables.get(name)
    for attr in ("be", "fe"):
        px = getattr(ctx, attr, None)
        if px is not None and px.name in tables:
            return tables[px.name]
    return None


def src_fetch(suffix: str) -> Callable[[Any, tuple], Values]:
    """``src_<suffix>([<table>])``: the client address's entry."""
    def fn(ctx: Any, args: tuple) -> Values:
        table = _current_table(ctx, args[0] if args else "")
        if table is None:
            return []
        key = table.key(getattr(ctx, "src", None))
        if key is None:
            return []
        now = _now(ctx)
        e = (table.get_or_create(key, now) if suffix.startswith("inc")
             else table.lookup(key, now))
        return _apply(table, e, suffix, ctx)
    return fn


def table_conv(suffix: str) -> Callable[[Any, tuple, Any], Any]:
    """``table_<suffix>(<table>)``: the key's entry in the table (no update)."""
    def fn(v: Any, args: tuple, ctx: Any) -> Any:
        table = _tables(ctx).get(args[0] if args else "")
        if table is None:
            return None
        key = table.key(v)
        e = table.lookup(key, _now(ctx)) if key is not None else None
        if suffix == "trackers":
            return e.use if e is not None else 0
        vals = _apply(table, e, suffix, ctx)
        return vals[0] if vals else None
    return fn


def in_table(v: Any, args: tuple, ctx: Any) -> bool | None:
    table = _tables(ctx).get(args[0] if args else "")
    if table is None:
        return None
    key = table.key(v)
    return key is not None and table.lookup(key, _now(ctx)) is not None


SC_SUFFIXES = (*READS, *KBYTES, *UPDATES, "trackers", "tracked")
SRC_SUFFIXES = (*READS, *KBYTES, *UPDATES)
TABLE_SUFFIXES = (*READS, *KBYTES, "trackers")
