"""Write the generated files into a checkout: ``dashboards/*.json``,
``prometheus/pileon-rules.yml`` and their copies in the Helm chart, and the webhook's OpenAPI
description (a test fails when they differ
from this code's output)."""

from __future__ import annotations

from pathlib import Path

from pileon.connectors import openapi
from pileon.observability import dashboards, rules


def outputs(root: Path) -> dict[Path, str]:
    """Every generated file under ``root`` (a checkout of pileon) with its content."""
    files: dict[Path, str] = {}
    # The Helm chart can only read files inside its directory: it gets copies.
    for base in (root, root / "helm" / "pileon" / "files"):
        for name in dashboards.DASHBOARDS:
            files[base / "dashboards" / f"{name}.json"] = dashboards.render(name)
    files[root / "prometheus" / "pileon-rules.yml"] = rules.render()
    files[root / "helm" / "pileon" / "files" / "pileon-rules.yml"] = rules.render()
    files[root / "connectors" / "webhook-openapi.yaml"] = openapi.render()
    return files


def write(root: Path) -> list[Path]:
    """Write the files that differ from this code's output; returns those written."""
    written = []
    for path, text in outputs(root).items():
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            written.append(path)
    return written
