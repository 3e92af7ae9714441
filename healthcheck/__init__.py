"""Active health checks for lb (layer L5: imports lb, never imported by lb).

Re-exports only; see status.py (vocabulary and counter), steps.py (check
programs, I/O-free), messages.py (HAProxy's texts) and runner.py (scheduler).
"""

from healthcheck.runner import (
    CheckResult,
    HealthChecker,
    check_once,
    event_log_sink,
    service,
    stderr_log_event,
)

__all__ = ["CheckResult", "HealthChecker", "check_once", "event_log_sink", "service",
           "stderr_log_event"]
