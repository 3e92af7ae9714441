"""Balancers under state changes, weights, saturation, retries and backups.

Sequences marked "checked against HAProxy 2.6.12" were recorded from the real
thing with `set weight` / `disable server` / `enable server` sent on the stats
socket before the numbered request (0-based) of a sequential run.
"""

from __future__ import annotations

import random

import pytest

from lb import balance
from lb.config.model import BalanceSpec
from tests.balance_fakes import FakeServer, names, servers

# (algorithm, weights, backups, allbackups, requests, {before request i: [(op, server, value)]},
#  expected); op "w" = set weight, "u" = up (True) / maintenance (False)
HAPROXY_DYNAMIC = [
    ("roundrobin", (1, 1, 1), (), False, 30, {5: [("w", 1, 3)]},
     "1 2 3 1 2 3 1 2 1 1 3 1 2 1 1 3 1 2 1 1 3 1 2 1 1 3 1 2 1 1"),
    ("roundrobin", (5, 3, 2), (), False, 30, {4: [("w", 2, 0)], 12: [("w", 2, 3)]},
     "1 2 1 3 1 1 1 1 3 1 1 3 1 1 3 2 1 1 2 1 3 2 1 1 3 2 1 1 2 1"),
    ("roundrobin", (1, 1, 1), (), False, 24, {3: [("u", 2, False)], 9: [("u", 2, True)]},
     "1 2 3 1 3 1 3 1 3 1 3 2 1 3 2 1 3 2 1 3 2 1 3 2"),
    ("roundrobin", (3, 1), (), False, 20, {2: [("w", 1, 1)]},
     "1 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1"),
    ("roundrobin", (2, 2, 1), (), False, 30, {7: [("w", 3, 4)]},
     "1 2 1 2 3 1 2 1 2 3 3 1 2 3 3 1 2 3 3 1 2 3 3 1 2 3 3 1 2 3"),
    ("roundrobin", (1, 1, 1, 1), (3, 4), False, 12,
     {2: [("u", 1, False), ("u", 2, False)], 8: [("u", 3, False)]},
     "1 2 3 3 3 3 3 3 4 4 4 4"),
    ("roundrobin", (1, 1, 1, 2), (3, 4), True, 12, {2: [("u", 1, False), ("u", 2, False)]},
     "1 2 4 4 3 4 4 3 4 4 3 4"),
    ("static-rr", (1, 1, 1), (), False, 24, {3: [("u", 2, False)], 9: [("u", 2, True)]},
     "1 2 3 1 3 1 3 1 3 3 1 2 3 1 2 3 1 2 3 1 2 3 1 2"),
    ("static-rr", (1, 1, 1), (), False, 10, {1: [("u", 2, False)]}, "1 3 1 3 1 3 1 3 1 3"),
    ("static-rr", (1, 1, 1), (), False, 10, {2: [("u", 2, False)]}, "1 2 1 3 1 3 1 3 1 3"),
    ("static-rr", (1, 1, 1), (), False, 10, {4: [("u", 2, False)]}, "1 2 3 1 3 1 3 1 3 1"),
    ("static-rr", (1, 1, 1), (), False, 12, {3: [("u", 2, False)], 5: [("u", 2, True)]},
     "1 2 3 1 3 3 1 2 3 1 2 3"),
    ("static-rr", (5, 3, 2), (), False, 20, {4: [("u", 3, False)]},
     "1 1 2 1 1 2 1 2 1 1 2 1 1 2 1 2 1 1 2 1"),
]


def _apply(srvs: list[FakeServer], b: balance.Balancer, op: str, idx: int, val: object) -> None:
    s = srvs[idx - 1]
    if op == "w":
        s.eweight = int(val)  # type: ignore[call-overload]
    else:
        s.up = bool(val)
    b.update(s)


@pytest.mark.parametrize("algo,weights,backups,allb,n,actions,expected", HAPROXY_DYNAMIC)
def test_runtime_changes_match_haproxy(algo: str, weights: tuple[int, ...], backups: tuple,
                                       allb: bool, n: int, actions: dict, expected: str) -> None:
    srvs = servers(weights, backups=backups)
    b = balance.create(BalanceSpec(algorithm=algo), srvs, allb)
    got = []
    for i in range(n):
        for op, idx, val in actions.get(i, []):
            _apply(srvs, b, op, idx, val)
        got.append(b.pick())
    assert names(got) == expected


