"""The immutable, compiled configuration model.

Owns: frozen, slotted dataclasses describing a loaded configuration (global
settings, frontends, backends, servers, rules, checks, logging). No behaviour, no
counters, no references to runtime state (see ``lb.state`` for that).

Conventions:
- times are float **seconds** (``None`` = unset / infinite);
- header names used for matching are lower-cased ``bytes``;
- ``Origin`` records file:line of the statement that produced an object;
- conditions (``cond``) are compiled objects from ``lb.match.acl`` (they expose
  ``evaluate(ctx) -> bool``) and ``cond_text`` keeps the source words for display;
- formats with ``%[...]`` / ``%x`` variables are kept as source text here
  (``*_fmt`` fields) and compiled by the layer that renders them.

Must not import: anything outside ``lb.match`` types and the standard library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

Mode = Literal["http", "tcp"]
Capability = Literal["defaults", "frontend", "backend", "listen"]

EMPTY_MAP: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a statement came from."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


NO_ORIGIN = Origin("<builtin>", 0)


# --------------------------------------------------------------------------- timeouts


@dataclass(frozen=True, slots=True)
class Timeouts:
    """The eleven HAProxy timeouts, in seconds (None = not set)."""

    client: float | None = None
    server: float | None = None
    connect: float | None = None
    check: float | None = None
    queue: float | None = None
    http_keep_alive: float | None = None
    http_request: float | None = None
    tunnel: float | None = None
    tarpit: float | None = None
    client_fin: float | None = None
    server_fin: float | None = None


# --------------------------------------------------------------------------- logging


@dataclass(frozen=True, slots=True)
class RingServer:
    """A `server` of a `ring` section: a syslog server over TCP (or a unix stream)."""

    name: str
    host: str  # an address, or a path when port is None
    port: int | None
    log_proto: Literal["legacy", "octet-count"] = "legacy"


@dataclass(frozen=True, slots=True)
class Ring:
    """A `ring` section: a buffer of formatted log lines (read by `show events`)
    forwarded to its servers. A `log tcp@...` line makes an implicit one."""

    name: str
    description: str = ""
    format: str = "raw"
    maxlen: int = 16384
    size: int = 16384
    timeout_connect: float | None = None
    timeout_server: float | None = None
    servers: tuple[RingServer, ...] = ()
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True, slots=True)
class Nameserver:
    """One `nameserver <name> <addr>:<port>` of a `resolvers` section (UDP)."""

    name: str
    host: str  # an IP literal
    port: int
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True, slots=True)
class Resolvers:
    """A `resolvers` section: the name servers asked, and how often and how long
    answers count (HAProxy's defaults). Times in seconds. lb.resolvers runs it."""

    name: str
    nameservers: tuple[Nameserver, ...] = ()
    accepted_payload_size: int = 512
    resolve_retries: int = 3
    timeout_resolve: float = 1.0  # between two resolutions of a name
    timeout_retry: float = 1.0  # before a query without an answer is sent again
    hold_nx: float = 30.0
    hold_other: float = 30.0
    hold_refused: float = 30.0
    hold_timeout: float = 30.0
    hold_valid: float = 10.0
    hold_obsolete: float = 0.0  # how long an address missing from answers is kept
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True, slots=True)
class Mailer:
    """One `mailer <name> <addr>:<port>` of a `mailers` section (SMTP)."""

    name: str
    host: str  # an IP literal
    port: int
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True, slots=True)
class Mailers:
    """A `mailers` section: where email alerts go (each mailer gets each alert)."""

    name: str
    mailers: tuple[Mailer, ...] = ()
    timeout_mail: float = 10.0  # the whole SMTP exchange with one mailer
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True, slots=True)
class EmailAlert:
    """A proxy's `email-alert` settings (all of from, to and mailers were given)."""

    mailers: str
    from_: str
    to: str
    level: int = 1  # syslog level number: alerts at this level or more severe are mailed
    myhostname: str | None = None  # None: the system's host name


@dataclass(frozen=True, slots=True)
class LogTarget:
    """One `log` line target (``log global`` is resolved at build time)."""

    kind: Literal["udp", "tcp", "unix", "stdout", "stderr", "fd", "ring"]
    address: str  # host for udp/tcp, path for unix, fd number for fd, ring name
    port: int | None = None  # udp/tcp port (514 default for udp)
    facility: str = "local0"
    level: str = "debug"  # max level sent
    minlevel: str = "emerg"
    format: str = "local"  # local rfc3164 rfc5424 priority short timed iso raw
    length: int = 1024
    # `sample <ranges>:<size>`: of each <size> lines, those numbered in a range (from
    # 1) are sent; no ranges: every line
    sample: tuple[tuple[int, int], ...] = ()
    sample_size: int = 0
    spec: str = ""  # a network target's address as written (for messages)
    origin: Origin = NO_ORIGIN
    ring: Ring | None = None  # ring@name: that section (resolved at build time)


# --------------------------------------------------------------------------- listeners


@dataclass(frozen=True, slots=True)
class BindCertificate:
    """A certificate path of an `ssl` bind line (a PEM file or a directory of them):
    a `crt`, or a `crt-list` line's, with the SNI filters it serves (`!name` excludes
    a name; none: the certificates' own names) and the settings the line's `[...]`
    gives in place of the bind line's (None: the bind line's)."""

    path: str
    filters: tuple[str, ...] = ()
    alpn: tuple[str, ...] | None = None
    ca_file: str | None = None
    crl_file: str | None = None
    verify: str | None = None
    ciphers: str | None = None
    ciphersuites: str | None = None
    curves: str | None = None
    ecdhe: str | None = None
    min_ver: str | None = None
    max_ver: str | None = None


