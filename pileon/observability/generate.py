"""Write the generated monitoring files: ``dashboards/*.json`` and
``prometheus/pileon-rules.yml`` (a test fails when they differ from this code's output)."""

from __future__ import annotations

from pathlib import Path

from pileon.observability import dashboards, rules

REPO = Path(__file__).resolve().parents[2]


def outputs(root: Path = REPO) -> dict[Path, str]:
    files = {root / "dashboards" / f"{name}.json": dashboards.render(name)
             for name in dashboards.DASHBOARDS}
    files[root / "prometheus" / "pileon-rules.yml"] = rules.render()
    return files


def write(root: Path = REPO) -> list[Path]:
    written = []
    for path, text in outputs(root).items():
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            written.append(path)
    return written
