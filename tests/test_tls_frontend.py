"""TLS served by `bind ... ssl` (lb.tls.frontend), checked against HAProxy 2.6.12.

Certificates are made for the module with the `openssl` tool: a CA, two server
certificates (`a.test`, and `b.test` with a wildcard name), a client certificate
signed by the CA and one that is self-signed. What was seen on HAProxy 2.6.12 with
the same configs, and is compared live below:

- `lb -c` and `haproxy -c` print the same alerts for bad certificate, CA and CRL
  files, a line without `crt`, verification without a CA, refused cipher and curve
  settings (one alert, printed again bare below it), and no version left.
- The `ssl_fc*` fetches give the same values over the same handshake (name asked
  for, version, cipher, key size, ALPN), and `%ft` ends with `~`.
- A failed handshake is logged `<ip>:<port> [<date>] fe/1: <why>` with "SSL
  handshake failure" (plain HTTP sent to the TLS port), "Connection closed during
  SSL handshake" (closed without a byte), and "Timeout during SSL handshake" (after
  `timeout client`); `option dontlognull` keeps only the first. It counts in
  `conn_tot` and not in `stot`.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
import time

import pytest
from websockets.sync.client import connect as ws_connect

from tests.backends import WsBackend
from tests.lbproc import LbProcess, RawBackend
from tests.support_e2e import HAPROXY, Haproxy, answer_ok, lb_or_haproxy
from tests.test_check_formats import same_as_haproxy

pytestmark = pytest.mark.skipif(not os.path.exists(HAPROXY), reason="needs haproxy")


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def _signed(d: str, name: str, cn: str, san: str | None, ca: str) -> str:
    key, csr, crt = (os.path.join(d, f"{name}.{x}") for x in ("key", "csr", "crt"))
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", key, "-out", csr, "-subj", f"/O=lb tests/CN={cn}")
    ext = os.path.join(d, f"{name}.ext")
    with open(ext, "w") as fh:
        fh.write(f"subjectAltName={san}\n" if san else "basicConstraints=CA:FALSE\n")
    _openssl("x509", "-req", "-in", csr, "-CA", ca + ".crt", "-CAkey", ca + ".key",
             "-CAcreateserial", "-days", "30", "-out", crt, "-extfile", ext)
    pem = os.path.join(d, f"{name}.pem")
    with open(pem, "wb") as out:
        for part in (crt, key):
            with open(part, "rb") as fh:
                out.write(fh.read())
    return pem


@pytest.fixture(scope="module")
def pki(tmp_path_factory):  # type: ignore[no-untyped-def]
    d = str(tmp_path_factory.mktemp("pki"))
    ca = os.path.join(d, "ca")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", ca + ".key", "-out", ca + ".crt", "-days", "30",
             "-subj", "/O=lb tests/CN=lb test CA")
    other = os.path.join(d, "other")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", other + ".key", "-out", other + ".crt", "-days", "30",
             "-subj", "/CN=stranger")
    with open(other + ".pem", "wb") as out:
        for part in (other + ".crt", other + ".key"):
            with open(part, "rb") as fh:
                out.write(fh.read())
    certs = {
        "a": _signed(d, "a", "a.test", "DNS:a.test", ca),
        "b": _signed(d, "b", "b.test", "DNS:b.test,DNS:*.b.test", ca),
        "client": _signed(d, "client", "client one", None, ca),
        "ca": ca + ".crt", "ca_key": ca + ".key", "other": other + ".pem",
        "cert_only": os.path.join(d, "a.crt"), "key_only": os.path.join(d, "a.key"),
        "dir": d,
    }
    # a client certificate whose chain ends in a CA the servers do not trust
    rogue = os.path.join(d, "rogue")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", rogue + ".key", "-out", rogue + ".crt", "-days", "30",
             "-subj", "/CN=rogue CA")
    rogue_client = _signed(d, "rogue-client", "client two", None, rogue)
    with open(rogue_client, "ab") as out, open(rogue + ".crt", "rb") as fh:
        out.write(fh.read())
    certs["rogue_client"] = rogue_client
    os.makedirs(os.path.join(d, "crts"))
    for n in ("a", "b"):
        os.link(certs[n], os.path.join(d, "crts", f"{n}.pem"))
    with open(os.path.join(d, "list.txt"), "w") as fh:
        fh.write(f"# a comment\n{certs['a']} [alpn http/1.1] a.test\n{certs['b']} *.b.test !x.b.test\n")
    certs["list"] = os.path.join(d, "list.txt")
    for sub, files in (("cas", {"ca.pem": ca + ".crt", "key.pem": ca + ".key",
                                "ca.txt": ca + ".crt"}),
                       ("no-cas", {"key.pem": ca + ".key"})):
        os.makedirs(os.path.join(d, sub))
        for name, src in files.items():
            os.link(src, os.path.join(d, sub, name))
    return certs


def _client(pki, sni: str | None = "a.test", cert: str | None = None,  # type: ignore[no-untyped-def]
            alpn: list[str] | None = None, verify: bool = True) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=pki["ca"]) if verify else \
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def _chain_only(pki) -> ssl.SSLContext:  # type: ignore[no-untyped-def]
    """A client that verifies the certificate against the test CA but not its name,
    so that the certificate served for any name can be read."""
    ctx = ssl.create_default_context(cafile=pki["ca"])
    ctx.check_hostname = False
    return ctx


def _cn(peer: dict) -> str:
    return dict(x[0] for x in peer["subject"])["commonName"]  # type: ignore[no-any-return]


def _get(port: int, ctx: ssl.SSLContext, sni: str | None, path: str = "/") -> tuple[bytes, dict]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=sni) as s:
        peer = s.getpeercert()
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
        got = b""
        while chunk := s.recv(65536):
            got += chunk
        return got, peer


HTTP_DEFAULTS = """
defaults
  mode http
  timeout client 2s
  timeout server 2s
  timeout connect 1s
