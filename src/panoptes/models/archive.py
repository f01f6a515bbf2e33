"""Reading a model asset: a bare .onnx file or a SageMaker Neo style .tar.gz.

Neo's formats, which Panorama accepted: PyTorch is a TorchScript file (*.pth/*.pt);
TensorFlow a SavedModel directory or a Keras file; MXNet a *-symbol.json plus *.params.
We also accept an .onnx file anywhere (the route every other framework can take),
TFLite, and recognise Darknet so that we can say what to do with it.
"""

from __future__ import annotations

import hashlib
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from panoptes.models.errors import ArchiveError, UnsupportedFrameworkError

# Descriptor frameworks (assetDescriptor.schema.json) plus ONNX, which a
# hand-built ModelDescriptor may name directly.
FRAMEWORKS = ("PYTORCH", "TENSORFLOW", "MXNET", "ONNX")

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class ModelSource:
    """The model found in an asset: its format and where it lies once unpacked."""

    format: str  # onnx | torchscript | savedmodel | keras | tflite | mxnet | frozen-graph
    path: Path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_framework(framework: str) -> str:
    name = framework.upper()
    if name not in FRAMEWORKS:
        raise UnsupportedFrameworkError(
            f"unknown model framework {framework!r}: the descriptor's framework must be one of "
            "TENSORFLOW, PYTORCH or MXNET (fix: correct mlModelDescriptor.framework, or export "
            "the model to ONNX and package the .onnx file)"
        )
    return name


def is_bare_onnx(archive: Path) -> bool:
    """An .onnx file given directly rather than packed in a tar.gz."""
    with open(archive, "rb") as f:
        head = f.read(2)
    return archive.suffix.lower() == ".onnx" and head != _GZIP_MAGIC


def unpack(archive: Path, dest: Path) -> None:
    """Extract a (gzip-compressed) tar archive, reporting corruption plainly."""
    if archive.stat().st_size == 0:
        raise ArchiveError(f"model archive {archive} is empty (fix: package the model again)")
    with open(archive, "rb") as f:
        gzipped = f.read(2) == _GZIP_MAGIC
    if not gzipped and not tarfile.is_tarfile(archive):
        raise ArchiveError(
            f"model archive {archive} is not a readable tar.gz archive (it is neither "
            "gzip-compressed nor a tar file) and not an .onnx file; fix: package the model "
            "with `tar -czf model.tar.gz <model files>`"
        )
    try:
        with tarfile.open(archive, "r:gz" if gzipped else "r:") as tar:
            # The "data" filter refuses absolute paths, '..' and device files: an asset
            # is untrusted input and must not write outside its scratch directory.
            tar.extractall(dest, filter="data")
    except tarfile.FilterError as exc:
        raise ArchiveError(
            f"model archive {archive} has a member that would be written outside the archive "
            f"or is not a regular file ({exc}); fix: package only the model files, with "
            "relative paths"
        ) from exc
    except (EOFError, zlib.error, tarfile.TarError, OSError) as exc:
        raise ArchiveError(
            f"model archive {archive} is truncated or corrupted ({exc}); "
            "fix: copy or package the archive again with `tar -czf model.tar.gz <model files>`"
        ) from exc


def _listing(root: Path) -> str:
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    if not files:
        return "it is empty"
    shown = ", ".join(files[:10]) + (", ..." if len(files) > 10 else "")
    return f"it contains: {shown}"


def _one(found: list[Path], what: str, root: Path) -> Path:
    if len(found) > 1:
        names = ", ".join(str(p.relative_to(root)) for p in found)
        raise ArchiveError(f"the archive holds more than one {what} ({names}); keep exactly one")
    return found[0]


def _is_torchscript(path: Path) -> bool:
    # torch.jit.save writes a zip with a code/ folder; torch.save of a module or a
    # state_dict writes data.pkl without it, which only Python with the model's
    # class can load, so it cannot be compiled.
    try:
        with zipfile.ZipFile(path) as z:
            return any("/code/" in n or n.startswith("code/") for n in z.namelist())
    except zipfile.BadZipFile:
        return False


def find_model(root: Path, framework: str) -> ModelSource:
    """Pick the model file in an unpacked asset for the descriptor's framework."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    onnx_files = [p for p in files if p.suffix.lower() == ".onnx"]
    if onnx_files:  # Already ONNX: whatever framework produced it, no conversion is needed.
        return ModelSource("onnx", _one(onnx_files, ".onnx file", root))
    if any(p.suffix.lower() == ".weights" for p in files) and any(
        p.suffix.lower() == ".cfg" for p in files
    ):
        raise UnsupportedFrameworkError(
            "Darknet models (.cfg/.weights) have no maintained offline converter; "
            "fix: export the model to ONNX first (for example with the exporter of the "
            "project that trained it) and package the .onnx file"
        )

    if framework == "PYTORCH":
        found = [p for p in files if p.suffix.lower() in (".pth", ".pt")]
        if not found:
            raise ArchiveError(
                "the archive has no PyTorch model file (*.pth or *.pt); "
                f"{_listing(root)} (fix: save the model with torch.jit.trace(model, "
                "example).save('model.pth') and pack it: tar -czf model.tar.gz model.pth)"
            )
        path = _one(found, "PyTorch model file", root)
        if not _is_torchscript(path):
            raise ArchiveError(
                f"{path.name} is not a TorchScript file (a state_dict or a pickled module "
                "cannot be compiled without its Python class); fix: save it with "
                "torch.jit.trace(model, example).save('model.pth')"
            )
        return ModelSource("torchscript", path)

    if framework == "TENSORFLOW":
        saved = [p.parent for p in files if p.name in ("saved_model.pb", "saved_model.pbtxt")]
        if saved:
            return ModelSource("savedmodel", _one(saved, "SavedModel", root))
        keras = [p for p in files if p.suffix.lower() in (".keras", ".h5", ".hdf5")]
        if keras:
            return ModelSource("keras", _one(keras, "Keras model file", root))
        tflite = [p for p in files if p.suffix.lower() == ".tflite"]
        if tflite:
            return ModelSource("tflite", _one(tflite, ".tflite file", root))
        frozen = [p for p in files if p.suffix.lower() == ".pb"]
        if frozen:
            return ModelSource("frozen-graph", _one(frozen, ".pb file", root))
        raise ArchiveError(
            "the archive has no TensorFlow model (a SavedModel directory with "
            f"saved_model.pb, a .keras/.h5 file or a .tflite file); {_listing(root)}"
        )

    if framework == "MXNET":
        symbols = [p for p in files if p.name.endswith("-symbol.json")]
        if symbols:
            return ModelSource("mxnet", _one(symbols, "MXNet symbol file", root))
        raise ArchiveError(
            "the archive has no MXNet model (a <name>-symbol.json with its "
            f"<name>-<epoch>.params); {_listing(root)}"
        )

    # ONNX named by the descriptor but no .onnx file found.
    raise ArchiveError(f"the archive has no .onnx model file; {_listing(root)}")


def open_asset(archive: Path, framework: str, scratch: Path) -> ModelSource:
    """Unpack `archive` into `scratch` (unless it is a bare .onnx) and find its model."""
    archive = Path(archive)
    framework = check_framework(framework)
    if not archive.is_file():
        raise ArchiveError(f"model archive {archive} does not exist")
    if is_bare_onnx(archive):
        return ModelSource("onnx", archive)
    unpack(archive, scratch)
    return find_model(scratch, framework)
