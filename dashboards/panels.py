"""House defaults of the leadsla dashboards, in one place: the datasource
variable, the label selectors and template variables, units, thresholds, one
helper per panel kind and the grid layout.

The dashboard modules say *what* a panel shows (one function per panel); how
panels look is decided here, so every dashboard looks alike and a change of
style is one edit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from grafana_foundation_sdk.builders import (
    barchart,
    bargauge,
    dashboard,
    gauge,
    prometheus,
    stat,
    table,
    timeseries,
)
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DashboardLinkType,
    DataSourceRef,
    DataTransformerConfig,
    DynamicConfigValue,
    GridPos,
    Threshold,
    ThresholdsConfig,
    ThresholdsMode,
    ValueMap,
    ValueMapping,
    ValueMappingResult,
    VariableOption,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from leadsla.dashboards.slo import BURN_TIERS
from leadsla.models.policy import Policy, PolicySet, Target

# Every panel and query reads from the dashboard's datasource variable, so the
# same JSON works with the provisioned datasource and on any other Grafana.
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
TAGS = ["leadsla"]

# Label selectors of the template variables.
POLICY = '{policy=~"$policy"}'
TEAM = '{team=~"$team"}'
POLICY_TEAM = '{policy=~"$policy", team=~"$team"}'
TARGET = '{target=~"$target"}'

# Units (Grafana unit ids).
SECONDS = "s"
RATIO = "percentunit"
COUNT = "short"
EVENTS_PER_SECOND = "eps"
RECORDS = "short"
MULTIPLE = "suffix:×"  # a Grafana custom unit: 2.5×

# Legends: the policy first, so a per-policy override can match the series.
BY_POLICY = "{{policy}}"
BY_POLICY_TEAM = "{{policy}} · {{team}}"
BY_TEAM = "{{team}}"
BY_TARGET = "{{target}}"

ALL = VariableOption(selected=True, text=["All"], value=["$__all"])
BUILTIN_ANNOTATIONS = {
    "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True, "hide": True,
    "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard",
}

Steps = Sequence[tuple[float | None, str]]


# --- thresholds -------------------------------------------------------------

def thresholds(steps: Steps) -> ThresholdsConfig:
    """Absolute thresholds; the first step is the base (value None)."""
    return ThresholdsConfig(mode=ThresholdsMode.ABSOLUTE, steps=[Threshold(value=v, color=c) for v, c in steps])


def _builder(config: ThresholdsConfig) -> dashboard.ThresholdsConfig:
    return dashboard.ThresholdsConfig().mode(config.mode).steps(config.steps)


def compliance_steps(objective: float) -> Steps:
    """Green at the objective, orange within twice the error budget below it, red under that."""
    budget = 1 - objective
    return ((None, "red"), (round(max(0.0, 1 - 2 * budget), 10), "orange"), (objective, "green"))


# Remaining share of the 30-day error budget: overspent is red.
BUDGET_STEPS: Steps = ((None, "red"), (0.0, "orange"), (0.25, "yellow"), (0.5, "green"))
# Burn-rate factors of the alert tiers (1x, 3x, 6x, 14.4x): the colours change where an alert tier starts.
_FACTORS = sorted({t.factor for t in BURN_TIERS})
BURN_FACTORS = ", ".join(f"{f:g}×" for f in _FACTORS)
BURN_STEPS: Steps = ((None, "green"), *zip(_FACTORS, ("yellow", "orange", "red", "dark-red", "purple"), strict=False))
# Counts where anything above zero needs a look (breaches, at-risk clocks, dead letters).
ANY_IS_BAD: Steps = ((None, "green"), (1, "orange"))
NEUTRAL: Steps = ((None, "blue"),)
# ConsumerLagGrowing alerts above 1000 records.
LAG_STEPS: Steps = ((None, "green"), (1000, "orange"))


def strictest_objective(policies: PolicySet) -> float:
    return max((p.objective for p in policies.policies), default=0.95)


def policy_series(policy: Policy) -> str:
    """Display names of a policy's series under the BY_POLICY / BY_POLICY_TEAM legends."""
    return f"^{re.escape(policy.name)}( · .*)?$"


def pace_steps(margin: float) -> Steps:
    """A pace (delivered ÷ the goal line now) against a target's pace margin:
    red where LeadSlaTargetBehindPace looks, orange below the line, green on
    it or above."""
    return ((None, "red"), (round(1 - margin, 10), "orange"), (1.0, "green"))


def forecast_steps(target: Target) -> Steps:
    """A forecast in leads, coloured like its pace: the same thresholds times the goal."""
    return ((None, "red"), (round(target.goal * (1 - target.pace_margin), 10), "orange"), (float(target.goal), "green"))


