"""lb: a HAProxy-compatible layer-7 load balancer. Importing it has no side effects."""

__version__ = "0.1.0"
