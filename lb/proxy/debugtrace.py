"""The `-d` traffic trace: one stdout line per accept, request and response header,
and close, in HAProxy 2.6's debug format.

Owns: the line texts and where they go. Off unless lb runs with `-d`; the data plane
then reads ``Runtime.trace`` (None otherwise) at an accept, a request head, a
response head and the end of an exchange, so the cost when off is one test each.

    00000001:fe.accept(0006)=000a from [127.0.0.1:53124] ALPN=<none>
    00000001:fe.clireq[000a:ffffffff]: GET /x HTTP/1.1
    00000001:fe.clihdr[000a:ffffffff]: host: example.com
    00000001:be.srvrep[000a:000b]: HTTP/1.1 200 OK
    00000001:be.srvhdr[000a:000b]: content-length: 2
    00000001:be.clicls[000a:000b]
    00000001:be.srvcls[000a:000b]
    00000001:be.closed[000a:000b]

The leading number is lb's stream id (`show sess`), then the proxy, then the
client and server descriptors (``ffffffff`` when there is no server connection).
Header names are shown in lower case, as HAProxy shows them.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

NO_FD = 0xFFFFFFFF


def _fd(transport: Any) -> int:
    if transport is None:
        return NO_FD
    try:
        sock = transport.get_extra_info("socket")
        fd = sock.fileno() if sock is not None else -1
    except Exception:  # a closed or odd transport: no number to show
        return NO_FD
    return fd if fd >= 0 else NO_FD


def _text(b: bytes) -> str:
    return b.decode("latin-1")


class DebugTrace:
    """Writes the trace lines; ``out`` is stdout unless a test gives its own."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out

    def _write(self, lines: list[str]) -> None:
        out = self.out or sys.stdout
        try:
            out.write("".join(line + "\n" for line in lines))
            out.flush()
        except (OSError, ValueError):  # a closed stdout must not cost a request
            pass

    def _fds(self, txn: Any) -> str:
        sc = txn.sc
        sfd = _fd(sc.transport) if sc is not None else NO_FD
        return f"[{_fd(txn.conn.transport):04x}:{sfd:04x}]"

    def accept(self, conn: Any) -> None:
        lst = conn.listener
        sock = getattr(lst, "sock", None) if lst is not None else None
        lfd = sock.fileno() if sock is not None else NO_FD
        self._write([f"{conn.id:08x}:{conn.fe.name}.accept({lfd:04x})="
                     f"{_fd(conn.transport):04x} from [{conn.src}:{conn.src_port}] "
                     "ALPN=<none>"])

    def request(self, txn: Any) -> None:
        head = f"{txn.id:08x}:{txn.fe.name}."
        fds = self._fds(txn)
        lines = [f"{head}clireq{fds}: {_text(txn.method)} {_text(txn.url)} "
                 f"HTTP/{_text(txn.version)}"]
        lines += [f"{head}clihdr{fds}: {_text(n).lower()}: {_text(v)}"
                  for n, v in txn.req_headers]
        self._write(lines)

    def response(self, txn: Any, status: int, reason: bytes,
                 headers: list[tuple[bytes, bytes]]) -> None:
        name = txn.be.name if txn.be is not None else txn.fe.name
        head = f"{txn.id:08x}:{name}."
        fds = self._fds(txn)
        version = "1.1"
        sc = txn.sc
        parser = getattr(sc, "parser", None)
        if parser is not None:
            try:
                if parser.get_http_version() == "1.0":
                    version = "1.0"
            except Exception:  # a parser that has seen no response yet
                pass
        lines = [f"{head}srvrep{fds}: HTTP/{version} {status} {_text(reason)}".rstrip()]
        lines += [f"{head}srvhdr{fds}: {_text(n).lower()}: {_text(v)}" for n, v in headers]
        self._write(lines)

    def closed(self, txn: Any, client_closes: bool, server_closes: bool) -> None:
        name = txn.be.name if txn.be is not None else txn.fe.name
        head = f"{txn.id:08x}:{name}."
        fds = self._fds(txn)
        lines = []
        if client_closes:
            lines.append(f"{head}clicls{fds}")
        if server_closes:
            lines.append(f"{head}srvcls{fds}")
        lines.append(f"{head}closed{fds}")
        self._write(lines)