@dataclass(frozen=True, slots=True)
class BindTls:
    """What a `bind ... ssl` line serves with (lb.tls.frontend builds the context).

    ``certificates``: in line order (the first certificate is the default one, the
    others are chosen by SNI); ``verify``: whether a client
    certificate is asked for (`none`, `optional`, `required`) and checked against
    ``ca_file``; ``versions``: the `force-*`/`no-*` flags as written, without their
    dash-prefix (``("no", "tlsv10")``); ``alpn``: the protocols offered, in order."""

    certificates: tuple[BindCertificate, ...] = ()  # `crt` and `crt-list`, in line order
    ca_file: str | None = None
    crl_file: str | None = None
    verify: str = "none"
    alpn: tuple[str, ...] = ()
    ciphers: str | None = None
    ciphersuites: str | None = None
    curves: str | None = None
    ecdhe: str | None = None
    min_ver: str | None = None
    max_ver: str | None = None
    versions: tuple[tuple[str, str], ...] = ()
    strict_sni: bool = False
    no_tickets: bool = False
    prefer_client_ciphers: bool = False
    # `ca-ignore-err` / `crt-ignore-err`: "all", or error ids ("10,18"):
    # client certificate errors above the leaf / of the leaf that do not fail
    ca_ignore_err: str | None = None
    crt_ignore_err: str | None = None


@dataclass(frozen=True, slots=True)
class Bind:
    """One listening address of a `bind` line (a line may yield several)."""

    host: str  # "" = any IPv4 (and IPv6 when "::"), literal address otherwise
    port: int  # 0 when fd is set
    fd: int | None = None  # fd@N: adopt an inherited listening socket
    name: str | None = None
    family: Literal["ipv4", "ipv6", "any", "unix", "fd"] = "ipv4"
    path: str | None = None  # unix socket path
    maxconn: int = 0
    backlog: int = 0
    v4v6: bool = False
    v6only: bool = False
    accept_proxy: bool = False
    ssl: bool = False
    raw: str = ""  # the address word as written
    origin: Origin = NO_ORIGIN
    # the listener's number within its proxy (HAProxy's luid: `so_id`, the `sid` of
    # `show stat`): the line's `id`, else given by lb.config.build in file order; 0
    # only on a Bind that was never part of a loaded configuration
    luid: int = 0
    proto: str | None = None  # `proto <mux>` as written (checked against the mode)
    tls: BindTls | None = None  # `ssl`: the connections are TLS (lb.tls.frontend)


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class HeaderFmt:
    """A header name plus a value format (log-format syntax, compiled at runtime)."""

    name: str
    value_fmt: str


# Actions for http-request / http-response rules. Parsed by lb.config, executed by
# lb.http.actions. `final` says whether the action stops the ruleset.


@dataclass(frozen=True, slots=True)
class ActAllow:
    final: bool = True


@dataclass(frozen=True, slots=True)
class FormatReply:
    """An `http-error` page built per request: a log-format body (`lf-string`,
    `lf-file`) or header values (`hdr <name> <fmt>`)."""

    status: int
    content_type: str | None = None
    body: bytes | None = None
    body_fmt: str | None = None
    headers: tuple[HeaderFmt, ...] = ()


@dataclass(frozen=True, slots=True)
class ActDeny:
    """deny / tarpit: status (deny_status), optional local payload. With no payload,
    or `default-errorfiles`, the proxy's page for the status is sent."""

    status: int = 403
    content_type: str | None = None
    body: bytes | None = None  # string / file contents
    body_fmt: str | None = None  # lf-string
    errorfile: bytes | None = None  # the page to send as it is (errorfile, errorfiles)
    headers: tuple[HeaderFmt, ...] = ()
    tarpit: bool = False
    final: bool = True
    section: str | None = None  # `errorfiles <name>`, until the load resolves it


@dataclass(frozen=True, slots=True)
class ActReturn:
    status: int = 200
    content_type: str | None = None
    body: bytes | None = None
    body_fmt: str | None = None
    errorfile: bytes | None = None
    headers: tuple[HeaderFmt, ...] = ()
    final: bool = True
    section: str | None = None
    proxy_page: bool = False  # `default-errorfiles`: the proxy's page for the status


@dataclass(frozen=True, slots=True)
class ActRedirect:
    kind: Literal["location", "prefix", "scheme"]
    target_fmt: str
    code: int = 302
    drop_query: bool = False
    append_slash: bool = False
    set_cookie: str | None = None
    clear_cookie: str | None = None
    ignore_empty: bool = False
    final: bool = True


@dataclass(frozen=True, slots=True)
class ActSetHeader:
    """set-header (replace all) or add-header (append a line)."""

    name: str
    value_fmt: str
    add: bool = False
    final: bool = False


@dataclass(frozen=True, slots=True)
class ActDelHeader:
    name: str
    method: str = "str"  # -m str|beg|end|sub|reg
    final: bool = False


@dataclass(frozen=True, slots=True)
class ActReplaceHeader:
    """replace-header (whole value) / replace-value (each comma-separated value)."""

    name: str
    regex: str
    replacement_fmt: str
    each_value: bool = False
    final: bool = False


@dataclass(frozen=True, slots=True)
class ActSetPath:
    """set-path / set-pathq / set-uri / set-query / set-method (``what`` says which)."""

    what: Literal["path", "pathq", "uri", "query", "method"]
    value_fmt: str
    final: bool = False


@dataclass(frozen=True, slots=True)
class ActSetStatus:
    """http-response set-status <status> [reason <str>] (no reason: the usual one)."""

    status: int
    reason: str | None = None
    final: bool = False


@dataclass(frozen=True, slots=True)
class ActReplaceUri:
    """replace-path / replace-pathq / replace-uri: ``regex`` searched in that part of
    the request target; where found, the part becomes ``replacement_fmt`` with its
    back-references expanded."""

    what: Literal["path", "pathq", "uri"]
    regex: str
    replacement_fmt: str
    final: bool = False


