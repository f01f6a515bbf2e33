"""Runtime: start, supervise and stop the processes of one application instance.

One runtime for the local runner (``panoptes app run``) and the device agent::

    rt = Runtime(plan, workdir, output_dir=out).start()
    rt.status()                      # {node: NodeStatus(status="RUNNING", ...)}
    rt.signal("camera_2", Signal.RESUME)
    rt.wait_finished(timeout=60)     # files played out and every frame consumed
    rt.stop()

Processes: one source per camera stream (panoptes.media.source), one model server
per model node (panoptes.models), one process per code node (isolated, see
sandbox.py), one output sink (panoptes.media.sink) when the graph has an output
node. Frame rings are created here, so they outlive a crashing producer or reader
and are removed at stop (and swept at the next start after a crash of ours).

Every child gets PR_SET_PDEATHSIG, so nothing outlives a killed runtime. A code node
that exits is restarted with exponential backoff and counted as an application
error; one that exits before its first get/put/call "failed to start", which the
local runner reports instead of retrying (``restart_on_start_failure=False``).

A model server that dies is restarted with the same backoff and counted, on the same
socket address, so the code nodes' ModelClients reconnect without noticing. A camera
source whose ring heartbeat is older than ``liveness_deadline`` is stuck: the watchdog
kills it (SIGKILL) and it is restarted with backoff; the gap is logged once when it
starts and once when frames flow again.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panoptes.media import ring as ringmod
from panoptes.media.camera_url import is_live
from panoptes.procs import die_with_parent
from panoptes.runtime import client as rt_client
from panoptes.runtime import code as code_mod
from panoptes.runtime import sandbox
from panoptes.runtime.plan import CodePlan, RunError, RunPlan
from panoptes.runtime.services import CredentialsEndpoint, LogShipper, PortForwarder
from panoptes.shmem import pid_alive

log = logging.getLogger("panoptes.runtime")

RUNNING, ERROR, NOT_AVAILABLE, PAUSED = "RUNNING", "ERROR", "NOT_AVAILABLE", "PAUSED"
FRAME_CAPACITY = 1920 * 1088 * 3  # sources downscale anything larger (> 2 MP)
BACKOFF_MIN, BACKOFF_MAX, STABLE_AFTER = 0.5, 30.0, 60.0
STOP_GRACE = 5.0
# Camera watchdog: a source whose heartbeat is older than this is stuck and is killed
# and restarted. Above the source's own network timeouts (5 s read, 10 s open), so a
# slow reconnect is not mistaken for a hang. START_GRACE covers a fresh process
# importing its libraries before its first heartbeat.
LIVENESS_DEADLINE, START_GRACE = 20.0, 15.0
READER_WAIT = 60.0  # seconds a camera waits for its applications' first get()


OWNER_ENV = "PANOPTES_OUTPUT_OWNER"


def shared_output_owner_file() -> Path:
    """The file in which the runtimes of one machine record who owns its shared output.

    The most recently started application with an output node owns the device's one
    output (the HDMI port of an appliance; here the live view): its sink writes its
    instance id there at start, older sinks see that and stop publishing, and a
    runtime that stops while it owns the output removes the file, so the others
    publish again. ``$PANOPTES_OUTPUT_OWNER`` if set; else ``/run/panoptes/output-owner``
    for root (the device agent), ``$XDG_RUNTIME_DIR/panoptes/output-owner`` or
    ``<tmp>/panoptes-<uid>/output-owner`` for a user.
    """
    if os.environ.get(OWNER_ENV):
        return Path(os.environ[OWNER_ENV])
    if os.geteuid() == 0:
        return Path("/run/panoptes/output-owner")
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "panoptes" / "output-owner"
    return Path(tempfile.gettempdir()) / f"panoptes-{os.getuid()}" / "output-owner"


def _model_fix(m: Any, exc: Exception) -> str:
    """The model error's own fix, pointed at the file to edit."""
    fix = str(exc).partition(" (fix: ")[2].rstrip(")") or (
        "check the model file and its descriptor (input name and shape)"
    )
    where = m.descriptor_path
    if where is None:
        return fix
    if m.package_dir is not None and m.package_dir not in where.parents:
        # The descriptor the model was imported with (assets/); the user edits the
        # package's copy and imports again.
        return (
            f"{fix}: edit {m.package_dir / 'descriptor.json'}, then store it again with "
            "panoptes app add-raw-model"
        )
    return f"{fix} ({where})"


class Signal(enum.Enum):
    PAUSE = "PAUSE"
    RESUME = "RESUME"


