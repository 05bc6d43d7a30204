"""KafkaSink against a fake producer that behaves like aiokafka's: it refuses
a record larger than its max request size synchronously, fails sends and
deliveries on demand, and records what it took, in order."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    RequestTimedOutError,
    TopicAuthorizationFailedError,
)
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from prometheus_client import CollectorRegistry

from leadsla.models.clock import LeadState
from leadsla.models.policy import parse_policies
from leadsla.streams import sink as sink_module
from leadsla.streams.codec import LeadEntry, lead_key, state_from_bytes
from leadsla.streams.metrics import Metrics
from leadsla.streams.sink import (
    DEAD_LETTER_HEADROOM,
    PRODUCER_MAX_REQUEST_SIZE,
    SINK_TOPICS,
    KafkaSink,
    cut_dead_letter,
)

from .conftest import MINIMAL_YAML

LEADS, WINDOWS, OUTCOMES, DLQ = "app-leads-changelog", "app-team-windows-changelog", "sla-outcomes", "lead-events-dlq"
LEAD = "lead-4711"  # must never show in a log line


def size(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]] | None) -> int:
    return DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers or [])


class FakeProducer:
    """``refuse(topic, key, attempt)`` returns an exception for ``send`` to
    raise (attempt counts this record's sends from 0), ``fail(topic, key)``
    one for its delivery future to fail with; ``None``: accepted."""

    def __init__(
        self,
        max_request_size: int = PRODUCER_MAX_REQUEST_SIZE,
        refuse: Callable[[str, bytes | None, int], BaseException | None] = lambda t, k, n: None,
        fail: Callable[[str, bytes | None], BaseException | None] = lambda t, k: None,
    ) -> None:
        self.max_request_size = max_request_size
        self.refuse, self.fail = refuse, fail
        self.attempts: dict[tuple[str, bytes | None], int] = {}
        self.sent: list[tuple[str, bytes | None, bytes | None, int | None, list[tuple[str, bytes]] | None]] = []
        self.futures: list[asyncio.Future[Any]] = []

    async def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                   partition: int | None = None, headers: list[tuple[str, bytes]] | None = None) -> asyncio.Future[Any]:
        n = self.attempts.get((topic, key), 0)
        self.attempts[(topic, key)] = n + 1
        # aiokafka's own check, before anything is queued (producer._serialize).
        if size(key, value, headers) > self.max_request_size:
            raise MessageSizeTooLargeError(f"The message is {size(key, value, headers)} bytes when serialized")
        exc = self.refuse(topic, key, n)
        if exc is not None:
            raise exc
        self.sent.append((topic, key, value, partition, headers))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        failure = self.fail(topic, key)
        if failure is None:
            future.set_result(SimpleNamespace(topic=topic, partition=partition or 0, offset=len(self.sent) - 1))
        else:
            future.set_exception(failure)
        self.futures.append(future)
        return future


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry(), parse_policies(MINIMAL_YAML), max_teams=10)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The sink's backoff waits, in seconds, without waiting."""
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float) -> None:
        slept.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(sink_module, "asyncio", SimpleNamespace(sleep=sleep, Future=asyncio.Future, Lock=asyncio.Lock, wait=asyncio.wait))
    return slept


def make_sink(producer: FakeProducer, metrics: Metrics | None = None, **kw: Any) -> KafkaSink:
    return KafkaSink(lambda: producer, LEADS, WINDOWS, OUTCOMES, DLQ, metrics=metrics, **kw)


def errors(metrics: Metrics) -> dict[str, float]:
    return {t: metrics.registry.get_sample_value("leadsla_sink_send_errors_total", {"topic": t}) or 0.0 for t in SINK_TOPICS}


def truncated(metrics: Metrics) -> float:
    return metrics.registry.get_sample_value("leadsla_dead_letters_truncated_total") or 0.0


