"""Sales follow-up: what sales promised in the SLA, in detail — speed per team
against the goal, breaches by rep, follow-up depth, disposition and compliance
over every window, and how fast the error budget burns."""

from __future__ import annotations

from typing import Any

from leadsla.dashboards import panels as p
from leadsla.dashboards.team_screen import followup_speed

UID = "leadsla-sales-followup"
TITLE = "leadsla · Sales follow-up"

WINDOWS = ("1h", "1d", "3d", "30d")  # compliance windows shown side by side


# --- speed ---------------------------------------------------------------------
# SLA time against the goal is the team screen's "Follow-up speed vs goal" panel.

def wall_clock_latency_by_team() -> Any:
    return p.timeseries_panel(
        "Wall-clock time to first follow-up by team",
        "Wall-clock time from the handoff to the first contact attempt, 90th and 50th percentile over the last "
        "hour and day per team, for every lead regardless of policy "
        "(team:leadsla_followup_latency_seconds:p90_rate1h, …). Nights and weekends count here, so it is not "
        "comparable with a goal in business hours; it shows what the prospect experiences.",
        [
            p.query(f"team:leadsla_followup_latency_seconds:p90_rate1h{p.TEAM}", "p90 1h " + p.BY_TEAM, ref="A"),
            p.query(f"team:leadsla_followup_latency_seconds:p50_rate1h{p.TEAM}", "p50 1h " + p.BY_TEAM, ref="B"),
            p.query(f"team:leadsla_followup_latency_seconds:p90_rate1d{p.TEAM}", "p90 1d " + p.BY_TEAM, ref="C"),
            p.query(f"team:leadsla_followup_latency_seconds:p50_rate1d{p.TEAM}", "p50 1d " + p.BY_TEAM, ref="D"),
        ],
        p.SECONDS, min_val=0,
    )


def speed_table() -> Any:
    rule = "policy_team:leadsla_sla_elapsed_seconds"
    return p.table_panel(
        "Speed per team: percentiles over 1 h and 1 d",
        "Elapsed SLA time of stopped clocks per policy and team: 50th and 90th percentile over the last hour and "
        f"the last day ({rule}:p50_rate1h … :p90_rate1d), and the last day's 90th percentile as a share of the "
        "policy's goal (over 100 %: more than one lead in ten was late).",
        ["policy", "team"],
        [
            p.Column("p50 1 h", f"{rule}:p50_rate1h{p.POLICY_TEAM}", p.SECONDS),
            p.Column("p90 1 h", f"{rule}:p90_rate1h{p.POLICY_TEAM}", p.SECONDS),
            p.Column("p50 1 d", f"{rule}:p50_rate1d{p.POLICY_TEAM}", p.SECONDS),
            p.Column("p90 1 d", f"{rule}:p90_rate1d{p.POLICY_TEAM}", p.SECONDS),
            p.Column("p90 1 d / goal",
                     f"{rule}:p90_rate1d{p.POLICY_TEAM} / on (policy) group_left () "
                     f"policy:leadsla_sla_goal:seconds{p.POLICY}", p.RATIO, 0),
        ],
        sort_by="p90 1 d / goal",
    )


# --- breaches by rep -------------------------------------------------------------

def breaches_by_rep() -> Any:
    day = f"policy_team_rep:leadsla_sla_breaches:increase1d{p.POLICY_TEAM}"
    return p.table_panel(
        "Reps with breaches: last 24 h and last 10 min",
        "Reps with breached clocks in the last 24 hours (policy_team_rep:leadsla_sla_breaches:increase1d) and "
        "in the last 10 minutes (…:increase10m, the window of the DeadlineBreached alert). Reps are CRM ids. "
        "The breached leads are in the sla-outcomes topic.",
        ["policy", "team", "rep"],
        [
            p.Column("Breaches 24 h", f"{day} > 0", p.COUNT, 0),
            p.Column("Breaches 10 min",
                     f"policy_team_rep:leadsla_sla_breaches:increase10m{p.POLICY_TEAM}"
                     f" and on (policy, team, rep) ({day} > 0)", p.COUNT, 0),
        ],
        sort_by="Breaches 24 h",
    )


def corrections_24h() -> Any:
    return p.stat_panel(
        "Breaches later contradicted (24 h)",
        "Follow-ups that arrived after their clock was declared breached but say they happened before the "
        "deadline (policy:leadsla_sla_corrections:increase1d). The breach stands; many of these point at a "
        "slow CRM sync rather than a slow rep.",
        [p.query(f"policy:leadsla_sla_corrections:increase1d{p.POLICY}", p.BY_POLICY, instant=True)],
        p.COUNT, p.ANY_IS_BAD, decimals=0,
    )


