"""The ``option httplog`` line of a transaction, rendered by compiled code.

Owns: ``httplog`` (the line of HAProxy's built-in HTTP format for one ``Txn``) and
``fast_renderer`` (which formats have such a renderer). ``lb.logfmt`` compiles any
log-format into generated Python that runs interpreted; for the built-in httplog
format, which most configurations use, this module is that same line written out
by hand so that tools/build_accel.py compiles it: the fields are read from the typed
``Txn`` (``logline.pxd``) as C struct members and the numbers are formatted as C
integers, with one join for the whole line (issue #9). Any other format keeps the
generic renderer. ``tests/test_logline.py`` holds the two renderers to the same
bytes on real transactions.

Must not import: lb.cli, lb.log, healthcheck.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lb.logfmt import _CODES, HTTPLOG_FORMAT, date_ms, url_escape

try:  # True only inside the Cython-compiled copy (tools/build_accel.py)
    import cython
    COMPILED = cython.compiled
except ImportError:  # pure Python without Cython installed
    COMPILED = False


def httplog(t: Any) -> bytes:
    """``%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc
    %ac/%fc/%bc/%sc/%rc %sq/%bq %{+Q}r`` (``%hr %hs`` render nothing in lb).
    Compiled, ``_httplog_c`` (logline.pxd) writes the usual line into a C buffer and
    leaves the rest (non-ASCII names, a request line to escape) to this code."""
    if COMPILED:
        out = _httplog_c(t)  # noqa: F821 (a C function of logline.pxd)
        if out is not None:
            return out
    fe_name = t.frontend_name
    ft = fe_name + "~" if t.frontend_tls else fe_name
    be_name = t.backend_name or fe_name
    srv_name = t.server_name or "<NOSRV>"
    rc = f"+{t.retries}" if t.redispatched else f"{t.retries}"
    line = t.line()
    req = "<BADREQ>" if line is None else url_escape(line)
    cp = int(t.src_port)
    tr = int(t.t_request)
    tw = int(t.t_queue)
    tc = int(t.t_connect)
    tres = int(t.t_response)
    ta = int(t.t_active)
    st = int(t.status)
    bo = int(t.bytes_out)
    ac = int(t.actconn)
    fc = int(t.feconn)
    bc = int(t.beconn)
    sc = int(t.srvconn)
    sq = int(t.srv_queue)
    bq = int(t.backend_queue)
    return (f"{t.src}:{cp} [{date_ms(t.request_ts or t.accept_ts)}] {ft} "
            f"{be_name}/{srv_name} {tr}/{tw}/{tc}/{tres}/{ta} {st} {bo} - - "
            f"{_CODES[t.term + t.cookie_req + t.cookie_res]} "
            f"{ac}/{fc}/{bc}/{sc}/{rc} {sq}/{bq} \"{req}\""
            ).encode("utf-8", "surrogateescape")


_RENDERERS: dict[tuple[str, str], Callable[[Any], bytes]] = {
    (HTTPLOG_FORMAT, "http"): httplog,
}


def fast_renderer(fmt_text: str, mode: str) -> Callable[[Any], bytes] | None:
    """The compiled renderer of a frontend's format for its transactions, if any."""
    return _RENDERERS.get((fmt_text, mode))
