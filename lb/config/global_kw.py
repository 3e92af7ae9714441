"""`global` section keywords (spec §13, §12.1, §11).

Owns: the GLOBAL_KEYWORDS table and its handlers, filling a ``GlobalBuilder``:
process settings (daemon, maxconn, nbthread, user/group, chroot, pidfile, ...),
`log` targets, `stats socket/timeout/maxconn`, `tune.*`, environment keywords.

Must not import: lb.config.build.
"""

from __future__ import annotations

import grp
import pwd
import re
import socket
from collections.abc import Callable

import lb.config.model as m
from lb.config import bind_kw, var_kw
from lb.config.addresses import SOCKET_PREFIXES, socket_path
from lb.config.lexer import Line
from lb.config.proxy_kw import SECTION_NAMES, parse_log, too_many
from lb.config.registry import GlobalBuilder, Keyword, ParseCtx, Table, origin
from lb.config.server_kw import socket_path_problem, split_address
from lb.config.server_tls import (
    kw_base,
    kw_ssl_default_ciphers,
    kw_ssl_default_options,
    kw_ssl_server_verify,
)
from lb.match import variables
from lb.units import UnitError, atoi, parse_size, parse_time_ms

GHandler = Callable[[GlobalBuilder, Line, ParseCtx], None]


