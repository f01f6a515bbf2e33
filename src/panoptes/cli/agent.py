"""`panoptes agent`: turn this machine into a Panoptes appliance (panoptes.agent).

Thin: parse the options, run panoptes.agent.Agent in the foreground, print its
device id, connection state and instances when they change. SIGTERM and Ctrl-C stop
it cleanly (every runtime stopped; they start again with the agent).
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

err = Console(stderr=True, soft_wrap=True, highlight=False)


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
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every step.")] = False,
) -> None:
    """Run the device agent: provision once, then run what the control plane deploys.

    Example:

        panoptes agent --config certificates-omni_lobby.zip --data-dir /var/lib/panoptes
    """
    from panoptes.agent.device import Agent
    from panoptes.agent.identity import ProvisioningError

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    dev = Agent(data_dir, config=config, watch=watch, say=lambda m: err.print(escape(m)))
    # Provisioning may wait (a USB stick, an unreachable control plane): a thread, so
    # that a signal still stops it.
    started: list[BaseException | None] = []

    def start() -> None:
        try:
            dev.start()
            started.append(None)
        except BaseException as exc:  # handed to the main thread
            started.append(exc)

    threading.Thread(target=start, daemon=True).start()
    while not started and not stop.wait(0.2):
        pass
    if not started:
        dev.stop()
        raise typer.Exit(0)
    if isinstance(started[0], ProvisioningError):
        err.print(f"[red]error:[/] {escape(str(started[0]))}")
        raise typer.Exit(1)
    if started[0] is not None:
        raise started[0]
    err.print(f"device {dev.device_id} (data in {dev.data_dir})")
    shown = None
    try:
        while not stop.wait(1.0) and not dev.exit_requested.is_set():
            view = (dev.connected, dev.link_error, _instances(dev))
            if view != shown:
                shown = view
                state = "connected" if dev.connected else f"offline {dev.link_error}".strip()
                err.print(f"link: {escape(state)}")
                for line in view[2]:
                    err.print(f"  {escape(line)}")
    finally:
        err.print("stopping the device agent")
        dev.stop()
    if dev.exit_code:
        raise typer.Exit(dev.exit_code)  # a job asked for it (REBOOT, OTA): the launcher acts


def _instances(dev: object) -> tuple[str, ...]:
    rows = dev.instances()  # type: ignore[attr-defined]
    return tuple(
        f"{r['ApplicationInstanceId']}: {r['Status']} health {r['HealthStatus']}"
        + (f" ({r['StatusDescription']})" if r["StatusDescription"] else "")
        for r in rows
    )
