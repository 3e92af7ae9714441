# Cython declarations for headscan.py (tools/build_accel.py; ignored in pure Python),
# and _scan_request_c / _scan_response_c, the C bodies of scan_request and
# scan_response: one pass over the bytes with pointer reads, the header names
# lower-cased straight into their new bytes objects. They accept exactly what the
# regular expressions of headscan.py accept (tests/test_headscan.py runs both against
# httptools).

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.object cimport PyObject
from libc.string cimport memcmp

cdef bint COMPILED

cpdef object scan_request(bytes data, Py_ssize_t maxhdr, Py_ssize_t bufsize)
cpdef object scan_response(bytes data)


# The byte classes of the scans, one table lookup a byte: 1 token (tchar), 2 text
# (HTAB, SP and visible ASCII: header values, reasons), 4 target (visible ASCII but
# '#'). tests/test_headscan.py checks every byte in every place against httptools.
cdef extern from *:
    """
    static const unsigned char lb_headscan_class[256] = {
        0,0,0,0,0,0,0,0,0,2,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
        2,7,6,3,7,7,7,7,6,6,7,7,6,7,7,6,7,7,7,7,7,7,7,7,7,7,6,6,6,6,6,6,
        6,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,6,6,6,7,7,
        7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,6,7,6,7,0,
        0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
        0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
        0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
        0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    };
    """
    const unsigned char _CLASS "lb_headscan_class" [256]


cdef inline bint _tchar(unsigned char c):
    return _CLASS[c] & 1


# headscan.METHODS, as constants of the module
cdef inline object _method(const unsigned char *s, Py_ssize_t n):
    if n == 3:
        if memcmp(s, b"GET", 3) == 0:
            return b"GET"
        if memcmp(s, b"PUT", 3) == 0:
            return b"PUT"
    elif n == 4:
        if memcmp(s, b"POST", 4) == 0:
            return b"POST"
        if memcmp(s, b"HEAD", 4) == 0:
            return b"HEAD"
    elif n == 5:
        if memcmp(s, b"PATCH", 5) == 0:
            return b"PATCH"
    elif n == 6:
        if memcmp(s, b"DELETE", 6) == 0:
            return b"DELETE"
    elif n == 7:
        if memcmp(s, b"OPTIONS", 7) == 0:
            return b"OPTIONS"
    return None


# What a header name asks of a scan: 1 for Content-Length, -1 to decline (a name
# after which llhttp frames the message itself, a second Connection or Upgrade
# header, a Connection token other than close, keep-alive and upgrade, an empty
# Upgrade), 0 for nothing. conn[0]: -2 until a Connection header, then its tokens
# (_connection); upgrade[0]: an Upgrade header came.
cdef inline int _special(const char *name, Py_ssize_t k, const unsigned char *value,
                         Py_ssize_t vlen, int *conn, bint *upgrade):
    if k == 14:
        return 1 if memcmp(name, b"content-length", 14) == 0 else 0
    if k == 10:
        if memcmp(name, b"connection", 10) != 0:
            return 0
        if conn[0] != -2:
            return -1
        conn[0] = _connection(value, vlen)
        return -1 if conn[0] < 0 else 0
    if k == 7:
        if memcmp(name, b"upgrade", 7) != 0:
            return 0
        if upgrade[0] or vlen == 0:
            return -1
        upgrade[0] = True
        return 0
    if k == 17:
        return -1 if memcmp(name, b"transfer-encoding", 17) == 0 else 0
    if k == 16:
        return -1 if memcmp(name, b"proxy-connection", 16) == 0 else 0
    return 0




# The CR of the CR LF that ends the text (HTAB, SP and visible ASCII) from s[i], or -1
cdef inline Py_ssize_t _text_end(const unsigned char *s, Py_ssize_t i):
    cdef unsigned char c
    while _CLASS[s[i]] & 2:
        i += 1
    if s[i] != 0x0d or s[i + 1] != 0x0a:
        return -1
    return i


# One header line from s[i]: a token name, ':', OWS, then HTAB, SP and visible ASCII
# up to CR LF. Returns the name's length, or -1 when the line is not of that shape;
# value_at[0] / value_end[0]: where the value starts (after the OWS) and its CR.
cdef inline Py_ssize_t _field(const unsigned char *s, Py_ssize_t i,
                              Py_ssize_t *value_at, Py_ssize_t *value_end):
    cdef Py_ssize_t j = i, n
    cdef unsigned char c
    while _tchar(s[i]):
        i += 1
    if i == j or s[i] != 0x3a:
        return -1
    n = i - j
    i += 1
    while s[i] == 0x20 or s[i] == 0x09:
        i += 1
    value_at[0] = i
    i = _text_end(s, i)
    if i < 0:
        return -1
    value_end[0] = i
    return n


