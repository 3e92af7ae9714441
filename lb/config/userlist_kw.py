"""The `userlist` section: users, their passwords and groups.

Owns the section's two keywords (`user`, `group`) with HAProxy 2.6.12's messages,
and the check, once the section is read, that every group a user names and every
user a group names exists. The frozen result is ``lb.config.model.Userlist``; the
`http_auth*` fetches (lb.match.authfetch) read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lb.config.model as m
from lb.config.lexer import Line
from lb.config.registry import ParseCtx, origin


@dataclass
class UserlistBuilder:
    name: str
    origin: m.Origin
    users: dict[str, tuple[str | None, str | None, list[str]]] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)  # group -> its `users`

    def freeze(self, ctx: ParseCtx) -> m.Userlist:
        """Check the names and resolve each user's groups (HAProxy's alerts)."""
        for user, (_pw, _ins, groups) in self.users.items():
            for g in groups:
                if g not in self.groups:
                    ctx.alert(None, f"userlist '{self.name}': no such group '{g}' specified "
                              f"in user '{user}'", "unknown-group", style="plain",
                              phase="check")
        for g, users in self.groups.items():
            for u in users:
                if u not in self.users:
                    ctx.alert(None, f"userlist '{self.name}': no such user '{u}' specified in "
                              f"group '{g}'", "unknown-user", style="plain", phase="check")
        entries = []
        for user, (pw, insecure, groups) in self.users.items():
            member = [g for g, users in self.groups.items() if user in users]
            entries.append(m.UserEntry(user, pw, insecure,
                                       tuple(dict.fromkeys([*groups, *member]))))
        return m.Userlist(self.name, tuple(entries), tuple(self.groups), self.origin)


def open_userlist(line: Line, ctx: ParseCtx) -> UserlistBuilder | None:
    if len(line.words) < 2 or not line.words[1]:
        ctx.alert(line, "'userlist' expects <name> as arguments.", "missing-argument",
                  style="tight")
        return None
    return UserlistBuilder(line.words[1], origin(line))


def statement(ul: UserlistBuilder, line: Line, ctx: ParseCtx) -> None:
    words = line.words
    kw = words[0]
    if kw == "group":
        if len(words) < 2 or not words[1]:
            ctx.alert(line, "'group' expects <name> as arguments.", "missing-argument",
                      style="tight")
            return
        users: list[str] = []
        i = 2
        while i < len(words):
            if words[i] == "users" and i + 1 < len(words):
                users.extend(u for u in words[i + 1].split(",") if u)
                i += 2
                continue
            ctx.alert(line, "'group' only supports 'users' option.", "bad-argument",
                      style="tight")
            return
        if words[1] in ul.groups:
            ctx.warn(line, f"ignoring duplicated group '{words[1]}' in userlist "
                     f"'{ul.name}'.", "duplicate", style="tight")
            return
        ul.groups[words[1]] = users
        return
    if kw == "user":
        if len(words) < 2 or not words[1]:
            ctx.alert(line, "'user' expects <name> as arguments.", "missing-argument",
                      style="tight")
            return
        password = insecure = None
        groups: list[str] = []
        i = 2
        while i < len(words):
            opt = words[i]
            arg = words[i + 1] if i + 1 < len(words) else None
            if opt in ("password", "insecure-password", "groups"):  # (HAProxy takes a
                arg = arg or ""                                       # missing value)
                if opt == "password":
                    password = arg
                elif opt == "insecure-password":
                    insecure = arg
                else:
                    groups.extend(g for g in arg.split(",") if g)
                i += 2
                continue
            ctx.alert(line, "'user' only supports 'password', 'insecure-password' and "
                      "'groups' options.", "bad-argument", style="tight")
            return
        if words[1] in ul.users:
            ctx.warn(line, f"ignoring duplicated user '{words[1]}' in userlist "
                     f"'{ul.name}'.", "duplicate", style="tight")
            return
        ul.users[words[1]] = (password, insecure, groups)
        return
    ctx.unknown_keyword(line, "userlist", ("user", "group"))
