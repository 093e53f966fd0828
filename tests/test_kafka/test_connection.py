from __future__ import annotations

from pathlib import Path

import faust
import pytest

from pileon.core.settings import ConfigError, KafkaSettings
from pileon.kafka.connection import ConnectionConfig, as_connection


class TestConnectionConfig:
    def test_plaintext_adds_only_the_servers(self) -> None:
        conn = ConnectionConfig.from_settings(KafkaSettings(bootstrap="k1:9092,k2:9092"))
        assert conn.kafka_python() == {"bootstrap_servers": "k1:9092,k2:9092"}
        assert conn.faust_broker() == "kafka://k1:9092;kafka://k2:9092"
        assert conn.faust_credentials() is None

    def test_a_bare_address_means_plaintext_to_it(self) -> None:
        assert as_connection("127.0.0.1:9") == ConnectionConfig("127.0.0.1:9")

    def test_sasl_ssl_reads_the_password_from_its_file(self, tmp_path: Path) -> None:
        secret = tmp_path / "password"
        secret.write_text("hunter2\n")
        kafka = KafkaSettings(bootstrap="k:9093", security_protocol="SASL_SSL",
                              sasl_mechanism="SCRAM-SHA-512", sasl_username="pileon",
                              sasl_password_file=secret)
        conn = ConnectionConfig.from_settings(kafka)
        assert conn.kafka_python(client_id="x") == {
            "bootstrap_servers": "k:9093", "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "pileon",
            "sasl_plain_password": "hunter2", "client_id": "x"}
        creds = conn.faust_credentials()
        assert isinstance(creds, faust.SASLCredentials)
        assert creds.ssl_context is not None
        assert "hunter2" not in repr(conn)

    def test_a_bootstrap_flag_overrides_only_the_address(self, tmp_path: Path) -> None:
        kafka = KafkaSettings(bootstrap="k:9093", security_protocol="SSL")
        conn = ConnectionConfig.from_settings(kafka, "other:9093")
        assert conn.bootstrap_servers == "other:9093"
        assert conn.security_protocol == "SSL"

    def test_sasl_without_password_file_is_a_config_error(self) -> None:
        with pytest.raises(ConfigError, match="sasl_password_file"):
            ConnectionConfig.from_settings(KafkaSettings(
                bootstrap="k:9092", security_protocol="SASL_PLAINTEXT", sasl_username="pileon"))

    def test_no_broker_at_all_is_a_config_error(self) -> None:
        with pytest.raises(ConfigError, match=r"kafka\.bootstrap"):
            ConnectionConfig.from_settings(KafkaSettings())

    def test_tls_only_gives_ssl_credentials(self) -> None:
        conn = ConnectionConfig.from_settings(KafkaSettings(bootstrap="k:9093",
                                                            security_protocol="SSL"))
        assert isinstance(conn.faust_credentials(), faust.SSLCredentials)
