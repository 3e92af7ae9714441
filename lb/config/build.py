"""Parse driver, defaults inheritance, cross-checks, lint and freezing.

Owns: walking the lexer's lines section by section (global, defaults, frontend,
backend, listen; other HAProxy sections skipped with a warning), dispatching each
statement to the keyword tables with the capability checks, `defaults`
inheritance (spec §2), the post-parse checks HAProxy runs (use_backend targets,
mode mismatch, server ports, missing timeouts, ...), the WebSocket lint, and the
conversion of builders into the frozen ``lb.config.model`` objects.

Must not import: lb.proxy, lb.state, healthcheck (it runs before any of them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import fields, replace
from types import MappingProxyType
from typing import Any

import lb.config.model as m
import lb.config.stick_kw as stick_kw
from lb.config import (
    bind_kw,
    mailers_kw,
    reply_kw,
    resolvers_kw,
    ring_kw,
    sample_refs,
    server_tls,
    userlist_kw,
)
from lb.config.addresses import ANY_ADDRESSES, socket_path
from lb.config.check_kw import build_check
from lb.config.check_rules import port_from_rules
from lb.config.global_kw import GLOBAL_NEGATABLE, dispatch_global
from lb.config.lexer import Line, Reader
from lb.config.proxy_kw import (
    PROXY_TABLE,
    SECTION_NAMES,
    TCPLOG_FMT,
    WrappedLine,
    bad_name_char,
    kw_no_log,
    kw_option,
    too_many,
)
from lb.config.registry import (
    GlobalBuilder,
    ParseCtx,
    ProxyBuilder,
    inherit,
    kind_word,
    origin,
)
from lb.errors import Diagnostic, Diagnostics, TooManyErrors, pipe
from lb.http import cookie
from lb.match import fmt as fmt_mod
from lb.match import maps, payload, sample
from lb.tls import certs
from lb.tls import frontend as tls_frontend

PROXY_SECTIONS = ("defaults", "frontend", "backend", "listen")
OTHER_SECTIONS = tuple(sorted(SECTION_NAMES - {"global", *PROXY_SECTIONS}))
_OPTION_FIELDS = {f.name for f in fields(m.Options)}
_TIMEOUT_FIELDS = {f.name for f in fields(m.Timeouts)}
_WS_WORDS = re.compile(r"upgrade|websocket|sec-websocket|(?:^|[^a-z0-9])ws(?:$|[^a-z0-9])",
                       re.IGNORECASE)
_HDR_FETCH = re.compile(r"\b(?:req\.)?f?hdr(?:_[a-z]+)?\(|\bhdr_cnt\(|\breq\.hdr", re.I)


# how HAProxy names a TLS setting OpenSSL refused
_TLS_SETTING = {"ciphers": "SSL cipher list", "ciphersuites": "TLS 1.3 cipher suites",
                "curves": "SSL curves list", "ecdhe": "elliptic named curve"}


def _check_expects_101(be: ProxyBuilder) -> bool:
    """The backend's http-check rules expect status 101 (a WebSocket check)."""
    return any(isinstance(s, m.HttpCheckExpect) and s.match == "status" and "101" in s.pattern
               for s in be.http_check_rules)


def _dispatch_server(p: ProxyBuilder) -> m.Server | None:
    """Where a backend that does not load balance sends what persistence does not
    place: its `dispatch` address, or with `option transparent` the address the client
    connected to (0.0.0.0 without a port, as a transparent server). It has no name
    (logged as <NOSRV>) and none of the `default-server` settings."""
    if p.dispatch is not None:
        host, port = p.dispatch
        return m.Server(name="", host=host, port=port, puid=0, origin=p.dispatch_origin)
    if p.options.get("transparent"):
        return m.Server(name="", host="0.0.0.0", port=None, puid=0,
                        origin=p.option_origins.get("transparent", p.origin))
    return None


class _Peekable:
    """The lexer's line iterator with one line of look-ahead."""

    def __init__(self, it: Iterator[Line]) -> None:
        self._it = it
        self._buf: list[Line] = []

    def __iter__(self) -> _Peekable:
        return self

    def __next__(self) -> Line:
        if self._buf:
            return self._buf.pop()
        return next(self._it)

    def peek(self) -> Line | None:
        if not self._buf:
            try:
                self._buf.append(next(self._it))
            except StopIteration:
                return None
        return self._buf[-1]


