"""HAProxy log-format strings: compile once, render per transaction.

Owns: ``compile_format`` (literal text, ``%%``, ``%var``, ``%{+Q,+X,+E}var``,
``%[fetch,conv...]`` with optional ``%{flags}[...]``), the ``Format`` renderer,
``LOG_VARIABLES`` (the HAProxy log variable names, spec §11, and
``HTTP_LOG_VARIABLES``, those only `mode http` may use) and ``escape_log``
(the ``#XX`` escaping used by traffic logs).

The same engine serves ``log-format`` lines, ``set-header``/``lf-string`` values and
dynamic ``use_backend`` names. Values of ``%var`` come from providers the caller passes
(the logging layer); without a provider a known variable renders as ``-``.

Pure; imports only ``lb.match.sample`` and the standard library.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any

from lb.match import sample, uses


class FormatError(Exception):
    """Invalid log-format string; ``str()`` is HAProxy's message text. ``pos`` is the
    index of the '%' that starts the faulty field (HAProxy keeps what came before:
    a log-format that fails after some text still counts as one)."""

    pos = 0


# HAProxy 2.6 log-format variables (configuration manual §8.2.6).
LOG_VARIABLES: frozenset[str] = frozenset((
    "B", "CC", "CS", "H", "HM", "HP", "HPO", "HQ", "HU", "HV", "ID", "ST", "T", "Ta",
    "Tc", "Td", "Th", "Ti", "Tl", "Tq", "TR", "Tr", "Ts", "Tt", "Tu", "Tw", "U", "ac",
    "b", "bc", "bi", "bp", "bq", "ci", "cp", "f", "fc", "fi", "fp", "ft", "hr", "hrl",
    "hs", "hsl", "lc", "ms", "o", "pid", "r", "rc", "rt", "s", "sc", "si", "sp", "sq",
    "sslc", "sslv", "t", "tr", "trg", "trl", "ts", "tsc",
))

# the variables HAProxy 2.6.12 refuses outside `mode http` ("format variable 'r' is
# reserved for HTTP mode", read off `haproxy -c` with each variable in a TCP frontend)
HTTP_LOG_VARIABLES: frozenset[str] = frozenset((
    "CC", "CS", "HM", "HP", "HPO", "HQ", "HU", "HV", "Ta", "Ti", "Tq", "TR", "Tr", "r",
    "tr", "trg", "trl",
))

FLAGS = frozenset(("Q", "X", "E", "M"))  # M: print '-' for empty values (log lines)


# ------------------------------------------------------------ escaping

def _build_escape_table(quote: bool) -> tuple[bytes, ...]:
    table = []
    for c in range(256):
        if c < 32 or c > 126 or c == 0x23 or (quote and c == 0x22):
            table.append(b"#%02X" % c)
        else:
            table.append(bytes((c,)))
    return tuple(table)


_ESC_PLAIN = _build_escape_table(False)
_ESC_QUOTE = _build_escape_table(True)
_NEEDS_ESC = re.compile(rb'[^\x20-\x22\x24-\x7e]')
_NEEDS_ESC_Q = re.compile(rb'[^\x20\x21\x24-\x7e]')


def escape_log(value: bytes, quote: bool) -> bytes:
    """Escape bytes outside 32..126 and ``#`` as ``#XX`` (``"`` too when quoting)."""
    rx = _NEEDS_ESC_Q if quote else _NEEDS_ESC
    if rx.search(value) is None:
        return value
    table = _ESC_QUOTE if quote else _ESC_PLAIN
    return b"".join([table[c] for c in value])


_E_ESC = re.compile(rb'(["\\\]])')


def _escape_e(value: bytes) -> bytes:
    """``+E``: backslash before ``"``, ``\\`` and ``]`` (RFC 5424 structured data)."""
    return _E_ESC.sub(rb"\\\1", value)


# ------------------------------------------------------------ nodes


def _to_bytes(v: Any, hexa: bool) -> bytes:
    if isinstance(v, bytes):
        return v
    if isinstance(v, bool):
        return b"1" if v else b"0"
    if isinstance(v, int):
        return (b"%X" % v) if hexa and v >= 0 else str(v).encode("ascii")
    if isinstance(v, str):
        return v.encode("utf-8", "surrogateescape")
    if isinstance(v, ipaddress.IPv4Address | ipaddress.IPv6Address):
        if hexa and v.version == 4:
            return b"%08X" % int(v)
        return str(v).encode("ascii")
    return str(v).encode("utf-8", "surrogateescape")


