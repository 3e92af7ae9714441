"""Stick tables: which server a key (a client address, a cookie...) sticks to.

Owns: the mutable runtime table of a proxy's ``stick-table`` (``StickTable``): keys
converted to the table's type, entries naming a server, expiry from the last use,
the size bound (the least recently used entry makes room, unless ``nopurge``), and
the texts of `show table`. The rules that read and fill it (``stick on/match/
store-request/store-response``) run in lb.proxy.stick; the model is
``lb.config.model.StickTableSpec``.

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


class StickEntry:
    __slots__ = ("server_id", "server_name", "expire")

    def __init__(self, server_id: int, server_name: str, expire: float | None) -> None:
        self.server_id = server_id
        self.server_name = server_name
        self.expire = expire


class StickTable:
    """One proxy's table. ``now`` arguments are the loop clock, in seconds."""

    __slots__ = ("name", "type", "size", "key_len", "expire", "nopurge", "entries")

    def __init__(self, name: str, spec: Any) -> None:
        self.name = name
        self.type: str = spec.type
        self.size: int = spec.size
        self.key_len: int = spec.key_len
        self.expire: float | None = spec.expire
        self.nopurge: bool = spec.nopurge
        self.entries: OrderedDict[Any, StickEntry] = OrderedDict()  # oldest use first

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
        if e.expire is not None and e.expire <= now:
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

    def _touch(self, key: Any, e: StickEntry, now: float) -> None:
        e.expire = None if self.expire is None else now + self.expire
        self.entries.move_to_end(key)

    def _make_room(self, now: float) -> bool:
        self.purge(now)
        if len(self.entries) < self.size:
            return True
        if self.nopurge:
            return False
        self.entries.popitem(last=False)  # the least recently used
        return True

    def purge(self, now: float) -> None:
        """Drop the expired entries (oldest use first, so stop at the first live one
        when every entry has the same lifetime)."""
        if self.expire is None:
            return
        dead = []
        for k, e in self.entries.items():
            if e.expire is not None and e.expire > now:
                break
            dead.append(k)
        for k in dead:
            del self.entries[k]

    def remove(self, key: Any) -> bool:
        return self.entries.pop(key, None) is not None

    def clear(self) -> None:
        self.entries.clear()

    def live(self, now: float) -> Iterator[tuple[Any, StickEntry]]:
        self.purge(now)
        return iter(list(self.entries.items()))

    # ---- texts

    def header(self) -> str:
        return (f"# table: {self.name}, type: {self.type}, size:{self.size}, "
                f"used:{len(self.entries)}\n")

    def entry_line(self, key: Any, e: StickEntry, now: float) -> str:
        exp = 0 if e.expire is None else max(int((e.expire - now) * 1000), 0)
        return (f"0x{id(e):012x}: key={self.key_text(key)} use=0 exp={exp} "
                f"server_id={e.server_id} server_key={e.server_name or '-'}\n")


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
