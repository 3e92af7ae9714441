"""Keyword tables and the mutable builders keyword handlers fill in.

Owns: the ``Keyword`` row type (name, handler, side capability, whether allowed in
``defaults``, argument limit, help text), ``Table`` (lookup plus did-you-mean via
difflib), ``ParseCtx`` (how handlers report diagnostics with HAProxy's wording, and
the strict switch), the capability checks generated from table rows (spec §1.8),
and the per-section builders (``GlobalBuilder``, ``ProxyBuilder``) that
``lb.config.build`` freezes into the model.

Must not import: lb.config.build, lb.config.*_kw (they import this module).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import lb.config.model as m
from lb.config.lexer import Line
from lb.errors import Diagnostic, Diagnostics, LocStyle
from lb.match.patref import PatternRefs

Handler = Callable[[Any, Line, "ParseCtx"], None]


@dataclass(frozen=True, slots=True)
class Keyword:
    """One row of a keyword table."""

    name: str
    handler: Handler
    side: str | None = None  # "frontend" / "backend": capability the proxy needs
    defaults: bool = True  # allowed in a defaults section
    fatal_side: bool = False  # missing capability is fatal (else warning + ignored)
    read_off_side: bool = False  # ... or a warning, and the line still read (its errors
    # count), as HAProxy's http-check / tcp-check parsers do
    max_args: int | None = None  # words after the keyword; more -> fatal
    named_defaults_only: bool = False  # rules/acls: only in named defaults (2.5+)
    help: str = ""


class Table:
    """A keyword table with did-you-mean suggestions."""

    def __init__(self, section: str, rows: Iterable[Keyword]) -> None:
        self.section = section
        self.rows: dict[str, Keyword] = {}
        for row in rows:
            if row.name in self.rows:
                raise ValueError(f"duplicate keyword {row.name!r} in {section} table")
            self.rows[row.name] = row

    def get(self, name: str) -> Keyword | None:
        return self.rows.get(name)

    def suggest(self, name: str) -> str | None:
        return suggest(name, self.rows)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(sorted(self.rows.values(), key=lambda r: r.name))


def suggest(word: str, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The closest candidate to ``word`` (HAProxy's "did you mean ... maybe ?")."""
    best = difflib.get_close_matches(word, list(candidates), n=1, cutoff=cutoff)
    return best[0] if best else None


def _fingerprint(word: bytes) -> dict[int, int]:
    """Counts of the transitions between character classes in ``word`` (class 1..26 a
    letter of either case, 27 a digit, 28 anything else and both ends of the word),
    keyed ``32 * from + to``, plus a presence mark keyed by the class alone."""
    fp: dict[int, int] = {}
    prev = 28
    for b in word:
        low = b | 0x20
        cls = low - 0x60 if 0x61 <= low <= 0x7A else 27 if 0x30 <= b <= 0x39 else 28
        fp[cls] = 1
        key = 32 * prev + cls
        fp[key] = fp.get(key, 0) + 1
        prev = cls
    key = 32 * prev + 28
    fp[key] = fp.get(key, 0) + 1
    return fp


def fingerprint_match(word: str, candidates: Iterable[str]) -> str | None:
    """HAProxy's own did-you-mean (``bind`` options, ``stats socket`` options): the
    first candidate whose transition counts (``_fingerprint``) differ least from
    ``word``'s, kept only when that difference is at most twice the length of both
    words. Unlike ``suggest``, this gives the word HAProxy 2.6 names; the candidates'
    order settles ties, so pass them in HAProxy's order."""
    raw = word.encode("utf-8", "surrogateescape")
    mine = _fingerprint(raw)
    best: str | None = None
    best_dist = -1
    best_len = 0
    for cand in candidates:
        other_raw = cand.encode("utf-8", "surrogateescape")
        other = _fingerprint(other_raw)
        dist = sum(abs(mine.get(k, 0) - other.get(k, 0)) for k in mine.keys() | other.keys())
        if best is None or dist < best_dist:
            best, best_dist, best_len = cand, dist, len(other_raw)
    if best is None or best_dist > 2 * len(raw) or best_dist > 2 * best_len:
        return None
    return best


