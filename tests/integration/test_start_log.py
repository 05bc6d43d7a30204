"""What a worker logs while it starts on a backlog, as ``leadsla demo`` does:
its history's clocks all fall due in the first timer passes after the
catch-up, and those passes take longer than the timer's interval."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer

from .conftest import FIRST_TOUCH, Setup, metric_sum, wait_for
from .kafka import create_topics, event, iso

LEADS = 3000


def publish_fast(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    """Send ``records`` (key, value) in batches: a backlog, not a trickle."""

    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        await producer.start()
        try:
            for key, value in records:
                await producer.send(topic, key=key, value=value)
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(go())


def test_a_worker_starting_on_a_backlog_of_due_clocks_logs_no_timer_warning(setup: Callable[[str], Setup]) -> None:
    s = setup(FIRST_TOUCH)
    create_topics(s.broker, [s.topics["input"]])
    handed = datetime.now(UTC) - timedelta(hours=2)  # every first touch is overdue
    publish_fast(s.broker, s.topics["input"], [
        event(event_id=f"h{i}", lead_id=f"lead-{i}", type="lead.handed_off", occurred_at=iso(handed), team="emea")
        for i in range(LEADS)
    ])
    w = s.worker().start()
    wait_for(lambda: metric_sum(w.metrics(), "leadsla_sla_outcomes_total", outcome="breached") == LEADS, 120,
             "every clock of the backlog decided")
    lines = w.logs[-1].read_text(errors="replace").splitlines()
    # Faust's timer warns when a pass runs longer than its interval; a pass
    # deciding a backlog does, and yields to the agents meanwhile, by design.
    assert [line for line in lines if "Timer" in line or "overlapping" in line] == []
    assert [line for line in lines if "WARNING" in line or "ERROR" in line] == [], "\n".join(lines)
