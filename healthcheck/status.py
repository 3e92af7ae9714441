"""Check result vocabulary and the health counter arithmetic (pure, no I/O).

Owns: the CHECK_STATUSES table (short code shown in stats, result class, the
description used in logs) and the rise/fall counter of spec §7.2, plus the
small derived views (is the server up, the `status: a/b STATE` text of
`option log-health-checks`, the `x-haproxy-server-state` value).

Must not import: asyncio, sockets, lb.proxy, lb.log, healthcheck.runner.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Result(IntEnum):
    """What a check outcome means for the health counter."""

    UNKNOWN = 0
    FAILED = 1
    PASSED = 2
    CONDPASS = 3  # passed but asks for soft stop (NOLB), e.g. disable-on-404


@dataclass(frozen=True, slots=True)
class CheckStatus:
    code: str  # stats `check_status` column, e.g. "L7STS"
    result: Result
    desc: str  # text after `reason:` in logs
    has_code: bool = False  # logs append `, code: N` (layer 7 data was read)


# One row per status, in HAProxy's order of severity/layer.
CHECK_STATUSES: dict[str, CheckStatus] = {
    s.code: s
    for s in (
        CheckStatus("UNK", Result.UNKNOWN, "Unknown"),
        CheckStatus("INI", Result.UNKNOWN, "Initializing"),
        CheckStatus("CHECKED", Result.UNKNOWN, "No status change"),  # an agent's reply
        CheckStatus("HANA", Result.FAILED, "Health analyze"),  # `observe` (lb.hana)
        CheckStatus("SOCKERR", Result.FAILED, "Socket error"),
        CheckStatus("L4OK", Result.PASSED, "Layer4 check passed"),
        CheckStatus("L4TOUT", Result.FAILED, "Layer4 timeout"),
        CheckStatus("L4CON", Result.FAILED, "Layer4 connection problem"),
        CheckStatus("L6OK", Result.PASSED, "Layer6 check passed"),
        CheckStatus("L6TOUT", Result.FAILED, "Layer6 timeout"),
        CheckStatus("L6RSP", Result.FAILED, "Layer6 invalid response"),
        CheckStatus("L7TOUT", Result.FAILED, "Layer7 timeout"),
        CheckStatus("L7RSP", Result.FAILED, "Layer7 invalid response"),
        CheckStatus("L7OK", Result.PASSED, "Layer7 check passed", True),
        CheckStatus("L7OKC", Result.CONDPASS, "Layer7 check conditionally passed", True),
        CheckStatus("L7STS", Result.FAILED, "Layer7 wrong status", True),
        CheckStatus("PROCERR", Result.FAILED, "External check error", True),
        CheckStatus("PROCTOUT", Result.FAILED, "External check timeout"),
        CheckStatus("PROCOK", Result.PASSED, "External check passed", True),
    )
}


def status(code: str) -> CheckStatus:
    """The row for a status code (KeyError on an unknown code: a programming error)."""
    return CHECK_STATUSES[code]


# --------------------------------------------------------------------------- counter


def max_health(rise: int, fall: int) -> int:
    return rise + fall - 1


def is_up(health: int, rise: int) -> bool:
    return health >= rise


def initial_health(rise: int, disabled: bool) -> int:
    """Counter at start: `rise` (the lowest UP value), or 0 for a `disabled` (MAINT)
    server, which is not checked until it leaves maintenance (spec §7.2)."""
    return 0 if disabled else rise


def next_health(health: int, rise: int, fall: int, result: Result) -> tuple[int, bool]:
    """Apply one check result to the counter; return (new health, counter moved).

    Success climbs by one and jumps to the top once it reaches ``rise``; failure
    drops by one and jumps to 0 once it falls below ``rise`` (spec §7.2).
    """
    top = rise + fall - 1
    if result is Result.FAILED:
        if health > 0:
            health -= 1
            if health < rise:
                health = 0
            return health, True
        return health, False
    if result is Result.PASSED or result is Result.CONDPASS:
        if health < top:
            health += 1
            if health >= rise:
                health = top
            return health, True
        return health, False
    return health, False


def health_fraction(health: int, rise: int, fall: int, weight: int = 1) -> str:
    """`a/b STATE` as printed by `option log-health-checks` (spec §7.6)."""
    if health >= rise:
        return f"{health - rise + 1}/{fall} {'UP' if weight else 'DRAIN'}"
    return f"{health}/{rise} DOWN"


def server_state_word(health: int, rise: int, fall: int, running: bool, stopping: bool,
                      checked: bool) -> str:
    """The first field of `x-haproxy-server-state` (`UP 1/3`, `DOWN`, `NOLB 2/3` …)."""
    if not checked:
        return "no check"
    if running:
        word = "NOLB" if stopping else "UP"
        if health == rise + fall - 1:
            return word
        return f"{word} {health - rise + 1}/{fall}"
    if health:
        return f"DOWN {health}/{rise}"
    return "DOWN"
