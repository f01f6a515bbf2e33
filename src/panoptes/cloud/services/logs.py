"""The log store: CloudWatch Logs' groups, streams and events, per account, in SQL.

Fed two ways: device agents ship link LogBatches (``ingest_batch``, called by the
MQTT bridge) into ``/aws/panorama/devices/ID[/applications/INSTANCE]``, and clients
call PutLogEvents. Read with the CloudWatch Logs subset (DescribeLogGroups,
DescribeLogStreams, GetLogEvents, FilterLogEvents), so the guide's view-logs.sh and
``aws logs`` work unchanged. Retention (PutRetentionPolicy) and a size cap per group
are applied by ``enforce_log_limits``, run periodically by the upkeep thread.
"""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from panoptes.cloud.db.models import ApplicationInstance, Device
from panoptes.cloud.db.observability_models import LogBatchSeen, LogEvent, LogGroup, LogStream
from panoptes.cloud.errors import ServiceError
from panoptes.cloud.services.common import Call, make_token, resume_key
from panoptes.link import device_log_group, instance_log_group

if TYPE_CHECKING:
    from panoptes.cloud.services.backend import Services

log = logging.getLogger(__name__)

#: CloudWatch Logs counts each event as its UTF-8 message plus 26 bytes.
EVENT_OVERHEAD = 26
MAX_BATCH_BYTES = 1_048_576
#: Retention values PutRetentionPolicy accepts (CloudWatch Logs' list).
RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192}
    | {2557, 2922, 3288, 3653}
)
DAY_MS = 86_400_000
#: Newest accepted event (CloudWatch: 2 hours in the future) and oldest (14 days).
TOO_NEW_MS = 2 * 3_600_000
TOO_OLD_MS = 14 * DAY_MS
#: FilterLogEvents scans at most this many events per call, then hands a token back.
FILTER_SCAN_ROWS = 100_000


@dataclass(frozen=True)
class LogLimits:
    """What the upkeep enforces on every group."""

    #: Oldest events are deleted past this size (CloudWatch has no cap; a box has a disk).
    max_group_bytes: int = 1 << 30


class InvalidParameter(ServiceError):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidParameterException", message)


class NotFound(ServiceError):
    default_status = 400

    def __init__(self, message: str) -> None:
        super().__init__("ResourceNotFoundException", message)


class LogBatchRejected(ValueError):
    """A device's LogBatch that may not be stored (wrong group, unknown device)."""


def ms(moment: Any) -> int:
    return int(moment.timestamp() * 1000)


def event_size(message: str) -> int:
    return len(message.encode("utf-8")) + EVENT_OVERHEAD


# --- groups and streams ---------------------------------------------------------------


def _group_arn(call: Call, name: str) -> str:
    return f"arn:aws:logs:{call.ctx.region}:{call.account}:log-group:{name}"


def _group_name(params: dict[str, Any]) -> str:
    name = params.get("logGroupName") or params.get("logGroupIdentifier")
    if not name:
        raise InvalidParameter("Give logGroupName (or logGroupIdentifier)")
    # An identifier may be the group's ARN: arn:aws:logs:REGION:ACCOUNT:log-group:NAME[:*]
    if name.startswith("arn:"):
        name = name.split(":log-group:", 1)[-1].removesuffix(":*")
    return name


def find_group(session: Session, account: str, name: str) -> LogGroup | None:
    return session.scalars(
        select(LogGroup).where(LogGroup.account_id == account, LogGroup.name == name)
    ).first()


def _group(call: Call, params: dict[str, Any]) -> LogGroup:
    name = _group_name(params)
    group = find_group(call.session, call.account, name)
    if group is None:
        raise NotFound(f"The specified log group does not exist: {name}")
    return group


def _stream(session: Session, group: LogGroup, name: str) -> LogStream:
    stream = session.scalars(
        select(LogStream).where(LogStream.group_id == group.id, LogStream.name == name)
    ).first()
    if stream is None:
        raise NotFound(f"The specified log stream does not exist: {group.name} / {name}")
    return stream