_NAME_CHARS = re.compile(r"[A-Za-z0-9_.:-]")


def bad_name_char(name: str) -> str | None:
    """The first character HAProxy refuses in a section or proxy name, if any."""
    for c in name:
        if not _NAME_CHARS.match(c):
            return c
    return None


# --------------------------------------------------------------------------- parse context


class ParseCtx:
    """What keyword handlers use to report problems and reach load settings."""

    def __init__(self, diags: Diagnostics, *, strict: bool = False,
                 env: Mapping[str, str] | None = None, base_dir: str = ".") -> None:
        self.diags = diags
        self.strict = strict
        self.env: Mapping[str, str] = env or {}
        self.base_dir = base_dir
        self.line_failed = False  # set when a handler reported a fatal error
        self.phase = "parse"  # "check" once the post-parse checks run
        # the ACL pattern lists the CLI may change, in HAProxy's id order
        self.pattern_refs = PatternRefs()
        # the global section's settings so far (tune.bufsize bounds reply files)
        self.glob_values: Mapping[str, Any] = {}
        self.proxy_ids: dict[int, ProxyBuilder] = {}  # `id` values taken so far
        # CA/CRL paths read so far: HAProxy loads each one once, and warns about a
        # directory's files the first time only
        self.ca_loaded: set[str] = set()

    def _add(self, severity: str, line: Line | None, text: str, code: str, col: int,
             style: LocStyle, suggestion: str | None, more: tuple[str, ...],
             nonfatal: bool = False, phase: str | None = None) -> None:
        file = line.file if line else ""
        lineno = line.lineno if line else 0
        if severity == "alert" and not nonfatal:
            self.line_failed = True
        self.diags.add(Diagnostic(severity, file, lineno, col, text, code,  # type: ignore[arg-type]
                                  suggestion, style, more, nonfatal,
                                  phase or self.phase))  # type: ignore[arg-type]

    def soft_alert(self, line: Line | None, text: str, code: str, *, col: int = 0,
                   style: LocStyle = "parsing") -> None:
        """An ALERT line that fails nothing (HAProxy: not an error, not a warning)."""
        self._add("alert", line, text, code, col, style, None, (), True)

    def alert(self, line: Line | None, text: str, code: str, *, col: int = 0,
              style: LocStyle = "parsing", suggestion: str | None = None,
              more: tuple[str, ...] = (), phase: str | None = None) -> None:
        """A fatal error; ``phase="check"`` for errors HAProxy reports after parsing."""
        self._add("alert", line, text, code, col, style, suggestion, more, False, phase)

    def unknown_keyword(self, line: Line, section: str, candidates: Iterable[str]) -> None:
        """The "unknown keyword" alert for the statement's first word, with a
        did-you-mean among ``candidates`` when one is close."""
        kw = line.words[0]
        sug = suggest(kw, candidates)
        text = f"unknown keyword '{kw}' in '{section}' section"
        if sug:
            text += f"; did you mean '{sug}' maybe ?"
        self.alert(line, text, "unknown-keyword", col=line.col(0), suggestion=sug)

    def mark_stops(self, start: int) -> None:
        """Flag fatal diagnostics added since ``start`` as ones HAProxy stops reading at."""
        items = self.diags.items
        for i in range(start, len(items)):
            if items[i].fatal:
                items[i] = dataclasses.replace(items[i], stops=True)

    def warn(self, line: Line | None, text: str, code: str, *, col: int = 0,
             style: LocStyle = "parsing", suggestion: str | None = None,
             more: tuple[str, ...] = (), fails: bool = False) -> None:
        """A WARNING; ``fails``: one HAProxy still fails the file for."""
        self._add("warning", line, text, code, col, style, suggestion, more)
        if fails:
            self.diags.items[-1] = dataclasses.replace(self.diags.items[-1], fails=True)
            self.diags.fatal_count += 1
            self.line_failed = True

    def notice(self, line: Line | None, text: str, code: str, *, col: int = 0,
               style: LocStyle = "parsing") -> None:
        self._add("notice", line, text, code, col, style, None, ())

    def legacy(self, line: Line | None, text: str, code: str, *, col: int = 0,
               style: LocStyle = "parsing", suggestion: str | None = None) -> None:
        """A compatibility acceptance: a warning, or an error under --strict."""
        if self.strict:
            self.alert(line, text, code, col=col, style=style, suggestion=suggestion)
        else:
            self.warn(line, text, code, col=col, style=style, suggestion=suggestion)


