"""lb.proxy package: the data plane.

``eventloop`` is imported first: it imports uvloop for the whole process, with a
cheaper registry of transports than uvloop's own (lb/proxy/eventloop.py).
"""

from lb.proxy import eventloop as _eventloop  # noqa: F401
