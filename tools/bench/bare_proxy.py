#!/usr/bin/env python3
"""The floor: the least an HTTP/1.1 proxy on uvloop + httptools can do per request.

    python tools/bench/bare_proxy.py LISTEN_PORT BACKEND_PORT
    python tools/bench/bare_proxy.py -f bench.cfg [-db]   # as a proxy of profile_lb.py

No features at all: one backend connection per client connection, opened on the
client's first request and kept; requests and responses are parsed by httptools only
to know where each message ends, and their bytes are forwarded as they came (no
header rewrite, no rules, no log, no counters). `run.py --targets ...,bare` measures
it beside HAProxy and lb on the keep-alive scenario, which shows how much of lb's CPU
per request is the platform (interpreter, uvloop, httptools, kernel) and how much is
lb: ``profile_lb.py http_keepalive_100b --lb-before-cmd "python tools/bench/bare_proxy.py"``.
Given a config it listens on every ``bind`` address and sends everything to the first
``server`` (the benchmark's nginx); only the keep-alive rows are like-for-like.
Not a proxy to use: it assumes a well-behaved backend and client (the benchmark's).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import httptools
import uvloop


class Upstream(asyncio.Protocol):
    def __init__(self, client: Client) -> None:
        self.client = client
        self.transport: Any = None
        self.parser = httptools.HttpResponseParser(self)

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.client.transport.write(data)
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        if not self.parser.should_keep_alive():
            self.client.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.transport.close()


class Client(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop, backend: tuple[str, int]) -> None:
        self.loop = loop
        self.backend = backend
        self.transport: Any = None
        self.upstream: Upstream | None = None
        self.waiting: list[bytes] | None = None
        self.parser = httptools.HttpRequestParser(self)

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)  # message boundaries only
        if self.upstream is not None:
            self.upstream.transport.write(data)
        elif self.waiting is not None:
            self.waiting.append(data)
        else:
            self.waiting = [data]
            self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        _, up = await self.loop.create_connection(lambda: Upstream(self), *self.backend)
        self.upstream = up
        up.transport.write(b"".join(self.waiting or ()))
        self.waiting = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.upstream is not None:
            self.upstream.transport.close()


def _from_config(path: str) -> tuple[list[tuple[str, int]], tuple[str, int]]:
    binds: list[tuple[str, int]] = []
    server: tuple[str, int] | None = None
    for line in open(path):
        words = line.split()
        if len(words) >= 2 and words[0] == "bind":
            host, _, port = words[1].rpartition(":")
            binds.append((host or "0.0.0.0", int(port)))
        elif len(words) >= 3 and words[0] == "server" and server is None:
            host, _, port = words[2].rpartition(":")
            server = (host, int(port))
    if not binds or server is None:
        raise SystemExit(f"{path}: no bind or no server line")
    return binds, server


def main() -> None:
    args = sys.argv[1:]
    try:
        if args[:1] == ["-f"]:
            binds, backend = _from_config(args[1])
        else:
            binds, backend = [("127.0.0.1", int(args[0]))], ("127.0.0.1", int(args[1]))
    except (IndexError, ValueError, OSError) as e:
        raise SystemExit("usage: bare_proxy.py LISTEN_PORT BACKEND_PORT | -f CONFIG [-db]"
                         f" ({e})") from None
    uvloop.install()
    loop = asyncio.new_event_loop()
    servers = [loop.run_until_complete(loop.create_server(
        lambda: Client(loop, backend), host, port, backlog=4096)) for host, port in binds]
    try:
        loop.run_forever()
    finally:
        for server in servers:
            server.close()


if __name__ == "__main__":
    main()
