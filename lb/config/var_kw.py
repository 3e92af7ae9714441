"""The variable actions of rules and the global section's `set-var`.

Owns: parsing `set-var(<var>[,<cond>...]) <expr>`, `set-var-fmt(<var>[,<cond>...])
<log-format>` and `unset-var(<var>)` for `http-request`, `http-response`,
`http-after-response` and `tcp-request connection|session|content`, and the global
`set-var proc.<name> <expr>` / `set-var-fmt proc.<name> <log-format>`, which are
evaluated while the file is read (as HAProxy does), in their order. Errors carry
HAProxy 2.6.12's texts without a final period; the callers word the rest.

Must not import: lb.config.build.
"""

from __future__ import annotations

from typing import Any

import lb.config.model as m
from lb.match import sample, uses, variables
from lb.match.fmt import compile_format

NAMES = ("set-var", "set-var-fmt", "unset-var")
_EXPECTS = ("Expects 'set-var(<var-name>)', 'set-var-fmt(<var-name>)' or "
            "'unset-var(<var-name>)'")


def is_var_action(act: str) -> bool:
    """HAProxy finds these actions by prefix: `set-varx(...)` is one, and is refused."""
    return act.startswith(NAMES)


def action_name(act: str) -> str:
    """The keyword HAProxy matched for ``act`` (the longest prefix), as its texts name it."""
    return max((n for n in NAMES if act.startswith(n)), key=len, default=act)


def _msg(exc: Exception) -> str:
    return str(exc).rstrip(".")


def parse_action(act: str, args: tuple[str, ...], context: str
                 ) -> m.ActSetVar | m.ActUnsetVar | str:
    """The action word (``set-var(txn.x,ifexists)``) and its arguments (before
    ``if``/``unless``); ``context`` is the rule's (lb.match.uses.CONTEXTS). A str is
    the error; ``unexpected keyword '<w>'`` means the action ended before ``<w>``."""
    head, paren, inner = act.partition("(")
    if not paren or head not in NAMES:
        return f"invalid or incomplete action '{act}'. {_EXPECTS}"
    if not inner.endswith(")"):
        return f"incomplete argument after action '{act}'. {_EXPECTS}"
    inner = inner[:-1]
    name, comma, rest = inner.partition(",")
    if head == "unset-var" and comma:
        return ("unset-var does not expect parameters after the variable name. Only "
                '"set-var" and "set-var-fmt" manage conditions')
    conds = tuple(c for c in rest.split(",") if c) if comma else ()
    for cond in conds:
        if cond not in variables.CONDITIONS:
            return f'unknown condition "{cond}"'
    err = variables.name_error(name, act[len(head) + 1 + len(name):])
    if err is not None:
        return err
    if head == "unset-var":
        return f"unexpected keyword '{args[0]}'" if args else m.ActUnsetVar(name=name)
    if head == "set-var-fmt":
        text = args[0] if args else ""
        if len(args) > 1:
            return f"unexpected keyword '{args[1]}'"
        try:
            compile_format(text, context=context)
        except Exception as exc:
            return _msg(exc)
        return m.ActSetVar(name=name, expr=text, is_format=True, conds=conds)
    if not args or not args[0]:
        return "missing fetch method"
    try:
        expr = sample.parse_expr(args[0])
    except Exception as exc:
        return _msg(exc)
    if len(args) > 1:
        return f"unexpected keyword '{args[1]}'"
    need = uses.unavailable(expr.fetch_def.name, context)
    if need is not None:
        return (f"fetch method '{act}' extracts information from '{need}', none of which "
                "is available here")
    return m.ActSetVar(name=name, expr=args[0], conds=conds)


# ------------------------------------------------------------------ global section


class ConfigCtx(sample.SampleSubject):
    """What a global `set-var` expression sees: no connection, no request; the
    process-wide variables set by the lines above."""

    __slots__ = ("proc_vars",)

    def __init__(self, proc_vars: variables.ProcVars) -> None:
        self.method = self.url = self.version = b""
        self.req_headers = []
        self.src = self.src_port = self.dst = self.dst_port = None
        self.is_response = False
        self.status = 0
        self.res_headers = None
        self.vars = {}
        self.memo = {}
        self.proc_vars = proc_vars


def _kind(out: str) -> str:
    return out if out in (sample.T_BIN, sample.T_METH) else ""


def evaluate(kw: str, name: str, text: str, proc: variables.ProcVars) -> str | None:
    """Run a global `set-var` (``kw``) now: the error, or None once the variable is
    set (an expression that gives no sample sets nothing, as in HAProxy)."""
    if kw == "set-var-fmt":
        try:
            fmt = compile_format(text, context="global")
        except Exception as exc:
            return _msg(exc)
        ctx = ConfigCtx(proc)
        variables.assign(ctx, name, fmt.render(ctx))
        return None
    try:
        expr = sample.parse_expr(text)
    except Exception as exc:
        return _msg(exc)
    need = uses.unavailable(expr.fetch_def.name, "global")
    if need is not None:
        return (f"fetch method 'set-var({name})' extracts information from '{need}', none "
                "of which is available here")
    ctx = ConfigCtx(proc)
    value: Any = expr.raw(ctx)
    if value is not None:
        variables.assign(ctx, name, value, kind=_kind(expr.out))
    return None
