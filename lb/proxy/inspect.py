"""`tcp-request content` rules that wait for the client's first bytes (`mode tcp` with
`tcp-request inspect-delay`), as HAProxy runs them.

Owns: the three-valued reading of a rule's condition (pass, fail, or "miss": not
known until more bytes arrive, HAProxy's ACL_TEST_MISS) and the walk over the rules
that stops at the first undecided one. The payload fetches (lb.match.payload) say
"more bytes could change this" through ``ctx.may_change``; once the delay has run out,
the client has closed its side, or the buffer is full, the context is final and every
condition is decided with what came. The HTTP fetches read the head the session's
first bytes make (lb.http.rawhead): while it may still end (``ctx.http_pending``),
they are a miss too.

The rules are walked as HAProxy does: ``accept`` ends the walk (the session goes on),
``reject`` closes the connection, other actions (track-sc, sc-inc-gpc, ...) run and
the walk continues; reaching the end is an accept.

Must not import: lb.cli, healthcheck.
"""

from __future__ import annotations

from typing import Any

from lb.http.actions import ALLOW
from lb.match.uses import REQUEST_FETCHES

FAIL, MISS, PASS = 0, 1, 3  # HAProxy's values: AND is &, OR is |

WAIT = object()  # run() could not decide yet


def _expr(e: Any, ctx: Any) -> int:
    if getattr(ctx, "http_pending", False) and not ctx.inspect_final and \
            getattr(e, "keyword", "") in REQUEST_FETCHES:
        return MISS  # the start of an HTTP head: its end may still come
    ctx.may_change = False
    if e.test(ctx):
        return PASS
    return MISS if ctx.may_change else FAIL


def _acl(acl: Any, ctx: Any) -> int:
    exprs = getattr(acl, "exprs", None)
    if exprs is None:  # a predefined or wrapped ACL without expressions to read
        return PASS if acl.test(ctx) else FAIL
    res = FAIL
    for e in exprs:
        res |= _expr(e, ctx)
        if res == PASS:
            break
    return res


def condition(cond: Any, ctx: Any) -> int:
    """PASS, FAIL or MISS for an ``if``/``unless`` condition (lb.match.acl.Condition);
    ``unless`` turns a pass into a fail and back, and leaves a miss a miss."""
    res = FAIL
    for suite in cond._suites:
        sres = PASS
        for term in suite:
            r = _acl(term.acl, ctx)
            if term.neg and r != MISS:
                r = FAIL if r == PASS else PASS
            sres &= r
            if sres == FAIL:
                break
        res |= sres
        if res == PASS:
            break
    if cond.unless and res != MISS:
        res = FAIL if res == PASS else PASS
    return res


def run(rules: Any, ctx: Any, final: bool) -> Any:
    """Walk the compiled rules (lb.http.actions.RuleSet) on what came so far: WAIT,
    None (accepted, or no rule decided) or the rule's verdict (reject, or a
    `do-resolve` to wait for: the walk then resumes after it). A walk that
    waited resumes at the rule it stopped on (``ctx.inspect_pos``), as HAProxy's
    does: the actions before it (track-sc, ...) are not run twice."""
    ctx.inspect_final = final
    compiled = rules.rules
    for i in range(ctx.inspect_pos, len(compiled)):
        cond, ex = compiled[i]
        if cond is not None:
            res = condition(cond, ctx)
            if res == MISS:
                ctx.inspect_pos = i
                return WAIT
            if res == FAIL:
                continue
        v = ex(ctx)
        if v is not None:
            if v.kind == "resolve":  # (do-resolve: the walk goes on after this rule)
                ctx.inspect_pos = i + 1
                return v
            return None if v is ALLOW else v
    return None
