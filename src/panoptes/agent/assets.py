"""Package assets on the device: downloaded once, verified, cached by SHA-256.

``fetch(asset)`` takes a desired state's asset entry ({"Name", "Sha256", "Size",
"Path"}) and returns the cached file ``ROOT/<sha256>``. The download goes to the
device endpoint over mutual TLS (the device certificate), into ``ROOT/<sha256>.part``;
an interrupted download resumes from where it stopped with an HTTP Range request.
The file enters the cache only once its SHA-256 matches: a bad digest is an error
naming the asset, and nothing of it is left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

log = logging.getLogger("panoptes.agent")

CHUNK = 1 << 20
ATTEMPTS = 4
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class AssetError(Exception):
    """An asset could not be fetched or verified; the message names it."""


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


class AssetCache:
    def __init__(self, root: Path, endpoint: str | None, tls: ssl.SSLContext | None) -> None:
        self.root = Path(root)
        self.endpoint = (endpoint or "").rstrip("/")
        self.tls = tls
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        return self.root / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def fetch(self, asset: dict[str, Any]) -> Path:
        name, digest = str(asset.get("Name")), str(asset.get("Sha256", "")).lower()
        if not _DIGEST.match(digest):
            raise AssetError(f"asset {name}: {digest!r} is not a SHA-256 digest")
        final = self.path(digest)
        if final.is_file():
            return final
        if not self.endpoint:
            raise AssetError(
                f"asset {name} is not cached and the device knows no DeviceEndpoint to "
                "download it from"
            )
        url = self.endpoint + str(asset["Path"])
        part = self.root / f"{digest}.part"
        size = asset.get("Size")
        delay = 1.0
        for attempt in range(1, ATTEMPTS + 1):
            try:
                self._download(url, part, name)
                break
            except (OSError, urllib.error.URLError) as exc:
                if attempt == ATTEMPTS:
                    raise AssetError(
                        f"asset {name}: download from {url} failed after {ATTEMPTS} attempts: "
                        f"{getattr(exc, 'reason', exc)}"
                    ) from None
                log.warning("asset %s: %s; resuming in %gs", name, exc, delay)
                time.sleep(delay)
                delay *= 2
        got = file_sha256(part)
        if got != digest or (size is not None and part.stat().st_size != int(size)):
            part.unlink(missing_ok=True)
            raise AssetError(
                f"asset {name}: the downloaded file's SHA-256 is {got}, expected {digest}; "
                "it was not cached (re-upload the package's assets and register it again)"
            )
        os.replace(part, final)
        return final

    def _download(self, url: str, part: Path, name: str) -> None:
        have = part.stat().st_size if part.exists() else 0
        req = urllib.request.Request(url)
        if have:
            req.add_header("Range", f"bytes={have}-")
        try:
            resp = urllib.request.urlopen(req, timeout=30, context=self.tls)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:  # we already hold all of it
                return
            if exc.code in (401, 403, 404):
                raise AssetError(
                    f"asset {name}: {url} answered {exc.code} {exc.reason}"
                    + (" (is this device's certificate revoked?)" if exc.code == 403 else "")
                ) from None
            raise
        with resp:
            mode = "ab" if have and resp.status == 206 else "wb"  # 200: the server restarted it
            with part.open(mode) as out:
                while block := resp.read(CHUNK):
                    out.write(block)
            # http.client's read(n) returns b"" on an early close instead of raising:
            # what is still owed of Content-Length says whether the body is complete.
            if resp.length:
                raise ConnectionError(f"the connection closed with {resp.length} bytes to go")

    def prune(self, keep: set[str]) -> None:
        """Remove cached assets no desired package names any more (and stale .part files)."""
        for p in self.root.iterdir():
            digest = p.name.removesuffix(".part")
            if digest not in keep:
                with contextlib.suppress(OSError):
                    p.unlink()
