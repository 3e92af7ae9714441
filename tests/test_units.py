"""lb.units: HAProxy time/size formats and their error texts (spec §2.5)."""

import pytest

from lb.units import UnitError, atoi, junk_warning, parse_size, parse_time, parse_time_ms


@pytest.mark.parametrize("text,ms", [
    ("0", 0), ("100", 100), ("100ms", 100), ("5s", 5000), ("2m", 120000), ("1h", 3600000),
    ("1d", 86400000), ("100us", 1), ("1us", 1), ("1500us", 2), ("24d", 2073600000),
])
def test_time_values(text, ms):
    assert parse_time_ms(text) == (ms, "")


def test_time_seconds_float():
    assert parse_time("1500") == 1.5
    assert parse_time("25s") == 25.0


@pytest.mark.parametrize("text,where,msg", [
    # checked against HAProxy 2.6.12: same texts for `timeout <x> <value>`
    ("1.5s", "timeout client", "unexpected character '.' in 'timeout client'"),
    ("-1", "timeout server", "unexpected character '-' in 'timeout server'"),
    ("1S", "timeout check", "unexpected character 'S' in 'timeout check'"),
    ("30d", "timeout connect", "timer overflow in argument '30d' to 'timeout connect' "
     "(maximum value is 2147483647 ms or ~24.8 days)"),
    ("", "timeout queue", "'timeout queue' expects an integer value (in milliseconds)"),
])
def test_time_errors(text, where, msg):
    with pytest.raises(UnitError) as ei:
        parse_time_ms(text, where)
    assert str(ei.value) == msg


def test_time_junk_after_unit_is_returned_and_warned():
    # HAProxy 2.6.12 accepts `10sx` with a warning
    assert parse_time_ms("10sx") == (10000, "x")
    assert junk_warning("10sx", "x").startswith("unexpected character 'x' after the timer "
                                                "value '10sx', only (us=microseconds")
    with pytest.raises(UnitError):
        parse_time("10sx")


@pytest.mark.parametrize("text,n", [("0", 0), ("16384", 16384), ("64k", 65536),
                                    ("64K", 65536), ("2m", 2 * 1024 ** 2), ("1g", 1024 ** 3)])
def test_sizes(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize("text", ["", "k", "1x", "1kb", "-1"])
def test_bad_sizes(text):
    with pytest.raises(UnitError):
        parse_size(text)


def test_atoi_is_lax_like_c():
    assert atoi("12abc") == 12
    assert atoi("abc") == 0
    assert atoi("-3") == -3


def test_termination_state_table_is_consistent():
    from lb import errors

    for code in errors.TERM_STATES:
        assert len(code) == 2
        assert code[0] in errors.TERM_CAUSES and code[1] in errors.TERM_PHASES
    assert errors.TS_CLIENT_TIMEOUT_DATA == "cD" and errors.TS_SERVER_TIMEOUT_HEADERS == "sH"
    assert errors.TS_DENIED in errors.TERM_STATES
