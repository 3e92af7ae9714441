# Cython declarations for logfmt.py (tools/build_accel.py; ignored in pure Python).
# The date caches are extension types with C fields, and `date_ms` (every httplog
# line, issue #9) computes its millisecond key with C integers; lb.proxy.logline
# cimports it, so the call is a C call there.

cimport cython


cdef class _SecondCache:
    cdef public long long sec
    cdef public str text
    cdef public object fmt
    cpdef str get(self, long long sec)


cdef class _MsCache:
    cdef public long long key
    cdef public str text


@cython.locals(key=cython.longlong, sec=cython.longlong, ms=cython.longlong,
               c=_MsCache, lc=_SecondCache, us=cython.double)
cpdef str date_ms(double ts)


# The request line of every httplog line is checked for bytes to escape in one C
# loop (bytes.translate allocated a copy of it, issue #9).
@cython.locals(c=cython.uchar)
cdef bint _url_clean(bytes value)

@cython.locals(b=bytes)
cpdef str url_escape(value)


# A frontend's compiled format: lb.log.TrafficLog reads `render` and counts lines
# through C fields (one line per request, issue #9).
cdef class TrafficFormat:
    cdef public object text, mode, render, source
    cdef public long long log_count
    cdef public bint early, asap, be_src
