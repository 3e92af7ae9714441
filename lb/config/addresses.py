"""Server and log addresses at start-up: HAProxy's `init-addr`, checked after a good
parse.

Owns: trying each server's address methods in order (`last`, `libc`, `none`, an IP
literal; `last,libc` by default, `last,libc,none` for a server with `resolvers`), HAProxy's messages when a method fails, which
servers start in resolution maintenance (`none` reached after a failure), and the
host names of network log targets. HAProxy does this in `-c` too, so a name that
does not resolve fails both, with exit 1.

This is the one part of loading that does network I/O (the system resolver), so
``lb.config.load`` runs it on files and ``load_text`` leaves it out. ``last`` is the
address the server's line in a server-state file gives
(``lb.config.server_state_file``), when its backend loads one.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from lb.config.model import Config, Proxy, Server
from lb.errors import Diagnostic, Severity

DEFAULT_METHODS = "last,libc"
# a server at one of these addresses connects to the address the client connected to
# (after `set-dst`): HAProxy's transparent servers
ANY_ADDRESSES = frozenset(("0.0.0.0", "::", "*"))
FAILED_TEXT = "Failed to initialize server(s) addr."

Resolver = Callable[[str], bool]


def _libc(host: str) -> bool:
    try:
        socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    return True


def is_ip_literal(host: str) -> bool:
    """An IPv4 or IPv6 literal, brackets allowed."""
    try:
        ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return False
    return True


# a server address that names a local stream socket, not a TCP endpoint
SOCKET_PREFIXES = ("/", "unix@", "abns@")


# sun_path's size: HAProxy 2.6.12 pads an abstract name with NULs to all of it, and a
# peer must too to reach the same socket
SUN_PATH_SIZE = 108


def socket_path(host: str) -> str | None:
    """The socket address of a server, bind or stats socket written as a local socket:
    ``/path`` and ``unix@path`` name a file; ``abns@name``, a socket in Linux's
    abstract namespace: a NUL, the name, and NULs up to sun_path's size, as HAProxy
    2.6.12 binds and connects to one. None for a network address."""
    if host.startswith("/"):
        return host
    if host.startswith("unix@"):
        return host[5:]
    if host.startswith("abns@"):
        return ("\0" + host[5:]).ljust(SUN_PATH_SIZE, "\0")
    return None


def needs_resolution(srv: Server) -> bool:
    """A name, not an IP literal, a socket path or the empty 'no address'."""
    host = srv.host
    if not host or host == "*" or host.startswith(SOCKET_PREFIXES):
        return False
    return not is_ip_literal(host)


@dataclass
class AddressCheck:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    # (proxy, server) -> Server fields to change: start parked (`none`) or on the
    # fallback IP literal
    changes: dict[tuple[str, str], dict[str, object]] = field(default_factory=dict)

    @property
    def fatal(self) -> bool:
        return any(d.fatal for d in self.diagnostics)


def _try_methods(p: Proxy, srv: Server, resolve: Resolver, cache: dict[str, bool],
                 out: AddressCheck, last: dict[tuple[str, str], str]) -> None:
    label = f"'server {p.name}/{srv.name}' : "
    failed = False  # a libc lookup failed on the way (HAProxy's return code)

    def note(severity: Severity, text: str, code: str) -> None:
        out.diagnostics.append(Diagnostic(
            severity, srv.origin.file, srv.origin.line, 0, label + text, code,
            style="bracket", phase="check"))

    # a server its resolvers keep an address for may start without one
    default = DEFAULT_METHODS + (",none" if srv.resolvers is not None else "")
    for method in (srv.init_addr or default).split(","):
        method = method.strip()
        if method == "last":
            addr = last.get((p.name, srv.name), "")
            if is_ip_literal(addr):
                out.changes[(p.name, srv.name)] = {
                    "fallback_ip": addr.removeprefix("[").removesuffix("]")}
                return
        elif method == "libc":
            if srv.host not in cache:
                cache[srv.host] = resolve(srv.host)
            if cache[srv.host]:
                return
            failed = True
        elif method == "none":
            out.changes[(p.name, srv.name)] = {"addr_none": True}
            if failed:
                note("warning", f"could not resolve address '{srv.host}', disabling server.",
                     "address-none")
            return
        elif is_ip_literal(method):
            out.changes[(p.name, srv.name)] = {
                "fallback_ip": method.removeprefix("[").removesuffix("]")}
            if failed:
                note("warning", f"could not resolve address '{srv.host}', falling back to "
                     "configured address.", "address-fallback")
            return
    if failed:
        note("alert", f"could not resolve address '{srv.host}'.", "unresolved-address")
    else:
        note("alert", f"no method found to resolve address '{srv.host}'.",
             "unresolved-address")


def _check_log_targets(cfg: Config, resolve: Resolver, cache: dict[str, bool],
                       out: AddressCheck) -> None:
    """A network log target named by a host name that does not resolve is an error
    of its `log` line, as in HAProxy (which resolves it while parsing)."""
    seen: set[tuple[str, int]] = set()
    targets = [*cfg.global_.logs, *(t for p in cfg.proxies for t in p.logs)]
    for t in targets:
        where = (t.origin.file, t.origin.line)
        if t.kind not in ("udp", "tcp") or is_ip_literal(t.address) or where in seen:
            continue
        seen.add(where)  # `log global` copies: one message for the line
        if t.address not in cache:
            cache[t.address] = resolve(t.address)
        if not cache[t.address]:
            out.diagnostics.append(Diagnostic(
                "alert", t.origin.file, t.origin.line, 0,
                f"log : invalid address: '{t.address}' in '{t.spec or t.address}'",
                "bad-address"))  # a parse error in HAProxy: its file is named


def _last_addresses(cfg: Config) -> dict[tuple[str, str], str]:
    if not any(p.load_server_state != "none" and any(needs_resolution(s) for s in p.servers)
               for p in cfg.proxies):
        return {}
    from lb.config.server_state_file import read_state_files

    return read_state_files(cfg).addresses()


def check_addresses(cfg: Config, resolve: Resolver = _libc) -> AddressCheck:
    """Messages for servers and log targets whose name gives no address, and the
    servers that start in resolution maintenance."""
    out = AddressCheck()
    cache: dict[str, bool] = {}
    _check_log_targets(cfg, resolve, cache, out)
    logs_failed = out.fatal
    last = _last_addresses(cfg)
    for p in cfg.proxies:
        if p.disabled:
            continue  # never started: HAProxy resolves none of its servers
        for srv in p.servers:
            if needs_resolution(srv):
                _try_methods(p, srv, resolve, cache, out, last)
    if out.fatal and not logs_failed:
        out.diagnostics.append(Diagnostic("alert", "", 0, 0, FAILED_TEXT, "server-addr-init",
                                          style="plain", phase="check"))
    return out


def apply_addresses(cfg: Config, changes: dict[tuple[str, str], dict[str, object]]) -> Config:
    """The config with the servers that start parked or on their fallback address."""
    if not changes:
        return cfg
    names = {px for px, _ in changes}
    proxies = tuple(
        replace(p, servers=tuple(replace(s, **changes[(p.name, s.name)])  # type: ignore[arg-type]
                                 if (p.name, s.name) in changes else s for s in p.servers))
        if p.name in names else p
        for p in cfg.proxies)
    return replace(cfg, proxies=proxies)
