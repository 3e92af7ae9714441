"""What each sample fetch reads, in HAProxy's words, and where that is available.

Owns: the table of fetch uses (HAProxy's SMP_USE_* classes, named as its messages
name them), the rule contexts (global section, `tcp-request connection|session|
content`, `tcp-response content`, `http-request`, `http-response`,
`http-after-response`, a traffic log line, a health check's formats) with the uses
each one has, and the load-time check of a `set-var` expression: HAProxy 2.6.12
refuses one whose fetch can give no sample where the rule runs ("extracts
information from ..., none of which is available here").

The table was read off HAProxy 2.6.12 (`haproxy -c` on `set-var` with every fetch
lb knows, tests/test_variables.py compares it live). A fetch not named below reads
'internal state' (proxies, servers, stick tables, counters); the constants
(``CONSTANT``) read nothing and work anywhere, the global section included.

Must not import: lb.config, lb.proxy.
"""

from __future__ import annotations

REQ_HDRS = "HTTP request headers"
RES_HDRS = "HTTP response headers"
REQ = "HTTP request"
RES = "HTTP response"
BACKEND = "backend"
CLIENT = "client address"
CLIENT_CONN = "client-side connection"
FRONTEND = "frontend"
REQ_BUF = "request buffer"
RES_BUF = "response buffer"
SERVER = "server"
INTERNAL = "internal state"

# fetches that need nothing: usable in the global section's set-var
CONSTANT = frozenset((
    "always_false", "always_true", "bin", "bool", "date", "date_us", "env", "hostname",
    "int", "ipv4", "ipv6", "meth", "nbproc", "proc", "rand", "str", "thread", "uuid",
    "var"))

_BY_USE: dict[tuple[str, ...], tuple[str, ...]] = {
    (REQ_HDRS,): (
        "base", "base32", "base32+src", "cook", "cook_cnt", "cook_val", "hdr_cnt",
        "hdr_ip", "hdr_val", "http_auth", "http_auth_group", "http_auth_pass",
        "http_auth_type", "http_auth_user", "path", "pathq", "query", "req.cook",
        "req.cook_cnt", "req.cook_val", "req.fhdr", "req.fhdr_cnt", "req.hdr",
        "req.hdr_cnt", "req.hdr_ip", "req.hdr_names", "req.hdr_val", "req.ver", "req_ver",
        "url", "url_ip", "url_param", "url_port", "urlp", "urlp_val"),
    (REQ_HDRS, RES_HDRS): ("hdr", "fhdr"),
    (REQ,): ("capture.req.hdr", "capture.req.method", "capture.req.uri", "capture.req.ver",
             "http_first_req", "method", "req.proto_http", "unique-id"),
    (RES_HDRS,): ("res.cook", "res.fhdr", "res.fhdr_cnt", "res.hdr", "res.hdr_cnt", "scook",
                  "shdr", "shdr_cnt"),
    (RES,): ("capture.res.hdr", "res.comp", "res.comp_algo", "status"),
    (BACKEND,): ("be_id", "be_name", "be_server_timeout", "be_tunnel_timeout"),
    (FRONTEND,): ("fe_client_timeout", "fe_defbe", "fe_id", "fe_name", "so_id", "so_name"),
    (CLIENT,): ("dst", "dst_port", "src", "src_port", "fc_pp_authority", "fc_pp_unique_id",
                "fc_rcvd_proxy", "fc_err", "fc_err_str", "sc_kbytes_in", "sc_kbytes_out",
                "sc0_kbytes_in", "sc0_kbytes_out", "sc1_kbytes_in", "sc1_kbytes_out",
                "sc2_kbytes_in", "sc2_kbytes_out"),
    (CLIENT_CONN,): ("ssl_fc", "ssl_fc_sni", "ssl_fc_has_sni", "ssl_fc_protocol",
                     "ssl_fc_cipher", "ssl_fc_use_keysize", "ssl_fc_alg_keysize",
                     "ssl_fc_alpn", "ssl_fc_is_resumed", "ssl_fc_session_id",
                     "ssl_fc_has_crt", "ssl_c_used", "ssl_c_verify", "ssl_c_err",
                     "ssl_c_ca_err", "ssl_c_ca_err_depth", "ssl_c_der", "ssl_c_sha1",
                     "ssl_c_serial", "ssl_c_notbefore", "ssl_c_notafter", "ssl_c_version",
                     "ssl_c_s_dn", "ssl_c_i_dn"),
    (REQ_BUF,): ("req.len", "req.payload", "req.ssl_hello_type", "req.ssl_sni",
                 "req.ssl_ver", "req_len", "req_ssl_hello_type", "req_ssl_sni",
                 "req_ssl_ver"),
    (RES_BUF,): ("res.len", "res.payload"),
    (SERVER,): ("srv_id", "srv_name"),
}
USES: dict[str, tuple[str, ...]] = {n: u for u, names in _BY_USE.items() for n in names}
# the fetches that read the HTTP request: a `mode tcp` session finds it in the client's
# first bytes (lb.http.rawhead), and waits for them like the request-buffer ones
REQUEST_FETCHES = frozenset(n for n, u in USES.items() if REQ in u or REQ_HDRS in u)


