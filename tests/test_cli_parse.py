"""CLI command parsing and execution without sockets (pure, h11 style)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lb import cli
from tests.stats_support import make_state

NOW = 1_000_100.0


def session(level: int = cli.ADMIN) -> cli.Session:
    logs: list[tuple[str, str]] = []
    return cli.Session(make_state(), level=level, clock=lambda: NOW,
                       log_event=lambda be, lvl, text: logs.append((lvl, text)))


def test_split_commands_and_words() -> None:
    assert cli.split_commands("a;b") == ["a", "b"]
    assert cli.split_commands("a\\;b;c") == ["a\\;b", "c"]
    assert cli.split_commands("x;") == ["x", ""]
    assert cli.split_words("  show   stat  ") == ["show", "stat"]
    assert cli.split_words("a\\ b c") == ["a b", "c"]
    assert cli.split_words("a\\;b") == ["a;b"]


def test_lookup_prefers_the_longest_command() -> None:
    c = cli.lookup(["show", "servers", "state", "be"])
    assert c is not None and c.words == ("show", "servers", "state")
    assert cli.lookup(["show", "stat", "typed"]).words == ("show", "stat")  # type: ignore[union-attr]
    assert cli.lookup(["show"]) is None


def test_cli_commands_table_is_consistent() -> None:
    keys = [c.words for c in cli.CLI_COMMANDS]
    assert len(keys) == len(set(keys))
    body = [c.words for c in cli.CLI_COMMANDS[:-3]]
    assert body == sorted(body), "rows are kept alphabetical (help/prompt/quit last)"
    assert [c.words for c in cli.CLI_COMMANDS[-3:]] == [("help",), ("prompt",), ("quit",)]
    for c in cli.CLI_COMMANDS:
        assert len(c.help_line().split(": ", 1)[0]) >= 42 and c.level in cli.LEVEL_NAMES


def test_weight_parsing_rules() -> None:
    sess = session()
    s1 = sess.state.backends["be"].servers[0]  # initial weight 3
    assert cli.parse_weight(s1, "0") == 0 and cli.parse_weight(s1, "256") == 256
    assert cli.parse_weight(s1, "50%") == 1 and cli.parse_weight(s1, "10000%") == 256
    for bad, msg in (("257", "Absolute weight"), ("-3", "Absolute weight"),
                     ("x", "Empty weight string"), ("3x", "Trailing garbage"),
                     ("-5%", "Relative weight must be positive.")):
        try:
            cli.parse_weight(s1, bad)
        except cli.CliError as e:
            assert str(e).startswith(msg), bad
        else:
            raise AssertionError(bad)


def test_run_line_answers_each_command_with_an_empty_line() -> None:
    sess = session()
    assert cli.run_line(sess, "show cli level;show backend") == "admin\n\n# name\nbe\nws\n\n"
    sess.prompt = True
    assert cli.run_line(sess, "show cli level") == "admin\n\n> "
    assert cli.run_line(sess, "quit;show cli level") == "" and sess.quit  # as HAProxy


printable = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)
words = st.lists(st.sampled_from(
    ["show", "stat", "set", "server", "be/s1", "be/", "/", "#3/#1", "weight", "state",
     "drain", "maint", "ready", "%", "-1", "999999999999", "typed", "json", "get", "sess",
     "0x", "shutdown", "session", "clear", "counters", "all", "help", "errors", "info",
     "health", "enable", "disable", "websockets", "prompt", "\\", ";", "servers", "3", "4"]),
    max_size=7).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(printable, words), st.sampled_from([cli.USER, cli.OPERATOR, cli.ADMIN]))
def test_any_input_gets_an_answer_never_an_exception(line: str, level: int) -> None:
    sess = session(level)
    out = cli.run_line(sess, line)
    assert isinstance(out, str) and out.endswith(("\n", "> "))


def test_a_failing_handler_is_answered_not_raised() -> None:
    sess = session()
    sess.state.streams[1] = object()  # no kill(): the handler hits an AttributeError
    out = cli.run_line(sess, "shutdown session 1; show cli level")
    assert out.startswith("Internal error in 'shutdown session': AttributeError")
    assert out.endswith("\n\nadmin\n\n")
