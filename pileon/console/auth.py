"""Who is asking: local accounts (argon2id hashes), server-side sessions, CSRF tokens, login
throttling, and single sign-on through a trusted reverse proxy.

The session cookie holds a random token; the database holds only its SHA-256, so a copy of the
database opens no session. Each session has its own CSRF token, which every form carries and
every POST must return. A user header (oauth2-proxy's ``X-Forwarded-Preferred-Username`` by
default) is believed only from the configured proxy addresses: anyone else sending it is
treated as not logged in.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pileon.console.db import ROLES, LoginFailure, User, WebSession, now
from pileon.core.settings import ConsoleSettings

COOKIE = "pileon_session"
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
_DUMMY = _hasher.hash(secrets.token_hex(16))  # verified for unknown users: same timing


class UserError(ValueError):
    pass


def hash_password(password: str) -> str:
    if len(password) < 12:
        raise UserError("password: at least 12 characters")
    return _hasher.hash(password)


def add_user(
    db: Session, username: str, role: str, password: str | None,
    persons: list[str] | None = None,
) -> User:
    if role not in ROLES:
        raise UserError(f"role: one of {', '.join(ROLES)}, not {role!r}")
    if not username or len(username) > 128 or not username.isprintable():
        raise UserError("username: 1-128 printable characters")
    if db.scalar(select(User).where(User.username == username)) is not None:
        raise UserError(f"username: {username!r} exists")
    user = User(username=username, role=role,
                password_hash=hash_password(password) if password is not None else None,
                persons=persons, disabled=False, created_at=now())
    db.add(user)
    db.flush()
    return user


def check_password(db: Session, username: str, password: str) -> User | None:
    user = db.scalar(select(User).where(User.username == username))
    if user is None or user.password_hash is None or user.disabled:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY, password)
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def locked(db: Session, cfg: ConsoleSettings, keys: list[str]) -> bool:
    """Too many recent failures for this user or this address."""
    window = timedelta(minutes=cfg.lockout_minutes)
    for key in keys:
        failure = db.get(LoginFailure, key)
        if failure and failure.count >= cfg.login_failures and now() - failure.first_at < window:
            return True
    return False


def record_failure(db: Session, cfg: ConsoleSettings, keys: list[str]) -> None:
    window = timedelta(minutes=cfg.lockout_minutes)
    for key in keys:
        failure = db.get(LoginFailure, key)
        if failure is None or now() - failure.first_at >= window:
            if failure is not None:
                db.delete(failure)
                db.flush()
            db.add(LoginFailure(key=key, count=1, first_at=now()))
        else:
            failure.count += 1


def clear_failures(db: Session, keys: list[str]) -> None:
    db.execute(delete(LoginFailure).where(LoginFailure.key.in_(keys)))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(db: Session, user: User, cfg: ConsoleSettings) -> str:
    """A new session for ``user``; returns the cookie's token."""
    token = secrets.token_urlsafe(32)
    db.execute(delete(WebSession).where(WebSession.expires_at < now()))
    db.add(WebSession(id=_digest(token), user_id=user.id, csrf=secrets.token_urlsafe(32),
                      created_at=now(), expires_at=now() + timedelta(hours=cfg.session_hours)))
    return token


def close_session(db: Session, token: str) -> None:
    db.execute(delete(WebSession).where(WebSession.id == _digest(token)))


@dataclass
class Actor:
    user: User
    session: WebSession
    new_token: str | None = None  # set when this request opened the session (proxy log-in)

    @property
    def name(self) -> str:
        return self.user.username

    @property
    def csrf(self) -> str:
        return self.session.csrf


def from_cookie(db: Session, token: str | None) -> Actor | None:
    if not token:
        return None
    session = db.get(WebSession, _digest(token))
    if session is None or session.expires_at < now():
        return None
    user = db.get(User, session.user_id)
    if user is None or user.disabled:
        return None
    return Actor(user, session)


def from_proxy(
    db: Session, cfg: ConsoleSettings, client: str | None, username: str | None,
    token: str | None,
) -> Actor | None:
    """The proxy's user, when the request comes from a trusted proxy address."""
    if not username or client is None or client not in cfg.trusted_proxies:
        return None
    user = db.scalar(select(User).where(User.username == username))
    if user is None:
        if cfg.proxy_default_role is None:
            return None
        user = add_user(db, username, cfg.proxy_default_role, None)
    if user.disabled:
        return None
    actor = from_cookie(db, token)
    if actor is not None and actor.user.id == user.id:
        return actor
    new = open_session(db, user, cfg)
    db.flush()
    fresh = from_cookie(db, new)
    if fresh is not None:
        fresh.new_token = new
    return fresh


def csrf_ok(actor: Actor, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(actor.csrf, str(sent))
