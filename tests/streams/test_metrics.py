"""streams.metrics: the contract's metric names, types and labels (§5), the
scrape-time collector, bounded team labels, and no lead ids in labels."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

import leadsla.streams.metrics as metrics_mod
from leadsla.models.policy import fingerprint
from leadsla.streams.metrics import ELAPSED_BUCKETS, NONE, OTHER, LabelGuard, Metrics, RuntimeCollector
from leadsla.streams.sink import SINK_TOPICS

from .conftest import MINIMAL_YAML, T0, H, M, Rig, S, pol

# Contract §5: sample name -> (family type, labels it must carry at least).
CONTRACT = {
    "leadsla_events_total": ("counter", {"type"}),
    "leadsla_events_duplicate_total": ("counter", set()),
    "leadsla_events_rejected_total": ("counter", {"reason"}),
    "leadsla_sla_outcomes_total": ("counter", {"policy", "outcome"}),
    "leadsla_sla_open_clocks": ("gauge", {"policy"}),
    "leadsla_sla_elapsed_seconds": ("histogram", {"policy"}),
    "leadsla_sla_corrections_total": ("counter", {"policy"}),
}

TWO = """
policies:
  - name: first_touch
    start: lead.handed_off
    stop: [lead.contact_attempt, lead.connected]
    goal: 1h
  - name: disposition
    start: lead.handed_off
    stop: [lead.qualified, lead.disqualified]
    goal: 2d
    objective: 0.9
    at_risk: 0.5
