"""The ACL / sample table compared against HAProxy 2.6 (data only, no I/O).

``run_haproxy.py`` sends every request in ``REQUESTS`` to a real HAProxy configured
with every ACL in ``ACLS`` and every sample expression in ``SAMPLES`` and writes what
HAProxy decided into ``results.json``; ``tests/test_match_haproxy_table.py`` replays the
same table through ``lb.match`` and compares. ``ERRORS`` are ACL/condition lines whose
``haproxy -c`` message is recorded the same way.

ACLs are given as already-lexed words (what the config lexer hands to lb.match).
Pattern files named with ``-f`` live in ``patterns/`` (HAProxy runs with that cwd).
"""

from __future__ import annotations

# ----------------------------------------------------------------------------- requests
# id -> raw request bytes (sent over IPv4 unless the id ends with "_v6").
REQUESTS: dict[str, bytes] = {
    "ws": (b"GET /websockets/chat?room=1 HTTP/1.1\r\n"
           b"Host: ws.example.com\r\n"
           b"Connection: keep-alive, Upgrade\r\n"
           b"Upgrade: WebSocket\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Sec-WebSocket-Version: 13\r\n"
           b"Sec-WebSocket-Protocol: echo-protocol\r\n"
           b"\r\n"),
    "multi": (b"GET /a/b HTTP/1.1\r\n"
              b"Host: www.EXAMPLE.com:8080\r\n"
              b"X: foo\r\n"
              b"X: bar,baz\r\n"
              b"X-N: 12abc\r\n"
              b"X-Q: \"a,b\", c\r\n"
              b"X-E:\r\n"
              b"X-C: a,,b,\r\n"
              b"X-Sp:   padded   \r\n"
              b"User-Agent: Mozilla/5.0 (X11; Linux x86_64), Gecko\r\n"
              b"\r\n"),
    "img": (b"GET /img/x.png?v=2&a=&b HTTP/1.1\r\n"
            b"Host: static.example.com\r\n"
            b"Referer: http://www.example.com/image/a.jpg\r\n"
            b"Cookie: sid=abc; lang=en\r\n"
            b"Cookie: sid=def\r\n"
            b"X-N: foo\r\n"
            b"X-Forwarded-For: 10.1.2.3, 192.168.1.1:8080\r\n"
            b"\r\n"),
    "image": (b"GET /image/a.jpg? HTTP/1.1\r\n"
              b"Host: api.example.com\r\n"
              b"X-N: -7\r\n"
              b"X-Forwarded-For: ::1\r\n"
              b"X-Dash: -q\r\n"
              b"\r\n"),
    "abs": (b"GET http://example.com:8080/p/q?z=1 HTTP/1.1\r\n"
            b"Host: example.com:8080\r\n"
            b"\r\n"),
    "http10": (b"GET /old/page.html HTTP/1.0\r\n"
               b"\r\n"),
    "post": (b"POST /api/v1/items?n=5 HTTP/1.1\r\n"
             b"Host: api.example.com\r\n"
             b"Content-Length: 5\r\n"
             b"Content-Type: text/plain\r\n"
             b"\r\n"
             b"hello"),
    "purge": (b"PURGE /cache/x HTTP/1.1\r\n"
              b"Host: www.example.com\r\n"
              b"\r\n"),
    "lower_get": (b"get /x HTTP/1.1\r\n"
                  b"Host: www.example.com\r\n"
                  b"\r\n"),
    "options_star": (b"OPTIONS * HTTP/1.1\r\n"
                     b"Host: www.example.com\r\n"
                     b"\r\n"),
    "params": (b"GET /p?a=1&a=2&b=x%20y+z&c&d=4;e=5 HTTP/1.1\r\n"
               b"Host: www.example.com\r\n"
               b"Cookie: a=1; a=2;b=3\r\n"
               b"Cookie: c=\r\n"
               b"\r\n"),
    "bytes": (b"GET /b%C3%A9?q=%C3%A9 HTTP/1.1\r\n"
              b"Host: www.example.com\r\n"
              b"X-U: caf\xc3\xa9 \"q\" \\ end\r\n"
              b"X-Tab: a\tb\r\n"
              b"\r\n"),
    "bare_v6": (b"GET /v6/ HTTP/1.1\r\n"
                b"Host: [::1]:8080\r\n"
                b"X-Forwarded-For: 2001:db8::1, 10.0.0.1\r\n"
                b"\r\n"),
}

