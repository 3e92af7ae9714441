"""Install the Debian packages the test suite uses, when they are missing.

Runs as part of `make test`. Needs root and apt-get; otherwise it prints what is
missing and the tests that need those programs report it themselves.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

# program on PATH -> Debian package providing it
WANTED = {
    "haproxy": "haproxy",
    "chromium": "chromium",
    "chromedriver": "chromium-driver",
    "tmux": "tmux",
}


def main() -> int:
    missing = sorted({pkg for prog, pkg in WANTED.items() if shutil.which(prog) is None})
    if not missing:
        return 0
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print(f"system-deps: missing {' '.join(missing)} (need root and apt-get to install)")
        return 0
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print(f"system-deps: installing {' '.join(missing)}", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False,
                   stdin=subprocess.DEVNULL)
    rc = subprocess.run(["apt-get", "install", "-y", "-qq", *missing], env=env,
                        check=False, stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL).returncode
    if rc != 0:
        print(f"system-deps: apt-get install failed ({rc}); dependent tests will report it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
