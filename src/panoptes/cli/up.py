"""`panoptes up`: run the platform on one machine with its embedded defaults."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from panoptes import __version__
from panoptes.settings import default_data_dir

# One row per room, in the order the platform grows. Each later issue replaces its
# row's "not yet" with the service it starts.
COMPONENTS: list[tuple[str, str, str]] = [
    ("application format", "ready", "panoptes manifest validate GRAPH"),
    ("developer CLI", "ready", "panoptes app --help"),
    ("models (compile, serve)", "ready", "panoptes app add-raw-model --help"),
    ("control plane (Panorama API, S3)", "starting", "aws panorama list-devices"),
    ("device agent (this machine)", "starting", "aws panorama list-devices"),
    ("web console", "starting", "open the URL below, sign in as admin"),
]


def up(
    data_dir: Path = typer.Option(
        None, "--data-dir", help="State folder [default: ~/.local/share/panoptes]."
    ),
    port: int = typer.Option(8080, "--port", help="Port of the control plane."),
    broker_port: int = typer.Option(
        None, "--broker-port", help="Port of the embedded MQTT broker (default: --port + 2)."
    ),
    device_port: int = typer.Option(
        None, "--device-port", help="Port of the device endpoint (default: --port + 1)."
    ),
    demo: bool = typer.Option(
        False,
        "--demo",
        help="Also start a looping test camera and deploy the demo application on this "
        "machine's device; prints where to watch it.",
    ),
    local_device: bool = typer.Option(
        True,
        "--local-device/--no-local-device",
        help="Run a device agent on this machine (provisioned on the first run).",
    ),
) -> None:
    """Start Panoptes on this machine with embedded defaults (SQLite, local files).

    Runs until Ctrl-C. Prints the line that points AWS clients at it.

    Example:

        panoptes up --demo
    """
    from panoptes.cloud.server import ConfigError, ServerConfig, serve

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    table = Table(title=f"Panoptes {__version__} — embedded defaults")
    for column in ("component", "state", "try"):
        table.add_column(column)
    for row in COMPONENTS:
        table.add_row(*row)
    console.print(table)
    config = ServerConfig(
        (data_dir or default_data_dir()).expanduser().resolve(),
        port=port,
        broker_port=broker_port,
        device_port=device_port,
    )
    from panoptes.single_node import SingleNode

    def say(line: str) -> None:
        console.print(escape(line))

    node = SingleNode(config.data_dir, demo=demo, say=say)
    try:
        serve(config, announce=say, on_ready=node.on_ready if local_device else None)
    except ConfigError as e:
        console.print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(1) from None
    finally:
        node.stop()
