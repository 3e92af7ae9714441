"""Administrative server state changes shared by the CLI, the stats page and the
agent check.

Owns: `ready` / `drain` / `maint` transitions applied through ``ServerState.set_admin``,
weight and maxconn changes with HAProxy's parsing rules, and the HAProxy log texts
they produce (spec §7.6), returned as data. Pure: the caller decides where the lines
go.

Must not import: lb.proxy, lb.cli, lb.log, healthcheck.
"""

from __future__ import annotations

import re

from lb.state import (
    ADMIN_DRAIN,
    ADMIN_FDRAIN,
    ADMIN_FMAINT,
    ADMIN_MAINT,
    ADMIN_RMAINT,
    OP_RUNNING,
    OP_STOPPED,
    OP_STOPPING,
    BackendState,
    ServerState,
)

TARGETS = ("ready", "drain", "maint")
HEALTH_VALUES = ("up", "stopping", "down")


def server_label(srv: ServerState) -> str:
    return f"{'Backup Server' if srv.backup else 'Server'} {srv.backend.name}/{srv.name}"


def counts_left(be: BackendState) -> str:
    act, bck = be.usable_count()
    text = f"{act} active and {bck} backup servers left."
    if act == 0 and bck > 0:
        text += " Running on backup."
    return text


def counts_online(be: BackendState) -> str:
    act, bck = be.usable_count()
    return f"{act} active and {bck} backup servers online."


def was_serving(srv: ServerState) -> bool:
    """Up, for the state-change messages: neither in maintenance nor stopped (a
    server restored as starting is up below its `rise`, as in HAProxy)."""
    return srv.is_running


def change_admin(srv: ServerState, target: str, now: float) -> list[tuple[str, str]]:
    """Apply `ready` / `drain` / `maint`; returns HAProxy's state-change log lines as
    (syslog level, text)."""
    be = srv.backend
    was_up = be.is_up
    was_maint = bool(srv.admin & ADMIN_FMAINT)
    was_drain = bool(srv.admin & ADMIN_FDRAIN)
    serving_before = was_serving(srv)
    msgs: list[tuple[str, str]] = []
    label = server_label(srv)
    if target == "maint":
        if not was_maint:
            srv.set_admin(ADMIN_FMAINT, True, now)
            srv.health = 0  # as HAProxy: maintenance forgets the check history
            if serving_before:
                srv.counters.chkdown += 1  # a transition to DOWN, as HAProxy counts it
            if was_drain:
                srv.set_admin(ADMIN_FDRAIN, False, now)
            if serving_before:
                msgs.append(("alert", f"{label} is going DOWN for maintenance. "
                             f"{counts_left(be)} {srv.cur_conns} sessions active, "
                             f"0 requeued, 0 remaining in queue."))
            else:
                msgs.append(("notice", f"{label} was DOWN and now enters maintenance."))
    elif target == "drain":
        if not was_drain:
            srv.set_admin(ADMIN_FDRAIN, True, now)
        if was_maint:
            leave_maint(srv, now)
            msgs.append(("notice", f"{label} is {leaving_state(srv)} (leaving forced maintenance)."))
            msgs.append(("notice", f"{label} remains in forced drain mode."))
        elif not was_drain:
            msgs.append(("notice", f"{label} enters drain state. {counts_online(be)} "
                         f"0 sessions requeued, 0 total in queue."))
    else:  # ready
        if was_maint:
            leave_maint(srv, now)
            if was_drain:
                srv.set_admin(ADMIN_FDRAIN, False, now)
            msgs.append(("notice", f"{label} is {leaving_state(srv)} (leaving forced maintenance)."))
        elif was_drain:
            srv.set_admin(ADMIN_FDRAIN, False, now)
            msgs.append(("notice", f"{label} is UP (leaving forced drain)."))
    if was_up and not be.is_up:
        msgs.append(("emerg", f"backend {be.name} has no server available!"))
    return msgs


