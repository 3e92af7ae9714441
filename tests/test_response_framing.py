"""Framing headers on bodiless responses, as HAProxy 2.6.12 forwards them.

Checked against HAProxy 2.6.12 (tools/conformance): a 204 that carries
Content-Length or Transfer-Encoding reaches the client without them; a 304 keeps
its Content-Length (it describes the resource, not this message).
"""

from __future__ import annotations

import socket

import pytest

from tests.lbproc import LbProcess, RawBackend, raw_request

CFG = """
defaults
  mode http
  timeout client 5s
  timeout server 5s
  timeout connect 2s
frontend f
  bind 127.0.0.1:@@fe@@
  default_backend b
backend b
  server s1 127.0.0.1:@@s1@@
"""


def answer(head: bytes):
    def handler(c: socket.socket, be: RawBackend) -> None:
        be.recv_head(c)
        c.sendall(head)
        c.close()
    return handler


@pytest.mark.parametrize("status, kept", [(204, False), (304, True)])
def test_content_length_on_bodiless_status(status: int, kept: bool) -> None:
    head = (f"HTTP/1.1 {status} X\r\ncontent-length: 5\r\nx-a: 1\r\n"
            "connection: close\r\n\r\n").encode()
    with RawBackend(answer(head)) as be, LbProcess(CFG, ports={"s1": be.port}) as lb:
        resp = raw_request(lb.ports["fe"],
                           b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert resp.startswith(f"HTTP/1.1 {status} ".encode())
    assert b"x-a: 1" in resp
    assert (b"content-length: 5" in resp.lower()) is kept
    assert resp.endswith(b"\r\n\r\n")  # no body either way


def test_transfer_encoding_on_a_204_is_dropped() -> None:
    """HAProxy 2.6.12 removes it too: there is no body to frame."""
    head = (b"HTTP/1.1 204 X\r\ntransfer-encoding: chunked\r\nx-a: 1\r\n"
            b"connection: close\r\n\r\n0\r\n\r\n")
    with RawBackend(answer(head)) as be, LbProcess(CFG, ports={"s1": be.port}) as lb:
        resp = raw_request(lb.ports["fe"],
                           b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 204 ") and b"x-a: 1" in resp
    assert b"transfer-encoding" not in resp.lower()
    assert resp.endswith(b"\r\n\r\n")


def stray_body_then_ok(c: socket.socket, be: RawBackend) -> None:
    """Each request on this connection: /bad gets a 204 or 304 with bytes after its
    head (a body the status forbids); anything else a 200 with body `ok`."""
    while True:
        head = be.recv_head(c)
        if not head:
            return
        if head.startswith(b"GET /bad204"):
            c.sendall(b"HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\nhello")
        elif head.startswith(b"GET /bad304"):
            c.sendall(b"HTTP/1.1 304 Not Modified\r\ncontent-length: 5\r\n\r\nhello")
        else:
            c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")


@pytest.mark.parametrize("path", ["/bad204", "/bad304"])
def test_stray_bytes_after_bodiless_response_spare_a_pipelined_request(path: str) -> None:
    """The server's connection is not reused after such a response: the pipelined
    request goes out on a new one and gets its 200, as with HAProxy 2.6.12 (lb used to
    send it on the same connection from inside the read, then failed it with a 502
    when the stray bytes were parsed)."""
    req = (f"GET {path} HTTP/1.1\r\nHost: a\r\n\r\n"
           "GET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").encode()
    with RawBackend(stray_body_then_ok) as be, LbProcess(CFG, ports={"s1": be.port}) as lb:
        resp = raw_request(lb.ports["fe"], req)
        accepted = be.accepted
    statuses = [line for line in resp.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]
    assert statuses == [b"HTTP/1.1 " + path[4:].encode() + (
        b" No Content" if path == "/bad204" else b" Not Modified"), b"HTTP/1.1 200 OK"]
    assert resp.endswith(b"\r\n\r\nok")
    assert b"hello" not in resp
    assert accepted == 2  # the connection that sent the stray bytes was not reused


def test_a_chunked_response_decoded_for_an_http10_client_loses_its_trailer_header() -> None:
    """An HTTP/1.0 client gets the decoded body, ended by the close (docs/conformance.md);
    the trailer fields go with the chunks, and so does the Trailer header that
    announces them (RFC 9112 7.1.3). Other headers pass."""
    head = (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: X-T\r\nx-a: 1\r\n\r\n"
            b"2\r\nok\r\n3\r\n!!!\r\n0\r\nx-t: 1\r\n\r\n")
    with RawBackend(answer(head)) as be, LbProcess(CFG, ports={"s1": be.port}) as lb:
        resp = raw_request(lb.ports["fe"], b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
    head_out, _, body = resp.partition(b"\r\n\r\n")
    assert head_out.split(b"\r\n") == [b"HTTP/1.1 200 OK", b"x-a: 1", b"connection: close"]
    assert body == b"ok!!!"
