"""boto3 clients for `panoptes logs` and `panoptes alarms`: the service of a data dir.

These commands are clients of the public API (CloudWatch Logs, CloudWatch) like any
script, signed with the admin key `panoptes serve` wrote into the data dir.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from panoptes.settings import default_data_dir

err = Console(stderr=True, highlight=False, soft_wrap=True)

DataDir = typer.Option(None, "--data-dir", help="The service's data dir.")


def fail(message: str, hint: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}\n[dim]fix:[/dim] {escape(hint)}")
    return typer.Exit(1)


def client(service: str, data_dir: Path | None) -> Any:
    """A boto3 client for ``service`` ("logs", "cloudwatch") of the running Panoptes."""
    import boto3
    from botocore.config import Config

    from panoptes.cloud.client_env import SetupError, service_access

    try:
        access = service_access((data_dir or default_data_dir()).expanduser())
    except SetupError as e:
        raise fail(e.message, e.hint) from None
    return boto3.client(
        service,
        endpoint_url=access.endpoint_url,
        region_name=access.region,
        aws_access_key_id=access.access_key_id,
        aws_secret_access_key=access.secret_access_key,
        config=Config(retries={"mode": "standard", "max_attempts": 5}),
    )


def api_error(exc: Exception, doing: str) -> typer.Exit:
    """One clear line for a ClientError (the service's own message) or a lost service."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return fail(f"{doing}: {error.get('Message') or error.get('Code')}", "check the arguments")
    return fail(f"{doing}: {exc}", "check that `panoptes serve` is running")
