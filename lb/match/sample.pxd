# Cython declarations for sample.py (tools/build_accel.py; ignored in pure Python).
# The header-value helpers every hdr()/hdr_cnt() fetch goes through (several per
# WebSocket handshake with the usual validation ACLs, issue #9): typed bytes make
# find/strip/split direct calls of the C methods.

cimport cython


@cython.locals(n=bytes, v=bytes, first=bytes, lines=list, out=list)
cpdef list _values(hdrs, bytes name)

@cython.locals(c=cython.uchar, i=Py_ssize_t)
cdef Py_ssize_t _find_byte(bytes value, int byte)

@cython.locals(n=Py_ssize_t, first=cython.uchar, last=cython.uchar)
cdef bytes _trim(bytes value)

cpdef list split_values(bytes value)

# What a fetch reads (Txn derives from it): the fetches below read its fields as C
# struct members instead of looking them up by name (issue #9).
cdef class SampleSubject:
    cdef public object method, url, version, req_headers, src, src_port, dst, dst_port
    cdef public object status, res_headers, vars
    cdef public bint is_response
    cdef public dict memo


@cython.locals(memo=dict)
cpdef list _hvalues(SampleSubject ctx, resp, bytes name)


# A fetch bound to its arguments: lb/match/acl.pxd calls values() as a C method.
cdef class Fetch:
    cdef public object fn, args
    cdef public bint no_req, no_res

    cpdef object values(self, SampleSubject ctx)


cdef class HdrFetch(Fetch):
    cdef public bytes name
    cdef public tuple rkey
    cdef public int direction

    @cython.locals(resp=bint, memo=dict)
    cpdef object values(self, SampleSubject ctx)


cdef class HdrCntFetch(Fetch):
    cdef public bytes name
    cdef public bint response

    cpdef object values(self, SampleSubject ctx)


cdef class PathFetch(Fetch):
    @cython.locals(memo=dict)
    cpdef object values(self, SampleSubject ctx)


cpdef object _path(bytes url)
