"""Converters for dates, hashes, encodings, host names and variables
(``lb/match/converters.py``), rendered into a header by lb and by HAProxy 2.6.12.

Until session 29 lb refused all of these but ``crc32`` and ``djb2``, and those two
ignored their avalanche argument: ``djb2(1)`` gave the plain hash where HAProxy
gives the avalanched one. Every expected value below is HAProxy 2.6.12's, and its
quirks are kept: ``strcmp`` gives the difference of the first differing bytes,
``http_date`` prints its fraction unpadded, ``port_only`` does not check digits,
and ``set-var(...,ifgt)`` sets when the variable is greater than the value.
"""

from __future__ import annotations

import os

import pytest

from lb.match import sample
from tests.support_e2e import HAPROXY, header_sent_through, one_backend_config

pytestmark = pytest.mark.timeout(60)

KINDS = ["lb", "haproxy"] if os.path.exists(HAPROXY) else ["lb"]

REQUEST = (b"GET /a%20b/c?x=1 HTTP/1.1\r\nHost: Ex.Com:8080\r\nX-B: hello world\r\n"
           b"Connection: close\r\n\r\n")

# (rules before, expression, value the server receives; b"" when there is no sample)
CASES = [
    ("", "int(1700000000),http_date", b"Tue, 14 Nov 2023 22:13:20 GMT"),
    ("", "int(1700000000),http_date(-3600)", b"Tue, 14 Nov 2023 21:13:20 GMT"),
    ("", "int(1700000000123),http_date(0,ms)", b"Tue, 14 Nov 2023 22:13:20.123 GMT"),
    ("", "int(1700000000005),http_date(0,ms)", b"Tue, 14 Nov 2023 22:13:20.5 GMT"),
    ("", "int(1700000000123456),http_date(0,us)", b"Tue, 14 Nov 2023 22:13:20.123456 GMT"),
    ("", "int(1700000000),utime(%Y-%m-%d %H:%M:%S)", b"2023-11-14 22:13:20"),
    ("", "int(1700000000),utime(%Y-%m-%d,86400)", b"2023-11-15"),
    ("", "str(a b&c=d/é?),url_enc", b"a%20b%26c%3Dd%2F%C3%A9%3F"),
    ("", "str(a~b-c_d.e*f!g+h),url_enc", b"a~b-c_d.e%2Af%21g%2Bh"),
    ("", "str(ff),hex2i", b"255"),
    ("", "str(abc),hex2i", b"2748"),
    ("", "str(ffffffffffffffff),hex2i", b"-1"),
    ("", "str(-ff),hex2i", b""),
    ("", "str(zz),hex2i", b""),
    ("", "str(hello?>>),ub64enc", b"aGVsbG8_Pj4"),
    ("", "str(aGVsbG8_Pj4),ub64dec", b"hello?>>"),
    ("", "str(a),ub64dec", b""),
    ("", "str(a*b),ub64dec", b""),
    ("", "str(abc),digest(sha256),hex",
     b"BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"),
    ("", "str(abc),digest(md5),hex", b"900150983CD24FB0D6963F7D28E17F72"),
    ("", "str(abc),sha2,hex", b"BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"),
    ("", "str(abc),sha2(224),hex", b"23097D223405D8228642A477BDA255B32AADBCE4BDA0B3F7E36C9DA7"),
    ("", "str(abc),wt6", b"2483038440"),
    ("", "str(abc),wt6(1)", b"266135527"),
    ("", "str(abc),sdbm", b"807794786"),
    ("", "str(abc),sdbm(1)", b"659243622"),
    ("", "str(abc),djb2(1)", b"2235766107"),
    ("", "str(abc),crc32", b"891568578"),
    ("", "str(abc),crc32(1)", b"930845320"),
    ("", "str(abc),xxh32", b"852579327"),
    ("", "str(abc),xxh32(1)", b"2856167679"),
    ("", "str(0123456789abcdef0123),xxh32", b"1666225742"),
    ("", "str(abc),xxh64", b"4952883123889572249"),
    ("", "str(abc),xxh64(5)", b"-1753195980308443340"),
    ("", "str(abc),xxh64(-1)", b"2895935887265243510"),
    ("", "str(0123456789abcdef0123456789abcdef0123456789),xxh64", b"-6385663626540185060"),
    ("", "str(a%0db),url_dec,cut_crlf", b"a"),
    ("", "req.hdr(x-b),cut_crlf", b"hello world"),
    ("", "req.hdr(host),host_only", b"ex.com"),
    ("", "str([::1]:80),host_only", b"[::1]"),
    ("", "req.hdr(host),port_only", b"8080"),
    ("", "str(ex.com),port_only", b"0"),
    ("", "str(ex.com:8x),port_only", b"152"),
    ("set-var(txn.foo) str(abc)", "str(abd),strcmp(txn.foo)", b"1"),
    ("set-var(txn.foo) str(abc)", "str(abz),strcmp(txn.foo)", b"23"),
    ("set-var(txn.foo) str(abc)", "str(aba),strcmp(txn.foo)", b"-2"),
    ("set-var(txn.foo) str(abc)", "str(abcde),strcmp(txn.foo)", b"1"),
    ("set-var(txn.foo) str(abc)", "str(ab),strcmp(txn.foo)", b"-1"),
    ("set-var(txn.foo) str(abc)", "str(abc),strcmp(txn.foo)", b"0"),
    ("", "str(abc),strcmp(txn.nope)", b""),
    ("set-var(txn.n) int(7)", "str(7),strcmp(txn.n)", b"0"),
    ("set-var(txn.foo) str(abc)", "str(abc),secure_memcmp(txn.foo)", b"1"),
    ("set-var(txn.foo) str(abc)", "str(abcd),secure_memcmp(txn.foo)", b"0"),
    ("", "str(abc),set-var(txn.q),length", b"3"),
    ("set-var(txn.z) str(abc),set-var(txn.q)", "var(txn.q)", b"abc"),
    ("set-var(txn.a) str(x); set-var(txn.z) str(y),set-var(txn.a,ifnotexists)",
     "var(txn.a)", b"x"),
    ("set-var(txn.a) str(x); set-var(txn.z) str(y),set-var(txn.a,ifexists)",
     "var(txn.a)", b"y"),
    ("set-var(txn.z) str(y),set-var(txn.a,ifexists)", "var(txn.a)", b""),
    ("set-var(txn.z) str(),set-var(txn.b,ifnotempty)", "var(txn.b)", b""),
    ("set-var(txn.z) str(q),set-var(txn.b,ifnotempty)", "var(txn.b)", b"q"),
    ("set-var(txn.c) int(5); set-var(txn.z) int(3),set-var(txn.c,ifgt)", "var(txn.c)", b"3"),
    ("set-var(txn.c) int(5); set-var(txn.z) int(9),set-var(txn.c,ifgt)", "var(txn.c)", b"5"),
    ("set-var(txn.c) int(5); set-var(txn.z) int(3),set-var(txn.c,iflt)", "var(txn.c)", b"5"),
    # set-var-fmt (refused by lb before session 29): the rendered log-format string
    ("set-var-fmt(txn.f) %[req.hdr(host),host_only]-%[int(7)]", "var(txn.f)", b"ex.com-7"),
    ("set-var-fmt(txn.f) plain", "var(txn.f),length", b"5"),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("rules", "expr", "want"), CASES,
                         ids=[f"{r}|{e}" if r else e for r, e, _ in CASES])
