"""Table recovery at the speed of a fetch.

After every assignment Faust's recovery reads each active changelog
partition from where the table stands to the partition's end, one record at
a time through its stream machinery: about 2,000 records a second here
(``bench/recovery.py``), so 50,000 leads took close to a minute to come
back. It also takes the end from ListOffsets, which the embedded broker
answers wrongly after multi-record batches (recovery would stop early).

``ChangelogReader`` does that reading first, with a client of its own (no
group, nothing committed): whole fetches, decoded with each table's own
schema and applied with the table's own ``apply_changelog_batch``, up to the
high watermark the fetch responses carry. It then tells Faust's recovery
that those partitions are up to date, and Faust goes on exactly as after its
own reading (``on_recover`` callbacks, seeking the input partitions, resuming
the streams). Whatever the reader has not finished within its time budget
(Faust bounds this step by ``broker_request_timeout``), Faust reads itself,
from where the reader stopped.

Faust's recovery also remembers, per changelog partition, the offset its
table has read to, and stops the worker with a ``ConsistencyError`` when a
later recovery finds the changelog ending before that offset. A broker that
keeps its data in memory comes back with empty changelogs after a restart,
so every worker that had recovered from them would stop. The tables still
hold their state in memory, so such a partition is read from its start
instead (``forget_read_offsets`` when the broker is known to have come back
empty; the same at every recovery for any changelog found shorter).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.stores.memory import Store as MemoryStore
from faust.tables.base import Collection
from faust.tables.recovery import Recovery

from leadsla.streams.codec import state_from_bytes
from leadsla.streams.engine import collector_paused
from leadsla.streams.kafka_security import KafkaSecurity

log = logging.getLogger("leadsla")

# Records per fetch call; whole batches are applied at once.
FETCH_RECORDS = 20_000


class _Change:
    """What a table's ``apply_changelog_batch`` reads of an event: the decoded
    key and value, and the message (raw ``value``: None is a tombstone;
    ``partition``)."""

    __slots__ = ("key", "message", "value")

    def __init__(self, key: Any, value: Any, message: Any) -> None:
        self.key, self.value, self.message = key, value, message


# Table value codecs read without Faust's registry, by the name a table's
# changelog schema gives its value serializer: ``streams.app`` registers the
# lead table's codec as "leadsla-lead", whose loads is ``state_from_bytes``
# and whose value type hands the value back as is.
DIRECT_VALUE_LOADS: dict[str, Callable[[bytes], Any]] = {"leadsla-lead": state_from_bytes}


def changelog_decoder(app: Any, table: Any) -> Callable[[Any], _Change]:
    """A function from one changelog record of ``table`` (an aiokafka
    ``ConsumerRecord``) to what ``apply_changelog_batch`` reads of it: the
    key and value decoded as Faust's schema decodes them, and the record.

    Faust's path (schema → serializer registry → codec → value type, about
    3 µs a record before the value's own codec) is taken for every table
    but one whose key is a JSON string and whose value codec is in
    ``DIRECT_VALUE_LOADS`` (the lead table): for that one the key is read
    with ``orjson.loads`` (Faust's JSON codec) and the value with its
    codec's own loads. A record the direct path cannot read (a key that is
    no JSON string, bytes the codec refuses) goes through Faust's path, so
    the answer, or the error raised (``KeyDecodeError``,
    ``ValueDecodeError``), is always Faust's."""
    schema = table.changelog_topic.schema
    serializers = app.serializers
    loads_key, loads_value = serializers.loads_key, serializers.loads_value

    def slow(record: Any) -> _Change:
        key = schema.loads_key(app, record, loads=loads_key)
        value = None if record.value is None else schema.loads_value(app, record, loads=loads_value)
        return _Change(key, value, record)

    direct_value = _direct_value_loads(schema, serializers)
    if direct_value is None:
        return slow
    json_loads = orjson.loads

    def direct(record: Any) -> _Change:
        raw_key, raw = record.key, record.value
        try:
            key = json_loads(raw_key)
            if type(key) is str:
                return _Change(key, None if raw is None else direct_value(raw), record)
        except Exception:  # noqa: S110  # Faust's path decides, and raises its own error
            pass
        return slow(record)

    return direct


