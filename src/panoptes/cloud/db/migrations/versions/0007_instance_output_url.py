"""Application instances: the live output URL their device reports (health reports).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("application_instances") as batch:
        batch.add_column(sa.Column("output_url", sa.String(length=1024), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("application_instances") as batch:
        batch.drop_column("output_url")
