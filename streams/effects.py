"""A clock transition turned into what the world sees, once: outcome records,
counters and histograms, the partition's gauges and its window cells."""

from __future__ import annotations

from leadsla.models.clock import BREACHED, CORRECTED, MET, Decision, Transition
from leadsla.models.periods import period_of
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

    def apply(self, rt: PartitionRuntime, tr: Transition, now_us: int) -> None:
        """Act on one transition of a lead owned by ``rt`` at wall time ``now_us`` (epoch µs)."""
        m, goal = self.metrics, self.goals
        for ref in tr.closed:
            if ref.policy in goal:
                rt.count(ref, m.team(ref.team), -1)
        for ref in tr.opened:
            if ref.policy in goal:
                rt.count(ref, m.team(ref.team), +1)
                # Series exist (at 0) from the moment a clock counts as open,
                # at least one lateness before it can be decided: Prometheus'
                # increase() never counts a series' first sample. The breach
                # series by rep waits for the at-risk warning (a ref opened
                # again with at_risk set): only clocks that may breach get one.
                m.prebind(ref.policy, ref.team, ref.rep, ref.at_risk)
                m.prebind_team(ref.team)
        for d in tr.decisions:
            if d.policy not in goal:
                continue
            if d.outcome == CORRECTED:
                m.correction(d.policy, d.team).inc()
            else:
                m.outcome(d.policy, d.outcome, d.team).inc()
                if d.outcome == BREACHED:
                    m.breach(d.policy, d.team, d.rep).inc()
                if d.elapsed_us is not None:
                    m.elapsed_of(d.policy, d.team).observe(d.elapsed_us / 1_000_000)
                if d.attempts is not None:
                    m.depth_of(d.policy).observe(d.attempts)
            self.sink.outcome(d.lead_id, outcome_record(d, goal[d.policy]))
            self._count_in_period(rt, d)
        for a in tr.at_risk:
            if a.policy in goal:
                m.at_risk_of(a.policy, a.team).inc()
        for p in tr.pauses_expired:
            if p.policy in goal:
                m.pause_expired_of(p.policy, p.team).inc()
        for late in tr.late_stops:
            if late.policy in goal:
                m.elapsed_of(late.policy, late.team).observe(late.elapsed_us / 1_000_000)
        for x in tr.too_late:
            if x.policy in goal:
                m.too_late(x.policy, x.role).inc()
        for delivery in tr.deliveries:
            rt.deliver(delivery)
        for won in tr.wins:
            if won.policy in goal:
                m.won(won.policy, won.outcome).inc(won.amount)
        if tr.handoffs or tr.touches:
            now_s = now_us // 1_000_000
            for h in tr.handoffs:
                m.handoffs_of(h.team).inc()
                windows.add(rt, now_s, h.at // 1_000_000, "handoffs", m.team(h.team), 1)
            for t in tr.touches:
                team = m.team(t.team)
                at_s = t.at // 1_000_000
                m.attempts_of(t.team).inc()
                windows.add(rt, now_s, at_s, "attempts", team, 1)
                if t.latency_us is not None:
                    m.followup_of(t.team).observe(t.latency_us / 1_000_000)
                    windows.add(rt, now_s, at_s, "first", team, 1)
                    windows.add(rt, now_s, at_s, "latency", team, t.latency_us / 1_000_000)

    def _count_in_period(self, rt: PartitionRuntime, d: Decision) -> None:
        """A decision counts in the period holding the moment it was settled:
        its stop (met, or a give-up) or its deadline (breached). A correction
        turns the breach it corrects into a met clock, in the breach's period."""
        kind, zone = self.periods[d.policy]
        at = d.deadline if d.outcome == CORRECTED or d.stopped_at is None else min(d.stopped_at, d.deadline)
        p = period_of(at, kind, zone)
        key = (d.policy, self.metrics.team(d.team), p.label, p.end_us)
        if d.outcome == MET:
            rt.decide(key, 1, 0)
        elif d.outcome == BREACHED:
            rt.decide(key, 0, 1)
        else:
            rt.decide(key, 1, -1)