async def settle() -> None:
    """Let the delivery callbacks the loop has scheduled run."""
    for _ in range(3):
        await asyncio.sleep(0)


def queue_batch(sink: KafkaSink, big: bytes) -> None:
    """A batch as one record pass writes it: a dead letter between records
    before and after it."""
    sink.outcome("lead-1", b'{"outcome": "met"}')
    sink.dead_letter(LEAD.encode(), big, "too_large", "record is big")
    sink.outcome("lead-2", b'{"outcome": "breached"}')
    sink.window(3, "3600|0|handoffs|emea|3", 2.0)


# -- dead letters: whole when they fit, cut when they cannot -------------------------


async def test_a_dead_letter_that_fits_goes_out_whole(metrics: Metrics) -> None:
    producer = FakeProducer()
    sink = make_sink(producer, metrics)
    value = b"x" * 900_000  # over LEADSLA_MAX_EVENT_BYTES, well under the producer's limit
    sink.dead_letter(LEAD.encode(), value, "too_large", "record is 900009 bytes; the limit is 65536")
    await sink.drain()
    assert producer.sent == [(DLQ, LEAD.encode(), value, None, [
        ("reason", b"too_large"), ("error", b"record is 900009 bytes; the limit is 65536")])]
    assert truncated(metrics) == 0


async def test_a_dead_letter_exactly_at_the_limit_is_not_cut(metrics: Metrics) -> None:
    producer = FakeProducer()
    sink = make_sink(producer, metrics)
    headers = [("reason", b"too_large"), ("error", b"e")]
    value = b"v" * (PRODUCER_MAX_REQUEST_SIZE - size(LEAD.encode(), b"", headers) - 2)
    assert size(LEAD.encode(), value, headers) == PRODUCER_MAX_REQUEST_SIZE
    sink.dead_letter(LEAD.encode(), value, "too_large", "e")
    await sink.drain()
    assert producer.sent == [(DLQ, LEAD.encode(), value, None, headers)]
    assert truncated(metrics) == 0


async def test_a_dead_letter_too_large_to_send_goes_out_cut(metrics: Metrics, caplog: pytest.LogCaptureFixture) -> None:
    producer = FakeProducer()
    sink = make_sink(producer, metrics)
    big = (bytes(range(256)) * 3907)[:1_000_000]  # not one repeated byte
    assert len(big) == 1_000_000
    queue_batch(sink, big)
    with caplog.at_level(logging.DEBUG, logger="leadsla"):
        await sink.drain()
        await settle()
    assert [(topic, key) for topic, key, *_ in producer.sent] == [
        (OUTCOMES, b"lead-1"), (DLQ, LEAD.encode()), (OUTCOMES, b"lead-2"), (WINDOWS, b'"3600|0|handoffs|emea|3"')]
    _, key, value, partition, headers = producer.sent[1]
    assert partition is None
    assert headers == [
        ("reason", b"too_large"),
        ("error", b"record is big"),
        ("original-size", b"1000000"),
        ("original-sha256", hashlib.sha256(big).hexdigest().encode()),
        ("truncated", b"true"),
    ]
    assert value is not None and value == big[: len(value)]
    # As long as fits below the limit minus the headroom, to within the
    # four bytes a length prefix can take.
    bound = PRODUCER_MAX_REQUEST_SIZE - DEAD_LETTER_HEADROOM
    assert bound - 4 <= size(key, value, headers) <= bound
    assert producer.attempts[(DLQ, LEAD.encode())] == 2  # whole first, then cut
    assert truncated(metrics) == 1
    assert errors(metrics) == dict.fromkeys(SINK_TOPICS, 0.0)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_the_cut_follows_the_producer_limit_the_sink_is_given(metrics: Metrics) -> None:
    producer = FakeProducer(max_request_size=100_000)
    sink = make_sink(producer, metrics, max_request_size=100_000)
    sink.dead_letter(b"k", b"z" * 150_000, "too_large", "big")
    await sink.drain()
    [(_, key, value, _, headers)] = producer.sent
    assert key == b"k" and value == b"z" * len(value)
    assert 100_000 - DEAD_LETTER_HEADROOM - 4 <= size(key, value, headers) <= 100_000 - DEAD_LETTER_HEADROOM
    assert dict(headers or [])["original-size"] == b"150000"


