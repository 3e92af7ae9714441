"""The arrays of stick-table data (HAProxy 2.5+): `store gpc(<n>)`, `gpt(<n>)`,
`gpc_rate(<n>,<period>)`, the actions `sc-inc-gpc(<idx>,<sc>)` and
`sc-set-gpt(<idx>,<sc>)`, the fetches `sc_get_gpc(<idx>,<sc>[,<table>])`,
`src_inc_gpc(<idx>,<table>)`... and the converters `table_gpc(<idx>,<table>)`...,
compared with HAProxy 2.6.12.

Until session 57 lb refused `store gpc(3)` (and every other array), ignored the two
actions with a warning and knew none of the fetches, so a HAProxy 2.6 configuration
using them did not load. The same pass found that lb refused `sc_http_req_rate(0)`
in a proxy without a stick table of its own (the usual rate limit with the table in
a backend of its own): HAProxy reads the tracked entry's table there, and so does lb.

Every expectation below is what HAProxy 2.6.12 printed or answered for the same
configuration and traffic; with HAProxy installed, the tests also run it.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import tempfile
import time
from typing import Any

import pytest

from lb.__main__ import check_mode, parse_args
from lb.config.model import StickTableSpec
from lb.proxy import track
from lb.sticktable import StickTable
from tests.lbproc import LbProcess, RawBackend
from tests.stats_support import query, wait_socket
from tests.support_e2e import HAPROXY, Haproxy, answer_ok
from tests.test_lifecycle import read_response
from tests.test_track_sc import HEAD

pytestmark = pytest.mark.timeout(60)

KINDS = ["lb", "haproxy"] if os.path.exists(HAPROXY) else ["lb"]

CHECK_HEAD = ("defaults\n    mode http\n    timeout client 5s\n    timeout server 5s\n"
              "    timeout connect 5s\n")
# shorthands of the cases below
_EXPAND = (("STORE ", "backend st\n    stick-table type ip size 10k store "),
           ("FE ", "frontend fe\n    bind 127.0.0.1:18080\n    "))

# (configuration after the defaults, `-c` exit code, ALERT lines; "W " marks a WARNING)
CHECKS = [
    ('STORE gpc(3)', 2, []),
    ('STORE gpc(0)', 1, ["parsing [{f}:7] : stick-table: array size is out of allowed range (1-100) for store option 'gpc'."]),
    ('STORE gpc(101)', 1, ["parsing [{f}:7] : stick-table: array size is out of allowed range (1-100) for store option 'gpc'."]),
    ('STORE gpc(100)', 2, []),
    ('STORE gpc', 1, ["parsing [{f}:7] : stick-table: missing argument to store option 'gpc'."]),
    ('STORE gpc()', 1, ["parsing [{f}:7] : stick-table: array size is out of allowed range (1-100) for store option 'gpc'."]),
    ('STORE gpc(x)', 1, ["parsing [{f}:7] : stick-table: array size is out of allowed range (1-100) for store option 'gpc'."]),
    ('STORE gpc(2x)', 2, []),
    ('STORE gpc_rate(2)', 1, ["parsing [{f}:7] : stick-table: missing argument to store option 'gpc_rate'."]),
    ('STORE gpc_rate(2,10s)', 2, []),
    ('STORE gpc_rate(0,10s)', 1, ["parsing [{f}:7] : stick-table: array size is out of allowed range (1-100) for store option 'gpc_rate'."]),
    ('STORE gpc_rate(2,x)', 1, ["parsing [{f}:7] : stick-table: error when processing store option 'gpc_rate'."]),
    ('STORE gpc_rate(,10s)', 1, ["parsing [{f}:7] : stick-table: array size is out of allowed range (1-100) for store option 'gpc_rate'."]),
    ('STORE gpt(2)', 2, []),
    ('STORE gpc(2),gpc0', 1, ["parsing [{f}:7] : stick-table: simultaneous usage of 'gpc' and 'gpc[0/1]' in a same table is not permitted as 'gpc' overrides 'gpc[0/1]'."]),
    ('STORE gpc0,gpc(2)', 1, ["parsing [{f}:7] : stick-table: simultaneous usage of 'gpc' and 'gpc[0/1]' in a same table is not permitted as 'gpc' overrides 'gpc[0/1]'."]),
    ('STORE gpc(2),gpc1', 1, ["parsing [{f}:7] : stick-table: simultaneous usage of 'gpc' and 'gpc[0/1]' in a same table is not permitted as 'gpc' overrides 'gpc[0/1]'."]),
    ('STORE gpc_rate(2,1s),gpc0_rate(1s)', 1, ["parsing [{f}:7] : stick-table: simultaneous usage of 'gpc_rate' and 'gpc[0/1]_rate' in a same table is not permitted as 'gpc_rate' overrides 'gpc[0/1]_rate'."]),
    ('STORE gpt(1),gpt0', 1, ["parsing [{f}:7] : stick-table: simultaneous usage of 'gpt' and 'gpt0' in a same table is not permitted as 'gpt' overrides 'gpt0'."]),
    ('STORE gpt0,gpt(1)', 1, ["parsing [{f}:7] : stick-table: simultaneous usage of 'gpt' and 'gpt0' in a same table is not permitted as 'gpt' overrides 'gpt0'."]),
    ('STORE gpc(2),gpc(3)', 2, ["W parsing [{f}:7]: stick-table: store option 'gpc' already enabled, ignored."]),
    ('STORE gpc(2),gpc_rate(3,1s),gpt(4),gpc0_rate(1s)', 1, ["parsing [{f}:7] : stick-table: simultaneous usage of 'gpc_rate' and 'gpc[0/1]_rate' in a same table is not permitted as 'gpc_rate' overrides 'gpc[0/1]_rate'."]),
    ('STORE gpc(3),gpt(2),gpc_rate(2,10s)\nFE http-request track-sc0 src table st\n    http-request sc-inc-gpc(1,0)\n    http-request sc-set-gpt(1,0) 5\n    http-request sc-set-gpt(0,2) src_port\n    http-response sc-inc-gpc(0,1)\n    tcp-request connection sc-inc-gpc(0,0)\n    tcp-request session sc-set-gpt(0,0) 1\n    tcp-request content sc-inc-gpc(2,2)\n    default_backend st', 0, ["W parsing [{f}:15] : a 'tcp-request' rule placed after an 'http-request' rule will still be processed before.", "W parsing [{f}:16] : a 'tcp-request' rule placed after an 'http-request' rule will still be processed before.", "W parsing [{f}:17] : a 'tcp-request' rule placed after an 'http-request' rule will still be processed before."]),
    ('FE http-request sc-inc-gpc(1)', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request sc-inc-gpc(1)' rule : Missing gpc ID 'sc-inc-gpc(1)'. Expects sc-inc-gpc(<GPC ID>,<Track ID>)."]),
    ('FE http-request sc-inc-gpc', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request sc-inc-gpc' rule : invalid gpc ID 'sc-inc-gpc'. Expects sc-inc-gpc(<GPC ID>,<Track ID>)."]),
    ('FE http-request sc-inc-gpc(100,0)', 0, []),
    ('FE http-request sc-inc-gpc(99,0)', 0, []),
    ('FE http-request sc-inc-gpc(1,3)', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request sc-inc-gpc(1,3)' rule : invalid stick table track ID 'sc-inc-gpc(1,3)'. The max allowed ID is 2."]),
    ('FE http-request sc-inc-gpc(a,0)', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request sc-inc-gpc(a,0)' rule : Missing gpc ID 'sc-inc-gpc(a,0)'. Expects sc-inc-gpc(<GPC ID>,<Track ID>)."]),
    ('FE http-request sc-inc-gpc(1,a)', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request sc-inc-gpc(1,a)' rule : invalid stick table track ID 'sc-inc-gpc(1,a)'. Expects sc-inc-gpc(<GPC ID>,<Track ID>)."]),
    ('FE http-request sc-inc-gpc(1,0', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request sc-inc-gpc(1,0' rule : invalid stick table track ID 'sc-inc-gpc(1,0'. Expects sc-inc-gpc(<GPC ID>,<Track ID>)."]),
    ('FE http-request sc-inc-gpc(1,0)x', 0, []),
    ('FE http-request sc-inc-gpc(-1,0)', 0, []),
    ('FE http-request sc-set-gpt(1,0)', 0, []),
    ('FE http-request sc-set-gpt(1)', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request sc-set-gpt(1)' rule : Missing gpt ID 'sc-set-gpt(1)'. Expects sc-set-gpt(<GPT ID>,<Track ID>)."]),
    ('FE http-request sc-set-gpt(1,0) nosuchfetch', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request sc-set-gpt(1,0)' rule : unknown fetch method 'nosuchfetch'."]),
    ('FE http-request sc-set-gpt(100,0) 1', 0, []),
    ('FE http-request sc-set-gpt(1,3) 1', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request sc-set-gpt(1,3)' rule : invalid stick table track ID 'sc-set-gpt(1,3)'. The max allowed ID is 2."]),
    ('FE http-request sc-set-gpt 1', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request sc-set-gpt' rule : invalid gpt ID 'sc-set-gpt'. Expects sc-set-gpt(<GPT ID>,<Track ID>)."]),
    ('FE http-request sc-set-gpt(1,0) 1 if TRUE', 0, []),
    ('FE http-request sc-set-gpt(1,0) -1', 0, []),
    ('FE http-request sc-set-gpt(1,0) 12abc', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request sc-set-gpt(1,0)' rule : unknown fetch method '12abc'."]),
    ('FE http-after-response sc-inc-gpc(1,0)', 1, ["parsing [{f}:8]: 'http-after-response' expects 'ot-group', 'add-header', 'allow', 'capture', 'del-header', 'replace-header', 'replace-value', 'set-header', 'set-status', 'strict-mode', 'set-var-fmt(*)', 'set-var(*)', 'unset-var(*)', but got 'sc-inc-gpc(1,0)'."]),
    ('FE http-request sc-inc-gpc(1,0) foo', 1, ["parsing [{f}:8]: 'http-request sc-inc-gpc(1,0)' expects either 'if' or 'unless' followed by a condition but found 'foo'."]),
    ('FE http-request set-var(txn.a) sc_get_gpc(1)', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request set-var(txn.a)' rule : fetch method 'sc_get_gpc' : missing arguments (got 1/2), type 'integer' expected."]),
    ('FE http-request set-var(txn.a) sc_get_gpc(1,0)', 0, []),
    ('FE http-request set-var(txn.a) sc_get_gpc(100,0)', 0, []),
    ('FE http-request set-var(txn.a) sc_get_gpc(1,3)', 0, []),
    ('FE http-request set-var(txn.a) sc_get_gpc(1,0,nosuch)', 1, ["parsing [{f}:8]: unable to find table 'nosuch' referenced in arg 3 of sample fetch keyword 'sc_get_gpc' in http-request expression in proxy 'fe'."]),
    ('FE http-request set-var(txn.a) sc_get_gpt(a,0)', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request set-var(txn.a)' rule : fetch method 'sc_get_gpt' : failed to parse 'a' as type 'integer' at position 1."]),
    ('FE http-request set-var(txn.a) sc_gpc_rate(1,0,fe)', 1, ["parsing [{f}:8]: unable to find table 'fe' referenced in arg 3 of sample fetch keyword 'sc_gpc_rate' in http-request expression in proxy 'fe'."]),
    ('FE http-request set-var(txn.a) sc_inc_gpc(1,0,fe)', 1, ["parsing [{f}:8]: unable to find table 'fe' referenced in arg 3 of sample fetch keyword 'sc_inc_gpc' in http-request expression in proxy 'fe'."]),
    ('FE http-request set-var(txn.a) sc_clr_gpc(1,0,fe)', 1, ["parsing [{f}:8]: unable to find table 'fe' referenced in arg 3 of sample fetch keyword 'sc_clr_gpc' in http-request expression in proxy 'fe'."]),
    ('FE http-request set-var(txn.a) src_gpc_rate(1)', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request set-var(txn.a)' rule : fetch method 'src_gpc_rate' : missing arguments (got 1/2), type 'table' expected."]),
    ('FE http-request set-var(txn.a) src_inc_gpc(1)', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request set-var(txn.a)' rule : fetch method 'src_inc_gpc' : missing arguments (got 1/2), type 'table' expected."]),
    ('FE http-request set-var(txn.a) src_clr_gpc(1)', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request set-var(txn.a)' rule : fetch method 'src_clr_gpc' : missing arguments (got 1/2), type 'table' expected."]),
    ('FE http-request set-var(txn.a) src_clr_gpc(1,fe)', 1, ["parsing [{f}:8]: unable to find table 'fe' referenced in arg 2 of sample fetch keyword 'src_clr_gpc' in http-request expression in proxy 'fe'."]),
    ('FE http-request set-var(txn.a) src_get_gpt(-1,fe)', 1, ["parsing [{f}:8]: unable to find table 'fe' referenced in arg 2 of sample fetch keyword 'src_get_gpt' in http-request expression in proxy 'fe'."]),
    ('FE http-request set-var(txn.a) src,table_gpc(1)', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request set-var(txn.a)' rule : invalid arg 2 in converter 'table_gpc' : missing arguments (got 1/2), type 'table' expected."]),
    ('FE http-request set-var(txn.a) src,table_gpc(1,fe)', 1, ["parsing [{f}:8]: unable to find table 'fe' referenced in arg 2 of conversion keyword 'table_gpc' for sample fetch keyword 'src' in http-request expression in proxy 'fe'."]),
    ('FE http-request set-var(txn.a) src,table_gpt(1,fe)', 1, ["parsing [{f}:8]: unable to find table 'fe' referenced in arg 2 of conversion keyword 'table_gpt' for sample fetch keyword 'src' in http-request expression in proxy 'fe'."]),
    ('FE http-request set-var(txn.a) src,table_gpc_rate(1,fe)', 1, ["parsing [{f}:8]: unable to find table 'fe' referenced in arg 2 of conversion keyword 'table_gpc_rate' for sample fetch keyword 'src' in http-request expression in proxy 'fe'."]),
    ('FE http-request set-var(txn.a) src,table_gpc_rate(fe)', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request set-var(txn.a)' rule : invalid arg 1 in converter 'table_gpc_rate' : failed to parse 'fe' as type 'integer' at position 1."]),
    ('FE http-request set-var(txn.a) sc0_get_gpc(1)', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request set-var(txn.a)' rule : unknown fetch method 'sc0_get_gpc'."]),
    ('FE http-request set-var(txn.a) sc_get_gpc0(3)', 0, []),
    ('FE http-request set-var(txn.a) sc_get_gpc(1,0,fe,x)', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request set-var(txn.a)' rule : fetch method 'sc_get_gpc' : expected ')' before ',x)'."]),
    ('FE stick-table type ip size 1k store gpc0\n    http-request set-var(txn.a) sc_get_gpc(1,0)', 0, []),
    ('FE http-request set-var(txn.a) sc_get_gpc(1,0) if { sc_get_gpc(0,1) gt 0 } { sc_gpc_rate(0,1,fe) ge 1 }', 1, ["parsing [{f}:8]: unable to find table 'fe' referenced in arg 3 of ACL keyword 'sc_gpc_rate' in proxy 'fe'."]),
    ('FE http-request set-var(txn.a) sc_get_gpc0(0)', 0, []),
    ('FE http-request set-var(txn.a) sc_get_gpc0(2)', 0, []),
    ('FE http-request set-var(txn.a) sc_get_gpc0(5)', 0, []),
    ('FE http-request set-var(txn.a) sc_http_req_rate(3)', 0, []),
    ('FE http-request set-var(txn.a) sc_get_gpc0(-1)', 0, []),
    ('backend st\n    stick-table type ip size 1k store http_req_rate(10s)\nFE http-request track-sc0 src table st\n    http-request deny if { sc_http_req_rate(0) gt 10 }', 0, []),
    ('backend st\n    stick-table type ip size 1k store http_req_rate(10s)\nFE http-request track-sc0 src table st\n    http-request deny if { sc0_http_req_rate gt 10 }', 0, []),
    ('backend st\n    stick-table type ip size 1k store http_req_rate(10s)\nFE http-request track-sc0 src table st\n    http-request deny if { src_http_req_rate gt 10 }', 1, ["parsing [{f}:11]: unable to find table 'fe' referenced in arg 1 of ACL keyword 'src_http_req_rate' in proxy 'fe'."]),
    ('backend st\n    stick-table type ip size 1k store http_req_rate(10s)\nFE http-request deny if { src_http_req_rate(st) gt 10 }', 0, []),
    ('FE tcp-request connection sc-inc-gpc(1)', 1, ["parsing [{f}:8] : Missing gpc ID 'sc-inc-gpc(1)'. Expects sc-inc-gpc(<GPC ID>,<Track ID>)"]),
    ('FE tcp-request content sc-inc-gpc(1,3)', 1, ["parsing [{f}:8] : invalid stick table track ID 'sc-inc-gpc(1,3)'. The max allowed ID is 2"]),
    ('FE tcp-request session sc-set-gpt(x,0) 1', 1, ["parsing [{f}:8] : Missing gpt ID 'sc-set-gpt(x,0)'. Expects sc-set-gpt(<GPT ID>,<Track ID>)"]),
    ('FE tcp-request connection sc-inc-gpc(1,0) foo', 1, ["parsing [{f}:8] : 'tcp-request connection sc-inc-gpc(1,0)' only accepts 'if' or 'unless', in frontend 'fe' (got 'foo')"]),
    ('FE tcp-request connection sc-inc-gpc0(0) foo', 1, ["parsing [{f}:8] : 'tcp-request connection sc-inc-gpc0(0)' only accepts 'if' or 'unless', in frontend 'fe' (got 'foo')"]),
    ('FE http-request sc-inc-gpc0(0) foo', 1, ["parsing [{f}:8]: 'http-request sc-inc-gpc0(0)' expects either 'if' or 'unless' followed by a condition but found 'foo'."]),
    ('FE http-request sc-set-gpt(1,0) 1 foo', 1, ["parsing [{f}:8]: 'http-request sc-set-gpt(1,0)' expects either 'if' or 'unless' followed by a condition but found 'foo'."]),
    ('FE tcp-request connection sc-set-gpt(1,0) 1 foo', 1, ["parsing [{f}:8] : 'tcp-request connection sc-set-gpt(1,0)' only accepts 'if' or 'unless', in frontend 'fe' (got 'foo')"]),
    ('FE http-request sc-inc-gpc(,)', 0, []),
    ('FE http-request sc-inc-gpc(1,-1)', 0, []),
    ('FE http-response sc-set-gpt(1,0) res.hdr(x),nosuchconv', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-response sc-set-gpt(1,0)' rule : unknown converter 'nosuchconv'."]),
    ('FE http-request sc-set-gpt(1,0) res.hdr(x)', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request sc-set-gpt(1,0)' rule : fetch method 'res.hdr(x)' extracts information from 'HTTP response headers', none of which is available here."]),
    ('FE tcp-request connection sc-set-gpt(1,0) req.hdr(x)', 1, ['parsing [{f}:8] : internal error, unexpected rule->from=0, please report this bug!']),
    ('FE http-request sc-set-gpt0(0) req.hdr(x) foo', 1, ["parsing [{f}:8]: 'http-request sc-set-gpt0(0)' expects either 'if' or 'unless' followed by a condition but found 'foo'."]),
    ('FE http-request sc-inc-gpcx(1,0)', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request sc-inc-gpcx(1,0)' rule : invalid gpc ID 'sc-inc-gpcx(1,0)'. Expects sc-inc-gpc(<GPC ID>,<Track ID>)."]),
    ('FE http-request sc-set-gpt0(1,0) 1', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request sc-set-gpt0(1,0)' rule : invalid stick table track ID 'sc-set-gpt0(1,0)'. Expects sc-set-gpt0(<Track ID>)."]),
    ('STORE gpc(3', 1, ["parsing [{f}:7] : stick-table: missing closing parenthesis after store option 'gpc'."]),
    ('STORE gpc(3,4)', 1, ["parsing [{f}:7] : stick-table: unexpected argument to store option 'gpc'."]),
    ('STORE gpc(3)x', 2, []),
    ('STORE gpc_rate(2,10s', 1, ["parsing [{f}:7] : stick-table: missing closing parenthesis after store option 'gpc_rate'."]),
    ('STORE gpc_rate(2x,10s)', 2, []),
    ('STORE gpc_rate(2,0)', 2, []),
    ('STORE gpc_rate(0)', 1, ["parsing [{f}:7] : stick-table: array size is out of allowed range (1-100) for store option 'gpc_rate'."]),
    ('STORE gpc(2,)', 1, ["parsing [{f}:7] : stick-table: unexpected argument to store option 'gpc'."]),
    ('STORE http_req_rate(10s3),gpc_rate(2,5sx)', 2, ["W unexpected character '3' after the timer value '10s3', only (us=microseconds,ms=milliseconds,s=seconds,m=minutes,h=hours,d=days) are supported. This will be reported as an error in next versions.", "W unexpected character 'x' after the timer value '5sx', only (us=microseconds,ms=milliseconds,s=seconds,m=minutes,h=hours,d=days) are supported. This will be reported as an error in next versions."]),
    ('STORE conn_cnt(', 1, ["parsing [{f}:7] : stick-table: missing closing parenthesis after store option 'conn_cnt'."]),
    ('STORE http_req_rate(10s,3)', 2, []),
    ('STORE http_req_rate(0)', 2, []),
    ('STORE http_req_rate(10s)x', 2, []),
    ('STORE gpc(2),,conn_cnt', 1, ["parsing [{f}:7] : stick-table: unknown store option ''."]),
    ('STORE gpc(2),gpc(0)', 2, ["W parsing [{f}:7]: stick-table: store option 'gpc' already enabled, ignored."]),
    ('STORE conn_cnt,conn_cnt(1)', 2, ["W parsing [{f}:7]: stick-table: store option 'conn_cnt' already enabled, ignored."]),
    ('STORE gpc(+2)', 2, []),
    ('STORE gpc(0x2)', 1, ["parsing [{f}:7] : stick-table: array size is out of allowed range (1-100) for store option 'gpc'."]),
    ('STORE gpc0_rate(1s),gpc(2)', 2, []),
    ('STORE gpc(2),gpc1_rate(1s)', 2, []),
    ('FE http-request sc-set-gpt0(3) 1', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request sc-set-gpt0(3)' rule : invalid stick table track ID 'sc-set-gpt0(3)'. The max allowed ID is 2."]),
    ('FE http-request sc-set-gpt0x 1', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request sc-set-gpt0x' rule : invalid stick table track ID 'sc-set-gpt0x'. Expects sc-set-gpt0(<Track ID>)."]),
    ('FE http-request sc-set-gpt0(1 1', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request sc-set-gpt0(1' rule : invalid stick table track ID 'sc-set-gpt0(1'. Expects sc-set-gpt0(<Track ID>)."]),
    ('FE tcp-request content sc-set-gpt0(5) 1', 1, ["parsing [{f}:8] : invalid stick table track ID 'sc-set-gpt0(5)'. The max allowed ID is 2"]),
    ('FE http-request sc-inc-gpc1(x)', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request sc-inc-gpc1(x)' rule : invalid stick table track ID. Expects sc-inc-gpc1(x)(<Track ID>)."]),
    ('FE http-request sc-set-gpt0(1,0) 1', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request sc-set-gpt0(1,0)' rule : invalid stick table track ID 'sc-set-gpt0(1,0)'. Expects sc-set-gpt0(<Track ID>)."]),
    ('FE tcp-request connection sc-inc-gpc0(3)', 1, ['parsing [{f}:8] : invalid stick table track ID. The max allowed ID is 2']),
    ('FE http-request sc-inc-gpc0(1x)', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request sc-inc-gpc0(1x)' rule : invalid stick table track ID. Expects sc-inc-gpc0(1x)(<Track ID>)."]),
    ('FE http-request sc-inc-gpc0(1', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request sc-inc-gpc0(1' rule : invalid stick table track ID. Expects sc-inc-gpc0(1(<Track ID>)."]),
    ('FE http-request sc-inc-gpc0x', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request sc-inc-gpc0x' rule : invalid stick table track ID. Expects sc-inc-gpc0x(<Track ID>)."]),
    ('FE tcp-request connection sc-set-gpt0(0) src_port', 1, ['parsing [{f}:8] : internal error, unexpected rule->from=0, please report this bug!']),
    ('FE tcp-request session sc-set-gpt(0,0) src_port', 0, []),
    ('FE tcp-request connection sc-set-gpt(0,0) 5', 0, []),
    ('FE http-response sc-set-gpt(0,0) req.hdr(x)', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-response sc-set-gpt(0,0)' rule : fetch method 'req.hdr(x)' extracts information from 'HTTP request headers', none of which is available here."]),
    ('FE http-request sc-set-gpt0(0) res.hdr(x)', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request sc-set-gpt0(0)' rule : fetch method 'res.hdr(x)' extracts information from 'HTTP response headers', none of which is available here."]),
    ('FE tcp-request content sc-set-gpt0(0) res.hdr(x)', 1, ["parsing [{f}:8] : fetch method 'res.hdr(x)' extracts information from 'HTTP response headers', none of which is available here"]),
    ('FE http-request track-sc0 res.hdr(x)', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request track-sc0' rule : fetch method 'res.hdr(x)' extracts information from 'HTTP response headers', none of which is available here."]),
    ('FE tcp-request connection track-sc0', 1, ["parsing [{f}:8] : 'tcp-request connection track-sc0' : missing fetch method"]),
    ('FE tcp-request content sc-set-gpt(0,0) nosuch', 1, ["parsing [{f}:8] : unknown fetch method 'nosuch'"]),
    ('FE tcp-request content sc-inc-gpc', 1, ["parsing [{f}:8] : invalid gpc ID 'sc-inc-gpc'. Expects sc-inc-gpc(<GPC ID>,<Track ID>)"]),
    ('FE tcp-request connection track-sc0 req.hdr(x)', 1, ["parsing [{f}:8] : 'tcp-request connection track-sc0' : fetch method 'req.hdr(x)' extracts information from 'HTTP request headers', none of which is available here"]),
    ('FE tcp-request content track-sc0 res.hdr(x)', 1, ["parsing [{f}:8] : 'tcp-request content track-sc0' : fetch method 'res.hdr(x)' extracts information from 'HTTP response headers', none of which is available here"]),
    ('FE tcp-request session track-sc1 req.len', 1, ["parsing [{f}:8] : 'tcp-request session track-sc1' : fetch method 'req.len' extracts information from 'request buffer', none of which is available here"]),
    ('FE http-response track-sc0 req.hdr(x)', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-response track-sc0' rule : fetch method 'req.hdr(x)' extracts information from 'HTTP request headers', none of which is available here."]),
    ('FE http-request track-sc0 src foo', 1, ["parsing [{f}:8]: 'http-request track-sc0' expects either 'if' or 'unless' followed by a condition but found 'foo'."]),
    ('FE tcp-request connection track-sc-1 src', 1, ["parsing [{f}:8] : 'tcp-request connection track-sc-1' : Wrong track-sc number '-1'"]),
    ('FE http-request track-sc+1 src', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request track-sc+1' rule : Wrong track-sc number '+1'."]),
    ('FE http-request track-sc99999999999999999999 src', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request track-sc99999999999999999999' rule : 4294967295 track-sc number exceeding 2 (MAX_SESS_STKCTR-1) value."]),
    ('FE tcp-request connection track-scx src', 1, ["parsing [{f}:8] : 'tcp-request connection track-scx' : Wrong track-sc number 'x'"]),
    ('FE tcp-request connection track-sc src', 1, ["Proxy 'fe': unable to find table 'fe' referenced by track-sc0."]),
    ('FE tcp-request content track-sc10 src', 1, ["parsing [{f}:8] : 'tcp-request content track-sc10' : 10 track-sc number exceeding 2 (MAX_SESS_STKCTR-1) value"]),
    ('FE http-request track-sc0x src', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-request track-sc0x' rule : Wrong track-sc number '0x'."]),
    ('FE http-request track-sc src', 1, ["Proxy 'fe': unable to find table 'fe' referenced by track-sc0."]),
    ('FE http-response track-sc3 src', 1, ["parsing [{f}:8] : error detected in frontend 'fe' while parsing 'http-response track-sc3' rule : 3 track-sc number exceeding 2 (MAX_SESS_STKCTR-1) value."]),
    ('STORE gpc(2)(3)', 2, []),
    ('STORE gpc(2)(0)', 1, ["parsing [{f}:7] : stick-table: array size is out of allowed range (1-100) for store option 'gpc'."]),
    ('STORE gpc(2)(3', 1, ["parsing [{f}:7] : stick-table: missing closing parenthesis after store option 'gpc'."]),
]


def _messages(err: str, path: str) -> list[str]:
    out = []
    for line in err.splitlines():
        mt = re.match(r"\[(ALERT|WARNING)\]\s+\(\d+\) : config : (.*)", line)
        if mt and not mt.group(2).startswith(("Error(s) found", "Fatal errors")):
            out.append(("W " if mt.group(1) == "WARNING" else "")
                       + mt.group(2).replace(path, "{f}"))
    return out


@pytest.mark.parametrize(("body", "rc", "lines"), CHECKS,
                         ids=[f"{i}-{b[:40]}" for i, (b, _, _) in enumerate(CHECKS)])
def test_configuration_checks_like_haproxy(body: str, rc: int, lines: list[str],
                                           tmp_path: Any, capsys: Any) -> None:
    for short, long in _EXPAND:
        body = body.replace(short, long)
    path = str(tmp_path / "gpc.cfg")
    with open(path, "w") as f:
        f.write(CHECK_HEAD + body + "\n")
    got = check_mode(parse_args(["-c", "-f", path]))
    assert (got, _messages(capsys.readouterr().err, path)) == (rc, lines)
    if os.path.exists(HAPROXY):
        h = subprocess.run([HAPROXY, "-c", "-f", path], capture_output=True, text=True,
                           timeout=30, stdin=subprocess.DEVNULL)
        assert (h.returncode, _messages(h.stderr, path)) == (rc, lines)


# ---------------------------------------------------------------- HTTP traffic

SAMPLES = (
    "sc_get_gpc(0,0) sc_get_gpc(1,0) sc_get_gpc(5,0) sc_gpc_rate(1,0) sc_get_gpt(1,0) "
    "sc_get_gpt(0,0) sc_get_gpc0(0) sc_get_gpc1(0) sc_gpc0_rate(0) sc_get_gpt0(0) "
    "sc_get_gpc(0,0,other) src_get_gpc(1,fe) src_gpc_rate(1,fe) src_get_gpt(1,fe) "
    "src_get_gpc(1,other) req.hdr(x-client),table_gpc(1,fe) "
    "req.hdr(x-client),table_gpc_rate(1,fe) req.hdr(x-client),table_gpt(1,fe) "
    "sc_get_gpc(2,1) sc_get_gpc(9,0)")
# after tests.test_track_sc.HEAD (a stats socket, mode http, frontend `fe`)
HTTP_RULES = """    stick-table type ip size 1k expire 30s store gpc(3),gpc_rate(2,10s),gpt(2),http_req_cnt
    http-request track-sc0 src
    http-request track-sc1 src table other
    http-request sc-inc-gpc(1,0) if {{ path /inc }}
    http-request sc-inc-gpc(1,0) if {{ path /inc }}
    http-request sc-inc-gpc(0,0) if {{ path /inc }}
    http-request sc-inc-gpc(2,0) if {{ path /inc2 }}
    http-request sc-inc-gpc(7,0) if {{ path /inc }}
    http-request sc-set-gpt(1,0) 9 if {{ path /inc }}
    http-request sc-set-gpt(0,0) -3 if {{ path /inc }}
    http-request sc-set-gpt(5,0) 4 if {{ path /inc }}
    http-request sc-inc-gpc0(0) if {{ path /legacy }}
    http-request sc-inc-gpc1(0) if {{ path /legacy }}
    http-request sc-set-gpt0(0) 6 if {{ path /legacy }}
    http-request sc-inc-gpc(0,1) if {{ path /other }}
    http-request set-var(txn.a) sc_inc_gpc(0,0) if {{ path /fetch }}
    http-request set-var(txn.b) src_inc_gpc(1,fe) if {{ path /fetch }}
    http-request set-var(txn.c) sc_clr_gpc(2,0) if {{ path /fetch }}
    http-request set-var(txn.d) src_clr_gpc(0,fe) if {{ path /fetch }}
    http-request set-var(txn.e) sc_inc_gpc(2,1) if {{ path /fetch }}
    http-request set-var(txn.f) sc_inc_gpc(8,0) if {{ path /fetch }}
    http-request set-header X-F "%[var(txn.a)] %[var(txn.b)] %[var(txn.c)] %[var(txn.d)] %[var(txn.e)] %[var(txn.f)]" if {{ path /fetch }}
    http-request sc-set-gpt0(1) -3 if {{ path /fetch }}
    http-request set-header X-V "{samples}"
    default_backend be
