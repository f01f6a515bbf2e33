"""Device software images for OTA: Panoptes wheels in the ``panoptes-software`` bucket.

`panoptes software publish WHEEL` uploads ``VERSION/<wheel file name>`` through the
S3 API; the control plane reads the bucket: LatestSoftware in DescribeDevice is the
highest version there, and the desired state's ``Software`` block lists every image
with the device-endpoint path the agent downloads it from.
"""

from __future__ import annotations

import re
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from panoptes.cloud.storage.base import ObjectStore
from panoptes.link import DEVICE_HTTP_SOFTWARE

BUCKET = "panoptes-software"
#: DescribeDevice runs on the event loop: listing the bucket at most this often.
CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class Image:
    version: str
    key: str  # VERSION/<wheel file name>
    sha256: str
    size: int

    @property
    def file_name(self) -> str:
        return self.key.split("/", 1)[1]

    def link_entry(self) -> dict[str, Any]:
        return {
            "Path": f"{DEVICE_HTTP_SOFTWARE}/{self.version}",
            "File": self.file_name,
            "Sha256": self.sha256,
            "Size": self.size,
        }


def version_key(version: str) -> tuple[tuple[int, ...], str]:
    """Orders 0.2.0 < 0.10.0 (numbers compared as numbers), then by text."""
    return tuple(int(n) for n in re.findall(r"\d+", version)), version


def images(store: ObjectStore) -> dict[str, Image]:
    """Every published image by version (one wheel per version folder)."""
    found: dict[str, Image] = {}
    if not store.bucket_exists(BUCKET):
        return found
    for info in store.list(BUCKET):
        version, _, name = info.key.partition("/")
        if version and name.endswith(".whl") and "/" not in name:
            found[version] = Image(version, info.key, info.sha256, info.size)
    return found


# Keyed on the store object itself (weakly): an id() could be reused by a later store.
_cache: weakref.WeakKeyDictionary[ObjectStore, tuple[float, dict[str, Image]]] = (
    weakref.WeakKeyDictionary()
)
_cache_lock = threading.Lock()


def cached_images(store: ObjectStore, wanted: Iterable[str] = ()) -> dict[str, Image]:
    """`images`, re-read at most every CACHE_SECONDS per store, and at once when one of
    ``wanted`` is missing (a pending OTA job names a wheel published since the last read:
    publishing does not go through this process, so nothing else tells the cache)."""
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(store)
    if hit is not None and now - hit[0] < CACHE_SECONDS and all(v in hit[1] for v in wanted):
        return hit[1]
    fresh = images(store)
    with _cache_lock:
        _cache[store] = (now, fresh)
    return fresh


def _highest(published: dict[str, Image], fallback: str) -> str:
    return max(published, key=version_key) if published else fallback


def latest(store: ObjectStore, fallback: str) -> str:
    """The highest published version, or ``fallback`` when none is published."""
    return _highest(cached_images(store), fallback)


def software_block(store: ObjectStore, fallback: str, wanted: Iterable[str] = ()) -> dict[str, Any]:
    """The desired state's ``Software``: latest version and every image (``wanted``: the
    versions the device's pending OTA jobs name, which must not come from a stale read)."""
    published = cached_images(store, wanted)  # a sweep builds this for every device
    return {
        "Latest": _highest(published, fallback),
        "Images": {v: image.link_entry() for v, image in sorted(published.items())},
    }