def kind_word(kind: str) -> str:
    return "proxy" if kind == "listen" else kind


def origin(line: Line) -> m.Origin:
    return m.Origin(line.file, line.lineno)


# --------------------------------------------------------------------------- builders


@dataclass(frozen=True, slots=True)
class ErrorStep:
    """One error-page statement of a proxy, kept in file order until every
    `http-errors` section is known (HAProxy's ``conf.errors`` list): `errorfile`,
    `errorloc*` and `http-error` set ``code`` to ``page`` (None: back to the built-in
    page); `errorfiles` and `http-error ... errorfiles` name a ``section`` and the
    ``codes`` they import (none named: all the section has)."""

    origin: m.Origin
    code: int = 0
    page: bytes | m.FormatReply | None = None
    section: str | None = None
    codes: tuple[int, ...] = ()


@dataclass(slots=True)
class GlobalBuilder:
    values: dict[str, Any] = field(default_factory=dict)
    logs: list[m.LogTarget] = field(default_factory=list)
    stats_sockets: list[m.StatsSocket] = field(default_factory=list)
    # `id`s given on `stats socket` lines -> "FILE:LINE ('bind ADDR')" (one proxy's ids)
    stats_socket_ids: dict[int, str] = field(default_factory=dict)
    tune: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)

    def freeze(self) -> m.Global:
        from types import MappingProxyType
        known = {f.name for f in fields(m.Global)}
        vals = {k: v for k, v in self.values.items() if k in known}
        return m.Global(**vals, logs=tuple(self.logs),
                        stats_sockets=tuple(self.stats_sockets),
                        tune=MappingProxyType(dict(self.tune)),
                        env=MappingProxyType(dict(self.env)))


@dataclass(slots=True)
class AclEntry:
    acl: Any  # lb.match.acl.Acl
    origins: list[m.Origin]
    texts: list[str] = field(default_factory=list)  # source words of each line


