"""Alarms: the guide's two rules evaluated at chosen times, history, delivery outcomes."""

from __future__ import annotations

from datetime import timedelta

from obs_support import ACCOUNT, SmtpSink, WebhookSink, World

from panoptes.cloud.services import alarms
from panoptes.cloud.services.metrics import (
    APPLICATION_ERRORS,
    DEVICE_ACTIVE,
    DEVICE_NAMESPACE,
    put_device_metric,
)
from panoptes.cloud.services.notifications import Notifier, SmtpSettings

APP = {"ApplicationInstanceName": "my-app", "ApplicationInstanceId": "applicationInstance-x"}
DEVICE = {"DeviceId": "device-x", "DeviceName": "lobby"}


def dims(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"Name": k, "Value": v} for k, v in values.items()]


def errors_alarm(world: World, actions: list[str], **extra) -> None:
    """The guide's example: ApplicationErrors summing to 1 within 20 minutes."""
    world.cw(
        "PutMetricAlarm", AlarmName="app-failing", Namespace=DEVICE_NAMESPACE,
        MetricName=APPLICATION_ERRORS, Dimensions=dims(APP), Statistic="Sum", Period=1200,
        EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold",
        AlarmActions=actions, OKActions=actions, **extra,
    )  # fmt: skip


def state(world: World, name: str) -> str:
    return world.cw("DescribeAlarms", AlarmNames=[name])["MetricAlarms"][0]["StateValue"]


def errors(world: World, value: float, seconds: float) -> None:
    """What the bridge does on an instance health report (errors seen in it)."""
    moment = world.now + timedelta(seconds=seconds)
    put_device_metric(world.env, ACCOUNT, APPLICATION_ERRORS, APP, value, "Count", moment)


def test_application_errors_fire_at_once_and_resolve_when_healthy(world: World) -> None:
    errors_alarm(world, ["https://hooks.example.com/x"])
    assert state(world, "app-failing") == "INSUFFICIENT_DATA"
    errors(world, 0, -30)
    assert [n.message["NewStateValue"] for n in alarms.evaluate_all(world.env, world.now)] == ["OK"]

    errors(world, 1, 5)  # the app crashed
    (fired,) = alarms.evaluate_all(world.env, world.now + timedelta(seconds=6))
    assert fired.targets == ("https://hooks.example.com/x",)
    message = fired.message
    assert (message["OldStateValue"], message["NewStateValue"]) == ("OK", "ALARM")
    assert message["Trigger"]["Dimensions"] == [
        {"name": "ApplicationInstanceName", "value": "my-app"},
        {"name": "ApplicationInstanceId", "value": "applicationInstance-x"},
    ]
    assert "greater than or equal to the threshold (1)" in message["NewStateReason"]
    # Still failing: no second notification.
    errors(world, 2, 60)
    assert alarms.evaluate_all(world.env, world.now + timedelta(seconds=61)) == []

    # Healthy reports (0 errors) for a whole period: back to OK.
    for second in range(120, 1400, 60):
        errors(world, 0, second)
    (resolved,) = alarms.evaluate_all(world.env, world.now + timedelta(seconds=1300))
    assert resolved.message["NewStateValue"] == "OK"

    history = world.cw("DescribeAlarmHistory", AlarmName="app-failing")["AlarmHistoryItems"]
    assert [h["HistorySummary"] for h in history if h["HistoryItemType"] == "StateUpdate"] == [
        "Alarm updated from ALARM to OK",
        "Alarm updated from OK to ALARM",
        "Alarm updated from INSUFFICIENT_DATA to OK",
    ]


def test_a_silent_device_alarms_when_missing_data_breaches(world: World) -> None:
    world.cw(
        "PutMetricAlarm", AlarmName="device-silent", Namespace=DEVICE_NAMESPACE,
        MetricName=DEVICE_ACTIVE, Dimensions=dims(DEVICE), Statistic="SampleCount", Period=300,
        EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="LessThanThreshold",
        TreatMissingData="breaching", AlarmActions=["mailto:ops@example.com"],
    )  # fmt: skip
    for second in (-60, -50, -40):
        moment = world.now + timedelta(seconds=second)
        put_device_metric(world.env, ACCOUNT, DEVICE_ACTIVE, DEVICE, 1, "Count", moment)
    assert alarms.evaluate_all(world.env, world.now) == []  # OK has no actions here
    assert state(world, "device-silent") == "OK"
    (silent,) = alarms.evaluate_all(world.env, world.now + timedelta(seconds=300))
    assert silent.message["NewStateValue"] == "ALARM"
    assert silent.targets == ("mailto:ops@example.com",)
    assert "missing" in silent.message["NewStateReason"]


