"""Console users (one account each) and their server-side sessions.

A session is a random token in an HttpOnly cookie; the database keeps only its
SHA-256, the user, a CSRF token and the expiry. A session idles out after
``idle`` and ends after ``absolute`` whatever its use. `bootstrap_console_user`
runs beside `bootstrap_admin`: the first start creates user ``admin`` in the admin
key's account with a generated password written 0600 to DATA_DIR/console-password.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select, update

from panoptes.cloud.db import Database
from panoptes.cloud.db.models import Account
from panoptes.console.models import ConsoleSession, ConsoleUser
from panoptes.console.passwords import (
    DUMMY_HASH,
    generate_password,
    hash_password,
    verify_password,
)

BOOTSTRAP_USER = "admin"
PASSWORD_FILE = "console-password"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")


class UserError(ValueError):
    """A user operation that cannot be done; the message names the fix."""


def _now() -> datetime:
    return datetime.now(UTC)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class User:
    id: int
    name: str
    account_id: str


@dataclass(frozen=True)
class Session:
    user: User
    csrf_token: str
    expires: datetime


@dataclass
class Users:
    db: Database
    now: Callable[[], datetime] = _now
    idle: timedelta = timedelta(hours=2)
    absolute: timedelta = timedelta(hours=12)

    # -- users -------------------------------------------------------------------------

    def add(self, name: str, account_id: str, password: str) -> User:
        if not _NAME.match(name):
            raise UserError(
                f"user name {name!r}: use 1-64 letters, digits and . _ @ + - "
                "(starting with a letter or digit)"
            )
        hashed = hash_password(password)
        now = self.now()
        with self.db.transaction() as s:
            if s.get(Account, account_id) is None:
                raise UserError(f"no account {account_id}: start `panoptes serve` once first")
            if s.scalar(select(ConsoleUser.id).where(ConsoleUser.name == name)) is not None:
                raise UserError(f"user {name!r} exists already")
            row = ConsoleUser(
                name=name,
                account_id=account_id,
                password_hash=hashed,
                created=now,
                password_changed=now,
            )
            s.add(row)
            s.flush()
            return User(row.id, row.name, row.account_id)

    def list(self) -> list[User]:
        with self.db.session() as s:
            rows = s.scalars(select(ConsoleUser).order_by(ConsoleUser.name)).all()
            return [User(r.id, r.name, r.account_id) for r in rows]

    def remove(self, name: str) -> None:
        with self.db.transaction() as s:
            row = s.scalar(select(ConsoleUser).where(ConsoleUser.name == name))
            if row is None:
                raise UserError(f"no user {name!r}")
            s.execute(delete(ConsoleSession).where(ConsoleSession.user_id == row.id))
            s.delete(row)

    def set_password(self, name: str, password: str) -> None:
        """A new password; every session of the user ends."""
        hashed = hash_password(password)
        with self.db.transaction() as s:
            row = s.scalar(select(ConsoleUser).where(ConsoleUser.name == name))
            if row is None:
                raise UserError(f"no user {name!r}")
            row.password_hash = hashed
            row.password_changed = self.now()
            s.execute(delete(ConsoleSession).where(ConsoleSession.user_id == row.id))

    def authenticate(self, name: str, password: str) -> User | None:
        with self.db.session() as s:
            row = s.scalar(select(ConsoleUser).where(ConsoleUser.name == name))
        if row is None:
            verify_password(password, DUMMY_HASH)  # same cost as a wrong password
            return None
        if not verify_password(password, row.password_hash):
            return None
        return User(row.id, row.name, row.account_id)

    # -- sessions ----------------------------------------------------------------------

    def start_session(self, user: User) -> tuple[str, Session]:
        """(cookie token, session). Old expired sessions are swept on the way."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = self.now()
        expires = now + min(self.idle, self.absolute)
        with self.db.transaction() as s:
            s.execute(delete(ConsoleSession).where(ConsoleSession.expires <= now))
            s.add(
                ConsoleSession(
                    token_sha256=_digest(token),
                    user_id=user.id,
                    csrf_token=csrf,
                    created=now,
                    last_seen=now,
                    expires=expires,
                )
            )
        return token, Session(user, csrf, expires)

    def session(self, token: str | None) -> Session | None:
        """The live session for a cookie token, its idle expiry pushed forward; else None.

        A page view only reads (no transaction); the row is written when the session
        expired (deleted) or at most once a minute (its idle expiry pushed forward).
        """
        if not token:
            return None
        now = self.now()
        digest = _digest(token)
        with self.db.reading() as s:
            found = s.execute(
                select(ConsoleSession, ConsoleUser)
                .join(ConsoleUser, ConsoleUser.id == ConsoleSession.user_id)
                .where(ConsoleSession.token_sha256 == digest)
            ).first()
        if found is None:
            return None
        row, user = found
        if row.expires <= now:
            self.end_session(token)
            return None
        expires = row.expires
        if now - row.last_seen > timedelta(minutes=1):
            expires = min(now + self.idle, row.created + self.absolute)
            with self.db.transaction() as s:
                s.execute(
                    update(ConsoleSession)
                    .where(ConsoleSession.token_sha256 == digest)
                    .values(last_seen=now, expires=expires)
                )
        return Session(User(user.id, user.name, user.account_id), row.csrf_token, expires)

    def end_session(self, token: str | None) -> None:
        if not token:
            return
        with self.db.transaction() as s:
            s.execute(delete(ConsoleSession).where(ConsoleSession.token_sha256 == _digest(token)))


# --- the first user ---------------------------------------------------------------------


@dataclass(frozen=True)
class BootstrapUser:
    name: str
    account_id: str
    password_file: Path
    #: The generated password when it was created by this start (printed once), else None.
    new_password: str | None

    def message(self, console_url: str) -> str:
        if self.new_password is not None:
            return (
                f"Created console user {self.name} (account {self.account_id}) with password "
                f"{self.new_password} (also in {self.password_file}); sign in at {console_url}"
            )
        return f"Console at {console_url} (first user {self.name}: see {self.password_file})"


def bootstrap_console_user(users: Users, data_dir: Path, account_id: str) -> BootstrapUser:
    """Create user ``admin`` in ACCOUNT_ID when the console has no user yet."""
    path = data_dir / PASSWORD_FILE
    existing = users.list()
    if existing:
        first = next((u for u in existing if u.name == BOOTSTRAP_USER), existing[0])
        return BootstrapUser(first.name, first.account_id, path, None)
    password = generate_password()
    user = users.add(BOOTSTRAP_USER, account_id, password)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{user.name}\n{password}\n")
    os.replace(tmp, path)
    return BootstrapUser(user.name, user.account_id, path, password)
