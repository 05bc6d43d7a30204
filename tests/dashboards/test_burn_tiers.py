"""Burn-rate tiers for lax objectives: a factor whose threshold an error
ratio cannot exceed is capped so the tier still fires at a 100 % error ratio,
the generated alert says so, and the CLI warns about it."""

from __future__ import annotations

import operator
from pathlib import Path

import pytest
import yaml

from leadsla.dashboards.alerts import alert_rules, burn_tier_warnings
from leadsla.dashboards.slo import BURN_TIERS, RUNBOOK_BASE, BurnTier, effective_tiers, error_budget
from leadsla.models.policy import PolicySet, load_policies
from leadsla.streams.cli import main

COMPARE = {">": operator.gt, ">=": operator.ge}


@pytest.mark.parametrize(("objective", "factors", "capped"), [
    # The workbook's objectives: every threshold well under 100 %.
    (0.999, (14.4, 6, 3, 1), (False, False, False, False)),
    (0.95, (14.4, 6, 3, 1), (False, False, False, False)),
    # 14.4 x 10 % = 144 %: capped at 1 / 10 %.
    (0.9, (10, 6, 3, 1), (True, False, False, False)),
    # 14.4 x 20 % and 6 x 20 % = 120 %: both page tiers capped at 5.
    (0.8, (5, 5, 3, 1), (True, True, False, False)),
    # Only the 1x tier (50 %) is below 100 %.
    (0.5, (2, 2, 2, 1), (True, True, True, False)),
])
def test_effective_tiers(objective: float, factors: tuple[float, ...], capped: tuple[bool, ...]) -> None:
    tiers = effective_tiers(objective)
    assert [e.tier for e in tiers] == list(BURN_TIERS)
    assert [e.nominal for e in tiers] == [t.factor for t in BURN_TIERS]
    assert [e.factor for e in tiers] == pytest.approx(factors)
    assert [e.capped for e in tiers] == list(capped)
    budget = error_budget(objective)
    for e in tiers:
        if e.capped:
            assert (e.op, e.threshold) == (">=", 1.0)
        else:
            assert e.op == ">"
            assert e.threshold == pytest.approx(e.nominal * budget)
        # Every tier fires at a 100 % error ratio, and none at its budget rate.
        assert COMPARE[e.op](1.0, e.threshold), e
        assert not COMPARE[e.op](budget, e.threshold), e


def test_a_capped_tier_fires_only_when_all_clocks_breached() -> None:
    page = effective_tiers(0.9)[0]
    fires = COMPARE[page.op]
    assert fires(1.0, page.threshold)
    assert not fires(120 / 121, page.threshold)


def test_objective_one_has_no_budget_and_caps_nothing() -> None:
    tiers = effective_tiers(1.0)
    assert [(e.factor, e.capped, e.threshold, e.op) for e in tiers] == [
        (t.factor, False, 0.0, ">") for t in BURN_TIERS]


def test_effective_tiers_take_other_tiers() -> None:
    (e,) = effective_tiers(0.99, [BurnTier("page", "critical", "5m", "1h", 200.0)])
    assert (e.factor, e.capped, e.threshold) == (100.0, True, 1.0)


def policies(tmp_path: Path, objective: float) -> Path:
    path = tmp_path / "lax.yaml"
    path.write_text(
        "policies:\n"
        "  - name: first_touch\n"
        "    start: lead.handed_off\n"
        "    stop: lead.contact_attempt\n"
        "    goal: 1h\n"
        f"    objective: {objective}\n"
    )
    return path


def load(tmp_path: Path, objective: float) -> PolicySet:
    return load_policies(policies(tmp_path, objective))


def burn_rules(ps: PolicySet) -> dict[str, dict]:
    alerts = alert_rules(ps, RUNBOOK_BASE)
    return {r["labels"]["tier"]: r for g in alerts["groups"] for r in g["rules"] if r["alert"] == "LeadSlaErrorBudgetBurn"}


