"""Open the database and bring its schema up to date.

`Database.open(url)` creates the engine, turns on what SQLite needs to be a safe
single-node store (WAL, foreign keys, a busy timeout), and runs the Alembic
migrations shipped in this package to ``head`` before anything else touches it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    """An Alembic config for our migrations (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    # WAL lets readers proceed while one writer commits; foreign keys are off by
    # default in SQLite and our cascades depend on them.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


class ReadOnlyViolation(RuntimeError):
    """Something tried to write through ``Database.reading()``."""


def _refuse_flush(session: Session, _context: Any, _instances: Any) -> None:
    raise ReadOnlyViolation("a read-only session may not flush")


def _refuse_writes(state: ORMExecuteState) -> None:
    if not state.is_select:
        raise ReadOnlyViolation("a read-only session runs SELECT statements only")
    if getattr(state.statement, "_for_update_arg", None) is not None:
        raise ReadOnlyViolation("a read-only session takes no row locks")


class Database:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # Reads that need no transaction: each statement sees what is committed when
        # it runs, and PostgreSQL is spared BEGIN and COMMIT/ROLLBACK round trips.
        # pysqlite already runs SELECTs outside a transaction (it begins one before
        # DML only); switching it to AUTOCOMMIT would cost a PRAGMA per checkin.
        self._autocommit = (
            engine
            if engine.dialect.name == "sqlite"
            else engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self._readers = sessionmaker(self._autocommit, expire_on_commit=False, autoflush=False)
        event.listen(self._readers, "before_flush", _refuse_flush)
        event.listen(self._readers, "do_orm_execute", _refuse_writes)

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Database:
        """Connect to ``url`` (SQLAlchemy URL) and upgrade the schema to head."""
        engine = create_engine(url, future=True)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        db = cls(engine)
        if migrate:
            db.upgrade()
        return db

    @classmethod
    def sqlite(cls, path: str | Path) -> Database:
        return cls.open(f"sqlite:///{Path(path)}")

    def upgrade(self, revision: str = "head") -> None:
        cfg = alembic_config(self.engine.url.render_as_string(hide_password=False))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for reads only, outside any transaction (no BEGIN/COMMIT).

        Each statement sees what is committed when it runs, as in a READ COMMITTED
        transaction (PostgreSQL's default; SQLite reads run outside one anyway). A
        write is refused: flushing, a DML statement, or changes left unflushed.
        """
        with self._readers() as session:
            yield session
            if session.new or session.dirty or session.deleted:
                raise ReadOnlyViolation("a read-only session was given changes")

    def session(self) -> Session:
        return self._sessions()

    def reader(self) -> Connection:
        """A connection in autocommit mode, for one read that needs no transaction."""
        return self._autocommit.connect()

    def dispose(self) -> None:
        self.engine.dispose()
