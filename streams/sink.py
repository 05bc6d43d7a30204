"""Every byte leadsla writes to Kafka goes through one sink: lead state and
window changelogs, outcome records and dead letters. The engine hands it
values; the codec turns them into bytes."""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from leadsla.streams.codec import LeadEntry, lead_key, state_to_bytes

# (topic, key, value, partition or None, headers or None)
Record = tuple[str, bytes | None, bytes | None, int | None, list[tuple[str, bytes]] | None]


class Sink(Protocol):
    """What the engine writes. ``partition`` is the lead-events partition a
    changelog record belongs to (tables are co-partitioned with it)."""

    def persist(self, partition: int, lead_id: str, entry: LeadEntry | None) -> None: ...
    def outcome(self, lead_id: str, value: bytes) -> None: ...
    def dead_letter(self, key: bytes | None, value: bytes | None, reason: str, error: str) -> None: ...
    def window(self, partition: int, key: str, value: float | None) -> None: ...


class KafkaSink:
    """Queues ready records and hands them to the Kafka producer right after
    each record or timer pass (``drain``).

    Faust's own path (send_soon, its producer buffer, publish_message) costs
    more per record than the engine spends deciding a clock. Writing to the
    producer directly keeps the guarantee that matters: Faust flushes the
    producer before it commits an offset, so a lead's state is in its
    changelog before the record that changed it counts as processed.
    ``producer`` returns aiokafka's producer once the app runs.
    """

    def __init__(self, producer: Any, leads_topic: str, windows_topic: str, outcomes_topic: str, dlq_topic: str) -> None:
        self._producer = producer
        self._leads, self._windows = leads_topic, windows_topic
        self._outcomes, self._dlq = outcomes_topic, dlq_topic
        self.queue: list[Record] = []

    def persist(self, partition: int, lead_id: str, entry: LeadEntry | None) -> None:
        value = None if entry is None else state_to_bytes(entry.partition, entry.state)
        self.queue.append((self._leads, lead_key(lead_id), value, partition, None))

    def window(self, partition: int, key: str, value: float | None) -> None:
        self.queue.append((self._windows, orjson.dumps(key), None if value is None else orjson.dumps(value),
                           partition, None))

    def outcome(self, lead_id: str, value: bytes) -> None:
        self.queue.append((self._outcomes, lead_id.encode(), value, None, None))

    def dead_letter(self, key: bytes | None, value: bytes | None, reason: str, error: str) -> None:
        headers = [("reason", reason.encode()), ("error", error.encode("utf-8", "replace")[:1000])]
        self.queue.append((self._dlq, key, value, None, headers))

    async def drain(self) -> None:
        """Hand the queued records to the producer, in order. Awaiting only
        waits when the producer's buffer is full (backpressure)."""
        if not self.queue:
            return
        records, self.queue = self.queue, []
        producer = self._producer()
        for topic, key, value, partition, headers in records:
            await producer.send(topic, value=value, key=key, partition=partition, headers=headers)
