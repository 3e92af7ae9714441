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


cdef class OrderedTree:
    cdef public list heap
    cdef public Py_ssize_t live

    cpdef insert(self, key, NodeData node)
    @cython.locals(h=list, node=NodeData)
    cpdef first(self)
    cpdef remove(self, NodeData node)
    cpdef pop_first(self)
    cpdef restore(self, NodeData node)


cdef class NodeData:
    cdef public object srv, idx, was_usable, seq, key
    cdef public long long ew
    cdef public OrderedTree tree


cdef class GroupedBalancer:
    cdef dict __dict__
    cdef public object servers, allbackups, srv_act, srv_bck, tot_wact, tot_wbck, fbck
    cdef public object nodes

    cpdef pick(self, key=*, avoid=*)
    cpdef take_conn(self, srv)
    cpdef drop_conn(self, srv)
