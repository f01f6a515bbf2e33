"""The device's Panoptes software versions on disk: download, verify, install, switch.

A Panoptes version is a wheel (``panoptes-X.Y.Z-py3-none-any.whl``) that the control
plane serves at ``link.DEVICE_HTTP_SOFTWARE/{version}``. It is installed OFFLINE
with ``pip install --no-deps --no-index --target DATA/software/<version>``: only
Panoptes' own code changes; its dependencies are those of the running install
(a version that needs other dependencies is a new install, not an OTA). The worker
then runs with that directory first on PYTHONPATH (see launcher.py); the base
install (no directory) is what the machine was installed with.

Files under DATA/software/ (all JSON written atomically)::

    <version>/            an installed version (a pip --target tree)
    current.json          {"Version", "Path" | null, "Previous": {...} | null}: the
                          version the launcher starts; changes only when a new version
                          proved healthy, so it always names a good version
    pending.json          {"JobId", "Version", "Path", "Attempts"}: the worker asks the
                          launcher to try this version (then exits with EXIT_OTA)
    healthy-<version>     written by the trial worker (mark_healthy) once it connected
                          and restarted its applications
    outcomes/<JobId>.json {"JobId", "Status": COMPLETED | FAILED, "Version", "Reason"}:
                          what the launcher decided; the next worker reports it
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panoptes import link
from panoptes.project.files import atomic_write_bytes, sha256_file

log = logging.getLogger("panoptes.agent.software")

#: Exit codes of the agent worker that the launcher acts on. Chosen outside the range
#: Python and shells use for errors and signals (1, 2, 126-128+n).
EXIT_REBOOT = 80
EXIT_OTA = 81
#: The worker cannot run at all (its provisioning archive was refused): starting it
#: again would not help, so the launcher ends with exit code 1.
EXIT_FATAL = 82

#: Set by the launcher in the worker's environment while a new version is on trial.
ENV_TRIAL = "PANOPTES_SOFTWARE_TRIAL"
#: Set by the launcher: the version of the base install (the launcher's own), which a
#: worker running another version cannot learn by importing panoptes.
ENV_BASE = "PANOPTES_SOFTWARE_BASE"

#: ``download(path, dest)``: fetch ``path`` on the control plane's device endpoint
#: (``/device/v1/software/0.2.0``) into the file ``dest`` and return it. The agent's
#: mutual-TLS client provides one; http_download() is a plain urllib one.
Download = Callable[[str, Path], Path]

_CHUNK = 1 << 20


class SoftwareError(Exception):
    """An OTA step failed; the message is the Reason reported with FAILED."""


def http_download(base_url: str, context: Any = None, timeout: float = 60.0) -> Download:
    """A Download over HTTP(S): ``base_url`` + path, with an optional ssl.SSLContext
    (mutual TLS: a context with the device certificate loaded)."""

    def download(path: str, dest: Path) -> Path:
        url = base_url.rstrip("/") + path
        tmp = dest.with_name(dest.name + ".part")
        try:
            with (
                urllib.request.urlopen(url, timeout=timeout, context=context) as resp,
                tmp.open("wb") as out,
            ):
                shutil.copyfileobj(resp, out, _CHUNK)
        except OSError as exc:  # URLError and HTTPError are OSErrors
            tmp.unlink(missing_ok=True)
            raise SoftwareError(f"download of {url} failed: {exc}") from exc
        tmp.replace(dest)
        return dest

    return download


def running_version() -> str:
    """The version of the panoptes package this process imported."""
    import panoptes

    return panoptes.__version__


@dataclass(frozen=True)
class Version:
    """An installed version: ``path`` is its --target directory; None = the base install."""

    version: str
    path: Path | None

    def to_json(self) -> dict[str, Any]:
        return {"Version": self.version, "Path": str(self.path) if self.path else None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Version:
        return cls(str(data["Version"]), Path(data["Path"]) if data.get("Path") else None)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically replace ``path`` (fsynced): a reader sees the old or the new file."""
    atomic_write_bytes(path, json.dumps(data, indent=1, sort_keys=True).encode())


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        log.warning("%s is not valid JSON: ignored", path)
        return None
    return data if isinstance(data, dict) else None


