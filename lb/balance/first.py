"""``balance first``: the first server (lowest id) that still accepts a request.

Owns: one tree per group ordered by server id (``puid``, declaration order
unless ``id`` is set). Weights are ignored. A server accepts while its
in-flight count (served + queued) is below ``maxconn + maxqueue``; without
maxconn the first usable server takes everything.

Must not import: anything from lb except lb.balance.base and lb.balance.leastconn.
"""

from __future__ import annotations

from typing import Any

from lb.balance.base import GroupedBalancer, NodeData, OrderedTree, accepts
from lb.balance.leastconn import walk_pick


class First(GroupedBalancer):
    """The walk skips saturated servers, so a pick costs O(k log n) with k the
    number of full servers ahead of the first free one (as HAProxy's walk)."""

    data_class = NodeData

    def _init_trees(self) -> None:
        self.act = OrderedTree()
        self.bck = OrderedTree()
        for d in self.nodes:
            if d.was_usable:
                self._queue(d)

    def _queue(self, d: NodeData) -> None:
        (self.bck if d.srv.backup else self.act).insert(d.srv.puid, d)

    def _srv_up(self, d: NodeData) -> None:
        if d.tree is not None:
            d.tree.remove(d)
        self._queue(d)

    def _srv_down(self, d: NodeData, old_ew: int) -> None:
        if d.tree is not None:
            d.tree.remove(d)

    def _srv_reweight(self, d: NodeData, old_ew: int) -> None:
        pass

    def pick(self, key: bytes | None = None, avoid: Any = None) -> Any:
        if self.srv_act:
            tree = self.act
        elif self.fbck is not None:
            return self.fbck
        elif self.srv_bck:
            tree = self.bck
        else:
            return None
        return walk_pick(tree, avoid, accepts)
