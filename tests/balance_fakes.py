"""Minimal servers satisfying lb.balance.BalancedServer, and a sequential-requests
driver, for balancer unit tests."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any


class FakeServer:
    def __init__(self, name: str, weight: int = 1, puid: int = 1, backup: bool = False,
                 maxconn: int = 0, maxqueue: int = 0) -> None:
        self.name = name
        self.puid = puid
        self.eweight = weight
        self.cur_conns = 0
        self.maxconn = maxconn
        self.maxqueue = maxqueue
        self.queue: deque[Any] = deque()
        self.lb_data: Any = None
        self.up = True
        self._backup = backup

    @property
    def usable(self) -> bool:
        return self.up and self.eweight > 0

    @property
    def backup(self) -> bool:
        return self._backup

    def __repr__(self) -> str:
        return self.name


def servers(weights: Sequence[int], maxconn: int = 0, backups: Sequence[int] = ()
            ) -> list[FakeServer]:
    """s1..sN with these weights; ``backups`` lists 1-based positions that are backup."""
    return [FakeServer(f"s{i + 1}", w, i + 1, backup=(i + 1) in backups, maxconn=maxconn)
            for i, w in enumerate(weights)]


def names(picked: Iterable[Any]) -> str:
    """'1 2 1 ...' for s1 s2 s1 ...; '-' for None."""
    return " ".join(s.name[1:] if s is not None else "-" for s in picked)


def sequential(b: Any, n: int) -> list[Any]:
    """n picks, each request taking its server's slot and ending before the next."""
    got = []
    for _ in range(n):
        s = b.pick()
        s.cur_conns += 1
        b.take_conn(s)
        s.cur_conns -= 1
        b.drop_conn(s)
        got.append(s)
    return got
