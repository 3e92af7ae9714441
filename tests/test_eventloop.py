"""lb.proxy.eventloop: uvloop imported with lb's registry of transports.

Each check runs in a fresh interpreter, since the swap happens at uvloop's first
import in a process (the test process itself imported uvloop long before).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("uvloop")


def _run(code: str, **env: str) -> str:
    e = {k: v for k, v in os.environ.items() if k != "LB_PURE_PYTHON"}
    e["PYTHONPATH"] = str(ROOT)
    e.update(env)
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=e,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


SWAP = """
    import gc, weakref
    standard = weakref.WeakValueDictionary
    import lb.proxy  # imports lb.proxy.eventloop, which imports uvloop
    from lb.proxy import eventloop
    import uvloop
    loop = eventloop.new_event_loop()
    print(type(loop).__module__.split(".")[0])
    print(weakref.WeakValueDictionary is standard)
    print([type(r).__name__ for r in gc.get_referents(loop)
           if type(r) in (eventloop.TransportRegistry, standard)])
    print(" ".join(eventloop.LOADED_DURING_SWAP))
    print(type(eventloop).__name__, eventloop.__file__.endswith(".so"))
"""


@pytest.mark.parametrize("pure", ["", "1"])
def test_uvloop_loops_file_transports_in_lbs_registry(pure: str) -> None:
    env = {"LB_PURE_PYTHON": "1"} if pure else {}
    kind, restored, registries, loaded, (_, so) = (
        line.split(" ") if i == 4 else line
        for i, line in enumerate(_run(SWAP, **env).splitlines()))
    assert kind == "uvloop"
    assert restored == "True"  # the standard class is back once uvloop is in
    assert registries == "['TransportRegistry']"
    # only uvloop's own modules (and Cython's shared runtime) loaded during the swap
    others = [m for m in loaded.split()
              if not (m == "uvloop" or m.startswith(("uvloop.", "_cython_")))
              and m != "cython_runtime"]
    assert "uvloop.loop" in loaded.split() and others == [], loaded
    build = ROOT / "build" / "accel" / "manifest.json"
    if not pure and build.is_file() and "lb.proxy.eventloop" in build.read_text():
        assert so == "True"


def test_uvloop_imported_first_keeps_its_own_map() -> None:
    out = _run("""
        import gc, uvloop, weakref
        from lb.proxy import eventloop
        loop = eventloop.new_event_loop()
        print([type(r).__name__ for r in gc.get_referents(loop)
               if type(r) in (eventloop.TransportRegistry, weakref.WeakValueDictionary)],
              eventloop.LOADED_DURING_SWAP)
    """)
    assert out.strip() == "['WeakValueDictionary'] []"


GUARD = """
    import asyncio, gc, socket
    from lb.proxy import eventloop

    async def main():
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        tr, _ = await loop.create_connection(asyncio.Protocol, sock=a)
        fd = tr.get_extra_info("socket").fileno()
        try:
            loop.add_reader(fd, print)
        except RuntimeError as e:
            print("refused:", "is used by transport" in str(e))
        tr.close()
        await asyncio.sleep(0.01)
        del tr
        gc.collect()
        c, d = socket.socketpair()  # the lowest free descriptors: the closed one again
        print("reused:", fd in (c.fileno(), d.fileno()))
        loop.add_reader(fd, print)  # a dead transport's entry does not refuse it
        print("added: True")
        loop.remove_reader(fd)
        for s in (b, c, d):
            s.close()

    loop = eventloop.new_event_loop()
    loop.run_until_complete(main())
    loop.close()
"""


@pytest.mark.parametrize("pure", ["", "1"])
def test_a_live_transports_descriptor_is_still_refused_to_add_reader(pure: str) -> None:
    env = {"LB_PURE_PYTHON": "1"} if pure else {}
    assert _run(GUARD, **env).split("\n")[:3] == [
        "refused: True", "reused: True", "added: True"]


@pytest.mark.parametrize("pure", ["", "1"])
def test_registry_holds_transports_weakly(pure: str) -> None:
    out = _run("""
        import gc
        from lb.proxy.eventloop import TransportRegistry
        class T:
            pass
        reg, t = TransportRegistry(), T()
        reg[7] = t
        print(reg[7] is t, len(reg))
        try:
            reg[8]
        except KeyError as e:
            print("missing", e.args)
        del t
        gc.collect()
        try:
            reg[7]
        except KeyError as e:
            print("dead", e.args, len(reg))
    """, **({"LB_PURE_PYTHON": "1"} if pure else {}))
    assert out.split("\n")[:3] == ["True 1", "missing (8,)", "dead (7,) 0"]
