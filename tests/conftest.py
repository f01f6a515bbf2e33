"""Shared test helpers: where the published reference material lives."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from pg_support import fresh_pg_database, pg_available

# The fuzz tests draw new examples on every local run (that is how they find bugs); in
# CI they draw the same ones each time, so a red CI names a bug that reproduces.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

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


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (SQLAlchemy URL), dropped after.

    Skipped where no server runs on 127.0.0.1:5432, unless PANOPTES_REQUIRE_POSTGRES is
    set (CI sets it, so a missing server fails the run instead of hiding tests).
    """
    if not pg_available():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    with fresh_pg_database() as url:
        yield url
