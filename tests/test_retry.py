"""Retry / redispatch decision tables (lb.proxy.retry), spec §5.6."""

from __future__ import annotations

import pytest

from lb.config.model import BalanceSpec, Options, Proxy, Timeouts
from lb.proxy import retry as r


def policy(**kw: object) -> r.RetryPolicy:
    base = dict(retries=3, redispatch=True, interval=-1, connect_timeout=1.0,
                algorithm="roundrobin")
    base.update(kw)
    return r.RetryPolicy(**base)  # type: ignore[arg-type]


def test_from_proxy_and_defaults() -> None:
    p = Proxy(name="b", caps=frozenset({"backend"}), kind="backend", retries=2,
              retry_on=("all-retryable-errors",), redispatch_interval=2,
              options=Options(redispatch=True), timeouts=Timeouts(connect=0.5),
              balance=BalanceSpec(algorithm="uri"))
    pol = r.RetryPolicy.from_proxy(p)
    assert (pol.retries, pol.redispatch, pol.interval, pol.connect_timeout) == (2, True, 2, 0.5)
    assert pol.is_hash and pol.needs_buffering
    assert "conn-failure" in pol.retry_on and "503" in pol.retry_on and "404" not in pol.retry_on
    default = r.RetryPolicy.from_proxy(Proxy(name="d", caps=frozenset({"backend"}),
                                             kind="backend"))
    assert default.retry_on == {"conn-failure"} and not default.needs_buffering
    assert not default.redispatch and default.retries == 3


def test_parse_retry_on() -> None:
    assert r.parse_retry_on(["none"]) == (frozenset(), None)
    conds, err = r.parse_retry_on(["conn-failure", "503", "response-timeout"])
    assert err is None and conds == {"conn-failure", "503", "response-timeout"}
    assert r.parse_retry_on(["bogus"])[1] == "'retry-on' : unknown keyword 'bogus'."
    assert r.parse_retry_on(["none", "503"])[1] is not None
    assert list(r.RETRY_ON) == sorted(r.RETRY_ON)


def test_single_dead_server_waits_between_retries_then_gives_up() -> None:
    # checked against HAProxy 2.6.12: one refused server, retries 3, timeout connect
    # 1s -> 503 after ~3 s, log "SC--" with retries field 3
    pol = policy(redispatch=False)
    total = 0.0
    done = 0
    while True:
        d = pol and r.on_connect_failure(pol, r.CONN_ERROR, done, active_servers=1)
        if not d.retry:
            break
        assert not d.redispatch
        total += d.delay
        done = d.attempt
    assert done == 3 and total == pytest.approx(3.0)
    assert r.retries_field(done, False) == "3"


def test_connect_timeout_retries_without_extra_wait() -> None:
    d = r.on_connect_failure(policy(redispatch=False), r.CONN_TIMEOUT, 0)
    assert d.retry and d.delay == 0.0


def test_wait_is_min_of_connect_timeout_and_one_second() -> None:
    assert r.on_connect_failure(policy(connect_timeout=0.2, redispatch=False),
                                r.CONN_ERROR, 0).delay == 0.2
    assert r.on_connect_failure(policy(connect_timeout=5.0, redispatch=False),
                                r.CONN_ERROR, 0).delay == 1.0
    assert r.on_connect_failure(policy(connect_timeout=None, redispatch=False),
                                r.CONN_ERROR, 0).delay == 1.0


@pytest.mark.parametrize("algo", ["roundrobin", "leastconn", "first", "static-rr", "random"])
def test_non_hash_redispatch_immediately_without_wait(algo: str) -> None:
    # checked against HAProxy 2.6.12: dead + live server, option redispatch, roundrobin /
    # leastconn / first -> served by the live one at once, retries field "+1", Ta ~0
    d = r.on_connect_failure(policy(algorithm=algo), r.CONN_ERROR, 0, active_servers=2)
    assert d.retry and d.redispatch and d.delay == 0.0 and d.attempt == 1
    assert r.retries_field(d.attempt, True) == "+1"


def test_hash_and_direct_requests_redispatch_on_last_retry_only() -> None:
    for kw in ({"direct": True}, {}):
        pol = policy(algorithm="uri") if not kw else policy()
        got = [r.on_connect_failure(pol, r.CONN_ERROR, n, active_servers=3, **kw).redispatch
               for n in range(3)]
        assert got == [False, False, True], kw
    # spec §6.4 [EMP]: persistent cookie to a dead port -> "--DI", retries "+3"
    assert r.cookie_char_after_redispatch("V") == "D"
    assert r.cookie_char_after_redispatch("I") == "I"


