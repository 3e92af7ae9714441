"""The check-time compilation of log formats, against `haproxy -c` (2.6.12).

HAProxy compiles `log-format`, `log-format-sd` and `unique-id-format` once the whole
file is read, for each proxy that uses the text (one taken from a defaults section
is reported once per proxy), in the proxy's final mode:
- outside `mode http` the HTTP variables (%r %HM %Tq %Ta %CC ...) are refused,
  "format variable 'r' is reserved for HTTP mode";
- in a log line, in both modes, fetches of the request or response heads and of
  the buffers are refused ("may not be reliably used here"): they are gone when the
  line is written; the unique id is made while the request head is there;
- "log format ignored ... no log address" still follows when the failing format
  kept something before its faulty field.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from lb.match import fmt, sample
from tests.test_config_haproxy_diff import HAPROXY, _alerts, assert_text_like_haproxy

T = "  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n"
_ARG = {"tbl": "l", "int": "1", "str": "x", "hdr": "host", "occ": "1", "srv": "l/s",
        "be": "l", "fe": "l", "usr": "u", "var": "txn.y"}
_ARGS = {"bool": "1", "bin": "41", "ipv4": "1.2.3.4", "ipv6": "::1"}


def _fetch_call(name: str, fd: sample.FetchDef) -> str:
    # (a server is always named: HAProxy has none to take by default)
    n = max(fd.min_args, 1 if fd.args[:1] == ("srv",) else 0)
    arg = _ARGS.get(name) or ",".join(_ARG[a] for a in fd.args[:n])
    return f"{name}({arg})" if arg else name


# HAProxy 2.6.12 crashes (SIGSEGV) in about one `-c` run in twenty once a log-format
# naming a userlist (`http_auth(u)`, `http_auth_group(u)`) has been refused; these go
# in a file of their own, whose check is run again when HAProxy crashed.
_CRASHES_HAPROXY = ("http_auth", "http_auth_group")


def _check_both(path) -> tuple[list[str], list[str]]:  # type: ignore[no-untyped-def]
    # (lb in its own process: a long check in this one could catch a line that a
    # thread left by an earlier test writes to stderr)
    cmds = ([sys.executable, "-m", "lb"], [HAPROXY])
    results = []
    for cmd in cmds:
        for _ in range(10):
            r = subprocess.run([*cmd, "-c", "-f", str(path)], capture_output=True, text=True,
                               timeout=120, stdin=subprocess.DEVNULL)
            if r.returncode >= 0:
                break
        results.append(r)
    assert results[0].returncode == results[1].returncode == 1
    mine, theirs = ([ln.replace(str(path), "f.cfg") for ln in _alerts(r.stderr)]
                    for r in results)
    return mine, theirs


@pytest.mark.parametrize("userlists", [False, True], ids=["others", "userlist-fetches"])
@pytest.mark.parametrize("mode", ["http", "tcp"])
def test_every_fetch_in_a_log_format_like_haproxy(tmp_path, mode: str,  # type: ignore[no-untyped-def]
                                                  userlists: bool) -> None:
    """One proxy per fetch lb knows, each logging `%[<fetch>]`: the same alert for
    each (HAProxy goes on to the next proxy after one). Each is a listen with a stick
    table, so that the fetches naming their own proxy by default find what they
    need. Left out: fhdr, an lb extension."""
    table = "  stick-table type ip size 1 store gpc0,gpc1,gpt0,conn_cnt,http_req_rate(1s)"
    lines = ["userlist u", " user a insecure-password b", "defaults", f"  mode {mode}", T]
    for i, (name, fd) in enumerate(sorted(sample.FETCHES.items())):
        if name == "fhdr" or (name in _CRASHES_HAPROXY) != userlists:
            continue
        lines += [f"listen f{i}", f"  bind 127.0.0.1:{20000 + i}",
                  f'  log-format "%[{_fetch_call(name, fd)}]"', table,
                  "  server s 127.0.0.1:80"]
    lines += ["listen l", table, "  server s 127.0.0.1:80"]
    path = tmp_path / "f.cfg"
    path.write_text("\n".join(lines) + "\n")
    mine, theirs = _check_both(path)
    assert any("may not be reliably used" in ln for ln in theirs)
    assert mine == theirs
    assert len(theirs) >= (4 if userlists else 200)


@pytest.mark.parametrize("var", sorted(fmt.LOG_VARIABLES - {"o"}))
def test_each_variable_in_a_tcp_frontend_like_haproxy(tmp_path, capsys, var: str) -> None:  # type: ignore[no-untyped-def]
    assert_text_like_haproxy(tmp_path, capsys, f"defaults\n  mode tcp\n{T}frontend fe\n"
                             f"  bind 127.0.0.1:12345\n  log-format \"x %{var}\"\n"
                             "  default_backend b\nbackend b\n  server s1 127.0.0.1:12346\n")


def test_http_only_set_matches_the_table() -> None:
    assert fmt.HTTP_LOG_VARIABLES <= fmt.LOG_VARIABLES


@pytest.mark.parametrize("fmt_text", [
    "x %r", " %r", "%r x", "%{+Q}r", "%Tw %r", "%[src] %[req.hdr(x)]",
    "%[src,nosuchconv] x", "x %[nosuch", "%ci %[var(txn.x)] %Tt",
])
def test_the_no_log_address_warning_follows_what_was_kept(tmp_path, capsys,  # type: ignore[no-untyped-def]
                                                          fmt_text: str) -> None:
    """A format failing at its first field keeps nothing: HAProxy then has no log
    format to warn about; one failing later, or a good one, is warned about."""
    assert_text_like_haproxy(tmp_path, capsys, f"defaults\n  mode tcp\n{T}frontend fe\n"
                             f"  bind 127.0.0.1:12345\n  log-format \"{fmt_text}\"\n"
                             "  default_backend b\nbackend b\n  server s1 127.0.0.1:12346\n")


@pytest.mark.parametrize("text", [
    # a defaults section's formats: reported for each frontend, listen (and the
    # unique-id for the backend), in HAProxy's order
    f'defaults\n  mode http\n{T}  log-format "%[nosuch]"\n  unique-id-format "%{{+Q}}zz"\n'
    "frontend fe\n  bind 127.0.0.1:12345\n  default_backend b\nfrontend fe2\n"
    "  bind 127.0.0.1:12347\n  default_backend b\nbackend b\n  server s1 127.0.0.1:12346\n"
    "listen l\n  bind 127.0.0.1:12348\n  server s1 127.0.0.1:12346\n",
    # the frontend's mode decides, wherever `mode` is written
    f'defaults\n  mode tcp\n{T}frontend fe\n  bind 127.0.0.1:12345\n  log-format "%r"\n'
    "  mode http\n  default_backend b\nbackend b\n  mode http\n  server s1 127.0.0.1:12346\n",
    f'defaults\n  mode http\n{T}  log-format "%r %HM"\nfrontend fe\n  mode tcp\n'
    "  bind 127.0.0.1:12345\n  default_backend b\nbackend b\n  server s1 127.0.0.1:12346\n",
    # an upgrade to HTTP does not make the frontend an HTTP one
    f'defaults\n  mode tcp\n{T}frontend fe\n  bind 127.0.0.1:12345\n  log-format "%r"\n'
    "  tcp-request inspect-delay 1s\n  tcp-request content switch-mode http\n"
    "  default_backend b\nbackend b\n  mode http\n  server s1 127.0.0.1:12346\n",
    # the unique id is made with the request head: its headers may be read
    f"defaults\n  mode http\n{T}frontend fe\n  bind 127.0.0.1:12345\n"
    '  unique-id-format "%[req.hdr(x)] %[res.hdr(x)]"\n  default_backend b\n'
    "backend b\n  server s1 127.0.0.1:12346\n",
    f"defaults\n  mode tcp\n{T}frontend fe\n  bind 127.0.0.1:12345\n"
    '  unique-id-format "%[req.hdr(x)] %HM"\n  default_backend b\n'
    "backend b\n  server s1 127.0.0.1:12346\n",
    # backends: log-format is ignored there (HAProxy's words), unique-id-format kept
    f"defaults\n  mode http\n{T}frontend fe\n  bind 127.0.0.1:12345\n  default_backend b\n"
    'backend b\n  log-format "%r"\n  unique-id-format "%[nosuch]"\n  unique-id-header X-ID\n'
    "  server s1 127.0.0.1:12346\n",
    # `option httplog` falls back to tcplog in a TCP frontend, before the check
    f"defaults\n  mode tcp\n{T}frontend fe\n  bind 127.0.0.1:12345\n  option httplog clf\n"
    "  default_backend b\nbackend b\n  server s1 127.0.0.1:12346\n",
], ids=["defaults-per-proxy", "mode-after", "defaults-http-fe-tcp", "switch-mode",
        "unique-id-http", "unique-id-tcp", "backend", "httplog-clf-tcp"])
def test_formats_are_checked_per_proxy_like_haproxy(tmp_path, capsys, text: str) -> None:  # type: ignore[no-untyped-def]
    assert_text_like_haproxy(tmp_path, capsys, text)


def test_log_format_sd_is_reported_at_its_own_line(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Where lb differs on purpose: HAProxy 2.6.12 names the log-format line for a
    log-format-sd error (or "(null):0" without one); lb names the log-format-sd's."""
    from lb.__main__ import check_mode, parse_args

    path = tmp_path / "sd.cfg"
    path.write_text(f"defaults\n  mode tcp\n{T}frontend fe\n  bind 127.0.0.1:12345\n"
                    '  log-format-sd "%r"\n  default_backend b\nbackend b\n'
                    "  server s1 127.0.0.1:12346\n")
    assert check_mode(parse_args(["-c", "-f", str(path)])) == 1
    err = capsys.readouterr().err
    assert (f"Parsing [{path}:8]: failed to parse log-format-sd : format variable 'r' is "
            "reserved for HTTP mode.") in err
