"""Shared helpers for the runtime tests: a settings factory, a fake sink, a
controllable wall clock and highwater, and a rig that drives an ``Engine``
directly (no Kafka, no Faust, no network)."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from leadsla.models.events import format_timestamp_us
from leadsla.models.policy import PolicySet
from leadsla.streams.engine import Engine, LeadEntry
from leadsla.streams.metrics import Metrics, RuntimeCollector
from leadsla.streams.settings import Settings
from tests.models.conftest import MINIMAL_YAML, H, M, S, pol, ts

__all__ = ["MINIMAL_YAML", "H", "M", "S", "T0", "FakeSink", "Rig", "WallClock", "pol", "record", "ts"]

# A second boundary, a minute boundary and an hour boundary (a Sunday in UTC).
T0 = ts("2026-11-22T09:00:00Z")


@pytest.fixture(autouse=True)
def _no_leadsla_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read LEADSLA_* from the environment: start every test clean."""
    for name in list(os.environ):
        if name.startswith("LEADSLA_"):
            monkeypatch.delenv(name)


def record(lead_id: str, etype: str, at: int, event_id: str, **fields: Any) -> tuple[bytes, bytes]:
    """(key, value) of one lead-events record, as an upstream producer writes it."""
    value = {"event_id": event_id, "lead_id": lead_id, "type": etype, "occurred_at": format_timestamp_us(at), **fields}
    return lead_id.encode(), orjson.dumps(value)


@dataclass
class FakeSink:
    persisted: list[tuple[int, str, LeadEntry | None]] = field(default_factory=list)
    outcomes: list[tuple[str, bytes]] = field(default_factory=list)
    dead: list[tuple[bytes | None, bytes | None, str, str]] = field(default_factory=list)
    windows: list[tuple[int, str, float | None]] = field(default_factory=list)
    deliveries: list[tuple[int, str, list[float] | None]] = field(default_factory=list)
    period_cells: list[tuple[int, str, list[float] | None]] = field(default_factory=list)
    reports: list[tuple[str, bytes, int | None]] = field(default_factory=list)
    periods: list[tuple[str, bytes]] = field(default_factory=list)

    def persist(self, partition: int, lead_id: str, entry: LeadEntry | None) -> None:
        self.persisted.append((partition, lead_id, entry))

    def persist_now(self, partition: int, lead_id: str, entry: LeadEntry | None) -> None:
        self.persisted.append((partition, lead_id, entry))

    def outcome(self, lead_id: str, value: bytes) -> None:
        self.outcomes.append((lead_id, value))

    def dead_letter(self, key: bytes | None, value: bytes | None, reason: str, error: str) -> None:
        self.dead.append((key, value, reason, error))

    def window(self, partition: int, key: str, value: float | None) -> None:
        self.windows.append((partition, key, value))

    def delivery(self, partition: int, key: str, value: list[float] | None) -> None:
        self.deliveries.append((partition, key, value))

    def period_cell(self, partition: int, key: str, value: list[float] | None) -> None:
        self.period_cells.append((partition, key, value))

    def period_report(self, key: str, value: bytes, partition: int | None = None) -> None:
        self.reports.append((key, value, partition))

    def period_record(self, name: str, value: bytes) -> None:
        self.periods.append((name, value))

    def records(self) -> list[dict[str, Any]]:
        """Every sla-outcomes value so far, decoded; the key must be the lead id."""
        out = []
        for key, value in self.outcomes:
            rec = orjson.loads(value)
            assert rec["lead_id"] == key
            out.append(rec)
        return out

    def summary(self) -> list[tuple[str, str, str]]:
        return [(r["lead_id"], r["policy"], r["outcome"]) for r in self.records()]


@dataclass
class WallClock:
    now: int

    def __call__(self) -> int:
        return self.now


SMALL = {
    "allowed_lateness": 2,
    "replay_horizon": "1d",
    "max_clock_skew": "15m",
    "state_ttl": "30d",
}


class Rig:
    """An Engine with everything around it in memory."""

    def __init__(
        self,
        policies: str | PolicySet = MINIMAL_YAML,
        wall: int = T0,
        store: dict[str, LeadEntry] | None = None,
        window_store: dict[str, float] | None = None,
        delivery_store: dict[str, list[float]] | None = None,
        period_store: dict[str, list[float]] | None = None,
        **settings: Any,
    ) -> None:
        self.policies = policies if isinstance(policies, PolicySet) else pol(policies)
        self.settings = Settings(**{**SMALL, **settings})
        self.registry = CollectorRegistry()
        self.metrics = Metrics(self.registry, self.policies, self.settings.max_team_labels)
        self.store: dict[str, LeadEntry] = {} if store is None else store
        self.window_store: dict[str, float] = {} if window_store is None else window_store
        self.delivery_store: dict[str, list[float]] = {} if delivery_store is None else delivery_store
        self.period_store: dict[str, list[float]] = {} if period_store is None else period_store
        self.sink = FakeSink()
        self.wall = WallClock(wall)
        self.hw: dict[int, int] = {}
        self.following: set[int] = set()
        self.next_offset: dict[int, int] = defaultdict(int)
        self.engine = Engine(
            self.settings,
            self.policies,
            self.metrics,
            store=self.store,
            windows=self.window_store,
            sink=self.sink,
            highwater=self.highwater,
            wall_us=self.wall,
            deliveries=self.delivery_store,
            period_cells=self.period_store,
        )
        self.registry.register(RuntimeCollector(self.engine.views.snapshot, self.policies))

    def send_raw(self, key: bytes | None, value: bytes | None, partition: int = 0) -> int:
        offset = self.next_offset[partition]
        self.next_offset[partition] += 1
        self.engine.handle(partition, offset, key, value)
        return offset

    def send(self, lead_id: str, etype: str, at: int, event_id: str, partition: int = 0, **fields: Any) -> int:
        return self.send_raw(*record(lead_id, etype, at, event_id, **fields), partition=partition)

    def highwater(self, partition: int) -> int | None:
        if partition in self.following:
            return self.next_offset[partition]
        return self.hw.get(partition)

    def live(self, partition: int = 0) -> None:
        """From now on the consumer is at the end of the partition: every record
        handled is the last one there is (caught up, live mode). Like the app on
        assignment, the engine then (re)builds the partition's runtime."""
        self.following.add(partition)
        self.engine.rebuild([partition], {partition: self.next_offset[partition]})

    def sample(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)

    def exposition(self) -> str:
        return generate_latest(self.registry).decode()
