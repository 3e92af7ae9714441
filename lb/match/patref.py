"""Pattern references: the ACL pattern lists the stats socket can change at run time.

Owns: HAProxy's pattern references as `show/get/add/del/clear acl` see them, and the
recompiling of the matchers of every ACL expression that uses a changed list.

- A ``-f <file>`` list is one reference, shared by every ACL expression that loads
  the same file; an ``acl`` line (or an anonymous ``{ ... }`` ACL) has one reference
  of its own for its inline patterns, even when it has none. Ids are given in the
  order HAProxy gives them: as the configuration is read, a line's files first.
- An entry is the pattern text as written, with a unique id (``show acl`` prints it
  as HAProxy prints its entry addresses, ``0x...``; ``del acl <acl> #<id>`` takes it).
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
    text: str


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

    def description(self) -> str:
        if self.file:
            return (f"pattern loaded from file '{self.file}' used by "
                    + ", by ".join(self.users))
        return f"acl '{self.criterion}' file '{self.origin[0]}' line {self.origin[1]}"

    def add_entries(self, texts: list[str]) -> None:
        self.entries.extend(Entry(next(_UIDS), t) for t in texts)


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
        ref = self._files.get(path)
        if ref is None:
            ref = PatternRef(len(self.refs), path)
            ref.add_entries(texts)
            self.refs.append(ref)
            self._files[path] = ref
        ref.users.append(user)
        return ref

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


def check_pattern(ref: PatternRef, text: str) -> str | None:
    """HAProxy's complaint about ``text`` for this list's users, or None. The pattern
    is compiled too (a regex that does not compile never enters the list)."""
    for expr in ref.exprs:
        try:
            pattern.compile_patterns(expr.method, [parse_for(expr, text)], False)
        except pattern.PatternError as exc:
            return str(exc)
    return None


def parse_for(expr: Any, text: str) -> Any:
    mm = pattern.MATCH_METHODS[expr.method]
    if mm.ranges:
        return pattern.apply_operator("eq", text)
    return mm.parse(text)


def add(ref: PatternRef, text: str) -> str | None:
    """`add acl`: HAProxy's complaint, or None once added and in use."""
    err = check_pattern(ref, text)
    if err is not None:
        return err
    ref.add_entries([text])
    changed(ref)
    return None


def delete(ref: PatternRef, key: str) -> bool:
    """`del acl`: every entry written ``key``, or the one entry ``#<id>``."""
    if key.startswith("#"):
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


def replace_entries(ref: PatternRef, version: int, entries: list[tuple[int, str]]) -> bool:
    """A worker taking its master's copy of a list; True when it changed."""
    if version == ref.version:
        return False
    ref.entries = [Entry(uid, text) for uid, text in entries]
    ref.version = version
    recompile(ref)
    return True


def changed(ref: PatternRef) -> None:
    ref.version += 1
    recompile(ref)


def recompile(ref: PatternRef) -> None:
    """Rebuild the matchers of every expression using ``ref``."""
    for expr in ref.exprs:
        rebuild(expr)


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


def lookup(ref: PatternRef, value: str) -> tuple[str, str, Entry | None]:
    """`get acl`: (method, case, first matching entry) as the first expression using
    ``ref`` sees it; the value is read as that method's kind of sample."""
    if not ref.exprs:
        return "str", "sensitive", None
    expr = ref.exprs[0]
    icase = next((ic for lst, ic in expr.refs if lst is ref), False)
    case = "insensitive" if icase else "sensitive"
    sample = _sample(pattern.MATCH_METHODS[expr.method].kind, value)
    if sample is None:
        return expr.method, case, None
    for e in ref.entries:
        try:
            one = pattern.compile_patterns(expr.method, [parse_for(expr, e.text)], icase)
        except pattern.PatternError:
            continue
        if one.match(sample):
            return expr.method, case, e
    return expr.method, case, None


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
