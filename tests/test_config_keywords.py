"""Keyword families, defaults inheritance and HAProxy's error texts (spec §1.5-§2, §5-§7).

Texts marked "2.6.12" were compared with `haproxy -c` output of HAProxy 2.6.12.
"""

import pytest

from lb.config import load_text
from lb.config import model as m

TMO = " timeout client 5s\n timeout server 5s\n timeout connect 1s\n"


def cfg(text: str, **kw):
    res = load_text(text, "t.cfg", env={"X": "1"}, **kw)
    return res


def msgs(res, severity=None):
    return [d.message() for d in res.diagnostics if severity in (None, d.severity)]


def ok(text: str) -> m.Config:
    res = cfg(text)
    assert res.ok, msgs(res)
    assert res.config is not None
    return res.config


BASE = "defaults\n mode http\n" + TMO


def test_modes_and_builtin_tcp():
    c = ok("frontend f\n bind :80\n default_backend b\nbackend b\n server s 1.2.3.4:80\n")
    assert c.frontend("f").mode == "tcp"  # built-in default mode
    c = ok(BASE + "frontend f\n bind :80\n")
    assert c.frontend("f").mode == "http"
    res = cfg("defaults\n mode HTTP\n")
    assert msgs(res, "alert") == ["parsing [t.cfg:2] : unknown proxy mode 'HTTP'."]


def test_bind_forms():
    c = ok(BASE + "frontend f\n bind :80\n bind *:81 name web\n bind 127.0.0.1:82-84\n"
           " bind [::1]:85\n bind ipv6@:::86 v6only\n bind fd@3\n bind /tmp/s.sock\n")
    b = c.frontend("f").binds
    assert [(x.host, x.port, x.family) for x in b[:6]] == [
        ("", 80, "ipv4"), ("", 81, "ipv4"), ("127.0.0.1", 82, "ipv4"), ("127.0.0.1", 83, "ipv4"),
        ("127.0.0.1", 84, "ipv4"), ("::1", 85, "ipv6")]
    assert b[1].name == "web"
    assert b[6].v6only and b[6].family == "ipv6" and b[6].port == 86
    assert b[7].fd == 3 and b[7].family == "fd"
    assert b[8].path == "/tmp/s.sock"


@pytest.mark.parametrize("line,msg", [  # 2.6.12
    (" bind", "parsing [t.cfg:7] : 'bind' expects {<path>|[addr1]:port1[-end1]}"
     "{,[addr]:port[-end]}... as arguments."),
    (" bind :99999", "parsing [t.cfg:7] : 'bind' : invalid port '99999'"),
    (" bind 1.2.3.4", "parsing [t.cfg:7] : 'bind' : missing port specification in '1.2.3.4'"),
])
def test_bind_errors(line, msg):
    assert msgs(cfg(BASE + "frontend f\n" + line + "\n"), "alert") == [msg]


def test_timeouts_and_errors():
    c = ok(BASE + " timeout tunnel 1h\n timeout http-request 10s\n timeout queue 0\n"
           "backend b\n timeout check 2s\n timeout server-fin 1s\n")
    t = c.backend("b").timeouts
    assert (t.client, t.server, t.connect, t.tunnel, t.check, t.queue, t.server_fin) == (
        None, 5.0, 1.0, 3600.0, 2.0, None, 1.0)
    res = cfg(BASE + " timeout clinet 5s\n")
    assert msgs(res, "alert") == [
        "parsing [t.cfg:6] : 'timeout' supports 'client', 'server', 'connect', 'check', "
        "'queue', 'http-keep-alive', 'http-request', 'tunnel', 'tarpit', 'client-fin' and "
        "'server-fin' (got 'clinet')"]
    assert res.diagnostics[0].suggestion == "client"
    res = cfg(BASE + "backend b\n timeout client 3s\n")
    assert msgs(res, "warning") == ["parsing [t.cfg:7] : 'timeout client' will be ignored "
                                    "because backend 'b' has no frontend capability"]


def test_unknown_keyword_with_suggestion():  # 2.6.12
    res = cfg(BASE + "frontend f\n bind :80\n default_bakend b\n")
    assert msgs(res, "alert") == ["parsing [t.cfg:8] : unknown keyword 'default_bakend' in "
                                  "'frontend' section; did you mean 'default_backend' maybe ?"]
    d = res.diagnostics[0]
    assert (d.code, d.suggestion, d.col) == ("unknown-keyword", "default_backend", 2)


