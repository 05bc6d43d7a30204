"""No personal data in logs or metric labels: a real worker (log level info,
then restarted at warning on the same group, recovering the state) processes
events whose lead ids, event ids, reps, teams and attributes are e-mail
addresses and people's names, among them records that are dead-lettered,
duplicates, met clocks and breaches. Neither log nor the whole /metrics text
holds any of those strings, nor an address's local part; teams that hold an
'@' are exported as ``other``."""

from __future__ import annotations

import signal
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from .conftest import FIRST_TOUCH, Setup, Worker, metric_sum, wait_for
from .kafka import create_topics, event, iso, publish

JANE = "jane.doe@example.com"
JOHN = "john.smith@corp.example"
MARIA = "maria.garcia@mail.example"
TEAM_OPS = "emea.ops@corp.example"
TEAM_SALES = "sales.team@corp.example"
EMAILS = (JANE, JOHN, MARIA, TEAM_OPS, TEAM_SALES)
NAMES = ("Jane Doe", "María García", "Quentin Vexley")
# What must appear nowhere: the whole strings, the addresses' local parts and
# domains, and the names' parts (also as JSON would escape them).
SECRETS = (*EMAILS, *NAMES, *(e.split("@")[0] for e in EMAILS), "example.com", "corp.example", "mail.example",
           "Jane", "Quentin", "Vexley", "García", "Garc\\u00eda", "María", "Mar\\u00eda")


def pd_event(lead: str, eid: str, etype: str, at: datetime, **more: Any) -> tuple[bytes, bytes]:
    return event(event_id=eid, lead_id=lead, type=etype, occurred_at=iso(at), **more)


def bad_records(lead: str, now: datetime) -> list[tuple[bytes | None, bytes | None]]:
    """Records of ``lead`` that are dead-lettered, each for another reason."""
    good = orjson.dumps({"event_id": f"{lead} (bad)", "lead_id": lead, "type": "lead.mql",
                         "occurred_at": iso(now - timedelta(minutes=5)), "attributes": {"email": JANE, "name": NAMES[0]}})
    return [
        (JOHN.encode(), good),  # invalid: the key is another lead
        (None, good),  # invalid: no key
        (lead.encode(), good[:-7]),  # malformed
        (lead.encode(), good.replace(b'"lead.mql"', b'"lead.emailed_jane.doe@example.com"')),  # unknown_type
        (lead.encode(), good.replace(b"}}", b'},"notes":"' + b"Jane Doe " * 8000 + b'"}')),  # too_large
        (lead.encode(), good[:-1] + b',"occurred_at":"9999-01-01T00:00:00Z"}'),  # invalid: the last one counts
        (lead.encode(), good.replace(b'"attributes":{', b'"amount":"John Smith","attributes":{')),  # invalid
    ]


def first_pass(now: datetime) -> tuple[list[tuple[bytes | None, bytes | None]], dict[str, int]]:
    recs = [
        # Breached: handed off three hours ago to an e-mail team and rep, never touched.
        pd_event(JANE, f"{JANE}#handoff", "lead.handed_off", now - timedelta(hours=3), team=TEAM_OPS, rep=JOHN,
                 attributes={"email": JANE, "name": "Jane Doe", "owner": JOHN}),
        # Met: a name as lead id, a name as rep.
        pd_event("Jane Doe", "Jane Doe / handoff", "lead.handed_off", now - timedelta(minutes=40), team=TEAM_SALES,
                 rep="Quentin Vexley", segment="Jane Doe", region=MARIA),
        pd_event("Jane Doe", "Jane Doe / call", "lead.contact_attempt", now - timedelta(minutes=30), channel="call",
                 rep="Quentin Vexley", attributes={"callee": "Jane Doe", "email": JANE}),
        # Breached: a name as lead id, an e-mail rep.
        pd_event("María García", "María García:1", "lead.handed_off", now - timedelta(hours=2), team=TEAM_SALES,
                 rep=MARIA, persona="María García"),
        pd_event(MARIA, f"{MARIA}#created", "lead.created", now - timedelta(hours=5), attributes={"email": MARIA}),
    ]
    recs.append(recs[0])  # a duplicate
    recs += bad_records(JANE, now)
    return recs, {"accepted": 5, "duplicates": 1, "rejected": 7, "met": 1, "breached": 2, "handoffs": 3}


