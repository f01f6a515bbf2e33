"""The compiled-model cache: one directory per (asset digest, target, precision, ...).

    <root>/<asset sha256>/<target>-<precision>-<options digest>/model.onnx
                                                               /metadata.json

An entry is written into a temporary directory beside the others and renamed into
place: rename is atomic on one file system, so a reader sees a whole entry or none,
and a crash leaves only a `.tmp-*` directory that the next store removes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

_STALE_TMP_SECONDS = 3600  # a writer older than this has crashed


def default_root() -> Path:
    if env := os.environ.get("PANOPTES_MODEL_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "panoptes" / "models"


@dataclass(frozen=True)
class CacheKey:
    asset_sha256: str
    target: str
    precision: str
    # The descriptor's inputs and compile options change the output too (a PyTorch
    # export is traced at the descriptor's shape), so they are part of the key.
    options_digest: str

    def relative(self) -> Path:
        return Path(self.asset_sha256) / f"{self.target}-{self.precision}-{self.options_digest}"


class ModelCache:
    MODEL = "model.onnx"
    METADATA = "metadata.json"

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    def entry(self, key: CacheKey) -> Path:
        return self.root / key.relative()

    def load(self, key: CacheKey) -> tuple[Path, dict] | None:
        """(model path, metadata) of a complete entry, or None."""
        entry = self.entry(key)
        try:
            metadata = json.loads((entry / self.METADATA).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        model = entry / self.MODEL
        return (model, metadata) if model.is_file() else None

    def store(self, key: CacheKey, model_bytes: bytes, metadata: dict) -> Path:
        """Write an entry atomically; returns its model path (another writer's if it won)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._remove_stale_tmp()
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
        try:
            _write(tmp / self.MODEL, model_bytes)
            _write(tmp / self.METADATA, json.dumps(metadata, indent=2).encode())
            final = self.entry(key)
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(tmp, final)
            except OSError:
                if self.load(key) is None:  # a broken entry (files removed by hand): replace
                    shutil.rmtree(final, ignore_errors=True)
                    os.rename(tmp, final)
                # Otherwise a concurrent compile of the same asset won: same content.
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final / self.MODEL

    def _remove_stale_tmp(self) -> None:
        now = time.time()
        for tmp in self.root.glob(".tmp-*"):
            try:
                if now - tmp.stat().st_mtime > _STALE_TMP_SECONDS:
                    shutil.rmtree(tmp, ignore_errors=True)
            except FileNotFoundError:
                continue


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
