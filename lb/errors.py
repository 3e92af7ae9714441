"""Configuration diagnostics and termination-state codes.

Owns: the ``Diagnostic`` value (one message about a configuration), the
``Diagnostics`` collector with HAProxy's 50-fatal-error cap, rendering in HAProxy's
exact stderr format (spec §1.8) and as JSON objects, and the table of termination
state codes (spec §9) that the data plane and the log layer share.

Must not import: anything but the standard library (layer L0).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

Severity = Literal["alert", "warning", "notice"]

# How the location prefix of a message is written; HAProxy is not consistent and
# tools grep these lines, so each message keeps the form HAProxy uses for it.
#   "parsing"  -> parsing [F:L] : text
#   "tight"    -> parsing [F:L]: text
#   "bracket"  -> [F:L] : text
#   "Parsing"  -> Parsing [F:L]: text
#   "plain"    -> text  (location only in JSON)
LocStyle = Literal["parsing", "tight", "bracket", "Parsing", "parsine", "plain"]

MAX_FATAL = 50
PIPE = "   | "  # prefix of HAProxy's continuation lines


def pipe(*lines: str) -> tuple[str, ...]:
    """Continuation lines in HAProxy's ``   | text`` form."""
    return tuple(PIPE + line for line in lines)

_LEVEL_TAG = {"alert": "[ALERT]", "warning": "[WARNING]", "notice": "[NOTICE]"}


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One message about a configuration (or about the command line)."""

    severity: Severity
    file: str
    line: int
    col: int  # 1-based column of the word concerned (0 = whole line / unknown)
    text: str  # the message without location, first line only
    code: str  # short stable identifier, e.g. "unknown-keyword"
    suggestion: str | None = None
    style: LocStyle = "parsing"
    more: tuple[str, ...] = ()  # continuation lines, printed verbatim (see ``pipe``)
    nonfatal: bool = False  # an ALERT that HAProxy counts neither as error nor warning
    phase: Literal["parse", "check"] = "parse"  # "check" = after all files were parsed
    stops: bool = False  # HAProxy stops reading the file after this error
    fails: bool = False  # a WARNING after which HAProxy still fails the file

    @property
    def fatal(self) -> bool:
        return (self.severity == "alert" and not self.nonfatal) or self.fails

    def message(self) -> str:
        """The located message as HAProxy prints it after ``config : ``."""
        loc = f"{self.file}:{self.line}"
        style = self.style if self.file else "plain"
        if style == "parsing":
            head = f"parsing [{loc}] : {self.text}"
        elif style == "tight":
            head = f"parsing [{loc}]: {self.text}"
        elif style == "bracket":
            head = f"[{loc}] : {self.text}"
        elif style == "Parsing":
            head = f"Parsing [{loc}]: {self.text}"
        elif style == "parsine":  # (a misspelling of HAProxy 2.6.12's, kept)
            head = f"parsine [{loc}] : {self.text}"
        else:
            head = self.text
        return head

    def render(self, pid: int) -> str:
        """Full stderr form, possibly several lines, without the final newline."""
        tag = _LEVEL_TAG[self.severity].ljust(10)
        out = [f"{tag} ({pid}) : config : {self.message()}"]
        out.extend(self.more)
        return "\n".join(out)

    def as_json(self) -> dict[str, object]:
        text = self.text
        if self.more:
            # continuation lines lose HAProxy's "   | " prefix; caret lines keep their
            # indentation so the caret still points at the right column
            text = "\n".join((text, *(m.removeprefix(PIPE) for m in self.more if m.strip())))
        return {
            "file": _valid_utf8(self.file) or None,
            "line": self.line or None,
            "column": self.col or None,
            "severity": self.severity,
            "code": self.code,
            "message": _valid_utf8(text),
            "suggestion": _valid_utf8(self.suggestion) if self.suggestion else None,
        }


def _valid_utf8(text: str) -> str:
    """JSON output is UTF-8: bytes of the file that were not (kept as surrogates by
    the reader) become U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def render_line(severity: Severity, pid: int, text: str) -> str:
    """A non-located message line (``[ALERT]    (pid) : config : text``)."""
    return f"{_LEVEL_TAG[severity].ljust(10)} ({pid}) : config : {text}"


def render_json(diags: Iterable[Diagnostic]) -> str:
    """One JSON object per line, in order."""
    return "".join(json.dumps(d.as_json(), ensure_ascii=False) + "\n" for d in diags)


class TooManyErrors(Exception):
    """Raised by ``Diagnostics.add`` once the fatal-error cap is reached."""