@dataclass(slots=True)
class ServerDefaults:
    """`default-server` settings (and the per-server values being parsed)."""

    values: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ProxyBuilder:
    """A defaults/frontend/backend/listen section while it is being parsed."""

    name: str
    kind: str  # "defaults" | "frontend" | "backend" | "listen"
    origin: m.Origin = m.NO_ORIGIN
    defaults_name: str | None = None  # the defaults section used (for messages)
    forced_id: int = 0  # `id <n>` (0: numbered automatically)
    disabled: bool = False  # `disabled` / `enabled` (inherited from defaults)
    # errors HAProxy finds after the parse, withdrawn if the proxy ends up disabled
    check_alerts: list[Diagnostic] = field(default_factory=list)
    from_defaults: ProxyBuilder | None = None
    # --- all
    mode: str = "tcp"
    options: dict[str, bool] = field(default_factory=dict)
    option_origins: dict[str, m.Origin] = field(default_factory=dict)
    default_server: dict[str, Any] = field(default_factory=dict)
    error_steps: list[ErrorStep] = field(default_factory=list)
    stats: dict[str, Any] | None = None  # None = never mentioned
    logs: list[m.LogTarget] = field(default_factory=list)
    log_global: bool = False
    log_tag: str | None = None
    forwardfor: m.ForwardFor | None = None
    originalto: m.OriginalTo | None = None
    compression: m.Compression | None = None
    restrict_hdr_names: str = "preserve"  # option http-restrict-req-hdr-names
    source: m.Source | None = None
    # --- frontend side
    binds: list[m.Bind] = field(default_factory=list)
    maxconn: int = 0
    backlog: int = 0
    default_backend: str | None = None
    default_backend_origin: m.Origin = m.NO_ORIGIN
    monitor_uri: str | None = None
    unique_id_format: str | None = None
    unique_id_header: str | None = None
    log_format: str | None = None
    log_format_sd: str | None = None
    log_format_kind: str | None = None  # "httplog" "httplog-clf" "tcplog" "custom"
    log_format_origin: m.Origin = m.NO_ORIGIN
    log_format_sd_origin: m.Origin = m.NO_ORIGIN
    unique_id_format_origin: m.Origin = m.NO_ORIGIN
    # `error-log-format`: checked as HAProxy checks it, not used (docs/logging.md)
    error_log_format: str | None = None
    error_log_format_origin: m.Origin = m.NO_ORIGIN
    switching_rules: list[m.SwitchingRule] = field(default_factory=list)
    # --- timeouts (seconds)
    timeouts: dict[str, float | None] = field(default_factory=dict)
    timeout_origins: dict[str, m.Origin] = field(default_factory=dict)
    # --- rules (both sides)
    acls: dict[str, AclEntry] = field(default_factory=dict)
    http_request_rules: list[m.Rule] = field(default_factory=list)
    http_response_rules: list[m.Rule] = field(default_factory=list)
    http_after_response_rules: list[m.Rule] = field(default_factory=list)
    tcp_request_connection_rules: list[m.Rule] = field(default_factory=list)
    tcp_request_content_rules: list[m.Rule] = field(default_factory=list)
    tcp_request_session_rules: list[m.Rule] = field(default_factory=list)
    monitor_fail: list[Any] = field(default_factory=list)  # conditions
    inspect_delay: float | None = None  # tcp-request inspect-delay, seconds
    redirect_rules: list[m.Rule] = field(default_factory=list)
    inherited_rules: bool = False  # rules came from a named defaults
    description: str | None = None
    # --- backend side
    servers: list[m.Server] = field(default_factory=list)
    server_origins: dict[str, m.Origin] = field(default_factory=dict)
    balance: m.BalanceSpec = field(default_factory=m.BalanceSpec)
    # `dispatch`: (address, port), or (socket path, None); never from defaults
    dispatch: tuple[str, int | None] | None = None
    dispatch_origin: m.Origin = m.NO_ORIGIN
    cookie: m.CookieSpec | None = None
    dynamic_cookie_key: str | None = None
    load_server_state: str = "none"
    server_state_file_name: str | None = None
    persist_rules: list[m.PersistRule] = field(default_factory=list)
    stick_table: m.StickTableSpec | None = None
    stick_rules: list[m.StickRule] = field(default_factory=list)
    server_rules: list[m.UseServerRule] = field(default_factory=list)
    captures_req: list[tuple[str, int]] = field(default_factory=list)
    captures_res: list[tuple[str, int]] = field(default_factory=list)
    capture_cookie: tuple[str, int] | None = None
    rate_limit_sessions: int = 0
    # `max-session-srv-conns`: idle server connections a client session may own
    max_session_srv_conns: int = 5
    # `max-keep-alive-queue`, stored as HAProxy stores it: 1 + the value (0: no check)
    max_ka_queue: int = 0
    # clitcpka-idle/-cnt/-intvl, srvtcpka-...: keyword -> seconds or count
    tcpka_settings: dict[str, int] = field(default_factory=dict)
    send_name_header: str | None = None
    email_alert: dict[str, str] = field(default_factory=dict)  # `email-alert` settings
    external_check: dict[str, str] = field(default_factory=dict)  # command, path
    stats_http_request_rules: list[m.Rule] = field(default_factory=list)
    check_kind: str = "tcp"  # "tcp" | "http" | "tcp-check" | "external" | "protocol"
    # kind "protocol": the option (`redis-check`, ...) and the words after it
    check_protocol: tuple[str, tuple[str, ...]] | None = None
    check_origin: m.Origin = m.NO_ORIGIN
    httpchk_send: m.HttpCheckSend | None = None
    http_check_rules: list[m.CheckStep] = field(default_factory=list)
    http_check_send_origin: m.Origin | None = None
    tcp_check_rules: list[m.CheckStep] = field(default_factory=list)
    # this section's own check rules have started (those of its defaults are dropped)
    own_http_check_rules: bool = False
    own_tcp_check_rules: bool = False
    # an option naming a protocol (`option redis-check`, ...) came after the section's
    # tcp-check rules: HAProxy no longer calls them unused (no warning)
    tcp_check_rules_quiet: bool = False
    disable_on_404: bool = False
    send_state: bool = False
    retries: int = 3
    retry_on: tuple[str, ...] = ("conn-failure",)
    redispatch_interval: int = -1
    fullconn: int = 0
    hash_balance_factor: int = 0
    http_reuse: str = "safe"
    # --- parse-time bookkeeping for warnings
    first_use_backend_line: int = 0
    has_rules: bool = False  # (defaults) defines acl/tcp/http rules

    caps: frozenset[str] = frozenset()  # set from kind in __post_init__

    def __post_init__(self) -> None:
        both = frozenset({"frontend", "backend"})
        self.caps = both if self.kind in ("listen", "defaults") else frozenset({self.kind})

    def has_cap(self, side: str) -> bool:
        return side in self.caps

    def label(self) -> str:
        """How HAProxy names this section in messages (a listen is a "proxy")."""
        return f"{kind_word(self.kind)} '{self.name}'"


