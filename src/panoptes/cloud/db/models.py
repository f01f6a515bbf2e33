"""The control plane's tables: one class per resource the Panorama API exposes.

Rows hold what the API returns plus what it must never return (encrypted secrets,
resolved plans). Column values use the service model's enum spellings, so services
copy them to responses unchanged. Every resource belongs to one account; lookups
always filter by it, so one account never sees another's rows.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Named constraints so migrations can alter them the same way on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


# --- accounts and keys ----------------------------------------------------------------


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(12), primary_key=True)
    created: Mapped[datetime]


class AccessKey(Base):
    __tablename__ = "access_keys"

    access_key_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    principal: Mapped[str] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created: Mapped[datetime]


# --- devices --------------------------------------------------------------------------


class Device(Base):
    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    region: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(255))
    device_type: Mapped[str] = mapped_column(String(64))
    brand: Mapped[str] = mapped_column(String(32))
    provisioning_status: Mapped[str] = mapped_column(String(32))
    networking_configuration: Mapped[dict[str, Any] | None]
    # What the device reports (heartbeat): software, network, serial number.
    current_software: Mapped[str | None] = mapped_column(String(255))
    serial_number: Mapped[str | None] = mapped_column(String(20))
    network_status: Mapped[dict[str, Any] | None]
    network_status_time: Mapped[datetime | None]
    alternate_softwares: Mapped[list[Any] | None]
    last_heartbeat: Mapped[datetime | None]
    lease_expiration: Mapped[datetime | None]
    # The device link (migration 0003): the desired state's revision and the digest
    # it was published with; the last presence message ("online" / last will "offline").
    desired_revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    desired_digest: Mapped[str | None] = mapped_column(String(64))
    presence: Mapped[str | None] = mapped_column(String(16))
    presence_time: Mapped[datetime | None]
    job_counter: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[datetime]
    updated: Mapped[datetime]

    jobs: Mapped[list[DeviceJob]] = relationship(
        back_populates="device", cascade="all, delete-orphan", passive_deletes=True
    )


class DeviceCertificate(Base):
    """Certificates the platform CA issued. Kept after the device is gone: revocation."""

    __tablename__ = "device_certificates"

    serial: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    account_id: Mapped[str] = mapped_column(String(12))
    certificate_pem: Mapped[str] = mapped_column(Text)
    issued: Mapped[datetime]
    not_after: Mapped[datetime]
    revoked: Mapped[datetime | None]


class ProvisioningCredential(Base):
    """The one-time token in the certificates archive; only its hash is stored."""

    __tablename__ = "provisioning_credentials"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    expires: Mapped[datetime]
    used: Mapped[datetime | None]


class DeviceJob(Base):
    __tablename__ = "device_jobs"
    # A device's latest job (DescribeDevice, ListDevices) without scanning every job.
    __table_args__ = (Index("ix_device_jobs_device_created", "device_id", "created", "id"),)

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12), index=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    job_type: Mapped[str] = mapped_column(String(16))
    image_version: Mapped[str | None] = mapped_column(String(255))
    allow_major_update: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(32))
    created: Mapped[datetime]
    updated: Mapped[datetime]

    device: Mapped[Device] = relationship(back_populates="jobs")


# --- packages and nodes ---------------------------------------------------------------


class Package(Base):
    __tablename__ = "packages"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    region: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    bucket: Mapped[str] = mapped_column(String(255))
    prefix: Mapped[str] = mapped_column(String(512))
    created: Mapped[datetime]

    versions: Mapped[list[PackageVersion]] = relationship(
        back_populates="package", cascade="all, delete-orphan", passive_deletes=True
    )


class PackageVersion(Base):
    """One registered patch of PACKAGE at VERSION; its package.json in ``manifest``."""

    __tablename__ = "package_versions"
    __table_args__ = (UniqueConstraint("package_id", "version", "patch_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    package_id: Mapped[str] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"))
    owner_account: Mapped[str] = mapped_column(String(12))
    version: Mapped[str] = mapped_column(String(255))
    patch_version: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    status_description: Mapped[str | None] = mapped_column(String(255))
    is_latest: Mapped[bool] = mapped_column(Boolean, default=False)
    manifest: Mapped[dict[str, Any]]
    registered: Mapped[datetime | None]
    created: Mapped[datetime]

    package: Mapped[Package] = relationship(back_populates="versions")
    nodes: Mapped[list[NodeRow]] = relationship(
        back_populates="package_version", cascade="all, delete-orphan", passive_deletes=True
    )
    camera: Mapped[CameraSource | None] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )


class NodeRow(Base):
    """One node per interface of a registered package version (ListNodes)."""

    __tablename__ = "nodes"
    # Node ids derive from package name, version and patch: two accounts registering
    # the same package.json get the same id, so ids are unique per account only.
    __table_args__ = (UniqueConstraint("account_id", "node_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    node_id: Mapped[str] = mapped_column(String(255))
    package_version_id: Mapped[int] = mapped_column(
        ForeignKey("package_versions.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[str] = mapped_column(String(12), index=True)
    name: Mapped[str] = mapped_column(String(128))
    category: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(String(255), default="")
    asset_name: Mapped[str | None] = mapped_column(String(255))
    interface: Mapped[dict[str, Any]]
    created: Mapped[datetime]

    package_version: Mapped[PackageVersion] = relationship(back_populates="nodes")


class CameraSource(Base):
    """Where a camera package's stream is; URL and password encrypted."""

    __tablename__ = "camera_sources"

    package_version_id: Mapped[int] = mapped_column(
        ForeignKey("package_versions.id", ondelete="CASCADE"), primary_key=True
    )
    stream_url_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    username: Mapped[str | None] = mapped_column(String(255))
    password_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)


