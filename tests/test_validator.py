"""`lb -c` / `lb -cc`: output format, exit codes, JSON, WebSocket lint and the seed configs.

Runs the real command (`python -m lb`) in a subprocess; nothing is resolved or
connected (the seed configs name 192.168.x addresses).
"""

import glob
import json
import os
import subprocess
import sys

import pytest

from lb.config import load, load_text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = sorted(glob.glob(os.path.join(ROOT, "conf", "seed-*.cfg")))
GOOD = ("defaults\n mode http\n timeout client 5s\n timeout server 5s\n timeout connect 1s\n"
        "frontend f\n bind 127.0.0.1:18080\n default_backend b\nbackend b\n"
        " server s1 127.0.0.1:8080\n")


def lb(*args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    # (errors="replace": lb quotes a configuration's invalid UTF-8 bytes as they are)
    return subprocess.run([sys.executable, "-m", "lb", *args], capture_output=True, text=True,
                          errors="replace", cwd=ROOT, env=e, timeout=60)


def write(tmp_path, text, name="t.cfg"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_valid_config(tmp_path):
    r = lb("-c", "-f", write(tmp_path, GOOD))
    assert (r.returncode, r.stdout, r.stderr) == (0, "Configuration file is valid\n", "")
    r = lb("-c", "-q", "-f", write(tmp_path, GOOD))
    assert (r.returncode, r.stdout) == (0, "")


def test_warnings_and_zero_warning(tmp_path):
    path = write(tmp_path, GOOD.replace(" timeout client 5s\n", ""))
    r = lb("-c", "-f", path)
    assert r.returncode == 0
    assert r.stdout == "Warnings were found.\nConfiguration file is valid\n"
    lines = r.stderr.splitlines()
    pid = str(r.stderr.split("(", 1)[1].split(")", 1)[0])
    assert lines[0] == f"[NOTICE]   ({pid}) : lb version is " + lines[0].rsplit(" ", 1)[1]
    assert lines[2] == f"[WARNING]  ({pid}) : config : missing timeouts for frontend 'f'."
    assert lines[3].startswith("   | While not properly invalid")
    r = lb("-c", "-dW", "-f", path)
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1] == (f"[ALERT]    ({r.stderr.split('(')[1].split(')')[0]})"
                                         " : config : Some warnings were found and "
                                         "'zero-warning' is set. Aborting.")
    zw = write(tmp_path, "global\n zero-warning\n", "zw.cfg")
    assert lb("-c", "-f", zw, "-f", path).returncode == 1


def test_soft_alerts_do_not_fail(tmp_path):
    # checked against HAProxy 2.6.12: printed as ALERT, exit 0 even with -dW
    path = write(tmp_path, "global\n maxconn 10\n maxconn 20\n" + GOOD)
    r = lb("-c", "-dW", "-f", path)
    assert (r.returncode, r.stdout) == (0, "Configuration file is valid\n")
    assert "[ALERT]" in r.stderr and "'maxconn' already specified. Continuing." in r.stderr
    text = GOOD.replace("defaults\n", "defaults d1\n").replace("frontend f\n",
                                                                "frontend f from d1\n")
    r = lb("-c", "-f", write(tmp_path, text, "nd.cfg"))
    assert r.returncode == 0 and "is explicitly referenced by another proxy and implicitly " \
        "used here." in r.stderr


def test_errors_exit_1_with_haproxy_lines(tmp_path):
    path = write(tmp_path, GOOD + " weight 3\n")
    r = lb("-c", "-f", path)
    assert r.returncode == 1 and r.stdout == ""
    body = [ln.split(" : config : ", 1)[1] for ln in r.stderr.splitlines()
            if " : config : " in ln]
    assert body == [f"parsing [{path}:11] : unknown keyword 'weight' in 'backend' section",
                    f"Error(s) found in configuration file : {path}",
                    "Fatal errors found in configuration."]
    assert r.stderr.splitlines()[2].startswith("[ALERT]    (")


def test_missing_file_and_no_listener(tmp_path):
    r = lb("-c", "-f", str(tmp_path / "nope.cfg"))
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1].endswith(
        f"Cannot open configuration file/directory {tmp_path / 'nope.cfg'} : No such file or "
        "directory")
    r = lb("-c", "-f", write(tmp_path, "defaults\n timeout client 1s\nbackend b\n"))
    assert (r.returncode, r.stdout) == (
        2, "Configuration file has no error but will not start (no listener) => exit(2).\n")