class SoftwareStore:
    """DATA/software/: the installed versions and the launcher <-> worker hand-over."""

    KEEP = 3  # installed versions kept (the current and previous ones always are)

    def __init__(self, data_dir: Path, base_version: str | None = None) -> None:
        self.root = Path(data_dir) / "software"
        self.outcomes = self.root / "outcomes"
        self.base_version = base_version or os.environ.get(ENV_BASE) or running_version()
        self.root.mkdir(parents=True, exist_ok=True)

    # -- what runs ------------------------------------------------------------------------

    def current(self) -> Version:
        """The version the launcher starts: the last one that proved healthy."""
        data = read_json(self.root / "current.json")
        if data and (data.get("Path") is None or Path(data["Path"]).is_dir()):
            return Version.from_json(data)
        return Version(self.base_version, None)

    def previous(self) -> Version | None:
        data = read_json(self.root / "current.json")
        prev = data.get("Previous") if data else None
        return Version.from_json(prev) if prev else None

    def installed_versions(self) -> list[str]:
        """Every version this device can run (for the heartbeat's AlternateSoftwares)."""
        found = {self.base_version}
        found.update(p.name for p in self.root.iterdir() if self._is_version_dir(p))
        return sorted(found)

    def version_dir(self, version: str) -> Path:
        if not version or "/" in version or version.startswith("."):
            raise SoftwareError(f"invalid software version {version!r}")
        return self.root / version

    def _is_version_dir(self, p: Path) -> bool:
        return p.is_dir() and not p.name.startswith(".") and p.name != "outcomes"

    # -- install --------------------------------------------------------------------------

    def fetch(self, version: str, image: dict[str, Any], download: Download) -> Path:
        """Download the wheel of ``version`` (``image`` = the desired state's
        Software.Images entry: Path, Sha256, Size) and check its digest."""
        sha = image.get("Sha256")
        if not sha:
            raise SoftwareError(f"software {version}: the control plane gave no Sha256")
        path = image.get("Path") or f"{link.DEVICE_HTTP_SOFTWARE}/{version}"
        downloads = self.root / ".downloads"
        downloads.mkdir(exist_ok=True)
        wheel = downloads / f"panoptes-{version}-py3-none-any.whl"
        download(path, wheel)
        actual = sha256_file(wheel)
        if actual != sha:
            wheel.unlink(missing_ok=True)
            raise SoftwareError(
                f"software {version}: downloaded file has sha256 {actual}, expected {sha}"
            )
        return wheel

    def install(self, version: str, wheel: Path) -> Version:
        """Install ``wheel`` into DATA/software/<version> (offline, no dependencies) and
        check it really is panoptes ``version``. An existing install is reused."""
        target = self.version_dir(version)
        if target.is_dir():
            return Version(version, target)
        for left in self.root.glob(f".install-{version}-*"):  # a crash during an install
            shutil.rmtree(left, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(dir=self.root, prefix=f".install-{version}-"))
        try:
            proc = subprocess.run(
                [
                    *(sys.executable, "-m", "pip", "install", "--no-deps", "--no-index"),
                    *("--disable-pip-version-check", "--no-warn-script-location", "-q"),
                    *("--target", str(staging), str(wheel)),
                ],
                capture_output=True,
                text=True,
                timeout=600,
            )
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
                raise SoftwareError(f"software {version}: pip install failed: {tail[0]}")
            found = self._dist_version(staging)
            if found != version:
                raise SoftwareError(
                    f"software {version}: the wheel is panoptes {found or '(none)'}, not {version}"
                )
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        wheel.unlink(missing_ok=True)
        log.info("software %s installed in %s", version, target)
        return Version(version, target)

    @staticmethod
    def _dist_version(tree: Path) -> str | None:
        for info in tree.glob("panoptes-*.dist-info"):
            for line in (info / "METADATA").read_text().splitlines():
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip()
        return None

    def prune(self) -> None:
        """Remove old installs beyond KEEP, never the current or previous one."""
        keep = {v.path for v in (self.current(), self.previous()) if v and v.path}
        dirs = sorted(
            (p for p in self.root.iterdir() if self._is_version_dir(p)),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for p in dirs[self.KEEP :]:
            if p not in keep:
                shutil.rmtree(p, ignore_errors=True)

    # -- the hand-over between worker and launcher -----------------------------------------

    def request_switch(self, job_id: str, version: Version) -> None:
        """Worker: ask the launcher to try ``version`` (then exit with EXIT_OTA)."""
        write_json(
            self.root / "pending.json", {"JobId": job_id, **version.to_json(), "Attempts": 0}
        )

    def pending(self) -> dict[str, Any] | None:
        return read_json(self.root / "pending.json")

    def clear_pending(self) -> None:
        (self.root / "pending.json").unlink(missing_ok=True)

    def health_mark(self, version: str) -> Path:
        return self.root / f"healthy-{version}"

    def commit(self, pending: dict[str, Any]) -> Version:
        """Launcher: the trial version proved healthy; it becomes current."""
        new = Version.from_json(pending)
        old = self.current()
        write_json(self.root / "current.json", {**new.to_json(), "Previous": old.to_json()})
        self.record_outcome(pending["JobId"], "COMPLETED", new.version, None)
        self.clear_pending()
        self.health_mark(new.version).unlink(missing_ok=True)
        return new

    def roll_back(self, pending: dict[str, Any], reason: str) -> Version:
        """Launcher: the trial failed; current.json never changed, so it is still good."""
        self.record_outcome(pending["JobId"], "FAILED", pending["Version"], reason)
        self.clear_pending()
        self.health_mark(pending["Version"]).unlink(missing_ok=True)
        return self.current()

    def record_outcome(self, job_id: str, status: str, version: str, reason: str | None) -> None:
        write_json(
            self.outcomes / f"{job_id}.json",
            {"JobId": job_id, "Status": status, "Version": version, "Reason": reason},
        )

    def outcome(self, job_id: str) -> dict[str, Any] | None:
        return read_json(self.outcomes / f"{job_id}.json")

    def mark_healthy(self, timeout: float = 30.0) -> bool:
        """Worker: call once connected and the applications are restarted. Under a trial
        it writes the health mark and waits (at most ``timeout``) until the launcher has
        recorded the outcome, so that JobRunner.resume() can report it. True when this
        version is (now) the committed one."""
        version = os.environ.get(ENV_TRIAL)
        if not version:
            return True
        self.health_mark(version).write_text(f"{os.getpid()}\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = self.pending()
            if not pending or pending.get("Version") != version:
                return self.current().version == version
            time.sleep(0.1)
        return False


def mark_healthy(data_dir: Path, timeout: float = 30.0) -> bool:
    """Shorthand for SoftwareStore(data_dir).mark_healthy(timeout)."""
    return SoftwareStore(data_dir).mark_healthy(timeout)
