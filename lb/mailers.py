"""Email alerts: HAProxy's `email-alert` settings at work.

Owns: which state-change lines are mailed, the message, and its delivery.

* HAProxy 2.6.12 mails a server's operational changes (`is DOWN`, `is UP`, `is
  stopping`), its entering drain, and the `option log-health-checks` lines, when
  their syslog level is at or above the proxy's `email-alert level` (`alert` by
  default: DOWN lines only). It does not mail maintenance, resolution, address or
  backend lines (observed with a mail catcher; tests/test_mailers.py).
* The message is HAProxy's: `From`, `To`, `Date` and `Subject: [HAProxy Alert]
  <line>` headers, then the line as the body (without its final period).
* Each mailer of the proxy's `mailers` section gets each alert, over its own SMTP
  exchange (HELO, MAIL FROM, RCPT TO, DATA, QUIT), one at a time and in order,
  bounded as a whole by the section's `timeout mail`. A mailer that fails or is
  slow loses that alert, as in HAProxy, and never holds up the proxy; at most
  ``QUEUE_MAX`` alerts wait for each mailer, the oldest ones go first.

A service of the process that runs the health checks: ``State.email_alerts`` is
the hook the state-change sinks call (healthcheck.runner.event_log_sink).

Must not import: lb.proxy, lb.cli, healthcheck.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections import deque
from typing import Any

from lb.config.model import EmailAlert, Mailer, Mailers
from lb.log import get_logger
from lb.state import BackendState, State

LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
QUEUE_MAX = 100
# the lines HAProxy mails (the others are logged only)
MAILED = re.compile(r"(?:(?:Backup )?Server \S+ (?:is (?:DOWN|UP|stopping)(?:[,.]| via )"
                    r"|enters drain state)|(?:Health|Agent) check for (?:backup )?server )")

_log = get_logger("lb.mailers")


def mailed(level: str, text: str, alert: EmailAlert) -> bool:
    """Whether HAProxy would mail this state-change line of a proxy with ``alert``."""
    rank = LEVELS.index(level) if level in LEVELS else len(LEVELS)
    return rank <= alert.level and MAILED.match(text) is not None


def message(alert: EmailAlert, line: str, now: float | None = None) -> bytes:
    """The DATA of one alert, with its terminating dot line."""
    text = line.removesuffix(".")
    date = time.strftime("%a, %d %b %Y %H:%M:%S %z (%Z)", time.localtime(now))
    body = (f"From: {alert.from_}\r\nTo: {alert.to}\r\nDate: {date}\r\n"
            f"Subject: [HAProxy Alert] {text}\r\n\r\n{text}\r\n")
    # (a line starting with a dot is doubled, as SMTP asks; HAProxy's never do)
    body = re.sub(r"(?m)^\.", "..", body)
    return (body + "\r\n.\r\n").encode("utf-8", "replace")


class SmtpError(Exception):
    pass


async def _reply(reader: asyncio.StreamReader, want: str) -> None:
    """One SMTP reply (continuation lines read too); SmtpError unless it is ``want``."""
    while True:
        line = await reader.readline()
        if not line:
            raise SmtpError(f"connection closed, expected {want}")
        text = line.decode("latin-1").rstrip("\r\n")
        if len(text) > 3 and text[3] == "-":
            continue
        if not text.startswith(want):
            raise SmtpError(f"expected {want}, got {text[:80]!r}")
        return


async def deliver(mailer: Mailer, alert: EmailAlert, data: bytes) -> None:
    """One SMTP exchange, in HAProxy's order."""
    reader, writer = await asyncio.open_connection(mailer.host, mailer.port)
    try:
        await _reply(reader, "220")
        helo = alert.myhostname or socket.gethostname()
        for command, want in ((f"HELO {helo}", "250"), (f"MAIL FROM:<{alert.from_}>", "250"),
                              (f"RCPT TO:<{alert.to}>", "250"), ("DATA", "354")):
            writer.write(command.encode("utf-8", "replace") + b"\r\n")
            await _reply(reader, want)
        writer.write(data)
        await _reply(reader, "250")
        writer.write(b"QUIT\r\n")
        await _reply(reader, "221")
    finally:
        writer.close()


class MailerQueue:
    """The alerts waiting for one mailer, sent one at a time by one task."""

    def __init__(self, section: Mailers, mailer: Mailer,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.section = section
        self.mailer = mailer
        self.loop = loop
        self.pending: deque[tuple[EmailAlert, bytes]] = deque(maxlen=QUEUE_MAX)
        self.task: asyncio.Task[None] | None = None
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    def put(self, alert: EmailAlert, data: bytes) -> None:
        if len(self.pending) == QUEUE_MAX:
            self.dropped += 1  # (the deque lets the oldest go)
        self.pending.append((alert, data))
        if self.task is None or self.task.done():
            self.task = self.loop.create_task(self._run())

    async def _run(self) -> None:
        while self.pending:
            alert, data = self.pending.popleft()
            try:
                await asyncio.wait_for(deliver(self.mailer, alert, data),
                                       max(self.section.timeout_mail, 0.001))
                self.sent += 1
            except (TimeoutError, OSError, SmtpError) as exc:
                self.failed += 1
                _log.warning("email_alert_failed", mailers=self.section.name,
                             mailer=self.mailer.name, error=str(exc) or type(exc).__name__)

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()


class EmailAlerts:
    """The hook: ``notify(backend, level, text)`` for every state-change line."""

    def __init__(self, state: State, loop: asyncio.AbstractEventLoop) -> None:
        self.queues: dict[str, list[MailerQueue]] = {
            sec.name: [MailerQueue(sec, mailer, loop) for mailer in sec.mailers]
            for sec in state.config.mailers}

    def notify(self, be: BackendState, level: str, text: str) -> None:
        alert = be.model.email_alert
        if alert is None or not mailed(level, text, alert):
            return
        data = message(alert, text)
        for q in self.queues.get(alert.mailers, ()):
            q.put(alert, data)

    def close(self) -> None:
        for queues in self.queues.values():
            for q in queues:
                q.close()


class MailerService:
    """Email alerts as a data-plane service (``lb.proxy.runner.start(...,
    services=[...])``): installs ``State.email_alerts`` until cancelled."""

    async def __call__(self, state: State, loop: asyncio.AbstractEventLoop) -> Any:
        alerts = EmailAlerts(state, loop)
        state.email_alerts = alerts.notify
        try:
            await asyncio.Event().wait()
        finally:
            state.email_alerts = None
            alerts.close()
