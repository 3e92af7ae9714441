# Cython declarations for compiled.py (tools/build_accel.py; ignored in pure Python).
# FrontendRT and BackendRT become extension types whose fields (the same as their
# __slots__, which tests/test_accel.py checks) are C struct members; their state and
# counters links are typed (lb/state.pxd), so a module that declares `fe` or `be` as
# one of these reaches `fe.counters.req_tot` without an attribute lookup (issue #9).

cimport cython

from lb.http.actions cimport RuleSet
from lb.http.cookie cimport CookieRule
from lb.http.h1 cimport ForwardForRule
from lb.log cimport TrafficLog
from lb.match.acl cimport Condition
from lb.proxy.sockio cimport SendQueue
from lb.proxy.timers cimport TimerWheel
from lb.state cimport BackendState, Counters, FrontendState, State


cdef class BackendRT:
    cdef public object model, name, t_server, t_connect, t_tunnel
    cdef public object t_server_fin, t_queue
    cdef public bint server_close, pretend_ka, httpclose, reuse
    cdef public object retries, mode, ff, ot, errorfiles, restrict_names
    cdef public dict idle
    cdef public object loop_time, ctable, persist_rules
    cdef public CookieRule cookie
    cdef public dict srv_cookie
    cdef public object opt_persist, hash_spec, retry_policy, hash_sample, post_param
    cdef public bint replay_requests
    cdef public object buffer_req, reuse_first
    cdef public tuple srvopts, srvopts_smart
    cdef public int smart
    cdef public dict binders
    cdef public bint has_source
    cdef public object tls
    cdef public bint dial, disabled, prefer_last
    cdef public int max_ka_queue
    cdef public object comp
    cdef public object stick, server_rules, send_name
    # rule sets are RuleSet or None (empty): a Txn runs them as C calls
    cdef public RuleSet req_rules, res_rules, after_rules, redirect_rules
    cdef public RuleSet tcp_content_rules
    cdef public BackendState st
    cdef public Counters counters
    cdef public SendQueue sendq

cdef class FrontendRT:
    cdef public object model, name, switching, default_be, own_be
    cdef public object t_client, t_http_request, t_keep_alive, t_tarpit
    cdef public object t_client_fin
    cdef public bint client_close, server_close, log_be_src
    cdef public long long bufsize, maxhdr, head_max
    cdef public object errorfiles, mode, stats_uri, ff, ff_cache, dontlognull
    cdef public object ot, ot_cache
    cdef public bint ot_any, comp_any
    cdef public object comp
    cdef public long long comp_level
    cdef public object ignore_probes, maxconn, httplog, active
    cdef public object buffer_req, monitor_uri, monitor_fail, restrict_names
    cdef public RuleSet req_rules, res_rules, after_rules, redirect_rules, stats_rules
    cdef public RuleSet tcp_conn_rules, tcp_sess_rules, tcp_content_rules
    cdef public TrafficLog log
    cdef public object unique_id, unique_id_hdr, cap_req, cap_res, cap_cookie
    cdef public long long rate_lim, rate_sec, rate_curr, rate_prev
    cdef public int max_srv_conns
    cdef public FrontendState st
    cdef public Counters counters

    cpdef ForwardForRule forwardfor(self, BackendRT be)
    cpdef object originalto(self, BackendRT be)
    @cython.locals(cond=Condition)
    cpdef route(self, object ctx)

cdef class Runtime:
    cdef dict __dict__
    cdef public object config, loop, pid, backends, frontends, maxconn
    cdef public double epoch_offset
    cdef public object actconn, servers_listening, listeners, blocked, ports
    cdef public set conns  # (typed: a connection's add and discard are C calls)
    cdef public object active, services, txn_hook, trace
    cdef public State state
    cdef public TimerWheel wheel
    cdef public SendQueue sendq

    cpdef double clock(self)