async def test_a_dead_letter_whose_key_alone_is_too_large_is_counted_and_the_rest_sent(
        metrics: Metrics, caplog: pytest.LogCaptureFixture) -> None:
    producer = FakeProducer(max_request_size=10_000)
    sink = make_sink(producer, metrics, max_request_size=10_000)
    sink.dead_letter(b"k" * 20_000, b"v", "too_large", "big")
    sink.outcome("lead-2", b"{}")
    with caplog.at_level(logging.ERROR, logger="leadsla"):
        await sink.drain()
    assert producer.sent == [(OUTCOMES, b"lead-2", b"{}", None, None)]
    assert errors(metrics)["dead_letters"] == 1 and truncated(metrics) == 0
    refused = size(b"k" * 20_000, b"v", [("reason", b"too_large"), ("error", b"big")])
    assert [r.getMessage() for r in caplog.records] == [
        f"a record for {DLQ} (dead_letters) was not written: MessageSizeTooLargeError: "
        f"[Error 10] MessageSizeTooLargeError: The message is {refused} bytes when serialized"]


def test_cut_dead_letter_keeps_key_and_headers_and_marks_the_cut() -> None:
    value = b"0123456789" * 1000
    got = cut_dead_letter(b"key", value, [("reason", b"too_large")], 5000)
    assert got is not None
    cut, headers = got
    assert cut == value[: len(cut)] and 4990 <= size(b"key", cut, headers) <= 5000
    assert headers == [("reason", b"too_large"), ("original-size", b"10000"),
                       ("original-sha256", hashlib.sha256(value).hexdigest().encode()), ("truncated", b"true")]
    assert cut_dead_letter(b"k" * 6000, value, [], 5000) is None


# -- any other refusal: retried when transient, counted when not, never fatal ---------


async def test_transient_errors_are_retried_with_backoff(metrics: Metrics, waits: list[float]) -> None:
    def refuse(topic: str, key: bytes | None, attempt: int) -> BaseException | None:
        if key == b"lead-1" and attempt < 2:
            return KafkaConnectionError() if attempt == 0 else KafkaTimeoutError()
        return None

    producer = FakeProducer(refuse=refuse)
    sink = make_sink(producer, metrics)
    sink.outcome("lead-1", b"a")
    sink.outcome("lead-2", b"b")
    await sink.drain()
    assert producer.sent == [(OUTCOMES, b"lead-1", b"a", None, None), (OUTCOMES, b"lead-2", b"b", None, None)]
    assert producer.attempts[(OUTCOMES, b"lead-1")] == 3
    assert waits == [0.1, 0.2]
    assert errors(metrics) == dict.fromkeys(SINK_TOPICS, 0.0)


async def test_a_drain_waiting_to_retry_is_not_overtaken(metrics: Metrics, waits: list[float]) -> None:
    """The timer drains while the agent's drain waits to retry: the newer
    changelog record of the lead must still be written after the older."""
    producer = FakeProducer(refuse=lambda t, k, n: KafkaConnectionError() if n == 0 and t == LEADS else None)
    sink = make_sink(producer, metrics)
    sink.persist(0, LEAD, None)
    first = asyncio.create_task(sink.flush())
    await asyncio.sleep(0)  # the first drain is now waiting to retry
    assert waits == [0.1] and producer.sent == []
    sink.outcome("lead-2", b"2")
    sink.persist(0, "lead-2", None)
    await sink.flush()
    await first
    assert [(t, k) for t, k, *_ in producer.sent] == [
        (LEADS, f'"{LEAD}"'.encode()), (OUTCOMES, b"lead-2"), (LEADS, b'"lead-2"')]
    assert sink.queue == []


