"""Resolving the proxy and server names that sample fetches take.

Owns the check HAProxy makes once the whole configuration is read (its
``smp_resolve_args``): every ``nbsrv(<backend>)``, ``fe_conn(<frontend>)``,
``srv_is_up(<backend>/<server>)``, ``sc_http_req_rate(0,<table>)``... must name a
proxy with the right capability (or a stick table),
and one given no name needs the statement's own proxy to have it. The
references are gathered while each statement is parsed
(``lb.match.sample.collecting_refs``); the messages and the way the statement
is named in them are HAProxy 2.6.12's, read from its ``-c`` output
(tests/test_procfetch.py compares them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass

from lb.config.lexer import Line
from lb.config.registry import ParseCtx, ProxyBuilder
from lb.match import sample

# How HAProxy names the statement a sample expression sits in, by its first word
# (ACL criteria are named "ACL keyword" instead; see ``_where``).
_WHERE = {
    "http-request": "http-request expression",
    "http-response": "http-response response",
    "http-after-response": "http-response response",
    "log-format": "log-format string",
    "log-format-sd": "log-format-sd string",
    "unique-id-format": "unique-id-format string",
    "use_backend": "use_backend expression",
    "balance": "use-server or balance expression",
    "use-server": "use-server or balance expression",
    "stick": "stick rule",
    "stick-store": "stick rule",
}
# actions whose expression HAProxy parses as an ACL criterion, or as a redirect
_ACL_LIKE_ACTIONS = frozenset(("capture",))
_REDIRECT_ACTIONS = frozenset(("redirect",))


@dataclass(frozen=True, slots=True)
class PendingRef:
    """A reference met in a statement, waiting for every proxy to be known."""

    ref: sample.ProxyRef
    line: Line
    proxy: ProxyBuilder


def _where(ref: sample.ProxyRef, line: Line) -> str:
    """How the argument is named: "arg 1 of <keyword kind> '<kw>' [in <statement>]"."""
    words = line.words
    action = words[1] if len(words) > 1 else ""
    arg = (f"arg {ref.argno} of conversion keyword '{ref.conv}' for" if ref.conv else
           f"arg {ref.argno} of")
    if ref.acl or (words[0] in ("http-request", "http-response")
                   and action in _ACL_LIKE_ACTIONS):
        return f"{arg} ACL keyword '{ref.fetch}'"
    if words[0] in ("http-request", "http-response") and action in _REDIRECT_ACTIONS:
        statement = "redirect format string"
    elif words[0] in ("tcp-request", "tcp-response") and action:
        statement = f"{words[0]} {action} expression"
    else:
        statement = _WHERE.get(words[0], f"{words[0]} expression")
    return f"{arg} sample fetch keyword '{ref.fetch}' in {statement}"


def _problem(ref: sample.ProxyRef, owner: ProxyBuilder,
             proxies: Mapping[str, Sequence[ProxyBuilder]], where: str) -> str | None:
    """What is wrong with the reference (HAProxy's text, without the final period);
    ``where`` names the argument and the statement's proxy."""

    def find(name: str, cap: str) -> ProxyBuilder | None:
        return next((p for p in proxies.get(name, ()) if cap in p.caps), None)

    if ref.kind == sample.A_SRV:
        if ref.server is None:
            return f"missing server name in {where}"
        if ref.proxy is None:
            target = owner
        else:
            found = find(ref.proxy, "backend")
            if found is None:
                return f"unable to find proxy '{ref.proxy}' referenced in {where}"
            target = found
        if not any(s.name == ref.server for s in target.servers):
            return (f"unable to find server '{ref.server}' in proxy '{target.name}', "
                    f"referenced in {where}")
        return None
    if ref.kind == sample.A_TBL:
        name = owner.name if ref.proxy is None else ref.proxy
        if not any(p.stick_table is not None for p in proxies.get(name, ())):
            return f"unable to find table '{name}' referenced in {where}"
        return None
    cap = "backend" if ref.kind == sample.A_BE else "frontend"
    if ref.proxy is None:
        if cap not in owner.caps:
            return f"proxy '{owner.name}', referenced in {where}, has not {cap} capability"
        return None
    if find(ref.proxy, cap) is None:
        return f"unable to find {cap} '{ref.proxy}' referenced in {where}"
    return None


def resolve(pending: Sequence[PendingRef], proxies: Sequence[ProxyBuilder],
            ctx: ParseCtx, userlists: Set[str] = frozenset()) -> None:
    """Alert every reference that names nothing usable, as one message (HAProxy
    gathers several under "multiple argument resolution errors:")."""
    by_name: dict[str, list[ProxyBuilder]] = {}
    for p in proxies:
        if p.kind != "defaults":
            by_name.setdefault(p.name, []).append(p)
    errors: list[str] = []
    for item in pending:
        if item.proxy.kind == "defaults":
            continue  # resolved in each proxy that uses the section, as HAProxy does
        where = f"{_where(item.ref, item.line)} in proxy '{item.proxy.name}'"
        if item.ref.kind == sample.A_USR:
            name = item.ref.proxy or ""
            text = (None if name in userlists else
                    f"unable to find userlist '{name}' referenced in {where}")
        else:
            text = _problem(item.ref, item.proxy, by_name, where)
        if text is None:
            continue
        errors.append(f"parsing [{item.line.file}:{item.line.lineno}]: {text}.")
    if len(errors) == 1:
        ctx.alert(None, errors[0], "unknown-proxy-ref", style="plain")
    elif errors:
        ctx.alert(None, "multiple argument resolution errors:", "unknown-proxy-ref",
                  style="plain", more=tuple("        " + e for e in errors))
