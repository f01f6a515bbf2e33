"""Fixtures: the observability services on SQLite and PostgreSQL (the `db` fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest
from obs_support import World

from panoptes.cloud.db import Database


@pytest.fixture
def world(db: Database, tmp_path: Path) -> World:
    return World(db, tmp_path)
