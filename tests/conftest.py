"""Shared test helpers: where the published reference material lives."""

from __future__ import annotations

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
