"""lb.proxy package."""
