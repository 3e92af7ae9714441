"""lb.http package."""
