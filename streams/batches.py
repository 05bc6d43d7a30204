"""Records of lead-events handed to the engine a fetch at a time, from inside
Faust's consumer.

Faust delivers each record through its conductor, a channel, a stream and
an agent, with two tasks and an ``asyncio.wait`` per record
(``Consumer._drain_messages`` awaits ``wait_first(callback(message),
suspend_flow.wait())``): about 80 µs of CPU per record here, more than the
engine spends deciding it. ``BatchDelivery`` replaces that one method of the
worker's consumer (an instance attribute: nothing else in the process
changes). For lead-events it hands each fetched partition's records, in
offset order, to ``handle_batch`` in one call; records of every other topic
take Faust's own path, unchanged.

Faust stays the framework: group membership and assignment, table recovery,
flow control during rebalances (records are only handed over while the flow
is active, for the generation they were fetched in, for partitions that are
active), the commit chain (which flushes the producer before it commits) and
the timers. What ``Consumer.ack`` maintains per record (``_acked``,
``_acked_index``, ``_n_acked``) is maintained here per batch, and only after
``flush`` has handed the batch's outcome records, dead letters and cells to
the producer; the lead states it changed wait in the sink's record cache,
which ``before_commit`` writes before each of Faust's commits. So a
committed offset never runs ahead of the changelog records of the state it
covers (at least once; a record read again is a duplicate the engine
drops). ``flush`` and the acks run shielded, so a rebalance that
cancels the fetcher mid-batch still has them; Faust's revoke waits for them
(``Consumer.wait_empty``) before its commit.

``_drain_messages`` is a private method of faust-streaming: the version is
pinned exactly, and ``tests/streams/test_faust_seam.py`` fails when the
method or what this module relies on changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from time import monotonic
from types import MethodType
from typing import Any

from faust.transport.consumer import CONSUMER_FETCHING
from faust.types import TP
from faust.types.tuples import ack_lock

log = logging.getLogger("leadsla")

Record = tuple[int, bytes | None, bytes | None]  # (offset, key, value)


class BatchDelivery:
    """Installs the batch path on ``app``'s consumer for ``topic``.

    ``handle_batch(partition, records)`` gets a fetched partition's records
    of ``topic`` as ``(offset, key, value)`` tuples in offset order, must
    not await (it runs between two fetches) and must not raise (the engine
    dead-letters a record it cannot handle; an exception here stops the
    fetcher, as in Faust); ``flush()`` returns once
    everything it queued is with the producer (also what another flush
    under way had taken: ``KafkaSink.settle``); ``before_commit()`` runs
    before each of Faust's offset commits (the engine's record cache is
    written then). Counters: ``batches`` and ``records`` handed
    over so far (for the benchmark and the tests)."""

    def __init__(
        self,
        app: Any,
        topic: str,
        handle_batch: Callable[[int, Sequence[Record]], None],
        flush: Callable[[], Awaitable[None]],
        before_commit: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.app = app
        self.topic = topic
        self.handle_batch = handle_batch
        self.flush = flush
        self.before_commit = before_commit
        self.batches = 0
        self.records = 0
        # The flush-and-ack of the last batch handed over (each waits for the
        # one before it), awaited by a revoke or a stop before Faust commits.
        self._finishing: asyncio.Future[None] | None = None

    def install(self) -> None:
        """Replace the drain loop, ``wait_empty`` and (with
        ``before_commit``) ``commit`` of the app's consumer, on that
        instance only (call before the app starts)."""
        consumer = self.app.consumer
        faust_wait_empty = consumer.wait_empty

        async def wait_empty(consumer_self: Any) -> None:
            await self.settle()
            await faust_wait_empty()

        consumer._drain_messages = MethodType(self._drain_messages, consumer)
        consumer.wait_empty = MethodType(wait_empty, consumer)
        before_commit = self.before_commit
        if before_commit is not None:
            faust_commit = consumer.commit

            async def commit(consumer_self: Any, *args: Any, **kwargs: Any) -> bool:
                # Every path to a commit (the interval, commit_every, a
                # revoke, the stop) writes what the engine keeps back first.
                await before_commit()
                return await faust_commit(*args, **kwargs)  # type: ignore[no-any-return]

            consumer.commit = MethodType(commit, consumer)

    async def settle(self) -> None:
        """Wait for the batch being flushed and acked, if any."""
        finishing = self._finishing
        if finishing is not None and not finishing.done():
            await asyncio.wait([finishing])

    async def _drain_messages(self, consumer: Any, fetcher: Any) -> None:
        """Faust's ``Consumer._drain_messages`` with lead-events in batches
        (see the module's docstring). The structure, the stop conditions and
        the error handling are Faust's."""
        app = self.app
        topic = self.topic
        callback = consumer.callback
        consumer_should_stop = consumer._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        read_offset = consumer._read_offset
        commit_every = consumer._commit_every
        acks_enabled_for = app.topics.acks_enabled_for
        inbound = app.monitor.stream_inbound_time
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                consumer.diag.set_flag(CONSUMER_FETCHING)
                records, active = await consumer._wait_next_records(1.0)
                # As Faust: a fetch that returns at once must still yield.
                await consumer.sleep(0)
                if records is None or consumer.should_stop:
                    consumer.diag.unset_flag(CONSUMER_FETCHING)
                    continue
                if not consumer.flow_active:
                    # As Faust's getmany: records fetched while the flow
                    # stopped are dropped, and read again from the committed
                    # offsets once it resumes.
                    try:
                        await consumer.perform_seek()
                    except Exception as exc:
                        log.warning("could not seek back to the committed offsets: %r", exc)
                    consumer.diag.unset_flag(CONSUMER_FETCHING)
                    continue
                generation = app.consumer_generation_id
                for tp, fetched in records.items():
                    if not consumer.flow_active or app.consumer_generation_id != generation:
                        break
                    if not (active is None or tp in active or tp in consumer._buffered_partitions):
                        continue
                    app.monitor.track_tp_end_offset(tp, consumer.highwater(tp))
                    if tp.topic == topic:
                        await self._deliver(consumer, tp, fetched, generation)
                        inbound[tp] = monotonic()
                        if commit_every is not None and consumer._n_acked >= commit_every:
                            consumer._n_acked = 0
                            await consumer.commit()
                        continue
                    # Any other topic: Faust's own per-record path.
                    for record in fetched:
                        message = consumer._to_message(tp, record)
                        offset = message.offset
                        r_offset = read_offset[tp]
                        if r_offset is not None and offset < r_offset:
                            continue
                        gap = offset - (r_offset or 0)
                        if gap > 1 and r_offset and acks_enabled_for(message.topic):
                            await consumer._add_gap(tp, r_offset + 1, offset)
                        if commit_every is not None and consumer._n_acked >= commit_every:
                            consumer._n_acked = 0
                            await consumer.commit()
                        await consumer.wait_first(callback(message), consumer.suspend_flow.wait())
                        read_offset[tp] = offset
                consumer.diag.unset_flag(CONSUMER_FETCHING)
        except consumer.consumer_stopped_errors:
            if consumer.transport.app.should_stop:
                log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if consumer.transport.app.should_stop:
                log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            consumer.diag.unset_flag(CONSUMER_FETCHING)

    async def _deliver(self, consumer: Any, tp: TP, fetched: Sequence[Any], generation: int) -> None:
        """Hand one partition's fetched records to the engine, and start
        flushing and acking them (see ``_finish``)."""
        r_offset = consumer._read_offset[tp]
        batch = [(r.offset, r.key, r.value) for r in fetched if r_offset is None or r.offset >= r_offset]
        if not batch:
            return
        # Offsets the fetch skipped (compaction, transaction markers) count
        # as done for the commit, as in Faust's drain.
        gaps = _gaps(r_offset, batch)
        for first, last in gaps:
            await consumer._add_gap(tp, first, last)
        self.handle_batch(tp.partition, batch)
        self.batches += 1
        self.records += len(batch)
        consumer._read_offset[tp] = batch[-1][0]
        # The batch's flush and acks go on while the next batch is decided;
        # at most two batches are between the engine and the producer.
        previous = self._finishing
        self._finishing = asyncio.ensure_future(self._finish(previous, consumer, tp, batch, generation))
        if previous is not None and not previous.done():
            await asyncio.shield(previous)

    async def _finish(self, previous: asyncio.Future[None] | None, consumer: Any, tp: TP, batch: list[Record],
                      generation: int) -> None:
        """Flush, then ack ``batch`` (after the batch before it: acks in order)."""
        if previous is not None:
            await asyncio.wait([previous])
        await self.flush()
        try:
            self._ack(consumer, tp, batch, generation)
        except Exception as exc:  # the consumer stopped meanwhile: the offsets are read again
            log.warning("partition %d: offsets %d..%d not acknowledged (%r)", tp.partition, batch[0][0],
                        batch[-1][0], exc)

    def _ack(self, consumer: Any, tp: TP, batch: list[Record], generation: int) -> None:
        """What ``Consumer.ack`` does for each record of ``batch``, at once."""
        if self.app.consumer_generation_id != generation or tp not in consumer.assignment():
            # Revoked meanwhile: its next owner reads from the committed
            # offset (whose records this worker's changelog writes precede).
            return
        with ack_lock:
            committed = consumer._committed_offset[tp]
            index = consumer._acked_index[tp]
            fresh = [o for o, _, _ in batch if (committed is None or o >= committed) and o not in index]
            index.update(fresh)
            consumer._acked[tp].extend(fresh)
            consumer._n_acked += len(fresh)


def _gaps(read_offset: int | None, batch: Sequence[Record]) -> list[tuple[int, int]]:
    """Runs of offsets missing between the last read offset and the batch,
    and inside it, as (first, last) inclusive; as Faust counts them (none
    before the first record read)."""
    out = []
    previous = read_offset
    for offset, _, _ in batch:
        if previous and offset - previous > 1:
            out.append((previous + 1, offset - 1))
        previous = offset
    return out
