# Cython declarations for timers.py (tools/build_accel.py; ignored in pure Python).
# TimerWheel and Deadline become extension types whose fields (the same as their
# __slots__, which tests/test_accel.py checks) are C struct members, and the
# per-request methods are cpdef: a module that knows `conn.timer` is a Deadline calls
# them as C functions.

cimport cython


cdef class Deadline


cdef class TimerWheel:
    cdef public object loop, clock, handle
    cdef public dict buckets
    cdef public list keys
    cdef public double handle_key

    @cython.locals(bucket=set)
    cpdef file(self, Deadline d, double key)
    @cython.locals(bucket=set)
    cpdef unfile(self, Deadline d, double key)
    @cython.locals(delay=cython.double)
    cpdef _schedule(self, double key)
    @cython.locals(limit=cython.double, d=Deadline)
    cpdef _run(self)


@cython.locals(span=cython.double, step=cython.double, ms=cython.double,
               key=cython.double)
cpdef double expiry_key(double when, double delay)


cdef class Deadline:
    cdef public object cb
    cdef public TimerWheel wheel
    cdef public double when, delay, key

    @cython.locals(when=cython.double, key=cython.double)
    cpdef arm(self, delay, cb=*, double now=*)
    cpdef touch(self, double now=*)
    cpdef cancel(self)
    cpdef stop(self)
    @cython.locals(when=cython.double)
    cpdef _due(self, double limit)
