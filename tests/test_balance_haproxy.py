"""Balancer orders compared with real HAProxy.

Every expected sequence below was recorded from HAProxy 2.6.12 (Debian
/usr/sbin/haproxy, nbthread 1) load balancing sequential requests over
loopback backends that answer their own name (tools: a 30-line harness, see
docs/balancing.md). ``sN`` is written ``N``.
"""

from __future__ import annotations

import pytest

from lb import balance
from lb.balance import keys
from lb.config.model import BalanceSpec
from tests.balance_fakes import FakeServer, names, sequential, servers

# checked against HAProxy 2.6.12: `balance roundrobin`, weights as given, 40 requests
ROUNDROBIN = {
    '(4, 4)': '1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2',
    '(7, 3)': '1 1 1 2 1 1 2 1 1 2 1 1 1 2 1 1 2 1 1 2 1 1 1 2 1 1 2 1 1 2 1 1 1 2 1 1 2 1 1 2',
    '(10, 1, 1)': '1 1 1 1 1 2 1 1 1 1 1 3 1 1 1 1 1 2 1 1 1 1 1 3 1 1 1 1 1 2 1 1 1 1 1 3 1 1 1 1',
    '(256, 1)': '1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1',
    '(1, 0, 2)': '3 3 1 3 3 1 3 3 1 3 3 1 3 3 1 3 3 1 3 3 1 3 3 1 3 3 1 3 3 1 3 3 1 3 3 1 3 3 1 3',
    '(3, 5, 7, 11, 13, 2)': '5 4 3 5 4 2 5 3 4 5 1 6 4 5 2 3 5 4 5 4 3 2 5 4 1 5 3 4 5 2 4 5 3 6 4 5 3 1 5 2',
    '(100, 100, 1)': '1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2',
    '(3, 1)': '1 1 1 2 1 1 1 2 1 1 1 2 1 1 1 2 1 1 1 2 1 1 1 2 1 1 1 2 1 1 1 2 1 1 1 2 1 1 1 2',
    '(2, 1)': '1 1 2 1 1 2 1 1 2 1 1 2 1 1 2 1 1 2 1 1 2 1 1 2 1 1 2 1 1 2 1 1 2 1 1 2 1 1 2 1',
    '(5, 3, 2)': '1 2 1 3 1 2 1 2 1 3 1 2 1 3 1 2 1 2 1 3 1 2 1 3 1 2 1 2 1 3 1 2 1 3 1 2 1 2 1 3',
    '(1, 2, 3)': '3 2 3 1 3 2 3 2 3 1 3 2 3 2 3 1 3 2 3 2 3 1 3 2 3 2 3 1 3 2 3 2 3 1 3 2 3 2 3 1',
    '(1, 1, 1)': '1 2 3 1 2 3 1 2 3 1 2 3 1 2 3 1 2 3 1 2 3 1 2 3 1 2 3 1 2 3 1 2 3 1 2 3 1 2 3 1',
}

# checked against HAProxy 2.6.12: `balance static-rr`, 40 requests
STATIC_RR = {
    '(5, 3, 2)': '1 1 2 1 3 1 2 1 2 3 1 1 2 1 3 1 2 1 2 3 1 1 2 1 3 1 2 1 2 3 1 1 2 1 3 1 2 1 2 3',
    '(1, 2, 3)': '1 3 2 3 2 3 1 3 2 3 2 3 1 3 2 3 2 3 1 3 2 3 2 3 1 3 2 3 2 3 1 3 2 3 2 3 1 3 2 3',
    '(2, 4)': '1 2 2 1 2 2 1 2 2 1 2 2 1 2 2 1 2 2 1 2 2 1 2 2 1 2 2 1 2 2 1 2 2 1 2 2 1 2 2 1',
    '(3, 5, 7, 11, 13, 2)': '1 2 3 4 5 3 5 4 2 5 4 3 5 1 4 5 2 3 4 5 6 4 5 3 2 5 4 1 5 4 3 5 2 4 5 3 4 5 4 5',
    '(1, 1, 1)': '1 2 3 1 2 3 1 2 3 1 2 3 1 2 3 1 2 3 1 2 3 1 2 3 1 2 3 1 2 3 1 2 3 1 2 3 1 2 3 1',
}

PATHS = ['/p0/x0?q=0', '/p1/x7?q=1', '/p2/x14?q=2', '/p3/x21?q=3', '/p4/x28?q=4', '/p5/x35?q=5', '/p6/x42?q=6', '/p7/x49?q=7', '/p8/x56?q=8', '/p9/x63?q=9', '/p10/x70?q=10', '/p11/x77?q=11', '/p12/x84?q=12', '/p13/x91?q=13', '/p14/x98?q=14', '/p15/x105?q=15', '/p16/x112?q=16', '/p17/x119?q=17', '/p18/x126?q=18', '/p19/x133?q=19', '/p20/x140?q=20', '/p21/x147?q=21', '/p22/x154?q=22', '/p23/x161?q=23', '/p24/x168?q=24', '/p25/x175?q=25', '/p26/x182?q=26', '/p27/x189?q=27', '/p28/x196?q=28', '/p29/x203?q=29', '/', '/a/b/c', '/index.html', '/api/v1/users?id=3']

