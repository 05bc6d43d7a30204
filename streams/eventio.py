"""Events in and records out from the command line: ``leadsla publish``,
``leadsla outcomes`` and ``leadsla dead-letters``.

Publishing checks every line with the worker's own decoder
(``codec.decode``: the size limit, the event model, the clock skew) before
anything is sent, so a line the monitor would dead-letter is reported with
its line number and reason instead, and the valid lines go out keyed by
their ``lead_id``. Input is JSON lines, or a CSV export mapped to event
fields (``CsvMapping``).

Reading is ``topic_reader.read_topic``'s: a consumer without a group
(nothing is committed, no worker's consumer group is joined or rebalanced)
that reads each partition to the end the fetch responses report, so a read
without ``follow`` stops at the records that existed when it started.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import hashlib
import io
import logging
import math
import os
import re
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from leadsla.models.durations import format_duration_us
from leadsla.models.events import format_timestamp_us
from leadsla.streams.codec import MALFORMED, TOO_LARGE, Rejection, decode
from leadsla.streams.history import Progress
from leadsla.streams.kafka_security import KafkaSecurity
from leadsla.streams.topic_reader import Record, TopicReadError, read_topic

# aiokafka logs every failed connection attempt as an ERROR line; a failure
# is reported once, as an EventIOError.
_QUIET = ("aiokafka", "kafka")

# The event fields a CSV column can fill (contract §1); ``attributes.NAME``
# fills one attribute.
EVENT_FIELDS = ("event_id", "lead_id", "type", "occurred_at", "source", "segment", "persona", "team", "rep",
                "region", "channel", "amount", "currency")
ATTRIBUTE_PREFIX = "attributes."
# A file at least this large shows progress (a terminal: a bar; elsewhere a
# line every five seconds once publishing has taken that long).
PROGRESS_MIN_BYTES = 1 << 20
# Records in flight before the publisher waits for their delivery: bounds
# memory on large files without waiting for every record one by one.
IN_FLIGHT = 2000
_UTF8_BOM = b"\xef\xbb\xbf"
# A local date and time without an offset, as CRM exports write them
# ("2026-11-22 09:15", "2026-11-22T09:15:00.5").
_NAIVE = re.compile(r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2})(:\d{2}(?:\.\d{1,6})?)?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class EventIOError(RuntimeError):
    """A command cannot go on: bad options, an unreadable file, a topic
    that does not exist, or a broker that stopped answering. The message is
    one line for the user."""


# -- checking input lines ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limits:
    """The worker's limits a line is checked against: ``max_event_bytes``
    (key plus value, bytes) and ``max_skew_us`` (how far ``occurred_at`` may
    be ahead of ``now_us()``, µs). ``now_us`` returns epoch µs."""

    max_event_bytes: int
    max_skew_us: int
    now_us: Callable[[], int] = field(default=lambda: time.time_ns() // 1000)


@dataclass(frozen=True, slots=True)
class Good:
    """A line that the worker accepts: sent as ``key`` (the ``lead_id``,
    UTF-8) and ``value`` (the JSON bytes)."""

    line: int
    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class Bad:
    """A line the worker would reject: its 1-based ``line`` number, the
    dead-letter ``reason`` (``malformed``, ``invalid``, ``unknown_type``,
    ``too_large``) and the ``error`` message. Never holds the line itself."""

    line: int
    reason: str
    error: str

    def report(self) -> str:
        """``line 7: invalid: lead_id: Field required``: one line, no content of the input line."""
        return f"line {self.line}: {self.reason}: {self.error}"


def check_value(line: int, value: bytes, limits: Limits) -> Good | Bad:
    """Judge one record value as the worker would, keyed by its own
    ``lead_id`` (as ``leadsla publish`` sends it): ``codec.decode`` with
    ``limits``. Never raises."""
    key: bytes | None = None
    with contextlib.suppress(orjson.JSONDecodeError):
        data = orjson.loads(value)
        if isinstance(data, dict) and isinstance(data.get("lead_id"), str):
            key = data["lead_id"].encode("utf-8", "surrogatepass")
    out = decode(key, value, limits.max_event_bytes, limits.now_us(), limits.max_skew_us)
    if isinstance(out, Rejection):
        return Bad(line, out.reason, out.error)
    assert key is not None  # decode accepts only a record whose key is its lead_id
    return Good(line, key, value)


def jsonl_lines(stream: IO[bytes], limits: Limits) -> Iterator[Good | Bad]:
    """The lines of a JSON-lines ``stream`` (bytes), each judged by
    :func:`check_value`, numbered from 1. Blank lines are skipped; a
    trailing ``\\r`` and a UTF-8 byte order mark before the first line are
    removed. A line longer than ``limits.max_event_bytes`` is rejected as
    ``too_large`` without being held in memory whole."""
    cap = limits.max_event_bytes
    number = 0
    while True:
        chunk = stream.readline(cap + 2)  # the value, "\r\n", and one byte to tell it is longer
        if not chunk:
            return
        number += 1
        if number == 1 and chunk.startswith(_UTF8_BOM):
            chunk = chunk[len(_UTF8_BOM):]
        if not chunk.endswith(b"\n") and len(chunk) >= cap + 2:
            size = len(chunk)
            while not chunk.endswith(b"\n"):
                chunk = stream.readline(1 << 20)
                if not chunk:
                    break
                size += len(chunk)
            size -= 2 if chunk.endswith(b"\r\n") else 1 if chunk.endswith(b"\n") else 0
            yield Bad(number, TOO_LARGE, f"line is {size} bytes; the limit is {cap} (LEADSLA_MAX_EVENT_BYTES)")
            continue
        value = chunk.rstrip(b"\r\n")
        if not value.strip():
            continue
        yield check_value(number, value, limits)


@dataclass(frozen=True)
class CsvMapping:
    """How CSV columns become event fields.

    ``columns``: event field (one of ``EVENT_FIELDS`` or ``attributes.NAME``)
    → CSV column header; fields not given here are taken from a column of
    the same name, if there is one. ``constants``: field → a value for every
    row (``type=lead.created``). ``extra_to_attributes``: columns no field
    uses go to ``attributes`` under their header. ``timezone``: an IANA
    zone in which timestamps without an offset are read (None: such a
    timestamp is invalid, as it is for the worker). ``delimiter`` separates
    fields.
    """

    columns: dict[str, str] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    extra_to_attributes: bool = False
    timezone: str | None = None
    delimiter: str = ","

    def __post_init__(self) -> None:
        for name in (*self.columns, *self.constants):
            check_field_name(name)
        both = sorted(set(self.columns) & set(self.constants))
        if both:
            raise EventIOError(f"{both[0]} is given both a column (--map) and a value (--set); choose one")
        if self.timezone is not None:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise EventIOError(f"--timezone: unknown time zone {self.timezone!r} "
                                   "(an IANA name such as Europe/Berlin or UTC)") from None
        if len(self.delimiter) != 1:
            raise EventIOError(f"--delimiter must be one character, got {self.delimiter!r}")


def check_field_name(name: str) -> None:
    """Raises EventIOError unless ``name`` is an event field or ``attributes.NAME``."""
    if name in EVENT_FIELDS or (name.startswith(ATTRIBUTE_PREFIX) and len(name) > len(ATTRIBUTE_PREFIX)):
        return
    raise EventIOError(f"{name!r} is not an event field; use one of {', '.join(EVENT_FIELDS)} "
                       "or attributes.NAME")


def parse_assignments(items: Iterable[str], flag: str) -> dict[str, str]:
    """``["lead_id=Lead ID", …]`` → ``{"lead_id": "Lead ID"}`` (split at the
    first ``=``, the field name stripped). Raises EventIOError naming
    ``flag`` for an item without ``=`` or a field given twice."""
    out: dict[str, str] = {}
    for item in items:
        name, eq, value = item.partition("=")
        name = name.strip()
        if not eq or not name:
            raise EventIOError(f"{flag} takes FIELD=VALUE, got {item!r}")
        if name in out:
            raise EventIOError(f"{flag}: {name} is given twice")
        out[name] = value
    return out


def _local_timestamp(text: str, zone: ZoneInfo) -> str | None:
    """``2026-11-22 09:15`` read in ``zone`` → RFC 3339 with its offset; None
    if ``text`` is not such a local timestamp. Of an ambiguous time (a DST
    fall-back) the first is taken."""
    m = _NAIVE.fullmatch(text)
    if m is None:
        return None
    try:
        dt = datetime.fromisoformat(f"{m[1]}T{m[2]}{m[3] or ':00'}").replace(tzinfo=zone)
        return dt.isoformat()
    except ValueError:
        return None  # e.g. 25:00; the worker's rule explains what is wrong


def _number(text: str) -> int | float | str:
    """A CSV amount as a JSON number (``1250``, ``99.5``); text that is not
    one stays text, so the worker's rule rejects it with its own message."""
    t = text.strip()
    try:
        return int(t)
    except ValueError:
        pass
    try:
        value = float(t)
    except ValueError:
        return text
    # NaN and infinities are no JSON numbers (they would go out as null):
    # kept as text, they are rejected like any other non-number.
    return value if math.isfinite(value) else text


