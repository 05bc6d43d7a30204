"""A real breach travels broker → worker → Prometheus → Alertmanager → a
webhook, with the generated rules and Alertmanager configuration; a timely
follow-up for another lead raises nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from leadsla.dashboards.alertmanager import alertmanager_config
from leadsla.dashboards.grafana import dashboards
from leadsla.dashboards.render import render, write
from leadsla.models.policy import parse_policies

from .conftest import wait_for
from .kafka import create_topics, event, iso, publish
from .servers import Webhook, start_alertmanager, start_prometheus

# A rep's breach series is created (at 0) when its clock crosses the at-risk
# threshold, and Prometheus must scrape it at 0 once before the breach for
# increase() to count it on a server that started minutes ago (the rules'
# "born in the window" case needs a window of scrapes). With a 1 h goal the
# warning comes 12 minutes ahead; with this 3 s goal an at-risk share of 0.1
# gives 2.7 s (a scrape a second) instead of 0.6 s.
POLICIES = """
policies:
  - name: quick
    start: lead.handed_off
    stop: [lead.contact_attempt, lead.connected]
    goal: 3s
    at_risk: 0.1
"""


def grafana_vars(expr: str) -> str:
    """What Grafana does to a query with every option of each variable selected."""
    return (expr.replace("$policy", ".*").replace("$team", ".*").replace("$target", ".*")
            .replace("$__rate_interval", "1m"))



def test_breach_alert_reaches_the_webhook(setup, tmp_path: Path) -> None:
    s = setup(POLICIES)
    create_topics(s.broker, list(s.topics.values()))
    rules = tmp_path / "rules"
    write(render(parse_policies(POLICIES), "policies.yaml"), rules)
    hook = Webhook()
    am_config = alertmanager_config(hook.url, teams=("emea", "na_east"))
    # Same routes and inhibitions; only the waits are shortened for a test.
    am_config["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    am = start_alertmanager(tmp_path, am_config)
    w = s.worker().start()
    prom = start_prometheus(
        tmp_path,
        [rules / "prometheus/recording-rules.yml", rules / "prometheus/alerts.yml"],
        [f"127.0.0.1:{w.web_port}"],
        am.url.removeprefix("http://"),
    )
    try:
        wait_for(lambda: prom.get("/api/v1/query", query='up{job="leadsla"} == 1')["data"]["result"], 30,
                 "Prometheus scraping the worker")
        now = datetime.now(UTC)
        publish(s.broker, s.topics["input"], [
            event(event_id="h1", lead_id="lead-silent", type="lead.handed_off", occurred_at=iso(now), team="emea", rep="rep-9"),
            event(event_id="h2", lead_id="lead-quick", type="lead.handed_off", occurred_at=iso(now), team="na_east", rep="rep-3"),
            event(event_id="a2", lead_id="lead-quick", type="lead.contact_attempt", occurred_at=iso(now + timedelta(seconds=1))),
        ])

        def breach_alert() -> list:
            return [a for a in hook.alerts() if a["labels"]["alertname"] == "LeadSlaDeadlineBreached"]

        alerts = wait_for(breach_alert, 120, "LeadSlaDeadlineBreached at the webhook", interval=1)
        labels = alerts[0]["labels"]
        assert (labels["policy"], labels["team"], labels["rep"], labels["severity"]) == ("quick", "emea", "rep-9", "warning")
        assert "lead-silent" not in str(alerts)  # lead ids never travel as labels
        assert alerts[0]["annotations"]["runbook_url"].endswith("#leadsladeadlinebreached")
        notified = [n for n in hook.received if any(a["labels"]["alertname"] == "LeadSlaDeadlineBreached" for a in n["alerts"])]
        assert notified[0]["path"] == "/team-emea"  # routed by team

        # The timely lead met its goal: Prometheus has its decision, and no
        # breach alert ever names its team.
        met = prom.get("/api/v1/query", query='policy_team:leadsla_sla_decisions:increase5m{team="na_east"}')
        assert met["status"] == "success" and float(met["data"]["result"][0]["value"][1]) > 0
        firing = prom.get("/api/v1/alerts")["data"]["alerts"]
        assert not [a for a in firing if a["labels"].get("team") == "na_east"]
        assert not [a for a in hook.alerts() if a["labels"].get("team") == "na_east"]

        # Every dashboard query runs against this Prometheus; the team
        # screen's core panels show data.
        boards = {b["uid"]: b for b in dashboards(parse_policies(POLICIES)).values()}
        for uid, board in boards.items():
            for panel in board["panels"]:
                for target in panel.get("targets", []):
                    answer = prom.get("/api/v1/query", query=grafana_vars(target["expr"]))
                    assert answer["status"] == "success", (uid, panel["title"], answer)
        core = {"Compliance today", "Leads waiting now", "Breaches in the last 24 h", "Compliance today by team",
                "Follow-up speed vs goal"}
        screen = [p for p in boards["leadsla-team-screen"]["panels"] if p["title"] in core]
        assert {p["title"] for p in screen} == core
        for panel in screen:
            query = grafana_vars(panel["targets"][0]["expr"])
            result = wait_for(lambda q=query: prom.get("/api/v1/query", query=q)["data"]["result"], 30,
                              f"data for {panel['title']}: {query}")
            assert any(r["value"][1] != "NaN" for r in result), (panel["title"], result)
        compliance = prom.get("/api/v1/query", query='policy:leadsla_sla_compliance:ratio_rate1d{policy="quick"}')
        assert float(compliance["data"]["result"][0]["value"][1]) == 0.5  # one met, one breached
    finally:
        prom.stop()
        am.stop()
        hook.stop()
