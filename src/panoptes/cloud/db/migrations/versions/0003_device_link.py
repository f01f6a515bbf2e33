"""The device link: desired-state revisions and the device's MQTT presence.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

devices.desired_revision counts the changes of a device's desired state (the
``Revision`` the device acknowledges), desired_digest is the digest it was last
published with; presence/presence_time hold the device's last presence message
("online", or the broker's last will "offline").
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("desired_revision", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("desired_digest", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("presence", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("presence_time", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("presence_time")
        batch_op.drop_column("presence")
        batch_op.drop_column("desired_digest")
        batch_op.drop_column("desired_revision")
