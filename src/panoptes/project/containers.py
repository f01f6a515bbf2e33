"""build-container and export-container: turn a code package into a container asset."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panoptes.project import assets, engine, source_asset
from panoptes.project.descriptors import load_descriptor
from panoptes.project.errors import ProjectError
from panoptes.project.files import atomic_move, atomic_write_bytes, sha256_file
from panoptes.project.layout import ASSET_NAME_RE, Project, check_name
from panoptes.project.progress import NO_PROGRESS, Progress


@dataclass
class BuiltContainer:
    asset: dict[str, Any]
    asset_path: Path
    descriptor_path: Path
    kind: str  # "image" (engine root filesystem) or "source" (panoptes source asset)
    registered: assets.Registered | None = None
    removed: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class SourceOptions:
    platform: str = field(default_factory=source_asset.default_platform)
    wheelhouse: bool = True
    find_links: list[Path] = field(default_factory=list)
    no_index: bool = False


def _temp_in(folder: Path, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=".building-", suffix=suffix, dir=folder)
    os.close(fd)
    return Path(name)


def _store(
    project: Project,
    package_dir: Path,
    asset_name: str,
    built: Path,
    description: str | None,
    account: str,
    progress: Progress,
) -> tuple[dict[str, Any], Path, Path, assets.Registered, list[str]]:
    """Name the built tarball and descriptor by sha256, record them in package.json."""
    digest = sha256_file(built, progress, f"hashing {asset_name}")
    dst = project.assets_dir / f"{digest}.tar.gz"
    atomic_move(built, dst)
    descriptor = package_dir / "descriptor.json"
    desc_dst = project.assets_dir / f"{sha256_file(descriptor)}.json"
    if not desc_dst.exists():
        atomic_write_bytes(desc_dst, descriptor.read_bytes())
    impl: dict[str, Any] = {
        "type": "container",
        "assetUri": dst.name,
        "descriptorUri": desc_dst.name,
    }
    if description:
        impl["description"] = description
    block = {"name": asset_name, "implementations": [impl]}
    reg, superseded = assets.register_asset(
        project, package_dir, block, "business_logic", f"{asset_name}_node", account
    )
    removed = assets.remove_unreferenced(project, superseded)
    # Show what package.json now holds (including kept requirements).
    _, doc = assets.package_manifest(package_dir)
    block = next(a for a in doc["nodePackage"]["assets"] if a.get("name") == asset_name)
    return block, dst, desc_dst, reg, removed


def _check_package(package_dir: Path, asset_name: str) -> None:
    check_name(asset_name, "--container-asset-name", ASSET_NAME_RE)
    assets.package_manifest(package_dir)
    load_descriptor(package_dir / "descriptor.json", "runtimeDescriptor")


def build_container(
    project: Project,
    asset_name: str,
    package_dir: Path,
    account: str,
    local_image: bool = False,
    engine_choice: str = "auto",
    source: SourceOptions | None = None,
    progress: Progress = NO_PROGRESS,
) -> BuiltContainer:
    """Build with Docker/Podman when one answers, else pack a source asset."""
    _check_package(package_dir, asset_name)
    descriptor = load_descriptor(package_dir / "descriptor.json", "runtimeDescriptor")
    found = engine.find_engine(engine_choice)
    tmp = _temp_in(project.assets_dir, ".tar.gz")
    notes: list[str] = []
    commands: list[str] = []
    try:
        if found:
            commands += engine.build_image(found, asset_name, package_dir, pull=not local_image)
            commands += engine.export_rootfs(found, f"{asset_name}:latest", tmp, progress)
            description = None
            kind = "image"
        else:
            opts = source or SourceOptions()
            if local_image:
                notes.append("--local-image only matters with a container engine; ignored")
            notes += source_asset.build_source_asset(
                package_dir, descriptor, tmp, opts.platform, opts.wheelhouse,
                opts.find_links, opts.no_index, progress,
            )  # fmt: skip
            wheels = "wheelhouse" if opts.wheelhouse else "no wheelhouse"
            description = (
                f"{source_asset.FORMAT} v{source_asset.FORMAT_VERSION}: package sources, "
                f"requirements.txt and {wheels} for {opts.platform}, python {source_asset.PYTHON}"
            )
            kind = "source"
        block, dst, desc, reg, removed = _store(
            project, package_dir, asset_name, tmp, description, account, progress
        )
    finally:
        tmp.unlink(missing_ok=True)
    return BuiltContainer(block, dst, desc, kind, reg, removed, commands, notes)


def export_container(
    project: Project,
    asset_name: str,
    image: str,
    package_dir: Path,
    account: str,
    engine_choice: str = "auto",
    progress: Progress = NO_PROGRESS,
) -> BuiltContainer:
    """Turn an already-built image (or a `docker export` tar file) into the package's asset."""
    _check_package(package_dir, asset_name)
    tmp = _temp_in(project.assets_dir, ".tar.gz")
    commands: list[str] = []
    try:
        local = Path(image)
        if local.is_file():
            # A root filesystem tar made elsewhere (`docker export`): no engine needed.
            if local.name.endswith((".tar.gz", ".tgz")):
                shutil.copyfile(local, tmp)
            elif local.name.endswith(".tar"):
                engine.gzip_file(local, tmp, progress)
            else:
                raise ProjectError(
                    f"{local}: expected a .tar or .tar.gz root filesystem",
                    "create it with `docker export --output=rootfs.tar $(docker create IMAGE)`",
                )
        else:
            found = engine.find_engine(engine_choice)
            if not found:
                raise ProjectError(
                    f"cannot export image {image!r}: no Docker or Podman engine answers "
                    "(`docker info` fails)",
                    "start an engine, pass a `docker export` .tar file as --container-image-uri, "
                    "or use `panoptes app build-container`, which works without an engine",
                )
            commands = engine.export_rootfs(found, image, tmp, progress)
        block, dst, desc, reg, removed = _store(
            project, package_dir, asset_name, tmp, None, account, progress
        )
    finally:
        tmp.unlink(missing_ok=True)
    return BuiltContainer(block, dst, desc, "image", reg, removed, commands)
