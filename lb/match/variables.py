"""Variables (`set-var`, `unset-var`, `var()`), with HAProxy's scopes.

Owns: the variable name rules and HAProxy 2.6.12's texts for bad names, the set-var
conditions, where each scope's values live, and how a process-wide variable is shown
by the CLI (`get var`).

A name is ``<scope>.<name>`` and is kept whole as the key of its scope's dict:

- ``proc``: the whole process (``ProcVars``, held by ``lb.state.State``), set by the
  global `set-var`, by rules, and by the CLI's `set var`;
- ``sess``: the client connection (``sess_vars`` of the connection), so it outlives
  the requests of a keep-alive connection;
- ``txn``: the transaction (the context's ``vars``);
- ``req`` and ``res``: also the transaction's ``vars``, but what the request side
  set is dropped when the response starts (``response_started``), as HAProxy does;
- ``check``: a health check's own (the context's ``vars`` here).

Values keep their type (bytes, int, bool, an IP address), as HAProxy's samples do.

Must not import: lb.config, lb.proxy, lb.cli.
"""

from __future__ import annotations

import ipaddress
from typing import Any

SCOPES = ("proc", "sess", "txn", "req", "res", "check")
_PREFIXES = tuple(s + "." for s in SCOPES)
CONDITIONS = frozenset(("ifexists", "ifnotexists", "ifempty", "ifnotempty", "ifset",
                        "ifnotset", "ifgt", "iflt"))
_NAME_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.")

EMPTY_NAME = "Empty variable name cannot be accepted"


def bad_scope(name: str) -> str:
    return (f"invalid variable name '{name}'. A variable name must be start by its scope. "
            "The scope can be 'proc', 'sess', 'txn', 'req', 'res' or 'check'")


def name_error(name: str, tail: str = "") -> str | None:
    """HAProxy's reason for refusing a variable name, None when it is valid.
    ``tail``: what follows the name in its word (an action's ``,cond)``), which
    HAProxy prints with the rest of the name from the first bad character."""
    if not name:
        return EMPTY_NAME
    scope, dot, rest = name.partition(".")
    if not dot or scope not in SCOPES or not rest:
        return bad_scope(name)
    raw = rest.encode("utf-8", "surrogateescape")
    for i, c in enumerate(raw):
        if c not in _NAME_CHARS:
            return f"invalid syntax at char '{raw[i:].decode('utf-8', 'surrogateescape')}{tail}'"
    return None


def valid(name: str) -> bool:
    return name_error(name) is None


# ------------------------------------------------------------------ the stores


class ProcVars:
    """The process-wide variables: values, and the HAProxy type of each (for the
    CLI; a value's Python type cannot tell str from bin or meth)."""

    __slots__ = ("values", "types")

    def __init__(self, initial: tuple[tuple[str, Any, str], ...] = ()) -> None:
        self.values: dict[str, Any] = {}
        self.types: dict[str, str] = {}
        for name, value, kind in initial:
            self.values[name] = value
            self.types[name] = kind

    def rows(self, only: str | None = None) -> list[list[Any]]:
        """The variables as JSON rows ``[name, type, tag, value]`` (for the master and
        its workers): bytes as latin-1 text (tag "b"), addresses as text ("ip")."""
        out: list[list[Any]] = []
        for name, v in self.values.items():
            if only is not None and name != only:
                continue
            kind = self.types.get(name, "")
            if isinstance(v, bytes):
                out.append([name, kind, "b", v.decode("latin-1")])
            elif isinstance(v, ipaddress.IPv4Address | ipaddress.IPv6Address):
                out.append([name, kind, "ip", str(v)])
            else:
                out.append([name, kind, "n", v])
        return out

    def load(self, rows: Any, replace: bool = False) -> None:
        """Take rows made by ``rows()``: set those variables (all of them, with
        ``replace``); a malformed row is skipped."""
        if replace:
            self.values.clear()
            self.types.clear()
        for row in rows:
            try:
                name, kind, tag, raw = row
                value = (raw.encode("latin-1") if tag == "b" else
                         ipaddress.ip_address(raw) if tag == "ip" else raw)
            except (TypeError, ValueError, AttributeError):
                continue
            if isinstance(name, str) and isinstance(value, bytes | int | ipaddress.IPv4Address
                                                    | ipaddress.IPv6Address):
                self.values[name] = value
                self.types[name] = str(kind)