def test_directory_and_double_dash(tmp_path):
    d = tmp_path / "conf.d"
    d.mkdir()
    (d / "b.cfg").write_text("backend b\n server s1 127.0.0.1:8080\n")
    (d / "a.cfg").write_text("defaults\n mode http\n timeout client 5s\n timeout server 5s\n"
                             " timeout connect 1s\nfrontend f\n bind 127.0.0.1:18080\n"
                             " default_backend b\n")
    (d / "ignored.txt").write_text("garbage\n")
    res = load([str(d)])
    assert res.ok and res.files == (str(d / "a.cfg"), str(d / "b.cfg"))
    assert lb("-c", "-f", str(d)).returncode == 0
    assert lb("-c", "--", str(d / "a.cfg"), str(d / "b.cfg")).returncode == 0


def test_json_output(tmp_path):
    path = write(tmp_path, GOOD + " balanse roundrobin\n")
    r = lb("-c", "--format", "json", "-f", path)
    assert r.returncode == 1
    objs = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert objs == [{"file": path, "line": 11, "column": 2, "severity": "alert",
                     "code": "unknown-keyword",
                     "message": "unknown keyword 'balanse' in 'backend' section; did you mean "
                                "'balance' maybe ?",
                     "suggestion": "balance"}]
    r = lb("-c", "--format=json", "-f", write(tmp_path, GOOD))
    assert (r.returncode, r.stdout) == (0, "")


@pytest.mark.parametrize("cond,code", [("1", 0), ("0", 1), ("defined(LBTEST_VAR)", 0),
                                       ("streq(a,b)", 1), ("foo(", 2), ("1 2", 2)])
def test_check_condition(cond, code):
    r = lb("-cc", cond, env={"LBTEST_VAR": "x"})
    assert r.returncode == code
    if code == 2:
        assert "Failed to evaluate condition: " in r.stderr


def test_version_and_bad_flag():
    r = lb("-v")
    assert r.returncode == 0 and r.stdout.startswith("lb version ")
    r = lb("-vv")
    assert "pyparsing" in r.stdout
    r = lb("-c", "--bogus")
    assert r.returncode == 1 and "unknown option '--bogus'" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("path", SEEDS, ids=os.path.basename)
