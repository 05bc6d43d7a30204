"""The Alertmanager configuration ``leadsla generate`` writes: one route per
team the policies file names, never teams it does not, checked by amtool.

amtool comes from Debian's prometheus-alertmanager package; a missing amtool
is a failure, not a skip.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from leadsla.dashboards.alertmanager import alertmanager_config, named_teams
from leadsla.dashboards.render import render
from leadsla.models.policy import load_policies, parse_policies
from leadsla.streams.cli import main
from leadsla.streams.settings import EXAMPLE_POLICIES

ALERTMANAGER = "alertmanager/alertmanager.yml"
EXAMPLE_TEAMS = ("na_east", "na_west", "emea")  # what the file used to route whatever the policies said

# Two teams, named the two ways a policy can name one: the policy's own match
# and an event selector's match (a list names each of its values).
APAC_LATAM = """
policies:
  - name: apac_first_touch
    start: lead.handed_off
    match: {team: apac}
    stop: lead.contact_attempt
    goal: 1h
  - name: latam_first_touch
    start: {type: lead.handed_off, match: {team: [latam, apac]}}
    stop: lead.contact_attempt
    goal: 2h
"""

NO_TEAM = """
policies:
  - name: first_touch
    start: lead.handed_off
    stop: [lead.contact_attempt, lead.connected]
    goal: 1h
"""


def generate(tmp_path: Path, text: str) -> Path:
    """The Alertmanager file ``leadsla generate`` writes for a policies file."""
    policies = tmp_path / "team.policies.yaml"
    policies.write_text(text)
    out = tmp_path / "out"
    assert main(["generate", "--policies", str(policies), "--out", str(out)]) == 0
    return out / ALERTMANAGER


def team_routes(config: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in config["route"]["routes"] if any(m.startswith("team=") for m in r.get("matchers", []))]


def amtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    path = shutil.which("amtool")
    if path is None:
        pytest.fail("amtool is not on PATH: install Debian's prometheus-alertmanager package", pytrace=False)
    return subprocess.run([path, *map(str, args)], capture_output=True, text=True, timeout=60, check=False)


def said(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit status {proc.returncode}\n--- stdout ---\n{proc.stdout}--- stderr ---\n{proc.stderr}"


def test_the_routes_are_the_teams_the_policies_name_and_no_others(tmp_path: Path) -> None:
    path = generate(tmp_path, APAC_LATAM)
    config = yaml.safe_load(path.read_text())
    assert team_routes(config) == [
        {"matchers": ['team="apac"'], "receiver": "team-apac", "group_by": ["alertname", "policy", "rep"]},
        {"matchers": ['team="latam"'], "receiver": "team-latam", "group_by": ["alertname", "policy", "rep"]},
    ]
    receivers = [r["name"] for r in config["receivers"]]
    assert receivers == ["sales-ops", "revops-pager", "leadsla-platform", "marketing-ops", "team-apac", "team-latam"]
    for team in EXAMPLE_TEAMS:
        assert team not in path.read_text()


def test_teams_named_in_any_match_of_the_file_count_once_each() -> None:
    policies = parse_policies("""
defaults:
  match: {team: nordics}
policies:
  - name: first_touch
    start: lead.handed_off
    stop: [lead.contact_attempt, {type: lead.connected, match: {team: dach}}]
    goal: 1h
  - name: benelux_first_touch
    start: lead.handed_off
    stop: lead.contact_attempt
    match: {team: [benelux, dach], region: eu}
    goal: 1h
targets:
  - name: iberia_mqls
    deliver: {type: lead.mql, match: {team: iberia}}
    match: {team: [iberia, ""]}
    goal: 10
