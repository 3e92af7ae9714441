# Cython declarations for server.py (tools/build_accel.py; ignored in pure Python).
# ServerConn becomes an extension type whose fields (the same as its __slots__, which
# tests/test_accel.py checks) are C struct members: `self.<field>` is a pointer read.

cimport cython

from lb.http.headscan cimport scan_response
from lb.proxy.compiled cimport BackendRT
from lb.proxy.sockio cimport closing
from lb.proxy.txn cimport Txn
from lb.state cimport ServerState


cdef class ServerConn:
    cdef public object transport, parser, reason
    cdef public list headers, trailers
    cdef public object idle_handle
    cdef public double idle_since
    cdef public bint in_head, closed, reusable, res_cl, res_te, final, pooled, attached
    cdef public bint plain, feeding, parked
    cdef public object park_timeout
    cdef public double park_now
    cdef public object early
    cdef public list unsent
    cdef public object local
    cdef public bint pp_sent, quickack, private
    cdef public object owner
    cdef public long long hleft, hcount
    cdef public int fd
    cdef public BackendRT be
    cdef public ServerState srv
    # server.pxd and txn.pxd cimport each other: res_head/body/end are C calls
    cdef public Txn txn
    cdef public object dialer

    # typed bytes: `name.lower()` is a direct call of the C method, no lookup
    cpdef on_header(self, bytes name, bytes value)
    @cython.locals(hleft=cython.longlong, hcount=cython.longlong, body_at=Py_ssize_t)
    cpdef bint _scanned(self, Txn txn, tuple res, bytes data) except -1
    @cython.locals(fd=int)
    cpdef send(self, data)
    cpdef flush(self)
    cpdef write_many(self, parts)
    @cython.locals(unsent=list)
    cpdef _send_now(self, bytes data)
    @cython.locals(unsent=list, n=Py_ssize_t)
    cpdef _send_unsent(self)
    cpdef close(self)
    cpdef close_done(self)
    cpdef abort(self)
    @cython.locals(pool=list)
    cpdef release(self, idle_timeout, double now)
    cpdef _drop_idle(self)


@cython.locals(sc=ServerConn, pool=list, now=cython.double)
cpdef take_idle(BackendRT be, ServerState srv)
