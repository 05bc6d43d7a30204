"""The gap reader fetches a range of offsets of one partition straight from
the real broker, whatever the worker's consumer has delivered: what the
engine asks for when offsets never reached it."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from leadsla.streams.offsets import GapReader

from .kafka import create_topics, publish


def test_a_range_of_offsets_is_read_back_exactly(broker: str) -> None:
    topic = f"gap-reader-{uuid.uuid4().hex[:8]}"
    create_topics(broker, [topic], partitions=1)
    publish(broker, topic, [(f"k{i}".encode(), f"v{i}".encode()) for i in range(10)])

    async def go() -> tuple[list, list]:
        reader = GapReader(broker, topic, request_timeout_s=5.0)
        try:
            middle = await reader.read(0, 3, 7)
            tail = await reader.read(0, 9, 10)
            impatient = GapReader(broker, topic, request_timeout_s=1.0)
            try:
                with pytest.raises(TimeoutError):  # nothing there yet: a bounded wait, then an error
                    await impatient.read(0, 10, 12)
            finally:
                await impatient.stop()
            return middle, tail
        finally:
            await reader.stop()

    middle, tail = asyncio.run(go())
    assert middle == [(i, f"k{i}".encode(), f"v{i}".encode()) for i in range(3, 7)]
    assert tail == [(9, b"k9", b"v9")]