def _direct_value_loads(schema: Any, serializers: Any) -> Callable[[bytes], Any] | None:
    """The value codec's loads for a changelog ``schema`` that the direct path
    reads exactly as Faust would (see ``changelog_decoder``), else None."""
    key_serializer = schema.key_serializer or serializers.key_serializer
    loads = DIRECT_VALUE_LOADS.get(schema.value_serializer)
    if schema.key_type is not str or key_serializer != "json" or loads is None:
        return None
    # Faust hands a decoded value to its type's from_data: the direct path
    # must be able to leave that out.
    probe = object()
    try:
        as_is = schema.value_type.from_data(probe, preferred_type=schema.value_type) is probe
    except Exception:
        return None
    return loads if as_is else None


def changelog_applier(table: Any) -> Callable[[list[_Change]], None]:
    """``table.apply_changelog_batch``, or, for a plain Faust table on the
    memory store (every table of leadsla), the same done to the store's
    dict directly: per change in order, the key through the table's
    ``_to_key``, its partition remembered, the value set (None for a
    tombstone); then every tombstoned key whose value is falsy (None: no
    later change in the batch set it again) deleted. Exactly
    ``faust.stores.memory.Store.apply_changelog_batch`` without its
    generator and callbacks."""
    store = table.data
    cls = type(table)
    if not (cls.apply_changelog_batch is Collection.apply_changelog_batch
            and cls._to_key is Collection._to_key and cls._to_value is Collection._to_value
            and type(store) is MemoryStore):
        return table.apply_changelog_batch  # type: ignore[no-any-return]
    to_key = table._to_key

    def apply(batch: list[_Change]) -> None:
        data, partitions = store.data, store._key_partition
        tombstoned = set()
        for change in batch:
            key = change.key
            if type(key) is not str:  # _to_key leaves a str as it is
                key = to_key(key)
            message = change.message
            if message.value is None:
                tombstoned.add(key)
            partitions[key] = message.partition
            data[key] = change.value
        for key in tombstoned:
            if not data[key]:  # set again later in the batch: kept (Faust's test)
                del data[key]
                partitions.pop(key, None)

    return apply


