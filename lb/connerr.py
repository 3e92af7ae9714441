"""Connection error codes: HAProxy 2.6.12's CO_ER_* numbers and texts.

Owns the table ``fc_err`` / ``fc_err_str`` read (the code is the text's index), and
that the legacy line of a connection that ends before its session shows: the texts
lb's PROXY header reader (lb.http.proxyproto) and TLS handshakes (lb.tls.frontend)
produce are entries of it. The order is HAProxy's enum, checked against HAProxy
2.6.12 on 127.0.0.1 (a bad PROXY header is 16, a failed TLS handshake 34, a client
gone during one 24; tests/test_error_log_format.py).

Must not import anything from lb.
"""

from __future__ import annotations

TEXTS: tuple[str, ...] = (
    "Success",
    "Reached configured maxconn value",
    "Too many sockets on the process",
    "Too many sockets on the system",
    "Out of system buffers",
    "Protocol or address family not supported",
    "General socket error",
    "Source port range exhausted",
    "Can't bind to source address",
    "Out of local source ports on the system",
    "Local source address already in use",
    "Connection closed while waiting for PROXY protocol header",
    "Connection error while waiting for PROXY protocol header",
    "Timeout while waiting for PROXY protocol header",
    "Truncated PROXY protocol header received",
    "Received something which does not look like a PROXY protocol header",
    "Received an invalid PROXY protocol header",
    "Received an unhandled protocol in the PROXY protocol header",
    "Connection closed while waiting for NetScaler Client IP header",
    "Connection error while waiting for NetScaler Client IP header",
    "Timeout while waiting for a NetScaler Client IP header",
    "Truncated NetScaler Client IP header received",
    "Received an invalid NetScaler Client IP magic number",
    "Received an unhandled protocol in the NetScaler Client IP header",
    "Connection closed during SSL handshake",
    "Connection error during SSL handshake",
    "Timeout during SSL handshake",
    "Too many SSL connections",
    "Out of memory when initializing an SSL connection",
    "Rejected a client-initiated SSL renegociation attempt",
    "SSL client CA chain cannot be verified",
    "SSL client certificate not trusted",
    "Server presented an SSL certificate different from the configured one",
    "Server presented an SSL certificate different from the expected one",
    "SSL handshake failure",
    "SSL handshake failure after heartbeat",
    "Stopped a TLSv1 heartbeat attack (CVE-2014-0160)",
    "Attempt to use SSL on an unknown target (internal error)",
    "Server refused early data",
    "SOCKS4 Proxy write error during handshake",
    "SOCKS4 Proxy read error during handshake",
    "SOCKS4 Proxy deny the request",
    "SOCKS4 Proxy handshake aborted by server",
)

_CODES = {text: code for code, text in enumerate(TEXTS)}


def code_of(text: str | None) -> int:
    """The code of an error text (0, "Success", for none or one not in the table)."""
    return _CODES.get(text, 0) if text else 0
