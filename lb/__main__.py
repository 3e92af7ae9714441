"""The `lb` command: HAProxy's command line, the `-c` validator, and start-up.

Owns: argument parsing (HAProxy's flags: -f repeatable incl. directories, --, -c,
-cc, -q, -v/-vv/-V, -d, -db, -D, -W, -Ws, -p, -sf, -st, -n, -N, -dW, plus
--strict and --format json), the validator's output and exit codes (spec §1.9),
and handing a loaded Config to the runner. This is the only module that calls
``sys.exit``.

May import: everything (composition root, layer L6).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from lb import __version__
from lb.errors import Diagnostic, render_json, render_line

COMPAT = "2.6"

USAGE = """\
Usage : lb [-f <cfgfile|cfgdir>]* [ -vdVD ] [ -n <maxconn> ] [ -N <maxpconn> ]
        [ -p <pidfile> ] [ -c [--format json] [--strict] ] [ -cc <condition> ]
        [ -sf <pidlist> ] [ -st <pidlist> ] [ -- <cfgfile>* ]
        -v displays version ; -vv shows known build options.
        -d enters debug mode ; -db only disables background mode.
        -dW fails if any warning is emitted
        -V enters verbose mode (disables quiet mode)
        -D goes daemon ; -W master-worker mode ; -Ws master-worker + systemd notify
        -q quiet mode : don't display messages
        -c check mode : only check config files and exit
        -cc check condition : evaluate a condition and exit
        --format json  with -c: one JSON object per diagnostic on stdout
        --strict       with -c or at start-up: compatibility acceptances are errors
        -n sets the maximum total # of connections (uses ulimit -n)
        -N sets the default, per-proxy maximum # of connections
        --workers N  runs N worker processes (overrides global nbthread)
        -p writes pids of all children to this file
        -sf/-st [pid ]* finishes/terminates old pids.
