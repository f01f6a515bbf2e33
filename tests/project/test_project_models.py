"""add-raw-model: content-addressed model assets recorded in package.json."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from project_helpers import ACCOUNT, graph_of, model_descriptor, package_json

from panoptes.project import Project, ProjectError, add_raw_model, create_package


@pytest.fixture
def model_pkg(project: Project) -> Path:
    return create_package(project, "MODEL", "Model", "1.0", ACCOUNT).path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_model_and_descriptor_stored_by_sha_and_recorded(
    project: Project, model_pkg: Path, make_tar: Callable[..., Path]
) -> None:
    model = make_tar("m.tar.gz", {"model.pth": b"torchscript"})
    desc = model_descriptor(model_pkg / "descriptor.json")
    added = add_raw_model(project, "model_asset", model, desc, [model_pkg], ACCOUNT)

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
    project: Project, model_pkg: Path, make_tar: Callable[..., Path]
) -> None:
    desc = model_descriptor(model_pkg / "descriptor.json")
    first = add_raw_model(
        project, "model_asset", make_tar("a.tar.gz", {"a.pth": b"1"}), desc, [model_pkg], ACCOUNT
    )
    # Another asset after it, to check the order of the assets block is kept.
    doc = package_json(model_pkg)
    doc["nodePackage"]["assets"].append({"name": "other", "implementations": []})
    (model_pkg / "package.json").write_text(json.dumps(doc))

    second = add_raw_model(
        project, "model_asset", make_tar("b.tar.gz", {"b.pth": b"2"}), desc, [model_pkg], ACCOUNT
    )
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
    project: Project, model_pkg: Path, make_tar: Callable[..., Path]
) -> None:
    other = create_package(project, "MODEL2", "Model", "1.0", ACCOUNT).path
    desc = model_descriptor(model_pkg / "descriptor.json")
    shared = make_tar("a.tar.gz", {"a.pth": b"1"})
    first = add_raw_model(project, "m", shared, desc, [model_pkg, other], ACCOUNT)
    second = add_raw_model(
        project, "m", make_tar("b.tar.gz", {"b.pth": b"2"}), desc, [model_pkg], ACCOUNT
    )
    assert second.removed == []
    assert first.model_path.exists()  # MODEL2 still points at it


def test_reimport_from_assets_folder_keeps_the_file(
    project: Project, model_pkg: Path, make_tar: Callable[..., Path]
) -> None:
    # The dev guide's update-model-config.sh passes assets/<sha>.tar.gz back in.
    desc = model_descriptor(model_pkg / "descriptor.json")
    first = add_raw_model(
        project, "m", make_tar("a.tar.gz", {"a.pth": b"1"}), desc, [model_pkg], ACCOUNT
    )
    model_descriptor(desc, "PYTORCH")
    desc.write_text(desc.read_text().replace('"PYTORCH"', '"PYTORCH", "precisionMode": "FP16"'))
    again = add_raw_model(project, "m", first.model_path, desc, [model_pkg], ACCOUNT)
    assert again.model_path == first.model_path and first.model_path.exists()
    assert again.removed == [first.descriptor_path.name]


@pytest.mark.parametrize(
    ("framework", "members"),
    [
        ("PYTORCH", {"squeezenet/model.pt": b"x"}),
        ("TENSORFLOW", {"m/saved_model.pb": b"x", "m/variables/v": b"x"}),
        ("TENSORFLOW", {"model.h5": b"x"}),
        ("MXNET", {"ssd-symbol.json": b"{}", "ssd-0000.params": b"x"}),
    ],
)
def test_archives_with_a_model_of_the_framework_are_accepted(
    project: Project, model_pkg: Path, make_tar: Callable[..., Path], framework: str, members: dict
) -> None:
    desc = model_descriptor(model_pkg / "descriptor.json", framework)
    added = add_raw_model(project, "m", make_tar("m.tar.gz", members), desc, [model_pkg], ACCOUNT)
    assert added.model_path.exists() and added.notes == []


@pytest.mark.parametrize(
    ("framework", "members", "expected"),
    [
        ("PYTORCH", {"model.h5": b"x"}, ".pth or .pt"),
        ("TENSORFLOW", {"model.pth": b"x"}, "saved_model.pb"),
        ("MXNET", {"ssd-symbol.json": b"{}"}, "*.params"),
    ],
)
def test_archive_without_a_model_of_the_framework_is_refused(
    project: Project,
    model_pkg: Path,
    make_tar: Callable[..., Path],
    framework: str,
    members: dict,
    expected: str,
) -> None:
    desc = model_descriptor(model_pkg / "descriptor.json", framework)
    with pytest.raises(ProjectError) as e:
        add_raw_model(project, "m", make_tar("m.tar.gz", members), desc, [model_pkg], ACCOUNT)
    assert f"no {framework} model inside" in e.value.message
    assert expected in e.value.hint
    assert list(project.assets_dir.iterdir()) == []
    assert package_json(model_pkg)["nodePackage"]["assets"] == []


def test_onnx_accepted_with_a_note(
    project: Project, model_pkg: Path, make_tar: Callable[..., Path], tmp_path: Path
) -> None:
    desc = model_descriptor(model_pkg / "descriptor.json", "TENSORFLOW")
    in_tar = add_raw_model(
        project, "a", make_tar("m.tar.gz", {"net.onnx": b"onnx"}), desc, [model_pkg], ACCOUNT
    )
    assert "ONNX" in in_tar.notes[0]
    bare = tmp_path / "net.onnx"
    bare.write_bytes(b"bare onnx")
    added = add_raw_model(project, "b", bare, desc, [model_pkg], ACCOUNT)
    assert added.model_path.name == f"{_sha(bare)}.onnx"
    assert "bare ONNX" in added.notes[0]


def test_without_packages_only_the_block_is_made(
    project: Project, model_pkg: Path, make_tar: Callable[..., Path]
) -> None:
    desc = model_descriptor(model_pkg / "descriptor.json")
    added = add_raw_model(project, "m", make_tar("m.tar.gz", {"m.pth": b"1"}), desc, [], ACCOUNT)
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
    project: Project, model_pkg: Path, make_tar: Callable[..., Path], text: str, message: str
) -> None:
    desc = model_pkg / "descriptor.json"
    desc.write_text(text)
    with pytest.raises(ProjectError, match=message):
        add_raw_model(project, "m", make_tar("m.tar.gz", {"m.pth": b"1"}), desc, [model_pkg], "1")
    assert list(project.assets_dir.iterdir()) == []


def test_not_an_archive_is_refused(project: Project, model_pkg: Path, tmp_path: Path) -> None:
    desc = model_descriptor(model_pkg / "descriptor.json")
    zipped = tmp_path / "model.zip"
    zipped.write_bytes(b"PK")
    with pytest.raises(ProjectError, match=r"\.tar\.gz archive or a bare \.onnx"):
        add_raw_model(project, "m", zipped, desc, [model_pkg], ACCOUNT)
    broken = tmp_path / "model.tar.gz"
    shutil.copyfile(zipped, broken)
    with pytest.raises(ProjectError, match=r"not a readable \.tar\.gz"):
        add_raw_model(project, "m", broken, desc, [model_pkg], ACCOUNT)
