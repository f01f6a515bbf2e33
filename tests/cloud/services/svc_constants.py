"""Constants the service tests share (test modules import this, never conftest)."""

from __future__ import annotations

from datetime import UTC, datetime

ACCOUNT = "123456789012"
REGION = "us-east-1"
T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