def _proc(ctx: Any) -> ProcVars | None:
    rt = getattr(ctx, "rt", None)
    if rt is not None:
        return rt.state.proc_vars  # type: ignore[no-any-return]
    return getattr(ctx, "proc_vars", None)


def _store(ctx: Any, name: str, create: bool) -> dict[str, Any] | None:
    """The dict that holds ``name`` for this context (None: nothing stored yet)."""
    c = name[:1]
    if c == "s":  # sess
        conn = getattr(ctx, "conn", None)
        if conn is None:
            return ctx.vars  # type: ignore[no-any-return]
        store = conn.sess_vars
        if store is None and create:
            store = conn.sess_vars = {}
        return store  # type: ignore[no-any-return]
    if c == "p":  # proc
        proc = _proc(ctx)
        return ctx.vars if proc is None else proc.values  # type: ignore[no-any-return]
    return ctx.vars  # type: ignore[no-any-return]


def get(ctx: Any, name: str) -> Any:
    """The variable's value, None when it is not set."""
    store = _store(ctx, name, False)
    return None if store is None else store.get(name)


def unset(ctx: Any, name: str) -> None:
    store = _store(ctx, name, False)
    if store is not None and store.pop(name, None) is not None and name[:1] == "p":
        proc = _proc(ctx)
        if proc is not None:
            proc.types.pop(name, None)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def allowed(old: Any, new: Any, conds: tuple[str, ...]) -> bool:
    """Whether set-var's conditions let ``new`` replace ``old`` (None: not set)."""
    for cond in conds:
        if cond in ("ifexists", "ifset"):
            if old is None:
                return False
        elif cond in ("ifnotexists", "ifnotset"):
            if old is not None:
                return False
        elif cond == "ifempty":
            if new not in (b"", ""):
                return False
        elif cond == "ifnotempty":
            if new in (b"", ""):
                return False
        elif cond in ("ifgt", "iflt"):  # the variable greater (less) than the value;
            # HAProxy compares only two integers: a missing variable, a string or a
            # boolean on either side lets the value through
            if _is_int(old) and _is_int(new) and (old <= new if cond == "ifgt"
                                                  else old >= new):
                return False
    return True


def assign(ctx: Any, name: str, value: Any, conds: tuple[str, ...] = (),
           kind: str = "") -> None:
    """Set the variable when its conditions hold. ``kind``: the HAProxy type of a
    bytes value ("str", "bin" or "meth"), kept for process-wide variables."""
    store = _store(ctx, name, True)
    if store is None:
        return
    if conds and not allowed(store.get(name), value, conds):
        return
    store[name] = value
    if name[:1] == "p":
        proc = _proc(ctx)
        if proc is not None:
            proc.types[name] = type_name(value, kind)


def response_started(txn_vars: dict[str, Any]) -> None:
    """The request side's ``req.``/``res.`` variables end when the response starts."""
    for k in [k for k in txn_vars if k[:4] in ("req.", "res.")]:
        del txn_vars[k]


# ------------------------------------------------------------------ the CLI's view


def type_name(value: Any, kind: str = "") -> str:
    """HAProxy's name of a sample type (`get var`)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "sint"
    if isinstance(value, ipaddress.IPv4Address):
        return "ipv4"
    if isinstance(value, ipaddress.IPv6Address):
        return "ipv6"
    return kind if kind in ("bin", "meth") else "str"


def shown(value: Any) -> str:
    """The value as `get var` prints it between ``<`` and ``>``."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)
