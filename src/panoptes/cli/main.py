"""Entry point of the `panoptes` command: one sub-command group per room."""

from __future__ import annotations

import typer

from panoptes import __version__
from panoptes.cli.agent import agent
from panoptes.cli.app import app_cli
from panoptes.cli.env import env
from panoptes.cli.manifest import manifest_cli
from panoptes.cli.serve import serve
from panoptes.cli.up import up

app = typer.Typer(
    name="panoptes",
    help="Panoptes: run AWS Panorama applications on your own hardware.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(manifest_cli, name="manifest")
app.add_typer(app_cli, name="app")
app.command("up")(up)
app.command("serve")(serve)
app.command("env")(env)
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
