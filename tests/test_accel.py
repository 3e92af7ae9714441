"""The compiled hot path (tools/build_accel.py + lb/_accel.py).

A copy of the package in a temporary tree gets one module compiled for real; the
subprocesses then show which file each import came from: the compiled copy while the
source is unchanged, the source after an edit or with LB_PURE_PYTHON set, and an
incremental rebuild that compiles only what changed. Other tests check that the
repository's own build (made by `make test`) is complete and in use, with Txn,
ClientConn and ServerConn as extension types; that their `.pxd` declarations match the
classes; and that editing a `.pxd` (or one it cimports) makes the build stale.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULE = "lb.proxy.timers"  # small: compiles in a few seconds
# these tests check how builds are made and loaded, not their speed: -O0 compiles fastest
BUILD = ("tools/build_accel.py", "--strict", "-O", "0")


def _build_accel():  # noqa: ANN202 (a module)
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import build_accel
    finally:
        sys.path.pop(0)
    return build_accel


def _tree(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "lb", tmp_path / "lb",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    (tmp_path / "tools").mkdir()
    shutil.copy(ROOT / "tools" / "build_accel.py", tmp_path / "tools")
    return tmp_path


def _run(tree: Path, *args: str, env: dict[str, str] | None = None) -> str:
    e = {k: v for k, v in os.environ.items() if k != "LB_PURE_PYTHON"}
    e["PYTHONPATH"] = str(tree)
    e.update(env or {})
    out = subprocess.run([sys.executable, *args], cwd=tree, env=e, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout + out.stderr


def _origin(tree: Path, module: str = MODULE, **env: str) -> str:
    return _run(tree, "-c", f"import {module} as m; print(m.__file__)", env=env).strip()


def test_compiled_module_used_only_while_its_source_is_unchanged(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    assert _origin(tree).endswith("timers.py")  # nothing built yet
    for cache in tree.rglob("__pycache__"):
        shutil.rmtree(cache)
    out = _run(tree, *BUILD, "--modules", MODULE,
               env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert "compiled 1 module(s)" in out
    # the interpreted modules' bytecode is written even where Python would not
    tag = sys.implementation.cache_tag
    assert (tree / "lb" / "config" / "__pycache__" / f"build.{tag}.pyc").is_file()
    manifest = json.loads((tree / "build/accel/manifest.json").read_text())
    assert list(manifest["modules"]) == [MODULE]
    so = _origin(tree)
    assert so.startswith(str(tree / "build" / "accel" / "lb" / "proxy" / "timers."))
    assert so.endswith(".so")
    # the compiled module is the same code: a Deadline still fires
    code = ("import asyncio, lb.proxy.timers as t\n"
            "async def main():\n"
            "    hit = []\n"
            "    d = t.Deadline(t.TimerWheel(asyncio.get_running_loop()), lambda: hit.append(1))\n"
            "    d.arm(0.01)\n"
            "    await asyncio.sleep(0.05)\n"
            "    print('fired', hit)\n"
            "asyncio.run(main())\n")
    assert "fired [1]" in _run(tree, "-c", code)
    vv = _run(tree, "-m", "lb", "-vv")
    assert "Compiled hot path: 1 modules (Cython " in vv
    # opt-out
    assert _origin(tree, LB_PURE_PYTHON="1").endswith("timers.py")
    assert "disabled by LB_PURE_PYTHON" in _run(tree, "-m", "lb", "-vv",
                                                env={"LB_PURE_PYTHON": "1"})
    # an edited source is never shadowed by the old build
    src = tree / "lb" / "proxy" / "timers.py"
    src.write_text(src.read_text() + "\n# edited\n")
    assert _origin(tree).endswith("timers.py")
    assert "Compiled hot path: none (stale build; pure Python)" in _run(tree, "-m", "lb", "-vv")
    # an incremental rebuild compiles only what changed, then it is used again
    out = _run(tree, *BUILD, "--modules", MODULE)
    assert "compiled 1 module(s)" in out
    assert _origin(tree).endswith(".so")
    out = _run(tree, *BUILD, "--modules", MODULE)
    assert "1 compiled module(s) up to date" in out
    # building another module keeps this one's entry, so it stays in use (a
    # --modules build once dropped every other module from the manifest)
    out = _run(tree, *BUILD, "--modules", "lb.proxy.drive")
    assert "compiled 1 module(s)" in out
    manifest = json.loads((tree / "build/accel/manifest.json").read_text())
    assert sorted(manifest["modules"]) == ["lb.proxy.drive", MODULE]
    assert _origin(tree).endswith(".so")
    # a changed source older than its generated C (a copied or checked-out tree) is
    # still compiled anew: Cython's own check compares file times
    src.write_text(src.read_text() + "EDITED_MARK = 42\n")
    os.utime(src, (1_000_000_000, 1_000_000_000))  # 2001, before any generated C
    out = _run(tree, *BUILD, "--modules", MODULE)
    assert "compiled 1 module(s)" in out
    code = f"import {MODULE} as m; print(m.__file__.endswith('.so'), m.EDITED_MARK)"
    assert _run(tree, "-c", code).split() == ["True", "42"]
    # a build made at another optimisation level is not reused: the manifest starts
    # again with what this build compiled
    manifest = json.loads((tree / "build/accel/manifest.json").read_text())
    once_code = _build_accel().ONCE_CODE
    assert manifest["compile_args"] == ["-g0", "-O0", once_code]
    out = _run(tree, "tools/build_accel.py", "--strict", "-O", "1", "--modules", MODULE)
    assert "compiled 1 module(s)" in out
    manifest = json.loads((tree / "build/accel/manifest.json").read_text())
    assert (manifest["compile_args"], list(manifest["modules"])) == (
        ["-g0", "-O1", once_code], [MODULE])
    assert _run(tree, "-c", code).split() == ["True", "42"]


_MIXED_PROXY = r'''
import asyncio, socket, uvloop
from lb.config import load_text
from lb.proxy import runner, client, tunnel

CFG = """
defaults
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fh
    mode http
    bind 127.0.0.1:{fh}
    default_backend bh
