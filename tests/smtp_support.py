"""A mail catcher for the email-alert tests: an SMTP server on loopback that answers
every command as a mail server would and keeps each exchange's bytes.

    with SmtpCatcher() as smtp:
        ... smtp.port ...
        assert smtp.wait(2)
        smtp.sessions[0]  # b"HELO lb1\\r\\nMAIL FROM:<...>\\r\\n..."

``refuse`` makes it answer MAIL FROM with 550 (a mailer that takes nothing);
``delay`` holds the greeting back (a slow mailer).
"""

from __future__ import annotations

import socket
import threading
import time


class SmtpCatcher:
    def __init__(self, refuse: bool = False, delay: float = 0.0) -> None:
        self.refuse = refuse
        self.delay = delay
        self.sessions: list[bytes] = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self._stop = False

    def _serve(self) -> None:
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(c,), daemon=True).start()

    def _session(self, c: socket.socket) -> None:
        seen: list[bytes] = []
        try:
            c.settimeout(10)
            if self.delay:
                time.sleep(self.delay)
            c.sendall(b"220 catcher ESMTP\r\n")
            f = c.makefile("rb")
            in_data = False
            for raw in f:
                seen.append(raw)
                line = raw.rstrip(b"\r\n")
                if in_data:
                    if line == b".":
                        in_data = False
                        c.sendall(b"250 2.0.0 queued\r\n")
                    continue
                verb = line[:4].upper()
                if verb == b"MAIL" and self.refuse:
                    c.sendall(b"550 5.7.1 not from you\r\n")
                elif verb in (b"HELO", b"EHLO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                    c.sendall(b"250 ok\r\n")
                elif verb == b"DATA":
                    in_data = True
                    c.sendall(b"354 end with <CRLF>.<CRLF>\r\n")
                elif verb == b"QUIT":
                    c.sendall(b"221 bye\r\n")
                    break
                else:
                    c.sendall(b"500 unknown\r\n")
        except OSError:
            pass
        finally:
            c.close()
            with self.lock:
                self.sessions.append(b"".join(seen))

    def wait(self, n: int, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.sessions) >= n:
                    return True
            time.sleep(0.05)
        return False

    def subjects(self) -> list[str]:
        with self.lock:
            return [line.decode().removeprefix("Subject: ") for s in self.sessions
                    for line in s.splitlines() if line.startswith(b"Subject: ")]

    def __enter__(self) -> SmtpCatcher:
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self.sock.close()
