"""Load-balancing algorithms behind one Balancer interface.

Owns: the ALGORITHMS table (name -> Balancer class) and ``create()``. Algorithms
see servers through the ``BalancedServer`` protocol (satisfied by
``lb.state.ServerState``); they never import lb.state.

PROVISIONAL: a plain round-robin placeholder until the balance work lands.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class BalancedServer(Protocol):
    name: str
    puid: int
    eweight: int
    cur_conns: int
    maxconn: int
    lb_data: Any

    @property
    def usable(self) -> bool: ...

    @property
    def backup(self) -> bool: ...


class Balancer(Protocol):
    def pick(self, key: bytes | None = None, avoid: Any = None) -> Any: ...

    def update(self, srv: Any) -> None: ...

    def take_conn(self, srv: Any) -> None: ...

    def drop_conn(self, srv: Any) -> None: ...


class _Placeholder:
    def __init__(self, servers: Sequence[Any]) -> None:
        self.servers = list(servers)
        self.i = 0

    def pick(self, key: bytes | None = None, avoid: Any = None) -> Any:
        n = len(self.servers)
        for _ in range(n):
            s = self.servers[self.i % n]
            self.i += 1
            if s.usable:
                return s
        return None

    def update(self, srv: Any) -> None:
        pass

    def take_conn(self, srv: Any) -> None:
        pass

    def drop_conn(self, srv: Any) -> None:
        pass


def create(spec: Any, servers: Sequence[Any], allbackups: bool = False) -> Balancer:
    return _Placeholder(servers)
