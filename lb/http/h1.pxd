# Cython declarations for h1.py (tools/build_accel.py; ignored in pure Python).
# The serialisers and lookups every request goes through are cpdef with typed
# arguments and loop variables: C calls from lb.proxy.txn (which cimports them by
# name) and C loops over the header pairs (issue #9).

cimport cython


@cython.locals(n=bytes, v=bytes)
cpdef get(headers, bytes name)
@cython.locals(out=list, n=bytes, v=bytes, t=bytes)
cpdef list tokens(headers, bytes name)
cpdef bint client_wants_close(bytes version, list conn)
cpdef bytes request_head(bytes method, bytes url, bytes version, list headers, conn)
@cython.locals(known=tuple, line=bytes)
cpdef bytes response_head(long status, bytes reason, list headers, conn)
@cython.locals(n=bytes, v=bytes)
cpdef bytes _head(list parts, list headers, conn)
cpdef tuple chunk(bytes data)


# `option forwardfor` runs on every request of a proxy that has it: Txn calls
# FrontendRT.forwardfor and then apply, both C calls.
cdef class ForwardForRule:
    cdef public object header, except_net, if_none

    cpdef apply(self, list headers, str src)
