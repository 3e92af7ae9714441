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
- The array forms of HAProxy 2.5+ take the element's index first:
  ``sc_get_gpc(<idx>,<n>[,<table>])``, ``src_inc_gpc(<idx>,<table>)``,
  ``table_gpt(<idx>,<table>)``...; an entry keeps the elements under the legacy
  names (lb.sticktable), so ``sc_get_gpc0`` reads ``gpc(0)`` of a table with the
  array, and the array fetches read nothing of a table with the legacy ``gpc0``.
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

# HAProxy 2.5+'s array forms, `sc_get_gpc(<idx>,<n>[,<table>])`...: what each reads
ARRAY_READS = {"get_gpc": "gpc", "gpc_rate": "gpc_rate", "get_gpt": "gpt"}
ARRAY_SUFFIXES = (*ARRAY_READS, "inc_gpc", "clr_gpc")
# table_gpc(<idx>,<table>)...: converter suffix -> fetch suffix
ARRAY_CONVERTERS = {"gpc": "get_gpc", "gpc_rate": "gpc_rate", "gpt": "get_gpt"}

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
    if suffix.startswith("inc"):
        rate = data + "_rate"
        return [_increment(table, e, data if data in table.stores else None,
                           rate if rate in table.stores else None, now)]
    return _clear(table, e, data if data in table.stores else None, now)


def _increment(table: Any, e: Any, counter: str | None, rate: str | None,
               now: float) -> int:
    """Count one event in a gpc and its rate (either may be absent): the counter's new
    value, else the rate's count in its current period, 0 when neither is stored."""
    if e is None or (counter is None and rate is None):
        return 0
    if rate is not None:
        table.add(e, rate, now)
    if counter is not None:
        table.add(e, counter, now)
        return table.read(e, counter, now)
    data = e.data
    return data[rate].curr if data is not None else 0


def _clear(table: Any, e: Any, counter: str | None, now: float) -> Values:
    """Reset a gpc (not its rate): its value before, no sample when not stored."""
    if counter is None:
        return []
    if e is None:
        return [0]
    old = table.read(e, counter, now)
    table.set_value(e, counter, 0)
    return [old]


def _apply_array(table: Any, e: Any, suffix: str, index: int, ctx: Any) -> Values:
    """The value of an array fetch (``get_gpc``...) on element ``index`` of entry
    ``e``: 0 for a missing entry, no sample when the table lacks the element (a
    legacy ``gpc0`` is not an element of ``gpc``); ``inc_gpc`` counts in ``gpc`` and
    ``gpc_rate``, whichever the table has, and reads 0 with neither."""
    now = _now(ctx)
    if suffix == "inc_gpc":
        return [_increment(table, e, table.element("gpc", index),
                           table.element("gpc_rate", index), now)]
    if suffix == "clr_gpc":
        return _clear(table, e, table.element("gpc", index), now)
    if e is None:
        return [0]
    data = table.element(ARRAY_READS[suffix], index)
    if data is None:
        return []
    v = table.read(e, data, now)
    return [] if v is None else [v]


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


def sc_array_fetch(suffix: str) -> Callable[[Any, tuple], Values]:
    """``sc_<suffix>(<idx>,<n>[,<table>])``: an element of the entry tracked in
    slot ``n`` (or its key's entry in the named table)."""
    def fn(ctx: Any, args: tuple) -> Values:
        slot = _tracked(ctx, args[1])
        if slot is None:
            return []
        table, e = _in_other(ctx, slot, args[2] if len(args) > 2 else "")
        if table is None:
            return []
        return _apply_array(table, e, suffix, args[0], ctx)
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


def _src_entry(ctx: Any, name: str, create: bool) -> tuple[Any, Any] | None:
    """(table, the client address's entry or None) in the named table (the current
    proxy's by default), the entry made when ``create``; None without a table or
    when the address cannot be one of its keys."""
    table = _current_table(ctx, name)
    if table is None:
        return None
    key = table.key(getattr(ctx, "src", None))
    if key is None:
        return None
    now = _now(ctx)
    return table, (table.get_or_create(key, now) if create else table.lookup(key, now))


def src_fetch(suffix: str) -> Callable[[Any, tuple], Values]:
    """``src_<suffix>([<table>])``: the client address's entry."""
    create = suffix.startswith("inc")

    def fn(ctx: Any, args: tuple) -> Values:
        found = _src_entry(ctx, args[0] if args else "", create)
        return [] if found is None else _apply(found[0], found[1], suffix, ctx)
    return fn


def src_array_fetch(suffix: str) -> Callable[[Any, tuple], Values]:
    """``src_<suffix>(<idx>,<table>)``: an element of the client address's entry
    (HAProxy 2.6 wants the table named)."""
    create = suffix == "inc_gpc"

    def fn(ctx: Any, args: tuple) -> Values:
        found = _src_entry(ctx, args[1] if len(args) > 1 else "", create)
        return [] if found is None else _apply_array(found[0], found[1], suffix, args[0],
                                                     ctx)
    return fn


def table_array_conv(suffix: str) -> Callable[[Any, tuple, Any], Any]:
    """``table_<gpc|gpc_rate|gpt>(<idx>,<table>)``: an element of the key's entry."""
    fetch = ARRAY_CONVERTERS[suffix]

    def fn(v: Any, args: tuple, ctx: Any) -> Any:
        table = _tables(ctx).get(args[1] if len(args) > 1 else "")
        if table is None:
            return None
        key = table.key(v)
        e = table.lookup(key, _now(ctx)) if key is not None else None
        vals = _apply_array(table, e, fetch, args[0], ctx)
        return vals[0] if vals else None
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