"""


# ---------------------------------------------------------------- lb -c vs haproxy -c

BAD_LINES = [
    "bind :18443 ssl",
    "bind :18443 ssl crt {dir}/nonexistent.pem",
    "bind :18443 ssl crt {cert_only}",
    "bind :18443 ssl crt {key_only}",
    "bind :18443 ssl crt {a} ca-file {dir}/nonexistent.pem",
    "bind :18443 ssl crt {a} ca-file {key_only}",
    "bind :18443 ssl crt {a} crl-file {dir}/nonexistent.pem",
    "bind :18443 ssl crt {a} crt-list {dir}/nonexistent",
    "bind :18443 ssl crt {a} verify required",
    "bind :18443 ssl crt {a} verify optional",
    "bind :18443,:18444 ssl crt {a} ciphers BOGUS",
    "bind :18443 ssl crt {a} verify required ciphers BOGUS curves BOGUS ciphersuites BOGUS",
    "bind :18443 ssl crt {a} ecdhe BOGUS",
    "bind :18443 ssl crt {a} no-tlsv12 no-tlsv13",
    "bind :18443 ssl crt {a} ssl-min-ver TLSv1.3 ssl-max-ver TLSv1.2",
    "bind :18443 ssl verify required ciphers BOGUS",
]
GOOD_LINES = [
    "bind :18443 ssl crt {a}",
    "bind :18443 ssl crt {dir}/crts",
    "bind :18443 ssl crt {a} crt {b} strict-sni",
    "bind :18443 ssl crt-list {list}",
    "bind :18443 ssl crt {a} ca-file {ca} verify required crl-file {ca}",
    "bind :18443 ssl crt {a} alpn h2,http/1.1 ciphers HIGH ciphersuites "
    "TLS_AES_128_GCM_SHA256 curves X25519:P-256 ecdhe prime256v1",
    "bind :18443 ssl crt {a} force-tlsv12 no-tls-tickets prefer-client-ciphers",
    "bind :18443 crt {a}",
    # a CA directory: its .pem/.crt/.cer files, HAProxy's warnings for the others
    "bind :18443 ssl crt {a} ca-file {dir}/cas verify required crl-file {dir}/cas",
    "bind :18443 ssl crt {a} ca-file {dir}/no-cas verify required",
    "bind :18443 ssl crt {a} ca-file {dir}/crts verify required",
]


@pytest.mark.parametrize("line", [
    "server s 127.0.0.1:443 ssl ca-file {dir}/cas crl-file {dir}/no-cas",
    "server s 127.0.0.1:443 ssl ca-file {dir}/no-cas",
])
def test_server_ca_directories_like_haproxy(tmp_path, capsys, pki, line: str) -> None:  # type: ignore[no-untyped-def]
    same_as_haproxy(tmp_path, capsys, "backend b\n " + line.format(**pki) + "\n")


@pytest.mark.parametrize("line", BAD_LINES + GOOD_LINES)
def test_bind_tls_lines_like_haproxy(tmp_path, capsys, pki, line: str) -> None:  # type: ignore[no-untyped-def]
    same_as_haproxy(tmp_path, capsys, "frontend f\n " + line.format(**pki) + "\n")


# `crt-list` lines with `[...]` options: (the bind line's own options, the lines)
CRT_LIST_CASES = [
    ("", ["{a} [alpn h2,http/1.1 ssl-min-ver TLSv1.3 verify optional ca-file {ca}] a.test",
          "{b} [nosuch] b.test"]),
    ("", ["{a} [ssl-min-ver TLSv1.9]"]),
    ("", ["{a} [verify maybe]"]),
    ("", ["{a} [verify maybe ssl-min-ver TLSv1.9]"]),  # the last error is told
    ("", ["{a} [ssl-min-ver TLSv1.9 verify]"]),  # a missing word before ']'
    ("", ["{a} [alpn]"]), ("", ["{a} [ciphers]"]),
    ("", ["{a} [ca-file {dir}/nonexistent.pem]"]),
    ("", ["{a} [strict-sni]"]),  # a bind option that is not a crt-list one
    ("", ["{a} [ciphers BOGUS]", "{b} [ciphers BOGUS2]"]),
    ("", ["{a} [verify required]", "{b} [verify required]"]),
    ("", ["{a} [curves BOGUS ecdhe BOGUS ciphersuites BOGUS]"]),
    ("", ["{a} [curves X25519 ecdhe BOGUS]"]), ("", ["{a} [ecdhe BOGUS]"]),
    ("", ["{a} [ssl-max-ver TLSv1.0]"]), ("", ["{a} [ssl-max-ver TLSv1.1]"]),
    ("ciphers BOGUS2", ["{a} [ssl-max-ver TLSv1.0 ciphers BOGUS]", "{b}"]),
    ("crt {b} ciphers BOGUS", ["{a} [ciphers BOGUS3]"]),  # line order: list, then crt
    ("ssl-max-ver TLSv1.2", ["{a} [ssl-min-ver TLSv1.3]"]),
    ("ssl-min-ver TLSv1.3", ["{a} [ssl-max-ver TLSv1.2]", "{b} [ssl-max-ver TLSv1.2]"]),
    ("ssl-max-ver TLSv1.1", ["{a} [ssl-min-ver TLSv1.2]"]),
    ("ssl-max-ver TLSv1.1", ["{a} [ssl-max-ver TLSv1.3]"]),
    ("no-tlsv13", ["{a} [ssl-max-ver TLSv1.3 ssl-min-ver TLSv1.3]"]),
    ("", ["{a} [verify optional ca-file {ca} crl-file {ca} ca-verify-file {ca} no-ca-names "
          "allow-0rtt npn h2 ciphersuites TLS_AES_128_GCM_SHA256 curves P-256 ecdhe prime256v1]"]),
    # the shape of a line
    ("", ["{a} [alpn h2"]),  # no ']': the words after '[' are filters
    ("", ["{a} a.test [alpn h2]"]),  # filters before the options: a warning
    ("", ["{a} [alpn h2] [npn x]"]), ("", ["[alpn h2] {a}"]), ("", ["{a} ]"]),
    ("", ["{a} [alpn h2]]"]), ("", ["{a} [ ]"]), ("", ["{a}[alpn h2]a.test"]),
    ("", ["{a} a.test # not a comment here", "  # nor here", "#{a} [nosuch]"]),
]


@pytest.mark.parametrize(("options", "lines"), CRT_LIST_CASES)
def test_crt_list_options_like_haproxy(tmp_path, capsys, pki, options: str,  # type: ignore[no-untyped-def]
                                       lines: list[str]) -> None:
    listed = tmp_path / "list.txt"
    listed.write_text("".join(ln.format(**pki) + "\n" for ln in lines))
    same_as_haproxy(tmp_path, capsys, f"frontend f\n bind :18443 ssl crt-list {listed} "
                    f"{options.format(**pki)}\n")


# the global `ssl-default-bind-*` defaults, `crt-base` and `ca-base` under a bind line
GLOBAL_CASES = [
    "global\n ssl-default-bind-options ssl-min-ver TLSv1.3 no-tls-tickets\n"
    " ssl-default-bind-ciphers BOGUS\nfrontend f\n bind :18443 ssl crt {a}\n",
    "global\n ssl-default-bind-options bogus\n",
    "global\n ssl-default-bind-options strict-sni\n",
    "global\n ssl-default-bind-options\n",
    "global\n ssl-default-bind-ciphers\n",
    "global\n ssl-default-bind-curves\n",
    "global\n ssl-default-bind-options prefer-client-ciphers ssl-min-ver TLSv1.4\n",
    "global\n ssl-default-bind-curves BOGUS\nfrontend f\n bind :18443 ssl crt {a}\n",
    "global\n ssl-default-bind-ciphers BOGUS\nfrontend f\n bind :18443 ssl crt {a} ciphers HIGH\n",
    "global\n ssl-default-bind-options ssl-max-ver TLSv1.1 no-tlsv10\n"
    "frontend f\n bind :18443 ssl crt {a}\n",
    "global\n ssl-default-bind-options no-tlsv12 no-tlsv13\n"
    "frontend f\n bind :18443 ssl crt {a} no-tlsv10\n",
    "global\n ssl-default-bind-options force-tlsv13\nfrontend f\n bind :18443 ssl crt {a} no-tlsv13\n",
    "frontend f\n bind :18443 ssl crt {a} ssl-max-ver TLSv1.0 no-tlsv11\n",
    "frontend f\n bind :18443 ssl crt {a} ssl-min-ver TLSv1.0 no-tlsv12\n",
    "global\n crt-base {dir}\n ca-base {dir}\n"
    "frontend f\n bind :18443 ssl crt a.pem ca-file ca.crt verify required\n",
    "global\n crt-base {dir}\nfrontend f\n bind :18443 ssl crt nonexistent.pem\n",
    "global\n ca-base {dir}\nfrontend f\n bind :18443 ssl crt {a} ca-file nonexistent.pem\n",
]


@pytest.mark.parametrize("text", GLOBAL_CASES)
def test_global_bind_defaults_like_haproxy(tmp_path, capsys, pki, text: str) -> None:  # type: ignore[no-untyped-def]
    same_as_haproxy(tmp_path, capsys, text.format(**pki))


def test_global_bind_defaults_apply(pki) -> None:  # type: ignore[no-untyped-def]
    """`ssl-default-bind-options ssl-min-ver TLSv1.3` keeps a TLS 1.2 client out."""
    text = ("global\n ssl-default-bind-options ssl-min-ver TLSv1.3\n" + RETURN_FETCHES.format(
        a=pki["a"], fetches="%[ssl_fc_protocol]"))
    with LbProcess(text) as lb:
        only12 = _client(pki)
        only12.maximum_version = ssl.TLSVersion.TLSv1_2
        assert _refused(lb.ports["fe"], only12)
        got, _ = _get(lb.ports["fe"], _client(pki), "a.test")
        assert got.endswith(b"TLSv1.3")


# ---------------------------------------------------------------- traffic

FETCHES = ("ssl_fc ssl_fc_sni ssl_fc_has_sni ssl_fc_protocol ssl_fc_cipher "
           "ssl_fc_use_keysize ssl_fc_alg_keysize ssl_fc_alpn ssl_c_used ssl_fc_has_crt "
           "ssl_c_verify").split()
RETURN_FETCHES = HTTP_DEFAULTS + """frontend fe
  bind 127.0.0.1:@@fe@@ ssl crt {a} alpn http/1.1
  http-request return status 200 content-type text/plain lf-string "%ft {fetches}"
