"""Alert rules, generated from the policies: breaches, at-risk clocks,
multiwindow burn rates per policy and team, follow-up depth, delivery targets
behind pace, agreements due for review, and the pipeline's own health."""

from __future__ import annotations

from typing import Any

from leadsla.dashboards.slo import (
    BREACH_WINDOW,
    DEAD_LETTERS_WINDOW,
    DEPTH_BREACHES_FOR,
    DEPTH_WINDOW,
    JOB,
    LAG_GROWING_FOR,
    NO_EVENTS_FOR,
    POLICIES_DIFFER_FOR,
    PREFIX,
    REVIEW_FOR,
    TARGET_FORECAST_FOR,
    TARGET_LATE_SHARE,
    TARGET_PACE_FOR,
    EffectiveTier,
    effective_tiers,
    error_budget,
    runbook,
)
from leadsla.models.policy import Policy, PolicySet

TARGET_ALERTS = ("TargetBehindPace", "TargetForecastMiss")
# Alerts a stopped worker makes wrong: it decides nothing, then its backlog at
# once, and its share of the targets' delivered figures drops out of the sums.
SLA_ALERTS = ("DeadlineBreached", "ClocksAtRisk", "ErrorBudgetBurn", "DepthBreaches", "NoEventsInBusinessHours",
              *TARGET_ALERTS)
# Alerts that mean the pipeline itself is down: they silence the SLA alerts above.
PIPELINE_DOWN = ("TargetDown", "MetricsAbsent", "WorkerNotReady")


def name(short: str) -> str:
    return PREFIX + short


