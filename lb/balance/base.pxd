# Cython declarations for base.py (tools/build_accel.py; ignored in pure Python).
# OrderedTree and NodeData become extension types whose fields (the same as their
# __slots__, which tests/test_accel.py checks) are C struct members; GroupedBalancer's
# accounting fields too (it keeps an instance __dict__ for the subclasses' own).
# A balancer in a module that declares its types reads them without lookups.


cdef class OrderedTree:
    cdef public object heap, live


cdef class NodeData:
    cdef public object srv, idx, was_usable, ew, seq, tree, key


cdef class GroupedBalancer:
    cdef dict __dict__
    cdef public object servers, allbackups, srv_act, srv_bck, tot_wact, tot_wbck, fbck
    cdef public object nodes
