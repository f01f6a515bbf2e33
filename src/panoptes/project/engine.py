"""Finding a container engine that actually answers, and the build/export it runs.

A ``docker`` client on PATH is not enough: without a daemon every command fails,
so an engine counts only when ``<engine> info`` succeeds.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import tempfile
from pathlib import Path

from panoptes.project.errors import ProjectError
from panoptes.project.files import CHUNK
from panoptes.project.progress import NO_PROGRESS, Progress

ENGINES = ("docker", "podman")


def engine_answers(name: str, timeout: float = 20) -> bool:
    if shutil.which(name) is None:
        return False
    try:
        proc = subprocess.run([name, "info"], capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def find_engine(choice: str = "auto") -> str | None:
    """``auto``: first of docker/podman that answers, else None; ``none``: None.

    Naming an engine explicitly makes its absence an error instead of a fallback.
    """
    if choice == "none":
        return None
    if choice == "auto":
        return next((e for e in ENGINES if engine_answers(e)), None)
    if choice not in ENGINES:
        raise ProjectError(f"--engine {choice!r} is unknown", "use auto, docker, podman or none")
    if not engine_answers(choice):
        raise ProjectError(
            f"`{choice} info` fails: no {choice} engine is running",
            f"start the {choice} daemon, or use --engine none for a source asset",
        )
    return choice


def _run(cmd: list[str], what: str, capture: bool = True) -> str:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE if capture else None, text=True)
    if proc.returncode != 0:
        raise ProjectError(
            f"`{' '.join(cmd)}` failed with exit code {proc.returncode} while {what}",
            "read the engine output above",
        )
    return (proc.stdout or "").strip()


def build_image(engine: str, tag: str, context: Path, pull: bool) -> list[str]:
    """docker build; its output streams to the terminal (it is long and useful)."""
    cmd = [engine, "build", "-t", tag, str(context)] + (["--pull"] if pull else [])
    _run(cmd, "building the image", capture=False)
    return [" ".join(cmd)]


def export_rootfs(
    engine: str, image: str, out_gz: Path, progress: Progress = NO_PROGRESS
) -> list[str]:
    """Export the root filesystem of ``image`` to a gzip file (as panorama-cli does)."""
    cid = _run([engine, "create", image], "creating a container to export")
    cmds = [f"{engine} create {image}"]
    try:
        with tempfile.TemporaryDirectory(prefix=".export-", dir=out_gz.parent) as tmp:
            tar = Path(tmp) / "rootfs.tar"
            _run([engine, "export", f"--output={tar}", cid], "exporting the filesystem")
            cmds.append(f"{engine} export --output={tar.name} {cid}")
            gzip_file(tar, out_gz, progress)
    finally:
        # panorama-cli left the container behind; we remove it.
        subprocess.run([engine, "rm", cid], capture_output=True)
    return cmds


def gzip_file(src: Path, dst: Path, progress: Progress = NO_PROGRESS) -> None:
    """gzip -1 equivalent with mtime 0, so equal input gives an equal asset name."""
    with (
        progress.task(f"compressing {src.name}", src.stat().st_size) as advance,
        src.open("rb") as fin,
        dst.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=1) as gz,
    ):
        while chunk := fin.read(CHUNK):
            gz.write(chunk)
            advance(len(chunk))
