"""Reading the whole history of ``lead-events`` once, for ``leadsla recalibrate``.

The topic is read by ``topic_reader.read_topic`` (no group, nothing
committed; each partition from its earliest offset to the end its first
fetch reports when reading began: records published meanwhile belong to the
next run). Records are decoded by the worker's own decoder
(``codec.decode``), so what the monitor would reject is rejected here too,
counted by reason.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from leadsla.models.events import LeadEvent
from leadsla.streams.codec import Rejection, decode
from leadsla.streams.kafka_security import KafkaSecurity
from leadsla.streams.topic_reader import Record, TopicReadError, read_topic

# aiokafka logs every failed connection attempt as an ERROR line; a read that
# fails is reported once, as a HistoryError.
_QUIET = ("aiokafka", "kafka")

# The topic could not be read: it does not exist, or the broker stopped
# answering (one line for the user).
HistoryError = TopicReadError


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
    security: KafkaSecurity | None = None,
) -> ReadStats:
    """Read ``topic`` once (``topic_reader.read_topic``) and call ``on_event``
    with each record that ``codec.decode`` accepts (size limit
    ``max_event_bytes``, ``occurred_at`` at most ``max_skew_us`` after
    ``now_us``, epoch µs), in partition order. Rejected records are counted
    by reason in the returned stats. Runs its own event loop; raises
    HistoryError when the topic does not exist or cannot be read to its
    end (``topic_reader.read_topic``)."""
    stats_rejected: Counter[str] = Counter()

    def handle(rec: Record) -> None:
        out = decode(rec.key, rec.value, max_event_bytes, now_us, max_skew_us)
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
        read = asyncio.run(read_topic(bootstrap, topic, handle, progress=make if show_progress else None,
                                      topic_setting="LEADSLA_INPUT_TOPIC", security=security))
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    return ReadStats(read.records, stats_rejected, read.partitions, read.seconds)
