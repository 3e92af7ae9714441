"""Stick tables: which server a key (a client address, a cookie...) sticks to, and
the counters tracked against it.

Owns: the mutable runtime table of a proxy's ``stick-table`` (``StickTable``): keys
converted to the table's type, entries naming a server, the data the table's
``store`` keeps per entry (``DATA_TYPES``: counters, rates over a period, gpc/gpt),
expiry from the last use, the size bound (the least recently used entry makes room,
unless ``nopurge``; an entry being tracked is never dropped), and the texts of
`show table`. The rules that read and fill it run in lb.proxy.stick (``stick on``...)
and lb.proxy.track (``track-sc``); the model is ``lb.config.model.StickTableSpec``.

Expiry is lazy: an entry past its time is dropped when a lookup meets it, when a
table is listed, and by the purge that makes room. Must not import: lb.proxy,
lb.cli, lb.log, healthcheck.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

# key types: name -> default key length (string and binary only)
KEY_TYPES = {"ip": 0, "ipv6": 0, "integer": 0, "string": 32, "binary": 32}

_V4_MAPPED = 0xFFFF00000000

# The data a table may store, in HAProxy 2.6's order (`show table` prints them so):
# name -> kind. "cnt"/"cur"/"gp" are integers, "rate" a PeriodCounter over the period
# given in the store (`http_req_rate(10s)`).
DATA_TYPES: dict[str, str] = {
    "gpt0": "gp", "gpc0": "gp", "gpc0_rate": "rate", "conn_cnt": "cnt",
    "conn_rate": "rate", "conn_cur": "cur", "sess_cnt": "cnt", "sess_rate": "rate",
    "http_req_cnt": "cnt", "http_req_rate": "rate", "http_err_cnt": "cnt",
    "http_err_rate": "rate", "bytes_in_cnt": "cnt", "bytes_in_rate": "rate",
    "bytes_out_cnt": "cnt", "bytes_out_rate": "rate", "gpc1": "gp", "gpc1_rate": "rate",
    "http_fail_cnt": "cnt", "http_fail_rate": "rate",
}


# HAProxy 2.5+'s arrays, in its order (after every type above in `show table`): an
# entry keeps their elements under the legacy names, gpt0.., gpc0.., gpc0_rate..,
# which a table with the array cannot also store (lb.config.stick_kw refuses it)
ARRAY_TYPES = ("gpt", "gpc", "gpc_rate")
# every data type HAProxy 2.6 knows (`show table` filters name them)
KNOWN_TYPES = frozenset((*DATA_TYPES, *ARRAY_TYPES, "server_id", "server_key"))
# tags and counters are unsigned 32-bit integers (they wrap; a negative tag is stored
# as its two's complement, as HAProxy shows it)
U32 = 0xFFFFFFFF
# `show table` / `clear table` filter operators
FILTER_OPS: dict[str, Any] = {
    "eq": int.__eq__, "ne": int.__ne__, "le": int.__le__, "ge": int.__ge__,
    "lt": int.__lt__, "gt": int.__gt__}


class FilterError(Exception):
    """A `data.<type> <op> <value>` filter the table cannot apply (HAProxy's text)."""


class PeriodCounter:
    """Events over a sliding period, as HAProxy's freq_ctr_period: the events of the
    current period plus the previous period's, weighted by the part of it that is
    still within the window. Times are integer milliseconds."""

    __slots__ = ("tick", "curr", "prev")

    def __init__(self) -> None:
        self.tick = 0
        self.curr = 0
        self.prev = 0

    def add(self, now_ms: int, period: int, n: int = 1) -> None:
        if now_ms - self.tick >= period:
            self.prev = self.curr
            self.curr = 0
            self.tick += period
            if now_ms - self.tick >= period:  # more than one period went by
                self.prev = 0
                self.tick = now_ms
        self.curr += n

    def read(self, now_ms: int, period: int) -> int:
        curr, past = self.curr, self.prev
        remain = self.tick + period - now_ms
        if remain < 0:  # the current period is over
            past, curr = curr, 0
            remain += period
            if remain < 0:
                return 0
        return curr + past * remain // period if period else curr


class StickEntry:
    __slots__ = ("server_id", "server_name", "expire", "data", "use")

    def __init__(self, server_id: int, server_name: str, expire: float | None) -> None:
        self.server_id = server_id
        self.server_name = server_name
        self.expire = expire
        self.data: dict[str, Any] | None = None  # the stored data (StickTable.new_data)
        self.use = 0  # trackers holding the entry (track-sc): not dropped meanwhile


class StickTable:
    """One proxy's table. ``now`` arguments are the loop clock, in seconds."""

    __slots__ = ("name", "type", "size", "key_len", "expire", "nopurge", "entries",
                 "stores", "periods", "with_server", "arrays", "elements", "u32")

    def __init__(self, name: str, spec: Any, with_server: bool = True) -> None:
        self.name = name
        self.type: str = spec.type
        self.size: int = spec.size
        self.key_len: int = spec.key_len
        self.expire: float | None = spec.expire
        self.nopurge: bool = spec.nopurge
        self.entries: OrderedDict[Any, StickEntry] = OrderedDict()  # oldest use first
        # the data kept, in HAProxy's order (array elements by their names), and each
        # rate's period (ms)
        stores = dict(getattr(spec, "stores", ()))
        legacy = tuple(t for t in DATA_TYPES if t in stores)
        self.arrays: dict[str, int] = {}  # gpt/gpc/gpc_rate -> elements
        elements: list[str] = []
        for name in ARRAY_TYPES:
            for array, count, period in getattr(spec, "arrays", ()):
                if array == name:
                    self.arrays[name] = count
                    for i in range(count):
                        element = _element_name(name, i)
                        elements.append(element)
                        stores[element] = period
        self.elements = frozenset(elements)
        self.stores: tuple[str, ...] = (*legacy, *elements)
        self.periods: dict[str, int] = {t: p for t, p in stores.items() if p is not None}
        self.u32 = frozenset(t for t in self.stores
                             if t.startswith(("gpc", "gpt")) and t not in self.periods)
        # `stick on` rules use the table: its entries name a server
        self.with_server = with_server or not self.stores

    # ---- keys

    def key(self, value: Any) -> Any:
        """A sample as this table's key, or None when it cannot be one (HAProxy
        converts the sample to the table type; a failed conversion stores nothing)."""
        t = self.type
        if t == "ip" or t == "ipv6":
            ip = _as_ip(value)
            if ip is None:
                return None
            if t == "ipv6":
                return int(ip) if ip.version == 6 else _V4_MAPPED | int(ip)
            if ip.version == 4:
                return int(ip)
            x = int(ip)
            return x & 0xFFFFFFFF if x >> 32 == 0xFFFF else None
        if t == "integer":
            if isinstance(value, bool):
                return int(value)
            if isinstance(value, int):
                return value
            if isinstance(value, bytes):
                try:
                    return int(value.strip() or b"x")
                except ValueError:
                    return None
            return None
        raw = value if isinstance(value, bytes) else _text(value).encode()
        return raw[:self.key_len]

    def key_text(self, key: Any) -> str:
        """A key as `show table` prints it."""
        t = self.type
        if t == "ip":
            return str(ipaddress.IPv4Address(key))
        if t == "ipv6":
            return str(ipaddress.IPv6Address(key))
        if t == "integer":
            return str(key)
        if t == "binary":
            return key.ljust(self.key_len, b"\0").hex()
        return key.decode("utf-8", "backslashreplace")

    # ---- entries

    def lookup(self, key: Any, now: float) -> StickEntry | None:
        """The live entry for ``key`` (its expiry restarts: a match is a use)."""
        e = self.entries.get(key)
        if e is None:
            return None
        if e.expire is not None and e.expire <= now and not e.use:
            del self.entries[key]
            return None
        self._touch(key, e, now)
        return e

    def store(self, key: Any, server_id: int, server_name: str, now: float) -> bool:
        """Stick ``key`` to a server (a new entry, or an existing one updated). False
        when the table is full of live entries and ``nopurge`` forbids making room."""
        e = self.entries.get(key)
        if e is None:
            if len(self.entries) >= self.size and not self._make_room(now):
                return False
            e = StickEntry(server_id, server_name, None)
            self.entries[key] = e
        else:
            e.server_id, e.server_name = server_id, server_name
        self._touch(key, e, now)
        return True

    def get_or_create(self, key: Any, now: float) -> StickEntry | None:
        """The live entry for ``key``, created when missing (its expiry restarts);
        None when the table is full and ``nopurge`` forbids making room."""
        e = self.lookup(key, now)
        if e is not None:
            return e
        if len(self.entries) >= self.size and not self._make_room(now):
            return None
        e = StickEntry(0, "", None)
        self.entries[key] = e
        self._touch(key, e, now)
        return e

    def new_data(self) -> dict[str, Any]:
        return {t: PeriodCounter() if t in self.periods else 0 for t in self.stores}

    def element(self, array: str, index: int) -> str | None:
        """The data name of element ``index`` of an array (``gpc``, ``gpt``,
        ``gpc_rate``), None when the table has no such element."""
        if 0 <= index < self.arrays.get(array, 0):
            return _element_name(array, index)
        return None

    def add(self, e: StickEntry, name: str, now: float, n: int = 1) -> None:
        """Count ``n`` events of ``name`` (a counter, or a rate with its period) when
        the table stores it."""
        data = e.data
        if data is None:
            if not self.stores:
                return
            data = e.data = self.new_data()
        v = data.get(name)
        if v is None:
            return
        if isinstance(v, PeriodCounter):
            v.add(int(now * 1000), self.periods[name], n)
        elif name in self.u32:
            data[name] = (v + n) & U32
        else:
            data[name] = v + n

    def read(self, e: StickEntry | None, name: str, now: float) -> int | None:
        """The stored value: 0 for a missing entry (as HAProxy, whatever the table
        stores), None when the entry exists and the table does not store ``name``."""
        if e is None:
            return 0
        if name not in self.stores:
            return None
        if e.data is None:
            return 0
        v = e.data.get(name)
        if isinstance(v, PeriodCounter):
            return v.read(int(now * 1000), self.periods[name])
        return v

    def set_value(self, e: StickEntry, name: str, value: int, now: float = 0.0) -> None:
        """Store ``value`` (a rate: the count of the current period, as `set table`)."""
        if name in self.stores:
            if e.data is None:
                e.data = self.new_data()
            v = e.data[name]
            if isinstance(v, PeriodCounter):
                now_ms = int(now * 1000)
                if now_ms - v.tick >= self.periods[name]:
                    v.tick, v.prev = now_ms, 0
                v.curr = value
            else:
                e.data[name] = value & U32 if name in self.u32 else value

    def cli_type(self, name: str) -> str | None:
        """The data a `data.<type>` of the CLI names here (an array: its first
        element; an element by its legacy name: nothing, as in HAProxy), or None
        when the table does not store it."""
        if name in self.arrays:
            return _element_name(name, 0)
        if name in self.stores and name not in self.elements:
            return name
        if name == "server_id" and self.with_server:
            return name
        return None

    def stores_type(self, name: str) -> bool:
        return self.cli_type(name) is not None

    def filters(self, words: list[str]) -> list[tuple[str, Any, int]]:
        """``data.<type> <op> <value>`` triplets as (type, operator, value); raises
        FilterError with HAProxy's "Filter entry #n: ..." text."""
        out = []
        for i in range(0, len(words), 3):
            n = i // 3 + 1
            name = words[i][5:] if words[i].startswith("data.") else ""
            if name not in KNOWN_TYPES:
                raise FilterError(f"Filter entry #{n}: Unknown data type\n")
            op = FILTER_OPS.get(words[i + 1] if i + 1 < len(words) else "")
            if op is None:
                raise FilterError(f'Filter entry #{n}: Require and operator among "eq", '
                                  '"ne", "le", "ge", "lt", "gt"\n')
            text = words[i + 2] if i + 2 < len(words) else ""
            if not text.lstrip("-").isdigit():
                raise FilterError(f"Filter entry #{n}: Require a valid integer value to "
                                  "compare against\n")
            data = self.cli_type(name)
            if data is None:
                raise FilterError(f"Filter entry #{n}: Data type not stored in this table\n")
            out.append((data, op, int(text)))
        return out

    def matches(self, e: StickEntry, filters: list[tuple[str, Any, int]], now: float) -> bool:
        for name, op, value in filters:
            v = e.server_id if name == "server_id" else self.read(e, name, now)
            if v is None or not op(v, value):
                return False
        return True

    def touch(self, e: StickEntry, now: float) -> None:
        """Restart an entry's expiry (a tracker let it go)."""
        e.expire = None if self.expire is None else now + self.expire

    def _touch(self, key: Any, e: StickEntry, now: float) -> None:
        e.expire = None if self.expire is None else now + self.expire
        self.entries.move_to_end(key)

    def _make_room(self, now: float) -> bool:
        self.purge(now)
        if len(self.entries) < self.size:
            return True
        if self.nopurge:
            return False
        for k, e in self.entries.items():  # the least recently used, not tracked
            if not e.use:
                del self.entries[k]
                return True
        return False

    def purge(self, now: float) -> None:
        """Drop the expired entries (oldest use first, so stop at the first live one
        when every entry has the same lifetime)."""
        if self.expire is None:
            return
        dead = []
        for k, e in self.entries.items():
            if e.expire is not None and e.expire > now:
                break
            if not e.use:
                dead.append(k)
        for k in dead:
            del self.entries[k]

    def remove(self, key: Any) -> bool:
        return self.entries.pop(key, None) is not None

    def clear(self) -> None:
        self.entries.clear()

    def live(self, now: float) -> Iterator[tuple[Any, StickEntry]]:
        """The live entries in key order, as HAProxy's tree lists them."""
        self.purge(now)
        return iter(sorted(self.entries.items(), key=lambda kv: kv[0]))

    # ---- texts

    def header(self) -> str:
        return (f"# table: {self.name}, type: {self.type}, size:{self.size}, "
                f"used:{len(self.entries)}\n")

    def entry_line(self, key: Any, e: StickEntry, now: float) -> str:
        exp = 0 if e.expire is None else max(int((e.expire - now) * 1000), 0)
        parts = [f"0x{id(e):012x}: key={self.key_text(key)} use={e.use} exp={exp}"]
        if self.with_server:
            parts.append(f"server_id={e.server_id}")
        for t in self.stores:
            v = self.read(e, t, now)
            period = self.periods.get(t)
            parts.append(f"{t}({period})={v}" if period else f"{t}={v}")
        if self.with_server:
            parts.append(f"server_key={e.server_name or '-'}")
        return " ".join(parts) + "\n"


def _element_name(array: str, index: int) -> str:
    """gpc 2 -> gpc2, gpc_rate 2 -> gpc2_rate (as `show table` names them)."""
    if array == "gpc_rate":
        return f"gpc{index}_rate"
    return f"{array}{index}"


def _as_ip(value: Any) -> Any:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    try:
        return ipaddress.ip_address(_text(value).strip())
    except ValueError:
        return None


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)
