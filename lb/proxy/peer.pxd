# Cython declarations for peer.py (tools/build_accel.py; ignored in pure Python).
# PeerNames is the extension base type of ClientConn (client.pxd) and Txn (txn.pxd).

cdef class PeerNames:
    pass
