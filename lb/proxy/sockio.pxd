# Cython declarations for sockio.py (tools/build_accel.py; ignored in pure Python),
# and send_c, the C body the compiled client, server and tunnel modules call (they
# cimport it) when a connection's descriptor is known (sockio.send_fd).

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE

cdef bint COMPILED
cdef object _UV_TCP

cpdef bint direct(tr)
cpdef int send_fd(tr)


# `data` goes out with send(2) on `fd` when the transport is open and holds nothing
# unsent, so the bytes keep their order; what the kernel does not take is handed to
# the transport, which buffers it and applies flow control as for any write. False
# when the transport must write it all: closing (its descriptor may be closed and
# reused), bytes queued, not bytes, or send failed (EAGAIN, or an error that the
# transport's own write then reports).
cdef extern from "sys/socket.h" nogil:
    ssize_t _sys_send "send" (int, const void *, size_t, int)
    int MSG_NOSIGNAL
    int MSG_DONTWAIT


cdef inline bint send_c(object tr, int fd, object data) except -1:
    cdef Py_ssize_t n, sent
    if not PyBytes_CheckExact(data) or tr.is_closing() or tr.get_write_buffer_size():
        return False
    n = PyBytes_GET_SIZE(data)
    sent = _sys_send(fd, PyBytes_AS_STRING(data), n, MSG_NOSIGNAL | MSG_DONTWAIT)
    if sent == n:
        return True
    if sent <= 0:
        return False
    tr.write(memoryview(data)[sent:])
    return True
