"""Server-state files: reading them and matching their lines to servers.

Owns: where a backend's file is (`server-state-file`, `server-state-base`,
`load-server-state-from-file`, `server-state-file-name`), the version line, the
line format (the `show servers state` output, version 1), HAProxy 2.6.12's rules
for which line belongs to which server (the global file by backend and server
name; a local file also checks the backend id and name), the validation of each
line's fields, and the warnings of all these steps, worded as HAProxy's.

Applying a matched line to a running server is ``lb.server_state_apply``'s job;
``lb.config.addresses`` takes the address of a named server from here (the `last`
method of `init-addr`). Reading a file is the only I/O.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from lb.config.model import Config, Proxy
from lb.errors import Diagnostic

VERSION = 1
LINE_MAX = 2000  # HAProxy reads a line into a buffer of this size (a longer one is cut)
MIN_FIELDS, MAX_FIELDS = 20, 25  # fields of a version-1 line (the last five optional)
PATH_MAX = 4096

# HAProxy's numeric vocabularies, as `show servers state` prints them
OP_STOPPED, OP_STARTING, OP_RUNNING, OP_STOPPING = 0, 1, 2, 3
ADMIN_FMAINT, ADMIN_IMAINT, ADMIN_CMAINT, ADMIN_FDRAIN = 0x01, 0x02, 0x04, 0x08
ADMIN_IDRAIN, ADMIN_RMAINT, ADMIN_FQDN_CHANGED = 0x10, 0x20, 0x40
# admin values a line may carry once the inherited and resolution bits are dropped
_ADMIN_VALID = frozenset({0, ADMIN_FMAINT, ADMIN_CMAINT, ADMIN_CMAINT | ADMIN_FMAINT,
                          ADMIN_CMAINT | ADMIN_FDRAIN, ADMIN_FDRAIN})
CHECK_STATUS_COUNT = 21  # HAProxy 2.6's health-check status enum (UNKNOWN .. PROCOK)
CHECK_RESULTS = 5  # unknown, neutral, failed, passed, conditionally passed
CHK_CONFIGURED, CHK_ENABLED = 0x02, 0x04
_CHECK_STATE_BITS = 0x1F  # in progress, configured, enabled, paused, agent
UWEIGHT_MAX = 256
_INT = re.compile(r"[ \t\n\v\f\r]*([+-]?\d+)")
_DOMAIN = re.compile(r"[A-Za-z0-9.\-_]*")
_VERSION_LINE = re.compile(rb"[ \t\n\v\f\r]*[+-]?\d+\n")


def _strtol(text: str) -> int | None:
    """C's strtol as HAProxy uses it: leading digits count, trailing bytes are
    ignored; None when there is no number or it overflows a long."""
    m = _INT.match(text)
    if m is None:
        return None
    n = int(m.group(1))
    return n if -(1 << 63) <= n < (1 << 63) else None


def _leading_uint(text: str) -> int:
    """HAProxy's strl2uic: the leading decimal digits (0 when there are none)."""
    n = 0
    for ch in text:
        if not "0" <= ch <= "9":
            break
        n = n * 10 + ord(ch) - 48
    return n


@dataclass(frozen=True, slots=True)
class StateLine:
    """One server's line, its fields checked. ``errors`` holds HAProxy's
    ", invalid srv_x value 'v'" parts; a line with errors is not applied."""

    be_id: str
    be_name: str
    srv_name: str
    addr: str  # "-" when the dump had none
    op: int = OP_RUNNING
    admin: int = 0  # inherited, resolution and fqdn bits already dropped
    uweight: int = 1
    iweight: int = 1
    since_change: int = 0  # seconds since the last state change at the dump
    check_status: int = 0
    check_result: int = 0
    check_health: int = 0
    check_state: int = 0
    agent_state: int = 0
    port: int | None = None
    errors: str = ""
    agent_addr: str | None = None  # an IP literal, else None
    agent_port: int = 0  # 0: none

    @property
    def check_disabled(self) -> bool:
        """`disable health` was in force: the check existed and was not enabled."""
        return bool(self.check_state & CHK_CONFIGURED and not self.check_state & CHK_ENABLED)


