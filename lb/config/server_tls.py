"""TLS toward servers, as the configuration reads it.

Owns: the global statements that set what a `server ... ssl` line, or a `bind ...
ssl` one, does not (`ssl-server-verify`, `ssl-default-server-options|ciphers|
ciphersuites`, `ssl-default-bind-options|ciphers|ciphersuites|curves`) and the directories relative TLS paths are read
under (`ca-base`, `crt-base`), with HAProxy 2.6.12's texts; and ``check_servers``,
the check-phase preparation of each TLS server's context (lb.tls.backend) whose
messages HAProxy prints after the parse: the first one of a server with its line,
the others without.

Must not import: lb.config.build.
"""

from __future__ import annotations

import lb.config.model as m
from lb.config.lexer import Line
from lb.config.proxy_kw import too_many
from lb.config.registry import GlobalBuilder, ParseCtx, ProxyBuilder
from lb.tls import backend
from lb.tls.certs import FLAG_VERSIONS, TLS_VERSIONS


def kw_ssl_server_verify(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> None:
    """`ssl-server-verify none|required`: the `verify` of servers that set none."""
    if too_many(line, ctx, 1):
        return
    value = line.words[1] if len(line.words) > 1 else ""
    if not value:  # (HAProxy 2.6.12's own text)
        ctx.alert(line, "'ssl-server-verify' expects an integer argument.", "missing-argument")
    elif value not in ("none", "required"):
        ctx.alert(line, "'ssl-server-verify' expects 'none' or 'required' as argument.",
                  "bad-argument", col=line.col(1))
    else:
        g.values["ssl_server_verify"] = value


def kw_ssl_default_ciphers(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> None:
    """`ssl-default-server-ciphers`, `-ciphersuites`, and the `bind` ones with
    `-curves` (checked by OpenSSL when a context is made)."""
    kw = line.words[0]
    if too_many(line, ctx, 1):
        return
    if len(line.words) < 2 or not line.words[1]:
        what = ("a curves suite as an arguments" if kw.endswith("curves")  # (sic)
                else "a cipher suite as an argument")
        ctx.alert(line, f"global statement '{kw}' expects {what}.", "missing-argument")
        return
    side, _, what = kw.removeprefix("ssl-default-").partition("-")
    g.values[f"ssl_{side}_{what}"] = line.words[1]


# the flags `ssl-default-bind-options` takes besides the version ones
_BIND_FLAGS = {"no-tls-tickets": "no_tickets", "prefer-client-ciphers": "prefer_client_ciphers"}


def kw_ssl_default_options(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> None:
    """`ssl-default-server-options` / `ssl-default-bind-options <opt>...`: version
    bounds and flags, added to those of earlier lines."""
    words = line.words
    kw = words[0]
    side = "bind" if kw == "ssl-default-bind-options" else "server"
    if len(words) < 2 or not words[1]:
        ctx.alert(line, f"global statement '{kw}' expects an option as an argument.",
                  "missing-argument")
        return
    values = g.values
    i = 1
    while i < len(words) and words[i]:
        w = words[i]
        if w in ("ssl-min-ver", "ssl-max-ver"):
            version = words[i + 1] if i + 1 < len(words) else ""
            problem = (f"'{w}' : missing the ssl/tls version" if not version else
                       None if version in TLS_VERSIONS else
                       f"'{version}' : unknown ssl/tls version")
            if problem is not None:
                ctx.alert(line, f"{problem} on global statement '{kw}'.",
                          "bad-argument", col=line.col(i))
                return
            values[f"ssl_{side}_{w[4:7]}_ver"] = version
            i += 2
            continue
        flag = w.split("-", 1)[1] if w.startswith(("no-", "force-")) else ""
        if w == "no-tls-tickets" or (side == "bind" and w in _BIND_FLAGS):
            values[f"ssl_{side}_{_BIND_FLAGS[w]}"] = True
        elif flag in FLAG_VERSIONS and w.startswith("force-"):
            values[f"ssl_{side}_min_ver"] = values[f"ssl_{side}_max_ver"] = FLAG_VERSIONS[flag]
        elif flag in FLAG_VERSIONS:
            off = values.get(f"ssl_{side}_no", ())
            if FLAG_VERSIONS[flag] not in off:
                values[f"ssl_{side}_no"] = (*off, FLAG_VERSIONS[flag])
        else:
            ctx.alert(line, f"unknown option '{w}' on global statement '{kw}'.",
                      "bad-argument", col=line.col(i))
            return
        i += 1


def kw_base(g: GlobalBuilder, line: Line, ctx: ParseCtx) -> None:
    """`ca-base` / `crt-base <dir>`: where relative `ca-file`/`crl-file` and `crt`
    paths of the lines after it are read (set once)."""
    kw = line.words[0]
    if too_many(line, ctx, 1):
        return
    field = "ca_base" if kw == "ca-base" else "crt_base"
    if g.values.get(field):
        ctx.alert(line, f"'{kw}' already specified.", "duplicate-setting")
        return
    if len(line.words) < 2 or not line.words[1]:
        ctx.alert(line, f"global statement '{kw}' expects a directory path as an argument.",
                  "missing-argument")
        return
    g.values[field] = line.words[1]


# --------------------------------------------------------------------- check phase


def connects_with_tls(p: ProxyBuilder) -> bool:
    """An `http-check connect ssl` or `tcp-check connect ssl` rule (even one the
    proxy ignores): HAProxy then prepares every server's TLS."""
    return any(isinstance(r, m.CheckConnect) and r.ssl
               for r in (*p.http_check_rules, *p.tcp_check_rules))


def check_servers(p: ProxyBuilder, glob: m.Global, ctx: ParseCtx) -> None:
    """Prepare the context of each server whose traffic or checks use TLS, in file
    order, and report HAProxy's messages: the first of a server located at its
    line, the next ones plain."""
    connect_ssl = connects_with_tls(p)
    stale = "Success"  # (the error HAProxy last met: it names it for a `crt` directory)
    for s in p.servers:
        if not backend.uses_tls(s, connect_ssl):
            continue
        prepared = backend.prepare(s, glob, p.label(), stale=stale)
        for n, msg in enumerate(prepared.messages):
            if "No such file or directory." in msg.text:
                stale = "No such file or directory"
            report = ctx.alert if msg.level == "alert" else ctx.warn
            if n == 0:
                line = Line(s.origin.file, s.origin.line, (), (), "")
                report(line, f"'server {p.name}/{s.name}' : {msg.text}", "server-tls",
                       style="bracket")
            else:
                report(None, msg.text, "server-tls", style="plain")
