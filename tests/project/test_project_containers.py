"""build-container / export-container: source assets without an engine, engine path
driven through a stand-in `docker` executable (no daemon runs in the test sandbox)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import zipfile
from pathlib import Path

import pytest
from project_helpers import ACCOUNT, graph_of, package_json

from panoptes.project import (
    Project,
    ProjectError,
    SourceOptions,
    build_container,
    create_package,
    export_container,
)
from panoptes.project.engine import find_engine

NO_WHEELS = SourceOptions(platform="manylinux2014_x86_64", wheelhouse=False)


@pytest.fixture
def code_pkg(project: Project) -> Path:
    pkg = create_package(project, "CODE", "Container", "1.0", ACCOUNT).path
    (pkg / "src" / "app.py").write_text("print('hello')\n")
    desc = pkg / "descriptor.json"
    desc.write_text(desc.read_text().replace("<entry_file_name_under_src>", "app.py"))
    return pkg


def _members(path: Path) -> dict[str, bytes | None]:
    with tarfile.open(path, "r:gz") as tar:
        return {
            m.name: (tar.extractfile(m).read() if m.isfile() else None)  # type: ignore[union-attr]
            for m in tar
        }


def test_source_asset_holds_sources_requirements_and_manifest(
    project: Project, code_pkg: Path
) -> None:
    (code_pkg / "requirements.txt").write_text("# nothing to install\n")
    built = build_container(project, "code_asset", code_pkg, ACCOUNT, source=NO_WHEELS)
    assert built.kind == "source"
    members = _members(built.asset_path)
    assert members["panorama/app.py"] == b"print('hello')\n"
    assert members["requirements.txt"] == b"# nothing to install\n"
    manifest = json.loads(members["panoptes-asset.json"])  # type: ignore[arg-type]
    assert manifest == {
        "format": "panoptes-source-asset",
        "version": 1,
        "python": "3.11",
        "platform": "manylinux2014_x86_64",
        "entry": {"path": "python3", "name": "/panorama/app.py"},
        "requirements": "requirements.txt",
        "wheelhouse": None,
    }
    sha = hashlib.sha256(built.asset_path.read_bytes()).hexdigest()
    assert built.asset_path.name == f"{sha}.tar.gz"
    desc_sha = hashlib.sha256((code_pkg / "descriptor.json").read_bytes()).hexdigest()
    assert built.descriptor_path == project.assets_dir / f"{desc_sha}.json"
    impl = package_json(code_pkg)["nodePackage"]["assets"][0]["implementations"][0]
    assert impl["type"] == "container"
    assert impl["assetUri"] == built.asset_path.name
    assert impl["descriptorUri"] == built.descriptor_path.name
    assert impl["description"].startswith("panoptes-source-asset")
    assert set(impl) <= {"type", "assetUri", "descriptorUri", "description", "requirements"}


def test_interface_and_node_added_once(project: Project, code_pkg: Path) -> None:
    build_container(project, "code_asset", code_pkg, ACCOUNT, source=NO_WHEELS)
    build_container(project, "code_asset", code_pkg, ACCOUNT, source=NO_WHEELS)
    interfaces = package_json(code_pkg)["nodePackage"]["interfaces"]
    assert [(i["name"], i["category"], i["asset"]) for i in interfaces] == [
        ("code_asset_interface", "business_logic", "code_asset")
    ]
    nodes = graph_of(project)["nodeGraph"]["nodes"]
    assert nodes == [
        {
            "name": "code_asset_node",
            "interface": f"{ACCOUNT}::CODE.code_asset_interface",
            "overridable": False,
            "launch": "onAppStart",
        }
    ]


def test_rebuild_is_byte_reproducible(project: Project, code_pkg: Path) -> None:
    first = build_container(project, "code_asset", code_pkg, ACCOUNT, source=NO_WHEELS)
    content = first.asset_path.read_bytes()
    os.utime(code_pkg / "src" / "app.py", (1, 1))  # only the mtime changes
    second = build_container(project, "code_asset", code_pkg, ACCOUNT, source=NO_WHEELS)
    assert second.asset_path == first.asset_path
    assert second.asset_path.read_bytes() == content
    assert second.removed == []


def test_changed_source_gives_new_asset_and_removes_old(project: Project, code_pkg: Path) -> None:
    first = build_container(project, "code_asset", code_pkg, ACCOUNT, source=NO_WHEELS)
    (code_pkg / "src" / "app.py").write_text("print('v2')\n")
    second = build_container(project, "code_asset", code_pkg, ACCOUNT, source=NO_WHEELS)
    assert second.asset_path != first.asset_path
    assert second.removed == [first.asset_path.name]
    assert not first.asset_path.exists()
    assert sorted(p.name for p in project.assets_dir.iterdir()) == sorted(
        [second.asset_path.name, second.descriptor_path.name]
    )


def test_rebuild_keeps_hand_added_gpu_requirements(project: Project, code_pkg: Path) -> None:
    build_container(project, "code_asset", code_pkg, ACCOUNT, source=NO_WHEELS)
    gpu = [{"type": "hardware_access", "inferenceAccelerators": [{"deviceType": "nvhost_gpu"}]}]
    doc = package_json(code_pkg)
    doc["nodePackage"]["assets"][0]["implementations"][0]["requirements"] = gpu
    (code_pkg / "package.json").write_text(json.dumps(doc))
    (code_pkg / "src" / "app.py").write_text("print('v2')\n")
    built = build_container(project, "code_asset", code_pkg, ACCOUNT, source=NO_WHEELS)
    assert built.asset["implementations"][0]["requirements"] == gpu
    impl = package_json(code_pkg)["nodePackage"]["assets"][0]["implementations"][0]
    assert impl["requirements"] == gpu and impl["assetUri"] == built.asset_path.name


def test_missing_entry_file_is_reported(project: Project, code_pkg: Path) -> None:
    (code_pkg / "src" / "app.py").unlink()
    built = build_container(project, "code_asset", code_pkg, ACCOUNT, source=NO_WHEELS)
    assert any("/panorama/app.py" in n for n in built.notes)


def test_wrong_descriptor_refused_before_building(project: Project, code_pkg: Path) -> None:
    (code_pkg / "descriptor.json").write_text('{"runtimeDescriptor": ')
    with pytest.raises(ProjectError, match=r"descriptor.json:1:\d+: invalid JSON"):
        build_container(project, "code_asset", code_pkg, ACCOUNT, source=NO_WHEELS)
    assert list(project.assets_dir.iterdir()) == []


def _tiny_wheel(folder: Path) -> Path:
    """A real (pure-python) wheel, so pip resolves it offline from --find-links."""
    folder.mkdir()
    whl = folder / "tinydep-0.1-py3-none-any.whl"
    dist = "tinydep-0.1.dist-info"
    files = {
        "tinydep/__init__.py": "VALUE = 1\n",
        f"{dist}/METADATA": "Metadata-Version: 2.1\nName: tinydep\nVersion: 0.1\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = "".join(f"{n},,\n" for n in files) + f"{dist}/RECORD,,\n"
    with zipfile.ZipFile(whl, "w") as z:
        for name, text in {**files, f"{dist}/RECORD": record}.items():
            z.writestr(name, text)
    return folder


@pytest.mark.slow
def test_wheelhouse_built_offline_from_find_links(
    project: Project, code_pkg: Path, tmp_path: Path
) -> None:
    (code_pkg / "requirements.txt").write_text("tinydep==0.1\n")
    wheels = _tiny_wheel(tmp_path / "wheels")
    opts = SourceOptions("manylinux2014_aarch64", True, [wheels], no_index=True)
    built = build_container(project, "code_asset", code_pkg, ACCOUNT, source=opts)
    members = _members(built.asset_path)
    assert "wheelhouse/tinydep-0.1-py3-none-any.whl" in members
    manifest = json.loads(members["panoptes-asset.json"])  # type: ignore[arg-type]
    assert manifest["wheelhouse"] == "wheelhouse"
    assert manifest["platform"] == "manylinux2014_aarch64"


@pytest.mark.slow
def test_unresolvable_requirement_names_the_file(project: Project, code_pkg: Path) -> None:
    (code_pkg / "requirements.txt").write_text("no-such-package-panoptes==9.9\n")
    opts = SourceOptions("manylinux2014_x86_64", True, [], no_index=True)
    with pytest.raises(ProjectError) as e:
        build_container(project, "code_asset", code_pkg, ACCOUNT, source=opts)
    assert "requirements.txt: pip could not download" in e.value.message
    assert "--no-wheelhouse" in e.value.hint
    assert list(project.assets_dir.iterdir()) == []


def test_empty_requirements_gives_empty_wheelhouse_without_pip(
    project: Project, code_pkg: Path
) -> None:
    (code_pkg / "requirements.txt").write_text("\n# none\n")
    opts = SourceOptions("manylinux2014_x86_64", True, [], no_index=True)
    built = build_container(project, "code_asset", code_pkg, ACCOUNT, source=opts)
    members = _members(built.asset_path)
    assert "wheelhouse" in members and members["wheelhouse"] is None  # a folder


# ---- container engines ---------------------------------------------------------------


def _fake_docker(bin_dir: Path, info_rc: int, rootfs: Path | None = None) -> Path:
    """A `docker` executable that answers like an engine (info_rc=0) or like a client
    without a daemon (info_rc=1). It logs its arguments, exports ``rootfs`` as a tar."""
    bin_dir.mkdir(exist_ok=True)
    log = bin_dir / "calls.log"
    script = bin_dir / "docker"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> "{log}"\n'
        'case "$1" in\n'
        f"  info) exit {info_rc} ;;\n"
        "  create) echo cid123 ;;\n"
        f'  export) tar cf "${{2#--output=}}" -C "{rootfs}" . ;;\n'
        "esac\n"
    )
    script.chmod(0o755)
    return log


def test_client_without_daemon_is_no_engine(tmp_path: Path, monkeypatch, project, code_pkg):
    _fake_docker(tmp_path / "bin", info_rc=1)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    assert find_engine("auto") is None
    built = build_container(project, "code_asset", code_pkg, ACCOUNT, source=NO_WHEELS)
    assert built.kind == "source"
    with pytest.raises(ProjectError, match="no docker engine is running"):
        find_engine("docker")


@pytest.mark.parametrize("local_image", [False, True])
def test_engine_build_exports_rootfs_and_removes_container(
    tmp_path: Path, monkeypatch, project: Project, code_pkg: Path, local_image: bool
) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "panorama").mkdir(parents=True)
    (rootfs / "panorama" / "app.py").write_text("built\n")
    log = _fake_docker(tmp_path / "bin", info_rc=0, rootfs=rootfs)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    built = build_container(project, "code_asset", code_pkg, ACCOUNT, local_image=local_image)
    assert built.kind == "image"
    assert "description" not in built.asset["implementations"][0]
    assert _members(built.asset_path)["./panorama/app.py"] == b"built\n"
    calls = log.read_text().splitlines()
    build = next(c for c in calls if c.startswith("build"))
    assert build.startswith(f"build -t code_asset {code_pkg}")
    assert ("--pull" in build) is (not local_image)
    assert "create code_asset:latest" in calls
    assert calls[-1] == "rm cid123"


def test_export_container_needs_engine_or_tar(project: Project, code_pkg: Path, tmp_path: Path):
    with pytest.raises(ProjectError, match="no Docker or Podman engine answers"):
        export_container(project, "code_asset", "my/app:1", code_pkg, ACCOUNT, "none")
    rootfs = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        info = tarfile.TarInfo("panorama/app.py")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"hi\n"))
    built = export_container(project, "code_asset", str(rootfs), code_pkg, ACCOUNT, "none")
    assert _members(built.asset_path)["panorama/app.py"] == b"hi\n"
    impl = package_json(code_pkg)["nodePackage"]["assets"][0]["implementations"][0]
    assert impl["assetUri"] == built.asset_path.name
