"""Broker trouble: waiting for the broker at start-up, noticing an outage
while running, and keeping the log readable meanwhile.

- ``wait_for_broker`` probes until the broker answers, with exponential
  backoff (1 s doubling up to a cap) and one log line per attempt.
- ``BrokerHealth`` probes a running worker's broker every few seconds and
  is either up or down: one WARNING line when an outage starts, one when it
  ends (saying too what the callbacks found, e.g. that the broker came back
  empty), and callbacks for both. It knows nothing of Faust or the engine; its
  probe is any ``async () -> str | None`` (None: the broker answered).
- ``BrokerErrorFilter`` drops the Kafka client's connection-error records
  while the broker is known to be down (aiokafka logs an ERROR line per
  failed request, a dozen a second), counting them instead. Every other
  record, and every record while the broker answers, goes through.
- ``watch_broker`` wires the three into a Faust app: the probe task,
  ``/ready`` answering 503 during an outage, topics recreated (and the
  worker's state written to its new changelogs) when the broker comes back
  without them, and the ``leadsla_broker_*`` metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from aiokafka import errors as kafka_errors
from prometheus_client import CollectorRegistry, Counter, Gauge

from leadsla.streams.broker import BrokerAuthError, BrokerError, ensure_topics, probe_broker
from leadsla.streams.kafka_security import KafkaSecurity
from leadsla.streams.settings import Settings

log = logging.getLogger("leadsla")

Probe = Callable[[], Awaitable[str | None]]
"""One reachability check: None when the broker answered, else a short reason."""

Callback = Callable[["BrokerHealth"], Awaitable[str | None] | str | None]
"""Runs when an outage starts or ends. What an ``on_up`` callback returns (a
short text, or None) is added to the line saying the broker is back."""

FIRST_DELAY = 1.0  # seconds before the second attempt; doubled after each failure
# Loggers whose connection errors are counted instead of logged during an outage.
LIBRARY_LOGGERS = ("aiokafka", "faust", "mode")


def backoff(first: float = FIRST_DELAY, cap: float = 30.0, factor: float = 2.0) -> Iterator[float]:
    """Pauses between attempts, in seconds: ``first``, then multiplied by
    ``factor`` each time, never more than ``cap`` (1, 2, 4, 8, 16, 30, 30, …
    with the defaults). Endless."""
    delay = min(first, cap)
    while True:
        yield delay
        delay = min(delay * factor, cap)


def _seconds(s: float) -> str:
    """A duration for a log line: whole seconds from 10 s, else one decimal."""
    return f"{s:.0f}" if s >= 10 or s == int(s) else f"{s:.1f}"


async def wait_for_broker(
    probe: Probe,
    where: str,
    *,
    first: float = FIRST_DELAY,
    cap: float = 30.0,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    logger: logging.Logger = log,
) -> int:
    """Probe until the broker answers; returns the number of attempts.

    Each failed attempt is one WARNING line, ``waiting for the broker at
    <where> (attempt N, next in X s): <reason>``, and a pause from
    ``backoff(first, cap)`` (seconds). Waits for ever: cancel the task (as
    Ctrl-C does) to give up; the CancelledError propagates.
    """
    for attempt, delay in enumerate(backoff(first, cap), start=1):
        problem = await probe()
        if problem is None:
            if attempt > 1:
                logger.info("the broker at %s answers (attempt %d)", where, attempt)
            return attempt
        logger.warning("waiting for the broker at %s (attempt %d, next in %s s): %s",
                       where, attempt, _seconds(delay), problem)
        await sleep(delay)
    raise AssertionError("backoff() is endless")  # pragma: no cover


class BrokerHealth:
    """Up or down, as a periodic probe sees the broker.

    ``up`` starts True (a worker starts once the broker answered). A check
    that fails is repeated at once, and the broker is down only if that
    fails too: one lost answer is not an outage. Down, ``down_since`` is the
    wall-clock time (epoch seconds) of the check that found it, and
    ``problem`` the probe's reason; a single successful check brings it back.
    Each change runs the ``on_down`` or ``on_up`` callbacks (plain or async
    functions taking this object), in the order they were added, after the
    state changed, and logs one WARNING line: an outage's first line before
    its callbacks, the comeback line after them, with the texts the
    ``on_up`` callbacks returned (``broker back after 7 s at kafka-1:9092,
    empty: …``).

    ``interval`` is the pause between periodic checks (seconds). ``suspect()``
    asks for a check now, at most once per ``min_gap`` seconds; while such a
    check is pending ``suspected`` is True. For ``settle`` seconds after the
    broker is back, ``settling()`` is True: the Kafka client is still
    reconnecting and rejoining its group. ``clock`` measures durations
    (monotonic seconds), ``wall`` gives ``down_since``.
    """

    def __init__(
        self,
        probe: Probe,
        where: str,
        *,
        interval: float = 2.0,
        min_gap: float = 1.0,
        settle: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        logger: logging.Logger = log,
    ) -> None:
        self.probe = probe
        self.where = where
        self.interval = interval
        self.min_gap = min_gap
        self.settle = settle
        self.clock = clock
        self.wall = wall
        self.logger = logger
        self.up = True
        self.down_since: float | None = None
        self.problem: str | None = None
        self.outages = 0
        self.suspected = False
        self.suppressed = 0  # connection-error records dropped in the current (or last) outage
        self.suppressed_total = 0
        self._down_at = 0.0
        self._back_at = -math.inf
        self._last_suspicion = -math.inf
        self._on_down: list[Callback] = []
        self._on_up: list[Callback] = []
        self._on_suppressed: list[Callable[[], None]] = []
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Connection-error records held while a check they asked for is
        # pending: dropped (counted) if it finds an outage, logged if not.
        self._held: list[logging.LogRecord] = []
        self._held_lock = threading.Lock()

    def on_down(self, callback: Callback) -> Callback:
        """Run ``callback(self)`` when an outage starts; returns it (a decorator)."""
        self._on_down.append(callback)
        return callback

    def on_up(self, callback: Callback) -> Callback:
        """Run ``callback(self)`` when the broker is back; returns it (a decorator)."""
        self._on_up.append(callback)
        return callback

    def on_suppressed(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` for each log record dropped (for a metric)."""
        self._on_suppressed.append(callback)
        return callback

    def down_for(self) -> float:
        """Seconds since the outage started; 0.0 while up."""
        return 0.0 if self.up else max(0.0, self.clock() - self._down_at)

    def settling(self) -> bool:
        """Whether the broker came back less than ``settle`` seconds ago."""
        return self.up and self.clock() - self._back_at < self.settle

    def count_suppressed(self) -> None:
        """Count one log record dropped because of the broker (by the filter)."""
        self.suppressed += 1
        self.suppressed_total += 1
        for callback in self._on_suppressed:
            callback()

    def suspect(self) -> bool:
        """Something looked like a broker problem: check now rather than at
        the next interval. Does nothing while down, while a suspicion is
        pending, within ``min_gap`` seconds of the last one, or before
        ``run()`` started. Returns whether a check is pending now. Safe to
        call from any thread (log handlers)."""
        if not self.up or self._loop is None or self._wake is None:
            return False
        if self.suspected:
            return True
        now = self.clock()
        if now - self._last_suspicion < self.min_gap:
            return False
        self._last_suspicion = now
        self.suspected = True
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            self._loop.call_soon_threadsafe(self._wake.set)
        return True

    def hold(self, record: logging.LogRecord) -> None:
        """Keep a connection-error record until the pending check answers:
        an outage drops it (counted), a broker that answers gets it logged.
        At most ``HOLD_MAX`` are kept; the rest are counted as dropped."""
        with self._held_lock:
            if len(self._held) < HOLD_MAX:
                self._held.append(record)
                return
        self.count_suppressed()

    def _release(self) -> None:
        """Settle the held records by the state the last check found."""
        with self._held_lock:
            held, self._held = self._held, []
        for record in held:
            if self.up:
                setattr(record, "leadsla_released", True)  # noqa: B010 - the filter lets it through this time
                logging.getLogger(record.name).handle(record)
            else:
                self.count_suppressed()

    async def check(self) -> bool:
        """Probe once (twice when the first fails while up), update the
        state, log and run callbacks on a change; returns ``up``."""
        problem = await self.probe()
        if problem is not None and self.up:
            problem = await self.probe()  # confirm: one lost answer is not an outage
        self.suspected = False
        if problem is not None and self.up:
            self.up = False
            self.problem = problem
            self.down_since = self.wall()
            self._down_at = self.clock()
            self.outages += 1
            self.suppressed = 0
            self.logger.warning("lost the broker at %s: %s; not ready until it is back (the Kafka client's "
                                "connection errors are counted, not logged, meanwhile)", self.where, problem)
            self._release()
            await self._run(self._on_down)
        elif problem is None and not self.up:
            took = self.down_for()
            self._back_at = self.clock()
            self.up = True
            self.down_since = None
            self.problem = None
            notes = await self._run(self._on_up)
            self.logger.warning("broker back after %s s at %s%s (%d Kafka client errors not logged meanwhile)",
                                _seconds(took), self.where, "".join(", " + n for n in notes), self.suppressed)
        elif problem is not None:
            self.problem = problem
        self._release()
        return self.up

    async def _run(self, callbacks: list[Callback]) -> list[str]:
        """Run ``callbacks`` in order; returns the texts they returned."""
        notes = []
        for callback in callbacks:
            try:
                result = callback(self)
                if inspect.isawaitable(result):
                    result = await result
            except Exception:  # a broken callback must not stop the checks
                self.logger.exception("broker health callback %r failed", callback)
                continue
            if isinstance(result, str) and result:
                notes.append(result)
        return notes

    async def run(self) -> None:
        """Check every ``interval`` seconds, or at once after ``suspect()``,
        until cancelled."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.interval)
                self._wake.clear()
                try:
                    await self.check()
                except Exception:  # a probe that raises counts as nothing learnt
                    self.suspected = False
                    self.logger.exception("broker health check failed")
        finally:
            self._loop = self._wake = None


# Words of the Kafka client's connection trouble: "Unable connect to node",
# "Unable to update metadata", "Failed fetch messages from 1: NodeNotReadyError",
# "Group Coordinator Request failed", "Heartbeat session expired", "[Errno 111]".
# The group's churn around an outage (a commit refused for a member the
# broker forgot, a rejoin, the commit timer stuck behind a broker that does
# not answer) counts too: while the broker answers, such a record is still
# logged once the check it asked for has answered.
_CONNECTION_TEXT = re.compile(
    r"connect|not ready|NodeNotReady|timed ?out|timeout|coordinator|heartbeat|metadata|"
    r"broker ?not ?available|\[Errno|UnknownMemberId|IllegalGeneration|RebalanceInProgress|will rejoin|"
    r"Timer commit is overlapping", re.IGNORECASE)
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError, TimeoutError, kafka_errors.KafkaConnectionError, kafka_errors.NodeNotReadyError,
    kafka_errors.RequestTimedOutError, kafka_errors.KafkaTimeoutError, kafka_errors.CoordinatorNotAvailableError,
    kafka_errors.NotCoordinatorForGroupError, kafka_errors.BrokerNotAvailableError,
)


# Connection-error records kept at most while a check is pending.
HOLD_MAX = 20


def is_connection_error(record: logging.LogRecord) -> bool:
    """Whether a log record is about not reaching the broker: its exception
    is a connection or timeout error, or (without one) its message speaks of
    connections, timeouts, metadata, the group coordinator or heartbeats."""
    if record.exc_info and record.exc_info[1] is not None:
        return isinstance(record.exc_info[1], _CONNECTION_ERRORS)
    try:
        message = record.getMessage()
    except Exception:  # a malformed record: let the handler report it
        return False
    return bool(_CONNECTION_TEXT.search(message))


class BrokerErrorFilter(logging.Filter):
    """Drops the Kafka client's connection errors while the broker is known
    to be down, counting them in ``health``.

    A WARNING-or-above record that ``is_connection_error``: while the broker
    is down, or while a check it asked for is pending, it is dropped and
    counted; while the broker is up it asks ``health`` for a check at once
    (``suspect()``), so an outage is found within milliseconds, not at the
    next periodic check, and is held until that check answers: dropped and
    counted if it found an outage (whose first line is leadsla's own), logged
    if the broker answers; unless the broker has only just
    come back (``health.settling()``: the client's reconnecting and
    rejoining its group, e.g. "Heartbeat failed: local member_id was not
    recognized", are the outage's aftermath, and counted). Everything else passes:
    other errors, and connection errors while the broker answers (one
    unreachable node of a cluster is worth seeing). Records are judged where
    they are created: ``install`` adds the filter to the library loggers
    themselves, not to a handler.
    """

    def __init__(self, health: BrokerHealth) -> None:
        super().__init__()
        self.health = health
        self._loggers: list[logging.Logger] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or getattr(record, "leadsla_released", False) \
                or not is_connection_error(record):
            return True
        if self.health.up:
            pending = self.health.suspect()
            if self.health.settling():
                self.health.count_suppressed()
                return False
            if not pending:
                return True  # no check will answer (not running yet, or one just answered): seen now
            # Held until the check answers, so an outage's first line is
            # leadsla's own, not the client error that revealed it.
            self.health.hold(record)
            return False
        self.health.count_suppressed()
        return False

    def install(self, prefixes: tuple[str, ...] = LIBRARY_LOGGERS) -> None:
        """Add the filter to the loggers named ``prefixes`` and to every logger
        below them that exists now. A logger's filters see only the records
        created on it, not those of its children, hence each one; loggers
        created later (a module imported later) are not covered."""
        names = set(prefixes) | {
            name for name, obj in list(logging.Logger.manager.loggerDict.items())
            if isinstance(obj, logging.Logger) and name.split(".", 1)[0] in prefixes
        }
        for name in sorted(names):
            logger = logging.getLogger(name)
            if self not in logger.filters:
                logger.addFilter(self)
                self._loggers.append(logger)

    def remove(self) -> None:
        """Take the filter off every logger ``install`` added it to."""
        for logger in self._loggers:
            logger.removeFilter(self)
        self._loggers.clear()


Restore = Callable[[list[str]], Awaitable[int]]
"""Writes the state a worker holds to the changelog topics named (created
again, empty) and returns the number of records written."""


def watch_broker(app: Any, engine: Any, settings: Settings, registry: CollectorRegistry,
                 restore: Restore | None = None) -> BrokerHealth:
    """Watch the broker of a Faust ``app`` from a task of the app.

    - Probes ``settings.bootstrap()`` every ``settings.broker_probe_interval``
      seconds (``probe_broker``, ``settings.broker_probe_timeout`` each).
    - During an outage ``engine.ready`` is False (``/ready`` answers 503,
      ``leadsla_worker_ready`` is 0). When the broker is back it is True
      again if it was before and no partition was revoked meanwhile; after
      a revocation the next recovery sets it, as at start-up.
    - When the broker is back, the worker's topics (input, dead letters,
      outcomes and the tables' changelogs) are created again if missing,
      with ``settings.partitions``; a broker that forgot them (the embedded
      one keeps everything in memory) lost what they held. ``restore`` is
      then awaited with the changelogs among them (``Restore``).
    - One WARNING line when the broker is back says how long it was away
      and, if it came back without topics, which, and what was written again.
      For ``settings.rebalance_timeout`` seconds after it the Kafka client's
      connection and group errors are counted, not logged (the group rejoins).
    - ``BrokerErrorFilter`` is on the aiokafka, faust and mode loggers while
      the task runs.
    - Metrics in ``registry``: ``leadsla_broker_up``,
      ``leadsla_broker_outages_total``, ``leadsla_broker_errors_suppressed_total``.

    Returns the ``BrokerHealth``; nothing runs until the app starts.
    """
    where = settings.bootstrap()
    timeout = settings.broker_probe_timeout
    security = settings.kafka_security()

    async def probe() -> str | None:
        try:
            return await probe_broker(where, timeout, security)
        except BrokerAuthError as exc:
            # The worker passed this check at start: credentials revoked or
            # a certificate expired since. Reported as an outage, whose line
            # names the cause, while Faust's own clients keep retrying.
            return str(exc)

    health = BrokerHealth(probe, where, interval=settings.broker_probe_interval, settle=settings.rebalance_timeout)
    up = Gauge("leadsla_broker_up", "1 while the broker answers this worker's checks, 0 during an outage.",
               registry=registry)
    up.set(1)
    outages = Counter("leadsla_broker_outages", "Broker outages this worker saw (checks failing until one answers).",
                      registry=registry)
    suppressed = Counter("leadsla_broker_errors_suppressed",
                         "Kafka client connection-error log lines dropped because the broker was known to be down.",
                         registry=registry)
    health.on_suppressed(suppressed.inc)
    state = {"was_ready": False, "revoked": False}

    def down(h: BrokerHealth) -> None:
        up.set(0)
        outages.inc()
        state["was_ready"], state["revoked"] = bool(engine.ready), False
        engine.ready = False

    async def back(h: BrokerHealth) -> str | None:
        up.set(1)
        note = await _recreate_topics(app, settings, security, restore)
        if state["was_ready"] and not state["revoked"]:
            engine.ready = True
        return note

    health.on_down(down)
    health.on_up(back)

    @app.on_partitions_revoked.connect
    async def revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        state["revoked"] = True

    @app.task
    async def broker_health() -> None:
        quiet = BrokerErrorFilter(health)
        quiet.install()
        try:
            await health.run()
        finally:
            quiet.remove()

    return health


async def _recreate_topics(app: Any, settings: Settings, security: KafkaSecurity,
                           restore: Restore | None) -> str | None:
    """Create the worker's topics the broker came back without; returns what
    the comeback line says of it (None: nothing was missing)."""
    changelogs = sorted(t.changelog_topic.get_topic_name() for t in app.tables.values())
    names = settings.required_topics() + changelogs
    try:
        created = await ensure_topics(settings.bootstrap(), names, settings.partitions, timeout=10.0,
                                      security=security)
    except BrokerError as exc:
        return f"but its topics could not be checked: {exc}"
    if not created:
        return None
    if len(created) == len(names):
        # The whole text in one line: what was lost, why, and what was done.
        note = (f"empty: it lost every topic of this worker and what they held, as a broker that keeps its data in "
                f"memory does when it restarts; created {', '.join(created)} again with {settings.partitions} "
                "partitions")
    else:
        note = (f"without {', '.join(created)}: created them again with {settings.partitions} partitions; what they "
                "held is gone")
    lost = [name for name in created if name in changelogs]
    if restore is not None and lost:
        try:
            written = await restore(lost)
        except Exception as exc:  # the state stays in memory; the next change of each key writes it
            return f"{note}; this worker's state could not be written to the new changelogs ({exc.__class__.__name__})"
        note += f"; this worker's state written to the new changelogs ({written} records)"
    return note
