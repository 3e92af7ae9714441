"""The `mailers` section and the proxies' `email-alert` settings.

Owns the section's keywords (`mailer <name> <addr>:<port>`, `timeout mail`) and the
`email-alert from|to|mailers|myhostname|level` keyword, with HAProxy 2.6.12's
messages, and the checks once every file is read: a proxy's settings are kept only
when `from`, `to` and `mailers` are all there (else HAProxy's warning), its mailers
must exist, and a section no proxy uses is dropped with HAProxy's warning. The frozen
results are ``lb.config.model.Mailers`` and ``EmailAlert``; lb.mailers sends them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lb.config.model as m
from lb.config.lexer import Line
from lb.config.registry import ParseCtx, origin
from lb.config.resolvers_kw import peer_address, peer_line, section_name, time_ms

LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
SETTINGS = ("from", "to", "mailers", "myhostname", "level")
IGNORED_TEXT = ("(the presence any of 'email-alert from', 'email-alert level' 'email-alert "
                "mailers', 'email-alert myhostname', or 'email-alert to' requires each of "
                "'email-alert from', 'email-alert mailers' and 'email-alert to' to be "
                "present).")


@dataclass
class MailersBuilder:
    name: str
    origin: m.Origin
    mailers: list[m.Mailer] = field(default_factory=list)
    timeout_mail: float = 10.0

    def freeze(self) -> m.Mailers:
        return m.Mailers(self.name, tuple(self.mailers), self.timeout_mail, self.origin)


def open_mailers(line: Line, ctx: ParseCtx, known: dict[str, MailersBuilder]) -> MailersBuilder:
    """`mailers <name>`; raises SectionAbort where HAProxy stops reading."""
    name = section_name(line, ctx, "mailers", known, lambda n, first: (
        f"mailers section '{n}' has the same name as another mailers section declared at "
        f"{first.file}:{first.line}."))
    sec = known[name] = MailersBuilder(name, origin(line))
    return sec


def statement(sec: MailersBuilder, line: Line, ctx: ParseCtx) -> None:
    kw = line.words[0]
    if kw == "mailer":
        parsed = peer_line(line, ctx, "mailer")
        if parsed is not None:
            name, addr, text = parsed
            peer = peer_address(line, ctx, f"'mailer {name}' : ", addr, text)
            if peer is not None:
                sec.mailers.append(m.Mailer(name, *peer, origin(line)))
    elif kw == "timeout":
        which = line.words[1] if len(line.words) > 1 else ""
        if which != "mail":
            ctx.alert(line, f"'timeout' expects 'mail' and <time> as arguments got '{which}'.",
                      "bad-argument", col=line.col(1))
        elif len(line.words) < 3 or not line.words[2]:
            ctx.alert(line, "'timeout mail' expects <time> as argument.", "missing-argument")
        else:
            ms = time_ms(line.words[2], line.words[2], "timeout mail", line, ctx)
            if ms is not None:
                sec.timeout_mail = ms / 1000.0
    else:
        ctx.alert(line, f"unknown keyword '{kw}' in 'mailers' section", "unknown-keyword",
                  col=line.col(0))


def kw_email_alert(settings: dict[str, str], line: Line, ctx: ParseCtx) -> None:
    """`email-alert <setting> <value>` into a proxy's ``settings``."""
    words = line.words
    what = words[1] if len(words) > 1 else ""
    value = words[2] if len(words) > 2 else ""
    if not what:
        ctx.alert(line, "missing argument after 'email-alert'.", "missing-argument")
    elif what == "level":
        if value not in LEVELS:  # (sic: HAProxy names the keyword and the value so)
            ctx.alert(line, f"unknown log level 'level' after '{value}'", "bad-argument",
                      col=line.col(2))
            return
        settings[what] = value
    elif what in SETTINGS:
        settings[what] = value
    else:
        ctx.alert(line, f"email-alert: unknown argument '{what}'.", "bad-argument",
                  col=line.col(1))


def finish(known: dict[str, MailersBuilder], proxies: list[tuple[str, str, dict[str, str]]],
           ctx: ParseCtx) -> tuple[tuple[m.Mailers, ...], dict[str, m.EmailAlert]]:
    """The sections proxies use, and each proxy's alert settings by proxy name.
    ``proxies``: (kind, name, settings) of every frontend/backend/listen."""
    alerts: dict[str, m.EmailAlert] = {}
    for kind, name, settings in proxies:
        if not settings:
            continue
        if not (settings.get("from") and settings.get("to") and settings.get("mailers")):
            ctx.warn(None, f"'email-alert' will be ignored for {kind} '{name}' {IGNORED_TEXT}",
                     "email-alert-ignored", style="plain")
            continue
        if settings["mailers"] not in known:
            ctx.alert(None, f"Proxy '{name}': unable to find mailers '{settings['mailers']}'.",
                      "unknown-mailers", style="plain", phase="check")
            continue
        alerts[name] = m.EmailAlert(settings["mailers"], settings["from"], settings["to"],
                                    LEVELS.index(settings.get("level", "alert")),
                                    settings.get("myhostname") or None)
    used = {a.mailers for a in alerts.values()}
    for name in known:
        if name not in used:
            ctx.warn(None, f"Removing incomplete section 'mailers {name}'.", "unused-mailers",
                     style="plain")
    return tuple(sec.freeze() for name, sec in known.items() if name in used), alerts
