"""add-raw-model: store a model archive and its descriptor as content-addressed assets."""

from __future__ import annotations

import fnmatch
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from panoptes.project import assets
from panoptes.project.descriptors import load_descriptor
from panoptes.project.errors import ProjectError
from panoptes.project.files import atomic_move, atomic_write_bytes, copy_hashing, sha256_file
from panoptes.project.layout import ASSET_NAME_RE, Project, check_name
from panoptes.project.progress import NO_PROGRESS, Progress

# What a framework's archive must contain (glob on file names inside the tar).
FRAMEWORK_FILES: dict[str, list[list[str]]] = {
    # each inner list is one acceptable combination: all patterns must match a file
    "PYTORCH": [["*.pth"], ["*.pt"]],
    "TENSORFLOW": [["saved_model.pb"], ["*.h5"], ["*.keras"], ["*.pb"]],
    "MXNET": [["*-symbol.json", "*.params"]],
}
EXPECTED = {
    "PYTORCH": "a .pth or .pt file (TorchScript)",
    "TENSORFLOW": "saved_model.pb, or a .h5/.keras/.pb file",
    "MXNET": "a *-symbol.json file and a *.params file",
}


@dataclass
class AddedModel:
    asset: dict[str, Any]
    model_path: Path
    descriptor_path: Path
    packages: list[assets.Registered] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _archive_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".tar.gz", ".tgz")):
        return "tar.gz"
    if name.endswith(".onnx"):
        return "onnx"
    raise ProjectError(
        f"{path}: model must be a .tar.gz archive or a bare .onnx file",
        "pack the model files with `tar czf model.tar.gz <files>`",
    )


def check_archive(path: Path, framework: str, progress: Progress = NO_PROGRESS) -> list[str]:
    """Refuse an archive without a model for ``framework``; return notes for the user."""
    try:
        # Listing a .tar.gz decompresses all of it: show a spinner for big models.
        with progress.task(f"inspecting {path.name}"), tarfile.open(path, "r:gz") as tar:
            names = [PurePosixPath(m.name).name for m in tar if m.isfile()]
    except (tarfile.TarError, OSError, EOFError) as e:
        raise ProjectError(
            f"{path}: not a readable .tar.gz ({e})", "re-create it with `tar czf`"
        ) from None
    if any(n.lower().endswith(".onnx") for n in names):
        return [f"{path.name} holds an ONNX model; accepted under framework {framework}"]
    for combo in FRAMEWORK_FILES[framework]:
        if all(any(fnmatch.fnmatch(n, pat) for n in names) for pat in combo):
            return []
    shown = ", ".join(sorted(names)[:8]) or "no files"
    raise ProjectError(
        f"{path}: no {framework} model inside (found: {shown})",
        f"a {framework} archive must contain {EXPECTED[framework]}, "
        "or fix mlModelDescriptor.framework in the descriptor",
    )


def add_raw_model(
    project: Project,
    asset_name: str,
    model_path: Path,
    descriptor_path: Path,
    package_dirs: list[Path],
    account: str,
    progress: Progress = NO_PROGRESS,
) -> AddedModel:
    check_name(asset_name, "--model-asset-name", ASSET_NAME_RE)
    descriptor = load_descriptor(descriptor_path, "mlModelDescriptor")
    framework = descriptor["mlModelDescriptor"]["framework"]
    if not model_path.is_file():
        raise ProjectError(f"{model_path}: model file not found", "check --model-local-path")
    kind = _archive_kind(model_path)
    notes = (
        check_archive(model_path, framework, progress)
        if kind == "tar.gz"
        else [f"{model_path.name} is a bare ONNX model; stored as-is under framework {framework}"]
    )
    # Check the package folders before touching assets/.
    for d in package_dirs:
        assets.package_manifest(d)

    tmp, digest = copy_hashing(model_path, project.assets_dir, progress)
    model_dst = project.assets_dir / f"{digest}.{kind}"
    atomic_move(tmp, model_dst)
    raw = descriptor_path.read_bytes()
    desc_sha = sha256_file(descriptor_path)
    desc_dst = project.assets_dir / f"{desc_sha}.json"
    if not desc_dst.exists():
        atomic_write_bytes(desc_dst, raw)

    block = {
        "name": asset_name,
        "implementations": [
            {"type": "model", "assetUri": model_dst.name, "descriptorUri": desc_dst.name}
        ],
    }
    result = AddedModel(block, model_dst, desc_dst, notes=notes)
    superseded: set[str] = set()
    for d in package_dirs:
        reg, old = assets.register_asset(project, d, block, "ml_model", asset_name, account)
        result.packages.append(reg)
        superseded |= old
    result.removed = assets.remove_unreferenced(project, superseded)
    return result
