"""Realistic demo traffic: a few days of history (so met and breached clocks
show up at once), a busy last hour and a quarter whose follow-ups are still
to come, then live leads in real time.

Arrivals fall inside the policies' calendar's open hours; reps differ in how
fast they follow up; some leads are never touched; a few records are bad and
end up in the dead-letter topic. Events dated in the future are held back and
published when their time comes, so decisions keep arriving while one
watches.

At night or on a weekend a business-hours calendar would hold every live
clock until the next opening, so ``leadsla demo`` runs the policies with
``demo_policies``: every business-hours calendar replaced by one open around
the clock (``demo_24x7``), for the demo only. ``--keep-calendars`` keeps the
file's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import heapq
import itertools
import logging
import random
import time
import uuid
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaProducer

from leadsla.models.calendar import ALWAYS_OPEN, Calendar
from leadsla.models.events import format_timestamp_us, parse_timestamp_us
from leadsla.models.policy import PolicySet
from leadsla.streams.kafka_security import KafkaSecurity

log = logging.getLogger("leadsla.demo")

US = 1_000_000
# Replaces every business-hours calendar in the demo (see demo_policies).
DEMO_CALENDAR = Calendar(name="demo_24x7", always_open=True)
TEAMS = ("na_east", "na_west", "emea")
SEGMENTS = ("smb", "mid_market", "enterprise")
CHANNELS = ("call", "email", "social")
# Who the lead is: the example target weighs executives highest.
PERSONAS = ("executive", "director", "manager", "individual")
PERSONA_WEIGHTS = (1, 2, 3, 4)


@dataclass(frozen=True)
class Rep:
    id: str
    team: str
    median_minutes: float  # business minutes to the first attempt
    never: float  # share of leads never touched


def reps(rng: random.Random) -> list[Rep]:
    out = []
    for i in range(12):
        kind = i % 4
        median = (8, 25, 50, 120)[kind]
        never = (0.02, 0.05, 0.10, 0.25)[kind]
        out.append(Rep(f"rep-{i + 1:02d}", TEAMS[i % len(TEAMS)], median, never))
    return out


def demo_policies(policies: PolicySet) -> tuple[PolicySet, list[Calendar]]:
    """The policies with every business-hours calendar replaced by
    ``DEMO_CALENDAR`` (open around the clock), so that live leads are decided
    at any hour; and the calendars replaced (empty: the policies are
    returned unchanged). Goals, selectors and everything else stay."""
    replaced = {p.calendar.name: p.calendar for p in policies.policies if not p.calendar.always_open}
    if not replaced:
        return policies, []
    swapped = tuple(p if p.calendar.always_open else dataclasses.replace(p, calendar=DEMO_CALENDAR)
                    for p in policies.policies)
    return dataclasses.replace(policies, policies=swapped, calendars={DEMO_CALENDAR.name: DEMO_CALENDAR}), \
        [replaced[name] for name in sorted(replaced)]


@dataclass
class DemoPlan:
    """What the demo publishes. ``past``: events dated up to the plan's
    ``now``, in ``occurred_at`` order, published at once; ``future``: events
    dated later, as (occurred_at µs, event), published when their time comes;
    ``showcase``: a lead to look up, handed off 50 minutes before ``now``
    and first contacted 45 seconds after it, so its ``first_touch``-like
    clocks run at first and are decided a few minutes into the demo."""

    past: list[dict[str, object]]
    future: list[tuple[int, dict[str, object]]]
    showcase: str


class TrafficGenerator:
    def __init__(self, policies: PolicySet, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.reps = reps(self.rng)
        cals = [p.calendar for p in policies.policies if not p.calendar.always_open]
        self.calendar: Calendar = cals[0] if cals else ALWAYS_OPEN

    def _open_instant(self, lo_us: int, hi_us: int) -> int | None:
        for _ in range(50):
            t = self.rng.randrange(lo_us, hi_us)
            if self.calendar.is_open(t):
                return t
        return None

    def lead(self, handoff_us: int, horizon_us: int, first_attempt_us: int | None = None) -> list[dict[str, object]]:
        """One lead's events up to ``horizon_us`` (later ones are not yet
        known). ``first_attempt_us``: the lead is followed up, first at that
        instant (the showcase lead)."""
        rng = self.rng
        lead_id = f"lead-{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}"
        rep = rng.choice(self.reps)
        base = {"lead_id": lead_id, "segment": rng.choice(SEGMENTS), "region": rep.team,
                "source": "marketing" if rng.random() < 0.85 else "sales",
                "persona": rng.choices(PERSONAS, PERSONA_WEIGHTS)[0]}
        attrs = {"form": "demo_request"} if rng.random() < 0.15 else {"form": "content_download"}
        events: list[dict[str, object]] = [
            {**base, "type": "lead.created", "occurred_at": handoff_us - rng.randrange(3600, 86400) * US},
            {**base, "type": "lead.mql", "occurred_at": handoff_us - rng.randrange(60, 3600) * US},
            {**base, "type": "lead.handed_off", "occurred_at": handoff_us, "team": rep.team, "rep": rep.id, "attributes": attrs},
        ]
        if first_attempt_us is not None or rng.random() >= rep.never:
            minutes = rng.lognormvariate(0, 0.8) * rep.median_minutes
            t = self.calendar.add(handoff_us, round(minutes * 60 * US)) if first_attempt_us is None else first_attempt_us
            # Some reps keep trying (the depth policy wants six attempts on a
            # lead not reached), most stop after one to three.
            for n in range(rng.choice((1, 1, 2, 3, 6, 7))):
                outcome = "reached" if n == 2 else rng.choice(("no_answer", "waiting_on_prospect", "no_answer"))
                events.append({**base, "type": "lead.contact_attempt", "occurred_at": t, "team": rep.team, "rep": rep.id,
                               "channel": rng.choice(CHANNELS), "attributes": {"outcome": outcome}})
                t = self.calendar.add(t, rng.randrange(20, 300) * 60 * US)
            end = rng.choice(("lead.qualified", "lead.disqualified", "lead.recycled", None))
            if end:
                events.append({**base, "type": "lead.connected", "occurred_at": t, "team": rep.team, "rep": rep.id})
                t = self.calendar.add(t, rng.randrange(30, 60 * 24) * 60 * US)
                events.append({**base, "type": end, "occurred_at": t, "team": rep.team, "rep": rep.id})
                if end == "lead.qualified" and rng.random() < 0.5:
                    t = self.calendar.add(t, rng.randrange(1, 20) * 600 * 60 * US)  # days of selling
                    won = rng.random() < 0.5
                    events.append({**base, "type": "deal.won" if won else "deal.lost", "occurred_at": t,
                                   "team": rep.team, "rep": rep.id, "amount": float(rng.randrange(20, 200) * 50),
                                   "currency": "USD"})
        out = []
        for e in events:
            at = int(e["occurred_at"])  # type: ignore[call-overload]
            if at <= horizon_us:
                out.append({**e, "event_id": str(uuid.UUID(int=rng.getrandbits(128))), "occurred_at": format_timestamp_us(at)})
        return out

    def bad_records(self) -> list[tuple[bytes | None, bytes]]:
        return [
            (b"lead-bad-1", b"{not json"),
            (b"lead-bad-2", orjson.dumps({"event_id": "x1", "lead_id": "lead-bad-2", "type": "lead.teleported", "occurred_at": "2026-01-01T00:00:00Z"})),
            (b"lead-bad-3", orjson.dumps({"event_id": "x2", "lead_id": "lead-bad-3", "type": "lead.mql", "occurred_at": "yesterday"})),
        ]

    def history(self, now_us: int, days: float, leads: int) -> list[dict[str, object]]:
        events = []
        lo = now_us - int(days * 86400 * US)
        for _ in range(leads):
            t = self._open_instant(lo, now_us - 3600 * US)
            if t is not None:
                events.extend(self.lead(t, now_us))
        events.sort(key=lambda e: str(e["occurred_at"]))
        return events

    def plan(self, now_us: int, days: float = 4, leads: int = 400, recent_minutes: float = 75,
             recent_leads: int = 450) -> DemoPlan:
        """History over ``days`` up to an hour before ``now_us`` (``leads``
        leads), ``recent_leads`` more handed off in the last
        ``recent_minutes`` (a busy stretch whose follow-ups and deadlines
        fall in the demo's first minutes: live decisions at once) and the
        showcase lead; split into past and future events."""
        far = now_us + 7 * 86400 * US
        events: list[dict[str, object]] = []
        lo = now_us - int(days * 86400 * US)
        for _ in range(leads):
            t = self._open_instant(lo, now_us - 3600 * US)
            if t is not None:
                events.extend(self.lead(t, far))
        recent_lo = now_us - int(recent_minutes * 60 * US)
        for _ in range(recent_leads):
            t = self._open_instant(recent_lo, now_us - 60 * US)
            if t is not None:
                events.extend(self.lead(t, far))
        show = self.lead(now_us - 50 * 60 * US, far, first_attempt_us=now_us + 45 * US)
        events.extend(show)
        past, future = [], []
        for e in events:
            at = parse_timestamp_us(str(e["occurred_at"]))
            if at <= now_us:
                past.append((at, e))
            else:
                future.append((at, e))
        past.sort(key=lambda x: x[0])
        future.sort(key=lambda x: x[0])
        return DemoPlan([e for _, e in past], future, str(show[0]["lead_id"]))


async def run_demo_traffic(bootstrap: str, topic: str, policies: PolicySet, stop: asyncio.Event,
                           history_days: float = 4, history_leads: int = 400, live_interval: float = 2.0,
                           gen: TrafficGenerator | None = None, plan: DemoPlan | None = None,
                           security: KafkaSecurity | None = None) -> None:
    """Publish ``plan`` (default: a fresh one of ``gen``) and three bad
    records, then a new live lead every ``live_interval`` seconds (±50 %)
    and every event whose time has come, until ``stop`` is set."""
    gen = gen or TrafficGenerator(policies)
    plan = plan or gen.plan(time.time_ns() // 1000, history_days, history_leads)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, **(security or KafkaSecurity()).client_kwargs())
    await producer.start()
    try:
        for e in plan.past:
            await producer.send(topic, key=str(e["lead_id"]).encode(), value=orjson.dumps(e))
        for key, value in gen.bad_records():
            await producer.send(topic, key=key, value=value)
        await producer.flush()
        log.info("demo: published %d historical events and 3 bad records; %d more follow as their time comes",
                 len(plan.past), len(plan.future))
        # A heap by time (the sequence number breaks ties: dicts do not compare).
        seq = itertools.count()
        pending = [(at, next(seq), e) for at, e in plan.future]
        heapq.heapify(pending)
        while not stop.is_set():
            now = time.time_ns() // 1000
            # A new lead now; its follow-ups are released when their time comes.
            for e in gen.lead(now, now + 7 * 86400 * US):
                heapq.heappush(pending, (parse_timestamp_us(str(e["occurred_at"])), next(seq), e))
            while pending and pending[0][0] <= now:
                _, _, e = heapq.heappop(pending)
                await producer.send(topic, key=str(e["lead_id"]).encode(), value=orjson.dumps(e))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=live_interval * gen.rng.uniform(0.5, 1.5))
    finally:
        await producer.stop()
