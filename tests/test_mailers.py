"""`mailers` and `email-alert` (lb/config/mailers_kw.py, lb/mailers.py): state changes
mailed over real SMTP to catchers on loopback, lb and HAProxy 2.6.12 side by side
where it is installed. What HAProxy 2.6.12 mailed (observed, 2026-11-25): a check's
DOWN and UP, `set server ... health down` (`is DOWN, changed from CLI`), entering
drain; not maintenance, leaving drain or maintenance, nor the backend-empty line.
Each exchange is `HELO <myhostname>`, `MAIL FROM:<from>`, `RCPT TO:<to>`, `DATA`,
the From/To/Date/Subject headers, the line as the body (no final period), `QUIT`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.lbproc import ROOT, LbProcess, RawBackend, free_port
from tests.lbproc import wait_value as _wait
from tests.smtp_support import SmtpCatcher
from tests.stats_support import query, wait_socket
from tests.support_e2e import HAPROXY, Haproxy

HAVE_HAPROXY = shutil.which(HAPROXY) is not None

CONFIG = """\
global
  stats socket {sock} level admin
mailers alerts
  mailer m1 127.0.0.1:{smtp1}
  mailer m2 127.0.0.1:{smtp2}
  timeout mail 2s
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
  email-alert mailers alerts
  email-alert from lb@example.com
  email-alert to ops@example.com
  email-alert myhostname lb1
frontend fe
  bind 127.0.0.1:{fe}
  default_backend b
backend b
  email-alert level {level}
  server s1 127.0.0.1:{port} check inter 200ms fall 1 rise 1
