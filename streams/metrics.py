"""Every Prometheus metric leadsla exposes, declared once against an injected
registry. Hot-path label children are bound once and cached; gauges that
describe owned partitions are computed at scrape time from the runtime.
Label values are bounded twice: per label (``LabelGuard``: teams, reps) and
per family (``max_series`` label sets, past which new ones fold into
``other``); ``render_metrics`` renders the page off the event loop, leadsla's
own families writing their text themselves (``expose``: the bytes
``generate_latest`` would give, at a twentieth of its cost)."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from math import copysign
from typing import Any

from prometheus_client import CollectorRegistry, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector
from prometheus_client.utils import INF, floatToGoString

from leadsla.models.events import EVENT_TYPES
from leadsla.models.policy import PolicySet, fingerprint
from leadsla.streams.codec import REASONS
from leadsla.streams.sink import SINK_TOPICS

# ``*_created`` series double the exposition for no use on dashboards.
disable_created_metrics()

# SLA goals run from minutes to days: buckets cover 1 minute to 2 weeks.
ELAPSED_BUCKETS = (60, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 345600, 604800, 1209600)
# Attempts on a depth clock: the guide's six, and what is short of or past it.
DEPTH_BUCKETS = (0, 1, 2, 3, 4, 5, 6, 8, 10, 15)
OTHER, NONE = "other", "none"
# Label sets one family may hold before new ones fold into 'other'. The label
# guards alone multiply: 200 teams x 500 reps x 3 policies is 300,000 breach
# series, a 27 MB page that takes seconds to render.
MAX_SERIES = 10_000
# Children remembered by label values as given (``_Remembering``), per
# family: forgotten at this many, as values the guards fold (a rep's name
# sent by mistake, say) are not bounded.
_RAW_CACHE = 100_000

log = logging.getLogger("leadsla")


# -- the text format ----------------------------------------------------------------
#
# ``generate_latest`` escapes and checks every label name and value of every
# sample and formats every value anew: ~5.5 µs a series, 100 ms for a page of
# 19,000. leadsla's own families write their lines themselves (``expose``),
# the same bytes: the start of each line (name and labels) built once per
# label set and kept, values formatted by prometheus_client's own
# ``floatToGoString`` and remembered. Anything else in a registry still goes
# through ``generate_latest``.

# Names the text format writes as they are, in any prometheus_client version
# (others are escaped, a version's own way: families with such names are
# left to ``generate_latest``).
_PLAIN_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# Values as the text format writes them (``floatToGoString``), by value. 0.0
# is always there, so that -0.0 (found under it: the two are equal) can be
# told apart; NaN is never kept (never found again).
_NUMBERS_KEPT = 10_000
_NUMBERS: dict[float, str] = {0.0: "0.0"}
_ZERO = _NUMBERS[0.0]


def _number(value: float) -> str:
    """``value`` as the text format writes it (``floatToGoString``: ``1.0``,
    ``+Inf``, ``NaN``, ``1.5e+07``), remembered for the next time."""
    text = _NUMBERS.get(value)
    if text is not None and (text is not _ZERO or copysign(1.0, value) > 0):
        return text
    text = floatToGoString(value)
    if value == value and value != 0:
        if len(_NUMBERS) >= _NUMBERS_KEPT:
            _NUMBERS.clear()
            _NUMBERS[0.0] = _ZERO
        _NUMBERS[value] = text
    return text


def _label_value(value: str) -> str:
    """A label value escaped as the text format wants it (backslash, newline, double quote)."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')


def _pairs(names: Iterable[str], values: Iterable[str]) -> list[str]:
    """``name="value"`` for each label, sorted by name (as ``generate_latest`` lists them)."""
    # Not strict: as ``dict(zip(labelnames, values))`` in prometheus_client's families.
    return [f'{name}="{_label_value(value)}"' for name, value in sorted(zip(names, values, strict=False))]


