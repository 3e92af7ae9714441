"""``balance leastconn``: fewest in-flight requests relative to weight (lb_fwlc).

Owns: one ordered tree per group keyed by ``0`` when idle, else
``(inflight + 1) * 4096 // (weight * 16)`` with inflight = served + queued. A
server is re-keyed when its load changes (``take_conn``/``drop_conn``) and goes
behind servers of equal key, so equally loaded servers rotate. A pick walks the
tree from the least loaded server and skips servers whose in-flight count
reached ``maxconn + maxqueue`` and the server to avoid. Also owns ``TreeWalk``,
the tree-per-group skeleton ``balance first`` reuses with its own key.

Must not import: anything from lb except lb.balance.base.
"""

from __future__ import annotations

from typing import Any

from lb.balance.base import EW_MAX, GroupedBalancer, NodeData, OrderedTree, accepts


class TreeWalk(GroupedBalancer):
    """One ordered tree per group, keyed by ``_key``; a pick walks the tree
    from its first entry (shared by ``leastconn`` and ``first``)."""

    def _init_trees(self) -> None:
        self.act = OrderedTree()
        self.bck = OrderedTree()
        for d in self.nodes:
            if d.was_usable:
                self._queue(d)

    def _tree(self, d: NodeData) -> OrderedTree:
        return self.bck if d.srv.backup else self.act

    @staticmethod
    def _key(d: NodeData) -> int:
        raise NotImplementedError

    def _queue(self, d: NodeData) -> None:
        self._tree(d).insert(self._key(d), d)

    def _srv_up(self, d: NodeData) -> None:
        if d.tree is not None:
            d.tree.remove(d)
        self._queue(d)

    def _srv_down(self, d: NodeData, old_ew: int) -> None:
        if d.tree is not None:
            d.tree.remove(d)

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


class LeastConn(TreeWalk):
    @staticmethod
    def _key(d: NodeData) -> int:
        s = d.srv
        inflight = s.cur_conns + len(s.queue)
        return (inflight + 1) * EW_MAX // (d.ew or 1) if inflight else 0

    def _srv_reweight(self, d: NodeData, old_ew: int) -> None:
        self._srv_up(d)

    def _reposition(self, srv: Any) -> None:
        d = srv.lb_data
        if d is None or not d.was_usable:
            return
        key = self._key(d)
        if d.tree is not None and key == d.key:
            return
        if d.tree is not None:
            d.tree.remove(d)
        self._tree(d).insert(key, d)

    take_conn = _reposition
    drop_conn = _reposition


def walk_pick(tree: OrderedTree, avoid: Any, ok: Any) -> Any:
    """First server in tree order passing ``ok`` that is not ``avoid`` (falling back
    to ``avoid`` itself); entries are popped while walking and put back."""
    popped: list[NodeData] = []
    chosen = None
    avoided = None
    try:
        while True:
            d = tree.pop_first()
            if d is None:
                break
            popped.append(d)
            s = d.srv
            if ok(s):
                if s is not avoid:
                    chosen = s
                    break
                avoided = s
    finally:
        for d in popped:
            tree.restore(d)
    return chosen if chosen is not None else avoided
