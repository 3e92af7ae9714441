# Cython declarations for pattern.py (tools/build_accel.py; ignored in pure Python).
# The matchers an ACL test calls once per sample value are extension types with a
# cpdef match(): lb/match/acl.pxd calls it as a C method, and a typed bytes value
# makes lower/startswith/endswith direct calls of the C methods (issue #9).

cimport cython


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

    @cython.locals(b=bytes)
    cpdef bint match(self, object v) except -1


cdef class AffixMatcher(Matcher):
    cdef public tuple pats
    cdef public bint icase, end

    @cython.locals(b=bytes)
    cpdef bint match(self, object v) except -1
