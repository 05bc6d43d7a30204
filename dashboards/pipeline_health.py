"""Pipeline health: is leadsla itself working? Workers ready, partitions
owned, lag, events in, dead letters, duplicates and decisions out.

Per-worker gauges (readiness, seconds since the last event, partitions per
worker) are read raw: they describe one instance each, there is nothing to
aggregate, and a recording rule would only hide which worker is stuck.
"""

from __future__ import annotations

from typing import Any

from leadsla.dashboards import panels as p
from leadsla.dashboards.slo import JOB, NO_EVENTS_FOR
from leadsla.models.durations import parse_duration

UID = "leadsla-pipeline-health"
TITLE = "leadsla · Pipeline health"

WORKER = f'{{job="{JOB}"}}'
BY_INSTANCE = "{{instance}}"
BY_JOB = "{{job}}"


def workers_ready() -> Any:
    return p.stat_panel(
        "Workers ready",
        "Per worker: ready once its state is recovered and it processes events (leadsla_worker_ready). "
        "Not ready for 5 minutes fires LeadSlaWorkerNotReady; a worker missing here is not scraped at all "
        "(LeadSlaTargetDown).",
        [p.query(f"leadsla_worker_ready{WORKER}", BY_INSTANCE, instant=True)],
        p.COUNT, ((None, "red"), (1, "green")),
    ).mappings(p.ready_mappings())


def owned_partitions() -> Any:
    return p.stat_panel(
        "Partitions owned",
        "Partitions of lead-events owned by all workers together (job:leadsla_owned_partitions:sum); it "
        "should equal the topic's partition count. Fewer while the consumer group rebalances.",
        [p.query("job:leadsla_owned_partitions:sum", BY_JOB, instant=True)],
        p.COUNT, p.NEUTRAL, decimals=0,
    )


def consumer_lag_now() -> Any:
    return p.stat_panel(
        "Records waiting",
        "Records of lead-events not yet processed, all partitions (job:leadsla_consumer_lag:sum). "
        "LeadSlaConsumerLagGrowing fires above 1000 when it keeps growing.",
        [p.query("job:leadsla_consumer_lag:sum", BY_JOB, instant=True)],
        p.RECORDS, p.LAG_STEPS, decimals=0,
    )


def calendar_open() -> Any:
    return p.stat_panel(
        "Sales calendar open",
        "Whether any policy's business-hours calendar is open now (job:leadsla_calendar_open:max). "
        "LeadSlaNoEventsInBusinessHours only fires while it is open.",
        [p.query("job:leadsla_calendar_open:max", BY_JOB, instant=True)],
        p.COUNT, p.NEUTRAL,
    ).mappings(p.open_mappings())


def seconds_since_last_event() -> Any:
    quiet = parse_duration(NO_EVENTS_FOR).total_seconds()
    return p.stat_panel(
        "Time since last event",
        "Per worker: time since it last received a lead-events record (leadsla_seconds_since_last_event). "
        f"Red after {NO_EVENTS_FOR}, the quiet time after which LeadSlaNoEventsInBusinessHours looks for "
        "events in business hours.",
        [p.query(f"leadsla_seconds_since_last_event{WORKER}", BY_INSTANCE, instant=True)],
        p.SECONDS, ((None, "green"), (quiet / 6, "orange"), (quiet, "red")), decimals=0,
    )


def events_per_second() -> Any:
    return p.timeseries_panel(
        "Events accepted per second",
        "Lead events accepted by all workers, duplicates and dead letters excluded, 5-minute rate "
        "(job:leadsla_events:rate5m).",
        [p.query("job:leadsla_events:rate5m", BY_JOB)],
        p.EVENTS_PER_SECOND, min_val=0,
    )


def decisions_per_second() -> Any:
    return p.timeseries_panel(
        "Decisions per second",
        "SLA clocks decided (met or breached) by all workers, 5-minute rate "
        "(job:leadsla_sla_decisions:rate5m).",
        [p.query("job:leadsla_sla_decisions:rate5m", BY_JOB)],
        p.EVENTS_PER_SECOND, min_val=0,
    )


def dead_letters() -> Any:
    return p.timeseries_panel(
        "Dead letters by reason",
        "Records sent to lead-events-dlq per second, by reason: malformed, invalid, unknown_type, too_large "
        "(job_reason:leadsla_events_rejected:rate5m). The records keep their key and value and carry reason "
        "and error headers.",
        [p.query("job_reason:leadsla_events_rejected:rate5m", "{{reason}}")],
        p.EVENTS_PER_SECOND, min_val=0,
    )


def duplicates() -> Any:
    return p.timeseries_panel(
        "Duplicates per second",
        "Events dropped because their event_id was already seen for the lead, 5-minute rate "
        "(job:leadsla_events_duplicate:rate5m). A burst usually means a producer re-sent a batch.",
        [p.query("job:leadsla_events_duplicate:rate5m", BY_JOB)],
        p.EVENTS_PER_SECOND, min_val=0,
    )


def consumer_lag() -> Any:
    return p.timeseries_panel(
        "Consumer lag",
        "Records of lead-events not yet processed, all partitions (job:leadsla_consumer_lag:sum). A lag that "
        "keeps growing means decisions, and breaches, are found late.",
        [p.query("job:leadsla_consumer_lag:sum", BY_JOB)],
        p.RECORDS, min_val=0, steps=p.LAG_STEPS,
    )


def partitions_per_worker() -> Any:
    return p.timeseries_panel(
        "Partitions per worker",
        "Partitions each worker owns (leadsla_owned_partitions): the split of the consumer group. A worker at "
        "0 is idle or rebalancing.",
        [p.query(f"leadsla_owned_partitions{WORKER}", BY_INSTANCE)],
        p.COUNT, min_val=0,
    )


def dashboard() -> dict[str, Any]:
    rows = [
        p.Row(5, [(workers_ready(), 6), (owned_partitions(), 4), (consumer_lag_now(), 4), (calendar_open(), 4),
                  (seconds_since_last_event(), 6)]),
        p.Row(8, [(events_per_second(), 12), (decisions_per_second(), 12)]),
        p.Row(8, [(dead_letters(), 12), (duplicates(), 12)]),
        p.Row(8, [(consumer_lag(), 12), (partitions_per_worker(), 12)]),
    ]
    return p.board(
        UID, TITLE,
        "Is leadsla itself healthy: workers, partitions, lag, events in, dead letters, duplicates and "
        "decisions out. Generated by `leadsla generate`.",
        [p.datasource_variable()],
        rows, time_from="now-6h", refresh="30s",
    )
