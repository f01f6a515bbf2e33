"""`panoptes alarms`: threshold rules on metrics that notify a webhook or an e-mail.

A thin client of the CloudWatch API (PutMetricAlarm, DescribeAlarms,
DescribeAlarmHistory, DeleteAlarms): alarms made here and by boto3 scripts are the
same alarms. Notifications go to --webhook URLs and --email addresses (SMTP as
configured with `panoptes serve --smtp`).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from botocore.exceptions import BotoCoreError, ClientError

from panoptes.cli.cloudwatch_clients import DataDir, api_error, client, fail

alarms_cli = typer.Typer(
    name="alarms",
    help="Alarms on metrics (CloudWatch API), with webhook and e-mail notifications.",
    no_args_is_help=True,
)

COMPARISONS = {
    ">=": "GreaterThanOrEqualToThreshold",
    ">": "GreaterThanThreshold",
    "<": "LessThanThreshold",
    "<=": "LessThanOrEqualToThreshold",
}


def parse_dimensions(values: list[str]) -> list[dict[str, str]]:
    out = []
    for value in values:
        name, sep, dim_value = value.partition("=")
        if not sep or not name:
            raise fail(
                f"--dimension {value!r} is not NAME=VALUE", "e.g. --dimension DeviceId=device-abc"
            )
        out.append({"Name": name, "Value": dim_value})
    return out


@alarms_cli.command("create")
def create(
    name: str = typer.Argument(..., help="Alarm name (unique in the account)."),
    metric: str = typer.Option(..., "--metric", help="Metric name, e.g. ApplicationErrors."),
    namespace: str = typer.Option("PanoramaDeviceMetrics", "--namespace"),
    dimension: list[str] = typer.Option([], "--dimension", help="NAME=VALUE, repeatable."),
    statistic: str = typer.Option(
        "Sum", "--statistic", help="Sum, Average, Minimum, Maximum, SampleCount."
    ),
    period: int = typer.Option(
        300, "--period", help="Seconds per evaluated period (10, 30, n*60)."
    ),
    periods: int = typer.Option(1, "--evaluation-periods", help="How many periods are looked at."),
    threshold: float = typer.Option(..., "--threshold"),
    comparison: str = typer.Option(">=", "--comparison", help=">=, >, < or <= (or the API names)."),
    missing: str = typer.Option(
        "missing", "--missing-data", help="missing, breaching, notBreaching or ignore."
    ),
    webhook: list[str] = typer.Option([], "--webhook", help="URL to POST to, repeatable."),
    email: list[str] = typer.Option([], "--email", help="Address to mail, repeatable."),
    notify_ok: bool = typer.Option(
        True, "--notify-ok/--no-notify-ok", help="Also announce recovery."
    ),
    description: str = typer.Option(None, "--description"),
    data_dir: Path = DataDir,
) -> None:
    """Create (or replace) an alarm.

    Examples (the guide's two):

        panoptes alarms create app-failing --metric ApplicationErrors --dimension ApplicationInstanceId=applicationInstance-x --dimension ApplicationInstanceName=my-app --statistic Sum --period 1200 --threshold 1 --email ops@example.com

        panoptes alarms create device-silent --metric DeviceActive --dimension DeviceId=device-x --dimension DeviceName=lobby --statistic SampleCount --period 300 --threshold 1 --comparison "<" --missing-data breaching --webhook https://hooks.example.com/panoptes
    """  # noqa: E501
    operator = COMPARISONS.get(comparison, comparison)
    if operator not in COMPARISONS.values():
        raise fail(f"--comparison {comparison!r}", "use >=, >, < or <=")
    targets = [*webhook, *(f"mailto:{address}" for address in email)]
    if not targets:
        raise fail("the alarm would tell no one", "add --webhook URL and/or --email ADDRESS")
    params = {
        "AlarmName": name,
        "MetricName": metric,
        "Namespace": namespace,
        "Dimensions": parse_dimensions(dimension),
        "Statistic": statistic,
        "Period": period,
        "EvaluationPeriods": periods,
        "Threshold": threshold,
        "ComparisonOperator": operator,
        "TreatMissingData": missing,
        "AlarmActions": targets,
        "OKActions": targets if notify_ok else [],
    }
    if description:
        params["AlarmDescription"] = description
    try:
        client("cloudwatch", data_dir).put_metric_alarm(**params)
    except (ClientError, BotoCoreError) as exc:
        raise api_error(exc, f"creating alarm {name}") from None
    typer.echo(f"alarm {name}: {statistic} of {namespace}/{metric} {comparison} {threshold:g}")


@alarms_cli.command("list")
def list_alarms(data_dir: Path = DataDir) -> None:
    """Every alarm with its state."""
    try:
        pages = client("cloudwatch", data_dir).get_paginator("describe_alarms").paginate()
        alarms = [a for page in pages for a in page["MetricAlarms"]]
    except (ClientError, BotoCoreError) as exc:
        raise api_error(exc, "listing alarms") from None
    for alarm in alarms:
        typer.echo(
            f"{alarm['StateValue']:<17} {alarm['AlarmName']}  "
            f"{alarm['Statistic']}({alarm['MetricName']}) {alarm['ComparisonOperator']} "
            f"{alarm['Threshold']:g}  {alarm['StateReason']}"
        )


@alarms_cli.command("history")
def history(
    name: str = typer.Argument(..., help="Alarm name."),
    as_json: bool = typer.Option(False, "--json", help="Print the items as JSON."),
    data_dir: Path = DataDir,
) -> None:
    """State changes, notifications sent (or failed) and edits, newest first."""
    try:
        items = client("cloudwatch", data_dir).describe_alarm_history(AlarmName=name)[
            "AlarmHistoryItems"
        ]
    except (ClientError, BotoCoreError) as exc:
        raise api_error(exc, f"reading the history of {name}") from None
    if as_json:
        typer.echo(json.dumps(items, default=str, indent=2))
        return
    for item in items:
        when, kind = item["Timestamp"].isoformat(), item["HistoryItemType"]
        typer.echo(f"{when} {kind:<19} {item['HistorySummary']}")


@alarms_cli.command("delete")
def delete(name: str = typer.Argument(...), data_dir: Path = DataDir) -> None:
    """Delete an alarm."""
    try:
        client("cloudwatch", data_dir).delete_alarms(AlarmNames=[name])
    except (ClientError, BotoCoreError) as exc:
        raise api_error(exc, f"deleting alarm {name}") from None
    typer.echo(f"deleted alarm {name}")
