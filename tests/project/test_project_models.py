"""add-raw-model: content-addressed model assets recorded in package.json.

The models are real (model_nets builds them): add-raw-model checks each one with
panoptes.models before it writes anything.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest
from project_helpers import ACCOUNT, graph_of, model_descriptor, package_json

import model_nets as nets
from panoptes.project import Project, ProjectError, add_raw_model, create_package

TORCH = "torch not installed: pip install 'panoptes[torch]' (CI installs it)"
TENSORFLOW = "tensorflow not installed: pip install 'panoptes[tensorflow]'"


@pytest.fixture
def model_pkg(project: Project) -> Path:
    return create_package(project, "MODEL", "Model", "1.0", ACCOUNT).path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _torchscript(tmp_path: Path, name: str, seed: int = 0) -> Path:
    """A real TorchScript archive for the PYTORCH descriptor's shape (skips without torch)."""
    pytest.importorskip("torch", reason=TORCH)
    return nets.tiny_torchscript_archive(tmp_path / name, seed)


def _onnx_tar(tmp_path: Path, name: str, seed: int = 0) -> Path:
    model = tmp_path / f"{name}.onnx"
    onnx.save(nets.onnx_classifier(seed=seed), model)
    return nets.tar_gz(tmp_path / name, {"net.onnx": model})


def _unchanged(project: Project, pkg: Path) -> dict[str, bytes]:
    """What an import must not touch when it is refused: assets/ and package.json."""
    files = {p.name: p.read_bytes() for p in project.assets_dir.iterdir()}
    return {**files, "package.json": (pkg / "package.json").read_bytes()}


def test_model_and_descriptor_stored_by_sha_and_recorded(
    project: Project, model_pkg: Path, tmp_path: Path
) -> None:
    model = _torchscript(tmp_path, "m.tar.gz")
    desc = model_descriptor(model_pkg / "descriptor.json")
    added = add_raw_model(project, "model_asset", model, desc, [model_pkg], ACCOUNT)
    assert added.notes == []

    model_uri, desc_uri = f"{_sha(model)}.tar.gz", f"{_sha(desc)}.json"
    assert sorted(p.name for p in project.assets_dir.iterdir()) == sorted([model_uri, desc_uri])
    assert (project.assets_dir / model_uri).read_bytes() == model.read_bytes()
    block = {
        "name": "model_asset",
        "implementations": [{"type": "model", "assetUri": model_uri, "descriptorUri": desc_uri}],
    }
    assert added.asset == block
    pkg = package_json(model_pkg)["nodePackage"]
    assert pkg["assets"] == [block]
    assert pkg["interfaces"][0]["name"] == "model_asset_interface"
    assert pkg["interfaces"][0]["category"] == "ml_model"
    assert pkg["interfaces"][0]["asset"] == "model_asset"
    node = graph_of(project)["nodeGraph"]["nodes"][-1]
    assert node["name"] == "model_asset"
    assert node["interface"] == f"{ACCOUNT}::MODEL.model_asset_interface"


def test_new_model_replaces_block_in_place_and_deletes_old_files(
    project: Project, model_pkg: Path, tmp_path: Path
) -> None:
    desc = model_descriptor(model_pkg / "descriptor.json")
    a, b = _torchscript(tmp_path, "a.tar.gz", seed=1), _torchscript(tmp_path, "b.tar.gz", seed=2)
    first = add_raw_model(project, "model_asset", a, desc, [model_pkg], ACCOUNT)
    # Another asset after it, to check the order of the assets block is kept.
    doc = package_json(model_pkg)
    doc["nodePackage"]["assets"].append({"name": "other", "implementations": []})
    (model_pkg / "package.json").write_text(json.dumps(doc))

    second = add_raw_model(project, "model_asset", b, desc, [model_pkg], ACCOUNT)
    assert second.removed == [first.model_path.name]
    assert not first.model_path.exists()
    assert second.model_path.exists() and second.descriptor_path.exists()  # same descriptor
    assets = package_json(model_pkg)["nodePackage"]["assets"]
    assert [a["name"] for a in assets] == ["model_asset", "other"]
    assert assets[0]["implementations"][0]["assetUri"] == second.model_path.name
    # No second interface or node for an asset that already existed.
    assert len(package_json(model_pkg)["nodePackage"]["interfaces"]) == 1
    assert [n["name"] for n in graph_of(project)["nodeGraph"]["nodes"]] == ["model_asset"]


