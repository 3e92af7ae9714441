"""The counters of one name server, as `show resolvers` prints them.

Owns the table of counters in HAProxy's order (with their `show stat domain
resolvers` names and descriptions) and the mutable record the resolvers runtime
(lb.resolvers) increments and the CLI reads. Imports nothing from lb.
"""

from __future__ import annotations

# (field, `show stat domain resolvers` column, its description), in HAProxy's order
COUNTERS: tuple[tuple[str, str, str], ...] = (
    ("sent", "sent", "Sent"),
    ("snd_error", "send_error", "Send error"),
    ("valid", "valid", "Valid"),
    ("update", "update", "Update"),
    ("cname", "cname", "CNAME"),
    ("cname_error", "cname_error", "CNAME error"),
    ("any_err", "any_err", "Any errors"),
    ("nx", "nx", "NX"),
    ("timeout", "timeout", "Timeout"),
    ("refused", "refused", "Refused"),
    ("other", "other", "Other"),
    ("invalid", "invalid", "Invalid"),
    ("too_big", "too_big", "Too big"),
    ("truncated", "truncated", "Truncated"),
    ("outdated", "outdated", "Outdated"),
)
NAMES = tuple(field for field, _, _ in COUNTERS)
# the two columns before them: the name server and its section
ID_COLUMNS: tuple[tuple[str, str], ...] = (("id", "ID"), ("pid", "Parent ID"))


class NameserverCounters:
    """One name server's counters (plain integer fields)."""

    __slots__ = ("section", "name", *NAMES)

    def __init__(self, section: str, name: str) -> None:
        self.section = section
        self.name = name
        self.clear()

    def clear(self) -> None:
        for field in NAMES:
            setattr(self, field, 0)

    def lines(self) -> list[str]:
        """The `show resolvers` block of this name server."""
        out = [f" nameserver {self.name}:"]
        out.extend(f"  {(field + ':').ljust(12)} {getattr(self, field)}" for field in NAMES)
        return out