# Which builder attributes a new proxy copies from its defaults (spec §2.3).
INHERIT_ALL = ("mode", "disabled", "options", "option_origins", "default_server", "error_steps",
               "stats", "logs", "log_global", "log_tag", "forwardfor", "originalto",
               "compression",
               "restrict_hdr_names",
               "tcpka_settings",
               "inspect_delay", "email_alert", "external_check",
               "stats_http_request_rules",
               # (a backend's is only checked, as HAProxy does: the frontend's is used)
               "unique_id_format", "unique_id_format_origin")
INHERIT_FE = ("maxconn", "backlog", "default_backend", "default_backend_origin",
              "monitor_uri", "log_format", "log_format_kind", "log_format_origin",
              "log_format_sd", "log_format_sd_origin",
              "error_log_format", "error_log_format_origin",
              "unique_id_header", "rate_limit_sessions", "max_session_srv_conns")
INHERIT_BE = ("source", "balance", "cookie", "dynamic_cookie_key", "load_server_state",
              "check_kind", "check_origin", "check_protocol", "httpchk_send",
              "http_check_rules", "http_check_send_origin", "tcp_check_rules",
              "disable_on_404", "send_state", "retries", "retry_on",
              "redispatch_interval", "fullconn", "hash_balance_factor", "http_reuse",
              "max_ka_queue")
TIMEOUTS_FE = ("client", "client_fin", "tarpit", "http_request", "http_keep_alive")
TIMEOUTS_BE = ("connect", "server", "server_fin", "check", "queue", "tarpit",
               "http_request", "http_keep_alive", "tunnel")
# named-defaults rules copied into the proxy (they run first)
INHERIT_RULES = ("http_request_rules", "http_response_rules", "http_after_response_rules",
                 "tcp_request_connection_rules", "tcp_request_session_rules",
                 "tcp_request_content_rules")


_MUTABLE = (list, dict, set)


def inherit(dst: ProxyBuilder, src: ProxyBuilder) -> None:
    """Copy settings from defaults ``src`` into new section ``dst`` by capability."""
    sides = dst.caps

    def take(attr: str) -> None:
        value = getattr(src, attr)
        # containers are copied (a section appends to its own); everything else a
        # defaults section holds is immutable (str, numbers, frozen model objects)
        if type(value) in _MUTABLE:
            value = copy.copy(value)
        setattr(dst, attr, value)

    for attr in INHERIT_ALL:
        take(attr)
    if dst.stats is not None:  # lists inside (auth, scope) must not be shared
        dst.stats = {k: list(v) if isinstance(v, list) else v for k, v in dst.stats.items()}
    if "frontend" in sides:
        for attr in INHERIT_FE:
            take(attr)
    if "backend" in sides:
        for attr in INHERIT_BE:
            take(attr)
    names: set[str] = set()
    if "frontend" in sides:
        names.update(TIMEOUTS_FE)
    if "backend" in sides:
        names.update(TIMEOUTS_BE)
    for k, v in src.timeouts.items():
        if k in names:
            dst.timeouts[k] = v
            if k in src.timeout_origins:
                dst.timeout_origins[k] = src.timeout_origins[k]
    if src.has_rules:
        for attr in INHERIT_RULES:
            take(attr)
        dst.inherited_rules = True
    dst.from_defaults = src
