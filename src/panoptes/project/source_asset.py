"""The engine-less container asset: the package's sources plus a wheelhouse.

Without Docker/Podman we cannot produce a root filesystem, so build-container
packs what the Dockerfile would COPY/ADD, the requirements and their wheels for
the device platform, and ``panoptes-asset.json`` telling the device how to run it.
The tarball is byte-reproducible (sorted entries, zero times and owners, gzip
mtime 0) so an unchanged package rebuilds to the same sha256 asset name.
"""

from __future__ import annotations

import gzip
import io
import json
import platform as platform_mod
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from panoptes.project import dockerfile
from panoptes.project.errors import ProjectError
from panoptes.project.progress import NO_PROGRESS, Progress

FORMAT = "panoptes-source-asset"
FORMAT_VERSION = 1
PYTHON = "3.11"
MANIFEST = "panoptes-asset.json"
REQUIREMENTS = "requirements.txt"
WHEELHOUSE = "wheelhouse"
# Fixed so the same input always gives the same bytes (and so the same sha).
GZIP_LEVEL = 6


def default_platform() -> str:
    """The wheel platform of this machine's architecture (the device is assumed alike)."""
    machine = platform_mod.machine().lower()
    if machine in ("aarch64", "arm64"):
        return "manylinux2014_aarch64"
    return "manylinux2014_x86_64"


def has_requirements(path: Path) -> bool:
    """True if a requirements file names at least one requirement."""
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            return True
    return False


def download_wheelhouse(
    requirements: Path,
    dest: Path,
    platform: str,
    find_links: list[Path],
    no_index: bool,
    progress: Progress = NO_PROGRESS,
) -> None:
    """Fetch binary wheels of ``requirements`` for the device with pip download."""
    dest.mkdir(parents=True, exist_ok=True)
    if not has_requirements(requirements):
        return
    cmd = [
        sys.executable, "-m", "pip", "download",
        "-r", str(requirements), "-d", str(dest),
        "--only-binary=:all:", "--platform", platform,
        "--python-version", PYTHON, "--implementation", "cp",
        "--disable-pip-version-check", "--quiet",
    ]  # fmt: skip
    for link in find_links:
        cmd += ["--find-links", str(link)]
    if no_index:
        cmd.append("--no-index")
    with progress.task(f"downloading wheels for {platform}"):
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=requirements.parent)
    if proc.returncode != 0:
        tail = "\n  ".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
        raise ProjectError(
            f"{requirements}: pip could not download wheels for {platform}:\n  {tail}",
            "pin versions that publish binary wheels for the platform, pass --find-links DIR "
            "(with --no-index offline), or skip with --no-wheelhouse",
        )


class _Counting(io.RawIOBase):
    """File wrapper that reports bytes read, for the progress bar."""

    def __init__(self, f: IO[bytes], advance: Callable[[int], None]) -> None:
        self._f, self._advance = f, advance

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self._f.read(len(b))
        b[: len(data)] = data
        self._advance(len(data))
        return len(data)


def _info(name: str, kind: bytes, size: int = 0, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode = kind, size, mode
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


def write_tarball(
    out: Path,
    files: dict[str, Path],
    extra: dict[str, bytes],
    progress: Progress = NO_PROGRESS,
    empty_dirs: tuple[str, ...] = (),
) -> None:
    """Write a reproducible .tar.gz of ``files`` (arcname → source) plus in-memory ``extra``."""
    entries: dict[str, Path | bytes] = {**files, **extra}
    dirs = {str(Path(a).parents[i]) for a in entries for i in range(len(Path(a).parents) - 1)}
    dirs |= set(empty_dirs)
    total = sum(p.stat().st_size if isinstance(p, Path) else len(p) for p in entries.values())
    with (
        progress.task(f"packing {out.name}", total) as advance,
        out.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=GZIP_LEVEL) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar,
    ):
        for name in sorted(dirs | set(entries)):
            src = entries.get(name)
            if src is None:
                tar.addfile(_info(name, tarfile.DIRTYPE, mode=0o755))
            elif isinstance(src, bytes):
                tar.addfile(_info(name, tarfile.REGTYPE, len(src)), io.BytesIO(src))
                advance(len(src))
            else:
                st = src.stat()
                mode = 0o755 if st.st_mode & 0o100 else 0o644
                with src.open("rb") as f:
                    tar.addfile(
                        _info(name, tarfile.REGTYPE, st.st_size, mode), _Counting(f, advance)
                    )


def build_source_asset(
    package_dir: Path,
    descriptor: dict[str, Any],
    out: Path,
    platform: str,
    wheelhouse: bool,
    find_links: list[Path],
    no_index: bool,
    progress: Progress = NO_PROGRESS,
) -> list[str]:
    """Write the source asset tarball to ``out``; return notes for the user."""
    plan = dockerfile.parse(package_dir / "Dockerfile")
    notes = list(plan.notes)
    files = dockerfile.image_files(package_dir, plan)
    if not files:
        notes.append("the Dockerfile copies no package files into the image")
    entry = descriptor["runtimeDescriptor"]["entry"]
    entry_arc = str(entry.get("name", "")).lstrip("/")
    if entry_arc not in files:
        notes.append(
            f"entry {entry.get('name')!r} (descriptor.json) is not among the copied files; "
            "the device will not find it"
        )
    extra: dict[str, bytes] = {}
    req = package_dir / REQUIREMENTS
    extra[REQUIREMENTS] = req.read_bytes() if req.is_file() else b""
    if not req.is_file():
        notes.append(f"no {REQUIREMENTS} in the package; the asset carries an empty one")
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "python": PYTHON,
        "platform": platform,
        "entry": entry,
        "requirements": REQUIREMENTS,
        "wheelhouse": WHEELHOUSE if wheelhouse else None,
    }
    extra[MANIFEST] = (json.dumps(manifest, indent=4) + "\n").encode()
    with tempfile.TemporaryDirectory(prefix=".wheelhouse-", dir=out.parent) as tmp:
        if wheelhouse and req.is_file():
            download_wheelhouse(req, Path(tmp), platform, find_links, no_index, progress)
            for whl in sorted(Path(tmp).iterdir()):
                files[f"{WHEELHOUSE}/{whl.name}"] = whl
        # The manifest promises a wheelhouse/ folder: ship it even when empty.
        write_tarball(out, files, extra, progress, (WHEELHOUSE,) if wheelhouse else ())
    return notes
