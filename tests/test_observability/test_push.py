"""``pileon dashboards push`` against an HTTP double of Grafana's folder and dashboard API
(no Grafana server can run here): the requests grafana-client makes, and idempotency."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pileon.cli.main import main
from tests.conftest import REPO


class GrafanaDouble:
    """Grafana's /api/folders and /api/dashboards/db, in memory, behind a bearer token."""

    def __init__(self, token: str) -> None:
        self.folders: dict[str, str] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.posts: list[dict[str, Any]] = []
        double = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, body: Any) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {token}":
                    self._reply(401, {"message": "Unauthorized"})
                    return False
                return True

            def do_GET(self) -> None:
                if not self._authorised():
                    return
                uid = self.path.rsplit("/", 1)[1]
                if self.path.startswith("/api/folders/") and uid in double.folders:
                    self._reply(200, {"uid": uid, "title": double.folders[uid]})
                else:
                    self._reply(404, {"message": "folder not found"})

            def do_POST(self) -> None:
                if not self._authorised():
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == "/api/folders":
                    if body["uid"] in double.folders:
                        self._reply(409, {"message": "folder exists"})
                        return
                    double.folders[body["uid"]] = body["title"]
                    self._reply(200, {"uid": body["uid"]})
                elif self.path == "/api/dashboards/db":
                    double.posts.append(body)
                    uid = body["dashboard"]["uid"]
                    if uid in double.dashboards and not body.get("overwrite"):
                        self._reply(412, {"message": "version-mismatch"})
                        return
                    double.dashboards[uid] = body
                    self._reply(200, {"uid": uid, "status": "success"})
                else:
                    self._reply(404, {"message": "not found"})

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def grafana() -> Iterator[GrafanaDouble]:
    double = GrafanaDouble("tok-123")
    yield double
    double.close()


def _push(grafana: GrafanaDouble, token_file: Path) -> int:
    return main(["dashboards", "push", "--grafana-url", grafana.url,
                 "--token-file", str(token_file)])


class TestDashboardsPush:
    def test_creates_the_folder_and_uploads_every_dashboard(
        self, grafana: GrafanaDouble, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        token = tmp_path / "token"
        token.write_text("tok-123\n")
        assert _push(grafana, token) == 0
        assert grafana.folders == {"pileon": "pileon"}
        assert set(grafana.dashboards) == {"pileon-overview", "pileon-person", "pileon-pipeline"}
        assert all(p["folderUid"] == "pileon" and p["overwrite"] for p in grafana.posts)
        sent = grafana.dashboards["pileon-person"]["dashboard"]
        on_disk = json.loads((REPO / "dashboards" / "person.json").read_text())
        assert sent == {k: v for k, v in on_disk.items() if k != "id"}
        assert "(created)" in capsys.readouterr().out

    def test_pushing_again_updates_in_place(self, grafana: GrafanaDouble, tmp_path: Path) -> None:
        token = tmp_path / "token"
        token.write_text("tok-123")
        assert _push(grafana, token) == 0
        assert _push(grafana, token) == 0
        assert len(grafana.folders) == 1 and len(grafana.dashboards) == 3
        assert len(grafana.posts) == 6

    def test_bad_token_fails_with_one_line(
        self, grafana: GrafanaDouble, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        token = tmp_path / "token"
        token.write_text("wrong")
        assert _push(grafana, token) == 2
        assert "Unauthorized" in capsys.readouterr().err
        assert not grafana.dashboards

    def test_pushes_the_files_of_a_directory_when_given_one(
        self, grafana: GrafanaDouble, tmp_path: Path
    ) -> None:
        token = tmp_path / "token"
        token.write_text("tok-123")
        board = json.loads((REPO / "dashboards" / "overview.json").read_text())
        board["title"] = "edited here"
        (tmp_path / "boards").mkdir()
        (tmp_path / "boards" / "overview.json").write_text(json.dumps(board))
        assert main(["dashboards", "push", "--grafana-url", grafana.url, "--token-file",
                     str(token), "--dir", str(tmp_path / "boards")]) == 0
        assert set(grafana.dashboards) == {"pileon-overview"}
        assert grafana.dashboards["pileon-overview"]["dashboard"]["title"] == "edited here"