def leave_maint(srv: ServerState, now: float, bit: int = ADMIN_FMAINT) -> None:
    """Clear forced maintenance (or the other maintenance ``bit``). A checked server
    comes back UP at once, at the lowest UP health, whatever its checks said before
    (HAProxy 2.6, observed): the next failed check takes it down again. An agent
    that last said `down` keeps it down until it says `up`."""
    srv.set_admin(bit, False, now)
    if srv.admin & ADMIN_MAINT:
        return
    if srv.model.check:
        srv.health = srv.rise
    judged = srv.model.check or srv.agent is not None
    if judged and srv.op == OP_STOPPED and (srv.agent is None or srv.agent.ok):
        srv.set_operational(OP_RUNNING, now, reason="admin")


def enter_resolution_maint(srv: ServerState, cause: str, now: float) -> list[tuple[str, str]]:
    """Resolution maintenance (its resolvers gave it no address, for ``cause``: "DNS
    NX status", "No IP for server ", ...); HAProxy 2.6.12's log lines."""
    be = srv.backend
    was_up = be.is_up
    serving_before = was_serving(srv)
    srv.set_admin(ADMIN_RMAINT, True, now)
    srv.health = 0
    label = server_label(srv)
    if serving_before:
        srv.counters.chkdown += 1
        msgs = [("alert", f"{label} is going DOWN for maintenance ({cause}). {counts_left(be)} "
                 f"{srv.cur_conns} sessions active, 0 requeued, 0 remaining in queue.")]
    else:
        msgs = [("notice", f"{label} was DOWN and now enters maintenance ({cause}).")]
    if was_up and not be.is_up:
        msgs.append(("emerg", f"backend {be.name} has no server available!"))
    return msgs


def leave_resolution_maint(srv: ServerState, now: float,
                           dns_answer: bool = True) -> list[tuple[str, str]]:
    """Its name resolves again: out of resolution maintenance; HAProxy 2.6.12's lines
    (``dns_answer``: an A/AAAA answer did it, which HAProxy says once more; an SRV
    record's does not)."""
    leave_maint(srv, now, ADMIN_RMAINT)
    label = server_label(srv)
    msgs = [("notice", f"{label} ('{srv.fqdn}') is {leaving_state(srv)} (resolves again).")]
    if dns_answer:
        msgs.append(("notice", f"Server {srv.backend.name}/{srv.name} administratively READY "
                     "thanks to valid DNS answer."))
    return msgs


def leaving_state(srv: ServerState) -> str:
    if srv.admin & ADMIN_MAINT:
        return "DOWN"
    if (srv.model.check or srv.agent is not None) and srv.op == OP_STOPPED:
        return "DOWN"
    return "UP/DRAIN" if srv.in_drain else "UP/READY"


def force_agent(srv: ServerState, value: str, now: float) -> list[tuple[str, str]]:
    """`set server b/s agent up|down`: the agent's health, and the server's state as
    `set server ... health` would set it (its check's counter is left alone)."""
    assert srv.agent is not None
    srv.agent.health = srv.agent.rise + srv.agent.fall - 1 if value == "up" else 0
    if srv.in_maint:
        return []
    return force_health(srv, value, now, check_health=False)


