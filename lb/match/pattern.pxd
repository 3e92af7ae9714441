# Cython declarations for pattern.py (tools/build_accel.py; ignored in pure Python).
# The matchers an ACL test calls once per sample value are extension types with a
# cpdef match(): lb/match/acl.pxd calls it as a C method, and a typed bytes value
# makes lower/startswith/endswith direct calls of the C methods (issue #9).

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.string cimport memcmp

cdef bint COMPILED
cdef Py_ssize_t _FEW


cdef class Matcher:
    cpdef bint match(self, object v) except -1


cdef class IntMatcher(Matcher):
    cdef public frozenset exact
    cdef public tuple ranges

    cpdef bint match(self, object v) except -1


cdef class FnMatcher(Matcher):
    cdef public object fn

    cpdef bint match(self, object v) except -1


cdef class StrMatcher(Matcher):
    cdef public frozenset pats
    cdef public bint icase
    cdef public tuple few

    @cython.locals(b=bytes)
    cpdef bint match(self, object v) except -1


cdef class AffixMatcher(Matcher):
    cdef public tuple pats
    cdef public bint icase, end, bytes_only

    @cython.locals(b=bytes)
    cpdef bint match(self, object v) except -1


# The compiled bodies of the small `str` and the `beg`/`end` matches (issue #9): the
# value is compared in place with each pattern, folding ASCII letters as it goes for
# -i (the patterns were folded at compile time), where the Python code made a
# lower-cased copy of the value and, for `str`, hashed it. Patterns are bytes.
cdef inline unsigned char _lower(unsigned char c) noexcept:
    return c + 32 if 65 <= c <= 90 else c


cdef inline bint _same(const unsigned char *a, const unsigned char *p, Py_ssize_t n,
                       bint icase) noexcept:
    cdef Py_ssize_t i
    if not icase:
        return memcmp(a, p, n) == 0
    for i in range(n):
        if _lower(a[i]) != p[i]:
            return False
    return True


cdef inline bint _any_equal(bytes v, tuple pats, bint icase) except -1:
    cdef Py_ssize_t n = PyBytes_GET_SIZE(v)
    cdef const unsigned char *a = <const unsigned char *>PyBytes_AS_STRING(v)
    cdef bytes p
    for p in pats:
        if PyBytes_GET_SIZE(p) == n and _same(
                a, <const unsigned char *>PyBytes_AS_STRING(p), n, icase):
            return True
    return False


cdef inline bint _any_affix(bytes v, tuple pats, bint icase, bint end) except -1:
    cdef Py_ssize_t n = PyBytes_GET_SIZE(v), k
    cdef const unsigned char *a = <const unsigned char *>PyBytes_AS_STRING(v)
    cdef bytes p
    for p in pats:
        k = PyBytes_GET_SIZE(p)
        if k <= n and _same(a + (n - k if end else 0),
                            <const unsigned char *>PyBytes_AS_STRING(p), k, icase):
            return True
    return False
