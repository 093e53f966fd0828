"""The console's web application: pages rendered on the server (Jinja2, autoescaped), forms
with CSRF tokens, no script at all, so the Content-Security-Policy allows none.

Routes (``docs/console.md`` has the access matrix): the incident list and page, a person's
page, case actions (acknowledge, assign, note, disposition, report, resolve, reopen), exports
(Mastodon CSV, Bluesky moderation list, police CSV, bundle zip), ``/evidence/<id>`` (the
link every alert carries), users and the audit log for admins, ``/healthz``.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import orjson
import requests
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import case, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException

from pileon.alerting.alertmanager import create_silence, expire_silence
from pileon.alerting.notification import notification_from_event
from pileon.console import auth
from pileon.console.bluesky import BlueskyError, create_modlist
from pileon.console.db import (
    DISPOSITIONS,
    ROLES,
    AlertRecord,
    AuditEvent,
    ChainHeadRecord,
    Incident,
    Note,
    Report,
    Silence,
    User,
    now,
)
from pileon.console.evidence import (
    assign_clusters,
    author_rollup,
    check_heads,
    load_evidence,
    local,
    person_volume,
    utc,
    volume_chart,
)
from pileon.console.exports import (
    ExportTooLarge,
    bluesky_modlist,
    bundle_zip,
    mastodon_csv,
    police_csv,
)
from pileon.console.verdicts import delivery, queue_verdict
from pileon.core.settings import Settings
from pileon.schema.alert import AlertEvent

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
LOGIN_COOKIE = "pileon_login"
SHOWN_MENTIONS = 2000  # on the page; the police CSV and the bundle hold them all
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")


class LoginRequired(Exception):
    pass


@dataclass
class Console:
    settings: Settings
    sm: sessionmaker[Session]
    templates: Jinja2Templates

    @property
    def cfg(self) -> Any:
        return self.settings.console


def create_app(settings: Settings, sm: sessionmaker[Session]) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["utc"] = utc
    templates.env.filters["local"] = local
    templates.env.filters["safe_url"] = safe_url
    console = Console(settings, sm, templates)
    app.state.console = console
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                      ) -> Response:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        if request.url.scheme == "https":
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        return response

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, _exc: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)

    @app.exception_handler(HTTPException)
    async def error_page(request: Request, exc: HTTPException) -> Response:
        return templates.TemplateResponse(
            request, "error.html", {"status": exc.status_code, "detail": exc.detail,
                                    "actor": None}, status_code=exc.status_code)

    _routes(app, console)
    return app


# -- helpers -----------------------------------------------------------------------------

def safe_url(url: Any) -> str:
    """A link from a platform, only if it is http(s): ``javascript:`` and the like become
    ``#`` (autoescaping makes text inert, not a URL scheme)."""
    text = str(url or "")
    return text if urlsplit(text).scheme in ("http", "https") else "#"


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _actor(console: Console, request: Request, db: Session, role: str = "viewer") -> auth.Actor:
    cfg = console.cfg
    token = request.cookies.get(auth.COOKIE)
    actor = auth.from_proxy(db, cfg, _client(request),
                            request.headers.get(cfg.proxy_user_header), token) \
        if cfg.trusted_proxies else None
    if actor is None:
        actor = auth.from_cookie(db, token)
    if actor is None:
        raise LoginRequired
    if not actor.user.can(role):
        raise HTTPException(403, f"this needs the {role} role; you are a {actor.user.role}")
    request.state.actor = actor
    return actor


def _incident(db: Session, actor: auth.Actor, incident_id: str) -> Incident:
    incident = db.get(Incident, incident_id)
    if incident is None or not actor.user.sees(incident.person):
        raise HTTPException(404, "no such incident")  # another team's incident: not found
    return incident


def _events(db: Session, incident_id: str) -> list[AlertEvent]:
    records = db.scalars(select(AlertRecord).where(AlertRecord.incident_id == incident_id)
                         .order_by(AlertRecord.at, AlertRecord.idempotency_key))
    return [AlertEvent.from_json(r.body) for r in records]


def audit(db: Session, request: Request, actor: str, action: str,
          incident: Incident | None = None, person: str | None = None, **detail: Any) -> None:
    db.add(AuditEvent(at=now(), actor=actor, action=action,
                      incident_id=incident.id if incident else None,
                      person=incident.person if incident else person,
                      address=_client(request), detail=detail))


