"""`option ws-frames`: count WebSocket frames in a tunnel by opcode, and close codes.

Owns: an incremental parser of RFC 6455 frame *headers* for each direction. Payloads
are skipped by arithmetic, never copied; only a close frame's first two payload bytes
are read (unmasked) to get its code. Counts go to every Counters object given
(frontend, backend, server): ``ws_frames[opcode name]`` and ``ws_close_codes[code]``.
A stream that stops looking like WebSocket (reserved opcode) stops being parsed.

Must not import: anything but lb.state names (layer L4 helper, no I/O).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_OPCODES = {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}


class _Direction:
    __slots__ = ("hbuf", "skip", "code", "code_need", "mask", "pos", "dead", "counters")

    def __init__(self, counters: Sequence[Any]) -> None:
        self.hbuf = b""
        self.skip = 0
        self.code = b""
        self.code_need = 0
        self.mask = b""
        self.pos = 0
        self.dead = False
        self.counters = counters

    def feed(self, data: bytes) -> None:
        if self.dead:
            return
        i = 0
        n = len(data)
        while i < n:
            if self.skip:
                take = self.skip if self.skip < n - i else n - i
                if self.code_need:
                    got = data[i:i + min(take, self.code_need)]
                    self.code += got
                    self.code_need -= len(got)
                    if not self.code_need:
                        self._close_code()
                i += take
                self.skip -= take
                continue
            had = len(self.hbuf)
            hb = self.hbuf + data[i:i + 14 - had] if had else data[i:i + 14]
            if len(hb) < 2:
                self.hbuf = hb
                return
            b0 = hb[0]
            b1 = hb[1]
            ln = b1 & 0x7F
            masked = b1 & 0x80
            hl = 2 + (2 if ln == 126 else 8 if ln == 127 else 0) + (4 if masked else 0)
            if len(hb) < hl:
                self.hbuf = hb
                return
            if ln == 126:
                ln = int.from_bytes(hb[2:4], "big")
            elif ln == 127:
                ln = int.from_bytes(hb[2:10], "big")
            op = b0 & 0x0F
            name = _OPCODES.get(op)
            if name is None:
                self.dead = True
                return
            for c in self.counters:
                c.ws_frames[name] = c.ws_frames.get(name, 0) + 1
            i += hl - had
            self.hbuf = b""
            self.skip = ln
            if op == 8:
                if ln >= 2:
                    self.mask = hb[hl - 4:hl] if masked else b""
                    self.code = b""
                    self.code_need = 2
                else:
                    self._count_code(1005)  # no status code present

    def _close_code(self) -> None:
        raw = self.code
        if self.mask:
            raw = bytes(b ^ self.mask[k] for k, b in enumerate(raw))
        self._count_code(int.from_bytes(raw, "big"))

    def _count_code(self, code: int) -> None:
        for c in self.counters:
            c.ws_close_codes[code] = c.ws_close_codes.get(code, 0) + 1


class FrameCounter:
    """Both directions of one tunnel."""

    __slots__ = ("c2s", "s2c")

    def __init__(self, counters: Sequence[Any]) -> None:
        self.c2s = _Direction(counters)
        self.s2c = _Direction(counters)

    def feed(self, data: bytes) -> None:
        self.c2s.feed(data)

    def feed_server(self, data: bytes) -> None:
        self.s2c.feed(data)
