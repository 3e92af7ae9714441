# Cython declarations for tunnel.py (tools/build_accel.py; ignored in pure Python).
# Tunnel and _End become extension types whose fields (the same as their __slots__,
# which tests/test_accel.py checks) are C struct members. The three counter links are
# typed (lb/state.pxd), so the pump's `fc.bin += n` is C arithmetic on a C field.

cimport cython

from lb.proxy.client cimport ClientConn
from lb.proxy.compiled cimport Runtime
from lb.proxy.timers cimport Deadline
from lb.proxy.txn cimport Txn
from lb.state cimport Counters, ServerState


cdef class Tunnel:
    cdef public object id, txn, conn, ct, st
    cdef public object timeout, t_open, srv_name, fe_name, be_name, on_close, frames
    cdef public object t_last
    # byte counts and flags: C values (the pump adds each chunk's length in C)
    cdef public long long up, down
    cdef public bint cfin, sfin, closed, ws, events, http
    cdef public int cfd, sfd
    cdef public Runtime rt
    cdef public Deadline timer
    cdef public Counters fc, bc, sc

    # the pump: C calls from _End, and the chunk length a C integer added to the
    # C counters
    @cython.locals(n=Py_ssize_t, fd=int)
    cpdef from_client(self, data)
    @cython.locals(n=Py_ssize_t, fd=int)
    cpdef from_server(self, data)
    # the tunnel's end (once per WebSocket): C calls from _End and within
    cpdef eof(self, is_client)
    @cython.locals(txn=Txn)
    cpdef fin_timeout(self, client_side)
    cpdef lost(self, is_client, exc)
    cpdef close(self, reason, term, abort=*)
    cpdef _log_close(self, reason, dur)


cdef class _End:
    cdef public Tunnel tun
    cdef public object is_client


# once per WebSocket: the transaction, its connection and the tunnel typed
@cython.locals(conn=ClientConn, rt=Runtime, srv=ServerState, tun=Tunnel)
cpdef start_http(Txn txn, head, server_tail)

@cython.locals(txn=Txn, conn=ClientConn)
cpdef _http_tunnel_closed(Tunnel tun, reason, term)

cpdef _tunnel_timeout(Txn txn)