def test_converter_value_matches_haproxy(kind: str, rules: str, expr: str,
                                         want: bytes) -> None:
    lines = "".join(f"    http-request {r.strip()}\n" for r in rules.split(";") if r.strip())
    text = one_backend_config(lines + f'    http-request set-header X-V "%[{expr}]"')
    assert header_sent_through(kind, text, REQUEST, b"x-v") == [want]


# (expression, HAProxy 2.6.12's reason after "failed to parse sample expression <...> :")
LOAD_ERRORS = [
    ("str(a),digest(nope)", "invalid args in converter 'digest' : algorithm must be a valid "
     "OpenSSL message digest name.."),
    ("str(a),sha2(100)", "invalid args in converter 'sha2' : Unsupported number of bits: "
     "'100'."),
    ("str(a),url_enc(foo)", "invalid args in converter 'url_enc' : Unexpected encode type. "
     "Allowed value is 'query'."),
    ("int(1),http_date(0,xs)", "invalid args in converter 'http_date' : expects 's', 'ms' or "
     "'us', got 'xs'."),
    ("int(1),http_date(x)", "invalid arg 1 in converter 'http_date' : failed to parse 'x' as "
     "type 'integer' at position 1."),
    ("str(a),set-var(foo)", "invalid args in converter 'set-var' : invalid variable name "
     "'foo'. A variable name must be start by its scope. The scope can be 'proc', 'sess', "
     "'txn', 'req', 'res' or 'check'."),
    ("str(a),set-var(txn.a,bogus)", "invalid args in converter 'set-var' : unknown condition "
     '"bogus".'),
    ("str(a),strcmp", "invalid args in converter 'strcmp' : missing variable name."),
    ("str(a),strcmp(foo)", "invalid args in converter 'strcmp' : failed to register variable "
     "name 'foo'."),
    ("str(a),secure_memcmp", "invalid args in converter 'secure_memcmp' : missing variable "
     "name."),
    ("str(a),wt6(x)", "invalid arg 1 in converter 'wt6' : failed to parse 'x' as type "
     "'integer' at position 1."),
]


@pytest.mark.parametrize(("expr", "reason"), LOAD_ERRORS, ids=[e for e, _ in LOAD_ERRORS])
def test_argument_errors_are_haproxys(expr: str, reason: str) -> None:
    """lb's sample parser gives HAProxy's text (without the final period, which the
    config alert adds); `haproxy -c` printed each of these."""
    with pytest.raises(sample.SampleError) as exc:
        sample.parse_expr(expr)
    assert str(exc.value) + "." == reason
