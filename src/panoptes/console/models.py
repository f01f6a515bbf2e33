"""The console's own tables: users of an account and their signed-in sessions.

They live on the control plane's SQLAlchemy Base (one database, one migration
chain: revision 0005_console) but belong to the console: Panorama resources are
never read from here, only through PanoramaBackend.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from panoptes.cloud.db.models import Base


class ConsoleUser(Base):
    """Someone who signs in to the console; acts as the account it belongs to."""

    __tablename__ = "console_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    #: ``scrypt$N$r$p$salt$hash`` (see passwords.py); never the password.
    password_hash: Mapped[str] = mapped_column(String(255))
    created: Mapped[datetime]
    password_changed: Mapped[datetime]


class ConsoleSession(Base):
    """A signed-in browser. The cookie holds a random token; only its hash is stored."""

    __tablename__ = "console_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("console_users.id", ondelete="CASCADE"), index=True
    )
    #: Sent back in every form and X-CSRF-Token header; compared on every POST.
    csrf_token: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime]
    last_seen: Mapped[datetime]
    #: Idle expiry, pushed forward on use, never past ``created`` + the absolute limit.
    expires: Mapped[datetime]