backend bh
    mode http
    server s1 127.0.0.1:{web}
frontend ft
    mode tcp
    bind 127.0.0.1:{ft}
    default_backend bt
backend bt
    mode tcp
    server s1 127.0.0.1:{echo}
"""

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

async def backend(r, w):
    while True:
        await r.readuntil(b"\r\n\r\n")
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await w.drain()

async def echo(r, w):
    while data := await r.read(65536):
        w.write(data)
        await w.drain()

async def main():
    web = await asyncio.start_server(backend, "127.0.0.1", 0)
    tcp = await asyncio.start_server(echo, "127.0.0.1", 0)
    cfg = load_text(CFG.format(web=web.sockets[0].getsockname()[1], fh=free_port(),
                               echo=tcp.sockets[0].getsockname()[1], ft=free_port())).config
    rt = await runner.start(cfg)
    print("client.py" in client.__file__, "tunnel.py" in tunnel.__file__)
    r, w = await asyncio.open_connection("127.0.0.1", rt.ports["fh"][0])
    for _ in range(3):  # a server connection's later writes use its descriptor
        w.write(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        await w.drain()
        head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 3)
        print(head.split(b"\r\n")[0].decode(), (await r.readexactly(2)).decode())
    r, w = await asyncio.open_connection("127.0.0.1", rt.ports["ft"][0])
    w.write(b"x" * 100000)
    print(len(await asyncio.wait_for(r.readexactly(100000), 3)))
    await rt.stop()

uvloop.run(main())
'''


def test_stale_sources_beside_a_compiled_sockio_still_proxy(tmp_path: Path) -> None:
    """After an edit without a rebuild, the edited modules run from source beside the
    compiled ones: a pure ClientConn, ServerConn or tunnel then holds descriptors
    from the compiled sockio but must write through its transport (sending itself is
    a C body only a compiled module can call). Here only sockio is compiled."""
    tree = _tree(tmp_path)
    _run(tree, *BUILD, "--modules", "lb.proxy.sockio")
    out = _run(tree, "-c", _MIXED_PROXY)
    assert out.splitlines()[:5] == ["True True", "HTTP/1.1 200 OK ok",
                                   "HTTP/1.1 200 OK ok", "HTTP/1.1 200 OK ok",
                                   "100000"], out


def test_unknown_module_is_refused(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    e = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run([sys.executable, "tools/build_accel.py", "--modules", "lb.cli"],
                         cwd=tree, env=e, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "not a hot-path module: lb.cli" in out.stderr


def test_repository_build_is_complete_and_in_use() -> None:
    """`make test` builds before running the suite: every hot module must load compiled
    (the data-plane tests then exercise the compiled code)."""
    manifest_path = ROOT / "build" / "accel" / "manifest.json"
    if not manifest_path.is_file() and not os.environ.get("CI"):
        pytest.skip("no build/accel here: run `make accel` (make test does)")
    build_accel = _build_accel()
    manifest = json.loads(manifest_path.read_text())
    assert sorted(manifest["modules"]) == sorted(build_accel.HOT_MODULES)
    assert manifest["compile_args"] == [
        "-g0", f"-O{build_accel.DEFAULT_OPT}", build_accel.ONCE_CODE]
    names = ",".join(build_accel.HOT_MODULES)
    code = (f"import importlib\nfor n in {names!r}.split(','):\n"
            "    print(n, importlib.import_module(n).__file__)\n")
    out = _run(ROOT, "-c", code)
    files = dict(line.split(" ", 1) for line in out.splitlines())
    assert all(f.endswith(".so") for f in files.values()), files
    # the classes with a .pxd are extension types: fields are C members (getset
    # descriptors on the type), neither Txn nor the connections have an instance
    # __dict__ (Cython allocates one per object, and a cpdef method called on an
    # object with one looks itself up on every call), Txn's methods are cpdef
    code = ("from lb.proxy.txn import Txn\nfrom lb.proxy.client import ClientConn\n"
            "from lb.proxy.server import ServerConn\n"
            "print(type(Txn.__dict__['t_request']).__name__,"
            " type(ServerConn.__dict__['hleft']).__name__,"
            " '__dict__' in dir(ClientConn), '__dict__' in dir(Txn),"
            " ServerConn.__mro__[1:], hasattr(Txn, '__pyx_vtable__'))\n")
    assert _run(ROOT, "-c", code).strip() == (
        "getset_descriptor getset_descriptor False False (<class 'object'>,) True")


def _pxd_fields(pxd: Path, cls: str) -> set[str]:
    """The `cdef public <type>` fields of one class in a .pxd."""
    fields: set[str] = set()
    inside = False
    for line in pxd.read_text().splitlines():
        if line.startswith("cdef class "):
            inside = line.startswith(f"cdef class {cls}(") or line == f"cdef class {cls}:"
        elif inside and line.strip().startswith("cdef public "):
            # `cdef public <type, maybe two words> a, b, c`: the first name is the
            # last word before the first comma
            first, *rest = line.strip()[len("cdef public "):].split(",")
            fields.update([first.split()[-1], *(n.strip() for n in rest)])
    return fields


# (module, class) declared in a .pxd beside the module, with __slots__ in the .py
SLOTTED_EXTENSION_TYPES = (
    ("lb.proxy.client", "ClientConn"), ("lb.proxy.server", "ServerConn"),
    ("lb.proxy.tunnel", "Tunnel"), ("lb.proxy.tunnel", "_End"),
    ("lb.proxy.timers", "Deadline"), ("lb.proxy.timers", "TimerWheel"),
    ("lb.proxy.listener", "Listener"), ("lb.proxy.drive", "Driven"),
    ("lb.balance.base", "OrderedTree"), ("lb.balance.base", "NodeData"),
    ("lb.balance.roundrobin", "RRNode"), ("lb.balance.roundrobin", "RRGroup"),
    ("lb.proxy.compiled", "FrontendRT"), ("lb.proxy.compiled", "BackendRT"),
    ("lb.state", "FreqCounter"), ("lb.state", "SlidingAverage"), ("lb.state", "Counters"),
    ("lb.state", "ServerState"), ("lb.state", "BackendState"),
    ("lb.state", "FrontendState"),
    ("lb.log", "LogCounters"), ("lb.log", "Sink"), ("lb.log", "FdSink"),
    ("lb.log", "DgramSink"), ("lb.log", "TrafficLog"), ("lb.log", "_TurnBatch"), ("lb.log", "_FastChain"),
    ("lb.log", "_IsoStamp"), ("lb.log", "InfoEvent"),
    ("lb.logfmt", "_SecondCache"), ("lb.logfmt", "_MsCache"), ("lb.logfmt", "TrafficFormat"),
    ("lb.match.pattern", "IntMatcher"), ("lb.match.pattern", "FnMatcher"),
    ("lb.match.pattern", "StrMatcher"), ("lb.match.pattern", "AffixMatcher"),
    ("lb.match.sample", "SampleSubject"),
    ("lb.match.sample", "Fetch"), ("lb.match.sample", "HdrFetch"),
    ("lb.match.sample", "HdrCntFetch"), ("lb.match.sample", "PathFetch"),
    ("lb.match.acl", "AclExpr"), ("lb.match.acl", "Acl"), ("lb.match.acl", "_Duck"),
    ("lb.match.acl", "_Term"), ("lb.match.acl", "Condition"),
    ("lb.http.actions", "RuleSet"),
    ("lb.http.cookie", "CookieRule"),
    ("lb.http.cookie", "RequestCookie"), ("lb.http.cookie", "ResponseCookie"),
    ("lb.http.h1", "ForwardForRule"),
)


def test_the_connection_and_transaction_types_import_in_any_order() -> None:
    """txn.pxd cimports client.pxd and server.pxd, and both cimport txn.pxd: each
    module builds its own types before it imports the other's, so whichever module
    an import starts from, all three load compiled."""
    if not (ROOT / "build" / "accel" / "manifest.json").is_file():
        pytest.skip("no build/accel here: run `make accel` (make test does)")
    for first in ("lb.proxy.client", "lb.proxy.txn", "lb.proxy.server", "lb.proxy.tcp"):
        code = (f"import {first}\nimport lb.proxy.client as c, lb.proxy.txn as t,"
                " lb.proxy.server as s\n"
                "print(c.__file__, t.__file__, s.__file__)")
        files = _run(ROOT, "-c", code).split()
        assert len(files) == 3 and all(f.endswith(".so") for f in files), (first, files)


def test_pxd_declarations_match_the_classes() -> None:
    """A field missing from a .pxd fails only compiled (the slotted classes: no
    __dict__) or silently runs at dictionary speed (Txn): keep them in step."""
    import ast
    import importlib

    for module, cls in SLOTTED_EXTENSION_TYPES:
        pxd = ROOT / (module.replace(".", "/") + ".pxd")
        slots = set(getattr(importlib.import_module(module), cls).__slots__)
        assert _pxd_fields(pxd, cls) == slots, (module, cls)
    proxy = ROOT / "lb" / "proxy"
    tree = ast.parse((proxy / "txn.py").read_text())
    txn = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Txn")
    assigned = {t.attr for node in ast.walk(txn)
                for t in getattr(node, "targets", [getattr(node, "target", None)])
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
                and t.value.id == "self"}
    # Txn's fields are its own and those of its base, SampleSubject (sample.pxd)
    fields = (_pxd_fields(proxy / "txn.pxd", "Txn")
              | _pxd_fields(ROOT / "lb" / "match" / "sample.pxd", "SampleSubject"))
    assert assigned and assigned <= fields, sorted(assigned - fields)
    # class-level defaults would not compile next to C fields (class attributes that
    # are not fields, such as the peer-name properties, do)
    class_level = {t.id for n in txn.body if isinstance(n, ast.Assign | ast.AnnAssign)
                   for t in getattr(n, "targets", [getattr(n, "target", None)])
                   if isinstance(t, ast.Name)}
    assert class_level and not class_level & fields, sorted(class_level & fields)


def test_a_pxd_edit_makes_the_build_stale(tmp_path: Path) -> None:
    """The build's digest covers a module's .pxd and the .pxd files it cimports."""
    tree = _tree(tmp_path)
    code = ("from lb import _accel as a\n"
            "print(a.source_digest(a.source_path('lb.proxy.queue')),"
            " a.source_digest(a.source_path('lb.http.cookie')))")
    queue, cookie = _run(tree, "-c", code).split()
    with open(tree / "lb" / "state.pxd", "a") as f:
        f.write("# edited\n")  # queue.pxd cimports ServerState from state.pxd
    queue2, cookie2 = _run(tree, "-c", code).split()
    assert queue2 != queue and cookie2 == cookie
    # the modules whose types queue.pxd cimports are built with it: lb.state, and
    # lb.balance.base that state.pxd cimports in turn
    out = _run(tree, *BUILD, "--modules", "lb.proxy.queue")
    assert "compiled 3 module(s)" in out
    assert _origin(tree, "lb.proxy.queue").endswith(".so")
    with open(tree / "lb" / "proxy" / "queue.pxd", "a") as f:
        f.write("# edited\n")
    assert _origin(tree, "lb.proxy.queue").endswith("queue.py")


def test_a_stale_cimported_module_takes_its_users_back_to_source(tmp_path: Path) -> None:
    """Compiled queue.py uses lb.state's extension types. Once state.py is edited
    (its build stale, the .py imported), queue's build is not loaded either: against
    the pure-Python classes its import would fail ("size changed")."""
    tree = _tree(tmp_path)
    _run(tree, *BUILD, "--modules", "lb.proxy.queue")
    code = ("import lb.state, lb.proxy.queue as m\n"
            "from lb import _accel\n"
            "print(m.__file__, lb.state.__file__, sorted(_accel.STATUS['stale']))")
    assert _run(tree, "-c", code).split()[:2] == [
        str(tree / "build/accel/lb/proxy" / Path(_origin(tree, "lb.proxy.queue")).name),
        str(tree / "build/accel/lb" / Path(_origin(tree, "lb.state")).name)]
    src = tree / "lb" / "state.py"
    src.write_text(src.read_text() + "\n# edited\n")
    queue, state, *stale = _run(tree, "-c", code).split()
    assert queue.endswith("lb/proxy/queue.py") and state.endswith("lb/state.py")
    assert " ".join(stale) == "['lb.proxy.queue', 'lb.state']"


def test_a_damaged_manifest_means_no_build(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    manifest = tree / "build" / "accel" / "manifest.json"
    manifest.parent.mkdir(parents=True)
    for text in ("{not json", '["a"]', '{"modules": ["lb.proxy.timers"]}',
                 '{"cache_tag": "x", "modules": {"lb.proxy.timers": 3}}'):
        manifest.write_text(text)
        assert _origin(tree).endswith("timers.py"), text
        assert "Compiled hot path: none" in _run(tree, "-m", "lb", "-vv"), text
    # and the builder starts again from nothing rather than failing
    manifest.write_text('{"modules": ["lb.proxy.timers"]}')
    out = _run(tree, *BUILD, "--modules", MODULE)
    assert "compiled 1 module(s)" in out
    assert _origin(tree).endswith(".so")
