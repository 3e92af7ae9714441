"""Server states carried over a reload: a server-state file applied to a fresh State.

Owns: what each matched line of a server-state file (read and checked by
``lb.config.server_state_file``) changes in a server that has just been built
from the configuration, in HAProxy 2.6.12's order and with its rules: the
operational state and check health, then maintenance (a change of `disabled` in
the configuration wins over the old state), forced drain, the time of the last
change, the last check's status, a check disabled from the CLI, the weight (unless
the configured weight changed) and the port. Returns HAProxy's warnings (the
state-change lines of the start-up, and the file's own) as diagnostics; the caller
prints them, as `lb -c` and every start do.

An address is not applied here: for a server named by a host name it is the
`last` method of `init-addr`, taken while the configuration loads
(``lb.config.addresses``).

Must not import: lb.proxy, lb.cli, lb.log, healthcheck.
"""

from __future__ import annotations

import time

from lb import srvadmin
from lb.config.server_state_file import (
    CHK_CONFIGURED,
    CHK_ENABLED,
    StateLine,
    read_state_files,
)
from lb.errors import Diagnostic
from lb.state import (
    ADMIN_CMAINT,
    ADMIN_FDRAIN,
    ADMIN_FMAINT,
    OP_RUNNING,
    OP_STARTING,
    OP_STOPPED,
    OP_STOPPING,
    ServerState,
    State,
)
from lb.stats_core import CHECK_STATUSES

_STATUS_BY_NUMBER = {num: name for name, (num, _desc) in CHECK_STATUSES.items()}
_AFTER_RELOAD = "changed from server-state after a reload."


def _note(text: str) -> Diagnostic:
    return Diagnostic("warning", "", 0, 0, text, "server-state", style="plain", phase="check")


def restore_server_states(state: State, now: float | None = None) -> list[Diagnostic]:
    """Apply the configuration's server-state files to ``state`` (built from the
    same configuration, not yet serving); returns the warnings in HAProxy's order."""
    now = time.time() if now is None else now
    files = read_state_files(state.config)
    out = list(files.notes)
    for bs in files.backends:
        out += bs.before
        be = state.backends.get(bs.proxy.name)
        if be is None:
            continue
        for name, line in bs.lines.items():
            srv = be.by_name.get(name)
            if srv is not None:
                out += [_note(t) for t in apply_line(srv, line, now)]
        out += bs.after
    return out


def apply_line(srv: ServerState, line: StateLine, now: float) -> list[str]:
    """Apply one checked line to one server; returns the warning texts."""
    label = srvadmin.server_label(srv)
    if line.errors:
        return [f"server-state application failed for server "
                f"'{srv.backend.name}/{srv.name}'{line.errors}"]
    msgs: list[str] = []
    be = srv.backend
    serving = srvadmin.was_serving(srv)
    rise, fall = srv.rise, srv.fall
    srv.health = line.check_health
    op = line.op
    if op == OP_STARTING and rise == 1:
        op = OP_RUNNING
    if op == OP_STOPPING and fall == 1:
        op = OP_STOPPED
    if op == OP_STOPPED:
        srv.health = 0
        srv.set_operational(OP_STOPPED, now, reason="state-file")
        if serving:
            srv.counters.chkdown += 1
            msgs.append(f"{label} is DOWN, {_AFTER_RELOAD} {srvadmin.counts_left(be)} "
                        f"{srv.cur_conns} sessions active, 0 requeued, 0 remaining in queue.")
    elif op == OP_STARTING:
        if not 1 <= srv.health < rise:
            srv.health = rise - 1
        # with a slowstart it warms up again (the health checker starts the ramp);
        # without one it is simply up, at a low health
        warm = srv.model.slowstart > 0
        srv.set_operational(OP_STARTING if warm else OP_RUNNING, now, reason="state-file")
        if warm and serving:
            msgs.append(f"{label} is UP, reason: Unknown, check duration: 0ms. "
                        f"{srvadmin.counts_online(be)} 0 sessions requeued, 0 total in queue.")
    elif op == OP_STOPPING:
        if not rise <= srv.health <= rise + fall - 2:
            srv.health = rise
        srv.set_operational(OP_STOPPING, now, reason="state-file")
        if serving:
            msgs.append(f"{label} is stopping, {_AFTER_RELOAD} {srvadmin.counts_online(be)} "
                        f"0 sessions requeued, 0 total in queue.")
    else:
        srv.health = rise + fall - 1
        srv.set_operational(OP_RUNNING, now, reason="state-file")
    # maintenance: a change of `disabled` in the configuration wins over the old state
    conf_disabled = bool(srv.admin & ADMIN_CMAINT)
    file_maint = bool(line.admin & ADMIN_FMAINT)
    if bool(line.admin & ADMIN_CMAINT) != conf_disabled:
        target: bool | None = conf_disabled
    elif file_maint != conf_disabled:
        target = file_maint
    else:
        target = None  # as configured
    in_maint = bool(srv.admin & ADMIN_FMAINT)
    if target and not in_maint:
        if srvadmin.was_serving(srv):
            srv.counters.chkdown += 1
        srv.set_admin(ADMIN_FMAINT, True, now)  # silent at start-up, as in HAProxy
        srv.health = 0
    elif target is False and in_maint:
        srvadmin.leave_maint(srv, now)
        msgs.append(f"{label} is {srvadmin.leaving_state(srv)} (leaving forced maintenance).")
    # forced drain, unless it only came from a configured weight of 0 now raised
    if (not srv.admin & ADMIN_FMAINT and line.admin & ADMIN_FDRAIN
            and (line.iweight > 0 or srv.iweight == 0)):
        srv.set_admin(ADMIN_FDRAIN, True, now)
        msgs.append(f"{label} remains in forced drain mode.")
    warming = srv.op == OP_STARTING  # HAProxy dates that change from the start-up
    srv.last_change = now if warming else now - line.since_change
    if srv.down_since is not None:  # down since the change the file dates
        srv.down_since = srv.last_change
    status = _STATUS_BY_NUMBER.get(line.check_status)
    if srv.model.check and status is not None:
        srv.check_status = status
        srv.check_desc = CHECK_STATUSES[status][1]
    if srv.model.check and line.check_disabled:
        srv.check_enabled = False
    agent = srv.agent
    if agent is not None:  # `disable agent`, `set server ... agent-addr/agent-port`
        if line.agent_state & CHK_CONFIGURED and not line.agent_state & CHK_ENABLED:
            agent.enabled = False
        agent.addr = line.agent_addr or agent.addr
        agent.port = line.agent_port or agent.port
    if line.iweight == srv.iweight and line.uweight != srv.uweight:
        since = srv.last_change
        srv.set_weight(line.uweight, now)
        srv.last_change = since
    if line.port is not None and line.port != (srv.port or 0):
        srv.port = line.port
        srv.backend.state.cli_addrs.add((srv.backend.name, srv.name))
    return msgs
