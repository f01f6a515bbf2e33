"""PostgreSQL for tests, for real: availability and throwaway databases (one place)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
#: CI sets this: a missing server then fails the run instead of skipping tests.
REQUIRE_ENV = "PANOPTES_REQUIRE_POSTGRES"


def pg_available() -> bool:
    import psycopg

    try:
        psycopg.connect(f"{PG_SERVER}/postgres", connect_timeout=2).close()
    except psycopg.Error:
        if os.environ.get(REQUIRE_ENV):
            raise
        return False
    return True


@contextmanager
def fresh_pg_database(prefix: str = "panoptes_test") -> Iterator[str]:
    """A new, empty database ``PREFIX_<random>`` (SQLAlchemy URL); dropped afterwards."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
