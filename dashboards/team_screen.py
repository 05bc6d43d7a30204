"""The team screen: a few big numbers a sales floor reads from across the room
(compliance today, clocks running and at risk, breaches), the follow-up speed
against its goal, compliance against the objective, and the accountability
ledger: points per team and strikes per level."""

from __future__ import annotations

from typing import Any

from leadsla.dashboards import panels as p
from leadsla.models.policy import PolicySet

UID = "leadsla-team-screen"
TITLE = "leadsla · Team screen"


def compliance_today(policies: PolicySet) -> Any:
    panel = p.stat_panel(
        "Compliance today",
        "Share of SLA clocks decided in the last 24 hours that met their goal, per policy, all teams "
        "(policy:leadsla_sla_compliance:ratio_rate1d, the series the burn-rate alerts read). Green at the "
        "policy's objective, orange within twice its error budget below, red under that. "
        "Your team's own number is in \"Compliance today by team\".",
        [p.query(f"policy:leadsla_sla_compliance:ratio_rate1d{p.POLICY}", p.BY_POLICY, instant=True)],
        p.RATIO, p.compliance_steps(p.strictest_objective(policies)), decimals=1,
    )
    return p.per_policy_thresholds(panel, policies)


def open_clocks() -> Any:
    return p.stat_panel(
        "Leads waiting now",
        "SLA clocks running right now (handed off, not yet stopped or decided), per policy, for the selected "
        "teams (policy_team:leadsla_sla_open_clocks:sum).",
        [p.query(f"sum by (policy) (policy_team:leadsla_sla_open_clocks:sum{p.POLICY_TEAM})", p.BY_POLICY,
                 instant=True)],
        p.COUNT, p.NEUTRAL, decimals=0,
    )


def at_risk_clocks() -> Any:
    return p.stat_panel(
        "At risk now",
        "Running clocks past their policy's at-risk share of the goal: follow these leads up first. Per policy, "
        "selected teams (policy_team:leadsla_sla_at_risk_clocks:sum).",
        [p.query(f"sum by (policy) (policy_team:leadsla_sla_at_risk_clocks:sum{p.POLICY_TEAM})", p.BY_POLICY,
                 instant=True)],
        p.COUNT, p.ANY_IS_BAD, decimals=0,
    )


def breaches_24h() -> Any:
    return p.stat_panel(
        "Breaches in the last 24 h",
        "Clocks that passed their deadline in the last 24 hours, per policy, selected teams "
        "(policy_team:leadsla_sla_breaches:increase1d). The lead ids are in the sla-outcomes topic.",
        [p.query(f"sum by (policy) (policy_team:leadsla_sla_breaches:increase1d{p.POLICY_TEAM})", p.BY_POLICY,
                 instant=True)],
        p.COUNT, p.ANY_IS_BAD, decimals=0,
    )


def compliance_by_team(policies: PolicySet) -> Any:
    panel = p.bargauge_panel(
        "Compliance today by team",
        "Share of clocks decided in the last 24 hours that met their goal, per policy and team "
        "(policy_team:leadsla_sla_compliance:ratio_rate1d). Each bar is coloured by its policy's objective. "
        "A team with no decided clock today shows no bar.",
        [p.query(f"policy_team:leadsla_sla_compliance:ratio_rate1d{p.POLICY_TEAM}", p.BY_POLICY_TEAM,
                 instant=True)],
        p.RATIO, p.compliance_steps(p.strictest_objective(policies)), 0, 1,
    )
    return p.per_policy_thresholds(panel, policies)


def error_budget_remaining() -> Any:
    return p.gauge_panel(
        "Error budget left this month",
        "Share of the 30-day error budget not yet spent, per policy "
        "(policy:leadsla_sla_error_budget_remaining:ratio30d): 100 % means no breach, 0 % means the breaches "
        "allowed by the objective are used up; below 0 the objective is missed for the period.",
        [p.query(f"policy:leadsla_sla_error_budget_remaining:ratio30d{p.POLICY}", p.BY_POLICY, instant=True)],
        p.RATIO, p.BUDGET_STEPS, 0, 1,
    )