@dataclass(frozen=True, slots=True)
class ActEarlyHint:
    """http-request early-hint <name> <fmt>: a header of a 103 Early Hints response
    (consecutive rules, the later ones without a condition, share one response)."""

    name: str
    value_fmt: str
    final: bool = False


@dataclass(frozen=True, slots=True)
class ActNormalizeUri:
    """http-request normalize-uri <normalizer> [full|strict] (lb.http.uri_normalize)."""

    normalizer: str
    option: bool = False  # `full` of path-strip-dotdot, `strict` of the percent ones
    final: bool = False


@dataclass(frozen=True, slots=True)
class ActDoResolve:
    """`do-resolve(<var>,<resolvers>[,ipv4|ipv6]) <expr>` (http-request, tcp-request
    content): the request waits while the `resolvers` section resolves the name
    ``expr`` gives, then the address found is stored in ``var`` (unset on failure)."""

    var: str
    resolvers: str
    expr: str
    ipv4: bool = False  # the type asked first: A with `ipv4`, else AAAA
    final: bool = False


@dataclass(frozen=True, slots=True)
class ActSwitchMode:
    """`tcp-request content switch-mode http [proto h1]` (frontend): the connection
    becomes an HTTP/1 one; the frontend's rules after this one are not run."""

    proto: str = ""  # as written (checked with the proxy: lb.config.build)
    final: bool = True


@dataclass(frozen=True, slots=True)
class ActSetTimeout:
    which: Literal["server", "tunnel", "client"]
    seconds: float
    final: bool = False


@dataclass(frozen=True, slots=True)
class ActUseService:
    service: str  # e.g. "prometheus-exporter"
    final: bool = True


@dataclass(frozen=True, slots=True)
class ActReject:
    """tcp/http 'reject' and 'silent-drop': close without a response."""

    silent: bool = False
    final: bool = True


@dataclass(frozen=True, slots=True)
class ActSetVar:
    """`set-var(<var>) <expr>`, or `set-var-fmt(<var>) <log-format>` (``is_format``)."""

    name: str  # e.g. "txn.foo"
    expr: str  # sample expression (fetch[,conv...]), or the log-format text
    final: bool = False
    is_format: bool = False
    conds: tuple[str, ...] = ()  # ifexists, ifnotempty, ifgt, ... (all must hold)


@dataclass(frozen=True, slots=True)
class ActSetAddr:
    """`set-src <expr>` / `set-src-port <expr>` (``dst`` False): the client address or
    port the rest of the request sees (fetches, logs, forwardfor, balancing);
    `set-dst` / `set-dst-port`: the address or port it connected to (fetches, logs,
    the PROXY header sent, and the server a `0.0.0.0` or port-less server connects
    to)."""

    expr: str
    port: bool = False
    dst: bool = False
    final: bool = False


@dataclass(frozen=True, slots=True)
class ActUnsetVar:
    """`unset-var(<var>)`."""

    name: str
    final: bool = False


@dataclass(frozen=True, slots=True)
class ActPatternRef:
    """`add-acl(<file>) <key>`, `del-acl(<file>) <key>`, `set-map(<file>) <key> <value>`,
    `del-map(<file>) <key>`: change a pattern list at run time (log-format key/value)."""

    op: str  # "add-acl", "del-acl", "set-map" or "del-map"
    file: str
    key_fmt: str
    value_fmt: str | None = None


@dataclass(frozen=True, slots=True)
class ActAuth:
    """`http-request auth [realm <realm>]`: a 401 asking for Basic credentials."""

    realm: str


@dataclass(frozen=True, slots=True)
class UserEntry:
    """`user <name> [password <crypt hash>|insecure-password <pw>] [groups <g>,...]`."""

    name: str
    password: str | None = None  # a crypt(3) hash
    insecure_password: str | None = None
    groups: tuple[str, ...] = ()  # its own and those whose `users` name it


@dataclass(frozen=True, slots=True)
class Userlist:
    """A `userlist` section: its users (groups resolved into each user)."""

    name: str
    users: tuple[UserEntry, ...] = ()
    groups: tuple[str, ...] = ()
    origin: Origin = NO_ORIGIN

    def user(self, name: str) -> UserEntry | None:
        return next((u for u in self.users if u.name == name), None)


@dataclass(frozen=True, slots=True)
class ActTrackSc:
    """`track-sc<slot> <expr> [table <t>]` (http-request/-response, tcp-request): count
    the request or connection against the key's entry (lb.proxy.track)."""

    slot: int
    expr: str
    table: str | None = None  # None: the rule's own proxy's table
    session: bool = False  # tcp-request connection/session: held for the connection
    proxy: str = ""  # the rule's proxy (its table is the default)


@dataclass(frozen=True, slots=True)
class ActScUpdate:
    """`sc-inc-gpc0(<slot>)`, `sc-inc-gpc1(<slot>)`, `sc-set-gpt0(<slot>) <int|expr>`,
    and the array forms `sc-inc-gpc(<index>,<slot>)`, `sc-set-gpt(<index>,<slot>)
    <int|expr>`."""

    slot: int
    data: str  # "gpc0", "gpc1" or "gpt0"; the arrays: "gpc" or "gpt"
    value: str = ""  # sc-set-gpt*: an integer or a sample expression
    index: int | None = None  # the array element (None: a legacy form)


@dataclass(frozen=True, slots=True)
class ActExpectProxy:
    """`tcp-request connection expect-proxy layer4`: this connection starts with a
    PROXY header (as `bind ... accept-proxy`, for the connections the rule matches)."""

    final: bool = False


