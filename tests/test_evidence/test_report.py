"""The bundle's report: what a lawyer reads. Its content from a generated bundle (summary,
chart with axes and band, clusters, accounts, every mention, chain of custody), hostile texts
shown as text, and the PDF printed by headless Chromium, its pages kept as images
(``test-artifacts/report/``) and its text checked with pdftotext."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.conftest import REPO
from tests.test_console.helpers import TEMPLATE, write_archive

ARTIFACTS = Path(os.environ.get("PILEON_TEST_ARTIFACTS", REPO / "test-artifacts")) / "report"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    event = write_archive(root)
    return root / "incidents" / event.incident_id


def test_the_report_says_who_when_how_many_and_how_to_verify(bundle: Path) -> None:
    page = (bundle / "report.html").read_text()
    for what in ("Protected person", "Opened", "2026-11-20 12:00 UTC (13:00 Europe/Berlin)",
                 "Mentions", "14 from the incident", "Accounts", "looks coordinated",
                 "evidence, not a verdict", "Chain of custody", "How to verify",
                 "pileon verify FOLDER --key", "What this attests, and what it does not"):
        assert what in page, what
    head = orjson.loads((bundle / "manifest.json").read_bytes())["chain"]["head_hash"]
    assert head in page
    assert page.count('<td class="text">' + TEMPLATE) >= 11  # every copy, listed
    assert "troll@" not in page and "https://bad.example/users/troll" in page  # ids, not guesses


def test_the_chart_has_axes_a_band_and_the_opening(bundle: Path) -> None:
    svg = re.search(r"<svg.*?</svg>", (bundle / "report.html").read_text(), re.S).group(0)  # type: ignore[union-attr]
    assert 'class="band"' in svg and 'class="baseline"' in svg and ">opened</text>" in svg
    assert "per 5 min" in svg and "UTC, from 2026-11-20" in svg and svg.count('class="bar"') >= 2


def test_hostile_text_is_shown_not_run_and_nothing_is_fetched(bundle: Path) -> None:
    page = (bundle / "report.html").read_text()
    assert "<script" not in page and "onerror=" not in page.replace("onerror=alert", "")
    assert "&lt;script&gt;document.title=" in page
    assert not re.search(r'(src|href)="(?!https?://example\.invalid|https://bad\.example)', page)
    assert "<link" not in page and "@import" not in page


@pytest.mark.slow
def test_the_pdf_prints_every_section(bundle: Path, tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    done = subprocess.run([sys.executable, "-m", "pileon", "report", str(bundle), "--pdf",
                           str(pdf)], capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    assert "from a verified bundle of 20 records" in done.stdout
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    for what in ("Evidence report: possible pile-on against amara", "Chain of custody",
                 "you are a fraud", "<script>document.title=", "How to verify"):
        assert what in text, what
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("page-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(pdf), str(ARTIFACTS / "page")],
                   check=True, timeout=120)
    pages = sorted(ARTIFACTS.glob("page-*.png"))
    assert len(pages) >= 2 and all(p.stat().st_size > 5000 for p in pages)


@pytest.mark.slow
def test_no_pdf_from_a_bundle_that_does_not_verify(bundle: Path, tmp_path: Path) -> None:
    broken = tmp_path / "b"
    subprocess.run(["cp", "-r", str(bundle), str(broken)], check=True)
    (broken / "report.html").write_text("<p>looks organic</p>")
    done = subprocess.run([sys.executable, "-m", "pileon", "report", str(broken), "--pdf",
                           str(tmp_path / "x.pdf")], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2 and "report.html: SHA-256 or size" in done.stderr
    assert not (tmp_path / "x.pdf").exists()