class _Metrics(Collector):
    """Metric objects as a collector, for ``generate_latest``."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics


class _Text:
    """One family in the text format, what does not change from a scrape to
    the next: its HELP and TYPE lines (``generate_latest``'s own, from the
    empty family ``metric``), the name of its samples (``sample``, for a
    histogram its stem) and, per label set, the start of its sample lines,
    kept in ``heads`` by label values (at most ``_RAW_CACHE``: a family's
    label sets are bounded, those read from the runtime included).
    ``plain``: the names need no escaping and the family can be written here."""

    __slots__ = ("header", "heads", "labelnames", "plain", "sample")

    def __init__(self, metric: Metric, labelnames: Sequence[str], sample: str) -> None:
        self.header = generate_latest(_Metrics([metric])).decode()
        self.labelnames = tuple(labelnames)
        self.sample = sample
        self.plain = (all(_PLAIN_NAME.fullmatch(n) for n in (sample, *self.labelnames))
                      and len(set(self.labelnames)) == len(self.labelnames) and "le" not in self.labelnames)
        self.heads: dict[Any, Any] = {}

    def _keep(self, values: Any, head: Any) -> Any:
        heads = self.heads
        if len(heads) >= _RAW_CACHE:
            heads.clear()
        heads[values] = head
        return head

    def head(self, values: tuple[str, ...]) -> str:
        """``name{a="x",b="y"} `` (``name `` without labels): a sample line up to its value."""
        labels = ",".join(_pairs(self.labelnames, values))
        return self._keep(values, f"{self.sample}{{{labels}}} " if labels else f"{self.sample} ")

    def histogram_heads(self, values: tuple[str, ...]) -> tuple[str, str, str, str]:
        """A histogram series' line starts: a bucket line is ``before + 'le="…"' +
        after + value`` (``le`` sorted among the labels), then ``_count`` and ``_sum``."""
        pairs = _pairs(self.labelnames, values)
        at = bisect_left(sorted(name for name, _ in zip(self.labelnames, values, strict=False)), "le")
        before = "".join(f"{p}," for p in pairs[:at])
        after = "".join(f",{p}" for p in pairs[at:])
        braces = f"{{{','.join(pairs)}}} " if pairs else " "
        return self._keep(values, (f"{self.sample}_bucket{{{before}", f"{after}}} ",
                                   f"{self.sample}_count{braces}", f"{self.sample}_sum{braces}"))


# A rep label value must be an id (letters, digits and _ . : / -, at most 64
# characters): a rep given by a person's name ("Jane Doe") or an e-mail
# address is never a label, it is 'other'. Team names are the business's
# own ("North America East", "sales|emea") and keep any text of at most 100
# characters without an @ or a control character.
_REP_ID = re.compile(r"[A-Za-z0-9_.:/-]{1,64}")
_TEAM_NAME = re.compile(r"[^@\x00-\x1f\x7f]{1,100}")


class LabelGuard(dict[str | None, str]):
    """Keeps a label's value set bounded and free of people: a value that
    does not fully match ``shape`` (``_REP_ID`` for reps: ``rep-07``, a CRM
    user id, not ``Jane Doe`` or ``jane@example.com``; ``_TEAM_NAME`` for
    teams: no e-mail address) is 'other', and past ``limit`` distinct values
    new ones are 'other' too; empty or None is 'none'.

    ``guard(value)`` answers; so does ``guard[value]``, the hot paths' form:
    a guard is a dict of the answers given so far (a value's answer never
    changes once given), filled on a miss, so a value asked before costs one
    lookup in C. Past ``_RAW_CACHE`` answers it forgets them (values that
    fold into 'other' are not bounded); the values it admitted stay."""

    __slots__ = ("_known", "_limit", "_shape")

    def __init__(self, limit: int, shape: re.Pattern[str] = _TEAM_NAME) -> None:
        super().__init__()
        self._known: set[str] = set()
        self._limit = limit
        self._shape = shape

    def __call__(self, value: str | None) -> str:
        return self[value]

    def __missing__(self, value: str | None) -> str:
        answer = self._answer(value)
        if len(self) >= _RAW_CACHE:
            self.clear()
        self[value] = answer
        return answer

    def _answer(self, value: str | None) -> str:
        if not value:
            return NONE
        if value in self._known:
            return value
        if self._shape.fullmatch(value) is None:
            return OTHER
        if len(self._known) >= self._limit:
            return OTHER
        self._known.add(value)
        return value


class CounterChild:
    """One series of a ``CounterFamily``: ``inc`` adds to its cell."""

    __slots__ = ("cell",)

    def __init__(self, cell: list[float]) -> None:
        self.cell = cell

    def inc(self, amount: float = 1) -> None:
        """Add ``amount`` (≥ 0; raises ValueError otherwise, as a Prometheus counter does)."""
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        self.cell[0] += amount


class HistogramChild:
    """One series of a ``HistogramFamily``: ``observe`` counts a value in its bucket."""

    __slots__ = ("bounds", "cell")

    def __init__(self, bounds: tuple[float, ...], cell: list[float]) -> None:
        self.bounds, self.cell = bounds, cell

    def observe(self, amount: float) -> None:
        """Count ``amount`` in the first bucket whose bound is at least it, and add it to the sum."""
        cell = self.cell
        if amount == amount:  # NaN is in no bucket (as in prometheus_client), only in the sum
            cell[bisect_left(self.bounds, amount)] += 1
        cell[-1] += amount


class _Remembering:
    """A family's children by the label values an accessor was given
    (``Metrics.outcome`` and the like: a team as the event spells it, before
    the guards), so that a label set seen before costs one dict lookup."""

    __slots__ = ("given",)

    def __init__(self) -> None:
        self.given: dict[Any, Any] = {}

    def remember(self, given: Any, child: Any) -> Any:
        """Remember ``child`` under ``given`` (the accessor's key). Past
        ``_RAW_CACHE`` entries the memory starts again, which is harmless: the
        same values resolve to the same child (a guard's answer for a value
        is fixed once asked)."""
        if len(self.given) >= _RAW_CACHE:
            self.given.clear()
        self.given[given] = child
        return child


class CounterFamily(_Remembering):
    """A counter family counted in plain numbers and exposed at scrape time.

    ``series`` maps label values (in ``labelnames`` order, creation order
    kept: the exposition lists them so) to a one-element list, the count:
    counting is one dict lookup and one addition, no lock and no label
    child. An unlabelled family has its one series from the start, ``cell``.
    ``name`` is the name its samples carry (with ``_total``)."""

    __slots__ = ("cell", "documentation", "labelnames", "name", "series", "text")
    type = "counter"

    def __init__(self, name: str, documentation: str, labelnames: tuple[str, ...] = ()) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, labelnames
        self.series: dict[tuple[str, ...], list[float]] = {}
        super().__init__()
        self.cell: list[float] = [0.0]
        if not labelnames:
            self.series[()] = self.cell
        (empty,) = self.describe()
        self.text = _Text(empty, labelnames, f"{empty.name}_total")

    def labels(self, *values: str) -> CounterChild:
        """The series of ``values`` (created at 0 the first time)."""
        cell = self.series.get(values)
        if cell is None:
            cell = self.series[values] = [0.0]
        return CounterChild(cell)

    def inc(self, amount: float = 1) -> None:
        """Count ``amount`` on an unlabelled family."""
        CounterChild(self.cell).inc(amount)

    def describe(self) -> list[Metric]:
        return [CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> list[Metric]:
        """The family with one sample per series. Safe in a thread while the
        event loop counts: ``dict.copy`` runs without releasing the GIL (no
        Python code runs in it), and each value is read whole."""
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, cell in self.series.copy().items():
            family.add_metric(values, cell[0])
        return [family]

    def expose(self, out: list[str]) -> None:
        """Append the family's text (what ``generate_latest`` writes of
        ``collect()``) to ``out``. Thread-safe as ``collect``."""
        text = self.text
        if not text.plain:
            out.append(generate_latest(_Metrics(self.collect())).decode())
            return
        out.append(text.header)
        heads, numbers = text.heads, _NUMBERS
        for values, cell in self.series.copy().items():
            value = cell[0]
            number = numbers.get(value)
            if number is None or number is _ZERO:
                number = _number(value)
            out.append(f"{heads.get(values) or text.head(values)}{number}\n")


class HistogramFamily(_Remembering):
    """A histogram family in plain numbers: each series is a list of the
    counts in each bucket (not cumulative; ``bounds`` ends with +Inf)
    followed by the sum of the observed values."""

    __slots__ = ("bounds", "documentation", "labelnames", "le_labels", "les", "name", "series", "text")
    type = "histogram"

    def __init__(self, name: str, documentation: str, labelnames: tuple[str, ...], buckets: Iterable[float]) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, labelnames
        self.bounds = (*(float(b) for b in buckets), INF)
        super().__init__()
        self.les = tuple(floatToGoString(b) for b in self.bounds)
        self.le_labels = tuple(f'le="{_label_value(le)}"' for le in self.les)
        self.series: dict[tuple[str, ...], list[float]] = {}
        (empty,) = self.describe()
        self.text = _Text(empty, labelnames, empty.name)

    def labels(self, *values: str) -> HistogramChild:
        """The series of ``values`` (created empty the first time)."""
        cell = self.series.get(values)
        if cell is None:
            cell = self.series[values] = [0.0] * (len(self.bounds) + 1)
        return HistogramChild(self.bounds, cell)

    def describe(self) -> list[Metric]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> list[Metric]:
        """The family, buckets cumulative. Thread-safe as ``CounterFamily.collect``;
        one series' buckets and sum are copied at once (a list slice), so they agree."""
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        les = self.les
        for values, cell in self.series.copy().items():
            counts = cell[:]
            acc = 0.0
            buckets = []
            for le, n in zip(les, counts, strict=False):
                acc += n
                buckets.append((le, acc))
            family.add_metric(values, buckets, counts[-1])
        return [family]

    def expose(self, out: list[str]) -> None:
        """Append the family's text to ``out``, as ``CounterFamily.expose``."""
        text = self.text
        if not text.plain:
            out.append(generate_latest(_Metrics(self.collect())).decode())
            return
        out.append(text.header)
        heads, numbers, le_labels = text.heads, _NUMBERS, self.le_labels
        for values, cell in self.series.copy().items():
            counts = cell[:]
            before, after, count_head, sum_head = heads.get(values) or text.histogram_heads(values)
            acc = 0.0
            number = _ZERO
            for le, n in zip(le_labels, counts, strict=False):  # the buckets; the sum follows them
                acc += n
                found = numbers.get(acc)
                number = _number(acc) if found is None or found is _ZERO else found
                out.append(f"{before}{le}{after}{number}\n")
            out.append(f"{count_head}{number}\n")  # the count is the +Inf bucket's
            out.append(f"{sum_head}{_number(counts[-1])}\n")


