# Cython declarations for log.py (tools/build_accel.py; ignored in pure Python).
# The classes a request or a WebSocket handshake goes through (the traffic log and
# its sinks, the per-connection events and their batch) become extension types with
# C fields (the same as their __slots__, which tests/test_accel.py checks), and the
# methods called per line are cpdef: C calls between them (issue #9).

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from libc.errno cimport errno

from lb.logfmt cimport TrafficFormat

cdef bint COMPILED


cdef class LogCounters:
    cdef public long long dropped_logs, send_errors, render_errors, sent


cdef class Sink:
    cdef public object target, fmt, facility, length, _hmeta
    cdef public int maxlevel, minlevel, _hlevel
    cdef public long long sent, dropped, errors, _hsec
    cdef public Py_ssize_t _limit
    cdef public bytes _hdr
    cdef public bint _cacheable
    @cython.locals(sec=cython.longlong, hdr=bytes)
    cpdef send(self, int level, msg, double now, meta)
    cpdef _write(self, data)
    cpdef _dropped(self)
    cpdef _failed(self, err)


cdef class FdSink(Sink):
    cdef public object fd
    cpdef _write(self, data)


cdef class DgramSink(Sink):
    cdef public object sock, addr
    cdef public bint connected
    cdef public int fd
    @cython.locals(err=int)
    cpdef _write(self, data)


# The compiled body of a connected sink's write (issue #9): send(2) of the datagram
# with the GIL held. os.write releases and takes the GIL around the call (a mutex
# pair, about 1k instructions a line), and nothing can run meanwhile in lb's one
# thread anyway. 0 when sent, else the errno, which DgramSink._write raises as the
# same OSError subclass os.write would; -1 when `data` is not bytes (os.write then).
cdef extern from "sys/socket.h" nogil:
    ssize_t _sys_send "send" (int, const void *, size_t, int)
    int MSG_DONTWAIT
    int MSG_NOSIGNAL


cdef inline int _dgram_send_c(int fd, object data):
    if not PyBytes_CheckExact(data):
        return -1
    if _sys_send(fd, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data),
                 MSG_DONTWAIT | MSG_NOSIGNAL) >= 0:
        return 0
    return errno


cdef class TrafficLog:
    cdef public object meta, mode, dontlognull, dontlog_normal, separate_errors, name
    cdef public TrafficFormat fmt
    cdef public Py_ssize_t msg_limit
    cdef public LogCounters counters
    cdef public tuple sinks
    @cython.locals(fmt=TrafficFormat)
    cpdef emit(self, txn, empty=*)
    @cython.locals(s=Sink)
    cpdef send(self, level, line, now=*)


cdef class _TurnBatch:
    cdef public object out, limit
    cdef public list lines
    cpdef write(self, line)
    cpdef flush(self)


cdef class _FastChain:
    cdef public object processors, count, last, wrapper, factory, out, enabled
    cdef public _TurnBatch batch
    cpdef current(self)


cdef class _IsoStamp:
    cdef public long long sec
    cdef public str head
    @cython.locals(now=cython.longlong, sec=cython.longlong, us=cython.longlong)
    cpdef str text(self)


cdef class InfoEvent:
    cdef public object logger, event, keys, start, lits, tail
    @cython.locals(fast=_FastChain, lits=tuple, parts=list, i=Py_ssize_t, iso=_IsoStamp)
    cpdef _render(self, tuple values)