@dataclass
class NodeStatus:
    """Per-node state, with the Panorama NodeInstance status values."""

    node: str
    role: str
    status: str = NOT_AVAILABLE
    detail: str = ""
    pid: int | None = None
    restarts: int = 0
    errors: int = 0
    frames: int = 0
    fps: float = 0.0


@dataclass
class _Proc:
    name: str
    role: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen | None = None
    started_at: float = 0.0
    started_wall: float = 0.0  # time.time() at spawn, to compare with ring heartbeats
    next_start: float | None = None
    backoff: float = BACKOFF_MIN
    restart: bool = True
    finished: bool = False  # ended on purpose (a file played out): not restarted
    extra: dict[str, Any] = field(default_factory=dict)

    def spawn(self, cwd: str | None = None) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = self.log_path.open("ab")
        try:
            self.popen = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=cwd,
                preexec_fn=die_with_parent,
                start_new_session=True,  # Ctrl-C reaches the runtime only; it stops us in order
            )
        finally:
            out.close()
        self.started_at, self.started_wall = time.monotonic(), time.time()
        self.next_start = None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def terminate(self, grace: float = STOP_GRACE) -> None:
        p = self.popen
        if p is None or p.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, signal.SIGCONT)  # a paused node must be able to exit
            p.terminate()
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)


@dataclass
class _Restart:
    """Restart bookkeeping of a model server (processes keep theirs in _Proc)."""

    next_start: float | None = None
    backoff: float = BACKOFF_MIN
    starting: bool = False
    started_at: float = 0.0

    def schedule(self, now: float) -> None:
        self.next_start = now + self.backoff
        self.backoff = min(self.backoff * 2, BACKOFF_MAX)


