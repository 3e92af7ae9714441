"""``balance first``: the first server (lowest id) that still accepts a request.

Owns: one tree per group ordered by server id (``puid``, declaration order
unless ``id`` is set). Weights are ignored. A server accepts while its
in-flight count (served + queued) is below ``maxconn + maxqueue``; without
maxconn the first usable server takes everything.

Must not import: anything from lb except lb.balance.base and lb.balance.leastconn.
"""

from __future__ import annotations

from lb.balance.base import NodeData
from lb.balance.leastconn import TreeWalk


class First(TreeWalk):
    """The walk skips saturated servers, so a pick costs O(k log n) with k the
    number of full servers ahead of the first free one (as HAProxy's walk)."""

    @staticmethod
    def _key(d: NodeData) -> int:
        return d.srv.puid