class InfoGauge:
    """A gauge family of constant series at 1 (``leadsla_policies_info``)."""

    __slots__ = ("documentation", "labelnames", "name", "series", "text")
    type = "gauge"

    def __init__(self, name: str, documentation: str, labelnames: tuple[str, ...]) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, labelnames
        self.series: list[tuple[str, ...]] = []
        (empty,) = self.describe()
        self.text = _Text(empty, labelnames, empty.name)

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> list[Metric]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values in list(self.series):
            family.add_metric(values, 1.0)
        return [family]

    def expose(self, out: list[str]) -> None:
        """Append the family's text to ``out``, as ``CounterFamily.expose``."""
        text = self.text
        if not text.plain:
            out.append(generate_latest(_Metrics(self.collect())).decode())
            return
        out.append(text.header)
        heads = text.heads
        for values in list(self.series):
            out.append(f"{heads.get(values) or text.head(values)}1.0\n")


Family = CounterFamily | HistogramFamily | InfoGauge


class CountersCollector(Collector):
    """The ``Metrics`` families in the registry, in declaration order. Read
    at scrape time, in the thread that renders (see ``CounterFamily.collect``):
    a scrape may see one series an increment ahead of another, as with any
    threaded exposition, and never a torn value or a half-built series."""

    def __init__(self, families: list[Family]) -> None:
        self._families = families

    def describe(self) -> list[Metric]:
        return [m for f in self._families for m in f.describe()]

    def collect(self) -> Iterator[Metric]:
        for f in self._families:
            yield from f.collect()

    def expose(self, out: list[str]) -> None:
        """Append the families' text to ``out`` (what ``generate_latest`` writes of ``collect()``)."""
        for f in self._families:
            f.expose(out)


class _Family:
    """What the family cap keeps of one family whose trailing ``vary`` labels
    (team, rep) fold into 'other': its exposed name, the label sets it holds
    (``series``) and its folded-sets counter's cell."""

    __slots__ = ("folded", "name", "series", "vary", "warned")

    def __init__(self, name: str, vary: int, folded: list[float]) -> None:
        self.name, self.vary, self.folded = name, vary, folded
        self.series = 0
        self.warned = False


