"""A clock transition turned into what the world sees, once: outcome records,
counters and histograms, the partition's gauges and its window cells."""

from __future__ import annotations

from leadsla.models.clock import BREACHED, CORRECTED, MET, Decision, Transition
from leadsla.models.periods import Period, period_of
from leadsla.models.policy import PolicySet
from leadsla.streams import windows
from leadsla.streams.codec import outcome_record
from leadsla.streams.metrics import Metrics
from leadsla.streams.partition import PartitionRuntime
from leadsla.streams.sink import Sink


class Effects:
    """Applies ``Transition`` values for one worker. Clocks of a policy no
    longer in the file (removed or renamed before a restart) run out
    silently: they have no goal to report."""

    def __init__(self, policies: PolicySet, metrics: Metrics, sink: Sink) -> None:
        self.metrics = metrics
        self.sink = sink
        self.goals = {p.name: p.goal_us for p in policies.policies}
        self.periods = {p.name: (p.period, p.period_timezone) for p in policies.policies}
        # The period each policy's last decision counted in: decisions come in
        # time order mostly, so most fall in the same period as the last one.
        self._last_period: dict[str, Period] = {}

    def apply(self, rt: PartitionRuntime, tr: Transition, now_us: int) -> None:
        """Act on one transition of a lead owned by ``rt`` at wall time ``now_us`` (epoch µs)."""
        m, goal = self.metrics, self.goals
        closed, opened = tr.closed, tr.opened
        if closed:
            rt.count_refs(closed, m.team, -1, goal)
        if opened:
            rt.count_refs(opened, m.team, +1, goal)
            for ref in opened:
                if ref.policy in goal:
                    # Series exist (at 0) from the moment a clock counts as open,
                    # at least one lateness before it can be decided: Prometheus'
                    # increase() never counts a series' first sample. The breach
                    # series by rep waits for the at-risk warning (a ref opened
                    # again with at_risk set): only clocks that may breach get one.
                    m.clock_opened(ref.policy, ref.team, ref.rep, ref.at_risk)
        for d in tr.decisions:
            policy = d.policy
            if policy not in goal:
                continue
            outcome = d.outcome
            if outcome == CORRECTED:
                m.correction(policy, d.team).cell[0] += 1
            else:
                m.outcome(policy, outcome, d.team).cell[0] += 1
                if outcome == BREACHED:
                    m.breach(policy, d.team, d.rep).cell[0] += 1
                if d.elapsed_us is not None:
                    m.elapsed_of(policy, d.team).observe(d.elapsed_us / 1_000_000)
                if d.attempts is not None:
                    m.depth_of(policy).observe(d.attempts)
            self.sink.outcome(d.lead_id, outcome_record(d, goal[policy]))
            self._count_in_period(rt, d)
        for a in tr.at_risk:
            if a.policy in goal:
                m.at_risk_of(a.policy, a.team).cell[0] += 1
        for p in tr.pauses_expired:
            if p.policy in goal:
                m.pause_expired_of(p.policy, p.team).cell[0] += 1
        for late in tr.late_stops:
            if late.policy in goal:
                m.elapsed_of(late.policy, late.team).observe(late.elapsed_us / 1_000_000)
        for x in tr.too_late:
            if x.policy in goal:
                m.too_late(x.policy, x.role).cell[0] += 1
        for delivery in tr.deliveries:
            rt.deliver(delivery)
        for won in tr.wins:
            if won.policy in goal:
                m.won(won.policy, won.outcome).inc(won.amount)
        if tr.handoffs or tr.touches:
            now_s = now_us // 1_000_000
            add = windows.add
            for h in tr.handoffs:
                m.handoffs_of(h.team).cell[0] += 1
                add(rt, now_s, h.at // 1_000_000, "handoffs", m.team[h.team], 1)
            for t in tr.touches:
                team_label = m.team[t.team]
                at_s = t.at // 1_000_000
                m.attempts_of(t.team).cell[0] += 1
                add(rt, now_s, at_s, "attempts", team_label, 1)
                if t.latency_us is not None:
                    m.followup_of(t.team).observe(t.latency_us / 1_000_000)
                    add(rt, now_s, at_s, "first", team_label, 1)
                    add(rt, now_s, at_s, "latency", team_label, t.latency_us / 1_000_000)

    def _count_in_period(self, rt: PartitionRuntime, d: Decision) -> None:
        """A decision counts in the period holding the moment it was settled:
        its stop (met, or a give-up) or its deadline (breached). A correction
        turns the breach it corrects into a met clock, in the breach's period."""
        at = d.deadline if d.outcome == CORRECTED or d.stopped_at is None else min(d.stopped_at, d.deadline)
        # A period is the half-open interval [start, end) of its local
        # midnights: an instant inside the last one is in no other.
        p = self._last_period.get(d.policy)
        if p is None or not p.start_us <= at < p.end_us:
            kind, zone = self.periods[d.policy]
            p = self._last_period[d.policy] = period_of(at, kind, zone)
        key = (d.policy, self.metrics.team[d.team], p.label, p.end_us)
        if d.outcome == MET:
            rt.decide(key, 1, 0)
        elif d.outcome == BREACHED:
            rt.decide(key, 0, 1)
        else:
            rt.decide(key, 1, -1)
