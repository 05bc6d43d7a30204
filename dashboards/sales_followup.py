"""Sales follow-up: what sales promised in the SLA, in detail — speed per team
against the goal, breaches by rep, follow-up depth (attempts per handoff, and
the depth policies' attempts against min_attempts), disposition and
compliance over every window, and how fast the error budget burns."""

from __future__ import annotations

from typing import Any

from leadsla.dashboards import panels as p
from leadsla.dashboards.slo import DEPTH_BREACHES_FOR, DEPTH_WINDOW
from leadsla.dashboards.team_screen import followup_speed
from leadsla.models.policy import PolicySet

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


# --- depth policies ------------------------------------------------------------------
# The attempts histogram holds depth policies only, and workers create it for
# each of them at start: joining on its count picks the depth policies out of
# the per-policy series.

DEPTH_COUNT = "policy:leadsla_followup_depth_attempts_count:increase1d"
IS_DEPTH = f"and on (policy) {DEPTH_COUNT}{p.POLICY}"
MIN_ATTEMPTS = "policy:leadsla_followup_min_attempts:count"


def depth_attempts(policies: PolicySet) -> Any:
    """Attempts made on depth leads not reached, against each policy's min_attempts."""
    rule = "policy:leadsla_followup_depth_attempts"
    queries = [
        p.query(f"{rule}:p50_rate1d{p.POLICY}", "p50 " + p.BY_POLICY, ref="A"),
        p.query(f"{rule}:p90_rate1d{p.POLICY}", "p90 " + p.BY_POLICY, ref="B"),
        p.query(f"{rule}:mean_rate1d{p.POLICY}", "mean " + p.BY_POLICY, ref="C"),
    ]
    dashed = []
    # min_attempts comes from the policies file; there is no line to draw for
    # a file without depth policies.
    if any(q.is_depth for q in policies.policies):
        queries.append(p.query(f"{MIN_ATTEMPTS}{p.POLICY}", "min_attempts " + p.BY_POLICY, ref="D"))
        dashed.append("D")
    return p.timeseries_panel(
        "Attempts on leads not reached vs min_attempts",
        "Contact attempts made on each depth clock decided in the trailing day without the lead being reached, "
        "per depth policy: median, 90th percentile and mean (policy:leadsla_followup_depth_attempts:p50_rate1d, "
        ":p90_rate1d, :mean_rate1d). The dashed line is the policy's min_attempts from the policies file "
        "(policy:leadsla_followup_min_attempts:count): a median below it means most leads dropped or timed out "
        "short of the attempts the SLA asks for.",
        queries, p.COUNT, min_val=0, dashed=dashed,
    )


def depth_breaches() -> Any:
    """Each depth policy's breached share of the day per team, against its error budget."""
    w = DEPTH_WINDOW
    return p.timeseries_panel(
        f"Depth policies: breached share ({w}) vs error budget",
        f"Share of the depth clocks decided in the trailing {w} that breached (too few attempts in time, or the "
        f"lead given up too early), per depth policy and team (policy_team:leadsla_sla_error:ratio_rate{w}). The "
        "dashed line is the policy's error budget (policy:leadsla_sla_error_budget:ratio): above it for "
        f"{DEPTH_BREACHES_FOR}, with at least min_decisions decided clocks, LeadSlaDepthBreaches fires for the team.",
        [
            p.query(f"policy_team:leadsla_sla_error:ratio_rate{w}{p.POLICY_TEAM} {IS_DEPTH}", p.BY_POLICY_TEAM,
                    ref="A"),
            p.query(f"policy:leadsla_sla_error_budget:ratio{p.POLICY} {IS_DEPTH}", "budget " + p.BY_POLICY, ref="B"),
        ],
        p.RATIO, min_val=0, max_val=1, dashed=["B"],
    )


def depth_summary(policies: PolicySet) -> Any:
    """One row per depth policy: the day's unreached leads, their attempts and the met share."""
    rule = "policy:leadsla_followup_depth_attempts"
    columns = [
        p.Column("Not reached (24 h)", f"{DEPTH_COUNT}{p.POLICY}", p.COUNT, 0),
        p.Column("Mean attempts", f"{rule}:mean_rate1d{p.POLICY}", p.COUNT, 1),
        p.Column("p50 attempts", f"{rule}:p50_rate1d{p.POLICY}", p.COUNT, 1),
        p.Column("p90 attempts", f"{rule}:p90_rate1d{p.POLICY}", p.COUNT, 1),
    ]
    if any(q.is_depth for q in policies.policies):
        columns.append(p.Column("min_attempts", f"{MIN_ATTEMPTS}{p.POLICY}", p.COUNT, 0))
    columns += [
        p.Column("Met 24 h", f"policy:leadsla_sla_compliance:ratio_rate1d{p.POLICY} {IS_DEPTH}", p.RATIO, 1),
        p.Column("Met 30 d", f"policy:leadsla_sla_compliance:ratio_rate30d{p.POLICY} {IS_DEPTH}", p.RATIO, 1),
        p.Column("objective", f"policy:leadsla_sla_objective:ratio{p.POLICY} {IS_DEPTH}", p.RATIO, 1),
    ]
    return p.table_panel(
        "Depth policies: last 24 h",
        "Per depth policy: clocks decided in the last day without the lead being reached "
        f"({DEPTH_COUNT}), the attempts made on them (mean, median, 90th percentile), the policy's "
        "min_attempts, and the share of its clocks met over the last day and 30 days next to its objective "
        "(a clock is met by a connect or by min_attempts attempts in time).",
        ["policy"], columns, sort_by="Not reached (24 h)",
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


def dashboard(policies: PolicySet) -> dict[str, Any]:
    """The sales follow-up dashboard as Grafana JSON data; ``policies`` give the depth policies' min_attempts."""
    rows = [
        p.Row(9, [(followup_speed(), 12), (wall_clock_latency_by_team(), 12)], title="Speed"),
        p.Row(8, [(speed_table(), 24)]),
        p.Row(9, [(breaches_by_rep(), 18), (corrections_24h(), 6)], title="Breaches by rep"),
        p.Row(8, [(attempts_per_handoff(), 12), (depth_table(), 12)], title="Depth"),
        p.Row(8, [(depth_attempts(policies), 12), (depth_breaches(), 12)], title="Depth policies"),
        p.Row(6, [(depth_summary(policies), 24)]),
        p.Row(8, [(compliance_by_policy(), 10), (compliance_by_team(), 14)], title="Disposition and compliance"),
        p.Row(8, [(burn_rate(), 24)], title="Error budget"),
    ]
    return p.board(
        UID, TITLE,
        "Sales follow-up against the SLA: speed per team against the goal, breaches by rep, follow-up depth and "
        "the depth policies' attempts, compliance over every window and the error budget burn. Generated by "
        "`leadsla generate` from the policies file.",
        [p.datasource_variable(), p.policy_variable(), p.team_variable()],
        rows, time_from="now-7d", refresh="5m",
    )
