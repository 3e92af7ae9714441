"""lb.match package."""
