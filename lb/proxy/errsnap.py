"""Error snapshots for `show errors` (HAProxy's captured protocol errors).

Owns: turning a refused request or an invalid server response into a
``lb.state.CapturedError`` through ``State.capture_error``: when, which proxy
(the frontend for requests, the backend for responses), the client address, a short
reason and the offending bytes as received (bounded by the state). Called only on
error paths, never per request.

Must not import: lb.cli, lb.log, healthcheck.
"""

from __future__ import annotations

import time
from typing import Any

import httptools


def _reason(exc: BaseException | None, default: str) -> str:
    if exc is None:
        return default
    ctx = exc.__context__
    if ctx is not None and not isinstance(ctx, httptools.HttpParserError):
        return default  # refused by lb's own checks (size, framing, version...)
    text = str(exc).strip()
    return text or default


def capture_request(conn: Any, raw: bytes, exc: BaseException | None = None,
                    reason: str = "invalid request") -> None:
    """A request refused with a parser error (400/422) on client connection `conn`."""
    try:
        conn.rt.state.capture_error(time.time(), conn.fe.name, "request",
                                    f"{conn.src}:{conn.src_port}", _reason(exc, reason),
                                    bytes(raw))
    except Exception:  # a snapshot must never break the error path
        pass


def capture_response(txn: Any, raw: bytes, exc: BaseException | None = None,
                     reason: str = "invalid response") -> None:
    """An invalid response from txn's server (answered 502)."""
    try:
        be = txn.be
        txn.rt.state.capture_error(time.time(), be.name if be is not None else txn.fe.name,
                                   "response", f"{txn.src}:{txn.src_port}",
                                   _reason(exc, reason), bytes(raw))
    except Exception:
        pass


def request_bytes(txn: Any) -> bytes:
    """A parsed request head rebuilt (for refusals decided after parsing)."""
    lines = [b"%s %s HTTP/%s" % (txn.method, txn.url, txn.version)]
    lines += [k + b": " + v for k, v in txn.req_headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"
