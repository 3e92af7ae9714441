# Cython declarations for h1.py (tools/build_accel.py; ignored in pure Python).
# The serialisers and lookups every request goes through are cpdef with typed
# arguments and loop variables: C calls from lb.proxy.txn (which cimports them by
# name) and C loops over the header pairs (issue #9).

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.string cimport memcmp, memcpy

cdef bint COMPILED
# typed, so that `.get` and stores are C dict calls, not attribute lookups
cdef dict _STATUS_LINES


@cython.locals(n=bytes, v=bytes)
cpdef get(headers, bytes name)
@cython.locals(out=list, n=bytes, v=bytes, t=bytes)
cpdef list tokens(headers, bytes name)
cpdef bint client_wants_close(bytes version, list conn)
cpdef bytes request_head(bytes method, bytes url, bytes version, list headers, conn)
@cython.locals(known=tuple, line=bytes)
cpdef bytes response_head(long status, bytes reason, list headers, conn)
@cython.locals(n=bytes, v=bytes, out=bytes)
cpdef bytes _head(list parts, list headers, conn)


# The compiled body of _head (issue #9): the lengths are summed first, then one bytes
# object is allocated and every piece is copied into it with memcpy, where b"".join
# took a buffer view of each piece and the parts list grew by four items per header.
# None when an item is not what lb builds (bytes pieces, (bytes, bytes) header
# tuples): _head then serialises with its Python code, which also raises the same
# errors for bad input.
cdef inline bint _is_connection(bytes name):
    return PyBytes_GET_SIZE(name) == 10 and memcmp(PyBytes_AS_STRING(name),
                                                   b"connection", 10) == 0


cdef inline bytes _head_c(list parts, list headers, object conn):
    cdef Py_ssize_t total = 2, i, k
    cdef object item
    cdef tuple pair
    cdef bytes piece, n, v
    cdef char *p
    for i in range(len(parts)):
        item = parts[i]
        if type(item) is not bytes:
            return None
        total += PyBytes_GET_SIZE(<bytes>item)
    for i in range(len(headers)):
        item = headers[i]
        if type(item) is not tuple or len(<tuple>item) != 2:
            return None
        pair = <tuple>item
        if type(pair[0]) is not bytes or type(pair[1]) is not bytes:
            return None
        n = <bytes>pair[0]
        if not _is_connection(n):
            total += PyBytes_GET_SIZE(n) + PyBytes_GET_SIZE(<bytes>pair[1]) + 4
    if conn:
        if type(conn) is not bytes:
            return None
        total += PyBytes_GET_SIZE(<bytes>conn) + 14
    cdef bytes out = PyBytes_FromStringAndSize(NULL, total)
    p = PyBytes_AS_STRING(out)
    for i in range(len(parts)):
        piece = <bytes>parts[i]
        k = PyBytes_GET_SIZE(piece)
        memcpy(p, PyBytes_AS_STRING(piece), k)
        p += k
    for i in range(len(headers)):
        pair = <tuple>headers[i]
        n = <bytes>pair[0]
        if _is_connection(n):
            continue
        v = <bytes>pair[1]
        k = PyBytes_GET_SIZE(n)
        memcpy(p, PyBytes_AS_STRING(n), k)
        p[k] = b":"
        p[k + 1] = b" "
        p += k + 2
        k = PyBytes_GET_SIZE(v)
        memcpy(p, PyBytes_AS_STRING(v), k)
        p[k] = b"\r"
        p[k + 1] = b"\n"
        p += k + 2
    if conn:
        piece = <bytes>conn
        memcpy(p, b"connection: ", 12)
        p += 12
        k = PyBytes_GET_SIZE(piece)
        memcpy(p, PyBytes_AS_STRING(piece), k)
        p[k] = b"\r"
        p[k + 1] = b"\n"
        p += k + 2
    p[0] = b"\r"
    p[1] = b"\n"
    return out
cpdef tuple chunk(bytes data)


# `option forwardfor` runs on every request of a proxy that has it: Txn calls
# FrontendRT.forwardfor and then apply, both C calls.
cdef class ForwardForRule:
    cdef public object header, except_net, if_none

    cpdef apply(self, list headers, str src)
