"""API bearer tokens. The token is shown once; only its SHA-256 is stored."""
import functools
import hashlib
import secrets

import sqlalchemy as sa
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


def issue(user: User) -> str:
    """Create a token for `user` and return it (it cannot be recovered later)."""
    token = "so_" + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user_id=user.id, token_hash=_digest(token), created_at=clock.now()))
    db.session.commit()
    return token


def authenticate(token: str) -> User | None:
    """The active user a live token belongs to, or None."""
    return db.session.scalar(
        sa.select(User).join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == _digest(token), ApiToken.revoked_at.is_(None), User.active))


def revoke(token: str) -> bool:
    """Revoke a token (logout); True when a live token was revoked."""
    result = db.session.execute(sa.update(ApiToken).where(
        ApiToken.token_hash == _digest(token), ApiToken.revoked_at.is_(None)).values(revoked_at=clock.now()))
    db.session.commit()
    return result.rowcount > 0


def credentials(login_name: str, password: str) -> User | None:
    """The active user with this login and password, or None. An unknown or inactive login costs the same
    scrypt work as a wrong password, so neither the answer nor its timing tells which logins exist."""
    user = db.session.scalar(sa.select(User).where(User.login == login_name, User.active))
    if user is None:
        check_password_hash(_dummy_hash(), password)
        return None
    return user if user.check_password(password) else None


def login(login_name: str, password: str) -> str | None:
    """A new token for the active user with these credentials, or None (the same for any wrong part)."""
    user = credentials(login_name, password)
    return issue(user) if user else None