async def test_retries_are_bounded_then_the_record_is_counted(
        metrics: Metrics, waits: list[float], caplog: pytest.LogCaptureFixture) -> None:
    producer = FakeProducer(refuse=lambda t, k, n: NotLeaderForPartitionError() if t == LEADS else None)
    sink = make_sink(producer, metrics)
    sink.persist(2, LEAD, None)
    sink.window(2, "86400|0|attempts|emea|2", 1.0)
    with caplog.at_level(logging.ERROR, logger="leadsla"):
        await sink.flush()
    assert producer.attempts[(LEADS, f'"{LEAD}"'.encode())] == 4  # the send and three retries
    assert waits == [0.1, 0.2, 0.4]
    assert producer.sent == [(WINDOWS, b'"86400|0|attempts|emea|2"', b"1.0", 2, None)]
    assert errors(metrics) == {**dict.fromkeys(SINK_TOPICS, 0.0), "lead_changelog": 1.0}
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"a record for {LEADS} (lead_changelog) was not written: NotLeaderForPartitionError")
    assert LEAD not in caplog.text


async def test_permanent_errors_are_not_retried_and_the_rest_of_the_batch_is_sent(
        metrics: Metrics, waits: list[float], caplog: pytest.LogCaptureFixture) -> None:
    def refuse(topic: str, key: bytes | None, attempt: int) -> BaseException | None:
        if key == LEAD.encode():
            return TopicAuthorizationFailedError()
        if key == b'"lead-odd"':
            return AssertionError(f"Unrecognized partition for {LEAD}")  # not a Kafka error: its text is not logged
        return None

    producer = FakeProducer(refuse=refuse)
    sink = make_sink(producer, metrics)
    sink.outcome("lead-1", b"1")
    sink.outcome(LEAD, b"2")
    sink.persist(1, "lead-odd", None)
    sink.dead_letter(LEAD.encode(), b"{bad", "malformed", "not JSON")
    sink.outcome("lead-3", b"3")
    with caplog.at_level(logging.ERROR, logger="leadsla"):
        await sink.flush()
    assert [(t, k) for t, k, *_ in producer.sent] == [(OUTCOMES, b"lead-1"), (OUTCOMES, b"lead-3")]
    assert waits == []
    assert errors(metrics) == {"outcomes": 1.0, "dead_letters": 1.0, "lead_changelog": 1.0, "window_changelog": 0.0,
                              "delivery_changelog": 0.0, "period_changelog": 0.0, "period_reports": 0.0,
                              "periods": 0.0}
    assert [r.getMessage() for r in caplog.records] == [
        f"a record for {OUTCOMES} (outcomes) was not written: TopicAuthorizationFailedError: "
        "[Error 29] TopicAuthorizationFailedError",
        f"a record for {DLQ} (dead_letters) was not written: TopicAuthorizationFailedError: "
        "[Error 29] TopicAuthorizationFailedError",
        f"a record for {LEADS} (lead_changelog) was not written: AssertionError",
    ]
    assert LEAD not in caplog.text


async def test_an_outcome_too_large_is_not_cut(metrics: Metrics) -> None:
    producer = FakeProducer(max_request_size=1000)
    sink = make_sink(producer, metrics, max_request_size=1000)
    sink.outcome("lead-1", b"o" * 2000)
    sink.outcome("lead-2", b"ok")
    await sink.drain()
    assert producer.sent == [(OUTCOMES, b"lead-2", b"ok", None, None)]
    assert errors(metrics)["outcomes"] == 1 and truncated(metrics) == 0


# -- delivery failures, reported through the future ---------------------------------


