"""`panoptes serve`: the control plane (Panorama API, S3 subset) and the device link."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from panoptes.settings import default_data_dir

err = Console(stderr=True, highlight=False, soft_wrap=True)


def serve(
    data_dir: Path = typer.Option(
        None, "--data-dir", help="State folder [default: ~/.local/share/panoptes]."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0: all)."),
    port: int = typer.Option(8080, "--port", help="TCP port for every API."),
    database: str = typer.Option(
        None,
        "--database",
        help="SQLAlchemy URL [default: SQLite in the data dir], "
        "e.g. postgresql+psycopg://user@host/panoptes",
    ),
    object_store: str = typer.Option(
        None,
        "--object-store",
        help="file:///DIR [default: DATA_DIR/objects], s3:// or s3://BUCKET/PREFIX",
    ),
    broker: str = typer.Option(
        "embedded",
        "--broker",
        help="The devices' MQTT broker: 'embedded' (in this process) or mqtts://HOST:PORT "
        "(Mosquitto configured with `panoptes broker-config`).",
    ),
    broker_port: int = typer.Option(
        None, "--broker-port", help="Port of the embedded broker (default: --port + 2)."
    ),
    device_port: int = typer.Option(
        None,
        "--device-port",
        help="Port of the device endpoint (mutual TLS downloads) (default: --port + 1).",
    ),
    public_host: str = typer.Option(
        None,
        "--public-host",
        help="Host name devices dial, written into their certificates archive "
        "(default: --host, or this machine's name for 0.0.0.0).",
    ),
) -> None:
    """Run the Panorama-compatible API (boto3 and the AWS CLI work against it).

    On first start it creates an admin access key and writes DATA_DIR/credentials
    (profile `panoptes`); PANOPTES_ADMIN_ACCESS_KEY_ID/..._SECRET_ACCESS_KEY seed a
    known key instead.

    Devices connect to the MQTT broker (TLS, client certificates from the platform CA)
    and download assets from the device endpoint; both addresses go into the
    certificates archive ProvisionDevice returns.

    Example:

        panoptes serve --data-dir /var/lib/panoptes --host 0.0.0.0

    Example with Mosquitto:

        panoptes broker-config --out /etc/mosquitto/panoptes --port 8883
        mosquitto -c /etc/mosquitto/panoptes/mosquitto.conf &
        panoptes serve --broker mqtts://$(hostname):8883
    """
    from panoptes.cloud.server import ConfigError, ServerConfig
    from panoptes.cloud.server import serve as run

    config = ServerConfig(
        data_dir=(data_dir or default_data_dir()).expanduser().resolve(),
        host=host,
        port=port,
        database=database,
        object_store=object_store,
        broker=broker,
        broker_port=broker_port,
        device_port=device_port,
        public_host=public_host,
    )
    try:
        run(config, announce=lambda line: err.print(escape(line)))
    except ConfigError as e:
        err.print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(1) from None
