"""Match methods: compile ACL patterns once, match samples at runtime.

Owns: ``MATCH_METHODS`` (str beg end sub dir dom reg len int ip found bool bin, plus
the internal ``meth`` used by the ``method`` ACL). Each row says which sample type the
method consumes, how one pattern word is parsed, and how a list of parsed patterns is
compiled into a matcher (a frozenset for ``str``, tuples for ``beg``/``end``, compiled
``re`` objects for ``reg``/``dir``/``dom``, address ranges for ``ip``, integer ranges for
``int``/``len``). ``-i`` folds case at compile time.

Regex note: HAProxy uses PCRE2; we use Python's ``re`` on bytes. Differences a user may
meet: no possessive quantifiers / atomic groups before Python 3.11 (3.11 has them), no
``\\Q..\\E``, no recursion ``(?R)``, ``(?i)`` inline flags must be at the start, and
``\\d``/``\\w`` are ASCII-only on bytes (PCRE without UCP behaves the same).

Pure; imports only the standard library (and `cython`, to know whether it is compiled).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

try:  # True only inside the Cython-compiled copy (tools/build_accel.py)
    import cython
    COMPILED = cython.compiled
except ImportError:  # pure Python without Cython installed
    COMPILED = False

Predicate = Callable[[Any], bool]

# a `str` matcher with at most this many patterns compares them one by one (compiled:
# no lower-cased copy of the value, no hash); more go through the set
_FEW = 8


class Matcher:
    """A compiled list of patterns: ``match(value)`` (or calling it) says whether any
    pattern matches. Subclasses cover the hot methods with typed fields (the ACL
    evaluator calls ``match`` as a C method when compiled, lb/match/pattern.pxd)."""

    __slots__ = ()

    def match(self, v: Any) -> bool:
        raise NotImplementedError

    def __call__(self, v: Any) -> bool:
        return self.match(v)


class IntMatcher(Matcher):
    """``int``/``len``: a set of exact values, then ``(lo, hi)`` ranges (None = open)."""

    __slots__ = ("exact", "ranges")

    def __init__(self, exact: frozenset[int],
                 ranges: tuple[tuple[int | None, int | None], ...]) -> None:
        self.exact = exact
        self.ranges = ranges

    def match(self, v: Any) -> bool:
        if v in self.exact:
            return True
        for lo, hi in self.ranges:
            if (lo is None or v >= lo) and (hi is None or v <= hi):
                return True
        return False


class FnMatcher(Matcher):
    """Any predicate as a matcher (the rarer methods: reg, dir, dom, int, ip, len...)."""

    __slots__ = ("fn",)

    def __init__(self, fn: Predicate) -> None:
        self.fn = fn

    def match(self, v: Any) -> bool:
        return bool(self.fn(v))


class StrMatcher(Matcher):
    """``str``: exact match against a set (patterns folded at compile time with -i)."""

    __slots__ = ("pats", "icase", "few")

    def __init__(self, pats: frozenset[bytes], icase: bool) -> None:
        self.pats = pats
        self.icase = icase
        self.few = (tuple(sorted(pats)) if len(pats) <= _FEW
                    and all(type(p) is bytes for p in pats) else None)

    def match(self, v: Any) -> bool:
        if type(v) is bytes:
            if COMPILED and self.few is not None:
                return _any_equal(v, self.few, self.icase)  # noqa: F821 (pattern.pxd)
            b = v
            if self.icase:
                b = b.lower()
            return b in self.pats
        return (v.lower() if self.icase else v) in self.pats


class AffixMatcher(Matcher):
    """``beg`` / ``end``: prefix (or, with ``end``, suffix) match against a tuple."""

    __slots__ = ("pats", "icase", "end", "bytes_only")

    def __init__(self, pats: tuple[bytes, ...], icase: bool, end: bool) -> None:
        self.pats = pats
        self.icase = icase
        self.end = end
        self.bytes_only = all(type(p) is bytes for p in pats)

    def match(self, v: Any) -> bool:
        if type(v) is bytes:
            if COMPILED and self.bytes_only:
                return _any_affix(v, self.pats, self.icase, self.end)  # noqa: F821
            b = v
            if self.icase:
                b = b.lower()
            return b.endswith(self.pats) if self.end else b.startswith(self.pats)
        if self.icase:
            v = v.lower()
        return bool(v.endswith(self.pats) if self.end else v.startswith(self.pats))


class PatternError(Exception):
    """A pattern word is invalid; ``str()`` is HAProxy's message text."""


# ------------------------------------------------------------ int ranges