"""


# Diagnostics after which HAProxy stops reading (no "Fatal errors found" line then).
_ABORT_CODES = frozenset({"cannot-open", "lone-else", "lone-elif", "lone-endif",
                          "else-after-else", "elif-after-else", "unterminated-if",
                          "user-alert", "too-many-errors", "server-addr-init",
                          "unresolved-address", "missing-section-name"})


class UsageError(Exception):
    pass


@dataclass(slots=True)
class Args:
    files: list[str] = field(default_factory=list)
    check: bool = False
    check_cond: str | None = None
    quiet: bool = False
    verbose: bool = False
    version: int = 0
    debug: bool = False
    no_daemon: bool = False
    daemon: bool = False
    master_worker: bool = False
    systemd: bool = False
    pidfile: str | None = None
    soft_stop: list[int] = field(default_factory=list)
    hard_stop: list[int] = field(default_factory=list)
    maxconn: int | None = None
    maxpconn: int | None = None
    zero_warning: bool = False
    strict: bool = False
    fmt: str = "text"
    workers: int | None = None  # --workers N: worker processes (overrides nbthread)
    chdir: str | None = None  # -C: directory to change to before loading the files


def _int_arg(argv: Sequence[str], i: int, flag: str) -> int:
    if i >= len(argv) or not argv[i].isdigit():
        raise UsageError(f"'{flag}' expects a positive integer argument.")
    return int(argv[i])


_PID = re.compile(r"\s*[+-]?[0-9]+")


def _pid_arg(word: str, flag: str) -> int:
    """One -sf/-st pid, read as HAProxy reads it (C's strtol, then the rest checked)."""
    m = _PID.match(word)
    rest = word[m.end():] if m else word
    if rest.strip():
        raise UsageError(f"{flag} option: some bytes unconsumed in PID list "
                         f"{{{rest.lstrip()}}}")
    pid = int(m.group(0)) if m else 0
    if pid >= 2**63:
        raise UsageError(f"{flag} option: failed to parse {{{word}}}: Numerical result "
                         "out of range")
    if pid <= 0:
        raise UsageError(f"{flag} expects positive process ids (got '{word}').")
    return pid


def parse_args(argv: Sequence[str]) -> Args:
    a = Args()
    i = 0
    n = len(argv)
    while i < n:
        w = argv[i]
        if w == "--":
            a.files.extend(argv[i + 1:])
            break
        if w == "-f":
            if i + 1 >= n:
                raise UsageError("'-f' expects a configuration file or directory.")
            a.files.append(argv[i + 1])
            i += 2
            continue
        if w == "-c":
            a.check = True
        elif w == "-cc":
            if i + 1 >= n:
                raise UsageError("'-cc' expects a condition.")
            a.check_cond = argv[i + 1]
            i += 1
        elif w == "-q":
            a.quiet = True
        elif w == "-V":
            a.verbose = True
        elif w == "-v":
            a.version = max(a.version, 1)
        elif w == "-vv":
            a.version = 2
        elif w == "-d":
            a.debug = True
        elif w == "-db":
            a.no_daemon = True
        elif w == "-D":
            a.daemon = True
        elif w == "-W":
            a.master_worker = True
        elif w == "-Ws":
            a.master_worker = True
            a.systemd = True
        elif w == "-dW":
            a.zero_warning = True
        elif w == "--strict":
            a.strict = True
        elif w == "--format" or w.startswith("--format="):
            if "=" in w:
                val = w.split("=", 1)[1]
            else:
                if i + 1 >= n:
                    raise UsageError("'--format' expects 'text' or 'json'.")
                val = argv[i + 1]
                i += 1
            if val not in ("text", "json"):
                raise UsageError(f"'--format' expects 'text' or 'json' (got '{val}').")
            a.fmt = val
        elif w == "-p":
            if i + 1 >= n:
                raise UsageError("'-p' expects a pid file name.")
            a.pidfile = argv[i + 1]
            i += 1
        elif w in ("-sf", "-st"):
            # as HAProxy: every following word up to the next option is a pid
            pids = a.soft_stop if w == "-sf" else a.hard_stop
            while i + 1 < n and not argv[i + 1].startswith("-"):
                i += 1
                pids.append(_pid_arg(argv[i], w))
        elif w == "-n":
            a.maxconn = _int_arg(argv, i + 1, "-n")
            i += 1
        elif w == "-N":
            a.maxpconn = _int_arg(argv, i + 1, "-N")
            i += 1
        elif w == "--workers":
            a.workers = _int_arg(argv, i + 1, "--workers")
            if a.workers < 1:
                raise UsageError("'--workers' expects a positive integer argument.")
            i += 1
        elif w in ("-dD", "-dr", "-dV", "-de", "-dp", "-dS", "-dR", "-dM", "-dG", "-dk"):
            pass  # HAProxy debug switches with no meaning here
        elif w == "-x":
            if i + 1 >= n:
                raise UsageError("Unix socket path expected with the -x flag")
            i += 1  # lb's successors take the sockets over themselves (docs/operations.md)
        elif w == "-C":
            if i + 1 >= n:
                raise UsageError("'-C' expects a directory.")
            a.chdir = argv[i + 1]
            i += 1
        elif w == "-L":
            if i + 1 >= n:
                raise UsageError("'-L' expects a local peer name.")
            i += 1  # no peers in lb: the name is not used
        elif w.startswith("-"):
            raise UsageError(f"unknown option '{w}'.")
        else:
            a.files.append(w)  # HAProxy takes trailing words as config files too
        i += 1
    return a


def _version_text(level: int) -> str:
    lines = [f"lb version {__version__} - HAProxy {COMPAT} compatible layer-7 load balancer"]
    if level >= 2:
        import platform

        lines.append(f"Running on: Python {platform.python_version()} "
                     f"({platform.python_implementation()}) {platform.system()} "
                     f"{platform.release()}")
        for mod in ("pyparsing", "httptools", "uvloop", "structlog"):
            try:
                m = __import__(mod)
                lines.append(f"Built with {mod} version {getattr(m, '__version__', '?')}")
            except Exception:
                lines.append(f"Built without {mod}")
        from lb import _accel

        lines.append(_accel.describe())
        lines.append(f"Compatible with HAProxy {COMPAT} configuration files")
    return "\n".join(lines) + "\n"


def _write_raw(stream: Any, text: str) -> None:
    """The configuration's own bytes back as they were (HAProxy quotes a word of
    invalid UTF-8 byte for byte), not as Python's backslash escapes of them."""
    buf = getattr(stream, "buffer", None)
    if buf is None:
        stream.write(text)
        return
    stream.flush()
    buf.write(text.encode("utf-8", "surrogateescape"))
    buf.flush()


class Output:
    """Writes diagnostics the way HAProxy does (NOTICE header before any message)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.header_done = False

    def err(self, text: str) -> None:
        if not self.header_done:
            self.header_done = True
            sys.stderr.write(f"[NOTICE]   ({self.pid}) : lb version is {__version__}\n")
            sys.stderr.write(f"[NOTICE]   ({self.pid}) : path to executable is "
                             f"{sys.argv[0]}\n")
        _write_raw(sys.stderr, text + "\n")

    def diag(self, d: Diagnostic) -> None:
        self.err(d.render(self.pid))

    def alert(self, text: str) -> None:
        self.err(render_line("alert", self.pid, text))


def _check_condition(cond: str, out: Output) -> int:
    from lb.config.lexer import CondError, eval_condition

    try:
        return 0 if eval_condition(cond, dict(os.environ)) else 1
    except CondError as exc:
        out.alert(f"Failed to evaluate condition: {exc.text}")
        return 2


def _load(args: Args):  # type: ignore[no-untyped-def]
    from lb.config import load

    # -dW makes every compatibility acceptance an error too (like --strict)
    return load(args.files, strict=args.strict or args.zero_warning)


def _restore_states(res):  # type: ignore[no-untyped-def]
    """The runtime State of a good load, with its server-state files applied; their
    warnings join the load's (they count as warnings, as in HAProxy)."""
    if not res.ok or res.config is None:
        return None
    from lb.server_state_apply import restore_server_states
    from lb.state import State

    state = State(res.config)
    res.diagnostics.extend(restore_server_states(state))
    return state


def _report(args: Args, res, out: Output) -> tuple[bool, bool]:  # type: ignore[no-untyped-def]
    """Print diagnostics; return (fatal, warnings)."""
    fatal = any(d.fatal for d in res.diagnostics)
    warnings = res.has_warnings
    if args.fmt == "json":
        sys.stdout.write(render_json(res.diagnostics))
        return fatal, warnings
    for d in res.diagnostics:
        if args.quiet and not d.fatal:
            continue
        out.diag(d)
    if fatal:
        bad_files = []
        for d in res.diagnostics:
            if d.fatal and d.file and d.phase == "parse" and d.file not in bad_files:
                bad_files.append(d.file)
        for f in bad_files:
            out.alert(f"Error(s) found in configuration file : {f}")
        # HAProxy omits this last line when it gave up reading early
        if any(d.fatal and not d.stops and d.code not in _ABORT_CODES
               for d in res.diagnostics):
            out.alert("Fatal errors found in configuration.")
    return fatal, warnings


def check_mode(args: Args) -> int:
    out = Output()
    if not args.files:
        if args.fmt == "text":
            out.alert("No configuration file specified (use -f).")
        else:
            sys.stdout.write(render_json([Diagnostic(
                "alert", "", 0, 0, "No configuration file specified (use -f).", "no-config",
                style="plain")]))
        return 1
    res = _load(args)
    _restore_states(res)
    fatal, warnings = _report(args, res, out)
    if fatal or res.config is None:
        return 1
    zero = args.zero_warning or res.config.global_.zero_warning
    if warnings and zero:
        if args.fmt == "text":
            out.alert("Some warnings were found and 'zero-warning' is set. Aborting.")
        return 1
    from lb.config.build import no_listener

    if no_listener(res.config):
        if args.fmt == "text" and not args.quiet:
            if warnings:
                sys.stdout.write("Warnings were found.\n")
            sys.stdout.write("Configuration file has no error but will not start (no "
                             "listener) => exit(2).\n")
        return 2
    if args.fmt == "text" and not args.quiet:
        if warnings:
            sys.stdout.write("Warnings were found.\n")
        sys.stdout.write("Configuration file is valid\n")
    return 0


def run_mode(args: Args) -> int:
    out = Output()
    if not args.files:
        sys.stderr.write(USAGE)
        return 1
    quiet = args.quiet
    if os.environ.get("LB_WORKER"):
        args.quiet = True  # a worker: its master already reported the diagnostics
    res = _load(args)
    # a worker takes its server states from its master
    state = None if os.environ.get("LB_WORKER") else _restore_states(res)
    fatal, warnings = _report(args, res, out)
    args.quiet = quiet
    if fatal or res.config is None:
        return 1
    cfg = res.config
    if warnings and (args.zero_warning or cfg.global_.zero_warning):
        out.alert("Some warnings were found and 'zero-warning' is set. Aborting.")
        return 1
    from lb.config.model import RunOptions

    daemon = (args.daemon or cfg.global_.daemon) and not (args.no_daemon or args.debug)
    opts = RunOptions(
        config_files=tuple(res.files), foreground=not daemon, daemon=daemon,
        debug=args.debug, quiet=args.quiet or cfg.global_.quiet,
        master_worker=args.master_worker or cfg.global_.master_worker,
        pidfile=args.pidfile, soft_stop_pids=tuple(args.soft_stop),
        hard_stop_pids=tuple(args.hard_stop), nbthread=None, maxconn=args.maxconn,
        strict=args.strict or args.zero_warning)
    if args.workers is not None:
        opts = replace(opts, nbthread=args.workers)
    if opts.quiet:
        from lb import log as lblog

        lblog.set_stderr_mirror(False)  # -q: no [WARNING]/[NOTICE] copies on stderr
    try:
        from lb import lifecycle, master
        from lb.proxy import runner
    except ImportError as exc:
        out.alert(f"cannot start: the proxy runtime is not available ({exc}).")
        return 1
    if master.is_worker():
        # a worker started by the master: no checks, no stats socket of its own
        return int(master.worker_run(cfg, opts) or 0)
    # -sf/-st: this process succeeds running ones, and takes their stats sockets over
    services = _services(cfg, take_over=bool(opts.soft_stop_pids or opts.hard_stop_pids))
    if master.wanted(cfg, opts):
        return int(master.run(cfg, opts, services, state=state) or 0)
    ready = lifecycle.daemonize() if opts.daemon else None
    return int(runner.run(cfg, opts, services, ready=ready, state=state) or 0)


def _services(cfg, take_over=False):  # type: ignore[no-untyped-def]
    """Services of the process that owns checks and the stats socket: the health
    checker, the resolvers (when a server or a `do-resolve` rule names a section;
    a worker runs its own for `do-resolve`, lb.master), the email alerts (when
    a proxy sends them) and the stats socket server (when lb.cli provides one). ``take_over``:
    the stats sockets may be in use by the processes this one succeeds."""
    services = []
    try:
        from healthcheck import runner as hc_runner

        services.append(hc_runner.service)
    except ImportError:
        pass
    from lb.resolvers import do_resolve_sections

    if any(s.resolvers is not None for p in cfg.proxies for s in p.servers) or \
            do_resolve_sections(cfg):
        try:
            from healthcheck.runner import event_log_sink
            from lb.resolvers import ResolverService

            services.append(ResolverService(event_log_sink))
        except ImportError:
            pass
    if any(p.email_alert is not None for p in cfg.proxies):
        from lb.mailers import MailerService

        services.append(MailerService())
    if cfg.global_.stats_sockets:
        services.append(_StatsSockets(take_over))
    return services


class _StatsSockets:
    """The `stats socket` lines as a service: ``open`` binds them (lb.proxy.runner
    makes its error fatal at start-up, as HAProxy does); the call serves them until
    cancelled. When the process starts stopping (soft stop, or a successor started
    with -sf) they stop accepting; sessions already open go on."""

    def __init__(self, take_over: bool = False) -> None:
        self.take_over = take_over  # -sf/-st: the old processes still serve them

    async def open(self, state, loop):  # type: ignore[no-untyped-def]
        from healthcheck.runner import event_log_sink
        from lb import cli

        g = state.config.global_
        return await cli.serve_cli(state, g.stats_sockets, timeout=g.stats_timeout,
                                   maxconn=g.stats_maxconn,
                                   log_event=event_log_sink(state),
                                   take_over=self.take_over)

    async def __call__(self, state, loop, server):  # type: ignore[no-untyped-def]
        import asyncio

        def on_event(event, info):  # type: ignore[no-untyped-def]
            if event == "process_stopping":
                server.stop_listening()

        state.listeners.append(on_event)
        try:
            await asyncio.Event().wait()
        finally:
            if on_event in state.listeners:
                state.listeners.remove(on_event)
            server.close()


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse_args(argv)
    except UsageError as exc:
        sys.stderr.write(f"[ALERT]    ({os.getpid()}) : {exc}\n{USAGE}")
        sys.exit(1)
    if args.chdir is not None:
        try:
            os.chdir(args.chdir)
        except OSError as exc:
            sys.stderr.write(f"[ALERT]    ({os.getpid()}) : Could not change to directory "
                             f"{args.chdir} : {exc.strerror}\n")
            sys.exit(1)
    try:
        if args.version:
            sys.stdout.write(_version_text(args.version))
            sys.exit(0)
        if args.check_cond is not None:
            sys.exit(_check_condition(args.check_cond, Output()))
        if args.check:
            sys.exit(check_mode(args))
        sys.exit(run_mode(args))
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except SystemExit:
        raise
    except Exception as exc:  # last resort: a clear one-line error, never a traceback
        sys.stderr.write(f"[ALERT]    ({os.getpid()}) : internal error: "
                         f"{type(exc).__name__}: {exc}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