"""


@pytest.fixture
def tmp() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="lbtest-mail-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _closer(port: int | None = None) -> RawBackend:
    """A backend health checks find up: it accepts and closes. Its port is below the
    kernel's ephemeral range (``free_port``): the tests close it and bind it again,
    and an outgoing connection could take an ephemeral one meanwhile (seen in CI)."""
    return RawBackend(lambda c, be: c.close(), port=free_port() if port is None else port)


def _status(sock: str) -> str:
    for line in query(sock, "show stat").splitlines():
        f = line.split(",")
        if len(f) > 17 and f[0] == "b" and f[1] == "s1":
            return f[17]
    return ""


def _normal(session: bytes) -> str:
    text = session.decode("utf-8", "replace")
    text = re.sub(r"Date: [^\r\n]+", "Date: D", text)
    return re.sub(r"check duration: \d+ms", "check duration: Nms", text)


def test_alerts_mailed_as_by_haproxy(tmp: str) -> None:
    """The same mails, byte for byte but the date and durations, to each of the two
    mailers: DOWN and UP by check, drain, DOWN from the CLI and UP again; nothing for
    ready, maintenance or the empty backend (level notice, inherited settings)."""
    kinds = ("l", "h") if HAVE_HAPROXY else ("l",)
    with _closer() as backend:
        port = backend.port
        catchers = {k: (SmtpCatcher(), SmtpCatcher()) for k in kinds}
        procs: dict[str, Any] = {}
        socks = {k: os.path.join(tmp, f"{k}.sock") for k in kinds}
        backends = [backend]
        try:
            for pair in catchers.values():
                for c in pair:
                    c.__enter__()
            for k in kinds:
                cfg = CONFIG.format(sock=socks[k], smtp1=catchers[k][0].port,
                                    smtp2=catchers[k][1].port, fe=free_port(), port=port,
                                    level="notice")
                procs[k] = (LbProcess(cfg) if k == "l" else
                            Haproxy(cfg, ready_socket=socks[k], single_thread=True)).__enter__()
            wait_socket(socks["l"])

            def both(status: str) -> None:
                for k in kinds:
                    _wait(lambda k=k: _status(socks[k]).startswith(status), what=f"{status} {k}")

            both("UP")
            backends[0].__exit__()  # connection refused: DOWN
            both("DOWN")
            backends[0] = _closer(port).__enter__()
            both("UP")
            for cmd, status in (("set server b/s1 state drain", "DRAIN"),
                                ("set server b/s1 state ready", "UP"),
                                ("set server b/s1 state maint", "MAINT"),
                                ("set server b/s1 state ready", "UP")):
                for k in kinds:
                    assert query(socks[k], cmd) == "\n"
                both(status)
            for k in kinds:
                assert query(socks[k], "set server b/s1 health down") == "\n"
            for k in kinds:
                for c in catchers[k]:
                    assert c.wait(5), (k, c.subjects())
            subjects = [s.removeprefix("[HAProxy Alert] ").split(",")[0].split(". ")[0]
                        for s in catchers["l"][0].subjects()]
            assert subjects == ["Server b/s1 is DOWN", "Server b/s1 is UP",
                                "Server b/s1 enters drain state", "Server b/s1 is DOWN",
                                "Server b/s1 is UP"]
            first = catchers["l"][0].sessions[0]
            assert first.startswith(b"HELO lb1\r\nMAIL FROM:<lb@example.com>\r\nRCPT TO:"
                                    b"<ops@example.com>\r\nDATA\r\nFrom: lb@example.com\r\n"
                                    b"To: ops@example.com\r\nDate: ")
            assert first.endswith(b" 0 remaining in queue\r\n\r\n.\r\nQUIT\r\n")
            assert b"\r\nSubject: [HAProxy Alert] Server b/s1 is DOWN, reason: Layer4 " \
                   b"connection problem, info: \"Connection refused\"" in first
            for k in kinds:  # each mailer got each alert
                assert [_normal(s) for s in catchers[k][1].sessions] == [
                    _normal(s) for s in catchers[k][0].sessions]
            if "h" in kinds:
                assert [_normal(s) for s in catchers["l"][0].sessions] == [
                    _normal(s) for s in catchers["h"][0].sessions]
        finally:
            for p in procs.values():
                p.__exit__(None, None, None)
            for pair in catchers.values():
                for c in pair:
                    c.__exit__()
            backends[0].__exit__()


def test_failing_mailers_lose_their_alert_and_nothing_else(tmp: str) -> None:
    """A mailer that refuses the sender and one slower than `timeout mail` lose the
    alert (logged), while the proxy goes on and the next alert still reaches them;
    level `alert` (the default) mails the DOWN line only."""
    sock = os.path.join(tmp, "l.sock")
    with _closer() as backend, SmtpCatcher(refuse=True) as refusing, \
            SmtpCatcher(delay=3) as slow:
        cfg = CONFIG.format(sock=sock, smtp1=refusing.port, smtp2=slow.port, fe=free_port(),
                            port=backend.port, level="alert")
        with LbProcess(cfg) as lb:
            wait_socket(sock)
            _wait(lambda: _status(sock).startswith("UP"), what="up")
            backend.__exit__()
            _wait(lambda: _status(sock).startswith("DOWN"), what="down")
            assert refusing.wait(1) and slow.wait(1, timeout=6)
            assert b"MAIL FROM:<lb@example.com>" in refusing.sessions[0]
            assert b"DATA" not in refusing.sessions[0]  # (refused: no message sent)
            failed = _wait(lambda: [line for line in lb.lines()
                                    if "email_alert_failed" in line], what="failure logs")
            assert any("not from you" in line for line in failed), failed
            with _closer(backend.port):
                _wait(lambda: _status(sock).startswith("UP"), what="up again")
                time.sleep(0.5)
            assert len(refusing.sessions) == 1  # UP is a notice: not mailed at `alert`
            assert lb.proc is not None and lb.proc.poll() is None


def test_config_messages_match_haproxy(tmp: str) -> None:
    """`lb -c` says what HAProxy 2.6.12 says about mailers and email-alert lines
    (recorded from it; compared live when it is installed)."""
    mailer = "  mailer s 127.0.0.1:25"
    ignored = ("[WARNING] config : 'email-alert' will be ignored for backend 'b' (the "
               "presence any of 'email-alert from', 'email-alert level' 'email-alert mailers',"
               " 'email-alert myhostname', or 'email-alert to' requires each of 'email-alert "
               "from', 'email-alert mailers' and 'email-alert to' to be present).")
    cases = [
        (mailer, "  email-alert from a@b\n  email-alert to c@d\n  email-alert mailers nosuch",
         ["[ALERT] config : Proxy 'b': unable to find mailers 'nosuch'.",
          "[WARNING] config : Removing incomplete section 'mailers m'."]),
        (mailer, "  email-alert from a@b", [ignored]),
        (mailer, "  email-alert level bogus",
         ["[ALERT] config : parsing [c.cfg:4] : unknown log level 'level' after 'bogus'"]),
        (mailer, "  email-alert bogus",
         ["[ALERT] config : parsing [c.cfg:4] : email-alert: unknown argument 'bogus'."]),
        ("  mailer s 127.0.0.1", "",
         ["[ALERT] config : parsing [c.cfg:2] : 'mailer s' : missing port specification in "
          "'127.0.0.1'"]),
        ("  timeout bogus 1s", "",
         ["[ALERT] config : parsing [c.cfg:2] : 'timeout' expects 'mail' and <time> as "
          "arguments got 'bogus'."]),
        ("  bogus", "", ["[ALERT] config : parsing [c.cfg:2] : unknown keyword 'bogus' in "
                         "'mailers' section"]),
    ]
    for section, backend, want in cases:
        path = os.path.join(tmp, "c.cfg")
        with open(path, "w") as f:
            f.write(f"mailers m\n{section}\nbackend b\n{backend}\n  server s1 127.0.0.1:80\n")
        outs = {"l": _check([sys.executable, "-m", "lb"], path)}
        if HAVE_HAPROXY:
            outs["h"] = _check([HAPROXY], path)
        for k, out in outs.items():
            for line in want:
                assert line in out, (k, section, backend, out)


def _check(cmd: list[str], path: str) -> list[str]:
    p = subprocess.run([*cmd, "-c", "-f", os.path.basename(path)], capture_output=True,
                       text=True, cwd=os.path.dirname(path), timeout=30,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    return [f"[{m.group(1)}] {m.group(2)}" for line in p.stderr.splitlines()
            if (m := re.match(r"\[(\w+)\]\s+\(\d+\) : (.*)$", line))]