V6_REQUESTS = frozenset(("bare_v6",))

# ----------------------------------------------------------------------------- ACLs
# Each entry is the word list after "acl <name>".
ACLS: list[list[str]] = [
    # hdr: comma splitting, occurrences, case
    ["hdr(x)", "foo"], ["hdr(x)", "bar"], ["hdr(x)", "baz"], ["hdr(x)", "bar,baz"],
    ["hdr(X)", "FOO"], ["hdr(x)", "-i", "FOO"],
    ["hdr(x,1)", "foo"], ["hdr(x,2)", "foo"], ["hdr(x,2)", "bar"], ["hdr(x,-1)", "baz"],
    ["hdr(x,-2)", "bar"], ["hdr(x,0)", "baz"], ["hdr(x,0)", "foo"], ["hdr(x,4)", "-m", "found"],
    ["hdr(x,-10)", "-m", "found"],
    ["hdr(x)", "-m", "found"], ["hdr", "-m", "found"], ["hdr()", "-m", "found"],
    ["req.fhdr(x)", "foo"], ["req.fhdr(x)", "bar,baz"], ["req.fhdr(x)", "bar"], ["req.fhdr(x,1)", "foo"],
    ["req.hdr(x)", "-m", "sub", "ar"], ["req.fhdr(x)", "-m", "beg", "bar"],
    ["hdr(x-q)", '"a,b"'], ["hdr(x-q)", "c"], ["hdr(x-q)", "-m", "sub", "a,b"],
    ["hdr(x-e)", "-m", "found"], ["hdr_len(x-e)", "0"], ["hdr(x-e)", "-m", "len", "0"],
    ["hdr(x-c)", "-m", "len", "0"], ["hdr(x-c,2)", "-m", "found"], ["hdr(x-c,2)", "-m", "len", "0"],
    ["hdr(x-sp)", "padded"], ["hdr(user-agent)", "Gecko"],
    ["hdr(user-agent)", "-m", "beg", "Mozilla/5.0"], ["req.fhdr(user-agent)", "-m", "end", "Gecko"],
    ["hdr(nope)", "-m", "found"], ["hdr(nope)", "-m", "len", "0"],
    # hdr_* derivatives
    ["hdr_beg(host)", "-i", "ws."], ["hdr_beg(host)", "ws."], ["hdr_beg(Host)", "WS."],
    ["hdr_end(host)", "-i", "example.com"], ["hdr_end(host)", "example.com"],
    ["hdr_end(host)", "-i", "ws.example.com"],
    ["hdr_sub(user-agent)", "X11"], ["hdr_sub(user-agent)", "-i", "linux"],
    ["hdr_reg(user-agent)", "^Mozilla/[0-9]"], ["hdr_reg(host)", "-i", "^WWW\\."],
    ["hdr_reg(x)", "^ba"],
    ["hdr_dom(host)", "-i", "example"], ["hdr_dom(host)", "example"], ["hdr_dom(host)", "8080"],
    ["hdr_dom(host)", "ws.example"], ["hdr_dom(host)", ".com."], ["hdr_dom(host)", "exam"],
    ["hdr_dir(referer)", "image"], ["hdr_dir(referer)", "img"], ["hdr_dir(referer)", "/a.jpg"],
    ["hdr_len(host)", "14"], ["hdr_len(x)", "3"], ["hdr_len(x)", "gt", "3"],
    ["hdr_cnt(x)", "eq", "0"], ["hdr_cnt(x)", "eq", "3"], ["hdr_cnt(x)", "2"],
    ["hdr_cnt(nope)", "eq", "0"], ["hdr_cnt(nope)", "-m", "found"],
    ["hdr_cnt(x-c)", "4"], ["hdr_cnt(x-q)", "2"], ["hdr_cnt", "gt", "5"],
    ["hdr_cnt(sec-websocket-key)", "eq", "1"], ["hdr_cnt(Sec-WebSocket-Version)", "eq", "1"],
    ["req.hdr_cnt(x)", "3"], ["req.fhdr_cnt(x)", "2"], ["req.fhdr_cnt(cookie)", "2"],
    ["hdr_val(x-n)", "12"], ["hdr_val(x-n)", "0"], ["hdr_val(x-n)", "gt", "10"],
    ["hdr_val(x-n)", "lt", "0"], ["hdr_val(x-n)", "le", "-1"], ["hdr_val(x-n)", "--", "-7"],
    ["hdr_val(x-n)", "-m", "found"], ["hdr_val(x-n)", "10:20"], ["hdr_val(x-n)", ":11"],
    ["hdr_val(x-n)", "13:"], ["hdr_val(x-n)", "eq", "1", "12"], ["hdr_val(x-n)", "gt", "20", "3"],
    ["hdr_val(x-n)", "ge", "12"], ["hdr_val(x-n)", "--", "-8"],
    ["hdr_ip(x-forwarded-for)", "10.0.0.0/8"], ["hdr_ip(x-forwarded-for)", "192.168.1.1"],
    ["hdr_ip(x-forwarded-for,1)", "192.168.1.1"], ["hdr_ip(x-forwarded-for)", "::1"],
    ["hdr_ip(x-forwarded-for)", "127.0.0.1"],
    ["hdr(connection)", "-i", "upgrade"], ["hdr(connection)", "-i", "keep-alive"], ["hdr(upgrade)", "-i", "websocket"],
    ["hdr(Upgrade)", "WebSocket"], ["hdr(sec-websocket-protocol)", "echo-protocol"],
    ["hdr(x-dash)", "--", "-q"], ["hdr(x-dash)", "-m", "str", "--", "-q"],
    # path
    ["path", "/a/b"], ["path", "/p/q"], ["path", "-m", "found"], ["path", "-m", "len", "0"],
    ["path_beg", "/web"], ["path_beg", "-i", "/WEBSOCKETS"], ["path_beg", "/websockets", "/img"],
    ["path_end", ".png"], ["path_end", "/"], ["path_sub", "sock"], ["path_sub", "age/a"],
    ["path_reg", "^/[a-z]+/x"], ["path_reg", "\\.(png|jpg)$"],
    ["path_dir", "img"], ["path_dir", "/img"], ["path_dir", "img/x.png"], ["path_dir", "x.png"],
    ["path_dir", "/image/"], ["path_dir", "im"], ["path_dom", "png"], ["path_dom", "x"],
    ["path_len", "4"], ["path_len", "gt", "9"], ["path", "-m", "beg", "/a"],
    ["path", "-m", "reg", "^/a"], ["path_beg", "-m", "end", ".png"], ["path", "-m", "sub", "v1"],
    ["path", "*"],
    # url
    ["url", "/a/b"], ["url", "*"], ["url_beg", "/"], ["url_beg", "http://"], ["url_end", "=1"],
    ["url_sub", "?"], ["url_reg", "^[^/:]*://"], ["url_dir", "chat"], ["url_dom", "example"],
    ["url_dom", "8080"], ["url_len", "4"], ["url", "-m", "found"],
    # base / query / url_param
    ["base", "www.EXAMPLE.com:8080/a/b"], ["base_beg", "ws.example.com/"],
    ["base", "-m", "sub", "example.com/p"], ["base", "/old/page.html"], ["base", "-m", "found"],
    ["base_end", "/x.png"], ["base_dom", "static"],
    ["query", "-m", "found"], ["query", "-m", "len", "0"], ["query", "room=1"],
    ["query", "-m", "sub", "a="],
    ["url_param(v)", "2"], ["urlp(a)", "-m", "found"], ["urlp(a)", "-m", "len", "0"],
    ["urlp(b)", "-m", "found"], ["urlp(room)", "1"], ["urlp_val(n)", "gt", "3"],
    ["urlp(z)", "1"], ["urlp(a)", "2"], ["urlp(a)", "1"], ["urlp(c)", "-m", "found"],
    ["urlp(d,;)", "4"], ["url_param(e,;)", "5"], ["urlp_val(a)", "2"],
    ["cook(a)", "1"], ["cook(a)", "2"], ["cook(c)", "-m", "found"], ["cook(c)", "-m", "len", "0"],
    ["cook", "-m", "found"], ["hdr(x-u)", "-m", "sub", "caf"], ["path", "-m", "len", "4"],
    ["hdr(x-u),length", "ge", "10"], ["hdr_cnt(x)", "-m", "bin", "0000000000000003"],
    ["hdr_cnt(x)", "-m", "bool"], ["hdr(x-n)", "-m", "bool"], ["always_false", "-m", "bool"],
    ["hdr_val(x-n)", "-m", "bool"], ["hdr(x)", "-m", "bin", "666F6F"],
    ["hdr_cnt(x)", "-m", "str", "3"], ["hdr_cnt(x)", "-m", "beg", "3"], ["src", "-m", "sub", "0.0"],
    ["hdr_ip(x-forwarded-for)", "-m", "ip", "::1"], ["hdr(x-forwarded-for)", "-m", "ip", "10.0.0.0/8"], ["hdr_cnt(x),hex", "-m", "found"], ["cook_cnt", "gt", "2"], ["cook_val(b)", "3"],
    # method
    ["method", "GET"], ["method", "get"], ["method", "-i", "get"], ["method", "-i", "purge"],
    ["method", "PURGE"], ["method", "purge"], ["method", "-m", "str", "GET"],
    ["method", "HEAD"], ["method", "GET", "HEAD"], ["method", "POST"], ["method", "OPTIONS"],
    ["method", "-m", "beg", "P"],
    # version
    ["req.ver", "1.1"], ["req_ver", "1.0"], ["req.ver", "-m", "beg", "1"],
    # layer 4
    ["src", "127.0.0.1"], ["src", "127.0.0.0/8"], ["src", "127.0/16"], ["src", "127/8"],
    ["src", "::1"], ["src", "::ffff:127.0.0.1"], ["src", "::ffff:127.0.0.0/104"],
    ["src", "10.0.0.0/8"], ["src", "0.0.0.0/0"], ["src", "::/0"],
    ["src", "127.0.0.1/255.0.0.0"], ["src", "-f", "nets.lst"],
    ["src_port", "1:65535"], ["src_port", "0"], ["dst", "127.0.0.1"], ["dst", "::1"],
    ["dst_port", "1:65535"], ["dst", "-m", "found"],
    # cookies
    ["cook(sid)", "abc"], ["cook(sid)", "def"], ["req.cook(sid)", "-m", "found"],
    ["cook(lang)", "en"], ["cook_cnt(sid)", "2"], ["req.cook_cnt(sid)", "eq", "0"],
    ["cook(nope)", "-m", "found"], ["cook_beg(sid)", "ab"],
    # booleans / misc
    ["always_true"], ["always_false"], ["req.proto_http"], ["wait_end"], ["ssl_fc"],
    ["req.len", "gt", "0"], ["req.len", "0"], ["always_true", "-m", "found"],
    # converters
    ["hdr(host),lower", "-m", "end", "example.com:8080"], ["hdr(host),lower", "www.example.com:8080"],
    ["hdr_beg(host),lower", "ws."], ["hdr_beg(host),lower", "ws.example.com"],
    ["hdr(x),upper", "FOO"], ["path,field(2,/)", "a"], ["path,field(2,/)", "img"],
    ["hdr(host),word(1,.)", "www"], ["hdr(x),length", "3"], ["hdr(x),length", "gt", "3"],
    ["hdr_cnt(x),add(1)", "4"], ["path,regsub(/,_,g)", "_a_b"], ["hdr(x),hex", "666F6F"],
    ["hdr_val(x-n),mul(2)", "24"], ["path,lower", "-m", "beg", "/websockets"],
    ["hdr(x-n)", "-m", "int", "12"], ["hdr(x-n)", "-m", "int", "gt", "-9"],
    ["hdr(x-n),bool", "-m", "found"],
    # match-method overrides on ints / ips
    ["src_port", "-m", "int", "gt", "0"], ["hdr_ip(x-forwarded-for)", "-m", "str", "::1"],
    ["src", "-m", "beg", "127."], ["src", "-m", "str", "127.0.0.1"],
    # pattern files
    ["hdr(host)", "-i", "-f", "hosts.lst"], ["hdr(host)", "-f", "hosts.lst"],
    ["hdr(host)", "-f", "hosts.lst", "-i", "-f", "hosts.lst"],
    ["path_beg", "-f", "prefixes.lst"], ["hdr(host)", "-M", "-f", "hosts.map"],
    ["hdr(host)", "-f", "hosts.lst", "ws.example.com"],
    # no patterns: never matches (warning)
    ["hdr(host)"], ["path"],
]