def uses(fetch: str) -> tuple[str, ...]:
    """What the fetch reads (empty for a constant)."""
    if fetch in CONSTANT:
        return ()
    got = USES.get(fetch)
    if got is not None:
        return got
    if fetch.startswith("src_"):  # the stick-table lookups keyed on the source
        return (CLIENT,)
    return (INTERNAL,)


_ALL = frozenset((REQ_HDRS, RES_HDRS, REQ, RES, BACKEND, CLIENT, CLIENT_CONN, FRONTEND,
                  REQ_BUF, RES_BUF, SERVER, INTERNAL))
_L4 = frozenset((CLIENT, FRONTEND, INTERNAL))
_REQUEST = _ALL - {RES_HDRS, RES, RES_BUF, SERVER}
_RESPONSE = _ALL - {REQ_HDRS, REQ_BUF}

# what each rule context has (HAProxy 2.6.12, the same in mode http and mode tcp)
CONTEXTS: dict[str, frozenset[str]] = {
    "global": frozenset(),
    "tcp-request connection": _L4,
    "tcp-request session": _L4 | {CLIENT_CONN},
    "tcp-request content": _REQUEST,
    "http-request": _REQUEST,
    "tcp-response content": _RESPONSE,
    "http-response": _RESPONSE,
    "http-after-response": _RESPONSE,
    # a traffic log line (log-format, log-format-sd), written once the stream ends:
    # the heads and buffers are gone by then, in both modes (HAProxy 2.6.12 refuses
    # their fetches there; a variable set by a rule carries such a value instead)
    "log": _ALL - {REQ_HDRS, RES_HDRS, REQ_BUF, RES_BUF},
    # a health check's log-format strings and `status-code` (HAProxy's
    # SMP_VAL_BE_CHK_RUL): no client, no request; the server's answer may be there
    "check": _ALL - {REQ_HDRS, REQ, REQ_BUF, FRONTEND, CLIENT_CONN},
}
# fetches a context takes although what they read is missing there (HAProxy 2.6.12
# gives the unique id its own class, valid in a check)
_ALSO: dict[str, frozenset[str]] = {"check": frozenset(("unique-id",))}


def unavailable(fetch: str, context: str) -> str | None:
    """HAProxy's list of what the fetch reads when none of it is there in this
    context (``'a,b'`` text), else None."""
    need = uses(fetch)
    have = CONTEXTS.get(context)
    if not need or have is None or any(u in have for u in need) or \
            fetch in _ALSO.get(context, ()):
        return None
    return ",".join(need)
