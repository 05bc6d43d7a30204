"""A restart recovers every lead as it was last written: the changelog is
read by the worker's own client up to the high watermark of the fetch, even
when it was written in multi-record batches (the embedded broker's ListOffsets
answer is wrong then, and Faust's recovery, which trusts it, stopped early),
and a worker stopped with SIGTERM writes what its last timer pass decided
before its producer closes."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta

from .conftest import FIRST_TOUCH, metric_sum, wait_for
from .kafka import create_topics, event, iso, publish

LEADS = 400


def test_a_restart_recovers_a_changelog_written_in_batches(setup) -> None:
    s = setup(FIRST_TOUCH)
    create_topics(s.broker, list(s.topics.values()))
    now = datetime.now(UTC).replace(microsecond=0)
    # Every lead handed off and followed up in time: its last changelog
    # record says met. A recovery that stopped early would bring some back
    # running, as their earlier records left them.
    publish(s.broker, s.topics["input"], [
        event(event_id=f"{kind}-{i}", lead_id=f"batch-{i}", type=kind, occurred_at=iso(now - timedelta(minutes=ago)),
              team="emea")
        for i in range(LEADS) for kind, ago in (("lead.handed_off", 10), ("lead.contact_attempt", 5))])
    batched = {"LEADSLA_SINGLE_RECORD_BATCHES": "false", "LEADSLA_DIRECT_RECOVERY": "true"}

    w1 = s.worker(**batched).start()

    def processed() -> bool:
        m = w1.metrics()
        return (metric_sum(m, "leadsla_sla_outcomes_total", policy="first_touch", outcome="met") == LEADS
                and metric_sum(m, "leadsla_consumer_lag") == 0)

    wait_for(processed, 90, f"{LEADS} leads met")
    assert w1.stop(signal.SIGTERM) == 0

    w2 = s.worker(**batched).start()

    def recovered() -> dict | None:
        m = w2.metrics()
        return m if metric_sum(m, "leadsla_worker_ready") == 1 and metric_sum(m, "leadsla_owned_partitions") == 4 else None

    m = wait_for(recovered, 120, "the restarted worker ready with all four partitions")
    # Every lead is back as it was last written: decided, nothing open, nothing
    # decided again; no record was handled again (nothing was published meanwhile).
    assert metric_sum(m, "leadsla_sla_open_clocks", policy="first_touch") == 0
    assert metric_sum(m, "leadsla_sla_outcomes_total", policy="first_touch") == 0
    assert metric_sum(m, "leadsla_events_total") == 0
    log = w2.logs[0].read_text()
    read = [int(line.split("changelogs: ")[1].split(" record")[0]) for line in log.splitlines() if "changelogs: " in line]
    assert read and sum(read) >= LEADS, log[-2000:]
    view = w2.lead(f"batch-{LEADS - 1}")
    assert view is not None, "the last lead is known"
    c = view["clocks"]["first_touch"]
    assert (c["status"], c["cycle"], c["last_outcome"]) == ("idle", 1, "met"), c
