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
from lb.http.h1 cimport (ForwardForRule, check_101, chunk, client_wants_close, conn_value,
                         join_tail, request_head, response_head, ws_key_valid)
from lb.http.h1 cimport count as hdr_count
from lb.http.h1 cimport get as hdr_get
from lb.http.h1 cimport is_websocket as is_ws_upgrade
from lb.http.h1 cimport tokens as hdr_tokens
from lb.log cimport TrafficLog
from lb.match.sample cimport SampleSubject
from lb.proxy.client cimport ClientConn
from lb.proxy.compiled cimport BackendRT, FrontendRT, Runtime
from lb.proxy.drive cimport Driven
from lb.proxy.queue cimport release as release_slot
from lb.proxy.queue cimport request_slot
from lb.proxy.server cimport ServerConn
from lb.state cimport Counters, ServerState

cdef Py_ssize_t _JOIN_MAX
cdef int PH_FE_CONTENT, PH_FE_RULES, PH_BE_CONTENT, PH_BE_RULES, PH_SERVER
cdef list _NO_COOKIES

cpdef long long _ms(double a, double b)


cdef class Txn(SampleSubject):
    cdef object __weakref__
    cdef public object accept_ts, backend_name, body_buf, cookie_req, cookie_res
    cdef public object frontend_name, id, lb_key, pid, rcookie, replay, res_pending
    cdef public object res_reason, server_name, server_timeout, t_connect_start, task
    cdef public object term, tunnel, tunnel_timeout, unique_id, waiter, dialing
    cdef public object stick_stores, cap_req, cap_res, cap_cc, cap_cs
    # where the request was sent (%si, %sp): None and 0 until a server is tried
    cdef public object srv_ip, be_src
    cdef public object comp_algo, comp
    cdef public int srv_port
    # track-sc slots of this request (lb.proxy.track), None when none
    cdef public object stkctr
    # the method and target as received, kept by the first rewrite (for the log)
    cdef public object orig_method, orig_url
    # counters, timers (ms) and flags: C values, no int/bool objects per request
    cdef public long long _tr, actconn, attempts, backend_queue, beconn, buf_size
    cdef public long long bytes_in, bytes_out, feconn, live_in, live_out, retries
    cdef public long long srv_queue, srvconn, t_active, t_connect, t_handshake, t_idle
    # the process's request number (%rt), set where a stream begins (lb.proxy.client)
    cdef public long long req_counter
    cdef public long long t_queue, t_request, t_response, t_total
    # option logasap: 0 none, 1 due at the end of this read, 2 logged; HTX bytes so far
    cdef public int log_early
    cdef public long long early_bytes
    cdef public double t0, t_sent, request_ts
    cdef public bint embryonic
    cdef public bint bad_request, buffering, client_close, direct, done, force_persist
    cdef public bint frontend_tls, has_body, head_sent, ignore_persist, monitor, unlogged
    cdef public bint redispatched, req_chunked, req_done, res_chunked, res_cl
    cdef public bint res_close, res_drop, res_started, res_te, reused, status_counted, upgrade
    cdef public bint wait_body, websocket
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
    @cython.locals(now=cython.double, tr=cython.longlong)
    cpdef start(self, Py_ssize_t hsize, content_length, bint chunked, conn_hdr)
    @cython.locals(ff=ForwardForRule)
    cpdef _process(self, int phase, Py_ssize_t pos)
    cpdef _upgraded(self)
    @cython.locals(bc=Counters)
    cpdef bint _enter_backend(self, BackendRT be)
    cpdef _choose_server(self)
    @cython.locals(rc=RequestCookie, hdrs=list, values=list, k=bytes, v=bytes)
    cpdef _persistence(self, BackendRT be)
    @cython.locals(now=cython.double)
    cpdef _request_slot(self, srv, avoid)
    cpdef _assigned(self, ServerState srv, double now)
    cpdef _count_server(self, srv)
    cpdef req_body(self, data)
    cpdef req_end(self, trailers)
    cpdef connect(self)
    cpdef _reuse(self, sc)
    cpdef _attempt(self)
    cpdef _dial(self, dial)
    cpdef _connected(self, Driven task)
    cpdef _server_ready(self, sc)
    @cython.locals(link=ServerConn)
    cpdef attach(self, sc)
    @cython.locals(now=cython.double, nobody=bint)
    cpdef res_head(self, long status, reason, headers, bint keep_alive)
    cpdef _response_rules(self)
    @cython.locals(rr=ResponseCookie, hdrs=list, k=bytes, v=bytes)
    cpdef _on_response_head(self)
    cpdef res_body(self, data, Py_ssize_t off=*)
    cpdef flush_head(self)
    cpdef res_end(self, trailers)
    cpdef res_upgrade(self, server_tail, long status)
    @cython.locals(log=TrafficLog)
    cpdef log_asap(self, double at)
    cpdef _drop_server(self, close)
    @cython.locals(log=TrafficLog, now=cython.double, out=cython.longlong,
                   inn=cython.longlong, ok=bint, status=cython.longlong)
    cpdef finish(self, close, abort=*, empty=*)
