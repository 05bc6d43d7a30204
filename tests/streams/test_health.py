"""streams.health without a broker: the backoff schedule, waiting for the
broker, the up/down state machine with a fake probe and fake clocks, the log
filter, and the Faust wiring on a stand-in app."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from prometheus_client import CollectorRegistry

from leadsla.streams import health as health_mod
from leadsla.streams.health import (
    BrokerErrorFilter,
    BrokerHealth,
    backoff,
    is_connection_error,
    wait_for_broker,
    watch_broker,
)
from leadsla.streams.settings import Settings

WHERE = "kafka-1:9092"


class FakeProbe:
    """Answers from a script: None (up) or a reason, the last one repeated."""

    def __init__(self, *answers: str | None) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self) -> str | None:
        self.calls += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    # leadsla's own logger, as the worker sets it up (its own handler, no
    # propagation), is not where caplog listens: use a child that propagates.
    lg = logging.getLogger("leadsla.test_health")
    lg.setLevel(logging.DEBUG)
    yield lg


def lines(caplog: pytest.LogCaptureFixture, name: str = "leadsla.test_health") -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == name]


# -- backoff and waiting ----------------------------------------------------------


def take(it: Iterator[float], n: int) -> list[float]:
    return [next(it) for _ in range(n)]


def test_backoff_doubles_from_one_second_up_to_the_cap() -> None:
    assert take(backoff(), 9) == [1, 2, 4, 8, 16, 30, 30, 30, 30]
    assert take(backoff(cap=5), 5) == [1, 2, 4, 5, 5]
    assert take(backoff(first=0.5, cap=3, factor=3), 4) == [0.5, 1.5, 3, 3]
    assert take(backoff(first=10, cap=2), 2) == [2, 2]  # never more than the cap, even the first


async def test_waiting_logs_one_line_per_attempt_with_the_next_pause(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    probe = FakeProbe("connection refused", "connection refused", "unknown host", None)
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    caplog.set_level(logging.DEBUG)
    assert await wait_for_broker(probe, WHERE, sleep=sleep, logger=logger) == 4
    assert slept == [1, 2, 4]
    assert lines(caplog) == [
        ("WARNING", "waiting for the broker at kafka-1:9092 (attempt 1, next in 1 s): connection refused"),
        ("WARNING", "waiting for the broker at kafka-1:9092 (attempt 2, next in 2 s): connection refused"),
        ("WARNING", "waiting for the broker at kafka-1:9092 (attempt 3, next in 4 s): unknown host"),
        ("INFO", "the broker at kafka-1:9092 answers (attempt 4)"),
    ]


async def test_waiting_reaches_the_cap_and_stays_there(logger: logging.Logger, caplog: pytest.LogCaptureFixture) -> None:
    probe = FakeProbe(*(["no answer within 2 s"] * 8), None)
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    caplog.set_level(logging.DEBUG)
    assert await wait_for_broker(probe, WHERE, cap=30, sleep=sleep, logger=logger) == 9
    assert slept == [1, 2, 4, 8, 16, 30, 30, 30]
    assert lines(caplog)[5] == ("WARNING", "waiting for the broker at kafka-1:9092 (attempt 6, next in 30 s): no answer within 2 s")


async def test_a_broker_already_there_is_not_mentioned(logger: logging.Logger, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    assert await wait_for_broker(FakeProbe(None), WHERE, logger=logger) == 1
    assert lines(caplog) == []


async def test_waiting_can_be_cancelled(logger: logging.Logger) -> None:
    task = asyncio.create_task(wait_for_broker(FakeProbe("connection refused"), WHERE, first=60, logger=logger))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_pauses_print_as_whole_seconds_or_one_decimal() -> None:
    assert [health_mod._seconds(s) for s in (1, 2.0, 0.3, 9.94, 10.4, 15.6, 30)] == ["1", "2", "0.3", "9.9", "10", "16", "30"]


# -- the state machine -------------------------------------------------------------


def monitor(probe: FakeProbe, logger: logging.Logger, clock: Clock | None = None, wall: Clock | None = None) -> BrokerHealth:
    return BrokerHealth(probe, WHERE, clock=clock or Clock(), wall=wall or Clock(1_800_000_000.0), logger=logger)


async def test_an_outage_is_one_line_when_it_starts_and_one_when_it_ends(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    clock, wall = Clock(100.0), Clock(1_800_000_000.0)
    probe = FakeProbe(None, "connection refused")
    h = monitor(probe, logger, clock, wall)
    events: list[tuple[str, bool, float | None]] = []
    h.on_down(lambda m: events.append(("down", m.up, m.down_since)))

    async def back(m: BrokerHealth) -> None:
        events.append(("up", m.up, m.down_since))

    h.on_up(back)
    caplog.set_level(logging.DEBUG)

    assert h.up and h.down_since is None and h.outages == 0 and h.down_for() == 0.0
    assert await h.check() is True
    assert lines(caplog) == [] and events == []

    assert await h.check() is False  # the probe fails, and fails again when asked once more
    assert probe.calls == 3
    assert not h.up and h.down_since == 1_800_000_000.0 and h.outages == 1
    assert h.problem == "connection refused"
    clock.t += 7
    for _ in range(5):  # the outage goes on: nothing more is said
        assert await h.check() is False
        h.count_suppressed()
    assert h.down_for() == 7.0
    assert events == [("down", False, 1_800_000_000.0)]

    probe.answers = [None]
    assert await h.check() is True
    assert h.up and h.down_since is None and h.problem is None and h.down_for() == 0.0
    assert await h.check() is True
    assert events == [("down", False, 1_800_000_000.0), ("up", True, None)]
    assert lines(caplog) == [
        ("WARNING", "lost the broker at kafka-1:9092: connection refused; not ready until it is back "
                    "(the Kafka client's connection errors are counted, not logged, meanwhile)"),
        ("WARNING", "broker back after 7 s at kafka-1:9092 (5 Kafka client errors not logged meanwhile)"),
    ]
    assert h.outages == 1 and h.suppressed == 5 and h.suppressed_total == 5


async def test_each_outage_counts_and_reports_its_own_suppressed_lines(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    probe = FakeProbe("refused")
    h = monitor(probe, logger, clock)
    caplog.set_level(logging.DEBUG)
    for outage, (seconds, dropped) in enumerate([(3.5, 2), (42.0, 0)], start=1):
        probe.answers = ["refused"]
        await h.check()
        for _ in range(dropped):
            h.count_suppressed()
        clock.t += seconds
        probe.answers = [None]
        await h.check()
        assert h.outages == outage
    assert [m for _, m in lines(caplog) if m.startswith("broker back")] == [
        "broker back after 3.5 s at kafka-1:9092 (2 Kafka client errors not logged meanwhile)",
        "broker back after 42 s at kafka-1:9092 (0 Kafka client errors not logged meanwhile)",
    ]
    assert h.suppressed_total == 2


async def test_one_lost_answer_is_not_an_outage(logger: logging.Logger, caplog: pytest.LogCaptureFixture) -> None:
    probe = FakeProbe("no answer within 2 s", None)
    h = monitor(probe, logger)
    h.on_down(lambda m: pytest.fail("no outage"))
    caplog.set_level(logging.DEBUG)
    assert await h.check() is True
    assert probe.calls == 2 and h.outages == 0 and lines(caplog) == []


async def test_what_the_comeback_callbacks_return_is_said_in_the_comeback_line(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    probe = FakeProbe("refused")
    h = monitor(probe, logger, clock)
    order: list[str] = []

    async def emptied(m: BrokerHealth) -> str:
        order.append("emptied")
        return "empty: it lost its topics"

    def broken(m: BrokerHealth) -> str:
        raise RuntimeError("boom")

    h.on_up(emptied)
    h.on_up(lambda m: order.append("plain") and None)  # returns None: nothing to add
    h.on_up(broken)
    h.on_up(lambda m: "topics created again")
    caplog.set_level(logging.DEBUG)
    await h.check()
    clock.t += 12
    probe.answers = [None]
    await h.check()
    assert order == ["emptied", "plain"]
    said = lines(caplog)
    # The comeback line comes after the callbacks ran (a broken one is logged first).
    assert [lvl for lvl, _ in said] == ["WARNING", "ERROR", "WARNING"]
    assert said[2][1] == ("broker back after 12 s at kafka-1:9092, empty: it lost its topics, topics created again "
                          "(0 Kafka client errors not logged meanwhile)")


async def test_a_broken_callback_is_logged_and_the_others_still_run(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    h = monitor(FakeProbe("refused"), logger)
    ran = []

    def broken(m: BrokerHealth) -> None:
        raise RuntimeError("boom")

    h.on_down(broken)
    h.on_down(lambda m: ran.append(m.up))
    caplog.set_level(logging.DEBUG)
    assert await h.check() is False
    assert ran == [False]
    assert [lvl for lvl, _ in lines(caplog)] == ["WARNING", "ERROR"]
    assert lines(caplog)[1][1].startswith("broker health callback ")


async def test_run_checks_every_interval_and_at_once_when_suspected(logger: logging.Logger) -> None:
    probe = FakeProbe(None)
    h = BrokerHealth(probe, WHERE, interval=60, min_gap=10, logger=logger)
    h.suspect()  # not running yet: nothing to wake
    assert not h.suspected
    task = asyncio.create_task(h.run())
    await asyncio.sleep(0.02)
    assert probe.calls == 0  # the first periodic check is a minute away
    h.suspect()
    assert h.suspected
    await asyncio.sleep(0.02)
    assert probe.calls == 1 and not h.suspected
    h.suspect()  # within min_gap of the last suspicion: ignored
    await asyncio.sleep(0.02)
    assert probe.calls == 1 and not h.suspected
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    fast = FakeProbe(None)
    h = BrokerHealth(fast, WHERE, interval=0.01, logger=logger)
    task = asyncio.create_task(h.run())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fast.calls >= 5


async def test_a_probe_that_raises_does_not_stop_the_checks(logger: logging.Logger, caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    async def probe() -> str | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("bug")
        return None

    h = BrokerHealth(probe, WHERE, interval=0.01, logger=logger)
    caplog.set_level(logging.DEBUG)
    task = asyncio.create_task(h.run())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls >= 2 and h.up
    assert [m for _, m in lines(caplog)] == ["broker health check failed"]


# -- the log filter -----------------------------------------------------------------


def record(msg: str, level: int = logging.ERROR, name: str = "aiokafka", exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, None) if exc is not None else None
    return logging.LogRecord(name, level, __file__, 1, msg, None, exc_info)


@pytest.mark.parametrize(
    "msg",
    [
        "Unable connect to node with id 111: [Errno 111] Connect call failed ('127.0.0.1', 9092)",
        "Unable to update metadata from [111]",
        "Failed fetch messages from 111: NodeNotReadyError: Attempt to send a request to node which is not ready (node id 111).",
        "Failed fetch messages from 111: KafkaConnectionError: Connection at 127.0.0.1:9092 closed",
        "Group Coordinator Request failed: NodeNotReadyError: Attempt to send a request to node which is not ready",
        "Heartbeat session expired - marking coordinator dead",
        "Marking the coordinator dead (node 111)for group leadsla.",
        'Unable connect to "kafka-1:9092": [Errno -2] Name or service not known',
        "Got error produce response: RequestTimedOutError",
        "OffsetCommit failed for group leadsla due to group error ([Error 25] UnknownMemberIdError: leadsla), "
        "will rejoin",
        "Timer commit is overlapping (interval=0.5 runtime=2.1)",
    ],
)
def test_the_kafka_clients_connection_errors_are_recognised(msg: str) -> None:
    assert is_connection_error(record(msg))


@pytest.mark.parametrize(
    "rec",
    [
        record("Agent leadsla.process crashed: ValueError: bad value"),
        record("Timer deadlines woke up too late, with a drift of 1.2s", logging.WARNING, "mode.timers"),
        record("Unexpected error", exc=ValueError("not a broker problem: connection in the message")),
        record("Crashed reason=%r", exc=KeyError("x")),
    ],
)
def test_other_errors_are_not_connection_errors(rec: logging.LogRecord) -> None:
    assert not is_connection_error(rec)


def test_an_exception_decides_over_the_message() -> None:
    assert is_connection_error(record("Error in fetch", exc=KafkaConnectionError("closed")))
    assert is_connection_error(record("oops", exc=ConnectionResetError()))
    assert is_connection_error(record("oops", exc=TimeoutError()))


@pytest.fixture
def quiet(logger: logging.Logger) -> Iterator[tuple[BrokerHealth, BrokerErrorFilter]]:
    h = BrokerHealth(FakeProbe(None), WHERE, logger=logger)
    f = BrokerErrorFilter(h)
    yield h, f
    f.remove()


def test_the_filter_drops_connection_errors_only_while_the_broker_is_down(
    quiet: tuple[BrokerHealth, BrokerErrorFilter],
) -> None:
    h, f = quiet
    counted: list[int] = []
    h.on_suppressed(lambda: counted.append(1))
    refused = record("Unable connect to node with id 1: [Errno 111] Connect call failed")
    crash = record("Agent crashed: ValueError")
    h.up = False
    assert f.filter(refused) is False
    assert f.filter(record("Heartbeat session expired - marking coordinator dead")) is False
    assert f.filter(crash) is True  # a genuine error is logged, outage or not
    assert f.filter(record("Unable connect to node", logging.INFO)) is True  # below WARNING: asked for
    assert (h.suppressed, h.suppressed_total, len(counted)) == (2, 2, 2)
    h.up = True
    assert f.filter(refused) is True
    assert f.filter(crash) is True
    assert h.suppressed_total == 2


async def test_right_after_a_comeback_the_clients_rejoining_is_counted_not_logged(logger: logging.Logger) -> None:
    clock = Clock()
    probe = FakeProbe("refused")
    h = BrokerHealth(probe, WHERE, settle=20.0, clock=clock, logger=logger)
    f = BrokerErrorFilter(h)
    rejoin = record("Heartbeat failed: local member_id was not recognized; resetting and re-joining group")
    crash = record("Agent crashed: ValueError")
    assert not h.settling()  # never down: nothing to settle
    assert f.filter(rejoin) is True
    await h.check()
    clock.t += 30
    probe.answers = [None]
    await h.check()
    assert h.up and h.settling()
    clock.t += 19.5
    assert f.filter(rejoin) is False
    assert f.filter(crash) is True  # a genuine error is logged all the same
    assert h.suppressed == 1
    clock.t += 0.5
    assert not h.settling()
    assert f.filter(rejoin) is True


async def test_while_up_a_connection_error_is_held_until_the_check_it_asked_for_answers(
    quiet: tuple[BrokerHealth, BrokerErrorFilter],
) -> None:
    h, f = quiet
    h.probe = FakeProbe("refused")
    task = asyncio.create_task(h.run())
    await asyncio.sleep(0.01)
    refused = record("Unable connect to node with id 1: [Errno 111] Connect call failed")
    assert f.filter(refused) is False  # held: the check decides whether it is an outage
    assert h.suspected
    assert f.filter(refused) is False
    assert h.suppressed_total == 0
    await asyncio.sleep(0.05)
    assert not h.up and not h.suspected  # the check found the outage at once
    assert h.suppressed_total == 2  # the outage's first line was leadsla's own; both were dropped
    assert f.filter(refused) is False
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_held_error_is_logged_when_the_broker_answers(quiet: tuple[BrokerHealth, BrokerErrorFilter]) -> None:
    h, f = quiet
    h.probe = FakeProbe(None)  # one node unreachable, the broker answers
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, rec: logging.LogRecord) -> None:
            seen.append(rec)

    lg = logging.getLogger("aiokafka.test_held")
    lg.propagate = False
    lg.addHandler(Keep())
    lg.addFilter(f)
    task = asyncio.create_task(h.run())
    await asyncio.sleep(0.01)
    try:
        lg.warning("Unable connect to node with id 2: [Errno 111] Connect call failed")
        assert seen == []  # held while the check runs
        await asyncio.sleep(0.05)
        assert h.up and [r.getMessage() for r in seen] == [
            "Unable connect to node with id 2: [Errno 111] Connect call failed"]
        assert h.suppressed_total == 0
    finally:
        lg.removeFilter(f)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_install_covers_the_library_loggers_and_their_children(quiet: tuple[BrokerHealth, BrokerErrorFilter]) -> None:
    h, f = quiet
    child = logging.getLogger("aiokafka.consumer.fetcher")
    other = logging.getLogger("leadsla.test_health.other")
    f.install()
    h.up = False
    for lg in (logging.getLogger("aiokafka"), child, logging.getLogger("faust"), logging.getLogger("mode")):
        assert f in lg.filters
        assert lg.filter(record("Unable to update metadata from [1]", name=lg.name)) is False
    assert f not in other.filters
    f.install()  # twice: still once on each logger
    assert child.filters.count(f) == 1
    f.remove()
    assert f not in child.filters
    assert child.filter(record("Unable to update metadata from [1]", name=child.name)) is True


# -- the Faust wiring ---------------------------------------------------------------


class FakeSignal:
    def __init__(self) -> None:
        self.receivers: list[Callable[..., Any]] = []

    def connect(self, fun: Callable[..., Any]) -> Callable[..., Any]:
        self.receivers.append(fun)
        return fun

    async def send(self, **kwargs: Any) -> None:
        for fun in self.receivers:
            await fun(None, **kwargs)


class FakeApp:
    """What watch_broker uses of a faust.App."""

    def __init__(self) -> None:
        self.on_partitions_revoked = FakeSignal()
        self.tasks: list[Callable[[], Any]] = []
        self.tables = {
            name: SimpleNamespace(changelog_topic=SimpleNamespace(get_topic_name=lambda n=name: f"leadsla-{n}-changelog"))
            for name in ("leads", "team-windows")
        }

    def task(self, fun: Callable[[], Any]) -> Callable[[], Any]:
        self.tasks.append(fun)
        return fun


def sample(registry: CollectorRegistry, name: str) -> float | None:
    return registry.get_sample_value(name)


@pytest.fixture
def wired(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeApp, SimpleNamespace, CollectorRegistry, BrokerHealth, list[Any]]:
    created: list[Any] = []

    async def ensure_topics(bootstrap: str, names: list[str], partitions: int, timeout: float = 30.0,
                            security: Any = None) -> list[str]:
        created.append((bootstrap, names, partitions))
        return names[:1]

    monkeypatch.setattr(health_mod, "ensure_topics", ensure_topics)
    app, engine, registry = FakeApp(), SimpleNamespace(ready=True), CollectorRegistry()
    settings = Settings(broker="kafka://kafka-1:9092", partitions=8)
    h = watch_broker(app, engine, settings, registry)
    return app, engine, registry, h, created


async def test_an_outage_makes_the_worker_not_ready_until_the_broker_is_back(
    wired: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (here the broker comes back without one of the worker's topics, no changelog)
    # A worker gives leadsla's logger its own handler; here caplog must see it.
    monkeypatch.setattr(logging.getLogger("leadsla"), "propagate", True)
    app, engine, registry, h, created = wired
    assert h.where == "kafka-1:9092" and h.interval == 2.0 and h.settle == 20.0
    assert sample(registry, "leadsla_broker_up") == 1
    h.probe = FakeProbe("connection refused")
    await h.check()
    assert engine.ready is False
    assert sample(registry, "leadsla_broker_up") == 0
    assert sample(registry, "leadsla_broker_outages_total") == 1
    h.count_suppressed()
    assert sample(registry, "leadsla_broker_errors_suppressed_total") == 1
    h.probe = FakeProbe(None)
    caplog.set_level(logging.WARNING, logger="leadsla")
    await h.check()
    assert engine.ready is True
    assert sample(registry, "leadsla_broker_up") == 1
    # The worker's topics, changelogs included, are there again with its partition count.
    assert created == [("kafka-1:9092", ["lead-events", "lead-events-dlq", "sla-outcomes", "sla-periods",
                                         "leadsla-period-reports", "leadsla-leads-changelog", "leadsla-team-windows-changelog"], 8)]
    # (a set: in the whole suite another test's handler can make caplog see a record twice)
    back = {r.getMessage() for r in caplog.records if r.getMessage().startswith("broker back")}
    assert back == {"broker back after 0.0 s at kafka-1:9092, without lead-events: created them again with 8 "
                    "partitions; what they held is gone (1 Kafka client errors not logged meanwhile)"}


CHANGELOGS = ["leadsla-leads-changelog", "leadsla-team-windows-changelog"]


async def test_a_broker_back_empty_is_one_line_and_the_state_is_written_again(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logging.getLogger("leadsla"), "propagate", True)

    async def ensure_topics(bootstrap: str, names: list[str], partitions: int, timeout: float = 30.0,
                            security: Any = None) -> list[str]:
        return names  # the broker has none of them

    monkeypatch.setattr(health_mod, "ensure_topics", ensure_topics)
    restored: list[list[str]] = []

    async def restore(lost: list[str]) -> int:
        restored.append(lost)
        return 812

    engine = SimpleNamespace(ready=True)
    h = watch_broker(FakeApp(), engine, Settings(broker="kafka://kafka-1:9092", partitions=8), CollectorRegistry(),
                     restore)
    h.probe = FakeProbe("connection refused")
    await h.check()
    h.probe = FakeProbe(None)
    caplog.set_level(logging.WARNING, logger="leadsla")
    await h.check()
    assert restored == [CHANGELOGS]  # only the changelogs: the input and output topics are not the worker's to fill
    assert engine.ready is True
    back = {r.getMessage() for r in caplog.records if r.getMessage().startswith("broker back")}
    assert back == {
        "broker back after 0.0 s at kafka-1:9092, empty: it lost every topic of this worker and what they held, as a "
        "broker that keeps its data in memory does when it restarts; created lead-events, lead-events-dlq, "
        "sla-outcomes, sla-periods, leadsla-period-reports, leadsla-leads-changelog, leadsla-team-windows-changelog "
        "again with 8 partitions; this worker's state written to the new changelogs (812 records) "
        "(0 Kafka client errors not logged meanwhile)"}


async def test_state_that_cannot_be_written_again_is_said_in_the_same_line(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logging.getLogger("leadsla"), "propagate", True)

    async def ensure_topics(bootstrap: str, names: list[str], partitions: int, timeout: float = 30.0,
                            security: Any = None) -> list[str]:
        return names[-1:]  # one changelog only

    async def restore(lost: list[str]) -> int:
        raise TimeoutError

    monkeypatch.setattr(health_mod, "ensure_topics", ensure_topics)
    h = watch_broker(FakeApp(), SimpleNamespace(ready=True), Settings(broker="kafka://kafka-1:9092"),
                     CollectorRegistry(), restore)
    h.probe = FakeProbe("connection refused")
    await h.check()
    h.probe = FakeProbe(None)
    caplog.set_level(logging.WARNING, logger="leadsla")
    await h.check()
    back = {r.getMessage() for r in caplog.records if r.getMessage().startswith("broker back")}
    assert back == {"broker back after 0.0 s at kafka-1:9092, without leadsla-team-windows-changelog: created them "
                    "again with 4 partitions; what they held is gone; this worker's state could not be written to the "
                    "new changelogs (TimeoutError) (0 Kafka client errors not logged meanwhile)"}


async def test_after_a_revocation_during_the_outage_readiness_waits_for_recovery(wired: Any) -> None:
    app, engine, registry, h, _ = wired
    h.probe = FakeProbe("connection refused")
    await h.check()
    await app.on_partitions_revoked.send(revoked=set())
    h.probe = FakeProbe(None)
    await h.check()
    assert engine.ready is False  # the next recovery (Engine.rebuild) sets it


async def test_a_worker_not_ready_before_the_outage_is_not_made_ready_by_its_end(wired: Any) -> None:
    app, engine, registry, h, _ = wired
    engine.ready = False
    h.probe = FakeProbe("connection refused")
    await h.check()
    h.probe = FakeProbe(None)
    await h.check()
    assert engine.ready is False


async def test_the_task_quiets_the_library_loggers_while_it_runs(wired: Any) -> None:
    app, engine, registry, h, _ = wired
    h.probe = FakeProbe(None)
    (task_fn,) = app.tasks
    fetcher = logging.getLogger("aiokafka.consumer.fetcher")
    task = asyncio.create_task(task_fn())
    await asyncio.sleep(0.01)
    assert any(isinstance(f, BrokerErrorFilter) for f in fetcher.filters)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not any(isinstance(f, BrokerErrorFilter) for f in fetcher.filters)
