"""Device jobs from the desired state: REBOOT and OTA, reported step by step.

The control plane lists a device's unfinished jobs in its desired state (``Jobs``:
JobId, JobType, ImageVersion, Status). `JobRunner.handle()` runs each job once (a
record in DATA/jobs/<JobId>.json survives restarts, so a job seen again after a
reconnect or a restart is not run twice) and reports the statuses the control
plane's DEVICE_JOB table accepts, in order:

* REBOOT: IN_PROGRESS, REBOOTING, then the worker exits with EXIT_REBOOT; the
  launcher starts it again and the new worker's `resume()` reports COMPLETED.
* OTA: IN_PROGRESS, DOWNLOADING (wheel from the device endpoint), VERIFYING (sha256,
  offline install, the new version imports and says its version), REBOOTING; the
  worker exits with EXIT_OTA and the launcher tries the version (launcher.py). The
  worker that comes up (the new version, or the old one after a rollback) calls
  `resume()`, which reports COMPLETED or FAILED with the launcher's reason.
  An OTA to the version already running is COMPLETED at once.

Any step that fails reports FAILED with a Reason saying what and why, and leaves the
running version as it was. A report that `publish_report` could not send (offline)
is kept and sent, in order, by `republish()` (call it after every reconnect) or by
the next `resume()`; so publish_report should return True only once the broker has
the message (QoS 1 acknowledged), as the job's status in the desired state cannot
be trusted to show what the control plane received (it may be stale).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from panoptes import link
from panoptes.agent.software import (
    EXIT_OTA,
    EXIT_REBOOT,
    Download,
    SoftwareError,
    SoftwareStore,
    Version,
    read_json,
    running_version,
    write_json,
)

log = logging.getLogger("panoptes.agent.jobs")

REBOOT, OTA = "REBOOT", "OTA"
IN_PROGRESS, DOWNLOADING, VERIFYING = "IN_PROGRESS", "DOWNLOADING", "VERIFYING"
REBOOTING, COMPLETED, FAILED = "REBOOTING", "COMPLETED", "FAILED"
FINISHED = (COMPLETED, FAILED)

# Where a job record stands, so that a restart knows what the job was waiting for.
_RUNNING, _RESTARTING, _SWITCHING, _DONE = "running", "restarting", "switching", "done"

KEEP_RECORDS = 200


class JobRunner:
    """Runs REBOOT and OTA jobs for the worker; see the module docstring.

    ``publish_report(kind, message)`` sends ``message`` (a whole job report, with its
    Type) on the device's ``kind`` topic, always link.REPORT: the agent's
    ``publish(kind, message)`` fits as it is. False when it could not (offline).
    ``request_exit(code)`` asks the worker to stop its runtimes and exit with
    ``code`` (software.EXIT_REBOOT or EXIT_OTA); it may return before that happens.
    ``download`` fetches software wheels (software.Download). ``ota_log(line)``, when
    given, receives one line per step (the agent ships them as the ``ota_log`` stream).
    """

    def __init__(
        self,
        data_dir: Path,
        publish_report: Callable[[str, dict[str, Any]], bool],
        request_exit: Callable[[int], None],
        download: Download,
        *,
        ota_log: Callable[[str], None] | None = None,
        store: SoftwareStore | None = None,
    ) -> None:
        self.records = Path(data_dir) / "jobs"
        self.records.mkdir(parents=True, exist_ok=True)
        self.store = store or SoftwareStore(data_dir)
        self.publish_report = publish_report
        self.request_exit = request_exit
        self.download = download
        self.ota_log = ota_log
        self._lock = threading.RLock()
        self._queue: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        self._thread: threading.Thread | None = None
        self._mine: set[str] = set()  # JobIds started by this process: not resume()'s

    # -- public ---------------------------------------------------------------------------

    def handle(self, job: dict[str, Any], software: dict[str, Any] | None = None) -> None:
        """Start ``job`` (a desired state ``Jobs`` entry) unless it was handled already;
        ``software`` is the desired state's ``Software`` (where OTA images are; when not
        given, an OTA reads it from link.DEVICE_HTTP_DESIRED). Returns at once: the job
        runs in a background thread, one job at a time."""
        job_id = str(job.get("JobId") or "")
        if not job_id or "/" in job_id or job_id.startswith("."):
            log.warning("desired state has a job with an invalid JobId %r: ignored", job_id)
            return
        with self._lock:
            rec = self._load(job_id)
            if rec is not None:
                return  # handled already (the desired state lists it until it finishes)
            if job.get("Status") in FINISHED:
                return
            rec = {
                "JobId": job_id,
                "JobType": job.get("JobType"),
                "ImageVersion": job.get("ImageVersion"),
                "Phase": _RUNNING,
                "Trail": [],
                "Sent": 0,
            }
            self._save(rec)  # before anything runs: a restart must not run it again
            self._mine.add(job_id)
            self._queue.append((rec, software))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run_queue, name="jobs", daemon=True)
                self._thread.start()

    def resume(self) -> None:
        """At worker start (after `SoftwareStore.mark_healthy()`): report the end of a job
        that spanned a restart, fail a job a restart cut short, send unsent reports."""
        with self._lock:
            for rec in self._all():
                if rec["JobId"] in self._mine:
                    continue  # started by this process, not left over from before a restart
                if rec["Phase"] == _RESTARTING:
                    self._report(rec, COMPLETED, phase=_DONE)
                elif rec["Phase"] == _SWITCHING:
                    self._resume_switch(rec)
                elif rec["Phase"] == _RUNNING:
                    step = rec["Trail"][-1]["Status"] if rec["Trail"] else "PENDING"
                    self._report(
                        rec, FAILED, f"the agent restarted during the job (at {step})", _DONE
                    )
            self.republish()
            self._prune()

    def republish(self) -> None:
        """Send, in order, the reports publish_report refused (call after a reconnect)."""
        with self._lock:
            for rec in self._all(include_done=True):
                if rec["Sent"] < len(rec["Trail"]):
                    self._send(rec)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the running jobs to finish their part in this process."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    # -- running jobs ---------------------------------------------------------------------

    def _run_queue(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._thread = None
                    return
                rec, software = self._queue.pop(0)
            try:
                self._run(rec, software)
            except Exception as exc:
                log.exception("job %s", rec["JobId"])
                with self._lock:
                    if rec["Phase"] == _RUNNING:
                        self._report(rec, FAILED, f"{type(exc).__name__}: {exc}", _DONE)

    def _run(self, rec: dict[str, Any], software: dict[str, Any] | None) -> None:
        kind = rec["JobType"]
        if kind == REBOOT:
            self._report(rec, IN_PROGRESS)
            self._note(rec, "restarting the agent and its applications")
            self._report(rec, REBOOTING, phase=_RESTARTING)
            self.request_exit(EXIT_REBOOT)
        elif kind == OTA:
            self._ota(rec, software)
        else:
            self._report(rec, FAILED, f"unknown JobType {kind!r}: expected OTA or REBOOT", _DONE)

    def _desired_software(self) -> dict[str, Any]:
        # The caller had no desired state at hand: the device endpoint serves it too.
        dest = self.store.root / ".downloads" / "desired.json"
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.download(link.DEVICE_HTTP_DESIRED, dest)
            desired = read_json(dest) or {}
        except OSError as exc:
            raise SoftwareError(f"cannot read the published software versions: {exc}") from exc
        finally:
            dest.unlink(missing_ok=True)
        return desired.get("Software") or {}

    def _ota(self, rec: dict[str, Any], software: dict[str, Any] | None) -> None:
        version = str(rec.get("ImageVersion") or "")
        if not version:
            self._report(rec, FAILED, "an OTA job needs an ImageVersion", _DONE)
            return
        self._report(rec, IN_PROGRESS)
        if version == running_version():
            self._note(rec, f"panoptes {version} is already running")
            self._report(rec, COMPLETED, phase=_DONE)
            return
        try:
            images = (software if software is not None else self._desired_software()).get(
                "Images"
            ) or {}
            if version not in images:
                published = ", ".join(sorted(images)) or "none"
                raise SoftwareError(
                    f"software {version} is not published on the control plane "
                    f"(published: {published})"
                )
            self._report(rec, DOWNLOADING)
            installed = self.store.version_dir(version)
            wheel = None
            if not installed.is_dir():
                self._note(rec, f"downloading panoptes {version}")
                wheel = self.store.fetch(version, images[version], self.download)
            self._report(rec, VERIFYING)
            target = self.store.install(version, wheel) if wheel else Version(version, installed)
            self._check_imports(target)
            self._note(rec, f"panoptes {version} installed and verified; switching to it")
        except SoftwareError as exc:
            self._note(rec, str(exc))
            self._report(rec, FAILED, str(exc), _DONE)
            return
        self.store.request_switch(rec["JobId"], target)
        self._report(rec, REBOOTING, phase=_SWITCHING)
        self.store.prune()
        self.request_exit(EXIT_OTA)

    @staticmethod
    def _check_imports(version: Version) -> None:
        # A wheel that cannot even be imported is refused here, before any switch.
        assert version.path is not None
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(version.path), env.get("PYTHONPATH")) if p
        )
        probe = "import panoptes, panoptes.agent; print(panoptes.__version__)"
        proc = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
        )
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["?"])[-1]
            raise SoftwareError(f"software {version.version} does not import: {last}")
        if proc.stdout.strip() != version.version:
            raise SoftwareError(
                f"software {version.version} says it is version {proc.stdout.strip()!r}"
            )

    def _resume_switch(self, rec: dict[str, Any]) -> None:
        outcome = self.store.outcome(rec["JobId"])
        if outcome is not None:
            self._note(rec, f"OTA {outcome['Status']}: {outcome.get('Reason') or 'healthy'}")
            self._report(rec, outcome["Status"], outcome.get("Reason"), _DONE)
            return
        pending = self.store.pending()
        if pending and pending.get("JobId") == rec["JobId"]:
            return  # on trial and not yet marked healthy: the launcher decides
        reason = f"the agent restarted before it switched to {rec.get('ImageVersion')}"
        self._report(rec, FAILED, reason, _DONE)

    # -- reports and records ----------------------------------------------------------------

    def _report(
        self, rec: dict[str, Any], status: str, reason: str | None = None, phase: str | None = None
    ) -> None:
        with self._lock:
            rec["Trail"].append({"Status": status, "Reason": reason})
            if phase is not None:
                rec["Phase"] = phase
            self._save(rec)
            self._send(rec)

    def _send(self, rec: dict[str, Any]) -> None:
        while rec["Sent"] < len(rec["Trail"]):
            step = rec["Trail"][rec["Sent"]]
            message = {"Type": link.REPORT_JOB, "JobId": rec["JobId"], **step}
            try:
                ok = self.publish_report(link.REPORT, message)
            except Exception:
                log.exception("publishing job report")
                ok = False
            if not ok:
                return  # offline: republish() sends it and what follows, in order
            rec["Sent"] += 1
            self._save(rec)

    def _note(self, rec: dict[str, Any], line: str) -> None:
        log.info("job %s: %s", rec["JobId"], line)
        if self.ota_log is not None:
            with contextlib.suppress(Exception):
                self.ota_log(f"job {rec['JobId']} ({rec['JobType']}): {line}")

    def _path(self, job_id: str) -> Path:
        return self.records / f"{job_id}.json"

    def _load(self, job_id: str) -> dict[str, Any] | None:
        return read_json(self._path(job_id))

    def _save(self, rec: dict[str, Any]) -> None:
        write_json(self._path(rec["JobId"]), rec)

    def _all(self, include_done: bool = False) -> list[dict[str, Any]]:
        found = []
        for path in sorted(self.records.glob("*.json"), key=lambda p: p.stat().st_mtime):
            rec = read_json(path)
            if rec and "Trail" in rec and (include_done or rec.get("Phase") != _DONE):
                found.append(rec)
        return found

    def _prune(self) -> None:
        done = [
            p for p in self.records.glob("*.json") if (read_json(p) or {}).get("Phase") == _DONE
        ]
        done.sort(key=lambda p: p.stat().st_mtime)
        for path in done[:-KEEP_RECORDS]:
            path.unlink(missing_ok=True)
