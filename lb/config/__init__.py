"""lb.config package."""
