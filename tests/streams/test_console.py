"""The status line and exit summary of ``leadsla run`` / ``leadsla demo``
(streams.console), read from a real engine's counters and snapshot; and the
demo's plan and calendar swap (streams.demo)."""

from __future__ import annotations

import io
import logging

import pytest

from leadsla.models.policy import load_policies
from leadsla.streams.console import (
    Console,
    PolicyCounts,
    Reading,
    clock_duration,
    counter_total,
    is_terminal,
    status_line,
    summary_lines,
    summary_log_line,
    take_reading,
    uptime_text,
)
from leadsla.streams.demo import DEMO_CALENDAR, TrafficGenerator, demo_policies
from leadsla.streams.settings import EXAMPLE_POLICIES
from tests.streams.conftest import T0, H, M, Rig, S

TWO = """\
policies:
  - name: first_touch
    start: lead.handed_off
    stop: [lead.contact_attempt, lead.connected]
    goal: 1h
  - name: disposition
    start: lead.handed_off
    stop: [lead.qualified, lead.disqualified]
    goal: 20h
"""


def _reading(rig: Rig, at: float = 0.0) -> Reading:
    return take_reading(rig.metrics, rig.engine.views.snapshot(), rig.policies.names, now=at)


def _busy_rig() -> Rig:
    """Lead A met, lead B breached (first_touch), both still open for
    disposition, one duplicate and one dead letter."""
    r = Rig(TWO, wall=T0 + 5 * S)
    r.live()
    r.send("A", "lead.handed_off", T0, "a-h", team="emea")
    r.send("B", "lead.handed_off", T0, "b-h", team="na_east")
    r.send("A", "lead.handed_off", T0, "a-h", team="emea")  # duplicate
    r.send_raw(b"C", b"{not json")
    r.wall.now = T0 + 10 * M
    r.send("A", "lead.contact_attempt", T0 + 5 * M, "a-c")
    r.wall.now = T0 + 10 * M + 3 * S  # the watermark (wall - 2 s) passes the attempt
    r.engine.tick()
    r.wall.now = T0 + H + 5 * S  # past first_touch's deadline plus the lateness
    r.engine.tick()
    return r


def test_a_reading_has_the_engines_figures() -> None:
    r = _busy_rig()
    got = _reading(r, at=12.0)
    assert got == Reading(
        at=12.0, accepted=3, duplicates=1, dead_letters=1, lag=0, ready=got.ready, partitions=1,
        policies={"first_touch": PolicyCounts(met=1, breached=1, open=0),
                  "disposition": PolicyCounts(met=0, breached=0, open=2)},
    )
    assert got.records == 5
    # The same figures as /metrics.
    assert got.policies["first_touch"].met == r.sample(
        "leadsla_sla_outcomes_total", policy="first_touch", outcome="met", team="emea")


def test_counter_total_sums_children_and_filters_by_label() -> None:
    r = _busy_rig()
    assert counter_total(r.metrics.outcomes) == 2
    assert counter_total(r.metrics.outcomes, outcome="breached", team="na_east") == 1
    assert counter_total(r.metrics.outcomes, policy="nope") == 0
    assert counter_total(r.metrics.duplicates) == 1


def test_status_line() -> None:
    prev = Reading(at=10.0, accepted=100, duplicates=0, dead_letters=2, lag=5, ready=True, partitions=4)
    cur = Reading(at=15.0, accepted=1_300, duplicates=10, dead_letters=3, lag=0, ready=True, partitions=4,
                  policies={"first_touch": PolicyCounts(1_020, 14, 3), "disposition": PolicyCounts(0, 0, 40)})
    assert status_line(cur, prev) == (
        "242 events/s | 1,300 events | lag 0 | dead letters 3 | first_touch 1,020 met, 14 breached, 3 open"
        " | disposition 0 met, 0 breached, 40 open"
    )
    slow = Reading(at=15.0, accepted=103, dead_letters=2, lag=None, ready=True, partitions=4)
    assert status_line(slow, prev) == "0.6 events/s | 103 events | lag ? | dead letters 2"


