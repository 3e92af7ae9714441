"""%rt: the process's request number, one per stream, from 0, as HAProxy 2.6.12
numbers them (its `global.req_count`): each keep-alive request, each TCP connection,
each refused request, and each check format rendered without a stream takes the
next one. Compared live with HAProxy; lb used to log 0 for every request."""

from __future__ import annotations

import http.client
import socket

from tests.lbproc import LbProcess, RawBackend, free_port
from tests.support_e2e import Haproxy, answer_ok

CONFIG = """
global
  log 127.0.0.1:@@log@@ local0
defaults
  mode http
  log global
  timeout connect 1s
  timeout client 2s
  timeout server 2s
frontend fe
  bind 127.0.0.1:@@fe@@
  log-format "rt=%rt X=%{+X}rt id=%ID"
  unique-id-format "%rt"
  default_backend be
frontend tcp
  mode tcp
  bind 127.0.0.1:@@tcp@@
  log-format "tcp rt=%rt"
  default_backend raw
backend be
  server s1 127.0.0.1:@@web@@
backend raw
  mode tcp
  server s1 127.0.0.1:@@web@@
"""


def _numbers(kind: str) -> list[bytes]:
    log = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    log.bind(("127.0.0.1", 0))
    log.settimeout(3)
    web = RawBackend(answer_ok).__enter__()
    ports = {"web": web.port, "fe": free_port(), "tcp": free_port(),
             "log": log.getsockname()[1]}
    try:
        with LbProcess(CONFIG, ports=ports) if kind == "lb" else Haproxy(CONFIG, ports=ports):
            for _ in range(2):  # two keep-alive connections, two requests each
                c = http.client.HTTPConnection("127.0.0.1", ports["fe"], timeout=3)
                for _ in range(2):
                    c.request("GET", "/")
                    c.getresponse().read()
                c.close()
            with socket.create_connection(("127.0.0.1", ports["fe"]), timeout=3) as s:
                s.sendall(b"BAD\r\n\r\n")  # a refused request
                s.recv(1000)
            with socket.create_connection(("127.0.0.1", ports["tcp"]), timeout=3) as s:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")  # one TCP stream
                s.recv(1000)
            lines = [log.recv(65535).split(b"]: ")[-1].strip() for _ in range(6)]
    finally:
        web.__exit__()
        log.close()
    return sorted(lines)


def test_request_numbers_like_haproxy() -> None:
    theirs = _numbers("haproxy")
    assert theirs == [b"rt=0 X=0000 id=0", b"rt=1 X=0001 id=1", b"rt=2 X=0002 id=2",
                      b"rt=3 X=0003 id=3", b"rt=4 X=0004 id=-", b"tcp rt=5"]
    assert _numbers("lb") == theirs
