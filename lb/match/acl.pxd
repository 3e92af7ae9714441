# Cython declarations for acl.py (tools/build_accel.py; ignored in pure Python).
# A condition evaluates as C calls from end to end: Condition.evaluate -> Acl.test ->
# AclExpr.test -> Fetch.values and Matcher.match are cpdef methods on typed fields,
# where the closures they replace cost a generic Python call per level (issue #9).

cimport cython

from lb.match.pattern cimport Matcher
from lb.match.sample cimport Fetch


cdef class AclExpr:
    cdef public object text, sample, method, matchers, cast, keyword, refs
    cdef public bint found, empty
    cdef public Matcher _one
    cdef public Fetch _fetch

    @cython.locals(m=Matcher)
    cpdef bint test(self, object ctx) except -1


cdef class Acl:
    cdef public object name, anonymous
    cdef public tuple exprs

    @cython.locals(e=AclExpr)
    cpdef bint test(self, object ctx) except -1


cdef class _Duck(Acl):
    cdef public object obj

    cpdef bint test(self, object ctx) except -1


cdef class _Term:
    cdef public Acl acl
    cdef public bint neg


cdef class Condition:
    cdef public object kind, suites, text, acls
    cdef public bint unless
    cdef public tuple _suites

    @cython.locals(suite=tuple, term=_Term)
    cpdef bint evaluate(self, object ctx) except -1
