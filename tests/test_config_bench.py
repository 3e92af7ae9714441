"""The generated 10,000-line benchmark configuration loads, and not absurdly slowly.

The real figure comes from `python tools/bench_config.py` (about 0.4 s here); this test
only guards against an order-of-magnitude regression, with a generous margin because
the CI machine is shared.
"""

import importlib.util
import os
import time

from lb.config import load_text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location(
    "bench_config", os.path.join(ROOT, "tools", "bench_config.py"))
assert _spec and _spec.loader
bench_config = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_config)


def test_bench_config_loads():
    text = bench_config.generate()
    assert text.count("\n") >= 10_000
    t0 = time.perf_counter()
    res = load_text(text, "bench.cfg")
    elapsed = time.perf_counter() - t0
    assert res.ok, [d.message() for d in res.diagnostics][:3]
    cfg = res.config
    assert len(cfg.backends()) == 1000
    assert sum(len(p.servers) for p in cfg.proxies) == 5000
    assert sum(len(p.acls) for p in cfg.proxies) == 2000
    assert len(cfg.frontend("fe").switching_rules) == 1000
    assert elapsed < 10.0, elapsed
