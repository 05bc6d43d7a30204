"""What one owned partition of ``lead-events`` holds in memory: its
watermark, its deadline index, its share of the clock gauges and its window
cells. Rebuilt after recovery, dropped on revocation. Instants are epoch µs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Iterable, Mapping

from leadsla.models.clock import NEVER, PAUSED, ClockRef, Delivery
from leadsla.streams.index import DeadlineIndex

GaugeKey = tuple[str, str]  # (policy, team label)
PeriodKey = tuple[str, str, str, int]  # (policy, team label, period label, period end µs)


class PartitionRuntime:
    """One partition's runtime state. ``last_offset`` is the last offset
    handled (-1: none); ``caught_up`` is true once it reached the fetch high
    watermark, from which on the watermark follows the wall clock."""

    __slots__ = ("partition", "index", "max_event_time", "watermark", "last_offset", "caught_up",
                 "next_offset", "gap_from", "open", "at_risk", "paused", "windows", "dirty", "deliveries",
                 "deliveries_dirty", "period_cells", "period_dirty", "period_unsent", "targets_unsent",
                 "reported", "report_at")

    def __init__(self, partition: int, resume_at: int | None = None) -> None:
        self.partition = partition
        self.index = DeadlineIndex()
        self.max_event_time = NEVER
        self.watermark = NEVER
        self.last_offset = -1 if resume_at is None else resume_at - 1
        self.caught_up = False
        # The next offset the engine must see (None: not known yet), and the
        # start of a gap already re-read once.
        self.next_offset: int | None = resume_at
        self.gap_from: int | None = None
        self.open: Counter[GaugeKey] = Counter()
        self.at_risk: Counter[GaugeKey] = Counter()
        self.paused: Counter[GaugeKey] = Counter()
        # (window size s, window start s) -> (metric, team) -> value
        self.windows: dict[tuple[int, int], dict[tuple[str, str], float]] = {}
        self.dirty: set[tuple[int, int, str, str]] = set()
        # (target, period, period start µs, day) -> [leads, weighted value]
        self.deliveries: dict[tuple[str, str, int, int], list[float]] = {}
        self.deliveries_dirty: set[tuple[str, str, int, int]] = set()
        # (policy, team label, period label, period end µs) -> [met, breached]
        self.period_cells: dict[PeriodKey, list[float]] = {}
        self.period_dirty: set[PeriodKey] = set()  # to write to the changelog
        self.period_unsent: set[PeriodKey] = set()  # changed since its period's partial was sent
        self.targets_unsent: set[tuple[str, str, int]] = set()  # (target, period label, start µs) likewise
        # Periods are reported closed through ``reported`` (epoch µs; NEVER:
        # not yet, so the first timer pass reports); the next report is due
        # when the closed time reaches ``report_at``.
        self.reported = NEVER
        self.report_at = NEVER

    def check_offset(self, offset: int) -> tuple[int, int] | None:
        """Track that every offset reaches the engine, contiguously from the
        resume position. Returns a gap ``(first missing, first present)`` to
        re-read, or None. A gap that is still there after one re-read holds
        no records (transaction markers, compaction) and is accepted."""
        self.last_offset = max(self.last_offset, offset)
        expected = self.next_offset
        if expected is None or offset == expected:
            self.next_offset = offset + 1
            return None
        if offset < expected:
            return None  # read again (a re-read, or a rewind): the lead state dedupes it
        if self.gap_from == expected:
            self.gap_from = None
            self.next_offset = offset + 1
            return None
        self.gap_from = expected
        return (expected, offset)

    def saw(self, occurred_at: int) -> None:
        """An accepted event's time (epoch µs): the backlog's event time."""
        if occurred_at > self.max_event_time:
            self.max_event_time = occurred_at

    def advance(self, now_us: int, highwater: int | None, lateness_us: int, replay_lag_us: int,
                backlog: bool = False) -> int:
        """Move the watermark and return it: event time while catching up on a
        backlog, wall clock minus the allowed lateness once caught up; never
        ahead of the wall clock, never backwards.

        A backlog holds many leads' events interleaved, a lead's follow-up
        often far behind other leads' later events. So while catching up the
        watermark trails the backlog's event time by the replay horizon (at
        least the allowed lateness): a clock is judged once its follow-up,
        wherever it sits in the backlog, has been read, or the backlog ends.
        ``backlog`` keeps event time for the record that ends a backlog.
        ``highwater`` is the partition's fetch high watermark (None: unknown).
        """
        self.caught_up = highwater is not None and self.last_offset + 1 >= highwater
        live = now_us - lateness_us
        candidate = live if self.caught_up and not backlog else min(self.max_event_time - replay_lag_us, live)
        if candidate > self.watermark:
            self.watermark = candidate
        return self.watermark

    def deliver(self, d: Delivery) -> None:
        """Add a delivery (or its move) to this partition's day cells."""
        key = (d.target, d.period, d.period_start, d.day)
        cell = self.deliveries.get(key)
        if cell is None:
            cell = self.deliveries[key] = [0.0, 0.0]
        cell[0] += d.count
        cell[1] += d.value
        self.deliveries_dirty.add(key)
        self.targets_unsent.add((d.target, d.period, d.period_start))
        if d.period_end <= self.reported:
            self.report_at = NEVER  # a late delivery for a period reported closed: send it again

    def decide(self, key: PeriodKey, met: int, breached: int) -> None:
        """Count a decision (or its correction: met +1, breached -1) in its
        period's cell; ``key`` is (policy, team label, period, period end µs)."""
        cell = self.period_cells.get(key)
        if cell is None:
            cell = self.period_cells[key] = [0.0, 0.0]
        cell[0] += met
        cell[1] += breached
        self.period_dirty.add(key)
        self.period_unsent.add(key)
        if key[3] <= self.reported:
            self.report_at = NEVER  # a late decision for a period reported closed: send it again

    def count(self, ref: ClockRef, team: str, sign: int) -> None:
        """Add (+1) or remove (-1) one lead's clock from the gauges; ``team``
        is the bounded label of ``ref.team``."""
        key = (ref.policy, team)
        _add(self.open, key, sign)
        if ref.at_risk:
            _add(self.at_risk, key, sign)
        if ref.status == PAUSED:
            _add(self.paused, key, sign)

    def count_refs(self, refs: Iterable[ClockRef], team: Mapping[str | None, str], sign: int,
                   policies: Container[str]) -> None:
        """``count`` for each ref whose policy is in ``policies``; ``team``
        bounds a ref's team (``Metrics.team``: ``team[ref.team]``). One call
        per transition's list, the additions written out: this runs for most
        transitions."""
        open_, at_risk, paused = self.open, self.at_risk, self.paused
        for ref in refs:
            if ref.policy not in policies:
                continue
            key = (ref.policy, team[ref.team])
            n = open_.get(key, 0) + sign
            if n > 0:
                open_[key] = n
            else:
                open_.pop(key, None)
            if ref.at_risk:
                n = at_risk.get(key, 0) + sign
                if n > 0:
                    at_risk[key] = n
                else:
                    at_risk.pop(key, None)
            if ref.status == PAUSED:
                n = paused.get(key, 0) + sign
                if n > 0:
                    paused[key] = n
                else:
                    paused.pop(key, None)


def _add(counter: Counter[GaugeKey], key: GaugeKey, sign: int) -> None:
    # dict's own get and pop: Counter's [] and del run Python code for a
    # missing key (0, and no KeyError), which these do in C.
    n = counter.get(key, 0) + sign
    if n > 0:
        counter[key] = n
    else:
        counter.pop(key, None)
