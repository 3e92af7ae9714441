"""lb.errors: HAProxy's stderr rendering, JSON form and the 50-fatal cap."""

import json

import pytest

from lb.errors import (
    MAX_FATAL,
    Diagnostic,
    Diagnostics,
    TooManyErrors,
    pipe,
    render_json,
    render_line,
)


def test_levels_are_padded_to_the_same_column():
    # as HAProxy 2.6.12 prints them
    assert render_line("notice", 7, "x") == "[NOTICE]   (7) : config : x"
    assert render_line("warning", 7, "x") == "[WARNING]  (7) : config : x"
    assert render_line("alert", 7, "x") == "[ALERT]    (7) : config : x"


@pytest.mark.parametrize("style,expected", [
    ("parsing", "parsing [f.cfg:3] : boom"),
    ("tight", "parsing [f.cfg:3]: boom"),
    ("bracket", "[f.cfg:3] : boom"),
    ("Parsing", "Parsing [f.cfg:3]: boom"),
    ("plain", "boom"),
])
def test_location_styles(style, expected):
    d = Diagnostic("alert", "f.cfg", 3, 1, "boom", "x", style=style)
    assert d.message() == expected


def test_continuation_lines_and_json():
    d = Diagnostic("warning", "f.cfg", 2, 5, "missing timeouts", "missing-timeouts",
                   suggestion=None, style="plain", more=pipe("one", "two"))
    assert d.render(42) == ("[WARNING]  (42) : config : missing timeouts\n"
                            "   | one\n   | two")
    obj = json.loads(render_json([d]))
    assert obj == {"file": "f.cfg", "line": 2, "column": 5, "severity": "warning",
                   "code": "missing-timeouts", "message": "missing timeouts\none\ntwo",
                   "suggestion": None}


def test_fatal_cap():
    diags = Diagnostics()
    with pytest.raises(TooManyErrors):
        for i in range(MAX_FATAL + 5):
            diags.add(Diagnostic("alert", "f", i, 0, "bad", "x"))
    assert diags.fatal_count == MAX_FATAL and diags.stopped
    assert diags.items[-1].text == "too many fatal errors (50), stopping now."
    with pytest.raises(TooManyErrors):
        diags.add(Diagnostic("warning", "f", 1, 0, "late", "x"))


def test_soft_alert_is_neither_fatal_nor_warning():
    d = Diagnostic("alert", "f", 1, 0, "'maxconn' already specified. Continuing.", "dup",
                   nonfatal=True)
    diags = Diagnostics()
    diags.add(d)
    assert not d.fatal and not diags.has_fatal and not diags.has_warning


def test_json_keeps_the_caret_column():
    from lb.config import load_text

    res = load_text('global\n log-tag "ab\n', "q.cfg")
    obj = json.loads(render_json(res.diagnostics).splitlines()[0])
    assert obj["message"] == 'unmatched quote at position 10:\n  log-tag "ab\n          ^'
    assert (obj["line"], obj["column"], obj["code"]) == (2, 10, "lex-error")