def _get_or_create(session: Session, model: type, where: dict[str, Any], **new: Any) -> Any:
    """The row matching ``where``, created if absent; safe against a concurrent creator."""
    query = select(model).filter_by(**where)
    row = session.scalars(query).first()
    if row is not None:
        return row
    try:
        with session.begin_nested():
            row = model(**where, **new)
            session.add(row)
    except IntegrityError:
        row = session.scalars(query).one()
    return row


def create_log_group(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    name = params["logGroupName"]
    if find_group(call.session, call.account, name) is not None:
        raise ServiceError(
            "ResourceAlreadyExistsException", f"The specified log group already exists: {name}"
        )
    call.session.add(LogGroup(account_id=call.account, name=name, created_ms=ms(call.now)))
    return {}


def delete_log_group(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    group = _group(call, params)
    call.session.execute(delete(LogGroup).where(LogGroup.id == group.id))
    return {}


def create_log_stream(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    group = _group(call, params)
    name = params["logStreamName"]
    exists = call.session.scalars(
        select(LogStream.id).where(LogStream.group_id == group.id, LogStream.name == name)
    ).first()
    if exists is not None:
        raise ServiceError(
            "ResourceAlreadyExistsException", f"The specified log stream already exists: {name}"
        )
    call.session.add(LogStream(group_id=group.id, name=name, created_ms=ms(call.now)))
    return {}


def put_retention_policy(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    group = _group(call, params)
    days = params["retentionInDays"]
    if days not in RETENTION_DAYS:
        allowed = ", ".join(str(d) for d in sorted(RETENTION_DAYS))
        raise InvalidParameter(f"retentionInDays {days} is not one of: {allowed}")
    group.retention_days = days
    return {}


def delete_retention_policy(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    _group(call, params).retention_days = None
    return {}


def _render_group(call: Call, group: LogGroup) -> dict[str, Any]:
    arn = _group_arn(call, group.name)
    out = {
        "logGroupName": group.name,
        "creationTime": group.created_ms,
        "metricFilterCount": 0,
        "arn": arn + ":*",
        "logGroupArn": arn,
        "storedBytes": group.stored_bytes,
        "logGroupClass": "STANDARD",
    }
    if group.retention_days:
        out["retentionInDays"] = group.retention_days
    return out


def describe_log_groups(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    limit = params.get("limit") or 50
    scope = (
        f"DescribeLogGroups/{params.get('logGroupNamePrefix')}/{params.get('logGroupNamePattern')}"
    )
    query = select(LogGroup).where(LogGroup.account_id == call.account)
    if prefix := params.get("logGroupNamePrefix"):
        query = query.where(LogGroup.name.startswith(prefix, autoescape=True))
    if pattern := params.get("logGroupNamePattern"):
        query = query.where(LogGroup.name.contains(pattern, autoescape=True))
    if names := params.get("logGroupIdentifiers"):
        query = query.where(LogGroup.name.in_([_group_name({"logGroupName": n}) for n in names]))
    last = resume_key(params | {"NextToken": params.get("nextToken")}, scope)
    if last is not None:
        query = query.where(LogGroup.name > last[0])
    rows = list(call.session.scalars(query.order_by(LogGroup.name).limit(limit + 1)))
    out: dict[str, Any] = {"logGroups": [_render_group(call, g) for g in rows[:limit]]}
    if len(rows) > limit:
        out["nextToken"] = make_token([rows[limit - 1].name], scope)
    return out


def _render_stream(call: Call, group: LogGroup, stream: LogStream) -> dict[str, Any]:
    out: dict[str, Any] = {
        "logStreamName": stream.name,
        "creationTime": stream.created_ms,
        "arn": f"{_group_arn(call, group.name)}:log-stream:{stream.name}",
        "storedBytes": stream.stored_bytes,
    }
    for key, value in (
        ("firstEventTimestamp", stream.first_event_ms),
        ("lastEventTimestamp", stream.last_event_ms),
        ("lastIngestionTime", stream.last_ingestion_ms),
    ):
        if value is not None:
            out[key] = value
    return out


def describe_log_streams(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    group = _group(call, params)
    limit = params.get("limit") or 50
    by_time = params.get("orderBy") == "LastEventTime"
    prefix = params.get("logStreamNamePrefix")
    if by_time and prefix:
        raise InvalidParameter("logStreamNamePrefix cannot be given with orderBy LastEventTime")
    descending = bool(params.get("descending"))
    scope = f"DescribeLogStreams/{group.id}/{prefix}/{by_time}/{descending}"
    key_columns = (
        (func.coalesce(LogStream.last_event_ms, 0), LogStream.name)
        if by_time
        else (LogStream.name,)
    )
    query = select(LogStream).where(LogStream.group_id == group.id)
    if prefix:
        query = query.where(LogStream.name.startswith(prefix, autoescape=True))
    last = resume_key(params | {"NextToken": params.get("nextToken")}, scope)
    if last is not None:
        bound = (int(last[0]), last[1]) if by_time else (last[0],)
        key = tuple_(*key_columns)
        query = query.where(key < tuple_(*bound) if descending else key > tuple_(*bound))
    order = [c.desc() if descending else c.asc() for c in key_columns]
    rows = list(call.session.scalars(query.order_by(*order).limit(limit + 1)))
    out: dict[str, Any] = {"logStreams": [_render_stream(call, group, s) for s in rows[:limit]]}
    if len(rows) > limit:
        tail = rows[limit - 1]
        token_key = [str(tail.last_event_ms or 0), tail.name] if by_time else [tail.name]
        out["nextToken"] = make_token(token_key, scope)
    return out


# --- writing events ---------------------------------------------------------------------


_INSERT_EVENT = insert(LogEvent.__table__)


def _store_events(
    session: Session, stream: LogStream, events: Sequence[tuple[int, str]], now_ms: int
) -> int:
    """Insert (timestamp ms, message) rows; keep the stream's and group's summaries."""
    if not events:
        return 0
    # A Core executemany: the ORM's bulk path costs more than the INSERT itself here.
    session.connection().execute(
        _INSERT_EVENT,
        [
            {"stream_id": stream.id, "timestamp_ms": ts, "ingestion_ms": now_ms, "message": m}
            for ts, m in events
        ],
    )
    size = sum(event_size(m) for _, m in events)
    first, last = min(ts for ts, _ in events), max(ts for ts, _ in events)
    stream.first_event_ms = (
        first if stream.first_event_ms is None else min(first, stream.first_event_ms)
    )
    stream.last_event_ms = last if stream.last_event_ms is None else max(last, stream.last_event_ms)
    stream.last_ingestion_ms = now_ms
    stream.stored_bytes = (stream.stored_bytes or 0) + size
    session.execute(
        update(LogGroup)
        .where(LogGroup.id == stream.group_id)
        .values(stored_bytes=LogGroup.stored_bytes + size)
    )
    return len(events)


def put_log_events(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    group = _group(call, params)
    stream = _stream(call.session, group, params["logStreamName"])
    events = params["logEvents"]
    now_ms = ms(call.now)
    if sum(event_size(e["message"]) for e in events) > MAX_BATCH_BYTES:
        raise InvalidParameter(f"The batch is larger than {MAX_BATCH_BYTES} bytes")
    stamps = [e["timestamp"] for e in events]
    if stamps != sorted(stamps):
        raise InvalidParameter(
            "Log events in a single PutLogEvents request must be in chronological order"
        )
    oldest_ok = now_ms - TOO_OLD_MS
    if group.retention_days:
        oldest_ok = max(oldest_ok, now_ms - group.retention_days * DAY_MS)
    rejected: dict[str, int] = {}
    accepted = []
    for index, event in enumerate(events):
        ts = event["timestamp"]
        if ts > now_ms + TOO_NEW_MS:
            rejected.setdefault("tooNewLogEventStartIndex", index)
        elif ts < oldest_ok:
            key = (
                "tooOldLogEventEndIndex" if ts < now_ms - TOO_OLD_MS else "expiredLogEventEndIndex"
            )
            rejected[key] = index
        else:
            accepted.append((ts, event["message"]))
    _store_events(call.session, stream, accepted, now_ms)
    out: dict[str, Any] = {"nextSequenceToken": str(now_ms)}
    if rejected:
        out["rejectedLogEventsInfo"] = rejected
    return out


def ingest_batch(
    env: Services, device_id: str, batch: dict[str, Any], now: datetime | None = None
) -> int:
    """Store one link LogBatch from ``device_id``; returns how many events were stored.

    The group must be the device's own (``/aws/panorama/devices/ID``) or that of one of
    its application instances in the device's account; the group and stream are made
    on first use in that account. A batch whose (device, Sequence) was stored before
    is dropped (0): agents re-send after a reconnect. Raises LogBatchRejected for a
    batch that may not be stored.
    """
    group_name, stream_name = batch.get("Group"), batch.get("Stream")
    events, sequence = batch.get("Events"), batch.get("Sequence")
    if not isinstance(group_name, str) or not isinstance(stream_name, str) or not stream_name:
        raise LogBatchRejected("a LogBatch needs string Group and Stream")
    if len(stream_name) > 512 or ":" in stream_name or "*" in stream_name:
        raise LogBatchRejected(
            f"stream name {stream_name[:80]!r}: at most 512 characters, no : or *"
        )
    if not isinstance(events, list) or isinstance(sequence, bool) or not isinstance(sequence, int):
        raise LogBatchRejected("a LogBatch needs an Events list and an integer Sequence")
    rows = _batch_rows(events)
    dropped = batch.get("Dropped") or 0
    try:
        return _ingest(env, device_id, group_name, stream_name, rows, sequence, dropped, now)
    except IntegrityError:
        # The same batch stored meanwhile by another worker (a duplicate delivery), or
        # the group/stream created by one: a second try sees it and does the right thing.
        return _ingest(env, device_id, group_name, stream_name, rows, sequence, dropped, now)


def _ingest(
    env: Services,
    device_id: str,
    group_name: str,
    stream_name: str,
    rows: list[tuple[int, str]],
    sequence: int,
    dropped: Any,
    now: datetime | None,
) -> int:
    with env.db.transaction() as session:
        device = session.get(Device, device_id)
        if device is None:
            raise LogBatchRejected(f"device {device_id} is not registered")
        _check_group_belongs(session, device, group_name)
        if session.get(LogBatchSeen, (device_id, sequence)) is not None:
            return 0
        session.add(LogBatchSeen(device_id=device_id, sequence=sequence))
        now_ms = ms(now or datetime.now(UTC))
        group = _get_or_create(
            session,
            LogGroup,
            {"account_id": device.account_id, "name": group_name},
            created_ms=now_ms,
            device_id=device_id,
            stored_bytes=0,
        )
        stream = _get_or_create(
            session,
            LogStream,
            {"group_id": group.id, "name": stream_name},
            created_ms=now_ms,
            stored_bytes=0,
        )
        if isinstance(dropped, int) and dropped > 0:
            # Nothing is lost silently: the gap is written where the lines would be.
            gap_ts = rows[0][0] if rows else now_ms
            note = f"[panoptes] the device dropped {dropped} log events here (offline buffer full)"
            rows = [(gap_ts, note), *rows]
        stored = _store_events(session, stream, rows, now_ms)
        if sequence % 1000 == 0:
            # Sequences this far back cannot come again; keep the table small.
            session.execute(
                delete(LogBatchSeen).where(
                    LogBatchSeen.device_id == device_id, LogBatchSeen.sequence < sequence - 10_000
                )
            )
    return stored


def _batch_rows(events: Iterable[Any]) -> list[tuple[int, str]]:
    rows = []
    for event in events:
        if not isinstance(event, dict):
            raise LogBatchRejected("each LogBatch event is an object {timestamp, message}")
        ts, message = event.get("timestamp"), event.get("message")
        if isinstance(ts, bool) or not isinstance(ts, int) or not isinstance(message, str):
            raise LogBatchRejected("each LogBatch event needs an integer timestamp and a message")
        if "\x00" in message:
            # An app may print binary junk; no database here stores NUL (PostgreSQL
            # refuses the whole batch): the line is kept with U+FFFD in its place. (The
            # API refuses NUL in PutLogEvents, as in any string parameter.)
            message = message.replace("\x00", "\ufffd")
        rows.append((ts, message))
    rows.sort(key=lambda row: row[0])
    return rows


def _check_group_belongs(session: Session, device: Device, group_name: str) -> None:
    if group_name == device_log_group(device.id):
        return
    prefix = instance_log_group(device.id, "")
    instance_id = group_name.removeprefix(prefix) if group_name.startswith(prefix) else None
    if instance_id:
        instance = session.get(ApplicationInstance, instance_id)
        if (
            instance is not None
            and instance.device_id == device.id
            and instance.account_id == device.account_id
        ):
            return
    raise LogBatchRejected(
        f"device {device.id} may only write to {device_log_group(device.id)} and its own "
        f"application instances' groups, not {group_name}"
    )


# --- reading events ---------------------------------------------------------------------


_TOKEN = re.compile(r"^([fb])/(-?\d+)/(-?\d+)$")
_HEAD = (-(2**62), 0)
_TAIL = (2**62, 2**62)


def _position_token(direction: str, position: tuple[int, int]) -> str:
    return f"{direction}/{position[0]}/{position[1]}"


_STREAM_ID = (
    select(LogStream.id)
    .join(LogGroup, LogGroup.id == LogStream.group_id)
    .where(
        LogGroup.account_id == bindparam("account"),
        LogGroup.name == bindparam("group"),
        LogStream.name == bindparam("stream"),
    )
)


def _stream_id(call: Call, params: dict[str, Any]) -> int:
    """The stream's id in one query (GetLogEvents is polled: view-logs.sh, tail -f)."""
    found = (
        call.session.connection()
        .execute(
            _STREAM_ID,
            {
                "account": call.account,
                "group": _group_name(params),
                "stream": params["logStreamName"],
            },
        )
        .scalar()
    )
    if found is None:  # say which one is missing
        _stream(call.session, _group(call, params), params["logStreamName"])
    return found


def get_log_events(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    stream_id = _stream_id(call, params)
    limit = params.get("limit") or 10_000
    token = params.get("nextToken")
    if token:
        found = _TOKEN.match(token)
        if not found:
            raise InvalidParameter("nextToken is not a token GetLogEvents returned")
        direction, position = found[1], (int(found[2]), int(found[3]))
    elif params.get("startFromHead"):
        direction, position = "f", _HEAD
    else:
        direction, position = "b", _TAIL
    key = tuple_(LogEvent.timestamp_ms, LogEvent.id)
    query = select(LogEvent.timestamp_ms, LogEvent.id, LogEvent.message, LogEvent.ingestion_ms)
    query = query.where(LogEvent.stream_id == stream_id)
    if (start := params.get("startTime")) is not None:
        query = query.where(LogEvent.timestamp_ms >= start)
    if (end := params.get("endTime")) is not None:
        query = query.where(LogEvent.timestamp_ms < end)
    if direction == "f":
        query = query.where(key > tuple_(*position)).order_by(LogEvent.timestamp_ms, LogEvent.id)
    else:
        query = query.where(key < tuple_(*position)).order_by(
            LogEvent.timestamp_ms.desc(), LogEvent.id.desc()
        )
    # Core, not the ORM: plain column rows, and this is the hot read.
    rows = _within_bytes(call.session.connection().execute(query.limit(limit)).all())
    if direction == "b":
        rows.reverse()
    events = [{"timestamp": r[0], "message": r[2], "ingestionTime": r[3]} for r in rows]
    if rows:
        forward, backward = (rows[-1][0], rows[-1][1]), (rows[0][0], rows[0][1])
    else:
        # Nothing more this way: the same token again says "you are at the end".
        forward = position if direction == "f" else _HEAD
        backward = position if direction == "b" else _TAIL
    return {
        "events": events,
        "nextForwardToken": _position_token("f", forward),
        "nextBackwardToken": _position_token("b", backward),
    }


def _within_bytes(rows: Sequence[Any]) -> list[Any]:
    """A response carries at most 1 MB of events, as CloudWatch Logs' does."""
    out, size = [], 0
    for row in rows:
        size += event_size(row[2])
        if size > MAX_BATCH_BYTES and out:
            break
        out.append(row)
    return out


@dataclass(frozen=True)
class FilterPattern:
    """CloudWatch Logs' term patterns: ``ERROR``, ``"exact phrase"``, ``?A ?B``, ``-x``."""

    required: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> FilterPattern:
        text = (text or "").strip()
        if not text:
            return cls()
        if text.startswith(("{", "[")):
            raise InvalidParameter(
                "filterPattern: JSON and space-delimited patterns ({ $.x = ... }, [a, b]) are "
                'not supported by Panoptes; use terms: ERROR "exact phrase" ?either -not'
            )
        try:
            words = shlex.split(text)
        except ValueError as exc:
            raise InvalidParameter(f"filterPattern: {exc} (close the quotes)") from None
        required, any_of, excluded = [], [], []
        for word in words:
            if word.startswith("?") and len(word) > 1:
                any_of.append(word[1:])
            elif word.startswith("-") and len(word) > 1:
                excluded.append(word[1:])
            else:
                required.append(word)
        return cls(tuple(required), tuple(any_of), tuple(excluded))

    def matches(self, message: str) -> bool:
        return (
            all(t in message for t in self.required)
            and (not self.any_of or any(t in message for t in self.any_of))
            and not any(t in message for t in self.excluded)
        )


def filter_log_events(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    group = _group(call, params)
    pattern = FilterPattern.parse(params.get("filterPattern"))
    limit = params.get("limit") or 10_000
    names, prefix = params.get("logStreamNames"), params.get("logStreamNamePrefix")
    if names and prefix:
        raise InvalidParameter("Give logStreamNames or logStreamNamePrefix, not both")
    streams_query = select(LogStream.id, LogStream.name).where(LogStream.group_id == group.id)
    if names:
        streams_query = streams_query.where(LogStream.name.in_(names))
    if prefix:
        streams_query = streams_query.where(LogStream.name.startswith(prefix, autoescape=True))
    streams = dict(call.session.execute(streams_query).all())
    scope = f"FilterLogEvents/{group.id}/{sorted(streams.values())}/{params.get('filterPattern')}"
    last = resume_key(params | {"NextToken": params.get("nextToken")}, scope)
    query = select(
        LogEvent.timestamp_ms,
        LogEvent.id,
        LogEvent.message,
        LogEvent.ingestion_ms,
        LogEvent.stream_id,
    ).where(LogEvent.stream_id.in_(list(streams)))
    if (start := params.get("startTime")) is not None:
        query = query.where(LogEvent.timestamp_ms >= start)
    if (end := params.get("endTime")) is not None:
        query = query.where(LogEvent.timestamp_ms < end)
    for term in pattern.required:  # narrowed in SQL; exact (case-sensitive) check below
        query = query.where(LogEvent.message.contains(term, autoescape=True))
    if pattern.any_of:
        query = query.where(
            or_(*(LogEvent.message.contains(t, autoescape=True) for t in pattern.any_of))
        )
    position = (int(last[0]), int(last[1])) if last else _HEAD
    # A row-value bound: SQLite walks the index with it, not with `a > x OR (a = x AND ...)`.
    query = query.where(tuple_(LogEvent.timestamp_ms, LogEvent.id) > tuple_(*position)).order_by(
        LogEvent.timestamp_ms, LogEvent.id
    )
    events: list[dict[str, Any]] = []
    more = False
    rows = call.session.execute(query.limit(FILTER_SCAN_ROWS + 1))
    for scanned, row in enumerate(rows, 1):
        if scanned > FILTER_SCAN_ROWS or len(events) >= limit:
            more = True
            break
        position = (row[0], row[1])
        if pattern.matches(row[2]):
            events.append(
                {
                    "logStreamName": streams[row[4]],
                    "timestamp": row[0],
                    "message": row[2],
                    "ingestionTime": row[3],
                    "eventId": str(row[1]),
                }
            )
    out: dict[str, Any] = {
        "events": events,
        "searchedLogStreams": [
            {"logStreamName": n, "searchedCompletely": not more} for n in sorted(streams.values())
        ],
    }
    if more:
        out["nextToken"] = make_token([str(position[0]), str(position[1])], scope)
    return out


# --- limits -----------------------------------------------------------------------------


def enforce_log_limits(env: Services, now: Any, limits: LogLimits) -> int:
    """Delete events past their group's retention or size cap; returns how many."""
    now_ms = ms(now)
    removed = 0
    with env.db.transaction() as session:
        for group in session.scalars(select(LogGroup)):
            stream_ids = select(LogStream.id).where(LogStream.group_id == group.id)
            expired = 0
            if group.retention_days:
                cutoff = now_ms - group.retention_days * DAY_MS
                expired = session.execute(
                    delete(LogEvent).where(
                        LogEvent.stream_id.in_(stream_ids), LogEvent.timestamp_ms < cutoff
                    )
                ).rowcount
            trimmed = _trim_to_size(session, group, stream_ids, limits.max_group_bytes)
            removed += expired + trimmed
            if expired or trimmed:
                _recount(session, group)
    return removed


def _trim_to_size(session: Session, group: LogGroup, stream_ids: Any, cap: int) -> int:
    if group.stored_bytes <= cap:
        return 0
    excess = group.stored_bytes - cap
    removed = 0
    while excess > 0:
        rows = session.execute(
            select(LogEvent.id, LogEvent.message)
            .where(LogEvent.stream_id.in_(stream_ids))
            .order_by(LogEvent.timestamp_ms, LogEvent.id)
            .limit(5000)
        ).all()
        if not rows:
            break
        ids = []
        for event_id, message in rows:
            ids.append(event_id)
            excess -= event_size(message)
            if excess <= 0:
                break
        session.execute(delete(LogEvent).where(LogEvent.id.in_(ids)))
        removed += len(ids)
    return removed


def _recount(session: Session, group: LogGroup) -> None:
    """Stored bytes and first/last event times from what is really left."""
    total = 0
    for stream in session.scalars(select(LogStream).where(LogStream.group_id == group.id)):
        count, chars, first, last = session.execute(
            select(
                func.count(LogEvent.id),
                func.coalesce(func.sum(func.length(LogEvent.message)), 0),
                func.min(LogEvent.timestamp_ms),
                func.max(LogEvent.timestamp_ms),
            ).where(LogEvent.stream_id == stream.id)
        ).one()
        # length() counts characters; the byte count differs only for non-ASCII text.
        stream.stored_bytes = int(chars) + EVENT_OVERHEAD * int(count)
        stream.first_event_ms, stream.last_event_ms = first, last
        total += stream.stored_bytes
    group.stored_bytes = total


OPERATIONS = {
    "CreateLogGroup": create_log_group,
    "CreateLogStream": create_log_stream,
    "DeleteLogGroup": delete_log_group,
    "DeleteRetentionPolicy": delete_retention_policy,
    "DescribeLogGroups": describe_log_groups,
    "DescribeLogStreams": describe_log_streams,
    "FilterLogEvents": filter_log_events,
    "GetLogEvents": get_log_events,
    "PutLogEvents": put_log_events,
    "PutRetentionPolicy": put_retention_policy,
}
