"""Where Panoptes keeps its state on this machine, and the files it shares there.

One data directory holds everything a single-node install owns: the database, the
object store, keys, and the two files clients read to find the running service
(`service.json`) and sign their requests (`credentials`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

DATA_DIR_ENV = "PANOPTES_DATA_DIR"
PROFILE = "panoptes"
DEFAULT_REGION = "us-east-1"


def default_data_dir() -> Path:
    """$PANOPTES_DATA_DIR, else $XDG_DATA_HOME/panoptes, else ~/.local/share/panoptes."""
    if value := os.environ.get(DATA_DIR_ENV):
        return Path(value).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "panoptes"


@dataclass(frozen=True)
class ServiceRecord:
    """What a running `panoptes serve` tells its clients (DATA_DIR/service.json)."""

    endpoint_url: str
    region: str = DEFAULT_REGION
    pid: int | None = None
    #: The device link: MQTT broker and device endpoint URLs (what devices dial).
    broker_url: str | None = None
    device_endpoint: str | None = None

    @staticmethod
    def path(data_dir: Path) -> Path:
        return Path(data_dir) / "service.json"

    def write(self, data_dir: Path) -> None:
        target = self.path(data_dir)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(target)

    @classmethod
    def read(cls, data_dir: Path) -> ServiceRecord | None:
        try:
            raw = json.loads(cls.path(data_dir).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(raw, dict) or not isinstance(raw.get("endpoint_url"), str):
            return None
        return cls(
            raw["endpoint_url"],
            raw.get("region", DEFAULT_REGION),
            raw.get("pid"),
            raw.get("broker_url"),
            raw.get("device_endpoint"),
        )


def credentials_path(data_dir: Path) -> Path:
    """The AWS shared-credentials file `panoptes serve` writes (profile `panoptes`)."""
    return Path(data_dir) / "credentials"
