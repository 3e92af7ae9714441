# Cython declarations for sample.py (tools/build_accel.py; ignored in pure Python).
# The header-value helpers every hdr()/hdr_cnt() fetch goes through (several per
# WebSocket handshake with the usual validation ACLs, issue #9): typed bytes make
# find/strip/split direct calls of the C methods.

cimport cython


@cython.locals(v=bytes, lines=list, out=list)
cpdef list _values(hdrs, bytes name)

cpdef list split_values(bytes value)

@cython.locals(memo=dict)
cpdef list _hvalues(ctx, resp, bytes name)
