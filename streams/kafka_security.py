"""TLS and SASL for every Kafka client leadsla opens.

One ``KafkaSecurity`` (built by ``Settings.kafka_security()`` from the
``LEADSLA_KAFKA_*`` variables) gives the keyword arguments of aiokafka's
clients (``client_kwargs``) and of ``faust.App`` (``faust_kwargs``), and
turns the exceptions of a refused login or an untrusted certificate into one
line that names the cause (``explain``).

The password is a ``SecretStr``: it prints as ``**********`` and appears in
no repr, log line or message of this module.
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
# aiokafka knows these too, but each needs code or libraries a setting
# cannot give: refused with the reason rather than failing at connect time.
UNSUPPORTED_MECHANISMS = {
    "OAUTHBEARER": "aiokafka needs a token provider written in Python for it (an AbstractTokenProvider), which "
                   "leadsla does not have; use PLAIN or SCRAM-SHA-256/512",
    "GSSAPI": "Kerberos needs the gssapi library and a ticket, which leadsla does not set up; use PLAIN or "
              "SCRAM-SHA-256/512",
}
_USER = "LEADSLA_KAFKA_SASL_USERNAME"
_PASSWORD = "LEADSLA_KAFKA_SASL_PASSWORD"
_CAFILE = "LEADSLA_KAFKA_SSL_CAFILE"


class KafkaSecurityError(ValueError):
    """A combination of settings that cannot work; the message is one line
    naming the variables."""


@dataclass(frozen=True)
class KafkaSecurity:
    """How to reach the broker: ``protocol`` (one of ``PROTOCOLS``), the SASL
    ``mechanism``, ``username`` and ``password``, and for TLS the PEM
    ``cafile`` (None: the system's CA certificates) and, for mutual TLS,
    ``certfile`` and ``keyfile``. The default is PLAINTEXT, as today."""

    protocol: str = "PLAINTEXT"
    mechanism: str | None = None
    username: str | None = None
    password: SecretStr | None = field(default=None, repr=False)
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def check(self) -> None:
        """Raise KafkaSecurityError (one line) unless the settings can work:
        a known protocol and mechanism; with SASL a mechanism, a user name
        and a password; without SASL none of them; without TLS no TLS files;
        files that exist and load (a certificate needs its key). Builds the
        TLS context, so a bad PEM file is found here, not at connect time."""
        if self.protocol not in PROTOCOLS:
            raise KafkaSecurityError(f"LEADSLA_KAFKA_SECURITY_PROTOCOL must be one of {', '.join(PROTOCOLS)}, "
                                     f"got {self.protocol!r}")
        if self.mechanism in UNSUPPORTED_MECHANISMS:
            raise KafkaSecurityError(f"LEADSLA_KAFKA_SASL_MECHANISM={self.mechanism} is not supported: "
                                     f"{UNSUPPORTED_MECHANISMS[self.mechanism]}")
        if self.mechanism is not None and self.mechanism not in MECHANISMS:
            raise KafkaSecurityError(f"LEADSLA_KAFKA_SASL_MECHANISM must be one of {', '.join(MECHANISMS)}, "
                                     f"got {self.mechanism!r}")
        credentials = (("LEADSLA_KAFKA_SASL_MECHANISM", self.mechanism), (_USER, self.username),
                       (_PASSWORD, self.password))
        if self.sasl:
            missing = [name for name, value in credentials if not value]
            if missing:
                password = " (or LEADSLA_KAFKA_SASL_PASSWORD_FILE)" if _PASSWORD in missing else ""
                raise KafkaSecurityError(f"LEADSLA_KAFKA_SECURITY_PROTOCOL={self.protocol} needs "
                                         f"{', '.join(missing)}{password}")
        else:
            given = [name for name, value in credentials if value]
            if given:
                # Most often a forgotten protocol: the credentials would silently not be sent.
                raise KafkaSecurityError(f"{', '.join(given)} set, but LEADSLA_KAFKA_SECURITY_PROTOCOL is "
                                         f"{self.protocol}, which sends no credentials; use SASL_SSL or SASL_PLAINTEXT")
        files = (("LEADSLA_KAFKA_SSL_CAFILE", self.cafile), ("LEADSLA_KAFKA_SSL_CERTFILE", self.certfile),
                 ("LEADSLA_KAFKA_SSL_KEYFILE", self.keyfile))
        if not self.tls:
            given = [name for name, value in files if value is not None]
            if given:
                raise KafkaSecurityError(f"{', '.join(given)} set, but LEADSLA_KAFKA_SECURITY_PROTOCOL is "
                                         f"{self.protocol}, which does not use TLS; use SSL or SASL_SSL")
            return
        for name, path in files:
            if path is not None and not path.is_file():
                raise KafkaSecurityError(f"{name}: no such file: {path}")
        if (self.certfile is None) != (self.keyfile is None):
            raise KafkaSecurityError("mutual TLS needs both LEADSLA_KAFKA_SSL_CERTFILE and LEADSLA_KAFKA_SSL_KEYFILE")
        self.ssl_context()

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context (None without TLS): the broker's certificate and
        host name verified against ``cafile`` or the system's CAs, and the
        client certificate for mutual TLS. Raises KafkaSecurityError for a
        file that is not PEM, or a key that does not match its certificate."""
        return _context(self.cafile, self.certfile, self.keyfile) if self.tls else None

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer, admin client
        and ``create_conn``. PLAINTEXT: none, so those clients are built
        exactly as without this module."""
        if self.protocol == "PLAINTEXT":
            return {}
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        if self.tls:
            kwargs["ssl_context"] = self.ssl_context()
        if self.sasl:
            kwargs.update(sasl_mechanism=self.mechanism, sasl_plain_username=self.username,
                          sasl_plain_password=self._sasl_password())
        return kwargs

    def faust_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``faust.App`` (``broker_credentials``); Faust
        hands them to each of its aiokafka clients. PLAINTEXT: none."""
        import faust

        if self.protocol == "PLAINTEXT":
            return {}
        if not self.sasl:
            return {"broker_credentials": faust.SSLCredentials(self.ssl_context())}
        return {"broker_credentials": faust.SASLCredentials(
            username=self.username, password=self._sasl_password(), ssl_context=self.ssl_context(),
            mechanism=self.mechanism)}

    def _sasl_password(self) -> str | None:
        """The password as a client takes it; with SCRAM, aiokafka is first
        made to name a refused login (``_scram_errors_named``)."""
        if self.mechanism and self.mechanism.startswith("SCRAM-"):
            _scram_errors_named()
        return self.password.get_secret_value() if self.password else None

    def describe(self) -> str:
        """``SASL_SSL, SCRAM-SHA-512 as 'svc-leadsla', CA /etc/ca.pem`` (no password)."""
        parts = [self.protocol]
        if self.sasl:
            parts.append(f"{self.mechanism} as {self.username!r}")
        if self.tls:
            parts.append(f"CA {self.cafile}" if self.cafile else "the system's CAs")
            if self.certfile:
                parts.append(f"client certificate {self.certfile}")
        return ", ".join(parts)

    def explain(self, exc: BaseException) -> str | None:
        """One line naming the cause when ``exc`` (or what it was raised
        from) is a refused login or a failed TLS handshake; None for any
        other error (a broker that is down, a timeout), which may pass."""
        from aiokafka import errors

        seen: set[int] = set()
        while exc is not None and id(exc) not in seen:
            seen.add(id(exc))
            line = self._explain_one(exc, errors)
            if line is not None:
                return line
            exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
        return None

    def _explain_one(self, exc: BaseException, errors: Any) -> str | None:
        if isinstance(exc, ssl.SSLCertVerificationError):
            trust = f"by {_CAFILE} ({self.cafile})" if self.cafile else f"by the system's CA certificates (set {_CAFILE})"
            why = exc.verify_message or exc.reason or "certificate verify failed"
            return f"the broker's certificate is not trusted {trust}: certificate verify failed: {why}"
        if isinstance(exc, ssl.SSLError):
            reason = (exc.reason or str(exc)).lower().replace("_", " ")
            if "certificate required" in reason or ("handshake failure" in reason and self.certfile is None):
                return ("the broker refused the TLS connection: it requires a client certificate "
                        f"(set LEADSLA_KAFKA_SSL_CERTFILE and LEADSLA_KAFKA_SSL_KEYFILE): {reason}")
            if "unknown ca" in reason or "bad certificate" in reason or "certificate unknown" in reason:
                return ("the broker refused the client certificate LEADSLA_KAFKA_SSL_CERTFILE "
                        f"({self.certfile}): {reason}")
            if "wrong version number" in reason or "record layer failure" in reason:
                return (f"the broker did not answer in TLS ({reason}): does it listen with TLS on this port? "
                        f"LEADSLA_KAFKA_SECURITY_PROTOCOL is {self.protocol}")
            return f"the TLS handshake with the broker failed: {reason}"
        if isinstance(exc, errors.SaslAuthenticationFailed | SaslRefused):
            # aiokafka's str() prefixes "[Error 58] SaslAuthenticationFailed: "; the broker's words are args[0].
            said = str(exc.args[0]).strip() if exc.args else ""
            said = f" (the broker said: {said})" if said and "AIOKafkaConnection" not in said else ""
            return (f"the broker refused the SASL login for user {self.username!r} ({self.mechanism}){said}: "
                    f"check {_USER} / {_PASSWORD}")
        if isinstance(exc, errors.UnsupportedSaslMechanismError | errors.IllegalSaslStateError):
            return (f"the broker does not accept the SASL mechanism {self.mechanism}: check "
                    "LEADSLA_KAFKA_SASL_MECHANISM and LEADSLA_KAFKA_SECURITY_PROTOCOL")
        return None


class SaslRefused(ValueError):
    """The broker's SCRAM answer was an error (``e=...``, RFC 5802)."""


@functools.cache
def _scram_errors_named() -> None:
    """Make aiokafka's SCRAM client report the broker's refusal.

    A broker that refuses a SCRAM login ends the exchange with ``e=<reason>``
    (``unknown-user``, ``invalid-proof``); aiokafka 0.14 looks only for the
    server signature ``v=`` and fails with ``KeyError('v')``, which says
    nothing. Patched once per process, and only when SCRAM is used."""
    from aiokafka.conn import ScramAuthenticator

    original = ScramAuthenticator.process_server_final_message

    def process_server_final_message(self: Any, server_final: str) -> None:
        params = dict(pair.split("=", 1) for pair in server_final.split(",") if "=" in pair)
        if "e" in params and "v" not in params:
            raise SaslRefused(params["e"])
        original(self, server_final)

    ScramAuthenticator.process_server_final_message = process_server_final_message  # type: ignore[method-assign]


@functools.lru_cache(maxsize=8)
def _context(cafile: Path | None, certfile: Path | None, keyfile: Path | None) -> ssl.SSLContext:
    # Cached: a worker opens many clients, and each would read and parse the
    # same files again; a changed file needs a restart, as any setting does.
    try:
        context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    except (ssl.SSLError, OSError) as exc:
        raise KafkaSecurityError(f"{_CAFILE} ({cafile}) holds no usable PEM CA certificate: {_reason(exc)}") from None
    if certfile is not None and keyfile is not None:
        try:
            # An encrypted key would make OpenSSL ask for its pass phrase on
            # the terminal; an empty one fails at once instead.
            context.load_cert_chain(str(certfile), str(keyfile), password=lambda: b"")
        except (ssl.SSLError, OSError) as exc:
            raise KafkaSecurityError(
                f"LEADSLA_KAFKA_SSL_CERTFILE ({certfile}) and LEADSLA_KAFKA_SSL_KEYFILE ({keyfile}) do not load "
                f"as a PEM certificate and its unencrypted key: {_reason(exc)}") from None
    return context


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).lower().replace("_", " ")
    return getattr(exc, "strerror", None) or str(exc)
