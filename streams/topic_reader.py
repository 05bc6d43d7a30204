"""Reading a whole topic from the command line: the one reader behind
``leadsla recalibrate``, ``leadsla outcomes`` and ``leadsla dead-letters``.

A consumer without a group (nothing is committed, no worker's group joins
or rebalances) is assigned every partition and starts at each one's
earliest offset. Where a partition ends is learned from the high watermark
that fetch responses carry, never from ListOffsets(latest): the embedded
broker answers that too low once a batch holds several records (one batch
of five records "ends" at 1), and a reader trusting it stops early without
a word. So every partition is fetched at least once (an empty one answers
with a high watermark equal to its start, and ends there), its end is the
first high watermark a fetch brings after reading began, and it is done
when the consumer's position reaches that end. Records published while the
read goes on belong to the next run, unless the caller follows the topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from leadsla.streams.kafka_security import KafkaSecurity

# Records per getmany call; whole fetches are handed over at once.
FETCH_RECORDS = 10_000


class TopicReadError(RuntimeError):
    """The topic could not be read to its end: it does not exist, the broker
    cannot be reached, or it stopped answering. The message is one line for
    the user."""


@dataclass(frozen=True, slots=True)
class Record:
    """One Kafka record as read: ``partition``, ``offset``, ``timestamp``
    (epoch ms, the broker's or producer's), ``key`` and ``value`` bytes (or
    None), ``headers`` as (name, bytes) pairs."""

    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass
class TopicRead:
    """What one read did: ``records`` handed over, the topic's
    ``partitions``, ``seconds`` taken, and whether ``stop`` ended it
    (``stopped``) before the end."""

    records: int = 0
    partitions: int = 0
    seconds: float = 0.0
    stopped: bool = False


class ProgressDisplay(Protocol):
    """What the reader drives: ``update(done, records, final)`` with the
    offsets behind it (of the total the display was made for) and the
    records among them."""

    def update(self, done: int, records: int, final: bool = False) -> None: ...


async def read_topic(
    bootstrap: str,
    topic: str,
    handle: Callable[[Record], None],
    *,
    follow: bool = False,
    stop: asyncio.Event | None = None,
    progress: Callable[[int], ProgressDisplay] | None = None,
    stall_timeout: float = 60.0,
    request_timeout: float = 10.0,
    topic_setting: str | None = None,
    security: KafkaSecurity | None = None,
) -> TopicRead:
    """Call ``handle`` with every record of ``topic`` at ``bootstrap``
    (``host:port[,…]``), each partition in offset order (partitions
    interleaved), from the earliest offset.

    Without ``follow``: up to the end each partition had when reading began
    (its first fetch high watermark), then return. With ``follow``: then
    keep handing over new records until ``stop`` is set. ``stop`` set ends
    either kind at once (``stopped`` in the result). ``progress(total)``
    makes a display for ``total`` offsets once every partition's end is
    known (not with ``follow``). ``topic_setting`` names the setting that
    chose the topic, for the message of a missing one. ``security``: TLS
    and SASL (default PLAINTEXT).

    Raises TopicReadError when the topic does not exist, the broker cannot
    be reached or fails a request, or (without ``follow``) when
    ``stall_timeout`` seconds pass with records still due and no end
    learned and no position moved.
    """
    stop = stop or asyncio.Event()
    started = time.monotonic()
    result = TopicRead()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=int(request_timeout * 1000),
        max_partition_fetch_bytes=4 << 20,
        fetch_max_bytes=32 << 20,
        **(security or KafkaSecurity()).client_kwargs(),
    )
    try:
        await consumer.start()
    except KafkaError as exc:
        raise TopicReadError(f"cannot read {topic} at {bootstrap}: {exc}") from None
    try:
        topics = await consumer.topics()
        parts = consumer.partitions_for_topic(topic) if topic in topics else None
        if not parts:
            where = f" ({topic_setting})" if topic_setting else ""
            raise TopicReadError(f"the broker at {bootstrap} has no topic {topic}{where}")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        result.partitions = len(tps)
        consumer.assign(tps)
        begin = await consumer.beginning_offsets(tps)  # ListOffsets(earliest) is right; only "latest" is not
        for tp in tps:
            consumer.seek(tp, begin[tp])
        end: dict[TopicPartition, int] = {}
        done = dict.fromkeys(tps, 0)  # offsets behind us per partition, up to its end
        pending = set(tps)  # end not yet reached (or not yet known)
        bar: ProgressDisplay | None = None
        moved = time.monotonic()
        while not stop.is_set() and (follow or pending):
            batch = await _getmany(consumer, stop, tps if follow else pending)
            # The fetcher sets a partition's high watermark before its records
            # are handed over, so a batch's records always have an end here.
            for tp in pending:
                if tp not in end and (high := consumer.highwater(tp)) is not None:
                    end[tp] = high
                    moved = time.monotonic()
            for tp, recs in batch.items():
                limit = None if follow else end.get(tp)
                for r in recs:
                    if limit is not None and r.offset >= limit:
                        break  # published after the read began: the next run's
                    handle(Record(r.partition, r.offset, r.timestamp, r.key, r.value, tuple(r.headers or ())))
                    result.records += 1
            for tp in list(pending):
                if tp not in end:
                    continue
                pos = await consumer.position(tp)
                behind = min(pos, end[tp]) - begin[tp]
                if behind != done[tp]:
                    done[tp], moved = behind, time.monotonic()
                if pos >= end[tp]:
                    pending.discard(tp)
                    if not follow:
                        consumer.pause(tp)  # fetch only what is still due
            if progress is not None and not follow:
                if bar is None and len(end) == len(tps):
                    bar = progress(sum(end[tp] - begin[tp] for tp in tps))
                if bar is not None:
                    bar.update(sum(done.values()), result.records)
            if not follow and pending and time.monotonic() - moved > stall_timeout:
                due = (f"; {sum(end[tp] - begin[tp] - done[tp] for tp in end):,} records still to read"
                       if len(end) == len(tps) else "")
                raise TopicReadError(f"no answer from {bootstrap} for {stall_timeout:.0f}s while reading "
                                     f"{topic}{due}")
        result.stopped = stop.is_set()
        if bar is not None and not result.stopped:
            bar.update(sum(done.values()), result.records, final=True)
    except KafkaError as exc:
        raise TopicReadError(f"reading {topic} at {bootstrap} failed: {exc}") from None
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
    result.seconds = time.monotonic() - started
    return result


async def _getmany(consumer: AIOKafkaConsumer, stop: asyncio.Event,
                   tps: Any) -> dict[TopicPartition, list[Any]]:
    """One fetch of at most half a second from ``tps``, cut short when ``stop`` is set."""
    fetch = asyncio.ensure_future(consumer.getmany(*tps, timeout_ms=500, max_records=FETCH_RECORDS))
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({fetch, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if not fetch.done():
        fetch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await fetch
        return {}
    return fetch.result()  # type: ignore[no-any-return]