backend be
    server s1 127.0.0.1:@@s1@@
backend other
    stick-table type ip size 1k store gpc0,gpt0
"""
PATHS = ("/", "/inc", "/inc2", "/legacy", "/other", "/fetch", "/")
CLI = ("show table fe", "show table other", "set table fe key 127.0.0.1 data.gpc(1) 5",
       "set table fe key 127.0.0.1 data.gpc1 7", "set table fe key 127.0.0.1 data.gpt1 8",
       "set table fe key 127.0.0.1 data.gpc_rate 8", "set table fe key 127.0.0.1 data.gpc 11",
       "set table fe key 127.0.0.1 data.gpt 12", "show table fe",
       "show table fe data.gpc gt 0", "show table fe data.gpc1 gt 0",
       "show table fe data.gpc_rate gt 0", "clear table fe data.gpc gt 100",
       "show table fe data.gpc lt 100")

# HAProxy 2.6.12: the samples each request showed its server (an empty one: no sample)
WANT_SAMPLES = [
    "0 0  0 0 0 0 0 0 0  0 0 0  0 0 0  ",
    "1 2  2 9 4294967293 1 2 1 4294967293  2 2 9  2 2 9  ",
    "1 2  2 9 4294967293 1 2 1 4294967293  2 2 9  2 2 9  ",
    "2 3  3 9 6 2 3 2 6  3 3 9  3 3 9  ",
    "2 3  3 9 6 2 3 2 6  3 3 9  3 3 9  ",
    "0 4  4 9 6 0 4 3 6  4 4 9  4 4 9  ",
    "0 4  4 9 6 0 4 3 6  4 4 9  4 4 9  ",
]
# ... the update fetches' answers on /fetch (sc_inc_gpc, src_inc_gpc, sc_clr_gpc,
# src_clr_gpc, then two on what is not stored: a legacy table, an index past the end)
WANT_UPDATES = ["3 4 1 3 0 0"]
_ENTRY = ("key=127.0.0.1 use=0 http_req_cnt=7 gpt0={} gpt1=9 gpc0={} gpc1=4 gpc2=0 "
          "gpc0_rate(10000)={} gpc1_rate(10000)=4")
WANT_CLI = [
    "# table: fe, type: ip, size:1024, used:1\n" + _ENTRY.format(6, 0, 3) + "\n\n",
    "# table: other, type: ip, size:1024, used:1\nkey=127.0.0.1 use=0 gpt0=4294967293 "
    "gpc0=0\n\n",
    "Unknown data type\n\n", "Data type not stored in this table\n\n",
    "Unknown data type\n\n", "\n", "\n", "\n",
    "# table: fe, type: ip, size:1024, used:1\n" + _ENTRY.format(12, 11, 8) + "\n\n",
    "# table: fe, type: ip, size:1024, used:1\n" + _ENTRY.format(12, 11, 8) + "\n\n",
    "Filter entry #1: Data type not stored in this table\n\n",
    "# table: fe, type: ip, size:1024, used:1\n" + _ENTRY.format(12, 11, 8) + "\n\n",
    "\n",
    "# table: fe, type: ip, size:1024, used:1\n" + _ENTRY.format(12, 11, 8) + "\n\n",
]


def _http_run(kind: str) -> tuple[list[str], list[str], list[str]]:
    sock = os.path.join(tempfile.mkdtemp(prefix="lbtest-gpc-"), "s.sock")
    samples = " ".join(f"%[{s}]" for s in SAMPLES.split())
    text = HEAD.format(sock=sock) + HTTP_RULES.format(samples=samples)
    with RawBackend(answer_ok) as srv:
        px = (LbProcess(text, ports={"s1": srv.port}) if kind == "lb"
              else Haproxy(text, ports={"s1": srv.port}, single_thread=True))
        with px:
            wait_socket(sock)
            for path in PATHS:
                with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
                    c.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n"
                              "X-Client: 127.0.0.1\r\n\r\n".encode())
                    assert read_response(c).startswith(b"HTTP/1.1 200 OK\r\n")
            time.sleep(0.1)
            cli = [re.sub(r"0x[0-9a-f]+: | exp=\d+", "", query(sock, q)) for q in CLI]
        values: dict[bytes, list[str]] = {b"x-v": [], b"x-f": []}
        for head in srv.received:
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b": ")
                if name.lower() in values:
                    values[name.lower()].append(value.decode())
    return values[b"x-v"], values[b"x-f"], cli


@pytest.mark.parametrize("kind", KINDS)
def test_arrays_in_http_rules_fetches_and_cli_like_haproxy(kind: str) -> None:
    """Array elements counted and set by the actions (an index past the array, or a
    table with only the legacy types, changes nothing), the legacy fetches and
    actions on the first elements, the update fetches' answers, a tag stored as an
    unsigned 32-bit integer, and `show`/`set`/`clear table` with `data.gpc`..."""
    samples, updates, cli = _http_run(kind)
    assert samples == WANT_SAMPLES
    assert updates == WANT_UPDATES
    assert cli == WANT_CLI


# ---------------------------------------------------------------- TCP rules and rate limit

TCP_CONFIG = """
global
    stats socket {sock} level admin