def _alert(short: str, expr: str, severity: str, summary: str, description: str, base: str,
           for_: str | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    alert: dict[str, Any] = {"alert": name(short), "expr": expr}
    if for_:
        alert["for"] = for_
    alert["labels"] = {"severity": severity, **(labels or {})}
    alert["annotations"] = {"summary": summary, "description": description, "runbook_url": runbook(name(short), base)}
    return alert


def sla_group(policies: PolicySet, base: str) -> dict[str, Any]:
    """Breaches and at-risk clocks of every policy, and each depth policy's
    breaches (depth clocks run for days: a share of a day, not a burn rate)."""
    return {
        "name": "leadsla-sla-alerts",
        "rules": [
            _alert(
                "DeadlineBreached",
                f"policy_team_rep:leadsla_sla_breaches:increase{BREACH_WINDOW} > 0",
                "warning",
                "Lead SLA deadlines were breached.",
                "{{ $value | humanize }} clock(s) of policy {{ $labels.policy }} breached their deadline in the last "
                f"{BREACH_WINDOW} (team {{{{ $labels.team }}}}, rep {{{{ $labels.rep }}}}). "
                "The lead ids are in the sla-outcomes topic.",
                base,
            ),
            _alert(
                "ClocksAtRisk",
                "policy_team:leadsla_sla_at_risk_clocks:sum > 0",
                "info",
                "Lead SLA clocks are close to their deadline.",
                "{{ $value | humanize }} running clock(s) of policy {{ $labels.policy }} (team {{ $labels.team }}) "
                "passed their at-risk threshold and are not stopped yet.",
                base,
                for_="1m",
            ),
            *(_depth_alert(p, base) for p in policies.policies if p.is_depth),
        ],
    }


def _depth_alert(p: Policy, base: str) -> dict[str, Any]:
    """More of a depth policy's clocks breached over DEPTH_WINDOW than its
    objective allows, for a team with at least min_decisions of them: the
    burn-rate alerts' SLI and guard, over a single day at 1x."""
    sel = f'{{policy="{p.name}"}}'
    w = DEPTH_WINDOW
    return _alert(
        "DepthBreaches",
        f"policy_team:leadsla_sla_error:ratio_rate{w}{sel} > {error_budget(p.objective)!r}"
        f" and policy_team:leadsla_sla_decisions:increase{w}{sel} >= {p.min_decisions}",
        "warning",
        f"Leads of {p.name} are not followed up as often as the SLA asks.",
        f"Depth policy {p.name} ({p.min_attempts} attempts, or the lead reached, within "
        f"{p.goal_text}, objective {p.objective:.4g}) for team {{{{ $labels.team }}}}: "
        f"{{{{ $value | humanizePercentage }}}} of the clocks decided in the last {w} breached, more than the "
        f"error budget of {_budget_text(p.objective)} (at least {p.min_decisions} decisions).",
        base,
        for_=DEPTH_BREACHES_FOR,
        labels={"policy": p.name},
    )


def burn_group(policies: PolicySet, base: str) -> dict[str, Any]:
    rules = []
    for p in policies.policies:
        for tier in ("page", "ticket"):
            rules.append(_burn_alert(p, tier, base))
    return {"name": "leadsla-burn-rate-alerts", "rules": rules}


def _burn_alert(p: Policy, tier: str, base: str) -> dict[str, Any]:
    sel = f'{{policy="{p.name}"}}'
    tiers = [e for e in effective_tiers(p.objective) if e.tier.tier == tier]
    clauses = []
    for e in tiers:
        t, cmp = e.tier, f"{e.op} {e.threshold!r}"
        clauses.append(
            f"(policy_team:leadsla_sla_error:ratio_rate{t.short}{sel} {cmp}"
            f" and policy_team:leadsla_sla_error:ratio_rate{t.long}{sel} {cmp}"
            f" and policy_team:leadsla_sla_decisions:increase{t.long}{sel} >= {p.min_decisions})"
        )
    severity = tiers[0].tier.severity
    windows = ", ".join(f"{e.tier.short}/{e.tier.long} x{e.factor:g}" for e in tiers)
    return _alert(
        "ErrorBudgetBurn",
        "\n or ".join(clauses),
        severity,
        f"Lead SLA {p.name} is burning its error budget too fast.",
        f"Policy {p.name} (goal {p.goal_text}, objective {p.objective:.4g}) for team "
        "{{ $labels.team }}: {{ $value | humanizePercentage }} of decided clocks breached, "
        f"faster than the objective allows ({tier}: {windows}; at least {p.min_decisions} decisions)."
        + _capped_note(p.objective, tiers),
        base,
        for_="2m" if tier == "page" else "15m",
        labels={"policy": p.name, "tier": tier},
    )


def _budget_text(objective: float) -> str:
    return f"{error_budget(objective) * 100:.4g} %"


def _capped_note(objective: float, tiers: list[EffectiveTier]) -> str:
    """The description's sentence on capped factors, so whoever is paged
    knows the tier fires only when all decided clocks breached."""
    capped = [e for e in tiers if e.capped]
    if not capped:
        return ""
    caps = " and ".join(f"from {e.nominal:g} to {e.factor:g} on {e.tier.short}/{e.tier.long}" for e in capped)
    return (f" Burn factor{'s' if len(capped) > 1 else ''} capped {caps} because objective {objective:.4g} "
            f"leaves an error budget of {_budget_text(objective)}: a capped tier fires when every decided clock "
            "in both its windows breached.")


def burn_tier_warnings(policies: PolicySet) -> list[str]:
    """One line per policy and burn tier that cannot fire at its nominal
    factor (its threshold would be an error ratio of 100 % or more), saying
    what the generated alert does instead (see ``effective_tiers``)."""
    lines = []
    for p in policies.policies:
        for e in effective_tiers(p.objective):
            if e.capped:
                t = e.tier
                lines.append(
                    f"warning: policy {p.name}, {t.tier} tier {t.short}/{t.long}: burn factor {e.nominal:g} "
                    f"cannot fire with objective {p.objective:.4g} (error budget {_budget_text(p.objective)}, "
                    f"threshold {round(e.nominal * error_budget(p.objective) * 100, 8):g} % of clocks breached); "
                    f"capped to {e.factor:g}, so it fires when every decided clock in both windows breached"
                )
    return lines


def target_group(base: str) -> dict[str, Any]:
    """Delivery targets behind pace, for any target the workers report: each
    target's margin, goal and period come with its own series."""
    late = round((1 - TARGET_LATE_SHARE) * 100, 8)
    return {
        "name": "leadsla-target-alerts",
        "rules": [
            _alert(
                "TargetBehindPace",
                # target:leadsla_target_pacing:ratio compares with the goal
                # line at this moment of the period; on the first day it is
                # the whole day's line (see rules.target_group), which the
                # first hours of a period cannot reach.
                "target:leadsla_target_pacing:ratio < on (target) (1 - target:leadsla_target_pace_margin:max)"
                " and on (target) target:leadsla_target_period_day:max > 1",
                "warning",
                "A delivery target is behind its goal line.",
                "Target {{ $labels.target }} has delivered {{ $value | humanizePercentage }} of its goal line for "
                "this point of the period, more than its pace_margin below it: at this pace the period ends short "
                "of the goal.",
                base,
                for_=TARGET_PACE_FOR,
            ),
            _alert(
                "TargetForecastMiss",
                "target:leadsla_target_forecast:sum < on (target) target:leadsla_target_goal:max"
                " and on (target) target:leadsla_target_period_day:max"
                f" > on (target) ({TARGET_LATE_SHARE!r} * target:leadsla_target_period_days:max)",
                "warning",
                "A delivery target will miss its goal at the current pace.",
                "At its current pace target {{ $labels.target }} ends the period at {{ $value | humanize }} leads, "
                f"short of its goal, with {late:g} % of the period or less left to make up for it.",
                base,
                for_=TARGET_FORECAST_FOR,
            ),
        ],
    }


def pipeline_group(base: str) -> dict[str, Any]:
    j = f'job="{JOB}"'
    return {
        "name": "leadsla-pipeline-alerts",
        "rules": [
            _alert("TargetDown", f"up{{{j}}} == 0", "critical",
                   "A leadsla worker cannot be scraped.",
                   "Prometheus cannot scrape {{ $labels.instance }}: its SLA clocks are not being decided "
                   "and its metrics are stale.", base, for_="2m"),
            _alert("MetricsAbsent", f"absent(up{{{j}}})", "critical",
                   "No leadsla worker is known to Prometheus.",
                   f"There is no scrape target with job={JOB}: nothing watches the lead SLA.", base, for_="5m"),
            _alert("WorkerNotReady", f"leadsla_worker_ready{{{j}}} == 0", "warning",
                   "A leadsla worker is not processing.",
                   "{{ $labels.instance }} has not finished recovering its state or lost its partitions "
                   "(rebalancing) for 5 minutes.", base, for_="5m"),
            _alert("PoliciesDiffer",
                   f"count by (job, app_id) (count by (job, app_id, fingerprint) (leadsla_policies_info{{{j}}})) > 1",
                   "warning",
                   "leadsla workers of one group decide by different policies.",
                   "{{ $value }} different policies files are in use by the workers of {{ $labels.app_id }}: each "
                   "decides the partitions it owns by its own file.", base, for_=POLICIES_DIFFER_FOR),
            _alert("NoEventsInBusinessHours",
                   "job:leadsla_events:increase30m == 0 and on (job) job:leadsla_calendar_open:max == 1",
                   "warning",
                   "No lead events during business hours.",
                   f"{{{{ $labels.job }}}} accepted no lead event in the last {NO_EVENTS_FOR} while a sales calendar "
                   "is open: is the CRM still publishing to lead-events?", base, for_="15m"),
            _alert("ConsumerLagGrowing",
                   f"job:leadsla_consumer_lag:sum > 1000 and deriv(job:leadsla_consumer_lag:sum[{LAG_GROWING_FOR}]) > 0",
                   "warning",
                   "leadsla is falling behind lead-events.",
                   "{{ $value | humanize }} records wait in lead-events and the backlog keeps growing: decisions "
                   "are late and breaches are found late.", base, for_=LAG_GROWING_FOR),
            _alert("DeadLetters",
                   f"sum by (job, reason) (increase(leadsla_events_rejected_total{{{j}}}[{DEAD_LETTERS_WINDOW}])) > 0",
                   "warning",
                   "Lead events are going to the dead-letter topic.",
                   "{{ $value | humanize }} record(s) rejected as {{ $labels.reason }} in the last "
                   f"{DEAD_LETTERS_WINDOW}; they are in lead-events-dlq with their reason and error headers.", base),
        ],
    }


def period_group(base: str) -> dict[str, Any]:
    """An agreement due for review (contract §9): a level missed its
    review_after periods in a row. The gauge holds until a period is met, so
    the alert stays until then: a standing item for the next SLA meeting,
    not a page."""
    return {
        "name": "leadsla-period-alerts",
        "rules": [
            _alert(
                "AgreementUnderReview",
                "level:leadsla_period_under_review:max == 1",
                "warning",
                "A level of the SLA missed too many periods in a row: the agreement is due for review.",
                "The {{ $labels.kind }} {{ $labels.name }}{{ if $labels.team }} (team {{ $labels.team }}){{ end }} "
                "missed its level in its last periods in a row, as many as its review_after: its records on "
                "sla-periods say by how much.",
                base,
                for_=REVIEW_FOR,
            ),
        ],
    }


def alert_rules(policies: PolicySet, base: str) -> dict[str, Any]:
    """Every alert group; ``base`` is the README the runbook links point into."""
    return {"groups": [sla_group(policies, base), burn_group(policies, base), target_group(base),
                       period_group(base), pipeline_group(base)]}
