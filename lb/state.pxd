# Cython declarations for state.py (tools/build_accel.py; ignored in pure Python).
# The live-state classes become extension types whose fields (the same as their
# __slots__, which tests/test_accel.py checks) are C struct members, and the links the
# data plane follows on every request (a proxy's or a server's Counters, their rate
# and timing averages) are typed: `fe.counters.req_tot += 1` in a module that knows
# the types is two pointer reads instead of two attribute lookups (issue #9).


cdef class FreqCounter:
    cdef public object curr_sec, curr, prev, max

cdef class SlidingAverage:
    cdef public object sum, n, max

cdef class Counters:
    cdef public object scur, smax, stot, conn_tot, cum_req, bin, bout, dreq, dresp
    cdef public object dcon, dses, ereq, econ, eresp, eint, wrew, wretr, wredis, qcur
    cdef public object qmax, hrsp_1xx, hrsp_2xx, hrsp_3xx, hrsp_4xx, hrsp_5xx
    cdef public object hrsp_other, req_tot, cli_abrt, srv_abrt, lbtot, intercepted
    cdef public object connect, reuse, chkfail, chkdown, timed, last_sess
    cdef public object ws_upgrade_req, ws_upgrade_ok, ws_fail, ws_tunnels_cur
    cdef public object ws_tunnels_max, ws_tunnels_tot, ws_close, ws_frames
    cdef public object ws_close_codes, ws_bytes_in, ws_bytes_out
    cdef public FreqCounter sess_rate, req_rate, conn_rate
    cdef public SlidingAverage qtime, ctime, rtime, ttime

cdef class BackendState:
    cdef public object model, name, state, servers, by_name, balancer, queue
    cdef public object last_change, down_since, downtime, ws_denied, queue_idx
    cdef public Counters counters

cdef class ServerState:
    cdef public object model, name, puid, admin, op, health, rise, fall, check_enabled
    cdef public object iweight, uweight, eweight, cur_conns, maxconn, queue
    cdef public object check_status, check_code, check_duration, check_desc
    cdef public object check_running, last_check, last_change, down_since, downtime
    cdef public object streams, lb_data, slowstart_until, addr, port, check_info
    cdef public object queue_idx
    cdef public BackendState backend
    cdef public Counters counters

cdef class FrontendState:
    cdef public object model, name, status, conns
    cdef public Counters counters

cdef class State:
    cdef dict __dict__
    cdef public object config, start_time, frontends, backends, listeners, curr_conns
    cdef public object cum_conns, cum_req, max_conn_rate, stopping, streams, tunnels
    cdef public object errors, _next_id
    cdef public FreqCounter conn_rate, sess_rate
