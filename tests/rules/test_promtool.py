"""The generated Prometheus rules and Alertmanager configuration, checked by
the tools that will load them.

The rules are rendered from the example policies into a temporary folder;
the hand-written promtool unit tests next to this file (``*.test.yml``, with
rule_files relative to that folder) are copied into it and run with
``promtool test rules``. A test file ``NAME.test.yml`` with a
``NAME.policies.yaml`` next to it runs against the rules of that file instead
(alerts generated per depth policy need a file that has one). Every alert
generated from any of these files must have a case where it fires and a case
where it stays quiet, so a new alert without tests fails.

promtool and amtool come from Debian's prometheus and prometheus-alertmanager
packages; a missing tool is a failure, not a skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from leadsla.dashboards.render import render, write
from leadsla.models.policy import load_policies
from leadsla.streams.settings import EXAMPLE_POLICIES

HERE = Path(__file__).parent
TEST_FILES = sorted(HERE.glob("*.test.yml"))
RULES = "prometheus/recording-rules.yml"
ALERTS = "prometheus/alerts.yml"
ALERTMANAGER = "alertmanager/alertmanager.yml"
ANNOTATIONS = {"summary", "description", "runbook_url"}
PACKAGES = {"promtool": "prometheus", "amtool": "prometheus-alertmanager"}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not on PATH: scripts/test installs it with Debian's {PACKAGES[name]} package "
                    f"(apt-get install {PACKAGES[name]})", pytrace=False)
    return path


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit status {proc.returncode}\n--- stdout ---\n{proc.stdout}--- stderr ---\n{proc.stderr}"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def policies_of(test_file: Path) -> Path:
    """The policies file a promtool test file runs against."""
    own = test_file.with_name(test_file.name.removesuffix(".test.yml") + ".policies.yaml")
    return own if own.exists() else EXAMPLE_POLICIES


POLICY_FILES = sorted({policies_of(t) for t in TEST_FILES})


@pytest.fixture(scope="module")
def generated_for(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A policies file -> its generated files, as `leadsla generate` writes them (rendered once)."""
    folders: dict[Path, Path] = {}

    def folder(policies: Path) -> Path:
        if policies not in folders:
            out = tmp_path_factory.mktemp("generated")
            write(render(load_policies(policies), policies.name), out)
            folders[policies] = out
        return folders[policies]

    return folder


@pytest.fixture(scope="module")
def generated(generated_for: Any) -> Path:
    """The example policies' generated files."""
    path: Path = generated_for(EXAMPLE_POLICIES)
    return path


def alert_rules(generated: Path) -> list[dict[str, Any]]:
    return [rule for group in load(generated / ALERTS)["groups"] for rule in group["rules"]]


def test_there_are_test_files() -> None:
    assert {p.name for p in TEST_FILES} >= {"sla.test.yml", "burn.test.yml", "pipeline.test.yml", "targets.test.yml",
                                            "depth.test.yml"}
    assert policies_of(HERE / "depth.test.yml") == HERE / "depth.policies.yaml"