@pytest.mark.parametrize(
    ("reading", "first"),
    [
        (Reading(at=1.0), "waiting for partitions"),
        (Reading(at=1.0, partitions=2), "recovering state"),
        (Reading(at=1.0, partitions=2, ready=True), "0 events"),
        # The broker away: said instead of "recovering state" (nothing can recover meanwhile).
        (Reading(at=1.0, partitions=2, broker_away_s=75.0), "broker away for 1m 15s"),
        (Reading(at=1.0, partitions=0, broker_away_s=3.0), "broker away for 3s"),
    ],
)
def test_status_line_says_when_the_worker_is_not_processing_yet(reading: Reading, first: str) -> None:
    assert status_line(reading).split(" | ")[0] == first


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45.9, "45s"), (133, "2m 13s"), (3733, "1h 02m 13s"), (3 * 86400 + 4 * 3600 + 5 * 60, "3d 4h 05m")],
)
def test_uptime_text(seconds: float, text: str) -> None:
    assert uptime_text(seconds) == text


def test_summary_table_and_log_line() -> None:
    cur = Reading(at=0.0, accepted=1_820, duplicates=5, dead_letters=3, lag=0, ready=True, partitions=4,
                  policies={"first_touch": PolicyCounts(120, 14, 3), "demo_request_first_touch": PolicyCounts(1, 0, 0)})
    assert summary_lines(cur, 133) == [
        "stopped after 2m 13s: 1,820 events accepted (5 duplicates), 3 dead letters",
        "  policy                         met  breached      open",
        "  first_touch                    120        14         3",
        "  demo_request_first_touch         1         0         0",
    ]
    assert summary_log_line(cur, 133) == (
        "stopped after 2m 13s: 1820 events accepted (5 duplicates), 3 dead letters; "
        "first_touch 120 met, 14 breached, 3 open; demo_request_first_touch 1 met, 0 breached, 0 open"
    )


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_console_on_a_terminal_prints_lines_and_a_table_with_the_last_open_clocks() -> None:
    r = _busy_rig()
    out = io.StringIO()
    clock = _Clock()
    console = Console(lambda: _reading(r, clock.now), out, clock=clock)
    assert console.interval == 5.0
    clock.now = 105.0
    line = console.tick()
    assert "first_touch 1 met, 1 breached, 0 open | disposition 0 met, 0 breached, 2 open" in line
    # A stopping worker gives up its partitions before the summary: the open
    # clocks come from the last reading that had them.
    r.engine.revoke([0])
    clock.now = 100.0 + 75
    lines = console.summary()
    assert lines[0] == "stopped after 1m 15s: 3 events accepted (1 duplicates), 1 dead letters"
    assert lines[-1].split() == ["disposition", "0", "0", "2"]
    text = out.getvalue()
    assert text.splitlines()[0].endswith(line)
    assert text.splitlines()[1] == "leadsla: " + lines[0]
    assert "\x1b" not in text and "\r" not in text


def test_console_off_a_terminal_logs_plain_lines(caplog: pytest.LogCaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # ``leadsla`` commands run in earlier tests give the logger a handler of
    # their own (on a stream since closed) and stop propagation: undo that.
    own = logging.getLogger("leadsla")
    monkeypatch.setattr(own, "handlers", [])
    monkeypatch.setattr(own, "propagate", True)
    r = _busy_rig()
    console = Console(lambda: _reading(r), None)
    assert console.interval == 30.0
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="leadsla"):
        line = console.tick()
        (summary,) = console.summary()
    messages = [rec.getMessage() for rec in caplog.records if rec.name == "leadsla"]
    assert messages == [f"status: {line}", summary]
    assert summary.startswith("stopped after 0s: 3 events accepted (1 duplicates), 1 dead letters; first_touch 1 met")
    assert not any("\x1b" in m for m in messages)


