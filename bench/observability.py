"""Log store: ingestion rate and GetLogEvents latency on 1 million lines, against the floor.

    .venv/bin/python bench/observability.py [--lines N] [--batch B] [--db sqlite,postgresql]

For each database (SQLite in a temp dir; PostgreSQL in a fresh database on
127.0.0.1:5432, dropped afterwards) this ingests N lines (default 1,000,000) into one
application log stream the way the MQTT bridge does: ``logs.ingest_batch`` with link
LogBatches of B lines (default 500). The floor is the same rows written with a plain
``executemany`` INSERT into a bare table with the same (stream, time, id) index, one
transaction per batch of B, on the same database through the raw DB-API connection;
the two take turns batch by batch.

Then GetLogEvents (``LogsBackend.handle``, no HTTP, as the protocol layer calls it):
the newest 150 lines (view-logs.sh's ``--limit 150``), 150 lines from the head, and
a 10,000-line page from the middle (a forward token), each timed R times; the floor
is the equivalent bare SELECT ... ORDER BY ... LIMIT on the bare table. Prints
lines/s, p50 latencies and Panoptes/floor ratios. It never asserts times.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # pg_support

ACCOUNT = "123456789012"
MESSAGE = "2026-11-25 14:00:00,123 INFO avg inference time: {i:.3f} ms (frame {i})"


@contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'bench.db'}"
        return
    from pg_support import fresh_pg_database

    with fresh_pg_database("panoptes_obs_bench") as url:
        yield url


def timed(fn: Callable[[], Any], repeat: int) -> float:
    """p50 of ``repeat`` calls, in milliseconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def batches(lines: int, size: int, start_ms: int) -> Iterator[list[tuple[int, str]]]:
    for first in range(0, lines, size):
        yield [(start_ms + i, MESSAGE.format(i=i)) for i in range(first, min(first + size, lines))]


def setup(url: str, tmp: Path) -> tuple[Any, str, str]:
    """Migrated database, one device with one deployed (recorded) instance."""
    from panoptes.cloud.context import RequestContext
    from panoptes.cloud.db import Database
    from panoptes.cloud.db.models import ApplicationInstance
    from panoptes.cloud.services import PanoramaBackend, Secrets, Settings
    from panoptes.cloud.storage.filesystem import FilesystemStore

    db = Database.open(url)
    backend = PanoramaBackend(
        db, FilesystemStore(tmp / "objects"), Settings(data_dir=tmp / "data"), Secrets(b"k" * 32)
    )
    now = datetime.now(UTC)
    ctx = RequestContext(ACCOUNT, "us-east-1", "AKIDBENCH", "admin", now=now)
    device = backend.handle("ProvisionDevice", ctx, {"Name": "bench"})["DeviceId"]
    instance = "applicationInstance-bench"
    with db.transaction() as session:
        session.add(
            ApplicationInstance(
                id=instance, account_id=ACCOUNT, region="us-east-1", name="bench",
                description=None, device_id=device, manifest_payload="{}",
                overrides_payload=None, plan={}, status="DEPLOYMENT_SUCCEEDED",
                status_description=None, health_status="RUNNING", replaces_id=None,
                runtime_role_arn=None, runtime_context_states=None, created=now, updated=now,
            )
        )  # fmt: skip
    return backend, device, instance


class FloorTable:
    """The same rows through a bare executemany INSERT, one transaction per batch."""

    def __init__(self, db: Any) -> None:
        self.raw = db.engine.raw_connection()
        cur = self.raw.cursor()
        sqlite = db.engine.dialect.name == "sqlite"
        cur.execute("DROP TABLE IF EXISTS floor_events")
        ident = "INTEGER PRIMARY KEY" if sqlite else "BIGSERIAL PRIMARY KEY"
        cur.execute(
            f"CREATE TABLE floor_events (id {ident}, stream_id INTEGER NOT NULL, "
            "timestamp_ms BIGINT NOT NULL, ingestion_ms BIGINT NOT NULL, message TEXT NOT NULL)"
        )
        cur.execute("CREATE INDEX floor_stream_time ON floor_events (stream_id, timestamp_ms, id)")
        self.raw.commit()
        mark = "?" if sqlite else "%s"
        self.sql = (
            "INSERT INTO floor_events (stream_id, timestamp_ms, ingestion_ms, message) "
            f"VALUES ({mark}, {mark}, {mark}, {mark})"
        )

    def insert(self, rows: list[tuple[int, str]]) -> None:
        now_ms = int(time.time() * 1000)
        self.raw.cursor().executemany(self.sql, [(1, ts, now_ms, m) for ts, m in rows])
        self.raw.commit()

    def close(self) -> None:
        self.raw.close()


