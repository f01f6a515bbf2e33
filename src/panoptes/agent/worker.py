"""The agent worker: the process the launcher runs (``python -m panoptes.agent.worker``).

Everything an OTA replaces runs here: the Agent (identity, link, reconciler), with
the jobs room's JobRunner (REBOOT, OTA) and the LogShipper wired in:

* logs: ``LogShipper(DATA/spool/logs)`` publishing on link.LOGS; the runtimes' log
  folders are watched by the reconciler; the agent's own log lines go to the
  device's log group as stream ``occ_log``, the OTA steps as ``ota_log``.
* jobs: ``JobRunner(DATA, agent.publish, agent.request_exit, download)`` where
  download fetches wheels from the device endpoint over mutual TLS.
* once connected and the saved applications are started again,
  ``SoftwareStore.mark_healthy()`` (a version on trial becomes current) and then
  ``jobs.resume()`` (reports the end of a job that spanned the restart);
  ``jobs.republish()`` runs after every reconnect (Agent does it).
* the heartbeat's AlternateSoftwares are the installed versions.

It prints what `panoptes agent` always printed (device id, link state, instances) on
stderr, which the launcher relays. Exit codes: 0 stopped (SIGTERM/SIGINT),
EXIT_REBOOT / EXIT_OTA when a job asks the launcher to act, EXIT_FATAL when the
provisioning archive is refused (the launcher does not start it again).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from panoptes import link
from panoptes.agent.device import Agent
from panoptes.agent.identity import ProvisioningError
from panoptes.agent.jobs import JobRunner
from panoptes.agent.logship import LogShipper
from panoptes.agent.software import (
    EXIT_FATAL,
    Download,
    SoftwareError,
    SoftwareStore,
    http_download,
)

log = logging.getLogger("panoptes.agent.worker")
err = Console(stderr=True, soft_wrap=True, highlight=False)

#: The device log group's streams for the agent's own lines and the OTA steps.
AGENT_STREAM, OTA_STREAM = "occ_log", "ota_log"
#: How long the worker waits for its first connection before it stops waiting to
#: declare itself healthy (the launcher's health timeout decides about a trial).
HEALTHY_WAIT = 600.0


class _ShipAgentLines(logging.Handler):
    """The agent's log records -> the device log group (stream occ_log)."""

    def __init__(self, agent: Agent) -> None:
        super().__init__(logging.INFO)
        self.agent = agent
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        # The shipper's own warnings stay local: shipping them would feed on itself.
        if record.name.startswith("panoptes.agent.logship"):
            return
        shipper = self.agent.logs
        if shipper is not None and self.agent.device_id:
            try:
                shipper.add(  # type: ignore[attr-defined]
                    link.device_log_group(self.agent.device_id), AGENT_STREAM, self.format(record)
                )
            except Exception:
                self.handleError(record)


def _no_download(path: str, dest: Path) -> Path:
    raise SoftwareError("this device's archive names no device endpoint: no software downloads")


def build_agent(
    data_dir: Path,
    *,
    config: Path | None = None,
    watch: Path | None = None,
    output_host: str = "127.0.0.1",
    say: Callable[[str], None] | None = None,
) -> Agent:
    """The worker's Agent, jobs and log shipping wired (not started)."""
    store = SoftwareStore(data_dir)

    def ship_line(agent: Agent, stream: str, line: str) -> None:
        if agent.logs is not None and agent.device_id:
            agent.logs.add(link.device_log_group(agent.device_id), stream, line)  # type: ignore[attr-defined]

    def make_logs(agent: Agent) -> LogShipper:
        return LogShipper(
            agent.data_dir / "spool" / "logs", lambda batch: agent.publish(link.LOGS, batch)
        )

    def make_jobs(agent: Agent) -> JobRunner:
        ident = agent.identity
        assert ident is not None
        download: Download = (
            http_download(ident.device_endpoint, ident.client_tls())
            if ident.device_endpoint
            else _no_download
        )
        return JobRunner(
            agent.data_dir,
            agent.publish,
            agent.request_exit,
            download,
            ota_log=lambda line: ship_line(agent, OTA_STREAM, line),
            store=store,
        )

    def say_and_ship(message: str) -> None:
        err.print(escape(message))
        ship_line(agent, AGENT_STREAM, message)

    agent = Agent(
        data_dir,
        config=config,
        watch=watch,
        jobs=make_jobs,
        logs=make_logs,
        runtime_options={"mjpeg_host": output_host},
        alternate_softwares=store.installed_versions,
        say=say or say_and_ship,
    )
    return agent


def become_healthy(agent: Agent, stop: threading.Event) -> None:
    """Once connected and the saved applications run again: this version is healthy
    (a trial commits), then the jobs that spanned the restart report their end."""
    waited = 0.0
    while not (agent.connected and agent.reconciler and agent.reconciler.restored.is_set()):
        if stop.wait(0.2) or agent.exit_requested.is_set():
            return
        waited += 0.2
        if waited > HEALTHY_WAIT:
            log.warning("no connection to the control plane yet: not reporting healthy")
            waited = 0.0
    committed = SoftwareStore(agent.data_dir).mark_healthy()
    log.info("panoptes is healthy here%s", "" if committed else " (trial not committed yet)")
    resume = getattr(agent.jobs, "resume", None)
    if resume is not None:
        resume()


def run(
    data_dir: Path,
    *,
    config: Path | None = None,
    watch: Path | None = None,
    output_host: str = "127.0.0.1",
) -> int:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    dev = build_agent(data_dir, config=config, watch=watch, output_host=output_host)
    logging.getLogger("panoptes").addHandler(_ShipAgentLines(dev))
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
        return 0
    if isinstance(started[0], ProvisioningError):
        err.print(f"[red]error:[/] {escape(str(started[0]))}")
        return EXIT_FATAL
    if started[0] is not None:
        raise started[0]
    err.print(f"device {dev.device_id} (data in {dev.data_dir})")
    threading.Thread(target=become_healthy, args=(dev, stop), daemon=True).start()
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
    return dev.exit_code  # a job asked for it (REBOOT, OTA): the launcher acts


def _instances(dev: Agent) -> tuple[str, ...]:
    return tuple(
        f"{r['ApplicationInstanceId']}: {r['Status']} health {r['HealthStatus']}"
        + (f" ({r['StatusDescription']})" if r["StatusDescription"] else "")
        for r in dev.instances()
    )


def agent_options(
    data_dir: Path,
    *,
    config: Path | None = None,
    watch: Path | None = None,
    output_host: str | None = None,
    verbose: bool = False,
) -> list[str]:
    """The options `panoptes agent` and its worker share, as command-line words."""
    argv = ["--data-dir", str(data_dir)]
    if config is not None:
        argv += ["--config", str(config)]
    if watch is not None:
        argv += ["--watch", str(watch)]
    if output_host:
        argv += ["--output-host", output_host]
    if verbose:
        argv.append("--verbose")
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m panoptes.agent.worker",
        description="The Panoptes device agent's worker (the launcher runs it).",
    )
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--watch", type=Path)
    parser.add_argument("--output-host", default="127.0.0.1")
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args(argv)
    console = logging.StreamHandler()
    console.setLevel(logging.INFO if args.verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(console)
    # INFO reaches the handlers: the console shows what --verbose asks, occ_log all of it.
    logging.getLogger("panoptes").setLevel(logging.INFO)
    return run(args.data_dir, config=args.config, watch=args.watch, output_host=args.output_host)


if __name__ == "__main__":
    sys.exit(main())
