"""Commands that read a topic to its end, on topics published in
multi-record batches: ``leadsla recalibrate``, ``outcomes`` and
``dead-letters`` must see every record.

The embedded broker answers ListOffsets(latest) with a figure that is too
low once a batch holds several records (one batch of 40 records can end at
"1"), so a reader that stops at ``end_offsets()`` silently undercounts. The
history here goes out the way a real producer sends it: a linger of 20 ms
and every send issued before the first is awaited, so each batch carries
many records."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from leadsla.models.events import format_timestamp_us, parse_timestamp_us

from .conftest import FIRST_TOUCH
from .kafka import create_topics

H, D = 3_600_000_000, 86_400_000_000
START = parse_timestamp_us("2025-03-03T09:00:00Z")

Records = list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]


def publish_batched(bootstrap: str, topic: str, records: Records) -> None:
    """Send every record before awaiting any, with a 20 ms linger: the
    producer packs them into batches of many records each."""

    async def go() -> None:
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
        await p.start()
        try:
            sent = [await p.send(topic, key=k, value=v, headers=h or None) for k, v, h in records]
            await asyncio.gather(*sent)
        finally:
            await p.stop()

    asyncio.run(go())


def listed_end(bootstrap: str, topic: str) -> int:
    """The sum of ListOffsets(latest) over the topic's partitions: what a
    reader trusting ``end_offsets()`` would read."""

    async def go() -> int:
        c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
        await c.start()
        try:
            tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
            if not tps:
                await c.topics()
                tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
            return sum((await c.end_offsets(tps)).values())
        finally:
            await c.stop()

    return asyncio.run(go())


def leadsla(s: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "leadsla", *args], env=s.command_env(), capture_output=True, text=True,
                          timeout=120)


def history() -> Records:
    """150 marketing leads, of which 27 win a deal (lead i wins 1,000 + i);
    each lead's events in order, leads interleaved as a CRM sync sends them."""
    out: Records = []
    for i in range(150):
        lead = f"m{i:03d}"
        at = START + i * H

        def ev(n: int, etype: str, when: int, lead: str = lead, **fields: Any) -> None:
            value = {"event_id": f"{lead}-{n}", "lead_id": lead, "type": etype,
                     "occurred_at": format_timestamp_us(when), **fields}
            out.append((lead.encode(), orjson.dumps(value), []))

        ev(0, "lead.created", at, source="marketing")
        ev(1, "lead.mql", at + H, source="marketing")
        if i < 27:
            ev(2, "deal.won", at + 2 * D, amount=1000 + i, currency="EUR")
    return out


def test_recalibrate_counts_every_lead_of_a_batch_published_history(setup) -> None:
    s = setup(FIRST_TOUCH)
    records = history()
    create_topics(s.broker, [s.topics["input"]], 4)
    publish_batched(s.broker, s.topics["input"], records)
    # The case at hand: the broker's ListOffsets answer is short of the records.
    assert listed_end(s.broker, s.topics["input"]) < len(records)

    done = leadsla(s, "recalibrate", "--json")
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert (got["records"], got["events"], got["duplicates"], got["rejected"]) == (len(records), len(records), 0, {})
    assert (got["leads"], got["marketing_leads"], got["customers"], got["won_leads"]) == (150, 150, 27, 27)
    assert got["marketing_revenue"] == sum(1000 + i for i in range(27))

    table = leadsla(s, "recalibrate")
    assert table.returncode == 0, table.stderr
    assert f"({s.topics['input']}: {len(records)} records, " in table.stdout


