"""The Faust app: one agent on lead-events, one timer for deadlines, two
changelog-backed tables, /metrics and a small query API.

Lead state lives in a table keyed by ``lead_id``. Its changelog records are
written with the partition of the lead's events, explicitly, so the timer
can persist a breach it decides without a current stream event, and a table
key is only ever written to one changelog partition.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import faust
from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.errors import KafkaError
from aiokafka.protocol.group import LeaveGroupRequest
from faust.exceptions import ConsumerNotStarted
from faust.serializers import codecs
from faust.types import TP
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from leadsla.models.policy import PolicySet, fingerprint
from leadsla.streams.api import (
    Api,
    advertised_url,
    denied,
    exposure_problem,
    faust_members,
    quiet_unparsable_requests,
)
from leadsla.streams.batches import BatchDelivery
from leadsla.streams.codec import (
    LeadEntry,
    parse_delivery_key,
    parse_period_cell_key,
    parse_window_key,
    state_from_bytes,
    state_to_bytes,
)
from leadsla.streams.engine import Engine
from leadsla.streams.health import BrokerHealth, watch_broker
from leadsla.streams.ledger import Ledger
from leadsla.streams.metrics import LedgerCollector, Metrics, RuntimeCollector, render_metrics
from leadsla.streams.offsets import GapReader, GroupOffsets
from leadsla.streams.recovery import ChangelogReader, forget_read_offsets
from leadsla.streams.recovery import install as install_changelog_reader
from leadsla.streams.screen import mount as mount_screen
from leadsla.streams.screen import with_screen_paths
from leadsla.streams.settings import Settings
from leadsla.streams.sink import KafkaSink
from leadsla.streams.timer import deadline_pass, every, next_due_s

log = logging.getLogger("leadsla")


_aiokafka_maybe_leave_group = GroupCoordinator._maybe_leave_group


async def _maybe_leave_group(self: Any) -> None:
    """aiokafka's ``_maybe_leave_group``, which also leaves generation 0.

    aiokafka sends LeaveGroup only from a generation above 0: Apache Kafka
    numbers a group's generations from 1. The embedded broker numbers the
    first one 0, so a worker stopped in it left no word and stayed a member
    until its session timed out, and the next worker to join waited for that
    (``bench/recovery.py`` with 2,000 leads: a first restart took 21.5 s, and
    8.8 s once the worker leaves). Every other case is aiokafka's own; on
    Apache Kafka nothing changes.
    """
    if self.generation == 0 and self._group_instance_id is None:
        try:
            await self._send_req(LeaveGroupRequest(self.group_id, self.member_id))
        except KafkaError as err:
            log.warning("could not leave consumer group %s: %s", self.group_id, err.__class__.__name__)
        self.reset_generation()
        return
    await _aiokafka_maybe_leave_group(self)


GroupCoordinator._maybe_leave_group = _maybe_leave_group  # type: ignore[method-assign]


class _LeadEntryCodec(codecs.Codec):
    def _dumps(self, entry: Any) -> bytes:
        return state_to_bytes(entry.partition, entry.state)

    def _loads(self, s: bytes) -> LeadEntry:
        return state_from_bytes(s)


codecs.register("leadsla-lead", _LeadEntryCodec())


class _LeadEntryType:
    """What Faust needs of a table value type: its codec, and a no-op
    reconstruction (the codec already returns a LeadEntry)."""

    _options = SimpleNamespace(serializer="leadsla-lead")

    @classmethod
    def from_data(cls, value: Any, preferred_type: Any = None) -> Any:
        return value


@dataclass
class Monitor:
    """A worker, built: its Faust app, engine, metrics registry and sink,
    what it knows of its broker (``health.up``, ``health.down_for()``) and
    the batch path of lead-events (``batches.records``: records handed over)."""

    app: faust.App
    engine: Engine
    registry: CollectorRegistry
    sink: KafkaSink
    health: BrokerHealth | None = None
    batches: BatchDelivery | None = None


def _request_timeout(settings: Settings) -> float:
    """Faust's broker_request_timeout (seconds): three sessions, at least
    Faust's own default of 90 s. Faust bounds each step of a table recovery
    by it, the changelog reader's included (it reads for 80 % of it): at
    about 60,000 records a second, 90 s covers the changelogs of a few
    million leads, where 30 s left the rest of a million to Faust's own
    reading, record by record."""
    return max(90.0, settings.session_timeout * 3)


def _faust_app(settings: Settings) -> faust.App:
    """The Faust app with leadsla's settings: memory tables, no standbys,
    the group timeouts, batch sizes for a worker that writes its own
    records (see ``KafkaSink``), and the TLS and SASL credentials of every
    client Faust opens (``KafkaSecurity.faust_kwargs``)."""
    return faust.App(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap()}",
        store="memory://",
        datadir=str(settings.data_dir),
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        # What the group learns as this worker's address (query API routing):
        # never a wildcard such as 0.0.0.0, which no peer can connect to.
        canonical_url=advertised_url(settings),
        web_in_thread=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=settings.heartbeat_interval,
        broker_rebalance_timeout=settings.rebalance_timeout,
        broker_request_timeout=_request_timeout(settings),
        broker_commit_interval=settings.commit_interval,
        # Batches of up to 256 KiB, filled for up to producer_linger: a fetch's
        # changelog and outcome records go out in a few requests.
        producer_max_batch_size=1 if settings.single_record_batches else 256 * 1024,
        producer_linger=settings.producer_linger,
        stream_buffer_maxsize=4096,
        broker_max_poll_records=1000,
        # Only leadsla's own pages: Faust's built-in views would serve table
        # contents (/table/leads/<lead id>: lead ids and state, without the
        # API token, and a 500 with a traceback for a lead that exists), the
        # group's assignment (/router/), statistics and graphs.
        web_router_enabled=False,
        web_tables_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
        **settings.kafka_security().faust_kwargs(),
    )


@dataclass
class _Tables:
    """The app's changelog-backed tables, all co-partitioned with lead-events."""

    leads: Any
    windows: Any
    deliveries: Any
    period_cells: Any
    ledger: Any


