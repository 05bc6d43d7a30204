"""streams.metrics: the per-family series cap and its folding into 'other',
breach series by rep created only for clocks that may breach, and
``render_metrics`` (the /metrics page rendered off the event loop)."""

from __future__ import annotations

import asyncio
import logging
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

import leadsla.streams.metrics as metrics_mod
from leadsla.streams.metrics import MAX_SERIES, OTHER, Metrics, render_metrics

from . import conftest
from .conftest import MINIMAL_YAML, T0, H, M, Rig, S, pol

LATENESS = 2 * S  # conftest.SMALL's allowed_lateness
BREACHES = "leadsla_sla_breaches_total"
FOLDED = "leadsla_metric_series_folded_total"


def series(reg: CollectorRegistry, family: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample of ``family`` (its name as exposed), by sorted label pairs."""
    text = generate_latest(reg).decode()
    return {tuple(sorted(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples if s.name == family}


def test_default_cap() -> None:
    m = Metrics(CollectorRegistry(), pol(MINIMAL_YAML), 200, 500)
    assert MAX_SERIES == 10_000
    assert m.max_series == 10_000


def test_a_full_family_folds_new_label_sets_into_other_and_counts_them(caplog: pytest.LogCaptureFixture) -> None:
    reg = CollectorRegistry()
    m = Metrics(reg, pol(MINIMAL_YAML), max_teams=100, max_reps=100, max_series=3)
    caplog.set_level(logging.WARNING, logger="leadsla")
    m.breach("first_touch", "emea", "rep-1").inc()
    m.breach("first_touch", "emea", "rep-2").inc()
    m.breach("first_touch", "apac", "rep-1").inc(2)
    # Full: new sets keep their policy, team and rep become 'other'.
    m.breach("first_touch", "apac", "rep-2").inc()
    m.breach("first_touch", "latam", "rep-3").inc()
    m.breach("first_touch", "apac", "rep-2").inc()  # the same folded set again: counted once as folded
    # Sets that had their series before the cap keep them.
    m.breach("first_touch", "emea", "rep-1").inc()
    assert series(reg, BREACHES) == {
        (("policy", "first_touch"), ("rep", "rep-1"), ("team", "emea")): 2.0,
        (("policy", "first_touch"), ("rep", "rep-2"), ("team", "emea")): 1.0,
        (("policy", "first_touch"), ("rep", "rep-1"), ("team", "apac")): 2.0,
        (("policy", "first_touch"), ("rep", OTHER), ("team", OTHER)): 3.0,
    }
    assert reg.get_sample_value(FOLDED, {"metric": BREACHES}) == 2.0
    # Every capped family has its folded counter from the start, at 0.
    assert reg.get_sample_value(FOLDED, {"metric": "leadsla_sla_outcomes_total"}) == 0.0
    assert reg.get_sample_value(FOLDED, {"metric": "leadsla_handoffs_total"}) == 0.0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["leadsla_sla_breaches_total holds 3 label sets (the cap): new ones are counted under "
                        "team and rep 'other' (leadsla_metric_series_folded_total)"]
    assert not any(v in warnings[0] for v in ("apac", "latam", "rep-2", "rep-3"))


def test_folding_keeps_policy_and_outcome() -> None:
    reg = CollectorRegistry()
    m = Metrics(reg, pol(MINIMAL_YAML), max_teams=100, max_series=3)
    # (first_touch, met, none) and (first_touch, breached, none) exist from the start.
    m.outcome("first_touch", "met", "emea").inc()
    m.outcome("first_touch", "breached", "apac").inc()
    m.outcome("first_touch", "met", "latam").inc(2)
    assert series(reg, "leadsla_sla_outcomes_total") == {
        (("outcome", "met"), ("policy", "first_touch"), ("team", "none")): 0.0,
        (("outcome", "breached"), ("policy", "first_touch"), ("team", "none")): 0.0,
        (("outcome", "met"), ("policy", "first_touch"), ("team", "emea")): 1.0,
        (("outcome", "breached"), ("policy", "first_touch"), ("team", OTHER)): 1.0,
        (("outcome", "met"), ("policy", "first_touch"), ("team", OTHER)): 2.0,
    }
    assert reg.get_sample_value(FOLDED, {"metric": "leadsla_sla_outcomes_total"}) == 2.0
    # Each family has its own cap: handoffs still has room for three teams.
    for team in ("apac", "latam", "emea", "nordics"):
        m.handoffs_of(team).inc()
    assert {k[0][1]: v for k, v in series(reg, "leadsla_handoffs_total").items()} == {
        "apac": 1.0, "latam": 1.0, "emea": 1.0, OTHER: 1.0}
    assert reg.get_sample_value(FOLDED, {"metric": "leadsla_handoffs_total"}) == 1.0


def test_families_without_team_or_rep_are_not_capped() -> None:
    reg = CollectorRegistry()
    m = Metrics(reg, pol(MINIMAL_YAML), max_teams=100, max_series=1)
    for role in ("start", "stop", "pause"):
        m.too_late("first_touch", role).inc()
    assert {k[1][1]: v for k, v in series(reg, "leadsla_events_too_late_total").items()} == {
        "start": 1.0, "stop": 1.0, "pause": 1.0}


@pytest.fixture
def rig_with_reps(monkeypatch: pytest.MonkeyPatch) -> type[Rig]:
    """Rig, with the rep label on (conftest's Rig leaves max_reps at 0)."""
    monkeypatch.setattr(conftest, "Metrics", lambda reg, pols, teams: Metrics(reg, pols, teams, 500))
    return Rig


def test_breach_series_only_for_clocks_that_may_breach(rig_with_reps: type[Rig]) -> None:
    r = rig_with_reps(wall=T0 + 5 * S)
    r.live()
    val = r.sample
    # A team and a rep that never had a clock: a lead created, an attempt on a lead with none.
    r.send("Z", "lead.created", T0, "z-c", team="latam", rep="rep-9")
    r.send("Y", "lead.contact_attempt", T0, "y-a", rep="rep-8")
    # A clock met long before its at-risk threshold (48 minutes of 1h).
    r.send("A", "lead.handed_off", T0, "a-h", team="emea", rep="rep-1")
    # A clock left to breach.
    r.wall.now = T0 + M + 5 * S
    r.send("B", "lead.handed_off", T0 + M, "b-h", team="emea", rep="rep-2")
    r.wall.now = T0 + 10 * M + 5 * S
    r.send("A", "lead.contact_attempt", T0 + 10 * M, "a-c")
    r.engine.tick()
    text = r.exposition()
    for absent in ("latam", "rep-9", "rep-8", "rep-1", "rep-2"):
        assert absent not in text
    assert BREACHES + "{" not in text
    # The team's outcome series were born at 0 with its first clock.
    assert val("leadsla_sla_outcomes_total", policy="first_touch", outcome="met", team="emea") == 1.0
    assert val("leadsla_sla_outcomes_total", policy="first_touch", outcome="breached", team="emea") == 0.0
    # B at risk: its breach series is born at 0, before the breach.
    r.wall.now = T0 + M + 48 * M + LATENESS + S
    r.engine.tick()
    assert val("leadsla_sla_at_risk_total", policy="first_touch", team="emea") == 1.0
    assert val(BREACHES, policy="first_touch", team="emea", rep="rep-2") == 0.0
    assert val(BREACHES, policy="first_touch", team="emea", rep="rep-1") is None
    r.wall.now = T0 + M + H + LATENESS + 2 * S
    r.engine.tick()
    assert [x["outcome"] for x in r.sink.records()] == ["met", "breached"]
    assert val(BREACHES, policy="first_touch", team="emea", rep="rep-2") == 1.0
    assert val("leadsla_sla_outcomes_total", policy="first_touch", outcome="breached", team="emea") == 1.0
    assert {s for s in series(r.registry, BREACHES)} == {
        (("policy", "first_touch"), ("rep", "rep-2"), ("team", "emea"))}


def test_a_new_teams_first_decision_starts_from_a_zero_sample(rig_with_reps: type[Rig]) -> None:
    r = rig_with_reps(wall=T0 + 5 * S)
    r.live()
    r.send("C", "lead.handed_off", T0, "c-h", team="apac", rep="rep-3")
    # Scraped between start and decision: what increase() needs to count the first one.
    assert r.sample("leadsla_sla_outcomes_total", policy="first_touch", outcome="met", team="apac") == 0.0
    assert r.sample("leadsla_sla_outcomes_total", policy="first_touch", outcome="breached", team="apac") == 0.0
    assert r.sample("leadsla_sla_elapsed_seconds_count", policy="first_touch", team="apac") == 0.0
    assert r.sample("leadsla_handoffs_total", team="apac") == 1.0
    r.wall.now = T0 + 5 * M + 5 * S
    r.send("C", "lead.connected", T0 + 5 * M, "c-c")
    r.engine.tick()
    assert r.sample("leadsla_sla_outcomes_total", policy="first_touch", outcome="met", team="apac") == 1.0
    assert r.sample(BREACHES, policy="first_touch", team="apac", rep="rep-3") is None


def test_prebind_creates_the_breach_series_only_at_risk() -> None:
    reg = CollectorRegistry()
    m = Metrics(reg, pol(MINIMAL_YAML), max_teams=10, max_reps=10)
    m.prebind("first_touch", "emea", "rep-1")
    assert series(reg, BREACHES) == {}
    m.prebind("first_touch", "emea", "rep-1", at_risk=True)
    assert series(reg, BREACHES) == {(("policy", "first_touch"), ("rep", "rep-1"), ("team", "emea")): 0.0}


# -- render_metrics ---------------------------------------------------------------------


def test_render_metrics_is_generate_latest(monkeypatch: pytest.MonkeyPatch) -> None:
    r = Rig(wall=T0 + 5 * S)
    r.live()
    r.send("A", "lead.handed_off", T0, "a-h", team="emea")
    r.send("B", "lead.handed_off", T0, "b-h", team="apac")
    r.wall.now = T0 + 10 * M + 5 * S
    r.send("A", "lead.contact_attempt", T0 + 10 * M, "a-c")
    r.engine.tick()
    r.metrics.elapsed_of("first_touch", "emea").observe(42.0)
    monkeypatch.setattr(metrics_mod, "time", SimpleNamespace(time=lambda: T0 / S + 60.0))
    rendered = asyncio.run(render_metrics(r.registry))
    assert rendered == generate_latest(r.registry)
    assert b'leadsla_sla_open_clocks{policy="first_touch",team="apac"} 1.0' in rendered
    assert b'leadsla_sla_outcomes_total{outcome="met",policy="first_touch",team="emea"} 1.0' in rendered


def test_render_metrics_with_target_info() -> None:
    reg = CollectorRegistry(target_info={"worker": "1"})
    Counter("c_total", "A counter.", ["k"], registry=reg).labels("v").inc(3)
    assert asyncio.run(render_metrics(reg)) == generate_latest(reg)
    assert b'c_total{k="v"} 3.0' in generate_latest(reg)


class RuntimeLike:
    """A collector that reads loop-owned state: records the thread it ran on."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Any:
        self.threads.append(threading.get_ident())
        yield GaugeMetricFamily("x_open", "Open things.", value=7)


def test_render_metrics_reads_runtime_collectors_on_the_loop_and_renders_in_a_thread(
        monkeypatch: pytest.MonkeyPatch) -> None:
    reg = CollectorRegistry()
    Counter("a_total", "First.", registry=reg).inc()
    runtime = RuntimeLike()
    reg.register(runtime)
    Counter("b_total", "Last.", registry=reg).inc(2)
    rendered_on: list[int] = []
    real = metrics_mod.generate_latest

    def spy(registry: Any) -> bytes:
        rendered_on.append(threading.get_ident())
        return real(registry)

    monkeypatch.setattr(metrics_mod, "generate_latest", spy)

    async def scrape() -> tuple[bytes, int]:
        return await render_metrics(reg), threading.get_ident()

    text, loop_thread = asyncio.run(scrape())
    assert runtime.threads == [loop_thread]
    assert len(rendered_on) == 1 and rendered_on[0] != loop_thread
    # In registry order, as generate_latest has them.
    assert text == real(reg)
    assert text.index(b"a_total 1.0") < text.index(b"x_open 7.0") < text.index(b"b_total 2.0")