class Parser:
    """Holds the state of one load: sections seen so far and the diagnostics."""

    def __init__(self, diags: Diagnostics, *, strict: bool, env: dict[str, str],
                 base_dir: str) -> None:
        self.diags = diags
        self.ctx = ParseCtx(diags, strict=strict, env=env, base_dir=base_dir)
        self.glob = GlobalBuilder()
        self.ctx.glob_values = self.glob.values
        self.proxies: list[ProxyBuilder] = []
        self.proxies_named: dict[str, list[ProxyBuilder]] = {}  # name -> proxies, in order
        self.defaults: dict[str, ProxyBuilder] = {}  # named defaults
        self.last_defaults: ProxyBuilder | None = None
        self.aborted = False
        self.used_by: dict[int, set[str]] = {}  # defaults with rules -> kinds using it
        self.defaults_uses: dict[int, set[str]] = {}  # named defaults -> explicit/implicit
        # proxy and server names that sample fetches take, checked once all are known
        self.sample_refs: list[sample_refs.PendingRef] = []
        self.userlists: list[userlist_kw.UserlistBuilder | None] = []
        self.rings: dict[str, ring_kw.RingBuilder] = {}
        self.ring_current: ring_kw.RingBuilder | None = None
        self.resolvers: dict[str, resolvers_kw.ResolversBuilder] = {}
        self.mailers: dict[str, mailers_kw.MailersBuilder] = {}
        # the `resolvers` or `mailers` section being read
        self.peers_current: resolvers_kw.ResolversBuilder | mailers_kw.MailersBuilder | None \
            = None
        self.email_alerts: dict[str, m.EmailAlert] = {}  # by proxy name, once checked
        self.http_errors: dict[str, reply_kw.HttpErrors] = {}  # the first of each name
        self.http_errors_current: reply_kw.HttpErrors | None = None
        self.pages: dict[int, dict[int, bytes | m.FormatReply]] = {}  # id(proxy) -> pages

    # ------------------------------------------------------------------ files

    def parse_text(self, text: str, file: str) -> None:
        reader = Reader(text, file, self.ctx.env)
        lines = _Peekable(iter(reader))
        self.ctx.peek = lines.peek  # type: ignore[attr-defined]
        section: str | None = None
        current: ProxyBuilder | None = None
        skipping_failed = False
        try:
            for line in lines:
                self._flush_lexer(reader)
                kw = line.words[0]
                if kw in SECTION_NAMES:
                    section, current = self._open_section(line)
                    skipping_failed = section == "failed"
                    reader.section = kw
                    continue
                if section is None:
                    self.ctx.alert(line, f"unknown keyword '{kw}' out of section.",
                                   "out-of-section", col=line.col(0), style="tight")
                    continue
                if skipping_failed:
                    self.ctx.alert(line, "'listen' or 'defaults' expected.", "no-section")
                    continue
                if section == "skip":
                    continue
                try:
                    if section == "global":
                        self._global_stmt(line)
                    elif section == "userlist":
                        if self.userlists and self.userlists[-1] is not None:
                            userlist_kw.statement(self.userlists[-1], line, self.ctx)
                    elif section == "http-errors":
                        if self.http_errors_current is not None:
                            reply_kw.http_errors_stmt(self.http_errors_current, line, self.ctx)
                    elif section == "ring":
                        if self.ring_current is not None:
                            ring_kw.statement(self.ring_current, line, self.ctx)
                    elif section in ("resolvers", "mailers"):
                        stmt = (resolvers_kw.statement if section == "resolvers"
                                else mailers_kw.statement)
                        stmt(self.peers_current, line, self.ctx)  # type: ignore[arg-type]
                    else:
                        assert current is not None
                        self._proxy_stmt(current, line, lines)
                except TooManyErrors:
                    raise
                except Exception as exc:  # a handler bug must never crash -c
                    self.ctx.alert(line, f"internal error while parsing '{kw}': "
                                   f"{type(exc).__name__}: {exc}", "internal-error")
            self._flush_lexer(reader)
        except TooManyErrors:
            self.aborted = True
        if reader.aborted:
            self.aborted = True

    def _flush_lexer(self, reader: Reader) -> None:
        while reader.diags:
            d = reader.diags.pop(0)
            self.diags.add(d)

    # ------------------------------------------------------------------ sections

    def _open_section(self, line: Line) -> tuple[str, ProxyBuilder | None]:
        kw = line.words[0]
        ctx = self.ctx
        if kw == "global":
            if len(line.words) > 1:
                ctx.alert(line, f"'global' cannot handle unexpected argument "
                          f"'{line.words[1]}'.", "too-many-args", col=line.col(1))
            return "global", None
        if kw == "userlist":
            self.userlists.append(userlist_kw.open_userlist(line, ctx))
            return "userlist", None
        if kw == "ring":
            self.ring_current = ring_kw.open_ring(line, ctx, self.rings)
            return "ring", None
        if kw in ("resolvers", "mailers"):
            opener, known = ((resolvers_kw.open_resolvers, self.resolvers) if kw == "resolvers"
                             else (mailers_kw.open_mailers, self.mailers))
            try:
                self.peers_current = opener(line, ctx, known)  # type: ignore[operator]
            except resolvers_kw.SectionAbort:
                self.aborted = True
                raise TooManyErrors() from None  # HAProxy abandons the file here
            return kw, None
        if kw == "http-errors":
            sec = reply_kw.open_http_errors(line, ctx, self.http_errors)
            if sec is None:
                self.aborted = True
                raise TooManyErrors()  # HAProxy abandons the file here
            self.http_errors.setdefault(sec.name, sec)
            self.http_errors_current = sec
            return "http-errors", None
        if kw not in PROXY_SECTIONS:
            ctx.warn(line, f"section '{kw}' is not supported by lb; its content is ignored.",
                     "unsupported-section", col=line.col(0))
            return "skip", None
        words = line.words
        args = list(words[1:])
        name = ""
        from_name: str | None = None
        if args and args[0] != "from":
            name = args.pop(0)
        if args and args[0] == "from":
            if len(args) < 2 or not args[1]:
                ctx.alert(line, f"'{kw}' : 'from' expects a defaults section name.",
                          "missing-argument")
                return "failed", None
            from_name = args[1]
            args = args[2:]
        if args:
            if kw == "defaults":
                ctx.alert(line, f"'defaults' cannot handle unexpected argument '{args[0]}'.",
                          "too-many-args")
                return "failed", None
            # HAProxy 2.6 prints this as a non-fatal ALERT, then rejects the section's lines
            ctx.soft_alert(line, "please use the 'bind' keyword for listening addresses.",
                           "extra-section-args", col=line.col(2))
            return "failed", None
        if kw != "defaults" and not name:
            start = len(ctx.diags.items)
            ctx.alert(line, f"'{kw}' expects an <id> argument", "missing-argument")
            ctx.mark_stops(start)
            self.aborted = True
            raise TooManyErrors()  # HAProxy abandons the file here
        if name:
            bad = bad_name_char(name)
            if bad:
                ctx.alert(line, f"character '{bad}' is not permitted in '{kw}' name "
                          f"'{name}'.", "bad-name", col=line.col(1))
                return "failed", None
        # find the defaults to inherit from
        src: ProxyBuilder | None
        if from_name is not None:
            src = self.defaults.get(from_name)
            if src is None:
                what = f"{kw} '{name}'" if name else "defaults section"
                ctx.alert(line, f"defaults section '{from_name}' not found for {what}.",
                          "unknown-defaults", col=line.col(len(words) - 1))
                return "failed", None
        else:
            src = self.last_defaults
        p = ProxyBuilder(name=name or "", kind=kw, origin=origin(line))
        if kw == "defaults":
            if src is not None and from_name is not None:
                if src.has_rules:
                    ctx.alert(line, "a defaults section cannot inherit from a defaults section "
                              f"defining TCP/HTTP rules (defaults section at {src.origin}).",
                              "defaults-rules", style="tight")
                inherit(p, src)
                p.has_rules = False
                p.acls = {}
            if name:
                self.defaults[name] = p
            self.last_defaults = p
            return kw, p
        # duplicate proxy names
        for other in self.proxies_named.get(name, ()):
            if other.kind == kw or "listen" in (kw, other.kind):
                ctx.alert(line, f"{kind_word(kw)} '{name}' has the same name as "
                          f"{kind_word(other.kind)} '{name}' declared at {other.origin}.",
                          "duplicate-proxy", col=line.col(1),
                          style="Parsing")
                break  # the section is still parsed (and checked), as HAProxy does
        if src is not None and src.name:
            how = "explicit" if from_name is not None else "implicit"
            uses = self.defaults_uses.setdefault(id(src), set())
            if uses and how not in uses:
                ctx.soft_alert(line, f"defaults section '{src.name}' (declared at "
                               f"{src.origin}) is explicitly referenced by another proxy and "
                               "implicitly used here. To avoid any ambiguity don't mix both "
                               "usage. Add a last defaults section not explicitly used or "
                               "always use explicit references.", "ambiguous-defaults")
            uses.add(how)
        if src is not None:
            if src.has_rules:
                if kw == "listen":
                    ctx.alert(line, "a listen section cannot inherit from a defaults section "
                              "defining TCP/HTTP rules.", "defaults-rules", style="tight")
                used = self.used_by.setdefault(id(src), set())
                used.add(kw)
                if {"frontend", "backend"} <= used:
                    ctx.alert(line, "frontends and backends cannot inherit from the same "
                              "defaults section if it defines TCP/HTTP rules (defaults "
                              f"section at {src.origin}).", "defaults-rules", style="tight")
            inherit(p, src)
            p.defaults_name = src.name or None
        self.proxies.append(p)
        self.proxies_named.setdefault(name, []).append(p)
        return kw, p

    # ------------------------------------------------------------------ statements

    def _global_stmt(self, line: Line) -> None:
        words = line.words
        if words[0] in ("no", "default"):
            if len(words) > 1 and words[1] in GLOBAL_NEGATABLE:
                self._global_negation(line)
                return
            self._negation_error(line)
            return
        dispatch_global(self.glob, line, self.ctx)

    def _global_negation(self, line: Line) -> None:
        """`no X` / `default X` for the globals that take it, as HAProxy 2.6 reads them
        (checked against haproxy -c): `no` takes no argument; `default` hands X its
        arguments with the line's last word repeated (`default busy-polling` is
        `busy-polling busy-polling`, `default log A B` is `log A B B`)."""
        words, cols = line.words, line.cols
        kw = words[1]
        if words[0] == "default":
            sub = Line(line.file, line.lineno, (*words[1:], words[-1]),
                       (*cols[1:], cols[-1]), line.raw)
        else:
            sub = Line(line.file, line.lineno, words[1:], cols[1:], line.raw)
        if kw == "numa-cpu-mapping":  # read without any check
            return
        if kw == "log":
            if words[0] == "default":
                dispatch_global(self.glob, sub, self.ctx)
            elif len(sub.words) > 1:
                self.ctx.alert(line, "log : 'no log' does not expect arguments",
                               "too-many-args", col=line.col(2))
            else:
                self.glob.logs.clear()
            return
        if too_many(sub, self.ctx, 0):
            return
        if kw == "busy-polling":
            self.glob.values["busy_polling"] = False

    def _negation_error(self, line: Line) -> None:
        self.ctx.alert(line, "negation/default currently supported only for options, log, "
                       "busy-polling, set-dumpable, strict-limits, insecure-fork-wanted and "
                       "numa-cpu-mapping.", "bad-negation", style="tight")

    def _proxy_stmt(self, p: ProxyBuilder, line: Line, lines: _Peekable) -> None:
        words = line.words
        ctx = self.ctx
        kw = words[0]
        if kw in ("no", "default"):
            if len(words) > 1 and words[1] == "option":
                sub = Line(line.file, line.lineno, words[1:], line.cols[1:], line.raw)
                kw_option(p, sub, ctx, negate=kw == "no", reset=kw == "default")
                return
            if len(words) > 1 and words[1] == "log":
                kw_no_log(p, line, ctx)
                return
            self._negation_error(line)
            return
        row = PROXY_TABLE.get(kw)
        if row is None:
            ctx.unknown_keyword(line, p.kind, [*PROXY_TABLE.rows, *SECTION_NAMES])
            return
        if p.kind == "defaults":
            if not row.defaults:
                ctx.alert(line, f"'{kw}' not allowed in 'defaults' section.",
                          "not-in-defaults", col=line.col(0),
                          style="tight" if kw == "id" else "parsing")
                return
            if row.named_defaults_only and not p.name:
                ctx.alert(line, f"'{kw}' not allowed in anonymous 'defaults' section.",
                          "not-in-defaults", col=line.col(0))
                return
        elif row.side and not p.has_cap(row.side):
            if row.fatal_side:
                style = "parsing"
                text = f"'{kw}' not allowed because {p.label()} has no {row.side} capability."
                if kw == "retry-on":
                    text = "'retry-on' only available in backend or listen section"
                elif kw in ("server", "default-server"):
                    text = f"parsing [{line.file}:{line.lineno}] : " + text
                    style = "bracket"
                ctx.alert(line, text, "capability", col=line.col(0), style=style)  # type: ignore[arg-type]
            else:
                ctx.warn(line, f"'{kw}' ignored because {p.label()} has no {row.side} "
                         "capability.", "capability", col=line.col(0))
            if not row.read_off_side:
                return
        if row.max_args is not None and len(words) - 1 > row.max_args:
            ctx.alert(line, f"'{kw}' cannot handle unexpected argument "
                      f"'{words[row.max_args + 1]}'.", "too-many-args",
                      col=line.col(row.max_args + 1))
            return
        # HAProxy stops at the first empty word: it behaves like a missing argument
        if "" in words:
            cut = words.index("")
            line = Line(line.file, line.lineno, words[:cut], line.cols[:cut], line.raw)
        source = maps.MapSource(ctx.pattern_refs, ctx.base_dir,
                                f"map at file '{line.file}' line {line.lineno}")
        try:
            with maps.using(source), sample.collecting_refs() as refs:
                row.handler(p, line, ctx)
            self.sample_refs.extend(sample_refs.PendingRef(r, line, p) for r in refs)
        except WrappedLine as wl:
            next(lines)  # consume the continuation line
            text = (f"this line looks wrapped: '{wl.first}' + '{wl.second}' (start of line "
                    f"{wl.next_line.lineno}) were joined into '{wl.first + wl.second}'; "
                    "haproxy.cfg has no line continuation, so HAProxy rejects this "
                    "statement. Put it on one line.")
            if ctx.strict:
                ctx.alert(line, text, "wrapped-line", col=line.col(len(line.words) - 1))
                return
            ctx.warn(line, text, "wrapped-line", col=line.col(len(line.words) - 1))
            self._proxy_stmt(p, wl.joined, lines)

    # ------------------------------------------------------------------ post-parse

    def finish(self) -> m.Config | None:
        """Cross-checks and warnings (only if parsing succeeded), then freeze."""
        ctx = self.ctx
        for p in self.proxies:  # HAProxy checks nothing of a disabled proxy after the parse
            if p.disabled:
                for d in p.check_alerts:
                    self.diags.items.remove(d)
                    self.diags.fatal_count -= d.fatal
        if self.diags.has_fatal or self.aborted:
            return None
        rings = {name: r.freeze(ctx) for name, r in self.rings.items()}
        self.glob.logs[:] = ring_kw.resolve_targets(self.glob.logs, rings, ctx, None)
        for p in self.proxies:
            if p.kind != "defaults":
                p.logs = ring_kw.resolve_targets(p.logs, rings, ctx, p.name)
        glob = self.glob.freeze()
        by_name_be: dict[str, ProxyBuilder] = {}
        for p in self.proxies:
            if "backend" in p.caps and p.name not in by_name_be:
                by_name_be[p.name] = p
        ctx.phase = "check"
        # HAProxy checks nothing of a disabled proxy after the parse
        every = self.proxies
        self.proxies = [p for p in every if not p.disabled]
        self.pages = {id(p): {} for p in every}
        try:
            userlists = tuple(ul.freeze(ctx) for ul in self.userlists if ul is not None)
            self._cross_checks(by_name_be, glob)
            sample_refs.resolve([r for r in self.sample_refs if not r.proxy.disabled],
                                self.proxies, ctx, {ul.name for ul in userlists})
            for p in self.proxies:
                reply_kw.resolve_action_sections(p, self.http_errors, ctx)
            self.pages.update({id(p): reply_kw.resolve_pages(p, self.http_errors, ctx)
                               for p in self.proxies})
            self._lint({n: b for n, b in by_name_be.items() if not b.disabled})
            resolvers = resolvers_kw.finish(
                self.resolvers, [(p.kind, p.name, s) for p in self.proxies
                                 if "backend" in p.caps for s in p.servers], ctx)
            mailers, self.email_alerts = mailers_kw.finish(
                self.mailers, [(p.kind, p.name, p.email_alert) for p in self.proxies
                               if p.kind != "defaults"], ctx)
        except TooManyErrors:
            return None
        finally:
            self.proxies = every
        if self.diags.has_fatal:
            return None
        # HAProxy numbers proxies from 1, but a `stats socket` first creates its
        # internal GLOBAL proxy, which takes id 1 (checked against 2.6.12's `show stat`).
        first = 2 if glob.stats_sockets else 1
        ids = number_ids([p.forced_id for p in self.proxies], first)
        proxies = tuple(self._freeze(p, puid, glob) for p, puid in zip(self.proxies, ids, strict=True))
        del ctx
        return m.Config(global_=glob, proxies=proxies, pattern_refs=self.ctx.pattern_refs,
                        userlists=userlists, rings=tuple(rings.values()),
                        resolvers=resolvers, mailers=mailers)

    def _check_external(self, p: ProxyBuilder, glob: m.Global) -> None:
        """`option external-check` needs the global `external-check` and a command
        (HAProxy 2.6.12's texts); a command without the option is ignored."""
        ctx = self.ctx
        command = p.external_check.get("command", "")
        if p.check_kind != "external" or "backend" not in p.caps:
            for what in ("command", "path"):
                if what in p.external_check:
                    ctx.warn(None, f"'external-check {what}' will be ignored for "
                             f"{kind_word(p.kind)} '{p.name}' (requires 'option "
                             "external-check').", "external-check-ignored", style="plain")
            self._check_external_path(p, command)
            return
        if not glob.external_check:
            ctx.alert(None, f"Proxy '{p.name}' : 'option external-check' unable to find "
                      "required 'global.external-check'.", "external-check-global",
                      style="plain")
        if not glob.insecure_fork_wanted:
            ctx.warn(None, f"Proxy '{p.name}' : 'insecure-fork-wanted' not enabled in the "
                     "global section, 'option external-check' will likely fail.",
                     "insecure-fork", style="plain")
        if not command:
            ctx.alert(None, f"Proxy '{p.name}' : 'option external-check' unable to find "
                      "required 'external-check command'.", "external-check-command",
                      style="plain")
        self._check_external_path(p, command)

    def _check_external_path(self, p: ProxyBuilder, command: str) -> None:
        if command and not command.startswith("/") and not p.external_check.get("path"):
            self.ctx.alert(None, f"Proxy '{p.name}': 'external-check command' does not have "
                           "a leading '/' and 'external-check path' is not set.",
                           "external-check-path", style="plain")

    def _l6_fetches_in_http(self, p: ProxyBuilder) -> None:
        """HAProxy 2.6's warning for `tcp-request content` rules of an HTTP proxy that
        read the raw request bytes (lb.match.payload): they see a parsed request."""
        for r in p.tcp_request_content_rules:
            exprs = (e for a in getattr(r.cond, "acls", ()) for e in getattr(a, "exprs", ()))
            if any(getattr(e, "keyword", "") in payload.NAMES for e in exprs):
                self.ctx.warn(None, f"Proxy '{p.name}': L6 sample fetches ignored on HTTP "
                              f"proxies (declared at {r.origin.file}:{r.origin.line}).",
                              "needs-tcp-mode", style="plain")

    def _tcp_mode_fallbacks(self, p: ProxyBuilder) -> None:
        """HTTP-only settings in a `mode tcp` proxy: warn and fall back (as HAProxy
        2.6.12). Its HTTP rules are kept, warned about unless it has `switch-mode
        http`: they run on a connection upgraded to HTTP (lb.proxy.upgrade)."""
        ctx = self.ctx
        upgrades = any(isinstance(r.action, m.ActSwitchMode)
                       for r in p.tcp_request_content_rules)
        if "frontend" in p.caps and p.monitor_uri:
            ctx.warn(None, f"monitor-uri will be ignored for {p.label()} (needs 'mode "
                     "http').", "needs-http-mode", style="plain")
            p.monitor_uri = ""
        if "frontend" in p.caps and p.log_format_kind == "httplog":
            org = p.log_format_origin
            ctx.warn(Line(org.file, org.line, (), (), ""), f"'option httplog' not usable with "
                     f"{p.label()} (needs 'mode http'). Falling back to 'option tcplog'.",
                     "needs-http-mode")
            p.log_format, p.log_format_kind = TCPLOG_FMT, "tcplog"
            p.options["httplog"] = False
            p.options["tcplog"] = True
        if not upgrades:
            self._http_settings_unused(p)
        if "backend" not in p.caps:
            return
        if p.cookie is not None:
            ctx.warn(None, f"cookie will be ignored for {p.label()} (needs 'mode http').",
                     "needs-http-mode", style="plain")
            p.cookie = None
        if p.balance.algorithm in ("uri", "url_param", "hdr"):
            ctx.warn(None, f"Layer 7 hash not possible for {p.label()} (needs 'mode http'). "
                     "Falling back to round robin.", "needs-http-mode", style="plain")
            p.balance = m.BalanceSpec(hash_type=p.balance.hash_type,
                                      hash_function=p.balance.hash_function,
                                      hash_modifier=p.balance.hash_modifier, explicit=True)
        for i, srv in enumerate(p.servers):
            if srv.cookie:
                ctx.warn(None, f"{p.label()} : ignoring cookie for server '{srv.name}' as HTTP "
                         "mode is disabled.", "needs-http-mode", style="plain")
                p.servers[i] = replace(srv, cookie=None)

    def _check_lb_mode(self, p: ProxyBuilder) -> None:
        """A `balance` line wins over `dispatch` (a warning) and refuses `option
        transparent` (an alert); `dispatch` wins over `option transparent`. HAProxy
        2.6.12's texts and order (after the missing-bind warning)."""
        transparent = p.options.get("transparent", False)
        if p.balance.explicit:
            if transparent:
                self.ctx.alert(None, f"{p.label()} cannot use both transparent and balance "
                               "mode.", "balance-transparent", style="plain")
            elif p.dispatch is not None:
                self.ctx.warn(None, f"dispatch address of {p.label()} will be ignored in "
                              "balance mode.", "dispatch-ignored", style="plain")
            p.dispatch = None
            p.options["transparent"] = False
        elif p.dispatch is not None:
            p.options["transparent"] = False

    def _http_settings_unused(self, p: ProxyBuilder) -> None:
        """A `mode tcp` proxy without `switch-mode http`: HAProxy 2.6.12's warnings, in
        its order. The stats page, forwardfor, originalto and the HTTP options are
        dropped; the rules stay (HAProxy runs them once a connection is upgraded by an
        HTTP backend, whatever the warning says)."""
        ctx = self.ctx

        def warn(text: str) -> None:
            ctx.warn(None, text, "needs-http-mode", style="plain")

        if p.stats is not None:
            warn(f"'stats' statement ignored for {p.label()} as it requires HTTP mode.")
            p.stats = None
        if p.capture_cookie is not None:
            warn(f"'capture' statement ignored for {p.label()} as it requires HTTP mode.")
        for kw, attr in (("http-request", "http_request_rules"),
                         ("http-response", "http_response_rules"),
                         ("http-after-response", "http_after_response_rules"),
                         ("redirect", "redirect_rules")):
            if getattr(p, attr):
                warn(f"'{kw}' rules ignored for {p.label()} as they require HTTP mode.")
        for opt, attr in (("forwardfor", "forwardfor"), ("originalto", "originalto")):
            if getattr(p, attr) is not None:
                warn(f"'option {opt}' ignored for {p.label()} as it requires HTTP mode.")
                setattr(p, attr, None)
        for opt in ("http-buffer-request", "http-ignore-probes", "http-no-delay"):
            key = opt.replace("-", "_")
            if p.options.get(key):
                warn(f"'option {opt}' ignored for {p.label()} as it requires HTTP mode.")
                p.options[key] = False

    def _check_dynamic_cookies(self, p: ProxyBuilder) -> None:
        """Two servers given the same dynamic cookie (the same address and port):
        HAProxy 2.6.12's warning, once per earlier server holding that value."""
        key = p.dynamic_cookie_key
        if "backend" not in p.caps or p.cookie is None or not p.cookie.dynamic or not key:
            return
        held: list[bytes] = []
        for srv in p.servers:
            value = (srv.cookie.encode() if srv.cookie else
                     cookie.dynamic_value(key.encode("utf-8", "surrogateescape"), srv.host, srv.port))
            if value is None or srv.disabled:
                continue
            for _ in range(held.count(value) if not srv.cookie else 0):
                self.ctx.warn(None, "We generated two equal cookies for two different "
                              "servers.", "duplicate-cookie", style="plain",
                              more=(f"Please change the secret key for '{p.name}'.",))
            held.append(value)

    def _check_capture_ids(self, p: ProxyBuilder) -> None:
        """`capture ... id <n>` rules of a frontend name one of its capture slots."""
        for rules, caps, kw in ((p.http_request_rules, p.captures_req, "http-request"),
                                (p.http_response_rules, p.captures_res, "http-response")):
            for r in rules:
                a = r.action
                if isinstance(a, m.ActCapture) and a.by_id and not 0 <= a.slot < len(caps):
                    self.ctx.alert(None, f"Proxy '{p.name}': unable to find capture id "
                                   f"'{a.slot}' referenced by {kw} capture rule.",
                                   "unknown-capture", style="plain")

    def _check_do_resolve(self, p: ProxyBuilder) -> None:
        """Each `do-resolve` rule names a `resolvers` section (HAProxy's check)."""
        for rules in (p.http_request_rules, p.tcp_request_content_rules):
            for r in rules:
                a = r.action
                if isinstance(a, m.ActDoResolve) and a.resolvers not in self.resolvers:
                    self.ctx.alert(None, f"Proxy '{p.name}': Can't find resolvers section "
                                   f"'{a.resolvers}' for do-resolve action.",
                                   "unknown-resolvers", style="plain")

    def _cross_checks(self, backends: Mapping[str, ProxyBuilder], glob: m.Global) -> None:
        ctx = self.ctx
        stick_kw.check_tables({p.name: p for p in self.proxies}, ctx, glob.nbthread)
        for p in self.proxies:
            self._check_external(p, glob)
            self._check_do_resolve(p)
            if p.stats_http_request_rules and p.stats is not None and (
                    p.stats.get("auth") or "realm" in p.stats):
                self.ctx.alert(None, f"proxy '{p.name}': stats 'auth'/'realm' and "
                               "'http-request' can't be used at the same time.",
                               "stats-auth-and-rules", style="plain")
            self._check_dynamic_cookies(p)
            if p.mode == "tcp":
                self._tcp_mode_fallbacks(p)
            else:
                self._l6_fetches_in_http(p)
            if "frontend" in p.caps:
                self._check_capture_ids(p)
                self._check_bind_protos(p)
                self._check_bind_tls(p)
                for r in p.tcp_request_content_rules:
                    proto = getattr(r.action, "proto", "h1") or "h1"
                    if isinstance(r.action, m.ActSwitchMode) and proto not in ("h1", "h2"):
                        ctx.alert(None, f"Proxy '{p.name}': MUX protocol '{proto}' is not "
                                  "compatible with the selected mode.", "bad-proto",
                                  style="plain")
                targets: list[tuple[str, m.Origin, str]] = []
                if p.default_backend:
                    targets.append((p.default_backend, p.default_backend_origin,
                                    "as its default backend"))
                for r in p.switching_rules:
                    if r.backend is not None:
                        targets.append((r.backend, r.origin, "in a 'use_backend' rule"))
                for name, _org, how in targets:
                    be = backends.get(name)
                    what = "default_backend" if how.startswith("as") else "use_backend"
                    if be is None:
                        ctx.alert(None, f"Proxy '{p.name}': unable to find required {what}: "
                                  f"'{name}'.", "unknown-backend", style="plain")
                        continue
                    # a TCP frontend may name an HTTP backend: its connections are
                    # then upgraded to HTTP (lb.proxy.upgrade), as in HAProxy 2.x
                    if be.mode != p.mode and be is not p and p.mode != "tcp":
                        ctx.alert(None, f"{p.mode} {kind_word(p.kind)} '{p.name}' ({p.origin}) "
                                  f"tries to use incompatible {be.mode} {kind_word(be.kind)} "
                                  f"'{be.name}' ({be.origin}) "
                                  f"{how} (see 'mode').", "mode-mismatch", style="plain")
            if "backend" in p.caps:
                self._check_tracks(p, backends)
                names = {s.name for s in p.servers}
                for rule in p.server_rules:
                    if rule.server not in names:
                        ctx.alert(None, f"{p.label()} : unable to find server '{rule.server}'"
                                  " referenced in a 'use-server' rule.", "unknown-server",
                                  style="plain")
                for s in p.servers:
                    # (a server at 0.0.0.0 is let through, as by HAProxy 2.6.12: its
                    # checks then go to 0.0.0.0:0 and fail)
                    # (an SRV record gives its port)
                    srv_record = s.resolvers is not None and s.host.startswith("_")
                    if s.check and s.port is None and s.check_port is None and \
                            socket_path(s.host) is None \
                            and s.host not in ANY_ADDRESSES and not srv_record:
                        given = port_from_rules(p)
                        if not given:
                            rules = "" if given is None else \
                                " nor tcp_check rule 'connect' with port information"
                            ctx.alert(None, f"config: {kind_word(p.kind)} '{p.name}': "
                                      f"server '{s.name}' "
                                      f"has neither service port nor check port{rules}.",
                                      "server-no-port", style="plain")
                if p.cookie is None and any(s.cookie for s in p.servers):
                    pass
            # warnings
            if "frontend" in p.caps and not p.binds:
                ctx.warn(None, f"{p.label()} has no 'bind' directive. Please declare it as a "
                         "backend if this was intended.", "no-bind", style="plain")
            if "backend" in p.caps:
                self._check_lb_mode(p)
            self._check_formats(p)  # (before the timeouts warning, as in HAProxy)
            missing = False
            if "frontend" in p.caps and not p.timeouts.get("client"):
                missing = True
            if "backend" in p.caps and p.servers and (not p.timeouts.get("connect") or
                                                      not p.timeouts.get("server")):
                missing = True
            if missing and p.mode in ("http", "tcp"):
                ctx.warn(None, f"missing timeouts for {p.label()}.", "missing-timeouts",
                         style="plain", more=pipe(
                             "While not properly invalid, you will certainly encounter "
                             "various problems",
                             "with such a configuration. To fix this, please ensure that "
                             "all following",
                             "timeouts are set to a non-zero value: 'client', 'connect', "
                             "'server'."))
            if p.load_server_state == "global" and not glob.server_state_file:
                ctx.warn(None, f"backend '{p.name}' configured to load server state file from "
                         "global section 'server-state-file' directive. Unfortunately, "
                         "'server-state-file' is not set!", "no-server-state-file",
                         style="plain")
            if "frontend" in p.caps and (p.log_format or p.log_format_sd) and not p.logs and \
                    not (p.log_global and glob.logs):
                ctx.warn(None, f"log format ignored for {p.label()} since it has no log "
                         "address.", "log-format-ignored", style="plain")
            if p.kind == "listen" and p.default_backend and p.servers and \
                    p.default_backend in backends:
                ctx.warn(None, f"In proxy '{p.name}', the 'default_backend' rule always has "
                         "precedence over the servers, which will never be used.",
                         "servers-unused", style="plain")
            # (a frontend's rules too: HAProxy reads them, warns, then says so)
            if p.check_kind != "http" and p.http_check_rules:
                ctx.warn(None, f"{p.label()} uses http-check rules without 'option httpchk', "
                         "so the rules are ignored.", "http-check-without-httpchk",
                         style="plain")
            if p.check_kind != "tcp-check" and p.tcp_check_rules and \
                    not p.tcp_check_rules_quiet:
                ctx.warn(None, f"{p.label()} uses tcp-check rules without 'option tcp-check', "
                         "so the rules are ignored.", "tcp-check-without-option",
                         style="plain")
            if "backend" in p.caps:  # each TLS server's context, as HAProxy prepares it
                server_tls.check_servers(p, glob, ctx)


    def _check_formats(self, p: ProxyBuilder) -> None:
        """Compile the proxy's log formats in its final mode, as HAProxy 2.6.12 does
        at check time: each proxy that uses a text (a defaults section's included) is
        told of its first error. A log line cannot read the heads or buffers, which
        are gone by then; the unique id is made while the request head is there.
        (HAProxy reports a log-format-sd error at the log-format's line, or at
        "(null):0" without one; lb names the log-format-sd line.)"""
        ctx = self.ctx
        checks = [("unique_id_format", p.unique_id_format_origin, "unique-id",
                   "http-request")]
        if "frontend" in p.caps:
            checks[:0] = [("log_format", p.log_format_origin, "log-format", "log"),
                          ("log_format_sd", p.log_format_sd_origin, "log-format-sd", "log")]
            checks.append(("error_log_format", p.error_log_format_origin,
                           "error-log-format", "log"))
        for attr, org, what, context in checks:
            text = getattr(p, attr)
            if not text:
                continue
            # (the statement, for the names its fetches take: lb.config.sample_refs)
            line = Line(org.file, org.line, (attr.replace("_", "-"),), (0,), "")
            source = maps.MapSource(ctx.pattern_refs, ctx.base_dir,
                                    f"map at file '{org.file}' line {org.line}")
            try:
                with maps.using(source), sample.collecting_refs() as refs:
                    fmt_mod.compile_format(text, log=context == "log", context=context,
                                           mode=p.mode)
            except Exception as exc:  # (a converter's own error too: an alert, never a
                # traceback, as the parse-time check this replaced gave)
                ctx.alert(line, f"failed to parse {what} : {str(exc).rstrip()}.",
                          "bad-format", style="Parsing")
                if getattr(exc, "pos", 0) == 0:  # nothing kept: no "log format ignored"
                    setattr(p, attr, None)
                continue
            self.sample_refs.extend(sample_refs.PendingRef(r, line, p) for r in refs)

    def _check_bind_protos(self, p: ProxyBuilder) -> None:
        """`bind ... proto <mux>`: the multiplexer must serve a frontend in the proxy's
        mode (HAProxy 2.6.12's text, once per `bind` line)."""
        lines: dict[m.Origin, list[m.Bind]] = {}
        for b in p.binds:
            lines.setdefault(b.origin, []).append(b)
        for org, binds in lines.items():
            proto = binds[0].proto
            if proto is None or bind_kw.MUX_PROTOS.get(proto) == p.mode:
                continue
            addr = ",".join(dict.fromkeys(b.raw for b in binds))  # the line's address word
            self.ctx.alert(None, f"{p.label()} : MUX protocol '{proto}' is not usable for "
                           f"'bind {addr}' at [{org}].", "bind-proto-mode", style="plain")

    def _check_bind_tls(self, p: ProxyBuilder) -> None:
        """What HAProxy 2.6.12 finds wrong with an `ssl` bind line once it builds its
        contexts: no certificate, no version left, then verification without a CA
        and each refused cipher or curve setting, gathered in one alert: the line's
        own context first, then each certificate's (so a problem of the line shows
        once more per certificate; one of a `crt-list` line only with its own)."""
        lines: dict[m.Origin, list[m.Bind]] = {}
        for b in p.binds:
            if b.tls is not None:
                lines.setdefault(b.origin, []).append(b)
        for org, binds in lines.items():
            tls = binds[0].tls
            assert tls is not None
            place = f"bind '{','.join(dict.fromkeys(b.raw for b in binds))}' at [{org}]"
            where = f"Proxy '{p.name}': %s for {place}"
            if not tls.certificates:
                self.ctx.alert(None, where % "no SSL certificate specified" + " (use 'crt').",
                               "bind-no-crt", style="plain")
                continue
            span, warnings = tls_frontend.versions(tls)
            for text in warnings:
                self.ctx.warn(None, f"Proxy '{p.name}': " + text.format(place),
                              "bind-tls-versions", style="plain")
            if span is None:
                self.ctx.alert(None, where % "all SSL/TLS versions are disabled" + ".",
                               "bind-no-version", style="plain")
                continue
            try:
                entries = tls_frontend.entries(tls)
            except (certs.TlsFileError, OSError):  # (read at parse time: gone since)
                entries = []
            texts = self._tls_setting_texts(where, tls, None)
            for entry in entries:
                texts += self._tls_setting_texts(where, entry.settings, "versions")
            if texts:
                self.ctx.alert(None, texts[0], "bind-tls-setting", style="plain",
                               more=tuple(texts[1:]))

    @staticmethod
    def _tls_setting_texts(where: str, tls: m.BindTls, versions: str | None) -> list[str]:
        """What HAProxy finds wrong as it builds one context of an `ssl` bind line:
        the line's own first, then each certificate's (``versions``: the context of a
        certificate, whose `crt-list` line may leave no version)."""
        texts = []
        if versions and tls_frontend.version_range(tls) is None:
            texts.append(where % "all SSL/TLS versions are disabled" + ".")
        if tls.verify != "none" and tls.ca_file is None:
            texts.append(where % "verify is enabled but no CA file specified" + ".")
        for exc in tls_frontend.refused_settings(tls):
            texts.append(where % f"unable to set {_TLS_SETTING[exc.what]} to "
                         f"'{exc.value}'" + ".")
        return texts

    def _check_tracks(self, p: ProxyBuilder, backends: Mapping[str, ProxyBuilder]) -> None:
        """`track [be/]srv`: the target exists and is checked (HAProxy's texts)."""
        for s in p.servers:
            if not s.track:
                continue
            be_name, _, srv_name = s.track.rpartition("/")
            be = backends.get(be_name) if be_name else p
            line = Line(s.origin.file, s.origin.line, (), (), "")
            label = f"'server {p.name}/{s.name}'"
            if be is None:
                self.ctx.alert(line, f"{label} : unable to find required proxy '{be_name}' for "
                               "tracking.", "bad-track", style="bracket")
                continue
            target = next((t for t in be.servers if t.name == srv_name), None)
            if target is None:
                self.ctx.alert(line, f"{label} : unable to find required server '{srv_name}' "
                               "for tracking.", "bad-track", style="bracket")
            elif not (target.check or target.agent_check):
                self.ctx.alert(line, f"{label} : unable to use {be.name}/{srv_name} for "
                               "tracking as it does not have any check nor agent enabled.",
                               "bad-track", style="bracket")

    def _is_ws_backend(self, be: ProxyBuilder) -> bool:
        if _WS_WORDS.search(be.name):
            return True
        if _check_expects_101(be):
            return True
        for p, cond_text in self._routes.get(be.name, ()):
            if self._cond_mentions(p, cond_text, _WS_WORDS):
                return True
        return False

    def _cond_mentions(self, p: ProxyBuilder, cond_text: str, pattern: re.Pattern[str]) -> bool:
        """``pattern`` occurs in the condition or in an ACL it names."""
        if pattern.search(cond_text):
            return True
        for word in re.findall(r"[A-Za-z0-9_.:-]+", cond_text):
            ent = p.acls.get(word)
            if ent and any(pattern.search(t) for t in ent.texts):
                return True
        return False

    def _lint(self, backends: Mapping[str, ProxyBuilder]) -> None:
        ctx = self.ctx
        self._routes: dict[str, list[tuple[ProxyBuilder, str]]] = {}
        for p in self.proxies:
            if "frontend" in p.caps:
                for r in p.switching_rules:
                    if r.backend:
                        self._routes.setdefault(r.backend, []).append((p, r.cond_text))
        ws_backends = {n for n, be in backends.items() if be.mode == "http" and
                       self._is_ws_backend(be)}
        for name in sorted(ws_backends, key=lambda n: backends[n].origin.line):
            be = backends[name]
            if be.timeouts.get("tunnel"):
                continue
            srv_t = be.timeouts.get("server")
            cli = [p.timeouts.get("client") for p in self.proxies if "frontend" in p.caps and
                   (p.default_backend == name or any(r.backend == name
                                                     for r in p.switching_rules))]
            parts = []
            if srv_t:
                parts.append(f"'timeout server' ({_fmt_s(srv_t)})")
            for c in cli:
                if c:
                    parts.append(f"'timeout client' ({_fmt_s(c)})")
                    break
            limit = " / ".join(parts) if parts else "no timeout at all (they never expire)"
            ctx.warn(None, f"{be.label()} can receive upgraded (WebSocket) connections but no "
                     f"'timeout tunnel' applies: idle WebSockets are governed by {limit}.",
                     "ws-no-tunnel-timeout", style="plain",
                     more=pipe("Set 'timeout tunnel' (e.g. 1h) in this backend or its "
                               "defaults so established tunnels get their own idle timeout."))
        for be in backends.values():
            if be.check_kind != "http":
                continue
            if not _check_expects_101(be):
                continue
            headers = list(be.httpchk_send.headers if be.httpchk_send else ())
            for s in be.http_check_rules:
                if isinstance(s, m.HttpCheckSend):
                    headers.extend(s.headers)
            names = {n.lower(): v.lower() for n, v in headers}
            if "upgrade" not in names or "upgrade" not in names.get("connection", ""):
                ctx.warn(None, f"{be.label()} expects status 101 from its health check but the "
                         "check request carries no 'Upgrade' and 'Connection: upgrade' "
                         "headers.", "ws-check-no-upgrade", style="plain",
                         more=pipe("A WebSocket server answers such a plain request with "
                                   "400/426, so the server will be marked DOWN. Add them "
                                   "with 'http-check send hdr Connection Upgrade hdr Upgrade "
                                   "websocket'."))
        for p in self.proxies:
            if "frontend" not in p.caps or p.mode != "http":
                continue
            if p.options.get("http_server_close") or p.options.get("httpclose"):
                continue
            targets = {r.backend for r in p.switching_rules if r.backend}
            if p.default_backend:
                targets.add(p.default_backend)
            ws = targets & ws_backends
            if not ws or len(targets) < 2:
                continue
            if not any(self._cond_mentions(p, r.cond_text, _HDR_FETCH) for r in p.switching_rules):
                continue
            ctx.warn(None, f"{p.label()} routes HTTP and WebSocket traffic to different "
                     "backends on request headers without 'option http-server-close' or "
                     "'option httpclose'.", "ws-mixed-keepalive", style="plain",
                     more=pipe("Requests sharing a kept-alive server connection may reach "
                               "the wrong backend with old HAProxy versions; setting "
                               "'option http-server-close' makes every request routed on "
                               "its own."))

    # ------------------------------------------------------------------ freeze

    @staticmethod
    def _freeze_disabled(p: ProxyBuilder, puid: int) -> m.Proxy:
        """A disabled proxy as the runtime needs it: named, numbered, with its servers
        (listed by `show servers state`) and cookie (a request routed to it logs its
        cookie flags), without binds or rules."""
        is_be = "backend" in p.caps
        return m.Proxy(name=p.name, caps=p.caps, kind=p.kind, mode=p.mode,  # type: ignore[arg-type]
                       puid=puid, forced_id=bool(p.forced_id), disabled=True,
                       servers=_servers_unnumbered(p) if is_be else (),
                       cookie=p.cookie if is_be else None, origin=p.origin)

    def _freeze(self, p: ProxyBuilder, puid: int, glob: m.Global) -> m.Proxy:
        if p.disabled:
            return self._freeze_disabled(p, puid)
        flags = {k: v for k, v in p.options.items() if k in _OPTION_FIELDS}
        # HTTP mode implies tcp-smart-accept, as in HAProxy, unless negated
        flags.setdefault("tcp_smart_accept", p.mode == "http")
        # ... and, in lb (not HAProxy), tcp-smart-connect: the request leaves with the
        # handshake's last ACK (docs/dataplane.md, "Opening server connections")
        flags.setdefault("tcp_smart_connect", p.mode == "http")
        opts = m.Options(**flags)
        tmo = m.Timeouts(**{k: v for k, v in p.timeouts.items() if k in _TIMEOUT_FIELDS})
        logs = (tuple(glob.logs) if p.log_global else ()) + tuple(p.logs)
        stats = None
        if p.stats and p.stats.get("enabled"):
            st = p.stats
            stats = m.StatsPage(
                uri=st.get("uri", "/haproxy?stats"), realm=st.get("realm", "HAProxy Statistics"),
                auth=tuple(st.get("auth", ())), refresh=st.get("refresh"),
                admin_cond=st.get("admin_cond"), hide_version=bool(st.get("hide_version")),
                show_legends=bool(st.get("show_legends")), scope=tuple(st.get("scope", ())))
        acls = MappingProxyType({
            name: m.AclDecl(name=name, acl=ent.acl, origins=tuple(ent.origins))
            for name, ent in p.acls.items()})
        is_fe = "frontend" in p.caps
        is_be = "backend" in p.caps
        kw: dict[str, Any] = {}
        if is_be:
            ids = number_ids([s.forced_id for s in p.servers], 1)
            servers = tuple(s if s.puid == n else replace(s, puid=n)
                            for s, n in zip(p.servers, ids, strict=True))
            kw.update(
                servers=servers, balance=p.balance, dispatch=_dispatch_server(p),
                cookie=p.cookie,
                dynamic_cookie_key=p.dynamic_cookie_key,
                load_server_state=p.load_server_state,
                server_state_file_name=p.server_state_file_name,
                persist_rules=tuple(p.persist_rules), stick_rules=tuple(p.stick_rules),
                server_rules=tuple(p.server_rules), send_name_header=p.send_name_header,
                email_alert=self.email_alerts.get(p.name),
                check=build_check(p, opts.log_health_checks), retries=p.retries,
                retry_on=p.retry_on, redispatch_interval=p.redispatch_interval,
                fullconn=p.fullconn, hash_balance_factor=p.hash_balance_factor,
                http_reuse=p.http_reuse, max_ka_queue=p.max_ka_queue)
        if is_fe:
            kw.update(binds=_numbered_binds(p.binds), maxconn=p.maxconn, backlog=p.backlog,
                      default_backend=p.default_backend,
                      switching_rules=tuple(p.switching_rules), log_format=p.log_format,
                      log_format_sd=p.log_format_sd, error_log_format=p.error_log_format,
                      monitor_uri=p.monitor_uri, monitor_fail=tuple(p.monitor_fail),
                      unique_id_format=p.unique_id_format,
                      unique_id_header=p.unique_id_header,
                      max_session_srv_conns=p.max_session_srv_conns)
        return m.Proxy(
            name=p.name, caps=p.caps, kind=p.kind, mode=p.mode, puid=puid,  # type: ignore[arg-type]
            acls=acls, http_request_rules=tuple(p.http_request_rules),
            stats_http_request_rules=tuple(p.stats_http_request_rules),
            http_response_rules=tuple(p.http_response_rules),
            http_after_response_rules=tuple(p.http_after_response_rules),
            tcp_request_connection_rules=tuple(p.tcp_request_connection_rules),
            tcp_request_content_rules=tuple(p.tcp_request_content_rules),
            tcp_request_session_rules=tuple(p.tcp_request_session_rules),
            inspect_delay=p.inspect_delay, redirect_rules=tuple(p.redirect_rules), options=opts,
            restrict_hdr_names=p.restrict_hdr_names, timeouts=tmo, logs=logs,
            log_tag=p.log_tag or glob.log_tag, forwardfor=p.forwardfor,
            originalto=p.originalto, compression=p.compression, source=p.source,
            errorfiles=MappingProxyType(self.pages[id(p)]), stats=stats,
            description=p.description, stick_table=p.stick_table,
            captures_req=tuple(p.captures_req), captures_res=tuple(p.captures_res),
            capture_cookie=p.capture_cookie, rate_limit_sessions=p.rate_limit_sessions,
            cli_tcpka=_tcpka(p.tcpka_settings, "cli"), srv_tcpka=_tcpka(p.tcpka_settings, "srv"),
            origin=p.origin, forced_id=bool(p.forced_id), **kw)