def test_old_file_kept_while_another_package_uses_it(
    project: Project, model_pkg: Path, tmp_path: Path
) -> None:
    other = create_package(project, "MODEL2", "Model", "1.0", ACCOUNT).path
    desc = model_descriptor(model_pkg / "descriptor.json")
    shared = _torchscript(tmp_path, "a.tar.gz", seed=1)
    first = add_raw_model(project, "m", shared, desc, [model_pkg, other], ACCOUNT)
    second = add_raw_model(
        project, "m", _torchscript(tmp_path, "b.tar.gz", seed=2), desc, [model_pkg], ACCOUNT
    )
    assert second.removed == []
    assert first.model_path.exists()  # MODEL2 still points at it


def test_reimport_from_assets_folder_keeps_the_file(
    project: Project, model_pkg: Path, tmp_path: Path
) -> None:
    # The dev guide's update-model-config.sh passes assets/<sha>.tar.gz back in.
    desc = model_descriptor(model_pkg / "descriptor.json")
    first = add_raw_model(
        project, "m", _torchscript(tmp_path, "a.tar.gz", seed=1), desc, [model_pkg], ACCOUNT
    )
    model_descriptor(desc, "PYTORCH")
    desc.write_text(desc.read_text().replace('"PYTORCH"', '"PYTORCH", "precisionMode": "FP16"'))
    again = add_raw_model(project, "m", first.model_path, desc, [model_pkg], ACCOUNT)
    assert again.model_path == first.model_path and first.model_path.exists()
    assert again.removed == [first.descriptor_path.name]


def _pytorch_in_a_folder(tmp_path: Path) -> Path:
    pytest.importorskip("torch", reason=TORCH)
    nets.tiny_torchscript_archive(tmp_path / "plain.tar.gz", name="model.pt")
    return nets.tar_gz(tmp_path / "m.tar.gz", {"squeezenet/model.pt": tmp_path / "model.pt"})


def _saved_model(tmp_path: Path) -> Path:
    pytest.importorskip("tensorflow", reason=TENSORFLOW)
    pytest.importorskip("tf2onnx", reason=TENSORFLOW)
    nets.keras_classifier(shape=(32, 32, 3)).export(str(tmp_path / "m"))
    files = {str(p.relative_to(tmp_path)): p for p in (tmp_path / "m").rglob("*") if p.is_file()}
    return nets.tar_gz(tmp_path / "m.tar.gz", files)


def _keras_h5(tmp_path: Path) -> Path:
    pytest.importorskip("tensorflow", reason=TENSORFLOW)
    pytest.importorskip("tf2onnx", reason=TENSORFLOW)
    nets.keras_classifier(shape=(32, 32, 3)).save(tmp_path / "model.h5")
    return nets.tar_gz(tmp_path / "m.tar.gz", {"model.h5": tmp_path / "model.h5"})


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize(
    ("framework", "shape", "build"),
    [
        pytest.param("PYTORCH", (1, 3, 32, 32), _pytorch_in_a_folder, id="torchscript"),
        pytest.param(
            "TENSORFLOW", (1, 32, 32, 3), _saved_model, marks=pytest.mark.slow, id="savedmodel"
        ),
        pytest.param("TENSORFLOW", (1, 32, 32, 3), _keras_h5, marks=pytest.mark.slow, id="h5"),
    ],
)
def test_archives_with_a_model_of_the_framework_are_accepted(
    project: Project,
    model_pkg: Path,
    tmp_path: Path,
    framework: str,
    shape: tuple[int, ...],
    build: Callable[[Path], Path],
) -> None:
    desc = model_descriptor(model_pkg / "descriptor.json", framework, shape)
    added = add_raw_model(project, "m", build(tmp_path), desc, [model_pkg], ACCOUNT)
    assert added.model_path.exists() and added.notes == []