def parse_fields(fields: list[str]) -> StateLine:
    """Check a line's fields after the four that name the server (HAProxy's order
    of messages; every bad field is named)."""
    p = fields + [""] * (MAX_FIELDS - len(fields))
    errors: list[str] = []

    def number(idx: int, name: str, ok: object) -> int:
        v = _strtol(p[idx])
        if v is None or not (ok(v) if callable(ok) else True):
            errors.append(f", invalid {name} value '{p[idx]}'")
            return 0
        return v

    op = number(5, "srv_op_state", lambda v: 0 <= v <= 3)
    raw_admin = _strtol(p[6])
    admin = (raw_admin or 0) & ~(ADMIN_IDRAIN | ADMIN_IMAINT | ADMIN_RMAINT | ADMIN_FQDN_CHANGED)
    if raw_admin is None or admin not in _ADMIN_VALID:
        errors.append(f", invalid srv_admin_state value '{p[6]}'")
    uweight = number(7, "srv_uweight", lambda v: 0 <= v <= UWEIGHT_MAX)
    iweight = number(8, "srv_iweight", lambda v: 0 <= v <= UWEIGHT_MAX)
    since = number(9, "srv_last_time_change", True)
    status = number(10, "srv_check_status", lambda v: 0 <= v < CHECK_STATUS_COUNT)
    result = number(11, "srv_check_result", lambda v: 0 <= v < CHECK_RESULTS)
    health = number(12, "srv_check_health", True)
    cstate = number(13, "srv_check_state", lambda v: not v & ~_CHECK_STATE_BITS)
    astate = number(14, "srv_agent_state", lambda v: not v & ~_CHECK_STATE_BITS)
    number(15, "bk_f_forced_id", lambda v: v in (0, 1))
    number(16, "srv_f_forced_id", lambda v: v in (0, 1))
    fqdn = p[17]
    if fqdn and not fqdn.startswith("-") and (len(fqdn) > 255
                                               or not _DOMAIN.fullmatch(fqdn)):
        errors.append(f", invalid srv_fqdn value '{fqdn}'")
    port: int | None = None
    if p[18]:
        port = _leading_uint(p[18])
        if port > 0xFFFF:
            errors.append(f", invalid srv_port value '{p[18]}'")
            port = None
    try:
        agent_addr: str | None = str(ipaddress.ip_address(p[23]))
    except ValueError:
        agent_addr = None
    agent_port = _leading_uint(p[24]) if p[24][:1].isdigit() else 0
    return StateLine(p[0], p[1], p[3], p[4], op, admin, uweight, iweight, since, status,
                     result, health, cstate, astate, port, "".join(errors), agent_addr,
                     agent_port if agent_port <= 0xFFFF else 0)


def split_line(raw: str) -> list[str] | None:
    """A line's fields; [] for a blank or comment line; None for a line HAProxy
    calls corrupted (cut by the buffer, no newline, or a field count outside 20-25)."""
    if not raw.endswith("\n"):
        return None
    text = raw[:-1].lstrip(" \t")
    if not text or text.startswith("#"):
        return []
    fields = [f for f in re.split(r"[ \t]+", text) if f][:MAX_FIELDS]
    if not MIN_FIELDS <= len(fields) <= MAX_FIELDS:
        return None
    return fields


def file_path(name: str, base: str | None) -> str:
    """An absolute name as it is; a relative one below `server-state-base`."""
    if name.startswith("/") or not base:
        return name
    return base + ("" if base.endswith("/") else "/") + name


@dataclass(slots=True)
class _File:
    lines: list[list[str]] = field(default_factory=list)  # fields of every data line
    corrupt_at: int = 0  # 1-based number of the first corrupted line (0: none)
    error: str = ""  # why the file gave no version at all


def _read(path: str) -> _File:
    """The file's data lines, read as HAProxy's fgets loop reads them: a line at a
    time into a LINE_MAX buffer (a longer line comes out in pieces, the first
    without its newline, which makes the file corrupted)."""
    out = _File()
    try:
        with open(path, "rb") as f:
            first = f.readline(LINE_MAX - 1)
            if (_VERSION_LINE.fullmatch(first) is None or int(first) != VERSION):
                out.error = "version"
                return out
            n = 0
            while chunk := f.readline(LINE_MAX - 1):
                n += 1
                fields = split_line(chunk.decode("utf-8", "surrogateescape"))
                if fields is None:
                    out.corrupt_at = n
                    break
                if fields:
                    out.lines.append(fields)
    except IsADirectoryError:  # HAProxy opens it, and reads no version from it
        out.error = "version"
    except OSError as e:
        out.error = f"open:{e.strerror or e}"
    return out


@dataclass(slots=True)
class BackendStates:
    """What a backend takes from its file, in HAProxy's order: warnings about the
    file, then the matched line of each server, then the lines no server took."""

    proxy: Proxy
    before: list[Diagnostic] = field(default_factory=list)
    lines: dict[str, StateLine] = field(default_factory=dict)  # server name -> line
    after: list[Diagnostic] = field(default_factory=list)


