"""`stick-table` and `stick on|match|store-request|store-response`: parsing.

Owns: the two keyword handlers (HAProxy 2.6's texts) and the check, after the parse,
that every rule names a table that exists. The tables live in lb.sticktable and the
rules run in lb.proxy.stick (docs/balancing.md, "Stick tables").
"""

from __future__ import annotations

from typing import Any

import lb.config.model as m
from lb.config.lexer import Line
from lb.config.registry import ParseCtx, ProxyBuilder, origin
from lb.match import acl as acl_mod
from lb.match import sample as sample_mod
from lb.sticktable import ARRAY_TYPES, DATA_TYPES, KEY_TYPES
from lb.units import UnitError, atoi, junk_warning, parse_size, parse_time, parse_time_ms

STICK_KINDS = {"on": "on", "match": "match", "store-request": "store-request",
               "store-response": "store-response"}


def kw_stick_table(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    words = line.words
    if p.stick_table is not None:
        ctx.alert(line, f"stick-table name '{p.name}' conflicts with table declared in "
                  f"{p.kind} '{p.name}' at {p.stick_table.origin}.", "duplicate")
        return
    kind = ""
    size = 0
    key_len = 0
    expire: float | None = None
    nopurge = False
    kept: dict[str, int | None] = {}  # the data types kept (name -> rate period)
    arrays: dict[str, tuple[int, int | None]] = {}  # gpc(n)...: name -> (n, rate period)
    i = 1
    while i < len(words):
        w = words[i]
        arg = words[i + 1] if i + 1 < len(words) else ""
        if w == "type":
            if arg not in KEY_TYPES:
                ctx.alert(line, f"stick-table: unknown type '{arg}'.", "bad-argument",
                          col=line.col(i + 1) if arg else 0)
                return
            kind = arg
            key_len = KEY_TYPES[arg]
            i += 2
            if kind in ("string", "binary") and i < len(words) and words[i] == "len":
                n = words[i + 1] if i + 1 < len(words) else ""
                if not n.isdigit() or int(n) <= 0:
                    ctx.alert(line, f"stick-table: unknown type '{n}'.", "bad-argument")
                    return
                key_len = int(n)
                i += 2
            continue
        if w == "size":
            try:
                size = parse_size(arg, "size")
            except UnitError:
                ctx.alert(line, f"stick-table: unexpected character '{(arg or ' ')[0]}' in "
                          "argument of 'size'.", "bad-argument")
                return
        elif w == "expire":
            try:
                expire = parse_time(arg, "expire")
            except UnitError as exc:
                bad = exc.char if getattr(exc, "char", None) else (arg or " ")[0]
                ctx.alert(line, f"stick-table: unexpected character '{bad}' in argument "
                          "of 'expire'.", "bad-argument")
                return
        elif w == "store":
            for name, inner, closed in _store_items(arg):
                if not closed:
                    ctx.alert(line, "stick-table: missing closing parenthesis after store "
                              f"option '{name}'.", "bad-argument")
                    return
                if not _store_option(name, inner, kept, arrays, line, ctx):
                    return
            clash = _array_clash(kept, arrays)
            if clash:
                ctx.alert(line, f"stick-table: {clash}", "bad-argument")
                return
        elif w == "nopurge":
            nopurge = True
            i += 1
            continue
        elif w == "peers":
            ctx.alert(None, f"Proxy '{p.name}': unable to find sync peers '{arg}'.",
                      "unknown-peers", style="plain", phase="check")
            return
        else:
            ctx.alert(line, f"stick-table: unknown argument '{w}'.", "bad-argument",
                      col=line.col(i))
            return
        i += 2
    if not kind:
        ctx.alert(line, "stick-table: missing type.",
                  "missing-argument")
        return
    if not size:
        ctx.alert(line, "stick-table: missing size.", "missing-argument")
        return
    p.stick_table = m.StickTableSpec(kind, size, key_len, expire, nopurge, origin(line),
                                     tuple(kept.items()),
                                     tuple((k, n, per) for k, (n, per) in arrays.items()))


# what every table keeps for `stick on` (not a stored data type of lb's)
_NOT_KEPT = frozenset(("server_id", "server_key", "server_name"))
# The arrays of HAProxy 2.5+ (`gpc(<n>)`, `gpt(<n>)`, `gpc_rate(<n>,<period>)`), at
# most this many elements, and the legacy types each one excludes from the same table.
ARRAY_MAX = 100
_ARRAY_CLASHES = (
    ("gpt", ("gpt0",), "'gpt' and 'gpt0' in a same table is not permitted as 'gpt' "
     "overrides 'gpt0'."),
    ("gpc", ("gpc0", "gpc1"), "'gpc' and 'gpc[0/1]' in a same table is not permitted as "
     "'gpc' overrides 'gpc[0/1]'."),
    ("gpc_rate", ("gpc0_rate", "gpc1_rate"), "'gpc_rate' and 'gpc[0/1]_rate' in a same "
     "table is not permitted as 'gpc_rate' overrides 'gpc[0/1]_rate'."),
)


def _store_items(text: str) -> list[tuple[str, str | None, bool]]:
    """The comma-separated `store` list as (name, text between its parentheses or None,
    closed), HAProxy's way: a comma inside parentheses does not separate, anything
    between ')' and the next comma is skipped but another '(' (whose text replaces
    the first's), and reading stops at an item whose '(' has no ')' (returned with
    closed False)."""
    items: list[tuple[str, str | None, bool]] = []
    i, n = 0, len(text)
    while i < n:
        start, name_end, inner = i, -1, None
        while i < n and text[i] != ",":
            if text[i] == "(":  # (the name ends at the first; the last one is read)
                if name_end < 0:
                    name_end = i
                close = text.find(")", i + 1)
                if close < 0:
                    items.append((text[start:name_end], None, False))
                    return items
                inner, i = text[i + 1:close], close
            i += 1
        items.append((text[start:name_end if name_end >= 0 else i], inner, True))
        i += 1
    return items


def _store_period(name: str, text: str, line: Line, ctx: ParseCtx) -> int | None:
    """A rate's period in ms (HAProxy's timer syntax, junk after the unit warned about);
    None after the alert for a bad one."""
    try:
        ms, junk = parse_time_ms(text, "store")
    except UnitError:
        ctx.alert(line, f"stick-table: error when processing store option '{name}'.",
                  "bad-argument")
        return None
    if junk:
        ctx.warn(line, junk_warning(text, junk), "time-junk", style="plain")
    return ms


def _store_option(name: str, inner: str | None, kept: dict[str, int | None],
                  arrays: dict[str, tuple[int, int | None]], line: Line,
                  ctx: ParseCtx) -> bool:
    """One `store` data type (HAProxy's texts and order of checks); False after a
    fatal error."""
    kind = DATA_TYPES.get(name)
    if kind is None and name not in _NOT_KEPT and name not in ARRAY_TYPES:
        ctx.alert(line, f"stick-table: unknown store option '{name}'.", "bad-argument")
        return False
    if name in kept or name in arrays:
        ctx.warn(line, f"stick-table: store option '{name}' already enabled, ignored.",
                 "duplicate", style="tight")
        return True

    def refuse(why: str) -> bool:
        ctx.alert(line, f"stick-table: {why} store option '{name}'.", "bad-argument")
        return False

    if name in ARRAY_TYPES:
        if inner is None:
            return refuse("missing argument to")
        size_text, comma, period_text = inner.partition(",")
        size = atoi(size_text)
        if not 1 <= size <= ARRAY_MAX:
            return refuse(f"array size is out of allowed range (1-{ARRAY_MAX}) for")
        period: int | None = None
        if name == "gpc_rate":
            if not comma:
                return refuse("missing argument to")
            period = _store_period(name, period_text.split(",")[0], line, ctx)
            if period is None:
                return False
        elif comma:
            return refuse("unexpected argument to")
        arrays[name] = (size, period)
        return True
    is_rate = kind == "rate"
    if is_rate and inner is None:
        return refuse("missing argument to")
    if not is_rate and inner is not None:
        return refuse("unexpected argument to")
    if name in _NOT_KEPT:
        return True  # what `stick on` keeps anyway
    period = None
    if inner is not None:
        period = _store_period(name, inner.split(",")[0], line, ctx)
        if period is None:
            return False
    kept[name] = period
    return True


def _array_clash(kept: dict[str, int | None], arrays: dict[str, Any]) -> str:
    """HAProxy's refusal of an array beside the legacy types it replaces, or ""."""
    for array, legacy, text in _ARRAY_CLASHES:
        if array in arrays and any(t in kept for t in legacy):
            return f"simultaneous usage of {text}"
    return ""


def kw_stick(p: ProxyBuilder, line: Line, ctx: ParseCtx) -> None:
    words = line.words
    kind = STICK_KINDS.get(words[1] if len(words) > 1 else "")
    if kind is None:
        ctx.alert(line, "'stick' expects 'on', 'match', or 'store'.", "bad-argument")
        return
    if len(words) < 3:
        ctx.alert(line, "'stick' expects a fetch method.", "missing-argument")
        return
    text = words[2]
    try:
        expr = sample_mod.parse_expr(text)
    except sample_mod.SampleError as exc:
        ctx.alert(line, f"'stick': {exc}", "bad-sample", col=line.col(2))
        return
    step = sample_mod.W_RES if kind == "store-response" else sample_mod.W_REQ
    where = expr.where
    if step not in where and sample_mod.W_CONN not in where:
        needs = sample_mod.NEEDS_TEXT.get(next(iter(where), ""), "")
        during = "response" if kind == "store-response" else "request"
        ctx.alert(line, f"'stick': fetch method '{expr.fetch_def.name}' extracts "
                  f"information from '{needs}', none of which is available during "
                  f"{during}.", "bad-sample", col=line.col(2))
        return
    i = 3
    table: str | None = None
    if i < len(words) and words[i] == "table":
        table = words[i + 1] if i + 1 < len(words) else ""
        i += 2
    cond: Any = None
    cond_text = ""
    if i < len(words) and words[i] in ("if", "unless"):
        def lookup(name: str) -> Any:
            ent = p.acls.get(name)
            return ent.acl if ent else None

        try:
            cond, _warns = acl_mod.compile_condition(
                words[i], list(words[i + 1:]), lookup, base_dir=ctx.base_dir,
                refs=ctx.pattern_refs, origin=(line.file, line.lineno))
        except acl_mod.AclError as exc:
            ctx.alert(line, f"'stick': error detected while parsing sticking condition : "
                      f"{str(exc).rstrip('.')}.", "bad-condition", col=line.col(i))
            return
        cond_text = " ".join(words[i:])
    elif i < len(words):
        ctx.alert(line, f"'stick': unexpected argument '{words[i]}'.", "bad-argument",
                  col=line.col(i))
        return
    p.stick_rules.append(m.StickRule(kind, text, table, cond, cond_text,  # type: ignore[arg-type]
                                     origin(line)))


def check_tables(proxies: dict[str, Any], ctx: ParseCtx, nbthread: int) -> None:
    """Every stick rule names an existing table (its own proxy's by default). With
    several workers, say that each keeps its own tables."""
    for p in proxies.values():
        if p.stick_rules and nbthread > 1:
            ctx.warn(None, f"Proxy '{p.name}': lb runs 'nbthread {nbthread}' as "
                     f"{nbthread} worker processes, each with its own stick tables: a "
                     "client whose next connection reaches another worker may go to "
                     "another server. Cookie persistence has no such limit.",
                     "stick-per-worker", style="plain")
        for rule in p.stick_rules:
            name = rule.table or p.name
            target = proxies.get(name)
            if target is None or target.stick_table is None:
                ctx.alert(None, f"Proxy '{p.name}': unable to find stick-table '{name}'.",
                          "unknown-table", style="plain", phase="check")
                break
        for rules in (p.tcp_request_connection_rules, p.tcp_request_session_rules,
                      p.tcp_request_content_rules,
                      p.http_request_rules, p.http_response_rules):
            for r in rules:
                a = r.action
                if not isinstance(a, m.ActTrackSc):
                    continue
                name = a.table or p.name
                target = proxies.get(name)
                if target is None or target.stick_table is None:
                    ctx.alert(None, f"Proxy '{p.name}': unable to find table '{name}' "
                              f"referenced by track-sc{a.slot}.", "unknown-table",
                              style="plain", phase="check")