@pytest.mark.parametrize("policies", POLICY_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("rel", [RULES, ALERTS])
def test_promtool_checks_the_rules(generated_for: Any, rel: str, policies: Path) -> None:
    proc = run(tool("promtool"), "check", "rules", generated_for(policies) / rel)
    assert proc.returncode == 0, output(proc)
    assert "SUCCESS" in proc.stdout, output(proc)


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests(generated_for: Any, test_file: Path) -> None:
    promtool = tool("promtool")
    generated = generated_for(policies_of(test_file))
    # rule_files in the test files are relative to the generated folder.
    shutil.copy(test_file, generated / test_file.name)
    proc = run(promtool, "test", "rules", test_file.name, cwd=generated)
    assert proc.returncode == 0, f"promtool test rules {test_file.name}:\n{output(proc)}"


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_test_files_load_the_generated_rules_in_order(generated_for: Any, test_file: Path) -> None:
    """promtool evaluates a timestamp's groups in a random order unless every
    group is listed in group_eval_order (groups left out tie with the first
    one listed): recording rules must come before the alerts that read them."""
    spec = load(test_file)
    assert spec["rule_files"] == [RULES, ALERTS]
    assert spec["evaluation_interval"] == "1m"
    generated = generated_for(policies_of(test_file))
    groups = [g["name"] for rel in (RULES, ALERTS) for g in load(generated / rel)["groups"]]
    assert spec.get("group_eval_order") == groups, (
        f"{test_file.name}: group_eval_order must list every generated group, recording rules first:\n"
        + "\n".join(f"  - {g}" for g in groups)
    )


def test_every_alert_fires_and_stays_quiet_somewhere(generated_for: Any) -> None:
    generated_alerts = [rule for policies in POLICY_FILES for rule in alert_rules(generated_for(policies))]
    names = {rule["alert"] for rule in generated_alerts}
    firing: dict[str, set[str | None]] = {}  # alertname -> tiers seen firing
    quiet: set[str] = set()
    problems = []
    for test_file in TEST_FILES:
        # An alert the test file's own rules do not have would pass a quiet case vacuously.
        names_here = {rule["alert"] for rule in alert_rules(generated_for(policies_of(test_file)))}
        for group in load(test_file)["tests"]:
            for case in group.get("alert_rule_test") or []:
                alert, where = case["alertname"], f"{test_file.name} ({group.get('name')}, {case['eval_time']})"
                if alert not in names_here:
                    problems.append(f"{where}: {alert} is not generated from {policies_of(test_file).name} "
                                    "(a quiet case would pass vacuously)")
                expected = case.get("exp_alerts") or []
                if not expected:
                    quiet.add(alert)
                for exp in expected:
                    firing.setdefault(alert, set()).add(exp.get("exp_labels", {}).get("tier"))
                    if "severity" not in exp.get("exp_labels", {}):
                        problems.append(f"{where}: {alert} expected without its severity label")
                    if set(exp.get("exp_annotations") or {}) != ANNOTATIONS:
                        problems.append(f"{where}: {alert} must expect exactly the annotations {sorted(ANNOTATIONS)}")
    # One rule per policy and tier for the burn-rate alert: one firing case per tier.
    variants = sorted({(rule["alert"], rule["labels"].get("tier") or "") for rule in generated_alerts})
    for alert, tier in variants:
        if (tier or None) not in firing.get(alert, set()):
            problems.append(f"{alert}{f' (tier {tier})' if tier else ''}: no test case where it fires")
    for alert in sorted(names - quiet):
        problems.append(f"{alert}: no test case where it stays quiet (exp_alerts: [])")
    assert not problems, "\n".join(problems)


def test_amtool_checks_the_alertmanager_config(generated: Path) -> None:
    proc = run(tool("amtool"), "check-config", generated / ALERTMANAGER)
    assert proc.returncode == 0, output(proc)
    assert "SUCCESS" in proc.stdout, output(proc)


@pytest.mark.parametrize(("labels", "receivers"), [
    # A page wakes someone up, and the team hears about it. The example names
    # no team, so every team's channel is the default receiver (the team
    # routes of a file that names teams: tests/dashboards/test_alertmanager.py).
    ({"alertname": "LeadSlaErrorBudgetBurn", "severity": "critical", "tier": "page", "policy": "first_touch",
      "team": "emea"}, "revops-pager,sales-ops"),
    ({"alertname": "LeadSlaErrorBudgetBurn", "severity": "warning", "tier": "ticket", "policy": "first_touch",
      "team": "na_east"}, "sales-ops"),
    ({"alertname": "LeadSlaDeadlineBreached", "severity": "warning", "policy": "first_touch", "team": "na_west",
      "rep": "rep-07"}, "sales-ops"),
    # The pipeline's health goes to whoever runs leadsla, critical or not.
    ({"alertname": "LeadSlaTargetDown", "severity": "critical", "job": "leadsla", "instance": "w1:6066"},
     "leadsla-platform"),
    ({"alertname": "LeadSlaDeadLetters", "severity": "warning", "job": "leadsla", "reason": "malformed"},
     "leadsla-platform"),
    ({"alertname": "LeadSlaNoEventsInBusinessHours", "severity": "warning", "job": "leadsla"}, "sales-ops"),
    # Delivery targets are marketing's; depth breaches go where any SLA alert goes.
    ({"alertname": "LeadSlaTargetBehindPace", "severity": "warning", "target": "mql_volume"}, "marketing-ops"),
    ({"alertname": "LeadSlaTargetForecastMiss", "severity": "warning", "target": "mql_volume"}, "marketing-ops"),
    ({"alertname": "LeadSlaDepthBreaches", "severity": "warning", "policy": "follow_up_depth", "team": "emea"},
     "sales-ops"),
])
def test_amtool_routes(generated: Path, labels: dict[str, str], receivers: str) -> None:
    proc = run(tool("amtool"), "config", "routes", "test", f"--config.file={generated / ALERTMANAGER}",
               f"--verify.receivers={receivers}", *(f"{k}={v}" for k, v in labels.items()))
    assert proc.returncode == 0, output(proc)


MATCHER = re.compile(r'^(?P<label>\w+)(?P<op>=~|!~|!=|=)"(?P<value>.*)"$')


def test_inhibitions_name_generated_alerts(generated: Path, generated_for: Any) -> None:
    """Inhibit rules match alerts by name and tier: a renamed alert would
    silently stop inhibiting or being inhibited. (Some alerts exist only for
    files that have, say, a depth policy: any of the test policies files
    counts.)"""
    rules = [rule for policies in POLICY_FILES for rule in alert_rules(generated_for(policies))]
    names = {rule["alert"] for rule in rules}
    tiers = {rule["labels"]["tier"] for rule in rules if "tier" in rule["labels"]}
    config = load(generated / ALERTMANAGER)
    assert config["inhibit_rules"]
    for inhibit in config["inhibit_rules"]:
        for side in ("source_matchers", "target_matchers"):
            for matcher in inhibit[side]:
                m = MATCHER.match(matcher)
                assert m, f"unexpected matcher {matcher!r}"
                values = m["value"].split("|") if m["op"] == "=~" else [m["value"]]
                if m["label"] == "alertname":
                    assert set(values) <= names, f"{matcher}: not generated: {sorted(set(values) - names)}"
                if m["label"] == "tier":
                    assert set(values) <= tiers, f"{matcher}: no such tier"
