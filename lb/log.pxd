# Cython declarations for log.py (tools/build_accel.py; ignored in pure Python).
# The classes a request or a WebSocket handshake goes through (the traffic log and
# its sinks, the per-connection events and their batch) become extension types with
# C fields (the same as their __slots__, which tests/test_accel.py checks), and the
# methods called per line are cpdef: C calls between them (issue #9).

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from libc.errno cimport errno
from libc.string cimport memcpy
from posix.time cimport CLOCK_REALTIME, clock_gettime, timespec

from lb.logfmt cimport TrafficFormat

cdef bint COMPILED
cdef object _TIME_NS


cdef class LogCounters:
    cdef public long long dropped_logs, send_errors, render_errors, sent


cdef class Sink:
    cdef public object target, fmt, facility, length, _hmeta
    cdef public int maxlevel, minlevel, _hlevel
    cdef public long long sent, dropped, errors, _hsec
    cdef public Py_ssize_t _limit
    cdef public bytes _hdr
    cdef public bint _cacheable
    cdef public tuple sample_ranges
    cdef public long long sample_size, _sample_idx
    @cython.locals(sec=cython.longlong, hdr=bytes)
    cpdef send(self, int level, msg, double now, meta)
    @cython.locals(n=cython.longlong)
    cpdef bint _sampled(self)
    cpdef _write_line(self, bytes hdr, msg)
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
    cpdef _write_line(self, bytes hdr, msg)
    @cython.locals(err=int)
    cpdef _write(self, data)
    cpdef _send_failed(self, e)


# The compiled body of a connected sink's write (issue #9): send(2) of the datagram
# with the GIL held. os.write releases and takes the GIL around the call (a mutex
# pair, about 1k instructions a line), and nothing can run meanwhile in lb's one
# thread anyway. 0 when sent, else the errno, which DgramSink._write raises as the
# same OSError subclass os.write would; -1 when `data` is not bytes (os.write then).
cdef extern from "sys/socket.h" nogil:
    ssize_t _sys_send "send" (int, const void *, size_t, int)
    int MSG_DONTWAIT
    int MSG_NOSIGNAL


# The same for a line in its parts (header, message): copied with the LF into a stack
# buffer and sent with send(2), no joined bytes object. (sendmsg(2) of the three parts
# as they are cost 0.28 us more in the kernel than send(2) of 201 bytes here, more
# than the join it saves.) -1 when a part is not bytes or the line is over the buffer.
cdef inline int _dgram_send_line_c(int fd, object hdr, object msg):
    cdef char buf[4096]
    cdef Py_ssize_t nh, nm
    if not PyBytes_CheckExact(hdr) or not PyBytes_CheckExact(msg):
        return -1
    nh = PyBytes_GET_SIZE(hdr)
    nm = PyBytes_GET_SIZE(msg)
    if nh + nm + 1 > 4096:
        return -1
    memcpy(buf, PyBytes_AS_STRING(hdr), nh)
    memcpy(buf + nh, PyBytes_AS_STRING(msg), nm)
    buf[nh + nm] = 10
    if _sys_send(fd, buf, nh + nm + 1, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0:
        return 0
    return errno


cdef inline int _dgram_send_c(int fd, object data):
    if not PyBytes_CheckExact(data):
        return -1
    if _sys_send(fd, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data),
                 MSG_DONTWAIT | MSG_NOSIGNAL) >= 0:
        return 0
    return errno


cdef class TrafficLog:
    cdef public object meta, mode, dontlognull, dontlog_normal, separate_errors, name, sd_fmt
    cdef public object error_fmt
    cdef public TrafficFormat fmt
    cdef public Py_ssize_t msg_limit
    cdef public LogCounters counters
    cdef public bint early
    cdef public tuple sinks
    @cython.locals(fmt=TrafficFormat, main=TrafficFormat)
    cpdef emit(self, txn, empty=*)
    cpdef emit_connect(self, txn)
    @cython.locals(s=Sink)
    cpdef send(self, level, line, now=*, sd=*)


cdef class _TurnBatch:
    cdef public object out
    cdef public list lines
    cdef public Py_ssize_t limit, size
    cdef public double delay
    cdef public object loop
    cpdef write(self, line)
    cpdef _due(self)
    cpdef flush(self)


cdef class _FastChain:
    cdef public object processors, count, last, wrapper, factory, out, enabled
    cdef public _TurnBatch batch
    cdef public dict config, context_vars
    @cython.locals(cfg=dict)
    cpdef current(self)


# time.time_ns() in C: CLOCK_REALTIME, as Python reads it
cdef inline long long _realtime_ns_c() except -1:
    cdef timespec ts
    if clock_gettime(CLOCK_REALTIME, &ts) != 0:
        raise OSError(errno, "clock_gettime")
    return <long long>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef class _IsoStamp:
    cdef public long long sec
    cdef public str head
    @cython.locals(us=cython.longlong)
    cpdef str text(self)
    @cython.locals(now=cython.longlong, sec=cython.longlong, us=cython.longlong)
    cpdef long long now_us(self) except -1