@pytest.mark.parametrize("text,msg", [  # 2.6.12
    ("global\n foobar\n", "parsing [t.cfg:2] : unknown keyword 'foobar' in 'global' section"),
    ("global\n nbproc 2\n", "parsing [t.cfg:2] : nbproc is not supported any more since "
     "HAProxy 2.5. Threads will automatically be used on multi-processor machines if "
     "available."),
    ("maxconn 10\n", "parsing [t.cfg:1]: unknown keyword 'maxconn' out of section."),
    (BASE + " option frobnicate\n", "parsing [t.cfg:6] : unknown option 'frobnicate'."),
    (BASE + " option httplg\n", "parsing [t.cfg:6] : unknown option 'httplg'; did you mean "
     "'httplog' maybe ?"),
    (BASE + " no maxconn\n", "parsing [t.cfg:6]: negation/default currently supported only "
     "for options, log, busy-polling, set-dumpable, strict-limits, insecure-fork-wanted and "
     "numa-cpu-mapping."),
    (BASE + " bind :80\n", "parsing [t.cfg:6] : 'bind' not allowed in 'defaults' section."),
    (BASE + " acl a path /x\n", "parsing [t.cfg:6] : 'acl' not allowed in anonymous "
     "'defaults' section."),
    (BASE + " option forceclose\n", "parsing [t.cfg:6]: option 'forceclose' is not supported "
     "any more since HAProxy 2.0, please just remove it, or use 'option httpclose' if "
     "absolutely needed."),
    (BASE + " reqadd X-Foo:\\ bar\n", "parsing [t.cfg:6] : The 'reqadd' directive is not "
     "supported anymore since HAProxy 2.1. Use 'http-request add-header' instead."),
    (BASE + " block if TRUE\n", "parsing [t.cfg:6] : The 'block' directive is not supported "
     "anymore since HAProxy 2.1. Use 'http-request deny' which uses the exact same syntax."),
    ("frontend f!x\n", "parsing [t.cfg:1] : character '!' is not permitted in 'frontend' "
     "name 'f!x'."),
    ("frontend\n", "parsing [t.cfg:1] : 'frontend' expects an <id> argument"),
    ("frontend fe extra\n", "parsing [t.cfg:1] : please use the 'bind' keyword for listening "
     "addresses."),
    ("backend be from nosuch\n", "parsing [t.cfg:1] : defaults section 'nosuch' not found "
     "for backend 'be'."),
    (BASE + "frontend f\n maxconn 10 extra\n", "parsing [t.cfg:7] : 'maxconn' cannot handle "
     "unexpected argument 'extra'."),
    (BASE + "frontend f\n server s1 1.2.3.4:80\n", "[t.cfg:7] : parsing [t.cfg:7] : 'server' "
     "not allowed because frontend 'f' has no backend capability."),
    (BASE + "backend b\n server s1 127.0.0.1:80 bogus\n", "[t.cfg:7] : 'server b/s1' : "
     "unknown keyword 'bogus'."),
    (BASE + "backend b\n server s2 127.0.0.1:80 weight 300\n", "[t.cfg:7] : 'server b/s2' : "
     "weight of server s2 is not within 0 and 256 (300).."),
    (BASE + "backend b\n server s1 127.0.0.1:80 inter 0\n", "[t.cfg:7] : 'server b/s1' : "
     "invalid value 0 for argument 'inter' of server s1.."),
    (BASE + "backend b\n server s5 127.0.0.1:80 rise 0\n", "[t.cfg:7] : 'server b/s5' : "
     "'rise' has to be > 0.."),
    (BASE + "backend b\n server\n", "[t.cfg:7] : 'server' expects <name> and "
     "<addr>[:<port>] as arguments."),
    (BASE + "backend b\n cookie S rewrite indirect\n", "parsing [t.cfg:7] : cookie 'rewrite' "
     "and 'indirect' modes are incompatible."),
    (BASE + "backend b\n cookie S prefix insert\n", "parsing [t.cfg:7] : cookie 'rewrite', "
     "'insert' and 'prefix' modes are incompatible."),
    (BASE + "backend b\n cookie S preserve\n", "parsing [t.cfg:7] : cookie 'preserve' "
     "requires at least 'insert' or 'indirect'."),
    (BASE + "backend b\n balance RoundRobin\n", "parsing [t.cfg:7] : balance only supports "
     "'roundrobin', 'static-rr', 'leastconn', 'source', 'uri', 'url_param', 'hdr(name)' and "
     "'rdp-cookie(name)' options."),
    (BASE + "backend b\n hash-type bogus\n", "parsing [t.cfg:7] : 'hash-type' only supports "
     "'consistent' and 'map-based'."),
    (BASE + "backend b\n errorfile 999 /etc/hosts\n", "parsing [t.cfg:7] : errorfile : status "
     "code '999' not handled."),
    (BASE + "backend b\n errorfile 503 /nonexistent\n", "parsing [t.cfg:7] : errorfile : error "
     "opening file '/nonexistent'."),
    (BASE + "backend b\n option forwardfor bogus\n", "parsing [t.cfg:7] : 'option forwardfor' "
     "only supports optional values: 'except', 'header' and 'if-none'."),
    (BASE + "frontend f\n log 1.2.3.4 bogusfac\n", "parsing [t.cfg:7] : log : unknown log "
     "facility 'bogusfac'"),
    ("global\n stats socket /tmp/x.sock level superuser\n", "parsing [t.cfg:2] : 'stats "
     "socket' : ''level' only supports 'user', 'operator', and 'admin' (got 'superuser')'"),
])
def test_error_texts(text, msg):
    assert msg in msgs(cfg(text), "alert")


def test_capability_warnings():  # 2.6.12
    res = cfg(BASE + "frontend f\n bind :80\n cookie SRV insert\n balance roundrobin\n"
              "backend b\n option httplog\n default_backend x\n")
    assert msgs(res, "warning")[:4] == [
        "parsing [t.cfg:8] : 'cookie' ignored because frontend 'f' has no backend capability.",
        "parsing [t.cfg:9] : 'balance' ignored because frontend 'f' has no backend capability.",
        "parsing [t.cfg:11] : backend 'b' : 'option httplog' directive is ignored in backends.",
        "parsing [t.cfg:12] : 'default_backend' ignored because backend 'b' has no frontend "
        "capability."]


def test_defaults_inheritance():
    text = ("defaults\n mode http\n option httplog\n option redispatch 2\n" + TMO +
            " maxconn 100\n balance leastconn\n default-server inter 3s rise 4\n"
            " log 127.0.0.1 local0\n"
            "frontend f\n bind :80\n default_backend b\n log 127.0.0.2 local1\n"
            "backend b\n server s1 1.1.1.1:80 check\n"
            "defaults\n timeout client 7s\n"  # new defaults restarts from built-ins
            "backend b2\n server s1 1.1.1.1:80\n")
    res = cfg(text)
    c = res.config
    f, b, b2 = c.frontend("f"), c.backend("b"), c.backend("b2")
    assert f.mode == "http" and f.maxconn == 100 and f.options.httplog
    assert f.log_format.startswith("%ci:%cp [%tr] %ft %b/%s")
    assert [t.address for t in f.logs] == ["127.0.0.1", "127.0.0.2"]  # appended
    assert b.balance.algorithm == "leastconn" and b.redispatch_interval == 2
    assert b.options.redispatch
    assert (b.servers[0].inter, b.servers[0].rise, b.servers[0].fall) == (3.0, 4, 3)
    assert b.log_format is None  # log-format is a frontend-side setting
    assert b2.mode == "tcp" and b2.balance.algorithm == "roundrobin"
    assert b2.servers[0].inter == 2.0 and b2.timeouts.client is None


def test_named_defaults_and_from():
    c = ok("defaults base\n mode http\n" + TMO + " timeout tunnel 1h\n"
           "defaults other\n mode tcp\n" + TMO +
           "frontend f from base\n bind :80\n default_backend b\n"
           "backend b from base\n server s 1.1.1.1:80\n"
           "backend t\n server s 1.1.1.1:80\n")
    assert c.frontend("f").mode == "http"
    assert c.backend("b").timeouts.tunnel == 3600.0
    assert c.backend("t").mode == "tcp"  # the most recent defaults


def test_named_defaults_rules_run_first():
    c = ok("defaults d\n mode http\n" + TMO + " acl bad path /bad\n"
           " http-request deny if bad\nfrontend f from d\n bind :80\n"
           " http-request set-header X-A 1\n")
    rules = c.frontend("f").http_request_rules
    assert [type(r.action).__name__ for r in rules] == ["ActDeny", "ActSetHeader"]
    res = cfg("defaults d\n mode http\n" + TMO + " http-request deny\n"
              "listen l from d\n bind :80\n")
    assert "parsing [t.cfg:7]: a listen section cannot inherit from a defaults section "\
        "defining TCP/HTTP rules." in msgs(res, "alert")