HOSTS = ['www.example.com', 'a.b.example.org', 'example.net', 'localhost', 'x.y.z.w.test', 'shop.acme.io', 'api.acme.io']

# checked against HAProxy 2.6.12: hash algorithms; the config line is in the id.
# NB: HAProxy's `hash-type consistent` without a function means sdbm + avalanche.
HASHED = [

    ('uri map (1,1,1,1)', dict(algorithm='uri'), [1, 1, 1, 1], 'paths', '1 3 2 3 3 4 1 1 2 3 3 3 4 1 1 1 4 2 1 4 2 4 3 2 4 3 2 4 3 1 4 2 3 1'),

    ('uri map (3,1,2)', dict(algorithm='uri'), [3, 1, 2], 'paths', '3 1 3 1 2 3 3 1 1 3 1 2 3 3 1 1 3 1 1 3 3 1 1 3 1 1 3 1 3 1 3 3 1 3'),

    ('uri map whole (1,1,1,1)', dict(algorithm='uri', uri_whole=True), [1, 1, 1, 1], 'paths', '2 1 1 3 4 2 4 1 3 1 1 2 2 2 3 4 2 1 3 1 1 4 2 4 3 1 3 2 4 3 4 2 3 1'),

    ('uri map depth1 len5 (1,1,1,1,1)', dict(algorithm='uri', uri_depth=1), [1, 1, 1, 1, 1], 'paths', '2 3 4 5 1 2 3 4 5 1 5 1 2 3 4 5 1 2 3 4 4 5 1 2 3 4 5 1 2 3 3 1 2 4'),

    ('uri consistent (1,1,1,1)', dict(algorithm='uri', hash_type='consistent', hash_modifier='avalanche'), [1, 1, 1, 1], 'paths', '1 1 1 3 4 4 1 3 2 3 3 1 2 2 4 3 1 2 1 1 2 4 2 1 3 3 1 3 3 1 2 1 4 3'),

    ('uri consistent (2,1,3)', dict(algorithm='uri', hash_type='consistent', hash_modifier='avalanche'), [2, 1, 3], 'paths', '1 3 1 3 3 2 1 3 1 3 3 1 1 2 2 3 3 2 1 1 2 3 1 3 3 3 3 3 3 1 1 1 1 3'),

    ('uri consistent sdbm (1,1,1)', dict(algorithm='uri', hash_type='consistent'), [1, 1, 1], 'paths', '2 2 3 3 2 1 1 1 1 3 1 1 3 1 1 3 3 1 3 2 1 2 1 2 1 3 2 3 1 1 3 2 2 3'),

    ('uri consistent djb2 (1,1,1)', dict(algorithm='uri', hash_type='consistent', hash_function='djb2'), [1, 1, 1], 'paths', '2 2 1 1 1 1 1 1 1 1 3 3 3 3 3 2 1 2 2 2 1 2 2 3 1 1 1 1 2 3 3 2 1 3'),

    ('uri consistent djb2 avalanche (1,1,1)', dict(algorithm='uri', hash_type='consistent', hash_function='djb2', hash_modifier='avalanche'), [1, 1, 1], 'paths', '3 3 1 1 3 3 2 3 1 2 1 2 3 1 1 2 2 1 1 3 3 3 3 3 2 2 3 1 1 1 1 1 1 2'),

    ('uri map djb2 (1,1,1)', dict(algorithm='uri', hash_function='djb2'), [1, 1, 1], 'paths', '3 1 1 1 2 2 2 3 3 3 2 3 3 3 1 1 1 2 2 2 1 2 2 2 3 3 3 1 1 1 3 3 2 2'),

    ('uri map wt6 (1,1,1)', dict(algorithm='uri', hash_function='wt6'), [1, 1, 1], 'paths', '3 3 3 3 3 1 1 1 2 2 2 2 3 2 1 1 1 2 2 2 1 1 1 2 3 3 1 1 2 2 2 1 1 3'),

    ('uri map crc32 (1,1,1)', dict(algorithm='uri', hash_function='crc32'), [1, 1, 1], 'paths', '1 3 1 2 2 2 3 2 2 2 3 2 1 2 1 1 1 1 2 2 2 1 3 3 2 2 2 3 3 2 2 2 2 1'),

    ('uri map sdbm avalanche (1,1,1)', dict(algorithm='uri', hash_modifier='avalanche'), [1, 1, 1], 'paths', '1 1 2 1 2 2 2 2 3 2 2 3 1 3 3 1 2 1 2 3 2 2 3 1 3 1 1 2 1 1 1 1 1 1'),

    ('hdr(host) use_domain_only (1,1,1)', dict(algorithm='hdr', param='Host', use_domain_only=True), [1, 1, 1], 'hosts', '2 2 2 1 3 2 2'),

    ('hdr(host) (1,1,1)', dict(algorithm='hdr', param='Host'), [1, 1, 1], 'hosts', '1 1 1 1 2 3 3'),

    ('url_param uid (1,1,1)', dict(algorithm='url_param', param='uid'), [1, 1, 1], 'params', '3 1 2 3 1 2 3 1 2 3 3 1 2 3 1 2 3 1 2 3'),

    ('source map (1,1,1)', dict(algorithm='source'), [1, 1, 1], 'source', '3 3 3'),

    ('source consistent (1,1,1)', dict(algorithm='source', hash_type='consistent'), [1, 1, 1], 'source', '2 2 2'),

    ('uri map missing? hdr fallback (2,1)', dict(algorithm='hdr', param='x-none'), [2, 1], 'none', '1 1 2 1 1 2 1 1 2 1 1 2'),

]


