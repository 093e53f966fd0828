"""How a pileon process reaches Kafka: one explicit object handed to every client.

A :class:`ConnectionConfig` holds the bootstrap servers and the security (TLS, SASL) and turns
them into what each client library takes (:meth:`~ConnectionConfig.kafka_python`,
:meth:`~ConnectionConfig.faust_broker`, :meth:`~ConnectionConfig.faust_credentials`). It is
built once, at start-up, from the settings (:meth:`~ConnectionConfig.from_settings`) and passed
down; there is no module-level default, so a client set up outside ``pileon.cli`` cannot
silently fall back to PLAINTEXT (it used to read a global that only ``cli.main`` filled in).

quix-streams' ``ConnectionConfig`` is the model. As there, a client also accepts a bare
``"host:port"`` string (:data:`Connection`), which means exactly that address over PLAINTEXT:
tests, benchmarks and the embedded broker use it; nothing else has to guess.

The SASL password is read from a file (a mounted secret), never from an env var or the config,
and it is kept out of ``repr``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pileon.core.settings import ConfigError, KafkaSettings


@dataclass(frozen=True)
class ConnectionConfig:
    """The brokers and the security to reach them with."""

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: Path | None = None

    @classmethod
    def from_settings(cls, kafka: KafkaSettings, bootstrap: str | None = None) -> ConnectionConfig:
        """The connection the settings describe; ``bootstrap`` overrides ``kafka.bootstrap``
        (a ``--bootstrap`` flag, or the embedded broker's address)."""
        servers = bootstrap or kafka.bootstrap
        if not servers:
            raise ConfigError("invalid setting 'kafka.bootstrap': no broker configured")
        protocol = kafka.security_protocol
        password = _password(kafka) if protocol.startswith("SASL") else None
        return cls(
            bootstrap_servers=servers, security_protocol=protocol,
            sasl_mechanism=kafka.sasl_mechanism if password is not None else None,
            sasl_username=kafka.sasl_username if password is not None else None,
            sasl_password=password,
            ssl_cafile=kafka.ssl_cafile if protocol.endswith("SSL") else None,
        )

    def security(self) -> dict[str, Any]:
        """kafka-python's security arguments (empty for PLAINTEXT)."""
        if self.security_protocol == "PLAINTEXT":
            return {}
        config: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.security_protocol.startswith("SASL"):
            config.update(sasl_mechanism=self.sasl_mechanism,
                          sasl_plain_username=self.sasl_username,
                          sasl_plain_password=self.sasl_password)
        if self.security_protocol.endswith("SSL") and self.ssl_cafile is not None:
            config["ssl_cafile"] = str(self.ssl_cafile)
        return config

    def kafka_python(self, **extra: Any) -> dict[str, Any]:
        """Keyword arguments for a kafka-python client: servers, security, then ``extra``."""
        return {"bootstrap_servers": self.bootstrap_servers, **self.security(), **extra}

    def aiokafka(self, **extra: Any) -> dict[str, Any]:
        """Keyword arguments for an aiokafka client (admin, consumer, producer)."""
        config: dict[str, Any] = {"bootstrap_servers": self.bootstrap_servers,
                                  "security_protocol": self.security_protocol}
        if self.security_protocol.startswith("SASL"):
            config.update(sasl_mechanism=self.sasl_mechanism,
                          sasl_plain_username=self.sasl_username,
                          sasl_plain_password=self.sasl_password)
        if self.security_protocol.endswith("SSL"):
            config["ssl_context"] = self.ssl_context()
        return {**config, **extra}

    def ssl_context(self) -> ssl.SSLContext:
        """TLS verifying the brokers against ``ssl_cafile`` (or the system's CAs)."""
        return ssl.create_default_context(
            cafile=str(self.ssl_cafile) if self.ssl_cafile else None)

    def faust_broker(self) -> str:
        """Faust's ``broker`` URL list (``kafka://a:9092;kafka://b:9092``)."""
        return ";".join(f"kafka://{s.strip()}" for s in self.bootstrap_servers.split(",")
                        if s.strip())

    def faust_credentials(self) -> Any:
        """Faust's ``broker_credentials``, or None for PLAINTEXT."""
        import faust

        protocol = self.security_protocol
        if protocol == "PLAINTEXT":
            return None
        context = None
        if protocol.endswith("SSL"):
            context = self.ssl_context()
        if protocol == "SSL":
            return faust.SSLCredentials(context)
        return faust.SASLCredentials(
            username=self.sasl_username, password=self.sasl_password, ssl_context=context,
            mechanism=self.sasl_mechanism,
        )


Connection = ConnectionConfig | str
"""What a client takes: a full config, or a bare ``"host:port[,host:port]"`` for PLAINTEXT."""


def as_connection(connection: Connection) -> ConnectionConfig:
    """``connection`` as a :class:`ConnectionConfig` (a bare string is PLAINTEXT)."""
    if isinstance(connection, ConnectionConfig):
        return connection
    return ConnectionConfig(bootstrap_servers=connection)


def _password(kafka: KafkaSettings) -> str:
    if kafka.sasl_password_file is None or kafka.sasl_username is None:
        raise ConfigError("invalid setting 'kafka.sasl_username': SASL needs "
                          "kafka.sasl_username and kafka.sasl_password_file")
    try:
        return kafka.sasl_password_file.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"invalid setting 'kafka.sasl_password_file': {exc}") from None
