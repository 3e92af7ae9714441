# Cython declarations for sockio.py (tools/build_accel.py; ignored in pure Python),
# and send_c and send2_c, the C bodies the compiled client, server and tunnel modules
# call (they cimport them) when a connection's descriptor is known (sockio.send_fd).

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from libc.string cimport memset

cdef bint COMPILED
cdef object _UV_TCP

cpdef bint direct(tr)
cpdef int send_fd(tr)
cpdef reset_on_close(tr, int fd=*)


cdef extern from "sys/uio.h" nogil:
    cdef struct iovec:
        void *iov_base
        size_t iov_len

cdef extern from "sys/socket.h" nogil:
    cdef struct msghdr:
        iovec *msg_iov
        size_t msg_iovlen
    ssize_t _sys_send "send" (int, const void *, size_t, int)
    ssize_t _sys_sendmsg "sendmsg" (int, const msghdr *, int)
    int _sys_setsockopt "setsockopt" (int, int, int, const void *, unsigned int)
    int MSG_NOSIGNAL
    int MSG_DONTWAIT
    int SOL_SOCKET
    int SO_LINGER


# `data` goes out with send(2) on `fd` when the transport is open and holds nothing
# unsent, so the bytes keep their order; what the kernel does not take is handed to
# the transport, which buffers it and applies flow control as for any write. False
# when the transport must write it all: closing (its descriptor may be closed and
# reused), bytes queued, not bytes, or send failed (EAGAIN, or an error that the
# transport's own write then reports).
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


# `head` then `data[off:]` in one sendmsg(2), under the same conditions as send_c: a
# large body behind its head goes out without being copied next to it first. What
# the kernel does not take goes to the transport as views of the two objects.
cdef inline bint send2_c(object tr, int fd, object head, object data,
                         Py_ssize_t off) except -1:
    cdef Py_ssize_t hn, dn, sent
    cdef iovec iov[2]
    cdef msghdr msg
    if (not PyBytes_CheckExact(head) or not PyBytes_CheckExact(data)
            or off < 0 or off > PyBytes_GET_SIZE(data)
            or tr.is_closing() or tr.get_write_buffer_size()):
        return False
    hn = PyBytes_GET_SIZE(head)
    dn = PyBytes_GET_SIZE(data) - off
    iov[0].iov_base = PyBytes_AS_STRING(head)
    iov[0].iov_len = <size_t>hn
    iov[1].iov_base = PyBytes_AS_STRING(data) + off
    iov[1].iov_len = <size_t>dn
    memset(&msg, 0, sizeof(msg))
    msg.msg_iov = iov
    msg.msg_iovlen = 2
    sent = _sys_sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT)
    if sent == hn + dn:
        return True
    if sent <= 0:
        return False
    if sent < hn:
        tr.writelines((memoryview(head)[sent:], memoryview(data)[off:]))
    else:
        tr.write(memoryview(data)[off + sent - hn:])
    return True


# SO_LINGER {on, 0 s} on `fd`, whose close then sends a reset: one system call, where
# the Python path goes through uvloop's PseudoSocket (about 5,000 instructions).
cdef inline bint reset_fd_c(int fd):
    cdef int lg[2]
    lg[0] = 1
    lg[1] = 0
    return _sys_setsockopt(fd, SOL_SOCKET, SO_LINGER, lg, sizeof(lg)) == 0
