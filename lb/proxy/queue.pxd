# Cython declarations for queue.py (tools/build_accel.py; ignored in pure Python).
# The functions every request goes through (a slot taken, counted, given back) read
# the server and backend state through typed references: C field reads (issue #9).

cimport cython

from lb.state cimport BackendState, ServerState


cpdef has_room(ServerState srv)
cpdef _take(ServerState srv)
cpdef _count_lb(BackendState be, ServerState srv)
cpdef release(ServerState srv, now)
@cython.locals(be=BackendState)
cpdef request_slot(backend, server, now, key=*, avoid=*, force=*)