class Metrics:
    """The registry's metrics and their bounded label children.

    ``max_teams`` and ``max_reps`` cap the distinct values of the team and
    rep labels (``LabelGuard``; ``max_reps=0``: every rep is 'none').
    ``max_series`` caps the label sets of each family with a team or rep
    label: past it, a new set keeps its fixed labels (policy, outcome) and
    gets 'other' for team and rep, which may add at most one series per
    fixed-label set beyond the cap. Each set folded so counts once in
    ``leadsla_metric_series_folded_total{metric}``, and the first one of a
    family is logged (the family's name only, never a label value).

    Values are plain numbers in the families (``CounterFamily``,
    ``HistogramFamily``), counted on the event loop without a lock and
    handed to Prometheus by one collector at scrape time. The accessors
    (``outcome``, ``breach``, …) take label values as they come (a team as
    the event spells it) and return the child, remembered by those values:
    a label set seen before costs one dict lookup, not the guards and the cap.
    """

    def __init__(self, registry: CollectorRegistry, policies: PolicySet, max_teams: int, max_reps: int = 0,
                 app_id: str = "leadsla", max_series: int = MAX_SERIES) -> None:
        self.registry = registry
        self.max_series = max_series
        self.team = LabelGuard(max_teams)
        # Reps are labels only on the breach counter, for routing alerts to a
        # rep; 0 turns them off (every rep is 'none').
        self.rep = LabelGuard(max_reps, _REP_ID) if max_reps else (lambda value: NONE)
        self.events = CounterFamily("leadsla_events_total", "Events accepted (duplicates excluded), by type.", ("type",))
        self.duplicates = CounterFamily("leadsla_events_duplicate_total", "Events dropped as duplicates of an event id already seen.")
        self.rejected = CounterFamily("leadsla_events_rejected_total", "Records sent to the dead-letter topic, by reason.", ("reason",))
        self.late = CounterFamily("leadsla_events_late_total", "Accepted events that arrived behind the watermark (later than the allowed lateness).")
        self.offset_gaps = CounterFamily("leadsla_offset_gaps_total", "Offsets of lead-events that did not reach the engine in order (each gap is read again once).")
        self.too_late_total = CounterFamily("leadsla_events_too_late_total", "Late events that could not change a decided clock (dated inside or before a decided cycle), by policy and role.", ("policy", "role"))
        self.outcomes = CounterFamily("leadsla_sla_outcomes_total", "Decided clocks, by policy, outcome (met or breached) and team.", ("policy", "outcome", "team"))
        self.breaches = CounterFamily("leadsla_sla_breaches_total", "Breached clocks by policy, team and rep (rep: an id from the CRM, never a name).", ("policy", "team", "rep"))
        self.corrections = CounterFamily("leadsla_sla_corrections_total", "Late stop events that contradicted a breach already decided.", ("policy", "team"))
        self.elapsed = HistogramFamily("leadsla_sla_elapsed_seconds", "Elapsed SLA (business) time of clocks that stopped.", ("policy", "team"), ELAPSED_BUCKETS)
        self.pauses_expired = CounterFamily("leadsla_sla_pauses_expired_total", "Pauses that outlasted their policy's max_pause and ended by themselves.", ("policy", "team"))
        self.at_risk_total = CounterFamily("leadsla_sla_at_risk_total", "Clocks that crossed their at-risk threshold.", ("policy", "team"))
        self.depth_attempts = HistogramFamily("leadsla_followup_depth_attempts", "Attempts made on each decided depth clock whose lead was not reached.", ("policy",), DEPTH_BUCKETS)
        self.followup = HistogramFamily("leadsla_followup_latency_seconds", "Wall-clock time from handoff to the first follow-up attempt.", ("team",), ELAPSED_BUCKETS)
        self.attempts = CounterFamily("leadsla_followup_attempts_total", "Follow-up attempts (contact attempts and connects), by team.", ("team",))
        self.revenue_won = CounterFamily("leadsla_revenue_won_total", "Won deal amounts (in their own currency units), by policy and what became of the lead's first clock of it: met, breached, open or none (revenue at risk).", ("policy", "outcome"))
        self.handoffs = CounterFamily("leadsla_handoffs_total", "Leads handed off to sales, by team.", ("team",))
        self.sink_errors = CounterFamily("leadsla_sink_send_errors_total", "Records the Kafka producer refused or could not deliver, after retries: each is missing from its topic (outcomes, dead_letters, lead_changelog, window_changelog).", ("topic",))
        self.dead_letters_truncated = CounterFamily("leadsla_dead_letters_truncated_total", "Dead letters too large for the producer, sent with their value cut (headers truncated, original-size, original-sha256).")
        # One series per worker: workers of one group (app_id) that show
        # different fingerprints decide under different rules.
        self.policies_info = InfoGauge("leadsla_policies_info", "1, labelled with the app id and the fingerprint of the policies this worker decides by (leadsla policies prints it).", ("app_id", "fingerprint"))
        self.policies_info.series.append((app_id, fingerprint(policies)))
        self.folded = CounterFamily("leadsla_metric_series_folded_total", "Label sets that found their metric at max_series label sets and were counted under team (and rep) 'other' instead, by metric.", ("metric",))
        # One collector for them all, in this order (the order /metrics lists them in).
        registry.register(CountersCollector([
            self.events, self.duplicates, self.rejected, self.late, self.offset_gaps, self.too_late_total,
            self.outcomes, self.breaches, self.corrections, self.elapsed, self.pauses_expired, self.at_risk_total,
            self.depth_attempts, self.followup, self.attempts, self.revenue_won, self.handoffs, self.sink_errors,
            self.dead_letters_truncated, self.policies_info, self.folded,
        ]))
        # The families whose trailing labels are team (and rep), by id: the
        # only ones whose label sets are not bounded by the policies file.
        self._families: dict[int, _Family] = {}
        for metric, vary in (
            (self.outcomes, 1), (self.breaches, 2), (self.corrections, 1), (self.elapsed, 1),
            (self.pauses_expired, 1), (self.at_risk_total, 1), (self.followup, 1), (self.attempts, 1),
            (self.handoffs, 1),
        ):
            # At 0 from the start: increase() never counts a series' first sample.
            self._families[id(metric)] = _Family(metric.name, vary, self.folded.labels(metric.name).cell)
        # Children for label sets known up front.
        self._events = {t: self.events.labels(t) for t in EVENT_TYPES}
        self._rejected = {reason: self.rejected.labels(reason) for reason in REASONS}
        self._sink_errors = {topic: self.sink_errors.labels(topic) for topic in SINK_TOPICS}
        # Each event type's count, for the engine's hot path.
        self.event_cells: dict[str, list[float]] = {t: child.cell for t, child in self._events.items()}
        self._children: dict[tuple[Any, ...], Any] = {}
        self._prebound: set[tuple[Any, ...]] = set()
        self._prebound_teams: set[str | None] = set()
        self._opened: set[tuple[Any, ...]] = set()
        for p in policies.policies:
            for outcome in ("met", "breached"):
                self.outcome(p.name, outcome, None)
            self.correction(p.name, None)
            for outcome in ("met", "breached", "open", "none"):
                self.won(p.name, outcome)
            if p.is_depth:
                self.depth_of(p.name)

    def _child(self, metric: Any, *labels: str) -> Any:
        """The child of ``metric`` for ``labels`` (already bounded by the
        guards), created once. A folded label set is remembered too, bound to
        its 'other' child: each set counts once as folded. The cache is
        bounded by the label guards."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._new_child(metric, labels)
        return child

    def _new_child(self, metric: Any, labels: tuple[str, ...]) -> Any:
        family = self._families.get(id(metric))
        if family is None:
            return metric.labels(*labels)
        if family.series >= self.max_series:
            folded = labels[:-family.vary] + (OTHER,) * family.vary
            if folded != labels:
                family.folded[0] += 1
                if not family.warned:
                    family.warned = True
                    log.warning("%s holds %d label sets (the cap): new ones are counted under team%s 'other' "
                                "(leadsla_metric_series_folded_total)", family.name, self.max_series,
                                " and rep" if family.vary > 1 else "")
                return self._child(metric, *folded)
        family.series += 1
        return metric.labels(*labels)

    def event(self, etype: str) -> CounterChild:
        return self._events[etype]

    def reject(self, reason: str) -> CounterChild:
        return self._rejected[reason]

    def sink_error(self, topic: str) -> CounterChild:
        """The send-error counter of one kind of record (``sink.SINK_TOPICS``)."""
        return self._sink_errors[topic]

    def outcome(self, policy: str, outcome: str, team: str | None) -> CounterChild:
        f = self.outcomes
        child = f.given.get((policy, outcome, team))
        if child is None:
            child = f.remember((policy, outcome, team), self._child(f, policy, outcome, self.team(team)))
        return child

    def won(self, policy: str, outcome: str) -> CounterChild:
        f = self.revenue_won
        child = f.given.get((policy, outcome))
        if child is None:
            child = f.remember((policy, outcome), self._child(f, policy, outcome))
        return child

    def depth_of(self, policy: str) -> HistogramChild:
        f = self.depth_attempts
        child = f.given.get(policy)
        if child is None:
            child = f.remember(policy, self._child(f, policy))
        return child

    def prebind(self, policy: str, team: str | None, rep: str | None, at_risk: bool = False) -> None:
        """Create a clock's outcome series at 0 when it starts: Prometheus'
        increase() never counts a series' first sample, so a team's first
        decision would be lost if its series were born at 1.

        The breach series (policy, team, rep) is created only once the clock
        is ``at_risk``: still at least a lateness before it can breach, and
        only for clocks that may. Created for every clock, it was one zero
        series per team x rep pair that ever had a clock, most of all of them.
        A breach without a warning first (a give-up, a backlog that warns
        and breaches in one pass, a clock recovered already at risk: the
        engine's rebuild passes no ``at_risk``) is born at 1; the breach
        recording rules count a series born inside their window by its value.

        Done once per label set as given (creating a series is idempotent)."""
        key = (policy, team, rep, True) if at_risk else (policy, team, None, False)
        if key in self._prebound:
            return
        self.outcome(policy, "met", team)
        self.outcome(policy, "breached", team)
        self.elapsed_of(policy, team)
        if at_risk:
            self.breach(policy, team, rep)
        if len(self._prebound) >= _RAW_CACHE:
            self._prebound.clear()
        self._prebound.add(key)

    def prebind_team(self, team: str | None) -> None:
        """The same for a team's handoff and follow-up series."""
        if team in self._prebound_teams:
            return
        self.handoffs_of(team)
        self.attempts_of(team)
        self.followup_of(team)
        if len(self._prebound_teams) >= _RAW_CACHE:
            self._prebound_teams.clear()
        self._prebound_teams.add(team)

    def clock_opened(self, policy: str, team: str | None, rep: str | None, at_risk: bool) -> None:
        """``prebind`` then ``prebind_team``, for a clock that begins counting
        as open (or opens again, at risk): once per label set as given."""
        key = (policy, team, rep, True) if at_risk else (policy, team, None, False)
        if key in self._opened:
            return
        self.prebind(policy, team, rep, at_risk)
        self.prebind_team(team)
        if len(self._opened) >= _RAW_CACHE:
            self._opened.clear()
        self._opened.add(key)

    def _by_policy_team(self, f: Any, policy: str, team: str | None) -> Any:
        """``f``'s child for a policy and a team as given (the team bounded
        to its label once, then remembered by the team as given)."""
        child = f.given.get((policy, team))
        if child is None:
            child = f.remember((policy, team), self._child(f, policy, self.team(team)))
        return child

    def _by_team(self, f: Any, team: str | None) -> Any:
        """``f``'s child for a team as given (bounded to its label once)."""
        child = f.given.get(team)
        if child is None:
            child = f.remember(team, self._child(f, self.team(team)))
        return child

    def too_late(self, policy: str, role: str) -> CounterChild:
        f = self.too_late_total
        child = f.given.get((policy, role))
        if child is None:
            child = f.remember((policy, role), self._child(f, policy, role))
        return child

    def breach(self, policy: str, team: str | None, rep: str | None) -> CounterChild:
        f = self.breaches
        child = f.given.get((policy, team, rep))
        if child is None:
            child = f.remember((policy, team, rep), self._child(f, policy, self.team(team), self.rep(rep)))
        return child

    def correction(self, policy: str, team: str | None) -> CounterChild:
        return self._by_policy_team(self.corrections, policy, team)

    def elapsed_of(self, policy: str, team: str | None) -> HistogramChild:
        return self._by_policy_team(self.elapsed, policy, team)

    def pause_expired_of(self, policy: str, team: str | None) -> CounterChild:
        return self._by_policy_team(self.pauses_expired, policy, team)

    def at_risk_of(self, policy: str, team: str | None) -> CounterChild:
        return self._by_policy_team(self.at_risk_total, policy, team)

    def followup_of(self, team: str | None) -> HistogramChild:
        return self._by_team(self.followup, team)

    def attempts_of(self, team: str | None) -> CounterChild:
        return self._by_team(self.attempts, team)

    def handoffs_of(self, team: str | None) -> CounterChild:
        return self._by_team(self.handoffs, team)


class Scraped:
    """A family that a collector reads anew at each scrape (``RuntimeCollector``,
    ``LedgerCollector``), declared once: its name, help, label names and
    type (``gauge`` or ``counter``, named as for ``CounterMetricFamily``),
    and its text (``_Text``: the starts of its lines stay known from one
    scrape to the next, by label values)."""

    __slots__ = ("documentation", "labelnames", "name", "text", "type")

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = (), type: str = "gauge") -> None:
        self.name, self.documentation, self.labelnames, self.type = name, documentation, tuple(labelnames), type
        empty = self.empty()
        self.text = _Text(empty, self.labelnames, f"{empty.name}_total" if type == "counter" else empty.name)

    def empty(self) -> CounterMetricFamily | GaugeMetricFamily:
        """The family without samples, as prometheus_client builds it."""
        cls = CounterMetricFamily if self.type == "counter" else GaugeMetricFamily
        return cls(self.name, self.documentation, labels=self.labelnames)

    def rows(self, value: float | None = None) -> Rows:
        """A scrape's series of the family, none yet (the one unlabelled series if ``value`` is given)."""
        rows = Rows(self)
        if value is not None:
            rows.add_metric((), value)
        return rows