"""


def test_fetches_and_frontend_name_like_haproxy(pki) -> None:  # type: ignore[no-untyped-def]
    text = RETURN_FETCHES.format(a=pki["a"], fetches=" ".join(f"%[{f}]" for f in FETCHES))
    bodies = {}
    for kind in ("lb", "haproxy"):
        with lb_or_haproxy(kind, text) as px:
            got, _ = _get(px.ports["fe"], _client(pki, alpn=["http/1.1"]), "a.test")
            bodies[kind] = got.split(b"\r\n\r\n", 1)[1]
    assert bodies["lb"] == bodies["haproxy"]
    assert bodies["lb"].startswith(b"fe~ 1 a.test 1 TLSv1.3 ")
    assert bodies["lb"].endswith(b" http/1.1 0 0 0")


PROXY_CFG = HTTP_DEFAULTS + """frontend fe
  bind 127.0.0.1:@@fe@@ ssl crt {a} crt {b}
  bind 127.0.0.1:@@plain@@
  http-request set-header X-Proto https if {{ ssl_fc }}
  http-request set-header X-Proto http unless {{ ssl_fc }}
  http-request set-header X-Sni %[ssl_fc_sni] if {{ ssl_fc_has_sni }}
  default_backend be
backend be
  server s1 127.0.0.1:@@s1@@
