"""``hash-type consistent`` rings and ``balance random`` (HAProxy's lb_chash).

Owns: one ring per group (active, backup). A server of weight w owns w*16 ring
points at ``full_hash(puid * 4096 + i)``, so removing a server only moves the
keys that landed on its points. A hash goes to the closest point (before or
after it, ties to the one before); round robin over the ring serves requests
with no key; ``random(draws)`` draws that many points and keeps the least
loaded server.

``hash-balance-factor`` (HAProxy's bounded-load consistent hashing): a hashed or
drawn server is taken only while it serves fewer requests than its share of
``factor``% of the backend's load plus one; otherwise the walk goes on to the
next ring point, as it does past a server a retry avoids.

Lookups are O(log n) (bisect over a sorted key list). Rings are rebuilt lazily
on the first pick after a change.

Must not import: anything from lb except lb.balance.base and lb.balance.keys.
"""

from __future__ import annotations

import random as _random
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from typing import Any

from lb.balance.base import EW_RANGE, GroupedBalancer, NodeData
from lb.balance.keys import M32, full_hash


class CHNode(NodeData):
    __slots__ = ("points", "cumw")

    def __init__(self, srv: Any, idx: int) -> None:
        super().__init__(srv, idx)
        self.points: list[int] = []
        self.cumw = 0  # weight of the usable servers declared before it, same group

    def ring_points(self, n: int) -> list[int]:
        pts = self.points
        if len(pts) < n:
            base = self.srv.puid * EW_RANGE
            pts.extend(full_hash(base + i) for i in range(len(pts), n))
        return pts[:n]


class Ring:
    __slots__ = ("keys", "srvs", "last")

    def __init__(self) -> None:
        self.keys: list[int] = []
        self.srvs: list[Any] = []
        self.last = -1  # index of the point the round robin used last

    def build(self, nodes: list[CHNode]) -> None:
        last_key = self.keys[self.last] if 0 <= self.last < len(self.keys) else None
        pts = []
        cumw = 0
        for d in nodes:
            d.cumw = cumw
            cumw += d.ew
            for i, k in enumerate(d.ring_points(d.ew)):
                pts.append((k, d.idx, i, d.srv))
        pts.sort(key=lambda p: (p[0], p[1], p[2]))
        self.keys = [p[0] for p in pts]
        self.srvs = [p[3] for p in pts]
        self.last = -1 if last_key is None else bisect_right(self.keys, last_key) - 1

    def lookup(self, h: int, avoid: Any = None, fits: Callable[[Any], bool] | None = None
               ) -> Any:
        """The server of the ring point closest to ``h``; past it, along the ring,
        while that server is ``avoid`` or does not ``fit`` (at most twice round, the
        last one seen then)."""
        keys = self.keys
        n = len(keys)
        if not n:
            return None
        i = bisect_left(keys, h)
        if i == n:
            i = 0
        p = i - 1 if i else n - 1
        if ((h - keys[p]) & M32) <= ((keys[i] - h) & M32):
            i = p
        srvs = self.srvs
        s = srvs[i]
        if (avoid is None or s is not avoid) and (fits is None or fits(s)):
            return s
        wraps = 0
        while True:
            i += 1
            if i == n:
                i = 0
                wraps += 1
                if wraps > 1:
                    return s
            s = srvs[i]
            if s is not avoid and (fits is None or fits(s)):
                return s

    def next_rr(self, avoid: Any) -> Any:
        # chash_get_next_server: walk the ring, skip saturated and avoided servers
        n = len(self.keys)
        if not n:
            return None
        i = self.last
        avoided = None
        avoided_i = -1
        for _ in range(n):
            i = i + 1 if i + 1 < n else 0
            s = self.srvs[i]
            if not s.maxconn or (not s.queue and s.cur_conns < s.maxconn):
                if s is not avoid:
                    self.last = i
                    return s
                avoided, avoided_i = s, i
        if avoided is not None:
            self.last = avoided_i
        return avoided


class ConsistentHash(GroupedBalancer):
    """Consistent hashing (``hasher`` set) or ``random`` (``draws`` > 0)."""

    data_class = CHNode

    def __init__(self, servers: Any, allbackups: bool = False,
                 hasher: Callable[[bytes], int] | None = None, draws: int = 0,
                 rng: Any = None, balance_factor: int = 0) -> None:
        self.hasher = hasher
        self.draws = draws
        self.balance_factor = balance_factor
        self.rng = rng if rng is not None else _random.Random()
        self.act = Ring()
        self.bck = Ring()
        self.dirty = True
        super().__init__(servers, allbackups)

    def _mark(self, *_: Any) -> None:
        self.dirty = True

    _srv_up = _mark
    _srv_down = _mark
    _srv_reweight = _mark

    def _rebuild(self) -> None:
        self.act.build([d for d in self.nodes if d.was_usable and not d.srv.backup])
        self.bck.build([d for d in self.nodes if d.was_usable and d.srv.backup])
        self.dirty = False

    def _ring(self) -> Ring | None:
        if self.dirty:
            self._rebuild()
        if self.srv_act:
            return self.act
        if self.srv_bck:
            return self.bck
        return None

    def pick(self, key: bytes | None = None, avoid: Any = None) -> Any:
        if not self.srv_act and self.fbck is not None:
            return self.fbck
        ring = self._ring()
        if ring is None:
            return None
        if self.draws:
            return self._random(ring, avoid)
        if key is not None and self.hasher is not None:
            return ring.lookup(self.hasher(key), avoid, self._fits())
        return ring.next_rr(avoid)

    def lookup_hash(self, h: int, avoid: Any = None) -> Any:
        """The server for an already computed 32-bit hash."""
        if not self.srv_act and self.fbck is not None:
            return self.fbck
        ring = self._ring()
        return None if ring is None else ring.lookup(h & M32, avoid, self._fits())

    def _fits(self) -> Callable[[Any], bool] | None:
        """With a balance factor, the test a server must pass to take one more
        request now (HAProxy's chash_server_is_eligible); None without one.

        The backend's load plus this request, times the factor (rounded up), is
        shared out by weight: a whole number of slots per weight unit, and the
        remainder in proportion to where the server's weight falls in its group."""
        factor = self.balance_factor
        if not factor:
            return None
        tot_w = self.tot_weight
        if tot_w <= 0:
            return None
        served = 0
        for d in self.nodes:
            served += d.srv.cur_conns
        tot_slots = ((served + 1) * factor + 99) // 100
        per_weight, rem = divmod(tot_slots, tot_w)

        def fits(s: Any) -> bool:
            d = s.lb_data
            ew = d.ew
            slots = ew * per_weight + ((d.cumw + ew) * rem) // tot_w - (d.cumw * rem) // tot_w
            return s.cur_conns < (slots or 1)
        return fits

    def _random(self, ring: Ring, avoid: Any) -> Any:
        curr = None
        getbits = self.rng.getrandbits
        fits = self._fits()
        for _ in range(self.draws):
            prev = curr
            curr = ring.lookup(getbits(32), avoid, fits)
            if curr is None:
                break
            if prev is not None and prev is not curr and \
                    curr.cur_conns * prev.lb_data.ew > prev.cur_conns * curr.lb_data.ew:
                curr = prev
        if curr is not None and (curr.queue or (curr.maxconn and curr.cur_conns >= curr.maxconn)):
            return None  # full: wait in the backend queue
        return curr
