"""The actions HAProxy 2.6.12 knows in each rule keyword, as its messages list them.

Owns: one row per rule keyword with the names in HAProxy's own order (the order its
build registers them, read from `haproxy -c` on an unknown action), the test of
whether an action word is one of them, and the listing its messages print. An action
outside its keyword's row makes a configuration HAProxy refuses, so lb refuses it
too, with the same text; an action in the row that lb does not carry out is the
caller's business (ignored with a warning, or refused by lb).

A name ending in `(*)` takes its arguments in parentheses and matches by prefix
(`sc-inc-gpc0(0)`, `set-var(txn.x)`, `track-sc(*)` for track-sc0..2).

Must not import: anything from lb (pure table).
"""

from __future__ import annotations

_HTTP_REQUEST = (
    "wait-for-handshake", "ot-group", "set-log-level", "set-nice", "use-service",
    "sc-inc-gpc(*)", "sc-inc-gpc0(*)", "sc-inc-gpc1(*)", "sc-set-gpt(*)", "sc-set-gpt0(*)",
    "send-spoe-group", "do-resolve(*)", "cache-use", "add-acl(*)", "add-header", "allow",
    "auth", "capture", "del-acl(*)", "del-header", "del-map(*)", "deny", "disable-l7-retry",
    "early-hint", "normalize-uri", "redirect", "reject", "replace-header", "replace-path",
    "replace-pathq", "replace-uri", "replace-value", "return", "set-header", "set-map(*)",
    "set-method", "set-path", "set-pathq", "set-query", "set-uri", "strict-mode", "tarpit",
    "track-sc(*)", "set-timeout", "wait-for-body", "set-var-fmt(*)", "set-var(*)",
    "unset-var(*)", "set-dst", "set-dst-port", "set-mark", "set-src", "set-src-port",
    "set-tos", "silent-drop", "set-priority-class", "set-priority-offset",
)
_HTTP_RESPONSE = (
    "ot-group", "set-log-level", "set-nice", "sc-inc-gpc(*)", "sc-inc-gpc0(*)",
    "sc-inc-gpc1(*)", "sc-set-gpt(*)", "sc-set-gpt0(*)", "send-spoe-group", "cache-store",
    "add-acl(*)", "add-header", "allow", "capture", "del-acl(*)", "del-header", "del-map(*)",
    "deny", "redirect", "replace-header", "replace-value", "return", "set-header",
    "set-map(*)", "set-status", "strict-mode", "track-sc(*)", "wait-for-body",
    "set-var-fmt(*)", "set-var(*)", "unset-var(*)", "set-mark", "set-tos", "silent-drop",
)
_HTTP_AFTER_RESPONSE = (
    "ot-group", "add-header", "allow", "capture", "del-header", "replace-header",
    "replace-value", "set-header", "set-status", "strict-mode", "set-var-fmt(*)",
    "set-var(*)", "unset-var(*)",
)
# tcp rules: the first six are the keyword's own, printed as HAProxy prints them
_TCP_OWN = ("accept", "reject", "capture", "expect-proxy", "expect-netscaler-cip",
            "track-sc0", "track-sc1", "track-sc2")
_TCP_REQUEST_CONTENT = _TCP_OWN + (
    "ot-group", "set-log-level", "set-nice", "switch-mode", "use-service", "sc-inc-gpc(*)",
    "sc-inc-gpc0(*)", "sc-inc-gpc1(*)", "sc-set-gpt(*)", "sc-set-gpt0(*)", "send-spoe-group",
    "do-resolve(*)", "set-var-fmt(*)", "set-var(*)", "unset-var(*)", "set-src",
    "set-src-port", "set-dst", "set-dst-port", "set-mark", "set-tos", "silent-drop",
    "set-priority-class", "set-priority-offset",
)
_TCP_REQUEST_CONNECTION = _TCP_OWN + (
    "sc-inc-gpc(*)", "sc-inc-gpc0(*)", "sc-inc-gpc1(*)", "sc-set-gpt(*)", "sc-set-gpt0(*)",
    "set-var-fmt(*)", "set-var(*)", "unset-var(*)", "set-dst", "set-dst-port", "set-mark",
    "set-src", "set-src-port", "set-tos", "silent-drop",
)
_TCP_RESPONSE_CONTENT = (
    "accept", "close", "reject", "ot-group", "set-log-level", "set-nice", "sc-inc-gpc(*)",
    "sc-inc-gpc0(*)", "sc-inc-gpc1(*)", "sc-set-gpt(*)", "sc-set-gpt0(*)", "send-spoe-group",
    "set-var-fmt(*)", "set-var(*)", "unset-var(*)", "set-mark", "set-tos", "silent-drop",
)

# rule keyword (as messages name it) -> HAProxy 2.6.12's actions, in its order
ACTIONS: dict[str, tuple[str, ...]] = {
    "http-request": _HTTP_REQUEST,
    "http-response": _HTTP_RESPONSE,
    "http-after-response": _HTTP_AFTER_RESPONSE,
    "tcp-request content": _TCP_REQUEST_CONTENT,
    "tcp-request connection": _TCP_REQUEST_CONNECTION,
    "tcp-request session": _TCP_REQUEST_CONNECTION,
    "tcp-response content": _TCP_RESPONSE_CONTENT,
}


def known(keyword: str, act: str) -> bool:
    """Whether HAProxy 2.6.12 knows action word ``act`` in ``keyword`` rules."""
    names = ACTIONS[keyword]
    if act.startswith("track-sc") and "track-sc0" in names:
        return True  # (any number: the action's parser checks it)
    for name in names:
        if name.endswith("(*)"):
            if act.startswith(name[:-3]):
                return True
        elif act == name:
            return True
    return False


def listing(keyword: str) -> str:
    """The actions as HAProxy's "expects ..." messages list them."""
    names = ACTIONS[keyword]
    if keyword.startswith("tcp-request"):
        head = "'accept', 'reject', 'capture', 'expect-proxy', 'expect-netscaler-cip', " \
               "'track-sc0' ... 'track-sc2'"
        return head + "".join(f", '{n}'" for n in names[len(_TCP_OWN):])
    return ", ".join(f"'{n}'" for n in names)
