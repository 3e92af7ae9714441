# Cython declarations for logline.py (tools/build_accel.py; ignored in pure Python).
# The transaction is typed, so each field the line shows is a C struct member read,
# and the numbers are C integers that the f-string formats without int objects.

cimport cython

from lb.logfmt cimport date_ms, url_escape
from lb.proxy.txn cimport Txn


@cython.locals(cp=cython.longlong, tr=cython.longlong, tw=cython.longlong,
               tc=cython.longlong, tres=cython.longlong, ta=cython.longlong,
               st=cython.longlong, bo=cython.longlong, ac=cython.longlong,
               fc=cython.longlong, bc=cython.longlong, sc=cython.longlong,
               sq=cython.longlong, bq=cython.longlong)
cpdef bytes httplog(Txn t)
