"""`panoptes app run`: run a Panorama application locally on the real runtime.

Thin: resolve the graph (panoptes.spec), plan and run it (panoptes.runtime), print
live status with rich. Exit codes: 0 finished or stopped, 1 the application could
not be run (the message names the node and the fix), 2 it failed at start (its
traceback is printed).
"""

from __future__ import annotations

import signal
import time
import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from panoptes.runtime import RunError, Runtime, make_plan
from panoptes.spec import ManifestError, resolve

err = Console(stderr=True, soft_wrap=True, highlight=False)
out = Console(soft_wrap=True, highlight=False)


def _pairs(items: list[str], flag: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key or not value:
            raise RunError(f"{flag} {item!r} is not NAME=VALUE", f"write {flag} NAME=VALUE")
        found.setdefault(key.strip(), []).append(value.strip())
    return found


def _graph(project: Path, graph: Path | None) -> Path:
    if graph is not None:
        return graph if graph.is_absolute() else project / graph
    found = sorted((project / "graphs").glob("*/graph.json"))
    if len(found) != 1:
        raise RunError(
            f"{'no' if not found else len(found)} graphs/*/graph.json in {project}",
            "pass --graph graphs/NAME/graph.json",
        )
    return found[0]


def _param_overrides(graph_doc: dict, params: dict[str, list[str]]) -> dict:
    """Rewrite parameter node values in the graph document (before resolving)."""
    nodes = {n["name"]: n for n in graph_doc["nodeGraph"]["nodes"]}
    for name, values in params.items():
        node = nodes.get(name)
        kind = node.get("interface") if node else None
        if kind not in ("int32", "float32", "boolean", "string"):
            params_known = [n for n, v in nodes.items() if "value" in v]
            raise RunError(
                f"--param {name}: the graph has no parameter node {name!r}",
                f"use one of: {', '.join(params_known) or 'none'}",
                name,
            )
        text = values[-1]
        try:
            if kind == "int32":
                value: object = int(text)
            elif kind == "float32":
                value = float(text)
            elif kind == "boolean":
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(text)
                value = text.lower() in ("true", "1")
            else:
                value = text
        except ValueError:
            raise RunError(
                f"--param {name}={text}: not a valid {kind}", f"give {name} a {kind} value", name
            ) from None
        node["value"] = value
    return graph_doc


def _table(rt: Runtime, started: float) -> Table:
    t = Table(title=f"{rt.instance_id}  {time.monotonic() - started:5.1f}s", expand=False)
    for col in ("node", "role", "status", "fps", "frames", "errors"):
        t.add_column(col, no_wrap=True)
    t.add_column("detail", overflow="fold", max_width=90)
    for s in rt.status().values():
        colour = {"RUNNING": "green", "ERROR": "red", "PAUSED": "yellow"}.get(s.status, "dim")
        t.add_row(
            s.node, s.role, f"[{colour}]{s.status}[/]", f"{s.fps:5.1f}", str(s.frames),
            str(s.errors), escape(s.detail[:300]),
        )  # fmt: skip
    return t


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _failed_cameras(rt: Runtime) -> list:
    """Cameras in error, or that never sent a frame and said why."""
    return [
        s
        for s in rt.status().values()
        if s.role == "camera" and (s.status == "ERROR" or (s.frames == 0 and s.detail))
    ]


def _no_camera(rt: Runtime) -> bool:
    """Every camera is without a frame for a reason (nothing will come by waiting)."""
    cams = [s for s in rt.status().values() if s.role == "camera"]
    return bool(cams) and len(_failed_cameras(rt)) == len(cams)


def run(
    project_dir: Annotated[Path, typer.Option("--project-dir", help="Project folder.")] = Path("."),
    graph: Annotated[
        Path | None, typer.Option("--graph", help="graphs/NAME/graph.json (default: the only one)")
    ] = None,
    overrides: Annotated[
        Path | None, typer.Option("--overrides", help="An overrides document (as at deploy).")
    ] = None,
    camera: Annotated[
        list[str] | None,
        typer.Option("--camera", help="NODE=URI: a video file, rtsp://... or /dev/video0."),
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="NAME=VALUE for a parameter node.")
    ] = None,
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", help="Output video and logs (default: run/).")
    ] = None,
    max_frames: Annotated[
        int, typer.Option("--max-frames", help="Stop after N frames per camera (0: no limit).")
    ] = 0,
    view: Annotated[
        bool, typer.Option("--view", help="Open the live output in a browser.")
    ] = False,
    loop: Annotated[bool, typer.Option("--loop", help="Replay video files forever.")] = False,
    full_speed: Annotated[
        bool,
        typer.Option(
            "--full-speed",
            help="Play video files as fast as the app takes them, every frame in order "
            "(default: at their own frame rate, like a camera: a slow app skips frames).",
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Stop after this many seconds (0: none).")
    ] = 0.0,
    camera_wait: Annotated[
        float,
        typer.Option(
            "--camera-wait",
            help="Give up when a camera has sent no frame after this many seconds and says "
            "why (unreachable, 404, wrong password); 0: keep retrying, as a device does.",
        ),
    ] = 30.0,
) -> None:
    """Run the application on this machine: real cameras or files, real models, MP4 out."""
    project = project_dir.resolve()
    out_dir = (output_dir or project / "run").resolve()
    try:
        cams = _pairs(camera or [], "--camera")
        params = _pairs(param or [], "--param")
        graph_path = _graph(project, graph)
        import json

        try:
            graph_doc = json.loads(graph_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RunError(f"cannot read {graph_path}: {exc}", "fix the path or the JSON") from None
        graph_doc = _param_overrides(graph_doc, params)
        app = resolve(
            graph_doc,
            str(overrides) if overrides else None,
            project / "packages",
            deployment=False,
            graph_source=str(graph_path),
        )
        plan = make_plan(app, project, cams)
    except ManifestError as exc:
        err.print(f"[red]error:[/] the application does not resolve:\n{exc}")
        raise typer.Exit(1) from None
    except RunError as exc:
        err.print(f"[red]error:[/] {exc.message}")
        if exc.fix:
            err.print(f"[cyan]fix:[/] {exc.fix}")
        raise typer.Exit(1) from None
    # This run's logs only: the failure report quotes them, a previous run's lines
    # would only mislead (a device keeps its streams; a local run starts afresh).
    for old_log in (out_dir / "logs").glob("*.log"):
        old_log.unlink()
    rt = Runtime(
        plan,
        out_dir / ".runtime",
        output_dir=out_dir,
        storage_dir=project / ".panoptes" / "storage",
        max_frames=max_frames,
        loop=loop,
        pace=0.0 if full_speed else 1.0,
        restart_on_start_failure=False,
        model_cache=None,
    )
    started = time.monotonic()
    code = 0
    # `kill` (SIGTERM) stops the run as Ctrl-C does: in order, the video file finished.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with err.status("starting: compiling models, starting nodes..."):
            rt.start()
        for note in rt.notes:
            err.print(f"[yellow]note:[/] {note}")
        if rt.output_url:
            err.print(f"live output: {rt.output_url}")
            if view:
                webbrowser.open(rt.output_url)
        done_since = None
        with Live(_table(rt, started), console=err, refresh_per_second=2, transient=False) as live:
            while True:
                live.update(_table(rt, started))
                if rt.start_failures:
                    code = 2
                    break
                # Finished for a second: the application's last put() has reached the sink.
                if not loop and rt.finished():
                    done_since = done_since or time.monotonic()
                    if time.monotonic() - done_since >= 1.0:
                        break
                else:
                    done_since = None
                if timeout and time.monotonic() - started > timeout:
                    break
                if camera_wait and time.monotonic() - started > camera_wait and _no_camera(rt):
                    code = 1
                    break
                time.sleep(0.25)
        if not err.is_terminal:
            err.print()  # the last table has no line end when not on a terminal
    except RunError as exc:
        err.print(f"[red]error:[/] {exc.message}")
        if exc.fix:
            err.print(f"[cyan]fix:[/] {exc.fix}")
        code = 1
    except KeyboardInterrupt:
        err.print("stopping (Ctrl-C or SIGTERM)")
    finally:
        rt.stop()
        signal.signal(signal.SIGTERM, previous)
    if code == 2:
        for node, detail in rt.start_failures.items():
            err.print(f"[red]error:[/] code node {node!r} failed to start: {detail}")
            console = rt.app_log()
            node_log = rt.app_log(node)
            if console.strip():
                err.print(f"--- console_output ---\n{console[-4000:]}", markup=False)
            if node_log.strip():
                err.print(f"--- {node} log ---\n{node_log[-4000:]}", markup=False)
        err.print("[cyan]fix:[/] correct the application code (the traceback above), then rerun")
        raise typer.Exit(2)
    failed = _failed_cameras(rt)
    for s in failed:
        err.print(f"[red]error:[/] camera node {s.node!r}: {escape(s.detail)}")
    if failed:
        err.print("[cyan]fix:[/] check the --camera URI (file path, rtsp:// address, credentials)")
        code = code or 1
    if code:
        raise typer.Exit(code)
    video = out_dir / f"{plan.sinks[0].node}.mp4" if plan.sinks else None
    if video is not None and video.is_file():
        out.print(f"output video: {video} ({rt.output_frames} frames)")
    out.print(f"logs: {out_dir / 'logs'}")