def _strict_int(s: str) -> int | None:
    if not s or not re.fullmatch(r"[+-]?[0-9]{1,30}", s):
        return None  # (longer numbers are out of HAProxy's 64-bit range anyway)
    return int(s)


def parse_int_range(text: str) -> tuple[int | None, int | None]:
    """``N``, ``A:B``, ``:B``, ``A:`` (``-`` also separates, as in HAProxy)."""
    if not text:
        raise PatternError(f"'{text}' is not a valid number range")
    sep = -1
    for i, c in enumerate(text):
        if c in ":-":
            sep = i
            break
    if sep < 0:
        v = _strict_int(text)
        if v is None:
            raise PatternError(f"'{text}' is not a number")
        return v, v
    lo_s, hi_s = text[:sep], text[sep + 1:]
    if not lo_s and hi_s:
        hi = _strict_int(hi_s)
        if hi is None:
            raise PatternError(f"'{text}' is not a valid number range")
        return None, hi
    if not hi_s:
        lo = _strict_int(lo_s)
        if lo is None:
            raise PatternError(f"'{text}' is not a valid number range")
        return lo, None
    lo, hi = _strict_int(lo_s), _strict_int(hi_s)
    if lo is None or hi is None or lo > hi:
        raise PatternError(f"'{text}' is not a valid number range")
    return lo, hi


INT_OPERATORS = ("eq", "ge", "gt", "le", "lt")


def apply_operator(op: str, text: str) -> tuple[int | None, int | None]:
    """Translate ``<op> <value>`` into a range the way HAProxy does."""
    if op == "eq" or ":" in text or "-" in text:
        return parse_int_range(text)
    if not re.fullmatch(r"[0-9]{1,30}", text):
        raise PatternError(f"'{text}' is neither a number nor a supported operator")
    v = int(text)
    if op == "le":
        return None, v
    if op == "lt":
        return None, v - 1
    if op == "ge":
        return v, None
    return v + 1, None  # gt


def _int_matcher(ranges: Sequence[tuple[int | None, int | None]]) -> Matcher:
    exact = frozenset(lo for lo, hi in ranges if lo is not None and lo == hi)
    others = tuple(r for r in ranges if not (r[0] is not None and r[0] == r[1]))
    return IntMatcher(exact, others)


# ------------------------------------------------------------ ip

Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def _v4_mask(text: str) -> int:
    if re.fullmatch(r"[0-9]+", text):
        bits = int(text)
        if bits > 32:
            raise ValueError
        return bits
    m = int(ipaddress.IPv4Address(text))
    bits = bin(m).count("1")
    if m != ((1 << 32) - 1) ^ ((1 << (32 - bits)) - 1):
        raise ValueError
    return bits


# bound of the last part of a dotted address with 1..4 parts (a table rather than a
# shift of len(): compiled, `1 << (8 * (5 - len(parts)))` is C arithmetic and overflows)
_V4_LAST_LIMIT = (0, 1 << 32, 1 << 24, 1 << 16, 1 << 8)


def _v4_addr(text: str) -> ipaddress.IPv4Address:
    """Dotted IPv4 with the classic inet_aton short forms HAProxy accepts.

    ``127.1`` is 127.0.0.1 and ``10.12`` is 10.0.0.12 (the last part fills the
    remaining bytes); a single number is the whole 32-bit value (``127`` = 0.0.0.127).
    """
    parts = text.split(".")
    if not 1 <= len(parts) <= 4 or not all(re.fullmatch(r"[0-9]+", p) for p in parts):
        raise ValueError
    nums = [int(p) for p in parts]
    head, last = nums[:-1], nums[-1]
    if any(n > 255 for n in head) or last >= _V4_LAST_LIMIT[len(parts)]:
        raise ValueError
    value = 0
    for n in head:
        value = (value << 8) | n
    value = (value << (8 * (5 - len(parts)))) | last
    return ipaddress.IPv4Address(value)


def parse_net(text: str) -> Net:
    """IPv4/IPv6 address or network (``10.0.0.0/8``, ``10.12/8``, ``::1``, ``fe80::/10``)."""
    err = PatternError(f"'{text}' is not a valid IPv4 or IPv6 address")
    addr, slash, mask = text.partition("/")
    try:
        if ":" not in addr:
            a = _v4_addr(addr)
            bits = _v4_mask(mask) if slash else 32
            return ipaddress.IPv4Network((int(a) & (((1 << bits) - 1) << (32 - bits)), bits))
        a6 = ipaddress.IPv6Address(addr)
        bits6 = int(mask) if slash else 128
        if slash and not re.fullmatch(r"[0-9]+", mask):
            raise ValueError
        return ipaddress.IPv6Network((a6, bits6), strict=False)
    except (ValueError, ipaddress.AddressValueError, ipaddress.NetmaskValueError):
        raise err from None