# --- depth -------------------------------------------------------------------

def attempts_per_handoff() -> Any:
    return p.timeseries_panel(
        "Follow-up attempts per handoff (trailing 24 h)",
        "Contact attempts and connects per lead handed off, per team, over the trailing day "
        "(team:leadsla_followup_attempts_per_handoff:ratio1d): the depth of follow-up.",
        [p.query(f"team:leadsla_followup_attempts_per_handoff:ratio1d{p.TEAM}", p.BY_TEAM)],
        p.COUNT, min_val=0,
    )


def depth_table() -> Any:
    return p.table_panel(
        "Handoffs and follow-up attempts per team (last 24 h)",
        "Leads handed off (team:leadsla_handoffs:increase1d), contact attempts and connects "
        "(team:leadsla_followup_attempts:increase1d) and attempts per handoff "
        "(team:leadsla_followup_attempts_per_handoff:ratio1d) per team over the last day.",
        ["team"],
        [
            p.Column("Handoffs", f"team:leadsla_handoffs:increase1d{p.TEAM}", p.COUNT, 0),
            p.Column("Attempts", f"team:leadsla_followup_attempts:increase1d{p.TEAM}", p.COUNT, 0),
            p.Column("Attempts per handoff", f"team:leadsla_followup_attempts_per_handoff:ratio1d{p.TEAM}",
                     p.COUNT, 2),
        ],
        sort_by="Handoffs",
    )


# --- disposition and compliance ------------------------------------------------

def compliance_by_policy() -> Any:
    return p.table_panel(
        "Compliance by policy: 1 h, 1 d, 3 d, 30 d",
        "Share of decided clocks that met their goal per policy over each window "
        "(policy:leadsla_sla_compliance:ratio_rate1h … :ratio_rate30d) next to the objective "
        "(policy:leadsla_sla_objective:ratio). Select the disposition policies in Policy to see how fast "
        "leads are qualified, disqualified or recycled.",
        ["policy"],
        [
            *(p.Column(w, f"policy:leadsla_sla_compliance:ratio_rate{w}{p.POLICY}", p.RATIO, 1) for w in WINDOWS),
            p.Column("objective", f"policy:leadsla_sla_objective:ratio{p.POLICY}", p.RATIO, 1),
        ],
    )


def compliance_by_team() -> Any:
    return p.table_panel(
        "Compliance by team: 1 h, 1 d, 3 d, 30 d",
        "Share of decided clocks that met their goal per policy and team over each window "
        "(policy_team:leadsla_sla_compliance:ratio_rate1h … :ratio_rate30d). Empty where the team decided no "
        "clock in the window.",
        ["policy", "team"],
        [p.Column(w, f"policy_team:leadsla_sla_compliance:ratio_rate{w}{p.POLICY_TEAM}", p.RATIO, 1)
         for w in WINDOWS],
    )


# --- error budget -------------------------------------------------------------------

def burn_rate() -> Any:
    return p.timeseries_panel(
        "Error budget burn rate by team (last hour)",
        "How many times faster than the objective allows each team burns its policy's error budget, over the "
        "last hour (policy_team:leadsla_sla_burn_rate:ratio1h). 1 spends exactly the budget over 30 days; the "
        f"dashed lines are the factors of the burn-rate alert tiers ({p.BURN_FACTORS}).",
        [p.query(f"policy_team:leadsla_sla_burn_rate:ratio1h{p.POLICY_TEAM}", p.BY_POLICY_TEAM)],
        p.MULTIPLE, min_val=0, steps=p.BURN_STEPS,
    )


def dashboard() -> dict[str, Any]:
    rows = [
        p.Row(9, [(followup_speed(), 12), (wall_clock_latency_by_team(), 12)], title="Speed"),
        p.Row(8, [(speed_table(), 24)]),
        p.Row(9, [(breaches_by_rep(), 18), (corrections_24h(), 6)], title="Breaches by rep"),
        p.Row(8, [(attempts_per_handoff(), 12), (depth_table(), 12)], title="Depth"),
        p.Row(8, [(compliance_by_policy(), 10), (compliance_by_team(), 14)], title="Disposition and compliance"),
        p.Row(8, [(burn_rate(), 24)], title="Error budget"),
    ]
    return p.board(
        UID, TITLE,
        "Sales follow-up against the SLA: speed per team against the goal, breaches by rep, follow-up depth, "
        "compliance over every window and the error budget burn. Generated by `leadsla generate` from the "
        "policies file.",
        [p.datasource_variable(), p.policy_variable(), p.team_variable()],
        rows, time_from="now-7d", refresh="5m",
    )