def test_generated_alert_with_two_capped_tiers(tmp_path: Path) -> None:
    rules = burn_rules(load(tmp_path, 0.8))
    page, ticket = rules["page"], rules["ticket"]
    # Names and labels as for any objective.
    assert page["alert"] == ticket["alert"] == "LeadSlaErrorBudgetBurn"
    assert page["labels"] == {"severity": "critical", "policy": "first_touch", "tier": "page"}
    assert page["expr"].count(" >= 1.0 ") == 4  # short and long window of both page clauses
    assert "> 1.2" not in page["expr"] and "> 2.88" not in page["expr"]
    description = page["annotations"]["description"]
    assert "(page: 5m/1h x5, 30m/6h x5; at least 10 decisions)." in description
    assert ("Burn factors capped from 14.4 to 5 on 5m/1h and from 6 to 5 on 30m/6h because objective 0.8 "
            "leaves an error budget of 20 %: a capped tier fires when every decided clock in both its windows "
            "breached.") in description
    assert "> 0.6 " in ticket["expr"] and "capped" not in ticket["annotations"]["description"]


def test_warnings_name_policy_tier_factor_objective_and_the_cap(tmp_path: Path) -> None:
    assert burn_tier_warnings(load(tmp_path, 0.95)) == []
    assert burn_tier_warnings(load(tmp_path, 0.8)) == [
        "warning: policy first_touch, page tier 5m/1h: burn factor 14.4 cannot fire with objective 0.8 "
        "(error budget 20 %, threshold 288 % of clocks breached); capped to 5, so it fires when every decided "
        "clock in both windows breached",
        "warning: policy first_touch, page tier 30m/6h: burn factor 6 cannot fire with objective 0.8 "
        "(error budget 20 %, threshold 120 % of clocks breached); capped to 5, so it fires when every decided "
        "clock in both windows breached",
    ]


@pytest.mark.parametrize("command", [["policies"], ["generate", "--policies"]])
def test_cli_warns_on_stderr_and_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          command: list[str]) -> None:
    path = policies(tmp_path, 0.5)
    extra = ["--out", str(tmp_path / "out")] if command[0] == "generate" else []
    assert main([*command, str(path), *extra]) == 0
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert [line.split(":", 3)[2] for line in lines] == [
        " policy first_touch, page tier 5m/1h", " policy first_touch, page tier 30m/6h",
        " policy first_touch, ticket tier 2h/1d"]
    assert all(line.startswith("leadsla: warning: ") for line in lines)
    assert "capped to 2" in lines[2]
    assert "warning" not in out


def test_generate_check_warns_and_keeps_its_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, out = policies(tmp_path, 0.9), tmp_path / "out"
    assert main(["generate", "--policies", str(path), "--out", str(out)]) == 0
    assert main(["generate", "--policies", str(path), "--out", str(out), "--check"]) == 0
    assert capsys.readouterr().err.count("burn factor 14.4 cannot fire with objective 0.9") == 2
    (out / "prometheus/alerts.yml").write_text("# edited by hand\n")
    assert main(["generate", "--policies", str(path), "--out", str(out), "--check"]) == 1
    # The capped rule is what --check compares against.
    assert main(["generate", "--policies", str(path), "--out", str(out)]) == 0
    assert ">= 1.0" in yaml.safe_load((out / "prometheus/alerts.yml").read_text())["groups"][1]["rules"][0]["expr"]


def test_alert_texts_give_a_goal_in_business_days_as_written() -> None:
    from leadsla.dashboards.alerts import burn_group
    from leadsla.models.policy import parse_policies

    ps = parse_policies(
        "calendars:\n  office: {hours: {mon-fri: '09:00-17:00'}}\n"
        "policies:\n  - {name: disposition, start: lead.handed_off, stop: lead.qualified, goal: 2bd, calendar: office}\n")
    (rule, *_) = burn_group(ps, "http://runbooks.example/")["rules"]
    assert "Policy disposition (goal 2bd, objective 0.95)" in rule["annotations"]["description"]
