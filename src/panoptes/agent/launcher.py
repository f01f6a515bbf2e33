"""The launcher: runs the agent worker as a child process and switches its software.

``panoptes agent`` runs `main()`. The launcher itself always runs from the base
install and stays small: everything that an OTA changes runs in the worker, which
the launcher starts with the selected version's directory first on PYTHONPATH
(software.py). It reacts to the worker's exit code:

* ``EXIT_REBOOT``: the worker stopped its runtimes for a REBOOT job; start it again.
  (Rebooting the machine itself is out of scope: the agent and its applications
  restart, which is what an appliance reboot meant for them.)
* ``EXIT_OTA`` with DATA/software/pending.json: start the new version *on trial*.
  The trial worker writes a health mark (``SoftwareStore.mark_healthy()``) once it
  connected and restarted its applications; then the version becomes current. If
  it exits first, or writes no mark within ``health_timeout``, the launcher kills
  it and starts the current (previous, good) version again: a rollback. Either way
  the outcome is recorded for the job, and the next worker reports it.
* ``EXIT_FATAL``: the worker cannot run (a refused provisioning archive): end with 1.
* anything else: a crash; start the same version again after a backoff.

current.json changes only when a trial succeeded, so a launcher killed at any point
restarts into a good version; a trial cut short that way is tried again (at most
MAX_TRIAL_ATTEMPTS times in all) before it counts as failed.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from panoptes.agent.software import (
    ENV_BASE,
    ENV_TRIAL,
    EXIT_FATAL,
    EXIT_OTA,
    EXIT_REBOOT,
    SoftwareStore,
    Version,
    write_json,
)
from panoptes.procs import die_with_parent

log = logging.getLogger("panoptes.agent.launcher")

MAX_TRIAL_ATTEMPTS = 2
HEALTH_TIMEOUT = 120.0
STOP_GRACE = 20.0
BACKOFF_MIN, BACKOFF_MAX = 1.0, 30.0
STABLE_AFTER = 60.0  # a worker that ran this long resets the crash backoff
_POLL = 0.1


def worker_argv(options: Sequence[str]) -> list[str]:
    """The worker's command line with ``options`` (worker.agent_options)."""
    return [sys.executable, "-m", "panoptes.agent.worker", *options]


def default_worker_argv(data_dir: Path) -> list[str]:
    return worker_argv(["--data-dir", str(data_dir)])