@dataclass(slots=True)
class StateFiles:
    notes: list[Diagnostic] = field(default_factory=list)  # the global file's warnings
    backends: list[BackendStates] = field(default_factory=list)

    def addresses(self) -> dict[tuple[str, str], str]:
        """(backend, server) -> the address a valid line gives (`init-addr last`)."""
        return {(b.proxy.name, name): line.addr for b in self.backends
                for name, line in b.lines.items() if not line.errors and line.addr != "-"}


def _warn(text: str, code: str = "server-state") -> Diagnostic:
    return Diagnostic("warning", "", 0, 0, text, code, style="plain", phase="check")


def _open_note(what: str, path: str, error: str) -> str:
    return f"{what} '{path}': {error.removeprefix('open:')}"


def read_state_files(cfg: Config) -> StateFiles:
    """Read the global file and each backend's local file; match lines to servers."""
    out = StateFiles()
    g = cfg.global_
    global_lines: dict[tuple[str, str], list[str]] | None = None
    if g.server_state_file is not None:
        path = file_path(g.server_state_file, g.server_state_base)
        if len(path) >= PATH_MAX:
            out.notes.append(_warn("config: Can't load global server state file: file too long."))
        else:
            f = _read(path)
            if f.error.startswith("open:"):
                out.notes.append(_warn(_open_note("config: Can't open global server state file",
                                                  path, f.error)))
            elif f.error:
                out.notes.append(_warn("config: Can't get version of the global server state "
                                       f"file '{path}'."))
            elif f.corrupt_at:
                out.notes.append(_warn(f"config: corrupted global server state file '{path}' "
                                       f"at line {f.corrupt_at}."))
            else:
                global_lines = {}
                for fields in f.lines:  # keyed by the names the line gives; first wins
                    global_lines.setdefault((fields[1], fields[3]), fields)
    for p in cfg.proxies:
        if (not p.is_backend or p.disabled or not p.servers
                or p.load_server_state == "none"):
            continue
        bs = BackendStates(p)
        if p.load_server_state == "global":
            if global_lines is not None:
                for s in p.servers:
                    fields = global_lines.get((p.name, s.name))
                    if fields is not None:
                        bs.lines[s.name] = parse_fields(fields)
        else:
            _read_local(cfg, p, bs)
        out.backends.append(bs)
    return out


def _read_local(cfg: Config, p: Proxy, bs: BackendStates) -> None:
    path = file_path(p.server_state_file_name or p.name, cfg.global_.server_state_base)
    who = f"Proxy '{p.name}'"
    if len(path) >= PATH_MAX:
        bs.before.append(_warn(f"{who}: Can't load local server state file: file too long."))
        return
    f = _read(path)
    if f.error.startswith("open:"):
        bs.before.append(_warn(_open_note(f"{who}: Can't open server state file", path,
                                          f.error) + "."))
        return
    if f.error:
        bs.before.append(_warn(f"{who}: Can't get version of the server state file '{path}'."))
        return
    kept: dict[str, list[str]] = {}
    for fields in f.lines:
        same_id = _atoi(fields[0]) == p.puid
        same_name = fields[1] == p.name
        if not same_id and not same_name:
            continue
        if not same_id:
            bs.before.append(_warn(f"{who}: backend ID mismatch: from server state file: "
                                   f"'{fields[0]}', from running config '{p.puid}'"))
        elif not same_name:
            bs.before.append(_warn(f"{who}: backend name mismatch: from server state file: "
                                   f"'{fields[1]}', from running config '{p.name}'"))
            if not _atoi(fields[15]) & 1:  # the old backend's id was not forced
                continue
        kept.setdefault(fields[3], fields)
    if f.corrupt_at:
        bs.before.append(_warn(f"{who}: corrupted server state file '{path}' at line "
                               f"{f.corrupt_at}."))
        return
    names = {s.name for s in p.servers}
    for name, fields in kept.items():
        if name in names:
            bs.lines[name] = parse_fields(fields)
        else:
            bs.after.append(_warn(f"{who}: can't find server '{name}' in backend '{p.name}'"))
    # servers take their lines in the backend's order
    bs.lines = {s.name: bs.lines[s.name] for s in p.servers if s.name in bs.lines}


def _atoi(text: str) -> int:
    v = _strtol(text)
    return 0 if v is None else v