defaults
    mode tcp
    timeout connect 5s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:@@fe@@
    stick-table type ip size 1k expire 30s store gpc(2),gpt(1),gpc_rate(1,10s)
    tcp-request connection track-sc0 src
    tcp-request connection sc-inc-gpc(0,0)
    tcp-request session sc-set-gpt(0,0) 7
    tcp-request content sc-inc-gpc(1,0)
    tcp-request content sc-inc-gpc(1,0) if {{ sc_get_gpc(0,0) gt 1 }}
    default_backend bt
backend bt
    server s1 127.0.0.1:@@s1@@
"""


def _echo_once(c: socket.socket, be: RawBackend) -> None:
    data = c.recv(100)
    be.received.append(data)
    c.sendall(data)
    c.close()


def _tcp_table(kind: str) -> str:
    sock = os.path.join(tempfile.mkdtemp(prefix="lbtest-gpc-"), "s.sock")
    text = TCP_CONFIG.format(sock=sock)
    with RawBackend(_echo_once) as srv:
        px = (LbProcess(text, ports={"s1": srv.port}) if kind == "lb"
              else Haproxy(text, ports={"s1": srv.port}, single_thread=True))
        with px:
            wait_socket(sock)
            for _ in range(2):
                with socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
                    c.sendall(b"ping")
                    assert c.recv(100) == b"ping"
            time.sleep(0.2)
            return re.sub(r"0x[0-9a-f]+: | exp=\d+", "", query(sock, "show table fe"))


@pytest.mark.parametrize("kind", KINDS)
def test_tcp_rules_update_the_arrays_like_haproxy(kind: str) -> None:
    """Two connections: gpc(0) counted by the connection rule, gpt(0) set by the
    session rule, gpc(1) once by the first connection's content rule and twice by the
    second's (its gpc(0) is 2 by then)."""
    assert _tcp_table(kind) == (
        "# table: fe, type: ip, size:1024, used:1\n"
        "key=127.0.0.1 use=0 gpt0=7 gpc0=2 gpc1=3 gpc0_rate(10000)=2\n\n")


