"""docker-compose.yml cannot run here (no Docker engine); these checks hold it
to what it mounts and names: generated files that exist, one scrape target
per worker, settings leadsla knows."""

from __future__ import annotations

from pathlib import Path

import yaml

from leadsla.streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_bind_mount_exists_and_compose_mounts_only_generated_or_policy_files() -> None:
    for name, svc in compose()["services"].items():
        for vol in svc.get("volumes", []):
            host = vol.split(":")[0]
            assert (ROOT / host).exists(), f"{name} mounts missing {host}"
            assert host.startswith("./dashboards/generated/") or host.endswith("policies.example.yaml"), (name, host)


def test_prometheus_scrapes_every_worker() -> None:
    services = compose()["services"]
    workers = sorted(n for n, s in services.items() if s.get("command") == ["run"])
    assert workers == ["leadsla-1", "leadsla-2"]
    prom = yaml.safe_load((ROOT / "dashboards/generated/prometheus/prometheus.yml").read_text())
    targets = prom["scrape_configs"][0]["static_configs"][0]["targets"]
    assert sorted(targets) == [f"{w}:6066" for w in workers]
    assert prom["rule_files"] == ["/etc/prometheus/leadsla/recording-rules.yml", "/etc/prometheus/leadsla/alerts.yml"]
    assert "--config.file=/etc/prometheus/leadsla/prometheus.yml" in services["prometheus"]["command"]


def test_worker_environment_is_made_of_real_settings() -> None:
    known = {f"LEADSLA_{n.upper()}" for n in Settings.model_fields}
    for name, svc in compose()["services"].items():
        for key in svc.get("environment", {}):
            if key.startswith("LEADSLA_"):
                assert key in known, (name, key)


def test_grafana_gets_provisioning_and_dashboards() -> None:
    grafana = compose()["services"]["grafana"]
    mounts = {v.split(":")[1] for v in grafana["volumes"]}
    assert mounts == {"/etc/grafana/provisioning", "/var/lib/grafana/dashboards/leadsla"}
    provider = yaml.safe_load((ROOT / "dashboards/generated/grafana/provisioning/dashboards/leadsla.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/leadsla"
