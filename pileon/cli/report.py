"""``pileon report BUNDLE --pdf FILE``: the bundle's report as a PDF, printed by headless
Chromium (the same HTML, with its print stylesheet). The bundle is verified first: a report is
not printed from evidence that does not verify."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from pileon.cli.common import CommandError
from pileon.core.settings import Settings
from pileon.core.watchlist import Watchlist

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("report", help="print a bundle's report to PDF (headless Chromium)")
    s.add_argument("bundle", type=Path)
    s.add_argument("--pdf", type=Path, required=True, help="the PDF file to write")
    s.add_argument("--browser", help="Chromium's executable (default: the first of "
                   f"{', '.join(BROWSERS)} on PATH)")
    s.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace, settings: Settings, watchlist: Watchlist) -> int:
    from pileon.evidence import check_bundle

    check = check_bundle(args.bundle)  # raises ChainError: one line, exit 2
    browser = args.browser or next((b for b in map(shutil.which, BROWSERS) if b), None)
    if browser is None:
        raise CommandError("report: no Chromium found (install Debian's chromium, or pass "
                           "--browser); the report is also report.html in the bundle")
    pdf = args.pdf.resolve()
    with tempfile.TemporaryDirectory(prefix="pileon-report-") as profile:
        command = [browser, "--headless", "--disable-gpu", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update",
                   "--disable-sync", f"--user-data-dir={profile}", "--no-pdf-header-footer",
                   f"--print-to-pdf={pdf}", (args.bundle / "report.html").resolve().as_uri()]
        if os.geteuid() == 0:
            command.insert(1, "--no-sandbox")  # Chromium refuses root with its sandbox
        done = subprocess.run(command, capture_output=True, text=True, timeout=120,  # noqa: S603
                              check=False)
    if done.returncode != 0 or not pdf.exists() or pdf.stat().st_size == 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise CommandError(f"report: Chromium did not print the PDF ({last[:200]})")
    print(f"OK: {pdf} ({pdf.stat().st_size // 1024} KiB) from a verified bundle of "
          f"{check.records} records")
    return 0
