from __future__ import annotations

from pathlib import Path

import faust
import pytest

from pileon import kafka_security
from pileon.settings import ConfigError, KafkaSettings


class TestKafkaSecurity:
    def test_plaintext_adds_nothing(self) -> None:
        kafka_security.configure(KafkaSettings())
        assert kafka_security.client_config() == {}
        assert kafka_security.faust_credentials(KafkaSettings()) is None

    def test_sasl_ssl_reads_the_password_from_its_file(self, tmp_path: Path) -> None:
        secret = tmp_path / "password"
        secret.write_text("hunter2\n")
        kafka = KafkaSettings(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                              sasl_username="pileon", sasl_password_file=secret)
        kafka_security.configure(kafka)
        try:
            assert kafka_security.client_config() == {
                "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_plain_username": "pileon", "sasl_plain_password": "hunter2"}
            creds = kafka_security.faust_credentials(kafka)
            assert isinstance(creds, faust.SASLCredentials)
            assert creds.ssl_context is not None
        finally:
            kafka_security.configure(KafkaSettings())

    def test_sasl_without_password_file_is_a_config_error(self) -> None:
        with pytest.raises(ConfigError, match="sasl_password_file"):
            kafka_security.configure(KafkaSettings(security_protocol="SASL_PLAINTEXT",
                                                   sasl_username="pileon"))
        kafka_security.configure(KafkaSettings())

    def test_tls_only_gives_ssl_credentials(self) -> None:
        creds = kafka_security.faust_credentials(KafkaSettings(security_protocol="SSL"))
        assert isinstance(creds, faust.SSLCredentials)
