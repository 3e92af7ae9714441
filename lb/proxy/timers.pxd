# Cython declarations for timers.py (tools/build_accel.py; ignored in pure Python).
# Deadline becomes an extension type whose fields (the same as its __slots__, which
# tests/test_accel.py checks) are C struct members, and its per-request methods are
# cpdef: a module that knows `conn.timer` is a Deadline calls them as C functions.

cimport cython


cdef class Deadline:
    cdef public object loop, cb, handle
    cdef public double when, handle_when, delay

    @cython.locals(when=cython.double)
    cpdef arm(self, delay, cb=*, double now=*)
    cpdef touch(self, double now=*)
    cpdef cancel(self)
    @cython.locals(when=cython.double)
    cpdef _fire(self)
