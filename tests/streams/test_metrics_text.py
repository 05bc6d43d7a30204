"""streams.metrics: the /metrics page written by leadsla's own families
(``expose``) is byte for byte what ``generate_latest`` makes of the same
registry: escapes, non-ASCII, NaN and infinities, empty families,
histograms, other collectors in between, caches full and forgotten, and
while the event loop counts."""

from __future__ import annotations

import asyncio
import math
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily

import leadsla.streams.metrics as metrics_mod
from leadsla.streams.metrics import (
    DEPTH_BUCKETS,
    ELAPSED_BUCKETS,
    CounterFamily,
    CountersCollector,
    HistogramFamily,
    InfoGauge,
    LedgerCollector,
    Metrics,
    RuntimeCollector,
    render_metrics,
    snapshot,
)

from .conftest import MINIMAL_YAML, pol

# Label values the text format must escape, or that are not ASCII.
AWKWARD = ['say "hi"', "back\\slash", "two\nlines", "Zürich", "東京", "emoji 🙂", "", "\\n literal", 'mix\\"\n']
ODD_VALUES = [0.0, -0.0, 1.0, 2, 0.1, -3.5, math.nan, math.inf, -math.inf, 1e22, 12345678.9, 1234567.0, 5e-324]


def page(registry: CollectorRegistry) -> bytes:
    """/metrics as the worker serves it."""
    return asyncio.run(render_metrics(registry))


def counted(registry: CollectorRegistry, teams: int = 60) -> Metrics:
    """A ``Metrics`` with many label sets, awkward team names among them."""
    m = Metrics(registry, pol(MINIMAL_YAML), max_teams=500, max_reps=500)
    names = [*AWKWARD[:-3], *(f"team-{i:02d}" for i in range(teams))]  # '' is 'none' to the guard
    for i, team in enumerate(names):
        m.clock_opened("first_touch", team, f"rep-{i % 7}", at_risk=i % 2 == 0)
        m.outcome("first_touch", "met" if i % 3 else "breached", team).inc(i)
        m.breach("first_touch", team, f"rep-{i % 11}").inc()
        m.elapsed_of("first_touch", team).observe(i * 997.5)
        m.followup_of(team).observe(i * 61.0)
        m.handoffs_of(team).inc()
    m.elapsed_of("first_touch", "team-00").observe(math.nan)
    m.elapsed_of("first_touch", "team-01").observe(math.inf)
    m.followup_of("team-02").observe(-5.0)
    return m


def runtime_snapshot() -> dict[str, Any]:
    teams = {t: i for i, t in enumerate([*AWKWARD[:-3], "emea"])}
    return {
        "open": {"first_touch": teams}, "at_risk": {"first_touch": {"Zürich": 1}}, "paused": {},
        "partitions": {0: {"lag": 3, "watermark": 1.7e9, "caught_up": True, "indexed": 12},
                       1: {"lag": None, "watermark": None, "caught_up": False, "indexed": 0},
                       10: {"lag": 0, "watermark": math.nan, "caught_up": True, "indexed": -0.0}},
        "windows": {("handoffs", 'say "hi"', "1h"): 2, ("latency", "東京", "1d"): math.inf,
                    ("first", "two\nlines", "1d"): 1.5},
        "ready": True, "last_event_wall": 1.7e9, "started_wall": 1.6e9,
    }


def levels() -> list[tuple[str, str, str, dict[str, Any]]]:
    return [
        ("policy", "first_touch", 'q"uote', {"strikes": 2, "points": 0, "last": {
            "under_review": True, "met": False, "achieved": 1 / 3}}),
        ("policy", "first_touch", "Zürich", {"strikes": 0, "points": 3.5, "last": {
            "under_review": False, "met": True, "achieved": None}}),
        ("target", "mqls", "", {"strikes": 1, "points": 1, "last": None}),
        ("policy", "first_touch", "back\\slash", {"strikes": 0, "points": math.nan, "last": {
            "under_review": False, "met": True, "achieved": math.nan}}),
    ]


