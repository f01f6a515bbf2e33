"""Metric alarms: CloudWatch's PutMetricAlarm/DescribeAlarms/... and their evaluation.

A rule is a statistic of one metric over ``Period`` seconds, compared with a
threshold over the last ``EvaluationPeriods`` periods; ``DatapointsToAlarm`` of them
must breach. Windows end at the evaluation time (not at period boundaries), so an
alarm fires at the first evaluation after its data breaches: within its period.
Periods without data count as ``TreatMissingData`` says (missing, breaching,
notBreaching, ignore): "no DeviceActive for 5 minutes" is SampleCount < 1 with
missing data breaching.

Every state change is written to the history (StateUpdate) and, when actions are
enabled, sent to the new state's actions (AlarmActions, OKActions,
InsufficientDataActions) by the upkeep thread after the change is committed; each
delivery is recorded (Action) with its outcome.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from panoptes.cloud.db.observability_models import Alarm, AlarmHistory, MetricPoint
from panoptes.cloud.errors import ServiceError
from panoptes.cloud.services.common import Call, make_token, resume_key
from panoptes.cloud.services.metrics import STATISTICS, Stats, find_series, ms
from panoptes.cloud.services.notifications import Notifier, is_deliverable, redacted

if TYPE_CHECKING:
    from panoptes.cloud.services.backend import Services

log = logging.getLogger(__name__)

OK, ALARM, INSUFFICIENT = "OK", "ALARM", "INSUFFICIENT_DATA"
STATES = (OK, ALARM, INSUFFICIENT)
COMPARISONS = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
MISSING_MODES = ("missing", "breaching", "notBreaching", "ignore")
ACTIONS_BY_STATE = {ALARM: "AlarmActions", OK: "OKActions", INSUFFICIENT: "InsufficientDataActions"}
#: CloudWatch: Period x EvaluationPeriods may span at most one day.
MAX_SPAN = 86_400
_DEFINITION_KEYS = (
    "AlarmDescription",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "Dimensions",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
)


def invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterValueException", message)


def alarm_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"


def _history(
    session: Session, alarm: Alarm, when: datetime, kind: str, summary: str, data: dict
) -> None:
    session.add(
        AlarmHistory(
            account_id=alarm.account_id,
            alarm_name=alarm.name,
            timestamp=when,
            item_type=kind,
            summary=summary,
            data=json.dumps(data, default=str),
        )
    )


# --- the API ------------------------------------------------------------------------------


def _validate(params: dict[str, Any]) -> dict[str, Any]:
    if params.get("Metrics") or params.get("ThresholdMetricId"):
        raise invalid("Metric math alarms (Metrics) are not supported by Panoptes; give MetricName")
    if params.get("ExtendedStatistic"):
        raise invalid("ExtendedStatistic (percentiles) is not supported; use Statistic")
    for key in ("MetricName", "Namespace", "Statistic", "Period", "Threshold"):
        if params.get(key) is None:
            raise ServiceError("MissingRequiredParameterException", f"{key} must be given")
    if params["Statistic"] not in STATISTICS:
        raise invalid(f"Statistic {params['Statistic']!r}: use one of {', '.join(STATISTICS)}")
    period, periods = params["Period"], params["EvaluationPeriods"]
    if period not in (10, 30) and period % 60:
        raise invalid(f"Period {period}: use 10, 30 or a multiple of 60 seconds")
    if period * periods > MAX_SPAN:
        raise invalid("Period x EvaluationPeriods must not exceed one day (86400 seconds)")
    to_alarm = params.get("DatapointsToAlarm") or periods
    if not 1 <= to_alarm <= periods:
        raise invalid("DatapointsToAlarm must be between 1 and EvaluationPeriods")
    if params["ComparisonOperator"] not in COMPARISONS:
        raise invalid(
            f"ComparisonOperator {params['ComparisonOperator']!r}: use one of "
            + ", ".join(COMPARISONS)
        )
    missing = params.get("TreatMissingData") or "missing"
    if missing not in MISSING_MODES:
        raise invalid(f"TreatMissingData {missing!r}: use one of {', '.join(MISSING_MODES)}")
    definition = {k: params[k] for k in _DEFINITION_KEYS if params.get(k) is not None}
    definition.update(DatapointsToAlarm=to_alarm, TreatMissingData=missing)
    definition.setdefault("Dimensions", [])
    for key in ("OKActions", "AlarmActions", "InsufficientDataActions"):
        definition.setdefault(key, [])
    return definition


def put_metric_alarm(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    definition = _validate(params)
    name = params["AlarmName"]
    alarm = _find(call.session, call.account, name)
    now = call.now
    created = alarm is None
    if alarm is None:
        alarm = Alarm(
            account_id=call.account,
            region=call.ctx.region,
            name=name,
            state=INSUFFICIENT,
            state_reason="Unchecked: Initial alarm creation",
            state_updated=now,
        )
        call.session.add(alarm)
    alarm.definition = definition
    alarm.actions_enabled = params.get("ActionsEnabled", True)
    alarm.configuration_updated = now
    call.session.flush()
    verb = "created" if created else "updated"
    undeliverable = [
        redacted(t)
        for key in ACTIONS_BY_STATE.values()
        for t in definition[key]
        if not is_deliverable(t)
    ]
    summary = f'Alarm "{name}" {verb}'
    if undeliverable:
        summary += f" (cannot deliver to {', '.join(undeliverable)}: use https:// or mailto:)"
    _history(call.session, alarm, now, "ConfigurationUpdate", summary, {"type": verb})
    return {}


def _find(session: Session, account: str, name: str) -> Alarm | None:
    return session.scalars(
        select(Alarm).where(Alarm.account_id == account, Alarm.name == name)
    ).first()


def _render(alarm: Alarm) -> dict[str, Any]:
    d = alarm.definition
    out: dict[str, Any] = {
        "AlarmName": alarm.name,
        "AlarmArn": alarm_arn(alarm.region, alarm.account_id, alarm.name),
        "AlarmConfigurationUpdatedTimestamp": alarm.configuration_updated,
        "ActionsEnabled": alarm.actions_enabled,
        "StateValue": alarm.state,
        "StateReason": alarm.state_reason,
        "StateUpdatedTimestamp": alarm.state_updated,
        "StateTransitionedTimestamp": alarm.state_updated,
    }
    if alarm.state_reason_data:
        out["StateReasonData"] = alarm.state_reason_data
    out.update({k: d[k] for k in _DEFINITION_KEYS if k in d})
    return out


def describe_alarms(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    types = params.get("AlarmTypes") or ["MetricAlarm"]
    scope = f"DescribeAlarms/{params.get('AlarmNamePrefix')}/{params.get('StateValue')}"
    query = select(Alarm).where(Alarm.account_id == call.account)
    if names := params.get("AlarmNames"):
        query = query.where(Alarm.name.in_(names))
    if prefix := params.get("AlarmNamePrefix"):
        query = query.where(Alarm.name.startswith(prefix, autoescape=True))
    if state := params.get("StateValue"):
        query = query.where(Alarm.state == state)
    last = resume_key({"NextToken": params.get("NextToken")}, scope)
    if last is not None:
        query = query.where(Alarm.name > last[0])
    limit = params.get("MaxRecords") or 50
    rows = list(call.session.scalars(query.order_by(Alarm.name).limit(limit + 1)))
    action_prefix = params.get("ActionPrefix")
    if action_prefix:
        rows = [
            a
            for a in rows
            if any(
                t.startswith(action_prefix)
                for key in ACTIONS_BY_STATE.values()
                for t in a.definition.get(key, [])
            )
        ]
    out: dict[str, Any] = {
        "MetricAlarms": [_render(a) for a in rows[:limit]] if "MetricAlarm" in types else [],
        "CompositeAlarms": [],
    }
    if len(rows) > limit:
        out["NextToken"] = make_token([rows[limit - 1].name], scope)
    return out


def describe_alarm_history(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    query = select(AlarmHistory).where(AlarmHistory.account_id == call.account)
    if name := params.get("AlarmName"):
        query = query.where(AlarmHistory.alarm_name == name)
    if kind := params.get("HistoryItemType"):
        query = query.where(AlarmHistory.item_type == kind)
    if start := params.get("StartDate"):
        query = query.where(AlarmHistory.timestamp >= start)
    if end := params.get("EndDate"):
        query = query.where(AlarmHistory.timestamp <= end)
    newest_first = params.get("ScanBy", "TimestampDescending") == "TimestampDescending"
    scope = f"DescribeAlarmHistory/{name}/{kind}/{newest_first}"
    last = resume_key({"NextToken": params.get("NextToken")}, scope)
    if last is not None:
        bound = int(last[0])
        query = query.where(AlarmHistory.id < bound if newest_first else AlarmHistory.id > bound)
    order = AlarmHistory.id.desc() if newest_first else AlarmHistory.id.asc()
    limit = params.get("MaxRecords") or 100
    rows = list(call.session.scalars(query.order_by(order).limit(limit + 1)))
    out: dict[str, Any] = {
        "AlarmHistoryItems": [
            {
                "AlarmName": h.alarm_name,
                "AlarmType": "MetricAlarm",
                "Timestamp": h.timestamp,
                "HistoryItemType": h.item_type,
                "HistorySummary": h.summary,
                "HistoryData": h.data,
            }
            for h in rows[:limit]
        ]
    }
    if len(rows) > limit:
        out["NextToken"] = make_token([str(rows[limit - 1].id)], scope)
    return out


def delete_alarms(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    names = params["AlarmNames"]
    known = set(
        call.session.scalars(
            select(Alarm.name).where(Alarm.account_id == call.account, Alarm.name.in_(names))
        )
    )
    if missing := [n for n in names if n not in known]:
        raise ServiceError("ResourceNotFound", f"No alarm named {', '.join(missing)}")
    call.session.execute(
        delete(Alarm).where(Alarm.account_id == call.account, Alarm.name.in_(names))
    )
    return {}


def _set_actions(call: Call, params: dict[str, Any], enabled: bool) -> dict[str, Any]:
    for alarm in call.session.scalars(
        select(Alarm).where(Alarm.account_id == call.account, Alarm.name.in_(params["AlarmNames"]))
    ):
        alarm.actions_enabled = enabled
    return {}


def set_alarm_state(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    alarm = _find(call.session, call.account, params["AlarmName"])
    if alarm is None:
        raise ServiceError("ResourceNotFound", f"No alarm named {params['AlarmName']}")
    if params["StateValue"] not in STATES:
        raise invalid(f"StateValue: use one of {', '.join(STATES)}")
    if params.get("StateReasonData"):
        try:
            json.loads(params["StateReasonData"])
        except ValueError:
            raise ServiceError("InvalidFormatFault", "StateReasonData must be JSON") from None
    _transition(
        call.session,
        alarm,
        params["StateValue"],
        params["StateReason"],
        call.now,
        params.get("StateReasonData"),
    )
    return {}


OPERATIONS = {
    "DeleteAlarms": delete_alarms,
    "DescribeAlarmHistory": describe_alarm_history,
    "DescribeAlarms": describe_alarms,
    "DisableAlarmActions": lambda call, params: _set_actions(call, params, False),
    "EnableAlarmActions": lambda call, params: _set_actions(call, params, True),
    "PutMetricAlarm": put_metric_alarm,
    "SetAlarmState": set_alarm_state,
}


# --- evaluation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Notification:
    """A state change to announce, and where: sent after its transaction commits."""

    account_id: str
    alarm_name: str
    targets: tuple[str, ...]
    message: dict[str, Any]


def _transition(
    session: Session,
    alarm: Alarm,
    state: str,
    reason: str,
    now: datetime,
    reason_data: str | None = None,
) -> Notification | None:
    old = alarm.state
    if old == state:
        return None
    alarm.state, alarm.state_reason, alarm.state_updated = state, reason, now
    alarm.state_reason_data = reason_data
    _history(
        session,
        alarm,
        now,
        "StateUpdate",
        f"Alarm updated from {old} to {state}",
        {"oldState": {"stateValue": old}, "newState": {"stateValue": state, "stateReason": reason}},
    )
    d = alarm.definition
    targets = tuple(d.get(ACTIONS_BY_STATE[state], []))
    if not alarm.actions_enabled or not targets:
        return None
    message = {
        "AlarmName": alarm.name,
        "AlarmDescription": d.get("AlarmDescription"),
        "AWSAccountId": alarm.account_id,
        "AlarmArn": alarm_arn(alarm.region, alarm.account_id, alarm.name),
        "NewStateValue": state,
        "OldStateValue": old,
        "NewStateReason": reason,
        "StateChangeTime": now.astimezone(UTC).isoformat(timespec="milliseconds"),
        "Region": alarm.region,
        "Trigger": {
            "MetricName": d["MetricName"],
            "Namespace": d["Namespace"],
            "Statistic": d["Statistic"].upper(),
            "Dimensions": [{"name": x["Name"], "value": x["Value"]} for x in d["Dimensions"]],
            "Period": d["Period"],
            "EvaluationPeriods": d["EvaluationPeriods"],
            "DatapointsToAlarm": d["DatapointsToAlarm"],
            "ComparisonOperator": d["ComparisonOperator"],
            "Threshold": d["Threshold"],
            "TreatMissingData": d["TreatMissingData"],
        },
    }
    return Notification(alarm.account_id, alarm.name, targets, message)


def evaluate(session: Session, alarm: Alarm, now: datetime) -> Notification | None:
    """Decide the alarm's state at ``now``; returns what to announce if it changed."""
    d = alarm.definition
    period, periods = d["Period"], d["EvaluationPeriods"]
    series = find_series(
        session, alarm.account_id, d["Namespace"], d["MetricName"], d["Dimensions"]
    )
    # Windows of one period ending at now, now - period, ...: a rolling evaluation.
    values: list[float | None] = []
    stats_by_window = _rolling_windows(session, series, now, period, periods, d.get("Unit"))
    compare = COMPARISONS[d["ComparisonOperator"]]
    breaching = missing = 0
    for stats in stats_by_window:
        if stats is None:
            values.append(None)
            missing += 1
            continue
        value = stats.value(d["Statistic"])
        values.append(value)
        if compare(value, d["Threshold"]):
            breaching += 1
    mode = d["TreatMissingData"]
    if mode == "breaching":
        breaching += missing
    needed = d["DatapointsToAlarm"]
    shown = ", ".join("missing" if v is None else f"{v:g}" for v in values)
    if breaching >= needed:
        state = ALARM
        reason = (
            f"Threshold Crossed: {breaching} out of the last {periods} datapoints [{shown}] "
            f"were {_phrase(d['ComparisonOperator'])} the threshold ({d['Threshold']:g})"
        )
    elif missing == periods and mode == "missing":
        state = INSUFFICIENT
        reason = f"Insufficient Data: {periods} datapoints were unknown"
    elif missing == periods and mode == "ignore":
        return None
    else:
        state = OK
        reason = (
            f"Threshold Crossed: {periods - breaching} out of the last {periods} datapoints "
            f"[{shown}] were not {_phrase(d['ComparisonOperator'])} the threshold "
            f"({d['Threshold']:g})"
        )
    data = json.dumps({"version": "1.0", "queryDate": now.isoformat(), "recentDatapoints": values})
    return _transition(session, alarm, state, reason, now, data)


