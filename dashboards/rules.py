"""Prometheus recording rules, generated from the policies.

Names follow ``level:metric:operations``. The SLI of every policy is the share
of decided clocks that were breached (its error ratio) over several windows,
per team and per policy; depth policies add what their attempts look like,
and delivery targets their figures summed over the workers and their pace.
Dashboards and alerts read only these series, so a number on a screen and an
alert always agree.
"""

from __future__ import annotations

from typing import Any

from leadsla.dashboards.slo import BREACH_WINDOW, DEPTH_WINDOWS, JOB, WINDOWS, error_budget
from leadsla.models.policy import PolicySet

OUTCOMES = "leadsla_sla_outcomes_total"
DEPTH_ATTEMPTS = "leadsla_followup_depth_attempts"


def _r(record: str, expr: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"record": record, "expr": expr}
    if labels:
        rule["labels"] = labels
    return rule


def sli_group(window: str) -> dict[str, Any]:
    w = window
    return {
        "name": f"leadsla-sli-{w}",
        "rules": [
            _r(f"policy_team:leadsla_sla_decisions:increase{w}",
               f'sum by (policy, team) (increase({OUTCOMES}{{outcome=~"met|breached"}}[{w}]))'),
            _r(f"policy_team:leadsla_sla_breaches:increase{w}",
               f'sum by (policy, team) (increase({OUTCOMES}{{outcome="breached"}}[{w}]))'),
            _r(f"policy_team:leadsla_sla_error:ratio_rate{w}",
               f"policy_team:leadsla_sla_breaches:increase{w} / (policy_team:leadsla_sla_decisions:increase{w} > 0)"),
            _r(f"policy_team:leadsla_sla_compliance:ratio_rate{w}",
               f"1 - policy_team:leadsla_sla_error:ratio_rate{w}"),
            _r(f"policy:leadsla_sla_decisions:increase{w}",
               f"sum by (policy) (policy_team:leadsla_sla_decisions:increase{w})"),
            _r(f"policy:leadsla_sla_breaches:increase{w}",
               f"sum by (policy) (policy_team:leadsla_sla_breaches:increase{w})"),
            _r(f"policy:leadsla_sla_error:ratio_rate{w}",
               f"policy:leadsla_sla_breaches:increase{w} / (policy:leadsla_sla_decisions:increase{w} > 0)"),
            _r(f"policy:leadsla_sla_compliance:ratio_rate{w}",
               f"1 - policy:leadsla_sla_error:ratio_rate{w}"),
        ],
    }


def breaches_by_rep(window: str) -> str:
    """Breaches per policy, team and rep in ``window``, a rep's first included.

    A series born inside the window (no sample a window ago) counts by its
    value: it started at 0. This is decided per series, before the sum, and
    ahead of increase() in the ``or``: increase() of a series born at 1 is
    nothing at its first sample and 0 from its second on, and a sum of it
    (``sum(increase(...)) or sum(new series)``) would shadow the new series'
    value after one evaluation, so a breach alert would flap instead of
    staying up for the window. "Born" also needs the worker to have been
    scraped a window ago (``up offset``): right after Prometheus starts every
    series looks new, and totals from before must not alert; increase() takes
    those.
    """
    b = "leadsla_sla_breaches_total"
    return (f"sum by (policy, team, rep) ("
            f"({b} unless {b} offset {window}) and on (job, instance) up offset {window}"
            f" or increase({b}[{window}]))")