class Foreign:
    """A collector leadsla does not know, read on the loop."""

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Any:
        g = GaugeMetricFamily("foreign_things", "Things, by kind.", labels=["kind"])
        g.add_metric(['a "b"'], 1.5)
        yield g


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runtime gauges read the wall clock: hold it."""
    monkeypatch.setattr(metrics_mod, "time", SimpleNamespace(time=lambda: 1_750_000_000.0))


@pytest.mark.usefixtures("frozen")
def test_a_whole_registry_is_generate_latest_s_page() -> None:
    reg = CollectorRegistry()
    Counter("before_total", "A foreign counter first.", ["k"], registry=reg).labels('v"\n').inc(2)
    m = counted(reg)
    reg.register(RuntimeCollector(runtime_snapshot, pol(MINIMAL_YAML)))
    reg.register(Foreign())
    reg.register(LedgerCollector(levels, lambda: 4, lambda kind, team: "marketing" if kind == "target" else team))
    PlatformCollector(registry=reg)
    Histogram("after_seconds", "A foreign histogram last.", ["team"], registry=reg).labels("东").observe(0.3)
    Gauge("after_gauge", "Help with a \\ and a\nnewline.", registry=reg).set(math.nan)
    first = page(reg)
    assert first == generate_latest(reg)
    assert b'leadsla_sla_outcomes_total{outcome="met",policy="first_touch",team="say \\"hi\\""}' in first
    assert b'leadsla_period_late_reports_total 4.0' in first
    # Again, from the cached line starts, after more counting and new series.
    for i in range(100):
        m.breach("first_touch", f"team-{i % 70:02d}", f"rep-{i}").inc(0.5)
        m.elapsed_of("first_touch", AWKWARD[i % 6]).observe(i)
    second = page(reg)
    assert second == generate_latest(reg) != first


def test_odd_values_and_empty_families() -> None:
    reg = CollectorRegistry()
    c = CounterFamily("x_events_total", "Events, by type;\nwith a \\ in its help.", ("type", "team"))
    empty = CounterFamily("x_none_total", "No series yet.", ("team",))
    unlabelled = CounterFamily("x_dups_total", "Duplicates.")
    h = HistogramFamily("x_elapsed_seconds", "Elapsed.", ("policy", "zone"), ELAPSED_BUCKETS)
    around = HistogramFamily("x_around", "Labels on both sides of le.", ("la", "lf", "a"), DEPTH_BUCKETS)
    bare = HistogramFamily("x_bare", "Unlabelled.", (), DEPTH_BUCKETS)
    no_series = HistogramFamily("x_empty_seconds", "Never observed.", ("team",), (1, 2))
    info = InfoGauge("x_info", "Info.", ("app_id", "fingerprint"))
    no_info = InfoGauge("x_no_info", "No series.", ("app_id",))
    reg.register(CountersCollector([c, empty, unlabelled, h, around, bare, no_series, info, no_info]))
    for i, value in enumerate(ODD_VALUES):
        c.labels(AWKWARD[i % len(AWKWARD)], str(i)).cell[0] = value  # as any value could be, set directly
        h.labels(AWKWARD[i % len(AWKWARD)], "z").observe(value)
        around.labels("x", AWKWARD[i % len(AWKWARD)], "y").observe(value)
        bare.labels().observe(value)
    c.labels("zero-again", "x").cell[0] = 0.0  # 0.0 after -0.0 was written
    unlabelled.cell[0] = -0.0
    info.series.append(("leadsla", 'f"p\\'))
    assert snapshot(reg).render() == generate_latest(reg)
    assert page(reg) == generate_latest(reg)
    text = page(reg).decode()
    assert "x_dups_total -0.0\n" in text and 'x_events_total{team="x",type="zero-again"} 0.0\n' in text
    assert 'x_around_bucket{a="y",la="x",le="0.0",lf="say \\"hi\\""} 1.0\n' in text
    assert "# HELP x_none_total No series yet.\n# TYPE x_none_total counter\n# HELP x_dups_total" in text


def test_names_that_need_escaping_are_left_to_generate_latest() -> None:
    reg = CollectorRegistry()
    odd = CounterFamily("x_odd_total", "Odd label names.", ("team.name", "kind"))
    odd.labels("emea", 'a"b').inc()
    hist = HistogramFamily("x_le_seconds", "A label named le.", ("le",), (1.0,))
    hist.labels("mine").observe(0.5)
    reg.register(CountersCollector([odd, hist]))
    assert not odd.text.plain and not hist.text.plain
    assert page(reg) == generate_latest(reg)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
                          st.one_of(st.floats(), st.integers(-10**6, 10**6))), max_size=30))
def test_any_label_value_and_number(rows: list[tuple[str, float]]) -> None:
    reg = CollectorRegistry()
    c = CounterFamily("x_total", "X.", ("team", "n"))
    h = HistogramFamily("x_seconds", "X.", ("team",), ELAPSED_BUCKETS)
    reg.register(CountersCollector([c, h]))
    for i, (team, value) in enumerate(rows):
        c.labels(team, str(i)).cell[0] = value
        h.labels(team).observe(value)
    reg.register(LedgerCollector(lambda: [("policy", str(i), team, {"strikes": value, "points": value, "last": None})
                                          for i, (team, value) in enumerate(rows)], lambda: 0, lambda _, team: team))
    assert snapshot(reg).render() == generate_latest(reg)


@pytest.mark.usefixtures("frozen")
def test_only_other_collectors_go_through_generate_latest(monkeypatch: pytest.MonkeyPatch) -> None:
    reg = CollectorRegistry()
    counted(reg, teams=5)
    reg.register(RuntimeCollector(runtime_snapshot, pol(MINIMAL_YAML)))
    reg.register(LedgerCollector(levels, lambda: 0, lambda kind, team: team))
    want = generate_latest(reg)

    def refuse(registry: Any) -> bytes:
        raise AssertionError("leadsla's own families are written without generate_latest")

    monkeypatch.setattr(metrics_mod, "generate_latest", refuse)
    assert page(reg) == want


def test_caches_are_bounded_and_forgetting_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_mod, "_RAW_CACHE", 5)
    monkeypatch.setattr(metrics_mod, "_NUMBERS_KEPT", 7)
    reg = CollectorRegistry()
    c = CounterFamily("x_total", "X.", ("team",))
    reg.register(CountersCollector([c]))
    reg.register(LedgerCollector(lambda: [("policy", "p", f"cache-{i}", {"strikes": i + 0.000123, "points": 0,
                                                                         "last": None}) for i in range(40)],
                                 lambda: 0, lambda _, team: team))
    for i in range(40):
        c.labels(f"t{i}").inc(i + 0.000321)
    for _ in range(3):
        assert snapshot(reg).render() == generate_latest(reg)
    assert len(LedgerCollector.STRIKES.text.heads) <= 5 and len(c.text.heads) <= 5
    assert len(metrics_mod._NUMBERS) <= 7 and metrics_mod._NUMBERS[0.0] == "0.0"


def test_rendering_while_the_loop_counts() -> None:
    reg = CollectorRegistry()
    m = Metrics(reg, pol(MINIMAL_YAML), max_teams=30_000, max_reps=30_000, max_series=30_000)
    stop = threading.Event()
    pages: list[bytes] = []
    errors: list[BaseException] = []

    def scrape() -> None:
        try:
            while not stop.is_set():
                pages.append(snapshot(reg).render())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    t = threading.Thread(target=scrape)
    t.start()
    try:
        for i in range(20_000):  # a new series at every step: the dicts grow while read
            m.outcome("first_touch", "met", f"team-{i}").inc()
            m.breach("first_touch", f"team-{i % 300}", f"rep-{i}").inc()
            m.elapsed_of("first_touch", f"team-{i}").observe(i)
    finally:
        stop.set()
        t.join()
    assert len(pages) > 1 and not errors
    for text in pages:  # every page whole: it ends where its last family ends
        assert text.endswith(b"\n") and text.count(b"# TYPE ") == pages[-1].count(b"# TYPE ")
    assert snapshot(reg).render() == generate_latest(reg)
