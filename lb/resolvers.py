"""Run-time name resolution of servers: HAProxy's `resolvers` sections at work.

Owns: one connected UDP socket per name server; one resolution per (section, host
name, query type), shared by every server that names it; their schedule (a new
resolution `timeout resolve` after the last one ended, a query sent again after
`timeout retry` without an answer, at most `resolve_retries` tries, and the switch
from AAAA to A, or back, when the preferred type gives nothing); reading answers
(lb.dns.wire) with HAProxy 2.6's checks and the per-name-server counters of `show
resolvers`; and what answers do to servers:

* the address a server takes (HAProxy's score: the preferred family 8, a
  `resolve-net` network 4, an address no other server of the backend holds 2, its
  current address 1; ties go to the first answer in XXH32 order, as HAProxy's tree
  keeps them). A server keeps its address as long as the answers hold it, and with
  the default `prevent-dup-ip` two servers of a backend never share one, which is
  how `server-template` spreads a name's addresses over its servers;
* resolution maintenance: a server whose name fails (NXDOMAIN, no answer, REFUSED,
  anything else) for its `hold` period, or that finds no free address, loses its
  address and enters MAINT (resolution); a valid answer takes it out again;
* SRV records (a server named `_service._proto.name`): the servers of a backend
  named by one record each take one row of the answers (target, port, weight); the
  address the additional section gives the target, else the target resolved by
  name; a row gone frees its server (`entry removed from SRV record`);
* HAProxy's log lines for each change, sent through the caller's ``log_event``.

Design: one TimerHandle per section serves every resolution of it; nothing runs per
server between answers. A changed address goes where `set server addr` puts one
(``State.cli_addrs`` and the "server_addr" event): idle connections to the old
address are closed, and a master passes the address on to its workers.

Must not import: lb.proxy, lb.cli, healthcheck.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import time
from collections.abc import Callable
from typing import Any

from lb import srvadmin
from lb.config.addresses import needs_resolution
from lb.config.model import ActDoResolve, Nameserver, Resolvers
from lb.dns import wire
from lb.dns.counters import NameserverCounters
from lb.log import get_logger
from lb.state import ADMIN_HMAINT, ADMIN_RMAINT, ServerState, State
from lb.xxhash import xxh32

# (backend, syslog level, text[, mirror on stderr: default true])
LogEvent = Callable[..., None]

# what a resolution last heard (HAProxy's RSLV_STATUS_*)
NONE, VALID, INVALID, NX, REFUSED, TIMEOUT, OTHER = range(7)
# what one answer says, with the status it gives and the counter it moves
_OUTCOMES: dict[str, tuple[int, str]] = {
    "invalid": (INVALID, "invalid"),
    "nx": (NX, "nx"),
    "refused": (REFUSED, "refused"),
    "empty": (OTHER, "any_err"),
    "cname_error": (OTHER, "cname_error"),
    "truncated": (OTHER, "truncated"),
    "error": (OTHER, "other"),
}
# a failing status: how long it may last before its servers lose their address
# (the `hold` field), and the cause their maintenance message gives
_FAILURES: dict[int, tuple[str, str]] = {
    NX: ("hold_nx", "DNS NX status"),
    TIMEOUT: ("hold_timeout", "DNS timeout status"),
    REFUSED: ("hold_refused", "DNS refused status"),
}
_OTHER_FAILURE = ("hold_other", "unspecified DNS error")
NO_IP_CAUSE = "No IP for server "  # (sic: HAProxy's text ends with a space)
SRV_GONE_CAUSE = "entry removed from SRV record"
_MIN_RECORD = 12  # the smallest answer record: how many fit in a payload
_log = get_logger("lb.resolvers")


def _hostname(host: str) -> str:
    return host.lower().removesuffix(".")


class AnswerItem:
    """One address the answers gave, and the servers holding it."""

    __slots__ = ("ip", "family", "key", "seq", "last_seen", "owners", "net")

    def __init__(self, ip: str, rtype: int, seq: int, now: float) -> None:
        addr = ipaddress.ip_address(ip)
        self.ip = ip
        self.net = addr
        self.family = addr.version
        self.key = xxh32(addr.packed, rtype)  # HAProxy's order among the answers
        self.seq = seq
        self.last_seen = now
        self.owners: list[ServerState] = []


class SrvItem:
    """One SRV row the answers gave (target and port), the address the server sent
    along for its target (glue), and the server of each request holding it."""

    __slots__ = ("target", "port", "weight", "key", "seq", "last_seen", "glue",
                 "glue_seen", "owners")

    def __init__(self, target: str, port: int, weight: int, seq: int, now: float) -> None:
        self.target = target
        self.port = port
        self.weight = weight
        # HAProxy's order: the XXH32 of the target's wire labels (no final zero)
        self.key = xxh32(wire.encode_name(target)[:-1], wire.TYPE_SRV)
        self.seq = seq
        self.last_seen = now
        self.glue: str | None = None
        self.glue_seen = now
        self.owners: dict[SrvRequest, ServerState] = {}


class SrvRequest:
    """The servers of one backend named by one SRV record (`server-template w 3
    _http._tcp.app resolvers dns`): each takes one row of the answers, the others
    wait in resolution maintenance."""

    __slots__ = ("name", "backend", "free")

    def __init__(self, name: str, backend: str) -> None:
        self.name = name
        self.backend = backend
        self.free: list[ServerState] = []  # servers holding no row, in the order to use


class Resolution:
    """A host name asked of one section with one preferred type (or an SRV record)."""

    __slots__ = ("hostname", "prefer", "qtype", "servers", "status", "running", "qid",
                 "tries", "queries", "responses", "last_query", "last_resolution",
                 "last_valid", "items", "seq", "srvrqs", "srv_items", "waiters")

    def __init__(self, hostname: str, prefer: int, now: float) -> None:
        self.hostname = hostname
        self.prefer = prefer  # TYPE_AAAA unless `resolve-prefer ipv4`
        self.qtype = prefer
        self.servers: list[ServerState] = []
        self.status = NONE
        self.running = False
        self.qid = -1
        self.tries = 0
        self.queries = 0  # name servers asked by the last query
        self.responses = 0  # ... and how many answered
        self.last_query = 0.0
        self.last_resolution: float | None = None
        self.last_valid = now
        self.items: dict[str, AnswerItem] = {}
        self.seq = 0
        self.srvrqs: list[SrvRequest] = []  # (an SRV resolution's requesters)
        self.srv_items: dict[tuple[str, int], SrvItem] = {}
        # `do-resolve` requests waiting for this resolution to end: each is called once
        # with the address found, or None
        self.waiters: list[Callable[[str | None], None]] = []


class _NameserverProtocol(asyncio.DatagramProtocol):
    def __init__(self, section: SectionRuntime, ns: NameserverSocket) -> None:
        self.section = section
        self.ns = ns

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.section.answer(self.ns, data)

    def error_received(self, exc: Exception) -> None:
        pass  # (an ICMP error: the query simply goes unanswered)


class NameserverSocket:
    __slots__ = ("model", "counters", "transport")

    def __init__(self, model: Nameserver, counters: NameserverCounters) -> None:
        self.model = model
        self.counters = counters
        self.transport: asyncio.DatagramTransport | None = None

    def send(self, data: bytes) -> bool:
        if self.transport is None or self.transport.is_closing():
            self.counters.snd_error += 1
            return False
        try:
            self.transport.sendto(data)
        except OSError:
            self.counters.snd_error += 1
            return False
        self.counters.sent += 1
        return True


class SectionRuntime:
    """One `resolvers` section: its sockets, its resolutions and their timer."""

    def __init__(self, model: Resolvers, state: State, loop: asyncio.AbstractEventLoop,
                 log_event: LogEvent) -> None:
        self.model = model
        self.state = state
        self.loop = loop
        self.log_event = log_event
        counters = {c.name: c for c in state.dns_counters.get(model.name, [])}
        self.nameservers = [NameserverSocket(ns, counters.get(ns.name) or
                                             NameserverCounters(model.name, ns.name))
                            for ns in model.nameservers]
        self.resolutions: dict[tuple[str, int], Resolution] = {}
        self.by_server: dict[ServerState, Resolution] = {}
        self.attached: dict[ServerState, AnswerItem] = {}
        self.nets: dict[ServerState, list[Any]] = {}
        self.allow_dup: set[ServerState] = set()  # `resolve-opts allow-dup-ip`
        self.srvrqs: dict[tuple[str, str], SrvRequest] = {}  # (backend, SRV name)
        self.srvrq_of: dict[ServerState, SrvRequest] = {}
        self.srv_item_of: dict[ServerState, SrvItem] = {}
        self.query_ids: dict[int, Resolution] = {}
        self.timer: asyncio.TimerHandle | None = None
        self.opened = False  # the name servers' sockets are connected (open())
        self.closed = False  # close() ran: lookups get None at once
        self.max_answers = (model.accepted_payload_size - _MIN_RECORD) // _MIN_RECORD

    # ---------------------------------------------------------------- set-up

    def add_server(self, srv: ServerState) -> None:
        m = srv.model
        if m.host.startswith("_"):  # an SRV record names its servers
            name = _hostname(m.host)
            srvrq = self.srvrqs.get((srv.backend.name, name))
            if srvrq is None:
                srvrq = self.srvrqs[(srv.backend.name, name)] = SrvRequest(name,
                                                                          srv.backend.name)
                self._resolution(name, wire.TYPE_SRV).srvrqs.append(srvrq)
            srvrq.free.append(srv)
            self.srvrq_of[srv] = srvrq
        else:
            self._link(srv, m.host)
        self.nets[srv] = [ipaddress.ip_network(n, strict=False) for n in m.resolve_nets]
        allow = False
        for opt in m.resolve_opts:  # (the last of the two words wins)
            allow = True if opt == "allow-dup-ip" else False if opt == "prevent-dup-ip" else allow
        if allow:
            self.allow_dup.add(srv)

    def _resolution(self, hostname: str, prefer: int) -> Resolution:
        key = (_hostname(hostname), prefer)
        res = self.resolutions.get(key)
        if res is None:
            res = self.resolutions[key] = Resolution(key[0], prefer, self.loop.time())
        return res

    def _prefer(self, srv: ServerState) -> int:
        return wire.TYPE_A if srv.model.resolve_prefer == "ipv4" else wire.TYPE_AAAA

    def _link(self, srv: ServerState, hostname: str) -> None:
        """Keep ``srv`` resolved by ``hostname`` (A/AAAA)."""
        res = self._resolution(hostname, self._prefer(srv))
        if self.by_server.get(srv) is res:
            return
        self._unlink(srv)
        res.servers.append(srv)
        self.by_server[srv] = res

    def _unlink(self, srv: ServerState) -> None:
        """``srv`` no longer resolved by name; a resolution nobody uses goes."""
        res = self.by_server.pop(srv, None)
        if res is None:
            return
        self._attach(srv, None)
        if srv in res.servers:
            res.servers.remove(srv)
        if not res.servers and not res.srvrqs and not res.waiters:
            self.resolutions.pop((res.hostname, res.prefer), None)
            self.query_ids.pop(res.qid, None)

    async def open(self) -> None:
        """Connect the name servers' sockets; the queries of resolutions started
        before (a `do-resolve` of the first requests) leave now."""
        for ns in self.nameservers:
            try:
                transport, _ = await self.loop.create_datagram_endpoint(
                    lambda ns=ns: _NameserverProtocol(self, ns),  # type: ignore[misc]
                    remote_addr=(ns.model.host, ns.model.port))
            except OSError:
                continue  # its queries count as send errors
            ns.transport = transport  # type: ignore[assignment]
        self.opened = True
        for res in list(self.resolutions.values()):
            if res.running:
                self._send(res)

    def start(self) -> None:
        if self.resolutions:
            self.process()

    def fqdn_changed(self, srv: ServerState) -> None:
        """`set server ... fqdn`: resolve ``srv`` by its new name from now on."""
        if srv.fqdn is not None and srv not in self.srvrq_of:
            self._link(srv, srv.fqdn)
            self.loop.call_soon(self.process)

    def close(self) -> None:
        self.closed = True  # (a request woken below that resolves again gets None)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        for res in list(self.resolutions.values()):
            if res.waiters:
                res.status = NONE
                self._wake(res)
        for ns in self.nameservers:
            if ns.transport is not None:
                ns.transport.close()
                ns.transport = None

    # ---------------------------------------------------------------- schedule

    def process(self) -> None:
        """The timer: queries without an answer are sent again or given up, and the
        resolutions due start."""
        if self.timer is not None:
            self.timer.cancel()
        self.timer = None
        now = self.loop.time()
        m = self.model
        for res in list(self.resolutions.values()):
            if not res.running or now < res.last_query + m.timeout_retry:
                continue
            if res.tries <= 0:
                if not res.responses:
                    res.status = TIMEOUT
                    for ns in self.nameservers:
                        ns.counters.timeout += 1
                self._failed(res)
            else:
                fallback = _fallback(res.prefer)
                if not res.responses or res.qtype != res.prefer or fallback is None:
                    res.qtype = res.prefer  # a real timeout, or the fallback was tried
                    res.tries -= 1
                else:
                    res.qtype = fallback
                self._send(res)
        for res in list(self.resolutions.values()):
            if res.running or not (res.servers or res.srvrqs):
                continue
            if res.last_resolution is None or now >= res.last_resolution + m.timeout_resolve:
                self._run(res)
        self._schedule()

    def _schedule(self) -> None:
        now = self.loop.time()
        m = self.model
        due = now + max(m.timeout_resolve, 0.001)
        for res in self.resolutions.values():
            if res.running:
                due = min(due, res.last_query + m.timeout_retry)
            elif res.last_resolution is not None:
                due = min(due, res.last_resolution + m.timeout_resolve)
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_at(max(due, now + 0.001), self.process)

    def _run(self, res: Resolution) -> bool:
        """Start ``res``: False when no query id is free (65,536 running)."""
        for _ in range(100):
            qid = random.getrandbits(16)
            if qid not in self.query_ids:
                break
        else:
            return False
        res.qid = qid
        self.query_ids[qid] = res
        res.running = True
        res.qtype = res.prefer
        res.tries = max(self.model.resolve_retries, 1) - 1
        self._send(res)
        return True

    def _send(self, res: Resolution) -> None:
        res.queries = 0
        res.responses = 0
        res.last_query = self.loop.time()
        if not self.opened:
            return  # (sent by open())
        try:
            data = wire.build_query(res.qid, res.hostname, res.qtype,
                                    self.model.accepted_payload_size)
        except wire.DnsFormatError:
            return  # (a name DNS cannot carry: it never resolves)
        for ns in self.nameservers:
            if ns.send(data):
                res.queries += 1

    def _reset(self, res: Resolution) -> None:
        res.running = False
        res.tries = 0
        res.last_resolution = self.loop.time()
        res.queries = res.responses = 0
        res.qtype = res.prefer
        self.query_ids.pop(res.qid, None)
        res.qid = -1

    # ---------------------------------------------------------------- answers

    def answer(self, ns: NameserverSocket, data: bytes) -> None:
        c = ns.counters
        if len(data) > self.model.accepted_payload_size:
            c.too_big += 1
            return
        if len(data) < 2:
            c.invalid += 1
            return
        res = self.query_ids.get(int.from_bytes(data[:2], "big"))
        if res is None:
            c.outdated += 1
            return
        res.responses += 1
        now = self.loop.time()  # (one instant per answer: hold obsolete may be 0)
        outcome = self._validate(res, data, now)
        if outcome == "wrong_name":  # (the name of another query: given up at once)
            c.other += 1
            res.status = INVALID
            self._failed(res)
            self._schedule()
            return
        if outcome != "valid":
            res.status, counter = _OUTCOMES[outcome]
            setattr(c, counter, getattr(c, counter) + 1)
            if res.responses < res.queries:
                return  # the other name servers may know better
            fallback = _fallback(res.prefer)
            if res.qtype == res.prefer:
                if fallback is not None:  # try the other type at once
                    res.qtype = fallback
                    self._send(res)
            elif res.tries <= 0:
                self._failed(res)
            self._schedule()
            return
        res.status = VALID
        res.last_valid = now
        c.valid += 1
        for i, srv in enumerate(list(res.servers)):
            self._apply(res, srv, ns if i == 0 else None)
        if res.srvrqs:
            self._srv_apply(res, now)
        self._reset(res)
        self._wake(res)
        self._schedule()

    def _validate(self, res: Resolution, data: bytes, now: float) -> str:
        """HAProxy 2.6's verdict on one answer; a valid one updates ``res.items``."""
        if len(data) < 4:
            return "invalid"
        rcode = data[3] & 0x0F
        if rcode:
            return {wire.RCODE_NXDOMAIN: "nx", wire.RCODE_REFUSED: "refused"}.get(rcode,
                                                                                 "error")
        try:
            resp = wire.parse_response(data)
        except wire.DnsFormatError:
            return "invalid"
        if not resp.qname and not resp.qtype:
            return "invalid"  # no question
        if not resp.answers:
            return "empty"
        if len(resp.answers) > self.max_answers:
            return "invalid"
        if res.prefer == wire.TYPE_SRV:
            return self._validate_srv(res, resp, now)
        if resp.truncated:
            return "truncated"
        expected = resp.qname
        found: list[tuple[str, int]] = []
        last = len(resp.answers) - 1
        for i, rec in enumerate(resp.answers):
            if rec.name != expected:
                return "invalid" if i == 0 else "cname_error"
            if rec.rtype == wire.TYPE_CNAME:
                if i == last or not isinstance(rec.data, str):
                    return "cname_error"
                expected = rec.data
            elif rec.rtype in (wire.TYPE_A, wire.TYPE_AAAA) and isinstance(rec.data, str):
                found.append((rec.data, rec.rtype))
        if resp.qname != res.hostname:
            return "wrong_name"
        for ip, rtype in found:
            item = res.items.get(ip)
            if item is None:
                res.seq += 1
                res.items[ip] = AnswerItem(ip, rtype, res.seq, now)
            else:
                item.last_seen = now
        hold = self.model.hold_obsolete
        for ip, item in list(res.items.items()):
            if item.last_seen + hold < now:  # gone from the answers for too long
                for srv in item.owners:
                    self.attached.pop(srv, None)
                del res.items[ip]
        return "valid"

    def _validate_srv(self, res: Resolution, resp: wire.Response, now: float) -> str:
        """An SRV answer (the TC bit allowed, as HAProxy allows it): its rows, and the
        first address the additional section gives each row's target."""
        if resp.answers[-1].rtype == wire.TYPE_CNAME:
            return "cname_error"
        if resp.qname != res.hostname:
            return "wrong_name"
        for rec in resp.answers:
            if rec.rtype != wire.TYPE_SRV or not isinstance(rec.data, wire.Srv):
                continue
            key = (rec.data.target, rec.data.port)
            item = res.srv_items.get(key)
            if item is not None:
                item.weight = rec.data.weight
                item.last_seen = now
                continue
            try:
                item = SrvItem(key[0], key[1], rec.data.weight, res.seq + 1, now)
            except wire.DnsFormatError:
                continue  # (the root: "no such service here")
            res.seq += 1
            res.srv_items[key] = item
        rows = sorted(res.srv_items.values(), key=lambda it: (it.key, it.seq))
        for rec in resp.additionals:
            if rec.rtype not in (wire.TYPE_A, wire.TYPE_AAAA) or not isinstance(rec.data, str):
                continue
            mine = [it for it in rows if it.target == rec.name]
            same = next((it for it in mine if it.glue == rec.data), None)
            if same is not None:
                same.glue_seen = now
                continue
            free = next((it for it in mine if it.glue is None), None)
            if free is not None:  # (a row keeps the address it has until it is stale)
                free.glue, free.glue_seen = rec.data, now
        return "valid"

    # ---------------------------------------------------------------- do-resolve

    def lookup(self, name: str, ipv4: bool, wait: bool,
               done: Callable[[str | None], None]) -> None:
        """`do-resolve`: ``done(address or None)``, called once, with the address
        ``name`` resolves to as HAProxy 2.6.12 finds it.

        A resolution of the same name and preferred type (a server's, or another
        request's) that is not running and was valid less than `hold valid` ago
        answers at once, before this returns; so does a name DNS cannot carry (None:
        HAProxy sends nothing for it either), and so does any name when the rule may
        not ``wait`` (a `tcp-request content` walk that is final: None unless the
        answer was there). Otherwise ``done`` is called when the resolution ends.
        Like HAProxy, nothing is kept for requests alone: a resolution only requests
        wait for is dropped when it ends, so the next request asks again."""
        if self.closed:
            return done(None)
        try:
            wire.encode_name(name)
        except wire.DnsFormatError:
            return done(None)
        prefer = wire.TYPE_A if ipv4 else wire.TYPE_AAAA
        key = (_hostname(name), prefer)
        res = self.resolutions.get(key)
        now = self.loop.time()
        if (res is not None and not res.running and res.status == VALID
                and res.last_resolution is not None
                and now < res.last_resolution + self.model.hold_valid):
            return done(self._stream_pick(res))
        if not wait:
            return done(None)
        if res is None:
            res = self.resolutions[key] = Resolution(key[0], prefer, now)
        res.waiters.append(done)
        if not res.running:
            if not self._run(res):
                res.waiters.remove(done)
                self._forget_if_unused(res)
                return done(None)
            self._schedule()
        return None

    def _wake(self, res: Resolution) -> None:
        """The resolution ended: each waiting request gets its address (None unless
        the resolution is valid); a resolution nothing else uses is dropped."""
        if not res.waiters:
            return
        waiters, res.waiters = res.waiters, []
        ip = self._stream_pick(res) if res.status == VALID else None
        for done in waiters:
            try:
                done(ip)
            except Exception as exc:  # noqa: BLE001 (one request's fault stays its own)
                _log.error("do_resolve_callback_failed", error=f"{type(exc).__name__}: {exc}")
        self._forget_if_unused(res)

    def _forget_if_unused(self, res: Resolution) -> None:
        if not res.servers and not res.srvrqs and not res.waiters and not res.running:
            if self.resolutions.get((res.hostname, res.prefer)) is res:
                del self.resolutions[(res.hostname, res.prefer)]

    def _stream_pick(self, res: Resolution) -> str | None:
        """The address a request takes from an answer: the first of the preferred
        family in HAProxy's order, else the first (HAProxy's score with no server:
        the family is all that differs)."""
        family = 4 if res.prefer == wire.TYPE_A else 6
        first = None
        for item in sorted(res.items.values(), key=lambda it: (it.key, it.seq)):
            if item.family == family:
                return item.ip
            if first is None:
                first = item.ip
        return first

    # ---------------------------------------------------------------- servers

    def _pick(self, res: Resolution, srv: ServerState) -> tuple[AnswerItem | None, bool]:
        """The address ``srv`` should hold and whether it holds it already."""
        family = 4 if res.prefer == wire.TYPE_A else 6
        nets = self.nets.get(srv, ())
        allow_dup = srv in self.allow_dup
        current = None if srv.no_addr else srv.addr
        best: AnswerItem | None = None
        best_score, best_current = -1, False
        for item in sorted(res.items.values(), key=lambda it: (it.key, it.seq)):
            score = 8 if item.family == family else 0
            if any(item.net in n for n in nets if n.version == item.family):
                score += 4
            used = any(o is not srv and o.backend is srv.backend for o in item.owners)
            if used and not allow_dup:
                continue
            if not used:
                score += 2
            is_current = item.ip == current
            if is_current:
                score += 1
            if score > best_score:
                best, best_score, best_current = item, score, is_current
                if score == 15:
                    break
        return best, best_current

    def _attach(self, srv: ServerState, item: AnswerItem | None) -> None:
        old = self.attached.pop(srv, None)
        if old is not None and srv in old.owners:
            old.owners.remove(srv)
        if item is not None:
            item.owners.append(srv)
            self.attached[srv] = item

    def _apply(self, res: Resolution, srv: ServerState, ns: NameserverSocket | None) -> None:
        """A valid answer for ``srv`` (``ns``: the name server that gave it, for the
        first server of the resolution; the others read the same answer "from the
        cache")."""
        held = self.attached.get(srv)
        has_no_ip = False
        if held is None or res.items.get(held.ip) is not held:
            item, is_current = self._pick(res, srv)
            self._attach(srv, item)
            if item is None:
                has_no_ip = True
            elif not is_current:
                if ns is not None:
                    ns.counters.update += 1
                by = f"{self.model.name}/{ns.model.name}" if ns is not None else "DNS cache"
                self._set_addr(srv, item.ip, by)
        now = time.time()
        if has_no_ip:
            if not srv.admin & ADMIN_RMAINT:
                self._down(srv, NO_IP_CAUSE, now)
        elif srv.admin & ADMIN_RMAINT:
            self._log(srv, srvadmin.leave_resolution_maint(srv, now))

    def _failed(self, res: Resolution) -> None:
        """The resolution gave up: each server whose name has failed for its `hold`
        period enters maintenance. The addresses heard so far are forgotten once no
        server of the resolution holds on."""
        now = self.loop.time()
        wall = time.time()
        keep = False
        hold_field, cause = _FAILURES.get(res.status, _OTHER_FAILURE)
        for srv in list(res.servers):
            if srv.admin & ADMIN_RMAINT or res.status == NONE:
                keep = True
            elif now < res.last_valid + getattr(self.model, hold_field):
                keep = True
            else:
                self._down(srv, cause, wall)
        for srvrq in res.srvrqs:
            if res.status == NONE or now < res.last_valid + getattr(self.model, hold_field):
                keep = True
                continue
            for item in sorted(res.srv_items.values(), key=lambda it: (it.key, it.seq)):
                srv = item.owners.get(srvrq)
                if srv is not None:
                    self._srv_release(srv, wall)
        if not keep:
            for item in res.items.values():
                for srv in item.owners:
                    self.attached.pop(srv, None)
            res.items.clear()
            res.srv_items.clear()
        self._reset(res)
        self._wake(res)

    def _srv_apply(self, res: Resolution, now: float) -> None:
        """A valid SRV answer, row by row in HAProxy's order: a stale row frees its
        servers, a live one keeps its server or takes the first free one of each
        request."""
        wall = time.time()
        hold = self.model.hold_obsolete
        for item in sorted(res.srv_items.values(), key=lambda it: (it.key, it.seq)):
            if item.glue is not None and item.glue_seen + hold < now:
                item.glue = None  # (its target is then resolved by name)
            if item.last_seen + hold < now:
                for srv in list(item.owners.values()):
                    self._srv_release(srv, wall)
                del res.srv_items[(item.target, item.port)]
                continue
            for srvrq in res.srvrqs:
                srv = item.owners.get(srvrq)
                if srv is None:
                    if not srvrq.free:
                        continue
                    srv = srvrq.free.pop(0)
                self._srv_assign(srv, srvrq, item, wall)

    def _srv_assign(self, srv: ServerState, srvrq: SrvRequest, item: SrvItem,
                    now: float) -> None:
        """``srv`` serves the row ``item``: its target, port and weight; the address
        the additional section gave, else its target resolved by name."""
        be = srv.backend
        item.owners[srvrq] = srv
        self.srv_item_of[srv] = item
        if item.glue is not None:
            self._unlink(srv)
            if srv.no_addr or srv.addr != item.glue:
                self._set_addr(srv, item.glue, "DNS additional record")
        if srv.fqdn is None:  # (HAProxy logs this one without the stderr line)
            self._say(be, "notice", f"{be.name}/{srv.name} changed its FQDN from (null) to "
                      f"{item.target} by 'SRV record'", mirror=False)
            srv.fqdn = item.target
            srv.set_admin(ADMIN_HMAINT, True, now)
        if item.glue is None:
            self._link(srv, item.target)
        if not srv.no_addr:
            if srv.admin & ADMIN_RMAINT:
                self._log(srv, srvadmin.leave_resolution_maint(srv, now, dns_answer=False))
        elif not srv.admin & ADMIN_RMAINT:
            self._down(srv, SRV_GONE_CAUSE, now)
        if srv.port != item.port:
            srv.port = item.port
            if not srv.no_addr:
                self.state.emit("server_addr", {"backend": be, "server": srv})
        if "ignore-weight" not in srv.model.resolve_opts:
            weight = (item.weight + 255) // 256  # DNS weights 0..65535, ours 0..256
            if weight != srv.uweight:
                self._log(srv, srvadmin.change_weight(srv, weight, now))

    def _srv_release(self, srv: ServerState, now: float) -> None:
        """Its row is gone: no target, no address, no port; it waits for a row."""
        item = self.srv_item_of.pop(srv, None)
        srvrq = self.srvrq_of[srv]
        if item is not None:
            item.owners.pop(srvrq, None)
        self._unlink(srv)
        if not srv.admin & ADMIN_RMAINT:
            self._log(srv, srvadmin.enter_resolution_maint(srv, SRV_GONE_CAUSE, now))
        srv.fqdn = None
        srv.no_addr = True
        srv.port = 0
        srvrq.free.append(srv)

    def _down(self, srv: ServerState, cause: str, now: float) -> None:
        self._attach(srv, None)
        srv.no_addr = True
        self._log(srv, srvadmin.enter_resolution_maint(srv, cause, now))

    def _set_addr(self, srv: ServerState, ip: str, by: str) -> None:
        old = "(none)" if srv.no_addr else srv.addr
        be = srv.backend
        self._say(be, "notice", f"{be.name}/{srv.name} changed its IP from {old} to {ip} by "
                  f"{by}.")
        srv.addr = ip
        srv.no_addr = False
        self.state.cli_addrs.add((be.name, srv.name))
        self.state.emit("server_addr", {"backend": be, "server": srv})

    def _log(self, srv: ServerState, lines: list[tuple[str, str]]) -> None:
        for level, text in lines:
            self._say(srv.backend, level, text)

    def _say(self, be: Any, level: str, text: str, mirror: bool = True) -> None:
        """One state-change line; a failing sink must not leave a resolution half
        applied (it would never be asked again)."""
        try:
            if mirror:
                self.log_event(be, level, text)
            else:
                self.log_event(be, level, text, False)
        except Exception as exc:  # noqa: BLE001 (any sink fault; the change goes on)
            _log.error("resolvers_log_failed", error=f"{type(exc).__name__}: {exc}")


