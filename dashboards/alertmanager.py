"""An example Alertmanager configuration for leadsla's alerts: routing by
severity and team (delivery targets to marketing), grouping, and inhibition
of SLA alerts while the pipeline itself is down (a stopped worker decides
nothing, then decides a backlog).

The team routes are the teams the policies file names (``named_teams``); a
file that names none gets no team routes, only the default route, and the
file's header says how to add them (``routing_note``).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from typing import Any

from leadsla.dashboards.alerts import PIPELINE_DOWN, SLA_ALERTS, TARGET_ALERTS, name
from leadsla.models.policy import PolicySet, Selector

PIPELINE_ALERTS = ("TargetDown", "MetricsAbsent", "WorkerNotReady", "ConsumerLagGrowing", "DeadLetters", "PoliciesDiffer")
DEFAULT_RECEIVER = "sales-ops"  # SLA alerts of a team without a route of its own
TEAM_GROUP_BY = ("alertname", "policy", "rep")


def _any(alerts: tuple[str, ...]) -> str:
    return "|".join(name(a) for a in alerts)


def named_teams(policies: PolicySet) -> tuple[str, ...]:
    """The teams a policies file names: every value of ``team`` in a
    ``match:`` of a policy (its own or ``defaults:``'s), of any of its event
    selectors, or of a target or its ``deliver`` selectors; sorted, each once.

    The file has no list of teams of its own, so these are the only teams it
    knows. An empty value is left out: it names no team, and a route for it
    would take every alert without a ``team`` label.
    """
    matches: list[tuple[tuple[str, frozenset[str]], ...]] = []
    selectors: list[Selector] = []
    for p in policies.policies:
        matches.append(p.match)
        selectors.extend(s for sels in p.selectors.values() for s in sels)
    for t in policies.targets:
        matches.append(t.match)
        selectors.extend(t.selectors)
    matches.extend(s.match for s in selectors)
    return tuple(sorted({v for m in matches for key, values in m if key == "team" for v in values if v}))


def _label_value(value: str) -> str:
    """``value`` as a double-quoted Alertmanager matcher value."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def routing_note(teams: Iterable[str], source: str) -> str:
    """Comment lines (each ``# …\\n``) for the head of the generated file:
    which teams have routes, and, when ``source`` names none, how to add one."""
    teams = tuple(teams)
    if teams:
        lines = [
            f"Team routes: one route per team {source} names in a match: {', '.join(teams)}.",
            f"SLA alerts of any other team go to the default receiver, {DEFAULT_RECEIVER}.",
        ]
    else:
        lines = [
            f"Team routes: {source} names no team (no `team` in any `match:`), so",
            f"SLA alerts of every team go to the default receiver, {DEFAULT_RECEIVER}.",
            "To give a team its own receiver, name it in the policies, e.g.",
            "`match: {team: emea}` on a policy or an event selector, and run",
            "`leadsla generate`: each team named gets a route under route.routes,",
            "before the default route,",
            "  - matchers: ['team=\"emea\"']",
            "    receiver: team-emea",
            f"    group_by: [{', '.join(TEAM_GROUP_BY)}]",
            "and a receiver team-emea. A copy of this file kept by hand takes the same.",
        ]
    return "".join(f"# {line}\n" for line in lines)


def alertmanager_config(webhook_base: str, teams: tuple[str, ...] = ()) -> dict[str, Any]:
    """The configuration as plain data, ready for YAML.

    ``webhook_base`` (a URL) + ``/`` + the receiver's name, percent-encoded,
    is where each receiver posts. ``teams`` are the values of the alerts'
    ``team`` label that get a route and a receiver ``team-<team>`` of their
    own (``named_teams`` of the policies, for ``leadsla generate``); none by
    default: every team's alerts then go to ``DEFAULT_RECEIVER``.
    """
    receivers = [DEFAULT_RECEIVER, "revops-pager", "leadsla-platform", "marketing-ops", *(f"team-{t}" for t in teams)]
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": DEFAULT_RECEIVER,
            "group_by": ["alertname", "policy", "team"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": [
                {
                    # The pipeline's own health goes to whoever runs leadsla.
                    "matchers": [f'alertname=~"{_any(PIPELINE_ALERTS)}"'],
                    "receiver": "leadsla-platform",
                    "group_by": ["alertname", "job"],
                },
                {
                    # Delivery targets are marketing's half of the agreement;
                    # they carry a target, no policy or team.
                    "matchers": [f'alertname=~"{_any(TARGET_ALERTS)}"'],
                    "receiver": "marketing-ops",
                    "group_by": ["alertname", "target"],
                },
                {
                    # Pages (fast error-budget burn) wake someone up, and the
                    # team channel hears about it too.
                    "matchers": ['severity="critical"'],
                    "receiver": "revops-pager",
                    "continue": True,
                },
                *(
                    {"matchers": [f"team={_label_value(t)}"], "receiver": f"team-{t}", "group_by": list(TEAM_GROUP_BY)}
                    for t in teams
                ),
                # The default route, last: the root's receiver takes what no
                # route matched, but not an alert the pager's route matched
                # and continued with; this one does, so a page for a team
                # without a route of its own still reaches a channel.
                {"receiver": DEFAULT_RECEIVER},
            ],
        },
        "inhibit_rules": [
            {
                "source_matchers": [f'alertname=~"{_any(PIPELINE_DOWN)}"'],
                "target_matchers": [f'alertname=~"{_any(SLA_ALERTS)}"'],
            },
            {
                # A page for a policy and team makes its ticket redundant.
                "source_matchers": [f'alertname="{name("ErrorBudgetBurn")}"', 'tier="page"'],
                "target_matchers": [f'alertname="{name("ErrorBudgetBurn")}"', 'tier="ticket"'],
                "equal": ["policy", "team"],
            },
            {
                # Late in a period a forecast below the goal says more than
                # being behind the goal line.
                "source_matchers": [f'alertname="{name("TargetForecastMiss")}"'],
                "target_matchers": [f'alertname="{name("TargetBehindPace")}"'],
                "equal": ["target"],
            },
        ],
        "receivers": [
            {
                "name": r,
                "webhook_configs": [
                    {"url": f"{webhook_base.rstrip('/')}/{urllib.parse.quote(r, safe='')}", "send_resolved": True}
                ],
            }
            for r in receivers
        ],
    }