def strictest_margin(policies: PolicySet) -> float:
    """The smallest pace margin of the file (0.1, the default, without targets):
    the colours of a target the file does not name."""
    return min((t.pace_margin for t in policies.targets), default=0.1)


def target_series(target: Target) -> str:
    """Display names of a target's series under the BY_TARGET legend."""
    return f"^{re.escape(target.name)}$"


# --- template variables -----------------------------------------------------

def datasource_variable() -> dashboard.DatasourceVariable:
    return (dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")
            .description("The Prometheus that evaluates the leadsla recording rules."))


def _selection_variable(name: str, label: str, description: str, query: str) -> dashboard.QueryVariable:
    return (
        dashboard.QueryVariable(name).label(label).description(description).datasource(DATASOURCE).query(query)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True).include_all(True).all_value(".*").current(ALL)
    )


def policy_variable() -> dashboard.QueryVariable:
    return _selection_variable(
        "policy", "Policy",
        "SLA policies from the policies file (only those with decisions in the last day are listed).",
        "label_values(policy:leadsla_sla_decisions:increase1d, policy)",
    )


def team_variable() -> dashboard.QueryVariable:
    return _selection_variable(
        "team", "Team", "Sales teams with decided clocks of the selected policies in the last day.",
        'label_values(policy_team:leadsla_sla_decisions:increase1d{policy=~"$policy"}, team)',
    )


def target_variable() -> dashboard.QueryVariable:
    """The delivery targets the workers report now (those of their policies file)."""
    return _selection_variable(
        "target", "Target", "Delivery targets from the policies file, as the workers report them.",
        "label_values(target:leadsla_target_goal:max, target)",
    )


# --- queries ------------------------------------------------------------------

def query(expr: str, legend: str = "", ref: str = "A", instant: bool = False,
          as_table: bool = False) -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
    if legend:
        q = q.legend_format(legend)
    q = q.instant() if instant else q.range()
    if as_table:
        q = q.format(PromQueryFormat.TABLE)
    return q


# --- panels -------------------------------------------------------------------

P = TypeVar("P", stat.Panel, gauge.Panel, bargauge.Panel, timeseries.Panel, table.Panel, barchart.Panel)


def _common(panel: P, title: str, description: str, targets: Iterable[prometheus.Dataquery]) -> P:
    return panel.title(title).description(description).datasource(DATASOURCE).targets(list(targets))


def per_policy_thresholds(panel: Any, policies: PolicySet) -> Any:
    """Each policy's series coloured by that policy's own objective."""
    for p in policies.policies:
        panel = panel.override_by_regexp(
            policy_series(p), [DynamicConfigValue(id_val="thresholds", value=thresholds(compliance_steps(p.objective)))]
        )
    return panel


def per_target_thresholds(panel: Any, policies: PolicySet, steps: Callable[[Target], Steps]) -> Any:
    """Each target's series coloured by thresholds from that target's own entry in the file."""
    for t in policies.targets:
        panel = panel.override_by_regexp(
            target_series(t), [DynamicConfigValue(id_val="thresholds", value=thresholds(steps(t)))]
        )
    return panel


def stat_panel(title: str, description: str, targets: Iterable[prometheus.Dataquery], unit: str,
               steps: Steps, decimals: int | None = None) -> stat.Panel:
    """A big number per series, coloured by its threshold: readable across a room."""
    panel = (
        _common(stat.Panel(), title, description, targets)
        .unit(unit).thresholds(_builder(thresholds(steps)))
        .color_mode(common.BigValueColorMode.BACKGROUND).graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME).justify_mode(common.BigValueJustifyMode.CENTER)
        .orientation(common.VizOrientation.AUTO)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .no_value("–")
    )
    if decimals is not None:
        panel = panel.decimals(decimals)
    return panel


def gauge_panel(title: str, description: str, targets: Iterable[prometheus.Dataquery], unit: str,
                steps: Steps, min_val: float, max_val: float) -> gauge.Panel:
    return (
        _common(gauge.Panel(), title, description, targets)
        .unit(unit).min(min_val).max(max_val).decimals(1).thresholds(_builder(thresholds(steps)))
        .show_threshold_markers(True).show_threshold_labels(False)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .no_value("–")
    )


def bargauge_panel(title: str, description: str, targets: Iterable[prometheus.Dataquery], unit: str,
                   steps: Steps, min_val: float, max_val: float | None, decimals: int = 1) -> bargauge.Panel:
    """Horizontal bars; ``max_val`` None scales them to the largest value."""
    panel = _common(bargauge.Panel(), title, description, targets).unit(unit).min(min_val)
    if max_val is not None:
        panel = panel.max(max_val)
    return (
        panel.decimals(decimals).thresholds(_builder(thresholds(steps)))
        .orientation(common.VizOrientation.HORIZONTAL).display_mode(common.BarGaugeDisplayMode.BASIC)
        .value_mode(common.BarGaugeValueMode.COLOR).show_unfilled(True)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .no_value("–")
    )


