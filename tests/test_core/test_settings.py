from __future__ import annotations

from pathlib import Path

import pytest

from pileon.core.settings import ConfigError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in [n for n in os.environ if n.startswith("PILEON_")]:
        monkeypatch.delenv(name)


class TestLoadSettings:
    def test_defaults_use_the_embedded_broker(self) -> None:
        settings = load_settings()
        assert settings.kafka.bootstrap is None
        assert settings.worker.web_bind == "127.0.0.1"

    def test_yaml_file_sets_nested_fields(self, tmp_path: Path) -> None:
        config = tmp_path / "pileon.yaml"
        config.write_text("kafka:\n  bootstrap: k1:9092\n  partitions: 8\n")
        settings = load_settings(config)
        assert settings.kafka.bootstrap == "k1:9092"
        assert settings.kafka.partitions == 8

    def test_env_overrides_the_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        config = tmp_path / "pileon.yaml"
        config.write_text("kafka:\n  bootstrap: from-file:9092\n")
        monkeypatch.setenv("PILEON_KAFKA__BOOTSTRAP", "from-env:9092")
        assert load_settings(config).kafka.bootstrap == "from-env:9092"

    def test_config_path_from_env(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        config = tmp_path / "c.yaml"
        config.write_text("log_level: DEBUG\n")
        monkeypatch.setenv("PILEON_CONFIG", str(config))
        assert load_settings().log_level == "DEBUG"

    def test_bad_value_names_the_field_in_one_line(self, tmp_path: Path) -> None:
        config = tmp_path / "pileon.yaml"
        config.write_text("kafka:\n  partitions: 0\n")
        with pytest.raises(ConfigError) as err:
            load_settings(config)
        message = str(err.value)
        assert "kafka.partitions" in message
        assert f"{config} line 2" in message
        assert "\n" not in message

    def test_unknown_field_is_rejected(self, tmp_path: Path) -> None:
        config = tmp_path / "pileon.yaml"
        config.write_text("kafka:\n  bootstrp: x:1\n")
        with pytest.raises(ConfigError, match=r"kafka\.bootstrp"):
            load_settings(config)

    def test_escalate_below_open_is_rejected(self) -> None:
        with pytest.raises(ConfigError, match=r"detection\.escalate_score"):
            load_settings(detection={"open_score": 10, "escalate_score": 5})

    def test_missing_config_file_is_one_clear_error(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="not found"):
            load_settings(tmp_path / "absent.yaml")

    def test_yaml_syntax_error_is_one_line(self, tmp_path: Path) -> None:
        config = tmp_path / "pileon.yaml"
        config.write_text("kafka: [unclosed\n")
        with pytest.raises(ConfigError) as err:
            load_settings(config)
        assert "\n" not in str(err.value) and "line 2, column 1" in str(err.value)

    def test_shipped_example_config_is_valid(self) -> None:
        example = Path(__file__).resolve().parents[2] / "config" / "pileon.example.yaml"
        assert load_settings(example).neardup.threshold == 0.5


class TestSettingsErrorsNameTheProblem:
    def test_a_top_level_list_says_what_is_expected(self, tmp_path: Path) -> None:
        config = tmp_path / "pileon.yaml"
        config.write_text("- kafka: 1\n- worker: 2\n")
        with pytest.raises(ConfigError, match=r"top level must be a mapping .*not a list"):
            load_settings(config)

    def test_bad_json_in_an_environment_variable_names_it(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("PILEON_KAFKA", "{bad json")
        named = r"\(environment variable PILEON_KAFKA\): not valid JSON"
        with pytest.raises(ConfigError, match=named):
            load_settings()

    def test_a_bad_value_from_the_environment_names_the_variable(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("PILEON_WORKER__WEB_PORT", "99999")
        with pytest.raises(ConfigError, match=r"worker\.web_port' \(environment variable "
                                              r"PILEON_WORKER__WEB_PORT\)"):
            load_settings()

    def test_every_bad_field_is_listed_on_its_own_line(self, tmp_path: Path) -> None:
        config = tmp_path / "pileon.yaml"
        config.write_text("worker:\n  web_port: 70000\n  app_id: 'bad id'\n")
        with pytest.raises(ConfigError) as err:
            load_settings(config)
        lines = sorted(str(err.value).splitlines())
        assert len(lines) == 2 and "more)" not in str(err.value)
        assert "worker.app_id" in lines[0] and "line 3" in lines[0]
        assert "worker.web_port" in lines[1] and "line 2" in lines[1]
