"""Every byte leadsla writes to Kafka goes through one sink: lead state and
window changelogs, outcome records and dead letters. The engine hands it
values; the codec turns them into bytes."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from aiokafka.errors import KafkaError, KafkaTimeoutError, MessageSizeTooLargeError
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from leadsla.streams.codec import STATE_VERSION, LeadEntry, lead_key, state_to_bytes

if TYPE_CHECKING:
    from leadsla.streams.metrics import Metrics

log = logging.getLogger("leadsla")

Headers = list[tuple[str, bytes]]
# (topic, key, value, partition or None, headers or None)
Record = tuple[str, bytes | None, bytes | None, int | None, Headers | None]

# The ``topic`` label of leadsla_sink_send_errors_total: one per kind of
# record, whatever the topics are called.
OUTCOMES, DEAD_LETTERS, LEAD_CHANGELOG, WINDOW_CHANGELOG = "outcomes", "dead_letters", "lead_changelog", "window_changelog"
DELIVERY_CHANGELOG = "delivery_changelog"
PERIOD_CHANGELOG, PERIOD_REPORTS, PERIODS = "period_changelog", "period_reports", "periods"
SINK_TOPICS = (OUTCOMES, DEAD_LETTERS, LEAD_CHANGELOG, WINDOW_CHANGELOG, DELIVERY_CHANGELOG, PERIOD_CHANGELOG,
               PERIOD_REPORTS, PERIODS)

# The worker's producer refuses a record larger than this (Faust's
# producer_max_request_size, which the app leaves at its default; aiokafka's
# own default would be 1,048,576). Apache Kafka's broker takes up to
# 1,048,588 bytes by default, so the producer is the first to refuse.
PRODUCER_MAX_REQUEST_SIZE = 1_000_000
# A dead letter cut to fit stays this far below the producer's limit (bytes),
# so that a client or broker counting the batch framing a little differently
# from aiokafka's estimate still takes it.
DEAD_LETTER_HEADROOM = 1024
# Retries of a send that failed with a retriable error, and the first wait
# between them (seconds; doubled each time).
SEND_RETRIES, SEND_BACKOFF = 3, 0.1
# Lead states encoded and handed over per slice of a flush, between which
# the event loop runs (a slice is a few tens of milliseconds of work).
FLUSH_SLICE = 2000
# A failure is logged at once; more of the same kind (topic and error) within
# this many seconds are only counted, and the next line says how many.
LOG_EVERY = 60.0


class Sink(Protocol):
    """What the engine writes. ``partition`` is the lead-events partition a
    changelog record belongs to (tables are co-partitioned with it)."""

    def persist(self, partition: int, lead_id: str, entry: LeadEntry | None) -> None: ...
    def persist_now(self, partition: int, lead_id: str, entry: LeadEntry | None) -> None: ...
    def outcome(self, lead_id: str, value: bytes) -> None: ...
    def dead_letter(self, key: bytes | None, value: bytes | None, reason: str, error: str) -> None: ...
    def window(self, partition: int, key: str, value: float | None) -> None: ...
    def delivery(self, partition: int, key: str, value: list[float] | None) -> None: ...
    def period_cell(self, partition: int, key: str, value: list[float] | None) -> None: ...
    def period_report(self, key: str, value: bytes, partition: int | None = None) -> None: ...
    def period_record(self, name: str, value: bytes) -> None: ...


def cut_dead_letter(key: bytes | None, value: bytes, headers: Headers, max_bytes: int) -> tuple[bytes, Headers] | None:
    """A dead letter whose record is too large, cut to fit ``max_bytes``.

    Returns a prefix of ``value`` with which the record — ``key``
    unchanged, ``headers`` plus ``original-size`` (the value's length in
    bytes, decimal), ``original-sha256`` (hex digest of the whole value) and
    ``truncated: true`` — is at most ``max_bytes`` as aiokafka's producer
    measures it (batch framing included), and within four bytes of it (the
    value's length prefix is counted at its largest); and those headers.
    None when not even an empty value fits (a key or headers that large).
    Never raises.
    """
    marked = [
        *headers,
        ("original-size", str(len(value)).encode()),
        ("original-sha256", hashlib.sha256(value).hexdigest().encode()),
        ("truncated", b"true"),
    ]
    # The size with an empty value (whose length takes one byte); a value of
    # n bytes adds n and at most four more bytes to its length prefix.
    room = max_bytes - DefaultRecordBatchBuilder.estimate_size_in_bytes(key, b"", marked) - 4
    if room < 0:
        return None
    return value[: min(room, len(value))], marked


class KafkaSink:
    """Queues ready records and hands them to the Kafka producer right after
    each batch of records or timer pass (``drain``); lead states records
    change are kept until the next commit (``persist``, ``flush``), those the
    timer changes go with the next drain (``persist_now``).

    Faust's own path (send_soon, its producer buffer, publish_message) costs
    more per record than the engine spends deciding a clock. Writing to the
    producer directly keeps the guarantee that matters: Faust flushes the
    producer before it commits an offset, so a lead's state is in its
    changelog before the record that changed it counts as processed.
    ``producer`` returns aiokafka's producer once the app runs.

    Nothing the producer refuses stops the others: a dead letter larger than
    ``max_request_size`` (bytes: the producer's own limit) goes out with its
    value cut (see ``cut_dead_letter``); any other refused or undelivered
    record is counted in ``metrics`` (leadsla_sink_send_errors_total, when
    given) and logged with its topic and the error, never its key.
    ``state_version`` is the lead-state format written (``codec.STATE_VERSIONS``).
    """

    def __init__(
        self,
        producer: Any,
        leads_topic: str,
        windows_topic: str,
        outcomes_topic: str,
        dlq_topic: str,
        *,
        metrics: Metrics | None = None,
        deliveries_topic: str | None = None,
        periods: tuple[str, str, str] | None = None,
        max_request_size: int = PRODUCER_MAX_REQUEST_SIZE,
        state_version: int = STATE_VERSION,
        retries: int = SEND_RETRIES,
        backoff: float = SEND_BACKOFF,
    ) -> None:
        self._producer = producer
        self._leads, self._windows = leads_topic, windows_topic
        self._outcomes, self._dlq = outcomes_topic, dlq_topic
        self._metrics = metrics
        self._max_request_size = max_request_size
        self._state_version = state_version
        self._retries, self._backoff = retries, backoff
        self.queue: list[Record] = []
        # (partition, lead id) -> the lead's entry (None: deleted), to flush
        self._states: dict[tuple[int, str], LeadEntry | None] = {}
        self._flushing = asyncio.Lock()
        # The states a flush under way took and has not encoded yet.
        self._flushing_states: dict[tuple[int, str], LeadEntry | None] | None = None
        # Outcome records handed to the producer and not yet delivered.
        self._outcomes_in_flight: set[asyncio.Future[Any]] = set()
        # One drain at a time: the agent and the timer both drain, and one
        # waiting between retries must not let the other's newer changelog
        # record for the same key overtake its older one.
        self._draining = asyncio.Lock()
        self._deliveries = deliveries_topic
        self._labels = {leads_topic: LEAD_CHANGELOG, windows_topic: WINDOW_CHANGELOG,
                        outcomes_topic: OUTCOMES, dlq_topic: DEAD_LETTERS}
        if deliveries_topic is not None:
            self._labels[deliveries_topic] = DELIVERY_CHANGELOG
        # (period-cells changelog, period-reports, sla-periods)
        self._periods = periods
        if periods is not None:
            self._labels.update(zip(periods, (PERIOD_CHANGELOG, PERIOD_REPORTS, PERIODS), strict=True))
        # One delivery callback per topic, made once: the hot path only attaches it.
        self._on_delivery = {topic: self._delivery_callback(topic) for topic in self._labels}
        self._reported: dict[tuple[str, str], tuple[float, int]] = {}

    def persist(self, partition: int, lead_id: str, entry: LeadEntry | None) -> None:
        """Mark a lead's state (None: its tombstone) for its changelog. Kept
        until the next ``flush``, as Kafka Streams' record cache does: a lead
        changed by many records in between is encoded and written once, with
        its latest state (the entry is read at the flush), and a lead deleted
        after its last change is written as a tombstone only."""
        self._states[(partition, lead_id)] = entry

    def persist_now(self, partition: int, lead_id: str, entry: LeadEntry | None) -> None:
        """A lead's state (None: its tombstone) for its changelog, queued now
        for the next drain rather than kept for the next flush: for what the
        timer decides. A record's effects are covered by its offset until
        the state is written (killed before, the worker reads the record
        again); a timer's decision is covered by nothing, and a worker
        killed before its state is written decides again. Raises what
        ``state_to_bytes`` raises (ValueError, TypeError)."""
        key = (partition, lead_id)
        # This write has the latest state: an older one kept for a flush, or
        # taken by a flush under way and not yet encoded, must not follow it.
        self._states.pop(key, None)
        if self._flushing_states is not None:
            self._flushing_states.pop(key, None)
        self._queue_state(partition, lead_id, entry)

    def _queue_state(self, partition: int, lead_id: str, entry: LeadEntry | None) -> None:
        """Encode a lead's state (None: a tombstone) and queue it for the next drain."""
        value = None if entry is None else state_to_bytes(entry.partition, entry.state, self._state_version)
        self.queue.append((self._leads, lead_key(lead_id), value, partition, None))

    async def flush(self) -> None:
        """Queue every lead state marked since the last flush, then drain:
        afterwards all of them are with the producer. The worker flushes
        before each offset commit, so no committed offset runs ahead of the
        states it changed. Raises what ``state_to_bytes`` raises (ValueError,
        TypeError): the states not yet encoded then go back to the cache."""
        async with self._flushing:  # flushes in order: a lead's newer state never overtakes an older one
            if self._states:
                states, self._states = self._states, {}
                self._flushing_states = states
                try:
                    await self._flush_states(states)
                except BaseException:
                    # What was not handed over is marked again (a newer mark wins).
                    self._states = {**states, **self._states}
                    raise
                finally:
                    self._flushing_states = None
            await self.drain()

    async def _flush_states(self, states: dict[tuple[int, str], LeadEntry | None]) -> None:
        """Encode and queue ``states`` in slices, draining after each; a
        state ``persist_now`` wrote meanwhile is left out (it is newer)."""
        for encoded, (key, entry) in enumerate(list(states.items()), 1):
            if key not in states:
                continue  # written since by persist_now
            del states[key]  # handed over (what is left goes back to the cache on an error)
            self._queue_state(*key, entry)
            if encoded % FLUSH_SLICE == 0:
                # Hand this slice over and let the worker read records
                # meanwhile: a burst can leave 100,000 states to write,
                # seconds of encoding.
                await self.drain()
                await asyncio.sleep(0)

    def window(self, partition: int, key: str, value: float | None) -> None:
        self.queue.append((self._windows, orjson.dumps(key), None if value is None else orjson.dumps(value),
                           partition, None))

    def delivery(self, partition: int, key: str, value: list[float] | None) -> None:
        """A delivery table cell (targets), or its tombstone (None)."""
        if self._deliveries is None:
            return
        self.queue.append((self._deliveries, orjson.dumps(key), None if value is None else orjson.dumps(value),
                           partition, None))

    def period_cell(self, partition: int, key: str, value: list[float] | None) -> None:
        """A period-cells table cell ([met, breached]), or its tombstone (None)."""
        if self._periods is None:
            return
        self.queue.append((self._periods[0], orjson.dumps(key), None if value is None else orjson.dumps(value),
                           partition, None))

    def period_report(self, key: str, value: bytes, partition: int | None = None) -> None:
        """A record of the period-reports topic: a partition's share of a period
        (``partition`` None: placed by its key) or a closed-through report."""
        if self._periods is None:
            return
        self.queue.append((self._periods[1], key.encode(), value, partition, None))

    def period_record(self, name: str, value: bytes) -> None:
        """A judged period on ``sla-periods``, keyed by the policy or target name."""
        if self._periods is None:
            return
        self.queue.append((self._periods[2], name.encode(), value, None, None))

    def outcome(self, lead_id: str, value: bytes) -> None:
        self.queue.append((self._outcomes, lead_id.encode(), value, None, None))

    def dead_letter(self, key: bytes | None, value: bytes | None, reason: str, error: str) -> None:
        headers = [("reason", reason.encode()), ("error", error.encode("utf-8", "replace")[:1000])]
        self.queue.append((self._dlq, key, value, None, headers))

    async def drain(self) -> None:
        """Hand the queued records to the producer, in the order queued
        (records of one topic partition keep their order), except that
        lead states go last, once every outcome record sent so far is
        delivered. Awaiting waits for that delivery, when the producer's
        buffer is full (backpressure), between retries of a send that
        failed with a retriable error, or for a drain already running
        (records queued meanwhile follow its records). Never raises for a
        record the producer refuses: the next records are sent all the same
        (cancellation still propagates)."""
        if not self.queue:
            return
        async with self._draining:
            records, self.queue = self.queue, []
            if not records:
                return
            producer = self._producer()
            leads = self._leads
            states = [r for r in records if r[0] == leads]
            if not states:
                await self._send_all(producer, records)
                return
            # A decision's outcome is delivered before the lead state that
            # records it: killed in between, the worker decides again after a
            # restart and re-sends the same decision_id, where the other
            # order would lose the outcome for good. Lead states go out at a
            # flush (before a commit) or with what the timer decided, so one
            # wait there covers every outcome sent before them.
            await self._send_all(producer, [r for r in records if r[0] != leads])
            if self._outcomes_in_flight:
                await asyncio.wait(list(self._outcomes_in_flight))
            await self._send_states(producer, states)

    async def _send_states(self, producer: Any, states: list[Record]) -> None:
        """Lead states in produce batches built here, one per changelog
        partition (as many as their size needs), in order: a flush writes
        thousands, and the producer's per-record ``send`` costs several
        times a batch append. A producer without batches (or a record no
        batch takes) goes through ``send``, retries and all."""
        if getattr(producer, "create_batch", None) is None:
            await self._send_all(producer, states)
            return
        by_partition: dict[int | None, list[Record]] = {}
        for record in states:
            by_partition.setdefault(record[3], []).append(record)
        for partition, records in by_partition.items():
            if partition is None:
                await self._send_all(producer, records)
                continue
            batch = producer.create_batch()
            held: list[Record] = []
            for record in records:
                if batch.append(timestamp=None, key=record[1], value=record[2], headers=[]) is None:
                    await self._send_batch(producer, batch, partition, held)
                    batch, held = producer.create_batch(), []
                    if batch.append(timestamp=None, key=record[1], value=record[2], headers=[]) is None:
                        await self._send_all(producer, [record])  # too large for any batch: send's own errors
                        batch = producer.create_batch()
                        continue
                held.append(record)
            await self._send_batch(producer, batch, partition, held)

    async def _send_batch(self, producer: Any, batch: Any, partition: int, records: list[Record]) -> None:
        """Hand one batch of lead states (``records``, as appended) to the
        producer; refused, they are sent one by one (``send`` retries)."""
        if not records:
            return
        try:
            future = await producer.send_batch(batch, self._leads, partition=partition)
        except Exception:  # the records go the long way, with its retries and counting
            await self._send_all(producer, records)
            return
        if isinstance(future, asyncio.Future):
            future.add_done_callback(self._delivery_callback(self._leads, len(records)))


    async def _send_all(self, producer: Any, records: list[Record]) -> None:
        """Send ``records`` in order; outcome records are in flight until delivered."""
        on_delivery, outcomes, in_flight = self._on_delivery, self._outcomes, self._outcomes_in_flight
        for record in records:
            topic, key, value, partition, headers = record
            try:
                future = await producer.send(topic, value=value, key=key, partition=partition, headers=headers)
            except Exception as exc:  # whatever the producer raises must not cost the rest of the batch
                await self._refused(producer, record, exc)
                continue
            # aiokafka resolves the future on delivery; a fake producer may return none.
            if isinstance(future, asyncio.Future):
                future.add_done_callback(on_delivery[topic])
                if topic == outcomes:
                    in_flight.add(future)
                    future.add_done_callback(in_flight.discard)

    async def settle(self, states: bool = True) -> None:
        """Wait for a drain in progress to hand over its records, then drain
        what is queued and (``states``) flush the marked lead states:
        afterwards every record queued so far is with the producer (whose
        own stop or flush delivers it)."""
        async with self._draining:
            pass
        if states:
            await self.flush()
        else:
            await self.drain()

    async def _refused(self, producer: Any, record: Record, exc: Exception) -> None:
        """The slow path of a record ``send`` raised ``exc`` for: cut a dead
        letter too large, retry a transient error, count the rest."""
        topic, key, value, partition, headers = record
        attempt, cut = 0, False
        while True:
            if isinstance(exc, MessageSizeTooLargeError):
                # Only a dead letter can be cut: its headers say what was cut.
                # It was sent whole first, as the dead-letter contract promises.
                fitted = None
                if topic == self._dlq and value is not None and not cut:
                    fitted = cut_dead_letter(key, value, headers or [], self._max_request_size - DEAD_LETTER_HEADROOM)
                if fitted is None or value is None or len(fitted[0]) >= len(value):
                    self._failed(topic, exc)
                    return
                value, headers = fitted
                cut = True
            elif attempt < self._retries and _retriable(exc):
                log.debug("send to %s failed (%s); retry %d of %d", topic, _describe(exc), attempt + 1, self._retries)
                await asyncio.sleep(self._backoff * 2**attempt)
                attempt += 1
            else:
                self._failed(topic, exc)
                return
            try:
                future = await producer.send(topic, value=value, key=key, partition=partition, headers=headers)
            except Exception as again:  # as in drain
                exc = again
                continue
            if cut and self._metrics is not None:
                self._metrics.dead_letters_truncated.inc()
            if isinstance(future, asyncio.Future):
                future.add_done_callback(self._on_delivery[topic])
                if topic == self._outcomes:
                    self._outcomes_in_flight.add(future)
                    future.add_done_callback(self._outcomes_in_flight.discard)
            return

    def _delivery_callback(self, topic: str, records: int = 1) -> Callable[[asyncio.Future[Any]], None]:
        """What to do when a send of ``records`` records (one, or a batch) to
        ``topic`` is delivered or has failed."""
        def delivered(future: asyncio.Future[Any]) -> None:
            # aiokafka already retried retriable errors until its request
            # timeout: an exception here is final. Reading it also keeps
            # asyncio from logging "exception was never retrieved".
            if future.cancelled():
                return
            exc = future.exception()
            if exc is not None:
                for _ in range(records):  # each record is lost
                    self._failed(topic, exc)

        return delivered

    def _failed(self, topic: str, exc: BaseException) -> None:
        """Count a record that is lost to its topic, and log it: the topic and
        the error, never the key (a lead id)."""
        label = self._labels.get(topic, OUTCOMES)
        if self._metrics is not None:
            self._metrics.sink_error(label).inc()
        kind = (label, type(exc).__name__)
        now = time.monotonic()
        last, quiet = self._reported.get(kind, (None, 0))
        if last is not None and now - last < LOG_EVERY:
            self._reported[kind] = (last, quiet + 1)
            return
        self._reported[kind] = (now, 0)
        more = f" ({quiet} more like it since the last report)" if quiet else ""
        log.error("a record for %s (%s) was not written: %s%s", topic, label, _describe(exc), more)


def _retriable(exc: BaseException) -> bool:
    # A timeout waiting for buffer space or metadata is transient, though
    # aiokafka does not mark KafkaTimeoutError retriable.
    return isinstance(exc, KafkaTimeoutError) or (isinstance(exc, KafkaError) and exc.retriable)


def _describe(exc: BaseException) -> str:
    # Kafka's errors describe the request, never the record's key or value;
    # anything else is named by its type only, as its text could quote them.
    if isinstance(exc, KafkaError):
        text = str(exc)[:300]
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return type(exc).__name__
