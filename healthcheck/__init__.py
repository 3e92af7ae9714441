"""Active health checks for lb servers (imports lb, never imported by lb)."""
