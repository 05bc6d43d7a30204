"""Grafana: the dashboards (built with grafana-foundation-sdk, one module per
dashboard) and the provisioning files that load them and the Prometheus
datasource into the compose stack's Grafana."""

from __future__ import annotations

from typing import Any

from leadsla.dashboards import marketing, pipeline_health, sales_followup, team_screen
from leadsla.models.policy import PolicySet

FOLDER = "leadsla"  # folder title and UID, in provisioning and for `leadsla dashboards push`
DASHBOARDS_DIR = "/var/lib/grafana/dashboards/leadsla"  # where compose mounts grafana/dashboards/
PROMETHEUS_UID = "leadsla-prometheus"
PROMETHEUS_URL = "http://prometheus:9090"
SCRAPE_INTERVAL = "15s"  # as in render.prometheus_config: Grafana's $__rate_interval needs it

MARKETING_UID = marketing.UID

UIDS = (team_screen.UID, sales_followup.UID, marketing.UID, pipeline_health.UID)


def dashboards(policies: PolicySet) -> dict[str, dict[str, Any]]:
    """Relative output path -> dashboard JSON data (a Grafana dashboard model)."""
    boards = (team_screen.dashboard(policies), sales_followup.dashboard(policies), marketing.dashboard(policies),
              pipeline_health.dashboard())
    return {f"grafana/dashboards/{board['uid']}.json": board for board in boards}


def provisioning() -> dict[str, dict[str, Any]]:
    """Relative output path -> Grafana provisioning file data (YAML)."""
    return {
        "grafana/provisioning/datasources/prometheus.yml": {
            "apiVersion": 1,
            "datasources": [{
                "name": "Prometheus",
                "uid": PROMETHEUS_UID,
                "type": "prometheus",
                "access": "proxy",
                "url": PROMETHEUS_URL,
                "isDefault": True,
                "editable": False,
                "jsonData": {"timeInterval": SCRAPE_INTERVAL},
            }],
        },
        "grafana/provisioning/dashboards/leadsla.yml": {
            "apiVersion": 1,
            "providers": [{
                "name": "leadsla",
                "orgId": 1,
                "folder": FOLDER,
                "folderUid": FOLDER,
                "type": "file",
                "disableDeletion": False,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {"path": DASHBOARDS_DIR, "foldersFromFilesStructure": False},
            }],
        },
    }