def _tables(app: faust.App, settings: Settings) -> _Tables:
    leads = app.Table(
        "leads",
        partitions=settings.partitions,
        key_type=str,
        value_type=_LeadEntryType,
        help="Lead state: clocks, buffered events and dedupe memory, by lead_id.",
    )
    windows = app.Table(
        "team-windows",
        partitions=settings.partitions,
        key_type=str,
        value_type=float,
        help="Tumbling event-time windows (1h, 1d) of handoffs and follow-ups per team and partition.",
    )
    deliveries = app.Table(
        "target-days",
        partitions=settings.partitions,
        key_type=str,
        # Values are [leads, value] in JSON, Faust's default serializer; a
        # value_type of list would make Faust look for a from_data on it.
        help="Leads and weighted value delivered per target, period, day and partition (summed on read).",
    )
    period_cells = app.Table(
        "period-cells",
        partitions=settings.partitions,
        key_type=str,
        help="Met and breached clocks per policy, team, period and partition (summed on read).",
    )
    ledger = app.Table(
        "period-ledger",
        partitions=settings.partitions,
        key_type=str,
        help="Each judged level's open periods, strikes and points, and the partitions' closed-through times.",
    )
    return _Tables(leads, windows, deliveries, period_cells, ledger)


async def _restore_changelogs(app: faust.App, tables: _Tables, sink: KafkaSink, lost: list[str]) -> int:
    """After the broker came back without the changelog topics ``lost`` (a
    broker that keeps its data in memory, restarted): make the next recovery
    read them from their start (``forget_read_offsets``), and write to them
    again every entry the tables hold of the partitions this worker owns,
    the only copy left, so that a restart or the next owner of a partition
    recovers it. Returns the records written.

    Each table's entries are queued in one go, with no await between, so
    any later change of the same key follows them: the engine's tables
    through ``sink`` (which writes in order), the ledger through Faust's
    table, as the ledger's own changes go."""
    forget_read_offsets(app, lost)
    owned = app.assignor.assigned_actives()
    ledger = tables.ledger
    written = 0
    for table, partition_of, write in (
        (tables.leads, lambda key, entry: entry.partition, sink.persist),
        (tables.windows, lambda key, value: parse_window_key(key)[4], sink.window),
        (tables.deliveries, lambda key, value: parse_delivery_key(key)[4], sink.delivery),
        (tables.period_cells, lambda key, value: parse_period_cell_key(key)[4], sink.period_cell),
        # Ledger entries carry their topic partition (see Ledger).
        (ledger, lambda key, entry: entry["k"], ledger.send_changelog),
    ):
        topic = table.changelog_topic.get_topic_name()
        if topic not in lost:
            continue
        mine = {tp.partition for tp in owned if tp.topic == topic}
        for key, value in list(table.data.items()):
            partition = partition_of(key, value)
            if partition in mine:
                write(partition, key, value)
                written += 1
    await sink.flush()
    return written