ALL = ["roundrobin", "static-rr", "leastconn", "first", "source", "uri", "random"]


@pytest.mark.parametrize("algo", ALL)
@pytest.mark.parametrize("hash_type", ["map-based", "consistent"])
def test_never_returns_unusable(algo: str, hash_type: str) -> None:
    rnd = random.Random(7)
    srvs = servers((1, 2, 3, 0, 2), backups=(5,))
    b = balance.create(BalanceSpec(algorithm=algo, hash_type=hash_type), srvs)
    for step in range(400):
        if step % 7 == 0:
            s = rnd.choice(srvs)
            if rnd.random() < 0.5:
                s.up = not s.up
            else:
                s.eweight = rnd.choice([0, 1, 2, 5])
            b.update(s)
        key = str(rnd.random()).encode() if algo in ("uri",) else None
        if algo == "source":
            key = bytes([127, 0, 0, rnd.randrange(256)])
        p = b.pick(key)
        act = [s for s in srvs if s.usable and not s.backup]
        bck = [s for s in srvs if s.usable and s.backup]
        if p is None:
            assert not act and not bck
            assert not b.available()
        else:
            assert p.usable
            assert p.backup == (not act)
            assert b.available()


def test_weight_zero_never_picked_but_available_when_others() -> None:
    srvs = servers((0, 1))
    b = balance.create(BalanceSpec(), srvs)
    assert names(b.pick() for _ in range(5)) == "2 2 2 2 2"
    srvs[1].eweight = 0
    b.update(srvs[1])
    assert b.pick() is None and not b.available()


def test_roundrobin_skips_saturated_servers() -> None:
    srvs = servers((1, 1, 1), maxconn=1)
    b = balance.create(BalanceSpec(), srvs)
    s1 = b.pick()
    assert s1.name == "s1"
    s1.cur_conns = 1  # s1 busy
    assert names(b.pick() for _ in range(1)) == "2"
    srvs[1].cur_conns = 1
    assert b.pick().name == "s3"
    srvs[2].cur_conns = 1
    assert b.pick() is None  # all full: the request goes to the backend queue
    srvs[0].cur_conns = 0
    assert b.pick().name == "s1"
    # a server with waiters in its own queue counts as saturated
    srvs[0].queue.append(object())
    assert b.pick() is None


def test_roundrobin_avoid_takes_next_then_falls_back() -> None:
    srvs = servers((1, 1, 1))
    b = balance.create(BalanceSpec(), srvs)
    assert b.pick().name == "s1"
    assert b.pick(avoid=srvs[1]).name == "s3"  # s2 skipped on a retry
    only = servers((1,))
    b1 = balance.create(BalanceSpec(), only)
    assert b1.pick(avoid=only[0]) is only[0]  # nothing else: the avoided one


@pytest.mark.parametrize("algo", ["roundrobin", "static-rr", "leastconn", "first"])
def test_backups_first_only_unless_allbackups(algo: str) -> None:
    srvs = servers((1, 1, 1, 1), backups=(3, 4))
    b = balance.create(BalanceSpec(algorithm=algo), srvs)
    for s in srvs[:2]:
        s.up = False
        b.update(s)
    assert {b.pick().name for _ in range(6)} == {"s3"}
    srvs[2].up = False
    b.update(srvs[2])
    assert {b.pick().name for _ in range(6)} == {"s4"}
    srvs[2].up = True
    b.update(srvs[2])
    assert {b.pick().name for _ in range(6)} == {"s3"}  # the first declared backup again
    srvs[0].up = True
    b.update(srvs[0])
    assert {b.pick().name for _ in range(6)} == {"s1"}  # an active is back: no backup

    srvs2 = servers((1, 1, 1, 1), backups=(3, 4))
    b2 = balance.create(BalanceSpec(algorithm=algo), srvs2, True)
    for s in srvs2[:2]:
        s.up = False
        b2.update(s)
    seen = set()
    for _ in range(8):
        s = b2.pick()
        s.cur_conns += 1
        b2.take_conn(s)
        seen.add(s.name)
    if algo == "first":
        assert seen == {"s3"}  # first ignores balance: lowest id while it has room
    else:
        assert seen == {"s3", "s4"}