# ----------------------------------------------------------------------------- conditions
# Words after "if" (and, negated as a whole, after "unless"): predefined ACLs, anonymous
# ACLs, AND / OR / negation forms.
CONDITIONS: list[list[str]] = [
    ["TRUE"], ["FALSE"], ["LOCALHOST"], ["HTTP"], ["HTTP_1.0"], ["HTTP_1.1"], ["HTTP_2.0"],
    ["METH_CONNECT"], ["METH_DELETE"], ["METH_GET"], ["METH_HEAD"], ["METH_OPTIONS"],
    ["METH_POST"], ["METH_PUT"], ["METH_TRACE"], ["HTTP_URL_ABS"], ["HTTP_URL_SLASH"],
    ["HTTP_URL_STAR"], ["HTTP_CONTENT"], ["RDP_COOKIE"], ["WAIT_END"],
    ["!TRUE"], ["!!TRUE"], ["!", "!", "FALSE"], ["!", "TRUE"], ["TRUE", "or"],
    ["FALSE", "OR", "TRUE"], ["FALSE", "||", "TRUE"], ["TRUE", "FALSE", "||", "TRUE"],
    ["TRUE", "FALSE", "or", "FALSE"],
    ["{", "hdr(x)", "foo", "}"], ["!", "{", "hdr(x)", "foo", "}"],
    ["{", "hdr(x)", "foo", "}", "{", "path", "/a/b", "}"],
    ["{", "hdr(nope)", "x", "}", "||", "{", "path_beg", "/img", "}"],
    ["!", "{", "hdr(nope)", "-m", "found", "}", "METH_GET"],
    ["{", "hdr_cnt(sec-websocket-key)", "eq", "1", "}", "{", "hdr(upgrade)", "-i", "websocket", "}"],
    ["!", "{", "src", "10.0.0.0/8", "}", "LOCALHOST"],
    [], ["!"], ["TRUE", "!"], ["||", "TRUE"], ["FALSE", "or", "or", "TRUE"],
    ["!{", "path", "/a/b", "}"], ["{", "path", "}"], ["!", "{", "path", "}"],
]

