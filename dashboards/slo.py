"""What humans decide about alerting, as data: SLI windows, burn-rate tiers,
the scrape job and where runbooks live. Everything else is generated."""

from __future__ import annotations

from dataclasses import dataclass

# Windows every SLI is recorded over (compliance today = 1d, the period = 30d).
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")

JOB = "leadsla"  # the Prometheus scrape job of the workers
RUNBOOK_BASE = "https://github.com/leadsla/leadsla/blob/main/README.md"
PREFIX = "LeadSla"


@dataclass(frozen=True)
class BurnTier:
    """One multiwindow burn-rate condition: both windows burn the error budget
    at least ``factor`` times faster than the objective allows."""

    tier: str  # page or ticket
    severity: str
    short: str
    long: str
    factor: float


# The classic multiwindow, multi-burn-rate set (2 % of a 30-day budget in 1 h,
# 5 % in 6 h, 10 % in 1 d, 10 % in 3 d).
BURN_TIERS = (
    BurnTier("page", "critical", "5m", "1h", 14.4),
    BurnTier("page", "critical", "30m", "6h", 6.0),
    BurnTier("ticket", "warning", "2h", "1d", 3.0),
    BurnTier("ticket", "warning", "6h", "3d", 1.0),
)

BREACH_WINDOW = "10m"  # a breach alert stays up this long after the last breach
NO_EVENTS_FOR = "30m"  # no accepted event for this long, while a calendar is open
LAG_GROWING_FOR = "15m"
DEAD_LETTERS_WINDOW = "10m"


def runbook(alert: str, base: str = RUNBOOK_BASE) -> str:
    """The README section of an alert (GitHub heading anchors are lower case)."""
    return f"{base}#{alert.lower()}"
