"""Periods and accountability at run time (contract §9): every policy (per
team) and every target is judged once per period, after the period has ended
in event time on every partition of ``lead-events``.

No partition sees the whole of a period, and no worker owns every partition,
so judging takes two steps over one internal topic, ``<app id>-period-reports``
(as many partitions as ``lead-events``):

1. **Each input partition reports** (``PeriodReporter``, on the timer, in the
   worker that owns it). When its closed time — the watermark, held back
   before any clock still due — passes a period's end, it sends its share of
   the period (a *partial*: met and breached clocks per policy and team, leads
   and value per target) keyed ``kind|name|team``, then a *closed-through*
   report to every partition of the topic. One producer writes both, in that
   order, so on every partition a partition's partials come before its report.
2. **The ledger judges** (``Ledger``, an agent on that topic, in the worker
   that owns the topic partition a key lands on). It keeps each key's partials
   per period and input partition (a re-send replaces, never adds) and each
   input partition's closed-through time. Once every input partition is closed
   through a period's end, the period is judged, in period order: one record
   on ``sla-periods``, strikes and points carried in a changelog-backed table.

A partial that arrives for a period already judged changes nothing (a
period is judged once); a partition taken over by another worker reports
again from its changelogs, which only re-sends what was sent. Instants are
epoch µs (UTC).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any

import orjson

from leadsla.models.clock import NEVER
from leadsla.models.events import format_timestamp_us
from leadsla.models.periods import (
    MARKETING_TEAM,
    POLICY,
    TARGET,
    judge_policy,
    judge_target,
    next_period,
    period_decision_id,
    period_of,
)
from leadsla.models.policy import PolicySet
from leadsla.streams.codec import ledger_key, parse_ledger_key
from leadsla.streams.partition import PartitionRuntime
from leadsla.streams.sink import Sink

log = logging.getLogger("leadsla")

CLOSED = "~closed"  # key prefix of closed-through reports: ~closed|<topic partition>
_FAR = 1 << 62


class PeriodReporter:
    """The input-partition side: sends a partition's partials and its
    closed-through report when its closed time passes a period end, and again
    whenever a cell of a period already reported changes (a late decision).
    ``partitions`` is the number of partitions of the reports topic."""

    def __init__(self, policies: PolicySet, sink: Sink, partitions: int) -> None:
        self._sink = sink
        self._partitions = partitions
        self._policy_periods = {p.name: (p.period, p.period_timezone) for p in policies.policies}
        self._target_periods = {t.name: (t.period, t.timezone) for t in policies.targets}
        self._kinds = sorted(set(self._policy_periods.values()) | set(self._target_periods.values()))

    def next_boundary(self, closed: int) -> int:
        """The first period end after ``closed`` of any policy or target."""
        return min((period_of(closed, kind, zone).end_us for kind, zone in self._kinds), default=_FAR)

    def expired(self, policy: str, end_us: int, reported: int) -> bool:
        """A policy's period cell may go: the period after it has been reported
        closed too, or the policy is gone."""
        spec = self._policy_periods.get(policy)
        if spec is None:
            return True
        p = period_of(end_us - 1, *spec)
        return next_period(p, spec[1]).end_us <= reported

    def closed_time(self, rt: PartitionRuntime) -> int:
        """How far ``rt`` has decided everything: its watermark, held back
        before the first clock still due in its index (a timer pass that hit
        its batch limit has not decided those yet)."""
        due = rt.index.next_due_us()
        return rt.watermark if due is None else min(rt.watermark, due - 1)

    def report(self, rt: PartitionRuntime) -> bool:
        """Send what is due for ``rt``; True when a report went out."""
        closed = self.closed_time(rt)
        if closed == NEVER or closed < rt.report_at:
            return False
        for key in [k for k in rt.period_unsent if k[3] <= closed]:
            policy, team, label, end = key
            spec = self._policy_periods.get(policy)
            rt.period_unsent.discard(key)
            if spec is None:
                continue
            met, breached = rt.period_cells[key]
            p = period_of(end - 1, *spec)
            self._sink.period_report(ledger_key(POLICY, policy, team), orjson.dumps({
                "period": label, "start": p.start_us, "end": end, "partition": rt.partition,
                "met": int(met), "breached": int(breached),
            }))
        for tkey in [k for k in rt.targets_unsent if self._target_end(k) <= closed]:
            rt.targets_unsent.discard(tkey)
            name, label, start = tkey
            spec = self._target_periods.get(name)
            if spec is None:
                continue
            delivered = value = 0.0
            for (t, lab, _, _), (count, worth) in rt.deliveries.items():
                if t == name and lab == label:
                    delivered += count
                    value += worth
            self._sink.period_report(ledger_key(TARGET, name, ""), orjson.dumps({
                "period": label, "start": start, "end": self._target_end(tkey), "partition": rt.partition,
                "delivered": delivered, "value": value,
            }))
        report = orjson.dumps({"partition": rt.partition, "closed": closed})
        for k in range(self._partitions):
            self._sink.period_report(f"{CLOSED}|{k}", report, k)
        rt.reported = max(rt.reported, closed)
        rt.report_at = self.next_boundary(closed)
        return True

    def _target_end(self, tkey: tuple[str, str, int]) -> int:
        spec = self._target_periods.get(tkey[0])
        return NEVER if spec is None else period_of(tkey[2], *spec).end_us


class Ledger:
    """The judging side, for the reports-topic partitions this worker owns.

    ``store`` is the ledger table (key → JSON-able dict; Faust's table in the
    worker, whose writes during a record go to that record's partition of
    the changelog). Keys: ``kind|name|team`` (one judged level) and
    ``~closed|<topic partition>`` (every input partition's closed-through
    time as seen on that topic partition). ``inputs`` is the number of
    partitions of ``lead-events``; ``wall_us`` the wall clock (epoch µs),
    only for the records' ``judged_at``."""

    def __init__(self, policies: PolicySet, store: MutableMapping[str, Any], sink: Sink, inputs: int,
                 wall_us: Callable[[], int]) -> None:
        self._store = store
        self._sink = sink
        self._inputs = inputs
        self._wall_us = wall_us
        self._policies = {p.name: p for p in policies.policies}
        self._targets = {t.name: t for t in policies.targets}
        self.late_partials = 0  # partials for a period already judged (dropped)

    def handle(self, topic_partition: int, key: bytes | None, value: bytes | None) -> int:
        """One record of the reports topic, read from ``topic_partition``.
        Returns the number of periods judged. A malformed record is logged
        (never its content) and skipped."""
        try:
            k = (key or b"").decode()
            msg = orjson.loads(value or b"")
            if k.startswith(CLOSED):
                before = self.low_watermark(topic_partition)
                self._closed(topic_partition, int(msg["partition"]), int(msg["closed"]))
                low = self.low_watermark(topic_partition)
                if low is None or low == before:
                    return 0
                return self._judge(topic_partition, low, list(self._store.items()))
            parse_ledger_key(k)
            if not self._partial(topic_partition, k, msg):
                return 0
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
            log.warning("skipped a malformed period report on partition %d (%s)", topic_partition,
                        exc.__class__.__name__)
            return 0
        # A share usually comes before its partition's closed-through report,
        # which judges; one for a period every partition has already closed
        # (a first share that came late) is judged now, with what there is.
        low = self.low_watermark(topic_partition)
        if low is None or int(msg["end"]) > low:
            return 0
        return self._judge(topic_partition, low, [(k, self._store[k])])

    def _closed(self, tp: int, partition: int, closed: int) -> None:
        key = f"{CLOSED}|{tp}"
        entry = self._store.get(key) or {"k": tp, "closed": {}}
        if closed > entry["closed"].get(str(partition), NEVER):
            entry["closed"][str(partition)] = closed
            self._store[key] = entry  # assigned again: Faust writes the changelog on set

    def _partial(self, tp: int, key: str, msg: dict[str, Any]) -> bool:
        """Keep a share; False when its period was judged already (dropped)."""
        entry = self._store.get(key) or {"k": tp, "strikes": 0, "points": 0, "judged_end": NEVER, "open": {},
                                         "last": None}
        end = int(msg["end"])
        if end <= entry["judged_end"]:
            self.late_partials += 1
            return False
        per = entry["open"].setdefault(msg["period"], {"start": int(msg["start"]), "end": end, "parts": {}})
        if "met" in msg:
            per["parts"][str(int(msg["partition"]))] = [int(msg["met"]), int(msg["breached"])]
        else:
            per["parts"][str(int(msg["partition"]))] = [float(msg["delivered"]), float(msg["value"])]
        entry["k"] = tp
        self._store[key] = entry
        return True

    def low_watermark(self, tp: int) -> int | None:
        """The time every input partition is closed through, as reported on
        topic partition ``tp`` (None: some partition has not reported)."""
        entry = self._store.get(f"{CLOSED}|{tp}")
        if entry is None:
            return None
        try:
            return min(int(entry["closed"][str(p)]) for p in range(self._inputs))
        except KeyError:
            return None

    def _judge(self, tp: int, low: int, entries: list[tuple[str, Any]]) -> int:
        """Judge every period of ``entries`` (on topic partition ``tp``) that
        ended by ``low``, oldest first."""
        judged = 0
        for key, entry in entries:
            if key.startswith(CLOSED) or entry.get("k") != tp:
                continue
            due = sorted((per["end"], label) for label, per in entry["open"].items() if per["end"] <= low)
            if not due:
                continue
            for _, label in due:
                per = entry["open"].pop(label)
                record = self._verdict(key, entry, label, per)
                if record is not None:
                    self._sink.period_record(record["name"], orjson.dumps(record))
                    judged += 1
            self._store[key] = entry
        return judged

    def _verdict(self, key: str, entry: dict[str, Any], label: str, per: dict[str, Any]) -> dict[str, Any] | None:
        """Judge one period of one level; update ``entry``; the record (None
        for a policy or target no longer in the file)."""
        kind, name, team = parse_ledger_key(key)
        parts = per["parts"].values()
        common = {
            "kind": kind, "name": name, "period": label,
            "period_start": format_timestamp_us(per["start"]), "period_end": format_timestamp_us(per["end"]),
        }
        if kind == POLICY:
            policy = self._policies.get(name)
            if policy is None:
                return None
            met = sum(int(a) for a, _ in parts)
            breached = sum(int(b) for _, b in parts)
            v = judge_policy(met, breached, policy.objective, policy.min_decisions, entry["strikes"],
                             policy.review_after, policy.points)
            record = {**common, "team": team, "achieved": v.achieved, "objective": policy.objective,
                      "decided": met + breached, "met_clocks": met, "breached_clocks": breached,
                      "min_decisions": policy.min_decisions}
            review_after = policy.review_after
        else:
            target = self._targets.get(name)
            if target is None:
                return None
            delivered = sum(float(a) for a, _ in parts)
            value = sum(float(b) for _, b in parts)
            v = judge_target(delivered, value, target.goal, target.value_goal, entry["strikes"],
                             target.review_after, target.points)
            record = {**common, "team": None, "achieved": delivered, "goal": target.goal,
                      "value_delivered": value if target.value_by is not None else None,
                      "value_goal": target.value_goal}
            review_after = target.review_after
        entry["strikes"] = v.strikes
        entry["points"] = entry["points"] + v.points
        entry["judged_end"] = max(entry["judged_end"], per["end"])
        record.update({
            "met": v.met, "judged": v.judged, "strikes": v.strikes, "review_after": review_after,
            "under_review": v.under_review, "points": v.points, "points_total": entry["points"],
            "decision_id": period_decision_id(kind, name, team, label),
            "judged_at": format_timestamp_us(self._wall_us()),
        })
        entry["last"] = {"period": label, "met": v.met, "judged": v.judged, "achieved": v.achieved,
                         "under_review": v.under_review}
        return record

    def levels(self, owned: Iterable[int]) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
        """(kind, name, team, entry) of every level kept on the topic
        partitions in ``owned`` — what the period metrics show."""
        mine = set(owned)
        for key, entry in list(self._store.items()):
            if key.startswith(CLOSED) or entry.get("k") not in mine:
                continue
            kind, name, team = parse_ledger_key(key)
            if (kind == POLICY and name in self._policies) or (kind == TARGET and name in self._targets):
                yield kind, name, team, entry

    def points_team(self, kind: str, team: str) -> str:
        """The leaderboard team a level's points go to."""
        return MARKETING_TEAM if kind == TARGET else team
