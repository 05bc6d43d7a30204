"""The marketing dashboard: its layout, the waterfall's shape, reference lines
drawn dashed, colours from each target's own goal and margin, and the pace
it shows being the one the target alerts compare."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from leadsla.dashboards import marketing
from leadsla.dashboards.alerts import alert_rules
from leadsla.dashboards.slo import RUNBOOK_BASE
from leadsla.models.policy import PolicySet, load_policies
from leadsla.streams.settings import EXAMPLE_POLICIES

EXAMPLE = load_policies(EXAMPLE_POLICIES)
# mql_volume: goal 100 a month, margin 0.1 (the default); enterprise_mqls: goal 20 a week, margin 0.2.
V2 = load_policies(Path(__file__).resolve().parents[1] / "rules" / "depth.policies.yaml")
BOARD = marketing.dashboard(V2)


def panel(title: str, board: dict[str, Any] = BOARD) -> dict[str, Any]:
    return next(p for p in board["panels"] if p["title"] == title)


def graphs(board: dict[str, Any] = BOARD) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] == "timeseries"]


def steps_by_target(p: dict[str, Any]) -> dict[str, list[tuple[float | None, str]]]:
    out = {}
    for override in p["fieldConfig"]["overrides"]:
        (prop,) = override["properties"]
        assert prop["id"] == "thresholds"
        name = override["matcher"]["options"].removeprefix("^").removesuffix("$")
        out[name] = [(s["value"], s["color"]) for s in prop["value"]["steps"]]
    return out


def test_fixed_uid_title_and_variables() -> None:
    assert (BOARD["uid"], BOARD["title"]) == ("leadsla-marketing", "leadsla · Marketing delivery")
    assert [v["name"] for v in BOARD["templating"]["list"]] == ["datasource", "target"]
    # The same board for any file, but for the colours the file's targets give.
    assert marketing.dashboard(EXAMPLE)["uid"] == BOARD["uid"]


def test_the_period_at_a_glance_on_top() -> None:
    top = [p for p in BOARD["panels"] if p["gridPos"]["y"] == 0]
    assert [p["type"] for p in top] == ["stat", "stat", "stat", "bargauge"]
    assert all(t["instant"] for p in top for t in p["targets"])
    rows = [p["title"] for p in BOARD["panels"] if p["type"] == "row"]
    assert rows == ["Waterfall", "Over the period"]


def test_waterfall_bars_per_day_one_panel_per_target() -> None:
    w = panel("Waterfall: delivered vs goal line by day ($target)")
    assert w["type"] == "barchart"
    assert (w["repeat"], w["repeatDirection"]) == ("target", "v")
    assert w["gridPos"]["w"] == 24
    assert w["options"]["xField"] == "day"
    exprs = [(t["refId"], t["expr"], t["instant"], t["format"]) for t in w["targets"]]
    assert exprs == [
        ("A", 'target_day:leadsla_target_delivered_cumulative:sum{target=~"$target"}', True, "table"),
        ("B", 'target_day:leadsla_target_goal_line_cumulative:max{target=~"$target"}', True, "table"),
    ]
    ids = [t["id"] for t in w["transformations"]]
    assert ids == ["filterFieldsByName", "merge", "convertFieldType", "sortBy", "convertFieldType", "organize"]
    transforms = w["transformations"]
    # Days sort as numbers (Prometheus gives 1, 10, 11, …, 2) and show as text, the bar chart's axis.
    assert transforms[0]["options"]["exclude"]["names"] == ["Time", "__name__", "target"]
    assert transforms[2]["options"]["conversions"] == [{"targetField": "day", "destinationType": "number"}]
    assert transforms[3]["options"]["sort"] == [{"field": "day", "desc": False}]
    assert transforms[4]["options"]["conversions"] == [{"targetField": "day", "destinationType": "string"}]
    assert transforms[5]["options"]["renameByName"] == {"Value #A": "Delivered", "Value #B": "Goal line"}
    # The goal line is the reference: muted, like the dashed lines of the graphs.
    by_name = {o["matcher"]["options"]: {prop["id"] for prop in o["properties"]} for o in w["fieldConfig"]["overrides"]}
    assert "color" in by_name["Goal line"] and "color" not in by_name["Delivered"]


@pytest.mark.parametrize("title", [p["title"] for p in graphs()])
def test_goals_lines_and_thresholds_are_dashed(title: str) -> None:
    p = panel(title)
    dashed = {o["matcher"]["options"] for o in p["fieldConfig"]["overrides"]
              if any(prop["id"] == "custom.lineStyle" for prop in o["properties"])}
    reference = {t["refId"] for t in p["targets"] if "_goal" in t["expr"] or "pace_margin" in t["expr"]}
    assert dashed == reference and reference
    assert "A" not in reference  # the figure itself is a solid line


def test_pace_and_forecast_are_coloured_by_each_targets_entry() -> None:
    pace = steps_by_target(panel("Pace vs goal line"))
    assert pace == {
        "mql_volume": [(None, "red"), (0.9, "orange"), (1.0, "green")],
        "enterprise_mqls": [(None, "red"), (0.8, "orange"), (1.0, "green")],
    }
    forecast = steps_by_target(panel("Forecast for the period"))
    assert forecast == {
        "mql_volume": [(None, "red"), (90.0, "orange"), (100.0, "green")],
        "enterprise_mqls": [(None, "red"), (16.0, "orange"), (20.0, "green")],
    }
    # A target the file does not name gets the smallest (strictest) margin of the file.
    defaults = panel("Pace vs goal line")["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [(s["value"], s["color"]) for s in defaults] == [(None, "red"), (0.9, "orange"), (1.0, "green")]
    # The example's one target gets its own margin (0.1, the default).
    assert steps_by_target(panel("Pace vs goal line", marketing.dashboard(EXAMPLE))) == {
        "mql_volume": [(None, "red"), (0.9, "orange"), (1.0, "green")]}


def alert_expr(policies: PolicySet, name: str) -> str:
    (rule,) = [r for g in alert_rules(policies, RUNBOOK_BASE)["groups"] for r in g["rules"] if r["alert"] == name]
    expr: str = rule["expr"]
    return expr


def test_the_pace_shown_is_the_pace_the_alerts_compare() -> None:
    behind = alert_expr(V2, "LeadSlaTargetBehindPace")
    assert behind.startswith("target:leadsla_target_pacing:ratio < on (target) (1 - target:leadsla_target_pace_margin:max)")
    for title in ("Pace vs goal line", "Pace vs goal line over time"):
        assert panel(title)["targets"][0]["expr"] == 'target:leadsla_target_pacing:ratio{target=~"$target"}'
    threshold = panel("Pace vs goal line over time")["targets"][1]["expr"]
    assert threshold == '1 - target:leadsla_target_pace_margin:max{target=~"$target"}'
    miss = alert_expr(V2, "LeadSlaTargetForecastMiss")
    assert miss.startswith("target:leadsla_target_forecast:sum < on (target) target:leadsla_target_goal:max")
    forecast = [t["expr"] for t in panel("Forecast vs goal")["targets"]]
    assert forecast == ['target:leadsla_target_forecast:sum{target=~"$target"}',
                        'target:leadsla_target_goal:max{target=~"$target"}']
