#!/usr/bin/env python3
"""Record what real HAProxy decides for the table in ``cases.py`` → ``results.json``.

Usage (from the repository root; needs /usr/sbin/haproxy, loopback only):

    .venv/bin/python tests/haproxy_compat/run_haproxy.py

What it does:
1. Builds one haproxy.cfg with every ACL of ``cases.ACLS`` (``acl aN <words>``), one
   ``set-var(txn.aN)`` rule per ACL and one for its negation (``if !aN``), and an
   ``http-request return ... lf-string`` whose body lists the ACL variables, every
   ``%[sample]`` of ``cases.SAMPLES`` and every string of ``cases.FORMATS``.
2. A second frontend sends ``/resp/<id>`` requests to a tiny loopback server answering
   ``cases.RESPONSES[id]``; ``http-response`` rules report ``cases.RES_ACLS`` and
   ``cases.RES_SAMPLES`` in response headers.
3. Sends each raw request of ``cases.REQUESTS`` over a fresh socket (IPv6 ones to ::1)
   and parses the answers.
4. Runs ``haproxy -c`` on one small config per ``cases.ERRORS`` entry and keeps the
   ALERT/WARNING lines.

The pytest side (tests/test_match_haproxy_table.py) only reads results.json.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import cases  # noqa: E402

HAPROXY = "/usr/sbin/haproxy"


def free_port(family: int = socket.AF_INET) -> int:
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        return s.getsockname()[1]


def cfg_word(w: str) -> str:
    """Quote one lexed word so HAProxy's lexer gives it back unchanged."""
    if w and re.fullmatch(r"[A-Za-z0-9_.:/,()=*^$\[\]+?!|{}-]+", w) and "\\" not in w:
        return w
    if "'" in w:
        raise ValueError(f"cannot quote {w!r}")
    return "'" + w + "'"


