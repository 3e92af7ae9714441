"""A small programmable authoritative DNS server on loopback UDP, for the resolver tests.

It builds and reads packets itself with ``struct`` and never imports ``lb.dns``, so a
bug in the codec cannot hide behind the same bug here. One daemon thread serves a
blocking socket bound to 127.0.0.1 on an ephemeral port (xdist-safe)::

    with DnsServer() as dns:
        dns.set("web.example", "A", ["10.0.0.1", "10.0.0.2"])
        dns.set("www.example", "CNAME", "web.example")
        dns.set("_http._tcp.example", "SRV", [(10, 5, 8080, "web.example")])
        dns.set_rcode("gone.example", 3)     # NXDOMAIN
        dns.drop("slow.example")             # never answered: the client times out
        dns.truncate("big.example")          # TC bit, no answers
        ... query 127.0.0.1:dns.port ...
        assert dns.wait_queries(1)

Names are matched case-insensitively (a trailing dot is ignored); the question is
echoed as received. Answers owned by the queried name use a compression pointer to the
question, other names are written in full. A query carrying an additional record (its
EDNS0 OPT) gets an OPT record back when ``edns`` is true.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading
from collections.abc import Iterable
from typing import Any

TYPES = {"A": 1, "CNAME": 5, "AAAA": 28, "SRV": 33}

_QR, _AA, _TC, _RD = 0x8000, 0x0400, 0x0200, 0x0100


def _norm(name: str) -> str:
    name = name.lower()
    return name[:-1] if name.endswith(".") else name


def _wire_name(name: str) -> bytes:
    out = b"".join(bytes([len(p)]) + p.encode("ascii") for p in _norm(name).split(".") if p)
    return out + b"\x00"


class DnsServer:
    """See the module docstring. ``queries`` lists (name lower-cased, qtype) in arrival
    order; read it under ``lock`` or after ``wait_queries``."""

    def __init__(self, edns: bool = True, compress: bool = True) -> None:
        self.edns = edns
        self.compress = compress
        self.no_glue: set[str] = set()  # SRV names answered without additional records
        self.lock = threading.Lock()
        self._changed = threading.Condition(self.lock)
        self.queries: list[tuple[str, int]] = []
        # (name, type) -> list of (ttl, rdata bytes); CNAME rdata is the target name
        self._records: dict[tuple[str, int], list[tuple[int, Any]]] = {}
        self._rcodes: dict[str, int] = {}
        self._dropped: set[str] = set()
        self._truncated: set[str] = set()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port: int = self._sock.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"dns-{self.port}",
                                        daemon=True)
        self._thread.start()

    # --- programming -----------------------------------------------------------------

    def set(self, name: str, qtype: str, values: Any, ttl: int = 30) -> None:
        """Answers for ``name``/``qtype``: IP strings for A/AAAA, one target name for
        CNAME, (priority, weight, port, target) tuples for SRV. Replaces earlier ones."""
        code = TYPES[qtype.upper()]
        if code == TYPES["CNAME"]:
            target = values if isinstance(values, str) else next(iter(values))
            rows: list[tuple[int, Any]] = [(ttl, _norm(target))]
        elif code == TYPES["SRV"]:
            rows = [(ttl, (int(p), int(w), int(port), _norm(t))) for p, w, port, t in values]
        else:
            family = ipaddress.IPv4Address if code == TYPES["A"] else ipaddress.IPv6Address
            rows = [(ttl, family(v).packed) for v in values]
        with self.lock:
            self._records[(_norm(name), code)] = rows

    def set_rcode(self, name: str, rcode: int) -> None:
        with self.lock:
            self._rcodes[_norm(name)] = rcode

    def drop(self, name: str) -> None:
        with self.lock:
            self._dropped.add(_norm(name))

    def truncate(self, name: str, on: bool = True) -> None:
        with self.lock:
            (self._truncated.add if on else self._truncated.discard)(_norm(name))

    def clear(self, name: str) -> None:
        """Forget everything about ``name``: it then answers NOERROR with no data."""
        key = _norm(name)
        with self.lock:
            for k in [k for k in self._records if k[0] == key]:
                del self._records[k]
            self._rcodes.pop(key, None)
            self._dropped.discard(key)
            self._truncated.discard(key)

    def clear_queries(self) -> None:
        with self.lock:
            self.queries.clear()

    def wait_queries(self, n: int, timeout: float = 5.0) -> bool:
        """True once at least ``n`` queries have arrived, False after ``timeout``."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self.queries) >= n, timeout)

    # --- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        try:  # wake the blocked recvfrom now rather than at its timeout
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b"", ("127.0.0.1", self.port))
        except OSError:
            pass
        self._thread.join(timeout=2.0)
        self._sock.close()

    def __enter__(self) -> DnsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- serving ---------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                packet, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if self._stop.is_set():
                return
            reply = self._answer(packet)
            if reply is not None:
                try:
                    self._sock.sendto(reply, peer)
                except OSError:
                    pass

    def _answer(self, packet: bytes) -> bytes | None:
        if len(packet) < 12:
            return None
        qid, flags, qdcount, _an, _ns, arcount = struct.unpack_from("!6H", packet, 0)
        if flags & _QR or qdcount != 1:
            return None
        labels: list[str] = []
        pos = 12
        while pos < len(packet) and packet[pos]:
            length = packet[pos]
            if length > 63 or pos + 1 + length > len(packet):
                return None
            labels.append(packet[pos + 1:pos + 1 + length].decode("ascii", "replace"))
            pos += 1 + length
        if pos + 5 > len(packet):
            return None
        qtype = struct.unpack_from("!H", packet, pos + 1)[0]
        question = packet[12:pos + 5]
        qname = ".".join(labels).lower()
        with self._changed:
            self.queries.append((qname, qtype))
            self._changed.notify_all()
            if qname in self._dropped:
                return None
            rcode = self._rcodes.get(qname, 0)
            truncated = qname in self._truncated
            answers: list[bytes] = []
            additionals: list[bytes] = []
            if rcode == 0 and not truncated:
                answers, additionals = self._resolve(qname, qtype)
        out_flags = _QR | _AA | (flags & _RD) | (_TC if truncated else 0) | (rcode & 0xF)
        if self.edns and arcount:
            additionals.append(b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0))
        header = struct.pack("!6H", qid, out_flags, 1, len(answers), 0, len(additionals))
        return header + question + b"".join(answers) + b"".join(additionals)

    def _rr(self, owner: str, qname: str, rtype: int, ttl: int, rdata: bytes) -> bytes:
        name = b"\xc0\x0c" if self.compress and owner == qname else _wire_name(owner)
        return name + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata

    def _resolve(self, qname: str, qtype: int) -> tuple[list[bytes], list[bytes]]:
        """Answer and additional records, following CNAMEs like an authoritative
        server that holds every zone. Called with the lock held."""
        answers: list[bytes] = []
        additionals: list[bytes] = []
        glued: set[str] = set()
        name = qname
        for _ in range(16):
            cname = self._records.get((name, TYPES["CNAME"]))
            if not cname or qtype == TYPES["CNAME"]:
                break
            ttl, target = cname[0]
            answers.append(self._rr(name, qname, TYPES["CNAME"], ttl, _wire_name(target)))
            name = target
        for ttl, value in self._records.get((name, qtype), []):
            if qtype == TYPES["SRV"]:
                prio, weight, port, target = value
                rdata = struct.pack("!HHH", prio, weight, port) + _wire_name(target)
                if target not in glued and name not in self.no_glue:
                    glued.add(target)
                    additionals.extend(self._glue(target, qname))
            elif qtype == TYPES["CNAME"]:
                rdata = _wire_name(value)
            else:
                rdata = value
            answers.append(self._rr(name, qname, qtype, ttl, rdata))
        return answers, additionals

    def _glue(self, target: str, qname: str) -> Iterable[bytes]:
        for code in (TYPES["A"], TYPES["AAAA"]):
            for ttl, packed in self._records.get((target, code), []):
                yield self._rr(target, qname, code, ttl, packed)