@pytest.mark.parametrize(
    ("framework", "members", "problem", "fix"),
    [
        (
            "PYTORCH",
            {"model.h5": b"x"},
            "no PyTorch model file (*.pth or *.pt); it contains: model.h5",
            "torch.jit.trace(model, example).save('model.pth')",
        ),
        (
            "TENSORFLOW",
            {"model.pth": b"x"},
            "no TensorFlow model (a SavedModel directory with saved_model.pb",
            "package a TENSORFLOW model, or correct mlModelDescriptor.framework",
        ),
        (
            # MXNet is retired and has no converter here: refused now, not at deployment.
            "MXNET",
            {"ssd-symbol.json": b"{}", "ssd-0000.params": b"x"},
            "MXNet models cannot be compiled here",
            "mxnet.onnx.export_model(",
        ),
    ],
)
def test_archive_without_a_model_of_the_framework_is_refused(
    project: Project,
    model_pkg: Path,
    make_tar: Callable[..., Path],
    framework: str,
    members: dict,
    problem: str,
    fix: str,
) -> None:
    desc = model_descriptor(model_pkg / "descriptor.json", framework)
    archive = make_tar("m.tar.gz", members)
    with pytest.raises(ProjectError) as e:
        add_raw_model(project, "m", archive, desc, [model_pkg], ACCOUNT)
    assert e.value.message.startswith(f"{archive}: ")
    assert problem in e.value.message
    assert fix in e.value.hint and "fix:" not in e.value.message
    assert list(project.assets_dir.iterdir()) == []
    assert package_json(model_pkg)["nodePackage"]["assets"] == []


def test_torchscript_whose_input_shape_disagrees_with_the_descriptor_is_refused(
    project: Project, model_pkg: Path, tmp_path: Path
) -> None:
    desc = model_descriptor(model_pkg / "descriptor.json")
    add_raw_model(project, "m", _torchscript(tmp_path, "a.tar.gz", 1), desc, [model_pkg], ACCOUNT)
    before = _unchanged(project, model_pkg)
    # Traced at 32x32; the descriptor says 224x224, Panorama's usual size.
    wrong = model_descriptor(tmp_path / "wrong.json", shape=(1, 3, 224, 224))
    archive = _torchscript(tmp_path, "b.tar.gz", seed=2)
    with pytest.raises(ProjectError) as e:
        add_raw_model(project, "m", archive, wrong, [model_pkg], ACCOUNT)
    assert str(archive) in e.value.message
    assert "input shape(s) (data [1, 3, 224, 224])" in e.value.message
    assert "mat1 and mat2 shapes cannot be multiplied" in e.value.message  # torch's words
    assert e.value.hint == (
        "set mlModelDescriptor.inputs[].shape to the shape the model was exported for"
    )
    assert _unchanged(project, model_pkg) == before


def test_onnx_input_name_not_in_the_descriptor_is_refused(
    project: Project, model_pkg: Path, tmp_path: Path
) -> None:
    desc = model_pkg / "descriptor.json"
    model_descriptor(desc, "TENSORFLOW")
    desc.write_text(desc.read_text().replace('"data"', '"image"'))
    with pytest.raises(ProjectError) as e:
        add_raw_model(project, "m", _onnx_tar(tmp_path, "m.tar.gz"), desc, [model_pkg], ACCOUNT)
    assert "descriptor input 'image' is not an input of the model" in e.value.message
    assert "data [batch, 3, 32, 32] float32" in e.value.message
    assert "mlModelDescriptor.inputs[].name" in e.value.hint
    assert list(project.assets_dir.iterdir()) == []


def test_truncated_archive_is_refused(project: Project, model_pkg: Path, tmp_path: Path) -> None:
    desc = model_descriptor(model_pkg / "descriptor.json", "TENSORFLOW")
    archive = _onnx_tar(tmp_path, "m.tar.gz")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])  # a cut-off copy
    with pytest.raises(ProjectError) as e:
        add_raw_model(project, "m", archive, desc, [model_pkg], ACCOUNT)
    assert f"{archive} is truncated or corrupted" in e.value.message
    assert "tar -czf model.tar.gz" in e.value.hint
    assert list(project.assets_dir.iterdir()) == []
    assert package_json(model_pkg)["nodePackage"]["assets"] == []