@dataclass(frozen=True, slots=True)
class ActCapture:
    """`http-request capture <expr> len <n>|id <n>`, `http-response capture <expr> id <n>`:
    the sample goes into capture slot ``slot`` of the frontend (%hr / %hs)."""

    expr: str
    slot: int
    response: bool = False
    by_id: bool = False  # `id <n>` (checked against the declared slots after the parse)


Action = (
    ActAllow | ActDeny | ActReturn | ActRedirect | ActSetHeader | ActDelHeader
    | ActReplaceHeader | ActReplaceUri | ActSetPath | ActSetStatus | ActSetTimeout | ActUseService
    | ActNormalizeUri | ActEarlyHint | ActDoResolve | ActReject | ActSetVar | ActUnsetVar | ActCapture | ActExpectProxy
)


@dataclass(frozen=True, slots=True)
class Rule:
    """One http-request / http-response / tcp-request rule.

    ``cond`` is None when the rule has no condition (always applies).
    """

    action: Action
    cond: Any | None  # lb.match.acl.Condition
    cond_text: str = ""
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True, slots=True)
class SwitchingRule:
    """use_backend: static (``backend``) or dynamic (``name_fmt`` with %[...])."""

    backend: str | None
    name_fmt: str | None
    cond: Any | None
    cond_text: str = ""
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True, slots=True)
class PersistRule:
    """force-persist / ignore-persist."""

    kind: Literal["force", "ignore"]
    cond: Any | None
    cond_text: str = ""
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True, slots=True)
class UseServerRule:
    """`use-server <server> if|unless <cond>`."""

    server: str
    cond: Any | None
    cond_text: str = ""
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True, slots=True)
class StickTableSpec:
    """`stick-table type <t> [len <n>] size <n> [expire <t>] [nopurge]`."""

    type: str  # ip, ipv6, integer, string, binary
    size: int
    key_len: int  # string and binary keys are cut to this length
    expire: float | None  # seconds after the last use; None = never
    nopurge: bool = False
    origin: Origin = NO_ORIGIN
    # `store` data types lb keeps (lb.sticktable.DATA_TYPES): (name, period in ms for
    # a rate, else None)
    stores: tuple[tuple[str, int | None], ...] = ()
    # the arrays of HAProxy 2.5+ (lb.sticktable.ARRAY_TYPES): (name, elements, period
    # in ms for gpc_rate, else None)
    arrays: tuple[tuple[str, int, int | None], ...] = ()


@dataclass(frozen=True, slots=True)
class StickRule:
    """`stick on|match|store-request|store-response <expr> [table <t>] [if|unless ...]`."""

    kind: Literal["on", "match", "store-request", "store-response"]
    expr: str  # sample expression text (lb.proxy.stick compiles it)
    table: str | None  # None: the backend's own table
    cond: Any | None
    cond_text: str = ""
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True, slots=True)
class AclDecl:
    """A named ACL as compiled (all lines of the same name OR-ed together)."""

    name: str
    acl: Any  # lb.match.acl.Acl
    origins: tuple[Origin, ...] = ()


# --------------------------------------------------------------------------- servers


@dataclass(frozen=True, slots=True)
class Server:
    name: str
    host: str  # address as written (name or literal); see lb.config.addresses
    port: int | None  # None when the address had no port, or a `+N`/`-N` one
    puid: int  # 1-based id within the backend (stats `sid`): `id`, else the next free one
    # `+N`/`-N`: added to the port the client connected to (0 for a port-less server)
    port_offset: int = 0
    forced_id: int = 0  # the `id` written on the line (0: numbered automatically)
    weight: int = 1
    maxconn: int = 0  # 0 = unlimited
    minconn: int = 0
    maxqueue: int = 0  # 0 = unlimited
    cookie: str | None = None
    backup: bool = False
    disabled: bool = False  # starts in MAINT
    check: bool = False
    inter: float = 2.0
    fastinter: float | None = None
    downinter: float | None = None
    rise: int = 2
    fall: int = 3
    check_port: int | None = None
    check_addr: str | None = None
    slowstart: float = 0.0
    on_marked_down: str | None = None  # "shutdown-sessions"
    on_marked_up: str | None = None  # "shutdown-backup-sessions"
    on_error: str = "fail-check"
    observe: str | None = None
    error_limit: int = 10
    ssl: bool = False
    no_ssl: bool = False  # `no-ssl` given: TLS settings kept, not used (srv_use_ssl -1)
    ssl_default: bool = False  # its `default-server` line gave `ssl`
    verify: str | None = None  # `verify none|required` (None: global ssl-server-verify)
    sni: str | None = None  # `sni <expr>`: a sample expression, evaluated per connection
    check_ssl: bool = False
    # the TLS of a server (lb.tls.backend): files as given or under ca-base/crt-base,
    # `alpn`/`check-alpn` as written (comma-separated), versions as `ssl-min-ver`
    # words; `force-<v>` sets both ends, `no-<v>` adds to ssl_no
    ca_file: str | None = None
    crl_file: str | None = None
    crt: str | None = None  # the client certificate (and its key) presented
    verifyhost: str | None = None
    alpn: str | None = None
    check_sni: str | None = None
    check_alpn: str | None = None
    ciphers: str | None = None
    ciphersuites: str | None = None
    ssl_min_ver: str | None = None
    ssl_max_ver: str | None = None
    ssl_no: tuple[str, ...] = ()  # versions turned off by `no-sslv3`/`no-tlsv1x`
    no_tls_tickets: bool | None = None  # `no-tls-tickets`/`tls-tickets` (None: global's)
    ssl_reuse: bool = True  # `no-ssl-reuse`: no TLS session resumption
    send_proxy: bool = False  # send-proxy: a PROXY v1 line first on each connection
    send_proxy_v2: bool = False  # send-proxy-v2 (-ssl, -ssl-cn): the binary header
    # proxy-v2-options: the TLVs a v2 header carries (crc32c, unique-id, authority,
    # ssl and its cert-* details); alone, they make HAProxy 2.6.12 send a v1 header
    proxy_v2_options: tuple[str, ...] = ()
    check_send_proxy: bool = False
    track: str | None = None  # "be/srv" or "srv"
    agent_check: bool = False
    agent_port: int = 0  # `agent-port` (an agent check needs one)
    agent_addr: str | None = None  # `agent-addr` (else `addr`, else the server's)
    agent_inter: float | None = None  # `agent-inter` (None = `inter`)
    agent_send: str = ""  # `agent-send`: sent verbatim on each agent connection
    init_addr: str | None = None  # `init-addr` methods as written (None = last,libc)
    addr_none: bool = False  # its name gave no address and `init-addr none` let it start
    fallback_ip: str | None = None  # the `init-addr` IP used as its name gave no address
    resolvers: str | None = None  # `resolvers <id>`: its name is resolved at run time
    resolve_prefer: str = "ipv6"  # `resolve-prefer`: the family asked first
    resolve_nets: tuple[str, ...] = ()  # `resolve-net`: preferred networks (CIDR)
    resolve_opts: tuple[str, ...] = ()  # allow-dup-ip, ignore-weight, prevent-dup-ip
    source: Source | None = None  # `source` option (else the backend's)
    origin: Origin = NO_ORIGIN