class ChangelogReader:
    """Reads active changelog partitions into their tables for Faust's
    recovery (see the module's docstring).

    ``bootstrap`` is ``host:port[,…]``; ``budget_s`` (seconds) bounds one
    catch-up, after which Faust's own recovery reads the rest;
    ``request_timeout_s`` is the client's request timeout; ``security``: TLS
    and SASL (default PLAINTEXT)."""

    def __init__(self, app: Any, bootstrap: str, budget_s: float, request_timeout_s: float = 10.0,
                 security: KafkaSecurity | None = None) -> None:
        self._app = app
        self._security = security or KafkaSecurity()
        self._bootstrap = bootstrap
        self._budget = budget_s
        self._timeout = request_timeout_s
        self._client: AIOKafkaConsumer | None = None
        self.records = 0  # changelog records applied since start (all catch-ups)

    async def catch_up(self, recovery: Any, tps: set[Any], offsets: MutableMapping[Any, int]) -> None:
        """Apply every record of ``tps`` (Faust TPs of changelog topics) from
        ``offsets[tp]`` (the last offset applied, read again as Faust does;
        0 or -1 for none) to the table of
        each, up to the partition's high watermark; advance ``offsets`` and
        Faust's ``active_highwaters`` as it goes, so that whatever is left (the
        budget ran out, a rebalance cancelled the step) is read from there.
        Never raises for the broker being away (Faust reads everything then);
        cancellation propagates."""
        if not tps:
            return
        try:
            client = await self._started()
        except Exception as exc:  # Faust's own recovery reads everything
            log.warning("could not read the changelogs directly (%s); Faust's recovery reads them",
                        exc.__class__.__name__)
            return
        loop = asyncio.get_running_loop()
        started, deadline = time.monotonic(), loop.time() + self._budget
        by_tp = {TopicPartition(tp.topic, tp.partition): tp for tp in tps}
        client.assign(list(by_tp))
        for ktp, tp in by_tp.items():
            # Faust's offsets are the last offset applied, and it seeks to it
            # (reading it again is harmless); a fresh partition's is 0 or -1.
            client.seek(ktp, max(0, offsets[tp]))
        tables = recovery.tp_to_table
        decoders = {tp: changelog_decoder(self._app, tables[tp]) for tp in tps}
        appliers = {tp: changelog_applier(tables[tp]) for tp in tps}
        highwaters = recovery.active_highwaters
        pending, applied = set(by_tp), 0
        try:
            with collector_paused():
                while pending:
                    got = await client.getmany(*pending, timeout_ms=200, max_records=FETCH_RECORDS)
                    for ktp, records in got.items():
                        tp = by_tp[ktp]
                        decode = decoders[tp]
                        batch = [decode(r) for r in records]
                        # No await between applying and recording it: a
                        # cancellation never leaves them apart.
                        appliers[tp](batch)
                        offsets[tp] = records[-1].offset
                        applied += len(records)
                    for ktp in list(pending):
                        hw = client.highwater(ktp)
                        if hw is None or await client.position(ktp) < hw:
                            continue
                        tp = by_tp[ktp]
                        pending.discard(ktp)
                        offsets[tp] = max(offsets[tp], hw - 1)
                        if highwaters.get(tp) is None or highwaters[tp] < hw - 1:
                            highwaters[tp] = hw - 1  # the broker's ListOffsets can be behind the fetch's
                    if pending and loop.time() > deadline:
                        log.warning("changelogs: %d partition(s) not read within %.0f s; Faust's recovery reads the "
                                    "rest", len(pending), self._budget)
                        break
        except Exception as exc:  # the broker went away: Faust reads the rest (cancellation is no Exception)
            log.warning("changelogs: reading stopped (%s); Faust's recovery reads the rest", exc.__class__.__name__)
        finally:
            client.assign([])
            self.records += applied
        took = time.monotonic() - started
        log.info("changelogs: %d record(s) of %d partition(s) read in %.1f s", applied, len(tps), took)

    async def fetch_highwaters(self, tps: Iterable[Any], offsets: MutableMapping[Any, int | None]) -> dict[Any, int]:
        """Each of ``tps``' (Faust TPs) high watermark as a fetch response
        carries it: the offset after its last record (Faust's highwaters are
        that less one). Right where the broker's ListOffsets answer lags behind
        multi-record batches. Fetches from ``offsets[tp]`` (a read from
        past a partition's end is moved to its end by the client, whose
        answer is then the real end). Partitions the broker does not answer
        for within the reader's request timeout are left out; raises what the client
        raises when the broker is away."""
        client = await self._started()
        by_tp = {TopicPartition(tp.topic, tp.partition): tp for tp in tps}
        out: dict[Any, int] = {}
        if not by_tp:
            return out
        client.assign(list(by_tp))
        try:
            for ktp, tp in by_tp.items():
                client.seek(ktp, max(0, offsets.get(tp) or 0))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._timeout
            while len(out) < len(by_tp) and loop.time() < deadline:
                await client.getmany(*(k for k, tp in by_tp.items() if tp not in out), timeout_ms=200, max_records=1)
                for ktp, tp in by_tp.items():
                    hw = client.highwater(ktp)
                    if hw is not None:
                        out[tp] = hw
        finally:
            client.assign([])
        return out

    async def _started(self) -> AIOKafkaConsumer:
        if self._client is None:
            client = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False,
                                      request_timeout_ms=int(self._timeout * 1000),
                                      max_partition_fetch_bytes=8 << 20, fetch_max_bytes=64 << 20,
                                      **self._security.client_kwargs())
            try:
                await client.start()
            except BaseException:
                await client.stop()  # closes what the failed start opened
                raise
            self._client = client
        return self._client

    async def stop(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.stop()


def forget_read_offsets(app: Any, topics: Iterable[str]) -> int:
    """Make the next recovery of ``app`` read every partition of the changelog
    ``topics`` from its start (the tables keep what they hold, and reading
    their own records again changes nothing). For changelogs that a broker
    lost: Faust would otherwise resume at the offset it had read to, past
    the end of the new topic, and stop the worker. Returns the number of
    partitions reset."""
    recovery = app.tables.recovery
    wanted = set(topics)
    reset = 0
    for offsets in (recovery.active_offsets, recovery.standby_offsets):
        for tp in [tp for tp in offsets if tp.topic in wanted]:
            offsets[tp] = -1  # Faust's "nothing read yet": it seeks to offset 0
            reset += 1
    return reset


def restart_shortened(recovery: Any, tps: Iterable[Any], offsets: MutableMapping[Any, int | None]) -> list[Any]:
    """Reset to -1 (read from the start) the ``offsets`` of ``tps`` that lie
    past the end of their changelog partition as ``recovery.active_highwaters``
    has it (the last offset; -1 when empty): the changelog was lost or
    truncated since this worker read it. Returns those partitions, sorted,
    and logs them in one WARNING line."""
    highwaters = recovery.active_highwaters
    shortened = sorted(tp for tp in tps
                       if offsets.get(tp) is not None and highwaters.get(tp) is not None
                       and offsets[tp] > highwaters[tp])  # type: ignore[operator]
    if shortened:
        log.warning("changelogs: %s end before the offsets this worker had read them to (%s): the broker lost "
                    "them; the tables keep their state and read them from the start",
                    ", ".join(f"{tp.topic}[{tp.partition}]" for tp in shortened),
                    ", ".join(f"{offsets[tp]} > {highwaters[tp]}" for tp in shortened))
    for tp in shortened:
        offsets[tp] = -1
    return shortened


_faust_build_offsets = Recovery._build_offsets


async def _build_offsets(self: Any, consumer: Any, tps: Any, destination: Any, title: str) -> None:
    """Faust's ``Recovery._build_offsets`` (where reading starts), after
    ``restart_shortened`` for the active partitions (Faust builds their
    highwaters just before; with a ``ChangelogReader``, a partition that
    seems shortened is first asked of a fetch), then, for the active
    partitions of an app with a ``ChangelogReader``, the reading itself."""
    reader = getattr(self.app, "leadsla_changelog_reader", None)
    if title == "active":
        if reader is not None:
            await _confirm_highwaters(self, reader, tps, destination)
        restart_shortened(self, tps, destination)
    await _faust_build_offsets(self, consumer, tps, destination, title)
    if title == "active" and reader is not None:
        await reader.catch_up(self, set(tps), destination)


async def _confirm_highwaters(recovery: Any, reader: ChangelogReader, tps: Any,
                              offsets: MutableMapping[Any, int | None]) -> None:
    """Where a changelog partition seems to end before the offset this
    worker had read it to, ask a fetch for its end before believing it:
    the embedded broker's ListOffsets answer lags behind multi-record
    batches, and a false "shortened" would read the whole partition again
    (and say the broker lost it) on every rebalance. Raises the recovery's
    highwaters to the fetch's (the last offset); the broker away, nothing
    changes."""
    highwaters = recovery.active_highwaters
    suspect = [tp for tp in tps if offsets.get(tp) is not None and highwaters.get(tp) is not None
               and offsets[tp] > highwaters[tp]]
    if not suspect:
        return
    try:
        fetched = await reader.fetch_highwaters(suspect, offsets)
    except Exception as exc:  # the broker is away: the ListOffsets answer stands
        log.warning("changelogs: could not confirm where %d partition(s) end (%s)", len(suspect),
                    exc.__class__.__name__)
        return
    for tp, hw in fetched.items():
        if hw - 1 > highwaters[tp]:
            highwaters[tp] = hw - 1


Recovery._build_offsets = _build_offsets  # type: ignore[method-assign]


def install(app: Any, reader: ChangelogReader) -> None:
    """Let ``reader`` do the changelog reading of ``app``'s recoveries."""
    app.leadsla_changelog_reader = reader
