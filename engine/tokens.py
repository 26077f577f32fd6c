"""API bearer tokens and sign-in sessions: how credentials start and end. A token is shown once (only its SHA-256
is stored) and expires after API_TOKEN_TTL seconds (default 30 days). A sign-in session's id carries the user's
session generation; raising it ends every session of that user. A password change or reset and a deactivation
revoke all of a user's tokens and sessions (`revoke_all`): reactivating the user revives neither."""
import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app, has_app_context
from werkzeug.security import check_password_hash, generate_password_hash

from engine import clock
from engine.db import db
from engine.models import ApiToken
from engine.org import User


@functools.cache
def _dummy_hash() -> str:
    return generate_password_hash("not a password", method="scrypt")  # made on first use: no work at import


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


DEFAULT_TTL = 30 * 24 * 3600  # seconds


@dataclass(frozen=True)
class Issued:
    """A new token (shown once) and when it stops working."""

    token: str
    expires_at: datetime


def _ttl() -> timedelta:
    seconds = current_app.config.get("API_TOKEN_TTL", DEFAULT_TTL) if has_app_context() else DEFAULT_TTL
    return timedelta(seconds=int(seconds))


def grant(user: User) -> Issued:
    """Create a token for `user`, valid for API_TOKEN_TTL from now (it cannot be recovered later)."""
    token, now = "so_" + secrets.token_urlsafe(32), clock.now()
    expires_at = now + _ttl()
    db.session.add(ApiToken(user_id=user.id, token_hash=_digest(token), created_at=now, expires_at=expires_at))
    db.session.commit()
    return Issued(token, expires_at)


def issue(user: User) -> str:
    """Create a token for `user` and return it (see `grant`)."""
    return grant(user).token


def authenticate(token: str) -> User | None:
    """The active user a live token (not revoked, not expired) belongs to, or None."""
    return db.session.scalar(
        sa.select(User).join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == _digest(token), ApiToken.revoked_at.is_(None),
               ApiToken.expires_at > clock.now(), User.active))


def revoke(token: str) -> bool:
    """Revoke a token (logout); True when a live token was revoked."""
    result = db.session.execute(sa.update(ApiToken).where(
        ApiToken.token_hash == _digest(token), ApiToken.revoked_at.is_(None)).values(revoked_at=clock.now()))
    db.session.commit()
    return result.rowcount > 0


def revoke_tokens(user: User) -> int:
    """Revoke every live token of `user` (not committed: the caller's transaction decides); how many."""
    result = db.session.execute(sa.update(ApiToken).where(
        ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)).values(revoked_at=clock.now()))
    return result.rowcount


def revoke_every_token(user: User) -> int:
    """Log `user` out of the API everywhere: every live token revoked and committed; how many."""
    count = revoke_tokens(user)
    db.session.commit()
    return count


def end_sessions(user: User) -> None:
    """End every sign-in session of `user` (not committed): their ids carry the old generation."""
    user.session_generation = (user.session_generation or 0) + 1


def revoke_all(user: User) -> None:
    """Every token and every session of `user` stops working (not committed). For a password change or reset and
    a deactivation; a session that should carry on (the one that changed the password) signs in again."""
    revoke_tokens(user)
    end_sessions(user)


def credentials(login_name: str, password: str) -> User | None:
    """The active user with this login and password, or None. An unknown or inactive login costs the same
    scrypt work as a wrong password, so neither the answer nor its timing tells which logins exist."""
    user = db.session.scalar(sa.select(User).where(User.login == login_name, User.active))
    if user is None:
        check_password_hash(_dummy_hash(), password)
        return None
    return user if user.check_password(password) else None


def login(login_name: str, password: str) -> Issued | None:
    """A new token for the active user with these credentials, or None (the same for any wrong part)."""
    user = credentials(login_name, password)
    return grant(user) if user else None
