# Cython declarations for h1.py (tools/build_accel.py; ignored in pure Python).
# The serialisers and lookups every request goes through are cpdef with typed
# arguments and loop variables: C calls from lb.proxy.txn (which cimports them by
# name) and C loops over the header pairs (issue #9).

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcmp, memcpy

cdef bint COMPILED
# typed, so that `.get` and stores are C dict calls, not attribute lookups
cdef dict _STATUS_LINES


@cython.locals(n=bytes, v=bytes)
cpdef get(headers, bytes name)
@cython.locals(out=list, n=bytes, v=bytes, t=bytes)
cpdef list tokens(headers, bytes name)
cpdef bint client_wants_close(bytes version, list conn)
# the checks of an upgrade and its 101 (once per WebSocket): C calls from Txn
cpdef count(headers, bytes name)
cpdef bint is_websocket(headers)
cpdef bint ws_key_valid(key)
cpdef check_101(req_headers, res_headers, bint websocket)
cpdef bytes ws_accept(key)
cpdef bint _use_sha1_ni(bint on)
cpdef conn_value(list old, bint close, bint keep_alive)
cpdef bytes request_head(bytes method, bytes url, bytes version, list headers, conn)
@cython.locals(known=tuple, line=bytes)
cpdef bytes response_head(long status, bytes reason, list headers, conn)
@cython.locals(n=bytes, v=bytes, out=bytes)
cpdef bytes _head(list parts, list headers, conn)


# The compiled body of _head (issue #9): the lengths are summed first, then one bytes
# object is allocated and every piece is copied into it with memcpy, where b"".join
# took a buffer view of each piece and the parts list grew by four items per header.
# The lists are read through borrowed pointers (no Python code runs meanwhile, so
# nothing can change them). None when an item is not what lb builds (bytes pieces,
# (bytes, bytes) header tuples): _head then serialises with its Python code, which
# also raises the same errors for bad input.
cdef extern from "Python.h":
    ctypedef struct PyObject
    PyObject *_list_item "PyList_GET_ITEM" (object, Py_ssize_t)
    PyObject *_tuple_item "PyTuple_GET_ITEM" (PyObject *, Py_ssize_t)
    Py_ssize_t _size "Py_SIZE" (PyObject *)
    bint _is_tuple "PyTuple_CheckExact" (PyObject *)
    bint _is_bytes "PyBytes_CheckExact" (PyObject *)
    char *_data "PyBytes_AS_STRING" (PyObject *)


cdef inline bint _is_connection(PyObject *name):
    return _size(name) == 10 and memcmp(_data(name), b"connection", 10) == 0


cdef inline char *_copy(char *p, PyObject *b):
    cdef Py_ssize_t k = _size(b)
    memcpy(p, _data(b), k)
    return p + k


cdef inline bytes _head_c(list parts, list headers, object conn):
    cdef Py_ssize_t total = 2, i
    cdef Py_ssize_t nparts = len(parts), nheaders = len(headers)
    cdef PyObject *item
    cdef PyObject *n
    cdef PyObject *v
    cdef char *p
    for i in range(nparts):
        item = _list_item(parts, i)
        if not _is_bytes(item):
            return None
        total += _size(item)
    for i in range(nheaders):
        item = _list_item(headers, i)
        if not _is_tuple(item) or _size(item) != 2:
            return None
        n = _tuple_item(item, 0)
        v = _tuple_item(item, 1)
        if not _is_bytes(n) or not _is_bytes(v):
            return None
        if not _is_connection(n):
            total += _size(n) + _size(v) + 4
    if conn:
        if type(conn) is not bytes:
            return None
        total += PyBytes_GET_SIZE(<bytes>conn) + 14
    cdef bytes out = PyBytes_FromStringAndSize(NULL, total)
    p = PyBytes_AS_STRING(out)
    for i in range(nparts):
        p = _copy(p, _list_item(parts, i))
    for i in range(nheaders):
        item = _list_item(headers, i)
        n = _tuple_item(item, 0)
        if _is_connection(n):
            continue
        p = _copy(p, n)
        p[0] = b":"
        p[1] = b" "
        p = _copy(p + 2, _tuple_item(item, 1))
        p[0] = b"\r"
        p[1] = b"\n"
        p += 2
    if conn:
        memcpy(p, b"connection: ", 12)
        p = _copy(p + 12, <PyObject *>conn)
        p[0] = b"\r"
        p[1] = b"\n"
        p += 2
    p[0] = b"\r"
    p[1] = b"\n"
    return out


cpdef bytes join_tail(bytes head, bytes data, Py_ssize_t off)