def test_duplicate_proxy_names():  # 2.6.12
    res = cfg(BASE + "backend b\nbackend b\n")
    assert msgs(res, "alert") == ["Parsing [t.cfg:7]: backend 'b' has the same name as backend "
                                  "'b' declared at t.cfg:6."]
    c = ok(BASE + "frontend x\n bind :80\n default_backend x\nbackend x\n server s 1.1.1.1:1\n")
    assert [p.puid for p in c.proxies] == [1, 2]


def test_servers_and_default_server():
    c = ok(BASE + "backend b\n default-server inter 1s fall 5 maxconn 10\n"
           " server s1 10.0.0.1:8080 weight 10 cookie c1 check backup\n"
           " server s2 10.0.0.2:8080 disabled port 9000 addr 10.0.0.9 slowstart 10s "
           "on-marked-down shutdown-sessions fastinter 500 downinter 5s maxqueue 3\n"
           " server s3 [::1]:80\n")
    s1, s2, s3 = c.backend("b").servers
    assert (s1.puid, s1.weight, s1.cookie, s1.check, s1.backup, s1.inter, s1.fall,
            s1.maxconn) == (1, 10, "c1", True, True, 1.0, 5, 10)
    assert (s2.puid, s2.disabled, s2.check_port, s2.check_addr, s2.slowstart,
            s2.on_marked_down, s2.fastinter, s2.downinter, s2.maxqueue) == (
        2, True, 9000, "10.0.0.9", 10.0, "shutdown-sessions", 0.5, 5.0, 3)
    assert (s3.host, s3.port) == ("::1", 80)


@pytest.mark.parametrize("line,algo,attrs", [
    ("balance roundrobin", "roundrobin", {}),
    ("balance static-rr", "static-rr", {}),
    ("balance leastconn", "leastconn", {}),
    ("balance first", "first", {}),
    ("balance source", "source", {}),
    ("balance uri whole len 10 depth 2", "uri", {"uri_whole": True, "uri_len": 10,
                                                  "uri_depth": 2}),
    ("balance uri path-only", "uri", {"uri_path_only": True}),
    ("balance url_param uid check_post", "url_param", {"param": "uid", "check_post": True}),
    ("balance hdr(Host) use_domain_only", "hdr", {"param": "Host", "use_domain_only": True}),
    ("balance random(3)", "random", {"random_draws": 3}),
    ("balance rdp-cookie", "rdp-cookie", {"param": "mstshash"}),
    ("balance hash req.hdr(x-user)", "hash", {"hash_expr": "req.hdr(x-user)"}),
])
def test_balance(line, algo, attrs):
    c = ok(BASE + "backend b\n " + line + "\n hash-type consistent djb2\n")
    bal = c.backend("b").balance
    assert bal.algorithm == algo and bal.hash_type == "consistent"
    for k, v in attrs.items():
        assert getattr(bal, k) == v


def test_cookie_options():
    c = ok(BASE + "backend b\n cookie SRV insert indirect nocache postonly httponly secure "
           "domain .a.com domain .b.com maxidle 30m maxlife 1d attr SameSite=Lax\n")
    ck = c.backend("b").cookie
    assert (ck.name, ck.mode, ck.indirect, ck.nocache, ck.postonly, ck.httponly, ck.secure,
            ck.domains, ck.maxidle, ck.maxlife, ck.attrs) == (
        "SRV", "insert", True, True, True, True, True, (".a.com", ".b.com"), 1800.0, 86400.0,
        ("SameSite=Lax",))


def test_options_and_connection_modes():
    c = ok(BASE + " option http-server-close\n option dontlognull\n option contstats\n"
           "frontend f\n bind :80\n option httpclose\n no option dontlognull\n"
           " option forwardfor except 127.0.0.0/8 header X-Client if-none\n"
           "backend b\n option allbackups\n option persist\n option redispatch\n"
           " option log-health-checks\n option abortonclose\n option http-buffer-request\n")
    f, b = c.frontend("f"), c.backend("b")
    assert f.options.httpclose and not f.options.http_server_close
    assert not f.options.dontlognull and f.options.contstats
    assert f.forwardfor == m.ForwardFor("x-client", "127.0.0.0/8", True)
    assert b.options.http_server_close and b.options.allbackups and b.options.persist
    assert b.redispatch_interval == -1 and b.check.log_health_checks


def test_log_targets():
    c = ok("global\n log 127.0.0.1:1514 len 2048 format rfc5424 local3 info notice\n"
           " log /dev/log daemon\n log stdout format raw local0\n"
           + "ring buf\n server s 127.0.0.1:601\n"
           + BASE + "frontend f\n bind :80\n log global\n log ring@buf local1\n"
           " log tcp@10.0.0.1:601 local2\n log fd@1 local0\n")
    g = c.global_.logs
    assert (g[0].kind, g[0].address, g[0].port, g[0].length, g[0].format, g[0].facility,
            g[0].level, g[0].minlevel) == ("udp", "127.0.0.1", 1514, 2048, "rfc5424",
                                           "local3", "info", "notice")
    assert (g[1].kind, g[1].address) == ("unix", "/dev/log")
    kinds = [(t.kind, t.address, t.port) for t in c.frontend("f").logs]
    assert kinds == [("udp", "127.0.0.1", 1514), ("unix", "/dev/log", None),
                     ("stdout", "stdout", None), ("ring", "buf", None),
                     ("tcp", "10.0.0.1", 601), ("fd", "1", None)]
    ring = c.frontend("f").logs[3].ring
    assert ring is not None and (ring.name, ring.format, ring.servers[0].port) == (
        "buf", "raw", 601)


def test_log_formats_resolved():
    c = ok(BASE + "frontend a\n bind :1\n option tcplog\nfrontend b\n bind :2\n"
           ' log-format "%ci %[var(txn.host)] %ST"\nfrontend c\n bind :3\n')
    assert c.frontend("a").log_format.startswith("%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt")
    assert c.frontend("b").log_format == "%ci %[var(txn.host)] %ST"
    assert c.frontend("c").log_format is None


