# Cython declarations for cookie.py (tools/build_accel.py; ignored in pure Python).
# The response side runs on every response of a backend with a `cookie` line (issue
# #9): the backend's cookie line is a CookieRule whose fields are C members, its
# result types are extension types (fields as their __slots__, which
# tests/test_accel.py checks; `ck`, the log character, is a str whose encode is a C
# call), `response_cookie` takes positional C arguments and
# lb.proxy.txn cimports it and `response_cacheable` (C calls, no keyword parsing),
# the cacheability check names the five header kinds it reads by a C test of the
# name's length and one bytes comparison (no hashing), and each CookieRule caches
# its Set-Cookie values in a typed dict.

cimport cython


cdef class CookieRule:
    cdef public object spec, name, domains, maxidle, maxlife, attrs
    cdef public str mode
    cdef public bytes bname
    cdef public bint indirect, nocache, postonly, preserve, httponly, secure
    cdef public dict values


cdef class RequestCookie:
    cdef public object server, direct, last_date, first_date, headers
    cdef public str ck


cdef class ResponseCookie:
    cdef public object set_cookies, insert, cache_private
    cdef public str ck


@cython.locals(res=RequestCookie)
cpdef RequestCookie request_cookie(CookieRule spec, cookie_headers, table, double now,
                                   bint persist,
                                   bint force, bint ignore, bint assigned=*,
                                   is_running=*)
@cython.locals(res=ResponseCookie, direct=bint, found=bint, changed=bint, out=list,
               tnow=cython.longlong)
cpdef ResponseCookie response_cookie(CookieRule spec, long status, bytes method, set_cookies,
                                     server, server_cookie, RequestCookie req,
                                     double now, bint ignore, bint cacheable)
cpdef bytes set_cookie_value(spec, server_cookie, double now, first_date=*)
# the rule's cache of Set-Cookie values is a typed dict: `.get` is a C dict call
@cython.locals(cache=dict, v=bytes)
cpdef bytes cookie_value(CookieRule spec, server_cookie, double now, first_date)
@cython.locals(k=bytes, v=bytes, n=Py_ssize_t, kind=int,
               cacheable=bint, fresh=bint, validator=bint, pragma=bint)
cpdef bint response_cacheable(method, status, headers) except -1
