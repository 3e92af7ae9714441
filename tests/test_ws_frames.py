"""`option ws-frames`: frame counts by opcode and close codes, parsed from headers only."""

from __future__ import annotations

import os
import time

from websockets.sync.client import connect

from lb.proxy.wsframes import FrameCounter
from lb.state import Counters
from tests.backends import WsBackend
from tests.lbproc import LbThread


def _frame(op: int, payload: bytes, mask: bytes | None = None, fin: bool = True) -> bytes:
    b0 = (0x80 if fin else 0) | op
    n = len(payload)
    if n < 126:
        head = bytes([b0, (0x80 if mask else 0) | n])
    elif n < 65536:
        head = bytes([b0, (0x80 if mask else 0) | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, (0x80 if mask else 0) | 127]) + n.to_bytes(8, "big")
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return head + mask + payload
    return head + payload


def test_parser_split_at_every_byte() -> None:
    m = b"\x11\x22\x33\x44"
    stream = (_frame(1, b"hi", m) + _frame(2, os.urandom(300), m) + _frame(9, b"", m)
              + _frame(2, os.urandom(70000), m) + _frame(0, b"c", m)
              + _frame(8, (1000).to_bytes(2, "big") + b"bye", m))
    for step in (1, 3, 7, 1000, len(stream)):
        c = Counters()
        fc = FrameCounter([c])
        for i in range(0, len(stream), step):
            fc.feed(stream[i:i + step])
        assert c.ws_frames == {"text": 1, "binary": 2, "ping": 1, "pong": 0, "close": 1,
                               "continuation": 1}, step
        assert c.ws_close_codes == {1000: 1}


def test_unmasked_server_close_without_code_and_garbage() -> None:
    c = Counters()
    fc = FrameCounter([c])
    fc.feed_server(_frame(10, b"p") + _frame(8, b""))
    assert c.ws_frames["pong"] == 1 and c.ws_close_codes == {1005: 1}
    fc.feed_server(b"\x83\x00" + _frame(1, b"x"))  # reserved opcode: stop parsing
    assert c.ws_frames["text"] == 0


CFG = """
defaults
  mode http
  timeout client 5s
  timeout server 5s
  timeout connect 1s
  timeout tunnel 5s
frontend f
  bind 127.0.0.1:@@fe@@
  default_backend b
backend b
  option ws-frames
  server w1 127.0.0.1:@@w1@@
"""


def test_frames_counted_through_the_proxy() -> None:
    with WsBackend("w1") as w1, LbThread(CFG, ports={"w1": w1.port}) as lb:
        with connect(f"ws://127.0.0.1:{lb.ports['fe']}/", open_timeout=5,
                     compression=None) as ws:
            ws.send("a")
            ws.recv(5)
            ws.send(b"b")
            ws.recv(5)
            ws.ping(b"x").wait(5)
        srv = lb.state.backends["b"].servers[0].counters
        deadline = time.monotonic() + 5
        while srv.ws_frames["close"] < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        # both directions: text x2, binary x2, ping (client), pong (server), close x2
        assert srv.ws_frames["text"] == 2 and srv.ws_frames["binary"] == 2
        assert srv.ws_frames["ping"] == 1 and srv.ws_frames["pong"] == 1
        assert srv.ws_frames["close"] == 2
        assert srv.ws_close_codes == {1000: 2}
        assert lb.state.frontends["f"].counters.ws_frames["text"] == 2