def test_global_keywords():
    c = ok("global\n daemon\n maxconn 5000\n nbthread 2\n pidfile /run/lb.pid\n"
           " chroot /var/empty\n uid 99\n gid 99\n ulimit-n 65536\n hard-stop-after 30s\n"
           " spread-checks 5\n stats socket /run/lb.sock mode 600 level admin expose-fd "
           "listeners\n stats socket ipv4@127.0.0.1:9999 level user\n stats timeout 2m\n"
           " tune.bufsize 32k\n")
    g = c.global_
    assert (g.daemon, g.maxconn, g.nbthread, g.pidfile, g.chroot, g.uid, g.gid, g.ulimit_n,
            g.hard_stop_after, g.spread_checks, g.stats_timeout, g.tune_bufsize) == (
        True, 5000, 2, "/run/lb.pid", "/var/empty", 99, 99, 65536, 30.0, 5, 120.0, 32768)
    s1, s2 = g.stats_sockets
    assert (s1.kind, s1.address, s1.mode, s1.level, s1.expose_fd_listeners) == (
        "unix", "/run/lb.sock", 0o600, "admin", True)
    assert (s2.kind, s2.address, s2.port, s2.level) == ("tcp", "127.0.0.1", 9999, "user")
    res = cfg("global\n maxconn 10\n maxconn 20\n")
    assert res.ok  # an ALERT that HAProxy counts as a warning (2.6.12)
    assert msgs(res) == ["parsing [t.cfg:3] : 'maxconn' already specified. Continuing."]
    assert cfg("global\n user nosuchuser-xyz\n").diagnostics[0].text == \
        "cannot find user id for 'nosuchuser-xyz' (0:Success)"


@pytest.mark.parametrize("line,msg", [  # haproxy -c, 2.6.12
    ("tune.bufsize", "'tune.bufsize' expects an integer argument."),
    ("tune.bufsize abc", "'tune.bufsize' expects a positive integer argument."),
    ("tune.bufsize 0", "'tune.bufsize' expects a positive integer argument."),
    ("tune.bufsize -5", "'tune.bufsize' expects a positive integer argument."),
    ("tune.maxrewrite -5", "'tune.maxrewrite' expects a positive integer argument."),
    ("tune.http.maxhdr 0", "'tune.http.maxhdr' expects a numeric value between 1 and 32767"),
    ("tune.http.maxhdr 32768",
     "'tune.http.maxhdr' expects a numeric value between 1 and 32767"),
    ("tune.rcvbuf.server", "'tune.rcvbuf.server' expects an integer argument."),
    ("tune.sndbuf.client", "'tune.sndbuf.client' expects an integer argument."),
])
def test_tune_value_errors(line, msg):
    res = cfg(f"global\n {line}\n")
    assert not res.ok
    assert msgs(res) == [f"parsing [t.cfg:2] : {msg}"]


def test_tune_values_as_haproxy_reads_them():
    g = ok("global\n tune.maxrewrite abc\n tune.http.maxhdr 32767\n"
           " tune.rcvbuf.client 131072\n tune.rcvbuf.server 65536\n"
           " tune.sndbuf.client 64k\n tune.sndbuf.server -1\n tune.ssl.cachesize 0\n").global_
    # atol's reading: no digits is 0, "64k" is 64; a size of 0 or less keeps the kernel's
    assert (g.tune_maxrewrite, g.tune_http_maxhdr, g.tune_rcvbuf_client,
            g.tune_rcvbuf_server, g.tune_sndbuf_client, g.tune_sndbuf_server) == (
        0, 32767, 131072, 65536, 64, 0)
    assert g.tune["tune.ssl.cachesize"] == "0"  # other tune.* keywords are kept as written


def test_unknown_tune_keywords_are_errors_as_in_haproxy():
    # haproxy -c 2.6.12: "unknown keyword 'tune.foo' in 'global' section" (lb adds a
    # did-you-mean); the tune.* keywords it knows and lb does not use are accepted
    res = cfg("global\n tune.foo 1\n tune.bufize 1\n tune.ssl.default-dh-param 2048\n"
              " tune.h2.max-concurrent-streams 100\n")
    assert not res.ok
    texts = msgs(res)
    assert len(texts) == 2
    assert texts[0].startswith("parsing [t.cfg:2] : unknown keyword 'tune.foo' in 'global' "
                               "section")
    assert texts[1] == ("parsing [t.cfg:3] : unknown keyword 'tune.bufize' in 'global' "
                        "section; did you mean 'tune.bufsize' maybe ?")
    g = ok("global\n tune.ssl.default-dh-param 2048\n tune.maxaccept 64\n").global_
    assert dict(g.tune) == {"tune.ssl.default-dh-param": "2048", "tune.maxaccept": "64"}


def test_stats_page_and_errorfile(tmp_path):
    page = tmp_path / "503.http"
    page.write_bytes(b"HTTP/1.0 503 Oops\r\n\r\nsorry\n")
    c = ok(BASE + "listen l\n bind :80\n stats enable\n stats uri /st\n stats realm My\\ Stats\n"
           " stats auth a:b\n stats refresh 5s\n stats hide-version\n"
           f" errorfile 503 {page}\n server s 1.1.1.1:80\n")
    st = c.proxies[0].stats
    assert (st.uri, st.realm, st.auth, st.refresh, st.hide_version) == (
        "/st", "My Stats", (("a", "b"),), 5.0, True)
    # no length in an HTTP/1.0 page: it ends with the connection, which HAProxy 2.6.12
    # does not say (1.0 closes by default; a 1.1 page gets `connection: close`)
    assert c.proxies[0].errorfiles[503] == b"HTTP/1.0 503 Oops\r\n\r\nsorry\n"


def test_http_rules_and_actions():
    c = ok(BASE + "frontend f\n bind :80\n acl api path_beg /api\n"
           " http-request deny deny_status 429 if api\n"
           " http-request return status 200 content-type text/plain string ok if { path /ok }\n"
           " http-request redirect scheme https code 301 unless { ssl_fc }\n"
           ' http-request set-header X-Host "%[req.hdr(host)]"\n'
           " http-request del-header X-Secret\n http-request set-path /v2%[path]\n"
           " http-request set-var(txn.u) req.hdr(user-agent)\n"
           " http-response set-header X-Served-By lb\n use_backend be_%[req.hdr(host),lower]\n")
    f = c.frontend("f")
    acts = [r.action for r in f.http_request_rules]
    assert acts[0] == m.ActDeny(status=429)
    assert acts[1] == m.ActReturn(status=200, content_type="text/plain", body=b"ok")
    assert acts[2] == m.ActRedirect(kind="scheme", target_fmt="https", code=301)
    assert acts[3] == m.ActSetHeader(name="X-Host", value_fmt="%[req.hdr(host)]")
    assert acts[4] == m.ActDelHeader(name="X-Secret")
    assert acts[5] == m.ActSetPath(what="path", value_fmt="/v2%[path]")
    assert acts[6] == m.ActSetVar(name="txn.u", expr="req.hdr(user-agent)")
    assert f.http_request_rules[0].cond_text == "if api"
    assert f.http_request_rules[0].origin == m.Origin("t.cfg", 9)
    assert f.switching_rules[0].name_fmt == "be_%[req.hdr(host),lower]"
    assert f.switching_rules[0].backend is None


