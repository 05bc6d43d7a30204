"""What a person watching ``leadsla run`` or ``leadsla demo`` sees: a
compact status line every few seconds, and a summary when it stops.

The numbers are read in-process, from the worker's own Prometheus counters
(``streams.metrics.Metrics``) and the engine's read-only snapshot
(``streams.views.Views.snapshot``): the same figures ``/metrics`` shows,
without scraping it. Nothing here runs per event; one reading costs about
what one scrape does.

On a terminal a status line is printed every ``TTY_INTERVAL_S`` seconds
(a new line each time, so that log lines in between never garble it) and a
table on exit. Elsewhere (a pipe, a file, a container log) the same
status is an ordinary INFO log line every ``LOG_INTERVAL_S`` seconds and the
summary one log line: plain text, no escape codes. Counts and times only,
never a lead id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from leadsla.models.durations import format_duration_us

if TYPE_CHECKING:
    from leadsla.streams.app import Monitor
    from leadsla.streams.metrics import Metrics

log = logging.getLogger("leadsla")

TTY_INTERVAL_S = 5.0
LOG_INTERVAL_S = 30.0


@dataclass(frozen=True)
class PolicyCounts:
    """One policy's clocks: decided ``met`` and ``breached`` since this
    process started (counters), ``open`` running now (a gauge)."""

    met: int = 0
    breached: int = 0
    open: int = 0


@dataclass(frozen=True)
class Reading:
    """One look at the worker.

    ``at`` is ``time.monotonic()`` seconds; ``accepted``, ``duplicates`` and
    ``dead_letters`` count records since this process started (so a restart
    begins again at 0); ``lag`` is records of the input topic not processed
    yet, summed over owned partitions (None while no partition has been
    fetched); ``partitions`` is how many this worker owns; ``policies`` keeps
    the policies file's order; ``broker_away_s`` is how long the broker has
    not answered (None: it answers)."""

    at: float
    accepted: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    lag: int | None = None
    ready: bool = False
    partitions: int = 0
    policies: dict[str, PolicyCounts] = field(default_factory=dict)
    broker_away_s: float | None = None

    @property
    def records(self) -> int:
        """Records handled: accepted, duplicate or dead-lettered."""
        return self.accepted + self.duplicates + self.dead_letters


def counter_total(counter: Any, **labels: str) -> float:
    """Sum of a prometheus_client counter's ``*_total`` samples whose labels
    include ``labels`` (all children when none are given). Public API only:
    ``collect()``, as a scrape would."""
    total = 0.0
    for family in counter.collect():
        for s in family.samples:
            if s.name.endswith("_total") and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def take_reading(metrics: Metrics, snapshot: Mapping[str, Any], policy_names: Iterable[str],
                 now: float | None = None, broker_away_s: float | None = None) -> Reading:
    """A ``Reading`` from the worker's counters and one ``Views.snapshot()``;
    ``broker_away_s`` as the broker watcher tells it (None: the broker answers)."""
    policies = {}
    open_by_policy: Mapping[str, Mapping[str, int]] = snapshot.get("open", {})
    for name in policy_names:
        policies[name] = PolicyCounts(
            met=int(counter_total(metrics.outcomes, policy=name, outcome="met")),
            breached=int(counter_total(metrics.outcomes, policy=name, outcome="breached")),
            open=sum(open_by_policy.get(name, {}).values()),
        )
    lags = [p["lag"] for p in snapshot.get("partitions", {}).values() if p.get("lag") is not None]
    return Reading(
        at=time.monotonic() if now is None else now,
        accepted=int(counter_total(metrics.events)),
        duplicates=int(counter_total(metrics.duplicates)),
        dead_letters=int(counter_total(metrics.rejected)),
        lag=sum(lags) if lags else None,
        ready=bool(snapshot.get("ready")),
        partitions=len(snapshot.get("partitions", {})),
        policies=policies,
        broker_away_s=broker_away_s,
    )


def _count(n: int) -> str:
    return f"{n:,}"


def _rate(per_s: float) -> str:
    return f"{per_s:.1f}" if per_s < 10 else f"{per_s:,.0f}"


def status_line(cur: Reading, prev: Reading | None = None) -> str:
    """One line, e.g. ``42 events/s | lag 0 | dead letters 3 | first_touch
    120 met, 14 breached, 3 open | …``. The rate is records handled per
    second since ``prev`` (none without it)."""
    parts = []
    if cur.broker_away_s is not None:
        # Said first: while the broker is away no partition can recover, and
        # "recovering state" would send the operator looking in the wrong place.
        parts.append(f"broker away for {uptime_text(cur.broker_away_s)}")
    elif cur.partitions == 0:
        parts.append("waiting for partitions")
    elif not cur.ready:
        parts.append("recovering state")
    if prev is not None and cur.at > prev.at:
        parts.append(f"{_rate(max(0, cur.records - prev.records) / (cur.at - prev.at))} events/s")
    parts.append(f"{_count(cur.accepted)} events")
    parts.append("lag ?" if cur.lag is None else f"lag {_count(cur.lag)}")
    parts.append(f"dead letters {_count(cur.dead_letters)}")
    for name, c in cur.policies.items():
        parts.append(f"{name} {_count(c.met)} met, {_count(c.breached)} breached, {_count(c.open)} open")
    return " | ".join(parts)


def uptime_text(seconds: float) -> str:
    """``45s``, ``2m 13s``, ``1h 02m 13s``, ``3d 4h 05m``: whole seconds."""
    s = max(0, int(seconds))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if d:
        return f"{d}d {h}h {m:02d}m"
    if h:
        return f"{h}h {m:02d}m {s:02d}s"
    if m:
        return f"{m}m {s:02d}s"
    return f"{s}s"


def summary_lines(cur: Reading, uptime_s: float) -> list[str]:
    """The exit summary as a small table: totals per policy, dead letters,
    uptime. First line: ``stopped after 2m 13s: …``."""
    head = (f"stopped after {uptime_text(uptime_s)}: {_count(cur.accepted)} events accepted "
            f"({_count(cur.duplicates)} duplicates), {_count(cur.dead_letters)} dead letters")
    if not cur.policies:
        return [head]
    width = max(len("policy"), *(len(n) for n in cur.policies))
    rows = [head, f"  {'policy':<{width}}  {'met':>8}  {'breached':>8}  {'open':>8}"]
    for name, c in cur.policies.items():
        rows.append(f"  {name:<{width}}  {_count(c.met):>8}  {_count(c.breached):>8}  {_count(c.open):>8}")
    return rows


def summary_log_line(cur: Reading, uptime_s: float) -> str:
    """The exit summary in one log line (no table): for logs, not people."""
    policies = "; ".join(f"{n} {c.met} met, {c.breached} breached, {c.open} open" for n, c in cur.policies.items())
    return (f"stopped after {uptime_text(uptime_s)}: {cur.accepted} events accepted ({cur.duplicates} duplicates), "
            f"{cur.dead_letters} dead letters" + (f"; {policies}" if policies else ""))


def is_terminal(*streams: IO[str] | None) -> bool:
    """True when any of the streams is a terminal (a closed or odd stream is not)."""
    for s in streams:
        try:
            if s is not None and s.isatty():
                return True
        except (ValueError, AttributeError, OSError):
            continue
    return False


class Console:
    """Prints status lines and the exit summary.

    ``read`` returns a fresh ``Reading``. With ``out`` (a text stream, e.g.
    the terminal's stdout, taken before Faust redirects ``sys.stdout`` to its
    logger) lines are written there every ``interval`` seconds; with
    ``out=None`` they are INFO lines on the ``leadsla`` logger. ``clock`` is
    ``time.monotonic`` (injectable for tests)."""

    def __init__(self, read: Callable[[], Reading], out: IO[str] | None, interval: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self._out = out
        self.interval = interval if interval is not None else (TTY_INTERVAL_S if out is not None else LOG_INTERVAL_S)
        self._clock = clock
        self.started = clock()
        self._prev: Reading | None = None
        self._last_owned: Reading | None = None  # the last reading with partitions: open clocks at shutdown

    def sample(self) -> Reading:
        cur = self._read()
        if cur.partitions:
            self._last_owned = cur
        return cur

    def tick(self) -> str:
        """Take a reading, emit its status line and return it."""
        cur = self.sample()
        line = status_line(cur, self._prev)
        self._prev = cur
        self._emit(line)
        return line

    def summary(self) -> list[str]:
        """Emit and return the exit summary. The counters are read now; the
        open clocks come from the last reading taken while partitions were
        owned (a stopping worker gives its partitions up first)."""
        try:
            cur = self.sample()
        except Exception as exc:  # a stopped worker: the last reading will do
            log.debug("final reading failed: %s", exc.__class__.__name__)
            cur = self._prev or self._last_owned or Reading(self._clock())
        if not cur.partitions and self._last_owned is not None:
            cur = Reading(cur.at, cur.accepted, cur.duplicates, cur.dead_letters, self._last_owned.lag,
                          cur.ready, self._last_owned.partitions,
                          {n: PolicyCounts(c.met, c.breached, self._last_owned.policies.get(n, c).open)
                           for n, c in cur.policies.items()})
        uptime = self._clock() - self.started
        if self._out is None:
            line = summary_log_line(cur, uptime)
            log.info(line)
            return [line]
        lines = summary_lines(cur, uptime)
        for line in lines:
            self._write(f"leadsla: {line}" if line is lines[0] else line)
        return lines

    async def run(self) -> None:
        """Emit a status line every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.tick()
            except Exception as exc:  # a status line must never stop the worker
                log.warning("status line failed: %s", exc.__class__.__name__)

    def _emit(self, line: str) -> None:
        if self._out is None:
            log.info("status: %s", line)
        else:
            self._write(f"{time.strftime('%H:%M:%S')} {line}")

    def _write(self, text: str) -> None:
        assert self._out is not None
        try:
            self._out.write(text + "\n")
            self._out.flush()
        except (OSError, ValueError):
            pass  # the terminal went away (a closed pty): nothing to tell


