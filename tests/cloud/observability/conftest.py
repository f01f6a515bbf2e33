"""Fixtures: the observability services on SQLite and PostgreSQL (the `db` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from obs_support import SmtpSink, WebhookSink, World, old_boto3_venv

from panoptes.cloud.db import Database


@pytest.fixture
def world(db: Database, tmp_path: Path) -> World:
    return World(db, tmp_path)


@pytest.fixture
def webhook() -> Iterator[WebhookSink]:
    sink = WebhookSink()
    yield sink
    sink.close()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    yield sink
    sink.close()


@pytest.fixture(scope="session")
def boto3_1_24(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a venv with boto3 1.24 (query protocol for CloudWatch), per session."""
    return old_boto3_venv(tmp_path_factory.mktemp("boto3-1.24") / "venv")