def timeseries_panel(title: str, description: str, targets: Iterable[prometheus.Dataquery], unit: str,
                     min_val: float | None = None, max_val: float | None = None,
                     dashed: Sequence[str] = (), steps: Steps | None = None) -> timeseries.Panel:
    """Lines over time. Queries named in ``dashed`` (refIds) are reference lines: goals, objectives."""
    panel = (
        _common(timeseries.Panel(), title, description, targets)
        .unit(unit).line_width(2).fill_opacity(0).span_nulls(True)
        .show_points(common.VisibilityMode.NEVER)
        .legend(common_builders.VizLegendOptions().show_legend(True)
                .display_mode(common.LegendDisplayMode.TABLE).placement(common.LegendPlacement.RIGHT)
                .calcs(["lastNotNull"]))
        .tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
                 .sort(common.SortOrder.DESCENDING))
    )
    if min_val is not None:
        panel = panel.min(min_val)
    if max_val is not None:
        panel = panel.max(max_val)
    if steps is not None:
        panel = (panel.thresholds(_builder(thresholds(steps)))
                 .thresholds_style(common_builders.GraphThresholdsStyleConfig()
                                   .mode(common.GraphTresholdsStyleMode.DASHED)))
    for ref in dashed:
        panel = panel.override_by_query(ref, [
            DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}),
            DynamicConfigValue(id_val="custom.lineWidth", value=1),
        ])
    return panel


@dataclass(frozen=True)
class Column:
    """A table column filled by one instant query."""

    header: str
    expr: str
    unit: str = COUNT
    decimals: int | None = None


