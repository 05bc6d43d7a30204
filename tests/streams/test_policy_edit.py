"""leadsla calculate --write-target: the goal written into a policies file,
comments and layout kept; a file that would not load is never written."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadsla.models.policy import load_policies
from leadsla.streams.cli import main
from leadsla.streams.policy_edit import EditError, goal_for_period, write_target_goal

FILE = """\
# our SLA
policies:
  - name: first_touch
    start: lead.handed_off
    stop: lead.contact_attempt
    goal: 1h

targets:
  # marketing's promise
  - name: mql_volume
    deliver: lead.mql
    goal: 80        # last month's figure
    value: {by: persona, weights: {executive: 100}, default: 10}
"""
ARGS = ["calculate", "--quota", "5000", "--marketing-share", "1", "--deal-size", "100", "--close-rate", "0.5"]


def test_an_existing_target_gets_its_goal_and_keeps_everything_else(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(FILE)
    assert main([*ARGS, "--write-target", "mql_volume", "--policies", str(path)]) == 0
    assert path.read_text() == FILE.replace("goal: 80 ", "goal: 100 ")  # only the value changes
    assert load_policies(path).target("mql_volume").goal == 100
    assert "updated target mql_volume: goal 100" in capsys.readouterr().err


def test_a_new_target_is_added_to_the_list(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(FILE)
    assert write_target_goal(path, "enterprise_mqls", 20) == "added"
    ps = load_policies(path)
    assert [(t.name, t.goal) for t in ps.targets] == [("mql_volume", 80), ("enterprise_mqls", 20)]
    assert "# last month's figure" in path.read_text() and path.read_text().startswith("# our SLA\n")


def test_a_file_without_targets_gets_a_targets_section(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(FILE.split("\ntargets:")[0] + "\n")
    assert write_target_goal(path, "mql_volume", 100) == "added"
    assert [(t.name, t.goal) for t in load_policies(path).targets] == [("mql_volume", 100)]


def test_a_flow_style_list_or_a_broken_file_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    flow = FILE.split("\ntargets:")[0] + "\ntargets: [{name: t, deliver: lead.mql, goal: 5}]\n"
    path.write_text(flow)
    with pytest.raises(EditError, match="block list"):
        write_target_goal(path, "t", 9)
    assert path.read_text() == flow
    broken = FILE.replace("goal: 1h", "goal: 1:30")
    path.write_text(broken)
    with pytest.raises(EditError, match="does not load as it is"):
        write_target_goal(path, "mql_volume", 9)
    assert path.read_text() == broken


def test_write_target_needs_a_policies_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*ARGS, "--write-target", "mql_volume"]) == 2
    assert "--write-target needs --policies FILE" in capsys.readouterr().err


def test_a_file_that_is_not_utf8_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_bytes(b"policies: \xff\n")
    with pytest.raises(EditError, match="not UTF-8 text"):
        write_target_goal(path, "mql_volume", 9)


def _with_period(period: str) -> str:
    return FILE.replace("    goal: 80 ", f"    period: {period}\n    goal: 80 ")


@pytest.mark.parametrize(("period", "days", "goal", "note"), [
    # 100 leads needed in the calculator's 30 days (3.33 a day): a week's share, rounded up.
    ("week", "30", 24, " (100 leads in 30 days x 7 days of a week, rounded up)"),
    ("week", "7", 100, ""),
    ("month", "30", 100, ""),                  # the calculator's period is a month (28 to 31 days)
    ("month", "31", 100, ""),
    ("month", "7", 435, " (100 leads in 7 days x 30.4375 days of an average month, rounded up)"),
    ("quarter", "30", 305, " (100 leads in 30 days x 91.3125 days of an average quarter, rounded up)"),
    ("quarter", "91", 100, ""),
])
def test_the_goal_written_is_for_the_targets_period(period: str, days: str, goal: int, note: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(_with_period(period))
    assert main([*ARGS, "--days", days, "--write-target", "mql_volume", "--policies", str(path)]) == 0
    target = load_policies(path).target("mql_volume")
    assert (target.period, target.goal) == (period, goal)
    err = capsys.readouterr().err
    assert err == f"updated target mql_volume: goal {goal} leads per {period}{note} in {path}\n"


def test_a_new_target_is_monthly() -> None:
    assert goal_for_period(100, 30, "month") == (100, "")
    assert goal_for_period(1, 30, "week") == (1, " (1 lead in 30 days x 7 days of a week, rounded up)")
    with pytest.raises(ValueError, match="period"):
        goal_for_period(100, 30, "fortnight")


def test_the_goal_for_a_weekly_target_when_the_target_is_added(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(FILE.split("\ntargets:")[0] + "\n")
    assert main([*ARGS, "--write-target", "fresh", "--policies", str(path)]) == 0
    assert [(t.name, t.period, t.goal) for t in load_policies(path).targets] == [("fresh", "month", 100)]
    assert capsys.readouterr().err == f"added target fresh: goal 100 leads per month in {path}\n"