RATE_LIMIT = """
defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
backend per_client
    stick-table type ip size 1k expire 30s store http_req_rate(10s),gpc(1)
frontend fe
    bind 127.0.0.1:@@fe@@
    http-request track-sc0 src table per_client
    http-request sc-inc-gpc(0,0) if {{ sc_http_req_rate(0) gt 2 }}
    http-request deny deny_status 403 if {{ sc_get_gpc(0,0,per_client) gt 1 }}
    http-request deny deny_status 429 if {{ sc0_http_req_rate gt 2 }}
    default_backend be
backend be
    server s1 127.0.0.1:@@s1@@
"""


@pytest.mark.parametrize("kind", KINDS)
def test_rate_limit_with_the_table_in_another_backend(kind: str) -> None:
    """The usual layout: the frontend has no table of its own and reads the tracked
    entry's (lb once refused `sc_http_req_rate(0)` there). Each request past the
    second is marked in gpc(0) and refused with 429, or with 403 once two were marked."""
    with RawBackend(answer_ok) as srv:
        px = (LbProcess(RATE_LIMIT.format(), ports={"s1": srv.port}) if kind == "lb"
              else Haproxy(RATE_LIMIT.format(), ports={"s1": srv.port}, single_thread=True))
        with px, socket.create_connection(("127.0.0.1", px.ports["fe"]), timeout=5) as c:
            got = []
            for _ in range(5):
                c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                got.append(read_response(c).split(b"\r\n", 1)[0])
    assert got == [b"HTTP/1.1 200 OK"] * 2 + [b"HTTP/1.1 429 Too Many Requests"] + [
        b"HTTP/1.1 403 Forbidden"] * 2