# --------------------------------------------------------------------------- checks


@dataclass(frozen=True, slots=True)
class CheckConnect:
    """http-check connect / tcp-check connect. ``port_expr``: a sample expression
    giving the port at each check (`port var(check.port)`); ``addr`` is the host of
    `addr`, ``addr_port`` the port written with it."""

    port: int | None = None
    addr: str | None = None
    ssl: bool = False
    send_proxy: bool = False
    default: bool = False
    linger: bool = False
    port_expr: str | None = None
    addr_port: int | None = None
    comment: str | None = None
    sni: str | None = None  # `sni`: the name a TLS connect sends (else check-sni)
    alpn: str | None = None  # `alpn`: the protocols it offers (else check-alpn/alpn)


@dataclass(frozen=True, slots=True)
class HttpCheckSend:
    """The request a check sends (option httpchk + http-check send merged).

    Header values of `http-check send hdr` are log-format strings (HAProxy's); those
    of `option httpchk`'s version field are sent as written (``raw_headers``). The
    URI and body are formats with ``uri_lf``/``body_lf`` (`uri-lf`, `body-lf`).
    """

    method: str = "OPTIONS"
    uri: str = "/"
    version: str = "HTTP/1.0"
    headers: tuple[tuple[str, str], ...] = ()  # (name, value) as written
    body: bytes = b""
    uri_lf: bool = False
    body_lf: bool = False
    raw_headers: tuple[tuple[str, str], ...] = ()  # from `option httpchk`


@dataclass(frozen=True, slots=True)
class ExpectOutcome:
    """What an expect rule says of its result: the statuses it reports instead of
    the defaults (`ok-status`, `error-status`, `tout-status`), the log-format texts
    of its check description (`on-success`, `on-error`) and the sample expression
    that sets the check's code (`status-code`)."""

    ok_status: str | None = None
    error_status: str | None = None
    tout_status: str | None = None
    on_success: str | None = None
    on_error: str | None = None
    status_code: str | None = None


NO_EXPECT_OUTCOME = ExpectOutcome()


@dataclass(frozen=True, slots=True)
class HttpCheckExpect:
    """http-check expect [!] <match> <pattern>. ``lf``: the pattern (`string-lf`) is
    a log-format string; ``name_lf``/``value_lf``: those of `hdr` are."""

    match: Literal["status", "rstatus", "string", "rstring", "hdr", "fhdr", "custom"]
    pattern: str
    negate: bool = False
    hdr_name: str | None = None  # for hdr/fhdr
    hdr_method: str = "str"  # -m for hdr name match
    value: str | None = None  # hdr value pattern
    value_method: str = "str"
    min_recv: int = -1
    comment: str | None = None
    lf: bool = False
    name_lf: bool = False
    value_lf: bool = False
    outcome: ExpectOutcome = NO_EXPECT_OUTCOME


@dataclass(frozen=True, slots=True)
class TcpCheckSend:
    """tcp-check send / send-binary (``data``), send-lf / send-binary-lf (``fmt``, the
    log-format text; ``binary``: its result is hex text to decode)."""

    data: bytes
    comment: str | None = None
    fmt: str | None = None
    binary: bool = False


@dataclass(frozen=True, slots=True)
class TcpCheckExpect:
    """tcp-check expect [!] <match> <pattern>; ``lf``: the pattern is a log-format
    string (`string-lf`, `binary-lf`: its result is hex text)."""

    match: Literal["string", "rstring", "binary", "rbinary", "custom"]
    pattern: bytes
    negate: bool = False
    min_recv: int = -1
    comment: str | None = None
    lf: bool = False
    outcome: ExpectOutcome = NO_EXPECT_OUTCOME


@dataclass(frozen=True, slots=True)
class CheckComment:
    """`http-check comment` / `tcp-check comment`: the comment of the rules that follow
    (as HAProxy hands it on); it also keeps its place in the step numbers."""

    text: str


