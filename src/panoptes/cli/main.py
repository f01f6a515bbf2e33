"""Entry point of the `panoptes` command: one sub-command group per room."""

from __future__ import annotations

import typer

from panoptes import __version__
from panoptes.cli.agent import agent
from panoptes.cli.alarms import alarms_cli
from panoptes.cli.app import app_cli
from panoptes.cli.env import env
from panoptes.cli.link import broker_config, software_cli
from panoptes.cli.logs import logs_cli
from panoptes.cli.manifest import manifest_cli
from panoptes.cli.roles import roles_cli
from panoptes.cli.serve import serve
from panoptes.cli.up import up
from panoptes.cli.users import users_cli

app = typer.Typer(
    name="panoptes",
    help="Panoptes: run AWS Panorama applications on your own hardware.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(manifest_cli, name="manifest")
app.add_typer(app_cli, name="app")
app.add_typer(logs_cli, name="logs")
app.add_typer(alarms_cli, name="alarms")
app.add_typer(roles_cli, name="roles")
app.add_typer(users_cli, name="users")
app.command("up")(up)
app.command("serve")(serve)
app.command("env")(env)
app.command("broker-config")(broker_config)
app.add_typer(software_cli, name="software")
app.command("agent")(agent)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"panoptes {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Panoptes: run AWS Panorama applications on your own hardware."""
