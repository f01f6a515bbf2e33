"""The control plane's database: SQLAlchemy models and Alembic migrations.

db = Database.open("sqlite:///data/panoptes.db")   # migrates to head
with db.transaction() as session: ...
"""

# Registers the observability tables (logs, metrics, alarms) on Base.metadata.
from panoptes.cloud.db import (
    observability_models,  # noqa: F401
    roles_models,  # noqa: F401  (its tables join Base.metadata)
)
from panoptes.cloud.db.database import Database, alembic_config
from panoptes.cloud.db.models import Base

__all__ = ["Base", "Database", "alembic_config"]
