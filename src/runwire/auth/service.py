"""Users and their sessions.

Sign-up and sign-in open their own short transactions around the password work (`database=` rather than
`session=`): argon2 takes tens of milliseconds of CPU, and no transaction, lock or pooled connection is held while
it runs.
"""

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from runwire.auth.models import AuthSession, User
from runwire.auth.passwords import Passwords
from runwire.auth.schemas import Authenticated, SignIn, SignUp
from runwire.db import Database, utcnow
from runwire.errors import Conflict, Forbidden, NotFound, Unauthorized
from runwire.ratelimits import service as ratelimits_service
from runwire.ratelimits.service import Charge

SIGN_IN_FAILED = "The email or password is wrong."
EMAIL_TAKEN = "An account with this email already exists."


@dataclass(frozen=True)
class SignedIn:
    user: User
    token: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_up(data: SignUp, *, passwords: Passwords, ttl_hours: float, database: Database) -> SignedIn:
    """Create the user and its first session."""
    with database.reading() as session:
        taken = session.scalar(sa.select(User.id).where(User.email == data.email)) is not None
    if taken:
        raise Conflict(EMAIL_TAKEN)
    password_hash = passwords.hash(data.password)
    with database.writing() as session:
        user = User(email=data.email, name=data.name, password_hash=password_hash, created_at=utcnow())
        session.add(user)
        try:
            session.flush()
        except IntegrityError as exc:
            raise Conflict(EMAIL_TAKEN) from exc
        token, _ = start_session(user, ttl_hours=ttl_hours, session=session)
    return SignedIn(user, token)


def sign_in(
    data: SignIn, *, passwords: Passwords, charges: Sequence[Charge], ttl_hours: float, database: Database
) -> SignedIn:
    """Start a new session for the right email and password. The attempt was counted as failed beforehand, so
    that simultaneous guesses cannot outrun the limits; a success gives its `charges` back."""
    with database.reading() as session:
        user = session.scalar(sa.select(User).where(User.email == data.email))
    if not passwords.verify(user.password_hash if user else None, data.password) or user is None:
        raise Unauthorized(SIGN_IN_FAILED)
    with database.writing() as session:
        ratelimits_service.give_back(charges, session=session)
        token, _ = start_session(user, ttl_hours=ttl_hours, session=session)
    return SignedIn(user, token)


def start_session(user: User, *, ttl_hours: float, session: Session) -> tuple[str, AuthSession]:
    """Create a session; the token goes to the client, only its hash is stored."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    auth_session = AuthSession(
        user_id=user.id,
        token_hash=hash_token(token),
        created_at=now,
        expires_at=now + timedelta(hours=ttl_hours),
    )
    session.add(auth_session)
    session.flush()
    return token, auth_session


def authenticate(token: str, *, session: Session) -> Authenticated | None:
    row = session.execute(
        sa.select(AuthSession.id, AuthSession.user_id, AuthSession.expires_at).where(
            AuthSession.token_hash == hash_token(token),
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > utcnow(),
        )
    ).one_or_none()
    if row is None:
        return None
    return Authenticated(session_id=row.id, user_id=row.user_id, expires_at=row.expires_at)


def revoke_session(session_id: uuid.UUID, *, session: Session) -> None:
    session.execute(sa.update(AuthSession).where(AuthSession.id == session_id).values(revoked_at=utcnow()))


def get_user(user_id: uuid.UUID, *, session: Session) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise Unauthorized("A valid session is required.")
    return user


def require_self(user_id: uuid.UUID, auth: Authenticated, *, session: Session) -> None:
    """A path naming a user must name the caller: 404 for nobody, 403 for somebody else."""
    if user_id == auth.user_id:
        return
    if session.get(User, user_id) is None:
        raise NotFound("No such user.")
    raise Forbidden("You cannot access another user's resources.")