# ----------------------------------------------------------------------------- samples
# Sample expressions rendered as log-format "%[...]" (sample context).
SAMPLES: list[str] = [
    "hdr(x)", "hdr(x,1)", "hdr(x,2)", "hdr(x,3)", "hdr(x,4)", "hdr(x,-1)", "hdr(x,-3)",
    "hdr(x,-4)", "hdr(x,0)", "req.hdr(x)", "req.fhdr(x)", "req.fhdr(x,1)", "req.fhdr(x,-1)",
    "hdr()", "req.hdr()", "hdr_cnt(x)", "hdr_cnt", "req.fhdr_cnt(x)", "req.fhdr_cnt",
    "hdr_cnt(nope)", "hdr_val(x-n)", "hdr_ip(x-forwarded-for)", "hdr_ip(x-forwarded-for,1)",
    "hdr(x-q)", "hdr(x-q,1)", "hdr(x-e)", "hdr(x-c,2)", "hdr(x-c)", "hdr(x-sp)",
    "hdr(user-agent)", "req.fhdr(user-agent)", "req.fhdr(connection)", "hdr(host)", "hdr(nope)",
    "path", "pathq", "url", "base", "query", "method", "req.ver", "req_ver", "src", "dst",
    "url_param(a)", "urlp(v)", "urlp(b)", "urlp(room)", "urlp_val(n)", "cook(sid)",
    "req.cook(sid)", "cook_cnt(sid)", "cook(lang)", "cook_val(sid)",
    "urlp(a)", "urlp(c)", "urlp(d,;)", "url_param(e,;)", "urlp(b),url_dec", "urlp_val(a)",
    "cook(a)", "cook(c)", "cook", "cook_cnt", "cook_val(b)", "url_param", "req.cook()",
    "cook_cnt(c)", "cook_cnt(a)", "urlp(b),url_dec(1)",
    "hdr(x-u)", "hdr(x-u),json", "hdr(x-u),json(utf8)", "hdr(x-u),hex", "hdr(x-u),upper",
    "hdr(x-u),length", "hdr(x-u),base64", "hdr(x-tab)", "hdr(x-tab),json", "path,url_dec",
    "urlp(q),url_dec", "int(5),hex", "hdr_cnt(x),hex", "str(Ab1),upper,lower", "str(3),add(2)",
    "str(abc),bool", "int(0),bool", "int(7),not", "int(-7),div(2)", "int(-7),mod(2)",
    "str(a.b.c),field(2,.,2)", "str(a.b.c),field(-2,.,2)", "str(a..b),word(2,.)",
    "str(a..b),field(2,.)", "str(/a//b/),word(-1,/)",
    "req.hdr(host),lower", "hdr(host),upper", "hdr(host),field(1,.)", "hdr(host),field(2,.)",
    "hdr(host),field(-1,.)", "hdr(host),field(5,.)", "hdr(host),word(2,.)",
    "hdr(host),word(-1,.)", "path,field(2,/)", "path,word(1,/)", "hdr(host),length",
    "path,regsub(/,_,g)", "path,regsub(/,_)", "hdr(x),hex", "hdr_val(x-n),add(3)",
    "hdr_val(x-n),mul(2)", "hdr_val(x-n),div(5)", "hdr_val(x-n),sub(20)", "hdr_val(x-n),neg",
    "hdr(host),base64", "hdr(x-q),json", "hdr_cnt(x),bool", "hdr_cnt(x),not",
    "hdr(nope),lower", "path,lower", "req.hdr(host),field(1,:)", "hdr(x-n),add(1)",
    "hdr(host),word(1,.:)", "hdr(host),field(2,.:)", "path,field(1,/)",
    "always_true", "always_false", "req.len", "ssl_fc", "wait_end", "str(abc)", "int(12)",
]