def test_a_failing_reading_never_breaks_the_summary() -> None:
    out = io.StringIO()
    calls = {"n": 0}

    def read() -> Reading:
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("the consumer is gone")
        return Reading(at=0.0, accepted=7, ready=True, partitions=1, policies={"p": PolicyCounts(1, 2, 3)})

    console = Console(read, out)
    console.tick()
    assert console.summary()[0].startswith("stopped after 0s: 7 events accepted")


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        if self.closed:
            raise ValueError("I/O operation on closed file")  # as a real closed stream does
        return self.tty


def test_is_terminal() -> None:
    closed = _Stream(True)
    closed.close()
    assert is_terminal(_Stream(False), _Stream(True))
    assert not is_terminal(_Stream(False), None, closed)


# -- the demo ------------------------------------------------------------------------


def test_the_demo_swaps_business_hours_for_a_calendar_open_around_the_clock() -> None:
    example = load_policies(EXAMPLE_POLICIES)
    demo, replaced = demo_policies(example)
    assert [(c.name, c.timezone) for c in replaced] == [("sales_office", "America/New_York")]
    assert all(p.calendar is DEMO_CALENDAR for p in demo.policies)
    assert demo.calendars == {"demo_24x7": DEMO_CALENDAR}
    # Everything else stays, and the example itself is not changed.
    assert [(p.name, p.goal_us, p.selectors, p.match) for p in demo.policies] == [
        (p.name, p.goal_us, p.selectors, p.match) for p in example.policies]
    assert demo.targets == example.targets
    assert {p.calendar.name for p in load_policies(EXAMPLE_POLICIES).policies} == {"sales_office"}
    # A file without business hours is left alone.
    assert demo_policies(demo) == (demo, [])


@pytest.mark.parametrize("hour", ["03:00", "12:00", "22:30"])
def test_the_demo_plan_has_live_work_at_any_hour(hour: str) -> None:
    from leadsla.models.events import parse_timestamp_us

    now = parse_timestamp_us(f"2026-11-29T{hour}:00Z")  # a Sunday: the office is closed all day
    policies, _ = demo_policies(load_policies(EXAMPLE_POLICIES))
    plan = TrafficGenerator(policies).plan(now)
    times = [parse_timestamp_us(str(e["occurred_at"])) for e in plan.past]
    assert times == sorted(times) and max(times) <= now
    assert all(at > now for at, _ in plan.future)
    # Follow-ups in the demo's first two minutes, and handoffs in the last
    # ones whose events the watermark (two minutes behind) has yet to apply.
    assert sum(1 for at, _ in plan.future if at <= now + 2 * 60 * S) >= 2
    assert sum(1 for t in times if t > now - 2 * 60 * S) >= 2
    # The showcase lead: handed off 50 minutes ago, first contacted 45 s from now.
    mine = [e for e in plan.past if e["lead_id"] == plan.showcase]
    assert [e["type"] for e in mine][-1] == "lead.handed_off"
    assert parse_timestamp_us(str(mine[-1]["occurred_at"])) == now - 50 * M
    first = next(e for at, e in plan.future if e["lead_id"] == plan.showcase)
    assert (first["type"], first["occurred_at"]) == ("lead.contact_attempt", f"2026-11-29T{hour}:45Z")


@pytest.mark.parametrize(("seconds", "calendar", "text"), [
    (38 * 3600, "emea", "38h bh"),            # a day and a half of 24 h would be 1d14h: never days
    (2 * 3600 + 5 * 60, "emea", "2h05m bh"),
    (2 * 3600 + 5 * 60 + 59, "emea", "2h05m bh"),  # whole minutes, as the team screen shows them
    (45 * 60, "emea", "45m bh"),
    (3599.9, "emea", "59m bh"),
    (200 * 3600, "emea", "200h bh"),
    (20, "emea", "<1m bh"),
    (0, "emea", "0m bh"),
    (38 * 3600, None, "1d14h"),                 # 24x7: as before
    (2 * 3600 + 5 * 60 + 7.4, None, "2h5m7s"),
    (0, None, "0s"),
    (None, "emea", "-"),
    (None, None, "-"),
])
def test_clock_durations_under_a_calendar_are_business_hours(seconds: float | None, calendar: str | None,
                                                             text: str) -> None:
    assert clock_duration(seconds, calendar) == text
