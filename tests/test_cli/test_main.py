from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pileon.cli.main import main
from pileon.evidence.chain import EvidenceLog
from tests.factories import mention


def _pileon(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PILEON_")}
    return subprocess.run(
        [sys.executable, "-m", "pileon", *args], capture_output=True, text=True, timeout=60,
        env={**clean, **(env or {})},
    )


class TestCheckConfig:
    def test_valid_config_says_ok(self) -> None:
        result = _pileon("check-config")
        assert result.returncode == 0
        assert "OK" in result.stdout
        assert "embedded" in result.stdout

    def test_bad_field_exits_2_with_one_line_naming_it(self, tmp_path: Path) -> None:
        config = tmp_path / "bad.yaml"
        config.write_text("worker:\n  web_port: 70000\n")
        result = _pileon("--config", str(config), "check-config")
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert "worker.web_port" in lines[0]

    def test_bad_env_var_names_the_field(self) -> None:
        result = _pileon("check-config", env={"PILEON_KAFKA__PARTITIONS": "many"})
        assert result.returncode == 2
        assert "kafka.partitions" in result.stderr

    def test_bad_watchlist_names_the_entry(self, tmp_path: Path) -> None:
        wl = tmp_path / "wl.yaml"
        wl.write_text("persons:\n- {key: ok, display_name: A}\n- {key: ok2}\n")
        result = _pileon("check-config", env={"PILEON_WATCHLIST": str(wl)})
        assert result.returncode == 2
        assert "persons[1].display_name" in result.stderr


class TestVerify:
    def test_missing_path_is_a_clear_error(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["verify", str(tmp_path / "nothing")]) == 2
        assert "neither a bundle" in capsys.readouterr().err

    def test_a_live_chain_with_a_write_under_way_verifies_its_whole_records(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        log = EvidenceLog(tmp_path)
        for _ in range(3):
            log.append(mention(), {"topic": "mentions.clean", "partition": 0, "offset": 0})
        path = log.path("amara")
        path.write_bytes(path.read_bytes() + b'{"seq": 4, "prev": "')
        assert main(["verify", str(path)]) == 0
        out = capsys.readouterr().out
        assert "3 records" in out and "the last 20 bytes are not a whole line" in out


class TestHelp:
    def test_every_demo_option_says_what_it_does(self, capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(SystemExit):
            main(["demo", "--help"])
        text = capsys.readouterr().out
        for option in ("--out", "--follow", "--timeout", "--seed", "--days", "--broker-port"):
            line = text.split(option, 1)[1].split("\n  -", 1)[0]
            assert len(line.split()) > 3, f"{option} has no description"


class TestQuietByDesign:
    def test_expected_library_warnings_are_quieted(self, tmp_path: Path) -> None:
        import logging

        main(["check-config"])
        # kafka-python's "blocking the event loop" on a busy machine, mode's "Timer commit is
        # overlapping" while catching up: scheduling, not faults (see cli/main.py).
        assert logging.getLogger("kafka.net.selector").getEffectiveLevel() == logging.ERROR
        assert logging.getLogger("mode.timers").getEffectiveLevel() == logging.ERROR
