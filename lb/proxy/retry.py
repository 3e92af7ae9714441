"""Retry and redispatch decisions (spec §5.6), pure.

Owns: the RETRY_ON vocabulary, the per-backend ``RetryPolicy``, and the
decisions HAProxy takes after a failed attempt:
- connection failures before anything was sent (refused, reset, unreachable,
  connect timeout): retry while ``retries`` allows and ``retry-on`` contains
  ``conn-failure``; whether the retry goes to another server
  (``option redispatch [interval]``, stream_choose_redispatch); how long to wait
  first (``min(timeout connect, 1s)`` after an immediate error when the retry
  stays on the same server);
- layer-7 retries (``retry-on`` beyond conn-failure): only for a request that
  was kept whole in one buffer;
- the retries field of the log (``3``, or ``+3`` once a redispatch moved it).

The data plane owns the attempt counter and applies the decision.

Must not import: lb.cli, lb.log, healthcheck. No I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# keyword -> (conditions it enables, help). Rows alphabetical.
RETRY_ON: dict[str, tuple[frozenset[str], str]] = {
    "0rtt-rejected": (frozenset({"0rtt-rejected"}), "TLS early data rejected"),
    "401": (frozenset({"401"}), "server answered 401"),
    "403": (frozenset({"403"}), "server answered 403"),
    "404": (frozenset({"404"}), "server answered 404"),
    "408": (frozenset({"408"}), "server answered 408"),
    "425": (frozenset({"425"}), "server answered 425"),
    "500": (frozenset({"500"}), "server answered 500"),
    "501": (frozenset({"501"}), "server answered 501"),
    "502": (frozenset({"502"}), "server answered 502"),
    "503": (frozenset({"503"}), "server answered 503"),
    "504": (frozenset({"504"}), "server answered 504"),
    "all-retryable-errors": (frozenset({"conn-failure", "empty-response", "junk-response",
                                        "response-timeout", "0rtt-rejected", "500", "502",
                                        "503", "504"}), "every safe-to-retry failure"),
    "conn-failure": (frozenset({"conn-failure"}), "connection failed before sending"),
    "empty-response": (frozenset({"empty-response"}), "server closed without answering"),
    "junk-response": (frozenset({"junk-response"}), "server sent an invalid response"),
    "none": (frozenset(), "never retry"),
    "response-timeout": (frozenset({"response-timeout"}), "no response within timeout server"),
}

# failures of the connection itself (the request never left)
CONN_ERROR = "conn-error"  # refused, reset, unreachable: reported at once
CONN_TIMEOUT = "conn-timeout"  # timeout connect expired
# refused within connect() itself (a local socket): HAProxy 2.6.12 retries at once
CONN_REFUSED_AT_ONCE = "conn-refused-at-once"

_HASH_KIND = frozenset({"hash", "hdr", "rdp-cookie", "source", "uri", "url_param"})


_CONN_ONLY = frozenset(("conn-failure",))


def parse_retry_on(words: list[str] | tuple[str, ...]) -> tuple[frozenset[str], str | None]:
    """Expand ``retry-on`` keywords into conditions; (conditions, error text)."""
    out: set[str] = set()
    for w in words:
        row = RETRY_ON.get(w)
        if row is None:
            return frozenset(), f"'retry-on' : unknown keyword '{w}'."
        if w == "none" and len(words) > 1:
            return frozenset(), "'retry-on' : 'none' cannot be combined with other keywords."
        out |= row[0]
    return frozenset(out), None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 3
    retry_on: frozenset[str] = frozenset({"conn-failure"})
    redispatch: bool = False
    interval: int = -1  # option redispatch [interval]
    connect_timeout: float | None = None
    algorithm: str = "roundrobin"

    @classmethod
    def from_proxy(cls, p: Any) -> RetryPolicy:
        """From a backend model (lb.config.model.Proxy)."""
        conds, _ = parse_retry_on(tuple(p.retry_on) or ("conn-failure",))
        return cls(retries=p.retries, retry_on=conds, redispatch=p.options.redispatch,
                   interval=p.redispatch_interval, connect_timeout=p.timeouts.connect,
                   algorithm=p.balance.algorithm)

    @property
    def needs_buffering(self) -> bool:
        """Layer-7 retries need the whole request kept (one buffer) until answered."""
        return not self.retry_on <= _CONN_ONLY  # hot path: no set built per request

    @property
    def is_hash(self) -> bool:
        return self.algorithm in _HASH_KIND


@dataclass(frozen=True, slots=True)
class Decision:
    retry: bool  # make another attempt (False: give up -> error response)
    # re-balance avoiding the failed server (log "+N" and count a redispatch only
    # if that lands on another server; else it counts as a plain retry)
    redispatch: bool = False
    delay: float = 0.0  # seconds to wait before the attempt when it stays put
    attempt: int = 0  # retries done once this one is made (log %rc)


GIVE_UP = Decision(False)


def should_redispatch(policy: RetryPolicy, n: int, *, server_running: bool, direct: bool,
                      force_persist: bool, active_servers: int) -> bool:
    """HAProxy's stream_choose_redispatch for the n-th retry (1-based)."""
    if not policy.redispatch or force_persist or policy.interval == 0:
        return False
    if not server_running:
        return True
    iv = policy.interval
    if iv > 0 and n % iv == 0:
        return True
    if iv < 0:
        # like C's %: the sign of the divisor does not matter; 0 would crash
        # HAProxy (division by zero), here it simply never matches
        period = policy.retries + 1 + iv
        if period and n % abs(period) == 0:
            return True
    return not direct and active_servers > 1 and not policy.is_hash


