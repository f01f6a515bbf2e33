"""`panoptes agent`: turn this machine into a Panoptes appliance (panoptes.agent).

Thin: parse the options and run the launcher (agent/launcher.py), which runs the
worker (agent/worker.py: the Agent with jobs and log shipping) as its child and
restarts or switches it for REBOOT and OTA jobs. The worker prints its device id,
connection state and instances when they change. SIGTERM and Ctrl-C stop it cleanly
(every runtime stopped; they start again with the agent).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer


def agent(
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where the device keeps its identity and apps.")
    ],
    config: Annotated[
        Path | None,
        typer.Option("--config", help="The certificates-omni_NAME.zip of ProvisionDevice."),
    ] = None,
    watch: Annotated[
        Path | None,
        typer.Option("--watch", help="A folder (a USB stick) to wait in for that archive."),
    ] = None,
    output_host: Annotated[
        str,
        typer.Option(
            "--output-host",
            help="Address the apps' live output (MJPEG) listens on; the control plane "
            "must reach it there (the console relays it).",
        ),
    ] = "127.0.0.1",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every step.")] = False,
    systemd_unit: Annotated[
        bool,
        typer.Option(
            "--systemd-unit",
            help="Print a systemd unit that runs this same command at boot, and exit.",
        ),
    ] = False,
) -> None:
    """Run the device agent: provision once, then run what the control plane deploys.

    Example:

        panoptes agent --config certificates-omni_lobby.zip --data-dir /var/lib/panoptes

    To start it at boot (and again after a crash):

        panoptes agent --data-dir /var/lib/panoptes --systemd-unit \\
          | sudo tee /etc/systemd/system/panoptes-agent.service
        sudo systemctl enable --now panoptes-agent
    """
    from panoptes.agent import launcher
    from panoptes.agent.worker import agent_options

    data_dir = data_dir.expanduser().resolve()
    options = agent_options(
        data_dir,
        config=config.resolve() if config else None,
        watch=watch.resolve() if watch else None,
        output_host=output_host,
        verbose=verbose,
    )
    if systemd_unit:
        from panoptes.agent.service_unit import agent_unit

        typer.echo(agent_unit(data_dir, options), nl=False)
        return
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    # The launcher runs the worker as its child: a REBOOT job restarts it, an OTA job
    # switches its version (and rolls back when the new one does not come up healthy).
    code = launcher.main(data_dir, launcher.worker_argv(options))
    if code:
        raise typer.Exit(code)