class Launcher:
    """Runs and supervises the worker; see the module docstring."""

    def __init__(
        self,
        data_dir: Path,
        worker_argv: Sequence[str] | None = None,
        *,
        health_timeout: float = HEALTH_TIMEOUT,
        stop_grace: float = STOP_GRACE,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.worker_argv = list(worker_argv or default_worker_argv(self.data_dir))
        self.health_timeout = health_timeout
        self.stop_grace = stop_grace
        self.env = dict(os.environ if env is None else env)
        self.store = SoftwareStore(self.data_dir)
        self._stop = threading.Event()
        self._popen: subprocess.Popen[bytes] | None = None
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=20)

    def stop(self) -> None:
        """Stop the worker (SIGTERM, then SIGKILL after stop_grace) and return from run()."""
        self._stop.set()

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> int:
        trial = self._resume_trial()
        backoff = BACKOFF_MIN
        while not self._stop.is_set():
            if trial is not None:
                trial["Attempts"] = int(trial.get("Attempts", 0)) + 1
                if trial["Attempts"] > MAX_TRIAL_ATTEMPTS:
                    self._roll_back(trial, "the launcher stopped during every trial")
                    trial = None
                    continue
                write_json(self.store.root / "pending.json", trial)
                if trial.get("Path") and not Path(trial["Path"]).is_dir():
                    self._roll_back(trial, f"software {trial['Version']} is not installed")
                    trial = None
                    continue
            version = Version.from_json(trial) if trial else self.store.current()
            started = time.monotonic()
            code, failure = self._run_worker(version, trial)
            if self._stop.is_set():
                break
            if trial is not None and failure is not None:
                self._roll_back(trial, failure)
                trial = None
                continue
            trial = None
            if code == EXIT_FATAL:
                return 1  # the worker said why on stderr (relayed)
            if code == EXIT_REBOOT:
                log.info("worker asked for a restart (REBOOT)")
                continue
            pending = self.store.pending()
            if code == EXIT_OTA and pending:
                log.info("worker asked to switch to panoptes %s", pending["Version"])
                trial = pending
                continue
            if pending:
                # The worker asked for a switch but did not exit to do it: the request
                # is stale and the job failed (the next worker reports it).
                self._roll_back(pending, f"the agent exited with code {code} before switching")
            backoff = BACKOFF_MIN if time.monotonic() - started > STABLE_AFTER else backoff
            log.warning("worker exited with code %s; starting it again in %g s", code, backoff)
            self._stop.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
        return 0

    def _resume_trial(self) -> dict[str, Any] | None:
        pending = self.store.pending()
        if pending is None:
            return None
        if self.store.health_mark(pending["Version"]).exists():
            # Healthy before the previous launcher could record it.
            log.info("panoptes %s had proved healthy: it is current", pending["Version"])
            self.store.commit(pending)
            return None
        return pending

    def _roll_back(self, pending: dict[str, Any], reason: str) -> None:
        good = self.store.roll_back(pending, reason)
        log.warning("OTA to %s failed (%s): back to %s", pending["Version"], reason, good.version)

    def _run_worker(self, version: Version, trial: dict[str, Any] | None) -> tuple[int, str | None]:
        """Run one worker until it exits: (exit code, why the trial failed or None)."""
        env = dict(self.env)
        env[ENV_BASE] = self.store.base_version
        env.pop(ENV_TRIAL, None)
        if version.path is not None:
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(version.path), env.get("PYTHONPATH")) if p
            )
        if trial is not None:
            env[ENV_TRIAL] = version.version
            self.store.health_mark(version.version).unlink(missing_ok=True)
        self._stderr_tail.clear()
        self._popen = popen = subprocess.Popen(
            self.worker_argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=die_with_parent,
            start_new_session=True,  # Ctrl-C reaches the launcher, which stops the worker
        )
        relay = threading.Thread(target=self._relay_stderr, args=(popen,), daemon=True)
        relay.start()
        log.info(
            "worker pid %d: panoptes %s%s", popen.pid, version.version, " (trial)" if trial else ""
        )
        deadline = time.monotonic() + self.health_timeout
        failure = None
        while popen.poll() is None:
            if self._stop.is_set():
                self._terminate(popen)
                break
            if trial is not None and self.store.health_mark(version.version).exists():
                self.store.commit(trial)
                log.info("panoptes %s is healthy: it is now current", version.version)
                trial = None
            if trial is not None and time.monotonic() > deadline:
                failure = (
                    f"panoptes {version.version} did not report healthy within "
                    f"{self.health_timeout:g} s"
                )
                self._terminate(popen)
                break
            time.sleep(_POLL)
        code = popen.wait()
        relay.join(timeout=5)
        if trial is not None and failure is None:
            last = self._stderr_tail[-1] if self._stderr_tail else ""
            failure = f"panoptes {version.version} exited with code {code} before it was healthy"
            failure += f": {last}" if last else ""
        return code, failure

    def _relay_stderr(self, popen: subprocess.Popen[bytes]) -> None:
        # The worker's stderr goes on to ours; its last lines explain a failed trial.
        assert popen.stderr is not None
        for raw in popen.stderr:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.buffer.write(raw)
                sys.stderr.flush()
            line = raw.decode(errors="replace").strip()
            if line:
                self._stderr_tail.append(line[:500])
        popen.stderr.close()

    def _terminate(self, popen: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            popen.terminate()
        try:
            popen.wait(self.stop_grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                popen.kill()
            popen.wait()


def main(
    data_dir: Path,
    worker_argv: Sequence[str] | None = None,
    *,
    health_timeout: float = HEALTH_TIMEOUT,
) -> int:
    """Run the launcher in the foreground until SIGTERM or SIGINT (what `panoptes agent`
    does). ``worker_argv`` defaults to ``python -m panoptes.agent.worker --data-dir D``."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    launcher = Launcher(data_dir, worker_argv, health_timeout=health_timeout)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: launcher.stop())
    return launcher.run()


def _cli(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m panoptes.agent.launcher",
        description="Run the Panoptes agent worker; restart it, switch and roll back versions.",
    )
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--health-timeout", type=float, default=HEALTH_TIMEOUT)
    parser.add_argument("worker", nargs="*", help="worker argv (after --)")
    args = parser.parse_args(argv)
    return main(args.data_dir, args.worker or None, health_timeout=args.health_timeout)


if __name__ == "__main__":
    sys.exit(_cli())