async def test_failed_deliveries_are_counted(metrics: Metrics, caplog: pytest.LogCaptureFixture) -> None:
    producer = FakeProducer(fail=lambda t, k: RequestTimedOutError() if k in (b"lead-1", LEAD.encode()) else None)
    sink = make_sink(producer, metrics)
    sink.outcome("lead-1", b"1")
    sink.outcome("lead-2", b"2")
    sink.dead_letter(LEAD.encode(), b"x", "malformed", "not JSON")
    with caplog.at_level(logging.ERROR, logger="leadsla"):
        await sink.drain()
        await settle()
    assert [(t, k) for t, k, *_ in producer.sent] == [(OUTCOMES, b"lead-1"), (OUTCOMES, b"lead-2"), (DLQ, LEAD.encode())]
    assert errors(metrics) == {**dict.fromkeys(SINK_TOPICS, 0.0), "outcomes": 1.0, "dead_letters": 1.0}
    assert [r.getMessage() for r in caplog.records] == [
        f"a record for {OUTCOMES} (outcomes) was not written: RequestTimedOutError: [Error 7] RequestTimedOutError",
        f"a record for {DLQ} (dead_letters) was not written: RequestTimedOutError: [Error 7] RequestTimedOutError",
    ]


async def test_a_cancelled_delivery_future_is_not_a_failure(metrics: Metrics) -> None:
    producer = FakeProducer()

    async def send(*args: Any, **kw: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.cancel()
        return future

    producer.send = send  # type: ignore[method-assign]
    sink = make_sink(producer, metrics)
    sink.outcome("lead-1", b"1")
    await sink.drain()
    await settle()
    assert errors(metrics) == dict.fromkeys(SINK_TOPICS, 0.0)


async def test_a_producer_returning_no_future_is_fine() -> None:
    sent = []

    class Bare:
        async def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                       partition: int | None = None, headers: Any = None) -> None:
            sent.append(key)

    sink = KafkaSink(Bare, LEADS, WINDOWS, OUTCOMES, DLQ)
    sink.outcome("lead-1", b"1")
    await sink.drain()
    assert sent == [b"lead-1"] and sink.queue == []


# -- logging: once per kind, then a count ------------------------------------------