class Rows:
    """One scrape's series of a ``Scraped`` family, in the order the page
    lists them: (label values, value) pairs, cheaper to read on the event
    loop than prometheus_client's samples; ``metric()`` makes them those."""

    __slots__ = ("family", "rows")

    def __init__(self, family: Scraped) -> None:
        self.family = family
        self.rows: list[tuple[tuple[str, ...], float]] = []

    def add_metric(self, labels: Sequence[str], value: float) -> None:
        """Add the series of ``labels`` (values in the family's label order)."""
        self.rows.append((tuple(labels), value))

    def metric(self) -> Metric:
        """The family with these samples, as a prometheus_client metric."""
        metric = self.family.empty()
        for values, value in self.rows:
            metric.add_metric(values, value)
        return metric

    def expose(self, out: list[str]) -> None:
        """Append the family's text (what ``generate_latest`` writes of ``metric()``) to ``out``."""
        text = self.family.text
        if not text.plain:
            out.append(generate_latest(_Metrics([self.metric()])).decode())
            return
        out.append(text.header)
        heads, numbers = text.heads, _NUMBERS
        for values, value in self.rows:
            number = numbers.get(value)
            if number is None or number is _ZERO:
                number = _number(value)
            out.append(f"{heads.get(values) or text.head(values)}{number}\n")


