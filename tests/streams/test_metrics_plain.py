"""streams.metrics: counters and histograms in plain numbers expose exactly
what prometheus_client's own metrics would, are read in the rendering thread,
and the children remembered by raw label values may be forgotten."""

from __future__ import annotations

import asyncio
import threading

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

import leadsla.streams.metrics as metrics_mod
from leadsla.streams.metrics import (
    DEPTH_BUCKETS,
    ELAPSED_BUCKETS,
    CounterFamily,
    CountersCollector,
    HistogramFamily,
    Metrics,
    render_metrics,
    snapshot,
)

from .conftest import MINIMAL_YAML, pol


def test_plain_families_render_as_prometheus_client_metrics() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    c = CounterFamily("x_events_total", "Events, by type.", ("type", "team"))
    u = CounterFamily("x_dups_total", "Duplicates.")
    h = HistogramFamily("x_elapsed_seconds", "Elapsed.", ("policy",), ELAPSED_BUCKETS)
    d = HistogramFamily("x_depth_attempts", "Depth.", (), DEPTH_BUCKETS)
    ours.register(CountersCollector([c, u, h, d]))
    tc = Counter("x_events_total", "Events, by type.", ["type", "team"], registry=theirs)
    tu = Counter("x_dups_total", "Duplicates.", registry=theirs)
    th = Histogram("x_elapsed_seconds", "Elapsed.", ["policy"], buckets=ELAPSED_BUCKETS, registry=theirs)
    td = Histogram("x_depth_attempts", "Depth.", buckets=DEPTH_BUCKETS, registry=theirs)
    for labels, amount in [(("a", "emea"), 1), (("b", "none"), 2.5), (("a", "emea"), 1), (("c", "x\"y\\z\n"), 0)]:
        c.labels(*labels).inc(amount)
        tc.labels(*labels).inc(amount)
    u.inc()
    tu.inc()
    for policy, value in [("p", 0.0), ("p", 60.0), ("q", 61.5), ("p", 3599.999), ("p", 1e9), ("q", 604800.0)]:
        h.labels(policy).observe(value)
        th.labels(policy).observe(value)
    for value in [0, 1, 6, 7, 15, 16, 3]:
        d.labels().observe(value)
        td.observe(value)
    assert generate_latest(ours) == generate_latest(theirs)
    assert ours.get_sample_value("x_elapsed_seconds_bucket", {"policy": "p", "le": "60.0"}) == 2.0


def test_a_counter_refuses_a_negative_increment_as_prometheus_client_does() -> None:
    c = CounterFamily("x_total", "X.", ("k",))
    with pytest.raises(ValueError):
        c.labels("v").inc(-1)
    assert c.labels("v").cell == [0.0]


def test_a_second_metrics_on_one_registry_is_refused() -> None:
    reg = CollectorRegistry()
    Metrics(reg, pol(MINIMAL_YAML), 10)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Metrics(reg, pol(MINIMAL_YAML), 10)


def test_forgetting_children_by_raw_values_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def exercise(m: Metrics) -> None:
        for i in range(30):
            team = f"team-{i % 7}" if i % 5 else f"Person Name {i}"
            m.prebind("first_touch", team, f"rep-{i % 4}", at_risk=i % 3 == 0)
            m.prebind_team(team)
            m.outcome("first_touch", "met" if i % 2 else "breached", team).inc()
            m.breach("first_touch", team, f"rep-{i % 11}").inc()
            m.elapsed_of("first_touch", team).observe(i * 100.0)
            m.handoffs_of(team).inc()

    a, b = CollectorRegistry(), CollectorRegistry()
    exercise(Metrics(a, pol(MINIMAL_YAML), max_teams=4, max_reps=6, max_series=9))
    monkeypatch.setattr(metrics_mod, "_RAW_CACHE", 2)
    exercise(Metrics(b, pol(MINIMAL_YAML), max_teams=4, max_reps=6, max_series=9))
    assert generate_latest(a) == generate_latest(b)


def test_the_counters_are_read_in_the_rendering_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    reg = CollectorRegistry()
    m = Metrics(reg, pol(MINIMAL_YAML), 10)
    m.handoffs_of("emea").inc()
    (collector,) = [c for c in reg._collector_to_names if isinstance(c, CountersCollector)]
    assert collector in snapshot(reg)._parts  # type: ignore[attr-defined]  # live: not collected on the loop
    threads: list[int] = []
    real = CountersCollector.expose

    def spy(self: CountersCollector, out: list[str]) -> None:
        threads.append(threading.get_ident())
        real(self, out)

    monkeypatch.setattr(CountersCollector, "expose", spy)

    async def scrape() -> tuple[bytes, int]:
        return await render_metrics(reg), threading.get_ident()

    text, loop_thread = asyncio.run(scrape())
    assert threads and loop_thread not in threads
    assert b'leadsla_handoffs_total{team="emea"} 1.0' in text


def test_counting_while_a_thread_renders() -> None:
    reg = CollectorRegistry()
    m = Metrics(reg, pol(MINIMAL_YAML), max_teams=30_000, max_series=30_000)
    stop = threading.Event()
    pages: list[bytes] = []
    errors: list[BaseException] = []

    def scrape() -> None:
        try:
            while not stop.is_set():
                pages.append(generate_latest(reg))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    t = threading.Thread(target=scrape)
    t.start()
    try:
        for i in range(20_000):  # a new series at every step: the dicts grow while read
            m.outcome("first_touch", "met", f"team-{i}").inc()
            m.elapsed_of("first_touch", f"team-{i}").observe(i)
    finally:
        stop.set()
        t.join()
    assert pages and not errors
    assert reg.get_sample_value("leadsla_sla_outcomes_total", {"policy": "first_touch", "outcome": "met",
                                                               "team": "team-0"}) == 1.0