def test_state_dict_instead_of_torchscript_is_refused_with_the_fix(
    project: Project, model_pkg: Path, tmp_path: Path
) -> None:
    pytest.importorskip("torch", reason=TORCH)
    desc = model_descriptor(model_pkg / "descriptor.json")
    archive = nets.state_dict_archive(tmp_path / "m.tar.gz")
    with pytest.raises(ProjectError) as e:
        add_raw_model(project, "m", archive, desc, [model_pkg], ACCOUNT)
    assert "model.pth is not a TorchScript file" in e.value.message
    assert e.value.hint == "save it with torch.jit.trace(model, example).save('model.pth')"
    assert list(project.assets_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("framework", "module", "members", "install"),
    [
        ("PYTORCH", "torch", {"model.pth": nets.torchscript_lookalike()}, "panoptes[torch]"),
        ("TENSORFLOW", "tensorflow", {"m/saved_model.pb": b"\0"}, "panoptes[tensorflow]"),
    ],
)
def test_missing_converter_does_not_block_the_import(
    project: Project,
    model_pkg: Path,
    make_tar: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    framework: str,
    module: str,
    members: dict,
    install: str,
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import <module>` now fails
    desc = model_descriptor(model_pkg / "descriptor.json", framework)
    added = add_raw_model(project, "m", make_tar("m.tar.gz", members), desc, [model_pkg], ACCOUNT)
    assert added.model_path.exists()
    assert package_json(model_pkg)["nodePackage"]["assets"] == [added.asset]
    (note,) = added.notes
    assert "input names and shapes were not checked" in note
    assert f"run `pip install '{install}'` and import again" in note


def test_onnx_accepted_with_a_note(project: Project, model_pkg: Path, tmp_path: Path) -> None:
    desc = model_descriptor(model_pkg / "descriptor.json", "TENSORFLOW")
    in_tar = add_raw_model(
        project, "a", _onnx_tar(tmp_path, "m.tar.gz", seed=1), desc, [model_pkg], ACCOUNT
    )
    assert in_tar.notes == ["m.tar.gz holds an ONNX model; accepted under framework TENSORFLOW"]
    bare = tmp_path / "net.onnx"
    onnx.save(nets.onnx_classifier(seed=2), bare)
    added = add_raw_model(project, "b", bare, desc, [model_pkg], ACCOUNT)
    assert added.model_path.name == f"{_sha(bare)}.onnx"
    assert "bare ONNX" in added.notes[0]


def test_without_packages_only_the_block_is_made(
    project: Project, model_pkg: Path, tmp_path: Path
) -> None:
    desc = model_descriptor(model_pkg / "descriptor.json")
    added = add_raw_model(project, "m", _torchscript(tmp_path, "m.tar.gz"), desc, [], ACCOUNT)
    assert added.packages == [] and added.model_path.exists()
    assert package_json(model_pkg)["nodePackage"]["assets"] == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"mlModelDescriptor": {,}}', r"descriptor.json:1:24: invalid JSON"),
        ('{"runtimeDescriptor": {"entry": {"name": "a"}}}', "expected a mlModelDescriptor"),
        (
            '{"mlModelDescriptor": {"envelopeVersion": "2021-01-01", "framework": "CAFFE",'
            ' "inputs": [{"name": "d", "shape": [1]}]}}',
            "framework",
        ),
    ],
)
def test_bad_descriptor_is_refused_before_anything_is_copied(
    project: Project, model_pkg: Path, tmp_path: Path, text: str, message: str
) -> None:
    desc = model_pkg / "descriptor.json"
    desc.write_text(text)
    with pytest.raises(ProjectError, match=message):
        add_raw_model(project, "m", _onnx_tar(tmp_path, "m.tar.gz"), desc, [model_pkg], "1")
    assert list(project.assets_dir.iterdir()) == []


def test_not_an_archive_is_refused(project: Project, model_pkg: Path, tmp_path: Path) -> None:
    desc = model_descriptor(model_pkg / "descriptor.json")
    zipped = tmp_path / "model.zip"
    zipped.write_bytes(b"PK")
    with pytest.raises(ProjectError, match=r"\.tar\.gz archive or a bare \.onnx"):
        add_raw_model(project, "m", zipped, desc, [model_pkg], ACCOUNT)
    broken = tmp_path / "model.tar.gz"
    shutil.copyfile(zipped, broken)
    with pytest.raises(ProjectError, match=r"model\.tar\.gz is not a readable tar\.gz") as e:
        add_raw_model(project, "m", broken, desc, [model_pkg], ACCOUNT)
    assert "tar -czf model.tar.gz" in e.value.hint
    assert list(project.assets_dir.iterdir()) == []
