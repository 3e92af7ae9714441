# Cython declarations for server.py (tools/build_accel.py; ignored in pure Python).
# ServerConn becomes an extension type whose fields (the same as its __slots__, which
# tests/test_accel.py checks) are C struct members: `self.<field>` is a pointer read.

from lb.proxy.compiled cimport BackendRT
from lb.state cimport ServerState


cdef class ServerConn:
    cdef public object transport, parser, txn, reason, in_head
    cdef public list headers, trailers
    cdef public object closed, idle_handle, reusable, res_cl, res_te, idle_since
    cdef public object final, pooled
    cdef public long long hleft, hcount
    cdef public BackendRT be
    cdef public ServerState srv