def state_group() -> dict[str, Any]:
    """Clocks now, speed and depth, breaches by rep."""
    bw = BREACH_WINDOW
    rules = [
        _r("policy_team:leadsla_sla_open_clocks:sum", "sum by (policy, team) (leadsla_sla_open_clocks)"),
        _r("policy_team:leadsla_sla_at_risk_clocks:sum", "sum by (policy, team) (leadsla_sla_at_risk_clocks)"),
        _r("policy:leadsla_sla_open_clocks:sum", "sum by (policy) (leadsla_sla_open_clocks)"),
        _r("policy:leadsla_sla_at_risk_clocks:sum", "sum by (policy) (leadsla_sla_at_risk_clocks)"),
        # Workers create these series at 0 when a clock starts, so increase()
        # usually sees a rep's first breach (it never counts a series' first
        # sample). Not always: a backlog caught up after downtime, or a clock
        # recovered already due, starts and breaches between two scrapes, and
        # the series is born at 1 or more; breaches_by_rep() counts those too.
        _r(f"policy_team_rep:leadsla_sla_breaches:increase{bw}", breaches_by_rep(bw)),
        # The same for a day: the sales follow-up dashboard's "breaches by rep, last 24 h".
        _r("policy_team_rep:leadsla_sla_breaches:increase1d", breaches_by_rep("1d")),
        _r("policy:leadsla_sla_corrections:increase1d", "sum by (policy) (increase(leadsla_sla_corrections_total[1d]))"),
    ]
    for q, name in ((0.5, "p50"), (0.9, "p90")):
        for w in ("1h", "1d"):
            rules.append(_r(
                f"policy_team:leadsla_sla_elapsed_seconds:{name}_rate{w}",
                f"histogram_quantile({q}, sum by (policy, team, le) (rate(leadsla_sla_elapsed_seconds_bucket[{w}])))",
            ))
            rules.append(_r(
                f"team:leadsla_followup_latency_seconds:{name}_rate{w}",
                f"histogram_quantile({q}, sum by (team, le) (rate(leadsla_followup_latency_seconds_bucket[{w}])))",
            ))
    rules += [
        _r("team:leadsla_handoffs:increase1d", "sum by (team) (increase(leadsla_handoffs_total[1d]))"),
        _r("team:leadsla_followup_attempts:increase1d", "sum by (team) (increase(leadsla_followup_attempts_total[1d]))"),
        _r("team:leadsla_followup_attempts_per_handoff:ratio1d",
           "team:leadsla_followup_attempts:increase1d / (team:leadsla_handoffs:increase1d > 0)"),
    ]
    for w in DEPTH_WINDOWS:
        rules += depth_rules(w)
    return {"name": "leadsla-state", "rules": rules}


def depth_rules(window: str) -> list[dict[str, Any]]:
    """Attempts made on the depth clocks decided in ``window`` whose lead was
    not reached: how many such clocks, the median, 90th percentile and mean.

    Workers create each depth policy's histogram at start, so the count is 0,
    not missing, for a depth policy with nothing decided: dashboards join on
    it to pick the depth policies out of the per-policy SLIs (which already
    hold their met and breached shares, like any policy's).
    """
    w, h = window, DEPTH_ATTEMPTS
    return [
        _r(f"policy:{h}_count:increase{w}", f"sum by (policy) (increase({h}_count[{w}]))"),
        _r(f"policy:{h}:p50_rate{w}", f"histogram_quantile(0.5, sum by (policy, le) (rate({h}_bucket[{w}])))"),
        _r(f"policy:{h}:p90_rate{w}", f"histogram_quantile(0.9, sum by (policy, le) (rate({h}_bucket[{w}])))"),
        _r(f"policy:{h}:mean_rate{w}",
           f"sum by (policy) (rate({h}_sum[{w}])) / (sum by (policy) (rate({h}_count[{w}])) > 0)"),
    ]


def pipeline_group() -> dict[str, Any]:
    j = f'job="{JOB}"'
    return {
        "name": "leadsla-pipeline",
        "rules": [
            _r("job:leadsla_events:rate5m", f"sum by (job) (rate(leadsla_events_total{{{j}}}[5m]))"),
            _r("job:leadsla_events:increase30m", f"sum by (job) (increase(leadsla_events_total{{{j}}}[30m]))"),
            _r("job_reason:leadsla_events_rejected:rate5m",
               f"sum by (job, reason) (rate(leadsla_events_rejected_total{{{j}}}[5m]))"),
            _r("job:leadsla_events_duplicate:rate5m", f"sum by (job) (rate(leadsla_events_duplicate_total{{{j}}}[5m]))"),
            _r("job:leadsla_sla_decisions:rate5m", f"sum by (job) (rate({OUTCOMES}{{{j}}}[5m]))"),
            _r("job:leadsla_consumer_lag:sum", f"sum by (job) (leadsla_consumer_lag{{{j}}})"),
            _r("job:leadsla_owned_partitions:sum", f"sum by (job) (leadsla_owned_partitions{{{j}}})"),
            _r("job:leadsla_calendar_open:max", f"max by (job) (leadsla_calendar_open{{{j}}})"),
        ],
    }


