"""Marketing delivery: marketing's side of the SLA — leads delivered against
each target's goal line, day by day (the waterfall), their value against the
value goal, the forecast for the period and the pace the target alerts read.

Every figure is a recording rule over all workers (``target:…``): each worker
reports only its partitions' share of a target.
"""

from __future__ import annotations

from typing import Any

from leadsla.dashboards import panels as p
from leadsla.dashboards.slo import TARGET_LATE_SHARE
from leadsla.models.policy import PolicySet

UID = "leadsla-marketing"
TITLE = "leadsla · Marketing delivery"

DELIVERED = "target:leadsla_target_delivered:sum" + p.TARGET
VALUE_DELIVERED = "target:leadsla_target_value_delivered:sum" + p.TARGET
GOAL = "target:leadsla_target_goal:max" + p.TARGET
VALUE_GOAL = "target:leadsla_target_value_goal:max" + p.TARGET
GOAL_LINE = "target:leadsla_target_goal_line:max" + p.TARGET
FORECAST = "target:leadsla_target_forecast:sum" + p.TARGET
PACE = "target:leadsla_target_pacing:ratio" + p.TARGET
PACE_MARGIN = "target:leadsla_target_pace_margin:max" + p.TARGET


# --- this period ----------------------------------------------------------------

def delivered_now() -> Any:
    """Leads delivered so far in each target's current period."""
    return p.stat_panel(
        "Delivered this period",
        "Leads delivered so far in each target's current period, all workers together "
        "(target:leadsla_target_delivered:sum). A lead counts once per target and period, on the day of its "
        "first delivering event.",
        [p.query(DELIVERED, p.BY_TARGET, instant=True)],
        p.COUNT, p.NEUTRAL, decimals=0,
    )


def pace_now(policies: PolicySet) -> Any:
    """The pace the alert reads, coloured by each target's pace margin."""
    panel = p.stat_panel(
        "Pace vs goal line",
        "Leads delivered as a share of where the goal line stands at this moment of the period "
        "(target:leadsla_target_pacing:ratio, the series LeadSlaTargetBehindPace reads): 100 % is on pace. "
        "Red more than the target's pace_margin below the line (the alert fires after an hour there, from the "
        "second day of the period on), orange below it. On a period's first day it is compared with the whole "
        "day's line and starts low.",
        [p.query(PACE, p.BY_TARGET, instant=True)],
        p.RATIO, p.pace_steps(p.strictest_margin(policies)), decimals=0,
    )
    return p.per_target_thresholds(panel, policies, lambda t: p.pace_steps(t.pace_margin))


def forecast_now(policies: PolicySet) -> Any:
    """Where each target ends its period at the current pace, coloured by its goal."""
    panel = p.stat_panel(
        "Forecast for the period",
        "Leads each target delivers by the end of its period at the pace so far "
        "(target:leadsla_target_forecast:sum: delivered × period length ÷ time elapsed, at least one day). Green "
        "at the goal, orange below it, red more than the pace_margin below it. In the last "
        f"{round((1 - TARGET_LATE_SHARE) * 100):g} % of a period a forecast below the goal fires "
        "LeadSlaTargetForecastMiss.",
        [p.query(FORECAST, p.BY_TARGET, instant=True)],
        p.COUNT, p.NEUTRAL, decimals=0,
    )
    return p.per_target_thresholds(panel, policies, p.forecast_steps)


def share_of_goal() -> Any:
    """How much of the period's goal, in leads and in value, is delivered."""
    return p.bargauge_panel(
        "Share of the period's goal delivered",
        "Leads delivered ÷ the period's goal (target:leadsla_target_delivered:sum ÷ target:leadsla_target_goal:max) "
        "and, for targets with a value_goal, value delivered ÷ value goal. Compare with the share of the period "
        "gone by; the pace panels do it for you.",
        [
            p.query(f"{DELIVERED} / on (target) {GOAL}", "leads · " + p.BY_TARGET, ref="A", instant=True),
            p.query(f"{VALUE_DELIVERED} / on (target) {VALUE_GOAL}", "value · " + p.BY_TARGET, ref="B",
                    instant=True),
        ],
        p.RATIO, p.NEUTRAL, 0, 1,
    )


# --- the waterfall ----------------------------------------------------------------