cdef inline bytes _join_tail_c(bytes head, bytes data, Py_ssize_t off):
    cdef Py_ssize_t nh = PyBytes_GET_SIZE(head)
    cdef Py_ssize_t nd = PyBytes_GET_SIZE(data) - off
    cdef bytes out
    if off < 0 or nd < 0:
        raise ValueError("join_tail: offset out of range")
    out = PyBytes_FromStringAndSize(NULL, nh + nd)
    memcpy(PyBytes_AS_STRING(out), PyBytes_AS_STRING(head), nh)
    memcpy(PyBytes_AS_STRING(out) + nh, PyBytes_AS_STRING(data) + off, nd)
    return out


cpdef tuple chunk(bytes data)


# `option forwardfor` runs on every request of a proxy that has it: Txn calls
# FrontendRT.forwardfor and then apply, both C calls.
cdef class ForwardForRule:
    cdef public object header, except_net, if_none

    cpdef apply(self, list headers, str src)


# The compiled body of ws_accept (issue #9): SHA-1 of the key and the GUID, then
# base64, on the stack. hashlib builds a hash object and an OpenSSL context for
# each handshake, and b2a_base64 a bytes object, for 20 bytes. None for a key
# longer than two SHA-1 blocks can hold (a valid key is 24 characters): ws_accept
# then uses hashlib.
cdef inline uint32_t _rol(uint32_t x, int n) noexcept:
    return (x << n) | (x >> (32 - n))


cdef inline void _sha1_block(uint32_t *h, const unsigned char *p) noexcept:
    # the state in locals, one loop per round function: the C compiler keeps a-e in
    # registers (an array of them passed to a round function was kept in memory)
    cdef uint32_t w[80]
    cdef uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], t
    cdef uint32_t k1 = 0x5A827999, k2 = 0x6ED9EBA1, k3 = 0x8F1BBCDC, k4 = 0xCA62C1D6
    cdef int i
    for i in range(16):
        w[i] = ((<uint32_t>p[4 * i] << 24) | (<uint32_t>p[4 * i + 1] << 16)
                | (<uint32_t>p[4 * i + 2] << 8) | <uint32_t>p[4 * i + 3])
    for i in range(16, 80):
        w[i] = _rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1)
    for i in range(20):
        t = _rol(a, 5) + ((b & c) | (~b & d)) + e + k1 + w[i]
        e = d
        d = c
        c = _rol(b, 30)
        b = a
        a = t
    for i in range(20, 40):
        t = _rol(a, 5) + (b ^ c ^ d) + e + k2 + w[i]
        e = d
        d = c
        c = _rol(b, 30)
        b = a
        a = t
    for i in range(40, 60):
        t = _rol(a, 5) + ((b & c) | (b & d) | (c & d)) + e + k3 + w[i]
        e = d
        d = c
        c = _rol(b, 30)
        b = a
        a = t
    for i in range(60, 80):
        t = _rol(a, 5) + (b ^ c ^ d) + e + k4 + w[i]
        e = d
        d = c
        c = _rol(b, 30)
        b = a
        a = t
    h[0] += a
    h[1] += b
    h[2] += c
    h[3] += d
    h[4] += e