@pytest.mark.parametrize("interval,retries,expected", [
    (-1, 3, [False, False, True]),
    (-2, 3, [False, True, False]),
    (-3, 3, [True, True, True]),
    (1, 3, [True, True, True]),
    (2, 4, [False, True, False, True]),
    (3, 3, [False, False, True]),
    (0, 3, [False, False, False]),
    (-5, 3, [True, True, True]),  # 3+1-5 = -1: C's n % -1 == 0 matches every retry
    (-4, 3, [False, False, False]),  # 3+1-4 = 0: never (HAProxy would divide by zero)
])
def test_redispatch_interval(interval: int, retries: int, expected: list[bool]) -> None:
    pol = policy(interval=interval, retries=retries)
    got = [r.should_redispatch(pol, n, server_running=True, direct=True, force_persist=False,
                               active_servers=2) for n in range(1, retries + 1)]
    assert got == expected


def test_redispatch_rules_table() -> None:
    pol = policy(algorithm="uri")
    kw = dict(server_running=True, direct=True, force_persist=False, active_servers=2)
    assert not r.should_redispatch(pol, 1, **kw)
    assert r.should_redispatch(pol, 1, **{**kw, "server_running": False})  # target down
    assert not r.should_redispatch(pol, 3, **{**kw, "force_persist": True})
    assert not r.should_redispatch(policy(redispatch=False), 3, **kw)
    assert not r.should_redispatch(policy(), 1, **{**kw, "direct": False, "active_servers": 1})
    assert r.should_redispatch(policy(), 1, **{**kw, "direct": False})


def test_give_up_when_retry_on_excludes_conn_failure() -> None:
    pol = policy(retry_on=frozenset({"503"}))
    assert not r.on_connect_failure(pol, r.CONN_ERROR, 0).retry
    assert not r.on_connect_failure(policy(retries=0), r.CONN_ERROR, 0).retry


def test_layer7_retries_need_buffered_request_and_keyword() -> None:
    pol = policy(retry_on=frozenset({"conn-failure", "503", "empty-response"}))
    assert r.on_response_failure(pol, "503", 0, buffered=True).retry
    assert not r.on_response_failure(pol, "503", 0, buffered=False).retry  # never resend
    assert not r.on_response_failure(pol, "502", 0, buffered=True).retry
    assert r.on_response_failure(pol, "empty-response", 2, buffered=True).retry
    assert not r.on_response_failure(pol, "empty-response", 3, buffered=True).retry
    d = r.on_response_failure(pol, "503", 0, buffered=True, direct=False, active_servers=2)
    assert d.redispatch and d.delay == 0.0


def _run(pol: r.RetryPolicy, *, running: bool, direct: bool, active: int
         ) -> tuple[str, float, int]:
    """Play connect failures until a redispatch or give-up: (field, waited, attempts)."""
    done, waited = 0, 0.0
    while True:
        d = r.on_connect_failure(pol, r.CONN_ERROR, done, server_running=running,
                                 direct=direct, active_servers=active)
        if not d.retry:
            return r.retries_field(done, False), waited, done
        waited += d.delay
        done = d.attempt
        if d.redispatch:
            return r.retries_field(done, True), waited, done


def test_persistent_cookie_to_dead_server_matches_haproxy() -> None:
    # checked against HAProxy 2.6.12, `cookie SRV insert`, retries 3, timeout connect 1s,
    # client "Cookie: SRV=d" for a server on a closed port, plus one live server:
    # - dead server UP (no check), option redispatch: "--DI ... +3", Tw 2001 (two 1 s
    #   waits on the same server, then an immediate move to the live server)
    assert _run(policy(), running=True, direct=True, active=2) == ("+3", 2.0, 3)
    # - same with option persist: identical
    # - dead server in MAINT or DOWN, option persist + redispatch: "+1" after one 1 s
    #   wait (the only other active server makes srv_act 1, so HAProxy still waits)
    assert _run(policy(), running=False, direct=True, active=1) == ("+1", 1.0, 1)
    # - MAINT + option persist without redispatch: 503 "SCDN", retries field 3
    assert _run(policy(redispatch=False), running=False, direct=True, active=1) == ("3", 3.0, 3)