def _text(v: bytes | None, flags: frozenset[str]) -> bytes:
    """HAProxy ``lf_text_len``: quoting, ``+E`` escaping, ``-`` when mandatory."""
    quote = "Q" in flags
    if v:
        if "E" in flags:
            v = _escape_e(v)
        return b'"' + v + b'"' if quote else v
    if quote:
        return b'""'
    return b"-" if "M" in flags else b""


Node = Callable[[Any], bytes]


def _literal_node(text: bytes) -> Node:
    return lambda ctx: text


def _var_node(provider: Callable[[Any], Any] | None, flags: frozenset[str],
              empty: bool = False) -> Node:
    if provider is None:
        dash = b'"-"' if "Q" in flags else b"-"
        return lambda ctx: dash
    hexa = "X" in flags
    if not empty:
        flags = flags | {"M"}  # variables print '-' when empty (except in checks)

    def node(ctx: Any) -> bytes:
        v = provider(ctx)
        return _text(None if v is None else _to_bytes(v, hexa), flags)
    return node


def _expr_node(expr: sample.SampleExpr, flags: frozenset[str], log: bool) -> Node:
    raw = expr.raw
    if not log:
        # lf-strings (headers, return bodies, use_backend): HAProxy ignores Q/M/X on
        # samples there and prints nothing for a missing sample; only +E applies.
        esc = "E" in flags

        def node_lf(ctx: Any) -> bytes:
            v = raw(ctx)
            if v is None:
                return b""
            b = _to_bytes(v, False)
            return _escape_e(b) if esc else b
        return node_lf

    def node(ctx: Any) -> bytes:
        v = raw(ctx)
        return _text(None if v is None else _to_bytes(v, False), flags)
    return node


class Format:
    """A compiled log-format: ``render(ctx) -> bytes``; ``constant`` when static."""

    __slots__ = ("text", "nodes", "constant", "exprs")

    def __init__(self, text: str, nodes: tuple[Node, ...], constant: bytes | None,
                 exprs: tuple[sample.SampleExpr, ...]) -> None:
        self.text = text
        self.nodes = nodes
        self.constant = constant
        self.exprs = exprs

    def render(self, ctx: Any) -> bytes:
        if self.constant is not None:
            return self.constant
        nodes = self.nodes
        if len(nodes) == 1:
            return nodes[0](ctx)
        return b"".join([n(ctx) for n in nodes])

    def __repr__(self) -> str:
        return f"Format({self.text!r})"


# ------------------------------------------------------------ compiler


def _apply_flags(text: str, flags: frozenset[str]) -> frozenset[str]:
    """``+Q,-M,...``; unknown flag names are ignored, as HAProxy does."""
    out = set(flags)
    for part in text.split(","):
        if len(part) < 2 or part[0] not in "+-" or part[1:] not in FLAGS:
            continue
        if part[0] == "+":
            out.add(part[1:])
        else:
            out.discard(part[1:])
    return frozenset(out)


def _is_alpha(c: str) -> bool:
    return c.isascii() and c.isalpha()


