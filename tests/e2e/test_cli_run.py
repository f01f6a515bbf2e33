"""`panoptes app run` on a project made with the project commands, as a developer would."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import appkit
import numpy as np
import pytest
import typer
from typer.testing import CliRunner, Result

from panoptes.cli.app import app_cli
from panoptes.cli.run import run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

APP = """
import panoramasdk

class Application(panoramasdk.node):
    def __init__(self):
        self.greeting = self.inputs.greeting.get()
        {extra}

    def run(self):
        while True:
            streams = self.inputs.video_in.get()
            for s in streams:
                s.add_label(self.greeting, 0.1, 0.2)
            self.outputs.video_out.put(streams)

Application().run()
"""


def _cli() -> typer.Typer:
    cli = typer.Typer()
    cli.command("run")(run)
    cli.command("noop")(lambda: None)  # a group, as `panoptes app` mounts it
    return cli


def _project(tmp_path: Path, extra: str = "") -> Path:
    runner = CliRunner()
    for args in (
        ["init-project", "--name", "proj", "--parent-dir", str(tmp_path)],
        ["create-package", "--name", "CODE", "--project-dir", str(tmp_path / "proj")],
        ["add-panorama-package", "--type", "camera", "--name", "camera_node",
         "--project-dir", str(tmp_path / "proj")],
        ["add-panorama-package", "--type", "data_sink", "--name", "output_node",
         "--project-dir", str(tmp_path / "proj")],
    ):  # fmt: skip
        result = runner.invoke(app_cli, args)
        assert result.exit_code == 0, result.output
    project = tmp_path / "proj"
    pkg = project / "packages" / "123456789012-CODE-1.0"
    (pkg / "src").mkdir(exist_ok=True)
    (pkg / "src" / "application.py").write_text(APP.format(extra=extra))
    desc = json.loads((pkg / "descriptor.json").read_text())
    desc["runtimeDescriptor"]["entry"]["name"] = "/panorama/application.py"
    (pkg / "descriptor.json").write_text(json.dumps(desc))
    doc = json.loads((pkg / "package.json").read_text())
    doc["nodePackage"]["interfaces"] = [
        {
            "name": "interface",
            "category": "business_logic",
            "asset": "code_asset",
            "inputs": [
                {"name": "video_in", "type": "media"},
                {"name": "greeting", "type": "string"},
            ],
            "outputs": [{"name": "video_out", "type": "media"}],
        }
    ]
    (pkg / "package.json").write_text(json.dumps(doc))
    graph_path = project / "graphs" / "proj" / "graph.json"
    graph = json.loads(graph_path.read_text())
    g = graph["nodeGraph"]
    g["nodes"] += [
        {"name": "code_node", "interface": "123456789012::CODE.interface"},
        {"name": "greeting", "interface": "string", "value": "hello", "overridable": True},
    ]
    g["edges"] += [
        {"producer": "camera_node.video_out", "consumer": "code_node.video_in"},
        {"producer": "code_node.video_out", "consumer": "output_node.video_in"},
        {"producer": "greeting", "consumer": "code_node.greeting"},
    ]
    g["packages"] = [p for p in g["packages"] if p["name"] != "123456789012::MODEL"]
    graph_path.write_text(json.dumps(graph))
    return project


def test_app_run_on_a_new_project(tmp_path, clip):
    project = _project(tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        _cli(),
        ["run", "--project-dir", str(project), "--camera", f"camera_node={clip}",
         "--param", "greeting=bonjour", "--output-dir", str(out), "--max-frames", "20"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    frames = appkit.read_frames(out / "output_node.mp4")
    assert 5 <= len(frames) <= 20
    assert (out / "logs" / "console_output.log").exists()
    assert (out / "logs" / "camera_node.log").exists()


def test_placeholder_camera_without_camera_flag(tmp_path):
    project = _project(tmp_path)
    result = CliRunner().invoke(_cli(), ["run", "--project-dir", str(project)])
    assert result.exit_code == 1
    assert "'camera_node'" in result.output and "--camera camera_node=" in result.output


def test_app_raising_in_init_exits_with_its_traceback(tmp_path, clip):
    project = _project(tmp_path, extra="raise ValueError('bad configuration in init')")
    result = CliRunner().invoke(
        _cli(),
        ["run", "--project-dir", str(project), "--camera", f"camera_node={clip}",
         "--output-dir", str(tmp_path / "out")],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "ValueError: bad configuration in init" in result.output
    assert "code_node" in result.output


def test_missing_video_file_names_the_camera(tmp_path):
    project = _project(tmp_path)
    result = CliRunner().invoke(
        _cli(),
        ["run", "--project-dir", str(project), "--camera", "camera_node=/nope/missing.mp4",
         "--output-dir", str(tmp_path / "out"), "--timeout", "20"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "'camera_node'" in result.output and "missing.mp4" in result.output


def test_a_404_camera_is_explained_and_app_run_gives_up(tmp_path, rtsp_server):
    project = _project(tmp_path)
    base = rtsp_server.url.split("://", 1)[1].rsplit("/", 1)[0]
    uri = f"rtsp://admin:hunter2-secret@{base}/no-such-path"
    result = CliRunner().invoke(
        _cli(),
        ["run", "--project-dir", str(project), "--camera", f"camera_node={uri}",
         "--output-dir", str(tmp_path / "out"), "--camera-wait", "3", "--timeout", "120"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "camera node 'camera_node'" in result.output
    assert "Server returned 404 Not Found" in result.output
    assert "admin:***@" in result.output and "hunter2-secret" not in result.output
    assert "fix: check the --camera URI" in result.output
    logs = "".join(p.read_text() for p in (tmp_path / "out" / "logs").glob("*.log"))
    assert "hunter2-secret" not in logs


README = Path(__file__).resolve().parents[2] / "README.md"


def _walkthrough_blocks() -> list[str]:
    """The ```bash blocks of the README's `app run` walk-through, in order."""
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- walkthrough:app-run start")
    section = text[start : text.index("<!-- walkthrough:app-run end -->", start)]
    return re.findall(r"^```bash\n(.*?)^```$", section, flags=re.S | re.M)


def _shims(tmp: Path) -> dict[str, str]:
    """`panoptes` and `python` as the README's reader has them (the virtualenv's)."""
    import panoptes

    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for name, command in (
        ("panoptes", f"{sys.executable} -m panoptes"),
        ("python", sys.executable),
    ):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
        shim.chmod(0o755)
    src = str(Path(panoptes.__file__).resolve().parents[1])
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": src}


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess, dict[str, str]]:
    """The README's walk-through run once, as written: (its folder, the run, env)."""
    blocks = _walkthrough_blocks()
    assert len(blocks) == 5, "the README's walk-through changed shape: update this test"
    tmp = tmp_path_factory.mktemp("readme")
    work = tmp / "walk"
    work.mkdir()
    script = "set -euo pipefail\n" + "\n".join(blocks)
    env = _shims(tmp)
    done = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    return work, done, env


def _copy(walkthrough, tmp_path: Path) -> Path:
    work, done, _ = walkthrough
    assert done.returncode == 0, done.stdout + done.stderr
    project = tmp_path / "hello_app"
    shutil.copytree(work / "hello_app", project, ignore=shutil.ignore_patterns("out"))
    return project


def test_the_readme_walkthrough_as_written(walkthrough):
    work, done, env = walkthrough
    assert done.returncode == 0, done.stdout + done.stderr
    project = work / "hello_app"
    out = project / "out"
    assert "output video:" in done.stdout and "logs:" in done.stdout
    for stream in ("console_output", "camera_node", "model_asset", "output_node"):
        assert (out / "logs" / f"{stream}.log").exists(), stream
    labelled = appkit.read_frames(out / "output_node.mp4")
    # The clip plays at its own rate, like a camera: an app that falls behind on a busy
    # machine skips frames (the newest wins), so not every one of the 180 is there.
    assert 20 <= len(labelled) <= 180
    # The same clip with a threshold no probability reaches: no label (--param works);
    # at full speed every frame of the file comes through, in order.
    again = subprocess.run(
        ["panoptes", "app", "run", "--camera", "camera_node=clip.mp4", "--output-dir", "plain",
         "--param", "threshold=1.5", "--full-speed"],
        cwd=project, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    plain = appkit.read_frames(project / "plain" / "output_node.mp4")
    assert len(plain) == 180
    # The label ("blue 1.00") is drawn top left: there, and only there, a labelled frame
    # differs from the same frame of the clip unlabelled (found by the rest of the picture:
    # the real-time run may have skipped frames).
    shown = labelled[10].astype(int)
    same = min(plain, key=lambda f: np.abs(shown[:, 400:] - f[:, 400:].astype(int)).max())
    diff = np.abs(shown - same.astype(int))
    assert diff[10:60, 20:200].max() > 60
    assert diff[:, 400:].max() < 40
    # The colour of the clip goes through: frame 10 is blue (BGR), the last one red.
    assert labelled[10][200, 320].argmax() == 0 and labelled[-5][200, 320].argmax() == 2


def _run(project: Path, *args: str) -> Result:
    return CliRunner().invoke(
        _cli(), ["run", "--project-dir", str(project), "--output-dir", str(project / "out"),
                 "--camera", f"camera_node={project / 'clip.mp4'}", "--timeout", "120", *args],
    )  # fmt: skip


def test_a_graph_that_does_not_resolve(walkthrough, tmp_path):
    project = _copy(walkthrough, tmp_path)
    graph = project / "graphs" / "hello_app" / "graph.json"
    graph.write_text(graph.read_text().replace("code_node.video_in", "code_node.vidoe_in"))
    result = _run(project)
    assert result.exit_code == 1, result.output
    assert "the application does not resolve" in result.output
    assert "'code_node' has no input 'vidoe_in'" in result.output
    assert "did you mean 'video_in'?" in result.output
    assert not (project / "out" / "output_node.mp4").exists()  # nothing was started


def test_a_missing_model_file(walkthrough, tmp_path):
    project = _copy(walkthrough, tmp_path)
    (model,) = (project / "assets").glob("*.onnx")
    model.unlink()
    result = _run(project)
    assert result.exit_code == 1, result.output
    assert f"model node 'model_asset': model file {model} is missing" in result.output
    assert "fix: re-import it with panoptes app add-raw-model" in result.output


def test_a_descriptor_that_does_not_match_its_model(walkthrough, tmp_path):
    project = _copy(walkthrough, tmp_path)
    pkg = project / "packages" / "123456789012-TINY_MODEL-1.0"
    stored = json.loads((pkg / "package.json").read_text())["nodePackage"]["assets"][0]
    descriptor = project / "assets" / stored["implementations"][0]["descriptorUri"]
    descriptor.write_text(descriptor.read_text().replace("224, 224", "320, 320"))
    result = _run(project)
    assert result.exit_code == 1, result.output
    assert (
        "model node 'model_asset': descriptor input 'data' has shape [1, 3, 320, 320] but the "
        "model expects data [1, 3, 224, 224]" in result.output
    )
    assert (
        f"edit {pkg / 'descriptor.json'}, then store it again with panoptes app add-raw-model"
        in result.output
    )
    assert result.output.count("fix:") == 1


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_kill_stops_cleanly(walkthrough, tmp_path, sig):
    project = _copy(walkthrough, tmp_path)
    _, _, env = walkthrough
    out = tmp_path / "out"
    proc = subprocess.Popen(
        ["panoptes", "app", "run", "--camera", "camera_node=clip.mp4", "--loop",
         "--output-dir", str(out)],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        status = out / ".runtime" / "sink.json"

        def frames() -> int:
            try:
                return int(json.loads(status.read_text())["frames"])
            except (OSError, ValueError, KeyError):
                return 0

        appkit.wait_until(lambda: frames() > 30, timeout=120, what="the looping run's output")
        children = _descendants(proc.pid)
        assert len(children) >= 4  # camera, model server, application, sink
        proc.send_signal(sig)  # SIGINT: what Ctrl-C sends to the foreground process
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, stdout + stderr
    assert "stopping" in stderr
    assert "output video:" in stdout
    assert len(appkit.read_frames(out / "output_node.mp4")) > 30  # a finished, readable file
    # Every process of the run is gone (zombies of reparented ones do not count).
    appkit.wait_until(lambda: not _running(children), timeout=20, what="no process left")


def _running(pids: list[int]) -> list[str]:
    left = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] != "Z":
            left.append(f"{pid} {cmd[:100]}")
    return left


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for child in Path("/proc").glob("[0-9]*"):
            try:
                ppid = int((child / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == parent:
                found.append(int(child.name))
                todo.append(int(child.name))
    return found


def test_overrides_replace_a_parameter_as_at_deployment(walkthrough, tmp_path):
    project = _copy(walkthrough, tmp_path)
    overrides = project / "graphs" / "hello_app" / "override.json"
    overrides.write_text(
        json.dumps(
            {
                "nodeGraphOverrides": {
                    "envelopeVersion": "2021-01-01",
                    "packages": [],
                    "nodes": [{"name": "strict", "interface": "float32", "value": 1.5}],
                    "nodeOverrides": [{"replace": "threshold", "with": [{"name": "strict"}]}],
                }
            }
        )
    )
    result = _run(project, "--overrides", str(overrides), "--max-frames", "30")
    assert result.exit_code == 0, result.output
    strict = appkit.read_frames(project / "out" / "output_node.mp4")
    work, _, _ = walkthrough
    labelled = appkit.read_frames(work / "hello_app" / "out" / "output_node.mp4")
    # No probability reaches 1.5: the label region is the clip's plain blue.
    assert np.abs(strict[10].astype(int) - labelled[10].astype(int))[10:60, 20:200].max() > 60
    assert np.ptp(strict[10][10:60, 20:200].reshape(-1, 3), axis=0).max() < 40
