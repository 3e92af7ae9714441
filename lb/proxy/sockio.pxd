# Cython declarations for sockio.py (tools/build_accel.py; ignored in pure Python),
# and send_c and send2_c, the C bodies the compiled client, server and tunnel modules
# call (they cimport them) when a connection's descriptor is known (sockio.send_fd).

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from libc.string cimport memset

cimport cython

cdef bint COMPILED
cdef object _UV_TCP

cpdef bint direct(tr)
cpdef int send_fd(tr)
cpdef reset_on_close(tr, int fd=*)
cpdef quickack_on(tr, int fd=*)
cpdef finish_now(tr, int fd)
cpdef Py_ssize_t send_now(int fd, bytes data) except -1
@cython.locals(r=int)
cpdef bint closing(tr) except -1
@cython.locals(r=int)
cpdef bint busy(tr) except -1


cdef class SendQueue:
    cdef public object loop, _soon, _flush
    cdef public list items
    cdef public bint draining

    cpdef later(self, tr, int fd, data)
    cpdef later2(self, tr, int fd, head, data, Py_ssize_t off)
    cpdef call(self, fn)
    @cython.locals(items=list, outer=bint)
    cpdef flush(self)
    @cython.locals(fd=int, off=Py_ssize_t)
    cdef _send(self, list items, failed)


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
    int _sys_shutdown "shutdown" (int, int)
    int SHUT_WR
    int MSG_NOSIGNAL
    int MSG_DONTWAIT
    int SOL_SOCKET
    int SO_LINGER

cdef extern from "netinet/in.h" nogil:
    int IPPROTO_TCP

cdef extern from "netinet/tcp.h" nogil:
    int TCP_QUICKACK


# uvloop's `is_closing` and `get_write_buffer_size` of its TCP transport, called as
# the C functions behind the methods (bound once by sockio.py at import; only
# sockio's own `closing` and `busy` use them, since every module that cimports this
# file has its own copy of these statics) instead of as Python method calls: each send asks both, and a Python call costs about 200
# instructions where this costs about 30. The binding is kept only for a method of
# the fastcall-with-keywords kind Cython gives a `def` method, and named as expected;
# the Python calls remain for any other transport, or if a uvloop release changes.
cdef extern from *:
    """
    typedef PyObject *(*lb_uv_noargs_fn)(PyObject *, PyObject *const *, Py_ssize_t,
                                         PyObject *);
    static PyTypeObject *lb_uv_tcp_type = NULL;
    static lb_uv_noargs_fn lb_uv_is_closing_fn = NULL;
    static lb_uv_noargs_fn lb_uv_write_buffer_size_fn = NULL;

    /* The C function behind `descr`, a method descriptor or (uvloop's wheels) a
       Cython function, whose objects start as a built-in function's; NULL unless it
       is the method `name` and of the kind lb_uv_noargs_fn calls. */
    static lb_uv_noargs_fn lb_uv_method(PyObject *descr, int cyfunction,
                                        const char *name) {
        PyMethodDef *def;
        if (Py_TYPE(descr) == &PyMethodDescr_Type)
            def = ((PyMethodDescrObject *)descr)->d_method;
        else if (cyfunction)
            def = ((PyCFunctionObject *)descr)->m_ml;
        else
            return NULL;
        if (def == NULL || def->ml_name == NULL || strcmp(def->ml_name, name) != 0)
            return NULL;
        if ((def->ml_flags & ~METH_COEXIST) != (METH_FASTCALL | METH_KEYWORDS))
            return NULL;
        return (lb_uv_noargs_fn)(void (*)(void))def->ml_meth;
    }

    static int lb_uv_bind(PyObject *tcp_type, PyObject *is_closing,
                          PyObject *write_buffer_size, int cyfunction) {
        lb_uv_noargs_fn a = lb_uv_method(is_closing, cyfunction, "is_closing");
        lb_uv_noargs_fn b = lb_uv_method(write_buffer_size, cyfunction,
                                         "get_write_buffer_size");
        if (!PyType_Check(tcp_type) || a == NULL || b == NULL)
            return 0;
        lb_uv_tcp_type = (PyTypeObject *)tcp_type;
        Py_INCREF(tcp_type);
        lb_uv_is_closing_fn = a;
        lb_uv_write_buffer_size_fn = b;
        return 1;
    }

    /* The truth of a bound method's answer for `tr`: 1 or 0, -1 on an error */
    static int lb_uv_ask(lb_uv_noargs_fn fn, PyObject *tr) {
        PyObject *r = fn(tr, NULL, 0, NULL);
        int n;
        if (r == NULL)
            return -1;
        n = PyObject_IsTrue(r);
        Py_DECREF(r);
        return n;
    }

    /* tr.is_closing() for a bound transport: 1 or 0, -1 on an error, -2 unbound */
    static int lb_uv_closing(PyObject *tr) {
        if (lb_uv_is_closing_fn == NULL || Py_TYPE(tr) != lb_uv_tcp_type)
            return -2;
        return lb_uv_ask(lb_uv_is_closing_fn, tr);
    }

    /* 1 when the transport is closing or holds unsent bytes, 0 when neither, -1 on
       an error (raised); -2 when it is not a transport bound above */
    static int lb_uv_busy(PyObject *tr) {
        int n = lb_uv_closing(tr);
        if (n != 0)
            return n;
        return lb_uv_ask(lb_uv_write_buffer_size_fn, tr);
    }
    """
    bint _uv_bind_c "lb_uv_bind" (object, object, object, bint)
    int _uv_closing_c "lb_uv_closing" (object) except -1
    int _uv_busy_c "lb_uv_busy" (object) except -1


# `data` goes out with send(2) on `fd` when the transport is open and holds nothing
# unsent, so the bytes keep their order; what the kernel does not take is handed to
# the transport, which buffers it and applies flow control as for any write. False
# when the transport must write it all: closing (its descriptor may be closed and
# reused), bytes queued, not bytes, or send failed (EAGAIN, or an error that the
# transport's own write then reports).
cdef inline bint send_c(object tr, int fd, object data) except -1:
    cdef Py_ssize_t n, sent
    if not PyBytes_CheckExact(data) or busy(tr):
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
            or busy(tr)):
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


# send(2) of `data` on `fd` (sockio.send_now): the bytes taken, 0 on any failure
cdef inline Py_ssize_t send_now_c(int fd, bytes data):
    cdef Py_ssize_t sent = _sys_send(fd, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data),
                                     MSG_NOSIGNAL | MSG_DONTWAIT)
    return sent if sent > 0 else 0


# TCP_QUICKACK on for `fd` (sockio.quickack_on): one system call
cdef inline bint quickack_fd_c(int fd):
    cdef int on = 1
    return _sys_setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof(on)) == 0


# SO_LINGER {on, 0 s} on `fd`, whose close then sends a reset: one system call, where
# the Python path goes through uvloop's PseudoSocket (about 5,000 instructions).
cdef inline bint reset_fd_c(int fd):
    cdef int lg[2]
    lg[0] = 1
    lg[1] = 0
    return _sys_setsockopt(fd, SOL_SOCKET, SO_LINGER, lg, sizeof(lg)) == 0