def _flag(field: str) -> GHandler:
    def handler(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> None:
        if not too_many(line, ctx, 0):
            g.values[field] = True
    return handler


def _once(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> bool:
    """HAProxy's "'x' already specified. Continuing." (an ALERT counted as warning)."""
    kw = line.words[0]
    if kw in g.seen:
        ctx.soft_alert(line, f"'{kw}' already specified. Continuing.", "duplicate-setting")
        return False
    g.seen.add(kw)
    return True


def _int(field: str, kw: str | None = None, *, once: bool = False, minimum: int = 0
         ) -> GHandler:
    def handler(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> None:
        name = kw or line.words[0]
        if len(line.words) < 2 or not line.words[1]:
            ctx.alert(line, f"'{name}' expects an integer argument.", "missing-argument")
            return
        if too_many(line, ctx, 1):
            return
        if once and not _once(g, line, ctx):
            return
        v = line.words[1]
        if not v.isdigit():
            # HAProxy reads it with atol(); say so instead of failing
            ctx.warn(line, f"'{name}' expects an integer argument, '{v}' is read as "
                     f"{atoi(v)}.", "bad-integer", col=line.col(1))
            v = str(max(atoi(v), 0))
        if int(v) < minimum:
            ctx.alert(line, f"'{name}' expects a value >= {minimum}.", "bad-integer",
                      col=line.col(1))
            return
        g.values[field] = int(v)
    return handler


def kw_maxcomprate(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> None:
    """`maxcomprate <kB/s>`: HAProxy reads it with atoi, times 1024 (0 or less: none)."""
    if len(line.words) < 2 or not line.words[1]:
        ctx.alert(line, "'maxcomprate' expects an integer argument in kb/s.",
                  "missing-argument")
        return
    g.values["maxcomprate"] = atoi(line.words[1]) * 1024


def kw_maxcompcpuusage(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> None:
    """`maxcompcpuusage <pct>`: 0..100 (HAProxy reads it with atol)."""
    v = atoi(line.words[1]) if len(line.words) > 1 and line.words[1] else -1
    if not 0 <= v <= 100:
        ctx.alert(line, "'maxcompcpuusage' expects an integer argument between 0 and 100.",
                  "bad-integer", col=line.col(1) if len(line.words) > 1 else 0)
        return
    g.values["maxcompcpuusage"] = v


MAX_THREADS = 64  # Debian's HAProxy 2.6 build (MAX_THREADS)


def kw_nbthread(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> None:
    """HAProxy 2.6.12's own reading: the whole word a decimal number, 1..64."""
    if too_many(line, ctx, 1):
        return
    v = line.words[1] if len(line.words) > 1 else ""
    if re.fullmatch(r"\s*[+-]?[0-9]+", v) is None:
        ctx.alert(line, f"'nbthread' passed a missing or unparsable integer value in '{v}'",
                  "bad-integer", col=line.col(1) if len(line.words) > 1 else 0)
        return
    n = int(v)
    if not 1 <= n <= MAX_THREADS:
        ctx.alert(line, f"'nbthread' value must be between 1 and {MAX_THREADS} (was {n})",
                  "bad-integer", col=line.col(1))
        return
    g.values["nbthread"] = n


def _str(field: str, *, once: bool = False, rest: bool = False) -> GHandler:
    def handler(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> None:
        kw = line.words[0]
        if len(line.words) < 2 or not line.words[1]:
            ctx.alert(line, f"'{kw}' expects an argument.", "missing-argument")
            return
        if not rest and too_many(line, ctx, 1):
            return
        if once and not _once(g, line, ctx):
            return
        g.values[field] = " ".join(line.words[1:]) if rest else line.words[1]
    return handler


def _time(field: str) -> GHandler:
    def handler(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> None:
        kw = line.words[0]
        if len(line.words) < 2 or not line.words[1]:
            ctx.alert(line, f"'{kw}' expects <time> as argument.", "missing-argument")
            return
        try:
            ms, junk = parse_time_ms(line.words[1], kw)
            if junk:
                raise UnitError("char", line.words[1], junk[0], kw)
        except UnitError as exc:
            text = (exc.describe(kw) if exc.reason == "overflow" else
                    f"unexpected character '{exc.char}' in argument to <{kw}>.")
            ctx.alert(line, text, "bad-time", col=line.col(1))
            return
        g.values[field] = ms / 1000.0
    return handler


def kw_user(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> None:
    kw = line.words[0]
    if len(line.words) < 2:
        ctx.alert(line, f"'{kw}' expects an argument.", "missing-argument")
        return
    name = line.words[1]
    if not _once(g, line, ctx):
        return
    try:
        if kw == "user":
            g.values["uid"] = pwd.getpwnam(name).pw_uid
        else:
            g.values["gid"] = grp.getgrnam(name).gr_gid
    except KeyError:
        what = "user" if kw == "user" else "group"
        ctx.alert(line, f"cannot find {what} id for '{name}' (0:Success)", "unknown-user",
                  col=line.col(1))
        return
    g.values[kw] = name


def kw_uid(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> None:
    """`uid`/`gid <number>`: a word that is not a number is only a warning in
    HAProxy 2.6.12 (with its hint), and leaves the id unset."""
    kw = line.words[0]
    if len(line.words) < 2 or not line.words[1]:
        ctx.alert(line, f"'{kw}' expects an integer argument.", "missing-argument")
        return
    if too_many(line, ctx, 1):
        return
    v = line.words[1]
    if re.fullmatch(r"[+-]?[0-9]+", v) is None:
        hint = ("'user' parameter to use a system user name" if kw == "uid"
                else "'group' parameter to use a system group name")
        ctx.warn(line, f" {kw}: string '{v}' is not a number.\n   | You might want to use "
                 f"the {hint}.", "bad-integer", col=line.col(1))
        return
    if _once(g, line, ctx):
        g.values[kw] = int(v)


def kw_log(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> None:
    res = parse_log(line, ctx, line.words[1:], in_global=True)
    if isinstance(res, m.LogTarget):
        g.logs.append(res)


def _stats_socket(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> None:
    words = line.words
    if len(words) < 3 or not words[2]:
        ctx.alert(line, "'stats socket' requires a path or an address.", "missing-argument")
        return
    addr = words[2]
    kind: str
    port: int | None = None
    if addr.startswith("fd@"):
        kind, address = "fd", addr[3:]
    elif addr.startswith(SOCKET_PREFIXES):
        problem = socket_path_problem(addr)
        if problem:  # (HAProxy 2.6.12 names the place twice and ends with two blank lines)
            ctx.alert(line, f"parsing [{line.file}:{line.lineno}] : 'stats socket' : "
                      f"{problem}\n\n", "bad-address", col=line.col(2))
            return
        kind, address = "unix", socket_path(addr) or addr
    else:
        a = addr
        for prefix in ("ipv4@", "ipv6@", "tcp@", "tcp4@", "tcp6@"):
            if a.startswith(prefix):
                a = a[len(prefix):]
        host, port, err = split_address(a)
        if err or port is None:
            ctx.alert(line, f"'stats socket' : {err or f'missing port in {addr!r}'}",
                      "bad-address", col=line.col(2))
            return
        kind, address = "tcp", host
    # the options of a `bind` line, with HAProxy's wrapping of their texts
    opts = bind_kw.BindLine(1, f"{line.file}:{line.lineno} ('bind {addr}')",
                            g.stats_socket_ids)
    problem = bind_kw.parse_options(words, 3, opts)
    for text, located in opts.warnings:
        ctx.warn(line, f"'stats socket' : {text}" if located else text, "bind-option",
                 style="parsing" if located else "plain")
    if problem is not None:
        if problem.unknown:
            sug = problem.suggestion
            text = f"'stats socket' : unknown keyword '{words[problem.index]}'." + (
                f" Did you mean '{sug}' maybe ?" if sug else "")
            ctx.alert(line, text, "unknown-bind-keyword", col=line.col(problem.index),
                      suggestion=sug)
        else:
            # HAProxy quotes the text as it is: a final line feed puts the closing
            # quote alone on the next line
            text, lf, _ = problem.text.partition("\n")
            ctx.alert(line, f"'stats socket' : '{text}" + ("" if lf else "'"),
                      "bad-bind-option", col=line.col(problem.index), more=("'",) if lf else ())
        return
    values = opts.values
    if values.get("ssl"):
        ctx.alert(line, "'stats socket' : 'ssl' is not supported by lb (it does not terminate "
                  "TLS); terminate TLS in front of lb and bind here without 'ssl'.",
                  "unsupported-tls", col=line.col(words.index("ssl")))
        return
    proto = values.get("proto", "none")
    if proto != "none":  # no other multiplexer serves the CLI (reported after the parse)
        ctx.alert(None, f"frontend 'GLOBAL' : MUX protocol '{proto}' is not usable for "
                  f"'bind {addr}' at [{line.file}:{line.lineno}].", "bind-proto-mode",
                  style="plain", phase="check")
    if "id" in values:
        g.stats_socket_ids[values["id"]] = opts.here
    g.stats_sockets.append(m.StatsSocket(
        kind=kind, address=address, port=port, mode=values.get("mode"),  # type: ignore[arg-type]
        level=values.get("level", "operator"),
        expose_fd_listeners="expose-fd" in values, origin=origin(line)))


def kw_stats(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> None:
    words = line.words
    sub = words[1] if len(words) > 1 else ""
    if sub == "socket":
        _stats_socket(g, line, ctx)
    elif sub == "timeout":
        if len(words) < 3:
            ctx.alert(line, "'stats timeout' expects a timeout value.", "missing-argument")
            return
        try:
            ms, _j = parse_time_ms(words[2], "stats timeout")
        except UnitError as exc:
            ctx.alert(line, exc.describe("stats timeout"), "bad-time", col=line.col(2))
            return
        if ms == 0:
            ctx.alert(line, "'stats timeout' expects a positive value.", "bad-time")
            return
        g.values["stats_timeout"] = ms / 1000.0
    elif sub == "maxconn":
        if len(words) < 3 or not words[2].isdigit() or int(words[2]) <= 0:
            ctx.alert(line, "'stats maxconn' expects a positive value.", "bad-argument")
            return
        g.values["stats_maxconn"] = int(words[2])
    elif sub == "bind-process":
        pass
    else:
        ctx.alert(line, "'stats' only supports 'socket', 'maxconn', 'bind-process' and "
                  f"'timeout' (got '{sub}').", "bad-argument", col=line.col(1))


def _tune_bufsize(text: str) -> int | str:
    try:
        value = parse_size(text, "tune.bufsize")
    except UnitError:
        value = 0
    return value if value > 0 else "expects a positive integer argument."


def _tune_maxrewrite(text: str) -> int | str:
    value = atoi(text)
    return value if value >= 0 else "expects a positive integer argument."


def _tune_maxhdr(text: str) -> int | str:
    value = atoi(text)
    return value if 1 <= value <= 32767 else "expects a numeric value between 1 and 32767"


def _tune_comp_maxlevel(text: str) -> int | str:
    value = atoi(text) if text.isdigit() else 0
    return value if 1 <= value <= 9 else "expects a numeric value between 1 and 9"


def _tune_sockbuf(text: str) -> int | str:
    return max(atoi(text), 0)  # HAProxy takes atol's value; 0 (or less) leaves the kernel's


# tune.* keyword -> (Global field, value parser returning the value or the alert's tail);
# HAProxy 2.6's checks and messages (`haproxy -c` compared by hand)
TUNE_VALUES: dict[str, tuple[str, Callable[[str], int | str]]] = {
    "tune.bufsize": ("tune_bufsize", _tune_bufsize),
    "tune.comp.maxlevel": ("tune_comp_maxlevel", _tune_comp_maxlevel),
    "tune.maxrewrite": ("tune_maxrewrite", _tune_maxrewrite),
    "tune.http.maxhdr": ("tune_http_maxhdr", _tune_maxhdr),
    "tune.rcvbuf.client": ("tune_rcvbuf_client", _tune_sockbuf),
    "tune.rcvbuf.server": ("tune_rcvbuf_server", _tune_sockbuf),
    "tune.sndbuf.client": ("tune_sndbuf_client", _tune_sockbuf),
    "tune.sndbuf.server": ("tune_sndbuf_server", _tune_sockbuf),
}


def kw_tune(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> None:
    kw = line.words[0]
    field, parse = TUNE_VALUES[kw]
    if len(line.words) < 2:
        if kw != "tune.comp.maxlevel":  # (its range message covers a missing value)
            ctx.alert(line, f"'{kw}' expects an integer argument.", "missing-argument")
            return
    value = parse(line.words[1] if len(line.words) > 1 else "")
    if isinstance(value, str):
        ctx.alert(line, f"'{kw}' {value}", "bad-integer")
        return
    g.values[field] = value
    g.tune[kw] = line.words[1]


def kw_setenv(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> None:
    kw = line.words[0]
    words = line.words
    if kw in ("setenv", "presetenv"):
        if len(words) < 3:
            ctx.alert(line, f"'{kw}' expects a name and a value.", "missing-argument",
                      style="tight")
            return
        if len(words) > 3:  # (HAProxy 2.6.12 ignores what follows the value)
            ctx.warn(line, f"'{kw}' ignores the extra argument '{words[3]}'.",
                     "extra-argument", col=line.col(3))
        if kw == "presetenv" and (words[1] in g.env or words[1] in ctx.env):
            return
        g.env[words[1]] = words[2]
        if isinstance(ctx.env, dict):
            ctx.env[words[1]] = words[2]
    elif kw == "unsetenv":
        for name in words[1:]:
            g.env.pop(name, None)
            if isinstance(ctx.env, dict):
                ctx.env.pop(name, None)
    elif kw == "resetenv":
        keep = set(words[1:])
        g.env = {k: v for k, v in g.env.items() if k in keep}


def kw_set_var(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> None:
    """`set-var proc.<name> <expr>` / `set-var-fmt proc.<name> <format>`: evaluated
    now, in file order (words after the expression are ignored, as by HAProxy)."""
    kw, words = line.words[0], line.words
    if len(words) < 3 or not words[1] or not words[2]:
        what = "a format string" if kw == "set-var-fmt" else "a sample expression"
        ctx.alert(line, f"'{kw}' requires a process-wide variable name ('proc.<name>') and "
                  f"{what}.", "missing-argument")
        return
    name = words[1]
    err = variables.name_error(name, ")")  # HAProxy reads it as "set-var(<name>)"
    if err is None and not name.startswith("proc."):
        err = (f"'{kw}': cannot set variable '{name}', only scope 'proc' is permitted in "
               "the global section.")
    if err is None:
        proc = variables.ProcVars(g.values.get("proc_vars", ()))
        err = var_kw.evaluate(kw, name, words[2], proc)
        g.values["proc_vars"] = tuple((k, v, proc.types[k]) for k, v in proc.values.items())
    if err is not None:
        ctx.alert(line, err, "bad-variable", col=line.col(1))


def _removed(text: str) -> GHandler:
    def handler(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> None:
        ctx.alert(line, text, "removed-keyword", col=line.col(0))
    return handler


def _ignored(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> None:
    return None


def _state_path(field: str, expects: str) -> GHandler:
    """`server-state-file` / `server-state-base`: the first setting stays (HAProxy
    checks for a repeat before the argument; more words are ignored)."""
    def handler(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> None:
        kw = line.words[0]
        if field in g.values:
            ctx.soft_alert(line, f"'{kw}' already specified. Continuing.", "duplicate-setting")
            return
        if len(line.words) < 2 or not line.words[1]:
            ctx.alert(line, f"'{kw}' {expects}", "missing-argument")
            return
        g.values[field] = line.words[1]
    return handler


def _unsupported(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> None:
    ctx.warn(line, f"'{line.words[0]}' is not supported by lb and is ignored.",
             "unsupported-keyword", col=line.col(0))


def kw_chroot(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> None:
    if len(line.words) < 2 or not line.words[1]:
        ctx.alert(line, "'chroot' expects a directory as an argument.", "missing-argument")
        return
    if not too_many(line, ctx, 1) and _once(g, line, ctx):
        g.values["chroot"] = line.words[1]


def kw_log_send_hostname(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> None:
    if len(line.words) > 2:  # (HAProxy 2.6.12 takes the first word, ignores the rest)
        ctx.warn(line, f"'log-send-hostname' ignores the extra argument '{line.words[2]}'.",
                 "extra-argument", col=line.col(2))
    g.values["log_send_hostname"] = line.words[1] if len(line.words) > 1 else \
        socket.gethostname()


def kw_spread_checks(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> None:
    """`spread-checks <0..50>`, read with atol as HAProxy 2.6.12 does (a word that is
    not a number is 0)."""
    if len(line.words) < 2 or not line.words[1]:
        ctx.alert(line, "'spread-checks' expects an integer argument (0..50).",
                  "missing-argument", style="tight")
        return
    if too_many(line, ctx, 1):
        return
    v = atoi(line.words[1])
    if not line.words[1].lstrip("+-").isdigit():
        ctx.warn(line, f"'spread-checks' expects an integer argument, '{line.words[1]}' is "
                 f"read as {v}.", "bad-integer", col=line.col(1))
    if not 0 <= v <= 50:
        ctx.alert(line, "'spread-checks' needs a positive value in range 0..50.",
                  "bad-integer", col=line.col(1), style="tight")
        return
    g.values["spread_checks"] = v


_ROWS: list[Keyword] = [
    Keyword("ca-base", kw_base, help="directory of relative ca-file/crl-file paths"),
    Keyword("chroot", kw_chroot, help="chroot directory"),
    Keyword("cpu-map", _ignored, help="accepted and ignored"),
    Keyword("crt-base", kw_base, help="directory of relative crt paths"),
    Keyword("daemon", _flag("daemon"), help="run in the background"),
    Keyword("description", _str("description", rest=True)),
    Keyword("gid", kw_uid, help="numeric group id"),
    Keyword("grace", _time("grace")),
    Keyword("group", kw_user, help="group name"),
    Keyword("h2-workaround-bogus-websocket-clients", _ignored),
    Keyword("hard-stop-after", _time("hard_stop_after"), help="bound a soft stop"),
    Keyword("log", kw_log, help="global log target"),
    Keyword("log-send-hostname", kw_log_send_hostname),
    Keyword("log-tag", _str("log_tag"), help="syslog tag"),
    Keyword("master-worker", _flag("master_worker")),
    Keyword("maxconn", _int("maxconn", once=True), help="process-wide connection limit"),
    Keyword("maxcomprate", kw_maxcomprate,
            help="compression input rate above which new responses are not compressed"),
    Keyword("maxcompcpuusage", kw_maxcompcpuusage,
            help="CPU use (percent) above which new responses are not compressed"),
    Keyword("nbthread", kw_nbthread, help="worker count"),
    Keyword("node", _str("node")),
    Keyword("pidfile", _str("pidfile"), help="write the pid here"),
    Keyword("presetenv", kw_setenv),
    Keyword("quiet", _flag("quiet")),
    Keyword("resetenv", kw_setenv),
    Keyword("setenv", kw_setenv),
    Keyword("spread-checks", kw_spread_checks, help="check jitter percentage"),
    Keyword("stats", kw_stats, help="stats socket / timeout / maxconn"),
    *(Keyword(k, kw_tune) for k in TUNE_VALUES),
    Keyword("uid", kw_uid, help="numeric user id"),
    Keyword("ulimit-n", _int("ulimit_n"), help="file descriptor limit"),
    Keyword("unsetenv", kw_setenv),
    Keyword("user", kw_user, help="user name"),
    Keyword("zero-warning", _flag("zero_warning"), help="warnings are fatal"),
    Keyword("set-var", kw_set_var, help="set a process-wide variable from an expression"),
    Keyword("set-var-fmt", kw_set_var, help="set a process-wide variable from a log-format"),
    Keyword("server-state-file", _state_path("server_state_file",
                                             "expect one argument: a file path."),
            help="file of server states read at start-up (load-server-state-from-file)"),
    Keyword("server-state-base", _state_path("server_state_base",
                                             "expects one argument: a directory path."),
            help="directory of relative server-state file names"),
    Keyword("external-check", _flag("external_check"),
            help="let 'option external-check' run its programs"),
    Keyword("insecure-fork-wanted", _flag("insecure_fork_wanted"),
            help="allow forking (external checks)"),
    Keyword("expose-experimental-directives", _flag("expose_experimental"),
            help="allow HAProxy's experimental directives (http-request normalize-uri)"),
    Keyword("busy-polling", _flag("busy_polling"),
            help="never sleep in the poller: lower latency, one core always busy"),
    Keyword("ssl-server-verify", kw_ssl_server_verify,
            help="verify servers' certificates unless a server says: none|required"),
    Keyword("ssl-default-server-options", kw_ssl_default_options,
            help="TLS versions and tickets of servers that set none"),
    Keyword("ssl-default-server-ciphers", kw_ssl_default_ciphers),
    Keyword("ssl-default-server-ciphersuites", kw_ssl_default_ciphers),
    Keyword("ssl-default-bind-options", kw_ssl_default_options,
            help="TLS versions and flags of the `ssl` bind lines after it"),
    Keyword("ssl-default-bind-ciphers", kw_ssl_default_ciphers),
    Keyword("ssl-default-bind-ciphersuites", kw_ssl_default_ciphers),
    Keyword("ssl-default-bind-curves", kw_ssl_default_ciphers),
    Keyword("nbproc", _removed("nbproc is not supported any more since HAProxy 2.5. Threads "
                               "will automatically be used on multi-processor machines if "
                               "available.")),
    *(Keyword(k, _unsupported) for k in (
        "lua-load", "lua-prepend-path",
        "ssl-dh-param-file",
        "set-dumpable", "strict-limits",
        "numa-cpu-mapping", "localpeer", "maxsslconn", "maxconnrate", "maxsessrate",
        "maxpipes", "insecure-setuid-wanted",
        "thread-groups", "profiling.tasks", "nosplice", "noepoll", "nopoll",
        "noreuseport", "nogetaddrinfo", "unix-bind", "issuers-chain-path",
        "httpclient.resolvers.disabled", "stats-file",
        # more that HAProxy 2.6.12 knows (checked with haproxy -c): an existing
        # haproxy.cfg that names one still loads, with a warning
        "h1-case-adjust", "h1-case-adjust-file", "maxsslrate", "h1-accept-payload-with-any-method",
        "maxzlibmem", "mworker-max-reloads",
        "ssl-mode-async", "ssl-load-extra-files", "ssl-load-extra-del-ext", "ssl-propquery",
        "ssl-provider", "ssl-provider-path", "ssl-skip-self-issued-ca",
        "pp2-never-send-local", "cluster-secret", "fd-hard-limit",
        "default-path", "httpclient.ssl.verify", "httpclient.ssl.ca-file",
        "httpclient.resolvers.id", "httpclient.resolvers.prefer", "close-spread-time",
        "lua-load-per-thread", "nokqueue", "noevports", "max-spread-checks",
        "no-memory-trimming")),
]

GLOBAL_TABLE = Table("global", _ROWS)

# `no X` is accepted in global only for these (spec §1.7)
GLOBAL_NEGATABLE = frozenset({"log", "busy-polling", "set-dumpable", "strict-limits",
                              "insecure-fork-wanted", "numa-cpu-mapping"})


# the other tune.* keywords HAProxy 2.6 knows (its -dKall list and those its global
# parser reads itself, checked with haproxy -c; the zlib ones exist in zlib builds):
# accepted and kept as written, with no effect in lb. Any other tune.* is unknown.
TUNE_ACCEPTED = frozenset({
    "tune.buffers.limit", "tune.buffers.reserve", "tune.chksize",
    "tune.fail-alloc", "tune.fd.edge-triggered", "tune.h2.header-table-size",
    "tune.h2.initial-window-size", "tune.h2.max-concurrent-streams",
    "tune.h2.max-frame-size", "tune.http.cookielen", "tune.http.logurilen",
    "tune.idle-pool.shared", "tune.idletimer", "tune.listener.multi-queue",
    "tune.lua.forced-yield", "tune.lua.maxmem", "tune.lua.service-timeout",
    "tune.lua.session-timeout", "tune.lua.task-timeout", "tune.maxaccept",
    "tune.maxpollevents", "tune.pattern.cache-size", "tune.peers.max-updates-at-once",
    "tune.pipesize", "tune.pool-high-fd-ratio", "tune.pool-low-fd-ratio",
    "tune.recv_enough", "tune.runqueue-depth", "tune.sched.low-latency",
    "tune.ssl.cachesize", "tune.ssl.capture-buffer-size",
    "tune.ssl.capture-cipherlist-size", "tune.ssl.default-dh-param",
    "tune.ssl.force-private-cache", "tune.ssl.hard-maxrecord", "tune.ssl.keylog",
    "tune.ssl.lifetime", "tune.ssl.maxrecord", "tune.ssl.ssl-ctx-cache-size",
    "tune.vars.check-max-size", "tune.vars.global-max-size", "tune.vars.proc-max-size",
    "tune.vars.reqres-max-size", "tune.vars.sess-max-size", "tune.vars.txn-max-size",
    "tune.zlib.memlevel", "tune.zlib.windowsize",
})


def dispatch_global(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> None:
    """Run one global-section statement."""
    kw = line.words[0]
    if kw in TUNE_ACCEPTED:
        g.tune[kw] = " ".join(line.words[1:])
        return
    row = GLOBAL_TABLE.get(kw)
    if row is None:
        ctx.unknown_keyword(line, "global", [*GLOBAL_TABLE.rows, *TUNE_ACCEPTED, *SECTION_NAMES])
        return
    row.handler(g, line, ctx)

