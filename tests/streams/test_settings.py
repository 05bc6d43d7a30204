"""streams.settings: contract defaults (§5, §6), LEADSLA_* variables,
durations, validation errors that name the field, broker normalisation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from leadsla.streams import topics
from leadsla.streams.settings import EMBEDDED_LISTEN, EXAMPLE_POLICIES, Settings


def test_defaults_match_the_contract() -> None:
    s = Settings()
    assert s.web_port == 6066
    assert s.web_host == "127.0.0.1"
    assert s.allowed_lateness == 120.0
    assert s.lateness_us == 120_000_000
    assert s.max_event_bytes == 65536
    assert s.input_topic == "lead-events"
    assert s.dlq_topic == "lead-events-dlq"
    assert s.outcomes_topic == "sla-outcomes"
    assert (topics.INPUT, topics.DLQ, topics.OUTCOMES) == ("lead-events", "lead-events-dlq", "sla-outcomes")
    assert s.required_topics() == ["lead-events", "lead-events-dlq", "sla-outcomes"]
    assert s.broker is None
    assert s.policies == EXAMPLE_POLICIES
    assert EXAMPLE_POLICIES.name == "policies.example.yaml" and EXAMPLE_POLICIES.is_file()
    assert s.replay_horizon == 7 * 86400.0
    assert s.max_clock_skew == 900.0
    assert s.state_ttl == 30 * 86400.0
    assert s.partitions == 4
    assert s.app_id == "leadsla"
    assert s.timer_batch == 5000
    assert s.max_team_labels == 200
    assert s.log_level == "info"


def test_bootstrap_without_broker_is_the_embedded_listen_address() -> None:
    assert EMBEDDED_LISTEN == "127.0.0.1:9092"
    assert Settings().bootstrap() == "127.0.0.1:9092"


@pytest.mark.parametrize(
    ("broker", "normalised", "bootstrap"),
    [
        ("kafka://kafka:9092", "kafka://kafka:9092", "kafka:9092"),
        ("kafka:9092", "kafka://kafka:9092", "kafka:9092"),
        ("10.0.0.5:19092", "kafka://10.0.0.5:19092", "10.0.0.5:19092"),
        ("kafka://a:1;kafka://b:2", "kafka://a:1;kafka://b:2", "a:1,b:2"),
        ("a:1;b:2", "kafka://a:1;b:2", "a:1,b:2"),
    ],
)
def test_broker_normalisation(broker: str, normalised: str, bootstrap: str) -> None:
    s = Settings(broker=broker)
    assert s.broker == normalised
    assert s.bootstrap() == bootstrap


def test_empty_broker_means_embedded() -> None:
    s = Settings(broker="")
    assert s.broker is None
    assert s.bootstrap() == "127.0.0.1:9092"


@pytest.mark.parametrize("broker", ["http://kafka:9092", "redis://x:1", "tcp://h:9092"])
def test_broker_rejects_other_schemes(broker: str) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(broker=broker)
    errs = info.value.errors()
    assert [e["loc"] for e in errs] == [("broker",)]
    assert errs[0]["msg"] == "Value error, broker must look like kafka://host:port"


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADSLA_BROKER", "kafka-1:9092")
    monkeypatch.setenv("LEADSLA_POLICIES", "/etc/leadsla/policies.yaml")
    monkeypatch.setenv("LEADSLA_WEB_PORT", "7070")
    monkeypatch.setenv("LEADSLA_WEB_HOST", "0.0.0.0")
    monkeypatch.setenv("LEADSLA_ALLOWED_LATENESS", "5m")
    monkeypatch.setenv("LEADSLA_REPLAY_HORIZON", "PT1H")
    monkeypatch.setenv("LEADSLA_MAX_EVENT_BYTES", "1024")
    monkeypatch.setenv("LEADSLA_STATE_TTL", "P2D")
    monkeypatch.setenv("LEADSLA_TIMER_INTERVAL", "250ms")
    monkeypatch.setenv("LEADSLA_PARTITIONS", "8")
    monkeypatch.setenv("LEADSLA_SINGLE_RECORD_BATCHES", "false")
    monkeypatch.setenv("LEADSLA_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("LEADSLA_INPUT_TOPIC", "crm-events")
    s = Settings()
    assert s.broker == "kafka://kafka-1:9092"
    assert s.bootstrap() == "kafka-1:9092"
    assert s.policies == Path("/etc/leadsla/policies.yaml")
    assert s.web_port == 7070
    assert s.web_host == "0.0.0.0"
    assert s.allowed_lateness == 300.0
    assert s.lateness_us == 300_000_000
    assert s.replay_horizon == 3600.0
    assert s.max_event_bytes == 1024
    assert s.state_ttl == 172800.0
    assert s.timer_interval == 0.25
    assert s.partitions == 8
    assert s.single_record_batches is False
    assert s.log_level == "debug"
    assert s.input_topic == "crm-events"
    assert s.required_topics() == ["crm-events", "lead-events-dlq", "sla-outcomes"]


def test_explicit_values_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADSLA_WEB_PORT", "7070")
    monkeypatch.setenv("LEADSLA_ALLOWED_LATENESS", "5m")
    s = Settings(web_port=9000, allowed_lateness="30s")
    assert s.web_port == 9000
    assert s.allowed_lateness == 30.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2m", 120.0),
        ("90s", 90.0),
        ("1h30m", 5400.0),
        ("2d", 172800.0),
        ("500ms", 0.5),
        ("PT1H", 3600.0),
        ("P1DT2H30M", 95400.0),
        ("45", 45.0),
        (7.5, 7.5),
        (0, 0.0),
    ],
)
def test_durations_parse(text: str | float, seconds: float) -> None:
    s = Settings(allowed_lateness=text, replay_horizon=text, max_clock_skew=text, state_ttl=text)
    assert (s.allowed_lateness, s.replay_horizon, s.max_clock_skew, s.state_ttl) == (seconds,) * 4
    assert s.lateness_us == round(seconds * 1_000_000)


@pytest.mark.parametrize(
    ("field", "value", "msg"),
    [
        ("allowed_lateness", "soon", "Value error, not a duration: 'soon' (use e.g. 90s, 15m, 1h30m, 2d, 500ms or ISO 8601 PT1H)"),
        ("allowed_lateness", -5, "Value error, negative duration: -5"),
        ("replay_horizon", "P", "Value error, not an ISO 8601 duration: 'P'"),
        ("state_ttl", "", "Value error, empty duration"),
        ("timer_interval", "inf", "Value error, not a finite duration: 'inf'"),
        ("commit_interval", "1x", "Value error, not a duration: '1x' (use e.g. 90s, 15m, 1h30m, 2d, 500ms or ISO 8601 PT1H)"),
        ("log_level", "verbose", "Value error, log_level must be debug, info, warning or error"),
        ("web_port", 70000, "Input should be less than or equal to 65535"),
        ("web_port", -1, "Input should be greater than or equal to 0"),
        ("max_event_bytes", 100, "Input should be greater than or equal to 256"),
        ("partitions", 0, "Input should be greater than or equal to 1"),
        ("timer_batch", 0, "Input should be greater than or equal to 1"),
        ("max_team_labels", 0, "Input should be greater than or equal to 1"),
    ],
)
def test_bad_values_name_the_field(field: str, value: object, msg: str) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(**{field: value})
    errs = info.value.errors()
    assert len(errs) == 1
    assert errs[0]["loc"] == (field,)
    assert errs[0]["msg"] == msg


@pytest.mark.parametrize(
    ("var", "value", "field"),
    [
        ("LEADSLA_WEB_PORT", "not-a-port", "web_port"),
        ("LEADSLA_ALLOWED_LATENESS", "two minutes", "allowed_lateness"),
        ("LEADSLA_BROKER", "https://kafka:9092", "broker"),
        ("LEADSLA_MAX_EVENT_BYTES", "12", "max_event_bytes"),
    ],
)
def test_bad_environment_values_name_the_field(monkeypatch: pytest.MonkeyPatch, var: str, value: str, field: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert [e["loc"] for e in info.value.errors()] == [(field,)]
    assert info.value.errors()[0]["input"] == value


def test_unknown_keyword_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(lateness="2m")
    errs = info.value.errors()
    assert [(e["loc"], e["type"]) for e in errs] == [(("lateness",), "extra_forbidden")]


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(ValidationError) as info:
        s.web_port = 1  # type: ignore[misc]
    assert info.value.errors()[0]["type"] == "frozen_instance"
    assert s.web_port == 6066