# (`set-var`, `set-var-fmt` and `unset-var` rules of a check are ActSetVar / ActUnsetVar)
CheckStep = (CheckConnect | HttpCheckSend | HttpCheckExpect | TcpCheckSend | TcpCheckExpect
             | CheckComment | ActSetVar | ActUnsetVar)


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """How a backend's servers are checked.

    kind "tcp": plain connect (no steps). kind "http": ``steps`` holds at least one
    HttpCheckSend; when no HttpCheckExpect is present the default success is any
    2xx/3xx status. kind "tcp-check": TcpCheck* / CheckConnect steps. kind
    "external": a program's exit status (healthcheck.external).
    """

    kind: Literal["tcp", "http", "tcp-check", "external"] = "tcp"
    steps: tuple[CheckStep, ...] = ()
    disable_on_404: bool = False
    send_state: bool = False
    log_health_checks: bool = False
    origin: Origin = NO_ORIGIN
    # kind "external" (`option external-check`): the program run for each check, and
    # the PATH it gets (`external-check command|path`)
    external_command: str = ""
    external_path: str = ""
    # kind "tcp-check" made by an option naming a protocol (`option redis-check`, ...,
    # lb.config.check_presets): its results are worded as HAProxy words those
    protocol: str = ""


# --------------------------------------------------------------------------- balance, cookies


@dataclass(frozen=True, slots=True)
class BalanceSpec:
    algorithm: str = "roundrobin"  # roundrobin static-rr leastconn first source uri
    #                                url_param hdr random rdp-cookie hash
    # a `balance` line was read (here or in the defaults): HAProxy's BE_LB_KIND. Without
    # one, a backend with `dispatch` or `option transparent` does not load balance
    explicit: bool = False
    hash_type: Literal["map-based", "consistent"] = "map-based"
    hash_function: str = "sdbm"
    hash_modifier: str | None = None  # "avalanche"
    # algorithm arguments
    uri_whole: bool = False
    uri_len: int = 0
    uri_depth: int = 0
    uri_path_only: bool = False
    param: str | None = None  # url_param name, hdr() name, rdp-cookie name
    check_post: bool = False
    use_domain_only: bool = False
    random_draws: int = 2
    hash_expr: str | None = None


@dataclass(frozen=True, slots=True)
class Compression:
    """`compression algo|type|offload`: the algorithms in HAProxy's list order (each
    `algo` word goes to the front, after those a defaults section gave), the content
    types compressed (lower-cased prefixes; none: any), and whether the request's
    Accept-Encoding is removed once an algorithm is chosen."""
    algos: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    offload: bool = False


@dataclass(frozen=True, slots=True)
class CookieSpec:
    name: str
    mode: Literal["insert", "rewrite", "prefix"] = "rewrite"
    indirect: bool = False
    nocache: bool = False
    postonly: bool = False
    preserve: bool = False
    httponly: bool = False
    secure: bool = False
    domains: tuple[str, ...] = ()
    maxidle: float | None = None
    maxlife: float | None = None
    dynamic: bool = False
    attrs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ForwardFor:
    header: str = "x-forwarded-for"
    except_net: str | None = None
    if_none: bool = False


@dataclass(frozen=True, slots=True)
class Source:
    """`source <addr>[:<port>[-<port>]] [interface <name>]` (a backend's, or a server's
    option): the local address, port (0: any; a server may give a range) and network
    interface of the connections to the servers, health checks included."""

    address: str  # an IP literal or a name (resolved when first used)
    port_low: int = 0
    port_high: int = 0
    interface: str | None = None


@dataclass(frozen=True, slots=True)
class OriginalTo:
    """`option originalto [except <net>] [header <name>]`: the address the client
    connected to, in a request header for the server."""

    header: str = "x-original-to"
    except_net: str | None = None


# --------------------------------------------------------------------------- stats


@dataclass(frozen=True, slots=True)
class StatsSocket:
    kind: Literal["unix", "tcp", "fd"]
    address: str  # path, host, or fd number
    port: int | None = None
    mode: int | None = None  # unix file mode, e.g. 0o600
    level: Literal["user", "operator", "admin"] = "operator"
    expose_fd_listeners: bool = False
    origin: Origin = NO_ORIGIN


@dataclass(frozen=True, slots=True)
class StatsPage:
    """`stats enable` and friends on a proxy (None on the proxy when disabled)."""

    uri: str = "/haproxy?stats"
    realm: str = "HAProxy Statistics"
    auth: tuple[tuple[str, str], ...] = ()  # (user, password)
    refresh: float | None = None
    admin_cond: Any | None = None
    hide_version: bool = False
    show_legends: bool = False
    scope: tuple[str, ...] = ()


# --------------------------------------------------------------------------- proxies


@dataclass(frozen=True, slots=True)
class Options:
    """Boolean `option` flags after inheritance (True = enabled)."""

    httplog: bool = False
    httplog_clf: bool = False
    tcplog: bool = False
    dontlognull: bool = False
    dontlog_normal: bool = False
    log_separate_errors: bool = False
    logasap: bool = False
    http_server_close: bool = False
    httpclose: bool = False
    http_keep_alive: bool = False
    http_pretend_keepalive: bool = False
    http_buffer_request: bool = False
    http_ignore_probes: bool = False
    http_no_delay: bool = False
    http_use_htx: bool = True
    abortonclose: bool = False
    allbackups: bool = False
    # a client connection's next request goes to the server it holds a connection to
    prefer_last_server: bool = False
    persist: bool = False
    redispatch: bool = False
    # `option transparent`: a request load balancing does not place goes where its
    # client connected to (after `set-dst`), unless the backend has a `dispatch`
    transparent: bool = False
    contstats: bool = False
    log_health_checks: bool = False
    tcp_smart_accept: bool = False
    tcp_smart_connect: bool = False
    splice_auto: bool = False
    independent_streams: bool = False
    # soft stop: an idle keep-alive connection waits for one more request, answered
    # with `connection: close`, instead of being closed at once
    idle_close_on_response: bool = False
    nolinger: bool = False
    clitcpka: bool = False
    srvtcpka: bool = False
    tcpka: bool = False
    ws_frames: bool = False  # lb extension: count WebSocket frames by opcode


