# Cython declarations for logline.py (tools/build_accel.py; ignored in pure Python).
# The transaction is typed, so each field the line shows is a C struct member read,
# and the numbers are C integers that the f-string formats without int objects.

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_1BYTE_DATA, PyUnicode_GET_LENGTH
from libc.string cimport memcpy

from lb.logfmt cimport date_ms, url_escape
from lb.proxy.txn cimport Txn

cdef bint COMPILED


@cython.locals(cp=cython.longlong, tr=cython.longlong, tw=cython.longlong,
               tc=cython.longlong, tres=cython.longlong, ta=cython.longlong,
               st=cython.longlong, bo=cython.longlong, ac=cython.longlong,
               fc=cython.longlong, bc=cython.longlong, sc=cython.longlong,
               sq=cython.longlong, bq=cython.longlong, out=bytes)
cpdef bytes httplog(Txn t)


# The compiled body of httplog for the usual line (issue #9): every piece is copied or
# formatted into one stack buffer and the line is a single bytes object, where the
# f-string made a str per field, joined them and encoded the result. It returns None,
# and httplog's f-string renders the line, whenever a piece is not plain ASCII (a
# name, the address), a byte of the request line needs #XX escaping, or the line
# would not fit the buffer; so the two paths give the same bytes
# (tests/test_logline.py compares this one with the generic renderer).

cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object o)

cdef enum:
    _LINE_BUF = 4096


cdef inline Py_ssize_t _ascii_len(object s):
    """The length of an ASCII str, -1 for anything else."""
    if type(s) is not str or not PyUnicode_IS_ASCII(s):
        return -1
    return PyUnicode_GET_LENGTH(s)


cdef inline char *_put_str(char *p, object s):
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(s)
    memcpy(p, PyUnicode_1BYTE_DATA(s), n)
    return p + n


cdef inline char *_put_bytes(char *p, bytes b):
    cdef Py_ssize_t n = PyBytes_GET_SIZE(b)
    memcpy(p, PyBytes_AS_STRING(b), n)
    return p + n


cdef inline char *_put_int(char *p, long long v):
    cdef char digits[24]
    cdef int n = 0
    cdef unsigned long long u
    if v < 0:
        p[0] = b"-"
        p += 1
        u = <unsigned long long>(-(v + 1)) + 1
    else:
        u = <unsigned long long>v
    while True:
        digits[n] = <char>(48 + u % 10)
        n += 1
        u //= 10
        if u == 0:
            break
    while n:
        n -= 1
        p[0] = digits[n]
        p += 1
    return p


cdef inline char *_sep_int(char *p, char sep, long long v):
    p[0] = sep
    return _put_int(p + 1, v)


cdef inline Py_ssize_t _url_len(object b):
    """The length of bytes that need no #XX escaping in a request line, else -1."""
    cdef Py_ssize_t i, n
    cdef unsigned char c
    cdef const unsigned char *s
    if type(b) is not bytes:
        return -1
    n = PyBytes_GET_SIZE(<bytes>b)
    s = <const unsigned char *>PyBytes_AS_STRING(<bytes>b)
    for i in range(n):
        c = s[i]
        if c < 32 or c > 126 or c == 34 or c == 35:
            return -1
    return n


cdef inline Py_ssize_t _code_len(object b):
    """The length of a termination or cookie code (ASCII bytes), else -1."""
    cdef Py_ssize_t i, n
    if type(b) is not bytes:
        return -1
    n = PyBytes_GET_SIZE(<bytes>b)
    for i in range(n):
        if <unsigned char>PyBytes_AS_STRING(<bytes>b)[i] > 127:
            return -1
    return n


cdef inline bytes _httplog_c(Txn t):
    cdef char buf[_LINE_BUF]
    cdef char *p = buf
    cdef Py_ssize_t k, total = 0
    cdef bint has_line = not t.bad_request and bool(t.method)
    fe_name = t.frontend_name
    be_name = t.backend_name or fe_name
    srv_name = t.server_name or "<NOSRV>"
    date = date_ms(t.request_ts or t.accept_ts)
    # each length is -1 for a piece this function leaves to the f-string
    k = (_ascii_len(t.src) | _ascii_len(date) | _ascii_len(fe_name)
         | _ascii_len(be_name) | _ascii_len(srv_name) | _code_len(t.term)
         | _code_len(t.cookie_req) | _code_len(t.cookie_res))
    if k < 0:
        return None
    if has_line:
        k = _url_len(t.method) | _url_len(t.url) | _url_len(t.version)
        if k < 0:
            return None
        total = PyBytes_GET_SIZE(t.url)
    total += (PyUnicode_GET_LENGTH(t.src) + PyUnicode_GET_LENGTH(date)
              + PyUnicode_GET_LENGTH(fe_name) + PyUnicode_GET_LENGTH(be_name)
              + PyUnicode_GET_LENGTH(srv_name) + PyBytes_GET_SIZE(t.term)
              + PyBytes_GET_SIZE(t.cookie_req) + PyBytes_GET_SIZE(t.cookie_res))
    if has_line:
        total += PyBytes_GET_SIZE(t.method) + PyBytes_GET_SIZE(t.version)
    # the fixed text and 16 numbers of at most 20 characters each
    if total + 400 > _LINE_BUF:
        return None
    cdef long long cp = t.src_port
    cdef long long st = t.status
    p = _put_str(p, t.src)
    p = _sep_int(p, b":", cp)
    memcpy(p, b" [", 2)
    p = _put_str(p + 2, date)
    memcpy(p, b"] ", 2)
    p = _put_str(p + 2, fe_name)
    if t.frontend_tls:
        p[0] = b"~"
        p += 1
    p[0] = b" "
    p = _put_str(p + 1, be_name)
    p[0] = b"/"
    p = _put_str(p + 1, srv_name)
    p = _sep_int(p, b" ", t.t_request)
    p = _sep_int(p, b"/", t.t_queue)
    p = _sep_int(p, b"/", t.t_connect)
    p = _sep_int(p, b"/", t.t_response)
    p = _sep_int(p, b"/", t.t_active)
    p = _sep_int(p, b" ", st)
    p = _sep_int(p, b" ", t.bytes_out)
    memcpy(p, b" - - ", 5)
    p = _put_bytes(p + 5, t.term)
    p = _put_bytes(p, t.cookie_req)
    p = _put_bytes(p, t.cookie_res)
    p = _sep_int(p, b" ", t.actconn)
    p = _sep_int(p, b"/", t.feconn)
    p = _sep_int(p, b"/", t.beconn)
    p = _sep_int(p, b"/", t.srvconn)
    p[0] = b"/"
    p += 1
    if t.redispatched:
        p[0] = b"+"
        p += 1
    p = _put_int(p, t.retries)
    p = _sep_int(p, b" ", t.srv_queue)
    p = _sep_int(p, b"/", t.backend_queue)
    memcpy(p, b" \"", 2)
    p += 2
    if has_line:
        p = _put_bytes(p, t.method)
        p[0] = b" "
        p = _put_bytes(p + 1, t.url)
        memcpy(p, b" HTTP/", 6)
        p = _put_bytes(p + 6, t.version)
    else:
        memcpy(p, b"<BADREQ>", 8)
        p += 8
    p[0] = b"\""
    p += 1
    return PyBytes_FromStringAndSize(buf, p - buf)