def lf_quote(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


def build_config(p4: int, p6: int, pres: int, psrv: int) -> str:
    lines = [
        "global",
        "    maxconn 200",
        "defaults",
        "    mode http",
        "    timeout client 5s",
        "    timeout server 5s",
        "    timeout connect 2s",
        "frontend f",
        f"    bind 127.0.0.1:{p4}",
        f"    bind ipv6@::1:{p6}",
    ]
    for i, words in enumerate(cases.ACLS):
        lines.append(f"    acl a{i} " + " ".join(cfg_word(w) for w in words))
    for i in range(len(cases.ACLS)):
        lines.append(f"    http-request set-var(txn.a{i}) int(1) if a{i}")
        lines.append(f"    http-request set-var(txn.n{i}) int(0) if !a{i}")
    for i, words in enumerate(cases.CONDITIONS):
        cond = " ".join(cfg_word(w) for w in words)
        lines.append(f"    http-request set-var(txn.c{i}) int(1) if {cond}")
        lines.append(f"    http-request set-var(txn.u{i}) int(0) unless {cond}")
    body = []
    for i in range(len(cases.CONDITIONS)):
        body.append(f"c{i}=%[var(txn.c{i})]%[var(txn.u{i})]\\n")
    for i in range(len(cases.ACLS)):
        body.append(f"a{i}=%[var(txn.a{i})]%[var(txn.n{i})]\\n")
    for j, s in enumerate(cases.SAMPLES):
        body.append(f"s{j}=%[{lf_quote(s)}]\\n")
    for k, f in enumerate(cases.FORMATS):
        body.append(f"f{k}={lf_quote(f)}\\n")
    body.append("port=%[src_port]/%[dst_port]\\n")
    lines.append('    http-request return status 200 content-type text/plain lf-string "'
                 + "".join(body) + '"')
    lines += [
        "frontend fr",
        f"    bind 127.0.0.1:{pres}",
        "    default_backend b",
        "backend b",
        f"    server s 127.0.0.1:{psrv}",
    ]
    for i, words in enumerate(cases.RES_ACLS):
        lines.append(f"    acl r{i} " + " ".join(cfg_word(w) for w in words))
    for i in range(len(cases.RES_ACLS)):
        lines.append(f"    http-response set-header x-ra{i} 1 if r{i}")
        lines.append(f"    http-response set-header x-rn{i} 1 if !r{i}")
    for j, s in enumerate(cases.RES_SAMPLES):
        lines.append(f'    http-response set-header x-rs{j} "%[{lf_quote(s)}]"')
    return "\n".join(lines) + "\n"


def serve_responses(sock: socket.socket, stop: threading.Event) -> None:
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            c, _ = sock.accept()
        except TimeoutError:
            continue
        with c:
            c.settimeout(2)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = c.recv(4096)
                if not chunk:
                    break
                data += chunk
            m = re.match(rb"[A-Z]+ /resp/([a-z0-9]+)", data)
            rid = m.group(1).decode() if m else ""
            c.sendall(cases.RESPONSES.get(rid, b"HTTP/1.1 500 X\r\nContent-Length: 0\r\n\r\n"))


def send(raw: bytes, port: int, v6: bool = False) -> tuple[bytes, int]:
    fam = socket.AF_INET6 if v6 else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(("::1" if v6 else "127.0.0.1", port))
        sport = s.getsockname()[1]
        s.sendall(raw)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            out += chunk
            head, sep, body = out.partition(b"\r\n\r\n")
            m = re.search(rb"(?i)\r\ncontent-length: *([0-9]+)", head)
            if sep and m and len(body) >= int(m.group(1)):
                break
            if sep and raw.startswith(b"HEAD"):
                break
        return out, sport


def parse_body(resp: bytes) -> dict[str, str]:
    head, _, body = resp.partition(b"\r\n\r\n")
    out = {}
    for line in body.decode("latin-1").split("\n"):
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def parse_headers(resp: bytes) -> dict[str, str]:
    head = resp.partition(b"\r\n\r\n")[0].decode("latin-1")
    out = {}
    for line in head.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        out[k.strip().lower()] = v.strip()
    return out


def run_errors(workdir: str) -> dict[str, list[str]]:
    out = {}
    for name, frag in cases.ERRORS.items():
        cfg = ["defaults", "    mode http", "    timeout client 5s", "    timeout server 5s",
               "    timeout connect 2s", "frontend f", "    bind 127.0.0.1:18999",
               *("    " + ln for ln in frag), "    http-request return status 200"]
        path = os.path.join(workdir, f"err_{name}.cfg")
        with open(path, "w") as f:
            f.write("\n".join(cfg) + "\n")
        p = subprocess.run([HAPROXY, "-c", "-f", path], capture_output=True, text=True,
                           cwd=os.path.join(HERE, "patterns"), timeout=20)
        msgs = []
        for line in (p.stdout + p.stderr).splitlines():
            if line.startswith("[NOTICE]") or not line.strip():
                continue
            if line.startswith(("[ALERT]", "[WARNING]", "  ")):
                msgs.append(re.sub(r"^(\[\w+\]\s+)\(\d+\)", r"\1(PID)",
                                   line.replace(path, "CFG")))
        out[name] = msgs
    return out


def run_log_formats(workdir: str) -> dict[str, str | None]:
    """One frontend per cases.LOG_FORMATS entry; returns format -> logged text."""
    lines = ["global", "    log stdout format raw local0", "defaults", "    mode http",
             "    log global", "    timeout client 5s", "    timeout server 5s",
             "    timeout connect 2s"]
    ports = []
    for k, lf in enumerate(cases.LOG_FORMATS):
        port = free_port()
        ports.append(port)
        lines += [f"frontend fl{k}", f"    bind 127.0.0.1:{port}"]
        for var, expr in cases.LOG_VARS.items():
            lines.append(f"    http-request set-var({var}) {expr}")
        lines.append(f'    log-format "L{k}={lf_quote(lf)}"')
        lines.append("    http-request return status 200")
    path = os.path.join(workdir, "logs.cfg")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    proc = subprocess.Popen([HAPROXY, "-db", "-f", path], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    try:
        for port in ports:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        for port in ports:
            send(cases.LOG_REQUEST, port)
        time.sleep(0.5)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    got: dict[str, str | None] = {lf: None for lf in cases.LOG_FORMATS}
    for line in out.decode("latin-1").splitlines():
        m = re.match(r"L(\d+)=(.*)$", line)
        if m:
            got[cases.LOG_FORMATS[int(m.group(1))]] = m.group(2)
    return got


def main() -> int:
    version = subprocess.run([HAPROXY, "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    p4, p6, pres = free_port(), free_port(socket.AF_INET6), free_port()
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    psrv = srv.getsockname()[1]
    stop = threading.Event()
    t = threading.Thread(target=serve_responses, args=(srv, stop), daemon=True)
    t.start()
    with tempfile.TemporaryDirectory() as tmp:
        cfg_path = os.path.join(tmp, "compat.cfg")
        with open(cfg_path, "w") as f:
            f.write(build_config(p4, p6, pres, psrv))
        check = subprocess.run([HAPROXY, "-c", "-f", cfg_path], capture_output=True, text=True,
                               cwd=os.path.join(HERE, "patterns"))
        warnings = [ln for ln in (check.stdout + check.stderr).splitlines() if "WARNING" in ln
                    or "ALERT" in ln]
        if check.returncode != 0:
            print(check.stdout, check.stderr)
            return 1
        proc = subprocess.Popen([HAPROXY, "-db", "-f", cfg_path], cwd=os.path.join(HERE, "patterns"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", p4), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            results: dict[str, dict] = {}
            for rid, raw in cases.REQUESTS.items():
                v6 = rid in cases.V6_REQUESTS
                resp, sport = send(raw, p6 if v6 else p4, v6)
                status = int(resp.split(b" ", 2)[1]) if resp.startswith(b"HTTP/") else 0
                body = parse_body(resp)
                acls = {}
                for i, words in enumerate(cases.ACLS):
                    v = body.get(f"a{i}")
                    acls[" ".join(words)] = {"1": True, "0": False}.get(v, v)
                conds = {}
                for i, words in enumerate(cases.CONDITIONS):
                    v = body.get(f"c{i}")
                    conds[" ".join(words)] = {"1": True, "0": False}.get(v, v)
                samples = {s: body.get(f"s{j}") for j, s in enumerate(cases.SAMPLES)}
                formats = {f: body.get(f"f{k}") for k, f in enumerate(cases.FORMATS)}
                results[rid] = {
                    "status": status, "src_port": sport, "dst_port": p6 if v6 else p4,
                    "port_line": body.get("port"), "acls": acls, "conditions": conds,
                    "samples": samples,
                    "formats": formats,
                }
            res_results: dict[str, dict] = {}
            for rid in cases.RESPONSES:
                resp, _ = send(cases.RES_REQUEST % rid.encode(), pres)
                h = parse_headers(resp)
                acls = {}
                for i, words in enumerate(cases.RES_ACLS):
                    a, n = h.get(f"x-ra{i}"), h.get(f"x-rn{i}")
                    acls[" ".join(words)] = True if a == "1" and n is None else (
                        False if n == "1" and a is None else f"{a}/{n}")
                samples = {s: h.get(f"x-rs{j}") for j, s in enumerate(cases.RES_SAMPLES)}
                res_results[rid] = {"acls": acls, "samples": samples}
        finally:
            proc.terminate()
            proc.wait(10)
        errors = run_errors(tmp)
        logs = run_log_formats(tmp)
    stop.set()
    t.join(2)
    srv.close()
    out = {
        "haproxy": version,
        "generated_by": "tests/haproxy_compat/run_haproxy.py",
        "config_warnings": [re.sub(r"^(\[\w+\]\s+)\(\d+\)", r"\1(PID)", w)
                            for w in warnings],
        "requests": results,
        "responses": res_results,
        "errors": errors,
        "log_lines": logs,
    }
    with open(os.path.join(HERE, "results.json"), "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote results.json ({len(results)} requests, {len(cases.ACLS)} ACLs,"
          f" {len(cases.SAMPLES)} samples)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
