"""An example Alertmanager configuration for leadsla's alerts: routing by
severity and team (delivery targets to marketing), grouping, and inhibition
of SLA alerts while the pipeline itself is down (a stopped worker decides
nothing, then decides a backlog)."""

from __future__ import annotations

from typing import Any

from leadsla.dashboards.alerts import PIPELINE_DOWN, SLA_ALERTS, TARGET_ALERTS, name

# Example team routes; replace with your sales teams (the `team` of events).
EXAMPLE_TEAMS = ("na_east", "na_west", "emea")
PIPELINE_ALERTS = ("TargetDown", "MetricsAbsent", "WorkerNotReady", "ConsumerLagGrowing", "DeadLetters", "PoliciesDiffer")


def _any(alerts: tuple[str, ...]) -> str:
    return "|".join(name(a) for a in alerts)


def alertmanager_config(webhook_base: str, teams: tuple[str, ...] = EXAMPLE_TEAMS) -> dict[str, Any]:
    """``webhook_base`` + receiver name is where each receiver posts."""
    receivers = ["sales-ops", "revops-pager", "leadsla-platform", "marketing-ops", *(f"team-{t}" for t in teams)]
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": "sales-ops",
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
                    {"matchers": [f'team="{t}"'], "receiver": f"team-{t}", "group_by": ["alertname", "policy", "rep"]}
                    for t in teams
                ),
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
            {"name": r, "webhook_configs": [{"url": f"{webhook_base.rstrip('/')}/{r}", "send_resolved": True}]}
            for r in receivers
        ],
    }
