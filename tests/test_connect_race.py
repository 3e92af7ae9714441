"""An exchange that ends on the loop turn its server connection completes.

With ``tune.sndbuf.server``/``tune.rcvbuf.server`` lb connects with sock_connect and
then hands the socket to ``create_connection(sock=...)``, which schedules the
transport's ``connection_made`` at once. A request that fails in the poll phase of
that same turn (here a bad chunk size: 400) ends its exchange, which cancels the
connect. Cancelled at once, uvloop 0.23 closed the transport, libuv freed its
handle at the end of the turn, and the scheduled ``connection_made`` read the freed
handle: lb died of SIGSEGV within 14 to 459 such requests (pure Python, before the
fix in lb.proxy.drive; tests/test_drive.py pins the mechanism deterministically).

The client sends the head, waits until the server has accepted lb's connection,
then sends the bad chunk: it lands around the turn lb's connect completes.
"""

from __future__ import annotations

import socket
import threading
import time

from tests.lbproc import ONE_SERVER_HTTP, LbProcess

# the one-server set-up, with socket buffer tunes for the server side
CFG = "global\n  tune.sndbuf.server 65536\n" + ONE_SERVER_HTTP

HEAD = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
EXCHANGES = 400


class _HoldingServer:
    """Accepts and keeps every connection open, counting accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.accepted = threading.Semaphore(0)
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)
            self.accepted.release()

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_a_request_failing_as_its_server_connect_completes_does_not_crash_lb() -> None:
    server = _HoldingServer()
    statuses: dict[bytes, int] = {}
    try:
        with LbProcess(CFG, ports={"s1": server.port}) as lb:
            deadline = time.monotonic() + 30
            for i in range(EXCHANGES):
                assert lb.proc is not None and lb.proc.poll() is None, (
                    f"lb exited ({lb.proc.returncode}) after {i} exchanges:\n"
                    + "\n".join(lb.lines()[-20:]))
                with socket.create_connection(("127.0.0.1", lb.ports["fe"])) as c:
                    c.settimeout(5)
                    c.sendall(HEAD)
                    assert server.accepted.acquire(timeout=5), (
                        f"no server connection; lb exit status {lb.proc.poll()}")
                    if i % 3 == 1:  # spread the bad chunk's arrival a little
                        time.sleep(0.00005 * (i % 7))
                    c.sendall(b"zz\r\n")
                    status = c.recv(64)[:12]
                statuses[status] = statuses.get(status, 0) + 1
                if time.monotonic() > deadline:
                    break
            assert lb.proc.poll() is None, "\n".join(lb.lines()[-20:])
    finally:
        server.close()
    assert statuses == {b"HTTP/1.1 400": sum(statuses.values())}, statuses
    assert sum(statuses.values()) >= 100, statuses
