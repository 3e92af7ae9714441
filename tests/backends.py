"""Real loopback backends for tests: a small HTTP/1.1 server and a WebSocket echo server.

Each backend runs its own asyncio loop in a daemon thread, listens on 127.0.0.1 on an
ephemeral port, and records what it received so tests can assert on it ("the server
saw nothing", "the server saw header X"). Use them as context managers:

    with HttpBackend("s1") as s1, WsBackend("w1") as w1:
        ... s1.port, w1.port, s1.requests ...

HttpBackend answers every request with 200, body = its name, header `x-server: <name>`,
unless a `handler(request) -> (status, headers, body)` is given. WsBackend echoes every
message; the text message `whoami` is answered with its name.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httptools


@dataclass
class Request:
    method: str
    path: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    peer: tuple[str, int] = ("", 0)

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None


Handler = Callable[[Request], tuple[int, list[tuple[str, str]], bytes]]


class _LoopThread:
    """An asyncio loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class _HttpProto(asyncio.Protocol):
    def __init__(self, backend: HttpBackend) -> None:
        self.backend = backend
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.headers: list[tuple[str, str]] = []
        self.body = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.backend.connections += 1
        self.backend._live.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.backend._live.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n"
                                 b"connection: close\r\n\r\n")
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        assert self.transport is not None
        peer = self.transport.get_extra_info("peername") or ("", 0)
        req = Request(self.parser.get_method().decode(), self.url.decode("latin-1"),
                      self.parser.get_http_version(), self.headers, bytes(self.body),
                      peer[:2])
        self.backend.requests.append(req)
        keep = self.parser.should_keep_alive()
        self._reset()
        if self.backend.delay:
            asyncio.get_running_loop().call_later(self.backend.delay, self._respond, req, keep)
        else:
            self._respond(req, keep)

    def _respond(self, req: Request, keep: bool) -> None:
        assert self.transport is not None
        if self.transport.is_closing():
            return
        status, headers, body = self.backend.handler(req)
        lines = [f"HTTP/1.1 {status} X\r\n"]
        names = {k.lower() for k, _ in headers}
        for k, v in headers:
            lines.append(f"{k}: {v}\r\n")
        if "content-length" not in names and "transfer-encoding" not in names:
            lines.append(f"content-length: {len(body)}\r\n")
        if not keep:
            lines.append("connection: close\r\n")
        lines.append("\r\n")
        self.transport.write("".join(lines).encode("latin-1") + body)
        if not keep:
            self.transport.close()


class HttpBackend:
    """A tiny HTTP/1.1 backend on 127.0.0.1 that records requests."""

    def __init__(self, name: str = "s1", handler: Handler | None = None,
                 delay: float = 0.0, port: int = 0, path: str | None = None) -> None:
        self.name = name
        self.path = path  # listen on this unix socket instead of a TCP port
        self.handler: Handler = handler or self._default
        self.delay = delay
        self.requests: list[Request] = []
        self.connections = 0
        self.port = port
        self._live: set[asyncio.Transport] = set()
        self._lt: _LoopThread | None = None
        self._server: asyncio.base_events.Server | None = None

    def _default(self, req: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        return 200, [("x-server", self.name), ("content-type", "text/plain")], \
            self.name.encode()

    def start(self) -> HttpBackend:
        self._lt = _LoopThread()

        async def go() -> int:
            loop = asyncio.get_running_loop()
            if self.path is not None:
                self._server = await loop.create_unix_server(lambda: _HttpProto(self),
                                                             self.path)
                return 0
            self._server = await loop.create_server(
                lambda: _HttpProto(self), "127.0.0.1", self.port)
            return self._server.sockets[0].getsockname()[1]

        self.port = self._lt.call(go())
        return self

    def stop(self) -> None:
        """Stop listening and drop every open connection (like a killed server)."""
        if self._lt is None:
            return

        async def go() -> None:
            assert self._server is not None
            self._server.close()
            for t in list(self._live):
                t.abort()
            await asyncio.sleep(0)

        self._lt.call(go())
        self._lt.stop()
        self._lt = None

    def __enter__(self) -> HttpBackend:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class WsBackend:
    """A WebSocket echo server (the `websockets` library) on 127.0.0.1.

    Also answers plain HTTP GETs (without upgrade) with 200 and its name, so one
    backend can serve both kinds of traffic.
    """

    name: str = "w1"
    port: int = 0
    path: str | None = None  # listen on this unix socket instead of a TCP port
    subprotocols: list[str] | None = None
    handshakes: list[dict[str, str]] = field(default_factory=list)
    messages: list[Any] = field(default_factory=list)
    _lt: _LoopThread | None = None
    _server: Any = None

    def start(self) -> WsBackend:
        from websockets.asyncio.server import serve, unix_serve
        from websockets.datastructures import Headers
        from websockets.http11 import Response

        self._lt = _LoopThread()

        async def handler(ws: Any) -> None:
            try:
                async for msg in ws:
                    self.messages.append(msg)
                    if msg == "whoami":
                        await ws.send(self.name)
                    else:
                        await ws.send(msg)
            except Exception:
                pass

        def process_request(conn: Any, request: Any) -> Any:
            self.handshakes.append({k.lower(): v for k, v in request.headers.raw_items()})
            if "upgrade" not in request.headers.get("connection", "").lower():
                body = self.name.encode()
                return Response(200, "OK", Headers([("content-type", "text/plain"),
                                                    ("x-server", self.name),
                                                    ("content-length", str(len(body)))]),
                                body)
            return None

        async def go() -> int:
            options: dict[str, Any] = {"subprotocols": self.subprotocols,
                                       "process_request": process_request,
                                       "max_size": None, "compression": None}
            if self.path is not None:
                self._server = await unix_serve(handler, self.path, **options)
                return 0
            self._server = await serve(handler, "127.0.0.1", self.port, **options)
            return self._server.sockets[0].getsockname()[1]

        self.port = self._lt.call(go())
        return self

    def stop(self) -> None:
        if self._lt is None:
            return

        async def go() -> None:
            self._server.close()
            await self._server.wait_closed()

        try:
            self._lt.call(go(), timeout=5)
        except Exception:
            pass
        self._lt.stop()
        self._lt = None

    def __enter__(self) -> WsBackend:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
