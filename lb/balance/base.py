"""What every balancing algorithm shares.

Owns: the ``BalancedServer`` and ``Balancer`` protocols, the active/backup group
bookkeeping of HAProxy's ``recount_servers``/``update_backend_weight`` (usable
counts, total weights, the first usable backup ``fbck``), the ``OrderedTree`` (a
heap of the nodes, each knowing its place in it, standing in for HAProxy's ebtrees:
ordered by key, then insertion order) and the "may take one more request" test.

Servers are seen only through ``BalancedServer`` (``lb.state.ServerState``
satisfies it). A balancer keeps its per-server data in ``srv.lb_data``.

Must not import: anything from lb (pure L1 module).
"""

from __future__ import annotations

from collections.abc import Sized
from typing import Any, Protocol

# HAProxy's weight scale: effective weights are user weights times 16.
SCALE = 16
EW_MAX = 256 * SCALE  # SRV_EWGHT_MAX
UW_RANGE = 256  # SRV_UWGHT_RANGE
EW_RANGE = UW_RANGE * SCALE  # SRV_EWGHT_RANGE


class BalancedServer(Protocol):
    name: str
    puid: int
    eweight: int  # user-scale effective weight, 0..256
    cur_conns: int  # requests/tunnels holding a slot
    maxconn: int  # 0 = unlimited
    lb_data: Any
    queue: Sized  # requests waiting for this very server

    @property
    def usable(self) -> bool: ...

    @property
    def backup(self) -> bool: ...

    @property
    def maxqueue(self) -> int: ...


class Balancer(Protocol):
    def pick(self, key: bytes | None = None, avoid: Any = None) -> Any: ...

    def update(self, srv: Any) -> None: ...

    def take_conn(self, srv: Any) -> None: ...

    def drop_conn(self, srv: Any) -> None: ...

    def available(self) -> bool: ...


def has_room(s: Any) -> bool:
    """Not saturated: no maxconn, or nobody queued for it and a free slot
    (the test roundrobin/static-rr/chash use before picking a server)."""
    return not s.maxconn or (not s.queue and s.cur_conns < s.maxconn)


def accepts(s: Any) -> bool:
    """leastconn/first eligibility: in-flight (served + queued) below
    maxconn + maxqueue."""
    return not s.maxconn or s.cur_conns + len(s.queue) < s.maxconn + _maxqueue(s)


def _maxqueue(s: Any) -> int:
    try:
        return s.maxqueue or 0
    except AttributeError:
        return 0


_SEQ = 0  # the insertion order of every tree's entries


class OrderedTree:
    """Entries ordered by (key, insertion order); O(log n) insert and removal, O(1)
    first.

    A binary heap of the nodes themselves, each knowing its place in it (``hpos``),
    so a node leaves at once, from anywhere, and no entry is ever stale. The node
    object must have ``key``, ``seq``, ``hpos`` and ``tree`` attributes."""

    __slots__ = ("heap", "live")

    def __init__(self) -> None:
        self.heap: list[Any] = []  # live entries first, then unused places (None)
        self.live = 0

    def insert(self, key: int, node: Any) -> None:
        """File ``node`` under ``key``, after the nodes already there with that key
        (leaving the tree it was in, if any)."""
        global _SEQ
        if node.tree is not None:
            node.tree.remove(node)
        _SEQ += 1
        node.seq = _SEQ
        node.key = key
        self.restore(node)

    def first(self) -> Any:
        return self.heap[0] if self.live else None

    def remove(self, node: Any) -> None:
        if node.tree is not self:
            return
        h = self.heap
        i = node.hpos
        n = self.live - 1
        last = h[n]
        h[n] = None  # (the list keeps its length: no resize per pick)
        self.live = n
        node.tree = None
        node.seq = 0
        node.hpos = -1
        if last is not node:
            self._put(i, last)
            if i > 0 and _before(last, h[(i - 1) >> 1]):
                self._up(i)
            else:
                self._down(i)

    def pop_first(self) -> Any:
        """Detach the first node; ``restore`` puts it back at the same place."""
        if not self.live:
            return None
        node = self.heap[0]
        seq = node.seq
        self.remove(node)
        node.seq = seq
        return node

    def restore(self, node: Any) -> None:
        """Put ``node`` in with the key and insertion order it has."""
        i = self.live
        node.tree = self
        if i < len(self.heap):
            self.heap[i] = node
        else:
            self.heap.append(node)
        self.live = i + 1
        self._up(i)

    def _up(self, i: int) -> None:
        h = self.heap
        node = h[i]
        while i > 0:
            j = (i - 1) >> 1
            parent = h[j]
            if not _before(node, parent):
                break
            self._put(i, parent)
            i = j
        self._put(i, node)

    def _down(self, i: int) -> None:
        h = self.heap
        n = self.live
        node = h[i]
        while True:
            c = 2 * i + 1
            if c >= n:
                break
            child = h[c]
            if c + 1 < n and _before(h[c + 1], child):
                c += 1
                child = h[c]
            if not _before(child, node):
                break
            self._put(i, child)
            i = c
        self._put(i, node)

    def _put(self, i: int, node: Any) -> None:
        self.heap[i] = node
        node.hpos = i

    def __len__(self) -> int:
        return self.live