def _servers_unnumbered(p: ProxyBuilder) -> tuple[m.Server, ...]:
    """A disabled backend's servers: HAProxy never numbers them (`show servers state`
    prints 0, but a written id) nor sets their checks up."""
    return tuple(replace(s, puid=s.forced_id, check=False) for s in p.servers)


def _numbered_binds(binds: list[m.Bind]) -> tuple[m.Bind, ...]:
    """A proxy's listeners with their numbers (HAProxy's luid): each socket of each
    `bind` line in file order, an `id` kept, the others numbered as ``number_ids``
    does (checked against 2.6.12's `show stat` with `option socket-stats`)."""
    ids = number_ids([b.luid for b in binds], 1)
    return tuple(b if b.luid == n else replace(b, luid=n)
                 for b, n in zip(binds, ids, strict=True))


def number_ids(forced: list[int], first: int) -> list[int]:
    """HAProxy's numbering of proxies (and of a backend's servers): a written `id`
    is kept; the others take the first free number from a counter that starts at
    ``first`` and moves past every entry, numbered or not."""
    used = {f for f in forced if f}
    out = []
    nxt = first
    for f in forced:
        if not f:
            while nxt in used:
                nxt += 1
            f = nxt
            used.add(f)
        out.append(f)
        nxt += 1
    return out


def _tcpka(settings: dict[str, int], side: str) -> tuple[int, int, int]:
    return (settings.get(f"{side}tcpka-idle", 0), settings.get(f"{side}tcpka-cnt", 0),
            settings.get(f"{side}tcpka-intvl", 0))


def _fmt_s(seconds: float) -> str:
    if seconds >= 1 and float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{int(round(seconds * 1000))}ms"


def parse_sources(sources: list[tuple[str, str]], *, strict: bool, env: dict[str, str],
                  base_dir: str, diags: Diagnostics) -> m.Config | None:
    """Parse (name, text) pairs in order; returns the Config or None on fatal errors."""
    parser = Parser(diags, strict=strict, env=env, base_dir=base_dir)
    for name, text in sources:
        parser.parse_text(text, name)
        if diags.stopped:
            break
    try:
        return parser.finish()
    except TooManyErrors:
        return None


def no_listener(cfg: m.Config) -> bool:
    """True when no frontend/listen has any bind (HAProxy's exit code 2 case)."""
    return not any(p.binds for p in cfg.proxies if p.is_frontend)


__all__ = ["parse_sources", "no_listener", "Diagnostic"]
