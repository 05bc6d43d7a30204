"""streams.kafka_security and its settings: the checks at start-up (one line
naming the variables), the aiokafka and Faust keyword arguments, the
password kept out of every repr and message, and the lines that name a
refused login or an untrusted certificate."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import faust
import pytest
from aiokafka import errors
from pydantic import SecretStr, ValidationError

from leadsla.streams import cli
from leadsla.streams.kafka_security import KafkaSecurity, KafkaSecurityError, SaslRefused
from leadsla.streams.settings import Settings

SECRET = "hunter2-secret"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("LEADSLA_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=t",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")], check=True, capture_output=True)
    return d / "cert.pem", d / "key.pem"


def refused(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for k, v in env.items():
        monkeypatch.setenv(f"LEADSLA_{k.upper()}", v)
    with pytest.raises(ValidationError) as info:
        Settings()
    line = str(cli.settings_error(info.value))
    assert SECRET not in line and SECRET not in str(info.value)
    return line


def test_the_default_is_plaintext_and_adds_no_client_argument() -> None:
    security = Settings().kafka_security()
    assert security == KafkaSecurity()
    assert security.client_kwargs() == {} and security.faust_kwargs() == {}


def test_sasl_ssl_with_scram_gives_aiokafka_and_faust_the_same_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADSLA_KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    monkeypatch.setenv("LEADSLA_KAFKA_SASL_MECHANISM", "scram-sha-512")
    monkeypatch.setenv("LEADSLA_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("LEADSLA_KAFKA_SASL_PASSWORD", SECRET)
    s = Settings()
    security = s.kafka_security()
    kw = security.client_kwargs()
    assert {k: v for k, v in kw.items() if k != "ssl_context"} == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "svc",
        "sasl_plain_password": SECRET}
    assert isinstance(kw["ssl_context"], ssl.SSLContext)
    assert kw["ssl_context"].verify_mode == ssl.CERT_REQUIRED and kw["ssl_context"].check_hostname
    creds = security.faust_kwargs()["broker_credentials"]
    assert isinstance(creds, faust.SASLCredentials)
    assert (creds.protocol.value, creds.mechanism.value, creds.username, creds.password) == (
        "SASL_SSL", "SCRAM-SHA-512", "svc", SECRET)
    for text in (repr(s), str(s), repr(security), security.describe(), repr(creds)):
        assert SECRET not in text
    assert security.describe() == "SASL_SSL, SCRAM-SHA-512 as 'svc', the system's CAs"


def test_ssl_with_a_client_certificate(pem: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    security = KafkaSecurity("SSL", cafile=pem[0], certfile=pem[0], keyfile=pem[1])
    security.check()
    kw = security.client_kwargs()
    assert set(kw) == {"security_protocol", "ssl_context"} and kw["security_protocol"] == "SSL"
    assert isinstance(security.faust_kwargs()["broker_credentials"], faust.SSLCredentials)
    assert security.faust_kwargs()["broker_credentials"].context is kw["ssl_context"]


def test_the_password_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pw").write_text(SECRET + "\n")
    monkeypatch.setenv("LEADSLA_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("LEADSLA_KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("LEADSLA_KAFKA_SASL_USERNAME", "key")
    monkeypatch.setenv("LEADSLA_KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "pw"))
    assert Settings().kafka_security().client_kwargs()["sasl_plain_password"] == SECRET
    monkeypatch.setenv("LEADSLA_KAFKA_SASL_PASSWORD", SECRET)
    assert refused(monkeypatch) == "set LEADSLA_KAFKA_SASL_PASSWORD or LEADSLA_KAFKA_SASL_PASSWORD_FILE, not both"


@pytest.mark.parametrize(("env", "line"), [
    ({"kafka_security_protocol": "TLS"},
     "LEADSLA_KAFKA_SECURITY_PROTOCOL must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL, got 'TLS'"),
    ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_password": SECRET},
     "LEADSLA_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs LEADSLA_KAFKA_SASL_MECHANISM, LEADSLA_KAFKA_SASL_USERNAME"),
    ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "PLAIN", "kafka_sasl_username": "u"},
     "LEADSLA_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs LEADSLA_KAFKA_SASL_PASSWORD (or LEADSLA_KAFKA_SASL_PASSWORD_FILE)"),
    ({"kafka_sasl_username": "u", "kafka_sasl_password": SECRET},
     "LEADSLA_KAFKA_SASL_USERNAME, LEADSLA_KAFKA_SASL_PASSWORD set, but LEADSLA_KAFKA_SECURITY_PROTOCOL is PLAINTEXT, "
     "which sends no credentials; use SASL_SSL or SASL_PLAINTEXT"),
    ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "OAUTHBEARER"},
     "LEADSLA_KAFKA_SASL_MECHANISM=OAUTHBEARER is not supported: aiokafka needs a token provider written in Python"),
    ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "SCRAM-SHA-1"},
     "LEADSLA_KAFKA_SASL_MECHANISM must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, got 'SCRAM-SHA-1'"),
    ({"kafka_security_protocol": "SSL", "kafka_ssl_cafile": "/no/such/ca.pem"},
     "LEADSLA_KAFKA_SSL_CAFILE: no such file: /no/such/ca.pem"),
    ({"kafka_ssl_cafile": "/etc/hostname"},
     "LEADSLA_KAFKA_SSL_CAFILE set, but LEADSLA_KAFKA_SECURITY_PROTOCOL is PLAINTEXT, which does not use TLS"),
    ({"kafka_security_protocol": "SSL", "kafka_ssl_cafile": "/etc/hostname"},
     "LEADSLA_KAFKA_SSL_CAFILE (/etc/hostname) holds no usable PEM CA certificate"),
])
def test_combinations_that_cannot_work_are_refused_in_one_line(
        env: dict[str, str], line: str, monkeypatch: pytest.MonkeyPatch) -> None:
    got = refused(monkeypatch, **env)
    assert got.startswith(line) and "\n" not in got, got


def test_a_certificate_without_its_key_and_a_key_that_does_not_match(
        pem: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(KafkaSecurityError, match="^mutual TLS needs both LEADSLA_KAFKA_SSL_CERTFILE and"):
        KafkaSecurity("SSL", certfile=pem[0]).check()
    subprocess.run(["openssl", "genrsa", "-out", str(tmp_path / "other.pem"), "2048"], check=True, capture_output=True)
    with pytest.raises(KafkaSecurityError, match=r"do not load as a PEM certificate and its unencrypted key: .*key values mismatch"):
        KafkaSecurity("SSL", certfile=pem[0], keyfile=tmp_path / "other.pem").check()


def test_a_java_style_broker_url_says_where_the_protocol_goes(monkeypatch: pytest.MonkeyPatch) -> None:
    assert refused(monkeypatch, broker="SASL_SSL://b-1.kafka:9096") == (
        "--broker / LEADSLA_BROKER: 'SASL_SSL://b-1.kafka:9096' has the scheme 'SASL_SSL://': write kafka://HOST:PORT "
        "and set LEADSLA_KAFKA_SECURITY_PROTOCOL=SASL_SSL")


def test_refusals_are_named_and_other_errors_are_not() -> None:
    scram = KafkaSecurity("SASL_SSL", "SCRAM-SHA-256", "svc", SecretStr(SECRET), cafile=Path("/etc/ca.pem"))
    assert scram.explain(SaslRefused("invalid-proof")) == (
        "the broker refused the SASL login for user 'svc' (SCRAM-SHA-256) (the broker said: invalid-proof): "
        "check LEADSLA_KAFKA_SASL_USERNAME / LEADSLA_KAFKA_SASL_PASSWORD")
    assert scram.explain(errors.SaslAuthenticationFailed("Authentication failed")).startswith(
        "the broker refused the SASL login for user 'svc' (SCRAM-SHA-256) (the broker said: Authentication failed)")
    assert scram.explain(errors.UnsupportedSaslMechanismError()) == (
        "the broker does not accept the SASL mechanism SCRAM-SHA-256: check LEADSLA_KAFKA_SASL_MECHANISM and "
        "LEADSLA_KAFKA_SECURITY_PROTOCOL")
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verify.verify_message = "self-signed certificate in certificate chain"
    wrapped = errors.KafkaConnectionError("Unable to bootstrap")
    wrapped.__cause__ = verify
    assert scram.explain(wrapped) == (
        "the broker's certificate is not trusted by LEADSLA_KAFKA_SSL_CAFILE (/etc/ca.pem): certificate verify "
        "failed: self-signed certificate in certificate chain")
    assert scram.explain(ConnectionRefusedError()) is None
    assert scram.explain(errors.KafkaConnectionError("Connection at x closed")) is None
    assert scram.explain(TimeoutError()) is None


def test_the_embedded_broker_is_not_started_for_a_secure_protocol(monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LEADSLA_KAFKA_SECURITY_PROTOCOL", "SSL")
    assert cli.main(["run", "--web-port", "0"]) == 2
    assert capsys.readouterr().err == (
        "leadsla: LEADSLA_KAFKA_SECURITY_PROTOCOL=SSL needs a broker (--broker / LEADSLA_BROKER): the embedded broker "
        "speaks PLAINTEXT only\n")


async def test_a_tls_broker_that_closes_after_the_handshake_gets_the_client_certificate_hint(tmp_path: Path) -> None:
    """Under TLS 1.3 a broker that requires a client certificate can refuse
    it by closing the connection once the handshake is done: the probe then
    says so as a possibility, never as a certainty."""
    import asyncio

    from leadsla.streams.broker import probe_broker

    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(tmp_path / "key.pem"),
                    "-out", str(tmp_path / "cert.pem")], check=True, capture_output=True)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")

    async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(close_at_once, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        problem = await probe_broker(f"127.0.0.1:{port}", 3.0, KafkaSecurity("SSL", cafile=tmp_path / "cert.pem"))
    finally:
        server.close()
    assert problem is not None
    assert problem.endswith("(if the broker requires a client certificate, set LEADSLA_KAFKA_SSL_CERTFILE and "
                            "LEADSLA_KAFKA_SSL_KEYFILE)"), problem
