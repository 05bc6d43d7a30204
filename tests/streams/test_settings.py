"""streams.settings: contract defaults (§5, §6), LEADSLA_* variables,
durations, validation errors that name the field, broker normalisation and
the bad broker URLs refused with what is wrong."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from leadsla.streams import topics
from leadsla.streams.settings import EMBEDDED_LISTEN, EXAMPLE_POLICIES, Settings, broker_addresses


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
    assert s.required_topics() == ["lead-events", "lead-events-dlq", "sla-outcomes", "sla-periods",
                                   "leadsla-period-reports"]
    assert s.broker is None
    assert s.policies == EXAMPLE_POLICIES
    assert EXAMPLE_POLICIES.name == "policies.example.yaml" and EXAMPLE_POLICIES.is_file()
    assert s.replay_horizon == 7 * 86400.0
    assert s.max_clock_skew == 900.0
    assert s.state_ttl == 30 * 86400.0
    assert s.partitions == 4
    assert s.app_id == "leadsla"
    assert s.timer_batch == 500
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
        ("kafka://a:1,kafka://b:2", "kafka://a:1,kafka://b:2", "a:1,b:2"),
        ("kafka://a:1, b:2 ;c.example.com:65535", "kafka://a:1, b:2 ;c.example.com:65535", "a:1,b:2,c.example.com:65535"),
        ("  kafka://kafka:9092 ", "kafka://kafka:9092", "kafka:9092"),
        ("KAFKA://kafka:9092", "KAFKA://kafka:9092", "kafka:9092"),
        ("kafka://[::1]:9092", "kafka://[::1]:9092", "[::1]:9092"),
        ("kafka://my_broker-1.internal:1", "kafka://my_broker-1.internal:1", "my_broker-1.internal:1"),
    ],
)
def test_broker_normalisation(broker: str, normalised: str, bootstrap: str) -> None:
    s = Settings(broker=broker)
    assert s.broker == normalised
    assert s.bootstrap() == bootstrap


def test_broker_addresses_are_host_and_port_pairs() -> None:
    assert broker_addresses("kafka://a:1;b:2,kafka://[::1]:3") == [("a", 1), ("b", 2), ("[::1]", 3)]


@pytest.mark.parametrize("broker", ["", "   "])
def test_empty_broker_means_embedded(broker: str) -> None:
    s = Settings(broker=broker)
    assert s.broker is None
    assert s.bootstrap() == "127.0.0.1:9092"


FORM = "expected kafka://HOST:PORT, several separated by ',' or ';'"


@pytest.mark.parametrize(
    ("broker", "problem"),
    [
        ("kafka://", "'kafka://' has no host"),
        ("kafka://:9092", "'kafka://:9092' has no host"),
        (":9092", "':9092' has no host"),
        ("kafka://kafka", "'kafka://kafka' has no port"),
        ("kafka://kafka:", "'kafka://kafka:' has no port"),
        ("kafka", "'kafka' has no port"),
        ("kafka://[::1]", "'kafka://[::1]' has no port"),
        ("kafka://kafka:port", "'kafka://kafka:port' has a port that is not a number: 'port'"),
        ("kafka://kafka:9092/", "'kafka://kafka:9092/' has a port that is not a number: '9092/'"),
        ("kafka://kafka:-1", "'kafka://kafka:-1' has a port that is not a number: '-1'"),
        ("kafka://kafka:0", "'kafka://kafka:0' has port 0, outside 1-65535"),
        ("kafka://kafka:65536", "'kafka://kafka:65536' has port 65536, outside 1-65535"),
        ("http://kafka:9092", "'http://kafka:9092' has the scheme 'http://', not kafka://"),
        ("tcp://h:9092", "'tcp://h:9092' has the scheme 'tcp://', not kafka://"),
        ("redis://x:1", "'redis://x:1' has the scheme 'redis://', not kafka://"),
        ("kafka://user@kafka:9092", "'kafka://user@kafka:9092' has an invalid host 'user@kafka'"),
        ("kafka://::1:9092", "'kafka://::1:9092' has an invalid host '::1' (an IPv6 address goes in brackets: [::1]:9092)"),
        ("kafka://a:1;kafka://b", "'kafka://b' (address 2 of 2) has no port"),
        ("kafka://a:1,kafka://:2,kafka://c:x", "'kafka://:2' (address 2 of 3) has no host"),
        ("kafka://a:1,b:99999", "'b:99999' (address 2 of 2) has port 99999, outside 1-65535"),
        ("kafka://a:1;;kafka://b:2", "address 2 of 3 is empty"),
        ("kafka://a:1,", "address 2 of 2 is empty"),
        ("kafka://a:1;http://b:2", "'http://b:2' (address 2 of 2) has the scheme 'http://', not kafka://"),
    ],
)
def test_a_bad_broker_url_says_what_is_wrong(broker: str, problem: str) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(broker=broker)
    errs = info.value.errors()
    assert [e["loc"] for e in errs] == [("broker",)]
    assert errs[0]["msg"] == f"Value error, {problem}; {FORM}"
    with pytest.raises(ValueError, match="^" + re.escape(f"{problem}; {FORM}") + "$"):
        broker_addresses(broker)


def test_a_bad_broker_url_from_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADSLA_BROKER", "kafka://")
    with pytest.raises(ValidationError) as info:
        Settings()
    assert info.value.errors()[0]["msg"] == f"Value error, 'kafka://' has no host; {FORM}"


def test_broker_probing_defaults_and_durations(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings()
    assert (s.broker_probe_interval, s.broker_probe_timeout, s.broker_wait_max) == (2.0, 2.0, 30.0)
    monkeypatch.setenv("LEADSLA_BROKER_PROBE_INTERVAL", "500ms")
    monkeypatch.setenv("LEADSLA_BROKER_PROBE_TIMEOUT", "PT1S")
    monkeypatch.setenv("LEADSLA_BROKER_WAIT_MAX", "2m")
    s = Settings()
    assert (s.broker_probe_interval, s.broker_probe_timeout, s.broker_wait_max) == (0.5, 1.0, 120.0)


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
    monkeypatch.setenv("LEADSLA_SINGLE_RECORD_BATCHES", "true")
    monkeypatch.setenv("LEADSLA_PRODUCER_LINGER", "25ms")
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
    assert s.single_record_batches is True
    assert s.producer_linger == 0.025
    assert s.log_level == "debug"
    assert s.input_topic == "crm-events"
    assert s.required_topics() == ["crm-events", "lead-events-dlq", "sla-outcomes", "sla-periods",
                                   "leadsla-period-reports"]


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
        ("broker_probe_interval", "0s", "Input should be greater than 0"),
        ("broker_probe_timeout", "soon", "Value error, not a duration: 'soon' (use e.g. 90s, 15m, 1h30m, 2d, 500ms or ISO 8601 PT1H)"),
        ("broker_wait_max", 0, "Input should be greater than 0"),
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


def test_consumer_group_timing_defaults_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    # What a SIGKILLed worker costs the group (bench/recovery.py): its
    # partitions move after the session timeout; the embedded broker holds a
    # JoinGroup for about 5 s, so the session timeout stays well above that.
    s = Settings()
    assert (s.session_timeout, s.heartbeat_interval, s.rebalance_timeout, s.commit_interval) == (10.0, 1.0, 20.0, 2.8)
    assert s.session_timeout >= 2 * 5.0 and s.heartbeat_interval <= s.session_timeout / 3
    assert s.single_record_batches is False and s.direct_recovery is True
    monkeypatch.setenv("LEADSLA_SESSION_TIMEOUT", "15s")
    monkeypatch.setenv("LEADSLA_HEARTBEAT_INTERVAL", "500ms")
    monkeypatch.setenv("LEADSLA_REBALANCE_TIMEOUT", "PT1M")
    s = Settings()
    assert (s.session_timeout, s.heartbeat_interval, s.rebalance_timeout) == (15.0, 0.5, 60.0)


@pytest.mark.parametrize(
    ("field", "says"),
    [
        ("session_timeout", "keeps its partitions this long"),
        ("session_timeout", "about 5 s"),
        ("heartbeat_interval", "at its next heartbeat"),
        ("single_record_batches", "can end table recovery early"),
        ("single_record_batches", "not recovery time"),
        ("direct_recovery", "high watermark (right on every broker)"),
    ],
)
def test_group_and_recovery_settings_say_what_they_cost(field: str, says: str) -> None:
    assert says in (Settings.model_fields[field].description or "")


def test_the_state_format_written_is_3_unless_a_rolling_upgrade_asks_for_2(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().state_format == 3
    monkeypatch.setenv("LEADSLA_STATE_FORMAT", "2")
    assert Settings().state_format == 2
    monkeypatch.setenv("LEADSLA_STATE_FORMAT", "4")
    with pytest.raises(ValidationError):
        Settings()