class RuntimeCollector(Collector):
    """Gauges read from the live runtime at scrape time: open and at-risk
    clocks, policy metadata, per-partition watermark and lag, windows."""

    OPEN = Scraped("leadsla_sla_open_clocks", "Clocks running now (started, not decided), by policy and team.", ("policy", "team"))
    AT_RISK = Scraped("leadsla_sla_at_risk_clocks", "Running clocks past their at-risk threshold.", ("policy", "team"))
    PAUSED = Scraped("leadsla_sla_paused_clocks", "Open clocks that are paused now, by policy and team.", ("policy", "team"))
    GOAL = Scraped("leadsla_sla_goal_seconds", "Each policy's goal (business seconds).", ("policy",))
    OBJECTIVE = Scraped("leadsla_sla_objective_ratio", "Each policy's objective: the target share of met clocks.", ("policy",))
    THRESHOLD = Scraped("leadsla_sla_at_risk_threshold_ratio", "Each policy's at-risk threshold as a fraction of the goal.", ("policy",))
    MIN_ATTEMPTS = Scraped("leadsla_followup_min_attempts", "Each depth policy's min_attempts: attempts due on a lead not reached.", ("policy",))
    CALENDAR = Scraped("leadsla_calendar_open", "1 while a calendar of the policies file is open (business hours).", ("calendar",))
    LAG = Scraped("leadsla_consumer_lag", "Records of lead-events not yet processed, per owned partition.", ("partition",))
    WATERMARK = Scraped("leadsla_watermark_timestamp_seconds", "Event-time watermark per owned partition.", ("partition",))
    CAUGHT_UP = Scraped("leadsla_partition_caught_up", "1 once a partition's backlog is consumed (watermark follows the wall clock).", ("partition",))
    INDEXED = Scraped("leadsla_deadline_index_leads", "Leads waiting in the deadline index, per owned partition.", ("partition",))
    OWNED = Scraped("leadsla_owned_partitions", "Partitions of lead-events this worker owns.")
    READY = Scraped("leadsla_worker_ready", "1 once this worker has recovered its state and is processing.")
    LAST_EVENT = Scraped("leadsla_last_event_timestamp_seconds", "Wall-clock time this worker last received a record (0: never).")
    SINCE_LAST_EVENT = Scraped("leadsla_seconds_since_last_event", "Seconds since this worker last received a record (since start when none).")
    WINDOWS = {
        "handoffs": Scraped("leadsla_window_handoffs", "Handoffs in the current event-time window, by team.", ("team", "window")),
        "attempts": Scraped("leadsla_window_followup_attempts", "Follow-up attempts in the current event-time window, by team.", ("team", "window")),
        "first": Scraped("leadsla_window_first_followups", "First follow-ups after a handoff in the current window, by team.", ("team", "window")),
        "latency": Scraped("leadsla_window_first_followup_seconds_sum", "Sum of handoff-to-first-follow-up seconds in the current window, by team.", ("team", "window")),
    }

    def __init__(self, snapshot: Callable[[], dict[str, Any]], policies: PolicySet) -> None:
        self._snapshot = snapshot
        self._policies = policies

    def describe(self) -> Iterable[Any]:
        return []  # unchecked collector: its families depend on the runtime

    def collect(self) -> Iterator[Metric]:
        for rows in self.read():
            yield rows.metric()

    def read(self) -> list[Rows]:
        """The families as of now, in page order (``collect`` makes them metrics)."""
        s = self._snapshot()
        now = time.time()
        out: list[Rows] = []

        for family, key in ((self.OPEN, "open"), (self.AT_RISK, "at_risk"), (self.PAUSED, "paused")):
            rows = family.rows()
            for p in self._policies.policies:  # every policy has a series, zero included
                teams = s[key].get(p.name, {})
                if not teams:
                    rows.add_metric((p.name, NONE), 0)
                for team, n in sorted(teams.items()):
                    rows.add_metric((p.name, team), n)
            out.append(rows)

        goal, obj, thr, attempts = self.GOAL.rows(), self.OBJECTIVE.rows(), self.THRESHOLD.rows(), self.MIN_ATTEMPTS.rows()
        for p in self._policies.policies:
            goal.add_metric((p.name,), p.goal_seconds)
            obj.add_metric((p.name,), p.objective)
            thr.add_metric((p.name,), p.at_risk)
            if p.min_attempts is not None:
                attempts.add_metric((p.name,), p.min_attempts)
        out += (goal, obj, thr, attempts)

        # Business hours as Prometheus sees them: alerts such as "no events
        # during business hours" need the calendars' time zones and holidays.
        cal = self.CALENDAR.rows()
        now_us = int(now * 1_000_000)
        for name, c in sorted(self._policies.calendars.items()):
            cal.add_metric((name,), 1 if c.is_open(now_us) else 0)
        out.append(cal)

        lag, wm, caught, idx = self.LAG.rows(), self.WATERMARK.rows(), self.CAUGHT_UP.rows(), self.INDEXED.rows()
        for part, info in sorted(s["partitions"].items()):
            label = (str(part),)
            if info["lag"] is not None:
                lag.add_metric(label, info["lag"])
            if info["watermark"] is not None:
                wm.add_metric(label, info["watermark"])
            caught.add_metric(label, 1 if info["caught_up"] else 0)
            idx.add_metric(label, info["indexed"])
        out += (lag, wm, caught, idx)

        out.append(self.OWNED.rows(len(s["partitions"])))
        out.append(self.READY.rows(1 if s["ready"] else 0))
        last = s["last_event_wall"]
        out.append(self.LAST_EVENT.rows(last or 0))
        out.append(self.SINCE_LAST_EVENT.rows(now - (last or s["started_wall"])))

        windows = {metric: family.rows() for metric, family in self.WINDOWS.items()}
        for (metric, team, window), value in sorted(s["windows"].items()):
            windows[metric].add_metric((team, window), value)
        out += windows.values()
        out += _target_families(s.get("targets", []))
        return out