def _is_alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def compile_format(text: str,
                   variables: Mapping[str, Callable[[Any], str | bytes | int]] | None = None,
                   *, log: bool = False, where: str | None = None,
                   context: str | None = None, mode: str | None = None,
                   empty_vars: bool = False) -> Format:
    """Compile a HAProxy log-format string. Raises ``FormatError``.

    ``variables`` maps ``%var`` names to providers ``f(ctx)``; known names without a
    provider render ``-``. ``log=True`` selects log-line rendering (missing sample →
    ``-``, ``+Q`` quotes samples, runs of spaces collapse); the default is lf-string
    rendering (headers, ``lf-string``, dynamic ``use_backend``). ``where``
    (``"req"``/``"res"``) rejects fetches whose data is not available there;
    ``context`` (a rule context of ``lb.match.uses``) does so in HAProxy's terms.
    ``mode`` (the proxy's, at check time) refuses the HTTP variables outside "http".
    ``empty_vars``: a health check's format, as HAProxy renders it: flags apply to
    samples as in a log line (``+Q`` quotes), but a field without a value prints
    nothing rather than ``-``, and spaces are kept.
    """
    nodes: list[Node] = []
    exprs: list[sample.SampleExpr] = []
    lit: list[str] = []
    dynamic = False
    defaults: frozenset[str] = frozenset(("M",)) if log else frozenset()

    def flush() -> None:
        if lit:
            data = "".join(lit)
            if log:
                data = re.sub(" {2,}", " ", data)
            nodes.append(_literal_node(data.encode("utf-8", "surrogateescape")))
            lit.clear()

    i = 0
    n = len(text)
    if log:
        while i < n and text[i] == " ":
            i += 1  # leading separators are never printed in log lines
    tok = 0
    try:
        while i < n:
            c = text[i]
            if c != "%":
                j = text.find("%", i)
                if j < 0:
                    j = n
                lit.append(text[i:j])
                i = j
                continue
            tok = i
            i += 1
            if i >= n:
                raise FormatError("truncated line after '%'")
            c = text[i]
            if c == "%":
                lit.append("%")
                i += 1
                continue
            flags = defaults
            arg_text = None
            if c == "{":
                end = text.find("}", i)
                if end < 0:
                    raise FormatError(f"truncated line after '{text[i + 1:]}'")
                arg_text = text[i + 1:end]
                flags = _apply_flags(arg_text, flags)
                i = end + 1
                if i >= n or not (text[i] == "[" or _is_alnum(text[i])):
                    raise FormatError(
                        f"parse argument modifier without variable name near '%{{{arg_text}}}'")
                c = text[i]
            elif c.isdigit() or c in " \t":
                raise FormatError(
                    f"unexpected variable name near '{c}' at position {i} line : '{text}'."
                    " Maybe you want to write a single '%', use the syntax '%%'")
            elif c != "[" and not _is_alpha(c):
                i += 1  # HAProxy drops a lone '%' before another character
                lit.append(c)
                continue
            if c == "[":
                rest = text[i + 1:]
                try:
                    _, fd, args, chain, out, end = sample.parse_chain(rest, sample.FETCHES.get)
                except sample.SampleError as e:
                    raise FormatError(f"failed to parse sample expression <{rest}> : {e}"
                                      ) from None
                if end >= len(rest):
                    raise FormatError(f"missing ']' after '{rest}'")
                if rest[end] != "]":
                    raise FormatError(
                        f"expected ']' after '{rest[:end]}', but found '{rest[end]}'")
                expr = sample.SampleExpr(rest[:end], fd, args, chain, out)
                end += i + 1
                if where is not None and where not in expr.where:
                    missing = expr.where - {where}
                    need = sample.NEEDS_TEXT[sample.W_SRV if sample.W_SRV in missing
                                             else next(iter(missing), sample.W_REQ)]
                    raise FormatError(
                        f"sample fetch <{rest}> may not be reliably used here because it"
                        f" needs '{need}' which is not available here")
                if context is not None:
                    need = uses.unavailable(expr.fetch_def.name, context)
                    if need is not None:
                        if context != "log":  # (a log line names every use, as HAProxy)
                            need = need.split(",")[0]
                        raise FormatError(
                            f"sample fetch <{rest}> may not be reliably used here because it"
                            f" needs '{need}' which is not available here")
                flush()
                nodes.append(_expr_node(expr, flags, log or empty_vars))
                exprs.append(expr)
                dynamic = True
                i = end + 1
                continue
            j = i
            while j < n and _is_alnum(text[j]):
                j += 1
            name = text[i:j]
            i = j
            if name == "o":  # %{...}o: default flags for the following fields
                defaults = flags
                continue
            provider = None
            if variables is not None and name in variables:
                provider = variables[name]
            elif name not in LOG_VARIABLES:
                raise FormatError(f"no such format variable '{name}'. If you wanted to emit the"
                                  f" '%' character verbatim, you need to use '%%'")
            if mode is not None and mode != "http" and name in HTTP_LOG_VARIABLES:
                raise FormatError(f"format variable '{name}' is reserved for HTTP mode")
            flush()
            nodes.append(_var_node(provider, flags, empty_vars))
            dynamic = True
    except FormatError as exc:
        exc.pos = tok
        raise
    flush()
    constant = None
    if not dynamic:
        constant = b"".join(nd(None) for nd in nodes)
    return Format(text, tuple(nodes), constant, tuple(exprs))
