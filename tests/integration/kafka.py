"""Small synchronous helpers around aiokafka for tests: publish, read a topic."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from leadsla.models.events import format_timestamp_us
from leadsla.streams.broker import ensure_topics


def create_topics(bootstrap: str, names: list[str], partitions: int = 4) -> None:
    asyncio.run(ensure_topics(bootstrap, names, partitions))


def publish(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None]]) -> None:
    """Send records in order (key, value), one batch each so a per-record
    boundary exists even on brokers with batch quirks."""

    async def go() -> None:
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
        await p.start()
        try:
            for key, value in records:
                await p.send_and_wait(topic, key=key, value=value)
        finally:
            await p.stop()

    asyncio.run(go())


def publish_batched(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None]]) -> None:
    """Send records in order (key, value) as a bulk import does: many to a
    produce batch (a 20 ms linger), all delivered on return."""

    async def go() -> None:
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024)
        await p.start()
        try:
            futures = [await p.send(topic, key=key, value=value) for key, value in records]
            await asyncio.gather(*futures)
        finally:
            await p.stop()

    asyncio.run(go())


def iso(dt: datetime) -> str:
    """RFC 3339 at millisecond precision, spelled as leadsla spells its outputs."""
    us = (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    return format_timestamp_us(us - us % 1000)


def event(**fields: Any) -> tuple[bytes, bytes]:
    return str(fields["lead_id"]).encode(), orjson.dumps(fields)


def read_all(bootstrap: str, topic: str, expect: int, timeout: float = 60.0) -> list[Any]:
    """Read from the beginning until ``expect`` records arrived (or timeout);
    returns aiokafka ConsumerRecords."""

    async def go() -> list[Any]:
        c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None)
        await c.start()
        out: list[Any] = []
        try:
            loop = asyncio.get_running_loop()
            end = loop.time() + timeout
            while len(out) < expect and loop.time() < end:
                batch = await c.getmany(timeout_ms=500)
                for recs in batch.values():
                    out.extend(recs)
            # A little longer: anything beyond ``expect`` is a failure to see.
            batch = await c.getmany(timeout_ms=1500)
            for recs in batch.values():
                out.extend(recs)
        finally:
            await c.stop()
        return out

    return asyncio.run(go())


def committed_total(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    """The sum of ``group``'s committed offsets on ``topic`` (0 where none)."""
    from aiokafka import TopicPartition

    async def go() -> int:
        c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
        await c.start()
        try:
            total = 0
            for p in range(partitions):
                total += await c.committed(TopicPartition(topic, p)) or 0
            return total
        finally:
            await c.stop()

    return asyncio.run(go())
