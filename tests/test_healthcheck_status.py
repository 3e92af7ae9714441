"""The health counter (spec §7.2), the status table and HAProxy's state-change texts."""

from __future__ import annotations

import pytest

from healthcheck import messages
from healthcheck.status import (
    CHECK_STATUSES,
    Result,
    health_fraction,
    is_up,
    next_health,
    server_state_word,
)

P, F, C = Result.PASSED, Result.FAILED, Result.CONDPASS


def walk(rise: int, fall: int, seq: list[Result], start: int | None = None) -> list[int]:
    h = rise if start is None else start
    out = []
    for r in seq:
        h, _ = next_health(h, rise, fall, r)
        out.append(h)
    return out


def test_initial_rise_and_first_failure_downs_server() -> None:
    # never-checked server starts at h=rise (UP); one failure drops it to 0 (DOWN)
    assert walk(2, 3, [F]) == [0]
    assert not is_up(0, 2)
    assert is_up(2, 2)


def test_success_jumps_to_top_then_needs_fall_failures() -> None:
    hs = walk(2, 3, [P, F, F, F])
    assert hs == [4, 3, 2, 0]
    assert [is_up(h, 2) for h in hs] == [True, True, True, False]


def test_rise_successes_from_down() -> None:
    hs = walk(2, 3, [P, P, P], start=0)
    assert hs == [1, 4, 4]
    assert [is_up(h, 2) for h in hs] == [False, True, True]


def test_flapping_never_reaches_down_or_up_edges() -> None:
    # from fully UP, alternating fail/pass keeps it up (4→3→4→3)
    assert walk(2, 3, [F, P, F, P], start=4) == [3, 4, 3, 4]
    # from DOWN, alternating pass/fail keeps it down (0→1→0→1)
    assert walk(2, 3, [P, F, P, F], start=0) == [1, 0, 1, 0]


def test_initial_values_match_state() -> None:
    from healthcheck.status import initial_health
    from tests.healthcheck_support import backend, server, state_of

    assert initial_health(2, False) == 2 and initial_health(2, True) == 0
    st = state_of(backend([server("a", 1, puid=1, rise=3),
                           server("b", 1, puid=2, rise=3, disabled=True)]))
    a, b = st.backends["b"].servers
    assert (a.health, b.health) == (initial_health(3, False), initial_health(3, True))
    assert b.in_maint and b.status_text() == "MAINT"


def test_rise1_fall1() -> None:
    assert walk(1, 1, [F, P, F, P]) == [0, 1, 0, 1]


def test_large_rise_fall() -> None:
    hs = walk(5, 2, [P, P, P, P, P], start=0)
    assert hs == [1, 2, 3, 4, 6]
    assert walk(5, 2, [F, F], start=6) == [5, 0]


def test_counter_moved_flag_and_saturation() -> None:
    assert next_health(4, 2, 3, P) == (4, False)
    assert next_health(0, 2, 3, F) == (0, False)
    assert next_health(3, 2, 3, C) == (4, True)
    assert next_health(2, 2, 3, Result.UNKNOWN) == (2, False)


def test_status_table() -> None:
    codes = ["UNK", "INI", "SOCKERR", "L4OK", "L4TOUT", "L4CON", "L6OK", "L6TOUT", "L6RSP",
             "L7OK", "L7OKC", "L7TOUT", "L7RSP", "L7STS"]
    assert set(codes) <= set(CHECK_STATUSES)
    assert CHECK_STATUSES["L4CON"].desc == "Layer4 connection problem"
    assert CHECK_STATUSES["L7RSP"].desc == "Layer7 invalid response"
    assert CHECK_STATUSES["L7STS"].desc == "Layer7 wrong status"
    assert CHECK_STATUSES["L7OKC"].result is Result.CONDPASS
    # only statuses that read layer-7 data, and an external check's verdicts (its exit
    # status), print a code
    assert {c for c, s in CHECK_STATUSES.items() if s.has_code} == {
        "L7OK", "L7OKC", "L7STS", "PROCERR", "PROCOK"}


def test_fractions() -> None:
    assert health_fraction(0, 2, 2) == "0/2 DOWN"
    assert health_fraction(4, 2, 3) == "3/3 UP"
    assert health_fraction(2, 2, 3) == "1/3 UP"
    assert health_fraction(3, 2, 2, weight=0) == "2/2 DRAIN"
    assert server_state_word(2, 2, 3, True, False, True) == "UP 1/3"
    assert server_state_word(4, 2, 3, True, False, True) == "UP"
    assert server_state_word(0, 2, 3, False, False, True) == "DOWN"
    assert server_state_word(1, 2, 3, False, False, True) == "DOWN 1/2"
    assert server_state_word(4, 2, 3, True, True, True) == "NOLB"


# Texts below were produced by HAProxy 2.6.12 on 127.0.0.1 (servers answering
# refused / 500 / 404 / 101 with a bad accept; `option log-health-checks`).


def why(code: str, http: int, info: str, ms: int) -> str:
    return messages.reason(CHECK_STATUSES[code], http, info, ms)


