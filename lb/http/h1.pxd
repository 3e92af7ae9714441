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
# The lists are read through borrowed pointers (no Python code runs meanwhile, so
# nothing can change them). None when an item is not what lb builds (bytes pieces,
# (bytes, bytes) header tuples): _head then serialises with its Python code, which
# also raises the same errors for bad input.
cdef extern from "Python.h":
    ctypedef struct PyObject
    PyObject *_list_item "PyList_GET_ITEM" (object, Py_ssize_t)
    PyObject *_tuple_item "PyTuple_GET_ITEM" (PyObject *, Py_ssize_t)
    Py_ssize_t _size "Py_SIZE" (PyObject *)
    bint _is_tuple "PyTuple_CheckExact" (PyObject *)
    bint _is_bytes "PyBytes_CheckExact" (PyObject *)
    char *_data "PyBytes_AS_STRING" (PyObject *)


cdef inline bint _is_connection(PyObject *name):
    return _size(name) == 10 and memcmp(_data(name), b"connection", 10) == 0


cdef inline char *_copy(char *p, PyObject *b):
    cdef Py_ssize_t k = _size(b)
    memcpy(p, _data(b), k)
    return p + k


cdef inline bytes _head_c(list parts, list headers, object conn):
    cdef Py_ssize_t total = 2, i
    cdef Py_ssize_t nparts = len(parts), nheaders = len(headers)
    cdef PyObject *item
    cdef PyObject *n
    cdef PyObject *v
    cdef char *p
    for i in range(nparts):
        item = _list_item(parts, i)
        if not _is_bytes(item):
            return None
        total += _size(item)
    for i in range(nheaders):
        item = _list_item(headers, i)
        if not _is_tuple(item) or _size(item) != 2:
            return None
        n = _tuple_item(item, 0)
        v = _tuple_item(item, 1)
        if not _is_bytes(n) or not _is_bytes(v):
            return None
        if not _is_connection(n):
            total += _size(n) + _size(v) + 4
    if conn:
        if type(conn) is not bytes:
            return None
        total += PyBytes_GET_SIZE(<bytes>conn) + 14
    cdef bytes out = PyBytes_FromStringAndSize(NULL, total)
    p = PyBytes_AS_STRING(out)
    for i in range(nparts):
        p = _copy(p, _list_item(parts, i))
    for i in range(nheaders):
        item = _list_item(headers, i)
        n = _tuple_item(item, 0)
        if _is_connection(n):
            continue
        p = _copy(p, n)
        p[0] = b":"
        p[1] = b" "
        p = _copy(p + 2, _tuple_item(item, 1))
        p[0] = b"\r"
        p[1] = b"\n"
        p += 2
    if conn:
        memcpy(p, b"connection: ", 12)
        p = _copy(p + 12, <PyObject *>conn)
        p[0] = b"\r"
        p[1] = b"\n"
        p += 2
    p[0] = b"\r"
    p[1] = b"\n"
    return out


cpdef tuple chunk(bytes data)


# `option forwardfor` runs on every request of a proxy that has it: Txn calls
# FrontendRT.forwardfor and then apply, both C calls.
cdef class ForwardForRule:
    cdef public object header, except_net, if_none

    cpdef apply(self, list headers, str src)