def _rolling_windows(
    session: Session, series: int | None, now: datetime, period: int, periods: int, unit: str | None
) -> list[Any]:
    """Stats of each window (now - (i+1)*period, now - i*period], oldest first."""
    windows: list[Any] = [None] * periods
    if series is None:
        return windows
    end_ms = ms(now)
    start_ms = end_ms - period * periods * 1000
    query = select(
        MetricPoint.timestamp_ms,
        MetricPoint.sample_count,
        MetricPoint.sum,
        MetricPoint.minimum,
        MetricPoint.maximum,
    ).where(
        MetricPoint.series_id == series,
        MetricPoint.timestamp_ms > start_ms,
        MetricPoint.timestamp_ms <= end_ms,
    )
    if unit:
        query = query.where(MetricPoint.unit == unit)
    for ts, count, total, low, high in session.execute(query):
        index = periods - 1 - (end_ms - ts) // (period * 1000)
        index = max(0, min(periods - 1, index))
        stats = Stats(count, total, low, high)
        windows[index] = stats if windows[index] is None else windows[index].merge(stats)
    return windows


def _phrase(operator: str) -> str:
    return {
        "GreaterThanOrEqualToThreshold": "greater than or equal to",
        "GreaterThanThreshold": "greater than",
        "LessThanThreshold": "less than",
        "LessThanOrEqualToThreshold": "less than or equal to",
    }[operator]


