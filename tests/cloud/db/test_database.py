"""The schema: migrations equal the models, on SQLite and PostgreSQL; SQLite's settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from panoptes.cloud.db import Base, Database
from panoptes.cloud.db.models import Account, Device


def test_migrations_match_the_models(db):
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, Base.metadata) == []
        assert ctx.get_current_revision() == "0003"
    names = set(inspect(db.engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= names


def test_upgrade_is_idempotent(db):
    db.upgrade()
    db.upgrade()


def test_timestamps_come_back_aware_utc(db):
    local = datetime(2026, 7, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    with db.transaction() as s:
        s.add(Account(id="111111111111", created=local))
    with db.session() as s:
        got = s.get(Account, "111111111111").created
    assert got == local and got.tzinfo == UTC and got.hour == 12


def test_foreign_keys_are_enforced(db):
    now = datetime.now(UTC)
    with db.transaction() as s:
        s.add(Account(id="222222222222", created=now))
        s.flush()
        s.add(
            Device(
                id="device-x",
                account_id="222222222222",
                region="us-east-1",
                name="d",
                device_type="PANORAMA_APPLIANCE",
                brand="AWS_PANORAMA",
                provisioning_status="AWAITING_PROVISIONING",
                created=now,
                updated=now,
            )
        )
    with db.engine.connect() as conn:
        try:
            conn.execute(text("DELETE FROM accounts WHERE id = '222222222222'"))
            conn.commit()
            raised = False
        except Exception:
            raised = True
    assert raised, "a device's account cannot vanish under it"


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path):
    db = Database.open(f"sqlite:///{tmp_path / 'p.db'}")
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    db.dispose()
