"""Passive health analysis: `observe layer4|layer7`, `error-limit` and `on-error`.

Owns: what the data plane may observe about a server while it serves traffic (a
connection made or failed, a valid or a wrong HTTP status, an invalid response, a
read error, a read timeout, a close before the response), what each observation
means under each `observe` mode, and each server's count of consecutive errors.

When a server's count reaches its `error-limit`, the count starts again, the
server's `hanafail` counter grows, and the State's ``health_analysis`` hook is
called with the server and HAProxy's text ("Detected 10 consecutive errors, last one
was: Wrong http response"). The hook carries out the `on-error` action: the
health-check runner installs it where checks run; a worker installs one that sends
the text to its master (lb.master), where they run. Only servers with `check` are
observed (``ServerState.observe`` is 0 otherwise: HAProxy's analysis needs a check
task); a State served without the check service has no hook, and only the counter
moves.

The table follows HAProxy 2.6 (src/check.c): layer4 watches connections only;
layer7 counts connection failures and every response, and ignores successful
connections. A response status from 100 to 499, or 501 or 505 (which a client's
request can cause), is good; any other is an error.
"""

from __future__ import annotations

from typing import Any

IGNORED = 0
ERROR = 1
GOOD = 2

# observations (HAProxy's analyze statuses)
L4_OK = 1
L4_ERR = 2
HTTP_OK = 3
HTTP_STS = 4
HTTP_HDRRSP = 5
HTTP_READ_ERROR = 6
HTTP_READ_TIMEOUT = 7
HTTP_BROKEN_PIPE = 8

# observation -> (text in the message, meaning under layer4, meaning under layer7)
ANALYZE_STATUSES: dict[int, tuple[str, int, int]] = {
    L4_OK: ("L4 successful connection", GOOD, IGNORED),
    L4_ERR: ("L4 unsuccessful connection", ERROR, ERROR),
    HTTP_OK: ("Correct http response", IGNORED, GOOD),
    HTTP_STS: ("Wrong http response", IGNORED, ERROR),
    HTTP_HDRRSP: ("Invalid http response (headers)", IGNORED, ERROR),
    HTTP_READ_ERROR: ("Read error (http)", IGNORED, ERROR),
    HTTP_READ_TIMEOUT: ("Read timeout (http)", IGNORED, ERROR),
    HTTP_BROKEN_PIPE: ("Close from server (http)", IGNORED, ERROR),
}

# `observe` word -> ServerState.observe (0: not observed)
OBSERVE_MODES = {"none": 0, "layer4": 1, "layer7": 2}


def status_of_response(status: int) -> int:
    """HTTP_OK or HTTP_STS for a response status from the server."""
    if status >= 100 and (status < 500 or status == 501 or status == 505):
        return HTTP_OK
    return HTTP_STS


def message(errors: int, observation: int) -> str:
    return (f"Detected {errors} consecutive errors, last one was: "
            f"{ANALYZE_STATUSES[observation][0]}")


def observe(srv: Any, observation: int) -> None:
    """One observation about ``srv`` (a ServerState whose ``observe`` is set)."""
    meaning = ANALYZE_STATUSES[observation][srv.observe]
    if meaning == IGNORED:
        return
    if meaning == GOOD:
        srv.hana_errors = 0
        return
    srv.hana_errors += 1
    if srv.hana_errors < srv.model.error_limit:
        return
    text = message(srv.hana_errors, observation)
    srv.hana_errors = 0
    srv.counters.hanafail += 1
    hook = srv.backend.state.health_analysis
    if hook is not None:
        hook(srv, text)
