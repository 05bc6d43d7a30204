"""streams.recovery's direct paths give exactly what Faust's give: the lead
table's records decoded without Faust's serializer registry, and changelog
batches applied to a memory store's dict directly (tombstones included);
and Engine.rebuild's gauges counted a set of leads at a time, as they were
one lead at a time."""

from __future__ import annotations

import gc
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry, generate_latest

from leadsla.models import clock
from leadsla.models.policy import parse_policies
from leadsla.streams import recovery
from leadsla.streams.app import build_monitor
from leadsla.streams.codec import LeadEntry, lead_key, state_from_bytes, state_to_bytes
from leadsla.streams.engine import collector_paused
from leadsla.streams.partition import PartitionRuntime
from leadsla.streams.recovery import changelog_applier, changelog_decoder
from leadsla.streams.settings import Settings

from .conftest import T0, H, M, Rig, S

POLICIES = """
policies:
  - {name: first_touch, start: lead.handed_off, stop: lead.contact_attempt, goal: 1h}
  - {name: disposition, start: lead.handed_off, stop: lead.qualified, goal: 2h}
"""
V1 = (Path(__file__).parent / "data" / "lead-changelog-v1.json").read_bytes().splitlines()
TEAMS = ("emea", "apac", "na_east", "na_west", "latam")


@pytest.fixture
def app(tmp_path: Path) -> Any:
    settings = Settings(broker="kafka://127.0.0.1:1", data_dir=tmp_path, app_id="fast")
    m = build_monitor(settings, parse_policies(POLICIES), CollectorRegistry())
    m.app.finalize()
    return m.app


def lead_states() -> list[tuple[str, LeadEntry]]:
    """Leads of every kind the engine writes: handed off, at risk, met,
    breached, in two partitions."""
    r = Rig(POLICIES, wall=T0 + 5 * S)
    r.live()
    r.live(1)
    for i in range(60):
        lead, at = f"L{i}", T0 - (i % 7) * 20 * M
        r.send(lead, "lead.handed_off", at, f"{lead}-h", team=TEAMS[i % 5], partition=i % 2)
        if i % 3 == 0:
            r.send(lead, "lead.contact_attempt", at + 10 * M, f"{lead}-c", partition=i % 2)
    r.wall.now = T0 + 2 * H
    r.engine.tick()
    return [(lead, state_from_bytes(state_to_bytes(e.partition, e.state))) for lead, e in r.store.items()]


def record(topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None) -> ConsumerRecord:
    return ConsumerRecord(topic, partition, offset, 0, 0, key, value, None, 0, 0, ())


def lead_records(topic: str) -> list[ConsumerRecord]:
    """Every kind of record a lead changelog can hold, and some it should not."""
    values: list[tuple[bytes | None, bytes | None]] = []
    for lead, e in lead_states():
        values.append((lead_key(lead), state_to_bytes(e.partition, e.state)))
        values.append((lead_key(lead), state_to_bytes(e.partition, e.state, version=2)))
        values.append((lead_key(lead), None))  # a tombstone
    values += [(lead_key(f"v1-{i}"), raw) for i, raw in enumerate(V1)]
    values += [
        (lead_key("é \"quoted\" \u2603"), values[0][1]),
        (b" \"spaced\" ", values[0][1]),
        (b'"\\ud800"', values[0][1]),  # a lone surrogate: JSON, but no UTF-8 text
        (b"5", values[0][1]),  # keys that are JSON but no string
        (b'["a", ["b"]]', None),
        (b"null", values[0][1]),
        (b"{}", None),
        (None, values[0][1]),
        (None, None),
        (b"not json", values[0][1]),
        (b'"\xff"', values[0][1]),  # not UTF-8
        (lead_key("bad-1"), b"garbage"),
        (lead_key("bad-2"), b'{"v": 2}'),  # no partition
        (lead_key("bad-3"), b"[1, 2]"),
        (lead_key("bad-4"), b""),
    ]
    return [record(topic, i % 4, i, k, v) for i, (k, v) in enumerate(values)]


def outcome(decode: Callable[[Any], Any], r: ConsumerRecord) -> tuple[Any, ...]:
    """What decoding ``r`` gives: the key, its type and the value's fields,
    or the error (its type and text)."""
    try:
        change = decode(r)
    except Exception as exc:
        return ("raised", type(exc), str(exc))
    v = change.value
    value = None if v is None else (type(v), v.partition, v.state, v.legacy)
    return (change.key, type(change.key), value, change.message is r)