"""


# leadsla_metric_series_folded_total{metric}: the families with a team or rep label.
CAPPED = {
    "leadsla_sla_outcomes_total", "leadsla_sla_breaches_total", "leadsla_sla_corrections_total",
    "leadsla_sla_elapsed_seconds", "leadsla_sla_pauses_expired_total", "leadsla_sla_at_risk_total",
    "leadsla_followup_latency_seconds", "leadsla_followup_attempts_total", "leadsla_handoffs_total",
}


def families(text: str) -> dict[str, Any]:
    """Families by the names their samples use (``_total`` kept for counters)."""
    out = {}
    for f in text_string_to_metric_families(text):
        out[f.name + ("_total" if f.type == "counter" else "")] = f
    return out


def scenario(r: Rig) -> None:
    """A bit of everything: accepted, duplicate and rejected events, met,
    breached and corrected clocks, at-risk warnings, several teams."""
    r.live()
    r.send("lead-7f3a9c01", "lead.handed_off", T0, "e-a1", team="emea", rep="Jane Doe")
    r.send("lead-7f3a9c01", "lead.handed_off", T0, "e-a1", team="emea", rep="Jane Doe")  # duplicate
    r.send("lead-7f3a9c01", "lead.contact_attempt", T0 + 10 * M, "e-a2", rep="Jane Doe")
    r.send("lead-b0b0b0b0", "lead.handed_off", T0 + M, "e-b1", team="apac", rep="john.smith@example.com")
    r.send("lead-c4c4c4c4", "lead.handed_off", T0 + 2 * M, "e-c1")
    r.send_raw(b"lead-d1d1d1d1", b"{oops")
    r.send_raw(b"lead-e2e2e2e2", b'{"event_id": "x", "lead_id": "lead-e2e2e2e2", "type": "lead.beamed", "occurred_at": "2026-11-22T09:00:00Z"}')
    r.wall.now = T0 + 3 * H
    r.engine.tick()
    r.send("lead-b0b0b0b0", "lead.connected", T0 + 20 * M, "e-b2")  # too late: a correction


def test_label_guard_caps_distinct_values() -> None:
    g = LabelGuard(2)
    assert [g("emea"), g("apac"), g("latam"), g("emea"), g("latam"), g("apac")] == [
        "emea", "apac", "other", "emea", "other", "apac"]
    assert (g(""), g(None)) == (NONE, NONE) == ("none", "none")
    assert OTHER == "other"


def test_label_guard_empty_values_do_not_use_up_the_limit() -> None:
    g = LabelGuard(1)
    assert [g(None), g(""), g("emea"), g("apac")] == ["none", "none", "emea", "other"]


def test_metrics_team_labels_past_the_limit_are_other() -> None:
    reg = CollectorRegistry()
    m = Metrics(reg, pol(MINIMAL_YAML), max_teams=2)
    for team in ["emea", "apac", "latam", "emea", "", None]:
        m.handoffs_of(team).inc()
    assert reg.get_sample_value("leadsla_handoffs_total", {"team": "emea"}) == 2.0
    assert reg.get_sample_value("leadsla_handoffs_total", {"team": "apac"}) == 1.0
    assert reg.get_sample_value("leadsla_handoffs_total", {"team": "other"}) == 1.0
    assert reg.get_sample_value("leadsla_handoffs_total", {"team": "none"}) == 2.0
    assert reg.get_sample_value("leadsla_handoffs_total", {"team": "latam"}) is None
    # The guard is shared by every team-labelled metric.
    m.outcome("first_touch", "met", "latam").inc()
    assert reg.get_sample_value("leadsla_sla_outcomes_total", {"policy": "first_touch", "outcome": "met", "team": "other"}) == 1.0


def test_fresh_metrics_expose_every_contract_name() -> None:
    r = Rig(TWO)
    text = r.exposition()
    fams = families(text)
    for name, (kind, _) in CONTRACT.items():
        assert fams[name].type == kind, name
        assert f"# TYPE {name} {kind}" in text
    # Known label sets are there at zero from the start.
    assert {s.labels["type"] for s in fams["leadsla_events_total"].samples} == {
        "lead.created", "lead.mql", "lead.handed_off", "lead.contact_attempt", "lead.connected", "lead.accepted",
        "lead.qualified", "lead.disqualified", "lead.recycled", "opportunity.created", "deal.won", "deal.lost"}
    assert {s.labels["reason"]: s.value for s in fams["leadsla_events_rejected_total"].samples} == {
        "malformed": 0.0, "invalid": 0.0, "unknown_type": 0.0, "too_large": 0.0, "processing_error": 0.0}
    assert sorted((s.labels["policy"], s.labels["outcome"], s.value) for s in fams["leadsla_sla_outcomes_total"].samples) == [
        ("disposition", "breached", 0.0), ("disposition", "met", 0.0),
        ("first_touch", "breached", 0.0), ("first_touch", "met", 0.0)]
    assert sorted((s.labels["policy"], s.value) for s in fams["leadsla_sla_corrections_total"].samples) == [
        ("disposition", 0.0), ("first_touch", 0.0)]
    assert sorted((s.labels["policy"], s.labels["team"], s.value) for s in fams["leadsla_sla_open_clocks"].samples) == [
        ("disposition", "none", 0.0), ("first_touch", "none", 0.0)]
    assert [s.value for s in fams["leadsla_events_duplicate_total"].samples] == [0.0]
    assert fams["leadsla_events_duplicate_total"].samples[0].labels == {}


def test_contract_metrics_and_labels_after_traffic() -> None:
    r = Rig(TWO, wall=T0 + 30 * M)
    scenario(r)
    fams = families(r.exposition())
    for name, (kind, labels) in CONTRACT.items():
        fam = fams[name]
        assert fam.type == kind
        assert fam.samples, name
        for s in fam.samples:
            assert labels <= set(s.labels), (name, s.labels)
    val = r.sample
    assert val("leadsla_events_total", type="lead.handed_off") == 3.0
    assert val("leadsla_events_total", type="lead.contact_attempt") == 1.0
    assert val("leadsla_events_total", type="lead.connected") == 1.0
    assert val("leadsla_events_duplicate_total") == 1.0
    assert val("leadsla_events_rejected_total", reason="malformed") == 1.0
    assert val("leadsla_events_rejected_total", reason="unknown_type") == 1.0
    assert val("leadsla_sla_outcomes_total", policy="first_touch", outcome="met", team="emea") == 1.0
    assert val("leadsla_sla_outcomes_total", policy="first_touch", outcome="breached", team="apac") == 1.0
    assert val("leadsla_sla_outcomes_total", policy="first_touch", outcome="breached", team="none") == 1.0
    assert val("leadsla_sla_corrections_total", policy="first_touch", team="apac") == 1.0
    assert val("leadsla_sla_open_clocks", policy="disposition", team="emea") == 1.0
    assert val("leadsla_sla_open_clocks", policy="disposition", team="apac") == 1.0
    assert val("leadsla_sla_open_clocks", policy="disposition", team="none") == 1.0
    assert val("leadsla_sla_open_clocks", policy="first_touch", team="none") == 0.0
    assert val("leadsla_sla_elapsed_seconds_count", policy="first_touch", team="emea") == 1.0
    assert val("leadsla_sla_elapsed_seconds_sum", policy="first_touch", team="emea") == 600.0
    assert val("leadsla_sla_elapsed_seconds_bucket", policy="first_touch", team="emea", le="300.0") == 0.0
    assert val("leadsla_sla_elapsed_seconds_bucket", policy="first_touch", team="emea", le="600.0") == 1.0
    assert val("leadsla_sla_elapsed_seconds_bucket", policy="first_touch", team="emea", le="+Inf") == 1.0
    assert val("leadsla_sla_at_risk_total", policy="first_touch", team="apac") == 1.0
    assert val("leadsla_sla_at_risk_total", policy="first_touch", team="none") == 1.0


def test_elapsed_histogram_buckets() -> None:
    assert ELAPSED_BUCKETS[0] == 60 and ELAPSED_BUCKETS[-1] == 1209600
    assert list(ELAPSED_BUCKETS) == sorted(ELAPSED_BUCKETS)
    r = Rig()
    r.metrics.elapsed_of("first_touch", "emea").observe(3599.0)
    les = [s.labels["le"] for s in families(r.exposition())["leadsla_sla_elapsed_seconds"].samples if s.name.endswith("_bucket")]
    assert les == [floatToGoString(b) for b in ELAPSED_BUCKETS] + ["+Inf"]
    assert les[-2:] == ["1.2096e+06", "+Inf"]
    assert r.sample("leadsla_sla_elapsed_seconds_bucket", policy="first_touch", team="emea", le="3600.0") == 1.0
    assert r.sample("leadsla_sla_elapsed_seconds_bucket", policy="first_touch", team="emea", le="1800.0") == 0.0


def test_no_lead_id_or_person_in_any_label() -> None:
    r = Rig(TWO, wall=T0 + 30 * M)
    scenario(r)
    text = r.exposition()
    private = ["lead-7f3a9c01", "lead-b0b0b0b0", "lead-c4c4c4c4", "lead-d1d1d1d1", "lead-e2e2e2e2",
               "7f3a9c", "Jane Doe", "john.smith@example.com", "e-a1", "e-b2"]
    for p in private:
        assert p not in text
    values = {v for f in text_string_to_metric_families(text) for s in f.samples for v in s.labels.values()}
    assert values <= {
        "lead.created", "lead.mql", "lead.handed_off", "lead.contact_attempt", "lead.connected", "lead.accepted",
        "lead.qualified", "lead.disqualified", "lead.recycled", "opportunity.created", "deal.won", "deal.lost",
        "malformed", "invalid", "unknown_type", "too_large", "processing_error", "met", "breached", "first_touch", "disposition",
        "emea", "apac", "none", "0", "1h", "1d", "24x7", "open",
        "leadsla", fingerprint(r.engine.policies),  # leadsla_policies_info: the app id and the fingerprint
    } | CAPPED | set(SINK_TOPICS) | {floatToGoString(b) for b in ELAPSED_BUCKETS} | {"+Inf"}


def test_policies_info_names_the_app_and_the_fingerprint() -> None:
    r = Rig(TWO, wall=T0)
    fp = fingerprint(r.engine.policies)
    assert r.sample("leadsla_policies_info", app_id="leadsla", fingerprint=fp) == 1.0
    assert [s.labels for s in families(r.exposition())["leadsla_policies_info"].samples] == [
        {"app_id": "leadsla", "fingerprint": fp}]


def test_runtime_collector_gauges(monkeypatch: pytest.MonkeyPatch) -> None:
    r = Rig(TWO, wall=T0 + 30 * M)
    scenario(r)
    monkeypatch.setattr(metrics_mod, "time", SimpleNamespace(time=lambda: (T0 + 3 * H) / S + 42.5))
    r.send("lead-f0f0f0f0", "lead.created", T0 + 3 * H, "e-f1", partition=1)  # a second partition, not caught up
    r.hw[1] = 10
    val = r.sample
    assert val("leadsla_sla_goal_seconds", policy="first_touch") == 3600.0
    assert val("leadsla_sla_goal_seconds", policy="disposition") == 172800.0
    assert val("leadsla_sla_objective_ratio", policy="first_touch") == 0.95
    assert val("leadsla_sla_objective_ratio", policy="disposition") == 0.9
    assert val("leadsla_sla_at_risk_threshold_ratio", policy="first_touch") == 0.8
    assert val("leadsla_sla_at_risk_threshold_ratio", policy="disposition") == 0.5
    assert val("leadsla_owned_partitions") == 2.0
    assert val("leadsla_worker_ready") == 1.0
    assert val("leadsla_consumer_lag", partition="0") == 0.0
    assert val("leadsla_consumer_lag", partition="1") == 9.0
    assert val("leadsla_partition_caught_up", partition="0") == 1.0
    assert val("leadsla_partition_caught_up", partition="1") == 0.0
    assert val("leadsla_watermark_timestamp_seconds", partition="0") == (T0 + 3 * H - 2 * S) / S
    assert val("leadsla_watermark_timestamp_seconds", partition="1") == (T0 + 3 * H - 24 * H) / S
    assert val("leadsla_deadline_index_leads", partition="0") == 3.0
    assert val("leadsla_deadline_index_leads", partition="1") == 1.0
    assert val("leadsla_last_event_timestamp_seconds") == (T0 + 3 * H) / S
    assert val("leadsla_seconds_since_last_event") == 42.5
    assert val("leadsla_sla_at_risk_clocks", policy="disposition", team="none") == 0.0
    assert val("leadsla_window_handoffs", team="emea", window="1h") is None  # 09:00 is not the current hour
    assert val("leadsla_window_handoffs", team="emea", window="1d") == 1.0
    assert val("leadsla_window_followup_attempts", team="apac", window="1d") == 1.0
    assert val("leadsla_window_first_followups", team="emea", window="1d") == 1.0
    assert val("leadsla_window_first_followup_seconds_sum", team="emea", window="1d") == 600.0


def test_collector_before_any_record(monkeypatch: pytest.MonkeyPatch) -> None:
    reg = CollectorRegistry()
    ps = pol(MINIMAL_YAML)
    snap = {"open": {}, "at_risk": {}, "paused": {}, "partitions": {}, "windows": {}, "ready": False,
            "last_event_wall": None, "started_wall": 1000.0}
    reg.register(RuntimeCollector(lambda: snap, ps))
    monkeypatch.setattr(metrics_mod, "time", SimpleNamespace(time=lambda: 1012.0))
    text = generate_latest(reg).decode()
    assert reg.get_sample_value("leadsla_worker_ready") == 0.0
    assert reg.get_sample_value("leadsla_owned_partitions") == 0.0
    assert reg.get_sample_value("leadsla_last_event_timestamp_seconds") == 0.0
    assert reg.get_sample_value("leadsla_seconds_since_last_event") == 12.0
    assert reg.get_sample_value("leadsla_sla_open_clocks", {"policy": "first_touch", "team": "none"}) == 0.0
    assert "leadsla_consumer_lag{" not in text


def test_an_email_as_team_or_rep_is_never_a_label() -> None:
    from leadsla.streams.metrics import LabelGuard

    guard = LabelGuard(10)
    assert guard("jane.doe@example.com") == "other"
    assert guard("rep-17") == "rep-17"


def test_rep_labels_take_ids_only_never_a_person() -> None:
    from leadsla.streams.metrics import _REP_ID

    g = LabelGuard(100, _REP_ID)
    ids = ["rep-07", "0051t00000ABCdE", "jdoe", "team.sales:eu/2"]
    people = ["Jane Doe", "jane.doe@example.com", "María", "Quentin Vexley", "x" * 65, "tab\there"]
    assert [g(v) for v in ids] == ids
    assert [g(v) for v in people] == [OTHER] * len(people)


def test_team_labels_keep_the_business_names_but_never_an_address() -> None:
    g = LabelGuard(100)
    names = ["North America East", "sales|emea", "München", "emea"]
    assert [g(v) for v in names] == names
    assert [g(v) for v in ["ops@corp.example", "x" * 101, "nul\x00"]] == [OTHER] * 3
