"""Read-only views of a worker's runtime: what the scrape-time collector
shows, the query API's answers and the progress lines of a backlog. Nothing
here changes state, and nothing runs per event."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from leadsla.models import clock
from leadsla.models.clock import NEVER
from leadsla.models.events import format_timestamp_us
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