def attach(monitor: Monitor, out: IO[str] | None, interval: float | None = None) -> Console:
    """A ``Console`` reading ``monitor``'s engine, its status lines started
    as a task of the app and a last reading taken before shutdown (while the
    partitions, and so the open clocks, are still owned). Call before the
    worker starts; call ``summary()`` once it has stopped."""
    engine = monitor.engine
    names = [p.name for p in engine.policies.policies]
    health = monitor.health

    def reading() -> Reading:
        away = None if health is None or health.up else health.down_for()
        return take_reading(engine.metrics, engine.views.snapshot(), names, broker_away_s=away)

    console = Console(reading, out, interval)

    @monitor.app.task
    async def status_lines() -> None:
        await console.run()

    @monitor.app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def last_reading(sender: Any, **kwargs: Any) -> None:
        try:
            console.sample()
        except Exception as exc:  # the summary falls back on the last status line's reading
            log.debug("last reading failed: %s", exc.__class__.__name__)

    return console


def clock_duration(seconds: float | None, calendar: str | None) -> str:
    """A clock's elapsed or remaining time as people read it.

    ``seconds`` is SLA time (business seconds under a calendar; None: no
    such time, shown ``-``). ``calendar`` is the name of the policy's
    business calendar, or None for a clock that runs around the clock.
    Under a calendar a day of the clock is not 24 hours, so the time is
    business hours and minutes, never days, in whole minutes (cut, as the
    team screen cuts them) and marked ``bh``: ``38h bh``, ``2h05m bh``,
    ``45m bh`` (``<1m bh`` for a few seconds). Around the clock it is the
    ``1d14h`` spelling of whole seconds used everywhere else."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if calendar is None:
        return format_duration_us(round(seconds) * 1_000_000)
    minutes = int(seconds // 60)
    if minutes == 0:
        return "<1m bh" if seconds > 0 else "0m bh"
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes}m bh"
    return f"{hours}h bh" if not minutes else f"{hours}h{minutes:02d}m bh"
