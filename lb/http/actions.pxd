# Cython declarations for actions.py (tools/build_accel.py; ignored in pure Python).
# A rule set runs once or twice per request and side: its conditions are typed, so
# each is a C call into lb/match/acl (issue #9).

cimport cython

from lb.match.acl cimport Condition


cdef class RuleSet:
    cdef public tuple rules

    @cython.locals(cond=Condition, rules=tuple, i=Py_ssize_t)
    cpdef run(self, object ctx, Py_ssize_t start=*)
