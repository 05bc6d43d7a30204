"""Reading the whole history of ``lead-events`` once, for ``leadsla recalibrate``.

A consumer without a group (nothing is committed, no worker's group is
touched) is assigned every partition, starts at each one's earliest offset
and stops at the high watermark the partition had when reading began:
records published meanwhile belong to the next run. Records are decoded
by the worker's own decoder (``codec.decode``), so what the monitor would
reject is rejected here too, counted by reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from leadsla.models.events import LeadEvent
from leadsla.streams.codec import Rejection, decode

# aiokafka logs every failed connection attempt as an ERROR line; a read that
# fails is reported once, as a HistoryError.
_QUIET = ("aiokafka", "kafka")


class HistoryError(RuntimeError):
    """The topic could not be read: it does not exist, or the broker stopped answering."""


@dataclass
class ReadStats:
    """What one read saw: ``records`` read (up to the high watermarks),
    ``rejected`` records by dead-letter reason, the topic's ``partitions``,
    and ``seconds`` taken."""

    records: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    partitions: int = 0
    seconds: float = 0.0


class Progress:
    """Progress of a long read on ``stream`` (stderr).

    On a terminal, one line redrawn in place with a carriage return (a bar,
    the share done, records and elapsed time), at most ten times a second.
    Anywhere else (a file, a pipe, CI logs) no control characters at all: a
    plain line every ``interval`` seconds, and only once a read has taken
    that long."""

    WIDTH = 30

    def __init__(self, total: int, label: str, stream: TextIO | None = None, interval: float = 5.0,
                 tty: bool | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = interval
        self._clock = clock
        self._start = self._last = clock()
        self._shown = False
        self._width = 0

    def update(self, done: int, records: int, final: bool = False) -> None:
        """``done`` offsets of ``total`` are behind us, ``records`` of them were records."""
        now = self._clock()
        every = 0.1 if self.tty else self.interval
        if not final and now - self._last < every:
            return
        if final and not self._shown and not self.tty:
            return  # a quick read needs no progress line
        self._last = now
        share = done / self.total if self.total else 1.0
        elapsed = now - self._start
        if self.tty:
            filled = round(share * self.WIDTH)
            line = (f"{self.label} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {share:4.0%} "
                    f"{records:,} records {elapsed:.0f}s")
            pad = " " * max(0, self._width - len(line))  # blank out a longer previous line
            self._width = len(line)
            self.stream.write(f"\r{line}{pad}" + ("\n" if final else ""))
        else:
            self.stream.write(f"{self.label}: {share:.0%} ({records:,} records, {elapsed:.0f}s)\n")
        self._shown = True
        self.stream.flush()


async def read_topic(
    bootstrap: str,
    topic: str,
    handle: Callable[[bytes | None, bytes | None], None],
    progress: Callable[[int], Progress] | None = None,
    stall_timeout: float = 60.0,
    request_timeout: float = 10.0,
) -> ReadStats:
    """Call ``handle(key, value)`` for every record of ``topic``, partition
    by partition in offset order (partitions interleaved), from the earliest
    offset to the high watermark taken at the start. ``progress(total)``
    makes the progress display for ``total`` offsets. Raises HistoryError
    when the topic does not exist or no record arrives for
    ``stall_timeout`` seconds while some are due."""
    stats = ReadStats()
    started = time.monotonic()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=int(request_timeout * 1000),
        max_partition_fetch_bytes=4 << 20,
        fetch_max_bytes=32 << 20,
    )
    try:
        await consumer.start()
    except KafkaError as exc:
        raise HistoryError(f"cannot read {topic} at {bootstrap}: {exc}") from None
    try:
        topics = await consumer.topics()
        parts = consumer.partitions_for_topic(topic) if topic in topics else None
        if not parts:
            raise HistoryError(f"the broker at {bootstrap} has no topic {topic} (LEADSLA_INPUT_TOPIC)")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        stats.partitions = len(tps)
        consumer.assign(tps)
        begin = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        pending: set[TopicPartition] = set()
        for tp in tps:
            if end[tp] > begin[tp]:
                consumer.seek(tp, begin[tp])
                pending.add(tp)
        consumer.pause(*(tp for tp in tps if tp not in pending))
        total = sum(end[tp] - begin[tp] for tp in tps)
        bar = progress(total) if progress is not None else None
        done = dict.fromkeys(tps, 0)  # offsets behind us per partition
        moved = time.monotonic()
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=500, max_records=10_000)
            for tp, recs in batch.items():
                for r in recs:
                    if r.offset >= end[tp]:
                        break  # published after the read began
                    handle(r.key, r.value)
                    stats.records += 1
            for tp in list(pending):
                pos = await consumer.position(tp)
                behind = min(pos, end[tp]) - begin[tp]
                if behind != done[tp]:
                    done[tp], moved = behind, time.monotonic()
                if pos >= end[tp]:
                    pending.discard(tp)
                    consumer.pause(tp)
            if bar is not None:
                bar.update(sum(done.values()), stats.records)
            if pending and time.monotonic() - moved > stall_timeout:
                raise HistoryError(f"no record of {topic} arrived from {bootstrap} for {stall_timeout:.0f}s; "
                                   f"{total - sum(done.values()):,} of {total:,} still to read")
        if bar is not None:
            bar.update(total, stats.records, final=True)
    except KafkaError as exc:
        raise HistoryError(f"reading {topic} at {bootstrap} failed: {exc}") from None
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
    stats.seconds = time.monotonic() - started
    return stats


def read_events(
    bootstrap: str,
    topic: str,
    on_event: Callable[[LeadEvent], object],
    *,
    max_event_bytes: int,
    max_skew_us: int,
    now_us: int,
    show_progress: bool = True,
    stream: TextIO | None = None,
) -> ReadStats:
    """Read ``topic`` once (see :func:`read_topic`) and call ``on_event``
    with each record that ``codec.decode`` accepts (size limit
    ``max_event_bytes``, ``occurred_at`` at most ``max_skew_us`` after
    ``now_us``, epoch µs), in partition order. Rejected records are counted
    by reason in the returned stats. Runs its own event loop; raises
    HistoryError (see :func:`read_topic`)."""
    stats_rejected: Counter[str] = Counter()

    def handle(key: bytes | None, value: bytes | None) -> None:
        out = decode(key, value, max_event_bytes, now_us, max_skew_us)
        if isinstance(out, Rejection):
            stats_rejected[out.reason] += 1
        else:
            on_event(out)

    def make(total: int) -> Progress:
        return Progress(total, f"reading {topic}", stream)

    levels = {name: logging.getLogger(name).level for name in _QUIET}
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        stats = asyncio.run(read_topic(bootstrap, topic, handle, make if show_progress else None))
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    stats.rejected = stats_rejected
    return stats