# ---------------------------------------------------------------- the table itself


def test_elements_wrap_as_unsigned_32_bit_integers() -> None:
    spec = StickTableSpec("integer", 10, 0, None, arrays=(("gpt", 2, None),
                                                          ("gpc", 1, None),
                                                          ("gpc_rate", 1, 1000)))
    t = StickTable("t", spec)
    assert t.stores == ("gpt0", "gpt1", "gpc0", "gpc0_rate")
    assert (t.element("gpc", 0), t.element("gpc", 1), t.element("gpc_rate", 0),
            t.element("gpt", -1)) == ("gpc0", None, "gpc0_rate", None)
    e = t.get_or_create(1, 0.0)
    assert e is not None
    t.set_value(e, "gpt1", -1)
    t.set_value(e, "gpc0", 2**32 - 1)
    t.add(e, "gpc0", 0.0)
    assert (t.read(e, "gpt1", 0.0), t.read(e, "gpc0", 0.0)) == (2**32 - 1, 0)
    assert (t.cli_type("gpc"), t.cli_type("gpc0"), t.cli_type("gpc_rate"),
            t.cli_type("gpt")) == ("gpc0", None, "gpc0_rate", "gpt0")


def test_a_negative_slot_updates_nothing() -> None:
    """HAProxy 2.6.12 loads `sc-inc-gpc(0,-1)` and `sc-inc-gpc0(-1)`; slot -1 is not
    the last slot (it once read as slot 2 in lb)."""
    t = StickTable("t", StickTableSpec("integer", 10, 0, None, stores=(("gpc0", None),)))
    e = t.get_or_create(1, 0.0)

    class Rt:
        @staticmethod
        def clock() -> float:
            return 0.0

    class Ctx:
        stkctr = [None, None, (t, e, 1)]
        conn = None
        rt = Rt()

    track.update(Ctx(), -1, "gpc0", None)
    track.update(Ctx(), -1, "gpc0", 5)
    assert t.read(e, "gpc0", 0.0) == 0
    track.update(Ctx(), 2, "gpc0", None)
    assert t.read(e, "gpc0", 0.0) == 1
