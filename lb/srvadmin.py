"""Administrative server state changes shared by the CLI and the stats page.

Owns: `ready` / `drain` / `maint` transitions applied through ``ServerState.set_admin``
and the HAProxy log texts they produce (spec §7.6), returned as data. Pure: the
caller decides where the lines go.

Must not import: lb.proxy, lb.cli, lb.log, healthcheck.
"""

from __future__ import annotations

from lb.state import (
    ADMIN_FDRAIN,
    ADMIN_FMAINT,
    ADMIN_MAINT,
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
        msgs.append(("emerg", f"backend '{be.name}' has no server available!"))
    return msgs


def leave_maint(srv: ServerState, now: float) -> None:
    """Clear forced maintenance. A checked server comes back UP at once, at the
    lowest UP health, whatever its checks said before (HAProxy 2.6, observed): the
    next failed check takes it down again."""
    srv.set_admin(ADMIN_FMAINT, False, now)
    if srv.model.check and not srv.admin & ADMIN_MAINT:
        srv.health = srv.rise
        if srv.op == OP_STOPPED:
            srv.set_operational(OP_RUNNING, now, reason="admin")


def leaving_state(srv: ServerState) -> str:
    if srv.admin & ADMIN_MAINT:
        return "DOWN"
    if srv.model.check and srv.op == OP_STOPPED:
        return "DOWN"
    return "UP/DRAIN" if srv.in_drain else "UP/READY"


def force_health(srv: ServerState, value: str, now: float) -> list[tuple[str, str]]:
    """`set server b/s health up|stopping|down`, with or without checks (a server
    without checks stays as forced until told otherwise, as in HAProxy 2.6.12);
    returns the state-change log lines as (syslog level, text)."""
    be = srv.backend
    was_up = be.is_up
    serving_before = was_serving(srv) and srv.op != OP_STOPPING
    stopped_before = not was_serving(srv)
    if value == "up":
        srv.health = srv.rise + srv.fall - 1
        srv.set_operational(OP_RUNNING, now, reason="cli")
    elif value == "stopping":
        srv.health = srv.rise + srv.fall - 1
        srv.set_operational(OP_STOPPING, now, reason="cli")
    else:
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
        msgs.append(("emerg", f"backend '{be.name}' has no server available!"))
    return msgs
