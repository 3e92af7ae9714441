"""``balance roundrobin``: HAProxy's fast weighted round robin (FWRR).

Owns: the FWRR groups (init/curr/next trees per active and backup group), the
position arithmetic of spec Appendix A.1, the re-positioning on state and
weight changes (so ``set weight`` applies to the very next pick), and the
skipping of saturated and avoided servers.

This is the order HAProxy produces (heavy servers get consecutive picks), not
nginx's smooth WRR. Picking costs O(log n) (heaps ordered by (key, insertion)).

Must not import: anything from lb except lb.balance.base.
"""

from __future__ import annotations

from typing import Any

from lb.balance.base import EW_MAX, SCALE, UW_RANGE, GroupedBalancer, NodeData, OrderedTree


class RRNode(NodeData):
    __slots__ = ("npos", "lpos", "rweight")

    def __init__(self, srv: Any, idx: int) -> None:
        super().__init__(srv, idx)
        self.npos = 0
        self.lpos = 0
        self.rweight = 0


class RRGroup:
    __slots__ = ("init", "next", "curr", "curr_pos", "curr_weight", "next_weight")

    def __init__(self, weight: int) -> None:
        self.init = OrderedTree()
        self.next = OrderedTree()
        self.curr = OrderedTree()
        self.curr_pos = self.curr_weight = self.next_weight = weight


class RoundRobin(GroupedBalancer):
    data_class = RRNode

    def _init_trees(self) -> None:
        self.act = RRGroup(self.tot_wact)
        self.bck = RRGroup(self.tot_wbck)
        for d in self.nodes:
            if d.was_usable:
                grp = self.bck if d.srv.backup else self.act
                grp.init.insert(EW_MAX - d.ew, d)

    def _grp(self, d: RRNode) -> RRGroup:
        return self.bck if d.srv.backup else self.act

    # ---- tree moves (fwrr_queue_srv / fwrr_get_srv)
    def _queue(self, g: RRGroup, d: RRNode) -> None:
        if not d.was_usable:
            d.tree = None
            return
        if d.ew <= 0 or d.npos >= 2 * g.curr_weight or d.npos >= g.curr_weight + g.next_weight:
            d.npos -= g.curr_weight
            g.next.insert(EW_MAX - d.ew, d)
        else:
            g.curr.insert(UW_RANGE * d.npos + (EW_MAX + d.rweight - d.ew) // SCALE, d)

    def _get(self, g: RRGroup, d: RRNode) -> None:
        if d.tree is g.init:
            d.npos = d.rweight = 0
        elif d.tree is g.next:
            d.npos += g.curr_weight
        elif d.tree is None:
            d.npos = g.curr_pos

    @staticmethod
    def _detach(d: RRNode) -> None:
        t = d.tree
        if t is not None:
            t.remove(d)

    # ---- lb_ops hooks
    def _srv_up(self, d: RRNode) -> None:
        g = self._grp(d)
        g.next_weight += d.ew
        self._get(g, d)
        d.npos = g.curr_pos + (g.next_weight + g.curr_weight - g.curr_pos) // d.ew
        self._detach(d)
        self._queue(g, d)

    def _srv_down(self, d: RRNode, old_ew: int) -> None:
        g = self._grp(d)
        g.next_weight -= old_ew
        self._detach(d)
        d.tree = None

    def _srv_reweight(self, d: RRNode, old_ew: int) -> None:
        g = self._grp(d)
        g.next_weight += d.ew - old_ew
        if d.tree is g.init:
            g.init.remove(d)
            g.init.insert(EW_MAX - d.ew, d)
            return
        if d.tree is None:
            self._get(g, d)
            d.npos = g.curr_pos + (g.next_weight + g.curr_weight - g.curr_pos) // d.ew
        else:
            self._get(g, d)
            prev_next = d.npos
            step = g.next_weight // d.ew
            d.npos = d.lpos + step
            d.rweight = 0
            if d.npos > prev_next:
                d.npos = prev_next
            if d.npos < g.curr_pos + 2:
                d.npos = g.curr_pos + step
        self._detach(d)
        self._queue(g, d)

    # ---- picking (fwrr_get_next_server)
    @staticmethod
    def _from_group(g: RRGroup) -> RRNode | None:
        s1 = g.curr.first()
        if s1 is not None and s1.ew and s1.npos <= g.curr_pos:
            return s1
        s2 = g.init.first()
        if s2 is not None and s2.ew:
            s2.npos = s2.rweight = 0
            return s2
        return s1

    def pick(self, key: bytes | None = None, avoid: Any = None) -> Any:
        if self.srv_act:
            g = self.act
        elif self.fbck is not None:
            return self.fbck
        elif self.srv_bck:
            g = self.bck
        else:
            return None
        switched = False
        avoided: RRNode | None = None
        full: list[RRNode] | None = None  # (made only when a server is full)
        chosen: RRNode | None = None
        while True:
            if not g.curr_weight:
                g.curr_pos = g.curr_weight = g.next_weight
            d = RoundRobin._from_group(g)
            while d is None:
                if switched:
                    break
                switched = True
                g.init, g.next = g.next, g.init
                g.curr_weight = g.next_weight
                g.curr_pos = g.curr_weight
                d = RoundRobin._from_group(g)
            if d is None:
                chosen = avoided
                break
            # fwrr_update_position
            ew = d.ew
            if not d.npos:
                d.npos = g.curr_pos
            d.lpos = d.npos
            d.npos += g.next_weight // ew
            d.rweight += g.next_weight % ew
            if d.rweight >= ew:
                d.rweight -= ew
                d.npos += 1
            d.tree.remove(d)
            g.curr_pos += 1
            s = d.srv
            if not s.maxconn or (not s.queue and s.cur_conns < s.maxconn):
                if s is not avoid or avoided is not None:
                    chosen = d
                    break
                avoided = d
            if full is None:
                full = []
            full.append(d)
        if chosen is not None:
            self._queue(g, chosen)
        if full is None:
            return chosen.srv if chosen is not None else None
        for f in full:
            if f is chosen:
                continue
            if switched:
                g.init.insert(EW_MAX - f.ew, f)
            else:
                self._queue(g, f)
        return chosen.srv if chosen is not None else None
