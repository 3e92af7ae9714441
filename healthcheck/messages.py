"""HAProxy's exact texts for server state changes caused by health checks.

Owns: rendering of the `Server b/s is DOWN, reason: ...` family of lines (spec §7.6),
the `Health check for server ...` lines of `option log-health-checks`, the
backend-empty line, the syslog level of each, and the stderr mirror form
(`[WARNING]  (pid) : text`). Pure string building: no I/O, no state access.

Checked against HAProxy 2.6.12 on 127.0.0.1 (see tests/test_healthcheck_messages.py).

Must not import: asyncio, lb.proxy, lb.log, healthcheck.runner.
"""

from __future__ import annotations

from healthcheck.status import CheckStatus

# stderr tag per syslog level, padded as HAProxy pads them.
_STDERR_TAG = {
    "emerg": "[ALERT]    ",
    "alert": "[WARNING]  ",
    "crit": "[WARNING]  ",
    "err": "[WARNING]  ",
    "warning": "[WARNING]  ",
    "notice": "[WARNING]  ",
    "info": "[NOTICE]   ",
    "debug": "[NOTICE]   ",
}


def escape_info(text: str) -> str:
    """Non-printable characters and `"` become `\\xHH` (like chunk_asciiencode)."""
    if all(" " <= c <= "~" and c != '"' for c in text):
        return text
    out = []
    for c in text:
        if " " <= c <= "~" and c != '"':
            out.append(c)
        else:
            out.append(f"\\x{ord(c) & 0xFF:02x}")
    return "".join(out)


def reason(st: CheckStatus, code: int, desc: str, duration_ms: int) -> str:
    """`, reason: <desc>[, code: N][, info: "<text>"], check duration: Nms`."""
    parts = [f", reason: {st.desc}"]
    if st.has_code:
        parts.append(f", code: {code}")
    if desc:
        parts.append(f', info: "{escape_info(desc)}"')
    if duration_ms >= 0:
        parts.append(f", check duration: {duration_ms}ms")
    return "".join(parts)


def _who(be: str, srv: str, backup: bool) -> str:
    return f"{'Backup ' if backup else ''}Server {be}/{srv}"


def _on_backup(act: int, bck: int) -> str:
    return " Running on backup." if bck and not act else ""


def server_down(be: str, srv: str, backup: bool, why: str, act: int, bck: int,
                sessions: int, requeued: int, queued: int) -> str:
    return (f"{_who(be, srv, backup)} is DOWN{why}. {act} active and {bck} backup servers "
            f"left.{_on_backup(act, bck)} {sessions} sessions active, {requeued} requeued, "
            f"{queued} remaining in queue.")


def server_up(be: str, srv: str, backup: bool, why: str, act: int, bck: int,
              requeued: int, queued: int) -> str:
    return (f"{_who(be, srv, backup)} is UP{why}. {act} active and {bck} backup servers "
            f"online.{_on_backup(act, bck)} {requeued} sessions requeued, "
            f"{queued} total in queue.")


def server_stopping(be: str, srv: str, backup: bool, why: str, act: int, bck: int,
                    requeued: int, queued: int) -> str:
    return (f"{_who(be, srv, backup)} is stopping{why}. {act} active and {bck} backup "
            f"servers online.{_on_backup(act, bck)} {requeued} sessions requeued, "
            f"{queued} total in queue.")


def health_check(be: str, srv: str, backup: bool, passed: bool, conditional: bool,
                 why: str, fraction: str, kind: str = "Health") -> str:
    """One `option log-health-checks` line (`fraction` is `a/b STATE`; ``kind`` is
    "Health", or "Agent" for the agent check)."""
    verdict = ("conditionally " if conditional else "") + ("succeeded" if passed else "failed")
    return (f"{kind} check for {'backup ' if backup else ''}server {be}/{srv} {verdict}"
            f"{why}, status: {fraction}.")


def backend_down(be: str) -> str:
    """The log form; stderr quotes the name (see ``stderr_line``)."""
    return f"backend {be} has no server available!"


def stderr_text(text: str) -> str:
    """The stderr wording of a log line (only the backend-empty line differs)."""
    if text.startswith("backend ") and text.endswith(" has no server available!"):
        name = text[len("backend "):-len(" has no server available!")]
        return f"backend '{name}' has no server available!"
    return text


def stderr_line(level: str, text: str, pid: int) -> str:
    """How HAProxy mirrors a state-change log line on stderr."""
    return f"{_STDERR_TAG.get(level, '[WARNING]  ')}({pid}) : {stderr_text(text)}"
