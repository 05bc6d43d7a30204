"""Read-only views of a worker's runtime: what the scrape-time collector
shows, the query API's answers and the progress lines of a backlog. Nothing
here changes state, and nothing runs per event."""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from leadsla.models import clock
from leadsla.models.clock import NEVER, LeadState
from leadsla.models.events import format_timestamp_us, parse_timestamp_us
from leadsla.models.periods import period_of
from leadsla.models.policy import PAUSE, RESUME, START, Policy, PolicySet
from leadsla.streams import windows

if TYPE_CHECKING:
    from leadsla.streams.engine import Engine


class Views:
    """Views of one ``Engine``. Instants in answers are RFC 3339 text (UTC)."""

    def __init__(self, engine: Engine) -> None:
        self._e = engine
        self._progress_at = 0  # wall time (µs) of the last progress line
        self._was_caught_up: dict[int, bool] = {}

    def snapshot(self) -> dict[str, Any]:
        """What the scrape-time collector shows: gauges by (policy, team) and
        per partition, the current windows, readiness and activity times."""
        e = self._e
        gauges: dict[str, dict[str, dict[str, int]]] = {"open": {}, "at_risk": {}, "paused": {}}
        partitions = {}
        for rt in e.runtimes.values():
            for name, counter in (("open", rt.open), ("at_risk", rt.at_risk), ("paused", rt.paused)):
                for (policy, team), n in counter.items():
                    by_team = gauges[name].setdefault(policy, {})
                    by_team[team] = by_team.get(team, 0) + n
            hw = e.highwater(rt.partition)
            partitions[rt.partition] = {
                "lag": None if hw is None else max(0, hw - rt.last_offset - 1),
                "watermark": None if rt.watermark == NEVER else rt.watermark / 1_000_000,
                "caught_up": rt.caught_up,
                "indexed": len(rt.index),
            }
        return {
            **gauges,
            "partitions": partitions,
            "windows": windows.current(list(e.runtimes.values()), e.wall_us() // 1_000_000),
            "targets": e.targets.status(e.runtimes.values(), e.wall_us()),
            "ready": e.ready,
            "last_event_wall": e.last_event_wall,
            "started_wall": e.started_wall,
        }

    def progress(self, every_s: float = 10.0) -> list[str]:
        """Lines for the log while a backlog is read: how much is left and how
        far event time has come (every ``every_s`` seconds), and each
        partition that catches up. Counts and times only: never a lead id."""
        e = self._e
        lines = []
        for p, rt in sorted(e.runtimes.items()):
            if rt.caught_up and not self._was_caught_up.get(p, False) and rt.last_offset >= 0:
                lines.append(f"partition {p} caught up at offset {rt.last_offset + 1}: judging by the wall clock now")
            self._was_caught_up[p] = rt.caught_up
        behind = [rt for rt in e.runtimes.values() if not rt.caught_up]
        now = e.wall_us()
        lag = sum(max(0, (e.highwater(rt.partition) or 0) - rt.last_offset - 1) for rt in behind)
        if lag and now - self._progress_at >= every_s * 1_000_000:  # 0: nothing fetched yet
            self._progress_at = now
            newest = max(rt.max_event_time for rt in behind)
            seen = format_timestamp_us(newest) if newest != NEVER else "nothing yet"
            lines.append(f"catching up: {lag} records left in {len(behind)} partition(s); newest event time {seen}")
        return lines

    def rep_queue(self, rep: str, limit: int = 500) -> list[dict[str, Any]]:
        """A rep's open clocks on this worker, the most urgent first.

        An operator's query: it reads every lead this worker holds, which is
        fine once in a while and never happens per event."""
        e = self._e
        rows = []
        for lead_id, entry in e.store.items():
            if entry.partition not in e.runtimes:
                continue
            for name, c in entry.state.clocks.items():
                if c.status != clock.IDLE and c.rep == rep and name in e.effects.goals:
                    rows.append((c.deadline if c.status == clock.RUNNING else None, lead_id, name, c))
        rows.sort(key=lambda r: (r[0] is None, r[0] or 0, r[1], r[2]))
        return [
            {
                "lead_id": lead_id,
                "policy": name,
                "status": clock.STATUS_NAMES[c.status],
                "started_at": format_timestamp_us(c.started_at),
                "deadline": None if deadline is None else format_timestamp_us(deadline),
                "at_risk": c.at_risk,
                "team": c.team,
            }
            for deadline, lead_id, name, c in rows[:limit]
        ]

    def lead(self, lead_id: str) -> dict[str, Any] | None:
        """A lead's SLA timeline for the query API (None: not on this worker)."""
        entry = self._e.store.get(lead_id)
        if entry is None:
            return None
        ts = format_timestamp_us
        st = entry.state
        clocks = {}
        for name, c in st.clocks.items():
            clocks[name] = {
                "status": clock.STATUS_NAMES[c.status],
                "cycle": c.cycle,
                "started_at": ts(c.started_at) if c.cycle else None,
                "deadline": ts(c.deadline) if c.status == clock.RUNNING else None,
                "judged_not_before": ts(c.hold) if c.status == clock.RUNNING and c.hold > c.deadline else None,
                "at_risk": c.at_risk,
                "team": c.team,
                "rep": c.rep,
                "last_outcome": c.last_outcome,
                "last_deadline": ts(c.last_deadline) if c.last_outcome else None,
                "corrected_at": ts(c.corrected_at) if c.corrected_at else None,
            }
        return {
            "lead_id": lead_id,
            "partition": entry.partition,
            "owner": {"team": st.owner_team, "rep": st.owner_rep},
            "last_event_at": ts(st.last_event_at) if st.last_event_at else None,
            "waiting_events": len(st.buffer),
            "clocks": clocks,
            "too_late": [{"occurred_at": ts(t), "policy": p, "role": r} for t, p, r in st.too_late],
        }

    # -- the query API (streams.api) --------------------------------------------
    # Each answers for the partitions this worker owns; streams.api routes a
    # lead to its owner and merges the queue and compliance of every worker.

    def owned(self) -> list[int]:
        """The partitions this worker runs now, ascending."""
        return sorted(self._e.runtimes)

    def lead_clocks(self, lead_id: str) -> dict[str, Any] | None:
        """Every policy's clock for one lead, as of the wall clock, for
        ``GET /api/leads/{lead_id}`` (None: the lead is not on this worker).

        Shape: ``{lead_id, partition, as_of, watermark, owner: {team, rep},
        last_event_at, clocks: [...], pending_events: [...], too_late: [...]}``;
        each clock is ``clock_view``'s. Instants are RFC 3339 text (UTC),
        durations seconds of business time. A start still waiting for the
        watermark shows as a ``pending`` clock at once."""
        e = self._e
        entry = e.store.get(lead_id)
        if entry is None or entry.partition not in e.runtimes:
            return None
        st = entry.state
        now = e.wall_us()
        rt = e.runtimes[entry.partition]
        ts = format_timestamp_us
        return {
            "lead_id": lead_id,
            "partition": entry.partition,
            "as_of": ts(now),
            "watermark": None if rt.watermark == NEVER else ts(rt.watermark),
            "owner": _owner(st),
            "last_event_at": ts(st.last_event_at) if st.last_event_at else None,
            "clocks": [clock_view(st, p, now) for p in e.policies.policies],
            "pending_events": [
                {"occurred_at": ts(t), "type": etype,
                 "roles": [{"policy": name, "role": role} for name, role in roles]}
                for t, _, etype, roles, _, _ in st.buffer
            ],
            "too_late": [{"occurred_at": ts(t), "policy": p, "role": r} for t, p, r in st.too_late],
        }

    def queue(self, team: str | None = None, rep: str | None = None, policy: str | None = None,
              limit: int = 100) -> dict[str, Any]:
        """Open and pending clocks of this worker's partitions, at-risk or
        overdue first, then by deadline (paused clocks, whose deadline is frozen, last), at
        most ``limit`` rows; ``total`` counts every match. Filters compare
        with the raw ``team``/``rep`` of the clock and the policy name.

        Cost: one pass over every lead this worker holds (see ``QueueScan``);
        ``queue_async`` is the same in slices for a running worker."""
        scan = QueueScan(self._e, team, rep, policy, limit)
        scan.feed(list(self._e.store))
        return scan.answer()

    async def queue_async(self, team: str | None = None, rep: str | None = None, policy: str | None = None,
                          limit: int = 100, slice_size: int = 20_000) -> dict[str, Any]:
        """``queue``, reading ``slice_size`` leads at a time and yielding to
        the event loop in between, so that a worker holding a million clocks
        keeps processing events while it answers."""
        import asyncio

        scan = QueueScan(self._e, team, rep, policy, limit)
        keys = list(self._e.store)  # a snapshot of the ids: the table changes while we yield
        for i in range(0, len(keys), slice_size):
            scan.feed(keys[i:i + slice_size])
            await asyncio.sleep(0)
        return scan.answer()

    def compliance(self, period: str | None = None, policy: str | None = None,
                   team: str | None = None) -> dict[str, Any]:
        """Met, breached and open clocks per policy and team for one period,
        and each target's delivery in it, summed over this worker's
        partitions. ``period`` is a label (``2026-11``, ``2026-W48``,
        ``2026-Q4``); None: each policy's and target's current period. A
        policy or target whose period kind differs from the label's is left
        out. ``team`` filters on the team label (as on /metrics). ``open``
        counts the clocks open now, so only in the current period.

        Shape: ``{period, policies: [{policy, team, period, met, breached,
        open, decided, ratio, objective, objective_met}], targets: [{target,
        period, delivered, value_delivered, goal, value_goal, ratio, met}]}``
        (``finish_compliance`` computes the ratios)."""
        e = self._e
        now = e.wall_us()
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for p in e.policies.policies:
            if policy is not None and p.name != policy:
                continue
            current = period_of(now, p.period, p.period_timezone).label
            label = current if period is None else period
            if period is not None and period_kind(period) != p.period:
                continue
            for rt in e.runtimes.values():
                # period_cells: (policy, team label, period label, end µs) -> [met, breached]
                cells: dict[tuple[str, str, str, int], list[float]] = getattr(rt, "period_cells", {})
                for (name, t, lab, _), (met, breached) in cells.items():
                    if name == p.name and lab == label and (team is None or t == team):
                        row = _row(rows, p.name, t, label)
                        row["met"] += int(met)
                        row["breached"] += int(breached)
                if label == current:
                    for (name, t), n in rt.open.items():
                        if name == p.name and (team is None or t == team):
                            _row(rows, p.name, t, label)["open"] += n
        targets = []
        for tg in e.policies.targets:
            current = period_of(now, tg.period, tg.timezone).label
            if period is not None and period_kind(period) != tg.period:
                continue
            label = current if period is None else period
            delivered = value = 0.0
            for rt in e.runtimes.values():
                for (name, lab, _, _), (count, v) in rt.deliveries.items():
                    if name == tg.name and lab == label:
                        delivered += count
                        value += v
            targets.append({"target": tg.name, "period": label, "delivered": delivered,
                            "value_delivered": value if tg.value_by is not None else None,
                            "goal": tg.goal, "value_goal": tg.value_goal})
        return finish_compliance({"period": period, "policies": list(rows.values()), "targets": targets},
                                 e.policies)


def period_kind(label: str) -> str | None:
    """The period kind of a label: ``2026-11`` month, ``2026-W48`` week,
    ``2026-Q4`` quarter; None for anything else."""
    if re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", label):
        return "month"
    if re.fullmatch(r"\d{4}-W(0[1-9]|[1-4]\d|5[0-3])", label):
        return "week"
    if re.fullmatch(r"\d{4}-Q[1-4]", label):
        return "quarter"
    return None


def _row(rows: dict[tuple[str, str], dict[str, Any]], policy: str, team: str, label: str) -> dict[str, Any]:
    row = rows.get((policy, team))
    if row is None:
        row = rows[(policy, team)] = {"policy": policy, "team": team, "period": label, "met": 0, "breached": 0,
                                      "open": 0}
    return row


def finish_compliance(answer: dict[str, Any], policies: PolicySet) -> dict[str, Any]:
    """Compute each row's ``decided``, ``ratio`` (met ÷ decided; None with no
    decision), the policy's ``objective`` and ``objective_met``, and each
    target's ``ratio`` (delivered ÷ goal) and ``met``; rows sorted by policy
    file order, then team. Used on one worker's counts and on the sum of all
    workers' (``merge_compliance``)."""
    order = {name: i for i, name in enumerate(policies.names)}
    targets_order = {t.name: i for i, t in enumerate(policies.targets)}
    rows = []
    for r in answer["policies"]:
        decided = r["met"] + r["breached"]
        ratio = r["met"] / decided if decided else None
        try:
            objective: float | None = policies.by_name(r["policy"]).objective
        except KeyError:
            objective = None
        rows.append({**r, "decided": decided, "ratio": ratio, "objective": objective,
                     "objective_met": None if ratio is None or objective is None else ratio >= objective})
    rows.sort(key=lambda r: (order.get(r["policy"], len(order)), r["team"]))
    targets = []
    for t in answer["targets"]:
        value_ok = t["value_goal"] is None or (t["value_delivered"] or 0) >= t["value_goal"]
        targets.append({**t, "ratio": t["delivered"] / t["goal"] if t["goal"] else None,
                        "met": t["delivered"] >= t["goal"] and value_ok})
    targets.sort(key=lambda t: targets_order.get(t["target"], len(targets_order)))
    return {**answer, "policies": rows, "targets": targets}


def merge_compliance(answers: list[dict[str, Any]], policies: PolicySet) -> dict[str, Any]:
    """The sum of several workers' ``compliance`` answers (each for its own
    partitions), ratios computed again on the sums."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    targets: dict[tuple[str, str], dict[str, Any]] = {}
    for a in answers:
        for r in a["policies"]:
            key = (r["policy"], r["team"], r["period"])
            into = rows.setdefault(key, {"policy": r["policy"], "team": r["team"], "period": r["period"],
                                         "met": 0, "breached": 0, "open": 0})
            for k in ("met", "breached", "open"):
                into[k] += r[k]
        for t in a["targets"]:
            have = targets.get((t["target"], t["period"]))
            if have is None:
                targets[(t["target"], t["period"])] = {k: t[k] for k in (
                    "target", "period", "delivered", "value_delivered", "goal", "value_goal")}
            else:
                have["delivered"] += t["delivered"]
                if t["value_delivered"] is not None:
                    have["value_delivered"] = (have["value_delivered"] or 0) + t["value_delivered"]
    period = answers[0]["period"] if answers else None
    return finish_compliance({"period": period, "policies": list(rows.values()),
                              "targets": list(targets.values())}, policies)


def _owner(st: LeadState) -> dict[str, str | None]:
    """The lead's owner; before its handoff reaches the watermark, the team
    and rep its pending clocks show (as the queue and the gauges do)."""
    if st.owner_team is not None or st.owner_rep is not None:
        return {"team": st.owner_team, "rep": st.owner_rep}
    for team, rep, _, _ in st.shown.values():
        if team is not None or rep is not None:
            return {"team": team, "rep": rep}
    return {"team": None, "rep": None}


def clock_view(st: LeadState, policy: Policy, now_us: int) -> dict[str, Any]:
    """One policy's clock for one lead at wall time ``now_us`` (epoch µs).

    ``state``: ``running``, ``paused``, ``pending`` (a start received that the
    watermark has not reached: its start and deadline are what they will be),
    ``decided`` (no open cycle; ``decision`` holds the last one) or ``idle``
    (never started). ``elapsed_seconds``/``remaining_seconds`` are business
    seconds of the open (or pending) cycle as of ``now_us``; remaining is 0
    and ``overdue`` true once the goal is used up (the breach is decided
    when the watermark passes the deadline, one allowed lateness later).
    ``goal_seconds`` is the open cycle's goal in business seconds (a goal in
    business days, ``goal``, gives each cycle its own); ``calendar`` names
    the policy's business calendar (None: 24x7, every second counts).
    ``paused_spans`` come from the lead's recent event log (the last
    events; an open span has ``to`` None). ``decision`` is the last decided
    cycle: outcome, start, deadline, end, elapsed (None when it was paused:
    the pauses are not kept) and ``awaiting_stop`` (breached by the timer,
    no stop seen yet: a stop dated before its deadline would still be
    recorded as a correction) and ``corrected_at`` (the stop of such a
    correction, None without one)."""
    ts = format_timestamp_us
    name = policy.name
    c = st.clocks.get(name)
    shown = st.shown.get(name)
    goal = policy.goal_us
    if c is not None and c.status in (clock.RUNNING, clock.PAUSED) and c.goal:
        goal = c.goal
    out: dict[str, Any] = {
        "policy": name, "state": "idle", "cycle": 0 if c is None else c.cycle, "team": None, "rep": None,
        "goal": policy.goal_text, "calendar": None if policy.calendar.always_open else policy.calendar.name,
        "goal_seconds": goal / 1_000_000, "started_at": None, "deadline": None, "at_risk": False,
        "elapsed_seconds": None, "remaining_seconds": None, "overdue": False, "paused_spans": [],
        "judged_not_before": None, "attempts": None, "min_attempts": policy.min_attempts, "decision": None,
    }
    if c is not None and c.decided:
        paused = c.last_paused
        out.update(state="decided", team=c.team, rep=c.rep)
        out["decision"] = {
            "outcome": c.last_outcome,
            "cycle": c.decided,
            "started_at": ts(c.last_started),
            "deadline": ts(c.last_deadline),
            "ended_at": ts(c.last_end),
            "elapsed_seconds": None if paused else policy.calendar.elapsed(c.last_started, c.last_end) / 1_000_000,
            "awaiting_stop": c.last_open,
            # A breach the timer decided, then contradicted by a stop dated
            # before its deadline: the correction record's stop time.
            "corrected_at": ts(c.corrected_at) if c.corrected_at else None,
        }
    elapsed: int | None = None
    if c is not None and c.status in (clock.RUNNING, clock.PAUSED):
        out.update(state=clock.STATUS_NAMES[c.status], team=c.team, rep=c.rep, started_at=ts(c.started_at),
                   at_risk=c.at_risk, paused_spans=_pause_spans(st, c, policy))
        if c.status == clock.RUNNING:
            elapsed = c.consumed + policy.calendar.elapsed(c.resumed_at, now_us)
            out["deadline"] = ts(c.deadline)
            if c.hold > c.deadline:
                out["judged_not_before"] = ts(c.hold)
        else:
            elapsed = c.consumed
        if policy.is_depth:
            out["attempts"] = c.attempts
    elif shown is not None and shown[2] == clock.PENDING:
        start = _pending_start(st, name, NEVER if c is None else c.floor)
        out.update(state="pending", team=shown[0], rep=shown[1])
        if start is not None:
            elapsed = policy.calendar.elapsed(start, now_us)
            goal = policy.goal_from(start)
            out.update(started_at=ts(start), deadline=ts(policy.calendar.add(start, goal)), goal_seconds=goal / 1_000_000)
        if policy.is_depth:
            out["attempts"] = 0
    if elapsed is not None:
        out["elapsed_seconds"] = elapsed / 1_000_000
        out["remaining_seconds"] = max(0, goal - elapsed) / 1_000_000
        out["overdue"] = elapsed > goal
    return out


def _pending_start(st: LeadState, name: str, floor: int) -> int | None:
    """The event time (µs) of the buffered start that will begin the policy's next cycle."""
    for t, _, _, roles, _, _ in st.buffer:
        if t > floor and (name, START) in roles:
            return t
    return None