def _v6_to_v4(x: int) -> int | None:
    """IPv4 inside an IPv6 address: ::ffff:a.b.c.d, ::a.b.c.d or 2002:AABB:CCDD::/48."""
    top = x >> 32
    if top == 0 or top == 0xFFFF:
        return x & 0xFFFFFFFF
    if x >> 112 == 0x2002:
        return (x >> 80) & 0xFFFFFFFF
    return None


def _net_table(pairs: Sequence[tuple[int, int]]) -> tuple[tuple[int, frozenset[int]], ...]:
    """Group networks by mask: (mask, set of network addresses), longest mask first.

    A lookup costs one set probe per distinct prefix length, however many networks
    (a 10k-entry ``-f`` block list stays as cheap as a short one).
    """
    by_mask: dict[int, set[int]] = {}
    for addr, mask in pairs:
        by_mask.setdefault(mask, set()).add(addr)
    return tuple((m, frozenset(v)) for m, v in sorted(by_mask.items(), reverse=True))


def _ip_matcher(nets: Sequence[Net]) -> Predicate:
    t4 = _net_table([(int(n.network_address), int(n.netmask)) for n in nets if n.version == 4])
    t6 = _net_table([(int(n.network_address), int(n.netmask)) for n in nets if n.version == 6])

    def m4(x: int) -> bool:
        for msk, addrs in t4:
            if x & msk in addrs:
                return True
        return False

    def m6(x: int) -> bool:
        for msk, addrs in t6:
            if x & msk in addrs:
                return True
        return False

    def match(ip: Any) -> bool:
        x = int(ip)
        if ip.version == 4:
            if t4 and m4(x):
                return True
            return bool(t6) and m6(0xFFFF00000000 | x)
        if t6 and m6(x):
            return True
        if t4:
            a4 = _v6_to_v4(x)
            if a4 is not None:
                return m4(a4)
        return False
    return match


# ------------------------------------------------------------ string methods


def _fold(pats: Sequence[bytes], icase: bool) -> list[bytes]:
    return [p.lower() for p in pats] if icase else list(pats)


def _str_matcher(pats: Sequence[bytes], icase: bool) -> Matcher:
    return StrMatcher(frozenset(_fold(pats, icase)), icase)


def _beg_matcher(pats: Sequence[bytes], icase: bool) -> Matcher:
    return AffixMatcher(tuple(_fold(pats, icase)), icase, False)


def _end_matcher(pats: Sequence[bytes], icase: bool) -> Matcher:
    return AffixMatcher(tuple(_fold(pats, icase)), icase, True)


def _sub_matcher(pats: Sequence[bytes], icase: bool) -> Predicate:
    t = tuple(_fold(pats, icase))
    if len(t) == 1:
        p = t[0]
        if icase:
            return lambda v: p in v.lower()
        return lambda v: p in v
    if len(t) > 8:  # one regex scan instead of one "in" per pattern
        rx = re.compile(b"|".join(re.escape(p) for p in sorted(t, key=len, reverse=True)),
                        re.IGNORECASE if icase else 0)
        search = rx.search
        return lambda v: search(v) is not None

    def match(v: bytes) -> bool:
        if icase:
            v = v.lower()
        for p in t:
            if p in v:
                return True
        return False
    return match


def compile_regex(p: bytes, icase: bool) -> re.Pattern[bytes]:
    try:
        return re.compile(p, re.IGNORECASE if icase else 0)
    except re.error as e:
        text = p.decode("utf-8", "surrogateescape")
        raise PatternError(
            f"regex '{text}' is invalid (error={e.msg}, erroffset={e.pos})") from None


def backrefs(repl: bytes) -> Callable[[re.Match[bytes]], bytes]:
    """A replacement with HAProxy's ``\\1``..``\\9`` references (regsub, map_regm) as
    a function of a match; a group the regex does not have expands to nothing."""
    parts = re.split(rb"\\([0-9])", repl)

    def expand(m: re.Match[bytes]) -> bytes:
        out = [parts[0]]
        for i in range(1, len(parts), 2):
            try:
                out.append(m.group(int(parts[i])) or b"")
            except IndexError:
                pass
            out.append(parts[i + 1])
        return b"".join(out)
    return expand


def _reg_matcher(pats: Sequence[bytes], icase: bool) -> Predicate:
    rxs = tuple(compile_regex(p, icase) for p in pats)
    if len(rxs) == 1:
        s = rxs[0].search
        return lambda v: s(v) is not None

    def match(v: bytes) -> bool:
        for rx in rxs:
            if rx.search(v) is not None:
                return True
        return False
    return match


