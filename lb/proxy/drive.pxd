# Cython declarations for drive.py (tools/build_accel.py; ignored in pure Python).
# Driven becomes an extension type (its fields, the same as its __slots__, are C
# struct members), and send_none, the C body of its common step, sends None into the
# coroutine with PyIter_Send: a coroutine that returns gives its value without a
# StopIteration raised, caught and given a traceback (two per WebSocket handshake:
# the accept and the connect, issue #9).

from cpython.ref cimport PyObject, Py_XDECREF

cdef bint COMPILED


cdef extern from "Python.h":
    # PYGEN_ERROR (-1, an exception is set), PYGEN_RETURN (0), PYGEN_NEXT (1)
    int PyIter_Send(object, object, PyObject **) except -1


cdef class Driven:
    cdef public object loop, coro, on_done, value, exc, waiting
    cdef public int state
    cdef public bint cancelling

    cdef _resume(self)
    cpdef _step(self, exc, bint from_loop)
    cpdef _finish(self, int state, value, exc, bint from_loop)


# 1 when the coroutine returned (its value in d.value), 0 when it yielded (what it
# yielded in d.waiting); an exception it raised propagates.
cdef inline int send_none(Driven d) except -1:
    cdef PyObject *res = NULL
    cdef int r = PyIter_Send(d.coro, None, &res)
    cdef object obj = <object>res
    Py_XDECREF(res)
    if r == 0:
        d.value = obj
        return 1
    d.waiting = obj
    return 0