"""


def test_requests_reach_the_server_in_clear_and_sni_picks_the_certificate(pki) -> None:  # type: ignore[no-untyped-def]
    with RawBackend(answer_ok) as srv, \
            LbProcess(PROXY_CFG.format(**pki), ports={"s1": srv.port}) as lb:
        got, peer = _get(lb.ports["fe"], _client(pki), "a.test")
        assert got.startswith(b"HTTP/1.1 200 OK\r\n") and got.endswith(b"ok")
        assert _cn(peer) == "a.test"
        got, peer = _get(lb.ports["fe"], _client(pki), "www.b.test")  # the wildcard
        assert _cn(peer) == "b.test"
        # a name no certificate serves, and no name at all: the first one
        _, peer = _get(lb.ports["fe"], _chain_only(pki), "nobody.test")
        assert _cn(peer) == "a.test"
        _, peer = _get(lb.ports["fe"], _chain_only(pki), None)
        assert _cn(peer) == "a.test"
        with socket.create_connection(("127.0.0.1", lb.ports["plain"]), timeout=5) as c:
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            while c.recv(65536):
                pass
        heads = [h for h in srv.received if h]
        assert b"x-proto: https\r\n" in heads[0].lower() and b"x-sni: a.test\r\n" in heads[0].lower()
        assert b"x-sni: www.b.test\r\n" in heads[1].lower()
        assert b"x-proto: https\r\n" in heads[3].lower() and b"x-sni" not in heads[3].lower()
        assert b"x-proto: http\r\n" in heads[4].lower() and b"x-sni" not in heads[4].lower()


STRICT = HTTP_DEFAULTS + """frontend fe
  bind 127.0.0.1:@@fe@@ ssl crt-list {list} strict-sni
  http-request return status 200 content-type text/plain lf-string "%[ssl_fc_sni]"
"""


def test_crt_list_filters_and_strict_sni(pki) -> None:  # type: ignore[no-untyped-def]
    with LbProcess(STRICT.format(**pki)) as lb:
        port = lb.ports["fe"]
        got, peer = _get(port, _client(pki), "a.test")
        assert got.endswith(b"a.test") and dict(x[0] for x in peer["subject"])["commonName"] == "a.test"
        _, peer = _get(port, _chain_only(pki), "y.b.test")  # the list's `*.b.test`
        assert _cn(peer) == "b.test"
        for sni in ("nobody.test", "x.b.test", None):  # unknown, excluded, none at all
            with pytest.raises(ssl.SSLError):
                _get(port, _client(pki, verify=False), sni)


VERIFY_ERRORS = HTTP_DEFAULTS + """frontend fe
  log 127.0.0.1:@@log@@ local0
  option httplog
  {dontlognull}
  bind 127.0.0.1:@@fe@@ ssl crt {a} ca-file {ca} verify {verify} {ignore}
  http-request return status 200 content-type text/plain lf-string "%[ssl_c_used] %[ssl_c_verify] %[ssl_c_err] %[ssl_c_ca_err] %[ssl_c_ca_err_depth] %[ssl_c_s_dn(CN)]"