# The same block with the x86 SHA extensions (SHA-NI), where the CPU has them: the
# C compiler builds it for them alone (a target attribute), and lb_sha1_ni() asks
# the CPU once which of the two blocks to run. Four rounds an instruction; the
# message words are expanded first, then the rounds alternate the two E registers.
cdef extern from *:
    """
    #if defined(__x86_64__) && defined(__GNUC__)
    #include <cpuid.h>
    #include <immintrin.h>
    #define LB_SHA1_NI_BUILT 1
    __attribute__((target("sha,sse4.1,ssse3")))
    static void lb_sha1_block_ni(uint32_t *h, const unsigned char *p) {
        const __m128i bswap = _mm_set_epi64x(0x0001020304050607LL, 0x08090a0b0c0d0e0fLL);
        __m128i m[20], e0, e1, abcd;
        __m128i abcd_in, e_in;
        int i;
        abcd = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)h), 0x1B);
        e0 = _mm_set_epi32((int)h[4], 0, 0, 0);
        abcd_in = abcd;
        e_in = e0;
        for (i = 0; i < 4; i++)
            m[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), bswap);
        for (i = 4; i < 20; i++)
            m[i] = _mm_sha1msg2_epu32(
                _mm_xor_si128(_mm_sha1msg1_epu32(m[i - 4], m[i - 3]), m[i - 2]), m[i - 1]);
        e0 = _mm_add_epi32(e0, m[0]);
        e1 = abcd;
        abcd = _mm_sha1rnds4_epu32(abcd, e0, 0);
    #define LB_R1(i, f) e1 = _mm_sha1nexte_epu32(e1, m[i]); e0 = abcd; \
        abcd = _mm_sha1rnds4_epu32(abcd, e1, f);
    #define LB_R0(i, f) e0 = _mm_sha1nexte_epu32(e0, m[i]); e1 = abcd; \
        abcd = _mm_sha1rnds4_epu32(abcd, e0, f);
        LB_R1(1, 0) LB_R0(2, 0) LB_R1(3, 0) LB_R0(4, 0)
        LB_R1(5, 1) LB_R0(6, 1) LB_R1(7, 1) LB_R0(8, 1) LB_R1(9, 1)
        LB_R0(10, 2) LB_R1(11, 2) LB_R0(12, 2) LB_R1(13, 2) LB_R0(14, 2)
        LB_R1(15, 3) LB_R0(16, 3) LB_R1(17, 3) LB_R0(18, 3) LB_R1(19, 3)
    #undef LB_R1
    #undef LB_R0
        e0 = _mm_sha1nexte_epu32(e0, e_in);
        abcd = _mm_add_epi32(abcd, abcd_in);
        _mm_storeu_si128((__m128i *)h, _mm_shuffle_epi32(abcd, 0x1B));
        h[4] = (uint32_t)_mm_extract_epi32(e0, 3);
    }
    #else
    #define LB_SHA1_NI_BUILT 0
    static void lb_sha1_block_ni(uint32_t *h, const unsigned char *p) { (void)h; (void)p; }
    #endif

    /* -1: not asked yet; 0: the portable block; 1: SHA-NI */
    static int lb_sha1_ni_state = -1;

    static int lb_sha1_ni(void) {
        if (lb_sha1_ni_state < 0) {
    #if LB_SHA1_NI_BUILT
            /* CPUID leaf 7: SHA in EBX bit 29; leaf 1: SSSE3 and SSE4.1 in ECX bits 9, 19 */
            unsigned int a, b, c, d;
            int sha = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b >> 29 & 1);
            int sse = __get_cpuid(1, &a, &b, &c, &d) && (c >> 9 & 1) && (c >> 19 & 1);
            lb_sha1_ni_state = sha && sse;
    #else
            lb_sha1_ni_state = 0;
    #endif
        }
        return lb_sha1_ni_state;
    }
    """
    void _sha1_block_ni "lb_sha1_block_ni" (uint32_t *h, const unsigned char *p) noexcept
    bint _sha1_ni "lb_sha1_ni" () noexcept
    int _sha1_ni_state "lb_sha1_ni_state"


cdef inline bint _space(unsigned char ch) noexcept:
    # what bytes.strip() removes: ASCII whitespace
    return ch == 32 or (9 <= ch <= 13)


cdef inline bytes _ws_accept_c(bytes key):
    cdef const unsigned char *s = <const unsigned char *>PyBytes_AS_STRING(key)
    cdef Py_ssize_t lo = 0, hi = PyBytes_GET_SIZE(key), n, total, i
    cdef unsigned char msg[128]
    cdef uint32_t h[5]
    cdef uint64_t bits
    cdef char out[28]
    cdef unsigned char dig[21]
    cdef const char *b64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    cdef uint32_t v
    while lo < hi and _space(s[lo]):
        lo += 1
    while hi > lo and _space(s[hi - 1]):
        hi -= 1
    n = hi - lo
    if n + 36 + 9 > 128:
        return None
    memcpy(msg, s + lo, n)
    memcpy(msg + n, b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36)
    total = n + 36
    msg[total] = 0x80
    i = total + 1
    cdef Py_ssize_t padded = 64 if total + 9 <= 64 else 128
    while i < padded - 8:
        msg[i] = 0
        i += 1
    bits = <uint64_t>total * 8
    for i in range(8):
        msg[padded - 1 - i] = <unsigned char>(bits >> (8 * i))
    h[0] = 0x67452301
    h[1] = 0xEFCDAB89
    h[2] = 0x98BADCFE
    h[3] = 0x10325476
    h[4] = 0xC3D2E1F0
    if _sha1_ni():
        _sha1_block_ni(h, msg)
        if padded == 128:
            _sha1_block_ni(h, msg + 64)
    else:
        _sha1_block(h, msg)
        if padded == 128:
            _sha1_block(h, msg + 64)
    for i in range(5):
        dig[4 * i] = <unsigned char>(h[i] >> 24)
        dig[4 * i + 1] = <unsigned char>(h[i] >> 16)
        dig[4 * i + 2] = <unsigned char>(h[i] >> 8)
        dig[4 * i + 3] = <unsigned char>h[i]
    dig[20] = 0
    for i in range(7):  # 21 bytes (the last one zero) in 7 groups of 3
        v = (<uint32_t>dig[3 * i] << 16) | (<uint32_t>dig[3 * i + 1] << 8) | dig[3 * i + 2]
        out[4 * i] = b64[(v >> 18) & 63]
        out[4 * i + 1] = b64[(v >> 12) & 63]
        out[4 * i + 2] = b64[(v >> 6) & 63]
        out[4 * i + 3] = b64[v & 63]
    out[27] = 61  # the last group held one zero byte of padding: "="
    return PyBytes_FromStringAndSize(out, 28)