def on_connect_failure(policy: RetryPolicy, kind: str, retries_done: int, *,
                       server_running: bool = True, direct: bool = False,
                       force_persist: bool = False, active_servers: int = 1) -> Decision:
    """After a failed connection attempt (``kind`` CONN_ERROR, CONN_REFUSED_AT_ONCE
    or CONN_TIMEOUT).

    ``retries_done`` counts retries already made (0 after the first attempt).
    On give-up the answer is 503, logged ``SC`` (error) or ``sC`` (timeout)."""
    n = retries_done + 1
    if n > policy.retries or "conn-failure" not in policy.retry_on:
        return GIVE_UP
    redisp = should_redispatch(policy, n, server_running=server_running, direct=direct,
                               force_persist=force_persist, active_servers=active_servers)
    delay = 0.0
    # checked against HAProxy 2.6.12: no wait when the retry is redispatched among
    # several servers, whatever the algorithm (roundrobin, leastconn, first)
    if kind == CONN_ERROR and (not redisp or active_servers <= 1):
        delay = 1.0 if policy.connect_timeout is None else min(1.0, policy.connect_timeout)
    return Decision(True, redisp, delay, n)


def on_response_failure(policy: RetryPolicy, condition: str, retries_done: int, *,
                        buffered: bool, server_running: bool = True, direct: bool = False,
                        force_persist: bool = False, active_servers: int = 1) -> Decision:
    """After the request was sent: ``condition`` is ``empty-response``,
    ``junk-response``, ``response-timeout`` or the status code as text. Retried
    only when ``retry-on`` lists it and the whole request is still in hand
    (``buffered``); never waits before the new attempt."""
    if not buffered or condition not in policy.retry_on:
        return GIVE_UP
    n = retries_done + 1
    if n > policy.retries:
        return GIVE_UP
    redisp = should_redispatch(policy, n, server_running=server_running, direct=direct,
                               force_persist=force_persist, active_servers=active_servers)
    return Decision(True, redisp, 0.0, n)


def retries_field(retries_done: int, redispatched: bool) -> str:
    """The ``%rc`` log field: ``+N`` once a redispatch moved the request."""
    return f"+{retries_done}" if redispatched else str(retries_done)


def cookie_char_after_redispatch(ck: str) -> str:
    """A valid persistence cookie whose server was left becomes 'D' (down)."""
    return "D" if ck == "V" else ck
