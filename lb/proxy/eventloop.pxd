# Cython declarations for eventloop.py (tools/build_accel.py; ignored in pure Python):
# the registry's dict is a C field, and its item methods become the type's C slots.

cdef class TransportRegistry:
    cdef dict _refs