@pytest.mark.parametrize("line,msg", [  # 2.6.12
    (" http-request set-header X", "parsing [t.cfg:7] : error detected in frontend 'f' while "
     "parsing 'http-request set-header' rule : expects exactly 2 arguments."),
    (" http-request deny IF TRUE", "parsing [t.cfg:7]: 'http-request deny' expects either 'if' "
     "or 'unless' followed by a condition but found 'IF'."),
    (" http-request deny deny_status 299", "parsing [t.cfg:7] : error detected in frontend 'f' "
     "while parsing 'http-request deny' rule : status code '299' not handled by default with "
     "'default-errorfiles' argument.."),
    (" http-request deny deny_status 600", "parsing [t.cfg:7] : error detected in frontend 'f' "
     "while parsing 'http-request deny' rule : Unexpected status code '600'."),
    (" http-request return status 200 string hello", "parsing [t.cfg:7] : error detected in "
     "frontend 'f' while parsing 'http-request return' rule : a content type must be defined "
     "when non-empty payload is configured."),
    (" http-request redirect", "parsing [t.cfg:7] : error detected in frontend 'f' while "
     "parsing 'http-request redirect' rule : redirection type expected ('prefix', 'location', "
     "or 'scheme')."),
    (" http-request redirect location", "parsing [t.cfg:7] : error detected in frontend 'f' "
     "while parsing 'http-request redirect' rule : missing argument for 'location'."),
    (" http-request set-var(txn.x)", "parsing [t.cfg:7] : error detected in frontend 'f' while "
     "parsing 'http-request set-var(txn.x)' rule : missing fetch method."),
    (" http-response deny if nosuch", "parsing [t.cfg:7] : error detected while parsing an "
     "'http-response deny' condition : no such ACL : 'nosuch'."),
    (" acl bad!name path /", "parsing [t.cfg:7] : character '!' is not permitted in acl name "
     "'bad!name'."),
    (" acl y nosuchfetch foo", "parsing [t.cfg:7] : error detected while parsing ACL 'y' : "
     "unknown fetch method 'nosuchfetch' in ACL expression 'nosuchfetch'."),
    (" acl z path -q foo", "parsing [t.cfg:7] : error detected while parsing ACL 'z' : '-q' is "
     "not a valid ACL option. Please use '--' before any pattern beginning with a '-'."),
    (" use_backend b if nosuchacl", "parsing [t.cfg:7] : error detected while parsing "
     "switching rule : no such ACL : 'nosuchacl'."),
    (" http-request deny if { path /x", "parsing [t.cfg:7] : error detected while parsing an "
     "'http-request deny' condition : missing closing '}' in condition."),
])
def test_rule_errors(line, msg):
    res = cfg(BASE + "frontend f\n" + line + "\n")
    assert msg in msgs(res, "alert")


def test_acl_declared_after_use_is_an_error():
    res = cfg(BASE + "frontend f\n use_backend b if later\n acl later path /\n")
    assert "parsing [t.cfg:7] : error detected while parsing switching rule : no such ACL : "\
        "'later'." in msgs(res, "alert")


def test_rule_order_and_final_warnings():  # 2.6.12
    res = cfg(BASE + "frontend f\n bind :80\n use_backend b\n http-request deny if TRUE\n"
              " http-request deny\n http-request allow\nbackend b\n server s 1.1.1.1:80\n")
    w = [d for d in res.diagnostics if d.severity == "warning"]
    assert [d.message() for d in w] == [
        "parsing [t.cfg:9] : a 'http-request' rule placed after a 'use_backend' rule will "
        "still be processed before.",
        "parsing [t.cfg:10] : a 'http-request' rule placed after a 'use_backend' rule will "
        "still be processed before.",
        "parsing [t.cfg:11]: previous 'http-request' action is final and has no condition "
        "attached, further entries are NOOP.",
        "parsing [t.cfg:11] : a 'http-request' rule placed after a 'use_backend' rule will "
        "still be processed before."]
    assert w[0].code == "rule-order" and "first, then the 'use_backend' rules" in w[0].more[0]


def test_cross_checks():  # 2.6.12
    res = cfg("frontend f\n bind :8080\n use_backend nosuch\n default_backend nob2\n"
              "backend b\n server s1 127.0.0.1 check\nbackend t\n mode tcp\nfrontend g\n"
              " mode http\n bind :8081\n default_backend t\n")
    a = msgs(res, "alert")
    assert "Proxy 'f': unable to find required default_backend: 'nob2'." in a
    assert "Proxy 'f': unable to find required use_backend: 'nosuch'." in a
    assert "config: backend 'b': server 's1' has neither service port nor check port." in a
    assert "http frontend 'g' (t.cfg:9) tries to use incompatible tcp backend 't' (t.cfg:7) " \
        "as its default backend (see 'mode')." in a
    w = [d for d in res.diagnostics if d.code == "missing-timeouts"]
    assert w[0].message() == "missing timeouts for frontend 'f'."
    assert w[0].more == (
        "   | While not properly invalid, you will certainly encounter various problems",
        "   | with such a configuration. To fix this, please ensure that all following",
        "   | timeouts are set to a non-zero value: 'client', 'connect', 'server'.")


def test_httpchk_forms():
    def check(lines):
        return ok(BASE + "backend b\n" + lines + " server s 1.1.1.1:80 check\n"
                  ).backend("b").check

    assert check(" option httpchk\n").steps == (m.HttpCheckSend(),)
    assert check(" option httpchk /hc\n").steps == (m.HttpCheckSend(uri="/hc"),)
    assert check(" option httpchk HEAD /\n").steps == (m.HttpCheckSend("HEAD", "/"),)
    ck = check(" option httpchk GET /hc HTTP/1.1\n http-check send hdr Host svc.example.com\n"
               " http-check expect status 200-299,304\n http-check disable-on-404\n"
               " http-check send-state\n")
    assert ck.kind == "http" and ck.disable_on_404 and ck.send_state
    assert ck.steps == (m.HttpCheckSend("GET", "/hc", "HTTP/1.1", (("Host", "svc.example.com"),)),
                        m.HttpCheckExpect(match="status", pattern="200-299,304"))
    ck = check(" option httpchk\n http-check connect port 8081\n"
               " http-check send meth GET uri /ws ver HTTP/1.1 hdr Connection Upgrade "
               "hdr Upgrade websocket\n http-check expect ! rstatus ^5\n"
               " http-check expect hdr name -m str upgrade value -m beg websocket\n")
    assert ck.steps[0] == m.CheckConnect(port=8081)
    assert ck.steps[1].method == "GET" and ck.steps[1].headers[1] == ("Upgrade", "websocket")
    assert ck.steps[2] == m.HttpCheckExpect(match="rstatus", pattern="^5", negate=True)
    assert ck.steps[3].hdr_name == "upgrade" and ck.steps[3].value_method == "beg"