""")
    # Sorted, whatever the order in the file; an empty value names no team
    # (its route would take every alert without a team label).
    assert named_teams(policies) == ("benelux", "dach", "iberia", "nordics")


def test_the_example_names_no_team_so_one_default_route_says_how_to_add_team_routes() -> None:
    text = render(load_policies(EXAMPLE_POLICIES), EXAMPLE_POLICIES.name)[ALERTMANAGER]
    config = yaml.safe_load(text)
    assert team_routes(config) == []
    # After the pager's route (which continues), the last route catches what
    # no route above took: a page also reaches sales-ops, as it would a team.
    assert config["route"]["routes"][-2:] == [
        {"matchers": ['severity="critical"'], "receiver": "revops-pager", "continue": True},
        {"receiver": "sales-ops"},
    ]
    assert not [r for r in config["receivers"] if r["name"].startswith("team-")]
    for team in EXAMPLE_TEAMS:  # only the comment's example names one
        assert team not in yaml.safe_dump(config)
    header = text.split("\nglobal:", 1)[0]
    assert "policies.example.yaml names no team" in header
    assert "match: {team: emea}" in header
    assert "matchers: ['team=\"emea\"']" in header
    assert "receiver: team-emea" in header


def test_a_file_that_names_teams_lists_them_in_the_header(tmp_path: Path) -> None:
    header = generate(tmp_path, APAC_LATAM).read_text().split("\nglobal:", 1)[0]
    assert "one route per team team.policies.yaml names in a match: apac, latam" in " ".join(
        line.removeprefix("# ") for line in header.splitlines())


@pytest.mark.parametrize("text", [APAC_LATAM, NO_TEAM], ids=["apac-latam", "no-team"])
def test_amtool_checks_the_generated_file(tmp_path: Path, text: str) -> None:
    proc = amtool("check-config", generate(tmp_path, text))
    assert proc.returncode == 0, said(proc)
    assert "SUCCESS" in proc.stdout, said(proc)


@pytest.mark.parametrize(("text", "labels", "receivers"), [
    (APAC_LATAM, {"alertname": "LeadSlaDeadlineBreached", "severity": "warning", "team": "apac"}, "team-apac"),
    (APAC_LATAM, {"alertname": "LeadSlaErrorBudgetBurn", "severity": "critical", "tier": "page", "team": "latam"},
     "revops-pager,team-latam"),
    # A team the file does not name: sales-ops hears about it, page or not.
    (APAC_LATAM, {"alertname": "LeadSlaDeadlineBreached", "severity": "warning", "team": "emea"}, "sales-ops"),
    (APAC_LATAM, {"alertname": "LeadSlaErrorBudgetBurn", "severity": "critical", "tier": "page", "team": "emea"},
     "revops-pager,sales-ops"),
    (NO_TEAM, {"alertname": "LeadSlaErrorBudgetBurn", "severity": "critical", "tier": "page", "team": "na_east"},
     "revops-pager,sales-ops"),
    (NO_TEAM, {"alertname": "LeadSlaDeadlineBreached", "severity": "warning", "team": "na_east"}, "sales-ops"),
    (NO_TEAM, {"alertname": "LeadSlaTargetDown", "severity": "critical", "job": "leadsla"}, "leadsla-platform"),
])
def test_amtool_routes(tmp_path: Path, text: str, labels: dict[str, str], receivers: str) -> None:
    path = generate(tmp_path, text)
    proc = amtool("config", "routes", "test", f"--config.file={path}", f"--verify.receivers={receivers}",
                  *(f"{k}={v}" for k, v in labels.items()))
    assert proc.returncode == 0, said(proc)


def test_a_team_name_is_quoted_where_it_lands(tmp_path: Path) -> None:
    """Match values are free text: a quote or backslash is escaped in the
    matcher, and the receiver's webhook path is percent-encoded."""
    config = alertmanager_config("http://hooks.example/base/", teams=('sales "west"\\2', "apac"))
    assert team_routes(config)[0]["matchers"] == ['team="sales \\"west\\"\\\\2"']
    hooks = {r["name"]: r["webhook_configs"][0]["url"] for r in config["receivers"]}
    assert hooks['team-sales "west"\\2'] == "http://hooks.example/base/team-sales%20%22west%22%5C2"
    assert hooks["team-apac"] == "http://hooks.example/base/team-apac"
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    proc = amtool("check-config", path)
    assert proc.returncode == 0, said(proc)
