"""Indexes for listings read in key order: application instances, device jobs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

ListApplicationInstances pages an account's instances newest first in SQL
(account_id, created, id); DescribeDevice and ListDevices read each device's latest
job (device_id, created, id).
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("application_instances", schema=None) as batch_op:
        batch_op.create_index(
            "ix_application_instances_account_created",
            ["account_id", "created", "id"],
            unique=False,
        )
    with op.batch_alter_table("device_jobs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_device_jobs_device_created", ["device_id", "created", "id"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("device_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_device_jobs_device_created")
    with op.batch_alter_table("application_instances", schema=None) as batch_op:
        batch_op.drop_index("ix_application_instances_account_created")
