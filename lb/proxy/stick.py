"""A backend's `stick` rules at run time: which server a request sticks to, and what
the tables learn from each exchange.

Owns: ``BackendStick`` (the compiled rules of one backend) with ``on_request`` (the
`stick match` / `stick on` lookups, in rule order, and the keys the store rules
collect) and ``on_response`` (the stores, once the server is final). It follows
HAProxy 2.6's process_sticking_rules / process_store_rules:

- the first match rule whose key is in its table names the server, when that server
  is not in maintenance and not DOWN (`option persist` and `force-persist` accept a
  DOWN one); later match rules are skipped;
- a store rule collects its key, one per table, the first rule winning; the entry
  is written when the response head arrives, with the server that answered, so a
  request that was redispatched stores where it went. An entry that exists takes
  the new server; every lookup and store restarts the entry's expiry.

Configuration: lb.config.stick_kw; tables: lb.sticktable (State.tables).
"""

from __future__ import annotations

from typing import Any

from lb.match import sample
from lb.state import ADMIN_MAINT, OP_STOPPED

_MATCH = frozenset(("on", "match"))
_STORE_REQ = frozenset(("on", "store-request"))


class _Rule:
    __slots__ = ("kind", "expr", "table", "cond")

    def __init__(self, kind: str, expr: Any, table: Any, cond: Any) -> None:
        self.kind = kind
        self.expr = expr
        self.table = table
        self.cond = cond


class BackendStick:
    """The stick rules of one backend, bound to their tables."""

    __slots__ = ("request_rules", "response_rules", "persist")

    def __init__(self, model: Any, tables: dict[str, Any]) -> None:
        rules = [_Rule(r.kind, sample.parse_expr(r.expr), tables[r.table or model.name],
                       r.cond) for r in model.stick_rules]
        self.request_rules = [r for r in rules if r.kind != "store-response"]
        self.response_rules = [r for r in rules if r.kind == "store-response"]
        self.persist = bool(model.options.persist)

    def on_request(self, txn: Any, now: float, assigned: bool = False) -> Any:
        """The server a match rule names (or None; no lookup when cookie persistence
        or a use-server rule already named one: ``assigned``); the store keys go to
        ``txn.stick_stores``."""
        found = None
        stores: list[tuple[Any, Any]] | None = None
        for r in self.request_rules:
            if r.cond is not None and not r.cond.evaluate(txn):
                continue
            kind = r.kind
            if found is None and not assigned and kind in _MATCH:
                key = _key(r, txn)
                if key is not None:
                    e = r.table.lookup(key, now)
                    if e is not None:
                        srv = txn.be.st.server(f"#{e.server_id}")
                        if srv is not None and _may_stick(srv, self.persist
                                                          or txn.force_persist):
                            found = srv
            if kind in _STORE_REQ:
                stores = _collect(stores, r, txn)
        txn.stick_stores = stores
        return found

    def on_response(self, txn: Any, now: float) -> None:
        """Store-response keys, then every collected key, with the answering server."""
        stores = txn.stick_stores
        txn.stick_stores = None
        for r in self.response_rules:
            if r.cond is None or r.cond.evaluate(txn):
                stores = _collect(stores, r, txn)
        srv = txn.srv
        if not stores or srv is None:
            return
        for table, key in stores:
            table.store(key, srv.puid, srv.name, now)


def _key(r: _Rule, txn: Any) -> Any:
    v = r.expr.raw(txn)
    return None if v is None else r.table.key(v)


def _collect(stores: list[tuple[Any, Any]] | None, r: _Rule, txn: Any
             ) -> list[tuple[Any, Any]] | None:
    if stores is not None and any(t is r.table for t, _k in stores):
        return stores  # one key a table: the first rule for it wins
    key = _key(r, txn)
    if key is None:
        return stores
    if stores is None:
        stores = []
    stores.append((r.table, key))
    return stores


def _may_stick(srv: Any, persist: bool) -> bool:
    if srv.admin & ADMIN_MAINT:
        return False
    return persist or srv.op != OP_STOPPED