# Log-format strings rendered as-is (flags, literal text, quoting of missing samples).
FORMATS: list[str] = [
    "%{+Q}[path]", "%{+Q}[hdr(nope)]", "%{+Q}[hdr(x-e)]", "%[hdr(x-e)]",
    "be_%[req.hdr(host),lower]", "100%%", "%{+X}[hdr_val(x-n)]", "%{+E}[hdr(x-q)]",
    "%{+Q,+E}[hdr(x-q)]", "%[path,regsub(\"^/([a-z]+)/\",/\\1-x/)]",
    "%[path,regsub(\"/\",_,g)]",
    "%[req.fhdr(x),regsub(',',;,g)]", "%[path,regsub([a-z],X,g)]",
]

# ----------------------------------------------------------------------------- errors
# Config fragments (lines inside a frontend) whose `haproxy -c` alert we record.
ERRORS: dict[str, list[str]] = {
    "unknown_fetch": ["acl a nosuchfetch foo"],
    "bad_flag": ["acl a hdr(x) -q foo"],
    "int_not_number": ["acl a hdr_cnt(x) abc"],
    "int_not_number_op": ["acl a hdr_cnt(x) gt abc"],
    "occ_limit": ["acl a hdr(x,-11) foo"],
    "no_such_acl": ["http-request deny if nope"],
    "missing_brace": ["http-request deny if { hdr(x) foo"],
    "bad_ip": ["acl a src 300.1.2.3"],
    "bad_method": ["acl a path -m nosuch foo"],
    "bad_range": ["acl a hdr_cnt(x) 5:3"],
    "bad_regex": ["acl a path_reg ("],
    "missing_file": ["acl a path -f /nonexistent/file.lst"],
    "unknown_conv": ["acl a path,nosuchconv foo"],
    "no_pattern": ["acl a hdr(host)"],
    "bad_name": ["acl bad!name path /"],
    "m_after_f": ["acl a path -f prefixes.lst -m beg"],
    "fmt_unknown_var": ["http-request set-header x %zz"],
    "fmt_unknown_fetch": ["http-request set-header x %[nosuch]"],
    "fmt_unknown_conv": ["http-request set-header x %[path,nosuch]"],
    "fmt_missing_bracket": ["http-request set-header x %[path"],
    "fmt_bad_flag": ["http-request set-header x %{+Z}[path]"],
    "fmt_trailing_percent": ["http-request set-header x abc%"],
    "sample_occ_limit": ["http-request set-header x %[hdr(x,-11)]"],
    "field_zero": ["http-request set-header x %[path,field(0,/)]"],
    "hdr_space": ["acl a hdr (host) foo"],
    "hdr_unterminated": ["acl a hdr(x foo"],
    "missing_fetch": ["acl a ( foo"],
    "conv_unterminated": ["acl a path,lower( foo"],
    "conv_missing_arg": ["acl a path,field(2 foo"],
    "trailing_comma": ["acl a path, foo"],
    "junk_after_fetch": ["acl a hdr(x)junk foo"],
    "args_to_noarg": ["acl a path(1) foo"],
    "bad_occ_type": ["acl a hdr(x,abc) foo"],
    "conv_bad_int": ["acl a path,field(a,b) foo"],
    "var_empty": ["acl a var() foo"],
    "too_many_args": ["acl a hdr(x,1,2) foo"],
    "bin_odd": ["acl a path -m bin 4"],
    "bin_not_hex": ["acl a path -m bin zz"],
    "hostname_ip": ["acl a src foo.invalid"],
    "m_without_method": ["acl a hdr(x) -m"],
    "f_without_file": ["acl a hdr(x) -f"],
    "int_no_pattern": ["acl a hdr_cnt(x)"],
    "dashdash_no_pattern": ["acl a hdr(x) --"],
    "bool_no_pattern": ["acl a always_true"],
    "found_with_values": ["acl a hdr(x) -m found foo"],
    "fmt_unterminated_arg": ["http-request set-header x %[hdr(x]"],
    "fmt_conv_missing_arg": ["http-request set-header x %[path,field(2)]"],
    "fmt_args_to_noarg": ["http-request set-header x %[path(1)]"],
    "fmt_conv_args_to_noarg": ["http-request set-header x %[path,lower(1)]"],
    "fmt_empty_conv": ["http-request set-header x %[path,]"],
    "fmt_junk_after_fetch": ["http-request set-header x %[hdr(x)junk]"],
    "fmt_regsub_flag": ["http-request set-header x %[path,regsub(a,b,z)]"],
    "fmt_percent_digit": ["http-request set-header x %5"],
    "fmt_flags_without_var": ["http-request set-header x a%{+Q}"],
    "fmt_unterminated_flags": ["http-request set-header x a%{+Q"],
    "fmt_empty_expr": ["http-request set-header x %[]"],
    "fmt_bracket_in_arg": ["http-request set-header x %[path,regsub([a-z],X,g)]"],
    "fmt_paren_in_arg": ["http-request set-header x %[path,regsub(^/([a-z]+)/,x)]"],
    "fmt_lone_percent": ["http-request set-header x a%-b"],
    "cond_empty_braces": ["http-request deny if { }"],
    "cond_brace_glued": ["http-request deny if {path / }"],
    "cond_close_only": ["http-request deny if }"],
    "cond_anon_bad_flag": ["http-request deny if { path -q x }"],
    "cond_anon_unknown": ["http-request deny if { nosuch x }"],
    "cond_brace_suffix": ["http-request deny if { path / }x"],
    "neg_range": ["acl a hdr_val(x) -- -10:-5"],
    "fhdr_sample": ["http-request set-header x %[fhdr(x)]"],
    "fhdr_acl": ["acl a fhdr(x) foo"],
    "len_conv": ["acl a hdr(x),len 3"],
    "neg_value_no_dashdash": ["acl a hdr_val(x) -7"],
}