def evaluate_all(env: Services, now: datetime | None = None) -> list[Notification]:
    """Evaluate every alarm of every account; returns the notifications to send."""
    now = now or datetime.now(UTC)
    out = []
    with env.db.transaction() as session:
        for alarm in session.scalars(select(Alarm).order_by(Alarm.id)):
            notification = evaluate(session, alarm, now)
            if notification is not None:
                out.append(notification)
    return out


def deliver(
    env: Services,
    notifier: Notifier,
    notifications: list[Notification],
    now: datetime | None = None,
) -> None:
    """Send each notification to its targets; record every outcome in the history."""
    for notification in notifications:
        outcomes = [notifier.deliver(t, notification.message) for t in notification.targets]
        for outcome in outcomes:
            if not outcome.ok:
                log.warning("alarm %s: %s", notification.alarm_name, outcome.detail)
        with env.db.transaction() as session:
            alarm = _find(session, notification.account_id, notification.alarm_name)
            if alarm is None:
                continue
            for outcome in outcomes:
                verb = "Successfully executed action" if outcome.ok else "Failed to execute action"
                _history(
                    session,
                    alarm,
                    now or datetime.now(UTC),
                    "Action",
                    f"{verb} {outcome.target}",
                    {
                        "actionState": "Succeeded" if outcome.ok else "Failed",
                        "detail": outcome.detail,
                    },
                )
