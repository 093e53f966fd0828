"""Rules pass promtool; every alert has a promtool unit test, its annotations and a runbook."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from pileon.cli.generate import outputs
from pileon.observability import rules
from tests.conftest import REPO

RULES = REPO / "prometheus" / "pileon-rules.yml"
TESTS = REPO / "prometheus" / "pileon-rules.test.yml"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool missing: `make tools` installs it (Debian package prometheus)"
    return path


class TestRules:
    def test_generated_files_are_up_to_date(self) -> None:
        stale = [str(p) for p, text in outputs(REPO).items() if p.read_text() != text]
        assert not stale, f"run `make generate`: {stale}"

    @pytest.mark.tools
    def test_promtool_checks_the_rules(self, promtool: str) -> None:
        done = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True,
                              text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr

    @pytest.mark.tools
    def test_promtool_unit_tests_pass(self, promtool: str) -> None:
        done = subprocess.run([promtool, "test", "rules", str(TESTS)], capture_output=True,
                              text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr

    def test_every_alert_has_a_firing_and_a_quiet_case(self) -> None:
        cases = [c for t in yaml.safe_load(TESTS.read_text())["tests"]
                 for c in t.get("alert_rule_test", [])]
        for alert in rules.alerts():
            mine = [c for c in cases if c["alertname"] == alert.name]
            assert any(c["exp_alerts"] for c in mine), f"{alert.name}: no firing case"
            assert any(not c["exp_alerts"] for c in mine), f"{alert.name}: no quiet case"

    def test_every_alert_has_severity_summary_description_runbook(self) -> None:
        headings = re.findall(r"^## (.+)$", (REPO / "docs" / "runbook.md").read_text(), re.M)
        anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
        for group in yaml.safe_load(RULES.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                assert rule["labels"].get("severity") or "severity" in rule["expr"]
                assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])
                anchor = rule["annotations"]["runbook_url"].rsplit("#", 1)[1]
                assert anchor in anchors, f"docs/runbook.md has no heading for #{anchor}"

    def test_rules_name_no_author_or_text_labels(self) -> None:
        text = RULES.read_text()
        assert not re.search(r"\b(author|handle|text)\b", text)