def test_httpchk_hidden_headers_warn_and_strict():  # 2.6 deprecation text (spec §7.3)
    text = BASE + "backend b\n option httpchk GET /h HTTP/1.1\\r\\nHost:\\ www.x.com\n"
    res = cfg(text)
    assert res.ok
    assert msgs(res, "warning") == ["parsing [t.cfg:7]: 'option httpchk' : hiding headers or "
                                    "body at the end of the version string is deprecated. "
                                    "Please, consider to use 'http-check send' directive "
                                    "instead."]
    send = res.config.backend("b").check.steps[0]
    assert (send.version, send.headers) == ("HTTP/1.1", (("Host", "www.x.com"),))
    assert not cfg(text, strict=True).ok


def test_tcp_check():
    c = ok(BASE + "backend b\n option tcp-check\n tcp-check connect port 6379\n"
           " tcp-check send PING\\r\\n\n tcp-check send-binary 0a0b\n"
           " tcp-check expect string +PONG\n tcp-check expect ! rstring ^-ERR\n")
    ck = c.backend("b").check
    assert ck.kind == "tcp-check"
    assert ck.steps == (m.CheckConnect(port=6379), m.TcpCheckSend(b"PING\r\n"),
                        m.TcpCheckSend(b"\n\x0b"), m.TcpCheckExpect("string", b"+PONG"),
                        m.TcpCheckExpect("rstring", b"^-ERR", negate=True))


def test_http_check_without_httpchk_warns():  # 2.6.12
    res = cfg(BASE + "backend b\n http-check expect status 200\n")
    assert "backend 'b' uses http-check rules without 'option httpchk', so the rules are "\
        "ignored." in msgs(res, "warning")


def test_legacy_keywords_warn_or_fail_when_strict():
    text = BASE + "backend b\n contimeout 5000\n srvtimeout 50s\n redispatch\n"
    res = cfg(text)
    assert res.ok
    t = res.config.backend("b")
    assert (t.timeouts.connect, t.timeouts.server, t.options.redispatch) == (5.0, 50.0, True)
    assert [d.code for d in res.diagnostics] == ["legacy-keyword"] * 3
    assert res.diagnostics[0].text.startswith("the 'contimeout' directive is not supported "
                                              "anymore since HAProxy 2.1. Use 'timeout "
                                              "connect'.")
    strict = cfg(text, strict=True)
    assert not strict.ok and [d.severity for d in strict.diagnostics] == ["alert"] * 3


def test_empty_word_behaves_like_missing_argument():
    res = cfg(BASE + 'frontend f\n http-request set-header X "${EMPTY}"\n')
    assert "expects exactly 2 arguments." in msgs(res, "alert")[0]


def test_unsupported_sections_are_skipped():
    res = cfg("program x\n command /bin/true\npeers p\n peer a 1.1.1.1:1\n" + BASE)
    assert res.ok
    assert [d.code for d in res.diagnostics] == ["unsupported-section"] * 2
    # a userlist is read (tests/test_auth.py)
    res = cfg("userlist u\n user a password x\n" + BASE)
    assert res.ok and not res.diagnostics and res.config.userlist("u") is not None


def test_fifty_fatal_errors_cap():
    res = cfg("global\n" + " foobar\n" * 80)
    assert len(res.diagnostics) == 51
    assert res.diagnostics[-1].text == "too many fatal errors (50), stopping now."


def test_config_text_and_files():
    text = BASE + "frontend f\n bind :80\n"
    res = load_text(text, "x.cfg")
    assert res.config.text == text and res.config.files == ("x.cfg",)


def test_unsupported_actions():
    res = cfg(BASE + "frontend f\n bind :80\n http-request set-log-level err\n"
              " http-request set-priority-class int(1)\n")
    assert res.ok and [d.code for d in res.diagnostics] == ["unsupported-action"] * 2
    # do-resolve is carried out (tests/test_do_resolve.py): it needs its section
    res = cfg(BASE + "frontend f\n bind :80\n http-request do-resolve(txn.ip,dns) hdr(host)\n")
    assert not res.ok and res.diagnostics[0].code == "unknown-resolvers"
    res = cfg("resolvers dns\n nameserver ns1 127.0.0.1:53\n" + BASE
              + "frontend f\n bind :80\n http-request do-resolve(txn.ip,dns) hdr(host)\n")
    assert res.ok, [d.message() for d in res.diagnostics]


def test_tcp_mode_fallbacks():  # texts and order checked against HAProxy 2.6.12
    res = cfg("defaults\n mode tcp\n" + TMO + "frontend f\n bind :18080\n option httplog\n"
              " http-request deny if TRUE\n default_backend b\n log stdout local0\n"
              "backend b\n cookie SRV insert\n balance uri\n server s 127.0.0.1:80 cookie a\n")
    assert res.ok
    assert msgs(res, "warning") == [
        "parsing [t.cfg:8] : 'option httplog' not usable with frontend 'f' (needs 'mode "
        "http'). Falling back to 'option tcplog'.",
        "'http-request' rules ignored for frontend 'f' as they require HTTP mode.",
        "cookie will be ignored for backend 'b' (needs 'mode http').",
        "Layer 7 hash not possible for backend 'b' (needs 'mode http'). Falling back to round "
        "robin.",
        "backend 'b' : ignoring cookie for server 's' as HTTP mode is disabled."]
    f, b = res.config.frontend("f"), res.config.backend("b")
    # (the rules stay: they run on a connection an HTTP backend upgrades, as HAProxy's)
    assert f.log_format.startswith("%ci:%cp [%t] ") and len(f.http_request_rules) == 1
    assert b.cookie is None and b.balance.algorithm == "roundrobin"
    assert b.servers[0].cookie is None


def test_track_targets():  # 2.6.12
    res = cfg(BASE + "backend b\n server s1 127.0.0.1:80 track b/nosuch\n"
              " server s3 127.0.0.1:80 track nob/s2\n server s4 127.0.0.1:80 track s5\n"
              " server s5 127.0.0.1:80\n server s6 127.0.0.1:80 track s7\n"
              " server s7 127.0.0.1:80 check\n")
    assert msgs(res, "alert") == [
        "[t.cfg:7] : 'server b/s1' : unable to find required server 'nosuch' for tracking.",
        "[t.cfg:8] : 'server b/s3' : unable to find required proxy 'nob' for tracking.",
        "[t.cfg:9] : 'server b/s4' : unable to use b/s5 for tracking as it does not have any "
        "check nor agent enabled."]
    assert {d.phase for d in res.diagnostics} == {"check"}


