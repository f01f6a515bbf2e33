"""`panoptes app`: what a developer sees on the command line, on real project folders."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

import model_nets as nets
from panoptes.cli.app import app_cli
from panoptes.cli.main import app as main_app
from panoptes.spec import DirectoryPackages, resolve, validate_application

ACCOUNT = "123456789012"
TORCH = "torch not installed: pip install 'panoptes[torch]' (CI installs it)"
COMMANDS = [
    "init-project",
    "create-package",
    "add-panorama-package",
    "add-raw-model",
    "build-container",
    "export-container",
    "import-application",
    "package-application",
    "run",
]


def run(*args: str | Path, code: int = 0):
    result = CliRunner().invoke(app_cli, [str(a) for a in args])
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = run(command, "--help")
    assert "Example: panoptes app " + command in " ".join(result.stdout.split())


def test_account_id_help_explains_the_default() -> None:
    text = " ".join(run("create-package", "--help").stdout.split())
    assert "PANOPTES_ACCOUNT_ID" in text and ACCOUNT in text


def test_help_says_how_we_differ_from_panorama_cli() -> None:
    text = " ".join(run("import-application", "--help").stdout.split())
    assert "blind string replace" in text and "every graph folder" in text
    assert "exits 1" in text


def test_installed_entry_point_mounts_app() -> None:
    exe = Path(sys.executable).with_name("panoptes")
    if not exe.exists():
        pytest.skip("panoptes is not installed in this environment")
    proc = subprocess.run([exe, "app", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "import-application" in proc.stdout


def test_outside_a_project_folder(tmp_path: Path) -> None:
    result = run("create-package", "--name", "X", "--project-dir", tmp_path, code=1)
    assert "is not a project folder" in result.stderr
    assert "fix:" in result.stderr


def test_init_project_twice_exits_1(tmp_path: Path) -> None:
    run("init-project", "--name", "app", "--parent-dir", tmp_path)
    result = run("init-project", "--name", "app", "--parent-dir", tmp_path, code=1)
    assert "already exists" in result.stderr


def test_s3_uri_is_refused_with_the_way_out(tmp_path: Path) -> None:
    run("init-project", "--name", "app", "--parent-dir", tmp_path)
    result = run(
        "add-raw-model", "--model-asset-name", "m", "--model-s3-uri", "s3://b/m.tar.gz",
        "--descriptor-path", "d.json", "--project-dir", tmp_path / "app", code=1,
    )  # fmt: skip
    assert "--model-local-path" in result.stderr


def test_archive_without_the_frameworks_model_exits_1(tmp_path: Path) -> None:
    run("init-project", "--name", "app", "--parent-dir", tmp_path)
    root = tmp_path / "app"
    run("create-package", "--name", "M", "--type", "Model", "--project-dir", root)
    desc = tmp_path / "descriptor.json"
    desc.write_text(
        '{"mlModelDescriptor": {"envelopeVersion": "2021-01-01", "framework": "TENSORFLOW",'
        ' "inputs": [{"name": "x", "shape": [1, 224, 224, 3]}]}}'
    )
    archive = tmp_path / "m.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.addfile(tarfile.TarInfo("model.pth"), io.BytesIO(b""))
    result = run(
        "add-raw-model", "--model-asset-name", "m", "--model-local-path", archive,
        "--descriptor-path", desc, "--packages-path", root / "packages" / f"{ACCOUNT}-M-1.0",
        "--project-dir", root, code=1,
    )  # fmt: skip
    assert f"error: {archive}: the archive has no TensorFlow model" in result.stderr
    assert "it contains: model.pth" in result.stderr
    assert "fix: package a TENSORFLOW model, or correct mlModelDescriptor.framework" in (
        result.stderr
    )
    assert list((root / "assets").iterdir()) == []


def _model_project(tmp_path: Path, shape: list[int]) -> tuple[Path, Path, Path]:
    """A project with a model package whose PYTORCH descriptor has input data `shape`."""
    run("init-project", "--name", "app", "--parent-dir", tmp_path)
    root = tmp_path / "app"
    run("create-package", "--name", "M", "--type", "Model", "--project-dir", root)
    pkg = root / "packages" / f"{ACCOUNT}-M-1.0"
    desc = pkg / "descriptor.json"
    desc.write_text(
        '{"mlModelDescriptor": {"envelopeVersion": "2021-01-01", "framework": "PYTORCH",'
        f' "inputs": [{{"name": "data", "shape": {shape}}}]}}}}'
    )
    return root, pkg, desc


def test_model_that_does_not_fit_its_descriptor_exits_1_and_writes_nothing(
    tmp_path: Path,
) -> None:
    pytest.importorskip("torch", reason=TORCH)
    root, pkg, desc = _model_project(tmp_path, [1, 3, 224, 224])
    archive = nets.tiny_torchscript_archive(tmp_path / "m.tar.gz", shape=(1, 3, 32, 32))
    package_json = (pkg / "package.json").read_bytes()
    result = run(
        "add-raw-model", "--model-asset-name", "m", "--model-local-path", archive,
        "--descriptor-path", desc, "--packages-path", pkg, "--project-dir", root, code=1,
    )  # fmt: skip
    assert "does not run on the descriptor's input shape(s) (data [1, 3, 224, 224])" in (
        result.stderr
    )
    assert "fix: set mlModelDescriptor.inputs[].shape to the shape the model was exported for" in (
        result.stderr
    )
    assert list((root / "assets").iterdir()) == []
    assert (pkg / "package.json").read_bytes() == package_json


def test_model_without_its_converter_is_imported_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, pkg, desc = _model_project(tmp_path, [1, 3, 32, 32])
    archive = nets.tar_gz(tmp_path / "m.tar.gz", {"model.pth": nets.torchscript_lookalike()})
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    result = run(
        "add-raw-model", "--model-asset-name", "m", "--model-local-path", archive,
        "--descriptor-path", desc, "--packages-path", pkg, "--project-dir", root,
    )  # fmt: skip
    assert "note: m.tar.gz: the model's input names and shapes were not checked" in result.stderr
    assert "run `pip install 'panoptes[torch]'` and import again" in result.stderr
    assert len(list((root / "assets").iterdir())) == 2  # the model and its descriptor


def test_export_container_without_engine_exits_1(tmp_path: Path) -> None:
    run("init-project", "--name", "app", "--parent-dir", tmp_path)
    root = tmp_path / "app"
    run("create-package", "--name", "CODE", "--project-dir", root)
    result = run(
        "export-container", "--container-asset-name", "code", "--container-image-uri", "app:1",
        "--package-path", root / "packages" / f"{ACCOUNT}-CODE-1.0", "--engine", "none",
        "--project-dir", root, code=1,
    )  # fmt: skip
    assert "no Docker or Podman engine answers" in result.stderr


def test_import_application_json_error_exits_1_naming_the_spot(
    sample_app: Path, tmp_path: Path
) -> None:
    root = _copy(sample_app, tmp_path / "sample")
    (root / "graphs" / "my-app" / "graph.json").write_text('{\n  "nodeGraph": {\n    oops\n')
    result = run(
        "import-application", "--account-id", "210987654321", "--project-dir", root, code=1
    )
    assert "graph.json:3:5: invalid JSON" in result.stderr
    assert (root / "packages" / f"{ACCOUNT}-SAMPLE_CODE-1.0").is_dir()


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    for p in [dst, *dst.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dst


# ---- the acceptance round trip -------------------------------------------------------


def _build_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """init-project → 3 packages + HDMI sink → add-raw-model → build-container → wire graph."""
    run("init-project", "--name", "app", "--parent-dir", tmp_path)
    root = tmp_path / "app"
    monkeypatch.chdir(root)  # like panorama-cli: commands run from the project folder
    run("create-package", "--name", "CODE", "--type", "Container")
    run("create-package", "--name", "MODEL", "--type", "Model")
    run("create-package", "--name", "CAM", "--type", "Camera")
    run("add-panorama-package", "--type", "data_sink", "--name", "output_node")

    model_pkg = Path("packages") / f"{ACCOUNT}-MODEL-1.0"
    (model_pkg / "descriptor.json").write_text(
        json.dumps(
            {
                "mlModelDescriptor": {
                    "envelopeVersion": "2021-01-01",
                    "framework": "PYTORCH",
                    "inputs": [{"name": "data", "shape": [1, 3, 32, 32]}],
                }
            },
            indent=4,
        )
    )
    archive = nets.tiny_torchscript_archive(tmp_path / "model.tar.gz", shape=(1, 3, 32, 32))
    out = run(
        "add-raw-model", "--model-asset-name", "model_asset", "--model-local-path", archive,
        "--descriptor-path", model_pkg / "descriptor.json", "--packages-path", model_pkg,
    ).stdout  # fmt: skip
    assert '"type": "model"' in out

    code_pkg = Path("packages") / f"{ACCOUNT}-CODE-1.0"
    (code_pkg / "src" / "app.py").write_text("print('panoptes')\n")
    (code_pkg / "requirements.txt").write_text("")
    desc = code_pkg / "descriptor.json"
    desc.write_text(desc.read_text().replace("<entry_file_name_under_src>", "app.py"))
    out = run(
        "build-container", "--container-asset-name", "code_asset", "--package-path", code_pkg,
        "--engine", "none",
    ).stdout  # fmt: skip
    assert "panoptes-source-asset" in out and "successfully built at" in out

    # The developer wires the graph as the guide shows: a threshold input on the code,
    # camera -> code -> HDMI edges and a float32 parameter node.
    pkg = json.loads((code_pkg / "package.json").read_text())
    pkg["nodePackage"]["interfaces"][0]["inputs"].append({"name": "threshold", "type": "float32"})
    (code_pkg / "package.json").write_text(json.dumps(pkg, indent=4))
    graph_path = Path("graphs/app/graph.json")
    graph = json.loads(graph_path.read_text())
    graph["nodeGraph"]["nodes"].append(
        {
            "name": "detection_threshold",
            "interface": "float32",
            "value": 0.5,
            "overridable": True,
            "decorator": {"title": "Threshold", "description": "Minimum confidence."},
        }
    )
    graph["nodeGraph"]["edges"] = [
        {"producer": "CAM.video_out", "consumer": "code_asset_node.video_in"},
        {"producer": "code_asset_node.video_out", "consumer": "output_node.video_in"},
        {"producer": "detection_threshold", "consumer": "code_asset_node.threshold"},
    ]
    graph_path.write_text(json.dumps(graph, indent=4))
    return root


@pytest.mark.e2e
def test_round_trip_builds_a_complete_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch", reason=TORCH)
    root = _build_app(tmp_path, monkeypatch)
    graph = json.loads((root / "graphs/app/graph.json").read_text())["nodeGraph"]
    assert [p["name"] for p in graph["packages"]] == [
        f"{ACCOUNT}::CODE",
        f"{ACCOUNT}::MODEL",
        f"{ACCOUNT}::CAM",
        "panorama::hdmi_data_sink",
    ]
    assert {n["name"]: n["interface"] for n in graph["nodes"]} == {
        "CAM": f"{ACCOUNT}::CAM.rtsp_interface",
        "output_node": "panorama::hdmi_data_sink.hdmi0",
        "model_asset": f"{ACCOUNT}::MODEL.model_asset_interface",
        "code_asset_node": f"{ACCOUNT}::CODE.code_asset_interface",
        "detection_threshold": "float32",
    }
    # Every asset file a package.json names is in assets/, and nothing else is.
    named = set()
    for pkg in (root / "packages").iterdir():
        for asset in json.loads((pkg / "package.json").read_text())["nodePackage"]["assets"]:
            for impl in asset["implementations"]:
                if impl["type"] != "system":
                    named |= {impl["assetUri"], impl["descriptorUri"]}
    assert named == {p.name for p in (root / "assets").iterdir()}
    assert len(named) == 4


@pytest.mark.e2e
def test_round_trip_validates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch", reason=TORCH)
    root = _build_app(tmp_path, monkeypatch)
    graph = json.loads((root / "graphs/app/graph.json").read_text())
    report = validate_application(graph, None, DirectoryPackages(root / "packages"))
    assert report.ok, "\n".join(str(p) for p in report.errors)
    # The plan wires the project's own camera package through the code to the output.
    plan = resolve(graph, None, DirectoryPackages(root / "packages"))
    assert {n.role for n in plan.nodes.values()} == {"camera", "code", "model", "sink", "parameter"}
    (stream,) = plan.camera_streams["code_asset_node.video_in"]
    assert stream.package is not None and stream.package.name == "CAM"
    # And the CLI says the same.
    res = CliRunner().invoke(
        main_app, ["manifest", "validate", str(root / "graphs/app/graph.json")]
    )
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("valid")


@pytest.mark.e2e
def test_import_application_on_the_sample_app(sample_app: Path, tmp_path: Path) -> None:
    root = _copy(sample_app, tmp_path / "sample")
    new = "210987654321"
    out = run("import-application", "--account-id", new, "--project-dir", root).stdout
    assert f"account {ACCOUNT} -> {new}" in out
    assert sorted(p.name for p in (root / "packages").iterdir()) == [
        f"{new}-SAMPLE_CODE-1.0",
        f"{new}-SQUEEZENET_PYTORCH-1.0",
    ]
    graphs = root / "graphs" / "my-app"
    graph = json.loads((graphs / "graph.json").read_text())["nodeGraph"]
    assert [p["name"] for p in graph["packages"]][:2] == [
        f"{new}::SAMPLE_CODE",
        f"{new}::SQUEEZENET_PYTORCH",
    ]
    assert graph["nodes"][0]["interface"] == f"{new}::SAMPLE_CODE.interface"
    for name, camera in (("override.json", "MY_CAMERA"), ("override-multicam.json", "CAMERA_A")):
        ov = json.loads((graphs / name).read_text())["nodeGraphOverrides"]
        assert ov["packages"][0]["name"] == f"{new}::{camera}"
        assert ov["nodes"][0]["interface"] == f"{new}::{camera}.{camera}"
    for f in root.rglob("*.json"):
        assert f"{ACCOUNT}::" not in f.read_text(), f
    # The backup copies are not manifests: left exactly as they were.
    assert (graphs / "override.json.bup").read_bytes() == (
        sample_app / "graphs" / "my-app" / "override.json.bup"
    ).read_bytes()
