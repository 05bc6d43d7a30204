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

log = logging.getLogger("leadsla")


class GroupOffsets:
    """Reads a consumer group's committed offsets. ``bootstrap`` is
    ``host:port[,host:port]``; the client joins no group and commits nothing."""

    def __init__(self, bootstrap: str, group: str, request_timeout_s: float = 10.0) -> None:
        self._bootstrap = bootstrap
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