def _before(a: Any, b: Any) -> bool:
    """``a`` comes before ``b`` in a tree: a lower key, or the same key inserted
    earlier."""
    return a.key < b.key or (a.key == b.key and a.seq < b.seq)


class NodeData:
    """Per-server data common to every algorithm (kept in ``srv.lb_data``)."""

    __slots__ = ("srv", "idx", "was_usable", "ew", "seq", "tree", "key", "hpos")

    def __init__(self, srv: Any, idx: int) -> None:
        self.srv = srv
        self.idx = idx  # declaration order
        self.was_usable = False
        self.ew = 0  # effective weight as last seen (HAProxy scale: weight * 16)
        self.seq = 0
        self.tree: Any = None
        self.key = 0
        self.hpos = -1  # its place in the tree's heap


class GroupedBalancer:
    """Active/backup accounting shared by all algorithms.

    Subclasses implement ``_srv_up(d)``, ``_srv_down(d, old_ew)`` and
    ``_srv_reweight(d, old_ew)`` (the three lb_ops hooks) and ``pick``.
    """

    data_class: type[NodeData] = NodeData

    def __init__(self, servers: Any, allbackups: bool = False) -> None:
        self.servers = list(servers)
        self.allbackups = allbackups
        self.srv_act = 0
        self.srv_bck = 0
        self.tot_wact = 0
        self.tot_wbck = 0
        self.fbck: Any = None
        self.nodes = []
        for i, s in enumerate(self.servers):
            d = self.data_class(s, i)
            s.lb_data = d
            self.nodes.append(d)
        self._init_groups()
        for d in self.nodes:
            if d.srv.usable:
                d.ew = d.srv.eweight * SCALE
                d.was_usable = True
                self._count(d, d.ew, +1)
        self._find_fbck()
        self._init_trees()

    # ---- hooks for subclasses
    def _init_groups(self) -> None:
        pass

    def _init_trees(self) -> None:
        pass

    def _srv_up(self, d: Any) -> None:
        pass

    def _srv_down(self, d: Any, old_ew: int) -> None:
        pass

    def _srv_reweight(self, d: Any, old_ew: int) -> None:
        pass

    # ---- accounting
    def _count(self, d: Any, ew: int, sign: int) -> None:
        if d.srv.backup:
            self.srv_bck += sign
            self.tot_wbck += sign * ew
        else:
            self.srv_act += sign
            self.tot_wact += sign * ew

    def _find_fbck(self) -> None:
        self.fbck = None
        if self.allbackups:
            return
        for d in self.nodes:
            if d.srv.backup and d.was_usable:
                self.fbck = d.srv
                return

    @property
    def tot_weight(self) -> int:
        if self.srv_act:
            return self.tot_wact
        if self.fbck is not None:
            return self.fbck.lb_data.ew
        return self.tot_wbck

    def available(self) -> bool:
        """Some server may be picked by load balancing."""
        return self.srv_act > 0 or self.srv_bck > 0

    def update(self, srv: Any) -> None:
        """Server state or weight changed (called by lb.state on every change)."""
        d = srv.lb_data
        now_usable = bool(srv.usable)
        new_ew = srv.eweight * SCALE if now_usable else 0
        old_ew = d.ew
        if now_usable == d.was_usable and new_ew == old_ew:
            return
        if not now_usable and not d.was_usable:
            return
        if now_usable and not d.was_usable:
            d.ew = new_ew
            d.was_usable = True
            self._count(d, new_ew, +1)
            if srv.backup:
                self._find_fbck()
            self._srv_up(d)
        elif d.was_usable and not now_usable:
            d.was_usable = False
            self._count(d, old_ew, -1)
            d.ew = 0
            if srv.backup:
                self._find_fbck()
            self._srv_down(d, old_ew)
        else:
            d.ew = new_ew
            if srv.backup:
                self.tot_wbck += new_ew - old_ew
            else:
                self.tot_wact += new_ew - old_ew
            self._srv_reweight(d, old_ew)

    def pick(self, key: bytes | None = None, avoid: Any = None) -> Any:
        raise NotImplementedError

    def take_conn(self, srv: Any) -> None:
        pass

    def drop_conn(self, srv: Any) -> None:
        pass

    def _group_is_backup(self) -> bool | None:
        """Which group load balancing uses now: False (actives), True (all backups),
        None (no usable server, or only ``fbck``)."""
        if self.srv_act:
            return False
        if self.fbck is not None:
            return None
        if self.srv_bck:
            return True
        return None