async def _form(request: Request, actor: auth.Actor) -> dict[str, str]:
    form = await request.form()
    if not auth.csrf_ok(actor, form.get("csrf")):  # type: ignore[arg-type]
        raise HTTPException(403, "the form's CSRF token is missing or wrong: reload the page")
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _render(console: Console, request: Request, name: str, actor: auth.Actor | None,
            status: int = 200, **context: Any) -> Response:
    response = console.templates.TemplateResponse(
        request, name, {"actor": actor, **context}, status_code=status)
    _keep_cookie(console, response, actor)
    return response


def _keep_cookie(console: Console, response: Response, actor: auth.Actor | None) -> None:
    if actor is not None and actor.new_token:
        _set_session_cookie(console, response, actor.new_token)


def _set_session_cookie(console: Console, response: Response, token: str) -> None:
    response.set_cookie(auth.COOKIE, token, max_age=int(console.cfg.session_hours * 3600),
                        httponly=True, secure=console.cfg.secure_cookies, samesite="lax",
                        path="/")


def _back(incident_id: str, anchor: str = "case") -> RedirectResponse:
    return RedirectResponse(f"/incidents/{quote(incident_id, safe='')}#{anchor}", status_code=303)


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/incidents"
    return target


# -- routes ------------------------------------------------------------------------------

