"""Load-balancing algorithms behind one Balancer interface.

Owns: the ALGORITHMS table (``balance`` keyword -> factory) and ``create()``.
Algorithms see servers through the ``BalancedServer`` protocol (satisfied by
``lb.state.ServerState``); they never import lb.state.

A balancer offers (HAProxy's lb_ops plus the pick):
- ``pick(key=None, avoid=None)``: the server for the next request, or None when
  no server is usable or (non-hash algorithms) every usable one is saturated.
  ``key`` is the hash input from ``lb.balance.keys.extract`` (None = round robin);
  ``avoid`` is the server a retry wants to leave (taken only if nothing else).
  Hash algorithms return the hashed server even when it is full (the request
  then waits in that server's queue).
- ``update(srv)``: the server's state or weight changed (lb.state calls it).
- ``take_conn(srv)`` / ``drop_conn(srv)``: the server's load (``cur_conns`` or
  its queue length) just rose / fell.
- ``available()``: some server can be load balanced (False -> 503 NOSRV).

Must not import: anything from lb outside lb.balance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from lb.balance.base import BalancedServer, Balancer, GroupedBalancer
from lb.balance.chash import ConsistentHash
from lb.balance.first import First
from lb.balance.keys import make_hasher
from lb.balance.leastconn import LeastConn
from lb.balance.map import StaticMap
from lb.balance.roundrobin import RoundRobin

__all__ = ["ALGORITHMS", "Balancer", "BalancedServer", "HASH_ALGORITHMS", "create",
           "is_hash"]

Factory = Callable[[Any, Sequence[Any], bool, int], GroupedBalancer]


def _hashed(spec: Any, servers: Sequence[Any], allbackups: bool,
            factor: int) -> GroupedBalancer:
    hasher = make_hasher(spec.algorithm, spec.hash_function, spec.hash_modifier)
    if spec.hash_type == "consistent":
        return ConsistentHash(servers, allbackups, hasher=hasher, balance_factor=factor)
    return StaticMap(servers, allbackups, hasher=hasher)


def _random(spec: Any, servers: Sequence[Any], allbackups: bool,
            factor: int) -> GroupedBalancer:
    return ConsistentHash(servers, allbackups, draws=max(1, spec.random_draws or 2),
                          balance_factor=factor)


# algorithm -> (factory, description). Rows alphabetical.
ALGORITHMS: dict[str, tuple[Factory, str]] = {
    "first": (lambda sp, s, a, f: First(s, a), "lowest id with a free slot"),
    "hash": (_hashed, "hash of a sample expression"),
    "hdr": (_hashed, "hash of a request header value"),
    "leastconn": (lambda sp, s, a, f: LeastConn(s, a), "fewest in-flight requests per weight"),
    "random": (_random, "best of N random draws on the consistent ring"),
    "rdp-cookie": (_hashed, "hash of the RDP mstshash cookie"),
    "roundrobin": (lambda sp, s, a, f: RoundRobin(s, a), "weighted round robin (dynamic)"),
    "source": (_hashed, "hash of the client address"),
    "static-rr": (lambda sp, s, a, f: StaticMap(s, a), "weighted round robin (static map)"),
    "uri": (_hashed, "hash of the URI"),
    "url_param": (_hashed, "hash of a URL parameter"),
}

HASH_ALGORITHMS = frozenset({"hash", "hdr", "rdp-cookie", "source", "uri", "url_param"})


def is_hash(spec: Any) -> bool:
    """HAProxy's BE_LB_KIND_HI: deterministic, key-driven algorithms (matter for
    redispatch decisions)."""
    return spec.algorithm in HASH_ALGORITHMS


def create(spec: Any, servers: Sequence[Any], allbackups: bool = False,
           balance_factor: int = 0) -> Balancer:
    """A balancer for one backend's servers (``spec`` is a BalanceSpec;
    ``balance_factor`` is `hash-balance-factor`, used by consistent hashing and
    ``random``)."""
    algo = getattr(spec, "algorithm", "roundrobin")
    factory = ALGORITHMS.get(algo, ALGORITHMS["roundrobin"])[0]
    return factory(spec, servers, allbackups, balance_factor)
