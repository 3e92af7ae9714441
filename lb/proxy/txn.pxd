# Cython declarations for txn.py (tools/build_accel.py; ignored in pure Python).
# Txn and PeerNames become extension types: each field below is a C struct member, so
# `self.<field>` inside txn.py is a pointer read. Every field a Txn method assigns is
# listed (tests/test_accel.py checks); `__dict__` keeps undeclared attributes working.

cdef class PeerNames:
    pass


cdef class Txn(PeerNames):
    cdef dict __dict__
    cdef object __weakref__
    cdef public object _tr, accept_ts, actconn, attempts, backend_name, backend_queue
    cdef public object bad_request, be, beconn, body_buf, buf_size, buffering, bytes_in
    cdef public object bytes_out, client_close, conn, cookie_req, cookie_res, direct, done
    cdef public object dst, dst_port, failed_srv, fe, feconn, force_persist, frontend_name
    cdef public object frontend_tls, has_body, head_sent, id, ignore_persist, is_response
    cdef public object lb_key, live_in, live_out, memo, method, monitor, pid, rcookie
    cdef public object redispatched, replay, req_chunked, req_done, req_headers, request_ts
    cdef public object res_chunked, res_cl, res_close, res_headers, res_pending, res_reason
    cdef public object res_started, res_te, retries, reused, rt, sc, server_name
    cdef public object server_timeout, src, src_port, srv, srv_queue, srvconn, status
    cdef public object status_counted, t0, t_active, t_connect, t_connect_start, t_handshake
    cdef public object t_idle, t_queue, t_request, t_response, t_sent, t_total, task, term
    cdef public object tunnel, tunnel_timeout, unique_id, upgrade, url, vars, version
    cdef public object wait_body, waiter, websocket