def header_names(names: Iterable[str], longest: int = 40, most: int = 20) -> str:
    """Header names for a message: a header is the CSV's first row, which
    in a file that is not a CSV export (a JSON line read as CSV) can be an
    event, lead id and all. So each is cut to ``longest`` characters, with
    control characters shown as ``?``, and at most ``most`` are listed."""
    shown = []
    names = list(names)
    for name in names[:most]:
        if "@" in name:
            shown.append("(an e-mail address)")
            continue
        clean = _CONTROL.sub("?", name)
        shown.append(clean if len(clean) <= longest else clean[: longest - 1] + "…")
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(shown) + more


def derived_event_id(event: dict[str, Any]) -> str:
    """An event id from the row's content (every field but ``event_id``):
    ``csv-`` and 32 hex digits of a SHA-256. The same row published twice
    gets the same id, so the monitor counts it once."""
    digest = hashlib.sha256(orjson.dumps(event, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"csv-{digest[:32]}"


class CsvRows:
    """The rows of a CSV ``stream`` (text, header on its first line), each
    made an event by ``mapping`` and judged by :func:`check_value`.

    Raises EventIOError from the constructor when the header is missing or a
    mapped column is not in it. Line numbers are those of the file (the
    header is line 1; a row with a quoted line break is numbered by its
    first line). Empty cells leave their field out. Without an ``event_id``
    column (or ``--set``) each row gets :func:`derived_event_id`.
    """

    def __init__(self, stream: Iterable[str], mapping: CsvMapping, limits: Limits) -> None:
        self.mapping = mapping
        self.limits = limits
        # No field may be larger than an event; a quote left open would
        # otherwise read the rest of the file into one field.
        csv.field_size_limit(max(limits.max_event_bytes, 1024))
        self._reader = csv.reader(stream, delimiter=mapping.delimiter)
        try:
            header = next(self._reader)
        except StopIteration:
            raise EventIOError("the CSV file is empty: it needs a header line") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise EventIOError(f"line 1: cannot read the CSV header: {exc}") from None
        if header and header[0].lstrip().startswith(("{", "[")):
            raise EventIOError("line 1 looks like JSON, not a CSV header: publish JSON lines with --format jsonl "
                               "(or a name ending in .jsonl)")
        if header and header[0].startswith("\ufeff"):
            header[0] = header[0][1:]
        self.header = [h.strip() for h in header]
        index = {h: i for i, h in reversed(list(enumerate(self.header)))}
        self.fields: list[tuple[str, int]] = []
        for name, column in mapping.columns.items():
            if column.strip() not in index:
                raise EventIOError(f"--map {name}={column}: the CSV has no column {column!r} "
                                   f"(its columns: {header_names(self.header)})")
            self.fields.append((name, index[column.strip()]))
        used = {i for _, i in self.fields}
        for name in EVENT_FIELDS:
            if name not in mapping.columns and name not in mapping.constants and name in index:
                self.fields.append((name, index[name]))
                used.add(index[name])
        self.extra = [(h, i) for i, h in enumerate(self.header) if i not in used and h] \
            if mapping.extra_to_attributes else []
        self.derive_id = "event_id" not in mapping.constants and all(n != "event_id" for n, _ in self.fields)
        self.zone = ZoneInfo(mapping.timezone) if mapping.timezone else None

    @property
    def unused(self) -> list[str]:
        """Header names of the columns no field takes (left out of the events)."""
        used = {i for _, i in self.fields} | {i for _, i in self.extra}
        return [h for i, h in enumerate(self.header) if i not in used and h]

    def event(self, row: list[str]) -> dict[str, Any]:
        """The event a row makes (before validation)."""
        ev: dict[str, Any] = {}
        attrs: dict[str, str] = {}
        for name, value in [*((n, row[i]) for n, i in self.fields), *self.mapping.constants.items()]:
            if value == "":
                continue
            if name.startswith(ATTRIBUTE_PREFIX):
                attrs[name[len(ATTRIBUTE_PREFIX):]] = value
            elif name == "amount":
                ev[name] = _number(value)
            elif name == "occurred_at" and self.zone is not None:
                ev[name] = _local_timestamp(value.strip(), self.zone) or value
            else:
                ev[name] = value
        for header, i in self.extra:
            if row[i] != "" and header not in attrs:
                attrs[header] = row[i]
        if attrs:
            ev["attributes"] = attrs
        if self.derive_id:
            ev["event_id"] = derived_event_id(ev)
        return ev

    def __iter__(self) -> Iterator[Good | Bad]:
        """The rows as ``Good`` or ``Bad``. Raises EventIOError for bytes
        that are not text in the encoding, and for a local time (no UTC
        offset) without ``--timezone`` before any row was good: such an
        export has them on every row, so one message replaces one rejection
        per row, and nothing has been sent yet."""
        reader = self._reader
        good = explained = False
        while True:
            first = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield Bad(first, MALFORMED, f"not a CSV row: {exc}")
                continue
            except UnicodeDecodeError as exc:
                # The decoder cannot go on past bytes that are not text.
                raise EventIOError(f"line {first}: the file is not {exc.encoding} text; "
                                   "give its encoding with --encoding") from None
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(self.header):
                yield Bad(first, MALFORMED, f"has {len(row)} fields; the header has {len(self.header)}")
                continue
            ev = self.event(row)
            try:
                value = orjson.dumps(ev)
            except orjson.JSONEncodeError as exc:
                yield Bad(first, MALFORMED, f"cannot be encoded as UTF-8 JSON: {exc}")
                continue
            out = check_value(first, value, self.limits)
            if isinstance(out, Bad) and self.zone is None and isinstance(ev.get("occurred_at"), str) \
                    and _NAIVE.fullmatch(ev["occurred_at"].strip()):
                if not good:
                    shown = _CONTROL.sub("?", ev["occurred_at"].strip())[:40]
                    raise EventIOError(f"line {first}: occurred_at {shown!r} has no UTC offset: give --timezone "
                                       "ZONE (an IANA name such as Europe/Berlin, or UTC) to read the file's local "
                                       "times in it; no event was sent")
                if not explained:  # a mixed file: say it once, on its first local time
                    out = Bad(out.line, out.reason, out.error + " (a local time: read it in a zone with --timezone)")
                    explained = True
            good = good or isinstance(out, Good)
            yield out


# -- publishing -------------------------------------------------------------------


@dataclass
class PublishStats:
    """What ``publish`` did: ``sent`` records delivered, ``rejected`` lines
    by reason, ``seconds`` taken."""

    sent: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    interrupted: bool = False  # a signal stopped the reading; what was read before it was sent

    def summary(self, topic: str, dry_run: bool = False) -> str:
        """``sent 98 events to lead-events, rejected 2 lines (1 invalid, 1 malformed)``."""
        n = sum(self.rejected.values())
        verb = "would send" if dry_run else "sent"
        text = (f"{verb} {self.sent:,} event{'' if self.sent == 1 else 's'} to {topic}, "
                f"rejected {n:,} line{'' if n == 1 else 's'}")
        if n:
            text += " (" + ", ".join(f"{c:,} {r}" for r, c in sorted(self.rejected.items())) + ")"
        if self.interrupted:
            text += "; interrupted: the input after that was not read"
        return text


class _Position:
    """How far a binary stream has been read (bytes), for progress."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw

    def __call__(self) -> int:
        try:
            return self.raw.tell()
        except (OSError, ValueError):
            return 0


async def publish(
    items: Iterable[Good | Bad],
    bootstrap: str | None,
    topic: str,
    report: Callable[[Bad], None],
    *,
    progress: Progress | None = None,
    position: Callable[[], int] | None = None,
    request_timeout: float = 30.0,
    max_request_size: int = 1_048_576,
    blocking_input: bool = False,
    stop: asyncio.Event | None = None,
    security: KafkaSecurity | None = None,
) -> PublishStats:
    """Send the ``Good`` items to ``topic`` at ``bootstrap`` (``host:port``
    list), in order, keyed by lead id; call ``report`` with each ``Bad``
    one. ``bootstrap`` None: a dry run, nothing is sent (``sent`` counts
    what would be). ``progress`` is updated with ``position()`` (bytes read)
    and the lines seen. ``blocking_input``: ``items`` may wait for its
    input (a pipe, a terminal), so it is read in a thread of its own and
    each event goes out as soon as its line is read. ``stop`` set (a signal):
    no more items are read, and what was read is delivered.

    Raises EventIOError when the topic does not exist, or when a record
    cannot be delivered (the message says how many were sent before); the
    items after it are not read.
    """
    stats = PublishStats()
    started = time.monotonic()
    producer: AIOKafkaProducer | None = None
    if bootstrap is not None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                    request_timeout_ms=int(request_timeout * 1000),
                                    max_request_size=max_request_size, **(security or KafkaSecurity()).client_kwargs())
        try:
            await producer.start()
            meta = await producer.client.fetch_all_metadata()
        except KafkaError as exc:
            with contextlib.suppress(Exception):
                await producer.stop()
            raise EventIOError(f"cannot publish to {bootstrap}: {exc}") from None
        if topic not in meta.topics():
            await producer.stop()
            raise EventIOError(f"the broker at {bootstrap} has no topic {topic} (LEADSLA_INPUT_TOPIC); "
                               "leadsla run and leadsla broker create it")
    pending: list[tuple[int, asyncio.Future[Any]]] = []
    lines = 0

    async def settle() -> None:
        for line, fut in pending:
            try:
                await fut
            except KafkaError as exc:
                raise EventIOError(f"line {line} was not delivered to {topic}: {exc}; {stats.sent:,} events "
                                   "sent before it (lines after it were not sent)") from None
            stats.sent += 1
        pending.clear()

    try:
        async for item in _feed(items, blocking_input, stop):
            lines += 1
            if isinstance(item, Bad):
                stats.rejected[item.reason] += 1
                report(item)
            elif producer is None:
                stats.sent += 1
            else:
                try:
                    fut = await producer.send(topic, item.value, key=item.key)
                except KafkaError as exc:
                    raise EventIOError(f"line {item.line} could not be sent to {topic}: {exc}; "
                                       f"{stats.sent + len(pending):,} events sent before it") from None
                pending.append((item.line, fut))
                if len(pending) >= IN_FLIGHT:
                    await settle()
            if progress is not None and position is not None and lines % 256 == 0:
                progress.update(position(), lines)
        if producer is not None:
            await producer.flush()
            await settle()
        if progress is not None and position is not None:
            progress.update(progress.total, lines, final=True)
    finally:
        if producer is not None:
            for _, fut in pending:
                fut.cancel()
            with contextlib.suppress(Exception):
                await producer.stop()
    stats.seconds = time.monotonic() - started
    return stats


async def _feed(items: Iterable[Good | Bad], blocking: bool, stop: asyncio.Event | None) -> AsyncIterator[Good | Bad]:
    """``items`` for ``publish``, until they end or ``stop`` is set. A
    blocking input is read by a daemon thread: the event loop (and with it
    the producer's sender) runs while a line is awaited, and a signal need
    not wait for the next line. Errors of the reading come out here."""
    if not blocking:
        for item in items:
            if stop is not None and stop.is_set():
                return
            yield item
        return
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=256)

    def read() -> None:
        try:
            try:
                for item in items:
                    asyncio.run_coroutine_threadsafe(queue.put(("item", item)), loop).result()
            except Exception as exc:  # handed to the caller, raised there
                asyncio.run_coroutine_threadsafe(queue.put(("error", exc)), loop).result()
            else:
                asyncio.run_coroutine_threadsafe(queue.put(("end", None)), loop).result()
        except BaseException:  # noqa: S110 - the loop closed (interrupted): nobody is listening any more
            pass

    threading.Thread(target=read, name="leadsla-publish-input", daemon=True).start()
    stopped = asyncio.ensure_future(stop.wait()) if stop is not None else None
    try:
        while True:
            got = asyncio.ensure_future(queue.get())
            waits: set[asyncio.Future[Any]] = {got} if stopped is None else {got, stopped}
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if not got.done():
                got.cancel()
                return
            kind, value = got.result()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        if stopped is not None:
            stopped.cancel()


def _own_stdin() -> IO[bytes]:
    """Standard input through a buffer of its own (a duplicate of its file
    descriptor). The thread that reads a pipe is still blocked in a read
    when a signal ends the command; were that read on ``sys.stdin``'s own
    buffer, the interpreter's shutdown would find that buffer's lock held
    and abort (SIGABRT) instead of exiting 130."""
    try:
        fd = os.dup(sys.stdin.fileno())
    except (AttributeError, OSError, ValueError):  # no real descriptor (replaced in tests)
        return sys.stdin.buffer
    return os.fdopen(fd, "rb")


def open_input(path: str, binary: bool, encoding: str) -> tuple[IO[Any], IO[bytes], int | None]:
    """Open ``path`` (``-``: standard input) for reading: (the stream — bytes
    or text in ``encoding`` — the underlying byte stream for positions, and
    its size in bytes when it is a regular file). Raises EventIOError."""
    if path == "-":
        raw = _own_stdin()
        size = None
    else:
        try:
            raw = open(path, "rb")  # noqa: SIM115 (closed by the caller)
        except OSError as exc:
            raise EventIOError(f"cannot read {path}: {exc.strerror}") from None
        try:
            size = os.fstat(raw.fileno()).st_size if os.path.isfile(path) else None
        except OSError:
            size = None
    if binary:
        return raw, raw, size
    try:
        text = io.TextIOWrapper(raw, encoding=encoding, newline="")
    except LookupError:
        raise EventIOError(f"--encoding: unknown encoding {encoding!r}") from None
    return text, raw, size


def input_format(path: str, given: str) -> str:
    """``jsonl`` or ``csv``: ``given`` unless it is ``auto``, then ``csv`` for
    a name ending in ``.csv`` (any case) and ``jsonl`` otherwise (stdin too)."""
    if given != "auto":
        return given
    return "csv" if path != "-" and path.lower().endswith(".csv") else "jsonl"


def publish_file(
    path: str,
    bootstrap: str | None,
    topic: str,
    limits: Limits,
    *,
    fmt: str = "auto",
    mapping: CsvMapping | None = None,
    encoding: str = "utf-8",
    err: TextIO | None = None,
    show_progress: bool = True,
    security: KafkaSecurity | None = None,
) -> PublishStats:
    """``leadsla publish``: read ``path`` (``-``: stdin) as JSON lines or CSV
    (:func:`input_format`; ``mapping`` for CSV), report each rejected line
    on ``err`` (stderr) as ``line N: reason: error``, send the others to
    ``topic`` (``bootstrap`` None: a dry run). Progress on ``err`` for a
    file of ``PROGRESS_MIN_BYTES`` or more. Raises EventIOError (bad file,
    CSV header or mapping, missing topic, failed delivery)."""
    err = err if err is not None else sys.stderr
    kind = input_format(path, fmt)
    if kind == "jsonl" and mapping is not None and mapping != CsvMapping():
        raise EventIOError("--map, --set, --extra-columns, --timezone and --delimiter apply to CSV input "
                           "(--format csv, or a file named *.csv)")
    stream, raw, size = open_input(path, binary=kind == "jsonl", encoding="utf-8-sig" if encoding == "utf-8" else encoding)
    try:
        if kind == "jsonl":
            items: Iterable[Good | Bad] = jsonl_lines(stream, limits)
        else:
            rows = CsvRows(stream, mapping or CsvMapping(), limits)
            if rows.unused:
                print(f"leadsla publish: columns left out: {header_names(rows.unused)} "
                      "(map them with --map FIELD=COLUMN, or --extra-columns attributes)", file=err)
            items = rows
        bar = None
        if show_progress and size is not None and size >= PROGRESS_MIN_BYTES:
            bar = Progress(size, f"publishing {os.path.basename(path)}", err)

        def report(bad: Bad) -> None:
            if bar is not None and bar.tty:
                err.write("\r\x1b[K")  # clear the progress line first
            print(f"leadsla publish: {bad.report()}", file=err, flush=True)

        async def go() -> PublishStats:
            # Ctrl-C or SIGTERM: stop reading, deliver what was read, report it.
            with _stopped_by_signals() as stop:
                stats = await publish(items, bootstrap, topic, report, progress=bar, position=_Position(raw),
                                      blocking_input=size is None, stop=stop, security=security)
            stats.interrupted = stop.is_set()
            return stats

        with quiet_kafka_logs():
            return asyncio.run(go())
    finally:
        if path != "-":
            stream.close()


def quiet_kafka_logs() -> contextlib.AbstractContextManager[None]:
    """A context in which aiokafka logs nothing below CRITICAL (a failure is
    reported once, by the command)."""

    @contextlib.contextmanager
    def quiet() -> Iterator[None]:
        levels = {name: logging.getLogger(name).level for name in _QUIET}
        for name in _QUIET:
            logging.getLogger(name).setLevel(logging.CRITICAL)
        try:
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)

    return quiet()


# -- reading outcomes and dead letters ----------------------------------------------


@contextlib.contextmanager
def _stopped_by_signals() -> Iterator[asyncio.Event]:
    """An event that Ctrl-C (SIGINT) or SIGTERM sets while the block runs,
    handled by the running event loop (no KeyboardInterrupt mid-send)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    sigs = (signal.SIGINT, signal.SIGTERM)
    for sig in sigs:
        loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in sigs:
            loop.remove_signal_handler(sig)


def read_until_interrupted(
    bootstrap: str, topic: str, handle: Callable[[Record], None], follow: bool,
    security: KafkaSecurity | None = None,
) -> tuple[int, bool]:
    """Call ``handle`` with every record of ``topic`` (``topic_reader.read_topic``:
    no group, nothing committed, each partition from its earliest offset to
    the end it had when reading began; with ``follow``, then new records as
    they come) in its own event loop with aiokafka's log quiet. Ctrl-C
    (SIGINT) and SIGTERM end the read cleanly. Returns (records handled,
    whether a signal ended it). Raises EventIOError when the topic does not
    exist or cannot be read to its end."""

    async def go() -> tuple[int, bool]:
        with _stopped_by_signals() as stop:
            read = await read_topic(bootstrap, topic, handle, follow=follow, stop=stop, security=security)
        return read.records, read.stopped

    with quiet_kafka_logs():
        try:
            return asyncio.run(go())
        except TopicReadError as exc:
            raise EventIOError(str(exc)) from None


# -- what is printed ------------------------------------------------------------------


def text_or_base64(raw: bytes | None) -> tuple[str | None, str | None]:
    """Bytes as printable JSON: (the text, ``"utf-8"``) when they are UTF-8,
    else (base64, ``"base64"``); (None, None) for no bytes."""
    if raw is None:
        return None, None
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


@dataclass(frozen=True)
class Filters:
    """Which records to print; each non-empty set must contain the record's
    value (any of several matches): ``policies``, ``outcomes`` (outcome
    records), ``leads`` (the record key, or an outcome's ``lead_id``),
    ``reasons`` (a dead letter's ``reason`` header)."""

    policies: frozenset[str] = frozenset()
    outcomes: frozenset[str] = frozenset()
    leads: frozenset[str] = frozenset()
    reasons: frozenset[str] = frozenset()


def outcome_of(rec: Record) -> dict[str, Any] | None:
    """The ``sla-outcomes`` record's JSON object; None when the value is not
    one (not written by leadsla)."""
    if rec.value is None:
        return None
    try:
        data = orjson.loads(rec.value)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def outcome_matches(out: dict[str, Any], rec: Record, f: Filters) -> bool:
    """Whether an outcome record passes the filters ``f``."""
    if f.policies and out.get("policy") not in f.policies:
        return False
    if f.outcomes and out.get("outcome") not in f.outcomes:
        return False
    if f.leads:
        key = rec.key.decode("utf-8", "replace") if rec.key is not None else None
        if out.get("lead_id") not in f.leads and key not in f.leads:
            return False
    return True


def header(rec: Record, name: str) -> str | None:
    """The last header ``name`` of ``rec`` as text (undecodable bytes replaced); None if absent."""
    value = None
    for k, v in rec.headers:
        if k == name:
            value = v.decode("utf-8", "replace") if v is not None else ""
    return value


def dead_letter_dict(rec: Record) -> dict[str, Any]:
    """A dead letter as one JSON object: ``partition``, ``offset``,
    ``timestamp`` (RFC 3339, when the record was written), ``reason`` and
    ``error`` (its headers), ``key`` and ``value`` with ``key_encoding`` and
    ``value_encoding`` (``utf-8``: the bytes as text; ``base64``: they are not
    UTF-8; null: no bytes), and, for a dead letter sent cut,
    ``truncated: true``, ``original_size`` (bytes) and ``original_sha256``."""
    key, key_enc = text_or_base64(rec.key)
    value, value_enc = text_or_base64(rec.value)
    out: dict[str, Any] = {
        "partition": rec.partition,
        "offset": rec.offset,
        "timestamp": _ms(rec.timestamp),
        "reason": header(rec, "reason"),
        "error": header(rec, "error"),
        "key": key,
        "key_encoding": key_enc,
        "value": value,
        "value_encoding": value_enc,
    }
    if header(rec, "truncated") is not None:
        out["truncated"] = header(rec, "truncated") == "true"
    size = header(rec, "original-size")
    if size is not None:
        out["original_size"] = int(size) if size.isdigit() else size
    digest = header(rec, "original-sha256")
    if digest is not None:
        out["original_sha256"] = digest
    return out


def dead_letter_matches(rec: Record, f: Filters) -> bool:
    """Whether a dead letter passes the filters ``f`` (``leads``: its key)."""
    if f.reasons and header(rec, "reason") not in f.reasons:
        return False
    if f.leads:
        key = rec.key.decode("utf-8", "replace") if rec.key is not None else None
        if key not in f.leads:
            return False
    return True


def _ms(ms: int) -> str | None:
    try:
        return format_timestamp_us(ms * 1000)
    except ValueError:
        return None  # a producer may set any timestamp; -1 means none


def _cell(value: Any, width: int | None) -> str:
    """Table text: control characters shown as ``?`` (a record must not move
    the cursor), cut to ``width`` with ``…``."""
    text = "-" if value is None or value == "" else str(value)
    text = _CONTROL.sub("?", text)
    if width is not None:
        if len(text) > width:
            text = text[: width - 1] + "…"
        text = text.ljust(width)
    return text


# (title, width; None: the rest of the line)
OUTCOME_COLUMNS = (("DECIDED_AT", 24), ("POLICY", 18), ("OUTCOME", 9), ("LEAD", 24), ("TEAM", 12),
                   ("STARTED_AT", 24), ("DEADLINE", 24), ("ELAPSED", None))
DEAD_LETTER_COLUMNS = (("TIMESTAMP", 24), ("AT", 10), ("REASON", 12), ("KEY", 24), ("ERROR", None))


def table_header(columns: tuple[tuple[str, int | None], ...]) -> str:
    """The title line of a table."""
    return "  ".join(_cell(t, w) for t, w in columns).rstrip()


def outcome_row(out: dict[str, Any]) -> str:
    """One outcome as a table line of fixed-width columns (a long value is
    cut): widths do not depend on other rows, so ``--follow`` prints each
    record as it arrives."""
    elapsed = out.get("elapsed_seconds")
    if isinstance(elapsed, int | float) and not isinstance(elapsed, bool) and elapsed >= 0:
        elapsed = format_duration_us(round(elapsed) * 1_000_000)  # whole seconds: a table is read, not parsed
    values = (out.get("decided_at"), out.get("policy"), out.get("outcome"), out.get("lead_id"), out.get("team"),
              out.get("started_at"), out.get("deadline"), elapsed)
    return "  ".join(_cell(v, w) for v, (_, w) in zip(values, OUTCOME_COLUMNS, strict=True)).rstrip()


def dead_letter_row(rec: Record) -> str:
    """One dead letter as a table line (``AT`` is partition:offset; the key
    shown as text, or ``base64:…``; a cut one's error ends with ``[cut from N bytes]``)."""
    key, enc = text_or_base64(rec.key)
    if enc == "base64":
        key = f"base64:{key}"
    error = header(rec, "error") or ""
    if header(rec, "truncated") == "true":
        error += f" [cut from {header(rec, 'original-size')} bytes]"
    values = (_ms(rec.timestamp), f"{rec.partition}:{rec.offset}", header(rec, "reason"), key, error)
    return "  ".join(_cell(v, w) for v, (_, w) in zip(values, DEAD_LETTER_COLUMNS, strict=True)).rstrip()


def outcome_printer(out: TextIO, f: Filters, table: bool, flush: bool = True) -> Callable[[Record], None]:
    """A ``handle`` for :func:`read_until_interrupted` that prints the outcome records
    passing ``f`` to ``out``: JSON lines (the record's object as written), or
    table lines (the caller prints ``table_header``); ``flush`` after each
    one. A value that is not a JSON object is noted on stderr with its
    partition and offset."""

    def handle(rec: Record) -> None:
        data = outcome_of(rec)
        if data is None:
            print(f"leadsla: {rec.partition}:{rec.offset} is not a JSON object; skipped", file=sys.stderr)
            return
        if not outcome_matches(data, rec, f):
            return
        out.write((outcome_row(data) if table else orjson.dumps(data).decode()) + "\n")
        if flush:  # --follow: each record as it comes, not when a buffer fills
            out.flush()

    return handle


def dead_letter_printer(out: TextIO, f: Filters, table: bool, flush: bool = True) -> Callable[[Record], None]:
    """A ``handle`` for :func:`read_until_interrupted` that prints the dead letters
    passing ``f`` to ``out``: JSON lines (:func:`dead_letter_dict`) or table
    lines; ``flush`` after each one."""

    def handle(rec: Record) -> None:
        if not dead_letter_matches(rec, f):
            return
        out.write((dead_letter_row(rec) if table else orjson.dumps(dead_letter_dict(rec)).decode()) + "\n")
        if flush:  # --follow: each record as it comes, not when a buffer fills
            out.flush()

    return handle
