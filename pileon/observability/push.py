"""``pileon dashboards push``: create the folder and upload the dashboards with grafana-client.

Idempotent: the folder is looked up by its stable uid and created only when missing, and each
dashboard is posted with ``overwrite`` under its stable uid, so pushing again updates in place.
The token comes from ``GRAFANA_TOKEN`` or a file (a mounted secret), never from the command line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError

FOLDER_UID = "pileon"
FOLDER_TITLE = "pileon"


@dataclass(frozen=True)
class Pushed:
    folder_created: bool
    dashboards: list[str]  # uids


def push(url: str, token: str | None, files: list[Path], timeout: float = 10.0) -> Pushed:
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
    for path in files:
        dashboard = json.loads(path.read_text())
        dashboard.pop("id", None)  # Grafana assigns ids; the uid is what is stable
        api.dashboard.update_dashboard({
            "dashboard": dashboard, "folderUid": FOLDER_UID, "overwrite": True,
            "message": f"pileon dashboards push ({path.name})",
        })
        uids.append(dashboard["uid"])
    return Pushed(created, uids)
