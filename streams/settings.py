"""All configuration in one frozen object, read once from ``LEADSLA_*``
environment variables and command-line flags (flags win)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from leadsla.models.durations import DurationError, parse_duration_us
from leadsla.streams import topics
from leadsla.streams.kafka_security import PROTOCOLS, KafkaSecurity, KafkaSecurityError

EXAMPLE_POLICIES = Path(__file__).with_name("policies.example.yaml")
EMBEDDED_LISTEN = "127.0.0.1:9092"
BROKER_FORM = "expected kafka://HOST:PORT, several separated by ',' or ';'"
# A host name, an IPv4 address, or an IPv6 address in brackets ([::1]).
_HOST = re.compile(r"[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\]")


def broker_addresses(url: str) -> list[tuple[str, int]]:
    """The ``(host, port)`` pairs of a broker URL such as ``kafka://a:9092`` or
    ``kafka://a:9092,kafka://b:9092`` (``;`` separates too; ``kafka://`` may be
    left out), in order.

    Raises ValueError saying what is wrong with the first bad address: no
    host, no port, a port that is not a number or not in 1-65535, another
    scheme than ``kafka://``, an empty address between separators.
    """
    items = re.split(r"[;,]", url)
    return [_address(item, n, len(items)) for n, item in enumerate(items, start=1)]


def _address(item: str, n: int, of: int) -> tuple[str, int]:
    text = item.strip()
    which = f" (address {n} of {of})" if of > 1 else ""
    if not text:
        raise ValueError(f"address {n} of {of} is empty; {BROKER_FORM}")
    scheme, sep, rest = text.partition("://")
    if not sep:
        rest = text
    elif scheme.upper() in PROTOCOLS:
        # The Java client's listener form: the protocol is a setting of its own here.
        raise ValueError(f"{text!r}{which} has the scheme {scheme + '://'!r}: write kafka://HOST:PORT and set "
                         f"LEADSLA_KAFKA_SECURITY_PROTOCOL={scheme.upper()}")
    elif scheme.lower() != "kafka":
        raise ValueError(f"{text!r}{which} has the scheme {scheme + '://'!r}, not kafka://; {BROKER_FORM}")
    host, colon, port = rest.rpartition(":")
    if not colon or host.endswith(":"):  # no colon, or an IPv6 address without brackets
        host, port = rest, ""
    if host.startswith("[") and not host.endswith("]"):  # "[::1]": the colon was inside the brackets
        host, port = rest, ""
    if not host:
        raise ValueError(f"{text!r}{which} has no host; {BROKER_FORM}")
    if not _HOST.fullmatch(host):
        hint = " (an IPv6 address goes in brackets: [::1]:9092)" if ":" in host else ""
        raise ValueError(f"{text!r}{which} has an invalid host {host!r}{hint}; {BROKER_FORM}")
    if not port:
        raise ValueError(f"{text!r}{which} has no port; {BROKER_FORM}")
    if not (port.isascii() and port.isdigit()):
        raise ValueError(f"{text!r}{which} has a port that is not a number: {port!r}; {BROKER_FORM}")
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r}{which} has port {int(port)}, outside 1-65535; {BROKER_FORM}")
    return host, int(port)


def _duration(v: Any) -> float:
    try:
        return parse_duration_us(v) / 1_000_000
    except DurationError as exc:
        raise ValueError(str(exc)) from None


class Settings(BaseSettings):
    """Every setting; each is also ``LEADSLA_<NAME>`` in the environment."""

    # hide_input_in_errors: a validation error would otherwise carry every
    # input value, the SASL password included, into its text.
    model_config = SettingsConfigDict(env_prefix="LEADSLA_", frozen=True, extra="forbid", hide_input_in_errors=True)

    broker: str | None = Field(None, description="Kafka bootstrap URL, e.g. kafka://host:9092; unset: start the embedded broker")
    policies: Path = Field(EXAMPLE_POLICIES, description="policies file (YAML)")
    web_host: str = Field("127.0.0.1", description="address of the metrics and query server")
    web_port: int = Field(6066, ge=0, le=65535, description="port of /metrics and the query API")
    # Environment only (no flag: a flag would show in the process list). A
    # SecretStr prints as '**********' in reprs, logs and validation errors.
    api_token: SecretStr | None = Field(None, description=(
        "bearer token the query API requires (Authorization: Bearer <token>) on every answer that names "
        "leads; workers pass it to each other. Required when web_host is not a loopback address"))
    advertised_host: str | None = Field(None, description=(
        "host name other workers use to reach this one's query API; unset: web_host, or this machine's "
        "name when web_host is a wildcard (0.0.0.0, ::)"))
    peer_timeout: float = Field(5.0, gt=0, description="how long a worker waits for another worker's query API answer (duration)")
    allowed_lateness: float = Field(120.0, description="how late a stop may arrive and still count (duration)")
    replay_horizon: float = Field(7 * 86400.0, description="while catching up on a backlog, decide a clock only once the backlog's event time is this far past it, or the backlog is consumed (duration)")
    max_event_bytes: int = Field(64 * 1024, ge=256, description="records larger than this go to the dead-letter topic")
    max_clock_skew: float = Field(900.0, description="events dated further in the future are rejected as invalid (duration)")
    state_ttl: float = Field(30 * 86400.0, description="forget a quiet lead (and its dedupe memory) this long after its last event (duration)")
    partitions: int = Field(4, ge=1, le=1024, description="partitions of the topics leadsla creates")
    app_id: str = Field("leadsla", description="consumer group and changelog prefix")
    input_topic: str = Field(topics.INPUT, description="lead events in")
    dlq_topic: str = Field(topics.DLQ, description="rejected records out")
    outcomes_topic: str = Field(topics.OUTCOMES, description="decisions out")
    periods_topic: str = Field(topics.PERIODS, description="judged periods out (one record per level and period)")
    timer_interval: float = Field(0.5, gt=0, description=(
        "the longest pause between two passes of the deadline timer (duration); it also wakes when the next "
        "deadline bucket of a caught-up partition falls due"))
    timer_batch: int = Field(500, ge=1, description=(
        "due leads decided per partition in one slice of a timer pass; between slices the worker reads records, "
        "so a burst of due clocks never stalls consumption for long"))
    single_record_batches: bool = Field(False, description=(
        "one record per produce batch: only for a broker whose ListOffsets answer is wrong after multi-record "
        "batches (the embedded broker's is), and only with direct_recovery off, where Faust's recovery would trust "
        "that answer and can end table recovery early. Costs write throughput (about 280 µs per record here), not "
        "recovery time"))
    direct_recovery: bool = Field(True, description=(
        "read the changelogs with leadsla's own client before Faust's recovery: whole fetches up to the fetch's "
        "high watermark (right on every broker), about thirty times faster than Faust's record-by-record reading "
        "(README: Reliability)"))
    state_format: int = Field(3, ge=2, le=3, description=(
        "the lead-state changelog format written: 3 (MessagePack, smaller and about twice as fast to read back); "
        "2 (JSON) only during a rolling upgrade from a release that cannot read 3. Both are always read"))
    producer_linger: float = Field(0.01, ge=0, description=(
        "how long the producer waits to fill a batch before sending it (duration): changelog, outcome and "
        "dead-letter records of a fetch go out in a few requests, not one each"))
    max_team_labels: int = Field(200, ge=1, description="distinct team label values before new ones become 'other'")
    max_rep_labels: int = Field(500, ge=0, description="distinct rep label values (on leadsla_sla_breaches_total) before new ones become 'other'; 0: no rep label")
    data_dir: Path = Field(Path(".leadsla"), description="Faust's local data directory")
    log_level: str = Field("info", description="debug, info, warning or error")
    # No bounds here: cmd_run refuses less than 1 in its own words. A
    # supervisor's children get 1, so that they do not supervise in turn.
    workers: int = Field(1, description="leadsla run: worker processes on this host, one consumer group (--workers)")
    session_timeout: float = Field(10.0, description=(
        "consumer group session timeout (duration): a worker that stops without leaving the group (SIGKILL, "
        "a lost host) keeps its partitions this long before the others take them over. The embedded broker "
        "holds a JoinGroup for about 5 s: keep this well above that, so that no live worker is dropped "
        "from the group while it rejoins (python -m bench.recovery measures kill to takeover)"))
    heartbeat_interval: float = Field(1.0, description=(
        "consumer group heartbeat (duration); a worker learns that a rebalance began, or that a dead "
        "member's session ran out, at its next heartbeat"))
    rebalance_timeout: float = Field(20.0, description=(
        "consumer group rebalance timeout (duration): how long the group waits for its members to rejoin"))
    commit_interval: float = Field(2.8, description=(
        "offset commit interval (duration); each commit first writes the lead states changed since the last "
        "one (the record cache: a longer interval writes fewer, in larger bursts) and flushes the producer"))
    broker_probe_interval: float = Field(2.0, gt=0, description="how often a running worker checks that the broker answers (duration)")
    broker_probe_timeout: float = Field(2.0, gt=0, description="how long one check may take before the broker counts as unreachable (duration)")
    broker_wait_max: float = Field(30.0, gt=0, description="longest pause between attempts while a starting worker waits for its broker (duration)")

    # TLS and SASL, environment only: the password never is a flag (it
    # would show in the process list) and prints as '**********'.
    kafka_security_protocol: str = Field("PLAINTEXT", description=(
        "how clients reach the broker: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (Kafka's security.protocol)"))
    kafka_sasl_mechanism: str | None = Field(None, description="SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
    kafka_sasl_username: str | None = Field(None, description="SASL user name (an API key on Confluent Cloud)")
    kafka_sasl_password: SecretStr | None = Field(None, description=(
        "SASL password (an API secret on Confluent Cloud); environment only, never logged"))
    kafka_sasl_password_file: Path | None = Field(None, description=(
        "a file holding the SASL password (a mounted secret), instead of LEADSLA_KAFKA_SASL_PASSWORD"))
    kafka_ssl_cafile: Path | None = Field(None, description=(
        "PEM CA certificates the broker's certificate must chain to; unset: the system's"))
    kafka_ssl_certfile: Path | None = Field(None, description="PEM client certificate, for mutual TLS")
    kafka_ssl_keyfile: Path | None = Field(None, description="PEM key of the client certificate (unencrypted)")

    _durations = field_validator(
        "allowed_lateness", "replay_horizon", "max_clock_skew", "state_ttl", "timer_interval",
        "session_timeout", "heartbeat_interval", "rebalance_timeout", "commit_interval",
        "broker_probe_interval", "broker_probe_timeout", "broker_wait_max", "peer_timeout", "producer_linger",
        mode="before",
    )(_duration)

    @field_validator("broker")
    @classmethod
    def _broker(cls, v: str | None) -> str | None:
        # Checked here, not when the first connection fails: a typo in
        # LEADSLA_BROKER is refused at start-up by every command.
        if v is None or not v.strip():
            return None
        v = v.strip()
        broker_addresses(v)
        if "://" not in v:
            v = f"kafka://{v}"
        return v

    @field_validator("api_token")
    @classmethod
    def _token(cls, v: SecretStr | None) -> SecretStr | None:
        # An empty LEADSLA_API_TOKEN= is no token, not a token anyone can guess.
        if v is None or not v.get_secret_value().strip():
            return None
        return SecretStr(v.get_secret_value().strip())

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism")
    @classmethod
    def _upper(cls, v: str | None) -> str | None:
        # Empty is unset; case as Kafka writes them (sasl_ssl works too).
        if v is None or not v.strip():
            return None if v is None else v.strip() or None
        return v.strip().upper()

    @field_validator("kafka_sasl_username", "kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile",
                     "kafka_sasl_password_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v

    @model_validator(mode="after")
    def _kafka_security(self) -> Settings:
        # Every command checks the combination at start-up, in one line
        # that names the variables (KafkaSecurityError is a ValueError).
        self.kafka_security()
        return self

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        v = v.lower()
        if v not in ("debug", "info", "warning", "error"):
            raise ValueError("log_level must be debug, info, warning or error")
        return v

    def kafka_security(self) -> KafkaSecurity:
        """The TLS and SASL of every Kafka client, checked
        (``KafkaSecurity.check``). The password comes from
        ``kafka_sasl_password`` or, without it, ``kafka_sasl_password_file``
        (trailing line breaks dropped). Raises KafkaSecurityError (one line,
        never the password)."""
        password = self.kafka_sasl_password
        if password is not None and not password.get_secret_value():
            password = None
        if self.kafka_sasl_password_file is not None:
            if password is not None:
                raise KafkaSecurityError("set LEADSLA_KAFKA_SASL_PASSWORD or LEADSLA_KAFKA_SASL_PASSWORD_FILE, not both")
            try:
                text = self.kafka_sasl_password_file.read_text(encoding="utf-8").rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as exc:
                why = getattr(exc, "strerror", None) or type(exc).__name__
                raise KafkaSecurityError(f"LEADSLA_KAFKA_SASL_PASSWORD_FILE ({self.kafka_sasl_password_file}) "
                                         f"cannot be read: {why}") from None
            password = SecretStr(text) if text else None
        security = KafkaSecurity(
            protocol=self.kafka_security_protocol or "PLAINTEXT", mechanism=self.kafka_sasl_mechanism,
            username=self.kafka_sasl_username, password=password, cafile=self.kafka_ssl_cafile,
            certfile=self.kafka_ssl_certfile, keyfile=self.kafka_ssl_keyfile)
        security.check()
        return security

    @property
    def lateness_us(self) -> int:
        return round(self.allowed_lateness * 1_000_000)

    def bootstrap(self) -> str:
        """``host:port`` list for aiokafka (comma-separated)."""
        url = self.broker or f"kafka://{EMBEDDED_LISTEN}"
        return ",".join(f"{host}:{port}" for host, port in broker_addresses(url))

    @property
    def reports_topic(self) -> str:
        """The internal topic on which each partition reports its share of a
        period and how far it has closed periods (see ``streams.ledger``)."""
        return f"{self.app_id}-period-reports"

    def required_topics(self) -> list[str]:
        """Topics the monitor reads or writes that Faust does not create itself."""
        return [self.input_topic, self.dlq_topic, self.outcomes_topic, self.periods_topic, self.reports_topic]