# ----------------------------------------------------------------------------- responses
# Response-side table: a request "GET /resp/<id>" goes through a backend whose server
# answers RESPONSES[id]; RES_ACLS / RES_SAMPLES are evaluated in http-response rules.
RES_REQUEST = (b"GET /resp/%s?q=1 HTTP/1.1\r\n"
               b"Host: www.example.com\r\n"
               b"X: req1, req2\r\n"
               b"S: reqS\r\n"
               b"\r\n")

RESPONSES: dict[str, bytes] = {
    "r200": (b"HTTP/1.1 200 OK\r\n"
             b"Content-Length: 0\r\n"
             b"S: one\r\n"
             b"S: two, three\r\n"
             b"Set-Cookie: a=1; Expires=Thu, 01 Jan 2030 00:00:00 GMT\r\n"
             b"X: resp\r\n"
             b"Connection: close\r\n"
             b"\r\n"),
    "r404": (b"HTTP/1.1 404 Not Found\r\n"
             b"Content-Length: 0\r\n"
             b"X: r4\r\n"
             b"Connection: close\r\n"
             b"\r\n"),
}

RES_ACLS: list[list[str]] = [
    ["status", "200"], ["status", "ge", "400"], ["status", "404"],
    ["res.hdr(s)", "two"], ["res.hdr(s)", "three"], ["res.hdr(s)", "one"],
    ["res.hdr(s,1)", "one"], ["res.hdr(s)", "reqS"],
    ["hdr(x)", "resp"], ["hdr(x)", "req1"], ["hdr(x)", "r4"],
    ["res.hdr_cnt(s)", "3"], ["res.fhdr(s)", "two, three"], ["res.fhdr_cnt(s)", "2"],
    ["shdr(x)", "resp"], ["shdr_beg(s)", "tw"],
    ["res.hdr(set-cookie)", "-m", "beg", "Expires="], ["res.hdr(set-cookie)", "-m", "beg", "a=1"],
    ["req.hdr(x)", "req2"], ["res.hdr(nope)", "-m", "found"],
]

