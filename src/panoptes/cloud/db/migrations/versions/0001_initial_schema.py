"""Initial schema: accounts, keys, devices, jobs, packages, nodes, applications, tags.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Written once from the models and frozen: later changes get their own revision.
Timestamps are stored as UTC (see models.UTCDateTime).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(length=12), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
    )
    op.create_table(
        "deployment_counters",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "day", name=op.f("pk_deployment_counters")),
    )
    op.create_table(
        "device_certificates",
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("certificate_pem", sa.Text(), nullable=False),
        sa.Column("issued", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("serial", name=op.f("pk_device_certificates")),
    )
    with op.batch_alter_table("device_certificates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_device_certificates_device_id"), ["device_id"], unique=False
        )

    op.create_table(
        "node_from_template_jobs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("template_type", sa.String(length=32), nullable=False),
        sa.Column("output_package_name", sa.String(length=128), nullable=False),
        sa.Column("output_package_version", sa.String(length=255), nullable=False),
        sa.Column("node_name", sa.String(length=128), nullable=False),
        sa.Column("node_description", sa.String(length=255), nullable=True),
        sa.Column("template_parameters", sa.JSON(), nullable=False),
        sa.Column("job_tags", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_from_template_jobs")),
    )
    with op.batch_alter_table("node_from_template_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_node_from_template_jobs_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "package_import_jobs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("client_token", sa.String(length=64), nullable=False),
        sa.Column("job_type", sa.String(length=64), nullable=False),
        sa.Column("input_config", sa.JSON(), nullable=False),
        sa.Column("output_config", sa.JSON(), nullable=False),
        sa.Column("output", sa.JSON(), nullable=True),
        sa.Column("job_tags", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_package_import_jobs")),
        sa.UniqueConstraint(
            "account_id", "client_token", name=op.f("uq_package_import_jobs_account_id")
        ),
    )
    with op.batch_alter_table("package_import_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_package_import_jobs_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "tags",
        sa.Column("resource_arn", sa.String(length=2048), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("resource_arn", "key", name=op.f("pk_tags")),
    )
    op.create_table(
        "access_keys",
        sa.Column("access_key_id", sa.String(length=128), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("secret_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("principal", sa.String(length=255), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_access_keys_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("access_key_id", name=op.f("pk_access_keys")),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("device_type", sa.String(length=64), nullable=False),
        sa.Column("brand", sa.String(length=32), nullable=False),
        sa.Column("provisioning_status", sa.String(length=32), nullable=False),
        sa.Column("networking_configuration", sa.JSON(), nullable=True),
        sa.Column("current_software", sa.String(length=255), nullable=True),
        sa.Column("serial_number", sa.String(length=20), nullable=True),
        sa.Column("network_status", sa.JSON(), nullable=True),
        sa.Column("network_status_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("alternate_softwares", sa.JSON(), nullable=True),
        sa.Column("last_heartbeat", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_expiration", sa.DateTime(timezone=True), nullable=True),
        sa.Column("job_counter", sa.Integer(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_devices_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_devices_account_id")),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_devices_account_id"), ["account_id"], unique=False)

    op.create_table(
        "packages",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("bucket", sa.String(length=255), nullable=False),
        sa.Column("prefix", sa.String(length=512), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_packages_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_packages")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_packages_account_id")),
    )
    with op.batch_alter_table("packages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_packages_account_id"), ["account_id"], unique=False)

    op.create_table(
        "application_instances",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("manifest_payload", sa.Text(), nullable=False),
        sa.Column("overrides_payload", sa.Text(), nullable=True),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("status_description", sa.String(length=255), nullable=True),
        sa.Column("health_status", sa.String(length=16), nullable=False),
        sa.Column("replaces_id", sa.String(length=64), nullable=True),
        sa.Column("runtime_role_arn", sa.String(length=255), nullable=True),
        sa.Column("runtime_context_states", sa.JSON(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_application_instances_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_application_instances")),
    )
    with op.batch_alter_table("application_instances", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_application_instances_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_application_instances_device_id"), ["device_id"], unique=False
        )

    op.create_table(
        "device_jobs",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("job_type", sa.String(length=16), nullable=False),
        sa.Column("image_version", sa.String(length=255), nullable=True),
        sa.Column("allow_major_update", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_device_jobs_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_jobs")),
    )
    with op.batch_alter_table("device_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_jobs_account_id"), ["account_id"], unique=False)

    op.create_table(
        "package_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("package_id", sa.String(length=64), nullable=False),
        sa.Column("owner_account", sa.String(length=12), nullable=False),
        sa.Column("version", sa.String(length=255), nullable=False),
        sa.Column("patch_version", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("status_description", sa.String(length=255), nullable=True),
        sa.Column("is_latest", sa.Boolean(), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("registered", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["packages.id"],
            name=op.f("fk_package_versions_package_id_packages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_package_versions")),
        sa.UniqueConstraint(
            "package_id", "version", "patch_version", name=op.f("uq_package_versions_package_id")
        ),
    )
    op.create_table(
        "provisioning_credentials",
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_provisioning_credentials_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_provisioning_credentials")),
    )
    op.create_table(
        "camera_sources",
        sa.Column("package_version_id", sa.Integer(), nullable=False),
        sa.Column("stream_url_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=True),
        sa.Column("password_encrypted", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["package_version_id"],
            ["package_versions.id"],
            name=op.f("fk_camera_sources_package_version_id_package_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("package_version_id", name=op.f("pk_camera_sources")),
    )
    op.create_table(
        "node_instances",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("application_instance_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("node_instance_id", sa.String(length=128), nullable=False),
        sa.Column("node_id", sa.String(length=255), nullable=True),
        sa.Column("node_name", sa.String(length=128), nullable=True),
        sa.Column("package_name", sa.String(length=128), nullable=True),
        sa.Column("package_version", sa.String(length=255), nullable=True),
        sa.Column("patch_version", sa.String(length=255), nullable=True),
        sa.Column("is_camera", sa.Boolean(), nullable=False),
        sa.Column("current_status", sa.String(length=16), nullable=False),
        sa.Column("desired_state", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_instance_id"],
            ["application_instances.id"],
            name=op.f("fk_node_instances_application_instance_id_application_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_instances")),
        sa.UniqueConstraint(
            "application_instance_id",
            "node_instance_id",
            name=op.f("uq_node_instances_application_instance_id"),
        ),
    )
    op.create_table(
        "nodes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("node_id", sa.String(length=255), nullable=False),
        sa.Column("package_version_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("asset_name", sa.String(length=255), nullable=True),
        sa.Column("interface", sa.JSON(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["package_version_id"],
            ["package_versions.id"],
            name=op.f("fk_nodes_package_version_id_package_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nodes")),
        sa.UniqueConstraint("account_id", "node_id", name=op.f("uq_nodes_account_id")),
    )
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nodes_account_id"), ["account_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_nodes_package_version_id"), ["package_version_id"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nodes_package_version_id"))
        batch_op.drop_index(batch_op.f("ix_nodes_account_id"))

    op.drop_table("nodes")
    op.drop_table("node_instances")
    op.drop_table("camera_sources")
    op.drop_table("provisioning_credentials")
    op.drop_table("package_versions")
    with op.batch_alter_table("device_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_jobs_account_id"))

    op.drop_table("device_jobs")
    with op.batch_alter_table("application_instances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_application_instances_device_id"))
        batch_op.drop_index(batch_op.f("ix_application_instances_account_id"))

    op.drop_table("application_instances")
    with op.batch_alter_table("packages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_packages_account_id"))

    op.drop_table("packages")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_devices_account_id"))

    op.drop_table("devices")
    op.drop_table("access_keys")
    op.drop_table("tags")
    with op.batch_alter_table("package_import_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_package_import_jobs_account_id"))

    op.drop_table("package_import_jobs")
    with op.batch_alter_table("node_from_template_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_node_from_template_jobs_account_id"))

    op.drop_table("node_from_template_jobs")
    with op.batch_alter_table("device_certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_certificates_device_id"))

    op.drop_table("device_certificates")
    op.drop_table("deployment_counters")
    op.drop_table("accounts")