def policy_group(policies: PolicySet) -> dict[str, Any]:
    """Each policy's objective and error budget, straight from the file."""
    rules = []
    for p in policies.policies:
        labels = {"policy": p.name}
        rules.append(_r("policy:leadsla_sla_objective:ratio", f"vector({p.objective!r})", labels))
        rules.append(_r("policy:leadsla_sla_error_budget:ratio", f"vector({error_budget(p.objective)!r})", labels))
        # The goal in SLA seconds, for the goal lines of the speed panels.
        rules.append(_r("policy:leadsla_sla_goal:seconds", f"vector({p.goal_seconds!r})", labels))
        if p.is_depth:
            # The attempts a depth policy asks for, the reference line of the
            # attempts panels (workers do not export it).
            rules.append(_r("policy:leadsla_followup_min_attempts:count", f"vector({p.min_attempts!r})", labels))
    rules.append(_r(
        "policy:leadsla_sla_error_budget_remaining:ratio30d",
        "1 - policy:leadsla_sla_error:ratio_rate30d / on (policy) policy:leadsla_sla_error_budget:ratio",
    ))
    rules.append(_r(
        "policy_team:leadsla_sla_burn_rate:ratio1h",
        "policy_team:leadsla_sla_error:ratio_rate1h / on (policy) group_left () policy:leadsla_sla_error_budget:ratio",
    ))
    return {"name": "leadsla-policies", "rules": rules}


def target_group() -> dict[str, Any]:
    """Delivery targets, whatever the file holds: each worker reports its
    partitions' share, so the delivered figures and the forecast are summed
    over workers and the goals, lines and days (the same on every worker)
    taken once with max()."""
    rules = [
        _r(f"target:leadsla_target_{m}:sum", f"sum by (target) (leadsla_target_{m})")
        for m in ("delivered", "value_delivered", "forecast")
    ]
    rules += [
        _r(f"target:leadsla_target_{m}:max", f"max by (target) (leadsla_target_{m})")
        for m in ("goal", "value_goal", "goal_line", "period_day", "period_days")
    ]
    rules += [
        _r("target:leadsla_target_pace_margin:max", "max by (target) (leadsla_target_pace_margin_ratio)"),
        # Delivered against the goal line at this moment of the period: the
        # forecast is delivered x period length / time elapsed, so forecast /
        # goal is delivered / (goal x elapsed / length). Today's goal line
        # (goal x d / n) is where the day should end: against it, a target
        # exactly on pace reads (d - 1) / d at midnight, 50 % on the second
        # day, and stays more than a 10 % margin behind every morning until
        # the tenth day (on the second until 19:12). Elapsed time is at least
        # a day, so the first day still compares with the whole of its line:
        # the alerts leave that day out.
        _r("target:leadsla_target_pacing:ratio",
           "target:leadsla_target_forecast:sum / on (target) (target:leadsla_target_goal:max > 0)"),
        # The waterfall: delivered by the end of each day so far, and the goal
        # line on every day of the period.
        _r("target_day:leadsla_target_delivered_cumulative:sum",
           "sum by (target, day) (leadsla_target_delivered_cumulative)"),
        _r("target_day:leadsla_target_goal_line_cumulative:max",
           "max by (target, day) (leadsla_target_goal_line_cumulative)"),
    ]
    return {"name": "leadsla-targets", "rules": rules}


def period_group() -> dict[str, Any]:
    """Periods and accountability (contract §9): each judged level (a
    policy's team, or a target) is kept by one worker at a time, which may
    change at a rebalance, so levels are taken with max(); each worker
    reports the points of the levels it keeps, so points are summed."""
    rules = [
        _r(f"level:leadsla_period_{m}:max", f"max by (kind, name, team) (leadsla_period_{m})")
        for m in ("strikes", "under_review", "met", "achieved")
    ]
    rules.append(_r("team:leadsla_team_points:sum", "sum by (team) (leadsla_team_points)"))
    return {"name": "leadsla-periods", "rules": rules}


def recording_rules(policies: PolicySet) -> dict[str, Any]:
    """Every recording rule group, SLIs first: the alert groups and the
    dashboards read these."""
    return {"groups": [*(sli_group(w) for w in WINDOWS), state_group(), pipeline_group(), policy_group(policies),
                       target_group(), period_group()]}
