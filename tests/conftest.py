"""Shared test helpers: where the published reference material lives."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_REFERENCE = REPO.parent / "shared" / "reference"
MANIFEST_FIXTURES = SHARED_REFERENCE / "manifest-fixtures"
SAMPLE_APP = MANIFEST_FIXTURES / "devguide@HEAD" / "sample-apps" / "aws-panorama-sample"


@pytest.fixture
def sample_app() -> Path:
    """The developer guide's sample application (graph, overrides, packages)."""
    if not SAMPLE_APP.is_dir():
        pytest.skip(f"reference fixtures not found at {SAMPLE_APP}")
    return SAMPLE_APP


PG_SERVER = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (SQLAlchemy URL), dropped after.

    Skipped where no server runs on 127.0.0.1:5432, unless PANOPTES_REQUIRE_POSTGRES is
    set (CI sets it, so a missing server fails the run instead of hiding tests).
    """
    import psycopg

    try:
        psycopg.connect(f"{PG_SERVER}/test", connect_timeout=2).close()
    except psycopg.Error as exc:
        if os.environ.get("PANOPTES_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL is required here but not reachable: {exc}")
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    name = f"panoptes_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{PG_SERVER}/test", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(f"{PG_SERVER}/test", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
