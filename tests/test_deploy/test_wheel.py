"""What ``pip install .`` puts in site-packages: one top-level package, and a pileon that works
without the checkout (package data, not paths into the repository)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                           "-w", str(out), str(REPO)], check=True, capture_output=True, text=True)
    (out / "build.log").write_text(done.stdout + done.stderr)
    yield next(out.glob("pileon-*.whl"))


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    return target


def _run(installed: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILEON_")}
    env["PYTHONPATH"] = str(installed)  # ahead of the checkout's editable install
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


class TestWheel:
    def test_builds_without_setuptools_warnings(self, wheel: Path) -> None:
        log = (wheel.parent / "build.log").read_text()
        assert "experimental" not in log and "BuildBackendWarning" not in log, log[-2000:]

    def test_installs_only_the_pileon_package(self, wheel: Path) -> None:
        names = zipfile.ZipFile(wheel).namelist()
        tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
        assert tops == {"pileon"}
        top_level = next(n for n in names if n.endswith("top_level.txt"))
        assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["pileon"]

    def test_carries_its_package_data_and_kernels(self, wheel: Path) -> None:
        names = set(zipfile.ZipFile(wheel).namelist())
        assert "pileon/core/watchlist.example.yaml" in names
        assert "pileon/connectors/webhook-openapi.yaml" in names
        assert {"pileon/console/templates/incident.html", "pileon/console/static/console.css",
                "pileon/console/migrations/script.py.mako",
                "pileon/console/migrations/versions/0001_case_database.py"} <= names
        assert any(n.startswith("pileon/streams/detection/neardup/_kernels") and n.endswith(".so")
                   for n in names)

    def test_runs_from_site_packages_outside_the_checkout(
        self, installed: Path, tmp_path: Path
    ) -> None:
        where = _run(installed, tmp_path, "-c", "import pileon; print(pileon.__file__)")
        assert where.stdout.startswith(str(installed)), where.stderr
        done = _run(installed, tmp_path, "-m", "pileon", "check-config")
        assert done.returncode == 0, done.stderr
        assert "watchlist" in done.stdout and str(installed) in done.stdout

    def test_console_database_is_made_from_site_packages(
        self, installed: Path, tmp_path: Path
    ) -> None:
        done = _run(installed, tmp_path, "-m", "pileon", "console", "add-user", "ana",
                    "--role", "admin")
        assert done.returncode == 0, done.stderr
        assert "password (shown once)" in done.stdout
        assert (tmp_path / "pileon-console" / "console.db").exists()
        again = _run(installed, tmp_path, "-m", "pileon", "console", "add-user", "ana",
                     "--role", "viewer")
        assert again.returncode == 2 and again.stderr == "pileon: username: 'ana' exists\n"

    def test_generate_writes_into_a_root_given(self, installed: Path, tmp_path: Path) -> None:
        done = _run(installed, tmp_path, "-m", "pileon", "generate", "--root", "out")
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "out" / "dashboards" / "person.json").exists()
        assert (tmp_path / "out" / "helm" / "pileon" / "files" / "monitoring.json").exists()
        expected = (REPO / "prometheus" / "pileon-rules.yml").read_text()
        assert (tmp_path / "out" / "prometheus" / "pileon-rules.yml").read_text() == expected