cdef class InfoEvent:
    cdef public object logger, event, keys, start, lits, tail
    @cython.locals(fast=_FastChain, lits=tuple, parts=list, i=Py_ssize_t, iso=_IsoStamp)
    cpdef _render(self, tuple values)


# The compiled body of InfoEvent._render (issue #9): the JSON line measured, then
# written into one ASCII str, where the Python code made a str per value, a parts
# list and a join. Values it renders: str of printable ASCII without '"' or '\\'
# (what json's ensure_ascii writes unchanged, in quotes), int within 64 bits,
# bool, None. None for any other value: the Python code renders that line.
cdef extern from "Python.h":
    object PyUnicode_New(Py_ssize_t, Py_UCS4)
    void *PyUnicode_DATA(object)
    Py_ssize_t PyUnicode_GET_LENGTH(object)
    bint PyUnicode_IS_ASCII(object)
    bint PyUnicode_CheckExact(object)
    bint PyLong_CheckExact(object)
    bint PyBool_Check(object)
    long long PyLong_AsLongLongAndOverflow(object, int *) except? -1


cdef inline bint _plain_ascii(object v):
    cdef const unsigned char *p
    cdef Py_ssize_t i, n
    if not PyUnicode_IS_ASCII(v):
        return False
    p = <const unsigned char *>PyUnicode_DATA(v)
    n = PyUnicode_GET_LENGTH(v)
    for i in range(n):
        if p[i] < 0x20 or p[i] == 0x7f or p[i] == 0x22 or p[i] == 0x5c:
            return False
    return True


cdef inline Py_ssize_t _digits(unsigned long long u):
    cdef Py_ssize_t k = 1
    while u >= 10:
        u //= 10
        k += 1
    return k


cdef inline unsigned long long _magnitude(long long x):
    return (<unsigned long long>0) - <unsigned long long>x if x < 0 else <unsigned long long>x


cdef inline char *_put(char *p, object s):
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(s)
    memcpy(p, PyUnicode_DATA(s), n)
    return p + n


cdef inline object _event_line_c(str start, tuple lits, tuple values, str tail,
                                 _IsoStamp iso):
    cdef Py_ssize_t n = len(values), i, j, total, k
    cdef long long ints[16]
    cdef long long x
    cdef unsigned long long u
    cdef int overflow = 0
    cdef char *p
    cdef long long us
    if n > 16 or not (PyUnicode_IS_ASCII(start) and PyUnicode_IS_ASCII(tail)):
        return None
    total = PyUnicode_GET_LENGTH(start) + PyUnicode_GET_LENGTH(tail) + 3
    for i in range(n):
        v = values[i]
        lit = lits[i]
        if not PyUnicode_CheckExact(lit) or not PyUnicode_IS_ASCII(lit):
            return None
        total += PyUnicode_GET_LENGTH(lit)
        if PyUnicode_CheckExact(v):
            if not _plain_ascii(v):
                return None
            total += PyUnicode_GET_LENGTH(v) + 2
        elif PyBool_Check(v):
            total += 4 if v is True else 5
        elif PyLong_CheckExact(v):
            x = PyLong_AsLongLongAndOverflow(v, &overflow)
            if overflow:
                return None
            ints[i] = x
            total += _digits(_magnitude(x)) + (x < 0)
        elif v is None:
            total += 4
        else:
            return None
    us = iso.now_us()
    head = iso.head
    if not PyUnicode_IS_ASCII(head):
        return None
    total += PyUnicode_GET_LENGTH(head) + (8 if us else 1)
    line = PyUnicode_New(total, 127)
    p = <char *>PyUnicode_DATA(line)
    p = _put(p, start)
    for i in range(n):
        p = _put(p, lits[i])
        v = values[i]
        if PyUnicode_CheckExact(v):
            p[0] = b'"'
            p = _put(p + 1, v)
            p[0] = b'"'
            p += 1
        elif PyBool_Check(v):
            if v is True:
                memcpy(p, b"true", 4)
                p += 4
            else:
                memcpy(p, b"false", 5)
                p += 5
        elif PyLong_CheckExact(v):
            x = ints[i]
            if x < 0:
                p[0] = b"-"
                p += 1
            u = _magnitude(x)
            k = _digits(u)
            for j in range(k - 1, -1, -1):
                p[j] = <char>(0x30 + u % 10)
                u //= 10
            p += k

        else:
            memcpy(p, b"null", 4)
            p += 4
    p = _put(p, tail)
    p = _put(p, head)
    if us:
        p[0] = b"."
        u = us
        for k in range(6, 0, -1):
            p[k] = <char>(0x30 + u % 10)
            u //= 10
        p[7] = b"Z"
        p += 8
    else:
        p[0] = b"Z"
        p += 1
    memcpy(p, b'"}\n', 3)
    return line
