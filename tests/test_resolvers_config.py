"""`resolvers` sections and the resolve-* server options as `lb -c` reads them
(lb/config/resolvers_kw.py): HAProxy 2.6.12's messages, recorded from it and compared
live when it is installed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import pytest

from tests.lbproc import ROOT
from tests.support_e2e import HAPROXY

HAVE_HAPROXY = shutil.which(HAPROXY) is not None


@pytest.fixture
def tmp() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="lbtest-dnscfg-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_config_messages_match_haproxy(tmp: str) -> None:
    """`lb -c` on resolvers sections and server options says what HAProxy 2.6.12 says
    (texts recorded from it; compared live when it is installed)."""
    cases = {
        "nameserver ns2 127.0.0.1": "[ALERT] config : parsing [c.cfg:3] : 'nameserver ns2' "
        ": missing port specification in '127.0.0.1'",
        "nameserver ns1 127.0.0.1:53": "[ALERT] config : Parsing [c.cfg:3]: nameserver "
        "'ns1' has same name as another nameserver (declared at c.cfg:2).",
        "hold bogus 1s": "[ALERT] config : parsing [c.cfg:3] : 'hold' unknown <event>: "
        "'bogus', expects either 'nx', 'timeout', 'valid', 'obsolete' or 'other'.",
        "hold nx 9999999999": "[ALERT] config : parsing [c.cfg:3]: timer overflow in "
        "argument <nx> to <hold>, maximum value is 2147483647 ms (~24.8 days).",
        "accepted_payload_size 65536": "[ALERT] config : parsing [c.cfg:3] : "
        "'accepted_payload_size' must be between 12 and 65535 inclusive (was 65536).",
        "timeout bogus 1s": "[ALERT] config : parsing [c.cfg:3] : 'timeout' expects 'retry' "
        "or 'resolve' and <time> as arguments got 'bogus'.",
        "resolution_pool_size 10": "[ALERT] config : parsing [c.cfg:3] : "
        "'resolution_pool_size' directive is not supported anymore (it never appeared in a "
        "stable release).",
        "bogus": "[ALERT] config : parsing [c.cfg:3] : unknown keyword 'bogus' in "
        "'resolvers' section",
        "server s1 127.0.0.1:80 resolvers dns resolve-prefer ip4": "[ALERT] config : "
        "[c.cfg:4] : 'server b/s1' : 'resolve-prefer' expects either ipv4 or ipv6 as "
        "argument..",
        "server s1 127.0.0.1:80 resolvers dns resolve-opts x": "[ALERT] config : [c.cfg:4] : "
        "'server b/s1' : 'resolve-opts' : unknown resolve-opts option 'x', supported methods "
        "are 'allow-dup-ip', 'ignore-weight', and 'prevent-dup-ip'..",
        "server s1 127.0.0.1:80 resolvers dns resolve-net 10.0.0.0/33": "[ALERT] config : "
        "[c.cfg:4] : 'server b/s1' : 'resolve-net' invalid network '10.0.0.0/33'..",
        "server s1 127.0.0.1:80 resolvers nosuch": "[ALERT] config : backend 'b', server "
        "'s1': unable to find required resolvers 'nosuch'",
        "server s1 nosuch.invalid:80 resolvers dns": "[WARNING] config : [c.cfg:4] : "
        "'server b/s1' : could not resolve address 'nosuch.invalid', disabling server.",
    }
    for line, want in cases.items():
        text = "resolvers dns\n  nameserver ns1 127.0.0.1:53\n"
        # a server line is the 4th line (its messages say so), a section line the 3rd
        text += f"backend b\n  {line}\n" if line.startswith("server") else f"  {line}\n"
        path = os.path.join(tmp, "c.cfg")
        with open(path, "w") as f:
            f.write(text)
        _expect_same(path, want, line)
    files = {  # whole files: the sections themselves
        "resolvers empty\n": "[WARNING] config : resolvers 'empty' [c.cfg:1] has no "
        "nameservers configured!",
        "resolvers dns\n  nameserver ns1 127.0.0.1:53\nresolvers dns\n": "[ALERT] config : "
        "Parsing [c.cfg:3]: resolvers 'dns' has same name as another resolvers (declared at "
        "c.cfg:1).",
        "resolvers\n": "[ALERT] config : parsing [c.cfg:1] : missing name for resolvers "
        "section.",
        "resolvers a/b\n": "[ALERT] config : parsing [c.cfg:1] : character '/' is not "
        "permitted in 'resolvers' name 'a/b'.",
    }
    for text, want in files.items():
        path = os.path.join(tmp, "c.cfg")
        with open(path, "w") as f:
            f.write(text)
        _expect_same(path, want, text)


def test_a_section_hap_gives_up_on_ends_without_the_fatal_line(tmp: str) -> None:
    """HAProxy stops reading at a `resolvers`/`mailers`/proxy line without a name (or
    a bad one) and prints no `Fatal errors found in configuration.` line: neither
    does lb. A second `mailers` of the same name is an error it reads on after."""
    for text, fatal_line in (("resolvers\n", False), ("mailers a/b\n", False),
                             ("frontend\n  bind :80\n", False),
                             ("mailers m\nmailers m\n", True)):
        path = os.path.join(tmp, "c.cfg")
        with open(path, "w") as f:
            f.write(text)
        outs = {"l": _check([sys.executable, "-m", "lb"], path)}
        if HAVE_HAPROXY:
            outs["h"] = _check([HAPROXY], path)
        for k, out in outs.items():
            assert ("[ALERT] config : Fatal errors found in configuration." in out) is \
                fatal_line, (k, text, out)
            assert "[ALERT] config : Error(s) found in configuration file : c.cfg" in out


def _expect_same(path: str, want: str, what: str) -> None:
    """``want`` among lb's messages, and HAProxy's when it is installed."""
    outs = {"l": _check([sys.executable, "-m", "lb"], path)}
    if HAVE_HAPROXY:
        outs["h"] = _check([HAPROXY], path)
    for k, out in outs.items():
        assert want in out, (k, what, out)


def _check(cmd: list[str], path: str) -> list[str]:
    """`-c` messages, without pid and padding, and without the closing lines."""
    p = subprocess.run([*cmd, "-c", "-f", os.path.basename(path)], capture_output=True,
                       text=True, cwd=os.path.dirname(path), timeout=30,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    out = []
    for line in p.stderr.splitlines():
        m = re.match(r"\[(\w+)\]\s+\(\d+\) : (.*)$", line)
        if m:
            out.append(f"[{m.group(1)}] {m.group(2)}")
    return out
