"""Tables of application roles: roles, their inline policies, and issued role sessions.

A role belongs to one account and is named in a deployment's RuntimeRoleArn. A
session is one set of short-lived credentials handed to one application instance:
its secret is encrypted like an access key's, its token kept only as a SHA-256.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from panoptes.cloud.db.models import Base


class Role(Base):
    __tablename__ = "roles"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # AROA...
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(512), default="/")
    description: Mapped[str | None] = mapped_column(String(1000))
    #: Kept and returned as given; who may assume a role is not enforced here.
    assume_role_policy: Mapped[str] = mapped_column(Text)
    max_session_duration: Mapped[int] = mapped_column(default=3600)
    created: Mapped[datetime]


class RolePolicy(Base):
    __tablename__ = "role_policies"

    role_id: Mapped[str] = mapped_column(
        ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    document: Mapped[str] = mapped_column(Text)


class RoleSession(Base):
    __tablename__ = "role_sessions"
    __table_args__ = (
        Index("ix_role_sessions_instance", "instance_id"),
        Index("ix_role_sessions_expiration", "expiration"),
    )

    access_key_id: Mapped[str] = mapped_column(String(128), primary_key=True)  # ASIA...
    account_id: Mapped[str] = mapped_column(String(12))
    role_id: Mapped[str] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[str] = mapped_column(String(64))
    instance_id: Mapped[str] = mapped_column(String(64))
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    token_sha256: Mapped[str] = mapped_column(String(64))
    expiration: Mapped[datetime]
    created: Mapped[datetime]
