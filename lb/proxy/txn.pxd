# Cython declarations for txn.py (tools/build_accel.py; ignored in pure Python).
# Txn becomes an extension type: each field below is a C struct member, so
# `self.<field>` inside txn.py is a pointer read. Every field a Txn method assigns is
# listed (tests/test_accel.py checks). There is no instance `__dict__`: Cython would
# allocate one for every Txn, and cpdef methods would then look themselves up on
# each call to see whether the instance overrides them.
# The frontend, backend and server links are typed (compiled.pxd, state.pxd): their
# fields and counters are then read without attribute lookups (issue #9).

# Txn and ClientConn (client.pxd) cimport each other: their base classes live in other
# modules (SampleSubject in lb.match.sample, PeerNames in lb.proxy.peer), so each
# module builds its types before importing the other's.

cimport cython

from lb.http.cookie cimport (RequestCookie, ResponseCookie, request_cookie,
                              response_cacheable, response_cookie)
from lb.http.h1 cimport ForwardForRule, chunk, request_head, response_head
from lb.log cimport TrafficLog
from lb.match.sample cimport SampleSubject
from lb.proxy.client cimport ClientConn
from lb.proxy.compiled cimport BackendRT, FrontendRT, Runtime
from lb.proxy.queue cimport release as release_slot
from lb.proxy.queue cimport request_slot
from lb.proxy.server cimport ServerConn
from lb.state cimport ServerState

cdef class Txn(SampleSubject):
    cdef object __weakref__
    cdef public object _tr, accept_ts, actconn, attempts, backend_name, backend_queue
    cdef public object bad_request, beconn, body_buf, buf_size, buffering, bytes_in
    cdef public object bytes_out, client_close, cookie_req, cookie_res, direct
    cdef public object done, feconn, force_persist, frontend_name
    cdef public object frontend_tls, has_body, head_sent, id, ignore_persist
    cdef public object lb_key, live_in, live_out, monitor
    cdef public object pid, rcookie, redispatched, replay, req_chunked, req_done
    cdef public object request_ts, res_chunked, res_cl, res_close
    cdef public object res_pending, res_reason, res_started, res_te
    cdef public object retries, reused, server_name, server_timeout
    cdef public object srv_queue, srvconn, status_counted, t0
    cdef public object t_active, t_connect, t_connect_start, t_handshake, t_idle
    cdef public object t_queue, t_request, t_response, t_sent, t_total, task, term
    cdef public object tunnel, tunnel_timeout, unique_id, upgrade
    cdef public object wait_body, waiter, websocket
    cdef public double res_at
    cdef public Runtime rt
    cdef public ClientConn conn
    cdef public FrontendRT fe
    cdef public BackendRT be
    cdef public ServerState srv, failed_srv
    cdef public ServerConn sc

    # The per-request chain (issue #9): C calls from typed callers (a Txn method, or
    # a ClientConn through its typed `txn`). cpdef keeps them callable from Python
    # and overridable (lb.proxy.tcp.TcpTxn overrides connect/_count_server/attach).
    cpdef line(self)
    @cython.locals(ff=ForwardForRule)
    cpdef start(self, hsize, content_length, chunked, conn_hdr)
    cpdef _choose_server(self)
    @cython.locals(rc=RequestCookie)
    cpdef _persistence(self, BackendRT be)
    cpdef _request_slot(self, srv, avoid)
    cpdef _assigned(self, srv, now)
    cpdef _count_server(self, srv)
    cpdef req_body(self, data)
    cpdef req_end(self, trailers)
    cpdef connect(self)
    cpdef attach(self, sc)
    cpdef res_head(self, status, reason, headers, keep_alive)
    cpdef _response_rules(self)
    @cython.locals(rr=ResponseCookie)
    cpdef _on_response_head(self)
    cpdef res_body(self, data)
    cpdef flush_head(self)
    cpdef res_end(self, trailers)
    cpdef _drop_server(self, close)
    @cython.locals(log=TrafficLog)
    cpdef finish(self, close, abort=*, empty=*)