def test_leastconn_prefers_least_loaded_relative_to_weight() -> None:
    srvs = servers((1, 2, 1))
    b = balance.create(BalanceSpec(algorithm="leastconn"), srvs)

    def take() -> FakeServer:
        s = b.pick()
        s.cur_conns += 1
        b.take_conn(s)
        return s

    got = [take() for _ in range(8)]
    # idle servers first in declaration order; then keys (inflight+1)*4096/(w*16):
    # s2 (weight 2) stays lowest until 3 in flight, equal keys keep insertion order
    assert names(got) == "1 2 3 2 2 1 3 2"
    # freeing s3 makes it the least loaded
    srvs[2].cur_conns -= 2
    b.drop_conn(srvs[2])
    assert take().name == "s3"


def test_leastconn_respects_maxconn_plus_maxqueue() -> None:
    srvs = servers((1, 1), maxconn=1)
    srvs[0].maxqueue = 1
    b = balance.create(BalanceSpec(algorithm="leastconn"), srvs)
    srvs[0].cur_conns = 1
    b.take_conn(srvs[0])
    srvs[1].cur_conns = 1
    b.take_conn(srvs[1])
    # s2 is full (no maxqueue); s1 may still queue one request
    assert b.pick() is srvs[0]
    srvs[0].queue.append(object())
    b.take_conn(srvs[0])
    assert b.pick() is None


def test_first_uses_lowest_id_with_room() -> None:
    srvs = servers((5, 1, 1), maxconn=2)
    for i, s in enumerate(srvs):
        s.puid = 10 - i  # ids need not follow declaration order
    b = balance.create(BalanceSpec(algorithm="first"), srvs)
    got = []
    for _ in range(6):
        s = b.pick()
        s.cur_conns += 1
        b.take_conn(s)
        got.append(s)
    assert names(got) == "3 3 2 2 1 1"
    assert b.pick() is None
    srvs[1].cur_conns -= 1
    b.drop_conn(srvs[1])
    assert b.pick() is srvs[1]
    assert b.pick(avoid=srvs[1]) is srvs[1]  # nothing else has room


def _keys(n: int) -> list[bytes]:
    return [f"/obj/{i}".encode() for i in range(n)]


def test_consistent_hash_moves_only_the_removed_servers_keys() -> None:
    spec = BalanceSpec(algorithm="uri", hash_type="consistent", hash_modifier="avalanche")
    srvs = servers((1, 1, 1, 1, 1))
    b = balance.create(spec, srvs)
    before = {k: b.pick(k) for k in _keys(2000)}
    srvs[2].up = False
    b.update(srvs[2])
    after = {k: b.pick(k) for k in _keys(2000)}
    moved = [k for k in before if before[k] is not after[k]]
    assert moved and all(before[k] is srvs[2] for k in moved)
    assert all(after[k] is not srvs[2] for k in after)
    # and it comes back to exactly the old placement
    srvs[2].up = True
    b.update(srvs[2])
    assert {k: b.pick(k) for k in _keys(2000)} == before


def test_consistent_hash_weight_shares() -> None:
    spec = BalanceSpec(algorithm="uri", hash_type="consistent", hash_modifier="avalanche")
    srvs = servers((1, 3))
    b = balance.create(spec, srvs)
    counts = {"s1": 0, "s2": 0}
    for k in _keys(4000):
        counts[b.pick(k).name] += 1
    assert 0.6 < counts["s2"] / 4000 < 0.9


def test_consistent_avoid_walks_to_next_server() -> None:
    spec = BalanceSpec(algorithm="uri", hash_type="consistent")
    srvs = servers((1, 1, 1))
    b = balance.create(spec, srvs)
    for k in _keys(50):
        first = b.pick(k)
        other = b.pick(k, avoid=first)
        assert other is not first and other.usable


