"""add-raw-model: store a model archive and its descriptor as content-addressed assets."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panoptes.project import assets
from panoptes.project.descriptors import load_descriptor
from panoptes.project.errors import ProjectError
from panoptes.project.files import atomic_move, atomic_write_bytes, copy_hashing, sha256_file
from panoptes.project.layout import ASSET_NAME_RE, Project, check_name
from panoptes.project.progress import NO_PROGRESS, Progress


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


# The "(fix: ...)" or "; fix: ..." that ends panoptes.models' messages.
_FIX = re.compile(r"(?:\s*\(|[;,]?\s+)fix:\s*")
HELP = "see `panoptes app add-raw-model --help` for what each framework's archive holds"


def _problem_and_fix(message: str) -> tuple[str, str]:
    """Split a panoptes.models message into the problem and its fix ("" if none)."""
    found = list(_FIX.finditer(message))
    if not found:
        return message, ""
    at = found[-1]
    problem, fix = message[: at.start()].rstrip(" ;,"), message[at.end() :].strip()
    if at.group().lstrip().startswith("("):
        if not fix.endswith(")"):  # the fix is not the message's last part: keep it whole
            return message, ""
        fix = fix[:-1]
    return problem, fix


def check_model_asset(
    path: Path,
    descriptor: dict[str, Any],
    kind: str,
    progress: Progress = NO_PROGRESS,
) -> list[str]:
    """Refuse a model that panoptes.models cannot compile; return notes for the user.

    The archive, the framework's model file and, with the framework's converter
    installed, the descriptor's input names and shapes (one run on zeros) are checked.
    Without the converter the import goes on with a note saying what to install.
    """
    import panoptes.models as models  # loads onnx and onnxruntime: only when needed

    framework = descriptor["mlModelDescriptor"]["framework"]
    notes = []
    found = None
    try:
        with progress.task(f"checking {path.name}"):
            found = models.check_model_archive(path, descriptor, require_converter=True)
    except models.MissingExtraError as e:
        # The device has the converter and checks at compile time; do not block here.
        notes.append(
            f"{path.name}: the model's input names and shapes were not checked against the "
            f"descriptor ({e}); run `{e.install}` and import again to check them now, or the "
            "device finds any mismatch when it compiles the model at deployment"
        )
    except models.ModelError as e:
        problem, fix = _problem_and_fix(str(e))
        if str(path) not in problem:
            problem = f"{path}: {problem}"
        if not fix and isinstance(e, models.ArchiveError):
            fix = f"package a {framework} model, or correct mlModelDescriptor.framework; {HELP}"
        raise ProjectError(problem, fix or HELP) from None
    if kind == "onnx":
        notes.append(f"{path.name} is a bare ONNX model; stored as-is under framework {framework}")
    elif found == "onnx":
        notes.append(f"{path.name} holds an ONNX model; accepted under framework {framework}")
    return notes


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
    if not model_path.is_file():
        raise ProjectError(f"{model_path}: model file not found", "check --model-local-path")
    kind = _archive_kind(model_path)
    notes = check_model_asset(model_path, descriptor, kind, progress)
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
