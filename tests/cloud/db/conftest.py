"""The database fixtures are the services' (one SQLite and one PostgreSQL per session)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_path = Path(__file__).resolve().parents[1] / "services"
sys.path.insert(0, str(_path))
_spec = importlib.util.spec_from_file_location("panoptes_services_fixtures", _path / "conftest.py")
assert _spec and _spec.loader
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

_pg_url = _fixtures._pg_url
_databases = _fixtures._databases
db = _fixtures.db