class Runtime:
    """Runs one resolved application (see the module docstring)."""

    def __init__(
        self,
        plan: RunPlan,
        workdir: Path,
        *,
        output_dir: Path | None = None,
        storage_dir: Path | None = None,
        instance_id: str | None = None,
        region: str | None = None,
        pace: float = 1.0,
        loop: bool = False,
        max_frames: int = 0,
        mjpeg_port: int | None = 0,
        mjpeg_host: str = "127.0.0.1",
        mp4: bool = True,
        owner_file: Path | None = None,
        shared_output: bool = False,
        model_cache: Path | None = None,
        isolation: str | None = None,
        restart_on_start_failure: bool = True,
        model_threads: int | None = None,
        credentials: dict | None = None,
        app_env: dict[str, str] | None = None,
        liveness_deadline: float = LIVENESS_DEADLINE,
    ) -> None:
        self.plan = plan
        self.instance_id = instance_id or f"applicationInstance-{uuid.uuid4().hex[:24]}"
        self.workdir = Path(workdir).resolve()
        self.output_dir = Path(output_dir or self.workdir / "output").resolve()
        self.logs_dir = self.output_dir / "logs"
        self.storage_dir = Path(storage_dir or self.workdir / "storage").resolve()
        self.region = (
            region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        ) or "us-east-1"
        self.pace, self.loop, self.max_frames = pace, loop, max_frames
        self.mjpeg_port, self.mp4 = mjpeg_port, mp4
        # Where the live output listens (the device agent binds where its control plane
        # reaches it; the local runner keeps loopback).
        self.mjpeg_host = mjpeg_host
        # shared_output: this instance takes part in "the newest app owns the output"
        # through the machine's default owner file (what the device agent asks for).
        self.owner_file = owner_file or (shared_output_owner_file() if shared_output else None)
        self.model_cache = model_cache
        self.isolation = isolation
        self.restart_on_start_failure = restart_on_start_failure
        self.model_threads = model_threads
        self.credentials = credentials
        # Extra variables for the code nodes (the device agent: AWS_ENDPOINT_URL, so the
        # app's boto3 reaches the control plane with its role credentials).
        self.app_env = dict(app_env or {})
        self.liveness_deadline = liveness_deadline
        self.rings: dict[str, ringmod.FrameRing] = {}
        self.camera_rings: dict[str, str] = {}  # stream id -> ring name
        self.output_rings: dict[tuple[str, str], str] = {}  # (code node, port) -> ring
        self.procs: dict[str, _Proc] = {}
        self.models: dict[str, Any] = {}  # node -> ModelServer
        self._model_restarts: dict[str, _Restart] = {}
        self._stats: dict[str, Any] = {}  # node -> ModelClient asking its server's counters
        self._calls: dict[str, tuple[int, int]] = {}  # node -> (earlier servers', last count)
        self._stats_next: dict[str, float] = {}  # node -> when to ask its server again
        self.states: dict[str, NodeStatus] = {}
        self.notes: list[str] = []
        self.start_failures: dict[str, str] = {}
        self._forwarders: list[PortForwarder] = []
        self._creds: CredentialsEndpoint | None = None
        self._logs = LogShipper()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self._fps: dict[str, tuple[float, int]] = {}
        self._held: dict[str, bool] = {}  # stream -> paused until its readers are there
        self._held_since = time.monotonic()
        self.started = False

    # -- start ----------------------------------------------------------------------------

    def start(self) -> Runtime:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.started = True
        return self

    def _start(self) -> None:
        ringmod.sweep()
        for d in (self.workdir, self.output_dir, self.logs_dir, self.storage_dir):
            d.mkdir(parents=True, exist_ok=True)
        for c in self.plan.codes:
            self.states[c.node] = NodeStatus(c.node, "code")
        for m in self.plan.models:
            self.states[m.node] = NodeStatus(m.node, "model")
        for cam in self.plan.cameras:
            self.states[cam.stream] = NodeStatus(cam.stream, "camera")
        for s in self.plan.sinks:
            self.states[s.node] = NodeStatus(s.node, "sink")
        if self.plan.codes:
            self._check_isolation()
        prepared = {c.node: self._prepare_code(c) for c in self.plan.codes}
        self._start_models()
        self._make_rings()
        for cam in self.plan.cameras:
            self._start_camera(cam)
        self._start_sink()
        self._creds = CredentialsEndpoint(self.credentials)
        for node, container, host in self.plan.routing:
            try:
                self._forwarders.append(PortForwarder(host, container))
            except OSError as exc:
                raise RunError(
                    f"code node {node!r}: cannot open device port {host}: {exc}",
                    "choose another hostPort in the overrides' networkRoutingRules",
                    node,
                ) from None
        for c in self.plan.codes:
            self._start_code(c, prepared[c.node])
        self._monitor = threading.Thread(target=self._watch, name="runtime-monitor", daemon=True)
        self._monitor.start()

    def _check_isolation(self) -> None:
        if self.isolation is None:
            self.isolation = sandbox.available()
            if self.isolation is None:
                raise RunError(
                    "code nodes need a private mount namespace (for /panorama and "
                    "/opt/aws/panorama) and none is available here",
                    "run as root (as the appliance does), or install bubblewrap "
                    "(apt-get install bubblewrap)",
                )
        elif self.isolation not in sandbox.MODES:
            raise RunError(
                f"isolation {self.isolation!r} is not a sandbox mode",
                f"use one of {', '.join(sandbox.MODES)}, or None to pick the best available",
            )
        elif self.isolation == "bwrap" and not sandbox.bwrap_works():
            raise RunError(
                "isolation 'bwrap' was asked for, but bubblewrap is missing or may not "
                "create namespaces here",
                "apt-get install bubblewrap (and allow unprivileged user namespaces)",
            )

    def _prepare_code(self, c: CodePlan) -> code_mod.PreparedCode:
        node_dir = self.workdir / "nodes" / c.node
        prepared = code_mod.prepare(c, node_dir, self.workdir / "cache")
        self.notes += [f"{c.node}: {n}" for n in prepared.notes]
        return prepared

    def _start_models(self) -> None:
        from panoptes import models

        for m in self.plan.models:
            state = self.states[m.node]
            try:
                compiled = models.compile(m.archive, m.descriptor, cache_dir=self.model_cache)
                server = models.ModelServer(
                    compiled,
                    name=f"{self.instance_id}-{m.node}",
                    socket_dir=self._socket_dir(),
                    intra_op_threads=self.model_threads,
                ).start()
            except models.ModelError as exc:
                state.status, state.detail = ERROR, str(exc)
                raise RunError(f"model node {m.node!r}: {exc}".partition(" (fix: ")[0],
                               _model_fix(m, exc), m.node) from None  # fmt: skip
            except models.ModelServerError as exc:
                state.status, state.detail = ERROR, str(exc)
                raise RunError(f"model node {m.node!r}: {exc}", "", m.node) from None
            self.models[m.node] = server
            state.status, state.pid = RUNNING, server.pid
            self._write_log(m.node, f"model server ready ({compiled.path.name})\n")

    def _socket_dir(self) -> Path | None:
        # AF_UNIX paths stop at 107 bytes and the server adds ~35 (panoptes-model-*/
        # model.sock): a deep workdir (the agent's DATA/instances/<id>) uses /tmp.
        return self.workdir if len(str(self.workdir)) <= 70 else None

    def _make_rings(self) -> None:
        readers: dict[str, int] = {}
        for c in self.plan.codes:
            for streams in c.media_inputs.values():
                for s in streams:
                    readers[s] = readers.get(s, 0) + 1
        for cam in self.plan.cameras:
            # Each reader holds up to two slots; +2: the newest frame and the one written.
            n = min(ringmod.MAX_SLOTS, 2 + 2 * max(1, readers.get(cam.stream, 0)) + 2)
            r = ringmod.FrameRing.create(self._ring_name(cam.stream), FRAME_CAPACITY, n)
            # Every camera waits for its readers: no frame of a file is played to
            # nobody while the application imports and loads. onSignal cameras wait
            # for signal(RESUME) as well.
            r.control = ringmod.CTL_PAUSE
            self._held[cam.stream] = cam.launch != "onSignal"
            self.rings[r.name] = r
            self.camera_rings[cam.stream] = r.name
        for c in self.plan.codes:
            for port, sinks in c.media_outputs.items():
                if not sinks:
                    continue
                tiles = max(1, sum(len(v) for v in c.media_inputs.values()))
                name = self._ring_name(f"{c.node}.{port}")
                r = ringmod.FrameRing.create(name, FRAME_CAPACITY, min(64, 2 * tiles + 6))
                # Files at full speed: every frame the app puts reaches the output too.
                r.in_order = self._lossless()
                self.rings[r.name] = r
                self.output_rings[(c.node, port)] = r.name

    def _lossless(self) -> bool:
        """Files played at full speed (pace 0): every ring delivers every frame."""
        return self.pace <= 0 and not any(is_live(cam.uri) for cam in self.plan.cameras)

    def _ring_name(self, tag: str) -> str:
        # The instance's id keeps two runtimes of one process (the device agent runs
        # one per application instance) from colliding on a camera or node name.
        return ringmod.segment_name(f"{self.instance_id[-12:]}.{tag}")

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _camera_status_file(self, stream: str) -> Path:
        return self.workdir / "cameras" / f"{stream}.json"

    def _start_camera(self, cam: Any) -> None:
        status_file = self._camera_status_file(cam.stream)
        status_file.parent.mkdir(parents=True, exist_ok=True)
        status_file.unlink(missing_ok=True)
        config = {
            "ring": self.camera_rings[cam.stream],
            "uri": cam.uri,
            "name": cam.stream,
            "pace": self.pace,
            "loop": self.loop,
            "max_frames": self.max_frames,
            "status_file": str(status_file),  # why it has no frames (password masked)
        }
        # The config goes in a private file: the URI may carry the camera's password,
        # and a command line is readable by every user (ps).
        config_file = status_file.with_name(f"{cam.stream}.config.json")
        config_file.unlink(missing_ok=True)
        fd = os.open(config_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(config, f)
        p = _Proc(
            cam.stream,
            "camera",
            [sys.executable, "-m", "panoptes.media.source", f"@{config_file}"],
            self._child_env(),
            self.logs_dir / f"{cam.stream}.log",
        )
        p.extra["launch"] = cam.launch
        self.procs[cam.stream] = p
        p.spawn()
        self.states[cam.stream].pid = p.popen.pid if p.popen else None

    def _start_sink(self) -> None:
        if not self.plan.sinks:
            return
        (self.workdir / "sink.json").unlink(missing_ok=True)  # a previous run's
        rings = []
        for s in self.plan.sinks:
            for code_node, port in s.feeds:
                name = self.output_rings.get((code_node, port))
                if name:
                    code = next(c for c in self.plan.codes if c.node == code_node)
                    streams = max(1, sum(len(v) for v in code.media_inputs.values()))
                    rings.append({"ring": name, "streams": streams})
        fps = 30.0
        node = self.plan.sinks[0].node
        config = {
            "rings": rings,
            "mp4": str(self.output_dir / f"{node}.mp4") if self.mp4 else None,
            "fps": fps,
            "mjpeg": (
                None
                if self.mjpeg_port is None
                else {"host": self.mjpeg_host, "port": self.mjpeg_port}
            ),
            "status_file": str(self.workdir / "sink.json"),
            "owner_file": str(self.owner_file) if self.owner_file else None,
            "owner_id": self.instance_id,
        }
        p = _Proc(
            node,
            "sink",
            [sys.executable, "-m", "panoptes.media.sink", json.dumps(config)],
            self._child_env(),
            self.logs_dir / f"{node}.log",
        )
        p.extra["config"] = config
        self.procs[node] = p
        p.spawn()
        self.states[node].status, self.states[node].pid = RUNNING, p.popen.pid

    def _code_env(self, c: CodePlan, node_dir: Path, shim_dir: Path) -> dict[str, str]:
        env = self._child_env()
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                  "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                  "AWS_CONTAINER_AUTHORIZATION_TOKEN", "VIRTUAL_ENV"):  # fmt: skip
            env.pop(k, None)
        sdk_home = str(Path(__import__("panoramasdk").__file__).resolve().parents[1])
        env.update(
            {
                rt_client.ENV_NODE: c.node,
                rt_client.ENV_ADDR: str(node_dir),
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "AppGraph_Uid": self.instance_id,
                # The application role's credentials, like the appliance's container.
                "AWS_CONTAINER_CREDENTIALS_FULL_URI": self._creds.url if self._creds else "",
                "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                "AWS_CONFIG_FILE": "/dev/null",
                "PATH": f"{shim_dir}:{env.get('PATH', '/usr/bin:/bin')}",
                "PYTHONPATH": os.pathsep.join(
                    p for p in (sdk_home, env.get("PYTHONPATH", "")) if p
                ),
                # Two cores are shared by decode, inference and the app: keep math
                # libraries in the app from spinning a pool per core.
                "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "1"),
            }
        )
        env.update(self.app_env)
        return env

    def _start_code(self, c: CodePlan, prepared: code_mod.PreparedCode) -> None:
        node_dir = self.workdir / "nodes" / c.node
        inputs: dict[str, Any] = {}
        for port, (ptype, value) in c.parameters.items():
            inputs[port] = {"type": ptype, "value": value}
        for port, streams in c.media_inputs.items():
            cams = {cam.stream: cam for cam in self.plan.cameras}
            inputs[port] = {
                "type": "media",
                "rings": [
                    {"ring": self.camera_rings[s], "stream": s, "uri": cams[s].uri} for s in streams
                ],
            }
        outputs = {
            port: {"type": "media", "ring": self.output_rings.get((c.node, port))}
            for port in c.media_outputs
        }
        models = {m: str(s.address) for m, s in self.models.items()}
        rt_client.write(node_dir, c.node, inputs, outputs, models)
        app_logs = node_dir / "logs"
        storage = self.storage_dir / c.node
        app_logs.mkdir(parents=True, exist_ok=True)
        storage.mkdir(parents=True, exist_ok=True)
        self._logs.add(app_logs, self.logs_dir / f"{c.node}.log")
        binds = [
            (str(prepared.root), "/panorama"),
            (str(app_logs), "/opt/aws/panorama/logs"),
            (str(storage), "/opt/aws/panorama/storage"),
        ]
        assert self.isolation is not None
        argv = sandbox.command(self.isolation, binds, prepared.argv, str(node_dir / "root"))
        p = _Proc(
            c.node,
            "code",
            argv,
            self._code_env(c, node_dir, prepared.shim_dir),
            self.logs_dir / "console_output.log",
        )
        p.extra["node_dir"] = node_dir
        self.procs[c.node] = p
        self._spawn_code(p)

    def _spawn_code(self, p: _Proc) -> None:
        with contextlib.suppress(FileNotFoundError):
            (p.extra["node_dir"] / rt_client.STARTED).unlink()
        p.spawn(cwd="/")
        st = self.states[p.name]
        st.status, st.pid, st.detail = RUNNING, p.popen.pid if p.popen else None, ""

    # -- supervision ----------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            try:
                with self._lock:
                    self._check()
                self._logs.ship()
            except Exception:  # the monitor must never die silently
                log.exception("runtime monitor")

    def _check(self) -> None:
        now = time.monotonic()
        for p in list(self.procs.values()):
            st = self.states[p.name]
            if p.next_start is not None:
                if now >= p.next_start and not self._stop.is_set():
                    st.restarts += 1
                    if p.role == "code":
                        self._spawn_code(p)
                    else:
                        p.spawn()
                        st.pid = p.popen.pid if p.popen else None
                        if p.role == "camera":  # RUNNING again once frames flow
                            st.status = NOT_AVAILABLE
                continue
            if p.popen is None or p.finished or p.alive():
                if p.role == "camera" and p.alive() and self._watchdog(p, st):
                    continue  # killed: restarted with backoff once it is reaped
                if p.alive() and p.backoff > BACKOFF_MIN and now - p.started_at > STABLE_AFTER:
                    p.backoff = BACKOFF_MIN
                continue
            code = p.popen.returncode
            if p.role == "camera":
                self._camera_exited(p, st, code)
            elif p.role == "code":
                self._code_exited(p, st, code)
            else:
                st.status, st.detail = ERROR, f"exited with code {code}"
                self._schedule(p)
        self._release_cameras()
        for m in self.models:
            self._check_model(m, now)
            if self.states[m].status == RUNNING:
                self._rate(m, self._model_calls(m, now))
        for stream, name in self.camera_rings.items():
            st, r = self.states[stream], self.rings[name]
            if st.status in (RUNNING, PAUSED, NOT_AVAILABLE) and self.procs[stream].alive():
                state = r.state
                st.status = {ringmod.RUNNING: RUNNING, ringmod.PAUSED: PAUSED}.get(
                    state, PAUSED if r.control == ringmod.CTL_PAUSE else NOT_AVAILABLE
                )
                if st.status == RUNNING:
                    st.detail = ""
                elif st.status == NOT_AVAILABLE:
                    st.detail = self._camera_reason(stream) or st.detail
            self._rate(stream, r.latest_seq)
        sink = self._sink_status()
        for s in self.plan.sinks:
            self._rate(s.node, sink.get("frames", 0))
        for c in self.plan.codes:
            self._rate(c.node, self._code_frames(c))

    def _code_frames(self, c: CodePlan) -> int:
        """Frames an application handled: those it put() out, else those it got()."""
        put = [self.rings[n].latest_seq for (node, _), n in self.output_rings.items()
               if node == c.node]  # fmt: skip
        if put:
            return sum(put)
        streams = {s for v in c.media_inputs.values() for s in v}
        others = {s for o in self.plan.codes if o is not c for v in o.media_inputs.values()
                  for s in v}  # fmt: skip
        if streams & others:
            return 0  # a camera shared with another app: its readers are not told apart
        return sum(
            x["taken"] for s in streams for x in self.rings[self.camera_rings[s]].info()["readers"]
        )

    def _check_model(self, node: str, now: float) -> None:
        """Restart a model server that died, on the same address, with backoff."""
        server, st = self.models[node], self.states[node]
        r = self._model_restarts.setdefault(node, _Restart())
        if r.next_start is not None:
            if now >= r.next_start and not self._stop.is_set():
                r.next_start = None
                st.restarts += 1
                try:
                    server.spawn()
                except Exception as exc:  # reported, then retried with backoff
                    st.detail = f"model server restart failed: {exc}"
                    r.schedule(now)
                    return
                r.starting, r.started_at, st.pid = True, now, server.pid
            return
        if r.starting:
            try:
                ready = server.poll_ready(0)
            except Exception as exc:  # it died while loading its model
                r.starting = False
                st.status, st.errors, st.detail = ERROR, st.errors + 1, str(exc)
                self._write_log(node, f"panoptes: {exc}\n")
                r.schedule(now)
                return
            if ready:
                r.starting = False
                st.status, st.detail = RUNNING, ""
                self._write_log(node, "model server ready again (same address)\n")
            return
        if server.is_alive():
            if r.backoff > BACKOFF_MIN and now - r.started_at > STABLE_AFTER:
                r.backoff = BACKOFF_MIN
            return
        st.errors += 1
        st.status = ERROR
        st.detail = f"model server exited with code {server.returncode}; restarting"
        log.warning("model node %s: %s in %.1fs", node, st.detail, r.backoff)
        self._write_log(node, f"panoptes: {st.detail} in {r.backoff:g} s\n")
        r.schedule(now)

    def _model_calls(self, node: str, now: float) -> int:
        """Requests the model server has served (its own counter), for status and FPS.

        Asked at most once a second, with a short timeout and a pause after a failure:
        the monitor holds the runtime's lock meanwhile.
        """
        from panoptes.models import ModelClient

        st = self.states[node]
        if now < self._stats_next.get(node, 0.0):
            return st.frames
        self._stats_next[node] = now + 1.0
        client = self._stats.get(node)
        try:
            if client is None:
                address = self.models[node].address
                client = self._stats[node] = ModelClient(address, timeout=0.2, reconnect_wait=0)
            served = int(client.stats()["requests"])
        except Exception:  # restarting, or busy past the timeout: keep the last count
            self._stats_next[node] = now + 5.0
            self._stats.pop(node, None)
            if client is not None:
                client.close()
            return st.frames
        # A restarted server counts from 0 again: add what the earlier ones served.
        base, last = self._calls.get(node, (0, 0))
        if served < last:
            base += last
        self._calls[node] = (base, served)
        return base + served

    def _readers_ready(self, stream: str) -> bool:
        consumers = [
            c for c in self.plan.codes if any(stream in v for v in c.media_inputs.values())
        ]
        info = self.rings[self.camera_rings[stream]].info()
        live = [x for x in info["readers"] if pid_alive(x["pid"])]
        return len(live) >= len(consumers)

    def _release_cameras(self) -> None:
        waited = time.monotonic() - self._held_since
        for stream, held in self._held.items():
            if held and (self._readers_ready(stream) or waited > READER_WAIT):
                self._held[stream] = False
                self.rings[self.camera_rings[stream]].control = ringmod.CTL_RUN

    def _rate(self, key: str, count: int) -> None:
        now = time.monotonic()
        t0, c0 = self._fps.get(key, (now, count))
        st = self.states[key]
        st.frames = count
        if now - t0 >= 1.0:
            st.fps = (count - c0) / (now - t0)
            self._fps[key] = (now, count)
        elif key not in self._fps:
            self._fps[key] = (now, count)

    def _schedule(self, p: _Proc) -> None:
        p.next_start = time.monotonic() + p.backoff
        p.backoff = min(p.backoff * 2, BACKOFF_MAX)

    def _watchdog(self, p: _Proc, st: NodeStatus) -> bool:
        """Kill a camera source whose heartbeat is past the liveness deadline.

        The gap is logged once, when it starts, and once more when frames flow again;
        the restarts in between follow the usual backoff.
        """
        r = self.rings[self.camera_rings[p.name]]
        info = r.info()
        beat, seq, wall = info["heartbeat"], info["latest_seq"], time.time()
        stall = p.extra.get("stall")
        if stall is not None and seq > stall[1]:
            gap = wall - stall[0]
            self._write_log(p.name, f"panoptes: frames again after a gap of {gap:.1f} s\n")
            log.info("camera %s: frames again after a gap of %.1fs", p.name, gap)
            p.extra.pop("stall")
        if beat >= p.started_wall:
            since, limit = beat, self.liveness_deadline
        else:  # this process has not beaten yet: still importing or opening its stream
            since, limit = p.started_wall, max(self.liveness_deadline, START_GRACE)
        if wall - since <= limit or p.popen is None:
            return False
        detail = f"source stuck: no heartbeat for {wall - since:.1f} s (deadline {limit:g} s)"
        if p.extra.get("stall") is None:
            p.extra["stall"] = (max(beat, p.started_wall), seq)
            log.warning("camera %s: %s; restarting it", p.name, detail)
            self._write_log(p.name, f"panoptes: {detail}; restarting it\n")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.popen.pid, signal.SIGKILL)  # a stuck decoder may ignore SIGTERM
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.popen.wait(5)
        p.extra["watchdog"] = detail
        return True

    def _camera_exited(self, p: _Proc, st: NodeStatus, code: int) -> None:
        r = self.rings[self.camera_rings[p.name]]
        if (detail := p.extra.pop("watchdog", None)) is not None:
            st.status, st.detail = ERROR, detail
            self._schedule(p)
            return
        if code == 0 and r.state == ringmod.ENDED:
            p.finished = True
            st.status, st.detail = NOT_AVAILABLE, "stream ended"
            return
        st.status = ERROR
        why = self._camera_reason(p.name) or self._tail(p.log_path, 1)
        st.detail = f"source exited with code {code}: {why}"
        if code == 2:  # could not open a file: retrying will not help
            p.finished = True
            r.state = ringmod.FAILED
            return
        self._schedule(p)

    def _code_exited(self, p: _Proc, st: NodeStatus, code: int) -> None:
        started = (p.extra["node_dir"] / rt_client.STARTED).exists()
        st.errors += 1
        st.status = ERROR
        if code == sandbox.EXIT_NO_NAMESPACE:
            st.detail = self._tail(p.log_path, 1)
            p.finished = True
            self.start_failures[p.name] = st.detail
            return
        st.detail = f"exited with code {code}" + ("" if started else " before it started")
        self._write_log(p.name, f"panoptes: application process {st.detail}\n")
        if not started:
            self.start_failures[p.name] = st.detail
            if not self.restart_on_start_failure:
                p.finished = True
                return
        self._schedule(p)

    def _camera_reason(self, stream: str) -> str:
        """Why a camera source has no frames, as it last said (its password masked)."""
        try:
            return str(json.loads(self._camera_status_file(stream).read_text())["reason"])
        except (OSError, ValueError, KeyError, TypeError):
            return ""

    def _sink_status(self) -> dict[str, Any]:
        try:
            return json.loads((self.workdir / "sink.json").read_text())
        except (OSError, ValueError):
            return {}

    @staticmethod
    def _tail(path: Path, lines: int = 20) -> str:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def _write_log(self, stream: str, text: str) -> None:
        with (self.logs_dir / f"{stream}.log").open("a") as f:
            f.write(text)

    # -- public API -----------------------------------------------------------------------

    def status(self) -> dict[str, NodeStatus]:
        with self._lock:
            return {k: NodeStatus(**v.__dict__) for k, v in self.states.items()}

    @property
    def output_url(self) -> str | None:
        return self._sink_status().get("url")

    @property
    def owns_output(self) -> bool | None:
        """Whether this app's output is the one shown (None: it has no output node)."""
        if not self.plan.sinks:
            return None
        return bool(self._sink_status().get("owner", False))

    @property
    def output_frames(self) -> int:
        return int(self._sink_status().get("frames", 0))

    def signal(self, node: str, sig: Signal) -> None:
        """PAUSE/RESUME a camera stream (or every stream of a camera node) or a code node."""
        with self._lock:
            streams = [c.stream for c in self.plan.cameras if node in (c.stream, c.node)]
            if streams:
                for s in streams:
                    self._held[s] = False
                    r = self.rings[self.camera_rings[s]]
                    r.control = ringmod.CTL_PAUSE if sig is Signal.PAUSE else ringmod.CTL_RUN
                return
            p = self.procs.get(node)
            if p is None or p.role != "code":
                raise KeyError(f"no camera or code node named {node!r}")
            if p.alive() and p.popen is not None:
                os.killpg(p.popen.pid, signal.SIGSTOP if sig is Signal.PAUSE else signal.SIGCONT)
                self.states[node].status = PAUSED if sig is Signal.PAUSE else RUNNING

    def snapshot(self, stream: str, max_width: int | None = None) -> bytes | None:
        """The newest frame of a camera stream as JPEG (thumbnails); None before the first."""
        from panoptes.media.snapshot import ring_jpeg

        with self._lock:
            name = self.camera_rings.get(stream)
        if name is None:
            raise KeyError(f"no camera stream named {stream!r}")
        return ring_jpeg(name, max_width)

    def app_log(self, node: str | None = None) -> str:
        """The console_output stream, or a node's stream."""
        self._logs.ship()
        return self._tail(self.logs_dir / f"{node or 'console_output'}.log", 10_000)

    def finished(self) -> bool:
        """True when every source is done and every frame was consumed downstream."""
        with self._lock:
            for stream, name in self.camera_rings.items():
                r = self.rings[name]
                if self._held.get(stream) or (
                    self.procs[stream].alive() and not self._readers_ready(stream)
                ):
                    return False  # its applications have not asked for frames yet
                if r.control == ringmod.CTL_PAUSE and r.latest_seq == 0:
                    continue  # an onSignal camera nobody started
                if r.state not in (ringmod.ENDED, ringmod.FAILED) and self.procs[stream].alive():
                    return False
            for c in self.plan.codes:
                if self.procs[c.node].alive() and not self._consumed(c):
                    return False
            return all(self._consumed_ring(self.rings[n]) for n in self.output_rings.values())

    def _consumed(self, c: CodePlan) -> bool:
        for streams in c.media_inputs.values():
            for s in streams:
                if not self._consumed_ring(self.rings[self.camera_rings[s]]):
                    return False
        return True

    @staticmethod
    def _consumed_ring(r: ringmod.FrameRing) -> bool:
        info = r.info()
        latest = info["latest_seq"]
        readers = [x for x in info["readers"] if pid_alive(x["pid"])]
        return all(x["last_seq"] >= latest for x in readers)

    def wait_finished(self, timeout: float | None = None, settle: float = 1.0) -> bool:
        """Wait until ``finished()`` holds for ``settle`` seconds (the app's last put)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        since = None
        while deadline is None or time.monotonic() < deadline:
            if self.finished():
                since = since or time.monotonic()
                if time.monotonic() - since >= settle:
                    return True
            else:
                since = None
            if self.start_failures and not self.restart_on_start_failure:
                return False
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        """Stop everything in order: apps, sources, then let the sink finish its file."""
        self._stop.set()
        if self._monitor is not None:
            self._monitor.join(5)
        with self._lock:
            for role in ("code", "camera", "sink"):
                for p in self.procs.values():
                    if p.role == role:
                        p.next_start = None
                        p.terminate(grace=15.0 if role == "sink" else STOP_GRACE)
                        st = self.states.get(p.name)
                        if st is not None and st.status != ERROR:
                            st.status = NOT_AVAILABLE
            self._release_output()
            for client in self._stats.values():
                client.close()
            self._stats.clear()
            for node, server in self.models.items():
                server.stop()
                self.states[node].status = NOT_AVAILABLE
            self.models.clear()
            for r in self.rings.values():
                r.destroy()
            self.rings.clear()
            for f in self._forwarders:
                f.close()
            self._forwarders.clear()
            if self._creds is not None:
                self._creds.close()
                self._creds = None
            self._logs.ship()

    def _release_output(self) -> None:
        """Hand the shared output back: without an owner file, the sinks still running
        all publish again (the device shows the remaining app)."""
        if self.owner_file is None or not self.plan.sinks:
            return
        with contextlib.suppress(OSError):
            if self.owner_file.read_text().strip() == self.instance_id:
                self.owner_file.unlink()

    def __enter__(self) -> Runtime:
        return self if self.started else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
