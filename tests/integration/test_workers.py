"""Several workers: ``leadsla run --workers 2`` splits the partitions between
two processes of one group, each serving /metrics for what it owns, and the
sums across them equal one worker's figures for the same input."""

from __future__ import annotations

import json
import signal
import socket
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .conftest import FIRST_TOUCH, ephemeral_ports, free_port, metric_sum, wait_for
from .kafka import create_topics, event, iso, publish

POLICIES = FIRST_TOUCH
FIGURES = (
    ("leadsla_sla_outcomes_total", {"outcome": "met"}),
    ("leadsla_sla_outcomes_total", {"outcome": "breached"}),
    ("leadsla_sla_open_clocks", {}),
    ("leadsla_events_total", {}),
    ("leadsla_handoffs_total", {}),
)


def _input(now: datetime) -> list[tuple[bytes, bytes]]:
    past = now - timedelta(hours=3)
    out = []
    for i in range(90):
        lead = f"w-{i}"
        out.append(event(event_id=f"{lead}-h", lead_id=lead, type="lead.handed_off", occurred_at=iso(past), team="emea"))
        if i % 3 == 0:
            out.append(event(event_id=f"{lead}-a", lead_id=lead, type="lead.contact_attempt",
                             occurred_at=iso(past + timedelta(minutes=20))))
        elif i % 3 == 1:
            out.append(event(event_id=f"{lead}-a", lead_id=lead, type="lead.connected",
                             occurred_at=iso(past + timedelta(minutes=90))))
    out += [event(event_id=f"open-{i}", lead_id=f"open-{i}", type="lead.handed_off", occurred_at=iso(now))
            for i in range(12)]
    return out


def test_two_workers_on_one_host_split_the_partitions_and_add_up_to_one(setup) -> None:
    s = setup(POLICIES)
    create_topics(s.broker, list(s.topics.values()))
    pair = s.worker("--workers", "2").start()
    ports = (pair.web_port, pair.web_port + 1)
    single = s.worker(LEADSLA_APP_ID=s.app_id + "-single").start()  # its own group, the same input

    def split() -> bool:
        try:
            owned = [metric_sum(pair.metrics(p), "leadsla_owned_partitions") for p in ports]
        except (urllib.error.URLError, OSError):
            return False
        return min(owned) > 0 and sum(owned) == 4

    wait_for(split, 90, "the partitions split between the two workers")
    publish(s.broker, s.topics["input"], _input(datetime.now(UTC)))

    def figures(ms: list[dict]) -> tuple[float, ...]:
        return tuple(sum(metric_sum(m, name, **labels) for m in ms) for name, labels in FIGURES)

    expected = (30.0, 60.0, 12.0, 162.0, 102.0)
    wait_for(lambda: figures([single.metrics()]) == expected, 60, "one worker's figures")
    wait_for(lambda: figures([pair.metrics(p) for p in ports]) == expected, 60, "the two workers' figures, summed")
    for p in ports:  # each shows only the partitions it owns
        m = pair.metrics(p)
        assert metric_sum(m, "leadsla_partition_caught_up") == metric_sum(m, "leadsla_owned_partitions")
    assert pair.stop(signal.SIGTERM) == 0
    for p in ports:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{p}/ready", timeout=2)
            raise AssertionError(f"worker on :{p} still answers after the group was stopped")
        except (urllib.error.URLError, OSError):
            pass


def test_free_ports_are_free_blocks_outside_the_ephemeral_range_and_never_handed_out_twice() -> None:
    low, high = ephemeral_ports()
    firsts = [free_port(2) for _ in range(20)] + [free_port() for _ in range(20)]
    taken = [p for first in firsts[:20] for p in (first, first + 1)] + firsts[20:]
    assert len(set(taken)) == len(taken) == 60
    assert not [p for p in taken if low <= p <= high]  # where connect() takes its local ports
    for port in taken:  # each is free now
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def ready_on(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as r:
            return bool(json.loads(r.read())["ready"])
    except (OSError, ValueError):
        return False


def test_a_worker_whose_web_port_was_taken_before_it_bound_it_starts_on_other_ports(setup) -> None:
    """The race a port chosen in advance can lose: something binds the
    second port of a --workers 2 pair after it was chosen. ``leadsla run``
    refuses before it starts anything, so the rig starts it again elsewhere."""
    s = setup(POLICIES)
    create_topics(s.broker, list(s.topics.values()))
    pair = s.worker("--workers", "2")
    chosen = pair.web_port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", chosen + 1))
        squatter.listen()
        pair.start()
        ports = (pair.web_port, pair.web_port + 1)
        assert chosen + 1 not in ports and chosen not in ports
        assert pair.env["LEADSLA_WEB_PORT"] == str(pair.web_port)
        wait_for(lambda: all(ready_on(p) for p in ports), 90, "both workers ready on the new ports")
    # The refused attempt is kept for reading, but is not one of the worker's logs.
    assert len(pair.logs) == 1 and str(pair.web_port) in pair.logs[0].name
    refused = Path(s.tmp / f"worker-{chosen}.0.log").read_text()
    assert f"leadsla: web port 127.0.0.1:{chosen + 1} is in use" in refused
    assert pair.stop(signal.SIGTERM) == 0