cdef inline bint _same_lower(const unsigned char *s, const char *want, Py_ssize_t n):
    cdef Py_ssize_t x
    cdef unsigned char c
    for x in range(n):
        c = s[x]
        if (c + 0x20 if 0x41 <= c <= 0x5a else c) != want[x]:
            return False
    return True


# A Connection header's value (n bytes, trailing OWS included): its tokens as the bits
# of headscan.CONNECTION_TOKENS (close 1, keep-alive 2, upgrade 4), or -1 for a list
# with any other token or an empty one
cdef inline int _connection(const unsigned char *s, Py_ssize_t n):
    cdef int flags = 0
    cdef Py_ssize_t i = 0, j, e
    while True:
        while i < n and (s[i] == 0x20 or s[i] == 0x09):
            i += 1
        j = i
        while i < n and s[i] != 0x2c:
            i += 1
        e = i
        while e > j and (s[e - 1] == 0x20 or s[e - 1] == 0x09):
            e -= 1
        if e - j == 5 and _same_lower(s + j, b"close", 5):
            flags |= 1
        elif e - j == 10 and _same_lower(s + j, b"keep-alive", 10):
            flags |= 2
        elif e - j == 7 and _same_lower(s + j, b"upgrade", 7):
            flags |= 4
        else:
            return -1
        if i == n:
            return flags
        i += 1


# Header names most requests and responses carry, sorted by length (lb_hs_known_from[n]
# is the first of length n): a scanned name that is one of them is a bytes object made
# once per process and shared, not a new one (NULL: not one, or out of memory, and the
# caller makes its own). Only the module's own scans call it.
cdef extern from *:
    """
    static const char *const lb_hs_known_text[] = {
        "date", "etag", "host", "vary", "accept", "cookie", "origin", "pragma",
        "server", "expires", "referer", "upgrade", "location", "connection",
        "keep-alive", "set-cookie", "user-agent", "content-type", "accept-ranges",
        "cache-control", "last-modified", "content-length", "accept-encoding",
        "accept-language", "x-forwarded-for", "sec-websocket-key",
        "sec-websocket-accept", "sec-websocket-version", "sec-websocket-protocol",
        "sec-websocket-extensions",
    };
    static const unsigned char lb_hs_known_from[34] = {
        0, 0, 0, 0, 0, 4, 4, 9, 12, 13, 13, 17, 17, 18, 21, 22, 25,
        25, 26, 26, 26, 27, 28, 29, 29, 30, 30, 30, 30, 30, 30, 30, 30, 30,
    };
    static PyObject *lb_hs_known_obj[30];

    static CYTHON_INLINE PyObject *lb_hs_known(const char *low, Py_ssize_t n) {
        int i;
        if (n < 1 || n > 32)
            return NULL;
        for (i = lb_hs_known_from[n]; i < lb_hs_known_from[n + 1]; i++) {
            const char *t = lb_hs_known_text[i];
            /* (the first and last bytes tell most names apart without a call) */
            if (low[0] == t[0] && low[n - 1] == t[n - 1]
                    && memcmp(low, t, (size_t)n) == 0) {
                if (lb_hs_known_obj[i] == NULL)
                    lb_hs_known_obj[i] = PyBytes_FromStringAndSize(lb_hs_known_text[i], n);
                if (lb_hs_known_obj[i] == NULL)
                    PyErr_Clear();
                return lb_hs_known_obj[i];
            }
        }
        return NULL;
    }
    """
    PyObject *_known_name "lb_hs_known" (const char *, Py_ssize_t)


cdef inline void _lower_into(char *low, const unsigned char *s, Py_ssize_t n):
    cdef Py_ssize_t x
    cdef unsigned char c
    for x in range(n):
        c = s[x]
        low[x] = c + 0x20 if 0x41 <= c <= 0x5a else c


# A header name lower-cased, as a bytes object (a shared one for a known name)
cdef inline bytes _lower(const unsigned char *s, Py_ssize_t n):
    cdef char buf[32]
    cdef bytes name
    cdef PyObject *known
    if n <= 32:
        _lower_into(buf, s, n)
        known = _known_name(buf, n)
        if known != NULL:
            return <bytes>known
        return PyBytes_FromStringAndSize(buf, n)
    name = PyBytes_FromStringAndSize(NULL, n)
    _lower_into(PyBytes_AS_STRING(name), s, n)
    return name


# The header line at s[i] (_field) with its name lower-cased (_lower), or None
cdef inline object _named_field(const unsigned char *s, Py_ssize_t i,
                                Py_ssize_t *value_at, Py_ssize_t *value_end):
    cdef Py_ssize_t k = _field(s, i, value_at, value_end)
    if k < 0:
        return None
    return _lower(s + i, k)