"""


@pytest.mark.parametrize(("verify", "ignore"), [
    ("required", ""), ("optional", "crt-ignore-err all"), ("required", "ca-ignore-err 19"),
    ("optional", "crt-ignore-err 10,20 ca-ignore-err 2"),
    ("required", "crt-ignore-err 018")])  # (read as a number)
def test_client_certificate_errors_like_haproxy(pki, verify: str, ignore: str) -> None:  # type: ignore[no-untyped-def]
    """A self-signed client certificate (error 18 on the leaf), one whose chain ends
    in an unknown CA (error 19 one level up) and none at all: `crt-ignore-err` and
    `ca-ignore-err` let the errors they name by, and the `ssl_c_*err*` fetches tell
    them; a refused one is logged "SSL client certificate not trusted" or "SSL client
    CA chain cannot be verified", kept under `option dontlognull` (the first case).
    Values and log lines compared with HAProxy's."""
    text = VERIFY_ERRORS.format(verify=verify, ignore=ignore, **pki,
                                dontlognull="" if ignore else "option dontlognull")
    clients = [_client(pki, cert=pki["other"]), _client(pki, cert=pki["rogue_client"]),
               _client(pki)]
    seen = {}
    for kind in ("lb", "haproxy"):
        log = _Syslog()
        with lb_or_haproxy(kind, text, {"log": log.port}) as px:
            outcomes = [_outcome(px.ports["fe"], ctx, "a.test") for ctx in clients]
            lines = sorted(re.sub(r".*\] ", "", ln.strip()) for ln in log.drain(0.5)
                           if "fe/1:" in ln)
        seen[kind] = (outcomes, lines)
    assert seen["lb"] == seen["haproxy"]
    expected = {
        "required": (["refused", "refused", "refused"],
                     ["fe/1: SSL client CA chain cannot be verified", "fe/1: SSL client "
                      "certificate not trusted", "fe/1: SSL handshake failure"]),
        "optional crt-ignore-err all": (
            ["1 18 18 0 0 stranger", "refused", "0 0 0 0 0 "],
            ["fe/1: SSL client CA chain cannot be verified"]),
        "required ca-ignore-err 19": (
            ["refused", "1 19 0 19 1 client two", "refused"],
            ["fe/1: SSL client certificate not trusted", "fe/1: SSL handshake failure"]),
        "required crt-ignore-err 018": (
            ["1 18 18 0 0 stranger", "refused", "refused"],
            ["fe/1: SSL client CA chain cannot be verified", "fe/1: SSL handshake failure"]),
        "optional crt-ignore-err 10,20 ca-ignore-err 2": (
            ["refused", "refused", "0 0 0 0 0 "],
            ["fe/1: SSL client CA chain cannot be verified",
             "fe/1: SSL client certificate not trusted"]),
    }
    assert seen["lb"] == expected[f"{verify} {ignore}".strip()]


CRT_LIST_SETTINGS = HTTP_DEFAULTS + """frontend fe
  bind 127.0.0.1:@@fe@@ ssl crt-list {list}
  http-request return status 200 content-type text/plain lf-string "%[ssl_fc_sni] %[ssl_fc_protocol] %[ssl_fc_cipher] %[ssl_fc_alpn] %[ssl_c_used]"
"""
CRT_LIST_LINES = (
    "{a} [alpn http/1.1] a.test\n"
    "{b} [ssl-max-ver TLSv1.2 verify required ca-file {ca} ciphers ECDHE-ECDSA-AES128-GCM-SHA256] b.test\n"
    "{b} [ssl-min-ver TLSv1.3 ciphersuites TLS_CHACHA20_POLY1305_SHA256 curves P-384] c.b.test\n")


def _outcome(port: int, ctx: ssl.SSLContext, sni: str | None) -> str:
    try:
        got, _ = _get(port, ctx, sni)
    except (ssl.SSLError, ConnectionError):
        return "refused"
    return got.split(b"\r\n\r\n", 1)[1].decode() if got else "refused"


