"""Marketing's delivery targets (contract §7): the policies file's
``targets:``, and each lead counted once per target and period by its first
delivering event in event time, with its weighted value."""

from __future__ import annotations

import pytest

from leadsla.models.clock import Delivery
from leadsla.models.policy import PolicyError
from tests.models.conftest import MINIMAL_YAML, Lead, ev, pol, ts

CONTRACT = """
targets:
  - name: mql_volume             # [a-z0-9_]+, unique
    deliver: lead.mql            # a type or a list of types (selectors allowed, as in policies)
    goal: 100                    # leads per period
    value:                       # optional: quality weighting (a CEO is worth more than an intern)
      by: persona                # a dimension, or attributes.<name>
      weights: {executive: 100, director: 50, manager: 40}
      default: 10                # a lead with no or another value
    value_goal: 5000             # optional
"""
TARGETS = pol(MINIMAL_YAML + CONTRACT)
NOV = ts("2026-11-01T00:00:00Z")


def test_the_contract_form_parses_with_its_defaults() -> None:
    (t,) = TARGETS.targets
    assert (t.name, t.goal, t.value_goal, t.period, t.timezone, t.pace_margin, t.review_after) == (
        "mql_volume", 100, 5000.0, "month", "UTC", 0.1, 3)
    assert (t.value_by, dict(t.weights), t.value_default) == ("persona", {"executive": 100, "director": 50, "manager": 40}, 10)
    assert TARGETS.targets_for("lead.mql") == (t,) and TARGETS.targets_for("lead.created") == ()
    assert TARGETS.target("mql_volume") is t
    with pytest.raises(KeyError):
        TARGETS.target("nope")


def test_a_file_of_targets_alone_is_a_policies_file() -> None:
    ps = pol(CONTRACT)
    assert ps.policies == () and [t.name for t in ps.targets] == ["mql_volume"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("    gaol: 3\n", "p.yaml:11:5: targets[0].gaol: unknown key 'gaol'; did you mean 'goal'?"),
        ("    period: year\n", "p.yaml:11:5: targets[0].period: must be 'month', 'week' or 'quarter' (got 'year')"),
        ("    timezone: Mars/Olympus\n", "p.yaml:11:5: targets[0].timezone: unknown IANA time zone 'Mars/Olympus'"),
        ("    pace_margin: 1.5\n", "p.yaml:11:5: targets[0].pace_margin: must be less than 1: a share of 1, such as 0.9 for 90% (got 1.5)"),
    ],
)
def test_target_errors_name_the_place(extra: str, message: str) -> None:
    with pytest.raises(PolicyError) as err:
        pol(CONTRACT + extra)
    assert str(err.value) == message


def test_a_target_and_a_policy_cannot_share_a_name() -> None:
    with pytest.raises(PolicyError, match="duplicate name 'first_touch': policies and targets share one namespace"):
        pol(MINIMAL_YAML + "targets:\n  - {name: first_touch, deliver: lead.mql, goal: 5}\n")


def test_a_value_goal_needs_a_value() -> None:
    with pytest.raises(PolicyError, match="value_goal needs value"):
        pol("targets:\n  - {name: t, deliver: lead.mql, goal: 5, value_goal: 10}\n")


def _deliveries(lead: Lead) -> list[Delivery]:
    return [d for tr in lead.transitions for d in tr.deliveries]


def test_a_lead_counts_once_per_period_by_its_first_delivering_event() -> None:
    lead = Lead(TARGETS)
    lead.apply(ev("lead.mql", NOV + 86_400_000_000 * 4, "m1", persona="director"), NOV)
    lead.apply(ev("lead.mql", NOV + 86_400_000_000 * 9, "m2", persona="executive"), NOV)  # the same period
    lead.apply(ev("lead.mql", NOV + 86_400_000_000 * 9, "m2", persona="executive"), NOV)  # a duplicate
    assert _deliveries(lead) == [Delivery("mql_volume", "2026-11", NOV, 5, 1, 50.0)]
    lead.apply(ev("lead.mql", ts("2026-12-02T10:00:00Z"), "m3"), NOV)  # the next period: counts again
    assert _deliveries(lead)[-1] == Delivery("mql_volume", "2026-12", ts("2026-12-01T00:00:00Z"), 2, 1, 10.0)


def test_an_earlier_delivering_event_arriving_late_moves_the_count() -> None:
    lead = Lead(TARGETS)
    lead.apply(ev("lead.mql", NOV + 86_400_000_000 * 9, "late", persona="manager"), NOV)
    lead.apply(ev("lead.mql", NOV + 86_400_000_000 * 2, "early", persona="executive"), NOV)
    assert _deliveries(lead) == [
        Delivery("mql_volume", "2026-11", NOV, 10, 1, 40.0),
        Delivery("mql_volume", "2026-11", NOV, 10, -1, -40.0),
        Delivery("mql_volume", "2026-11", NOV, 3, 1, 100.0),
    ]
    assert sum(d.count for d in _deliveries(lead)) == 1


def test_per_segment_targets_count_only_matching_leads() -> None:
    ps = pol("""
targets:
  - name: enterprise_mqls
    deliver: lead.mql
    goal: 20
    match: {segment: enterprise}
    period: week
    timezone: Europe/Berlin
""")
    lead = Lead(ps)
    lead.apply(ev("lead.mql", ts("2026-11-30T08:00:00Z"), "a", segment="smb"), NOV)
    lead.apply(ev("lead.mql", ts("2026-11-30T09:00:00Z"), "b", segment="enterprise"), NOV)
    assert _deliveries(lead) == [Delivery("enterprise_mqls", "2026-W49", ts("2026-11-29T23:00:00Z"), 1, 1, 0.0)]
