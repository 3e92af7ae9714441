"""``balance static-rr`` and map-based hashing (HAProxy's lb_map).

Owns: the static server map of spec Appendix A.2 (one slot per weight unit
after dividing weights by their gcd, heavier servers spread evenly, ties to the
first declared), the static round-robin cursor, and ``map[hash % total]`` for
the hash algorithms with ``hash-type map-based`` (the default).

The map is rebuilt on every state change in O(T log n) (T = map length); a pick
is O(1) unless servers are saturated (then the cursor walks the map, as
HAProxy's does). A map of the gcd-reduced weights gives the same server for
every hash as HAProxy's 16x larger one, because that map repeats with this
period.

Must not import: anything from lb except lb.balance.base.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from math import gcd
from typing import Any

from lb.balance.base import GroupedBalancer, NodeData


def build_map(weights: Sequence[int]) -> list[int]:
    """Indices of the servers in map order for these weights (0 = not in the map).

    Equivalent to HAProxy's recalc_server_map loop (each step every server gains
    its weight, the first declared server with the highest level wins and pays
    the total back), computed by scheduling each server's next level change
    instead of scanning all servers at every step."""
    live = [(i, w) for i, w in enumerate(weights) if w > 0]
    if not live:
        return []
    g = 0
    for _, w in live:
        g = gcd(g, w)
    ew = {i: w // g for i, w in live}
    tot = sum(ew.values())
    if tot == 1:
        return [live[0][0]]
    chosen = dict.fromkeys(ew, 0)
    level: dict[int, int] = {}
    buckets: dict[int, list[int]] = {}
    events: list[tuple[int, int, int]] = []
    version = dict.fromkeys(ew, 0)

    def settle(i: int, o: int) -> None:
        # level after the increment of step o: floor(score / tot)
        lv = ((o + 1) * ew[i] - tot * chosen[i]) // tot
        level[i] = lv
        heapq.heappush(buckets.setdefault(lv, []), i)
        version[i] += 1
        nxt = (((lv + 1 + chosen[i]) * tot) + ew[i] - 1) // ew[i] - 1
        heapq.heappush(events, (nxt, i, version[i]))

    for i in ew:
        settle(i, 0)
    out: list[int] = []
    for o in range(tot):
        while events and events[0][0] <= o:
            _, i, ver = heapq.heappop(events)
            if ver == version[i]:
                settle(i, o)
        best = -1
        for lv in sorted(buckets, reverse=True):
            b = buckets[lv]
            while b and level[b[0]] != lv:
                heapq.heappop(b)
            if b:
                best = b[0]
                break
            del buckets[lv]
        out.append(best)
        chosen[best] += 1
        settle(best, o)
    return out


class MapNode(NodeData):
    __slots__ = ()


class StaticMap(GroupedBalancer):
    """static-rr, and the map behind map-based hashing (``hasher`` set)."""

    data_class = MapNode

    def __init__(self, servers: Any, allbackups: bool = False,
                 hasher: Callable[[bytes], int] | None = None) -> None:
        self.hasher = hasher
        self.map: list[Any] = []
        self.rr_idx = 0
        super().__init__(servers, allbackups)

    def _init_trees(self) -> None:
        self._recalc()

    def _recalc(self) -> None:
        if self.srv_act:
            group = [d for d in self.nodes if d.was_usable and not d.srv.backup]
        elif self.fbck is not None:
            group = [self.fbck.lb_data]
        else:
            group = [d for d in self.nodes if d.was_usable and d.srv.backup]
        order = build_map([d.ew for d in group])
        self.map = [group[i].srv for i in order]

    def _srv_up(self, d: Any) -> None:
        self._recalc()

    def _srv_down(self, d: Any, old_ew: int) -> None:
        self._recalc()

    def _srv_reweight(self, d: Any, old_ew: int) -> None:
        self._recalc()

    def pick(self, key: bytes | None = None, avoid: Any = None) -> Any:
        m = self.map
        if not m:
            return None
        if key is not None and self.hasher is not None:
            return m[self.hasher(key) % len(m)]
        return self._rr(avoid)

    def _rr(self, avoid: Any) -> Any:
        # map_get_server_rr
        m = self.map
        tot = len(m)
        if self.rr_idx >= tot:
            self.rr_idx = 0
        start = newidx = self.rr_idx
        avoided = None
        avoididx = 0
        while True:
            s = m[newidx]
            newidx += 1
            if not s.maxconn or (not s.queue and s.cur_conns < s.maxconn):
                avoided = s
                avoididx = newidx
                if s is not avoid:
                    self.rr_idx = newidx  # may equal tot: wrapped on the next pick
                    return s
            if newidx == tot:
                newidx = 0
            if newidx == start:
                break
        if avoided is not None:
            self.rr_idx = avoididx
        return avoided