def force_health(srv: ServerState, value: str, now: float,
                 check_health: bool = True) -> list[tuple[str, str]]:
    """`set server b/s health up|stopping|down`, with or without checks (a server
    without checks stays as forced until told otherwise, as in HAProxy 2.6.12);
    returns the state-change log lines as (syslog level, text)."""
    be = srv.backend
    was_up = be.is_up
    serving_before = was_serving(srv) and srv.op != OP_STOPPING
    stopped_before = not was_serving(srv)
    if value == "up":
        if check_health:
            srv.health = srv.rise + srv.fall - 1
        srv.set_operational(OP_RUNNING, now, reason="cli")
    elif value == "stopping":
        srv.health = srv.rise + srv.fall - 1
        srv.set_operational(OP_STOPPING, now, reason="cli")
    else:
        if check_health:
            srv.health = 0
        srv.set_operational(OP_STOPPED, now, reason="cli")
        if not stopped_before:
            srv.counters.chkdown += 1
    srv.last_change = now
    label = server_label(srv)
    msgs: list[tuple[str, str]] = []
    if srv.admin & ADMIN_MAINT:
        pass  # in maintenance: its health shows when it leaves
    elif value == "down" and not stopped_before:
        msgs.append(("alert", f"{label} is DOWN, changed from CLI. {counts_left(be)} "
                     f"{srv.cur_conns} sessions active, 0 requeued, 0 remaining in queue."))
    elif value == "up" and not serving_before:
        msgs.append(("notice", f"{label} is UP, changed from CLI. {counts_online(be)} "
                     f"0 sessions requeued, 0 total in queue."))
    elif value == "stopping" and srv.op == OP_STOPPING and (serving_before or stopped_before):
        msgs.append(("notice", f"{label} is stopping, changed from CLI. {counts_left(be)} "
                     f"{srv.cur_conns} sessions active, 0 requeued, 0 remaining in queue."))
    if was_up and not be.is_up:
        msgs.append(("emerg", f"backend {be.name} has no server available!"))
    return msgs


_STATIC_HASHES = ("source", "uri", "url_param", "hdr", "rdp-cookie", "hash")


def parse_weight(srv: ServerState, text: str) -> int:
    """`N` (0..256) or `N%` of the initial weight -> the new weight; ValueError with
    HAProxy's text otherwise (`set weight`, and an agent's `75%`)."""
    neg = text.startswith("-")
    digits = text[1:] if neg else text
    n = 0
    i = 0
    while i < len(digits) and digits[i].isdigit():
        n = n * 10 + int(digits[i])
        i += 1
    if i == 0:
        raise ValueError("Empty weight string empty or preceded by garbage\n")
    rest = digits[i:]
    if neg:
        n = -n
    algo = srv.backend.model.balance
    static = algo.algorithm == "static-rr" or (
        algo.algorithm in _STATIC_HASHES and algo.hash_type == "map-based")
    if rest == "%":
        if n < 0:
            raise ValueError("Relative weight must be positive.\n")
        if static and n not in (0, 100):
            raise ValueError("Backend is using a static LB algorithm and only accepts "
                             "weights '0%' and '100%'.\n")
        return min(srv.iweight * min(n, 25600) // 100, 256)
    if rest:
        raise ValueError("Trailing garbage in weight string\n")
    if not 0 <= n <= 256:
        raise ValueError("Absolute weight can only be between 0 and 256 inclusive.\n")
    if static and n not in (0, srv.iweight):
        raise ValueError("Backend is using a static LB algorithm and only accepts "
                         "weights '0%' and '100%'.\n")
    return n


def change_weight(srv: ServerState, weight: int, now: float) -> list[tuple[str, str]]:
    """Set the user weight. A drained server logs that it stays drained each time, as
    HAProxy 2.6.12 does (its status update runs on every weight change)."""
    srv.set_weight(weight, now)
    if srv.admin & ADMIN_DRAIN and not srv.admin & ADMIN_MAINT:
        return [("notice", f"{server_label(srv)} remains in forced drain mode.")]
    return []


def change_maxconn(srv: ServerState, text: str) -> None:
    """`set maxconn server` and an agent's `maxconn:N`; ValueError with HAProxy's
    text. Queued requests may now have a slot: the running proxy hears of it."""
    m = re.match(r"\s*[+-]?[0-9]+", text)
    if m is None:
        raise ValueError("maxconn string empty or preceded by garbage")
    if text[m.end():]:
        raise ValueError("Trailing garbage in maxconn string")
    srv.maxconn = max(int(m.group(0)), 0)
    srv.backend.state.emit("server_maxconn", {"backend": srv.backend, "server": srv})
