"""Who may do what: every route for anonymous, viewer, responder, admin and another team's
responder; CSRF; caching and security headers; audit events; login throttling; single
sign-on headers only from the trusted proxy."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from pileon.console.db import AuditEvent, Incident, Note
from tests.test_console.helpers import (
    PASSWORD,
    console_clients,
    console_settings,
    csrf,
    login,
    write_archive,
)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("console")
    event = write_archive(tmp / "evidence")
    with console_clients(tmp) as (sm, clients):
        yield {"sm": sm, "clients": clients, "event": event,
               "csrf": {n: csrf(c) for n, c in clients.items() if n != "anonymous"}}


def _fresh(env: dict[str, Any]) -> TestClient:
    """A new browser: no cookies."""
    return TestClient(env["clients"]["admin"].app, base_url="https://testserver",
                      follow_redirects=False)


def _id(env: dict[str, Any]) -> str:
    return str(env["event"].incident_id)


GETS = ["/incidents", "/incidents/{id}", "/persons/amara", "/evidence/{id}", "/admin/users",
        "/admin/audit"]
POSTS = [("acknowledge", {}), ("assign", {"assignee": "responder"}),
         ("note", {"text": "called the newsroom"}), ("disposition", {"disposition": "unsure"}),
         ("report", {"kind": "platform", "recipient": "Bluesky", "reference": "T-1"}),
         ("resolve", {}), ("reopen", {}), ("export/police-csv", {}), ("export/bundle", {}),
         ("export/mastodon-blocks", {}), ("export/bluesky-modlist", {})]

# Expected status per role: 303 is the redirect to the login page (anonymous) or, for a case
# action, back to the incident; /evidence/<id> redirects to the incident page.
GET_EXPECTED = {
    "anonymous": {p: 303 for p in GETS},
    "viewer": {"/incidents": 200, "/incidents/{id}": 200, "/persons/amara": 200,
               "/evidence/{id}": 303, "/admin/users": 403, "/admin/audit": 403},
    "responder": {"/incidents": 200, "/incidents/{id}": 200, "/persons/amara": 200,
                  "/evidence/{id}": 303, "/admin/users": 403, "/admin/audit": 403},
    "admin": {"/incidents": 200, "/incidents/{id}": 200, "/persons/amara": 200,
              "/evidence/{id}": 303, "/admin/users": 200, "/admin/audit": 200},
    "other": {"/incidents": 200, "/incidents/{id}": 404, "/persons/amara": 404,
              "/evidence/{id}": 404, "/admin/users": 403, "/admin/audit": 403},
}


def _post_expected(role: str, action: str) -> int:
    if role == "anonymous":
        return 303
    if role == "viewer":
        return 403
    if role == "other":
        return 404
    return 200 if action.startswith("export/") else 303


@pytest.mark.parametrize("role", list(GET_EXPECTED))
@pytest.mark.parametrize("path", GETS)
def test_get_matrix(env: dict[str, Any], role: str, path: str) -> None:
    response = env["clients"][role].get(path.format(id=_id(env)))
    assert response.status_code == GET_EXPECTED[role][path], response.text[:300]
    if role == "anonymous":
        assert response.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize("role", list(GET_EXPECTED))
@pytest.mark.parametrize(("action", "data"), POSTS, ids=[a for a, _ in POSTS])
def test_post_matrix(env: dict[str, Any], role: str, action: str, data: dict[str, str]) -> None:
    token = env["csrf"].get(role, "none")
    response = env["clients"][role].post(f"/incidents/{_id(env)}/{action}",
                                         data={"csrf": token, **data})
    assert response.status_code == _post_expected(role, action), response.text[:300]


@pytest.mark.parametrize("role", list(GET_EXPECTED))
def test_health_needs_no_login_and_shows_nothing(env: dict[str, Any], role: str) -> None:
    response = env["clients"][role].get("/healthz")
    assert response.status_code == 200 and response.text == "ok\n"


def test_logging_out_ends_the_session(env: dict[str, Any]) -> None:
    client = _fresh(env)
    login(client, "viewer")
    token = client.cookies.get("pileon_session")
    assert client.get("/incidents").status_code == 200
    assert client.post("/logout", data={"csrf": csrf(client)}).status_code == 303
    stale = _fresh(env)
    stale.cookies.set("pileon_session", token)
    assert stale.get("/incidents").status_code == 303  # the old cookie opens nothing


@pytest.mark.parametrize("role", ["viewer", "responder"])
def test_only_admins_add_users(env: dict[str, Any], role: str) -> None:
    response = env["clients"][role].post("/admin/users", data={
        "csrf": env["csrf"][role], "username": f"new-{role}", "role": "admin"})
    assert response.status_code == 403


def test_admin_adds_a_user_who_can_log_in(env: dict[str, Any]) -> None:
    response = env["clients"]["admin"].post("/admin/users", data={
        "csrf": env["csrf"]["admin"], "username": "carol", "role": "viewer", "persons": "amara"})
    assert response.status_code == 200
    password = re.search(r'class="secret">([^<]+)<', response.text).group(1)  # type: ignore[union-attr]
    client = _fresh(env)
    assert login(client, "carol", password).status_code == 303
    assert client.get(f"/incidents/{_id(env)}").status_code == 200


@pytest.mark.parametrize("token", [None, "", "wrong"])
def test_a_post_without_the_right_csrf_token_is_refused(env: dict[str, Any],
                                                        token: str | None) -> None:
    data = {"text": "forged"} if token is None else {"csrf": token, "text": "forged"}
    response = env["clients"]["responder"].post(f"/incidents/{_id(env)}/note", data=data)
    assert response.status_code == 403
    with env["sm"]() as db:
        assert db.scalar(select(Note).where(Note.text == "forged")) is None


def test_the_login_form_needs_its_csrf_cookie(env: dict[str, Any]) -> None:
    response = _fresh(env).post("/login", data={"username": "admin", "password": PASSWORD,
                                           "csrf": "made-up"})
    assert response.status_code == 403


def test_evidence_pages_are_not_cached_and_carry_security_headers(env: dict[str, Any]) -> None:
    response = env["clients"]["viewer"].get(f"/incidents/{_id(env)}")
    h = response.headers
    assert h["cache-control"] == "no-store"
    assert "script-src" not in h["content-security-policy"]  # default-src 'none': no script
    assert "default-src 'none'" in h["content-security-policy"]
    assert "frame-ancestors 'none'" in h["content-security-policy"]
    assert h["x-frame-options"] == "DENY" and h["referrer-policy"] == "no-referrer"
    login_response = login(_fresh(env), "viewer")
    set_cookie = login_response.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "secure" in set_cookie and "samesite=lax" in set_cookie


def test_every_view_and_export_is_audited(env: dict[str, Any]) -> None:
    client, incident = env["clients"]["responder"], _id(env)
    client.get(f"/incidents/{incident}")
    client.post(f"/incidents/{incident}/export/police-csv", data={"csrf": env["csrf"]["responder"]})
    with env["sm"]() as db:
        actions = {(e.actor, e.action) for e in db.scalars(
            select(AuditEvent).where(AuditEvent.incident_id == incident))}
    assert ("responder", "view_incident") in actions
    assert ("responder", "export_police-csv") in actions


def test_another_teams_incidents_are_not_listed(env: dict[str, Any]) -> None:
    page = env["clients"]["other"].get("/incidents").text
    assert _id(env) not in page and "amara" not in page


def test_unknown_incident_is_404(env: dict[str, Any]) -> None:
    assert env["clients"]["admin"].get("/incidents/nope-20260101T0000Z").status_code == 404
    assert env["clients"]["admin"].get("/evidence/nope").status_code == 404


def test_a_next_parameter_cannot_send_you_elsewhere(env: dict[str, Any]) -> None:
    page = _fresh(env).get("/login?next=//evil.example/x")
    assert "evil.example" not in page.text


def test_login_is_throttled(tmp_path: Path) -> None:
    with console_clients(tmp_path) as (_sm, clients):
        client = clients["anonymous"]
        statuses = [login(client, "viewer", "wrong password!").status_code for _ in range(5)]
        assert statuses == [401] * 5
        assert login(client, "viewer").status_code == 429  # even the right password, for now


def test_proxy_user_header_is_believed_only_from_the_proxy(tmp_path: Path) -> None:
    trusted = console_settings(tmp_path / "a", trusted_proxies=["testclient"],
                               proxy_default_role="viewer")
    write_archive(tmp_path / "a" / "evidence")
    with console_clients(tmp_path / "a", trusted) as (_sm, clients):
        client = clients["anonymous"]
        response = client.get("/incidents", headers={
            "X-Forwarded-Preferred-Username": "sso-user"})
        assert response.status_code == 200 and "sso-user" in response.text
    untrusted = console_settings(tmp_path / "b", trusted_proxies=["10.9.9.9"])
    with console_clients(tmp_path / "b", untrusted) as (_sm, clients):
        response = clients["anonymous"].get("/incidents", headers={
            "X-Forwarded-Preferred-Username": "admin"})
        assert response.status_code == 303


def test_bad_input_is_refused_and_nothing_is_lost(env: dict[str, Any]) -> None:
    client, token, incident = env["clients"]["responder"], env["csrf"]["responder"], _id(env)
    big = "x" * 10_001
    assert client.post(f"/incidents/{incident}/note",
                       data={"csrf": token, "text": big}).status_code == 413
    assert client.post(f"/incidents/{incident}/disposition",
                       data={"csrf": token, "disposition": "guilty"}).status_code == 400
    assert client.post(f"/incidents/{incident}/assign",
                       data={"csrf": token, "assignee": "viewer"}).status_code == 400
    assert client.post(f"/incidents/{incident}/export/nothing",
                       data={"csrf": token}).status_code == 404
    with env["sm"]() as db:
        assert db.scalar(select(Note).where(Note.text == big)) is None
        assert db.get(Incident, incident).disposition != "guilty"


def test_html_in_notes_and_mentions_is_inert(env: dict[str, Any]) -> None:
    client, token, incident = env["clients"]["responder"], env["csrf"]["responder"], _id(env)
    client.post(f"/incidents/{incident}/note",
                data={"csrf": token, "text": "<script>alert('note')</script>"})
    page = client.get(f"/incidents/{incident}").text
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#39;note&#39;)&lt;/script&gt;" in page
    assert "&lt;script&gt;document.title=" in page  # the mention's text, as text
    assert '<span class="badge">C1</span>' in page  # the copies, labelled by cluster
