"""Connection security for every Kafka client of a pileon process (TLS, SASL).

Set once at start-up from the settings (:func:`configure`); each kafka-python client adds
:func:`client_config` to its arguments, and the Faust app gets :func:`faust_credentials`.
The SASL password is read from a file (a mounted secret), never from an env var or the config.
"""

from __future__ import annotations

import ssl
from typing import Any

from pileon.settings import ConfigError, KafkaSettings

_CONFIG: dict[str, Any] = {}


def configure(kafka: KafkaSettings) -> None:
    _CONFIG.clear()
    _CONFIG.update(_client_config(kafka))


def client_config() -> dict[str, Any]:
    """kafka-python arguments for the configured security (empty for PLAINTEXT)."""
    return dict(_CONFIG)


def _password(kafka: KafkaSettings) -> str:
    if kafka.sasl_password_file is None or kafka.sasl_username is None:
        raise ConfigError("invalid setting 'kafka.sasl_username': SASL needs "
                          "kafka.sasl_username and kafka.sasl_password_file")
    try:
        return kafka.sasl_password_file.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"invalid setting 'kafka.sasl_password_file': {exc}") from None


def _client_config(kafka: KafkaSettings) -> dict[str, Any]:
    protocol = kafka.security_protocol
    if protocol == "PLAINTEXT":
        return {}
    config: dict[str, Any] = {"security_protocol": protocol}
    if protocol.startswith("SASL"):
        config.update(sasl_mechanism=kafka.sasl_mechanism,
                      sasl_plain_username=kafka.sasl_username,
                      sasl_plain_password=_password(kafka))
    if protocol.endswith("SSL") and kafka.ssl_cafile is not None:
        config["ssl_cafile"] = str(kafka.ssl_cafile)
    return config


def faust_credentials(kafka: KafkaSettings) -> Any:
    """``broker_credentials`` for the Faust app, or None for PLAINTEXT."""
    import faust

    protocol = kafka.security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = None
    if protocol.endswith("SSL"):
        context = ssl.create_default_context(
            cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    return faust.SASLCredentials(
        username=kafka.sasl_username, password=_password(kafka), ssl_context=context,
        mechanism=kafka.sasl_mechanism,
    )