def followup_speed() -> Any:
    return p.timeseries_panel(
        "Follow-up speed vs goal",
        "How long clocks ran before they were stopped (SLA time: business hours, minus pauses), 90th and 50th "
        "percentile over the last hour per policy and team (policy_team:leadsla_sla_elapsed_seconds:p90_rate1h, "
        ":p50_rate1h). The dashed line is each policy's goal (policy:leadsla_sla_goal:seconds): p90 above it "
        "means more than one lead in ten is late. Select one policy to compare like with like.",
        [
            p.query(f"policy_team:leadsla_sla_elapsed_seconds:p90_rate1h{p.POLICY_TEAM}", "p90 " + p.BY_POLICY_TEAM,
                    ref="A"),
            p.query(f"policy_team:leadsla_sla_elapsed_seconds:p50_rate1h{p.POLICY_TEAM}", "p50 " + p.BY_POLICY_TEAM,
                    ref="B"),
            p.query(f"policy:leadsla_sla_goal:seconds{p.POLICY}", "goal " + p.BY_POLICY, ref="C"),
        ],
        p.SECONDS, min_val=0, dashed=["C"],
    )


def compliance_vs_objective() -> Any:
    return p.timeseries_panel(
        "Compliance over time vs objective",
        "Share of the clocks decided in the trailing 24 hours that met their goal, per policy "
        "(policy:leadsla_sla_compliance:ratio_rate1d). The dashed line is the policy's objective "
        "(policy:leadsla_sla_objective:ratio): below it, the error budget is burning faster than planned.",
        [
            p.query(f"policy:leadsla_sla_compliance:ratio_rate1d{p.POLICY}", p.BY_POLICY, ref="A"),
            p.query(f"policy:leadsla_sla_objective:ratio{p.POLICY}", "objective " + p.BY_POLICY, ref="B"),
        ],
        p.RATIO, max_val=1, dashed=["B"],
    )


def leaderboard() -> Any:
    return p.bargauge_panel(
        "Leaderboard: points",
        "Points each team earned for periods it met (team:leadsla_team_points:sum): a policy's points go to "
        "the team whose level was met, a target's to marketing. A period with fewer decisions than the "
        "policy's min_decisions earns none. Periods are judged once, after they end (see sla-periods).",
        [p.query(f"sort_desc(team:leadsla_team_points:sum{p.TEAM})", p.BY_TEAM, instant=True)],
        p.COUNT, p.NEUTRAL, 0, None, decimals=0,
    )


def strikes(policies: PolicySet) -> Any:
    review = max([p_.review_after for p_ in policies.policies] + [t.review_after for t in policies.targets], default=3)
    return p.bargauge_panel(
        "Strikes: periods missed in a row",
        "Each judged level's consecutive missed periods (level:leadsla_period_strikes:max): a policy per "
        "team, or a target. Orange from the first miss; red at the level's review_after (here the file's "
        f"largest, {review}), when the agreement is due for review and LeadSlaAgreementUnderReview fires. "
        "A met period sets it back to 0.",
        [p.query(f"sort_desc(level:leadsla_period_strikes:max{p.TEAM})", "{{name}} · {{team}}", instant=True)],
        p.COUNT, ((None, "green"), (1.0, "orange"), (float(review), "red")), 0, float(review), decimals=0,
    )


def dashboard(policies: PolicySet) -> dict[str, Any]:
    rows = [
        p.Row(7, [(compliance_today(policies), 9), (open_clocks(), 5), (at_risk_clocks(), 5), (breaches_24h(), 5)]),
        p.Row(8, [(compliance_by_team(policies), 14), (error_budget_remaining(), 10)]),
        p.Row(10, [(followup_speed(), 12), (compliance_vs_objective(), 12)]),
        p.Row(8, [(leaderboard(), 12), (strikes(policies), 12)]),
    ]
    return p.board(
        UID, TITLE,
        "The sales side of the lead handoff SLA for a room display: compliance today, leads waiting and at "
        "risk, breaches, speed against the goal. Generated by `leadsla generate` from the policies file.",
        [p.datasource_variable(), p.policy_variable(), p.team_variable()],
        rows, time_from="now-24h", refresh="1m",
    )
