"""The counters of one name server, as `show resolvers` prints them.

Owns the table of counter names in HAProxy's order and the mutable record the
resolvers runtime (lb.resolvers) increments and the CLI reads. Imports nothing from lb.
"""

from __future__ import annotations

# (name, what it counts), in `show resolvers` order
COUNTERS: tuple[tuple[str, str], ...] = (
    ("sent", "queries sent"),
    ("snd_error", "queries the socket refused"),
    ("valid", "answers with an address"),
    ("update", "server addresses this name server changed"),
    ("cname", "answers through a CNAME"),
    ("cname_error", "broken CNAME chains"),
    ("any_err", "answers with no record"),
    ("nx", "NXDOMAIN answers"),
    ("timeout", "resolutions no name server answered"),
    ("refused", "REFUSED answers"),
    ("other", "other error answers"),
    ("invalid", "malformed answers"),
    ("too_big", "answers over accepted_payload_size"),
    ("truncated", "truncated answers"),
    ("outdated", "answers to no query in flight"),
)
NAMES = tuple(name for name, _ in COUNTERS)


class NameserverCounters:
    """One name server's counters (plain integer fields)."""

    __slots__ = ("section", "name", *NAMES)

    def __init__(self, section: str, name: str) -> None:
        self.section = section
        self.name = name
        for field in NAMES:
            setattr(self, field, 0)

    def lines(self) -> list[str]:
        """The `show resolvers` block of this name server."""
        out = [f" nameserver {self.name}:"]
        out.extend(f"  {(field + ':').ljust(12)} {getattr(self, field)}" for field in NAMES)
        return out