def table_panel(title: str, description: str, labels: Sequence[str], columns: Sequence[Column],
                sort_by: str | None = None) -> table.Panel:
    """One row per label set, one column per instant query (merged on the labels)."""
    refs = [chr(ord("A") + i) for i in range(len(columns))]
    targets = [query(c.expr, ref=r, instant=True, as_table=True) for c, r in zip(columns, refs, strict=True)]
    # Grafana names the value column "Value" for a single query, "Value #<refId>" for several.
    values = ["Value"] if len(columns) == 1 else [f"Value #{r}" for r in refs]
    rename = {v: c.header for v, c in zip(values, columns, strict=True)}
    order = {name: i for i, name in enumerate([*labels, *values])}
    panel = (
        _common(table.Panel(), title, description, targets)
        # Drop the columns that differ between queries (a selector keeps __name__) so that
        # "merge" joins the rows on the labels alone.
        .with_transformation(DataTransformerConfig(id_val="filterFieldsByName", options={
            "exclude": {"names": ["Time", "__name__"]},
        }))
        .with_transformation(DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(DataTransformerConfig(id_val="organize", options={
            "indexByName": order,
            "renameByName": rename,
        }))
        .cell_height(common.TableCellHeight.SM)
        .no_value("–")
    )
    for c in columns:
        props = [DynamicConfigValue(id_val="unit", value=c.unit)]
        if c.decimals is not None:
            props.append(DynamicConfigValue(id_val="decimals", value=c.decimals))
        panel = panel.override_by_name(c.header, props)
    if sort_by:
        panel = panel.sort_by([common_builders.TableSortByFieldState().display_name(sort_by).desc(True)])
    return panel


REFERENCE_COLOR = "text"  # bars that show a goal rather than a result, as the dashed lines do on graphs


def numbered_bars_panel(title: str, description: str, x: str, columns: Sequence[Column],
                        drop: Sequence[str] = (), reference: Sequence[str] = ()) -> barchart.Panel:
    """Bars side by side for each value of the label ``x``, one bar per column.

    Each column is an instant query; the rows are merged on their labels, as
    in ``table_panel``. ``x`` holds numbers as text (a day of a period), so it
    is sorted as a number and then shown as text: Prometheus returns 1, 10,
    11, …, 2 and the bar chart needs a text field for its axis. Labels in
    ``drop`` are left out (one that is the same on every row, such as the
    variable a repeated panel stands for); columns named in ``reference`` are
    drawn in a muted colour: they show a goal, not a result.
    """
    refs = [chr(ord("A") + i) for i in range(len(columns))]
    targets = [query(c.expr, ref=r, instant=True, as_table=True) for c, r in zip(columns, refs, strict=True)]
    values = ["Value"] if len(columns) == 1 else [f"Value #{r}" for r in refs]
    panel = (
        _common(barchart.Panel(), title, description, targets)
        .with_transformation(DataTransformerConfig(id_val="filterFieldsByName", options={
            "exclude": {"names": ["Time", "__name__", *drop]},
        }))
        .with_transformation(DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(DataTransformerConfig(id_val="convertFieldType", options={
            "conversions": [{"targetField": x, "destinationType": "number"}], "fields": {},
        }))
        .with_transformation(DataTransformerConfig(id_val="sortBy", options={
            "fields": {}, "sort": [{"field": x, "desc": False}],
        }))
        .with_transformation(DataTransformerConfig(id_val="convertFieldType", options={
            "conversions": [{"targetField": x, "destinationType": "string"}], "fields": {},
        }))
        .with_transformation(DataTransformerConfig(id_val="organize", options={
            "indexByName": {name: i for i, name in enumerate([x, *values])},
            "renameByName": {v: c.header for v, c in zip(values, columns, strict=True)},
        }))
        .x_field(x).orientation(common.VizOrientation.VERTICAL).stacking(common.StackingMode.NONE)
        .show_value(common.VisibilityMode.NEVER).fill_opacity(80).group_width(0.8).bar_width(0.9)
        .x_tick_label_rotation(0)
        .legend(common_builders.VizLegendOptions().show_legend(True)
                .display_mode(common.LegendDisplayMode.LIST).placement(common.LegendPlacement.BOTTOM).calcs([]))
        .tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
                 .sort(common.SortOrder.NONE))
        .no_value("–")
    )
    for c in columns:
        props = [DynamicConfigValue(id_val="unit", value=c.unit)]
        if c.decimals is not None:
            props.append(DynamicConfigValue(id_val="decimals", value=c.decimals))
        if c.header in reference:
            props.append(DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": REFERENCE_COLOR}))
            props.append(DynamicConfigValue(id_val="custom.fillOpacity", value=25))
        panel = panel.override_by_name(c.header, props)
    return panel


def ready_mappings() -> list[ValueMapping]:
    return [ValueMap(options={
        "0": ValueMappingResult(text="not ready", color="red", index=0),
        "1": ValueMappingResult(text="ready", color="green", index=1),
    })]


def open_mappings() -> list[ValueMapping]:
    return [ValueMap(options={
        "0": ValueMappingResult(text="closed", color="blue", index=0),
        "1": ValueMappingResult(text="open", color="green", index=1),
    })]


# --- layout and dashboard --------------------------------------------------------

@dataclass(frozen=True)
class Row:
    """A band of panels of one height; ``title`` adds a section header above it."""

    height: int
    panels: Sequence[tuple[Any, int]]  # (panel builder, width out of 24)
    title: str | None = None


def arrange(rows: Sequence[Row]) -> list[tuple[str, Any]]:
    """Give every panel an explicit id and grid position, top to bottom, left to right.

    The SDK leaves panel ids unset; fixed ids keep the JSON (and panel links) stable.
    """
    placed: list[tuple[str, Any]] = []
    y, next_id = 0, 1
    for row in rows:
        if row.title:
            placed.append(("row", dashboard.Row(row.title).id(next_id).grid_pos(GridPos(h=1, w=24, x=0, y=y))))
            next_id += 1
            y += 1
        x = 0
        for panel, width in row.panels:
            if x + width > 24:
                raise ValueError(f"row wider than 24 columns at {panel.build().title!r}")
            placed.append(("panel", panel.id(next_id).grid_pos(GridPos(h=row.height, w=width, x=x, y=y))))
            next_id += 1
            x += width
        y += row.height
    return placed


def board(uid: str, title: str, description: str, variables: Sequence[Any], rows: Sequence[Row],
          time_from: str, refresh: str) -> dict[str, Any]:
    """A dashboard as plain JSON data (what Grafana's API and file provisioning take)."""
    b = (
        dashboard.Dashboard(title).uid(uid).description(description).tags(TAGS)
        .readonly()  # generated: edits in Grafana would be overwritten by the next push
        .timezone("browser").time(time_from, "now").refresh(refresh)
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .link(dashboard.DashboardLink("leadsla").type(DashboardLinkType.DASHBOARDS).tags(TAGS)
              .as_dropdown(True).include_vars(True).keep_time(True))
    )
    for v in variables:
        b = b.with_variable(v)
    for kind, item in arrange(rows):
        b = b.with_row(item) if kind == "row" else b.with_panel(item)
    data = to_data(b)
    # The SDK writes "annotations": {} and has no builtIn flag; Grafana expects a list with its
    # built-in "Annotations & Alerts" entry (and adds a second one when builtIn is missing).
    data["annotations"] = {"list": [BUILTIN_ANNOTATIONS]}
    return data


def to_data(builder: Any) -> dict[str, Any]:
    """Builder -> plain JSON-able dict (render.py dumps it with sorted keys)."""
    data: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    return data
