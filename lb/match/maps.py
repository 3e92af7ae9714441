"""Maps: HAProxy's two-column pattern files and the lookups of the ``map`` converters.

Owns:
- reading a map file (``read_map_file``): one ``key value`` entry a line;
- ``MapView``: one compiled lookup of a pattern reference for a match method and an
  output type. Every converter asking for the same pair shares it, and it is rebuilt
  when the stats socket changes the list (``patref.recompile``);
- ``MAP_CONVERTERS``: the converter vocabulary (``map``, ``map_<match>``,
  ``map_<match>_<output>``); lb/match/sample.py turns its rows into converters;
- ``MapSource``: where a converter finds its list. Config parsing sets one per
  statement (it reads files and records who uses them); a running configuration sets
  one over its already loaded lists; anything else (a test calling
  ``sample.parse_expr``) gets a process-wide one reading files itself.

Lookup semantics follow HAProxy 2.6 (checked against it, docs/acl.md "Maps"): ``str``
is exact with the first of equal keys winning, ``beg`` and ``ip`` take the longest
matching key, and the other methods take the first matching key in file order.
Converters are case-sensitive. ``map_regm`` replaces ``\\1``..``\\9`` in the value
with the regex's groups.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from lb.match import pattern
from lb.match.patref import Entry, PatternRef, PatternRefs

# sample types (the same words as lb.match.sample's T_* constants)
STR = "str"
INT = "int"
IP = "ip"

# converter name -> (match method, input type, output type)
MAP_CONVERTERS: dict[str, tuple[str, str, str]] = {"map": ("str", STR, STR)}
_MATCH_INPUT = {"str": STR, "beg": STR, "sub": STR, "dir": STR, "dom": STR, "end": STR,
                "reg": STR, "regm": STR, "int": INT, "ip": IP}
for _m, _inp in _MATCH_INPUT.items():
    MAP_CONVERTERS[f"map_{_m}"] = (_m, _inp, STR)
    if _m != "regm":  # HAProxy 2.6 has no map_regm_int / map_regm_ip
        MAP_CONVERTERS[f"map_{_m}_int"] = (_m, _inp, INT)
        MAP_CONVERTERS[f"map_{_m}_ip"] = (_m, _inp, IP)

# `get map` names of the output types
TYPE_NAMES = {STR: "str", INT: "sint"}


class MapError(Exception):
    """A map that cannot be used, in HAProxy's words (without the final period)."""


# ----------------------------------------------------------------- files and values


def read_map_file(full_path: str) -> list[tuple[str, str, int]]:
    """(key, value, line number) of each entry: leading blanks skipped, blank and
    ``#`` lines ignored, the key ends at the first blank, the value is the rest of the
    line without its surrounding blanks (a line with a key only has an empty value)."""
    with open(full_path, "rb") as f:
        data = f.read()
    out = []
    for lineno, raw in enumerate(data.split(b"\n"), 1):
        line = raw.lstrip(b" \t")
        if not line or line.startswith(b"#"):
            continue
        line = line.rstrip(b" \t\r")
        if not line:
            continue
        cut = 0
        while cut < len(line) and line[cut] not in b" \t":
            cut += 1
        key = line[:cut].decode("utf-8", "surrogateescape")
        value = line[cut:].lstrip(b" \t").decode("utf-8", "surrogateescape")
        out.append((key, value, lineno))
    return out


_INT_VALUE = re.compile(r"[+-]?[0-9]{1,19}")


def parse_value(out: str, text: str) -> Any:
    """A map value as its output type; ``PatternError`` when it is not one."""
    if out == STR:
        return text.encode("utf-8", "surrogateescape")
    if out == INT:
        if _INT_VALUE.fullmatch(text):
            return int(text)
    else:
        try:
            return ipaddress.ip_address(text)
        except ValueError:
            pass
    raise pattern.PatternError(f"unable to parse '{text}'")


