"""Fixtures of the device link tests: the control plane with each broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from link_support import LinkStack, link_stack


@pytest.fixture(params=["embedded", "mosquitto"])
def broker_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def linked(broker_kind: str, tmp_path: Path) -> Iterator[LinkStack]:
    """SQLite control plane + the link with each broker."""
    with link_stack("sqlite", broker_kind, tmp_path) as ls:
        yield ls