async def test_repeated_failures_of_one_kind_are_logged_once_a_minute(
        metrics: Metrics, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    monkeypatch.setattr(sink_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    producer = FakeProducer(refuse=lambda t, k, n: TopicAuthorizationFailedError() if t == OUTCOMES else None)
    sink = make_sink(producer, metrics)
    with caplog.at_level(logging.ERROR, logger="leadsla"):
        for i in range(5):
            sink.outcome(f"lead-{i}", b"x")
        sink.window(0, "k", 1.0)
        await sink.drain()
        assert len(caplog.records) == 1
        now[0] += 61
        sink.outcome("lead-9", b"x")
        await sink.drain()
    assert errors(metrics)["outcomes"] == 6
    assert len(caplog.records) == 2
    assert caplog.records[1].getMessage().endswith("(4 more like it since the last report)")
    assert producer.sent == [(WINDOWS, b'"k"', b"1.0", 0, None)]


async def test_without_metrics_a_failure_is_still_survived() -> None:
    producer = FakeProducer(refuse=lambda t, k, n: TopicAuthorizationFailedError() if k == b"lead-1" else None)
    sink = make_sink(producer)
    sink.outcome("lead-1", b"1")
    sink.outcome("lead-2", b"2")
    await sink.drain()
    assert [k for _, k, *_ in producer.sent] == [b"lead-2"]


class DeliversLater(FakeProducer):
    """A producer whose every send is delivered 50 ms later; ``order`` says
    what was sent and delivered, in the order it happened."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []

    async def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                   partition: int | None = None, headers: list[tuple[str, bytes]] | None = None) -> asyncio.Future[Any]:
        self.order.append(f"send {topic} {key!r}")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def deliver() -> None:
            self.order.append(f"delivered {topic} {key!r}")
            future.set_result(None)

        asyncio.get_running_loop().call_later(0.05, deliver)
        return future


async def test_an_outcome_is_delivered_before_the_state_that_records_its_decision() -> None:
    """Killed between the two, a worker must decide again (and re-send the
    same decision_id), never hold state that says decided with no outcome."""
    producer = DeliversLater()
    order = producer.order
    sink = KafkaSink(lambda: producer, "leads-changelog", "windows-changelog", "outcomes", "dlq")
    sink.outcome("L1", b"{}")
    sink.persist(0, "L1", LeadEntry(0, LeadState()))
    await sink.flush()
    assert order[:3] == ["send outcomes b'L1'", "delivered outcomes b'L1'", f"send leads-changelog {lead_key('L1')!r}"]


async def test_a_drain_waits_once_for_all_its_outcomes_then_sends_the_states_in_order() -> None:
    """With the producer's linger, a wait per outcome would cost a linger per
    decision: the outcomes of one drain go out together and are waited for
    once, and every other record keeps its order."""
    producer = DeliversLater()
    order = producer.order
    sink = KafkaSink(lambda: producer, "leads-changelog", "windows-changelog", "outcomes", "dlq")
    for lead in ("L1", "L2", "L3"):
        sink.outcome(lead, b"{}")
        sink.persist(0, lead, LeadEntry(0, LeadState()))
    await sink.flush()
    assert order[:3] == ["send outcomes b'L1'", "send outcomes b'L2'", "send outcomes b'L3'"]
    assert order[3:6] == [f"delivered outcomes {lead.encode()!r}" for lead in ("L1", "L2", "L3")]
    assert order[6:] == [f"send leads-changelog {lead_key(lead)!r}" for lead in ("L1", "L2", "L3")]


async def test_a_drain_without_lead_states_never_waits_for_deliveries_and_a_flush_waits_for_all_earlier_outcomes() -> None:
    """Between commits a drain only hands records over (a wait would cost
    the producer's linger per batch); the flush that writes the lead states
    waits for every outcome sent before, by any drain."""
    producer = DeliversLater()
    order = producer.order
    sink = KafkaSink(lambda: producer, "leads-changelog", "windows-changelog", "outcomes", "dlq")
    sink.outcome("L1", b"{}")
    sink.persist(0, "L1", LeadEntry(0, LeadState()))
    sink.window(0, "k", 1.0)
    await sink.drain()
    assert order == ["send outcomes b'L1'", "send windows-changelog b'\"k\"'"]  # nothing waited for
    sink.outcome("L2", b"{}")
    await sink.flush()
    assert order[2:] == ["send outcomes b'L2'", "delivered outcomes b'L1'", "delivered windows-changelog b'\"k\"'",
                         "delivered outcomes b'L2'",
                         f"send leads-changelog {lead_key('L1')!r}"]


async def test_a_lead_changed_many_times_between_flushes_is_written_once_with_its_latest_state() -> None:
    """The record cache: one changelog record per changed lead per flush,
    its state as it is at the flush; a lead deleted after its last change
    goes out as a tombstone only, and one re-created after its tombstone
    as its new state."""
    producer = FakeProducer()
    sink = KafkaSink(lambda: producer, "leads-changelog", "windows-changelog", "outcomes", "dlq")
    entry = LeadEntry(0, LeadState())
    for at in (1, 2, 3):
        entry.state.last_event_at = at
        sink.persist(0, "L1", entry)
    sink.persist(1, "L2", LeadEntry(1, LeadState()))
    sink.persist(1, "L2", None)
    sink.persist(2, "L3", None)
    sink.persist(2, "L3", LeadEntry(2, LeadState(last_event_at=7)))
    await sink.drain()
    assert producer.sent == []  # a drain leaves lead states for the flush
    await sink.flush()
    assert [(t, k, p) for t, k, _, p, _ in producer.sent] == [
        ("leads-changelog", lead_key("L1"), 0), ("leads-changelog", lead_key("L2"), 1),
        ("leads-changelog", lead_key("L3"), 2)]
    values = [v for _, _, v, _, _ in producer.sent]
    assert values[1] is None
    assert state_from_bytes(values[0]).state.last_event_at == 3
    assert state_from_bytes(values[2]).state.last_event_at == 7
    await sink.flush()
    assert len(producer.sent) == 3  # nothing changed since


async def test_settle_waits_for_a_drain_in_progress_then_hands_over_what_is_queued() -> None:
    # The timer's drain has taken the queue and waits on the producer (its
    # buffer is full); the worker stops meanwhile. A plain drain would find
    # the queue empty and return, and the producer would close under the
    # records still being handed over.
    release = asyncio.Event()

    class SlowProducer(FakeProducer):
        async def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                       partition: int | None = None, headers: list[tuple[str, bytes]] | None = None) -> asyncio.Future[Any]:
            await release.wait()
            return await super().send(topic, value=value, key=key, partition=partition, headers=headers)

    producer = SlowProducer()
    sink = make_sink(producer)
    sink.outcome("lead-1", b'{"outcome": "met"}')
    sink.outcome("lead-2", b'{"outcome": "met"}')
    timer = asyncio.ensure_future(sink.drain())
    await asyncio.sleep(0)
    assert sink.queue == []  # taken by the timer's drain
    stopping = asyncio.ensure_future(sink.settle())
    await asyncio.sleep(0)
    assert not stopping.done()  # the records are not with the producer yet
    sink.outcome("lead-3", b'{"outcome": "breached"}')  # queued meanwhile
    release.set()
    await asyncio.wait_for(stopping, 5)
    assert timer.done()
    assert [key for _, key, *_ in producer.sent] == [b"lead-1", b"lead-2", b"lead-3"]


class BatchingProducer(FakeProducer):
    """A producer with aiokafka's own batch builder (small batches, so that
    a flush needs several): records the batches it is handed."""

    def __init__(self, batch_size: int) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.batches: list[tuple[str, int, list[tuple[bytes | None, bytes | None]]]] = []

    def create_batch(self) -> Any:
        from aiokafka.producer.message_accumulator import BatchBuilder

        return BatchBuilder(self.batch_size, 0)

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> None:
        from aiokafka.record.default_records import DefaultRecordBatch

        records = [(r.key, r.value) for r in DefaultRecordBatch(bytearray(batch._build()))]
        self.batches.append((topic, partition, records))


async def test_a_flush_writes_lead_states_in_batches_per_partition_in_order() -> None:
    producer = BatchingProducer(batch_size=400)
    sink = KafkaSink(lambda: producer, "leads-changelog", "windows-changelog", "outcomes", "dlq")
    entries = {f"L{i}": LeadEntry(i % 2, LeadState(last_event_at=i)) for i in range(12)}
    for lead, entry in entries.items():
        sink.persist(entry.partition, lead, entry)
    sink.persist(1, "gone", None)
    sink.outcome("L0", b"{}")
    await sink.flush()
    assert producer.sent == [("outcomes", b"L0", b"{}", None, None)]  # outcomes still one by one
    assert {topic for topic, _, _ in producer.batches} == {"leads-changelog"}
    assert len(producer.batches) > 2  # the small batches filled up
    for partition in (0, 1):
        written = [kv for _, p, records in producer.batches if p == partition for kv in records]
        expected = [(lead_key(lead), entry) for lead, entry in entries.items() if entry.partition == partition]
        if partition == 1:
            expected.append((lead_key("gone"), None))
        assert [k for k, _ in written] == [k for k, _ in expected]
        for (_, raw), (_, entry) in zip(written, expected, strict=True):
            assert (raw is None) == (entry is None)
            if raw is not None and entry is not None:
                assert state_from_bytes(bytes(raw)).state == entry.state


async def test_a_large_flush_goes_out_in_slices_with_the_loop_running_between_them() -> None:
    """A burst can leave many states to write at a commit: the event loop
    runs between slices, and every state is written once, in order."""
    from leadsla.streams import sink as sink_module

    producer = FakeProducer()
    sink = KafkaSink(lambda: producer, "leads-changelog", "windows-changelog", "outcomes", "dlq")
    n = 2 * sink_module.FLUSH_SLICE + 10
    for i in range(n):
        sink.persist(0, f"L{i}", LeadEntry(0, LeadState(last_event_at=i)))
    seen_during: list[int] = []

    async def watch() -> None:
        while len(producer.sent) < n:
            seen_during.append(len(producer.sent))
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    await sink.flush()
    await watcher
    assert [k for _, k, *_ in producer.sent] == [lead_key(f"L{i}") for i in range(n)]
    # The loop ran while the flush was part-way through.
    assert any(0 < sent < n for sent in seen_during)


async def test_what_the_timer_decides_is_written_at_the_next_drain_not_the_next_flush() -> None:
    """No offset covers a timer's decision: its state goes out with the next
    drain, and replaces whatever the record cache held for the lead."""
    producer = FakeProducer()
    sink = KafkaSink(lambda: producer, "leads-changelog", "windows-changelog", "outcomes", "dlq")
    entry = LeadEntry(0, LeadState(last_event_at=1))
    sink.persist(0, "L1", entry)  # a record's change, kept for the flush
    entry.state.last_event_at = 2
    sink.persist_now(0, "L1", entry)  # then the timer decided
    sink.persist(0, "L2", LeadEntry(0, LeadState()))
    await sink.drain()
    assert [(t, k) for t, k, *_ in producer.sent] == [("leads-changelog", lead_key("L1"))]
    assert state_from_bytes(producer.sent[0][2]).state.last_event_at == 2
    await sink.flush()
    assert [k for _, k, *_ in producer.sent] == [lead_key("L1"), lead_key("L2")]  # L1 not written again


async def test_a_timer_write_during_a_flush_is_not_followed_by_the_older_state_the_flush_took() -> None:
    """A flush hands its states over in slices; the timer deleting a lead
    meanwhile (a tombstone, at once) must stay the last word on the lead."""
    from leadsla.streams import sink as sink_module

    producer = FakeProducer()
    sink = KafkaSink(lambda: producer, "leads-changelog", "windows-changelog", "outcomes", "dlq")
    n = sink_module.FLUSH_SLICE + 5
    for i in range(n):
        sink.persist(0, f"L{i}", LeadEntry(0, LeadState(last_event_at=i)))
    last = f"L{n - 1}"  # in the second slice

    async def timer() -> None:
        while not producer.sent:  # the first slice is out: the flush is part-way
            await asyncio.sleep(0)
        sink.persist_now(0, last, None)
        await sink.drain()

    await asyncio.gather(sink.flush(), timer())
    written = [(k, v) for _, k, v, *_ in producer.sent if k == lead_key(last)]
    assert written == [(lead_key(last), None)]  # the tombstone only


async def test_a_state_that_cannot_be_encoded_leaves_the_rest_of_the_flush_marked() -> None:
    producer = FakeProducer()
    sink = KafkaSink(lambda: producer, "leads-changelog", "windows-changelog", "outcomes", "dlq")
    sink.persist(0, "ok", LeadEntry(0, LeadState()))
    sink.persist(0, "huge", LeadEntry(0, LeadState(last_event_at=2**70)))  # past 64 bits
    sink.persist(0, "after", LeadEntry(0, LeadState()))
    with pytest.raises((ValueError, TypeError, OverflowError)):
        await sink.flush()
    sink.persist(0, "huge", None)  # the lead went meanwhile: its newer mark wins
    await sink.flush()
    assert [k for _, k, *_ in producer.sent] == [lead_key("ok"), lead_key("after"), lead_key("huge")]
    assert producer.sent[-1][2] is None  # the tombstone, not the state that could not be encoded
