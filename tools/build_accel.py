#!/usr/bin/env python3
"""Compile lb's hot-path modules with Cython into build/accel/ (issue #9).

    python tools/build_accel.py            # build what changed; pure Python if it can't
    python tools/build_accel.py --strict   # a failed build is an error (make test)
    python tools/build_accel.py --clean    # remove build/accel
    python tools/build_accel.py -O 0       # quick to compile, slower to run (tests)

The modules are compiled as written (no Cython-only syntax, annotations ignored), so
the package stays plain Python and runs the same without this step; compiled, the
per-request path costs about half the CPU (docs/performance.md). The only Cython-only
files are the ``.pxd`` declarations beside most of the modules listed below, which
turn their classes into extension types with C struct fields and type the links
between them; several also hold C bodies that the modules call only when compiled,
with the Python code as fallback and reference (docs/ARCHITECTURE.md lists them,
under ``proxy/*.pxd``); a ``.pxd`` is part of its
module's digest, with the ``.pxd`` files it cimports, and ``--modules`` builds the
modules a module cimports with it (they load only together). ``lb/_accel.py``
loads a compiled module only while its source is byte-for-byte the one it was built
from, so editing a file never runs a stale build. Incremental: a module whose source
digest is already in the manifest is not rebuilt.

It also writes the bytecode of every ``lb`` and ``healthcheck`` module
(``__pycache__``): with ``PYTHONDONTWRITEBYTECODE`` set, as in many containers and
on this project's machines, Python would otherwise compile every source anew at each
start (about 0.1 s of ``lb -c`` and of start-up). Python still checks each ``.pyc``
against its source, so an edited file is never run from stale bytecode.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lb import _accel  # noqa: E402

# The modules on the per-request and per-connection path. (lb.proxy.tunnel was
# once left interpreted: with untyped fields its pump ran slower compiled; its .pxd
# now types them, docs/performance.md.)
HOT_MODULES: tuple[str, ...] = (
    "lb.proxy.peer",
    "lb.proxy.client",
    "lb.proxy.txn",
    "lb.proxy.server",
    "lb.proxy.tunnel",
    "lb.proxy.listener",
    "lb.proxy.drive",
    "lb.proxy.compiled",
    "lb.proxy.timers",
    "lb.proxy.sockio",
    "lb.proxy.dial",
    "lb.proxy.eventloop",
    "lb.proxy.queue",
    "lb.proxy.retry",
    "lb.proxy.logline",
    "lb.http.h1",
    "lb.http.headscan",
    "lb.http.cookie",
    "lb.http.actions",
    "lb.match.acl",
    "lb.match.sample",
    "lb.match.pattern",
    "lb.balance.base",
    "lb.balance.roundrobin",
    "lb.balance.leastconn",
    "lb.balance.first",
    "lb.balance.map",
    "lb.logfmt",
    "lb.log",
    "lb.state",
)

DIRECTIVES = {"language_level": 3, "annotation_typing": False, "binding": True}
# Python's own CFLAGS ask for debug information (-g): about a third of the C compile
# time here (145 s -> 98 s for 20 modules) for nothing the modules run or the
# profilers use (they name C functions from the symbol table). They also ask for -O3;
# -O2 compiles the 28 modules in 168 s of CPU instead of 232 s, and the code it makes
# ran the same (keep-alive: 1.1% more instructions per request, CPU per request
# within the noise; docs/performance.md, eighteenth session). ``-O 0`` is for the
# tests that check how builds are made and loaded, not how fast they run.
DEBUG_INFO = "-g0"
DEFAULT_OPT = 2
# Cython marks the code that runs once, at import (module init, constants, code
# objects), CYTHON_SMALL_CODE, which it defines as gcc's "cold" unless told otherwise.
# That code is where gcc spent a quarter of the build (lb.match.sample's 14,000-line
# init took most of its 54 s), for nothing a request runs: compiled at -O0 it builds
# the 30 modules in 174 s of CPU instead of 217 (sample: 23 s), with the same
# instructions per request (docs/performance.md, fifty-seventh session).
ONCE_CODE = '-DCYTHON_SMALL_CODE=__attribute__((cold,optimize("O0")))'


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--strict", action="store_true", help="fail when the build fails")
    ap.add_argument("--clean", action="store_true", help="remove build/accel and stop")
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--modules", help="comma-separated subset of the hot modules")
    ap.add_argument("-O", dest="opt", type=int, choices=range(4), default=DEFAULT_OPT,
                    help=f"C optimisation level (default {DEFAULT_OPT}); a build made "
                         "at another level is compiled again")
    args = ap.parse_args()
    wanted = HOT_MODULES
    if args.modules:
        wanted = tuple(m for m in args.modules.split(",") if m)
        unknown = sorted(set(wanted) - set(HOT_MODULES))
        if unknown:
            ap.error(f"not a hot-path module: {', '.join(unknown)}")
        # with the modules whose types they cimport (loaded only together)
        deps = {d for m in wanted for d in _accel.cimported_modules(m)}
        wanted = tuple(m for m in HOT_MODULES if m in deps or m in wanted)
    build = _accel.BUILD_DIR
    if args.clean:
        shutil.rmtree(build, ignore_errors=True)
        return 0
    _byte_compile()
    try:
        import Cython
        from Cython.Build import cythonize
        from setuptools import Extension, setup
    except ImportError as e:
        return _give_up(f"Cython is not installed ({e}); pip install cython", args.strict)

    compile_args = [DEBUG_INFO, f"-O{args.opt}", ONCE_CODE]
    old = _accel.read_manifest() or {}
    if (old.get("cache_tag") != sys.implementation.cache_tag
            or old.get("compile_args") != compile_args):
        old = {}
    done = dict(old.get("modules", {}))
    todo = []
    for name in wanted:
        digest = _accel.source_digest(_accel.source_path(name))
        entry = done.get(name)
        if (isinstance(entry, dict) and entry.get("sha256") == digest
                and isinstance(entry.get("file"), str) and (build / entry["file"]).is_file()):
            continue
        todo.append((name, digest))
    for name in list(done):
        if name not in HOT_MODULES:
            del done[name]  # dropped from the list: no longer loaded
    # (a --modules build keeps the other entries: they still match their builds)
    if todo:
        print(f"build_accel: compiling {len(todo)} hot-path module(s) with Cython "
              f"(about {3 * len(todo)} s on 2 cores; only changed ones next time)",
              flush=True)
        t0 = time.monotonic()
        exts = [Extension(name, [str(_accel.source_path(name).relative_to(REPO))],
                          extra_compile_args=compile_args)
                for name, _ in todo]
        cwd = os.getcwd()
        os.chdir(REPO)
        build.mkdir(parents=True, exist_ok=True)
        # the C compiler's chatter (warnings in generated code) is shown only on failure
        saved = os.dup(2)
        with tempfile.TemporaryFile() as chatter:
            os.dup2(chatter.fileno(), 2)
            try:
                # force: the manifest already said these changed; Cython's own
                # check compares file times, which a copied or checked-out tree breaks
                modules = cythonize(exts, compiler_directives=DIRECTIVES, quiet=True,
                                    force=True, build_dir=str(build / "c"),
                                    nthreads=args.jobs)
                # longest first: the C compiles run in -j threads in list order, and
                # a big module started last would keep one core busy alone
                modules.sort(key=lambda m: -_size(m.sources[0]))
                setup(name="lb-accel", ext_modules=modules, script_args=[
                    "-q", "build_ext", "--build-lib", str(build), "--build-temp",
                    str(build / "tmp"), "-j", str(args.jobs)])
                failure = None
            except (Exception, SystemExit) as e:  # setuptools fails by SystemExit
                failure = e
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                os.chdir(cwd)
            if failure is not None:
                chatter.seek(0)
                sys.stderr.write(chatter.read().decode("utf-8", "replace")[-20000:])
                return _give_up(f"compiling failed: {failure}", args.strict)
        suffix = _ext_suffix()
        for name, digest in todo:
            rel = Path(*name.split(".")[:-1], name.split(".")[-1] + suffix)
            if not (build / rel).is_file():
                return _give_up(f"{rel} was not built", args.strict)
            done[name] = {"file": str(rel), "sha256": digest}
        print(f"build_accel: compiled {len(todo)} module(s) in "
              f"{time.monotonic() - t0:.0f} s into {build.relative_to(REPO)}")
    manifest = {"cache_tag": sys.implementation.cache_tag, "cython": Cython.__version__,
                "compile_args": compile_args, "modules": done}
    build.mkdir(parents=True, exist_ok=True)
    tmp = _accel.MANIFEST.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    tmp.replace(_accel.MANIFEST)
    if not todo:
        print(f"build_accel: {len(done)} compiled module(s) up to date")
    return 0


def _byte_compile() -> None:
    """Write the .pyc of every lb and healthcheck module (see the module docstring)."""
    import compileall

    for pkg in ("lb", "healthcheck"):
        if (REPO / pkg).is_dir():
            compileall.compile_dir(str(REPO / pkg), quiet=1)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _ext_suffix() -> str:
    import sysconfig

    return str(sysconfig.get_config_var("EXT_SUFFIX"))


def _give_up(why: str, strict: bool) -> int:
    print(f"build_accel: {why}", file=sys.stderr)
    if strict:
        return 1
    print("build_accel: lb runs in pure Python (same behaviour, more CPU per request)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