def _pause_spans(st: LeadState, c: clock.Clock, policy: Policy) -> list[dict[str, str | None]]:
    """Pauses of the open cycle, from the lead's log of applied events: a
    pause ends at a resume or, past the policy's ``max_pause``, by itself."""
    ts = format_timestamp_us
    spans: list[list[int | None]] = []
    paused_at: int | None = None
    for t, _, _, roles, _, _ in st.log:
        if t < c.started_at:
            continue
        mine = {role for n, role in roles if n == policy.name}
        if PAUSE in mine and paused_at is None:
            paused_at = t
        elif RESUME in mine and paused_at is not None:
            spans.append([paused_at, t])
            paused_at = None
    if paused_at is not None:
        spans.append([paused_at, None])
    if c.status == clock.PAUSED and (not spans or spans[-1][1] is not None):
        spans.append([c.paused_at, None])  # its pause event is no longer in the log
    limit = policy.max_pause_us
    out = []
    for a, b in spans:
        assert a is not None
        ongoing = b is None and c.status == clock.PAUSED and a == c.paused_at
        if limit and not ongoing and (b is None or b - a > limit):
            b = a + limit  # it outlasted max_pause and ended by itself
        out.append({"from": ts(a), "to": None if b is None else ts(b)})
    return out


class QueueScan:
    """One pass over a worker's leads for the queue: counts the matching open
    and pending clocks and keeps the ``limit`` most urgent, so the cost is
    O(leads) time and O(limit) memory whatever the number of matches.

    Each match gets one integer score (at risk, has a deadline, deadline);
    once ``limit`` rows are kept, a match that scores worse than the last of
    them is only counted. That keeps the pass free of per-lead allocations,
    which matters: a million short-lived tuples wake Python's cyclic garbage
    collector, whose full passes walk every lead's state (seconds at a
    million leads, measured with ``bench/api.py``)."""

    def __init__(self, engine: Engine, team: str | None, rep: str | None, policy: str | None, limit: int) -> None:
        self._e = engine
        self._team, self._rep, self._policy = team, rep, policy
        self._limit = limit
        self.total = 0
        self._rows: list[tuple[int, str, str, int]] = []  # (score, lead, policy, partition)
        self._worst: int | None = None  # the score of the limit-th row kept, once there are that many

    def feed(self, keys: Iterable[str]) -> None:
        """Look at some lead ids (gone ones are skipped)."""
        e = self._e
        store, runtimes, goals = e.store, e.runtimes, e.effects.goals
        team, rep, policy = self._team, self._rep, self._policy
        rows, worst, limit = self._rows, self._worst, self._limit
        running, pending = clock.RUNNING, clock.PENDING
        now = e.wall_us()
        total = 0
        for lead_id in keys:
            entry = store.get(lead_id)
            if entry is None:
                continue
            st = entry.state
            shown = st.shown
            if not shown or entry.partition not in runtimes:
                continue
            for name, (t, r, status, risk) in shown.items():
                if (policy is not None and name != policy) or (team is not None and t != team) \
                        or (rep is not None and r != rep) or name not in goals:
                    continue
                total += 1
                if status == running:
                    # Overdue counts as urgent as at risk: a clock past its
                    # deadline whose partition's watermark has not flagged it
                    # yet must not sink below every at-risk one.
                    deadline = st.clocks[name].deadline
                    score = (0 if risk or deadline <= now else _NOT_AT_RISK) + deadline - NEVER
                elif status == pending:
                    start = _pending_start(st, name, st.clocks[name].floor if name in st.clocks else NEVER)
                    pol = e.policies.by_name(name)
                    if start is None:
                        score = _NOT_AT_RISK + _NO_DEADLINE
                    else:
                        deadline = pol.calendar.add(start, pol.goal_from(start))
                        score = (0 if deadline <= now else _NOT_AT_RISK) + deadline - NEVER
                else:  # paused: the deadline is frozen until it resumes
                    score = (0 if risk else _NOT_AT_RISK) + _NO_DEADLINE
                if worst is not None and score > worst:
                    continue
                rows.append((score, lead_id, name, entry.partition))
                if len(rows) >= 2 * limit + 64:
                    rows[:] = heapq.nsmallest(limit, rows)
                    worst = rows[-1][0] if len(rows) >= limit else None
        rows[:] = heapq.nsmallest(limit, rows)
        self._worst = rows[-1][0] if len(rows) >= limit else None
        self.total += total

    def answer(self) -> dict[str, Any]:
        """``{total, clocks: [...]}``: the ``limit`` most urgent rows, each
        ``{lead_id, policy, state, partition, team, rep, started_at,
        deadline, at_risk, elapsed_seconds, remaining_seconds, overdue,
        goal_seconds, calendar}`` (business seconds under ``calendar``; None: 24x7)."""
        e = self._e
        rows = []
        now = e.wall_us()
        for _, lead_id, name, partition in self._rows:
            entry = e.store.get(lead_id)
            if entry is None:
                continue  # forgotten while the answer was being built
            v = clock_view(entry.state, e.policies.by_name(name), now)
            rows.append({"lead_id": lead_id, "policy": name, "state": v["state"], "partition": partition,
                         "team": v["team"], "rep": v["rep"], "started_at": v["started_at"],
                         "deadline": v["deadline"], "at_risk": v["at_risk"],
                         "elapsed_seconds": v["elapsed_seconds"], "remaining_seconds": v["remaining_seconds"],
                         "overdue": v["overdue"], "goal_seconds": v["goal_seconds"], "calendar": v["calendar"]})
        return {"total": self.total, "clocks": rows}


# Queue scores: at risk or overdue first, then by deadline (epoch µs above NEVER), rows
# without a deadline (paused, or pending without a start) after the others.
_NO_DEADLINE = 1 << 63
_NOT_AT_RISK = 1 << 64


def queue_order(row: dict[str, Any]) -> tuple[bool, bool, int, str, str]:
    """The queue's sort key of an answer row: at risk or overdue first, then
    by deadline (rows without one last), then lead and policy."""
    d = row.get("deadline")
    return (not (row["at_risk"] or row.get("overdue", False)), d is None, 0 if d is None else parse_timestamp_us(d), row["lead_id"], row["policy"])
