"""Where the consumer group resumes in each partition, asked of the broker.

A partition that gets no new record after an assignment must still know it
is caught up, or its watermark never reaches the wall clock and its overdue
clocks are never breached. The resume position is the group's committed offset
(Kafka's OffsetFetch), or the partition's earliest offset where the group has
none (leadsla starts a new group from the earliest record, contract §4). It is
known before the first fetch, so it is asked for when the partitions are
assigned, from a small client of its own rather than from Faust internals.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition

from leadsla.streams.kafka_security import KafkaSecurity

log = logging.getLogger("leadsla")


class GroupOffsets:
    """Reads a consumer group's committed offsets. ``bootstrap`` is
    ``host:port[,host:port]``; the client joins no group and commits nothing.
    ``security``: TLS and SASL (default PLAINTEXT)."""

    def __init__(self, bootstrap: str, group: str, request_timeout_s: float = 10.0,
                 security: KafkaSecurity | None = None) -> None:
        self._bootstrap = bootstrap
        self._security = security or KafkaSecurity()
        self._group = group
        self._timeout = request_timeout_s
        self._client: AIOKafkaConsumer | None = None

    async def _ensure(self) -> AIOKafkaConsumer:
        if self._client is None:
            client = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap,
                group_id=self._group,
                enable_auto_commit=False,
                request_timeout_ms=int(self._timeout * 1000),
                **self._security.client_kwargs(),
            )
            await client.start()
            self._client = client
        return self._client

    async def resume_positions(self, topic: str, partitions: Iterable[int]) -> dict[int, int]:
        """Partition -> the offset the group resumes at. Raises
        ``asyncio.TimeoutError`` or an aiokafka ``KafkaError`` when the broker
        does not answer in time."""
        client = await self._ensure()
        tps = [TopicPartition(topic, p) for p in partitions]
        out: dict[int, int] = {}
        missing: list[TopicPartition] = []
        for tp in tps:
            committed = await asyncio.wait_for(client.committed(tp), self._timeout)
            if committed is None or committed < 0:
                missing.append(tp)
            else:
                out[tp.partition] = committed
        if missing:
            earliest = await asyncio.wait_for(client.beginning_offsets(missing), self._timeout)
            out.update({tp.partition: offset for tp, offset in earliest.items()})
        return out

    async def stop(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.stop()


class GapReader:
    """Reads a range of offsets of one partition of ``topic`` straight from
    the broker: no group, nothing committed, a client of its own.

    Faust's consumer can skip records of a partition across a rebalance, and
    seeking it back does not help: its fetcher drops any record below the
    highest offset it has delivered, which records already fetched keep
    moving up after the seek. So the engine's gaps are read here instead and
    handed to the engine directly (it dedupes what it has seen)."""

    def __init__(self, bootstrap: str, topic: str, request_timeout_s: float = 10.0,
                 security: KafkaSecurity | None = None) -> None:
        self._bootstrap = bootstrap
        self._security = security or KafkaSecurity()
        self._topic = topic
        self._timeout = request_timeout_s
        self._client: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()  # one range at a time: the client has one assignment

    async def read(self, partition: int, first: int, end: int) -> list[tuple[int, bytes | None, bytes | None]]:
        """``(offset, key, value)`` of the records at offsets ``first`` to
        ``end`` - 1 that exist (a gap may hold transaction markers), in
        order. Raises ``asyncio.TimeoutError`` when the broker does not
        deliver them within the request timeout, or an aiokafka
        ``KafkaError``."""
        async with self._lock:
            if self._client is None:
                client = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False,
                                          request_timeout_ms=int(self._timeout * 1000), **self._security.client_kwargs())
                await client.start()
                self._client = client
            client = self._client
            tp = TopicPartition(self._topic, partition)
            client.assign([tp])
            client.seek(tp, first)
            out: list[tuple[int, bytes | None, bytes | None]] = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._timeout
            while True:
                batch = await client.getmany(tp, timeout_ms=200)
                for rec in batch.get(tp, []):
                    if rec.offset >= end:
                        return out
                    if rec.offset >= first:
                        out.append((rec.offset, rec.key, rec.value))
                if await client.position(tp) >= end:
                    return out
                if loop.time() > deadline:
                    raise TimeoutError(f"offsets {first}..{end - 1} of {self._topic}/{partition} not delivered")

    async def stop(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.stop()
