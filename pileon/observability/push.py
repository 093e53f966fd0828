"""``pileon dashboards push``: create the folder and upload the dashboards with grafana-client.

Idempotent: the folder is looked up by its stable uid and created only when missing, and each
dashboard is posted with ``overwrite`` under its stable uid, so pushing again updates in place.
The token comes from ``GRAFANA_TOKEN`` or a file (a mounted secret), never from the command line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError

from pileon.observability import dashboards

FOLDER_UID = "pileon"
FOLDER_TITLE = "pileon"


@dataclass(frozen=True)
class Pushed:
    folder_created: bool
    dashboards: list[str]  # uids


def rendered() -> list[tuple[str, dict[str, Any]]]:
    """This version's dashboards, built in memory (no files needed: works from a wheel)."""
    return [(f"{name}.json", json.loads(dashboards.render(name))) for name in dashboards.DASHBOARDS]


def from_files(files: list[Path]) -> list[tuple[str, dict[str, Any]]]:
    return [(path.name, json.loads(path.read_text())) for path in files]


def push(
    url: str, token: str | None, boards: list[tuple[str, dict[str, Any]]], timeout: float = 10.0
) -> Pushed:
    api = GrafanaApi.from_url(url, credential=token, timeout=timeout)
    created = False
    try:
        api.folder.get_folder(FOLDER_UID)
    except GrafanaClientError as exc:
        if exc.status_code != 404:
            raise
        api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
        created = True
    uids = []
    for name, dashboard in boards:
        dashboard.pop("id", None)  # Grafana assigns ids; the uid is what is stable
        api.dashboard.update_dashboard({
            "dashboard": dashboard, "folderUid": FOLDER_UID, "overwrite": True,
            "message": f"pileon dashboards push ({name})",
        })
        uids.append(dashboard["uid"])
    return Pushed(created, uids)