# Contract §7's gauges, in page order.
_TARGET = {
    "delivered": Scraped("leadsla_target_delivered", "Leads delivered so far in the current period.", ("target",)),
    "value": Scraped("leadsla_target_value_delivered", "Their weighted value (targets with value).", ("target",)),
    "goal": Scraped("leadsla_target_goal", "The period's goal in leads.", ("target",)),
    "value_goal": Scraped("leadsla_target_value_goal", "The period's value goal (targets with value_goal).", ("target",)),
    "goal_line": Scraped("leadsla_target_goal_line", "The cumulative goal line for today: goal x d / n.", ("target",)),
    "forecast": Scraped("leadsla_target_forecast", "Leads delivered by the period's end at the current pace (at least one day elapsed).", ("target",)),
    "margin": Scraped("leadsla_target_pace_margin_ratio", "Each target's pace_margin: how far below the goal line pacing alerts.", ("target",)),
    "day": Scraped("leadsla_target_period_day", "Today's day of the current period (1 on its first day).", ("target",)),
    "days": Scraped("leadsla_target_period_days", "Days in the current period.", ("target",)),
    "cumulative": Scraped("leadsla_target_delivered_cumulative", "Leads delivered by the end of each day of the current period (the waterfall).", ("target", "day")),
    "line": Scraped("leadsla_target_goal_line_cumulative", "The goal line on each day of the current period.", ("target", "day")),
}


def _target_families(statuses: list[Any]) -> list[Rows]:
    """Contract §7's gauges, for the period that holds the wall clock, plus
    the forecast and the day-by-day waterfall (this worker's partitions: sum()
    the delivered figures across workers, max() the goals)."""
    fam = {key: family.rows() for key, family in _TARGET.items()}
    for st in statuses:
        t = st.target
        name = (t.name,)
        fam["delivered"].add_metric(name, st.delivered)
        fam["goal"].add_metric(name, t.goal)
        fam["goal_line"].add_metric(name, st.goal_line)
        fam["forecast"].add_metric(name, st.forecast)
        fam["margin"].add_metric(name, t.pace_margin)
        fam["day"].add_metric(name, st.day)
        fam["days"].add_metric(name, st.days)
        if t.value_by is not None:
            fam["value"].add_metric(name, st.value)
        if t.value_goal is not None:
            fam["value_goal"].add_metric(name, t.value_goal)
        total = 0.0
        for d in range(1, st.days + 1):
            total += st.by_day[d - 1]
            if d <= st.day:  # the days so far: a future day has no delivery yet
                fam["cumulative"].add_metric((t.name, str(d)), total)
            fam["line"].add_metric((t.name, str(d)), t.goal * d / st.days)
    return list(fam.values())


