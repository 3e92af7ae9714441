# Cython declarations for roundrobin.py (tools/build_accel.py; ignored in pure Python).
# The FWRR node, group and balancer are extension types with typed links and C
# integer positions and weights, so a pick (several position updates and tree moves
# per request) reads and writes C fields and calls the trees' methods in C.

cimport cython

from lb.balance.base cimport GroupedBalancer, NodeData, OrderedTree

# base's weight scale, as C constants of this module (its positions are C arithmetic)
cdef long long EW_MAX, SCALE, UW_RANGE


cdef class RRNode(NodeData):
    cdef public long long npos, lpos, rweight


cdef class RRGroup:
    cdef public OrderedTree init, next, curr
    cdef public long long curr_pos, curr_weight, next_weight


cdef class RoundRobin(GroupedBalancer):
    cdef public RRGroup act, bck

    cpdef _queue(self, RRGroup g, RRNode d)

    @staticmethod
    @cython.locals(s1=RRNode, s2=RRNode)
    cdef RRNode _from_group(RRGroup g)

    @cython.locals(g=RRGroup, d=RRNode, chosen=RRNode, avoided=RRNode, f=RRNode,
                   full=list, ew=cython.longlong)
    cpdef pick(self, key=*, avoid=*)