def _stop_before_the_producer(app: faust.App, sink: KafkaSink) -> asyncio.Event:
    """An event set when the worker stops, before Faust stops its producer,
    after which every record the sink had queued is with the producer (whose
    stop delivers it). Faust stops its timers only after its producer: a
    timer pass then decided clocks whose records could no longer be written.
    The timer checks the event before each pass."""
    stopping = asyncio.Event()
    producer_service: Any = app.producer
    faust_producer_stop = producer_service.on_stop

    async def producer_stop() -> None:
        stopping.set()
        await sink.settle()
        await faust_producer_stop()

    producer_service.on_stop = producer_stop
    return stopping


def build_monitor(settings: Settings, policies: PolicySet, registry: CollectorRegistry | None = None) -> Monitor:
    registry = registry or CollectorRegistry()
    problem = exposure_problem(settings)  # before anything starts (the CLI checks first, in one line)
    if problem is not None:
        raise ValueError(problem)
    app = _faust_app(settings)
    tables = _tables(app, settings)
    leads, windows, deliveries = tables.leads, tables.windows, tables.deliveries
    period_cells, ledger_table = tables.period_cells, tables.ledger
    reports_topic = app.topic(settings.reports_topic, partitions=settings.partitions, key_type=bytes,
                              value_type=bytes, key_serializer="raw", value_serializer="raw")
    events_topic = app.topic(settings.input_topic, partitions=settings.partitions, key_type=bytes, value_type=bytes,
                             key_serializer="raw", value_serializer="raw")

    def highwater(partition: int) -> int | None:
        # From the last fetch response: right even where the embedded broker's
        # ListOffsets is not. None until the partition was fetched once.
        try:
            return app.consumer.highwater(TP(settings.input_topic, partition))  # type: ignore[no-any-return]
        except (AssertionError, KeyError, AttributeError, ConsumerNotStarted):
            return None  # not assigned (any more), or the consumer is not running yet

    metrics = Metrics(registry, policies, settings.max_team_labels, settings.max_rep_labels, app_id=settings.app_id)
    log.info("deciding by %s: policies fingerprint %s", policies.source, fingerprint(policies))
    sink = KafkaSink(
        lambda: app.producer._ensure_producer(),  # type: ignore[attr-defined]  # aiokafka's producer, once the app runs
        leads.changelog_topic.get_topic_name(),
        windows.changelog_topic.get_topic_name(),
        settings.outcomes_topic,
        settings.dlq_topic,
        metrics=metrics,
        deliveries_topic=deliveries.changelog_topic.get_topic_name(),
        periods=(period_cells.changelog_topic.get_topic_name(), settings.reports_topic, settings.periods_topic),
        state_version=settings.state_format,
    )
    security = settings.kafka_security()
    gaps = GapReader(settings.bootstrap(), settings.input_topic, settings.rebalance_timeout, security=security)
    changelogs = None
    if settings.direct_recovery:
        # Faust bounds the recovery step the reader runs in by the request timeout.
        changelogs = ChangelogReader(app, settings.bootstrap(), budget_s=0.8 * _request_timeout(settings),
                                     request_timeout_s=settings.rebalance_timeout, security=security)
        install_changelog_reader(app, changelogs)

    async def read_gap(partition: int, first: int, end: int) -> None:
        try:
            records = await gaps.read(partition, first, end)
        except Exception as exc:  # the broker is away: the next restart re-reads from the committed offset
            log.warning("partition %d: could not read offsets %d..%d again (%s)", partition, first, end - 1,
                        exc.__class__.__name__)
            return
        handled = 0
        if partition in engine.runtimes:  # else moved to another worker meanwhile: its new owner reads them
            engine.handle_batch(partition, records)
            handled = len(records)
        await sink.drain()
        log.info("partition %d: offsets %d..%d read again, %d record(s) handled", partition, first, end - 1, handled)

    def reread(partition: int, first: int, end: int) -> None:
        # From a client of its own, after the record being handled: Faust's
        # fetcher would drop records below what it has already delivered.
        app.loop.call_soon(lambda: asyncio.ensure_future(read_gap(partition, first, end)))

    # The tables' own dicts (a memory store keeps its data in one dict for
    # its whole life): the engine reads and writes them on every record,
    # and the store's mapping methods are Python code around the same dict.
    engine = Engine(
        settings,
        policies,
        metrics,
        store=leads.data.data,
        windows=windows.data.data,
        sink=sink,
        highwater=highwater,
        reread=reread,
        deliveries=deliveries.data.data,
        period_cells=period_cells.data.data,
    )
    registry.register(RuntimeCollector(engine.views.snapshot, policies))
    ledger = Ledger(policies, ledger_table, sink, settings.partitions, engine.wall_us)

    def owned_reports() -> set[int]:
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == settings.reports_topic}

    registry.register(LedgerCollector(lambda: ledger.levels(owned_reports()), lambda: ledger.late_partials,
                                      ledger.points_team))

    # Records of lead-events reach the engine a fetch at a time from inside
    # Faust's consumer (streams.batches). The agent keeps the subscription;
    # a record Faust's own path would hand it is handled the same way.
    batches = BatchDelivery(app, settings.input_topic, engine.handle_batch, lambda: sink.settle(states=False),
                            before_commit=sink.settle)
    batches.install()

    @app.agent(events_topic, name="leadsla.process")
    async def process(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            engine.handle(message.partition, message.offset, message.key, message.value)
            await sink.drain()

    @app.agent(reports_topic, name="leadsla.periods")
    async def judge_periods(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            ledger.handle(message.partition, message.key, message.value)
            await sink.drain()

    stopping = _stop_before_the_producer(app, sink)

    async def timer_pass() -> None:
        await deadline_pass(engine, sink, stopping)
        for line in engine.views.progress():
            log.info(line)

    @app.task
    async def deadlines() -> None:
        # Not Faust's @app.timer: it warns "Timer … is overlapping" whenever a
        # pass outlasts the interval, which the first passes after a backlog
        # do by design (deciding its overdue clocks, yielding to the agents
        # between slices, whose time counts as the pass's own): on every demo
        # start. Here the next pass simply starts an interval after one ends.
        # Woken when the next deadline bucket falls due, not up to an
        # interval later (streams.timer).
        await every(settings.timer_interval, timer_pass, stopping, sooner=lambda: next_due_s(engine))

    offsets = GroupOffsets(settings.bootstrap(), settings.app_id, settings.rebalance_timeout, security=security)

    async def rebuild() -> None:
        parts = sorted(tp.partition for tp in app.assignor.assigned_actives() if tp.topic == settings.input_topic)
        # Where the group resumes in each partition, so that a partition that
        # gets no new record still knows it is caught up. Nothing of this
        # generation is committed before recovery ends, so the broker's answer
        # is the position Faust is about to seek to.
        positions: dict[int, int | None] = dict.fromkeys(parts)
        try:
            positions.update(await offsets.resume_positions(settings.input_topic, parts))
        except Exception as exc:  # the broker is away: a record will tell later
            log.warning("could not read where %s resumes (%s); each partition waits for its first record",
                        settings.input_topic, exc.__class__.__name__)
        log.info("recovered; resuming %s at %s", settings.input_topic,
                 ", ".join(f"{p}: {'?' if o is None else o}" for p, o in positions.items()) or "no partition")
        engine.keep_only(parts)
        engine.rebuild(parts, positions)

    leads.on_recover(rebuild)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def shutting_down(sender: Any, **kwargs: Any) -> None:
        stopping.set()
        await sink.settle()
        await offsets.stop()
        await gaps.stop()
        if changelogs is not None:
            await changelogs.stop()

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def revoked(sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        engine.ready = False
        engine.revoke(tp.partition for tp in revoked if tp.topic == settings.input_topic)
        await sink.flush()  # states and cells the revoked partitions changed since the last commit or timer pass

    async def restore(lost: list[str]) -> int:
        return await _restore_changelogs(app, tables, sink, lost)

    health = watch_broker(app, engine, settings, registry, restore)
    _pages(app, engine, registry)

    return Monitor(app, engine, registry, sink, health, batches)


def _pages(app: faust.App, engine: Engine, registry: CollectorRegistry) -> None:
    """The worker's web pages: /metrics, /ready and the query API (read-only
    views; streams.api). /metrics and /ready never need the token."""
    quiet_unparsable_requests()
    settings = engine.settings
    policies_fingerprint = fingerprint(engine.policies)
    api = Api(engine.views, engine.policies, settings, str(app.conf.canonical_url),
              lambda: faust_members(app, settings.input_topic), lambda: engine.ready)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def close_api(sender: Any, **kwargs: Any) -> None:
        await api.close()

    # The team screen: / (replacing Faust's index), its files and /api/screen.
    mount_screen(app, engine, registry)

    @app.page("/api/leads/{lead_id}")
    async def api_lead(web: Any, request: Any, lead_id: str) -> Any:
        return await api.lead(request, lead_id)

    @app.page("/api/queue")
    async def api_queue(web: Any, request: Any) -> Any:
        return await api.queue(request)

    @app.page("/api/compliance")
    async def api_compliance(web: Any, request: Any) -> Any:
        return await api.compliance(request)

    @app.page("/openapi.json")
    async def api_openapi(web: Any, request: Any) -> Any:
        return with_screen_paths(await api.openapi(request))  # + /api/screen (streams.screen)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        # Rendered off the event loop: /ready and the API never wait behind a large registry.
        return web.bytes(await render_metrics(registry), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/ready")
    async def ready_page(web: Any, request: Any) -> Any:
        return web.json({"ready": engine.ready, "partitions": sorted(engine.runtimes), "policies": policies_fingerprint},
                        status=200 if engine.ready else 503)

    @app.page("/leads/{lead_id}")
    async def lead_page(web: Any, request: Any, lead_id: str) -> Any:
        if (no := denied(settings, request.headers)) is not None:
            return no
        view = engine.views.lead(lead_id)
        if view is None:
            return web.json({"error": "unknown lead on this worker (it may be owned by another worker)"}, status=404)
        return web.json(view)

    @app.page("/reps/{rep}/queue")
    async def rep_page(web: Any, request: Any, rep: str) -> Any:
        if (no := denied(settings, request.headers)) is not None:
            return no
        clocks = engine.views.rep_queue(rep)
        return web.json({"rep": rep, "partitions": sorted(engine.runtimes), "open_clocks": clocks})

