# Cython declarations for cookie.py (tools/build_accel.py; ignored in pure Python).
# Typed locals for the response-side check that runs on every response of a backend
# with `cookie ... nocache` (issue #9): a C dictionary lookup per header.

cimport cython


@cython.locals(kinds=dict)
cpdef response_cacheable(method, status, headers)
