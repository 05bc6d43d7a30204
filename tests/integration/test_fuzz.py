"""Hostile input at scale through a real worker: a seeded stream of random
bytes, truncated and mutated events, records at every size limit ± 1, JSON
nested 10,000 deep, absurd timestamps, lone surrogates, NUL bytes, wrong and
missing keys, duplicates and unknown types among valid events (see
``hostile.py``), published in multi-record batches.

The worker must stay up without a traceback, and account for every record
exactly once: accepted + duplicates + rejected == records published. Every
rejection is on the dead-letter topic with its original key and value, a
known ``reason`` and a non-empty ``error``; each dead letter names the
record it came from, whose own rules allowed that reason; no record the
contract says is valid (or a duplicate) is dead-lettered.

``LEADSLA_FUZZ_SEED`` replays a run; the seed is printed."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer

from .conftest import FIRST_TOUCH, metric_sum, wait_for
from .hostile import ACCEPTED, DUPLICATE, PROCESSING_ERROR, REASONS, Hostile, Rec
from .kafka import create_topics, read_all

SEED = int(os.environ.get("LEADSLA_FUZZ_SEED", "20261206"))


def publish_batched(bootstrap: str, topic: str, records: list[Rec]) -> None:
    """Send in order with a lingering producer, so batches hold many records."""

    async def go() -> None:
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024,
                             max_request_size=1_000_000, request_timeout_ms=120_000)
        await p.start()
        try:
            pending = []
            for r in records:
                pending.append(await p.send(topic, key=r.key, value=r.value))
                if len(pending) >= 2000:
                    await asyncio.gather(*pending)
                    pending = []
            await asyncio.gather(*pending)
        finally:
            await p.stop()

    asyncio.run(go())


def counts(mt: dict) -> tuple[float, float, float]:
    return (metric_sum(mt, "leadsla_events_total"), metric_sum(mt, "leadsla_events_duplicate_total"),
            metric_sum(mt, "leadsla_events_rejected_total"))


def fuzz(setup, n: int, timeout: float) -> dict[str, int]:
    print(f"fuzz seed {SEED} (LEADSLA_FUZZ_SEED replays it), {n} records")
    s = setup(FIRST_TOUCH)
    create_topics(s.broker, list(s.topics.values()))
    w = s.worker().start()
    recs = Hostile(SEED, datetime.now(UTC).replace(microsecond=0)).records(n)
    assert max(len(r.key or b"") + len(r.value or b"") for r in recs) < 1_000_000
    publish_batched(s.broker, s.topics["input"], recs)

    def settled() -> dict | None:
        assert w.proc is not None and w.proc.poll() is None, f"the worker exited:\n{w.tail(80)}"
        mt = w.metrics()
        total = sum(counts(mt))
        assert total <= n, f"{total} records counted, {n} published: {counts(mt)}"
        return mt if total == n else None

    wait_for(settled, timeout, f"accepted + duplicates + rejected to reach {n}", interval=1.0)
    time.sleep(3)  # nothing is counted twice afterwards
    mt = w.metrics()
    accepted, duplicates, rejected = counts(mt)
    assert accepted + duplicates + rejected == n, counts(mt)

    # The worker stayed up, and no exception reached its log.
    assert w.proc is not None and w.proc.poll() is None, w.tail(80)
    log = w.logs[-1].read_text(errors="replace")
    assert "Traceback" not in log and "We experienced a crash" not in log, w.tail(120)
    assert metric_sum(mt, "leadsla_sink_send_errors_total") == 0
    assert metric_sum(mt, "leadsla_dead_letters_truncated_total") == 0  # each under the producer's limit

    # Every rejection is a dead letter of a published record, whole, with a
    # known reason its record allowed and a message.
    dead = read_all(s.broker, s.topics["dlq"], expect=int(rejected), timeout=180)
    assert len(dead) == rejected
    index = {}
    for i, r in enumerate(recs):
        index.setdefault((r.key, r.value), i)
    lettered: dict[int, str] = {}
    for d in dead:
        headers = dict(d.headers)
        reason = headers.get("reason", b"").decode()
        assert reason in REASONS, headers
        assert headers.get("error", b"").strip(), headers
        i = index.get((d.key, d.value))
        assert i is not None, f"a dead letter ({reason}) of no published record: key {d.key[:60]!r}"
        assert i not in lettered, f"record {i} ({recs[i].kind}) dead-lettered twice"
        lettered[i] = reason
        assert reason != PROCESSING_ERROR, f"record {i} ({recs[i].kind}) failed in the worker: {headers}"
        assert reason in recs[i].expect, (f"record {i} ({recs[i].kind}): {reason} ({headers['error'][:200]!r}), "
                                          f"expected {sorted(recs[i].expect)}")
    by_reason = Counter(lettered.values())
    for reason in REASONS:
        assert metric_sum(mt, "leadsla_events_rejected_total", reason=reason) == by_reason.get(reason, 0), reason

    # What was not dead-lettered was allowed to be accepted or a duplicate.
    kept = [r for i, r in enumerate(recs) if i not in lettered]
    wrong = [r.kind for r in kept if not r.expect & {ACCEPTED, DUPLICATE}]
    assert not wrong, f"{len(wrong)} records the contract rejects were accepted: {Counter(wrong).most_common(10)}"
    # Duplicates were made only on purpose: each one is counted, none else.
    made = sum(1 for r in recs if r.certain == DUPLICATE)
    assert duplicates == made
    assert accepted == len(kept) - made
    certain = Counter(r.certain for r in recs if r.certain)
    assert accepted >= certain[ACCEPTED]
    for reason in REASONS - {PROCESSING_ERROR}:
        assert by_reason.get(reason, 0) >= certain[reason], reason
    figures = {"published": n, "accepted": int(accepted), "duplicates": int(duplicates), "rejected": int(rejected),
               **{f"rejected {k}": v for k, v in sorted(by_reason.items())}}
    print("fuzz figures:", figures)
    return figures


def test_hostile_records_through_a_worker(setup) -> None:
    fuzz(setup, 5_000, timeout=300)


@pytest.mark.fuzz
def test_hostile_records_at_scale(setup) -> None:
    fuzz(setup, 100_000, timeout=1500)
