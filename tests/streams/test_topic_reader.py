"""streams.topic_reader without a broker: a stand-in consumer shows where
the reader stops (the first fetch high watermark, never ListOffsets), that
an empty partition ends at once and that a partition that never answers
ends the read with an error after the stall timeout."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import TopicPartition

from leadsla.streams import topic_reader
from leadsla.streams.topic_reader import Record, TopicReadError, read_topic

TOPIC = "t"


@dataclass
class _Rec:
    partition: int
    offset: int
    timestamp: int = 0
    key: bytes | None = None
    value: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


class FakeConsumer:
    """Partitions by number: the records each fetch hands over and the
    high watermark its answer carries (None: the partition never answers).
    ``listed`` is what ListOffsets(latest) would say: never asked."""

    plan: dict[int, tuple[int | None, int]] = {}  # partition -> (high watermark, records there)

    def __init__(self, **config: Any) -> None:
        self.positions: dict[TopicPartition, int] = {}
        self.high: dict[TopicPartition, int] = {}
        self.paused: set[TopicPartition] = set()

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def topics(self) -> set[str]:
        return {TOPIC}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(self.plan)

    def assign(self, tps: list[TopicPartition]) -> None:
        self.positions = dict.fromkeys(tps, 0)

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, 0)

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        raise AssertionError("ListOffsets(latest) is not to be trusted")

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    def pause(self, *tps: TopicPartition) -> None:
        self.paused.update(tps)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.high.get(tp)

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    async def getmany(self, *tps: TopicPartition, timeout_ms: int = 0, max_records: int = 0) -> dict[Any, Any]:
        await asyncio.sleep(0.01)
        out: dict[TopicPartition, list[_Rec]] = {}
        for tp in tps:
            high, count = self.plan[tp.partition]
            if high is None or tp in self.paused:
                continue
            self.high[tp] = high
            pos = self.positions[tp]
            recs = [_Rec(tp.partition, o) for o in range(pos, count)]  # may run past the high watermark
            if recs:
                out[tp] = recs
                self.positions[tp] = count
        return out


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> type[FakeConsumer]:
    monkeypatch.setattr(topic_reader, "AIOKafkaConsumer", FakeConsumer)
    return FakeConsumer


def test_each_partition_ends_at_its_first_fetch_high_watermark(fake: type[FakeConsumer]) -> None:
    # Partition 0: 5 records, 2 more arrived after its end was learned;
    # partition 1: empty (high watermark 0).
    fake.plan = {0: (5, 7), 1: (0, 0)}
    got: list[Record] = []
    read = asyncio.run(read_topic("b:1", TOPIC, got.append, stall_timeout=5))
    assert [(r.partition, r.offset) for r in got] == [(0, o) for o in range(5)]
    assert (read.records, read.partitions, read.stopped) == (5, 2, False)


def test_a_partition_that_never_answers_ends_the_read_after_the_stall_timeout(fake: type[FakeConsumer]) -> None:
    fake.plan = {0: (3, 3), 1: (None, 0)}
    got: list[Record] = []
    with pytest.raises(TopicReadError, match=r"^no answer from b:1 for 0s while reading t$"):
        asyncio.run(read_topic("b:1", TOPIC, got.append, stall_timeout=0.2))
    assert len(got) == 3


def test_a_missing_topic_names_its_setting(fake: type[FakeConsumer]) -> None:
    fake.plan = {}
    with pytest.raises(TopicReadError, match=r"^the broker at b:1 has no topic t \(LEADSLA_X\)$"):
        asyncio.run(read_topic("b:1", TOPIC, lambda r: None, topic_setting="LEADSLA_X"))


def test_stop_ends_a_follow_read(fake: type[FakeConsumer]) -> None:
    fake.plan = {0: (2, 2)}

    async def go() -> tuple[int, bool]:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.2, stop.set)
        read = await read_topic("b:1", TOPIC, lambda r: None, follow=True, stop=stop)
        return read.records, read.stopped

    assert asyncio.run(go()) == (2, True)
