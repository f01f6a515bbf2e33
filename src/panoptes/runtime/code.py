"""Lay out a code node's files and Python the way its container image would have them.

Three origins, one result (a folder to mount at ``/panorama`` and a Python to run):

* no built asset yet: the package folder, through its Dockerfile's COPY/ADD lines
  (panoptes.project.dockerfile decides which file lands where);
* a Panoptes source asset (``panoptes-asset.json`` at its root): its files, plus a
  virtualenv per asset with its requirements installed offline from its wheelhouse;
* a Docker rootfs export: only its ``/panorama`` tree is used (the image's own Python
  and libraries are not; a note says so).

The application always sees ``panoramasdk`` and the runtime's numpy/cv2: a ``.pth``
file adds the runtime's site-packages after the asset's own, so pinned requirements
of the asset win.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from panoptes.project import dockerfile
from panoptes.project.errors import ProjectError
from panoptes.runtime.plan import CodePlan, RunError

PYTHON_NAMES = ("python", "python3", "python3.7", "python3.8", "python3.9", "python3.10",
                "python3.11", "$default")  # fmt: skip
MANIFEST = "panoptes-asset.json"


@dataclass
class PreparedCode:
    root: Path  # mounted at /panorama
    python: Path  # the interpreter "python3" means for this node
    argv: list[str]
    shim_dir: Path
    notes: list[str] = field(default_factory=list)


def _copy_image_files(files: dict[str, Path], root: Path, notes: list[str]) -> None:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    skipped = []
    for arc, src in files.items():
        if arc == "panorama" or not arc.startswith("panorama/"):
            skipped.append("/" + arc)
            continue
        dest = root / arc[len("panorama/") :]
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
    if skipped:
        notes.append(
            "files outside /panorama are not placed (only /panorama is mounted): "
            + ", ".join(sorted(skipped)[:5])
        )


def _from_package(code: CodePlan, root: Path, notes: list[str]) -> None:
    pkg = code.package_dir
    if (pkg / "Dockerfile").is_file():
        try:
            plan = dockerfile.parse(pkg / "Dockerfile")
            files = dockerfile.image_files(pkg, plan)
        except ProjectError as exc:
            raise RunError(
                f"code node {code.node!r}: {exc}", "fix the Dockerfile", code.node
            ) from None
        notes.extend(plan.notes)
    else:
        base = pkg / "src" if (pkg / "src").is_dir() else pkg
        files = {
            "panorama/" + f.relative_to(base).as_posix(): f
            for f in sorted(base.rglob("*"))
            if f.is_file()
        }
        notes.append(f"no Dockerfile in {pkg}: {base} is used as /panorama")
    _copy_image_files(files, root, notes)


def _extract(asset: Path, dest: Path) -> None:
    if dest.is_dir():
        return  # assets are content-addressed: an extracted one never changes
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(asset) as tar:
        tar.extractall(tmp, filter="data")
    tmp.rename(dest)


def _site_packages() -> str:
    return sysconfig.get_paths()["purelib"]


def make_venv(asset_dir: Path, venv: Path, manifest: dict) -> Path:
    """A virtualenv for one asset with its requirements, installed offline."""
    python = venv / "bin" / "python"
    if (venv / ".ready").is_file():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    req = asset_dir / (manifest.get("requirements") or "requirements.txt")
    wheelhouse = manifest.get("wheelhouse")
    cmd = [
        sys.executable, "-m", "pip", "--python", str(python), "install",
        "--disable-pip-version-check", "--no-input", "--quiet", "--no-index",
        "-r", str(req),
    ]  # fmt: skip
    if wheelhouse:
        cmd += ["--find-links", str(asset_dir / wheelhouse)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        tail = "\n  ".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
        raise RunError(
            f"installing the asset's requirements offline failed:\n  {tail}",
            "rebuild the container asset with its wheelhouse (panoptes app build-container)",
        )
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    # After the asset's own packages: the runtime's panoramasdk, numpy, cv2.
    (site / "site-packages" / "zz_panoptes_runtime.pth").write_text(
        f"import site; site.addsitedir({_site_packages()!r})\n"
    )
    (venv / ".ready").write_text("ok\n")
    return python


def _from_asset(code: CodePlan, cache: Path, root: Path, notes: list[str]) -> Path:
    """Lay out a built asset; returns the Python to use."""
    assert code.asset is not None
    digest = hashlib.sha256(code.asset.name.encode()).hexdigest()[:16]
    extracted = cache / "assets" / digest
    try:
        _extract(code.asset, extracted)
    except (OSError, tarfile.TarError) as exc:
        raise RunError(
            f"code node {code.node!r}: cannot unpack {code.asset}: {exc}",
            "rebuild the container asset (panoptes app build-container)",
            code.node,
        ) from None
    manifest_path = extracted / MANIFEST
    files = {
        p.relative_to(extracted).as_posix(): p
        for p in sorted(extracted.rglob("*"))
        if p.is_file() and p.relative_to(extracted).parts[0] == "panorama"
    }
    _copy_image_files(files, root, notes)
    if not manifest_path.is_file():
        notes.append(
            "container asset is a root filesystem export: only its /panorama is used; "
            "its Python and installed libraries are not (the runtime's are)"
        )
        return Path(sys.executable)
    manifest = json.loads(manifest_path.read_text())
    req = extracted / (manifest.get("requirements") or "requirements.txt")
    if not req.is_file() or not _has_requirements(req):
        return Path(sys.executable)
    try:
        return make_venv(extracted, cache / "venvs" / digest, manifest)
    except RunError as exc:
        raise RunError(f"code node {code.node!r}: {exc.message}", exc.fix, code.node) from None


def _has_requirements(path: Path) -> bool:
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            return True
    return False


def _shims(shim_dir: Path, python: Path) -> None:
    """``python3`` & co. on PATH run the node's interpreter (a script, not a symlink:
    a symlinked venv python would not find its pyvenv.cfg)."""
    shim_dir.mkdir(parents=True, exist_ok=True)
    for name in PYTHON_NAMES[:-1]:
        p = shim_dir / name
        p.write_text(f'#!/bin/sh\nexec {python} "$@"\n')
        p.chmod(0o755)


def prepare(code: CodePlan, node_dir: Path, cache: Path) -> PreparedCode:
    """Files for /panorama, the interpreter, and the entry command of one code node."""
    notes: list[str] = []
    root = node_dir / "panorama"
    if code.asset is not None:
        python = _from_asset(code, cache, root, notes)
    else:
        _from_package(code, root, notes)
        python = Path(sys.executable)
    shim_dir = node_dir / "bin"
    _shims(shim_dir, python)
    entry = code.entry
    if not entry.name and entry.path in PYTHON_NAMES:
        raise RunError(
            f"code node {code.node!r}: the runtime descriptor's entry has no name",
            'set "entry": {"path": "python3", "name": "/panorama/application.py"}',
            code.node,
        )
    exe = str(shim_dir / "python3") if entry.path in PYTHON_NAMES else entry.path
    argv = [exe, *([entry.name] if entry.name else []), *entry.arguments]
    if entry.name and entry.name.startswith("/panorama/"):
        target = root / entry.name[len("/panorama/") :]
        if not target.is_file():
            raise RunError(
                f"code node {code.node!r}: entry {entry.name} is not in the image "
                f"(files placed: {', '.join(sorted(p.name for p in root.iterdir())) or 'none'})",
                "fix descriptor.json's entry name, or the Dockerfile's COPY lines",
                code.node,
            )
    return PreparedCode(root, python, argv, shim_dir, notes)
