# Cython declarations for base.py (tools/build_accel.py; ignored in pure Python).
# OrderedTree and NodeData become extension types whose fields (the same as their
# __slots__, which tests/test_accel.py checks) are C struct members; GroupedBalancer's
# accounting fields too (it keeps an instance __dict__ for the subclasses' own).
# A balancer in a module that declares its types reads them without lookups. The
# tree operations and the per-request balancer calls (pick, take_conn, drop_conn)
# are cpdef: C calls from a typed caller (lb.proxy.queue through lb.state's typed
# `balancer`), still overridable by the Python subclasses (leastconn, chash, map).

cimport cython


cdef class NodeData


cdef long long _SEQ


cdef class OrderedTree:
    cdef public list heap
    cdef public Py_ssize_t live

    cpdef insert(self, long long key, NodeData node)
    cpdef first(self)
    @cython.locals(h=list, last=NodeData, i=Py_ssize_t, n=Py_ssize_t)
    cpdef remove(self, NodeData node)
    @cython.locals(node=NodeData, seq=cython.longlong)
    cpdef pop_first(self)
    @cython.locals(i=Py_ssize_t)
    cpdef restore(self, NodeData node)
    @cython.locals(h=list, node=NodeData, parent=NodeData, j=Py_ssize_t)
    cdef void _up(self, Py_ssize_t i)
    @cython.locals(h=list, node=NodeData, child=NodeData, c=Py_ssize_t, n=Py_ssize_t)
    cdef void _down(self, Py_ssize_t i)
    cdef inline void _put(self, Py_ssize_t i, NodeData node)


cdef class NodeData:
    cdef public object srv, idx, was_usable
    cdef public long long ew, seq, key
    cdef public Py_ssize_t hpos
    cdef public OrderedTree tree


cdef bint _before(NodeData a, NodeData b) noexcept


cdef class GroupedBalancer:
    cdef dict __dict__
    cdef public object servers, allbackups, srv_act, srv_bck, tot_wact, tot_wbck, fbck
    cdef public object nodes

    cpdef pick(self, key=*, avoid=*)
    cpdef take_conn(self, srv)
    cpdef drop_conn(self, srv)
