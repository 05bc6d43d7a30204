"""What humans decide about alerting, as data: SLI windows, burn-rate tiers,
the scrape job and where runbooks live. Everything else is generated."""

from __future__ import annotations

from collections.abc import Sequence
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


@dataclass(frozen=True)
class EffectiveTier:
    """A burn tier as generated for one objective: the error ratio both of its
    windows are compared with, and whether its factor had to be capped."""

    tier: BurnTier
    factor: float  # the factor the rules use; tier.factor is the nominal one
    capped: bool
    threshold: float  # error ratio: factor x error budget
    op: str  # PromQL comparison of the windows' error ratios with the threshold

    @property
    def nominal(self) -> float:
        """The factor the tier is written with in BURN_TIERS."""
        return self.tier.factor


def error_budget(objective: float) -> float:
    """The share of clocks an objective allows to breach (rounded so that
    0.9 gives 0.1, not 0.09999999999999998)."""
    return round(1 - objective, 10)


def effective_tiers(objective: float, tiers: Sequence[BurnTier] = BURN_TIERS) -> tuple[EffectiveTier, ...]:
    """Each burn tier's factor and threshold for ``objective``, capped so that
    every tier can fire.

    The multiwindow, multi-burn-rate alerts of the Google SRE workbook
    (chapter "Alerting on SLOs", section "Multiwindow, Multi-Burn-Rate
    Alerts", https://sre.google/workbook/alerting-on-slos/) fire when an
    error ratio exceeds factor x (1 - objective). The workbook's factors
    (14.4, 6, 3, 1) assume objectives like 99.9 %; an error ratio is at most
    1, so with a lax objective the threshold can be out of reach: at 0.9 the
    14.4x tier needs more than 144 % of clocks to breach and never fires, at
    0.8 both page tiers are dead. A policy would then lose its fastest page
    without anyone noticing.

    A tier whose threshold would be 1 or more is capped at factor
    1 / (1 - objective), the burn rate of a 100 % error ratio, and compared
    with ``>=`` instead of ``>``: its threshold is exactly 1, which ``>``
    could never exceed. So a capped tier fires when every decided clock in
    both of its windows breached, and not below that. ``>=`` rather than a
    cap slightly below 1 because any margin would be arbitrary, while an
    all-breached window's ratio is exactly 1 (breaches / (breaches + 0)).
    Other tiers keep their factor and ``>``. An objective of 1 has no error
    budget: every threshold is 0 and any breach fires, nothing is capped.
    """
    budget = error_budget(objective)
    out = []
    for t in tiers:
        threshold = round(t.factor * budget, 10)
        if threshold >= 1:
            out.append(EffectiveTier(t, round(1 / budget, 10), True, 1.0, ">="))
        else:
            out.append(EffectiveTier(t, t.factor, False, threshold, ">"))
    return tuple(out)


BREACH_WINDOW = "10m"  # a breach alert stays up this long after the last breach
NO_EVENTS_FOR = "30m"  # no accepted event for this long, while a calendar is open
LAG_GROWING_FOR = "15m"
DEAD_LETTERS_WINDOW = "10m"
# Longer than a rolling restart that brings a new policies file to every worker.
POLICIES_DIFFER_FOR = "10m"

# Follow-up depth policies. Their clocks run for days, so a day is the
# shortest window that holds enough decisions to judge; it must be one of
# WINDOWS, whose SLI rules the alert reads.
DEPTH_WINDOW = "1d"
DEPTH_BREACHES_FOR = "30m"
DEPTH_WINDOWS = ("1d", "30d")  # attempts percentiles and mean: today and the month

# Delivery targets. A worker's share drops out of the sums for a few scrapes
# while its partitions move, and a CRM sync can deliver a batch of leads
# late: an hour keeps either from alerting.
TARGET_PACE_FOR = "1h"
TARGET_FORECAST_FOR = "1h"
# LeadSlaTargetForecastMiss looks at the part of a period after this share of
# its days: from then on any shortfall at the current pace misses the goal,
# there is no time left for the pace margin to absorb it.
TARGET_LATE_SHARE = 0.75
# Periods: a judged level moves to another worker at a rebalance, and is
# missing from the max() meanwhile; a few minutes keep that from resolving
# and re-firing the review alert.
REVIEW_FOR = "10m"


def runbook(alert: str, base: str = RUNBOOK_BASE) -> str:
    """The README section of an alert (GitHub heading anchors are lower case)."""
    return f"{base}#{alert.lower()}"
