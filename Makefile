# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PYTEST_ARGS ?=
# the suite runs in this many processes (pytest-xdist), whole test files each: most
# tests wait on sockets and timers, so three keep two cores about 1.5 busy (the suite
# took 417 s in two processes, 298 s in three; docs/performance.md, session 57)
TEST_JOBS ?= 3

.PHONY: run test lint bench check-config clean system-deps accel accel-strict

$(STAMP): setup.cfg pyproject.toml
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# Debian packages the tests use (Chromium for the stats page, HAProxy for compat checks).
# Installed only when missing and when we may (root); tests that need them say so otherwise.
system-deps:
	@$(PY) tools/system_deps.py

# The hot-path modules compiled with Cython into build/accel (incremental; lb loads a
# compiled module only while its source is unchanged, and runs in pure Python without).
accel: $(STAMP)
	$(VPY) tools/build_accel.py

# a failed build is an error (make test, make bench)
accel-strict: $(STAMP)
	$(VPY) tools/build_accel.py --strict

run: $(STAMP)
	@$(VPY) tools/build_accel.py
	$(VPY) tools/demo.py

# the Debian packages install while the virtualenv and the Cython build are made
test:
	@$(MAKE) --no-print-directory -j2 system-deps accel-strict
	$(VPY) -m ruff check lb healthcheck tests tools
	$(VPY) -m pytest -n $(TEST_JOBS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(VPY) -m ruff check lb healthcheck tests tools

bench: accel-strict
	$(VPY) tools/bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