def _word_matcher(delims: bytes) -> Callable[[Sequence[bytes], bool], Predicate]:
    cls = b"[" + re.escape(delims) + b"]"

    def build(pats: Sequence[bytes], icase: bool) -> Predicate:
        alts = []
        for p in pats:
            p = p.strip(delims)
            if p:
                alts.append(re.escape(p))
        if not alts:
            return lambda v: False
        rx = re.compile(b"(?:^|(?<=" + cls + b"))(?:" + b"|".join(alts) + b")(?=" + cls + b"|$)",
                        re.IGNORECASE if icase else 0)
        s = rx.search
        return lambda v: s(v) is not None
    return build


def _len_matcher(ranges: Sequence[tuple[int | None, int | None]]) -> Predicate:
    m = _int_matcher(ranges)
    return lambda v: m(len(v))


def _bin_parse(text: str) -> bytes:
    if len(text) % 2:
        raise PatternError("an even number of hex digit is expected")
    for c in text:
        if c not in "0123456789abcdefABCDEF":
            raise PatternError(f"an hex digit is expected (found '{c}')")
    return bytes.fromhex(text)


# Standard methods compare by method code, i.e. case-sensitively even with -i.
STANDARD_METHODS = frozenset((b"OPTIONS", b"GET", b"HEAD", b"POST", b"PUT", b"DELETE",
                              b"TRACE", b"CONNECT"))


def _meth_matcher(pats: Sequence[bytes], icase: bool) -> Predicate:
    std = frozenset(p for p in pats if p in STANDARD_METHODS)
    other = frozenset(_fold([p for p in pats if p not in STANDARD_METHODS], icase))

    def match(v: bytes) -> bool:
        if v in STANDARD_METHODS:
            return v in std
        return (v.lower() if icase else v) in other
    return match


# ------------------------------------------------------------ table

K_STR = "str"  # consumes bytes
K_INT = "int"  # consumes int
K_IP = "ip"  # consumes an ipaddress object
K_BOOL = "bool"
K_ANY = "any"


@dataclass(frozen=True, slots=True)
class MatchMethod:
    """One row of ``MATCH_METHODS``.

    ``parse`` turns one pattern word (str) into a pattern value; ``build`` turns the
    list of parsed patterns (and the -i flag) into a matcher ``f(value) -> bool``.
    ``build`` may return a plain predicate: ``compile_patterns`` wraps it in a
    ``FnMatcher``. ``ranges`` marks methods taking eq/ge/gt/le/lt operators.
    """

    name: str
    kind: str
    parse: Callable[[str], Any]
    build: Callable[[Sequence[Any], bool], Matcher | Predicate]
    ranges: bool = False


def _enc(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def _never(pats: Sequence[Any], icase: bool) -> Predicate:
    return lambda v: False


MATCH_METHODS: dict[str, MatchMethod] = {m.name: m for m in (
    MatchMethod("beg", K_STR, _enc, _beg_matcher),
    MatchMethod("bin", K_STR, _bin_parse, lambda p, i: frozenset(p).__contains__),
    MatchMethod("bool", K_BOOL, _enc, lambda p, i: bool),
    MatchMethod("dir", K_STR, _enc, _word_matcher(b"/?")),
    MatchMethod("dom", K_STR, _enc, _word_matcher(b"/?.:")),
    MatchMethod("end", K_STR, _enc, _end_matcher),
    MatchMethod("found", K_ANY, _enc, lambda p, i: lambda v: True),
    MatchMethod("int", K_INT, parse_int_range, lambda p, i: _int_matcher(p), ranges=True),
    MatchMethod("ip", K_IP, parse_net, lambda p, i: _ip_matcher(p)),
    MatchMethod("len", K_STR, parse_int_range, lambda p, i: _len_matcher(p), ranges=True),
    MatchMethod("meth", K_STR, _enc, _meth_matcher),
    MatchMethod("reg", K_STR, _enc, _reg_matcher),
    MatchMethod("str", K_STR, _enc, _str_matcher),
    MatchMethod("sub", K_STR, _enc, _sub_matcher),
)}

# Names accepted after ``-m`` (``meth`` is internal to the ``method`` keyword).
USER_METHODS = frozenset(MATCH_METHODS) - {"meth"}


def compile_patterns(method: str, patterns: Sequence[Any], icase: bool) -> Matcher:
    """Build the matcher for already-parsed patterns of ``method``."""
    built = MATCH_METHODS[method].build(patterns, icase)
    return built if isinstance(built, Matcher) else FnMatcher(built)