def second_pass(now: datetime) -> tuple[list[tuple[bytes | None, bytes | None]], dict[str, int]]:
    recs = [
        # Follow-up of a lead the first worker started, and a new breach.
        pd_event(MARIA, f"{MARIA}#handoff", "lead.handed_off", now - timedelta(hours=4), team=TEAM_OPS, rep=JOHN),
        pd_event(JOHN, f"{JOHN}#handoff", "lead.handed_off", now - timedelta(minutes=20), team=TEAM_OPS,
                 rep="Quentin Vexley", attributes={"email": JOHN, "name": "Quentin Vexley"}),
        pd_event(JOHN, f"{JOHN}#connected", "lead.connected", now - timedelta(minutes=10), rep=JOHN),
        pd_event("Jane Doe", "Jane Doe / call", "lead.contact_attempt", now - timedelta(minutes=30)),  # duplicate
    ]
    recs += bad_records(MARIA, now)
    return recs, {"accepted": 3, "duplicates": 1, "rejected": 7, "met": 1, "breached": 1, "handoffs": 2}


def metrics_text(w: Worker) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{w.web_port}/metrics", timeout=5) as r:
        return r.read().decode()


def settle(w: Worker, want: dict[str, int]) -> dict:
    def done() -> dict | None:
        assert w.proc is not None and w.proc.poll() is None, w.tail(80)
        mt = w.metrics()
        got = {
            "accepted": metric_sum(mt, "leadsla_events_total"),
            "duplicates": metric_sum(mt, "leadsla_events_duplicate_total"),
            "rejected": metric_sum(mt, "leadsla_events_rejected_total"),
            "met": metric_sum(mt, "leadsla_sla_outcomes_total", outcome="met"),
            "breached": metric_sum(mt, "leadsla_sla_outcomes_total", outcome="breached"),
            "handoffs": metric_sum(mt, "leadsla_handoffs_total"),
        }
        return mt if got == want else None

    return wait_for(done, 90, f"the worker to count {want}", interval=0.5)


def leaks(text: str) -> list[str]:
    low = text.lower()
    return [s for s in SECRETS if s.lower() in low]


def run(s: Setup, level: str, recs: list[tuple[bytes | None, bytes | None]], want: dict[str, int]) -> tuple[Worker, str]:
    w = s.worker(LEADSLA_LOG_LEVEL=level).start()
    publish(s.broker, s.topics["input"], recs)
    mt = settle(w, want)
    # Teams that hold an '@' are 'other'; e-mail reps on breaches too.
    assert metric_sum(mt, "leadsla_handoffs_total", team="other") == want["handoffs"]
    assert metric_sum(mt, "leadsla_sla_outcomes_total", team="other") == want["met"] + want["breached"]
    assert metric_sum(mt, "leadsla_sla_breaches_total", team="other") == want["breached"]
    text = metrics_text(w)
    assert not leaks(text), f"/metrics at {level}: {leaks(text)}\n" + "\n".join(
        line for line in text.splitlines() if leaks(line))
    return w, text


def test_no_personal_data_in_logs_or_labels(setup) -> None:
    s = setup(FIRST_TOUCH)
    create_topics(s.broker, list(s.topics.values()))
    now = datetime.now(UTC).replace(microsecond=0)

    recs, want = first_pass(now)
    w1, _ = run(s, "info", recs, want)
    assert metric_sum(w1.metrics(), "leadsla_sla_breaches_total", rep="other") == want["breached"]
    assert w1.stop(signal.SIGTERM) == 0, w1.tail()

    # The same group at warning: it recovers the leads of the first pass.
    recs, want = second_pass(now)
    w2, _ = run(s, "warning", recs, want)
    w2.stop(signal.SIGTERM)

    for w in (w1, w2):
        for path in w.logs:
            text = path.read_text(errors="replace")
            assert text.strip(), path  # the scan reads a real log
            found = leaks(text)
            assert not found, f"{path.name}: {found}\n" + "\n".join(line for line in text.splitlines() if leaks(line))
            assert "Traceback" not in text, text[-4000:]


def test_a_reps_name_is_not_a_label(setup) -> None:
    """A rep given by name, not by an id, on a breached clock."""
    s = setup(FIRST_TOUCH)
    create_topics(s.broker, list(s.topics.values()))
    now = datetime.now(UTC).replace(microsecond=0)
    w = s.worker().start()
    publish(s.broker, s.topics["input"], [
        pd_event("lead-1", "e-1", "lead.handed_off", now - timedelta(hours=3), team="emea", rep="Quentin Vexley"),
    ])
    wait_for(lambda: metric_sum(w.metrics(), "leadsla_sla_outcomes_total", outcome="breached") == 1, 60,
             "the breach")
    text = metrics_text(w)
    assert not leaks(text), [line for line in text.splitlines() if leaks(line)]

