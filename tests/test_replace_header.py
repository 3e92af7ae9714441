"""`http-request replace-header` and `replace-value`, byte for byte as HAProxy 2.6.12.

HAProxy searches for the regex (it is not anchored) and replaces a matching value
*whole* by the rendered format, whose ``\\N`` are the match's groups (src/regex.c,
``exp_replace``). replace-value does this for each comma-separated value, trimmed;
a value it replaces loses the blanks around it, the others keep theirs. lb until
session 28 anchored the regex at both ends, left unmatched-but-found values alone,
and rejoined every list without its blanks.

Every case runs through lb and, where it is installed, HAProxy, with the same request:
``X-A: xay, c ,  a`` then ``X-A: 1-2``.
"""

from __future__ import annotations

import os
import re

import pytest

from lb.http.actions import exp_replace
from tests.support_e2e import HAPROXY, header_sent_through, one_backend_config

pytestmark = pytest.mark.timeout(60)

KINDS = ["lb", "haproxy"] if os.path.exists(HAPROXY) else ["lb"]

CASES = [
    (r"replace-value X-A a b", [b"b, c ,b", b"1-2"]),
    (r"replace-header X-A a b", [b"b", b"1-2"]),
    (r"replace-header X-A (a) [\1]", [b"[a]", b"1-2"]),
    (r"replace-value X-A ^(c)$ [\1]", [b"xay,[c],  a", b"1-2"]),
    (r"replace-value X-A (1) [\1]", [b"xay, c ,  a", b"[1]"]),
    (r"replace-header X-A (1)-(2) \2\x41\0<\7>", [b"xay, c ,  a", b"2A1-2<>"]),
    (r"replace-header X-A ^(1)-(2)$ \2-\1", [b"xay, c ,  a", b"2-1"]),
    (r"replace-value X-A z y", [b"xay, c ,  a", b"1-2"]),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("rule", "want"), CASES, ids=[c[0] for c in CASES])
def test_replace_rules_match_haproxy(kind: str, rule: str, want: list[bytes]) -> None:
    text = one_backend_config(f"    http-request {rule}")
    request = (b"GET / HTTP/1.1\r\nHost: t\r\nX-A: xay, c ,  a\r\nX-A: 1-2\r\n"
               b"Connection: close\r\n\r\n")
    assert header_sent_through(kind, text, request, b"x-a") == want


def test_exp_replace_escapes() -> None:
    mt = re.search(rb"(b)(x)?", b"abc")
    assert mt is not None
    assert exp_replace(rb"[\0|\1|\2|\9]", mt) == b"[b|b||]"
    assert exp_replace(rb"\x41\x7a\n\\", mt) == b"Azn\\"
    assert exp_replace(b"plain", mt) == b"plain"
    assert exp_replace(b"ends\\", mt) is None
    assert exp_replace(rb"\x4", mt) is None
