# Cython declarations for timers.py (tools/build_accel.py; ignored in pure Python).
# Deadline becomes an extension type whose fields (the same as its __slots__, which
# tests/test_accel.py checks) are C struct members, and its per-request methods are
# cpdef: a module that knows `conn.timer` is a Deadline calls them as C functions.


cdef class Deadline:
    cdef public object loop, cb, when, handle, handle_when, delay

    cpdef arm(self, delay, cb=*, double now=*)
    cpdef touch(self, double now=*)
    cpdef cancel(self)
