"""`panoptes broker-config` and `panoptes software publish`: the device link's setup."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from panoptes.settings import default_data_dir

err = Console(stderr=True, highlight=False, soft_wrap=True)

software_cli = typer.Typer(
    help="Device software images for OTA jobs (Panoptes wheels).", no_args_is_help=True
)


def broker_config(
    out: Path = typer.Option(..., "--out", help="Folder for mosquitto.conf, acl and certificates."),
    data_dir: Path = typer.Option(
        None, "--data-dir", help="Data dir of the control plane (its platform CA)."
    ),
    host: str = typer.Option("0.0.0.0", "--host", help="Interface Mosquitto listens on."),
    port: int = typer.Option(8883, "--port", help="Port of Mosquitto's TLS listener."),
    name: list[str] = typer.Option(
        None, "--name", help="A host name devices dial (repeat); loopback and this host's are in."
    ),
    user: str = typer.Option(
        None, "--user", help="Account Mosquitto runs as (default: Mosquitto's 'mosquitto')."
    ),
) -> None:
    """Write a Mosquitto TLS listener that enforces the device link's policy.

    Client certificates are required and checked against the platform CA; the
    certificate's CN is the user name; the ACL lets a device reach only
    panoptes/v1/devices/<its id>/# and the control plane's bridge all of them.

    Example:

        panoptes broker-config --out /etc/mosquitto/panoptes --port 8883
        mosquitto -c /etc/mosquitto/panoptes/mosquitto.conf &
        panoptes serve --broker mqtts://$(hostname):8883
    """
    from datetime import UTC, datetime

    from panoptes.cloud.channel.certs import host_names
    from panoptes.cloud.channel.mosquitto import write_config
    from panoptes.cloud.services.provisioning import PlatformCA

    folder = (data_dir or default_data_dir()).expanduser().resolve()
    now = datetime.now(UTC)
    ca = PlatformCA.load_or_create(folder, now)
    names = host_names(*(name or []), None if host == "0.0.0.0" else host)
    conf = write_config(out, ca, now, host=host, port=port, names=names, user=user)
    err.print(f"Wrote {escape(str(conf))} (certificate for: {escape(', '.join(names))})")
    err.print(f"Run: mosquitto -c {escape(str(conf))}")
    err.print(f"Then: panoptes serve --data-dir {escape(str(folder))} --broker mqtts://HOST:{port}")


@software_cli.command("publish")
def publish(
    wheel: Path = typer.Argument(..., help="The Panoptes wheel (.whl) devices install."),
    version: str = typer.Option(
        None, "--version", help="Version to publish it as (default: the wheel's)."
    ),
    data_dir: Path = typer.Option(
        None, "--data-dir", help="Data dir of the local `panoptes serve` (endpoint, admin key)."
    ),
    endpoint_url: str = typer.Option(
        None, "--endpoint-url", help="Service URL; credentials from AWS settings."
    ),
    profile: str = typer.Option(None, "--profile", help="AWS profile for credentials/endpoint."),
) -> None:
    """Publish a software image: OTA jobs (aws panorama create-job-for-devices
    --job-type OTA) install it, and DescribeDevice offers the highest as LatestSoftware.

    Example:

        panoptes software publish dist/panoptes-0.2.0-py3-none-any.whl
    """
    from panoptes.cloud.channel.software import SoftwareError, publish_wheel
    from panoptes.project import ProjectError
    from panoptes.project.package_app import connect

    try:
        clients = connect(data_dir, endpoint_url, profile)
        published = publish_wheel(clients.s3, wheel, version)
    except (SoftwareError, ProjectError) as e:
        err.print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(1) from None
    err.print(f"Published software {escape(published)} ({escape(wheel.name)})")