class NodeFromTemplateJob(Base):
    __tablename__ = "node_from_template_jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12), index=True)
    template_type: Mapped[str] = mapped_column(String(32))
    output_package_name: Mapped[str] = mapped_column(String(128))
    output_package_version: Mapped[str] = mapped_column(String(255))
    node_name: Mapped[str] = mapped_column(String(128))
    node_description: Mapped[str | None] = mapped_column(String(255))
    # The parameters with every secret value masked; the secrets live in camera_sources.
    template_parameters: Mapped[dict[str, Any]]
    job_tags: Mapped[list[Any] | None]
    status: Mapped[str] = mapped_column(String(16))
    status_message: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[datetime]
    updated: Mapped[datetime]


class PackageImportJob(Base):
    __tablename__ = "package_import_jobs"
    __table_args__ = (UniqueConstraint("account_id", "client_token"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12), index=True)
    client_token: Mapped[str] = mapped_column(String(64))
    job_type: Mapped[str] = mapped_column(String(64))
    input_config: Mapped[dict[str, Any]]
    output_config: Mapped[dict[str, Any]]
    output: Mapped[dict[str, Any] | None]
    job_tags: Mapped[list[Any] | None]
    status: Mapped[str] = mapped_column(String(16))
    status_message: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[datetime]
    updated: Mapped[datetime]


# --- application instances ------------------------------------------------------------


class ApplicationInstance(Base):
    __tablename__ = "application_instances"
    # ListApplicationInstances pages an account's instances newest first in SQL.
    __table_args__ = (
        Index("ix_application_instances_account_created", "account_id", "created", "id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12), index=True)
    region: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(255))
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    manifest_payload: Mapped[str] = mapped_column(Text)
    overrides_payload: Mapped[str | None] = mapped_column(Text)
    plan: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(32))
    status_description: Mapped[str | None] = mapped_column(String(255))
    health_status: Mapped[str] = mapped_column(String(16))
    replaces_id: Mapped[str | None] = mapped_column(String(64))
    runtime_role_arn: Mapped[str | None] = mapped_column(String(255))
    runtime_context_states: Mapped[list[Any] | None]
    #: The instance's live output (MJPEG) as its device reports it; the console relays it.
    output_url: Mapped[str | None] = mapped_column(String(1024))
    created: Mapped[datetime]
    updated: Mapped[datetime]

    node_instances: Mapped[list[NodeInstance]] = relationship(
        back_populates="application_instance",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="NodeInstance.position",
    )


class NodeInstance(Base):
    __tablename__ = "node_instances"
    __table_args__ = (UniqueConstraint("application_instance_id", "node_instance_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_instance_id: Mapped[str] = mapped_column(
        ForeignKey("application_instances.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    node_instance_id: Mapped[str] = mapped_column(String(128))
    node_id: Mapped[str | None] = mapped_column(String(255))
    node_name: Mapped[str | None] = mapped_column(String(128))
    package_name: Mapped[str | None] = mapped_column(String(128))
    package_version: Mapped[str | None] = mapped_column(String(255))
    patch_version: Mapped[str | None] = mapped_column(String(255))
    is_camera: Mapped[bool] = mapped_column(Boolean, default=False)
    current_status: Mapped[str] = mapped_column(String(16))
    # PAUSE/RESUME signals land here; the device reads it and reports current_status.
    desired_state: Mapped[str] = mapped_column(String(16))

    application_instance: Mapped[ApplicationInstance] = relationship(
        back_populates="node_instances"
    )


# --- tags and counters ----------------------------------------------------------------


class Tag(Base):
    __tablename__ = "tags"

    resource_arn: Mapped[str] = mapped_column(String(2048), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class DeploymentCounter(Base):
    """Deployments per device per UTC day (quota: 200)."""

    __tablename__ = "deployment_counters"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
