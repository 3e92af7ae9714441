"""Unit tests for lb.http.actions (I/O-free): executors and ruleset semantics."""

from __future__ import annotations

from typing import Any

from lb.config import model as m
from lb.http import actions
from lb.match.sample import SampleSubject


class Ctx(SampleSubject):
    def __init__(self, url: bytes = b"/p?q=1", headers: list[tuple[bytes, bytes]] | None = None,
                 response: bool = False) -> None:
        self.method = b"GET"
        self.url = url
        self.version = b"1.1"
        self.req_headers = headers if headers is not None else [(b"host", b"h.example")]
        self.res_headers: list[tuple[bytes, bytes]] = []
        self.is_response = response
        self.status = 200 if response else 0
        self.src = "127.0.0.1"
        self.src_port = 1
        self.dst = "127.0.0.1"
        self.dst_port = 80
        self.vars: dict[str, Any] = {}
        self.memo: dict[Any, Any] = {}
        self.backend_name = "b"
        self.server_name = "s1"
        self.frontend_name = "f"
        self.pid = 1
        self.timeouts: dict[str, float] = {}

    def set_timeout(self, which: str, seconds: float) -> None:
        self.timeouts[which] = seconds


class Cond:
    def __init__(self, value: bool) -> None:
        self.value = value

    def evaluate(self, ctx: Any) -> bool:
        return self.value


def run(*acts: Any, ctx: Ctx | None = None) -> tuple[Ctx, Any]:
    ctx = ctx or Ctx()
    rs = actions.RuleSet([m.Rule(a, None) for a in acts])
    return ctx, rs.run(ctx)


def test_set_add_del_header() -> None:
    ctx, v = run(m.ActSetHeader("X-A", "1"), m.ActSetHeader("X-A", "2", add=True),
                 m.ActSetHeader("X-B", "v"), m.ActSetHeader("X-B", "w"),
                 m.ActDelHeader("Host"))
    assert v is None
    assert ctx.req_headers == [(b"x-a", b"1"), (b"x-a", b"2"), (b"x-b", b"w")]
    ctx, _ = run(m.ActDelHeader("x-", method="beg"),
                 ctx=Ctx(headers=[(b"x-one", b"1"), (b"y", b"2"), (b"x-two", b"3")]))
    assert ctx.req_headers == [(b"y", b"2")]


def test_dynamic_values_and_bad_values_rejected() -> None:
    ctx, _ = run(m.ActSetHeader("X-P", "%[path]-%s-%b"))
    assert (b"x-p", b"/p-s1-b") in ctx.req_headers
    ctx, _ = run(m.ActSetHeader("X-Bad", "%[req.hdr(x-in)]"),
                 ctx=Ctx(headers=[(b"x-in", b"a\rb")]))
    assert all(n != b"x-bad" for n, _ in ctx.req_headers)


def test_replace_header_and_value() -> None:
    ctx, _ = run(m.ActReplaceHeader("X-R", r"^(.*)-old$", r"\1-new"),
                 ctx=Ctx(headers=[(b"x-r", b"a-old"), (b"x-r", b"keep")]))
    assert ctx.req_headers == [(b"x-r", b"a-new"), (b"x-r", b"keep")]
    ctx, _ = run(m.ActReplaceHeader("X-V", r"^b(.*)$", r"c\1", each_value=True),
                 ctx=Ctx(headers=[(b"x-v", b"b1, a2, b3")]))
    # HAProxy 2.6.12: replaced values lose their blanks, the others keep them
    # (tests/test_replace_header.py compares with HAProxy)
    assert ctx.req_headers == [(b"x-v", b"c1, a2,c3")]


def test_set_path_query_uri_method() -> None:
    ctx, _ = run(m.ActSetPath("path", "/new"))
    assert ctx.url == b"/new?q=1"
    ctx, _ = run(m.ActSetPath("query", "a=b"))
    assert ctx.url == b"/p?a=b"
    ctx, _ = run(m.ActSetPath("uri", "/x"))
    assert ctx.url == b"/x"
    ctx, _ = run(m.ActSetPath("method", "POST"))
    assert ctx.method == b"POST"


def test_final_actions() -> None:
    _, v = run(m.ActDeny(status=429))
    assert (v.kind, v.status, v.response) == ("deny", 429, None)
    _, v = run(m.ActDeny(tarpit=True, status=0))
    assert (v.kind, v.status) == ("tarpit", 500)
    _, v = run(m.ActReturn(status=200, content_type="text/plain", body=b"hi"))
    assert v.response == (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n"
                          b"content-type: text/plain\r\n\r\nhi")
    _, v = run(m.ActRedirect("scheme", "https", code=301))
    assert v.response == (b"HTTP/1.1 301 Moved Permanently\r\ncontent-length: 0\r\n"
                          b"location: https://h.example/p?q=1\r\n\r\n")
    # checked against HAProxy 2.6.12: only 302/303/307 carry cache-control: no-cache
    _, v = run(m.ActRedirect("scheme", "https", code=302))
    assert v.response.endswith(b"cache-control: no-cache\r\n\r\n")
    _, v = run(m.ActRedirect("prefix", "/base", drop_query=True))
    assert b"location: /base/p\r\n" in v.response
    _, v = run(m.ActRedirect("location", "/x", set_cookie="A=1"))
    assert b"set-cookie: A=1; path=/\r\n" in v.response
    _, v = run(m.ActUseService("prometheus-exporter"))
    assert (v.kind, v.service) == ("service", "prometheus-exporter")


def test_allow_stops_ruleset_and_conditions() -> None:
    ctx = Ctx()
    rs = actions.RuleSet([
        m.Rule(m.ActSetHeader("X-1", "a"), Cond(False)),
        m.Rule(m.ActAllow(), Cond(True)),
        m.Rule(m.ActDeny(), None),
    ])
    assert rs.run(ctx) is None
    assert ctx.req_headers == [(b"host", b"h.example")]


def test_response_side_and_timeouts() -> None:
    ctx = Ctx(response=True)
    ctx.res_headers = [(b"server", b"x")]
    rs = actions.RuleSet([m.Rule(m.ActDelHeader("Server"), None),
                          m.Rule(m.ActSetHeader("X-S", "%[status]"), None),
                          m.Rule(m.ActSetTimeout("tunnel", 5.0), None)])
    assert rs.run(ctx) is None
    assert ctx.res_headers == [(b"x-s", b"200")]
    assert ctx.timeouts == {"tunnel": 5.0}
