"""File helpers every command shares: hashing, atomic writes, JSON with good errors.

Each lives here once so that "how we write a manifest" has a single answer:
4-space indent like panorama-cli, trailing newline, written to a temporary file
in the same folder and renamed, so an interrupted command leaves the last good
file instead of a truncated one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from panoptes.project.errors import ProjectError
from panoptes.project.progress import NO_PROGRESS, Progress

CHUNK = 1024 * 1024


def sha256_file(path: Path, progress: Progress = NO_PROGRESS, label: str = "") -> str:
    """Hex sha256 of a file, read in chunks so multi-GB models never sit in memory."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    with progress.task(label or f"hashing {path.name}", size) as advance, path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            advance(len(chunk))
    return digest.hexdigest()


def copy_hashing(src: Path, dst_dir: Path, progress: Progress = NO_PROGRESS) -> tuple[Path, str]:
    """Copy ``src`` into a temporary file in ``dst_dir`` and return (temp path, sha256).

    One pass computes the content address while copying, so a large model is read
    once; the caller renames the temp file to its final ``<sha>.<ext>`` name.
    """
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(prefix=".incoming-", dir=dst_dir)
    size = src.stat().st_size
    try:
        with (
            progress.task(f"copying {src.name}", size) as advance,
            src.open("rb") as fin,
            os.fdopen(fd, "wb") as fout,
        ):
            while chunk := fin.read(CHUNK):
                digest.update(chunk)
                fout.write(chunk)
                advance(len(chunk))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp), digest.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one rename; keeps the old file's mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            shutil.copymode(path, tmp)
        else:
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_move(src: Path, dst: Path) -> None:
    """Move a finished temp file to its final name (same filesystem: one rename)."""
    os.chmod(src, 0o666 & ~_umask())
    os.replace(src, dst)


def dump_json(doc: Any) -> str:
    """The canonical text of a manifest: 4-space indent and a trailing newline."""
    return json.dumps(doc, indent=4, ensure_ascii=False) + "\n"


def write_json(path: Path, doc: Any) -> None:
    atomic_write_bytes(path, dump_json(doc).encode("utf-8"))


def read_json(path: Path, what: str = "JSON file") -> Any:
    """Parse a JSON file; a syntax error names file:line:col instead of a traceback."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectError(f"{path}: {what} not found", "check the path") from None
    except IsADirectoryError:
        raise ProjectError(f"{path}: is a folder, expected a {what}", "pass the file") from None
    except UnicodeDecodeError as e:
        raise ProjectError(f"{path}: not UTF-8 text ({e.reason})", "save it as UTF-8") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ProjectError(
            f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}",
            "fix the syntax at that position (a trailing comma or a missing quote is usual)",
        ) from None


def read_json_object(
    path: Path, top_key: str, what: str, lists: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Read a manifest whose top level must be ``{top_key: {...}}``.

    Each key in ``lists`` is made an empty list when absent and must be a list, so
    callers can append to it (the packages of a graph, the assets of a package).
    """
    doc = read_json(path, what)
    if not isinstance(doc, dict) or not isinstance(doc.get(top_key), dict):
        raise ProjectError(
            f"{path}: expected a {what} with a top-level {top_key!r} object",
            f"the file must look like {{{top_key!r}: {{...}}}}",
        )
    body = doc[top_key]
    for key in lists:
        body.setdefault(key, [])
        if not isinstance(body[key], list):
            raise ProjectError(f"{path}: {top_key}.{key} must be a list", f'write "{key}": [...]')
    return doc


def _umask() -> int:
    # os.umask can only be read by setting it; restore immediately.
    mask = os.umask(0)
    os.umask(mask)
    return mask
