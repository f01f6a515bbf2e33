"""`panoptes env`: make unchanged AWS clients talk to a running Panoptes."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from panoptes.settings import default_data_dir

err = Console(stderr=True, highlight=False, soft_wrap=True)


def env(
    data_dir: Path = typer.Option(None, "--data-dir", help="The service's data dir."),
    shell: str = typer.Option("bash", "--shell", help="bash, zsh or fish."),
    unset: bool = typer.Option(False, "--unset", help="Print the lines that undo it."),
    install: bool = typer.Option(
        False, "--install", help="Set up ~/.aws for good (model + `panoptes` profile)."
    ),
    uninstall: bool = typer.Option(False, "--uninstall", help="Remove only what --install added."),
) -> None:
    """Print the lines that point AWS clients (boto3, aws CLI) at Panoptes.

    Evaluate them in your shell, as with `minikube docker-env`; after that,
    unchanged `aws panorama ...`, `aws s3 ...` and boto3 scripts talk to Panoptes.

    Example:

        eval "$(panoptes env)"
    """
    from panoptes.cloud import client_env

    if shell not in ("bash", "zsh", "fish"):
        err.print(f"[red]error:[/red] unknown shell {escape(shell)!r}; use bash, zsh or fish")
        raise typer.Exit(2)
    data_dir = data_dir or default_data_dir()
    try:
        if unset:
            typer.echo(client_env.unset_script(shell), nl=False)  # type: ignore[arg-type]
        elif install:
            changed = client_env.install(data_dir)
            err.print("\n".join(f"updated {c}" for c in changed) or "already installed")
            err.print("now: aws --profile panoptes panorama list-devices")
        elif uninstall:
            changed = client_env.uninstall()
            err.print("\n".join(f"restored {c}" for c in changed) or "nothing to remove")
        else:
            typer.echo(client_env.env_script(data_dir, shell), nl=False)  # type: ignore[arg-type]
    except client_env.SetupError as e:
        err.print(f"[red]error:[/red] {escape(e.message)}\n[dim]fix:[/dim] {escape(e.hint)}")
        raise typer.Exit(1) from None
