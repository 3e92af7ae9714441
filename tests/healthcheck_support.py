"""Helpers for the health-check tests: model/state builders, raw loopback servers and
``checking`` (a running HealthChecker that stops itself and the servers on exit)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from healthcheck import HealthChecker
from lb.config.model import (
    BalanceSpec,
    CheckSpec,
    Config,
    Global,
    Options,
    Proxy,
    Server,
    Timeouts,
)
from lb.state import State
from tests.lbproc import free_port as free_port  # re-exported for the checker tests


def server(name: str, port: int, puid: int = 1, **kw: Any) -> Server:
    kw.setdefault("check", True)
    return Server(name=name, host="127.0.0.1", port=port, puid=puid, **kw)


def backend(servers: list[Server], check: CheckSpec | None = None, name: str = "b",
            timeouts: Timeouts | None = None, options: Options | None = None,
            balance: BalanceSpec | None = None) -> Proxy:
    return Proxy(name=name, caps=frozenset({"backend"}), kind="backend", mode="http",
                 servers=tuple(servers), check=check or CheckSpec(),
                 timeouts=timeouts or Timeouts(connect=1.0, check=1.0),
                 options=options or Options(), balance=balance or BalanceSpec())


def state_of(*backends: Proxy, spread: int = 0) -> State:
    return State(Config(global_=Global(spread_checks=spread, node="testnode"),
                        proxies=tuple(backends)))


@dataclass
class LogSink:
    """Collects (backend, level, text) triples from the checker."""

    lines: list[tuple[str, str, str]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    def __call__(self, be: Any, level: str, text: str) -> None:
        self.lines.append((be.name, level, text))
        self.times.append(asyncio.get_running_loop().time())

    def texts(self) -> list[str]:
        return [t for _, _, t in self.lines]

    def find(self, needle: str) -> list[tuple[str, str, str]]:
        return [x for x in self.lines if needle in x[2]]


class RawServer:
    """An asyncio server on 127.0.0.1 answering each request head with fixed bytes.

    ``respond(request) -> bytes | None``: bytes are written and the connection is
    kept until the peer closes (None = never answer). Records requests and what
    arrived after the answer (e.g. a WebSocket close frame).
    """

    def __init__(self, respond: Callable[[bytes], bytes | None],
                 need_head: bool = True, close: bool = False) -> None:
        self.respond = respond
        self.close = close  # close right after answering
        self.need_head = need_head
        self.requests: list[bytes] = []
        self.after: list[bytes] = []
        self.connections = 0
        self.times: list[float] = []  # loop time of each request
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self, port: int = 0, ssl: Any = None) -> RawServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port, ssl=ssl)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in list(self._writers):
                w.transport.abort()
            await asyncio.sleep(0)

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(w)
        try:
            data = b""
            while self.need_head and b"\r\n\r\n" not in data:
                chunk = await r.read(4096)
                if not chunk:
                    break
                data += chunk
            if not self.need_head:
                data = await r.read(4096)
            self.requests.append(data)
            self.times.append(asyncio.get_running_loop().time())
            answer = self.respond(data)
            if answer is None:
                await r.read()  # hang until the checker gives up
                return
            w.write(answer)
            if self.close:
                await w.drain()
                w.close()
                return
            rest = b""
            while True:
                chunk = await r.read(4096)
                if not chunk:
                    break
                rest += chunk
            self.after.append(rest)
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(w)
            if not w.transport.is_closing():
                w.transport.abort()


@asynccontextmanager
async def checking(st: State, log: Any, *servers: RawServer) -> AsyncIterator[HealthChecker]:
    """A started HealthChecker on ``st``; on exit it stops, then ``servers`` stop."""
    hc = HealthChecker(st, log)
    await hc.start()
    try:
        yield hc
    finally:
        await hc.stop()
        for srv in servers:
            await srv.stop()


def checker_service(log: Any) -> Callable[[State, asyncio.AbstractEventLoop], Any]:
    """A ``runner.start(services=[...])`` entry running the health checks until
    the runtime stops it."""
    async def run(state: State, loop: asyncio.AbstractEventLoop) -> None:
        async with checking(state, log):
            await asyncio.Event().wait()
    return run


def header(request: bytes, name: bytes) -> bytes | None:
    for line in request.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == name:
            return v.strip()
    return None


async def wait_for(pred: Callable[[], bool], timeout: float = 5.0, step: float = 0.01) -> float:
    """Poll until pred() is true; return the loop time it became true (fail on timeout)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(step)
    return loop.time()


class FakeStream:
    """Stands for a live stream/tunnel in ServerState.streams."""

    def __init__(self, srv: Any) -> None:
        self.srv = srv
        self.killed: bytes | None = None
        srv.streams.add(self)

    def kill(self, code: bytes) -> None:
        self.killed = code
        self.srv.streams.discard(self)


def self_signed_cert(directory: Any) -> tuple[str, str]:
    """(certfile, keyfile) of a throwaway self-signed cert for localhost (openssl CLI)."""
    import subprocess

    cert, key = str(directory / "cert.pem"), str(directory / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=30)
    return cert, key