def test_seed_configs_validate(path):
    assert len(SEEDS) == 5
    with open(path) as fh:
        assert fh.readline().startswith("# Source: shared/seeds/")
    r = lb("-c", "-f", path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith("Configuration file is valid\n")
    assert "Traceback" not in r.stderr


def test_seed_002_advanced_recoveries():
    path = os.path.join(ROOT, "conf", "seed-002-advanced.cfg")
    res = load([path])
    assert res.ok
    codes = [d.code for d in res.diagnostics]
    assert {"wrapped-line", "mangled-crlf", "httpchk-hidden-headers", "ws-check-key"} <= \
        set(codes)
    wrapped = next(d for d in res.diagnostics if d.code == "wrapped-line")
    assert wrapped.line == 53 and "'hdr_w' + 'ebsocket_key'" in wrapped.text
    ws = res.config.backend("bk_ws")
    rule = ws.http_request_rules[0]
    assert rule.cond_text == ("if ! hdr_connection_upgrade ! hdr_upgrade_websocket ! "
                              "hdr_websocket_key ! hdr_websocket_version")
    send = ws.check.steps[0]
    assert (send.method, send.uri, send.version) == ("GET", "/", "HTTP/1.1")
    assert send.headers == (("Host", "ws.domain.com"), ("Connection", "Upgrade"),
                            ("Upgrade", "websocket"), ("Sec-WebSocket-Key", "haproxy"),
                            ("Sec-WebSocket-Version", "13"),
                            ("Sec-WebSocket-Protocol", "echo-protocol"))
    assert ws.check.steps[1].pattern == "101"
    assert [s.port for s in ws.servers] == [8080, 8080]
    # --strict turns the three recoveries into errors
    strict = load([path], strict=True)
    assert not strict.ok
    assert {d.code for d in strict.diagnostics if d.fatal} >= {"wrapped-line", "mangled-crlf",
                                                               "ws-check-key"}
    assert lb("-c", "--strict", "-f", path).returncode == 1


def test_seed_003_legacy_timeouts():
    res = load([os.path.join(ROOT, "conf", "seed-003-upgrade.cfg")])
    assert res.ok
    be = res.config.backend("ws")
    fe = res.config.frontend("public")
    assert (be.timeouts.connect, be.timeouts.server, fe.timeouts.client) == (5.0, 600.0, 50.0)
    assert fe.maxconn == 2000 and fe.options.http_server_close
    assert [t.address for t in fe.logs] == ["127.0.0.1", "127.0.0.1"]
    assert res.config.global_.uid == 99 and res.config.global_.daemon
    assert [d.code for d in res.diagnostics].count("legacy-keyword") == 3


def test_wrapped_line_needs_declared_acl():
    base = ("defaults\n mode http\n timeout client 1s\n timeout server 1s\n timeout connect 1s\n"
            "backend b\n acl is_websocket hdr(upgrade) -i websocket\n")
    res = load_text(base + " http-request deny if ! is_web\nsocket\n")
    assert any(d.code == "wrapped-line" for d in res.diagnostics) and res.ok
    res = load_text(base + " http-request deny if ! is_web\nfoo\n")
    assert not res.ok and any(d.code == "unknown-acl" for d in res.diagnostics)
    res = load_text(base + " http-request deny if ! is_web\n# comment\nsocket\n")
    assert not res.ok and not any(d.code == "wrapped-line" for d in res.diagnostics)


WS_BASE = ("defaults\n mode http\n timeout client 30s\n timeout server 30s\n"
           " timeout connect 5s\n")


def lint_codes(text):
    res = load_text(text)
    assert res.ok, [d.message() for d in res.diagnostics]
    return [d.code for d in res.diagnostics]


def test_lint_tunnel_timeout():
    text = (WS_BASE + "frontend f\n bind :80\n option http-server-close\n"
            " acl is_ws hdr(Upgrade) -i websocket\n use_backend app_ws if is_ws\n"
            " default_backend web\nbackend web\n server s 1.1.1.1:80\n"
            "backend app_ws\n server s 1.1.1.1:81\n")
    assert lint_codes(text) == ["ws-no-tunnel-timeout"]
    res = load_text(text)
    d = res.diagnostics[0]
    assert d.message() == ("backend 'app_ws' can receive upgraded (WebSocket) connections but "
                           "no 'timeout tunnel' applies: idle WebSockets are governed by "
                           "'timeout server' (30s) / 'timeout client' (30s).")
    assert lint_codes(text.replace("backend app_ws\n", "backend app_ws\n timeout tunnel 1h\n")) \
        == []


def test_lint_check_101_without_upgrade_headers():
    text = (WS_BASE + "backend b\n option httpchk GET /ws HTTP/1.1\n"
            " http-check expect status 101\n server s 1.1.1.1:80 check\n")
    assert "ws-check-no-upgrade" in lint_codes(text)
    fixed = text.replace(" http-check expect", " http-check send hdr Connection Upgrade hdr "
                         "Upgrade websocket\n http-check expect")
    assert "ws-check-no-upgrade" not in lint_codes(fixed)


def test_lint_mixed_frontend_without_server_close():
    text = (WS_BASE + " timeout tunnel 1h\nfrontend f\n bind :80\n"
            " acl is_ws hdr(Upgrade) -i websocket\n use_backend ws if is_ws\n"
            " default_backend web\nbackend web\n server s 1.1.1.1:80\n"
            "backend ws\n server s 1.1.1.1:81\n")
    assert lint_codes(text) == ["ws-mixed-keepalive"]
    assert lint_codes(text.replace("frontend f\n", "frontend f\n option http-server-close\n")) \
        == []
    assert lint_codes(text.replace("hdr(Upgrade) -i websocket", "path_beg /ws")) == []


def test_no_traceback_on_garbage(tmp_path):
    p = tmp_path / "bin.cfg"
    p.write_bytes(b"global\n\xff\xfe\x00\x01 \"'\\x\n\x80frontend\n")
    r = lb("-c", "-f", str(p))
    assert r.returncode == 1 and "Traceback" not in r.stderr


def test_zero_warning_makes_legacy_forms_errors():
    path = os.path.join(ROOT, "conf", "seed-003-uri.cfg")
    r = lb("-c", "-dW", "-f", path)
    assert r.returncode == 1
    assert "[ALERT]" in r.stderr and "the 'contimeout' directive is not supported anymore " \
        "since HAProxy 2.1. Use 'timeout connect'.\n" in r.stderr


def test_directory_skips_dot_files_and_refuses_a_dangling_cfg(tmp_path):
    """HAProxy 2.6.12 with `-f <dir>`: names starting with a dot are skipped (lb used to
    load them); a `*.cfg` it cannot open fails the load (lb used to skip it)."""
    d = tmp_path / "conf.d"
    d.mkdir()
    (d / "10-main.cfg").write_text(GOOD)
    (d / ".disabled.cfg").write_text("bogus3\n")
    (d / ".#10-main.cfg").write_text("bogus4\n")  # an editor's lock file
    (d / "notes.txt").write_text("bogus5\n")
    r = lb("-c", "-f", str(d))
    assert r.returncode == 0, r.stderr
    assert "bogus" not in r.stderr
    (d / "20-gone.cfg").symlink_to(tmp_path / "removed.cfg")
    r = lb("-c", "-f", str(d))
    assert r.returncode == 1
    assert (f"Cannot open configuration file/directory {d / '20-gone.cfg'} : "
            "No such file or directory") in r.stderr