def _routes(app: FastAPI, console: Console) -> None:
    cfg = console.cfg
    templates = console.templates

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", media_type="text/plain")

    @app.get("/")
    def root() -> Response:
        return RedirectResponse("/incidents", status_code=303)

    # -- login ---------------------------------------------------------------------------
    @app.get("/login")
    def login_page(request: Request, next: str | None = None) -> Response:
        token = secrets.token_urlsafe(24)
        response = templates.TemplateResponse(
            request, "login.html", {"actor": None, "next": _safe_next(next), "csrf": token,
                                    "error": None})
        response.set_cookie(LOGIN_COOKIE, token, httponly=True, secure=cfg.secure_cookies,
                            samesite="strict", path="/login", max_age=3600)
        return response

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        username, password = str(form.get("username", "")), str(form.get("password", ""))
        target = _safe_next(str(form.get("next", "")))
        sent, expected = str(form.get("csrf", "")), request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not secrets.compare_digest(sent, expected):
            raise HTTPException(403, "the login form's CSRF token is missing or wrong: reload")
        keys = [f"user:{username[:128]}", f"addr:{_client(request)}"]

        def again(message: str, status: int) -> Response:
            return templates.TemplateResponse(
                request, "login.html", {"actor": None, "next": target, "csrf": expected,
                                        "error": message}, status_code=status)

        with console.sm.begin() as db:
            if auth.locked(db, cfg, keys):
                audit(db, request, username[:128] or "?", "login_locked")
                return again(f"Too many failed log-ins: try again in "
                             f"{cfg.lockout_minutes:g} minutes.", 429)
            user = auth.check_password(db, username, password)
            if user is None:
                auth.record_failure(db, cfg, keys)
                audit(db, request, username[:128] or "?", "login_failed")
                return again("Wrong user name or password.", 401)
            auth.clear_failures(db, keys[:1])
            token = auth.open_session(db, user, cfg)
            audit(db, request, user.username, "login")
        response = RedirectResponse(target, status_code=303)
        _set_session_cookie(console, response, token)
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        with console.sm.begin() as db:
            actor = _actor(console, request, db)
            await _form(request, actor)
            auth.close_session(db, request.cookies.get(auth.COOKIE, ""))
            audit(db, request, actor.name, "logout")
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(auth.COOKIE, path="/")
        return response

    # -- incidents -----------------------------------------------------------------------
    @app.get("/incidents")
    def incidents(request: Request, person: str = "", severity: str = "", assessment: str = "",
                  status: str = "", since: str = "") -> Response:
        with console.sm.begin() as db:
            actor = _actor(console, request, db)
            q = select(Incident)
            if actor.user.persons is not None:
                q = q.where(Incident.person.in_(actor.user.persons))
            if person:
                q = q.where(Incident.person == person)
            if severity in ("warning", "critical"):
                q = q.where(Incident.severity == severity)
            if assessment in ("looks coordinated", "looks organic"):
                q = q.where(Incident.assessment == assessment)
            if status == "open":
                q = q.where(Incident.status != "resolved")
            elif status in ("new", "acknowledged", "resolved"):
                q = q.where(Incident.status == status)
            elif status == "firing":
                q = q.where(Incident.firing.is_(True))
            if since:
                try:
                    start = datetime.fromisoformat(since).replace(tzinfo=UTC)
                except ValueError:
                    raise HTTPException(400, "since: a date, YYYY-MM-DD") from None
                q = q.where(Incident.opened_at >= start)
            q = q.order_by(case((Incident.status == "resolved", 1), else_=0),
                           Incident.opened_at.desc()).limit(500)
            rows = list(db.scalars(q))
            persons = sorted({p for p in db.scalars(select(Incident.person).distinct())
                              if actor.user.sees(p)})
            return _render(console, request, "incidents.html", actor, incidents=rows,
                           persons=persons, filters={"person": person, "severity": severity,
                                                     "assessment": assessment, "status": status,
                                                     "since": since})

    @app.get("/evidence/{key}")
    def evidence_link(request: Request, key: str, incident: str = "", to: str = "") -> Response:
        """The link alerts carry: ``/evidence/<incident id>`` (and the older
        ``/evidence/<person>?from=&to=`` form, resolved to the incident that covers ``to``)."""
        with console.sm.begin() as db:
            actor = _actor(console, request, db)
            found = db.get(Incident, incident or key)
            if found is None and to:
                try:
                    at = datetime.fromisoformat(to.replace("Z", "+00:00"))
                except ValueError:
                    raise HTTPException(400, "to: an ISO 8601 time") from None
                found = db.scalar(select(Incident).where(
                    Incident.person == key, Incident.opened_at <= at + timedelta(hours=1))
                    .order_by(Incident.opened_at.desc()))
            if found is None or not actor.user.sees(found.person):
                raise HTTPException(404, "no such incident (yet: a new alert can take a few "
                                         "seconds to reach the console)")
            return RedirectResponse(f"/incidents/{quote(found.id, safe='')}", status_code=303)

    @app.get("/incidents/{incident_id}")
    def incident_page(request: Request, incident_id: str) -> Response:
        with console.sm.begin() as db:
            actor = _actor(console, request, db)
            incident = _incident(db, actor, incident_id)
            events = _events(db, incident.id)
            evidence = load_evidence(cfg.evidence_dir, incident.id)
            heads = check_heads(cfg.evidence_dir, incident.person, list(db.scalars(
                select(ChainHeadRecord).where(ChainHeadRecord.incident_id == incident.id)
                .order_by(ChainHeadRecord.seq))))
            clusters = assign_clusters(evidence.mentions, events,
                                       console.settings.neardup.threshold)
            start = incident.evidence_from
            in_incident = evidence.in_incident(start)
            authors = author_rollup(in_incident)
            notes = list(db.scalars(select(Note).where(Note.incident_id == incident.id)
                                    .order_by(Note.at)))
            reports = list(db.scalars(select(Report).where(Report.incident_id == incident.id)
                                      .order_by(Report.at)))
            trail = list(db.scalars(select(AuditEvent).where(
                AuditEvent.incident_id == incident.id, AuditEvent.action.not_in(
                    ("view_incident",))).order_by(AuditEvent.at)))
            responders = list(db.scalars(select(User.username).where(
                User.role.in_(("responder", "admin")), User.disabled.is_(False))
                .order_by(User.username)))
            audit(db, request, actor.name, "view_incident", incident,
                  mentions=len(evidence.mentions), verified=evidence.verified,
                  heads_checked=sum(1 for h in heads if h.ok is not None),
                  heads_failed=sum(1 for h in heads if h.ok is False))
            dashboard = (f"{console.settings.alerting.dashboard_url}?"
                         f"{urlencode({'var-person': incident.person})}")
            words = (notification_from_event(events[-1], console.settings.alerting)
                     if events else None)
            return _render(
                console, request, "incident.html", actor, incident=incident, events=events,
                words=words,
                last=events[-1] if events else None, evidence=evidence, heads=heads,
                chart=volume_chart(evidence.mentions, events) if events else "",
                clusters=clusters, authors=authors, mentions=in_incident[:SHOWN_MENTIONS],
                labels={c.template_id: f"C{i + 1}" for i, c in enumerate(clusters)},
                all_mentions=len(in_incident),
                before=len(evidence.mentions) - len(in_incident), notes=notes, reports=reports,
                trail=trail, responders=responders, dispositions=DISPOSITIONS,
                verdict=delivery(db, incident.id),
                dashboard=dashboard, max_note=cfg.max_note_chars,
                bluesky_services=cfg.bluesky_services,
                can_act=actor.user.can("responder"))

    @app.get("/persons/{person}")
    def person_page(request: Request, person: str) -> Response:
        with console.sm.begin() as db:
            actor = _actor(console, request, db)
            if not actor.user.sees(person):
                raise HTTPException(404, "no such person")
            rows = list(db.scalars(select(Incident).where(Incident.person == person)
                                   .order_by(Incident.opened_at.desc())))
            volume = person_volume(cfg.evidence_dir, person)
            if not rows and volume is None:
                raise HTTPException(404, "no such person")
            audit(db, request, actor.name, "view_person", person=person)
            return _render(console, request, "person.html", actor, person=person,
                           incidents=rows, volume=volume)

    # -- case work -----------------------------------------------------------------------
    def _case(path: str) -> Callable[..., Any]:
        def register(handler: Callable[[Session, Request, auth.Actor, Incident, dict[str, str]],
                                       str | None]) -> Callable[..., Any]:
            async def route(request: Request, incident_id: str) -> Response:
                with console.sm.begin() as db:
                    actor = _actor(console, request, db, role="responder")
                    form = await _form(request, actor)
                    incident = _incident(db, actor, incident_id)
                    anchor = handler(db, request, actor, incident, form)
                return _back(incident_id, anchor or "case")
            app.post(f"/incidents/{{incident_id}}/{path}")(route)
            return handler
        return register

    @_case("acknowledge")
    def acknowledge(db: Session, request: Request, actor: auth.Actor, incident: Incident,
                    form: dict[str, str]) -> str | None:
        if incident.status == "new":
            incident.status = "acknowledged"
            incident.acknowledged_by, incident.acknowledged_at = actor.name, now()
            if incident.assignee is None:
                incident.assignee = actor.name
        silenced = _silence(db, console, incident, actor.name)
        audit(db, request, actor.name, "acknowledge", incident, silences=silenced)
        return None

    @_case("assign")
    def assign(db: Session, request: Request, actor: auth.Actor, incident: Incident,
               form: dict[str, str]) -> str | None:
        who = form.get("assignee", "").strip() or None
        if who is not None:
            user = db.scalar(select(User).where(User.username == who))
            if user is None or not user.can("responder") or not user.sees(incident.person):
                raise HTTPException(400, "assignee: a responder who can see this person")
        incident.assignee = who
        audit(db, request, actor.name, "assign", incident, assignee=who)
        return None

    @_case("note")
    def note(db: Session, request: Request, actor: auth.Actor, incident: Incident,
             form: dict[str, str]) -> str | None:
        text = form.get("text", "").strip()
        if not text:
            raise HTTPException(400, "note: empty")
        if len(text) > cfg.max_note_chars:
            raise HTTPException(413, f"note: at most {cfg.max_note_chars} characters "
                                     f"({len(text)} sent); nothing was saved")
        db.add(Note(incident_id=incident.id, author=actor.name, at=now(), text=text))
        audit(db, request, actor.name, "note", incident, chars=len(text))
        return "notes"

    @_case("disposition")
    def disposition(db: Session, request: Request, actor: auth.Actor, incident: Incident,
                    form: dict[str, str]) -> str | None:
        value = form.get("disposition", "")
        if value not in DISPOSITIONS:
            raise HTTPException(400, f"disposition: one of {', '.join(DISPOSITIONS)}")
        incident.disposition = value
        queue_verdict(db, incident)  # sent on to the detector (pileon.console.verdicts)
        audit(db, request, actor.name, "disposition", incident, disposition=value)
        return None

    @_case("report")
    def report(db: Session, request: Request, actor: auth.Actor, incident: Incident,
               form: dict[str, str]) -> str | None:
        kind = form.get("kind", "")
        recipient = form.get("recipient", "").strip()
        reference = form.get("reference", "").strip()
        if kind not in ("platform", "police"):
            raise HTTPException(400, "kind: platform or police")
        if not recipient or len(recipient) > 200 or len(reference) > 200:
            raise HTTPException(400, "recipient (1-200 characters) and reference (at most 200)")
        db.add(Report(incident_id=incident.id, kind=kind, recipient=recipient,
                      reference=reference, by=actor.name, at=now()))
        audit(db, request, actor.name, "report", incident, kind=kind, recipient=recipient,
              reference=reference)
        return "reports"

    @_case("resolve")
    def resolve(db: Session, request: Request, actor: auth.Actor, incident: Incident,
                form: dict[str, str]) -> str | None:
        incident.status = "resolved"
        incident.resolved_by, incident.resolved_at = actor.name, now()
        ended = _unsilence(db, incident)
        audit(db, request, actor.name, "resolve", incident, silences_ended=ended)
        return None

    @_case("reopen")
    def reopen(db: Session, request: Request, actor: auth.Actor, incident: Incident,
               form: dict[str, str]) -> str | None:
        incident.status = "acknowledged" if incident.acknowledged_by else "new"
        incident.resolved_by = incident.resolved_at = None
        audit(db, request, actor.name, "reopen", incident)
        return None

    # -- exports -------------------------------------------------------------------------
    @app.post("/incidents/{incident_id}/export/{kind}")
    async def export(request: Request, incident_id: str, kind: str) -> Response:
        with console.sm.begin() as db:
            actor = _actor(console, request, db, role="responder")
            form = await request.form()
            if not auth.csrf_ok(actor, form.get("csrf")):  # type: ignore[arg-type]
                raise HTTPException(403, "the form's CSRF token is missing or wrong: reload")
            incident = _incident(db, actor, incident_id)
            selected = {str(a) for a in form.getlist("author")} or None
            events = _events(db, incident.id)
            evidence = load_evidence(cfg.evidence_dir, incident.id)
            if not evidence.found:
                raise HTTPException(404, "no evidence bundle for this incident yet")
            assign_clusters(evidence.mentions, events, console.settings.neardup.threshold)
            mentions = evidence.in_incident(incident.evidence_from)
            stem = f"pileon-{incident.id}"
            detail: dict[str, Any] = {"authors_selected": len(selected) if selected else "all"}
            if kind in ("mastodon-blocks", "mastodon-mutes"):
                try:
                    body, count, left = mastodon_csv(mentions, selected, kind.split("-")[1])
                except ExportTooLarge as exc:
                    raise HTTPException(413, str(exc)) from None
                detail.update(accounts=count, left_out=left)
                response: Response = Response(
                    body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{stem}-{kind}.csv"'})
            elif kind == "bluesky-modlist":
                name = f"pileon {incident.person} {incident.opened_at:%Y-%m-%d}"
                data, left = bluesky_modlist(
                    mentions, selected, name,
                    f"Accounts in pile-on incident {incident.id}, from pileon's evidence.")
                detail.update(accounts=len(data["writes"]) - 1, left_out=left)
                response = Response(
                    orjson.dumps(data, option=orjson.OPT_INDENT_2),
                    media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{stem}-modlist.json"'})
            elif kind == "police-csv":
                chosen = [m for m in mentions if selected is None or m.author_id in selected]
                detail.update(mentions=len(chosen))
                response = Response(
                    police_csv(incident.id, incident.person, chosen),
                    media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{stem}-police.csv"'})
            elif kind == "bundle":
                detail.update(verified=evidence.verified, files=len(list(
                    evidence.folder.iterdir())))
                response = Response(
                    bundle_zip(evidence.folder), media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{stem}.zip"'})
            else:
                raise HTTPException(404, "no such export")
            audit(db, request, actor.name, f"export_{kind}", incident, **detail)
            return response

    @app.post("/incidents/{incident_id}/bluesky-list")
    async def bluesky_list(request: Request, incident_id: str) -> Response:
        """Create the moderation list on a Bluesky account with its app password (used for
        this request only: never stored, logged or audited)."""
        with console.sm.begin() as db:
            actor = _actor(console, request, db, role="responder")
            form = await request.form()
            if not auth.csrf_ok(actor, form.get("csrf")):  # type: ignore[arg-type]
                raise HTTPException(403, "the form's CSRF token is missing or wrong: reload")
            incident = _incident(db, actor, incident_id)
            service = str(form.get("service", ""))
            identifier = str(form.get("identifier", "")).strip().lstrip("@")
            password = str(form.get("app_password", ""))
            if service not in cfg.bluesky_services:
                raise HTTPException(400, "service: one of console.bluesky_services")
            if not identifier or not password:
                raise HTTPException(400, "the Bluesky handle and an app password are needed")
            selected = {str(a) for a in form.getlist("author")} or None
            evidence = load_evidence(cfg.evidence_dir, incident.id)
            body, left = bluesky_modlist(
                evidence.in_incident(incident.evidence_from), selected,
                f"pileon {incident.person} {incident.opened_at:%Y-%m-%d}",
                f"Accounts in pile-on incident {incident.id}, from pileon's evidence.")
            if len(body["writes"]) < 2:
                raise HTTPException(400, "none of these accounts is a Bluesky account with a "
                                         "DID: no list made")
            try:
                created = create_modlist(service, identifier, password, body)
            except BlueskyError as exc:
                failure = str(exc)
                audit(db, request, actor.name, "bluesky_list_failed", incident,
                      service=service, error=failure)
                created = None
            if created is None:
                db.commit()  # the failure stays in the audit log
                raise HTTPException(502, f"Bluesky: {failure}. No list was made, or only part "
                                         "of it: check the account's lists.")
            audit(db, request, actor.name, "bluesky_list_created", incident, service=service,
                  list=created.uri, accounts=created.items, left_out=left)
            did, rkey = created.uri.removeprefix("at://").split("/")[0], \
                created.uri.rsplit("/", 1)[1]
            return _render(console, request, "created.html", actor, incident=incident,
                           created=created, left_out=left,
                           link=f"https://bsky.app/profile/{did}/lists/{rkey}")

    # -- administration ------------------------------------------------------------------
    @app.get("/admin/users")
    def users_page(request: Request) -> Response:
        with console.sm.begin() as db:
            actor = _actor(console, request, db, role="admin")
            users = list(db.scalars(select(User).order_by(User.username)))
            return _render(console, request, "users.html", actor, users=users, roles=ROLES,
                           created=None, error=None)

    @app.post("/admin/users")
    async def add_user(request: Request) -> Response:
        with console.sm.begin() as db:
            actor = _actor(console, request, db, role="admin")
            form = await _form(request, actor)
            persons = [p.strip() for p in form.get("persons", "").split(",") if p.strip()]
            password = secrets.token_urlsafe(12)
            try:
                user = auth.add_user(db, form.get("username", "").strip(),
                                     form.get("role", ""), password, persons or None)
            except auth.UserError as exc:
                raise HTTPException(400, str(exc)) from None
            audit(db, request, actor.name, "add_user", username=user.username, role=user.role,
                  persons=user.persons)
            users = list(db.scalars(select(User).order_by(User.username)))
            return _render(console, request, "users.html", actor, users=users, roles=ROLES,
                           created=(user.username, password), error=None)

    @app.get("/admin/audit")
    def audit_page(request: Request, incident: str = "") -> Response:
        with console.sm.begin() as db:
            actor = _actor(console, request, db, role="admin")
            q = select(AuditEvent).order_by(AuditEvent.at.desc()).limit(500)
            if incident:
                q = q.where(AuditEvent.incident_id == incident)
            return _render(console, request, "audit.html", actor, events=list(db.scalars(q)),
                           incident=incident)


def _silence(db: Session, console: Console, incident: Incident, who: str) -> int:
    """Acknowledge where the page came from: silence the alert in each Alertmanager."""
    made = 0
    ends = now() + timedelta(hours=console.cfg.silence_hours)
    for url in console.settings.alerting.alertmanager_urls:
        if db.scalar(select(Silence).where(Silence.incident_id == incident.id,
                                           Silence.alertmanager == url,
                                           Silence.ends_at > now())) is not None:
            continue
        try:
            silence_id = create_silence(
                url, incident.person, incident.severity,
                ends.isoformat().replace("+00:00", "Z"), who,
                f"pileon incident {incident.id} acknowledged in the console by {who}",
                timeout=console.settings.alerting.timeout_seconds)
        except (requests.RequestException, KeyError, ValueError) as exc:
            log.warning("incident %s: Alertmanager %s refused the silence (%s)",
                        incident.id, url, type(exc).__name__)
            continue
        db.add(Silence(incident_id=incident.id, alertmanager=url, silence_id=silence_id,
                       ends_at=ends))
        made += 1
    return made


def _unsilence(db: Session, incident: Incident) -> int:
    ended = 0
    for silence in db.scalars(select(Silence).where(Silence.incident_id == incident.id,
                                                    Silence.ends_at > now())):
        try:
            expire_silence(silence.alertmanager, silence.silence_id)
        except requests.RequestException as exc:
            log.warning("incident %s: could not end silence %s (%s)", incident.id,
                        silence.silence_id, type(exc).__name__)
            continue
        silence.ends_at = now()
        ended += 1
    return ended
