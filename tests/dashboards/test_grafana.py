"""The generated Grafana dashboards and provisioning: fixed UIDs, template
variables, queries that read only recorded series with the variables'
selectors, the house defaults on every panel, and deterministic output."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from leadsla.dashboards import grafana
from leadsla.dashboards.alerts import alert_rules
from leadsla.dashboards.render import render
from leadsla.dashboards.rules import recording_rules
from leadsla.dashboards.slo import RUNBOOK_BASE
from leadsla.models.policy import load_policies
from leadsla.streams.settings import EXAMPLE_POLICIES

POLICIES = load_policies(EXAMPLE_POLICIES)
BOARDS = grafana.dashboards(POLICIES)
RECORDED = {r["record"] for g in recording_rules(POLICIES)["groups"] for r in g["rules"]}
# The contract's v2 additions the example does not use: a depth policy and delivery targets.
V2_POLICIES = load_policies(Path(__file__).resolve().parents[1] / "rules" / "depth.policies.yaml")
V2_BOARDS = grafana.dashboards(V2_POLICIES)
V2_RECORDED = {r["record"] for g in recording_rules(V2_POLICIES)["groups"] for r in g["rules"]}
SETS = {"example": (BOARDS, RECORDED), "v2": (V2_BOARDS, V2_RECORDED)}

TEAM_SCREEN = "grafana/dashboards/leadsla-team-screen.json"
SALES_FOLLOWUP = "grafana/dashboards/leadsla-sales-followup.json"
MARKETING = "grafana/dashboards/leadsla-marketing.json"
PIPELINE_HEALTH = "grafana/dashboards/leadsla-pipeline-health.json"
WITH_POLICY_AND_TEAM = (TEAM_SCREEN, SALES_FOLLOWUP)

SERIES = re.compile(r"[a-z_]+:[a-z_0-9]+:[a-z_0-9]+")
RAW = re.compile(r"(?<![\w:])leadsla_[a-z0-9_]+(?![\w:])")
# What must follow a recorded series on a dashboard with $policy and $team.
SELECTOR = {
    "policy": '{policy=~"$policy"}',
    "team": '{team=~"$team"}',
    "policy_team": '{policy=~"$policy", team=~"$team"}',
    "policy_team_rep": '{policy=~"$policy", team=~"$team"}',
    "target": '{target=~"$target"}',
    "target_day": '{target=~"$target"}',
    "level": '{team=~"$team"}',
}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def exprs(board: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in panels(board) for t in p.get("targets", [])]


def variable(board: dict[str, Any], name: str) -> dict[str, Any]:
    return next(v for v in board["templating"]["list"] if v["name"] == name)


def variable_series(board: dict[str, Any]) -> list[str]:
    """The series of the ``label_values(series, label)`` variable queries."""
    out = []
    for v in board["templating"]["list"]:
        query = v.get("query")
        query = query.get("query", "") if isinstance(query, dict) else query
        if v["type"] == "query":
            m = re.fullmatch(r"label_values\((.*), *\w+\)", query)
            assert m, f"{v['name']}: {query!r}"
            out.append(m.group(1))
    return out


def test_files_and_fixed_uids() -> None:
    assert set(BOARDS) == {TEAM_SCREEN, SALES_FOLLOWUP, MARKETING, PIPELINE_HEALTH}
    for path, board in BOARDS.items():
        assert board["uid"] == Path(path).stem
        assert board["title"] and board["description"]
        assert "leadsla" in board["tags"]
    assert tuple(b["uid"] for b in BOARDS.values()) == grafana.UIDS
    # The UID reserved for it before it had panels: links and bookmarks keep working.
    assert grafana.MARKETING_UID == "leadsla-marketing" == BOARDS[MARKETING]["uid"]
    # Whatever the file holds, the same dashboards under the same UIDs.
    assert [b["uid"] for b in V2_BOARDS.values()] == [b["uid"] for b in BOARDS.values()]


@pytest.mark.parametrize("path", sorted(BOARDS))
def test_template_variables(path: str) -> None:
    board = BOARDS[path]
    names = [v["name"] for v in board["templating"]["list"]]
    ds = variable(board, "datasource")
    assert (ds["type"], ds["query"]) == ("datasource", "prometheus")
    if path == PIPELINE_HEALTH:
        assert names == ["datasource"]
        return
    if path == MARKETING:
        assert names == ["datasource", "target"]
        target = variable(board, "target")
        assert target["query"] == "label_values(target:leadsla_target_goal:max, target)"
        assert target["multi"] is True and target["includeAll"] is True
        assert target["current"]["value"] == ["$__all"]
        return
    assert names == ["datasource", "policy", "team"]
    policy, team = variable(board, "policy"), variable(board, "team")
    assert policy["query"] == "label_values(policy:leadsla_sla_decisions:increase1d, policy)"
    assert team["query"] == 'label_values(policy_team:leadsla_sla_decisions:increase1d{policy=~"$policy"}, team)'
    for v in (policy, team):
        assert v["type"] == "query"
        assert v["multi"] is True and v["includeAll"] is True
        assert v["datasource"]["uid"] == "${datasource}"
        assert v["current"]["value"] == ["$__all"]


@pytest.mark.parametrize("policies", sorted(SETS))
@pytest.mark.parametrize("path", sorted(BOARDS))
def test_queries_read_recorded_series(path: str, policies: str) -> None:
    boards, recorded = SETS[policies]
    board = boards[path]
    queries = exprs(board) + variable_series(board)
    assert queries
    for expr in queries:
        used = SERIES.findall(expr)
        unknown = [s for s in used if s not in recorded]
        assert not unknown, f"{expr!r} reads series no recording rule records: {unknown}"
        raw = RAW.findall(expr)
        if path == PIPELINE_HEALTH:
            assert used or raw, expr
        else:
            # Graphs and alerts must compute the same number: only recording rules here.
            assert used and not raw, f"{expr!r} reads raw metrics {raw}"


@pytest.mark.parametrize("policies", sorted(SETS))
@pytest.mark.parametrize("path", [*WITH_POLICY_AND_TEAM, MARKETING])
def test_queries_follow_the_variables(path: str, policies: str) -> None:
    for expr in exprs(SETS[policies][0][path]):
        for m in SERIES.finditer(expr):
            level = m.group().split(":")[0]
            assert expr[m.end():].startswith(SELECTOR[level]), f"{m.group()} without {SELECTOR[level]} in {expr!r}"


def test_pipeline_health_reads_its_job_raw_gauges_only() -> None:
    raw = {name for expr in exprs(BOARDS[PIPELINE_HEALTH]) for name in RAW.findall(expr)}
    assert raw <= {"leadsla_worker_ready", "leadsla_seconds_since_last_event", "leadsla_owned_partitions"}
    for expr in exprs(BOARDS[PIPELINE_HEALTH]):
        for name in RAW.findall(expr):
            assert f'{name}{{job="leadsla"}}' in expr


@pytest.mark.parametrize("policies", sorted(SETS))
@pytest.mark.parametrize("path", sorted(BOARDS))
def test_house_defaults_on_every_panel(path: str, policies: str) -> None:
    board = SETS[policies][0][path]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) and i > 0 for i in ids)
    for p in board["panels"]:
        assert p["title"].strip(), p
        if p["type"] == "row":
            continue
        assert p["description"].strip(), p["title"]
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)) and all(refs), p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}", p["title"]
    titles = [p["title"] for p in board["panels"]]
    assert len(titles) == len(set(titles)), titles


@pytest.mark.parametrize("policies", sorted(SETS))
@pytest.mark.parametrize("path", sorted(BOARDS))
def test_layout_fits_the_grid_without_overlap(path: str, policies: str) -> None:
    taken: set[tuple[int, int]] = set()
    for p in SETS[policies][0][path]["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, p["title"]
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & taken, f"{p['title']} overlaps another panel"
        taken |= cells


def test_team_screen_is_a_few_big_numbers() -> None:
    board = BOARDS[TEAM_SCREEN]
    kinds = [p["type"] for p in board["panels"]]
    assert len(kinds) <= 10 and "row" not in kinds and "table" not in kinds
    first_row = [p for p in board["panels"] if p["gridPos"]["y"] == 0]
    assert {p["type"] for p in first_row} == {"stat"}
    assert all(p["options"]["colorMode"] == "background" for p in first_row)


def test_compliance_is_coloured_by_each_policys_objective() -> None:
    stat = next(p for p in BOARDS[TEAM_SCREEN]["panels"] if p["title"] == "Compliance today")
    greens = {}
    for override in stat["fieldConfig"]["overrides"]:
        policy = override["matcher"]["options"].removeprefix("^").split("(")[0]
        steps = override["properties"][0]["value"]["steps"]
        greens[policy] = next(s["value"] for s in steps if s["color"] == "green")
    assert greens == {p.name: p.objective for p in POLICIES.policies}


def test_goal_and_objective_lines_are_dashed() -> None:
    for path, title in ((TEAM_SCREEN, "Follow-up speed vs goal"), (TEAM_SCREEN, "Compliance over time vs objective"),
                        (SALES_FOLLOWUP, "Follow-up speed vs goal")):
        panel = next(p for p in BOARDS[path]["panels"] if p["title"] == title)
        dashed = {o["matcher"]["options"] for o in panel["fieldConfig"]["overrides"]
                  if any(prop["id"] == "custom.lineStyle" for prop in o["properties"])}
        reference = {t["refId"] for t in panel["targets"]
                     if "goal:seconds" in t["expr"] or "objective:ratio" in t["expr"]}
        assert dashed == reference and reference


def test_recording_rules_the_dashboards_added() -> None:
    rules = [r for g in recording_rules(POLICIES)["groups"] for r in g["rules"]]
    goals = {r["labels"]["policy"]: r["expr"] for r in rules if r["record"] == "policy:leadsla_sla_goal:seconds"}
    assert goals == {p.name: f"vector({p.goal_seconds!r})" for p in POLICIES.policies}
    assert "policy_team_rep:leadsla_sla_breaches:increase1d" in RECORDED


def depth_panel(boards: dict[str, dict[str, Any]], title: str) -> dict[str, Any]:
    return next(p for p in boards[SALES_FOLLOWUP]["panels"] if p["title"] == title)


def test_depth_panels_draw_min_attempts_from_the_file() -> None:
    title = "Attempts on leads not reached vs min_attempts"
    panel = depth_panel(V2_BOARDS, title)
    min_attempts = [t for t in panel["targets"] if "min_attempts" in t["expr"]]
    assert [t["expr"] for t in min_attempts] == ['policy:leadsla_followup_min_attempts:count{policy=~"$policy"}']
    dashed = {o["matcher"]["options"] for o in panel["fieldConfig"]["overrides"]
              if any(prop["id"] == "custom.lineStyle" for prop in o["properties"])}
    assert dashed == {min_attempts[0]["refId"]}
    rules = [r for g in recording_rules(V2_POLICIES)["groups"] for r in g["rules"]]
    constants = {r["labels"]["policy"]: r["expr"] for r in rules if r["record"] == "policy:leadsla_followup_min_attempts:count"}
    assert constants == {"follow_up_depth": "vector(6)"}  # depth policies only
    # The example's depth policy draws its min_attempts too.
    example = depth_panel(BOARDS, title)
    assert any("min_attempts" in t["expr"] for t in example["targets"])
    table = depth_panel(V2_BOARDS, "Depth policies: last 24 h")
    assert any("min_attempts" in t["expr"] for t in table["targets"])


def test_depth_panels_keep_to_depth_policies() -> None:
    """The SLI series hold every policy; the depth panels join on the depth
    attempts histogram, which only depth policies have."""
    for title in ("Depth policies: breached share (1d) vs error budget", "Depth policies: last 24 h"):
        for t in depth_panel(V2_BOARDS, title)["targets"]:
            if "leadsla_sla_" in t["expr"]:
                assert t["expr"].endswith(
                    ' and on (policy) policy:leadsla_followup_depth_attempts_count:increase1d{policy=~"$policy"}'), t


def test_depth_breach_panel_shows_what_the_alert_compares() -> None:
    panel = depth_panel(V2_BOARDS, "Depth policies: breached share (1d) vs error budget")
    exprs_ = [t["expr"] for t in panel["targets"]]
    assert exprs_[0].startswith('policy_team:leadsla_sla_error:ratio_rate1d{')
    assert exprs_[1].startswith('policy:leadsla_sla_error_budget:ratio{')
    (depth,) = [r for g in alert_rules(V2_POLICIES, RUNBOOK_BASE)["groups"] for r in g["rules"]
                if r["alert"] == "LeadSlaDepthBreaches"]
    assert depth["expr"].startswith('policy_team:leadsla_sla_error:ratio_rate1d{policy="follow_up_depth"} > 0.1 ')


def test_output_is_deterministic() -> None:
    again = grafana.dashboards(load_policies(EXAMPLE_POLICIES))
    assert again == BOARDS
    first, second = render(POLICIES, "policies.example.yaml"), render(POLICIES, "policies.example.yaml")
    assert first == second
    for path, board in BOARDS.items():
        assert first[path] == json.dumps(board, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        assert not re.search(r"20\d\d-\d\d-\d\dT", first[path]), "a timestamp in generated output"


def test_provisioning() -> None:
    files = grafana.provisioning()
    ds = files["grafana/provisioning/datasources/prometheus.yml"]["datasources"]
    assert [(d["uid"], d["type"], d["url"]) for d in ds] == [("leadsla-prometheus", "prometheus", "http://prometheus:9090")]
    (provider,) = files["grafana/provisioning/dashboards/leadsla.yml"]["providers"]
    assert provider["folder"] == "leadsla" and provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/leadsla"
    rendered = render(POLICIES, "policies.example.yaml")
    for path, data in files.items():
        text = rendered[path]
        assert text.startswith("# DO NOT EDIT")
        assert yaml.safe_load(text) == data


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    rules = []
    for board in [*BOARDS.values(), *V2_BOARDS.values()]:
        for expr in exprs(board) + variable_series(board):
            concrete = expr.replace("$policy", ".*").replace("$team", ".*").replace("$target", ".*")
            rules.append({"record": f"dashboard:query:n{len(rules)}", "expr": concrete})
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}))
    done = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