@dataclass(frozen=True, slots=True)
class Proxy:
    """A frontend, backend or listen section after defaults inheritance.

    ``caps`` says which sides exist: a frontend has "frontend", a backend
    "backend", a listen both.
    """

    name: str
    caps: frozenset[str]  # subset of {"frontend", "backend"}
    kind: Literal["frontend", "backend", "listen"]
    mode: Mode = "tcp"
    puid: int = 0  # proxy id (iid): `id`, else the next free one in declaration order
    forced_id: bool = False  # `id` was written (`show servers state` bk_f_forced_id)
    # `disabled`: never started (no bind, no check, hidden from stats; a request
    # routed to it gets a 503). Frozen without its rules: HAProxy checks none of them.
    disabled: bool = False
    # --- frontend side
    binds: tuple[Bind, ...] = ()
    maxconn: int = 0
    backlog: int = 0
    default_backend: str | None = None
    switching_rules: tuple[SwitchingRule, ...] = ()
    log_format: str | None = None  # resolved from option httplog / tcplog / log-format
    log_format_sd: str | None = None  # `log-format-sd`: rfc5424 structured data
    # `error-log-format`: the lines of connections and requests that end before their
    # stream (lb.log.TrafficLog.emit)
    error_log_format: str | None = None
    monitor_uri: str | None = None
    # `monitor fail` conditions: any that holds turns the monitor-uri answer into 503
    monitor_fail: tuple[Any, ...] = ()
    unique_id_format: str | None = None  # `unique-id-format` (a log-format string)
    unique_id_header: str | None = None  # `unique-id-header`: request header carrying it
    # `max-session-srv-conns`: how many idle server connections a client connection
    # may keep for itself (private ones: `http-reuse never`, NTLM, dispatch)
    max_session_srv_conns: int = 5
    # --- both sides
    acls: Mapping[str, AclDecl] = field(default_factory=lambda: EMPTY_MAP)
    http_request_rules: tuple[Rule, ...] = ()
    http_response_rules: tuple[Rule, ...] = ()
    http_after_response_rules: tuple[Rule, ...] = ()
    tcp_request_connection_rules: tuple[Rule, ...] = ()
    tcp_request_content_rules: tuple[Rule, ...] = ()
    # run once per client connection, after the connection rules (frontends only)
    tcp_request_session_rules: tuple[Rule, ...] = ()
    # `tcp-request inspect-delay` (seconds): how long content rules may wait for data
    inspect_delay: float | None = None
    redirect_rules: tuple[Rule, ...] = ()  # legacy `redirect` keyword
    options: Options = Options()
    # `option http-restrict-req-hdr-names`: preserve, delete or reject request header
    # names with a character outside [A-Za-z0-9-] (after the proxy's http-request rules)
    restrict_hdr_names: Literal["preserve", "delete", "reject"] = "preserve"
    timeouts: Timeouts = Timeouts()
    logs: tuple[LogTarget, ...] = ()
    log_tag: str | None = None
    forwardfor: ForwardFor | None = None
    originalto: OriginalTo | None = None
    compression: Compression | None = None
    source: Source | None = None
    # status -> the page sent for it: raw HTTP response bytes (empty: nothing, close),
    # or a FormatReply built per request
    errorfiles: Mapping[int, bytes | FormatReply] = field(default_factory=lambda: EMPTY_MAP)
    stats: StatsPage | None = None
    description: str | None = None
    stick_table: StickTableSpec | None = None
    # `capture request|response header <name> len <n>`: (lower-cased name, len) in
    # declaration order (frontend side; logged as %hr / %hs)
    captures_req: tuple[tuple[str, int], ...] = ()
    captures_res: tuple[tuple[str, int], ...] = ()
    capture_cookie: tuple[str, int] | None = None  # `capture cookie <prefix> len <n>`
    rate_limit_sessions: int = 0  # `rate-limit sessions <n>`: new sessions a second (0: none)
    # keepalive probes of client / server sockets (option clitcpka, srvtcpka, tcpka):
    # (idle s, count, interval s) from clitcpka-idle/-cnt/-intvl...; 0 = the system's
    cli_tcpka: tuple[int, int, int] = (0, 0, 0)
    srv_tcpka: tuple[int, int, int] = (0, 0, 0)
    # --- backend side
    servers: tuple[Server, ...] = ()
    balance: BalanceSpec = BalanceSpec()
    # where requests that no persistence places go when the backend does not load
    # balance: the `dispatch` address, or for `option transparent` the address the
    # client connected to (host 0.0.0.0, no port). A server of no name, never listed
    dispatch: Server | None = None
    cookie: CookieSpec | None = None
    dynamic_cookie_key: str | None = None  # `dynamic-cookie-key` (cookie ... dynamic)
    # server states taken at start-up (lb.server_state_file): `load-server-state-from-file
    # global|local|none` and the local file's name (None: the backend's name)
    load_server_state: str = "none"
    server_state_file_name: str | None = None
    persist_rules: tuple[PersistRule, ...] = ()
    stick_rules: tuple[StickRule, ...] = ()
    server_rules: tuple[UseServerRule, ...] = ()  # use-server
    send_name_header: str | None = None  # http-send-name-header
    email_alert: EmailAlert | None = None  # `email-alert` (lb.mailers sends them)
    # `stats http-request <action> [if|unless cond]`: run on requests for the stats page
    stats_http_request_rules: tuple[Rule, ...] = ()
    check: CheckSpec = CheckSpec()
    retries: int = 3
    retry_on: tuple[str, ...] = ("conn-failure",)
    redispatch_interval: int = -1  # option redispatch [N]
    fullconn: int = 0
    hash_balance_factor: int = 0
    http_reuse: str = "safe"
    # `max-keep-alive-queue N` as HAProxy stores it, N + 1: 0 (the default, and -1)
    # lets `option prefer-last-server` wait in any queue of the last server; else the
    # last server is kept while fewer than N requests wait for it
    max_ka_queue: int = 0
    origin: Origin = NO_ORIGIN

    @property
    def is_frontend(self) -> bool:
        return "frontend" in self.caps

    @property
    def is_backend(self) -> bool:
        return "backend" in self.caps