def test_misspelled_section_names_are_suggested():  # 2.6.12
    res = cfg("defaults\n mode http\nfronted f\nbackand b\nglobal\n defualts\n")
    assert msgs(res, "alert") == [
        "parsing [t.cfg:3] : unknown keyword 'fronted' in 'defaults' section; did you mean "
        "'frontend' maybe ?",
        "parsing [t.cfg:4] : unknown keyword 'backand' in 'defaults' section; did you mean "
        "'backend' maybe ?",
        "parsing [t.cfg:6] : unknown keyword 'defualts' in 'global' section; did you mean "
        "'defaults' maybe ?"]


def test_bind_ssl_reads_its_certificate():
    res = cfg(BASE + "frontend f\n bind :443 ssl crt /x.pem\n")
    assert [d.code for d in res.diagnostics] == ["bad-bind-option"] and not res.ok


def test_tls_to_a_server_is_taken_without_a_word():
    res = cfg(BASE + "backend b\n server s 127.0.0.1:443 ssl verify none sni str(x)\n")
    assert res.ok and res.diagnostics == []
    srv = res.config.backend("b").servers[0]
    assert (srv.ssl, srv.verify, srv.sni) == (True, "none", "str(x)")


def test_listen_is_called_proxy_and_misplaced_backend_keywords():  # 2.6.12
    res = cfg(BASE + "listen x\n bind :18081\n default_backend b\n server s 127.0.0.1:80\n"
              " tcp-check expect string x\nbackend b\n server s 127.0.0.1:80\n")
    assert msgs(res, "warning") == [
        "In proxy 'x', the 'default_backend' rule always has precedence over the servers, "
        "which will never be used.",
        "proxy 'x' uses tcp-check rules without 'option tcp-check', so the rules are ignored."]
    res = cfg(BASE + "frontend f\n bind :1\n default-server inter 2s\n retry-on conn-failure\n")
    assert msgs(res, "alert") == [
        "[t.cfg:8] : parsing [t.cfg:8] : 'default-server' not allowed because frontend 'f' has "
        "no backend capability.",
        "parsing [t.cfg:9] : 'retry-on' only available in backend or listen section"]


@pytest.mark.parametrize("text,msg", [  # 2.6.12, found by the differential test
    (BASE + "listen l\n bind :1\n monitor-net 10.0.0.0/8\n",
     "parsing [t.cfg:8] : 'monitor-net' doesn't exist anymore. Please use 'http-request "
     "return status 200 if { src 10.0.0.0/8 }' instead."),
    (BASE + "listen l\n bind :1 bogus\n", "parsing [t.cfg:7] : 'bind :1' in section 'listen': "
     "unknown keyword 'bogus'."),
    (BASE + "backend b\n server t 127.0.0.1:80 on-marked-down bogus\n",
     "[t.cfg:7] : 'server b/t' : 'on-marked-down' expects 'shutdown-sessions' but got "
     "'bogus'."),
    (BASE + "listen l\n server s 127.0.0.1:80\n server s 127.0.0.1:81\n",
     "parsing [t.cfg:8] : proxy 'l', another server named 's' was already defined at line 7, "
     "please use distinct names."),
    (BASE + "listen l\n http-request set-var(txn.x) bogus\n",
     "parsing [t.cfg:7] : error detected in proxy 'l' while parsing 'http-request "
     "set-var(txn.x)' rule : unknown fetch method 'bogus'."),
    (BASE + "listen l\n balance hash bogus\n",
     "proxy 'l' [t.cfg:6]: failed to parse 'balance hash' expression 'bogus' in : unknown "
     "fetch method 'bogus'."),
    (BASE + "listen l\n use_backend be_%[bogus]\n",
     "Parsing [t.cfg:7]: failed to parse use_backend rule 'be_%[bogus]' : failed to parse "
     "sample expression <bogus]> : unknown fetch method 'bogus'."),
    (BASE + "listen l\n http-check send bogus\n",
     "parsing [t.cfg:7] : 'http-check send' : expects 'comment', 'meth', 'uri', 'uri-lf', "
     "'ver', 'hdr', 'body' or 'body-lf' but got 'bogus' as argument.."),
    (BASE + "listen l\n tcp-check send-binary zz\n",
     "parsing [t.cfg:7] : 'tcp-check send-binary' : 'zz' invalid binary string (an hex digit "
     "is expected (found 'z')).\n."),
    ("global\n hard-stop-after x\n", "parsing [t.cfg:2] : unexpected character 'x' in "
     "argument to <hard-stop-after>."),
    ("global\n chroot\n", "parsing [t.cfg:2] : 'chroot' expects a directory as an argument."),
    ("defaults d\n http-request deny\ndefaults e from d\n", "parsing [t.cfg:3]: a defaults "
     "section cannot inherit from a defaults section defining TCP/HTTP rules (defaults "
     "section at t.cfg:1)."),
])
def test_more_texts_from_differential_runs(text, msg):
    assert msg in msgs(cfg(text))


def test_no_bind_and_acl_warning_forms():  # 2.6.12
    res = cfg(BASE + "listen m\n acl a path\n")
    assert msgs(res, "warning")[0] == "parsing acl keyword 'path' :"
    assert res.diagnostics[0].more[0] == "  no pattern to match against were provided, so "\
        "this ACL will never match."
    assert res.diagnostics[0].more[-1] == ""  # HAProxy ends it with a blank line
    assert "proxy 'm' has no 'bind' directive. Please declare it as a backend if this was "\
        "intended." in msgs(res, "warning")


def test_default_option_resets_to_the_defaults_section():
    c = ok("defaults\n mode http\n option http-server-close\n option dontlognull\n" + TMO +
           "frontend f\n bind :1\n no option dontlognull\n option httpclose\n"
           " default option dontlognull\n default option http-server-close\n")
    f = c.frontend("f")
    assert f.options.dontlognull and f.options.http_server_close and not f.options.httpclose
    # HAProxy 2.6.12 refuses these; lb accepts them (docs/config.md)
    c = ok("defaults\n mode http\n option httplog\n option forwardfor\n" + TMO +
           "frontend f\n bind :1\n no option httplog\n no option forwardfor\n")
    f = c.frontend("f")
    assert f.log_format is None and not f.options.httplog and f.forwardfor is None


def test_inherited_stats_lists_are_not_shared():
    c = ok(BASE + " stats auth a:a\nlisten one\n bind :1\n stats auth b:b\n"
           "listen two\n bind :2\n")
    assert c.proxies[0].stats.auth == (("a", "a"), ("b", "b"))
    assert c.proxies[1].stats.auth == (("a", "a"),)