def test_crt_list_line_settings_like_haproxy(pki, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Each `crt-list` line's `[...]` settings serve the names of its line: ALPN,
    versions, client certificates, ciphers and TLS 1.3 suites, not curves (HAProxy
    2.6.12 does not switch them). The first line also serves a client without SNI.
    Outcomes compared with HAProxy's."""
    from lb.tls import openssl

    listed = tmp_path / "list.txt"
    listed.write_text(CRT_LIST_LINES.format(**pki))
    text = CRT_LIST_SETTINGS.format(list=listed)
    only12 = _chain_only(pki)
    only12.maximum_version = ssl.TLSVersion.TLSv1_2
    x25519 = _chain_only(pki)
    assert openssl.set_curves(x25519, "X25519")
    cases = [
        ("a.test", _client(pki, alpn=["h2", "http/1.1"])),
        (None, _client(pki, alpn=["h2", "http/1.1"], verify=False)),
        ("b.test", _client(pki, sni="b.test")),  # no client certificate
        ("b.test", _client(pki, cert=pki["client"])),
        ("c.b.test", _client(pki)),
        ("c.b.test", only12),  # below the line's ssl-min-ver
        # the line's curves do not count: HAProxy keeps the first context's
        ("c.b.test", x25519),
        ("a.test", only12),
    ]
    seen: dict[str, list[str]] = {}
    for kind in ("lb", "haproxy"):
        with lb_or_haproxy(kind, text) as px:
            seen[kind] = [_outcome(px.ports["fe"], ctx, sni) for sni, ctx in cases]
    assert seen["lb"] == seen["haproxy"]
    assert seen["lb"][:5] == [
        "a.test TLSv1.3 TLS_AES_256_GCM_SHA384 http/1.1 0",
        " TLSv1.3 TLS_AES_256_GCM_SHA384 http/1.1 0",
        "refused",
        "b.test TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256  1",
        "c.b.test TLSv1.3 TLS_CHACHA20_POLY1305_SHA256  0"]
    assert seen["lb"][5:7] == ["refused", seen["lb"][4]]
    assert seen["lb"][7].startswith("a.test TLSv1.2 ")


CLIENT_CERT = HTTP_DEFAULTS + """frontend fe
  bind 127.0.0.1:@@fe@@ ssl crt {a} ca-file {ca} verify {verify}
  http-request return status 200 content-type text/plain lf-string "%[ssl_c_used] %[ssl_c_s_dn] %[ssl_c_s_dn(CN)] %[ssl_c_i_dn(CN)] %[ssl_c_verify]"
"""


def _refused(port: int, ctx: ssl.SSLContext) -> bool:
    """The handshake fails, or (TLS 1.3: the client's certificate is judged after
    the client's side of the handshake) the connection ends without an answer."""
    try:
        got, _ = _get(port, ctx, "a.test")
    except (ssl.SSLError, ConnectionError):
        return True
    return got == b""


@pytest.mark.parametrize("verify", ["required", "optional"])
def test_client_certificates(pki, verify: str) -> None:  # type: ignore[no-untyped-def]
    text = CLIENT_CERT.format(verify=verify, **pki)
    with LbProcess(text) as lb, Haproxy(text) as hap:
        for port in (lb.ports["fe"], hap.ports["fe"]):
            got, _ = _get(port, _client(pki, cert=pki["client"]), "a.test")
            assert got.endswith(b"1 /O=lb tests/CN=client one client one lb test CA 0"), got
            assert _refused(port, _client(pki, cert=pki["other"]))  # a stranger's
            if verify == "required":
                assert _refused(port, _client(pki))
            else:
                got, _ = _get(port, _client(pki), "a.test")
                assert got.endswith(b"0    0"), got


HANDSHAKES = """
global
  log 127.0.0.1:@@log@@ local0
defaults
  mode http
  log global
  option httplog
  {dontlognull}
  timeout client 1s
  timeout server 2s
  timeout connect 1s
frontend fe
  bind 127.0.0.1:@@fe@@ ssl crt {a}
  http-request return status 200
"""


class _Syslog:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def drain(self, wait: float) -> list[str]:
        out = []
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                out.append(self.sock.recv(65536).decode())
            except TimeoutError:
                break
        return out


def _failed_handshakes(port: int) -> list[int]:
    """Plain HTTP to the TLS port, a close without a byte, and a client that says
    nothing until `timeout client`: the client ports, in that order."""
    ports = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        ports.append(c.getsockname()[1])
        c.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert c.recv(100) == b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        ports.append(c.getsockname()[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        ports.append(c.getsockname()[1])
        assert c.recv(100) == b""  # (closed by the handshake timeout)
    return ports


@pytest.mark.parametrize("dontlognull", ["", "option dontlognull"])
def test_failed_handshakes_are_logged_like_haproxy(pki, dontlognull: str) -> None:  # type: ignore[no-untyped-def]
    text = HANDSHAKES.format(dontlognull=dontlognull, **pki)
    seen = {}
    for kind in ("lb", "haproxy"):
        log = _Syslog()
        with lb_or_haproxy(kind, text, {"log": log.port}) as px:
            ports = _failed_handshakes(px.ports["fe"])
            lines = log.drain(0.5)
        mine = []
        for line in lines:
            mt = re.search(r"127\.0\.0\.1:(\d+) \[[^]]+\] (.*)$", line.strip())
            if mt and int(mt.group(1)) in ports:
                mine.append((ports.index(int(mt.group(1))), mt.group(2)))
        seen[kind] = sorted(mine)
    assert seen["lb"] == seen["haproxy"]
    expected = [(0, "fe/1: SSL handshake failure"),
                (1, "fe/1: Connection closed during SSL handshake"),
                (2, "fe/1: Timeout during SSL handshake")]
    assert seen["lb"] == (expected[:1] if dontlognull else expected)


COUNTERS = """
global
  stats socket {sock} level admin
defaults
  mode http
  timeout client 2s
  timeout server 2s
  timeout connect 1s
frontend fe
  bind 127.0.0.1:@@fe@@ ssl crt {a}
  http-request return status 200
"""


def test_counters_of_tls_connections(pki, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.stats_support import query
    sock = str(tmp_path / "lb.sock")
    with LbProcess(COUNTERS.format(sock=sock, **pki)) as lb:
        port = lb.ports["fe"]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"GET / HTTP/1.0\r\n\r\n")
            c.recv(100)
        _get(port, _client(pki), "a.test")
        time.sleep(0.2)
        info = dict(line.split(": ", 1) for line in query(sock, "show info").splitlines()
                    if ": " in line)
        stat = query(sock, "show stat").splitlines()
        head = stat[0].lstrip("# ").split(",")
        row = dict(zip(head, next(r for r in stat if r.startswith("fe,FRONTEND")).split(","),
                       strict=False))
    # (the start-up probe is one more failed handshake)
    assert info["CurrSslConns"] == "0" and int(info["CumSslConns"]) >= 2
    assert row["stot"] == "1" and int(row["conn_tot"]) >= 2


WS_CFG = """
defaults
  mode http
  timeout client 5s
  timeout server 5s
  timeout connect 1s
  timeout tunnel 5s
frontend fe
  bind 127.0.0.1:@@fe@@ ssl crt {a}
  default_backend ws
backend ws
  server w1 127.0.0.1:@@w1@@
"""


def test_websocket_over_tls(pki) -> None:  # type: ignore[no-untyped-def]
    with WsBackend("w1") as w1, \
            LbProcess(WS_CFG.format(**pki), ports={"w1": w1.port}) as lb:
        with ws_connect(f"wss://a.test:{lb.ports['fe']}/ws", ssl=_client(pki),
                        sock=socket.create_connection(("127.0.0.1", lb.ports["fe"])),
                        server_hostname="a.test", open_timeout=5) as ws:
            for i in range(20):
                ws.send(f"message {i}" * (i * 50 + 1))
                assert ws.recv(timeout=5) == f"message {i}" * (i * 50 + 1)


TCP_CFG = """
defaults
  mode tcp
  timeout client 5s
  timeout server 5s
  timeout connect 1s
listen fe
  bind 127.0.0.1:@@fe@@ ssl crt {a}
  server s1 127.0.0.1:@@s1@@
"""


def test_tcp_mode_terminates_tls(pki) -> None:  # type: ignore[no-untyped-def]
    def echo(c: socket.socket, be: RawBackend) -> None:
        while data := c.recv(65536):
            c.sendall(data.upper())

    with RawBackend(echo) as srv, \
            LbProcess(TCP_CFG.format(**pki), ports={"s1": srv.port}) as lb:
        with socket.create_connection(("127.0.0.1", lb.ports["fe"]), timeout=5) as raw, \
                _client(pki).wrap_socket(raw, server_hostname="a.test") as s:
            payload = b"hello over tls " * 5000
            s.sendall(payload)
            got = b""
            while len(got) < len(payload):
                got += s.recv(65536)
            assert got == payload.upper()


PROXY_TLS = HTTP_DEFAULTS + """frontend fe
  bind 127.0.0.1:@@fe@@ accept-proxy ssl crt {a}
  http-request return status 200 content-type text/plain lf-string "%[src]:%[src_port] %[ssl_fc_sni] %[ssl_fc_protocol]"
"""


def _through_bio(sock: socket.socket, ctx: ssl.SSLContext, first: bytes, request: bytes) -> bytes:
    """A TLS exchange pumped by hand, so that ``first`` (a PROXY header) and the
    ClientHello leave in one segment; the answer until the server closes."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="a.test")
    lead = first
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            sock.sendall(lead + out.read())
            lead = b""
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("closed during the handshake") from None
            inc.write(data)
    obj.write(request)
    sock.sendall(out.read())
    got = b""
    while True:
        try:
            chunk = obj.read(65536)
            if not chunk:  # the server's close_notify
                return got
            got += chunk
            continue
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return got
        data = sock.recv(65536)
        if not data:
            return got
        inc.write(data)


def test_proxy_header_then_tls_like_haproxy(pki) -> None:  # type: ignore[no-untyped-def]
    text = PROXY_TLS.format(**pki)
    header = b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 443\r\n"
    request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    bodies = {}
    for kind in ("lb", "haproxy"):
        with lb_or_haproxy(kind, text) as px:
            port = px.ports["fe"]
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                got = _through_bio(raw, _client(pki), header, request)
            # and with the header in a segment of its own
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                raw.sendall(header)
                time.sleep(0.05)
                with _client(pki).wrap_socket(raw, server_hostname="a.test") as s:
                    s.sendall(request)
                    got2 = b""
                    while chunk := s.recv(65536):
                        got2 += chunk
            bodies[kind] = (got.split(b"\r\n\r\n", 1)[1], got2.split(b"\r\n\r\n", 1)[1])
    assert bodies["lb"] == bodies["haproxy"]
    assert bodies["lb"][0] == b"192.0.2.7:40000 a.test TLSv1.3"


def test_bad_files_give_clear_errors_and_never_wait_for_a_passphrase(tmp_path, pki) -> None:  # type: ignore[no-untyped-def]
    """An encrypted key fails at once (OpenSSL's default would ask on the terminal),
    and a crt-list line with options but no certificate is named (HAProxy's text)."""
    from lb.config import load_text
    key = str(tmp_path / "enc.key")
    _openssl("ec", "-in", pki["key_only"], "-aes256", "-passout", "pass:secret", "-out", key)
    crt = str(tmp_path / "enc.pem")
    with open(crt, "wb") as out:
        for part in (pki["cert_only"], key):
            with open(part, "rb") as fh:
                out.write(fh.read())
    bad_list = str(tmp_path / "bad.txt")
    with open(bad_list, "w") as fh:
        fh.write("[alpn http/1.1]\n")
    for option, text in ((f"crt {crt}", "inconsistencies between private key and "
                          f"certificate loaded from PEM file '{crt}'."),
                         (f"crt-list {bad_list}", f"'crt-list' : parsing [{bad_list}:1]: "
                          "file must start with a cert")):
        res = load_text(HTTP_DEFAULTS + f"frontend f\n bind :18443 ssl {option}\n", "t.cfg")
        assert res.config is None
        assert [d.text for d in res.diagnostics if d.severity == "alert"][0].endswith(text)


LOG_FIELDS = """
global
  log 127.0.0.1:@@log@@ local0
defaults
  mode http
  log global
  log-format "%ft %sslc %sslv %[ssl_fc_protocol] %ST"
  timeout client 2s
  timeout server 2s
  timeout connect 1s
frontend fe
  bind 127.0.0.1:@@fe@@ ssl crt {a}
  bind 127.0.0.1:@@plain@@
  http-request return status 200
"""


def test_tls_log_fields_like_haproxy(pki) -> None:  # type: ignore[no-untyped-def]
    seen = {}
    for kind in ("lb", "haproxy"):
        log = _Syslog()
        with lb_or_haproxy(kind, LOG_FIELDS.format(**pki), {"log": log.port}) as px:
            log.drain(0.3)  # (start-up probes)
            _get(px.ports["fe"], _client(pki), "a.test")
            with socket.create_connection(("127.0.0.1", px.ports["plain"]), timeout=5) as c:
                c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                while c.recv(65536):
                    pass
            seen[kind] = [line.split(": ", 1)[-1].strip() for line in log.drain(0.5)
                          if line.strip().endswith(" 200")]
    assert seen["lb"] == seen["haproxy"]
    assert seen["lb"] == ["fe~ TLS_AES_256_GCM_SHA384 TLSv1.3 TLSv1.3 200", "fe - - - 200"]


ERROR_FORMAT = """
defaults
  mode http
  timeout client 1s
  timeout server 2s
  timeout connect 1s
  log 127.0.0.1:@@log@@ local0
  log-format "OK %ft %sslv %[ssl_fc] %[ssl_fc_protocol] %ST"
  error-log-format "ERR %[fc_err] %[fc_err_str] %ft %sslc %sslv %[ssl_fc] %[ssl_fc_sni] %ST %tsc %{{+Q}}r Th=%Th ac=%ac fc=%fc rt=%rt lc=%lc"
frontend fe
  bind 127.0.0.1:@@fe@@ ssl crt {a}
  bind 127.0.0.1:@@max12@@ ssl crt {a} ssl-max-ver TLSv1.2
  bind 127.0.0.1:@@verify@@ ssl crt {a} ca-file {ca} verify required
  http-request return status 200
"""


def _error_format_clients(pki, ports: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
    """In order: plain HTTP to the TLS port; a close without a byte; a TLS 1.2
    client offering only ciphers an ECDSA certificate cannot serve (and a name);
    a TLS 1.3 client on a TLS 1.2 line; a self-signed client certificate refused
    (after a cipher is chosen); a handshake that succeeds; silence until `timeout
    client`."""
    with socket.create_connection(("127.0.0.1", ports["fe"]), timeout=5) as c:
        c.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert c.recv(100) == b""
    # HAProxy closes that connection before it releases it: on a loaded machine the
    # next one, opened at once, was logged with ac=2 fc=2 (CI, session 56)
    time.sleep(0.2)
    socket.create_connection(("127.0.0.1", ports["fe"]), timeout=5).close()
    time.sleep(0.2)
    rsa_only = _client(pki, verify=False)
    rsa_only.maximum_version = ssl.TLSVersion.TLSv1_2
    rsa_only.set_ciphers("ECDHE-RSA-AES256-GCM-SHA384")
    new_only = _client(pki, verify=False)
    new_only.minimum_version = ssl.TLSVersion.TLSv1_3
    for port, ctx, sni in ((ports["fe"], rsa_only, "x.test"), (ports["max12"], new_only, None),
                           (ports["verify"], _client(pki, cert=pki["other"]), "a.test")):
        assert _outcome(port, ctx, sni) == "refused"
    assert _get(ports["fe"], _client(pki), "a.test")[0].startswith(b"HTTP/1.1 200")
    with socket.create_connection(("127.0.0.1", ports["fe"]), timeout=5) as c:
        assert c.recv(100) == b""  # (closed by the handshake timeout)


def test_failed_handshakes_in_error_log_format_like_haproxy(pki) -> None:  # type: ignore[no-untyped-def]
    """With `error-log-format`, a failed handshake is logged in it as an embryonic
    exchange (status 0, `PR--`, no request), TLS fields included: the cipher once
    one is chosen, `(NONE)` before; the version OpenSSL holds (TLS 1.3 before any
    ClientHello; after one, what both sides offer); the name asked for. A boolean
    sample reads 1 or 0. Lines compared with HAProxy 2.6.12's."""
    text = ERROR_FORMAT.format(**pki)
    seen = {}
    for kind in ("lb", "haproxy"):
        log = _Syslog()
        with lb_or_haproxy(kind, text, {"log": log.port}) as px:
            log.drain(0.3)  # (start-up probes)
            _error_format_clients(pki, px.ports)
            # (the handshake time, until the error, is measured: blanked)
            seen[kind] = [re.sub(r" Th=\d+ ", " Th=N ", line.split("]: ", 1)[-1].strip())
                          for line in log.drain(0.5)]
    assert seen["lb"] == seen["haproxy"]
    tail = '0 PR-- "<BADREQ>" Th=N ac=1 fc=1'
    assert seen["lb"] == [
        f"ERR 34 SSL handshake failure fe~ (NONE) TLSv1.3 1 - {tail} rt=0 lc=0",
        f"ERR 24 Connection closed during SSL handshake fe~ (NONE) TLSv1.3 1 - {tail} rt=1 lc=1",
        f"ERR 34 SSL handshake failure fe~ (NONE) TLSv1.2 1 x.test {tail} rt=2 lc=2",
        f"ERR 34 SSL handshake failure fe~ (NONE) TLSv1.2 1 - {tail} rt=3 lc=3",
        "ERR 31 SSL client certificate not trusted fe~ TLS_AES_256_GCM_SHA384 TLSv1.3 1 "
        f"a.test {tail} rt=4 lc=4",
        "OK fe~ TLSv1.3 1 TLSv1.3 200",
        "ERR 26 Timeout during SSL handshake fe~ (NONE) TLSv1.3 1 - 0 PR-- \"<BADREQ>\" "
        "Th=-1 ac=1 fc=1 rt=6 lc=6",
    ]