@dataclass(frozen=True, slots=True)
class Global:
    daemon: bool = False
    master_worker: bool = False
    maxconn: int = 0  # 0 = derive from ulimit -n
    nbthread: int = 1
    pidfile: str | None = None
    chroot: str | None = None
    uid: int | None = None
    gid: int | None = None
    user: str | None = None
    group: str | None = None
    ulimit_n: int = 0
    hard_stop_after: float | None = None
    grace: float | None = None
    spread_checks: int = 0
    node: str | None = None
    description: str | None = None
    quiet: bool = False
    zero_warning: bool = False
    busy_polling: bool = False  # the poller never sleeps (lb.proxy.eventloop.BusyPoller)
    external_check: bool = False  # `external-check`: `option external-check` may run programs
    insecure_fork_wanted: bool = False
    expose_experimental: bool = False  # `expose-experimental-directives` (normalize-uri)
    server_state_file: str | None = None  # `server-state-file`: states read at start-up
    server_state_base: str | None = None  # `server-state-base`: directory of relative names
    logs: tuple[LogTarget, ...] = ()
    log_tag: str | None = None
    log_send_hostname: str | None = None
    stats_sockets: tuple[StatsSocket, ...] = ()
    stats_timeout: float = 10.0
    stats_maxconn: int = 10
    tune_bufsize: int = 16384
    tune_comp_maxlevel: int = 1  # the zlib level of `compression` (1..9)
    maxcomprate: int = 0  # bytes/s into the compressors above which none starts (0: none)
    maxcompcpuusage: int = 100  # CPU use (%) above which no compression starts
    tune_maxrewrite: int = 1024
    tune_http_maxhdr: int = 101
    # SO_RCVBUF / SO_SNDBUF for client and server sockets; 0 leaves the kernel's sizing
    tune_rcvbuf_client: int = 0
    tune_rcvbuf_server: int = 0
    tune_sndbuf_client: int = 0
    tune_sndbuf_server: int = 0
    # TLS toward servers (lb.tls.backend): `ssl-server-verify`, and the defaults of
    # `ssl-default-server-options` (versions as in Server), `-ciphers`, `-ciphersuites`
    ssl_server_verify: str = "required"
    ssl_server_min_ver: str | None = None
    ssl_server_max_ver: str | None = None
    ssl_server_no: tuple[str, ...] = ()
    ssl_server_no_tickets: bool = False
    ssl_server_ciphers: str | None = None
    ssl_server_ciphersuites: str | None = None
    ca_base: str | None = None  # `ca-base`: directory of relative ca-file/crl-file paths
    crt_base: str | None = None  # `crt-base`: directory of relative crt paths
    tune: Mapping[str, str] = field(default_factory=lambda: EMPTY_MAP)  # other tune.* values as written
    env: Mapping[str, str] = field(default_factory=lambda: EMPTY_MAP)  # setenv / presetenv results
    # global `set-var`/`set-var-fmt`, evaluated while the file was read, in order:
    # (name, value, HAProxy type name) for lb.match.variables.ProcVars
    proc_vars: tuple[tuple[str, Any, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Config:
    """A whole loaded configuration."""

    global_: Global = field(default_factory=Global)
    proxies: tuple[Proxy, ...] = ()  # frontends, backends and listens in file order
    files: tuple[str, ...] = ()
    text: str = ""  # the configuration as loaded (for `show config`)
    # the ACL pattern lists the CLI may change (lb.match.patref.PatternRefs; mutable,
    # like the matchers it recompiles): not part of what makes two configs equal
    pattern_refs: Any = field(default=None, compare=False)
    userlists: tuple[Userlist, ...] = ()
    rings: tuple[Ring, ...] = ()
    resolvers: tuple[Resolvers, ...] = ()
    mailers: tuple[Mailers, ...] = ()

    def userlist(self, name: str) -> Userlist | None:
        return next((u for u in self.userlists if u.name == name), None)

    def frontends(self) -> tuple[Proxy, ...]:
        return tuple(p for p in self.proxies if p.is_frontend)

    def backends(self) -> tuple[Proxy, ...]:
        return tuple(p for p in self.proxies if p.is_backend)

    def backend(self, name: str) -> Proxy | None:
        for p in self.proxies:
            if p.is_backend and p.name == name:
                return p
        return None

    def frontend(self, name: str) -> Proxy | None:
        for p in self.proxies:
            if p.is_frontend and p.name == name:
                return p
        return None


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Command-line settings that shape how a loaded Config is run (not config)."""

    config_files: tuple[str, ...] = ()
    foreground: bool = True  # -d / -db
    daemon: bool = False  # -D (or `daemon` in global unless -db)
    debug: bool = False  # -d
    quiet: bool = False  # -q
    master_worker: bool = False  # -W (or `master-worker` in global)
    pidfile: str | None = None  # -p
    soft_stop_pids: tuple[int, ...] = ()  # -sf
    hard_stop_pids: tuple[int, ...] = ()  # -st
    nbthread: int | None = None  # --workers N: worker processes (HAProxy keeps -n for maxconn)
    maxconn: int | None = None  # -n/-N style overrides
    strict: bool = False  # --strict / -dW
