"""Database fixtures shared by the control-plane tests: SQLite and PostgreSQL, for real."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from panoptes.cloud.db import Base, Database


@pytest.fixture(scope="session")
def _databases(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    """One migrated database per backend for the whole session; tests empty it."""
    cache: dict[str, Database] = {}

    def get(kind: str) -> Database:
        if kind not in cache:
            if kind == "sqlite":
                path = tmp_path_factory.mktemp("db") / "panoptes.db"
                cache[kind] = Database.open(f"sqlite:///{path}")
            else:
                cache[kind] = Database.open(request.getfixturevalue("postgres_url"))
        return cache[kind]

    yield get
    for db in cache.values():
        db.dispose()


def _empty(db: Database) -> None:
    tables = list(reversed(Base.metadata.sorted_tables))
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, _databases) -> Iterator[Database]:
    database = _databases(request.param)
    _empty(database)
    yield database
    _empty(database)
