"""HAProxy log-format strings: compile once, render per transaction.

Owns: ``compile_format`` (literal text, ``%%``, ``%var``, ``%{+Q,+X,+E}var``,
``%[fetch,conv...]`` with optional ``%{flags}[...]``), the ``Format`` renderer,
``LOG_VARIABLES`` (the HAProxy log variable names, spec §11) and ``escape_log``
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

from lb.match import sample


class FormatError(Exception):
    """Invalid log-format string; ``str()`` is HAProxy's message text."""


# HAProxy 2.6 log-format variables (configuration manual §8.2.6).
LOG_VARIABLES: frozenset[str] = frozenset((
    "B", "CC", "CS", "H", "HM", "HP", "HPO", "HQ", "HU", "HV", "ID", "ST", "T", "Ta",
    "Tc", "Td", "Th", "Ti", "Tl", "Tq", "TR", "Tr", "Ts", "Tt", "Tu", "Tw", "U", "ac",
    "b", "bc", "bi", "bp", "bq", "ci", "cp", "f", "fc", "fi", "fp", "ft", "hr", "hrl",
    "hs", "hsl", "lc", "ms", "o", "pid", "r", "rc", "rt", "s", "sc", "si", "sp", "sq",
    "sslc", "sslv", "t", "tr", "trg", "trl", "ts", "tsc",
))

FLAGS = frozenset(("Q", "X", "E", "M"))


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


def _decorate(v: bytes | None, flags: frozenset[str]) -> bytes:
    if v is None:
        return b"-"
    if "E" in flags:
        v = _escape_e(v)
    if "Q" in flags:
        return b'"' + v + b'"'
    return v


Node = Callable[[Any], bytes]


def _literal_node(text: bytes) -> Node:
    return lambda ctx: text


def _var_node(name: str, provider: Callable[[Any], Any] | None, flags: frozenset[str]) -> Node:
    if provider is None:
        dash = _decorate(None, flags)
        return lambda ctx: dash
    hexa = "X" in flags
    if not flags:
        def plain(ctx: Any) -> bytes:
            v = provider(ctx)
            return b"-" if v is None else _to_bytes(v, False)
        return plain

    def node(ctx: Any) -> bytes:
        v = provider(ctx)
        return _decorate(None if v is None else _to_bytes(v, hexa), flags)
    return node


def _expr_node(expr: sample.SampleExpr, flags: frozenset[str]) -> Node:
    hexa = "X" in flags
    raw = expr.raw

    def node(ctx: Any) -> bytes:
        v = raw(ctx)
        if v is None:
            return b"-" if "Q" not in flags else b'"-"' if False else b"-"
        return _decorate(_to_bytes(v, hexa), flags)
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
        return b"".join([n(ctx) for n in self.nodes])

    def __repr__(self) -> str:
        return f"Format({self.text!r})"


# ------------------------------------------------------------ compiler

_VAR_CHARS = re.compile(r"[A-Za-z0-9_]+")


def _parse_flags(text: str) -> frozenset[str]:
    flags: set[str] = set()
    for part in text.split(","):
        if not part:
            continue
        if len(part) < 2 or part[0] not in "+-" or part[1:] not in FLAGS:
            raise FormatError(f"unknown log format flag '{part}'")
        if part[0] == "+":
            flags.add(part[1:])
        else:
            flags.discard(part[1:])
    return frozenset(flags)


def _find_expr_end(text: str, start: int) -> int:
    """Index of the ``]`` closing ``%[`` (parentheses and quotes may hold ``]``)."""
    depth = 0
    quote = ""
    i = start
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "]" and depth <= 0:
            return i
        i += 1
    return -1


def compile_format(text: str,
                   variables: Mapping[str, Callable[[Any], str | bytes | int]] | None = None,
                   ) -> Format:
    """Compile a HAProxy log-format string. Raises ``FormatError``."""
    nodes: list[Node] = []
    exprs: list[sample.SampleExpr] = []
    lit: list[str] = []
    dynamic = False

    def flush() -> None:
        if lit:
            nodes.append(_literal_node("".join(lit).encode("utf-8", "surrogateescape")))
            lit.clear()

    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c != "%":
            j = text.find("%", i)
            if j < 0:
                j = n
            lit.append(text[i:j])
            i = j
            continue
        i += 1
        if i < n and text[i] == "%":
            lit.append("%")
            i += 1
            continue
        flags: frozenset[str] = frozenset()
        if i < n and text[i] == "{":
            end = text.find("}", i)
            if end < 0:
                raise FormatError("missing '}' after '%{' in log-format")
            flags = _parse_flags(text[i + 1:end])
            i = end + 1
        if i < n and text[i] == "[":
            end = _find_expr_end(text, i + 1)
            if end < 0:
                raise FormatError(f"missing ']' after '%[' near '{text[i:]}'")
            body = text[i + 1:end]
            try:
                expr = sample.parse_expr(body)
            except sample.SampleError as e:
                raise FormatError(f"failed to parse sample expression <{body}> : {e}"
                                  ) from None
            flush()
            nodes.append(_expr_node(expr, flags))
            exprs.append(expr)
            dynamic = True
            i = end + 1
            continue
        m = _VAR_CHARS.match(text, i)
        if m is None:
            if i >= n:
                raise FormatError("no variable name after '%' at end of log-format string."
                                  " If you wanted to emit the '%' character verbatim, you"
                                  " need to use '%%'.")
            raise FormatError(f"unexpected character '{text[i]}' after '%'."
                              " If you wanted to emit the '%' character verbatim, you need"
                              " to use '%%'.")
        name = m.group(0)
        provider = None
        if variables is not None and name in variables:
            provider = variables[name]
        elif name not in LOG_VARIABLES:
            raise FormatError(f"no such format variable '{name}'. If you wanted to emit the"
                              f" '%' character verbatim, you need to use '%%'.")
        flush()
        nodes.append(_var_node(name, provider, flags))
        dynamic = True
        i = m.end()
    flush()
    constant = None
    if not dynamic:
        constant = b"".join(nd(None) for nd in nodes)
    return Format(text, tuple(nodes), constant, tuple(exprs))
