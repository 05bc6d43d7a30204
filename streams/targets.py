"""Marketing's delivery targets at run time: what the day cells of the owned
partitions add up to for the period that holds the wall clock (contract §7),
and when a period's cells may go. Instants are epoch µs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from leadsla.models.periods import next_period, period_of
from leadsla.models.policy import PolicySet, Target
from leadsla.streams.partition import PartitionRuntime

DAY_US = 86_400 * 1_000_000


@dataclass(frozen=True, slots=True)
class TargetStatus:
    """One target in its current period, summed over this worker's partitions.
    ``by_day[i]`` is what was delivered on day i + 1; ``forecast`` the period's
    end at the current pace (see ``TargetBook.status``)."""

    target: Target
    period: str
    day: int
    days: int
    delivered: float
    value: float
    goal_line: float
    forecast: float
    by_day: tuple[float, ...]
    value_by_day: tuple[float, ...]


class TargetBook:
    """The targets of a policies file, for the runtime."""

    def __init__(self, policies: PolicySet) -> None:
        self._targets = {t.name: t for t in policies.targets}

    def expired(self, target: str, period_start_us: int, now_us: int) -> bool:
        """Cells of this period may go: the period after it has ended too (the
        previous period is kept to be judged), or the target is gone."""
        t = self._targets.get(target)
        if t is None:
            return True
        p = period_of(period_start_us, t.period, t.timezone)
        return next_period(p, t.timezone).end_us <= now_us

    def status(self, runtimes: Iterable[PartitionRuntime], now_us: int) -> list[TargetStatus]:
        """Every target in the period holding ``now_us``.

        The forecast is the pace so far carried to the period's end:
        delivered × period length ÷ time elapsed, with at least one day
        elapsed, so that the first hours of a period do not project a handful
        of leads to thousands."""
        rts = list(runtimes)
        out = []
        for t in self._targets.values():
            p = period_of(now_us, t.period, t.timezone)
            by_day = [0.0] * p.days
            value_by_day = [0.0] * p.days
            for rt in rts:
                for (name, label, _, day), (count, value) in rt.deliveries.items():
                    if name == t.name and label == p.label and 1 <= day <= p.days:
                        by_day[day - 1] += count
                        value_by_day[day - 1] += value
            day = p.day_of(now_us, t.timezone)
            delivered, value = sum(by_day), sum(value_by_day)
            elapsed = max(now_us - p.start_us, DAY_US)
            forecast = delivered * (p.end_us - p.start_us) / elapsed
            out.append(TargetStatus(t, p.label, day, p.days, delivered, value, p.goal_line(t.goal, day), forecast,
                                    tuple(by_day), tuple(value_by_day)))
        return out
