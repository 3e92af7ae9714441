"""The shared test backends answer real requests over loopback."""

from __future__ import annotations

import socket

from websockets.sync.client import connect

from tests.backends import HttpBackend, WsBackend


def _get(port: int, path: str = "/") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def test_http_backend_answers_and_records() -> None:
    with HttpBackend("alpha") as b:
        resp = _get(b.port, "/p?q=1")
    assert resp.startswith(b"HTTP/1.1 200 ")
    assert resp.endswith(b"alpha")
    assert b"x-server: alpha" in resp
    assert [r.path for r in b.requests] == ["/p?q=1"]
    assert b.requests[0].header("host") == "x"


def test_ws_backend_echoes_and_names_itself() -> None:
    with WsBackend("w9") as w:
        with connect(f"ws://127.0.0.1:{w.port}/") as ws:
            ws.send("hello")
            assert ws.recv(timeout=5) == "hello"
            ws.send("whoami")
            assert ws.recv(timeout=5) == "w9"
        resp = _get(w.port)
    assert resp.startswith(b"HTTP/1.1 200")
    assert resp.endswith(b"w9")
    assert w.handshakes and w.handshakes[0]["upgrade"].lower() == "websocket"