def test_the_lead_table_is_decoded_directly_and_exactly_as_faust_decodes_it(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = app.tables["leads"]
    fast = changelog_decoder(app, table)
    with monkeypatch.context() as m:
        m.setattr(recovery, "DIRECT_VALUE_LOADS", {})
        slow = changelog_decoder(app, table)
    assert fast.__name__ == "direct" and slow.__name__ == "slow"
    records = lead_records(table.changelog_topic.get_topic_name())
    answers = [outcome(slow, r) for r in records]
    assert sum(a[0] == "raised" for a in answers) >= 5  # the bad ones are refused, by Faust's errors
    assert [outcome(fast, r) for r in records] == answers


def test_other_tables_keep_faust_decoding(app: Any) -> None:
    for name in ("team-windows", "target-days", "period-cells", "period-ledger"):
        assert changelog_decoder(app, app.tables[name]).__name__ == "slow"


def changes(app: Any, table: Any, rng: random.Random, values: list[Any], n: int) -> list[Any]:
    """Random changelog records of ``table`` over a few keys, decoded:
    values, tombstones, keys set again after their tombstone."""
    decode = changelog_decoder(app, table)
    topic = table.changelog_topic.get_topic_name()
    out = []
    for i in range(n):
        key = lead_key(f"k{rng.randrange(12)}")
        raw = None if rng.random() < 0.3 else rng.choice(values)
        out.append(decode(record(topic, rng.randrange(4), i, key, raw)))
    return out


@pytest.mark.parametrize("name", ["leads", "team-windows", "target-days"])
def test_batches_are_applied_to_the_memory_store_as_faust_applies_them(app: Any, name: str) -> None:
    table = app.tables[name]
    store = table.data
    apply = changelog_applier(table)
    assert getattr(apply, "__self__", None) is not table  # the direct path, not Faust's method
    values = {
        "leads": [state_to_bytes(e.partition, e.state) for _, e in lead_states()[:5]],
        "team-windows": [b"0.0", b"1.0", b"2.5"],  # 0.0 is falsy: a tombstone then 0.0 deletes
        "target-days": [b"[0, 0]", b"[1, 2.5]", b"[]"],
    }[name]
    rng = random.Random(name)
    for _ in range(200):
        batches = [changes(app, table, rng, values, rng.randrange(1, 30)) for _ in range(rng.randrange(1, 4))]
        store.data.clear()
        store._key_partition.clear()
        for batch in batches:
            table.apply_changelog_batch(batch)
        faust_data, faust_partitions = list(store.data.items()), list(store._key_partition.items())
        store.data.clear()
        store._key_partition.clear()
        for batch in batches:
            apply(batch)
        assert list(store.data.items()) == faust_data
        assert list(store._key_partition.items()) == faust_partitions
        assert all(store.data[k] is v for k, v in faust_data)  # the very values decoded


def test_a_table_that_is_not_a_plain_memory_table_is_applied_by_faust(app: Any) -> None:
    table = app.tables["leads"]

    class Special(type(table.data)):  # type: ignore[misc]
        pass

    table.data.__class__ = Special
    assert changelog_applier(table) == table.apply_changelog_batch


def test_the_collector_is_paused_and_what_was_read_frozen() -> None:
    was = gc.isenabled()
    try:
        gc.enable()
        with collector_paused():
            assert not gc.isenabled()
            kept = [[i] for i in range(100)]
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(kept)
        gc.disable()
        with collector_paused():
            pass
        assert not gc.isenabled()  # left as it was found
    finally:
        gc.unfreeze()
        (gc.enable if was else gc.disable)()


def reference_rebuild_counts(r: Rig, parts: list[int]) -> None:
    """The gauges of a rebuild as they were counted before: per lead, a
    ClockRef counted and its outcome series prebound."""
    engine = r.engine
    for p in parts:
        engine.runtimes[p] = PartitionRuntime(p, None)
    team = engine.metrics.team
    for _, entry in list(engine.store.items()):
        rt = engine.runtimes.get(entry.partition)
        if rt is None:
            continue
        st = entry.state
        clock.rebase(st, engine.policies)
        for name, (t, rep, status, risk) in st.shown.items():
            if name in engine.effects.goals:
                rt.count(clock.ClockRef(name, t, rep, status, risk), team(t), +1)
                engine.metrics.prebind(name, t, rep)


def test_rebuild_counts_the_gauges_and_admits_team_labels_as_lead_by_lead_did() -> None:
    states = lead_states()
    rng = random.Random(3)
    rng.shuffle(states)  # the order teams are met in decides which of them get a label of their own

    def rig() -> Rig:
        store = {lead: state_from_bytes(state_to_bytes(e.partition, e.state)) for lead, e in states}
        return Rig(POLICIES, wall=T0 + 2 * H, store=store, max_team_labels=2)

    new, old = rig(), rig()
    new.engine.rebuild([0, 1], {0: None, 1: None})
    reference_rebuild_counts(old, [0, 1])
    for p in (0, 1):
        a, b = new.engine.runtimes[p], old.engine.runtimes[p]
        assert list(a.open.items()) == list(b.open.items())
        assert list(a.at_risk.items()) == list(b.at_risk.items())
        assert list(a.paused.items()) == list(b.paused.items())
    assert sum(new.engine.runtimes[0].at_risk.values()) > 0
    assert dict(new.metrics.team) == dict(old.metrics.team)
    assert set(new.metrics.team.values()) - {"none"} == {"apac", "na_west", "other"}  # the first two teams met

    def outcome_series(r: Rig) -> list[str]:
        return [line for line in generate_latest(r.registry).decode().splitlines() if "outcomes_total{" in line]

    assert outcome_series(new) == outcome_series(old)
