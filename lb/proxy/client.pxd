# Cython declarations for client.py (tools/build_accel.py; ignored in pure Python).
# ClientConn becomes an extension type whose fields (the same as its __slots__, which
# tests/test_accel.py checks) are C struct members: `self.<field>` is a pointer read.

cimport cython

from lb.http.headscan cimport scan_request
from lb.proxy.compiled cimport FrontendRT, Runtime
from lb.proxy.listener cimport Listener
from lb.proxy.sockio cimport direct, finish_now
from lb.proxy.timers cimport Deadline
from lb.proxy.peer cimport PeerNames
from lb.proxy.txn cimport Txn


cdef class ClientConn(PeerNames):
    cdef public object loop, transport, parser, src, src_port, dst
    cdef public object dst_port, accept_ts, id
    cdef public list pending
    cdef public object url, upgrade_tail, tunnel, raw_head, held
    # bind ... accept-proxy: the bytes of the PROXY header so far (None: not waiting)
    cdef public object pp_wait
    # ... and the header read (lb.http.proxyproto.Header), None when none was
    cdef public object pp_header
    # track-sc slots held for the connection (lb.proxy.track), None when none
    cdef public object stkctr
    # the `sess.` variables (lb.match.variables), None until one is set
    cdef public object sess_vars
    # the first request's way on after an upgrade from `mode tcp` (lb.proxy.upgrade)
    cdef public object entry
    # `bind ... ssl`: the connection's ssl.SSLObject, None for plain TCP
    cdef public object tls
    # the text of the error that ended it before its session (`fc_err_str`), or None
    cdef public object err_text
    # private server connections kept between requests (lb.proxy.private), or None
    cdef public object srv_conns
    # sizes, counts and flags: C values (issue #9)
    cdef public long long hsize, head_max, nreq, upgrade_body, paused
    cdef public int fd
    cdef public double t_begin, last_end
    cdef public bint queueing, in_head, closed, got_bytes, write_paused, ended, plain
    cdef public bint read_eof, prefer_last
    cdef public Runtime rt
    cdef public FrontendRT fe
    # None for a connection that no listener of lb accepted
    cdef public Listener listener
    cdef public Deadline timer, stimer
    cdef public list headers, trailers
    cdef public Txn txn, req_txn

    # C calls within the connection and from Txn's chain; typed bytes make
    # `name.lower()` a direct call of the C method (issue #9)
    cpdef on_header(self, bytes name, bytes value)
    @cython.locals(fd=int)
    cpdef send(self, data)
    @cython.locals(fd=int)
    cpdef send2(self, head, data, Py_ssize_t off)
    cpdef flush(self)
    cpdef _input(self, data)
    cpdef _feed(self, data, off, end)
    cpdef _scanned(self, tuple head, bytes raw)
    @cython.locals(url=bytes)
    cpdef _head_done(self, bytes method, version)
    cpdef _start(self, ev)
    cpdef txn_done(self, txn, close, abort, double now)
    cpdef pause(self, why)
    cpdef resume(self, why)
    # once per message or connection, from within and from typed callers
    cpdef on_message_begin(self)
    cdef _begin(self, url, list headers, long long hsize)
    cpdef session_closed(self)


cpdef tuple _addr(a)
