"""`panoptes logs tail GROUP`: print (and follow) a log group, like `aws logs tail`."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from botocore.exceptions import BotoCoreError, ClientError

from panoptes.cli.cloudwatch_clients import DataDir, api_error, client, fail

logs_cli = typer.Typer(
    name="logs",
    help="Read the log groups of devices and applications (CloudWatch Logs API).",
    no_args_is_help=True,
)

_SPAN = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str) -> timedelta:
    found = _SPAN.match(text.strip())
    if not found:
        raise fail(f"--since {text!r} is not a duration", "use e.g. 30s, 10m, 2h or 1d")
    return timedelta(**{_UNITS[found[2]]: int(found[1])})


def _print(event: dict[str, Any], show_stream: bool) -> None:
    when = datetime.fromtimestamp(event["timestamp"] / 1000, UTC).isoformat(timespec="milliseconds")
    stream = f" {event['logStreamName']}" if show_stream else ""
    typer.echo(f"{when}{stream} {event['message'].rstrip()}")


def _page(logs: Any, group: str, stream: str | None, start_ms: int) -> list[dict[str, Any]]:
    """Every event from ``start_ms`` on, across pages."""
    kwargs: dict[str, Any] = {"logGroupName": group, "startTime": start_ms}
    if stream:
        kwargs["logStreamNames"] = [stream]
    events: list[dict[str, Any]] = []
    while True:
        page = logs.filter_log_events(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


@logs_cli.command("tail")
def tail(
    group: str = typer.Argument(..., help="Log group, e.g. /aws/panorama/devices/DEVICE_ID"),
    stream: str = typer.Option(None, "--stream", help="Only this stream, e.g. code_node."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new events."),
    since: str = typer.Option("10m", "--since", help="How far back to start (30s, 10m, 2h, 1d)."),
    poll: float = typer.Option(1.0, "--poll", help="Seconds between polls with --follow."),
    data_dir: Path = DataDir,
) -> None:
    """Print a log group's recent events, oldest first; --follow keeps going.

    Example:

        panoptes logs tail /aws/panorama/devices/device-abc/applications/applicationInstance-xyz --stream code_node --follow
    """  # noqa: E501
    start_ms = int((datetime.now(UTC) - parse_since(since)).timestamp() * 1000)
    logs = client("logs", data_dir)
    seen: dict[str, int] = {}  # event id -> timestamp, of events at or after start_ms
    try:
        while True:
            for event in _page(logs, group, stream, start_ms):
                if event["eventId"] in seen:
                    continue
                seen[event["eventId"]] = event["timestamp"]
                _print(event, show_stream=stream is None)
                # The next poll starts at the newest time printed (events of that very
                # millisecond may still come), so `seen` only needs that millisecond on.
                start_ms = max(start_ms, event["timestamp"])
            if not follow:
                return
            seen = {k: ts for k, ts in seen.items() if ts >= start_ms}
            time.sleep(poll)
    except KeyboardInterrupt:
        return
    except (ClientError, BotoCoreError) as exc:
        raise api_error(exc, f"reading {group}") from None