def value_text(v: Any) -> str:
    return v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else str(v)


def type_name(out: str, v: Any) -> str:
    if out == IP:
        return "ipv4" if v.version == 4 else "ipv6"
    return TYPE_NAMES[out]


def _parse_key(method: str, text: str) -> Any:
    return pattern.MATCH_METHODS["reg" if method == "regm" else method].parse(text)


# ----------------------------------------------------------------- compiled lookups

Found = tuple[Entry, Any]  # the entry that matched, and its value as the output type


class MapView:
    """A pattern reference seen through one match method and one output type."""

    __slots__ = ("ref", "method", "out", "find")

    def __init__(self, ref: PatternRef, method: str, out: str) -> None:
        self.ref = ref
        self.method = method
        self.out = out
        self.find: Callable[[Any], Found | None] = _nothing

    @property
    def tree(self) -> bool:
        """Whether HAProxy indexes this method in a tree (`get map` says idx=tree)."""
        return self.method in ("str", "beg", "ip")

    def compiled(self, strict_file: str | None = None) -> list[tuple[Entry, Any, Any]]:
        """(entry, parsed key, value) of each usable entry. With ``strict_file`` the
        first bad entry raises ``MapError`` naming its line of that file."""
        rows = []
        for e in self.ref.entries:
            try:
                key = _parse_key(self.method, e.text)
                if self.method in ("reg", "regm"):
                    key = pattern.compile_regex(key, False)
            except pattern.PatternError as exc:
                if strict_file is not None:
                    raise MapError(f"{exc} at line {e.line} of file '{strict_file}'"
                                   ) from None
                continue
            try:
                value = parse_value(self.out, e.value or "")
            except pattern.PatternError as exc:
                if strict_file is not None:
                    raise MapError(f"{exc} at line {e.line} of file '{strict_file}'"
                                   ) from None
                continue
            rows.append((e, key, value))
        return rows

    def check(self, key: str, value: str) -> str | None:
        """What is wrong with a new entry for this view, in HAProxy's words."""
        try:
            k = _parse_key(self.method, key)
            if self.method in ("reg", "regm"):
                pattern.compile_regex(k, False)
        except pattern.PatternError as exc:
            return str(exc)
        return self.check_value(value)

    def check_value(self, value: str) -> str | None:
        try:
            parse_value(self.out, value)
        except pattern.PatternError as exc:
            return str(exc)
        return None

    def rebuild(self, strict_file: str | None = None) -> None:
        self.find = _BUILDERS.get(self.method, _in_order)(self.method,
                                                          self.compiled(strict_file))

    def lookup(self, sample: Any) -> Any:
        """The converter's answer for ``sample``: the value, or None."""
        hit = self.find(sample)
        if hit is None:
            return None
        value = hit[1]
        if self.method == "regm":
            rx, value, expand = value
            if expand is not None:
                m = rx.search(sample)
                if m is not None:
                    return expand(m)
        return value


def _nothing(sample: Any) -> None:
    return None


Rows = list[tuple[Entry, Any, Any]]


def _exact(method: str, rows: Rows) -> Callable[[Any], Found | None]:
    table: dict[bytes, Found] = {}
    for e, key, value in rows:
        table.setdefault(key, (e, value))  # the first of equal keys wins
    return table.get


def _longest_prefix(method: str, rows: Rows) -> Callable[[Any], Found | None]:
    table: dict[bytes, Found] = {}
    for e, key, value in rows:
        table.setdefault(key, (e, value))
    lengths = sorted({len(k) for k in table}, reverse=True)

    def find(v: bytes) -> Found | None:
        n = len(v)
        for size in lengths:
            if size <= n:
                hit = table.get(v[:size])
                if hit is not None:
                    return hit
        return None
    return find


