"""Time, size and integer parsing shared by the config loader and the CLI.

Owns: HAProxy's time format (``<int>[us|ms|s|m|h|d]``, milliseconds by default,
rounded up to the millisecond, at most 2147483647 ms) and size format
(``<int>[k|m|g]``, 1024-based), with HAProxy's error texts (spec §2.5).

Times are returned as float **seconds**.

Must not import: anything but the standard library (layer L0).
"""

from __future__ import annotations

import math
import re

TIMER_MAX_MS = 2147483647

# unit -> microseconds
_TIME_UNITS: dict[str, int] = {
    "us": 1, "ms": 1000, "s": 1_000_000, "m": 60_000_000,
    "h": 3_600_000_000, "d": 86_400_000_000,
}

_SIZE_UNITS: dict[str, int] = {"k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}


class UnitError(ValueError):
    """A time or size value could not be parsed.

    ``reason`` is "empty", "char" (``char`` holds the offending character) or
    "overflow". ``str(err)`` is HAProxy's text once ``where`` is known.
    """

    def __init__(self, reason: str, value: str, char: str = "", where: str = "") -> None:
        self.reason = reason
        self.value = value
        self.char = char
        self.where = where
        super().__init__(self.describe(where))

    def describe(self, where: str) -> str:
        if self.reason == "empty":
            return f"'{where}' expects an integer value (in milliseconds)"
        if self.reason == "overflow":
            return (f"timer overflow in argument '{self.value}' to '{where}' "
                    f"(maximum value is {TIMER_MAX_MS} ms or ~24.8 days)")
        return f"unexpected character '{self.char}' in '{where}'"


_DIGITS = re.compile(r"[0-9]*")


def _time_parts(text: str, where: str, default_unit: str) -> tuple[int, int, str]:
    """(number, µs per unit, trailing junk after a complete unit) of a HAProxy time;
    a bare number is in ``default_unit``."""
    if not text:
        raise UnitError("empty", text, where=where)
    i = _DIGITS.match(text).end()  # type: ignore[union-attr]
    if i == 0:
        raise UnitError("char", text, text[0], where)
    rest = text[i:]
    if not rest:
        return int(text), _TIME_UNITS[default_unit], ""
    for unit in ("us", "ms", "s", "m", "h", "d"):
        if rest.startswith(unit):
            return int(text[:i]), _TIME_UNITS[unit], rest[len(unit):]
    raise UnitError("char", text, rest[0], where)


def parse_time_ms(text: str, where: str = "") -> tuple[int, str]:
    """Parse a HAProxy time; return (milliseconds, trailing junk after a valid unit).

    Trailing junk after a complete unit (``10sx``) is returned rather than rejected,
    as HAProxy 2.6 accepts it with a warning (see ``junk_warning``).
    """
    value, mult, junk = _time_parts(text, where, "ms")
    ms = math.ceil(value * mult / 1000) if mult < 1000 else value * (mult // 1000)
    if ms > TIMER_MAX_MS:
        raise UnitError("overflow", text, where=where)
    return ms, junk


def parse_time_s(text: str, where: str = "") -> tuple[int, str]:
    """A HAProxy time read in seconds (a bare number is seconds; smaller units are
    rounded down, as HAProxy's TIME_UNIT_S parsing does); (seconds, trailing junk).
    The overflow limit applies to the seconds, with HAProxy's text (in ms)."""
    value, mult, junk = _time_parts(text, where, "s")
    seconds = value * mult // 1_000_000
    if seconds > TIMER_MAX_MS:
        raise UnitError("overflow", text, where=where)
    return seconds, junk


def junk_warning(text: str, junk: str) -> str:
    """HAProxy 2.6's warning text for a time value with junk after its unit."""
    return (f"unexpected character '{junk[0]}' after the timer value '{text}', only "
            "(us=microseconds,ms=milliseconds,s=seconds,m=minutes,h=hours,d=days) are "
            "supported. This will be reported as an error in next versions.")


def parse_time(text: str, where: str = "") -> float:
    """Parse a HAProxy time strictly (junk after the unit is an error); seconds."""
    ms, junk = parse_time_ms(text, where)
    if junk:
        raise UnitError("char", text, junk[0], where)
    return ms / 1000.0


def parse_size(text: str, where: str = "") -> int:
    """Parse ``<int>[k|m|g]`` (case-insensitive unit, 1024-based)."""
    if not text:
        raise UnitError("empty", text, where=where)
    i = 0
    while i < len(text) and text[i].isdigit():
        i += 1
    if i == 0:
        raise UnitError("char", text, text[0], where)
    value = int(text[:i])
    rest = text[i:]
    if not rest:
        return value
    mult = _SIZE_UNITS.get(rest[0].lower())
    if mult is None or len(rest) > 1:
        bad = rest[0] if mult is None else rest[1]
        raise UnitError("char", text, bad, where)
    return value * mult


def parse_int(text: str) -> int | None:
    """Strict decimal integer (optional sign); None when not a number."""
    if not text:
        return None
    body = text[1:] if text[0] in "+-" else text
    if not body.isdigit() or not body.isascii():
        return None
    return int(text)


def atoi(text: str) -> int:
    """C ``atoi``: leading optional sign and digits, 0 when none (HAProxy's laxness)."""
    if text.isascii() and text.isdigit():  # the usual case, in one step
        return int(text)
    i = 0
    n = len(text)
    while i < n and text[i] in " \t":
        i += 1
    sign = 1
    if i < n and text[i] in "+-":
        sign = -1 if text[i] == "-" else 1
        i += 1
    j = i
    while j < n and "0" <= text[j] <= "9":
        j += 1
    return sign * int(text[i:j]) if j > i else 0
