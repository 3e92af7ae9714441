"""``PeerNames``: the log layer's names for the peer addresses of a connection.

Its own module so that both ``lb.proxy.client`` and ``lb.proxy.txn`` can derive
from it when compiled: their ``.pxd`` files cimport each other's classes, and a
base class must be ready before either module's types are built.
"""

from __future__ import annotations


class PeerNames:
    """The log layer's names (client_ip, client_port, dst_ip) for the src/src_port/dst
    fields that both a client connection and a transaction carry (each subclass
    declares them: ``__slots__`` or its ``.pxd``)."""

    __slots__ = ()

    @property
    def client_ip(self) -> str:
        return self.src  # type: ignore[attr-defined,no-any-return]

    @property
    def client_port(self) -> int:
        return self.src_port  # type: ignore[attr-defined,no-any-return]

    @property
    def dst_ip(self) -> str:
        return self.dst  # type: ignore[attr-defined,no-any-return]
