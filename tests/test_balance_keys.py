"""Hash keys and hash functions (pure)."""

from __future__ import annotations

from lb.balance import keys
from lb.config.model import BalanceSpec


def test_hash_functions_known_values() -> None:
    assert keys.hash_sdbm(b"") == 0
    assert keys.hash_sdbm(b"a") == 97
    assert keys.hash_sdbm(b"ab") == (97 * 65599 + 98) & 0xFFFFFFFF
    assert keys.hash_djb2(b"") == 5381
    assert keys.hash_djb2(b"a") == 5381 * 33 + 97
    assert keys.hash_crc32(b"123456789") == 0xCBF43926
    assert keys.hash_wt6(b"") == 0xA53C965A ^ 0x5CA6953A
    for fn in (keys.hash_sdbm, keys.hash_djb2, keys.hash_wt6, keys.hash_crc32):
        assert 0 <= fn(b"x" * 1000) <= 0xFFFFFFFF
    # avalanche is a permutation-like mixer: distinct small inputs, distinct outputs
    assert len({keys.full_hash(i) for i in range(5000)}) == 5000
    assert keys.avalanche is keys.full_hash
    assert keys.hash_none(b"12345") == 12345
    assert keys.hash_none(b"abc") == keys.hash_sdbm(b"abc")
    assert keys.make_hasher("uri", "none")(b"7") == 7
    assert keys.make_hasher("uri", "sdbm", "avalanche")(b"a") == keys.full_hash(97)
    assert keys.make_hasher("source", "djb2")(bytes([1, 2, 3, 4])) == 0x01020304


def test_source_key_and_word_fold() -> None:
    assert keys.source_key("10.1.2.3") == bytes([10, 1, 2, 3])
    assert keys.source_key("::1") == bytes(15) + b"\x01"
    assert keys.source_key("fe80::1%eth0") is not None
    assert keys.source_key("unix") is None
    assert keys.source_key(None) is None
    assert keys.hash_source(bytes([10, 1, 2, 3])) == 0x0A010203
    v6 = bytes(range(16))
    assert keys.hash_source(v6) == (0x00010203 ^ 0x04050607 ^ 0x08090A0B ^ 0x0C0D0E0F)


def test_uri_key_options() -> None:
    u = b"/a/b/c/d?x=1"
    assert keys.uri_key(u) == b"/a/b/c/d"
    assert keys.uri_key(u, whole=True) == u
    assert keys.uri_key(u, depth=1) == b"/a"
    assert keys.uri_key(u, depth=2) == b"/a/b"
    assert keys.uri_key(u, depth=9) == b"/a/b/c/d"
    assert keys.uri_key(u, length=4) == b"/a/b"
    assert keys.uri_key(u, length=4, depth=1) == b"/a"
    assert keys.uri_key(b"http://h.example/p/q?z", path_only=True) == b"/p/q"
    assert keys.uri_key(b"http://h.example/p/q?z") == b"http://h.example/p/q"
    assert keys.uri_key(b"http://h.example", path_only=True) == b""
    assert keys.uri_key(b"*", path_only=True) == b""


def test_url_param_key() -> None:
    url = b"/x?a=1&uid=42&b=2"
    assert keys.url_param_key(url, b"uid") == b"42"
    assert keys.url_param_key(url, b"a") == b"1"
    assert keys.url_param_key(url, b"id") is None  # no partial name match
    assert keys.url_param_key(b"/x?uid=", b"uid") == b""  # present but empty: hashed
    assert keys.url_param_key(b"/x?uid", b"uid") is None
    assert keys.url_param_key(b"/x?uid=7", b"uid") == b"7"
    assert keys.url_param_key(b"/x", b"uid") is None
    body = b"uid=99&x=1"
    assert keys.url_param_key(b"/x", b"uid", b"POST", body) is None  # check_post off
    assert keys.url_param_key(b"/x", b"uid", b"POST", body, check_post=True) == b"99"
    assert keys.url_param_key(b"/x", b"uid", b"GET", body, check_post=True) is None
    assert keys.url_param_key(b"/x", b"uid", b"POST", b"uid=\x00\x01", True) is None


def test_hdr_key_first_value_and_domain_only() -> None:
    h = [(b"x-a", b"1"), (b"host", b" www.example.com , other "), (b"host", b"second")]
    assert keys.hdr_key(h, b"host") == b"www.example.com"
    assert keys.hdr_key(h, b"host", use_domain_only=True) == b"example"
    assert keys.hdr_key(h, b"missing") is None
    assert keys.hdr_key([(b"host", b"")], b"host") is None  # empty -> round robin
    assert keys.domain_only(b"a.b.example.org") == b"example"
    assert keys.domain_only(b"example.net") == b"example"
    assert keys.domain_only(b"localhost") == b"localhost"
    assert keys.domain_only(b"a..com") == b"a."


def test_rdp_cookie_key() -> None:
    pkt = b"\x03\x00\x00\x2b\x26\xe0\x00\x00\x00\x00\x00Cookie: mstshash=alice\r\n\x01\x00"
    assert keys.rdp_cookie_key(pkt) == b"alice"
    assert keys.rdp_cookie_key(pkt, b"other") is None
    assert keys.rdp_cookie_key(b"GET / HTTP/1.1\r\n") is None


def test_extract_dispatch() -> None:
    hdrs = [(b"host", b"www.example.com")]
    assert keys.extract(BalanceSpec(algorithm="roundrobin"), b"GET", b"/", hdrs) is None
    assert keys.extract(BalanceSpec(algorithm="uri", uri_depth=1), b"GET", b"/a/b") == b"/a"
    assert keys.extract(BalanceSpec(algorithm="hdr", param="Host"), b"GET", b"/", hdrs) \
        == b"www.example.com"
    assert keys.extract(BalanceSpec(algorithm="url_param", param="u"), b"GET", b"/?u=1") == b"1"
    assert keys.extract(BalanceSpec(algorithm="source"), src="192.0.2.1") == bytes([192, 0, 2, 1])
    assert keys.extract(BalanceSpec(algorithm="hash"), sample=b"abc") == b"abc"
    assert keys.needs_key(BalanceSpec(algorithm="uri"))
    assert not keys.needs_key(BalanceSpec(algorithm="first"))
    assert list(keys.KEY_EXTRACTORS) == sorted(keys.KEY_EXTRACTORS)
