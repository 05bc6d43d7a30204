"""Broker trouble with real processes, each test on a broker of its own
(it is stopped and started again): a worker started before its broker waits
for it and then starts normally; a worker whose broker goes away says so in
one line, answers 503 on /ready meanwhile, says so again when the broker is
back, and goes on processing.

The embedded broker keeps everything in memory, so the broker that comes
back has no topics, no records and no committed offsets. The worker creates
its topics again (and says so); what the old broker held is gone. With a
broker that keeps its data (Apache Kafka) nothing needs creating and the
worker carries on from its committed offsets."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from leadsla.streams.broker import EmbeddedBroker

from .conftest import FIRST_TOUCH, Setup, Worker, free_port, metric_sum, wait_for
from .kafka import event, iso, publish, read_all

POLICIES = FIRST_TOUCH


@pytest.fixture
def own(tmp_path: Path) -> Iterator[tuple[Setup, list[EmbeddedBroker]]]:
    """A setup on a free port with no broker running yet; every broker
    started for it is appended to the list and stopped at the end."""
    listen = f"127.0.0.1:{free_port()}"
    policies = tmp_path / "policies.yaml"
    policies.write_text(POLICIES)
    tag = uuid.uuid4().hex[:8]
    s = Setup(broker=listen, tmp=tmp_path, policies=policies,
              topics={"input": f"lead-events-{tag}", "dlq": f"lead-events-dlq-{tag}", "outcomes": f"sla-outcomes-{tag}",
                      "periods": f"sla-periods-{tag}"},
              app_id=f"leadsla-test-{tag}")
    brokers: list[EmbeddedBroker] = []
    try:
        yield s, brokers
    finally:
        for w in s.workers:
            if w.proc is not None:
                w.stop()
        for b in brokers:
            b.stop()


def new_broker(s: Setup, brokers: list[EmbeddedBroker]) -> EmbeddedBroker:
    b = EmbeddedBroker(s.broker, log_file=s.tmp / f"tansu-{len(brokers)}.log")
    brokers.append(b)
    return b


def ready_status(w: Worker) -> int | None:
    """The HTTP status of /ready (None: no answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{w.web_port}/ready", timeout=2) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except (urllib.error.URLError, OSError):
        return None


def log_lines(w: Worker) -> list[str]:
    return w.logs[-1].read_text(errors="replace").splitlines()


def errors_in(lines: list[str]) -> list[str]:
    # leadsla's own format ("… ERROR leadsla: …") and Faust's ("[…] [pid] [ERROR] …")
    return [line for line in lines if " ERROR " in line or "[ERROR]" in line]


def warnings_in(lines: list[str]) -> list[str]:
    """WARNING lines and worse, in either format."""
    return [line for line in lines if any(f" {lvl} " in line or f"[{lvl}]" in line
                                          for lvl in ("WARNING", "ERROR", "CRITICAL"))]


def known(w: Worker, lead_id: str) -> bool:
    return w.lead(lead_id) is not None


def test_a_worker_started_before_its_broker_waits_and_starts(own: tuple[Setup, list[EmbeddedBroker]]) -> None:
    s, brokers = own
    broker = new_broker(s, brokers)
    w = s.worker()
    later = threading.Timer(5.0, broker.start)
    later.start()
    try:
        w.start()  # returns once /ready says ready
    finally:
        later.cancel()
        later.join()
    lines = log_lines(w)
    waiting = [m for line in lines
               if (m := re.search(rf"WARNING leadsla: waiting for the broker at {re.escape(s.broker)} "
                                  r"\(attempt (\d+), next in (\d+) s\): connection refused$", line))]
    # Attempts 1 s, 2 s, 4 s apart: about three before a broker started 5 s in.
    assert 2 <= len(waiting) <= 4, "\n".join(lines)
    assert [(int(m[1]), int(m[2])) for m in waiting] == [(n, 2 ** (n - 1)) for n in range(1, len(waiting) + 1)]
    assert any(f"the broker at {s.broker} answers (attempt {len(waiting) + 1})" in line for line in lines)
    assert not any("Traceback" in line for line in lines)
    assert errors_in(lines) == []
    # Started as on a broker that was there first: topics created, events processed.
    assert any(f"created topics {s.topics['input']}" in line for line in lines)
    publish(s.broker, s.topics["input"], [
        event(event_id="h1", lead_id="early", type="lead.handed_off", occurred_at=iso(datetime.now(UTC)), team="emea"),
    ])
    wait_for(lambda: known(w, "early"), 30, "the lead processed")


def test_a_broker_outage_is_two_lines_503_meanwhile_and_the_worker_resumes(
    own: tuple[Setup, list[EmbeddedBroker]],
) -> None:
    s, brokers = own
    new_broker(s, brokers).start()
    w = s.worker().start()
    now = datetime.now(UTC)
    publish(s.broker, s.topics["input"], [
        event(event_id="h1", lead_id="before", type="lead.handed_off", occurred_at=iso(now - timedelta(minutes=5)), team="emea"),
    ])
    wait_for(lambda: known(w, "before"), 30, "the first lead processed")
    assert ready_status(w) == 200

    brokers[-1].stop()
    wait_for(lambda: any("lost the broker" in line for line in log_lines(w)), 15, "the outage noticed")
    statuses = set()
    outage_metrics = w.metrics()
    for _ in range(24):  # 12 s more of outage, /ready asked twice a second
        statuses.add(ready_status(w))
        time.sleep(0.5)
    assert statuses == {503}
    assert metric_sum(outage_metrics, "leadsla_worker_ready") == 0
    assert metric_sum(outage_metrics, "leadsla_broker_up") == 0

    new_broker(s, brokers).start()  # empty: an in-memory broker forgot everything
    wait_for(lambda: any("broker back after" in line for line in log_lines(w)), 15, "the broker seen back")
    wait_for(lambda: ready_status(w) == 200, 60, f"ready again\n{w.tail()}")
    publish(s.broker, s.topics["input"], [
        event(event_id="h2", lead_id="after", type="lead.handed_off", occurred_at=iso(datetime.now(UTC)), team="emea"),
    ])
    wait_for(lambda: known(w, "after"), 60, f"a lead published after the outage processed\n{w.tail()}")
    # A broker that forgot the group makes the worker rejoin once it is back;
    # /ready answers 503 for that rebalance and 200 again after its recovery.
    wait_for(lambda: ready_status(w) == 200, 60, f"ready after the outage's rebalance\n{w.tail()}")

    lines = log_lines(w)
    lost = [line for line in lines if "lost the broker" in line]
    back = [line for line in lines if "broker back after" in line]
    assert len(lost) == 1 and len(back) == 1, "\n".join(lines)
    assert re.search(rf"WARNING leadsla: lost the broker at {re.escape(s.broker)}: ", lost[0])
    # One line for the comeback, saying too that the broker came back empty
    # and what the worker did about it.
    took = re.search(rf"WARNING leadsla: broker back after (\d+) s at {re.escape(s.broker)}, empty: it lost every "
                     r"topic of this worker and what they held, .*; created (.*) again with 4 partitions; this "
                     r"worker's state written to the new changelogs \((\d+) records\) "
                     r"\((\d+) Kafka client errors not logged meanwhile\)$", back[0])
    assert took is not None and 12 <= int(took[1]) <= 40, back[0]
    assert s.topics["input"] in took[2] and f"{s.app_id}-leads-changelog" in took[2]
    assert int(took[3]) >= 1  # the lead "before", at least
    assert len(errors_in(lines)) < 10, "\n".join(errors_in(lines))
    assert not any("Traceback" in line for line in lines)
    m = w.metrics()
    assert metric_sum(m, "leadsla_broker_up") == 1
    assert metric_sum(m, "leadsla_broker_outages_total") == 1
    # The count in the line is this outage's; the counter's can be a little
    # higher (records dropped while a check they asked for ran).
    assert metric_sum(m, "leadsla_broker_errors_suppressed_total") >= int(took[4]) > 0
    assert metric_sum(m, "leadsla_worker_ready") == 1


@pytest.mark.parametrize("outage_s", [3, 15])
def test_a_restarted_worker_carries_on_when_its_broker_comes_back_empty(
    own: tuple[Setup, list[EmbeddedBroker]], outage_s: int,
) -> None:
    """A worker that recovered its tables from the changelogs (here: it was
    restarted) keeps the changelog offsets it read to; a memory broker that
    comes back has empty changelogs. The worker must neither crash on that
    nor forget the state it holds, and must decide what comes after."""
    s, brokers = own
    new_broker(s, brokers).start()
    w = s.worker()
    w.start()
    now = datetime.now(UTC)
    publish(s.broker, s.topics["input"], [
        event(event_id=f"h{i}", lead_id=f"before-{i}", type="lead.handed_off",
              occurred_at=iso(now - timedelta(minutes=5)), team="emea")
        for i in range(8)
    ])
    wait_for(lambda: all(known(w, f"before-{i}") for i in range(8)), 30, "the first leads processed")
    assert w.stop() == 0
    w.start()  # recovers the eight leads from the changelogs
    assert all(known(w, f"before-{i}") for i in range(8))

    brokers[-1].stop()
    wait_for(lambda: any("lost the broker" in line for line in log_lines(w)), 15, "the outage noticed")
    time.sleep(outage_s)
    new_broker(s, brokers).start()  # same port, empty
    back_at = time.monotonic()
    wait_for(lambda: any("broker back after" in line for line in log_lines(w)), 15, "the broker seen back")
    while time.monotonic() - back_at < 20:
        assert w.proc is not None and w.proc.poll() is None, f"the worker exited:\n{w.tail(60)}"
        time.sleep(0.5)
    wait_for(w.ready, 60, f"ready again\n{w.tail()}")
    assert all(known(w, f"before-{i}") for i in range(8))  # what the worker held is still there

    now = datetime.now(UTC)
    publish(s.broker, s.topics["input"], [
        event(event_id="h-after", lead_id="after", type="lead.handed_off",
              occurred_at=iso(now - timedelta(seconds=40)), team="emea"),
        event(event_id="c-after", lead_id="after", type="lead.contact_attempt",
              occurred_at=iso(now - timedelta(seconds=10)), team="emea"),
    ])
    records = read_all(s.broker, s.topics["outcomes"], expect=1, timeout=60)
    decided = [(v["lead_id"], v["policy"], v["outcome"]) for v in (orjson.loads(r.value) for r in records)]
    assert decided == [("after", "first_touch", "met")], w.tail()
    assert w.proc is not None and w.proc.poll() is None
    lines = log_lines(w)

    # The new broker's changelogs hold the state again: a restart recovers it.
    assert w.stop() == 0
    w.start()
    assert all(known(w, f"before-{i}") for i in range(8))
    after = w.lead("after")
    assert after is not None and after["clocks"]["first_touch"]["last_outcome"] == "met", after

    assert not any("Traceback" in line or "ConsistencyError" in line or "crash" in line for line in lines), \
        "\n".join(lines)
    # Two lines for the whole outage: it began; the broker is back, empty.
    said = warnings_in(lines)
    assert len(said) == 2, "\n".join(said)
    assert re.search(rf"WARNING leadsla: lost the broker at {re.escape(s.broker)}: ", said[0]), said[0]
    took = re.search(rf"WARNING leadsla: broker back after ([\d.]+) s at {re.escape(s.broker)}, empty: .*; this "
                     r"worker's state written to the new changelogs \((\d+) records\) ", said[1])
    assert took is not None and outage_s <= float(took[1]) <= outage_s + 15, said[1]
    # The eight leads, each with its share of the window cells: some records.
    assert int(took[2]) >= 8, said[1]


def test_a_bad_broker_url_is_refused_at_start_up_in_one_line() -> None:
    """The real command, as an operator starts it: no 30 s wait, no traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSLA_")}
    env["LEADSLA_BROKER"] = "kafka://kafka.internal:nine-o-nine-two"
    done = subprocess.run([sys.executable, "-m", "leadsla", "run"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--broker / LEADSLA_BROKER" in lines[0] and "nine-o-nine-two" in lines[0], done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