def waterfall() -> Any:
    """Cumulative deliveries against the goal line, one bar pair per day, one panel per target."""
    return p.numbered_bars_panel(
        "Waterfall: delivered vs goal line by day ($target)",
        "Leads delivered by the end of each day of the current period "
        "(target_day:leadsla_target_delivered_cumulative:sum) next to the goal line on that day, goal × day ÷ "
        "days in the period (target_day:leadsla_target_goal_line_cumulative:max). Days to come show only the "
        "line. Kept by the workers for the whole period, so it does not depend on Prometheus' history. One panel "
        "per selected target.",
        "day",
        [
            p.Column("Delivered", f"target_day:leadsla_target_delivered_cumulative:sum{p.TARGET}", p.COUNT, 0),
            p.Column("Goal line", f"target_day:leadsla_target_goal_line_cumulative:max{p.TARGET}", p.COUNT, 1),
        ],
        drop=["target"], reference=["Goal line"],
    ).repeat("target").repeat_direction("v")


# --- over the period --------------------------------------------------------------

def delivered_vs_goal_line() -> Any:
    """Delivered so far against today's goal line, over time."""
    return p.timeseries_panel(
        "Delivered vs goal line",
        "Leads delivered so far in the period (target:leadsla_target_delivered:sum); the dashed line is the goal "
        "line for today, goal × day ÷ days (target:leadsla_target_goal_line:max). The line steps up at each local "
        "midnight of the target's time zone to where that day should end; a target on pace reaches it by the "
        "evening.",
        [
            p.query(DELIVERED, p.BY_TARGET, ref="A"),
            p.query(GOAL_LINE, "goal line · " + p.BY_TARGET, ref="B"),
        ],
        p.COUNT, min_val=0, dashed=["B"],
    )


def forecast_vs_goal() -> Any:
    """The period's forecast against the goal, over time."""
    return p.timeseries_panel(
        "Forecast vs goal",
        "Leads each target ends its period with at the pace so far (target:leadsla_target_forecast:sum); the "
        "dashed line is the period's goal (target:leadsla_target_goal:max). Below it late in the period: "
        "LeadSlaTargetForecastMiss.",
        [
            p.query(FORECAST, p.BY_TARGET, ref="A"),
            p.query(GOAL, "goal · " + p.BY_TARGET, ref="B"),
        ],
        p.COUNT, min_val=0, dashed=["B"],
    )


def value_vs_value_goal() -> Any:
    """Weighted value delivered against the value goal and its line."""
    return p.timeseries_panel(
        "Value delivered vs value goal",
        "The weighted value of the leads delivered so far, for targets with value "
        "(target:leadsla_target_value_delivered:sum). Dashed: the period's value_goal "
        "(target:leadsla_target_value_goal:max) and its line for today, value goal × day ÷ days.",
        [
            p.query(VALUE_DELIVERED, p.BY_TARGET, ref="A"),
            p.query(VALUE_GOAL, "value goal · " + p.BY_TARGET, ref="B"),
            p.query(f"{VALUE_GOAL} * on (target) {GOAL_LINE} / on (target) {GOAL}",
                    "value goal line · " + p.BY_TARGET, ref="C"),
        ],
        p.COUNT, min_val=0, dashed=["B", "C"],
    )


def pace_over_time() -> Any:
    """The pace the alert reads, against each target's alert threshold."""
    return p.timeseries_panel(
        "Pace vs goal line over time",
        "Delivered as a share of the goal line at each moment of the period (target:leadsla_target_pacing:ratio, "
        "as forecast ÷ goal). 100 % is on pace. The dashed line is 1 − the target's pace_margin "
        "(target:leadsla_target_pace_margin:max): below it for an hour, from the second day on, "
        "LeadSlaTargetBehindPace fires.",
        [
            p.query(PACE, p.BY_TARGET, ref="A"),
            p.query(f"1 - {PACE_MARGIN}", "alert below · " + p.BY_TARGET, ref="B"),
        ],
        p.RATIO, min_val=0, dashed=["B"],
    )


def dashboard(policies: PolicySet) -> dict[str, Any]:
    """The marketing dashboard as Grafana JSON data; ``policies`` colour each target by its own goal and margin."""
    rows = [
        p.Row(6, [(delivered_now(), 5), (pace_now(policies), 6), (forecast_now(policies), 6), (share_of_goal(), 7)]),
        p.Row(9, [(waterfall(), 24)], title="Waterfall"),
        p.Row(8, [(delivered_vs_goal_line(), 12), (forecast_vs_goal(), 12)], title="Over the period"),
        p.Row(8, [(value_vs_value_goal(), 12), (pace_over_time(), 12)]),
    ]
    return p.board(
        UID, TITLE,
        "Marketing's side of the lead SLA: leads and their value delivered against each target's goal, the goal "
        "line day by day, the forecast for the period and the pace the alerts read. Generated by `leadsla "
        "generate` from the policies file.",
        [p.datasource_variable(), p.target_variable()],
        rows, time_from="now-30d", refresh="5m",
    )
