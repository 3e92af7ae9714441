"""lb: a HAProxy-compatible layer-7 load balancer.

Importing it has one effect: the hot-path modules are loaded from their compiled
copies when a current build exists (lb._accel; set LB_PURE_PYTHON=1 to opt out).
"""

from lb import _accel

__version__ = "0.1.0"

_accel.install()