def test_map_based_is_modulo_of_total_weight() -> None:
    from lb.balance.keys import hash_sdbm
    from lb.balance.map import build_map

    spec = BalanceSpec(algorithm="uri")
    srvs = servers((2, 4, 6))  # gcd 2 -> map of 1:2:3, length 6
    b = balance.create(spec, srvs)
    order = build_map([2, 4, 6])
    assert len(order) == 6
    for k in _keys(200):
        assert b.pick(k) is srvs[order[hash_sdbm(k) % 6]]
    # a server going down reshapes the map (map-based is not consistent)
    srvs[0].up = False
    b.update(srvs[0])
    order2 = build_map([0, 4, 6])
    for k in _keys(200):
        assert b.pick(k) is srvs[order2[hash_sdbm(k) % 5]]


@pytest.mark.parametrize("hash_type", ["map-based", "consistent"])
def test_hash_returns_full_server_but_fallback_skips_it(hash_type: str) -> None:
    spec = BalanceSpec(algorithm="uri", hash_type=hash_type)
    srvs = servers((1, 1), maxconn=1)
    b = balance.create(spec, srvs)
    target = b.pick(b"/x")
    target.cur_conns = 1
    assert b.pick(b"/x") is target  # bound: waits in that server's queue
    other = srvs[1] if target is srvs[0] else srvs[0]
    assert {b.pick(None) for _ in range(4)} == {other}  # no key: round robin skips full


def test_missing_key_falls_back_to_weighted_round_robin() -> None:
    # checked against HAProxy 2.6.12: `balance hdr(x-none)` 2:1 without the header
    b = balance.create(BalanceSpec(algorithm="hdr", param="x-none"), servers((2, 1)))
    assert names(b.pick(None) for _ in range(12)) == "1 1 2 1 1 2 1 1 2 1 1 2"


def test_random_prefers_less_loaded_and_reports_full() -> None:
    srvs = servers((1, 1), maxconn=5)
    b = balance.ALGORITHMS["random"][0](BalanceSpec(algorithm="random", random_draws=2),
                                        srvs, False, 0)
    b.rng = random.Random(3)
    srvs[0].cur_conns = 4
    picks = [b.pick() for _ in range(200)]
    assert picks.count(srvs[1]) > 150
    srvs[0].cur_conns = srvs[1].cur_conns = 5
    assert b.pick() is None


def test_unknown_algorithm_falls_back_to_roundrobin() -> None:
    b = balance.create(BalanceSpec(algorithm="nonsense"), servers((1, 1)))
    assert names(b.pick() for _ in range(4)) == "1 2 1 2"


def test_algorithms_table_is_sorted_and_complete() -> None:
    assert list(balance.ALGORITHMS) == sorted(balance.ALGORITHMS)
    for name in ("first", "hash", "hdr", "leastconn", "random", "rdp-cookie", "roundrobin",
                 "source", "static-rr", "uri", "url_param"):
        assert name in balance.ALGORITHMS
    assert balance.is_hash(BalanceSpec(algorithm="uri"))
    assert not balance.is_hash(BalanceSpec(algorithm="leastconn"))


def test_large_backend_roundrobin_is_fair() -> None:
    srvs = servers([1] * 1000)
    b = balance.create(BalanceSpec(), srvs)
    got = [b.pick() for _ in range(3000)]
    assert {got.count(s) for s in srvs} == {3}


def _reference_map(weights: list[int]) -> list[int]:
    """HAProxy's recalc_server_map loop, written plainly (O(n * total))."""
    from math import gcd

    g = 0
    for w in weights:
        g = gcd(g, w)
    ew = [w // g if g else 0 for w in weights]
    tot = sum(ew)
    score = [0] * len(ew)
    out = []
    for _ in range(tot):
        best, top = -1, 0
        for i, w in enumerate(ew):
            if w <= 0:
                continue
            if tot == 1:
                best = i
                break
            score[i] += w
            v = (score[i] + tot) // tot
            if best < 0 or v > top:
                best, top = i, v
        out.append(best)
        score[best] -= tot
    return out


def test_fast_map_equals_haproxy_loop() -> None:
    from lb.balance.map import build_map

    rnd = random.Random(11)
    for _ in range(400):
        ws = [rnd.choice([0, 1, 1, 2, 3, 5, 7, 10, 16, 100, 256])
              for _ in range(rnd.randint(1, 9))]
        if not any(ws):
            assert build_map(ws) == []
            continue
        assert build_map(ws) == _reference_map(ws), ws
