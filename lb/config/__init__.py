"""Loading haproxy.cfg files into the frozen model.

Owns: the public entry points ``load`` (files and directories, as ``-f`` does) and
``load_text``, and ``LoadResult``. This is the only module here that opens
configuration files (keyword handlers may read files named by the configuration,
such as `errorfile`). Everything else other code needs is in ``lb.config.model``.

Must not import: lb.proxy, lb.state, healthcheck.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from lb.config.model import Config
from lb.errors import Diagnostic, Diagnostics

__all__ = ["LoadResult", "load", "load_text", "expand_paths"]


@dataclass(slots=True)
class LoadResult:
    """What a load produced: a Config (None on fatal errors) and all diagnostics."""

    config: Config | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.config is not None and not any(d.fatal for d in self.diagnostics)

    @property
    def has_warnings(self) -> bool:
        # HAProxy's "soft" ALERTs (nonfatal) count neither as errors nor as warnings
        return any(d.severity == "warning" for d in self.diagnostics)


def expand_paths(paths: Sequence[str]) -> tuple[list[str], list[Diagnostic]]:
    """Expand directories into their ``*.cfg`` files in C-locale (byte) order. As in
    HAProxy 2.6.12, names starting with a dot are skipped (a snippet disabled by a
    rename, an editor's lock file), and a ``*.cfg`` that cannot be read (a symlink to
    a removed file) is an error, not a silent gap in the configuration."""
    files: list[str] = []
    errors: list[Diagnostic] = []
    for path in paths:
        if os.path.isdir(path):
            try:
                names = sorted((n for n in os.listdir(path)
                                if n.endswith(".cfg") and not n.startswith(".")),
                               key=lambda n: n.encode("utf-8", "surrogateescape"))
            except OSError as exc:
                errors.append(_open_error(path, exc))
                continue
            for n in names:
                full = os.path.join(path, n)
                try:
                    st = os.stat(full)
                except OSError as exc:
                    errors.append(_open_error(full, exc))
                    continue
                if stat.S_ISREG(st.st_mode):
                    files.append(full)
        else:
            files.append(path)
    return files, errors


def _open_error(path: str, exc: OSError) -> Diagnostic:
    reason = exc.strerror or str(exc)
    return Diagnostic("alert", "", 0, 0, f"Cannot open configuration file/directory {path} : "
                      f"{reason}", "cannot-open", style="plain")


def _parse(sources: list[tuple[str, str]], *, strict: bool, env: Mapping[str, str] | None,
           base_dir: str, pre: list[Diagnostic]) -> LoadResult:
    try:
        from lb.config.build import parse_sources
    except Exception as exc:  # a broken dependency must still give a clear message
        return LoadResult(None, [Diagnostic(
            "alert", "", 0, 0, f"cannot load the configuration parser: "
            f"{type(exc).__name__}: {exc}", "internal-error", style="plain")],
            tuple(n for n, _ in sources))

    diags = Diagnostics()
    for d in pre:
        diags.add(d)
    envd = dict(os.environ if env is None else env)
    cfg = None
    if not pre:
        try:
            cfg = parse_sources(sources, strict=strict, env=envd, base_dir=base_dir,
                                diags=diags)
        except Exception as exc:  # never a traceback on bad input: report it instead
            cfg = None
            diags.items.append(Diagnostic(
                "alert", "", 0, 0, f"internal error while loading the configuration: "
                f"{type(exc).__name__}: {exc}", "internal-error", style="plain"))
    names = tuple(n for n, _ in sources)
    if cfg is not None:
        cfg = replace(cfg, files=names, text="".join(t for _, t in sources))
    return LoadResult(cfg, list(diags), names)


def load(paths: Sequence[str], *, env: Mapping[str, str] | None = None,
         strict: bool = False) -> LoadResult:
    """Load configuration files/directories in order (like repeated ``-f``)."""
    files, errors = expand_paths(paths)
    sources: list[tuple[str, str]] = []
    for f in files:
        try:
            with open(f, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            errors.append(_open_error(f, exc))
            continue
        sources.append((f, data.decode("utf-8", "surrogateescape")))
    # like HAProxy, relative paths inside the configuration are relative to the cwd
    res = _parse(sources, strict=strict, env=env, base_dir=".", pre=errors)
    if res.ok and res.config is not None:
        from lb.config.addresses import apply_addresses, check_addresses

        addrs = check_addresses(res.config)
        diags = res.diagnostics + addrs.diagnostics
        if addrs.fatal:
            return LoadResult(None, diags, res.files)
        return LoadResult(apply_addresses(res.config, addrs.changes), diags, res.files)
    return res


def load_text(text: str, name: str = "<text>", *, env: Mapping[str, str] | None = None,
              strict: bool = False, base_dir: str = ".") -> LoadResult:
    """Load configuration text (tests, CLI payloads)."""
    return _parse([(name, text)], strict=strict, env=env, base_dir=base_dir, pre=[])