def _fallback(qtype: int) -> int | None:
    """The type asked when the preferred one gives nothing (none for SRV)."""
    return {wire.TYPE_AAAA: wire.TYPE_A, wire.TYPE_A: wire.TYPE_AAAA}.get(qtype)


class ResolverService:
    """The resolvers as a data-plane service (``lb.proxy.runner.start(...,
    services=[...])``): every server that names a section is kept resolved until
    cancelled, and `do-resolve` rules reach the sections through
    ``State.dns_lookup``. ``log_sink(state)`` gives the ``log_event`` of its lines;
    ``servers=False`` (a worker, whose master resolves the servers): the sections
    serve `do-resolve` only."""

    def __init__(self, log_sink: Callable[[State], LogEvent], servers: bool = True) -> None:
        self.log_sink = log_sink
        self.servers = servers

    async def open(self, state: State, loop: asyncio.AbstractEventLoop
                   ) -> dict[str, SectionRuntime]:
        """Before the service runs (lb.proxy.runner.start_service): the sections,
        reachable by `do-resolve` from the first request on, even one the listeners
        took while the sockets connect (its query leaves once they are)."""
        sections = start_sections(state, loop, self.log_sink(state), self.servers)

        def lookup(section: str, name: str, ipv4: bool, wait: bool,
                   done: Callable[[str | None], None]) -> None:
            sec = sections.get(section)
            if sec is None:
                return done(None)
            return sec.lookup(name, ipv4, wait, done)

        state.dns_lookup = lookup
        for sec in sections.values():
            await sec.open()
            sec.start()
        return sections

    async def __call__(self, state: State, loop: asyncio.AbstractEventLoop,
                       sections: dict[str, SectionRuntime]) -> None:
        lookup = state.dns_lookup

        def on_event(event: str, info: dict[str, Any]) -> None:
            if event == "server_fqdn":
                srv = info["server"]
                sec = sections.get(srv.model.resolvers)
                if sec is not None:
                    sec.fqdn_changed(srv)

        state.listeners.append(on_event)
        try:
            await asyncio.Event().wait()
        finally:
            if state.dns_lookup is lookup:
                state.dns_lookup = None
            state.listeners.remove(on_event)
            for sec in sections.values():
                sec.close()


def do_resolve_sections(config: Any) -> set[str]:
    """The sections `do-resolve` rules name."""
    return {r.action.resolvers for p in config.proxies
            for rules in (p.http_request_rules, p.tcp_request_content_rules)
            for r in rules if isinstance(r.action, ActDoResolve)}


def start_sections(state: State, loop: asyncio.AbstractEventLoop,
                   log_event: LogEvent, servers: bool = True) -> dict[str, SectionRuntime]:
    """A runtime for each section some server (``servers``) or `do-resolve` rule
    names, by name. Servers given by address are not resolved until `set server ...
    fqdn` names them, as in HAProxy."""
    by_name = {r.name: r for r in state.config.resolvers}
    sections: dict[str, SectionRuntime] = {}
    for name in sorted(do_resolve_sections(state.config)):
        if name in by_name:
            sections[name] = SectionRuntime(by_name[name], state, loop, log_event)
    for srv in state.all_servers() if servers else ():
        name = srv.model.resolvers
        if name is None or name not in by_name:
            continue
        sec = sections.get(name)
        if sec is None:
            sec = sections[name] = SectionRuntime(by_name[name], state, loop, log_event)
        if needs_resolution(srv.model):
            sec.add_server(srv)
    return sections
