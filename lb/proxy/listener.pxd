# Cython declarations for listener.py (tools/build_accel.py; ignored in pure Python).
# Listener becomes an extension type whose fields (the same as its __slots__, which
# tests/test_accel.py checks) are C struct members, with its frontend and runtime
# typed: the maxconn checks of every accept and every connection's end read C
# fields instead of looking attributes up (issue #9).

from lb.proxy.compiled cimport FrontendRT, Runtime
from lb.proxy.drive cimport Driven


cdef class Listener:
    cdef public object bind, server, port, sock, factory, backlog, accepted_class
    cdef public object peer, local, label, tls
    cdef public bint reading, paused, blocked, accept_proxy
    cdef public int peer_fd
    cdef public FrontendRT fe
    cdef public Runtime rt

    cpdef _read(self, bint on)
    cpdef bint _full(self)
    cpdef bint _rate_wait(self)
    cpdef _block(self)
    cpdef release(self, conn)
    cpdef _free(self)
    cpdef _served(self, csock, Driven done)
    cpdef _tls_served(self, csock, peer, double accepted, Driven done)