RES_SAMPLES: list[str] = [
    "status", "res.hdr(s)", "res.hdr(s,1)", "res.hdr(s,-2)", "hdr(s)", "hdr(x)",
    "res.fhdr(s)", "res.hdr_cnt(s)", "res.fhdr_cnt(s)", "res.hdr(set-cookie)",
    "res.fhdr(set-cookie)", "shdr(x)",
]

# ----------------------------------------------------------------------------- log lines
# log-format strings rendered by HAProxy into real log lines ("log stdout format raw").
# Request headers are gone when the line is built, so samples read variables set by
# http-request rules (LOG_VARS: txn variable -> sample expression).
LOG_REQUEST = (b"GET /a/b?x=1 HTTP/1.1\r\n"
               b"Host: www.example.com\r\n"
               b"X-Q: a\"b\\c]d\r\n"
               b"X-E:\r\n"
               b"X-N: 42\r\n"
               b"X-U: caf\xc3\xa9\tx\r\n"
               b"\r\n")
LOG_VARS: dict[str, str] = {
    "txn.p": "path", "txn.q": "req.hdr(x-q)", "txn.e": "req.hdr(x-e)", "txn.n": "req.hdr_val(x-n)",
    "txn.u": "req.hdr(x-u)",
}
LOG_FORMATS: list[str] = [
    "%[var(txn.p)] %{+Q}[var(txn.p)]",
    "%[var(txn.none)] %{+Q}[var(txn.none)] %{-M}[var(txn.none)]|",
    "%[var(txn.e)] %{+Q}[var(txn.e)]",
    "%{+E}[var(txn.q)] %{+Q,+E}[var(txn.q)] %[var(txn.q)]",
    "%{+X}[var(txn.n)] %[var(txn.n)]",
    "  lead   and   runs  %[var(txn.none)]  end  ",
    "%{+Q}o %[var(txn.p)] %[var(txn.none)] %{-Q}o %[var(txn.p)]",
    "%[var(txn.u)] %{+Q}[var(txn.u)]",
    "a%-b 100%% x%[var(txn.p)]]",
]
