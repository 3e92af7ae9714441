"""`stats http-request` rules in front of the stats page, lb and HAProxy 2.6.12 side by
side where it is installed: the first rule that applies decides (`allow` serves the
page, `deny` answers 403, `auth` asks for credentials with its realm, by default
HAProxy's "HAProxy Statistics"); credentials are checked by conditions
(`http_auth(<userlist>)`), as HAProxy refuses `stats auth` or `stats realm` beside
such rules. Before, lb read the rules and ignored them, so a `deny` meant to hide
the page did not.
"""

from __future__ import annotations

import base64
import shutil

import pytest

from tests.lbproc import LbProcess, free_port
from tests.support_e2e import HAPROXY, Haproxy, fetch

HAVE_HAPROXY = shutil.which(HAPROXY) is not None

CONFIG = """\
userlist L1
  user admin insecure-password pw
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend fe
  bind 127.0.0.1:@@fe@@
  stats uri /st
  stats http-request allow if { hdr(x-ok) yes }
  stats http-request deny if { path_beg /st/no }
  stats http-request auth realm Zone if { path_beg /st/auth }
  stats http-request auth unless { http_auth(L1) }
  default_backend b
backend b
  server s1 127.0.0.1:@@s1@@
"""

CREDENTIALS = "Basic " + base64.b64encode(b"admin:pw").decode()
CASES = [  # (path, headers) -> (status, www-authenticate), as HAProxy 2.6.12 answered
    (("/st", (("x-ok", "yes"),)), (200, None)),
    (("/st/no", ()), (403, None)),
    (("/st/no", (("x-ok", "yes"),)), (200, None)),  # the first rule decided
    (("/st/auth", ()), (401, 'Basic realm="Zone"')),
    (("/st", ()), (401, 'Basic realm="HAProxy Statistics"')),
    (("/st", (("authorization", CREDENTIALS),)), (200, None)),
]


@pytest.mark.parametrize("kind", ["l", "h"])
def test_stats_rules_decide_before_stats_auth(kind: str) -> None:
    if kind == "h" and not HAVE_HAPROXY:
        pytest.skip("HAProxy is not installed")
    ports = {"fe": free_port(), "s1": free_port()}
    proc = LbProcess(CONFIG, ports) if kind == "l" else Haproxy(CONFIG, ports)
    with proc:
        for (path, headers), want in CASES:
            r = fetch(ports["fe"], path, headers)
            assert (r.status, r.get("www-authenticate")) == want, (kind, path, headers)


def test_stats_auth_beside_rules_is_refused() -> None:
    """HAProxy 2.6.12's check, in `lb -c` too."""
    from lb.config import load_text

    for line in ("stats auth a:b", "stats realm R"):
        text = CONFIG.replace("@@fe@@", "8080").replace("@@s1@@", "8081")
        res = load_text(text.replace("  stats uri /st\n", f"  stats uri /st\n  {line}\n"),
                        "t.cfg")
        assert not res.ok
        assert [d.message() for d in res.diagnostics if d.severity == "alert"] == [
            "proxy 'fe': stats 'auth'/'realm' and 'http-request' can't be used at the same "
            "time."]