class LedgerCollector:
    """The period ledger at scrape time (contract §9): strikes and review per
    judged level, the last judged period's verdict, and the points
    leaderboard. ``levels()`` yields (kind, name, team, ledger entry) for the
    levels this worker keeps; with several workers each keeps a share of the
    levels, so ``max()`` the per-level gauges and ``sum()`` the points."""

    LEVEL = ("kind", "name", "team")
    STRIKES = Scraped("leadsla_period_strikes", "Consecutive missed periods of each judged level (0 once met).", LEVEL)
    REVIEW = Scraped("leadsla_period_under_review", "1 once a level's strikes reach its review_after: the agreement is due for review.", LEVEL)
    MET = Scraped("leadsla_period_met", "1 if the last judged period of a level was met, 0 if missed.", LEVEL)
    ACHIEVED = Scraped("leadsla_period_achieved", "The last judged period's achievement: share of met clocks (policies) or leads delivered (targets).", LEVEL)
    POINTS = Scraped("leadsla_team_points", "Points earned for met periods, by team (the leaderboard; targets' go to team marketing).", ("team",))
    LATE = Scraped("leadsla_period_late_reports", "Period shares that arrived after their period was judged (not counted in it).", type="counter")

    def __init__(self, levels: Callable[[], Iterable[tuple[str, str, str, dict[str, Any]]]],
                 late: Callable[[], int], points_team: Callable[[str, str], str]) -> None:
        self._levels = levels
        self._late = late
        self._points_team = points_team

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Metric]:
        for rows in self.read():
            yield rows.metric()

    def read(self) -> list[Rows]:
        """The families as of now, in page order (``collect`` makes them metrics)."""
        strikes, review, met, achieved = self.STRIKES.rows(), self.REVIEW.rows(), self.MET.rows(), self.ACHIEVED.rows()
        points = self.POINTS.rows()
        board: dict[str, float] = {}
        for kind, name, team, entry in self._levels():
            key = (kind, name, team)
            strikes.add_metric(key, entry["strikes"])
            last = entry.get("last")
            if last is not None:
                review.add_metric(key, 1 if last["under_review"] else 0)
                met.add_metric(key, 1 if last["met"] else 0)
                if last["achieved"] is not None:
                    achieved.add_metric(key, last["achieved"])
            team_label = self._points_team(kind, team)
            board[team_label] = board.get(team_label, 0.0) + entry["points"]
        for team, n in sorted(board.items()):
            points.add_metric((team,), n)
        return [strikes, review, met, achieved, points, self.LATE.rows(self._late())]


class _Snapshot(Collector):
    """A registry's families in registry order: ``Rows`` of leadsla's
    collectors that read the runtime and the metrics of any other such
    collector, already read (lists); the rest (``CountersCollector``,
    prometheus_client's own metrics) read when rendered."""

    def __init__(self, parts: list[Any]) -> None:
        self._parts = parts

    def collect(self) -> Iterator[Metric]:
        for part in self._parts:
            if isinstance(part, list):
                for item in part:
                    yield item.metric() if isinstance(item, Rows) else item
            else:
                yield from part.collect()

    def render(self) -> bytes:
        """The page (Prometheus text format 0.0.4): the bytes ``generate_latest``
        makes of ``collect()``. leadsla's families write their own lines
        (``expose``); consecutive others go to ``generate_latest``, in one call."""
        out: list[str] = []
        others: list[Any] = []  # parts for generate_latest: collectors, lists of metrics

        def write(family: Rows | CountersCollector) -> None:
            nonlocal others
            if others:
                out.append(generate_latest(_Snapshot(others)).decode())
                others = []
            family.expose(out)

        for part in self._parts:
            if isinstance(part, CountersCollector):
                write(part)
            elif not isinstance(part, list):
                others.append(part)  # a prometheus_client metric, collected now
            else:
                for item in part:
                    if isinstance(item, Rows):
                        write(item)
                    else:
                        others.append([item])
        if others:
            out.append(generate_latest(_Snapshot(others)).decode())
        return "".join(out).encode()


def snapshot(registry: CollectorRegistry) -> _Snapshot:
    """What must be read on the event loop, read now: every collector that is
    not a prometheus_client metric (``RuntimeCollector``, ``LedgerCollector``:
    they read engine and ledger state, which only the loop may touch) is
    read here, in registry order (leadsla's as ``Rows``, others collected).
    Counters, gauges and histograms stay live: prometheus_client's lock their
    own children and values, and ``Metrics``' plain-number families
    (``CountersCollector``) copy their series dicts whole, so a thread may
    collect them while the loop counts (each value is read whole; two series
    may be one increment apart, as with any threaded exposition).

    Reads the registry's collector list under its lock (prometheus_client
    internals); a registry without that list, or with target info, is
    collected whole here instead, which is right but not cheaper.
    """
    names = getattr(registry, "_collector_to_names", None)
    lock = getattr(registry, "_lock", None)
    if names is None or lock is None or registry.get_target_info():
        return _Snapshot([list(registry.collect())])
    with lock:
        collectors = list(names)
    parts: list[Any] = []
    for c in collectors:
        if isinstance(c, (MetricWrapperBase, CountersCollector)):
            parts.append(c)
        elif isinstance(c, (RuntimeCollector, LedgerCollector)):
            parts.append(c.read())
        else:
            parts.append(list(c.collect()))
    return _Snapshot(parts)


async def render_metrics(registry: CollectorRegistry) -> bytes:
    """The /metrics page of ``registry`` (Prometheus text format 0.0.4, the
    bytes ``generate_latest`` gives): the runtime's gauges read on the loop
    (``snapshot``), the text written in a worker thread (``_Snapshot.render``),
    so /ready and the API keep answering while a large registry renders. The
    thread holds the GIL in slices: the loop waits a switch interval (5 ms),
    not the render."""
    return await asyncio.to_thread(snapshot(registry).render)
