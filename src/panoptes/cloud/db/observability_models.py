"""Tables of the observability services: log groups, streams and events; metric series
and data points; alarms and their history.

Registered on the same ``Base`` as the Panorama tables (migration 0004). Times that
CloudWatch expresses in epoch milliseconds (log events, metric points) are stored as
BIGINT milliseconds: the API speaks them, SQL compares and buckets them cheaply, and
both SQLite and PostgreSQL index them the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from panoptes.cloud.db.models import Base

# SQLite makes only an INTEGER PRIMARY KEY an alias of the rowid (auto-increment).
_BigId = BigInteger().with_variant(Integer(), "sqlite")


class LogGroup(Base):
    __tablename__ = "log_groups"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(12), index=True)
    name: Mapped[str] = mapped_column(String(512))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    #: None: kept until the size limit pushes them out.
    retention_days: Mapped[int | None] = mapped_column(Integer)
    #: The device whose agent ships this group (None for groups made through the API).
    device_id: Mapped[str | None] = mapped_column(String(64), index=True)
    stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0)


class LogStream(Base):
    __tablename__ = "log_streams"
    __table_args__ = (UniqueConstraint("group_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("log_groups.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(512))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    first_event_ms: Mapped[int | None] = mapped_column(BigInteger)
    last_event_ms: Mapped[int | None] = mapped_column(BigInteger)
    last_ingestion_ms: Mapped[int | None] = mapped_column(BigInteger)
    stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0)


class LogEvent(Base):
    __tablename__ = "log_events"
    # GetLogEvents and FilterLogEvents read one stream in (timestamp, id) order.
    __table_args__ = (Index("ix_log_events_stream_time", "stream_id", "timestamp_ms", "id"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    stream_id: Mapped[int] = mapped_column(ForeignKey("log_streams.id", ondelete="CASCADE"))
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)
    ingestion_ms: Mapped[int] = mapped_column(BigInteger)
    message: Mapped[str] = mapped_column(Text)


class LogBatchSeen(Base):
    """(device, Sequence) of link LogBatches already stored: re-sent ones are dropped."""

    __tablename__ = "log_batches_seen"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class MetricSeries(Base):
    """One metric: namespace + name + exact set of dimensions, per account."""

    __tablename__ = "metric_series"
    __table_args__ = (UniqueConstraint("account_id", "namespace", "name", "dimensions_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(12))
    namespace: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    #: Canonical JSON of the sorted dimensions (the uniqueness key).
    dimensions_key: Mapped[str] = mapped_column(Text)
    dimensions: Mapped[list[Any]]
    last_put_ms: Mapped[int] = mapped_column(BigInteger)


class MetricPoint(Base):
    """One datum, kept as its statistic set (a single value has count 1)."""

    __tablename__ = "metric_points"
    __table_args__ = (Index("ix_metric_points_series_time", "series_id", "timestamp_ms"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("metric_series.id", ondelete="CASCADE"))
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)
    sample_count: Mapped[float] = mapped_column(Float)
    sum: Mapped[float] = mapped_column(Float)
    minimum: Mapped[float] = mapped_column(Float)
    maximum: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(32))


class Alarm(Base):
    __tablename__ = "metric_alarms"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(12), index=True)
    region: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255))
    #: The PutMetricAlarm request as given (metric, statistic, period, threshold, ...).
    definition: Mapped[dict[str, Any]]
    actions_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    state: Mapped[str] = mapped_column(String(32))
    state_reason: Mapped[str] = mapped_column(Text)
    state_reason_data: Mapped[str | None] = mapped_column(Text)
    state_updated: Mapped[datetime]
    configuration_updated: Mapped[datetime]


class AlarmHistory(Base):
    __tablename__ = "metric_alarm_history"
    __table_args__ = (Index("ix_metric_alarm_history_account_time", "account_id", "timestamp"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(12))
    alarm_name: Mapped[str] = mapped_column(String(255))
    timestamp: Mapped[datetime]
    item_type: Mapped[str] = mapped_column(String(32))  # StateUpdate, Action, ...
    summary: Mapped[str] = mapped_column(Text)
    data: Mapped[str] = mapped_column(Text)