def floor_select(db: Any, sql: str, params: tuple) -> Callable[[], Any]:
    raw = db.engine.raw_connection()
    mark = "?" if db.engine.dialect.name == "sqlite" else "%s"
    query = sql.replace("?", mark)

    def run() -> Any:
        cur = raw.cursor()
        cur.execute(query, params)
        rows = cur.fetchall()
        raw.commit()  # end the read transaction, as an autocommit read would
        return rows

    return run


def bench(kind: str, lines: int, size: int, repeat: int) -> dict[str, float]:
    from panoptes.cloud.context import RequestContext
    from panoptes.cloud.services.logs import ingest_batch
    from panoptes.cloud.services.observability import LogsBackend
    from panoptes.link import instance_log_group

    with tempfile.TemporaryDirectory() as folder, database(kind, Path(folder)) as url:
        tmp = Path(folder)
        backend, device, instance = setup(url, tmp)
        db, env = backend.db, backend.env
        group = instance_log_group(device, instance)
        start_ms = int(time.time() * 1000) - lines - 60_000

        # Ours and the floor take turns batch by batch, so that load from anything else
        # on the machine falls on both alike.
        floor_table = FloorTable(db)
        ours_s = floor_s = 0.0
        for sequence, rows in enumerate(batches(lines, size, start_ms), 1):
            events = [{"timestamp": ts, "message": m} for ts, m in rows]
            batch = {"Group": group, "Stream": "code_node", "Events": events, "Sequence": sequence}
            t0 = time.perf_counter()
            ingest_batch(env, device, batch)
            t1 = time.perf_counter()
            floor_table.insert(rows)
            ours_s, floor_s = ours_s + t1 - t0, floor_s + time.perf_counter() - t1
        floor_table.close()
        ours_rate, floor_rate = lines / ours_s, lines / floor_s
        if kind == "postgresql":  # fresh statistics for both tables, as autovacuum would
            with db.engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE log_events")
                conn.exec_driver_sql("ANALYZE floor_events")
                conn.commit()

        logs = LogsBackend(env)
        ctx = RequestContext(ACCOUNT, "us-east-1", "AKIDBENCH", "admin")

        def get(**params: Any) -> dict[str, Any]:
            return logs.handle(
                "GetLogEvents", ctx, {"logGroupName": group, "logStreamName": "code_node", **params}
            )

        assert len(get(limit=150)["events"]) == 150
        middle_ts = start_ms + lines // 2
        middle = f"f/{middle_ts}/0"
        assert len(get(nextToken=middle)["events"]) == min(10_000, lines - lines // 2)
        base = (
            "SELECT timestamp_ms, id, message, ingestion_ms FROM floor_events WHERE stream_id = ? "
        )
        tail_sql = base + "ORDER BY timestamp_ms DESC, id DESC LIMIT 150"
        head_sql = base + "ORDER BY timestamp_ms, id LIMIT 150"
        # A row-value bound, as ours: SQLite plans `a > ? OR (a = ? AND b > ?)` badly.
        page_sql = base + "AND (timestamp_ms, id) > (?, ?) ORDER BY timestamp_ms, id LIMIT 10000"
        out = {"ingest_ours": ours_rate, "ingest_floor": floor_rate}
        cases = {
            "tail150": (lambda: get(limit=150), floor_select(db, tail_sql, (1,))),
            "head150": (
                lambda: get(limit=150, startFromHead=True),
                floor_select(db, head_sql, (1,)),
            ),
            "page10000": (
                lambda: get(nextToken=middle),
                floor_select(db, page_sql, (1, middle_ts, 0)),
            ),
        }
        for name, (ours, floor) in cases.items():
            ours()  # warm caches and statement caches alike
            floor()
            out[f"{name}_ours"] = timed(ours, repeat)
            out[f"{name}_floor"] = timed(floor, repeat)
        db.dispose()
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--db", default="sqlite,postgresql")
    args = parser.parse_args()
    for kind in args.db.split(","):
        r = bench(kind, args.lines, args.batch, args.repeat)
        print(f"\n{kind}: {args.lines:,} lines in batches of {args.batch}")
        ours, floor = r["ingest_ours"], r["ingest_floor"]
        print(
            f"  ingestion   ours {ours:>10,.0f} lines/s   floor {floor:>10,.0f} lines/s   "
            f"ours/floor {ours / floor:.2f}"
        )
        for name in ("tail150", "head150", "page10000"):
            ours, floor = r[f"{name}_ours"], r[f"{name}_floor"]
            print(
                f"  GetLogEvents {name:<9} p50 ours {ours:8.2f} ms   floor {floor:8.2f} ms   "
                f"ours/floor {ours / floor:.2f}"
            )


if __name__ == "__main__":
    main()
