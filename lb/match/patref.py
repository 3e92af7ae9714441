"""Pattern references: the ACL and map lists the stats socket can change at run time.

Owns: HAProxy's pattern references as `show/get/add/del/clear acl` and the `map`
commands see them, and the recompiling of the matchers of every ACL expression and
map view (lb.match.maps) that uses a changed list.

- A ``-f <file>`` list is one reference, shared by every ACL expression that loads
  the same file; an ``acl`` line (or an anonymous ``{ ... }`` ACL) has one reference
  of its own for its inline patterns, even when it has none. Ids are given in the
  order HAProxy gives them: as the configuration is read, a line's files first.
- An entry is the pattern text as written, with a unique id (``show acl`` prints it
  as HAProxy prints its entry addresses, ``0x...``; ``del acl <acl> #<id>`` takes it).
- A map file (``map`` converters, ``acl -M -f``) is a two-column reference: its
  entries carry a value. A file is either one-column or two-column for the whole
  configuration, as in HAProxy.
- A change recompiles the matchers of the expressions using that reference (each
  with its own method and ``-i``) and swaps them in (``AclExpr.set_matchers``): the
  next request sees it, as in HAProxy. A reload starts again from the files.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lb.match import pattern

_UIDS = itertools.count(0x10000)  # entry ids: unique in the process


@dataclass(eq=False)
class Entry:
    uid: int
    text: str  # the pattern, or a map entry's key
    value: str | None = None  # a map entry's value (None in a one-column list)
    line: int = 0  # its line in the file it came from (0: added at run time)

    def shown(self) -> str:
        """The entry as `show acl/map` prints it after its id."""
        return self.text if self.value is None else f"{self.text} {self.value}"


class ColumnsError(Exception):
    """A file used both as a pattern list and as a map."""


@dataclass(eq=False)
class PatternRef:
    ref_id: int
    file: str  # the -f path as written; "" for an acl line's own patterns
    users: list[str] = field(default_factory=list)  # "acl at file 'x.cfg' line 10"
    criterion: str = ""  # inline references: the fetch keyword (`acl 'src' ...`)
    origin: tuple[str, int] = ("", 0)
    entries: list[Entry] = field(default_factory=list)
    exprs: list[Any] = field(default_factory=list)  # AclExpr objects using this list
    version: int = 0  # changes made at run time (a master pushes changed lists)
    two_column: bool = False  # a map: entries have values
    is_acl: bool = True  # listed by `show acl` (an ACL uses it)
    is_map: bool = False  # listed by `show map` (a map converter or `acl -M` uses it)
    views: dict[tuple[str, str], Any] = field(default_factory=dict)  # maps.MapView

    def description(self) -> str:
        if self.file:
            return (f"pattern loaded from file '{self.file}' used by "
                    + ", by ".join(self.users))
        return f"acl '{self.criterion}' file '{self.origin[0]}' line {self.origin[1]}"

    def add_entries(self, texts: list[str]) -> None:
        self.entries.extend(Entry(next(_UIDS), t) for t in texts)

    def add_pairs(self, rows: list[tuple[str, str, int]]) -> None:
        self.entries.extend(Entry(next(_UIDS), k, v, n) for k, v, n in rows)


class PatternRefs:
    """Every reference of one configuration, in id order (built while parsing)."""

    def __init__(self) -> None:
        self.refs: list[PatternRef] = []
        self._files: dict[str, PatternRef] = {}

    def __iter__(self) -> Iterator[PatternRef]:
        return iter(self.refs)

    def __len__(self) -> int:
        return len(self.refs)

    def file_ref(self, path: str, texts: list[str], user: str) -> PatternRef:
        """The one-column list of an ``acl -f`` file (``ColumnsError`` for a map's)."""
        ref = self._files.get(path)
        if ref is None:
            ref = PatternRef(len(self.refs), path)
            ref.add_entries(texts)
            self.refs.append(ref)
            self._files[path] = ref
        elif ref.two_column:
            raise ColumnsError(f'The file "{path}" is already used as two column file '
                               "and cannot be used by as one column file.")
        ref.users.append(user)
        return ref

    def map_ref(self, path: str, rows: list[tuple[str, str, int]], user: str,
                acl: bool = False) -> PatternRef:
        """The two-column list of a map file: a converter's, or an ``acl -M``'s.
        (The caller checks that an existing list for ``path`` is two-column.)"""
        ref = self._files.get(path)
        if ref is None:
            ref = PatternRef(len(self.refs), path, two_column=True, is_acl=acl,
                             is_map=True)
            ref.add_pairs(rows)
            self.refs.append(ref)
            self._files[path] = ref
        if user:
            ref.users.append(user)
        ref.is_acl = ref.is_acl or acl
        return ref

    def find_file(self, path: str) -> PatternRef | None:
        return self._files.get(path)

    def inline_ref(self, criterion: str, origin: tuple[str, int], texts: list[str]
                   ) -> PatternRef:
        ref = PatternRef(len(self.refs), "", criterion=criterion, origin=origin)
        ref.add_entries(texts)
        self.refs.append(ref)
        return ref

    def find(self, ident: str) -> PatternRef | None:
        """``#<id>`` or a file name, as the CLI names a reference."""
        if ident.startswith("#"):
            num = ident[1:]
            if num.isdigit() and int(num) < len(self.refs):
                return self.refs[int(num)]
            return None
        return self._files.get(ident)


# ----------------------------------------------------------------- changing a list


def check_pattern(ref: PatternRef, text: str, value: str | None = None) -> str | None:
    """HAProxy's complaint about ``text`` (and a map entry's ``value``) for this
    list's users, or None. The pattern is compiled too (a regex that does not compile
    never enters the list)."""
    for expr in ref.exprs:
        try:
            pattern.compile_patterns(expr.method, [parse_for(expr, text)], False)
        except pattern.PatternError as exc:
            return str(exc)
    for view in ref.views.values():
        err = view.check(text, value or "")
        if err is not None:
            return err
    return None


def parse_for(expr: Any, text: str) -> Any:
    mm = pattern.MATCH_METHODS[expr.method]
    if mm.ranges:
        return pattern.apply_operator("eq", text)
    return mm.parse(text)


def add(ref: PatternRef, text: str, value: str | None = None) -> str | None:
    """`add acl` / `add map`: HAProxy's complaint, or None once added and in use."""
    err = check_pattern(ref, text, value)
    if err is not None:
        return err
    ref.entries.append(Entry(next(_UIDS), text, value))
    changed(ref)
    return None


def from_traffic(ref: PatternRef, op: str, key: str, value: str | None) -> None:
    """The `add-acl`, `del-acl`, `set-map` and `del-map` actions (HAProxy 2.6.12):
    add a key not there yet, delete every entry of a key, or give a key a value
    (added when missing). A key or value the list cannot take is left out silently;
    every change recompiles the list's matchers, so the next request sees it."""
    if op.startswith("del"):
        delete(ref, key, ids=False)
        return
    if any(e.text == key for e in ref.entries):
        if op == "set-map" and value is not None:
            set_value(ref, key, value, ids=False)
        return
    add(ref, key, value if op == "set-map" else ("" if ref.two_column else None))


def set_value(ref: PatternRef, key: str, value: str, ids: bool = True) -> str | None:
    """`set map`: give every entry written ``key`` (or the entry ``#<id>``) a new
    value; HAProxy's complaint when there is none, or when a map using the list
    cannot read the value (HAProxy takes such a value silently; lb refuses it)."""
    if ids and key.startswith("#"):
        try:
            uid = int(key[1:], 0)
        except ValueError:
            return "key or pattern not found"
        hits = [e for e in ref.entries if e.uid == uid]
        if not hits:
            return "key or pattern not found"
    else:
        hits = [e for e in ref.entries if e.text == key]
        if not hits:
            return "entry not found"
    for view in ref.views.values():
        err = view.check_value(value)
        if err is not None:
            return err
    for e in hits:
        e.value = value
    changed(ref)
    return None


def delete(ref: PatternRef, key: str, ids: bool = True) -> bool:
    """`del acl` / `del map`: every entry written ``key``, or the one entry ``#<id>``
    (``ids``; the `del-acl`/`del-map` actions take every key as written)."""
    if ids and key.startswith("#"):
        try:
            uid = int(key[1:], 0)
        except ValueError:
            return False
        keep = [e for e in ref.entries if e.uid != uid]
    else:
        keep = [e for e in ref.entries if e.text != key]
    if len(keep) == len(ref.entries):
        return False
    ref.entries = keep
    changed(ref)
    return True


def clear(ref: PatternRef) -> None:
    ref.entries = []
    changed(ref)


def replace_entries(ref: PatternRef, version: int,
                    entries: list[tuple[int, str, str | None]]) -> bool:
    """A worker taking its master's copy of a list; True when it changed."""
    if version == ref.version:
        return False
    ref.entries = [Entry(uid, text, value) for uid, text, value in entries]
    ref.version = version
    recompile(ref)
    return True


def changed(ref: PatternRef) -> None:
    ref.version += 1
    recompile(ref)


def recompile(ref: PatternRef) -> None:
    """Rebuild the matchers of every expression and map view using ``ref``."""
    for expr in ref.exprs:
        rebuild(expr)
    for view in ref.views.values():
        view.rebuild()


def rebuild(expr: Any) -> None:
    groups: dict[bool, list[Any]] = {}
    for lst, icase in expr.refs:
        for e in lst.entries:
            try:
                groups.setdefault(icase, []).append(parse_for(expr, e.text))
            except pattern.PatternError:
                continue  # checked when added; a file's bad line failed the load
    if expr.method == "bool":
        matchers = (pattern.compile_patterns("bool", [], False),)
    else:
        matchers = tuple(pattern.compile_patterns(expr.method, pats, ic)
                         for ic, pats in groups.items())
    expr.set_matchers(matchers)


@dataclass
class Lookup:
    """One line of `get acl` / `get map`: how one user of a list sees a value."""

    method: str
    icase: bool
    tree: bool
    entry: Entry | None
    value: Any = None  # a map view's value for the entry (None: an ACL)
    out: str = ""  # a map view's output type


def lookup_all(ref: PatternRef, value: str) -> list[Lookup]:
    """`get acl` / `get map`: what each distinct user of ``ref`` finds for ``value``
    (HAProxy shares one index between the ACLs using a list with the same method and
    case, so those give one line); the value is read as each method's kind of sample."""
    out: list[Lookup] = []
    seen: set[tuple[str, bool]] = set()
    for expr in ref.exprs:
        icase = next((ic for lst, ic in expr.refs if lst is ref), False)
        if (expr.method, icase) in seen:
            continue
        seen.add((expr.method, icase))
        tree = expr.method == "ip" or (expr.method in ("str", "beg") and not icase)
        out.append(Lookup(expr.method, icase, tree, _first_match(ref, expr, icase, value)))
    for view in ref.views.values():
        sample = _sample(pattern.MATCH_METHODS[
            "reg" if view.method == "regm" else view.method].kind, value)
        hit = view.find(sample) if sample is not None else None
        entry, found = (None, None) if hit is None else hit
        if view.method == "regm" and found is not None:
            found = found[1]
        out.append(Lookup(view.method, False, view.tree, entry, found, view.out))
    if not out:
        out.append(Lookup("str", False, False, None))
    return out


def _first_match(ref: PatternRef, expr: Any, icase: bool, value: str) -> Entry | None:
    sample = _sample(pattern.MATCH_METHODS[expr.method].kind, value)
    if sample is None:
        return None
    for e in ref.entries:
        try:
            one = pattern.compile_patterns(expr.method, [parse_for(expr, e.text)], icase)
        except pattern.PatternError:
            continue
        if one.match(sample):
            return e
    return None


def _sample(kind: str, value: str) -> Any:
    if kind == pattern.K_INT:
        try:
            return int(value)
        except ValueError:
            return None
    if kind == pattern.K_IP:
        try:
            return ipaddress.ip_address(value)
        except ValueError:
            return None
    return value.encode("utf-8", "surrogateescape")