@pytest.mark.parametrize(("line", "expected"), [
    (lambda: messages.server_down("b_tcp_refused", "s1", False,
                                  why("L4CON", 0, "Connection refused", 0), 0, 0, 0, 0, 0),
     'Server b_tcp_refused/s1 is DOWN, reason: Layer4 connection problem, info: "Connection '
     'refused", check duration: 0ms. 0 active and 0 backup servers left. 0 sessions active, '
     '0 requeued, 0 remaining in queue.'),
    (lambda: messages.server_down("b_http_500", "s1", False,
                                  why("L7STS", 500, "Internal Server Error", 1), 0, 1, 0, 0, 0),
     'Server b_http_500/s1 is DOWN, reason: Layer7 wrong status, code: 500, info: "Internal '
     'Server Error", check duration: 1ms. 0 active and 1 backup servers left. Running on '
     'backup. 0 sessions active, 0 requeued, 0 remaining in queue.'),
    (lambda: messages.server_down("b_http_500", "bk", True,
                                  why("L4CON", 0, "Connection refused", 0), 0, 0, 0, 0, 0),
     'Backup Server b_http_500/bk is DOWN, reason: Layer4 connection problem, info: '
     '"Connection refused", check duration: 0ms. 0 active and 0 backup servers left. '
     '0 sessions active, 0 requeued, 0 remaining in queue.'),
    (lambda: messages.server_down("b_ws_bad", "s1", False, why("L7RSP", 101, "", 1),
                                  0, 0, 0, 0, 0),
     'Server b_ws_bad/s1 is DOWN, reason: Layer7 invalid response, check duration: 1ms. '
     '0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in '
     'queue.'),
    (lambda: messages.server_stopping("b_http_404", "s1", False, why("L7OKC", 404, "", 1),
                                      0, 0, 0, 0),
     'Server b_http_404/s1 is stopping, reason: Layer7 check conditionally passed, code: 404, '
     'check duration: 1ms. 0 active and 0 backup servers online. 0 sessions requeued, '
     '0 total in queue.'),
    (lambda: messages.server_up("b", "s1", False, why("L7OK", 200, "", 2), 1, 0, 0, 0),
     'Server b/s1 is UP, reason: Layer7 check passed, code: 200, check duration: 2ms. '
     '1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.'),
    (lambda: messages.health_check("b_loghc", "s1", False, False, False,
                                   why("L7STS", 500, "Internal Server Error", 1), "0/2 DOWN"),
     'Health check for server b_loghc/s1 failed, reason: Layer7 wrong status, code: 500, '
     'info: "Internal Server Error", check duration: 1ms, status: 0/2 DOWN.'),
    (lambda: messages.health_check("b_loghc", "s2", True, True, False,
                                   why("L7OK", 200, "", 1), "1/1 UP"),
     'Health check for backup server b_loghc/s2 succeeded, reason: Layer7 check passed, '
     'code: 200, check duration: 1ms, status: 1/1 UP.'),
    (lambda: messages.health_check("b_tcpchk_ok", "s1", False, True, False,
                                   why("L7OK", 0, "(tcp-check)", 2), "1/1 UP"),
     'Health check for server b_tcpchk_ok/s1 succeeded, reason: Layer7 check passed, code: 0, '
     'info: "(tcp-check)", check duration: 2ms, status: 1/1 UP.'),
    (lambda: messages.server_down("b_loghc", "s1", False, "", 0, 1, 0, 0, 0),
     'Server b_loghc/s1 is DOWN. 0 active and 1 backup servers left. Running on backup. '
     '0 sessions active, 0 requeued, 0 remaining in queue.'),
    (lambda: messages.server_down("b_tcpchk_bad", "s1", False, why(
        "L7TOUT", 0, " at step 2 of tcp-check (expect string '+PANG')", 1000), 0, 0, 0, 0, 0),
     "Server b_tcpchk_bad/s1 is DOWN, reason: Layer7 timeout, info: \" at step 2 of "
     "tcp-check (expect string '+PANG')\", check duration: 1000ms. 0 active and 0 backup "
     "servers left. 0 sessions active, 0 requeued, 0 remaining in queue."),
])
def test_haproxy_texts(line, expected: str) -> None:  # type: ignore[no-untyped-def]
    assert line() == expected


def test_backend_down_and_stderr_forms() -> None:
    assert messages.backend_down("b") == "backend b has no server available!"
    assert (messages.stderr_line("emerg", messages.backend_down("b"), 11954)
            == "[ALERT]    (11954) : backend 'b' has no server available!")
    assert (messages.stderr_line("alert", "Server b/s1 is DOWN.", 7)
            == "[WARNING]  (7) : Server b/s1 is DOWN.")


def test_info_escaping() -> None:
    assert messages.escape_info('a"b\x01') == "a\\x22b\\x01"
    assert messages.escape_info("plain text") == "plain text"


def test_default_sink_prints_haproxy_stderr_form(capsys) -> None:  # type: ignore[no-untyped-def]
    import os

    from healthcheck import stderr_log_event
    from tests.healthcheck_support import backend, server, state_of

    be = state_of(backend([server("s1", 1)])).backends["b"]
    stderr_log_event(be, "alert", "Server b/s1 is DOWN.")
    stderr_log_event(be, "emerg", "backend b has no server available!")
    err = capsys.readouterr().err.splitlines()
    pid = os.getpid()
    assert err == [f"[WARNING]  ({pid}) : Server b/s1 is DOWN.",
                   f"[ALERT]    ({pid}) : backend 'b' has no server available!"]