def _requests(kind: str) -> list[tuple[bytes, list[tuple[bytes, bytes]], str]]:
    if kind == "paths":
        return [(p.encode(), [], "127.0.0.1") for p in PATHS]
    if kind == "hosts":
        return [(b"/", [(b"host", h.encode())], "127.0.0.1") for h in HOSTS]
    if kind == "params":
        return [(f"/x?a=1&uid=user{i}&b=2".encode(), [], "127.0.0.1") for i in range(20)]
    if kind == "source":
        return [(b"/", [], "127.0.0.1")] * 3
    return [(b"/", [], "127.0.0.1")] * 12


@pytest.mark.parametrize("weights,expected", list(ROUNDROBIN.items()))
def test_roundrobin_matches_haproxy(weights: str, expected: str) -> None:
    ws = [int(x) for x in weights.strip("()").split(",")]
    srvs = servers(ws)
    b = balance.create(BalanceSpec(algorithm="roundrobin"), srvs)
    got = names(b.pick() for _ in expected.split())
    assert got == expected


@pytest.mark.parametrize("weights,expected", list(STATIC_RR.items()))
def test_static_rr_matches_haproxy(weights: str, expected: str) -> None:
    ws = [int(x) for x in weights.strip("()").split(",")]
    b = balance.create(BalanceSpec(algorithm="static-rr"), servers(ws))
    assert names(b.pick() for _ in expected.split()) == expected


@pytest.mark.parametrize("label,spec,weights,kind,expected", HASHED, ids=[h[0] for h in HASHED])
def test_hashing_matches_haproxy(label: str, spec: dict, weights: list[int], kind: str,
                                 expected: str) -> None:
    bs = BalanceSpec(**spec)
    b = balance.create(bs, servers(weights))
    got = []
    for url, headers, src in _requests(kind):
        key = keys.extract(bs, b"GET", url, headers, src)
        got.append(b.pick(key))
    assert names(got) == expected


def test_appendix_a3_sequences() -> None:
    # spec Appendix A.3 verified sequences (one period each)
    cases = {
        ("roundrobin", (3, 1)): "1 1 1 2",
        ("roundrobin", (2, 1)): "1 1 2",
        ("roundrobin", (5, 3, 2)): "1 2 1 3 1 2 1 2 1 3",
        ("roundrobin", (1, 2, 3)): "3 2 3 1 3 2",
        ("static-rr", (5, 3, 2)): "1 1 2 1 3 1 2 1 2 3",
        ("static-rr", (1, 2, 3)): "1 3 2 3 2 3",
    }
    for (algo, ws), period in cases.items():
        b = balance.create(BalanceSpec(algorithm=algo), servers(ws))
        n = len(period.split())
        assert names(b.pick() for _ in range(3 * n)) == " ".join([period] * 3), (algo, ws)


def test_leastconn_sequential_rotation_matches_haproxy() -> None:
    # checked against HAProxy 2.6.12: sequential requests, leastconn, 1:1:1 -> 1 2 3 1 2 3...
    # and 2:1 -> 1 2 1 2 ... (every server idle again when the next request comes)
    for ws, expected in (((1, 1, 1), "1 2 3 1 2 3 1 2 3"), ((2, 1), "1 2 1 2 1 2 1 2 1")):
        srvs = servers(ws)
        b = balance.create(BalanceSpec(algorithm="leastconn"), srvs)
        assert names(sequential(b, len(expected.split()))) == expected


def test_first_sequential_matches_haproxy() -> None:
    # checked against HAProxy 2.6.12: `balance first`, maxconn 1 each, sequential -> f1 always
    srvs = servers((1, 1), maxconn=1)
    b = balance.create(BalanceSpec(algorithm="first"), srvs)
    assert names(sequential(b, 4)) == "1 1 1 1"
    assert isinstance(srvs[0], FakeServer)
