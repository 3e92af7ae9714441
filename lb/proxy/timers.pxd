# Cython declarations for timers.py (tools/build_accel.py; ignored in pure Python).
# TimerWheel and Deadline become extension types whose fields (the same as their
# __slots__, which tests/test_accel.py checks) are C struct members, and the
# per-request methods are cpdef: a module that knows `conn.timer` is a Deadline calls
# them as C functions.

cimport cython

cdef bint COMPILED


# libuv's loop time as uvloop's loop.time() gives it: whole milliseconds of the clock
# libuv calls fast (uv__hrtime(UV_CLOCK_FAST): CLOCK_MONOTONIC_COARSE when it ticks at
# least every millisecond, else CLOCK_MONOTONIC), in seconds. tests/test_timers.py
# checks it against loop.time().
cdef extern from *:
    """
    #include <time.h>
    static clockid_t lb_uv_clock_id = (clockid_t)-1;

    static CYTHON_INLINE double lb_uv_clock(void) {
        struct timespec t;
        if (lb_uv_clock_id == (clockid_t)-1) {
            lb_uv_clock_id = CLOCK_MONOTONIC;
            if (clock_getres(CLOCK_MONOTONIC_COARSE, &t) == 0 && t.tv_sec == 0
                    && t.tv_nsec <= 1000000)
                lb_uv_clock_id = CLOCK_MONOTONIC_COARSE;
        }
        clock_gettime(lb_uv_clock_id, &t);
        return (double)((unsigned long long)t.tv_sec * 1000ULL
                        + (unsigned long long)t.tv_nsec / 1000000ULL) / 1000.0;
    }
    """
    double _uv_clock_c "lb_uv_clock" () nogil


cdef class Deadline


cdef class TimerWheel:
    cdef public object loop, clock, handle
    cdef public bint uv_clock
    cdef public dict buckets
    cdef public list keys
    cdef public double handle_key

    cpdef double now(self)
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
