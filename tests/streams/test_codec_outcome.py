"""codec.outcome_record byte for byte against the record as it was built
before timestamps were formatted from tables (tests.models.
test_events_format.previous_format): the outcome record is a public
contract."""

from __future__ import annotations

import random

import orjson

from leadsla.models.clock import Decision
from leadsla.streams.codec import outcome_record
from tests.models.test_events_format import instants, previous_format


def previous_outcome_record(d: Decision, goal_us: int) -> bytes:
    """outcome_record as it was written before (with the previous formatter)."""
    rec: dict[str, object] = {
        "decision_id": d.decision_id,
        "lead_id": d.lead_id,
        "policy": d.policy,
        "outcome": d.outcome,
        "cycle": d.cycle,
        "started_at": previous_format(d.started_at),
        "deadline": previous_format(d.deadline),
        "decided_at": previous_format(d.decided_at),
        "watermark": previous_format(d.watermark),
        "goal_seconds": (d.goal_us or goal_us) / 1_000_000,
        "stopped_at": None if d.stopped_at is None else previous_format(d.stopped_at),
        "elapsed_seconds": None if d.elapsed_us is None else d.elapsed_us / 1_000_000,
        "team": d.team,
        "rep": d.rep,
        "was_at_risk": d.was_at_risk,
    }
    if d.attempts is not None:
        rec["attempts"] = d.attempts
    return orjson.dumps(rec)


def random_decisions(rng: random.Random, n: int) -> list[Decision]:
    pool = instants(rng, n)
    out = []
    for i in range(n):
        started = rng.choice(pool)
        out.append(Decision(
            lead_id=f"lead-{i}",
            policy=rng.choice(["first_touch", "disposition", "depth"]),
            outcome=rng.choice(["met", "breached", "corrected_met", "corrected_breached", "closed"]),
            cycle=rng.randint(1, 5),
            started_at=started,
            deadline=rng.choice(pool),
            decided_at=rng.choice(pool),
            watermark=rng.choice([started, rng.choice(pool)]),
            stopped_at=rng.choice([None, rng.choice(pool)]),
            elapsed_us=rng.choice([None, 0, rng.randint(0, 10**13)]),
            team=rng.choice([None, "emea", "na_east", 'odd "team" \u00e9']),
            rep=rng.choice([None, "rep-07"]),
            was_at_risk=rng.random() < 0.5,
            decision_id=f"{rng.getrandbits(64):016x}",
            attempts=rng.choice([None, 0, 3]),
            goal_us=rng.choice([0, rng.randint(1, 10**12)]),
        ))
    return out


def test_outcome_records_are_byte_identical_to_what_was_written_before() -> None:
    rng = random.Random(7)
    for d in random_decisions(rng, 20_000):
        goal = rng.choice([3_600_000_000, 1, 86_400_000_000 * 30])
        assert outcome_record(d, goal) == previous_outcome_record(d, goal), d
