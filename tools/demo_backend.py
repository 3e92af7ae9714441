"""A demo backend: HTTP pages and a WebSocket echo on one loopback port.

Used by `make run` (tools/demo.py) to put two real servers behind lb. It needs only
the standard library and httptools. Usage:

    python tools/demo_backend.py --name s1 --port 8081

HTTP: `GET /` answers an HTML page naming the server, `GET /health` answers 200.
WebSocket: an upgrade on any path echoes every text/binary message; `whoami` is
answered with the server name; pings get pongs; a close frame is answered.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import signal
import struct

import httptools

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_FRAME = 16 * 1024 * 1024


def ws_accept(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + WS_GUID).digest())


def ws_frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


class DemoProtocol(asyncio.Protocol):
    def __init__(self, name: str) -> None:
        self.name = name
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.headers: dict[bytes, bytes] = {}
        self.url = b""
        self.ws = False
        self.buf = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.ws:
            self.buf += data
            self._ws_frames()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            offset = exc.args[0] if exc.args else len(data)
            self._upgrade()
            self.buf += data[offset:]
            self._ws_frames()
        except httptools.HttpParserError:
            self._send(400, b"bad request\n", close=True)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.headers = {}
        self.url = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_message_complete(self) -> None:
        if self.parser.should_upgrade():
            return
        path = self.url.split(b"?", 1)[0]
        if path == b"/health":
            self._send(200, b"ok\n")
        else:
            page = (f"<html><body><h1>Hello from {self.name}</h1>"
                    f"<p>path: {path.decode('latin-1')}</p></body></html>\n").encode()
            self._send(200, page, ctype=b"text/html")

    def _send(self, status: int, body: bytes, ctype: bytes = b"text/plain",
              close: bool = False) -> None:
        assert self.transport is not None
        keep = not close and self.parser.should_keep_alive()
        head = (b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n"
                b"x-server: %s\r\n%s\r\n") % (
            status, b"OK" if status == 200 else b"Error", ctype, len(body),
            self.name.encode(), b"" if keep else b"connection: close\r\n")
        self.transport.write(head + body)
        if not keep:
            self.transport.close()

    def _upgrade(self) -> None:
        assert self.transport is not None
        key = self.headers.get(b"sec-websocket-key")
        if self.headers.get(b"upgrade", b"").lower() != b"websocket" or not key:
            self._send(400, b"not a websocket handshake\n", close=True)
            return
        extra = b""
        proto = self.headers.get(b"sec-websocket-protocol")
        if proto:
            extra = b"sec-websocket-protocol: " + proto.split(b",")[0].strip() + b"\r\n"
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"
            b"connection: Upgrade\r\nsec-websocket-accept: " + ws_accept(key.strip())
            + b"\r\nx-server: " + self.name.encode() + b"\r\n" + extra + b"\r\n")
        self.ws = True

    def _ws_frames(self) -> None:
        assert self.transport is not None
        buf = self.buf
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            opcode, masked, n = b0 & 0x0F, b1 & 0x80, b1 & 0x7F
            pos = 2
            if n == 126:
                if len(buf) < 4:
                    return
                n = struct.unpack_from("!H", buf, 2)[0]
                pos = 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n = struct.unpack_from("!Q", buf, 2)[0]
                pos = 10
            if n > MAX_FRAME:
                self.transport.close()
                return
            mask = b""
            if masked:
                if len(buf) < pos + 4:
                    return
                mask = bytes(buf[pos:pos + 4])
                pos += 4
            if len(buf) < pos + n:
                return
            payload = bytes(buf[pos:pos + n])
            del buf[:pos + n]
            if mask:
                payload = _unmask(payload, mask)
            if opcode == 0x8:
                self.transport.write(ws_frame(0x8, payload[:2]))
                self.transport.close()
                return
            if opcode == 0x9:
                self.transport.write(ws_frame(0xA, payload))
            elif opcode in (0x0, 0x1, 0x2):
                if opcode == 0x1 and payload == b"whoami":
                    payload = self.name.encode()
                self.transport.write(ws_frame(opcode, payload))


def _unmask(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


async def serve(name: str, host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: DemoProtocol(name), host, port)
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Ctrl-C reaches the whole group, then tools/demo.py sends SIGTERM too
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    print(f"demo backend {name} listening on {host}:{port}", flush=True)
    await stop
    # Stopping: a later signal (Ctrl-C reaches the whole group, then tools/demo.py
    # sends SIGTERM) is ignored from here on. Left to the loop, one arriving while
    # asyncio.run closes the loop's wakeup fd made CPython print "Exception ignored
    # when trying to write to the signal wakeup fd" with a traceback. Blocked while
    # the handlers are swapped, so none slips through in between.
    sigs = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    for sig in sigs:
        loop.remove_signal_handler(sig)
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, sigs)
    server.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", default="s1")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8081)
    args = ap.parse_args()
    asyncio.run(serve(args.name, args.host, args.port))


if __name__ == "__main__":
    main()