@pytest.mark.parametrize("line,msg", [  # haproxy -c, 2.6.12 (2026-11-24)
    ("busy-polling x", "'busy-polling' cannot handle unexpected argument 'x'."),
    ("no busy-polling x", "'busy-polling' cannot handle unexpected argument 'x'."),
    # `default X` hands X its arguments with the line's last word repeated
    ("default busy-polling", "'busy-polling' cannot handle unexpected argument "
     "'busy-polling'."),
    ("default busy-polling x", "'busy-polling' cannot handle unexpected argument 'x'."),
    ("default set-dumpable", "'set-dumpable' cannot handle unexpected argument "
     "'set-dumpable'."),
    ("default set-dumpable x y", "'set-dumpable' cannot handle unexpected argument 'x'."),
    ("no strict-limits x", "'strict-limits' cannot handle unexpected argument 'x'."),
    ("default insecure-fork-wanted", "'insecure-fork-wanted' cannot handle unexpected "
     "argument 'insecure-fork-wanted'."),
    ("no log x", "log : 'no log' does not expect arguments"),
    ("default log", "log : expects <address> and <facility>  as arguments"),
    ("default log 127.0.0.1 local0", "log : unknown optional log level 'local0'"),
    # the global section words these two its own way
    ("log", "log : expects <address> and <facility>  as arguments"),
    ("log 127.0.0.1", "log : expects <address> and <facility>  as arguments"),
    ("log global", "log : 'global' is not supported for a global syslog server"),
])
def test_global_negation_and_log_errors(line, msg):
    res = cfg(f"global\n {line}\n")
    assert not res.ok
    assert msgs(res, "alert") == [f"parsing [t.cfg:2] : {msg}"]


def test_busy_polling_and_its_negation():
    assert not ok("global\n").global_.busy_polling
    assert ok("global\n busy-polling\n").global_.busy_polling
    assert not ok("global\n busy-polling\n no busy-polling\n").global_.busy_polling
    assert ok("global\n no busy-polling\n busy-polling\n").global_.busy_polling
    res = cfg("global\n busy-polling\n")
    assert res.diagnostics == [] or all("busy-polling" not in d.message()
                                        for d in res.diagnostics)  # no "not supported"
    # numa-cpu-mapping takes anything after no/default (2.6.12); `default log A B C` is
    # `log A B C C`
    ok("global\n no numa-cpu-mapping x\n default numa-cpu-mapping\n")
    t, = ok("global\n default log 127.0.0.1 local0 info\n").global_.logs
    assert (t.address, t.facility, t.level, t.minlevel) == ("127.0.0.1", "local0", "info",
                                                           "info")
    assert ok("global\n log 127.0.0.1 local0\n no log\n").global_.logs == ()


@pytest.mark.parametrize("line,severity,text", [  # haproxy -c, 2.6.12 (2026-11-25)
    ("filter", "alert",
     "parsing [t.cfg:7] : parsing [t.cfg:7] : missing argument for 'filter' in backend 'b'."),
    ("filter bogus", "alert",
     "parsing [t.cfg:7] : 'filter' : unknown keyword 'bogus'. Registered keywords :"),
    ("filter compression extra", "alert",
     "parsing [t.cfg:7] : 'filter compression' : unknown keyword 'extra'."),
    ("filter cache", "alert",
     "parsing [t.cfg:7] : 'filter' : 'cache : expects a <name> argument'"),
    ("filter trace bogus", "alert",
     "parsing [t.cfg:7] : 'filter trace' : unknown keyword 'bogus'."),
    ("filter trace name", "alert",
     "parsing [t.cfg:7] : 'filter' : ''trace' : 'name' option without value'"),
    # lb's own word: it has no trace filter (HAProxy takes the line)
    ("filter trace name t1 hexdump", "warning",
     "parsing [t.cfg:7] : 'filter trace' is not supported by lb and is ignored."),
])
def test_filter_lines(line: str, severity: str, text: str) -> None:
    res = cfg(BASE + f"backend b\n {line}\n server s 1.2.3.4:80\n")
    assert text in msgs(res, severity), msgs(res)


def test_filter_compression_is_taken_quietly() -> None:
    res = cfg(BASE + "backend b\n filter compression\n compression algo gzip\n"
              " server s 1.2.3.4:80\n")
    assert res.ok and not res.diagnostics, msgs(res)
    assert res.config.backend("b").compression is not None
    res = cfg(BASE + "backend b\n filter bogus\n server s 1.2.3.4:80\n")
    listing = [d.more for d in res.diagnostics if d.code == "unknown-filter"][0]
    assert listing[1] == "    [COMP] compression" and len(listing) == 6


@pytest.mark.parametrize("check,line,text", [  # haproxy -c, 2.6.12 (2026-11-25)
    ("httpchk", "http-check comment", "'http-check comment' : expects a string as argument."),
    ("httpchk", "http-check disable-on-404 x",
     "'http-check' cannot handle unexpected argument 'x'."),
    ("httpchk", "http-check send-state 1 2", "'http-check' cannot handle unexpected argument '1'."),
    ("tcp-check", "tcp-check comment", "'tcp-check comment' : expects a string as argument."),
])
def test_check_keyword_arguments(check: str, line: str, text: str) -> None:
    res = cfg(BASE + f"backend b\n option {check}\n {line}\n server s 1.2.3.4:80 check\n")
    assert f"parsing [t.cfg:8] : {text}" in msgs(res, "alert"), msgs(res)
    assert ok(BASE + f"backend b\n option {check}\n {line.split()[0]} comment a b\n"
              " server s 1.2.3.4:80 check\n") is not None


def test_use_service_names_a_known_service():  # texts checked against HAProxy 2.6.12
    fe = BASE + "frontend f\n bind :80\n"
    assert cfg(fe + " http-request use-service prometheus-exporter\n").ok
    for name in ("foo", "lua.foo"):  # (no Lua scripts: a `lua.` service is unknown)
        res = cfg(fe + f" http-request use-service {name}\n")
        assert not res.ok and msgs(res) == [
            "parsing [t.cfg:8] : error detected in frontend 'f' while parsing 'http-request "
            f"use-service' rule : '{name}' unknown service name.."]
    # HAProxy 2.6.12 takes no service in tcp-request content (its text for an unknown
    # one names the rule set)
    for name, text in (("prometheus-exporter", "Prometheus exporter service only "
                        "available on 'http-request' rulesets"),
                       ("foo", "'content' unknown service name."),
                       ("", "'tcp-request' expects a service name.")):
        res = cfg(fe + f" tcp-request content use-service {name}\n")
        assert not res.ok and msgs(res) == [f"parsing [t.cfg:8] : {text}"], name
