"""The log layer's names for the peer addresses of a connection or a transaction.

Owns ``client_ip``, ``client_port`` and ``dst_ip`` (the names log formats use for the
``src``/``src_port``/``dst`` fields that a client connection and a transaction both
carry): ``PeerNames`` is the base class of ``ClientConn``, and ``Txn`` (whose base
is ``lb.match.sample.SampleSubject``) takes the same three properties. Its own
module so that both ``lb.proxy.client`` and ``lb.proxy.txn`` can use it when
compiled: their ``.pxd`` files cimport each other's classes, and a base class must
be ready before either module's types are built.
"""

from __future__ import annotations

from typing import Any


def _client_ip(self: Any) -> str:
    return self.src  # type: ignore[no-any-return]


def _client_port(self: Any) -> int:
    return self.src_port  # type: ignore[no-any-return]


def _dst_ip(self: Any) -> str:
    return self.dst  # type: ignore[no-any-return]


CLIENT_IP = property(_client_ip)
CLIENT_PORT = property(_client_port)
DST_IP = property(_dst_ip)


class PeerNames:
    """The three names, for a class that declares ``src``/``src_port``/``dst``
    (``__slots__`` or its ``.pxd``)."""

    __slots__ = ()

    client_ip = CLIENT_IP
    client_port = CLIENT_PORT
    dst_ip = DST_IP