# Both scans stop at the first CR of a line and want CR LF there, or at any byte
# outside the accepted ones, such as the NUL that ends every bytes object's buffer:
# no read goes past that NUL.
cdef inline object _scan_request_c(bytes data, Py_ssize_t maxhdr, Py_ssize_t bufsize):
    cdef const unsigned char *s = <const unsigned char *>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef Py_ssize_t i, j, k, vstart, vend, hsize = 0, nheaders = 0
    cdef int conn = -2
    cdef bint upgrade = False
    cdef unsigned char c
    cdef bytes name
    cdef list headers
    # the head is all of data: it ends with the first empty line (checked at the end)
    if n < 18 or memcmp(s + n - 4, b"\r\n\r\n", 4) != 0:
        return None
    i = 0
    while 0x41 <= s[i] <= 0x5a:
        i += 1
    if s[i] != 0x20:
        return None
    method = _method(s, i)
    if method is None:
        return None
    j = i + 1
    if s[j] != 0x2f:  # origin form only
        return None
    k = j + 1
    while _CLASS[s[k]] & 4:
        k += 1
    if s[k] != 0x20 or k - j > bufsize:
        return None
    url = PyBytes_FromStringAndSize(<const char *>s + j, k - j)
    k += 1
    if k + 10 > n or memcmp(s + k, b"HTTP/1.1\r\n", 10) != 0:
        return None
    i = k + 10
    headers = []
    while s[i] != 0x0d:
        name = _named_field(s, i, &vstart, &vend)
        if name is None:
            return None
        k = PyBytes_GET_SIZE(name)
        if _special(PyBytes_AS_STRING(name), k, s + vstart, vend - vstart, &conn,
                    &upgrade):
            return None  # (Content-Length too: a request body goes to httptools)
        hsize += k + (vend - vstart) + 4
        i = vend + 2
        while vend > vstart and (s[vend - 1] == 0x20 or s[vend - 1] == 0x09):
            vend -= 1
        headers.append((name, PyBytes_FromStringAndSize(<const char *>s + vstart,
                                                        vend - vstart)))
        nheaders += 1
        if hsize > bufsize or nheaders >= maxhdr:
            return None
    if i != n - 2:  # an empty line before the end: bytes behind the head
        return None
    if conn < 0:
        conn = 0
    return (method, url, headers, hsize, not conn & 1, upgrade and conn & 4 != 0)


cdef inline object _scan_response_c(bytes data):
    cdef const unsigned char *s = <const unsigned char *>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef Py_ssize_t i, k, vstart, vend, cost, length = -1
    cdef int conn = -2, special
    cdef bint upgrade = False
    cdef long status
    cdef unsigned char c
    cdef bytes name
    cdef list headers
    if n < 19 or memcmp(s, b"HTTP/1.1 ", 9) != 0:
        return None
    if not (0x31 <= s[9] <= 0x35 and 0x30 <= s[10] <= 0x39 and 0x30 <= s[11] <= 0x39
            and s[12] == 0x20):
        return None
    status = (s[9] - 0x30) * 100 + (s[10] - 0x30) * 10 + (s[11] - 0x30)
    if status < 200 and status != 101:
        return None
    if status == 204 or status == 304:
        return None
    i = _text_end(s, 13)
    if i < 0:
        return None
    reason = PyBytes_FromStringAndSize(<const char *>s + 13, i - 13)
    cost = i - 13
    i += 2
    headers = []
    while s[i] != 0x0d:
        name = _named_field(s, i, &vstart, &vend)
        if name is None:
            return None
        k = PyBytes_GET_SIZE(name)
        special = _special(PyBytes_AS_STRING(name), k, s + vstart, vend - vstart, &conn,
                           &upgrade)
        if special < 0:
            return None
        if special:  # Content-Length
            if length >= 0 or vend == vstart or vend - vstart > 18:
                return None
            length = 0
            for i in range(vstart, vend):
                c = s[i]
                if not 0x30 <= c <= 0x39:
                    return None
                length = length * 10 + (c - 0x30)
        cost += k + (vend - vstart) + 8
        headers.append((name, PyBytes_FromStringAndSize(<const char *>s + vstart,
                                                        vend - vstart)))
        i = vend + 2
    if s[i + 1] != 0x0a:
        return None
    if conn < 0:
        conn = 0
    if status == 101:
        if length >= 0 or not upgrade or not conn & 4:
            return None  # (llhttp refuses a 101 without both)
    elif upgrade or conn & 4 or length != n - i - 2:
        return None
    return (status, reason, headers, cost, i + 2, not conn & 1)