def _longest_network(method: str, rows: Rows) -> Callable[[Any], Found | None]:
    tables: dict[int, dict[int, dict[int, Found]]] = {4: {}, 6: {}}
    for e, net, value in rows:
        by_len = tables[net.version].setdefault(net.prefixlen, {})
        by_len.setdefault(int(net.network_address), (e, value))
    full = {4: (1 << 32) - 1, 6: (1 << 128) - 1}
    ordered = {ver: [(full[ver] ^ ((1 << ((32 if ver == 4 else 128) - plen)) - 1), t)
                     for plen, t in sorted(tables[ver].items(), reverse=True)]
               for ver in (4, 6)}

    def search(ver: int, x: int) -> Found | None:
        for mask, t in ordered[ver]:
            hit = t.get(x & mask)
            if hit is not None:
                return hit
        return None

    def find(ip: Any) -> Found | None:
        x = int(ip)
        if ip.version == 4:
            return search(4, x) or search(6, 0xFFFF00000000 | x)
        hit = search(6, x)
        if hit is None and x >> 32 in (0, 0xFFFF):
            hit = search(4, x & 0xFFFFFFFF)
        return hit
    return find


def _in_order(method: str, rows: Rows) -> Callable[[Any], Found | None]:
    if method == "regm":  # the value keeps what its expansion needs
        rows = [(e, key, (key, value, pattern.backrefs(value) if isinstance(value, bytes)
                          else None)) for e, key, value in rows]
    if method in ("reg", "regm"):
        tests = [(key.search, (e, value)) for e, key, value in rows]

        def find_rx(v: bytes) -> Found | None:
            for search, hit in tests:
                if search(v) is not None:
                    return hit
            return None
        return find_rx
    matchers = [(pattern.compile_patterns(method, [key], False), (e, value))
                for e, key, value in rows]

    def find(v: Any) -> Found | None:
        for m, hit in matchers:
            if m.match(v):
                return hit
        return None
    return find


_BUILDERS = {"str": _exact, "beg": _longest_prefix, "ip": _longest_network}


# ----------------------------------------------------------------- where lists come from


class MapSource:
    """How a map converter being compiled reaches its list.

    ``load``: read a file the references do not have yet (config parsing, or the
    fallback); without it only the lists loaded with the configuration are used.
    ``user`` names the statement in `show map` ("map at file 'x.cfg' line 12").
    """

    def __init__(self, refs: PatternRefs, base_dir: str = ".", user: str = "",
                 load: bool = True) -> None:
        self.refs = refs
        self.base_dir = base_dir
        self.user = user
        self.load = load

    def view(self, path: str, method: str, out: str) -> MapView:
        ref = self.refs.find_file(path) if path else None
        if ref is None:
            full = path if os.path.isabs(path) else os.path.join(self.base_dir, path)
            try:
                rows = read_map_file(full) if path else None
            except OSError:
                rows = None
            if rows is None:
                raise MapError(f"failed to open pattern file <{path}>")
            ref = self.refs.map_ref(path, rows, self.user)
        elif not ref.two_column:
            raise MapError(f'The file "{path}" is already used as one column file and '
                           "cannot be used by as two column file.")
        elif self.load and self.user:
            ref.users.append(self.user)
            ref.is_map = True
        key = (method, out)
        view = ref.views.get(key)
        if view is None:
            view = MapView(ref, method, out)
            view.rebuild(strict_file=path if self.load else None)
            ref.views[key] = view
        return view


_fallback: MapSource | None = None
_current: ContextVar[MapSource | None] = ContextVar("lb_map_source", default=None)


def current() -> MapSource:
    global _fallback
    src = _current.get()
    if src is not None:
        return src
    if _fallback is None:
        _fallback = MapSource(PatternRefs())
    return _fallback


@contextmanager
def using(source: MapSource) -> Iterator[MapSource]:
    """Compile map converters against ``source`` within the block."""
    token = _current.set(source)
    try:
        yield source
    finally:
        _current.reset(token)
