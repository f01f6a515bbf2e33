"""The reconciler: make what runs on the device match the desired state.

One thread applies each new desired state (a `Revision` of panoptes.link's
DesiredState) in order; another reports health:

* an instance to run that does not: report DEPLOYMENT_IN_PROGRESS, fetch its
  packages' assets (agent.assets), lay out and plan its project (agent.deployment),
  start a panoptes.runtime.Runtime in ``DATA/instances/<id>``, wait until every code
  node has started, report DEPLOYMENT_SUCCEEDED (or DEPLOYMENT_FAILED with the reason,
  health ERROR). An instance that ``Replaces`` another stops the old one only once it
  runs itself: a failed replacement leaves the old one running.
* an instance to remove (``Desired: REMOVED``): stop it, delete its folder, report
  REMOVAL_SUCCEEDED.
* NodeSignals (PAUSED / RUNNING) are applied to running instances' camera streams.
* jobs are handed to the jobs handler (``self.jobs.handle(job, software)``, once per
  JobId); each started instance's log folder to the log shipper
  (``self.logs.watch(folder, group)``, ``unwatch(folder)`` when it stops), see
  `JobHandler` and `LogWatcher`.

Each revision is acknowledged (link.REPORT_ACK) as soon as it arrives, before the
work: the control plane reads the ack as delivery (PENDING -> REQUESTED). Health
(HealthStatus and each node instance's status) is reported when it changes and every
`health_seconds`.

Everything the device reached is kept in DATA/state.json (agent.state): at start the
reconciler applies the saved desired state again, so instances that ran come back
after a restart of the agent or the machine, with the control plane out of reach.
Reports that cannot be sent (offline) are not queued: `resend()` (on reconnect)
sends the current state of every instance again.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from panoptes import link
from panoptes.agent import deployment
from panoptes.agent.assets import AssetCache, AssetError
from panoptes.agent.state import AgentState, InstanceRecord
from panoptes.runtime import ERROR, PAUSED, RUNNING, RunError, Runtime, Signal
from panoptes.runtime import client as rt_client

log = logging.getLogger("panoptes.agent")

IN_PROGRESS, SUCCEEDED, FAILED = (
    "DEPLOYMENT_IN_PROGRESS",
    "DEPLOYMENT_SUCCEEDED",
    "DEPLOYMENT_FAILED",
)
REMOVED = "REMOVAL_SUCCEEDED"
DEPLOY_TIMEOUT = 180.0  # seconds for every code node to make its first SDK call
DESCRIPTION_MAX = 255  # ApplicationInstance StatusDescription's length limit


class JobHandler(Protocol):
    """agent/jobs.py's JobRunner (REBOOT, OTA): a desired state's ``Jobs`` entry and its
    ``Software``; called once per JobId this process sees (it keeps its own records)."""

    def handle(self, job: dict[str, Any], software: dict[str, Any] | None = None) -> None: ...


class LogWatcher(Protocol):
    """agent/logship.py's LogShipper: ships ``folder``'s ``*.log`` files to ``group``;
    ``unwatch(folder)`` ships what is left and forgets them (the instance is gone)."""

    def watch(self, folder: Path, group: str) -> None: ...

    def unwatch(self, folder: Path) -> None: ...


Publish = Callable[[str, dict[str, Any]], bool]
#: instance id -> what the runtime's CredentialsEndpoint serves (agent/role_credentials.py's
#: RoleCredentialsProvider), or None: the instance has no role.
CredentialsFor = Callable[[str], Callable[[], "dict | None"] | None]


@dataclass
class _Running:
    runtime: Runtime
    entry: dict[str, Any]
    health: tuple[str, dict[str, str], str | None] | None = None
    health_sent: float = 0.0
    signals: dict[str, str] = field(default_factory=dict)


class Reconciler:
    def __init__(
        self,
        data_dir: Path,
        device_id: str,
        assets: AssetCache,
        publish: Publish,
        *,
        jobs: JobHandler | None = None,
        logs: LogWatcher | None = None,
        runtime_options: dict[str, Any] | None = None,
        credentials: CredentialsFor | None = None,
        health_seconds: float = link.HEARTBEAT_SECONDS,
        deploy_timeout: float = DEPLOY_TIMEOUT,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.device_id = device_id
        self.assets = assets
        self.publish = publish
        self.jobs = jobs
        self.logs = logs
        self.runtime_options = {"mjpeg_port": 0, "mp4": False, **(runtime_options or {})}
        self.credentials = credentials
        self.health_seconds = health_seconds
        #: Set once the saved desired state was applied again at start (the worker's
        #: health mark waits for it: "its applications restarted").
        self.restored = threading.Event()
        self.deploy_timeout = deploy_timeout
        self.state = AgentState.load(self.data_dir)
        self.running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._pending: dict[str, Any] | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._resend = threading.Event()
        self._ack: int | None = None
        self._jobs_seen: set[str] = set()
        self._thread: threading.Thread | None = None
        self._health_thread: threading.Thread | None = None
        self._health_lock = threading.Lock()

    # -- public ----------------------------------------------------------------------

    def start(self) -> Reconciler:
        self._thread = threading.Thread(target=self._loop, name="agent-reconciler", daemon=True)
        self._thread.start()
        # Its own thread: a long deployment (downloads, model compiles) must not silence
        # the health of the instances that already run.
        self._health_thread = threading.Thread(
            target=self._health_loop, name="agent-health", daemon=True
        )
        self._health_thread.start()
        return self

    def stop(self) -> None:
        """Stop the loop and every runtime; state.json keeps them for the next start."""
        self._stop.set()
        self._wake.set()
        for t in (self._thread, self._health_thread):
            if t is not None:
                t.join(60)
        for iid in list(self.running):
            self._stop_runtime(iid)

    def set_desired(self, desired: dict[str, Any]) -> None:
        """A desired state arrived (any thread); the loop applies the newest one."""
        with self._lock:
            self._pending = desired
        self._wake.set()

    def resend(self) -> None:
        """Send every instance's status and health again (the link reconnected)."""
        self._resend.set()
        self._wake.set()

    def snapshot(self) -> list[dict[str, Any]]:
        """What the device knows of each instance, for `panoptes agent` to print."""
        out = []
        with self._lock:
            records = dict(self.state.instances)
            running = dict(self.running)
        for iid, rec in records.items():
            r = running.get(iid)
            out.append(
                {
                    "ApplicationInstanceId": iid,
                    "Status": rec.status,
                    "StatusDescription": rec.description,
                    "Running": r is not None,
                    "HealthStatus": r.health[0] if r and r.health else "NOT_AVAILABLE",
                    "Nodes": dict(r.health[1]) if r and r.health else {},
                    "OutputUrl": _output_url(r.runtime) if r else None,
                }
            )
        return out

    # -- the loop --------------------------------------------------------------------

    def _loop(self) -> None:
        if self.state.desired is not None:
            log.info("restoring the last desired state (revision %s)", self.state.revision)
            self._guard(self._apply, self.state.desired, True)
        self.restored.set()
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            if self._stop.is_set():
                break
            with self._lock:
                desired, self._pending = self._pending, None
            if desired is not None and self._is_new(desired):
                self._guard(self._apply, desired, False)
            if self._resend.is_set():
                self._resend.clear()
                self._guard(self._send_all)
            self._guard(self._send_ack)

    def _health_loop(self) -> None:
        while not self._stop.wait(1.0):
            self._guard(self._check_health)

    def _guard(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # the loop must outlive any one mistake
            log.exception("reconciler: %s", getattr(fn, "__name__", fn))

    def _is_new(self, desired: dict[str, Any]) -> bool:
        rev = desired.get("Revision")
        return rev is None or rev != self.state.revision

    def _apply(self, desired: dict[str, Any], restoring: bool) -> None:
        self.state.desired = desired
        self._save()
        # Acknowledged on receipt, before the work: the control plane takes the ack as
        # delivery (PENDING -> REQUESTED), which must precede IN_PROGRESS and the rest.
        self._ack = desired.get("Revision")
        self._send_ack()
        # Jobs first: they run in the job runner's thread, not after long deployments.
        self._hand_jobs(desired.get("Jobs") or [], desired.get("Software"))
        entries = desired.get("ApplicationInstances") or []
        wanted = {e["ApplicationInstanceId"] for e in entries}
        for iid in [i for i in self.running if i not in wanted]:
            self._remove(iid, report=False)  # gone from the control plane altogether
        for iid in [i for i in self.state.instances if i not in wanted]:
            self.state.instances.pop(iid, None)
        for entry in entries:
            if self._stop.is_set():
                return
            if entry.get("Desired") == "REMOVED":
                self._remove(entry["ApplicationInstanceId"], report=True)
            else:
                self._ensure_running(entry, desired, restoring)
        self._save()
        if not restoring:  # assets no desired package names any more
            keep = {
                str(a["Sha256"]).lower()
                for p in desired.get("Packages") or []
                for a in p.get("Assets") or []
            }
            self.assets.prune(keep)

    # -- deploy ----------------------------------------------------------------------

    def _ensure_running(self, entry: dict[str, Any], desired: dict, restoring: bool) -> None:
        iid = entry["ApplicationInstanceId"]
        rec = self.state.instances.get(iid)
        before = rec.status if rec else None
        if iid in self.running:
            self.running[iid].entry = entry
            self._apply_signals(iid, entry)
        elif rec is not None and (rec.replaced or rec.status in (FAILED, REMOVED)):
            pass  # a failed deployment is not retried; a replaced one stays stopped
        elif rec is not None and rec.status == SUCCEEDED:
            self._deploy(entry, desired, quiet=True)  # it ran before this start
        else:
            self._deploy(entry, desired, quiet=False)
        rec = self.state.instances.get(iid)
        if rec is None or restoring or rec.status != before:
            return  # nothing known yet, or just reported
        if entry.get("Status") != rec.status:
            self._report_status(iid, rec)  # the control plane missed a report

    def _deploy(self, entry: dict[str, Any], desired: dict[str, Any], quiet: bool) -> None:
        iid = entry["ApplicationInstanceId"]
        if not quiet:
            self._set_status(iid, IN_PROGRESS)
        folder = self.instance_dir(iid)
        rt: Runtime | None = None
        freed: _Running | None = None  # an instance stopped early to free its ports
        try:
            packages = deployment.needed_packages(entry, desired.get("Packages") or [])
            files = deployment.fetch_assets(packages, self.assets)
            project = deployment.lay_out(folder, entry, packages, files)
            plan = deployment.plan(project, entry)
            freed = self._free_ports_of_replaced(entry, {host for _, _, host in plan.routing})
            # No role: no provider, and the app's credentials endpoint answers 404.
            has_role = self.credentials is not None and entry.get("RuntimeRoleArn")
            rt = Runtime(
                plan,
                folder,
                instance_id=iid,
                model_cache=self.data_dir / "cache" / "models",
                owner_file=self.data_dir / "output-owner",
                credentials=self.credentials(iid) if has_role else None,  # type: ignore[misc]
                **self.runtime_options,
            )
            rt.start()
            self._wait_started(rt)
        except Exception as exc:
            if self._stop.is_set():  # not a failure: the next start deploys it again
                if rt is not None:
                    rt.stop()
                return
            if not isinstance(exc, deployment.DeploymentError | AssetError | RunError):
                log.exception("deploying %s", iid)
                exc = RuntimeError(f"unexpected error on the device: {exc}")
            self._failed(iid, rt, str(exc), quiet)
            if freed is not None:  # a failed replacement leaves the old one running
                log.info("%s failed: starting %s again", iid, entry.get("Replaces"))
                self._deploy(freed.entry, desired, quiet=True)
            return
        self.running[iid] = _Running(rt, entry, signals=_default_signals(rt))
        if self.logs is not None:
            self.logs.watch(rt.logs_dir, link.instance_log_group(self.device_id, iid))
        self._apply_signals(iid, entry)
        if quiet:  # it ran before: nothing new to report but its health
            self.state.instances[iid].replaced = False
            self._save()
        else:
            self._set_status(iid, SUCCEEDED, replaced=False)
        log.info("%s runs (%s)", iid, "restarted" if quiet else "deployed")
        old = entry.get("Replaces")
        if old and (old in self.running or freed is not None):
            log.info("%s replaces %s: the old one stops for good", iid, old)
            self._stop_runtime(old, gone=True)
            if freed is not None and self.logs is not None:
                self.logs.unwatch(freed.runtime.logs_dir)
            old_rec = self.state.instances.setdefault(old, InstanceRecord(SUCCEEDED))
            old_rec.replaced = True
            self._save()
        self._check_health()

    def _free_ports_of_replaced(self, entry: dict[str, Any], ports: set[int]) -> _Running | None:
        """Stop the instance ``entry`` replaces now if it holds device ports the new one
        opens (both cannot bind them); it is started again if the new one fails."""
        old = entry.get("Replaces")
        r = self.running.get(old) if old else None
        if r is None or not ports & {host for _, _, host in r.runtime.plan.routing}:
            return None
        log.info("%s needs device ports %s held by %s: stopping it first", entry.get(
            "ApplicationInstanceId"), sorted(ports), old)  # fmt: skip
        self._stop_runtime(old)
        return r

    def _wait_started(self, rt: Runtime) -> None:
        """Every code node made its first SDK call; DeploymentError when one failed."""
        deadline = time.monotonic() + self.deploy_timeout
        markers = [rt.workdir / "nodes" / c.node / rt_client.STARTED for c in rt.plan.codes]
        while not all(m.exists() for m in markers):
            if rt.start_failures:
                node, detail = next(iter(rt.start_failures.items()))
                last = _last_app_line(rt, node)
                raise deployment.DeploymentError(
                    f"code node {node!r} failed to start: {detail}" + (f": {last}" if last else "")
                )
            if time.monotonic() > deadline:
                raise deployment.DeploymentError(
                    f"the application did not start within {self.deploy_timeout:g} s"
                )
            if self._stop.wait(0.2):
                raise deployment.DeploymentError("the agent stopped during the deployment")

    def _failed(self, iid: str, rt: Runtime | None, reason: str, quiet: bool) -> None:
        log.warning("%s: deployment failed: %s", iid, reason)
        if rt is not None:
            rt.stop()
        if quiet:  # it ran before: its status stays, its health says what is wrong
            rec = self.state.instances[iid]
            rec.description = reason[:DESCRIPTION_MAX]
            self._save()
        else:
            self._set_status(iid, FAILED, reason)
        self.publish(
            link.REPORT,
            {"Type": link.REPORT_HEALTH, "ApplicationInstanceId": iid,
             "HealthStatus": ERROR, "Nodes": {}},
        )  # fmt: skip

    # -- signals ---------------------------------------------------------------------

    def _apply_signals(self, iid: str, entry: dict[str, Any]) -> None:
        r = self.running[iid]
        for node, want in (entry.get("NodeSignals") or {}).items():
            if want not in (RUNNING, PAUSED) or r.signals.get(node, RUNNING) == want:
                continue
            try:
                r.runtime.signal(node, Signal.PAUSE if want == PAUSED else Signal.RESUME)
            except KeyError:
                log.warning("%s: no node %s to signal", iid, node)
                continue
            r.signals[node] = want
            log.info("%s: %s %s", iid, node, "paused" if want == PAUSED else "resumed")

    # -- remove ----------------------------------------------------------------------

    def _remove(self, iid: str, report: bool) -> None:
        self._stop_runtime(iid, gone=True)
        folder = self.instance_dir(iid)
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        if report:
            rec = self.state.instances.get(iid)
            if rec is None or rec.status != REMOVED:
                log.info("%s removed", iid)
            self._set_status(iid, REMOVED)
        else:
            self.state.instances.pop(iid, None)

    def _stop_runtime(self, iid: str, gone: bool = False) -> None:
        """Stop an instance's runtime; ``gone``: for good (removed, replaced), so its
        logs are shipped to the end and forgotten (not when the agent stops)."""
        r = self.running.pop(iid, None)
        if r is None:
            return
        r.runtime.stop()
        if gone and self.logs is not None:
            self.logs.unwatch(r.runtime.logs_dir)  # after the stop: its last lines too

    def instance_dir(self, iid: str) -> Path:
        return self.data_dir / "instances" / iid

    # -- reports ---------------------------------------------------------------------

    def _set_status(
        self, iid: str, status: str, description: str = "", replaced: bool | None = None
    ) -> None:
        rec = self.state.instances.get(iid) or InstanceRecord(status)
        rec.status, rec.description = status, description[:DESCRIPTION_MAX]
        if replaced is not None:
            rec.replaced = replaced
        with self._lock:
            self.state.instances[iid] = rec
        self._save()
        self._report_status(iid, rec)

    def _report_status(self, iid: str, rec: InstanceRecord) -> bool:
        msg: dict[str, Any] = {
            "Type": link.REPORT_INSTANCE,
            "ApplicationInstanceId": iid,
            "Status": rec.status,
            "StatusDescription": rec.description or None,
            "RuntimeStates": None,
        }
        return self.publish(link.REPORT, msg)

    def _check_health(self) -> None:
        with self._health_lock:
            for iid, r in list(self.running.items()):
                self._check_instance_health(iid, r)

    def _check_instance_health(self, iid: str, r: _Running) -> None:
        now = time.monotonic()
        nodes = {name: s.status for name, s in r.runtime.status().items()}
        health = ERROR if any(v == ERROR for v in nodes.values()) else RUNNING
        output = _output_url(r.runtime)
        current = (health, nodes, output)
        if self.running.get(iid) is not r:
            return  # stopped meanwhile: its removal is what the control plane hears
        if current != r.health or now - r.health_sent >= self.health_seconds:
            sent = self.publish(
                link.REPORT,
                {"Type": link.REPORT_HEALTH, "ApplicationInstanceId": iid,
                 "HealthStatus": health, "Nodes": nodes, "OutputUrl": output},
            )  # fmt: skip
            with self._lock:
                r.health = current
            r.health_sent = now if sent else 0.0

    def _send_all(self) -> None:
        if self.state.revision is not None:  # first, as on receipt (see _apply)
            self._ack = self.state.revision
            self._send_ack()
        for iid, rec in list(self.state.instances.items()):
            self._report_status(iid, rec)
        for r in self.running.values():
            r.health_sent = 0.0  # the next check sends it

    def _send_ack(self) -> None:
        if self._ack is not None and self.publish(
            link.REPORT, {"Type": link.REPORT_ACK, "Revision": self._ack}
        ):
            self._ack = None

    def _hand_jobs(self, jobs: list[dict[str, Any]], software: dict[str, Any] | None) -> None:
        for job in jobs:
            job_id = job.get("JobId")
            if not job_id or job_id in self._jobs_seen:
                continue
            self._jobs_seen.add(job_id)
            if self.jobs is None:
                log.warning("job %s (%s): no job handler in this agent", job_id, job.get("JobType"))
                continue
            self.jobs.handle(job, software)

    def _save(self) -> None:
        with self._lock:
            self.state.save(self.data_dir)


def _last_app_line(rt: Runtime, node: str) -> str:
    """The application's own last words (its traceback's last line), not the runtime's."""
    for text in (rt.app_log(), rt.app_log(node)):
        lines = [ln for ln in text.strip().splitlines() if not ln.startswith("panoptes:")]
        if lines:
            return lines[-1].strip()
    return ""


def _output_url(rt: Runtime) -> str | None:
    """The instance's live MJPEG stream (link's OutputUrl), once its output server runs."""
    base = rt.output_url
    return base.rstrip("/") + "/stream.mjpg" if base else None


def _default_signals(rt: Runtime) -> dict[str, str]:
    """What a fresh runtime does: onSignal cameras wait for RESUME, the rest run."""
    return {c.stream: PAUSED if c.launch == "onSignal" else RUNNING for c in rt.plan.cameras}
