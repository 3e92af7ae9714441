# Cython declarations for state.py (tools/build_accel.py; ignored in pure Python).
# The live-state classes become extension types whose fields (the same as their
# __slots__, which tests/test_accel.py checks) are C struct members, and the links the
# data plane follows on every request (a proxy's or a server's Counters, their rate
# and timing averages) are typed: `fe.counters.req_tot += 1` in a module that knows
# the types is two pointer reads instead of two attribute lookups (issue #9). The
# counters are C integers: an increment allocates no int object (about 90 of those
# per keep-alive request before), and reading one from Python makes an int as usual.
# The per-request methods are cpdef with C arguments: C calls from typed callers.

cimport cython

from lb.balance.base cimport GroupedBalancer


cdef class FreqCounter:
    cdef public long long curr_sec, curr, prev, max

    @cython.locals(sec=cython.longlong, r=cython.longlong)
    cpdef add(self, double now, long long n=*)
    @cython.locals(sec=cython.longlong, frac=cython.double)
    cpdef long long read(self, double now)

cdef class SlidingAverage:
    cdef public double sum
    cdef public long long n, max

cdef class Counters:
    cdef public long long scur, smax, stot, conn_tot, cum_req, bin, bout, dreq, dresp
    cdef public long long dcon, dses, ereq, econ, eresp, eint, wrew, wretr, wredis
    cdef public long long qcur, qmax, hrsp_1xx, hrsp_2xx, hrsp_3xx, hrsp_4xx, hrsp_5xx
    cdef public long long hrsp_other, req_tot, cli_abrt, srv_abrt, lbtot, intercepted
    cdef public long long connect, reuse, chkfail, chkdown, hanafail, timed, ws_upgrade_req
    cdef public long long ws_upgrade_ok, ws_tunnels_cur, ws_tunnels_max, ws_tunnels_tot
    cdef public long long ws_bytes_in, ws_bytes_out
    cdef public long long comp_in, comp_out, comp_byp, comp_rsp
    cdef public double last_sess
    cdef public object ws_fail, ws_close, ws_frames, ws_close_codes
    cdef public FreqCounter sess_rate, req_rate, conn_rate
    cdef public SlidingAverage qtime, ctime, rtime, ttime

    cpdef session_start(self, double now)
    cpdef session_end(self)
    cpdef count_status(self, long long status)
    @cython.locals(av=SlidingAverage, v=cython.longlong, s=cython.double)
    cpdef add_timings(self, long long tw, long long tc, long long tr, long long ta)
    cpdef tunnel_open(self)
    @cython.locals(closes=dict)
    cpdef tunnel_close(self, reason)

cdef class BackendState:
    cdef public object model, name, state, servers, by_name, queue
    # every algorithm derives from GroupedBalancer: pick/take_conn/drop_conn are C calls
    cdef public GroupedBalancer balancer
    cdef public object last_change, down_since, downtime, ws_denied, queue_idx
    cdef public object dyn_cookie_key, dyn_cookie_on, dispatch
    cdef public Counters counters

cdef class ServerState:
    cdef public object model, name, puid, admin, op, health, rise, fall, check_enabled
    cdef public object iweight, uweight, eweight, cur_conns, maxconn, queue
    cdef public object check_status, check_code, check_duration, check_desc
    cdef public object check_running, last_check, last_change, down_since, downtime
    cdef public object lb_data, slowstart_until, addr, port, check_info, unix_path
    cdef public object queue_idx, agent, no_addr, fqdn
    cdef public int observe, proxy_proto, pp_opts, port_offset, use_ssl
    cdef public long long hana_errors
    cdef public set streams
    cdef public BackendState backend
    cdef public Counters counters

cdef class FrontendState:
    cdef public object model, name, status, conns, maxconn, paused, stopped
    cdef public Counters counters

cdef class State:
    cdef dict __dict__
    cdef public object config, start_time, frontends, backends, listeners, curr_conns
    cdef public object cum_conns, cum_req, max_conn_rate, stopping
    cdef public object errors
    # the registries a connection and a tunnel enter and leave: typed, their
    # insertions and pops are C calls
    cdef public dict streams, tunnels
    cdef public long long _next_id, req_seq
    cdef public FreqCounter conn_rate, sess_rate

    cpdef long long next_id(self)
    cpdef long long next_req(self)
