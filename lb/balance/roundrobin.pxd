# Cython declarations for roundrobin.py (tools/build_accel.py; ignored in pure Python).
# The FWRR node, group and balancer are extension types with typed links, so a pick
# (several position updates and tree moves per request) reads C fields.

from lb.balance.base cimport GroupedBalancer, NodeData, OrderedTree


cdef class RRNode(NodeData):
    cdef public object npos, lpos, rweight


cdef class RRGroup:
    cdef public OrderedTree init, next, curr
    cdef public object curr_pos, curr_weight, next_weight


cdef class RoundRobin(GroupedBalancer):
    cdef public RRGroup act, bck

    cpdef _queue(self, RRGroup g, RRNode d)

    @staticmethod
    cdef RRNode _from_group(RRGroup g)
