"""Property test: mutated real configurations never crash the loader (no traceback).

Mutations: random bytes spliced in, truncations, stray quotes/backslashes/dollars,
and line shuffles, applied to the seed configurations in conf/.
"""

import glob
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lb.config import load_text
from lb.errors import Diagnostic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXTS = []
for _p in sorted(glob.glob(os.path.join(ROOT, "conf", "seed-*.cfg"))):
    with open(_p, encoding="utf-8") as _fh:
        TEXTS.append(_fh.read())

STRAY = ['"', "'", "\\", "$", "${", "#", "\\x", "{", "}", "\x00", "\r", " if ", " ! ", "%[",
         "\t", "\n", ".if ", ".endif\n", "-m ", "(", ")", ",", "unless"]


def check(text: str) -> None:
    res = load_text(text, "fuzz.cfg", env={"HOME": "/root"})
    assert isinstance(res.diagnostics, list)
    assert all(isinstance(d, Diagnostic) for d in res.diagnostics)
    if res.config is None:
        assert any(d.fatal for d in res.diagnostics)
    for d in res.diagnostics:
        d.render(1)
        d.as_json()
    # handlers are wrapped so -c never shows a traceback; the fuzzer must not hit that net
    internal = [d.text for d in res.diagnostics if d.code == "internal-error"]
    assert not internal, internal


SETTINGS = settings(max_examples=int(os.environ.get("LB_FUZZ_EXAMPLES", "150")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(idx=st.integers(0, len(TEXTS) - 1), pos=st.floats(0, 1),
       junk=st.binary(min_size=1, max_size=12))
def test_random_bytes(idx, pos, junk):
    text = TEXTS[idx]
    cut = int(len(text) * pos)
    check(text[:cut] + junk.decode("latin-1") + text[cut:])


@SETTINGS
@given(idx=st.integers(0, len(TEXTS) - 1), pos=st.floats(0, 1))
def test_truncations(idx, pos):
    text = TEXTS[idx]
    check(text[:int(len(text) * pos)])


@SETTINGS
@given(idx=st.integers(0, len(TEXTS) - 1),
       edits=st.lists(st.tuples(st.floats(0, 1), st.sampled_from(STRAY)), min_size=1,
                      max_size=6))
def test_stray_tokens(idx, edits):
    text = TEXTS[idx]
    for pos, token in edits:
        cut = int(len(text) * pos)
        text = text[:cut] + token + text[cut:]
    check(text)


@SETTINGS
@given(idx=st.integers(0, len(TEXTS) - 1), data=st.data())
def test_line_shuffles_and_drops(idx, data):
    lines = TEXTS[idx].splitlines(keepends=True)
    picked = data.draw(st.lists(st.sampled_from(lines), max_size=len(lines) + 5))
    check("".join(picked))


@SETTINGS
@given(words=st.lists(st.sampled_from([
    "frontend", "backend", "listen", "defaults", "global", "bind", ":80", "server", "s1",
    "1.2.3.4:80", "check", "acl", "a", "path", "/x", "use_backend", "if", "unless", "b",
    "http-request", "deny", "option", "httpchk", "http-check", "expect", "status", "101",
    "timeout", "client", "5s", "cookie", "SRV", "insert", "balance", "uri", "hdr(host)",
    "stats", "socket", "/tmp/s", "level", "log", "global", "mode", "http", "tcp", "no",
    "default_backend", "maxconn", "10", "-i", "{", "}", "!", "or", "weight", "300"]),
    min_size=1, max_size=8), nlines=st.integers(1, 12))
def test_random_statements(words, nlines):
    text = "".join(" ".join(words[i % len(words):] + words[:i % len(words)]) + "\n"
                   for i in range(nlines))
    check(text)


def test_every_keyword_with_odd_arguments():
    """Each table row survives missing, empty, numeric, negative and junk arguments."""
    from lb.config.global_kw import GLOBAL_TABLE
    from lb.config.proxy_kw import OPTIONS, PROXY_TABLE
    from lb.config.server_kw import SERVER_KEYWORDS

    odd = ["", "x", "0", "-1", "99999999999999999999", "1 2 3", '""', "if", "if x",
           "unless { path", "%[", "a:b", "/tmp/nonexistent", "\\x4", "1.5s"]
    head = ("defaults\n mode http\n timeout client 1s\n timeout server 1s\n"
            " timeout connect 1s\n")
    for arg in odd:
        for row in PROXY_TABLE:
            for sec in ("frontend f", "backend b", "listen l", "defaults d"):
                check(f"{head}{sec}\n {row.name} {arg}\n")
        for name in OPTIONS:
            check(f"{head}listen l\n option {name} {arg}\n no option {name}\n")
        for name in SERVER_KEYWORDS:
            check(f"{head}backend b\n server s 127.0.0.1:80 {name} {arg}\n"
                  f" default-server {name} {arg}\n")
        for row in GLOBAL_TABLE:
            check(f"global\n {row.name} {arg}\n")