class Diagnostics:
    """Ordered collection of diagnostics with HAProxy's 50-fatal-error cap, which
    counts the errors of the parse only (HAProxy's checks after it report them all)."""

    __slots__ = ("items", "fatal_count", "parse_fatal", "stopped")

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []
        self.fatal_count = 0
        self.parse_fatal = 0
        self.stopped = False

    def add(self, diag: Diagnostic) -> None:
        if self.stopped:
            raise TooManyErrors()
        self.items.append(diag)
        if diag.fatal:
            self.fatal_count += 1
            if diag.phase == "check":
                return
            self.parse_fatal += 1
            if self.parse_fatal >= MAX_FATAL:
                self.stopped = True
                # HAProxy notices the count as it reads the next line, and names it
                self.items.append(Diagnostic(
                    "alert", diag.file, diag.line + 1 if diag.file else 0, 0,
                    f"too many fatal errors ({MAX_FATAL}), stopping now.",
                    "too-many-errors", style="tight" if diag.file else "plain"))
                raise TooManyErrors()

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def has_fatal(self) -> bool:
        return self.fatal_count > 0

    @property
    def has_warning(self) -> bool:
        return any(d.severity == "warning" for d in self.items)


# --------------------------------------------------------------------------- termination states

# First character of %ts: what ended the session (spec §9, configuration.txt §8.5).
TERM_CAUSES: dict[str, str] = {
    "-": "normal session completion",
    "C": "the client aborted",
    "S": "the server aborted or refused",
    "P": "the proxy aborted (deny, limit, bad response)",
    "L": "the session was locally processed (stats, redirect, return)",
    "R": "a resource on the proxy was exhausted",
    "I": "an internal error was detected",
    "D": "the session was killed because the server went down",
    "U": "the session was killed on a backup server because an active came up",
    "K": "the session was killed by an administrator",
    "c": "the client-side timeout expired",
    "s": "the server-side timeout expired",
}

# Second character of %ts: the session phase when it ended.
TERM_PHASES: dict[str, str] = {
    "R": "waiting for a complete request from the client",
    "Q": "waiting in a queue",
    "C": "waiting for the server connection",
    "H": "waiting for complete response headers from the server",
    "D": "in the data phase",
    "L": "transmitting the last data to the client",
    "T": "tarpitted",
    "-": "normal session completion",
}

# The two-character states the proxy emits (%ts), with what they mean. The data plane
# may use the literal codes; this table is what logs, docs and tests refer to.
TERM_STATES: dict[str, str] = {
    "--": "normal completion",
    "cR": "client timeout while waiting for the request (408)",
    "cD": "client or tunnel timeout during the data phase",
    "CR": "client aborted before sending a complete request",
    "CQ": "client aborted while queued",
    "CC": "client aborted while the server connection was being set up",
    "CH": "client aborted while waiting for the response headers",
    "CD": "client closed during the data phase",
    "SC": "server refused the connection or connecting failed (503)",
    "SH": "server closed before sending complete headers (502)",
    "SD": "server closed during the data phase",
    "sC": "connect timeout (503)",
    "sH": "server timeout before the response headers (504)",
    "sD": "server timeout during the data phase",
    "sQ": "queue timeout (503)",
    "PR": "request denied or invalid (proxy)",
    "PH": "invalid response from the server (502)",
    "PT": "tarpitted",
    "PC": "proxy refused the connection (maxconn, limits)",
    "LR": "answered locally (redirect, return, stats page)",
    "KD": "killed by an administrator during the data phase",
    "DD": "killed because the server went down (on-marked-down)",
    "UD": "killed on a backup server when an active one came up",
    "RC": "resource shortage while connecting",
    "IR": "internal error",
}

# Importable names for the common states.
TS_NORMAL = "--"
TS_CLIENT_TIMEOUT_REQUEST = "cR"
TS_CLIENT_TIMEOUT_DATA = "cD"
TS_CLIENT_ABORT_QUEUE = "CQ"
TS_CLIENT_ABORT_CONNECT = "CC"
TS_CLIENT_ABORT_HEADERS = "CH"
TS_CLIENT_CLOSE_DATA = "CD"
TS_SERVER_REFUSED = "SC"
TS_SERVER_CLOSE_HEADERS = "SH"
TS_SERVER_CLOSE_DATA = "SD"
TS_CONNECT_TIMEOUT = "sC"
TS_SERVER_TIMEOUT_HEADERS = "sH"
TS_SERVER_TIMEOUT_DATA = "sD"
TS_QUEUE_TIMEOUT = "sQ"
TS_DENIED = "PR"
TS_BAD_RESPONSE = "PH"
TS_TARPIT = "PT"
TS_LOCAL = "LR"
TS_KILLED = "KD"
TS_SERVER_DOWN_KILL = "DD"
TS_BACKUP_KILL = "UD"