def test_outcomes_and_dead_letters_print_every_record_of_a_batch_published_topic(setup) -> None:
    s = setup(FIRST_TOUCH)
    create_topics(s.broker, [s.topics["outcomes"], s.topics["dlq"]], 4)
    outcomes: Records = []
    for i in range(200):
        lead = f"L{i:03d}"
        value = {"decision_id": f"d{i}", "lead_id": lead, "policy": "first_touch",
                 "outcome": "met" if i % 3 else "breached", "started_at": "2025-03-03T09:00:00Z",
                 "deadline": "2025-03-03T10:00:00Z", "decided_at": "2025-03-03T09:30:00Z", "elapsed_seconds": 60.0}
        outcomes.append((lead.encode(), orjson.dumps(value), []))
    letters: Records = [(f"k{i}".encode(), b"{not json", [("reason", b"malformed"), ("error", b"not JSON")])
                        for i in range(120)]
    publish_batched(s.broker, s.topics["outcomes"], outcomes)
    publish_batched(s.broker, s.topics["dlq"], letters)
    assert listed_end(s.broker, s.topics["outcomes"]) < len(outcomes)
    assert listed_end(s.broker, s.topics["dlq"]) < len(letters)

    done = leadsla(s, "outcomes")
    assert done.returncode == 0, done.stderr
    printed = [orjson.loads(x) for x in done.stdout.splitlines()]
    assert sorted(o["decision_id"] for o in printed) == sorted(f"d{i}" for i in range(200))
    breached = leadsla(s, "outcomes", "--outcome", "breached")
    assert len(breached.stdout.splitlines()) == len(range(0, 200, 3))

    done = leadsla(s, "dead-letters")
    assert done.returncode == 0, done.stderr
    printed = [orjson.loads(x) for x in done.stdout.splitlines()]
    assert sorted(d["key"] for d in printed) == sorted(f"k{i}" for i in range(120))
    assert {d["reason"] for d in printed} == {"malformed"}


def test_a_topic_with_empty_partitions_ends_at_once(setup) -> None:
    """Two records in one partition of four: the three empty ones end at
    their high watermark 0 (learned from a fetch), so the read does not wait
    for records that will never come."""
    s = setup(FIRST_TOUCH)
    create_topics(s.broker, [s.topics["outcomes"]], 4)
    value = {"decision_id": "d", "lead_id": "only", "policy": "first_touch", "outcome": "met"}
    publish_batched(s.broker, s.topics["outcomes"], [(b"only", orjson.dumps(value), []),
                                                     (b"only", orjson.dumps({**value, "decision_id": "e"}), [])])
    done = subprocess.run([sys.executable, "-m", "leadsla", "outcomes"], env=s.command_env(), capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert [orjson.loads(x)["decision_id"] for x in done.stdout.splitlines()] == ["d", "e"]

    create_topics(s.broker, [s.topics["dlq"]], 3)  # no record at all
    done = subprocess.run([sys.executable, "-m", "leadsla", "dead-letters"], env=s.command_env(), capture_output=True,
                          text=True, timeout=30)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


class Bar:
    """A progress display that records what the reader tells it."""

    def __init__(self, total: int, made: list[Bar]) -> None:
        self.total = total
        self.updates: list[tuple[int, int, bool]] = []
        made.append(self)

    def update(self, done: int, records: int, final: bool = False) -> None:
        self.updates.append((done, records, final))


def test_the_reader_ends_where_the_topic_ended_when_it_began(setup) -> None:
    """The reader itself: progress is made for the real number of offsets
    (the fetch high watermarks, not ListOffsets) and ends at all of them;
    records published while it reads are left for the next run. (One
    broker answers for every partition in one fetch response, so every
    end is known before the first record is handed over.)"""
    from leadsla.streams.topic_reader import Record, read_topic

    s = setup(FIRST_TOUCH)
    create_topics(s.broker, [s.topics["outcomes"]], 4)
    first = [(f"k{i}".encode(), f"v{i}".encode(), []) for i in range(300)]
    publish_batched(s.broker, s.topics["outcomes"], first)
    assert listed_end(s.broker, s.topics["outcomes"]) < len(first)
    seen: list[Record] = []
    bars: list[Bar] = []

    def handle(rec: Record) -> None:
        if not seen:  # the read has begun: 50 more go out before it goes on
            later = [(f"late{i}".encode(), b"late", []) for i in range(50)]
            with ThreadPoolExecutor(1) as pool:
                pool.submit(publish_batched, s.broker, s.topics["outcomes"], later).result()
        seen.append(rec)

    read = asyncio.run(read_topic(s.broker, s.topics["outcomes"], handle, progress=lambda n: Bar(n, bars)))
    assert (read.records, read.partitions, read.stopped) == (300, 4, False)
    assert sorted(r.value for r in seen) == sorted(v for _, v, _ in first)
    (bar,) = bars
    assert bar.total == 300 and bar.updates[-1] == (300, 300, True)
    again = asyncio.run(read_topic(s.broker, s.topics["outcomes"], lambda rec: None))
    assert again.records == 350