def test_actions_disabled_set_state_and_bad_rules(world: World) -> None:
    errors_alarm(world, ["https://hooks.example.com/x"], ActionsEnabled=False)
    errors(world, 3, 0)
    assert alarms.evaluate_all(world.env, world.now + timedelta(seconds=1)) == []
    assert state(world, "app-failing") == "ALARM"  # the state changes, nobody is told

    world.cw("SetAlarmState", AlarmName="app-failing", StateValue="OK", StateReason="testing")
    assert state(world, "app-failing") == "OK"
    world.fails("ResourceNotFound", world.cw, "SetAlarmState", AlarmName="nope",
                StateValue="OK", StateReason="x")  # fmt: skip
    world.fails("ResourceNotFound", world.cw, "DeleteAlarms", AlarmNames=["app-failing", "nope"])
    assert state(world, "app-failing") == "OK"  # nothing deleted on a partial miss
    world.cw("DeleteAlarms", AlarmNames=["app-failing"])
    assert world.cw("DescribeAlarms")["MetricAlarms"] == []

    base = {
        "AlarmName": "bad", "Namespace": "N", "MetricName": "M", "Statistic": "Sum",
        "EvaluationPeriods": 1, "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanThreshold",
    }  # fmt: skip
    err = world.fails("InvalidParameterValueException", world.cw, "PutMetricAlarm",
                      **base, Period=45)  # fmt: skip
    assert "multiple of 60" in err.message
    err = world.fails("InvalidParameterValueException", world.cw, "PutMetricAlarm",
                      **{**base, "EvaluationPeriods": 48}, Period=3600)  # fmt: skip
    assert "one day" in err.message
    err = world.fails("InvalidParameterValueException", world.cw, "PutMetricAlarm",
                      **{**base, "Statistic": "p99"}, Period=60)  # fmt: skip
    assert "Statistic" in err.message


def test_deliveries_reach_a_webhook_and_an_smtp_server_and_are_recorded(
    world: World, webhook: WebhookSink, smtp_sink: SmtpSink
) -> None:
    errors_alarm(world, [webhook.url, "mailto:ops@example.com", "arn:aws:sns:us-east-1:1:t"])
    errors(world, 1, 0)
    notifier = Notifier(SmtpSettings.from_url(smtp_sink.url))
    when = world.now + timedelta(seconds=1)
    alarms.deliver(world.env, notifier, alarms.evaluate_all(world.env, when), when)

    (posted,) = webhook.wait_for(1)
    assert posted["path"] == "/hooks/secret-token"
    assert (posted["AlarmName"], posted["NewStateValue"]) == ("app-failing", "ALARM")
    (mail,) = smtp_sink.wait_for(1)
    assert mail["Subject"] == 'ALARM: "app-failing" in us-east-1'
    assert mail["To"] == "ops@example.com" and mail["From"] == "alarms@panoptes.test"
    assert "ApplicationInstanceId=applicationInstance-x" in mail.get_payload(decode=True).decode()

    actions = [
        h["HistorySummary"]
        for h in world.cw(
            "DescribeAlarmHistory", AlarmName="app-failing", HistoryItemType="Action"
        )["AlarmHistoryItems"]
    ]
    host = webhook.url.split("/hooks")[0]
    assert sorted(actions) == sorted([
        f"Successfully executed action {host}/...",  # the token in the path is not shown
        "Successfully executed action mailto:ops@example.com",
        "Failed to execute action arn:aws:sns:us-east-1:1:t",
    ])  # fmt: skip
    config = world.cw("DescribeAlarmHistory", AlarmName="app-failing",
                      HistoryItemType="ConfigurationUpdate")["AlarmHistoryItems"]  # fmt: skip
    assert "cannot deliver to arn:aws:sns" in config[0]["HistorySummary"]


def test_mail_without_smtp_settings_says_what_to_configure(world: World) -> None:
    errors_alarm(world, ["mailto:ops@example.com"])
    errors(world, 1, 0)
    when = world.now + timedelta(seconds=1)
    alarms.deliver(world.env, Notifier(None), alarms.evaluate_all(world.env, when), when)
    (item,) = world.cw("DescribeAlarmHistory", AlarmName="app-failing", HistoryItemType="Action")[
        "AlarmHistoryItems"
    ]
    assert "no SMTP server configured (--smtp)" in item["HistoryData"]
